//! `delete [--force] ID`: the container's cgroups and state folder removed, its poststop hooks
//! run. A running container needs `--force`, which kills it first.

use std::os::fd::AsRawFd;

use super::hooks::{self, Kind};
use super::kill::pidfd;
use super::plan::load_spec;
use super::state::{procs_file, Container, Root, Status};
use super::OciError;
use crate::sys;

/// How long a SIGKILLed process may take to be gone (it may be in an uninterruptible sleep).
const KILL_WAIT_MS: i32 = 10_000;

pub fn delete(root: &Root, id: &str, force: bool) -> Result<(), OciError> {
    let c = match root.load(id) {
        Ok(c) => c,
        // runc: `delete --force` of a container that is not there is done already.
        Err(OciError::NotFound(_)) if force => return Ok(()),
        Err(OciError::Record { .. }) if force => {
            let dir = root.dir(id)?;
            return std::fs::remove_dir_all(&dir).map_err(OciError::io("cannot remove", &dir));
        }
        Err(e) => return Err(e),
    };
    let status = c.status();
    match status {
        Status::Stopped | Status::Created => {}
        _ if force => {}
        _ => return Err(OciError::WrongState { id: id.to_string(), status, what: "stop it first, or use --force" }),
    }
    kill_all(&c);
    let spec = load_spec(&c.record.bundle).ok();
    for dir in &c.record.cgroups {
        let _ = crate::cgroup::wait_empty(&procs_file(dir), std::time::Duration::from_secs(5));
        if let Err(e) = crate::cgroup::remove_dir(dir) {
            tracing::warn!("{e}");
        }
    }
    if let Some(spec) = &spec {
        let mut doc = c.doc();
        doc.status = Status::Stopped;
        hooks::run_warning(Kind::Poststop, spec, &doc);
    }
    std::fs::remove_dir_all(&c.dir).map_err(OciError::io("cannot remove", &c.dir))
}

/// SIGKILL to the process and everything in its cgroups (thawed, so frozen ones die), and a
/// wait until the process is gone.
fn kill_all(c: &Container) {
    for dir in &c.record.cgroups {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
    let init = pidfd(c);
    if let Some(fd) = &init {
        let _ = sys::pidfd_send_signal(fd.as_raw_fd(), libc::SIGKILL);
    }
    for dir in &c.record.cgroups {
        for pid in crate::cgroup::read_pids(&procs_file(dir)).unwrap_or_default() {
            let _ = sys::kill(pid, libc::SIGKILL);
        }
    }
    if let Some(fd) = &init {
        // A pidfd turns readable when the process exits, reaped or not.
        let _ = sys::poll_one(fd.as_raw_fd(), libc::POLLIN, KILL_WAIT_MS);
    }
}
