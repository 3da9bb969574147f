//! `tgt-agent check`, and the first step of every import: the manifest and the shared
//! snapshot it names verified against AWS (our account and region, the snapshot's owner,
//! share, encryption key and description), before anything is created.

use crate::aws::secrets::describe_secret;
use crate::aws::{kms, rds};
use crate::aws::{Aws, Caller};
use crate::base::error::{Error, Result};
use crate::base::manifest::Manifest;
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::{DbKind, Encryption};

use super::password::check_secret_owner;
use super::placement::check_placement;
use super::{ImportPlan, PasswordMode, TAG_SOURCE_SNAPSHOT};

/// Verifies the manifest against AWS: the whole of `tgt-agent check`. Returns the caller
/// and whether the database is already restored (by an earlier try of this import).
pub async fn verify(
    aws: &Aws,
    plan: &ImportPlan,
    progress: &dyn Progress,
) -> Result<(Caller, bool)> {
    let m = &plan.manifest;
    let caller = aws.identify(progress).await?;
    let refuse = |message: String, hint: &str| Err(Error::refused(message, hint));
    if caller.account != m.target.account {
        return refuse(
            format!("this manifest hands the database to account `{}`, but you are in account `{}`", m.target.account, caller.account),
            "run tgt-agent with credentials of the target account (`--profile`), or ask the source admin to export to your account",
        );
    }
    let region = m.snapshot_region();
    if aws.region != *region {
        return refuse(
            format!(
                "the snapshot is in region `{region}`, and this run uses `{}`",
                aws.region
            ),
            &format!("pass `--region {region}`: a shared snapshot is copied within its own region"),
        );
    }
    let arn = &m.snapshot.arn;
    let prefix = match plan.kind {
        DbKind::Instance => "snapshot:",
        DbKind::Cluster => "cluster-snapshot:",
    };
    if arn.account.as_ref() != Some(&m.source.account)
        || arn.region != region.as_str()
        || arn.service != "rds"
        || !arn.resource.starts_with(prefix)
    {
        return refuse(
            format!(
                "the snapshot ARN `{arn}` is not a {} snapshot of the source account `{}` in `{region}`",
                plan.kind.name(),
                m.source.account,
            ),
            "the manifest was edited: ask the source admin for the manifest export wrote",
        );
    }
    let Some(snap) = rds::describe_snapshot(aws, plan.kind, arn.as_str()).await? else {
        return refuse(
            format!(
                "snapshot `{arn}` is not shared with account `{}` (or no longer exists)",
                caller.account
            ),
            "ask the source admin to re-run `src-agent export` (it shares the snapshot again)",
        );
    };
    if snap.encryption == Encryption::Unknown {
        return Err(Error::unknown_encryption(&format!(
            "the shared snapshot `{arn}`"
        )));
    }
    if snap.encryption == Encryption::AwsOwnedKey {
        // No account but AWS can use an AWS owned key: nothing the target does could copy or
        // keep this snapshot under a key of its own (DOMAIN.md §14).
        return refuse(
            format!("AWS says the shared snapshot `{arn}` is encrypted with an AWS owned key (sse-rds), which no other account can use"),
            "ask the source admin to re-run `src-agent export`: it puts the snapshot under a key of its own before sharing",
        );
    }
    let encrypted = snap.encryption.is_encrypted();
    if encrypted != m.snapshot.encrypted {
        return refuse(
            format!("the manifest says the snapshot is {}encrypted, AWS says it is {}encrypted", if m.snapshot.encrypted { "" } else { "not " }, if encrypted { "" } else { "not " }),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    if encrypted
        && snap.kms_key_id.as_deref() != m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str())
    {
        return refuse(
            format!("the snapshot is encrypted with `{}`, not with the manifest's key `{}`", snap.kms_key_id.as_deref().unwrap_or("?"), m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()).unwrap_or("none")),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    if let Some(key) = snap.kms_key_id.as_deref().filter(|_| encrypted) {
        let key_account = key
            .parse::<crate::ident::Arn>()
            .ok()
            .and_then(|a| a.account);
        if key_account.as_ref() != Some(&m.source.account) {
            return refuse(
                format!("AWS says the snapshot is encrypted with `{key}`, a key outside the source account `{}`", m.source.account),
                "ask the source admin for a fresh export",
            );
        }
    }
    if let Some(differs) = described_differences(&m.database, &snap.described) {
        return refuse(
            format!("the manifest does not describe the shared snapshot as AWS does: {differs}"),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        );
    }
    check_copied_from(m, &snap, progress)?;
    if snap.status != "available" {
        return refuse(
            format!("the shared snapshot is `{}`, not `available`", snap.status),
            "wait for the source's copy to finish, then re-run",
        );
    }
    check_placement(aws, plan).await?;
    super::data::preflight(plan)?;
    if !plan.args.reach.is_empty() {
        let port = crate::flows::reach::database_port(&plan.manifest.database)?;
        let groups = &plan.args.check.vpc_security_group_ids;
        crate::flows::reach::check_reach(aws, groups, port, &plan.args.reach, progress).await?;
    }
    let existing = rds::describe_db(aws, plan.kind, &plan.db).await?;
    if let Some(existing) = &existing {
        if existing.database.tags.get(TAG_SOURCE_SNAPSHOT) != Some(&arn.to_string()) {
            return refuse(
                format!(
                    "a {} named `{}` already exists here and was not restored from this manifest",
                    plan.kind.name(),
                    plan.db
                ),
                "pass `--db-identifier` with a new name",
            );
        }
        check_restored_here(aws, plan, existing).await?;
    }
    if plan.args.password_mode == PasswordMode::Rotate {
        if let Some(secret) = describe_secret(aws, &plan.secret_name).await? {
            check_secret_owner(&secret, plan)?;
        }
    }
    progress.event(&Event::step("verify", arn.as_str(), "manifest matches AWS"));
    Ok((caller, existing.is_some()))
}

/// A database at the restore name, tagged as restored from this manifest's snapshot, is an
/// earlier try's only if AWS says what such a restore would be: under this import's own key,
/// with the manifest's engine and master user. Anyone who may tag a database can write the
/// tag; this stops a database tagged by hand. It does not stop someone of this account who may
/// restore under the import's key (its policy lets the account use it through RDS): IAM
/// cannot tell them from the import.
async fn check_restored_here(aws: &Aws, plan: &ImportPlan, db: &rds::DbInfo) -> Result<()> {
    let key = kms::describe(aws, plan.key.id()).await?;
    let on_key = match (&key, db.kms_key_id.as_deref()) {
        (Some(key), Some(used)) => used == key.arn || used == key.id,
        _ => false,
    };
    let d = &plan.manifest.database;
    let mut differs = Vec::new();
    if !on_key {
        differs.push(format!(
            "it is under {}, not this import's key `{}`",
            db.kms_key_id.as_deref().unwrap_or("no key"),
            plan.key.id()
        ));
    }
    if db.database.master_username != d.master_username {
        differs.push(format!(
            "its master user is `{}`, not `{}`",
            db.database.master_username, d.master_username
        ));
    }
    if db.database.engine != d.engine {
        differs.push(format!(
            "its engine is `{}`, not `{}`",
            db.database.engine, d.engine
        ));
    }
    if differs.is_empty() {
        return Ok(());
    }
    Err(Error::refused(
        format!(
            "{} `{}` carries this manifest's tag, but is not what this import restores: {}",
            plan.kind.name(),
            plan.db,
            differs.join("; ")
        ),
        "if an earlier try of this import made it under another key, check it holds nothing you need, delete it and re-run; otherwise find out who made it (anyone who may tag a database can write the tag) and pass `--db-identifier` with a new name",
    ))
}

/// Where the manifest's fields that reach AWS calls differ from the snapshot AWS describes.
fn described_differences(
    database: &crate::base::manifest::Database,
    aws: &rds::Described,
) -> Option<String> {
    let mut differs = Vec::new();
    let mut compare = |field: &str, manifest: String, described: Option<String>| {
        if let Some(described) = described.filter(|d| *d != manifest) {
            differs.push(format!("{field} `{manifest}` (AWS: `{described}`)"));
        }
    };
    compare("engine", database.engine.clone(), aws.engine.clone());
    compare(
        "engine version",
        database.engine_version.clone(),
        aws.engine_version.clone(),
    );
    compare(
        "master username",
        database.master_username.clone(),
        aws.master_username.clone(),
    );
    let port = database.port.map(|p| p.to_string()).unwrap_or_default();
    compare("port", port, aws.port.map(|p| p.to_string()));
    compare(
        "IAM authentication",
        database.iam_auth.to_string(),
        aws.iam_auth.map(|b| b.to_string()),
    );
    (!differs.is_empty()).then(|| differs.join(", "))
}

/// A handoff across regions: AWS's record of where the shared copy was copied from is the
/// manifest's source region. A copy within one region, or a record AWS does not give, is
/// said, not refused.
fn check_copied_from(m: &Manifest, snap: &rds::Snap, progress: &dyn Progress) -> Result<()> {
    if m.target.region.is_none() {
        return Ok(());
    }
    match snap.copied_from_region.as_deref() {
        Some(from) if from == m.source.region.as_str() => Ok(()),
        Some(from) => Err(Error::refused(
            format!(
                "the manifest says the database comes from region `{}`, and AWS says the shared snapshot was copied from `{from}`",
                m.source.region
            ),
            "the manifest was edited or the snapshot replaced: ask the source admin for a fresh export",
        )),
        None => {
            progress.event(&Event::warning(
                "verify",
                m.snapshot.arn.as_str(),
                &format!("AWS does not say which region the shared snapshot was copied from; the manifest says `{}`", m.source.region),
            ));
            Ok(())
        }
    }
}
