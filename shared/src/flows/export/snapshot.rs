//! The export's snapshot steps: take the snapshot, start the copy under the key (or restore
//! a temporary encrypted cluster and snapshot it) into the shared name, share it with the
//! target; then check the share took effect and delete what the run no longer needs.

use std::collections::BTreeMap;

use crate::aws::rds::{self, DbInfo, Snap};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::{DbKind, Encryption};
use crate::workflow::{Op, Step, Workflow};

use super::tags::{base_tags, with_role, TAG_ROLE};
use super::ExportPlan;

/// The encryption of what is copied: the snapshot started from, or the database.
pub(super) async fn source_encryption(
    aws: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
) -> Result<Encryption> {
    let (encryption, what) = match &plan.from_snapshot {
        None => (db.encryption, format!("{} `{}`", plan.kind.name(), plan.db)),
        Some(id) => (
            snapshot_encryption(aws, plan, id).await?,
            format!("snapshot `{id}`"),
        ),
    };
    if encryption == Encryption::Unknown {
        return Err(Error::unknown_encryption(&what));
    }
    Ok(encryption)
}

async fn snapshot_encryption(aws: &Aws, plan: &ExportPlan, id: &str) -> Result<Encryption> {
    Ok(rds::describe_snapshot(aws, plan.kind, id)
        .await?
        .ok_or_else(|| {
            Error::refused(
                format!("snapshot `{id}` not found"),
                "check `--from-snapshot`; if the shared copy was made already, re-run without it: the copy is reused",
            )
        })?
        .encryption)
}

/// A snapshot found under the name of the export's own snapshot of the database (resumed
/// after a run stopped) is of this database, as AWS reports it (`DBInstanceIdentifier` /
/// `DBClusterIdentifier`): its tags alone prove nothing, anyone who may tag a snapshot can
/// copy them.
pub(super) async fn check_intermediate(aws: &Aws, plan: &ExportPlan) -> Result<()> {
    if plan.from_snapshot.is_some() {
        return Ok(());
    }
    let id = &plan.names.intermediate;
    let Some(found) = rds::describe_snapshot(aws, plan.kind, id).await? else {
        return Ok(());
    };
    let of = found.source_db.as_deref();
    if of.is_some_and(|of| of.eq_ignore_ascii_case(&plan.db)) {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "snapshot `{id}` exists but is not this run's: AWS says it is a snapshot of {}, not of {} `{}`",
            of.map(|of| format!("`{of}`"))
                .unwrap_or_else(|| "no database it names".to_owned()),
            plan.kind.name(),
            plan.db
        ),
        format!("find out who made `{id}`; if it is stale, delete or rename it, then re-run"),
    ))
}

/// How the shared copy comes to be under the toolkit's key (DOMAIN.md §3, §14).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rekey {
    /// `CopyDB(Cluster)Snapshot` with `KmsKeyId`: an instance's snapshot (AWS encrypts an
    /// unencrypted one on the way), or a cluster's under a KMS key.
    Copy,
    /// A temporary cluster restored with `KmsKeyId`, then snapshotted: AWS's documented way to
    /// put a cluster under a key when no copy is: an unencrypted cluster (`--encrypt-at-source`),
    /// or one under an AWS owned key (`sse-rds`), whose snapshots AWS documents no way to share
    /// or to copy under another key.
    TempCluster,
    /// Copied as it is, unencrypted (`--allow-unencrypted-share`): the target's restore encrypts it.
    Unencrypted,
}

impl Rekey {
    /// The path for a database of `plan.kind` whose copied snapshot is `source`; the
    /// preflight has refused the combinations no path serves.
    pub fn of(plan: &ExportPlan, source: Encryption) -> Self {
        match (plan.kind, source) {
            (DbKind::Instance, _) | (DbKind::Cluster, Encryption::KmsKey) => Self::Copy,
            // `Unknown` is refused before ([`source_encryption`]); were it not, the restore
            // under the key is the path that assumes least.
            (DbKind::Cluster, Encryption::AwsOwnedKey | Encryption::Unknown) => Self::TempCluster,
            (DbKind::Cluster, Encryption::None) if plan.encrypt_at_source => Self::TempCluster,
            (DbKind::Cluster, Encryption::None) => Self::Unencrypted,
        }
    }
}

