//! A snapshot of a database: describe it (ours by identifier, or shared with us by ARN),
//! create it, wait until it is `available`, check it is this run's, and delete it.
//! Copying one is in `copy.rs`, sharing one in `share.rs`.

use std::collections::BTreeMap;

use crate::aws::wait::{wait_for, Goal, Status, WaitPolicy};
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::{DbKind, Encryption, TAG_TARGET_REGION};

use super::codes::{created, optional, SNAP_NOT_FOUND};
use super::rounds::poll_snapshot;
use super::tags::{carries, tag_list, tag_map};
use super::{snapshot_kind, Described, Snap};

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

pub(super) fn snap_of_instance(s: &aws_sdk_rds::types::DbSnapshot) -> Snap {
    Snap {
        id: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
        arn: s.db_snapshot_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        encryption: Encryption::read(
            s.storage_encryption_type().map(|t| t.as_str()),
            s.encrypted(),
        ),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        snapshot_type: s.snapshot_type().unwrap_or_default().to_owned(),
        tags: tag_map(s.tag_list()),
        source_db: s.db_instance_identifier().map(str::to_owned),
        copied_from_region: s.source_region().map(str::to_owned),
        copied_from: s.source_db_snapshot_identifier().map(str::to_owned),
        described: Described {
            engine: s.engine().map(str::to_owned),
            engine_version: s.engine_version().map(str::to_owned),
            port: s.port().filter(|p| *p > 0),
            master_username: s.master_username().map(str::to_owned),
            iam_auth: s.iam_database_authentication_enabled(),
        },
    }
}

pub(super) fn snap_of_cluster(s: &aws_sdk_rds::types::DbClusterSnapshot) -> Snap {
    Snap {
        id: s
            .db_cluster_snapshot_identifier()
            .unwrap_or_default()
            .to_owned(),
        arn: s.db_cluster_snapshot_arn().unwrap_or_default().to_owned(),
        status: s.status().unwrap_or_default().to_owned(),
        encryption: Encryption::read(
            s.storage_encryption_type().map(|t| t.as_str()),
            s.storage_encrypted(),
        ),
        kms_key_id: s.kms_key_id().map(str::to_owned),
        snapshot_type: s.snapshot_type().unwrap_or_default().to_owned(),
        tags: tag_map(s.tag_list()),
        source_db: s.db_cluster_identifier().map(str::to_owned),
        copied_from_region: s
            .source_db_cluster_snapshot_arn()
            .and_then(|arn| arn.split(':').nth(3))
            .map(str::to_owned),
        copied_from: s.source_db_cluster_snapshot_arn().map(str::to_owned),
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
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the snapshot is checked to be ours.
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
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the snapshot is checked to be ours.
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
            // Added after the first cross-region release, whose names already say both
            // regions: its copies lack it.
            None if k == TAG_TARGET_REGION => None,
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

/// Waits until a snapshot (identifier or shared ARN) is `available`, polled with the run's
/// other waits ([`super::rounds`]).
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
    let mut first = true;
    wait_for(&goal, policy, progress, || {
        poll_snapshot(aws, kind, id, std::mem::replace(&mut first, false))
    })
    .await
}

impl Status for Snap {
    fn status(&self) -> &str {
        &self.status
    }
}

/// Deletes a snapshot; one already gone is fine.
pub async fn delete_snapshot(aws: &Aws, kind: DbKind, id: &str) -> Result<()> {
    let result = match kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe: a repeat answers not found, read as done.
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
