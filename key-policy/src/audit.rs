//! Findings on a live key policy, for `src-agent audit`.
//!
//! The audit fails closed. Questions about what another principal *may* do are asked of the
//! evaluator in [`Stance::May`] (a condition it cannot decide counts as matching), and
//! questions about administration in [`Stance::AnyCondition`] (no condition makes a foreign
//! administrator acceptable). Shapes the evaluator cannot judge at all are findings of their
//! own: a `Resource` other than `*`, an unknown condition operator, a service principal not
//! tied to an account. "Foreign" means any principal outside the key's account; a stranger
//! account stands in for "anyone else".

use serde::Serialize;

use super::eval::{account_of, evaluate, evaluate_as, known_operator, Request, Stance};
use super::model::{Effect, PolicyDocument, Statement};
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

/// Actions that administer or disable a key: no other account may have them, under any
/// condition.
pub const CONTROL_ACTIONS: &[&str] = &[
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:CancelKeyDeletion",
    "kms:UpdateKeyDescription",
    "kms:DeleteImportedKeyMaterial",
    "kms:ImportKeyMaterial",
    "kms:DisableKeyRotation",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:CreateAlias",
];

/// Stands in for "some account nobody named".
const STRANGER: &str = "arn:aws:iam::000000000000:root";

/// Condition keys whose exact values pin a wildcard principal to known accounts.
const ACCOUNT_KEYS: &[&str] = &[
    "kms:calleraccount",
    "aws:principalaccount",
    "aws:sourceaccount",
    "aws:principalorgid",
    "aws:principalarn",
    "aws:sourcearn",
];

/// Operators that pin a key to the values given (negated and `IfExists` forms do not).
const PINNING_OPERATORS: &[&str] = &[
    "StringEquals",
    "StringEqualsIgnoreCase",
    "StringLike",
    "ArnEquals",
    "ArnLike",
];

