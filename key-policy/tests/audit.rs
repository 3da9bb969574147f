//! The audit against hostile and careless key policies: each must fail closed with a finding
//! that names what is wrong, and the toolkit's own policies must pass.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use rds_handoff_ident::AccountId;
use rds_handoff_key_policy::audit::{audit, audit_trusting, Finding, Severity, Trust};
use rds_handoff_key_policy::builder::{
    KeyPolicySpec, KeyPolicyVariant, Peer, SID_TARGET_GRANTS, SID_TARGET_USE,
};
use rds_handoff_key_policy::model::PolicyDocument;

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const ADMIN: &str = "arn:aws:iam::111111111111:role/DbaAdmin";

fn spec() -> KeyPolicySpec {
    let peer = Peer {
        account: TARGET.parse().unwrap(),
        principal: None,
    };
    KeyPolicySpec::source(
        "aws",
        "us-east-1".parse().unwrap(),
        SOURCE.parse().unwrap(),
        peer,
    )
}

/// The key's account and the handoff's target: what a reviewer of a source key names.
fn trust() -> Trust {
    let source: AccountId = SOURCE.parse().unwrap();
    Trust::key_only(source).with_target(TARGET.parse().unwrap())
}

#[test]
fn generated_policy_audits_clean() {
    let spec = spec();
    assert_eq!(Trust::of_spec(&spec), trust());
    let findings = audit_trusting(&spec.build(), &trust(), Some(ADMIN));
    assert!(findings.is_empty(), "{findings:#?}");
}

#[test]
fn a_target_nobody_named_is_not_trusted() {
    // The toolkit's own source key, reviewed without naming its target: the target's
    // statements let in an account the reviewer did not name.
    let source: AccountId = SOURCE.parse().unwrap();
    let findings = audit(&spec().build(), &source, Some(ADMIN));
    for sid in [SID_TARGET_USE, SID_TARGET_GRANTS] {
        let named = format!("statement `{sid}`");
        assert!(
            findings.iter().any(|f| f.check == "untrusted-account"
                && f.severity == Severity::High
                && f.message.contains(&named)
                && f.message.contains(TARGET)),
            "{sid}: {findings:#?}"
        );
    }
    let other: AccountId = "333333333333".parse().unwrap();
    let findings = audit_trusting(
        &spec().build(),
        &Trust::key_only(source).with_target(other),
        Some(ADMIN),
    );
    assert!(has_high(&findings, "untrusted-account"), "{findings:#?}");
}

#[test]
fn audit_flags_wildcard_principal_without_condition() {
    let policy = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
          {"Sid":"Everyone","Effect":"Allow","Principal":{"AWS":"*"},"Action":["kms:Decrypt","kms:CreateGrant"],"Resource":"*"}]}"#,
    )
    .unwrap();
    let findings = audit(&policy, &SOURCE.parse().unwrap(), None);
    let checks: Vec<_> = findings.iter().map(|f| (f.check, f.severity)).collect();
    assert!(
        checks.contains(&("wildcard-principal", Severity::High)),
        "{findings:#?}"
    );
    assert!(
        checks.contains(&("grant-not-for-aws-resource", Severity::High)),
        "{findings:#?}"
    );
    assert!(
        checks.contains(&("foreign-direct-use", Severity::Medium)),
        "{findings:#?}"
    );
}

#[test]
fn audit_flags_lockout_and_foreign_control() {
    let locked = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"UseOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#,
    )
    .unwrap();
    let findings = audit(&locked, &SOURCE.parse().unwrap(), None);
    assert!(
        findings
            .iter()
            .any(|f| f.check == "lockout" && f.severity == Severity::High),
        "{findings:#?}"
    );

    let foreign = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
          {"Sid":"TargetToo","Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":["kms:DisableKey","kms:Describe*"],"Resource":"*"}]}"#,
    )
    .unwrap();
    let findings = audit(&foreign, &SOURCE.parse().unwrap(), None);
    let control = findings
        .iter()
        .find(|f| f.check == "foreign-control")
        .expect("foreign control finding");
    assert_eq!(control.severity, Severity::High);
    assert!(
        control.message.contains("kms:DisableKey"),
        "{}",
        control.message
    );
}

/// Audits `text` as a source key's policy, its target named.
fn audit_of(text: &str) -> Vec<Finding> {
    let policy = PolicyDocument::parse(text).unwrap();
    audit_trusting(&policy, &trust(), Some(ADMIN))
}

fn has_high(findings: &[Finding], check: &str) -> bool {
    findings
        .iter()
        .any(|f| f.check == check && f.severity == Severity::High)
}

