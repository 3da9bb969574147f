//! The key policies rds-handoff writes and reviews: a typed model, an evaluator, and what is
//! built on them. No AWS SDK, no async runtime, no network: a reviewer builds and tests this
//! crate alone (`cargo test -p rds-handoff-key-policy`). What it evaluates and what it leaves
//! out of AWS's evaluation: README.md beside this crate.
//!
//! Two layers, as in cedar's core/API split:
//! - the core, [`model`] (policy documents as KMS reads them) and [`eval`] (one request, one
//!   decision, with the statements that decided it);
//! - on top of it, [`builder`] (the policies the toolkit writes, the lockout check, peer
//!   statements), [`proof`] (each claim about a policy, proven by evaluation), [`audit`]
//!   (what a live key's policy lets anyone do, failing closed) and [`explain`] (the policy
//!   and its proven claims in words).
//!
//! We write our own model rather than use `iam-rs`: it treats `arn:aws:iam::<acct>:root`
//! as one literal principal (KMS reads it as the whole account) and rejects principal blocks
//! with several types (`{"AWS": …, "Service": …}`), both of which real key policies use.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail by panicking"
    )
)]

pub mod audit;
pub mod builder;
pub mod eval;
pub mod explain;
pub mod model;
pub mod proof;

pub use builder::{
    check_lockout, toolkit_peers, KeyPolicySpec, KeyPolicyVariant, LockoutError, Peer,
};
pub use model::PolicyDocument;
