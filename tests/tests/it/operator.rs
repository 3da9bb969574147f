//! The operator IAM policies in `policies/` against what the agents really call.
//!
//! Both directions: every authorization the agents' calls need in full runs (recorded by the
//! proxy, turned into resource ARNs and condition keys by `e2e::iam`) is allowed by their
//! operator policy, judged by the project's policy evaluator, or an operator holding only
//! that policy would fail halfway; and every action a policy allows is one the toolkit calls,
//! or it grants more than it needs. Two kinds of permission have no call of their own and are
//! listed on purpose: tagging on create (`rds:AddTagsToResource`, `kms:TagResource` for `Tags`
//! in a create call) and the statements that let RDS and Secrets Manager use keys on the
//! operator's behalf (`kms:ViaService`), whose KMS calls AWS services make, never the agents.
//! Independently, Duo Labs' `parliament` lints both policies against AWS's Service
//! Authorization Reference.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};

use e2e::fixtures::{aurora_cluster, mysql_instance, network, placed_instance};
use e2e::iam::Authorizer;
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, TARGET};
use rds_handoff::policy::eval::{evaluate, glob, Request};
use rds_handoff::policy::model::{AnyPrincipal, Principal};
use rds_handoff::policy::PolicyDocument;

use crate::common::{accounts, manifest};

const IMPLIED_BY_CREATE: &[&str] = &["rds:AddTagsToResource", "kms:TagResource"];

fn policy(name: &str) -> serde_json::Value {
    let path = format!("{}/../policies/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The actions the operator's own calls are allowed (no `kms:ViaService`, no Deny).
fn direct_actions(policy: &serde_json::Value) -> Vec<String> {
    let mut actions = Vec::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let via_service = statement["Condition"]
            .to_string()
            .contains("kms:ViaService");
        if via_service || statement["Effect"] == "Deny" {
            continue;
        }
        match &statement["Action"] {
            serde_json::Value::String(a) => actions.push(a.clone()),
            serde_json::Value::Array(list) => {
                actions.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()))
            }
            other => panic!("Action {other}"),
        }
    }
    actions
}

/// Every `sdk("service:Action")` label in the library: the calls the toolkit can make.
pub(crate) fn calls_in_code() -> BTreeSet<String> {
    fn walk(dir: &Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for part in text.split("sdk(\"").skip(1) {
                found.insert(part.split('"').next().unwrap().to_owned());
            }
        }
    }
    let mut found = BTreeSet::new();
    walk(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/src")),
        &mut found,
    );
    found
}

/// The calls a proxy saw, as IAM actions; STS needs no permission.
fn seen(proxy: &Proxy) -> BTreeSet<String> {
    let mut actions = proxy.stats.actions();
    actions.retain(|action| !action.starts_with("sts:"));
    actions
}

fn check(name: &str, seen: &BTreeSet<String>, code: &BTreeSet<String>) {
    let listed = direct_actions(&policy(name));
    let denied: Vec<&String> = seen
        .iter()
        .filter(|call| !listed.iter().any(|a| glob(a, call, true)))
        .collect();
    assert!(
        denied.is_empty(),
        "{name} does not allow calls the agent makes: {denied:?}"
    );
    let unused: Vec<&String> = listed
        .iter()
        .filter(|a| !code.contains(*a) && !IMPLIED_BY_CREATE.contains(&a.as_str()))
        .collect();
    assert!(
        unused.is_empty(),
        "{name} lists actions the toolkit never calls: {unused:?}"
    );
}

/// An identity policy as the evaluator reads it: it applies to whoever holds it.
fn identity_policy(name: &str) -> PolicyDocument {
    let mut policy = PolicyDocument::parse(&policy(name).to_string()).unwrap();
    if let rds_handoff::policy::model::Statements::Many(statements) = &mut policy.statement {
        for statement in statements {
            statement.principal = Some(Principal::Any(AnyPrincipal::Star));
        }
    }
    policy
}

