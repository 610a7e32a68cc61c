//! The seam between the supervisor's decisions and the machinery that carries them out.
//!
//! The supervisor decides when containers start, stop and restart and which hooks fire; a
//! `Driver` does it: builds the root filesystem, wires the network, asks the spawner for the
//! process, signals it. Keeping the seam narrow lets the supervisor's rules be read (and tested)
//! apart from namespaces and netlink.

use std::future::Future;
use std::os::fd::OwnedFd;
use std::time::Duration;

use crate::hooks::host::HostOutcome;

/// How a container's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExitStatus {
    /// Shell-style: the exit code, or 128+N after signal N.
    pub code: i32,
    /// The signal that ended it, if one did.
    pub signal: Option<i32>,
}

impl ExitStatus {
    pub fn success(&self) -> bool {
        self.code == 0
    }

    pub fn signal_name(&self) -> Option<String> {
        self.signal.and_then(|s| nix::sys::signal::Signal::try_from(s).ok()).map(|s| s.as_str().to_string())
    }
}

pub trait Driver: Send + Sync + 'static {
    /// Creates the container if needed (root filesystem, pre-boot files, secrets, network) and
    /// starts its process; returns once the process has been exec'd.
    fn start(&self, container: &str) -> impl Future<Output = Result<(), String>> + Send;

    /// Waits until the container's current process exits.
    fn wait(&self, container: &str) -> impl Future<Output = ExitStatus> + Send;

    /// Sends `signal` to the container's process (to PID 1 of its namespace).
    fn signal(&self, container: &str, signal: i32) -> impl Future<Output = Result<(), String>> + Send;

    /// Kills every process of the container (its whole cgroup).
    fn kill_all(&self, container: &str) -> impl Future<Output = ()> + Send;

    /// Runs a command inside the running container with its full confinement.
    fn exec(
        &self,
        container: &str,
        argv: &[String],
        timeout: Duration,
    ) -> impl Future<Output = Result<HostOutcome, String>> + Send;

    /// The container's network namespace, for health probes.
    fn netns(&self, container: &str) -> Option<OwnedFd>;

    /// The stop signal the container's image asks for (its config's StopSignal), used when the
    /// app file gives none, as Docker does.
    fn image_stop_signal(&self, _container: &str) -> Option<String> {
        None
    }

    /// How many of the container's processes the kernel killed at its memory limit in the run
    /// that just ended (0 when none, or when it cannot be told).
    fn oom_kills(&self, _container: &str) -> u64 {
        0
    }

    /// Keeps a line a hook of `event` (for `container`, or the app) printed, where the app's
    /// logs are. Nowhere by default.
    fn hook_output(&self, _container: Option<&str>, _event: &str, _line: &str) {}

    /// Keeps a report of the supervisor where `tfctl events` reads it (the app's event
    /// journal), as it happens; `restarts` is the container's restart count then. Nowhere by
    /// default.
    fn record_event(&self, _report: &super::Report, _restarts: u32) {}
}
