//! `src-agent export` against the emulator, as the source account.

use e2e::fixtures::{
    aurora_cluster, cluster_state, footprint, instance_state, key_arn, key_policy, mysql_instance,
};
use e2e::{Account, Agent, Workdir, SOURCE, TARGET, THIRD};
use rds_handoff::base::vocabulary::DbKind;
use rds_handoff::policy::builder::has_peer;
use rds_handoff::policy::{KeyPolicySpec, Peer};

use crate::common::{accounts, export, manifest};

/// Checks what a finished export must have left: an encrypted (unless `encrypted` is false)
/// snapshot under the toolkit's key, shared with exactly the target, and the key's policy
/// equal to the builder's.
async fn assert_exported(wd: &Workdir, source: &Account, db: &str, kind: DbKind, encrypted: bool) {
    let m = manifest(wd, db);
    assert_eq!(m.source.account.as_str(), SOURCE);
    assert_eq!(m.target.account.as_str(), TARGET);
    assert_eq!(m.database.kind, kind);
    assert_eq!(
        m.database.tags.get("team").map(String::as_str),
        Some("payments")
    );
    assert_eq!(m.snapshot.encrypted, encrypted);
    let rds = source.rds();
    let id = m
        .snapshot
        .arn
        .resource
        .split(':')
        .nth(1)
        .unwrap()
        .to_owned();
    let (snap_encrypted, snap_key, shared) = match kind {
        DbKind::Instance => {
            let s = rds
                .describe_db_snapshots()
                .db_snapshot_identifier(&id)
                .send()
                .await
                .unwrap();
            let s = &s.db_snapshots()[0];
            let attrs = rds
                .describe_db_snapshot_attributes()
                .db_snapshot_identifier(&id)
                .send()
                .await
                .unwrap();
            let restore = attrs
                .db_snapshot_attributes_result()
                .unwrap()
                .db_snapshot_attributes()[0]
                .attribute_values()
                .to_vec();
            (
                s.encrypted().unwrap_or(false),
                s.kms_key_id().map(str::to_owned),
                restore,
            )
        }
        DbKind::Cluster => {
            let s = rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(&id)
                .send()
                .await
                .unwrap();
            let s = &s.db_cluster_snapshots()[0];
            let attrs = rds
                .describe_db_cluster_snapshot_attributes()
                .db_cluster_snapshot_identifier(&id)
                .send()
                .await
                .unwrap();
            let restore = attrs
                .db_cluster_snapshot_attributes_result()
                .unwrap()
                .db_cluster_snapshot_attributes()[0]
                .attribute_values()
                .to_vec();
            (
                s.storage_encrypted().unwrap_or(false),
                s.kms_key_id().map(str::to_owned),
                restore,
            )
        }
    };
    assert_eq!(
        shared,
        vec![TARGET.to_owned()],
        "shared with exactly the target"
    );
    assert_eq!(snap_encrypted, encrypted);
    let key_arn = key_arn(source, &format!("alias/rds-handoff/{db}")).await;
    if encrypted {
        assert_eq!(
            snap_key.as_deref(),
            Some(key_arn.as_str()),
            "encrypted with the new key"
        );
        assert_eq!(
            m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()),
            Some(key_arn.as_str())
        );
    }
    let live = key_policy(source, &key_arn).await;
    let peer = Peer {
        account: TARGET.parse().unwrap(),
        principal: None,
    };
    // The builder's, naming the role that made the key beside the account root.
    let expected = KeyPolicySpec::source(
        "aws",
        "us-east-1".parse().unwrap(),
        SOURCE.parse().unwrap(),
        peer,
    )
    .made_by(&source.role_arn)
    .build();
    assert_eq!(live, expected, "the key's policy is the builder's output");
}

/// A second run reports the manifest and creates nothing.
async fn assert_rerun_is_noop(
    wd: &Workdir,
    source: &Account,
    flag: &str,
    db: &str,
    extra: &[&str],
) {
    let before = footprint(source, db).await;
    let manifest_before = std::fs::read_to_string(wd.file(&format!("{db}.handoff.json"))).unwrap();
    let run = export(wd, source, flag, db, extra).await.ok();
    assert!(run.stdout.contains("already exported"), "{}", run.stdout);
    assert_eq!(
        footprint(source, db).await,
        before,
        "a second run creates nothing"
    );
    assert_eq!(
        std::fs::read_to_string(wd.file(&format!("{db}.handoff.json"))).unwrap(),
        manifest_before
    );
}

