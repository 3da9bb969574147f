//! Secrets Manager calls: a secret as the flows see it (its ARN, tags and key), read by
//! name; `None` when there is none.

use std::collections::BTreeMap;

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
