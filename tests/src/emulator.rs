//! moto server, one per test, from a venv the harness makes itself.
//!
//! Each test thread (libtest runs every test on a thread of its own) gets a fresh server
//! the first time it asks, and the server is stopped when the thread ends. A test never sees
//! another test's databases, snapshots or keys, so the suite does not slow down as state
//! piles up, and no test meets an account quota (1,000 snapshots) filled by the others.
//!
//! Each server has a data directory of its own, [`Emulator::data_dir`]
//! (`/tmp/rh-data-<port>`, `RDS_HANDOFF_DATA_DIR` to the server): the data plane's
//! database servers, snapshots and registry (see `moto/dataplane.py` and [`crate::dataplane`]).
//! The server runs in a process group of its own, with the database servers it starts; when
//! the thread ends its standard input is closed (it then stops them and exits), and whatever
//! is left of the group is killed.

use std::cell::OnceCell;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub struct Emulator {
    /// Unique in this process. A later test's server may get a port an earlier one had, so
    /// whatever the harness makes once per server is keyed by this, never by the URL.
    pub serial: u64,
    pub url: String,
    pub log: PathBuf,
    /// The data plane's files: `ca.pem`, `dbs/` (the registry), `servers/`, `snapshots/`.
    pub data_dir: PathBuf,
    /// Where Step Functions tasks go by what they mention (see `moto/states_shim.py`).
    routes: PathBuf,
    /// The data plane's unix sockets (short: a socket path is limited to 107 bytes).
    sockets: PathBuf,
}

/// This thread's server. Dropped when the thread ends, which stops the server; should the test
/// process die instead, the server's stdin closes and it exits too (see `moto/server.py`).
struct Running {
    emulator: &'static Emulator,
    child: Child,
}

impl Drop for Running {
    fn drop(&mut self) {
        // A closed stdin asks the server to stop its database servers and exit...
        drop(self.child.stdin.take());
        let pid = self.child.id();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !exited(pid) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        // ...then whatever is left of its process group is killed. The server is reaped only
        // after, so its process group's id cannot have gone to another process meanwhile.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.emulator.sockets);
        // A failed test's server log and data stay in `target/` for reading.
        if !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.emulator.log);
            let _ = std::fs::remove_file(&self.emulator.routes);
            let _ = std::fs::remove_dir_all(&self.emulator.data_dir);
        }
    }
}

/// Whether process `pid` (a child not yet reaped) has exited: it is a zombie, or gone.
fn exited(pid: u32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return true;
    };
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        == Some("Z")
}

thread_local! {
    static RUNNING: OnceCell<Running> = const { OnceCell::new() };
}

impl Emulator {
    /// This test's emulator, started on first use. Panics with the reason if it can't
    /// start: tests never skip for want of it.
    pub fn get() -> &'static Emulator {
        RUNNING.with(|running| {
            running
                .get_or_init(|| {
                    start().unwrap_or_else(|e| {
                        panic!("the AWS emulator (moto server) could not start: {e}")
                    })
                })
                .emulator
        })
    }

    /// Sends every Step Functions task whose request mentions `mention` (a test's database
    /// name) through the proxy at `proxy_url`, so its holds, faults and record reach the
    /// state machine's calls.
    pub fn route_states_tasks(&self, mention: &str, proxy_url: &str) {
        static ROUTES: Mutex<()> = Mutex::new(());
        let _one_writer = ROUTES.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes: serde_json::Map<String, serde_json::Value> = std::fs::read(&self.routes)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let port = proxy_url.rsplit(':').next().unwrap_or_default();
        routes.insert(mention.to_owned(), port.into());
        // Renamed into place: the shim never reads half a file.
        let next = self.routes.with_extension("next");
        std::fs::write(&next, serde_json::Value::Object(routes).to_string())
            .and_then(|()| std::fs::rename(&next, &self.routes))
            .unwrap_or_else(|e| panic!("{}: {e}", self.routes.display()));
    }
}

/// `target/`: the first ancestor of this executable that cargo marked with CACHEDIR.TAG.
pub fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    exe.ancestors()
        .find(|dir| dir.join("CACHEDIR.TAG").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

fn moto_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/moto"))
}

