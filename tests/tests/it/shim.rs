//! The emulator shim (see the crate docs): a shared snapshot can be copied across accounts
//! by ARN; one not shared is refused as AWS refuses it.

use e2e::fixtures::{aurora_cluster, mysql_instance, restore_attribute};
use e2e::{Account, SOURCE, TARGET, THIRD};

#[tokio::test]
async fn shared_instance_snapshot_copies_across_accounts_and_unshared_is_refused() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    let third = Account::assume(THIRD).await;
    mysql_instance(&source, "shim-db", false).await;
    let snap = source
        .rds()
        .create_db_snapshot()
        .db_instance_identifier("shim-db")
        .db_snapshot_identifier("shim-snap")
        .send()
        .await
        .unwrap();
    let arn = snap
        .db_snapshot()
        .unwrap()
        .db_snapshot_arn()
        .unwrap()
        .to_owned();

    let copy = |who: &Account, name: &str| {
        let rds = who.rds();
        let (arn, name) = (arn.clone(), name.to_owned());
        async move {
            rds.copy_db_snapshot()
                .source_db_snapshot_identifier(arn)
                .target_db_snapshot_identifier(name)
                .send()
                .await
        }
    };
    let refused = copy(&target, "shim-copy").await.unwrap_err();
    assert_eq!(
        refused
            .as_service_error()
            .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::code(e)),
        Some("DBSnapshotNotFound")
    );

    source
        .rds()
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier("shim-snap")
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await
        .unwrap();
    let copied = copy(&target, "shim-copy")
        .await
        .expect("shared: the target may copy");
    assert!(copied
        .db_snapshot()
        .unwrap()
        .db_snapshot_arn()
        .unwrap()
        .contains(TARGET));
    let still_refused = copy(&third, "shim-copy").await.unwrap_err();
    assert_eq!(
        still_refused
            .as_service_error()
            .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::code(e)),
        Some("DBSnapshotNotFound")
    );
}

#[tokio::test]
async fn shared_cluster_snapshot_restores_across_accounts_and_unshared_is_refused() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    aurora_cluster(&source, "shim-cluster", true).await;
    source
        .rds()
        .create_db_cluster_snapshot()
        .db_cluster_identifier("shim-cluster")
        .db_cluster_snapshot_identifier("shim-csnap-awskey")
        .send()
        .await
        .unwrap();
    // Under the source's AWS managed key, no other account may use it (the seventh rule):
    // what is shared is its copy under a key of the source's own, as AWS documents.
    let key = new_key(&source).await;
    let snap = source
        .rds()
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier("shim-csnap-awskey")
        .target_db_cluster_snapshot_identifier("shim-csnap")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    let arn = snap
        .db_cluster_snapshot()
        .unwrap()
        .db_cluster_snapshot_arn()
        .unwrap()
        .to_owned();
    let restore = || {
        target
            .rds()
            .restore_db_cluster_from_snapshot()
            .db_cluster_identifier("shim-restored")
            .snapshot_identifier(&arn)
            .engine("aurora-mysql")
            .send()
    };
    let refused = restore().await.unwrap_err();
    assert_eq!(
        refused
            .as_service_error()
            .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::code(e)),
        Some("DBClusterSnapshotNotFoundFault")
    );
    source
        .rds()
        .modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier("shim-csnap")
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await
        .unwrap();
    let restored = restore().await.expect("shared: the target may restore");
    assert!(restored
        .db_cluster()
        .unwrap()
        .db_cluster_arn()
        .unwrap()
        .contains(TARGET));
}

#[tokio::test]
async fn each_instance_has_its_own_resource_id_even_under_a_reused_name() {
    let source = Account::assume(SOURCE).await;
    let id = |name: &'static str| {
        let rds = source.rds();
        async move {
            let out = rds
                .describe_db_instances()
                .db_instance_identifier(name)
                .send()
                .await
                .unwrap();
            out.db_instances()[0].dbi_resource_id().unwrap().to_owned()
        }
    };
    mysql_instance(&source, "shim-rid", false).await;
    mysql_instance(&source, "shim-rid2", false).await;
    let (first, other) = (id("shim-rid").await, id("shim-rid2").await);
    assert_ne!(first, other);
    source
        .rds()
        .delete_db_instance()
        .db_instance_identifier("shim-rid")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    mysql_instance(&source, "shim-rid", false).await;
    assert_ne!(
        id("shim-rid").await,
        first,
        "a new instance under an old name is a new resource"
    );
}

