//! The run's request budget: how fast one agent calls each AWS service.
//!
//! RDS throttles each account and region with one token bucket that every caller draws from
//! (300 requests burst, 12 per second sustained; DOMAIN.md §16): the console, other
//! automation and the application's own tooling too. So each agent keeps a bucket of its own
//! per service, shared by every database of the run, at half of what RDS allows by default
//! (150 burst, 6 per second; `--max-request-rate` sets the RDS rate), and smaller ones for the
//! other services. Every request waits for its turn, given out in the order requests ask, so
//! a fleet of a thousand databases sends no faster than the budget.
//!
//! A throttled answer (the SDK's throttling codes: `Throttling`, `ThrottlingException`,
//! `RequestLimitExceeded`, …) is weather, not failure: the bucket halves its rate and drops
//! its burst, lays the turns already given out at least the new rate's interval apart, and
//! earns the rate back over the next minute; the request is sent again after
//! a backoff with jitter, and handed to the SDK (whose retries sign it anew) only once it has
//! been held [`WEATHER`] in all. The SDK never sees most throttles, so they use up neither its
//! retry quota nor its attempts.
//!
//! A request waits for its turn before the SDK signs it (the turn is taken where the SDK
//! resolves the request's credentials, on every attempt), so a long wait never ages a
//! signature or reads as clock skew; only a throttled request's re-sends, bounded by
//! [`WEATHER`], wait after it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::identity::{
    IdentityFuture, ResolveCachedIdentity, SharedIdentityCache, SharedIdentityResolver,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::body::SdkBody;
use aws_smithy_types::byte_stream::ByteStream;
use aws_smithy_types::config_bag::ConfigBag;
use rand::Rng;
use serde::Serialize;
use tokio::time::Instant;

/// How long one signed request may be sent again while throttled (its backoffs and turns)
/// before the throttled answer goes to the SDK, which signs the request anew: inside SigV4's
/// five minutes.
pub const WEATHER: Duration = Duration::from_secs(240);
/// The slowest a bucket goes, however often it is throttled, and the least
/// `--max-request-rate`.
pub const MIN_RATE: f64 = 0.5;
/// How long reading an error answer's body may take.
const READ_ERROR: Duration = Duration::from_secs(30);

/// Whether `code` is one AWS throttles with: the SDK's own list, less `LimitExceededException`
/// (KMS and others say so of a resource quota, which waiting does not lift).
pub fn is_throttling_code(code: &str) -> bool {
    code != "LimitExceededException"
        && aws_runtime::retries::classifiers::THROTTLING_ERRORS.contains(&code)
}

/// A token bucket's size and refill.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Rate {
    pub burst: f64,
    pub per_second: f64,
}

impl Rate {
    /// RDS: half of AWS's documented bucket (300 burst, 12 per second).
    pub const RDS: Rate = Rate::rds(6.0);
    /// KMS, whose quotas are per operation: all of a run's KMS calls together no faster than
    /// the control-plane calls it makes (CreateKey, CreateAlias, PutKeyPolicy) each allow.
    pub const KMS: Rate = Rate {
        burst: 20.0,
        per_second: 5.0,
    };
    /// Secrets Manager, EC2 (read only), STS and Step Functions: a few calls per database, at
    /// a modest pace of their own.
    pub const OTHER: Rate = Rate {
        burst: 20.0,
        per_second: 5.0,
    };

    /// An RDS budget of `per_second` sustained, with a burst of 25 seconds' worth (150 at the
    /// default 6), as AWS's own bucket holds 25 seconds of its rate.
    pub const fn rds(per_second: f64) -> Rate {
        Rate {
            burst: per_second * 25.0,
            per_second,
        }
    }
}

/// Parses `--max-request-rate`: RDS requests per second, from [`MIN_RATE`] to AWS's 12.
pub fn parse_rate(value: &str) -> std::result::Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("`{value}` is not a number of requests per second, like `6`"))?;
    if !(MIN_RATE..=12.0).contains(&rate) {
        return Err(format!(
            "`{value}` is outside {MIN_RATE}–12: RDS allows each account and region 12 requests per second, shared with every other caller"
        ));
    }
    Ok(rate)
}

