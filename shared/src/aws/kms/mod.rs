//! The customer managed keys the agents make or reuse.
//!
//! A key is found by its alias first, then (if a run died between CreateKey and CreateAlias)
//! by the `rds-handoff:alias` tag the toolkit puts on every key it makes, so a re-run never
//! creates a second key. No key is used for its name alone: every key the run did not just
//! make (named with `--kms-key-id`, found by alias or by tag) is used only once its policy
//! passes the audit for this handoff, and one found by the toolkit's alias or tag only if it
//! carries the toolkit's tag for that alias. Every policy goes through the local lockout check
//! before KMS sees it.

mod create;

use std::collections::BTreeMap;

use aws_sdk_kms::types::KeyState;

use crate::aws::{Aws, Caller};
use crate::base::error::{sdk, Error, Result};
use crate::base::progress::{Event, Progress};
use crate::ident::Arn;
use crate::policy::audit::{audit_trusting, Severity, Trust};
use crate::policy::builder::{check_lockout, has_peer, merge_peer};
use crate::policy::{toolkit_peers, KeyPolicySpec, PolicyDocument};

pub const ALIAS_TAG: &str = "rds-handoff:alias";

/// A key in use.
#[derive(Debug, Clone)]
pub struct Key {
    pub arn: String,
    pub id: String,
}

/// Which key to use: one the operator named, or the toolkit's own under an alias.
#[derive(Debug, Clone)]
pub enum KeyChoice {
    Given(String),
    Alias(String),
}

impl KeyChoice {
    pub fn describe(&self) -> String {
        match self {
            Self::Given(key) => format!("key {key}"),
            Self::Alias(alias) => alias.clone(),
        }
    }

    /// The id, ARN or alias KMS finds the key by.
    pub fn id(&self) -> &str {
        match self {
            Self::Given(key) | Self::Alias(key) => key,
        }
    }
}

/// The key flags `export` and `encrypt` share.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyArgs {
    /// Use this existing key (id, ARN or alias) instead of making one
    #[arg(
        long = "kms-key-id",
        alias = "key",
        value_name = "KEY",
        conflicts_with = "key_alias"
    )]
    pub key: Option<String>,
    /// Alias of the key to make or reuse [default: alias/rds-handoff/<id of the database it encrypts>]
    #[arg(long, value_name = "ALIAS")]
    pub key_alias: Option<String>,
    /// Administer a new key through this principal instead of the account root (repeatable)
    #[arg(long = "key-admin", value_name = "ARN")]
    pub key_admins: Vec<Arn>,
}

impl KeyArgs {
    /// Whether the operator named a key (`--kms-key-id` or `--key-alias`), rather than the
    /// toolkit's default alias.
    pub fn named(&self) -> bool {
        self.key.is_some() || self.key_alias.is_some()
    }

    /// The key to use: the one given, or the toolkit's own under `--key-alias` or the
    /// default alias for `db`.
    pub fn choice(&self, db: &str) -> Result<KeyChoice> {
        Ok(match (&self.key, &self.key_alias) {
            (Some(key), _) => KeyChoice::Given(key.clone()),
            (None, Some(alias)) => KeyChoice::Alias(check_alias(alias)?),
            (None, None) => KeyChoice::Alias(format!("alias/rds-handoff/{db}")),
        })
    }
}

/// A KMS alias the toolkit may create: `alias/…`, not in the reserved `alias/aws/` space.
pub fn check_alias(alias: &str) -> Result<String> {
    let valid_chars = alias
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b));
    if !alias.starts_with("alias/")
        || alias.starts_with("alias/aws/")
        || alias.len() > 256
        || !valid_chars
    {
        return Err(Error::usage(format!(
            "invalid key alias `{alias}`: it must start with `alias/`, not `alias/aws/`, and use letters, digits, `/`, `_` and `-`"
        )));
    }
    Ok(alias.to_owned())
}

