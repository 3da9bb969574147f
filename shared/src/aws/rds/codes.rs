//! The AWS error codes the calls read as answers rather than failures: "not found" becomes
//! `None`, and "already exists" (a create a retry repeated) counts as done.

use crate::base::error::{Error, Result};

fn not_found(err: &Error, codes: &[&str]) -> bool {
    err.aws_code().is_some_and(|c| codes.contains(&c))
}

pub(super) const DB_NOT_FOUND: &[&str] = &[
    "DBInstanceNotFound",
    "DBInstanceNotFoundFault",
    "DBClusterNotFoundFault",
    "DBClusterNotFound",
];
pub(super) const SNAP_NOT_FOUND: &[&str] = &[
    "DBSnapshotNotFound",
    "DBSnapshotNotFoundFault",
    "DBClusterSnapshotNotFoundFault",
    "DBClusterSnapshotNotFound",
];

/// A create whose response was lost and that a retry repeated finds its own result.
const ALREADY_EXISTS: &[&str] = &[
    "DBSnapshotAlreadyExists",
    "DBSnapshotAlreadyExistsFault",
    "DBClusterSnapshotAlreadyExistsFault",
    "DBInstanceAlreadyExists",
    "DBInstanceAlreadyExistsFault",
    "DBClusterAlreadyExistsFault",
];

/// Treats "already exists" as done: every name a run creates is its own (deterministic,
/// and checked to be absent just before the create).
pub fn created(result: Result<()>) -> Result<()> {
    match result {
        Err(err) if err.aws_code().is_some_and(|c| ALREADY_EXISTS.contains(&c)) => Ok(()),
        other => other,
    }
}

/// Turns "not found" into `None`.
pub(super) fn optional<T>(result: Result<T>, codes: &[&str]) -> Result<Option<T>> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(err) if not_found(&err, codes) => Ok(None),
        Err(err) => Err(err),
    }
}
