//! The allow/deny matrix over the generated migration key policy, the lockout check and the
//! audit, all judged by evaluation.

use super::audit::{audit, Severity};
use super::builder::{check_lockout, merge_peer, remove_account, KeyPolicySpec, Peer};
use super::eval::{evaluate, Request};
use super::model::PolicyDocument;
use crate::ident::AccountId;

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const ADMIN: &str = "arn:aws:iam::111111111111:role/DbaAdmin";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/Importer";
const THIRD: &str = "arn:aws:iam::333333333333:role/Anyone";

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

fn allowed(policy: &PolicyDocument, request: Request) -> bool {
    evaluate(policy, &request).allowed
}

#[test]
fn source_admin_administers() {
    let policy = spec().build();
    for action in [
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:GetKeyPolicy",
    ] {
        assert!(allowed(&policy, Request::new(ADMIN, action)), "{action}");
    }
}

#[test]
fn target_uses_key_only_through_rds_in_region_as_itself() {
    let policy = spec().build();
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"] {
        assert!(
            allowed(
                &policy,
                Request::new(TARGET_ROLE, action).via("rds", "us-east-1")
            ),
            "{action} via RDS"
        );
        assert!(
            !allowed(&policy, Request::new(TARGET_ROLE, action)),
            "{action} directly"
        );
        assert!(
            !allowed(
                &policy,
                Request::new(TARGET_ROLE, action).via("rds", "eu-west-1")
            ),
            "{action} other region"
        );
        assert!(
            !allowed(
                &policy,
                Request::new(TARGET_ROLE, action).via("s3", "us-east-1")
            ),
            "{action} via S3"
        );
        let spoofed = Request::new(TARGET_ROLE, action)
            .via("rds", "us-east-1")
            .with("kms:CallerAccount", "444444444444");
        assert!(!allowed(&policy, spoofed), "{action} as another account");
    }
    let grant = Request::new(TARGET_ROLE, "kms:CreateGrant").via("rds", "us-east-1");
    assert!(allowed(&policy, grant.clone().for_aws_resource()));
    assert!(!allowed(&policy, grant), "grants only for AWS resources");
    assert!(!allowed(
        &policy,
        Request::new(TARGET_ROLE, "kms:Encrypt").via("rds", "us-east-1")
    ));
    assert!(!allowed(
        &policy,
        Request::new(TARGET_ROLE, "kms:ReEncryptTo").via("rds", "us-east-1")
    ));
}

#[test]
fn target_cannot_control_the_key() {
    let policy = spec().build();
    for action in [
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
        "kms:Decrypt",
    ] {
        assert!(
            !allowed(&policy, Request::new(TARGET_ROLE, action)),
            "{action}"
        );
        assert!(
            !allowed(
                &policy,
                Request::new(TARGET_ROLE, action).via("rds", "us-east-1")
            ) || action == "kms:Decrypt",
            "{action} via RDS"
        );
    }
}

#[test]
fn third_account_may_do_nothing() {
    let policy = spec().build();
    for action in [
        "kms:Decrypt",
        "kms:DescribeKey",
        "kms:CreateGrant",
        "kms:PutKeyPolicy",
        "kms:Encrypt",
        "kms:ReEncryptFrom",
    ] {
        for request in [
            Request::new(THIRD, action),
            Request::new(THIRD, action).via("rds", "us-east-1"),
            Request::new(THIRD, action)
                .via("rds", "us-east-1")
                .for_aws_resource(),
        ] {
            assert!(!allowed(&policy, request), "{action}");
        }
    }
}

