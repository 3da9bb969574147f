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
//! 4. The same fleet behind RDS's own throttling (a token bucket of 300, then 12 per second,
//!    per account and region, in the test proxy), copies held as in 3, the agents at their
//!    default budget: makespan against the quota bound, requests per database, the agents'
//!    peak and mean RDS request rate against their budget, throttles received, poll rounds.
//! 5. Poll rounds: the requests one round of waits costs with 10, 100 and 1,000 in flight.
//!
//! `--thousand` runs 1 and 4–5 with 900 instances and 100 clusters; `--throttled-only` runs
//! them at the given sizes. The agents are built in
//! the benchmark's own profile (`--release`, or debug without it).
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
use e2e::proxy::{Bucket, CopyStats, FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir};
use rds_handoff::aws::wait::WaitPolicy;
use rds_handoff::base::vocabulary::DbKind;
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
    /// Seconds every copy is held at `copying` in the fleet runs with copies that take time
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    copy_time: u64,
    /// A fleet at real-AWS scale: 900 instances and 100 clusters, behind RDS's throttling only
    #[arg(long)]
    thousand: bool,
    /// Only sections 1, 4 and 5, at the given sizes
    #[arg(long)]
    throttled_only: bool,
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

/// The fleet's databases in `source`: instances `fl-i-N`, clusters `fl-c-N` (one writer each),
/// made [`MAKING_AT_ONCE`] at a time: a thousand creates at once overwhelm the emulator, and a
/// create retried after its answer was lost meets what its first try made.
async fn make_fleet(source: &Account, options: &Options) {
    let making = std::sync::Arc::new(tokio::sync::Semaphore::new(MAKING_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.instances.max(options.clusters) {
        let (source, making) = (source.clone(), making.clone());
        let (instance, cluster) = (i < options.instances, i < options.clusters);
        tasks.spawn(async move {
            let _turn = making
                .acquire_owned()
                .await
                .expect("the semaphore stays open");
            if instance {
                mysql_instance(&source, &format!("fl-i-{i}"), i % 2 == 0).await;
            }
            if cluster {
                aurora_cluster(&source, &format!("fl-c-{i}"), true).await;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.expect("create a fleet database");
    }
}

const MAKING_AT_ONCE: usize = 16;

struct FleetRun {
    /// The export's and the import's summaries.
    done: (serde_json::Value, serde_json::Value),
    /// RDS requests as the emulator side saw them arrive: the most in one second, and in one
    /// minute (per second), for the export and the import.
    rds_peaks: ((u32, f64), (u32, f64)),
    export: Duration,
    import: Duration,
    requests: (usize, usize),
    peak_copies: (CopyStats, CopyStats),
    rss_kib: (u64, u64),
    faulted: usize,
}

/// The fleet exported and imported through a proxy with `plan`, each agent with `extra`
/// flags.
async fn fleet(options: &Options, plan: FaultPlan, extra: &[&str]) -> (FleetRun, Account) {
    let (source, target) = fresh_accounts().await;
    make_fleet(&source, options).await;
    let wd = Workdir::new(&format!("bench-fleet-{}", source.id));
    let net = network(&target);
    let proxy = Proxy::start(&Emulator::get().url, plan.clone()).await;
    let mut export = vec![
        "export",
        "--all",
        "--target-account",
        &target.id,
        "--manifest-dir",
        "out",
        "--output",
        "json",
    ];
    export.extend_from_slice(extra);
    let (run, export_time, export_rss) = measured(&wd, &proxy, Agent::Src, &source, &export).await;
    let exported = done_json(&run.ok());
    assert_eq!(exported["failed"], 0, "{exported}");
    let export_peak = proxy.stats.copies();
    let export_rds = proxy.stats.rds_peaks();
    let (export_requests, export_faulted) = (proxy.requests(), proxy.faulted());
    eprintln!(
        "export done in {:.1} s, {export_requests} requests, peak RSS {:.1} MB, to AWS: {}",
        export_time.as_secs_f64(),
        export_rss as f64 / 1024.0,
        exported["requests"]
    );
    let (_, sha) = Index::read(&wd.path().join("out/rds-handoff-index.json")).unwrap();
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let index = "out/rds-handoff-index.json";
    let mut import = json(import_args(&[index], &source.id, &[&sha], &net));
    import.extend(extra.iter().map(|s| s.to_string()));
    let (run, import_time, import_rss) = measured(&wd, &proxy, Agent::Tgt, &target, &import).await;
    let done = done_json(&run.ok());
    assert_eq!(done["failed"], 0, "{done}");
    let import_peak = proxy.stats.copies();
    let faulted = export_faulted + proxy.faulted();
    exactly_once(&source, &target, options).await;
    let run = FleetRun {
        done: (exported, done),
        rds_peaks: (export_rds, proxy.stats.rds_peaks()),
        export: export_time,
        import: import_time,
        requests: (export_requests, proxy.requests()),
        peak_copies: (export_peak, import_peak),
        rss_kib: (export_rss, import_rss),
        faulted,
    };
    (run, source)
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
    let databases: Vec<String> = (0..options.instances)
        .map(|i| format!("fl-i-{i}"))
        .chain((0..options.clusters).map(|i| format!("fl-c-{i}")))
        .collect();
    for (side, account) in [("source", source), ("target", target)] {
        let owners = e2e::fixtures::key_owners(account).await;
        for db in &databases {
            let keys = owners.iter().filter(|(_, owner)| owner == db).count();
            assert_eq!(keys, 1, "one key for {db} at the {side}");
        }
    }
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
    let mut options = <Options as clap::Parser>::parse();
    if options.thousand {
        (options.instances, options.clusters) = (900, 100);
    }
    build_agents(!cfg!(debug_assertions));
    raise_snapshot_quota(&options);
    let _ = Emulator::get();
    one_handoff(&options).await;
    println!();
    if !(options.thousand || options.throttled_only) {
        unthrottled_fleets(&options).await;
    }
    let (run, source) = throttled_fleet(&options).await;
    report_fleet(
        "fleet behind RDS's throttling, every copy held",
        &options,
        &run,
    );
    report_budget(&options, &run);
    println!();
    poll_rounds(&source, options.instances).await;
}

/// A fleet past AWS's default 100 manual snapshots needs the quota raised, as its owner would
/// raise it through Service Quotas: room for each database's snapshot and its copy, in both
/// accounts. Set before the emulator starts (tests/moto/shim.py reads it once).
fn raise_snapshot_quota(options: &Options) {
    let room = 2 * (options.instances.max(options.clusters) + 10);
    if room > 100 {
        std::env::set_var("RDS_HANDOFF_MANUAL_SNAPSHOT_QUOTA", room.to_string());
        println!("manual snapshot quota raised to {room} per kind (AWS's default: 100)");
    }
}

/// Sections 2 and 3: the fleet on the emulator alone, the agents at RDS's whole rate (12 per
/// second after a burst of 300): as fast as AWS lets one caller go, which bounds these runs.
async fn unthrottled_fleets(options: &Options) {
    let whole = ["--max-request-rate", "12"];
    let (run, _) = fleet(options, FaultPlan::default(), &whole).await;
    report_fleet("fleet", options, &run);
    println!();
    let faulty = FaultPlan {
        seed: 7,
        rate: 0.2,
        ..FaultPlan::default()
    };
    let (run, _) = fleet(options, faulty, &whole).await;
    report_fleet("fleet, 20% of requests faulted", options, &run);
    println!();
    let held = FaultPlan {
        copy_time: Some(Duration::from_secs(options.copy_time)),
        ..FaultPlan::default()
    };
    let (run, _) = fleet(options, held, &whole).await;
    report_fleet(
        &format!("fleet, every copy taking {} s", options.copy_time),
        options,
        &run,
    );
    report_makespan(options, &run);
    println!();
}

/// The fleet behind RDS's own bucket (per account and region), copies held.
async fn throttled_fleet(options: &Options) -> (FleetRun, Account) {
    let plan = FaultPlan {
        copy_time: Some(Duration::from_secs(options.copy_time)),
        rds_bucket: Some(Bucket::RDS),
        ..FaultPlan::default()
    };
    fleet(options, plan, &[]).await
}

/// The rounds of copies the quota allows the fleet: ⌈N/20⌉ DB snapshot copies, ⌈M/5⌉ DB
/// cluster snapshot copies, side by side.
fn quota_rounds(options: &Options) -> usize {
    options
        .instances
        .div_ceil(20)
        .max(options.clusters.div_ceil(5))
}

/// The export's makespan against the rounds of copies the quota allows.
fn report_makespan(options: &Options, run: &FleetRun) {
    let rounds = quota_rounds(options);
    let copy = run.peak_copies.0.median.as_secs_f64();
    println!(
        "  a copy took {copy:.1} s from its start until the agent saw it available (the {} s it was held, then the next poll)",
        options.copy_time
    );
    println!(
        "  export makespan {:.1} s = {:.1} copies' time; the quota allows {rounds} rounds (⌈{}/20⌉ DB snapshot, ⌈{}/5⌉ DB cluster snapshot copies): at best {:.0} s; one copy at a time would take {}",
        run.export.as_secs_f64(),
        run.export.as_secs_f64() / copy,
        options.instances,
        options.clusters,
        rounds as f64 * options.copy_time as f64,
        options.instances + options.clusters
    );
}

/// What the agents sent to RDS against their budget, as their summaries say.
fn report_budget(options: &Options, run: &FleetRun) {
    report_makespan(options, run);
    let n = (options.instances + options.clusters) as f64;
    for (side, done) in [("export", &run.done.0), ("import", &run.done.1)] {
        let rds = done["requests"]
            .as_array()
            .and_then(|r| r.iter().find(|r| r["service"] == "rds"))
            .cloned()
            .unwrap_or_default();
        let f = |k: &str| rds[k].as_f64().unwrap_or_default();
        println!(
            "  {side}: {:.0} RDS requests ({:.1} per database), at most {:.0} in a second, {:.2}/s over the busiest minute, {:.2}/s mean (budget: 150, then 6/s); {:.0} throttled; {} poll rounds took {} requests",
            f("requests"),
            f("requests") / n,
            f("peak_per_second"),
            f("peak_per_second_over_a_minute"),
            f("mean_per_second"),
            f("throttles"),
            done["poll_rounds"]["rounds"],
            done["poll_rounds"]["requests"],
        );
    }
    for (side, (second, minute)) in [("export", run.rds_peaks.0), ("import", run.rds_peaks.1)] {
        println!(
            "  {side}, as the emulator side saw RDS requests arrive: at most {second} in a second, {minute:.2}/s over the busiest minute"
        );
        // Within the budget: a burst of 150, then 6 a second (the busiest minute can hold the
        // whole burst).
        assert!(second <= 150 + 6, "{side}: {second} in one second");
        assert!(
            minute <= (150.0 + 6.0 * 60.0) / 60.0,
            "{side}: {minute:.2}/s over a minute"
        );
    }
    for (side, took, done) in [
        ("export", run.export, &run.done.0),
        ("import", run.import, &run.done.1),
    ] {
        against_bounds(options, side, took, done);
    }
    println!(
        "  all AWS requests per database: {:.1} (export {} + import {})",
        (run.requests.0 + run.requests.1) as f64 / n,
        run.requests.0,
        run.requests.1
    );
}

/// A side's makespan against what bounds it: the quota's rounds of copies, each seen done
/// within one poll interval (the longest the waits settle to), and the run's RDS budget.
fn against_bounds(options: &Options, side: &str, took: Duration, done: &serde_json::Value) {
    let rds = done["requests"]
        .as_array()
        .and_then(|r| r.iter().find(|r| r["service"] == "rds"))
        .and_then(|r| r["requests"].as_f64())
        .unwrap_or_default();
    let rounds = quota_rounds(options);
    let poll = WaitPolicy::new(Duration::from_secs(3600))
        .max_delay
        .as_secs_f64();
    let copies = rounds as f64 * options.copy_time as f64;
    let quota = copies + rounds as f64 * poll;
    let budget = (rds - 150.0).max(0.0) / 6.0;
    let took = took.as_secs_f64();
    println!(
        "  {side} makespan {took:.0} s against its bounds: the quota's {rounds} rounds of {} s copies, each seen within one poll interval ({poll:.0} s), {quota:.0} s ({copies:.0} s of copying); the budget's {budget:.0} s ({rds:.0} RDS requests at 6/s after 150): {:.2}x the larger (target: at most 1.10x)",
        options.copy_time,
        took / quota.max(budget)
    );
}

/// One wait each on 10, 100 and 1,000 DB instances of `source` (`fl-i-N`), all at once: the
/// rounds and requests they take, through the library as the agents poll.
async fn poll_rounds(source: &Account, instances: usize) {
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    // The library reads credentials as the agents do: from the environment (no other task
    // of this process reads it).
    for (key, value) in source.env() {
        std::env::set_var(key, value);
    }
    let args = rds_handoff::aws::AwsArgs {
        region: Some("us-east-1".parse().unwrap()),
        endpoint_url: Some(proxy.url.clone()),
        ..Default::default()
    };
    let aws = std::sync::Arc::new(rds_handoff::aws::Aws::connect(&args).await.unwrap());
    println!("poll rounds: one wait per DB instance in flight, all at once");
    // Identifiers beyond the fleet's instances cost the same in a round: AWS answers them
    // "not there".
    for n in [10, 100, 1000] {
        let before = (proxy.requests(), aws.rounds.counted());
        let mut waits = tokio::task::JoinSet::new();
        for i in 0..n {
            let aws = aws.clone();
            waits.spawn(async move {
                let id = format!("fl-i-{i}");
                let found =
                    rds_handoff::aws::rds::poll_db(&aws, DbKind::Instance, &id, false).await;
                assert_eq!(found.unwrap().is_some(), i < instances, "{id}");
            });
        }
        while let Some(done) = waits.join_next().await {
            done.unwrap();
        }
        let (rounds, requests) = aws.rounds.counted();
        println!(
            "  {n:>5} in flight: {} rounds, {} requests to AWS ({} by the rounds' count)",
            rounds - before.1 .0,
            proxy.requests() - before.0,
            requests - before.1 .1
        );
        tokio::time::sleep(rds_handoff::aws::rds::ROUND_GAP).await;
    }
}
