//! What the toolkit holds in an account and region, found by its tags and grouped by
//! database: `status` lists it with the stage each handoff reached, `cleanup` removes what an
//! unfinished or abandoned run left — intermediate snapshots and copies, temporary clusters,
//! unshared copies, a key the toolkit made that nothing uses — and never a database, a
//! secret, a snapshot still shared, or anything without the toolkit's tags.
//!
//! On the target, a restored database whose new master password is not set yet (an import
//! stopped after the restore) still answers to the source's master password: both commands
//! say so, loudly, with the command that finishes the import.
//!
//! Here the reading of those holdings; `status.rs` and `cleanup.rs` hold the two commands.

mod cleanup;
mod status;

use std::collections::BTreeMap;
use std::path::Path;

use serde::Serialize;

use crate::aws::kms::{self, ALIAS_TAG};
use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::names::ExportNames;
use crate::base::vocabulary::{DbKind, Encryption};
use crate::flows::encrypt::TAG_ENCRYPTED_FROM;
use crate::flows::export::{TAG_DB, TAG_ROLE, TAG_SOURCE_REGION, TAG_TARGET, TAG_TARGET_REGION};
use crate::flows::import::{TAG_PASSWORD_SET, TAG_SOURCE_SNAPSHOT};
use crate::ident::Region;

pub use cleanup::{run_cleanup, CleanupArgs};
pub use status::{run_status, stage, StatusArgs};

type Tags = BTreeMap<String, String>;

/// One resource the toolkit made.
#[derive(Debug, Clone, Serialize)]
pub struct Held {
    pub database: String,
    /// As in the state file: `kms-key`, `db-snapshot`, `db-cluster-snapshot`, `db-instance`,
    /// `db-cluster`, `secret`.
    pub kind: &'static str,
    pub id: String,
    /// The region it is in.
    pub region: Region,
    /// The toolkit's `rds-handoff:role` tag (`intermediate`, `shared-copy`, …).
    pub role: Option<String>,
    pub status: String,
    /// How a database or snapshot is encrypted (`none`, `sse-rds`, `sse-kms`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encryption: Option<Encryption>,
    /// Accounts a snapshot is shared with.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub shared_with: Vec<String>,
    #[serde(skip)]
    pub tags: Tags,
    /// A restored database on the target that still answers to the source's master
    /// password (no new one is set yet).
    #[serde(skip)]
    pub source_password: Option<SourcePassword>,
}

/// A restored database whose new master password is not set: until an import sets one, it
/// answers to the **source's** master password. What is known of the import that finishes
/// the job, from AWS (the manifest and its SHA-256 are the operator's).
#[derive(Debug, Clone)]
pub struct SourcePassword {
    pub kind: DbKind,
    pub database: String,
    pub status: String,
    /// From the shared snapshot the database was restored from.
    pub source_account: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
}

impl SourcePassword {
    /// The import that sets a new master password, `manifest` (or a placeholder) first.
    pub fn command(&self, manifest: Option<&Path>) -> String {
        let manifest =
            manifest.map_or_else(|| "<MANIFEST>".to_owned(), |p| p.display().to_string());
        let account = self.source_account.as_deref().unwrap_or("<SOURCE_ACCOUNT>");
        let subnets = self.subnet_group.as_deref().unwrap_or("<SUBNET_GROUP>");
        let groups = match self.security_groups.as_slice() {
            [] => "<SG_ID>".to_owned(),
            groups => groups.join(","),
        };
        format!(
            "tgt-agent import {manifest} --source-account {account} --manifest-sha256 <SHA256> --db-identifier {} --db-subnet-group-name {subnets} --vpc-security-group-ids {groups}",
            self.database
        )
    }

    /// What `status` and `cleanup` say of it.
    pub fn warning(&self, manifest: Option<&Path>) -> String {
        format!(
            "{} `{}` ({}) STILL ANSWERS TO THE SOURCE'S MASTER PASSWORD: no new one is set, so whoever knows the source database's master password can sign in to it. Unless an import of it is running now, finish the job (the first run's command again, with the other flags it had, such as `--password-mode`, `--kms-key-id` or `--secret-name`; it sets a new master password and repeats nothing): {}",
            self.kind.name(),
            self.database,
            self.status,
            self.command(manifest)
        )
    }
}

