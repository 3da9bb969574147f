//! `tgt-agent import` and `tgt-agent check`: verify the manifest against AWS, re-key the
//! shared snapshot under the target's own key, restore, set a new master password.
//!
//! AWS decides, the manifest proposes: every claim (our account, region, snapshot owner,
//! share, encryption key) is checked against AWS before anything is created. Each step looks
//! for its own result first, so a killed import re-run with the same arguments continues and
//! never makes a second copy, database or secret.
//!
//! This file holds the arguments, the plan of one import, and the flow that runs the steps;
//! each step is a file of its own:
//!
//! - `resolve.rs`: the plan from the arguments and the manifest, checked without AWS (the
//!   manifest's SHA-256, the source pinned to the account the operator trusts, names).
//! - `verify.rs`: the manifest and the shared snapshot verified against AWS (`check`).
//! - `placement.rs`: the subnet group, security groups, parameter and option groups and key
//!   the run asks for: that they exist here, and how a finished import differs from them.
//! - `restore.rs`: the workflow's steps (copy the shared snapshot under our key, restore,
//!   add a cluster's writer), and deleting the copy after.
//! - `password.rs`: the new master password, kept in Secrets Manager or managed by RDS.
//! - `report.rs`: the import report (`<db>.import.json`), and a finished import read from it.
//! - `dry_run.rs`: the plan a dry run prints, each step read from AWS.
//! - `data.rs`: `--verify-data` and `tgt-agent verify`: the restored data checked against the
//!   manifest's digest, logged in with the new master password.
//!
//! The Secrets Manager calls themselves are in [`crate::aws::secrets`].

mod data;
mod dry_run;
mod password;
mod placement;
mod report;
mod resolve;
mod restore;
mod verify;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::kms::{ensure_key, KeyChoice};
use crate::aws::rds;
use crate::aws::wait::{parse_duration, WaitPolicy};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::manifest::{write_atomic, Manifest};
use crate::base::progress::{Event, Progress};
use crate::base::state::{self, Recorder};
use crate::base::vocabulary::DbKind;
use crate::flows::data::DbArgs;
use crate::flows::export::TAG_ROLE;
use crate::flows::reach::ReachArgs;
use crate::ident::AccountId;
use crate::policy::KeyPolicySpec;
use crate::workflow::{self, EngineArgs, Workflow};

use dry_run::print_plan;
use password::{rds_managed_password, rotate_password};
use report::{finished, report_of};

pub use data::{verify_data, DataCheck, VerifyArgs};
pub use report::ImportReport;
pub use resolve::check_sha256;
pub use restore::{delete_copy, steps};
pub use verify::verify;

pub use crate::base::vocabulary::TAG_SOURCE_SNAPSHOT;

/// On the master secret: the resource id of the database whose password the secret holds,
/// written once the new password is set on that database.
pub const TAG_PASSWORD_SET: &str = "rds-handoff:password-set";

/// How the restored database's new master password is kept (`--password-mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswordMode {
    /// Generate a new master password and store it in Secrets Manager
    Rotate,
    /// Let RDS manage the master password in Secrets Manager
    RdsManaged,
}

/// Reads `--password-mode` and never repeats what was typed: the flag's older name,
/// `--password`, invites a real password, which must not come back in an error on the
/// terminal, in a log or in JSON on stdout (clap's own parsers quote the value they refuse).
#[derive(Debug, Clone, Copy)]
pub struct PasswordModeParser;

impl clap::builder::TypedValueParser for PasswordModeParser {
    type Value = PasswordMode;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<PasswordMode, clap::Error> {
        value
            .to_str()
            .and_then(|text| <PasswordMode as clap::ValueEnum>::from_str(text, false).ok())
            .ok_or_else(|| {
                clap::Error::raw(
                    clap::error::ErrorKind::InvalidValue,
                    "`--password-mode` takes `rotate` or `rds-managed` (the value given is not repeated: it may be a password; the new master password is always generated, never typed)\n",
                )
                .with_cmd(cmd)
            })
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            <PasswordMode as clap::ValueEnum>::value_variants()
                .iter()
                .filter_map(<PasswordMode as clap::ValueEnum>::to_possible_value),
        ))
    }
}

