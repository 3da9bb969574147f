//! What an export checks before it creates anything: that the target is another account,
//! and that the database (or the snapshot started from), its option group, its encryption
//! and the account's snapshot quota allow the export.

use crate::aws::kms::KeyChoice;
use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::Progress;
use crate::base::vocabulary::{DbKind, Encryption};
use crate::flows::preflight;
use crate::ident::AccountId;

use super::snapshot::source_encryption;
use super::ExportPlan;

/// A handoff goes to another account.
pub fn refuse_own_account(caller: &AccountId, target: &AccountId) -> Result<()> {
    if caller != target {
        return Ok(());
    }
    Err(Error::refused(
        format!("the target account `{target}` is the account running the export"),
        "to encrypt a database within one account use `src-agent encrypt`; for a handoff pass the other account's id",
    ))
}

/// Everything that must hold before anything is created (`there`: the region of the shared
/// copy and its key, `aws` the database's).
pub(super) async fn preflight(
    aws: &Aws,
    there: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
    progress: &dyn Progress,
) -> Result<()> {
    if let KeyChoice::Given(key) = &plan.key {
        preflight::key_exists(there, key)
            .await
            .map_err(|err| super::region::key_hint(plan, err))?;
    }
    refuse_multi_az_cluster(plan, db)?;
    if plan.stop_source {
        // AWS snapshots no stopped instance: a stopped one goes on only with its snapshot.
        rds::check_stop_source(aws, db, &plan.names.intermediate).await?;
    } else if plan.from_snapshot.is_none() && db.status != "available" {
        return Err(Error::refused(
            format!("{} `{}` is `{}`; it must be `available` to be snapshotted", plan.kind.name(), plan.db, db.status),
            "wait until it is available (start it if it is stopped), or pass `--from-snapshot` with an existing snapshot",
        ));
    }
    if let Some(group) = &db.database.option_group {
        let options = rds::unshareable_options(aws, group).await?;
        if !options.is_empty() {
            return Err(Error::refused(
                format!("option group `{group}` has persistent or permanent options ({}): AWS does not share such snapshots", options.join(", ")),
                "move the database to an option group without them (e.g. without TDE) before exporting",
            ));
        }
    }
    let encryption = source_encryption(aws, plan, db).await?;
    refuse_aws_owned_key(plan, encryption)?;
    super::region::refuse_unserved(plan, there, db, encryption).await?;
    if plan.kind == DbKind::Cluster
        && encryption == Encryption::None
        && !plan.encrypt_at_source
        && !plan.allow_unencrypted_share
    {
        return Err(Error::refused(
            format!(
                "DB cluster `{}` is not encrypted, and AWS cannot copy an unencrypted cluster snapshot under a KMS key \
                 (CopyDBClusterSnapshot rejects KmsKeyId there): only a restore can encrypt it",
                plan.db
            ),
            "re-run with `--encrypt-at-source` (restore a temporary encrypted cluster here and share its snapshot; the source \
             cluster is not touched) or `--allow-unencrypted-share` (share it unencrypted; the target encrypts it on restore)",
        ));
    }
    // The intermediate snapshot is made where the database is, the shared copy in `there`.
    let intermediate = i64::from(plan.from_snapshot.is_none());
    if plan.target_region.is_none() {
        return rds::check_snapshot_room(aws, plan.kind, intermediate + 1, progress).await;
    }
    if intermediate > 0 {
        rds::check_snapshot_room(aws, plan.kind, intermediate, progress).await?;
    }
    rds::check_snapshot_room(there, plan.kind, 1, progress).await
}

/// A database under an AWS owned key (`sse-rds`, Aurora's default since 2026-02-18): its
/// snapshots cannot be shared, and AWS documents no copy that re-keys them. A cluster goes
/// through a temporary cluster restored under the key (the documented path), whatever
/// `--allow-unencrypted-share` says; an instance has no such path.
fn refuse_aws_owned_key(plan: &ExportPlan, encryption: Encryption) -> Result<()> {
    if encryption != Encryption::AwsOwnedKey {
        return Ok(());
    }
    match plan.kind {
        DbKind::Instance => Err(Error::refused(
            format!(
                "DB instance `{}` is encrypted with an AWS owned key (sse-rds): AWS documents no way to share its snapshots \
                 or to copy them under another key",
                plan.db
            ),
            "put a copy of it under a KMS key of yours first (for example a dump restored into a new encrypted instance), then export that",
        )),
        DbKind::Cluster => Ok(()),
    }
}

/// A Multi-AZ DB cluster (a DB cluster of the `mysql` or `postgres` engine, not Aurora): AWS
/// shares no snapshot of one (USER_ShareSnapshot, DOMAIN.md §15).
fn refuse_multi_az_cluster(plan: &ExportPlan, db: &DbInfo) -> Result<()> {
    let engine = db.database.engine.as_str();
    if plan.kind != DbKind::Cluster || !matches!(engine, "mysql" | "postgres") {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "DB cluster `{}` is a Multi-AZ DB cluster (engine `{engine}`), and AWS does not share snapshots of Multi-AZ DB clusters",
            plan.db
        ),
        "restore a snapshot of it to a DB instance (`aws rds restore-db-instance-from-db-snapshot --db-cluster-snapshot-identifier ...`), then export that instance",
    ))
}
