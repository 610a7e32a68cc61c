//! Unpacking one untrusted layer tarball into its own directory.
//!
//! Every path is resolved by descriptor inside the layer directory (openat2 with
//! `RESOLVE_IN_ROOT`), so `..`, absolute paths and symlinks planted by earlier entries all land
//! inside the layer, the way containerd confines them. The final component of an entry is always
//! created or changed relative to its (already confined) parent directory descriptor and never
//! followed. OCI whiteouts become overlayfs whiteouts (char 0:0) and opaque markers; those are
//! the only overlay metadata in a layer, since xattrs from the tarball are kept only in `user.*`
//! (minus `user.overlay.*`) and `security.capability`.

use std::ffi::OsStr;
use std::io::{self, BufRead, BufReader, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;

use rustix::fs::{self as rfs, AtFlags, FileType, Mode, OFlags, ResolveFlags, Timespec, Timestamps};
use rustix::io::Errno;
use sha2::{Digest as _, Sha256};

/// Why a layer could not be unpacked. Paths are the entry's path inside the layer.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("layer is not a readable tar stream (gzip, zstd or uncompressed): {0}")]
    Read(#[source] io::Error),
    #[error("layer entry {path:?}: cannot {op}: {source}")]
    Entry {
        path: String,
        op: &'static str,
        #[source]
        source: io::Error,
    },
    #[error("layer entry {path:?} has unsupported type {kind}")]
    UnsupportedType { path: String, kind: String },
    #[error("layer entry {path:?} is an invalid whiteout (it names {name:?}, which is not a file in its directory)")]
    InvalidWhiteout { path: String, name: String },
    #[error("layer entry {path:?} is a character device 0:0, which overlayfs would take for a whiteout; deletions in images must be written as .wh. files")]
    RawWhiteout { path: String },
    #[error("the {what} unpacks to more than {limit} bytes, the host's limit (`max-{what}-size` in tfctl-config(5)): nothing was stored; raise the limit there if you trust this image")]
    TooLarge { what: &'static str, limit: u64 },
    #[error("layer entry {path:?} is a hard link to {target:?}, which is not a file earlier in the same layer: {source}")]
    HardLink {
        path: String,
        target: String,
        #[source]
        source: io::Error,
    },
}

impl UnpackError {
    /// Whether the host's storage failed (disk full, quota, I/O error) rather than the layer
    /// being bad: the user's remedy is on the host, not in the image.
    pub fn is_storage(&self) -> bool {
        let source = match self {
            UnpackError::Entry { source, .. } | UnpackError::HardLink { source, .. } => source,
            _ => return false,
        };
        matches!(source.raw_os_error(), Some(libc::ENOSPC | libc::EDQUOT | libc::EIO | libc::EROFS))
    }
}

/// How much one layer may unpack to, and the budget it shares with the other layers of the same
/// image: a small layer must not fill the host's disk (a gzip stream of zeros expands ~1000x).
/// Every entry costs at least a tar block, so a flood of empty files counts too.
#[derive(Debug, Clone)]
pub struct UnpackLimit {
    pub layer: u64,
    pub image: u64,
    image_left: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl UnpackLimit {
    /// A fresh budget for one image's layers.
    pub fn new(layer: u64, image: u64) -> UnpackLimit {
        UnpackLimit { layer, image, image_left: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(image)) }
    }

    pub fn unlimited() -> UnpackLimit {
        UnpackLimit::new(u64::MAX, u64::MAX)
    }
}

/// What one layer has used of its limit.
struct Meter<'a> {
    limit: &'a UnpackLimit,
    used: u64,
}

impl Meter<'_> {
    /// Bytes the layer may still write.
    fn room(&self) -> u64 {
        (self.limit.layer - self.used).min(self.limit.image_left.load(std::sync::atomic::Ordering::Relaxed))
    }

    fn charge(&mut self, n: u64) -> Result<(), UnpackError> {
        if n > self.limit.layer - self.used {
            return Err(UnpackError::TooLarge { what: "layer", limit: self.limit.layer });
        }
        use std::sync::atomic::Ordering;
        self.limit
            .image_left
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| left.checked_sub(n))
            .map_err(|_| UnpackError::TooLarge { what: "image", limit: self.limit.image })?;
        self.used += n;
        Ok(())
    }
}

