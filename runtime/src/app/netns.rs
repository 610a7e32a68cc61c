//! A container's network namespace, made before the container: so its network is wired before
//! its process runs, and a restart keeps the namespace, and with it the address.

use std::os::fd::OwnedFd;

/// A new, empty network namespace. A short-lived thread unshares its own network namespace
/// (a per-thread operation, harmless in a multi-threaded process) and hands back a descriptor;
/// the namespace lives as long as the descriptor.
pub fn new_netns() -> std::io::Result<OwnedFd> {
    std::thread::spawn(|| -> std::io::Result<OwnedFd> {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).map_err(std::io::Error::from)?;
        let f = std::fs::File::open("/proc/thread-self/ns/net")?;
        Ok(OwnedFd::from(f))
    })
    .join()
    .map_err(|_| std::io::Error::other("the namespace thread panicked"))?
}
