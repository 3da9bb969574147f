//! The Step Functions engine: the workflow's state machine runs the steps in the account.
//!
//! The agent makes or updates the state machine (`rds-handoff-<workflow>`, Standard, a
//! version published per definition, described by its SHA-256), starts one execution per
//! database under a deterministic name (`<db>-<attempt>`), and follows its history, rendering
//! the same progress events as the local engine. Run again, it attaches to a running or
//! succeeded execution instead of starting a second; after a failed one it starts the next
//! attempt, whose steps find what the last one made. A fleet's databases share executions
//! instead ([`Batch`]).

use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sfn::types::{ExecutionStatus, HistoryEvent, HistoryEventType, StateMachineType, Tag};
use serde_json::{json, Map, Value};
use tokio::time::Instant;

use crate::aws::Aws;
use crate::error::{sdk, Error, Result};
use crate::ident::Arn;
use crate::manifest::DbKind;
use crate::progress::{Event, Progress};
use crate::wait::{parse_duration, WaitPolicy};

use super::{asl, Batch, OpKind, Step, Workflow};

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
    /// policy: policies/execution-role.*.json)
    #[arg(long, value_name = "ARN", required_if_eq("engine", "step-functions"))]
    pub execution_role: Option<Arn>,
    /// With `--engine step-functions`: start (or find) the execution, print its ARN and
    /// return; `status --execution ARN` follows it, the same command again finishes the run
    #[arg(long)]
    pub detach: bool,
    /// With `--engine step-functions`: the state machine's first wait between polls; it
    /// doubles up to ten times that
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
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
    let machine = ensure_machine(aws, workflow, role(args)?, progress).await?;
    // The state machine's copies count against the account's copy quota like ours.
    let copies = steps.iter().find(|s| s.slot.op == OpKind::Copy);
    let _slot = match copies {
        Some(step) => Some(aws.copies.take(step.kind).await),
        None => None,
    };
    let input = input(vec![item(database, steps, args.poll_interval)], 1);
    let execution = attach_or_start(aws, &machine, database, &input, progress).await?;
    finish(aws, args, &execution, database, steps, wait, progress).await
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
        hint: Some("pass `--execution-role arn:aws:iam::ACCOUNT:role/NAME`: a role trusted by states.amazonaws.com with policies/execution-role.iam.json".into()),
    })
}

