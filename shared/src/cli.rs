//! What both binaries share around their commands: global flags, logging, the async
//! runtime, Ctrl-C and SIGTERM, and how an error is shown and turned into an exit code.

use std::future::Future;
use std::io::IsTerminal;

use crate::aws::{profile_setting, AwsArgs};
use crate::base::error::{Error, ExitCode, Result};
use crate::base::progress::{OutputFormat, Printer};

/// Flags every command of both agents accepts, listed after the command's own in `--help`.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "Global options")]
pub struct GlobalArgs {
    #[command(flatten)]
    pub aws: AwsArgs,
    /// `text`, `table` (the result as tables, a column per field) or `json` (JSON Lines: one
    /// object per line on stdout, every event, then the result; `jq -s 'last'` reads the
    /// result) [default: the profile's `output`, else text]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    pub output: Option<OutputFormat>,
    /// More log detail on stderr (-v info, -vv debug, -vvv trace)
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// All log detail, with every AWS request (same as -vvv)
    #[arg(long, global = true)]
    pub debug: bool,
    /// No colors in logs (also when `NO_COLOR` is set; logs are colored only on a terminal)
    #[arg(long, global = true)]
    pub no_color: bool,
}

/// Logs go to stderr, off by default (progress says what happens); `-v` or `RUST_LOG` turn
/// them on.
pub fn init_logging(global: &GlobalArgs) {
    let verbose = if global.debug { 3 } else { global.verbose };
    let level = match verbose {
        0 => "off",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    let no_color_env = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    let color = colors(
        global.no_color || no_color_env,
        std::io::stderr().is_terminal(),
    );
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Colors only on a terminal, unless `--no-color` or `NO_COLOR` (any value but empty) says
/// none: a log piped to a file or a CI system carries no escape codes.
fn colors(no_color: bool, terminal: bool) -> bool {
    terminal && !no_color
}

/// `--output`, then `AWS_DEFAULT_OUTPUT`, then the profile's `output` setting, as the AWS CLI.
async fn output_format(global: &GlobalArgs) -> OutputFormat {
    if let Some(format) = global.output {
        return format;
    }
    let configured = match std::env::var("AWS_DEFAULT_OUTPUT") {
        Ok(value) => Some(value),
        Err(_) => profile_setting(global.aws.profile.as_deref(), "output").await,
    };
    configured
        .and_then(|value| <OutputFormat as clap::ValueEnum>::from_str(&value, true).ok())
        .unwrap_or_default()
}

/// Runs one command to its exit code: builds the runtime, stops cleanly on Ctrl-C or
/// SIGTERM, prints errors with their hint.
pub fn run<F>(global: &GlobalArgs, command: impl FnOnce(Printer) -> F) -> std::process::ExitCode
where
    F: Future<Output = Result<ExitCode>>,
{
    init_logging(global);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                &Printer::new(OutputFormat::Text),
                &Error::io("tokio runtime", e),
            )
        }
    };
    runtime.block_on(async {
        let printer = Printer::new(output_format(global).await);
        let outcome = tokio::select! {
            result = command(printer.clone()) => result,
            _ = tokio::signal::ctrl_c() => Err(Error::Interrupted),
            _ = terminated() => Err(Error::Interrupted),
        };
        match outcome {
            Ok(code) => std::process::ExitCode::from(code as u8),
            Err(err) => report(&printer, &err),
        }
    })
}

/// Resolves on SIGTERM (what `kill`, systemd and container runtimes send); never elsewhere.
async fn terminated() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            term.recv().await;
            return;
        }
    }
    std::future::pending::<()>().await;
}

/// Prints an error (and its hint) on stderr, or as one JSON line on stdout with `--output json`.
pub fn report(printer: &Printer, err: &Error) -> std::process::ExitCode {
    let code = err.exit_code();
    if let Error::Detached {
        execution,
        database,
    } = err
    {
        let json = serde_json::json!({ "event": "detached", "database": database, "execution": execution, "next": err.hint() });
        printer.result(&format!("{err}\n{}", err.hint().unwrap_or_default()), &json);
        return std::process::ExitCode::from(code as u8);
    }
    printer.error(&err.to_string(), err.hint().as_deref(), code as u8);
    std::process::ExitCode::from(code as u8)
}

/// A command line clap refused: as clap prints it, or as one JSON error line when the
/// command line asks for `--output json`.
pub fn parse_error(err: clap::Error) -> std::process::ExitCode {
    use clap::error::ErrorKind;
    let json = {
        let args: Vec<String> = std::env::args().collect();
        args.windows(2)
            .any(|w| w[0] == "--output" && w[1] == "json")
            || args.iter().any(|a| a == "--output=json")
    };
    let informational = matches!(
        err.kind(),
        ErrorKind::DisplayHelp
            | ErrorKind::DisplayVersion
            | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
    );
    if !json || informational {
        err.exit();
    }
    let text = err.to_string();
    // clap's message, without its usage lines, on one line.
    let message = text
        .lines()
        .take_while(|line| !line.starts_with("Usage:"))
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    let message = message.trim_start_matches("error: ");
    let printer = Printer::new(OutputFormat::Json);
    printer.error(
        message,
        Some("run with `--help` for the flags"),
        ExitCode::Usage as u8,
    );
    std::process::ExitCode::from(ExitCode::Usage as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logs_are_colored_only_on_a_terminal_and_never_when_told_not_to() {
        assert!(colors(false, true));
        assert!(!colors(false, false), "a pipe or a file: no escape codes");
        assert!(!colors(true, true), "`--no-color` or `NO_COLOR`");
    }
}
