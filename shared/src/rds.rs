//! RDS calls for DB instances and Aurora clusters behind one vocabulary.
//!
//! An instance and a cluster differ in every API name (`CreateDBSnapshot` vs
//! `CreateDBClusterSnapshot`, …) but not in what the agents do with them. This module holds
//! the differences, so the export and import flows are written once. Lookups return `None`
//! for "not found" and an error for everything else.

use std::collections::BTreeMap;

use aws_sdk_rds::types::Tag;

use crate::aws::{Aws, Caller};
use crate::error::{sdk, Error, Result};
use crate::manifest::{Database, DbKind};
use crate::progress::{Event, Progress};
use crate::wait::{wait_for, Goal, Status, WaitPolicy};

/// A database as the agents see it.
#[derive(Debug, Clone)]
pub struct DbInfo {
    pub arn: String,
    pub status: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub endpoint: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub publicly_accessible: Option<bool>,
    /// An instance's zone; a cluster's zones, in AWS's order.
    pub availability_zones: Vec<String>,
    pub deletion_protection: bool,
    /// A cluster's writer instance.
    pub writer: Option<String>,
    /// `DbiResourceId` / `DbClusterResourceId`: unlike the name, never reused.
    pub resource_id: Option<String>,
    /// The Aurora cluster an instance is a member of.
    pub member_of: Option<String>,
    pub database: Database,
}

/// A snapshot as the agents see it.
#[derive(Debug, Clone)]
pub struct Snap {
    pub id: String,
    pub arn: String,
    pub status: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub snapshot_type: String,
    pub tags: BTreeMap<String, String>,
    /// The database the snapshot holds, as AWS describes it.
    pub described: Described,
}

/// What AWS says about the database inside a snapshot: what a restore of it will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub port: Option<i32>,
    pub master_username: Option<String>,
    pub iam_auth: Option<bool>,
}

pub fn tag_list(tags: &BTreeMap<String, String>) -> Vec<Tag> {
    tags.iter()
        .map(|(k, v)| Tag::builder().key(k).value(v).build())
        .collect()
}

