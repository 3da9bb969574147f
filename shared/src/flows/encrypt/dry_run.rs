//! A dry run's plan (`src-agent encrypt --dry-run`): each step of the encrypt read from AWS,
//! what exists reused and the rest made; nothing is changed.

use crate::aws::rds::DbInfo;
use crate::aws::Aws;
use crate::base::error::Result;
use crate::base::progress::Progress;
use crate::base::vocabulary::DbKind;
use crate::flows::plan;
use crate::workflow::Workflow;

use super::restore::{steps, writer_spec};
use super::EncryptPlan;

/// The plan, each step read from AWS: what exists is reused, the rest is made.
pub(super) async fn print_plan(
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
            "intermediate snapshot",
            id,
        );
    }
    Ok(())
}