/// Makes sure the key exists and its policy holds the statements of `spec`'s peer.
pub async fn ensure_key(
    aws: &Aws,
    choice: &KeyChoice,
    spec: &KeyPolicySpec,
    caller: &Caller,
    tags: &BTreeMap<String, String>,
    progress: &dyn Progress,
) -> Result<Key> {
    progress.stage("key");
    let key = match usable(aws, choice, spec, caller).await? {
        None => return create::create(aws, &choice.describe(), spec, caller, tags, progress).await,
        Some((key, Found::Tag(alias))) => {
            let found = format!("found by its tag, without its alias: adding `{alias}`");
            progress.event(&Event::step("key", &key.arn, &found));
            create_alias(aws, alias, &key.id).await?;
            key
        }
        Some((key, _)) => key,
    };
    add_peer(aws, &key, spec, caller, progress).await?;
    progress.event(&Event::step("key", &key.arn, "ready"));
    Ok(key)
}

/// What [`ensure_key`] would do to a key that exists, read without changing anything (a
/// dry run).
#[derive(Debug)]
pub struct KeyPlan {
    pub key: Key,
    /// Found by the toolkit's tag: its alias is added.
    pub alias_added: Option<String>,
    /// The statements (by Sid) the policy is given for the target, replacing that account's
    /// earlier ones; empty when it has them.
    pub sets: Vec<String>,
}

/// What [`ensure_key`] would do, read without changing anything (a dry run): the same
/// refusals, then what it does to the key found; `None` when the key would be made.
pub async fn plan_key(
    aws: &Aws,
    choice: &KeyChoice,
    spec: &KeyPolicySpec,
    caller: &Caller,
) -> Result<Option<KeyPlan>> {
    let Some((key, found)) = usable(aws, choice, spec, caller).await? else {
        return Ok(None);
    };
    let alias_added = match found {
        Found::Tag(alias) => Some(alias.to_owned()),
        _ => None,
    };
    let adds = match &spec.peer {
        Some(peer) => {
            let wanted = spec.peer_statements(peer);
            if has_peer(&get_policy(aws, &key.id).await?, &wanted) {
                Vec::new()
            } else {
                wanted.into_iter().filter_map(|s| s.sid).collect()
            }
        }
        None => Vec::new(),
    };
    Ok(Some(KeyPlan {
        key,
        alias_added,
        sets: adds,
    }))
}

/// The key `choice` names, if there is one, once it passes [`adoptable`]; `None` when the
/// toolkit's own is to be made.
async fn usable<'a>(
    aws: &Aws,
    choice: &'a KeyChoice,
    spec: &KeyPolicySpec,
    caller: &Caller,
) -> Result<Option<(Key, Found<'a>)>> {
    let Some((key, found)) = located(aws, choice).await? else {
        return match choice {
            KeyChoice::Given(id) => Err(Error::refused(
                format!("KMS key `{id}` not found in this account and region"),
                "check `--kms-key-id` and `--region`",
            )),
            KeyChoice::Alias(_) => Ok(None),
        };
    };
    // Before any change: the toolkit's statements are never added to a policy that already
    // lets in someone this handoff does not trust.
    adoptable(aws, &key, found, spec, caller).await?;
    Ok(Some((key, found)))
}

/// The key `choice` names, if there is one: the given key, or the one the alias names, or
/// the one carrying the toolkit's tag for the alias (its alias lost). Nothing is audited.
pub async fn find(aws: &Aws, choice: &KeyChoice) -> Result<Option<Key>> {
    Ok(located(aws, choice).await?.map(|(key, _)| key))
}

/// [`find`], and how the key was found.
async fn located<'a>(aws: &Aws, choice: &'a KeyChoice) -> Result<Option<(Key, Found<'a>)>> {
    Ok(match choice {
        KeyChoice::Given(id) => describe(aws, id).await?.map(|key| (key, Found::Given)),
        KeyChoice::Alias(alias) => match describe(aws, alias).await? {
            Some(key) => Some((key, Found::Alias(alias))),
            None => find_tagged(aws, alias)
                .await?
                .map(|key| (key, Found::Tag(alias))),
        },
    })
}

