//! The operator's contract: the plan says what will happen, the run does it, whatever a run
//! leaves behind one command removes; wrong inputs are refused before anything is made;
//! errors say what to do; flags and output follow the AWS CLI's conventions.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use aws_sdk_kms::types::KeyState;
use e2e::agents::sha_of;
use e2e::fixtures::{
    aurora_cluster, footprint, instance_state, key_arn, key_state, mysql_instance, network, Network,
};
use e2e::proxy::{Denial, FaultPlan, Hold, Proxy};
use e2e::{Agent, Emulator, Run, Workdir, SOURCE, TARGET};

use crate::common::{accounts, export, import};

/// `tgt-agent import` of `manifest` (whose SHA-256 is `sha`) into `net`, `extra` appended.
fn import_args<'a>(
    manifest: &'a str,
    sha: &'a str,
    net: &'a Network,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "import",
        manifest,
        "--source-account",
        SOURCE,
        "--manifest-sha256",
        sha,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    args.extend_from_slice(extra);
    args
}

/// The proxy holds a snapshot's status (for the whole test) where the body matches.
fn snapshot_held(matching: &'static str, status: &'static str) -> Hold {
    Hold {
        action: "DescribeDBSnapshots",
        matching,
        status,
        polls: 1000,
    }
}

/// Every stdout line parsed as JSON, each with `event`, `timestamp` and `database`.
fn json_lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|line| {
            let value: serde_json::Value =
                serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            for field in ["event", "timestamp", "database"] {
                assert!(value.get(field).is_some(), "no `{field}` in {line}");
            }
            value
        })
        .collect()
}

/// The JSON lines of a run that succeeded: at least one, every one with `event`, `timestamp`
/// and `database`, and the last the result (`event` `done`), as every command prints it.
fn finished_json_lines(run: &Run, command: &[&str]) -> Vec<serde_json::Value> {
    let lines = json_lines(run);
    assert!(
        !lines.is_empty(),
        "{command:?} printed no JSON line:\n--- stdout\n{}\n--- stderr\n{}",
        run.stdout,
        run.stderr
    );
    let last = &lines[lines.len() - 1];
    assert_eq!(
        last["event"], "done",
        "{command:?}: the last line is the result:\n{}",
        run.stdout
    );
    lines
}

#[tokio::test]
async fn a_folder_that_cannot_take_the_manifest_is_refused_before_anything_is_made() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-ro");
    mysql_instance(&source, "opx-ro", false).await;
    let before = footprint(&source, "opx-ro").await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let args = [
        "export",
        "--db-instance",
        "opx-ro",
        "--target-account",
        TARGET,
        "--manifest",
        "no-such-folder/m.json",
    ];
    wd.via(&proxy, Agent::Src, &source, &args)
        .await
        .refused(2, "`no-such-folder/m.json` cannot be written");
    assert_eq!(proxy.requests(), 0, "refused before any AWS call");
    assert_eq!(footprint(&source, "opx-ro").await, before);
}

#[tokio::test]
async fn check_refuses_placement_that_does_not_exist_here_or_does_not_fit() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-place");
    mysql_instance(&source, "opx-place", false).await;
    export(&wd, &source, "--db-instance", "opx-place", &[])
        .await
        .ok();
    let net = network(&target);
    let ec2 = aws_sdk_ec2::Client::new(&target.config());
    let vpc = ec2
        .create_vpc()
        .cidr_block("10.99.0.0/16")
        .send()
        .await
        .unwrap();
    let other_vpc = vpc.vpc().unwrap().vpc_id().unwrap();
    let elsewhere = ec2
        .create_security_group()
        .group_name("opx-elsewhere")
        .description("a group in another VPC")
        .vpc_id(other_vpc)
        .send()
        .await
        .unwrap();
    let elsewhere = elsewhere.group_id().unwrap();
    let before = footprint(&target, "opx-place").await;
    let sha = sha_of(wd.path(), "opx-place.handoff.json");
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["--vpc-security-group-ids", "sg-0000000000000000"],
            "sg-0000000000000000".into(),
        ),
        (
            vec!["--vpc-security-group-ids", elsewhere],
            format!("security group `{elsewhere}` is in VPC `{other_vpc}`"),
        ),
        (
            vec!["--db-parameter-group-name", "no-such-params"],
            "parameter group `no-such-params` does not exist".into(),
        ),
        (
            vec!["--option-group-name", "no-such-options"],
            "option group `no-such-options` does not exist".into(),
        ),
        (
            vec!["--kms-key-id", "alias/no-such-key"],
            "KMS key `alias/no-such-key` not found".into(),
        ),
        (
            vec!["--db-subnet-group-name", "no-such-subnets"],
            "DB subnet group `no-such-subnets` does not exist".into(),
        ),
    ];
    for (extra, reason) in &cases {
        for verb in ["check", "import"] {
            let mut args = import_args("opx-place.handoff.json", &sha, &net, &[]);
            args[0] = verb;
            let flag = extra[0];
            if let Some(at) = args.iter().position(|a| *a == flag) {
                args.drain(at..at + 2);
            }
            args.extend_from_slice(extra);
            wd.run(Agent::Tgt, &target, &args).await.refused(3, reason);
        }
    }
    assert_eq!(
        footprint(&target, "opx-place").await,
        before,
        "nothing made"
    );
    // `check` takes what `import` takes: the one command is the other by its first word.
    let mut args = import_args("opx-place.handoff.json", &sha, &net, &["--multi-az"]);
    args[0] = "check";
    let run = wd.run(Agent::Tgt, &target, &args).await.ok();
    assert!(run.stdout.starts_with("ready to import"), "{}", run.stdout);
    assert_eq!(
        footprint(&target, "opx-place").await,
        before,
        "nothing made"
    );
}