#[tokio::test]
async fn unencrypted_instance_is_exported_encrypted_and_shared() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-inst");
    mysql_instance(&source, "exp-inst", false).await;
    let before = instance_state(&source, "exp-inst").await;
    let run = export(&wd, &source, "--db-instance", "exp-inst", &[])
        .await
        .ok();
    assert!(
        run.stdout
            .contains("tgt-agent import exp-inst.handoff.json --source-account 111111111111 --manifest-sha256 "),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr
            .contains("copy: DB instance snapshot rh-exp-inst-to-222222222222 (available)"),
        "progress: {}",
        run.stderr
    );
    assert_exported(&wd, &source, "exp-inst", DbKind::Instance, true).await;
    let left = footprint(&source, "exp-inst").await;
    assert_eq!(
        left.snapshots,
        vec!["rh-exp-inst-to-222222222222"],
        "the intermediate snapshot is deleted"
    );
    assert_eq!(left.keys.len(), 1);
    assert_rerun_is_noop(&wd, &source, "--db-instance", "exp-inst", &[]).await;
    assert_eq!(
        instance_state(&source, "exp-inst").await,
        before,
        "the source database is unchanged"
    );
}

#[tokio::test]
async fn aws_managed_key_instance_is_rekeyed_under_the_new_key() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-awsrds");
    mysql_instance(&source, "exp-awsrds", true).await;
    let before = instance_state(&source, "exp-awsrds").await;
    assert!(before.encrypted);
    export(
        &wd,
        &source,
        "--db-instance",
        "exp-awsrds",
        &["--keep-intermediate"],
    )
    .await
    .ok();
    assert_exported(&wd, &source, "exp-awsrds", DbKind::Instance, true).await;
    let left = footprint(&source, "exp-awsrds").await;
    assert_eq!(
        left.snapshots.len(),
        2,
        "--keep-intermediate keeps it: {:?}",
        left.snapshots
    );
    assert_rerun_is_noop(
        &wd,
        &source,
        "--db-instance",
        "exp-awsrds",
        &["--keep-intermediate"],
    )
    .await;
    assert_eq!(instance_state(&source, "exp-awsrds").await, before);
}

#[tokio::test]
async fn encrypted_aurora_cluster_is_exported() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-aurora");
    aurora_cluster(&source, "exp-aurora", true).await;
    let before = cluster_state(&source, "exp-aurora").await;
    export(&wd, &source, "--db-cluster", "exp-aurora", &[])
        .await
        .ok();
    assert_exported(&wd, &source, "exp-aurora", DbKind::Cluster, true).await;
    assert_eq!(
        manifest(&wd, "exp-aurora")
            .database
            .instance_class
            .as_deref(),
        Some("db.r6g.large")
    );
    assert_rerun_is_noop(&wd, &source, "--db-cluster", "exp-aurora", &[]).await;
    assert_eq!(cluster_state(&source, "exp-aurora").await, before);
}

#[tokio::test]
async fn unencrypted_cluster_is_refused_then_exported_either_way() {
    let (source, _) = accounts().await;
    aurora_cluster(&source, "exp-ucluster", false).await;
    let before = cluster_state(&source, "exp-ucluster").await;

    let wd = Workdir::new("exp-ucluster");
    let nothing = footprint(&source, "exp-ucluster").await;
    let run = export(&wd, &source, "--db-cluster", "exp-ucluster", &[])
        .await
        .refused(3, "not encrypted");
    assert!(
        run.stderr.contains("--encrypt-at-source")
            && run.stderr.contains("--allow-unencrypted-share"),
        "{}",
        run.stderr
    );
    assert_eq!(
        footprint(&source, "exp-ucluster").await,
        nothing,
        "a refusal creates nothing"
    );

    export(
        &wd,
        &source,
        "--db-cluster",
        "exp-ucluster",
        &["--encrypt-at-source"],
    )
    .await
    .ok();
    assert_exported(&wd, &source, "exp-ucluster", DbKind::Cluster, true).await;
    let left = footprint(&source, "exp-ucluster").await;
    assert_eq!(
        left.databases,
        vec!["exp-ucluster", "exp-ucluster-1"],
        "the temporary cluster is gone"
    );
    assert_rerun_is_noop(
        &wd,
        &source,
        "--db-cluster",
        "exp-ucluster",
        &["--encrypt-at-source"],
    )
    .await;

    let wd2 = Workdir::new("exp-ushare");
    let path = wd2.file("shared.json");
    let path = path.to_str().unwrap();
    aurora_cluster(&source, "exp-ushare", false).await;
    export(
        &wd2,
        &source,
        "--db-cluster",
        "exp-ushare",
        &["--allow-unencrypted-share", "--manifest", path],
    )
    .await
    .ok();
    let m = rds_handoff::base::manifest::Manifest::read(std::path::Path::new(path)).unwrap();
    assert!(!m.snapshot.encrypted && m.snapshot.kms_key_arn.is_none());
    assert_eq!(
        cluster_state(&source, "exp-ucluster").await,
        before,
        "the source cluster is never touched"
    );
}

