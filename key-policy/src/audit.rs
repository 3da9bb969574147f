//! Findings on a live key policy, for `src-agent audit`.
//!
//! The audit fails closed: an `Allow` statement is cleared only when every principal it lets
//! in, after its conditions, is one the reviewer trusts ([`Trust`]): a principal of the key's
//! own account or of a target account named for this review, or an AWS service acting for one
//! of those accounts and only for the key's use. Everything else is a finding that names the
//! statement (its Sid, or its position when it has none):
//!
//! - who a statement lets in is read from its principal and from the conditions that pin it
//!   (`kms:CallerAccount`, `aws:PrincipalAccount`, `aws:PrincipalArn` for callers;
//!   `aws:SourceAccount`, `aws:SourceArn` for AWS services). A condition pins only in a
//!   positive form (`StringEquals`, `StringLike`, `ArnEquals`, `ArnLike`, without `IfExists`
//!   or a set prefix) whose every value names exactly one account; every account a condition
//!   names must be trusted, whatever the principal;
//! - a condition key or operator the audit does not model, on an `Allow` statement, is a
//!   finding of its own: the audit cannot say whom the statement admits;
//! - an AWS service principal may only use the key (encrypt, decrypt, data keys, describe)
//!   and attach it to AWS resources (grants under `kms:GrantIsForAWSResource`), never
//!   administer it;
//! - what a target account (or any principal outside the key's account) may do is then asked
//!   of the evaluator, statement by statement, in [`Stance::May`] (a condition it cannot
//!   decide counts as matching): administration under any condition but those on who the
//!   caller is (no condition makes a foreign administrator acceptable), grants and direct use
//!   under the statement's conditions. A stranger account stands in for "anyone else".
//!
//! Shapes the evaluator cannot judge at all are findings too: a `Resource` other than `*`, an
//! unknown condition operator, `NotPrincipal` on an `Allow`.

use std::collections::BTreeMap;

use serde::Serialize;

use super::builder::KeyPolicySpec;
use super::eval::{account_of, evaluate, evaluate_as, glob, known_operator, Request, Stance};
use super::model::{Conditions, Effect, PolicyDocument, Statement};
use rds_handoff_ident::AccountId;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub check: &'static str,
    pub message: String,
}

/// The accounts a review trusts: the key's own, and the target accounts the reviewer named
/// (the accounts a snapshot encrypted with this key is handed to). No other account is
/// trusted, whatever the policy says of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    pub key_account: AccountId,
    pub targets: Vec<AccountId>,
}

impl Trust {
    /// Only the key's account: what a review that names no target trusts.
    pub fn key_only(key_account: AccountId) -> Self {
        Self {
            key_account,
            targets: Vec::new(),
        }
    }

    /// Also trusts `target` as an account the key is shared with.
    pub fn with_target(mut self, target: AccountId) -> Self {
        if target != self.key_account && !self.targets.contains(&target) {
            self.targets.push(target);
        }
        self
    }

    /// The accounts a built policy names: the key's, and its peer's if it has one.
    pub fn of_spec(spec: &KeyPolicySpec) -> Self {
        let trust = Self::key_only(spec.key_account.clone());
        match &spec.peer {
            Some(peer) => trust.with_target(peer.account.clone()),
            None => trust,
        }
    }

    fn trusts(&self, account: &str) -> bool {
        self.key_account.as_str() == account || self.targets.iter().any(|t| t.as_str() == account)
    }

    /// Who is trusted, in words, for messages.
    fn described(&self) -> String {
        let targets = if self.targets.is_empty() {
            "no target account was named".to_owned()
        } else {
            let named: Vec<String> = self.targets.iter().map(|t| format!("`{t}`")).collect();
            format!("the target account(s) named: {}", named.join(", "))
        };
        format!(
            "only the key's account (`{}`) is trusted, and {targets}",
            self.key_account
        )
    }
}