#[tokio::test]
async fn a_failed_import_leaves_a_state_file_and_cleanup_removes_what_it_made() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-fimp");
    mysql_instance(&source, "opx-fimp", false).await;
    export(&wd, &source, "--db-instance", "opx-fimp", &[])
        .await
        .ok();
    let plan = FaultPlan {
        holds: vec![snapshot_held(
            "DBSnapshotIdentifier=rh-opx-fimp-imported",
            "failed",
        )],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let net = network(&target);
    let sha = sha_of(wd.path(), "opx-fimp.handoff.json");
    let args = import_args("opx-fimp.handoff.json", &sha, &net, &[]);
    wd.via(&proxy, Agent::Tgt, &target, &args)
        .await
        .refused(5, "is `failed`");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(wd.file("opx-fimp.import.state.json")).unwrap(),
    )
    .unwrap();
    let kinds: Vec<&str> = state["created"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, vec!["kms-key", "db-snapshot"], "{state}");
    let key = key_arn(&target, "alias/rds-handoff/imported/opx-fimp").await;
    let status = wd
        .run(Agent::Tgt, &target, &["status", "--db", "opx-fimp"])
        .await
        .ok();
    assert!(
        status.stdout.contains("opx-fimp: shared snapshot copied"),
        "{}",
        status.stdout
    );

    let run = wd
        .run(
            Agent::Tgt,
            &target,
            &["cleanup", "opx-fimp.handoff.json", "--yes"],
        )
        .await
        .ok();
    assert!(
        run.stdout.contains("rh-opx-fimp-imported deleted"),
        "{}",
        run.stdout
    );
    assert!(footprint(&target, "opx-fimp").await.snapshots.is_empty());
    assert_eq!(key_state(&target, &key).await, KeyState::PendingDeletion);
}

#[tokio::test]
async fn a_failed_export_or_encrypt_is_cleaned_up_and_the_database_is_never_touched() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-fexp");
    mysql_instance(&source, "opx-fexp", false).await;
    mysql_instance(&source, "opx-fenc", false).await;
    let plan = FaultPlan {
        holds: vec![
            snapshot_held(
                "DBSnapshotIdentifier=rh-opx-fexp-to-222222222222-src",
                "failed",
            ),
            snapshot_held("DBSnapshotIdentifier=rh-opx-fenc-encrypt$", "failed"),
        ],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let export = [
        "export",
        "--db-instance",
        "opx-fexp",
        "--target-account",
        TARGET,
    ];
    wd.via(&proxy, Agent::Src, &source, &export)
        .await
        .refused(5, "is `failed`");
    let encrypt = ["encrypt", "--db-instance", "opx-fenc"];
    wd.via(&proxy, Agent::Src, &source, &encrypt)
        .await
        .refused(5, "is `failed`");
    let left = footprint(&source, "opx-fenc").await;
    assert_eq!(
        left.snapshots.len(),
        2,
        "a failed encrypt leaves two snapshots: {left:?}"
    );
    for db in ["opx-fexp", "opx-fenc"] {
        let before = instance_state(&source, db).await;
        let key = footprint(&source, db).await.keys;
        assert_eq!(key.len(), 1, "{db}");
        // Without --yes and without a terminal, the key stays and cleanup says how to go on.
        let run = wd
            .run(Agent::Src, &source, &["cleanup", "--db", db])
            .await
            .ok();
        assert!(run.stderr.contains("pass `--yes`"), "{}", run.stderr);
        assert_eq!(key_state(&source, &key[0]).await, KeyState::Enabled);
        wd.run(Agent::Src, &source, &["cleanup", "--db", db, "--yes"])
            .await
            .ok();
        let after = footprint(&source, db).await;
        assert!(after.snapshots.is_empty(), "{db}: {after:?}");
        assert_eq!(
            after.databases,
            vec![db.to_owned()],
            "the database is never removed"
        );
        assert_eq!(instance_state(&source, db).await, before);
        assert_eq!(key_state(&source, &key[0]).await, KeyState::PendingDeletion);
    }
}

