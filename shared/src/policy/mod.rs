//! Key policies: the typed model, the builder, the evaluator, the lockout check, the audit
//! and the plain-words explanation.
//!
//! We write our own model rather than use `iam-rs`: it treats `arn:aws:iam::<acct>:root`
//! as one literal principal (KMS reads it as the whole account) and rejects principal blocks
//! with several types (`{"AWS": …, "Service": …}`), both of which real key policies use.

pub mod audit;
pub mod builder;
pub mod eval;
pub mod explain;
pub mod model;
pub mod proof;

#[cfg(test)]
mod matrix;

pub use builder::{check_lockout, KeyPolicySpec, KeyPolicyVariant, Peer};
pub use model::PolicyDocument;
