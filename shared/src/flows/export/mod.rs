//! `src-agent export`: key, snapshot, encrypted copy, share, manifest.
//!
//! Each step first looks for its own result (deterministic names from [`crate::base::names`], the
//! key's alias or tag), so a run killed anywhere and started again with the same arguments
//! continues where it stopped and never makes a second key, snapshot or copy. The source
//! database is only ever read and snapshotted, and stopped with `--stop-source`.
//!
//! This file holds the arguments, the plan of one export and the flow that runs the steps;
//! each part is a file of its own:
//!
//! - `selection.rs`: which databases a command names (`--db-instance`, `--db-cluster`,
//!   `--tag`, `--all`).
//! - `checks.rs`: what must hold before anything is created (the preflight), and that the
//!   target is another account.
//! - `key.rs`: the key the copy is encrypted under: its policy, and the key found or made.
//! - `snapshot.rs`: the workflow's steps (snapshot, the copy under the key or a temporary
//!   encrypted cluster, the share), the share checked, and deleting what is no longer needed.
//! - `manifest.rs`: the manifest written for the target, a finished export read back from
//!   it, and the command the target runs next.
//! - `dry_run.rs`: the plan a dry run prints, each step read from AWS.
//! - `tags.rs`: the tags on what an export makes, which tell the toolkit's own resources.
//! - `data.rs`: `--verify-data`, the source's digest before and after the snapshot.
//! - `region.rs`: `--target-region`: what a handoff into another region needs and refuses.

mod checks;
mod data;
mod dry_run;
mod key;
mod manifest;
mod region;
mod selection;
mod snapshot;
mod tags;

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::kms::{Key, KeyArgs, KeyChoice};
use crate::aws::rds::{self, DbInfo, Snap};
use crate::aws::wait::{parse_duration, WaitPolicy};
use crate::aws::{Aws, Caller};
use crate::base::error::{Error, Result};
use crate::base::manifest::{fingerprint, Manifest};
use crate::base::names::ExportNames;
use crate::base::progress::{Event, Progress};
use crate::base::state::{self, Recorder};
use crate::base::vocabulary::DbKind;
use crate::flows::data::DbArgs;
use crate::flows::preflight;
use crate::ident::{AccountId, Arn, Region};
use crate::policy::KeyPolicyVariant;
use crate::workflow::{self, EngineArgs, Workflow};

use dry_run::print_plan;
use key::ensure_export_key;
use manifest::{finished, next_command, write_manifest};
use snapshot::{check_shared, check_shared_copy, cleanup, say_rekey, source_encryption, Rekey};
use tags::base_tags;

pub use checks::refuse_own_account;
pub use data::DataPlan;
pub use manifest::now;
pub use region::refuse_unreachable;
pub use selection::{DatabaseArgs, Selection};
pub use snapshot::steps;
pub use tags::{with_role, TAG_DB, TAG_ROLE, TAG_SOURCE_REGION, TAG_TARGET, TAG_TARGET_REGION};

