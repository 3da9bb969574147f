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
//! [`quota`]: crate::quota

pub mod export;
pub mod import;
pub mod index;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::aws::Aws;
use crate::error::{Error, ExitCode};
use crate::manifest::DbKind;
use crate::progress::{DatabaseLine, Event, Printer, Progress};
use crate::quota::{CopySlots, Need, Room};
use crate::workflow::{Batch, Engine, EngineArgs, Workflow};

/// One database of a fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub kind: DbKind,
    pub id: String,
    /// Allocated storage: the larger, the longer its copy, the earlier it starts.
    pub gib: i32,
}

/// How one database of a fleet ended.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub database: String,
    pub kind: DbKind,
    /// The last stage it reached.
    pub stage: String,
    /// `exported`, `already exported`, `imported`, … or `failed`.
    pub result: String,
    pub error: Option<String>,
    pub hint: Option<String>,
    pub elapsed_secs: u64,
    /// The manifest or report it wrote, and its SHA-256 (manifests).
    pub file: Option<String>,
    pub sha256: Option<String>,
    /// With `--detach`: the Step Functions execution that goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

impl Outcome {
    /// How `member` ended: at `stage`, after `elapsed`, with `result`.
    fn of(member: &Member, stage: String, elapsed: Duration, result: crate::Result<Done>) -> Self {
        let mut outcome = Outcome {
            database: member.id.clone(),
            kind: member.kind,
            stage,
            result: "failed".into(),
            error: None,
            hint: None,
            elapsed_secs: elapsed.as_secs(),
            file: None,
            sha256: None,
            execution: None,
        };
        match result {
            Ok(done) => {
                outcome.result = done.result.into();
                outcome.file = done.file;
                outcome.sha256 = done.sha256;
            }
            Err(Error::Detached { execution, .. }) => {
                outcome.result = "detached".into();
                outcome.execution = Some(execution);
            }
            Err(err) => {
                outcome.error = Some(err.to_string());
                outcome.hint = err.hint();
            }
        }
        outcome
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
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
    let outcome = Outcome::of(&member, line.stage(), started.elapsed(), result);
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
/// once; a bar counts the finished ones on a terminal. Outcomes come in the order they end.
async fn run_all<F, Fut>(
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
    let (mut outcomes, clusters) = tokio::join!(
        run(instances, DbKind::Instance),
        run(clusters, DbKind::Cluster)
    );
    if let Some(bar) = total {
        bar.finish_and_clear();
    }
    outcomes.extend(clusters);
    outcomes
}

/// Databases worked on at once: twice the copy slots, so the next ones snapshot (or verify)
/// while copies run; all of them when they run as one execution (its Map keeps the limit).
fn workers(slots: &CopySlots, batched: bool) -> impl Fn(DbKind) -> usize + '_ {
    move |kind| match batched {
        true => usize::MAX,
        false => 2 * slots.limit(kind).unwrap_or(crate::quota::limit(kind)),
    }
}

/// Databases in one execution at most: an inline Map's items share the execution's history
/// of at most 25,000 events, and a database polled for hours at the default interval takes
/// about a thousand or two.
const DATABASES_PER_EXECUTION: usize = 10;

/// With `--engine step-functions` (not a dry run), the fleet's executions: per kind of
/// database, one per [`DATABASES_PER_EXECUTION`], each a Map whose width is its share of the
/// copies the account has room for, so together they stay within it.
struct Batches {
    of: BTreeMap<(DbKind, String), Arc<Batch>>,
}

impl Batches {
    fn new(aws: &Aws, batched: bool, workflow: Workflow, members: &[Member]) -> Self {
        let mut of = BTreeMap::new();
        for kind in [DbKind::Instance, DbKind::Cluster] {
            let of_kind: Vec<&Member> = members.iter().filter(|m| m.kind == kind).collect();
            if !batched || of_kind.is_empty() {
                continue;
            }
            let width = aws.copies.limit(kind).unwrap_or(crate::quota::limit(kind));
            for (ids, width) in split(of_kind, width) {
                let batch = Batch::new(workflow, ids.clone(), width);
                for id in ids {
                    of.insert((kind, id), batch.clone());
                }
            }
        }
        Batches { of }
    }

    /// The engine flags of `member`'s run: with its batch.
    fn engine(&self, engine: &EngineArgs, member: &Member) -> EngineArgs {
        let mut engine = engine.clone();
        engine.batch = self.of.get(&(member.kind, member.id.clone())).cloned();
        engine
    }