/// Actions that administer or disable a key: no other account may have them, under any
/// condition, and no AWS service principal either.
pub const CONTROL_ACTIONS: &[&str] = &[
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:EnableKey",
    "kms:CancelKeyDeletion",
    "kms:UpdateKeyDescription",
    "kms:DeleteImportedKeyMaterial",
    "kms:ImportKeyMaterial",
    "kms:DisableKeyRotation",
    "kms:EnableKeyRotation",
    "kms:RotateKeyOnDemand",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:CreateAlias",
    "kms:UpdateAlias",
    "kms:DeleteAlias",
    "kms:ReplicateKey",
    "kms:UpdatePrimaryRegion",
    "kms:SynchronizeMultiRegionKey",
];

/// What AWS documents an AWS service principal doing with a customer managed key: use it and
/// describe it. Grants ([`SERVICE_GRANT_ACTIONS`]) only for AWS resources.
pub const SERVICE_ACTIONS: &[&str] = &[
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:DescribeKey",
    "kms:DescribeCustomKeyStores",
];

/// Grant actions a service principal may have when the statement requires
/// `kms:GrantIsForAWSResource` to be true.
pub const SERVICE_GRANT_ACTIONS: &[&str] =
    &["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"];

/// Every KMS action IAM knows, to read what an `Action` or `NotAction` pattern covers.
const KMS_ACTIONS: &[&str] = &[
    "kms:CancelKeyDeletion",
    "kms:ConnectCustomKeyStore",
    "kms:CreateAlias",
    "kms:CreateCustomKeyStore",
    "kms:CreateGrant",
    "kms:CreateKey",
    "kms:Decrypt",
    "kms:DeleteAlias",
    "kms:DeleteCustomKeyStore",
    "kms:DeleteImportedKeyMaterial",
    "kms:DeriveSharedSecret",
    "kms:DescribeCustomKeyStores",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:DisconnectCustomKeyStore",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GenerateRandom",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:GetParametersForImport",
    "kms:GetPublicKey",
    "kms:ImportKeyMaterial",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListKeys",
    "kms:ListResourceTags",
    "kms:ListRetirableGrants",
    "kms:PutKeyPolicy",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:ReplicateKey",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:RotateKeyOnDemand",
    "kms:ScheduleKeyDeletion",
    "kms:Sign",
    "kms:SynchronizeMultiRegionKey",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateCustomKeyStore",
    "kms:UpdateKeyDescription",
    "kms:UpdatePrimaryRegion",
    "kms:Verify",
    "kms:VerifyMac",
];

/// Stands in for "some account nobody named".
const STRANGER: &str = "arn:aws:iam::000000000000:root";

/// Audits `policy` of a key in `key_account`, trusting that account only: a statement that
/// lets in any other account is a finding. `caller` is who runs the audit, if known.
pub fn audit(
    policy: &PolicyDocument,
    key_account: &AccountId,
    caller: Option<&str>,
) -> Vec<Finding> {
    audit_trusting(policy, &Trust::key_only(key_account.clone()), caller)
}

