//! `cargo run --release -p e2e --bin bench`: the benchmark (not a test), on the emulator.
//!
//! 1. One handoff (export + import of one instance): the agents vs the same migration by hand
//!    with the AWS CLI (`bench/handoff-by-hand.sh`, 21 calls), alternating, median of
//!    `--runs`; both medians, the ratio, and the AWS requests each made.
//! 2. A fleet (`--instances` + `--clusters`) exported and imported from one process each:
//!    total time, requests, peak copies in progress as the emulator side sees them, peak RSS
//!    of each agent, and a check that every database was handed off exactly once; again
//!    with 20% of requests faulted.
//! 3. The same fleet with every copy taking `--copy-time` seconds: the makespan against
//!    what the quota allows (⌈N/20⌉ rounds of DB snapshot copies, ⌈M/5⌉ of cluster ones).
//!
//! Every run uses fresh accounts, so runs never see each other's databases.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark: setup failures stop it with their reason"
)]

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use e2e::agents::{build_agents, import_args};
use e2e::emulator::venv;
use e2e::fixtures::{aurora_cluster, footprint, mysql_instance, network};
use e2e::proxy::{CopyStats, FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir};
use rds_handoff::flows::fleet::index::Index;

/// The benchmark's flags, parsed as the agents parse theirs.
#[derive(Debug, clap::Parser)]
#[command(
    name = "bench",
    about = "The rds-handoff benchmark, on the local emulator"
)]
struct Options {
    /// Runs of the one-handoff comparison (the median is reported)
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u16).range(1..))]
    runs: u16,
    /// DB instances in the fleet
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Aurora clusters in the fleet
    #[arg(long, default_value_t = 10)]
    clusters: usize,
    /// Seconds every copy is held at `copying` in the last fleet run
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    copy_time: u64,
}

/// A fresh source and target account for one run.
async fn fresh_accounts() -> (Account, Account) {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = 700_000_000_000 + u64::from(std::process::id() % 10_000) * 10_000;
    let n = NEXT.fetch_add(2, Ordering::SeqCst);
    (
        Account::assume(&(base + n).to_string()).await,
        Account::assume(&(base + n + 1).to_string()).await,
    )
}

/// An agent run as a process: its result, wall time and peak RSS (VmHWM, in KiB).
async fn measured(
    wd: &Workdir,
    proxy: &Proxy,
    agent: Agent,
    account: &Account,
    args: &[impl AsRef<std::ffi::OsStr>],
) -> (Run, Duration, u64) {
    let started = Instant::now();
    let mut child = wd
        .command(agent, account, args)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the agent");
    let status = format!("/proc/{}/status", child.id().unwrap_or_default());
    let (mut out, mut err) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = async {
        use tokio::io::AsyncReadExt;
        let (mut o, mut e) = (Vec::new(), Vec::new());
        let _ = tokio::join!(out.read_to_end(&mut o), err.read_to_end(&mut e));
        (o, e)
    };
    let mut peak = 0;
    let watch = async {
        loop {
            if let Some(kib) = high_water_mark(&status) {
                peak = kib;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    };
    let ((o, e), code) = tokio::select! {
        done = async { let streams = read.await; (streams, child.wait().await) } => done,
        _ = watch => unreachable!("the watch never ends"),
    };
    let run = Run {
        code: code.ok().and_then(|c| c.code()).unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o).into_owned(),
        stderr: String::from_utf8_lossy(&e).into_owned(),
    };
    (run, started.elapsed(), peak)
}

/// `args` with JSON output, which the benchmark reads.
fn json(mut args: Vec<String>) -> Vec<String> {
    args.extend(["--output".to_owned(), "json".to_owned()]);
    args
}

fn high_water_mark(status: &str) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn done_json(run: &Run) -> serde_json::Value {
    run.stdout
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["event"] == "done")
        .unwrap_or_else(|| panic!("no result:\n{}\n{}", run.stdout, run.stderr))
}

/// The toolkit's handoff of `db`: (seconds, AWS requests).
async fn toolkit_once(source: &Account, target: &Account, db: &str) -> (f64, usize) {
    let wd = Workdir::new(&format!("bench-{db}"));
    let net = network(target);
    mysql_instance(source, db, false).await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let export = [
        "export",
        "--db-instance",
        db,
        "--target-account",
        &target.id,
        "--output",
        "json",
    ];
    let started = Instant::now();
    let (run, _, _) = measured(&wd, &proxy, Agent::Src, source, &export).await;
    let sha = done_json(&run.ok())["manifest_sha256"]
        .as_str()
        .unwrap()
        .to_owned();
    let manifest = format!("{db}.handoff.json");
    let import = json(import_args(&[&manifest], &source.id, &[&sha], &net));
    let (run, _, _) = measured(&wd, &proxy, Agent::Tgt, target, &import).await;
    run.ok();
    if std::env::var_os("BENCH_LIST_REQUESTS").is_some() {
        for (i, (action, _)) in proxy.stats.seen.lock().unwrap().iter().enumerate() {
            println!("  {:>3} {action}", i + 1);
        }
    }
    (started.elapsed().as_secs_f64(), proxy.requests())
}

