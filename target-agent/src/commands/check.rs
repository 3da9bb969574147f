//! `tgt-agent check`: the import's dry run (what it verifies before it creates anything, and
//! its plan), said as a verdict; with `--client-cidr` / `--client-security-group`, also
//! whether the security groups the import would use admit those clients on the database's
//! port.

use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::import::{aws_args_for, import, ImportArgs};
use rds_handoff::flows::reach::{check_reach, database_port};
use rds_handoff::{ExitCode, Result};

/// `check` takes what `import` takes, so that the one command becomes the other by its first
/// word; what only an import uses (the instance class, the password mode, …) is ignored.
pub async fn run(command: &ImportArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let mut args = command.clone();
    args.dry_run = true;
    if args.is_fleet() {
        // Several manifests, or an index: the fleet's dry run verifies every one of them and
        // changes nothing.
        return super::import::run(&args, global, printer).await;
    }
    args.check = args.check.trusting(global.aws.profile.as_deref()).await?;
    args.check.warn_unchecked(printer);
    let mut plan = args.resolve()?;
    // The reach is checked below, once, for its report.
    plan.args.reach = Default::default();
    printer.set_database(&plan.db);
    let aws = Aws::connect(&aws_args_for(&plan, &global.aws, printer)).await?;
    // The import's own dry run: every check it makes before its first change, and its plan.
    let report = import(&aws, &plan, printer).await?;
    if report.already_done {
        let text = format!(
            "already imported: {} {}; nothing to import (report: {})",
            plan.kind.name(),
            report.db_identifier,
            plan.report_path.display()
        );
        let json = serde_json::json!({"event": "done", "ready": false, "already_done": true, "db_identifier": report.db_identifier});
        printer.result(&text, &json);
        return Ok(ExitCode::Ok);
    }
    let reach = if args.reach.is_empty() {
        None
    } else {
        let port = database_port(&plan.manifest.database)?;
        let groups = &plan.args.check.vpc_security_group_ids;
        Some(check_reach(&aws, groups, port, &args.reach, printer).await?)
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
