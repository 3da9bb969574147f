//! Handoffs into another region (`export --target-region`): the source copies its snapshot
//! into the target's region under a key of its own there and shares it there; the target
//! copies and restores within that region.

use e2e::fixtures::{
    aurora_cluster, describe_instance, footprint, key_state, mysql_instance, network,
    placed_instance, Footprint,
};
use e2e::proxy::{Denial, FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir, SOURCE, TARGET};

use crate::common::{accounts, export, import, manifest};
use crate::reliability::{assert_final_state, count_requests, kill_at, wait_holds};

const THERE: &str = "us-west-2";

fn nothing() -> Footprint {
    Footprint {
        snapshots: vec![],
        keys: vec![],
        secrets: vec![],
        databases: vec![],
    }
}

/// `src-agent export` of `db` to the target in [`THERE`].
async fn export_there(wd: &Workdir, source: &Account, flag: &str, db: &str) -> Run {
    export(wd, source, flag, db, &["--target-region", THERE]).await
}

/// The arguments of `src-agent export` of instance `db` to the target in [`THERE`].
fn export_args_there(db: &str) -> Vec<String> {
    [
        "export",
        "--db-instance",
        db,
        "--target-account",
        TARGET,
        "--target-region",
        THERE,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// The source's own database, and nothing else of the handoff, in its region.
async fn only_the_database(source: &Account, db: &str) -> Footprint {
    let left = footprint(source, db).await;
    assert_eq!(
        left.snapshots,
        Vec::<String>::new(),
        "source snapshots of {db} here"
    );
    assert_eq!(left.keys, Vec::<String>::new(), "source keys of {db} here");
    left
}

#[tokio::test]
async fn an_instance_goes_to_another_region_under_keys_of_that_region_and_revoke_ends_it_there() {
    let (source, target) = accounts().await;
    let (source_there, target_there) = (source.in_region(THERE), target.in_region(THERE));
    let wd = Workdir::new("xr-inst");
    mysql_instance(&source, "xr-db", false).await;
    let run = export_there(&wd, &source, "--db-instance", "xr-db")
        .await
        .ok();
    assert!(
        run.stdout.contains(&format!("--region {THERE}")),
        "the next command imports in {THERE}: {}",
        run.stdout
    );
    let m = manifest(&wd, "xr-db");
    assert_eq!(
        m.schema, 4,
        "a release that reads no target region refuses it"
    );
    assert_eq!(m.source.region.as_str(), "us-east-1");
    assert_eq!(m.target.region.as_ref().map(|r| r.as_str()), Some(THERE));
    assert_eq!(m.snapshot.arn.region, THERE);
    let key = m
        .snapshot
        .kms_key_arn
        .clone()
        .expect("encrypted under the key");
    assert_eq!(
        (
            key.region.as_str(),
            key.account.as_ref().map(|a| a.as_str())
        ),
        (THERE, Some(SOURCE))
    );
    only_the_database(&source, "xr-db").await;
    let there = footprint(&source_there, "xr-db").await;
    assert_eq!(
        there.snapshots,
        vec![format!("rh-xr-db-to-{TARGET}-from-us-east-1")]
    );
    assert_eq!(there.keys.len(), 1, "one key, in {THERE}");

    // A re-run finds everything made and makes nothing twice.
    let again = export_there(&wd, &source, "--db-instance", "xr-db")
        .await
        .ok();
    assert!(
        again.stdout.contains("already exported"),
        "{}",
        again.stdout
    );
    assert_eq!(footprint(&source_there, "xr-db").await, there);
    // The same command without the region is another handoff, which that manifest is not.
    export(&wd, &source, "--db-instance", "xr-db", &[])
        .await
        .refused(
            3,
            &format!("re-run with that handoff's own `--region us-east-1`, `--target-account {TARGET}`, `--target-region {THERE}`"),
        );
    only_the_database(&source, "xr-db").await;

    // The target imports in the manifest's region, under a key of its own there.
    import(&wd, &target_there, "xr-db", &[]).await.0.ok();
    let restored = describe_instance(&target_there, "xr-db").await;
    assert_eq!(restored.storage_encrypted(), Some(true));
    let target_key: rds_handoff::ident::Arn = restored.kms_key_id().unwrap().parse().unwrap();
    assert_eq!(
        (
            target_key.region.as_str(),
            target_key.account.as_ref().map(|a| a.as_str())
        ),
        (THERE, Some(TARGET)),
        "restored under the target's key in {THERE}"
    );
    assert_eq!(
        footprint(&target, "xr-db").await,
        nothing(),
        "nothing of it in us-east-1"
    );

    // Revoke, run where the database is, ends the handoff where the shared copy is.
    wd.run(
        Agent::Src,
        &source,
        &[
            "revoke",
            "xr-db.handoff.json",
            "--delete-snapshot",
            "--schedule-key-deletion",
            "7",
        ],
    )
    .await
    .ok();
    assert_eq!(
        footprint(&source_there, "xr-db").await.snapshots,
        Vec::<String>::new()
    );
    assert_eq!(
        key_state(&source_there, key.as_str()).await,
        aws_sdk_kms::types::KeyState::PendingDeletion
    );
    only_the_database(&source, "xr-db").await;
}

#[tokio::test]
async fn an_aurora_cluster_goes_to_another_region() {
    let (source, target) = accounts().await;
    let target_there = target.in_region(THERE);
    let wd = Workdir::new("xr-cl");
    aurora_cluster(&source, "xr-cl", true).await;
    export_there(&wd, &source, "--db-cluster", "xr-cl")
        .await
        .ok();
    let m = manifest(&wd, "xr-cl");
    assert_eq!(m.snapshot.arn.region, THERE);
    only_the_database(&source, "xr-cl").await;
    import(&wd, &target_there, "xr-cl", &[]).await.0.ok();
    let restored = target_there
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier("xr-cl")
        .send()
        .await
        .unwrap();
    let cluster = &restored.db_clusters()[0];
    let key: rds_handoff::ident::Arn = cluster.kms_key_id().unwrap().parse().unwrap();
    assert_eq!(
        (
            key.region.as_str(),
            key.account.as_ref().map(|a| a.as_str())
        ),
        (THERE, Some(TARGET))
    );
    let left = footprint(&target_there, "xr-cl").await;
    assert_eq!(
        left.databases,
        vec!["xr-cl".to_owned(), "xr-cl-writer".to_owned()]
    );
    assert!(left.snapshots.is_empty(), "{:?}", left.snapshots);
}

#[tokio::test]
async fn a_manifest_edited_to_name_another_region_is_refused_and_nothing_is_made() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("xr-edit");
    mysql_instance(&source, "xr-edit", false).await;
    export_there(&wd, &source, "--db-instance", "xr-edit")
        .await
        .ok();
    let path = wd.file("xr-edit.handoff.json");
    let written = std::fs::read_to_string(&path).unwrap();
    let mut edited: serde_json::Value = serde_json::from_str(&written).unwrap();
    edited["target"]["region"] = "eu-west-1".into();
    std::fs::write(&path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    let run = import(&wd, &target, "xr-edit", &[]).await.0;
    run.refused(
        2,
        &format!(
            "is in region `{THERE}`, and the manifest says the shared snapshot is in `eu-west-1`"
        ),
    );
    // A manifest within one region whose source region is edited is refused alike.
    edited["target"]["region"] = serde_json::Value::Null;
    std::fs::write(&path, serde_json::to_string_pretty(&edited).unwrap()).unwrap();
    import(&wd, &target, "xr-edit", &[]).await.0.refused(
        2,
        "and the manifest says the shared snapshot is in `us-east-1`",
    );
    for place in [
        &target,
        &target.in_region(THERE),
        &target.in_region("eu-west-1"),
    ] {
        assert_eq!(
            footprint(place, "xr-edit").await,
            nothing(),
            "{}",
            place.region
        );
    }
}

#[tokio::test]
async fn what_a_cross_region_export_cannot_do_is_refused_before_anything_is_made() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("xr-refuse");
    placed_instance(&source, "xr-placed").await;
    let cross = ["--target-region", THERE];
    // Its own option group: AWS copies it into another region only with a group there.
    export(&wd, &source, "--db-instance", "xr-placed", &cross)
        .await
        .refused(3, "pass `--target-option-group-name`");
    // A state machine calls RDS in its own region only.
    let role = format!(
        "arn:aws:iam::{SOURCE}:role/{}",
        e2e::accounts::EXECUTION_ROLE
    );
    let sfn = [
        "--target-region",
        THERE,
        "--engine",
        "step-functions",
        "--execution-role",
        role.as_str(),
    ];
    export(&wd, &source, "--db-instance", "xr-placed", &sfn)
        .await
        .refused(2, "a state machine calls AWS only in its own region");
    // A Multi-AZ DB cluster (not Aurora): AWS shares none of its snapshots.
    source
        .rds()
        .create_db_cluster()
        .db_cluster_identifier("xr-maz")
        .engine("mysql")
        .engine_version("8.0.36")
        .db_cluster_instance_class("db.m6gd.large")
        .allocated_storage(100)
        .storage_type("io1")
        .iops(1000)
        .master_username("admin")
        .master_user_password(rds_handoff::base::password::generate("mysql").expose())
        .send()
        .await
        .unwrap();
    export(&wd, &source, "--db-cluster", "xr-maz", &cross)
        .await
        .refused(3, "AWS does not share snapshots of Multi-AZ DB clusters");
    for place in [&source, &source.in_region(THERE)] {
        let left = footprint(place, "xr-maz").await;
        assert!(
            left.snapshots.is_empty() && left.keys.is_empty(),
            "{left:?}"
        );
        let left = footprint(place, "xr-placed").await;
        assert!(
            left.snapshots.is_empty() && left.keys.is_empty(),
            "{left:?}"
        );
    }
    // A group named must exist in the target region.
    let named = |group: &'static str| {
        [
            "--target-region",
            THERE,
            "--target-option-group-name",
            group,
        ]
    };
    export(
        &wd,
        &source,
        "--db-instance",
        "xr-placed",
        &named("xr-options"),
    )
    .await
    .refused(
        3,
        &format!("option group `xr-options` does not exist in this account and region `{THERE}`"),
    );
    let left = footprint(&source.in_region(THERE), "xr-placed").await;
    assert!(
        left.snapshots.is_empty() && left.keys.is_empty(),
        "{left:?}"
    );
    // Named and there, the copy takes that group.
    source
        .in_region(THERE)
        .rds()
        .create_option_group()
        .option_group_name("xr-options")
        .engine_name("mysql")
        .major_engine_version("8.0")
        .option_group_description("rds-handoff tests")
        .send()
        .await
        .unwrap();
    export(
        &wd,
        &source,
        "--db-instance",
        "xr-placed",
        &named("xr-options"),
    )
    .await
    .ok();
    let copy = source
        .in_region(THERE)
        .rds()
        .describe_db_snapshots()
        .db_snapshot_identifier(format!("rh-xr-placed-to-{TARGET}-from-us-east-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(copy.db_snapshots().len(), 1);
}

#[tokio::test]
async fn a_cross_region_export_killed_at_every_request_resumes_to_the_same_state() {
    let (source, target) = accounts().await;
    let source_there = source.in_region(THERE);
    let wd = Workdir::new("xr-kill");
    let args = export_args_there;
    mysql_instance(&source, "xrk-base", false).await;
    let base = args("xrk-base");
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let total = count_requests(
        &wd,
        &source,
        Agent::Src,
        &base,
        wait_holds("Identifier=xrk-restored"),
    )
    .await;
    for k in 1..=total {
        let db = format!("xrk-{k}");
        mysql_instance(&source, &db, false).await;
        let args = args(&db);
        assert!(
            kill_at(
                &wd,
                &source,
                Agent::Src,
                &args,
                k,
                wait_holds("Identifier=xrk-restored")
            )
            .await,
            "request {k} of {total} was reached"
        );
        wd.run(Agent::Src, &source, &args).await.ok();
        assert_final_state(&wd, &source_there, &target, &db, false, false).await;
        only_the_database(&source, &db).await;
    }
    println!("kills: a cross-region export killed at each of {total} requests, each resumed to the same state");
}

#[tokio::test]
async fn a_fleet_goes_to_another_region_and_says_what_it_sent_to_each() {
    let source = Account::assume("444444444448").await;
    let target = Account::assume(TARGET).await;
    let wd = Workdir::new("xr-fleet");
    for i in 0..3 {
        mysql_instance(&source, &format!("xrf-{i}"), i == 0).await;
    }
    aurora_cluster(&source, "xrf-c", true).await;
    let run = wd
        .run(
            Agent::Src,
            &source,
            &[
                "export",
                "--all",
                "--target-account",
                TARGET,
                "--target-region",
                THERE,
                "--manifest-dir",
                "out",
                "--output",
                "json",
            ],
        )
        .await
        .ok();
    let done: serde_json::Value =
        serde_json::from_str(run.stdout.lines().next_back().unwrap_or_default()).unwrap();
    assert_eq!(done["failed"], 0, "{done}");
    let regions: Vec<&str> = done["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["service"] == "rds")
        .filter_map(|r| r["region"].as_str())
        .collect();
    assert_eq!(regions, vec!["us-east-1", THERE], "{done}");
    let next = done["next_command"].as_str().unwrap_or_default();
    assert!(next.contains(&format!("--region {THERE}")), "{next}");
    let there = source.in_region(THERE);
    for db in ["xrf-0", "xrf-1", "xrf-2", "xrf-c"] {
        only_the_database(&source, db).await;
        assert_eq!(footprint(&there, db).await.snapshots.len(), 1, "{db}");
    }
    let net = network(&target.in_region(THERE));
    let index = wd.file("out/rds-handoff-index.json");
    let sha = e2e::agents::sha_of(&wd.file("out"), "rds-handoff-index.json");
    let index = index.display().to_string();
    let args = e2e::agents::import_args(&[index.as_str()], "444444444448", &[sha.as_str()], &net);
    wd.run(Agent::Tgt, &target, &args).await.ok();
    for db in ["xrf-0", "xrf-1", "xrf-2"] {
        describe_instance(&target.in_region(THERE), db).await;
    }
}

/// `cleanup <manifest>` of a cross-region handoff given up (its share taken back by hand):
/// the copy never shared and its key go in the target region; a handoff within that region
/// of a database of the same name, to the same target, is left alone.
#[tokio::test]
async fn cleanup_of_a_cross_region_handoff_removes_its_own_in_both_regions_and_nothing_else() {
    let source = Account::assume(SOURCE).await;
    let source_there = source.in_region(THERE);
    let wd = Workdir::new("xr-cln");
    let wd_there = Workdir::new("xr-cln-there");
    mysql_instance(&source, "xr-cln", false).await;
    mysql_instance(&source_there, "xr-cln", false).await;
    export_there(&wd, &source, "--db-instance", "xr-cln")
        .await
        .ok();
    export(&wd_there, &source_there, "--db-instance", "xr-cln", &[])
        .await
        .ok();
    let theirs = footprint(&source_there, "xr-cln").await;
    assert_eq!(theirs.snapshots.len(), 2, "{theirs:?}");
    let ours = format!("rh-xr-cln-to-{TARGET}-from-us-east-1");
    // Status where the database is lists its handoff with what it holds in the target
    // region, and not that region's own handoff of a database of the same name.
    let here = wd
        .run(Agent::Src, &source, &["status", "--target-region", THERE])
        .await
        .ok();
    let crossing = format!("xr-cln (us-east-1 to {THERE}): shared with {TARGET}");
    assert!(here.stdout.contains(&crossing), "{}", here.stdout);
    assert!(
        here.stdout.contains(&format!(
            "db-snapshot {ours} (available, shared with {TARGET}, sse-kms, in {THERE})"
        )),
        "{}",
        here.stdout
    );
    assert!(
        !here.stdout.contains(&format!("rh-xr-cln-to-{TARGET} ")),
        "{THERE}'s own handoff is not this region's: {}",
        here.stdout
    );
    // From the target region both are listed, each apart.
    let there = wd
        .run(Agent::Src, &source_there, &["status", "--output", "json"])
        .await
        .ok();
    let done: serde_json::Value =
        serde_json::from_str(there.stdout.lines().next_back().unwrap_or_default()).unwrap();
    let handoffs: Vec<(String, String)> = done["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["database"] == "xr-cln")
        .map(|h| (h["source_region"].to_string(), h["stage"].to_string()))
        .collect();
    let shared = format!("\"shared with {TARGET}\"");
    assert_eq!(
        handoffs,
        vec![
            ("null".to_owned(), shared.clone()),
            ("\"us-east-1\"".to_owned(), shared)
        ],
        "{done}"
    );
    source_there
        .rds()
        .modify_db_snapshot_attribute()
        .db_snapshot_identifier(&ours)
        .attribute_name("restore")
        .values_to_remove(TARGET)
        .send()
        .await
        .unwrap();
    wd.run(
        Agent::Src,
        &source,
        &[
            "cleanup",
            "xr-cln.handoff.json",
            "--yes",
            "--key-deletion-days",
            "7",
        ],
    )
    .await
    .ok();
    let left = footprint(&source_there, "xr-cln").await;
    assert_eq!(
        left.snapshots,
        vec![format!("rh-xr-cln-to-{TARGET}")],
        "only {THERE}'s own handoff is left"
    );
    let key = manifest(&wd, "xr-cln").snapshot.kms_key_arn.unwrap();
    assert_eq!(
        key_state(&source_there, key.as_str()).await,
        aws_sdk_kms::types::KeyState::PendingDeletion
    );
    let other = manifest(&wd_there, "xr-cln").snapshot.kms_key_arn.unwrap();
    assert_eq!(
        key_state(&source_there, other.as_str()).await,
        aws_sdk_kms::types::KeyState::Enabled,
        "the key of {THERE}'s own handoff stays"
    );
    only_the_database(&source, "xr-cln").await;
}

#[tokio::test]
async fn a_cross_region_run_given_up_keeps_its_region_and_status_finds_it_from_both() {
    let source = Account::assume(SOURCE).await;
    let source_there = source.in_region(THERE);
    let wd = Workdir::new("xr-gone");
    let args = export_args_there;
    mysql_instance(&source, "xrg-base", false).await;
    mysql_instance(&source, "xrg-left", false).await;
    let base = args("xrg-base");
    let base: Vec<&str> = base.iter().map(String::as_str).collect();
    let holds = || wait_holds("Identifier=xrg-restored");
    let total = count_requests(&wd, &source, Agent::Src, &base, holds()).await;
    // Killed at its last request: its copy is made and shared, its manifest not written.
    let left = args("xrg-left");
    assert!(kill_at(&wd, &source, Agent::Src, &left, total, holds()).await);
    assert!(!wd.path().join("xrg-left.handoff.json").exists());
    let made_there = footprint(&source_there, "xrg-left").await;
    assert_eq!(made_there.snapshots.len(), 1, "{made_there:?}");
    let made_here = footprint(&source, "xrg-left").await;

    // The same manifest path headed for this region instead is refused: that run would
    // write over the manifest of a copy made in the other one.
    export(&wd, &source, "--db-instance", "xrg-left", &[])
        .await
        .refused(
            3,
            &format!("re-run with that handoff's own `--region us-east-1`, `--target-account {TARGET}`, `--target-region {THERE}`"),
        );
    assert_eq!(footprint(&source, "xrg-left").await, made_here);
    assert_eq!(footprint(&source_there, "xrg-left").await, made_there);

    // As the release before the target-region tag left it: a state file that records no
    // destination, a copy without that tag. The refusal stands (read from what the state file
    // recorded), and the run's own command below accepts that copy as its own.
    let state_path = wd.path().join("xrg-left.handoff.state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    let headed = state.as_object_mut().unwrap().remove("headed");
    assert!(headed.is_some(), "{state}");
    std::fs::write(&state_path, state.to_string()).unwrap();
    let copy_arn =
        format!("arn:aws:rds:{THERE}:{SOURCE}:snapshot:rh-xrg-left-to-{TARGET}-from-us-east-1");
    source_there
        .rds()
        .remove_tags_from_resource()
        .resource_name(&copy_arn)
        .tag_keys("rds-handoff:target-region")
        .send()
        .await
        .unwrap();
    let tags = source_there
        .rds()
        .list_tags_for_resource()
        .resource_name(&copy_arn)
        .send()
        .await
        .unwrap();
    let keys: Vec<&str> = tags.tag_list().iter().filter_map(|t| t.key()).collect();
    assert!(
        keys.contains(&"rds-handoff:source-region") && !keys.contains(&"rds-handoff:target-region"),
        "{keys:?}"
    );
    export(&wd, &source, "--db-instance", "xrg-left", &[])
        .await
        .refused(3, &format!("`--target-region {THERE}`"));
    assert_eq!(footprint(&source, "xrg-left").await, made_here);

    // Status here reads the other region: each resource says where it is.
    let status = wd
        .run(Agent::Src, &source, &["status", "--target-region", THERE])
        .await
        .ok();
    for db in ["xrg-base", "xrg-left"] {
        let listed = format!("{db} (us-east-1 to {THERE}): shared with {TARGET}");
        assert!(status.stdout.contains(&listed), "{}", status.stdout);
    }
    let copy = format!("rh-xrg-left-to-{TARGET}-from-us-east-1");
    assert!(
        status.stdout.contains(&format!(
            "{copy} (available, shared with {TARGET}, sse-kms, in {THERE})"
        )),
        "{}",
        status.stdout
    );
    // Without the flag, it reads the other region while an intermediate snapshot is here.
    let intermediate = made_here.snapshots.first();
    let only = ["status", "--db", "xrg-left"];
    let status = wd.run(Agent::Src, &source, &only).await.ok();
    assert_eq!(
        status.stdout.contains(&copy),
        intermediate.is_some(),
        "{made_here:?}: {}",
        status.stdout
    );

    // Its own command finishes it, and writes the manifest naming both regions.
    wd.run(Agent::Src, &source, &left).await.ok();
    let m = manifest(&wd, "xrg-left");
    assert_eq!(m.target.region.as_ref().map(|r| r.as_str()), Some(THERE));
    assert_eq!(footprint(&source_there, "xrg-left").await, made_there);
    only_the_database(&source, "xrg-left").await;
}

#[tokio::test]
async fn a_fleet_takes_its_copy_slots_from_the_target_regions_copies_in_progress() {
    let source = Account::assume("444444444449").await;
    let source_there = source.in_region(THERE);
    aurora_cluster(&source, "xrq-c", true).await;
    // Five cluster snapshot copies into the target region in progress, AWS's limit there.
    aurora_cluster(&source, "xrq-busy", false).await;
    source
        .rds()
        .create_db_cluster_snapshot()
        .db_cluster_identifier("xrq-busy")
        .db_cluster_snapshot_identifier("xrq-busy-s")
        .send()
        .await
        .unwrap();
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            copy_time: Some(std::time::Duration::from_secs(3600)),
            ..FaultPlan::default()
        },
    )
    .await;
    let busy = source_there.calling(&proxy.url);
    for i in 0..5 {
        busy.rds()
            .copy_db_cluster_snapshot()
            .source_db_cluster_snapshot_identifier(format!(
                "arn:aws:rds:us-east-1:{}:cluster-snapshot:xrq-busy-s",
                source.id
            ))
            .target_db_cluster_snapshot_identifier(format!("xrq-busy-{i}"))
            .send()
            .await
            .unwrap();
    }
    let wd = Workdir::new("xr-slots");
    let args = |more: &[&str]| -> Vec<String> {
        let mut args = vec!["export", "--db-cluster", "xrq-c", "--manifest-dir", "out"];
        args.extend(["--target-account", TARGET, "--dry-run"]);
        args.extend(more);
        args.into_iter().map(str::to_owned).collect()
    };
    // Its copies are made in the target region: no slot is free there.
    wd.via(
        &proxy,
        Agent::Src,
        &source,
        &args(&["--target-region", THERE]),
    )
    .await
    .refused(
        3,
        &format!("the account already has 5 DB cluster snapshot copies in progress in `{THERE}`"),
    );
    // Within its own region, where no copy is in progress, the same fleet has room.
    wd.via(&proxy, Agent::Src, &source, &args(&[])).await.ok();
    assert_eq!(
        footprint(&source, "xrq-c").await.snapshots,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn cleanup_by_database_reaches_the_copy_a_failed_cross_region_run_left_there() {
    let source = Account::assume(SOURCE).await;
    let source_there = source.in_region(THERE);
    let wd = Workdir::new("xr-fail");
    mysql_instance(&source, "xrd-db", false).await;
    // The share is refused: the run stops with its copy made in the target region, unshared,
    // and its intermediate snapshot left here.
    let plan = FaultPlan {
        denials: vec![Denial {
            action: "ModifyDBSnapshotAttribute",
            matching: "xrd-db".into(),
            code: None,
            region: None,
        }],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let args = export_args_there("xrd-db");
    let failed = wd.via(&proxy, Agent::Src, &source, &args).await;
    assert_ne!(failed.code, 0, "{}", failed.stderr);
    let made_here = footprint(&source, "xrd-db").await;
    assert_eq!(
        made_here.snapshots.len(),
        1,
        "the intermediate: {made_here:?}"
    );
    let made_there = footprint(&source_there, "xrd-db").await;
    assert_eq!(
        (made_there.snapshots.len(), made_there.keys.len()),
        (1, 1),
        "{made_there:?}"
    );

    // The target region unreadable (its listings denied): `status` warns of it and lists
    // what it read here; `cleanup --db` removes nothing and fails, naming that region.
    let blind = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            denials: vec![Denial {
                action: "DescribeDBSnapshots",
                matching: String::new(),
                code: None,
                region: Some(THERE),
            }],
            ..FaultPlan::default()
        },
    )
    .await;
    let status = ["status", "--db", "xrd-db"];
    let seen = wd.via(&blind, Agent::Src, &source, &status).await.ok();
    let said = format!("{}{}", seen.stdout, seen.stderr);
    assert!(said.contains(THERE) && said.contains("not read"), "{said}");
    assert!(
        seen.stdout
            .contains(&format!("rh-xrd-db-to-{TARGET}-{THERE}-src")),
        "the intermediate here: {}",
        seen.stdout
    );
    let cleanup = ["cleanup", "--db", "xrd-db", "--yes"];
    let refused = wd.via(&blind, Agent::Src, &source, &cleanup).await;
    assert_ne!(refused.code, 0, "{}", refused.stdout);
    let named = format!("DescribeDBSnapshots in `{THERE}`");
    let until = format!("Nothing is removed until `{THERE}` can be read");
    assert!(
        refused.stderr.contains(&named) && refused.stderr.contains(&until),
        "{}",
        refused.stderr
    );
    assert_eq!(
        footprint(&source, "xrd-db").await,
        made_here,
        "nothing removed"
    );

    // Cleanup by name, where the database is, removes both regions' leftovers.
    let done = wd
        .run(
            Agent::Src,
            &source,
            &[
                "cleanup",
                "--db",
                "xrd-db",
                "--yes",
                "--key-deletion-days",
                "7",
            ],
        )
        .await
        .ok();
    assert!(
        done.stdout
            .contains(&format!("rh-xrd-db-to-{TARGET}-from-us-east-1")),
        "{}",
        done.stdout
    );
    only_the_database(&source, "xrd-db").await;
    assert_eq!(
        footprint(&source_there, "xrd-db").await.snapshots,
        Vec::<String>::new()
    );
    assert_eq!(
        key_state(&source_there, &made_there.keys[0]).await,
        aws_sdk_kms::types::KeyState::PendingDeletion
    );
}
