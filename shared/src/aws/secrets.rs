//! Secrets Manager calls: a secret as the flows see it (its ARN, tags and key), read by
//! name; `None` when there is none; the login a secret holds, for the data check.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::SecretListEntry;

use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::datacheck::Password;

/// A secret as the import sees it.
pub struct Secret {
    pub arn: String,
    pub tags: BTreeMap<String, String>,
    pub kms_key_id: Option<String>,
}

pub async fn describe_secret(aws: &Aws, name: &str) -> Result<Option<Secret>> {
    match aws
        .secrets
        .describe_secret()
        .secret_id(name)
        .send()
        .await
        .map_err(sdk("secretsmanager:DescribeSecret"))
    {
        Ok(out) => Ok(Some(Secret {
            arn: out.arn().unwrap_or_default().to_owned(),
            tags: out
                .tags()
                .iter()
                .filter_map(|t| Some((t.key()?.to_owned(), t.value()?.to_owned())))
                .collect(),
            kms_key_id: out.kms_key_id().map(str::to_owned),
        })),
        Err(err) if err.aws_code() == Some("ResourceNotFoundException") => Ok(None),
        Err(err) => Err(err),
    }
}

/// The secrets of this account and region encrypted with the key any of `names` names (its
/// ARN, id, alias or alias ARN: Secrets Manager keeps whichever the secret was made with), as
/// an operator message names them: ``secret `name` ``.
pub async fn encrypted_with(aws: &Aws, names: &[String]) -> Result<Vec<String>> {
    // A secret scheduled for deletion can still be restored, and read only with its key.
    Ok(list(aws, true)
        .await?
        .iter()
        .filter(|s| s.kms_key_id().is_some_and(|k| names.iter().any(|n| n == k)))
        .map(|s| format!("secret `{}`", s.name().unwrap_or_default()))
        .collect())
}

/// Every secret of this account and region, all pages; with `planned_deletion`, those
/// scheduled for deletion too.
pub async fn list(aws: &Aws, planned_deletion: bool) -> Result<Vec<SecretListEntry>> {
    let mut found = Vec::new();
    let mut pages = aws
        .secrets
        .list_secrets()
        .include_planned_deletion(planned_deletion)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("secretsmanager:ListSecrets"))?;
        found.extend(page.secret_list().iter().cloned());
    }
    Ok(found)
}

/// The login a secret in RDS's rotation format holds (`username`, `password`; an RDS-managed
/// master secret holds the same two). Neither the value nor a part of it ever reaches an error.
pub async fn read_login(aws: &Aws, id: &str) -> Result<(String, Password)> {
    let out = aws
        .secrets
        .get_secret_value()
        .secret_id(id)
        .send()
        .await
        .map_err(sdk("secretsmanager:GetSecretValue"))?;
    let malformed = || {
        Error::refused(
            format!("secret `{id}` does not hold a login as JSON with `username` and `password`"),
            "pass a secret in the RDS rotation format (`{\"username\": …, \"password\": …}`), or the database's RDS-managed master secret",
        )
    };
    let value: serde_json::Value = out
        .secret_string()
        .and_then(|text| serde_json::from_str(text).ok())
        .ok_or_else(malformed)?;
    let field = |name: &str| value.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    match (field("username"), field("password")) {
        (Some(user), Some(password)) if !user.is_empty() => Ok((user, Password::new(password))),
        _ => Err(malformed()),
    }
}
