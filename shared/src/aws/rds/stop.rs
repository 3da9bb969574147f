//! Stopping the source of `--stop-source` without losing its snapshot: AWS snapshots a
//! database only while it is `available` (DOMAIN.md §12). An instance is stopped by
//! `StopDBInstance` with `DBSnapshotIdentifier`, which takes the snapshot immediately before
//! the stop; a cluster (`StopDBCluster` takes no snapshot) is snapshotted while available and
//! stopped once the snapshot is. AWS starts a stopped database again by itself after 7 days.
//!
//! A run killed at any request, run again, finds where it was: [`check_stop_source`] tells a
//! state it resumes from (stopped with its snapshot) from one it cannot (stopped without it,
//! or started again since the snapshot).

use std::collections::BTreeMap;

use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::vocabulary::DbKind;

use super::tags::tag_list;
use super::{describe_db, describe_snapshot, DbInfo, Snap};

/// Stops a database unless it is stopping or stopped already: an instance with `snapshot`,
/// which AWS takes immediately before the stop.
pub async fn stop_db(aws: &Aws, kind: DbKind, id: &str, snapshot: Option<&str>) -> Result<()> {
    let result = match kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe: a repeat finds it stopping (InvalidDBInstanceState) or its snapshot
            // taken (DBSnapshotAlreadyExists), both read below.
            .stop_db_instance()
            .db_instance_identifier(id)
            .set_db_snapshot_identifier(snapshot.map(str::to_owned))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:StopDBInstance")),
        DbKind::Cluster => aws
            .rds
            // Retry-safe: a repeat finds it stopping (InvalidDBClusterStateFault), read below.
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
        // The snapshot is there: a stop that went through, unless the instance still runs.
        Err(err)
            if err
                .aws_code()
                .is_some_and(|c| c.starts_with("DBSnapshotAlreadyExists")) =>
        {
            match describe_db(aws, kind, id).await? {
                Some(db) if db.status == "available" => Err(Error::StartedSinceSnapshot {
                    db: id.to_owned(),
                    snapshot: snapshot.unwrap_or_default().to_owned(),
                }),
                _ => Ok(()),
            }
        }
        other => other,
    }
}

/// Whether a `--stop-source` run can start, or resume, from where `db` is, with `snapshot`
/// the run's snapshot name: a database that is not `available` must have that snapshot, of
/// itself (an earlier try took it before the stop); an instance still `available` must not
/// (the stop takes it: one found is older than the instance's last start).
pub async fn check_stop_source(aws: &Aws, db: &DbInfo, snapshot: &str) -> Result<()> {
    let (kind, name) = (db.database.kind, &db.database.identifier);
    let found = describe_snapshot(aws, kind, snapshot).await?;
    if let Some(snap) = &found {
        check_snapshot_of(snap, name)?;
    }
    match (db.status.as_str(), found) {
        ("available", Some(_)) if kind == DbKind::Instance => Err(Error::StartedSinceSnapshot {
            db: name.clone(),
            snapshot: snapshot.to_owned(),
        }),
        ("available", _) | (_, Some(_)) => Ok(()),
        (status, None) => Err(Error::StoppedWithoutSnapshot {
            kind,
            db: name.clone(),
            status: status.to_owned(),
            snapshot: snapshot.to_owned(),
        }),
    }
}

/// Marks snapshot `id`, which `StopDBInstance` took of `db` and which that call could not
/// tag, with `tags`, so that the checks and the cleanup after it treat it as one the toolkit
/// created; one that carries any of them already is left for [`super::check_ours`] to judge.
/// Returns whether the snapshot exists.
pub async fn adopt_stop_snapshot(
    aws: &Aws,
    kind: DbKind,
    db: &str,
    id: &str,
    tags: &BTreeMap<String, String>,
) -> Result<bool> {
    let Some(snap) = describe_snapshot(aws, kind, id).await? else {
        return Ok(false);
    };
    check_snapshot_of(&snap, db)?;
    if tags.keys().any(|k| snap.tags.contains_key(k)) {
        return Ok(true);
    }
    aws.rds
        // Retry-safe: the same tags again change nothing.
        .add_tags_to_resource()
        .resource_name(&snap.arn)
        .set_tags(Some(tag_list(tags)))
        .send()
        .await
        .map_err(sdk("rds:AddTagsToResource"))?;
    Ok(true)
}

/// A snapshot under one of the run's names must be of the run's database, as AWS reports it.
fn check_snapshot_of(snap: &Snap, db: &str) -> Result<()> {
    match snap.source_db.as_deref() {
        Some(of) if of == db => Ok(()),
        of => Err(Error::SnapshotOfAnother {
            snapshot: snap.id.clone(),
            of: of.unwrap_or("a database AWS does not name").to_owned(),
            db: db.to_owned(),
        }),
    }
}
