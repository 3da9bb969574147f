//! After the handoff: revoke at the source, cleanup at the target.

use e2e::fixtures::{footprint, instance_state, key_arn, key_policy, key_state, mysql_instance};
use e2e::{Account, Agent, Workdir, TARGET};

use crate::common::{accounts, export, import, manifest};

/// The target copies the shared snapshot `arn` to `name` under its own key `key`, a request
/// AWS accepts while the snapshot is shared; the error code when it is refused.
async fn target_copy(target: &Account, arn: &str, name: &str, key: &str) -> Result<(), String> {
    let sent = target
        .rds()
        .copy_db_snapshot()
        .source_db_snapshot_identifier(arn)
        .target_db_snapshot_identifier(name)
        .kms_key_id(key)
        .send()
        .await;
    match sent {
        Ok(_) => Ok(()),
        Err(err) => {
            let code = err
                .as_service_error()
                .and_then(|e| aws_sdk_rds::error::ProvideErrorMetadata::code(e));
            Err(code.map_or_else(|| format!("{err:?}"), str::to_owned))
        }
    }
}

#[tokio::test]
async fn revoke_after_import_cuts_the_target_off() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("rvk");
    mysql_instance(&source, "rvk-db", false).await;
    let before = instance_state(&source, "rvk-db").await;
    export(&wd, &source, "--db-instance", "rvk-db", &[])
        .await
        .ok();
    import(&wd, &target, "rvk-db", &[]).await.0.ok();
    let m = manifest(&wd, "rvk-db");
    let key = m.snapshot.kms_key_arn.clone().unwrap().to_string();
    let arn = m.snapshot.arn.to_string();
    // While shared, the target can copy the snapshot under a key of its own; the same request
    // after the revoke can fail only because of the revoke.
    let made = target.kms().create_key().send().await.unwrap();
    let target_key = made.key_metadata().unwrap().arn().unwrap().to_owned();
    assert_eq!(
        target_copy(&target, &arn, "rvk-try-shared", &target_key).await,
        Ok(()),
        "the target copies the shared snapshot"
    );
    target
        .rds()
        .delete_db_snapshot()
        .db_snapshot_identifier("rvk-try-shared")
        .send()
        .await
        .unwrap();

    // Scheduling the key's deletion while the shared snapshot still uses it is refused.
    let run = wd
        .run(
            Agent::Src,
            &source,
            &[
                "revoke",
                "rvk-db.handoff.json",
                "--schedule-key-deletion",
                "7",
            ],
        )
        .await;
    run.refused(3, "still encrypts snapshot `rh-rvk-db-to-222222222222`");
    let run = wd
        .run(Agent::Src, &source, &["revoke", "rvk-db.handoff.json"])
        .await
        .ok();
    assert!(run.stdout.contains("revoked"), "{}", run.stdout);

    let shared = target
        .rds()
        .describe_db_snapshots()
        .snapshot_type("shared")
        .include_shared(true)
        .send()
        .await
        .unwrap();
    assert!(
        shared
            .db_snapshots()
            .iter()
            .all(|s| s.db_snapshot_arn() != Some(arn.as_str())),
        "the target no longer sees the snapshot"
    );
    // AWS answers a snapshot no longer shared with the caller as one that does not exist.
    assert_eq!(
        target_copy(&target, &arn, "rvk-try", &target_key).await,
        Err("DBSnapshotNotFound".to_owned()),
        "the target can no longer copy it"
    );
    let policy = key_policy(&source, &key).await;
    assert!(
        !policy.to_json().contains(TARGET),
        "the key policy no longer names the target"
    );
    assert_eq!(
        instance_state(&source, "rvk-db").await,
        before,
        "the source database is unchanged"
    );

    // Re-running changes nothing; then finish the job.
    wd.run(Agent::Src, &source, &["revoke", "rvk-db.handoff.json"])
        .await
        .ok();
    wd.run(
        Agent::Src,
        &source,
        &[
            "revoke",
            "rvk-db.handoff.json",
            "--delete-snapshot",
            "--schedule-key-deletion",
            "7",
        ],
    )
    .await
    .ok();
    assert!(footprint(&source, "rvk-db").await.snapshots.is_empty());
    let state = source
        .kms()
        .describe_key()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state.key_metadata().unwrap().key_state().unwrap().as_str(),
        "PendingDeletion"
    );
    // The imported database does not depend on the source's key.
    let db = target
        .rds()
        .describe_db_instances()
        .db_instance_identifier("rvk-db")
        .send()
        .await
        .unwrap();
    assert!(!db.db_instances()[0]
        .kms_key_id()
        .unwrap()
        .contains("111111111111"));
}

