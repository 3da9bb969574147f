//! The digest on PostgreSQL (and Aurora PostgreSQL): every database the login may connect
//! to but RDS's own (`rdsadmin`) and the templates, every ordinary table outside
//! `pg_catalog`, `information_schema` and the toast and temporary schemas.

use tokio::net::TcpStream;
use tokio_postgres::config::SslMode;
use tokio_postgres::Client;

use crate::digest::{checksum_hex, table_name, MODULUS};
use crate::tls::PgTls;
use crate::{Connection, Digest, Engine, Error, TableDigest, Transport};

/// Every name from `pg_catalog`, and `search_path` set to it when the session starts
/// (`connect`): a function or operator that a database's owner put in a schema of theirs
/// never stands in for the built-in one (nor runs with the login's rights).
/// How the checksums are computed here (see [`table_sql`]).
const METHOD: &str = "row-text-hashtextextended-2x64-sum-v1";

const DATABASES: &str = "SELECT datname FROM pg_catalog.pg_database \
     WHERE datallowconn AND NOT datistemplate AND datname <> 'rdsadmin' ORDER BY 1";

/// A row's text depends on session settings (a `timestamptz` on `TimeZone`, a date on
/// `DateStyle`, `money` on `lc_monetary`…), which a parameter group or a role may set
/// differently on each side: both sides read under the same ones. A large table takes as
/// long as it takes: no timeout a parameter group sets cuts its scan short. Row-level
/// security off: a table whose policy would hide rows from the login fails loudly instead
/// of being read in part.
const SESSION: &str = "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
     SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'; \
     SET lc_monetary = 'C'; SET xmloption = 'content'; \
     SET statement_timeout = 0; SET idle_in_transaction_session_timeout = 0; \
     SET row_security = off";

/// Ordinary permanent tables only: a partitioned table's rows are read in its partitions, and
/// an unlogged table is left out (a restored snapshot holds it empty, on RDS as here).
const TABLES: &str = "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c \
     JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind = 'r' AND c.relpersistence = 'p' \
       AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
       AND n.nspname !~ '^pg_(toast|temp_)' \
     ORDER BY 1, 2";

pub(crate) async fn digest(c: &Connection) -> Result<(Digest, Transport), Error> {
    let first = c.database.clone().unwrap_or_else(|| "postgres".to_owned());
    let (client, transport) = connect(c, &first).await?;
    let databases: Vec<String> = client
        .query(DATABASES, &[])
        .await
        .map_err(|e| query_error("the list of databases", &e))?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let mut digest = Digest::new(Engine::Postgres, METHOD);
    for database in databases {
        if database == first {
            read_database(&client, &database, &mut digest).await?;
        } else {
            let (other, _) = connect(c, &database).await?;
            read_database(&other, &database, &mut digest).await?;
        }
    }
    Ok((digest, transport))
}

pub(crate) async fn log_in(c: &Connection) -> Result<Transport, Error> {
    let first = c.database.clone().unwrap_or_else(|| "postgres".to_owned());
    Ok(connect(c, &first).await?.1)
}

/// One database's tables, read in one snapshot of it.
async fn read_database(client: &Client, database: &str, digest: &mut Digest) -> Result<(), Error> {
    let what = format!("database `{database}`");
    client
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .await
        .map_err(|e| query_error(&what, &e))?;
    let tables = client
        .query(TABLES, &[])
        .await
        .map_err(|e| query_error(&what, &e))?;
    for row in tables {
        let (schema, table): (String, String) = (row.get(0), row.get(1));
        let name = table_name(&[database, &schema, &table]);
        let sql = table_sql(&schema, &table);
        let found = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| query_error(&format!("table `{name}`"), &e))?;
        let rows: i64 = found.get(0);
        let (high, low): (String, String) = (found.get(1), found.get(2));
        let checksum = checksum_hex(&high, &low).ok_or_else(|| Error::Query {
            what: format!("table `{name}`"),
            message: format!("checksum `{high}` `{low}` out of range"),
        })?;
        digest.tables.insert(
            name,
            TableDigest {
                rows: rows.unsigned_abs(),
                checksum,
            },
        );
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(|e| query_error(&what, &e))
}

