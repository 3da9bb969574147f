//! Faults, answers lost after the work was done, held statuses, kills at every step, and
//! secrets that must never show.
//! Figures (requests, faults, kill points) are printed; run with `--nocapture` to see them.

use std::time::Duration;

use e2e::fixtures::{
    aurora_cluster, aurora_cluster_default, cluster_state, footprint, instance_state, key_arn,
    key_policy, mysql_instance, network,
};
use e2e::proxy::{FaultPlan, Hold, Loss, LostAnswer, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE, TARGET};
use rds_handoff::policy::{KeyPolicySpec, Peer};

use crate::common::accounts;

/// Runs an agent with its AWS endpoint pointed at `proxy`.
fn export_args<'a>(flag: &'a str, db: &'a str) -> Vec<&'a str> {
    vec!["export", flag, db, "--target-account", TARGET]
}

/// `tgt-agent import` of `<db>.handoff.json` in `wd`, with its SHA-256 as it is now (once
/// the export has written it).
fn import_args(wd: &Workdir, db: &str, net: &e2e::fixtures::Network) -> Vec<String> {
    let manifest = format!("{db}.handoff.json");
    [
        "import",
        &manifest,
        "--source-account",
        e2e::SOURCE,
        "--manifest-sha256",
        &e2e::agents::sha_of(wd.path(), &manifest),
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The final state every successful handoff of `db` must reach, however it got there: at
/// the source one snapshot, shared with exactly the target, under one key whose policy is
/// the builder's, and a manifest in `wd` naming both; at the target (once `imported`) the
/// database, one key, one secret and no leftover copy.
pub(crate) async fn assert_final_state(
    wd: &Workdir,
    source: &Account,
    target: &Account,
    db: &str,
    cluster: bool,
    imported: bool,
) {
    let src = footprint(source, db).await;
    // A handoff into `source`'s region from another (`export --target-region`) has names of
    // its own.
    let from = match source.region {
        e2e::accounts::REGION => String::new(),
        _ => format!("-from-{}", e2e::accounts::REGION),
    };
    let shared = format!("rh-{db}-to-{TARGET}{from}");
    assert_eq!(
        src.snapshots,
        vec![shared.clone()],
        "source snapshots of {db}"
    );
    assert_eq!(src.keys.len(), 1, "one source key for {db}: {:?}", src.keys);
    let (shared_arn, mut restore) = shared_snapshot(source, &shared, cluster).await;
    // AWS keeps an attribute's values as a set; moto appends, so there a share retried after
    // its answer was lost lists the target twice.
    restore.sort();
    restore.dedup();
    assert_eq!(
        restore,
        vec![TARGET.to_owned()],
        "{shared} is shared with exactly the target"
    );
    let key = key_arn(source, &format!("alias/rds-handoff/{db}{from}")).await;
    assert!(
        key.ends_with(&format!("/{}", src.keys[0])),
        "the alias of {db} names its one key {}: {key}",
        src.keys[0]
    );
    let expected = KeyPolicySpec::source(
        "aws",
        source.region.parse().unwrap(),
        SOURCE.parse().unwrap(),
        Peer {
            account: TARGET.parse().unwrap(),
            principal: None,
        },
    )
    .made_by(&source.role_arn)
    .build();
    assert_eq!(
        key_policy(source, &key).await,
        expected,
        "the policy of {db}'s key is the builder's"
    );
    let path = wd.file(&format!("{db}.handoff.json"));
    assert!(path.exists(), "the manifest {} exists", path.display());
    let m = crate::common::manifest(wd, db);
    assert_eq!(
        m.snapshot.arn.as_str(),
        shared_arn.as_str(),
        "the manifest of {db} names the shared snapshot"
    );
    assert_eq!(
        m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()),
        Some(key.as_str()),
        "the manifest of {db} names its key"
    );
    if !imported {
        return;
    }
    let tgt = footprint(target, db).await;
    let expected_dbs = if cluster {
        vec![db.to_owned(), format!("{db}-writer")]
    } else {
        vec![db.to_owned()]
    };
    assert_eq!(tgt.databases, expected_dbs, "target databases of {db}");
    assert_eq!(tgt.keys.len(), 1, "one target key for {db}");
    assert_eq!(tgt.secrets, vec![format!("rds-handoff/{db}/master")]);
    assert!(
        tgt.snapshots.is_empty(),
        "no leftover copy for {db}: {:?}",
        tgt.snapshots
    );
}

/// The ARN of the source's snapshot `id` (a cluster snapshot if `cluster`), and the
/// accounts its `restore` attribute shares it with.
async fn shared_snapshot(source: &Account, id: &str, cluster: bool) -> (String, Vec<String>) {
    let rds = source.rds();
    if cluster {
        let found = rds
            .describe_db_cluster_snapshots()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe cluster snapshot {id}: {e:?}"));
        let arn = found
            .db_cluster_snapshots()
            .first()
            .and_then(|s| s.db_cluster_snapshot_arn())
            .unwrap_or_default()
            .to_owned();
        let attrs = rds
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe cluster snapshot attributes {id}: {e:?}"));
        let restore: Vec<String> = attrs
            .db_cluster_snapshot_attributes_result()
            .into_iter()
            .flat_map(|r| r.db_cluster_snapshot_attributes())
            .filter(|a| a.attribute_name() == Some("restore"))
            .flat_map(|a| a.attribute_values().iter().cloned())
            .collect();
        (arn, restore)
    } else {
        let found = rds
            .describe_db_snapshots()
            .db_snapshot_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe snapshot {id}: {e:?}"));
        let arn = found
            .db_snapshots()
            .first()
            .and_then(|s| s.db_snapshot_arn())
            .unwrap_or_default()
            .to_owned();
        let attrs = rds
            .describe_db_snapshot_attributes()
            .db_snapshot_identifier(id)
            .send()
            .await
            .unwrap_or_else(|e| panic!("describe snapshot attributes {id}: {e:?}"));
        let restore: Vec<String> = attrs
            .db_snapshot_attributes_result()
            .into_iter()
            .flat_map(|r| r.db_snapshot_attributes())
            .filter(|a| a.attribute_name() == Some("restore"))
            .flat_map(|a| a.attribute_values().iter().cloned())
            .collect();
        (arn, restore)
    }
}

async fn faulted_handoff(seed: u64, cluster: bool) -> (usize, usize) {
    let (source, target) = accounts().await;
    let db = format!("flt-{}{seed}", if cluster { "c" } else { "i" });
    let wd = Workdir::new(&db);
    let flag = if cluster {
        "--db-cluster"
    } else {
        "--db-instance"
    };
    if cluster {
        aurora_cluster(&source, &db, true).await;
    } else {
        mysql_instance(&source, &db, false).await;
    }
    let before = if cluster {
        e2e::fixtures::cluster_state(&source, &db).await
    } else {
        instance_state(&source, &db).await
    };
    let net = network(&target);
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            seed,
            rate: 0.2,
            ..FaultPlan::default()
        },
    )
    .await;
    wd.via(&proxy, Agent::Src, &source, &export_args(flag, &db))
        .await
        .ok();
    let args = import_args(&wd, &db, &net);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    wd.via(&proxy, Agent::Tgt, &target, &args).await.ok();
    assert_final_state(&wd, &source, &target, &db, cluster, true).await;
    let after = if cluster {
        e2e::fixtures::cluster_state(&source, &db).await
    } else {
        instance_state(&source, &db).await
    };
    assert_eq!(after, before, "the source database is unchanged");
    let faults = proxy.stats.faults.lock().unwrap().clone();
    println!(
        "faults: seed {seed} {}: {} requests, {} faulted {faults:?}",
        if cluster { "cluster" } else { "instance" },
        proxy.requests(),
        proxy.faulted()
    );
    assert!(proxy.faulted() > 0, "the seed must fault something");
    (proxy.requests(), proxy.faulted())
}

