//! Restart policy decisions: whether an exited container restarts, and after how long.
//!
//! Delays double from 100 ms up to 30 s and fall back to 100 ms once a run lasted 60 s, as
//! Docker and systemd do, so a crash loop cannot spin the host while a container that fails
//! once a day restarts at once.

use std::time::Duration;

use tfctl_schema::model::{Restart, RestartPolicy};

const FIRST: Duration = Duration::from_millis(100);
const CEILING: Duration = Duration::from_secs(30);
const RESET_AFTER: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Start it again after this delay.
    RestartAfter(Duration),
    /// Leave it exited: the policy does not restart this exit.
    Stay,
    /// Leave it exited: `max` restarts are used up (`failed` fires with restart-limit).
    LimitReached,
}

/// The restart state of one container.
#[derive(Debug, Clone, Default)]
pub struct Backoff {
    /// Restarts made so far (counted against `max`).
    pub restarts: u32,
    next: Option<Duration>,
}

impl Backoff {
    /// Decides what follows an exit that tfctl did not ask for. `ran_for` is how long the
    /// process ran; `success` whether it exited 0.
    pub fn on_exit(&mut self, policy: &Restart, success: bool, ran_for: Duration) -> Decision {
        let wanted = match policy.policy {
            RestartPolicy::No => false,
            // A `tfctl stop` is an exit tfctl asked for: it never gets here.
            RestartPolicy::Always | RestartPolicy::UnlessStopped => true,
            RestartPolicy::OnFailure => !success,
        };
        if !wanted {
            return Decision::Stay;
        }
        if policy.max.is_some_and(|max| self.restarts >= max) {
            return Decision::LimitReached;
        }
        if ran_for >= RESET_AFTER {
            self.next = None;
        }
        let delay = self.next.unwrap_or(FIRST);
        self.next = Some((delay * 2).min(CEILING));
        self.restarts += 1;
        Decision::RestartAfter(delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(policy: RestartPolicy, max: Option<u32>) -> Restart {
        Restart { policy, max }
    }

    #[test]
    fn delays_double_to_a_ceiling_and_reset_after_a_long_run() {
        let p = policy(RestartPolicy::Always, None);
        let mut b = Backoff::default();
        let short = Duration::from_millis(10);
        let delays: Vec<_> = (0..12)
            .map(|_| match b.on_exit(&p, true, short) {
                Decision::RestartAfter(d) => d.as_millis(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(delays[..4], [100, 200, 400, 800]);
        assert_eq!(*delays.last().unwrap(), 30_000);
        assert_eq!(b.on_exit(&p, true, Duration::from_secs(61)), Decision::RestartAfter(FIRST));
    }

    #[test]
    fn policies_and_max() {
        let mut b = Backoff::default();
        assert_eq!(b.on_exit(&policy(RestartPolicy::No, None), false, Duration::ZERO), Decision::Stay);
        let on_failure = policy(RestartPolicy::OnFailure, Some(2));
        assert_eq!(b.on_exit(&on_failure, true, Duration::ZERO), Decision::Stay);
        assert!(matches!(b.on_exit(&on_failure, false, Duration::ZERO), Decision::RestartAfter(_)));
        assert!(matches!(b.on_exit(&on_failure, false, Duration::ZERO), Decision::RestartAfter(_)));
        assert_eq!(b.on_exit(&on_failure, false, Duration::ZERO), Decision::LimitReached);
        assert_eq!(b.restarts, 2);
    }
}
