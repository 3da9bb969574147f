//! The compiler from a workflow's slots to Amazon States Language.
//!
//! One state machine per workflow, for every database: a Map over `$.databases` (at most
//! `$.maxConcurrency` at once, which the agent sets from the account's copy quotas), each
//! item a chain per kind of database. Every slot becomes: a Choice that skips it when the
//! run has no such step (`$.steps.<Name>` absent); a describe Task that finds an earlier
//! try's result (not found → create); a Choice on its status (goal → next step, a terminal
//! status → end the item with the reason, else wait); a Wait that doubles from `$.poll.first`
//! up to `$.poll.max`; the create Task, whose "already exists" goes back to the describe.
//! Every Task retries throttling and transient errors; anything else ends the item with the
//! error. Items end with their database and, if it failed, its error: the execution fails
//! once every item has ended, if any failed, its cause the JSON list of those that did.
//!
//! Requests come from the execution input (`$.steps.<Name>.request`, built by the agent
//! from the same step as the local engine runs), so no value is written twice and no state
//! result holds more than RDS returns about a snapshot or database (never a password).

use serde_json::{json, Map, Value};

use crate::base::vocabulary::DbKind;
use crate::base::vocabulary::{TERMINAL_ERROR, TERMINAL_STATUSES};

use super::{find_param, OpKind, Slot, Workflow};

/// The state machine of `workflow`, as pretty-printed JSON (what is committed for review).
pub fn definition(workflow: Workflow) -> String {
    let mut text = serde_json::to_string_pretty(&compile(workflow)).unwrap_or_default();
    text.push('\n');
    text
}

pub fn compile(workflow: Workflow) -> Value {
    let mut states = Map::new();
    let mut kinds = Vec::new();
    for kind in [DbKind::Instance, DbKind::Cluster] {
        let slots: Vec<&Slot> = workflow
            .slots()
            .iter()
            .filter(|s| s.kinds.contains(&kind))
            .collect();
        let entries: Vec<String> = slots.iter().map(|s| entry(kind, s)).collect();
        for (i, slot) in slots.iter().enumerate() {
            let next = entries.get(i + 1).map_or(DONE, String::as_str);
            compile_slot(&mut states, kind, slot, next);
        }
        kinds.push(json!({
            "Variable": "$.kind",
            "StringEquals": kind_name(kind),
            "Next": entries.first().map_or(DONE, String::as_str),
        }));
    }
    states.insert(
        "Kind".into(),
        json!({ "Type": "Choice", "Choices": kinds, "Default": "Unknown kind" }),
    );
    states.insert(
        "Unknown kind".into(),
        ended(Some(json!({ "Error": "RdsHandoff.UnknownKind", "Cause": "`kind` must be `instance` or `cluster`" }))),
    );
    states.insert(DONE.into(), ended(None));
    states.insert(FAILED.into(), ended(Some(json!("$.error"))));
    json!({
        "Comment": format!(
            "rds-handoff {}: generated from its step plan (rds-handoff {}); input from the agent, see state-machines/README.md",
            workflow.name(),
            env!("CARGO_PKG_VERSION"),
        ),
        "StartAt": "Databases",
        "States": {
            "Databases": {
                "Type": "Map",
                "ItemsPath": "$.databases",
                "MaxConcurrencyPath": "$.maxConcurrency",
                "ItemProcessor": {
                    "ProcessorConfig": { "Mode": "INLINE" },
                    "StartAt": "Kind",
                    "States": states,
                },
                "ResultPath": "$.results",
                "Next": "Failures",
            },
            // Each database ends on its own; the execution fails after all have, naming each
            // that failed (its error and cause, as JSON) so one failure stops no other.
            "Failures": {
                "Type": "Pass",
                "Parameters": { "results.$": "$.results", "failed.$": "$.results[?(@.error)]" },
                "Next": "Any failed",
            },
            "Any failed": {
                "Type": "Choice",
                "Choices": [{ "Variable": "$.failed[0]", "IsPresent": true, "Next": "Some failed" }],
                "Default": "All done",
            },
            "Some failed": {
                "Type": "Fail",
                "ErrorPath": "$.failed[0].error.Error",
                "CausePath": "States.JsonToString($.failed)",
            },
            "All done": { "Type": "Succeed" },
        }
    })
}