/// What the operator typed for `export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub selection: Selection,
    /// The account that will import the database
    #[arg(long, value_name = "ACCOUNT")]
    pub target_account: AccountId,
    /// Narrow the key's grant from the whole target account to this principal of it
    #[arg(long, value_name = "ARN")]
    pub target_principal: Option<Arn>,
    /// The region the target restores in: the snapshot is copied there, under a key of this
    /// account in that region (a `--kms-key-id` names a key there), and shared there; data
    /// transfer out of this region is billed [default: this run's region]
    #[arg(long, value_name = "REGION")]
    pub target_region: Option<Region>,
    /// `--target-region`, a DB instance with an option group of its own: the option group in
    /// the target region its copy takes (AWS requires one; RDS's `default:` groups need none;
    /// DB clusters take none)
    #[arg(long, value_name = "NAME", requires = "target_region")]
    pub target_option_group_name: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Also require the target principal to be in this AWS Organization
    #[arg(long, value_name = "ORG_ID")]
    pub org_id: Option<String>,
    /// The target's key policy statements: AWS's documented set, or `strict` (NOT VERIFIED ON
    /// AWS: the copy may fail with KMSKeyNotAccessibleFault)
    #[arg(long, value_enum, default_value = "documented")]
    pub key_policy: KeyPolicyVariant,
    /// Start from this existing snapshot (manual or automated) instead of taking a new one
    /// (one database)
    #[arg(long, value_name = "ID")]
    pub from_snapshot: Option<String>,
    /// Where to write the manifest, one database [default: ./<db-id>.handoff.json]
    #[arg(long, value_name = "PATH", conflicts_with = "manifest_dir")]
    pub manifest: Option<PathBuf>,
    /// Several databases: the folder for their manifests and the index
    /// (rds-handoff-index.json) [default: .]
    #[arg(long, value_name = "DIR")]
    pub manifest_dir: Option<PathBuf>,
    /// Several databases: at most this many snapshot copies at once (lowers AWS's limits of
    /// 20 DB snapshot and 5 DB cluster snapshot copies per region, never raises them)
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub max_parallel: Option<u16>,
    /// Check everything and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting for a snapshot after this long (e.g. 90m, 4h)
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Keep the intermediate snapshot this run took (it is deleted by default)
    #[arg(long)]
    pub keep_intermediate: bool,
    /// Unencrypted cluster: encrypt it at the source through a temporary restored cluster
    #[arg(long, conflicts_with = "allow_unencrypted_share")]
    pub encrypt_at_source: bool,
    /// Unencrypted cluster: share it unencrypted; the target encrypts it on restore
    #[arg(long)]
    pub allow_unencrypted_share: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
    /// DB instance: stop it, AWS taking the snapshot immediately before (StopDBInstance with
    /// DBSnapshotIdentifier), so that nothing written after the snapshot is lost: the source
    /// stays stopped (AWS starts a stopped instance again after 7 days)
    #[arg(long, conflicts_with = "from_snapshot")]
    pub stop_source: bool,
    /// Prove the data: take the digest (row count and checksum of every user table, computed
    /// by the database) before and after the snapshot; equal, it goes into the manifest for the
    /// target to check. PostgreSQL and MySQL/MariaDB (and Aurora's) only
    #[arg(long)]
    pub verify_data: bool,
    #[command(flatten)]
    pub db: DbArgs,
    /// `--verify-data`: the Secrets Manager secret (name or ARN) holding the login of the
    /// source database, `username` and `password`; the shipped operator policy reads only
    /// secrets named `rds-handoff/…` [default: its RDS-managed master secret]
    #[arg(long, value_name = "NAME_OR_ARN", requires = "verify_data")]
    pub db_secret: Option<String>,
}

/// The validated plan of one export.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub kind: DbKind,
    pub db: String,
    pub target: AccountId,
    pub target_principal: Option<Arn>,
    /// Another region the shared copy is made in (`None`: this run's).
    pub target_region: Option<Region>,
    /// The database's region, when the run finds `target_region` is another one.
    pub source_region: Option<Region>,
    /// A cross-region export's copy source: the ARN of the snapshot the shared copy is made
    /// from, which AWS reports on the copy (`SourceDBSnapshotIdentifier`,
    /// `SourceDBClusterSnapshotArn`).
    pub copied_from: Option<String>,
    /// The option group a cross-region copy of an instance takes.
    pub target_option_group: Option<String>,
    pub key: KeyChoice,
    /// The operator named the key (`--kms-key-id` or `--key-alias`).
    pub key_named: bool,
    pub key_admins: Vec<Arn>,
    pub org_id: Option<String>,
    pub key_policy: KeyPolicyVariant,
    pub from_snapshot: Option<String>,
    pub manifest_path: PathBuf,
    pub dry_run: bool,
    pub wait: WaitPolicy,
    pub keep_intermediate: bool,
    pub encrypt_at_source: bool,
    pub allow_unencrypted_share: bool,
    pub names: ExportNames,
    /// A fleet's dry run checked the manifest folder itself (it makes it when it runs).
    pub folder_checked: bool,
    /// One database of a fleet: its siblings may share under the same named key meanwhile.
    pub in_fleet: bool,
    pub engine: EngineArgs,
    /// `--verify-data`.
    pub data: Option<DataPlan>,
    /// `--stop-source` (an instance).
    pub stop_source: bool,
}

impl ExportArgs {
    /// The plan of a one-database export; checks what can be checked without AWS.
    pub fn resolve(&self) -> Result<ExportPlan> {
        let (kind, db) = self.selection.single().ok_or_else(|| {
            Error::usage("this export names several databases; it runs as a fleet")
        })?;
        let manifest = self
            .manifest
            .clone()
            .unwrap_or_else(|| PathBuf::from(format!("{db}.handoff.json")));
        self.plan_for(kind, &db, manifest)
    }

