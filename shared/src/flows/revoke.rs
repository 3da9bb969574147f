//! `src-agent revoke`: end a handoff at the source once the target has imported.
//!
//! Removes the target from the snapshot's `restore` attribute, the target's statements from
//! the key policy (lockout check again) and the key's grants the target account holds or made
//! (grants outlive policy edits), and optionally deletes the shared snapshot and schedules the
//! key's deletion — only a key the toolkit made for this database and target, and never while
//! it still encrypts a database or snapshot of this account in this region. Safe to re-run:
//! each step checks its own result first.

use std::path::PathBuf;

use aws_sdk_kms::types::KeyState;

use crate::aws::kms::{self, Key};
use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{sdk, Error, ExitCode, Result};
use crate::base::manifest::Manifest;
use crate::base::progress::Printer;
use crate::flows::export::{TAG_DB, TAG_ROLE, TAG_TARGET};
use crate::flows::plan::{self, Action};
use crate::policy::builder::remove_account;

#[derive(Debug, Clone, clap::Args)]
pub struct RevokeArgs {
    /// The manifest `src-agent export` wrote
    #[arg(value_name = "MANIFEST")]
    pub manifest: PathBuf,
    /// Also delete the shared snapshot
    #[arg(long)]
    pub delete_snapshot: bool,
    /// Also schedule the key's deletion after this many days (7–30)
    #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(i32).range(7..=30))]
    pub schedule_key_deletion: Option<i32>,
    /// Check and print what would be done; change nothing
    #[arg(long)]
    pub dry_run: bool,
}

pub async fn run_revoke(args: &RevokeArgs, aws: &Aws, printer: &Printer) -> Result<ExitCode> {
    let m = Manifest::read(&args.manifest)?;
    printer.set_database(&m.database.identifier);
    let caller = aws.identify(printer).await?;
    let region = m.snapshot_region();
    let in_its_regions = aws.region == m.source.region || aws.region == *region;
    if caller.account != m.source.account || !in_its_regions {
        let regions = if *region == m.source.region {
            format!("`--region {region}`")
        } else {
            format!("`--region {}` or `--region {region}`", m.source.region)
        };
        return Err(Error::refused(
            format!(
                "this manifest is for account `{}` in `{}`; you are in `{}` in `{}`",
                m.source.account, m.source.region, caller.account, aws.region
            ),
            format!("run revoke with the source account's credentials and {regions}"),
        ));
    }
    // The share, the shared copy and its key are where the shared copy is.
    let aws = &aws.at(region).await?;
    let kind = m.database.kind;
    let snapshot = m
        .snapshot
        .arn
        .resource
        .split_once(':')
        .map(|(_, id)| id.to_owned())
        .unwrap_or_default();
    let target = m.target.account.to_string();
    // A dry run says what it would do, in the plans' words; a run, what it did.
    let step = |action: Action, stage: &str, resource: &str, done: &str| {
        plan::step_or_done(printer, args.dry_run, action, stage, resource, done);
    };
    let key = match &m.snapshot.kms_key_arn {
        Some(arn) => kms::lookup(aws, arn.as_str()).await?,
        None => None,
    };
    // Refuse a key that is not the toolkit's before changing anything.
    if let (Some(_), Some((key, _))) = (args.schedule_key_deletion, &key) {
        check_key_is_ours(aws, key, &m).await?;
    }
    let exists = rds::describe_snapshot(aws, kind, &snapshot).await?;
    if exists.is_some()
        && rds::shared_with(aws, kind, &snapshot)
            .await?
            .contains(&target)
    {
        if !args.dry_run {
            rds::set_shared(aws, kind, &snapshot, &[], std::slice::from_ref(&target)).await?;
            if rds::shared_with(aws, kind, &snapshot)
                .await?
                .contains(&target)
            {
                return Err(Error::refused(
                    format!("snapshot `{snapshot}` is still shared with `{target}`"),
                    "check its sharing in the RDS console",
                ));
            }
        }
        let stage = format!("share with account {target}");
        step(
            Action::Delete,
            &stage,
            &snapshot,
            &format!("account {target} removed"),
        );
    }
    // A key that is no longer enabled (disabled, pending deletion) is left as it is.
    let mut revoked_grants = Vec::new();
    if let Some((key, Some(KeyState::Enabled) | None)) = &key {
        unlist_target(aws, key, &m.target.account, &caller, args.dry_run, &step).await?;
        revoked_grants = revoke_grants(aws, key, &m.target.account, args.dry_run, &step).await?;
    }
    if args.delete_snapshot {
        if let Some(snap) = &exists {
            if snap.tags.get(TAG_ROLE).map(String::as_str) != Some("shared-copy") {
                return Err(Error::refused(
                    format!("snapshot `{snapshot}` was not made by rds-handoff"),
                    "delete it yourself if you mean to",
                ));
            }
            if !args.dry_run {
                rds::delete_snapshot(aws, kind, &snapshot).await?;
            }
            step(Action::Delete, "shared snapshot", &snapshot, "deleted");
        }
    }
    if let (Some(days), Some(key_arn)) = (args.schedule_key_deletion, &m.snapshot.kms_key_arn) {
        let (key, state) = key.ok_or_else(|| Error::Aws {
            action: "kms:DescribeKey".into(),
            code: "NotFoundException".into(),
            message: format!("KMS key `{key_arn}` not found"),
            hint: None,
        })?;
        let pending = state == Some(KeyState::PendingDeletion);
        schedule_deletion(aws, &key, pending, days, args.dry_run, &step).await?;
    }
    let text = if args.dry_run {
        "dry run: nothing was changed"
    } else {
        "revoked: the target account can no longer use the snapshot or the key"
    };
    let json = serde_json::json!({"event": "done", "revoked": !args.dry_run, "snapshot": m.snapshot.arn.to_string(), "grants_revoked": revoked_grants});
    printer.result(text, &json);
    Ok(ExitCode::Ok)
}

