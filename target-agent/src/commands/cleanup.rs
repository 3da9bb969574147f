use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::holdings::{run_cleanup, Across, CleanupArgs, Side};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &CleanupArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let aws = Aws::connect(&global.aws).await?;
    run_cleanup(args, &Across::default(), Side::Target, &aws, printer).await
}
