//! The long part of each workflow, described once as an ordered list of steps.
//!
//! A workflow (export, import, encrypt) is a fixed list of [`Slot`]s: what each step
//! creates, how it finds an earlier try's result, what it waits for. A run fills the
//! slots that apply to it with [`Step`]s (the values: names, key, tags). Three readers:
//! - [`local`]: the local engine runs the steps in this process;
//! - [`asl`]: the compiler turns the slots into Amazon States Language, and [`states`]
//!   runs that state machine on AWS Step Functions with the steps as its input.
//!
//! What needs judgement or secrets (identity, the manifest's verification, preflight, the
//! key and its policy, ownership checks before a delete, the password) stays in the
//! agents, before and after the steps, whichever engine runs them.

pub mod asl;
pub mod batch;
pub mod local;
pub mod states;

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::aws::Aws;
use crate::error::Result;
use crate::manifest::DbKind;
use crate::progress::Progress;
use crate::rds::{RestoreSpec, WriterSpec};
use crate::wait::WaitPolicy;

pub use batch::Batch;
pub use local::Done;
pub use states::{Engine, EngineArgs};

/// Runs one database's steps on the engine the operator chose.
pub async fn run(
    aws: &Aws,
    engine: &EngineArgs,
    workflow: Workflow,
    database: &str,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Done> {
    match engine.engine {
        Engine::Local => local::run(aws, steps, wait, progress).await,
        Engine::StepFunctions => {
            states::run(aws, engine, workflow, database, steps, wait, progress).await?;
            Ok(Done::default())
        }
    }
}

/// The three workflows that have a long part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Export,
    Import,
    Encrypt,
}

impl Workflow {
    pub const ALL: [Workflow; 3] = [Self::Export, Self::Import, Self::Encrypt];

    pub fn name(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
            Self::Encrypt => "encrypt",
        }
    }

    /// The state machine's name in the account.
    pub fn state_machine(self) -> String {
        format!("rds-handoff-{}", self.name())
    }

    /// The workflow's steps, in order.
    pub fn slots(self) -> &'static [Slot] {
        match self {
            Self::Export => EXPORT,
            Self::Import => IMPORT,
            Self::Encrypt => ENCRYPT,
        }
    }

    /// The slot named `name`: every step of a run is one of its workflow's slots.
    pub fn slot(self, name: &str) -> &'static Slot {
        self.slots()
            .iter()
            .find(|s| s.name == name)
            .unwrap_or(&UNKNOWN)
    }
}

/// What kind of AWS operation a step performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Stop the database, wait until `stopped`.
    Stop,
    /// Snapshot a database, wait until `available`.
    Snapshot,
    /// Copy a snapshot (under a key), wait until `available`.
    Copy,
    /// Restore a database from a snapshot, wait until `available`.
    Restore,
    /// Create a cluster's writer instance, wait until `available`.
    Writer,
    /// Add an account to a snapshot's `restore` attribute (nothing to wait for).
    Share,
}

/// One step of a workflow, whatever the run: its name, what it does, for which kinds.
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    /// The step's name in the state machine (`Snapshot`, `Copy`, …).
    pub name: &'static str,
    /// The stage its progress events carry.
    pub stage: &'static str,
    pub op: OpKind,
    /// The kinds of database whose workflow has this step.
    pub kinds: &'static [DbKind],
}

const BOTH: &[DbKind] = &[DbKind::Instance, DbKind::Cluster];
const CLUSTER: &[DbKind] = &[DbKind::Cluster];
const INSTANCE: &[DbKind] = &[DbKind::Instance];

const fn slot(
    name: &'static str,
    stage: &'static str,
    op: OpKind,
    kinds: &'static [DbKind],
) -> Slot {
    Slot {
        name,
        stage,
        op,
        kinds,
    }
}

const UNKNOWN: Slot = slot("Unknown", "unknown", OpKind::Share, &[]);