/// One service's bucket: its pace and what it counted.
#[derive(Debug)]
pub struct Bucket {
    pub service: &'static str,
    rate: Rate,
    pace: Mutex<Pace>,
    tally: Mutex<Tally>,
    /// Counts the throttles that laid the turns given out further apart: their waiters read
    /// their time again.
    relaid: tokio::sync::watch::Sender<u64>,
}

/// One schedule for every request: the burst's tokens go at once; past them, each turn is
/// given out one interval of the rate now after the last, so turns go in the order they were
/// asked for and never faster than the rate at which each was given. A throttle lays the
/// turns still to go at least the new rate's interval apart, and no further.
#[derive(Debug)]
struct Pace {
    /// The rate now: `rate.per_second`, less after a throttle.
    per_second: f64,
    /// Tokens in the bucket at `at`, earned only while no turn is given out for later.
    tokens: f64,
    at: Instant,
    /// When the last turn given out goes (or went).
    tail: Instant,
    /// When each turn given out and still to go goes, by ticket: `queue[0]` is ticket `first`.
    queue: VecDeque<Instant>,
    first: u64,
    /// When the rate was last halved: a burst of throttled answers to requests already sent
    /// halves it once.
    halved: Option<Instant>,
}

impl Pace {
    /// Tokens earned since `at` (none while turns given out are still to go), and after a
    /// throttle the rate earned back: all of it over a minute. Turns whose time has come
    /// leave the queue.
    fn refill(&mut self, now: Instant, rate: Rate) {
        if now > self.at {
            let secs = (now - self.at).as_secs_f64();
            let idle = now - self.at.max(self.tail).min(now);
            self.tokens = (self.tokens + idle.as_secs_f64() * self.per_second).min(rate.burst);
            self.per_second =
                (self.per_second + secs * rate.per_second / 60.0).min(rate.per_second);
            self.at = now;
        }
        while self.queue.front().is_some_and(|go| *go <= now) {
            self.queue.pop_front();
            self.first += 1;
        }
    }

    /// The next turn: now, from the burst's tokens (no ticket), or one interval after the
    /// last turn (or after the token being earned now), with its ticket.
    fn turn(&mut self, now: Instant) -> (Instant, Option<u64>) {
        if self.tail <= now && self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return (now, None);
        }
        let interval = 1.0 / self.per_second;
        let go = match self.tail > now {
            true => self.tail + Duration::from_secs_f64(interval),
            false => now + Duration::from_secs_f64((1.0 - self.tokens.max(0.0)) * interval),
        };
        self.tokens = 0.0;
        self.tail = go;
        self.queue.push_back(go);
        (go, Some(self.first + self.queue.len() as u64 - 1))
    }

    /// Halves the rate (down to `floor`) and lays the turns still to go at least its
    /// interval apart (the next one keeps its time); whether any moved.
    fn halve(&mut self, floor: f64) -> bool {
        self.per_second = (self.per_second / 2.0).max(floor);
        let interval = Duration::from_secs_f64(1.0 / self.per_second);
        let mut moved = false;
        let mut previous: Option<Instant> = None;
        for go in &mut self.queue {
            if let Some(earliest) = previous.map(|p| p + interval) {
                if *go < earliest {
                    *go = earliest;
                    moved = true;
                }
            }
            previous = Some(*go);
        }
        if let Some(last) = previous {
            self.tail = last;
        }
        moved
    }

    /// When the turn of `ticket` goes now (`go` once its time has come).
    fn time_of(&self, ticket: u64, go: Instant) -> Instant {
        let index = ticket.checked_sub(self.first).map(|i| i as usize);
        index.and_then(|i| self.queue.get(i)).copied().unwrap_or(go)
    }
}

