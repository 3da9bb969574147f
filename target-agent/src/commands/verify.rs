//! `tgt-agent verify`: the data check of a restored database, run again.

use rds_handoff::aws::Aws;
use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::import::{verify_data, VerifyArgs};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &VerifyArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let aws = Aws::connect(&global.aws).await?;
    let (db, check) = verify_data(&aws, args, printer).await?;
    let text = format!(
        "data verified: {db} holds the data the source exported ({} tables, {} rows)",
        check.tables.len(),
        check.tables.values().map(|t| t.rows).sum::<u64>()
    );
    let mut json = serde_json::to_value(&check).unwrap_or_default();
    if let Some(map) = json.as_object_mut() {
        map.insert("event".into(), "done".into());
        map.insert("db_identifier".into(), db.into());
    }
    printer.result(&text, &json);
    Ok(ExitCode::Ok)
}
