//! The audit against hostile and careless key policies: each must fail closed with a finding
//! that names what is wrong, and the toolkit's own policies must pass.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use rds_handoff_ident::AccountId;
use rds_handoff_key_policy::audit::{audit, Finding, Severity};
use rds_handoff_key_policy::builder::{KeyPolicySpec, KeyPolicyVariant, Peer};
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

#[test]
fn generated_policy_audits_clean() {
    let source: AccountId = SOURCE.parse().unwrap();
    let findings = audit(&spec().build(), &source, Some(ADMIN));
    assert!(findings.is_empty(), "{findings:#?}");
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

fn audit_of(text: &str) -> Vec<Finding> {
    let policy = PolicyDocument::parse(text).unwrap();
    audit(&policy, &SOURCE.parse().unwrap(), Some(ADMIN))
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
        r#"{"StringEquals":{"aws:PrincipalOrgID":"o-abc123def4","kms:ViaService":"rds.us-east-1.amazonaws.com"}}"#,
    ] {
        let statement = format!(
            r#"{{"Sid":"Pinned","Effect":"Allow","Principal":{{"AWS":"*"}},"Action":"kms:Decrypt","Resource":"*","Condition":{condition}}}"#
        );
        let findings = audit_of(&with_admin(&statement));
        assert!(
            !has_high(&findings, "wildcard-principal"),
            "{condition}: {findings:#?}"
        );
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
        let mut spec = spec();
        spec.variant = variant;
        for admins in [vec![], vec![ADMIN.parse().unwrap()]] {
            spec.admins = admins;
            let findings = audit(&spec.build(), &SOURCE.parse().unwrap(), Some(ADMIN));
            assert!(findings.is_empty(), "{variant:?}: {findings:#?}");
        }
    }
}
