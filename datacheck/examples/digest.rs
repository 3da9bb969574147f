//! Takes one digest and prints it with the time it took: the data check's benchmark
//! (`bench/digest.sh`) and a way to try a server by hand.
//!
//! `digest ENGINE HOST PORT USER [DATABASE]`, the password in `DATACHECK_PASSWORD`;
//! `DATACHECK_CA_BUNDLE` trusts a PEM bundle, `DATACHECK_ALLOW_PLAINTEXT=1` allows plaintext.

use std::time::{Duration, Instant};

use rds_handoff_datacheck::{take, Connection, Engine, Password, TlsPolicy};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [engine, host, port, user, rest @ ..] = args.as_slice() else {
        return Err("usage: digest ENGINE HOST PORT USER [DATABASE]".into());
    };
    let engine = Engine::require(engine)?;
    let connection = Connection {
        engine,
        endpoint: host.clone(),
        port: port.parse()?,
        via: None,
        user: user.clone(),
        password: Password::new(std::env::var("DATACHECK_PASSWORD")?),
        database: rest.first().cloned(),
        tls: TlsPolicy {
            ca_bundle: std::env::var_os("DATACHECK_CA_BUNDLE").map(Into::into),
            allow_plaintext: std::env::var("DATACHECK_ALLOW_PLAINTEXT").as_deref() == Ok("1"),
        },
        connect_timeout: Duration::from_secs(10),
    };
    let started = Instant::now();
    let (digest, transport) = take(&connection)
        .await
        .map_err(|e| format!("{e}\nhint: {}", e.hint()))?;
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{} tables, {} rows, {seconds:.2} s, {transport:?}",
        digest.tables.len(),
        digest.rows()
    );
    println!("{}", serde_json::to_string_pretty(&digest)?);
    Ok(())
}
