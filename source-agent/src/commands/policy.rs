use rds_handoff::base::progress::Printer;
use rds_handoff::cli::GlobalArgs;
use rds_handoff::flows::review::{policy_text, PolicyArgs, PolicyFormat};
use rds_handoff::{ExitCode, Result};

pub async fn run(args: &PolicyArgs, global: &GlobalArgs, printer: &Printer) -> Result<ExitCode> {
    let text = policy_text(args, &global.aws).await?;
    let json = match args.format {
        PolicyFormat::Json => serde_json::from_str(&text).unwrap_or_default(),
        PolicyFormat::Explain => serde_json::Value::String(text.clone()),
    };
    printer.result(text.trim_end(), &json);
    Ok(ExitCode::Ok)
}