/// The Step Functions shim both ways: a task in AWS's spelling runs as its execution role's
/// account (each account's `rds-handoff-states`) and answers in AWS's spelling; from another
/// account the same task does not see the database and fails under AWS's error name; a
/// definite path gives a value, a filter that matches nothing an empty list.
#[tokio::test]
async fn step_functions_tasks_run_as_their_role_and_speak_as_aws() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    mysql_instance(&source, "shim-sfn", false).await;
    let definition = serde_json::json!({
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Pass",
                "Parameters": { "none.$": "$.items[?(@.error)]", "first.$": "$.items[0].name" },
                "ResultPath": "$.picked",
                "Next": "Find",
            },
            "Find": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
                "Parameters": { "DbInstanceIdentifier": "shim-sfn" },
                "ResultSelector": {
                    "id.$": "$.DbInstances[0].DbInstanceIdentifier",
                    "status.$": "$.DbInstances[0].DbInstanceStatus",
                },
                "ResultPath": "$.found",
                "End": true,
            },
        },
    });
    let mut ends = Vec::new();
    for account in [&source, &target] {
        let sfn = aws_sdk_sfn::Client::new(&account.config());
        let machine = sfn
            .create_state_machine()
            .name("rds-handoff-shim-states")
            .definition(definition.to_string())
            .role_arn(format!(
                "arn:aws:iam::{}:role/{}",
                account.id,
                e2e::accounts::EXECUTION_ROLE
            ))
            .send()
            .await
            .unwrap();
        let execution = sfn
            .start_execution()
            .state_machine_arn(machine.state_machine_arn())
            .input(r#"{"items": [{"name": "x"}]}"#)
            .send()
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let ended = loop {
            let d = sfn
                .describe_execution()
                .execution_arn(execution.execution_arn())
                .send()
                .await
                .unwrap();
            if d.status().as_str() != "RUNNING" || std::time::Instant::now() > deadline {
                break d;
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        ends.push(ended);
    }
    let (mine, other) = (&ends[0], &ends[1]);
    assert_eq!(mine.status().as_str(), "SUCCEEDED", "{mine:?}");
    let output: serde_json::Value = serde_json::from_str(mine.output().unwrap()).unwrap();
    assert_eq!(
        output["found"],
        serde_json::json!({"id": "shim-sfn", "status": "available"})
    );
    assert_eq!(
        output["picked"],
        serde_json::json!({"none": [], "first": "x"})
    );
    assert_eq!(other.status().as_str(), "FAILED", "{other:?}");
    assert_eq!(other.error(), Some("Rds.DbInstanceNotFoundException"));
}

/// The code of an RDS call's error, as AWS names it.
fn rds_code<E: aws_sdk_rds::error::ProvideErrorMetadata>(
    err: &aws_sdk_rds::error::SdkError<E>,
) -> Option<&str> {
    err.as_service_error()
        .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::code(e))
}

/// The shim's sixth rule both ways: AWS snapshots a database only while it is available. An
/// available instance or cluster is snapshotted; a stopped one is refused with AWS's code;
/// `StopDBInstance` with `DBSnapshotIdentifier` still takes its snapshot, of that instance,
/// before the stop.
#[tokio::test]
async fn a_stopped_database_is_not_snapshotted_but_a_stop_takes_its_snapshot_first() {
    let source = Account::assume(SOURCE).await;
    let rds = source.rds();
    mysql_instance(&source, "shim-stop", false).await;
    let snapshot = |name: &'static str| {
        rds.create_db_snapshot()
            .db_instance_identifier("shim-stop")
            .db_snapshot_identifier(name)
            .send()
    };
    snapshot("shim-stop-up")
        .await
        .expect("an available instance is snapshotted");
    let stopped = rds
        .stop_db_instance()
        .db_instance_identifier("shim-stop")
        .db_snapshot_identifier("shim-stop-at")
        .send()
        .await
        .expect("a stop with a snapshot");
    assert_eq!(
        stopped.db_instance().and_then(|d| d.db_instance_status()),
        Some("stopped")
    );
    let taken = rds
        .describe_db_snapshots()
        .db_snapshot_identifier("shim-stop-at")
        .send()
        .await
        .expect("the stop took its snapshot");
    assert_eq!(
        taken.db_snapshots()[0].db_instance_identifier(),
        Some("shim-stop")
    );
    let refused = snapshot("shim-stop-down").await.unwrap_err();
    assert_eq!(rds_code(&refused), Some("InvalidDBInstanceState"));

    aurora_cluster(&source, "shim-cstop", false).await;
    let cluster_snapshot = |name: &'static str| {
        rds.create_db_cluster_snapshot()
            .db_cluster_identifier("shim-cstop")
            .db_cluster_snapshot_identifier(name)
            .send()
    };
    cluster_snapshot("shim-cstop-up")
        .await
        .expect("an available cluster is snapshotted");
    rds.stop_db_cluster()
        .db_cluster_identifier("shim-cstop")
        .send()
        .await
        .expect("stop the cluster");
    let refused = cluster_snapshot("shim-cstop-down").await.unwrap_err();
    assert_eq!(rds_code(&refused), Some("InvalidDBClusterStateFault"));
}

// The shim's seventh to tenth rules, and the Step Functions shim's role and spelling rules:
// each refusal as AWS answers it, and the neighbouring case that goes through.

use std::time::{Duration, Instant};

