//! Layer 3, the flows: each command of the two agents, written once over the layers below.
//!
//! - [`export`] (`src-agent export`), [`import`] (`tgt-agent import` and `check`),
//!   [`encrypt`] (`src-agent encrypt`), [`revoke`] (`src-agent revoke`).
//! - [`fleet`]: many databases in one run, within AWS's limits.
//! - [`preflight`]: what every run checks before it creates anything (the dry run too);
//!   [`plan`]: a dry run's plan, read from AWS; [`reach`]: whether the chosen security groups
//!   admit the database's clients (`--client-cidr`, `--client-security-group`).
//! - [`holdings`]: what the toolkit holds in an account, for `status` and `cleanup`.
//! - [`review`]: `src-agent policy` and `audit`, the reviewer's commands.
//! - [`data`]: the data check both sides run (`--verify-data`, `tgt-agent verify`).

pub mod data;
pub mod encrypt;
pub mod export;
pub mod fleet;
pub mod holdings;
pub mod import;
pub mod plan;
pub mod preflight;
pub mod reach;
pub mod review;
pub mod revoke;
