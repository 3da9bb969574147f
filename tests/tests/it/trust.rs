//! The trust boundary: the target pins its source independently of the manifest; nothing
//! found by name is reused without proof that it is this run's own; the password marker names
//! the database it was set on; revoke touches only the toolkit's own key and cuts the
//! target's grants. A third, hostile account (333333333333) plays the attacker.

use aws_sdk_kms::types::KeyState;
use e2e::agents::sha_of;
use e2e::fixtures::{
    footprint, key_arn, key_policy, key_state, key_with_policy, mysql_instance, network,
    restore_attribute, tag_instance, Network,
};
use e2e::proxy::{Denial, FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir, SOURCE, TARGET, THIRD};
use rds_handoff::base::manifest::fingerprint;
use rds_handoff::base::vocabulary::DbKind;

use crate::common::{accounts, export, import, manifest};

fn import_args<'a>(manifest: &'a str, net: &'a Network, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec![
        "import",
        manifest,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    args.extend_from_slice(extra);
    args
}

/// A run through a fresh proxy that must make no AWS call at all.
async fn without_aws(wd: &Workdir, agent: Agent, account: &Account, args: &[&str]) -> Run {
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let run = wd.via(&proxy, agent, account, args).await;
    assert_eq!(
        proxy.requests(),
        0,
        "{args:?} made an AWS call:\n{}",
        run.stderr
    );
    run
}

#[tokio::test]
async fn a_manifest_pointing_at_another_accounts_shared_snapshot_is_refused_before_any_change() {
    let (source, target) = accounts().await;
    let third = Account::assume(THIRD).await;
    let wd = Workdir::new("trust-pin");
    mysql_instance(&source, "trust-pin", false).await;
    mysql_instance(&third, "trust-evil", false).await;
    export(&wd, &source, "--db-instance", "trust-pin", &[])
        .await
        .ok();
    // The attacker's own snapshot, really shared with the target.
    export(&wd, &third, "--db-instance", "trust-evil", &[])
        .await
        .ok();
    let evil = manifest(&wd, "trust-evil");
    let good = std::fs::read_to_string(wd.file("trust-pin.handoff.json")).unwrap();
    let good_manifest = manifest(&wd, "trust-pin");
    let swap = |from: &str, to: &str| good.replace(from, to);
    let evil_key = evil.snapshot.kms_key_arn.unwrap().to_string();
    let good_key = good_manifest.snapshot.kms_key_arn.unwrap().to_string();
    let cases = [
        (
            "the whole manifest rewritten to account 333333333333",
            std::fs::read_to_string(wd.file("trust-evil.handoff.json")).unwrap(),
            "the manifest's source account is `333333333333`",
        ),
        (
            "only the snapshot and key swapped",
            swap(
                good_manifest.snapshot.arn.as_str(),
                evil.snapshot.arn.as_str(),
            )
            .replace(&good_key, &evil_key),
            "the shared snapshot's account is `333333333333`",
        ),
        (
            "only the key swapped",
            swap(&good_key, &evil_key),
            "the snapshot key's account is `333333333333`",
        ),
    ];
    let net = network(&target);
    let before = (
        footprint(&target, "trust-evil").await,
        footprint(&target, "trust-pin").await,
    );
    for (case, text, reason) in cases {
        std::fs::write(wd.file("m.json"), text).unwrap();
        // The fingerprint matches: the source account pins what a manifest cannot vouch for.
        let sha = sha_of(wd.path(), "m.json");
        let pinned = ["--source-account", SOURCE, "--manifest-sha256", &sha];
        let args = import_args("m.json", &net, &pinned);
        let run = without_aws(&wd, Agent::Tgt, &target, &args).await;
        let run = run.refused(3, reason);
        assert!(
            run.stderr.contains("--source-account"),
            "{case}: {}",
            run.stderr
        );
        let check = [&["check"][..], &args[1..]].concat();
        without_aws(&wd, Agent::Tgt, &target, &check)
            .await
            .refused(3, reason);
    }
    let after = (
        footprint(&target, "trust-evil").await,
        footprint(&target, "trust-pin").await,
    );
    assert_eq!(after, before, "nothing was created in the target");
    let sha = sha_of(wd.path(), "trust-pin.handoff.json");
    let args = import_args("trust-pin.handoff.json", &net, &["--manifest-sha256", &sha]);
    without_aws(&wd, Agent::Tgt, &target, &args)
        .await
        .refused(2, "no source account to trust");
    // The trusted source may also live in the target admin's AWS profile.
    let config = wd.file("config");
    let mut check = import_args("trust-pin.handoff.json", &net, &["--manifest-sha256", &sha]);
    check[0] = "check";
    for (trusted, code) in [(THIRD, 3), (SOURCE, 0)] {
        std::fs::write(
            &config,
            format!("[default]\nrds_handoff_source_account = {trusted}\n"),
        )
        .unwrap();
        let env = [("AWS_CONFIG_FILE", config.to_str().unwrap())];
        let run = wd.run_with(Agent::Tgt, &target, &check, &env).await;
        assert_eq!(run.code, code, "trusting {trusted}: {}", run.stderr);
    }
}

