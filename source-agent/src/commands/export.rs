use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::export::{export, ExportArgs};
use rds_handoff::flows::fleet::export::export_all;
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &ExportArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    if args.is_fleet() {
        let aws = Aws::connect(&global.aws).await?;
        let summary = export_all(&aws, args, printer).await?;
        printer.tabular(&summary.text(), &summary.json);
        return Ok(summary.exit_code());
    }
    let plan = args.resolve()?;
    printer.set_database(&plan.db);
    let aws = Aws::connect(&global.aws).await?;
    let report = export(&aws, &plan, printer).await?;
    let path = report.manifest_path.display().to_string();
    let text = if plan.dry_run && report.already_done {
        format!(
            "dry run: nothing was changed\nalready exported: manifest {path}\nmanifest SHA-256: {}",
            report.fingerprint
        )
    } else if plan.dry_run {
        format!("dry run: nothing was changed\nthe manifest would be written to {path}")
    } else {
        let data = match report.manifest.as_ref().and_then(|m| m.data.as_ref()) {
            Some(digest) if plan.stop_source => format!(
                "data: {} tables, {} rows, read just before the stop that took the snapshot (digest in the manifest)\n",
                digest.tables.len(),
                digest.rows()
            ),
            Some(digest) => format!(
                "data: {} tables, {} rows, the same before and after the snapshot (digest in the manifest)\n",
                digest.tables.len(),
                digest.rows()
            ),
            None => String::new(),
        };
        let data = if plan.stop_source && !report.already_done {
            format!("{data}source: DB instance {} left stopped (AWS starts a stopped instance again after 7 days)\n", plan.db)
        } else {
            data
        };
        format!(
            "{data}{}manifest: {path}\nmanifest SHA-256: {}\n\nsend the manifest to the target admin, and its SHA-256 on another channel (a call, a signed message): the target refuses a manifest that does not match it\n\nnext, in the target account:\n  {}",
            if report.already_done { "already exported: " } else { "" },
            report.fingerprint,
            report.next_command
        )
    };
    let json = serde_json::json!({
        "event": "done",
        "dry_run": plan.dry_run,
        "already_done": report.already_done,
        "next_command": report.next_command,
        "manifest": path,
        "manifest_sha256": report.fingerprint,
        "data": report.manifest.as_ref().and_then(|m| m.data.as_ref()),
    });
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
