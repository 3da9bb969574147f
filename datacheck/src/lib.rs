//! Proves the data arrived: a digest of every user table of a database, computed by the
//! database server itself, and the comparison of two digests table by table.
//!
//! For each user table: its row count, and two sums (modulo 2⁶⁴) of two 64-bit hashes of each
//! row's text, every column included (PostgreSQL: its own `hashtextextended` under two seeds;
//! MySQL/MariaDB: the halves of an MD5). The sums do not depend on row order, count a
//! duplicated row twice, and any single changed value changes them (but for a 2⁻¹²⁸ chance).
//! They catch loss and corruption; they are no signature: a writer to the restored database
//! who set out to forge them could (and could as well change the data after any check).
//! Rows never cross the wire: one aggregate per table comes back. System schemas and RDS's
//! own objects are left out (DOMAIN.md §17), or every comparison would fail.
//!
//! - [`Engine`]: which engines have a digest (PostgreSQL, MySQL/MariaDB, and Aurora's).
//! - [`Connection`]: where and how to connect: the RDS endpoint (or a tunnel to it), the login,
//!   TLS checked against a CA bundle, plaintext only when allowed.
//! - [`take`]: the digest; [`Digest::differences`]: what differs from another.
//!
//! This crate knows nothing of AWS: the agents find the endpoint and the login.

mod digest;
mod error;
mod mysql;
mod postgres;
mod tls;

use std::path::PathBuf;
use std::time::Duration;

pub use digest::{Difference, Digest, TableDigest};
pub use error::Error;

/// The engines a digest is computed for, by the SQL dialect they speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// `postgres`, `aurora-postgresql`.
    Postgres,
    /// `mysql`, `mariadb`, `aurora-mysql`.
    Mysql,
}

impl Engine {
    /// The dialect of an RDS engine name, or `None` for an engine with no digest (Oracle,
    /// SQL Server, Db2…).
    pub fn of_rds(engine: &str) -> Option<Self> {
        match engine {
            "postgres" | "aurora-postgresql" => Some(Self::Postgres),
            "mysql" | "mariadb" | "aurora-mysql" | "aurora" => Some(Self::Mysql),
            _ => None,
        }
    }

    /// The refusal for an RDS engine with no digest.
    pub fn require(engine: &str) -> Result<Self, Error> {
        Self::of_rds(engine).ok_or_else(|| Error::UnsupportedEngine {
            engine: engine.to_owned(),
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Postgres => "PostgreSQL",
            Self::Mysql => "MySQL/MariaDB",
        }
    }
}

/// A password. `Debug` is redacted and there is no `Display`.
pub struct Password(String);

impl Password {
    pub fn new(value: String) -> Self {
        Self(value)
    }

    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(**redacted**)")
    }
}

/// How the server's certificate is checked.
#[derive(Debug, Clone, Default)]
pub struct TlsPolicy {
    /// PEM bundle of the CAs to trust (AWS's RDS bundle); `None`: the public web's roots,
    /// which RDS's certificates are not under.
    pub ca_bundle: Option<PathBuf>,
    /// Connect without TLS when the server offers none. A server that offers TLS is always
    /// spoken to over TLS, its certificate checked.
    pub allow_plaintext: bool,
}

/// Everything needed to reach one database and log in.
#[derive(Debug)]
pub struct Connection {
    pub engine: Engine,
    /// The name the certificate is checked against: the RDS endpoint's.
    pub endpoint: String,
    pub port: u16,
    /// Where to open the TCP connection when it is not the endpoint itself: a tunnel's
    /// local end (`--db-endpoint`).
    pub via: Option<(String, u16)>,
    pub user: String,
    pub password: Password,
    /// The database to connect to first (PostgreSQL needs one; every database is read).
    pub database: Option<String>,
    pub tls: TlsPolicy,
    /// Give up on connecting (not on the digest) after this long.
    pub connect_timeout: Duration,
}

impl Connection {
    /// Where the TCP connection goes: the tunnel, or the endpoint.
    fn address(&self) -> (&str, u16) {
        match &self.via {
            Some((host, port)) => (host.as_str(), *port),
            None => (self.endpoint.as_str(), self.port),
        }
    }

    /// `host:port` as the operator typed or AWS gave it, for messages.
    pub fn describe(&self) -> String {
        let (host, port) = self.address();
        match &self.via {
            Some(_) => format!("{host}:{port} (tunnel to {}:{})", self.endpoint, self.port),
            None => format!("{host}:{port}"),
        }
    }
}

/// What a digest run reports besides the digest: how it connected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// TLS, the certificate checked against the endpoint's name.
    Tls,
    /// The server offered no TLS and plaintext was allowed.
    Plaintext,
}

/// Takes the digest of every user table of the database `connection` reaches, and says
/// whether it went over TLS.
pub async fn take(connection: &Connection) -> Result<(Digest, Transport), Error> {
    match connection.engine {
        Engine::Postgres => postgres::digest(connection).await,
        Engine::Mysql => mysql::digest(connection).await,
    }
}

/// Only logs in, to prove a password works; nothing is read.
pub async fn log_in(connection: &Connection) -> Result<Transport, Error> {
    match connection.engine {
        Engine::Postgres => postgres::log_in(connection).await,
        Engine::Mysql => mysql::log_in(connection).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engines_with_a_digest_and_without() {
        assert_eq!(Engine::of_rds("aurora-postgresql"), Some(Engine::Postgres));
        assert_eq!(Engine::of_rds("mariadb"), Some(Engine::Mysql));
        assert_eq!(Engine::of_rds("aurora-mysql"), Some(Engine::Mysql));
        let refused = Engine::require("oracle-ee").err().map(|e| e.to_string());
        assert!(
            refused.as_deref().is_some_and(|m| m.contains("oracle-ee")),
            "{refused:?}"
        );
    }

    #[test]
    fn a_password_never_prints() {
        let shown = format!("{:?}", Password::new("hunter2-xyz".into()));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