#[tokio::test]
async fn the_manifest_fingerprint_travels_apart_and_a_changed_manifest_is_refused() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-sha");
    mysql_instance(&source, "trust-sha", false).await;
    let run = export(&wd, &source, "--db-instance", "trust-sha", &[])
        .await
        .ok();
    let path = wd.file("trust-sha.handoff.json");
    let original = std::fs::read(&path).unwrap();
    let sha = fingerprint(&original);
    assert!(
        run.stdout.contains(&format!("manifest SHA-256: {sha}")),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("another channel"), "{}", run.stdout);
    assert!(
        run.stdout.contains(&format!(
            "--source-account {SOURCE} --manifest-sha256 {sha}"
        )),
        "the printed command pins both: {}",
        run.stdout
    );
    let net = network(&target);
    let tampered = String::from_utf8(original.clone())
        .unwrap()
        .replace("payments", "finance");
    std::fs::write(&path, tampered).unwrap();
    let args = import_args(
        "trust-sha.handoff.json",
        &net,
        &["--source-account", SOURCE, "--manifest-sha256", &sha],
    );
    without_aws(&wd, Agent::Tgt, &target, &args)
        .await
        .refused(3, &format!("not `{sha}`"));
    let bad = import_args(
        "trust-sha.handoff.json",
        &net,
        &["--source-account", SOURCE, "--manifest-sha256", "abc"],
    );
    without_aws(&wd, Agent::Tgt, &target, &bad)
        .await
        .refused(2, "64 hexadecimal characters");
    std::fs::write(&path, &original).unwrap();
    wd.run(Agent::Tgt, &target, &args).await.ok();
}

#[tokio::test]
async fn without_the_manifest_fingerprint_import_is_refused_unless_waived_out_loud() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-nosha");
    mysql_instance(&source, "trust-nosha", false).await;
    export(&wd, &source, "--db-instance", "trust-nosha", &[])
        .await
        .ok();
    let net = network(&target);
    let manifest = "trust-nosha.handoff.json";
    let bare = import_args(manifest, &net, &["--source-account", SOURCE]);
    for verb in ["import", "check"] {
        let args = [&[verb][..], &bare[1..]].concat();
        let run = without_aws(&wd, Agent::Tgt, &target, &args)
            .await
            .refused(2, "`--manifest-sha256` is required");
        assert!(
            run.stderr.contains("--skip-manifest-sha256"),
            "{verb}: the hint names the waiver:\n{}",
            run.stderr
        );
    }
    let json = [&bare[..], &["--output", "json"]].concat();
    let run = without_aws(&wd, Agent::Tgt, &target, &json).await;
    assert_eq!(run.code, 2, "{}", run.stdout);
    let error: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert_eq!(error["event"], "error", "{}", run.stdout);
    assert!(
        error["error"].as_str().unwrap().contains("is required"),
        "{}",
        run.stdout
    );
    let sha = sha_of(wd.path(), manifest);
    let both = [
        &bare[..],
        &["--manifest-sha256", sha.as_str(), "--skip-manifest-sha256"],
    ]
    .concat();
    without_aws(&wd, Agent::Tgt, &target, &both)
        .await
        .refused(2, "cannot be used with");
    assert!(
        footprint(&target, "trust-nosha").await.databases.is_empty(),
        "nothing imported"
    );

    // The waiver: the run goes on and says, before anything and in its result, that the
    // file was not checked.
    let waived = [&bare[..], &["--skip-manifest-sha256"]].concat();
    let check = [&["check"][..], &waived[1..]].concat();
    let run = wd.run(Agent::Tgt, &target, &check).await.ok();
    let warning = format!("warning: manifest SHA-256: {manifest} (NOT CHECKED");
    assert!(run.stderr.contains(&warning), "{}", run.stderr);
    let run = wd
        .run(
            Agent::Tgt,
            &target,
            &[&waived[..], &["--output", "json"]].concat(),
        )
        .await
        .ok();
    let lines: Vec<serde_json::Value> = run
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["event"] == "warning"
            && l["stage"] == "manifest SHA-256"
            && l["status"]
                .as_str()
                .unwrap_or_default()
                .contains("NOT CHECKED")),
        "{}",
        run.stdout
    );
    let done = lines.last().unwrap();
    assert_eq!(done["event"], "done", "{}", run.stdout);
    assert_eq!(done["manifest_sha256_checked"], false, "{}", run.stdout);
}

