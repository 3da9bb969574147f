//! The encrypt steps and what they make: snapshot (an instance's `--stop-source` stop takes
//! it; a cluster is stopped once it is available), start the copy of an instance's snapshot
//! under the key, restore the twin with the original's placement and settings, recreate a
//! cluster's writer; and deleting the intermediate snapshots after.

use std::collections::BTreeMap;

use crate::aws::rds::{self, DbInfo};
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::flows::export::{with_role, TAG_ROLE};
use crate::workflow::{Op, Step, Workflow};

use super::{base_tags, EncryptPlan, TAG_ENCRYPTED_FROM};

/// The encrypt steps: snapshot, copy an instance's snapshot under the key, restore the twin
/// under the key, recreate a cluster's writer. With `--stop-source`, an instance is stopped
/// by a call that takes the snapshot just before the stop (AWS snapshots no stopped
/// database), a cluster once its snapshot is available. Once the twin exists, only waiting
/// for it (and its writer) is left.
pub fn steps(
    plan: &EncryptPlan,
    original: &DbInfo,
    key_arn: &str,
    twin_exists: bool,
    writer: Option<rds::WriterSpec>,
) -> Vec<Step> {
    let step = |name: &str, op: Op| Step::new(Workflow::Encrypt, name, plan.kind, op);
    let tags = intermediate_tags(plan);
    let names = &plan.names;
    let mut steps = Vec::new();
    if !twin_exists {
        if plan.stop_source && plan.kind == DbKind::Instance {
            steps.push(step(
                "Stop",
                Op::Stop {
                    db: plan.db.clone(),
                    snapshot: Some(names.snapshot.clone()),
                    tags: tags.clone(),
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
        if plan.stop_source && plan.kind == DbKind::Cluster {
            steps.push(step(
                "StopAfterSnapshot",
                Op::Stop {
                    db: plan.db.clone(),
                    snapshot: None,
                    tags: BTreeMap::new(),
                },
            ));
        }
        if plan.kind == DbKind::Instance {
            steps.push(step(
                "Copy",
                Op::Copy {
                    source: names.snapshot.clone(),
                    id: names.copy.clone(),
                    key: Some(key_arn.to_owned()),
                    option_group: None,
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

/// The twin's tags: its mark and as many of the original's as fit beside it; and the
/// original's tags left out.
pub(super) fn twin_tags(
    plan: &EncryptPlan,
    original: &DbInfo,
) -> (BTreeMap<String, String>, Vec<String>) {
    let mark = BTreeMap::from([(TAG_ENCRYPTED_FROM.to_owned(), plan.db.clone())]);
    rds::with_marks(&rds::user_tags(&original.database.tags), mark)
}

/// The original's placement and settings, with the toolkit's tag added.
fn twin_spec(
    plan: &EncryptPlan,
    original: &DbInfo,
    source: &str,
    key_arn: &str,
) -> rds::RestoreSpec {
    let d = &original.database;
    let (tags, _) = twin_tags(plan, original);
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
pub(super) async fn writer_spec(
    aws: &Aws,
    plan: &EncryptPlan,
    original: &DbInfo,
) -> Result<rds::WriterSpec> {
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

/// The tags of the snapshots this command makes (and of the one an instance's stop takes).
fn intermediate_tags(plan: &EncryptPlan) -> BTreeMap<String, String> {
    with_role(&base_tags(plan), "intermediate")
}

/// Deletes the snapshots this command made, unless asked to keep them. The snapshot an
/// instance's `--stop-source` stop took is first marked as the others are, if no step did
/// (the Step Functions engine does not tag).
pub(super) async fn cleanup(aws: &Aws, plan: &EncryptPlan, progress: &dyn Progress) -> Result<()> {
    if plan.stop_source && plan.kind == DbKind::Instance {
        let (kind, db, id) = (plan.kind, &plan.db, &plan.names.snapshot);
        rds::adopt_stop_snapshot(aws, kind, db, id, &intermediate_tags(plan)).await?;
    }
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
