//! A fault and latency proxy between the agents and the emulator.
//!
//! The agents reach it through `AWS_ENDPOINT_URL`; it forwards each HTTP request to moto and
//! can, at a set rate and seed:
//! - answer without forwarding: throttling in the service's own format (RDS/STS XML
//!   `Throttling`, EC2 XML `RequestLimitExceeded`, KMS/Secrets Manager JSON
//!   `ThrottlingException`), HTTP 500 or 503, or a
//!   dropped connection — all before moto sees the request, as a real transient failure;
//! - forward and answer slowly (latency, not a fault: counted in `faults` as `slow`, never in
//!   `faulted`);
//! - forward a chosen action's request, so AWS carries it out, then lose its answer: reset
//!   the connection, answer HTTP 500, or hold the connection past the agents' read timeout
//!   (`lost_answers`) — the answer lost on the way back, which the SDK's retry repeats;
//! - hold an RDS status (`creating`, `copying`, `modifying`, `failed`, …) for N polls of a
//!   Describe action, so waiting paths run end to end (moto makes everything `available` at
//!   once);
//! - stop at the N-th request: forward it, tell the test (which kills the agent), never answer;
//! - refuse chosen requests with `AccessDenied`, as IAM or a key policy would;
//! - throttle RDS as AWS does: one token bucket per account and region (`rds_bucket`),
//!   `Throttling` in RDS's envelope once it is empty;
//! - make snapshot copies take time (`copying` for a set time after the Copy request), and
//!   count the copies in progress at once, as the service would see them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Holds the status in `action`'s responses at `status` for `polls` responses, for requests
/// whose body contains `matching` (e.g. `DBSnapshotIdentifier=rh-`), or ends with it when it
/// ends with `$`.
#[derive(Debug, Clone)]
pub struct Hold {
    pub action: &'static str,
    pub matching: &'static str,
    pub status: &'static str,
    pub polls: usize,
}

/// What to do to the traffic.
#[derive(Debug, Clone, Default)]
pub struct FaultPlan {
    pub seed: u64,
    /// Fraction of requests faulted (0.0–1.0).
    pub rate: f64,
    pub holds: Vec<Hold>,
    /// Forward request number N (1-based), then notify and never answer it.
    pub stop_at: Option<usize>,
    /// Answer `AccessDenied` to requests for `action` whose body contains `matching`, as IAM
    /// or a key policy would (moto evaluates neither).
    pub denials: Vec<Denial>,
    /// Report every snapshot copy as `copying` until this long after its Copy request (moto
    /// finishes copies at once), as a copy that takes time on AWS.
    pub copy_time: Option<Duration>,
    /// Forward the first `times` requests for `action`, so they are carried out, then lose
    /// their answers (see [`Loss`]). Never combined with a random fault or a denial.
    pub lost_answers: Vec<LostAnswer>,
    /// Throttle RDS requests with a token bucket per caller (access key) and region, as
    /// AWS's per account and region; counted under `throttle-bucket`.
    pub rds_bucket: Option<Bucket>,
}

/// A token bucket's size and refill.
#[derive(Debug, Clone, Copy)]
pub struct Bucket {
    pub burst: f64,
    pub per_second: f64,
}

impl Bucket {
    /// RDS's, per account and region (DOMAIN.md §16).
    pub const RDS: Bucket = Bucket {
        burst: 300.0,
        per_second: 12.0,
    };
}

impl FaultPlan {
    /// Every request of `action` refused as AWS refuses an unauthorized caller; nothing else.
    pub fn deny(action: &'static str) -> FaultPlan {
        FaultPlan {
            denials: vec![Denial {
                action,
                matching: String::new(),
                code: None,
                region: None,
            }],
            ..FaultPlan::default()
        }
    }
}

/// Requests for `action` (exactly as the proxy names it: `CreateKey`, `CreateDBSnapshot`)
/// whose answer is lost after the emulator carried them out, the first `times` of them.
#[derive(Debug, Clone)]
pub struct LostAnswer {
    pub action: &'static str,
    pub times: usize,
    pub how: Loss,
}

