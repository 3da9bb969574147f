//! A fleet on `--engine step-functions`: its databases share executions (a few per kind,
//! each a Map within its share of the copy limit), and what that changes in the snapshot
//! room each database needs.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Member;
use crate::aws::slots::Need;
use crate::aws::Aws;
use crate::base::progress::Progress;
use crate::base::vocabulary::DbKind;
use crate::workflow::{Batch, Engine, EngineArgs, Workflow};

/// Databases in one execution at most: an inline Map's items share the execution's history
/// of at most 25,000 events, and a database polled for hours at the default interval takes
/// about a thousand or two.
const DATABASES_PER_EXECUTION: usize = 10;

/// With `--engine step-functions` (not a dry run), the fleet's executions: per kind of
/// database, one per [`DATABASES_PER_EXECUTION`], each a Map whose width is its share of the
/// copies the account has room for, so together they stay within it.
pub(super) struct Batches {
    of: BTreeMap<(DbKind, String), Arc<Batch>>,
}

impl Batches {
    pub(super) fn new(aws: &Aws, batched: bool, workflow: Workflow, members: &[Member]) -> Self {
        let mut of = BTreeMap::new();
        for kind in [DbKind::Instance, DbKind::Cluster] {
            let of_kind: Vec<&Member> = members.iter().filter(|m| m.kind == kind).collect();
            if !batched || of_kind.is_empty() {
                continue;
            }
            let width = aws
                .copies
                .limit(kind)
                .unwrap_or(crate::aws::slots::limit(kind));
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
    pub(super) async fn run<T>(
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
pub(super) fn batched(engine: &EngineArgs, dry_run: bool) -> bool {
    engine.engine == Engine::StepFunctions && !dry_run
}

/// What a member needs of the snapshot room: when all run as one execution, its temporary
/// snapshot is held at once with the others', so it counts as kept.
pub(super) fn room_need(need: Need, batched: bool) -> Need {
    match batched {
        true => Need {
            kept: need.kept + usize::from(need.temporary),
            temporary: false,
        },
        false => need,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