#[tokio::test]
async fn status_lists_each_handoff_with_its_stage_and_resources() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-status");
    mysql_instance(&source, "opx-status", false).await;
    export(&wd, &source, "--db-instance", "opx-status", &[])
        .await
        .ok();
    import(&wd, &target, "opx-status", &[]).await.0.ok();
    let src = wd
        .run(Agent::Src, &source, &["status", "--output", "json"])
        .await
        .ok();
    let done = json_lines(&src).pop().unwrap();
    let handoff = done["handoffs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["database"] == "opx-status")
        .unwrap()
        .clone();
    assert_eq!(handoff["stage"], format!("shared with {TARGET}"));
    let tgt = wd
        .run(Agent::Tgt, &target, &["status", "--db", "opx-status"])
        .await
        .ok();
    assert!(
        tgt.stdout.starts_with("opx-status: imported"),
        "{}",
        tgt.stdout
    );
    assert!(
        tgt.stdout
            .contains("db-instance opx-status (available, restored-database, sse-kms)"),
        "{}",
        tgt.stdout
    );
    assert!(
        tgt.stdout.contains("secret rds-handoff/opx-status/master"),
        "{}",
        tgt.stdout
    );
    // A table has columns, a row per resource: no JSON in a cell.
    let args = ["status", "--db", "opx-status", "--output", "table"];
    let table = wd.run(Agent::Tgt, &target, &args).await.ok();
    assert!(!table.stdout.contains('{'), "{}", table.stdout);
    let header = table
        .stdout
        .lines()
        .find(|l| l.starts_with("| database "))
        .unwrap_or_else(|| panic!("no header row: {}", table.stdout));
    for column in ["stage", "kind", "id", "status", "role"] {
        assert!(header.contains(&format!(" {column} ")), "{header}");
    }
    let row = |id: &str| {
        table
            .stdout
            .lines()
            .any(|l| l.contains(&format!("| {id} ")))
    };
    assert!(
        row("opx-status") && row("rds-handoff/opx-status/master"),
        "{}",
        table.stdout
    );
}

#[tokio::test]
async fn an_import_stopped_before_the_new_password_is_flagged_by_status_and_cleanup() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-pw");
    mysql_instance(&source, "opx-pw", false).await;
    export(&wd, &source, "--db-instance", "opx-pw", &[])
        .await
        .ok();
    // The import stops after the restore, at the request that would set the new password.
    let plan = FaultPlan {
        denials: vec![Denial {
            action: "ModifyDBInstance",
            matching: "MasterUserPassword".into(),
            code: None,
            region: None,
        }],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let net = network(&target);
    let manifest = "opx-pw.handoff.json";
    let sha = sha_of(wd.path(), manifest);
    let args = import_args(manifest, &sha, &net, &[]);
    let stopped = wd.via(&proxy, Agent::Tgt, &target, &args).await;
    assert_eq!(stopped.code, 4, "{}", stopped.stderr);
    assert!(
        proxy
            .stats
            .bodies("ModifyDBInstance")
            .iter()
            .any(|b| b.contains("MasterUserPassword")),
        "it got as far as the password: {}",
        stopped.stderr
    );
    assert_eq!(
        footprint(&target, "opx-pw").await.databases,
        vec!["opx-pw".to_owned()],
        "restored"
    );
    let finish = format!(
        "tgt-agent import <MANIFEST> --source-account {SOURCE} --manifest-sha256 <SHA256> --db-identifier opx-pw --db-subnet-group-name {} --vpc-security-group-ids {}",
        net.subnet_group, net.security_group
    );
    let loud = "STILL ANSWERS TO THE SOURCE'S MASTER PASSWORD";

    let status = wd
        .run(Agent::Tgt, &target, &["status", "--db", "opx-pw"])
        .await
        .ok();
    assert!(
        status.stdout.starts_with("opx-pw: restored (")
            && status
                .stdout
                .contains("STILL ON THE SOURCE'S MASTER PASSWORD"),
        "{}",
        status.stdout
    );
    assert!(
        status.stdout.contains(loud) && status.stdout.contains(&finish),
        "{}",
        status.stdout
    );
    let json = wd
        .run(
            Agent::Tgt,
            &target,
            &["status", "--db", "opx-pw", "--output", "json"],
        )
        .await
        .ok();
    let done = json_lines(&json).pop().unwrap();
    let handoff = &done["handoffs"][0];
    assert_eq!(handoff["finish"], finish.as_str(), "{done}");
    assert!(
        handoff["warning"].as_str().unwrap().contains(loud),
        "{done}"
    );

    // Cleanup cannot fix it (it never touches a database): it says so, with the manifest it
    // was given in the command, and exits 1.
    let cleanup = wd.run(Agent::Tgt, &target, &["cleanup", manifest]).await;
    assert_eq!(cleanup.code, 1, "{}{}", cleanup.stdout, cleanup.stderr);
    assert!(
        !cleanup.stdout.contains("nothing to clean up"),
        "{}",
        cleanup.stdout
    );
    let with_manifest = finish.replace("<MANIFEST>", manifest);
    assert!(
        cleanup.stdout.contains(loud) && cleanup.stdout.contains(&with_manifest),
        "{}",
        cleanup.stdout
    );
    assert_eq!(
        footprint(&target, "opx-pw").await.databases,
        vec!["opx-pw".to_owned()],
        "the database stays"
    );

    // The command it prints (with the SHA-256) finishes the job; then both are quiet.
    let again: Vec<String> = with_manifest
        .replace("<SHA256>", &sha)
        .split(' ')
        .skip(1)
        .map(str::to_owned)
        .collect();
    wd.run(Agent::Tgt, &target, &again).await.ok();
    let status = wd
        .run(Agent::Tgt, &target, &["status", "--db", "opx-pw"])
        .await
        .ok();
    assert!(
        status.stdout.starts_with("opx-pw: imported") && !status.stdout.contains(loud),
        "{}",
        status.stdout
    );
    let cleanup = wd
        .run(Agent::Tgt, &target, &["cleanup", "--db", "opx-pw"])
        .await
        .ok();
    assert!(
        cleanup.stdout.contains("nothing to clean up"),
        "{}",
        cleanup.stdout
    );
}