/// Audits `policy` trusting the accounts in `trust`; `caller` is who runs the audit, if known.
/// An empty list means the audit cleared every statement.
pub fn audit_trusting(
    policy: &PolicyDocument,
    trust: &Trust,
    caller: Option<&str>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (index, statement) in policy.statements().iter().enumerate() {
        let name = name_of(index, statement);
        shape_checks(statement, &name, &mut findings);
        if statement.effect == Effect::Allow {
            admitted(statement, &name, trust, &mut findings);
        }
    }
    let (full, identity_only) = (lenses(policy, false), lenses(policy, true));
    for probe in probes(policy, trust) {
        foreign_checks(&full, &identity_only, &probe, &mut findings);
    }
    lockout(policy, &trust.key_account, caller, &mut findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

fn high(findings: &mut Vec<Finding>, check: &'static str, message: String) {
    findings.push(Finding {
        severity: Severity::High,
        check,
        message,
    });
}

/// How findings name a statement: its Sid, or its position (from 1) when it has none.
fn name_of(index: usize, statement: &Statement) -> String {
    match &statement.sid {
        Some(sid) => format!("`{sid}`"),
        None => format!("#{} (no Sid)", index + 1),
    }
}

/// "statement `A`" or "statements `A`, `B`".
fn statements_phrase(names: &[String]) -> String {
    match names {
        [one] => format!("statement {one}"),
        _ => format!("statements {}", names.join(", ")),
    }
}

/// What no evaluator can judge: a key policy's `Resource` is the key itself (`*`), and an
/// operator IAM does not know makes the statement's effect unknowable.
fn shape_checks(statement: &Statement, name: &str, findings: &mut Vec<Finding>) {
    let star = statement
        .resource
        .as_ref()
        .is_some_and(|r| r.iter().all(|r| r == "*"));
    if !star {
        high(
            findings,
            "resource-not-star",
            format!(
                "statement {name} has a `Resource` other than `*` (or `NotResource`): in a key policy the resource is the key itself, so this statement may not mean what it says"
            ),
        );
    }
    for operator in statement.condition.iter().flat_map(|c| c.keys()) {
        if !known_operator(operator) {
            high(
                findings,
                "unknown-condition-operator",
                format!(
                    "statement {name} uses the condition operator `{operator}`, which IAM does not define: its effect cannot be judged"
                ),
            );
        }
    }
}

/// What a condition key tells the audit about whom a statement lets in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    /// The calling principal's account: `kms:CallerAccount`, `aws:PrincipalAccount`.
    CallerAccount,
    /// The calling principal: `aws:PrincipalArn`.
    CallerArn,
    /// The account an AWS service acts for: `aws:SourceAccount`.
    SourceAccount,
    /// The resource an AWS service acts for: `aws:SourceArn`.
    SourceArn,
    /// Narrows the statement without naming an account: `kms:ViaService`,
    /// `aws:PrincipalOrgID`, `aws:SourceOrgID` (an organization is not a named account).
    Narrowing,
    /// `kms:GrantIsForAWSResource`.
    GrantForAwsResource,
}

/// The condition keys the audit models; any other key on an `Allow` is a finding.
fn key_kind(key: &str) -> Option<KeyKind> {
    Some(match key.to_ascii_lowercase().as_str() {
        "kms:calleraccount" | "aws:principalaccount" => KeyKind::CallerAccount,
        "aws:principalarn" => KeyKind::CallerArn,
        "aws:sourceaccount" => KeyKind::SourceAccount,
        "aws:sourcearn" => KeyKind::SourceArn,
        "kms:viaservice" | "aws:principalorgid" | "aws:sourceorgid" => KeyKind::Narrowing,
        "kms:grantisforawsresource" => KeyKind::GrantForAwsResource,
        _ => return None,
    })
}

/// An operator taken apart: `ForAnyValue:StringEqualsIfExists` is a set operator over
/// `StringEquals`, `IfExists`.
struct Operator<'a> {
    set: bool,
    base: &'a str,
    if_exists: bool,
}

impl<'a> Operator<'a> {
    fn parse(operator: &'a str) -> Self {
        let (set, rest) = match operator.split_once(':') {
            Some((_, rest)) => (true, rest),
            None => (false, operator),
        };
        let (base, if_exists) = match rest.strip_suffix("IfExists") {
            Some(base) => (base, true),
            None => (rest, false),
        };
        Self {
            set,
            base,
            if_exists,
        }
    }

    fn negated(&self) -> bool {
        self.base.contains("Not")
    }

    /// Whether the audit reads this operator on a key of `kind`. Set operators are not read:
    /// on the single-valued keys the audit models, `ForAllValues:` matches a request without
    /// the key at all.
    fn understood_for(&self, kind: KeyKind) -> bool {
        let string = matches!(
            self.base,
            "StringEquals"
                | "StringNotEquals"
                | "StringEqualsIgnoreCase"
                | "StringNotEqualsIgnoreCase"
                | "StringLike"
                | "StringNotLike"
        );
        let arn = matches!(
            self.base,
            "ArnEquals" | "ArnNotEquals" | "ArnLike" | "ArnNotLike"
        );
        !self.set
            && match kind {
                KeyKind::CallerAccount | KeyKind::SourceAccount | KeyKind::Narrowing => string,
                KeyKind::CallerArn | KeyKind::SourceArn => string || arn,
                KeyKind::GrantForAwsResource => self.base == "Bool",
            }
    }

