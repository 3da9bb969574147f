//! The small vocabulary every layer speaks: the two kinds of database, the statuses RDS
//! resources do not leave by themselves, and the error name a workflow ends with on one.
//!
//! It lives at the bottom so that no module has to reach up into the one that first needed
//! a word.

use serde::{Deserialize, Serialize};

use crate::ident::RdsIdKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DbKind {
    Instance,
    Cluster,
}

impl DbKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Instance => "DB instance",
            Self::Cluster => "DB cluster",
        }
    }

    /// The identifier rules for the database itself.
    pub fn id_kind(self) -> RdsIdKind {
        match self {
            Self::Instance => RdsIdKind::Instance,
            Self::Cluster => RdsIdKind::Cluster,
        }
    }

    /// The identifier rules for its snapshots.
    pub fn snapshot_kind(self) -> RdsIdKind {
        match self {
            Self::Instance => RdsIdKind::Snapshot,
            Self::Cluster => RdsIdKind::ClusterSnapshot,
        }
    }
}

/// Statuses an RDS instance, cluster or snapshot does not leave by itself (DOMAIN.md §5).
pub const TERMINAL_STATUSES: &[&str] = &[
    "deleted",
    "deleting",
    "failed",
    "error",
    "incompatible-restore",
    "incompatible-parameters",
    "incompatible-network",
    "incompatible-option-group",
    "incompatible-credentials",
    "inaccessible-encryption-credentials",
    "inaccessible-encryption-credentials-recoverable",
    "restore-error",
    "storage-full",
];

/// The error a database's item ends with when a resource reached a terminal status.
pub const TERMINAL_ERROR: &str = "RdsHandoff.TerminalStatus";

/// The error a database's item ends with when a step has polled as often as its execution's
/// history has room for (`poll.rounds`): the next attempt goes on waiting.
pub const STILL_WAITING: &str = "RdsHandoff.StillWaiting";

/// The prefix of every tag the toolkit gives what it makes: the marks later runs, `status`,
/// `cleanup` and `revoke` read back to know the toolkit's own resources.
pub const TAG_PREFIX: &str = "rds-handoff:";
/// The database a resource was made for.
pub const TAG_DB: &str = "rds-handoff:db";
/// The account an export's resources are for.
pub const TAG_TARGET: &str = "rds-handoff:target-account";
/// What the resource is to the handoff (`intermediate`, `shared-copy`, `restored-database`, …).
pub const TAG_ROLE: &str = "rds-handoff:role";
/// The shared snapshot an import's resources come from (its ARN).
pub const TAG_SOURCE_SNAPSHOT: &str = "rds-handoff:source-snapshot";
/// On an encrypted twin: the database it is the encrypted copy of.
pub const TAG_ENCRYPTED_FROM: &str = "rds-handoff:encrypted-from";
/// On what a cross-region export makes: the region of the database it hands off.
pub const TAG_SOURCE_REGION: &str = "rds-handoff:source-region";
/// On what a cross-region export makes: the region its shared copy is made in, so that
/// `status` where the database is finds the rest of the handoff there.
pub const TAG_TARGET_REGION: &str = "rds-handoff:target-region";

/// The error an export's item ends with when its Share names a snapshot that is not the copy
/// made for its state machine's account.
pub const NOT_FOR_TARGET: &str = "RdsHandoff.NotForThisTarget";

/// How a database or snapshot is encrypted at rest: RDS's `StorageEncryptionType`
/// (DOMAIN.md §14). Since 2026-02-18 a new Aurora cluster is encrypted with an AWS owned key
/// (`sse-rds`) unless told otherwise: encrypted, yet no account but AWS can use its key, so
/// its snapshots can be neither shared nor copied under another key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Encryption {
    /// Not encrypted.
    #[serde(rename = "none")]
    None,
    /// An AWS owned key.
    #[serde(rename = "sse-rds")]
    AwsOwnedKey,
    /// A KMS key: customer managed, or the AWS managed `aws/rds`.
    #[serde(rename = "sse-kms")]
    KmsKey,
    /// A `StorageEncryptionType` this release does not know: refused wherever it matters,
    /// never guessed.
    #[serde(rename = "unknown")]
    Unknown,
}

impl Encryption {
    /// AWS's `StorageEncryptionType` when it gives one; where it omits the field (resources
    /// and regions from before AWS owned keys), `StorageEncrypted` alone, which then meant a
    /// KMS key.
    pub fn read(storage_encryption_type: Option<&str>, storage_encrypted: Option<bool>) -> Self {
        match storage_encryption_type {
            Some("none") => Self::None,
            Some("sse-rds") => Self::AwsOwnedKey,
            Some("sse-kms") => Self::KmsKey,
            Some(_) => Self::Unknown,
            None if storage_encrypted == Some(true) => Self::KmsKey,
            None => Self::None,
        }
    }

    pub fn is_encrypted(self) -> bool {
        self != Self::None
    }

    /// AWS's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::AwsOwnedKey => "sse-rds",
            Self::KmsKey => "sse-kms",
            Self::Unknown => "unknown",
        }
    }

    /// In words, for messages and plans.
    pub fn describe(self) -> &'static str {
        match self {
            Self::None => "not encrypted",
            Self::AwsOwnedKey => "encrypted with an AWS owned key (sse-rds)",
            Self::KmsKey => "encrypted with a KMS key (sse-kms)",
            Self::Unknown => "encrypted in a way this release does not know",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Encryption;

    #[test]
    fn encryption_reads_the_type_and_falls_back_to_the_flag_when_aws_omits_it() {
        assert_eq!(
            Encryption::read(Some("sse-rds"), Some(true)),
            Encryption::AwsOwnedKey
        );
        assert_eq!(
            Encryption::read(Some("sse-kms"), Some(true)),
            Encryption::KmsKey
        );
        assert_eq!(
            Encryption::read(Some("none"), Some(false)),
            Encryption::None
        );
        assert_eq!(Encryption::read(None, Some(true)), Encryption::KmsKey);
        assert_eq!(Encryption::read(None, Some(false)), Encryption::None);
        assert_eq!(Encryption::read(None, None), Encryption::None);
        assert_eq!(
            Encryption::read(Some("sse-new"), Some(true)),
            Encryption::Unknown
        );
        assert!(Encryption::AwsOwnedKey.is_encrypted());
        let json = serde_json::to_string(&Encryption::AwsOwnedKey).unwrap();
        assert_eq!(json, "\"sse-rds\"");
    }
}
