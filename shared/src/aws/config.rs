//! One place builds the AWS configuration and clients for both agents.
//!
//! It follows the standard credential chain (environment, profiles, SSO, assume-role,
//! credential_process, container and instance roles) and the standard `AWS_ENDPOINT_URL`;
//! the flags `--profile`, `--region` and `--endpoint-url` override them. Missing region or
//! credentials are reported in one sentence before any real call is made.

use std::sync::Arc;
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region as SdkRegion, SdkConfig};
use aws_credential_types::provider::ProvideCredentials;
use tokio::sync::OnceCell;

use crate::aws::budget::{Budget, Budgeted, PacedIdentity};
use crate::aws::slots::CopySlots;
use crate::base::error::{sdk, Error, Result};
use crate::ident::{AccountId, Arn, Region};

/// Connection flags both agents accept.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct AwsArgs {
    /// Named profile from the shared AWS config files (default: `AWS_PROFILE`, then `default`)
    #[arg(long, global = true, value_name = "NAME")]
    pub profile: Option<String>,
    /// AWS region (default: `AWS_REGION`, then the profile's region)
    #[arg(long, global = true, value_name = "REGION")]
    pub region: Option<Region>,
    /// Send every AWS call to this endpoint, e.g. a local emulator (default: `AWS_ENDPOINT_URL`)
    #[arg(long, global = true, value_name = "URL", value_parser = parse_endpoint)]
    pub endpoint_url: Option<String>,
    /// RDS requests per second this run may send, after a burst of 25 seconds' worth
    /// (default 6: half of what RDS allows each account and region, shared with every other
    /// caller)
    #[arg(long, global = true, value_name = "N", value_parser = crate::aws::budget::parse_rate)]
    pub max_request_rate: Option<f64>,
}

