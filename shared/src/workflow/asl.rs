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
//! Every create Task states each API parameter it sends ([`params`]): a value the agent
//! computed comes from the execution input (`$.steps.<Name>.request.<Parameter>`, built from
//! the same step the local engine runs); what must not vary (the attribute a snapshot is
//! shared through and the one account it is shared with, the toolkit's tags: their keys, each
//! resource's role and an export's target account) is written in the definition. A
//! parameter a run may leave out is a Choice on its presence, one Task per combination, so no
//! Task sends anything the definition does not name. No state result holds more than RDS
//! returns about a snapshot or database (never a password).

use serde_json::{json, Map, Value};

use crate::base::vocabulary::DbKind;
use crate::base::vocabulary::{
    NOT_FOR_TARGET, STILL_WAITING, TAG_TARGET, TERMINAL_ERROR, TERMINAL_STATUSES,
};

use super::step::{params, Fill};
use super::{find_param, OpKind, Slot, Workflow};

/// Where a state machine runs and what it may not vary: its partition (the ARNs of its AWS
/// SDK integrations) and the one account its Share step adds (export; one state machine per
/// target account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub partition: String,
    pub share_with: String,
}

impl Deployment {
    /// The definitions committed for review: the `aws` partition, a placeholder account.
    pub fn committed() -> Deployment {
        Deployment {
            partition: "aws".into(),
            share_with: "TARGET_ACCOUNT_ID".into(),
        }
    }
}

/// The state machine of `workflow`, as pretty-printed JSON (what is committed for review).
pub fn definition(workflow: Workflow, deployment: &Deployment) -> String {
    let mut text = serde_json::to_string_pretty(&compile(workflow, deployment)).unwrap_or_default();
    text.push('\n');
    text
}

