//! Layer 0, the foundations: what every other layer speaks and nothing here reaches up.
//!
//! - [`vocabulary`]: the kinds of database, the statuses RDS resources do not leave by
//!   themselves, the error name a workflow ends with.
//! - [`error`]: the error type, operator hints, exit codes.
//! - [`manifest`]: the handoff manifest the two sides exchange; [`names`]: the deterministic
//!   names of what a run creates; [`password`]: master passwords, never printed.
//! - [`progress`]: progress events and their rendering; [`state`]: the state file of what a
//!   run created.
//!
//! Identifiers and ARNs ([`crate::ident`]) and the key-policy engine ([`crate::policy`]) sit
//! beside this layer as crates of their own, with no AWS SDK and no network.

pub mod error;
pub mod manifest;
pub mod names;
pub mod password;
pub mod progress;
pub mod state;
pub mod vocabulary;
