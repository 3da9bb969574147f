//! Secrets Manager calls: a secret as the flows see it (its ARN, tags and key), read by
//! name; `None` when there is none.

use std::collections::BTreeMap;

use aws_sdk_secretsmanager::types::SecretListEntry;

use crate::aws::Aws;
use crate::base::error::{sdk, Result};

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
    Ok(list(aws)
        .await?
        .iter()
        .filter(|s| s.kms_key_id().is_some_and(|k| names.iter().any(|n| n == k)))
        .map(|s| format!("secret `{}`", s.name().unwrap_or_default()))
        .collect())
}

/// Every secret of this account and region, all pages.
pub async fn list(aws: &Aws) -> Result<Vec<SecretListEntry>> {
    let mut found = Vec::new();
    let mut pages = aws.secrets.list_secrets().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("secretsmanager:ListSecrets"))?;
        found.extend(page.secret_list().iter().cloned());
    }
    Ok(found)
}
