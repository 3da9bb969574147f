//! `src-agent`: the source-account side of an rds-handoff.

mod commands;

use clap::{Parser, Subcommand};
use rds_handoff::cli::{parse_error, run, GlobalArgs};
use rds_handoff::flows::encrypt::EncryptArgs;
use rds_handoff::flows::export::ExportArgs;
use rds_handoff::flows::holdings::{Across, CleanupArgs, StatusArgs};
use rds_handoff::flows::review::{AuditArgs, PolicyArgs};
use rds_handoff::flows::revoke::RevokeArgs;

/// Hand an RDS instance or Aurora cluster to another AWS account (source side).
///
/// Run by the source account's admin. `export` does the whole job, in this order:
///   1. checks the caller, the database and that it can be shared;
///   2. makes (or reuses) a customer managed KMS key whose policy lets the target account
///      use it only through RDS (see `src-agent policy`);
///   3. snapshots the database and copies the snapshot under that key;
///   4. shares the copy with the target account;
///   5. writes a manifest for `tgt-agent import` and prints the command to run next.
///
/// Several databases at once: repeat `--db-instance` / `--db-cluster`, or select them with
/// `--tag KEY=VALUE` or `--all`. They run concurrently within AWS's limits on copies in
/// progress; each gets its own manifest, and `rds-handoff-index.json` lists them all.
///
/// After the target has imported, `revoke` stops sharing the snapshot, removes the target
/// from the key policy and revokes its grants. Within one account, `encrypt` makes an
/// encrypted copy of an unencrypted database in the same place (snapshot, copy under a key,
/// restore). `status` lists the handoffs this account holds; `cleanup` removes what an
/// unfinished or abandoned run left. Every step is safe to repeat: re-run the same command
/// after any failure and it resumes.
#[derive(Debug, Parser)]
#[command(name = "src-agent", version, verbatim_doc_comment)]
struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Snapshot, encrypt under a shareable key, share with the target, write the manifest
    Export(Box<ExportArgs>),
    /// Print the key policy export would write (no AWS call with --source-account)
    Policy(PolicyArgs),
    /// Check a live key's policy; exits 1 on a high-severity finding
    Audit(AuditArgs),
    /// After the import: unshare the snapshot, drop the target from the key policy
    Revoke(RevokeArgs),
    /// Same account: make an encrypted copy of an unencrypted database, same placement
    Encrypt(EncryptArgs),
    /// Remove what an unfinished or abandoned export or encrypt left (never a database)
    Cleanup {
        #[command(flatten)]
        args: CleanupArgs,
        #[command(flatten)]
        across: Across,
    },
    /// List the handoffs in this account and region (and what those across regions hold in
    /// the other): stage reached, resources held
    Status {
        #[command(flatten)]
        args: StatusArgs,
        #[command(flatten)]
        across: Across,
    },
}

fn main() -> std::process::ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return parse_error(err),
    };
    let global = cli.global.clone();
    run(&cli.global, |printer| async move {
        match cli.command {
            Command::Export(args) => commands::export::run(&args, &global, &printer).await,
            Command::Policy(args) => commands::policy::run(&args, &global, &printer).await,
            Command::Audit(args) => commands::audit::run(&args, &global, &printer).await,
            Command::Revoke(args) => commands::revoke::run(&args, &global, &printer).await,
            Command::Encrypt(args) => commands::encrypt::run(&args, &global, &printer).await,
            Command::Cleanup { args, across } => {
                commands::cleanup::run(&args, &across, &global, &printer).await
            }
            Command::Status { args, across } => {
                commands::status::run(&args, &across, &global, &printer).await
            }
        }
    })
}
