//! `src-agent encrypt`: an encrypted twin in the same account, same placement and settings.
//!
//! moto's instance restore copies most settings from the snapshot's database whether or not
//! the request names them, while AWS restores into the default subnet group, security group,
//! parameter group and a zone of its choosing. So besides comparing the twin with the
//! original, the tests read the restore request itself (through the proxy) for every setting
//! AWS would otherwise not carry over.

use std::collections::BTreeMap;

use aws_sdk_rds::types::DbInstance;
use e2e::fixtures::{
    aurora_cluster, cluster_state, describe_instance, footprint, instance_state, key_arn,
    key_policy, network, placed_instance,
};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE};
use rds_handoff::policy::builder::SID_ADMIN;
use rds_handoff::policy::model::{Principal, Statement};
use rds_handoff::policy::{KeyPolicySpec, PolicyDocument};

/// What the twin must share with the original.
#[derive(Debug, PartialEq)]
struct Placement {
    zone: Option<String>,
    subnet_group: Option<String>,
    security_groups: Vec<String>,
    parameter_group: Option<String>,
    option_group: Option<String>,
    class: Option<String>,
    port: Option<i32>,
    storage: (Option<i32>, Option<String>),
    multi_az: Option<bool>,
    tags: BTreeMap<String, String>,
}

fn placement(db: &DbInstance) -> Placement {
    Placement {
        zone: db.availability_zone().map(str::to_owned),
        subnet_group: db
            .db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .map(str::to_owned),
        security_groups: db
            .vpc_security_groups()
            .iter()
            .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
            .collect(),
        parameter_group: db
            .db_parameter_groups()
            .first()
            .and_then(|g| g.db_parameter_group_name())
            .map(str::to_owned),
        option_group: db
            .option_group_memberships()
            .first()
            .and_then(|g| g.option_group_name())
            .map(str::to_owned),
        class: db.db_instance_class().map(str::to_owned),
        port: db.endpoint().and_then(|e| e.port()),
        storage: (db.allocated_storage(), db.storage_type().map(str::to_owned)),
        multi_az: db.multi_az(),
        tags: db
            .tag_list()
            .iter()
            .filter(|t| t.key() != Some("rds-handoff:encrypted-from"))
            .map(|t| (t.key().unwrap().to_owned(), t.value().unwrap().to_owned()))
            .collect(),
    }
}

#[tokio::test]
async fn instance_gets_an_encrypted_twin_in_the_same_place() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("enc");
    placed_instance(&source, "enc-db").await;
    let before = instance_state(&source, "enc-db").await;
    let original = placement(&describe_instance(&source, "enc-db").await);
    let args = ["encrypt", "--db-instance", "enc-db"];

    let dry = wd
        .run(Agent::Src, &source, &[&args[..], &["--dry-run"]].concat())
        .await
        .ok();
    assert!(dry.stdout.contains("enc-db-encrypted"), "{}", dry.stdout);
    assert!(
        dry.stderr
            .contains("create         snapshot of DB instance enc-db: rh-enc-db-encrypt-src"),
        "{}",
        dry.stderr
    );
    let untouched = footprint(&source, "enc-db").await;
    assert_eq!(untouched.databases, vec!["enc-db"]);
    assert!(untouched.snapshots.is_empty() && untouched.keys.is_empty());

    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let run = wd.via(&proxy, Agent::Src, &source, &args).await.ok();
    assert!(run.stdout.contains("enc-db-encrypted"), "{}", run.stdout);

    let twin = describe_instance(&source, "enc-db-encrypted").await;
    let key = key_arn(&source, "alias/rds-handoff/enc-db-encrypted").await;
    assert_eq!(twin.storage_encrypted(), Some(true));
    assert_eq!(twin.kms_key_id(), Some(key.as_str()));
    let expected =
        KeyPolicySpec::own_account("aws", "us-east-1".parse().unwrap(), SOURCE.parse().unwrap())
            .made_by(&source.role_arn)
            .build();
    let live = key_policy(&source, &key).await;
    assert_eq!(
        live, expected,
        "the key is the builder's, for this account's RDS only"
    );
    // And the reviewed policy's statements for the key's own account, without the target's,
    // with the role that made the key named beside the root (policies/README.md, statement 1).
    let reviewed = PolicyDocument::parse(include_str!("../../../policies/key-policy.json"));
    let root = format!("arn:aws:iam::{SOURCE}:root");
    let own: Vec<Statement> = reviewed
        .unwrap()
        .into_statements()
        .into_iter()
        .filter(|s| !s.sid().starts_with("TargetAccount"))
        .map(|mut s| {
            if s.sid() == SID_ADMIN {
                s.principal = Some(Principal::aws(vec![root.clone(), source.role_arn.clone()]));
            }
            s
        })
        .collect();
    assert_eq!(live.statements(), own, "review policies/key-policy.json");
    assert_eq!(placement(&twin), original, "same placement and settings");
    assert!(twin
        .tag_list()
        .iter()
        .any(|t| t.key() == Some("rds-handoff:encrypted-from") && t.value() == Some("enc-db")));
    let restore = proxy.stats.bodies("RestoreDBInstanceFromDBSnapshot");
    assert_eq!(restore.len(), 1, "one restore");
    let net = network(&source);
    for wanted in [
        "AvailabilityZone=us-east-1b".to_owned(),
        format!("DBSubnetGroupName={}", net.subnet_group),
        format!("={}", net.security_group),
        "DBParameterGroupName=enc-db-params".to_owned(),
        "OptionGroupName=enc-db-options".to_owned(),
        "DBInstanceClass=db.t3.small".to_owned(),
        "Port=3307".to_owned(),
        "PubliclyAccessible=false".to_owned(),
    ] {
        assert!(
            restore[0].contains(&wanted),
            "restore names {wanted}: {}",
            restore[0]
        );
    }
    for changes_the_original in [
        "ModifyDBInstance",
        "DeleteDBInstance",
        "RebootDBInstance",
        "StopDBInstance",
    ] {
        assert!(
            !proxy.stats.saw(changes_the_original),
            "{changes_the_original}"
        );
    }
    assert_eq!(
        instance_state(&source, "enc-db").await,
        before,
        "original unchanged"
    );
    assert!(!before.encrypted);

    let done = footprint(&source, "enc-db").await;
    assert_eq!(done.databases, vec!["enc-db", "enc-db-encrypted"]);
    assert!(
        done.snapshots.is_empty(),
        "intermediate snapshots deleted: {:?}",
        done.snapshots
    );
    assert_eq!(done.keys.len(), 1);

    let again = wd.run(Agent::Src, &source, &args).await.ok();
    assert!(again.stdout.contains("already done"), "{}", again.stdout);
    assert_eq!(
        footprint(&source, "enc-db").await,
        done,
        "a re-run creates nothing"
    );
    assert_eq!(instance_state(&source, "enc-db").await, before);
}