/// Says why a cluster that is already encrypted goes through a temporary cluster.
pub(super) fn say_rekey(plan: &ExportPlan, source: Encryption, progress: &dyn Progress) {
    if plan.kind != DbKind::Cluster || source != Encryption::AwsOwnedKey {
        return;
    }
    let flag = if plan.allow_unencrypted_share {
        " (`--allow-unencrypted-share` is for unencrypted clusters only)"
    } else {
        ""
    };
    progress.event(&Event::step(
        "encryption",
        &plan.db,
        &format!(
            "encrypted with an AWS owned key (sse-rds), which no other account can use and no documented copy re-keys: \
             it goes under the key through a temporary cluster restored with it{flag}"
        ),
    ));
}

/// The shared copy found or made is this run's: its tags, the key its path puts it under
/// (none for an unencrypted share; never an AWS owned key), and the database it holds
/// (`sources`: the exported one, or the temporary cluster an unencrypted cluster goes through).
/// An existing shared copy is this run's ([`check_copy`] with the run's tags and sources).
pub(super) fn check_shared_copy(
    plan: &ExportPlan,
    found: &Snap,
    rekey: Rekey,
    key_arn: &str,
) -> Result<()> {
    let tags = with_role(&base_tags(plan), "shared-copy");
    let sources = [plan.db.as_str(), plan.names.temp_cluster.as_str()];
    check_copy(found, &tags, rekey, key_arn, &sources)?;
    check_copied_from(plan, found)
}

/// A copy made across regions is of this run's snapshot, as AWS records it: its tags, key
/// and database can all be given by whoever may copy into the name, its source cannot.
pub(super) fn check_copied_from(plan: &ExportPlan, found: &Snap) -> Result<()> {
    let Some(expected) = &plan.copied_from else {
        return Ok(());
    };
    if found.copied_from.as_deref() == Some(expected.as_str()) {
        return Ok(());
    }
    let said = match &found.copied_from {
        Some(from) => format!("AWS says it was copied from `{from}`"),
        None => "AWS names no snapshot it was copied from".to_owned(),
    };
    Err(Error::refused(
        format!(
            "snapshot `{}` exists but is not this run's: {said}, not from `{expected}`",
            found.id
        ),
        format!("find out who made `{}`; delete it, then re-run", found.id),
    ))
}

pub(super) fn check_copy(
    snapshot: &Snap,
    tags: &BTreeMap<String, String>,
    rekey: Rekey,
    key_arn: &str,
    sources: &[&str],
) -> Result<()> {
    let unencrypted_share = rekey == Rekey::Unencrypted && snapshot.encryption.is_encrypted();
    if unencrypted_share || snapshot.encryption == Encryption::AwsOwnedKey {
        return Err(Error::refused(
            format!(
                "snapshot `{}` exists but is not this run's: it is {}, which this run never shares",
                snapshot.id,
                snapshot.encryption.describe()
            ),
            format!(
                "find out who made `{}`; if it is stale, delete it and re-run",
                snapshot.id
            ),
        ));
    }
    // Tags and key can be given by whoever may copy into the name; AWS's own record of the
    // database a snapshot holds cannot.
    if let Some(source) = snapshot.source_db.as_deref() {
        if !sources.contains(&source) {
            return Err(Error::refused(
                format!(
                    "snapshot `{}` exists but is not this run's: AWS says it holds `{source}`, not `{}`",
                    snapshot.id, sources[0]
                ),
                format!(
                    "find out who made `{}`; delete it, then re-run",
                    snapshot.id
                ),
            ));
        }
    }
    let key = (rekey != Rekey::Unencrypted).then_some(key_arn);
    rds::check_ours(snapshot, tags, key)
}

