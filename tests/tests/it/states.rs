//! `--engine step-functions`: the same steps as a Step Functions execution in the account
//! (moto executes it, with the gaps `moto/states_shim.py` closes), compared with the local
//! engine's result.

use std::collections::BTreeMap;

use e2e::agents::import_args;
use e2e::fixtures::{
    aurora_cluster, cluster_state, describe_instance, footprint, instance_state, key_arn,
    mysql_instance, network, placed_instance, restore_attribute, Footprint,
};
use e2e::iam::Authorizer;
use e2e::proxy::{Denial, FaultPlan, Hold, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE, TARGET, THIRD};
use rds_handoff::base::vocabulary::DbKind;
use rds_handoff::flows::fleet::index::Index;
use rds_handoff::workflow::{asl, Workflow};

use crate::common::{accounts, export, import, manifest};
use crate::fleet::{export_args, results, summary, FLEET_TARGET};
use crate::operator::{denied, keys_of};

fn role(account: &str) -> String {
    format!("arn:aws:iam::{account}:role/rds-handoff-states")
}

fn engine(account: &str) -> Vec<String> {
    [
        "--engine",
        "step-functions",
        "--execution-role",
        &role(account),
        "--poll-interval",
        "1s",
    ]
    .map(str::to_owned)
    .to_vec()
}

/// A footprint with the database's name taken out, to compare two databases' runs.
fn normalized(footprint: &Footprint, db: &str) -> Vec<String> {
    let all = [
        &footprint.snapshots,
        &footprint.keys,
        &footprint.secrets,
        &footprint.databases,
    ];
    let mut items: Vec<String> = all
        .iter()
        .enumerate()
        // Key ids are random: a key counts, whatever its id.
        .flat_map(|(i, list)| {
            list.iter().map(move |x| match i {
                1 => "1:key".to_owned(),
                _ => format!("{i}:{}", x.replace(db, "DB")),
            })
        })
        .collect();
    items.sort();
    items
}