/// Makes the state machine, or updates it when its definition or role differ; returns its ARN.
pub(super) async fn ensure_machine(
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
    let sha = crate::manifest::fingerprint(definition.as_bytes());
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
pub(super) async fn attach_or_start(
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

/// Follows an execution to its end, rendering its history as progress events: of `database`
/// only, or of all its databases. The history alone says when it ended and why (no
/// DescribeExecution per poll); a database whose item succeeded succeeded, whatever the
/// others' did.
pub async fn follow(
    aws: &Aws,
    execution: &str,
    database: Option<&str>,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<()> {
    let started = Instant::now();
    let mut seen = 0;
    let mut delay = Duration::from_secs(1);
    loop {
        let events = history(aws, execution).await?;
        let last = seen;
        for event in events.iter().filter(|e| e.id() > last) {
            render(event, database, steps, started.elapsed(), progress);
            seen = event.id();
        }
        if let Some(end) = events.iter().rev().find_map(ending) {
            return outcome(execution, database, end, progress);
        }
        if started.elapsed() + delay > wait.deadline {
            return Err(Error::WaitTimeout {
                resource: format!("execution {execution}"),
                goal: "SUCCEEDED".into(),
                status: "RUNNING".into(),
                waited: humantime::format_duration(Duration::from_secs(
                    started.elapsed().as_secs(),
                ))
                .to_string(),
            });
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 3 / 2).min(Duration::from_secs(15));
    }
}

async fn history(aws: &Aws, execution: &str) -> Result<Vec<HistoryEvent>> {
    let mut pages = aws
        .sfn
        .get_execution_history()
        .execution_arn(execution)
        .into_paginator()
        .items()
        .send();
    let mut events = Vec::new();
    while let Some(event) = pages.next().await {
        events.push(event.map_err(sdk("states:GetExecutionHistory"))?);
    }
    Ok(events)
}

/// The execution's end, if `event` is one: success, or its status, error and cause.
type Ending = std::result::Result<(), (&'static str, String, String)>;

fn ending(event: &HistoryEvent) -> Option<Ending> {
    let details = |error: Option<&str>, cause: Option<&str>| {
        (
            error.unwrap_or_default().to_owned(),
            cause.unwrap_or_default().to_owned(),
        )
    };
    let (status, (error, cause)) = match event.r#type() {
        HistoryEventType::ExecutionSucceeded => return Some(Ok(())),
        HistoryEventType::ExecutionFailed => {
            let d = event.execution_failed_event_details();
            (
                "FAILED",
                details(d.and_then(|d| d.error()), d.and_then(|d| d.cause())),
            )
        }
        HistoryEventType::ExecutionTimedOut => {
            let d = event.execution_timed_out_event_details();
            (
                "TIMED_OUT",
                details(d.and_then(|d| d.error()), d.and_then(|d| d.cause())),
            )
        }
        HistoryEventType::ExecutionAborted => {
            let d = event.execution_aborted_event_details();
            (
                "ABORTED",
                details(d.and_then(|d| d.error()), d.and_then(|d| d.cause())),
            )
        }
        _ => return None,
    };
    Some(Err((status, error, cause)))
}

/// How the execution's end reads for `database` (or for the whole execution). A failed
/// execution's cause lists the databases that failed, each with its error and cause.
fn outcome(
    execution: &str,
    database: Option<&str>,
    end: Ending,
    progress: &dyn Progress,
) -> Result<()> {
    let failed = |status: &str, error: String, cause: String| Error::Execution {
        execution: execution.to_owned(),
        status: status.to_owned(),
        error,
        cause,
    };
    let (status, error, cause) = match end {
        Ok(()) => {
            progress.event(&Event::step("execution", execution, "succeeded"));
            return Ok(());
        }
        Err(end) => end,
    };
    let Ok(items) = serde_json::from_str::<Vec<Value>>(&cause) else {
        return Err(failed(status, error, cause));
    };
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let Some(database) = database else {
        let each: Vec<String> = items
            .iter()
            .map(|i| format!("{}: {}", text(&i["database"]), text(&i["error"]["Cause"])))
            .collect();
        return Err(failed(status, error, each.join("; ")));
    };
    match items.iter().find(|i| i["database"] == database) {
        Some(mine) => Err(failed(
            status,
            text(&mine["error"]["Error"]),
            text(&mine["error"]["Cause"]),
        )),
        None => {
            progress.event(&Event::step(
                "execution",
                execution,
                "succeeded for this database",
            ));
            Ok(())
        }
    }
}

/// A state of the history as the local engine's event: a create started, a poll's status.
/// Every state's output holds its item (`database`, `steps`), so the events of one database
/// are told from the others'.
fn render(
    event: &HistoryEvent,
    database: Option<&str>,
    steps: &[Step],
    elapsed: Duration,
    progress: &dyn Progress,
) {
    let Some(exited) = event
        .state_exited_event_details()
        .filter(|_| event.r#type() == &HistoryEventType::TaskStateExited)
    else {
        return;
    };
    // States are named `<Kind> <Step>: <part>`.
    let Some((head, part)) = exited.name().split_once(": ") else {
        return;
    };
    let slot = head.split_once(' ').map_or(head, |(_, s)| s);
    let output: Value = exited
        .output()
        .and_then(|o| serde_json::from_str(o).ok())
        .unwrap_or_default();
    if database.is_some_and(|d| output["database"] != d) {
        return;
    }
    let resource = output["steps"][slot]["id"].as_str().unwrap_or_default();
    // Without the run's steps (`status --execution`), the state names speak for themselves.
    let stage = steps
        .iter()
        .find(|s| s.slot.name == slot)
        .map_or(slot, |s| s.slot.stage);
    match part {
        "create" => progress.event(&Event::step(stage, resource, "started")),
        "find" => {
            if let Some(status) = output["found"]["status"].as_str() {
                progress.event(&Event::wait(stage, resource, status, elapsed));
            }
        }
        _ => {}
    }
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