#[tokio::test]
async fn cleanup_removes_only_what_import_left() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("cln");
    mysql_instance(&source, "cln-db", false).await;
    export(&wd, &source, "--db-instance", "cln-db", &[])
        .await
        .ok();
    import(&wd, &target, "cln-db", &[]).await.0.ok();
    // An import killed after its copy leaves one behind; simulate it with the same name and tags.
    let m = manifest(&wd, "cln-db");
    let tags = [
        ("rds-handoff:db", "cln-db"),
        ("rds-handoff:role", "intermediate"),
        ("rds-handoff:source-snapshot", m.snapshot.arn.as_str()),
    ]
    .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(k).value(v).build());
    target
        .rds()
        .create_db_snapshot()
        .db_instance_identifier("cln-db")
        .db_snapshot_identifier("rh-cln-db-imported")
        .set_tags(Some(tags.to_vec()))
        .send()
        .await
        .unwrap();
    let before = footprint(&target, "cln-db").await;
    let run = wd
        .run(Agent::Tgt, &target, &["cleanup", "cln-db.import.json"])
        .await
        .ok();
    assert!(
        run.stdout.contains("removed: rh-cln-db-imported"),
        "{}",
        run.stdout
    );
    let after = footprint(&target, "cln-db").await;
    assert!(after.snapshots.is_empty());
    assert_eq!(
        (after.databases, after.secrets, after.keys),
        (before.databases, before.secrets, before.keys)
    );
    let again = wd
        .run(Agent::Tgt, &target, &["cleanup", "cln-db.import.json"])
        .await
        .ok();
    assert!(again.stdout.contains("nothing to clean up"));
}

#[tokio::test]
async fn cleanup_keeps_the_key_that_still_encrypts_the_master_secret() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("cln-sec");
    mysql_instance(&source, "cln-sec", false).await;
    export(&wd, &source, "--db-instance", "cln-sec", &[])
        .await
        .ok();
    import(&wd, &target, "cln-sec", &[]).await.0.ok();
    let before = footprint(&target, "cln-sec").await;
    assert_eq!(before.keys.len(), 1, "{before:?}");
    assert_eq!(before.secrets.len(), 1, "{before:?}");
    // The operator deletes the restored database; its master secret stays, under the key.
    target
        .rds()
        .delete_db_instance()
        .db_instance_identifier("cln-sec")
        .skip_final_snapshot(true)
        .delete_automated_backups(true)
        .send()
        .await
        .unwrap();
    let run = wd
        .run(
            Agent::Tgt,
            &target,
            &["cleanup", "--db", "cln-sec", "--yes"],
        )
        .await;
    let said = format!("{}{}", run.stdout, run.stderr);
    let secret = format!("secret `{}`", before.secrets[0]);
    assert!(
        said.contains("still encrypts") && said.contains(&secret),
        "{said}"
    );
    assert_eq!(
        key_state(&target, &before.keys[0]).await,
        aws_sdk_kms::types::KeyState::Enabled,
        "the key that encrypts the master secret stays: {said}"
    );
    assert_eq!(footprint(&target, "cln-sec").await.secrets, before.secrets);
}

/// The source's key, too, is retired only when nothing uses it, a secret included:
/// `revoke --schedule-key-deletion` refuses while a secret of the source account is kept
/// under it, naming the secret, and the key stays enabled.
#[tokio::test]
async fn revoke_keeps_the_source_key_while_a_secret_is_kept_under_it() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("cln-srcsec");
    mysql_instance(&source, "cln-srcsec", false).await;
    export(&wd, &source, "--db-instance", "cln-srcsec", &[])
        .await
        .ok();
    let key = key_arn(&source, "alias/rds-handoff/cln-srcsec").await;
    source
        .secrets()
        .create_secret()
        .name("app/cln-srcsec")
        .secret_string("{}")
        .kms_key_id(&key)
        .send()
        .await
        .unwrap();
    let revoke = [
        "revoke",
        "cln-srcsec.handoff.json",
        "--delete-snapshot",
        "--schedule-key-deletion",
        "7",
    ];
    wd.run(Agent::Src, &source, &revoke)
        .await
        .refused(3, "secret `app/cln-srcsec`");
    assert_eq!(
        key_state(&source, &key).await,
        aws_sdk_kms::types::KeyState::Enabled
    );
}
