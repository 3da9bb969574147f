//! The 25,000 history events a Standard execution may hold, shared out as poll rounds.
//!
//! Every state an execution enters writes history events; only the poll loops grow with
//! time. So each step's wait is capped at `poll.rounds` rounds, which the agent sets from the
//! execution's databases and steps, counting every event at its worst (every Task retried
//! to its last attempt): the history cannot fill, however long AWS takes. A step that polls
//! that often ends its database's item with `RdsHandoff.StillWaiting`, and the next attempt
//! goes on waiting where this one stopped. Every way round a step's loop passes its `: count`
//! state (a create answering "already exists" waits too), so no loop escapes the count.

use super::super::asl::RETRIES;
use super::super::step::{params, Fill};
use super::super::{OpKind, Step};

/// AWS's quota of history events per Standard execution.
pub const MAX_EVENTS: u64 = 25_000;
/// Fewer rounds than this per step, and the execution holds too many databases.
pub const MIN_ROUNDS: u64 = 5;
/// The execution's own: started and ended (2), the Map entered, started, succeeded and
/// exited (4), `Failures`, `Any failed` and the final state (2 each).
const EXECUTION: u64 = 12;
/// A Task at worst: entered and exited (2), and each of its attempts (the first and
/// [`RETRIES`] more) scheduled, started, and failed or succeeded (3 each).
const TASK: u64 = 2 + 3 * (RETRIES + 1);
/// A database's own: its Map iteration started and ended, the kind Choice, its end Pass.
const ITEM: u64 = 6;

/// A step's events apart from its rounds: its skip Choice and start Pass, the first describe
/// (not found) and the create (a Choice per optional parameter, then the Task); a share's:
/// its skip Choice, the describe of its snapshot and two Choices on its target, the create.
fn step_fixed(step: &Step) -> u64 {
    if step.slot.op == OpKind::Share {
        return 2 + TASK + 2 * 2 + create(step);
    }
    2 + 2 + TASK + create(step)
}

/// The create: a Choice per parameter a run may leave out, then the Task.
fn create(step: &Step) -> u64 {
    let optional = params(step.slot, step.kind, "")
        .iter()
        .filter(|(_, fill)| *fill == Fill::IfPresent)
        .count() as u64;
    2 * optional + TASK
}

/// One poll round at worst, whichever way it goes round the loop to `: count`:
/// - found: the describe Task, the status Choice, the Wait, the count Pass, the backoff
///   Choice and the doubling Pass (2 each);
/// - not found, the create answering "already exists" (another try made it): the describe
///   Task, the create, then the Wait, count, backoff and doubling.
///
/// A stop is created once (refused again, it ends the item), so only the first way.
fn round(step: &Step) -> u64 {
    let found = TASK + 5 * 2;
    if step.slot.op == OpKind::Stop {
        return found;
    }
    found.max(TASK + create(step) + 4 * 2)
}

/// Whether the step waits in a poll loop (a share does not).
fn waits(step: &Step) -> bool {
    step.slot.op != OpKind::Share
}

/// The rounds each waiting step may poll so that an execution of these databases' steps
/// (`runs`) never writes more than [`MAX_EVENTS`]; `None` when that leaves fewer than
/// [`MIN_ROUNDS`].
pub fn rounds(runs: &[&[Step]]) -> Option<u64> {
    // Each waiting step polls at most `rounds` + 1 times: the last round is the one that
    // finds its goal or gives up.
    let per_round: u64 = steps(runs).filter(|s| waits(s)).map(round).sum();
    if per_round == 0 {
        return Some(MIN_ROUNDS);
    }
    let room = MAX_EVENTS.checked_sub(worst_case(runs, 0))?;
    let rounds = room / per_round;
    (rounds >= MIN_ROUNDS).then_some(rounds)
}

/// The most events an execution of `runs` can write with `rounds` per step.
pub fn worst_case(runs: &[&[Step]], rounds: u64) -> u64 {
    EXECUTION
        + ITEM * runs.len() as u64
        + steps(runs)
            .map(|s| step_fixed(s) + if waits(s) { (rounds + 1) * round(s) } else { 0 })
            .sum::<u64>()
}

fn steps<'a>(runs: &'a [&'a [Step]]) -> impl Iterator<Item = &'a Step> + Clone {
    runs.iter().flat_map(|r| r.iter())
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
                region: None,
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
                        // At the default 30 s doubling to 300 s: 8 hours or more per step.
                        assert!(rounds >= 100, "{workflow:?} {kind:?}: {rounds}");
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
