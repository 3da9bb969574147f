//! Many databases in one run: `src-agent export` of a selection, `tgt-agent import` of many
//! manifests or an index.
//!
//! Each database runs the same export or import as a single run (its own names, state file
//! and manifest or report), concurrently with the others, within AWS's limits ([`quota`]):
//! never more snapshot copies in progress than the account and region allow, never more
//! manual snapshots than the quota leaves room for. Largest databases first, so the longest
//! copies start earliest. One database failing does not stop the others; the run ends with
//! a summary, and the same command run again finishes only what is left.
//!
//! [`quota`]: crate::aws::quota

pub mod export;
pub mod import;
pub mod index;

mod batches;
mod summary;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};

use crate::aws::budget::Budget;
use crate::aws::slots::{CopySlots, Need, Room};
use crate::aws::Aws;
use crate::base::error::Error;
use crate::base::progress::{DatabaseLine, Event, Printer, Progress};
use crate::base::vocabulary::DbKind;

use batches::{batched, room_need, Batches};
pub use summary::{Outcome, Summary};

/// One database of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub kind: DbKind,
    pub id: String,
    /// Allocated storage: the larger, the longer its copy, the earlier it starts.
    pub gib: i32,
}

impl Member {
    /// Largest allocated storage first (the longest copies start earliest), then by name.
    fn largest_first(&self, other: &Self) -> std::cmp::Ordering {
        other
            .gib
            .cmp(&self.gib)
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// What one database's run returns when it succeeds.
pub struct Done {
    pub result: &'static str,
    pub file: Option<String>,
    pub sha256: Option<String>,
}

/// Runs `job` for one member on its own line; turns its end into an [`Outcome`].
async fn one<F>(member: Member, printer: &Printer, job: F) -> Outcome
where
    F: AsyncFnOnce(&Member, &DatabaseLine) -> crate::Result<Done>,
{
    let line = printer.line(&member.id);
    let started = Instant::now();
    let result = job(&member, &line).await;
    let outcome = Outcome::of(&member, line.reached(), started.elapsed(), result);
    let json = serde_json::to_value(&outcome).unwrap_or_default();
    let text = match &outcome.error {
        Some(error) => format!("failed at {}: {error}", outcome.stage),
        None => outcome.result.clone(),
    };
    let event = if outcome.failed() {
        "failed"
    } else {
        "finished"
    };
    line.finish(event, &text, &json);
    outcome
}

/// Runs every member, largest first within its kind, at most `workers(kind)` of a kind at
/// once; a bar counts the finished ones on a terminal, and a line says when requests wait
/// for the run's own budget. Outcomes come in the order they end.
async fn run_all<F, Fut>(
    budget: &Budget,
    members: Vec<Member>,
    workers: impl Fn(DbKind) -> usize,
    printer: &Printer,
    job: F,
) -> Vec<Outcome>
where
    F: Fn(Member) -> Fut,
    Fut: Future<Output = Outcome>,
{
    let total = printer.total(members.len());
    let (instances, clusters): (Vec<_>, Vec<_>) = members
        .into_iter()
        .partition(|m| m.kind == DbKind::Instance);
    let run = |mut members: Vec<Member>, kind| {
        members.sort_by(Member::largest_first);
        stream::iter(members)
            .map(&job)
            .buffer_unordered(workers(kind).max(1))
            .inspect(|_| {
                if let Some(bar) = &total {
                    bar.inc(1);
                }
            })
            .collect::<Vec<_>>()
    };
    let both = async {
        tokio::join!(
            run(instances, DbKind::Instance),
            run(clusters, DbKind::Cluster)
        )
    };
    let (mut outcomes, clusters) = tokio::select! {
        both = both => both,
        never = watch_budget(budget, printer) => match never {},
    };
    if let Some(bar) = total {
        bar.finish_and_clear();
    }
    outcomes.extend(clusters);
    outcomes
}

/// The run's poll rounds ([`crate::aws::rds::Rounds`]): how many, and the requests they took.
fn poll_rounds(aws: &Aws) -> serde_json::Value {
    let (mut rounds, mut requests) = aws.rounds.counted();
    if let Some(there) = aws.destination() {
        let (more, asked) = there.rounds.counted();
        (rounds, requests) = (rounds + more, requests + asked);
    }
    serde_json::json!({ "rounds": rounds, "requests": requests })
}

/// How often a fleet says that requests wait for the run's budget.
const SAY_WAITING_EVERY: Duration = Duration::from_secs(10);

/// Says, every [`SAY_WAITING_EVERY`] while it is so, how many requests wait for their turn
/// in the run's own budget (the run holds itself back) and how many back off after AWS
/// throttled them; and once none does, that they go again. Never ends.
async fn watch_budget(budget: &Budget, progress: &dyn Progress) -> std::convert::Infallible {
    let started = tokio::time::Instant::now();
    let mut said = [false; 6];
    loop {
        tokio::time::sleep(SAY_WAITING_EVERY).await;
        for (bucket, said) in budget.buckets().into_iter().zip(said.iter_mut()) {
            let (waiting, backing_off) = bucket.waiting();
            if waiting + backing_off == 0 {
                if std::mem::take(said) {
                    progress.event(&Event::step(
                        "request budget",
                        bucket.service,
                        "no request waits",
                    ));
                }
                continue;
            }
            *said = true;
            progress.event(&Event::wait(
                "request budget",
                bucket.service,
                &waiting_line(bucket, waiting, backing_off),
                started.elapsed(),
            ));
        }
    }
}

/// `12 requests wait their turn in this run's budget (now 3 per second; …)`.
fn waiting_line(bucket: &crate::aws::budget::Bucket, waiting: usize, backing_off: usize) -> String {
    let (rate, now) = (bucket.rate(), bucket.current_rate());
    let mut parts = vec![];
    if waiting > 0 {
        let pace = if now < rate.per_second {
            format!(
                "now {now:.1} per second, slowed by throttling; its own is {} per second",
                rate.per_second
            )
        } else {
            format!(
                "{} per second after a burst of {}",
                rate.per_second, rate.burst
            )
        };
        parts.push(format!(
            "{waiting} requests wait their turn in this run's budget ({pace})"
        ));
    }
    if backing_off > 0 {
        parts.push(format!("{backing_off} back off after AWS throttled them"));
    }
    if bucket.service == "rds" && waiting > 0 && backing_off == 0 && now >= rate.per_second {
        parts.push("--max-request-rate sets the budget".into());
    }
    parts.join("; ")
}

/// Databases worked on at once: twice the copy slots, so the next ones snapshot (or verify)
/// while copies run; all of them when they run as one execution (its Map keeps the limit).
fn workers(slots: &CopySlots, batched: bool) -> impl Fn(DbKind) -> usize + '_ {
    move |kind| match batched {
        true => usize::MAX,
        false => 2 * slots.limit(kind).unwrap_or(crate::aws::slots::limit(kind)),
    }
}

/// Which members the manual snapshot quota has room for (in the order given, largest first),
/// and the room each admitted one takes its temporary snapshot from; the others end refused.
async fn admit(
    aws: &Aws,
    mut members: Vec<(Member, Need)>,
    progress: &dyn Progress,
) -> (Vec<Member>, BTreeMap<String, Option<Room>>, Vec<Outcome>) {
    members.sort_by(|(a, _), (b, _)| a.largest_first(b));
    let (mut admitted, mut rooms, mut outcomes) = (vec![], BTreeMap::new(), vec![]);
    for kind in [DbKind::Instance, DbKind::Cluster] {
        let (of_kind, needs): (Vec<Member>, Vec<Need>) = members
            .iter()
            .filter(|(m, _)| m.kind == kind)
            .cloned()
            .unzip();
        if of_kind.is_empty() {
            continue;
        }
        let free = free_snapshots(aws, kind, progress).await;
        let (fits, room) = match aws.destination() {
            None => Room::admit(free, &needs),
            Some(there) => {
                Room::admit_apart(free_snapshots(there, kind, progress).await, free, &needs)
            }
        };
        for ((member, need), fits) in of_kind.into_iter().zip(needs).zip(fits) {
            if fits {
                rooms.insert(member.id.clone(), need.temporary.then(|| room.clone()));
                admitted.push(member);
            } else {
                let err = Error::refused(
                    format!("the region's manual {} snapshot quota has no room left for this database's snapshots", kind.name()),
                    "delete manual snapshots you no longer need or ask AWS for a higher quota (Service Quotas, Amazon RDS), then re-run the same command",
                );
                outcomes.push(refused(&member, err));
            }
        }
    }
    (admitted, rooms, outcomes)
}

/// Manual snapshots the quota still allows, or `None` (with a warning) if it is unreadable.
async fn free_snapshots(aws: &Aws, kind: DbKind, progress: &dyn Progress) -> Option<usize> {
    match crate::aws::rds::snapshot_quota(aws, kind).await {
        Ok(Some((used, max))) => Some(usize::try_from(max - used).unwrap_or(0)),
        Ok(None) => None,
        Err(err) => {
            progress.event(&Event::warning(
                "snapshot quota",
                "rds:DescribeAccountAttributes",
                &format!("not checked ({err})"),
            ));
            None
        }
    }
}

/// Says how many databases run and the copy limits they run within.
fn say_limits(aws: &Aws, databases: usize, progress: &dyn Progress) {
    let limit = |kind| aws.copies.limit(kind).unwrap_or(0);
    progress.event(&Event::step(
        "fleet",
        &format!("{databases} databases"),
        &format!(
            "at most {} DB snapshot and {} DB cluster snapshot copies at once",
            limit(DbKind::Instance),
            limit(DbKind::Cluster)
        ),
    ));
}

/// Waits for room for a temporary snapshot when the member needs one.
async fn take_room(room: Option<Room>) -> Option<tokio::sync::OwnedSemaphorePermit> {
    match room {
        Some(room) => room.take().await,
        None => None,
    }
}

/// An outcome for a member refused before it started.
fn refused(member: &Member, err: Error) -> Outcome {
    Outcome::of(member, "quota".into(), Duration::ZERO, Err(err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn members_run_largest_first_within_their_kind_and_at_most_workers_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let printer = Printer::new(crate::base::progress::OutputFormat::Json);
        let members: Vec<Member> = (0..6)
            .map(|i| Member {
                kind: if i % 3 == 0 {
                    DbKind::Cluster
                } else {
                    DbKind::Instance
                },
                id: format!("db{i}"),
                gib: i * 10,
            })
            .collect();
        let (now, peak, order) = (AtomicUsize::new(0), AtomicUsize::new(0), Mutex::new(vec![]));
        let outcomes = run_all(
            &Budget::new(None),
            members,
            |_| 1,
            &printer,
            |m| {
                let (now, peak, order, printer) = (&now, &peak, &order, &printer);
                async move {
                    one(m, printer, async |m: &Member, _: &DatabaseLine| {
                        order.lock().unwrap().push(m.id.clone());
                        let running = now.fetch_add(1, Ordering::SeqCst) + 1;
                        peak.fetch_max(running, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(5)).await;
                        now.fetch_sub(1, Ordering::SeqCst);
                        Ok(Done {
                            result: "exported",
                            file: None,
                            sha256: None,
                        })
                    })
                    .await
                }
            },
        )
        .await;
        assert_eq!(outcomes.len(), 6);
        assert_eq!(peak.load(Ordering::SeqCst), 2, "one per kind");
        let order = order.lock().unwrap().clone();
        let instances: Vec<_> = order
            .iter()
            .filter(|id| !["db0", "db3"].contains(&id.as_str()))
            .collect();
        assert_eq!(instances, ["db5", "db4", "db2", "db1"]);
    }
}