#[derive(Debug, Default)]
struct Tally {
    started: Option<Instant>,
    requests: u64,
    throttles: u64,
    /// Requests sent in each second since the first.
    per_second: Vec<u32>,
    waited: Duration,
    /// Requests waiting for their turn now, and backing off after a throttle.
    waiting: usize,
    backing_off: usize,
}

/// What a bucket counted over the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Report {
    pub service: &'static str,
    /// The region the requests went to, when the run called two (a cross-region export).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    pub requests: u64,
    pub throttles: u64,
    /// The most requests sent in one second.
    pub peak_per_second: u32,
    /// The most requests in any minute, per second.
    pub peak_per_second_over_a_minute: f64,
    pub mean_per_second: f64,
    /// Time requests spent waiting for their turn, summed over requests.
    pub waited_secs: f64,
    pub budget: Rate,
}

impl Bucket {
    /// A bucket of `rate`; a rate under [`MIN_RATE`] (or not a number) is [`MIN_RATE`].
    pub fn new(service: &'static str, rate: Rate) -> Self {
        let usable = |x: f64, least: f64| x.is_finite() && x >= least;
        let rate = Rate {
            burst: if usable(rate.burst, 1.0) {
                rate.burst
            } else {
                1.0
            },
            per_second: if usable(rate.per_second, MIN_RATE) {
                rate.per_second
            } else {
                MIN_RATE
            },
        };
        Self {
            service,
            rate,
            pace: Mutex::new(Pace {
                per_second: rate.per_second,
                tokens: rate.burst,
                at: Instant::now(),
                tail: Instant::now(),
                queue: VecDeque::new(),
                first: 0,
                halved: None,
            }),
            tally: Mutex::default(),
            relaid: tokio::sync::watch::Sender::new(0),
        }
    }

    pub fn rate(&self) -> Rate {
        self.rate
    }

    /// Waits for this request's turn, later if a throttle slows the rate meanwhile.
    pub async fn take(&self) {
        let (now, (mut go, ticket), mut relaid) = {
            let mut pace = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
            // Read under the lock: time as every turn before this one saw it.
            let now = Instant::now();
            pace.refill(now, self.rate);
            // Under the lock: every throttle after this turn is given is seen by it.
            (now, pace.turn(now), self.relaid.subscribe())
        };
        if go > now {
            let _waiting = Counted::new(self, |t| &mut t.waiting);
            loop {
                tokio::select! {
                    biased;
                    changed = relaid.changed() => {
                        if changed.is_err() {
                            tokio::time::sleep_until(go).await;
                            break;
                        }
                        if let Some(ticket) = ticket {
                            let pace = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
                            go = pace.time_of(ticket, go);
                        }
                    }
                    () = tokio::time::sleep_until(go) => break,
                }
            }
            self.tally(|t| t.waited += go - now);
        }
        self.tally(|t| {
            let started = *t.started.get_or_insert(go);
            let second = (go - started).as_secs() as usize;
            if t.per_second.len() <= second {
                t.per_second.resize(second + 1, 0);
            }
            t.per_second[second] += 1;
            t.requests += 1;
        });
    }

    /// A throttled answer: half the rate (down to [`MIN_RATE`], or the budget's own if less;
    /// at most once a second), and no burst until it is earned back. Turns already given out
    /// are laid at least the new rate's interval apart (see [`Pace`]); the throttled requests
    /// themselves back off.
    pub fn throttled(&self) {
        let mut pace = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        pace.refill(now, self.rate);
        if pace
            .halved
            .is_none_or(|at| now - at >= Duration::from_secs(1))
        {
            let floor = MIN_RATE.min(self.rate.per_second);
            pace.halved = Some(now);
            if pace.halve(floor) {
                self.relaid.send_modify(|n| *n += 1);
            }
        }
        pace.tokens = 0.0;
        drop(pace);
        self.tally(|t| t.throttles += 1);
    }

    /// The rate now (less than the budget's for a minute after a throttle).
    pub fn current_rate(&self) -> f64 {
        self.pace
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .per_second
    }

