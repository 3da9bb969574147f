//! Findings on a live key policy, for `src-agent audit`.
//!
//! Each check asks the evaluator a question rather than pattern-matching the JSON, so a
//! policy written by hand in any shape is judged by what it actually allows. "Foreign" means
//! any principal outside the key's account; a stranger account stands in for "anyone else".

use serde::Serialize;

use super::eval::{account_of, evaluate, Request};
use super::model::{Effect, PolicyDocument, Statement};
use crate::ident::AccountId;

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

/// Actions that administer or disable a key: no other account may have them.
pub const CONTROL_ACTIONS: &[&str] = &[
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:DisableKey",
    "kms:CancelKeyDeletion",
    "kms:UpdateKeyDescription",
    "kms:DeleteImportedKeyMaterial",
];

/// Stands in for "some account nobody named".
const STRANGER: &str = "arn:aws:iam::000000000000:root";

/// Condition keys that pin a wildcard principal to known accounts.
const ACCOUNT_KEYS: &[&str] = &[
    "kms:calleraccount",
    "aws:principalaccount",
    "aws:principalorgid",
    "aws:principalarn",
    "aws:sourceaccount",
];

/// Audits `policy` of a key in `key_account`; `caller` is who runs the audit, if known.
pub fn audit(
    policy: &PolicyDocument,
    key_account: &AccountId,
    caller: Option<&str>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for statement in policy
        .statements()
        .iter()
        .filter(|s| s.effect == Effect::Allow)
    {
        wildcard_without_account(statement, &mut findings);
    }
    let foreign = foreign_principals(policy, key_account);
    for principal in &foreign {
        foreign_checks(policy, principal, &mut findings);
    }
    lockout(policy, key_account, caller, &mut findings);
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
    findings
}

fn wildcard_without_account(statement: &Statement, findings: &mut Vec<Finding>) {
    let any = statement.principal.as_ref().is_some_and(|p| {
        p.entries()
            .iter()
            .any(|(kind, v)| *kind == "AWS" && *v == "*")
    });
    let pinned = statement.condition.as_ref().is_some_and(|c| {
        c.values()
            .flat_map(|keys| keys.keys())
            .any(|k| ACCOUNT_KEYS.contains(&k.to_ascii_lowercase().as_str()))
    });
    if any && !pinned {
        findings.push(Finding {
            severity: Severity::High,
            check: "wildcard-principal",
            message: format!(
                "statement `{}` allows principal `*` with no account condition: any AWS account may use it",
                statement.sid()
            ),
        });
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
    let allowed = |request: Request| evaluate(policy, &request).allowed;
    let control: Vec<&str> = CONTROL_ACTIONS
        .iter()
        .copied()
        .filter(|a| {
            allowed(Request::new(principal, a))
                || allowed(Request::new(principal, a).via("rds", "*"))
        })
        .collect();
    if !control.is_empty() {
        findings.push(Finding {
            severity: Severity::High,
            check: "foreign-control",
            message: format!(
                "{who} may administer or disable the key: {}",
                control.join(", ")
            ),
        });
    }
    if allowed(Request::new(principal, "kms:CreateGrant")) {
        findings.push(Finding {
            severity: Severity::High,
            check: "grant-not-for-aws-resource",
            message: format!("{who} may create grants that are not for AWS resources (no `kms:GrantIsForAWSResource` condition)"),
        });
    }
    if allowed(Request::new(principal, "kms:Decrypt")) {
        findings.push(Finding {
            severity: Severity::Medium,
            check: "foreign-direct-use",
            message: format!("{who} may call `kms:Decrypt` directly, not only through an AWS service (no `kms:ViaService` condition)"),
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
