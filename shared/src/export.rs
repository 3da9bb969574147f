//! `src-agent export`: key, snapshot, encrypted copy, share, manifest.
//!
//! Each step first looks for its own result (deterministic names from [`crate::names`], the
//! key's alias or tag), so a run killed anywhere and started again with the same arguments
//! continues where it stopped and never makes a second key, snapshot or copy. The source
//! database is only ever read and snapshotted.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::aws::{Aws, Caller};
use crate::error::{Error, Result};
use crate::ident::{AccountId, Arn, DbClusterId, DbInstanceId};
use crate::kms::{ensure_key, KeyArgs, KeyChoice};
use crate::manifest::{
    fingerprint, is_user_tag, Database, DbKind, Manifest, SharedSnapshot, SourceSide, TargetSide,
    SCHEMA_VERSION,
};
use crate::names::ExportNames;
use crate::plan::{self, Action};
use crate::policy::{KeyPolicySpec, KeyPolicyVariant, Peer};
use crate::preflight;
use crate::progress::{Event, Progress};
use crate::rds::{self, DbInfo};
use crate::state::{self, Recorder};
use crate::wait::{parse_duration, WaitPolicy};
use crate::workflow::{self, EngineArgs, Op, Step, Workflow};

pub const TAG_DB: &str = "rds-handoff:db";
pub const TAG_TARGET: &str = "rds-handoff:target-account";
pub const TAG_ROLE: &str = "rds-handoff:role";

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
}

/// The validated plan of one export.
#[derive(Debug, Clone)]
pub struct ExportPlan {
    pub kind: DbKind,
    pub db: String,
    pub target: AccountId,
    pub target_principal: Option<Arn>,
    pub key: KeyChoice,
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
    pub engine: EngineArgs,
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
            key,
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
            engine: self.engine.clone(),
        })
    }
}

/// Which databases an export hands off: named ones, tagged ones, or all of the region.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = true)]
pub struct Selection {
    /// A DB instance to hand off (repeat the flag for several)
    #[arg(long, value_name = "ID")]
    pub db_instance: Vec<DbInstanceId>,
    /// An Aurora DB cluster to hand off (repeat the flag for several)
    #[arg(long, value_name = "ID")]
    pub db_cluster: Vec<DbClusterId>,
    /// Every DB instance and cluster carrying this tag (repeated: carrying all of them);
    /// members of a cluster go with their cluster
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag_filter)]
    pub tag: Vec<(String, String)>,
    /// Every DB instance and Aurora cluster of the region (members go with their cluster)
    #[arg(long, conflicts_with_all = ["db_instance", "db_cluster", "tag"])]
    pub all: bool,
}

impl Selection {
    /// The one database named, when exactly one is and nothing else selects.
    pub fn single(&self) -> Option<(DbKind, String)> {
        if self.all || !self.tag.is_empty() {
            return None;
        }
        match (self.db_instance.as_slice(), self.db_cluster.as_slice()) {
            ([id], []) => Some((DbKind::Instance, id.to_string())),
            ([], [id]) => Some((DbKind::Cluster, id.to_string())),
            _ => None,
        }
    }
}

