//! `--init`: the container's PID 1 stays a minimal reaper. It forks the real process, forwards
//! every signal it receives to it, reaps every zombie, and when the real process exits reports
//! its exact wait status to the spawner and exits with it (128+N for a signal).
//!
//! Runs confined (after the capability drop and seccomp), so it forks with the classic clone
//! syscall: clone3 answers ENOSYS under the default filters.

use super::config::ChildConfig;
use super::step::{Failure, Step, StepExt, SyncMsg, SYNC_MSG_LEN};
use super::{exec, FAILED_EXIT};
use crate::sys;
use std::convert::Infallible;
use std::os::fd::RawFd;

pub(super) fn run(cfg: &ChildConfig) -> Result<Infallible, Failure> {
    let all = sys::full_sigset();
    let previous = sys::sigprocmask(libc::SIG_BLOCK, &all).step(Step::InitFork)?;
    // The exec status pipe: EOF means the process was executed (the write end is close-on-exec).
    let [status_rd, status_wr] = sys::pipe2(libc::O_CLOEXEC).step(Step::InitFork)?;
    // SAFETY: we are single-threaded (a child of the single-threaded spawner).
    let main = unsafe { sys::fork_raw() }.step(Step::InitFork)?;
    if main == 0 {
        sys::close(status_rd);
        let _ = sys::sigprocmask(libc::SIG_SETMASK, &previous);
        let failure = exec(cfg);
        let _ = sys::write_all(status_wr, &SyncMsg::Failed(failure).encode());
        sys::exit(FAILED_EXIT);
    }
    sys::close(status_wr);
    close_all_but(cfg.sync_fd, status_rd);

    let mut buf = [0u8; SYNC_MSG_LEN];
    let report = match sys::read(status_rd, &mut buf) {
        Ok(0) => SyncMsg::Executed,
        Ok(_) => SyncMsg::decode(&buf).unwrap_or(SyncMsg::Failed(Failure::new(Step::Exec, libc::EIO))),
        Err(e) => SyncMsg::Failed(Failure::new(Step::Exec, e)),
    };
    sys::close(status_rd);
    let _ = sys::write_all(cfg.sync_fd, &report.encode());

    loop {
        match sys::sigwait(&all) {
            Ok(libc::SIGCHLD) => loop {
                match sys::wait_any(libc::WNOHANG) {
                    Ok((pid, status)) if pid == main => {
                        let _ = sys::write_all(cfg.sync_fd, &SyncMsg::Exited(status).encode());
                        sys::exit(exit_code(status));
                    }
                    Ok((0, _)) | Err(_) => break,
                    Ok(_) => continue,
                }
            },
            Ok(sig) => {
                let _ = sys::kill(main, sig);
            }
            Err(_) => continue,
        }
    }
}

/// A shell's view of a wait status.
fn exit_code(status: i32) -> i32 {
    if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        libc::WEXITSTATUS(status)
    }
}

/// Closes every descriptor above 2 except two (the init must not hold the container's
/// inherited cgroup, namespace or stdio sources).
fn close_all_but(a: RawFd, b: RawFd) {
    let (lo, hi) = if a < b { (a as u32, b as u32) } else { (b as u32, a as u32) };
    let mut from = 3u32;
    for keep in [lo, hi] {
        if keep > from {
            let _ = sys::close_range(from, keep - 1, 0);
        }
        from = from.max(keep + 1);
    }
    let _ = sys::close_range(from, u32::MAX, 0);
}
