//! One poll round for all the waits of a run: a fleet's copies and restores are asked about
//! together.
//!
//! Each wait keeps its own pace ([`crate::aws::wait`]), but instead of describing its
//! resource alone it joins the next round of its kind (DB snapshots, DB cluster snapshots, DB
//! instances, DB clusters). A round asks AWS once about every identifier waiting for it, with
//! a filter (`db-snapshot-id`, `db-cluster-snapshot-id`, `db-instance-id`, `db-cluster-id`),
//! in pages of [`PAGE`] identifiers, and wakes each wait with what it saw. A round of
//! clusters also asks, in one more round's worth of pages, for their writers' instance class. A round for one identifier asks for it
//! by name, as a single handoff always did.
//!
//! A wait's first poll is asked at once (a step never waits to start waiting); later polls
//! wait until [`ROUND_GAP`] after the last round ([`ROUND_GAP_ALONE`] when it asked about one
//! resource: shorter than any wait's own pause, so a single handoff polls as it always did).
//! So however many databases wait, a kind costs at most a round every few seconds, a page per
//! hundred in flight, plus one round per new wait.
//!
//! A round that fails is tried again at the next gap, and after [`TRIES`] the waits ask
//! alone (each then reports its own error); a round that asked for one wait's resource
//! alone gives that wait its error at once.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_sdk_rds::types::Filter;
use tokio::sync::{oneshot, Notify};
use tokio::time::Instant;

use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::vocabulary::DbKind;

use super::database::{cluster_info, describe_db, instance_info, writer_of};
use super::snapshot::{describe_snapshot, snap_of_cluster, snap_of_instance};
use super::{DbInfo, Snap};

/// The least time between a round and the next that asks again about the same resources.
pub const ROUND_GAP: Duration = Duration::from_secs(5);
/// The same when the last round asked about one resource: under a wait's shortest pause
/// (2 s, less a fifth of jitter).
pub const ROUND_GAP_ALONE: Duration = Duration::from_millis(1500);
/// Identifiers in one filter, and records in one page.
const PAGE: usize = 100;
/// Failed rounds in a row before the waits ask alone.
const TRIES: u32 = 3;

/// A round's answer to one wait: what it found (`None`: not there) or the error of a round
/// that asked for it alone, or nothing when the rounds failed and the wait should ask alone.
type Answer<T> = Option<Result<Option<T>>>;
type Waits<T> = BTreeMap<String, Vec<oneshot::Sender<Answer<T>>>>;

/// The rounds of one run, by kind.
#[derive(Debug, Default)]
pub struct Rounds {
    snapshots: Arc<Round<Snap>>,
    cluster_snapshots: Arc<Round<Snap>>,
    instances: Arc<Round<DbInfo>>,
    clusters: Arc<Round<DbInfo>>,
}

/// The waits that joined the next round of one kind.
#[derive(Debug)]
struct Round<T> {
    asking: Mutex<Asking<T>>,
    /// A wait came: the rounds' task looks whether a round is due.
    arrived: Notify,
}

#[derive(Debug)]
struct Asking<T> {
    /// By identifier, lowercase (as AWS keeps them).
    waits: Waits<T>,
    /// Whether a wait's first poll is among them: the next round goes at once.
    first: bool,
    /// Whether a task runs this kind's rounds.
    running: bool,
    /// How many resources the last round asked about, and when it started.
    last: usize,
    last_at: Option<Instant>,
    /// Rounds made, and the requests they took (for the benchmark's figures).
    rounds: u64,
    requests: u64,
}

impl<T> Default for Round<T> {
    fn default() -> Self {
        Self {
            asking: Mutex::new(Asking {
                waits: BTreeMap::new(),
                first: false,
                running: false,
                last: 0,
                last_at: None,
                rounds: 0,
                requests: 0,
            }),
            arrived: Notify::new(),
        }
    }
}

