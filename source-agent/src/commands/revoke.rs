use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::revoke::{run_revoke, RevokeArgs};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &RevokeArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let aws = Aws::connect(&global.aws).await?;
    run_revoke(args, &aws, printer).await
}