use e2e::accounts::EXECUTION_ROLE;
use rds_handoff::base::vocabulary::DbKind;
use rds_handoff::workflow::{asl, Workflow};
use serde_json::json;

/// `None` when a call went through; else the code AWS refused it with.
fn refusal<T, E: aws_sdk_rds::error::ProvideErrorMetadata>(
    result: &Result<T, E>,
) -> Option<String> {
    result.as_ref().err().map(|err| {
        aws_sdk_rds::error::ProvideErrorMetadata::code(err)
            .unwrap_or("(no code)")
            .to_owned()
    })
}

/// A new customer managed key of `account`: its ARN.
async fn new_key(account: &Account) -> String {
    let made = account.kms().create_key().send().await.unwrap();
    made.key_metadata().unwrap().arn().unwrap().to_owned()
}

/// The ARN of `owner`'s snapshot `name`, as another account names it.
fn snapshot_arn(owner: &Account, kind: DbKind, name: &str) -> String {
    let resource = match kind {
        DbKind::Instance => "snapshot",
        DbKind::Cluster => "cluster-snapshot",
    };
    format!("arn:aws:rds:us-east-1:{}:{resource}:{name}", owner.id)
}

/// `owner` snapshots its instance or cluster `db` as `name`.
async fn snapshot(owner: &Account, kind: DbKind, db: &str, name: &str) {
    let rds = owner.rds();
    let refused = match kind {
        DbKind::Instance => refusal(
            &rds.create_db_snapshot()
                .db_instance_identifier(db)
                .db_snapshot_identifier(name)
                .send()
                .await,
        ),
        DbKind::Cluster => refusal(
            &rds.create_db_cluster_snapshot()
                .db_cluster_identifier(db)
                .db_cluster_snapshot_identifier(name)
                .send()
                .await,
        ),
    };
    assert_eq!(refused, None, "snapshot {name} of {db}");
}

/// `who` copies the snapshot `from` (a name, or another account's ARN) to `to`, under `key`.
async fn copy(
    who: &Account,
    kind: DbKind,
    from: &str,
    to: &str,
    key: Option<&str>,
) -> Option<String> {
    let rds = who.rds();
    let key = key.map(str::to_owned);
    match kind {
        DbKind::Instance => refusal(
            &rds.copy_db_snapshot()
                .source_db_snapshot_identifier(from)
                .target_db_snapshot_identifier(to)
                .set_kms_key_id(key)
                .send()
                .await,
        ),
        DbKind::Cluster => refusal(
            &rds.copy_db_cluster_snapshot()
                .source_db_cluster_snapshot_identifier(from)
                .target_db_cluster_snapshot_identifier(to)
                .set_kms_key_id(key)
                .send()
                .await,
        ),
    }
}

/// `who` restores the snapshot `from` (a name, or another account's ARN) as `db`.
async fn restore(who: &Account, kind: DbKind, from: &str, db: &str) -> Option<String> {
    let rds = who.rds();
    match kind {
        DbKind::Instance => refusal(
            &rds.restore_db_instance_from_db_snapshot()
                .db_instance_identifier(db)
                .db_snapshot_identifier(from)
                .send()
                .await,
        ),
        DbKind::Cluster => refusal(
            &rds.restore_db_cluster_from_snapshot()
                .db_cluster_identifier(db)
                .snapshot_identifier(from)
                .engine("aurora-mysql")
                .send()
                .await,
        ),
    }
}

/// `owner` adds `value` (an account, or `all`) to its snapshot's `restore` attribute.
async fn share(owner: &Account, kind: DbKind, name: &str, value: &str) -> Option<String> {
    let rds = owner.rds();
    match kind {
        DbKind::Instance => refusal(
            &rds.modify_db_snapshot_attribute()
                .db_snapshot_identifier(name)
                .attribute_name("restore")
                .values_to_add(value)
                .send()
                .await,
        ),
        DbKind::Cluster => refusal(
            &rds.modify_db_cluster_snapshot_attribute()
                .db_cluster_snapshot_identifier(name)
                .attribute_name("restore")
                .values_to_add(value)
                .send()
                .await,
        ),
    }
}