/// The user's tags of a resource, without the `aws:` ones AWS sets and nobody may copy.
pub fn user_tags(tags: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    tags.iter()
        .filter(|(k, _)| !k.starts_with("aws:"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Tags as a map, as RDS lists them.
pub fn tag_map(tags: &[Tag]) -> BTreeMap<String, String> {
    tags.iter()
        .filter_map(|t| {
            Some((
                t.key()?.to_owned(),
                t.value().unwrap_or_default().to_owned(),
            ))
        })
        .collect()
}

fn not_found(err: &Error, codes: &[&str]) -> bool {
    err.aws_code().is_some_and(|c| codes.contains(&c))
}

const DB_NOT_FOUND: &[&str] = &[
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBClusterNotFound",
];
const SNAP_NOT_FOUND: &[&str] = &[
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "DBClusterSnapshotNotFoundFault",
    "DBClusterSnapshotNotFound",
];

/// A create whose response was lost and that a retry repeated finds its own result.
const ALREADY_EXISTS: &[&str] = &[
    "DBSnapshotAlreadyExists",
    "DBSnapshotAlreadyExistsFault",
    "DBClusterSnapshotAlreadyExistsFault",
    "DBInstanceAlreadyExists",
    "DBInstanceAlreadyExistsFault",
    "DBClusterAlreadyExistsFault",
];

/// Treats "already exists" as done: every name a run creates is its own (deterministic,
/// and checked to be absent just before the create).
pub fn created(result: Result<()>) -> Result<()> {
    match result {
        Err(err) if err.aws_code().is_some_and(|c| ALREADY_EXISTS.contains(&c)) => Ok(()),
        other => other,
    }
}

/// Turns "not found" into `None`.
fn optional<T>(result: Result<T>, codes: &[&str]) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if not_found(&err, codes) => Ok(None),
        Err(err) => Err(err),
    }
}

/// An Aurora cluster's member instance is handed off or encrypted with its cluster, never
/// on its own (its snapshots are the cluster's).
pub fn refuse_cluster_member(db: &DbInfo) -> Result<()> {
    match &db.member_of {
        Some(cluster) => Err(Error::refused(
            format!(
                "DB instance `{}` is a member of Aurora DB cluster `{cluster}`: its data is the cluster's",
                db.database.identifier
            ),
            format!("use `--db-cluster {cluster}`"),
        )),
        None => Ok(()),
    }
}

/// The refusal for a database the caller's account and region do not hold.
pub fn not_here(aws: &Aws, kind: DbKind, id: &str, caller: &Caller) -> Error {
    Error::refused(
        format!(
            "{} `{id}` not found in account `{}` region `{}`",
            kind.name(),
            caller.account,
            aws.region
        ),
        "check the identifier and `--region` (or `--profile`)",
    )
}

pub async fn describe_db(aws: &Aws, kind: DbKind, id: &str) -> Result<Option<DbInfo>> {
    match kind {
        DbKind::Instance => optional(describe_instance(aws, id).await, DB_NOT_FOUND),
        DbKind::Cluster => optional(describe_cluster(aws, id).await, DB_NOT_FOUND),
    }
}

async fn describe_instance(aws: &Aws, id: &str) -> Result<DbInfo> {
    let out = aws
        .rds
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .map_err(sdk("rds:DescribeDBInstances"))?;
    let db = out.db_instances().first().ok_or_else(|| Error::Aws {
        action: "rds:DescribeDBInstances".into(),
        code: "DBInstanceNotFound".into(),
        message: format!("DB instance `{id}` not found"),
        hint: None,
    })?;
    let endpoint = db.endpoint();
    Ok(DbInfo {
        arn: db.db_instance_arn().unwrap_or_default().to_owned(),
        status: db.db_instance_status().unwrap_or_default().to_owned(),
        encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        endpoint: endpoint.and_then(|e| e.address()).map(str::to_owned),
        subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_owned)
            .collect(),
        publicly_accessible: db.publicly_accessible(),
        availability_zones: db
            .availability_zone()
            .map(str::to_owned)
            .into_iter()
            .collect(),
        deletion_protection: db.deletion_protection().unwrap_or(false),
        writer: None,
        resource_id: db.dbi_resource_id().map(str::to_owned),
        member_of: db.db_cluster_identifier().map(str::to_owned),
        database: Database {
            kind: DbKind::Instance,
            identifier: id.to_owned(),
            engine: db.engine().unwrap_or_default().to_owned(),
            engine_version: db.engine_version().unwrap_or_default().to_owned(),
            port: endpoint
                .and_then(|e| e.port())
                .or(db.db_instance_port().filter(|p| *p > 0)),
            master_username: db.master_username().unwrap_or_default().to_owned(),
            database_name: db.db_name().map(str::to_owned),
            instance_class: db.db_instance_class().map(str::to_owned),
            allocated_storage: db.allocated_storage(),
            storage_type: db.storage_type().map(str::to_owned),
            iops: db.iops(),
            multi_az: db.multi_az().unwrap_or(false),
            iam_auth: db.iam_database_authentication_enabled().unwrap_or(false),
            tags: tag_map(db.tag_list()),
            parameter_group: db
                .db_parameter_groups()
                .first()
                .and_then(|g| g.db_parameter_group_name())
                .map(str::to_owned),
            option_group: db
                .option_group_memberships()
                .first()
                .and_then(|g| g.option_group_name())
                .map(str::to_owned),
        },
    })
}

