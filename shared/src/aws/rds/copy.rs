//! Copying a snapshot, re-encrypted under a key when given: where a copy is started
//! (`CopyDBSnapshot` / `CopyDBClusterSnapshot`), waited for, and checked to be ours.

use std::collections::BTreeMap;

use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;

use super::codes::created;
use super::snapshot::{check_ours, describe_snapshot, wait_snapshot};
use super::tags::tag_list;
use super::{snapshot_kind, Snap};

/// What a copy makes: its identifier, the key it is re-encrypted under (`None`: as its
/// source is), the option group it takes (a copy into another region) and its tags.
#[derive(Debug, Clone, Copy)]
pub struct CopyTo<'a> {
    pub id: &'a str,
    pub key: Option<&'a str>,
    pub option_group: Option<&'a str>,
    pub tags: &'a BTreeMap<String, String>,
}

/// Copies `source` to `to` unless an earlier try did, waits until the copy is `available`,
/// and checks it is ours and under `to.key` (KMS reports key ARNs). The copy holds one of the
/// account's copy slots while it runs.
pub async fn ensure_copy(
    aws: &Aws,
    kind: DbKind,
    source: &str,
    to: &CopyTo<'_>,
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Snap> {
    let mut slot = None;
    match describe_snapshot(aws, kind, to.id).await? {
        // Refuse a foreign snapshot before waiting on it.
        Some(found) => check_ours(&found, to.tags, None)?,
        None => {
            slot = Some(aws.copies.take(kind).await);
            copy_snapshot(aws, kind, source, to).await?;
            let how = match to.key {
                Some(_) => "started under the key",
                None => "started, unencrypted",
            };
            progress.event(&Event::step("copy", to.id, how));
            progress.created(snapshot_kind(kind), to.id);
        }
    }
    let copy = wait_snapshot(aws, kind, to.id, "copy", wait, progress).await?;
    drop(slot);
    check_ours(&copy, to.tags, to.key)?;
    Ok(copy)
}

/// Copies `source` (identifier, or ARN: shared, or in another region) to `to`.
async fn copy_snapshot(aws: &Aws, kind: DbKind, source: &str, to: &CopyTo<'_>) -> Result<()> {
    let key = to.key.map(str::to_owned);
    created(match kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the copy is checked to be ours, under our key.
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(to.id)
            .set_kms_key_id(key)
            .set_option_group_name(to.option_group.map(str::to_owned))
            .set_tags(Some(tag_list(to.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the copy is checked to be ours, under our key.
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source)
            .target_db_cluster_snapshot_identifier(to.id)
            .set_kms_key_id(key)
            .set_tags(Some(tag_list(to.tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBClusterSnapshot")),
    })
}
