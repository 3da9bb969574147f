use rds_handoff::aws::Aws;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::export::{export, ExportArgs};
use rds_handoff::progress::Printer;
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &ExportArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let plan = args.resolve()?;
    let aws = Aws::connect(&global.aws).await?;
    let report = export(&aws, &plan, printer).await?;
    let path = report.manifest_path.display().to_string();
    let text = if plan.dry_run {
        format!("dry run: nothing was changed\nthe manifest would be written to {path}")
    } else if report.already_done {
        format!(
            "already exported: manifest {path}\n\nnext, in the target account:\n  {}",
            report.next_command
        )
    } else {
        format!(
            "manifest: {path}\n\nnext, in the target account:\n  {}",
            report.next_command
        )
    };
    let json = serde_json::json!({
        "event": "done",
        "dry_run": plan.dry_run,
        "already_done": report.already_done,
        "next_command": report.next_command,
        "manifest": path,
    });
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
