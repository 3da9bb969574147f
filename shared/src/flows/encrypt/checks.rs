//! What an `encrypt` checks against AWS: before anything is created (the preflight), the
//! twin an earlier run made (and a database of that name made otherwise, refused), and that
//! the twin is a copy of the original under the chosen key.

use crate::aws::kms::{Key, KeyChoice};
use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::Progress;
use crate::base::vocabulary::{DbKind, Encryption};

use super::{EncryptPlan, TAG_ENCRYPTED_FROM};

/// The twin, if an earlier run made it; a database of that name made otherwise is refused.
pub(super) async fn existing_twin(aws: &Aws, plan: &EncryptPlan) -> Result<Option<DbInfo>> {
    let Some(found) = rds::describe_db(aws, plan.kind, &plan.twin).await? else {
        return Ok(None);
    };
    if found.database.tags.get(TAG_ENCRYPTED_FROM) != Some(&plan.db) {
        return Err(Error::refused(
            format!(
                "{} `{}` already exists and is not an encrypted copy of `{}`",
                plan.kind.name(),
                plan.twin,
                plan.db
            ),
            "pass `--restore-as` with a free identifier",
        ));
    }
    Ok(Some(found))
}

pub(super) async fn twin_writer_ready(aws: &Aws, plan: &EncryptPlan) -> Result<bool> {
    if plan.kind == DbKind::Instance {
        return Ok(true);
    }
    Ok(rds::describe_db(aws, DbKind::Instance, &plan.writer)
        .await?
        .is_some_and(|w| w.status == "available"))
}

/// Everything that must hold before anything is created.
pub(super) async fn preflight(
    aws: &Aws,
    plan: &EncryptPlan,
    original: &DbInfo,
    progress: &dyn Progress,
) -> Result<()> {
    if original.encryption == Encryption::Unknown {
        return Err(Error::unknown_encryption(&format!(
            "{} `{}`",
            plan.kind.name(),
            plan.db
        )));
    }
    refuse_aws_owned_key(plan, original)?;
    if original.encryption == Encryption::KmsKey {
        return Err(Error::refused(
            format!(
                "{} `{}` is already encrypted (with `{}`): there is nothing to encrypt",
                plan.kind.name(),
                plan.db,
                original.kms_key_id.as_deref().unwrap_or("a KMS key")
            ),
            "to move it to another key, snapshot it and copy the snapshot with `--kms-key-id` (`aws rds copy-db-snapshot`), or hand it off with `src-agent export`",
        ));
    }
    if let KeyChoice::Given(key) = &plan.key {
        crate::flows::preflight::key_exists(aws, key).await?;
    }
    if plan.stop_source {
        // AWS snapshots no stopped database: a stopped one goes on only with its snapshot.
        rds::check_stop_source(aws, original, &plan.names.snapshot).await?;
    } else if original.status != "available" {
        return Err(Error::refused(
            format!(
                "{} `{}` is `{}`; it must be `available` to be snapshotted",
                plan.kind.name(),
                plan.db,
                original.status
            ),
            "wait until it is available (start it if it is stopped), then re-run",
        ));
    }
    if plan.kind == DbKind::Cluster && original.writer.is_none() {
        return Err(Error::refused(
            format!(
                "DB cluster `{}` has no writer instance to recreate",
                plan.db
            ),
            "add a writer instance to the cluster, or restore it by hand",
        ));
    }
    let needed = if plan.kind == DbKind::Instance { 2 } else { 1 };
    rds::check_snapshot_room(aws, plan.kind, needed, progress).await
}

/// The twin is what the run makes of `original`: the same engine and master user, encrypted
/// under the chosen key (`None`: the key does not exist yet, so no twin can be under it; KMS
/// reports key ARNs). IAM cannot tell which snapshot a database was restored from.
pub(super) fn check_twin(
    plan: &EncryptPlan,
    original: &DbInfo,
    twin: &DbInfo,
    key: Option<&Key>,
) -> Result<()> {
    let (ours, theirs) = (&original.database, &twin.database);
    if ours.engine != theirs.engine || ours.master_username != theirs.master_username {
        return Err(Error::refused(
            format!(
                "{} `{}` is {} with master user `{}`, not a copy of `{}` ({} with master user `{}`)",
                plan.kind.name(),
                plan.twin,
                theirs.engine,
                theirs.master_username,
                plan.db,
                ours.engine,
                ours.master_username
            ),
            "pass `--restore-as` with a free identifier, or find out who made it",
        ));
    }
    let key_arn = key.map(|k| k.arn.as_str());
    if twin.encryption == Encryption::KmsKey
        && twin.kms_key_id.is_some()
        && twin.kms_key_id.as_deref() == key_arn
    {
        return Ok(());
    }
    let wanted = match key_arn {
        Some(arn) => format!("`{arn}`"),
        None => "the run's key, which does not exist yet".to_owned(),
    };
    Err(Error::refused(
        format!(
            "{} `{}` is {}, not encrypted with {}",
            plan.kind.name(),
            plan.twin,
            match (twin.encryption, &twin.kms_key_id) {
                (Encryption::KmsKey, Some(other)) => format!("encrypted with `{other}`"),
                (encryption, _) => encryption.describe().to_owned(),
            },
            wanted
        ),
        format!(
            "delete `{}` (it is a copy; the original is untouched) and re-run",
            plan.twin
        ),
    ))
}

/// A database under an AWS owned key (`sse-rds`) is encrypted at rest already. What its
/// owner may want is a key of their own (to audit, share or revoke): for a cluster that is
/// the same restore with `KmsKeyId`, so it goes on when a key is named; an instance's restore
/// takes no key, and AWS documents no copy that re-keys its snapshots.
fn refuse_aws_owned_key(plan: &EncryptPlan, original: &DbInfo) -> Result<()> {
    if original.encryption != Encryption::AwsOwnedKey
        || (plan.kind == DbKind::Cluster && plan.key_named)
    {
        return Ok(());
    }
    let (kind, db) = (plan.kind.name(), &plan.db);
    let hint = match plan.kind {
        DbKind::Cluster => format!(
            "to put it under a key of your own, re-run with `--kms-key-id KEY` (or `--key-alias ALIAS` for a new key): \
             the copy is restored under that key; to hand it to another account, `src-agent export --db-cluster {db}` does that by itself"
        ),
        DbKind::Instance => "AWS documents no way to move an instance's snapshot from an AWS owned key to another key".to_owned(),
    };
    Err(Error::refused(
        format!("{kind} `{db}` is already encrypted at rest, with an AWS owned key (sse-rds)"),
        hint,
    ))
}