#[tokio::test]
async fn wrong_inputs_are_refused_before_anything_is_made() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-wrong");
    aurora_cluster(&source, "opx-aur", true).await;
    mysql_instance(&source, "opx-enc-already", true).await;
    let before = footprint(&source, "opx-aur").await;
    export(&wd, &source, "--db-instance", "opx-aur-1", &[])
        .await
        .refused(3, "is a member of Aurora DB cluster `opx-aur`")
        .stderr
        .contains("use `--db-cluster opx-aur`")
        .then_some(())
        .expect("the hint names the cluster flag");
    wd.run(
        Agent::Src,
        &source,
        &["encrypt", "--db-instance", "opx-aur-1"],
    )
    .await
    .refused(3, "use `--db-cluster opx-aur`");
    assert_eq!(footprint(&source, "opx-aur").await, before);
    wd.run(
        Agent::Src,
        &source,
        &["encrypt", "--db-instance", "opx-enc-already"],
    )
    .await
    .refused(3, "is already encrypted");
    assert!(footprint(&source, "opx-enc-already-encrypted")
        .await
        .databases
        .is_empty());
}

#[tokio::test]
async fn encrypt_says_writes_after_the_snapshot_are_lost_and_stop_source_stops_the_original() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-stop");
    mysql_instance(&source, "opx-warn", false).await;
    mysql_instance(&source, "opx-stop", false).await;
    let run = wd
        .run(
            Agent::Src,
            &source,
            &["encrypt", "--db-instance", "opx-warn"],
        )
        .await
        .ok();
    assert!(
        run.stderr
            .contains("writes after this moment are not in the copy"),
        "{}",
        run.stderr
    );
    let run = wd
        .run(
            Agent::Src,
            &source,
            &["encrypt", "--db-instance", "opx-stop", "--stop-source"],
        )
        .await
        .ok();
    assert!(
        run.stdout
            .contains("was stopped by the call that took its snapshot just before the stop"),
        "{}",
        run.stdout
    );
    let original = e2e::fixtures::describe_instance(&source, "opx-stop").await;
    assert_eq!(original.db_instance_status(), Some("stopped"));
}

#[tokio::test]
async fn a_finished_import_answers_from_its_own_state_and_says_what_differs() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-done");
    mysql_instance(&source, "opx-done", false).await;
    export(&wd, &source, "--db-instance", "opx-done", &[])
        .await
        .ok();
    import(&wd, &target, "opx-done", &[]).await.0.ok();
    wd.run(Agent::Src, &source, &["revoke", "opx-done.handoff.json"])
        .await
        .ok();
    let (again, _) = import(&wd, &target, "opx-done", &[]).await;
    assert!(again.ok().stdout.starts_with("already imported"));
    import(&wd, &target, "opx-done", &["--db-instance-class", "db.r5.large", "--deletion-protection"])
        .await
        .0
        .refused(3, "is already imported, placed differently than this run asks: instance class `db.t3.micro` (this run: `db.r5.large`); deletion protection `false` (this run: `true`)");
}

/// A server on a loopback port that answers every request with HTTP 500 and no AWS error.
async fn broken_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                use tokio::io::{AsyncReadExt, AsyncWriteExt};
                let mut buf = vec![0u8; 65536];
                let _ = socket.read(&mut buf).await;
                let reply = "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(reply.as_bytes()).await;
            });
        }
    });
    url
}

#[tokio::test]
async fn connection_errors_say_what_to_do_within_seconds() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-errors");
    let export = ["export", "--db-instance", "x", "--target-account", TARGET];
    let with = |extra: &'static [&'static str]| [&export[..], extra].concat();
    wd.run(
        Agent::Src,
        &source,
        &with(&["--endpoint-url", "localhost:4566"]),
    )
    .await
    .refused(
        2,
        "`localhost:4566` has no scheme: write it as `https://localhost:4566`",
    );
    wd.run(
        Agent::Src,
        &source,
        &with(&["--profile", "no-such-profile"]),
    )
    .await
    .refused(
        2,
        "profile `no-such-profile` is not in your AWS config or credentials file",
    );
    let started = Instant::now();
    let run = wd
        .run_with(
            Agent::Src,
            &source,
            &export,
            &[("AWS_ENDPOINT_URL", "http://127.0.0.1:1")],
        )
        .await;
    let run = run.refused(4, "Unreachable");
    assert!(
        run.stderr.contains("hint: AWS could not be reached"),
        "{}",
        run.stderr
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    let broken = broken_server().await;
    let run = wd
        .run_with(
            Agent::Src,
            &source,
            &export,
            &[("AWS_ENDPOINT_URL", &broken)],
        )
        .await;
    let run = run.refused(4, "the endpoint answered HTTP 500");
    assert!(
        !run.stderr.contains("could not be reached"),
        "{}",
        run.stderr
    );
    // An endpoint that takes the connection and never answers: said within seconds, and
    // the error gives the whole wait.
    let silent = silent_server().await;
    let env = [("AWS_ENDPOINT_URL", silent.as_str())];
    let run = wd.run_with(Agent::Src, &source, &export, &env).await;
    let run = run.refused(4, "the endpoint took the connection but sent no answer in ");
    let waited: u64 = run
        .stderr
        .split("sent no answer in ")
        .nth(1)
        .unwrap()
        .split('s')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (19..=30).contains(&waited),
        "the whole wait, two attempts of 10s: {}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("[    3s] identity: sts:GetCallerIdentity (no answer yet)"),
        "{}",
        run.stderr
    );
    // No credentials anywhere: the error lists what was tried, not a bare "Attempted:".
    let nowhere = wd.file("no-such-aws-file").display().to_string();
    let env = [
        ("AWS_ACCESS_KEY_ID", ""),
        ("AWS_SECRET_ACCESS_KEY", ""),
        ("AWS_SESSION_TOKEN", ""),
        ("AWS_PROFILE", ""),
        ("AWS_CONFIG_FILE", nowhere.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", nowhere.as_str()),
        ("AWS_EC2_METADATA_DISABLED", "true"),
    ];
    let run = wd.run_with(Agent::Src, &source, &export, &env).await;
    let run = run.refused(2, "no usable AWS credentials");
    let line = run
        .stderr
        .lines()
        .find(|l| l.contains("no usable AWS credentials"))
        .unwrap();
    assert!(!line.trim_end().ends_with("Attempted:"), "{line}");
}

