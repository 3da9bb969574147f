//! The state machine and its executions: made or updated from the workflow's definition,
//! one execution per database (or per batch) under a name that says the run, attached to
//! when the same run comes again, and the input it takes.

use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType, Tag};
use serde_json::{json, Map, Value};

use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::ident::Arn;

use super::super::asl::{self, Deployment};
use super::super::{Op, OpKind, Step, Workflow};
use super::budget;

/// The state machine of `workflow` for these steps: an export's is its target account's own,
/// as its Share step adds that account and no other.
pub(crate) fn machine_name(
    workflow: Workflow,
    steps: &[Step],
    partition: &str,
) -> (String, Deployment) {
    let share_with = steps.iter().find_map(Step::share_with).unwrap_or_default();
    let name = match share_with {
        "" => workflow.state_machine(),
        account => format!("{}-to-{account}", workflow.state_machine()),
    };
    (
        name,
        Deployment {
            partition: partition.to_owned(),
            share_with: share_with.to_owned(),
        },
    )
}

/// Makes the state machine, or updates it when its definition or role differ; returns its ARN.
pub(crate) async fn ensure_machine(
    aws: &Aws,
    workflow: Workflow,
    steps: &[Step],
    role: &Arn,
    progress: &dyn Progress,
) -> Result<String> {
    let caller = aws.caller().await?;
    let (name, deployment) = machine_name(workflow, steps, &aws.partition);
    let arn = format!(
        "arn:{}:states:{}:{}:stateMachine:{name}",
        aws.partition, aws.region, caller.account
    );
    let definition = asl::definition(workflow, &deployment);
    let sha = crate::base::manifest::fingerprint(definition.as_bytes());
    let version = format!("definition sha256 {sha}");
    let found = match aws
        .sfn
        .describe_state_machine()
        .state_machine_arn(&arn)
        .send()
        .await
    {
        Ok(found) => Some(found),
        Err(err)
            if err
                .as_service_error()
                .is_some_and(|e| e.is_state_machine_does_not_exist()) =>
        {
            None
        }
        Err(err) => return Err(sdk("states:DescribeStateMachine")(err)),
    };
    let status = match found {
        None => {
            aws.sfn
                // Retry-safe: the same name and definition again answers with the existing machine; another definition is refused and read.
                .create_state_machine()
                .name(&name)
                .definition(&definition)
                .role_arn(role.as_str())
                .r#type(StateMachineType::Standard)
                .publish(true)
                .version_description(&version)
                .tags(
                    Tag::builder()
                        .key("rds-handoff:definition-sha256")
                        .value(&sha)
                        .build(),
                )
                .send()
                .await
                .map_err(sdk("states:CreateStateMachine"))?;
            "created"
        }
        Some(found) if found.definition() == definition && found.role_arn() == role.as_str() => {
            "exists, reuse"
        }
        Some(_) => {
            aws.sfn
                .update_state_machine()
                .state_machine_arn(&arn)
                .definition(&definition)
                .role_arn(role.as_str())
                .publish(true)
                .version_description(&version)
                .send()
                .await
                .map_err(sdk("states:UpdateStateMachine"))?;
            "updated"
        }
    };
    progress.event(&Event::step(
        "state machine",
        &name,
        &format!("{status} (definition sha256 {})", &sha[..12]),
    ));
    Ok(arn)
}

/// One database's item of the execution input: its kind, its steps ([`Step::input`]), the
/// polling. A step the state machine would run otherwise than the local engine (a parameter
/// it always passes missing, other toolkit tags) is refused here, before any execution starts.
pub fn item(database: &str, steps: &[Step], poll: Duration) -> Result<Value> {
    let share_with = steps.iter().find_map(Step::share_with).unwrap_or_default();
    let mut by_name = Map::new();
    for step in steps {
        let input = step.input(share_with).map_err(|why| Error::Usage {
            message: format!(
                "the Step Functions engine cannot run step {} of {database}: {why}",
                step.slot.name
            ),
            hint: Some("run it with `--engine local`".into()),
        })?;
        by_name.insert(step.slot.name.to_owned(), input);
    }
    let kind = steps.first().map_or(DbKind::Instance, |s| s.kind);
    let first = poll.as_secs().max(1);
    Ok(json!({
        "database": database,
        "kind": match kind { DbKind::Instance => "instance", DbKind::Cluster => "cluster" },
        "poll": { "first": first, "max": first * 10 },
        "steps": by_name,
    }))
}

