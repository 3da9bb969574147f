//! Aurora clusters made since 2026-02-18, encrypted with an AWS owned key (`sse-rds`,
//! DOMAIN.md §14): handed off through a temporary cluster restored under the toolkit's key,
//! never shared or copied as they are; the target always names its own key.

use e2e::agents::sha_of;
use e2e::fixtures::{aurora_cluster, aurora_cluster_default, footprint, key_arn, mysql_instance};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE, TARGET};
use rds_handoff::base::vocabulary::Encryption;

use crate::common::{accounts, export, import, manifest};

/// A cluster's `StorageEncryptionType` and key, as RDS describes it.
async fn cluster_encryption(account: &Account, id: &str) -> (Option<String>, Option<String>) {
    let out = account
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap();
    let c = &out.db_clusters()[0];
    (
        c.storage_encryption_type().map(|t| t.as_str().to_owned()),
        c.kms_key_id().map(str::to_owned),
    )
}

async fn cluster_snapshot_encryption(
    account: &Account,
    id: &str,
) -> (Option<String>, Option<String>) {
    let out = account
        .rds()
        .describe_db_cluster_snapshots()
        .db_cluster_snapshot_identifier(id)
        .send()
        .await
        .unwrap();
    let s = &out.db_cluster_snapshots()[0];
    (
        s.storage_encryption_type().map(|t| t.as_str().to_owned()),
        s.kms_key_id().map(str::to_owned),
    )
}

/// The value of `field` in each form-encoded request body the proxy saw for `action`.
fn request_field(proxy: &Proxy, action: &str, field: &str) -> Vec<Option<String>> {
    proxy
        .stats
        .bodies(action)
        .iter()
        .map(|body| {
            form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == field)
                .map(|(_, v)| v.into_owned())
        })
        .collect()
}

async fn proxy() -> Proxy {
    Proxy::start(&Emulator::get().url, FaultPlan::default()).await
}