impl<T> Round<T> {
    fn lock(&self) -> std::sync::MutexGuard<'_, Asking<T>> {
        self.asking.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Ends a kind's rounds however its task ends: a task that panicked leaves no wait behind
/// (each asks alone) and lets the next wait start the rounds again.
struct Running<T>(Option<Arc<Round<T>>>);

impl<T> Drop for Running<T> {
    fn drop(&mut self) {
        if let Some(round) = self.0.take() {
            let mut asking = round.lock();
            asking.running = false;
            asking.waits.clear();
        }
    }
}

impl<T: Clone + Send + 'static> Round<T> {
    /// Joins the next round for `id` (at once for a wait's `first` poll); the first wait of a
    /// quiet kind starts its rounds.
    async fn ask<F, Fut>(self: &Arc<Self>, id: &str, first: bool, describe: F) -> Answer<T>
    where
        F: Fn(Vec<String>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<(BTreeMap<String, T>, u64)>> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let lead = {
            let mut asking = self.lock();
            asking.waits.entry(id.to_lowercase()).or_default().push(tx);
            asking.first |= first;
            !std::mem::replace(&mut asking.running, true)
        };
        if lead {
            // Armed before the task exists: a task dropped before it ever ran leaves no wait.
            let running = Running(Some(Arc::clone(self)));
            tokio::spawn(Arc::clone(self).rounds(describe, running));
        } else {
            self.arrived.notify_one();
        }
        rx.await.ok().flatten()
    }

    /// Runs rounds while waits come.
    async fn rounds<F, Fut>(self: Arc<Self>, describe: F, mut running: Running<T>)
    where
        F: Fn(Vec<String>) -> Fut,
        Fut: Future<Output = Result<(BTreeMap<String, T>, u64)>>,
    {
        let mut failed = 0;
        loop {
            let Some(waits) = self.due().await else {
                // `due` marked the kind quiet under its lock.
                running.0 = None;
                return;
            };
            let ids: Vec<String> = waits.keys().cloned().collect();
            match describe(ids.clone()).await {
                Ok((found, requests)) => {
                    failed = 0;
                    let mut asking = self.lock();
                    asking.rounds += 1;
                    asking.requests += requests;
                    drop(asking);
                    answer(waits, |id| Some(Ok(found.get(id).cloned())));
                }
                Err(_) if ids.len() > 1 && failed + 1 < TRIES => {
                    failed += 1;
                    let mut asking = self.lock();
                    for (id, senders) in waits {
                        asking.waits.entry(id).or_default().extend(senders);
                    }
                }
                Err(err) => answer_failed(waits, err),
            }
        }
    }

    /// The waits of the next round, once it is due; `None` (and the kind marked quiet) when
    /// none is left.
    async fn due(&self) -> Option<Waits<T>> {
        loop {
            let at = {
                let mut asking = self.lock();
                if asking.waits.is_empty() {
                    asking.running = false;
                    return None;
                }
                let gap = match asking.last {
                    0 | 1 => ROUND_GAP_ALONE,
                    _ => ROUND_GAP,
                };
                let at = asking.last_at.map(|last| last + gap);
                if asking.first || at.is_none_or(|at| at <= Instant::now()) {
                    let waits = std::mem::take(&mut asking.waits);
                    asking.first = false;
                    asking.last = waits.len();
                    asking.last_at = Some(Instant::now());
                    return Some(waits);
                }
                at.unwrap_or_else(Instant::now)
            };
            tokio::select! {
                () = tokio::time::sleep_until(at) => {}
                () = self.arrived.notified() => {}
            }
        }
    }

    fn counted(&self) -> (u64, u64) {
        let asking = self.lock();
        (asking.rounds, asking.requests)
    }
}

/// Wakes each wait with `answer(id)`; a wait given up (its run ended) no longer listens.
fn answer<T>(waits: Waits<T>, answer: impl Fn(&str) -> Answer<T>) {
    for (id, senders) in waits {
        for sender in senders {
            let _ = sender.send(answer(&id));
        }
    }
}

/// Wakes the waits of a round that failed: the one wait of a round that asked for it alone
/// with the round's error (asking again would only repeat the request), the others to ask
/// alone.
fn answer_failed<T>(mut waits: Waits<T>, err: crate::base::error::Error) {
    let alone = match waits.values().map(Vec::len).sum::<usize>() {
        1 => waits.pop_first().and_then(|(_, mut senders)| senders.pop()),
        _ => None,
    };
    match alone {
        Some(sender) => {
            let _ = sender.send(Some(Err(err)));
        }
        None => answer(waits, |_| None),
    }
}

impl Rounds {
    /// Rounds made and requests they took, over every kind.
    pub fn counted(&self) -> (u64, u64) {
        [
            self.snapshots.counted(),
            self.cluster_snapshots.counted(),
            self.instances.counted(),
            self.clusters.counted(),
        ]
        .iter()
        .fold((0, 0), |(r, q), (rounds, requests)| {
            (r + rounds, q + requests)
        })
    }
}