/// A server on a loopback port that takes every connection and never answers.
async fn silent_server() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    url
}

#[tokio::test]
async fn an_unreadable_snapshot_quota_warns_and_the_export_goes_on() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-quota");
    mysql_instance(&source, "opx-quota", false).await;
    let plan = FaultPlan::deny("DescribeAccountAttributes");
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let args = [
        "export",
        "--db-instance",
        "opx-quota",
        "--target-account",
        TARGET,
    ];
    let run = wd.via(&proxy, Agent::Src, &source, &args).await.ok();
    assert!(
        run.stderr
            .contains("warning: snapshot quota: rds:DescribeAccountAttributes (not checked"),
        "{}",
        run.stderr
    );
}

#[tokio::test]
async fn sigterm_stops_like_ctrl_c_and_the_same_command_resumes() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("opx-term");
    mysql_instance(&source, "opx-term", false).await;
    let plan = FaultPlan {
        holds: vec![snapshot_held(
            "DBSnapshotIdentifier=rh-opx-term",
            "creating",
        )],
        ..FaultPlan::default()
    };
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let args = [
        "export",
        "--db-instance",
        "opx-term",
        "--target-account",
        TARGET,
    ];
    let mut child = wd
        .command(Agent::Src, &source, &args)
        .env("AWS_ENDPOINT_URL", &proxy.url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    crate::reliability::wait_for_request(
        &proxy,
        &mut child,
        "DescribeDBSnapshots",
        Duration::from_secs(60),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let pid = child.id().unwrap().to_string();
    std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap();
    let out = child.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("error: interrupted") && stderr.contains("re-run the same command"),
        "{stderr}"
    );
    wd.run(Agent::Src, &source, &args).await.ok();
}

#[tokio::test]
async fn flags_and_output_follow_the_aws_cli() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-cli");
    mysql_instance(&source, "opx-cli", false).await;
    export(&wd, &source, "--db-instance", "opx-cli", &[])
        .await
        .ok();
    let net = network(&target);
    // The profile's `output` setting is honoured; security groups may be space-separated;
    // without --region, the manifest's region is used and said.
    let config = wd.path().join(".aws");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(config.join("config"), "[default]\noutput = json\n").unwrap();
    let ec2 = aws_sdk_ec2::Client::new(&target.config());
    let first = ec2
        .describe_security_groups()
        .group_ids(&net.security_group)
        .send()
        .await
        .unwrap();
    let vpc = first.security_groups()[0].vpc_id().unwrap().to_owned();
    let second = ec2
        .create_security_group()
        .group_name("opx-cli-second")
        .description("a second group in the same VPC")
        .vpc_id(&vpc)
        .send()
        .await
        .unwrap();
    let second = second.group_id().unwrap().to_owned();
    let sha = sha_of(wd.path(), "opx-cli.handoff.json");
    let mut args = import_args("opx-cli.handoff.json", &sha, &net, &[]);
    args.push(&second);
    let config = config.join("config").display().to_string();
    let env = [
        ("AWS_REGION", "eu-west-1"),
        ("AWS_CONFIG_FILE", config.as_str()),
    ];
    let run = wd.run_with(Agent::Tgt, &target, &args, &env).await.ok();
    let lines = json_lines(&run);
    assert!(
        lines.iter().all(|l| l["database"] == "opx-cli"),
        "{}",
        run.stdout
    );
    assert!(
        lines
            .iter()
            .any(|l| l["stage"] == "region" && l["resource"] == "us-east-1"),
        "{}",
        run.stdout
    );
    assert_eq!(lines.last().unwrap()["event"], "done");
    let table = wd
        .run(
            Agent::Tgt,
            &target,
            &[&args[..], &["--output", "table"]].concat(),
        )
        .await
        .ok();
    assert!(
        table.stdout.starts_with("+--") && table.stdout.contains("| db_identifier"),
        "{}",
        table.stdout
    );
    // Argument errors are JSON too with --output json.
    let bad = wd
        .run(
            Agent::Src,
            &source,
            &["export", "--db-instance", "x", "--output", "json"],
        )
        .await;
    assert_eq!(bad.code, 2);
    let error = json_lines(&bad).pop().unwrap();
    assert_eq!(error["event"], "error");
    assert!(
        error["error"]
            .as_str()
            .unwrap()
            .contains("--target-account"),
        "{error}"
    );
    // --debug logs every request; --no-color keeps them plain. Each request the proxy saw is
    // in the log by its operation: the SDK's `invoke` span names it (`rpc.method="Action"`)
    // on every line logged within it.
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let debug = wd
        .via(
            &proxy,
            Agent::Src,
            &source,
            // Not a terminal: no colors without `--no-color` either.
            &["status", "--debug"],
        )
        .await
        .ok();
    let requested = proxy.stats.actions();
    assert!(
        requested.iter().any(|a| a == "sts:GetCallerIdentity"),
        "status asks who runs it: {requested:?}"
    );
    for action in &requested {
        let (_, operation) = action.split_once(':').unwrap_or(("", action.as_str()));
        let quoted = format!("rpc.method=\"{operation}\"");
        let bare = format!("rpc.method={operation} ");
        let logged = debug.stderr.contains(&quoted) || debug.stderr.contains(&bare);
        assert!(
            !operation.is_empty() && logged,
            "request {action} is not in the --debug log:\n{}",
            &debug.stderr[..debug.stderr.len().min(4000)]
        );
    }
    assert!(!debug.stderr.contains('\u{1b}'), "no color codes");
    // Global options come after the command's own in --help.
    let help = wd
        .run(Agent::Tgt, &target, &["import", "--help"])
        .await
        .ok();
    let (own, global) = (
        help.stdout.find("--db-subnet-group-name").unwrap(),
        help.stdout.find("Global options").unwrap(),
    );
    assert!(
        own < global && help.stdout[global..].contains("--profile"),
        "{}",
        help.stdout
    );
}