/// The venv's python, making the venv first if it is missing or out of date.
pub fn python() -> Result<PathBuf, String> {
    venv("moto-venv", &moto_dir().join("requirements.txt"))
}

/// The python of the venv `target/<name>`, made from `requirements` if it is missing or
/// its requirements changed since.
pub fn venv(name: &str, requirements: &Path) -> Result<PathBuf, String> {
    let wanted = std::fs::read_to_string(requirements)
        .map_err(|e| format!("{}: {e}", requirements.display()))?;
    let venv = target_dir().join(name);
    let python = venv.join("bin/python");
    let marker = venv.join(".installed");
    let lock_path = target_dir().join(format!("{name}.lock"));
    let lock =
        std::fs::File::create(&lock_path).map_err(|e| format!("{}: {e}", lock_path.display()))?;
    // Several test binaries may start at once; one makes the venv, the others wait.
    lock.lock()
        .map_err(|e| format!("locking {}: {e}", lock_path.display()))?;
    if std::fs::read_to_string(&marker).ok() == Some(wanted.clone()) && python.exists() {
        return Ok(python);
    }
    eprintln!("making the Python venv {} (first run only)", venv.display());
    run_checked(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
    )?;
    run_checked(
        Command::new(&python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ])
            .arg(requirements),
    )?;
    std::fs::write(&marker, wanted).map_err(|e| e.to_string())?;
    Ok(python)
}

fn run_checked(command: &mut Command) -> Result<(), String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{command:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    ))
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| e.to_string())
}

fn start() -> Result<Running, String> {
    let python = python()?;
    let port = free_port()?;
    let log = target_dir().join(format!("moto-{port}.log"));
    let log_file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let routes = target_dir().join(format!("moto-{port}-states-routes.json"));
    std::fs::write(&routes, "{}").map_err(|e| e.to_string())?;
    // Under the system's temporary folder, not `target/`: the database servers run as the
    // `postgres` and `mysql` users, who may not enter a checkout under a private home.
    let data_dir = std::env::temp_dir().join(format!("rh-data-{port}"));
    // Left by an earlier run whose server had the same port: never another test's.
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).map_err(|e| format!("{}: {e}", data_dir.display()))?;
    let sockets = PathBuf::from(format!("/tmp/rh-{port}"));
    let _ = std::fs::remove_dir_all(&sockets);
    let mut child = Command::new(python)
        .arg(moto_dir().join("server.py"))
        .arg(port.to_string())
        .env("RDS_HANDOFF_STATES_ROUTES", &routes)
        .env("RDS_HANDOFF_DATA_DIR", &data_dir)
        .env("RDS_HANDOFF_SOCKET_DIR", &sockets)
        .env(
            "RDS_HANDOFF_TEMPLATES",
            std::env::temp_dir().join("rh-dataplane-templates"),
        )
        // Its own process group, which the database servers it starts share: see `Running`.
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("spawning moto server: {e}"))?;
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("moto server exited ({status}):\n{text}"));
        }
        if ready(port) {
            // Leaked on purpose: a few paths per test, so `get` can hand out `&'static`.
            static SERIALS: AtomicU64 = AtomicU64::new(0);
            let emulator = Box::leak(Box::new(Emulator {
                serial: SERIALS.fetch_add(1, Ordering::Relaxed),
                url,
                log,
                data_dir,
                routes,
                sockets,
            }));
            return Ok(Running { emulator, child });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = Command::new("kill")
        .args(["-KILL", "--", &format!("-{}", child.id())])
        .stderr(Stdio::null())
        .status();
    let _ = child.kill();
    let _ = child.wait();
    Err(format!(
        "moto server did not answer on port {port} within 60 s; log: {}",
        log.display()
    ))
}

fn ready(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /moto-api/ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    let mut head = [0u8; 12];
    stream.write_all(request.as_bytes()).is_ok()
        && stream.read_exact(&mut head).is_ok()
        && head.starts_with(b"HTTP/1.1 200")
}