#[tokio::test]
async fn instance_handoff_survives_twenty_percent_faults() {
    for seed in [11, 23, 37] {
        faulted_handoff(seed, false).await;
    }
}

#[tokio::test]
async fn cluster_handoff_survives_twenty_percent_faults() {
    for seed in [5, 19, 42] {
        faulted_handoff(seed, true).await;
    }
}

/// A handoff of a fresh database (an Aurora cluster if `cluster`) in which the first
/// `action` request of `side`'s agent is carried out and its answer lost (`how`), as when
/// AWS did the work and the answer never came back; the SDK retries it. The other side runs
/// without faults. It must end as every handoff ends: one of everything on both sides.
async fn lost_answer_handoff(side: Agent, action: &'static str, how: Loss, cluster: bool) {
    let (source, target) = accounts().await;
    let at_source = matches!(side, Agent::Src);
    let db = format!(
        "la{}{}-{}",
        if cluster { "c" } else { "" },
        if at_source { "s" } else { "t" },
        action.to_ascii_lowercase()
    );
    let wd = Workdir::new(&db);
    let flag = if cluster {
        "--db-cluster"
    } else {
        "--db-instance"
    };
    if cluster {
        aurora_cluster(&source, &db, true).await;
    } else {
        mysql_instance(&source, &db, false).await;
    }
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            lost_answers: vec![LostAnswer {
                action,
                times: 1,
                how,
            }],
            ..FaultPlan::default()
        },
    )
    .await;
    let export = export_args(flag, &db);
    let net = network(&target);
    let import = || import_args(&wd, &db, &net);
    if at_source {
        run_losing(&wd, &proxy, Agent::Src, &source, &export, action).await;
        let import = import();
        let import: Vec<&str> = import.iter().map(String::as_str).collect();
        wd.run(Agent::Tgt, &target, &import).await.ok();
    } else {
        wd.run(Agent::Src, &source, &export).await.ok();
        let import = import();
        let import: Vec<&str> = import.iter().map(String::as_str).collect();
        run_losing(&wd, &proxy, Agent::Tgt, &target, &import, action).await;
    }
    assert_eq!(
        proxy.lost(),
        1,
        "{action}: its answer must be lost exactly once ({how:?}); {} sent {:?}",
        side.name(),
        proxy.stats.actions()
    );
    assert_final_state(&wd, &source, &target, &db, cluster, true).await;
    println!(
        "lost answers: {} {action} ({how:?}): {} requests, one of everything on both sides",
        side.name(),
        proxy.requests()
    );
}

