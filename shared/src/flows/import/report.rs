//! The import report (`<db>.import.json`): what it records, built from the plan and the
//! restored database, and read back by a re-run to answer an import that is already finished.

use serde::{Deserialize, Serialize};

use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::vocabulary::DbKind;
use crate::flows::export::now;

use super::placement::placement_differences;
use super::{ImportPlan, PasswordMode, TAG_SOURCE_SNAPSHOT};

/// What `import.json` records: where everything is, never the password.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportReport {
    pub schema: u32,
    pub created_at: String,
    pub kind: DbKind,
    pub db_identifier: String,
    pub db_arn: String,
    pub endpoint: Option<String>,
    pub port: Option<i32>,
    pub kms_key_arn: String,
    pub secret_arn: Option<String>,
    pub secret_name: Option<String>,
    pub source_snapshot_arn: String,
    /// The copy of the shared snapshot made in this account (deleted once restored).
    pub intermediate_copy: String,
    #[serde(default)]
    pub already_done: bool,
    /// The data check's last result (`--verify-data`, `tgt-agent verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data_check: Option<super::DataCheck>,
}

pub(super) fn report_of(
    plan: &ImportPlan,
    db: Option<&DbInfo>,
    key_arn: &str,
    secret_arn: Option<String>,
) -> ImportReport {
    ImportReport {
        schema: 1,
        created_at: now(),
        kind: plan.kind,
        db_identifier: plan.db.clone(),
        db_arn: db.map(|d| d.arn.clone()).unwrap_or_default(),
        endpoint: db.and_then(|d| d.endpoint.clone()),
        port: db.and_then(|d| d.database.port),
        kms_key_arn: key_arn.to_owned(),
        secret_name: (plan.args.password_mode == PasswordMode::Rotate)
            .then(|| plan.secret_name.clone()),
        secret_arn,
        source_snapshot_arn: plan.manifest.snapshot.arn.to_string(),
        intermediate_copy: plan.copy.clone(),
        already_done: false,
        data_check: None,
    }
}

/// A finished import: the report exists for this database and the database is available.
pub(super) async fn finished(aws: &Aws, plan: &ImportPlan) -> Result<Option<ImportReport>> {
    let Ok(text) = std::fs::read_to_string(&plan.report_path) else {
        return Ok(None);
    };
    let Ok(mut report) = serde_json::from_str::<ImportReport>(&text) else {
        return Ok(None);
    };
    if report.source_snapshot_arn != plan.manifest.snapshot.arn.as_str()
        || report.db_identifier != plan.db
    {
        return Ok(None);
    }
    let Some(db) = rds::describe_db(aws, plan.kind, &plan.db).await? else {
        return Ok(None);
    };
    let ours = db.database.tags.get(TAG_SOURCE_SNAPSHOT) == Some(&report.source_snapshot_arn);
    if db.status != "available" || !ours {
        return Ok(None);
    }
    let differs = placement_differences(aws, plan, &db, &report).await?;
    if !differs.is_empty() {
        return Err(Error::refused(
            format!(
                "{} `{}` is already imported, placed differently than this run asks: {}",
                plan.kind.name(),
                plan.db,
                differs.join("; ")
            ),
            "the import is done and was not changed: modify the database yourself (`aws rds modify-db-instance` / `modify-db-cluster`), or import again under a new `--db-identifier`",
        ));
    }
    report.already_done = true;
    Ok(Some(report))
}