/// The bytes one tar header takes: what an entry without content costs.
const ENTRY_COST: u64 = 512;

const WHITEOUT_PREFIX: &[u8] = b".wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";
const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Unpacks the layer stream `reader` (gzip, zstd or plain tar, detected from its first bytes)
/// into the empty directory `root`, and returns the layer's diff_id (`sha256:` of the
/// uncompressed tar stream). On error the directory holds a partial result: callers unpack
/// into a temporary directory and discard it.
pub fn unpack_layer<R: Read>(reader: R, root: BorrowedFd<'_>) -> Result<String, UnpackError> {
    unpack_layer_within(reader, root, &UnpackLimit::unlimited())
}

/// [`unpack_layer`], failing with [`UnpackError::TooLarge`] once the layer's content passes
/// `limit`.
pub fn unpack_layer_within<R: Read>(reader: R, root: BorrowedFd<'_>, limit: &UnpackLimit) -> Result<String, UnpackError> {
    let mut meter = Meter { limit, used: 0 };
    let mut input = BufReader::with_capacity(256 * 1024, reader);
    let magic = input.fill_buf().map_err(UnpackError::Read)?;
    let plain: Box<dyn Read> = if magic.starts_with(&[0x1f, 0x8b]) {
        Box::new(flate2::read::MultiGzDecoder::new(input))
    } else if magic.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(zstd::stream::read::Decoder::with_buffer(input).map_err(UnpackError::Read)?)
    } else {
        Box::new(input)
    };
    let mut hashing = HashingReader { inner: plain, hasher: Sha256::new() };
    {
        let mut archive = tar::Archive::new(&mut hashing);
        let mut dir_times = Vec::new();
        for entry in archive.entries().map_err(UnpackError::Read)? {
            let mut entry = entry.map_err(UnpackError::Read)?;
            meter.charge(ENTRY_COST)?;
            apply_entry(&mut entry, root, &mut dir_times, &mut meter)?;
        }
        // Directory mtimes last: creating their children changed them.
        for (components, mtime) in dir_times.iter().rev() {
            if let Ok(fd) = open_in_root(root, components, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW) {
                let _ = rfs::futimens(&fd, &times(*mtime));
            }
        }
    }
    // The diff_id covers the whole stream, including the zero blocks after the last entry.
    io::copy(&mut hashing, &mut io::sink()).map_err(UnpackError::Read)?;
    Ok(format!("sha256:{}", hex::encode(hashing.hasher.finalize())))
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// An entry's path as components inside the layer root: `.` and empty parts dropped, a leading
/// `/` ignored, `..` clamped at the root (as a chroot would), so the result never escapes.
fn clean_components(path: &[u8]) -> Vec<Vec<u8>> {
    let mut out: Vec<Vec<u8>> = Vec::new();
    for part in path.split(|b| *b == b'/') {
        match part {
            b"" | b"." => {}
            b".." => {
                out.pop();
            }
            p => out.push(p.to_vec()),
        }
    }
    out
}

fn join(components: &[Vec<u8>]) -> Vec<u8> {
    if components.is_empty() {
        return b".".to_vec();
    }
    components.join(&b'/')
}

fn display(components: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&join(components)).into_owned()
}

