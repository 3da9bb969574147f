//! RDS calls for DB instances and Aurora clusters behind one vocabulary.
//!
//! An instance and a cluster differ in every API name (`CreateDBSnapshot` vs
//! `CreateDBClusterSnapshot`, …) but not in what the agents do with them. This module holds
//! the differences, so the export and import flows are written once. Lookups return `None`
//! for "not found" and an error for everything else.
//!
//! This file holds the vocabulary the calls share ([`DbInfo`], [`Snap`], [`Described`], the
//! state file's kind names); each group of calls is a file of its own:
//!
//! - `database.rs`: a DB instance or cluster: describe it, wait for a status, delete a
//!   cluster the toolkit made; refusals for one not here or a cluster member.
//! - `snapshot.rs`: a snapshot: describe it (ours or shared with us), create it, wait for it,
//!   check it is this run's, delete it.
//! - `copy.rs`: copying a snapshot (under a key): where a copy is started and waited for.
//! - `share.rs`: sharing a snapshot with accounts (its `restore` attribute), and the options
//!   that make one unshareable.
//! - `restore.rs`: restoring a database from a snapshot, and a restored cluster's writer.
//! - `rounds.rs`: one poll round for every wait of a kind (a fleet's copies and restores
//!   asked about together).
//! - `listing.rs`: every database and snapshot of the account and region, all pages ([`Listed`]).
//! - `snapshot_quota.rs`: the region's manual snapshot quota and the room a run needs in it.
//! - `stop.rs`: stopping the source of `--stop-source` with its snapshot taken while it is
//!   available, and resuming from wherever a stop was interrupted.
//! - `tags.rs`: tags as RDS takes and gives them, and matching the toolkit's marks.
//! - `codes.rs`: the AWS error codes read as answers ("not found", "already exists").

mod codes;
mod copy;
mod database;
mod listing;
mod restore;
mod rounds;
mod share;
mod snapshot;
mod snapshot_quota;
mod stop;
mod tags;

use std::collections::BTreeMap;

use crate::base::manifest::Database;
use crate::base::vocabulary::{DbKind, Encryption};

pub use codes::created;
pub use copy::{ensure_copy, CopyTo};
pub use database::{
    delete_own_cluster, describe_db, not_here, refuse_cluster_member, wait_db, wait_db_status,
};
pub use listing::{list_all, Listed};
pub use restore::{ensure_writer, restore, RestoreSpec, WriterSpec};
pub use rounds::{poll_db, poll_snapshot, Rounds, ROUND_GAP};
pub use share::{set_shared, shared_with, unshareable_options};
pub use snapshot::{
    check_ours, create_snapshot, delete_own_snapshot, delete_snapshot, describe_snapshot,
    ensure_snapshot, wait_snapshot,
};
pub use snapshot_quota::{check_snapshot_room, snapshot_quota};
pub use stop::{adopt_stop_snapshot, check_stop_source, stop_db};
pub use tags::{add_missing_tags, left_out_warning, tag_list, tag_map, user_tags, with_marks};

/// A database as the agents see it.
#[derive(Debug, Clone)]
pub struct DbInfo {
    pub arn: String,
    pub status: String,
    /// `StorageEncryptionType`, or what `StorageEncrypted` says where AWS omits it.
    pub encryption: Encryption,
    pub kms_key_id: Option<String>,
    pub endpoint: Option<String>,
    pub subnet_group: Option<String>,
    pub security_groups: Vec<String>,
    pub publicly_accessible: Option<bool>,
    /// An instance's zone; a cluster's zones, in AWS's order.
    pub availability_zones: Vec<String>,
    pub deletion_protection: bool,
    /// A cluster's writer instance.
    pub writer: Option<String>,
    /// `DbiResourceId` / `DbClusterResourceId`: unlike the name, never reused.
    pub resource_id: Option<String>,
    /// The Aurora cluster an instance is a member of.
    pub member_of: Option<String>,
    /// The ARN of the secret RDS keeps the master password in (`MasterUserSecret`), when
    /// RDS manages it.
    pub managed_secret: Option<String>,
    pub database: Database,
}

/// A snapshot as the agents see it.
#[derive(Debug, Clone)]
pub struct Snap {
    pub id: String,
    pub arn: String,
    pub status: String,
    /// `StorageEncryptionType`, or what `StorageEncrypted` says where AWS omits it.
    pub encryption: Encryption,
    pub kms_key_id: Option<String>,
    pub snapshot_type: String,
    pub tags: BTreeMap<String, String>,
    /// The identifier of the database it is a snapshot of (`DBInstanceIdentifier` /
    /// `DBClusterIdentifier`, as AWS reports it).
    pub source_db: Option<String>,
    /// The region it was created in or copied from (`SourceRegion`; a cluster snapshot's
    /// from `SourceDBClusterSnapshotArn`).
    pub copied_from_region: Option<String>,
    /// The snapshot it was copied from, which AWS gives for a copy across accounts or regions
    /// (`SourceDBSnapshotIdentifier`, `SourceDBClusterSnapshotArn`: an ARN).
    pub copied_from: Option<String>,
    /// The database the snapshot holds, as AWS describes it.
    pub described: Described,
}

/// What AWS says about the database inside a snapshot: what a restore of it will be.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Described {
    pub engine: Option<String>,
    pub engine_version: Option<String>,
    pub port: Option<i32>,
    pub master_username: Option<String>,
    pub iam_auth: Option<bool>,
}

/// The state file's name for a snapshot of a database of `kind`.
pub fn snapshot_kind(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "db-snapshot",
        DbKind::Cluster => "db-cluster-snapshot",
    }
}

/// The state file's name for a database of `kind`.
pub fn database_kind(kind: DbKind) -> &'static str {
    match kind {
        DbKind::Instance => "db-instance",
        DbKind::Cluster => "db-cluster",
    }
}
