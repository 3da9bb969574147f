//! Builds the key policies the toolkit writes, and checks them for lockout before use.
//!
//! One builder serves both keys: the source's migration key (administration and RDS use in
//! the source account, plus what the target account needs to copy the shared snapshot) and
//! the target's own key (administration and use through RDS and Secrets Manager, no peer).
//! Each statement's Sid says what it is for; `policies/README.md` explains them at length.

use std::collections::BTreeMap;

use super::eval::{evaluate, Request};
use super::model::{
    ConditionValues, Conditions, Effect, OneOrMany, PolicyDocument, Principal, Statement,
};
use rds_handoff_ident::{AccountId, Arn, Region};

pub const SID_ADMIN: &str = "AdministerKeyFromOwnAccount";
pub const SID_OWN_USE: &str = "UseKeyThroughAwsServicesInOwnAccount";
pub const SID_OWN_GRANTS: &str = "GrantKeyToAwsResourcesInOwnAccount";
pub const SID_TARGET_USE: &str = "TargetAccountUsesKeyThroughRdsToCopySharedSnapshot";
pub const SID_TARGET_GRANTS: &str = "TargetAccountGrantsKeyToRdsCopiesOnly";
/// The strict variant's use statement (a different Sid, so a reviewer sees which one a key has).
pub const SID_TARGET_USE_STRICT: &str = "TargetAccountReadsSharedSnapshotThroughRdsStrict";
/// The target's use statement as releases before the documented default wrote it.
const SID_TARGET_USE_LEGACY: &str = "TargetAccountReadsSharedSnapshotThroughRds";
/// Sids of the statements written for a peer account, in either variant or an older release.
pub const PEER_SIDS: &[&str] = &[
    SID_TARGET_USE,
    SID_TARGET_USE_STRICT,
    SID_TARGET_GRANTS,
    SID_TARGET_USE_LEGACY,
];

/// Which statements the target account gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
pub enum KeyPolicyVariant {
    /// AWS's documented statements for sharing an encrypted snapshot, through RDS only
    #[default]
    Documented,
    /// NOT VERIFIED ON AWS: the target may only Decrypt, DescribeKey and ReEncryptFrom
    /// through RDS; a copy may fail with KMSKeyNotAccessibleFault
    Strict,
}

/// Key administration without use: what the administering principal (the account root, or
/// the `--key-admin` roles) gets. The AWS console's key-administrator list, except that
/// `kms:Create*` is narrowed to `kms:CreateAlias`: it would include `kms:CreateGrant`, and an
/// unconditioned grant is use of the key by another name.
pub const ADMIN_ACTIONS: &[&str] = &[
    "kms:CreateAlias",
    "kms:Describe*",
    "kms:Enable*",
    "kms:List*",
    "kms:Put*",
    "kms:Update*",
    "kms:Revoke*",
    "kms:Disable*",
    "kms:Get*",
    "kms:Delete*",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
];

/// Use of the key by AWS services in the key's own account.
pub const OWN_USE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt*",
    "kms:GenerateDataKey*",
    "kms:DescribeKey",
];

/// AWS's documented "use of the key" for an account a snapshot is shared with
/// (`USER_ShareSnapshot`), without its unconditioned `kms:CreateGrant`.
pub const TARGET_USE_ACTIONS: &[&str] = OWN_USE_ACTIONS;

/// The strict variant: read from this key, never encrypt new data with it. Narrower than
/// anything AWS documents; not verified on AWS.
pub const TARGET_USE_ACTIONS_STRICT: &[&str] =
    &["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"];

