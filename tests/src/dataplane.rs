//! The emulator's data plane, as the tests reach it: real PostgreSQL 15 and MariaDB servers
//! behind the databases a test opts in with the tag [`TAG`] (see `moto/dataplane.py`).
//!
//! The server's registry (`<data dir>/dbs/<account>/<region>/<db>.json`) says where each one
//! listens: [`served`]. A test reaches a database as an admin with an SSM tunnel would: on
//! `127.0.0.1:<port>`, verifying TLS against the RDS endpoint name with [`ca_bundle`]. The
//! harness alone also has the internal admin over the unix socket ([`admin_sql`]), to seed
//! rows on a source ([`seed`]) or tamper with a target. Every helper here blocks (std
//! processes); async tests may call them.
//!
//! [`engines_ready`] checks the engines are installed before a test makes such a database,
//! and installs MariaDB (`apt-get`, as root, once) if it is missing: moto's server never
//! installs anything.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

use crate::accounts::Account;
use crate::emulator::{target_dir, Emulator};

/// The tag that gives a new DB instance or Aurora cluster a real server.
pub const TAG: &str = "emulator:data-plane";

/// Where the PostgreSQL 15 server and its tools are.
pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

/// The command that installs MariaDB, as the harness runs it.
const MARIADB_INSTALL: &str =
    "apt-get install -y --no-install-recommends mariadb-server mariadb-client";

/// A database's server, as the data plane's registry describes it.
#[derive(Debug, Clone)]
pub struct Served {
    /// `postgres` or `mariadb`: the server behind the RDS engine.
    pub engine: String,
    /// The RDS engine (`postgres`, `aurora-postgresql`, `mysql`, `mariadb`, `aurora-mysql`).
    pub rds_engine: String,
    /// The loopback port it listens on (the RDS API reports the database's own port).
    pub port: u16,
    /// The endpoint address RDS reports, the name in the server's certificate.
    pub address: String,
    /// PostgreSQL: the directory of its unix socket; MariaDB: the socket itself.
    pub socket: PathBuf,
    /// The internal admin (over the socket only): `rdsadmin`, or MariaDB's `root`.
    pub admin_user: String,
    pub data_dir: PathBuf,
    pub master_user: String,
    /// DBName / DatabaseName at creation, if any.
    pub database: Option<String>,
    /// `instance` or `cluster`.
    pub kind: String,
}

impl Served {
    pub fn is_postgres(&self) -> bool {
        self.engine == "postgres"
    }
}

fn registry_path(account: &Account, db: &str) -> PathBuf {
    Emulator::get()
        .data_dir
        .join("dbs")
        .join(&account.id)
        .join(account.region)
        .join(format!("{db}.json"))
}