    /// A positive form: every value it names is let in, and a request without the key fails.
    fn pins(&self) -> bool {
        !self.set && !self.if_exists && !self.negated()
    }
}

/// The one account a condition value names exactly, if it does.
fn named_account<'v>(kind: KeyKind, operator: &Operator<'_>, value: &'v str) -> Option<&'v str> {
    let account = |v: &str| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit());
    match kind {
        KeyKind::CallerAccount | KeyKind::SourceAccount => Some(value).filter(|v| account(v)),
        KeyKind::CallerArn | KeyKind::SourceArn => {
            let mut parts = value.splitn(6, ':');
            let head: Vec<&str> = parts.by_ref().take(5).collect();
            let [arn, _, _, _, id] = head.as_slice() else {
                return None;
            };
            // `ArnLike` matches segment by segment, so a wildcard elsewhere stays in its
            // segment; `StringLike` lets one run across colons, so nothing before the account
            // may be a wildcard.
            let wild = |s: &&str| s.contains(['*', '?']);
            let segment_wise = operator.base.starts_with("Arn");
            let head_exact = segment_wise || !head.iter().any(wild);
            (*arn == "arn" && account(id) && head_exact).then_some(*id)
        }
        KeyKind::Narrowing | KeyKind::GrantForAwsResource => None,
    }
}

/// What a statement's conditions pin.
#[derive(Debug, Default)]
struct Narrowing {
    /// A condition names, exactly, the accounts (or principals) callers must be in.
    callers_pinned: bool,
    /// A condition names, exactly, the accounts an AWS service must act for.
    sources_pinned: bool,
    /// `Bool` `kms:GrantIsForAWSResource` must be `true`.
    grants_for_aws_resources: bool,
}

/// Reads an `Allow` statement's conditions: what they pin, the accounts they name that are
/// not trusted, and what the audit does not model.
fn narrowing(
    statement: &Statement,
    name: &str,
    trust: &Trust,
    findings: &mut Vec<Finding>,
) -> Narrowing {
    let mut narrowing = Narrowing::default();
    let Some(conditions) = &statement.condition else {
        return narrowing;
    };
    for (operator_text, keys) in conditions {
        if !known_operator(operator_text) {
            // `shape_checks` has said so.
            continue;
        }
        let operator = Operator::parse(operator_text);
        for (key, values) in keys {
            let Some(kind) = key_kind(key).filter(|k| operator.understood_for(*k)) else {
                high(
                    findings,
                    "unrecognized-condition",
                    format!(
                        "statement {name} allows under `{operator_text}` on `{key}`, which the audit does not model: it cannot tell whom the statement lets in, so it does not clear it"
                    ),
                );
                continue;
            };
            let values = values.texts();
            match kind {
                KeyKind::Narrowing => {}
                KeyKind::GrantForAwsResource => {
                    let all_true =
                        !values.is_empty() && values.iter().all(|v| v.eq_ignore_ascii_case("true"));
                    if operator.pins() && all_true {
                        narrowing.grants_for_aws_resources = true;
                    }
                }
                KeyKind::CallerAccount
                | KeyKind::CallerArn
                | KeyKind::SourceAccount
                | KeyKind::SourceArn => {
                    if operator.negated() {
                        // Lets in every account but those named: pins nothing.
                        continue;
                    }
                    let accounts: Vec<Option<&str>> = values
                        .iter()
                        .map(|v| named_account(kind, &operator, v))
                        .collect();
                    for account in accounts.iter().flatten() {
                        if !trust.trusts(account) {
                            high(
                                findings,
                                "untrusted-account",
                                format!(
                                    "statement {name} lets in account `{account}` through `{key}`: {}",
                                    trust.described()
                                ),
                            );
                        }
                    }
                    let exact = !values.is_empty() && accounts.iter().all(Option::is_some);
                    if operator.pins() && exact {
                        match kind {
                            KeyKind::CallerAccount | KeyKind::CallerArn => {
                                narrowing.callers_pinned = true;
                            }
                            _ => narrowing.sources_pinned = true,
                        }
                    }
                }
            }
        }
    }
    narrowing
}

