//! `export --verify-data`: the source's digest, the snapshot, and the digest again. Equal
//! digests prove the snapshot holds exactly that data (nothing was written while it was taken);
//! the digest goes into the manifest. Unequal ones mean writes are going on: the snapshot is
//! deleted, nothing is shared, and the operator is told which tables changed.
//!
//! A run killed between the snapshot and the share resumes from the proof it wrote beside the
//! manifest (`<manifest>.digest.json`) once the digests matched; a snapshot without that proof
//! proves nothing and is refused.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::manifest::write_atomic;
use crate::base::progress::{Event, Progress};
use crate::datacheck::{Difference, Digest};
use crate::flows::data::{self, DbArgs, Login};
use crate::workflow::{self, Op, Step};

use super::tags::TAG_ROLE;
use super::ExportPlan;

/// What `--verify-data` needs beyond the connection flags: whose login.
#[derive(Debug, Clone)]
pub struct DataPlan {
    pub args: DbArgs,
    /// `--db-secret`; else the database's RDS-managed master secret.
    pub secret: Option<String>,
}

/// The proof a run leaves once its snapshot's digests matched, for a resumed run.
#[derive(Debug, Serialize, Deserialize)]
struct Proof {
    db: String,
    target: String,
    snapshot: String,
    digest: Digest,
}

fn proof_path(manifest: &Path) -> PathBuf {
    let mut name = manifest.file_name().unwrap_or_default().to_os_string();
    name.push(".digest.json");
    manifest.with_file_name(name)
}

/// Runs the snapshot step between two digests of the source; the digest the snapshot holds.
/// `None` without `--verify-data`.
pub(super) async fn verified_snapshot(
    aws: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
    steps: &[Step],
    shared_exists: bool,
    progress: &dyn Progress,
) -> Result<Option<Digest>> {
    let Some(check) = &plan.data else {
        return Ok(None);
    };
    let path = proof_path(&plan.manifest_path);
    let taken = rds::describe_snapshot(aws, plan.kind, &plan.names.intermediate).await?;
    if shared_exists || taken.is_some() {
        return earlier_proof(&path, plan).map(Some);
    }
    // The snapshot step, after the stop that takes it with `--stop-source`.
    let taking = steps
        .iter()
        .position(|s| matches!(s.op, Op::Snapshot { .. }))
        .filter(|_| plan.from_snapshot.is_none())
        .ok_or_else(|| {
            Error::usage(
                "`--verify-data` takes its own snapshot: it does not go with `--from-snapshot`",
            )
        })?;
    let _stale = std::fs::remove_file(&path);
    let connection = data::connection(db, &check.args, source_login(aws, db, check).await?)?;
    let before = data::take(&connection, "source, before the snapshot", progress).await?;
    if plan.stop_source {
        // The digest before the stop is the proof: kept before the stop, so a run killed
        // while the instance stops resumes (it cannot be read once stopped).
        write_proof(&path, plan, &before)?;
    }
    workflow::local::run(aws, &steps[..=taking], plan.wait, progress).await?;
    let after = if plan.stop_source {
        // Stopped now: nothing writes after its snapshot, and nothing can be read either. A
        // write between the digest and the stop is in the snapshot, not in the digest, and
        // the target's check says so.
        progress.event(&Event::step(
            "data check",
            &plan.db,
            "stopped with its snapshot: the digest is the one taken just before the stop",
        ));
        before.clone()
    } else {
        data::take(&connection, "source, after the snapshot", progress).await?
    };
    let changed = changes(&before, &after);
    if !changed.is_empty() {
        discard(aws, plan, progress).await?;
        return Err(Error::DataDiffers {
            what: format!(
                "{} `{}` was written to while its snapshot was taken",
                plan.kind.name(),
                plan.db
            ),
            differences: changed,
            hint: "nothing was shared and this run's snapshot is deleted: stop the application's writes (the database itself stays available: AWS snapshots only an available database), or, for an instance, add `--stop-source`; then re-run, which takes a new snapshot".into(),
        });
    }
    write_proof(&path, plan, &after)?;
    if !plan.stop_source {
        progress.event(&Event::step(
            "data check",
            &plan.names.intermediate,
            "the snapshot holds the data: the digests before and after it are equal",
        ));
    }
    Ok(Some(after))
}

fn write_proof(path: &Path, plan: &ExportPlan, digest: &Digest) -> Result<()> {
    let proof = Proof {
        db: plan.db.clone(),
        target: plan.target.to_string(),
        snapshot: plan.names.intermediate.clone(),
        digest: digest.clone(),
    };
    let text = serde_json::to_string_pretty(&proof).unwrap_or_default();
    write_atomic(path, text.as_bytes())
}

