//! Identifiers and ARNs, parsed once into newtypes.
//!
//! Every value a user or a manifest hands us (account ids, RDS identifiers, ARNs) is checked
//! here before any AWS call, and the error names the value and the rule it breaks. `Deserialize`
//! goes through the same `FromStr`, so a bad manifest fails while it is being read.

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        reason = "tests fail by panicking"
    )
)]

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why an identifier or ARN was refused. The message states the value and the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentError {
    #[error("invalid account id `{value}`: an AWS account id is exactly 12 digits")]
    Account { value: String },
    #[error("invalid {kind} `{value}`: {rule}")]
    Rds {
        kind: &'static str,
        value: String,
        rule: String,
    },
    #[error("invalid ARN `{value}`: {rule}; expected `arn:<partition>:<service>:<region>:<account>:<resource>`")]
    Arn { value: String, rule: String },
}

/// A 12-digit AWS account id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(String);

impl AccountId {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountId {
    type Err = IdentError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdentError::Account {
                value: value.to_owned(),
            })
        }
    }
}

/// The kinds of RDS identifier, each with its length limit (DOMAIN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdsIdKind {
    Instance,
    Cluster,
    Snapshot,
    ClusterSnapshot,
}

impl RdsIdKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Instance => "DB instance identifier",
            Self::Cluster => "DB cluster identifier",
            Self::Snapshot => "DB snapshot identifier",
            Self::ClusterSnapshot => "DB cluster snapshot identifier",
        }
    }

    pub fn max_len(self) -> usize {
        match self {
            Self::Snapshot => 255,
            _ => 63,
        }
    }
}

/// Checks an RDS identifier and returns it lowercased, as RDS stores it.
pub fn check_rds_id(kind: RdsIdKind, value: &str) -> Result<String, IdentError> {
    let fail = |rule: String| IdentError::Rds {
        kind: kind.name(),
        value: value.to_owned(),
        rule,
    };
    let max = kind.max_len();
    if value.is_empty() || value.len() > max {
        return Err(fail(format!("must be 1 to {max} characters long")));
    }
    if let Some((pos, c)) = value
        .char_indices()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(fail(format!(
            "character `{}` at position {pos} is not allowed: use letters, digits and hyphens",
            c.escape_default()
        )));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return Err(fail("must start with a letter".into()));
    }
    if value.ends_with('-') {
        return Err(fail("must not end with a hyphen".into()));
    }
    if value.contains("--") {
        return Err(fail("must not contain two consecutive hyphens".into()));
    }
    Ok(value.to_ascii_lowercase())
}

macro_rules! rds_id {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = IdentError;
            fn from_str(value: &str) -> Result<Self, Self::Err> {
                check_rds_id($kind, value).map(Self)
            }
        }

        string_newtype_traits!($name);
    };
}

macro_rules! string_newtype_traits {
    ($name:ident) => {
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let raw = String::deserialize(d)?;
                raw.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

string_newtype_traits!(AccountId);

rds_id!(
    /// A DB instance identifier (1–63 characters).
    DbInstanceId,
    RdsIdKind::Instance
);
rds_id!(
    /// A DB cluster identifier (1–63 characters).
    DbClusterId,
    RdsIdKind::Cluster
);
rds_id!(
    /// A DB snapshot identifier (1–255 characters).
    DbSnapshotId,
    RdsIdKind::Snapshot
);
rds_id!(
    /// A DB cluster snapshot identifier (1–63 characters).
    DbClusterSnapshotId,
    RdsIdKind::ClusterSnapshot
);

/// An ARN split into its parts. The resource part is kept whole (`db:name`, `key/uuid`,
/// `role/path/name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Arn {
    text: String,
    pub partition: String,
    pub service: String,
    pub region: String,
    pub account: Option<AccountId>,
    pub resource: String,
}

const PARTITIONS: [&str; 3] = ["aws", "aws-cn", "aws-us-gov"];

impl Arn {
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The account part; an error when the ARN has none (S3 buckets, for example).
    pub fn account_id(&self) -> Option<&AccountId> {
        self.account.as_ref()
    }

    /// Checks the service and resource type, e.g. `("rds", "snapshot:")`.
    pub fn expect(self, service: &str, resource_prefix: &str) -> Result<Self, IdentError> {
        if self.service != service || !self.resource.starts_with(resource_prefix) {
            return Err(IdentError::Arn {
                value: self.text,
                rule: format!(
                    "expected a `{service}` ARN whose resource starts with `{resource_prefix}`"
                ),
            });
        }
        Ok(self)
    }
}

impl FromStr for Arn {
    type Err = IdentError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let fail = |rule: &str| IdentError::Arn {
            value: value.to_owned(),
            rule: rule.to_owned(),
        };
        let parts: Vec<&str> = value.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts[..] else {
            return Err(fail("it has fewer than six `:`-separated parts"));
        };
        if prefix != "arn" {
            return Err(fail("it must start with `arn:`"));
        }
        if !PARTITIONS.contains(&partition) {
            return Err(fail(
                "the partition must be `aws`, `aws-cn` or `aws-us-gov`",
            ));
        }
        if service.is_empty()
            || !service
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(fail(
                "the service must be lowercase letters, digits and hyphens",
            ));
        }
        if !region.is_empty() && !is_region(region) {
            return Err(fail("the region is not a region name like `us-east-1`"));
        }
        let account = match account {
            "" => None,
            a => Some(
                a.parse()
                    .map_err(|_| fail("the account must be 12 digits"))?,
            ),
        };
        if resource.is_empty()
            || resource
                .chars()
                .any(|c| c.is_control() || c.is_whitespace())
        {
            return Err(fail(
                "the resource must be non-empty, without spaces or control characters",
            ));
        }
        Ok(Self {
            text: value.to_owned(),
            partition: partition.to_owned(),
            service: service.to_owned(),
            region: region.to_owned(),
            account,
            resource: resource.to_owned(),
        })
    }
}