/// How an answer is lost once the request was carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// The connection is reset (`RST`) without a response.
    Reset,
    /// HTTP 500 in the service's own error format, as a load balancer or the service's
    /// front end answers when the back end's answer is lost.
    ServerError,
    /// No answer: the connection is held open past the agents' read timeout
    /// ([`LOST_TIMEOUT`]), then closed.
    Timeout,
}

/// The agents' read timeout (`READ_TIMEOUT` in `shared/src/aws/config.rs`, private there).
pub const AGENT_READ_TIMEOUT: Duration = Duration::from_secs(60);
/// How long [`Loss::Timeout`] holds a connection without answering: past
/// [`AGENT_READ_TIMEOUT`], so the SDK gives up on it and retries, but bounded.
pub const LOST_TIMEOUT: Duration = Duration::from_secs(AGENT_READ_TIMEOUT.as_secs() + 5);

/// A request the proxy refuses as AWS would refuse an unauthorized caller, or, with a
/// `code`, as the service would refuse it (`DBSnapshotNotFound`).
#[derive(Debug, Clone)]
pub struct Denial {
    pub action: &'static str,
    pub matching: String,
    pub code: Option<&'static str>,
    /// Only requests signed for this region.
    pub region: Option<&'static str>,
}

/// What the proxy saw and did.
#[derive(Debug, Default)]
pub struct Stats {
    /// Requests that got a fault instead of their answer: throttled, 5xx, dropped, or their
    /// answer lost. Slow answers are latency, not faults: they are not counted here (only in
    /// `faults`, as `slow`).
    pub faulted: AtomicUsize,
    /// By kind: `throttle`, `http-500`, `http-503`, `dropped`, `lost-reset`, `lost-500`,
    /// `lost-timeout`, and `slow`.
    pub faults: Mutex<BTreeMap<&'static str, usize>>,
    /// Every request, in order: `service:Action` and its body (form-encoded or JSON).
    pub seen: Mutex<Vec<(String, String)>>,
    /// The region each request of `seen` was signed for, in the same order.
    pub regions: Mutex<Vec<String>>,
    /// Snapshot copies as the emulator side sees them: started by a Copy request that
    /// succeeded, in progress until a Describe answers `available` for them.
    pub copies: Mutex<Copies>,
    /// Answers lost after the emulator carried the request out (`lost_answers`).
    pub lost: AtomicUsize,
    /// RDS requests that arrived in each second since the proxy started.
    pub rds_per_second: Mutex<Vec<u32>>,
}

/// Copies in progress, seen from the emulator's side of the proxy; DB snapshot copies and
/// DB cluster snapshot copies apart, as AWS limits them apart.
#[derive(Debug, Default)]
pub struct Copies {
    /// By kind (0: DB snapshot, 1: DB cluster snapshot) and identifier.
    started: BTreeMap<(usize, String), std::time::Instant>,
    in_flight: [std::collections::BTreeSet<String>; 2],
    peak: [usize; 2],
    total: usize,
    /// How long each finished copy took, from its Copy request to the first `available`.
    took: Vec<Duration>,
}

/// What the emulator side saw of the copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CopyStats {
    /// The most DB snapshot copies in progress at once.
    pub peak_db: usize,
    /// The most DB cluster snapshot copies in progress at once.
    pub peak_cluster: usize,
    /// Every copy started.
    pub total: usize,
    /// The median time a copy took, from its Copy request to the first `available` answer
    /// (with `copy_time`: that time, plus the wait until the agent polled again).
    pub median: Duration,
}

impl Stats {
    pub fn copies(&self) -> CopyStats {
        let copies = self.copies.lock().expect("copies lock");
        let mut took = copies.took.clone();
        took.sort();
        CopyStats {
            peak_db: copies.peak[0],
            peak_cluster: copies.peak[1],
            total: copies.total,
            median: took.get(took.len() / 2).copied().unwrap_or_default(),
        }
    }
}