#[tokio::test]
async fn an_aws_owned_key_cluster_is_rekeyed_through_a_temporary_cluster_and_imported() {
    let (source, target) = accounts().await;
    let db = "sse-orders";
    aurora_cluster_default(&source, db).await;
    assert_eq!(
        cluster_encryption(&source, db).await.0.as_deref(),
        Some("sse-rds"),
        "the emulator makes clusters as AWS does since 2026-02-18"
    );
    let wd = Workdir::new(db);
    let export_args = ["export", "--db-cluster", db, "--target-account", TARGET];

    let plan = wd
        .run(
            Agent::Src,
            &source,
            &[&export_args[..], &["--dry-run"]].concat(),
        )
        .await
        .ok();
    let temp = format!("rh-{db}-to-{TARGET}-tmp");
    assert!(
        plan.stderr.lines().any(|l| l.starts_with("create")
            && l.contains("restore")
            && l.contains("under alias/rds-handoff/")
            && l.ends_with(&temp)),
        "the plan shows the restore path: {}",
        plan.stderr
    );
    assert!(
        !plan
            .stderr
            .lines()
            .any(|l| l.starts_with("create") && l.contains("copy of")),
        "and no copy: {}",
        plan.stderr
    );
    assert!(
        plan.stderr.contains("AWS owned key (sse-rds)"),
        "the plan says why: {}",
        plan.stderr
    );

    let src_proxy = proxy().await;
    wd.via(&src_proxy, Agent::Src, &source, &export_args)
        .await
        .ok();
    assert!(
        src_proxy.stats.bodies("CopyDBClusterSnapshot").is_empty(),
        "no copy of an sse-rds snapshot: AWS documents none that re-keys it"
    );
    let key = key_arn(&source, &format!("alias/rds-handoff/{db}")).await;
    assert_eq!(
        request_field(&src_proxy, "RestoreDBClusterFromSnapshot", "KmsKeyId"),
        vec![Some(key.clone())],
        "the temporary cluster is restored under the toolkit's key"
    );
    assert_eq!(
        request_field(
            &src_proxy,
            "ModifyDBClusterSnapshotAttribute",
            "DBClusterSnapshotIdentifier"
        ),
        vec![Some(format!("rh-{db}-to-{TARGET}"))],
        "only the snapshot of the re-keyed temporary cluster is shared"
    );

    let m = manifest(&wd, db);
    assert_eq!(m.snapshot.source_encryption, Some(Encryption::AwsOwnedKey));
    assert!(m.snapshot.encrypted);
    assert_eq!(
        m.snapshot.kms_key_arn.as_ref().map(|a| a.as_str()),
        Some(key.as_str())
    );
    let shared = format!("rh-{db}-to-{TARGET}");
    assert_eq!(
        cluster_snapshot_encryption(&source, &shared).await,
        (Some("sse-kms".to_owned()), Some(key.clone())),
        "the shared snapshot is under the toolkit's key"
    );
    let left = footprint(&source, db).await;
    assert_eq!(
        left.databases,
        vec![db.to_owned(), format!("{db}-1")],
        "the temporary cluster is gone"
    );
    assert_eq!(left.snapshots, vec![shared.clone()]);
    assert_eq!(left.keys.len(), 1);

    let again = wd.run(Agent::Src, &source, &export_args).await.ok();
    assert!(
        again.stdout.contains("already exported"),
        "{}",
        again.stdout
    );
    assert_eq!(
        footprint(&source, db).await,
        left,
        "a re-run creates nothing"
    );

    let tgt_proxy = proxy().await;
    let (run, net) = import(&wd, &target, db, &["--dry-run"]).await;
    run.ok();
    let manifest_file = format!("{db}.handoff.json");
    let sha = sha_of(wd.path(), &manifest_file);
    let import_args = [
        "import",
        &manifest_file,
        "--source-account",
        SOURCE,
        "--manifest-sha256",
        &sha,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    wd.via(&tgt_proxy, Agent::Tgt, &target, &import_args)
        .await
        .ok();
    let target_key = key_arn(&target, &format!("alias/rds-handoff/imported/{db}")).await;
    assert_eq!(
        request_field(&tgt_proxy, "RestoreDBClusterFromSnapshot", "KmsKeyId"),
        vec![Some(target_key.clone())],
        "the target's restore names its own key: without one it would stay on the source's"
    );
    assert_eq!(
        cluster_encryption(&target, db).await,
        (Some("sse-kms".to_owned()), Some(target_key)),
        "the target's cluster is under the target's key"
    );
    let tgt = footprint(&target, db).await;
    let again = wd.run(Agent::Tgt, &target, &import_args).await.ok();
    assert!(
        again.stdout.contains("already imported"),
        "{}",
        again.stdout
    );
    assert_eq!(
        footprint(&target, db).await,
        tgt,
        "a re-import creates nothing"
    );
}

#[tokio::test]
async fn an_instance_import_copies_under_the_targets_own_key() {
    let (source, target) = accounts().await;
    let db = "sse-inst";
    mysql_instance(&source, db, false).await;
    let wd = Workdir::new(db);
    export(&wd, &source, "--db-instance", db, &[]).await.ok();
    let net = e2e::fixtures::network(&target);
    let manifest_file = format!("{db}.handoff.json");
    let sha = sha_of(wd.path(), &manifest_file);
    let args = [
        "import",
        &manifest_file,
        "--source-account",
        SOURCE,
        "--manifest-sha256",
        &sha,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    let proxy = proxy().await;
    wd.via(&proxy, Agent::Tgt, &target, &args).await.ok();
    let target_key = key_arn(&target, &format!("alias/rds-handoff/imported/{db}")).await;
    assert_eq!(
        request_field(&proxy, "CopyDBSnapshot", "KmsKeyId"),
        vec![Some(target_key.clone())],
        "an instance restore takes no key: the copy before it names the target's"
    );
    let restored = e2e::fixtures::describe_instance(&target, db).await;
    assert_eq!(restored.kms_key_id(), Some(target_key.as_str()));
}

#[tokio::test]
async fn encrypt_of_an_aws_owned_key_cluster_is_refused_unless_a_key_is_named() {
    let source = Account::assume(SOURCE).await;
    let db = "sse-enc";
    aurora_cluster_default(&source, db).await;
    let wd = Workdir::new(db);
    let nothing = footprint(&source, db).await;
    let run = wd
        .run(Agent::Src, &source, &["encrypt", "--db-cluster", db])
        .await
        .refused(3, "AWS owned key");
    assert!(
        run.stderr.contains("already encrypted at rest"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--kms-key-id"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains(&format!("src-agent export --db-cluster {db}")),
        "{}",
        run.stderr
    );
    assert_eq!(
        footprint(&source, db).await,
        nothing,
        "a refusal creates nothing"
    );

    let run = wd
        .run(
            Agent::Src,
            &source,
            &[
                "encrypt",
                "--db-cluster",
                db,
                "--key-alias",
                "alias/sse-enc-own",
            ],
        )
        .await
        .ok();
    assert!(
        run.stdout.contains(&format!("{db}-encrypted")),
        "{}",
        run.stdout
    );
    let key = key_arn(&source, "alias/sse-enc-own").await;
    assert_eq!(
        cluster_encryption(&source, &format!("{db}-encrypted")).await,
        (Some("sse-kms".to_owned()), Some(key)),
        "moved under the named key by the restore"
    );
}

/// The shim's fifth rule, both ways: what AWS refuses (sharing an `sse-rds` snapshot with
/// another account) is refused, what AWS allows still works, and restores end as AWS's do.
#[tokio::test]
async fn the_emulator_refuses_to_share_an_aws_owned_key_snapshot_as_aws_does() {
    let source = Account::assume(SOURCE).await;
    let rds = source.rds();
    let share = |id: &'static str| {
        rds.modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(id)
            .attribute_name("restore")
            .values_to_add(TARGET)
            .send()
    };
    aurora_cluster_default(&source, "shim-sse").await;
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("shim-sse")
        .db_cluster_snapshot_identifier("shim-sse-snap")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cluster_snapshot_encryption(&source, "shim-sse-snap")
            .await
            .0
            .as_deref(),
        Some("sse-rds")
    );
    let err = share("shim-sse-snap").await.unwrap_err();
    let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&err).map(str::to_owned);
    assert_eq!(
        code.as_deref(),
        Some("InvalidDBClusterSnapshotStateFault"),
        "{err:?}"
    );

    aurora_cluster(&source, "shim-kms", true).await;
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("shim-kms")
        .db_cluster_snapshot_identifier("shim-kms-snap")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cluster_snapshot_encryption(&source, "shim-kms-snap")
            .await
            .0
            .as_deref(),
        Some("sse-kms")
    );
    share("shim-kms-snap")
        .await
        .expect("a KMS-encrypted snapshot is shared");

    let key = source
        .kms()
        .create_key()
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    let copy = |from: &'static str, to: &'static str| {
        rds.copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(from)
            .target_db_cluster_snapshot_identifier(to)
            .kms_key_id(&key)
            .send()
    };
    let err = copy("shim-sse-snap", "shim-sse-copy").await.unwrap_err();
    let code = aws_sdk_rds::error::ProvideErrorMetadata::code(&err).map(str::to_owned);
    assert_eq!(
        code.as_deref(),
        Some("InvalidDBClusterSnapshotStateFault"),
        "no documented copy re-keys an AWS owned key: {err:?}"
    );
    copy("shim-kms-snap", "shim-kms-copy")
        .await
        .expect("a KMS-encrypted cluster snapshot is copied under another key");
    assert_eq!(
        cluster_snapshot_encryption(&source, "shim-kms-copy").await,
        (Some("sse-kms".to_owned()), Some(key.clone()))
    );

    aurora_cluster(&source, "shim-none", false).await;
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier("shim-none")
        .db_cluster_snapshot_identifier("shim-none-snap")
        .send()
        .await
        .unwrap();
    rds.restore_db_cluster_from_snapshot()
        .db_cluster_identifier("shim-none-restored")
        .snapshot_identifier("shim-none-snap")
        .engine("aurora-mysql")
        .send()
        .await
        .unwrap();
    assert_eq!(
        cluster_encryption(&source, "shim-none-restored")
            .await
            .0
            .as_deref(),
        Some("sse-rds"),
        "restored \"without encryption\" since 2026-02-18: AWS's owned key"
    );
}