/// The tags of database `db` (`--db-instance` or `--db-cluster`), `name` taken out.
async fn tags_of(account: &Account, flag: &str, db: &str, name: &str) -> BTreeMap<String, String> {
    let state = match flag {
        "--db-instance" => instance_state(account, db).await,
        _ => cluster_state(account, db).await,
    };
    let tags = state.tags.into_iter();
    tags.map(|(k, v)| (k, v.replace(name, "DB"))).collect()
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

/// Every execution of `workflow`'s state machines (an export's is one per target account):
/// name, status and ARN, oldest first.
async fn executions_of(account: &Account, workflow: Workflow) -> Vec<(String, String, String)> {
    let sfn = aws_sdk_sfn::Client::new(&account.config());
    let machines = sfn.list_state_machines().send().await.unwrap();
    let prefix = workflow.state_machine();
    let mut all = Vec::new();
    for machine in machines.state_machines() {
        let name = machine.name();
        if name != prefix && !name.starts_with(&format!("{prefix}-to-")) {
            continue;
        }
        let out = sfn
            .list_executions()
            .state_machine_arn(machine.state_machine_arn())
            .send()
            .await
            .unwrap();
        all.extend(out.executions().iter().rev().map(|e| {
            (
                e.name().to_owned(),
                e.status().as_str().to_owned(),
                e.execution_arn().to_owned(),
            )
        }));
    }
    all
}

async fn executions(account: &Account, workflow: Workflow) -> Vec<(String, String)> {
    executions_of(account, workflow)
        .await
        .into_iter()
        .map(|(name, status, _)| (name, status))
        .collect()
}

/// The ARN of the one execution of `workflow` whose name starts with `prefix`.
async fn execution_arn(account: &Account, workflow: Workflow, prefix: &str) -> String {
    let found: Vec<_> = executions_of(account, workflow)
        .await
        .into_iter()
        .filter(|(name, ..)| name.starts_with(prefix))
        .collect();
    assert_eq!(found.len(), 1, "executions named {prefix}…: {found:?}");
    found[0].2.clone()
}

async fn history_text(account: &Account, execution_prefix: &str, workflow: Workflow) -> String {
    let sfn = aws_sdk_sfn::Client::new(&account.config());
    let out = sfn
        .get_execution_history()
        .execution_arn(execution_arn(account, workflow, execution_prefix).await)
        .send()
        .await
        .unwrap();
    format!("{:?}", out.events())
}

/// Export and import of an instance and a cluster through Step Functions leave the same
/// resources (by kind and role) as through the local engine; no password is in any
/// execution's history.
#[tokio::test]
async fn step_functions_and_local_engines_leave_the_same_inventory() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("states-same");
    mysql_instance(&source, "sfl-i", false).await;
    mysql_instance(&source, "sfs-i", false).await;
    aurora_cluster(&source, "sfl-c", true).await;
    aurora_cluster(&source, "sfs-c", true).await;
    let (src_engine, tgt_engine) = (engine(SOURCE), engine(TARGET));
    let src_engine: Vec<&str> = src_engine.iter().map(String::as_str).collect();
    let tgt_engine: Vec<&str> = tgt_engine.iter().map(String::as_str).collect();
    for (flag, local, states) in [
        ("--db-instance", "sfl-i", "sfs-i"),
        ("--db-cluster", "sfl-c", "sfs-c"),
    ] {
        export(&wd, &source, flag, local, &[]).await.ok();
        import(&wd, &target, local, &[]).await.0.ok();
        let run = export(&wd, &source, flag, states, &src_engine).await.ok();
        assert!(
            run.stderr.contains("execution") && run.stderr.contains(&format!(":{states}-")),
            "the export ran as an execution and said so: {}",
            run.stderr
        );
        let (run, _) = import(&wd, &target, states, &tgt_engine).await;
        let run = run.ok();
        assert!(run.stderr.contains("execution"), "{}", run.stderr);
        for account in [&source, &target] {
            let (a, b) = (
                footprint(account, local).await,
                footprint(account, states).await,
            );
            assert_eq!(
                normalized(&a, local),
                normalized(&b, states),
                "account {}: local {local} vs Step Functions {states}",
                account.id
            );
        }
        // The state machine writes the toolkit's tags, the agent adds the source's own.
        let (a, b) = (
            tags_of(&target, flag, local, local).await,
            tags_of(&target, flag, states, states).await,
        );
        assert_eq!(a, b, "the restored {flag}'s tags: local vs Step Functions");
        assert_eq!(b.get("team").map(String::as_str), Some("payments"));
        assert_eq!(
            b.get("rds-handoff:role").map(String::as_str),
            Some("restored-database")
        );
        assert!(wd.file(&format!("{states}.handoff.json")).exists());
        assert!(wd.file(&format!("{states}.import.json")).exists());
        // The password was set after the execution: never in its history.
        let secret = target
            .secrets()
            .get_secret_value()
            .secret_id(format!("rds-handoff/{states}/master"))
            .send()
            .await
            .unwrap();
        let value: serde_json::Value =
            serde_json::from_str(secret.secret_string().unwrap()).unwrap();
        let password = value["password"].as_str().unwrap();
        let history = history_text(&target, &format!("{states}-"), Workflow::Import).await;
        assert!(history.contains("restoreDB"), "the history is the import's");
        assert!(
            !history.contains(password),
            "the password is in the history"
        );
        assert!(!history.to_lowercase().contains("masteruserpassword"));
    }
}

