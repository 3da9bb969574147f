//! What can go wrong reaching a database or reading its digest, each with what to check.

/// A failure of the data check. [`Error::hint`] says what the operator checks next.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("engine `{engine}` has no data check: only PostgreSQL and MySQL/MariaDB (and their Aurora editions) do")]
    UnsupportedEngine { engine: String },
    #[error("could not reach the database at {address} within {seconds} s")]
    Timeout { address: String, seconds: u64 },
    #[error("could not connect to the database at {address}: {message}")]
    Connect { address: String, message: String },
    #[error("the database at {address} offers no TLS")]
    NoTls { address: String },
    #[error("TLS with the database at {address} failed: {message}")]
    Tls { address: String, message: String },
    #[error("`{path}`: {message}")]
    CaBundle { path: String, message: String },
    #[error("the database at {address} refused the login of `{user}`: {message}")]
    Login {
        address: String,
        user: String,
        message: String,
    },
    #[error("reading {what} failed: {message}")]
    Query { what: String, message: String },
}

impl Error {
    /// The operator's next step.
    pub fn hint(&self) -> String {
        match self {
            Self::UnsupportedEngine { .. } => {
                "run without `--verify-data`, and check the data with the engine's own tools".into()
            }
            Self::Timeout { .. } | Self::Connect { .. } => {
                "check that a security group of the database admits TCP on its port from this host, \
                 that the endpoint is right, and, through a tunnel (`--db-endpoint`), that the tunnel is up"
                    .into()
            }
            Self::NoTls { .. } => {
                "turn TLS on at the database, or accept plaintext with `--db-allow-plaintext`".into()
            }
            Self::Tls { .. } => {
                "pass AWS's RDS CA bundle with `--db-ca-bundle global-bundle.pem` \
                 (https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem); through a \
                 tunnel the certificate is checked against the RDS endpoint's name"
                    .into()
            }
            Self::CaBundle { .. } => "pass a PEM file of CA certificates".into(),
            Self::Login { .. } => {
                "check the secret the login came from: it must hold the master user's current password"
                    .into()
            }
            Self::Query { .. } => {
                "the master user must be able to read every user table; check its grants".into()
            }
        }
    }

    pub fn is_timeout(&self) -> bool {
        matches!(self, Self::Timeout { .. })
    }

    /// The connection itself failed (not the login or a query): the network may be at fault.
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Timeout { .. } | Self::Connect { .. })
    }
}