/// The account of an `AWS` principal value: a bare account id or an IAM/STS ARN.
fn principal_account(value: &str) -> Option<&str> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value);
    }
    account_of(value)
}

/// Whom an `Allow` statement lets in, principal by principal, after its conditions.
fn admitted(statement: &Statement, name: &str, trust: &Trust, findings: &mut Vec<Finding>) {
    let narrowing = narrowing(statement, name, trust, findings);
    if statement.not_principal.is_some() {
        high(
            findings,
            "not-principal",
            format!(
                "statement {name} allows every principal but those its `NotPrincipal` names: it lets in accounts nobody named"
            ),
        );
    }
    let Some(principal) = &statement.principal else {
        return;
    };
    let mut services: Vec<String> = Vec::new();
    for (kind, value) in principal.entries() {
        match (kind, value) {
            ("AWS", "*") if narrowing.callers_pinned => {}
            ("AWS", "*") if narrowing.sources_pinned => {
                services.push("`*` (any AWS service acting for the accounts its source conditions name)".to_owned());
            }
            ("AWS", "*") => high(
                findings,
                "wildcard-principal",
                format!(
                    "statement {name} allows principal `*` without a condition that pins it to trusted accounts (exact `kms:CallerAccount`, `aws:PrincipalAccount` or `aws:PrincipalArn`; for AWS services `aws:SourceAccount` or `aws:SourceArn`): any AWS account may match it"
                ),
            ),
            ("AWS", _) => match principal_account(value) {
                Some(account) if trust.trusts(account) => {}
                Some(account) => high(
                    findings,
                    "untrusted-account",
                    format!(
                        "statement {name} lets in `{value}` of account `{account}`: {}",
                        trust.described()
                    ),
                ),
                None => high(
                    findings,
                    "unrecognized-principal",
                    format!(
                        "statement {name} names the principal `{value}`, which is neither an account nor an IAM or STS ARN: the audit cannot tell whom it lets in"
                    ),
                ),
            },
            ("Service", _) => {
                if !narrowing.sources_pinned {
                    high(
                        findings,
                        "service-without-source",
                        format!(
                            "statement {name} allows service principal `{value}` without an exact `aws:SourceAccount` or `aws:SourceArn` of a trusted account: the service may use the key on behalf of any account"
                        ),
                    );
                }
                services.push(format!("`{value}`"));
            }
            _ => high(
                findings,
                "unrecognized-principal",
                format!(
                    "statement {name} allows the `{kind}` principal `{value}`: the audit clears only principals of trusted accounts and AWS services"
                ),
            ),
        }
    }
    if !services.is_empty() {
        service_actions(statement, name, &services, &narrowing, findings);
    }
}

/// Whether the statement's `Action` (or `NotAction`) covers `action`.
fn covers(statement: &Statement, action: &str) -> bool {
    match (&statement.action, &statement.not_action) {
        (Some(actions), _) => actions.iter().any(|p| glob(p, action, true)),
        (None, Some(not)) => !not.iter().any(|p| glob(p, action, true)),
        (None, None) => false,
    }
}