/// How a key the run did not just make was found.
#[derive(Debug, Clone, Copy)]
enum Found<'a> {
    /// Named by the operator (`--kms-key-id`).
    Given,
    /// Under this alias, the toolkit's own (default or `--key-alias`).
    Alias(&'a str),
    /// By the toolkit's tag for this alias (the alias is missing: a run stopped before it).
    Tag(&'a str),
}

/// A key the run did not just make is used only if its policy passes the audit for this
/// handoff (the key's account and, for an export, its target: nobody else), and, when it was
/// found by the toolkit's alias, only if it carries the toolkit's tag for that alias. Anyone
/// who may create an alias can point one at a key of theirs, and anyone who may tag a key can
/// tag it like ours: neither name nor tag is proof, the policy is what is checked. The
/// toolkit's own key passes, also with the target's statements an earlier run added (the
/// audit trusts this handoff's target) and after a run stopped anywhere: `CreateKey` carries
/// the whole policy, and the key is tagged before it is aliased.
async fn adoptable(
    aws: &Aws,
    key: &Key,
    found: Found<'_>,
    spec: &KeyPolicySpec,
    caller: &Caller,
) -> Result<()> {
    if let Found::Alias(alias) = found {
        let carried = tags(aws, &key.id).await?;
        if carried.get(ALIAS_TAG).map(String::as_str) != Some(alias) {
            return Err(Error::refused(
                format!(
                    "alias `{alias}` names key `{}`, which does not carry the toolkit's tag `{ALIAS_TAG}={alias}`: the toolkit did not make it for this alias",
                    key.arn
                ),
                format!(
                    "find out who pointed `{alias}` at this key (`aws kms list-aliases`); to use a key you trust pass `--kms-key-id`, or pass `--key-alias` with another name for a new key"
                ),
            ));
        }
    }
    let policy = get_policy(aws, &key.id).await?;
    let mut trust = Trust::of_spec(spec);
    if !matches!(found, Found::Given) {
        // The toolkit's own key keeps its earlier targets, in exactly the statements it wrote
        // for them, until their handoffs are revoked.
        for earlier in toolkit_peers(spec, &policy) {
            trust = trust.with_target(earlier);
        }
    }
    let listed: Vec<String> = audit_trusting(&policy, &trust, Some(&caller.principal()))
        .iter()
        // That the caller may not change the policy lets nobody in: KMS refuses the
        // change, should one be needed.
        .filter(|f| !(f.check == "lockout" && f.severity != Severity::High))
        .map(|f| format!("{}: {}", f.check, f.message))
        .collect();
    if listed.is_empty() {
        return Ok(());
    }
    let (what, hint) = match found {
        Found::Given => (
            format!("key `{}` (`--kms-key-id`)", key.arn),
            "read its policy (`aws kms get-key-policy --policy-name default --key-id <key>`) and take out what lets in others, or pass another key; nothing was changed on it".to_owned(),
        ),
        Found::Alias(alias) => (
            format!("key `{}` under alias `{alias}`", key.arn),
            "read its policy (`aws kms get-key-policy --policy-name default --key-id <key>`) and find out who changed it; if it still lets in an earlier handoff's target, revoke that handoff first; or pass `--key-alias` with another name for a new key".to_owned(),
        ),
        Found::Tag(alias) => (
            format!("key `{}` tagged for alias `{alias}`", key.arn),
            "find out who made it (anyone who may tag a key can tag it like the toolkit's); pass `--key-alias` with another name for a new key, or `--kms-key-id` to use a key you trust".to_owned(),
        ),
    };
    Err(Error::refused(
        format!(
            "{what} has a policy that does not pass the audit for this handoff ({})",
            listed.join("; ")
        ),
        hint,
    ))
}

fn missing(action: &str) -> Error {
    Error::Aws {
        action: action.into(),
        code: "EmptyResponse".into(),
        message: "the response had no key metadata".into(),
        hint: None,
    }
}

async fn create_alias(aws: &Aws, alias: &str, key_id: &str) -> Result<()> {
    let result = aws
        .kms
        // Retry-safe: a repeat answers AlreadyExistsException; done only if the alias names
        // this key (an alias someone else made is refused, never taken for ours).
        .create_alias()
        .alias_name(alias)
        .target_key_id(key_id)
        .send()
        .await;
    match result.map(|_| ()).map_err(sdk("kms:CreateAlias")) {
        Err(err) if err.aws_code() == Some("AlreadyExistsException") => {
            match describe(aws, alias).await? {
                Some(found) if found.id == key_id || found.arn.ends_with(&format!("/{key_id}")) => Ok(()),
                _ => Err(Error::refused(
                    format!("alias `{alias}` already exists and names another key than the one just made (`{key_id}`)"),
                    format!("find out who made `{alias}` (`aws kms list-aliases`); pass `--key-alias` with another name, or delete the alias if it is stale"),
                )),
            }
        }
        other => other,
    }
}

/// A usable key by id, ARN or alias; `None` when it does not exist.
/// A usable key: one that exists and is `Enabled` (any other state is refused).
pub async fn describe(aws: &Aws, key: &str) -> Result<Option<Key>> {
    let Some((found, state)) = lookup(aws, key).await? else {
        return Ok(None);
    };
    match state {
        Some(KeyState::Enabled) | None => Ok(Some(found)),
        Some(state) => Err(Error::refused(
            format!("KMS key `{key}` is `{}`, not `Enabled`", state.as_str()),
            "cancel its deletion (`aws kms cancel-key-deletion`, then `aws kms enable-key`) or enable it, or pass another `--kms-key-id`",
        )),
    }
}

/// A key in whatever state it is (`None` if KMS has no such key).
pub async fn lookup(aws: &Aws, key: &str) -> Result<Option<(Key, Option<KeyState>)>> {
    let out = match aws
        .kms
        .describe_key()
        .key_id(key)
        .send()
        .await
        .map_err(sdk("kms:DescribeKey"))
    {
        Ok(out) => out,
        Err(err) if err.aws_code() == Some("NotFoundException") => return Ok(None),
        Err(err) => return Err(err),
    };
    let meta = out
        .key_metadata()
        .ok_or_else(|| missing("kms:DescribeKey"))?;
    let key = Key {
        arn: meta.arn().unwrap_or_default().to_owned(),
        id: meta.key_id().to_owned(),
    };
    Ok(Some((key, meta.key_state().cloned())))
}

/// A key's tags.
pub async fn tags(aws: &Aws, key: &str) -> Result<BTreeMap<String, String>> {
    let out = aws
        .kms
        .list_resource_tags()
        .key_id(key)
        .send()
        .await
        .map_err(sdk("kms:ListResourceTags"))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
        .collect())
}