/// Before anything is made (a dry run too): `--verify-data` can log in to the source (unless
/// `--stop-source` stopped it already, with its snapshot, whose proof a resumed run reads).
pub(super) async fn check_login(
    aws: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
    progress: &dyn Progress,
) -> Result<()> {
    let Some(check) = &plan.data else {
        return Ok(());
    };
    if plan.stop_source && db.status != "available" {
        return Ok(());
    }
    let connection = data::connection(db, &check.args, source_login(aws, db, check).await?)?;
    data::log_in(&connection, "source", progress).await
}

/// Each table that changed between the digest before the snapshot and the one after, said so.
fn changes(before: &Digest, after: &Digest) -> Vec<String> {
    before
        .differences(after)
        .iter()
        .map(|d| match d {
            Difference::Rows {
                table,
                expected,
                found,
            } => format!("{table}: {expected} rows before the snapshot, {found} after"),
            Difference::Contents { table } => {
                format!("{table}: rows changed while the snapshot was taken")
            }
            Difference::Missing { table } => {
                format!("{table}: dropped while the snapshot was taken")
            }
            Difference::Unexpected { table } => {
                format!("{table}: created while the snapshot was taken")
            }
        })
        .collect()
}

/// The manifest is written: a proof beside it has served (or, after a run without
/// `--verify-data`, is stale, and must not vouch for a later snapshot of the same name).
pub(super) fn proof_served(plan: &ExportPlan) {
    let _gone = std::fs::remove_file(proof_path(&plan.manifest_path));
}

/// An export finished earlier without `--verify-data` is not proven by asking now.
pub(super) fn refuse_unproven(plan: &ExportPlan, report: &super::ExportReport) -> Result<()> {
    let unproven = report.manifest.as_ref().is_some_and(|m| m.data.is_none());
    if plan.data.is_some() && unproven {
        return Err(Error::refused(
            format!(
                "the export of `{}` finished earlier without `--verify-data`: its manifest holds no digest, and nothing proves now what its snapshot holds",
                plan.db
            ),
            "hand it over as it is (the target can still check the restore by hand), or revoke it with its snapshot (`src-agent revoke MANIFEST --delete-snapshot`), move the manifest away and export again with `--verify-data`",
        ));
    }
    Ok(())
}

/// The login for the source: `--db-secret`, else the RDS-managed master secret.
async fn source_login(aws: &Aws, db: &DbInfo, check: &DataPlan) -> Result<Login> {
    let secret = check
        .secret
        .clone()
        .or_else(|| db.managed_secret.clone())
        .ok_or_else(|| {
            Error::usage(format!(
                "`--verify-data` logs in to {} `{}`, and RDS does not manage its master password: pass `--db-secret NAME_OR_ARN`, a Secrets Manager secret holding its login (`username`, `password`)",
                db.database.kind.name(),
                db.database.identifier
            ))
        })?;
    Login::from_secret(aws, &secret).await
}

fn earlier_proof(path: &Path, plan: &ExportPlan) -> Result<Digest> {
    let proof: Option<Proof> = std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    match proof {
        Some(p)
            if p.db == plan.db
                && p.target == plan.target.as_str()
                && p.snapshot == plan.names.intermediate =>
        {
            Ok(p.digest)
        }
        _ => Err(Error::refused(
            format!(
                "snapshot `{}` (or its shared copy `{}`) was made by an earlier run that did not check its data to the end: nothing proves what it holds",
                plan.names.intermediate, plan.names.shared
            ),
            format!(
                "delete them (`aws rds delete-db{kind}-snapshot --db{kind}-snapshot-identifier …`), then re-run with `--verify-data`",
                kind = match plan.kind {
                    crate::base::vocabulary::DbKind::Instance => "",
                    crate::base::vocabulary::DbKind::Cluster => "-cluster",
                }
            ),
        )),
    }
}

/// Deletes this run's snapshot of data that did not hold still.
async fn discard(aws: &Aws, plan: &ExportPlan, progress: &dyn Progress) -> Result<()> {
    let id = &plan.names.intermediate;
    if rds::delete_own_snapshot(aws, plan.kind, id, &[(TAG_ROLE, "intermediate")]).await? {
        progress.event(&Event::step(
            "data check",
            id,
            "snapshot deleted: it may miss writes",
        ));
    }
    Ok(())
}