/// An AWS service principal is trusted with the key's use, and with grants only for AWS
/// resources: no administration, no other grant.
fn service_actions(
    statement: &Statement,
    name: &str,
    services: &[String],
    narrowing: &Narrowing,
    findings: &mut Vec<Finding>,
) {
    let beyond: Vec<&str> = KMS_ACTIONS
        .iter()
        .copied()
        .filter(|a| covers(statement, a))
        .filter(|a| !SERVICE_ACTIONS.contains(a))
        .filter(|a| !(narrowing.grants_for_aws_resources && SERVICE_GRANT_ACTIONS.contains(a)))
        .collect();
    if beyond.is_empty() {
        return;
    }
    const SHOWN: usize = 8;
    let mut listed = beyond
        .iter()
        .take(SHOWN)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if beyond.len() > SHOWN {
        listed.push_str(&format!(" and {} more", beyond.len() - SHOWN));
    }
    high(
        findings,
        "service-control",
        format!(
            "statement {name} lets {} call {listed}: an AWS service is trusted only to use the key (encrypt, decrypt, data keys, describe) and to grant it to AWS resources (`kms:GrantIsForAWSResource` true)",
            services.join(", ")
        ),
    );
}

/// Each `Allow` statement with every `Deny`, to ask the evaluator which statements let a
/// request through.
struct Lens {
    name: String,
    policy: PolicyDocument,
}

/// Condition keys that say who the caller is: what still counts when asking what a principal
/// may do under any other condition.
const IDENTITY_KEYS: &[&str] = &[
    "kms:calleraccount",
    "aws:principalaccount",
    "aws:principalarn",
];

/// One [`Lens`] per `Allow` statement; with `identity_only`, each keeps only its conditions on
/// who the caller is (what a principal could do under any other condition).
fn lenses(policy: &PolicyDocument, identity_only: bool) -> Vec<Lens> {
    let denies: Vec<Statement> = policy
        .statements()
        .iter()
        .filter(|s| s.effect == Effect::Deny)
        .cloned()
        .collect();
    policy
        .statements()
        .iter()
        .enumerate()
        .filter(|(_, s)| s.effect == Effect::Allow)
        .map(|(index, statement)| {
            let mut allow = statement.clone();
            if identity_only {
                allow.condition = allow.condition.map(identity_conditions);
            }
            let mut statements = denies.clone();
            statements.push(allow);
            Lens {
                name: name_of(index, statement),
                policy: PolicyDocument::new("audit", statements),
            }
        })
        .collect()
}

/// Only the conditions on who the caller is.
fn identity_conditions(conditions: Conditions) -> Conditions {
    conditions
        .into_iter()
        .filter_map(|(operator, keys)| {
            let keys: BTreeMap<_, _> = keys
                .into_iter()
                .filter(|(key, _)| IDENTITY_KEYS.contains(&key.to_ascii_lowercase().as_str()))
                .collect();
            (!keys.is_empty()).then_some((operator, keys))
        })
        .collect()
}

/// The names of the statements that let `request` through, allowing what may be allowed
/// (an undecidable condition counts as matching).
fn allowing(lenses: &[Lens], request: &Request) -> Vec<String> {
    lenses
        .iter()
        .filter(|lens| evaluate_as(&lens.policy, request, Stance::May).allowed)
        .map(|lens| lens.name.clone())
        .collect()
}

/// A principal outside the key's account whose rights the evaluator is asked about.
struct Probe {
    principal: String,
    who: String,
}