/// The shim's seventh rule both ways: a snapshot under its owner's AWS managed key (`aws/rds`)
/// is shared, as AWS lets it be, but the other account can neither copy nor restore it
/// (`KMSKeyNotAccessibleFault`), instance or cluster; the copy its owner makes under a key of
/// its own, shared, is copied and restored. The product never meets the refusal: it shares
/// such copies only, and `import.rs` (`encrypted_aurora_cluster_arrives_with_a_writer`) and
/// `fleet.rs` (`a_killed_fleet_run_again_creates_nothing_twice`) hand `aws/rds` databases off.
#[tokio::test]
async fn an_aws_managed_key_snapshot_is_shared_but_no_other_account_can_copy_or_restore_it() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    let source_key = new_key(&source).await;
    let target_key = new_key(&target).await;
    mysql_instance(&source, "shim-aws", true).await;
    aurora_cluster(&source, "shim-awsc", true).await;
    for (kind, db) in [
        (DbKind::Instance, "shim-aws"),
        (DbKind::Cluster, "shim-awsc"),
    ] {
        let managed = format!("{db}-managed");
        snapshot(&source, kind, db, &managed).await;
        assert_eq!(
            share(&source, kind, &managed, TARGET).await,
            None,
            "{kind:?}: AWS lets the share through"
        );
        let arn = snapshot_arn(&source, kind, &managed);
        assert_eq!(
            copy(
                &target,
                kind,
                &arn,
                &format!("{db}-1"),
                Some(target_key.as_str())
            )
            .await
            .as_deref(),
            Some("KMSKeyNotAccessibleFault"),
            "{kind:?}: copied by another account"
        );
        assert_eq!(
            restore(&target, kind, &arn, &format!("{db}-2"))
                .await
                .as_deref(),
            Some("KMSKeyNotAccessibleFault"),
            "{kind:?}: restored by another account"
        );

        let own = format!("{db}-own");
        assert_eq!(
            copy(&source, kind, &managed, &own, Some(source_key.as_str())).await,
            None,
            "{kind:?}: the owner copies it under a key of its own"
        );
        assert_eq!(share(&source, kind, &own, TARGET).await, None);
        let arn = snapshot_arn(&source, kind, &own);
        assert_eq!(
            copy(
                &target,
                kind,
                &arn,
                &format!("{db}-3"),
                Some(target_key.as_str())
            )
            .await,
            None,
            "{kind:?}: the copy under the owner's own key is copied"
        );
        if kind == DbKind::Cluster {
            assert_eq!(
                restore(&target, kind, &arn, &format!("{db}-4")).await,
                None,
                "a shared Aurora snapshot under a key of its owner's is restored directly"
            );
        }
    }
}

/// The shim's eighth rule both ways: the other account copies a shared encrypted snapshot
/// only under a key of its own (`InvalidParameterValue` without `KmsKeyId`, a stand-in), and
/// restores a DB instance from its copy, never from the shared snapshot
/// (`InvalidDBSnapshotState`, a stand-in); a shared unencrypted snapshot is copied without a
/// key and restored directly, and a shared encrypted Aurora snapshot is restored directly.
/// Every import test runs the product's way: a copy under the target's key, restored.
#[tokio::test]
async fn a_shared_encrypted_snapshot_is_copied_only_under_a_key_and_restored_only_from_the_copy() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    let source_key = new_key(&source).await;
    let target_key = new_key(&target).await;
    mysql_instance(&source, "shim-enc", false).await;
    aurora_cluster(&source, "shim-encc", true).await;
    aurora_cluster(&source, "shim-plainc", false).await;
    for (kind, db) in [
        (DbKind::Instance, "shim-enc"),
        (DbKind::Cluster, "shim-encc"),
    ] {
        // Encrypted under the source's own key: the shareable kind.
        snapshot(&source, kind, db, &format!("{db}-first")).await;
        let encrypted = format!("{db}-shared");
        let first = format!("{db}-first");
        assert_eq!(
            copy(&source, kind, &first, &encrypted, Some(source_key.as_str())).await,
            None
        );
        assert_eq!(share(&source, kind, &encrypted, TARGET).await, None);
        let arn = snapshot_arn(&source, kind, &encrypted);
        assert_eq!(
            copy(&target, kind, &arn, &format!("{db}-nokey"), None)
                .await
                .as_deref(),
            Some("InvalidParameterValue"),
            "{kind:?}: a copy of a shared encrypted snapshot must name a key"
        );
        let copied = format!("{db}-copy");
        assert_eq!(
            copy(&target, kind, &arn, &copied, Some(target_key.as_str())).await,
            None,
            "{kind:?}: copied under the target's key"
        );
        assert_eq!(
            restore(&target, kind, &copied, &format!("{db}-fromcopy")).await,
            None,
            "{kind:?}: the target's copy is restored"
        );
        let direct = restore(&target, kind, &arn, &format!("{db}-direct")).await;
        match kind {
            DbKind::Instance => assert_eq!(
                direct.as_deref(),
                Some("InvalidDBSnapshotState"),
                "no instance is restored from a shared encrypted snapshot"
            ),
            DbKind::Cluster => assert_eq!(direct, None, "Aurora restores it directly"),
        }
    }

    snapshot(&source, DbKind::Instance, "shim-enc", "shim-plain-shared").await;
    snapshot(
        &source,
        DbKind::Cluster,
        "shim-plainc",
        "shim-plainc-shared",
    )
    .await;
    for (kind, name) in [
        (DbKind::Instance, "shim-plain-shared"),
        (DbKind::Cluster, "shim-plainc-shared"),
    ] {
        assert_eq!(share(&source, kind, name, TARGET).await, None);
        let arn = snapshot_arn(&source, kind, name);
        assert_eq!(
            copy(&target, kind, &arn, &format!("{name}-copy"), None).await,
            None,
            "{kind:?}: an unencrypted shared snapshot is copied without a key"
        );
        assert_eq!(
            restore(&target, kind, &arn, &format!("{name}-db")).await,
            None,
            "{kind:?}: and restored directly"
        );
    }
}