    /// Whether this export is a fleet: anything but exactly one named database, or a
    /// `--manifest-dir`.
    pub fn is_fleet(&self) -> bool {
        self.selection.single().is_none() || self.manifest_dir.is_some()
    }

    /// The plan for one database of this export, its manifest at `manifest_path`.
    pub fn plan_for(&self, kind: DbKind, db: &str, manifest_path: PathBuf) -> Result<ExportPlan> {
        let db = crate::ident::check_rds_id(kind.id_kind(), db)?;
        let snapshot_kind = kind.snapshot_kind();
        if let Some(principal) = &self.target_principal {
            if principal.account.as_ref() != Some(&self.target_account) {
                return Err(Error::usage(format!(
                    "`--target-principal {principal}` is not in the target account `{}`",
                    self.target_account
                )));
            }
        }
        let key = self.key.choice(&db)?;
        if let Some(org) = &self.org_id {
            if !org.starts_with("o-") || org.len() < 12 {
                return Err(Error::usage(format!(
                    "`--org-id {org}` is not an organization id like `o-a1b2c3d4e5`"
                )));
            }
        }
        if self.stop_source && kind == DbKind::Cluster {
            return Err(Error::Usage {
                message: format!("`--stop-source` stops a DB instance, AWS snapshotting it just before; `{db}` is a DB cluster"),
                hint: Some("stop the cluster's application writes, then re-run without `--stop-source`".into()),
            });
        }
        if self.verify_data && self.from_snapshot.is_some() {
            return Err(Error::usage(
                "`--verify-data` proves the snapshot it takes itself: it does not go with `--from-snapshot`",
            ));
        }
        let from_snapshot = match &self.from_snapshot {
            Some(id) if !id.starts_with("rds:") => {
                Some(crate::ident::check_rds_id(snapshot_kind, id)?)
            }
            other => other.clone(),
        };
        Ok(ExportPlan {
            names: ExportNames::new(snapshot_kind, &db, self.target_account.as_str()),
            manifest_path,
            kind,
            db,
            target: self.target_account.clone(),
            target_principal: self.target_principal.clone(),
            target_region: self.target_region.clone(),
            source_region: None,
            copied_from: None,
            target_option_group: self.target_option_group_name.clone(),
            key,
            key_named: self.key.named(),
            key_admins: self.key.key_admins.clone(),
            org_id: self.org_id.clone(),
            key_policy: self.key_policy,
            from_snapshot,
            dry_run: self.dry_run,
            wait: WaitPolicy::new(self.wait_timeout),
            keep_intermediate: self.keep_intermediate,
            encrypt_at_source: self.encrypt_at_source,
            allow_unencrypted_share: self.allow_unencrypted_share,
            folder_checked: false,
            in_fleet: false,
            engine: self.engine.clone(),
            stop_source: self.stop_source,
            data: self.verify_data.then(|| DataPlan {
                args: self.db.clone(),
                secret: self.db_secret.clone(),
            }),
        })
    }
}

/// What an export produced.
#[derive(Debug, Clone)]
pub struct ExportReport {
    pub manifest_path: PathBuf,
    pub manifest: Option<Manifest>,
    /// The export had already finished; nothing was changed.
    pub already_done: bool,
    pub next_command: String,
    /// SHA-256 of the manifest file, for the target to check (empty in a dry run).
    pub fingerprint: String,
}