/// The value of `key` in a form-encoded body.
fn form_value<'a>(body: &'a str, key: &str) -> Option<&'a str> {
    body.split('&')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
}

/// The identifiers a Describe asks about: by name, or in a filter's values (one poll round
/// for many).
fn described_ids(body: &str, key: &str) -> Vec<String> {
    if let Some(id) = form_value(body, key) {
        return vec![id.to_owned()];
    }
    body.split('&')
        .filter(|kv| kv.starts_with("Filters.Filter.") && kv.contains(".Values.Value."))
        .filter_map(|kv| kv.split_once('='))
        .map(|(_, id)| id.to_owned())
        .collect()
}

/// Records a copy that started, or answers which described ones are still copying (and
/// ends those that are not).
fn track_copy(state: &State, action: &str, request: &[u8], ok: bool) -> Vec<String> {
    let body = String::from_utf8_lossy(request);
    let copy_time = state.plan.lock().expect("plan lock").copy_time;
    let mut copies = state.stats.copies.lock().expect("copies lock");
    match action {
        "CopyDBSnapshot" | "CopyDBClusterSnapshot" if ok => {
            let key = if action == "CopyDBSnapshot" {
                "TargetDBSnapshotIdentifier"
            } else {
                "TargetDBClusterSnapshotIdentifier"
            };
            let kind = usize::from(action == "CopyDBClusterSnapshot");
            if let Some(id) = form_value(&body, key) {
                copies
                    .started
                    .insert((kind, id.to_owned()), std::time::Instant::now());
                copies.in_flight[kind].insert(id.to_owned());
                copies.total += 1;
                copies.peak[kind] = copies.peak[kind].max(copies.in_flight[kind].len());
            }
            vec![]
        }
        "DescribeDBSnapshots" | "DescribeDBClusterSnapshots" => {
            let key = if action == "DescribeDBSnapshots" {
                "DBSnapshotIdentifier"
            } else {
                "DBClusterSnapshotIdentifier"
            };
            let kind = usize::from(action == "DescribeDBClusterSnapshots");
            // A listing names nothing: every copy started is in it, if of its kind.
            let mut described = described_ids(&body, key);
            if described.is_empty() {
                let of_kind = copies.started.keys().filter(|(k, _)| *k == kind);
                described = of_kind.map(|(_, id)| id.clone()).collect();
            }
            let mut copying = vec![];
            for id in described {
                let Some(started) = copies.started.get(&(kind, id.clone())).copied() else {
                    continue;
                };
                if copy_time.is_some_and(|t| started.elapsed() < t) {
                    copying.push(id);
                } else if copies.in_flight[kind].remove(&id) {
                    copies.took.push(started.elapsed());
                }
            }
            copying
        }
        _ => vec![],
    }
}

/// Reports the snapshots in `copying` as `copying` in a Describe's answer, each in its own
/// element (a poll round's answer lists many).
fn mark_copying(action: &str, body: Vec<u8>, copying: &[String]) -> Vec<u8> {
    if copying.is_empty() {
        return body;
    }
    let (element, id_tag) = if action == "DescribeDBSnapshots" {
        ("<DBSnapshot>", "DBSnapshotIdentifier")
    } else {
        ("<DBClusterSnapshot>", "DBClusterSnapshotIdentifier")
    };
    let text = String::from_utf8_lossy(&body);
    let mut parts = text.split(element);
    let mut out = parts.next().unwrap_or_default().to_owned();
    for part in parts {
        let named = |id: &String| part.contains(&format!("<{id_tag}>{id}</{id_tag}>"));
        out.push_str(element);
        if copying.iter().any(named) {
            out.push_str(&part.replacen(
                "<Status>available</Status>",
                "<Status>copying</Status>",
                1,
            ));
        } else {
            out.push_str(part);
        }
    }
    out.into_bytes()
}

