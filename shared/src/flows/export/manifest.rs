//! The manifest the target imports from: written once the shared copy is checked, read
//! back to find an export already finished; and the command the target runs next.

use crate::aws::kms;
use crate::aws::rds::{self, DbInfo, Snap};
use crate::aws::{Aws, Caller};
use crate::base::error::{Error, Result};
use crate::base::manifest::{
    is_user_tag, Database, Manifest, SharedSnapshot, SourceSide, TargetSide, SCHEMA_VERSION,
    SCHEMA_WITHIN_REGION,
};
use crate::base::progress::Progress;
use crate::base::vocabulary::Encryption;
use crate::flows::plan::{self, Action};
use crate::ident::AccountId;

use super::tags::{base_tags, with_role};
use super::{ExportPlan, ExportReport};

pub fn now() -> String {
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::now_utc()
        .format(&format)
        .unwrap_or_default()
}

/// The manifest of this export, from the database, the checked shared copy and the digest of
/// its data (`--verify-data`), written to the plan's path.
pub(super) fn write_manifest(
    aws: &Aws,
    plan: &ExportPlan,
    caller: &Caller,
    db: &DbInfo,
    snapshot: &Snap,
    source_encryption: Encryption,
    data: Option<crate::datacheck::Digest>,
) -> Result<Manifest> {
    let manifest = Manifest {
        schema: match plan.target_region {
            Some(_) => SCHEMA_VERSION,
            None => SCHEMA_WITHIN_REGION,
        },
        tool_version: env!("CARGO_PKG_VERSION").into(),
        created_at: now(),
        source: SourceSide {
            account: caller.account.clone(),
            region: aws.region.clone(),
            partition: aws.partition.clone(),
        },
        target: TargetSide {
            account: plan.target.clone(),
            principal: plan.target_principal.clone(),
            region: plan.target_region.clone(),
        },
        database: Database {
            tags: db
                .database
                .tags
                .iter()
                .filter(|(k, _)| is_user_tag(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            ..db.database.clone()
        },
        snapshot: SharedSnapshot {
            arn: snapshot.arn.parse()?,
            encrypted: snapshot.encryption.is_encrypted(),
            // The key the snapshot *is* encrypted with, as AWS reports it.
            kms_key_arn: match (&snapshot.kms_key_id, snapshot.encryption) {
                (Some(arn), Encryption::KmsKey) => Some(arn.parse()?),
                _ => None,
            },
            source_encryption: Some(source_encryption),
        },
        data,
    };
    manifest.write(&plan.manifest_path)?;
    Ok(manifest)
}

/// A finished export: the manifest exists, names this run's snapshot, and AWS agrees.
pub(super) async fn finished(aws: &Aws, plan: &ExportPlan) -> Result<Option<ExportReport>> {
    let Ok((manifest, fingerprint)) = Manifest::read_fingerprinted(&plan.manifest_path) else {
        return Ok(None);
    };
    let same = manifest.database.identifier == plan.db && manifest.target.account == plan.target;
    // The database is in the plan's source region, or in the shared copy's.
    let from = plan.source_region.as_ref().unwrap_or(&aws.region);
    let ours = same
        && manifest.source.region == *from
        && manifest
            .snapshot
            .arn
            .resource
            .ends_with(&format!(":{}", plan.names.shared));
    if !ours {
        return Err(Error::refused(
            format!(
                "`{}` already holds a manifest for another export",
                plan.manifest_path.display()
            ),
            "pass `--manifest` with another path, or move that file away",
        ));
    }
    let snapshot = rds::describe_snapshot(aws, plan.kind, &plan.names.shared).await?;
    let shared = rds::shared_with(aws, plan.kind, &plan.names.shared)
        .await
        .unwrap_or_default();
    let Some(snapshot) = snapshot.filter(|s| s.status == "available") else {
        return Ok(None);
    };
    if !shared.contains(&plan.target.to_string()) {
        return Ok(None);
    }
    let key = manifest.snapshot.kms_key_arn.as_ref().map(|k| k.as_str());
    rds::check_ours(&snapshot, &with_role(&base_tags(plan), "shared-copy"), key)?;
    super::snapshot::check_copied_from(plan, &snapshot)?;
    if let Some(key) = key {
        refuse_another_key(aws, plan, key).await?;
    }
    Ok(Some(ExportReport {
        manifest_path: plan.manifest_path.clone(),
        already_done: true,
        next_command: next_command(plan, aws, &manifest.source.account, &fingerprint),
        manifest: Some(manifest),
        fingerprint,
    }))
}

/// A finished export answers only the same command: a key flag that names another key than
/// the one the handoff used is refused, naming both (the run would not use it). Without a
/// key flag, the key the handoff used is the one.
async fn refuse_another_key(aws: &Aws, plan: &ExportPlan, used: &str) -> Result<()> {
    if !plan.key_named {
        return Ok(());
    }
    let named = kms::find(aws, &plan.key).await?;
    if named.as_ref().is_some_and(|k| k.arn == used) {
        return Ok(());
    }
    let named = match named {
        Some(key) => format!("`{}` ({})", plan.key.id(), key.arn),
        None => format!("`{}`, which names no key here", plan.key.id()),
    };
    Err(Error::refused(
        format!(
            "{} `{}` was already exported to {} under key `{used}`, not {named}",
            plan.kind.name(),
            plan.db,
            plan.target
        ),
        format!(
            "pass `--kms-key-id {used}` (or no key flag) to see the finished handoff; to hand it off again under another key, first end this one with `src-agent revoke {} --delete-snapshot`",
            plan.manifest_path.display()
        ),
    ))
}

/// What a dry run of a finished export says: every part is there, nothing is left to do.
pub(super) fn print_finished(plan: &ExportPlan, report: &ExportReport, progress: &dyn Progress) {
    let key = report
        .manifest
        .as_ref()
        .and_then(|m| m.snapshot.kms_key_arn.as_ref())
        .map(ToString::to_string);
    if let Some(key) = key {
        plan::step(progress, Action::Reuse, "key", &key);
    }
    let names = &plan.names;
    plan::step(progress, Action::Reuse, "shared copy", &names.shared);
    let shared = format!("share with account {} (shared already)", plan.target);
    plan::step(progress, Action::Skip, &shared, &names.shared);
    let manifest = plan.manifest_path.display().to_string();
    plan::step(progress, Action::Reuse, "manifest", &manifest);
}

pub(super) fn next_command(
    plan: &ExportPlan,
    aws: &Aws,
    source: &AccountId,
    fingerprint: &str,
) -> String {
    format!(
        "tgt-agent import {} --source-account {source} --manifest-sha256 {fingerprint} --region {} --db-subnet-group-name <SUBNET_GROUP> --vpc-security-group-ids <SG_ID>{}",
        plan.manifest_path.display(),
        aws.region,
        if plan.data.is_some() { " --verify-data" } else { "" }
    )
}