/// Audits `policy` of a key in `key_account`; `caller` is who runs the audit, if known.
pub fn audit(
    policy: &PolicyDocument,
    key_account: &AccountId,
    caller: Option<&str>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for statement in policy.statements() {
        shape_checks(statement, &mut findings);
        if statement.effect == Effect::Allow {
            wildcard_without_account(statement, &mut findings);
            service_without_source(statement, &mut findings);
        }
    }
    let foreign = foreign_principals(policy, key_account);
    for principal in &foreign {
        foreign_checks(policy, principal, &mut findings);
    }
    lockout(policy, key_account, caller, &mut findings);
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

/// What no evaluator can judge: a key policy's `Resource` is the key itself (`*`), and an
/// operator IAM does not know makes the statement's effect unknowable.
fn shape_checks(statement: &Statement, findings: &mut Vec<Finding>) {
    let star = statement
        .resource
        .as_ref()
        .is_some_and(|r| r.iter().all(|r| r == "*"));
    if !star {
        high(
            findings,
            "resource-not-star",
            format!(
                "statement `{}` has a `Resource` other than `*` (or `NotResource`): in a key policy the resource is the key itself, so this statement may not mean what it says",
                statement.sid()
            ),
        );
    }
    for operator in statement.condition.iter().flat_map(|c| c.keys()) {
        if !known_operator(operator) {
            high(
                findings,
                "unknown-condition-operator",
                format!(
                    "statement `{}` uses the condition operator `{operator}`, which IAM does not define: its effect cannot be judged",
                    statement.sid()
                ),
            );
        }
    }
}

fn wildcard_without_account(statement: &Statement, findings: &mut Vec<Finding>) {
    let any = statement.principal.as_ref().is_some_and(|p| {
        p.entries()
            .iter()
            .any(|(kind, v)| *kind == "AWS" && *v == "*")
    }) || statement.not_principal.is_some();
    if any && !pinned_to_accounts(statement) {
        high(
            findings,
            "wildcard-principal",
            format!(
                "statement `{}` allows principal `*` without a condition that pins it to named accounts (exact `kms:CallerAccount`, `aws:PrincipalAccount`, `aws:PrincipalOrgID` or `aws:PrincipalArn`): any AWS account may match it",
                statement.sid()
            ),
        );
    }
}

/// Whether a condition names exact accounts (or one organization) the caller must be in.
fn pinned_to_accounts(statement: &Statement) -> bool {
    let Some(conditions) = &statement.condition else {
        return false;
    };
    conditions.iter().any(|(operator, keys)| {
        PINNING_OPERATORS.contains(&operator.as_str())
            && keys.iter().any(|(key, values)| {
                let key = key.to_ascii_lowercase();
                ACCOUNT_KEYS.contains(&key.as_str()) && values.texts().iter().all(|v| pins(&key, v))
            })
    })
}

fn pins(key: &str, value: &str) -> bool {
    let exact = |v: &str| !v.is_empty() && !v.contains(['*', '?']);
    let account = |v: &str| v.len() == 12 && v.bytes().all(|b| b.is_ascii_digit());
    match key {
        "aws:principalorgid" => exact(value),
        "aws:principalarn" | "aws:sourcearn" => value.split(':').nth(4).is_some_and(account),
        _ => account(value),
    }
}

/// A service principal acts for every account using that service unless the statement ties
/// it to ours (the confused-deputy guard AWS documents).
fn service_without_source(statement: &Statement, findings: &mut Vec<Finding>) {
    let services: Vec<&str> = statement
        .principal
        .iter()
        .flat_map(|p| p.entries())
        .filter(|(kind, _)| *kind == "Service")
        .map(|(_, v)| v)
        .collect();
    if services.is_empty() {
        return;
    }
    let tied = statement.condition.as_ref().is_some_and(|c| {
        c.iter()
            .filter(|(operator, _)| !operator.contains("Not") && !operator.contains("IfExists"))
            .flat_map(|(_, keys)| keys.keys())
            .any(|k| {
                let k = k.to_ascii_lowercase();
                k == "aws:sourceaccount" || k == "aws:sourcearn"
            })
    });
    if !tied {
        high(
            findings,
            "service-without-source",
            format!(
                "statement `{}` allows service principal {} without `aws:SourceAccount` or `aws:SourceArn`: the service may use the key on behalf of any account",
                statement.sid(),
                services.join(", ")
            ),
        );
    }
}

/// Every principal named outside the key's account, plus a stranger.
fn foreign_principals(policy: &PolicyDocument, key_account: &AccountId) -> Vec<String> {
    let mut found: Vec<String> = policy
        .statements()
        .iter()
        .filter_map(|s| s.principal.as_ref())
        .flat_map(|p| p.entries())
        .filter(|(kind, _)| *kind == "AWS")
        .filter_map(|(_, value)| as_principal_arn(value))
        .filter(|arn| account_of(arn) != Some(key_account.as_str()))
        .collect();
    found.push(STRANGER.to_owned());
    found.sort();
    found.dedup();
    found
}

fn as_principal_arn(value: &str) -> Option<String> {
    if value.len() == 12 && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(format!("arn:aws:iam::{value}:root"));
    }
    account_of(value).map(|_| value.to_owned())
}

fn foreign_checks(policy: &PolicyDocument, principal: &str, findings: &mut Vec<Finding>) {
    let who = if principal == STRANGER {
        "an account the policy does not name".to_owned()
    } else {
        format!("`{principal}`")
    };
    let may = |request: Request, stance: Stance| evaluate_as(policy, &request, stance).allowed;
    // A named foreign account is judged under any condition; "anyone else" under conditions
    // that may match (a `*` pinned to the key's own account is not foreign).
    let control_stance = if principal == STRANGER {
        Stance::May
    } else {
        Stance::AnyCondition
    };
    let mut control: Vec<&str> = CONTROL_ACTIONS
        .iter()
        .copied()
        .filter(|a| may(Request::new(principal, a), control_stance))
        .collect();
    if may(Request::new(principal, "kms:*"), control_stance) {
        control.insert(0, "kms:*");
    }
    if !control.is_empty() {
        high(
            findings,
            "foreign-control",
            format!(
                "{who} may administer or disable the key, under some condition: {}",
                control.join(", ")
            ),
        );
    }
    if may(Request::new(principal, "kms:CreateGrant"), Stance::May) {
        high(
            findings,
            "grant-not-for-aws-resource",
            format!("{who} may create grants that are not for AWS resources (no `kms:GrantIsForAWSResource` condition it must meet)"),
        );
    }
    if may(Request::new(principal, "kms:Decrypt"), Stance::May) {
        findings.push(Finding {
            severity: Severity::Medium,
            check: "foreign-direct-use",
            message: format!("{who} may call `kms:Decrypt` directly, not only through an AWS service (no `kms:ViaService` condition it must meet)"),
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