impl Stats {
    /// The most RDS requests that arrived in one second, and in one minute (per second).
    pub fn rds_peaks(&self) -> (u32, f64) {
        let counts = self.rds_per_second.lock().expect("stats lock");
        let minute = |w: &[u32]| w.iter().map(|n| f64::from(*n)).sum::<f64>() / 60.0;
        let peak_minute = if counts.len() <= 60 {
            minute(&counts)
        } else {
            counts.windows(60).map(minute).fold(0.0, f64::max)
        };
        (counts.iter().copied().max().unwrap_or(0), peak_minute)
    }

    /// Whether a request for an action ending in `action` went through.
    pub fn saw(&self, action: &str) -> bool {
        !self.bodies(action).is_empty()
    }

    /// The distinct actions requested, as IAM names them (`rds:CopyDBSnapshot`).
    pub fn actions(&self) -> std::collections::BTreeSet<String> {
        let seen = self.seen.lock().expect("stats lock");
        seen.iter().map(|(action, _)| action.clone()).collect()
    }

    /// The bodies of the requests for actions ending in `action`.
    pub fn bodies(&self, action: &str) -> Vec<String> {
        let seen = self.seen.lock().expect("stats lock");
        seen.iter()
            .filter(|(a, _)| a.ends_with(action))
            .map(|(_, body)| body.clone())
            .collect()
    }
}

pub struct Proxy {
    pub url: String,
    pub stats: Arc<Stats>,
    /// Notified when `stop_at` is reached.
    pub stopped: Arc<Notify>,
}

struct State {
    upstream: String,
    started: std::time::Instant,
    /// Each caller and region's RDS bucket: tokens left, and when they were counted.
    buckets: Mutex<BTreeMap<String, (f64, std::time::Instant)>>,
    plan: Mutex<FaultPlan>,
    rng: Mutex<u64>,
    stats: Arc<Stats>,
    stopped: Arc<Notify>,
}

impl Proxy {
    /// Starts a proxy to `upstream` (`http://127.0.0.1:PORT`) on a free loopback port. It
    /// runs until the test's runtime ends.
    pub async fn start(upstream: &str, plan: FaultPlan) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let url = format!("http://{}", listener.local_addr().expect("proxy address"));
        let state = Arc::new(State {
            upstream: upstream.trim_start_matches("http://").to_owned(),
            started: std::time::Instant::now(),
            buckets: Mutex::default(),
            rng: Mutex::new(plan.seed ^ 0x9e37_79b9_7f4a_7c15),
            plan: Mutex::new(plan),
            stats: Arc::new(Stats::default()),
            stopped: Arc::new(Notify::new()),
        });
        let (stats, stopped) = (state.stats.clone(), state.stopped.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, state.clone()));
            }
        });
        Proxy {
            url,
            stats,
            stopped,
        }
    }

    pub fn requests(&self) -> usize {
        self.stats.seen.lock().expect("stats lock").len()
    }

    pub fn faulted(&self) -> usize {
        self.stats.faulted.load(Ordering::SeqCst)
    }

    /// Answers lost after the request was carried out.
    pub fn lost(&self) -> usize {
        self.stats.lost.load(Ordering::SeqCst)
    }
}

