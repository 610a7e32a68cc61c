//! `tfctl cp`: files and folders into and out of a running container, streamed.
//!
//! The container's root arrives as a directory descriptor. Every path inside it is resolved
//! with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS), so a symlink the container planted
//! resolves inside the container and never on the host. Below the first folder, every entry is
//! reached relative to a descriptor already held, opened with O_NOFOLLOW: a container that swaps
//! a folder for a symlink mid-copy cannot redirect the copy, and the copy never writes through a
//! symlink at the destination or one it made itself. Going out, device nodes, FIFOs and sockets
//! are skipped, setuid and setgid bits are cleared (extended attributes, file capabilities
//! among them, are never copied), and files belong to `owner` unless `archive` keeps the
//! container's ownership.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{openat, openat2, AtFlags, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{fchown, fchownat, symlinkat, unlinkat, Gid, Uid, UnlinkatFlags};

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("cannot {what} {path}: {source}")]
    Io { what: &'static str, path: String, source: std::io::Error },
    #[error("{0}")]
    Path(String),
}

/// A `map_err` for a failed syscall on `path`: says what was being done to it.
pub(super) fn errno(what: &'static str, path: impl AsRef<OsStr>) -> impl FnOnce(Errno) -> CopyError {
    let io = io(what, path);
    move |e| io(std::io::Error::from(e))
}

/// [`errno`] for an `std::io::Error`. The path is turned into text only on failure.
pub(super) fn io(what: &'static str, path: impl AsRef<OsStr>) -> impl FnOnce(std::io::Error) -> CopyError {
    move |source| CopyError::Io { what, path: path.as_ref().to_string_lossy().into_owned(), source }
}

/// Which way the copy goes: what is kept of modes and owners depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    In,
    Out,
}

#[derive(Debug, Clone)]
pub struct CopyOptions {
    /// Keep owners (and, going in, setuid and setgid bits) as in the source.
    pub archive: bool,
    /// Who gets the files otherwise; `None` leaves them to the copying process.
    pub owner: Option<(u32, u32)>,
}

/// What a copy did not copy, for the user to read.
#[derive(Debug, Default)]
pub struct CopyReport {
    pub skipped: Vec<String>,
}

struct Copier<'a> {
    direction: Direction,
    opts: &'a CopyOptions,
    report: CopyReport,
    /// The container's root as the host sees it (the owner of its `/`): not 0 under
    /// `userns "auto"`, where kept owners are shifted by it.
    root_ids: (u32, u32),
}


const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY.union(OFlag::O_RDONLY).union(OFlag::O_CLOEXEC);

/// `path` inside the container's `root`, resolved in it.
fn open_in_root(root: BorrowedFd<'_>, path: &Path, flags: OFlag) -> Result<OwnedFd, Errno> {
    let how = OpenHow::new().flags(flags).resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
    openat2(root, path, how)
}

/// An entry's own parent and name: `/a/b` is (`/a`, `b`); the root has no name.
fn split(path: &Path) -> Result<(&Path, &OsStr), CopyError> {
    let name = path.file_name().ok_or_else(|| CopyError::Path(format!("{}: name a file or folder, not / or ..", path.display())))?;
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    Ok((parent, name))
}