/// Across accounts, a snapshot not shared with the caller is not found, whatever the call:
/// CopyDBClusterSnapshot answers `DBClusterSnapshotNotFoundFault` and
/// RestoreDBInstanceFromDBSnapshot `DBSnapshotNotFound`, as AWS does; once shared, both go
/// through, into the caller's account.
#[tokio::test]
async fn an_unshared_snapshot_is_not_found_by_a_cluster_copy_or_an_instance_restore() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    mysql_instance(&source, "shim-hidden", false).await;
    aurora_cluster(&source, "shim-hiddenc", false).await;
    snapshot(&source, DbKind::Instance, "shim-hidden", "shim-hidden-snap").await;
    snapshot(
        &source,
        DbKind::Cluster,
        "shim-hiddenc",
        "shim-hiddenc-snap",
    )
    .await;
    let instance_arn = snapshot_arn(&source, DbKind::Instance, "shim-hidden-snap");
    let cluster_arn = snapshot_arn(&source, DbKind::Cluster, "shim-hiddenc-snap");
    let restore_it = || restore(&target, DbKind::Instance, &instance_arn, "shim-hidden-db");
    let copy_it = || {
        copy(
            &target,
            DbKind::Cluster,
            &cluster_arn,
            "shim-hiddenc-copy",
            None,
        )
    };
    assert_eq!(restore_it().await.as_deref(), Some("DBSnapshotNotFound"));
    assert_eq!(
        copy_it().await.as_deref(),
        Some("DBClusterSnapshotNotFoundFault")
    );
    assert_eq!(
        share(&source, DbKind::Instance, "shim-hidden-snap", TARGET).await,
        None
    );
    assert_eq!(
        share(&source, DbKind::Cluster, "shim-hiddenc-snap", TARGET).await,
        None
    );
    assert_eq!(restore_it().await, None, "shared: restored");
    assert_eq!(copy_it().await, None, "shared: copied");
    let restored = target
        .rds()
        .describe_db_instances()
        .db_instance_identifier("shim-hidden-db")
        .send()
        .await
        .unwrap();
    assert!(restored.db_instances()[0]
        .db_instance_arn()
        .unwrap()
        .contains(TARGET));
}

/// The shim's ninth rule both ways: an encrypted snapshot is never made public (`all` refused
/// with `InvalidDBSnapshotState` / `InvalidDBClusterSnapshotStateFault`, stand-ins, and its
/// `restore` attribute left as it was); an unencrypted one is, and then any account copies
/// it. The product shares with the target alone (`export.rs` checks the attribute).
#[tokio::test]
async fn an_encrypted_snapshot_is_never_made_public() {
    let source = Account::assume(SOURCE).await;
    let third = Account::assume(THIRD).await;
    mysql_instance(&source, "shim-pub-enc", true).await;
    mysql_instance(&source, "shim-pub", false).await;
    aurora_cluster(&source, "shim-pubc-enc", true).await;
    aurora_cluster(&source, "shim-pubc", false).await;
    let cases = [
        (
            DbKind::Instance,
            "shim-pub-enc",
            Some("InvalidDBSnapshotState"),
        ),
        (DbKind::Instance, "shim-pub", None),
        (
            DbKind::Cluster,
            "shim-pubc-enc",
            Some("InvalidDBClusterSnapshotStateFault"),
        ),
        (DbKind::Cluster, "shim-pubc", None),
    ];
    for (kind, db, refused) in cases {
        let name = format!("{db}-snap");
        snapshot(&source, kind, db, &name).await;
        assert_eq!(share(&source, kind, &name, "all").await.as_deref(), refused);
        let public = restore_attribute(&source, kind, &name).await;
        match refused {
            Some(_) => assert!(public.is_empty(), "{db}: {public:?}"),
            None => {
                assert_eq!(public, vec!["all".to_owned()], "{db}");
                let arn = snapshot_arn(&source, kind, &name);
                assert_eq!(
                    copy(&third, kind, &arn, &format!("{db}-any"), None).await,
                    None,
                    "{db}: public, so any account copies it"
                );
            }
        }
    }
}

/// `(used, max)` of the account quota `name` (`ManualSnapshots`, `ManualClusterSnapshots`).
async fn quota(account: &Account, name: &str) -> (i64, i64) {
    let out = account
        .rds()
        .describe_account_attributes()
        .send()
        .await
        .unwrap();
    let found = out
        .account_quotas()
        .iter()
        .find(|q| q.account_quota_name() == Some(name))
        .unwrap_or_else(|| panic!("no {name} quota: {out:?}"));
    (found.used().unwrap_or(-1), found.max().unwrap_or(-1))
}