/// The export's steps: snapshot, then copy under the key (or restore a temporary cluster
/// under the key and snapshot it) into the shared name, then share. Once the shared copy
/// exists, only finding it (and waiting for it) and sharing are left.
pub fn steps(
    plan: &ExportPlan,
    db: &DbInfo,
    key_arn: &str,
    shared_exists: bool,
    rekey: Rekey,
) -> Vec<Step> {
    let (kind, names) = (plan.kind, &plan.names);
    let tags = base_tags(plan);
    let shared_tags = with_role(&tags, "shared-copy");
    let step = |name: &str, op: Op| Step::new(Workflow::Export, name, kind, op);
    let mut steps = Vec::new();
    let source = plan
        .from_snapshot
        .clone()
        .unwrap_or(names.intermediate.clone());
    if plan.from_snapshot.is_none() && !shared_exists {
        if plan.stop_source {
            steps.push(step(
                "Stop",
                Op::Stop {
                    db: plan.db.clone(),
                    snapshot: Some(names.intermediate.clone()),
                    tags: with_role(&tags, "intermediate"),
                },
            ));
        }
        steps.push(step(
            "Snapshot",
            Op::Snapshot {
                db: plan.db.clone(),
                id: names.intermediate.clone(),
                tags: with_role(&tags, "intermediate"),
            },
        ));
    }
    if rekey == Rekey::TempCluster {
        if !shared_exists {
            steps.push(step(
                "TempCluster",
                Op::Restore(Box::new(temp_cluster(plan, db, &source, key_arn))),
            ));
        }
        steps.push(step(
            "TempSnapshot",
            Op::Snapshot {
                db: names.temp_cluster.clone(),
                id: names.shared.clone(),
                tags: shared_tags.clone(),
            },
        ));
    } else {
        let key = (rekey == Rekey::Copy).then(|| key_arn.to_owned());
        steps.push(step(
            "Copy",
            Op::Copy {
                source,
                id: names.shared.clone(),
                key,
                option_group: None,
                tags: shared_tags,
            },
        ));
    }
    steps.push(step(
        "Share",
        Op::Share {
            id: names.shared.clone(),
            account: plan.target.to_string(),
        },
    ));
    steps
}

/// A temporary cluster restored under the key, where the database is, to snapshot encrypted.
fn temp_cluster(plan: &ExportPlan, db: &DbInfo, source: &str, key_arn: &str) -> rds::RestoreSpec {
    rds::RestoreSpec {
        id: plan.names.temp_cluster.clone(),
        snapshot: source.to_owned(),
        kms_key: Some(key_arn.to_owned()),
        database: db.database.clone(),
        subnet_group: db.subnet_group.clone(),
        security_groups: db.security_groups.clone(),
        availability_zones: Vec::new(),
        publicly_accessible: false,
        instance_class: None,
        parameter_group: None,
        option_group: None,
        multi_az: false,
        deletion_protection: false,
        tags: with_role(&base_tags(plan), "temporary-cluster"),
    }
}

async fn delete_temp_cluster(aws: &Aws, plan: &ExportPlan, progress: &dyn Progress) -> Result<()> {
    // Only ever delete a cluster this toolkit made for this export.
    let temp = &plan.names.temp_cluster;
    if rds::delete_own_cluster(aws, temp, &[(TAG_ROLE, "temporary-cluster")]).await? {
        progress.event(&Event::step("temporary cluster", temp, "deleted"));
    }
    Ok(())
}

/// The share step took effect: the target is in the snapshot's `restore` attribute.
pub(super) async fn check_shared(
    aws: &Aws,
    plan: &ExportPlan,
    progress: &dyn Progress,
) -> Result<()> {
    let id = &plan.names.shared;
    let target = plan.target.to_string();
    let now_shared = rds::shared_with(aws, plan.kind, id).await?;
    if !now_shared.contains(&target) {
        return Err(Error::refused(
            format!("snapshot `{id}` is still not shared with `{target}` after ModifyDBSnapshotAttribute"),
            "check the snapshot's sharing in the RDS console, then re-run",
        ));
    }
    progress.event(&Event::step(
        "share",
        id,
        &format!("shared with {}", now_shared.join(", ")),
    ));
    Ok(())
}

/// Deletes what this run made and no longer needs; never a snapshot it did not take.
pub(super) async fn cleanup(
    aws: &Aws,
    plan: &ExportPlan,
    rekey: Rekey,
    progress: &dyn Progress,
) -> Result<()> {
    if rekey == Rekey::TempCluster {
        delete_temp_cluster(aws, plan, progress).await?;
    }
    let id = &plan.names.intermediate;
    if plan.stop_source {
        // The stop's snapshot, which that call could not tag (nor the Step Functions engine).
        let tags = with_role(&base_tags(plan), "intermediate");
        rds::adopt_stop_snapshot(aws, plan.kind, &plan.db, id, &tags).await?;
    }
    if plan.keep_intermediate || plan.from_snapshot.is_some() {
        return Ok(());
    }
    if rds::delete_own_snapshot(aws, plan.kind, id, &[(TAG_ROLE, "intermediate")]).await? {
        progress.event(&Event::step("cleanup", id, "intermediate snapshot deleted"));
    }
    Ok(())
}
