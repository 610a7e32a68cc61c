//! The new mount API (fsopen/fsconfig/fsmount, open_tree, move_mount, mount_setattr): mounts
//! made and attached by file descriptor, so no path string inside a container's rootfs is ever
//! resolved by the kernel's ordinary (symlink-following, root-escaping) lookup.

use super::{errno, SysResult};
use std::ffi::CStr;
use std::os::fd::RawFd;

pub const FSOPEN_CLOEXEC: u32 = 0x1;
pub const FSMOUNT_CLOEXEC: u32 = 0x1;
pub const FSCONFIG_SET_FLAG: u32 = 0;
pub const FSCONFIG_SET_STRING: u32 = 1;
pub const FSCONFIG_CMD_CREATE: u32 = 6;

pub const OPEN_TREE_CLONE: u32 = 1;
pub const OPEN_TREE_CLOEXEC: u32 = libc::O_CLOEXEC as u32;

pub const MOVE_MOUNT_F_EMPTY_PATH: u32 = 0x4;
pub const MOVE_MOUNT_T_EMPTY_PATH: u32 = 0x40;

pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;
/// Access times always updated (the `_ATIME` field's value), as runc mounts /dev.
pub const MOUNT_ATTR_STRICTATIME: u64 = 0x20;
pub const MOUNT_ATTR_IDMAP: u64 = 0x100000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

fn fd_or_errno(ret: libc::c_long) -> SysResult<RawFd> {
    if ret < 0 {
        Err(errno())
    } else {
        Ok(ret as RawFd)
    }
}

/// A filesystem context for `fstype` ("proc", "tmpfs", "overlay", ...).
pub fn fsopen(fstype: &CStr) -> SysResult<RawFd> {
    // SAFETY: NUL-terminated name.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_fsopen, fstype.as_ptr(), FSOPEN_CLOEXEC) })
}

/// Sets one string (or, with `value == None`, flag) parameter of a filesystem context.
pub fn fsconfig(fsfd: RawFd, key: &CStr, value: Option<&CStr>) -> SysResult<()> {
    let (cmd, v) = match value {
        Some(v) => (FSCONFIG_SET_STRING, v.as_ptr()),
        None => (FSCONFIG_SET_FLAG, std::ptr::null()),
    };
    // SAFETY: key and value are NUL-terminated or null as the command requires.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, cmd, key.as_ptr(), v, 0) }).map(drop)
}

pub fn fsconfig_create(fsfd: RawFd) -> SysResult<()> {
    // SAFETY: the create command takes no key or value.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_fsconfig, fsfd, FSCONFIG_CMD_CREATE, std::ptr::null::<u8>(), std::ptr::null::<u8>(), 0) }).map(drop)
}

/// A detached mount of a created context, with MOUNT_ATTR_* flags.
pub fn fsmount(fsfd: RawFd, attrs: u64) -> SysResult<RawFd> {
    // SAFETY: integer arguments.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_fsmount, fsfd, FSMOUNT_CLOEXEC, attrs as libc::c_uint) })
}

/// A detached copy of the mount at `fd` (the fd itself with an empty path), optionally with
/// every mount below it.
pub fn open_tree_clone(fd: RawFd, recursive: bool) -> SysResult<RawFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: the empty path is a NUL-terminated string.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_open_tree, fd, c"".as_ptr(), flags) })
}

/// A detached copy of the mount at `path` under `dir` (one file or directory, not what is
/// mounted below it).
pub fn open_tree_at(dir: RawFd, path: &CStr) -> SysResult<RawFd> {
    // SAFETY: NUL-terminated path.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_open_tree, dir, path.as_ptr(), OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC) })
}

/// A detached copy of the mount at a host path (a trusted path outside any container).
pub fn open_tree_path(path: &CStr, recursive: bool) -> SysResult<RawFd> {
    let mut flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: NUL-terminated path.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) })
}

/// Attaches the detached mount `from` on top of the file or directory open as `to`.
pub fn move_mount_fd(from: RawFd, to: RawFd) -> SysResult<()> {
    // SAFETY: both paths are empty NUL-terminated strings, the fds carry the locations.
    fd_or_errno(unsafe {
        libc::syscall(libc::SYS_move_mount, from, c"".as_ptr(), to, c"".as_ptr(), MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH)
    })
    .map(drop)
}

/// Attaches the detached mount `from` at a trusted host path.
pub fn move_mount_to_path(from: RawFd, to: &CStr) -> SysResult<()> {
    // SAFETY: NUL-terminated paths.
    fd_or_errno(unsafe { libc::syscall(libc::SYS_move_mount, from, c"".as_ptr(), libc::AT_FDCWD, to.as_ptr(), MOVE_MOUNT_F_EMPTY_PATH) })
        .map(drop)
}