/// Grants, which RDS creates for the resources it encrypts.
pub const GRANT_ACTIONS: &[&str] = &["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];

/// The account that may use the key to copy the shared snapshot.
#[derive(Debug, Clone)]
pub struct Peer {
    pub account: AccountId,
    /// Narrows the peer from the whole account to one principal of it.
    pub principal: Option<Arn>,
}

/// Everything a key policy is built from.
#[derive(Debug, Clone)]
pub struct KeyPolicySpec {
    pub partition: String,
    pub region: Region,
    pub key_account: AccountId,
    /// Administrators; empty means the account root (delegating to IAM).
    pub admins: Vec<Arn>,
    /// Services allowed to use the key in its own account (`rds`, `secretsmanager`).
    pub services: Vec<&'static str>,
    pub peer: Option<Peer>,
    /// Adds `aws:PrincipalOrgID` to the peer's statements.
    pub org_id: Option<String>,
    /// The peer's use statement: AWS's documented set, or the strict opt-in.
    pub variant: KeyPolicyVariant,
}

impl KeyPolicySpec {
    /// The migration key in the source account.
    pub fn source(partition: &str, region: Region, source: AccountId, peer: Peer) -> Self {
        Self {
            partition: partition.to_owned(),
            region,
            key_account: source,
            admins: Vec::new(),
            services: vec!["rds"],
            peer: Some(peer),
            org_id: None,
            variant: KeyPolicyVariant::Documented,
        }
    }

    /// A key that encrypts databases in its own account only (`src-agent encrypt`).
    pub fn own_account(partition: &str, region: Region, account: AccountId) -> Self {
        Self {
            services: vec!["rds"],
            ..Self::target_own(partition, region, account)
        }
    }

    /// The target's own key, which also encrypts the master secret.
    pub fn target_own(partition: &str, region: Region, account: AccountId) -> Self {
        Self {
            partition: partition.to_owned(),
            region,
            key_account: account,
            admins: Vec::new(),
            services: vec!["rds", "secretsmanager"],
            peer: None,
            org_id: None,
            variant: KeyPolicyVariant::Documented,
        }
    }

    fn root(&self, account: &AccountId) -> String {
        format!("arn:{}:iam::{account}:root", self.partition)
    }

    fn via(&self, service: &str) -> String {
        format!("{service}.{}.amazonaws.com", self.region)
    }

    /// The key policy, statements in a fixed order.
    pub fn build(&self) -> PolicyDocument {
        let mut statements = vec![
            self.admin_statement(),
            self.own_use_statement(),
            self.own_grants_statement(),
        ];
        if let Some(peer) = &self.peer {
            statements.extend(self.peer_statements(peer));
        }
        PolicyDocument::new("rds-handoff-key-policy", statements)
    }

    /// Only the peer's statements (to add them to an existing key's policy).
    pub fn peer_statements(&self, peer: &Peer) -> Vec<Statement> {
        let principal = match &peer.principal {
            Some(arn) => arn.to_string(),
            None => self.root(&peer.account),
        };
        let mut conditions = string_equals(&[
            ("kms:ViaService", vec![self.via("rds")]),
            ("kms:CallerAccount", vec![peer.account.to_string()]),
        ]);
        if let Some(org) = &self.org_id {
            if let Some(map) = conditions.get_mut("StringEquals") {
                map.insert("aws:PrincipalOrgID".into(), org.as_str().into());
            }
        }
        let mut grant_conditions = conditions.clone();
        grant_conditions.insert(
            "Bool".into(),
            BTreeMap::from([("kms:GrantIsForAWSResource".into(), "true".into())]),
        );
        let (use_sid, use_actions) = match self.variant {
            KeyPolicyVariant::Documented => (SID_TARGET_USE, TARGET_USE_ACTIONS),
            KeyPolicyVariant::Strict => (SID_TARGET_USE_STRICT, TARGET_USE_ACTIONS_STRICT),
        };
        vec![
            allow(
                use_sid,
                vec![principal.clone()],
                use_actions,
                Some(conditions),
            ),
            allow(
                SID_TARGET_GRANTS,
                vec![principal],
                GRANT_ACTIONS,
                Some(grant_conditions),
            ),
        ]
    }

    /// Administration only: every use of the key, the own account's included, goes through
    /// the service statements below.
    fn admin_statement(&self) -> Statement {
        let admins = if self.admins.is_empty() {
            vec![self.root(&self.key_account)]
        } else {
            self.admins.iter().map(ToString::to_string).collect()
        };
        allow(SID_ADMIN, admins, ADMIN_ACTIONS, None)
    }

    fn own_conditions(&self) -> Conditions {
        string_equals(&[
            (
                "kms:ViaService",
                self.services.iter().map(|s| self.via(s)).collect(),
            ),
            ("kms:CallerAccount", vec![self.key_account.to_string()]),
        ])
    }

    fn own_use_statement(&self) -> Statement {
        let root = self.root(&self.key_account);
        allow(
            SID_OWN_USE,
            vec![root],
            OWN_USE_ACTIONS,
            Some(self.own_conditions()),
        )
    }

    fn own_grants_statement(&self) -> Statement {
        let mut conditions = self.own_conditions();
        conditions.insert(
            "Bool".into(),
            BTreeMap::from([("kms:GrantIsForAWSResource".into(), "true".into())]),
        );
        allow(
            SID_OWN_GRANTS,
            vec![self.root(&self.key_account)],
            GRANT_ACTIONS,
            Some(conditions),
        )
    }
}

fn allow(
    sid: &str,
    principals: Vec<String>,
    actions: &[&str],
    condition: Option<Conditions>,
) -> Statement {
    Statement {
        sid: Some(sid.to_owned()),
        effect: Effect::Allow,
        principal: Some(Principal::aws(principals)),
        not_principal: None,
        action: Some(OneOrMany::from_vec(
            actions.iter().map(|a| (*a).to_owned()).collect(),
        )),
        not_action: None,
        resource: Some("*".into()),
        not_resource: None,
        condition,
    }
}

fn string_equals(pairs: &[(&str, Vec<String>)]) -> Conditions {
    let map = pairs
        .iter()
        .map(|(key, values)| {
            let values = match OneOrMany::from_vec(values.clone()) {
                OneOrMany::One(one) => ConditionValues::from(one.as_str()),
                OneOrMany::Many(many) => ConditionValues::Many(
                    many.into_iter()
                        .map(super::model::ConditionValue::Text)
                        .collect(),
                ),
            };
            ((*key).to_owned(), values)
        })
        .collect();
    BTreeMap::from([("StringEquals".to_owned(), map)])
}

/// KMS's lockout safety check, done locally before CreateKey or PutKeyPolicy: the policy must
/// let the calling principal call `kms:PutKeyPolicy` again. The toolkit never sets
/// `BypassPolicyLockoutSafetyCheck`.
pub fn check_lockout(policy: &PolicyDocument, caller_principal: &str) -> Result<(), LockoutError> {
    let decision = evaluate(policy, &Request::new(caller_principal, "kms:PutKeyPolicy"));
    if decision.allowed {
        return Ok(());
    }
    Err(LockoutError {
        caller: caller_principal.to_owned(),
    })
}

/// A key policy that would not let its author change it again.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the key policy would lock you out: it does not let `{caller}` call `kms:PutKeyPolicy`, \
     so KMS would refuse it (MalformedPolicyDocumentException) or nobody could change it later"
)]
pub struct LockoutError {
    pub caller: String,
}

