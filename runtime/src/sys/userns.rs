//! A user namespace with a given id mapping, made by the spawner before it clones a container,
//! so the child can idmap its mounts with it and join it last (see crate::start).
//!
//! The kernel gives a user namespace only to a process: a short-lived helper unshares one and
//! waits while the spawner writes its maps and opens it; the descriptor keeps the namespace
//! alive after the helper exits.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;

/// A user namespace mapping ids 0..size to host ids base..base+size, both uids and gids.
pub fn make_userns(base: u32, size: u32) -> std::io::Result<OwnedFd> {
    let (go_r, go_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    let (ready_r, ready_w) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)?;
    match super::fork_single_threaded()? {
        nix::unistd::ForkResult::Child => {
            // Only raw syscalls from here: the helper never returns into the spawner's code.
            drop(go_w);
            drop(ready_r);
            let ok = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWUSER).is_ok();
            let _ = nix::unistd::write(&ready_w, if ok { b"1" } else { b"0" });
            // Until the spawner closes its end: it has opened the namespace by then.
            let mut byte = [0u8; 1];
            let _ = nix::unistd::read(&go_r, &mut byte);
            // SAFETY: _exit ends the helper without running the spawner's destructors.
            unsafe { libc::_exit(0) }
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(go_r);
            drop(ready_w);
            let result = (|| {
                let mut byte = [0u8; 1];
                File::from(ready_r).read_exact(&mut byte)?;
                if byte[0] != b'1' {
                    return Err(std::io::Error::other("the kernel refused a new user namespace (is user.max_user_namespaces 0?)"));
                }
                let map = format!("0 {base} {size}\n");
                for f in ["uid_map", "gid_map"] {
                    OpenOptions::new().write(true).open(format!("/proc/{child}/{f}"))?.write_all(map.as_bytes())?;
                }
                Ok(OwnedFd::from(File::open(format!("/proc/{child}/ns/user"))?))
            })();
            drop(go_w);
            let _ = nix::sys::wait::waitpid(child, None);
            result
        }
    }
}

/// While it lives, files this thread makes are made as `ids` (uid, gid as the host sees them):
/// a `userns "auto"` container's filesystem is reached through idmapped mounts where host root
/// has no id (EOVERFLOW), so tfctl writes there as the container's root (the owner of its `/`).
/// Capabilities are kept across the change (no setuid fixup). fsuid is the calling thread's
/// own: no other thread is affected. Nothing to do for (0, 0).
pub struct FilesAs {
    active: bool,
}

/// prctl(PR_SET_SECUREBITS): a change of fsuid keeps the capabilities.
pub const SECBIT_NO_SETUID_FIXUP: libc::c_ulong = 1 << 2;

impl FilesAs {
    pub fn owner((uid, gid): (u32, u32)) -> super::SysResult<FilesAs> {
        if (uid, gid) == (0, 0) {
            return Ok(FilesAs { active: false });
        }
        super::prctl(libc::PR_SET_SECUREBITS, SECBIT_NO_SETUID_FIXUP, 0, 0, 0)?;
        super::setfsgid(gid);
        super::setfsuid(uid);
        Ok(FilesAs { active: true })
    }
}

impl Drop for FilesAs {
    fn drop(&mut self) {
        if self.active {
            super::setfsuid(0);
            super::setfsgid(0);
            let _ = super::prctl(libc::PR_SET_SECUREBITS, 0, 0, 0, 0);
        }
    }
}
