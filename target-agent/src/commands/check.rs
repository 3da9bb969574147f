use rds_handoff::aws::Aws;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::import::{verify, ImportArgs};
use rds_handoff::progress::Printer;
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &ImportArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let plan = args.resolve()?;
    let aws = Aws::connect(&global.aws).await?;
    verify(&aws, &plan, printer).await?;
    let arn = plan.manifest.snapshot.arn.to_string();
    printer.result(
        &format!("ready to import: {arn}\nrun the same command with `import` instead of `check`"),
        &serde_json::json!({"event": "done", "ready": true, "snapshot": arn}),
    );
    Ok(ExitCode::Ok)
}