/// Export: snapshot, copy under the shared key (or, for an unencrypted cluster, restore a
/// temporary cluster under the key and snapshot it), share with the target.
const EXPORT: &[Slot] = &[
    slot("Snapshot", "snapshot", OpKind::Snapshot, BOTH),
    slot("TempCluster", "temporary cluster", OpKind::Restore, CLUSTER),
    slot("Copy", "copy", OpKind::Copy, BOTH),
    slot(
        "TempSnapshot",
        "encrypted snapshot",
        OpKind::Snapshot,
        CLUSTER,
    ),
    slot("Share", "share", OpKind::Share, BOTH),
];

/// Import: copy the shared snapshot under our key, restore, add a cluster's writer.
const IMPORT: &[Slot] = &[
    slot("Copy", "copy", OpKind::Copy, BOTH),
    slot("Restore", "restore", OpKind::Restore, BOTH),
    slot("Writer", "writer instance", OpKind::Writer, CLUSTER),
];

/// Encrypt: (stop,) snapshot, copy an instance's snapshot under the key, restore the
/// encrypted twin, recreate a cluster's writer.
const ENCRYPT: &[Slot] = &[
    slot("Stop", "stop source", OpKind::Stop, BOTH),
    slot("Snapshot", "snapshot", OpKind::Snapshot, BOTH),
    slot("Copy", "copy", OpKind::Copy, INSTANCE),
    slot("Restore", "restore", OpKind::Restore, BOTH),
    slot("Writer", "writer instance", OpKind::Writer, CLUSTER),
];

/// A run's values for one slot.
#[derive(Debug, Clone)]
pub struct Step {
    pub slot: &'static Slot,
    /// The kind of the database the workflow is about.
    pub kind: DbKind,
    pub op: Op,
}

/// What a step does, with this run's values.
#[derive(Debug, Clone)]
pub enum Op {
    Stop {
        db: String,
    },
    Snapshot {
        db: String,
        id: String,
        tags: BTreeMap<String, String>,
    },
    Copy {
        source: String,
        id: String,
        /// `None`: an unencrypted cluster snapshot shared on purpose.
        key: Option<String>,
        tags: BTreeMap<String, String>,
    },
    Restore(Box<RestoreSpec>),
    Writer(WriterSpec),
    Share {
        id: String,
        account: String,
    },
}

impl Op {
    pub fn kind(&self) -> OpKind {
        match self {
            Self::Stop { .. } => OpKind::Stop,
            Self::Snapshot { .. } => OpKind::Snapshot,
            Self::Copy { .. } => OpKind::Copy,
            Self::Restore(_) => OpKind::Restore,
            Self::Writer(_) => OpKind::Writer,
            Self::Share { .. } => OpKind::Share,
        }
    }
}

impl Step {
    pub fn new(workflow: Workflow, name: &str, kind: DbKind, op: Op) -> Step {
        Step {
            slot: workflow.slot(name),
            kind,
            op,
        }
    }

    /// What the step makes, finds or waits for.
    pub fn resource(&self) -> &str {
        match &self.op {
            Op::Stop { db } => db,
            Op::Snapshot { id, .. } | Op::Copy { id, .. } | Op::Share { id, .. } => id,
            Op::Restore(spec) => &spec.id,
            Op::Writer(spec) => &spec.id,
        }
    }

    /// The kind of the resource the step finds and waits for (a writer is an instance).
    pub fn resource_kind(&self) -> DbKind {
        match self.op {
            Op::Writer(_) => DbKind::Instance,
            _ => self.kind,
        }
    }