#[tokio::test]
async fn every_documented_command_speaks_json_lines() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-json");
    mysql_instance(&source, "opx-json", false).await;
    mysql_instance(&source, "opx-json-enc", false).await;
    let net = network(&target);
    let json = ["--output", "json"];
    let src_runs: Vec<Vec<&str>> = vec![
        vec!["policy", "--target-account", TARGET],
        vec![
            "export",
            "--db-instance",
            "opx-json",
            "--target-account",
            TARGET,
            "--dry-run",
        ],
        vec![
            "export",
            "--db-instance",
            "opx-json",
            "--target-account",
            TARGET,
        ],
        vec![
            "audit",
            "--kms-key-id",
            "alias/rds-handoff/opx-json",
            "--target-account",
            TARGET,
        ],
        vec!["encrypt", "--db-instance", "opx-json-enc", "--dry-run"],
        vec!["encrypt", "--db-instance", "opx-json-enc"],
        vec!["status"],
        vec!["cleanup", "--db", "opx-json-enc", "--dry-run"],
    ];
    let mut count = 0;
    for args in &src_runs {
        let run = wd
            .run(Agent::Src, &source, &[&args[..], &json].concat())
            .await
            .ok();
        count += finished_json_lines(&run, args).len();
    }
    let sha = sha_of(wd.path(), "opx-json.handoff.json");
    let tgt_runs = [
        import_args("opx-json.handoff.json", &sha, &net, &[])
            .into_iter()
            .map(|a| if a == "import" { "check" } else { a })
            .collect::<Vec<_>>(),
        import_args("opx-json.handoff.json", &sha, &net, &["--dry-run"]),
        import_args("opx-json.handoff.json", &sha, &net, &[]),
        vec!["status"],
        vec!["cleanup", "opx-json.import.json"],
    ];
    for args in &tgt_runs {
        let run = wd
            .run(Agent::Tgt, &target, &[&args[..], &json].concat())
            .await
            .ok();
        count += finished_json_lines(&run, args).len();
    }
    let revoke_args = ["revoke", "opx-json.handoff.json", "--output", "json"];
    let revoke = wd.run(Agent::Src, &source, &revoke_args).await.ok();
    count += finished_json_lines(&revoke, &revoke_args).len();
    println!(
        "json: {} commands, {count} lines, every one parsed with event, timestamp and database",
        src_runs.len() + tgt_runs.len() + 1
    );
}

/// The flags each of an agent's commands shows in `--help`, by command: their one spelling
/// (aliases are hidden), global options included.
fn primary_flags(agent: Agent) -> BTreeMap<String, std::collections::BTreeSet<String>> {
    let help = |args: &[&str]| {
        let out = std::process::Command::new(agent.path())
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let top = help(&["--help"]);
    let commands: Vec<String> = top
        .split("Commands:")
        .nth(1)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(str::to_owned))
        .filter(|c| c != "help")
        .collect();
    assert!(commands.len() >= 4, "{top}");
    let mut by_command = BTreeMap::new();
    for command in commands {
        let flags: &mut std::collections::BTreeSet<String> =
            by_command.entry(command.clone()).or_default();
        // An option's line starts with its flags (`-v, --verbose`, `--kms-key-id <KEY>`).
        for line in help(&[&command, "--help"]).lines() {
            let line = line.trim_start();
            if !line.starts_with('-') {
                continue;
            }
            let flag = line
                .split([' ', ','])
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(['=']).to_owned());
            flags.extend(flag);
        }
    }
    by_command
}