async fn unlist_target(
    aws: &Aws,
    key: &Key,
    target: &crate::ident::AccountId,
    caller: &crate::aws::Caller,
    dry_run: bool,
    step: &impl Fn(Action, &str, &str, &str),
) -> Result<()> {
    let policy = kms::get_policy(aws, &key.id).await?;
    let trimmed = remove_account(policy.clone(), target);
    if trimmed == policy {
        return Ok(());
    }
    crate::policy::check_lockout(&trimmed, &caller.principal())?;
    if !dry_run {
        kms::put_policy(aws, key, &trimmed, caller).await?;
    }
    step(
        Action::Delete,
        &format!("key policy statements for account {target}"),
        &key.arn,
        &format!("statements for {target} removed"),
    );
    Ok(())
}

/// Retires the key's grants whose grantee or creator is in the target account; returns
/// their ids.
async fn revoke_grants(
    aws: &Aws,
    key: &Key,
    target: &crate::ident::AccountId,
    dry_run: bool,
    step: &impl Fn(Action, &str, &str, &str),
) -> Result<Vec<String>> {
    let in_target = |principal: Option<&str>| {
        principal
            .is_some_and(|p| p == target.as_str() || p.split(':').nth(4) == Some(target.as_str()))
    };
    let mut revoked = Vec::new();
    let mut pages = aws
        .kms
        .list_grants()
        .key_id(&key.arn)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("kms:ListGrants"))?;
        for grant in page.grants() {
            let (Some(id), true) = (
                grant.grant_id(),
                in_target(grant.grantee_principal()) || in_target(grant.issuing_account()),
            ) else {
                continue;
            };
            if !dry_run {
                aws.kms
                    .revoke_grant()
                    .key_id(&key.arn)
                    .grant_id(id)
                    .send()
                    .await
                    .map_err(sdk("kms:RevokeGrant"))?;
            }
            step(
                Action::Delete,
                &format!("key grant held or made by account {target}"),
                id,
                "revoked",
            );
            revoked.push(id.to_owned());
        }
    }
    Ok(revoked)
}

/// Only a key the toolkit made for this database and target may be scheduled for deletion:
/// one passed with `export --kms-key-id` belongs to someone else.
async fn check_key_is_ours(aws: &Aws, key: &Key, m: &Manifest) -> Result<()> {
    let tags = kms::tags(aws, &key.id).await?;
    let ours = tags.get(TAG_DB) == Some(&m.database.identifier)
        && tags.get(TAG_TARGET).map(String::as_str) == Some(m.target.account.as_str());
    if ours {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "key `{}` was not made by rds-handoff for `{}` and account `{}` (it lacks the toolkit's `{TAG_DB}` and `{TAG_TARGET}` tags, e.g. it was passed with `export --kms-key-id`): revoke does not schedule its deletion",
            key.arn, m.database.identifier, m.target.account
        ),
        format!(
            "if nothing else uses it, schedule it yourself: `aws kms schedule-key-deletion --key-id {} --pending-window-in-days 30`",
            key.arn
        ),
    ))
}

/// Schedules deletion unless the key still encrypts a database, snapshot or secret here.
async fn schedule_deletion(
    aws: &Aws,
    key: &Key,
    pending: bool,
    days: i32,
    dry_run: bool,
    step: &impl Fn(Action, &str, &str, &str),
) -> Result<()> {
    let users = kms::users(aws, key).await?;
    if !users.is_empty() {
        return Err(Error::refused(
            format!("key `{}` still encrypts {}: deleting it would make them unreadable", key.arn, users.join(", ")),
            "delete or re-key those first (add `--delete-snapshot` for the shared snapshot), then re-run",
        ));
    }
    if !pending && !dry_run {
        kms::schedule_deletion(aws, key, days).await?;
    }
    if pending {
        step(
            Action::Skip,
            "key (its deletion scheduled already)",
            &key.arn,
            "deletion scheduled already",
        );
    } else {
        let stage = format!("key (its deletion scheduled in {days} days)");
        step(Action::Delete, &stage, &key.arn, "scheduled");
    }
    Ok(())
}