/// Row count and two sums modulo 2⁶⁴ of a 64-bit hash of each row's text, under two seeds
/// (`hashtextextended`, PostgreSQL's own hash, which runs at about the speed the server turns
/// rows into text: MD5 took four times as long). The row's text (`ROW(t.*)`, not `t`, which a
/// column named `t` would stand for) holds every column. `ONLY`: an inheritance parent does
/// not count its children's rows.
fn table_sql(schema: &str, table: &str) -> String {
    let sum = |seed: u32| {
        format!(
            "((coalesce(pg_catalog.sum(pg_catalog.hashtextextended(r, {seed})), 0) \
               % {MODULUS} + {MODULUS}) % {MODULUS})::text"
        )
    };
    format!(
        "SELECT pg_catalog.count(*)::int8, {}, {} \
         FROM (SELECT ROW(t.*)::text AS r FROM ONLY {}.{} AS t) AS x",
        sum(SEEDS[0]),
        sum(SEEDS[1]),
        quote(schema),
        quote(table)
    )
}

/// The two hashes' seeds: any two different ones, fixed, so both sides compute the same.
const SEEDS: [u32; 2] = [0x5244_4831, 0x5244_4832];

fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

async fn connect(c: &Connection, database: &str) -> Result<(Client, Transport), Error> {
    let (host, port) = c.address();
    let address = c.describe();
    let mut config = tokio_postgres::Config::new();
    config
        .user(&c.user)
        .password(c.password.expose())
        .dbname(database)
        .application_name("rds-handoff-datacheck")
        .options("-c search_path=pg_catalog,pg_temp")
        .ssl_mode(if c.tls.allow_plaintext {
            SslMode::Prefer
        } else {
            SslMode::Require
        });
    let tls = PgTls::new(&c.tls, &c.endpoint)?;
    let attempt = async {
        let stream = TcpStream::connect((host, port))
            .await
            .map_err(|e| Error::Connect {
                address: address.clone(),
                message: e.to_string(),
            })?;
        config
            .connect_raw(stream, tls)
            .await
            .map_err(|e| connect_error(&address, &c.user, &e))
    };
    let (client, connection) = tokio::time::timeout(c.connect_timeout, attempt)
        .await
        .map_err(|_| Error::Timeout {
            address: address.clone(),
            seconds: c.connect_timeout.as_secs(),
        })??;
    tokio::spawn(connection);
    client
        .batch_execute(SESSION)
        .await
        .map_err(|e| query_error("the session's settings", &e))?;
    let tls: bool = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map(|row| row.get(0))
        .map_err(|e| query_error("the connection's TLS state", &e))?;
    Ok((
        client,
        if tls {
            Transport::Tls
        } else {
            Transport::Plaintext
        },
    ))
}

fn connect_error(address: &str, user: &str, e: &tokio_postgres::Error) -> Error {
    let message = full_message(e);
    if let Some(db) = e.as_db_error() {
        // 28P01 invalid_password, 28000 invalid_authorization_specification.
        if db.code().code().starts_with("28") {
            return Error::Login {
                address: address.to_owned(),
                user: user.to_owned(),
                message: db.message().to_owned(),
            };
        }
    }
    if message.contains("does not support TLS") {
        return Error::NoTls {
            address: address.to_owned(),
        };
    }
    if message.contains("TLS") || message.contains("certificate") {
        return Error::Tls {
            address: address.to_owned(),
            message,
        };
    }
    Error::Connect {
        address: address.to_owned(),
        message,
    }
}

fn query_error(what: &str, e: &tokio_postgres::Error) -> Error {
    Error::Query {
        what: what.to_owned(),
        message: full_message(e),
    }
}

/// The error and its causes on one line (tokio-postgres puts the reason in the source).
fn full_message(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_quoted_so_no_name_escapes() {
        assert_eq!(quote(r#"we"ird"#), r#""we""ird""#);
        let sql = table_sql("app", "orders");
        assert!(sql.contains(r#"FROM ONLY "app"."orders" AS t"#), "{sql}");
        assert!(sql.contains("SELECT ROW(t.*)::text AS r"), "{sql}");
    }
}
