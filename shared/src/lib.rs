//! The library behind `src-agent` and `tgt-agent`: everything both sides of a handoff share,
//! in layers that only point down (a test, `tests/layers.rs`, keeps them so):
//!
//! 0. [`base`]: vocabulary, errors, manifest, names, passwords, progress, state file; with
//!    [`ident`] (identifiers and ARNs), [`policy`] (the key-policy engine) and [`datacheck`]
//!    (the digest of a database's tables), crates of their own that build without the AWS SDK.
//! 1. [`aws`]: configuration and clients, RDS and KMS calls, waiting, quotas.
//! 2. [`workflow`]: each workflow's steps, described once; run here or on AWS Step Functions.
//! 3. [`flows`]: the agents' commands (export, import, encrypt, revoke, fleet, status and
//!    cleanup, preflight and plans, policy review).
//! 4. [`cli`]: the flags and process handling both binaries share.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail by panicking"
    )
)]

pub mod aws;
pub mod base;
pub mod cli;
pub mod flows;
pub mod workflow;

pub use rds_handoff_datacheck as datacheck;
pub use rds_handoff_ident as ident;
pub use rds_handoff_key_policy as policy;

pub use base::error::{Error, ExitCode, Result};
