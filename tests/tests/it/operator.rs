//! The operator IAM policies in `policies/` against what the agents really call.
//!
//! Both directions: every call the agents make in full runs (recorded by the proxy) is
//! allowed by their operator policy, or an operator holding only that policy would fail
//! halfway; and every action a policy lists is one the toolkit calls, or it grants more than
//! it needs. Two kinds of permission have no call of their own and are listed on purpose:
//! tagging on create (`rds:AddTagsToResource`, `kms:TagResource` for `Tags` in a create call)
//! and the statement that lets RDS and Secrets Manager use keys on the operator's behalf
//! (`kms:ViaService`), whose KMS calls AWS services make, never the agents.

use std::collections::BTreeSet;
use std::path::Path;

use e2e::fixtures::{aurora_cluster, mysql_instance, network, placed_instance};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Agent, Emulator, Workdir, TARGET};
use rds_handoff::policy::eval::glob;

use crate::common::{accounts, manifest};

const IMPLIED_BY_CREATE: &[&str] = &["rds:AddTagsToResource", "kms:TagResource"];

fn policy(name: &str) -> serde_json::Value {
    let path = format!("{}/../policies/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The actions of the statements the operator's own calls need (no `kms:ViaService`).
fn direct_actions(policy: &serde_json::Value) -> Vec<String> {
    let mut actions = Vec::new();
    for statement in policy["Statement"].as_array().unwrap() {
        let via_service = statement["Condition"]
            .to_string()
            .contains("kms:ViaService");
        if via_service {
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
fn calls_in_code() -> BTreeSet<String> {
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
    for m in ["opr-db.handoff.json", "opr-cl.handoff.json"] {
        let args = import(m);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        wd.via(&tgt, Agent::Tgt, &target, &args).await.ok();
    }
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
        ["encrypt", "--db-instance", "opr-enc"],
        ["encrypt", "--db-cluster", "opr-cl"],
    ] {
        wd.via(&src, Agent::Src, &source, &encrypt).await.ok();
    }

    let code = calls_in_code();
    let (src_seen, tgt_seen) = (seen(&src), seen(&tgt));
    assert!(
        src_seen.len() > 15 && tgt_seen.len() > 10,
        "{src_seen:?} {tgt_seen:?}"
    );
    check("source-operator.iam.json", &src_seen, &code);
    check("target-operator.iam.json", &tgt_seen, &code);
    println!(
        "operator policies: src-agent made {} distinct calls, tgt-agent {}, all allowed",
        src_seen.len(),
        tgt_seen.len()
    );
}
