//! `src-agent policy --format explain`: a key policy in words, for reviewers who do not read
//! JSON. Per statement: who, what, under which conditions, and why.

use std::fmt::Write;

use super::builder::{SID_ADMIN, SID_OWN_GRANTS, SID_OWN_USE, SID_TARGET_GRANTS, SID_TARGET_USE};
use super::model::{Effect, PolicyDocument, Statement};

fn why(sid: &str) -> &'static str {
    match sid {
        SID_ADMIN => "the key's own account keeps full control of the key; with the account root, IAM policies in that account decide who administers it (AWS's default), so the key can never be orphaned",
        SID_OWN_USE => "lets the key's own account encrypt and decrypt with it, but only through the AWS services named, never by calling KMS directly",
        SID_OWN_GRANTS => "lets those services attach the key to the resources they encrypt (snapshots, databases, secrets), and nothing else",
        SID_TARGET_USE => "lets the target account read the shared snapshot so RDS can copy it under the target's own key; it cannot encrypt new data with this key",
        SID_TARGET_GRANTS => "RDS in the target account needs a grant on this key while it copies the snapshot; grants are limited to AWS resources",
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

/// The whole policy in words.
pub fn explain(policy: &PolicyDocument) -> String {
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