const ADMIN_STATEMENT: &str = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}"#;

fn with_admin(statement: &str) -> String {
    format!(r#"{{"Version":"2012-10-17","Statement":[{ADMIN_STATEMENT},{statement}]}}"#)
}

#[test]
fn audit_flags_wildcard_principal_behind_undecidable_conditions() {
    for (condition, stranger_may_match) in [
        (r#"{"StringLike":{"aws:PrincipalOrgID":"o-*"}}"#, true),
        (r#"{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#, true),
        (r#"{"StringLike":{"aws:PrincipalArn":"*"}}"#, true),
        (
            r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/Admin"}}"#,
            false,
        ),
        (r#"{"Bool":{"aws:SecureTransport":"true"}}"#, true),
        (
            r#"{"StringNotEquals":{"kms:CallerAccount":"444444444444"}}"#,
            true,
        ),
        (
            r#"{"StringEqualsIfExists":{"kms:CallerAccount":"111111111111"}}"#,
            false,
        ),
    ] {
        let statement = format!(
            r#"{{"Sid":"Open","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{condition}}}"#
        );
        let findings = audit_of(&with_admin(&statement));
        assert!(
            has_high(&findings, "wildcard-principal"),
            "{condition}: {findings:#?}"
        );
        assert_eq!(
            findings.iter().any(|f| f.check == "foreign-direct-use"),
            stranger_may_match,
            "an undecidable condition may match: {condition}: {findings:#?}"
        );
    }
    for condition in [
        r#"{"StringEquals":{"kms:CallerAccount":"111111111111","kms:ViaService":"rds.us-east-1.amazonaws.com"}}"#,
        r#"{"StringEquals":{"aws:PrincipalOrgID":"o-abc123def4","kms:CallerAccount":"222222222222","kms:ViaService":"rds.us-east-1.amazonaws.com"}}"#,
    ] {
        let statement = format!(
            r#"{{"Sid":"Pinned","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"kms:Decrypt","Resource":"*","Condition":{condition}}}"#
        );
        let findings = audit_of(&with_admin(&statement));
        assert!(findings.is_empty(), "{condition}: {findings:#?}");
    }
}

#[test]
fn audit_flags_foreign_administration_under_any_condition() {
    for actions in [
        r#""kms:*""#,
        r#""kms:PutKeyPolicy""#,
        r#"["kms:Describe*","kms:ScheduleKeyDeletion"]"#,
        r#""kms:TagResource""#,
    ] {
        let statement = format!(
            r#"{{"Sid":"Foreign","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::222222222222:root"}},"Action":{actions},"Resource":"*","Condition":{{"StringEquals":{{"kms:ViaService":"rds.us-east-1.amazonaws.com","kms:CallerAccount":"222222222222"}}}}}}"#
        );
        let findings = audit_of(&with_admin(&statement));
        assert!(
            has_high(&findings, "foreign-control"),
            "{actions}: {findings:#?}"
        );
    }
}

#[test]
fn audit_flags_service_principal_without_source() {
    let bare = r#"{"Sid":"Svc","Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*"}"#;
    assert!(has_high(
        &audit_of(&with_admin(bare)),
        "service-without-source"
    ));
    let tied = r#"{"Sid":"Svc","Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#;
    assert!(!has_high(
        &audit_of(&with_admin(tied)),
        "service-without-source"
    ));
}

#[test]
fn audit_flags_resource_other_than_star_and_unknown_operators() {
    let scoped = r#"{"Sid":"Scoped","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","Resource":"arn:aws:kms:us-east-1:111111111111:key/abc"}"#;
    assert!(has_high(
        &audit_of(&with_admin(scoped)),
        "resource-not-star"
    ));
    let not_resource = r#"{"Sid":"Not","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","NotResource":"x"}"#;
    assert!(has_high(
        &audit_of(&with_admin(not_resource)),
        "resource-not-star"
    ));
    let unknown = r#"{"Sid":"Odd","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEqualsMaybe":{"kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#;
    assert!(has_high(
        &audit_of(&with_admin(unknown)),
        "unknown-condition-operator"
    ));
}

#[test]
fn toolkit_policies_pass_the_audit_in_every_variant() {
    for variant in [KeyPolicyVariant::Documented, KeyPolicyVariant::Strict] {
        for narrowed in [false, true] {
            let mut spec = spec();
            spec.variant = variant;
            if narrowed {
                spec.org_id = Some("o-abc123def4".to_owned());
                if let Some(peer) = spec.peer.as_mut() {
                    peer.principal =
                        Some("arn:aws:iam::222222222222:role/Importer".parse().unwrap());
                }
            }
            for admins in [vec![], vec![ADMIN.parse().unwrap()]] {
                spec.admins = admins;
                let findings = audit_trusting(&spec.build(), &Trust::of_spec(&spec), Some(ADMIN));
                assert!(
                    findings.is_empty(),
                    "{variant:?}, {narrowed}: {findings:#?}"
                );
            }
        }
    }
    // The keys with no peer: reviewed with no target named.
    let region = "us-east-1".parse().unwrap();
    for spec in [
        KeyPolicySpec::own_account("aws", region, SOURCE.parse().unwrap()),
        KeyPolicySpec::target_own("aws", "us-east-1".parse().unwrap(), TARGET.parse().unwrap()),
    ] {
        let findings = audit(&spec.build(), &spec.key_account, None);
        assert!(findings.is_empty(), "{findings:#?}");
        assert_eq!(
            Trust::of_spec(&spec),
            Trust::key_only(spec.key_account.clone())
        );
    }
}

/// One statement the audit must refuse, beside the key's administration: the check it must
/// fail with (of high severity, so `src-agent audit` exits non-zero), naming the statement.
struct Adversary {
    what: &'static str,
    statement: &'static str,
    check: &'static str,
}

const fn case(what: &'static str, statement: &'static str, check: &'static str) -> Adversary {
    Adversary {
        what,
        statement,
        check,
    }
}

/// Principal `*` pinned by conditions, service principals, foreign accounts in principals and
/// conditions, and what the audit does not model. Accounts: 111111111111 is the key's,
/// 222222222222 the named target, 333333333333 nobody's.
const ADVERSARIES: &[Adversary] = &[
    case(
        "`*` with kms:* pinned by kms:CallerAccount to a foreign account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
    case(
        "`*` with kms:* pinned by aws:PrincipalAccount to a foreign account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
    case(
        "`*` with kms:* pinned by aws:PrincipalArn to a role of a foreign account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::333333333333:role/*"}}}"#,
        "untrusted-account",
    ),
    case(
        "`*` with kms:* pinned by kms:CallerAccount to the target",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"222222222222"}}}"#,
        "foreign-control",
    ),
    case(
        "`*` with kms:* pinned by aws:PrincipalArn to a role of the target",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::222222222222:role/Ops"}}}"#,
        "foreign-control",
    ),
    case(
        "`*` pinned to the key's account and a foreign one",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":["111111111111","333333333333"],"kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#,
        "untrusted-account",
    ),
    case(
        "`*` pinned only to an organization",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-abc123def4","kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#,
        "wildcard-principal",
    ),
    case(
        "`*` narrowed to a service only",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#,
        "wildcard-principal",
    ),
    case(
        "`*` pinned by an account pattern",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"kms:CallerAccount":"11111111111?"}}}"#,
        "wildcard-principal",
    ),
    case(
        "`*` pinned by an ARN pattern whose wildcard runs into the account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringLike":{"aws:PrincipalArn":"arn:aws:*:111111111111:role/x"}}}"#,
        "wildcard-principal",
    ),
    case(
        "`*` pinned only if the key exists",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:PrincipalAccount":"111111111111"}}}"#,
        "wildcard-principal",
    ),
    case(
        "`*` with a set operator on an account key (matches a request without it)",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"ForAllValues:StringEquals":{"kms:CallerAccount":"111111111111"}}}"#,
        "unrecognized-condition",
    ),
    case(
        "`*` pinned by a foreign aws:SourceAccount",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
    case(
        "`*` pinned by aws:SourceAccount, with control actions",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":"*","Action":["kms:Decrypt","kms:ScheduleKeyDeletion"],"Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-control",
    ),
    case(
        "a service principal with kms:PutKeyPolicy",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-control",
    ),
    case(
        "a service principal with kms:*",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-control",
    ),
    case(
        "a service principal with everything but decrypt",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"NotAction":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-control",
    ),
    case(
        "a service principal with grants that are not for AWS resources",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":["kms:Decrypt","kms:CreateGrant"],"Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-control",
    ),
    case(
        "a service principal for a foreign aws:SourceAccount",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
    case(
        "a service principal for a foreign aws:SourceArn",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:logs:us-east-1:333333333333:log-group:*"}}}"#,
        "untrusted-account",
    ),
    case(
        "a service principal for an aws:SourceArn of any account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*","Condition":{"ArnLike":{"aws:SourceArn":"arn:aws:logs:*:*:log-group:*"}}}"#,
        "service-without-source",
    ),
    case(
        "a service principal tied to its source only if the key exists",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEqualsIfExists":{"aws:SourceAccount":"111111111111"}}}"#,
        "service-without-source",
    ),
    case(
        "a foreign account's root, through RDS",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::333333333333:root"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#,
        "untrusted-account",
    ),
    case(
        "a foreign account by bare id",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":["111111111111","333333333333"]},"Action":"kms:DescribeKey","Resource":"*"}"#,
        "untrusted-account",
    ),
    case(
        "the target, with a condition that names a foreign account",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"rds.us-east-1.amazonaws.com","kms:CallerAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
    case(
        "the target, creating grants that are not for AWS resources",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::222222222222:root"},"Action":"kms:CreateGrant","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"222222222222"}}}"#,
        "grant-not-for-aws-resource",
    ),
    case(
        "the target, administering the key",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"222222222222"},"Action":["kms:Describe*","kms:ReplicateKey"],"Resource":"*"}"#,
        "foreign-control",
    ),
    case(
        "the key's account behind a condition key the audit does not model",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}"#,
        "unrecognized-condition",
    ),
    case(
        "the key's account behind an operator the audit does not model",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","Resource":"*","Condition":{"Null":{"kms:ViaService":"false"}}}"#,
        "unrecognized-condition",
    ),
    case(
        "an allow for everyone but one principal",
        r#"{"Sid":"Adversary","Effect":"Allow","NotPrincipal":{"AWS":"arn:aws:iam::111111111111:role/App"},"Action":"kms:Decrypt","Resource":"*"}"#,
        "not-principal",
    ),
    case(
        "a federated principal",
        r#"{"Sid":"Adversary","Effect":"Allow","Principal":{"Federated":"cognito-identity.amazonaws.com"},"Action":"kms:Decrypt","Resource":"*"}"#,
        "unrecognized-principal",
    ),
    case(
        "a statement without a Sid, named by its position",
        r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"333333333333"}}}"#,
        "untrusted-account",
    ),
];