#[tokio::test]
async fn bad_requests_exit_with_one_clear_message_and_create_nothing() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-bad");
    mysql_instance(&source, "exp-stopped", false).await;
    source
        .rds()
        .stop_db_instance()
        .db_instance_identifier("exp-stopped")
        .send()
        .await
        .unwrap();
    let cases: [(&[&str], i32, &str); 5] = [
        (
            &[
                "export",
                "--db-instance",
                "exp-missing",
                "--target-account",
                TARGET,
            ],
            3,
            "DB instance `exp-missing` not found",
        ),
        (
            &[
                "export",
                "--db-instance",
                "exp-stopped",
                "--target-account",
                TARGET,
            ],
            3,
            "is `stopped`",
        ),
        (
            &[
                "export",
                "--db-instance",
                "exp-stopped",
                "--target-account",
                SOURCE,
            ],
            3,
            "is the account running the export",
        ),
        (
            &[
                "export",
                "--db-instance",
                "exp--bad",
                "--target-account",
                TARGET,
            ],
            2,
            "two consecutive hyphens",
        ),
        (
            &[
                "export",
                "--db-instance",
                "exp-stopped",
                "--target-account",
                "12345",
            ],
            2,
            "exactly 12 digits",
        ),
    ];
    for (args, code, text) in cases {
        let before = (
            footprint(&source, "exp-stopped").await,
            footprint(&source, "exp-missing").await,
        );
        let run = wd.run(Agent::Src, &source, args).await.refused(code, text);
        assert_eq!(run.error_lines().len(), 1, "one message: {}", run.stderr);
        let after = (
            footprint(&source, "exp-stopped").await,
            footprint(&source, "exp-missing").await,
        );
        assert_eq!(after, before, "{args:?} created something");
        assert!(
            std::fs::read_dir(wd.path()).unwrap().next().is_none(),
            "{args:?} wrote a file"
        );
    }
}