/// Opens `components` below `root`, resolving every symlink as if `root` were `/`.
fn open_in_root(root: BorrowedFd<'_>, components: &[Vec<u8>], flags: OFlags) -> io::Result<OwnedFd> {
    let path = join(components);
    let path = OsStr::from_bytes(&path);
    loop {
        match rfs::openat2(
            root,
            path,
            flags | OFlags::CLOEXEC,
            Mode::empty(),
            ResolveFlags::IN_ROOT | ResolveFlags::NO_MAGICLINKS,
        ) {
            // The kernel asks for a retry when a rename raced with the lookup.
            Err(Errno::AGAIN) | Err(Errno::INTR) => continue,
            other => return other.map_err(io::Error::from),
        }
    }
}

/// Opens the directory `components`, creating missing directories (mode 0755, root-owned, as
/// tar implementations do for implied parents) one confined step at a time.
fn ensure_dir(root: BorrowedFd<'_>, components: &[Vec<u8>]) -> io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY;
    match open_in_root(root, components, flags) {
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) && !components.is_empty() => {
            let (last, parent) = components.split_last().expect("not empty");
            let parent_fd = ensure_dir(root, parent)?;
            match rfs::mkdirat(&parent_fd, OsStr::from_bytes(last), Mode::from_raw_mode(0o755)) {
                Ok(()) | Err(Errno::EXIST) => {}
                Err(e) => return Err(e.into()),
            }
            open_in_root(root, components, flags)
        }
        other => other,
    }
}

fn times(mtime: u64) -> Timestamps {
    let t = Timespec { tv_sec: mtime.min(i64::MAX as u64) as i64, tv_nsec: 0 };
    Timestamps { last_access: t, last_modification: t }
}

/// Removes whatever is at `name` in `dir`, recursively for directories, never following links.
fn remove_existing(dir: BorrowedFd<'_>, name: &OsStr) -> io::Result<()> {
    match rfs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(e.into()),
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Directory => {
            let sub = rfs::openat(dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())?;
            let mut names = Vec::new();
            for item in rfs::Dir::read_from(&sub)? {
                let item = item?;
                let n = item.file_name().to_bytes();
                if n != b"." && n != b".." {
                    names.push(n.to_vec());
                }
            }
            for n in names {
                remove_existing(sub.as_fd(), OsStr::from_bytes(&n))?;
            }
            rfs::unlinkat(dir, name, AtFlags::REMOVEDIR).map_err(Into::into)
        }
        Ok(_) => rfs::unlinkat(dir, name, AtFlags::empty()).map_err(Into::into),
    }
}

/// Sets owner, then mode (chown clears setuid bits), then the kept xattrs on an open file.
fn set_metadata(fd: BorrowedFd<'_>, uid: u32, gid: u32, mode: u32, xattrs: &[(String, Vec<u8>)]) -> io::Result<()> {
    let (u, g) = (rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid));
    rfs::fchown(fd, Some(u), Some(g))?;
    rfs::fchmod(fd, Mode::from_raw_mode(mode & 0o7777))?;
    for (name, value) in xattrs {
        rfs::fsetxattr(fd, name.as_str(), value, rfs::XattrFlags::empty())?;
    }
    Ok(())
}

/// The xattrs a layer may carry: `user.*` (except overlayfs's own `user.overlay.*`) and
/// `security.capability` (file capabilities, e.g. ping's cap_net_raw).
fn kept_xattrs<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    if let Some(exts) = entry.pax_extensions()? {
        for ext in exts {
            let ext = ext?;
            let Ok(key) = ext.key() else { continue };
            let Some(name) = key.strip_prefix("SCHILY.xattr.") else { continue };
            let keep = (name.starts_with("user.") && !name.starts_with("user.overlay.")) || name == "security.capability";
            if keep {
                out.push((name.to_string(), ext.value_bytes().to_vec()));
            }
        }
    }
    Ok(out)
}

