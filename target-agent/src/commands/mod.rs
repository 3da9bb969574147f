//! One module per verb, each a thin adapter from parsed flags to the library.

pub mod check;
pub mod cleanup;
pub mod import;
pub mod status;
pub mod verify;