/// Every key of `account`, by id, ARN and alias, with its tags.
pub(crate) async fn keys_of(
    account: &Account,
) -> HashMap<String, (String, BTreeMap<String, String>)> {
    let kms = account.kms();
    let mut keys = HashMap::new();
    let listed = kms.list_keys().limit(1000).send().await.unwrap();
    for entry in listed.keys() {
        let (id, arn) = (entry.key_id().unwrap(), entry.key_arn().unwrap());
        let tags = kms.list_resource_tags().key_id(id).send().await.unwrap();
        let tags: BTreeMap<_, _> = tags
            .tags()
            .iter()
            .map(|t| (t.tag_key().to_owned(), t.tag_value().to_owned()))
            .collect();
        keys.insert(id.to_owned(), (arn.to_owned(), tags.clone()));
        keys.insert(arn.to_owned(), (arn.to_owned(), tags));
    }
    let aliases = kms.list_aliases().limit(100).send().await.unwrap();
    for alias in aliases.aliases() {
        if let Some(entry) = alias.target_key_id().and_then(|id| keys.get(id).cloned()) {
            keys.insert(alias.alias_name().unwrap().to_owned(), entry);
        }
    }
    keys
}

/// Every authorization the proxy's recorded calls needed that `name` does not allow.
pub(crate) fn denied(
    name: &str,
    authorizer: &mut Authorizer,
    proxy: &Proxy,
    extra: Vec<Request>,
) -> (usize, Vec<String>) {
    let policy = identity_policy(name);
    let seen = proxy.stats.seen.lock().unwrap().clone();
    let mut all = authorizer.authorizations(&seen);
    all.extend(extra.into_iter().map(|r| {
        (
            format!("{} on {} (RDS, cross-account)", r.action, r.resource),
            r,
        )
    }));
    let refused = all
        .iter()
        .filter(|(_, request)| !evaluate(&policy, request).allowed)
        .map(|(what, request)| format!("{what} {:?}", request.context))
        .collect();
    (all.len(), refused)
}

/// parliament's findings on a policy file: `(issue, actions)` per line of its JSON output.
fn parliament(name: &str) -> Vec<(String, String)> {
    let python = e2e::emulator::python().expect("the tests' venv");
    let bin = python.with_file_name("parliament");
    let path = format!("{}/../policies/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(&bin)
        .arg("--json")
        .stdin(Stdio::from(std::fs::File::open(&path).unwrap()))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() || !text.trim().is_empty(),
        "parliament failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    text.lines()
        .map(|line| {
            let finding: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                finding["issue"].as_str().unwrap().to_owned(),
                finding["detail"].to_string(),
            )
        })
        .collect()
}

