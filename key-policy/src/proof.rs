//! The allow/deny matrix behind every sentence of `src-agent policy --format explain`.
//!
//! Each [`Row`] is one claim the explanation makes, written as a request with the outcome it
//! claims. [`check`] evaluates every row against the policy and fails closed both ways: a
//! claimed "allowed" must be proven ([`Stance::Prove`]), a claimed "denied" must hold even when
//! every undecidable condition is taken to match ([`Stance::May`]). The explanation prints the
//! rows with what the evaluator found, so a reviewer reads results, not promises.

use super::builder::{KeyPolicySpec, KeyPolicyVariant, TARGET_USE_ACTIONS};
use super::eval::{evaluate_as, Request, Stance};
use super::model::PolicyDocument;

/// A stranger account: nobody the policy names.
pub const THIRD_ACCOUNT: &str = "333333333333";

/// One claim: `request` is `allowed` (or not).
#[derive(Debug, Clone)]
pub struct Row {
    pub claim: String,
    pub request: Request,
    pub allowed: bool,
}

/// A row with what the evaluator found.
#[derive(Debug, Clone)]
pub struct Checked {
    pub row: Row,
    pub holds: bool,
}

/// Evaluates every row against `policy`.
pub fn check(policy: &PolicyDocument, rows: Vec<Row>) -> Vec<Checked> {
    rows.into_iter()
        .map(|row| {
            let stance = if row.allowed {
                Stance::Prove
            } else {
                Stance::May
            };
            let allowed = evaluate_as(policy, &row.request, stance).allowed;
            Checked {
                holds: allowed == row.allowed,
                row,
            }
        })
        .collect()
}

/// The claims about the policy `spec` builds.
pub fn rows(spec: &KeyPolicySpec) -> Vec<Row> {
    let mut rows = Vec::new();
    own_account_rows(spec, &mut rows);
    if spec.peer.is_some() {
        peer_rows(spec, &mut rows);
    }
    third_account_rows(spec, &mut rows);
    rows
}

fn row(rows: &mut Vec<Row>, claim: String, request: Request, allowed: bool) {
    rows.push(Row {
        claim,
        request,
        allowed,
    });
}

fn role(partition: &str, account: &str, name: &str) -> String {
    format!("arn:{partition}:iam::{account}:role/{name}")
}

fn own_account_rows(spec: &KeyPolicySpec, rows: &mut Vec<Row>) {
    let account = spec.key_account.as_str();
    let region = spec.region.as_str();
    let admin = match spec.admins.first() {
        Some(admin) => admin.to_string(),
        None => role(&spec.partition, account, "KeyAdministrator"),
    };
    let user = role(&spec.partition, account, "AppWithKeyUseRights");
    for action in [
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:TagResource",
    ] {
        let claim = format!("key administrator {admin} administers the key: {action}");
        row(rows, claim, Request::new(&admin, action), true);
    }
    for action in [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:GenerateDataKey",
        "kms:CreateGrant",
    ] {
        for who in [&admin, &user] {
            let claim = format!("{who} calls KMS directly: {action}");
            row(rows, claim, Request::new(who, action), false);
        }
    }
    for who in [&admin, &user] {
        let claim = format!("{who} calls KMS directly: kms:CreateGrant for an AWS resource");
        let request = Request::new(who, "kms:CreateGrant").for_aws_resource();
        row(rows, claim, request, false);
    }
    for service in &spec.services {
        for action in ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"] {
            let claim = format!("{user} through {service} in {region}: {action}");
            let request = Request::new(&user, action).via(service, region);
            row(rows, claim, request, true);
        }
        let claim =
            format!("{user} through {service} in {region}: kms:CreateGrant for an AWS resource");
        let request = Request::new(&user, "kms:CreateGrant")
            .via(service, region)
            .for_aws_resource();
        row(rows, claim, request, true);
        let claim = format!(
            "{user} through {service} in {region}: kms:CreateGrant not for an AWS resource"
        );
        let request = Request::new(&user, "kms:CreateGrant").via(service, region);
        row(rows, claim, request, false);
        let claim = format!("{user} through {service} in another region: kms:Decrypt");
        let request = Request::new(&user, "kms:Decrypt").via(service, "eu-west-1");
        row(rows, claim, request, false);
    }
}