#[test]
fn narrowed_target_principal_and_org() {
    let mut spec = spec();
    spec.peer = Some(Peer {
        account: TARGET.parse().unwrap(),
        principal: Some(TARGET_ROLE.parse().unwrap()),
    });
    spec.org_id = Some("o-abc123".into());
    let policy = spec.build();
    let rds = |who: &str| Request::new(who, "kms:Decrypt").via("rds", "us-east-1");
    assert!(allowed(
        &policy,
        rds(TARGET_ROLE).with("aws:PrincipalOrgID", "o-abc123")
    ));
    assert!(!allowed(&policy, rds(TARGET_ROLE)), "org condition");
    let other = "arn:aws:iam::222222222222:role/Other";
    assert!(
        !allowed(&policy, rds(other).with("aws:PrincipalOrgID", "o-abc123")),
        "only the named principal"
    );
}

#[test]
fn key_admins_narrow_administration() {
    let mut spec = spec();
    spec.admins = vec![ADMIN.parse().unwrap()];
    let policy = spec.build();
    assert!(allowed(&policy, Request::new(ADMIN, "kms:PutKeyPolicy")));
    assert!(!allowed(
        &policy,
        Request::new("arn:aws:iam::111111111111:role/Dev", "kms:PutKeyPolicy")
    ));
    assert!(check_lockout(&policy, ADMIN).is_ok());
    let err = check_lockout(&policy, "arn:aws:iam::111111111111:role/Dev").unwrap_err();
    assert!(err.to_string().contains("lock you out"), "{err}");
    assert!(err
        .hint()
        .unwrap()
        .contains("--key-admin arn:aws:iam::111111111111:role/Dev"));
}

#[test]
fn lockout_check_mirrors_kms() {
    let policy = spec().build();
    assert!(
        check_lockout(&policy, ADMIN).is_ok(),
        "root delegates to the account's IAM"
    );
    assert!(
        check_lockout(&policy, TARGET_ROLE).is_err(),
        "the target never administers"
    );
    let no_admin = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[{"Sid":"UseOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":["kms:Decrypt","kms:Encrypt"],"Resource":"*"}]}"#,
    )
    .unwrap();
    assert!(check_lockout(&no_admin, ADMIN).is_err());
    let denied = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Statement":[
          {"Sid":"All","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
          {"Sid":"NoPolicyChanges","Effect":"Deny","Principal":"*","Action":"kms:Put*","Resource":"*"}]}"#,
    )
    .unwrap();
    assert!(check_lockout(&denied, ADMIN).is_err(), "explicit deny wins");
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

#[test]
fn merge_keeps_existing_statements_and_revoke_removes_the_peer() {
    let existing = PolicyDocument::parse(
        r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#,
    )
    .unwrap();
    let spec = spec();
    let additions = spec.peer_statements(spec.peer.as_ref().unwrap());
    let merged = merge_peer(existing.clone(), additions.clone());
    assert_eq!(merged.statements().len(), 3);
    assert_eq!(merged.statements()[0], existing.statements()[0]);
    assert_eq!(
        merge_peer(merged.clone(), additions),
        merged,
        "merging twice changes nothing"
    );
    let revoked = remove_account(merged, &TARGET.parse().unwrap());
    assert_eq!(revoked.statements(), existing.statements());
}

#[test]
fn target_own_key_serves_rds_and_secrets_manager_only_in_its_account() {
    let spec =
        KeyPolicySpec::target_own("aws", "us-east-1".parse().unwrap(), TARGET.parse().unwrap());
    let policy = spec.build();
    assert!(allowed(
        &policy,
        Request::new(TARGET_ROLE, "kms:GenerateDataKey").via("secretsmanager", "us-east-1")
    ));
    assert!(allowed(
        &policy,
        Request::new(TARGET_ROLE, "kms:Decrypt").via("rds", "us-east-1")
    ));
    assert!(
        !allowed(
            &policy,
            Request::new(ADMIN, "kms:Decrypt").via("rds", "us-east-1")
        ),
        "source has no use of it"
    );
    assert!(check_lockout(&policy, TARGET_ROLE).is_ok());
    assert!(audit(&policy, &TARGET.parse().unwrap(), Some(TARGET_ROLE)).is_empty());
}
