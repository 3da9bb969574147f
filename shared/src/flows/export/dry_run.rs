//! A dry run's plan (`src-agent export --dry-run`): each step of the export read from AWS,
//! what exists reused and the rest made; nothing is changed.

use crate::aws::kms;
use crate::aws::rds::{DbInfo, Snap};
use crate::aws::{Aws, Caller};
use crate::base::error::Result;
use crate::base::progress::Progress;
use crate::base::vocabulary::DbKind;
use crate::flows::plan::{self, Action};
use crate::workflow::Workflow;

use super::key::key_spec;
use super::snapshot::{check_shared_copy, say_rekey, source_encryption, steps, Rekey};
use super::ExportPlan;

/// The plan, each step read from AWS: what exists is reused, the rest is made.
pub(super) async fn print_plan(
    aws: &Aws,
    plan: &ExportPlan,
    caller: &Caller,
    db: &DbInfo,
    shared_copy: Option<&Snap>,
    progress: &dyn Progress,
) -> Result<()> {
    let names = &plan.names;
    let shared = shared_copy.is_some();
    // The run's own checks of the key (found, its policy audited), then what its policy gains.
    progress.stage("key");
    let there = aws.destination().unwrap_or(aws);
    let spec = key_spec(plan, there, caller);
    let found = kms::plan_key(there, &plan.key, &spec, caller).await?;
    let source = source_encryption(aws, plan, db).await?;
    let rekey = Rekey::of(plan, source);
    // The run's check of a shared copy left by an earlier run: under this key, of this
    // database (a key the run would make is none a copy can be under).
    if let Some(copy) = shared_copy {
        let key = found
            .as_ref()
            .map_or("the key this run would make", |f| f.key.arn.as_str());
        check_shared_copy(plan, copy, rekey, key)?;
    }
    match found {
        None => plan::step(
            progress,
            Action::Create,
            "key (policy: `src-agent policy`)",
            &plan.key.describe(),
        ),
        Some(found) => {
            plan::step(progress, Action::Reuse, "key", &found.key.arn);
            if let Some(alias) = &found.alias_added {
                plan::step(progress, Action::Create, "key alias", alias);
            }
            if found.sets.is_empty() {
                let stage = "key policy (it has the target's statements)";
                plan::step(progress, Action::Skip, stage, &found.key.arn);
            } else {
                let stage = format!(
                    "key policy (set {} for {}, replacing that account's earlier statements, if any)",
                    found.sets.join(", "),
                    plan.target
                );
                plan::step(progress, Action::Update, &stage, &found.key.arn);
            }
        }
    }
    say_rekey(plan, source, progress);
    let steps = steps(plan, db, &plan.key.describe(), shared, rekey);
    let steps = super::region::placed(plan, steps);
    plan::steps(aws, Workflow::Export, plan.kind, &steps, progress).await?;
    if rekey == Rekey::TempCluster {
        // Made by this run (no shared copy yet) or left by an earlier one: either way deleted.
        let left =
            plan::database(aws, DbKind::Cluster, &names.temp_cluster).await? == Action::Reuse;
        plan::step(
            progress,
            plan::delete_unless(shared && !left),
            "temporary cluster",
            &names.temp_cluster,
        );
    }
    let kept = plan.from_snapshot.is_some() || plan.keep_intermediate;
    plan::step(
        progress,
        plan::delete_unless(kept),
        "intermediate snapshot",
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
