//! `tgt-agent`: the target-account side of an rds-handoff.

mod commands;

use clap::{Parser, Subcommand};
use rds_handoff::cli::{run, GlobalArgs};
use rds_handoff::import::{CleanupArgs, ImportArgs};

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
/// `check` runs step 1 only; `cleanup` removes what an interrupted import left behind.
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
    Import(ImportArgs),
    /// Verify the manifest against AWS and this account; change nothing
    Check(ImportArgs),
    /// Remove what an import left that is no longer needed (never the database or its secret)
    Cleanup(CleanupArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let global = cli.global.clone();
    run(&cli.global, |printer| async move {
        match cli.command {
            Command::Import(args) => commands::import::run(&args, &global, &printer).await,
            Command::Check(args) => commands::check::run(&args, &global, &printer).await,
            Command::Cleanup(args) => commands::cleanup::run(&args, &global, &printer).await,
        }
    })
}