/// The text a message can come from on one line of Rust: string literals, and a doc comment
/// that is a flag's help (`help` when the `///` block ends at a clap attribute).
fn message_text(line: &str, help: bool) -> String {
    let trimmed = line.trim_start();
    if let Some(doc) = trimmed.strip_prefix("///") {
        return if help { doc.to_owned() } else { String::new() };
    }
    if trimmed.starts_with("//") {
        return String::new();
    }
    line.split('"')
        .skip(1)
        .step_by(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Every flag a hint, a help text or a printed command names is one the agents take in its
/// one spelling (never an alias, never one that does not exist), and every `aws …` command
/// is left to the AWS CLI. Read from the source of both agents and their library.
#[test]
fn every_flag_a_message_names_is_an_agents_own_spelling() {
    let agents = [
        ("src-agent", primary_flags(Agent::Src)),
        ("tgt-agent", primary_flags(Agent::Tgt)),
    ];
    let any: std::collections::BTreeSet<&String> = agents
        .iter()
        .flat_map(|(_, commands)| commands.values().flatten())
        .collect();
    // A printed command's flags must be its own command's; a flag alone, any command's.
    let known = |span: &str, flag: &String| {
        let mut words = span.split_whitespace();
        let (agent, command) = (
            words.next().unwrap_or_default(),
            words.next().unwrap_or_default(),
        );
        match agents.iter().find(|(name, _)| *name == agent) {
            Some((_, commands)) => commands.get(command).is_some_and(|f| f.contains(flag)),
            None => any.contains(flag),
        }
    };
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["shared/src", "source-agent/src", "target-agent/src"] {
        let mut todo = vec![root.join(dir)];
        while let Some(dir) = todo.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    todo.push(path);
                } else if path.extension().is_some_and(|e| e == "rs") {
                    files.push(path);
                }
            }
        }
    }
    let mut wrong = Vec::new();
    let mut seen = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // The code's own tests may name anything.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines.iter().enumerate() {
            let help = line.trim_start().starts_with("///") && {
                let after = lines[n..]
                    .iter()
                    .find(|l| !l.trim_start().starts_with("///"));
                after.is_some_and(|l| {
                    let l = l.trim_start();
                    l.starts_with("#[arg") || l.starts_with("#[command") || l.starts_with("#[value")
                })
            };
            let line = message_text(line, help);
            // Inside a backticked span: `--flag`, or a command `src-agent … --flag …`; a span
            // that starts with `aws ` is the AWS CLI's.
            for (i, span) in line.split('`').enumerate() {
                if i % 2 == 0 || span.starts_with("aws ") || span.starts_with("AWS_") {
                    continue;
                }
                for word in span.split_whitespace() {
                    let flag: String = word
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                        .collect();
                    if !flag.starts_with("--") || flag.len() <= 2 {
                        continue;
                    }
                    seen += 1;
                    if !known(span, &flag) {
                        let place = file.strip_prefix(&root).unwrap_or(&file).display();
                        wrong.push(format!("{place}:{}: {flag}", n + 1));
                    }
                }
            }
        }
    }
    assert!(seen > 50, "only {seen} flags found in messages");
    assert!(
        wrong.is_empty(),
        "not an agent's own spelling:\n{}",
        wrong.join("\n")
    );
}

/// The next-step commands an export prints (one database, a fleet) run as printed, their
/// placeholders filled: the target agent's own CLI takes them.
#[tokio::test]
async fn the_printed_next_commands_run_as_printed() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-next");
    mysql_instance(&source, "opx-next", false).await;
    mysql_instance(&source, "opx-next-b", false).await;
    let net = network(&target);
    let single = [
        "export",
        "--db-instance",
        "opx-next",
        "--target-account",
        TARGET,
        "--output",
        "json",
    ];
    let fleet = [
        "export",
        "--db-instance",
        "opx-next",
        "--db-instance",
        "opx-next-b",
        "--target-account",
        TARGET,
        "--manifest-dir",
        "fleet",
        "--output",
        "json",
    ];
    for args in [&single[..], &fleet[..]] {
        let run = wd.run(Agent::Src, &source, args).await.ok();
        let done = json_lines(&run).pop().unwrap();
        let next = done["next_command"]
            .as_str()
            .unwrap_or_else(|| panic!("{done}"));
        let next = next
            .replace("<SUBNET_GROUP>", &net.subnet_group)
            .replace("<SG_ID>", &net.security_group);
        let mut words: Vec<&str> = next.split_whitespace().collect();
        assert_eq!(words.remove(0), "tgt-agent", "{next}");
        words.push("--dry-run");
        let run = wd.run(Agent::Tgt, &target, &words).await;
        assert_eq!(run.code, 0, "{next}\n{}", run.stderr);
    }
    // `check` takes what `import` takes, an index too; a manifest typed after the security
    // groups is said for what it is.
    let sha = sha_of(wd.path(), "opx-next.handoff.json");
    let check = [
        "check",
        "--vpc-security-group-ids",
        &net.security_group,
        "opx-next.handoff.json",
        "--db-subnet-group-name",
        &net.subnet_group,
        "--manifest-sha256",
        &sha,
        "--source-account",
        SOURCE,
    ];
    wd.run(Agent::Tgt, &target, &check)
        .await
        .refused(2, "put the manifest before `--vpc-security-group-ids`");
    let index_sha = sha_of(wd.path(), "fleet/rds-handoff-index.json");
    let check = [
        "check",
        "fleet/rds-handoff-index.json",
        "--vpc-security-group-ids",
        &net.security_group,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--manifest-sha256",
        &index_sha,
        "--source-account",
        SOURCE,
        "--db-instance-class",
        "db.t3.small",
    ];
    let run = wd.run(Agent::Tgt, &target, &check).await.ok();
    assert!(
        run.stdout.contains("dry run: nothing was changed"),
        "{}",
        run.stdout
    );
}