/// The server of `db` (instance or cluster identifier) in `account`, or `None` when it has
/// none (not opted in, another engine, or deleted).
pub fn registered(account: &Account, db: &str) -> Option<Served> {
    let path = registry_path(account, db);
    let text = std::fs::read_to_string(&path).ok()?;
    let entry: serde_json::Value = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: not the registry's JSON: {e}", path.display()));
    let field = |name: &str| entry[name].as_str().unwrap_or_default().to_owned();
    let socket = if entry["engine"] == "postgres" {
        field("socket_dir")
    } else {
        field("socket")
    };
    Some(Served {
        engine: field("engine"),
        rds_engine: field("rds_engine"),
        port: entry["port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or_else(|| panic!("{}: no port", path.display())),
        address: field("address"),
        socket: PathBuf::from(socket),
        admin_user: field("admin_user"),
        data_dir: PathBuf::from(field("data_dir")),
        master_user: field("master_user"),
        database: entry["database"].as_str().map(str::to_owned),
        kind: field("kind"),
    })
}

/// The server of `db` in `account`; panics if it has none.
pub fn served(account: &Account, db: &str) -> Served {
    registered(account, db).unwrap_or_else(|| {
        panic!(
            "`{db}` in account {} has no data-plane server ({} is missing): was it made with \
             the tag `{TAG}` = `true`, of a PostgreSQL or MySQL/MariaDB engine, or restored \
             from a snapshot that holds data?",
            account.id,
            registry_path(account, db).display()
        )
    })
}

/// The CA bundle every server's certificate chains to (this test's emulator).
pub fn ca_bundle() -> PathBuf {
    Emulator::get().data_dir.join("ca.pem")
}

/// Whether something accepts TCP connections on `127.0.0.1:port`.
pub fn port_open(port: u16) -> bool {
    std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
}

/// Only what a client needs: nothing of the host's `PG*`, `MYSQL*` or rc files.
fn client(program: &Path) -> Command {
    let mut command = Command::new(program);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("LANG", "C.UTF-8")
        .env("HOME", "/nonexistent")
        .stdin(Stdio::null());
    command
}

fn psql() -> PathBuf {
    Path::new(PG_BIN).join("psql")
}

fn mariadb_client() -> PathBuf {
    which(&["mariadb", "mysql"]).unwrap_or_else(|| {
        panic!("the MariaDB client (`mariadb`) is not installed: {MARIADB_INSTALL}")
    })
}

/// Runs `command` with `input` on its standard input (written by a thread of its own, so a
/// large output can't stall it).
fn run_with_input(command: &mut Command, input: &str) -> Output {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let writer = child.stdin.take().map(|mut stdin| {
        let input = input.to_owned();
        std::thread::spawn(move || stdin.write_all(input.as_bytes()))
    });
    let out = child
        .wait_with_output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    if let Some(writer) = writer {
        let written = writer
            .join()
            .unwrap_or_else(|_| panic!("{command:?}: writing its input"));
        if let Err(e) = written {
            panic!(
                "{command:?}: writing its input: {e}\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    out
}

/// Runs `sql` (several statements allowed) as the internal admin of `db`'s server, over its
/// unix socket, in `database_name` (PostgreSQL: `postgres` when empty; MariaDB: none
/// selected when empty). Returns the output, unaligned, without headers (PostgreSQL: `|`
/// between columns; MariaDB: tabs). Panics with the server's error if a statement fails.
pub fn admin_sql(account: &Account, db: &str, database_name: &str, sql: &str) -> String {
    admin_sql_on(&served(account, db), database_name, sql)
}

/// [`admin_sql`] on a server already found: from a thread of the test's own (the emulator,
/// and so the registry, is the test thread's).
pub fn admin_sql_on(server: &Served, database_name: &str, sql: &str) -> String {
    let db = &server.address;
    let mut command = if server.is_postgres() {
        client(&psql())
    } else {
        client(&mariadb_client())
    };
    if server.is_postgres() {
        command
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&server.socket)
            .args([
                "-p",
                &server.port.to_string(),
                "-U",
                &server.admin_user,
                "-d",
            ])
            .arg(if database_name.is_empty() {
                "postgres"
            } else {
                database_name
            });
    } else {
        command
            .args([
                "--no-defaults",
                "--default-character-set=utf8mb4",
                "-N",
                "-B",
            ])
            .arg(format!("--socket={}", server.socket.display()))
            .args(["-u", &server.admin_user]);
        if !database_name.is_empty() {
            command.arg(database_name);
        }
    }
    let out = run_with_input(&mut command, sql);
    assert!(
        out.status.success(),
        "SQL as the admin of `{db}` ({} on port {}) failed: {}\n{sql}",
        server.engine,
        server.port,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether `user` logs in to `db`'s server with `password` over TCP on `127.0.0.1`, as a
/// client through a tunnel would. The password goes in the environment, never in arguments.
pub fn can_log_in(account: &Account, db: &str, user: &str, password: &str) -> bool {
    let server = served(account, db);
    let out = if server.is_postgres() {
        client(&psql())
            .args(["-X", "-w", "-q", "-A", "-t", "-c", "SELECT 1"])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", server.port.to_string())
            .env("PGUSER", user)
            .env("PGDATABASE", "postgres")
            .env("PGPASSWORD", password)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGSSLMODE", "prefer")
            .output()
    } else {
        client(&mariadb_client())
            .args(["--no-defaults", "--protocol=TCP", "-h", "127.0.0.1", "-P"])
            .arg(server.port.to_string())
            .args([
                "--connect-timeout=10",
                "-N",
                "-B",
                "-u",
                user,
                "-e",
                "SELECT 1",
            ])
            .env("MYSQL_PWD", password)
            .output()
    };
    let out = out.unwrap_or_else(|e| panic!("logging in to `{db}`: {e}"));
    out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "1"
}

/// Whether `db`'s server offers TLS with a certificate that verifies against [`ca_bundle`]
/// for the host name `name` (`openssl s_client`, STARTTLS as each protocol does it).
pub fn tls_verifies(account: &Account, db: &str, name: &str) -> bool {
    let server = served(account, db);
    let protocol = if server.is_postgres() {
        "postgres"
    } else {
        "mysql"
    };
    let out = client(Path::new("openssl"))
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{}", server.port))
        .args(["-starttls", protocol, "-CAfile"])
        .arg(ca_bundle())
        .args(["-verify_hostname", name, "-verify_return_error"])
        .output()
        .unwrap_or_else(|e| panic!("openssl s_client (is openssl installed?): {e}"));
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verify return code: 0")
}

/// Makes (if missing) two user tables in two schemas (PostgreSQL: `app.orders` and
/// `public.customers` in the database's DBName, owned by the master user; MariaDB:
/// `shop.orders` and `crm.customers`) and adds `rows` rows to each, numbered on from the
/// last: so a second call is "a write after". Columns of text (with NULLs, a newline, a tab
/// and non-ASCII), numeric, timestamp and binary types.
pub fn seed(account: &Account, db: &str, rows: u32) {
    let server = served(account, db);
    if server.is_postgres() {
        let database = server.database.clone().unwrap_or_else(|| "postgres".into());
        let master = format!("\"{}\"", server.master_user.replace('"', "\"\""));
        let sql = format!(
            "CREATE SCHEMA IF NOT EXISTS app;
             CREATE TABLE IF NOT EXISTS app.orders (
                 id bigint PRIMARY KEY,
                 customer_id integer NOT NULL,
                 amount numeric(12,2) NOT NULL,
                 note text,
                 placed_at timestamptz NOT NULL,
                 payload bytea
             );
             CREATE TABLE IF NOT EXISTS public.customers (
                 id integer PRIMARY KEY,
                 name text NOT NULL,
                 email text,
                 created timestamp NOT NULL,
                 balance numeric(14,4)
             );
             ALTER SCHEMA app OWNER TO {master};
             ALTER TABLE app.orders OWNER TO {master};
             ALTER TABLE public.customers OWNER TO {master};
             INSERT INTO app.orders
             SELECT n, n % 97 + 1, round(n * 1.25, 2),
                    CASE WHEN n % 5 = 0 THEN NULL
                         WHEN n % 7 = 0 THEN E'two\\nlines\\tand a tab ' || n
                         ELSE 'note ' || n END,
                    timestamptz '2024-01-01 00:00:00+00' + n * interval '1 minute',
                    CASE WHEN n % 3 = 0 THEN NULL ELSE decode(md5(n::text), 'hex') END
             FROM (SELECT b.base + g AS n
                   FROM (SELECT coalesce(max(id), 0) AS base FROM app.orders) b,
                        generate_series(1, {rows}) g) s;
             INSERT INTO public.customers
             SELECT n, 'Zoë Ñandú ' || n,
                    CASE WHEN n % 4 = 0 THEN NULL ELSE 'c' || n || '@example.com' END,
                    timestamp '2023-06-01 12:00:00' + n * interval '1 hour',
                    CASE WHEN n % 6 = 0 THEN NULL ELSE n * 3.1416 END
             FROM (SELECT b.base + g AS n
                   FROM (SELECT coalesce(max(id), 0) AS base FROM public.customers) b,
                        generate_series(1, {rows}) g) s;"
        );
        admin_sql(account, db, &database, &sql);
    } else {
        let mut sql = String::from(
            "CREATE DATABASE IF NOT EXISTS shop;
             CREATE DATABASE IF NOT EXISTS crm;
             CREATE TABLE IF NOT EXISTS shop.orders (
                 id BIGINT NOT NULL PRIMARY KEY,
                 customer_id INT NOT NULL,
                 amount DECIMAL(12,2) NOT NULL,
                 note TEXT NULL,
                 placed_at DATETIME(6) NOT NULL,
                 payload VARBINARY(64) NULL
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
             CREATE TABLE IF NOT EXISTS crm.customers (
                 id INT NOT NULL PRIMARY KEY,
                 name VARCHAR(100) NOT NULL,
                 email VARCHAR(200) NULL,
                 created TIMESTAMP NULL,
                 balance DECIMAL(14,4) NULL
             ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;",
        );
        // `seq_1_to_0` would count down (1, 0): no insert at all for no rows.
        if rows > 0 {
            sql.push_str(&format!(
                "SET @base = (SELECT COALESCE(MAX(id), 0) FROM shop.orders);
             INSERT INTO shop.orders
             SELECT @base + seq, (@base + seq) % 97 + 1, ROUND((@base + seq) * 1.25, 2),
                    CASE WHEN (@base + seq) % 5 = 0 THEN NULL
                         WHEN (@base + seq) % 7 = 0 THEN CONCAT('two\\nlines\\tand a tab ', @base + seq)
                         ELSE CONCAT('note ', @base + seq) END,
                    TIMESTAMP('2024-01-01 00:00:00') + INTERVAL (@base + seq) MINUTE,
                    IF((@base + seq) % 3 = 0, NULL, UNHEX(MD5(@base + seq)))
             FROM shop.seq_1_to_{rows};
             SET @base = (SELECT COALESCE(MAX(id), 0) FROM crm.customers);
             INSERT INTO crm.customers
             SELECT @base + seq, CONCAT('Zoë Ñandú ', @base + seq),
                    IF((@base + seq) % 4 = 0, NULL, CONCAT('c', @base + seq, '@example.com')),
                    TIMESTAMP('2023-06-01 12:00:00') + INTERVAL (@base + seq) HOUR,
                    IF((@base + seq) % 6 = 0, NULL, (@base + seq) * 3.1416)
             FROM crm.seq_1_to_{rows};"
            ));
        }
        admin_sql(account, db, "", &sql);
    }
}

/// The first of `names` found on `PATH` (or in the sbin directories, not always on it).
fn which(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    dirs.extend(["/usr/sbin", "/usr/local/sbin", "/sbin"].map(PathBuf::from));
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|dir| dir.join(name))
            .find(|candidate| candidate.is_file())
    })
}

fn mariadb_installed() -> bool {
    which(&["mariadbd", "mysqld"]).is_some()
        && which(&["mariadb", "mysql"]).is_some()
        && which(&["mariadb-install-db", "mysql_install_db"]).is_some()
        && which(&["mariadb-dump", "mysqldump"]).is_some()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Panics unless the PostgreSQL 15 server and its tools are installed.
pub fn postgres_ready() {
    for tool in ["postgres", "initdb", "pg_basebackup", "psql"] {
        let path = Path::new(PG_BIN).join(tool);
        assert!(
            path.is_file(),
            "PostgreSQL 15 server binaries not found: apt-get install postgresql-15 \
             ({} is missing)",
            path.display()
        );
    }
}

/// Installs MariaDB if it is missing (`apt-get`, as root, once per machine, under a file lock
/// in `target/`); panics naming the command if it can't.
pub fn mariadb_ready() {
    static CHECKED: Mutex<bool> = Mutex::new(false);
    let mut checked = CHECKED.lock().unwrap_or_else(|e| e.into_inner());
    if *checked || mariadb_installed() {
        *checked = true;
        return;
    }
    let lock_path = target_dir().join("mariadb-install.lock");
    let lock = std::fs::File::create(&lock_path)
        .unwrap_or_else(|e| panic!("{}: {e}", lock_path.display()));
    // Several test binaries may start at once; one installs, the others wait.
    lock.lock()
        .unwrap_or_else(|e| panic!("locking {}: {e}", lock_path.display()));
    if !mariadb_installed() {
        assert!(
            is_root(),
            "MariaDB is not installed and these tests are not run as root: run \
             `{MARIADB_INSTALL}` (as root), then the tests again"
        );
        eprintln!(
            "installing MariaDB for the data plane's tests (first run only): {MARIADB_INSTALL}"
        );
        let install = || {
            Command::new("apt-get")
                .args([
                    "install",
                    "-y",
                    "--no-install-recommends",
                    "mariadb-server",
                    "mariadb-client",
                ])
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output()
        };
        let mut out = install();
        if !out.as_ref().is_ok_and(|o| o.status.success()) {
            // A fresh machine may have no package lists yet.
            let _ = Command::new("apt-get")
                .arg("update")
                .env("DEBIAN_FRONTEND", "noninteractive")
                .output();
            out = install();
        }
        match out {
            Ok(out) if out.status.success() && mariadb_installed() => {}
            Ok(out) => panic!(
                "`{MARIADB_INSTALL}` failed ({}): install MariaDB by hand, then run the tests \
                 again:\n{}{}",
                out.status,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => panic!("`{MARIADB_INSTALL}` could not run: {e}"),
        }
    }
    *checked = true;
}

/// Makes sure the server an RDS engine is backed by is installed (see [`mariadb_ready`]);
/// other engines have no server and need nothing.
pub fn engine_ready(rds_engine: &str) {
    match rds_engine {
        "postgres" | "aurora-postgresql" => postgres_ready(),
        "mysql" | "mariadb" | "aurora-mysql" | "aurora" => mariadb_ready(),
        _ => {}
    }
}

/// Both engines: PostgreSQL 15 checked, MariaDB installed if missing.
pub fn engines_ready() {
    postgres_ready();
    mariadb_ready();
}

/// A tunnel to `db`'s endpoint, as an SSM port forward gives an admin: a local port that
/// reaches whichever server is behind the database's name when a connection arrives (so one
/// opened before a restore reaches the restored database). It lives as long as the test
/// process; a connection made while the database has no server is closed at once.
pub fn tunnel(account: &Account, db: &str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("the tunnel's port");
    let port = listener.local_addr().expect("the tunnel's address").port();
    let registry = registry_path(account, db);
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            let Some(server) = registry_port(&registry)
                .and_then(|port| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
            else {
                continue;
            };
            pump(client, server);
        }
    });
    port
}

fn registry_port(registry: &Path) -> Option<u16> {
    let text = std::fs::read_to_string(registry).ok()?;
    let entry: serde_json::Value = serde_json::from_str(&text).ok()?;
    entry["port"].as_u64().and_then(|p| u16::try_from(p).ok())
}

/// Copies bytes both ways until either side closes.
fn pump(client: std::net::TcpStream, server: std::net::TcpStream) {
    let (Ok(mut client_read), Ok(mut server_read)) = (client.try_clone(), server.try_clone())
    else {
        return;
    };
    let (mut client_write, mut server_write) = (client, server);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(std::net::Shutdown::Both);
    });
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut server_read, &mut client_write);
        let _ = client_write.shutdown(std::net::Shutdown::Both);
    });
}
