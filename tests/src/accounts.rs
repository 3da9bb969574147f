//! The accounts on the emulator: each is entered through `sts:AssumeRole`, as moto maps a
//! role ARN's account to the credentials it returns.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;

use crate::emulator::Emulator;

pub const SOURCE: &str = "111111111111";
pub const TARGET: &str = "222222222222";
pub const THIRD: &str = "333333333333";
pub const REGION: &str = "us-east-1";

/// One account's temporary credentials on the emulator.
#[derive(Clone)]
pub struct Account {
    pub id: String,
    pub role_arn: String,
    pub endpoint: String,
    credentials: Credentials,
}

fn config(endpoint: &str, credentials: Credentials) -> SdkConfig {
    // Built by hand, not from the environment: the host's AWS setup must not leak in.
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
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
        let sts = aws_sdk_sts::Client::new(&config(&emulator.url, base));
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
        Account {
            id: id.to_owned(),
            role_arn,
            endpoint: emulator.url.clone(),
            credentials,
        }
    }

    pub fn config(&self) -> SdkConfig {
        config(&self.endpoint, self.credentials.clone())
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
            ("AWS_REGION", REGION),
            ("AWS_DEFAULT_REGION", REGION),
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
