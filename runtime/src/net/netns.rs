//! Entering a container's network namespace, and sysctls.
//!
//! The network namespace is per thread, so a short-lived thread enters the container's namespace
//! with setns(2) and does the container's side there; the calling thread (and the rest of the
//! process) stays in the host namespace. Sockets and /proc/sys files opened on that thread stay bound to the
//! container's namespace after the thread ends.

use super::error::NetError;
use nix::sched::{setns, CloneFlags};
use std::os::fd::BorrowedFd;

/// Moves the calling thread into the network namespace `netns`. Call it only on a thread of
/// our own that ends afterwards: the network namespace is per thread.
pub(crate) fn enter(netns: BorrowedFd<'_>) -> Result<(), NetError> {
    setns(netns, CloneFlags::CLONE_NEWNET).map_err(|e| NetError::Namespace {
        what: "entering the container's network namespace (setns)".into(),
        source: e.into(),
    })
}

/// Writes a sysctl under /proc/sys (in the calling thread's network namespace for `net.*`).
pub(crate) fn write_sysctl(key: &str, value: &str) -> Result<(), NetError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::write(&path, value).map_err(|source| NetError::Sysctl {
        key: key.into(),
        source,
    })
}

/// Writes a per-interface sysctl (`net/ipv4/conf/<ifname>/<leaf>`); interface names may hold dots,
/// so the path is built by hand.
pub(crate) fn write_if_sysctl(
    family: &str,
    ifname: &str,
    leaf: &str,
    value: &str,
) -> Result<(), NetError> {
    let path = format!("/proc/sys/net/{family}/conf/{ifname}/{leaf}");
    std::fs::write(&path, value).map_err(|source| NetError::Sysctl { key: path, source })
}

/// Reads a sysctl (trimmed).
pub(crate) fn read_sysctl(key: &str) -> Result<String, NetError> {
    let path = format!("/proc/sys/{}", key.replace('.', "/"));
    std::fs::read_to_string(&path)
        .map(|s| s.trim().to_string())
        .map_err(|source| NetError::Sysctl {
            key: key.into(),
            source,
        })
}

/// Whether IPv6 exists in the calling thread's namespace (kernel built with it, not disabled on
/// the command line).
pub(crate) fn has_ipv6() -> bool {
    std::path::Path::new("/proc/sys/net/ipv6/conf/all/disable_ipv6").exists()
}