    /// The API request that makes the result, as Step Functions' AWS SDK integrations
    /// spell it: the AWS SDK for Java 2.x member names, capitalized, so a leading acronym
    /// loses its capitals (`DbSnapshotIdentifier`) and an inner one keeps them
    /// (`SourceDBSnapshotIdentifier`, `MultiAZ`).
    pub fn request(&self) -> Value {
        let cluster = self.kind == DbKind::Cluster;
        let mut request = match &self.op {
            Op::Stop { db } => json!({ id_param(self.kind): db }),
            Op::Snapshot { db, id, tags } => {
                let snapshot = find_param(OpKind::Snapshot, self.kind);
                json!({ id_param(self.kind): db, snapshot: id, "Tags": tag_list(tags) })
            }
            Op::Copy {
                source,
                id,
                key,
                tags,
            } => {
                let (from, to) = if cluster {
                    (
                        "SourceDBClusterSnapshotIdentifier",
                        "TargetDBClusterSnapshotIdentifier",
                    )
                } else {
                    ("SourceDBSnapshotIdentifier", "TargetDBSnapshotIdentifier")
                };
                let mut r = json!({ from: source, to: id, "Tags": tag_list(tags) });
                put(&mut r, "KmsKeyId", key.clone().map(Value::from));
                r
            }
            Op::Restore(spec) => restore_request(self.kind, spec),
            Op::Writer(spec) => writer_request(spec),
            Op::Share { id, account } => {
                let snapshot = find_param(OpKind::Snapshot, self.kind);
                json!({ snapshot: id, "AttributeName": "restore", "ValuesToAdd": [account] })
            }
        };
        drop_nulls(&mut request);
        request
    }

    /// What the step does, for a plan: `snapshot of DB instance db1`, `share with account …`.
    pub fn describe(&self) -> String {
        let kind = self.kind.name();
        match &self.op {
            Op::Stop { db } => format!("stop {kind} {db} before its snapshot"),
            Op::Snapshot { db, .. } => format!("snapshot of {kind} {db}"),
            Op::Copy {
                source,
                key: Some(key),
                ..
            } => format!("copy of {source}, under {key}"),
            Op::Copy { source, .. } => format!("copy of {source}, unencrypted"),
            Op::Restore(spec) => {
                let placement = match &spec.subnet_group {
                    Some(group) => {
                        format!("into {group} with {}, ", spec.security_groups.join(","))
                    }
                    None => String::new(),
                };
                let key = spec.kms_key.as_deref().map(|k| format!(", under {k}"));
                format!(
                    "restore {placement}from {}{}",
                    spec.snapshot,
                    key.unwrap_or_default()
                )
            }
            Op::Writer(spec) => format!("writer instance of DB cluster {}", spec.cluster),
            Op::Share { account, .. } => format!("share with account {account}"),
        }
    }

    /// The describe request that finds the step's result.
    pub fn find(&self) -> Value {
        let param = find_param(self.slot.op, self.resource_kind());
        json!({ param: self.resource() })
    }
}

/// The identifier parameter of a database of `kind`.
fn id_param(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "DbInstanceIdentifier",
        DbKind::Cluster => "DbClusterIdentifier",
    }
}

/// The parameter the describe call of a step's result takes.
pub fn find_param(op: OpKind, kind: DbKind) -> &'static str {
    match (op, kind) {
        (OpKind::Snapshot | OpKind::Copy | OpKind::Share, DbKind::Instance) => {
            "DbSnapshotIdentifier"
        }
        (OpKind::Snapshot | OpKind::Copy | OpKind::Share, DbKind::Cluster) => {
            "DbClusterSnapshotIdentifier"
        }
        (_, kind) => id_param(kind),
    }
}

fn tag_list(tags: &BTreeMap<String, String>) -> Value {
    tags.iter()
        .map(|(k, v)| json!({ "Key": k, "Value": v }))
        .collect()
}

fn put(request: &mut Value, key: &str, value: Option<Value>) {
    if let (Value::Object(map), Some(value)) = (request, value) {
        map.insert(key.to_owned(), value);
    }
}

/// Leaves out what is unset, as the SDK does.
fn drop_nulls(request: &mut Value) {
    if let Value::Object(map) = request {
        map.retain(|_, v| !v.is_null());
    }
}