/// Runs `agent args…` through `proxy`, which loses an answer: the run succeeds, or it stops
/// with an error (never a panic) and the same command, without the loss, then succeeds.
async fn run_losing(
    wd: &Workdir,
    proxy: &Proxy,
    agent: Agent,
    account: &Account,
    args: &[&str],
    action: &str,
) {
    let run = wd.via(proxy, agent, account, args).await;
    assert!(
        !run.stderr.contains("panicked"),
        "{action}: {} panicked after a lost answer:\n{}",
        agent.name(),
        run.stderr
    );
    if run.code == 0 {
        return;
    }
    println!(
        "lost answers: {} stopped (exit {}) after the lost {action} answer; re-running",
        agent.name(),
        run.code
    );
    let again = wd.run(agent, account, args).await;
    assert_eq!(
        again.code,
        0,
        "{action}: {} failed after a lost answer, and the same command failed again\n--- first run, stderr\n{}\n--- second run, stdout\n{}\n--- second run, stderr\n{}",
        agent.name(),
        run.stderr,
        again.stdout,
        again.stderr
    );
}

// Every creating call of a handoff, its first answer lost after it was carried out. KMS's
// `CreateKey` has no idempotency token: a plain SDK retry makes a second key. (`PutKeyPolicy`
// is not among them: a fresh handoff makes its keys with their policies, and only puts a
// policy on a key it reuses.)