impl LockoutError {
    /// What the operator should do next.
    pub fn hint(&self) -> String {
        format!(
            "add yourself as an administrator with `--key-admin {}`, or run as a principal the policy already administers",
            self.caller
        )
    }
}

/// Adds the peer's statements to an existing policy without dropping any other statement;
/// the toolkit's own peer statements (either variant, written by an earlier run) are replaced.
pub fn merge_peer(existing: PolicyDocument, additions: Vec<Statement>) -> PolicyDocument {
    let mut statements = existing.clone().into_statements();
    statements.retain(|s| !PEER_SIDS.contains(&s.sid()));
    statements.extend(additions);
    PolicyDocument {
        statement: super::model::Statements::Many(statements),
        ..existing
    }
}

/// Removes every statement that names a principal of `account` (revoking a peer).
pub fn remove_account(existing: PolicyDocument, account: &AccountId) -> PolicyDocument {
    let statements = existing
        .clone()
        .into_statements()
        .into_iter()
        .filter(|s| {
            !s.principal.as_ref().is_some_and(|p| {
                p.entries().iter().any(|(_, v)| {
                    *v == account.as_str() || super::eval::account_of(v) == Some(account.as_str())
                })
            })
        })
        .collect();
    PolicyDocument {
        statement: super::model::Statements::Many(statements),
        ..existing
    }
}

/// Whether the policy already holds statements with the peer's Sids naming `principal`.
pub fn has_peer(policy: &PolicyDocument, wanted: &[Statement]) -> bool {
    wanted
        .iter()
        .all(|w| policy.statements().iter().any(|s| s == w))
}