#[test]
fn audit_refuses_every_adversarial_statement_by_name() {
    for adversary in ADVERSARIES {
        let findings = audit_of(&with_admin(adversary.statement));
        let statement: serde_json::Value = serde_json::from_str(adversary.statement).unwrap();
        let name = match statement["Sid"].as_str() {
            Some(sid) => format!("statement `{sid}`"),
            None => "statement #2 (no Sid)".to_owned(),
        };
        assert!(
            findings.iter().any(|f| f.check == adversary.check
                && f.severity == Severity::High
                && f.message.contains(&name)),
            "{}: no high `{}` finding naming {name}: {findings:#?}",
            adversary.what,
            adversary.check
        );
        assert!(
            findings
                .iter()
                .filter(|f| f.severity == Severity::High)
                .all(|f| f.check == "lockout" || f.message.contains(&name)),
            "{}: every high finding names the statement: {findings:#?}",
            adversary.what
        );
    }
}

#[test]
fn audit_clears_what_its_trusted_accounts_and_services_may_do() {
    for (what, statement) in [
        (
            "`*` pinned to the key's account",
            r#"{"Sid":"Own","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"111111111111"}}}"#,
        ),
        (
            "`*` pinned to a role of the target, through RDS",
            r#"{"Sid":"Target","Effect":"Allow","Principal":"*","Action":"kms:Decrypt","Resource":"*","Condition":{"ArnEquals":{"aws:PrincipalArn":"arn:aws:iam::222222222222:role/Importer"},"StringEquals":{"kms:ViaService":"rds.us-east-1.amazonaws.com"}}}"#,
        ),
        (
            "a service with the actions AWS documents for CloudWatch Logs, tied to the key's account",
            r#"{"Sid":"Logs","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":["kms:Encrypt*","kms:Decrypt*","kms:ReEncrypt*","kms:GenerateDataKey*","kms:Describe*"],"Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#,
        ),
        (
            "a service tied to the key's account, granting only to AWS resources",
            r#"{"Sid":"Svc","Effect":"Allow","Principal":{"Service":"logs.us-east-1.amazonaws.com"},"Action":["kms:Decrypt","kms:CreateGrant"],"Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"},"Bool":{"kms:GrantIsForAWSResource":"true"}}}"#,
        ),
        (
            "a deny that names a foreign account",
            r#"{"Sid":"NotThem","Effect":"Deny","Principal":"*","Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"kms:CallerAccount":"333333333333"}}}"#,
        ),
    ] {
        let findings = audit_of(&with_admin(statement));
        let cleared = findings.iter().all(|f| f.severity != Severity::High);
        assert!(cleared, "{what}: {findings:#?}");
    }
}
