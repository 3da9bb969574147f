use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::import::{aws_args_for, verify, CheckArgs};
use rds_handoff::{Error, ExitCode, Result};

pub async fn run(args: &CheckArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let args = args.clone().trusting(global.aws.profile.as_deref()).await?;
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
    let arn = plan.manifest.snapshot.arn.to_string();
    printer.result(
        &format!("ready to import: {arn}\nrun the same command with `import` instead of `check`"),
        &serde_json::json!({"event": "done", "ready": true, "snapshot": arn}),
    );
    Ok(ExitCode::Ok)
}
