//! `import --verify-data` and `tgt-agent verify`: log in to the restored database with the
//! new master password (which proves it works), take the digest of every user table, and
//! compare it table by table with the one the source put in the manifest. The report records
//! the result either way; a difference fails with its own exit code (7).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::manifest::Manifest;
use crate::base::progress::{Event, Progress};
use crate::datacheck::{Difference, TableDigest};
use crate::flows::data::{self, DbArgs, Login};
use crate::flows::export::now;
use crate::flows::reach::{database_port, missing_rule_hint};
use crate::ident::{check_rds_id, AccountId};

use super::resolve::trusted_manifest;
use super::{write_report, ImportPlan, ImportReport, PasswordMode, TAG_SOURCE_SNAPSHOT};

/// The data check's result, as the report records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataCheck {
    /// `equal`, or `differs`.
    pub result: String,
    pub checked_at: String,
    /// Where the login came from (a secret's name or ARN, never a value).
    pub login: String,
    /// Every table of the restored database, with its rows and checksum.
    pub tables: BTreeMap<String, TableDigest>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differences: Vec<Difference>,
}

impl DataCheck {
    pub fn is_equal(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Before anything is made: the manifest carries a digest, and the engine has one.
pub(super) fn preflight(plan: &ImportPlan) -> Result<()> {
    if !plan.args.verify_data {
        return Ok(());
    }
    data::engine_of(&plan.manifest.database.engine)?;
    require_digest(&plan.manifest)
}

fn require_digest(manifest: &Manifest) -> Result<()> {
    manifest.data.as_ref().map(|_| ()).ok_or_else(no_digest)
}

fn no_digest() -> Error {
    Error::refused(
        "the manifest holds no digest of the data: the source exported without `--verify-data`",
        "ask the source admin to export again with `--verify-data`, or import without it",
    )
}

/// The data check of a finished import run again (`--verify-data` on a re-run).
pub(super) async fn check_again(
    aws: &Aws,
    plan: &ImportPlan,
    report: ImportReport,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    if !plan.args.verify_data {
        return Ok(report);
    }
    preflight(plan)?;
    let db = rds::describe_db(aws, plan.kind, &plan.db)
        .await?
        .ok_or_else(|| {
            Error::refused(
                format!("{} `{}` is gone", plan.kind.name(), plan.db),
                "check `--db-identifier`",
            )
        })?;
    check_and_record(aws, plan, &db, report, progress).await
}

/// Checks the restored data, records the result in the report, and fails on a difference.
pub(super) async fn check_and_record(
    aws: &Aws,
    plan: &ImportPlan,
    db: &DbInfo,
    mut report: ImportReport,
    progress: &dyn Progress,
) -> Result<ImportReport> {
    let secret = login_secret(plan, db)?;
    let check = check_restored(aws, &plan.manifest, db, &secret, &plan.args.db, progress).await?;
    report.data_check = Some(check.clone());
    let already_done = std::mem::take(&mut report.already_done);
    write_report(plan, &report, progress)?;
    report.already_done = already_done;
    outcome(&check, db)?;
    Ok(report)
}

/// The secret holding the new master password: the one this import stored, or RDS's own.
fn login_secret(plan: &ImportPlan, db: &DbInfo) -> Result<String> {
    match plan.args.password_mode {
        PasswordMode::Rotate => Ok(plan.secret_name.clone()),
        PasswordMode::RdsManaged => db.managed_secret.clone().ok_or_else(|| {
            Error::refused(
                format!("RDS reports no master secret for `{}`", plan.db),
                "wait until its password change is done, then run `tgt-agent verify`",
            )
        }),
    }
}

/// Logs in with the secret's login and compares the digest with the manifest's.
async fn check_restored(
    aws: &Aws,
    manifest: &Manifest,
    db: &DbInfo,
    secret: &str,
    args: &DbArgs,
    progress: &dyn Progress,
) -> Result<DataCheck> {
    let expected = manifest.data.as_ref().ok_or_else(no_digest)?;
    let login = Login::from_secret(aws, secret).await?;
    if login.user != db.database.master_username {
        return Err(Error::refused(
            format!(
                "{} holds the login of `{}`, not of the master user `{}`: it proves nothing of the new master password",
                login.from, login.user, db.database.master_username
            ),
            "pass the secret of the master user (`--secret-name`)",
        ));
    }
    let from = login.from.clone();
    let connection = data::connection(db, args, login)?;
    let found = data::take(&connection, "restored database", progress)
        .await
        .map_err(|e| name_missing_rule(e, manifest, db, args))?;
    if found.method != expected.method || found.engine != expected.engine {
        return Err(Error::refused(
            format!(
                "the manifest's digest is of another kind ({} {}) than this release takes ({} {})",
                expected.engine.name(),
                expected.method,
                found.engine.name(),
                found.method
            ),
            "run the same release of rds-handoff on both sides",
        ));
    }
    let differences = expected.differences(&found);
    Ok(DataCheck {
        result: if differences.is_empty() {
            "equal"
        } else {
            "differs"
        }
        .to_owned(),
        checked_at: now(),
        login: from,
        tables: found.tables,
        differences,
    })
}

/// A connection to the endpoint itself that never came: the security groups' rule it needs,
/// named. Through a tunnel (`--db-endpoint`) the tunnel is the first suspect, as the error says.
fn name_missing_rule(err: Error, manifest: &Manifest, db: &DbInfo, args: &DbArgs) -> Error {
    let Error::Database(inner) = &err else {
        return err;
    };
    if !inner.is_unreachable() || args.db_endpoint.is_some() {
        return err;
    }
    let port = database_port(&manifest.database).unwrap_or_default();
    Error::refused(
        format!("data check: {inner}"),
        missing_rule_hint(&db.security_groups, port, &[]),
    )
}

/// A difference as the operator's error; the progress says each table.
fn outcome(check: &DataCheck, db: &DbInfo) -> Result<()> {
    if check.is_equal() {
        return Ok(());
    }
    Err(Error::DataDiffers {
        what: format!(
            "{} `{}` does not hold the data the source exported",
            db.database.kind.name(),
            db.database.identifier
        ),
        differences: check.differences.iter().map(|d| d.describe()).collect(),
        hint: "the report records each table's rows and checksum: find out what changed the restored database since its restore, or restore it again (`tgt-agent import` under a new `--db-identifier`) and check that".into(),
    })
}

/// What `tgt-agent verify` takes: the manifest, whom it trusts, and how to reach the database.
#[derive(Debug, Clone, clap::Args)]
pub struct VerifyArgs {
    /// The manifest the database was imported from
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// The account you expect the database from [default: `RDS_HANDOFF_SOURCE_ACCOUNT`]
    #[arg(long, value_name = "ACCOUNT", env = "RDS_HANDOFF_SOURCE_ACCOUNT")]
    pub source_account: Option<AccountId>,
    /// The manifest's SHA-256 as `src-agent export` printed it
    #[arg(long, value_name = "HEX")]
    pub manifest_sha256: Option<String>,
    /// Go on without `--manifest-sha256` (said in a warning)
    #[arg(long, conflicts_with = "manifest_sha256")]
    pub skip_manifest_sha256: bool,
    /// Name of the restored database [default: the source's name]
    #[arg(long, value_name = "ID")]
    pub db_identifier: Option<String>,
    /// The secret holding the master login [default: rds-handoff/<db>/master, else the
    /// database's RDS-managed master secret]
    #[arg(long, value_name = "NAME_OR_ARN")]
    pub secret_name: Option<String>,
    #[command(flatten)]
    pub db: DbArgs,
}

/// `tgt-agent verify`: the data check of a restored database, again; the report beside it
/// (`<db>.import.json`) records the result when it exists.
pub async fn verify_data(
    aws: &Aws,
    args: &VerifyArgs,
    progress: &dyn Progress,
) -> Result<(String, DataCheck)> {
    if args.manifest_sha256.is_none() && !args.skip_manifest_sha256 {
        return Err(Error::usage(
            "`--manifest-sha256` is required (or `--skip-manifest-sha256`): the digest compared with is the manifest's",
        ));
    }
    if args.skip_manifest_sha256 {
        progress.event(&Event::warning(
            "manifest SHA-256",
            &args.manifest.display().to_string(),
            super::UNCHECKED,
        ));
    }
    let sha: Vec<String> = args.manifest_sha256.iter().cloned().collect();
    let manifest = trusted_manifest(&args.manifest, args.source_account.as_ref(), &sha)?;
    let kind = manifest.database.kind;
    let id = args
        .db_identifier
        .clone()
        .unwrap_or_else(|| manifest.database.identifier.clone());
    let id = check_rds_id(kind.id_kind(), &id)?;
    let db = rds::describe_db(aws, kind, &id).await?.ok_or_else(|| {
        Error::refused(
            format!("{} `{id}` not found here", kind.name()),
            "pass `--db-identifier` with the name it was imported under, and the import's `--region`",
        )
    })?;
    if db.database.tags.get(TAG_SOURCE_SNAPSHOT) != Some(&manifest.snapshot.arn.to_string()) {
        return Err(Error::refused(
            format!(
                "{} `{id}` was not restored from this manifest's snapshot",
                kind.name()
            ),
            "pass the manifest it was imported from, or `--db-identifier`",
        ));
    }
    let secret = args
        .secret_name
        .clone()
        .or_else(|| read_report(&id).and_then(|r| r.secret_arn))
        .or_else(|| db.managed_secret.clone())
        .unwrap_or_else(|| format!("rds-handoff/{id}/master"));
    let check = check_restored(aws, &manifest, &db, &secret, &args.db, progress).await?;
    record(&id, &check, progress);
    outcome(&check, &db)?;
    Ok((id, check))
}

fn read_report(id: &str) -> Option<ImportReport> {
    let text = std::fs::read_to_string(format!("{id}.import.json")).ok()?;
    serde_json::from_str(&text).ok()
}

/// The result into the import report beside, when there is one.
fn record(id: &str, check: &DataCheck, progress: &dyn Progress) {
    let Some(mut report) = read_report(id) else {
        return;
    };
    report.data_check = Some(check.clone());
    let path = format!("{id}.import.json");
    let text = serde_json::to_string_pretty(&report).unwrap_or_default();
    if crate::base::manifest::write_atomic(std::path::Path::new(&path), text.as_bytes()).is_ok() {
        progress.event(&Event::step("report", &path, "data check recorded"));
    }
}
