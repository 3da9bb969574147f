//! `src-agent encrypt`: an encrypted twin of an unencrypted database, in the same account.
//!
//! AWS cannot turn encryption on for an existing database; the way is snapshot → copy under
//! a key → restore (an Aurora cluster: snapshot → restore with `KmsKeyId`, then a new writer).
//! The twin keeps the original's placement and settings; the original is only snapshotted.
//! Names are deterministic and each step first looks for its own result, so a killed run
//! started again continues where it stopped.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::aws::Aws;
use crate::error::{Error, Result};
use crate::export::{with_role, DatabaseArgs, TAG_DB, TAG_ROLE};
use crate::ident::{check_rds_id, Arn};
use crate::kms::{ensure_key, Key, KeyArgs, KeyChoice};
use crate::manifest::DbKind;
use crate::names::{writer_instance, EncryptNames};
use crate::plan;
use crate::policy::KeyPolicySpec;
use crate::progress::{Event, Progress};
use crate::rds::{self, DbInfo};
use crate::state::Recorder;
use crate::wait::{parse_duration, WaitPolicy};
use crate::workflow::{self, EngineArgs, Op, Step, Workflow};

/// The tag that marks a database as the encrypted twin of the one it names.
pub const TAG_ENCRYPTED_FROM: &str = "rds-handoff:encrypted-from";

/// What the operator typed for `encrypt`.
#[derive(Debug, Clone, clap::Args)]
pub struct EncryptArgs {
    /// The database to make an encrypted copy of
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub key: KeyArgs,
    /// Identifier of the encrypted copy [default: <id>-encrypted]
    #[arg(long, value_name = "NEW")]
    pub restore_as: Option<String>,
    /// Check everything and print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// Give up waiting for a snapshot or database after this long (e.g. 90m, 4h)
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = parse_duration)]
    pub wait_timeout: Duration,
    /// Keep the intermediate snapshots (they are deleted once the copy is available)
    #[arg(long)]
    pub keep_intermediate: bool,
    /// Stop the original before its snapshot, so no write is lost in the cut-over (it stays
    /// stopped; without this flag, writes after the snapshot are not in the copy)
    #[arg(long)]
    pub stop_source: bool,
    #[command(flatten)]
    pub engine: EngineArgs,
}

/// The validated plan of one `encrypt`.
#[derive(Debug, Clone)]
pub struct EncryptPlan {
    pub kind: DbKind,
    pub db: String,
    pub twin: String,
    /// A cluster twin's writer instance.
    pub writer: String,
    pub key: KeyChoice,
    pub key_admins: Vec<Arn>,
    pub names: EncryptNames,
    pub dry_run: bool,
    pub stop_source: bool,
    pub wait: WaitPolicy,
    pub keep_intermediate: bool,
    pub engine: EngineArgs,
}

impl EncryptArgs {
    /// Checks what can be checked without AWS.
    pub fn resolve(&self) -> Result<EncryptPlan> {
        let (kind, db) = self.database.chosen()?;
        let twin = match &self.restore_as {
            Some(name) => check_rds_id(kind.id_kind(), name)?,
            None => check_rds_id(kind.id_kind(), &format!("{db}-encrypted")).map_err(|e| {
                Error::usage(format!(
                    "{e}; the default name `{db}-encrypted` is too long: pass `--restore-as`"
                ))
            })?,
        };
        if twin == db {
            return Err(Error::usage(format!(
                "`--restore-as {twin}` is the database itself: the encrypted copy needs a new identifier"
            )));
        }
        let key = self.key.choice(&twin)?;
        Ok(EncryptPlan {
            names: EncryptNames::new(kind.snapshot_kind(), &db),
            writer: writer_instance(&twin),
            kind,
            db,
            twin,
            key,
            key_admins: self.key.key_admins.clone(),
            dry_run: self.dry_run,
            stop_source: self.stop_source,
            wait: WaitPolicy::new(self.wait_timeout),
            keep_intermediate: self.keep_intermediate,
            engine: self.engine.clone(),
        })
    }
}

/// What an `encrypt` produced.
#[derive(Debug, Clone)]
pub struct EncryptReport {
    pub twin: String,
    pub endpoint: Option<String>,
    pub key_arn: Option<String>,
    /// The twin already existed and was available; nothing was created.
    pub already_done: bool,
}