#[tokio::test]
async fn cluster_twin_is_restored_under_the_key_with_a_new_writer() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("encc");
    aurora_cluster(&source, "encc-db", false).await;
    let before = cluster_state(&source, "encc-db").await;
    let args = [
        "encrypt",
        "--db-cluster",
        "encc-db",
        "--restore-as",
        "encc-new",
        "--output",
        "json",
    ];
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let run = wd.via(&proxy, Agent::Src, &source, &args).await.ok();
    let done: serde_json::Value = serde_json::from_str(run.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(done["database"], "encc-new");

    let key = key_arn(&source, "alias/rds-handoff/encc-new").await;
    let twin = cluster_state(&source, "encc-new").await;
    assert!(twin.encrypted);
    assert_eq!(twin.kms_key_id.as_deref(), Some(key.as_str()));
    assert_eq!(twin.tags.get("team").map(String::as_str), Some("payments"));
    let restore = proxy.stats.bodies("RestoreDBClusterFromSnapshot");
    assert_eq!(restore.len(), 1);
    assert!(restore[0].contains("KmsKeyId="), "{}", restore[0]);
    assert!(
        !proxy.stats.saw("CopyDBClusterSnapshot"),
        "AWS cannot copy it under a key"
    );
    let writer = describe_instance(&source, "encc-new-writer").await;
    assert_eq!(writer.db_cluster_identifier(), Some("encc-new"));
    assert_eq!(
        writer.db_instance_class(),
        Some("db.r6g.large"),
        "the original writer's class"
    );
    assert_eq!(
        cluster_state(&source, "encc-db").await,
        before,
        "original unchanged"
    );

    let footprint_done = footprint(&source, "encc").await;
    assert!(
        footprint_done.snapshots.is_empty(),
        "{:?}",
        footprint_done.snapshots
    );
    let again = wd.run(Agent::Src, &source, &args).await.ok();
    assert!(
        again.stdout.contains("\"already_done\":true"),
        "{}",
        again.stdout
    );
    assert_eq!(footprint(&source, "encc").await, footprint_done);
}

#[tokio::test]
async fn encrypt_refuses_a_name_it_did_not_make_and_a_missing_database() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("rfx");
    e2e::fixtures::mysql_instance(&source, "rfx-db", false).await;
    e2e::fixtures::mysql_instance(&source, "rfx-other", false).await;
    let before = footprint(&source, "rfx").await;
    wd.run(
        Agent::Src,
        &source,
        &[
            "encrypt",
            "--db-instance",
            "rfx-db",
            "--restore-as",
            "rfx-other",
        ],
    )
    .await
    .refused(3, "already exists and is not an encrypted copy of `rfx-db`");
    wd.run(
        Agent::Src,
        &source,
        &["encrypt", "--db-instance", "rfx-missing"],
    )
    .await
    .refused(3, "`rfx-missing` not found");
    assert_eq!(footprint(&source, "rfx").await, before, "nothing created");
}

