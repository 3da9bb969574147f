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

/// Copies `source` to `target` (under `key`, when given) unless an earlier try did, waits
/// until the copy is `available`, and checks it is ours and under that key (KMS reports key
/// ARNs). The copy holds one of the account's copy slots while it runs.
#[allow(
    clippy::too_many_arguments,
    reason = "one call, every argument distinct"
)]
pub async fn ensure_copy(
    aws: &Aws,
    kind: DbKind,
    source: &str,
    target: &str,
    key: Option<&str>,
    tags: &BTreeMap<String, String>,
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Snap> {
    let mut slot = None;
    match describe_snapshot(aws, kind, target).await? {
        // Refuse a foreign snapshot before waiting on it.
        Some(found) => check_ours(&found, tags, None)?,
        None => {
            slot = Some(aws.copies.take(kind).await);
            copy_snapshot(aws, kind, source, target, key, tags).await?;
            let how = match key {
                Some(_) => "started under the key",
                None => "started, unencrypted",
            };
            progress.event(&Event::step("copy", target, how));
            progress.created(snapshot_kind(kind), target);
        }
    }
    let copy = wait_snapshot(aws, kind, target, "copy", wait, progress).await?;
    drop(slot);
    check_ours(&copy, tags, key)?;
    Ok(copy)
}

/// Copies `source` (identifier or shared ARN) to `target`, re-encrypted under `key` if given.
pub async fn copy_snapshot(
    aws: &Aws,
    kind: DbKind,
    source: &str,
    target: &str,
    key: Option<&str>,
    tags: &BTreeMap<String, String>,
) -> Result<()> {
    created(match kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the copy is checked to be ours, under our key.
            .copy_db_snapshot()
            .source_db_snapshot_identifier(source)
            .target_db_snapshot_identifier(target)
            .set_kms_key_id(key.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBSnapshot")),
        DbKind::Cluster => aws
            .rds
            // Retry-safe by name: a repeat answers AlreadyExists ([`created`]), then the copy is checked to be ours, under our key.
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(source)
            .target_db_cluster_snapshot_identifier(target)
            .set_kms_key_id(key.map(str::to_owned))
            .set_tags(Some(tag_list(tags)))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:CopyDBClusterSnapshot")),
    })
}