/// The shim's tenth rule both ways: AWS's default quota of 100 manual snapshots per region,
/// instance and cluster snapshots apart, automated snapshots not counted.
/// DescribeAccountAttributes says so; the 101st manual snapshot, made or copied, is refused
/// with `SnapshotQuotaExceeded`; a new instance (which takes an automated snapshot) is still
/// made, and a deleted snapshot makes room for one more. `export.rs` runs an export into a
/// full quota.
#[tokio::test]
async fn the_manual_snapshot_quota_is_awss_and_counts_manual_snapshots_only() {
    let source = Account::assume(SOURCE).await;
    let rds = source.rds();
    mysql_instance(&source, "shim-quota", false).await;
    assert_eq!(
        quota(&source, "ManualSnapshots").await,
        (0, 100),
        "the instance's automated snapshot is not counted"
    );
    assert_eq!(quota(&source, "ManualClusterSnapshots").await, (0, 100));
    for i in 0..100 {
        let name = format!("shim-fill-{i}");
        snapshot(&source, DbKind::Instance, "shim-quota", &name).await;
    }
    assert_eq!(quota(&source, "ManualSnapshots").await, (100, 100));
    let over = rds
        .create_db_snapshot()
        .db_instance_identifier("shim-quota")
        .db_snapshot_identifier("shim-over")
        .send()
        .await;
    assert_eq!(refusal(&over).as_deref(), Some("SnapshotQuotaExceeded"));
    assert_eq!(
        copy(&source, DbKind::Instance, "shim-fill-1", "shim-over", None)
            .await
            .as_deref(),
        Some("SnapshotQuotaExceeded")
    );
    mysql_instance(&source, "shim-quota-2", false).await;
    rds.delete_db_snapshot()
        .db_snapshot_identifier("shim-fill-0")
        .send()
        .await
        .unwrap();
    snapshot(&source, DbKind::Instance, "shim-quota", "shim-room").await;
    assert_eq!(quota(&source, "ManualSnapshots").await, (100, 100));

    aurora_cluster(&source, "shim-cquota", false).await;
    for i in 0..100 {
        let name = format!("shim-cfill-{i}");
        snapshot(&source, DbKind::Cluster, "shim-cquota", &name).await;
    }
    assert_eq!(quota(&source, "ManualClusterSnapshots").await, (100, 100));
    let over = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier("shim-cquota")
        .db_cluster_snapshot_identifier("shim-cover")
        .send()
        .await;
    assert_eq!(refusal(&over).as_deref(), Some("SnapshotQuotaExceeded"));
    assert_eq!(
        copy(&source, DbKind::Cluster, "shim-cfill-1", "shim-cover", None)
            .await
            .as_deref(),
        Some("SnapshotQuotaExceeded")
    );
}

/// A one-task state machine that describes a DB instance: the request from `parameters`, or,
/// with `None`, from the execution's input.
fn describe_machine(parameters: Option<serde_json::Value>) -> String {
    let mut task = json!({
        "Type": "Task",
        "Resource": "arn:aws:states:::aws-sdk:rds:describeDBInstances",
        "End": true,
    });
    if let Some(parameters) = parameters {
        task["Parameters"] = parameters;
    }
    json!({ "StartAt": "Find", "States": { "Find": task } }).to_string()
}

