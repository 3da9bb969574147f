//! What the toolkit holds in an account and region, found by its tags and grouped by
//! database: `status` lists it with the stage each handoff reached, `cleanup` removes what an
//! unfinished or abandoned run left — intermediate snapshots and copies, temporary clusters,
//! unshared copies, a key the toolkit made that nothing uses — and never a database, a
//! secret, a snapshot still shared, or anything without the toolkit's tags.
//!
//! Here the reading of those holdings; `status.rs` and `cleanup.rs` hold the two commands.

mod cleanup;
mod status;

use std::collections::BTreeMap;

use serde::Serialize;

use crate::aws::kms::{self, ALIAS_TAG};
use crate::aws::rds;
use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::vocabulary::{DbKind, Encryption};
use crate::flows::encrypt::TAG_ENCRYPTED_FROM;
use crate::flows::export::{TAG_DB, TAG_ROLE};

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
        encryption: None,
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
        .filter_map(|r| {
            let encryption = r.encryption;
            held(r.kind, &r.id, &r.status, r.tags).map(|h| Held {
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