async fn describe_cluster(aws: &Aws, id: &str) -> Result<DbInfo> {
    let out = aws
        .rds
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .map_err(sdk("rds:DescribeDBClusters"))?;
    let db = out.db_clusters().first().ok_or_else(|| Error::Aws {
        action: "rds:DescribeDBClusters".into(),
        code: "DBClusterNotFoundFault".into(),
        message: format!("DB cluster `{id}` not found"),
        hint: None,
    })?;
    let writer = db
        .db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer().unwrap_or(false))
        .and_then(|m| m.db_instance_identifier());
    let instance_class = match writer {
        Some(writer) => optional(describe_instance(aws, writer).await, DB_NOT_FOUND)?
            .and_then(|w| w.database.instance_class),
        None => None,
    };
    Ok(DbInfo {
        arn: db.db_cluster_arn().unwrap_or_default().to_owned(),
        status: db.status().unwrap_or_default().to_owned(),
        encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        endpoint: db.endpoint().map(str::to_owned),
        subnet_group: db.db_subnet_group().map(str::to_owned),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id())
            .map(str::to_owned)
            .collect(),
        publicly_accessible: db.publicly_accessible(),
        availability_zones: db.availability_zones().to_vec(),
        deletion_protection: db.deletion_protection().unwrap_or(false),
        writer: writer.map(str::to_owned),
        resource_id: db.db_cluster_resource_id().map(str::to_owned),
        member_of: None,
        database: Database {
            kind: DbKind::Cluster,
            identifier: id.to_owned(),
            engine: db.engine().unwrap_or_default().to_owned(),
            engine_version: db.engine_version().unwrap_or_default().to_owned(),
            port: db.port(),
            master_username: db.master_username().unwrap_or_default().to_owned(),
            database_name: db.database_name().map(str::to_owned),
            instance_class,
            allocated_storage: db.allocated_storage().filter(|s| *s > 0),
            storage_type: db.storage_type().map(str::to_owned),
            iops: db.iops(),
            multi_az: db.multi_az().unwrap_or(false),
            iam_auth: db.iam_database_authentication_enabled().unwrap_or(false),
            tags: tag_map(db.tag_list()),
            parameter_group: db.db_cluster_parameter_group().map(str::to_owned),
            option_group: None,
        },
    })
}

/// A database to restore from a snapshot, and where.
#[derive(Debug, Clone)]
pub struct RestoreSpec {
    pub id: String,
    /// Identifier, or the ARN of a snapshot shared with us.
    pub snapshot: String,
    /// Clusters: the key the restore encrypts with.
    pub kms_key: Option<String>,
    /// Engine, version, port, storage and IAM authentication come from here.
    pub database: Database,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    /// An instance's zone (ignored with Multi-AZ, which AWS then places); a cluster's zones.
    pub availability_zones: Vec<String>,
    pub publicly_accessible: bool,
    pub instance_class: Option<String>,
    /// DB parameter group of an instance, DB cluster parameter group of a cluster.
    pub parameter_group: Option<String>,
    pub option_group: Option<String>,
    pub multi_az: bool,
    pub deletion_protection: bool,
    pub tags: BTreeMap<String, String>,
}