#[tokio::test]
async fn manifest_fields_are_checked_against_the_snapshot_aws_describes() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-fields");
    mysql_instance(&source, "trust-fields", false).await;
    export(&wd, &source, "--db-instance", "trust-fields", &[])
        .await
        .ok();
    let good = std::fs::read_to_string(wd.file("trust-fields.handoff.json")).unwrap();
    let net = network(&target);
    let before = footprint(&target, "trust-fields").await;
    for (from, to, reason) in [
        (
            "\"master_username\": \"admin\"",
            "\"master_username\": \"root\"",
            "master username `root` (AWS: `admin`)",
        ),
        (
            "\"engine_version\": \"8.0.36\"",
            "\"engine_version\": \"8.0.35\"",
            "engine version `8.0.35` (AWS: `8.0.36`)",
        ),
        (
            "\"port\": 3306",
            "\"port\": 3307",
            "port `3307` (AWS: `3306`)",
        ),
    ] {
        assert!(good.contains(from), "{from}");
        std::fs::write(wd.file("m.json"), good.replacen(from, to, 1)).unwrap();
        let sha = sha_of(wd.path(), "m.json");
        let args = import_args(
            "m.json",
            &net,
            &["--source-account", SOURCE, "--manifest-sha256", &sha],
        );
        wd.run(Agent::Tgt, &target, &args).await.refused(3, reason);
    }
    for (from, to, reason) in [
        (
            "\"team\": \"payments\"",
            "\"aws:cloudformation:stack-id\": \"x\"",
            "is reserved",
        ),
        (
            "\"team\": \"payments\"",
            "\"rds-handoff:role\": \"restored-database\"",
            "is reserved",
        ),
    ] {
        std::fs::write(wd.file("m.json"), good.replacen(from, to, 1)).unwrap();
        let sha = sha_of(wd.path(), "m.json");
        let args = import_args(
            "m.json",
            &net,
            &["--source-account", SOURCE, "--manifest-sha256", &sha],
        );
        without_aws(&wd, Agent::Tgt, &target, &args)
            .await
            .refused(2, reason);
    }
    assert_eq!(footprint(&target, "trust-fields").await, before);
}