fn parse_tag_filter(value: &str) -> std::result::Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, tag)) if !key.is_empty() => Ok((key.to_owned(), tag.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

/// `--db-instance ID` or `--db-cluster ID`: exactly one.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct DatabaseArgs {
    /// The DB instance
    #[arg(long, value_name = "ID")]
    pub db_instance: Option<DbInstanceId>,
    /// The Aurora DB cluster
    #[arg(long, value_name = "ID")]
    pub db_cluster: Option<DbClusterId>,
}

impl DatabaseArgs {
    /// The kind and identifier named (clap has already made the flags exclusive).
    pub fn chosen(&self) -> Result<(DbKind, String)> {
        match (&self.db_instance, &self.db_cluster) {
            (Some(id), None) => Ok((DbKind::Instance, id.to_string())),
            (None, Some(id)) => Ok((DbKind::Cluster, id.to_string())),
            _ => Err(Error::usage(
                "give exactly one of `--db-instance` and `--db-cluster`",
            )),
        }
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
    let db = rds::describe_db(aws, plan.kind, &plan.db)
        .await?
        .ok_or_else(|| rds::not_here(aws, plan.kind, &plan.db, &caller))?;
    rds::refuse_cluster_member(&db)?;
    if let Some(report) = finished(aws, plan).await? {
        return Ok(report);
    }
    let shared = rds::describe_snapshot(aws, plan.kind, &plan.names.shared).await?;
    if shared.is_none() {
        preflight(aws, plan, &db, progress).await?;
    }
    if plan.dry_run {
        print_plan(aws, plan, &db, shared.is_some(), progress).await?;
        return Ok(ExportReport {
            manifest_path: plan.manifest_path.clone(),
            manifest: None,
            already_done: false,
            next_command: next_command(plan, aws, &caller.account, "<SHA256>"),
            fingerprint: String::new(),
        });
    }
    let recorder = Recorder::new(
        state::path_beside(&plan.manifest_path),
        "export",
        &plan.db,
        progress,
    );
    let progress: &dyn Progress = &recorder;
    let tags = base_tags(plan);
    let key = ensure_key(
        aws,
        &plan.key,
        &key_spec(plan, aws, &caller),
        &caller,
        &tags,
        progress,
    )
    .await?;
    let shared_tags = with_role(&tags, "shared-copy");
    if let Some(found) = &shared {
        rds::check_ours(found, &shared_tags, None)?;
    }
    let source_encrypted = source_encrypted(aws, plan, &db).await?;
    let steps = steps(plan, &db, &key.arn, shared.is_some(), source_encrypted);
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
        None => rds::describe_snapshot(aws, plan.kind, &plan.names.shared)
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
    // Encrypted unless an unencrypted cluster is shared on purpose; then under our key.
    let expected_key =
        (snapshot.encrypted || !plan.allow_unencrypted_share).then_some(key.arn.as_str());
    rds::check_ours(&snapshot, &shared_tags, expected_key)?;
    check_shared(aws, plan, progress).await?;
    cleanup(aws, plan, progress).await?;
    let manifest = Manifest {
        schema: SCHEMA_VERSION,
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: now(),
        source: SourceSide {
            account: caller.account.clone(),
            region: aws.region.clone(),
            partition: aws.partition.clone(),
        },
        target: TargetSide {
            account: plan.target.clone(),
            principal: plan.target_principal.clone(),
        },
        database: Database {
            tags: db
                .database
                .tags
                .iter()
                .filter(|(k, _)| is_user_tag(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..db.database.clone()
        },
        snapshot: SharedSnapshot {
            arn: snapshot.arn.parse()?,
            encrypted: snapshot.encrypted,
            // The key the snapshot *is* encrypted with, as AWS reports it.
            kms_key_arn: match (&snapshot.kms_key_id, snapshot.encrypted) {
                (Some(arn), true) => Some(arn.parse()?),
                _ => None,
            },
        },
    };
    manifest.write(&plan.manifest_path)?;
    progress.event(&Event::step(
        "manifest",
        &plan.manifest_path.display().to_string(),
        "written",
    ));
    let fingerprint = fingerprint(manifest.to_json().as_bytes());
    Ok(ExportReport {
        manifest_path: plan.manifest_path.clone(),
        next_command: next_command(plan, aws, &manifest.source.account, &fingerprint),
        manifest: Some(manifest),
        already_done: false,
        fingerprint,
    })
}

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

pub fn now() -> String {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

fn base_tags(plan: &ExportPlan) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TAG_DB.into(), plan.db.clone()),
        (TAG_TARGET.into(), plan.target.to_string()),
    ])
}

pub fn with_role(tags: &BTreeMap<String, String>, role: &str) -> BTreeMap<String, String> {
    let mut tags = tags.clone();
    tags.insert(TAG_ROLE.into(), role.into());
    tags
}

fn key_spec(plan: &ExportPlan, aws: &Aws, caller: &Caller) -> KeyPolicySpec {
    let peer = Peer {
        account: plan.target.clone(),
        principal: plan.target_principal.clone(),
    };
    let mut spec = KeyPolicySpec::source(
        &aws.partition,
        aws.region.clone(),
        caller.account.clone(),
        peer,
    );
    spec.admins = plan.key_admins.clone();
    spec.org_id = plan.org_id.clone();
    spec.variant = plan.key_policy;
    spec
}

/// A finished export: the manifest exists, names this run's snapshot, and AWS agrees.
async fn finished(aws: &Aws, plan: &ExportPlan) -> Result<Option<ExportReport>> {
    let Ok((manifest, fingerprint)) = Manifest::read_fingerprinted(&plan.manifest_path) else {
        return Ok(None);
    };
    let ours = manifest.database.identifier == plan.db
        && manifest.target.account == plan.target
        && manifest
            .snapshot
            .arn
            .resource
            .ends_with(&format!(":{}", plan.names.shared));
    if !ours {
        return Err(Error::refused(
            format!(
                "`{}` already holds a manifest for another export",
                plan.manifest_path.display()
            ),
            "pass `--manifest` with another path, or move that file away",
        ));
    }
    let snapshot = rds::describe_snapshot(aws, plan.kind, &plan.names.shared).await?;
    let shared = rds::shared_with(aws, plan.kind, &plan.names.shared)
        .await
        .unwrap_or_default();
    let Some(snapshot) = snapshot.filter(|s| s.status == "available") else {
        return Ok(None);
    };
    if !shared.contains(&plan.target.to_string()) {
        return Ok(None);
    }
    let key = manifest.snapshot.kms_key_arn.as_ref().map(|k| k.as_str());
    rds::check_ours(&snapshot, &with_role(&base_tags(plan), "shared-copy"), key)?;
    Ok(Some(ExportReport {
        manifest_path: plan.manifest_path.clone(),
        already_done: true,
        next_command: next_command(plan, aws, &manifest.source.account, &fingerprint),
        manifest: Some(manifest),
        fingerprint,
    }))
}

/// Everything that must hold before anything is created.
async fn preflight(
    aws: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
    progress: &dyn Progress,
) -> Result<()> {
    if let KeyChoice::Given(key) = &plan.key {
        preflight::key_exists(aws, key).await?;
    }
    if plan.from_snapshot.is_none() && db.status != "available" {
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
    let encrypted = match &plan.from_snapshot {
        Some(id) => {
            rds::describe_snapshot(aws, plan.kind, id)
                .await?
                .ok_or_else(|| {
                    Error::refused(
                        format!("snapshot `{id}` not found"),
                        "check `--from-snapshot`",
                    )
                })?
                .encrypted
        }
        None => db.encrypted,
    };
    if plan.kind == DbKind::Cluster
        && !encrypted
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
    let needed = if plan.from_snapshot.is_some() { 1 } else { 2 };
    rds::check_snapshot_room(aws, plan.kind, needed, progress).await
}

/// The plan, each step read from AWS: what exists is reused, the rest is made.
async fn print_plan(
    aws: &Aws,
    plan: &ExportPlan,
    db: &DbInfo,
    shared: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let names = &plan.names;
    plan::step(
        progress,
        plan::key(aws, &plan.key).await?,
        "key (policy: `src-agent policy`)",
        &plan.key.describe(),
    );
    let encrypted = source_encrypted(aws, plan, db).await?;
    let steps = steps(plan, db, &plan.key.describe(), shared, encrypted);
    plan::steps(aws, Workflow::Export, plan.kind, &steps, progress).await?;
    if plan.kind == DbKind::Cluster && !encrypted && plan.encrypt_at_source {
        plan::step(
            progress,
            plan::delete_unless(shared),
            "delete temporary cluster",
            &names.temp_cluster,
        );
    }
    let kept = plan.from_snapshot.is_some() || plan.keep_intermediate;
    plan::step(
        progress,
        plan::delete_unless(kept),
        "delete intermediate snapshot",
        &names.intermediate,
    );
    plan::step(
        progress,
        Action::Create,
        "manifest",
        &plan.manifest_path.display().to_string(),
    );
    Ok(())
}

/// The encryption of what is copied: the snapshot started from, or the database.
async fn source_encrypted(aws: &Aws, plan: &ExportPlan, db: &DbInfo) -> Result<bool> {
    let Some(id) = &plan.from_snapshot else {
        return Ok(db.encrypted);
    };
    Ok(rds::describe_snapshot(aws, plan.kind, id)
        .await?
        .is_some_and(|s| s.encrypted))
}

/// The export's steps: snapshot, then copy under the key (or restore a temporary cluster
/// under the key and snapshot it) into the shared name, then share. Once the shared copy
/// exists, only finding it (and waiting for it) and sharing are left.
pub fn steps(
    plan: &ExportPlan,
    db: &DbInfo,
    key_arn: &str,
    shared_exists: bool,
    source_encrypted: bool,
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
        steps.push(step(
            "Snapshot",
            Op::Snapshot {
                db: plan.db.clone(),
                id: names.intermediate.clone(),
                tags: with_role(&tags, "intermediate"),
            },
        ));
    }
    if kind == DbKind::Cluster && !source_encrypted && plan.encrypt_at_source {
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
        let key = (kind == DbKind::Instance || source_encrypted).then(|| key_arn.to_owned());
        steps.push(step(
            "Copy",
            Op::Copy {
                source,
                id: names.shared.clone(),
                key,
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
async fn check_shared(aws: &Aws, plan: &ExportPlan, progress: &dyn Progress) -> Result<()> {
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
async fn cleanup(aws: &Aws, plan: &ExportPlan, progress: &dyn Progress) -> Result<()> {
    if plan.kind == DbKind::Cluster && plan.encrypt_at_source {
        delete_temp_cluster(aws, plan, progress).await?;
    }
    if plan.keep_intermediate || plan.from_snapshot.is_some() {
        return Ok(());
    }
    let id = &plan.names.intermediate;
    if rds::delete_own_snapshot(aws, plan.kind, id, &[(TAG_ROLE, "intermediate")]).await? {
        progress.event(&Event::step("cleanup", id, "intermediate snapshot deleted"));
    }
    Ok(())
}

fn next_command(plan: &ExportPlan, aws: &Aws, source: &AccountId, fingerprint: &str) -> String {
    format!(
        "tgt-agent import {} --source-account {source} --manifest-sha256 {fingerprint} --region {} --db-subnet-group <SUBNET_GROUP> --vpc-security-group-ids <SG_ID>",
        plan.manifest_path.display(),
        aws.region
    )
}
