//! `kill [--all] ID [SIGNAL]`: a signal to the container's process (through a pidfd, so never
//! to a reused pid), or to every process in its cgroup.

use std::os::fd::{FromRawFd, OwnedFd};

use super::state::{Container, Root, Status};
use super::OciError;
use crate::sys;

pub fn kill(root: &Root, id: &str, signal: i32, all: bool) -> Result<(), OciError> {
    let c = root.load(id)?;
    let status = c.status();
    if status == Status::Stopped {
        return Err(OciError::WrongState { id: id.to_string(), status, what: "there is no process to signal" });
    }
    if all {
        for pid in c.pids() {
            let _ = sys::kill(pid, signal);
        }
    }
    signal_init(&c, signal)
}

/// Signals the container's first process, if it is still the one `create` started.
pub(crate) fn signal_init(c: &Container, signal: i32) -> Result<(), OciError> {
    let Some(fd) = pidfd(c) else { return Ok(()) };
    match sys::pidfd_send_signal(std::os::fd::AsRawFd::as_raw_fd(&fd), signal) {
        Ok(()) | Err(libc::ESRCH) => Ok(()),
        Err(e) => Err(OciError::io("cannot signal the process of", &c.dir)(std::io::Error::from_raw_os_error(e))),
    }
}

/// A pidfd of the container's process, checked against its start time after opening.
pub(crate) fn pidfd(c: &Container) -> Option<OwnedFd> {
    let fd = sys::pidfd_open(c.record.pid).ok()?;
    // SAFETY: pidfd_open returned a new descriptor we own.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    c.alive().then_some(fd)
}