/// What tells this run from another of the same database: the request of its last step
/// (an export's share names the target account, an import's restore the copy it restores),
/// as 8 hex digits of its SHA-256.
pub fn run_key(steps: &[Step]) -> String {
    let last = steps
        .last()
        .map(|s| format!("{} {}", s.slot.name, s.request()))
        .unwrap_or_default();
    crate::base::manifest::fingerprint(last.as_bytes())[..8].to_owned()
}

/// Whether what an execution made for each database is still there: the resource of each
/// one's last step that makes one. A succeeded execution whose result was removed since (a
/// rehearsal cleaned up) is not this run's.
async fn results_exist(aws: &Aws, runs: &[&[Step]]) -> Result<bool> {
    for steps in runs {
        let Some(step) = steps.iter().rev().find(|s| s.slot.op != OpKind::Stop) else {
            continue;
        };
        let (kind, id) = (step.resource_kind(), step.resource());
        let there = match &step.op {
            Op::Restore(_) | Op::Writer(_) => rds::describe_db(aws, kind, id).await?.is_some(),
            // A share undone since (a revoke) is not there.
            Op::Share { account, .. } => rds::shared_with(aws, kind, id)
                .await
                .is_ok_and(|accounts| accounts.contains(account)),
            _ => rds::describe_snapshot(aws, kind, id).await?.is_some(),
        };
        if !there {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Requests per second the execution's polls draw from the account's RDS bucket, all its
/// items together, once each has backed off to `poll.max`: a sixth of the agents' own
/// budget ([`crate::aws::budget::Rate::RDS`]), so a large execution slows its polls rather
/// than the account.
const POLLS_PER_SECOND: f64 = 1.0;

/// The execution input: the databases' items, each step's poll rounds within the history's
/// room ([`budget`]), their longest pause between polls ([`POLLS_PER_SECOND`]), how many run
/// at once. `runs` are the items' steps.
pub fn input(mut items: Vec<Value>, runs: &[&[Step]], max_concurrency: usize) -> Result<Value> {
    let rounds = budget::rounds(runs).ok_or_else(|| Error::Usage {
        message: format!(
            "{} databases are too many for one Step Functions execution: its history (at most {} events) would leave each step fewer than {} polls",
            runs.len(),
            budget::MAX_EVENTS,
            budget::MIN_ROUNDS
        ),
        hint: Some("run them in smaller groups, or with `--engine local`".into()),
    })?;
    let slowest = (max_concurrency as f64 / POLLS_PER_SECOND).ceil() as u64;
    for item in &mut items {
        item["poll"]["rounds"] = json!(rounds);
        let max = item["poll"]["max"]
            .as_u64()
            .unwrap_or_default()
            .max(slowest);
        item["poll"]["max"] = json!(max);
    }
    Ok(json!({ "databases": items, "maxConcurrency": max_concurrency.max(1) }))
}

/// The running execution named `<name>-<attempt>`, or the succeeded one whose results are
/// still there (`runs`: each database's steps), or a new attempt. `name` says the run ([`run_key`]), so another
/// run of the same database (another target, a re-import after a rehearsal) never attaches
/// to this one's execution.
pub(crate) async fn attach_or_start(
    aws: &Aws,
    machine: &str,
    name: &str,
    input: &Value,
    runs: &[&[Step]],
    progress: &dyn Progress,
) -> Result<String> {
    let mut latest: Option<(u32, String, ExecutionStatus)> = None;
    let mut pages = aws
        .sfn
        .list_executions()
        .state_machine_arn(machine)
        .into_paginator()
        .items()
        .send();
    while let Some(item) = pages.next().await {
        let item = item.map_err(sdk("states:ListExecutions"))?;
        let Some(attempt) = attempt_of(item.name(), name) else {
            continue;
        };
        if latest.as_ref().is_none_or(|(n, ..)| attempt > *n) {
            latest = Some((
                attempt,
                item.execution_arn().to_owned(),
                item.status().clone(),
            ));
        }
    }
    let attachable = match &latest {
        Some((_, arn, status @ (ExecutionStatus::Running | ExecutionStatus::Succeeded))) => {
            same_run(aws, arn, input).await?
                && (*status == ExecutionStatus::Running || results_exist(aws, runs).await?)
        }
        _ => false,
    };
    let next = match latest {
        Some((_, arn, status)) if attachable => {
            progress.event(&Event::step(
                "execution",
                &arn,
                &format!("{}, attached", status.as_str().to_lowercase()),
            ));
            return Ok(arn);
        }
        Some((n, ..)) => n + 1,
        None => 1,
    };
    let started = aws
        .sfn
        // Retry-safe: StartExecution with the same name and input is idempotent while the execution runs (Standard workflows).
        .start_execution()
        .state_machine_arn(machine)
        .name(format!("{name}-{next}"))
        .input(input.to_string())
        .send()
        .await
        .map_err(sdk("states:StartExecution"))?;
    let arn = started.execution_arn().to_owned();
    progress.event(&Event::step("execution", &arn, "started"));
    Ok(arn)
}

/// Whether execution `arn` runs this run's steps: each step of `input` is in its input with
/// the same request (it may have more: a re-run leaves out the steps already done). The name
/// alone proves nothing: anyone who may start an execution may give it any name.
async fn same_run(aws: &Aws, arn: &str, input: &Value) -> Result<bool> {
    let described = aws
        .sfn
        .describe_execution()
        .execution_arn(arn)
        .send()
        .await
        .map_err(sdk("states:DescribeExecution"))?;
    let theirs: Value = described
        .input()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    Ok(covers(&theirs, input))
}

/// Every database of `ours`, with its kind and each of its steps (`id`, `request` and
/// `marks`), is in `theirs`.
fn covers(theirs: &Value, ours: &Value) -> bool {
    let items = |v: &Value| v["databases"].as_array().cloned().unwrap_or_default();
    let theirs = items(theirs);
    items(ours).iter().all(|mine| {
        theirs.iter().any(|their| {
            their["database"] == mine["database"]
                && their["kind"] == mine["kind"]
                && mine["steps"].as_object().is_some_and(|steps| {
                    steps
                        .iter()
                        .all(|(name, step)| their["steps"][name] == *step)
                })
        })
    })
}

/// `db1-3` → 3 for `db1`.
fn attempt_of(name: &str, database: &str) -> Option<u32> {
    name.strip_prefix(database)?.strip_prefix('-')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_execution_is_this_runs_only_if_it_has_each_of_its_steps_unchanged() {
        let run = |steps: Value| json!({ "databases": [{ "database": "d", "kind": "instance", "steps": steps }] });
        let share = json!({ "id": "s", "request": { "DbSnapshotIdentifier": "s" } });
        let copy = json!({ "id": "s", "request": { "SourceDBSnapshotIdentifier": "a" } });
        let earlier = run(json!({ "Copy": copy, "Share": share }));
        assert!(
            covers(&earlier, &run(json!({ "Share": share }))),
            "a resume"
        );
        assert!(covers(&earlier, &earlier));
        let other = json!({ "id": "s", "request": { "SourceDBSnapshotIdentifier": "b" } });
        assert!(!covers(
            &earlier,
            &run(json!({ "Copy": other, "Share": share }))
        ));
        assert!(
            !covers(&run(json!({ "Share": share })), &earlier),
            "a step it never had"
        );
    }

    #[test]
    fn attempts_are_read_from_execution_names() {
        assert_eq!(attempt_of("db1-3", "db1"), Some(3));
        assert_eq!(attempt_of("db1-x-3", "db1"), None);
        assert_eq!(attempt_of("db10-1", "db1"), None);
    }
}