/// `--detach` returns with the execution's ARN; the same command again attaches to it (no
/// second execution) and finishes the run.
#[tokio::test]
async fn detach_then_the_same_command_attaches() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("states-attach");
    mysql_instance(&source, "sfa-i", false).await;
    let mut detached: Vec<String> = engine(SOURCE);
    detached.push("--detach".into());
    let detached: Vec<&str> = detached.iter().map(String::as_str).collect();
    let run = export(&wd, &source, "--db-instance", "sfa-i", &detached)
        .await
        .ok();
    // The export's state machine is its target's; the execution's name says the run.
    let machine = format!(":execution:rds-handoff-export-to-{TARGET}:sfa-i-");
    assert!(run.stdout.contains(&machine), "{}", run.stdout);
    let name = run_name(&run.stdout, "sfa-i-");
    assert!(
        name.ends_with("-1") && name.len() == "sfa-i-".len() + 8 + 2,
        "{name}"
    );
    assert!(
        !wd.file("sfa-i.handoff.json").exists(),
        "detached: no manifest yet"
    );
    let status = wd
        .run(
            Agent::Src,
            &source,
            &[
                "status",
                "--execution",
                &execution_arn(&source, Workflow::Export, "sfa-i-").await,
            ],
        )
        .await
        .ok();
    assert!(status.stdout.contains("succeeded"), "{}", status.stdout);
    let attached = engine(SOURCE);
    let attached: Vec<&str> = attached.iter().map(String::as_str).collect();
    let run = export(&wd, &source, "--db-instance", "sfa-i", &attached)
        .await
        .ok();
    assert!(run.stderr.contains("attached"), "{}", run.stderr);
    assert!(wd.file("sfa-i.handoff.json").exists());
    let mine: Vec<_> = executions(&source, Workflow::Export)
        .await
        .into_iter()
        .filter(|(name, _)| name.starts_with("sfa-i-"))
        .collect();
    assert_eq!(mine, vec![(name, "SUCCEEDED".to_owned())]);
}

/// The execution name in `text` that starts with `prefix` (up to a space or line end).
fn run_name(text: &str, prefix: &str) -> String {
    let at = text.find(&format!(":{prefix}")).expect("an execution name") + 1;
    text[at..]
        .split(|c: char| c.is_whitespace() || c == '"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Each side's execution role policy allows every action its definitions call, and no RDS
/// action they do not (plus the tagging and KMS use AWS authorizes them against): the
/// target's role can neither snapshot, stop nor share, the source's cannot copy into a
/// database it did not snapshot.
#[test]
fn execution_role_policy_allows_exactly_what_the_definitions_call() {
    let sides = [
        ("source", vec![Workflow::Export, Workflow::Encrypt]),
        ("target", vec![Workflow::Import]),
    ];
    for (side, workflows) in sides {
        let path = format!(
            "{}/../policies/execution-role-{side}.iam.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let policy: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let mut allowed = std::collections::BTreeSet::new();
        for statement in policy["Statement"].as_array().unwrap() {
            match &statement["Action"] {
                serde_json::Value::String(a) => {
                    allowed.insert(a.clone());
                }
                serde_json::Value::Array(list) => {
                    allowed.extend(list.iter().map(|a| a.as_str().unwrap().to_owned()));
                }
                _ => panic!("an Action must be a string or a list"),
            }
        }
        let mut called = std::collections::BTreeSet::new();
        for workflow in workflows {
            called.extend(asl::actions(workflow));
        }
        let missing: Vec<_> = called.difference(&allowed).collect();
        assert!(
            missing.is_empty(),
            "{side}: the definitions call {missing:?}, not allowed"
        );
        let rds_extra: Vec<_> = allowed
            .iter()
            .filter(|a| a.starts_with("rds:") && *a != "rds:AddTagsToResource")
            .filter(|a| !called.contains(*a))
            .collect();
        assert!(
            rds_extra.is_empty(),
            "{side}: allowed but never called: {rds_extra:?}"
        );
        assert!(allowed
            .iter()
            .all(|a| a.starts_with("rds:") || a.starts_with("kms:")));
        if side == "target" {
            for never in [
                "rds:CreateDBSnapshot",
                "rds:StopDBInstance",
                "rds:ModifyDBSnapshotAttribute",
            ] {
                assert!(!allowed.contains(never), "target role allows {never}");
            }
        }
    }
    // The operator's own Step Functions calls; creating or updating with `publish` also
    // needs `states:PublishStateMachineVersion` (AWS's "Authorization for versions").
    let operator: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../policies/step-functions-operator.iam.json"
        ))
        .unwrap(),
    )
    .unwrap();
    let operator = operator.to_string();
    let mut needed: Vec<String> = crate::operator::calls_in_code()
        .into_iter()
        .filter(|c| c.starts_with("states:"))
        .collect();
    assert!(needed.len() >= 5, "{needed:?}");
    needed.push("states:PublishStateMachineVersion".into());
    for action in needed {
        assert!(
            operator.contains(&format!("\"{action}\"")),
            "{action} not in the Step Functions operator policy"
        );
    }
    let trust = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/execution-role.trust.json"
    );
    let trust = std::fs::read_to_string(trust).unwrap();
    assert!(trust.contains("states.amazonaws.com") && trust.contains("aws:SourceAccount"));
}

