//! The Step Functions engine: the workflow's state machine runs the steps in the account.
//!
//! The agent makes or updates the state machine (`rds-handoff-<workflow>`, an export's
//! `rds-handoff-export-to-<target account>`; Standard, a version published per definition,
//! described by its SHA-256), starts one execution per database under a name that says the
//! run (`<db>-<run key>-<attempt>`, [`execution::run_key`]), and follows its history,
//! rendering the same progress events as the local engine. Run again, it attaches to this
//! run's running execution, or its succeeded one whose result is still there, instead of
//! starting a second; after a failed one it starts the next attempt, whose steps find what
//! the last one made. A fleet's databases share executions instead ([`Batch`]).

pub mod budget;
mod execution;
mod history;

use std::sync::Arc;
use std::time::Duration;

use crate::aws::wait::{parse_duration, WaitPolicy};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::Progress;
use crate::base::vocabulary::STILL_WAITING;
use crate::ident::Arn;

use super::{Batch, OpKind, Step, Workflow};

pub(super) use execution::{attach_or_start, ensure_machine};
pub use execution::{input, item, run_key};
pub use history::follow;

/// Where the long part of a run executes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Engine {
    /// In this process (the default)
    #[default]
    Local,
    /// As an AWS Step Functions execution in the account
    StepFunctions,
}

/// The engine flags of `export`, `encrypt` and `import`.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Where the snapshot, copy and restore steps run: in this process, or as an AWS Step
    /// Functions execution that goes on without it
    #[arg(long, value_enum, default_value = "local")]
    pub engine: Engine,
    /// With `--engine step-functions`: the IAM role the state machine runs as (trust and
    /// policy: policies/execution-role*.json, one per side)
    #[arg(long, value_name = "ARN", required_if_eq("engine", "step-functions"))]
    pub execution_role: Option<Arn>,
    /// With `--engine step-functions`: start (or find) the execution, print its ARN and
    /// return; `status --execution ARN` follows it, the same command again finishes the run
    #[arg(long)]
    pub detach: bool,
    /// With `--engine step-functions`: the state machine's first wait between polls (at
    /// least 1s); it doubles until it reaches ten times that (or a second per database run at
    /// once, if longer). Each step polls at most as often as the
    /// execution's 25,000 history events allow (`states::budget`), then a new attempt goes on
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = poll_interval)]
    pub poll_interval: Duration,
    /// In a fleet: the one execution its databases share (set by the fleet, not a flag).
    #[arg(skip)]
    pub batch: Option<Arc<Batch>>,
}

impl Default for EngineArgs {
    fn default() -> Self {
        Self {
            engine: Engine::Local,
            execution_role: None,
            detach: false,
            poll_interval: Duration::from_secs(30),
            batch: None,
        }
    }
}

/// `--poll-interval`: a duration of at least one second (a Wait state counts whole seconds).
fn poll_interval(value: &str) -> std::result::Result<Duration, String> {
    let interval = parse_duration(value)?;
    if interval < Duration::from_secs(1) {
        return Err(format!(
            "`{value}` is under 1s: Step Functions waits whole seconds"
        ));
    }
    Ok(interval)
}

/// Runs `steps` of one database as an execution of `workflow`'s state machine: its own, or,
/// in a fleet, the one execution of all its databases ([`Batch`]).
pub async fn run(
    aws: &Aws,
    args: &EngineArgs,
    workflow: Workflow,
    database: &str,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<()> {
    if let Some(batch) = &args.batch {
        return batch.run(aws, args, database, steps, wait, progress).await;
    }
    if steps.is_empty() {
        return Ok(());
    }
    let item = item(database, steps, args.poll_interval)?;
    let machine = ensure_machine(aws, workflow, steps, role(args)?, progress).await?;
    // The state machine's copies count against the account's copy quota like ours.
    let copies = steps.iter().find(|s| s.slot.op == OpKind::Copy);
    let _slot = match copies {
        Some(step) => Some(aws.copies.take(step.kind).await),
        None => None,
    };
    let input = input(vec![item], &[steps], 1)?;
    let name = format!("{database}-{}", run_key(steps));
    // An execution whose step polled as often as its history has room for ends; the next
    // attempt goes on waiting, as long as the run's own wait allows.
    let started = std::time::Instant::now();
    let mut ended: Option<String> = None;
    loop {
        let execution = attach_or_start(aws, &machine, &name, &input, &[steps], progress).await?;
        if ended.as_deref() == Some(execution.as_str()) {
            // The listing has not caught up with the end it just read: ask again shortly.
            if started.elapsed() >= wait.deadline {
                return Err(Error::WaitTimeout {
                    resource: format!("execution {execution}"),
                    goal: "a next attempt".into(),
                    status: "FAILED (still waiting)".into(),
                    waited: humantime::format_duration(wait.deadline).to_string(),
                });
            }
            tokio::time::sleep(std::time::Duration::from_secs(5)).await;
            continue;
        }
        // One deadline for the whole run, however many attempts it takes.
        let left = WaitPolicy {
            deadline: wait.deadline.saturating_sub(started.elapsed()),
            ..wait
        };
        match finish(aws, args, &execution, database, steps, left, progress).await {
            Err(Error::Execution { error, .. })
                if error == STILL_WAITING && started.elapsed() < wait.deadline =>
            {
                progress.event(&crate::base::progress::Event::step(
                    "execution",
                    &execution,
                    "polled as often as its history allows; a new attempt goes on waiting",
                ));
                ended = Some(execution);
            }
            done => return done,
        }
    }
}

/// Follows `execution` to its end for `database`, or, with `--detach`, returns at once.
pub(super) async fn finish(
    aws: &Aws,
    args: &EngineArgs,
    execution: &str,
    database: &str,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<()> {
    if args.detach {
        return Err(Error::Detached {
            execution: execution.to_owned(),
            database: database.to_owned(),
        });
    }
    follow(aws, execution, Some(database), steps, wait, progress).await
}

/// The role the state machine runs as: `--execution-role`, required.
pub(super) fn role(args: &EngineArgs) -> Result<&Arn> {
    args.execution_role.as_ref().ok_or_else(|| Error::Usage {
        message: "`--engine step-functions` needs the role its state machine runs as".into(),
        hint: Some("pass `--execution-role arn:aws:iam::ACCOUNT:role/rds-handoff-states-source` (or `-target`; the shipped operator policy passes only roles named `rds-handoff-states*`): a role trusted by states.amazonaws.com (policies/execution-role.trust.json) with policies/execution-role-source.iam.json (export, encrypt) or execution-role-target.iam.json (import)".into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_poll_interval_is_at_least_a_second() {
        assert!(poll_interval("500ms").unwrap_err().contains("under 1s"));
        assert_eq!(poll_interval("1s"), Ok(Duration::from_secs(1)));
    }
}
