//! The accounts on the emulator: each is entered through `sts:AssumeRole`, as moto maps a
//! role ARN's account to the credentials it returns, and each has the Step Functions
//! execution role an admin makes for `--engine step-functions`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Mutex;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use crate::emulator::Emulator;

pub const SOURCE: &str = "111111111111";
pub const TARGET: &str = "222222222222";
pub const THIRD: &str = "333333333333";
pub const REGION: &str = "us-east-1";
/// The Step Functions execution role of every account (`--execution-role`), trusting Step
/// Functions as `policies/execution-role.trust.json` says.
pub const EXECUTION_ROLE: &str = "rds-handoff-states";

/// One account's temporary credentials on the emulator.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub role_arn: String,
    pub endpoint: String,
    /// The [`Emulator::serial`] of the server this account lives on.
    pub emulator: u64,
    /// The region its clients and agent runs call ([`REGION`] unless [`Self::in_region`]).
    pub region: &'static str,
    credentials: Credentials,
}

fn config(endpoint: &str, region: &'static str, credentials: Credentials) -> SdkConfig {
    // Built by hand, not from the environment: the host's AWS setup must not leak in.
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::from_static(region))
        .endpoint_url(endpoint)
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build()
}

impl Account {
    /// Assumes `arn:aws:iam::<id>:role/rds-handoff-admin` on the emulator.
    pub async fn assume(id: &str) -> Account {
        Self::assume_role(id, "rds-handoff-admin").await
    }

    pub async fn assume_role(id: &str, role: &str) -> Account {
        let emulator = Emulator::get();
        let base = Credentials::new("testing", "testing", None, None, "e2e-base");
        let sts = aws_sdk_sts::Client::new(&config(&emulator.url, REGION, base));
        let role_arn = format!("arn:aws:iam::{id}:role/{role}");
        let out = sts
            .assume_role()
            .role_arn(&role_arn)
            .role_session_name("e2e")
            .send()
            .await
            .unwrap_or_else(|e| panic!("AssumeRole into {role_arn} on the emulator failed: {e:?}"));
        let c = out.credentials().expect("AssumeRole returns credentials");
        let credentials = Credentials::new(
            c.access_key_id(),
            c.secret_access_key(),
            Some(c.session_token().to_owned()),
            None,
            "e2e",
        );
        let account = Account {
            id: id.to_owned(),
            role_arn,
            endpoint: emulator.url.clone(),
            emulator: emulator.serial,
            region: REGION,
            credentials,
        };
        account.ensure_execution_role();
        account
    }

    /// The same account, its clients and agent runs in `region`.
    pub fn in_region(&self, region: &'static str) -> Account {
        Account {
            region,
            ..self.clone()
        }
    }

    /// The same account, its clients calling `endpoint` (a test proxy) instead.
    pub fn calling(&self, endpoint: &str) -> Account {
        Account {
            endpoint: endpoint.to_owned(),
            ..self.clone()
        }
    }

    /// Makes [`EXECUTION_ROLE`] in this account, once per account and emulator, as the README
    /// has an admin make it: the Step Functions shim, as AWS, refuses a state machine whose
    /// role does not exist or does not trust Step Functions.
    fn ensure_execution_role(&self) {
        static MADE: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
        let mut made = MADE.lock().unwrap_or_else(|e| e.into_inner());
        let key = format!("{} {}", self.emulator, self.id);
        if made.contains(&key) {
            return;
        }
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/execution-role.trust.json"
        );
        let trust = std::fs::read_to_string(path)
            .unwrap_or_else(|e| panic!("{path}: {e}"))
            .replace("ACCOUNT_ID", &self.id);
        let (status, body) = self.iam(
            "CreateRole",
            &[
                ("RoleName", EXECUTION_ROLE),
                ("AssumeRolePolicyDocument", trust.as_str()),
            ],
        );
        assert!(
            status == 200 || body.contains("EntityAlreadyExists"),
            "CreateRole {EXECUTION_ROLE} in {}: HTTP {status}: {body}",
            self.id
        );
        made.insert(key);
    }

    /// One IAM Query API call as this account, sent by hand (the harness has no IAM client;
    /// moto takes the account from the access key and checks no signature): the HTTP status
    /// and the body.
    pub fn iam(&self, action: &str, params: &[(&str, &str)]) -> (u16, String) {
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.append_pair("Action", action);
        form.append_pair("Version", "2010-05-08");
        for (key, value) in params {
            form.append_pair(key, value);
        }
        let body = form.finish();
        let host = self.endpoint.trim_start_matches("http://");
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {host}\r\n\
             Content-Type: application/x-www-form-urlencoded; charset=utf-8\r\n\
             Authorization: AWS4-HMAC-SHA256 Credential={}/20240101/{REGION}/iam/aws4_request, \
             SignedHeaders=host, Signature=0\r\n\
             X-Amz-Security-Token: {}\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.credentials.access_key_id(),
            self.credentials.session_token().unwrap_or_default(),
            body.len(),
        );
        let mut response = String::new();
        let _read: usize = TcpStream::connect(host)
            .and_then(|mut stream| {
                stream.write_all(request.as_bytes())?;
                stream.read_to_string(&mut response)
            })
            .unwrap_or_else(|e| panic!("IAM {action} on {host}: {e}"));
        let status = response
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map_or("", |(_, body)| body)
            .to_owned();
        (status, body)
    }

    pub fn config(&self) -> SdkConfig {
        config(&self.endpoint, self.region, self.credentials.clone())
    }

    pub fn rds(&self) -> aws_sdk_rds::Client {
        aws_sdk_rds::Client::new(&self.config())
    }

    pub fn kms(&self) -> aws_sdk_kms::Client {
        aws_sdk_kms::Client::new(&self.config())
    }

    pub fn secrets(&self) -> aws_sdk_secretsmanager::Client {
        aws_sdk_secretsmanager::Client::new(&self.config())
    }

    pub fn sts(&self) -> aws_sdk_sts::Client {
        aws_sdk_sts::Client::new(&self.config())
    }

    /// The variables an agent run sees: these credentials, the emulator, and nothing of the
    /// host's AWS setup (no config files, no instance metadata).
    pub fn env(&self) -> Vec<(String, String)> {
        let nowhere = crate::emulator::target_dir().join("no-such-aws-file");
        let nowhere = nowhere.display().to_string();
        [
            ("AWS_ACCESS_KEY_ID", self.credentials.access_key_id()),
            (
                "AWS_SECRET_ACCESS_KEY",
                self.credentials.secret_access_key(),
            ),
            (
                "AWS_SESSION_TOKEN",
                self.credentials.session_token().unwrap_or_default(),
            ),
            ("AWS_REGION", self.region),
            ("AWS_DEFAULT_REGION", self.region),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", &nowhere),
            ("AWS_SHARED_CREDENTIALS_FILE", &nowhere),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }
}
