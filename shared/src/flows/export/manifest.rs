//! The manifest the target imports from: written once the shared copy is checked, read
//! back to find an export already finished; and the command the target runs next.

use crate::aws::rds::{self, DbInfo, Snap};
use crate::aws::{Aws, Caller};
use crate::base::error::{Error, Result};
use crate::base::manifest::{
    is_user_tag, Database, Manifest, SharedSnapshot, SourceSide, TargetSide, SCHEMA_VERSION,
};
use crate::base::vocabulary::Encryption;
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
        schema: SCHEMA_VERSION,
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
    let ours = manifest.database.identifier == plan.db
        && manifest.target.account == plan.target
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
    Ok(Some(ExportReport {
        manifest_path: plan.manifest_path.clone(),
        already_done: true,
        next_command: next_command(plan, aws, &manifest.source.account, &fingerprint),
        manifest: Some(manifest),
        fingerprint,
    }))
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
