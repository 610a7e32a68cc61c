//! The secrets tmpfs, built with the new mount API (`fsopen`/`fsconfig`/`fsmount`) as a
//! detached mount: it belongs to no mount namespace of the host, so secret bytes are written to
//! memory only, never to a disk and never visible on the host. Each file is then cloned as a
//! mount of its own (`open_tree`), which the container's start sequence moves into place.
//!
//! Before Linux 6.15 the kernel refuses to clone from a detached mount (EINVAL: it is in no
//! namespace). There the tmpfs is first attached in a private mount namespace made for it
//! alone, which no process lives in (a short-lived thread makes it and joins it for each
//! clone, and a descriptor keeps it): still memory only, still not visible on the host.

use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use nix::errno::Errno;

use crate::sys::{self, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID};

fn owned(r: sys::SysResult<RawFd>) -> Result<OwnedFd, Errno> {
    // SAFETY: the kernel just returned this descriptor; nothing else owns it.
    r.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }).map_err(Errno::from_raw)
}

/// A secrets tmpfs: the mount, and on kernels that cannot clone from a detached mount, the
/// private mount namespace it is attached in.
#[derive(Debug)]
pub struct Tmpfs {
    mnt: OwnedFd,
    private_ns: Option<OwnedFd>,
}

/// A detached tmpfs mounted `nosuid,nodev,noexec`, `size` bytes at most, root directory mode
/// 0755, and `noswap` (Linux 6.4+) when the kernel accepts it: the flag says whether it did.
pub fn detached_tmpfs(size: u64) -> Result<(Tmpfs, bool), (&'static str, Errno)> {
    let fs = owned(sys::fsopen(c"tmpfs")).map_err(|e| ("fsopen tmpfs", e))?;
    let size = std::ffi::CString::new(size.to_string()).expect("digits");
    let set = |key: &CStr, value: Option<&CStr>| sys::fsconfig(fs.as_raw_fd(), key, value).map_err(Errno::from_raw);
    set(c"size", Some(&size)).map_err(|e| ("fsconfig size", e))?;
    set(c"mode", Some(c"0755")).map_err(|e| ("fsconfig mode", e))?;
    // Older kernels refuse the option with EINVAL: the secrets then stay swappable.
    let noswap = !sys::force_legacy() && set(c"noswap", None).is_ok();
    if !noswap {
        static SAID: AtomicBool = AtomicBool::new(false);
        if !SAID.swap(true, Ordering::Relaxed) {
            tracing::warn!("this kernel's tmpfs has no noswap (Linux 6.4+): secrets may be written to swap");
        }
    }
    sys::fsconfig_create(fs.as_raw_fd()).map_err(|e| ("fsconfig create", Errno::from_raw(e)))?;
    let mnt = owned(sys::fsmount(fs.as_raw_fd(), MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)).map_err(|e| ("fsmount", e))?;
    Ok((Tmpfs { mnt, private_ns: None }, noswap))
}

impl Tmpfs {
    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.mnt.as_fd()
    }

    /// A detached bind mount of `path` (a file of the tmpfs), to be moved onto its target in
    /// the container.
    pub fn clone_file(&mut self, path: &CStr) -> Result<OwnedFd, Errno> {
        let mnt = self.mnt.as_raw_fd();
        if self.private_ns.is_none() {
            if !sys::force_legacy() {
                match owned(sys::open_tree_at(mnt, path)) {
                    // Before Linux 6.15: no clone from a mount that is in no namespace.
                    Err(Errno::EINVAL) => {}
                    other => return other,
                }
            }
            self.attach_privately()?;
        }
        let ns = self.private_ns.as_ref().map_or(-1, |fd| fd.as_raw_fd());
        owned(Ok(in_thread(|| {
            // Joining a mount namespace takes a filesystem context of the thread's own.
            sys::unshare(libc::CLONE_FS)?;
            sys::setns(ns, libc::CLONE_NEWNS)?;
            sys::open_tree_at(mnt, path)
        })?))
    }

    /// Attaches the tmpfs in a new private mount namespace, kept by a descriptor.
    fn attach_privately(&mut self) -> Result<(), Errno> {
        let mnt = self.mnt.as_raw_fd();
        let ns = in_thread(|| {
            sys::unshare(libc::CLONE_NEWNS)?;
            // Nothing mounted here may propagate back to the host's namespace.
            sys::mount(None, c"/", None, libc::MS_REC | libc::MS_PRIVATE, None)?;
            sys::move_mount_to_path(mnt, c"/")?;
            sys::openat2(libc::AT_FDCWD, c"/proc/thread-self/ns/mnt", libc::O_RDONLY | libc::O_CLOEXEC, 0, 0)
        })?;
        self.private_ns = Some(owned(Ok(ns))?);
        Ok(())
    }
}

/// Runs `f` on a thread of its own: a thread may leave the process's mount namespace (it
/// unshares its filesystem context) without moving any other thread.
fn in_thread<T: Send>(f: impl FnOnce() -> sys::SysResult<T> + Send) -> Result<T, Errno> {
    std::thread::scope(|s| s.spawn(f).join().unwrap_or(Err(libc::EIO))).map_err(Errno::from_raw)
}

/// Moves the detached mount `mount` onto `target` (an `O_PATH` descriptor of the file or
/// directory it covers, resolved inside the rootfs). Async-signal-safe: no allocation.
pub fn move_mount_onto(mount: BorrowedFd<'_>, target: BorrowedFd<'_>) -> Result<(), Errno> {
    sys::move_mount_fd(mount.as_raw_fd(), target.as_raw_fd()).map_err(Errno::from_raw)
}