string_newtype_traits!(Arn);

/// `us-east-1`, `ap-southeast-2`, `us-gov-west-1`: lowercase words and a trailing number.
pub fn is_region(value: &str) -> bool {
    let mut parts = value.split('-').peekable();
    let mut words = 0;
    while let Some(part) = parts.next() {
        if parts.peek().is_none() {
            return words >= 2 && !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
        }
        if part.is_empty() || !part.bytes().all(|b| b.is_ascii_lowercase()) {
            return false;
        }
        words += 1;
    }
    false
}

/// A region name, checked for shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Region(String);

impl Region {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Region {
    type Err = IdentError;
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        if is_region(value) {
            Ok(Self(value.to_owned()))
        } else {
            Err(IdentError::Rds {
                kind: "region",
                value: value.to_owned(),
                rule: "must be a region name like `us-east-1`".into(),
            })
        }
    }
}

string_newtype_traits!(Region);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        assert!("111111111111".parse::<AccountId>().is_ok());
        for bad in [
            "",
            "11111111111",
            "1111111111111",
            "11111111111a",
            " 111111111111",
        ] {
            let err = bad.parse::<AccountId>().unwrap_err().to_string();
            assert!(err.contains("exactly 12 digits"), "{err}");
        }
    }

    #[test]
    fn rds_identifier_rules() {
        assert_eq!("MyDB-1".parse::<DbInstanceId>().unwrap().as_str(), "mydb-1");
        let cases = [
            ("", "1 to 63"),
            ("1db", "start with a letter"),
            ("db-", "end with a hyphen"),
            ("a--b", "consecutive hyphens"),
            ("a_b", "`_` at position 1"),
            ("a b", "` ` at position 1"),
        ];
        for (bad, rule) in cases {
            let err = bad.parse::<DbInstanceId>().unwrap_err().to_string();
            assert!(err.contains(rule), "{bad:?}: {err}");
            assert!(err.contains("DB instance identifier"), "{err}");
        }
        let long = format!("a{}", "b".repeat(63));
        assert!(long.parse::<DbClusterId>().is_err());
        assert!(
            long.parse::<DbSnapshotId>().is_ok(),
            "snapshot ids may be 255 long"
        );
        assert!(long.parse::<DbClusterSnapshotId>().is_err());
        assert!("a".repeat(256).parse::<DbSnapshotId>().is_err());
    }

    #[test]
    fn arns() {
        let arn: Arn = "arn:aws:rds:us-east-1:111111111111:snapshot:rds-handoff-db1"
            .parse()
            .unwrap();
        assert_eq!(arn.service, "rds");
        assert_eq!(arn.region, "us-east-1");
        assert_eq!(arn.account.as_ref().unwrap().as_str(), "111111111111");
        assert_eq!(arn.resource, "snapshot:rds-handoff-db1");
        assert!(arn.clone().expect("rds", "snapshot:").is_ok());
        assert!(arn.expect("rds", "cluster-snapshot:").is_err());

        let role: Arn = "arn:aws:iam::111111111111:role/path/admin".parse().unwrap();
        assert_eq!(role.region, "");
        for (bad, rule) in [
            ("arn:aws:rds:us-east-1:111111111111", "six"),
            (
                "nra:aws:rds:us-east-1:111111111111:db:x",
                "start with `arn:`",
            ),
            ("arn:azure:rds:us-east-1:111111111111:db:x", "partition"),
            ("arn:aws:RDS:us-east-1:111111111111:db:x", "service"),
            ("arn:aws:rds:useast:111111111111:db:x", "region"),
            ("arn:aws:rds:us-east-1:1111:db:x", "12 digits"),
            ("arn:aws:rds:us-east-1:111111111111:", "resource"),
        ] {
            let err = bad.parse::<Arn>().unwrap_err().to_string();
            assert!(err.contains(rule), "{bad}: {err}");
            assert!(err.contains(bad), "{err}");
        }
    }

    #[test]
    fn regions() {
        for good in [
            "us-east-1",
            "ap-southeast-2",
            "us-gov-west-1",
            "eu-central-2",
        ] {
            assert!(is_region(good), "{good}");
        }
        for bad in ["", "us", "us-east", "US-east-1", "us--1", "1-east-1"] {
            assert!(!is_region(bad), "{bad}");
        }
    }
}
