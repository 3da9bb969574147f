//! `tgt-agent check`: what `import` verifies before it creates anything, and nothing else;
//! with `--client-cidr` / `--client-security-group`, also whether the security groups the
//! import would use admit those clients on the database's port.

use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::import::{aws_args_for, verify, CheckArgs};
use rds_handoff::flows::reach::{check_reach, database_port, ReachArgs};
use rds_handoff::{Error, ExitCode, Result};

/// What `check` takes: what the import checks, and who must be able to reach the database.
#[derive(Debug, Clone, clap::Args)]
pub struct CheckCommand {
    #[command(flatten)]
    pub check: CheckArgs,
    #[command(flatten)]
    pub reach: ReachArgs,
}

pub async fn run(
    command: &CheckCommand,
    global: &GlobalArgs,
    printer: &Printer,
) -> Result<ExitCode> {
    let args = command
        .check
        .clone()
        .trusting(global.aws.profile.as_deref())
        .await?;
    args.warn_unchecked(printer);
    if args.as_import().is_fleet() {
        return Err(Error::Usage {
            message: "`check` verifies one manifest".into(),
            hint: Some("run `tgt-agent import --dry-run` with the same manifests or index: it verifies every one of them and changes nothing".into()),
        });
    }
    let plan = args.as_import().resolve()?;
    printer.set_database(&plan.db);
    let aws = Aws::connect(&aws_args_for(&plan, &global.aws, printer)).await?;
    verify(&aws, &plan, printer).await?;
    let reach = if command.reach.is_empty() {
        None
    } else {
        let port = database_port(&plan.manifest.database)?;
        let groups = &plan.args.check.vpc_security_group_ids;
        Some(check_reach(&aws, groups, port, &command.reach, printer).await?)
    };
    let arn = plan.manifest.snapshot.arn.to_string();
    let mut text = format!("ready to import: {arn}");
    let mut json = serde_json::json!({"event": "done", "ready": true, "snapshot": arn});
    if let Some(report) = &reach {
        text.push_str(&format!("\nreachable on TCP {}:", report.port));
        for line in report.lines() {
            text.push_str(&format!("\n  {line}"));
        }
        json["port"] = report.port.into();
        json["reach"] = report.lines().into();
    }
    text.push_str("\nrun the same command with `import` instead of `check`");
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
