//! The operator IAM policies in `policies/` against what the agents really call.
//!
//! Both directions: every authorization the agents' calls need in full runs (recorded by the
//! proxy, turned into resource ARNs and condition keys by `e2e::iam`) is allowed by their
//! operator policy, judged by the project's policy evaluator, or an operator holding only
//! that policy would fail halfway; and every action a policy allows is one the toolkit calls,
//! or it grants more than it needs. Two kinds of permission have no call of their own and are
//! listed on purpose: tagging on create (`rds:AddTagsToResource` for `Tags` in a create call;
//! keys are made untagged) and the statements that let RDS and Secrets Manager use keys on the
//! operator's behalf (`kms:ViaService`), whose KMS calls AWS services make, never the agents,
//! and `iam:CreateServiceLinkedRole`, which RDS calls with the caller's permissions in an
//! account that never used RDS. The administration of the toolkit's own keys (tag, alias,
//! policy, grants, deletion) is granted by each key's own policy, which names the principal
//! that made it: the operator policies grant none of it on `key/*`.
//! Independently, Duo Labs' `parliament` lints both policies against AWS's Service
//! Authorization Reference.
//!
//! And the other way round, request by request: an operator holding only these policies can
//! neither take over a key the toolkit did not make (tag it first, then change its policy,
//! alias it, schedule its deletion) nor a database it did not restore, except where IAM cannot
//! tell them apart, which is exactly what `policies/README.md` says.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Stdio};
use std::rc::Rc;

use e2e::fixtures::{aurora_cluster, mysql_instance, network, placed_instance};
use e2e::iam::{kms_allows, walk, Authorizer, Step, Tags};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, TARGET};
use rds_handoff::policy::builder::ADMIN_ACTIONS;
use rds_handoff::policy::eval::{evaluate, glob, Request};
use rds_handoff::policy::model::{AnyPrincipal, Principal};
use rds_handoff::policy::{KeyPolicySpec, Peer, PolicyDocument};

use crate::common::{accounts, manifest};

/// Listed in a policy for what AWS authorizes beside a call: tags given to a create
/// (`rds:AddTagsToResource`), and the service-linked role RDS makes for the caller.
const IMPLIED_BY_CREATE: &[&str] = &["rds:AddTagsToResource", "iam:CreateServiceLinkedRole"];

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
    // Administration of the toolkit's own keys comes from their key policy, which names the
    // key's maker (`denied` below checks it key by key).
    let by_key_policy = |call: &str| ADMIN_ACTIONS.iter().any(|a| glob(a, call, true));
    let denied: Vec<&String> = seen
        .iter()
        .filter(|call| !listed.iter().any(|a| glob(a, call, true)) && !by_key_policy(call.as_str()))
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
    identity(&policy(name))
}

/// An identity policy document, read so that it applies to whoever holds it.
fn identity(document: &serde_json::Value) -> PolicyDocument {
    let mut policy = PolicyDocument::parse(&document.to_string()).unwrap();
    if let rds_handoff::policy::model::Statements::Many(statements) = &mut policy.statement {
        for statement in statements {
            statement.principal = Some(Principal::Any(AnyPrincipal::Star));
        }
    }
    policy
}