/// Plants a snapshot of `db` under `name`, with `tags`, as someone else in the account might.
async fn plant(account: &Account, db: &str, name: &str, tags: &[(&str, &str)]) {
    let tags = tags
        .iter()
        .map(|(k, v)| aws_sdk_rds::types::Tag::builder().key(*k).value(*v).build())
        .collect();
    account
        .rds()
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(name)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn export_refuses_a_snapshot_it_did_not_make_under_its_own_name() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-plant");
    for db in ["trust-plant", "trust-plant2"] {
        mysql_instance(&source, db, false).await;
    }
    let name = format!("rh-trust-plant-to-{TARGET}");
    plant(&source, "trust-plant", &name, &[]).await;
    export(&wd, &source, "--db-instance", "trust-plant", &[])
        .await
        .refused(
            3,
            &format!(
                "snapshot `{name}` exists but is not this run's: tag `rds-handoff:db` is missing"
            ),
        );
    assert!(
        restore_attribute(&source, DbKind::Instance, &name)
            .await
            .is_empty(),
        "the planted snapshot was not shared"
    );
    // Tags copied from a real run do not help: the snapshot is not under the export's key.
    let name = format!("rh-trust-plant2-to-{TARGET}");
    let tags = [
        ("rds-handoff:db", "trust-plant2"),
        ("rds-handoff:target-account", TARGET),
        ("rds-handoff:role", "shared-copy"),
    ];
    plant(&source, "trust-plant2", &name, &tags).await;
    export(&wd, &source, "--db-instance", "trust-plant2", &[])
        .await
        .refused(3, "it is encrypted with `no key (unencrypted)`");
    assert!(
        restore_attribute(&source, DbKind::Instance, &name)
            .await
            .is_empty(),
        "the planted snapshot was not shared"
    );
    assert!(!wd.file("trust-plant2.handoff.json").exists());
}

#[tokio::test]
async fn import_refuses_a_copy_it_did_not_make_under_its_own_name() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-copy");
    mysql_instance(&source, "trust-copy", false).await;
    export(&wd, &source, "--db-instance", "trust-copy", &[])
        .await
        .ok();
    mysql_instance(&target, "trust-copy-other", false).await;
    plant(
        &target,
        "trust-copy-other",
        "rh-trust-copy-imported",
        &[("rds-handoff:role", "intermediate")],
    )
    .await;
    let (run, _) = import(&wd, &target, "trust-copy", &[]).await;
    run.refused(3, "snapshot `rh-trust-copy-imported` exists but is not this run's: tag `rds-handoff:db` is missing");
    let databases = footprint(&target, "trust-copy").await.databases;
    assert_eq!(
        databases,
        vec!["trust-copy-other".to_owned()],
        "nothing was restored"
    );
}

