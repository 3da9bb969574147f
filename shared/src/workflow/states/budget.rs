//! The 25,000 history events a Standard execution may hold, shared out as poll rounds.
//!
//! Every state an execution enters writes history events; only the poll loops grow with
//! time. So each step's wait is capped at `poll.rounds` rounds, which the agent sets from the
//! execution's databases and steps, counting every event at its worst (every Task retried
//! to its last attempt): the history cannot fill, however long AWS takes. A step that polls
//! that often ends its database's item with `RdsHandoff.StillWaiting`, and the next attempt
//! goes on waiting where this one stopped.

use super::super::step::{params, Fill};
use super::super::{OpKind, Step};

/// AWS's quota of history events per Standard execution.
pub const MAX_EVENTS: u64 = 25_000;
/// Fewer rounds than this per step, and the execution holds too many databases.
pub const MIN_ROUNDS: u64 = 5;
/// The execution's own: started and ended (2), the Map entered, started, succeeded and
/// exited (4), `Failures`, `Any failed` and the final state (2 each).
const EXECUTION: u64 = 12;
/// A Task at worst: entered, scheduled, started, succeeded, exited (5), and its 5 retries
/// each scheduled, started and failed (15).
const TASK: u64 = 20;
/// A database's own: its Map iteration started and ended, the kind Choice, its end Pass.
const ITEM: u64 = 6;
/// One poll round: the describe Task, then the status Choice, the Wait, the count Pass, the
/// backoff Choice and the doubling Pass, 2 events each.
pub const ROUND: u64 = TASK + 5 * 2;

/// A step's events apart from its rounds: its skip Choice and start Pass, the first describe
/// (not found), the create (a Choice per optional parameter, then the Task), and a second
/// describe should the create find the result made meanwhile.
fn step_fixed(step: &Step) -> u64 {
    let optional = params(step.slot.op, step.kind, "")
        .iter()
        .filter(|(_, fill)| *fill == Fill::IfPresent)
        .count() as u64;
    2 + 2 + TASK + 2 * optional + TASK + TASK
}

/// Whether the step waits in a poll loop (a share does not).
fn waits(step: &Step) -> bool {
    step.slot.op != OpKind::Share
}

/// The rounds each waiting step may poll so that an execution of these databases' steps
/// (`runs`) never writes more than [`MAX_EVENTS`]; `None` when that leaves fewer than
/// [`MIN_ROUNDS`].
pub fn rounds(runs: &[&[Step]]) -> Option<u64> {
    let steps = runs.iter().flat_map(|r| r.iter());
    let fixed: u64 =
        EXECUTION + ITEM * runs.len() as u64 + steps.clone().map(step_fixed).sum::<u64>();
    let waiting = steps.filter(|s| waits(s)).count() as u64;
    if waiting == 0 {
        return Some(MIN_ROUNDS);
    }
    // Each waiting step polls at most `rounds` + 1 times: the last round is the one that
    // finds its goal or gives up.
    let rounds = MAX_EVENTS.checked_sub(fixed)? / (ROUND * waiting);
    rounds.checked_sub(1).filter(|r| *r >= MIN_ROUNDS)
}

/// The most events an execution of `runs` can write with `rounds` per step.
pub fn worst_case(runs: &[&[Step]], rounds: u64) -> u64 {
    let steps = runs.iter().flat_map(|r| r.iter());
    EXECUTION
        + ITEM * runs.len() as u64
        + steps
            .map(|s| step_fixed(s) + if waits(s) { (rounds + 1) * ROUND } else { 0 })
            .sum::<u64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::base::vocabulary::DbKind;
    use crate::workflow::{Op, Workflow};

    /// Every step of `workflow` for a database of `kind` (the budget reads only the slot).
    fn all_steps(workflow: Workflow, kind: DbKind) -> Vec<Step> {
        workflow
            .slots()
            .iter()
            .filter(|slot| slot.kinds.contains(&kind))
            .map(|slot| Step {
                slot,
                kind,
                op: Op::Share {
                    id: "s".into(),
                    account: "a".into(),
                },
            })
            .collect()
    }

    /// However long AWS takes, no execution of one database or of a fleet's batch (ten)
    /// can write more than 25,000 events; and one database gets room for long waits.
    #[test]
    fn an_execution_never_outgrows_its_history() {
        for workflow in Workflow::ALL {
            for kind in [DbKind::Instance, DbKind::Cluster] {
                let steps = all_steps(workflow, kind);
                for databases in [1, 10] {
                    let runs: Vec<&[Step]> = (0..databases).map(|_| steps.as_slice()).collect();
                    let rounds = rounds(&runs).expect("room for a batch of ten");
                    let worst = worst_case(&runs, rounds);
                    println!("{workflow:?} {kind:?} x{databases}: {rounds} rounds, {worst} events at worst");
                    assert!(
                        worst <= MAX_EVENTS,
                        "{workflow:?} {kind:?} ×{databases}: {worst}"
                    );
                    assert!(
                        worst_case(&runs, rounds + 1) > MAX_EVENTS,
                        "{workflow:?} {kind:?} ×{databases}: {rounds} rounds leave room unused"
                    );
                    if databases == 1 {
                        // At the default 30 s doubling to 300 s: many hours per step.
                        assert!(rounds >= 150, "{workflow:?} {kind:?}: {rounds}");
                    }
                }
            }
        }
        let steps = all_steps(Workflow::Encrypt, DbKind::Cluster);
        let hundred: Vec<&[Step]> = (0..100).map(|_| steps.as_slice()).collect();
        assert_eq!(
            rounds(&hundred),
            None,
            "a hundred databases are too many for one"
        );
    }
}
