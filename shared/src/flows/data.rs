//! The data check both agents run (`--verify-data`, `tgt-agent verify`): the flags that say
//! how to reach the database, the login read from a secret, and the digest taken with
//! progress on the terminal.
//!
//! The digest itself is the [`crate::datacheck`] crate's: computed by the database server, one
//! row count and checksum per user table.

use std::path::PathBuf;
use std::time::Duration;

use crate::aws::rds::DbInfo;
use crate::aws::secrets;
use crate::aws::wait::parse_duration;
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};
use crate::datacheck::{self, Connection, Digest, Engine, Password, TlsPolicy, Transport};

/// How to reach the database for the data check.
#[derive(Debug, Clone, clap::Args)]
pub struct DbArgs {
    /// Connect to the database through HOST:PORT (a tunnel, such as an SSM port forward)
    /// instead of its RDS endpoint; the certificate is still checked against the endpoint's name
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_host_port)]
    pub db_endpoint: Option<(String, u16)>,
    /// Trust these CA certificates (PEM) for the database's TLS: AWS's RDS bundle,
    /// global-bundle.pem [default: the public web's roots, which RDS's certificates are not under]
    #[arg(long, value_name = "PATH")]
    pub db_ca_bundle: Option<PathBuf>,
    /// Connect without TLS when the database offers none (a server that offers TLS is always
    /// spoken to over it)
    #[arg(long)]
    pub db_allow_plaintext: bool,
    /// Give up connecting to the database after this long
    #[arg(long, value_name = "DURATION", default_value = "20s", value_parser = parse_duration)]
    pub db_connect_timeout: Duration,
}

impl Default for DbArgs {
    fn default() -> Self {
        Self {
            db_endpoint: None,
            db_ca_bundle: None,
            db_allow_plaintext: false,
            db_connect_timeout: Duration::from_secs(20),
        }
    }
}

/// `HOST:PORT`, `[IPV6]:PORT` too.
fn parse_host_port(text: &str) -> std::result::Result<(String, u16), String> {
    let wrong = || format!("`{text}` is not HOST:PORT (e.g. localhost:15432)");
    let (host, port) = text.rsplit_once(':').ok_or_else(wrong)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| wrong())?;
    if host.is_empty() || port == 0 {
        return Err(wrong());
    }
    Ok((host.to_owned(), port))
}

/// The engine's digest dialect; an engine without one is refused before anything is made.
pub fn engine_of(db_engine: &str) -> Result<Engine> {
    Ok(Engine::require(db_engine)?)
}

/// Who logs in: the login a secret holds.
pub struct Login {
    pub user: String,
    pub password: Password,
    /// Where the login came from, for messages (a secret's name or ARN, never a value).
    pub from: String,
}

impl Login {
    pub async fn from_secret(aws: &Aws, secret: &str) -> Result<Self> {
        let (user, password) = secrets::read_login(aws, secret).await?;
        Ok(Self {
            user,
            password,
            from: format!("secret `{secret}`"),
        })
    }
}

/// The connection to `db` with `login`, through the tunnel if one is given.
pub fn connection(db: &DbInfo, args: &DbArgs, login: Login) -> Result<Connection> {
    let engine = engine_of(&db.database.engine)?;
    let endpoint = db.endpoint.clone().ok_or_else(|| {
        Error::refused(
            format!(
                "{} `{}` has no endpoint yet",
                db.database.kind.name(),
                db.database.identifier
            ),
            "wait until it is `available`, then re-run",
        )
    })?;
    let default_port = match engine {
        Engine::Postgres => 5432,
        Engine::Mysql => 3306,
    };
    Ok(Connection {
        engine,
        endpoint,
        port: db
            .database
            .port
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(default_port),
        via: args.db_endpoint.clone(),
        user: login.user,
        password: login.password,
        database: match engine {
            Engine::Postgres => db.database.database_name.clone(),
            Engine::Mysql => None,
        },
        tls: TlsPolicy {
            ca_bundle: args.db_ca_bundle.clone(),
            allow_plaintext: args.db_allow_plaintext,
        },
        connect_timeout: args.db_connect_timeout,
    })
}

/// Takes the digest of the database `connection` reaches, saying what it read; `what` names
/// it in the events ("source, before the snapshot").
pub async fn take(connection: &Connection, what: &str, progress: &dyn Progress) -> Result<Digest> {
    progress.event(&Event::step(
        "data check",
        what,
        &format!("digest of every user table at {}", connection.describe()),
    ));
    let (digest, transport) = datacheck::take(connection).await?;
    say_transport(connection, transport, progress);
    progress.event(&Event::step(
        "data check",
        what,
        &format!("{} tables, {} rows", digest.tables.len(), digest.rows()),
    ));
    Ok(digest)
}

/// Logs in only, to prove the login works.
pub async fn log_in(connection: &Connection, what: &str, progress: &dyn Progress) -> Result<()> {
    let transport = datacheck::log_in(connection).await?;
    say_transport(connection, transport, progress);
    progress.event(&Event::step(
        "data check",
        what,
        &format!("`{}` logged in", connection.user),
    ));
    Ok(())
}

fn say_transport(connection: &Connection, transport: Transport, progress: &dyn Progress) {
    if transport == Transport::Plaintext {
        progress.event(&Event::warning(
            "data check",
            &connection.describe(),
            "the database offers no TLS: the login and the digest crossed the network in plaintext (`--db-allow-plaintext`)",
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tunnel_is_host_and_port() {
        assert_eq!(
            parse_host_port("localhost:15432"),
            Ok(("localhost".into(), 15432))
        );
        assert_eq!(parse_host_port("[::1]:3306"), Ok(("::1".into(), 3306)));
        for wrong in ["localhost", ":5432", "h:0", "h:99999", "h:x"] {
            assert!(parse_host_port(wrong).is_err(), "{wrong}");
        }
    }
}
