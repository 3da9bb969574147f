//! Every DB instance, DB cluster and snapshot the account owns in the region, all pages,
//! as [`Listed`]: what status, cleanup, fleet runs and the copy-slot count read.

use std::collections::BTreeMap;

use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::vocabulary::Encryption;

use super::tags::tag_map;

/// A database or snapshot of this account and region, as its listing shows it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// As in the state file: `db-instance`, `db-cluster`, `db-snapshot`, `db-cluster-snapshot`.
    pub kind: &'static str,
    pub id: String,
    pub status: String,
    pub kms_key_id: Option<String>,
    /// Snapshots: `manual`, `automated`, …
    pub snapshot_type: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Databases: allocated storage in GiB (what a copy of it has to move).
    pub allocated_gib: i32,
    /// DB instances: the Aurora cluster it is a member of.
    pub cluster: Option<String>,
    /// Snapshots: the snapshot this one is a copy of.
    pub copy_of: Option<String>,
    /// `StorageEncryptionType`, or what `StorageEncrypted` says where AWS omits it.
    pub encryption: Encryption,
}

impl Listed {
    /// How an operator message names it: ``DB instance `orders` ``.
    pub fn describe(&self) -> String {
        let what = match self.kind {
            "db-instance" => "DB instance",
            "db-cluster" => "DB cluster",
            "db-snapshot" => "snapshot",
            _ => "cluster snapshot",
        };
        format!("{what} `{}`", self.id)
    }
}

/// Every DB instance, DB cluster and snapshot this account owns in this region, every page.
pub async fn list_all(aws: &Aws) -> Result<Vec<Listed>> {
    let mut found = Vec::new();
    let mut pages = aws.rds.describe_db_instances().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBInstances"))?
                .db_instances()
                .iter()
                .map(|d| Listed {
                    kind: "db-instance",
                    id: d.db_instance_identifier().unwrap_or_default().to_owned(),
                    status: d.db_instance_status().unwrap_or_default().to_owned(),
                    kms_key_id: d.kms_key_id().map(str::to_owned),
                    snapshot_type: None,
                    tags: tag_map(d.tag_list()),
                    allocated_gib: d.allocated_storage().unwrap_or(0),
                    cluster: d.db_cluster_identifier().map(str::to_owned),
                    copy_of: None,
                    encryption: Encryption::read(
                        d.storage_encryption_type().map(|t| t.as_str()),
                        d.storage_encrypted(),
                    ),
                }),
        );
    }
    let mut pages = aws.rds.describe_db_clusters().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBClusters"))?
                .db_clusters()
                .iter()
                .map(|d| Listed {
                    kind: "db-cluster",
                    id: d.db_cluster_identifier().unwrap_or_default().to_owned(),
                    status: d.status().unwrap_or_default().to_owned(),
                    kms_key_id: d.kms_key_id().map(str::to_owned),
                    snapshot_type: None,
                    tags: tag_map(d.tag_list()),
                    allocated_gib: d.allocated_storage().unwrap_or(0),
                    cluster: None,
                    copy_of: None,
                    encryption: Encryption::read(
                        d.storage_encryption_type().map(|t| t.as_str()),
                        d.storage_encrypted(),
                    ),
                }),
        );
    }
    let mut pages = aws.rds.describe_db_snapshots().into_paginator().send();
    while let Some(page) = pages.next().await {
        found.extend(
            page.map_err(sdk("rds:DescribeDBSnapshots"))?
                .db_snapshots()
                .iter()
                .map(|s| Listed {
                    kind: "db-snapshot",
                    id: s.db_snapshot_identifier().unwrap_or_default().to_owned(),
                    status: s.status().unwrap_or_default().to_owned(),
                    kms_key_id: s.kms_key_id().map(str::to_owned),
                    snapshot_type: s.snapshot_type().map(str::to_owned),
                    tags: tag_map(s.tag_list()),
                    allocated_gib: s.allocated_storage().unwrap_or(0),
                    cluster: None,
                    copy_of: s.source_db_snapshot_identifier().map(str::to_owned),
                    encryption: Encryption::read(
                        s.storage_encryption_type().map(|t| t.as_str()),
                        s.encrypted(),
                    ),
                }),
        );
    }
    let mut pages = aws
        .rds
        .describe_db_cluster_snapshots()
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("rds:DescribeDBClusterSnapshots"))?;
        found.extend(page.db_cluster_snapshots().iter().map(|s| {
            Listed {
                kind: "db-cluster-snapshot",
                id: s
                    .db_cluster_snapshot_identifier()
                    .unwrap_or_default()
                    .to_owned(),
                status: s.status().unwrap_or_default().to_owned(),
                kms_key_id: s.kms_key_id().map(str::to_owned),
                snapshot_type: s.snapshot_type().map(str::to_owned),
                tags: tag_map(s.tag_list()),
                allocated_gib: s.allocated_storage().unwrap_or(0),
                cluster: None,
                copy_of: s.source_db_cluster_snapshot_arn().map(str::to_owned),
                encryption: Encryption::read(
                    s.storage_encryption_type().map(|t| t.as_str()),
                    s.storage_encrypted(),
                ),
            }
        }));
    }
    Ok(found)
}