/// Runs an export (or, with `dry_run`, only its checks and plan).
pub async fn export(aws: &Aws, plan: &ExportPlan, progress: &dyn Progress) -> Result<ExportReport> {
    if !plan.folder_checked {
        preflight::writable(&plan.manifest_path)?;
    }
    let caller = aws.identify(progress).await?;
    refuse_own_account(&caller.account, &plan.target)?;
    let plan = &region::within(plan, aws, &caller);
    // `aws` is the source's region, `there` the shared copy's: its key, copy and share.
    let aws = &match &plan.target_region {
        Some(region) => {
            region::refuse_unreachable(aws, region)?;
            aws.with_destination(region).await?
        }
        None => aws.clone(),
    };
    let there = aws.destination().unwrap_or(aws);
    region::refuse_other_destination(plan, there)?;
    key::refuse_lockout(plan, there, &caller)?;
    let db = rds::describe_db(aws, plan.kind, &plan.db)
        .await?
        .ok_or_else(|| rds::not_here(aws, plan.kind, &plan.db, &caller))?;
    rds::refuse_cluster_member(&db)?;
    if plan.data.is_some() {
        crate::flows::data::engine_of(&db.database.engine)?;
    }
    if let Some(report) = finished(there, plan).await? {
        data::refuse_unproven(plan, &report)?;
        if plan.dry_run {
            manifest::print_finished(plan, &report, progress);
        }
        return Ok(report);
    }
    let shared = rds::describe_snapshot(there, plan.kind, &plan.names.shared).await?;
    if shared.is_none() {
        checks::preflight(aws, there, plan, &db, progress).await?;
        snapshot::check_intermediate(aws, plan).await?;
        data::check_login(aws, plan, &db, progress).await?;
    }
    if plan.dry_run {
        print_plan(aws, plan, &caller, &db, shared.as_ref(), progress).await?;
        return Ok(ExportReport {
            manifest_path: plan.manifest_path.clone(),
            manifest: None,
            already_done: false,
            next_command: next_command(plan, there, &caller.account, "<SHA256>"),
            fingerprint: String::new(),
        });
    }
    let recorder = Recorder::new(
        state::path_beside(&plan.manifest_path),
        "export",
        &plan.db,
        progress,
    )
    .headed(state::Headed {
        source_region: aws.region.to_string(),
        target_account: plan.target.to_string(),
        destination: there.region.to_string(),
    });
    let progress: &dyn Progress = &recorder;
    let tags = base_tags(plan);
    // A key the operator named gets the target's statements; a run that fails after takes
    // back exactly what it added (`key::Undo` says when it may).
    progress.stage("key");
    let undo = key::Undo::before(there, plan, &caller).await?;
    let key = ensure_export_key(there, plan, &caller, &tags, progress).await?;
    let result = share_and_write(aws, plan, &caller, &db, shared, &key, progress).await;
    if result.is_err() {
        undo.revert(there, plan, &key, &caller, progress).await;
    }
    result
}

/// The export once its key is ready: the steps, their checks, cleanup and the manifest
/// (`aws` with the destination region's clients, if the export crosses regions).
async fn share_and_write(
    aws: &Aws,
    plan: &ExportPlan,
    caller: &Caller,
    db: &DbInfo,
    shared: Option<Snap>,
    key: &Key,
    progress: &dyn Progress,
) -> Result<ExportReport> {
    let there = aws.destination().unwrap_or(aws);
    let source = source_encryption(aws, plan, db).await?;
    let rekey = Rekey::of(plan, source);
    if let Some(found) = &shared {
        check_shared_copy(plan, found, rekey, &key.arn)?;
    }
    say_rekey(plan, source, progress);
    let steps = steps(plan, db, &key.arn, shared.is_some(), rekey);
    let steps = region::placed(plan, steps);
    let digest = data::verified_snapshot(aws, plan, db, &steps, shared.is_some(), progress).await?;
    let done = workflow::run(
        aws,
        &plan.engine,
        Workflow::Export,
        &plan.db,
        &steps,
        plan.wait,
        progress,
    )
    .await?;
    let snapshot = match done.snapshot(&plan.names.shared) {
        Some(found) => found.clone(),
        None => rds::describe_snapshot(there, plan.kind, &plan.names.shared)
            .await?
            .ok_or_else(|| {
                Error::refused(
                    format!(
                        "the shared copy `{}` is missing after the steps ran",
                        plan.names.shared
                    ),
                    "re-run the same command: every step finds what it already made",
                )
            })?,
    };
    check_shared_copy(plan, &snapshot, rekey, &key.arn)?;
    check_shared(there, plan, progress).await?;
    cleanup(aws, plan, rekey, progress).await?;
    let manifest = write_manifest(aws, plan, caller, db, &snapshot, source, digest)?;
    progress.event(&Event::step(
        "manifest",
        &plan.manifest_path.display().to_string(),
        "written",
    ));
    data::proof_served(plan);
    let fingerprint = fingerprint(manifest.to_json().as_bytes());
    Ok(ExportReport {
        manifest_path: plan.manifest_path.clone(),
        next_command: next_command(plan, there, &manifest.source.account, &fingerprint),
        manifest: Some(manifest),
        already_done: false,
        fingerprint,
    })
}
