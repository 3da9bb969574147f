//! Making a key, safely when an answer is lost: KMS's `CreateKey` has no idempotency token,
//! so a retry after an answer lost on the way back (timeout, reset, a 5xx from a load
//! balancer) would make a second key, billed every month. Each key is made with a token of
//! its own (random per run) at the end of its description; the SDK's retries are off for
//! this one call, and before each retry the keys that appeared since the first attempt (the
//! account's key ids listed before it) are searched for that token, so the first attempt's
//! key is found instead of made twice. Throttling is a refusal before KMS acts: it is
//! retried without a look.
//!
//! The key is made **untagged** and tagged right after, by the principal the key's own policy
//! names as its administrator ([`KeyPolicySpec::made_by`]). Tags given to `CreateKey` are
//! authorized as `kms:TagResource` in an IAM policy that must cover every key of the account
//! and region (KMS developer guide, `tag-permissions`), and no condition tells that apart from
//! tagging an existing key: a permission to tag new keys would be a permission to tag any
//! key. So the operator policies grant no `kms:TagResource` at all, and the key's policy lets
//! its maker tag it. The price: a run stopped between `CreateKey` and `TagResource` leaves an
//! untagged key (described as this alias's) that the next run does not look for, as
//! `policies/README.md` says; it makes another.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_sdk_kms::operation::create_key::CreateKeyError;
use aws_sdk_kms::types::{KeyMetadata, KeyState, Tag};
use aws_smithy_runtime_api::client::result::SdkError as Sdk;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use crate::aws::{Aws, Caller};
use crate::base::error::{sdk, Error, Result, SdkError};
use crate::base::progress::{Event, Progress};
use crate::policy::builder::check_lockout;
use crate::policy::KeyPolicySpec;

use super::{create_alias, describe, missing, Key, ALIAS_TAG};

/// The run's token, put on the key it made as a tag (a lost `CreateKey` answer is found by the
/// same token at the end of the key's description: the key is tagged only once it is made).
pub const CREATE_TOKEN_TAG: &str = "rds-handoff:create-token";
/// The state file's record of a `CreateKey` about to be sent: its description, with the token.
const REQUEST_KIND: &str = "kms-key-request";
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
    let policy = spec.clone().made_by(&caller.principal()).build();
    check_lockout(&policy, &caller.principal())?;
    let token = format!("{:032x}", rand::random::<u128>());
    let description = format!("rds-handoff {alias} {token}");
    let mut tags = tags.clone();
    tags.insert(ALIAS_TAG.into(), alias.into());
    tags.insert(CREATE_TOKEN_TAG.into(), token);
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
    if let Some(key) = made_before(aws, alias, progress).await? {
        return tag_and_alias(aws, alias, key, kms_tags).await;
    }
    // Recorded before it is sent: a run killed before the answer arrives leaves a key only
    // this description finds.
    progress.requested(REQUEST_KIND, &description);
    let before = key_ids(aws).await?;
    let mut delay = FIRST_DELAY;
    let mut attempt = 1;
    let key = loop {
        // No `Tags`: see the module's header.
        let sent = kms
            .create_key()
            .description(&description)
            .policy(policy.to_json())
            // Sent explicitly so operator policies can require it (`kms:BypassPolicyLockoutSafetyCheck`).
            .bypass_policy_lockout_safety_check(false)
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
            Err(err) => return Err(path_hint(sdk("kms:CreateKey")(err), caller)),
        };
        tracing::debug!(attempt, error = %err, "kms:CreateKey got no answer; looking for its key");
        tokio::time::sleep(delay).await;
        if let Some(key) = find_by_token(aws, &before, &description).await? {
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
    tag_and_alias(aws, alias, key, kms_tags).await
}

async fn tag_and_alias(aws: &Aws, alias: &str, key: Key, kms_tags: Vec<Tag>) -> Result<Key> {
    aws.kms
        // Retry-safe: the same tags put again are the same tags. Authorized by the key's own
        // policy, which names its maker.
        .tag_resource()
        .key_id(&key.id)
        .set_tags(Some(kms_tags))
        .send()
        .await
        .map_err(sdk("kms:TagResource"))?;
    create_alias(aws, alias, &key.id).await?;
    Ok(key)
}

/// The key an earlier run of this handoff made for `alias` and recorded in its state file,
/// but did not get to tag (stopped between `CreateKey` and `TagResource`): finished, not
/// made twice. Only an enabled key whose description is the toolkit's for this alias.
async fn made_before(aws: &Aws, alias: &str, progress: &dyn Progress) -> Result<Option<Key>> {
    let ours = format!("rds-handoff {alias} ");
    let enabled = |meta: &KeyMetadata| meta.key_state() == Some(&KeyState::Enabled);
    for arn in progress.recorded("kms-key") {
        let usable = |meta: &KeyMetadata| {
            meta.description().is_some_and(|d| d.starts_with(&ours)) && enabled(meta)
        };
        // A recorded key KMS no longer knows is passed over.
        if let Ok(Some(key)) = described(aws, &arn, usable).await {
            return Ok(Some(key));
        }
    }
    let asked: Vec<String> = progress
        .recorded(REQUEST_KIND)
        .into_iter()
        .filter(|d| d.starts_with(&ours))
        .collect();
    if asked.is_empty() {
        return Ok(None);
    }
    // Sent, but its answer never reached the run: every key of the account is looked at,
    // once, on this resume only.
    for id in key_ids(aws).await? {
        let usable = |meta: &KeyMetadata| {
            meta.description()
                .is_some_and(|d| asked.iter().any(|a| a == d))
                && enabled(meta)
        };
        if let Some(key) = described(aws, &id, usable).await? {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// KMS refuses a policy that names a principal it cannot resolve. A session of a role with a
/// path (IAM Identity Center's `role/aws-reserved/sso.amazonaws.com/…`) maps to the role's
/// ARN without it, since no STS answer carries the path: such a role is named with
/// `--key-admin` and its full ARN.
fn path_hint(err: Error, caller: &Caller) -> Error {
    match err {
        Error::Aws {
            action,
            code,
            message,
            hint: None,
        } if code == "MalformedPolicyDocumentException" && caller.arn.service == "sts" => {
            let hint = format!(
                "the key policy names you as `{}`; if your role has a path (IAM Identity Center roles do), pass `--key-admin` with the role's full ARN (`aws iam get-role --role-name <name>`)",
                caller.principal()
            );
            Error::Aws {
                action,
                code,
                message,
                hint: Some(hint),
            }
        }
        other => other,
    }
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
/// before the first attempt, the one whose description (which ends with this run's token) is
/// `description`.
async fn find_by_token(
    aws: &Aws,
    before: &BTreeSet<String>,
    description: &str,
) -> Result<Option<Key>> {
    for id in key_ids(aws).await?.difference(before) {
        if let Some(key) =
            described(aws, id, |meta| meta.description() == Some(description)).await?
        {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// The key `id`, when its metadata passes `wanted`.
async fn described(
    aws: &Aws,
    id: &str,
    wanted: impl Fn(&KeyMetadata) -> bool,
) -> Result<Option<Key>> {
    let out = aws
        .kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .map_err(sdk("kms:DescribeKey"))?;
    if out.key_metadata().is_some_and(wanted) {
        return describe(aws, id).await;
    }
    Ok(None)
}