    /// Runs `job` with `member`'s engine flags; then, if its run handed in no steps, takes it
    /// out of its batch so the others do not wait for it.
    async fn run<T>(
        &self,
        aws: &Aws,
        engine: &EngineArgs,
        member: &Member,
        progress: &dyn Progress,
        job: impl AsyncFnOnce(EngineArgs) -> T,
    ) -> T {
        let engine = self.engine(engine, member);
        let result = job(engine.clone()).await;
        if let Some(batch) = &engine.batch {
            batch.leave(aws, &engine, &member.id, progress).await;
        }
        result
    }
}

/// `members` (of one kind) split into executions of at most [`DATABASES_PER_EXECUTION`],
/// largest first across them, each with its share of `width`.
fn split(mut members: Vec<&Member>, width: usize) -> Vec<(Vec<String>, usize)> {
    members.sort_by(|a, b| a.largest_first(b));
    let executions = members.len().div_ceil(DATABASES_PER_EXECUTION);
    (0..executions)
        .map(|e| {
            let ids = members.iter().skip(e).step_by(executions);
            let ids = ids.map(|m| m.id.clone()).collect();
            (ids, (width / executions).max(1))
        })
        .collect()
}

/// Whether a fleet's databases run as one execution per kind.
fn batched(engine: &EngineArgs, dry_run: bool) -> bool {
    engine.engine == Engine::StepFunctions && !dry_run
}

/// What a member needs of the snapshot room: when all run as one execution, its temporary
/// snapshot is held at once with the others', so it counts as kept.
fn room_need(need: Need, batched: bool) -> Need {
    match batched {
        true => Need {
            kept: need.kept + usize::from(need.temporary),
            temporary: false,
        },
        false => need,
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
        let (fits, room) = Room::admit(free_snapshots(aws, kind, progress).await, &needs);
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
    match crate::rds::snapshot_quota(aws, kind).await {
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

/// The summary a fleet run ends with: a table for people, the outcomes for machines.
pub struct Summary {
    pub outcomes: Vec<Outcome>,
    /// Extra lines after the table (the index, the next command).
    pub after: Vec<String>,
    pub json: serde_json::Value,
}

impl Summary {
    /// Exit code: [`ExitCode::Partial`] when any database failed.
    pub fn exit_code(&self) -> ExitCode {
        if self.outcomes.iter().any(Outcome::failed) {
            ExitCode::Partial
        } else {
            ExitCode::Ok
        }
    }

    /// The table: database, kind, stage reached, result, elapsed; then each failure's hint.
    pub fn text(&self) -> String {
        let mut rows = vec![[
            "DATABASE".to_owned(),
            "KIND".into(),
            "STAGE".into(),
            "RESULT".into(),
            "ELAPSED".into(),
        ]];
        rows.extend(self.outcomes.iter().map(|o| {
            [
                o.database.clone(),
                format!("{:?}", o.kind).to_lowercase(),
                o.stage.clone(),
                o.error
                    .as_ref()
                    .map_or_else(|| o.result.clone(), |e| format!("failed: {e}")),
                humantime::format_duration(Duration::from_secs(o.elapsed_secs)).to_string(),
            ]
        }));
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                )
                .trim_end()
                .to_owned()
            })
            .collect();
        let failed = self.outcomes.iter().filter(|o| o.failed()).count();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &self.outcomes {
            *counts.entry(o.result.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        lines.push(String::new());
        lines.push(format!(
            "{} databases: {}",
            self.outcomes.len(),
            counts.join(", ")
        ));
        for o in self.outcomes.iter().filter(|o| o.hint.is_some()) {
            lines.push(format!(
                "hint for {}: {}",
                o.database,
                o.hint.as_deref().unwrap_or_default()
            ));
        }
        if failed > 0 {
            lines.push(
                "re-run the same command to finish the rest: what is done is not done again".into(),
            );
        }
        let detached: std::collections::BTreeSet<&str> = self
            .outcomes
            .iter()
            .filter_map(|o| o.execution.as_deref())
            .collect();
        for execution in detached {
            lines.push(format!("execution going on: {execution}\n  follow it with `status --execution {execution}`; once it has succeeded, the same command again finishes the run"));
        }
        lines.extend(self.after.iter().cloned());
        lines.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(database: &str, error: Option<&str>) -> Outcome {
        Outcome {
            database: database.into(),
            kind: DbKind::Instance,
            stage: "copy".into(),
            result: if error.is_some() {
                "failed"
            } else {
                "exported"
            }
            .into(),
            error: error.map(str::to_owned),
            hint: error.map(|_| "start it".to_owned()),
            elapsed_secs: 61,
            file: None,
            sha256: None,
            execution: None,
        }
    }

    #[test]
    fn the_summary_names_each_database_and_says_some_failed() {
        let summary = Summary {
            outcomes: vec![outcome("a", None), outcome("bb", Some("it is stopped"))],
            after: vec!["index: x".into()],
            json: serde_json::Value::Null,
        };
        assert_eq!(summary.exit_code(), ExitCode::Partial);
        let text = summary.text();
        assert!(
            text.starts_with("DATABASE  KIND      STAGE  RESULT"),
            "{text}"
        );
        assert!(text.contains("bb        instance  copy   failed: it is stopped  1m 1s"));
        assert!(text.contains("2 databases: 1 exported, 1 failed"), "{text}");
        assert!(text.contains("hint for bb: start it"));
        assert!(text.ends_with("index: x"));
        let ok = Summary {
            outcomes: vec![outcome("a", None)],
            after: vec![],
            json: serde_json::Value::Null,
        };
        assert_eq!(ok.exit_code(), ExitCode::Ok);
    }

    #[test]
    fn a_large_fleet_is_split_into_executions_that_share_the_copy_limit() {
        let members: Vec<Member> = (0..25)
            .map(|i| Member {
                kind: DbKind::Instance,
                id: format!("db{i:02}"),
                gib: i,
            })
            .collect();
        let split = split(members.iter().collect(), 20);
        let sizes: Vec<usize> = split.iter().map(|(ids, _)| ids.len()).collect();
        assert_eq!(sizes, [9, 8, 8]);
        assert!(split.iter().map(|(_, w)| w).sum::<usize>() <= 20);
        // The three largest start one in each.
        let firsts: Vec<&str> = split.iter().map(|(ids, _)| ids[0].as_str()).collect();
        assert_eq!(firsts, ["db24", "db23", "db22"]);
        let small = super::split(members[..3].iter().collect(), 20);
        assert_eq!(
            small,
            [(vec!["db02".into(), "db01".into(), "db00".into()], 20)]
        );
    }

    #[tokio::test]
    async fn members_run_largest_first_within_their_kind_and_at_most_workers_at_once() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Mutex;
        let printer = Printer::new(crate::progress::OutputFormat::Json);
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