/// Starts a restore; a database of that name made by an earlier try counts as started.
pub async fn restore(aws: &Aws, kind: DbKind, spec: &RestoreSpec) -> Result<()> {
    let d = &spec.database;
    created(match kind {
        DbKind::Instance => aws
            .rds
            .restore_db_instance_from_db_snapshot()
            .db_instance_identifier(&spec.id)
            .db_snapshot_identifier(&spec.snapshot)
            .set_db_subnet_group_name(spec.subnet_group.clone())
            .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
            .set_availability_zone(
                spec.availability_zones
                    .first()
                    .filter(|_| !spec.multi_az)
                    .cloned(),
            )
            .publicly_accessible(spec.publicly_accessible)
            .set_db_instance_class(spec.instance_class.clone())
            .set_port(d.port)
            .set_allocated_storage(d.allocated_storage)
            .set_storage_type(d.storage_type.clone())
            .set_iops(d.iops)
            .multi_az(spec.multi_az)
            .enable_iam_database_authentication(d.iam_auth)
            .set_db_parameter_group_name(spec.parameter_group.clone())
            .set_option_group_name(spec.option_group.clone())
            .deletion_protection(spec.deletion_protection)
            .set_tags(Some(tag_list(&spec.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:RestoreDBInstanceFromDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            .restore_db_cluster_from_snapshot()
            .db_cluster_identifier(&spec.id)
            .snapshot_identifier(&spec.snapshot)
            .engine(&d.engine)
            .engine_version(&d.engine_version)
            .set_kms_key_id(spec.kms_key.clone())
            .set_db_subnet_group_name(spec.subnet_group.clone())
            .set_vpc_security_group_ids(Some(spec.security_groups.clone()))
            .set_availability_zones(Some(spec.availability_zones.clone()).filter(|z| !z.is_empty()))
            .set_port(d.port)
            .enable_iam_database_authentication(d.iam_auth)
            .set_db_cluster_parameter_group_name(spec.parameter_group.clone())
            .deletion_protection(spec.deletion_protection)
            .set_tags(Some(tag_list(&spec.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:RestoreDBClusterFromSnapshot")),
    })
}

/// The writer instance a restored cluster needs (a cluster restore makes none).
#[derive(Debug, Clone)]
pub struct WriterSpec {
    pub id: String,
    pub cluster: String,
    pub engine: String,
    pub instance_class: String,
    pub availability_zone: Option<String>,
    pub publicly_accessible: bool,
    pub parameter_group: Option<String>,
    pub tags: BTreeMap<String, String>,
}

/// Creates the writer unless an earlier try did, and waits until it is `available`.
pub async fn ensure_writer(
    aws: &Aws,
    spec: &WriterSpec,
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<()> {
    if describe_db(aws, DbKind::Instance, &spec.id)
        .await?
        .is_none()
    {
        created(
            aws.rds
                .create_db_instance()
                .db_instance_identifier(&spec.id)
                .db_cluster_identifier(&spec.cluster)
                .engine(&spec.engine)
                .db_instance_class(&spec.instance_class)
                .set_availability_zone(spec.availability_zone.clone())
                .publicly_accessible(spec.publicly_accessible)
                .set_db_parameter_group_name(spec.parameter_group.clone())
                .set_tags(Some(tag_list(&spec.tags)))
                .send()
                .await
                .map(|_| ())
                .map_err(sdk("rds:CreateDBInstance")),
        )?;
        progress.event(&Event::step("writer instance", &spec.id, "creating"));
        progress.created("db-instance", &spec.id);
    }
    wait_db(
        aws,
        DbKind::Instance,
        &spec.id,
        "writer instance",
        wait,
        progress,
    )
    .await?;
    Ok(())
}

/// The state file's name for a snapshot of a database of `kind`.
pub fn snapshot_kind(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "db-snapshot",
        DbKind::Cluster => "db-cluster-snapshot",
    }
}

/// The state file's name for a database of `kind`.
pub fn database_kind(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "db-instance",
        DbKind::Cluster => "db-cluster",
    }
}

/// A snapshot by identifier or (for one shared with us) by ARN.
pub async fn describe_snapshot(aws: &Aws, kind: DbKind, id: &str) -> Result<Option<Snap>> {
    if id.starts_with("arn:") {
        return describe_shared_snapshot(aws, kind, id).await;
    }
    let found = match kind {
        DbKind::Instance => aws
            .rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBSnapshots"))
            .map(|o| o.db_snapshots().iter().map(snap_of_instance).next()),
        DbKind::Cluster => aws
            .rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBClusterSnapshots"))
            .map(|o| o.db_cluster_snapshots().iter().map(snap_of_cluster).next()),
    };
    Ok(optional(found, SNAP_NOT_FOUND)?.flatten())
}

/// A snapshot another account shares with us, found among the shared ones by ARN (all
/// pages: an account may see hundreds).
async fn describe_shared_snapshot(aws: &Aws, kind: DbKind, arn: &str) -> Result<Option<Snap>> {
    match kind {
        DbKind::Instance => {
            let mut pages = aws
                .rds
                .describe_db_snapshots()
                .snapshot_type("shared")
                .include_shared(true)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(sdk("rds:DescribeDBSnapshots"))?;
                let found = page.db_snapshots().iter().map(snap_of_instance);
                if let Some(snap) = found.into_iter().find(|s| s.arn == arn) {
                    return Ok(Some(snap));
                }
            }
        }
        DbKind::Cluster => {
            let mut pages = aws
                .rds
                .describe_db_cluster_snapshots()
                .snapshot_type("shared")
                .include_shared(true)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page = page.map_err(sdk("rds:DescribeDBClusterSnapshots"))?;
                let found = page.db_cluster_snapshots().iter().map(snap_of_cluster);
                if let Some(snap) = found.into_iter().find(|s| s.arn == arn) {
                    return Ok(Some(snap));
                }
            }
        }
    }
    Ok(None)
}

fn snap_of_instance(s: &aws_sdk_rds::types::DbSnapshot) -> Snap {
    Snap {
        id: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        encrypted: s.encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        snapshot_type: s.snapshot_type().unwrap_or_default().to_owned(),
        tags: tag_map(s.tag_list()),
        described: Described {
            engine: s.engine().map(str::to_owned),
            engine_version: s.engine_version().map(str::to_owned),
            port: s.port().filter(|p| *p > 0),
            master_username: s.master_username().map(str::to_owned),
            iam_auth: s.iam_database_authentication_enabled(),
        },
    }
}

fn snap_of_cluster(s: &aws_sdk_rds::types::DbClusterSnapshot) -> Snap {
    Snap {
        id: s
            .db_cluster_snapshot_identifier()
            .unwrap_or_default()
            .to_owned(),
        arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        encrypted: s.storage_encrypted().unwrap_or(false),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        snapshot_type: s.snapshot_type().unwrap_or_default().to_owned(),
        tags: tag_map(s.tag_list()),
        described: Described {
            engine: s.engine().map(str::to_owned),
            engine_version: s.engine_version().map(str::to_owned),
            port: s.port().filter(|p| *p > 0),
            master_username: s.master_username().map(str::to_owned),
            iam_auth: s.iam_database_authentication_enabled(),
        },
    }
}

pub async fn create_snapshot(
    aws: &Aws,
    kind: DbKind,
    db: &str,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    created(match kind {
        DbKind::Instance => aws
            .rds
            .create_db_snapshot()
            .db_instance_identifier(db)
            .db_snapshot_identifier(id)
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CreateDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            .create_db_cluster_snapshot()
            .db_cluster_identifier(db)
            .db_cluster_snapshot_identifier(id)
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CreateDBClusterSnapshot")),
    })
}

/// Refuses a snapshot found under a name this run makes unless it carries every tag in
/// `tags` and, when `key` is given, is encrypted with that key: a deterministic name lets a
/// re-run resume, and must not let a stale or planted snapshot in.
pub fn check_ours(snap: &Snap, tags: &BTreeMap<String, String>, key: Option<&str>) -> Result<()> {
    let mut differs: Vec<String> = tags
        .iter()
        .filter_map(|(k, v)| match snap.tags.get(k) {
            Some(found) if found == v => None,
            Some(found) => Some(format!("tag `{k}` is `{found}`, not `{v}`")),
            None => Some(format!("tag `{k}` is missing")),
        })
        .collect();
    if let Some(key) = key.filter(|k| snap.kms_key_id.as_deref() != Some(*k)) {
        let found = snap.kms_key_id.as_deref().unwrap_or("no key (unencrypted)");
        differs.push(format!("it is encrypted with `{found}`, not with `{key}`"));
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "snapshot `{}` exists but is not this run's: {}",
            snap.id,
            differs.join("; ")
        ),
        format!(
            "find out who made `{}`; if it is stale, delete it and re-run (the toolkit never reuses or deletes a snapshot it cannot prove is its own)",
            snap.id
        ),
    ))
}

/// Snapshots `db` into `id` unless an earlier try did, and waits until it is `available`.
pub async fn ensure_snapshot(
    aws: &Aws,
    kind: DbKind,
    db: &str,
    id: &str,
    tags: &BTreeMap<String, String>,
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Snap> {
    if describe_snapshot(aws, kind, id).await?.is_none() {
        create_snapshot(aws, kind, db, id, tags).await?;
        progress.event(&Event::step("snapshot", id, "started"));
        progress.created(snapshot_kind(kind), id);
    }
    let snap = wait_snapshot(aws, kind, id, "snapshot", wait, progress).await?;
    check_ours(&snap, tags, None)?;
    Ok(snap)
}

/// Deletes snapshot `id` if it carries every tag in `marks` (the toolkit's
/// `rds-handoff:role`, and whatever else ties it to this run); never one it did not make.
/// Returns whether it deleted it.
pub async fn delete_own_snapshot(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    marks: &[(&str, &str)],
) -> Result<bool> {
    let Some(snap) = describe_snapshot(aws, kind, id).await? else {
        return Ok(false);
    };
    if !carries(&snap.tags, marks) {
        return Ok(false);
    }
    delete_snapshot(aws, kind, id).await?;
    Ok(true)
}

/// Deletes DB cluster `id` (no final snapshot) if it carries every tag in `marks` and is
/// not already being deleted; never a cluster the toolkit did not make. Returns whether it
/// deleted it.
pub async fn delete_own_cluster(aws: &Aws, id: &str, marks: &[(&str, &str)]) -> Result<bool> {
    let Some(found) = describe_db(aws, DbKind::Cluster, id).await? else {
        return Ok(false);
    };
    if !carries(&found.database.tags, marks) || found.status == "deleting" {
        return Ok(false);
    }
    aws.rds
        .delete_db_cluster()
        .db_cluster_identifier(id)
        .skip_final_snapshot(true)
        .send()
        .await
        .map_err(sdk("rds:DeleteDBCluster"))?;
    Ok(true)
}

/// Whether `tags` hold every mark with its value.
fn carries(tags: &BTreeMap<String, String>, marks: &[(&str, &str)]) -> bool {
    marks
        .iter()
        .all(|(k, v)| tags.get(*k).map(String::as_str) == Some(*v))
}

/// Copies `source` to `target` (under `key`, when given) unless an earlier try did, waits
/// until the copy is `available`, and checks it is ours and under that key (KMS reports key
/// ARNs). The copy holds one of the account's copy slots while it runs.
#[allow(
    clippy::too_many_arguments,
    reason = "one call, every argument distinct"
)]
pub async fn ensure_copy(
    aws: &Aws,
    kind: DbKind,
    source: &str,
    target: &str,
    key: Option<&str>,
    tags: &BTreeMap<String, String>,
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Snap> {
    let mut slot = None;
    match describe_snapshot(aws, kind, target).await? {
        // Refuse a foreign snapshot before waiting on it.
        Some(found) => check_ours(&found, tags, None)?,
        None => {
            slot = Some(aws.copies.take(kind).await);
            copy_snapshot(aws, kind, source, target, key, tags).await?;
            let how = match key {
                Some(_) => "started under the key",
                None => "started, unencrypted",
            };
            progress.event(&Event::step("copy", target, how));
            progress.created(snapshot_kind(kind), target);
        }
    }
    let copy = wait_snapshot(aws, kind, target, "copy", wait, progress).await?;
    drop(slot);
    check_ours(&copy, tags, key)?;
    Ok(copy)
}

/// Stops a database (the source of `encrypt --stop-source`) unless it is stopped already.
pub async fn stop_db(aws: &Aws, kind: DbKind, id: &str) -> Result<()> {
    let result = match kind {
        DbKind::Instance => aws
            .rds
            .stop_db_instance()
            .db_instance_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:StopDBInstance")),
        DbKind::Cluster => aws
            .rds
            .stop_db_cluster()
            .db_cluster_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:StopDBCluster")),
    };
    match result {
        // A retried stop whose first answer was lost: it is stopping or stopped.
        Err(err) if err.aws_code().is_some_and(|c| c.starts_with("InvalidDB")) => Ok(()),
        other => other,
    }
}

/// Refuses when the region's manual snapshot quota has no room for `needed` more. The quota
/// is advisory: when it cannot be read (a caller without `rds:DescribeAccountAttributes`),
/// the run warns and goes on, and AWS itself refuses a snapshot over the quota.
pub async fn check_snapshot_room(
    aws: &Aws,
    kind: DbKind,
    needed: i64,
    progress: &dyn Progress,
) -> Result<()> {
    let quota = match snapshot_quota(aws, kind).await {
        Ok(quota) => quota,
        Err(err) => {
            let status = format!("not checked ({err})");
            progress.event(&Event::warning(
                "snapshot quota",
                "rds:DescribeAccountAttributes",
                &status,
            ));
            return Ok(());
        }
    };
    match quota {
        Some((used, max)) if used + needed > max => Err(Error::refused(
            format!(
                "the region has {used} of {max} manual snapshots; this run needs {needed} more"
            ),
            "delete manual snapshots you no longer need, or ask AWS for a higher quota",
        )),
        _ => Ok(()),
    }
}

/// Copies `source` (identifier or shared ARN) to `target`, re-encrypted under `key` if given.
pub async fn copy_snapshot(
    aws: &Aws,
    kind: DbKind,
    source: &str,
    target: &str,
    key: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    created(match kind {
        DbKind::Instance => aws
            .rds
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(target)
            .set_kms_key_id(key.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source)
            .target_db_cluster_snapshot_identifier(target)
            .set_kms_key_id(key.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBClusterSnapshot")),
    })
}

/// Adds or removes accounts in a snapshot's `restore` attribute.
pub async fn set_shared(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Result<()> {
    match kind {
        DbKind::Instance => aws
            .rds
            .modify_db_snapshot_attribute()
            .db_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(add.to_vec()).filter(|v| !v.is_empty()))
            .set_values_to_remove(Some(remove.to_vec()).filter(|v| !v.is_empty()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBSnapshotAttribute")),
        DbKind::Cluster => aws
            .rds
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(add.to_vec()).filter(|v| !v.is_empty()))
            .set_values_to_remove(Some(remove.to_vec()).filter(|v| !v.is_empty()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBClusterSnapshotAttribute")),
    }
}

/// The accounts in a snapshot's `restore` attribute.
pub async fn shared_with(aws: &Aws, kind: DbKind, id: &str) -> Result<Vec<String>> {
    let values =
        |name: Option<&str>, values: &[String]| (name == Some("restore")).then(|| values.to_vec());
    let found = match kind {
        DbKind::Instance => aws
            .rds
            .describe_db_snapshot_attributes()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBSnapshotAttributes"))?
            .db_snapshot_attributes_result()
            .and_then(|r| {
                r.db_snapshot_attributes()
                    .iter()
                    .find_map(|a| values(a.attribute_name(), a.attribute_values()))
            }),
        DbKind::Cluster => aws
            .rds
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBClusterSnapshotAttributes"))?
            .db_cluster_snapshot_attributes_result()
            .and_then(|r| {
                r.db_cluster_snapshot_attributes()
                    .iter()
                    .find_map(|a| values(a.attribute_name(), a.attribute_values()))
            }),
    };
    Ok(found.unwrap_or_default())
}

/// Deletes a snapshot; one already gone is fine.
pub async fn delete_snapshot(aws: &Aws, kind: DbKind, id: &str) -> Result<()> {
    let result = match kind {
        DbKind::Instance => aws
            .rds
            .delete_db_snapshot()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:DeleteDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            .delete_db_cluster_snapshot()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:DeleteDBClusterSnapshot")),
    };
    optional(result, SNAP_NOT_FOUND).map(|_| ())
}

/// Waits until a snapshot (identifier or shared ARN) is `available`.
pub async fn wait_snapshot(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    stage: &str,
    policy: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Snap> {
    let resource = format!("{} snapshot {id}", kind.name());
    let goal = Goal {
        stage,
        resource: &resource,
        status: "available",
    };
    wait_for(&goal, policy, progress, || describe_snapshot(aws, kind, id)).await
}

/// Waits until a database is `available`.
pub async fn wait_db(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    stage: &str,
    policy: WaitPolicy,
    progress: &dyn Progress,
) -> Result<DbInfo> {
    wait_db_status(aws, kind, id, (stage, "available"), policy, progress).await
}

/// Waits until a database reaches `status` (`available`, `stopped`).
pub async fn wait_db_status(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    (stage, status): (&str, &str),
    policy: WaitPolicy,
    progress: &dyn Progress,
) -> Result<DbInfo> {
    let resource = format!("{} {id}", kind.name());
    let goal = Goal {
        stage,
        resource: &resource,
        status,
    };
    wait_for(&goal, policy, progress, || describe_db(aws, kind, id)).await
}

impl Status for Snap {
    fn status(&self) -> &str {
        &self.status
    }
}

impl Status for DbInfo {
    fn status(&self) -> &str {
        &self.status
    }
}

/// A database or snapshot of this account and region, as its listing shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// As in the state file: `db-instance`, `db-cluster`, `db-snapshot`, `db-cluster-snapshot`.
    pub kind: &'static str,
    pub id: String,
    pub status: String,
    pub kms_key_id: Option<String>,
    /// Snapshots: `manual`, `automated`, …
    pub snapshot_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Databases: allocated storage in GiB (what a copy of it has to move).
    pub allocated_gib: i32,
    /// DB instances: the Aurora cluster it is a member of.
    pub cluster: Option<String>,
    /// Snapshots: the snapshot this one is a copy of.
    pub copy_of: Option<String>,
}

impl Listed {
    /// How an operator message names it: ``DB instance `orders` ``.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            "db-instance" => "DB instance",
            "db-cluster" => "DB cluster",
            "db-snapshot" => "snapshot",
            _ => "cluster snapshot",
        };
        format!("{what} `{}`", self.id)
    }
}

/// Every DB instance, DB cluster and snapshot this account owns in this region, every page.
pub async fn list_all(aws: &Aws) -> Result<Vec<Listed>> {
    let mut found = Vec::new();
    let mut pages = aws.rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBInstances"))?
                .db_instances()
                .iter()
                .map(|d| Listed {
                    kind: "db-instance",
                    id: d.db_instance_identifier().unwrap_or_default().to_owned(),
                    status: d.db_instance_status().unwrap_or_default().to_owned(),
                    kms_key_id: d.kms_key_id().map(str::to_owned),
                    snapshot_type: None,
                    tags: tag_map(d.tag_list()),
                    allocated_gib: d.allocated_storage().unwrap_or(0),
                    cluster: d.db_cluster_identifier().map(str::to_owned),
                    copy_of: None,
                }),
        );
    }
    let mut pages = aws.rds.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBClusters"))?
                .db_clusters()
                .iter()
                .map(|d| Listed {
                    kind: "db-cluster",
                    id: d.db_cluster_identifier().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    kms_key_id: d.kms_key_id().map(str::to_owned),
                    snapshot_type: None,
                    tags: tag_map(d.tag_list()),
                    allocated_gib: d.allocated_storage().unwrap_or(0),
                    cluster: None,
                    copy_of: None,
                }),
        );
    }
    let mut pages = aws.rds.describe_db_snapshots().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBSnapshots"))?
                .db_snapshots()
                .iter()
                .map(|s| Listed {
                    kind: "db-snapshot",
                    id: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
                    status: s.status().unwrap_or_default().to_owned(),
                    kms_key_id: s.kms_key_id().map(str::to_owned),
                    snapshot_type: s.snapshot_type().map(str::to_owned),
                    tags: tag_map(s.tag_list()),
                    allocated_gib: s.allocated_storage().unwrap_or(0),
                    cluster: None,
                    copy_of: s.source_db_snapshot_identifier().map(str::to_owned),
                }),
        );
    }
    let mut pages = aws
        .rds
        .describe_db_cluster_snapshots()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("rds:DescribeDBClusterSnapshots"))?;
        found.extend(page.db_cluster_snapshots().iter().map(|s| {
            Listed {
                kind: "db-cluster-snapshot",
                id: s
                    .db_cluster_snapshot_identifier()
                    .unwrap_or_default()
                    .to_owned(),
                status: s.status().unwrap_or_default().to_owned(),
                kms_key_id: s.kms_key_id().map(str::to_owned),
                snapshot_type: s.snapshot_type().map(str::to_owned),
                tags: tag_map(s.tag_list()),
                allocated_gib: s.allocated_storage().unwrap_or(0),
                cluster: None,
                copy_of: s.source_db_cluster_snapshot_arn().map(str::to_owned),
            }
        }));
    }
    Ok(found)
}

