//! The container's filesystem, built inside its new mount namespace by the cloned child: the
//! root (an overlay of image layers, or a prepared directory), the standard mounts, volumes,
//! pivot_root, masked and read-only paths.
//!
//! Every path inside the rootfs is resolved by descriptor with `openat2(RESOLVE_IN_ROOT)`, and
//! every mount is attached to such a descriptor with `move_mount`: a symlink planted in an image
//! (`/proc -> /`, `/dev -> /host/dev`) resolves inside the rootfs, never on the host.
//! Runs in the child: no allocation, only syscalls on precomputed data.

use crate::start::config::{DevNodeConfig, FileConfig, MountConfig, MountKind, OverlayConfig, RootConfig, RootKind};
use crate::start::step::{tmpfs_file_index, Failure, Step, StepExt};
use crate::sys::{self, SysResult, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use std::ffi::CStr;
use std::os::fd::RawFd;

const PATH_BUF: usize = 4096;

/// The size limit of a tmpfs the app file gives no size: half of the host's RAM, what the kernel
/// itself gives a tmpfs mounted without `size=`, written out so that no mount is ever made with
/// `size=0` (unlimited to tmpfs). Pages of a tmpfs also count against the container's memory limit.
pub fn default_tmpfs_size() -> u64 {
    // sysinfo(2) cannot fail given a valid buffer; a floor of 64 MiB keeps a limit either way.
    let total = nix::sys::sysinfo::sysinfo().map(|i| i.ram_total()).unwrap_or(0);
    (total / 2).max(64 << 20)
}

/// Opens `path` (a container path) under `root` without ever leaving it.
pub(crate) fn open_in_root(root: RawFd, path: &CStr, flags: libc::c_int) -> SysResult<RawFd> {
    // EAGAIN: a mount or rename anywhere on the host raced a lookup through `..` (the kernel
    // cannot then prove it stayed inside); openat2(2) asks the caller to try again.
    let mut tries = 0;
    loop {
        match sys::openat2(root, path, flags, 0, libc::RESOLVE_IN_ROOT | libc::RESOLVE_NO_MAGICLINKS) {
            Err(libc::EAGAIN) if tries < 64 => tries += 1,
            other => return other,
        }
    }
}

/// Copies `bytes` into `buf` as a C string.
fn c_in<'a>(buf: &'a mut [u8; PATH_BUF], bytes: &[u8]) -> SysResult<&'a CStr> {
    if bytes.len() >= PATH_BUF {
        return Err(libc::ENAMETOOLONG);
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    buf[bytes.len()] = 0;
    CStr::from_bytes_with_nul(&buf[..=bytes.len()]).map_err(|_| libc::EINVAL)
}

