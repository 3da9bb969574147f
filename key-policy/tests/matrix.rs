//! The allow/deny matrix over the generated migration key policy and the lockout check,
//! judged by evaluation: who may do what with the key, in which account, through which service.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use rds_handoff_key_policy::audit::audit;
use rds_handoff_key_policy::builder::{
    check_lockout, merge_peer, remove_account, KeyPolicySpec, KeyPolicyVariant, Peer,
};
use rds_handoff_key_policy::eval::{evaluate, Request};
use rds_handoff_key_policy::model::PolicyDocument;
use rds_handoff_key_policy::proof::{check, rows};

const SOURCE: &str = "111111111111";
const TARGET: &str = "222222222222";
const ADMIN: &str = "arn:aws:iam::111111111111:role/DbaAdmin";
const TARGET_ROLE: &str = "arn:aws:iam::222222222222:role/Importer";
const THIRD: &str = "arn:aws:iam::333333333333:role/Anyone";

/// What AWS documents the target's use of a shared snapshot's key takes (through RDS).
const COPY_ACTIONS: [&str; 7] = [
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:DescribeKey",
];

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
fn target_gets_aws_documented_set_through_rds_in_region_as_itself() {
    let policy = spec().build();
    for action in COPY_ACTIONS {
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
    for action in ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"] {
        let grant = Request::new(TARGET_ROLE, action).via("rds", "us-east-1");
        assert!(
            allowed(&policy, grant.clone().for_aws_resource()),
            "{action}"
        );
        assert!(!allowed(&policy, grant), "{action} only for AWS resources");
    }
}

#[test]
fn strict_variant_reads_only() {
    let mut spec = spec();
    spec.variant = KeyPolicyVariant::Strict;
    let policy = spec.build();
    let rds = |action: &str| Request::new(TARGET_ROLE, action).via("rds", "us-east-1");
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"] {
        assert!(allowed(&policy, rds(action)), "{action}");
    }
    for action in ["kms:Encrypt", "kms:ReEncryptTo", "kms:GenerateDataKey"] {
        assert!(!allowed(&policy, rds(action)), "{action}");
    }
    let text = rds_handoff_key_policy::explain::explain(&spec);
    assert!(text.starts_with("NOT VERIFIED ON AWS"), "{text}");
}

#[test]
fn source_principals_use_the_key_only_through_rds() {
    for admins in [vec![], vec![ADMIN.parse().unwrap()]] {
        let mut spec = spec();
        spec.admins = admins;
        let policy = spec.build();
        let user = "arn:aws:iam::111111111111:role/AppWithKmsDecryptInIam";
        for who in [ADMIN, user, "arn:aws:iam::111111111111:root"] {
            for action in [
                "kms:Decrypt",
                "kms:Encrypt",
                "kms:GenerateDataKey",
                "kms:ReEncryptFrom",
                "kms:CreateGrant",
            ] {
                assert!(
                    !allowed(&policy, Request::new(who, action)),
                    "{who} {action}"
                );
                assert!(
                    !allowed(&policy, Request::new(who, action).for_aws_resource()),
                    "{who} {action} for a resource, not through RDS"
                );
            }
        }
        assert!(allowed(
            &policy,
            Request::new(user, "kms:Decrypt").via("rds", "us-east-1")
        ));
        let admin_statement = &policy.statements()[0];
        let actions: Vec<&str> = admin_statement
            .action
            .iter()
            .flat_map(|a| a.iter())
            .collect();
        assert!(
            !actions.contains(&"kms:*") && !actions.contains(&"kms:Create*"),
            "{actions:?}"
        );
    }
}

/// A key the agents make names its maker beside the root: the maker administers it by name
/// (the lockout check passes on the key policy alone), and uses it no more than anyone else,
/// only through RDS.
#[test]
fn the_maker_administers_its_key_by_name_and_uses_it_only_through_rds() {
    let policy = spec().made_by(ADMIN).build();
    for action in [
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
        "kms:UntagResource",
        "kms:CreateAlias",
        "kms:ListGrants",
        "kms:RevokeGrant",
    ] {
        assert!(allowed(&policy, Request::new(ADMIN, action)), "{action}");
    }
    for action in [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:CreateGrant",
    ] {
        assert!(!allowed(&policy, Request::new(ADMIN, action)), "{action}");
    }
    assert!(allowed(
        &policy,
        Request::new(ADMIN, "kms:Decrypt").via("rds", "us-east-1")
    ));
    check_lockout(&policy, ADMIN).unwrap();
}