/// A fleet runs as one execution per kind: a Map over its databases, as wide as
/// `--max-parallel` (within the copy quota), where a database that fails (a terminal status,
/// an error of its copy) ends with its reason and stops no other. Alone, the same failures
/// end the run with exit 5 (terminal status) and 4 (an AWS error). The fleet's import runs
/// as one execution too.
#[tokio::test]
async fn a_fleet_runs_as_one_map_and_each_failure_ends_only_its_database() {
    let source = Account::assume("777777777771").await;
    let target = Account::assume(FLEET_TARGET).await;
    let ids = ["sff-a", "sff-b", "sff-term", "sff-fail"];
    for id in ids {
        mysql_instance(&source, id, false).await;
    }
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds: vec![Hold {
                action: "DescribeDBSnapshots",
                matching: "Identifier=rh-sff-term",
                status: "failed",
                polls: 1000,
            }],
            denials: vec![Denial {
                action: "CopyDBSnapshot",
                matching: "sff-fail".into(),
                code: Some("DBSnapshotNotFound"),
                region: None,
            }],
            copy_time: Some(std::time::Duration::from_secs(2)),
            ..FaultPlan::default()
        },
    )
    .await;
    Emulator::get().route_states_tasks("sff-", &proxy.url);
    let wd = Workdir::new("states-fleet");
    let engine_args = engine(&source.id);
    let mut selection = Vec::new();
    for id in ids {
        selection.extend(["--db-instance", id]);
    }
    let mut extra = vec!["--max-parallel", "2"];
    extra.extend(strs(&engine_args));
    let run = wd
        .run(Agent::Src, &source, &export_args(&selection, &extra))
        .await;
    assert_eq!(run.code, 6, "partial: {}\n{}", run.stdout, run.stderr);
    let results = results(&run);
    let result = |db: &str| &results[db];
    assert_eq!(result("sff-a").0, "exported", "{results:?}");
    assert_eq!(result("sff-b").0, "exported", "{results:?}");
    assert!(
        result("sff-term").2.contains("RdsHandoff.TerminalStatus")
            && result("sff-term")
                .2
                .contains("rh-sff-term-to-555555555555-src is failed"),
        "{results:?}"
    );
    assert!(
        result("sff-fail")
            .2
            .contains("Rds.DbSnapshotNotFoundException"),
        "{results:?}"
    );
    // One execution for the four, as wide as asked; the copies it made kept to it.
    let all = executions(&source, Workflow::Export).await;
    let fleet: Vec<_> = all
        .iter()
        .filter(|(n, _)| n.starts_with("fleet-"))
        .collect();
    assert_eq!(fleet.len(), 1, "{all:?}");
    assert_eq!(fleet[0].1, "FAILED");
    let sfn = aws_sdk_sfn::Client::new(&source.config());
    let arn = execution_arn(&source, Workflow::Export, &fleet[0].0).await;
    let described = sfn
        .describe_execution()
        .execution_arn(&arn)
        .send()
        .await
        .unwrap();
    let input: serde_json::Value = serde_json::from_str(described.input().unwrap()).unwrap();
    assert_eq!(input["maxConcurrency"], 2);
    assert_eq!(input["databases"].as_array().unwrap().len(), 4);
    let copies = proxy.stats.copies();
    assert!(copies.total >= 2 && copies.peak_db <= 2, "{copies:?}");

    // Alone, each failure ends its run with its exit code.
    let alone = |db: &'static str| {
        let mut args: Vec<String> = [
            "export",
            "--db-instance",
            db,
            "--target-account",
            &target.id,
        ]
        .map(str::to_owned)
        .to_vec();
        args.extend(engine(&source.id));
        args
    };
    wd.run(Agent::Src, &source, &strs(&alone("sff-term")))
        .await
        .refused(5, "is failed, a status it does not leave by itself");
    wd.run(Agent::Src, &source, &strs(&alone("sff-fail")))
        .await
        .refused(4, "Rds.DbSnapshotNotFoundException");

    // The fleet's import: one execution for both manifests of the index.
    let index = wd.file("out/rds-handoff-index.json");
    let sha = Index::read(&index).unwrap().1;
    let mut args = import_args(
        &["out/rds-handoff-index.json"],
        &source.id,
        &[&sha],
        &network(&target),
    );
    args.extend(engine(&target.id));
    args.extend(["--output".to_owned(), "json".to_owned()]);
    wd.run(Agent::Tgt, &target, &strs(&args)).await.ok();
    let imports = executions(&target, Workflow::Import).await;
    assert_eq!(imports.len(), 1, "{imports:?}");
    assert!(imports[0].0.starts_with("fleet-") && imports[0].1 == "SUCCEEDED");
    for db in ["sff-a", "sff-b"] {
        assert_eq!(footprint(&target, db).await.databases, vec![db]);
    }
}

