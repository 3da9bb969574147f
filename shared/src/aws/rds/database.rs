//! A DB instance or Aurora cluster: describe it, wait for a status, and delete a cluster the
//! toolkit made; plus the refusals for a database not here or a cluster member. Stopping one
//! is in `stop.rs`.

use crate::aws::wait::{wait_for, Goal, Status, WaitPolicy};
use crate::aws::{Aws, Caller};
use crate::base::error::{sdk, Error, Result};
use crate::base::manifest::Database;
use crate::base::progress::Progress;
use crate::base::vocabulary::{DbKind, Encryption};

use super::codes::{optional, DB_NOT_FOUND};
use super::rounds::poll_db;
use super::tags::{carries, tag_map};
use super::DbInfo;

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
    Ok(instance_info(db))
}

/// A DB instance as the agents see it.
pub(super) fn instance_info(db: &aws_sdk_rds::types::DbInstance) -> DbInfo {
    let endpoint = db.endpoint();
    DbInfo {
        arn: db.db_instance_arn().unwrap_or_default().to_owned(),
        status: db.db_instance_status().unwrap_or_default().to_owned(),
        encryption: Encryption::read(
            db.storage_encryption_type().map(|t| t.as_str()),
            db.storage_encrypted(),
        ),
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
        managed_secret: db
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_owned),
        database: Database {
            kind: DbKind::Instance,
            identifier: db.db_instance_identifier().unwrap_or_default().to_owned(),
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
    }
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
    let instance_class = match writer_of(db) {
        Some(writer) => optional(describe_instance(aws, writer).await, DB_NOT_FOUND)?
            .and_then(|w| w.database.instance_class),
        None => None,
    };
    let mut info = cluster_info(db, instance_class);
    info.database.identifier = id.to_owned();
    Ok(info)
}

/// A cluster's writer instance, which holds its instance class.
pub(super) fn writer_of(db: &aws_sdk_rds::types::DbCluster) -> Option<&str> {
    db.db_cluster_members()
        .iter()
        .find(|m| m.is_cluster_writer().unwrap_or(false))
        .and_then(|m| m.db_instance_identifier())
}

/// A DB cluster as the agents see it, with its writer's instance class.
pub(super) fn cluster_info(
    db: &aws_sdk_rds::types::DbCluster,
    instance_class: Option<String>,
) -> DbInfo {
    DbInfo {
        arn: db.db_cluster_arn().unwrap_or_default().to_owned(),
        status: db.status().unwrap_or_default().to_owned(),
        encryption: Encryption::read(
            db.storage_encryption_type().map(|t| t.as_str()),
            db.storage_encrypted(),
        ),
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
        writer: writer_of(db).map(str::to_owned),
        resource_id: db.db_cluster_resource_id().map(str::to_owned),
        member_of: None,
        managed_secret: db
            .master_user_secret()
            .and_then(|s| s.secret_arn())
            .map(str::to_owned),
        database: Database {
            kind: DbKind::Cluster,
            identifier: db.db_cluster_identifier().unwrap_or_default().to_owned(),
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
    }
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

/// Waits until a database reaches `status` (`available`, `stopped`), polled with the run's
/// other waits ([`super::rounds`]).
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
    let mut first = true;
    wait_for(&goal, policy, progress, || {
        poll_db(aws, kind, id, std::mem::replace(&mut first, false))
    })
    .await
}

impl Status for DbInfo {
    fn status(&self) -> &str {
        &self.status
    }
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
    let result = aws
        .rds
        // Retry-safe: a repeat finds it deleting (InvalidDBClusterStateFault) or gone, both
        // read as done.
        .delete_db_cluster()
        .db_cluster_identifier(id)
        .skip_final_snapshot(true)
        .send()
        .await
        .map(|_| ())
        .map_err(sdk("rds:DeleteDBCluster"));
    match result {
        Err(err)
            if err.aws_code().is_some_and(|c| {
                c == "InvalidDBClusterStateFault" || DB_NOT_FOUND.contains(&c)
            }) =>
        {
            Ok(true)
        }
        other => other.map(|()| true),
    }
}