/// Starts `machine` as execution `name` with `input` and waits (60 s at most) for its end.
async fn run_to_end(
    sfn: &aws_sdk_sfn::Client,
    machine: &str,
    name: &str,
    input: &str,
) -> aws_sdk_sfn::operation::describe_execution::DescribeExecutionOutput {
    let execution = sfn
        .start_execution()
        .state_machine_arn(machine)
        .name(name)
        .input(input)
        .send()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let described = sfn
            .describe_execution()
            .execution_arn(execution.execution_arn())
            .send()
            .await
            .unwrap();
        if described.status().as_str() != "RUNNING" {
            return described;
        }
        assert!(Instant::now() < deadline, "{name} still runs after 60 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Step Functions shim's role rule both ways: a state machine is made only with a role
/// that exists and whose trust policy lets Step Functions assume it for that state machine
/// (AWS's `AccessDeniedException` otherwise, at CreateStateMachine and UpdateStateMachine);
/// the toolkit's role (`policies/execution-role.trust.json`) serves its own state machines
/// (`rds-handoff-*`) only; an execution whose role stopped trusting Step Functions fails its
/// task (`States.Runtime`, a stand-in). Every `--engine step-functions` test runs as the role.
#[tokio::test]
async fn a_state_machine_runs_only_as_a_role_that_exists_and_trusts_step_functions() {
    let source = Account::assume(SOURCE).await;
    let sfn = aws_sdk_sfn::Client::new(&source.config());
    mysql_instance(&source, "shim-role", false).await;
    let trusting = |service: &str| {
        json!({
            "Version": "2012-10-17",
            "Statement": [{
                "Effect": "Allow",
                "Principal": { "Service": service },
                "Action": "sts:AssumeRole",
            }],
        })
        .to_string()
    };
    for (name, service) in [
        ("shim-ec2-role", "ec2.amazonaws.com"),
        ("shim-states-role", "states.amazonaws.com"),
    ] {
        let trust = trusting(service);
        let (status, body) = source.iam(
            "CreateRole",
            &[
                ("RoleName", name),
                ("AssumeRolePolicyDocument", trust.as_str()),
            ],
        );
        assert_eq!(status, 200, "{body}");
    }
    let role = |name: &str| format!("arn:aws:iam::{SOURCE}:role/{name}");
    let definition = describe_machine(Some(json!({ "DbInstanceIdentifier": "shim-role" })));
    let create = |name: &'static str, role_arn: String| {
        sfn.create_state_machine()
            .name(name)
            .definition(definition.clone())
            .role_arn(role_arn)
            .send()
    };
    for (machine, role_arn, why) in [
        (
            "rds-handoff-shim-a",
            role("shim-no-such-role"),
            "a role that does not exist",
        ),
        (
            "rds-handoff-shim-b",
            role("shim-ec2-role"),
            "a role that trusts EC2 only",
        ),
        (
            "shim-other",
            role(EXECUTION_ROLE),
            "the toolkit's role, for another state machine",
        ),
    ] {
        assert_eq!(
            refusal(&create(machine, role_arn).await).as_deref(),
            Some("AccessDeniedException"),
            "{why}"
        );
    }
    create("rds-handoff-shim-role", role(EXECUTION_ROLE))
        .await
        .expect("the toolkit's role, for its state machine");
    let machine = create("shim-runtime", role("shim-states-role"))
        .await
        .expect("a role that trusts Step Functions");
    let updated = sfn
        .update_state_machine()
        .state_machine_arn(machine.state_machine_arn())
        .role_arn(role("shim-ec2-role"))
        .send()
        .await;
    assert_eq!(refusal(&updated).as_deref(), Some("AccessDeniedException"));

    let before = run_to_end(&sfn, machine.state_machine_arn(), "before", "{}").await;
    assert_eq!(before.status().as_str(), "SUCCEEDED", "{before:?}");
    let trust = trusting("ec2.amazonaws.com");
    let (status, body) = source.iam(
        "UpdateAssumeRolePolicy",
        &[
            ("RoleName", "shim-states-role"),
            ("PolicyDocument", trust.as_str()),
        ],
    );
    assert_eq!(status, 200, "{body}");
    let after = run_to_end(&sfn, machine.state_machine_arn(), "after", "{}").await;
    assert_eq!(after.status().as_str(), "FAILED", "{after:?}");
    assert_eq!(after.error(), Some("States.Runtime"));
    assert!(
        after
            .cause()
            .unwrap_or_default()
            .contains("is authorized to assume the provided role"),
        "{after:?}"
    );
}

/// The Step Functions shim's spelling rule both ways: a definition that spells a parameter
/// as botocore does (`DBInstanceIdentifier`) is refused by CreateStateMachine with AWS's
/// `InvalidDefinition` (SCHEMA_VALIDATION_FAILED); AWS's spelling runs. A Task without
/// `Parameters` sends nothing of its input. The product's three definitions are accepted.
#[tokio::test]
async fn botocore_spellings_are_refused_and_the_products_definitions_use_none() {
    let source = Account::assume(SOURCE).await;
    let sfn = aws_sdk_sfn::Client::new(&source.config());
    mysql_instance(&source, "shim-spell", false).await;
    let role = format!("arn:aws:iam::{SOURCE}:role/{EXECUTION_ROLE}");
    let refused = sfn
        .create_state_machine()
        .name("rds-handoff-shim-botocore")
        .definition(describe_machine(Some(
            json!({ "DBInstanceIdentifier": "shim-spell" }),
        )))
        .role_arn(&role)
        .send()
        .await;
    assert_eq!(refusal(&refused).as_deref(), Some("InvalidDefinition"));
    let message = refused
        .as_ref()
        .err()
        .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::message(e))
        .unwrap_or_default();
    assert!(
        message.contains("SCHEMA_VALIDATION_FAILED")
            && message.contains("\"DBInstanceIdentifier\""),
        "{message}"
    );

    // A Task without `Parameters` sends an empty request, as moto and LocalStack do (AWS
    // documents parameters through `Parameters` only): never its input.
    let machine = sfn
        .create_state_machine()
        .name("rds-handoff-shim-input")
        .definition(describe_machine(None))
        .role_arn(&role)
        .send()
        .await
        .expect("a task without Parameters");
    let arn = machine.state_machine_arn();
    let unstated = run_to_end(
        &sfn,
        arn,
        "unstated",
        r#"{"DbInstanceIdentifier": "no-such-database"}"#,
    )
    .await;
    assert_eq!(unstated.status().as_str(), "SUCCEEDED", "{unstated:?}");
    assert!(
        unstated.output().unwrap_or_default().contains("shim-spell"),
        "the input was not the request: every database is described: {unstated:?}"
    );
    let stated = sfn
        .create_state_machine()
        .name("rds-handoff-shim-stated")
        .definition(describe_machine(Some(
            json!({ "DbInstanceIdentifier.$": "$.DbInstanceIdentifier" }),
        )))
        .role_arn(&role)
        .send()
        .await
        .expect("a task that states its parameter");
    let aws = run_to_end(
        &sfn,
        stated.state_machine_arn(),
        "aws",
        r#"{"DbInstanceIdentifier": "shim-spell"}"#,
    )
    .await;
    assert_eq!(aws.status().as_str(), "SUCCEEDED", "{aws:?}");

    for workflow in Workflow::ALL {
        sfn.create_state_machine()
            .name(workflow.state_machine())
            .definition(asl::definition(workflow, &asl::Deployment::committed()))
            .role_arn(&role)
            .send()
            .await
            .unwrap_or_else(|e| panic!("the {} definition: {e:?}", workflow.name()));
    }
}