pub fn compile(workflow: Workflow, deployment: &Deployment) -> Value {
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
            compile_slot(&mut states, deployment, kind, slot, next);
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
fn compile_slot(
    states: &mut Map<String, Value>,
    deployment: &Deployment,
    kind: DbKind,
    slot: &Slot,
    next: &str,
) {
    let name = entry(kind, slot);
    let state = |suffix: &str| format!("{name}: {suffix}");
    let step = format!("$.steps.{}", slot.name);
    let create = state("create");
    let first = if slot.op == OpKind::Share {
        state("target")
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
    let create_call = Create {
        name: &create,
        step: &step,
        action: api.create,
        params: params(slot, kind, &deployment.share_with),
        partition: &deployment.partition,
    };
    if slot.op == OpKind::Share {
        check_target(states, deployment, kind, &step, &state, &create);
        create_call.insert(states, next, None);
        return;
    }
    let resource_kind = if slot.op == OpKind::Writer {
        DbKind::Instance
    } else {
        kind
    };
    let find = Api::find(slot.op, resource_kind);
    let (find_name, check, wait, count, backoff, longer, terminal, too_long) = (
        state("find"),
        state("check"),
        state("wait"),
        state("count"),
        state("backoff"),
        state("longer"),
        state("terminal status"),
        state("still waiting"),
    );
    states.insert(
        first,
        json!({
            "Type": "Pass",
            "Parameters": { "seconds.$": "$.poll.first", "polls": 0 },
            "ResultPath": "$.wait",
            "Next": find_name,
        }),
    );
    let mut describe = json!({
        "Type": "Task",
        "Resource": arn(&deployment.partition, find.action),
        "Parameters": { format!("{}.$", find.param): format!("{step}.id") },
        "ResultSelector": { "status.$": find.status },
        "ResultPath": "$.found",
        "Retry": retry(),
        "Next": check,
    });
    // A database to stop must exist; anything else not found is made.
    let missing = (slot.op != OpKind::Stop).then_some((find.not_found, create.as_str()));
    catch(&mut describe, missing);
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
        json!({ "Type": "Wait", "SecondsPath": "$.wait.seconds", "Next": count }),
    );
    // Rounds are counted, and end the item at `$.poll.rounds`: the agent sets it so that
    // the whole execution's history stays within AWS's 25,000 events (`states::budget`).
    states.insert(
        count,
        json!({
            "Type": "Pass",
            "Parameters": {
                "seconds.$": "$.wait.seconds",
                "polls.$": "States.MathAdd($.wait.polls, 1)",
            },
            "ResultPath": "$.wait",
            "Next": backoff,
        }),
    );
    states.insert(
        backoff,
        json!({
            "Type": "Choice",
            "Choices": [
                { "Variable": "$.wait.polls", "NumericGreaterThanEqualsPath": "$.poll.rounds", "Next": too_long },
                { "Variable": "$.wait.seconds", "NumericGreaterThanEqualsPath": "$.poll.max", "Next": find_name },
            ],
            "Default": longer,
        }),
    );
    states.insert(
        longer,
        json!({
            "Type": "Pass",
            "Parameters": {
                "seconds.$": "States.MathAdd($.wait.seconds, $.wait.seconds)",
                "polls.$": "$.wait.polls",
            },
            "ResultPath": "$.wait",
            "Next": find_name,
        }),
    );
    // Not `$.found`: a step whose describe never found its result has none.
    let still = format!("States.Format('{} {{}} is not yet {} after {{}} polls, as many as this execution has room for: re-run the same command, a new attempt goes on waiting', {step}.id, $.wait.polls)", find.noun, slot_goal(slot.op));
    states.insert(
        too_long,
        ended(Some(json!({ "Error": STILL_WAITING, "Cause.$": still }))),
    );
    let cause = format!("States.Format('{} {{}} is {{}}, a status it does not leave by itself: look at its events in the RDS console, fix the cause, remove it, then re-run the same command', {step}.id, $.found.status)", find.noun);
    states.insert(
        terminal,
        ended(Some(json!({ "Error": TERMINAL_ERROR, "Cause.$": cause }))),
    );
    // "Already exists" (another try made it) waits like a made result, so every way round
    // the loop passes `: count`. A stop refused while the database is `available` (a read
    // replica, a global database member) is not retried: it ends the item with the error.
    let exists = (slot.op != OpKind::Stop).then_some((api.exists, wait.as_str()));
    create_call.insert(states, &wait, exists);
}

/// Before a Share (entered at `: target`): the snapshot must be the copy made for this state
/// machine's account, by its `rds-handoff:target-account` tag. The execution role may share
/// any `shared-copy`; one made for another target is not this machine's to share. A tag
/// missing goes to the refusal without comparing (a Choice on a missing path would fail).
fn check_target(
    states: &mut Map<String, Value>,
    deployment: &Deployment,
    kind: DbKind,
    step: &str,
    state: &dyn Fn(&str) -> String,
    create: &str,
) {
    let find = Api::find(OpKind::Share, kind);
    let list = find.status.replace(".Status", ".TagList");
    let target = format!("{list}[?(@.Key == '{TAG_TARGET}')].Value");
    let (look, tagged, matches, refused) = (
        state("target"),
        state("target tagged"),
        state("target matches"),
        state("not for this target"),
    );
    let mut describe = json!({
        "Type": "Task",
        "Resource": arn(&deployment.partition, find.action),
        "Parameters": { format!("{}.$", find.param): format!("{step}.id") },
        "ResultSelector": { "target.$": target },
        "ResultPath": "$.found",
        "Retry": retry(),
        "Next": tagged,
    });
    catch(&mut describe, None);
    states.insert(look, describe);
    states.insert(
        tagged.clone(),
        json!({
            "Type": "Choice",
            "Choices": [{ "Variable": "$.found.target[0]", "IsPresent": true, "Next": matches }],
            "Default": refused,
        }),
    );
    states.insert(
        matches,
        json!({
            "Type": "Choice",
            "Choices": [{ "Variable": "$.found.target[0]", "StringEquals": deployment.share_with, "Next": create }],
            "Default": refused,
        }),
    );
    let cause = format!(
        "States.Format('{} {{}} is not the copy made for account {}: this state machine shares only those', {step}.id)",
        find.noun, deployment.share_with
    );
    states.insert(
        refused,
        ended(Some(json!({ "Error": NOT_FOR_TARGET, "Cause.$": cause }))),
    );
}

fn slot_goal(op: OpKind) -> &'static str {
    match op {
        OpKind::Stop => "stopped",
        _ => "available",
    }
}

/// A step's create call: a Task per combination of the parameters a run may leave out,
/// reached through a Choice per such parameter (none: one Task, entered at `name`).
struct Create<'a> {
    name: &'a str,
    step: &'a str,
    action: &'static str,
    params: Vec<(&'static str, Fill)>,
    partition: &'a str,
}

