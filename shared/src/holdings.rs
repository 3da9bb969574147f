//! What the toolkit holds in an account and region, found by its tags and grouped by
//! database: `status` lists it with the stage each handoff reached, `cleanup` removes what an
//! unfinished or abandoned run left — intermediate snapshots and copies, temporary clusters,
//! unshared copies, a key the toolkit made that nothing uses — and never a database, a
//! secret, a snapshot still shared, or anything without the toolkit's tags.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::PathBuf;

use aws_sdk_kms::types::KeyState;
use serde::Serialize;

use crate::aws::Aws;
use crate::encrypt::TAG_ENCRYPTED_FROM;
use crate::error::{sdk, ExitCode, Result};
use crate::export::{TAG_DB, TAG_ROLE};
use crate::kms::{self, Key, ALIAS_TAG};
use crate::manifest::{DbKind, Manifest};
use crate::progress::{Event, Printer, Progress};
use crate::rds;
use crate::state::{self, State};

type Tags = BTreeMap<String, String>;

/// One resource the toolkit made.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub database: String,
    /// As in the state file: `kms-key`, `db-snapshot`, `db-cluster-snapshot`, `db-instance`,
    /// `db-cluster`, `secret`.
    pub kind: &'static str,
    pub id: String,
    /// The toolkit's `rds-handoff:role` tag (`intermediate`, `shared-copy`, …).
    pub role: Option<String>,
    pub status: String,
    /// Accounts a snapshot is shared with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    #[serde(skip)]
    pub tags: Tags,
}

/// Which agent asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

/// The database a resource belongs to, from its tags.
fn database_of(tags: &Tags) -> Option<String> {
    tags.get(TAG_DB)
        .or_else(|| tags.get(TAG_ENCRYPTED_FROM))
        .cloned()
}

fn held(kind: &'static str, id: &str, status: &str, tags: Tags) -> Option<Held> {
    Some(Held {
        database: database_of(&tags)?,
        kind,
        id: id.to_owned(),
        role: tags.get(TAG_ROLE).cloned(),
        status: status.to_owned(),
        shared_with: Vec::new(),
        tags,
    })
}

/// Everything the toolkit holds here, for `database` or for every database.
pub async fn scan(aws: &Aws, side: Side, database: Option<&str>) -> Result<Vec<Held>> {
    // The toolkit makes manual snapshots; automated ones may carry a restored database's tags.
    let mut found: Vec<Held> = rds::list_all(aws)
        .await?
        .into_iter()
        .filter(|r| r.snapshot_type.as_deref().is_none_or(|t| t == "manual"))
        .filter_map(|r| held(r.kind, &r.id, &r.status, r.tags))
        .collect();
    found.extend(keys(aws).await?);
    // Only the target stores secrets.
    if side == Side::Target {
        found.extend(secrets(aws).await?);
    }
    found.retain(|h| database.is_none_or(|d| h.database == d));
    for h in found
        .iter_mut()
        .filter(|h| h.role.as_deref() == Some("shared-copy"))
    {
        let kind = if h.kind == "db-snapshot" {
            DbKind::Instance
        } else {
            DbKind::Cluster
        };
        h.shared_with = rds::shared_with(aws, kind, &h.id).await?;
    }
    found.sort_by(|a, b| (&a.database, a.kind, &a.id).cmp(&(&b.database, b.kind, &b.id)));
    Ok(found)
}

/// The toolkit's keys (those that carry its alias tag).
async fn keys(aws: &Aws) -> Result<Vec<Held>> {
    let mut found = Vec::new();
    let mut pages = aws.kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        for entry in page.map_err(sdk("kms:ListKeys"))?.keys() {
            let Some(id) = entry.key_id() else { continue };
            let tags = match kms::tags(aws, id).await {
                Ok(tags) if tags.contains_key(ALIAS_TAG) => tags,
                Ok(_) => continue,
                Err(err) if err.aws_code() == Some("AccessDeniedException") => continue,
                Err(err) => return Err(err),
            };
            let Some((key, state)) = kms::lookup(aws, id).await? else {
                continue;
            };
            let state = state.map(|s| s.as_str().to_owned()).unwrap_or_default();
            found.extend(held("kms-key", &key.arn, &state, tags));
        }
    }
    Ok(found)
}

