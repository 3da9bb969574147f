//! A dry run's plan: every step of the run with what the run would do about it, read from
//! AWS like a Terraform plan — `create`, `reuse`, `update`, `delete` or `skip`.
//!
//! The lookups are the ones the run itself makes to find its own results, so the plan says
//! what the run will do, not what a first run would do.

use crate::aws::kms::{self, KeyChoice};
use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::Result;
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::workflow::{Op, Step, Workflow};

/// What a run would do about one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reuse,
    Create,
    Update,
    Delete,
    Skip,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Reuse => "reuse",
            Self::Create => "create",
            Self::Update => "update",
            Self::Delete => "delete",
            Self::Skip => "skip",
        }
    }

    /// `Reuse` when the result is there, else `Create`.
    pub fn reuse_or_create(exists: bool) -> Self {
        if exists {
            Self::Reuse
        } else {
            Self::Create
        }
    }
}

/// Reports one step of the plan.
pub fn step(progress: &dyn Progress, action: Action, stage: &str, resource: &str) {
    progress.event(&Event::plan(stage, resource, action.as_str()));
}

/// One thing a command that removes does: in a dry run, what it would do, in the plans'
/// words; in a run, what it did (`done`).
pub fn step_or_done(
    progress: &dyn Progress,
    dry_run: bool,
    action: Action,
    stage: &str,
    resource: &str,
    done: &str,
) {
    if dry_run {
        step(progress, action, stage, resource);
    } else {
        progress.event(&Event::step(stage, resource, done));
    }
}

/// Whether the run would make the key or find it (by alias, then by the toolkit's tag).
pub async fn key(aws: &Aws, choice: &KeyChoice) -> Result<Action> {
    Ok(match choice {
        KeyChoice::Given(_) => Action::Reuse,
        KeyChoice::Alias(_) => Action::reuse_or_create(kms::find(aws, choice).await?.is_some()),
    })
}

pub async fn snapshot(aws: &Aws, kind: DbKind, id: &str) -> Result<Action> {
    Ok(Action::reuse_or_create(
        rds::describe_snapshot(aws, kind, id).await?.is_some(),
    ))
}

pub async fn database(aws: &Aws, kind: DbKind, id: &str) -> Result<Action> {
    Ok(Action::reuse_or_create(
        rds::describe_db(aws, kind, id).await?.is_some(),
    ))
}

/// `Delete` unless the step is kept, then `Skip`.
pub fn delete_unless(kept: bool) -> Action {
    if kept {
        Action::Skip
    } else {
        Action::Delete
    }
}

/// The workflow's steps as this run would take them, each read from AWS as the step finds
/// its result; a step of the workflow this run does not take is `skip`.
pub async fn steps(
    aws: &Aws,
    workflow: Workflow,
    kind: DbKind,
    steps: &[Step],
    progress: &dyn Progress,
) -> Result<()> {
    for slot in workflow.slots().iter().filter(|s| s.kinds.contains(&kind)) {
        match steps.iter().find(|s| s.slot.name == slot.name) {
            Some(s) => step(progress, found(aws, s).await?, &s.describe(), s.resource()),
            None => step(progress, Action::Skip, slot.stage, "-"),
        }
    }
    Ok(())
}

/// What the run would do about one step, from what AWS has of its result.
async fn found(aws: &Aws, step: &Step) -> Result<Action> {
    let aws = &aws.at_step(step.region.as_ref()).await?;
    let kind = step.resource_kind();
    let id = step.resource();
    Ok(match &step.op {
        Op::Stop { .. } => {
            let stopped = rds::describe_db(aws, kind, id)
                .await?
                .is_some_and(|db| db.status == "stopped");
            if stopped {
                Action::Skip
            } else {
                Action::Update
            }
        }
        Op::Snapshot { .. } | Op::Copy { .. } => snapshot(aws, kind, id).await?,
        Op::Restore(_) | Op::Writer(_) => database(aws, kind, id).await?,
        Op::Share { account, .. } => {
            let exists = rds::describe_snapshot(aws, kind, id).await?.is_some();
            Action::reuse_or_create(
                exists && rds::shared_with(aws, kind, id).await?.contains(account),
            )
        }
    })
}
