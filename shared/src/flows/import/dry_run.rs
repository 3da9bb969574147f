//! A dry run's plan (`tgt-agent import --dry-run`): each step of the import read from AWS,
//! what exists reused and the rest made; nothing is changed.

use crate::aws::secrets::describe_secret;
use crate::aws::Aws;
use crate::base::error::Result;
use crate::base::progress::Progress;
use crate::base::vocabulary::DbKind;
use crate::flows::plan::{self, Action};
use crate::workflow::Workflow;

use super::restore::steps;
use super::{ImportPlan, PasswordMode};

/// The plan, each step read from AWS: what exists is reused, the rest is made.
pub(super) async fn print_plan(
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
        plan::step(progress, Action::Delete, "intermediate copy", &plan.copy);
    }
    match plan.args.password_mode {
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
