//! A run's values for one slot of its workflow ([`Step`], [`Op`]), and the API request each
//! step makes and the describe call that finds its result, spelled as Step Functions' AWS
//! SDK integrations take them: one description both engines read.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::{Mark, OpKind, Slot, Workflow};
use crate::aws::rds::{RestoreSpec, WriterSpec};
use crate::base::vocabulary::{DbKind, TAG_PREFIX, TAG_ROLE, TAG_TARGET};
use crate::ident::Region;

/// A run's values for one slot.
#[derive(Debug, Clone)]
pub struct Step {
    pub slot: &'static Slot,
    /// The kind of the database the workflow is about.
    pub kind: DbKind,
    pub op: Op,
    /// The region the step runs in when it is not the run's own: a cross-region export's
    /// copy and share, made in the destination region ([`crate::aws::Aws::at`]).
    pub region: Option<Region>,
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
        /// A DB snapshot copied into another region with a non-default option group: the
        /// option group of that region it takes.
        option_group: Option<String>,
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
            region: None,
        }
    }

    /// The step, run in `region` (`None`: the run's own).
    pub fn in_region(mut self, region: Option<Region>) -> Step {
        self.region = region;
        self
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
                option_group,
                tags,
            } => {
                let (from, to) = copy_params(self.kind);
                let mut r = json!({ from: source, to: id, "Tags": tag_list(tags) });
                put(&mut r, "KmsKeyId", key.clone().map(Value::from));
                put(
                    &mut r,
                    "OptionGroupName",
                    option_group.clone().map(Value::from),
                );
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

    /// A parameter the state machine always passes that this step's request lacks.
    fn missing(&self, request: &Value) -> Option<&'static str> {
        params(self.slot, self.kind, "")
            .into_iter()
            .find(|(name, fill)| *fill == Fill::Always && request.get(name).is_none())
            .map(|(name, _)| name)
    }

    /// The tags the step's create call gives: the toolkit's marks and the operator's own (a
    /// stop's call takes none, a share makes nothing).
    fn tags(&self) -> Option<&BTreeMap<String, String>> {
        match &self.op {
            Op::Snapshot { tags, .. } | Op::Copy { tags, .. } => Some(tags),
            Op::Restore(spec) => Some(&spec.tags),
            Op::Writer(spec) => Some(&spec.tags),
            Op::Stop { .. } | Op::Share { .. } => None,
        }
    }

    /// The operator's tags (copied from the original database): a state machine writes only
    /// the toolkit's, so after its execution the agent adds these.
    pub fn user_tags(&self) -> BTreeMap<String, String> {
        self.tags_that_are(false)
    }

    /// The step's tags that are the toolkit's (`toolkit`), or the operator's.
    fn tags_that_are(&self, toolkit: bool) -> BTreeMap<String, String> {
        let tags = self.tags().into_iter().flatten();
        tags.filter(|(k, _)| k.starts_with(TAG_PREFIX) == toolkit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The toolkit's tags to send along with the operator's when the agent adds those: a
    /// database the toolkit gives no role (the encrypted twin) has its marks sent again, as
    /// the source policy tags such a database only together with one of the toolkit's keys;
    /// one with a role, none (the target policy refuses them on it).
    pub fn marks_resent(&self) -> BTreeMap<String, String> {
        if self.slot.marks.iter().any(|m| matches!(m, Mark::Role(_))) {
            return BTreeMap::new();
        }
        self.tags_that_are(true)
    }

    /// The step as its state machine reads it from the execution input: what it makes
    /// (`id`), its request without the tags, and the values of the marks the run computed
    /// (`marks.<field>`); `share_with` is the account of an export's state machine. Refused,
    /// so that both engines make the same thing: a request without a parameter the state
    /// machine always passes, or toolkit tags other than the ones it writes.
    pub fn input(&self, share_with: &str) -> std::result::Result<Value, String> {
        let mut request = self.request();
        if let Some(param) = self.missing(&request) {
            return Err(format!(
                "its request has no `{param}`, which the state machine always passes"
            ));
        }
        if let Value::Object(map) = &mut request {
            map.remove("Tags");
        }
        let toolkit = self.tags_that_are(true);
        let mut marks = Map::new();
        for mark in self.slot.marks {
            let key = mark.key();
            let fixed = match *mark {
                Mark::Run(_) => None,
                Mark::Role(role) => Some(role),
                Mark::Target => Some(share_with),
            };
            let value = toolkit
                .get(key)
                .ok_or_else(|| format!("it has no tag `{key}`, which the state machine gives"))?;
            match fixed {
                Some(fixed) if fixed != value => {
                    return Err(format!(
                        "its tag `{key}` is `{value}`, the state machine writes `{fixed}`"
                    ))
                }
                Some(_) => {}
                None => {
                    marks.insert(field(key), json!(value));
                }
            }
        }
        if let Some(other) = toolkit
            .keys()
            .find(|k| !self.slot.marks.iter().any(|m| m.key() == k.as_str()))
        {
            return Err(format!("its tag `{other}` is none the state machine gives"));
        }
        Ok(json!({ "id": self.resource(), "request": request, "marks": marks }))
    }

    /// The account a Share step adds to the snapshot's `restore` attribute.
    pub fn share_with(&self) -> Option<&str> {
        match &self.op {
            Op::Share { account, .. } => Some(account),
            _ => None,
        }
    }
}

/// How a state machine fills one parameter of a step's create call.
#[derive(Debug, Clone, PartialEq)]
pub enum Fill {
    /// From the step's request in the execution input, which must have it.
    Always,
    /// From the request when it has it; left out when it does not (the definition branches).
    IfPresent,
    /// Written in the definition: no execution input can change it.
    Fixed(Value),
    /// The toolkit's tags, written in the definition: every key, and every value that does
    /// not vary; a value the run computed is read from `$.steps.<Name>.marks.<field>`.
    Marks(Value),
}

/// Every parameter the create call of `slot` on a database of `kind` may take, as its state
/// machine states them; `share_with` is the one account a Share step may add (and an
/// export's `rds-handoff:target-account`). The agent's requests ([`Step::request`]) never
/// carry a parameter missing here (a unit test holds them together), and [`Step::input`]
/// refuses a request that lacks an `Always` one.
pub fn params(slot: &Slot, kind: DbKind, share_with: &str) -> Vec<(&'static str, Fill)> {
    use Fill::{Always, IfPresent};
    let cluster = kind == DbKind::Cluster;
    let id = id_param(kind);
    let snapshot = find_param(OpKind::Snapshot, kind);
    let marks = || ("Tags", marks(slot, share_with));
    match slot.op {
        OpKind::Stop if cluster => vec![(id, Always)],
        OpKind::Stop => vec![(id, Always), ("DbSnapshotIdentifier", IfPresent)],
        OpKind::Snapshot => vec![(id, Always), (snapshot, Always), marks()],
        OpKind::Copy => {
            let (from, to) = copy_params(kind);
            vec![
                (from, Always),
                (to, Always),
                marks(),
                ("KmsKeyId", IfPresent),
            ]
        }
        OpKind::Restore => {
            let mut all = vec![
                (id, Always),
                ("DbSubnetGroupName", Always),
                ("VpcSecurityGroupIds", Always),
                ("Port", Always),
                ("EnableIAMDatabaseAuthentication", Always),
                ("DeletionProtection", Always),
                marks(),
            ];
            if cluster {
                all.extend([
                    ("SnapshotIdentifier", Always),
                    ("Engine", Always),
                    ("EngineVersion", Always),
                    ("KmsKeyId", IfPresent),
                    ("AvailabilityZones", IfPresent),
                    ("DbClusterParameterGroupName", IfPresent),
                ]);
            } else {
                all.extend([
                    ("DbSnapshotIdentifier", Always),
                    ("PubliclyAccessible", Always),
                    ("DbInstanceClass", Always),
                    ("AllocatedStorage", Always),
                    ("StorageType", Always),
                    ("MultiAZ", Always),
                    ("AvailabilityZone", IfPresent),
                    ("Iops", IfPresent),
                    ("DbParameterGroupName", IfPresent),
                    ("OptionGroupName", IfPresent),
                ]);
            }
            all
        }
        OpKind::Writer => vec![
            ("DbInstanceIdentifier", Always),
            ("DbClusterIdentifier", Always),
            ("Engine", Always),
            ("DbInstanceClass", Always),
            ("PubliclyAccessible", Always),
            marks(),
            ("AvailabilityZone", IfPresent),
            ("DbParameterGroupName", IfPresent),
        ],
        OpKind::Share => vec![
            (snapshot, Always),
            ("AttributeName", Fill::Fixed(json!("restore"))),
            ("ValuesToAdd", Fill::Fixed(json!([share_with]))),
        ],
    }
}

/// The `Tags` a slot's state machine writes ([`Fill::Marks`]).
fn marks(slot: &Slot, share_with: &str) -> Fill {
    let tags = slot.marks.iter().map(|mark| match *mark {
        Mark::Run(key) => {
            let path = format!("$.steps.{}.marks.{}", slot.name, field(key));
            json!({ "Key": key, "Value.$": path })
        }
        Mark::Role(role) => json!({ "Key": TAG_ROLE, "Value": role }),
        Mark::Target => json!({ "Key": TAG_TARGET, "Value": share_with }),
    });
    Fill::Marks(tags.collect())
}

/// The execution input's name for the value of tag `key`: `rds-handoff:source-snapshot` →
/// `sourceSnapshot` (a plain JSONPath member name).
fn field(key: &str) -> String {
    let mut name = String::new();
    let mut upper = false;
    for c in key.trim_start_matches(TAG_PREFIX).chars() {
        match c {
            '-' => upper = true,
            c if upper => {
                name.extend(c.to_uppercase());
                upper = false;
            }
            c => name.push(c),
        }
    }
    name
}

/// The source and target parameters of a copy of a snapshot of a database of `kind`.
fn copy_params(kind: DbKind) -> (&'static str, &'static str) {
    match kind {
        DbKind::Instance => ("SourceDBSnapshotIdentifier", "TargetDBSnapshotIdentifier"),
        DbKind::Cluster => (
            "SourceDBClusterSnapshotIdentifier",
            "TargetDBClusterSnapshotIdentifier",
        ),
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
                option_group: None,
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

    const TARGET: &str = "222222222222";

    /// A step of every slot of every workflow, for each of its kinds, made as the agents
    /// make them: the slot's marks (each value the run computes `v`) and, on a restore, the
    /// operator's tag `k`.
    fn every_step() -> Vec<Step> {
        use crate::base::manifest::Database;
        let database = |kind| Database {
            kind,
            identifier: "d".into(),
            engine: "postgres".into(),
            engine_version: "15.4".into(),
            port: Some(5432),
            master_username: "u".into(),
            database_name: None,
            instance_class: Some("db.t3.micro".into()),
            allocated_storage: Some(20),
            storage_type: Some("gp3".into()),
            iops: Some(3000),
            multi_az: false,
            iam_auth: false,
            tags: BTreeMap::new(),
            parameter_group: None,
            option_group: None,
        };
        let mut steps = Vec::new();
        for workflow in Workflow::ALL {
            for slot in workflow.slots() {
                for &kind in slot.kinds {
                    let mut tags: BTreeMap<String, String> = slot
                        .marks
                        .iter()
                        .map(|mark| {
                            let value = match *mark {
                                Mark::Run(_) => "v",
                                Mark::Role(role) => role,
                                Mark::Target => TARGET,
                            };
                            (mark.key().to_owned(), value.to_owned())
                        })
                        .collect();
                    let op = match slot.op {
                        OpKind::Stop => Op::Stop {
                            db: "d".into(),
                            snapshot: Some("s".into()).filter(|_| kind == DbKind::Instance),
                            tags,
                        },
                        OpKind::Snapshot => Op::Snapshot {
                            db: "d".into(),
                            id: "s".into(),
                            tags,
                        },
                        OpKind::Copy => Op::Copy {
                            source: "a".into(),
                            id: "b".into(),
                            key: Some("k".into()),
                            option_group: None,
                            tags,
                        },
                        OpKind::Restore => {
                            tags.insert("k".into(), "v".into());
                            Op::Restore(Box::new(RestoreSpec {
                                id: "r".into(),
                                snapshot: "s".into(),
                                kms_key: Some("k".into()),
                                database: database(kind),
                                subnet_group: Some("g".into()),
                                security_groups: vec!["sg-1".into()],
                                availability_zones: vec!["us-east-1a".into()],
                                publicly_accessible: false,
                                instance_class: Some("db.t3.micro".into()),
                                parameter_group: Some("p".into()),
                                option_group: Some("o".into()),
                                multi_az: false,
                                deletion_protection: true,
                                tags,
                            }))
                        }
                        OpKind::Writer => Op::Writer(WriterSpec {
                            id: "w".into(),
                            cluster: "c".into(),
                            engine: "aurora-postgresql".into(),
                            instance_class: "db.r6g.large".into(),
                            availability_zone: Some("us-east-1a".into()),
                            publicly_accessible: false,
                            parameter_group: Some("p".into()),
                            tags,
                        }),
                        OpKind::Share => Op::Share {
                            id: "s".into(),
                            account: TARGET.into(),
                        },
                    };
                    steps.push(Step::new(workflow, slot.name, kind, op));
                }
            }
        }
        steps
    }

    /// Every parameter a request carries is one its state machine states, with the fixed
    /// ones' values; a full request carries every `Always` one; the tags a state machine
    /// writes are the toolkit's the agent gives, and the operator's are left to the agent.
    #[test]
    fn requests_carry_only_what_the_state_machines_state() {
        for step in every_step() {
            let (name, kind) = (step.slot.name, step.kind);
            let request = step.request();
            let stated = params(step.slot, kind, TARGET);
            for (param, value) in request.as_object().unwrap() {
                match stated.iter().find(|(n, _)| n == param).map(|(_, f)| f) {
                    Some(Fill::Fixed(fixed)) => assert_eq!(fixed, value, "{name} {kind:?} {param}"),
                    Some(_) => {}
                    None => panic!("{name} {kind:?}: `{param}` is not stated"),
                }
            }
            let input = step.input(TARGET).unwrap();
            for (param, fill) in &stated {
                match fill {
                    Fill::Always => assert!(
                        input["request"].get(param).is_some(),
                        "{name} {kind:?}: no `{param}`"
                    ),
                    // The definition's tags, with the run's values put in: the toolkit's
                    // tags of the request, nothing else.
                    Fill::Marks(tags) => {
                        let written: BTreeMap<String, String> = tags
                            .as_array()
                            .unwrap()
                            .iter()
                            .map(|t| {
                                let value = match t.get("Value.$") {
                                    Some(path) => {
                                        let field = path.as_str().unwrap().rsplit('.').next();
                                        input["marks"][field.unwrap()].clone()
                                    }
                                    None => t["Value"].clone(),
                                };
                                let key = t["Key"].as_str().unwrap().to_owned();
                                (key, value.as_str().unwrap().to_owned())
                            })
                            .collect();
                        let mut toolkit = step.tags().unwrap().clone();
                        toolkit.retain(|k, _| k.starts_with(TAG_PREFIX));
                        assert_eq!(written, toolkit, "{name} {kind:?}");
                        assert!(input["request"].get("Tags").is_none());
                    }
                    _ => {}
                }
            }
            let users = step.user_tags();
            let restores = step.slot.op == OpKind::Restore;
            assert_eq!(users.contains_key("k"), restores, "{name} {kind:?}");
        }
    }

    /// A step whose toolkit tags are not what its state machine writes is refused before
    /// any execution: a role of its own, another target, a tag the definition does not give.
    #[test]
    fn a_step_tagged_otherwise_than_its_state_machine_is_refused() {
        let copy = |tags: &[(&str, &str)]| {
            let tags = tags.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            let op = Op::Copy {
                source: "a".into(),
                id: "b".into(),
                key: Some("k".into()),
                option_group: None,
                tags: tags.collect(),
            };
            Step::new(Workflow::Export, "Copy", DbKind::Instance, op).input(TARGET)
        };
        let db = ("rds-handoff:db", "d");
        let target = ("rds-handoff:target-account", TARGET);
        let role = ("rds-handoff:role", "shared-copy");
        let marks = copy(&[db, target, role]).unwrap()["marks"].clone();
        assert_eq!(marks, json!({ "db": "d" }));
        let refused = [
            copy(&[db, target, ("rds-handoff:role", "intermediate")]),
            copy(&[db, ("rds-handoff:target-account", "333333333333"), role]),
            copy(&[db, target]),
            copy(&[db, target, role, ("rds-handoff:source-snapshot", "x")]),
        ];
        for result in refused {
            assert!(result.is_err(), "{result:?}");
        }
        assert_eq!(field("rds-handoff:source-snapshot"), "sourceSnapshot");
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