/// How one database's item ends: `{"database"}`, with `error` (`{"Error", "Cause"}`, or a
/// path to it) when it failed.
fn ended(error: Option<Value>) -> Value {
    let mut result = json!({ "database.$": "$.database" });
    match error {
        Some(Value::String(path)) => result["error.$"] = json!(path),
        Some(error) => result["error"] = error,
        None => {}
    }
    json!({ "Type": "Pass", "Parameters": result, "End": true })
}

const DONE: &str = "Done";
const FAILED: &str = "Failed";

fn kind_name(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "instance",
        DbKind::Cluster => "cluster",
    }
}

fn entry(kind: DbKind, slot: &Slot) -> String {
    let kind = match kind {
        DbKind::Instance => "Instance",
        DbKind::Cluster => "Cluster",
    };
    format!("{kind} {}", slot.name)
}

/// The states of one slot, entered at `entry(kind, slot)`, leaving to `next`.
fn compile_slot(states: &mut Map<String, Value>, kind: DbKind, slot: &Slot, next: &str) {
    let name = entry(kind, slot);
    let state = |suffix: &str| format!("{name}: {suffix}");
    let step = format!("$.steps.{}", slot.name);
    let create = state("create");
    let first = if slot.op == OpKind::Share {
        create.clone()
    } else {
        state("start")
    };
    states.insert(
        name.clone(),
        json!({
            "Type": "Choice",
            "Choices": [{ "Variable": step, "IsPresent": true, "Next": first }],
            "Default": next,
        }),
    );
    let api = Api::of(slot.op, kind);
    let mut create_state = task(api.create, &step);
    if slot.op == OpKind::Share {
        create_state["Next"] = json!(next);
        catch(&mut create_state, None, "");
        states.insert(create, create_state);
        return;
    }
    let resource_kind = if slot.op == OpKind::Writer {
        DbKind::Instance
    } else {
        kind
    };
    let find = Api::find(slot.op, resource_kind);
    let (find_name, check, wait, backoff, longer, terminal) = (
        state("find"),
        state("check"),
        state("wait"),
        state("backoff"),
        state("longer"),
        state("terminal status"),
    );
    states.insert(
        first,
        json!({
            "Type": "Pass",
            "Parameters": { "seconds.$": "$.poll.first" },
            "ResultPath": "$.wait",
            "Next": find_name,
        }),
    );
    let mut describe = json!({
        "Type": "Task",
        "Resource": arn(find.action),
        "Parameters": { format!("{}.$", find.param): format!("{step}.id") },
        "ResultSelector": { "status.$": find.status },
        "ResultPath": "$.found",
        "Retry": retry(),
        "Next": check,
    });
    // A database to stop must exist; anything else not found is made.
    let missing = (slot.op != OpKind::Stop).then_some(find.not_found);
    catch(&mut describe, missing, &create);
    states.insert(find_name.clone(), describe);
    let mut choices = vec![
        json!({ "Variable": "$.found.status", "StringEquals": slot_goal(slot.op), "Next": next }),
    ];
    if slot.op == OpKind::Stop {
        choices.push(
            json!({ "Variable": "$.found.status", "StringEquals": "available", "Next": create }),
        );
    }
    choices.push(json!({
        "Or": TERMINAL_STATUSES.iter().map(|s| json!({ "Variable": "$.found.status", "StringEquals": s })).collect::<Vec<_>>(),
        "Next": terminal,
    }));
    states.insert(
        check,
        json!({ "Type": "Choice", "Choices": choices, "Default": wait }),
    );
    states.insert(
        wait.clone(),
        json!({ "Type": "Wait", "SecondsPath": "$.wait.seconds", "Next": backoff }),
    );
    states.insert(
        backoff,
        json!({
            "Type": "Choice",
            "Choices": [{ "Variable": "$.wait.seconds", "NumericGreaterThanEqualsPath": "$.poll.max", "Next": find_name }],
            "Default": longer,
        }),
    );
    states.insert(
        longer,
        json!({
            "Type": "Pass",
            "Parameters": { "seconds.$": "States.MathAdd($.wait.seconds, $.wait.seconds)" },
            "ResultPath": "$.wait",
            "Next": find_name,
        }),
    );
    let cause = format!("States.Format('{} {{}} is {{}}, a status it does not leave by itself: look at its events in the RDS console, fix the cause, remove it, then re-run the same command', {step}.id, $.found.status)", find.noun);
    states.insert(
        terminal,
        ended(Some(json!({ "Error": TERMINAL_ERROR, "Cause.$": cause }))),
    );
    create_state["Next"] = json!(wait);
    catch(&mut create_state, Some(api.exists), &find_name);
    states.insert(create, create_state);
}

