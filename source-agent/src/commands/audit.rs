use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::review::{run_audit, AuditArgs};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &AuditArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    run_audit(args, &global.aws, printer).await
}