fn restore_request(kind: DbKind, spec: &RestoreSpec) -> Value {
    let d = &spec.database;
    let mut r = Map::new();
    let mut set = |k: &str, v: Value| {
        r.insert(k.to_owned(), v);
    };
    set(id_param(kind), json!(spec.id));
    set("DbSubnetGroupName", json!(spec.subnet_group));
    set("VpcSecurityGroupIds", json!(spec.security_groups));
    set("Port", json!(d.port));
    set("EnableIAMDatabaseAuthentication", json!(d.iam_auth));
    set("DeletionProtection", json!(spec.deletion_protection));
    set("Tags", tag_list(&spec.tags));
    match kind {
        DbKind::Instance => {
            set("DbSnapshotIdentifier", json!(spec.snapshot));
            let zone = spec.availability_zones.first().filter(|_| !spec.multi_az);
            set("AvailabilityZone", json!(zone));
            set("PubliclyAccessible", json!(spec.publicly_accessible));
            set("DbInstanceClass", json!(spec.instance_class));
            set("AllocatedStorage", json!(d.allocated_storage));
            set("StorageType", json!(d.storage_type));
            set("Iops", json!(d.iops));
            set("MultiAZ", json!(spec.multi_az));
            set("DbParameterGroupName", json!(spec.parameter_group));
            set("OptionGroupName", json!(spec.option_group));
        }
        DbKind::Cluster => {
            set("SnapshotIdentifier", json!(spec.snapshot));
            set("Engine", json!(d.engine));
            set("EngineVersion", json!(d.engine_version));
            set("KmsKeyId", json!(spec.kms_key));
            let zones = Some(&spec.availability_zones).filter(|z| !z.is_empty());
            set("AvailabilityZones", json!(zones));
            set("DbClusterParameterGroupName", json!(spec.parameter_group));
        }
    }
    let mut request = Value::Object(r);
    drop_nulls(&mut request);
    request
}

fn writer_request(spec: &WriterSpec) -> Value {
    let mut request = json!({
        "DbInstanceIdentifier": spec.id,
        "DbClusterIdentifier": spec.cluster,
        "Engine": spec.engine,
        "DbInstanceClass": spec.instance_class,
        "AvailabilityZone": spec.availability_zone,
        "PubliclyAccessible": spec.publicly_accessible,
        "DbParameterGroupName": spec.parameter_group,
        "Tags": tag_list(&spec.tags),
    });
    drop_nulls(&mut request);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_name_is_unique_within_its_workflow() {
        for workflow in Workflow::ALL {
            let names: std::collections::BTreeSet<_> =
                workflow.slots().iter().map(|s| s.name).collect();
            assert_eq!(names.len(), workflow.slots().len(), "{workflow:?}");
        }
    }

    #[test]
    fn requests_use_the_sdk_member_names_and_leave_out_what_is_unset() {
        let step = Step::new(
            Workflow::Export,
            "Copy",
            DbKind::Instance,
            Op::Copy {
                source: "a".into(),
                id: "b".into(),
                key: None,
                tags: BTreeMap::from([("k".into(), "v".into())]),
            },
        );
        assert_eq!(step.slot.op, OpKind::Copy);
        assert_eq!(
            step.request(),
            json!({"SourceDBSnapshotIdentifier": "a", "TargetDBSnapshotIdentifier": "b",
                   "Tags": [{"Key": "k", "Value": "v"}]})
        );
        assert_eq!(step.find(), json!({"DbSnapshotIdentifier": "b"}));
    }

    /// Every step name the agents build a step with is a slot of its workflow: an unknown
    /// name would be a step the state machine never runs.
    #[test]
    fn the_agents_build_steps_only_from_their_workflows_slots() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for (file, workflow) in [
            ("export.rs", Workflow::Export),
            ("import.rs", Workflow::Import),
            ("encrypt.rs", Workflow::Encrypt),
        ] {
            let text = std::fs::read_to_string(src.join(file)).unwrap();
            // The builders' own `step(` closure, not `plan::step(` or `Event::step(`.
            let names: Vec<&str> = text
                .match_indices("step(")
                .filter(|(at, _)| !text[..*at].ends_with(':'))
                .filter_map(|(at, _)| {
                    text[at + 5..]
                        .trim_start()
                        .strip_prefix('"')?
                        .split('"')
                        .next()
                })
                .collect();
            assert!(!names.is_empty(), "{file} builds no step");
            for name in names {
                assert_ne!(
                    workflow.slot(name),
                    &UNKNOWN,
                    "{file}: `{name}` is no slot of {workflow:?}"
                );
            }
        }
    }
}