/// The toolkit's secrets (tagged with the database).
async fn secrets(aws: &Aws) -> Result<Vec<Held>> {
    let mut found = Vec::new();
    let mut pages = aws.secrets.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        for s in page
            .map_err(sdk("secretsmanager:ListSecrets"))?
            .secret_list()
        {
            let tags: Tags = s
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect();
            found.extend(held("secret", s.name().unwrap_or_default(), "stored", tags));
        }
    }
    Ok(found)
}

/// How far a handoff got, from what it holds.
pub fn stage(side: Side, items: &[&Held]) -> String {
    let role = |r: &str| items.iter().find(|h| h.role.as_deref() == Some(r));
    let database = items
        .iter()
        .find(|h| h.kind.starts_with("db-") && !h.kind.ends_with("snapshot"));
    match side {
        Side::Source => {
            if let Some(copy) = role("shared-copy") {
                return match copy.shared_with.is_empty() {
                    true => "copied, not shared".into(),
                    false => format!("shared with {}", copy.shared_with.join(", ")),
                };
            }
            if role("temporary-cluster").is_some() {
                return "encrypting through a temporary cluster".into();
            }
            if let Some(twin) = items
                .iter()
                .find(|h| h.tags.contains_key(TAG_ENCRYPTED_FROM))
            {
                return format!("encrypted copy `{}` ({})", twin.id, twin.status);
            }
            if role("intermediate").is_some() {
                return "snapshot taken".into();
            }
        }
        Side::Target => {
            if let Some(db) = role("restored-database") {
                let password = items
                    .iter()
                    .any(|h| h.kind == "secret" && h.tags.contains_key("rds-handoff:password-set"));
                return match (db.status.as_str(), password) {
                    ("available", true) => "imported".into(),
                    (status, _) => format!("restored ({status}), password not yet set"),
                };
            }
            if role("intermediate").is_some() {
                return "shared snapshot copied".into();
            }
        }
    }
    match (database, items.iter().any(|h| h.kind == "kms-key")) {
        (Some(db), _) => format!("{} `{}` ({})", db.kind, db.id, db.status),
        (None, true) => "key made, nothing else".into(),
        (None, false) => "started".into(),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Only this database
    #[arg(long = "db", value_name = "ID")]
    pub database: Option<String>,
    /// Follow this Step Functions execution (`--engine step-functions --detach`) to its end
    #[arg(long, value_name = "ARN", conflicts_with = "database")]
    pub execution: Option<String>,
    /// With `--execution`: give up following after this long (the execution goes on)
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = crate::wait::parse_duration)]
    pub wait_timeout: std::time::Duration,
}

/// `status`: the handoffs in this account and region, from the toolkit's tags.
pub async fn run_status(
    args: &StatusArgs,
    side: Side,
    aws: &Aws,
    printer: &Printer,
) -> Result<ExitCode> {
    aws.identify(printer).await?;
    if let Some(execution) = &args.execution {
        let wait = crate::wait::WaitPolicy::new(args.wait_timeout);
        crate::workflow::states::follow(aws, execution, None, &[], wait, printer).await?;
        printer.result(
            &format!("execution {execution} succeeded: run the same command again to finish (it attaches and repeats nothing)"),
            &serde_json::json!({ "execution": execution, "status": "SUCCEEDED" }),
        );
        return Ok(ExitCode::Ok);
    }
    let all = scan(aws, side, args.database.as_deref()).await?;
    let mut by_database: BTreeMap<&str, Vec<&Held>> = BTreeMap::new();
    for h in &all {
        by_database.entry(h.database.as_str()).or_default().push(h);
    }
    let mut text = String::new();
    let mut handoffs = Vec::new();
    for (database, items) in &by_database {
        let stage = stage(side, items);
        text.push_str(&format!("{database}: {stage}\n"));
        for h in items {
            let role = h
                .role
                .as_deref()
                .map(|r| format!(", {r}"))
                .unwrap_or_default();
            text.push_str(&format!("  {} {} ({}{role})\n", h.kind, h.id, h.status));
        }
        handoffs
            .push(serde_json::json!({"database": database, "stage": stage, "resources": items}));
    }
    if text.is_empty() {
        text = format!(
            "no rds-handoff resources in this account and region `{}`",
            aws.region
        );
    }
    printer.result(
        text.trim_end(),
        &serde_json::json!({"event": "done", "region": aws.region.as_str(), "handoffs": handoffs}),
    );
    Ok(ExitCode::Ok)
}

