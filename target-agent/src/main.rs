//! `tgt-agent`: the target-account side of an rds-handoff.

mod commands;

use clap::{Parser, Subcommand};
use rds_handoff::cli::{parse_error, run, GlobalArgs};
use rds_handoff::flows::holdings::{CleanupArgs, StatusArgs};
use rds_handoff::flows::import::{ImportArgs, VerifyArgs};

/// Receive an RDS instance or Aurora cluster handed over from another AWS account (target side).
///
/// Run by the target account's admin with the manifest `src-agent export` wrote. `import`
/// does the whole job, in this order:
///   1. verifies the manifest against AWS: our account, the region, the snapshot's owner,
///      that it is shared with us and encrypted with the key the manifest names;
///   2. makes (or reuses) a KMS key of our own;
///   3. copies the shared snapshot under our key and restores it into our subnet group and
///      security groups, not publicly accessible (clusters also get their writer instance);
///   4. sets a new master password and stores it in Secrets Manager under our key;
///   5. deletes the intermediate copy and writes `<db>.import.json`.
///
/// With `--verify-data`, it then logs in with the new password and checks every table's rows
/// and checksum against the manifest's digest; `verify` runs that check again later.
/// `check` runs step 1 only; `cleanup` removes what an interrupted import left behind;
/// `status` lists the handoffs this account holds. Both name a restored database that still
/// answers to the source's master password (an import stopped before step 4), with the
/// command that finishes it.
/// Every step is safe to repeat: re-run after any failure.
#[derive(Debug, Parser)]
#[command(name = "tgt-agent", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Verify, re-key, restore and set a new master password
    Import(Box<ImportArgs>),
    /// Verify the manifest against AWS and this account; change nothing
    Check(Box<ImportArgs>),
    /// Check the restored data against the manifest's digest, logged in with the new password
    Verify(VerifyArgs),
    /// Remove what an unfinished or abandoned import left (never a database or a secret)
    Cleanup(CleanupArgs),
    /// List the handoffs in this account and region: stage reached, resources held
    Status(StatusArgs),
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return parse_error(err),
    };
    let global = cli.global.clone();
    run(&cli.global, |printer| async move {
        match cli.command {
            Command::Import(args) => commands::import::run(&args, &global, &printer).await,
            Command::Check(args) => commands::check::run(&args, &global, &printer).await,
            Command::Verify(args) => commands::verify::run(&args, &global, &printer).await,
            Command::Cleanup(args) => commands::cleanup::run(&args, &global, &printer).await,
            Command::Status(args) => commands::status::run(&args, &global, &printer).await,
        }
    })
}
