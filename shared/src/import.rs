//! `tgt-agent import` and `tgt-agent check`: verify the manifest against AWS, re-key the
//! shared snapshot under the target's own key, restore, set a new master password.
//!
//! AWS decides, the manifest proposes: every claim (our account, region, snapshot owner,
//! share, encryption key) is checked against AWS before anything is created. Each step looks
//! for its own result first, so a killed import re-run with the same arguments continues and
//! never makes a second copy, database or secret.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::aws::{Aws, Caller};
use crate::error::{sdk, Error, Result};
use crate::export::{now, TAG_ROLE};
use crate::ident::{check_rds_id, AccountId};
use crate::kms::{ensure_key, Key, KeyChoice};
use crate::manifest::{write_atomic, DbKind, Manifest};
use crate::names::{bounded, writer_instance};
use crate::password::generate;
use crate::plan::{self, Action};
use crate::policy::KeyPolicySpec;
use crate::preflight;
use crate::progress::{Event, Progress};
use crate::rds::{self, DbInfo};
use crate::state::{self, Recorder};
use crate::wait::{parse_duration, WaitPolicy};
use crate::workflow::{self, EngineArgs, Op, Step, Workflow};

pub const TAG_SOURCE_SNAPSHOT: &str = "rds-handoff:source-snapshot";
const TAG_PASSWORD_SET: &str = "rds-handoff:password-set";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PasswordMode {
    /// Generate a new master password and store it in Secrets Manager
    Rotate,
    /// Let RDS manage the master password in Secrets Manager
    RdsManaged,
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
    /// How the new master password is kept
    #[arg(long, value_enum, default_value = "rotate")]
    pub password: PasswordMode,
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
    /// several manifests)
    #[arg(long, value_name = "HEX")]
    pub manifest_sha256: Vec<String>,
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
        required = true
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

/// The profile setting that names the source account a target trusts.
pub const SOURCE_ACCOUNT_SETTING: &str = "rds_handoff_source_account";

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

    /// The import this check is for, with every import-only setting at its default.
    pub fn as_import(&self) -> ImportArgs {
        ImportArgs {
            check: self.clone(),
            instance_class: None,
            multi_az: false,
            deletion_protection: false,
            password: PasswordMode::Rotate,
            dry_run: true,
            wait_timeout: Duration::from_secs(4 * 3600),
            max_parallel: None,
            engine: EngineArgs::default(),
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

impl ImportArgs {
    /// Reads the manifest and checks what can be checked without AWS, the source it comes
    /// from first.
    pub fn resolve(&self) -> Result<ImportPlan> {
        let trusted = self.check.source_account.as_ref().ok_or_else(|| Error::Usage {
            message: "no source account to trust: a manifest cannot vouch for its own source".into(),
            hint: Some(format!("pass `--source-account ACCOUNT` (the account you expect the database from, confirmed with its admin), set `RDS_HANDOFF_SOURCE_ACCOUNT`, or put `{SOURCE_ACCOUNT_SETTING} = ACCOUNT` in your AWS profile")),
        })?;
        let ([path], expected) = (self.check.manifests.as_slice(), &self.check.manifest_sha256)
        else {
            return Err(Error::usage(
                "several manifests are imported as a fleet, one at a time by `resolve`",
            ));
        };
        let expected = match expected.as_slice() {
            [] => None,
            [one] => Some(check_sha256(one)?),
            _ => return Err(Error::usage("one manifest takes one `--manifest-sha256`")),
        };
        let (manifest, fingerprint) = Manifest::read_fingerprinted(path)?;
        if let Some(expected) = expected.filter(|e| *e != fingerprint) {
            return Err(Error::refused(
                format!(
                    "the SHA-256 of `{}` is `{fingerprint}`, not `{expected}` (`--manifest-sha256` or the index): it is not the manifest the source admin exported",
                    path.display()
                ),
                "ask the source admin for the manifest and its SHA-256 again, on two different channels; do not import this one",
            ));
        }
        pin_source(&manifest, trusted)?;
        let kind = manifest.database.kind;
        let db = check_rds_id(
            kind.id_kind(),
            self.check
                .db_identifier
                .as_deref()
                .unwrap_or(&manifest.database.identifier),
        )?;
        if let Some(bad) = self
            .check
            .vpc_security_group_ids
            .iter()
            .find(|sg| !is_security_group_id(sg))
        {
            return Err(Error::usage(format!(
                "`{bad}` is not a security group id like `sg-0123456789abcdef0`"
            )));
        }
        if self.check.db_subnet_group.is_empty() || self.check.db_subnet_group.len() > 255 {
            return Err(Error::usage(
                "`--db-subnet-group` must be 1 to 255 characters",
            ));
        }
        Ok(ImportPlan {
            kind,
            writer: writer_instance(&db),
            copy: bounded(kind.snapshot_kind(), &db, "imported"),
            key: match &self.check.kms_key {
                Some(key) => KeyChoice::Given(key.clone()),
                None => KeyChoice::Alias(format!("alias/rds-handoff/imported/{db}")),
            },
            secret_name: self
                .check
                .secret_name
                .clone()
                .unwrap_or_else(|| format!("rds-handoff/{db}/master")),
            report_path: PathBuf::from(format!("{db}.import.json")),
            wait: WaitPolicy::new(self.wait_timeout),
            db,
            manifest,
            args: self.clone(),
        })
    }
}

/// A SHA-256 in hex, as `sha256sum` prints it.
pub fn check_sha256(value: &str) -> Result<String> {
    let hex = value.trim().to_ascii_lowercase();
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(hex);
    }
    Err(Error::usage(format!(
        "`--manifest-sha256 {value}` is not a SHA-256: 64 hexadecimal characters"
    )))
}

/// Refuses a manifest whose source, snapshot or key is in another account than the one the
/// operator expects: the manifest cannot vouch for itself.
fn pin_source(manifest: &Manifest, expected: &AccountId) -> Result<()> {
    let key = manifest.snapshot.kms_key_arn.as_ref();
    let claims = [
        (
            "the manifest's source account",
            Some(&manifest.source.account),
        ),
        (
            "the shared snapshot's account",
            manifest.snapshot.arn.account.as_ref(),
        ),
        (
            "the snapshot key's account",
            key.and_then(|k| k.account.as_ref()),
        ),
    ];
    for (what, account) in claims {
        let Some(account) = account else {
            if what == "the snapshot key's account" && key.is_none() {
                continue;
            }
            return Err(Error::refused(
                format!("{what} is missing from the manifest"),
                "use the manifest exactly as `src-agent export` wrote it",
            ));
        };
        if account != expected {
            return Err(Error::refused(
                format!(
                    "{what} is `{account}`, but you expect the database from `{expected}` (`--source-account`): nothing was imported"
                ),
                format!("if `{account}` really is the source, confirm it with its admin on another channel than the manifest and pass `--source-account {account}`; otherwise discard this manifest"),
            ));
        }
    }
    Ok(())
}

fn is_security_group_id(value: &str) -> bool {
    value.strip_prefix("sg-").is_some_and(|hex| {
        (8..=17).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit())
    })
}

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
        let region = plan.manifest.source.region.clone();
        progress.event(&Event::step(
            "region",
            region.as_str(),
            "from the manifest; pass --region to override",
        ));
        args.region = Some(region);
    }
    args
}