/// The policy of every key of `account` this evaluator can read, by key ARN.
pub(crate) async fn key_policies_of(account: &Account) -> HashMap<String, PolicyDocument> {
    let kms = account.kms();
    let mut policies = HashMap::new();
    let listed = kms.list_keys().limit(1000).send().await.unwrap();
    for entry in listed.keys() {
        let (Some(id), Some(arn)) = (entry.key_id(), entry.key_arn()) else {
            continue;
        };
        let Ok(out) = kms
            .get_key_policy()
            .key_id(id)
            .policy_name("default")
            .send()
            .await
        else {
            continue;
        };
        if let Some(policy) = out.policy().and_then(|p| PolicyDocument::parse(p).ok()) {
            policies.insert(arn.to_owned(), policy);
        }
    }
    policies
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

/// Every authorization the proxy's recorded calls needed that `name` does not allow (nor, on
/// a key in `authorizer.key_policies`, the key's own policy by naming the caller).
pub(crate) fn denied(
    name: &str,
    authorizer: &mut Authorizer,
    proxy: &Proxy,
    extra: Vec<Request>,
) -> (usize, Vec<String>) {
    let policy = identity_policy(name);
    let seen = proxy.stats.seen.lock().unwrap().clone();
    let regions = proxy.stats.regions.lock().unwrap().clone();
    let mut all = authorizer.authorizations_in(&seen, &regions);
    all.extend(extra.into_iter().map(|r| {
        (
            format!("{} on {} (RDS, cross-account)", r.action, r.resource),
            r,
        )
    }));
    let refused = all
        .iter()
        .filter(|(_, request)| !authorizer.allows(&policy, request))
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

fn readme() -> String {
    std::fs::read_to_string(format!(
        "{}/../policies/README.md",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// parliament finds nothing but `Resource "*"` where AWS gives the action no resource (each
/// justified in policies/README.md), and `kms:CreateAlias` without its key resource:
/// parliament wants both of the resources AWS authorizes it against in the statement, but
/// the key side of the toolkit's own keys comes from their key policy, and any `key/*`
/// here would let the holder alias a key the toolkit did not make (README says so).
#[test]
fn parliament_finds_nothing_but_justified_findings() {
    let readme = readme();
    for name in ["source-operator.iam.json", "target-operator.iam.json"] {
        for (issue, detail) in parliament(name) {
            match issue.as_str() {
                "RESOURCE_STAR" => {
                    let actions: Vec<String> = serde_json::from_str(&detail).unwrap();
                    for action in actions {
                        assert!(
                            readme.contains(&format!("`{action}`")),
                            "{name}: `{action}` on Resource \"*\" is not justified in policies/README.md"
                        );
                    }
                }
                "RESOURCE_MISMATCH" => {
                    let missing: Vec<serde_json::Value> = serde_json::from_str(&detail).unwrap();
                    for entry in missing {
                        assert_eq!(entry["action"], "kms:CreateAlias", "{name}: {detail}");
                        assert_eq!(entry["required_format"], "arn:*:kms:*:*:key/*", "{name}");
                    }
                    assert!(
                        readme.contains("`RESOURCE_MISMATCH`"),
                        "{name}: the missing key resource of kms:CreateAlias is not justified in policies/README.md"
                    );
                }
                _ => panic!("{name}: {issue} {detail}"),
            }
        }
    }
}

#[tokio::test]
async fn operator_policies_allow_every_call_and_list_no_other() {
    const THERE: &str = "us-west-2";
    let (source, target) = accounts().await;
    let wd = Workdir::new("operator");
    mysql_instance(&source, "opr-db", false).await;
    placed_instance(&source, "opr-enc").await;
    aurora_cluster(&source, "opr-cl", false).await;
    mysql_instance(&source, "opr-xr", false).await;
    let src = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let tgt = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let (net, net_there) = (network(&target), network(&target.in_region(THERE)));
    let import_into = |m: &'static str, net: &e2e::fixtures::Network| {
        [
            "import",
            m,
            "--source-account",
            e2e::SOURCE,
            "--manifest-sha256",
            &e2e::agents::sha_of(wd.path(), m),
            "--db-subnet-group-name",
            &net.subnet_group,
            "--vpc-security-group-ids",
            &net.security_group,
        ]
        .map(str::to_owned)
    };
    let import = |m: &'static str| import_into(m, &net);
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
    // Across regions: the copy, key and share in the target's region, the import there.
    let across = [
        &export("--db-instance", "opr-xr")[..],
        &["--target-region", THERE],
    ]
    .concat();
    wd.via(&src, Agent::Src, &source, &across).await.ok();
    let there = import_into("opr-xr.handoff.json", &net_there);
    wd.via(&tgt, Agent::Tgt, &target.in_region(THERE), &there)
        .await
        .ok();
    let audit = ["audit", "--kms-key-id", &key, "--target-account", TARGET];
    wd.via(&src, Agent::Src, &source, &audit).await.ok();
    for (m, password) in [
        ("opr-db.handoff.json", "rotate"),
        ("opr-cl.handoff.json", "rds-managed"),
    ] {
        let args = import(m);
        let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
        args.extend(["--password-mode", password]);
        wd.via(&tgt, Agent::Tgt, &target, &args).await.ok();
    }
    // `check` with a client: the groups' inbound rules, and the prefix list one names.
    let ec2 = aws_sdk_ec2::Client::new(&target.config());
    let list = ec2
        .create_managed_prefix_list()
        .prefix_list_name("opr-clients")
        .address_family("IPv4")
        .max_entries(5)
        .entries(
            aws_sdk_ec2::types::AddPrefixListEntry::builder()
                .cidr("10.0.0.0/16")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let list = list.prefix_list().unwrap().prefix_list_id().unwrap();
    ec2.authorize_security_group_ingress()
        .group_id(&net.security_group)
        .ip_permissions(
            aws_sdk_ec2::types::IpPermission::builder()
                .ip_protocol("tcp")
                .from_port(3306)
                .to_port(3306)
                .prefix_list_ids(
                    aws_sdk_ec2::types::PrefixListId::builder()
                        .prefix_list_id(list)
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let mut reach = import("opr-db.handoff.json");
    reach[0] = "check".to_owned();
    let mut reach: Vec<&str> = reach.iter().map(String::as_str).collect();
    reach.extend(["--client-cidr", "10.0.1.0/24"]);
    wd.via(&tgt, Agent::Tgt, &target, &reach).await.ok();
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
    let revoke_there = [
        "revoke",
        "opr-xr.handoff.json",
        "--delete-snapshot",
        "--schedule-key-deletion",
        "7",
    ];
    wd.via(&src, Agent::Src, &source, &revoke_there).await.ok();
    for encrypt in [
        ["encrypt", "--db-instance", "opr-enc", "--stop-source"],
        ["encrypt", "--db-cluster", "opr-cl", "--no-color"],
    ] {
        wd.via(&src, Agent::Src, &source, &encrypt).await.ok();
    }

    let status = ["status", "--target-region", THERE];
    wd.via(&src, Agent::Src, &source, &status).await.ok();
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
    // As the agents ran: the key policies they wrote name this role as the keys' maker.
    let mut src_auth = Authorizer::new(e2e::SOURCE, region).acting_as(&source.role_arn);
    src_auth.keys = keys_of(&source).await;
    src_auth
        .keys
        .extend(keys_of(&source.in_region(THERE)).await);
    src_auth.key_policies = key_policies_of(&source).await;
    src_auth
        .key_policies
        .extend(key_policies_of(&source.in_region(THERE)).await);
    let (src_n, src_denied) = denied("source-operator.iam.json", &mut src_auth, &src, Vec::new());
    assert!(
        src_denied.is_empty(),
        "the source operator policy refuses: {src_denied:#?}"
    );
    let mut tgt_auth = Authorizer::new(TARGET, region).acting_as(&target.role_arn);
    tgt_auth.keys = keys_of(&target).await;
    tgt_auth
        .keys
        .extend(keys_of(&target.in_region(THERE)).await);
    tgt_auth.key_policies = key_policies_of(&target).await;
    tgt_auth
        .key_policies
        .extend(key_policies_of(&target.in_region(THERE)).await);
    // RDS reads the shared snapshot through the source's key with the target's permissions.
    let source_key = manifest(&wd, "opr-db")
        .snapshot
        .kms_key_arn
        .unwrap()
        .to_string();
    let mut cross = tgt_auth.through("rds", &source_key);
    let source_key_there = manifest(&wd, "opr-xr").snapshot.kms_key_arn.unwrap();
    cross.extend(tgt_auth.through("rds", source_key_there.as_str()));
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

const REGION: &str = "us-east-1";
const SRC: &str = "111111111111";
const TGT: &str = "222222222222";

fn tags(pairs: &[(&str, &str)]) -> Tags {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// KMS's default policy for a key made without one (`key-policy-default`): the account root,
/// `kms:*`, so that the account's IAM policies alone decide.
fn default_key_policy(account: &str) -> PolicyDocument {
    let text = format!(
        r#"{{"Version":"2012-10-17","Id":"key-default-1","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{account}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
    );
    PolicyDocument::parse(&text).unwrap()
}

/// How AWS decides each request of a chain: on a key, KMS with the key's policy and the IAM
/// policy; on anything else (an alias, an RDS resource, `*`), IAM alone.
fn deciding(key_policy: PolicyDocument, identity: PolicyDocument) -> impl Fn(&Request) -> bool {
    move |request: &Request| {
        if request.resource.contains(":key/") {
            kms_allows(&key_policy, &identity, request)
        } else {
            evaluate(&identity, request).allowed
        }
    }
}

/// IAM alone decides (RDS resources).
fn by_iam(identity: PolicyDocument) -> impl Fn(&Request) -> bool {
    move |request: &Request| evaluate(&identity, request).allowed
}

/// `action` on `resource` by `op`, with the request's tags `sets` and further condition keys;
/// the resource's tags are those the chain left before the call.
fn on_resource(
    op: &Rc<Authorizer>,
    resource: &str,
    action: &'static str,
    sets: &Tags,
    context: &[(&'static str, &'static str)],
) -> impl Fn(&Tags) -> Vec<Request> + 'static {
    let (op, resource) = (Rc::clone(op), resource.to_owned());
    let (sets, context) = (sets.clone(), context.to_vec());
    move |now: &Tags| {
        let mut request = op.on(action, &resource, &sets, Some(now));
        for (key, value) in &context {
            request = request.with(key, value);
        }
        vec![request]
    }
}

/// `kms:UntagResource` of `keys` on `key`: `aws:TagKeys` names them, no request tags.
fn untag(
    op: &Rc<Authorizer>,
    key: &str,
    keys: &[&str],
) -> impl Fn(&Tags) -> Vec<Request> + 'static {
    let (op, key) = (Rc::clone(op), key.to_owned());
    let keys: Vec<String> = keys.iter().map(|k| (*k).to_owned()).collect();
    move |now: &Tags| {
        let mut request = op.on("kms:UntagResource", &key, &Tags::new(), Some(now));
        request.context.insert("aws:tagkeys".into(), keys.clone());
        vec![request]
    }
}

/// `kms:CreateAlias`: authorized on the alias and on the key (DOMAIN.md §8b).
fn create_alias(
    op: &Rc<Authorizer>,
    key: &str,
    alias: &str,
) -> impl Fn(&Tags) -> Vec<Request> + 'static {
    let account = key.split(':').nth(4).unwrap_or_default();
    let alias = format!("arn:aws:kms:{REGION}:{account}:{alias}");
    let (op, key) = (Rc::clone(op), key.to_owned());
    move |now: &Tags| {
        vec![
            op.on("kms:CreateAlias", &alias, &Tags::new(), None),
            op.on("kms:CreateAlias", &key, &Tags::new(), Some(now)),
        ]
    }
}

/// Every call that would take a key over: put the toolkit's tags on it (or any tag), take
/// tags off, alias it under the toolkit's prefix, replace its policy, list and revoke its
/// grants, schedule its deletion.
fn key_takeover(op: &Rc<Authorizer>, key: &str, alias: &str) -> Vec<Step> {
    let toolkit = tags(&[("rds-handoff:alias", alias), ("rds-handoff:db", "payroll")]);
    let mine = tags(&[("owner", "operator")]);
    let none = Tags::new();
    let bypass = [("kms:BypassPolicyLockoutSafetyCheck", "false")];
    vec![
        Step::new(
            "TagResource rds-handoff:alias, rds-handoff:db",
            on_resource(op, key, "kms:TagResource", &toolkit, &[]),
        )
        .setting(&toolkit),
        Step::new(
            "TagResource owner",
            on_resource(op, key, "kms:TagResource", &mine, &[]),
        )
        .setting(&mine),
        Step::new("UntagResource env", untag(op, key, &["env"])).removing(&["env"]),
        Step::new(
            "UntagResource rds-handoff:alias",
            untag(op, key, &["rds-handoff:alias"]),
        )
        .removing(&["rds-handoff:alias"]),
        Step::new("CreateAlias", create_alias(op, key, alias)),
        Step::new(
            "PutKeyPolicy",
            on_resource(op, key, "kms:PutKeyPolicy", &none, &bypass),
        ),
        Step::new(
            "ListGrants",
            on_resource(op, key, "kms:ListGrants", &none, &[]),
        ),
        Step::new(
            "RevokeGrant",
            on_resource(op, key, "kms:RevokeGrant", &none, &[]),
        ),
        Step::new(
            "ScheduleKeyDeletion",
            on_resource(op, key, "kms:ScheduleKeyDeletion", &none, &[]),
        ),
    ]
}

/// A key the toolkit did not make, with KMS's default policy (IAM decides): no call of the
/// takeover chain goes through, each judged with the key's tags as the calls before it left
/// them, whatever the key carries at first (nothing, someone's tags, or the toolkit's own tags
/// put there by someone else); its tags stay as they were. With operator policies that let
/// the holder tag an untagged key with the toolkit's tags, that first call unlocked the rest.
#[test]
fn a_key_the_toolkit_did_not_make_cannot_be_tagged_then_taken_over() {
    for (name, account, alias) in [
        ("source-operator.iam.json", SRC, "alias/rds-handoff/payroll"),
        (
            "target-operator.iam.json",
            TGT,
            "alias/rds-handoff/imported/payroll",
        ),
    ] {
        let key =
            format!("arn:aws:kms:{REGION}:{account}:key/1234abcd-12ab-34cd-56ef-1234567890ab");
        let op = Rc::new(Authorizer::new(account, REGION));
        let steps = key_takeover(&op, &key, alias);
        let decide = deciding(default_key_policy(account), identity_policy(name));
        let tagged_by_someone = tags(&[
            ("env", "prod"),
            ("rds-handoff:alias", alias),
            ("rds-handoff:db", "payroll"),
        ]);
        for before in [Tags::new(), tags(&[("env", "prod")]), tagged_by_someone] {
            let (through, after) = walk(&before, &steps, &decide);
            assert!(
                through.is_empty(),
                "{name}: on a key the toolkit did not make, tagged {before:?}, these calls went through: {through:?}"
            );
            assert_eq!(after, before, "{name}: the key's tags");
        }
    }
}

/// The calls the agents make on a key they make, in order (`aws/kms`: make it untagged, tag
/// it, alias it; read it; add a peer to its policy; RDS and Secrets Manager use it; revoke
/// lists and revokes its grants; revoke or cleanup schedules its deletion).
fn own_key_calls(
    op: &Rc<Authorizer>,
    key: &str,
    alias: &str,
    services: &[&'static str],
) -> Vec<Step> {
    let toolkit = tags(&[
        ("rds-handoff:alias", alias),
        ("rds-handoff:db", "orders"),
        (
            "rds-handoff:create-token",
            "0123456789abcdef0123456789abcdef",
        ),
    ]);
    let none = Tags::new();
    let bypass = [("kms:BypassPolicyLockoutSafetyCheck", "false")];
    let mut steps = vec![
        Step::new(
            "CreateKey, untagged",
            on_resource(op, "*", "kms:CreateKey", &none, &bypass),
        ),
        Step::new(
            "TagResource",
            on_resource(op, key, "kms:TagResource", &toolkit, &[]),
        )
        .setting(&toolkit),
        Step::new("CreateAlias", create_alias(op, key, alias)),
    ];
    for action in [
        "kms:DescribeKey",
        "kms:GetKeyPolicy",
        "kms:ListResourceTags",
    ] {
        steps.push(Step::new(action, on_resource(op, key, action, &none, &[])));
    }
    steps.push(Step::new(
        "PutKeyPolicy",
        on_resource(op, key, "kms:PutKeyPolicy", &none, &bypass),
    ));
    for &service in services {
        let (op, key) = (Rc::clone(op), key.to_owned());
        let call = format!("use through {service}");
        steps.push(Step::new(&call, move |_: &Tags| op.through(service, &key)));
    }
    for action in [
        "kms:ListGrants",
        "kms:RevokeGrant",
        "kms:ScheduleKeyDeletion",
    ] {
        steps.push(Step::new(action, on_resource(op, key, action, &none, &[])));
    }
    steps
}

/// The toolkit's own key, whose policy names its maker beside the account root: every call
/// the agents make on it goes through, by the operator policy or by the key's own policy.
/// Another principal of the account holding the same operator policy can take none of the
/// takeover chain's steps on it: the key's policy names only its maker, and the operator
/// policy grants nothing on `key/*` (policies/README.md says so).
#[test]
fn the_toolkits_own_key_is_administered_by_its_maker_through_its_key_policy() {
    let region: rds_handoff::ident::Region = REGION.parse().unwrap();
    let peer = Peer {
        account: TGT.parse().unwrap(),
        principal: None,
    };
    let cases = [
        (
            "source-operator.iam.json",
            SRC,
            "alias/rds-handoff/orders",
            KeyPolicySpec::source("aws", region.clone(), SRC.parse().unwrap(), peer),
            vec!["rds"],
        ),
        (
            "target-operator.iam.json",
            TGT,
            "alias/rds-handoff/imported/orders",
            KeyPolicySpec::target_own("aws", region, TGT.parse().unwrap()),
            vec!["rds", "secretsmanager"],
        ),
    ];
    for (name, account, alias, spec, services) in cases {
        let maker = format!("arn:aws:iam::{account}:role/Operator");
        let key =
            format!("arn:aws:kms:{REGION}:{account}:key/0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f");
        let key_policy = spec.made_by(&maker).build();
        let decide = deciding(key_policy, identity_policy(name));

        let op = Rc::new(Authorizer::new(account, REGION).acting_as(&maker));
        let calls = own_key_calls(&op, &key, alias, &services);
        let all: Vec<String> = calls.iter().map(|step| step.call.clone()).collect();
        let (through, _) = walk(&Tags::new(), &calls, &decide);
        assert_eq!(through, all, "{name}: the maker's own calls on its key");

        let other = format!("arn:aws:iam::{account}:role/SomeoneElse");
        let other = Rc::new(Authorizer::new(account, REGION).acting_as(&other));
        let ours = tags(&[("rds-handoff:alias", alias), ("rds-handoff:db", "orders")]);
        let (through, after) = walk(&ours, &key_takeover(&other, &key, alias), &decide);
        assert!(
            through.is_empty(),
            "{name}: another principal of the account on the toolkit's key: {through:?}"
        );
        assert_eq!(after, ours);
    }
}

/// What would take over a database: put the toolkit's `restored-database` tags on it, then
/// set its master password (`Modify…`), or delete it.
fn database_takeover(op: &Rc<Authorizer>, kind: &str, arn: &str) -> Vec<Step> {
    let ours = tags(&[
        ("rds-handoff:db", "payroll"),
        ("rds-handoff:role", "restored-database"),
        (
            "rds-handoff:source-snapshot",
            "arn:aws:rds:us-east-1:111111111111:snapshot:rh-payroll-to-222222222222",
        ),
    ]);
    let (modify, delete) = if kind == "db" {
        ("rds:ModifyDBInstance", "rds:DeleteDBInstance")
    } else {
        ("rds:ModifyDBCluster", "rds:DeleteDBCluster")
    };
    let none = Tags::new();
    vec![
        Step::new(
            "AddTagsToResource",
            on_resource(op, arn, "rds:AddTagsToResource", &ours, &[]),
        )
        .setting(&ours),
        Step::new(modify, on_resource(op, arn, modify, &none, &[])),
        Step::new(delete, on_resource(op, arn, delete, &none, &[])),
    ]
}

/// The statements policies/README.md narrows to restored databases named with a prefix.
const NARROWED: &[&str] = &[
    "RestoreRhSnapshotsIntoNewDatabasesTaggedWithASourceSnapshot",
    "AddInstancesTaggedWriterInstanceToAnyCluster",
    "AddTagsWithASourceSnapshotTagToAnyDatabaseAndToRhSnapshots",
    "ModifyAnyDatabaseTaggedRestoredDatabase",
    "AddOtherTagsToAnyDatabaseTaggedRestoredDatabase",
];

/// The target policy with the README's narrowing: in the statements that restore, add an
/// instance to, tag or modify a database, `db:*` and `cluster:*` become `db:<prefix>*` and
/// `cluster:<prefix>*`.
fn narrowed_target(prefix: &str) -> serde_json::Value {
    let mut document = policy("target-operator.iam.json");
    let mut narrowed = 0;
    for statement in document["Statement"].as_array_mut().unwrap() {
        if !NARROWED.contains(&statement["Sid"].as_str().unwrap()) {
            continue;
        }
        narrowed += 1;
        for resource in statement["Resource"].as_array_mut().unwrap() {
            let value = match resource.as_str().unwrap() {
                "arn:aws:rds:*:*:db:*" => format!("arn:aws:rds:*:*:db:{prefix}*"),
                "arn:aws:rds:*:*:cluster:*" => format!("arn:aws:rds:*:*:cluster:{prefix}*"),
                other => other.to_owned(),
            };
            *resource = value.into();
        }
    }
    assert_eq!(narrowed, NARROWED.len(), "every narrowed statement exists");
    document
}

/// The import's own calls on the database it restores as `id` (instance: restore, set the
/// password; cluster: restore, add the writer, set the password), each with its tags.
fn own_restore_calls(op: &Rc<Authorizer>, kind: &str, id: &str) -> Vec<Step> {
    let arn = |kind: &str, name: &str| format!("arn:aws:rds:{REGION}:{TGT}:{kind}:{name}");
    let shared = "arn:aws:rds:us-east-1:111111111111:cluster-snapshot:rh-orders-to-222222222222";
    let role = |role: &str| {
        tags(&[
            ("rds-handoff:db", id),
            ("rds-handoff:role", role),
            ("rds-handoff:source-snapshot", shared),
        ])
    };
    let (restored, writer_tags) = (role("restored-database"), role("writer-instance"));
    let none = Tags::new();
    let database = arn(kind, id);
    let mut steps = Vec::new();
    if kind == "db" {
        let action = "rds:RestoreDBInstanceFromDBSnapshot";
        let copy_tags = role("intermediate");
        let (op2, restored2, database2) = (Rc::clone(op), restored.clone(), database.clone());
        let others = [
            (
                arn("snapshot", "rh-orders-to-222222222222"),
                Some(copy_tags),
            ),
            (arn("subgrp", "handoff-subnets"), None),
            (arn("og", "default:mysql-8-0"), None),
            (arn("pg", "default.mysql8.0"), None),
        ];
        steps.push(
            Step::new(action, move |_: &Tags| {
                let mut all = vec![
                    op2.on(action, &database2, &restored2, None),
                    op2.on("rds:AddTagsToResource", &database2, &restored2, None),
                ];
                for (resource, existing) in &others {
                    all.push(op2.on(action, resource, &restored2, existing.as_ref()));
                }
                all
            })
            .setting(&restored),
        );
        steps.push(user_tags(op, &database));
        steps.push(Step::new(
            "rds:ModifyDBInstance",
            on_resource(op, &database, "rds:ModifyDBInstance", &none, &[]),
        ));
        return steps;
    }
    let action = "rds:RestoreDBClusterFromSnapshot";
    let (op2, restored2, database2) = (Rc::clone(op), restored.clone(), database.clone());
    let others = [
        shared.to_owned(),
        arn("subgrp", "handoff-subnets"),
        arn("og", "default:aurora-mysql-8-0"),
        arn("cluster-pg", "default.aurora-mysql8.0"),
    ];
    steps.push(
        Step::new(action, move |_: &Tags| {
            let mut all = vec![
                op2.on(action, &database2, &restored2, None),
                op2.on("rds:AddTagsToResource", &database2, &restored2, None),
            ];
            for resource in &others {
                all.push(op2.on(action, resource, &restored2, None));
            }
            all
        })
        .setting(&restored),
    );
    let writer = arn("db", &format!("{id}-writer"));
    let (op2, cluster) = (Rc::clone(op), database.clone());
    steps.push(Step::new("rds:CreateDBInstance", move |now: &Tags| {
        vec![
            op2.on("rds:CreateDBInstance", &writer, &writer_tags, None),
            op2.on("rds:AddTagsToResource", &writer, &writer_tags, None),
            op2.on("rds:CreateDBInstance", &cluster, &writer_tags, Some(now)),
        ]
    }));
    steps.push(user_tags(op, &database));
    steps.push(Step::new(
        "rds:ModifyDBCluster",
        on_resource(op, &database, "rds:ModifyDBCluster", &none, &[]),
    ));
    steps
}

/// The operator's tags (copied from the original) that the agent adds to a database after a
/// Step Functions execution made it: the state machine writes only the toolkit's.
fn user_tags(op: &Rc<Authorizer>, database: &str) -> Step {
    let theirs = tags(&[("team", "payments"), ("env", "prod")]);
    Step::new(
        "rds:AddTagsToResource (the operator's tags)",
        on_resource(op, database, "rds:AddTagsToResource", &theirs, &[]),
    )
    .setting(&theirs)
}

/// After a Step Functions execution the agent adds the operator's own tags to the database
/// it made (the definitions write only the toolkit's). Target: allowed on a database tagged
/// `restored-database`, with no toolkit key, on no other database. Source: the encrypted
/// twin (no role) is tagged only together with its `rds-handoff:encrypted-from`, which the
/// agent sends again.
#[test]
fn the_operators_tags_are_added_as_the_agent_adds_them() {
    let theirs = tags(&[("team", "payments")]);
    let op = Authorizer::new(TGT, REGION);
    let decide = by_iam(identity_policy("target-operator.iam.json"));
    for kind in ["db", "cluster"] {
        let database = format!("arn:aws:rds:{REGION}:{TGT}:{kind}:orders-new");
        let add = |sets: &Tags, existing: &Tags| {
            decide(&op.on("rds:AddTagsToResource", &database, sets, Some(existing)))
        };
        let made = tags(&[("rds-handoff:role", "restored-database")]);
        assert!(add(&theirs, &made), "target {kind}: the operator's tags");
        let toolkit = tags(&[("team", "payments"), ("rds-handoff:db", "payroll")]);
        let other_role = tags(&[("rds-handoff:role", "intermediate")]);
        for sets in [toolkit, other_role] {
            assert!(!add(&sets, &made), "target {kind}: {sets:?}");
        }
        let foreign = tags(&[("env", "prod")]);
        assert!(
            !add(&theirs, &foreign),
            "target {kind}: a database it did not restore"
        );
    }
    let op = Authorizer::new(SRC, REGION);
    let decide = by_iam(identity_policy("source-operator.iam.json"));
    let twin = format!("arn:aws:rds:{REGION}:{SRC}:db:orders-encrypted");
    let mark = tags(&[("rds-handoff:encrypted-from", "orders")]);
    let mut sent = theirs.clone();
    sent.extend(mark.clone());
    let add = |sets: &Tags| decide(&op.on("rds:AddTagsToResource", &twin, sets, Some(&mark)));
    assert!(
        add(&sent),
        "source: the operator's tags with the twin's mark"
    );
    assert!(
        !add(&theirs),
        "source: without a toolkit key, as the agent never sends them"
    );
}

/// A database the toolkit did not restore, in the target. IAM cannot tell a restore's tags
/// from tags added later (both are `rds:AddTagsToResource` on a database with no tags of the
/// toolkit's): with the shipped policy, tagging it as restored and then setting its master
/// password goes through, as policies/README.md says (deleting it never does). With the
/// README's narrowing (restored databases named `restored-…`), a database of another name is
/// out of reach, one someone else names `restored-…` is not (the README says to reserve the
/// prefix), and the import's own calls on `restored-orders` all go through.
#[test]
fn a_database_the_toolkit_did_not_restore_is_out_of_reach_only_under_the_readme_narrowing() {
    let readme = readme();
    assert!(
        readme.contains("arn:aws:rds:*:*:db:restored-*"),
        "the README's narrowing"
    );
    for sid in NARROWED {
        assert!(
            readme.contains(&format!("`{sid}`")),
            "the README names {sid}"
        );
    }
    let op = Rc::new(Authorizer::new(TGT, REGION));
    let shipped = by_iam(identity_policy("target-operator.iam.json"));
    let narrowed = by_iam(identity(&narrowed_target("restored-")));
    for kind in ["db", "cluster"] {
        let modify = if kind == "db" {
            "rds:ModifyDBInstance"
        } else {
            "rds:ModifyDBCluster"
        };
        let takeover = |id: &str| {
            database_takeover(
                &op,
                kind,
                &format!("arn:aws:rds:{REGION}:{TGT}:{kind}:{id}"),
            )
        };
        for before in [Tags::new(), tags(&[("env", "prod")])] {
            let (through, _) = walk(&before, &takeover("payroll"), &shipped);
            assert_eq!(
                through,
                ["AddTagsToResource", modify],
                "the limit policies/README.md states for the shipped target policy ({kind}); if IAM now tells them apart, say so there"
            );
            let (through, after) = walk(&before, &takeover("payroll"), &narrowed);
            assert!(through.is_empty(), "narrowed, {kind} payroll: {through:?}");
            assert_eq!(after, before);
            let (through, _) = walk(&before, &takeover("restored-payroll"), &narrowed);
            assert_eq!(
                through,
                ["AddTagsToResource", modify],
                "narrowed: a {kind} someone else names restored-… (the README says to reserve the prefix)"
            );
        }
        let own = own_restore_calls(&op, kind, "restored-orders");
        let all: Vec<String> = own.iter().map(|step| step.call.clone()).collect();
        let (through, _) = walk(&Tags::new(), &own, &narrowed);
        assert_eq!(through, all, "narrowed: the import's own calls ({kind})");
        let (through, _) = walk(&Tags::new(), &own, &shipped);
        assert_eq!(through, all, "shipped: the import's own calls ({kind})");
    }
}

/// In the source, no database the toolkit did not make can be modified or deleted through
/// the source policy, tags or not; what is bound only to the toolkit's `rh-` names (the
/// temporary cluster, the snapshots it shares and deletes) is out of reach under any other
/// name, and within reach under an `rh-` name someone else chose, as policies/README.md says.
/// Stopping any database is allowed, as the statement's name says.
#[test]
fn the_source_policy_reaches_what_the_toolkit_did_not_make_only_under_its_rh_names() {
    let op = Rc::new(Authorizer::new(SRC, REGION));
    let decide = by_iam(identity_policy("source-operator.iam.json"));
    let arn = |kind: &str, name: &str| format!("arn:aws:rds:{REGION}:{SRC}:{kind}:{name}");
    let none = Tags::new();
    let temporary = tags(&[("rds-handoff:role", "temporary-cluster")]);
    let shared = tags(&[("rds-handoff:role", "shared-copy")]);
    let cluster_chain = |id: &str| {
        let cluster = arn("cluster", id);
        vec![
            Step::new(
                "AddTagsToResource",
                on_resource(&op, &cluster, "rds:AddTagsToResource", &temporary, &[]),
            )
            .setting(&temporary),
            Step::new(
                "rds:ModifyDBCluster",
                on_resource(&op, &cluster, "rds:ModifyDBCluster", &none, &[]),
            ),
            Step::new(
                "rds:DeleteDBCluster",
                on_resource(&op, &cluster, "rds:DeleteDBCluster", &none, &[]),
            ),
        ]
    };
    let instance = arn("db", "orders");
    let instance_chain = vec![
        Step::new(
            "AddTagsToResource",
            on_resource(&op, &instance, "rds:AddTagsToResource", &temporary, &[]),
        )
        .setting(&temporary),
        Step::new(
            "rds:ModifyDBInstance",
            on_resource(&op, &instance, "rds:ModifyDBInstance", &none, &[]),
        ),
        Step::new(
            "rds:DeleteDBInstance",
            on_resource(&op, &instance, "rds:DeleteDBInstance", &none, &[]),
        ),
    ];
    let snapshot_chain = |id: &str| {
        let snapshot = arn("snapshot", id);
        vec![
            Step::new(
                "AddTagsToResource",
                on_resource(&op, &snapshot, "rds:AddTagsToResource", &shared, &[]),
            )
            .setting(&shared),
            Step::new(
                "rds:ModifyDBSnapshotAttribute",
                on_resource(&op, &snapshot, "rds:ModifyDBSnapshotAttribute", &none, &[]),
            ),
            Step::new(
                "rds:DeleteDBSnapshot",
                on_resource(&op, &snapshot, "rds:DeleteDBSnapshot", &none, &[]),
            ),
        ]
    };
    /// The calls that act on the resource, tagging aside.
    fn acts(through: &[String]) -> Vec<String> {
        through
            .iter()
            .filter(|call| call.as_str() != "AddTagsToResource")
            .cloned()
            .collect()
    }
    for before in [Tags::new(), tags(&[("env", "prod")])] {
        let (through, _) = walk(&before, &cluster_chain("orders"), &decide);
        assert!(acts(&through).is_empty(), "cluster orders: {through:?}");
        let (through, _) = walk(&before, &instance_chain, &decide);
        assert!(acts(&through).is_empty(), "instance orders: {through:?}");
        let (through, after) = walk(&before, &snapshot_chain("nightly"), &decide);
        assert!(through.is_empty(), "snapshot nightly: {through:?}");
        assert_eq!(after, before);

        // The limit the README states: `rh-` names are the toolkit's.
        let (through, _) = walk(&before, &cluster_chain("rh-orders-tmp"), &decide);
        assert_eq!(
            acts(&through),
            ["rds:DeleteDBCluster"],
            "cluster rh-orders-tmp"
        );
        let (through, _) = walk(&before, &snapshot_chain("rh-nightly"), &decide);
        assert_eq!(
            through,
            [
                "AddTagsToResource",
                "rds:ModifyDBSnapshotAttribute",
                "rds:DeleteDBSnapshot"
            ],
            "snapshot rh-nightly"
        );
    }
    let stop = op.on("rds:StopDBInstance", &instance, &none, Some(&none));
    assert!(decide(&stop), "StopAnyDatabaseForEncryptStopSource");
}

/// A target account that never used RDS has no `AWSServiceRoleForRDS`: RDS creates it with
/// the caller's permissions on the first restore. The target policy allows exactly that role,
/// for RDS only; the source policy none (the source account runs the database it exports).
#[test]
fn the_target_policy_lets_rds_create_its_service_linked_role_and_no_other() {
    let target = identity_policy("target-operator.iam.json");
    let source = identity_policy("source-operator.iam.json");
    let op = Authorizer::new(TGT, REGION);
    let create = |role: &str, service: &str| {
        let role = format!("arn:aws:iam::{TGT}:role/aws-service-role/{role}");
        op.on("iam:CreateServiceLinkedRole", &role, &Tags::new(), None)
            .with("iam:AWSServiceName", service)
    };
    let rds = create(
        "rds.amazonaws.com/AWSServiceRoleForRDS",
        "rds.amazonaws.com",
    );
    assert!(
        evaluate(&target, &rds).allowed,
        "the RDS service-linked role"
    );
    assert!(!evaluate(&source, &rds).allowed, "the source policy");
    for other in [
        create(
            "ecs.amazonaws.com/AWSServiceRoleForECS",
            "ecs.amazonaws.com",
        ),
        create(
            "rds.amazonaws.com/AWSServiceRoleForRDS",
            "ecs.amazonaws.com",
        ),
        create(
            "rds.amazonaws.com/AWSServiceRoleForRDSCustom",
            "rds.amazonaws.com",
        ),
    ] {
        assert!(
            !evaluate(&target, &other).allowed,
            "{} {:?}",
            other.resource,
            other.context
        );
    }
}

/// A statement that lets its holder act on a resource of any name (`db:*`, `cluster:*`,
/// `snapshot:*`, `cluster-snapshot:*`, `key/*`) whatever its tags says so in its name: `Any`,
/// or `New` for what it creates. A name like `StopTheOriginalOnly…` on a statement that stops
/// any database claims more than IAM enforces.
#[test]
fn statement_names_say_when_a_resource_of_any_name_is_reachable() {
    let unbounded = [
        ":db:*",
        ":cluster:*",
        ":snapshot:*",
        ":cluster-snapshot:*",
        ":key/*",
    ];
    let list = |value: &serde_json::Value| -> Vec<String> {
        match value {
            serde_json::Value::String(one) => vec![one.clone()],
            serde_json::Value::Array(many) => many
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect(),
            _ => Vec::new(),
        }
    };
    for name in ["source-operator.iam.json", "target-operator.iam.json"] {
        for statement in policy(name)["Statement"].as_array().unwrap() {
            if statement["Effect"] != "Allow" {
                continue;
            }
            let resources = list(&statement["Resource"]);
            let reads = list(&statement["Action"]).iter().all(|action| {
                let verb = action.split(':').nth(1).unwrap_or_default();
                ["Describe", "List", "Get"]
                    .iter()
                    .any(|read| verb.starts_with(read))
            });
            let tag_bound = statement["Condition"]
                .to_string()
                .contains("aws:ResourceTag");
            let any_name = resources
                .iter()
                .any(|r| unbounded.iter().any(|u| r.ends_with(u)));
            if reads || tag_bound || !any_name {
                continue;
            }
            let sid = statement["Sid"].as_str().unwrap();
            assert!(
                sid.contains("Any") || sid.contains("New"),
                "{name}: `{sid}` reaches {resources:?} of any name: its name must say so"
            );
        }
    }
}