    /// Requests waiting for their turn now, and backing off after a throttle.
    pub fn waiting(&self) -> (usize, usize) {
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        (tally.waiting, tally.backing_off)
    }

    pub fn report(&self) -> Report {
        let tally = self.tally.lock().unwrap_or_else(PoisonError::into_inner);
        let seconds = tally.per_second.len().max(1);
        let minute = |w: &[u32]| w.iter().map(|n| f64::from(*n)).sum::<f64>() / 60.0;
        let peak_minute = if tally.per_second.len() <= 60 {
            minute(&tally.per_second)
        } else {
            tally.per_second.windows(60).map(minute).fold(0.0, f64::max)
        };
        Report {
            service: self.service,
            region: None,
            requests: tally.requests,
            throttles: tally.throttles,
            peak_per_second: tally.per_second.iter().copied().max().unwrap_or(0),
            peak_per_second_over_a_minute: peak_minute,
            mean_per_second: tally.requests as f64 / seconds as f64,
            waited_secs: tally.waited.as_secs_f64(),
            budget: self.rate,
        }
    }

    fn tally(&self, f: impl FnOnce(&mut Tally)) {
        f(&mut self.tally.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Counts a request in one of the tally's gauges while it lives (a request the run gives up
/// on stops counting).
struct Counted<'a> {
    bucket: &'a Bucket,
    gauge: fn(&mut Tally) -> &mut usize,
}

impl<'a> Counted<'a> {
    fn new(bucket: &'a Bucket, gauge: fn(&mut Tally) -> &mut usize) -> Self {
        bucket.tally(|t| *gauge(t) += 1);
        Self { bucket, gauge }
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.bucket.tally(|t| *(self.gauge)(t) -= 1);
    }
}

/// The buckets of one agent run, one per service.
#[derive(Debug, Clone)]
pub struct Budget {
    pub rds: Arc<Bucket>,
    pub kms: Arc<Bucket>,
    pub secrets: Arc<Bucket>,
    pub ec2: Arc<Bucket>,
    pub sts: Arc<Bucket>,
    pub sfn: Arc<Bucket>,
}

impl Budget {
    /// The default buckets, RDS's at `rds_per_second` (default [`Rate::RDS`]).
    pub fn new(rds_per_second: Option<f64>) -> Self {
        let rds = rds_per_second.map_or(Rate::RDS, Rate::rds);
        Self {
            rds: Arc::new(Bucket::new("rds", rds)),
            kms: Arc::new(Bucket::new("kms", Rate::KMS)),
            secrets: Arc::new(Bucket::new("secretsmanager", Rate::OTHER)),
            ec2: Arc::new(Bucket::new("ec2", Rate::OTHER)),
            sts: Arc::new(Bucket::new("sts", Rate::OTHER)),
            sfn: Arc::new(Bucket::new("states", Rate::OTHER)),
        }
    }

    pub fn buckets(&self) -> [&Bucket; 6] {
        [
            &self.rds,
            &self.kms,
            &self.secrets,
            &self.ec2,
            &self.sts,
            &self.sfn,
        ]
    }

    /// What each service's bucket counted, the services called at all.
    pub fn reports(&self) -> Vec<Report> {
        self.buckets()
            .iter()
            .map(|b| b.report())
            .filter(|r| r.requests > 0)
            .collect()
    }
}

/// The SDK's identity cache, each attempt of each request waiting there for its turn in a
/// bucket before it is signed.
#[derive(Debug)]
pub(crate) struct PacedIdentity {
    inner: SharedIdentityCache,
    bucket: Arc<Bucket>,
}

impl PacedIdentity {
    pub(crate) fn wrap(inner: SharedIdentityCache, bucket: Arc<Bucket>) -> Self {
        Self { inner, bucket }
    }
}

impl ResolveCachedIdentity for PacedIdentity {
    fn resolve_cached_identity<'a>(
        &'a self,
        resolver: SharedIdentityResolver,
        components: &'a RuntimeComponents,
        config: &'a ConfigBag,
    ) -> IdentityFuture<'a> {
        IdentityFuture::new(async move {
            self.bucket.take().await;
            self.inner
                .resolve_cached_identity(resolver, components, config)
                .await
        })
    }
}

