//! The library behind `src-agent` and `tgt-agent`: everything both sides of a handoff share.
//!
//! - [`ident`]: account ids, RDS identifiers and ARNs, validated once.
//! - [`aws`]: the AWS configuration and clients, the caller's identity.
//! - [`wait`]: polling RDS resources to a goal status, with a deadline.
//! - [`progress`]: progress events and their rendering.
//! - [`error`]: the error type, operator hints, exit codes.
//! - [`policy`], [`kms`]: the key policies the toolkit writes, and its keys.
//! - [`rds`]: RDS calls for instances and clusters behind one vocabulary.
//! - [`plan`]: a dry run's plan, read from AWS.
//! - [`quota`]: AWS's limits on copies in progress, as slots; [`fleet`]: many databases in
//!   one run, within them.
//! - [`preflight`]: what every run checks before it creates anything (the dry run too).
//! - [`export`], [`import`], [`encrypt`], [`revoke`], [`review`]: the agents' commands.
//! - [`manifest`], [`names`], [`password`]: what the two sides exchange and create.
//! - [`workflow`]: each workflow's steps, described once; run here or on AWS Step Functions.
//! - [`state`]: the state file of what a run created; [`holdings`]: what the toolkit holds in
//!   an account, for `status` and `cleanup`.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail by panicking"
    )
)]

pub mod aws;
pub mod cli;
pub mod encrypt;
pub mod error;
pub mod export;
pub mod fleet;
pub mod holdings;
pub mod ident;
pub mod import;
pub mod kms;
pub mod manifest;
pub mod names;
pub mod password;
pub mod plan;
pub mod policy;
pub mod preflight;
pub mod progress;
pub mod quota;
pub mod rds;
pub mod review;
pub mod revoke;
pub mod state;
pub mod wait;
pub mod workflow;

pub use error::{Error, ExitCode, Result};
