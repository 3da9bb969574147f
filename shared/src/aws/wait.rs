//! Waiting for RDS resources to reach a goal status.
//!
//! The shape of the SDK's waiters (poll, classify the status, back off) without their limits:
//! the first poll is immediate, delays grow from a short floor with jitter, an overall
//! deadline comes from `--wait-timeout`, and the statuses botocore's waiters miss
//! (`inaccessible-encryption-credentials`, `restore-error`, `incompatible-network`,
//! `storage-full`, …) fail at once. Each poll reports a progress [`Event`]. Time comes from
//! `tokio::time`, so tests run with paused time and never sleep.

use std::future::Future;
use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::TERMINAL_STATUSES;

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy)]
pub struct WaitPolicy {
    pub deadline: Duration,
    pub min_delay: Duration,
    pub max_delay: Duration,
}

impl WaitPolicy {
    pub fn new(deadline: Duration) -> Self {
        Self {
            deadline,
            min_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(30),
        }
    }

    /// The delay before poll number `attempt` (1-based), growing by half each time, with
    /// ±20% jitter so many waiting runs do not poll in step.
    fn delay(&self, attempt: u32) -> Duration {
        let base =
            self.min_delay.as_secs_f64() * 1.5f64.powi(attempt.saturating_sub(1).min(20) as i32);
        let capped = base.min(self.max_delay.as_secs_f64());
        let jitter = rand::rng().random_range(0.8..=1.2);
        Duration::from_secs_f64(capped * jitter)
    }
}

/// What to wait for.
#[derive(Debug, Clone)]
pub struct Goal<'a> {
    /// The step of the run, e.g. `copy snapshot`.
    pub stage: &'a str,
    /// The resource polled, e.g. `DB snapshot rds-handoff-db1`.
    pub resource: &'a str,
    /// The status that ends the wait.
    pub status: &'a str,
}

/// Something polled for its status: a status string, a snapshot, a database.
pub trait Status {
    fn status(&self) -> &str;
}

impl Status for String {
    fn status(&self) -> &str {
        self
    }
}

/// Polls until `poll` returns something in the goal status, and returns that last answer
/// (no second request for what the last poll said). `poll` returns `None` when the resource
/// is gone (a failure unless the goal is `deleted`).
pub async fn wait_for<T, F, Fut>(
    goal: &Goal<'_>,
    policy: WaitPolicy,
    progress: &dyn Progress,
    mut poll: F,
) -> Result<T>
where
    T: Status,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Option<T>>>,
{
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        let found = poll().await?;
        let status = found
            .as_ref()
            .map_or("deleted", |found| found.status())
            .to_owned();
        let elapsed = started.elapsed();
        progress.event(&Event::wait(goal.stage, goal.resource, &status, elapsed));
        if let Some(found) = found.filter(|_| status == goal.status) {
            return Ok(found);
        }
        if TERMINAL_STATUSES.contains(&status.as_str()) {
            return Err(Error::TerminalStatus {
                resource: goal.resource.to_owned(),
                status,
            });
        }
        attempt += 1;
        let delay = policy.delay(attempt);
        if elapsed + delay > policy.deadline {
            return Err(Error::WaitTimeout {
                resource: goal.resource.to_owned(),
                goal: goal.status.to_owned(),
                status,
                waited: humantime::format_duration(Duration::from_secs(elapsed.as_secs()))
                    .to_string(),
            });
        }
        tokio::time::sleep(delay).await;
    }
}

