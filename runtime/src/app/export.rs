//! `tfctl export`: a running container's root filesystem as a tar archive, streamed.
//!
//! Walked from the container's root descriptor as `cp` walks it: every entry reached relative
//! to a folder descriptor already held, opened O_NOFOLLOW and checked after the open, so a
//! container that swaps a folder for a symlink mid-walk cannot make tfctl read a host file.
//! The walk stays on the root's filesystem (as `tar --one-file-system`): /proc, /sys, /dev,
//! volumes and bind mounts appear as empty folders, and files mounted on their own (every
//! secret is one) are left out, so no secret is ever written to the archive. Symlinks are archived as links; device nodes and FIFOs as headers;
//! sockets are skipped.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fstat, fstatat, FileStat, Mode, SFlag};

use super::copy::{errno, io, CopyError};

const DIR_FLAGS: OFlag = OFlag::O_DIRECTORY.union(OFlag::O_RDONLY).union(OFlag::O_CLOEXEC).union(OFlag::O_NOFOLLOW);

/// What an export wrote.
#[derive(Debug, Default)]
pub struct ExportReport {
    pub entries: u64,
    /// Mount points whose content was left out.
    pub other_filesystems: Vec<String>,
    pub skipped: Vec<String>,
}

struct Exporter<W: Write> {
    tar: tar::Builder<W>,
    dev: u64,
    report: ExportReport,
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

/// A header carrying `st`'s mode, owner and time.
fn header(st: &FileStat, entry: tar::EntryType, size: u64) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(entry);
    h.set_mode(st.st_mode & 0o7777);
    h.set_uid(u64::from(st.st_uid));
    h.set_gid(u64::from(st.st_gid));
    h.set_mtime(st.st_mtime.max(0) as u64);
    h.set_size(size);
    h
}

/// `inner` read up to `len` bytes, zero-padded if the file shrank while it was read: the
/// archive must stay well-formed whatever the container does meanwhile.
struct Exactly<R> {
    inner: R,
    left: u64,
}

impl<R: Read> Read for Exactly<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

impl<W: Write> Exporter<W> {
    fn entry(&mut self, dir: BorrowedFd<'_>, name: &OsStr, path: &OsStr) -> Result<(), CopyError> {
        let st = fstatat(dir, name, AtFlags::AT_SYMLINK_NOFOLLOW).map_err(errno("read", path))?;
        let shown = || path.to_string_lossy().into_owned();
        // A file mounted from elsewhere (a secret is a mount of one file of its tmpfs, a bind
        // of a host file) is not the container's filesystem: left out, as mounted folders are.
        if st.st_dev != self.dev && kind(&st) != SFlag::S_IFDIR {
            self.report.other_filesystems.push(format!("/{}", shown()));
            return Ok(());
        }
        match kind(&st) {
            SFlag::S_IFDIR => self.dir(dir, name, path),
            SFlag::S_IFREG => {
                // O_NONBLOCK: a FIFO swapped in after the stat must not hang the open.
                let fd = openat(dir, name, OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC, Mode::empty()).map_err(errno("open", path))?;
                let st = fstat(&fd).map_err(errno("read", path))?;
                if kind(&st) != SFlag::S_IFREG || st.st_dev != self.dev {
                    self.report.skipped.push(format!("{} (changed while it was read)", shown()));
                    return Ok(());
                }
                let size = st.st_size.max(0) as u64;
                let mut h = header(&st, tar::EntryType::Regular, size);
                let data = Exactly { inner: File::from(fd), left: size };
                self.tar.append_data(&mut h, path, data).map_err(io("write", path))?;
                self.report.entries += 1;
                Ok(())
            }
            SFlag::S_IFLNK => {
                let target = nix::fcntl::readlinkat(dir, name).map_err(errno("read the link", path))?;
                let mut h = header(&st, tar::EntryType::Symlink, 0);
                self.tar.append_link(&mut h, path, &target).map_err(io("write", path))?;
                self.report.entries += 1;
                Ok(())
            }
            SFlag::S_IFCHR | SFlag::S_IFBLK | SFlag::S_IFIFO => {
                let entry = match kind(&st) {
                    SFlag::S_IFCHR => tar::EntryType::Char,
                    SFlag::S_IFBLK => tar::EntryType::Block,
                    _ => tar::EntryType::Fifo,
                };
                let mut h = header(&st, entry, 0);
                let (major, minor) = (libc::major(st.st_rdev), libc::minor(st.st_rdev));
                h.set_device_major(major).map_err(io("write", path))?;
                h.set_device_minor(minor).map_err(io("write", path))?;
                self.tar.append_data(&mut h, path, std::io::empty()).map_err(io("write", path))?;
                self.report.entries += 1;
                Ok(())
            }
            _ => {
                self.report.skipped.push(format!("{} (a socket)", shown()));
                Ok(())
            }
        }
    }

    fn dir(&mut self, parent: BorrowedFd<'_>, name: &OsStr, path: &OsStr) -> Result<(), CopyError> {
        let fd = openat(parent, name, DIR_FLAGS, Mode::empty()).map_err(errno("open", path))?;
        self.walk(fd, path)
    }

    /// Archives the folder `fd` as `path` (`.` for the root) and, on the root's filesystem,
    /// everything in it.
    fn walk(&mut self, fd: OwnedFd, path: &OsStr) -> Result<(), CopyError> {
        let st = fstat(&fd).map_err(errno("read", path))?;
        if path != "." {
            let mut h = header(&st, tar::EntryType::Directory, 0);
            let mut shown = path.to_os_string();
            shown.push("/");
            self.tar.append_data(&mut h, &shown, std::io::empty()).map_err(io("write", path))?;
            self.report.entries += 1;
        }
        if st.st_dev != self.dev {
            self.report.other_filesystems.push(format!("/{}", path.to_string_lossy()));
            return Ok(());
        }
        let names: Vec<OsString> = {
            let dup = fd.try_clone().map_err(io("read", path))?;
            let mut d = nix::dir::Dir::from_fd(dup).map_err(errno("read", path))?;
            let mut names: Vec<OsString> = d
                .iter()
                .filter_map(Result::ok)
                .map(|e| OsStr::from_bytes(e.file_name().to_bytes()).to_os_string())
                .filter(|n| n != "." && n != "..")
                .collect();
            names.sort();
            names
        };
        for name in names {
            let child: OsString = if path == "." { name.clone() } else { PathBuf::from(path).join(&name).into_os_string() };
            self.entry(fd.as_fd(), &name, &child)?;
        }
        Ok(())
    }
}

/// Writes the filesystem under the container's `root` (a directory descriptor) to `out` as tar.
pub fn export(root: BorrowedFd<'_>, out: impl Write) -> Result<ExportReport, CopyError> {
    let fd = openat(root, ".", OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC, Mode::empty()).map_err(errno("open", OsStr::new("/")))?;
    let dev = fstat(&fd).map_err(errno("read", OsStr::new("/")))?.st_dev;
    let mut tar = tar::Builder::new(out);
    tar.follow_symlinks(false);
    let mut e = Exporter { tar, dev, report: ExportReport::default() };
    e.walk(fd, OsStr::new("."))?;
    let Exporter { tar, report, .. } = e;
    tar.into_inner().map_err(io("finish", OsStr::new("the archive")))?.flush().map_err(io("finish", OsStr::new("the archive")))?;
    Ok(report)
}
