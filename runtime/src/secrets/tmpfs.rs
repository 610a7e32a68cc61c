//! The secrets tmpfs, built with the new mount API (`fsopen`/`fsconfig`/`fsmount`) as a
//! detached mount: it belongs to no mount namespace until the container's start sequence moves
//! it into place, so secret bytes are written to memory only, never to a disk and never visible
//! on the host. The raw syscalls live here, each with its safety argument.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

// linux/mount.h
const FSOPEN_CLOEXEC: libc::c_uint = 0x1;
const FSCONFIG_SET_FLAG: libc::c_uint = 0;
const FSCONFIG_SET_STRING: libc::c_uint = 1;
const FSCONFIG_CMD_CREATE: libc::c_uint = 6;
const FSMOUNT_CLOEXEC: libc::c_uint = 0x1;
const MOUNT_ATTR_NOSUID: libc::c_uint = 0x2;
const MOUNT_ATTR_NODEV: libc::c_uint = 0x4;
const MOUNT_ATTR_NOEXEC: libc::c_uint = 0x8;
const OPEN_TREE_CLONE: libc::c_uint = 0x1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;
const MOVE_MOUNT_T_EMPTY_PATH: libc::c_uint = 0x40;

fn fd_or_errno(rc: libc::c_long) -> Result<OwnedFd, Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        // SAFETY: the kernel just returned this descriptor; nothing else owns it.
        Ok(unsafe { OwnedFd::from_raw_fd(rc as i32) })
    }
}

fn ok_or_errno(rc: libc::c_long) -> Result<(), Errno> {
    if rc < 0 {
        Err(Errno::last())
    } else {
        Ok(())
    }
}

fn set_string(fs: &OwnedFd, key: &CStr, value: &CStr) -> Result<(), Errno> {
    // SAFETY: both strings are NUL-terminated and outlive the call.
    ok_or_errno(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_STRING,
            key.as_ptr(),
            value.as_ptr(),
            0,
        )
    })
}

fn set_flag(fs: &OwnedFd, key: &CStr) -> Result<(), Errno> {
    // SAFETY: the key is NUL-terminated and outlives the call; flags take no value.
    ok_or_errno(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_SET_FLAG,
            key.as_ptr(),
            std::ptr::null::<u8>(),
            0,
        )
    })
}

/// A detached tmpfs mounted `nosuid,nodev,noexec`, `size` bytes at most, root directory mode
/// 0755, and `noswap` (Linux 6.4+) when the kernel accepts it: the flag says whether it did.
pub fn detached_tmpfs(size: u64) -> Result<(OwnedFd, bool), (&'static str, Errno)> {
    // SAFETY: a constant NUL-terminated name.
    let fs =
        fd_or_errno(unsafe { libc::syscall(libc::SYS_fsopen, c"tmpfs".as_ptr(), FSOPEN_CLOEXEC) })
            .map_err(|e| ("fsopen tmpfs", e))?;
    let size = std::ffi::CString::new(size.to_string()).expect("digits");
    set_string(&fs, c"size", &size).map_err(|e| ("fsconfig size", e))?;
    set_string(&fs, c"mode", c"0755").map_err(|e| ("fsconfig mode", e))?;
    // Older kernels refuse the option with EINVAL: the secrets then stay swappable.
    let noswap = set_flag(&fs, c"noswap").is_ok();
    // SAFETY: no pointers.
    ok_or_errno(unsafe {
        libc::syscall(
            libc::SYS_fsconfig,
            fs.as_raw_fd(),
            FSCONFIG_CMD_CREATE,
            std::ptr::null::<u8>(),
            std::ptr::null::<u8>(),
            0,
        )
    })
    .map_err(|e| ("fsconfig create", e))?;
    // SAFETY: no pointers.
    let mnt = fd_or_errno(unsafe {
        libc::syscall(
            libc::SYS_fsmount,
            fs.as_raw_fd(),
            FSMOUNT_CLOEXEC,
            MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        )
    })
    .map_err(|e| ("fsmount", e))?;
    Ok((mnt, noswap))
}

/// A detached bind mount of `path` (relative to `dir`): one file of the tmpfs, to be moved onto
/// its target in the container.
pub fn clone_tree(dir: BorrowedFd<'_>, path: &CStr) -> Result<OwnedFd, Errno> {
    // SAFETY: `path` is NUL-terminated and outlives the call; `dir` is a valid descriptor.
    fd_or_errno(unsafe {
        libc::syscall(
            libc::SYS_open_tree,
            dir.as_raw_fd(),
            path.as_ptr(),
            OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
        )
    })
}

/// Moves the detached mount `mount` onto `target` (an `O_PATH` descriptor of the file or
/// directory it covers, resolved inside the rootfs). Async-signal-safe: no allocation.
pub fn move_mount_onto(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: empty C strings with the *_EMPTY_PATH flags: the descriptors name both ends.
    ok_or_errno(unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            mount.as_raw_fd(),
            c"".as_ptr(),
            target.as_raw_fd(),
            c"".as_ptr(),
            MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH,
        )
    })
}