/// A stranger, each named target, and every principal outside the key's account the policy
/// names (in a principal or an `aws:PrincipalArn` condition).
fn probes(policy: &PolicyDocument, trust: &Trust) -> Vec<Probe> {
    let key_account = trust.key_account.as_str();
    let mut probes = vec![Probe {
        principal: STRANGER.to_owned(),
        who: "an account the policy does not name".to_owned(),
    }];
    for target in &trust.targets {
        probes.push(Probe {
            principal: format!("arn:aws:iam::{target}:root"),
            who: format!("the target account `{target}`"),
        });
    }
    let named = policy
        .statements()
        .iter()
        .filter_map(|s| s.principal.as_ref())
        .flat_map(|p| p.entries())
        .filter(|(kind, _)| *kind == "AWS")
        .filter_map(|(_, value)| as_principal_arn(value));
    let in_conditions = policy
        .statements()
        .iter()
        .filter_map(|s| s.condition.as_ref())
        .flat_map(|c| c.values())
        .flat_map(|keys| keys.iter())
        .filter(|(key, _)| key.eq_ignore_ascii_case("aws:PrincipalArn"))
        .flat_map(|(_, values)| values.texts())
        // A pattern stands for a principal it matches.
        .map(|v| v.replace(['*', '?'], "x"))
        .filter(|v| account_of(v).is_some());
    for principal in named.chain(in_conditions) {
        if account_of(&principal) == Some(key_account)
            || probes.iter().any(|p| p.principal == principal)
        {
            continue;
        }
        probes.push(Probe {
            who: format!("`{principal}`"),
            principal,
        });
    }
    probes
}

fn as_principal_arn(value: &str) -> Option<String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("arn:aws:iam::{value}:root"));
    }
    account_of(value).map(|_| value.to_owned())
}

/// What a principal outside the key's account may do: administration under any condition but
/// those on who it is, grants and direct use under the conditions that may match.
fn foreign_checks(
    full: &[Lens],
    identity_only: &[Lens],
    probe: &Probe,
    findings: &mut Vec<Finding>,
) {
    let who = &probe.who;
    let ask =
        |lenses: &[Lens], action: &str| allowing(lenses, &Request::new(&probe.principal, action));
    let mut control: Vec<&str> = Vec::new();
    let mut through: Vec<String> = Vec::new();
    for action in std::iter::once("kms:*").chain(CONTROL_ACTIONS.iter().copied()) {
        let names = ask(identity_only, action);
        if !names.is_empty() {
            control.push(action);
            for name in names {
                if !through.contains(&name) {
                    through.push(name);
                }
            }
        }
    }
    if !control.is_empty() {
        high(
            findings,
            "foreign-control",
            format!(
                "{who} may administer or disable the key, under some condition, through {}: {}",
                statements_phrase(&through),
                control.join(", ")
            ),
        );
    }
    let grants = ask(full, "kms:CreateGrant");
    if !grants.is_empty() {
        high(
            findings,
            "grant-not-for-aws-resource",
            format!(
                "{who} may create grants that are not for AWS resources through {} (no `kms:GrantIsForAWSResource` condition it must meet)",
                statements_phrase(&grants)
            ),
        );
    }
    let direct = ask(full, "kms:Decrypt");
    if !direct.is_empty() {
        findings.push(Finding {
            severity: Severity::Medium,
            check: "foreign-direct-use",
            message: format!(
                "{who} may call `kms:Decrypt` directly, not only through an AWS service, through {} (no `kms:ViaService` condition it must meet)",
                statements_phrase(&direct)
            ),
        });
    }
}

fn lockout(
    policy: &PolicyDocument,
    key_account: &AccountId,
    caller: Option<&str>,
    findings: &mut Vec<Finding>,
) {
    let mut own: Vec<String> = policy
        .statements()
        .iter()
        .filter_map(|s| s.principal.as_ref())
        .flat_map(|p| p.entries())
        .filter_map(|(_, v)| as_principal_arn(v))
        .filter(|arn| account_of(arn) == Some(key_account.as_str()))
        .collect();
    own.extend(caller.map(str::to_owned));
    let can_put = |p: &String| evaluate(policy, &Request::new(p, "kms:PutKeyPolicy")).allowed;
    if !own.iter().any(can_put) {
        findings.push(Finding {
            severity: Severity::High,
            check: "lockout",
            message: format!("no principal of account `{key_account}` may call `kms:PutKeyPolicy`: the key can no longer be managed"),
        });
    } else if let Some(caller) = caller.map(str::to_owned).filter(|c| !can_put(c)) {
        findings.push(Finding {
            severity: Severity::Medium,
            check: "lockout",
            message: format!("you (`{caller}`) may not call `kms:PutKeyPolicy` on this key"),
        });
    }
}
