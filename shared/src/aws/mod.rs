//! Layer 1, AWS access: the configuration and clients, and the calls each service needs,
//! named by what they do for the flows above; no flow logic.
//!
//! - [`config`]: credential chain, region, endpoint and the clients of one run ([`Aws`]).
//! - [`rds`]: RDS calls for instances and clusters behind one vocabulary.
//! - [`kms`]: the customer managed keys the agents make, find and check.
//! - [`ec2`]: security groups' inbound rules and managed prefix lists, read only.
//! - [`budget`]: how fast the run calls each service, and throttling ridden out as weather.
//! - [`wait`]: polling a resource to a goal status, with a deadline.
//! - [`slots`], [`quota`]: AWS's limits on copies in progress and manual snapshots, and how
//!   much of them an account has left.
//!
//! Depends only on [`crate::base`] and the identifier and policy crates.

pub mod budget;
pub mod config;
pub mod ec2;
pub mod kms;
pub mod quota;
pub mod rds;
pub mod secrets;
pub mod slots;
pub mod wait;

pub use config::*;