/// Every call the executions made (export and encrypt in the source, import in the
/// target, instance and cluster) is allowed by its side's `policies/execution-role-*.iam.json`, judged
/// resource by resource with its conditions by the evaluator that judges the operator
/// policies; and an encrypt through Step Functions leaves what the local engine leaves.
#[tokio::test]
async fn the_execution_role_policy_allows_every_call_the_executions_made() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("states-role");
    mysql_instance(&source, "sfp-i", false).await;
    aurora_cluster(&source, "sfp-c", true).await;
    placed_instance(&source, "sfp-e").await;
    placed_instance(&source, "sfl-e").await;
    let src = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    Emulator::get().route_states_tasks("sfp-", &src.url);
    let src_engine = engine(SOURCE);
    for (flag, db) in [("--db-instance", "sfp-i"), ("--db-cluster", "sfp-c")] {
        export(&wd, &source, flag, db, &strs(&src_engine))
            .await
            .ok();
    }
    let encrypt = |db: &str, extra: &[String]| {
        let mut args: Vec<String> = ["encrypt", "--db-instance", db, "--stop-source"]
            .map(str::to_owned)
            .to_vec();
        args.extend_from_slice(extra);
        args
    };
    wd.run(Agent::Src, &source, &strs(&encrypt("sfp-e", &src_engine)))
        .await
        .ok();
    wd.run(Agent::Src, &source, &strs(&encrypt("sfl-e", &[])))
        .await
        .ok();
    let twin = describe_instance(&source, "sfp-e-encrypted").await;
    let key = key_arn(&source, "alias/rds-handoff/sfp-e-encrypted").await;
    assert_eq!(twin.kms_key_id(), Some(key.as_str()));
    assert_eq!(
        normalized(&footprint(&source, "sfl-e").await, "sfl-e"),
        normalized(&footprint(&source, "sfp-e").await, "sfp-e"),
        "encrypt: local vs Step Functions"
    );
    let twin = |db: &'static str| tags_of(&source, "--db-instance", db, &db[..5]);
    let (local_twin, states_twin) = (twin("sfl-e-encrypted").await, twin("sfp-e-encrypted").await);
    assert_eq!(local_twin, states_twin, "the encrypted twin's tags");
    assert!(states_twin.contains_key("team"), "{states_twin:?}");

    // The import's tasks go through a proxy of their own: one account's calls per proxy.
    let tgt = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    Emulator::get().route_states_tasks("sfp-", &tgt.url);
    let tgt_engine = engine(TARGET);
    for db in ["sfp-i", "sfp-c"] {
        import(&wd, &target, db, &strs(&tgt_engine)).await.0.ok();
    }

    let region = e2e::accounts::REGION;
    let mut src_auth = Authorizer::new(SOURCE, region);
    src_auth.keys = keys_of(&source).await;
    let (src_n, src_denied) = denied(
        "execution-role-source.iam.json",
        &mut src_auth,
        &src,
        Vec::new(),
    );
    let mut tgt_auth = Authorizer::new(TARGET, region);
    tgt_auth.keys = keys_of(&target).await;
    let mut cross = Vec::new();
    for db in ["sfp-i", "sfp-c"] {
        let source_key = manifest(&wd, db).snapshot.kms_key_arn.unwrap().to_string();
        cross.extend(tgt_auth.through("rds", &source_key));
    }
    let (tgt_n, tgt_denied) = denied("execution-role-target.iam.json", &mut tgt_auth, &tgt, cross);
    let expected = [
        (
            &src,
            &[
                "rds:CreateDBSnapshot",
                "rds:CopyDBClusterSnapshot",
                "rds:StopDBInstance",
                "rds:RestoreDBInstanceFromDBSnapshot",
                "rds:ModifyDBSnapshotAttribute",
            ][..],
        ),
        (
            &tgt,
            &[
                "rds:CopyDBSnapshot",
                "rds:RestoreDBClusterFromSnapshot",
                "rds:CreateDBInstance",
            ][..],
        ),
    ];
    for (proxy, actions) in expected {
        let seen = proxy.stats.actions();
        let missing: Vec<_> = actions.iter().filter(|a| !seen.contains(**a)).collect();
        assert!(missing.is_empty(), "{missing:?} not in {seen:?}");
    }
    assert!(
        src_denied.is_empty() && tgt_denied.is_empty(),
        "the execution role's policy refuses, source: {src_denied:#?}, target: {tgt_denied:#?}"
    );
    println!("execution role policy: {src_n} authorizations in the source, {tgt_n} in the target, all allowed");
}