fn slot_goal(op: OpKind) -> &'static str {
    match op {
        OpKind::Stop => "stopped",
        _ => "available",
    }
}

/// A create Task: its request is the step's, from the input; its result is dropped.
fn task(action: &str, step: &str) -> Value {
    json!({
        "Type": "Task",
        "Resource": arn(action),
        "InputPath": format!("{step}.request"),
        "ResultPath": null,
        "Retry": retry(),
    })
}

fn arn(action: &str) -> String {
    format!("arn:aws:states:::aws-sdk:rds:{action}")
}

/// Throttling, RDS errors the SDK does not model (`Throttling`, internal errors) and
/// client-side failures, retried with backoff.
fn retry() -> Value {
    json!([{
        "ErrorEquals": ["Rds.ThrottlingException", "Rds.RdsException", "Rds.SdkClientException"],
        "IntervalSeconds": 5,
        "MaxAttempts": 6,
        "BackoffRate": 2.0,
    }])
}

/// `expected` goes to `to`; any other error ends the item with it.
fn catch(state: &mut Value, expected: Option<&str>, to: &str) {
    let mut catchers: Vec<Value> = expected
        .map(|e| json!({ "ErrorEquals": [e], "ResultPath": "$.error", "Next": to }))
        .into_iter()
        .collect();
    catchers
        .push(json!({ "ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": FAILED }));
    state["Catch"] = json!(catchers);
}

/// The API of a slot's create call, and its "already exists" error.
struct Api {
    create: &'static str,
    exists: &'static str,
}

/// The describe call that finds a step's result.
struct Find {
    action: &'static str,
    param: &'static str,
    status: &'static str,
    not_found: &'static str,
    noun: &'static str,
}

impl Api {
    fn of(op: OpKind, kind: DbKind) -> Api {
        use DbKind::{Cluster, Instance};
        let (create, exists) = match (op, kind) {
            (OpKind::Stop, Instance) => ("stopDBInstance", "Rds.InvalidDbInstanceStateException"),
            (OpKind::Stop, Cluster) => ("stopDBCluster", "Rds.InvalidDbClusterStateException"),
            (OpKind::Snapshot, Instance) => {
                ("createDBSnapshot", "Rds.DbSnapshotAlreadyExistsException")
            }
            (OpKind::Snapshot, Cluster) => (
                "createDBClusterSnapshot",
                "Rds.DbClusterSnapshotAlreadyExistsException",
            ),
            (OpKind::Copy, Instance) => ("copyDBSnapshot", "Rds.DbSnapshotAlreadyExistsException"),
            (OpKind::Copy, Cluster) => (
                "copyDBClusterSnapshot",
                "Rds.DbClusterSnapshotAlreadyExistsException",
            ),
            (OpKind::Restore, Instance) => (
                "restoreDBInstanceFromDBSnapshot",
                "Rds.DbInstanceAlreadyExistsException",
            ),
            (OpKind::Restore, Cluster) => (
                "restoreDBClusterFromSnapshot",
                "Rds.DbClusterAlreadyExistsException",
            ),
            (OpKind::Writer, _) => ("createDBInstance", "Rds.DbInstanceAlreadyExistsException"),
            (OpKind::Share, Instance) => ("modifyDBSnapshotAttribute", ""),
            (OpKind::Share, Cluster) => ("modifyDBClusterSnapshotAttribute", ""),
        };
        Api { create, exists }
    }

    fn find(op: OpKind, kind: DbKind) -> Find {
        let param = find_param(op, kind);
        match (op, kind) {
            (OpKind::Snapshot | OpKind::Copy, DbKind::Instance) => Find {
                action: "describeDBSnapshots",
                param,
                status: "$.DbSnapshots[0].Status",
                not_found: "Rds.DbSnapshotNotFoundException",
                noun: "DB snapshot",
            },
            (OpKind::Snapshot | OpKind::Copy, DbKind::Cluster) => Find {
                action: "describeDBClusterSnapshots",
                param,
                status: "$.DbClusterSnapshots[0].Status",
                not_found: "Rds.DbClusterSnapshotNotFoundException",
                noun: "DB cluster snapshot",
            },
            (_, DbKind::Instance) => Find {
                action: "describeDBInstances",
                param,
                status: "$.DbInstances[0].DbInstanceStatus",
                not_found: "Rds.DbInstanceNotFoundException",
                noun: "DB instance",
            },
            (_, DbKind::Cluster) => Find {
                action: "describeDBClusters",
                param,
                status: "$.DbClusters[0].Status",
                not_found: "Rds.DbClusterNotFoundException",
                noun: "DB cluster",
            },
        }
    }
}