fn apply_entry<R: Read>(
    entry: &mut tar::Entry<'_, R>,
    root: BorrowedFd<'_>,
    dir_times: &mut Vec<(Vec<Vec<u8>>, u64)>,
    meter: &mut Meter<'_>,
) -> Result<(), UnpackError> {
    let raw_path = entry.path_bytes().into_owned();
    let components = clean_components(&raw_path);
    let path = display(&components);
    let err = |op: &'static str| {
        let path = path.clone();
        move |source: io::Error| UnpackError::Entry { path, op, source }
    };
    let header = entry.header();
    let kind = header.entry_type();
    let mode = header.mode().map_err(err("read mode"))?;
    let id = |v: io::Result<u64>, what: &'static str| {
        v.and_then(|n| {
            u32::try_from(n).ok().filter(|n| *n != u32::MAX).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("{what} {n} out of range")))
        })
    };
    let uid = id(header.uid(), "owner").map_err(err("read the owner"))?;
    let gid = id(header.gid(), "group").map_err(err("read the group"))?;
    let mtime = header.mtime().unwrap_or(0);

    use tar::EntryType as T;
    if matches!(kind, T::XGlobalHeader | T::XHeader | T::GNULongName | T::GNULongLink) {
        return Ok(());
    }

    let Some((name, parent)) = components.split_last() else {
        // The layer root itself ("./"): only a directory entry makes sense here.
        if kind == T::Directory {
            let xattrs = kept_xattrs(entry).map_err(err("read xattrs"))?;
            set_metadata(root, uid, gid, mode, &xattrs).map_err(err("set metadata on the layer root"))?;
            dir_times.push((Vec::new(), mtime));
            return Ok(());
        }
        return Err(UnpackError::UnsupportedType { path: raw_display(&raw_path), kind: format!("{kind:?} at the layer root") });
    };

    // Whiteouts: translated into overlayfs's own representation.
    if name.as_slice() == OPAQUE_MARKER {
        let dir = ensure_dir(root, parent).map_err(err("open the directory to mark opaque"))?;
        rfs::fsetxattr(&dir, OPAQUE_XATTR, b"y", rfs::XattrFlags::empty())
            .map_err(|e| err("set the opaque marker")(e.into()))?;
        return Ok(());
    }
    if name.starts_with(b".wh..wh.") {
        return Ok(()); // AUFS bookkeeping (.wh..wh.plnk, .wh..wh.aufs): meaningless here.
    }
    if let Some(hidden) = name.strip_prefix(WHITEOUT_PREFIX) {
        if hidden.is_empty() || hidden == b"." || hidden == b".." || hidden.contains(&b'/') {
            return Err(UnpackError::InvalidWhiteout { path, name: String::from_utf8_lossy(hidden).into_owned() });
        }
        let dir = ensure_dir(root, parent).map_err(err("open the whiteout's directory"))?;
        let hidden = OsStr::from_bytes(hidden);
        remove_existing(dir.as_fd(), hidden).map_err(err("replace an earlier entry"))?;
        rfs::mknodat(&dir, hidden, FileType::CharacterDevice, Mode::empty(), rfs::makedev(0, 0))
            .map_err(|e| err("create the whiteout")(e.into()))?;
        return Ok(());
    }

    let dir = ensure_dir(root, parent).map_err(err("open the parent directory"))?;
    let name = OsStr::from_bytes(name);
    match kind {
        T::Directory => {
            let existing = rfs::statat(&dir, name, AtFlags::SYMLINK_NOFOLLOW).ok();
            if !existing.is_some_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory) {
                remove_existing(dir.as_fd(), name).map_err(err("replace an earlier entry"))?;
                rfs::mkdirat(&dir, name, Mode::from_raw_mode(0o700)).map_err(|e| err("create the directory")(e.into()))?;
            }
            let fd = rfs::openat(&dir, name, OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::empty())
                .map_err(|e| err("open the directory")(e.into()))?;
            let xattrs = kept_xattrs(entry).map_err(err("read xattrs"))?;
            set_metadata(fd.as_fd(), uid, gid, mode, &xattrs).map_err(err("set metadata"))?;
            dir_times.push((components.clone(), mtime));
        }
        // GNU sparse entries are refused (as unsupported types): a few header bytes could
        // declare terabytes of holes. Image builders do not write them.
        T::Regular | T::Continuous => {
            let xattrs = kept_xattrs(entry).map_err(err("read xattrs"))?;
            remove_existing(dir.as_fd(), name).map_err(err("replace an earlier entry"))?;
            let fd = rfs::openat(&dir, name, OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC, Mode::from_raw_mode(0o600))
                .map_err(|e| err("create the file")(e.into()))?;
            let mut file = std::fs::File::from(fd);
            // One byte past the room left tells a file that does not fit from one that just does.
            let room = meter.room();
            let written = io::copy(&mut Read::take(&mut *entry, room.saturating_add(1)), &mut file).map_err(err("write the file"))?;
            meter.charge(written)?;
            set_metadata(file.as_fd(), uid, gid, mode, &xattrs).map_err(err("set metadata"))?;
            rfs::futimens(&file, &times(mtime)).map_err(|e| err("set the mtime")(e.into()))?;
        }
        T::Symlink => {
            let target = entry.link_name_bytes().ok_or_else(|| err("read the link target")(io::ErrorKind::InvalidData.into()))?;
            remove_existing(dir.as_fd(), name).map_err(err("replace an earlier entry"))?;
            // The target is stored verbatim: it is only ever resolved inside a root (this
            // layer's while unpacking, the container's at run time), so `/run` stays `/run`.
            rfs::symlinkat(OsStr::from_bytes(&target), &dir, name).map_err(|e| err("create the symlink")(e.into()))?;
            chown_nofollow(dir.as_fd(), name, uid, gid).map_err(err("set the owner"))?;
            let _ = rfs::utimensat(&dir, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
        }
        T::Link => {
            let target = entry.link_name_bytes().ok_or_else(|| err("read the link target")(io::ErrorKind::InvalidData.into()))?;
            let target_components = clean_components(&target);
            let hard_err = |source: io::Error| UnpackError::HardLink { path: path.clone(), target: display(&target_components), source };
            // O_PATH|O_NOFOLLOW opens the link target itself, confined to the layer.
            let src = open_in_root(root, &target_components, OFlags::PATH | OFlags::NOFOLLOW).map_err(hard_err)?;
            let st = rfs::fstat(&src).map_err(|e| hard_err(e.into()))?;
            if FileType::from_raw_mode(st.st_mode) == FileType::Directory {
                return Err(hard_err(io::Error::from_raw_os_error(libc::EISDIR)));
            }
            if target_components == components {
                return Ok(()); // A link to itself: nothing to do.
            }
            remove_existing(dir.as_fd(), name).map_err(err("replace an earlier entry"))?;
            rfs::linkat(&src, "", &dir, name, AtFlags::EMPTY_PATH).map_err(|e| hard_err(e.into()))?;
        }
        T::Char | T::Block | T::Fifo => {
            let major = header.device_major().map_err(err("read the device number"))?.unwrap_or(0);
            let minor = header.device_minor().map_err(err("read the device number"))?.unwrap_or(0);
            let ft = match kind {
                T::Char => FileType::CharacterDevice,
                T::Block => FileType::BlockDevice,
                _ => FileType::Fifo,
            };
            if ft == FileType::CharacterDevice && major == 0 && minor == 0 {
                return Err(UnpackError::RawWhiteout { path });
            }
            remove_existing(dir.as_fd(), name).map_err(err("replace an earlier entry"))?;
            rfs::mknodat(&dir, name, ft, Mode::from_raw_mode(0o600), rfs::makedev(major, minor))
                .map_err(|e| err("create the node")(e.into()))?;
            // Opening a device or fifo has side effects, so owner and mode are set by name:
            // `name` is one component in a confined directory, and mknodat just made it a node
            // (not a symlink), in a temporary layer directory that only this unpacker writes.
            chown_nofollow(dir.as_fd(), name, uid, gid).map_err(err("set the owner"))?;
            rfs::chmodat(&dir, name, Mode::from_raw_mode(mode & 0o7777), AtFlags::empty())
                .map_err(|e| err("set the mode")(e.into()))?;
            let _ = rfs::utimensat(&dir, name, &times(mtime), AtFlags::SYMLINK_NOFOLLOW);
        }
        other => {
            return Err(UnpackError::UnsupportedType { path, kind: format!("{other:?}") });
        }
    }
    Ok(())
}

