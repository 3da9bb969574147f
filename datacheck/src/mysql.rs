//! The digest on MySQL, MariaDB and Aurora MySQL: every base table outside `mysql`, `sys`,
//! `performance_schema` and `information_schema` (where RDS keeps its own tables, such as
//! `mysql.rds_heartbeat2`, which it writes by itself).

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError, OptsBuilder, SslOpts};

use crate::digest::{checksum_hex, table_name, MODULUS};
use crate::tls::bundle;
use crate::{Connection, Digest, Engine, Error, TableDigest, Transport};

/// Base tables (MariaDB's system-versioned ones too) but `MEMORY` ones, which a restored
/// snapshot holds empty.
const TABLES: &str = "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES \
     WHERE TABLE_TYPE IN ('BASE TABLE', 'SYSTEM VERSIONED') \
       AND COALESCE(ENGINE, '') <> 'MEMORY' \
       AND TABLE_SCHEMA NOT IN ('mysql', 'sys', 'performance_schema', 'information_schema') \
     ORDER BY 1, 2";

/// How the checksums are computed here (see [`table_sql`]).
const METHOD: &str = "row-md5-2x64-sum-v1";

const COLUMNS: &str = "SELECT COLUMN_NAME FROM information_schema.COLUMNS \
     WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION";

pub(crate) async fn digest(c: &Connection) -> Result<(Digest, Transport), Error> {
    let (mut conn, transport) = connect(c).await?;
    let digest = read_all(&mut conn).await;
    let _ = conn.disconnect().await;
    Ok((digest?, transport))
}

pub(crate) async fn log_in(c: &Connection) -> Result<Transport, Error> {
    let (conn, transport) = connect(c).await?;
    let _ = conn.disconnect().await;
    Ok(transport)
}

/// Every table, read in one consistent snapshot.
async fn read_all(conn: &mut Conn) -> Result<Digest, Error> {
    // A `TIMESTAMP` reads in the session's time zone, which a parameter group may set
    // differently on each side: both sides read in UTC.
    conn.query_drop("SET time_zone = '+00:00'")
        .await
        .map_err(|e| query_error("the session", &e))?;
    // No statement timeout cuts a large table's scan short (MySQL's and MariaDB's names;
    // each engine refuses the other's, which is no failure).
    let _mysql = conn.query_drop("SET SESSION max_execution_time = 0").await;
    let _mariadb = conn.query_drop("SET SESSION max_statement_time = 0").await;
    conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        .await
        .map_err(|e| query_error("the session", &e))?;
    conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        .await
        .map_err(|e| query_error("the session", &e))?;
    let tables: Vec<(String, String)> = conn
        .query(TABLES)
        .await
        .map_err(|e| query_error("the list of tables", &e))?;
    let mut digest = Digest::new(Engine::Mysql, METHOD);
    for (schema, table) in tables {
        let name = table_name(&[&schema, &table]);
        let what = format!("table `{name}`");
        let columns: Vec<String> = conn
            .exec(COLUMNS, (&schema, &table))
            .await
            .map_err(|e| query_error(&what, &e))?;
        let found: Option<(u64, String, String, u64)> = conn
            .query_first(table_sql(&schema, &table, &columns))
            .await
            .map_err(|e| query_error(&what, &e))?;
        let (rows, high, low, unhashed) = found.ok_or_else(|| Error::Query {
            what: what.clone(),
            message: "no answer".into(),
        })?;
        if unhashed > 0 {
            return Err(Error::Query {
                what,
                message: format!("{unhashed} rows are larger than `max_allowed_packet` allows the server to hash; raise it in the parameter group"),
            });
        }
        let checksum = checksum_hex(&high, &low).ok_or_else(|| Error::Query {
            what,
            message: format!("checksum `{high}` `{low}` out of range"),
        })?;
        digest.tables.insert(name, TableDigest { rows, checksum });
    }
    conn.query_drop("COMMIT")
        .await
        .map_err(|e| query_error("the session", &e))?;
    Ok(digest)
}