#[tokio::test]
async fn a_key_found_by_tag_is_adopted_only_if_its_policy_passes_the_audit() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-key");
    mysql_instance(&source, "trust-key", false).await;
    let planted_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SOURCE}:root"}},"Action":"kms:*","Resource":"*"}},
          {{"Sid":"Attacker","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{THIRD}:root"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let tag = aws_sdk_kms::types::Tag::builder()
        .tag_key("rds-handoff:alias")
        .tag_value("alias/rds-handoff/trust-key")
        .build()
        .unwrap();
    let planted = source
        .kms()
        .create_key()
        .policy(planted_policy)
        .tags(tag)
        .send()
        .await
        .unwrap();
    let planted_id = planted.key_metadata().unwrap().key_id().to_owned();
    export(&wd, &source, "--db-instance", "trust-key", &[])
        .await
        .refused(
            3,
            "tagged for alias `alias/rds-handoff/trust-key` has a policy that does not pass the audit for this handoff",
        );
    let aliases = source
        .kms()
        .list_aliases()
        .key_id(&planted_id)
        .send()
        .await
        .unwrap();
    assert!(
        aliases.aliases().is_empty(),
        "the planted key was not adopted"
    );

    // A key whose tags we may not read is skipped, not fatal.
    mysql_instance(&source, "trust-key2", false).await;
    let plan = FaultPlan {
        denials: vec![Denial {
            action: "ListResourceTags",
            matching: planted_id.clone(),
            code: None,
            region: None,
        }],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let args = [
        "export",
        "--db-instance",
        "trust-key2",
        "--target-account",
        TARGET,
    ];
    wd.via(&proxy, Agent::Src, &source, &args).await.ok();
    assert!(
        proxy
            .stats
            .bodies("ListResourceTags")
            .iter()
            .any(|b| b.contains(&planted_id)),
        "the export met the key it may not read"
    );
}

#[tokio::test]
async fn a_secret_the_toolkit_did_not_make_is_never_written() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-secret");
    mysql_instance(&source, "trust-secret", false).await;
    export(&wd, &source, "--db-instance", "trust-secret", &[])
        .await
        .ok();
    let name = "rds-handoff/trust-secret/master";
    target
        .secrets()
        .create_secret()
        .name(name)
        .secret_string("theirs")
        .send()
        .await
        .unwrap();
    let (run, _) = import(&wd, &target, "trust-secret", &[]).await;
    run.refused(
        3,
        &format!("secret `{name}` already exists and was not made by rds-handoff"),
    )
    .stderr
    .contains("--secret-name")
    .then_some(())
    .expect("the hint names --secret-name");
    assert!(
        footprint(&target, "trust-secret")
            .await
            .databases
            .is_empty(),
        "refused before the restore"
    );
    let value = target
        .secrets()
        .get_secret_value()
        .secret_id(name)
        .send()
        .await
        .unwrap();
    assert_eq!(value.secret_string(), Some("theirs"));
    import(
        &wd,
        &target,
        "trust-secret",
        &["--secret-name", "rds-handoff/trust-secret/ours"],
    )
    .await
    .0
    .ok();
}

#[tokio::test]
async fn a_database_restored_again_gets_a_new_password() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-pw");
    mysql_instance(&source, "trust-pw", false).await;
    export(&wd, &source, "--db-instance", "trust-pw", &[])
        .await
        .ok();
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let net = network(&target);
    let sha = sha_of(wd.path(), "trust-pw.handoff.json");
    let args = import_args(
        "trust-pw.handoff.json",
        &net,
        &["--source-account", SOURCE, "--manifest-sha256", &sha],
    );
    let secret = "rds-handoff/trust-pw/master";
    let password = || async {
        let out = target
            .secrets()
            .get_secret_value()
            .secret_id(secret)
            .send()
            .await
            .unwrap();
        let value: serde_json::Value = serde_json::from_str(out.secret_string().unwrap()).unwrap();
        value["password"].as_str().unwrap().to_owned()
    };
    wd.via(&proxy, Agent::Tgt, &target, &args).await.ok();
    let first = password().await;
    // A rehearsal: the database is deleted and the same import run again.
    target
        .rds()
        .delete_db_instance()
        .db_instance_identifier("trust-pw")
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    wd.via(&proxy, Agent::Tgt, &target, &args).await.ok();
    let second = password().await;
    assert_ne!(
        first, second,
        "the second database got a password of its own"
    );
    let set: Vec<String> = proxy
        .stats
        .bodies("ModifyDBInstance")
        .iter()
        .filter_map(|body| {
            form_urlencoded::parse(body.as_bytes())
                .find(|(k, _)| k == "MasterUserPassword")
                .map(|(_, v)| v.into_owned())
        })
        .collect();
    assert_eq!(
        set,
        vec![first, second],
        "each database had its password set, the stored one"
    );
}

#[tokio::test]
async fn revoke_schedules_deletion_only_of_the_toolkits_key_and_revokes_the_targets_grants() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-revoke");
    mysql_instance(&source, "trust-rv", false).await;
    mysql_instance(&source, "trust-rv2", false).await;
    // A key of the source admin's own, passed with --key.
    let own = source
        .kms()
        .create_key()
        .description("the DBA's key")
        .send()
        .await
        .unwrap();
    let own_arn = own.key_metadata().unwrap().arn().unwrap().to_owned();
    export(
        &wd,
        &source,
        "--db-instance",
        "trust-rv",
        &["--kms-key-id", &own_arn],
    )
    .await
    .ok();
    let revoke = [
        "revoke",
        "trust-rv.handoff.json",
        "--schedule-key-deletion",
        "7",
    ];
    wd.run(Agent::Src, &source, &revoke)
        .await
        .refused(3, "was not made by rds-handoff")
        .stderr
        .contains("aws kms schedule-key-deletion")
        .then_some(())
        .expect("the hint says how to do it by hand");
    assert_eq!(key_state(&source, &own_arn).await, KeyState::Enabled);

    export(&wd, &source, "--db-instance", "trust-rv2", &[])
        .await
        .ok();
    let key = key_arn(&source, "alias/rds-handoff/trust-rv2").await;
    for grantee in [
        format!("arn:aws:iam::{TARGET}:role/Importer"),
        format!("arn:aws:iam::{SOURCE}:role/App"),
    ] {
        source
            .kms()
            .create_grant()
            .key_id(&key)
            .grantee_principal(grantee)
            .operations(aws_sdk_kms::types::GrantOperation::Decrypt)
            .send()
            .await
            .unwrap();
    }
    let run = wd
        .run(Agent::Src, &source, &["revoke", "trust-rv2.handoff.json"])
        .await
        .ok();
    assert!(
        run.stderr
            .contains("key grant held or made by account 222222222222"),
        "{}",
        run.stderr
    );
    let grants = source
        .kms()
        .list_grants()
        .key_id(&key)
        .send()
        .await
        .unwrap();
    let left: Vec<&str> = grants
        .grants()
        .iter()
        .filter_map(|g| g.grantee_principal())
        .collect();
    assert_eq!(
        left,
        vec![format!("arn:aws:iam::{SOURCE}:role/App").as_str()]
    );
    let _ = target;
}

