//! `status`: the handoffs in an account and region, each with the stage it reached, read
//! from what the toolkit holds there (or, with `--execution`, a Step Functions execution
//! followed to its end).

use std::collections::BTreeMap;

use super::{crossing, scan_across, Across, Held, Select, Side};
use crate::aws::Aws;
use crate::base::error::{ExitCode, Result};
use crate::base::progress::Printer;
use crate::flows::encrypt::TAG_ENCRYPTED_FROM;

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
                return match (db.status.as_str(), &db.source_password) {
                    (status, Some(_)) => {
                        format!("restored ({status}), STILL ON THE SOURCE'S MASTER PASSWORD")
                    }
                    ("available", None) => "imported".into(),
                    (status, None) => format!("restored ({status})"),
                };
            }
            if role("intermediate").is_some() {
                return "shared snapshot copied".into();
            }
        }
    }
    match (database, items.iter().find(|h| h.kind == "kms-key")) {
        (Some(db), _) => format!("{} `{}` ({})", db.kind, db.id, db.status),
        (None, Some(key)) if key.status == "PendingDeletion" => {
            "ended: only the key is left, its deletion scheduled".into()
        }
        (None, Some(key)) if side == Side::Source => format!(
            "only the key is left ({}): nothing shared yet, or revoked since",
            key.status
        ),
        (None, Some(key)) => format!(
            "only the key is left ({}): nothing copied yet, or cleaned up since",
            key.status
        ),
        (None, None) => "started".into(),
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct StatusArgs {
    /// Only this database: its name as the handoff knows it, or the identifier of a database
    /// the toolkit made for it (a restored database, an encrypted copy)
    #[arg(long = "db", value_name = "ID")]
    pub database: Option<String>,
    /// Follow this Step Functions execution (`--engine step-functions --detach`) to its end
    #[arg(long, value_name = "ARN", conflicts_with = "database")]
    pub execution: Option<String>,
    /// With `--execution`: give up following after this long (the execution goes on)
    #[arg(long, value_name = "DURATION", default_value = "4h", value_parser = crate::aws::wait::parse_duration)]
    pub wait_timeout: std::time::Duration,
}

/// The name a handoff is listed under: the database's, and for one across regions the
/// two regions, apart from a handoff within one of them of a database of the same name.
fn handoff_of(h: &Held) -> String {
    match crossing(h) {
        Some((from, to)) => format!("{} ({from} to {to})", h.database),
        None => h.database.clone(),
    }
}

/// `status`: the handoffs in this account and region, from the toolkit's tags.
pub async fn run_status(
    args: &StatusArgs,
    across: &Across,
    side: Side,
    aws: &Aws,
    printer: &Printer,
) -> Result<ExitCode> {
    if args.execution.is_some() && !across.target_regions.is_empty() {
        return Err(crate::base::error::Error::usage(
            "`--target-region` lists handoffs; `--execution` follows one execution",
        ));
    }
    aws.identify(printer).await?;
    if let Some(execution) = &args.execution {
        let wait = crate::aws::wait::WaitPolicy::new(args.wait_timeout);
        crate::workflow::states::follow(aws, execution, None, &[], wait, printer).await?;
        printer.result(
            &format!("execution {execution} succeeded: run the same command again to finish (it attaches and repeats nothing)"),
            &serde_json::json!({ "execution": execution, "status": "SUCCEEDED" }),
        );
        return Ok(ExitCode::Ok);
    }
    let only = match &args.database {
        Some(db) => Some(crate::ident::check_rds_id(
            crate::ident::RdsIdKind::Instance,
            db,
        )?),
        None => None,
    };
    let select = only.as_deref().map_or(Select::All, Select::Named);
    let found = scan_across(aws, side, select, &across.target_regions, false, printer).await?;
    let all: Vec<Held> = found.into_iter().map(|(_, h)| h).collect();
    let mut by_handoff: BTreeMap<String, Vec<&Held>> = BTreeMap::new();
    for h in &all {
        by_handoff.entry(handoff_of(h)).or_default().push(h);
    }
    let mut text = String::new();
    let mut handoffs = Vec::new();
    for (handoff, items) in &by_handoff {
        let stage = stage(side, items);
        text.push_str(&format!("{handoff}: {stage}\n"));
        for h in items {
            // A copy for the target is tagged so from the start: say whether it is shared.
            let role = match (h.role.as_deref(), h.shared_with.is_empty()) {
                (Some("shared-copy"), true) => {
                    ", copy for the target, not shared (not yet, or revoked)".into()
                }
                (Some("shared-copy"), false) => {
                    format!(", shared with {}", h.shared_with.join(", "))
                }
                (Some(role), _) => format!(", {role}"),
                (None, _) => String::new(),
            };
            let encryption = h
                .encryption
                .map(|e| format!(", {}", e.as_str()))
                .unwrap_or_default();
            let place = match h.region == aws.region {
                true => String::new(),
                false => format!(", in {}", h.region),
            };
            text.push_str(&format!(
                "  {} {} ({}{role}{encryption}{place})\n",
                h.kind, h.id, h.status
            ));
        }
        let unfinished: Vec<_> = items
            .iter()
            .filter_map(|h| h.source_password.as_ref())
            .collect();
        for left in &unfinished {
            text.push_str(&format!("  WARNING: {}\n", left.warning(None)));
        }
        let database = items.first().map_or("", |h| h.database.as_str());
        let mut handoff =
            serde_json::json!({"database": database, "stage": stage, "resources": items});
        if let (Some((from, to)), Some(object)) = (
            items.first().and_then(|h| crossing(h)),
            handoff.as_object_mut(),
        ) {
            object.insert("source_region".into(), from.into());
            object.insert("target_region".into(), to.into());
        }
        if let (Some(left), Some(object)) = (unfinished.first(), handoff.as_object_mut()) {
            object.insert("warning".into(), left.warning(None).into());
            object.insert("finish".into(), left.command(None).into());
        }
        handoffs.push(handoff);
    }
    if text.is_empty() {
        let region = aws.region.as_str();
        let also: Vec<String> = across
            .target_regions
            .iter()
            .map(|r| format!("`{r}`"))
            .collect();
        let regions = match also.as_slice() {
            [] => format!("region `{region}`"),
            more => format!(
                "region `{region}`, nor of its handoffs in {}",
                more.join(", ")
            ),
        };
        text = match &only {
            Some(db) => format!(
                "no rds-handoff resources for `{db}` in this account and {regions} (`status` without `--db` lists them all)"
            ),
            None => format!(
                "no rds-handoff resources in this account and {regions}"
            ),
        };
    }
    printer.result(
        text.trim_end(),
        &serde_json::json!({"event": "done", "region": aws.region.as_str(), "handoffs": handoffs}),
    );
    Ok(ExitCode::Ok)
}
