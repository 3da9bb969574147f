use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::fleet::import::import_all;
use rds_handoff::flows::import::{aws_args_for, import, ImportArgs, UNCHECKED};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &ImportArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let mut args = args.clone();
    args.check = args.check.trusting(global.aws.profile.as_deref()).await?;
    args.check.warn_unchecked(printer);
    if args.is_fleet() {
        let summary = import_all(&args, &global.aws, printer).await?;
        printer.tabular(&summary.text(), &summary.json);
        return Ok(summary.exit_code());
    }
    let plan = args.resolve()?;
    printer.set_database(&plan.db);
    let aws = Aws::connect(&aws_args_for(&plan, &global.aws, printer)).await?;
    let report = import(&aws, &plan, printer).await?;
    let path = plan.report_path.display().to_string();
    let mut text = if plan.args.dry_run {
        "dry run: nothing was changed".to_owned()
    } else {
        let endpoint = report.endpoint.as_deref().unwrap_or("(no endpoint yet)");
        let port = report.port.map(|p| format!(":{p}")).unwrap_or_default();
        let secret = report.secret_name.as_deref().unwrap_or("managed by RDS");
        let head = if report.already_done {
            "already imported"
        } else {
            "imported"
        };
        let data = match &report.data_check {
            Some(check) if check.is_equal() => format!(
                "\ndata: verified, {} tables, {} rows equal to the source's",
                check.tables.len(),
                check.tables.values().map(|t| t.rows).sum::<u64>()
            ),
            Some(check) => format!(
                "\ndata: DIFFERS from the source's in {} tables (last checked {}; see the report)",
                check.differences.len(),
                check.checked_at
            ),
            None => String::new(),
        };
        format!(
            "{head}: {} {}\nendpoint: {endpoint}{port}\nmaster secret: {secret}{data}\nreport: {path}",
            plan.kind.name(),
            report.db_identifier
        )
    };
    let unchecked = plan.args.check.skip_manifest_sha256;
    if unchecked {
        text.push_str(&format!("\nwarning: manifest SHA-256 {UNCHECKED}"));
    }
    let mut json = serde_json::to_value(&report).unwrap_or_default();
    if let Some(map) = json.as_object_mut() {
        map.insert("event".into(), "done".into());
        map.insert("report".into(), path.into());
        map.insert("dry_run".into(), plan.args.dry_run.into());
        map.insert("manifest_sha256_checked".into(), (!unchecked).into());
    }
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
