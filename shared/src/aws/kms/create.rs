//! Making a key, safely when an answer is lost: KMS's `CreateKey` has no idempotency token,
//! so a retry after an answer lost on the way back (timeout, reset, a 5xx from a load
//! balancer) would make a second key, billed every month and tagged like ours. Each key is
//! made with a tag of its own (`rds-handoff:create-token`, random per run); the SDK's
//! retries are off for this one call, and before each retry the keys that appeared since the
//! first attempt (the account's key ids listed before it) are searched for that tag, so the
//! first attempt's key is found instead of made twice. Throttling is a refusal before KMS
//! acts: it is retried without a look.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_kms::operation::create_key::CreateKeyError;
use aws_sdk_kms::types::Tag;
use aws_smithy_runtime_api::client::result::SdkError as Sdk;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{Aws, Caller};
use crate::base::error::{sdk, Result, SdkError};
use crate::base::progress::{Event, Progress};
use crate::policy::builder::check_lockout;
use crate::policy::KeyPolicySpec;

use super::{create_alias, describe, missing, tags, Key, ALIAS_TAG};

/// The tag that finds a key whose `CreateKey` answer was lost.
pub const CREATE_TOKEN_TAG: &str = "rds-handoff:create-token";
/// Attempts at `CreateKey`, each after looking for the last one's key.
const ATTEMPTS: u32 = 4;
/// The wait before the first look; doubled each time.
const FIRST_DELAY: Duration = Duration::from_millis(500);

pub(super) async fn create(
    aws: &Aws,
    alias: &str,
    spec: &KeyPolicySpec,
    caller: &Caller,
    tags: &BTreeMap<String, String>,
    progress: &dyn Progress,
) -> Result<Key> {
    let policy = spec.build();
    check_lockout(&policy, &caller.principal())?;
    let token = format!("{:032x}", rand::random::<u128>());
    let mut tags = tags.clone();
    tags.insert(ALIAS_TAG.into(), alias.into());
    tags.insert(CREATE_TOKEN_TAG.into(), token.clone());
    let kms_tags: Vec<Tag> = tags
        .iter()
        .filter_map(|(k, v)| Tag::builder().tag_key(k).tag_value(v).build().ok())
        .collect();
    // The same client without the SDK's retries: a retry is ours, after a look.
    let kms = aws_sdk_kms::Client::from_conf(
        aws.kms
            .config()
            .to_builder()
            .retry_config(RetryConfig::disabled())
            .build(),
    );
    let before = key_ids(aws).await?;
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    let key = loop {
        let sent = kms
            .create_key()
            .description(format!("rds-handoff {alias}"))
            .policy(policy.to_json())
            // Sent explicitly so operator policies can require it (`kms:BypassPolicyLockoutSafetyCheck`).
            .bypass_policy_lockout_safety_check(false)
            .set_tags(Some(kms_tags.clone()))
            .send()
            .await;
        let err = match sent {
            Ok(out) => {
                let meta = out.key_metadata().ok_or_else(|| missing("kms:CreateKey"))?;
                break Key {
                    arn: meta.arn().unwrap_or_default().to_owned(),
                    id: meta.key_id().to_owned(),
                };
            }
            Err(err) if attempt < ATTEMPTS && is_throttling(&err) => {
                tokio::time::sleep(delay).await;
                attempt += 1;
                delay *= 2;
                continue;
            }
            Err(err) if maybe_carried_out(&err) => err,
            Err(err) => return Err(sdk("kms:CreateKey")(err)),
        };
        tracing::debug!(attempt, error = %err, "kms:CreateKey got no answer; looking for its key");
        tokio::time::sleep(delay).await;
        if let Some(key) = find_by_token(aws, &before, &token).await? {
            break key;
        }
        if attempt == ATTEMPTS {
            return Err(sdk("kms:CreateKey")(err));
        }
        attempt += 1;
        delay *= 2;
    };
    progress.event(&Event::step("key", &key.arn, "created"));
    progress.created("kms-key", &key.arn);
    create_alias(aws, alias, &key.id).await?;
    Ok(key)
}

/// KMS refused before acting: nothing was made.
fn is_throttling(err: &SdkError<CreateKeyError>) -> bool {
    matches!(err, Sdk::ServiceError(service) if service.err().code() == Some("ThrottlingException"))
}

/// Whether KMS may have made the key although this answer says otherwise: no answer at all
/// (timeout, reset, the connection failing) or a 5xx. A 4xx is KMS's refusal: nothing was
/// made.
fn maybe_carried_out(err: &SdkError<CreateKeyError>) -> bool {
    match err {
        Sdk::ConstructionFailure(_) => false,
        Sdk::ServiceError(service) => {
            service.raw().status().as_u16() >= 500
                || service.err().code() == Some("KMSInternalException")
        }
        _ => true,
    }
}

/// The account's key ids, every page.
async fn key_ids(aws: &Aws) -> Result<BTreeSet<String>> {
    let mut ids = BTreeSet::new();
    let mut pages = aws.kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("kms:ListKeys"))?;
        ids.extend(
            page.keys()
                .iter()
                .filter_map(|k| k.key_id().map(str::to_owned)),
        );
    }
    Ok(ids)
}

/// The key made by an earlier attempt of this run: among the keys that were not there
/// before the first attempt, the one carrying its token.
async fn find_by_token(aws: &Aws, before: &BTreeSet<String>, token: &str) -> Result<Option<Key>> {
    for id in key_ids(aws).await?.difference(before) {
        if tags(aws, id)
            .await?
            .get(CREATE_TOKEN_TAG)
            .map(String::as_str)
            == Some(token)
        {
            return describe(aws, id).await;
        }
    }
    Ok(None)
}