/// Verifies the manifest against AWS: the whole of `tgt-agent check`. Returns the caller
/// and whether the database is already restored (by an earlier try of this import).
pub async fn verify(
    aws: &Aws,
    plan: &ImportPlan,
    progress: &dyn Progress,
) -> Result<(Caller, bool)> {
    let m = &plan.manifest;
    let caller = aws.identify(progress).await?;
    let refuse = |message: String, hint: &str| Err(Error::refused(message, hint));
    if caller.account != m.target.account {
        return refuse(
            format!("this manifest hands the database to account `{}`, but you are in account `{}`", m.target.account, caller.account),
            "run tgt-agent with credentials of the target account (`--profile`), or ask the source admin to export to your account",
        );
    }
    if aws.region != m.source.region {
        return refuse(
            format!(
                "the snapshot is in region `{}`, and this run uses `{}`",
                m.source.region, aws.region
            ),
            &format!(
                "pass `--region {}`: shared encrypted snapshots are copied within one region",
                m.source.region
            ),
        );
    }
    let arn = &m.snapshot.arn;
    let prefix = match plan.kind {
        DbKind::Instance => "snapshot:",
        DbKind::Cluster => "cluster-snapshot:",
    };
    if arn.account.as_ref() != Some(&m.source.account)
        || arn.region != m.source.region.as_str()
        || arn.service != "rds"
        || !arn.resource.starts_with(prefix)
    {
        return refuse(
            format!(
                "the snapshot ARN `{arn}` is not a {} snapshot of the source account `{}` in `{}`",
                plan.kind.name(),
                m.source.account,
                m.source.region
            ),
            "the manifest was edited: ask the source admin for the manifest export wrote",
        );
    }
    let Some(snap) = rds::describe_snapshot(aws, plan.kind, arn.as_str()).await? else {
        return refuse(
            format!(
                "snapshot `{arn}` is not shared with account `{}` (or no longer exists)",
                caller.account
            ),
            "ask the source admin to re-run `src-agent export` (it shares the snapshot again)",
        );
    };
    if snap.encrypted != m.snapshot.encrypted {
        return refuse(
            format!("the manifest says the snapshot is {}encrypted, AWS says it is {}encrypted", if m.snapshot.encrypted { "" } else { "not " }, if snap.encrypted { "" } else { "not " }),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    if snap.encrypted
        && snap.kms_key_id.as_deref() != m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str())
    {
        return refuse(
            format!("the snapshot is encrypted with `{}`, not with the manifest's key `{}`", snap.kms_key_id.as_deref().unwrap_or("?"), m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()).unwrap_or("none")),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    if let Some(key) = snap.kms_key_id.as_deref().filter(|_| snap.encrypted) {
        let key_account = key
            .parse::<crate::ident::Arn>()
            .ok()
            .and_then(|a| a.account);
        if key_account.as_ref() != Some(&m.source.account) {
            return refuse(
                format!("AWS says the snapshot is encrypted with `{key}`, a key outside the source account `{}`", m.source.account),
                "ask the source admin for a fresh export",
            );
        }
    }
    if let Some(differs) = described_differences(&m.database, &snap.described) {
        return refuse(
            format!("the manifest does not describe the shared snapshot as AWS does: {differs}"),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    if snap.status != "available" {
        return refuse(
            format!("the shared snapshot is `{}`, not `available`", snap.status),
            "wait for the source's copy to finish, then re-run",
        );
    }
    check_placement(aws, plan).await?;
    let existing = rds::describe_db(aws, plan.kind, &plan.db).await?;
    if let Some(existing) = &existing {
        if existing.database.tags.get(TAG_SOURCE_SNAPSHOT) != Some(&arn.to_string()) {
            return refuse(
                format!(
                    "a {} named `{}` already exists here and was not restored from this manifest",
                    plan.kind.name(),
                    plan.db
                ),
                "pass `--db-identifier` with a new name",
            );
        }
    }
    if plan.args.password == PasswordMode::Rotate {
        if let Some(secret) = describe_secret(aws, &plan.secret_name).await? {
            check_secret_owner(&secret, plan)?;
        }
    }
    progress.event(&Event::step("verify", arn.as_str(), "manifest matches AWS"));
    Ok((caller, existing.is_some()))
}

/// Where the manifest's fields that reach AWS calls differ from the snapshot AWS describes.
fn described_differences(
    database: &crate::manifest::Database,
    aws: &rds::Described,
) -> Option<String> {
    let mut differs = Vec::new();
    let mut compare = |field: &str, manifest: String, described: Option<String>| {
        if let Some(described) = described.filter(|d| *d != manifest) {
            differs.push(format!("{field} `{manifest}` (AWS: `{described}`)"));
        }
    };
    compare("engine", database.engine.clone(), aws.engine.clone());
    compare(
        "engine version",
        database.engine_version.clone(),
        aws.engine_version.clone(),
    );
    compare(
        "master username",
        database.master_username.clone(),
        aws.master_username.clone(),
    );
    let port = database.port.map(|p| p.to_string()).unwrap_or_default();
    compare("port", port, aws.port.map(|p| p.to_string()));
    compare(
        "IAM authentication",
        database.iam_auth.to_string(),
        aws.iam_auth.map(|b| b.to_string()),
    );
    (!differs.is_empty()).then(|| differs.join(", "))
}

/// The target's own resources the import will use exist here and fit together.
async fn check_placement(aws: &Aws, plan: &ImportPlan) -> Result<()> {
    let args = &plan.args.check;
    let vpc = preflight::subnet_group_vpc(aws, &args.db_subnet_group).await?;
    preflight::security_groups_in(aws, &args.vpc_security_group_ids, &vpc).await?;
    if let Some(group) = &args.parameter_group {
        preflight::parameter_group_exists(aws, plan.kind, group).await?;
    }
    if let Some(group) = &args.option_group {
        preflight::option_group_exists(aws, group).await?;
    }
    if let Some(key) = &args.kms_key {
        preflight::key_exists(aws, key).await?;
    }
    Ok(())
}

/// Runs an import (or, with `dry_run`, only its verification and plan).
pub async fn import(aws: &Aws, plan: &ImportPlan, progress: &dyn Progress) -> Result<ImportReport> {
    // The target's own state answers a finished import, even once the source has revoked
    // the share (which the verification below would refuse).
    if let Some(report) = finished(aws, plan).await? {
        return Ok(report);
    }
    let (caller, restored) = verify(aws, plan, progress).await?;
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
    delete_copy(aws, plan, progress).await?;
    let secret_arn = match plan.args.password {
        PasswordMode::Rotate => Some(rotate_password(aws, plan, &db, &key, progress).await?),
        PasswordMode::RdsManaged => {
            rds_managed_password(aws, plan, &key, progress).await?;
            None
        }
    };
    let db = rds::wait_db(aws, plan.kind, &plan.db, "password", plan.wait, progress).await?;
    let report = report_of(plan, Some(&db), &key.arn, secret_arn);
    write_atomic(
        &plan.report_path,
        serde_json::to_string_pretty(&report)
            .unwrap_or_default()
            .as_bytes(),
    )?;
    progress.event(&Event::step(
        "report",
        &plan.report_path.display().to_string(),
        "written",
    ));
    Ok(report)
}

fn report_of(
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
        secret_name: (plan.args.password == PasswordMode::Rotate).then(|| plan.secret_name.clone()),
        secret_arn,
        source_snapshot_arn: plan.manifest.snapshot.arn.to_string(),
        intermediate_copy: plan.copy.clone(),
        already_done: false,
    }
}

/// A finished import: the report exists for this database and the database is available.
async fn finished(aws: &Aws, plan: &ImportPlan) -> Result<Option<ImportReport>> {
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

/// Where a finished import's database (as AWS describes it) differs from this run's flags.
async fn placement_differences(
    aws: &Aws,
    plan: &ImportPlan,
    db: &DbInfo,
    report: &ImportReport,
) -> Result<Vec<String>> {
    let args = &plan.args;
    let mut differs = Vec::new();
    let mut compare = |what: &str, done: Option<&str>, asked: Option<&str>| {
        if let Some(asked) = asked.filter(|a| Some(*a) != done) {
            differs.push(format!(
                "{what} `{}` (this run: `{asked}`)",
                done.unwrap_or("none")
            ));
        }
    };
    compare(
        "subnet group",
        db.subnet_group.as_deref(),
        Some(&args.check.db_subnet_group),
    );
    let (mut done, mut asked) = (
        db.security_groups.clone(),
        args.check.vpc_security_group_ids.clone(),
    );
    done.sort();
    asked.sort();
    compare(
        "security groups",
        Some(&done.join(",")),
        Some(&asked.join(",")),
    );
    compare(
        "instance class",
        db.database.instance_class.as_deref(),
        args.instance_class.as_deref(),
    );
    compare(
        "parameter group",
        db.database.parameter_group.as_deref(),
        args.check.parameter_group.as_deref(),
    );
    compare(
        "option group",
        db.database.option_group.as_deref(),
        args.check.option_group.as_deref(),
    );
    compare(
        "secret",
        report.secret_name.as_deref(),
        args.check.secret_name.as_deref(),
    );
    if args.multi_az && !db.database.multi_az {
        differs.push("Multi-AZ `false` (this run: `true`)".into());
    }
    if args.deletion_protection && !db.deletion_protection {
        differs.push("deletion protection `false` (this run: `true`)".into());
    }
    if let Some(key) = &args.check.kms_key {
        let arn = crate::kms::describe(aws, key).await?.map(|k| k.arn);
        if arn.as_deref() != Some(report.kms_key_arn.as_str()) {
            differs.push(format!(
                "KMS key `{}` (this run: `{key}`)",
                report.kms_key_arn
            ));
        }
    }
    Ok(differs)
}

fn tags(plan: &ImportPlan, role: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (crate::export::TAG_DB.to_owned(), plan.db.clone()),
        (
            TAG_SOURCE_SNAPSHOT.to_owned(),
            plan.manifest.snapshot.arn.to_string(),
        ),
        (TAG_ROLE.to_owned(), role.to_owned()),
    ])
}

/// The manifest's tags plus the toolkit's, for the restored database.
fn db_tags(plan: &ImportPlan) -> BTreeMap<String, String> {
    let mut all = rds::user_tags(&plan.manifest.database.tags);
    all.extend(tags(plan, "restored-database"));
    all
}

/// The plan, each step read from AWS: what exists is reused, the rest is made.
async fn print_plan(
    aws: &Aws,
    plan: &ImportPlan,
    restored: bool,
    progress: &dyn Progress,
) -> Result<()> {
    plan::step(
        progress,
        plan::key(aws, &plan.key).await?,
        "key of our own",
        &plan.key.describe(),
    );
    let steps = steps(plan, &plan.key.describe(), restored)?;
    plan::steps(aws, Workflow::Import, plan.kind, &steps, progress).await?;
    if plan.kind == DbKind::Instance || plan.manifest.snapshot.encrypted {
        plan::step(
            progress,
            Action::Delete,
            "delete intermediate copy",
            &plan.copy,
        );
    }
    match plan.args.password {
        PasswordMode::Rotate => {
            let secret =
                Action::reuse_or_create(describe_secret(aws, &plan.secret_name).await?.is_some());
            plan::step(
                progress,
                secret,
                "secret for the new master password",
                &plan.secret_name,
            );
            plan::step(
                progress,
                Action::Update,
                "set a new master password",
                &plan.db,
            );
        }
        PasswordMode::RdsManaged => plan::step(
            progress,
            Action::Update,
            "master password managed by RDS",
            &plan.db,
        ),
    }
    plan::step(
        progress,
        Action::Create,
        "report",
        &plan.report_path.display().to_string(),
    );
    Ok(())
}

/// The import's steps: copy the shared snapshot under our key (an unencrypted cluster
/// share is restored from directly, the restore encrypting it), restore, add a cluster's
/// writer. Once the database exists, only waiting for it (and its writer) is left.
pub fn steps(plan: &ImportPlan, key_arn: &str, restored: bool) -> Result<Vec<Step>> {
    let step = |name: &str, op: Op| Step::new(Workflow::Import, name, plan.kind, op);
    let arn = plan.manifest.snapshot.arn.as_str();
    let copy_needed = plan.kind == DbKind::Instance || plan.manifest.snapshot.encrypted;
    let mut steps = Vec::new();
    if copy_needed && !restored {
        steps.push(step(
            "Copy",
            Op::Copy {
                source: arn.to_owned(),
                id: plan.copy.clone(),
                key: Some(key_arn.to_owned()),
                tags: tags(plan, "intermediate"),
            },
        ));
    }
    let source = if copy_needed { plan.copy.as_str() } else { arn };
    steps.push(step(
        "Restore",
        Op::Restore(Box::new(restore_spec(plan, source, key_arn))),
    ));
    if plan.kind == DbKind::Cluster {
        steps.push(step("Writer", Op::Writer(writer_spec(plan)?)));
    }
    Ok(steps)
}

/// Where the operator asked for the database, with the manifest's settings.
fn restore_spec(plan: &ImportPlan, source: &str, key_arn: &str) -> rds::RestoreSpec {
    let d = &plan.manifest.database;
    rds::RestoreSpec {
        id: plan.db.clone(),
        snapshot: source.to_owned(),
        kms_key: Some(key_arn.to_owned()),
        database: d.clone(),
        subnet_group: Some(plan.args.check.db_subnet_group.clone()),
        security_groups: plan.args.check.vpc_security_group_ids.clone(),
        availability_zones: Vec::new(),
        publicly_accessible: false,
        instance_class: plan
            .args
            .instance_class
            .clone()
            .or(d.instance_class.clone()),
        parameter_group: plan.args.check.parameter_group.clone(),
        option_group: plan.args.check.option_group.clone(),
        multi_az: plan.args.multi_az || d.multi_az,
        deletion_protection: plan.args.deletion_protection,
        tags: db_tags(plan),
    }
}

fn writer_spec(plan: &ImportPlan) -> Result<rds::WriterSpec> {
    let class = plan.args.instance_class.clone().or(plan.manifest.database.instance_class.clone()).ok_or_else(|| {
        Error::usage("the manifest names no instance class for the cluster's writer: pass `--instance-class`")
    })?;
    Ok(rds::WriterSpec {
        id: plan.writer.clone(),
        cluster: plan.db.clone(),
        engine: plan.manifest.database.engine.clone(),
        instance_class: class,
        availability_zone: None,
        publicly_accessible: false,
        parameter_group: None,
        tags: tags(plan, "writer-instance"),
    })
}

/// Deletes our copy of the shared snapshot once the database no longer needs it.
pub async fn delete_copy(aws: &Aws, plan: &ImportPlan, progress: &dyn Progress) -> Result<()> {
    if rds::delete_own_snapshot(aws, plan.kind, &plan.copy, &[(TAG_ROLE, "intermediate")]).await? {
        progress.event(&Event::step(
            "cleanup",
            &plan.copy,
            "intermediate copy deleted",
        ));
    }
    Ok(())
}

/// The engine name AWS's rotation functions expect (`reference_secret_json_structure`):
/// one of `mysql`, `mariadb`, `postgres`, `oracle`, `sqlserver`, `db2`.
fn rotation_engine(engine: &str) -> &str {
    match engine {
        "aurora" | "aurora-mysql" | "mysql" => "mysql",
        "aurora-postgresql" | "postgres" => "postgres",
        e if e.starts_with("oracle") || e.starts_with("custom-oracle") => "oracle",
        e if e.starts_with("sqlserver") || e.starts_with("custom-sqlserver") => "sqlserver",
        e if e.starts_with("db2") => "db2",
        other => other,
    }
}

/// The secret's JSON, as AWS's rotation functions read it, from the restored database as AWS
/// describes it; `dbname` is left out when the database has none (never `null`).
fn secret_json(kind: DbKind, db: &DbInfo, password: &str) -> String {
    let d = &db.database;
    let id_field = match kind {
        DbKind::Instance => "dbInstanceIdentifier",
        DbKind::Cluster => "dbClusterIdentifier",
    };
    let mut value = serde_json::json!({
        "engine": rotation_engine(&d.engine),
        "host": db.endpoint,
        "username": d.master_username,
        "password": password,
        id_field: d.identifier,
    });
    if let Some(port) = d.port {
        value["port"] = port.into();
    }
    if let Some(name) = &d.database_name {
        value["dbname"] = name.as_str().into();
    }
    value.to_string()
}

/// Stores a new password in Secrets Manager, then sets it on the database. The secret is
/// written first so the password is never set without being kept; the tag that marks it
/// applied is written last and names the database's resource id, so a re-run after a kill,
/// or an import into a database deleted and restored again under the same name, sets a fresh
/// one.
async fn rotate_password(
    aws: &Aws,
    plan: &ImportPlan,
    db: &DbInfo,
    key: &Key,
    progress: &dyn Progress,
) -> Result<String> {
    let name = &plan.secret_name;
    let existing = describe_secret(aws, name).await?;
    if let Some(secret) = &existing {
        check_own_secret(secret, plan, key)?;
        let marker = secret.tags.get(TAG_PASSWORD_SET);
        if marker.is_some() && marker == db.resource_id.as_ref() {
            progress.event(&Event::step("master password", name, "already set"));
            return Ok(secret.arn.clone());
        }
    }
    let password = generate(&db.database.engine);
    let value = secret_json(plan.kind, db, password.expose());
    let arn = match existing {
        Some(secret) => {
            aws.secrets
                .put_secret_value()
                .secret_id(&secret.arn)
                .secret_string(value)
                .send()
                .await
                .map_err(sdk("secretsmanager:PutSecretValue"))?;
            secret.arn
        }
        None => {
            let arn = create_secret(aws, plan, key, value).await?;
            progress.created("secret", &arn);
            arn
        }
    };
    set_master_password(aws, plan, password.expose()).await?;
    let applied = aws_sdk_secretsmanager::types::Tag::builder()
        .key(TAG_PASSWORD_SET)
        .value(db.resource_id.clone().unwrap_or_default())
        .build();
    aws.secrets
        .tag_resource()
        .secret_id(&arn)
        .tags(applied)
        .send()
        .await
        .map_err(sdk("secretsmanager:TagResource"))?;
    progress.event(&Event::step(
        "master password",
        name,
        "new password set and stored",
    ));
    Ok(arn)
}

async fn create_secret(aws: &Aws, plan: &ImportPlan, key: &Key, value: String) -> Result<String> {
    let secret_tags = tags(plan, "master-secret")
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect();
    let created = aws
        .secrets
        .create_secret()
        .name(&plan.secret_name)
        .description(format!(
            "master user of {} {}, set by rds-handoff",
            plan.kind.name(),
            plan.db
        ))
        .kms_key_id(&key.arn)
        .secret_string(value)
        .set_tags(Some(secret_tags))
        .send()
        .await
        .map_err(sdk("secretsmanager:CreateSecret"));
    match created {
        Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
        // A retried create whose first response was lost: the secret is ours (checked), the
        // value is rewritten by the caller's next step on a re-run.
        Err(err) if err.aws_code() == Some("ResourceExistsException") => {
            let secret = describe_secret(aws, &plan.secret_name).await?.ok_or(err)?;
            check_own_secret(&secret, plan, key)?;
            Ok(secret.arn)
        }
        Err(err) => Err(err),
    }
}

/// A secret as the import sees it.
struct Secret {
    arn: String,
    tags: BTreeMap<String, String>,
    kms_key_id: Option<String>,
}

async fn describe_secret(aws: &Aws, name: &str) -> Result<Option<Secret>> {
    match aws
        .secrets
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .map_err(sdk("secretsmanager:DescribeSecret"))
    {
        Ok(out) => Ok(Some(Secret {
            arn: out.arn().unwrap_or_default().to_owned(),
            tags: out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            kms_key_id: out.kms_key_id().map(str::to_owned),
        })),
        Err(err) if err.aws_code() == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(err),
    }
}

/// An existing secret of the chosen name is written to only if the toolkit made it for this
/// database, under the key the operator chose.
fn check_own_secret(secret: &Secret, plan: &ImportPlan, key: &Key) -> Result<()> {
    check_secret_owner(secret, plan)?;
    let under_key = secret
        .kms_key_id
        .as_deref()
        .is_some_and(|k| k == key.arn || k == key.id || k.ends_with(&format!("/{}", key.id)));
    if !under_key {
        return Err(Error::refused(
            format!(
                "secret `{}` is encrypted with `{}`, not with the key this import uses (`{}`)",
                plan.secret_name,
                secret
                    .kms_key_id
                    .as_deref()
                    .unwrap_or("the AWS managed key"),
                key.arn
            ),
            "pass the same `--kms-key` as the first run, or `--secret-name` with a new name",
        ));
    }
    Ok(())
}

/// Whether the toolkit made the secret for this database (its tags say so).
fn check_secret_owner(secret: &Secret, plan: &ImportPlan) -> Result<()> {
    let ours = secret.tags.get(crate::export::TAG_DB) == Some(&plan.db)
        && secret.tags.get(TAG_ROLE).map(String::as_str) == Some("master-secret");
    if !ours {
        return Err(Error::refused(
            format!(
                "secret `{}` already exists and was not made by rds-handoff for `{}`: the new master password is not written into it",
                plan.secret_name, plan.db
            ),
            "pass `--secret-name` with a name of your own for the new password",
        ));
    }
    Ok(())
}

async fn set_master_password(aws: &Aws, plan: &ImportPlan, password: &str) -> Result<()> {
    match plan.kind {
        DbKind::Instance => aws
            .rds
            .modify_db_instance()
            .db_instance_identifier(&plan.db)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBInstance")),
        DbKind::Cluster => aws
            .rds
            .modify_db_cluster()
            .db_cluster_identifier(&plan.db)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBCluster")),
    }
}

async fn rds_managed_password(
    aws: &Aws,
    plan: &ImportPlan,
    key: &Key,
    progress: &dyn Progress,
) -> Result<()> {
    match plan.kind {
        DbKind::Instance => aws
            .rds
            .modify_db_instance()
            .db_instance_identifier(&plan.db)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&key.arn)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBInstance"))?,
        DbKind::Cluster => aws
            .rds
            .modify_db_cluster()
            .db_cluster_identifier(&plan.db)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&key.arn)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBCluster"))?,
    }
    progress.event(&Event::step("master password", &plan.db, "managed by RDS"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_engines_for_every_engine_restored() {
        for (engine, expected) in [
            ("mysql", "mysql"),
            ("aurora-mysql", "mysql"),
            ("mariadb", "mariadb"),
            ("postgres", "postgres"),
            ("aurora-postgresql", "postgres"),
            ("oracle-ee", "oracle"),
            ("oracle-se2-cdb", "oracle"),
            ("sqlserver-se", "sqlserver"),
            ("sqlserver-ex", "sqlserver"),
            ("db2-se", "db2"),
            ("db2-ae", "db2"),
        ] {
            assert_eq!(rotation_engine(engine), expected, "{engine}");
        }
    }

    #[test]
    fn secret_json_omits_a_missing_dbname_and_reads_the_restored_database() {
        let db = DbInfo {
            arn: String::new(),
            status: "available".into(),
            encrypted: true,
            kms_key_id: None,
            endpoint: Some("orders.example".into()),
            subnet_group: None,
            security_groups: Vec::new(),
            publicly_accessible: None,
            availability_zones: Vec::new(),
            deletion_protection: false,
            writer: None,
            resource_id: None,
            member_of: None,
            database: crate::manifest::Database {
                kind: DbKind::Instance,
                identifier: "orders".into(),
                engine: "sqlserver-se".into(),
                engine_version: "15".into(),
                port: Some(1433),
                master_username: "admin".into(),
                database_name: None,
                instance_class: None,
                allocated_storage: None,
                storage_type: None,
                iops: None,
                multi_az: false,
                iam_auth: false,
                tags: BTreeMap::new(),
                parameter_group: None,
                option_group: None,
            },
        };
        let value: serde_json::Value =
            serde_json::from_str(&secret_json(DbKind::Instance, &db, "pw")).unwrap();
        assert_eq!(value["engine"], "sqlserver");
        assert_eq!(value["port"], 1433);
        assert_eq!(value["username"], "admin");
        assert_eq!(value["dbInstanceIdentifier"], "orders");
        assert!(value.get("dbname").is_none(), "{value}");
    }

    #[test]
    fn security_group_ids() {
        assert!(is_security_group_id("sg-0123456789abcdef0"));
        assert!(is_security_group_id("sg-12345678"));
        for bad in ["sg-", "0123", "sg-xyz12345", "sg-0123456789abcdef01"] {
            assert!(!is_security_group_id(bad), "{bad}");
        }
    }
}