/// The SDK's own HTTP client, reading each answer for throttling.
#[derive(Debug, Clone)]
pub(crate) struct Budgeted {
    inner: SharedHttpClient,
    bucket: Arc<Bucket>,
}

impl Budgeted {
    /// `inner`, each request paced by `bucket`.
    pub(crate) fn wrap(inner: SharedHttpClient, bucket: Arc<Bucket>) -> SharedHttpClient {
        SharedHttpClient::new(Self { inner, bucket })
    }
}

impl HttpClient for Budgeted {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(Paced {
            inner: self.inner.http_connector(settings, components),
            bucket: self.bucket.clone(),
        })
    }
}

#[derive(Debug)]
struct Paced {
    inner: SharedHttpConnector,
    bucket: Arc<Bucket>,
}

impl HttpConnector for Paced {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let (inner, bucket) = (self.inner.clone(), self.bucket.clone());
        HttpConnectorFuture::new(send(inner, bucket, request))
    }
}

/// Sends `request` (signed in its turn); a throttled answer slows the bucket and is sent
/// again after a backoff and another turn, while that fits in [`WEATHER`].
async fn send(
    inner: SharedHttpConnector,
    bucket: Arc<Bucket>,
    mut request: HttpRequest,
) -> Result<HttpResponse, ConnectorError> {
    let signed = Instant::now();
    let mut attempt = 0;
    loop {
        let again = request.try_clone();
        let mut response = inner.call(request).await?;
        if !throttled(&mut response).await? {
            return Ok(response);
        }
        bucket.throttled();
        let Some(again) = again else {
            return Ok(response);
        };
        attempt += 1;
        {
            let _backing_off = Counted::new(&bucket, |t| &mut t.backing_off);
            tokio::time::sleep(backoff(attempt)).await;
        }
        let left = WEATHER.saturating_sub(signed.elapsed());
        if left.is_zero() || tokio::time::timeout(left, bucket.take()).await.is_err() {
            return Ok(response);
        }
        tracing::debug!(
            service = bucket.service,
            attempt,
            "throttled; sending again"
        );
        request = again;
    }
}

/// Jitter over an exponential ceiling: 1 s, 2 s, 4 s, 8 s, then 16 s.
fn backoff(attempt: u32) -> Duration {
    let ceiling = (1u64 << attempt.clamp(1, 5).saturating_sub(1)) as f64;
    Duration::from_secs_f64(rand::rng().random_range(ceiling / 2.0..=ceiling))
}

/// Whether an answer is a throttle. Only error answers are read (and put back): they are
/// small, and the others stream on untouched.
async fn throttled(response: &mut HttpResponse) -> Result<bool, ConnectorError> {
    if !matches!(response.status().as_u16(), 400 | 429 | 503) {
        return Ok(false);
    }
    let body = tokio::time::timeout(READ_ERROR, ByteStream::new(response.take_body()).collect())
        .await
        .map_err(|e| ConnectorError::timeout(e.into()))?
        .map_err(|e| ConnectorError::io(e.into()))?
        .into_bytes();
    let header = response
        .headers()
        .get("x-amzn-errortype")
        .map(|h| h.split(':').next().unwrap_or(h).to_owned());
    let found = is_throttle(header.as_deref(), &body);
    *response.body_mut() = SdkBody::from(body);
    Ok(found)
}