/// A snapshot (identifier or shared ARN), asked in the next round of its kind (at once for
/// a wait's `first` poll); a shared one by ARN is looked for alone.
pub async fn poll_snapshot(aws: &Aws, kind: DbKind, id: &str, first: bool) -> Result<Option<Snap>> {
    if id.starts_with("arn:") {
        return describe_snapshot(aws, kind, id).await;
    }
    let round = match kind {
        DbKind::Instance => &aws.rounds.snapshots,
        DbKind::Cluster => &aws.rounds.cluster_snapshots,
    };
    let each = aws.clone();
    let answer = round
        .ask(id, first, move |ids| {
            let aws = each.clone();
            async move { snapshots_by_id(&aws, kind, ids).await }
        })
        .await;
    match answer {
        Some(found) => found,
        None => describe_snapshot(aws, kind, id).await,
    }
}

/// A database, asked in the next round of its kind (at once for a wait's `first` poll).
pub async fn poll_db(aws: &Aws, kind: DbKind, id: &str, first: bool) -> Result<Option<DbInfo>> {
    let each = aws.clone();
    let answer = match kind {
        DbKind::Instance => {
            let ask = move |ids| {
                let aws = each.clone();
                async move { instances_by_id(&aws, ids).await }
            };
            aws.rounds.instances.ask(id, first, ask).await
        }
        DbKind::Cluster => {
            let ask = move |ids| {
                let aws = each.clone();
                async move { clusters_by_id(&aws, ids).await }
            };
            aws.rounds.clusters.ask(id, first, ask).await
        }
    };
    match answer {
        Some(found) => found,
        None => describe_db(aws, kind, id).await,
    }
}

/// Every item `$op` returns for the identifiers `$ids` (its filter `$filter`), a page of
/// [`PAGE`] at a time, and the requests it took. A macro: the four describe operations'
/// paginators share this shape but no trait.
macro_rules! by_filter {
    ($aws:expr, $op:ident, $filter:literal, $items:ident, $action:literal, $ids:expr) => {{
        let (mut items, mut requests) = (Vec::new(), 0_u64);
        for chunk in $ids.chunks(PAGE) {
            let filter = Filter::builder()
                .name($filter)
                .set_values(Some(chunk.to_vec()))
                .build();
            let mut pages = $aws
                .rds
                .$op()
                .filters(filter)
                .max_records(PAGE as i32)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                requests += 1;
                let page = page.map_err(sdk($action))?;
                items.extend(page.$items().iter().cloned());
            }
        }
        (items, requests)
    }};
}

/// What one describe by name found, under its identifier.
fn one<T>(id: &str, found: Option<T>) -> BTreeMap<String, T> {
    found.map(|x| (id.to_lowercase(), x)).into_iter().collect()
}

/// Snapshots by identifier, and the requests it took: one by name, many by filter.
async fn snapshots_by_id(
    aws: &Aws,
    kind: DbKind,
    ids: Vec<String>,
) -> Result<(BTreeMap<String, Snap>, u64)> {
    if let [id] = ids.as_slice() {
        return Ok((one(id, describe_snapshot(aws, kind, id).await?), 1));
    }
    let (snaps, requests) = match kind {
        DbKind::Instance => {
            let (snaps, requests) = by_filter!(
                aws,
                describe_db_snapshots,
                "db-snapshot-id",
                db_snapshots,
                "rds:DescribeDBSnapshots",
                ids
            );
            (
                snaps.iter().map(snap_of_instance).collect::<Vec<_>>(),
                requests,
            )
        }
        DbKind::Cluster => {
            let (snaps, requests) = by_filter!(
                aws,
                describe_db_cluster_snapshots,
                "db-cluster-snapshot-id",
                db_cluster_snapshots,
                "rds:DescribeDBClusterSnapshots",
                ids
            );
            (snaps.iter().map(snap_of_cluster).collect(), requests)
        }
    };
    Ok((snaps.into_iter().map(by_id).collect(), requests))
}

