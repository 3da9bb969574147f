//! `src-agent policy --format explain`: a key policy in words, for reviewers who do not read
//! JSON. Per statement: who, what, under which conditions, and why; then every claim as a row
//! of the allow/deny matrix ([`super::proof`]), with what the evaluator found.

use std::fmt::Write;

use super::builder::{
    KeyPolicySpec, KeyPolicyVariant, SID_ADMIN, SID_OWN_GRANTS, SID_OWN_USE, SID_TARGET_GRANTS,
    SID_TARGET_USE, SID_TARGET_USE_STRICT,
};
use super::model::{Effect, PolicyDocument, Statement};
use super::proof::{check, rows};

/// Printed above a strict policy, and in `--help`.
pub const STRICT_WARNING: &str = "NOT VERIFIED ON AWS: the strict variant gives the target account less than AWS documents for copying a shared encrypted snapshot; RDS may refuse the copy with KMSKeyNotAccessibleFault. Use the default unless you have tried it in your accounts.";

fn why(sid: &str) -> &'static str {
    match sid {
        SID_ADMIN => "administration only (policy, tags, aliases, rotation, enable/disable, deletion), no cryptographic action and no grant: the key's own account can always manage it, and with the account root, the account's IAM policies decide who may (AWS's default, so the key is never orphaned); a key the agents make without --key-admin also names the principal that made it, which administers it with no IAM permission. Anyone allowed to administer the key can change this policy: \"only through RDS\" below is exactly as strong as the account's IAM policies for kms:PutKeyPolicy and kms:CreateGrant",
        SID_OWN_USE => "every use of the key in its own account goes through the AWS services named; no principal of the account can call KMS with it directly",
        SID_OWN_GRANTS => "lets those services attach the key to the resources they encrypt (snapshots, databases, secrets), and nothing else",
        SID_TARGET_USE => "AWS's documented statement for an account a snapshot encrypted with this key is shared with (RDS guide, USER_ShareSnapshot), narrowed as AWS recommends: only through RDS in this region, only as the target account itself",
        SID_TARGET_USE_STRICT => "the strict variant: the target may only read the shared snapshot through RDS. NOT VERIFIED ON AWS: narrower than AWS documents",
        SID_TARGET_GRANTS => "RDS in the target account needs a grant on this key while it copies the snapshot; grants are limited to AWS resources, through RDS, as the target account",
        _ => "not written by rds-handoff: review it on its own",
    }
}

fn who(statement: &Statement) -> String {
    let Some(principal) = &statement.principal else {
        return "every principal except those named in NotPrincipal".into();
    };
    let names: Vec<String> = principal
        .entries()
        .into_iter()
        .map(|(kind, value)| match (kind, value) {
            ("AWS", "*") => "ANY principal in ANY account".to_owned(),
            ("AWS", v) if v.ends_with(":root") => {
                let account = v.trim_end_matches(":root").rsplit(':').next().unwrap_or(v);
                format!("account {account} (any principal its IAM policies allow)")
            }
            ("AWS", v) => v.to_owned(),
            (kind, v) => format!("{kind} principal {v}"),
        })
        .collect();
    names.join("; ")
}

fn condition_text(operator: &str, key: &str, values: &[String]) -> String {
    let list = values.join(" or ");
    match (operator, key.to_ascii_lowercase().as_str()) {
        ("StringEquals", "kms:viaservice") => format!("only through {list} (kms:ViaService)"),
        ("StringEquals", "kms:calleraccount") => format!("only when the caller is in account {list} (kms:CallerAccount)"),
        ("StringEquals", "aws:principalorgid") => format!("only for principals in organization {list} (aws:PrincipalOrgID)"),
        ("Bool", "kms:grantisforawsresource") => "only for grants an AWS service makes for a resource it encrypts (kms:GrantIsForAWSResource)".into(),
        _ => format!("{operator} {key} = {list}"),
    }
}

/// The policy `spec` builds, in words, then the matrix that proves each claim.
pub fn explain(spec: &KeyPolicySpec) -> String {
    let policy = spec.build();
    let mut text = String::new();
    if spec.peer.is_some() && spec.variant == KeyPolicyVariant::Strict {
        let _ = writeln!(text, "{STRICT_WARNING}\n");
    }
    text.push_str(&statements(&policy));
    let checked = check(&policy, rows(spec));
    let _ = writeln!(
        text,
        "Checked by evaluating the policy above (a condition the evaluator cannot decide counts against the claim):"
    );
    for c in &checked {
        let outcome = match (c.holds, c.row.allowed) {
            (true, true) => "allowed",
            (true, false) => "denied ",
            (false, _) => "FAILS  ",
        };
        let _ = writeln!(text, "  {outcome}  {}", c.row.claim);
    }
    text
}

/// Each statement in words.
pub fn statements(policy: &PolicyDocument) -> String {
    let mut text = String::new();
    for (n, statement) in policy.statements().iter().enumerate() {
        let effect = match statement.effect {
            Effect::Allow => "ALLOWS",
            Effect::Deny => "DENIES",
        };
        let _ = writeln!(text, "{}. {}", n + 1, statement.sid());
        let _ = writeln!(text, "   who:   {}", who(statement));
        let actions: Vec<&str> = statement.action.iter().flat_map(|a| a.iter()).collect();
        let _ = writeln!(text, "   what:  {effect} {}", actions.join(", "));
        match &statement.condition {
            None => {
                let _ = writeln!(text, "   when:  always");
            }
            Some(conditions) => {
                for (operator, keys) in conditions {
                    for (key, values) in keys {
                        let _ = writeln!(
                            text,
                            "   when:  {}",
                            condition_text(operator, key, &values.texts())
                        );
                    }
                }
            }
        }
        let _ = writeln!(text, "   why:   {}", why(statement.sid()));
        text.push('\n');
    }
    text
}