/// Row count, two sums modulo 2⁶⁴ of the first and last 64 bits of each row's MD5 over every
/// column's quoted bytes (`QUOTE` tells NULL from the string 'NULL'), in column order, and the
/// rows the server could not hash (`CONCAT_WS` past `max_allowed_packet` gives NULL, which
/// `SUM` would skip in silence).
fn table_sql(schema: &str, table: &str, columns: &[String]) -> String {
    let row = if columns.is_empty() {
        "''".to_owned()
    } else {
        columns
            .iter()
            .map(|c| format!("QUOTE(CAST({} AS BINARY))", quote(c)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let sum = |from: u8| {
        format!(
            "CAST(COALESCE(SUM(CAST(CONV(SUBSTRING(h, {from}, 16), 16, 10) AS UNSIGNED)), 0) % {MODULUS} AS CHAR)"
        )
    };
    format!(
        "SELECT COUNT(*), {}, {}, CAST(COALESCE(SUM(h IS NULL), 0) AS UNSIGNED) \
         FROM (SELECT MD5(CONCAT_WS(',', {row})) AS h FROM {}.{}) AS r",
        sum(1),
        sum(17),
        quote(schema),
        quote(table)
    )
}

fn quote(identifier: &str) -> String {
    format!("`{}`", identifier.replace('`', "``"))
}

/// TLS first, its certificate checked against the endpoint's name; without TLS only when the
/// server offers none and plaintext is allowed.
async fn connect(c: &Connection) -> Result<(Conn, Transport), Error> {
    match attempt(c, true).await {
        Ok(conn) => Ok((conn, Transport::Tls)),
        Err(Error::NoTls { .. }) if c.tls.allow_plaintext => {
            Ok((attempt(c, false).await?, Transport::Plaintext))
        }
        Err(e) => Err(e),
    }
}

async fn attempt(c: &Connection, tls: bool) -> Result<Conn, Error> {
    let (host, port) = c.address();
    let address = c.describe();
    let mut opts = OptsBuilder::default()
        .ip_or_hostname(host)
        .tcp_port(port)
        .user(Some(c.user.clone()))
        .pass(Some(c.password.expose().to_owned()))
        .prefer_socket(false);
    if tls {
        opts = opts.ssl_opts(ssl_opts(c)?);
    }
    tokio::time::timeout(c.connect_timeout, Conn::new(opts))
        .await
        .map_err(|_| Error::Timeout {
            address: address.clone(),
            seconds: c.connect_timeout.as_secs(),
        })?
        .map_err(|e| connect_error(&address, &c.user, e))
}

fn ssl_opts(c: &Connection) -> Result<SslOpts, Error> {
    let mut opts = SslOpts::default().with_danger_tls_hostname_override(Some(c.endpoint.clone()));
    if bundle(&c.tls)?.is_some() {
        if let Some(path) = &c.tls.ca_bundle {
            opts = opts
                .with_root_certs(vec![path.clone().into()])
                .with_disable_built_in_roots(true);
        }
    }
    Ok(opts)
}

fn connect_error(address: &str, user: &str, e: mysql_async::Error) -> Error {
    let address = address.to_owned();
    match e {
        mysql_async::Error::Driver(DriverError::NoClientSslFlagFromServer) => {
            Error::NoTls { address }
        }
        // 1045 ER_ACCESS_DENIED_ERROR, 1698 ER_ACCESS_DENIED_NO_PASSWORD_ERROR.
        mysql_async::Error::Server(server) if matches!(server.code, 1045 | 1698) => Error::Login {
            address,
            user: user.to_owned(),
            message: server.message,
        },
        mysql_async::Error::Io(mysql_async::IoError::Tls(tls)) => Error::Tls {
            address,
            message: tls.to_string(),
        },
        other => Error::Connect {
            address,
            message: other.to_string(),
        },
    }
}

fn query_error(what: &str, e: &mysql_async::Error) -> Error {
    Error::Query {
        what: what.to_owned(),
        message: e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_in_the_row_hash_in_order() {
        let sql = table_sql("shop", "or`ders", &["id".into(), "note".into()]);
        assert!(
            sql.contains(
                "CONCAT_WS(',', QUOTE(CAST(`id` AS BINARY)), QUOTE(CAST(`note` AS BINARY)))"
            ),
            "{sql}"
        );
        assert!(sql.ends_with("FROM `shop`.`or``ders`) AS r"), "{sql}");
    }
}