/// `--stop-source`: AWS snapshots no stopped database (the emulator refuses as AWS does). An
/// instance is stopped by the call that takes its snapshot just before the stop (no snapshot
/// of it is asked for otherwise); a cluster is snapshotted first and stopped after. Each ends
/// with its encrypted copy, no intermediate snapshot and the original stopped; run again, it
/// is already done.
#[tokio::test]
async fn stop_source_snapshots_before_the_stop_and_leaves_the_original_stopped() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("encs");
    e2e::fixtures::mysql_instance(&source, "encs-db", false).await;
    aurora_cluster(&source, "encs-cl", false).await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    for (flag, db) in [("--db-instance", "encs-db"), ("--db-cluster", "encs-cl")] {
        let args = ["encrypt", flag, db, "--stop-source"];
        let run = wd.via(&proxy, Agent::Src, &source, &args).await.ok();
        assert!(run.stdout.contains("7 days"), "{}", run.stdout);
        let done = footprint(&source, db).await;
        assert!(
            done.databases.contains(&format!("{db}-encrypted")),
            "{:?}",
            done.databases
        );
        assert!(done.snapshots.is_empty(), "{db}: {:?}", done.snapshots);
        let again = wd.run(Agent::Src, &source, &args).await.ok();
        assert!(again.stdout.contains("already done"), "{}", again.stdout);
        assert_eq!(
            footprint(&source, db).await,
            done,
            "a re-run creates nothing"
        );
    }
    assert_eq!(instance_state(&source, "encs-db").await.status, "stopped");
    assert_eq!(cluster_state(&source, "encs-cl").await.status, "stopped");
    let twin = describe_instance(&source, "encs-db-encrypted").await;
    assert_eq!(twin.storage_encrypted(), Some(true));

    let stops = proxy.stats.bodies("StopDBInstance");
    assert_eq!(stops.len(), 1, "{stops:?}");
    assert!(
        stops[0].contains("DBSnapshotIdentifier=rh-encs-db-encrypt-src"),
        "{}",
        stops[0]
    );
    assert!(
        !proxy.stats.saw("CreateDBSnapshot"),
        "the instance's snapshot is the stop's"
    );
    let seen: Vec<String> = proxy
        .stats
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(a, _)| a.clone())
        .collect();
    let at = |action: &str| seen.iter().position(|a| a == action);
    let (snapshot, stop) = (at("rds:CreateDBClusterSnapshot"), at("rds:StopDBCluster"));
    assert!(
        snapshot.is_some() && stop.is_some() && snapshot < stop,
        "the cluster is snapshotted, then stopped: {seen:?}"
    );
}

/// With `--stop-source`, a source found stopped without the run's snapshot is refused with
/// what to do (AWS snapshots no stopped database), and so is an instance started again since
/// that snapshot (it misses what was written since); nothing is created.
#[tokio::test]
async fn stop_source_refuses_a_stopped_source_without_its_snapshot_and_one_started_since() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("encsr");
    e2e::fixtures::mysql_instance(&source, "encsr-db", false).await;
    let rds = source.rds();
    rds.stop_db_instance()
        .db_instance_identifier("encsr-db")
        .send()
        .await
        .unwrap();
    let args = ["encrypt", "--db-instance", "encsr-db", "--stop-source"];
    let run = wd.run(Agent::Src, &source, &args).await.refused(
        3,
        "is `stopped` and has no snapshot `rh-encsr-db-encrypt-src`",
    );
    assert!(
        run.stderr
            .contains("aws rds start-db-instance --db-instance-identifier encsr-db"),
        "{}",
        run.stderr
    );
    rds.start_db_instance()
        .db_instance_identifier("encsr-db")
        .send()
        .await
        .unwrap();
    rds.create_db_snapshot()
        .db_instance_identifier("encsr-db")
        .db_snapshot_identifier("rh-encsr-db-encrypt-src")
        .send()
        .await
        .unwrap();
    wd.run(Agent::Src, &source, &args)
        .await
        .refused(3, "is `available` again");
    let left = footprint(&source, "encsr-db").await;
    assert_eq!(left.databases, vec!["encsr-db"]);
    assert_eq!(left.snapshots, vec!["rh-encsr-db-encrypt-src"]);
    assert!(left.keys.is_empty(), "no key made: {:?}", left.keys);
}