/// `cleanup` on either side.
#[derive(Debug, Clone, clap::Args)]
pub struct CleanupArgs {
    /// The manifest (`<db>.handoff.json`) or, on the target, the import report
    /// (`<db>.import.json`) of the handoff to clean up
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

impl CleanupArgs {
    /// The database and the state file a run left for it.
    fn resolve(&self, side: Side) -> Result<(String, Option<PathBuf>)> {
        let Some(file) = &self.file else {
            let database = self.database.clone().unwrap_or_default();
            crate::ident::check_rds_id(crate::ident::RdsIdKind::Instance, &database)?;
            return Ok((database, None));
        };
        let state = Some(state::path_beside(file));
        let report = std::fs::read_to_string(file)
            .ok()
            .and_then(|text| serde_json::from_str::<crate::import::ImportReport>(&text).ok());
        match report {
            Some(report) if side == Side::Target => Ok((report.db_identifier, state)),
            _ => Ok((Manifest::read(file)?.database.identifier, state)),
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
                    "still shared: end the handoff with `src-agent revoke --delete-snapshot`",
                )
            }
        }
        ("db-cluster", Some("temporary-cluster")) => (true, "temporary cluster"),
        ("kms-key", _) => (h.status == KeyState::Enabled.as_str(), "the toolkit's key"),
        _ => (false, "never removed by cleanup"),
    }
}

/// `cleanup`: removes what an unfinished or abandoned run left for one database.
pub async fn run_cleanup(
    args: &CleanupArgs,
    side: Side,
    aws: &Aws,
    printer: &Printer,
) -> Result<ExitCode> {
    let (database, state_path) = args.resolve(side)?;
    printer.set_database(&database);
    aws.identify(printer).await?;
    if let Some(path) = &state_path {
        let recorded = State::read(path);
        for c in &recorded.created {
            printer.event(&Event::step("recorded by the run", &c.id, &c.kind));
        }
    }
    let mut removed = Vec::new();
    let mut kept = Vec::new();
    for h in scan(aws, side, Some(&database)).await? {
        let (remove, why) = decide(&h, side);
        let done = if remove {
            remove_one(aws, &h, args, printer).await?
        } else {
            None
        };
        match done {
            Some(what) => {
                removed.push(serde_json::json!({"kind": h.kind, "id": h.id, "done": what}))
            }
            None => {
                let reason = if remove {
                    "not removed (see above)"
                } else {
                    why
                };
                printer.event(&Event::step("keep", &h.id, reason));
                kept.push(serde_json::json!({"kind": h.kind, "id": h.id, "why": reason}));
            }
        }
    }
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    let text = if removed.is_empty() {
        format!("nothing to clean up for `{database}`")
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
    printer.result(&text, &serde_json::json!({"event": "done", "dry_run": args.dry_run, "removed": removed, "kept": kept}));
    Ok(ExitCode::Ok)
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
            printer.event(&Event::step(
                "delete snapshot",
                &h.id,
                h.role.as_deref().unwrap_or_default(),
            ));
            Ok(Some("deleted"))
        }
        "db-cluster" => {
            let deleting = h.status == "deleting";
            if !args.dry_run && !deleting && !rds::delete_own_cluster(aws, &h.id, &marks).await? {
                return Ok(None);
            }
            printer.event(&Event::step("delete temporary cluster", &h.id, ""));
            Ok(Some("deleted"))
        }
        "kms-key" => retire_key(aws, h, args, printer).await,
        _ => Ok(None),
    }
}

/// Schedules the deletion of a key the toolkit made, once nothing here uses it.
async fn retire_key(
    aws: &Aws,
    h: &Held,
    args: &CleanupArgs,
    printer: &Printer,
) -> Result<Option<&'static str>> {
    let Some((key, _)) = kms::lookup(aws, &h.id).await? else {
        return Ok(None);
    };
    let users = kms::encrypting(aws, &key).await?;
    if !users.is_empty() {
        printer.event(&Event::step(
            "keep key",
            &key.arn,
            &format!("still encrypts {}", users.join(", ")),
        ));
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
    let status = format!("deletion in {days} days (cancel with `aws kms cancel-key-deletion`)");
    printer.event(&Event::step("schedule key deletion", &key.arn, &status));
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