/// What the operator typed for `import` and `check`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub check: CheckArgs,
    /// Instance class [default: the source's]
    #[arg(
        long = "db-instance-class",
        alias = "instance-class",
        value_name = "CLASS"
    )]
    pub instance_class: Option<String>,
    /// Restore as Multi-AZ [default: as the source]
    #[arg(long)]
    pub multi_az: bool,
    /// Turn on deletion protection
    #[arg(long)]
    pub deletion_protection: bool,
    /// How the new master password is kept (a mode, never a password: the new one is
    /// generated)
    #[arg(
        long = "password-mode",
        alias = "password",
        value_name = "MODE",
        default_value = "rotate",
        value_parser = PasswordModeParser,
        allow_hyphen_values = true
    )]
    pub password_mode: PasswordMode,
    /// Verify everything and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting for a copy or restore after this long (e.g. 90m, 4h)
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Several manifests: at most this many snapshot copies at once (lowers AWS's limits of
    /// 20 DB snapshot and 5 DB cluster snapshot copies per region, never raises them)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: Option<u16>,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Prove the data arrived: log in to the restored database with the new master password,
    /// take the digest of every user table and compare it with the manifest's (the source
    /// exported with `--verify-data`); a difference fails the import (exit code 7)
    #[arg(long)]
    pub verify_data: bool,
    #[command(flatten)]
    pub db: DbArgs,
    #[command(flatten)]
    pub reach: ReachArgs,
}

/// What `check` takes: only what it checks (the manifest, whom it trusts, and the target's
/// own resources the import would use).
#[derive(Debug, Clone, clap::Args)]
pub struct CheckArgs {
    /// The manifest `src-agent export` wrote; for a fleet, several, or the index
    /// (rds-handoff-index.json) that lists them
    #[arg(value_name = "MANIFEST", required = true, num_args = 1..)]
    pub manifests: Vec<PathBuf>,
    /// The account you expect the database from, known to you independently of the manifest:
    /// any manifest, snapshot or key of another account is refused before anything is made
    /// [default: `RDS_HANDOFF_SOURCE_ACCOUNT`, else `rds_handoff_source_account` in the profile]
    #[arg(long, value_name = "ACCOUNT", env = "RDS_HANDOFF_SOURCE_ACCOUNT")]
    pub source_account: Option<AccountId>,
    /// The manifest's (or the index's) SHA-256 as `src-agent export` printed it, received on
    /// another channel than the file; a manifest that differs is refused (repeat the flag for
    /// several manifests). Required, unless `--skip-manifest-sha256`
    #[arg(long, value_name = "HEX")]
    pub manifest_sha256: Vec<String>,
    /// Go on without `--manifest-sha256`: nothing then proves the file is the one the source
    /// admin exported (only `--source-account` and the checks against AWS stand); every run
    /// says so in a warning
    #[arg(long, conflicts_with = "manifest_sha256")]
    pub skip_manifest_sha256: bool,
    /// The DB subnet group (in this account) to restore into
    #[arg(
        long = "db-subnet-group-name",
        alias = "db-subnet-group",
        value_name = "NAME"
    )]
    pub db_subnet_group: String,
    /// Security groups (in this account, in the subnet group's VPC), space- or comma-separated
    #[arg(
        long,
        value_name = "SG",
        value_delimiter = ',',
        num_args = 1..,
        required = true,
        value_parser = security_group_id
    )]
    pub vpc_security_group_ids: Vec<String>,
    /// Name of the restored database [default: the source's name]
    #[arg(long, value_name = "ID")]
    pub db_identifier: Option<String>,
    /// Encrypt with this key of ours [default: make or reuse alias/rds-handoff/imported/<db>]
    #[arg(long = "kms-key-id", alias = "kms-key", value_name = "KEY")]
    pub kms_key: Option<String>,
    /// DB (instance) or DB cluster parameter group in this account
    #[arg(
        long = "db-parameter-group-name",
        alias = "parameter-group",
        value_name = "NAME"
    )]
    pub parameter_group: Option<String>,
    /// Option group in this account (instances)
    #[arg(
        long = "option-group-name",
        alias = "option-group",
        value_name = "NAME"
    )]
    pub option_group: Option<String>,
    /// Name of the secret for the new master password [default: rds-handoff/<db>/master]
    #[arg(long, value_name = "NAME")]
    pub secret_name: Option<String>,
}