/// An endpoint URL: `http://` or `https://`, then a host.
fn parse_endpoint(value: &str) -> std::result::Result<String, String> {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .ok_or_else(|| {
            format!("`{value}` has no scheme: write it as `https://{value}` (or `http://` for a local emulator)")
        })?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{value}` names no host"));
    }
    Ok(value.to_owned())
}

/// A setting of the selected profile (`--profile`, else `AWS_PROFILE`, else `default`) from
/// the shared config files, read as the SDK reads them.
pub async fn profile_setting(profile: Option<&str>, key: &str) -> Option<String> {
    let profiles = load_profiles(profile).await?;
    profiles
        .get_profile(profiles.selected_profile())
        .and_then(|p| p.get(key))
        .map(str::to_owned)
}

async fn load_profiles(profile: Option<&str>) -> Option<aws_config::profile::ProfileSet> {
    use aws_runtime::env_config::file::EnvConfigFiles;
    use aws_types::os_shim_internal::{Env, Fs};
    let selected = profile.map(|p| std::borrow::Cow::Owned(p.to_owned()));
    aws_config::profile::load(
        &Fs::real(),
        &Env::real(),
        &EnvConfigFiles::default(),
        selected,
    )
    .await
    .ok()
}

/// Refuses a `--profile` that no config or credentials file defines (the SDK would fall back
/// to other credentials without a word).
async fn check_profile(profile: Option<&str>) -> Result<()> {
    let Some(name) = profile else {
        return Ok(());
    };
    let known = load_profiles(Some(name))
        .await
        .is_some_and(|set| set.get_profile(name).is_some());
    if known {
        return Ok(());
    }
    Err(Error::Config {
        message: format!("profile `{name}` is not in your AWS config or credentials file"),
        hint: "list your profiles with `aws configure list-profiles`, or check `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE`".into(),
    })
}

/// Retries survive throttling and brief outages; a snapshot copy is not retried forever.
const MAX_ATTEMPTS: u32 = 6;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const READ_TIMEOUT: Duration = Duration::from_secs(60);
/// The first call (who am I) says within seconds when the endpoint cannot be reached at all
/// (a connection that times out is tried twice, with a short connect timeout; one refused or
/// dropped, a few times with short pauses), and still rides out throttling and server errors.
const TIMED_OUT_ATTEMPTS: u32 = 2;
const DROPPED_ATTEMPTS: u32 = 5;
const FIRST_CALL_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// GetCallerIdentity answers in well under a second: an endpoint that takes the connection
/// and stays silent this long is not an AWS API (or not a working one).
const FIRST_CALL_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the first call says it is still waiting for an answer.
const WAITING_EVERY: Duration = Duration::from_secs(3);

/// Who is calling: from `sts:GetCallerIdentity`.
#[derive(Debug, Clone)]
pub struct Caller {
    pub account: AccountId,
    pub arn: Arn,
}

impl Caller {
    /// The principal a key policy names for this caller: an assumed-role session maps to its
    /// role (`arn:aws:sts::A:assumed-role/R/S` → `arn:aws:iam::A:role/R`), as KMS does.
    pub fn principal(&self) -> String {
        principal_of(&self.arn)
    }
}

pub fn principal_of(arn: &Arn) -> String {
    if arn.service == "sts" {
        if let Some(rest) = arn.resource.strip_prefix("assumed-role/") {
            let role = rest.split('/').next().unwrap_or(rest);
            let account = arn
                .account
                .as_ref()
                .map(AccountId::as_str)
                .unwrap_or_default();
            return format!("arn:{}:iam::{account}:role/{role}", arn.partition);
        }
    }
    arn.as_str().to_owned()
}

/// The clients one agent run uses, all from the same configuration.
#[derive(Debug, Clone)]
pub struct Aws {
    pub rds: aws_sdk_rds::Client,
    pub kms: aws_sdk_kms::Client,
    pub sts: aws_sdk_sts::Client,
    pub secrets: aws_sdk_secretsmanager::Client,
    /// Only to read security groups: that they exist, where, and what they admit.
    pub ec2: aws_sdk_ec2::Client,
    pub sfn: aws_sdk_sfn::Client,
    pub region: Region,
    pub partition: String,
    /// How fast this run calls each service, and what it sent.
    pub budget: Budget,
    /// Copies this run may have in progress at once ([`CopySlots::none`] unless a fleet
    /// sets them).
    pub copies: CopySlots,
    /// The run's poll rounds: every wait of a kind asked about together.
    pub rounds: Arc<crate::aws::rds::Rounds>,
    /// `sts:GetCallerIdentity`'s answer, asked once per run.
    caller: Arc<OnceCell<Caller>>,
    /// The account's keys by their toolkit alias tag, read once per run (see
    /// [`crate::aws::kms::find_tagged`]).
    pub(crate) tagged_keys: Arc<OnceCell<std::collections::BTreeMap<String, Vec<String>>>>,
    /// `rds:DescribeAccountAttributes`' quotas (name, used, max), read once per run.
    pub(crate) quotas: Arc<OnceCell<Vec<(String, i64, i64)>>>,
    /// The flags these clients were made from: the clients of another region are made alike.
    args: AwsArgs,
    /// The clients of the region a cross-region handoff copies into ([`Self::with_destination`]).
    destination: Option<Arc<Aws>>,
}

impl Aws {
    /// Loads the configuration and checks that a region and credentials are there.
    pub async fn connect(args: &AwsArgs) -> Result<Self> {
        check_profile(args.profile.as_deref()).await?;
        let config = load_config(args).await;
        let region = region_of(&config)?;
        check_credentials(&config, args).await?;
        let budget = Budget::new(args.max_request_rate);
        let http = sdk_http_client()?;
        let identities = config
            .identity_cache()
            .unwrap_or_else(|| aws_smithy_runtime::client::identity::IdentityCache::lazy().build());
        // Each client's requests take their turn in its bucket before they are signed, and its
        // answers are read for throttling.
        macro_rules! paced {
            ($service:ident, $bucket:expr) => {
                $service::config::Builder::from(&config)
                    .http_client(Budgeted::wrap(http.clone(), Arc::clone($bucket)))
                    .identity_cache(PacedIdentity::wrap(identities.clone(), Arc::clone($bucket)))
            };
        }
        // Its retries are `caller`'s own, which tell "no answer" from "an error answer".
        let first_call = paced!(aws_sdk_sts, &budget.sts)
            .retry_config(RetryConfig::disabled())
            .timeout_config(
                TimeoutConfig::builder()
                    .connect_timeout(FIRST_CALL_CONNECT_TIMEOUT)
                    .read_timeout(FIRST_CALL_READ_TIMEOUT)
                    .build(),
            )
            .build();
        let rds = paced!(aws_sdk_rds, &budget.rds);
        let kms = paced!(aws_sdk_kms, &budget.kms);
        let secrets = paced!(aws_sdk_secretsmanager, &budget.secrets);
        let ec2 = paced!(aws_sdk_ec2, &budget.ec2);
        let sfn = paced!(aws_sdk_sfn, &budget.sfn);
        Ok(Self {
            rds: aws_sdk_rds::Client::from_conf(rds.build()),
            kms: aws_sdk_kms::Client::from_conf(kms.build()),
            sts: aws_sdk_sts::Client::from_conf(first_call),
            secrets: aws_sdk_secretsmanager::Client::from_conf(secrets.build()),
            ec2: aws_sdk_ec2::Client::from_conf(ec2.build()),
            sfn: aws_sdk_sfn::Client::from_conf(sfn.build()),
            partition: partition_of(&region).to_owned(),
            region,
            budget,
            copies: CopySlots::none(),
            rounds: Arc::default(),
            caller: Arc::default(),
            tagged_keys: Arc::default(),
            quotas: Arc::default(),
            args: args.clone(),
            destination: None,
        })
    }

    /// These clients, with those of `region` kept for the steps that run there
    /// ([`Self::at`]); nothing more when it is this region.
    pub async fn with_destination(&self, region: &Region) -> Result<Aws> {
        let there = self.at(region).await?;
        Ok(self.clone().reaching(there))
    }

    /// The clients of `region`: these, the destination's, or new ones made from the same
    /// flags. AWS throttles each region on its own, so each has its own request budget; the
    /// caller is the same everywhere.
    pub async fn at(&self, region: &Region) -> Result<Aws> {
        if *region == self.region {
            return Ok(self.clone());
        }
        if let Some(there) = self.destination.as_deref().filter(|d| d.region == *region) {
            return Ok(there.clone());
        }
        let args = AwsArgs {
            region: Some(region.clone()),
            ..self.args.clone()
        };
        let mut there = Box::pin(Self::connect(&args)).await?;
        there.caller = Arc::clone(&self.caller);
        Ok(there)
    }

    /// The clients a step runs with: its own region's ([`Self::at`]), or these.
    pub async fn at_step(&self, region: Option<&Region>) -> Result<Aws> {
        match region {
            Some(region) => self.at(region).await,
            None => Ok(self.clone()),
        }
    }

    /// What the run sent to each service: in this region, and in the destination's if it
    /// has one (each named by its region then).
    pub fn request_reports(&self) -> Vec<crate::aws::budget::Report> {
        let Some(there) = self.destination() else {
            return self.budget.reports();
        };
        let mut reports = Vec::new();
        for aws in [self, there] {
            reports.extend(aws.budget.reports().into_iter().map(|mut r| {
                r.region = Some(aws.region.to_string());
                r
            }));
        }
        reports
    }

    /// These clients, the destination region's made beforehand (a fleet sets its copy slots
    /// from that region's copies in progress).
    pub fn reaching(mut self, there: Aws) -> Aws {
        self.destination = (there.region != self.region).then(|| Arc::new(there));
        self
    }

    /// The clients of the destination region, if this run has one.
    pub fn destination(&self) -> Option<&Aws> {
        self.destination.as_deref()
    }

    /// The caller's account and ARN (asked once; every database of a fleet shares it).
    pub async fn caller(&self) -> Result<Caller> {
        self.caller
            .get_or_try_init(|| self.ask_caller())
            .await
            .cloned()
    }

    async fn ask_caller(&self) -> Result<Caller> {
        use aws_smithy_runtime_api::client::result::SdkError;
        use aws_smithy_types::error::metadata::ProvideErrorMetadata;
        let mut attempt = 0;
        let started = std::time::Instant::now();
        let out = loop {
            attempt += 1;
            let err = match self.sts.get_caller_identity().send().await {
                Ok(out) => break out,
                Err(err) => err,
            };
            let timed_out = match &err {
                SdkError::TimeoutError(_) => true,
                SdkError::DispatchFailure(failure) => failure.is_timeout(),
                _ => false,
            };
            let dropped = matches!(err, SdkError::DispatchFailure(_)) && !timed_out;
            let server_error = err
                .raw_response()
                .is_some_and(|r| r.status().as_u16() >= 500);
            let throttled = err
                .code()
                .is_some_and(crate::aws::budget::is_throttling_code);
            let limit = match (timed_out, dropped) {
                (true, _) => TIMED_OUT_ATTEMPTS,
                (_, true) => DROPPED_ATTEMPTS,
                _ => MAX_ATTEMPTS,
            };
            // Connected, then no answer in time: the HTTP client's read timeout.
            let read_timed_out = crate::base::error::chain(&err).contains("read timeout");
            if timed_out && attempt >= limit && read_timed_out {
                // Connected, then silent. The figure is the whole wait, not one attempt's.
                return Err(Error::Aws {
                    action: "sts:GetCallerIdentity".into(),
                    code: "NoAnswer".into(),
                    message: format!(
                        "the endpoint took the connection but sent no answer in {}s ({attempt} attempts of up to {}s each)",
                        started.elapsed().as_secs(),
                        FIRST_CALL_READ_TIMEOUT.as_secs()
                    ),
                    hint: Some("check `--endpoint-url` / `AWS_ENDPOINT_URL` and any proxy: an endpoint that takes the connection and stays silent is no working AWS API or emulator".into()),
                });
            }
            if attempt >= limit || !(timed_out || dropped || server_error || throttled) {
                return Err(sdk("sts:GetCallerIdentity")(err));
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        };
        let account = out.account().unwrap_or_default().parse()?;
        let arn = out.arn().unwrap_or_default().parse()?;
        Ok(Caller { account, arn })
    }

    /// [`Self::caller`], reported as the run's first progress event; while no answer has
    /// come, a wait event every few seconds says so.
    pub async fn identify(&self, progress: &dyn crate::base::progress::Progress) -> Result<Caller> {
        let started = std::time::Instant::now();
        let asking = self.caller();
        tokio::pin!(asking);
        let caller = loop {
            tokio::select! {
                caller = &mut asking => break caller?,
                _ = tokio::time::sleep(WAITING_EVERY) => progress.event(&crate::base::progress::Event::wait(
                    "identity",
                    "sts:GetCallerIdentity",
                    "no answer yet",
                    started.elapsed(),
                )),
            }
        };
        progress.event(&crate::base::progress::Event::step(
            "identity",
            caller.arn.as_str(),
            &format!("account {} in {}", caller.account, self.region),
        ));
        Ok(caller)
    }
}

/// The HTTP client the SDK would use by default (hyper 1 and rustls with aws-lc: no second
/// TLS stack), one for every client of the run, so they share its connections.
fn sdk_http_client() -> Result<aws_smithy_runtime_api::client::http::SharedHttpClient> {
    use aws_smithy_runtime_api::client::runtime_components::RuntimeComponentsBuilder;
    use aws_smithy_runtime_api::client::runtime_plugin::RuntimePlugin;
    aws_smithy_runtime::client::defaults::default_http_client_plugin_v2(BehaviorVersion::latest())
        .and_then(|plugin| {
            plugin
                .runtime_components(&RuntimeComponentsBuilder::new("rds-handoff"))
                .http_client()
        })
        .ok_or_else(|| Error::Config {
            message: "this build has no HTTPS client".into(),
            hint: "build the agents with the SDK's `default-https-client` feature, as the workspace's Cargo.toml does".into(),
        })
}

async fn load_config(args: &AwsArgs) -> SdkConfig {
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(CONNECT_TIMEOUT)
                .read_timeout(READ_TIMEOUT)
                .build(),
        );
    if let Some(profile) = &args.profile {
        loader = loader.profile_name(profile);
    }
    if let Some(region) = &args.region {
        loader = loader.region(SdkRegion::new(region.as_str().to_owned()));
    }
    if let Some(url) = &args.endpoint_url {
        loader = loader.endpoint_url(url);
    }
    loader.load().await
}

fn region_of(config: &SdkConfig) -> Result<Region> {
    let Some(region) = config.region() else {
        return Err(Error::Config {
            message: "no AWS region is set".into(),
            hint: "pass `--region us-east-1` (or your region), set `AWS_REGION`, or set `region` in your profile".into(),
        });
    };
    Ok(region.as_ref().parse()?)
}

async fn check_credentials(config: &SdkConfig, args: &AwsArgs) -> Result<()> {
    let missing = |detail: String| {
        Error::Config {
        message: format!("no usable AWS credentials: {detail}"),
        hint: match &args.profile {
            Some(p) => format!("check profile `{p}` in ~/.aws/config (for SSO run `aws sso login --profile {p}`)"),
            None => "set `AWS_PROFILE` or pass `--profile`, or export `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`".into(),
        },
    }
    };
    let provider = config
        .credentials_provider()
        .ok_or_else(|| missing("no credential provider is configured".into()))?;
    provider
        .provide_credentials()
        .await
        .map(|_| ())
        .map_err(|e| missing(one_line(&e)))
}

/// An error and its source on one line: a credential chain's error lists what it tried, a
/// provider per line, after "Attempted:".
fn one_line(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    if let Some(source) = err.source() {
        text = format!("{text}: {source}");
    }
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let first = lines.next().unwrap_or_default().to_owned();
    let rest: Vec<&str> = lines.collect();
    if rest.is_empty() {
        first
    } else {
        format!("{first} {}", rest.join("; "))
    }
}

/// The partition a region belongs to.
pub fn partition_of(region: &Region) -> &'static str {
    let name = region.as_str();
    if name.starts_with("cn-") {
        "aws-cn"
    } else if name.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assumed_role_maps_to_role() {
        let arn: Arn = "arn:aws:sts::111111111111:assumed-role/Admin/alice"
            .parse()
            .unwrap();
        assert_eq!(principal_of(&arn), "arn:aws:iam::111111111111:role/Admin");
        let user: Arn = "arn:aws:iam::111111111111:user/bob".parse().unwrap();
        assert_eq!(principal_of(&user), "arn:aws:iam::111111111111:user/bob");
    }

    #[test]
    fn partitions() {
        assert_eq!(partition_of(&"cn-north-1".parse().unwrap()), "aws-cn");
        assert_eq!(
            partition_of(&"us-gov-west-1".parse().unwrap()),
            "aws-us-gov"
        );
        assert_eq!(partition_of(&"eu-west-1".parse().unwrap()), "aws");
    }
}
