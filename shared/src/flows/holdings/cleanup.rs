//! `cleanup`: removes what an unfinished or abandoned run left for one database, and only
//! what the toolkit made and nothing still needs (never a database, a secret, a snapshot
//! still shared). A restored database still on the source's master password is not
//! something it can remove: it says so, with the import that finishes the job, and exits 1.

use std::io::IsTerminal;
use std::path::PathBuf;

use aws_sdk_kms::types::KeyState;

use super::{cleanable_from, crossing, scan, scan_across, Across, Held, Select, Side};
use crate::aws::kms::{self, Key};
use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{Error, ExitCode, Result};
use crate::base::manifest::Manifest;
use crate::base::progress::{Event, Printer, Progress};
use crate::base::state::{self, State};
use crate::base::vocabulary::DbKind;
use crate::flows::export::{TAG_DB, TAG_ROLE, TAG_TARGET};
use crate::flows::plan::{self, Action};

/// `cleanup` on either side.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    /// The handoff to clean up: its manifest (`<db>.handoff.json`); with `tgt-agent`, also
    /// its import report (`<db>.import.json`)
    #[arg(value_name = "FILE", required_unless_present = "database")]
    pub file: Option<PathBuf>,
    /// Or the database, by identifier (the restored one on the target)
    #[arg(long = "db", value_name = "ID", conflicts_with = "file")]
    pub database: Option<String>,
    /// Schedule the deletion of a key the toolkit made and nothing uses, without asking
    #[arg(long)]
    pub yes: bool,
    /// The key's waiting period before deletion, in days (7–30)
    #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(i32).range(7..=30))]
    pub key_deletion_days: i32,
    /// Say what would be removed; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// The handoff `cleanup` was given.
struct Given {
    database: String,
    /// The state file a run left for it.
    state: Option<PathBuf>,
    /// The manifest, when the file given is one.
    manifest: Option<PathBuf>,
}

impl CleanupArgs {
    /// The database, the state file a run left for it, and the manifest if given.
    fn resolve(&self, side: Side) -> Result<Given> {
        let Some(file) = &self.file else {
            let database = self.database.clone().unwrap_or_default();
            let database =
                crate::ident::check_rds_id(crate::ident::RdsIdKind::Instance, &database)?;
            return Ok(Given {
                database,
                state: None,
                manifest: None,
            });
        };
        let state = Some(state::path_beside(file));
        let report = std::fs::read_to_string(file).ok().and_then(|text| {
            serde_json::from_str::<crate::flows::import::ImportReport>(&text).ok()
        });
        match report {
            Some(report) if side == Side::Target => Ok(Given {
                database: report.db_identifier,
                state,
                manifest: None,
            }),
            Some(_) => Err(Error::Usage {
                message: format!("`{}` is a target's import report", file.display()),
                hint: Some(
                    "on the source, pass the manifest (`<db>.handoff.json`) or `--db <database>`"
                        .into(),
                ),
            }),
            _ => Ok(Given {
                database: Manifest::read(file)?.database.identifier,
                state,
                manifest: Some(file.clone()),
            }),
        }
    }
}

/// What cleanup does with one resource, and why.
fn decide(h: &Held, side: Side) -> (bool, &'static str) {
    match (h.kind, h.role.as_deref()) {
        ("db-snapshot" | "db-cluster-snapshot", Some("intermediate")) => (true, "intermediate"),
        ("db-snapshot" | "db-cluster-snapshot", Some("shared-copy")) if side == Side::Source => {
            if h.shared_with.is_empty() {
                (true, "copy never shared")
            } else {
                (
                    false,
                    "still shared: end the handoff with `src-agent revoke <MANIFEST> --delete-snapshot`",
                )
            }
        }
        ("db-cluster", Some("temporary-cluster")) => (true, "temporary cluster"),
        ("kms-key", _) => (h.status == KeyState::Enabled.as_str(), "the toolkit's key"),
        _ => (false, "never removed by cleanup"),
    }
}

/// What a handoff given by its manifest left, each with its region's clients: on the
/// source, in both regions of a cross-region handoff (the intermediate snapshot where the
/// database is, the copy and key in the target region); on the target, in the shared
/// snapshot's region, where it imports.
async fn named_by(
    aws: &Aws,
    side: Side,
    manifest: &std::path::Path,
    database: &str,
) -> Result<Vec<(Aws, Held)>> {
    let m = Manifest::read(manifest)?;
    let there = aws.at(m.snapshot_region()).await?;
    let places = match (&m.target.region, side) {
        (Some(_), Side::Source) => vec![aws.at(&m.source.region).await?, there],
        _ => vec![there],
    };
    let mut held = Vec::new();
    for place in places {
        let found = scan(&place, side, Select::Handoff(database)).await?;
        let found = found.into_iter().filter(|h| of_manifest(&m, side, h));
        held.extend(found.map(|h| (place.clone(), h)));
    }
    Ok(held)
}