/// Makes a key with `policy` and `tags` and points `alias` at it, as anyone in the account who
/// may make keys and aliases might. Returns the key's ARN.
async fn plant_key(account: &Account, policy: &str, tags: &[(&str, &str)], alias: &str) -> String {
    let tags: Vec<aws_sdk_kms::types::Tag> = tags
        .iter()
        .map(|(k, v)| {
            aws_sdk_kms::types::Tag::builder()
                .tag_key(*k)
                .tag_value(*v)
                .build()
                .unwrap()
        })
        .collect();
    let made = account
        .kms()
        .create_key()
        .policy(policy)
        .set_tags((!tags.is_empty()).then_some(tags))
        .send()
        .await
        .unwrap();
    let meta = made.key_metadata().unwrap();
    account
        .kms()
        .create_alias()
        .alias_name(alias)
        .target_key_id(meta.key_id())
        .send()
        .await
        .unwrap();
    meta.arn().unwrap().to_owned()
}

#[tokio::test]
async fn a_key_under_the_toolkits_alias_is_used_only_if_tagged_and_its_policy_passes_the_audit() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-alias");
    let root = format!(
        r#"{{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SOURCE}:root"}},"Action":"kms:*","Resource":"*"}}"#
    );
    let own_policy = format!(r#"{{"Version":"2012-10-17","Statement":[{root}]}}"#);
    let open_policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{root},
          {{"Sid":"Attacker","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{THIRD}:root"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );

    // Not tagged by the toolkit: an alias alone is no proof, whatever the key's policy.
    let db = "trust-alias-bare";
    mysql_instance(&source, db, false).await;
    let alias = format!("alias/rds-handoff/{db}");
    let arn = plant_key(&source, &own_policy, &[], &alias).await;
    export(&wd, &source, "--db-instance", db, &[])
        .await
        .refused(
            3,
            &format!("alias `{alias}` names key `{arn}`, which does not carry the toolkit's tag"),
        );
    assert!(
        footprint(&source, db).await.snapshots.is_empty(),
        "no snapshot was made"
    );
    assert_eq!(key_policy(&source, &arn).await.statements().len(), 1);

    // Tagged like the toolkit's key (anyone who may tag a key can), with a policy that lets
    // in a third account: refused on the audit, naming the key and the finding.
    let db = "trust-alias-open";
    mysql_instance(&source, db, false).await;
    let alias = format!("alias/rds-handoff/{db}");
    let arn = plant_key(
        &source,
        &open_policy,
        &[("rds-handoff:alias", alias.as_str())],
        &alias,
    )
    .await;
    let run = export(&wd, &source, "--db-instance", db, &[])
        .await
        .refused(
            3,
            &format!(
                "key `{arn}` under alias `{alias}` has a policy that does not pass the audit for this handoff"
            ),
        );
    assert!(
        run.stderr.contains("untrusted-account") && run.stderr.contains(THIRD),
        "{}",
        run.stderr
    );
    assert!(
        footprint(&source, db).await.snapshots.is_empty(),
        "no snapshot was made"
    );
    assert_eq!(
        key_policy(&source, &arn).await.statements().len(),
        2,
        "no statement was added to the planted key"
    );
    assert!(!wd.file(&format!("{db}.handoff.json")).exists());
}

#[tokio::test]
async fn a_key_named_with_kms_key_id_is_audited_before_its_policy_is_changed() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-given");
    let db = "trust-given";
    mysql_instance(&source, db, false).await;
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Sid":"Root","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{SOURCE}:root"}},"Action":"kms:*","Resource":"*"}},
          {{"Sid":"Attacker","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{THIRD}:root"}},"Action":"kms:Decrypt","Resource":"*"}}]}}"#
    );
    let arn = key_with_policy(&source, &policy).await;
    let run = export(&wd, &source, "--db-instance", db, &["--kms-key-id", &arn])
        .await
        .refused(
            3,
            &format!("key `{arn}` (`--kms-key-id`) has a policy that does not pass the audit for this handoff"),
        );
    assert!(run.stderr.contains("untrusted-account"), "{}", run.stderr);
    assert_eq!(
        key_policy(&source, &arn).await.statements().len(),
        2,
        "nothing was added to the key"
    );
    assert!(
        footprint(&source, db).await.snapshots.is_empty(),
        "no snapshot was made"
    );
}