/// Where a copy says it came from: `SourceRegion` (a DB snapshot), the region of
/// `SourceDBClusterSnapshotArn` (a DB cluster snapshot).
async fn copied_from(who: &Account, kind: DbKind, name: &str) -> Option<String> {
    let rds = who.rds();
    match kind {
        DbKind::Instance => {
            let out = rds
                .describe_db_snapshots()
                .db_snapshot_identifier(name)
                .send()
                .await
                .unwrap();
            out.db_snapshots()[0].source_region().map(str::to_owned)
        }
        DbKind::Cluster => {
            let out = rds
                .describe_db_cluster_snapshots()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .unwrap();
            let arn = out.db_cluster_snapshots()[0].source_db_cluster_snapshot_arn();
            arn.and_then(|a| a.split(':').nth(3)).map(str::to_owned)
        }
    }
}

/// The eleventh rule: an encrypted snapshot copied into another region needs a key of that
/// region (moto's own check refuses one of another region), and a copy across regions says
/// where it came from; an unencrypted one needs none, and a copy within a region says nothing.
#[tokio::test]
async fn a_copy_across_regions_needs_a_key_there_and_says_where_it_came_from() {
    let here = Account::assume(SOURCE).await;
    let there = here.in_region("us-west-2");
    mysql_instance(&here, "xrs-plain", false).await;
    mysql_instance(&here, "xrs-enc", true).await;
    aurora_cluster(&here, "xrs-cl", true).await;
    let instance = DbKind::Instance;
    snapshot(&here, instance, "xrs-plain", "xrs-plain-s").await;
    snapshot(&here, instance, "xrs-enc", "xrs-enc-s").await;
    snapshot(&here, DbKind::Cluster, "xrs-cl", "xrs-cl-s").await;
    let arn = |kind, name| snapshot_arn(&here, kind, name);

    let plain = arn(instance, "xrs-plain-s");
    assert_eq!(
        copy(&there, instance, &plain, "xrs-plain-c", None).await,
        None
    );
    assert_eq!(
        copied_from(&there, instance, "xrs-plain-c")
            .await
            .as_deref(),
        Some("us-east-1")
    );
    assert_eq!(
        copy(&here, instance, "xrs-plain-s", "xrs-plain-local", None).await,
        None
    );
    assert_eq!(copied_from(&here, instance, "xrs-plain-local").await, None);

    let encrypted = arn(instance, "xrs-enc-s");
    let refused = copy(&there, instance, &encrypted, "xrs-enc-c", None).await;
    assert_eq!(refused.as_deref(), Some("InvalidParameterValue"));
    let key_here = new_key(&here).await;
    let refused = copy(&there, instance, &encrypted, "xrs-enc-c", Some(&key_here)).await;
    assert_eq!(refused.as_deref(), Some("KMSKeyNotAccessibleFault"));
    let key_there = new_key(&there).await;
    assert_eq!(
        copy(&there, instance, &encrypted, "xrs-enc-c", Some(&key_there)).await,
        None
    );
    let described = there
        .rds()
        .describe_db_snapshots()
        .db_snapshot_identifier("xrs-enc-c")
        .send()
        .await
        .unwrap();
    assert_eq!(
        described.db_snapshots()[0].source_db_snapshot_identifier(),
        Some(encrypted.as_str()),
        "the copy names the snapshot it was copied from"
    );

    let cluster = arn(DbKind::Cluster, "xrs-cl-s");
    let refused = copy(&there, DbKind::Cluster, &cluster, "xrs-cl-c", None).await;
    assert_eq!(refused.as_deref(), Some("InvalidParameterValue"));
    assert_eq!(
        copy(
            &there,
            DbKind::Cluster,
            &cluster,
            "xrs-cl-c",
            Some(&key_there)
        )
        .await,
        None
    );
    assert_eq!(
        copied_from(&there, DbKind::Cluster, "xrs-cl-c")
            .await
            .as_deref(),
        Some("us-east-1")
    );
}