/// The same handoff with the AWS CLI script: (seconds, AWS requests).
async fn by_hand_once(
    aws_cli: &Path,
    source: &Account,
    target: &Account,
    db: &str,
) -> (f64, usize) {
    let wd = Workdir::new(&format!("bench-{db}"));
    let net = network(target);
    mysql_instance(source, db, false).await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../bench/handoff-by-hand.sh");
    let path = format!("{}:/usr/bin:/bin", aws_cli.parent().unwrap().display());
    let side = |prefix: &str, account: &Account| {
        account
            .env()
            .into_iter()
            .filter(|(k, _)| k.starts_with("AWS_") && k.contains("KEY") || k == "AWS_SESSION_TOKEN")
            .map(|(k, v)| (format!("{prefix}_{k}"), v))
            .collect::<Vec<_>>()
    };
    let started = Instant::now();
    let out = tokio::process::Command::new("bash")
        .arg(script)
        .current_dir(wd.path())
        .env_clear()
        .env("HOME", wd.path())
        .env("PATH", path)
        .envs(side("SRC", source))
        .envs(side("TGT", target))
        .envs([
            ("DB", db),
            ("SOURCE_ACCOUNT", &source.id),
            ("TARGET_ACCOUNT", &target.id),
            ("SUBNET_GROUP", &net.subnet_group),
            ("SECURITY_GROUP", &net.security_group),
            ("AWS_REGION", "us-east-1"),
            ("AWS_DEFAULT_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &proxy.url),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
        ])
        .output()
        .await
        .expect("run the AWS CLI script");
    assert!(
        out.status.success(),
        "handoff-by-hand.sh failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (started.elapsed().as_secs_f64(), proxy.requests())
}

async fn one_handoff(options: &Options) {
    let aws_cli = venv(
        "bench-venv",
        Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../bench/requirements.txt"
        )),
    )
    .expect("the AWS CLI's venv")
    .with_file_name("aws");
    let (mut ours, mut theirs) = (vec![], vec![]);
    let (mut our_requests, mut their_requests) = (0, 0);
    // Fresh accounts each run: what earlier runs left (keys, snapshots) costs neither side.
    for i in 0..options.runs {
        let (source, target) = fresh_accounts().await;
        let (t, r) = toolkit_once(&source, &target, &format!("bench-tk-{i}")).await;
        ours.push(t);
        our_requests = r;
        let (source, target) = fresh_accounts().await;
        let (t, r) = by_hand_once(&aws_cli, &source, &target, &format!("bench-cli-{i}")).await;
        theirs.push(t);
        their_requests = r;
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!(
        "one handoff (export + import of one instance), median of {} alternating runs:",
        options.runs
    );
    println!("  rds-handoff agents   {ours:>7.2} s   {our_requests:>4} AWS requests");
    println!(
        "  AWS CLI by hand      {theirs:>7.2} s   {their_requests:>4} AWS requests (21 calls)"
    );
    println!("  ratio                {:>7.1}x faster", theirs / ours);
}

/// The fleet's databases in `source`: instances `fl-i-N`, clusters `fl-c-N` (one writer each).
async fn make_fleet(source: &Account, options: &Options) {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.instances {
        let source = source.clone();
        tasks.spawn(async move { mysql_instance(&source, &format!("fl-i-{i}"), i % 2 == 0).await });
    }
    for i in 0..options.clusters {
        let source = source.clone();
        tasks.spawn(async move { aurora_cluster(&source, &format!("fl-c-{i}"), true).await });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create a fleet database");
    }
}

struct FleetRun {
    export: Duration,
    import: Duration,
    requests: (usize, usize),
    peak_copies: (CopyStats, CopyStats),
    rss_kib: (u64, u64),
    faulted: usize,
}

async fn fleet(options: &Options, plan: FaultPlan) -> FleetRun {
    let (source, target) = fresh_accounts().await;
    make_fleet(&source, options).await;
    let wd = Workdir::new(&format!("bench-fleet-{}", source.id));
    let net = network(&target);
    let proxy = Proxy::start(&Emulator::get().url, plan.clone()).await;
    let export = [
        "export",
        "--all",
        "--target-account",
        &target.id,
        "--manifest-dir",
        "out",
        "--output",
        "json",
    ];
    let (run, export_time, export_rss) = measured(&wd, &proxy, Agent::Src, &source, &export).await;
    let done = done_json(&run.ok());
    assert_eq!(done["failed"], 0, "{done}");
    let export_peak = proxy.stats.copies();
    let (export_requests, export_faulted) = (proxy.requests(), proxy.faulted());
    let (_, sha) = Index::read(&wd.path().join("out/rds-handoff-index.json")).unwrap();
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let index = "out/rds-handoff-index.json";
    let import = json(import_args(&[index], &source.id, &[&sha], &net));
    let (run, import_time, import_rss) = measured(&wd, &proxy, Agent::Tgt, &target, &import).await;
    let done = done_json(&run.ok());
    assert_eq!(done["failed"], 0, "{done}");
    let import_peak = proxy.stats.copies();
    let faulted = export_faulted + proxy.faulted();
    exactly_once(&source, &target, options).await;
    FleetRun {
        export: export_time,
        import: import_time,
        requests: (export_requests, proxy.requests()),
        peak_copies: (export_peak, import_peak),
        rss_kib: (export_rss, import_rss),
        faulted,
    }
}

/// Every database handed off once: one shared snapshot and one key per database at the
/// source; one database, one key and one secret per database at the target, no copy left.
async fn exactly_once(source: &Account, target: &Account, options: &Options) {
    let n = options.instances + options.clusters;
    let at_source = footprint(source, "").await;
    let shared = at_source
        .snapshots
        .iter()
        .filter(|s| s.starts_with("rh-"))
        .count();
    assert_eq!(
        shared, n,
        "one shared snapshot per database: {:?}",
        at_source.snapshots
    );
    let at_target = footprint(target, "").await;
    assert_eq!(
        at_target.databases.len(),
        n + options.clusters,
        "each database (and writer) once"
    );
    assert_eq!(at_target.secrets.len(), n, "one secret per database");
    assert!(
        at_target.snapshots.is_empty(),
        "no copy left: {:?}",
        at_target.snapshots
    );
    let keys = |account: &Account| {
        let account = account.clone();
        async move {
            let mut count = 0;
            for i in 0..options.instances {
                count += e2e::fixtures::keys_for(&account, &format!("fl-i-{i}"))
                    .await
                    .len();
            }
            for i in 0..options.clusters {
                count += e2e::fixtures::keys_for(&account, &format!("fl-c-{i}"))
                    .await
                    .len();
            }
            count
        }
    };
    assert_eq!(keys(source).await, n, "one key per database at the source");
    assert_eq!(keys(target).await, n, "one key per database at the target");
}

fn report_fleet(title: &str, options: &Options, run: &FleetRun) {
    println!(
        "{title}: {} instances + {} clusters",
        options.instances, options.clusters
    );
    let line = |side: &str, time: Duration, requests: usize, copies: CopyStats, kib: u64| {
        println!(
            "  {side}  {:>6.1} s  {requests:>6} requests  peak copies in progress: {:>2} DB snapshot (limit 20), {} DB cluster snapshot (limit 5)  peak RSS {:>5.1} MB",
            time.as_secs_f64(),
            copies.peak_db,
            copies.peak_cluster,
            kib as f64 / 1024.0
        );
        assert!(
            copies.peak_db <= 20 && copies.peak_cluster <= 5,
            "over AWS's limit"
        );
    };
    line(
        "export",
        run.export,
        run.requests.0,
        run.peak_copies.0,
        run.rss_kib.0,
    );
    line(
        "import",
        run.import,
        run.requests.1,
        run.peak_copies.1,
        run.rss_kib.1,
    );
    if run.faulted > 0 {
        println!("  faults injected (export and import): {}", run.faulted);
    }
    println!("  every database handed off exactly once: yes");
}

#[tokio::main]
async fn main() {
    let options = <Options as clap::Parser>::parse();
    build_agents(true);
    let _ = Emulator::get();
    one_handoff(&options).await;
    println!();
    let run = fleet(&options, FaultPlan::default()).await;
    report_fleet("fleet", &options, &run);
    println!();
    let faulty = FaultPlan {
        seed: 7,
        rate: 0.2,
        ..FaultPlan::default()
    };
    let run = fleet(&options, faulty).await;
    report_fleet("fleet, 20% of requests faulted", &options, &run);
    println!();
    let held = FaultPlan {
        copy_time: Some(Duration::from_secs(options.copy_time)),
        ..FaultPlan::default()
    };
    let run = fleet(&options, held).await;
    report_fleet(
        &format!("fleet, every copy taking {} s", options.copy_time),
        &options,
        &run,
    );
    let rounds = options
        .instances
        .div_ceil(20)
        .max(options.clusters.div_ceil(5));
    let copy = run.peak_copies.0.median.as_secs_f64();
    println!(
        "  a copy took {copy:.1} s from its start until the agent saw it available (the {} s it was held, then the next poll)",
        options.copy_time
    );
    println!(
        "  export makespan {:.1} s = {:.1} copies' time; the quota allows {rounds} rounds (⌈{}/20⌉ DB snapshot, ⌈{}/5⌉ DB cluster snapshot copies); one copy at a time would take {}",
        run.export.as_secs_f64(),
        run.export.as_secs_f64() / copy,
        options.instances,
        options.clusters,
        options.instances + options.clusters
    );
}