/// A fleet with `--detach`: every database says the one execution that goes on; the same
/// command again attaches to it and writes the manifests and the index, starting nothing.
#[tokio::test]
async fn a_detached_fleet_names_its_execution_and_the_same_command_finishes_it() {
    let source = Account::assume("777777777773").await;
    for id in ["sfd-a", "sfd-b"] {
        mysql_instance(&source, id, false).await;
    }
    let wd = Workdir::new("states-fleet-detach");
    let engine_args = engine(&source.id);
    let args = export_args(&["--all"], &strs(&engine_args));
    let mut detached = args.clone();
    detached.push("--detach");
    let run = wd.run(Agent::Src, &source, &detached).await.ok();
    let done = summary(&run);
    let outcomes = done["databases"].as_array().unwrap();
    assert_eq!(outcomes.len(), 2, "{done}");
    assert!(outcomes.iter().all(|o| o["result"] == "detached"), "{done}");
    assert_eq!(outcomes[0]["execution"], outcomes[1]["execution"]);
    assert!(!wd.file("out/sfd-a.handoff.json").exists());

    let run = wd.run(Agent::Src, &source, &args).await.ok();
    assert!(
        run.stdout.contains("attached") || run.stderr.contains("attached"),
        "{}",
        run.stdout
    );
    assert!(
        wd.file("out/sfd-a.handoff.json").exists() && wd.file("out/sfd-b.handoff.json").exists()
    );
    assert!(wd.file("out/rds-handoff-index.json").exists());
    let all = executions(&source, Workflow::Export).await;
    assert_eq!(all.len(), 1, "{all:?}");
    assert!(
        all[0].0.starts_with("fleet-") && all[0].1 == "SUCCEEDED",
        "{all:?}"
    );
}