#[tokio::test]
async fn dry_run_prints_the_plan_and_changes_nothing() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-dry");
    mysql_instance(&source, "exp-dry", false).await;
    let before = footprint(&source, "exp-dry").await;
    let run = export(&wd, &source, "--db-instance", "exp-dry", &["--dry-run"])
        .await
        .ok();
    for step in [
        "create         key (policy: `src-agent policy`): alias/rds-handoff/exp-dry",
        "create         snapshot of DB instance exp-dry: rh-exp-dry-to-222222222222-src",
        "create         share with account 222222222222: rh-exp-dry-to-222222222222",
    ] {
        assert!(run.stderr.contains(step), "{step} in {}", run.stderr);
    }
    assert_eq!(footprint(&source, "exp-dry").await, before);
    assert!(!wd.file("exp-dry.handoff.json").exists());
    // After a run that stopped once the copy was shared, the plan reads what exists.
    export(
        &wd,
        &source,
        "--db-instance",
        "exp-dry",
        &["--keep-intermediate"],
    )
    .await
    .ok();
    std::fs::remove_file(wd.file("exp-dry.handoff.json")).unwrap();
    let run = export(
        &wd,
        &source,
        "--db-instance",
        "exp-dry",
        &["--dry-run", "--output", "json"],
    )
    .await
    .ok();
    let plan: Vec<(String, String)> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["event"] == "plan")
        .map(|e| {
            (
                e["stage"].as_str().unwrap().to_owned(),
                e["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let action = |stage: &str| {
        plan.iter()
            .find(|(s, _)| s.starts_with(stage))
            .map(|(_, a)| a.as_str())
    };
    assert_eq!(action("key"), Some("reuse"), "{plan:?}");
    assert_eq!(action("copy of"), Some("reuse"), "{plan:?}");
    assert_eq!(action("share with"), Some("reuse"), "{plan:?}");
    assert_eq!(action("snapshot"), Some("skip"), "{plan:?}");
    assert_eq!(action("manifest"), Some("create"), "{plan:?}");
}

#[tokio::test]
async fn json_output_is_one_event_per_line_with_the_manifest_last() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-json");
    mysql_instance(&source, "exp-json", false).await;
    let run = export(
        &wd,
        &source,
        "--db-instance",
        "exp-json",
        &["--output", "json"],
    )
    .await
    .ok();
    let events: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    assert!(events.len() > 5, "{}", run.stdout);
    assert!(events
        .iter()
        .any(|e| e["event"] == "wait" && e["stage"] == "copy"));
    let last = events.last().unwrap();
    assert_eq!(last["event"], "done");
    assert_eq!(last["manifest"], "exp-json.handoff.json");
}

#[tokio::test]
async fn a_second_target_leaves_the_first_target_its_access_to_the_key() {
    let (source, _) = accounts().await;
    let first = Workdir::new("exp-two-a");
    let second = Workdir::new("exp-two-b");
    mysql_instance(&source, "exp-two", false).await;
    export(&first, &source, "--db-instance", "exp-two", &[])
        .await
        .ok();
    let args = [
        "export",
        "--db-instance",
        "exp-two",
        "--target-account",
        THIRD,
    ];
    second.run(Agent::Src, &source, &args).await.ok();
    let key = manifest(&first, "exp-two").snapshot.kms_key_arn.unwrap();
    assert_eq!(
        manifest(&second, "exp-two")
            .snapshot
            .kms_key_arn
            .map(|a| a.as_str().to_owned()),
        Some(key.as_str().to_owned()),
        "both copies are under the database's key"
    );
    let live = key_policy(&source, key.as_str()).await;
    for target in [TARGET, THIRD] {
        let peer = Peer {
            account: target.parse().unwrap(),
            principal: None,
        };
        let spec = KeyPolicySpec::source(
            "aws",
            "us-east-1".parse().unwrap(),
            SOURCE.parse().unwrap(),
            peer.clone(),
        );
        assert!(
            has_peer(&live, &spec.peer_statements(&peer)),
            "{target} may still copy its snapshot: {}",
            live.to_json()
        );
    }
}

/// A region whose manual snapshot quota is full (AWS's default 100, which the emulator keeps):
/// the export is refused before it creates anything, saying the quota, after reads only.
#[tokio::test]
async fn a_full_snapshot_quota_refuses_the_export_before_it_creates_anything() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("exp-quota");
    mysql_instance(&source, "exp-quota", false).await;
    mysql_instance(&source, "exp-filler", false).await;
    let rds = source.rds();
    for i in 0..100 {
        rds.create_db_snapshot()
            .db_instance_identifier("exp-filler")
            .db_snapshot_identifier(format!("exp-filler-{i}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("filler snapshot {i}: {e:?}"));
    }
    let before = footprint(&source, "exp-quota").await;
    let url = &e2e::Emulator::get().url;
    let proxy = e2e::proxy::Proxy::start(url, e2e::proxy::FaultPlan::default()).await;
    let args = [
        "export",
        "--db-instance",
        "exp-quota",
        "--target-account",
        TARGET,
    ];
    let run = wd.via(&proxy, Agent::Src, &source, &args).await.refused(
        3,
        "the region has 100 of 100 manual snapshots; this run needs 2 more",
    );
    assert!(
        run.stderr
            .contains("delete manual snapshots you no longer need"),
        "{}",
        run.stderr
    );
    assert_eq!(run.error_lines().len(), 1, "one message: {}", run.stderr);
    assert_eq!(
        footprint(&source, "exp-quota").await,
        before,
        "a refusal creates nothing"
    );
    assert!(proxy.stats.saw("rds:DescribeAccountAttributes"));
    let writes: Vec<String> = proxy
        .stats
        .actions()
        .into_iter()
        .filter(|action| {
            let call = action.rsplit(':').next().unwrap_or_default();
            !["Describe", "Get", "List"]
                .iter()
                .any(|read| call.starts_with(read))
        })
        .collect();
    assert!(writes.is_empty(), "called before the refusal: {writes:?}");
    assert!(
        std::fs::read_dir(wd.path()).unwrap().next().is_none(),
        "a refusal writes no file"
    );
}