impl Copier<'_> {
    fn mode_of(&self, st: &FileStat) -> Mode {
        let keep_special = self.direction == Direction::In && self.opts.archive;
        let mask = if keep_special { 0o7777 } else { 0o1777 };
        Mode::from_bits_truncate(st.st_mode & mask)
    }

    fn owner_of(&self, st: &FileStat) -> Option<(Uid, Gid)> {
        if self.opts.archive {
            // Going in, the source's ids are the container's: shifted as its root is.
            let (u, g) = match self.direction {
                Direction::In => (st.st_uid.saturating_add(self.root_ids.0), st.st_gid.saturating_add(self.root_ids.1)),
                Direction::Out => (st.st_uid, st.st_gid),
            };
            return Some((Uid::from_raw(u), Gid::from_raw(g)));
        }
        self.opts.owner.map(|(u, g)| (Uid::from_raw(u), Gid::from_raw(g)))
    }

    /// Owner first, then mode: chown clears setuid bits that a later chmod must not restore.
    fn finish(&self, fd: BorrowedFd<'_>, st: &FileStat, shown: &OsStr) -> Result<(), CopyError> {
        if let Some((u, g)) = self.owner_of(st) {
            fchown(fd, Some(u), Some(g)).map_err(errno("set the owner of", shown))?;
        }
        fchmod(fd, self.mode_of(st)).map_err(errno("set the mode of", shown))
    }

    fn copy(&mut self, src_dir: BorrowedFd<'_>, src: &OsStr, dst_dir: BorrowedFd<'_>, dst: &OsStr, shown: &OsStr) -> Result<(), CopyError> {
        let st = fstatat(src_dir, src, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno("read", shown))?;
        match SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) {
            SFlag::S_IFREG => self.copy_file(src_dir, src, dst_dir, dst, shown),
            SFlag::S_IFDIR => self.copy_dir(src_dir, src, dst_dir, dst, &st, shown),
            SFlag::S_IFLNK => self.copy_link(src_dir, src, dst_dir, dst, &st, shown),
            _ => {
                self.report.skipped.push(format!("{} (not a file, folder or symlink)", shown.to_string_lossy()));
                Ok(())
            }
        }
    }

    fn copy_file(&mut self, src_dir: BorrowedFd<'_>, src: &OsStr, dst_dir: BorrowedFd<'_>, dst: &OsStr, shown: &OsStr) -> Result<(), CopyError> {
        // O_NONBLOCK: a FIFO swapped in after the stat must not hang the open.
        let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
        let from = openat(src_dir, src, flags, Mode::empty()).map_err(errno("open", shown))?;
        let st = fstat(&from).map_err(errno("read", shown))?;
        if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) != SFlag::S_IFREG {
            self.report.skipped.push(format!("{} (changed while it was copied)", shown.to_string_lossy()));
            return Ok(());
        }
        let to = create_file(dst_dir, dst).map_err(errno("create", dst))?;
        let (mut from, mut to) = (File::from(from), File::from(to));
        // Streams through the kernel (copy_file_range or sendfile), never the whole file in memory.
        std::io::copy(&mut from, &mut to).map_err(io("copy", shown))?;
        self.finish(to.as_fd(), &st, shown)
    }

    fn copy_dir(&mut self, src_dir: BorrowedFd<'_>, src: &OsStr, dst_dir: BorrowedFd<'_>, dst: &OsStr, st: &FileStat, shown: &OsStr) -> Result<(), CopyError> {
        let from = openat(src_dir, src, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty()).map_err(errno("open", shown))?;
        match mkdirat(dst_dir, dst, Mode::from_bits_truncate(0o700)) {
            Ok(()) | Err(Errno::EEXIST) => {}
            Err(e) => return Err(errno("create the folder", dst)(e)),
        }
        // An existing symlink here fails (O_NOFOLLOW): the copy never writes through one.
        let to = openat(dst_dir, dst, DIR_FLAGS | OFlag::O_NOFOLLOW, Mode::empty()).map_err(errno("open the folder", dst))?;
        let names: Vec<OsString> = {
            let mut d = nix::dir::Dir::from_fd(from.try_clone().map_err(io("read", shown))?)
                .map_err(errno("read", shown))?;
            d.iter()
                .filter_map(Result::ok)
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| n != "." && n != "..")
                .collect()
        };
        for name in names {
            let mut child = shown.to_os_string();
            child.push("/");
            child.push(&name);
            self.copy(from.as_fd(), &name, to.as_fd(), &name, &child)?;
        }
        self.finish(to.as_fd(), st, shown)
    }

    fn copy_link(&mut self, src_dir: BorrowedFd<'_>, src: &OsStr, dst_dir: BorrowedFd<'_>, dst: &OsStr, st: &FileStat, shown: &OsStr) -> Result<(), CopyError> {
        let target = nix::fcntl::readlinkat(src_dir, src).map_err(errno("read the link", shown))?;
        match unlinkat(dst_dir, dst, UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(errno("replace", dst)(e)),
        }
        symlinkat(target.as_os_str(), dst_dir, dst).map_err(errno("create the link", dst))?;
        if let Some((u, g)) = self.owner_of(st) {
            fchownat(dst_dir, dst, Some(u), Some(g), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno("set the owner of", dst))?;
        }
        Ok(())
    }
}

