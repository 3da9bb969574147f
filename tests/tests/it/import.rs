//! `tgt-agent import` against the emulator: export as the source, import as the target.

use e2e::fixtures::{
    aurora_cluster, describe_instance, footprint, key_arn, mysql_instance, tag_instance,
};
use e2e::{Account, Agent, Workdir, THIRD};
use rds_handoff::base::manifest::Manifest;

use crate::common::{accounts, export, import};

/// What an import must have left in the target account.
async fn assert_imported(target: &Account, db: &str, cluster: bool, net: &e2e::fixtures::Network) {
    let key_arn = key_arn(target, &format!("alias/rds-handoff/imported/{db}")).await;
    assert!(
        key_arn.contains(e2e::TARGET),
        "the target's own key: {key_arn}"
    );
    let rds = target.rds();
    let (encrypted, kms, subnet_group, sgs, public, endpoint, port) = if cluster {
        let c = rds
            .describe_db_clusters()
            .db_cluster_identifier(db)
            .send()
            .await
            .unwrap();
        let c = &c.db_clusters()[0];
        let writer = rds
            .describe_db_instances()
            .db_instance_identifier(format!("{db}-writer"))
            .send()
            .await
            .unwrap();
        assert_eq!(
            writer.db_instances()[0].db_cluster_identifier(),
            Some(db),
            "the writer instance is in the cluster"
        );
        (
            c.storage_encrypted().unwrap_or(false),
            c.kms_key_id().map(str::to_owned),
            c.db_subnet_group().map(str::to_owned),
            c.vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect::<Vec<_>>(),
            writer.db_instances()[0].publicly_accessible(),
            c.endpoint().map(str::to_owned),
            c.port(),
        )
    } else {
        let i = rds
            .describe_db_instances()
            .db_instance_identifier(db)
            .send()
            .await
            .unwrap();
        let i = &i.db_instances()[0];
        (
            i.storage_encrypted().unwrap_or(false),
            i.kms_key_id().map(str::to_owned),
            i.db_subnet_group()
                .and_then(|g| g.db_subnet_group_name())
                .map(str::to_owned),
            i.vpc_security_groups()
                .iter()
                .filter_map(|g| g.vpc_security_group_id().map(str::to_owned))
                .collect::<Vec<_>>(),
            i.publicly_accessible(),
            i.endpoint().and_then(|e| e.address()).map(str::to_owned),
            i.endpoint().and_then(|e| e.port()),
        )
    };
    assert!(encrypted, "encrypted");
    assert_eq!(
        kms.as_deref(),
        Some(key_arn.as_str()),
        "encrypted with the target's key"
    );
    assert_eq!(subnet_group.as_deref(), Some(net.subnet_group.as_str()));
    assert_eq!(sgs, vec![net.security_group.clone()]);
    assert_ne!(public, Some(true), "not publicly accessible");

    let secret = target
        .secrets()
        .get_secret_value()
        .secret_id(format!("rds-handoff/{db}/master"))
        .send()
        .await
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(secret.secret_string().unwrap()).unwrap();
    assert_eq!(value["host"].as_str(), endpoint.as_deref());
    assert_eq!(value["port"].as_i64(), port.map(i64::from));
    assert_eq!(value["username"], "admin");
    assert_eq!(value["dbname"], "shop");
    assert_eq!(value["engine"], "mysql");
    // Strong, and usable as is in a shell or a connection URI (no quoting, no escaping).
    let password = value["password"].as_str().unwrap();
    assert_eq!(password.len(), 40);
    let plain = |c: char| c.is_ascii_alphanumeric() || "-._".contains(c);
    assert!(
        password.chars().all(plain),
        "a character to quote or escape"
    );
    assert!(password.starts_with(|c: char| c.is_ascii_alphanumeric()));
    let id_field = if cluster {
        "dbClusterIdentifier"
    } else {
        "dbInstanceIdentifier"
    };
    assert_eq!(value[id_field], db);
    let meta = target
        .secrets()
        .describe_secret()
        .secret_id(format!("rds-handoff/{db}/master"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        meta.kms_key_id(),
        Some(key_arn.as_str()),
        "the secret is under the target's key"
    );
}

async fn assert_second_import_is_noop(wd: &Workdir, target: &Account, db: &str) {
    let before = footprint(target, db).await;
    let (run, _) = import(wd, target, db, &[]).await;
    let run = run.ok();
    assert!(run.stdout.contains("already imported"), "{}", run.stdout);
    assert_eq!(
        footprint(target, db).await,
        before,
        "a second import creates nothing"
    );
}

#[tokio::test]
async fn unencrypted_instance_arrives_encrypted_under_the_target_key() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-inst");
    mysql_instance(&source, "imp-inst", false).await;
    export(&wd, &source, "--db-instance", "imp-inst", &[])
        .await
        .ok();
    let (run, net) = import(&wd, &target, "imp-inst", &[]).await;
    let run = run.ok();
    assert!(
        run.stdout
            .contains("master secret: rds-handoff/imp-inst/master"),
        "{}",
        run.stdout
    );
    assert_imported(&target, "imp-inst", false, &net).await;
    let left = footprint(&target, "imp-inst").await;
    assert!(
        left.snapshots.is_empty(),
        "the intermediate copy is deleted: {:?}",
        left.snapshots
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(wd.file("imp-inst.import.json")).unwrap())
            .unwrap();
    assert!(report["secret_arn"]
        .as_str()
        .unwrap()
        .contains(":secret:rds-handoff/imp-inst/master"));
    assert_second_import_is_noop(&wd, &target, "imp-inst").await;
}

