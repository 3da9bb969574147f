//! `src-agent encrypt`: an encrypted twin of an unencrypted database, in the same account.
//!
//! AWS cannot turn encryption on for an existing database; the way is snapshot → copy under
//! a key → restore (an Aurora cluster: snapshot → restore with `KmsKeyId`, then a new writer).
//! The twin keeps the original's placement and settings; the original is only snapshotted
//! (and, with `--stop-source`, stopped: an instance by the call that takes its snapshot, a
//! cluster once its snapshot is available, since AWS snapshots no stopped database).
//! Names are deterministic and each step first looks for its own result, so a killed run
//! started again continues where it stopped.
//!
//! This file holds the arguments, the plan and the flow, which also finds or makes the key
//! (own account, RDS only) through [`crate::aws::kms::ensure_key`]; the rest is a file each:
//!
//! - `checks.rs`: what must hold before anything is created (the preflight), the twin an
//!   earlier run made, and that the finished twin is encrypted under the key.
//! - `restore.rs`: the workflow's steps (snapshot, with `--stop-source` the stop, the copy
//!   under the key, restore the twin, a cluster's writer), what the twin and writer are made
//!   like, and deleting the intermediate snapshots after.
//! - `dry_run.rs`: the plan a dry run prints, each step read from AWS.

mod checks;
mod dry_run;
mod restore;

use std::collections::BTreeMap;
use std::time::Duration;

use crate::aws::kms::{self, ensure_key, KeyArgs, KeyChoice};
use crate::aws::rds::{self, DbInfo};
use crate::aws::wait::{parse_duration, WaitPolicy};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::names::{writer_instance, EncryptNames};
use crate::base::progress::{Event, Progress};
use crate::base::state::Recorder;
use crate::base::vocabulary::DbKind;
use crate::flows::export::{DatabaseArgs, TAG_DB};
use crate::flows::plan::{self, Action};
use crate::ident::{check_rds_id, Arn};
use crate::policy::KeyPolicySpec;
use crate::workflow::{self, EngineArgs, Workflow};

use checks::{check_twin, existing_twin, preflight, twin_writer_ready};
use dry_run::print_plan;
use restore::{cleanup, twin_tags, writer_spec};

pub use restore::steps;

pub use crate::base::vocabulary::TAG_ENCRYPTED_FROM;

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
    /// Stop the original for the cut-over: an instance by a stop that takes its snapshot just
    /// before, a cluster once its snapshot is available. It stays stopped until started, or
    /// until AWS starts it again by itself after 7 days (without this flag, writes after the
    /// snapshot are not in the copy)
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
    /// The operator named the key (`--kms-key-id` or `--key-alias`).
    pub key_named: bool,
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
            key_named: self.key.named(),
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
    let mut spec =
        KeyPolicySpec::own_account(&aws.partition, aws.region.clone(), caller.account.clone());
    spec.admins = plan.key_admins.clone();
    if let Some(twin) = &existing {
        if twin.status == "available" && twin_writer_ready(aws, plan).await? {
            // Its tag alone proves nothing (anyone who may tag a database can set it): it is
            // this run's only if it is what the run would have made.
            let key = kms::plan_key(aws, &plan.key, &spec, &caller).await?;
            check_twin(plan, &original, twin, key.as_ref().map(|k| &k.key))?;
            if plan.dry_run {
                // What is left to do: the cleanup of the intermediate snapshots still there.
                plan::step(progress, Action::Reuse, "encrypted copy", &plan.twin);
                for id in [&plan.names.snapshot, &plan.names.copy] {
                    if rds::describe_snapshot(aws, plan.kind, id).await?.is_some() {
                        let action = plan::delete_unless(plan.keep_intermediate);
                        plan::step(progress, action, "intermediate snapshot", id);
                    }
                }
                return Ok(report(plan, twin, true));
            }
            if plan.engine.engine == workflow::Engine::StepFunctions {
                let (mut tags, _) = twin_tags(plan, &original);
                let mark = BTreeMap::from([(TAG_ENCRYPTED_FROM.to_owned(), plan.db.clone())]);
                tags.remove(TAG_ENCRYPTED_FROM);
                workflow::add_tags(aws, plan.kind, &plan.twin, &tags, &mark, progress).await;
            }
            cleanup(aws, plan, progress).await?;
            return Ok(report(plan, twin, true));
        }
    } else {
        preflight(aws, plan, &original, progress).await?;
        if let Some(warning) = rds::left_out_warning(&twin_tags(plan, &original).1) {
            progress.event(&Event::warning("tags", &plan.twin, &warning));
        }
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
    let key = ensure_key(aws, &plan.key, &spec, &caller, &base_tags(plan), progress).await?;
    if existing.is_none() {
        let warning = match (plan.stop_source, plan.kind) {
            (false, _) => Some("writes after this moment are not in the copy; stop writers first, or re-run with `--stop-source`"),
            (true, DbKind::Cluster) => Some("writes between the snapshot and the stop that follows it are not in the copy; stop writers first"),
            (true, DbKind::Instance) => None,
        };
        if let Some(warning) = warning {
            progress.event(&Event::warning("snapshot", &plan.db, warning));
        }
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
    check_twin(plan, &original, &twin, Some(&key))?;
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