/// Opens `path` under `root` as O_PATH, creating missing components by descriptor: directories,
/// and for `dir == false` an empty regular file as the last component (a file bind target).
/// Public for the secrets test (runtime/tests/secrets_mount.rs), which mounts as the start does.
pub fn open_or_create(root: RawFd, path: &CStr, dir: bool) -> SysResult<RawFd> {
    match open_in_root(root, path, libc::O_PATH) {
        Err(libc::ENOENT) => {}
        other => return other,
    }
    let bytes = path.to_bytes();
    let mut prefix = [0u8; PATH_BUF];
    let mut name = [0u8; PATH_BUF];
    let mut start = 0;
    while start < bytes.len() {
        while start < bytes.len() && bytes[start] == b'/' {
            start += 1;
        }
        let end = bytes[start..].iter().position(|&b| b == b'/').map_or(bytes.len(), |i| start + i);
        if start == end {
            break;
        }
        let last = bytes[end..].iter().all(|&b| b == b'/');
        match open_in_root(root, c_in(&mut prefix, &bytes[..end])?, libc::O_PATH) {
            Ok(fd) if last => return Ok(fd),
            Ok(fd) => sys::close(fd),
            Err(libc::ENOENT) => {
                let parent_path = if start == 0 { &b"/"[..] } else { &bytes[..start] };
                let parent = open_in_root(root, c_in(&mut prefix, parent_path)?, libc::O_PATH | libc::O_DIRECTORY)?;
                let leaf = c_in(&mut name, &bytes[start..end])?;
                // A single component under a resolved directory: nothing to follow.
                let made = if last && !dir {
                    sys::openat2(parent, leaf, libc::O_CREAT | libc::O_EXCL | libc::O_WRONLY | libc::O_NOFOLLOW, 0o644, 0).map(sys::close)
                } else {
                    sys::mkdirat(parent, leaf, 0o755)
                };
                sys::close(parent);
                match made {
                    Ok(()) | Err(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                let fd = open_in_root(root, c_in(&mut prefix, &bytes[..end])?, libc::O_PATH)?;
                if last {
                    return Ok(fd);
                }
                sys::close(fd);
            }
            Err(e) => return Err(e),
        }
        start = end;
    }
    open_in_root(root, path, libc::O_PATH)
}

/// A new detached filesystem mount: fsopen, string/flag parameters, create, fsmount.
fn new_fs(fstype: &CStr, params: &[(&CStr, Option<&CStr>)], attrs: u64) -> SysResult<RawFd> {
    let ctx = sys::fsopen(fstype)?;
    let result = (|| {
        for (key, value) in params {
            sys::fsconfig(ctx, key, *value)?;
        }
        sys::fsconfig_create(ctx)?;
        sys::fsmount(ctx, attrs)
    })();
    sys::close(ctx);
    result
}

/// Mounts the container's root at its mountpoint; returns a descriptor of the root directory.
/// Under `userns`, `fs_ids` is the container's root as the host sees it: the overlay writes its
/// upper layer, and the rest of the start sequence the container's files, through mounts
/// idmapped to the container's namespace, where host root has no id; from the overlay on they
/// are made as that root (fsuid and fsgid, until the start sequence gives them back). A tmpfs
/// upper is made before, as host root: on disk, ids are the container's own.
pub(crate) fn mount_root(cfg: &RootConfig, userns: Option<RawFd>, fs_ids: Option<(libc::uid_t, libc::gid_t)>) -> Result<RawFd, Failure> {
    let as_container_root = || {
        if let Some((uid, gid)) = fs_ids {
            sys::setfsgid(gid);
            sys::setfsuid(uid);
        }
    };
    match &cfg.kind {
        RootKind::OverlayOnTmpfs { tmpfs_size, overlay: o } => {
            let tmp = new_fs(c"tmpfs", &[(c"size", Some(tmpfs_size)), (c"mode", Some(c"700"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV)
                .step(Step::RootfsUpper)?;
            for dir in [c"upper", c"work", c"root"] {
                sys::mkdirat(tmp, dir, 0o755).step(Step::RootfsUpper)?;
            }
            sys::move_mount_to_path(tmp, &cfg.mountpoint).step(Step::RootfsUpper)?;
            sys::close(tmp);
            as_container_root();
            overlay_as(o, userns)
        }
        RootKind::OverlayOnDirs { overlay: o } => {
            as_container_root();
            overlay_as(o, userns)
        }
        RootKind::Directory { source } if sys::mount_setattr_supported() => {
            let fd = sys::open_tree_path(source, true).step(Step::RootfsBind)?;
            sys::mount_setattr(fd, MOUNT_ATTR_NODEV, 0, true).step(Step::RootfsBind)?;
            sys::move_mount_to_path(fd, &cfg.mountpoint).step(Step::RootfsAttach)?;
            Ok(fd)
        }
        RootKind::Directory { source } => {
            // Before 5.12: the folder alone (no mount below it comes along without its nodev),
            // nodev by a remount once attached.
            let fd = sys::open_tree_path(source, false).step(Step::RootfsBind)?;
            sys::move_mount_to_path(fd, &cfg.mountpoint).step(Step::RootfsAttach)?;
            sys::remount_attached(fd, MOUNT_ATTR_NODEV).step(Step::RootfsBind)?;
            Ok(fd)
        }
    }
}

/// The link farm's size: a symlink whose target passes 127 bytes takes a page of its own.
const LINK_FARM_SIZE: &CStr = c"4194304";

/// Mounts the overlay at its target, its layers named by the links of a private tmpfs that is
/// the cwd meanwhile (see [`OverlayConfig`]); returns a descriptor of its root.
/// The cwd is the process's: a caller with other threads runs this on a thread of its own with
/// an unshared filesystem context (see [`crate::image::mount_overlay`]).
pub(crate) fn overlay(o: &OverlayConfig) -> Result<RawFd, Failure> {
    overlay_as(o, None)
}

/// [`overlay`], its layers idmapped with the user namespace `userns` when the config says so.
pub(crate) fn overlay_as(o: &OverlayConfig, userns: Option<RawFd>) -> Result<RawFd, Failure> {
    let farm = new_fs(c"tmpfs", &[(c"size", Some(LINK_FARM_SIZE)), (c"mode", Some(c"700"))], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
        .step(Step::OverlayLinks)?;
    let result = (|| {
        if o.idmap {
            // Mounts go onto folders of an attached mount (onto a detached one only since 6.15):
            // the farm is attached at the overlay's own target, in this private namespace, and
            // the overlay is mounted over it below.
            let ns = userns.ok_or(libc::EINVAL).step(Step::IdmapLayers)?;
            sys::move_mount_to_path(farm, &o.target).step(Step::IdmapLayers)?;
            for (name, dir) in &o.links {
                sys::mkdirat(farm, name, 0o700).step(Step::IdmapLayers)?;
                let clone = sys::open_tree_path(dir, false).step(Step::IdmapLayers)?;
                let placed = sys::mount_setattr_idmap(clone, ns).and_then(|()| {
                    let at = sys::openat2(farm, name, libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW, 0, libc::RESOLVE_BENEATH)?;
                    let moved = sys::move_mount_fd(clone, at);
                    sys::close(at);
                    moved
                });
                sys::close(clone);
                placed.step(Step::IdmapLayers)?;
            }
            for (name, target) in &o.aliases {
                sys::symlinkat(target, farm, name).step(Step::OverlayLinks)?;
            }
        } else {
            for (name, target) in &o.links {
                sys::symlinkat(target, farm, name).step(Step::OverlayLinks)?;
            }
        }
        sys::fchdir(farm).step(Step::OverlayLinks)?;
        match &o.legacy_data {
            Some(data) => {
                sys::mount(Some(c"overlay"), &o.target, Some(c"overlay"), libc::MS_NODEV, Some(data)).step(Step::RootfsOverlay)?;
                sys::openat2(libc::AT_FDCWD, &o.target, libc::O_PATH | libc::O_DIRECTORY, 0, 0).step(Step::RootfsAttach)
            }
            None => {
                let fd = new_overlay(o).step(Step::RootfsOverlay)?;
                sys::move_mount_to_path(fd, &o.target).step(Step::RootfsAttach)?;
                Ok(fd)
            }
        }
    })();
    // The farm goes with its last reference: the cwd leaves it, the descriptor closes.
    let _ = sys::chdir(c"/");
    sys::close(farm);
    result
}

fn new_overlay(o: &OverlayConfig) -> SysResult<RawFd> {
    let ctx = sys::fsopen(c"overlay")?;
    let result = (|| {
        for (name, _) in &o.links[..o.layers] {
            sys::fsconfig(ctx, c"lowerdir+", Some(name))?;
        }
        // Named "u" and "w" in the farm, as links or as aliases into an idmapped clone.
        if o.links.len() > o.layers {
            sys::fsconfig(ctx, c"upperdir", Some(c"u"))?;
            sys::fsconfig(ctx, c"workdir", Some(c"w"))?;
        }
        if o.volatile {
            sys::fsconfig(ctx, c"volatile", None)?;
        }
        sys::fsconfig_create(ctx)?;
        sys::fsmount(ctx, MOUNT_ATTR_NODEV)
    })();
    sys::close(ctx);
    result
}

/// One mount step: resolve (or create) its target under the root, make the mount, attach it.
/// Under `userns` (its namespace `userns`), tmpfs mounts are owned by the container's root
/// (`owner`: uid and gid as the host sees them), devpts gives terminals the mapped tty group
/// (`devpts_gid`), and named volumes are idmapped.
pub(crate) fn mount_step(
    root: RawFd,
    m: &MountConfig,
    index: usize,
    userns: Option<RawFd>,
    owner: Option<&(std::ffi::CString, std::ffi::CString)>,
    devpts_gid: &CStr,
) -> Result<(), Failure> {
    let dir = !matches!(m.kind, MountKind::Bind { source_is_dir: false, .. });
    let target = open_or_create(root, &m.target, dir).step_at(Step::MountTarget, index)?;
    // Before 5.12 (no mount_setattr): flags a detached mount could not get, set once attached.
    let setattr = sys::mount_setattr_supported();
    let mut remount = None;
    let mount = match &m.kind {
        MountKind::Proc => new_fs(c"proc", &[], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
        MountKind::Dev { nodes } => {
            // As the spec says and runc mounts it: 64 MiB (`size=` alone is bytes), strictatime.
            let fd = tmpfs(c"65536k", c"755", owner, MOUNT_ATTR_NOSUID | sys::MOUNT_ATTR_STRICTATIME).step_at(Step::Mount, index)?;
            make_dev(fd, nodes).step_at(Step::DevNodes, index)?;
            Ok(fd)
        }
        MountKind::DevPts => new_fs(
            c"devpts",
            &[(c"newinstance", None), (c"ptmxmode", Some(c"0666")), (c"mode", Some(c"0620")), (c"gid", Some(devpts_gid))],
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        ),
        MountKind::Mqueue => new_fs(c"mqueue", &[], MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
        MountKind::Sysfs { writable } => {
            let ro = if *writable { 0 } else { MOUNT_ATTR_RDONLY };
            new_fs(c"sysfs", &[], ro | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
        }
        // After the cgroup namespace was unshared: its root is the container's own cgroup.
        MountKind::Cgroup2 => new_fs(c"cgroup2", &[], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC),
        MountKind::Tmpfs { size, mode, attrs, files } => {
            let fd = tmpfs(size, mode, owner, attrs & !MOUNT_ATTR_RDONLY).step_at(Step::Mount, index)?;
            for (i, f) in files.iter().enumerate() {
                write_file(fd, f).step_at(Step::TmpfsFile, tmpfs_file_index(index, i))?;
            }
            if attrs & MOUNT_ATTR_RDONLY != 0 {
                if setattr {
                    sys::mount_setattr(fd, MOUNT_ATTR_RDONLY, 0, false).step_at(Step::Mount, index)?;
                } else {
                    remount = Some(*attrs);
                }
            }
            Ok(fd)
        }
        MountKind::Bind { source, recursive, attrs, idmap, .. } => {
            // Before 5.12 a remount sets flags on one mount only: a recursive bind then takes
            // the folder's own mount alone (mounts below it are not shown), never below it
            // without the flags.
            let recursive = *recursive && (setattr || *attrs == 0);
            let fd = sys::open_tree_path(source, recursive).step_at(Step::Mount, index)?;
            if *idmap {
                // A named volume: its files keep the container's own ids on disk.
                let ns = userns.ok_or(libc::EINVAL).step_at(Step::Mount, index)?;
                sys::mount_setattr_idmap(fd, ns).step_at(Step::Mount, index)?;
            }
            if *attrs != 0 {
                if setattr {
                    sys::mount_setattr(fd, *attrs, 0, recursive).step_at(Step::Mount, index)?;
                } else {
                    remount = Some(*attrs);
                }
            }
            Ok(fd)
        }
    }
    .step_at(Step::Mount, index)?;
    sys::move_mount_fd(mount, target).step_at(Step::Mount, index)?;
    if let Some(attrs) = remount {
        sys::remount_attached(mount, attrs).step_at(Step::Mount, index)?;
    }
    sys::close(mount);
    sys::close(target);
    Ok(())
}

/// A tmpfs of `size` bytes and `mode`, owned by `owner` (uid, gid) when given.
fn tmpfs(size: &CStr, mode: &CStr, owner: Option<&(std::ffi::CString, std::ffi::CString)>, attrs: u64) -> SysResult<RawFd> {
    match owner {
        Some((uid, gid)) => new_fs(c"tmpfs", &[(c"size", Some(size)), (c"mode", Some(mode)), (c"uid", Some(uid)), (c"gid", Some(gid))], attrs),
        None => new_fs(c"tmpfs", &[(c"size", Some(size)), (c"mode", Some(mode))], attrs),
    }
}

/// The device nodes of a fresh /dev tmpfs (the umask is 0 here, so modes are exact), then the
/// `device` nodes asked for (their parents made first: nothing of the image is there yet).
fn make_dev(dev: RawFd, nodes: &[DevNodeConfig]) -> SysResult<()> {
    const NODES: [(&CStr, u32, u32); 6] = [(c"null", 1, 3), (c"zero", 1, 5), (c"full", 1, 7), (c"random", 1, 8), (c"urandom", 1, 9), (c"tty", 5, 0)];
    for (name, major, minor) in NODES {
        sys::mknodat(dev, name, libc::S_IFCHR | 0o666, libc::makedev(major, minor))?;
    }
    for (name, mode) in [(c"pts", 0o755), (c"shm", 0o1777), (c"mqueue", 0o1777)] {
        sys::mkdirat(dev, name, mode)?;
    }
    const LINKS: [(&CStr, &CStr); 5] =
        [(c"ptmx", c"pts/ptmx"), (c"fd", c"/proc/self/fd"), (c"stdin", c"/proc/self/fd/0"), (c"stdout", c"/proc/self/fd/1"), (c"stderr", c"/proc/self/fd/2")];
    for (name, target) in LINKS {
        sys::symlinkat(target, dev, name)?;
    }
    for n in nodes {
        for p in &n.parents {
            match sys::mkdirat(dev, p, 0o755) {
                Err(e) if e != libc::EEXIST => return Err(e),
                _ => {}
            }
        }
        sys::mknodat(dev, &n.path, n.mode, n.dev)?;
    }
    Ok(())
}

/// Writes a file from memory under `dir`: the parent is resolved inside `dir`, the file itself
/// is opened O_NOFOLLOW (a planted symlink is refused, not followed) and must be regular.
pub(crate) fn write_file(dir: RawFd, f: &FileConfig) -> SysResult<()> {
    let bytes = f.path.to_bytes();
    let split = bytes.iter().rposition(|&b| b == b'/');
    let (parent_path, leaf) = match split {
        Some(i) => (if i == 0 { &b"/"[..] } else { &bytes[..i] }, &bytes[i + 1..]),
        None => (&b"/"[..], bytes),
    };
    let mut pbuf = [0u8; PATH_BUF];
    let mut lbuf = [0u8; PATH_BUF];
    // Missing folders on the way are made (0755, root's), each resolved inside the root.
    let parent = open_or_create(dir, c_in(&mut pbuf, parent_path)?, true)?;
    let leaf = c_in(&mut lbuf, leaf)?;
    let fd = sys::openat2(parent, leaf, libc::O_WRONLY | libc::O_CREAT | libc::O_NOFOLLOW | libc::O_NONBLOCK, 0o600, 0);
    sys::close(parent);
    let fd = fd?;
    let result = (|| {
        let st = sys::fstat(fd)?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return Err(libc::EINVAL);
        }
        // SAFETY: plain integer syscalls on a descriptor we own.
        if unsafe { libc::ftruncate(fd, 0) } < 0 {
            return Err(sys::errno());
        }
        sys::write_all(fd, &f.data)?;
        // SAFETY: as above.
        if unsafe { libc::fchown(fd, f.uid, f.gid) } < 0 || unsafe { libc::fchmod(fd, f.mode) } < 0 {
            return Err(sys::errno());
        }
        Ok(())
    })();
    sys::close(fd);
    result
}

/// pivot_root into `root` and detach the old root, leaving the cwd at the new `/`.
pub(crate) fn pivot(root: RawFd) -> Result<(), Failure> {
    sys::fchdir(root).step(Step::PivotRoot)?;
    // pivot_root(".", "."): the old root ends up stacked on the new one, then is detached.
    sys::pivot_root(c".", c".").step(Step::PivotRoot)?;
    sys::umount2(c".", libc::MNT_DETACH).step(Step::DetachOldRoot)?;
    sys::chdir(c"/").step(Step::DetachOldRoot)
}

/// Opens the container's /dev/null and proves it is the real null device (char 1:3).
pub(crate) fn open_dev_null(root: RawFd) -> Result<RawFd, Failure> {
    let fd = open_in_root(root, c"/dev/null", libc::O_PATH | libc::O_NOFOLLOW).step(Step::DevNull)?;
    let st = sys::fstat(fd).step(Step::DevNull)?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        return Err(Failure::new(Step::DevNull, libc::ENODEV));
    }
    Ok(fd)
}

/// Hides a path: a file under /dev/null, a directory under an empty read-only tmpfs.
pub(crate) fn mask(root: RawFd, dev_null: RawFd, path: &CStr, index: usize) -> Result<(), Failure> {
    let target = match open_in_root(root, path, libc::O_PATH) {
        Err(libc::ENOENT) => return Ok(()),
        other => other.step_at(Step::MaskPath, index)?,
    };
    let st = sys::fstat(target).step_at(Step::MaskPath, index)?;
    let cover = if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        new_fs(c"tmpfs", &[(c"size", Some(c"4096"))], MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
    } else {
        sys::open_tree_clone(dev_null, false)
    }
    .step_at(Step::MaskPath, index)?;
    sys::move_mount_fd(cover, target).step_at(Step::MaskPath, index)?;
    sys::close(cover);
    sys::close(target);
    Ok(())
}

/// Binds a path onto itself read-only (with everything mounted below it).
pub(crate) fn make_readonly(root: RawFd, path: &CStr, index: usize) -> Result<(), Failure> {
    let target = match open_in_root(root, path, libc::O_PATH) {
        Err(libc::ENOENT) => return Ok(()),
        other => other.step_at(Step::ReadonlyPath, index)?,
    };
    let flags = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC;
    if sys::mount_setattr_supported() {
        let copy = sys::open_tree_clone(target, true).step_at(Step::ReadonlyPath, index)?;
        sys::mount_setattr(copy, flags, 0, true).step_at(Step::ReadonlyPath, index)?;
        sys::move_mount_fd(copy, target).step_at(Step::ReadonlyPath, index)?;
        sys::close(copy);
        sys::close(target);
        return Ok(());
    }
    // Before 5.12: a copy of this mount alone (nothing below it comes along writable), made
    // read-only by a remount once attached.
    let copy = sys::open_tree_clone(target, false).step_at(Step::ReadonlyPath, index)?;
    sys::move_mount_fd(copy, target).step_at(Step::ReadonlyPath, index)?;
    sys::remount_attached(copy, flags).step_at(Step::ReadonlyPath, index)?;
    sys::close(copy);
    sys::close(target);
    Ok(())
}

#[cfg(test)]
mod tests;
