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

/// The init's name, as `ps`, /proc/1/comm and /proc/1/cmdline show it in the container.
const INIT_NAME: &[u8] = b"tfctl-init";

/// Where the spawner's argument and environment strings lie in its memory (/proc/self/stat,
/// fields 48-51), which a cloned child shares as a copy: what the kernel shows as its
/// /proc/PID/cmdline and /proc/PID/environ.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProcStrings {
    pub arg_start: usize,
    pub arg_end: usize,
    pub env_start: usize,
    pub env_end: usize,
}

impl ProcStrings {
    /// The calling process's, read once (in the spawner, before any clone).
    pub(crate) fn of_self() -> Option<ProcStrings> {
        static STRINGS: std::sync::OnceLock<Option<ProcStrings>> = std::sync::OnceLock::new();
        *STRINGS.get_or_init(|| ProcStrings::parse(&std::fs::read_to_string("/proc/self/stat").ok()?))
    }

    fn parse(stat: &str) -> Option<ProcStrings> {
        // Fields after the command name (which may hold spaces) start at field 3.
        let fields: Vec<&str> = stat.get(stat.rfind(')')? + 1..)?.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<usize>().ok();
        let s = ProcStrings { arg_start: field(48)?, arg_end: field(49)?, env_start: field(50)?, env_end: field(51)? };
        (s.arg_start < s.arg_end && s.env_start <= s.env_end).then_some(s)
    }
}

/// Rewrites the init's copy of the spawner's strings: the environment is zeroed, the arguments
/// become [`INIT_NAME`], a NUL, then spaces to their end. A last byte that is not NUL makes the
/// kernel read the command line as a rewritten one (setproctitle), up to the first NUL: the
/// container sees `tfctl-init`, not tfctl's binary, state root or app file. Needs no privilege
/// (PR_SET_MM would need CAP_SYS_RESOURCE, which some hosts deny even to root).
pub(super) fn rename(strings: &ProcStrings) -> sys::SysResult<()> {
    let len = strings.arg_end - strings.arg_start;
    if len < 2 {
        return Err(libc::EINVAL);
    }
    // SAFETY: both ranges are this process's own argument and environment strings (read from
    // /proc/self/stat by the spawner we are a clone of, so at the same addresses in our copy of
    // its memory), writable stack memory that nothing in this child reads again: execve takes
    // the plan's own strings.
    unsafe {
        std::ptr::write_bytes(strings.env_start as *mut u8, 0, strings.env_end - strings.env_start);
        let args = std::slice::from_raw_parts_mut(strings.arg_start as *mut u8, len);
        args.fill(b' ');
        let n = INIT_NAME.len().min(len - 2);
        args[..n].copy_from_slice(&INIT_NAME[..n]);
        args[n] = 0;
    }
    sys::prctl(libc::PR_SET_NAME, c"tfctl-init".as_ptr() as libc::c_ulong, 0, 0, 0).map(drop)
}

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

#[cfg(test)]
mod tests {
    use super::ProcStrings;

    #[test]
    fn the_string_areas_are_read_from_proc_stat() {
        let own = ProcStrings::of_self().expect("/proc/self/stat has the string areas");
        assert!(own.arg_start < own.arg_end && own.arg_end <= own.env_start);
        // A command name with spaces and parentheses does not shift the fields.
        let mut stat = "7 (a) b) S".to_string();
        for n in 4..=52 {
            stat.push_str(&format!(" {n}"));
        }
        assert_eq!(ProcStrings::parse(&stat), Some(ProcStrings { arg_start: 48, arg_end: 49, env_start: 50, env_end: 51 }));
        assert_eq!(ProcStrings::parse("7 (a) S 1 2"), None);
    }
}