#[test]
fn parliament_finds_nothing_but_justified_resource_stars() {
    let readme = std::fs::read_to_string(format!(
        "{}/../policies/README.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    for name in ["source-operator.iam.json", "target-operator.iam.json"] {
        for (issue, detail) in parliament(name) {
            assert_eq!(issue, "RESOURCE_STAR", "{name}: {issue} {detail}");
            let actions: Vec<String> = serde_json::from_str(&detail).unwrap();
            for action in actions {
                assert!(
                    readme.contains(&format!("`{action}`")),
                    "{name}: `{action}` on Resource \"*\" is not justified in policies/README.md"
                );
            }
        }
    }
}

#[tokio::test]
async fn operator_policies_allow_every_call_and_list_no_other() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("operator");
    mysql_instance(&source, "opr-db", false).await;
    placed_instance(&source, "opr-enc").await;
    aurora_cluster(&source, "opr-cl", false).await;
    let src = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let tgt = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let net = network(&target);
    let import = |m: &'static str| {
        [
            "import",
            m,
            "--source-account",
            e2e::SOURCE,
            "--db-subnet-group",
            &net.subnet_group,
            "--vpc-security-group-ids",
            &net.security_group,
        ]
        .map(str::to_owned)
    };
    let export =
        |flag: &'static str, db: &'static str| ["export", flag, db, "--target-account", TARGET];

    let instance = export("--db-instance", "opr-db");
    wd.via(&src, Agent::Src, &source, &instance).await.ok();
    let cluster = [
        &export("--db-cluster", "opr-cl")[..],
        &["--encrypt-at-source"],
    ]
    .concat();
    wd.via(&src, Agent::Src, &source, &cluster).await.ok();
    let key = manifest(&wd, "opr-db")
        .snapshot
        .kms_key_arn
        .unwrap()
        .to_string();
    let audit = ["audit", "--key", &key];
    wd.via(&src, Agent::Src, &source, &audit).await.ok();
    for (m, password) in [
        ("opr-db.handoff.json", "rotate"),
        ("opr-cl.handoff.json", "rds-managed"),
    ] {
        let args = import(m);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--password", password]);
        wd.via(&tgt, Agent::Tgt, &target, &args).await.ok();
    }
    // Fleets: the listing and the quotas they read first (dry runs: the rest is as above).
    let fleet = [
        "export",
        "--db-instance",
        "opr-db",
        "--db-cluster",
        "opr-cl",
        "--target-account",
        TARGET,
        "--encrypt-at-source",
        "--manifest-dir",
        "fleet",
    ];
    wd.via(&src, Agent::Src, &source, &fleet).await.ok();
    let fleet_import = import("fleet/rds-handoff-index.json");
    let mut fleet_import: Vec<&str> = fleet_import.iter().map(String::as_str).collect();
    fleet_import.push("--dry-run");
    wd.via(&tgt, Agent::Tgt, &target, &fleet_import).await.ok();
    let cleanup = ["cleanup", "opr-db.import.json"];
    wd.via(&tgt, Agent::Tgt, &target, &cleanup).await.ok();
    let revoke = [
        "revoke",
        "opr-db.handoff.json",
        "--delete-snapshot",
        "--schedule-key-deletion",
        "7",
    ];
    wd.via(&src, Agent::Src, &source, &revoke).await.ok();
    for encrypt in [
        ["encrypt", "--db-instance", "opr-enc", "--stop-source"],
        ["encrypt", "--db-cluster", "opr-cl", "--no-color"],
    ] {
        wd.via(&src, Agent::Src, &source, &encrypt).await.ok();
    }

    wd.via(&src, Agent::Src, &source, &["status"]).await.ok();
    wd.via(
        &src,
        Agent::Src,
        &source,
        &["cleanup", "--db", "opr-enc", "--yes"],
    )
    .await
    .ok();
    wd.via(&tgt, Agent::Tgt, &target, &["status"]).await.ok();
    let code = calls_in_code();
    let (src_seen, tgt_seen) = (seen(&src), seen(&tgt));
    assert!(
        src_seen.len() > 15 && tgt_seen.len() > 10,
        "{src_seen:?} {tgt_seen:?}"
    );
    check("source-operator.iam.json", &src_seen, &code);
    check("target-operator.iam.json", &tgt_seen, &code);

    let region = e2e::accounts::REGION;
    let mut src_auth = Authorizer::new(e2e::SOURCE, region);
    src_auth.keys = keys_of(&source).await;
    let (src_n, src_denied) = denied("source-operator.iam.json", &mut src_auth, &src, Vec::new());
    assert!(
        src_denied.is_empty(),
        "the source operator policy refuses: {src_denied:#?}"
    );
    let mut tgt_auth = Authorizer::new(TARGET, region);
    tgt_auth.keys = keys_of(&target).await;
    // RDS reads the shared snapshot through the source's key with the target's permissions.
    let source_key = manifest(&wd, "opr-db")
        .snapshot
        .kms_key_arn
        .unwrap()
        .to_string();
    let cross = tgt_auth.through("rds", &source_key);
    let (tgt_n, tgt_denied) = denied("target-operator.iam.json", &mut tgt_auth, &tgt, cross);
    assert!(
        tgt_denied.is_empty(),
        "the target operator policy refuses: {tgt_denied:#?}"
    );
    println!(
        "operator policies: src-agent made {} distinct calls ({src_n} authorizations), tgt-agent {} ({tgt_n}), all allowed by resource and condition",
        src_seen.len(),
        tgt_seen.len()
    );
}

