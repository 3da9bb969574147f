//! The import's workflow steps: copy the shared snapshot under our own key, restore the
//! database from it (with the manifest's settings, where the operator asked), add a
//! cluster's writer; and delete the intermediate copy once the database no longer needs it.

use std::collections::BTreeMap;

use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::{DbKind, Encryption};
use crate::flows::export::TAG_ROLE;
use crate::workflow::{Op, Step, Workflow};

use super::{tags, ImportPlan};

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
                option_group: None,
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
        tags: db_tags(plan).0,
    }
}

/// The toolkit's tags plus as many of the manifest's as fit, for the restored database; and
/// the manifest's tags left out.
pub(super) fn db_tags(plan: &ImportPlan) -> (BTreeMap<String, String>, Vec<String>) {
    let user = rds::user_tags(&plan.manifest.database.tags);
    rds::with_marks(&user, tags(plan, "restored-database"))
}

fn writer_spec(plan: &ImportPlan) -> Result<rds::WriterSpec> {
    let class = plan.args.instance_class.clone().or(plan.manifest.database.instance_class.clone()).ok_or_else(|| {
        Error::usage("the manifest names no instance class for the cluster's writer: pass `--db-instance-class`")
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

/// The restored database ended under the target's own key: never the source's (whose owner
/// can revoke it) nor an AWS owned one (what a restore without a key gives since 2026-02-18).
pub(super) fn check_own_key(plan: &ImportPlan, db: &rds::DbInfo, key_arn: &str) -> Result<()> {
    if db.encryption == Encryption::KmsKey && db.kms_key_id.as_deref() == Some(key_arn) {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "{} `{}` is {}{}, not under this account's key `{key_arn}`",
            plan.kind.name(),
            plan.db,
            db.encryption.describe(),
            db.kms_key_id
                .as_deref()
                .map(|k| format!(" `{k}`"))
                .unwrap_or_default()
        ),
        "do not use it: look at how it was restored (its events in the RDS console), delete it, then re-run the same command",
    ))
}