/// A key that carries the toolkit's tag for `alias` (made by a run stopped before it could
/// name it). The account's keys are read once per run, however many databases ask.
pub async fn find_tagged(aws: &Aws, alias: &str) -> Result<Option<Key>> {
    let tagged = aws
        .tagged_keys
        .get_or_try_init(|| keys_by_tag(aws, ALIAS_TAG))
        .await?;
    for id in tagged.get(alias).into_iter().flatten() {
        if let Ok(Some(key)) = describe(aws, id).await {
            return Ok(Some(key));
        }
    }
    Ok(None)
}

/// Every key of the account that carries the tag `tag_key`, by the tag's value.
async fn keys_by_tag(aws: &Aws, tag_key: &str) -> Result<BTreeMap<String, Vec<String>>> {
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut pages = aws.kms.list_keys().into_paginator().send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("kms:ListKeys"))?;
        for entry in page.keys() {
            let Some(id) = entry.key_id() else { continue };
            let tags = match tags(aws, id).await {
                Ok(tags) => tags,
                // A key whose policy does not let us read it is not ours.
                Err(err) if err.aws_code() == Some("AccessDeniedException") => {
                    tracing::debug!(key = id, "skipping a key we may not read the tags of");
                    continue;
                }
                Err(err) => return Err(err),
            };
            if let Some(value) = tags.get(tag_key) {
                found.entry(value.clone()).or_default().push(id.to_owned());
            }
        }
    }
    Ok(found)
}

pub async fn get_policy(aws: &Aws, key: &str) -> Result<PolicyDocument> {
    let out = aws
        .kms
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .map_err(sdk("kms:GetKeyPolicy"))?;
    PolicyDocument::parse(out.policy().unwrap_or_default()).map_err(|e| Error::Refused {
        message: format!("the policy of key `{key}` is not a policy this tool can read: {e}"),
        hint: None,
    })
}

