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
    /// Administrators; empty means the account root (delegating to IAM), and the
    /// [`operator`](Self::operator) if one is named.
    pub admins: Vec<Arn>,
    /// The principal that makes the key (the toolkit's caller), named beside the account root
    /// when no `admins` are given: the key's own policy then lets it administer the key (tag
    /// it, alias it, change its policy, schedule its deletion) with no IAM permission on
    /// `key/*`, so the operator policies need none, and a key the toolkit did not make stays
    /// out of the operator's reach. Ignored when `admins` are given: they replace the root,
    /// and the lockout check already requires the caller among them.
    pub operator: Option<String>,
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
            operator: None,
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
            operator: None,
            services: vec!["rds", "secretsmanager"],
            peer: None,
            org_id: None,
            variant: KeyPolicyVariant::Documented,
        }
    }

    /// The same spec, with `principal` (who makes the key) named as an administrator beside
    /// the account root; see [`operator`](Self::operator).
    #[must_use]
    pub fn made_by(mut self, principal: &str) -> Self {
        self.operator = Some(principal.to_owned());
        self
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
    /// Without `--key-admin`: the account root (AWS's default, so the key is never orphaned)
    /// and the operator who made the key, named so that the key policy alone lets it
    /// administer its own key.
    fn admin_statement(&self) -> Statement {
        let admins = if self.admins.is_empty() {
            let mut admins = vec![self.root(&self.key_account)];
            if let Some(operator) = &self.operator {
                if !admins.contains(operator) {
                    admins.push(operator.clone());
                }
            }
            admins
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

/// Adds the peer's statements to an existing policy without dropping any other statement.
/// The toolkit's peer statements for the same account (either variant, written by an earlier
/// run) are replaced; those of another target account stay, so each target keeps its access
/// until its own handoff is revoked ([`remove_account`]). Sids are unique in a key policy: a
/// statement whose Sid another target's statement already has gets the account id appended
/// (`TargetAccountGrantsKeyToRdsCopiesOnly333333333333`).
pub fn merge_peer(existing: PolicyDocument, additions: Vec<Statement>) -> PolicyDocument {
    let peers: Vec<String> = additions
        .iter()
        .flat_map(|s| accounts_named(s).into_iter().map(str::to_owned))
        .collect();
    let mut statements = existing.clone().into_statements();
    statements.retain(|s| {
        !(is_peer_sid(s.sid())
            && accounts_named(s)
                .iter()
                .any(|a| peers.iter().any(|p| p == a)))
    });
    for mut addition in additions {
        let taken = statements.iter().any(|s| s.sid == addition.sid);
        let account: Option<String> = accounts_named(&addition).first().map(|a| (*a).to_owned());
        if let (true, Some(sid), Some(account)) = (taken, addition.sid.clone(), account) {
            addition.sid = Some(format!("{sid}{account}"));
        }
        statements.push(addition);
    }
    PolicyDocument {
        statement: super::model::Statements::Many(statements),
        ..existing
    }
}

/// One of the toolkit's peer Sids, bare or with the account id [`merge_peer`] appends.
fn is_peer_sid(sid: &str) -> bool {
    PEER_SIDS.iter().any(|base| {
        sid.strip_prefix(base)
            .is_some_and(|rest| rest.is_empty() || is_account_id(rest))
    })
}

fn is_account_id(text: &str) -> bool {
    text.len() == 12 && text.bytes().all(|b| b.is_ascii_digit())
}

/// The accounts a statement's principals belong to (an account id, or any ARN's account).
fn accounts_named(statement: &Statement) -> Vec<&str> {
    statement.principal.as_ref().map_or_else(Vec::new, |p| {
        p.entries()
            .into_iter()
            .filter_map(|(_, v)| {
                if is_account_id(v) {
                    Some(v)
                } else {
                    super::eval::account_of(v)
                }
            })
            .collect()
    })
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

/// Whether the policy already holds the peer's statements, under their Sids or with the
/// account id [`merge_peer`] appends when another target holds the bare Sid.
pub fn has_peer(policy: &PolicyDocument, wanted: &[Statement]) -> bool {
    wanted.iter().all(|w| {
        policy
            .statements()
            .iter()
            .any(|s| s == w || same_but_suffixed(s, w))
    })
}

/// The accounts other than the key's that `policy` lets in only through the statements this
/// spec would write for them as a peer (whole account or one principal of it): the earlier
/// targets of a key the toolkit keeps, whose access stays until their handoff is revoked.
pub fn toolkit_peers(spec: &KeyPolicySpec, policy: &PolicyDocument) -> Vec<AccountId> {
    let mut found: Vec<AccountId> = Vec::new();
    for statement in policy.statements() {
        if !is_peer_sid(statement.sid()) {
            continue;
        }
        let principals: Vec<&str> = statement.principal.as_ref().map_or_else(Vec::new, |p| {
            p.entries().into_iter().map(|(_, v)| v).collect()
        });
        for account in accounts_named(statement) {
            let Ok(account) = account.parse::<AccountId>() else {
                continue;
            };
            if account == spec.key_account || found.contains(&account) {
                continue;
            }
            let candidates = std::iter::once(None).chain(
                principals
                    .iter()
                    .filter_map(|p| p.parse::<Arn>().ok())
                    .map(Some),
            );
            let exact = candidates.into_iter().any(|principal| {
                let peer = Peer {
                    account: account.clone(),
                    principal,
                };
                has_peer(policy, &spec.peer_statements(&peer))
            });
            if exact {
                found.push(account);
            }
        }
    }
    found
}

/// `held` is `wanted` with the account id of `wanted`'s principal appended to its Sid.
fn same_but_suffixed(held: &Statement, wanted: &Statement) -> bool {
    let (Some(sid), Some(base)) = (held.sid.as_deref(), wanted.sid.as_deref()) else {
        return false;
    };
    let Some(suffix) = sid.strip_prefix(base) else {
        return false;
    };
    if !accounts_named(wanted).contains(&suffix) {
        return false;
    }
    let mut bare = held.clone();
    bare.sid = wanted.sid.clone();
    bare == *wanted
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPERATOR: &str = "arn:aws:iam::111111111111:role/Operator";

    fn spec() -> KeyPolicySpec {
        let peer = Peer {
            account: "222222222222".parse().unwrap(),
            principal: None,
        };
        let region: Region = "us-east-1".parse().unwrap();
        let source: AccountId = "111111111111".parse().unwrap();
        KeyPolicySpec::source("aws", region, source, peer)
    }

    fn admins_of(policy: &PolicyDocument) -> Vec<String> {
        let admin = &policy.statements()[0];
        assert_eq!(admin.sid(), SID_ADMIN);
        let principal = admin.principal.as_ref().unwrap();
        principal
            .entries()
            .into_iter()
            .map(|(_, v)| v.to_owned())
            .collect()
    }

    #[test]
    fn the_operator_administers_its_key_by_name_beside_the_root() {
        let made = spec().made_by(OPERATOR).build();
        assert_eq!(
            admins_of(&made),
            ["arn:aws:iam::111111111111:root", OPERATOR]
        );
        // Administration only: every other statement is the one the root-only policy has.
        let plain = spec().build();
        assert_eq!(admins_of(&plain), ["arn:aws:iam::111111111111:root"]);
        assert_eq!(made.statements()[1..], plain.statements()[1..]);
        // The named operator passes the lockout check on the key policy alone.
        check_lockout(&made, OPERATOR).unwrap();
        // Run as the account root, nothing is added twice.
        let by_root = spec().made_by("arn:aws:iam::111111111111:root").build();
        assert_eq!(by_root, plain);
    }

    fn spec_for(target: &str) -> KeyPolicySpec {
        let mut spec = spec();
        spec.peer = Some(Peer {
            account: target.parse().unwrap(),
            principal: None,
        });
        spec
    }

    fn peer_of(spec: &KeyPolicySpec) -> Vec<Statement> {
        spec.peer_statements(spec.peer.as_ref().unwrap())
    }

    #[test]
    fn a_second_target_is_added_beside_the_first_and_revoked_alone() {
        let first = spec_for("222222222222");
        let policy = first.build();
        let second = spec_for("333333333333");
        let both = merge_peer(policy.clone(), peer_of(&second));
        assert!(
            has_peer(&both, &peer_of(&first)),
            "the first target keeps its access"
        );
        assert!(has_peer(&both, &peer_of(&second)));
        let mut sids: Vec<&str> = both.statements().iter().map(Statement::sid).collect();
        let count = sids.len();
        sids.sort_unstable();
        sids.dedup();
        assert_eq!(sids.len(), count, "Sids stay unique: {sids:?}");
        assert!(sids.contains(&"TargetAccountGrantsKeyToRdsCopiesOnly333333333333"));
        // Adding the second target again changes nothing.
        assert_eq!(merge_peer(both.clone(), peer_of(&second)), both);
        check_lockout(&both, "arn:aws:iam::111111111111:root").unwrap();
        // Revoking the first leaves the second, and the reverse.
        let without_first = remove_account(both.clone(), &"222222222222".parse().unwrap());
        assert!(has_peer(&without_first, &peer_of(&second)));
        assert!(!has_peer(&without_first, &peer_of(&first)));
        let without_second = remove_account(both, &"333333333333".parse().unwrap());
        assert_eq!(without_second, policy);
    }

    #[test]
    fn the_same_target_in_the_other_variant_is_replaced() {
        let documented = spec_for("222222222222");
        let mut strict = spec_for("222222222222");
        strict.variant = KeyPolicyVariant::Strict;
        let merged = merge_peer(documented.build(), peer_of(&strict));
        assert_eq!(
            merged.statements().len(),
            documented.build().statements().len()
        );
        assert!(has_peer(&merged, &peer_of(&strict)));
        assert!(!has_peer(&merged, &peer_of(&documented)));
    }

    #[test]
    fn key_admins_replace_the_root_and_the_operator() {
        let mut given = spec().made_by(OPERATOR);
        given.admins = vec!["arn:aws:iam::111111111111:role/KeyAdmin".parse().unwrap()];
        assert_eq!(
            admins_of(&given.build()),
            ["arn:aws:iam::111111111111:role/KeyAdmin"]
        );
    }
}
