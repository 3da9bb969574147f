#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::panic,
    reason = "test harness: a failed setup must stop the test with its reason"
)]

//! The end-to-end harness: a real AWS API emulator (moto server) and the real agents.
//!
//! - [`emulator`]: makes the Python venv (inside `target/`, on first use), starts moto server
//!   with the project's shim on a free loopback port, one per test (a fresh server per test thread).
//! - [`accounts`]: the source and target accounts, each through `sts:AssumeRole`.
//! - [`agents`]: runs `src-agent` and `tgt-agent` as an admin would, isolated from the host's
//!   AWS setup.
//! - [`fixtures`]: source databases and target networks to hand off between them.
//! - [`iam`]: what IAM authorizes for each recorded call, to judge the operator policies.
//! - [`dataplane`]: the real database servers behind opted-in databases, as tests reach them.
//!
//! ## The shim (`moto/shim.py`)
//! moto 5.2 looks a snapshot ARN owned by another account up in the caller's own account, so a
//! shared snapshot can never be copied or restored across accounts there. The shim, loaded into
//! the server at start, resolves such an ARN in its owning account and allows it only when the
//! caller's account (or `all`) is in the snapshot's `restore` attribute, answering
//! `DBSnapshotNotFound` / `DBClusterSnapshotNotFoundFault` otherwise, as AWS does. It also marks a
//! cluster restored with `KmsKeyId` as encrypted (AWS does; moto does not) and answers
//! `DescribeAccountAttributes` (the snapshot quota), which moto lacks, and gives each DB instance
//! its own `DbiResourceId` (moto gives all the same one). `tests/shim.rs` tests it both ways.
//! It also gives clusters and their snapshots Aurora's default encryption since 2026-02-18
//! (`StorageEncryptionType` `sse-rds` when nothing is said; `none` only for an explicit
//! `StorageEncrypted=false`, standing for an older cluster) and refuses to share an `sse-rds`
//! cluster snapshot with another account; `tests/aurora_default.rs` tests it both ways.
//! It refuses what AWS refuses and moto lets through: another account's copy or restore of a
//! snapshot under its owner's AWS managed key (`KMSKeyNotAccessibleFault`), a copy of a shared
//! encrypted snapshot without `KmsKeyId`, an instance restored straight from one, `all` added
//! to an encrypted snapshot's `restore` attribute, and a manual snapshot past AWS's default
//! quota of 100 per region (`SnapshotQuotaExceeded`; automated snapshots not counted), the
//! quota `DescribeAccountAttributes` reports; `tests/shim.rs` tests each both ways.
//! Like AWS, it snapshots a database only while it is available (moto snapshots a stopped
//! one): `CreateDBSnapshot` answers `InvalidDBInstanceState` and `CreateDBClusterSnapshot`
//! `InvalidDBClusterStateFault` otherwise, while `StopDBInstance` with `DBSnapshotIdentifier`
//! still takes its snapshot before the stop; `tests/shim.rs` tests it both ways.
//!
//! ## The data plane (`moto/dataplane.py`)
//! A DB instance or Aurora cluster created with the tag `emulator:data-plane` = `true` is
//! backed by a real server on a loopback port (PostgreSQL 15 for `postgres` and
//! `aurora-postgresql`, MariaDB for `mysql`, `mariadb` and `aurora-mysql`), with the API's
//! master user and password (no superuser, but reading every user table) and TLS from a CA of
//! the emulator's, the certificate naming the endpoint address RDS reports. A manual snapshot
//! holds the data as it was when taken (`pg_basebackup`, `mariadb-dump`); copies carry it,
//! also across accounts; a restore starts a new server from it, so a later write is not
//! there; `ModifyDB*` `MasterUserPassword` changes the password in the server; a deleted
//! database's server stops. [`dataplane`] reads the registry the server writes, runs SQL as
//! the internal admin, seeds rows and tries logins; `fixtures::data_instance` and
//! `fixtures::data_cluster` make such databases. `tests/dataplane.rs` tests it.
//! PostgreSQL 15 must be installed (`/usr/lib/postgresql/15/bin`); MariaDB, if missing, is
//! installed by [`dataplane::engine_ready`] before a test makes such a database
//! (`apt-get install mariadb-server mariadb-client`, as root, once), and a test not run as
//! root fails naming that command. moto's server never installs anything.
//!
//! ## The Step Functions shim (`moto/states_shim.py`)
//! moto executes state machines, but sends each AWS SDK task with fixed credentials to
//! `localhost:$MOTO_PORT`, with the parameters as given and botocore's result names. The shim
//! runs each task as the execution role's account, on this server, translates AWS's parameter
//! and result names (the Java SDK's: `DbSnapshotIdentifier`) to botocore's and back, names
//! errors as AWS does (`Rds.DbSnapshotNotFoundException`), sends a Task's effective input as
//! its request when it has no `Parameters`, and returns a definite JSONPath's value, not a
//! one-element list. A test sends the tasks that name its databases through its fault proxy
//! with [`Emulator::route_states_tasks`]. As AWS, it refuses a parameter in botocore's
//! spelling (`DBInstanceIdentifier`) and a state machine whose execution role does not exist
//! or does not trust Step Functions; every account the tests assume has the toolkit's role,
//! [`accounts::EXECUTION_ROLE`].

pub mod accounts;
pub mod agents;
pub mod dataplane;
pub mod emulator;
pub mod fixtures;
pub mod iam;
pub mod proxy;

pub use accounts::{Account, SOURCE, TARGET, THIRD};
pub use agents::{Agent, Run, Workdir};
pub use emulator::Emulator;