#[tokio::test]
async fn encrypted_aurora_cluster_arrives_with_a_writer() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-aurora");
    aurora_cluster(&source, "imp-aurora", true).await;
    export(&wd, &source, "--db-cluster", "imp-aurora", &[])
        .await
        .ok();
    let (run, net) = import(&wd, &target, "imp-aurora", &[]).await;
    run.ok();
    assert_imported(&target, "imp-aurora", true, &net).await;
    assert_second_import_is_noop(&wd, &target, "imp-aurora").await;
}

#[tokio::test]
async fn unencrypted_cluster_share_is_encrypted_by_the_target_restore() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-ucluster");
    aurora_cluster(&source, "imp-ucluster", false).await;
    export(
        &wd,
        &source,
        "--db-cluster",
        "imp-ucluster",
        &["--allow-unencrypted-share"],
    )
    .await
    .ok();
    let (run, net) = import(&wd, &target, "imp-ucluster", &[]).await;
    run.ok();
    assert_imported(&target, "imp-ucluster", true, &net).await;
}

#[tokio::test]
async fn check_verifies_without_changing_anything() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-check");
    mysql_instance(&source, "imp-check", false).await;
    export(&wd, &source, "--db-instance", "imp-check", &[])
        .await
        .ok();
    let net = e2e::fixtures::network(&target);
    let before = footprint(&target, "imp-check").await;
    let sha = e2e::agents::sha_of(wd.path(), "imp-check.handoff.json");
    let run = wd
        .run(
            Agent::Tgt,
            &target,
            &[
                "check",
                "imp-check.handoff.json",
                "--source-account",
                e2e::SOURCE,
                "--manifest-sha256",
                &sha,
                "--db-subnet-group-name",
                &net.subnet_group,
                "--vpc-security-group-ids",
                &net.security_group,
            ],
        )
        .await
        .ok();
    assert!(run.stdout.contains("ready to import"), "{}", run.stdout);
    let (dry, _) = import(&wd, &target, "imp-check", &["--dry-run"]).await;
    let dry = dry.ok();
    assert!(
        dry.stderr
            .contains("create         restore into rh-test-subnets with")
            && dry.stderr.contains(": imp-check"),
        "{}",
        dry.stderr
    );
    assert_eq!(footprint(&target, "imp-check").await, before);
}