/// Whether what the source found belongs to the handoff the manifest names (its target
/// account, its regions), apart from handoffs of a database of the same name to another
/// account, within either region, or from the other one.
fn of_manifest(m: &Manifest, side: Side, h: &Held) -> bool {
    if side == Side::Target {
        return true;
    }
    let account = m.target.account.as_str();
    // A key serves every target of the database (its alias is the database's): retiring it
    // checks that nothing uses it.
    let for_target = h.kind == "kms-key" || h.tags.get(TAG_TARGET).is_none_or(|t| t == account);
    let belongs = match &m.target.region {
        None => crossing(h).is_none(),
        Some(to) => crossing(h) == Some((m.source.region.to_string(), to.to_string())),
    };
    for_target && belongs
}

/// Refuses `cleanup --db` here when all the toolkit holds here for that name belongs to a
/// handoff of a database of that name in another region: it is cleaned up from there.
fn refuse_only_from_elsewhere(found: &[(Aws, Held)], database: &str, here: &str) -> Result<()> {
    if found.iter().any(|(_, h)| cleanable_from(h, here)) {
        return Ok(());
    }
    let Some((from, to)) = found.iter().find_map(|(_, h)| crossing(h)) else {
        return Ok(());
    };
    Err(Error::refused(
        format!("what rds-handoff holds here for `{database}` belongs to the handoff of a database of that name in `{from}`"),
        format!("clean it up from there: `src-agent cleanup --db {database} --region {from} --target-region {to}`"),
    ))
}

