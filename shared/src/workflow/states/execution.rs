//! The state machine and its executions: made or updated from the workflow's definition,
//! one execution per database (or per batch) under a deterministic name, attached to when
//! run again, and the input it takes.

use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType, Tag};
use serde_json::{json, Map, Value};

use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::ident::Arn;

use super::super::{asl, Step, Workflow};

/// Makes the state machine, or updates it when its definition or role differ; returns its ARN.
pub(crate) async fn ensure_machine(
    aws: &Aws,
    workflow: Workflow,
    role: &Arn,
    progress: &dyn Progress,
) -> Result<String> {
    let caller = aws.caller().await?;
    let name = workflow.state_machine();
    let arn = format!(
        "arn:{}:states:{}:{}:stateMachine:{name}",
        aws.partition, aws.region, caller.account
    );
    let definition = asl::definition(workflow);
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

/// One database's item of the execution input: its kind, its steps' requests, the polling.
pub fn item(database: &str, steps: &[Step], poll: Duration) -> Value {
    let kind = steps.first().map_or(DbKind::Instance, |s| s.kind);
    let by_name: Map<String, Value> = steps
        .iter()
        .map(|s| {
            let step = json!({ "id": s.resource(), "request": s.request() });
            (s.slot.name.to_owned(), step)
        })
        .collect();
    let first = poll.as_secs().max(1);
    json!({
        "database": database,
        "kind": match kind { DbKind::Instance => "instance", DbKind::Cluster => "cluster" },
        "poll": { "first": first, "max": first * 10 },
        "steps": by_name,
    })
}

/// The execution input: the databases' items, how many run at once.
pub fn input(items: Vec<Value>, max_concurrency: usize) -> Value {
    json!({ "databases": items, "maxConcurrency": max_concurrency.max(1) })
}

/// The running or succeeded execution named `<name>-<attempt>`, or a new attempt.
pub(crate) async fn attach_or_start(
    aws: &Aws,
    machine: &str,
    name: &str,
    input: &Value,
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
    let next = match latest {
        Some((_, arn, status @ (ExecutionStatus::Running | ExecutionStatus::Succeeded))) => {
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

/// `db1-3` → 3 for `db1`.
fn attempt_of(name: &str, database: &str) -> Option<u32> {
    name.strip_prefix(database)?.strip_prefix('-')?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_read_from_execution_names() {
        assert_eq!(attempt_of("db1-3", "db1"), Some(3));
        assert_eq!(attempt_of("db1-x-3", "db1"), None);
        assert_eq!(attempt_of("db10-1", "db1"), None);
    }
}