/// DB instances by identifier, and the requests it took: one by name, many by filter.
async fn instances_by_id(aws: &Aws, ids: Vec<String>) -> Result<(BTreeMap<String, DbInfo>, u64)> {
    if let [id] = ids.as_slice() {
        return Ok((one(id, describe_db(aws, DbKind::Instance, id).await?), 1));
    }
    let (instances, requests) = by_filter!(
        aws,
        describe_db_instances,
        "db-instance-id",
        db_instances,
        "rds:DescribeDBInstances",
        ids
    );
    let found = instances.iter().map(instance_info);
    let found = found.map(|info| (info.database.identifier.to_lowercase(), info));
    Ok((found.collect(), requests))
}

/// DB clusters by identifier, each with its writer's instance class, and the requests it
/// took: one cluster by name (and its writer), many by filter (and their writers in one
/// round of instances).
async fn clusters_by_id(aws: &Aws, ids: Vec<String>) -> Result<(BTreeMap<String, DbInfo>, u64)> {
    if let [id] = ids.as_slice() {
        let found = describe_db(aws, DbKind::Cluster, id).await?;
        let requests = 1 + u64::from(found.as_ref().is_some_and(|c| c.writer.is_some()));
        return Ok((one(id, found), requests));
    }
    let (clusters, requests) = by_filter!(
        aws,
        describe_db_clusters,
        "db-cluster-id",
        db_clusters,
        "rds:DescribeDBClusters",
        ids
    );
    let writers: Vec<String> = clusters
        .iter()
        .filter_map(|c| writer_of(c).map(str::to_owned))
        .collect();
    let (classes, asked) = match writers.is_empty() {
        true => (BTreeMap::new(), 0),
        false => instances_by_id(aws, writers).await?,
    };
    let found = clusters.iter().map(|c| {
        let class = writer_of(c)
            .and_then(|w| classes.get(&w.to_lowercase()))
            .and_then(|w| w.database.instance_class.clone());
        let info = cluster_info(c, class);
        (info.database.identifier.to_lowercase(), info)
    });
    Ok((found.collect(), requests + asked))
}

