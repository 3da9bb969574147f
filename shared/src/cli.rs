//! What both binaries share around their commands: global flags, logging, the async
//! runtime, Ctrl-C, and how an error is shown and turned into an exit code.

use std::future::Future;

use crate::aws::AwsArgs;
use crate::error::{Error, ExitCode, Result};
use crate::progress::{OutputFormat, Printer};

/// Flags every command of both agents accepts.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `human` (progress on stderr, results on stdout) or `json` (one JSON object per line)
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Human)]
    pub output: OutputFormat,
    /// More log detail on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

/// Logs go to stderr, off by default (progress says what happens); `-v` or `RUST_LOG` turn
/// them on.
pub fn init_logging(verbose: u8) {
    let level = match verbose {
        0 => "off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Runs one command to its exit code: builds the runtime, stops cleanly on Ctrl-C, prints
/// errors with their hint.
pub fn run<F>(global: &GlobalArgs, command: impl FnOnce(Printer) -> F) -> std::process::ExitCode
where
    F: Future<Output = Result<ExitCode>>,
{
    init_logging(global.verbose);
    let printer = Printer::new(global.output);
    let format = printer.format();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return report(format, &Error::io("tokio runtime", e)),
    };
    let outcome = runtime.block_on(async {
        tokio::select! {
            result = command(printer) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
        }
    });
    match outcome {
        Ok(code) => std::process::ExitCode::from(code as u8),
        Err(err) => report(format, &err),
    }
}

/// Prints an error (and its hint) on stderr, or as one JSON line on stdout with `--output json`.
pub fn report(format: OutputFormat, err: &Error) -> std::process::ExitCode {
    let code = err.exit_code();
    match format {
        OutputFormat::Json => {
            let json = serde_json::json!({"event": "error", "error": err.to_string(), "hint": err.hint(), "exit_code": code as u8});
            println!("{json}");
        }
        OutputFormat::Human => {
            eprintln!("error: {err}");
            if let Some(hint) = err.hint() {
                eprintln!("\nhint: {hint}");
            }
        }
    }
    std::process::ExitCode::from(code as u8)
}