/// What a new admin read that said the wrong thing, each with the command that showed it.
#[tokio::test]
async fn messages_say_what_happened() {
    let (source, target) = accounts().await;
    let wd = Workdir::new("opx-say");
    for db in ["opx-say", "opx-say-b", "opx-say-c"] {
        mysql_instance(&source, db, false).await;
    }
    // A copy made, its share refused: `status` does not call it shared.
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan::deny("ModifyDBSnapshotAttribute"),
    )
    .await;
    let args = [
        "export",
        "--db-instance",
        "opx-say-c",
        "--target-account",
        TARGET,
    ];
    wd.via(&proxy, Agent::Src, &source, &args).await;
    let status = wd
        .run(Agent::Src, &source, &["status", "--db", "opx-say-c"])
        .await
        .ok();
    assert!(
        status
            .stdout
            .contains("copy for the target, not shared (not yet, or revoked)"),
        "{}",
        status.stdout
    );
    // A key found by its tag, its alias gone: the words say so.
    export(&wd, &source, "--db-instance", "opx-say", &[])
        .await
        .ok();
    source
        .kms()
        .delete_alias()
        .alias_name("alias/rds-handoff/opx-say")
        .send()
        .await
        .unwrap();
    std::fs::remove_file(wd.file("opx-say.handoff.json")).unwrap();
    let run = export(&wd, &source, "--db-instance", "opx-say", &[])
        .await
        .ok();
    assert!(
        run.stderr
            .contains("found by its tag, without its alias: adding `alias/rds-handoff/opx-say`"),
        "{}",
        run.stderr
    );
    // A revoke's dry run speaks as every plan does.
    let revoke = ["revoke", "opx-say.handoff.json", "--dry-run"];
    let run = wd.run(Agent::Src, &source, &revoke).await.ok();
    let unshare = format!("delete         share with account {TARGET}: rh-opx-say-to-{TARGET}");
    assert!(run.stderr.contains(&unshare), "{}", run.stderr);
    assert!(!run.stderr.contains("removed"), "{}", run.stderr);
    // After the revoke, `status` says the handoff ended.
    let revoke = [
        "revoke",
        "opx-say.handoff.json",
        "--delete-snapshot",
        "--schedule-key-deletion",
        "7",
    ];
    wd.run(Agent::Src, &source, &revoke).await.ok();
    let status = wd
        .run(Agent::Src, &source, &["status", "--db", "opx-say"])
        .await
        .ok();
    assert!(
        status
            .stdout
            .contains("opx-say: ended: only the key is left, its deletion scheduled"),
        "{}",
        status.stdout
    );
    // A fleet that fails at its key says so, and its dry run's last word is a dry run's.
    let key = source.kms().create_key().send().await.unwrap();
    let (key, id) = match key.key_metadata() {
        Some(m) => (m.arn().unwrap().to_owned(), m.key_id().to_owned()),
        None => panic!("a key has metadata"),
    };
    source
        .kms()
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let fleet = [
        "export",
        "--db-instance",
        "opx-say-b",
        "--db-instance",
        "opx-say-c",
        "--target-account",
        TARGET,
        "--manifest-dir",
        "fleet",
        "--kms-key-id",
        &key,
        "--dry-run",
    ];
    let run = wd.run(Agent::Src, &source, &fleet).await;
    assert_eq!(run.code, 6, "{}\n{}", run.stdout, run.stderr);
    let row = run
        .stdout
        .lines()
        .find(|l| l.starts_with("opx-say-b"))
        .unwrap_or_default();
    assert!(
        row.contains(" key ") && row.contains("PendingDeletion"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout
            .contains("then run the dry run again\ndry run: nothing was changed")
            && !run.stdout.contains("to finish the rest"),
        "{}",
        run.stdout
    );
    // Cleanup: a target's report on the source, a database that is nowhere.
    export(&wd, &source, "--db-instance", "opx-say-b", &[])
        .await
        .ok();
    import(&wd, &target, "opx-say-b", &[]).await.0.ok();
    wd.run(Agent::Src, &source, &["cleanup", "opx-say-b.import.json"])
        .await
        .refused(2, "is a target's import report");
    // `status --db` finds a database however it is typed (RDS identifiers ignore case).
    let status = wd
        .run(Agent::Tgt, &target, &["status", "--db", "OPX-SAY-B"])
        .await
        .ok();
    assert!(
        status.stdout.starts_with("opx-say-b: imported"),
        "{}",
        status.stdout
    );
    let help = wd
        .run(Agent::Src, &source, &["cleanup", "--help"])
        .await
        .ok();
    assert!(
        help.stdout.contains("with `tgt-agent`, also"),
        "{}",
        help.stdout
    );
    let nosuch = ["cleanup", "--db", "nosuch"];
    wd.run(Agent::Src, &source, &nosuch)
        .await
        .refused(3, "no database `nosuch`");
    wd.run(Agent::Tgt, &target, &nosuch)
        .await
        .refused(3, "no database `nosuch`");
}