#[test]
fn every_explained_claim_is_proven_by_evaluation() {
    let mut variants = Vec::new();
    for variant in [KeyPolicyVariant::Documented, KeyPolicyVariant::Strict] {
        for (principal, org) in [(None, None), (Some(TARGET_ROLE), Some("o-abc123def4"))] {
            let mut spec = spec();
            spec.variant = variant;
            spec.peer = Some(Peer {
                account: TARGET.parse().unwrap(),
                principal: principal.map(|p| p.parse().unwrap()),
            });
            spec.org_id = org.map(str::to_owned);
            variants.push(spec.clone());
            // As the agents make it: the maker named beside the root.
            variants.push(spec.clone().made_by(ADMIN));
            spec.admins = vec![ADMIN.parse().unwrap()];
            variants.push(spec);
        }
    }
    variants.push(KeyPolicySpec::target_own(
        "aws",
        "us-east-1".parse().unwrap(),
        TARGET.parse().unwrap(),
    ));
    for spec in variants {
        let checked = check(&spec.build(), rows(&spec));
        assert!(checked.len() > 30, "{}", checked.len());
        let failed: Vec<_> = checked
            .iter()
            .filter(|c| !c.holds)
            .map(|c| &c.row.claim)
            .collect();
        assert!(failed.is_empty(), "{failed:#?}");
        let text = rds_handoff_key_policy::explain::explain(&spec);
        assert!(!text.contains("FAILS"), "{text}");
    }
}

#[test]
fn explain_names_the_admin_caveat_and_only_checked_claims() {
    let text = rds_handoff_key_policy::explain::explain(&spec());
    assert!(text.contains("Anyone allowed to administer the key can change this policy"));
    assert!(text.contains("kms:PutKeyPolicy and kms:CreateGrant"));
    assert!(text.contains("denied   arn:aws:iam::111111111111:role/AppWithKeyUseRights calls KMS directly: kms:Decrypt"), "{text}");
    assert!(text.contains("allowed  target arn:aws:iam::222222222222:role/Importer through RDS in us-east-1: kms:Encrypt"), "{text}");
    assert!(
        !text.contains("NOT VERIFIED"),
        "the default is AWS's documented form"
    );
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
fn merge_replaces_the_target_statements_an_older_release_wrote() {
    let old = spec();
    let mut policy = old.build();
    if let rds_handoff_key_policy::model::Statements::Many(statements) = &mut policy.statement {
        statements[3].sid = Some("TargetAccountReadsSharedSnapshotThroughRds".into());
    }
    let mut strict = spec();
    strict.variant = KeyPolicyVariant::Strict;
    let merged = merge_peer(
        policy.clone(),
        old.peer_statements(old.peer.as_ref().unwrap()),
    );
    assert_eq!(merged.statements().len(), 5, "{}", merged.to_json());
    let switched = merge_peer(
        merged,
        strict.peer_statements(strict.peer.as_ref().unwrap()),
    );
    assert_eq!(
        switched,
        strict.build(),
        "switching variant leaves no stale statement"
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

#[test]
fn key_admin_with_a_path_passes_the_lockout_check_as_its_session() {
    let mut spec = spec();
    let sso = "arn:aws:iam::111111111111:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_DBA_0123456789abcdef";
    spec.admins = vec![sso.parse().unwrap()];
    let policy = spec.build();
    // What `Caller::principal` makes of the SSO session's assumed-role ARN.
    assert!(check_lockout(
        &policy,
        "arn:aws:iam::111111111111:role/AWSReservedSSO_DBA_0123456789abcdef"
    )
    .is_ok());
    assert!(check_lockout(
        &policy,
        "arn:aws:iam::111111111111:role/AWSReservedSSO_Dev_0123456789abcdef"
    )
    .is_err());
}

/// The key a cross-region export copies under (`export --target-region us-west-2`): made in
/// the target region with the same rules, every use narrowed to RDS in that region. The
/// source copies into it through RDS there, the target copies from it through RDS there;
/// neither through RDS in the source's region, nor directly; a third account not at all.
#[test]
fn the_key_of_a_cross_region_handoff_serves_rds_in_its_own_region_only() {
    let there = "us-west-2";
    let peer = Peer {
        account: TARGET.parse().unwrap(),
        principal: None,
    };
    let spec = KeyPolicySpec::source("aws", there.parse().unwrap(), SOURCE.parse().unwrap(), peer);
    let policy = spec.made_by(ADMIN).build();
    for (who, what) in [(ADMIN, "the source"), (TARGET_ROLE, "the target")] {
        for action in COPY_ACTIONS {
            assert!(
                allowed(&policy, Request::new(who, action).via("rds", there)),
                "{what}: {action} through RDS in {there}"
            );
            // The maker administers the key: it may describe it, as any admin.
            if who == ADMIN && action == "kms:DescribeKey" {
                continue;
            }
            for request in [
                Request::new(who, action).via("rds", "us-east-1"),
                Request::new(who, action),
            ] {
                assert!(
                    !allowed(&policy, request),
                    "{what}: {action} outside RDS in {there}"
                );
            }
        }
        assert!(
            allowed(
                &policy,
                Request::new(who, "kms:CreateGrant")
                    .via("rds", there)
                    .for_aws_resource()
            ),
            "{what}: RDS in {there} may take a grant for the copy"
        );
    }
    for action in COPY_ACTIONS {
        assert!(
            !allowed(&policy, Request::new(THIRD, action).via("rds", there)),
            "a third account: {action}"
        );
    }
    assert!(allowed(
        &policy,
        Request::new(ADMIN, "kms:ScheduleKeyDeletion")
    ));
    assert!(!allowed(
        &policy,
        Request::new(TARGET_ROLE, "kms:ScheduleKeyDeletion")
    ));
}
