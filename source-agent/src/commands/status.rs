use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::holdings::{run_status, Across, Side, StatusArgs};
use rds_handoff::{ExitCode, Result};

pub async fn run(
    args: &StatusArgs,
    across: &Across,
    global: &GlobalArgs,
    printer: &Printer,
) -> Result<ExitCode> {
    let aws = Aws::connect(&global.aws).await?;
    run_status(args, across, Side::Source, &aws, printer).await
}