/// Sets (and clears) MOUNT_ATTR_* flags on the mount open as `fd`, optionally recursively.
pub fn mount_setattr(fd: RawFd, set: u64, clear: u64, recursive: bool) -> SysResult<()> {
    let attr = MountAttr { attr_set: set, attr_clr: clear, propagation: 0, userns_fd: 0 };
    let mut flags = libc::AT_EMPTY_PATH as u32;
    if recursive {
        flags |= libc::AT_RECURSIVE as u32;
    }
    // SAFETY: attr lives across the call and its size is passed.
    fd_or_errno(unsafe {
        libc::syscall(libc::SYS_mount_setattr, fd, c"".as_ptr(), flags, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    })
    .map(drop)
}

/// Makes the detached mount `fd` show its files through the id mapping of the user namespace
/// `userns` (an idmapped mount, Linux 5.12; overlayfs takes such layers since 5.19): a file owned
/// by uid N on disk is owned by the namespace's N, and what the namespace writes keeps its own
/// ids on disk.
pub fn mount_setattr_idmap(fd: RawFd, userns: RawFd) -> SysResult<()> {
    let attr = MountAttr { attr_set: MOUNT_ATTR_IDMAP, attr_clr: 0, propagation: 0, userns_fd: userns as u64 };
    // SAFETY: attr lives across the call and its size is passed.
    fd_or_errno(unsafe {
        libc::syscall(libc::SYS_mount_setattr, fd, c"".as_ptr(), libc::AT_EMPTY_PATH as u32, &attr as *const MountAttr, std::mem::size_of::<MountAttr>())
    })
    .map(drop)
}

/// Whether the kernel has mount_setattr (Linux 5.12): probed once, with no change, as the
/// spawner prepares a start (the cloned child only reads the answer). Without it (5.10, 5.11)
/// flags go on with a remount of each mount once attached ([`remount_attached`]).
pub fn mount_setattr_supported() -> bool {
    static SUPPORTED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SUPPORTED.get_or_init(|| {
        if force_legacy() {
            return false;
        }
        let attr = MountAttr { attr_set: 0, attr_clr: 0, propagation: 0, userns_fd: 0 };
        // SAFETY: attr lives across the call and its size is passed; fd -1 changes nothing.
        let ret = unsafe { libc::syscall(libc::SYS_mount_setattr, -1, c"".as_ptr(), libc::AT_EMPTY_PATH as u32, &attr as *const MountAttr, std::mem::size_of::<MountAttr>()) };
        !(ret < 0 && errno() == libc::ENOSYS)
    })
}

/// Sets MOUNT_ATTR_* `attrs` on the attached mount open as `fd` by a bind remount of
/// `/proc/self/fd/N` (the route before mount_setattr). A bind remount replaces every per-mount
/// flag: `attrs` is the whole set the mount must have. Only that mount changes, none below it.
pub fn remount_attached(fd: RawFd, attrs: u64) -> SysResult<()> {
    let mut path = *b"/proc/self/fd/\0\0\0\0\0\0\0\0\0\0\0\0";
    let mut digits = [0u8; 10];
    let (mut n, mut len) = (fd as u32, 0);
    loop {
        digits[len] = b'0' + (n % 10) as u8;
        len += 1;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for i in 0..len {
        path[14 + i] = digits[len - 1 - i];
    }
    let path = CStr::from_bytes_until_nul(&path).map_err(|_| libc::EINVAL)?;
    let mut flags = libc::MS_REMOUNT | libc::MS_BIND;
    for (attr, ms) in [(MOUNT_ATTR_RDONLY, libc::MS_RDONLY), (MOUNT_ATTR_NOSUID, libc::MS_NOSUID), (MOUNT_ATTR_NODEV, libc::MS_NODEV), (MOUNT_ATTR_NOEXEC, libc::MS_NOEXEC)] {
        if attrs & attr != 0 {
            flags |= ms;
        }
    }
    super::mount(None, path, None, flags, None)
}

/// `TFCTL_FORCE_LEGACY_MOUNT=1` in tfctl's environment: a test aid that takes, on a new kernel,
/// every route tfctl keeps for older ones (overlay by mount(2), secrets cloned from a private
/// mount namespace, tmpfs without `noswap`), so both routes are proven on one machine. Read once.
pub fn force_legacy() -> bool {
    static FORCED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FORCED.get_or_init(|| std::env::var_os("TFCTL_FORCE_LEGACY_MOUNT").is_some_and(|v| v == "1"))
}

/// The running kernel's (major, minor) version, from uname(2); (0, 0) if unreadable.
pub fn kernel_version() -> (u32, u32) {
    static VERSION: std::sync::OnceLock<(u32, u32)> = std::sync::OnceLock::new();
    *VERSION.get_or_init(|| {
        // SAFETY: utsname is plain old data, filled by the kernel.
        let mut u: libc::utsname = unsafe { std::mem::zeroed() };
        // SAFETY: a valid buffer of the right type.
        if unsafe { libc::uname(&mut u) } < 0 {
            return (0, 0);
        }
        // SAFETY: the kernel NUL-terminates the release string.
        let release = unsafe { CStr::from_ptr(u.release.as_ptr()) }.to_string_lossy();
        parse_release(&release)
    })
}

/// "6.1.0-28-amd64" -> (6, 1).
fn parse_release(release: &str) -> (u32, u32) {
    let mut parts = release.split(|c: char| !c.is_ascii_digit());
    let major = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    let minor = parts.next().and_then(|p| p.parse().ok()).unwrap_or(0);
    (major, minor)
}

/// Whether overlayfs takes its layers one by one through fsconfig `lowerdir+` (Linux 6.8+).
/// Before that an overlay is mounted with mount(2) and one page of options: a kernel before 6.5
/// accepts any fsconfig key and refuses it only at create (`unrecognized mount option`), and one
/// fsconfig string is at most 255 bytes there, too short for a `lowerdir=` list of many layers.
pub fn overlay_lowerdir_plus() -> bool {
    !force_legacy() && kernel_version() >= (6, 8)
}

#[cfg(test)]
mod tests {
    #[test]
    fn kernel_releases_parse() {
        assert_eq!(super::parse_release("6.1.0-28-amd64"), (6, 1));
        assert_eq!(super::parse_release("6.18.2"), (6, 18));
        assert_eq!(super::parse_release("5.10.0"), (5, 10));
        assert_eq!(super::parse_release("5.10.0-33-cloud-amd64"), (5, 10));
        assert_eq!(super::parse_release("5.15.0-91-generic"), (5, 15));
        assert_eq!(super::parse_release("garbage"), (0, 0));
    }
}
