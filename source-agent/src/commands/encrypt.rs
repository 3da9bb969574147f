use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::base::vocabulary::DbKind;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::encrypt::{encrypt, EncryptArgs};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &EncryptArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let plan = args.resolve()?;
    printer.set_database(&plan.db);
    let aws = Aws::connect(&global.aws).await?;
    let report = encrypt(&aws, &plan, printer).await?;
    let endpoint = report.endpoint.as_deref().unwrap_or("(not yet known)");
    let text = if plan.dry_run {
        format!(
            "dry run: nothing was changed\nthe encrypted copy would be {}",
            report.twin
        )
    } else {
        format!(
            "{}encrypted copy: {} ({})\nendpoint: {endpoint}\nthe original `{}` {}: point your applications at the copy, then retire the original",
            if report.already_done { "already done: " } else { "" },
            report.twin,
            plan.kind.name(),
            plan.db,
            match (plan.stop_source, plan.kind) {
                (false, _) => "is unchanged (writes to it after the snapshot are not in the copy)",
                (true, DbKind::Instance) => "was stopped by the call that took its snapshot just before the stop; it stays stopped until started, and AWS starts it again by itself after 7 days",
                (true, DbKind::Cluster) => "was stopped once its snapshot was available (writes in between are not in the copy); it stays stopped until started, and AWS starts it again by itself after 7 days",
            },
        )
    };
    let json = serde_json::json!({
        "event": "done",
        "dry_run": plan.dry_run,
        "already_done": report.already_done,
        "database": report.twin,
        "endpoint": report.endpoint,
        "kms_key_arn": report.key_arn,
    });
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