/// A new regular file `name` in `dir`, truncating a file that is there; a symlink there is
/// replaced, never followed.
fn create_file(dir: BorrowedFd<'_>, name: &OsStr) -> Result<OwnedFd, Errno> {
    let flags = OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let mode = Mode::from_bits_truncate(0o600);
    match openat(dir, name, flags | OFlag::O_TRUNC | OFlag::O_NONBLOCK, mode) {
        Ok(fd) => {
            // Only a regular file may be written: not a FIFO or device that was there.
            let st = fstat(&fd)?;
            if SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits()) == SFlag::S_IFREG {
                return Ok(fd);
            }
            drop(fd);
            unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?;
        }
        Err(Errno::ELOOP) => unlinkat(dir, name, UnlinkatFlags::NoRemoveDir)?,
        Err(e) => return Err(e),
    }
    openat(dir, name, flags | OFlag::O_EXCL, mode)
}

fn host_dir(path: &Path) -> Result<OwnedFd, CopyError> {
    nix::fcntl::open(path, DIR_FLAGS, Mode::empty()).map_err(errno("open the folder", path))
}

/// Copies the host's `src` into the container whose root is `root`, to `dest` (an absolute
/// path inside it). As `cp`: into `dest` when it is a folder, else as `dest`.
pub fn copy_in(root: BorrowedFd<'_>, src: &Path, dest: &Path, opts: &CopyOptions) -> Result<CopyReport, CopyError> {
    let (src_parent, src_name) = split(src)?;
    let src_dir = host_dir(src_parent)?;
    let (dst_dir, dst_name) = match open_in_root(root, dest, DIR_FLAGS) {
        Ok(d) => (d, src_name.to_os_string()),
        Err(Errno::ENOENT | Errno::ENOTDIR) => {
            let (parent, name) = split(dest)?;
            let d = open_in_root(root, parent, DIR_FLAGS).map_err(errno("open the container's folder", parent))?;
            (d, name.to_os_string())
        }
        Err(e) => return Err(errno("open the container's", dest)(e)),
    };
    let st = fstat(root).map_err(errno("read the owner of the container's", "/"))?;
    let root_ids = (st.st_uid, st.st_gid);
    let _as_root = crate::sys::userns::FilesAs::owner(root_ids).map_err(|e| errno("make files as the container's root", "/")(Errno::from_raw(e)))?;
    let mut c = Copier { direction: Direction::In, opts, report: CopyReport::default(), root_ids };
    c.copy(src_dir.as_fd(), src_name, dst_dir.as_fd(), &dst_name, src.as_os_str())?;
    Ok(c.report)
}

/// Copies `src` (an absolute path inside the container whose root is `root`) to the host's
/// `dest`. As `cp`: into `dest` when it is a folder, else as `dest`.
pub fn copy_out(root: BorrowedFd<'_>, src: &Path, dest: &Path, opts: &CopyOptions) -> Result<CopyReport, CopyError> {
    let (src_parent, src_name) = split(src)?;
    let src_dir = open_in_root(root, src_parent, DIR_FLAGS).map_err(errno("open the container's folder", src_parent))?;
    let (dst_dir, dst_name) = if dest.is_dir() {
        (host_dir(dest)?, src_name.to_os_string())
    } else {
        let (parent, name) = split(dest)?;
        (host_dir(parent)?, name.to_os_string())
    };
    let mut c = Copier { direction: Direction::Out, opts, report: CopyReport::default(), root_ids: (0, 0) };
    c.copy(src_dir.as_fd(), src_name, dst_dir.as_fd(), &dst_name, src.as_os_str())?;
    Ok(c.report)
}
