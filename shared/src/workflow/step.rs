//! A run's values for one slot of its workflow ([`Step`], [`Op`]), and the API request each
//! step makes and the describe call that finds its result, spelled as Step Functions' AWS
//! SDK integrations take them: one description both engines read.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{OpKind, Slot, Workflow};
use crate::aws::rds::{RestoreSpec, WriterSpec};
use crate::base::vocabulary::DbKind;

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
        /// An instance's snapshot, which `StopDBInstance` takes immediately before the stop
        /// (a cluster is snapshotted by its own step, before this one).
        snapshot: Option<String>,
        /// The tags the snapshot is given after the stop (the call takes none).
        tags: BTreeMap<String, String>,
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
            Op::Stop { db, .. } => db,
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
            Op::Stop { db, snapshot, .. } => {
                json!({ id_param(self.kind): db, "DbSnapshotIdentifier": snapshot })
            }
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
            Op::Stop {
                db,
                snapshot: Some(id),
                ..
            } => format!("stop {kind} {db}, AWS taking snapshot {id} just before"),
            Op::Stop { db, .. } => format!("stop {kind} {db} once its snapshot is available"),
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

    /// AWS snapshots no stopped database: an instance's stop names the snapshot AWS takes
    /// just before it; a cluster's stop (after its snapshot) names none.
    #[test]
    fn an_instance_stop_names_the_snapshot_taken_before_it() {
        let stop = |kind: DbKind, name: &str, snapshot: Option<&str>| {
            let op = Op::Stop {
                db: "d".into(),
                snapshot: snapshot.map(str::to_owned),
                tags: BTreeMap::new(),
            };
            Step::new(Workflow::Encrypt, name, kind, op).request()
        };
        assert_eq!(
            stop(DbKind::Instance, "Stop", Some("s")),
            json!({"DbInstanceIdentifier": "d", "DbSnapshotIdentifier": "s"})
        );
        assert_eq!(
            stop(DbKind::Cluster, "StopAfterSnapshot", None),
            json!({"DbClusterIdentifier": "d"})
        );
    }
}