#[tokio::test]
async fn a_lost_create_key_answer_at_the_source_makes_one_key() {
    lost_answer_handoff(Agent::Src, "CreateKey", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_create_alias_answer_at_the_source_makes_one_alias() {
    lost_answer_handoff(Agent::Src, "CreateAlias", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_create_db_snapshot_answer_makes_one_snapshot() {
    lost_answer_handoff(Agent::Src, "CreateDBSnapshot", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_copy_db_snapshot_answer_at_the_source_makes_one_copy() {
    lost_answer_handoff(Agent::Src, "CopyDBSnapshot", Loss::ServerError, false).await;
}

/// The one timeout: the agent waits out its read timeout (60 s) before the retry.
#[tokio::test]
async fn a_share_whose_answer_timed_out_shares_once() {
    lost_answer_handoff(
        Agent::Src,
        "ModifyDBSnapshotAttribute",
        Loss::Timeout,
        false,
    )
    .await;
}

#[tokio::test]
async fn a_lost_delete_db_snapshot_answer_at_the_source_leaves_one_snapshot() {
    lost_answer_handoff(Agent::Src, "DeleteDBSnapshot", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_reset_create_key_at_the_target_makes_one_key() {
    lost_answer_handoff(Agent::Tgt, "CreateKey", Loss::Reset, false).await;
}

#[tokio::test]
async fn a_lost_create_alias_answer_at_the_target_makes_one_alias() {
    lost_answer_handoff(Agent::Tgt, "CreateAlias", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_copy_db_snapshot_answer_at_the_target_makes_one_copy() {
    lost_answer_handoff(Agent::Tgt, "CopyDBSnapshot", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_restore_answer_makes_one_database() {
    lost_answer_handoff(
        Agent::Tgt,
        "RestoreDBInstanceFromDBSnapshot",
        Loss::ServerError,
        false,
    )
    .await;
}

#[tokio::test]
async fn a_reset_create_secret_makes_one_secret() {
    lost_answer_handoff(Agent::Tgt, "CreateSecret", Loss::Reset, false).await;
}

#[tokio::test]
async fn a_lost_modify_db_instance_answer_sets_the_password_once() {
    lost_answer_handoff(Agent::Tgt, "ModifyDBInstance", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_delete_db_snapshot_answer_at_the_target_leaves_no_copy() {
    lost_answer_handoff(Agent::Tgt, "DeleteDBSnapshot", Loss::ServerError, false).await;
}

#[tokio::test]
async fn a_lost_create_db_cluster_snapshot_answer_makes_one_snapshot() {
    lost_answer_handoff(
        Agent::Src,
        "CreateDBClusterSnapshot",
        Loss::ServerError,
        true,
    )
    .await;
}

#[tokio::test]
async fn a_lost_cluster_restore_answer_makes_one_cluster() {
    lost_answer_handoff(
        Agent::Tgt,
        "RestoreDBClusterFromSnapshot",
        Loss::ServerError,
        true,
    )
    .await;
}

#[tokio::test]
async fn a_reset_writer_create_makes_one_writer() {
    lost_answer_handoff(Agent::Tgt, "CreateDBInstance", Loss::Reset, true).await;
}

#[tokio::test]
async fn waits_show_progress_through_held_statuses() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("hold-ok");
    mysql_instance(&source, "hold-ok", false).await;
    let holds = vec![
        Hold {
            action: "DescribeDBSnapshots",
            matching: "-src",
            status: "creating",
            polls: 2,
        },
        Hold {
            action: "DescribeDBSnapshots",
            matching: "Identifier=rh-",
            status: "copying",
            polls: 2,
        },
    ];
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds,
            ..FaultPlan::default()
        },
    )
    .await;
    let run = wd
        .via(
            &proxy,
            Agent::Src,
            &source,
            &export_args("--db-instance", "hold-ok"),
        )
        .await
        .ok();
    assert!(
        run.stderr.contains(
            "s] snapshot: DB instance snapshot rh-hold-ok-to-222222222222-src (creating)"
        ),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("(copying)"), "{}", run.stderr);
    let net = network(&target);
    let args = import_args(&wd, "hold-ok", &net);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let holds = vec![
        Hold {
            action: "DescribeDBInstances",
            matching: "hold-ok",
            status: "creating",
            polls: 2,
        },
        Hold {
            action: "DescribeDBInstances",
            matching: "hold-ok",
            status: "modifying",
            polls: 1,
        },
    ];
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds,
            ..FaultPlan::default()
        },
    )
    .await;
    let run = wd.via(&proxy, Agent::Tgt, &target, &args).await.ok();
    assert!(
        run.stderr
            .contains("restore: DB instance hold-ok (creating)")
            || run.stderr.contains("(modifying)"),
        "{}",
        run.stderr
    );
    assert_final_state(&wd, &source, &target, "hold-ok", false, true).await;
}

#[tokio::test]
async fn terminal_status_and_wait_timeout_fail_fast_and_resume() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("hold-bad");
    mysql_instance(&source, "hold-bad", false).await;
    let failed = vec![Hold {
        action: "DescribeDBSnapshots",
        matching: "Identifier=rh-",
        status: "failed",
        polls: 1000,
    }];
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds: failed,
            ..FaultPlan::default()
        },
    )
    .await;
    let run = wd
        .via(
            &proxy,
            Agent::Src,
            &source,
            &export_args("--db-instance", "hold-bad"),
        )
        .await;
    run.refused(5, "is `failed`, a status it will not leave by itself");

    let copying = vec![Hold {
        action: "DescribeDBSnapshots",
        matching: "Identifier=rh-",
        status: "copying",
        polls: 1000,
    }];
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds: copying,
            ..FaultPlan::default()
        },
    )
    .await;
    let mut args = export_args("--db-instance", "hold-bad");
    args.extend(["--wait-timeout", "3s"]);
    let started = std::time::Instant::now();
    let run = wd
        .via(&proxy, Agent::Src, &source, &args)
        .await
        .refused(5, "gave up waiting");
    assert!(
        run.stderr.contains("re-run the same command"),
        "{}",
        run.stderr
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // Nothing was undone; without the hold, the same command finishes.
    wd.run(
        Agent::Src,
        &source,
        &export_args("--db-instance", "hold-bad"),
    )
    .await
    .ok();
    let left = footprint(&source, "hold-bad").await;
    assert_eq!(left.snapshots, vec!["rh-hold-bad-to-222222222222"]);
    assert_eq!(left.keys.len(), 1);
}

/// Waits until `proxy` has seen a request for `action` from the agent `child`, at most
/// `within`. Panics, naming what it saw, if the agent exits first or the time runs out (the
/// agent is killed then, so nothing is left running): a wait that never ends would hang CI.
pub(crate) async fn wait_for_request(
    proxy: &Proxy,
    child: &mut tokio::process::Child,
    action: &str,
    within: Duration,
) {
    let deadline = std::time::Instant::now() + within;
    while !proxy.stats.saw(action) {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the agent exited ({status}) before sending {action}; it sent {:?}",
                proxy.stats.actions()
            );
        }
        if std::time::Instant::now() >= deadline {
            child.start_kill().ok();
            panic!(
                "the agent sent no {action} within {within:?}; it sent {:?}",
                proxy.stats.actions()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Kills `agent` with SIGKILL when the proxy has forwarded request `k` (its response never
/// arrives). Returns false when the run finished before request `k`.
pub(crate) async fn kill_at(
    wd: &Workdir,
    account: &Account,
    agent: Agent,
    args: &[impl AsRef<std::ffi::OsStr>],
    k: usize,
    holds: Vec<Hold>,
) -> bool {
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            stop_at: Some(k),
            holds,
            ..FaultPlan::default()
        },
    )
    .await;
    let mut child = wd
        .command(agent, account, args)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    tokio::select! {
        _ = proxy.stopped.notified() => {
            child.kill().await.unwrap();
            true
        }
        _ = child.wait() => false,
    }
}

pub(crate) async fn count_requests(
    wd: &Workdir,
    account: &Account,
    agent: Agent,
    args: &[&str],
    holds: Vec<Hold>,
) -> usize {
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds,
            ..FaultPlan::default()
        },
    )
    .await;
    wd.via(&proxy, agent, account, args).await.ok();
    proxy.requests()
}

/// Holds the toolkit's own snapshots (`rh-…`) at `copying` and the databases it restores
/// (requests naming `restored`) at `creating`, two polls each. The source database is never
/// held: preflight would refuse it.
pub(crate) fn wait_holds(restored: &'static str) -> Vec<Hold> {
    vec![
        Hold {
            action: "DescribeDBSnapshots",
            matching: "Identifier=rh-",
            status: "copying",
            polls: 2,
        },
        Hold {
            action: "DescribeDBInstances",
            matching: restored,
            status: "creating",
            polls: 2,
        },
    ]
}

#[tokio::test]
async fn export_killed_at_every_request_resumes_to_the_same_state() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("kill-export");
    mysql_instance(&source, "kex-base", false).await;
    let total = count_requests(
        &wd,
        &source,
        Agent::Src,
        &export_args("--db-instance", "kex-base"),
        wait_holds("Identifier=kim-"),
    )
    .await;
    for k in 1..=total {
        let db = format!("kex-{k}");
        mysql_instance(&source, &db, false).await;
        let args = export_args("--db-instance", &db);
        assert!(
            kill_at(
                &wd,
                &source,
                Agent::Src,
                &args,
                k,
                wait_holds("Identifier=kim-")
            )
            .await,
            "request {k} of {total} was reached"
        );
        let run = wd.run(Agent::Src, &source, &args).await.ok();
        assert!(
            !run.stdout.contains("already exported") || k == total,
            "k={k}"
        );
        assert_final_state(&wd, &source, &target, &db, false, false).await;
    }
    println!("kills: src-agent export killed at each of {total} requests (waits included), each resumed to the same state");
}

/// A cluster under an AWS owned key (`sse-rds`) goes through a temporary cluster: killed at
/// each request, the same command finishes with one shared snapshot, one key, and no
/// temporary cluster left.
#[tokio::test]
async fn aws_owned_key_cluster_export_killed_at_every_request_resumes_to_the_same_state() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("kill-sse");
    let holds = || {
        vec![
            Hold {
                action: "DescribeDBClusterSnapshots",
                matching: "Identifier=rh-",
                status: "creating",
                polls: 2,
            },
            Hold {
                action: "DescribeDBClusters",
                matching: "-tmp",
                status: "creating",
                polls: 2,
            },
        ]
    };
    aurora_cluster_default(&source, "ksse-base").await;
    let total = count_requests(
        &wd,
        &source,
        Agent::Src,
        &export_args("--db-cluster", "ksse-base"),
        holds(),
    )
    .await;
    for k in 1..=total {
        let db = format!("ksse-{k}");
        aurora_cluster_default(&source, &db).await;
        let args = export_args("--db-cluster", &db);
        assert!(
            kill_at(&wd, &source, Agent::Src, &args, k, holds()).await,
            "request {k} of {total} was reached"
        );
        wd.run(Agent::Src, &source, &args).await.ok();
        assert_final_state(&wd, &source, &target, &db, true, false).await;
        assert_eq!(
            footprint(&source, &db).await.databases,
            vec![db.clone(), format!("{db}-1")],
            "k={k}: the temporary cluster is gone"
        );
        let m = crate::common::manifest(&wd, &db);
        assert_eq!(
            m.snapshot.source_encryption,
            Some(rds_handoff::base::vocabulary::Encryption::AwsOwnedKey),
            "k={k}"
        );
        let key = e2e::fixtures::key_arn(&source, &format!("alias/rds-handoff/{db}")).await;
        assert_eq!(
            m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()),
            Some(key.as_str()),
            "k={k}: shared under the toolkit's key"
        );
    }
    println!("kills: src-agent export of an sse-rds cluster killed at each of {total} requests (waits included), each resumed to the same state");
}

#[tokio::test]
async fn encrypt_killed_at_every_request_resumes_to_the_same_state() {
    let source = Account::assume(e2e::SOURCE).await;
    let wd = Workdir::new("kill-encrypt");
    let holds = || wait_holds("-encrypted");
    let args = |db: &str| -> Vec<String> {
        ["encrypt", "--db-instance", db]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    mysql_instance(&source, "ken-base", false).await;
    let base = args("ken-base");
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let total = count_requests(&wd, &source, Agent::Src, &base, holds()).await;
    for k in 1..=total {
        let db = format!("ken-{k}");
        mysql_instance(&source, &db, false).await;
        let before = instance_state(&source, &db).await;
        let owned = args(&db);
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        assert!(
            kill_at(&wd, &source, Agent::Src, &args, k, holds()).await,
            "request {k} of {total} was reached"
        );
        wd.run(Agent::Src, &source, &args).await.ok();
        let left = footprint(&source, &db).await;
        assert_eq!(
            left.databases,
            vec![db.clone(), format!("{db}-encrypted")],
            "k={k}"
        );
        assert!(left.snapshots.is_empty(), "k={k}: {:?}", left.snapshots);
        assert_eq!(left.keys.len(), 1, "k={k}: one key");
        let twin = instance_state(&source, &format!("{db}-encrypted")).await;
        assert!(twin.encrypted, "k={k}");
        assert_eq!(
            instance_state(&source, &db).await,
            before,
            "k={k}: original unchanged"
        );
    }
    println!("kills: src-agent encrypt killed at each of {total} requests (waits included), each resumed to the same state");
}

/// `encrypt --stop-source` killed at each request (an instance stopped by the call that
/// takes its snapshot, a cluster snapshotted and then stopped): the same command finishes
/// with the encrypted copy, one key, no intermediate snapshot and the original stopped. No
/// kill leaves a stopped source without its snapshot.
async fn stop_source_encrypt_killed_at_every_request(cluster: bool) {
    let source = Account::assume(e2e::SOURCE).await;
    let (flag, prefix) = if cluster {
        ("--db-cluster", "kstc")
    } else {
        ("--db-instance", "ksti")
    };
    let wd = Workdir::new(&format!("kill-{prefix}"));
    let holds = || {
        let (snapshots, databases) = if cluster {
            ("DescribeDBClusterSnapshots", "DescribeDBClusters")
        } else {
            ("DescribeDBSnapshots", "DescribeDBInstances")
        };
        vec![
            Hold {
                action: snapshots,
                matching: "Identifier=rh-",
                status: "creating",
                polls: 2,
            },
            Hold {
                action: databases,
                matching: "-encrypted",
                status: "creating",
                polls: 2,
            },
        ]
    };
    let args = |db: &str| -> Vec<String> {
        ["encrypt", flag, db, "--stop-source"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    };
    unencrypted(&source, &format!("{prefix}-base"), cluster).await;
    let base = args(&format!("{prefix}-base"));
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let total = count_requests(&wd, &source, Agent::Src, &base, holds()).await;
    for k in 1..=total {
        let db = format!("{prefix}-{k}");
        unencrypted(&source, &db, cluster).await;
        let owned = args(&db);
        let args: Vec<&str> = owned.iter().map(String::as_str).collect();
        assert!(
            kill_at(&wd, &source, Agent::Src, &args, k, holds()).await,
            "request {k} of {total} was reached"
        );
        wd.run(Agent::Src, &source, &args).await.ok();
        let twin = format!("{db}-encrypted");
        let expected = if cluster {
            vec![
                db.clone(),
                format!("{db}-1"),
                twin.clone(),
                format!("{twin}-writer"),
            ]
        } else {
            vec![db.clone(), twin.clone()]
        };
        let left = footprint(&source, &db).await;
        assert_eq!(left.databases, expected, "k={k}");
        assert!(left.snapshots.is_empty(), "k={k}: {:?}", left.snapshots);
        assert_eq!(left.keys.len(), 1, "k={k}: one key");
        let (original, copy) = if cluster {
            (
                cluster_state(&source, &db).await,
                cluster_state(&source, &twin).await,
            )
        } else {
            (
                instance_state(&source, &db).await,
                instance_state(&source, &twin).await,
            )
        };
        assert_eq!(original.status, "stopped", "k={k}: the original is stopped");
        assert!(copy.encrypted, "k={k}");
    }
    println!("kills: src-agent encrypt --stop-source {flag} killed at each of {total} requests (waits included), each resumed to the same state");
}

/// An unencrypted source: an instance, or a cluster with its writer.
async fn unencrypted(account: &Account, db: &str, cluster: bool) {
    if cluster {
        aurora_cluster(account, db, false).await;
    } else {
        mysql_instance(account, db, false).await;
    }
}

#[tokio::test]
async fn encrypt_stop_source_killed_at_every_request_resumes_to_the_same_state() {
    stop_source_encrypt_killed_at_every_request(false).await;
}

#[tokio::test]
async fn cluster_encrypt_stop_source_killed_at_every_request_resumes_to_the_same_state() {
    stop_source_encrypt_killed_at_every_request(true).await;
}

#[tokio::test]
async fn import_killed_at_every_request_resumes_to_the_same_state() {
    let (source, target) = accounts().await;
    let net = network(&target);
    let wd = Workdir::new("kill-import");
    mysql_instance(&source, "kim-base", false).await;
    wd.run(
        Agent::Src,
        &source,
        &export_args("--db-instance", "kim-base"),
    )
    .await
    .ok();
    let base = import_args(&wd, "kim-base", &net);
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let total = count_requests(
        &wd,
        &target,
        Agent::Tgt,
        &base,
        wait_holds("Identifier=kim-"),
    )
    .await;
    for k in 1..=total {
        let db = format!("kim-{k}");
        mysql_instance(&source, &db, false).await;
        wd.run(Agent::Src, &source, &export_args("--db-instance", &db))
            .await
            .ok();
        let args = import_args(&wd, &db, &net);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert!(
            kill_at(
                &wd,
                &target,
                Agent::Tgt,
                &args,
                k,
                wait_holds("Identifier=kim-")
            )
            .await,
            "request {k} of {total} was reached"
        );
        wd.run(Agent::Tgt, &target, &args).await.ok();
        assert_final_state(&wd, &source, &target, &db, false, true).await;
    }
    println!("kills: tgt-agent import killed at each of {total} requests (waits included), each resumed to the same state");
}

#[tokio::test]
async fn the_password_never_appears_in_anything_the_agents_write() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("leak");
    mysql_instance(&source, "leak-db", false).await;
    let net = network(&target);
    let trace = [("RUST_LOG", "trace")];
    let export = wd
        .run_with(
            Agent::Src,
            &source,
            &[
                "-vvv",
                "export",
                "--db-instance",
                "leak-db",
                "--target-account",
                TARGET,
            ],
            &trace,
        )
        .await
        .ok();
    let args = import_args(&wd, "leak-db", &net);
    let mut args: Vec<&str> = args.iter().map(String::as_str).collect();
    args.insert(0, "-vvv");
    let import = wd.run_with(Agent::Tgt, &target, &args, &trace).await.ok();
    let secret = target
        .secrets()
        .get_secret_value()
        .secret_id("rds-handoff/leak-db/master")
        .send()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    let password = value["password"].as_str().unwrap().to_owned();
    assert!(
        import.stderr.len() > 10_000,
        "trace logging was on ({} bytes)",
        import.stderr.len()
    );
    let mut written = vec![export.stdout, export.stderr, import.stdout, import.stderr];
    for entry in std::fs::read_dir(wd.path()).unwrap() {
        written.push(
            String::from_utf8_lossy(&std::fs::read(entry.unwrap().path()).unwrap()).into_owned(),
        );
    }
    let bytes: usize = written.iter().map(String::len).sum();
    for text in &written {
        assert!(!text.contains(&password), "the master password leaked");
        let encoded: String = password
            .bytes()
            .map(|b| {
                if b.is_ascii_alphanumeric() {
                    (b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect();
        assert!(
            !text.contains(&encoded),
            "the master password leaked URL-encoded"
        );
    }
    println!("leak: searched {bytes} bytes of output and files at trace level: no password");
}

#[tokio::test]
async fn unreachable_aws_and_interruption_have_their_exit_codes() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exit-codes");
    let run = wd
        .run_with(
            Agent::Src,
            &source,
            &["export", "--db-instance", "x1", "--target-account", TARGET],
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")],
        )
        .await;
    let run = run.refused(4, "sts:GetCallerIdentity");
    assert!(
        run.stderr.contains("hint: AWS could not be reached"),
        "{}",
        run.stderr
    );

    mysql_instance(&source, "sigint-db", false).await;
    let hold = vec![Hold {
        action: "DescribeDBSnapshots",
        matching: "Identifier=rh-",
        status: "copying",
        polls: 100_000,
    }];
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            holds: hold,
            ..FaultPlan::default()
        },
    )
    .await;
    let mut child = wd
        .command(
            Agent::Src,
            &source,
            &export_args("--db-instance", "sigint-db"),
        )
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().unwrap().to_string();
    wait_for_request(
        &proxy,
        &mut child,
        "DescribeDBSnapshots",
        Duration::from_secs(60),
    )
    .await;
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(130),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("hint: re-run the same command"));
}