/// What the review found the old policies allowed, each now refused by evaluation.
#[test]
fn operator_policies_refuse_what_they_need_not_allow() {
    let request = |action: &str, resource: &str, context: &[(&str, &str)]| {
        let mut request = Request::new("arn:aws:iam::111111111111:role/Operator", action);
        request.resource = resource.to_owned();
        request.decided = vec![
            "aws:requesttag/".into(),
            "aws:resourcetag/".into(),
            "aws:tagkeys".into(),
            "kms:bypass".into(),
        ];
        for (k, v) in context {
            request = request.with(k, v);
        }
        request
    };
    let key = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
    let source = identity_policy("source-operator.iam.json");
    let target = identity_policy("target-operator.iam.json");
    let refused = [
        (&source, request("kms:PutKeyPolicy", key, &[])),
        (
            &source,
            request(
                "kms:TagResource",
                key,
                &[
                    ("aws:ResourceTag/rds-handoff:alias", "alias/rds-handoff/x"),
                    ("aws:RequestTag/rds-handoff:alias", "alias/rds-handoff/y"),
                    ("aws:TagKeys", "rds-handoff:alias"),
                ],
            ),
        ),
        (&source, request("kms:ScheduleKeyDeletion", key, &[])),
        (&source, request("kms:CreateKey", "*", &[])),
        (
            &source,
            request(
                "kms:CreateKey",
                "*",
                &[
                    ("aws:RequestTag/rds-handoff:alias", "alias/rds-handoff/x"),
                    ("kms:BypassPolicyLockoutSafetyCheck", "true"),
                ],
            ),
        ),
        (&source, request("kms:CreateAlias", key, &[])),
        (
            &source,
            request(
                "rds:ModifyDBSnapshotAttribute",
                "arn:aws:rds:us-east-1:111111111111:snapshot:nightly-backup",
                &[],
            ),
        ),
        (
            &source,
            request(
                "rds:DeleteDBSnapshot",
                "arn:aws:rds:us-east-1:111111111111:snapshot:nightly-backup",
                &[],
            ),
        ),
        (
            &source,
            request(
                "rds:DeleteDBSnapshot",
                "arn:aws:rds:us-east-1:111111111111:snapshot:rh-someone-elses",
                &[],
            ),
        ),
        (
            &source,
            request(
                "rds:DeleteDBCluster",
                "arn:aws:rds:us-east-1:111111111111:cluster:orders",
                &[],
            ),
        ),
        (
            &source,
            request(
                "rds:AddTagsToResource",
                "arn:aws:rds:us-east-1:111111111111:snapshot:rh-x",
                &[
                    ("aws:ResourceTag/rds-handoff:role", "shared-copy"),
                    ("aws:TagKeys", "rds-handoff:role"),
                ],
            ),
        ),
        (
            &target,
            request(
                "rds:ModifyDBInstance",
                "arn:aws:rds:us-east-1:222222222222:db:payroll",
                &[],
            ),
        ),
        (
            &target,
            request(
                "rds:ModifyDBCluster",
                "arn:aws:rds:us-east-1:222222222222:cluster:payroll",
                &[],
            ),
        ),
        (
            &target,
            request(
                "rds:DeleteDBSnapshot",
                "arn:aws:rds:us-east-1:222222222222:snapshot:payroll-final",
                &[],
            ),
        ),
        (
            &target,
            request(
                "secretsmanager:PutSecretValue",
                "arn:aws:secretsmanager:us-east-1:222222222222:secret:prod/payroll-AbCdEf",
                &[],
            ),
        ),
    ];
    for (policy, request) in refused {
        let decision = evaluate(policy, &request);
        assert!(
            !decision.allowed,
            "{} on {} {:?}: {decision:?}",
            request.action, request.resource, request.context
        );
    }
}