fn by_id(snap: Snap) -> (String, Snap) {
    (snap.id.to_lowercase(), snap)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test's describe answers.
    type Found = std::future::Ready<Result<(BTreeMap<String, String>, u64)>>;
    use std::sync::atomic::{AtomicU64, Ordering};

    impl<T: Clone + Send + 'static> Round<T> {
        /// [`Round::ask`], an error shown as such (errors do not compare).
        async fn asked<F, Fut>(self: &Arc<Self>, id: &str, first: bool, f: F) -> Option<Option<T>>
        where
            F: Fn(Vec<String>) -> Fut + Send + 'static,
            Fut: Future<Output = Result<(BTreeMap<String, T>, u64)>> + Send + 'static,
        {
            self.ask(id, first, f)
                .await
                .map(|found| found.unwrap_or_else(|err| panic!("a round's error: {err}")))
        }
    }

    /// A describe that answers `status` for every identifier and counts its calls.
    fn counting(
        calls: Arc<AtomicU64>,
        sizes: Arc<Mutex<Vec<usize>>>,
    ) -> impl Fn(Vec<String>) -> Found {
        move |ids: Vec<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            sizes.lock().unwrap().push(ids.len());
            let found = ids
                .into_iter()
                .map(|id| (id.clone(), format!("{id} available")));
            std::future::ready(Ok((found.collect(), 1)))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_thousand_waits_at_once_take_one_round() {
        let round: Arc<Round<String>> = Arc::default();
        let (calls, sizes) = (Arc::new(AtomicU64::new(0)), Arc::new(Mutex::new(vec![])));
        let waits: Vec<_> = (0..1000)
            .map(|i| {
                let (round, calls, sizes) = (round.clone(), calls.clone(), sizes.clone());
                tokio::spawn(async move {
                    round
                        .asked(&format!("db{i}"), false, counting(calls, sizes))
                        .await
                })
            })
            .collect();
        for (i, wait) in waits.into_iter().enumerate() {
            let answer = wait.await.unwrap();
            assert_eq!(answer, Some(Some(format!("db{i} available"))));
        }
        // The first wait starts a round at once; those that came while it ran share the next.
        assert!(calls.load(Ordering::SeqCst) <= 2, "{sizes:?}");
        assert_eq!(sizes.lock().unwrap().iter().sum::<usize>(), 1000);
    }

    fn ok(ids: Vec<String>) -> Found {
        let found = ids.into_iter().map(|id| (id, "available".to_owned()));
        std::future::ready(Ok((found.collect(), 1)))
    }

    fn failing(_: Vec<String>) -> Found {
        std::future::ready(Err(crate::base::error::Error::refused("no", "no")))
    }

    #[tokio::test(start_paused = true)]
    async fn a_first_poll_is_asked_at_once_and_later_ones_after_the_gap() {
        let round: Arc<Round<String>> = Arc::default();
        let start = Instant::now();
        let available = Some(Some("available".to_owned()));
        assert_eq!(round.asked("a", true, ok).await, available);
        assert_eq!(start.elapsed(), Duration::ZERO, "a quiet kind asks at once");
        assert_eq!(
            round.asked("A", false, ok).await,
            available,
            "as AWS keeps it"
        );
        assert_eq!(start.elapsed(), ROUND_GAP_ALONE, "again: after the gap");
        assert_eq!(round.asked("a", true, ok).await, available);
        assert_eq!(
            start.elapsed(),
            ROUND_GAP_ALONE,
            "another wait's first poll: at once"
        );
        let two = |first| {
            let (round, available) = (round.clone(), available.clone());
            async move {
                let (c, d) = tokio::join!(round.asked("c", first, ok), round.asked("d", false, ok));
                assert_eq!((c, d), (available.clone(), available));
            }
        };
        two(true).await;
        assert_eq!(start.elapsed(), ROUND_GAP_ALONE);
        two(false).await;
        assert_eq!(
            start.elapsed(),
            ROUND_GAP_ALONE + ROUND_GAP,
            "many: the longer gap"
        );
        let missing = |_: Vec<String>| std::future::ready(Ok((BTreeMap::new(), 1)));
        assert_eq!(
            round.asked("e", true, missing).await,
            Some(None),
            "not there"
        );
        assert_eq!(round.counted(), (6, 6));
    }

    #[tokio::test(start_paused = true)]
    async fn waits_out_of_step_share_rounds() {
        // Ten waits polling every 2 to 3 s, out of step, for a minute: a round every gap at
        // most, plus each one's first.
        let round: Arc<Round<String>> = Arc::default();
        let waits: Vec<_> = (0..10u64)
            .map(|i| {
                let round = round.clone();
                tokio::spawn(async move {
                    let mut first = true;
                    let end = Instant::now() + Duration::from_secs(60);
                    while Instant::now() < end {
                        let id = format!("w{i}");
                        round
                            .asked(&id, std::mem::replace(&mut first, false), ok)
                            .await;
                        tokio::time::sleep(Duration::from_millis(2000 + 100 * i)).await;
                    }
                })
            })
            .collect();
        for wait in waits {
            wait.await.unwrap();
        }
        let (rounds, _) = round.counted();
        assert!(rounds <= 60 / 5 + 1 + 10, "{rounds} rounds");
    }

    #[tokio::test(start_paused = true)]
    async fn failed_rounds_are_tried_again_then_each_wait_asks_alone_and_one_alone_gets_its_error()
    {
        let round: Arc<Round<String>> = Arc::default();
        let calls = Arc::new(AtomicU64::new(0));
        let counted = calls.clone();
        let failing_counted = move |ids: Vec<String>| {
            counted.fetch_add(1, Ordering::SeqCst);
            failing(ids)
        };
        let start = Instant::now();
        assert!(
            matches!(round.ask("a", true, failing_counted).await, Some(Err(_))),
            "one alone: its error, not a call to make again"
        );
        assert_eq!(
            (calls.load(Ordering::SeqCst), start.elapsed()),
            (1, Duration::ZERO)
        );
        let start = Instant::now();
        let (x, y) = tokio::join!(
            round.asked("x", true, failing),
            round.asked("y", true, failing)
        );
        assert_eq!((x, y), (None, None));
        assert_eq!(
            start.elapsed(),
            ROUND_GAP * (TRIES - 1),
            "tried {TRIES} times"
        );
        assert_eq!(round.counted(), (0, 0), "no round answered");
    }

    #[tokio::test(start_paused = true)]
    async fn a_round_task_that_panics_leaves_no_wait_hanging() {
        let round: Arc<Round<String>> = Arc::default();
        let panicking = |_: Vec<String>| -> Found { panic!("a bug in a round") };
        assert_eq!(round.asked("a", true, panicking).await, None, "asks alone");
        tokio::task::yield_now().await;
        let available = Some(Some("available".to_owned()));
        assert_eq!(
            round.asked("a", true, ok).await,
            available,
            "rounds start again"
        );
    }
}
