//! Following an execution to its end: its history read as it grows, rendered as the local
//! engine's progress events, and its end read as success or as each database's failure.

use std::time::Duration;

use aws_sdk_sfn::types::{HistoryEvent, HistoryEventType};
use serde_json::Value;
use tokio::time::Instant;

use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::progress::{Event, Progress};

use super::super::Step;

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
        // `X: create`, or with optional parameters one of its Tasks, `X: create 10`.
        create if create.split(' ').next() == Some("create") => {
            progress.event(&Event::step(stage, resource, "started"))
        }
        "find" => {
            if let Some(status) = output["found"]["status"].as_str() {
                progress.event(&Event::wait(stage, resource, status, elapsed));
            }
        }
        _ => {}
    }
}