#[tokio::test]
async fn refusals_create_nothing() {
    let (source, target) = accounts().await;
    let third = Account::assume(THIRD).await;
    let wd = Workdir::new("imp-refuse");
    mysql_instance(&source, "imp-refuse", false).await;
    export(&wd, &source, "--db-instance", "imp-refuse", &[])
        .await
        .ok();
    let good = std::fs::read_to_string(wd.file("imp-refuse.handoff.json")).unwrap();
    let manifest = Manifest::parse(good.as_bytes()).unwrap();
    let key = manifest.snapshot.kms_key_arn.clone().unwrap().to_string();
    let write = |text: &str| std::fs::write(wd.file("imp-refuse.handoff.json"), text).unwrap();
    let before = footprint(&target, "imp-refuse").await;

    // Another account runs it.
    let (run, _) = import(&wd, &third, "imp-refuse", &[]).await;
    run.refused(3, "you are in account `333333333333`");
    // The snapshot ARN or the key was edited.
    write(&good.replace(
        "snapshot:rh-imp-refuse-to-222222222222",
        "snapshot:rh-imp-other-to-222222222222",
    ));
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(3, "is not shared with account `222222222222`");
    write(&good.replace(
        "arn:aws:rds:us-east-1:111111111111:snapshot",
        "arn:aws:rds:us-east-1:444444444444:snapshot",
    ));
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(3, "the shared snapshot's account is `444444444444`");
    write(&good.replace(
        &key,
        "arn:aws:kms:us-east-1:111111111111:key/00000000-0000-0000-0000-000000000000",
    ));
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(3, "not with the manifest's key");
    // Unknown schema version, malformed JSON: refused before any AWS call.
    write(&good.replace("\"schema\": 3", "\"schema\": 7"));
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(2, "schema version 7");
    write(&good[..good.len() / 3]);
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(2, "not valid JSON");
    // The snapshot is no longer shared with us.
    write(&good);
    let id = manifest
        .snapshot
        .arn
        .resource
        .trim_start_matches("snapshot:")
        .to_owned();
    source
        .rds()
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier(&id)
        .attribute_name("restore")
        .values_to_remove(e2e::TARGET)
        .send()
        .await
        .unwrap();
    import(&wd, &target, "imp-refuse", &[])
        .await
        .0
        .refused(3, "is not shared with account `222222222222`");

    assert_eq!(
        footprint(&target, "imp-refuse").await,
        before,
        "refusals create nothing"
    );
    assert!(!wd.file("imp-refuse.import.json").exists());
}

#[tokio::test]
async fn rds_managed_password_leaves_the_secret_to_rds_under_our_key() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-managed");
    aurora_cluster(&source, "impm-db", true).await;
    export(&wd, &source, "--db-cluster", "impm-db", &[])
        .await
        .ok();
    let (run, _) = import(&wd, &target, "impm-db", &["--password-mode", "rds-managed"]).await;
    run.ok();
    let key_arn = key_arn(&target, "alias/rds-handoff/imported/impm-db").await;
    let cluster = target
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier("impm-db")
        .send()
        .await
        .unwrap();
    let secret = cluster.db_clusters()[0]
        .master_user_secret()
        .expect("RDS manages the master password");
    assert_eq!(
        secret.kms_key_id(),
        Some(key_arn.as_str()),
        "under the target's key"
    );
    assert!(
        footprint(&target, "impm-db")
            .await
            .secrets
            .iter()
            .all(|s| !s.starts_with("rds-handoff/")),
        "no secret of the toolkit's own"
    );
    let report = std::fs::read_to_string(wd.file("impm-db.import.json")).unwrap();
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    assert!(report["secret_arn"].is_null(), "{report}");
}

/// A source with AWS's fifty tags: the restored database takes the toolkit's three and the
/// first forty-seven of the source's (AWS refuses a fifty-first), and the import says which
/// it left out.
#[tokio::test]
async fn a_source_with_fifty_tags_is_restored_with_the_toolkits_and_says_what_it_left_out() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("imp-tags");
    mysql_instance(&source, "imp-tags", false).await;
    // The fixture's two, and forty-eight more.
    let keys: Vec<String> = (0..48).map(|i| format!("k{i:02}")).collect();
    let more: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();
    tag_instance(&source, "imp-tags", &more).await;
    export(&wd, &source, "--db-instance", "imp-tags", &[])
        .await
        .ok();
    let (run, _) = import(&wd, &target, "imp-tags", &[]).await;
    let run = run.ok();
    assert!(
        run.stderr.contains(
            "the original's tags k46, k47, team are left out: AWS allows 50 tags on a database"
        ),
        "{}",
        run.stderr
    );
    let restored = describe_instance(&target, "imp-tags").await;
    let keys: Vec<&str> = restored.tag_list().iter().filter_map(|t| t.key()).collect();
    assert_eq!(keys.len(), 50, "{keys:?}");
    assert!(keys.contains(&"rds-handoff:role") && keys.contains(&"env") && !keys.contains(&"team"));
}