/// Writes a policy after the lockout check.
pub async fn put_policy(
    aws: &Aws,
    key: &Key,
    policy: &PolicyDocument,
    caller: &Caller,
) -> Result<()> {
    check_lockout(policy, &caller.principal())?;
    aws.kms
        // Retry-safe: the same document put again is the same policy.
        .put_key_policy()
        .key_id(&key.id)
        .policy_name("default")
        .policy(policy.to_json())
        .bypass_policy_lockout_safety_check(false)
        .send()
        .await
        .map(|_| ())
        .map_err(sdk("kms:PutKeyPolicy"))
}

/// Adds the peer's statements to the key's policy if they are missing, keeping the rest.
async fn add_peer(
    aws: &Aws,
    key: &Key,
    spec: &KeyPolicySpec,
    caller: &Caller,
    progress: &dyn Progress,
) -> Result<()> {
    let Some(peer) = &spec.peer else {
        return Ok(());
    };
    let wanted = spec.peer_statements(peer);
    let current = get_policy(aws, &key.id).await?;
    if has_peer(&current, &wanted) {
        return Ok(());
    }
    let merged = merge_peer(current, wanted);
    put_policy(aws, key, &merged, caller).await?;
    progress.event(&Event::step(
        "key policy",
        &key.arn,
        "target statements added",
    ));
    Ok(())
}

/// Databases and snapshots in this account and region encrypted with `key`.
pub async fn encrypting(aws: &Aws, key: &Key) -> Result<Vec<String>> {
    let uses = |k: Option<&str>| k.is_some_and(|k| k == key.arn || k == key.id);
    Ok(crate::aws::rds::list_all(aws)
        .await?
        .iter()
        .filter(|r| uses(r.kms_key_id.as_deref()))
        .map(crate::aws::rds::Listed::describe)
        .collect())
}

/// What still uses `key` here: the databases and snapshots it encrypts, and the secrets kept
/// under it, scheduled for deletion or not (named by its ARN, its id, or any alias of it and
/// that alias's ARN: Secrets Manager keeps the name it was given). A key is retired only
/// when this is empty: a secret under a deleted key is unreadable.
pub async fn users(aws: &Aws, key: &Key) -> Result<Vec<String>> {
    let mut names = vec![key.arn.clone(), key.id.clone()];
    let prefix = key.arn.rsplit_once(":key/").map(|(prefix, _)| prefix);
    for alias in aliases_of(aws, key).await? {
        if let Some(prefix) = prefix {
            names.push(format!("{prefix}:{alias}"));
        }
        names.push(alias);
    }
    let mut users = encrypting(aws, key).await?;
    users.extend(crate::aws::secrets::encrypted_with(aws, &names).await?);
    Ok(users)
}

/// The aliases that name `key` (`alias/…`), all pages.
async fn aliases_of(aws: &Aws, key: &Key) -> Result<Vec<String>> {
    let mut found = Vec::new();
    let mut pages = aws
        .kms
        .list_aliases()
        .key_id(&key.id)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.map_err(sdk("kms:ListAliases"))?;
        found.extend(
            page.aliases()
                .iter()
                .filter_map(|a| a.alias_name().map(str::to_owned)),
        );
    }
    Ok(found)
}

/// Schedules a key's deletion after `days` (7–30), the waiting period in which it can still
/// be cancelled.
pub async fn schedule_deletion(aws: &Aws, key: &Key, days: i32) -> Result<()> {
    // By id: AWS takes the id or the ARN, the emulator only the id.
    let result = aws
        .kms
        // Retry-safe: a repeat finds the key pending deletion (KMSInvalidStateException),
        // read as done once its state says so.
        .schedule_key_deletion()
        .key_id(&key.id)
        .pending_window_in_days(days)
        .send()
        .await
        .map(|_| ())
        .map_err(sdk("kms:ScheduleKeyDeletion"));
    match result {
        Err(err) if err.aws_code() == Some("KMSInvalidStateException") => {
            match lookup(aws, &key.id).await? {
                Some((_, Some(KeyState::PendingDeletion))) => Ok(()),
                _ => Err(err),
            }
        }
        other => other,
    }
}