/// Which handoffs a [`scan`] keeps.
#[derive(Debug, Clone, Copy)]
pub enum Select<'a> {
    All,
    /// The handoff of this name (what `cleanup` acts on).
    Handoff(&'a str),
    /// The handoffs this names: by their own name, or by the identifier of a database made
    /// for one (a restore renamed with `--db-identifier`, an encrypted copy). For reading only.
    Named(&'a str),
}

fn keep_handoffs_of(found: &mut Vec<Held>, id: &str) {
    let is_database = |h: &Held| matches!(h.kind, "db-instance" | "db-cluster");
    let names: Vec<String> = found
        .iter()
        .filter(|h| h.database == id || (is_database(h) && h.id == id))
        .map(|h| h.database.clone())
        .collect();
    found.retain(|h| names.contains(&h.database));
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

fn held(aws: &Aws, kind: &'static str, id: &str, status: &str, tags: Tags) -> Option<Held> {
    Some(Held {
        database: database_of(&tags)?,
        kind,
        id: id.to_owned(),
        region: aws.region.clone(),
        role: tags.get(TAG_ROLE).cloned(),
        status: status.to_owned(),
        encryption: None,
        shared_with: Vec::new(),
        tags,
        source_password: None,
    })
}

/// Everything the toolkit holds here, for the handoffs `select` keeps; the further reads
/// (sharing, unfinished passwords) only for those.
pub async fn scan(aws: &Aws, side: Side, select: Select<'_>) -> Result<Vec<Held>> {
    // The toolkit makes manual snapshots; automated ones may carry a restored database's tags.
    let mut found: Vec<Held> = rds::list_all(aws)
        .await?
        .into_iter()
        .filter(|r| r.snapshot_type.as_deref().is_none_or(|t| t == "manual"))
        .filter_map(|r| {
            let encryption = r.encryption;
            held(aws, r.kind, &r.id, &r.status, r.tags).map(|h| Held {
                encryption: Some(encryption),
                ..h
            })
        })
        .collect();
    found.extend(keys(aws).await?);
    // Only the target stores secrets.
    if side == Side::Target {
        found.extend(secrets(aws).await?);
    }
    match select {
        Select::All => {}
        Select::Handoff(name) => found.retain(|h| h.database == name),
        Select::Named(id) => keep_handoffs_of(&mut found, id),
    }
    if side == Side::Target {
        mark_source_passwords(aws, &mut found).await?;
    }
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

/// The two regions of a cross-region handoff a resource belongs to (where the database is,
/// where the shared copy is made), from its tags; none for a handoff within one region. The
/// first cross-region release tagged no target region: then the region it is in, away from
/// the database's, or an intermediate's name says it (`""` when nothing does).
pub fn crossing(h: &Held) -> Option<(String, String)> {
    let from = h.tags.get(TAG_SOURCE_REGION)?;
    let to = match h.tags.get(TAG_TARGET_REGION) {
        Some(to) => to.clone(),
        None if h.region.as_str() != from => h.region.to_string(),
        None => named_target_region(h).unwrap_or_default(),
    };
    (*from != to).then(|| (from.clone(), to))
}

/// The target region an intermediate's name ends with (`rh-<db>-to-<target>-<region>-src`).
fn named_target_region(h: &Held) -> Option<String> {
    let (target, region) = ExportNames::intermediate_parts(&h.id)?;
    (h.tags.get(TAG_TARGET).map(String::as_str) == Some(target)).then(|| region.to_owned())
}

/// Whether a cross-region handoff's resource is named as the export names what it makes
/// from its tags (database, target, both regions): its intermediate, its shared copy, or its
/// key under the default alias. A tag alone is anyone's who may tag; a name is the
/// toolkit's, which a planted resource can copy only for a resource of its own maker.
fn named_as_made(h: &Held) -> bool {
    let (Some((from, to)), Some(target)) = (crossing(h), h.tags.get(TAG_TARGET)) else {
        return false;
    };
    let snapshot_kind = match h.kind {
        "db-snapshot" => DbKind::Instance.snapshot_kind(),
        "db-cluster-snapshot" => DbKind::Cluster.snapshot_kind(),
        "kms-key" => {
            let alias = format!("alias/rds-handoff/{}-from-{from}", h.database);
            return h.tags.get(ALIAS_TAG) == Some(&alias);
        }
        _ => return false,
    };
    let names = ExportNames::across(snapshot_kind, &h.database, target, &from, &to);
    match h.role.as_deref() {
        Some("intermediate") => h.id == names.intermediate,
        Some("shared-copy") => h.id == names.shared,
        _ => false,
    }
}

/// The source's `status` and `cleanup --db`: the other regions this region's cross-region
/// handoffs reach.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Across {
    /// Also read this region, where this region's cross-region handoffs
    /// (`export --target-region`) made their copies and keys; repeatable. Read on its own
    /// while one of them still has an intermediate snapshot here
    #[arg(long = "target-region", value_name = "REGION")]
    pub target_regions: Vec<Region>,
}

/// Another region named by what is found here: the target region an intermediate here
/// names, or (`both_ways`) the database's region a shared copy here names; only from a
/// resource named as the export names it, and only where the toolkit copies to or from here.
fn other_region_named(aws: &Aws, h: &Held, both_ways: bool) -> Option<Region> {
    let (from, to) = crossing(h)?;
    let here = aws.region.as_str();
    let other = match h.role.as_deref() {
        Some("intermediate") if from == here => to,
        Some("shared-copy") if to == here && both_ways => from,
        _ => return None,
    };
    let other: Region = other.parse().ok()?;
    let reachable = crate::flows::export::refuse_unreachable(aws, &other).is_ok();
    (named_as_made(h) && reachable).then_some(other)
}

/// [`scan`] here, then, on the source, in each other region a cross-region handoff of this
/// region reaches: those `also` names, and those named by what is found here (see
/// [`other_region_named`]; only where the database is here when `strict`). In another region
/// only what belongs to a handoff between the two is kept, apart from that region's own
/// handoffs of a database of the same name. A region that cannot be read fails the scan when
/// `strict`, and is otherwise warned of. Each resource comes with the clients of its region.
pub async fn scan_across(
    aws: &Aws,
    side: Side,
    select: Select<'_>,
    also: &[Region],
    strict: bool,
    progress: &dyn crate::base::progress::Progress,
) -> Result<Vec<(Aws, Held)>> {
    if side == Side::Source {
        for region in also {
            if let Err(err) = crate::flows::export::refuse_unreachable(aws, region) {
                return Err(Error::Usage {
                    message: err.to_string(),
                    hint: Some(format!(
                        "drop `--target-region {region}`: no handoff from `{}` can have copied there",
                        aws.region
                    )),
                });
            }
        }
    }
    let here_found = scan(aws, side, select).await?;
    // Each other region, with what named it.
    let mut others: Vec<(Region, String)> = Vec::new();
    if side == Side::Source {
        let flagged = also
            .iter()
            .map(|r| (r.clone(), "named by `--target-region`".to_owned()));
        let named = here_found.iter().filter_map(|h| {
            let region = other_region_named(aws, h, !strict)?;
            Some((region, format!("named by {} `{}` here", h.kind, h.id)))
        });
        for (region, why) in flagged.chain(named) {
            if region != aws.region && !others.iter().any(|(r, _)| *r == region) {
                others.push((region, why));
            }
        }
    }
    let mut found: Vec<(Aws, Held)> = here_found.into_iter().map(|h| (aws.clone(), h)).collect();
    for (region, why) in &others {
        match read_other(aws, region, side, select).await {
            Ok((there, held)) => found.extend(held.into_iter().map(|h| (there.clone(), h))),
            Err(err) if !strict => {
                let hint = hints(err.hint().as_deref());
                let err = err.to_string();
                let err = err.trim_end_matches('.');
                let status =
                    format!("not read, what is there is not listed; {why}: {err}. {hint}.");
                progress.event(&crate::base::progress::Event::warning(
                    "region",
                    region.as_str(),
                    &status,
                ));
            }
            Err(err) => return Err(unread(err, region, why, also.contains(region), &aws.region)),
        }
    }
    Ok(found)
}

/// Why a region cannot be read, whatever the error says.
const ALLOW_REGION: &str = "The operator's credentials, policy and network must allow that region, and an opt-in region must be enabled in the account";

/// An error's hint, if it has one, then [`ALLOW_REGION`], without a closing period.
fn hints(hint: Option<&str>) -> String {
    match hint {
        Some(hint) => format!("{}. {ALLOW_REGION}", hint.trim_end_matches('.')),
        None => ALLOW_REGION.to_owned(),
    }
}

/// `cleanup --db`'s error for region `other` (named by `why`, by `--target-region` when
/// `flagged`) that could not be read: an AWS
/// error as it is, naming the region, any other as a refusal; both say that nothing is
/// removed until it can be read.
fn unread(err: Error, other: &Region, why: &str, flagged: bool, here: &Region) -> Error {
    let flag = match flagged {
        true => format!(
            ", or, if no handoff from `{here}` went there, run without `--target-region {other}`"
        ),
        false => String::new(),
    };
    let then = format!("Nothing is removed until `{other}` can be read, where a cross-region handoff from `{here}` copies its snapshot under a key of its own there. If it never can be (a region disabled, or denied to every role), remove what the handoff left here by hand (`src-agent status --region {here}` lists it){flag}");
    let hint = hints(err.hint().as_deref());
    match err {
        Error::Aws {
            action,
            code,
            message,
            ..
        } => Error::Aws {
            action: format!("{action} in `{other}` ({why})"),
            code,
            message,
            hint: Some(format!("{hint}. {then}")),
        },
        err => Error::refused(
            format!("region `{other}` ({why}) could not be read: {err}"),
            format!("{hint}. {then}"),
        ),
    }
}

/// What belongs, in `other`, to a handoff between this region and it, with that region's
/// clients.
async fn read_other(
    aws: &Aws,
    other: &Region,
    side: Side,
    select: Select<'_>,
) -> Result<(Aws, Vec<Held>)> {
    let there = aws.at(other).await?;
    let mut held = scan(&there, side, select).await?;
    let (here, other) = (aws.region.as_str(), other.as_str());
    held.retain(|h| {
        crossing(h).is_some_and(|(from, to)| {
            (from == here && to == other) || (from == other && to == here)
        })
    });
    Ok((there, held))
}

/// What `cleanup --db` may act on, the database being in `region`: what a handoff of it
/// made here (within this region, or across from it, not another region's database of the
/// same name handed into this one), and in another region only its shared copy and key,
/// named as the export names them.
pub fn cleanable_from(h: &Held, region: &str) -> bool {
    let from_here = h
        .tags
        .get(TAG_SOURCE_REGION)
        .is_none_or(|from| from == region);
    let copy_or_key = h.role.as_deref() != Some("intermediate");
    from_here && (h.region.as_str() == region || (copy_or_key && named_as_made(h)))
}

/// Marks each restored database whose new master password is not confirmed set: RDS does
/// not manage it, and no master secret the toolkit made for it carries the "password set"
/// marker with the database's resource id (a database deleted and restored again under the
/// same name has a new one).
async fn mark_source_passwords(aws: &Aws, found: &mut [Held]) -> Result<()> {
    let marked: Vec<(String, String)> = found
        .iter()
        .filter(|h| h.kind == "secret" && h.role.as_deref() == Some("master-secret"))
        .filter_map(|h| Some((h.database.clone(), h.tags.get(TAG_PASSWORD_SET)?.clone())))
        .collect();
    for h in found
        .iter_mut()
        .filter(|h| h.role.as_deref() == Some("restored-database"))
    {
        let kind = match h.kind {
            "db-instance" => DbKind::Instance,
            "db-cluster" => DbKind::Cluster,
            _ => continue,
        };
        let Some(db) = rds::describe_db(aws, kind, &h.id).await? else {
            continue;
        };
        let marker_names_it = db.resource_id.as_ref().is_some_and(|id| {
            marked
                .iter()
                .any(|(database, set_on)| *database == h.database && set_on == id)
        });
        if db.managed_secret.is_some() || marker_names_it || db.status == "deleting" {
            continue;
        }
        let source_account = h
            .tags
            .get(TAG_SOURCE_SNAPSHOT)
            .and_then(|arn| arn.parse::<crate::ident::Arn>().ok())
            .and_then(|arn| arn.account.map(|a| a.as_str().to_owned()));
        h.source_password = Some(SourcePassword {
            kind,
            database: h.id.clone(),
            status: db.status.clone(),
            source_account,
            subnet_group: db.subnet_group.clone(),
            security_groups: db.security_groups.clone(),
        });
    }
    Ok(())
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
            found.extend(held(aws, "kms-key", &key.arn, &state, tags));
        }
    }
    Ok(found)
}

/// The toolkit's secrets (tagged with the database).
async fn secrets(aws: &Aws) -> Result<Vec<Held>> {
    let mut found = Vec::new();
    for s in crate::aws::secrets::list(aws, false).await? {
        let tags: Tags = s
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
            .collect();
        found.extend(held(
            aws,
            "secret",
            s.name().unwrap_or_default(),
            "stored",
            tags,
        ));
    }
    Ok(found)
}