/// Runs an `encrypt` (or, with `dry_run`, only its checks and plan).
pub async fn encrypt(
    aws: &Aws,
    plan: &EncryptPlan,
    progress: &dyn Progress,
) -> Result<EncryptReport> {
    let caller = aws.identify(progress).await?;
    let original = rds::describe_db(aws, plan.kind, &plan.db)
        .await?
        .ok_or_else(|| rds::not_here(aws, plan.kind, &plan.db, &caller))?;
    rds::refuse_cluster_member(&original)?;
    let existing = existing_twin(aws, plan).await?;
    if let Some(twin) = &existing {
        if twin.status == "available" && twin_writer_ready(aws, plan).await? {
            cleanup(aws, plan, progress).await?;
            return Ok(report(plan, twin, true));
        }
    } else {
        preflight(aws, plan, &original, progress).await?;
    }
    if plan.dry_run {
        print_plan(aws, plan, &original, existing.is_some(), progress).await?;
        return Ok(EncryptReport {
            twin: plan.twin.clone(),
            endpoint: None,
            key_arn: None,
            already_done: false,
        });
    }
    let recorder = Recorder::new(
        std::path::PathBuf::from(format!("{}.encrypt.state.json", plan.db)),
        "encrypt",
        &plan.db,
        progress,
    );
    let progress: &dyn Progress = &recorder;
    let mut spec =
        KeyPolicySpec::own_account(&aws.partition, aws.region.clone(), caller.account.clone());
    spec.admins = plan.key_admins.clone();
    let key = ensure_key(aws, &plan.key, &spec, &caller, &base_tags(plan), progress).await?;
    if existing.is_none() && !plan.stop_source {
        progress.event(&Event::warning(
            "snapshot",
            &plan.db,
            "writes after this moment are not in the copy; stop writers first, or re-run with --stop-source",
        ));
    }
    let writer = match plan.kind {
        DbKind::Cluster => Some(writer_spec(aws, plan, &original).await?),
        DbKind::Instance => None,
    };
    let steps = steps(plan, &original, &key.arn, existing.is_some(), writer);
    let done = workflow::run(
        aws,
        &plan.engine,
        Workflow::Encrypt,
        &plan.db,
        &steps,
        plan.wait,
        progress,
    )
    .await?;
    let twin = match done.database(&plan.twin) {
        Some(twin) => twin.clone(),
        None => rds::wait_db(aws, plan.kind, &plan.twin, "restore", plan.wait, progress).await?,
    };
    check_encrypted(plan, &twin, &key)?;
    cleanup(aws, plan, progress).await?;
    Ok(report(plan, &twin, false))
}

fn report(plan: &EncryptPlan, twin: &DbInfo, already_done: bool) -> EncryptReport {
    EncryptReport {
        twin: plan.twin.clone(),
        endpoint: twin.endpoint.clone(),
        key_arn: twin.kms_key_id.clone(),
        already_done,
    }
}

fn base_tags(plan: &EncryptPlan) -> BTreeMap<String, String> {
    BTreeMap::from([(TAG_DB.into(), plan.db.clone())])
}

