//! What the supervisor knows about each container, shared with everyone who waits on it
//! (`after` ordering, `up --wait`, `ps`), and the events it reports.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use tfctl_schema::model::{App, Event, Until};

use super::driver::ExitStatus;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum State {
    /// Waiting for the containers it comes `after`, or for `start` (a `sleep` container).
    Waiting,
    Starting,
    Running,
    /// Exited on its own; `exit` says how.
    Exited,
    /// Stopped because tfctl was asked to.
    Stopped,
    /// Failed and not restarting (start failure, restart limit, or no policy).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContainerStatus {
    pub state: State,
    /// `None` without a health check.
    pub health: Option<Health>,
    pub restarts: u32,
    /// Its `started` hooks have finished: only then does it count as started for `after`.
    pub started_hooks_done: bool,
    /// Its current process has run for [`SETTLE`] without exiting.
    #[serde(skip)]
    pub settled: bool,
    #[serde(skip)]
    pub exit: Option<ExitStatus>,
    pub exit_code: Option<i32>,
    /// When its current process started (Unix seconds), while it runs.
    pub started_at: Option<u64>,
    /// Why it failed, when it did.
    pub reason: Option<String>,
    /// Stopped by `tfctl stop` before this supervisor started, and kept so by `restart
    /// "unless-stopped"`: `up --wait` does not wait for it.
    pub kept_stopped: bool,
}

impl ContainerStatus {
    pub fn waiting(has_health: bool) -> Self {
        ContainerStatus {
            state: State::Waiting,
            health: has_health.then_some(Health::Starting),
            restarts: 0,
            started_hooks_done: false,
            settled: false,
            exit: None,
            exit_code: None,
            started_at: None,
            reason: None,
            kept_stopped: false,
        }
    }

    /// Whether a container waiting `after` this one with `until` may start.
    pub fn satisfies(&self, until: Until) -> bool {
        match until {
            Until::Started => self.state == State::Running && self.started_hooks_done,
            Until::Healthy => self.state == State::Running && self.health == Some(Health::Healthy),
            Until::Completed => self.state == State::Exited && self.exit.is_some_and(|e| e.success()),
        }
    }

    /// Whether waiting for `until` is hopeless: the container ended without reaching it.
    pub fn cannot_satisfy(&self, until: Until) -> bool {
        match self.state {
            State::Failed | State::Stopped => true,
            State::Exited => until != Until::Completed || !self.exit.is_some_and(|e| e.success()),
            _ => false,
        }
    }
}

pub type StatusMap = BTreeMap<String, ContainerStatus>;

/// How long a container without a health check must run before `up --wait` counts it as ready.
/// A process that dies of its configuration (a bad flag, a missing file, a port in use) does so
/// at once, after its start was already seen: without this window `up --wait` would report ready
/// an app whose container had just failed. A health check that passes proves more, so a
/// container with one is ready as soon as it is healthy.
pub const SETTLE: Duration = Duration::from_secs(1);

/// One thing that happened, as the foreground output and `--wait` see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// `None` for app-level events.
    pub container: Option<String>,
    pub event: Event,
    pub reason: String,
    pub exit_code: Option<i32>,
    pub message: String,
}

impl Report {
    /// One line for a person: `web: started`, `db: exited (status 1): MESSAGE`, `app: up`.
    pub fn summary(&self) -> String {
        let who = self.container.as_deref().unwrap_or("app");
        let code = self.exit_code.map(|c| format!(" (status {c})")).unwrap_or_default();
        let msg = if self.message.is_empty() { String::new() } else { format!(": {}", self.message) };
        format!("{who}: {}{code}{msg}", self.event)
    }
}

/// The outcome `up --wait` reports.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    Pending,
    Ready,
    /// A container failed: its name and why.
    Failed { container: String, reason: String },
}

/// Whether the app is ready as `up --wait` means it: every long-running container running, its
/// started hooks done, and healthy if it has a check, else running for [`SETTLE`]; every
/// one-shot exited 0; `sleep` containers are not waited for.
pub fn readiness(app: &App, status: &StatusMap) -> Readiness {
    let mut ready = true;
    for c in app.containers.iter().filter(|c| !c.sleep) {
        let Some(s) = status.get(&c.name) else {
            ready = false;
            continue;
        };
        if s.kept_stopped {
            continue;
        }
        if s.state == State::Failed {
            let reason = s.reason.clone().unwrap_or_else(|| "failed".into());
            return Readiness::Failed { container: c.name.clone(), reason };
        }
        if c.one_shot {
            match s.state {
                State::Exited if s.exit.is_some_and(|e| e.success()) => {}
                State::Exited => {
                    let code = s.exit.map(|e| e.code).unwrap_or(-1);
                    return Readiness::Failed { container: c.name.clone(), reason: format!("exited with status {code}") };
                }
                _ => ready = false,
            }
        } else {
            match s.state {
                State::Exited | State::Stopped => {
                    let code = s.exit.map(|e| e.code).unwrap_or(-1);
                    return Readiness::Failed {
                        container: c.name.clone(),
                        reason: format!("a long-running container exited (status {code})"),
                    };
                }
                State::Running if s.started_hooks_done => {
                    if let Some(h) = s.health {
                        if h == Health::Unhealthy {
                            return Readiness::Failed { container: c.name.clone(), reason: "unhealthy".into() };
                        }
                        ready &= h == Health::Healthy;
                    } else {
                        ready &= s.settled;
                    }
                }
                _ => ready = false,
            }
        }
    }
    if ready {
        Readiness::Ready
    } else {
        Readiness::Pending
    }
}