/// Every IAM action a workflow's state machine calls (`rds:CreateDBSnapshot`, …).
pub fn actions(workflow: Workflow) -> std::collections::BTreeSet<String> {
    let mut found = std::collections::BTreeSet::new();
    collect_resources(&compile(workflow), &mut found);
    found
        .into_iter()
        .filter_map(|arn| {
            let action = arn.strip_prefix("arn:aws:states:::aws-sdk:rds:")?;
            let mut chars = action.chars();
            let first = chars.next()?.to_ascii_uppercase();
            Some(format!("rds:{first}{}", chars.as_str()))
        })
        .collect()
}

fn collect_resources(value: &Value, found: &mut std::collections::BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(resource)) = map.get("Resource") {
                found.insert(resource.clone());
            }
            map.values().for_each(|v| collect_resources(v, found));
        }
        Value::Array(items) => items.iter().for_each(|v| collect_resources(v, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every state is reachable from the start, and every `Next`/`Default` names a state:
    /// in the execution's states and in the Map's item states.
    #[test]
    fn every_state_is_reachable_and_every_next_exists() {
        for workflow in Workflow::ALL {
            let definition = compile(workflow);
            let inner = &definition["States"]["Databases"]["ItemProcessor"];
            for level in [&definition, inner] {
                let states = level["States"].as_object().unwrap();
                let mut reached = std::collections::BTreeSet::new();
                let mut todo = vec![level["StartAt"].as_str().unwrap().to_owned()];
                while let Some(name) = todo.pop() {
                    let state = states.get(&name).unwrap_or_else(|| {
                        panic!("{workflow:?}: `{name}` is named but not defined")
                    });
                    if !reached.insert(name) {
                        continue;
                    }
                    let mut targets = Vec::new();
                    // The Map's item states are checked on their own level.
                    let own = state
                        .get("ItemProcessor")
                        .map_or(state.clone(), |_| json!({ "Next": state["Next"] }));
                    collect_next(&own, &mut targets);
                    todo.extend(targets);
                }
                let defined: std::collections::BTreeSet<_> = states.keys().cloned().collect();
                assert_eq!(defined, reached, "{workflow:?}: unreachable states");
            }
        }
    }

    fn collect_next(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                for key in ["Next", "Default"] {
                    if let Some(Value::String(next)) = map.get(key) {
                        out.push(next.clone());
                    }
                }
                for (key, v) in map {
                    if key != "Next" && key != "Default" {
                        collect_next(v, out);
                    }
                }
            }
            Value::Array(items) => items.iter().for_each(|v| collect_next(v, out)),
            _ => {}
        }
    }

    #[test]
    fn no_field_can_carry_a_password() {
        for workflow in Workflow::ALL {
            let text = definition(workflow).to_lowercase();
            for word in ["password", "secret", "getsecretvalue"] {
                assert!(!text.contains(word), "{workflow:?} mentions `{word}`");
            }
        }
    }

    #[test]
    fn actions_are_the_rds_calls_of_each_workflow() {
        let export = actions(Workflow::Export);
        assert!(export.contains("rds:CopyDBSnapshot"));
        assert!(export.contains("rds:ModifyDBClusterSnapshotAttribute"));
        assert!(!export.contains("rds:CreateDBInstance"));
        let import = actions(Workflow::Import);
        assert!(import.contains("rds:RestoreDBInstanceFromDBSnapshot"));
        assert!(!import.contains("rds:ModifyDBSnapshotAttribute"));
    }

    /// The definitions committed for review are what the code generates
    /// (`UPDATE_STATE_MACHINES=1 cargo test -p rds-handoff committed` rewrites them).
    #[test]
    fn committed_definitions_are_what_the_code_generates() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../state-machines");
        for workflow in Workflow::ALL {
            let path = dir.join(format!("{}.asl.json", workflow.state_machine()));
            let generated = definition(workflow);
            if std::env::var_os("UPDATE_STATE_MACHINES").is_some() {
                std::fs::write(&path, &generated).unwrap();
            }
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == generated,
                "{} differs from the generated definition: run `UPDATE_STATE_MACHINES=1 cargo test -p rds-handoff committed` and review the diff",
                path.display()
            );
        }
    }
}