/// splitmix64: a small seeded generator, so a seed replays the same faults.
fn next(rng: &Mutex<u64>) -> u64 {
    let mut s = rng.lock().expect("rng lock");
    *s = s.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *s;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Message {
    head: String,
    body: Vec<u8>,
}

impl Message {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (k, v) = line.split_once(':')?;
            k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The service from the SigV4 credential scope (`…/us-east-1/rds/aws4_request`).
    fn service(&self) -> String {
        let auth = self.header("authorization").unwrap_or_default();
        auth.split('/').rev().nth(1).unwrap_or_default().to_owned()
    }

    /// The caller and region from the SigV4 credential (`Credential=AKID/date/region/…`).
    fn caller_region(&self) -> String {
        let auth = self.header("authorization").unwrap_or_default();
        let credential = auth
            .split("Credential=")
            .nth(1)
            .unwrap_or_default()
            .split(',')
            .next()
            .unwrap_or_default();
        let parts: Vec<&str> = credential.split('/').collect();
        format!(
            "{} {}",
            parts.first().unwrap_or(&""),
            parts.get(2).unwrap_or(&"")
        )
    }

    /// The region the request was signed for.
    fn signed_region(&self) -> String {
        let caller_region = self.caller_region();
        let region = caller_region.split(' ').nth(1).unwrap_or_default();
        region.to_owned()
    }

    /// The API action: `Action=` in a query body, or `X-Amz-Target` for JSON services.
    fn action(&self) -> String {
        if let Some(target) = self.header("x-amz-target") {
            return target.rsplit('.').next().unwrap_or_default().to_owned();
        }
        let body = String::from_utf8_lossy(&self.body);
        body.split('&')
            .find_map(|kv| kv.strip_prefix("Action="))
            .unwrap_or_default()
            .to_owned()
    }
}

async fn read_message(stream: &mut TcpStream) -> Option<Message> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let end = loop {
        if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let mut message = Message {
        head,
        body: buf[end..].to_vec(),
    };
    let length = message
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok());
    match length {
        Some(length) => {
            while message.body.len() < length {
                let n = stream.read(&mut chunk).await.ok()?;
                if n == 0 {
                    return None;
                }
                message.body.extend_from_slice(&chunk[..n]);
            }
        }
        // A response without a length ends when the server closes.
        None if !message.head.starts_with("HTTP/") => {}
        None => {
            stream.read_to_end(&mut message.body).await.ok()?;
        }
    }
    Some(message)
}