/// Manual snapshots in use and allowed in this region, from `DescribeAccountAttributes`
/// (asked once per run: every database of a fleet reads the same answer).
pub async fn snapshot_quota(aws: &Aws, kind: DbKind) -> Result<Option<(i64, i64)>> {
    let name = match kind {
        DbKind::Instance => "ManualSnapshots",
        DbKind::Cluster => "ManualClusterSnapshots",
    };
    let quotas = aws.quotas.get_or_try_init(|| account_quotas(aws)).await?;
    Ok(quotas
        .iter()
        .find(|(quota, ..)| quota == name)
        .map(|(_, used, max)| (*used, *max)))
}

async fn account_quotas(aws: &Aws) -> Result<Vec<(String, i64, i64)>> {
    let out = aws
        .rds
        .describe_account_attributes()
        .send()
        .await
        .map_err(sdk("rds:DescribeAccountAttributes"))?;
    Ok(out
        .account_quotas()
        .iter()
        .map(|q| {
            let name = q.account_quota_name().unwrap_or_default().to_owned();
            (name, q.used().unwrap_or(0), q.max().unwrap_or(i64::MAX))
        })
        .collect())
}

/// Options that make a snapshot unshareable: persistent or permanent ones (TDE).
pub async fn unshareable_options(aws: &Aws, option_group: &str) -> Result<Vec<String>> {
    if option_group.starts_with("default:") {
        return Ok(Vec::new());
    }
    let out = aws
        .rds
        .describe_option_groups()
        .option_group_name(option_group)
        .send()
        .await
        .map_err(sdk("rds:DescribeOptionGroups"))?;
    Ok(out
        .option_groups_list()
        .iter()
        .flat_map(|g| g.options())
        .filter(|o| o.persistent().unwrap_or(false) || o.permanent().unwrap_or(false))
        .filter_map(|o| o.option_name())
        .map(str::to_owned)
        .collect())
}
