//! `--engine step-functions`: the same steps as a Step Functions execution in the account
//! (moto executes it, with the gaps `moto/states_shim.py` closes), compared with the local
//! engine's result.

use e2e::fixtures::{aurora_cluster, footprint, mysql_instance, Footprint};
use e2e::{Account, Agent, Workdir, SOURCE, TARGET};
use rds_handoff::workflow::{asl, Workflow};

use crate::common::{accounts, export, import};

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

async fn executions(account: &Account, workflow: Workflow) -> Vec<(String, String)> {
    let sfn = aws_sdk_sfn::Client::new(&account.config());
    let arn = format!(
        "arn:aws:states:us-east-1:{}:stateMachine:{}",
        account.id,
        workflow.state_machine()
    );
    let out = sfn
        .list_executions()
        .state_machine_arn(arn)
        .send()
        .await
        .unwrap();
    out.executions()
        .iter()
        .map(|e| (e.name().to_owned(), e.status().as_str().to_owned()))
        .collect()
}

async fn history_text(account: &Account, execution_name: &str, workflow: Workflow) -> String {
    let sfn = aws_sdk_sfn::Client::new(&account.config());
    let arn = format!(
        "arn:aws:states:us-east-1:{}:execution:{}:{execution_name}",
        account.id,
        workflow.state_machine()
    );
    let out = sfn
        .get_execution_history()
        .execution_arn(arn)
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
            run.stderr.contains("execution") && run.stderr.contains(&format!("{states}-1")),
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
        let history = history_text(&target, &format!("{states}-1"), Workflow::Import).await;
        assert!(history.contains("restoreDB"), "the history is the import's");
        assert!(
            !history.contains(password),
            "the password is in the history"
        );
        assert!(!history.to_lowercase().contains("masteruserpassword"));
    }
}

/// `--detach` returns with the execution's ARN; the same command again attaches to it (no
/// second execution) and finishes the run; a failed execution ends the run with its error.
#[tokio::test]
async fn detach_then_the_same_command_attaches_and_a_failure_names_its_error() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("states-attach");
    mysql_instance(&source, "sfa-i", false).await;
    let mut detached: Vec<String> = engine(SOURCE);
    detached.push("--detach".into());
    let detached: Vec<&str> = detached.iter().map(String::as_str).collect();
    let run = export(&wd, &source, "--db-instance", "sfa-i", &detached)
        .await
        .ok();
    assert!(
        run.stdout.contains(":execution:rds-handoff-export:sfa-i-1"),
        "{}",
        run.stdout
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
                &format!("arn:aws:states:us-east-1:{SOURCE}:execution:rds-handoff-export:sfa-i-1"),
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
    assert_eq!(mine, vec![("sfa-i-1".to_owned(), "SUCCEEDED".to_owned())]);

    // The source stops sharing before the import: the execution's copy fails, and the
    // run ends with the execution's error, not a hang.
    unshare(&source, "sfa-i").await;
    let tgt = engine(TARGET);
    let tgt: Vec<&str> = tgt.iter().map(String::as_str).collect();
    let (run, _) = import(&wd, &target, "sfa-i", &tgt).await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("Step Functions execution")
            || run.stderr.contains("not shared")
            || run.stderr.contains("NotFound"),
        "{}",
        run.stderr
    );
}

async fn unshare(source: &Account, db: &str) {
    let rds = source.rds();
    let snaps = rds.describe_db_snapshots().send().await.unwrap();
    for s in snaps.db_snapshots() {
        let name = s.db_snapshot_identifier().unwrap_or_default();
        if name.contains(db) {
            let _ = rds
                .modify_db_snapshot_attribute()
                .db_snapshot_identifier(name)
                .attribute_name("restore")
                .values_to_remove(TARGET)
                .send()
                .await;
        }
    }
}

/// The execution role's policy allows every action the generated definitions call, and
/// no RDS action they do not (plus the tagging and KMS use AWS authorizes them against).
#[test]
fn execution_role_policy_allows_exactly_what_the_definitions_call() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/execution-role.iam.json"
    );
    let policy: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
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
    for workflow in Workflow::ALL {
        called.extend(asl::actions(workflow));
    }
    let missing: Vec<_> = called.difference(&allowed).collect();
    assert!(
        missing.is_empty(),
        "the definitions call {missing:?}, not allowed"
    );
    let rds_extra: Vec<_> = allowed
        .iter()
        .filter(|a| a.starts_with("rds:") && *a != "rds:AddTagsToResource")
        .filter(|a| !called.contains(*a))
        .collect();
    assert!(
        rds_extra.is_empty(),
        "allowed but never called: {rds_extra:?}"
    );
    assert!(allowed
        .iter()
        .all(|a| a.starts_with("rds:") || a.starts_with("kms:")));
    let trust = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../policies/execution-role.trust.json"
    );
    let trust = std::fs::read_to_string(trust).unwrap();
    assert!(trust.contains("states.amazonaws.com") && trust.contains("aws:SourceAccount"));
}