/// A value of `--vpc-security-group-ids`, which takes every value after it: one that is no
/// security group id is most often the manifest typed after the list, so the error says so.
fn security_group_id(value: &str) -> std::result::Result<String, String> {
    if value.starts_with("sg-") {
        return Ok(value.to_owned());
    }
    Err(format!(
        "`{value}` is not a security group id (sg-…); the list takes every value after the flag, so a manifest after it is read as one: put the manifest before `--vpc-security-group-ids`"
    ))
}

/// The profile setting that names the source account a target trusts.
pub const SOURCE_ACCOUNT_SETTING: &str = "rds_handoff_source_account";

/// What a run with `--skip-manifest-sha256` says of each file it did not check.
pub const UNCHECKED: &str = "NOT CHECKED (`--skip-manifest-sha256`): nothing proves this is the file the source admin exported; only `--source-account` and the checks against AWS stand";

impl CheckArgs {
    /// Fills the trusted source account from the profile (`rds_handoff_source_account`) when
    /// neither the flag nor the environment gave it.
    pub async fn trusting(mut self, profile: Option<&str>) -> Result<Self> {
        if self.source_account.is_none() {
            if let Some(value) = crate::aws::profile_setting(profile, SOURCE_ACCOUNT_SETTING).await
            {
                self.source_account = Some(value.trim().parse()?);
            }
        }
        Ok(self)
    }

    /// Refuses a run that names no `--manifest-sha256`, unless the operator waived the check
    /// with `--skip-manifest-sha256`: the fingerprint is never skipped in silence.
    pub fn require_fingerprint(&self) -> Result<()> {
        if self.manifest_sha256.is_empty() && !self.skip_manifest_sha256 {
            return Err(Error::Usage {
                message: "`--manifest-sha256` is required: the SHA-256 `src-agent export` printed for the manifest (or the index), received on another channel than the file".into(),
                hint: Some("ask the source admin for it and pass `--manifest-sha256 HEX`; to go on without it, pass `--skip-manifest-sha256` (then nothing proves the file is the one the source admin exported)".into()),
            });
        }
        Ok(())
    }

    /// With `--skip-manifest-sha256`: a warning for each file whose SHA-256 goes unchecked,
    /// before anything else is done.
    pub fn warn_unchecked(&self, progress: &dyn Progress) {
        if !self.skip_manifest_sha256 {
            return;
        }
        for path in &self.manifests {
            progress.event(&Event::warning(
                "manifest SHA-256",
                &path.display().to_string(),
                UNCHECKED,
            ));
        }
    }
}

/// The validated plan of one import.
#[derive(Debug, Clone)]
pub struct ImportPlan {
    pub manifest: Manifest,
    pub kind: DbKind,
    pub db: String,
    pub writer: String,
    pub copy: String,
    pub key: KeyChoice,
    pub secret_name: String,
    pub report_path: PathBuf,
    pub args: ImportArgs,
    pub wait: WaitPolicy,
}

/// The connection flags for a run on `plan`: the manifest's region when none is given (a
/// shared encrypted snapshot is only usable in its own region), said as the run's first event.
pub fn aws_args_for(
    plan: &ImportPlan,
    given: &crate::aws::AwsArgs,
    progress: &dyn Progress,
) -> crate::aws::AwsArgs {
    let mut args = given.clone();
    if args.region.is_none() {
        let region = plan.manifest.snapshot_region().clone();
        progress.event(&Event::step(
            "region",
            region.as_str(),
            "from the manifest; pass --region to override",
        ));
        args.region = Some(region);
    }
    args
}