/// Parses `--wait-timeout` values such as `90m`, `2h`, `1h30m`.
pub fn parse_duration(value: &str) -> std::result::Result<Duration, String> {
    humantime::parse_duration(value)
        .map_err(|e| format!("`{value}` is not a duration like `90m` or `2h`: {e}"))
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<Event>>);
    impl Progress for Recorder {
        fn event(&self, event: &Event) {
            self.0.lock().unwrap().push(event.clone());
        }
    }

    fn goal() -> Goal<'static> {
        Goal {
            stage: "copy snapshot",
            resource: "DB snapshot s1",
            status: "available",
        }
    }

    /// A poller that answers the given statuses in order, then repeats the last one.
    fn scripted(statuses: &[&str]) -> impl FnMut() -> std::future::Ready<Result<Option<String>>> {
        let queue = RefCell::new(statuses.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        move || {
            let mut q = queue.borrow_mut();
            let next = if q.len() > 1 {
                q.remove(0)
            } else {
                q[0].clone()
            };
            std::future::ready(Ok(Some(next)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn succeeds_after_n_polls_without_sleeping() {
        let recorder = Recorder::default();
        let wall = std::time::Instant::now();
        let start = Instant::now();
        let poll = scripted(&["creating", "creating", "copying", "available"]);
        wait_for(
            &goal(),
            WaitPolicy::new(Duration::from_secs(3600)),
            &recorder,
            poll,
        )
        .await
        .unwrap();
        let events = recorder.0.lock().unwrap();
        let statuses: Vec<_> = events.iter().map(|e| e.status.as_str()).collect();
        assert_eq!(statuses, ["creating", "creating", "copying", "available"]);
        // Three backoff delays of about 2 s, 3 s and 4.5 s (±20%) passed on the paused clock.
        let slept = start.elapsed().as_secs_f64();
        assert!((7.6..=11.4).contains(&slept), "virtual time {slept}");
        assert!(events
            .windows(2)
            .all(|w| w[0].elapsed_secs <= w[1].elapsed_secs));
        assert!(
            wall.elapsed() < Duration::from_secs(1),
            "it must not sleep for real"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn terminal_status_fails_at_once() {
        for terminal in [
            "failed",
            "inaccessible-encryption-credentials",
            "restore-error",
            "storage-full",
            "incompatible-network",
        ] {
            let recorder = Recorder::default();
            let poll = scripted(&["creating", terminal]);
            let err = wait_for(
                &goal(),
                WaitPolicy::new(Duration::from_secs(3600)),
                &recorder,
                poll,
            )
            .await
            .unwrap_err();
            assert!(
                matches!(&err, Error::TerminalStatus { status, .. } if status == terminal),
                "{err}"
            );
            assert_eq!(recorder.0.lock().unwrap().len(), 2);
            assert_eq!(err.exit_code(), crate::base::error::ExitCode::Timeout);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn vanished_resource_is_terminal() {
        let recorder = Recorder::default();
        let err = wait_for(
            &goal(),
            WaitPolicy::new(Duration::from_secs(60)),
            &recorder,
            || std::future::ready(Ok(None::<String>)),
        )
        .await
        .unwrap_err();
        assert!(err.to_string().contains("`deleted`"), "{err}");
    }

    #[tokio::test(start_paused = true)]
    async fn deadline_exceeded() {
        let recorder = Recorder::default();
        let start = Instant::now();
        let poll = scripted(&["copying"]);
        let err = wait_for(
            &goal(),
            WaitPolicy::new(Duration::from_secs(300)),
            &recorder,
            poll,
        )
        .await
        .unwrap_err();
        assert!(matches!(err, Error::WaitTimeout { .. }), "{err}");
        assert!(err.to_string().contains("last status `copying`"), "{err}");
        assert!(
            start.elapsed() <= Duration::from_secs(300),
            "never waits past the deadline"
        );
        let polls = recorder.0.lock().unwrap().len();
        assert!((8..=20).contains(&polls), "{polls} polls in 300 s");
    }

    #[test]
    fn delays_grow_and_cap() {
        let policy = WaitPolicy::new(Duration::from_secs(3600));
        assert!(policy.delay(1) <= Duration::from_secs_f64(2.4));
        assert!(policy.delay(30) <= Duration::from_secs(36));
        assert!(policy.delay(30) >= Duration::from_secs(24));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90m").unwrap(), Duration::from_secs(5400));
        assert!(parse_duration("soon").unwrap_err().contains("`soon`"));
    }
}
