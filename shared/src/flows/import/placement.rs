//! Where the database goes: the target's own subnet group, security groups, parameter and
//! option groups and key that this run asks for, checked to exist here and fit together
//! before an import, and compared with a finished import's database after one.

use crate::aws::rds::DbInfo;
use crate::aws::Aws;
use crate::base::error::Result;
use crate::flows::preflight;

use super::report::ImportReport;
use super::ImportPlan;

/// The target's own resources the import will use exist here and fit together.
pub(super) async fn check_placement(aws: &Aws, plan: &ImportPlan) -> Result<()> {
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

/// Where a finished import's database (as AWS describes it) differs from this run's flags.
pub(super) async fn placement_differences(
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
        let arn = crate::aws::kms::describe(aws, key).await?.map(|k| k.arn);
        if arn.as_deref() != Some(report.kms_key_arn.as_str()) {
            differs.push(format!(
                "KMS key `{}` (this run: `{key}`)",
                report.kms_key_arn
            ));
        }
    }
    Ok(differs)
}