/// The twin, if an earlier run made it; a database of that name made otherwise is refused.
async fn existing_twin(aws: &Aws, plan: &EncryptPlan) -> Result<Option<DbInfo>> {
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

async fn twin_writer_ready(aws: &Aws, plan: &EncryptPlan) -> Result<bool> {
    if plan.kind == DbKind::Instance {
        return Ok(true);
    }
    Ok(rds::describe_db(aws, DbKind::Instance, &plan.writer)
        .await?
        .is_some_and(|w| w.status == "available"))
}

/// Everything that must hold before anything is created.
async fn preflight(
    aws: &Aws,
    plan: &EncryptPlan,
    original: &DbInfo,
    progress: &dyn Progress,
) -> Result<()> {
    if original.encrypted {
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
        crate::preflight::key_exists(aws, key).await?;
    }
    let stopped_on_purpose = plan.stop_source && original.status == "stopped";
    if original.status != "available" && !stopped_on_purpose {
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

/// The plan, each step read from AWS: what exists is reused, the rest is made.
async fn print_plan(
    aws: &Aws,
    plan: &EncryptPlan,
    original: &DbInfo,
    twin_exists: bool,
    progress: &dyn Progress,
) -> Result<()> {
    let names = &plan.names;
    plan::step(
        progress,
        plan::key(aws, &plan.key).await?,
        "key (own account, RDS only)",
        &plan.key.describe(),
    );
    let writer = match plan.kind {
        DbKind::Cluster => Some(writer_spec(aws, plan, original).await?),
        DbKind::Instance => None,
    };
    let steps = steps(plan, original, &plan.key.describe(), twin_exists, writer);
    plan::steps(aws, Workflow::Encrypt, plan.kind, &steps, progress).await?;
    let copy = (plan.kind == DbKind::Instance).then_some(names.copy.as_str());
    for id in std::iter::once(names.snapshot.as_str()).chain(copy) {
        plan::step(
            progress,
            plan::delete_unless(plan.keep_intermediate),
            "delete intermediate snapshot",
            id,
        );
    }
    Ok(())
}

/// The encrypt steps: (stop the original,) snapshot, copy an instance's snapshot under the
/// key, restore the twin under the key, recreate a cluster's writer. Once the twin exists,
/// only waiting for it (and its writer) is left.
pub fn steps(
    plan: &EncryptPlan,
    original: &DbInfo,
    key_arn: &str,
    twin_exists: bool,
    writer: Option<rds::WriterSpec>,
) -> Vec<Step> {
    let step = |name: &str, op: Op| Step::new(Workflow::Encrypt, name, plan.kind, op);
    let tags = with_role(&base_tags(plan), "intermediate");
    let names = &plan.names;
    let mut steps = Vec::new();
    if !twin_exists {
        if plan.stop_source {
            steps.push(step(
                "Stop",
                Op::Stop {
                    db: plan.db.clone(),
                },
            ));
        }
        steps.push(step(
            "Snapshot",
            Op::Snapshot {
                db: plan.db.clone(),
                id: names.snapshot.clone(),
                tags: tags.clone(),
            },
        ));
        if plan.kind == DbKind::Instance {
            steps.push(step(
                "Copy",
                Op::Copy {
                    source: names.snapshot.clone(),
                    id: names.copy.clone(),
                    key: Some(key_arn.to_owned()),
                    tags,
                },
            ));
        }
    }
    let source = match plan.kind {
        DbKind::Cluster => &names.snapshot,
        DbKind::Instance => &names.copy,
    };
    steps.push(step(
        "Restore",
        Op::Restore(Box::new(twin_spec(plan, original, source, key_arn))),
    ));
    if let Some(writer) = writer {
        steps.push(step("Writer", Op::Writer(writer)));
    }
    steps
}

/// The original's placement and settings, with the toolkit's tag added.
fn twin_spec(
    plan: &EncryptPlan,
    original: &DbInfo,
    source: &str,
    key_arn: &str,
) -> rds::RestoreSpec {
    let d = &original.database;
    let mut tags = rds::user_tags(&d.tags);
    tags.insert(TAG_ENCRYPTED_FROM.into(), plan.db.clone());
    rds::RestoreSpec {
        id: plan.twin.clone(),
        snapshot: source.to_owned(),
        kms_key: Some(key_arn.to_owned()),
        database: d.clone(),
        subnet_group: original.subnet_group.clone(),
        security_groups: original.security_groups.clone(),
        availability_zones: original.availability_zones.clone(),
        publicly_accessible: original.publicly_accessible.unwrap_or(false),
        instance_class: d
            .instance_class
            .clone()
            .filter(|_| plan.kind == DbKind::Instance),
        parameter_group: custom(&d.parameter_group),
        option_group: custom(&d.option_group),
        multi_az: d.multi_az && plan.kind == DbKind::Instance,
        deletion_protection: original.deletion_protection,
        tags,
    }
}

/// A parameter or option group worth naming: the engine's default one (`default.mysql8.0`,
/// `default:mysql-8-0`) is what a restore uses anyway, and is not a resource one can name
/// in every account and region.
fn custom(group: &Option<String>) -> Option<String> {
    group.clone().filter(|g| !g.starts_with("default"))
}

/// A cluster restore makes no instance: the writer to recreate, like the original's.
async fn writer_spec(aws: &Aws, plan: &EncryptPlan, original: &DbInfo) -> Result<rds::WriterSpec> {
    let old = match &original.writer {
        Some(id) => rds::describe_db(aws, DbKind::Instance, id).await?,
        None => None,
    };
    let old = old.ok_or_else(|| {
        Error::refused(
            format!("DB cluster `{}` has no writer instance to copy", plan.db),
            format!(
                "create the writer of `{}` by hand with `aws rds create-db-instance`",
                plan.twin
            ),
        )
    })?;
    let class = old.database.instance_class.clone().ok_or_else(|| {
        Error::refused(
            format!("the writer of `{}` reports no instance class", plan.db),
            format!("create the writer of `{}` by hand", plan.twin),
        )
    })?;
    Ok(rds::WriterSpec {
        id: plan.writer.clone(),
        cluster: plan.twin.clone(),
        engine: original.database.engine.clone(),
        instance_class: class,
        availability_zone: old.availability_zones.first().cloned(),
        publicly_accessible: old.publicly_accessible.unwrap_or(false),
        parameter_group: custom(&old.database.parameter_group),
        tags: with_role(&base_tags(plan), "writer-instance"),
    })
}

/// The twin must be encrypted under the chosen key (KMS reports key ARNs).
fn check_encrypted(plan: &EncryptPlan, twin: &DbInfo, key: &Key) -> Result<()> {
    if twin.encrypted && twin.kms_key_id.as_deref() == Some(key.arn.as_str()) {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "{} `{}` is {}, not encrypted with `{}`",
            plan.kind.name(),
            plan.twin,
            match (&twin.encrypted, &twin.kms_key_id) {
                (true, Some(other)) => format!("encrypted with `{other}`"),
                _ => "not encrypted".to_owned(),
            },
            key.arn
        ),
        format!(
            "delete `{}` (it is a copy; the original is untouched) and re-run",
            plan.twin
        ),
    ))
}

/// Deletes the snapshots this command made, unless asked to keep them.
async fn cleanup(aws: &Aws, plan: &EncryptPlan, progress: &dyn Progress) -> Result<()> {
    if plan.keep_intermediate {
        return Ok(());
    }
    for id in [&plan.names.snapshot, &plan.names.copy] {
        if rds::delete_own_snapshot(aws, plan.kind, id, &[(TAG_ROLE, "intermediate")]).await? {
            progress.event(&Event::step("cleanup", id, "intermediate snapshot deleted"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        args: EncryptArgs,
    }

    fn plan(args: &[&str]) -> Result<EncryptPlan> {
        let mut argv = vec!["encrypt"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)
            .expect("flags parse")
            .args
            .resolve()
    }

    #[test]
    fn defaults_follow_the_seed() {
        let p = plan(&["--db-instance", "orders"]).unwrap();
        assert_eq!(p.twin, "orders-encrypted");
        assert_eq!(p.names.snapshot, "rh-orders-encrypt-src");
        assert_eq!(p.names.copy, "rh-orders-encrypt");
        assert!(matches!(p.key, KeyChoice::Alias(a) if a == "alias/rds-handoff/orders-encrypted"));
        let p = plan(&["--db-cluster", "shop", "--restore-as", "Shop-2"]).unwrap();
        assert_eq!(
            (p.twin.as_str(), p.writer.as_str()),
            ("shop-2", "shop-2-writer")
        );
    }

    #[test]
    fn refuses_names_that_cannot_work() {
        let long = "a".repeat(60);
        let err = plan(&["--db-instance", &long]).unwrap_err().to_string();
        assert!(err.contains("--restore-as"), "{err}");
        let err = plan(&["--db-instance", "orders", "--restore-as", "orders"]).unwrap_err();
        assert!(err.to_string().contains("new identifier"), "{err}");
        let err = plan(&["--db-instance", "orders", "--restore-as", "x--y"]).unwrap_err();
        assert!(err.to_string().contains("x--y"), "{err}");
        let err = plan(&["--db-instance", "orders", "--key-alias", "alias/aws/rds"]).unwrap_err();
        assert!(err.to_string().contains("alias/aws/"), "{err}");
    }
}
