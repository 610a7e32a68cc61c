//! Telling a live supervisor from a stale record. A pid alone is no identity: after a crash or a
//! reboot another process may hold it. A record names its supervisor by pid, the process's start
//! time (in clock ticks since boot, from /proc/PID/stat) and the boot id; all three must match.

use std::fs;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessIdentity {
    pub pid: i32,
    pub start_time: u64,
    pub boot_id: String,
}

/// Read once per process: it cannot change while we run.
fn boot_id() -> Option<String> {
    static BOOT_ID: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    BOOT_ID.get_or_init(|| fs::read_to_string("/proc/sys/kernel/random/boot_id").ok().map(|s| s.trim().to_string())).clone()
}

/// The state letter (field 3) and start time (field 22) of /proc/PID/stat. The command name
/// (field 2) may hold spaces and parentheses, so fields are counted after its last `)`.
pub(crate) fn stat_of(pid: i32) -> Option<(char, u64)> {
    if pid <= 0 {
        return None;
    }
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let mut fields = stat.get(stat.rfind(')')? + 1..)?.split_whitespace();
    let state = fields.next()?.chars().next()?;
    Some((state, fields.nth(18)?.parse().ok()?))
}

fn start_time(pid: i32) -> Option<u64> {
    stat_of(pid).map(|(_, start)| start)
}

/// Whether /proc/PID/stat shows an exited, unreaped process (state `Z`, or `X` while it goes).
fn is_zombie(pid: i32) -> bool {
    stat_of(pid).is_some_and(|(state, _)| matches!(state, 'Z' | 'X'))
}

impl ProcessIdentity {
    pub fn of(pid: i32) -> Option<ProcessIdentity> {
        Some(ProcessIdentity { pid, start_time: start_time(pid)?, boot_id: boot_id()? })
    }

    pub fn current() -> ProcessIdentity {
        ProcessIdentity::of(std::process::id() as i32).expect("/proc describes this process")
    }

    /// Whether the process this identity names still runs. A zombie does not: a supervisor
    /// that has exited stays one until whoever inherited it reaps it, which may take seconds.
    pub fn is_alive(&self) -> bool {
        ProcessIdentity::of(self.pid).as_ref() == Some(self) && !is_zombie(self.pid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_living_process_matches_and_a_reused_pid_does_not() {
        let me = ProcessIdentity::current();
        assert!(me.is_alive());
        let mut other_boot = me.clone();
        other_boot.boot_id = "00000000-0000-0000-0000-000000000000".into();
        assert!(!other_boot.is_alive());
        let mut restarted = me.clone();
        restarted.start_time += 1;
        assert!(!restarted.is_alive());

        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessIdentity::of(child.id() as i32);
        child.wait().unwrap();
        if let Some(id) = id {
            assert!(!id.is_alive(), "a reaped process still counts as alive");
        }

        // An exited child nobody has reaped yet is a zombie, which is not alive either.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let id = ProcessIdentity::of(child.id() as i32).expect("the child is in /proc until reaped");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !is_zombie(id.pid) {
            assert!(std::time::Instant::now() < deadline, "the child did not exit");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert!(!id.is_alive(), "an exited, unreaped process counts as alive");
        child.wait().unwrap();
    }
}