fn chown_nofollow(dir: BorrowedFd<'_>, name: &OsStr, uid: u32, gid: u32) -> io::Result<()> {
    let (u, g) = (rfs::Uid::from_raw(uid), rfs::Gid::from_raw(gid));
    rfs::chownat(dir, name, Some(u), Some(g), AtFlags::SYMLINK_NOFOLLOW).map_err(Into::into)
}

fn raw_display(p: &[u8]) -> String {
    String::from_utf8_lossy(p).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_never_leave_the_root() {
        let c = |p: &str| display(&clean_components(p.as_bytes()));
        assert_eq!(c("../../etc/passwd"), "etc/passwd");
        assert_eq!(c("/abs/./x//y/"), "abs/x/y");
        assert_eq!(c("a/../../b"), "b");
        assert_eq!(c("./"), ".");
    }

    /// A gzip layer holding one file of `size` zeros: a few KiB that unpack to `size`.
    fn zeros_layer(size: u64) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let mut tar = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_size(size);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, "zeros", io::repeat(0).take(size)).unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn unpack_with(layer: &[u8], limit: &UnpackLimit) -> Result<String, UnpackError> {
        let dir = tempfile::tempdir().unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        unpack_layer_within(layer, fd.as_fd(), limit)
    }

    /// The attack: 64 MiB of zeros in a ~64 KiB layer. A layer limit stops it; the image's budget
    /// stops the layers of one pull together; the control: within both limits it unpacks.
    #[test]
    fn a_small_layer_cannot_unpack_past_the_limits() {
        let bomb = zeros_layer(64 << 20);
        assert!(bomb.len() < 1 << 20, "the layer is {} bytes", bomb.len());
        let err = unpack_with(&bomb, &UnpackLimit::new(16 << 20, u64::MAX)).unwrap_err();
        assert!(matches!(err, UnpackError::TooLarge { what: "layer", limit } if limit == 16 << 20), "{err}");
        assert!(err.to_string().contains("max-layer-size"), "{err}");

        let layer = zeros_layer(10 << 20);
        let image = UnpackLimit::new(16 << 20, 16 << 20);
        unpack_with(&layer, &image).unwrap();
        let err = unpack_with(&layer, &image).unwrap_err();
        assert!(matches!(err, UnpackError::TooLarge { what: "image", .. }), "{err}");

        unpack_with(&bomb, &UnpackLimit::new(65 << 20, 65 << 20)).unwrap();
    }

    /// A full disk is the host's problem, not a malformed layer: told apart for the message.
    #[test]
    fn a_full_disk_is_a_storage_failure() {
        assert!(nix::unistd::geteuid().is_root(), "this test mounts a tmpfs: run it as root");
        let dir = tempfile::tempdir().unwrap();
        nix::mount::mount(Some("tmpfs"), dir.path(), Some("tmpfs"), nix::mount::MsFlags::empty(), Some("size=1m")).unwrap();
        let fd = std::fs::File::open(dir.path()).unwrap();
        let err = unpack_layer_within(&zeros_layer(4 << 20)[..], fd.as_fd(), &UnpackLimit::unlimited()).unwrap_err();
        drop(fd);
        nix::mount::umount2(dir.path(), nix::mount::MntFlags::MNT_DETACH).unwrap();
        assert!(err.is_storage(), "{err}");
    }
}
