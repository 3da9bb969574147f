//! Restoring a database from a snapshot (ours or shared with us), and creating the writer
//! instance a restored Aurora cluster needs.

use std::collections::BTreeMap;

use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::manifest::Database;
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;

use super::codes::created;
use super::database::{describe_db, wait_db};
use super::tags::tag_list;

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
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]); the database is then checked to come from this snapshot.
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
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]); the cluster is then checked to come from this snapshot.
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
                // Retry-safe by name: a repeat answers AlreadyExists ([`created`]).
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