impl Create<'_> {
    /// Inserts the call's states; each Task goes to `next`, its "already exists" error (if
    /// any) to the state given with it.
    fn insert(&self, states: &mut Map<String, Value>, next: &str, exists: Option<(&str, &str)>) {
        let optional: Vec<&str> = self
            .params
            .iter()
            .filter(|(_, fill)| *fill == Fill::IfPresent)
            .map(|(name, _)| *name)
            .collect();
        self.branch(states, &optional, &mut Vec::new(), next, exists);
    }

    /// The state for the parameters decided so far (`present`, one flag per optional one).
    fn branch(
        &self,
        states: &mut Map<String, Value>,
        optional: &[&str],
        present: &mut Vec<bool>,
        next: &str,
        exists: Option<(&str, &str)>,
    ) {
        let here = self.state_name(present);
        let Some(param) = optional.get(present.len()) else {
            states.insert(here, self.task(optional, present, next, exists));
            return;
        };
        let mut target = |flag: bool, present: &mut Vec<bool>| {
            present.push(flag);
            let name = self.state_name(present);
            self.branch(states, optional, present, next, exists);
            present.pop();
            name
        };
        let with = target(true, present);
        let without = target(false, present);
        let variable = format!("{}.request.{param}", self.step);
        states.insert(
            here,
            json!({
                "Type": "Choice",
                "Choices": [{ "Variable": variable, "IsPresent": true, "Next": with }],
                "Default": without,
            }),
        );
    }

    /// `X: create` for the first decision, then one digit per decided parameter
    /// (`X: create 10`: the first present, the second left out).
    fn state_name(&self, present: &[bool]) -> String {
        if present.is_empty() {
            return self.name.to_owned();
        }
        let digits: String = present.iter().map(|p| if *p { '1' } else { '0' }).collect();
        format!("{} {digits}", self.name)
    }

    /// The Task that sends the parameters always present, fixed, or decided present.
    fn task(
        &self,
        optional: &[&str],
        present: &[bool],
        next: &str,
        exists: Option<(&str, &str)>,
    ) -> Value {
        let mut parameters = Map::new();
        for (param, fill) in &self.params {
            let chosen = optional
                .iter()
                .position(|o| o == param)
                .is_none_or(|i| present.get(i) == Some(&true));
            match fill {
                Fill::Fixed(value) | Fill::Marks(value) => {
                    parameters.insert((*param).to_owned(), value.clone());
                }
                _ if chosen => {
                    parameters.insert(
                        format!("{param}.$"),
                        json!(format!("{}.request.{param}", self.step)),
                    );
                }
                _ => {}
            }
        }
        let mut state = json!({
            "Type": "Task",
            "Resource": arn(self.partition, self.action),
            "Parameters": parameters,
            "ResultPath": null,
            "Retry": retry(),
            "Next": next,
        });
        catch(&mut state, exists);
        state
    }
}

fn arn(partition: &str, action: &str) -> String {
    format!("arn:{partition}:states:::aws-sdk:rds:{action}")
}

/// Throttling, RDS errors the SDK does not model (internal errors, and throttling the
/// integration may name `Rds.RdsException`) and client-side failures, retried with full
/// jitter so the items of a Map never retry in step: a Map of 20 items (the widest a fleet
/// runs) throttled at once comes back within 8 s, under 3 requests a second, then over 16, 32,
/// 64 and twice 120 s (six minutes at most in all). Sized from the agents' budget
/// ([`crate::aws::budget`]).
fn retry() -> Value {
    json!([{
        "ErrorEquals": ["Rds.ThrottlingException", "Rds.RdsException", "Rds.SdkClientException"],
        "IntervalSeconds": 8,
        "MaxAttempts": RETRIES,
        "BackoffRate": 2.0,
        "MaxDelaySeconds": 120,
        "JitterStrategy": "FULL",
    }])
}

/// A Task's retries after its first attempt (`MaxAttempts`): at most `RETRIES + 1` attempts.
pub const RETRIES: u64 = 6;