/// Runs an import (or, with `dry_run`, only its verification and plan).
pub async fn import(aws: &Aws, plan: &ImportPlan, progress: &dyn Progress) -> Result<ImportReport> {
    // The target's own state answers a finished import, even once the source has revoked
    // the share (which the verification below would refuse).
    if let Some(report) = finished(aws, plan).await? {
        // A dry run neither logs in to the database nor rewrites the report.
        if plan.args.dry_run {
            return Ok(report);
        }
        return data::check_again(aws, plan, report, progress).await;
    }
    let (caller, restored) = verify(aws, plan, progress).await?;
    if let Some(warning) = rds::left_out_warning(&restore::db_tags(plan).1).filter(|_| !restored) {
        progress.event(&Event::warning("tags", &plan.db, &warning));
    }
    if plan.args.dry_run {
        print_plan(aws, plan, restored, progress).await?;
        return Ok(report_of(plan, None, "", None));
    }
    let recorder = Recorder::new(
        state::path_beside(&plan.report_path),
        "import",
        &plan.db,
        progress,
    );
    let progress: &dyn Progress = &recorder;
    let spec =
        KeyPolicySpec::target_own(&aws.partition, aws.region.clone(), caller.account.clone());
    let key = ensure_key(aws, &plan.key, &spec, &caller, &tags(plan, "key"), progress).await?;
    let steps = steps(plan, &key.arn, restored)?;
    let done = workflow::run(
        aws,
        &plan.args.engine,
        Workflow::Import,
        &plan.db,
        &steps,
        plan.wait,
        progress,
    )
    .await?;
    let db = match done.database(&plan.db) {
        Some(db) => db.clone(),
        None => rds::wait_db(aws, plan.kind, &plan.db, "restore", plan.wait, progress).await?,
    };
    restore::check_own_key(plan, &db, &key.arn)?;
    delete_copy(aws, plan, progress).await?;
    let secret_arn = match plan.args.password_mode {
        PasswordMode::Rotate => Some(rotate_password(aws, plan, &db, &key, progress).await?),
        PasswordMode::RdsManaged => {
            rds_managed_password(aws, plan, &key, progress).await?;
            None
        }
    };
    let db = rds::wait_db(aws, plan.kind, &plan.db, "password", plan.wait, progress).await?;
    let report = report_of(plan, Some(&db), &key.arn, secret_arn);
    write_report(plan, &report, progress)?;
    if plan.args.verify_data {
        return data::check_and_record(aws, plan, &db, report, progress).await;
    }
    Ok(report)
}

/// Writes the import report where the plan says, atomically.
fn write_report(plan: &ImportPlan, report: &ImportReport, progress: &dyn Progress) -> Result<()> {
    write_atomic(
        &plan.report_path,
        serde_json::to_string_pretty(report)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    progress.event(&Event::step(
        "report",
        &plan.report_path.display().to_string(),
        "written",
    ));
    Ok(())
}

fn tags(plan: &ImportPlan, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (crate::flows::export::TAG_DB.to_owned(), plan.db.clone()),
        (
            TAG_SOURCE_SNAPSHOT.to_owned(),
            plan.manifest.snapshot.arn.to_string(),
        ),
        (TAG_ROLE.to_owned(), role.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: ImportArgs,
    }

    fn parse(extra: &[&str]) -> std::result::Result<ImportArgs, clap::Error> {
        let base = [
            "import",
            "m.json",
            "--db-subnet-group-name",
            "g",
            "--vpc-security-group-ids",
            "sg-12345678",
        ];
        Cli::try_parse_from(base.iter().chain(extra).copied()).map(|cli| cli.args)
    }

    #[test]
    fn a_password_mode_is_read_and_a_wrong_one_is_never_repeated() {
        assert_eq!(parse(&[]).unwrap().password_mode, PasswordMode::Rotate);
        for (given, mode) in [
            (
                &["--password-mode", "rds-managed"][..],
                PasswordMode::RdsManaged,
            ),
            (&["--password", "rotate"][..], PasswordMode::Rotate),
            (&["--password=rds-managed"][..], PasswordMode::RdsManaged),
        ] {
            assert_eq!(parse(given).unwrap().password_mode, mode, "{given:?}");
        }
        for wrong in [
            &["--password-mode", "hunter2"][..],
            &["--password", "hunter2"][..],
            &["--password=hunter2"][..],
            &["--password", "-hunter2"][..],
        ] {
            let text = parse(wrong).unwrap_err().to_string();
            assert!(!text.contains("hunter2"), "{wrong:?}: {text}");
            assert!(text.contains("`rotate` or `rds-managed`"), "{text}");
        }
    }

    #[test]
    fn the_fingerprint_is_required_or_waived_out_loud() {
        let args = parse(&[]).unwrap();
        let err = args.check.require_fingerprint().unwrap_err();
        assert!(err.to_string().contains("`--manifest-sha256` is required"));
        assert!(err.hint().unwrap().contains("--skip-manifest-sha256"));
        let waived = parse(&["--skip-manifest-sha256"]).unwrap();
        assert!(waived.check.require_fingerprint().is_ok());
        let given = parse(&["--manifest-sha256", &"0".repeat(64)]).unwrap();
        assert!(given.check.require_fingerprint().is_ok());
        assert!(parse(&["--manifest-sha256", "x", "--skip-manifest-sha256"]).is_err());
    }
}