fn peer_rows(spec: &KeyPolicySpec, rows: &mut Vec<Row>) {
    let Some(peer) = &spec.peer else { return };
    let region = spec.region.as_str();
    let account = peer.account.as_str();
    let principal = match &peer.principal {
        Some(arn) => arn.to_string(),
        None => role(&spec.partition, account, "Importer"),
    };
    let with_org = |request: Request| match &spec.org_id {
        Some(org) => request.with("aws:PrincipalOrgID", org),
        None => request,
    };
    let through_rds =
        |who: &str, action: &str| with_org(Request::new(who, action).via("rds", region));
    let strict = spec.variant == KeyPolicyVariant::Strict;
    let documented: Vec<&str> = TARGET_USE_ACTIONS
        .iter()
        .flat_map(|a| match *a {
            "kms:ReEncrypt*" => vec!["kms:ReEncryptFrom", "kms:ReEncryptTo"],
            "kms:GenerateDataKey*" => {
                vec!["kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]
            }
            other => vec![other],
        })
        .collect();
    for action in documented {
        let allowed =
            !strict || ["kms:Decrypt", "kms:DescribeKey", "kms:ReEncryptFrom"].contains(&action);
        let claim = format!("target {principal} through RDS in {region}: {action}");
        row(rows, claim, through_rds(&principal, action), allowed);
    }
    for action in ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"] {
        let claim =
            format!("target {principal} through RDS in {region}: {action} for an AWS resource");
        let request = through_rds(&principal, action).for_aws_resource();
        row(rows, claim, request, true);
    }
    let claim = format!(
        "target {principal} through RDS in {region}: kms:CreateGrant not for an AWS resource"
    );
    row(
        rows,
        claim,
        through_rds(&principal, "kms:CreateGrant"),
        false,
    );
    for action in [
        "kms:Decrypt",
        "kms:Encrypt",
        "kms:PutKeyPolicy",
        "kms:ScheduleKeyDeletion",
        "kms:DisableKey",
    ] {
        let claim = format!("target {principal} calls KMS directly: {action}");
        row(
            rows,
            claim,
            with_org(Request::new(&principal, action)),
            false,
        );
    }
    let claim = format!("target {principal} through RDS in another region: kms:Decrypt");
    let request = with_org(Request::new(&principal, "kms:Decrypt").via("rds", "eu-west-1"));
    row(rows, claim, request, false);
    let claim = format!("target {principal} through S3 in {region}: kms:Decrypt");
    let request = with_org(Request::new(&principal, "kms:Decrypt").via("s3", region));
    row(rows, claim, request, false);
    if peer.principal.is_some() {
        let other = role(&spec.partition, account, "AnyoneElse");
        let claim = format!("{other}, not the named target principal, through RDS: kms:Decrypt");
        row(rows, claim, through_rds(&other, "kms:Decrypt"), false);
    }
    if let Some(org) = &spec.org_id {
        let claim = format!(
            "target {principal} in another organization than {org}, through RDS: kms:Decrypt"
        );
        let request = Request::new(&principal, "kms:Decrypt")
            .via("rds", region)
            .with("aws:PrincipalOrgID", "o-anotherorg0");
        row(rows, claim, request, false);
    }
}

fn third_account_rows(spec: &KeyPolicySpec, rows: &mut Vec<Row>) {
    let region = spec.region.as_str();
    let third = role(&spec.partition, THIRD_ACCOUNT, "Anyone");
    for action in ["kms:Decrypt", "kms:DescribeKey", "kms:PutKeyPolicy"] {
        let claim = format!("another account ({THIRD_ACCOUNT}) directly: {action}");
        row(rows, claim, Request::new(&third, action), false);
        let claim = format!("another account ({THIRD_ACCOUNT}) through RDS in {region}: {action}");
        let request = Request::new(&third, action).via("rds", region);
        row(rows, claim, request, false);
    }
    let claim = format!(
        "another account ({THIRD_ACCOUNT}) through RDS in {region}: kms:CreateGrant for an AWS resource"
    );
    let request = Request::new(&third, "kms:CreateGrant")
        .via("rds", region)
        .for_aws_resource();
    row(rows, claim, request, false);
}