/// The `expected` error goes to its state; any other error ends the item with it.
fn catch(state: &mut Value, expected: Option<(&str, &str)>) {
    let mut catchers: Vec<Value> = expected
        .map(|(e, to)| json!({ "ErrorEquals": [e], "ResultPath": "$.error", "Next": to }))
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
            (OpKind::Snapshot | OpKind::Copy | OpKind::Share, DbKind::Instance) => Find {
                action: "describeDBSnapshots",
                param,
                status: "$.DbSnapshots[0].Status",
                not_found: "Rds.DbSnapshotNotFoundException",
                noun: "DB snapshot",
            },
            (OpKind::Snapshot | OpKind::Copy | OpKind::Share, DbKind::Cluster) => Find {
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
    collect_resources(&compile(workflow, &Deployment::committed()), &mut found);
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
            let definition = compile(workflow, &Deployment::committed());
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

    /// Every Task states its parameters (AWS documents no other way; moto and LocalStack
    /// send an empty request otherwise), and an export's Share adds only the account its
    /// state machine was made for.
    #[test]
    fn every_task_states_its_parameters_and_share_is_fixed() {
        let deployment = Deployment {
            partition: "aws-cn".into(),
            share_with: "222222222222".into(),
        };
        for workflow in Workflow::ALL {
            let definition = compile(workflow, &deployment);
            let states = definition["States"]["Databases"]["ItemProcessor"]["States"]
                .as_object()
                .unwrap();
            for (name, state) in states {
                if state["Type"] != "Task" {
                    continue;
                }
                assert!(state["Parameters"].is_object(), "{workflow:?} {name}");
                assert!(state.get("InputPath").is_none(), "{workflow:?} {name}");
                let resource = state["Resource"].as_str().unwrap();
                assert!(
                    resource.starts_with("arn:aws-cn:states:::aws-sdk:rds:"),
                    "{resource}"
                );
                if resource.contains("SnapshotAttribute") {
                    assert_eq!(state["Parameters"]["ValuesToAdd"], json!(["222222222222"]));
                    assert_eq!(state["Parameters"]["AttributeName"], "restore");
                    // Reached only from the check that the snapshot is this target's copy.
                    let from: Vec<&String> = states
                        .iter()
                        .filter(|(_, s)| {
                            s["Type"] == "Choice" && s.to_string().contains(&format!("\"{name}\""))
                        })
                        .map(|(n, _)| n)
                        .collect();
                    assert!(!from.is_empty(), "{name}");
                    for choice in from {
                        let rule = &states[choice]["Choices"][0];
                        assert!(
                            choice.ends_with(": target matches")
                                || rule.get("IsPresent").is_some()
                                    && rule["Variable"].as_str().unwrap().contains(".request."),
                            "{name} is reached from {choice}"
                        );
                        if choice.ends_with(": target matches") {
                            assert_eq!(rule["StringEquals"], "222222222222");
                        }
                    }
                }
                assert!(state["Parameters"].get("Tags.$").is_none(), "{name}");
                if let Some(tags) = state["Parameters"].get("Tags") {
                    every_tag_is_the_toolkits(workflow, name, tags);
                }
            }
        }
    }

    /// A create Task's tags: every key written and the toolkit's; a role and an export's
    /// target account written too; the run's values read only from its `marks`.
    fn every_tag_is_the_toolkits(workflow: Workflow, name: &str, tags: &Value) {
        let tags = tags.as_array().unwrap();
        let keys: Vec<&str> = tags.iter().map(|t| t["Key"].as_str().unwrap()).collect();
        assert!(
            keys.iter().all(|k| k.starts_with("rds-handoff:")),
            "{name} {keys:?}"
        );
        for tag in tags {
            let fixed = tag.get("Value").and_then(Value::as_str);
            match tag["Key"].as_str().unwrap() {
                "rds-handoff:role" => assert!(fixed.is_some(), "{name}"),
                "rds-handoff:target-account" => assert_eq!(fixed, Some("222222222222")),
                _ => {
                    let path = tag["Value.$"].as_str().unwrap();
                    assert!(path.contains(".marks."), "{name} {path}");
                }
            }
        }
        // What may be deleted later says so: every snapshot, temporary cluster and writer
        // carries a role (an encrypted twin is the operator's, marked by its original).
        let twin = workflow == Workflow::Encrypt && name.contains("Restore");
        assert_eq!(keys.contains(&"rds-handoff:role"), !twin, "{name}");
    }

    #[test]
    fn no_field_can_carry_a_password() {
        for workflow in Workflow::ALL {
            let text = definition(workflow, &Deployment::committed()).to_lowercase();
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
            let generated = definition(workflow, &Deployment::committed());
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
