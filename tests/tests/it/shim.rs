//! The emulator shim (see the crate docs): a shared snapshot can be copied across accounts
//! by ARN; one not shared is refused as AWS refuses it.

use e2e::fixtures::{aurora_cluster, mysql_instance};
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
    let snap = source
        .rds()
        .create_db_cluster_snapshot()
        .db_cluster_identifier("shim-cluster")
        .db_cluster_snapshot_identifier("shim-csnap")
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
/// account and answers in AWS's spelling; from another account the same task does not see
/// the database and fails under AWS's error name; a definite path gives a value, a filter
/// that matches nothing an empty list.
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
            .name("shim-states")
            .definition(definition.to_string())
            .role_arn(format!("arn:aws:iam::{}:role/shim-states", account.id))
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
