//! One module per verb, each a thin adapter from parsed flags to the library.

pub mod audit;
pub mod cleanup;
pub mod encrypt;
pub mod export;
pub mod policy;
pub mod revoke;
pub mod status;