fn render(status: &str, headers: &[(&str, String)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// An error response in the service's own protocol.
fn error_response(service: &str, status: &str, code: &str) -> Vec<u8> {
    if matches!(service, "kms" | "secretsmanager") {
        let body = format!(r#"{{"__type":"{code}","message":"injected by the test proxy"}}"#);
        let headers = [
            ("content-type", "application/x-amz-json-1.1".to_owned()),
            ("x-amzn-errortype", code.to_owned()),
        ];
        return render(status, &headers, body.as_bytes());
    }
    // EC2's query protocol has an error envelope of its own.
    let body = if service == "ec2" {
        format!(
            "<Response><Errors><Error><Code>{code}</Code><Message>injected by the test proxy</Message></Error></Errors><RequestID>proxy</RequestID></Response>"
        )
    } else {
        format!(
            "<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>injected by the test proxy</Message></Error><RequestId>proxy</RequestId></ErrorResponse>"
        )
    };
    render(
        status,
        &[("content-type", "text/xml".to_owned())],
        body.as_bytes(),
    )
}

enum Fault {
    Throttle,
    Internal,
    Unavailable,
    Drop,
    Slow,
}

fn choose_fault(state: &State) -> Option<Fault> {
    let rate = state.plan.lock().expect("plan lock").rate;
    let roll = (next(&state.rng) % 1_000_000) as f64 / 1_000_000.0;
    if roll >= rate {
        return None;
    }
    Some(match next(&state.rng) % 5 {
        0 => Fault::Throttle,
        1 => Fault::Internal,
        2 => Fault::Unavailable,
        3 => Fault::Drop,
        _ => Fault::Slow,
    })
}

/// Counts a fault: in `faulted` and under `kind`.
fn count(state: &State, kind: &'static str) {
    state.stats.faulted.fetch_add(1, Ordering::SeqCst);
    note(state, kind);
}

/// Counts under `kind` only (latency is not a fault).
fn note(state: &State, kind: &'static str) {
    *state
        .stats
        .faults
        .lock()
        .expect("stats lock")
        .entry(kind)
        .or_default() += 1;
}

async fn serve(mut client: TcpStream, state: Arc<State>) {
    while let Some(request) = read_message(&mut client).await {
        let (service, action) = (request.service(), request.action());
        let number = {
            let mut seen = state.stats.seen.lock().expect("stats lock");
            seen.push((
                format!("{service}:{action}"),
                String::from_utf8_lossy(&request.body).into_owned(),
            ));
            let region = request.signed_region();
            state.stats.regions.lock().expect("stats lock").push(region);
            seen.len()
        };
        if service == "rds" {
            let second = state.started.elapsed().as_secs() as usize;
            let mut counts = state.stats.rds_per_second.lock().expect("stats lock");
            if counts.len() <= second {
                counts.resize(second + 1, 0);
            }
            counts[second] += 1;
        }
        if service == "rds" && over_budget(&state, &request.caller_region()) {
            count(&state, "throttle-bucket");
            let bytes = error_response(&service, "400 Bad Request", "Throttling");
            if client.write_all(&bytes).await.is_err() {
                return;
            }
            continue;
        }
        let denied = {
            let plan = state.plan.lock().expect("plan lock");
            let body = String::from_utf8_lossy(&request.body);
            plan.denials
                .iter()
                .find(|d| {
                    d.action == action
                        && body.contains(&d.matching)
                        && d.region.is_none_or(|r| r == request.signed_region())
                })
                .map(|d| d.code)
        };
        let lost = if denied.is_some() {
            None
        } else {
            take_lost(&state, &action)
        };
        let fault = if denied.is_some() || lost.is_some() {
            None
        } else {
            choose_fault(&state)
        };
        let canned = match (&fault, denied) {
            (None, Some(code)) => {
                let code =
                    code.unwrap_or(if matches!(service.as_str(), "kms" | "secretsmanager") {
                        "AccessDeniedException"
                    } else {
                        "AccessDenied"
                    });
                Some(error_response(&service, "400 Bad Request", code))
            }
            (Some(Fault::Throttle), _) => {
                count(&state, "throttle");
                let code = match service.as_str() {
                    "kms" | "secretsmanager" => "ThrottlingException",
                    "ec2" => "RequestLimitExceeded",
                    _ => "Throttling",
                };
                Some(error_response(&service, "400 Bad Request", code))
            }
            (Some(Fault::Internal), _) => {
                count(&state, "http-500");
                Some(error_response(
                    &service,
                    "500 Internal Server Error",
                    "InternalFailure",
                ))
            }
            (Some(Fault::Unavailable), _) => {
                count(&state, "http-503");
                Some(error_response(
                    &service,
                    "503 Service Unavailable",
                    "ServiceUnavailable",
                ))
            }
            (Some(Fault::Drop), _) => {
                count(&state, "dropped");
                return;
            }
            (Some(Fault::Slow) | None, _) => None,
        };
        if let Some(bytes) = canned {
            if client.write_all(&bytes).await.is_err() {
                return;
            }
            continue;
        }
        let Some(response) = forward(&state.upstream, &request).await else {
            return;
        };
        let stop = state.plan.lock().expect("plan lock").stop_at == Some(number);
        if stop {
            state.stopped.notify_one();
            return;
        }
        let ok =
            response.head.starts_with("HTTP/1.1 200") || response.head.starts_with("HTTP/1.0 200");
        if let Some(how) = lost {
            // Carried out: a copy it started is in progress, whoever hears of it.
            if action.starts_with("Copy") {
                track_copy(&state, &action, &request.body, ok);
            }
            state.stats.lost.fetch_add(1, Ordering::SeqCst);
            match how {
                Loss::Reset => {
                    count(&state, "lost-reset");
                    // A zero linger makes the close a reset (RST), not an orderly end.
                    client.set_zero_linger().ok();
                    return;
                }
                Loss::ServerError => {
                    count(&state, "lost-500");
                    let code = match service.as_str() {
                        "kms" => "KMSInternalException",
                        "secretsmanager" => "InternalServiceError",
                        _ => "InternalFailure",
                    };
                    let bytes = error_response(&service, "500 Internal Server Error", code);
                    if client.write_all(&bytes).await.is_err() {
                        return;
                    }
                    continue;
                }
                Loss::Timeout => {
                    count(&state, "lost-timeout");
                    tokio::time::sleep(LOST_TIMEOUT).await;
                    return;
                }
            }
        }
        if matches!(fault, Some(Fault::Slow)) {
            note(&state, "slow");
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        let body = hold_status(&state, &action, &request.body, response.body);
        let copying = track_copy(&state, &action, &request.body, ok);
        let body = mark_copying(&action, body, &copying);
        let status = response
            .head
            .lines()
            .next()
            .and_then(|line| line.split_once(' '))
            .map_or("502 Bad Gateway", |(_, status)| status)
            .to_owned();
        let headers: Vec<(&str, String)> = response
            .head
            .lines()
            .skip(1)
            .filter_map(|line| line.split_once(':'))
            .filter(|(k, _)| {
                !k.eq_ignore_ascii_case("content-length")
                    && !k.eq_ignore_ascii_case("connection")
                    && !k.trim().is_empty()
            })
            .map(|(k, v)| (k.trim(), v.trim().to_owned()))
            .collect();
        if client
            .write_all(&render(&status, &headers, &body))
            .await
            .is_err()
        {
            return;
        }
    }
}

/// Whether `caller`'s RDS bucket is empty (and takes a token if not).
fn over_budget(state: &State, caller: &str) -> bool {
    let Some(bucket) = state.plan.lock().expect("plan lock").rds_bucket else {
        return false;
    };
    let now = std::time::Instant::now();
    let mut buckets = state.buckets.lock().expect("buckets lock");
    let (tokens, at) = buckets
        .entry(caller.to_owned())
        .or_insert((bucket.burst, now));
    *tokens =
        (*tokens + now.duration_since(*at).as_secs_f64() * bucket.per_second).min(bucket.burst);
    *at = now;
    if *tokens < 1.0 {
        return true;
    }
    *tokens -= 1.0;
    false
}

/// The loss planned for this request of `action`, if one is left (and uses it up).
fn take_lost(state: &State, action: &str) -> Option<Loss> {
    let mut plan = state.plan.lock().expect("plan lock");
    let lost = plan
        .lost_answers
        .iter_mut()
        .find(|l| l.action == action && l.times > 0)?;
    lost.times -= 1;
    Some(lost.how)
}

async fn forward(upstream: &str, request: &Message) -> Option<Message> {
    let mut server = TcpStream::connect(upstream).await.ok()?;
    let head: String = request
        .head
        .lines()
        .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
        .filter(|line| !line.is_empty())
        .map(|line| format!("{line}\r\n"))
        .collect();
    let mut bytes = format!("{head}connection: close\r\n\r\n").into_bytes();
    bytes.extend_from_slice(&request.body);
    server.write_all(&bytes).await.ok()?;
    read_message(&mut server).await
}

/// Rewrites `available` statuses in an RDS Describe response while a hold lasts.
fn hold_status(state: &State, action: &str, request: &[u8], body: Vec<u8>) -> Vec<u8> {
    let request = String::from_utf8_lossy(request);
    let mut plan = state.plan.lock().expect("plan lock");
    let hold = plan.holds.iter_mut().find(|h| {
        let hit = match h.matching.strip_suffix('$') {
            Some(end) => request.ends_with(end),
            None => request.contains(h.matching),
        };
        h.action == action && h.polls > 0 && hit
    });
    let Some(hold) = hold else {
        return body;
    };
    let text = String::from_utf8_lossy(&body);
    if !text.contains(">available<") {
        return body;
    }
    hold.polls -= 1;
    let status = hold.status;
    text.replace(
        "<Status>available</Status>",
        &format!("<Status>{status}</Status>"),
    )
    .replace(
        "<DBInstanceStatus>available</DBInstanceStatus>",
        &format!("<DBInstanceStatus>{status}</DBInstanceStatus>"),
    )
    .into_bytes()
}