/// An execution is attached to only by its own run: an export of the same database to a
/// second target runs on that target's state machine (the first one's Share can add no other
/// account), and a re-import after a rehearsal whose database was removed starts a new
/// attempt instead of finding the earlier, succeeded execution and a database that is gone.
#[tokio::test]
async fn an_execution_is_attached_to_only_by_its_own_run() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("states-own-run");
    let third = Workdir::new("states-own-run-third");
    mysql_instance(&source, "sfo-i", false).await;
    let src_engine = engine(SOURCE);
    export(&wd, &source, "--db-instance", "sfo-i", &strs(&src_engine))
        .await
        .ok();
    let mut args = vec![
        "export",
        "--db-instance",
        "sfo-i",
        "--target-account",
        THIRD,
    ];
    args.extend(strs(&src_engine));
    let run = third.run(Agent::Src, &source, &args).await.ok();
    assert!(
        run.stderr
            .contains(&format!("rds-handoff-export-to-{THIRD}:sfo-i-")),
        "{}",
        run.stderr
    );
    // A create with optional parameters (the copy's key) is a Choice then a Task: its
    // start is said as the local engine says it.
    assert!(
        run.stderr
            .lines()
            .any(|l| l.starts_with("copy") && l.contains("started")),
        "{}",
        run.stderr
    );
    let shared = format!("rh-sfo-i-to-{THIRD}");
    let accounts = restore_attribute(&source, DbKind::Instance, &shared).await;
    assert_eq!(accounts, vec![THIRD.to_owned()]);
    let exports = executions(&source, Workflow::Export).await;
    assert_eq!(exports.len(), 2, "one execution per target: {exports:?}");

    // Whoever may start the first target's state machine cannot share the copy made for
    // the third account with it: the Share checks the copy's target tag first.
    let sfn = aws_sdk_sfn::Client::new(&source.config());
    let machine = format!(
        "arn:aws:states:{}:{SOURCE}:stateMachine:rds-handoff-export-to-{TARGET}",
        e2e::accounts::REGION
    );
    let share = serde_json::json!({ "id": shared, "request": { "DbSnapshotIdentifier": shared }, "marks": {} });
    let input = serde_json::json!({ "maxConcurrency": 1, "databases": [{
        "database": "sfo-i", "kind": "instance",
        "poll": { "first": 1, "max": 10, "rounds": 5 },
        "steps": { "Share": share },
    }]});
    let started = sfn
        .start_execution()
        .state_machine_arn(&machine)
        .name("planted-share")
        .input(input.to_string())
        .send()
        .await
        .unwrap();
    let ended = loop {
        let d = sfn
            .describe_execution()
            .execution_arn(started.execution_arn())
            .send()
            .await
            .unwrap();
        if d.status().as_str() != "RUNNING" {
            break d;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(ended.status().as_str(), "FAILED", "{ended:?}");
    assert_eq!(
        ended.error(),
        Some("RdsHandoff.NotForThisTarget"),
        "{ended:?}"
    );
    let accounts = restore_attribute(&source, DbKind::Instance, &shared).await;
    assert_eq!(accounts, vec![THIRD.to_owned()], "shared with no one else");

    // A rehearsal: imported, then its database removed and its report with it.
    let tgt_engine = engine(TARGET);
    import(&wd, &target, "sfo-i", &strs(&tgt_engine))
        .await
        .0
        .ok();
    target
        .rds()
        .delete_db_instance()
        .db_instance_identifier("sfo-i")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    for file in ["sfo-i.import.json", "sfo-i.import.state.json"] {
        let _ = std::fs::remove_file(wd.file(file));
    }
    import(&wd, &target, "sfo-i", &strs(&tgt_engine))
        .await
        .0
        .ok();
    let imports = executions(&target, Workflow::Import).await;
    assert_eq!(imports.len(), 2, "{imports:?}");
    assert!(
        imports.iter().all(|(_, status)| status == "SUCCEEDED") && imports[1].0.ends_with("-2"),
        "{imports:?}"
    );
    let restored = describe_instance(&target, "sfo-i").await;
    assert_eq!(restored.db_instance_status(), Some("available"));
}
