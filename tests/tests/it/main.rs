//! End-to-end tests: the real agents against moto server, source and target accounts.
//! One test binary (one emulator), a module per area.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "tests fail by panicking"
)]

mod aurora_default;
mod common;
mod data;
mod dataplane;
mod encrypt;
mod export;
mod fleet;
mod hostile;
mod import;
mod lifecycle;
mod operability;
mod operator;
mod reach;
mod regions;
mod reliability;
mod review;
mod shim;
mod states;
mod trust;
mod two_accounts;