/// A throttling code in the error's header (JSON services), its `__type` (JSON) or its
/// `<Code>` (XML services).
fn is_throttle(header: Option<&str>, body: &[u8]) -> bool {
    let named = |code: &str| is_throttling_code(code.rsplit('#').next().unwrap_or(code));
    if header.is_some_and(named) {
        return true;
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(body) {
        return json["__type"].as_str().is_some_and(named);
    }
    let text = String::from_utf8_lossy(body);
    text.split("<Code>")
        .skip(1)
        .filter_map(|rest| rest.split_once("</Code>"))
        .any(|(code, _)| named(code.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_burst_goes_at_once_then_the_rate_holds() {
        let bucket = Bucket::new("rds", Rate::RDS);
        let start = Instant::now();
        for _ in 0..150 {
            bucket.take().await;
        }
        assert!(
            start.elapsed() < Duration::from_millis(10),
            "the burst waits for nothing"
        );
        for _ in 0..60 {
            bucket.take().await;
        }
        let secs = start.elapsed().as_secs_f64();
        assert!(
            (9.9..=10.1).contains(&secs),
            "60 more at 6/s take 10 s, took {secs}"
        );
        let report = bucket.report();
        assert_eq!(report.requests, 210);
        assert!(report.peak_per_second >= 150);
        assert!(report.waited_secs > 0.0);
    }

    #[tokio::test(start_paused = true)]
    async fn many_callers_share_one_pace() {
        let bucket = Arc::new(Bucket::new("rds", Rate::rds(2.0)));
        let start = Instant::now();
        let callers: Vec<_> = (0..100)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move { bucket.take().await })
            })
            .collect();
        for caller in callers {
            caller.await.unwrap();
        }
        // 50 at once, then 50 more at 2 per second.
        let secs = start.elapsed().as_secs_f64();
        assert!((24.9..=25.1).contains(&secs), "{secs}");
        let report = bucket.report();
        assert!(report.peak_per_second_over_a_minute <= (50.0 + 2.0 * 60.0) / 60.0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_halves_the_rate_and_a_minute_earns_it_back() {
        let bucket = Bucket::new("rds", Rate::rds(4.0));
        bucket.throttled();
        let start = Instant::now();
        bucket.take().await;
        bucket.take().await;
        // No burst left, and half the rate: a request about every half second.
        let secs = start.elapsed().as_secs_f64();
        assert!((0.9..=1.1).contains(&secs), "{secs}");
        tokio::time::sleep(Duration::from_secs(60)).await;
        bucket.take().await;
        assert_eq!(bucket.pace.lock().unwrap().per_second, 4.0);
        for _ in 0..3 {
            bucket.throttled();
        }
        assert_eq!(
            bucket.current_rate(),
            2.0,
            "throttles at once halve it once"
        );
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bucket.throttled();
        }
        assert_eq!(bucket.current_rate(), MIN_RATE, "never below");
        assert_eq!(bucket.report().throttles, 14);
        let slow = Bucket::new("rds", Rate::rds(MIN_RATE));
        slow.throttled();
        assert_eq!(slow.pace.lock().unwrap().per_second, MIN_RATE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_throttle_makes_turns_already_given_out_go_later() {
        let bucket = Arc::new(Bucket::new("rds", Rate::rds(4.0)));
        // The burst (100) spent.
        for _ in 0..100 {
            bucket.take().await;
        }
        let start = Instant::now();
        // Twenty turns given out at 4/s: the last goes after 5 s.
        let callers: Vec<_> = (0..20)
            .map(|_| {
                let bucket = bucket.clone();
                tokio::spawn(async move {
                    bucket.take().await;
                    Instant::now()
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_secs(1)).await;
        bucket.throttled();
        // Asked after the throttle: after every turn given out before it.
        let later = {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                bucket.take().await;
                Instant::now()
            })
        };
        let mut went = Vec::new();
        for caller in callers {
            went.push((caller.await.unwrap() - start).as_secs_f64());
        }
        // A turn due before the throttle went at its time.
        assert!((0.24..=0.26).contains(&went[0]), "{went:?}");
        // One second at 4/s, the next turn at its time (1.25 s), then the 15 left at 2/s:
        // 8.75 s; in the order they were asked.
        assert!((8.74..=8.76).contains(&went[19]), "{went:?}");
        assert!(went.windows(2).all(|w| w[0] <= w[1]), "{went:?}");
        let later = (later.await.unwrap() - start).as_secs_f64();
        assert!((9.24..=9.26).contains(&later), "{later}");
        // Between them, never faster than the halved rate.
        assert!(
            went[4..].windows(2).all(|w| w[1] - w[0] >= 0.49),
            "{went:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn throttles_without_end_slow_a_queue_to_the_floor_and_no_further() {
        let bucket = Arc::new(Bucket::new("rds", Rate::RDS));
        for _ in 0..150 {
            bucket.take().await;
        }
        let take = |bucket: &Arc<Bucket>| {
            let bucket = bucket.clone();
            tokio::spawn(async move {
                bucket.take().await;
                Instant::now()
            })
        };
        // Sixty turns given at 6/s; then a throttle every second and, half a second after
        // each, one more turn (as throttled requests ask again).
        let mut callers: Vec<_> = (0..60).map(|_| take(&bucket)).collect();
        let start = Instant::now();
        for _ in 0..240 {
            tokio::time::sleep(Duration::from_secs(1)).await;
            bucket.throttled();
            tokio::time::sleep(Duration::from_millis(500)).await;
            callers.push(take(&bucket));
        }
        let mut went = Vec::new();
        for caller in callers {
            went.push((caller.await.unwrap() - start).as_secs_f64());
        }
        assert!(went.windows(2).all(|w| w[0] <= w[1]), "in order: {went:?}");
        let widest = went.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
        assert!(widest <= 1.0 / MIN_RATE + 0.001, "{widest}: {went:?}");
        let last = *went.last().unwrap();
        assert!(last <= went.len() as f64 / MIN_RATE + 1.0, "{last}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_counts_as_waiting_while_it_waits() {
        let bucket = Arc::new(Bucket::new("rds", Rate::rds(1.0)));
        for _ in 0..25 {
            bucket.take().await;
        }
        let waiter = {
            let bucket = bucket.clone();
            tokio::spawn(async move { bucket.take().await })
        };
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(bucket.waiting(), (1, 0));
        waiter.await.unwrap();
        assert_eq!(bucket.waiting(), (0, 0));
    }

    #[test]
    fn throttles_are_read_in_each_protocol() {
        let xml = b"<ErrorResponse><Error><Code>Throttling</Code><Message>Rate exceeded</Message></Error></ErrorResponse>";
        assert!(is_throttle(None, xml));
        let ec2 = b"<Response><Errors><Error><Code>RequestLimitExceeded</Code></Error></Errors></Response>";
        assert!(is_throttle(None, ec2));
        assert!(is_throttle(
            None,
            br#"{"__type":"com.amazonaws.kms#ThrottlingException"}"#
        ));
        assert!(is_throttle(Some("ThrottlingException"), b""));
        assert!(is_throttle(
            None,
            br#"{"__type":"TooManyRequestsException"}"#
        ));
        assert!(
            !is_throttle(None, br#"{"__type":"LimitExceededException"}"#),
            "a quota"
        );
        let denied = b"<ErrorResponse><Error><Code>AccessDenied</Code><Message>Throttling is not this</Message></Error></ErrorResponse>";
        assert!(!is_throttle(None, denied));
        assert!(!is_throttle(None, br#"{"__type":"AccessDeniedException"}"#));
    }

    #[test]
    fn rates_are_within_what_rds_allows() {
        assert_eq!(parse_rate("6").unwrap(), 6.0);
        assert!(parse_rate("0").unwrap_err().contains("0.5–12"));
        assert!(parse_rate("1e-20").is_err());
        assert!(parse_rate("13")
            .unwrap_err()
            .contains("12 requests per second"));
        assert!(parse_rate("fast").is_err());
        assert_eq!(Rate::RDS.burst, 150.0);
    }

    #[test]
    fn backoff_grows_to_a_ceiling_with_jitter() {
        assert!(backoff(1) <= Duration::from_secs(1));
        assert!(backoff(10) <= Duration::from_secs(16));
        assert!(backoff(10) >= Duration::from_secs(8));
    }
}