/// `cleanup`: removes what an unfinished or abandoned run left for one database.
pub async fn run_cleanup(
    args: &CleanupArgs,
    across: &Across,
    side: Side,
    aws: &Aws,
    printer: &Printer,
) -> Result<ExitCode> {
    let Given {
        database,
        state: state_path,
        manifest,
    } = args.resolve(side)?;
    if manifest.is_some() && !across.target_regions.is_empty() {
        return Err(Error::usage(
            "`--target-region` goes with `--db`: a manifest names its handoff's regions",
        ));
    }
    printer.set_database(&database);
    let caller = aws.identify(printer).await?;
    let mut recorded = 0;
    if let Some(path) = &state_path {
        let state = State::read(path);
        for c in &state.created {
            printer.event(&Event::step("recorded by the run", &c.id, &c.kind));
        }
        recorded = state.created.len();
    }
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    let held = match manifest.as_deref() {
        Some(manifest) => named_by(aws, side, manifest, &database).await?,
        None => {
            let select = Select::Handoff(&database);
            let also = &across.target_regions;
            let mut found = scan_across(aws, side, select, also, true, printer).await?;
            let here = aws.region.as_str();
            if side == Side::Source {
                refuse_only_from_elsewhere(&found, &database, here)?;
            }
            found.retain(|(_, h)| side == Side::Target || cleanable_from(h, here));
            found
        }
    };
    if held.is_empty() && recorded == 0 && !database_exists(aws, &database).await? {
        return Err(Error::refused(
            format!(
                "no database `{database}` and nothing rds-handoff made for it in account `{}`, region `{}`{}",
                caller.account,
                aws.region,
                across
                    .target_regions
                    .iter()
                    .map(|r| format!(" (nor in `{r}`)"))
                    .collect::<String>()
            ),
            "check the identifier (on the target: the restored database's) and `--region`; `status` lists the handoffs here",
        ));
    }
    let unfinished: Vec<_> = held
        .iter()
        .filter_map(|(_, h)| h.source_password.clone())
        .collect();
    for (place, h) in held {
        let (remove, why) = decide(&h, side);
        let done = if remove {
            remove_one(&place, &h, args, printer).await?
        } else {
            None
        };
        match done {
            Some(what) => {
                removed.push(serde_json::json!({"kind": h.kind, "id": h.id, "region": place.region.as_str(), "done": what}))
            }
            None => {
                // A key says itself why it stays; anything else that was to go no longer
                // carries the toolkit's marks (changed since the scan).
                let reason = if !remove {
                    why
                } else if h.kind == "kms-key" {
                    "in use, or not confirmed"
                } else {
                    "no longer carries the toolkit's tags"
                };
                if !(remove && h.kind == "kms-key") {
                    let stage = format!("{} ({reason})", h.kind);
                    plan::step_or_done(printer, args.dry_run, Action::Skip, &stage, &h.id, "kept");
                }
                kept.push(serde_json::json!({"kind": h.kind, "id": h.id, "region": place.region.as_str(), "why": reason}));
            }
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let mut text = if removed.is_empty() && unfinished.is_empty() {
        format!("nothing to clean up for `{database}`")
    } else if removed.is_empty() {
        format!("nothing to remove for `{database}`")
    } else {
        let list: Vec<String> = removed
            .iter()
            .map(|r| {
                format!(
                    "{} {}",
                    r["id"].as_str().unwrap_or_default(),
                    r["done"].as_str().unwrap_or_default()
                )
            })
            .collect();
        format!("{verb}: {}", list.join(", "))
    };
    let mut source_password = Vec::new();
    for left in &unfinished {
        let warning = left.warning(manifest.as_deref());
        text.push_str(&format!("\nWARNING: {warning}"));
        source_password.push(serde_json::json!({
            "database": left.database,
            "warning": warning,
            "finish": left.command(manifest.as_deref()),
        }));
    }
    printer.result(&text, &serde_json::json!({"event": "done", "dry_run": args.dry_run, "removed": removed, "kept": kept, "source_password": source_password}));
    // Not clean while a database answers to the source's password.
    Ok(if unfinished.is_empty() {
        ExitCode::Ok
    } else {
        ExitCode::Failure
    })
}

/// Whether an instance or a cluster of that identifier is here.
async fn database_exists(aws: &Aws, id: &str) -> Result<bool> {
    for kind in [DbKind::Instance, DbKind::Cluster] {
        if rds::describe_db(aws, kind, id).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes one resource; `None` when it stays (a key still in use, or not confirmed).
async fn remove_one(
    aws: &Aws,
    h: &Held,
    args: &CleanupArgs,
    printer: &Printer,
) -> Result<Option<&'static str>> {
    let marks = [
        (TAG_DB, h.database.as_str()),
        (TAG_ROLE, h.role.as_deref().unwrap_or_default()),
    ];
    match h.kind {
        "db-snapshot" | "db-cluster-snapshot" => {
            let kind = if h.kind == "db-snapshot" {
                DbKind::Instance
            } else {
                DbKind::Cluster
            };
            if !args.dry_run && !rds::delete_own_snapshot(aws, kind, &h.id, &marks).await? {
                return Ok(None);
            }
            let stage = format!("{} snapshot", h.role.as_deref().unwrap_or_default());
            plan::step_or_done(
                printer,
                args.dry_run,
                Action::Delete,
                &stage,
                &h.id,
                "deleted",
            );
            Ok(Some("deleted"))
        }
        "db-cluster" => {
            let deleting = h.status == "deleting";
            if !args.dry_run && !deleting && !rds::delete_own_cluster(aws, &h.id, &marks).await? {
                return Ok(None);
            }
            let stage = "temporary cluster";
            plan::step_or_done(
                printer,
                args.dry_run,
                Action::Delete,
                stage,
                &h.id,
                "deleted",
            );
            Ok(Some("deleted"))
        }
        "kms-key" => retire_key(aws, h, args, printer).await,
        _ => Ok(None),
    }
}

/// Schedules the deletion of a key the toolkit made, once nothing here uses it: no
/// database, snapshot or secret ([`kms::users`]).
async fn retire_key(
    aws: &Aws,
    h: &Held,
    args: &CleanupArgs,
    printer: &Printer,
) -> Result<Option<&'static str>> {
    let Some((key, _)) = kms::lookup(aws, &h.id).await? else {
        let stage = "key (no longer found)";
        plan::step_or_done(printer, args.dry_run, Action::Skip, stage, &h.id, "gone");
        return Ok(None);
    };
    let users = kms::users(aws, &key).await?;
    if !users.is_empty() {
        let why = format!("still encrypts {}", users.join(", "));
        let stage = format!("key ({why})");
        plan::step_or_done(printer, args.dry_run, Action::Skip, &stage, &key.arn, &why);
        return Ok(None);
    }
    let days = args.key_deletion_days;
    if !args.dry_run && !confirmed(&key, days, args.yes) {
        printer.event(&Event::warning(
            "keep key",
            &key.arn,
            "not confirmed: pass `--yes` to schedule its deletion",
        ));
        return Ok(None);
    }
    if !args.dry_run {
        kms::schedule_deletion(aws, &key, days).await?;
    }
    let status = "scheduled (cancel with `aws kms cancel-key-deletion`)";
    let stage = format!("key (its deletion scheduled in {days} days)");
    plan::step_or_done(
        printer,
        args.dry_run,
        Action::Delete,
        &stage,
        &key.arn,
        status,
    );
    Ok(Some("scheduled for deletion"))
}

/// `--yes`, or a "y" typed at the terminal.
fn confirmed(key: &Key, days: i32, yes: bool) -> bool {
    if yes {
        return true;
    }
    if !std::io::stdin().is_terminal() {
        return false;
    }
    eprint!(
        "schedule the deletion of key {} in {days} days? [y/N] ",
        key.arn
    );
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok() && answer.trim().eq_ignore_ascii_case("y")
}