#[tokio::test]
async fn export_resumes_only_from_a_snapshot_of_the_database_it_exports() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-src");
    let db = "trust-src";
    mysql_instance(&source, db, false).await;
    mysql_instance(&source, "trust-other-db", false).await;
    // Another database's snapshot under the name the export resumes from, tagged as the
    // export tags its own (tags can be put on by anyone who may tag a snapshot).
    let name = format!("rh-{db}-to-{TARGET}-src");
    let tags = [
        ("rds-handoff:db", db),
        ("rds-handoff:target-account", TARGET),
        ("rds-handoff:role", "intermediate"),
    ];
    plant(&source, "trust-other-db", &name, &tags).await;
    export(&wd, &source, "--db-instance", db, &[])
        .await
        .refused(
            3,
            &format!(
                "snapshot `{name}` exists but is not this run's: AWS says it is a snapshot of `trust-other-db`, not of DB instance `{db}`"
            ),
        );
    assert_eq!(
        footprint(&source, db).await.snapshots,
        vec![name],
        "no copy was made of the planted snapshot"
    );
    assert!(!wd.file(&format!("{db}.handoff.json")).exists());
}

/// A database at the restore name that carries this manifest's tag is an earlier try's only
/// if AWS says it is what the restore makes: under the import's own key, with the manifest's
/// master user. One made otherwise and tagged by hand is refused before anything is made.
#[tokio::test]
async fn a_database_tagged_like_this_imports_is_refused_unless_restored_by_it() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("trust-plant");
    mysql_instance(&source, "trust-plant", false).await;
    export(&wd, &source, "--db-instance", "trust-plant", &[])
        .await
        .ok();
    let arn = manifest(&wd, "trust-plant").snapshot.arn.to_string();
    mysql_instance(&target, "trust-plant", true).await;
    tag_instance(
        &target,
        "trust-plant",
        &[("rds-handoff:source-snapshot", &arn)],
    )
    .await;
    import(&wd, &target, "trust-plant", &[])
        .await
        .0
        .refused(3, "is not what this import restores");
    assert!(
        footprint(&target, "trust-plant").await.keys.is_empty(),
        "nothing made before the refusal"
    );
}

/// A database planted under the encrypted twin's name with the twin's tag (anyone who may
/// tag a database can set it, and whoever may start the encrypt state machine can restore
/// one tagged so) is not taken for the encrypted copy: `encrypt` refuses it instead of
/// answering "already done" for a database it did not make.
#[tokio::test]
async fn a_database_tagged_as_the_encrypted_copy_is_refused_unless_it_is_one() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("trust-twin");
    mysql_instance(&source, "trust-twin", false).await;
    // Same engine and master user, unencrypted: only the tag says it is the copy.
    mysql_instance(&source, "trust-twin-encrypted", false).await;
    let mark = [("rds-handoff:encrypted-from", "trust-twin")];
    tag_instance(&source, "trust-twin-encrypted", &mark).await;
    let args = ["encrypt", "--db-instance", "trust-twin"];
    wd.run(Agent::Src, &source, &args).await.refused(
        3,
        "not encrypted with the run's key, which does not exist yet",
    );
}
