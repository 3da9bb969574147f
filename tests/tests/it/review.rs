//! The reviewer's commands against live keys, and export onto a key that already exists.

use e2e::fixtures::{key_policy, key_with_policy, mysql_instance};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Agent, Emulator, Workdir, SOURCE, TARGET};
use rds_handoff::policy::builder::{SID_TARGET_GRANTS, SID_TARGET_USE};

use crate::common::{accounts, export};

const DEFAULT_POLICY: &str = r#"{"Version":"2012-10-17","Id":"key-default-1","Statement":[{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}]}"#;

#[tokio::test]
async fn audit_passes_the_exported_key_and_flags_dangerous_ones() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-audit");
    mysql_instance(&source, "rev-audit", false).await;
    export(&wd, &source, "--db-instance", "rev-audit", &[])
        .await
        .ok();
    let clean = wd
        .run(
            Agent::Src,
            &source,
            &[
                "audit",
                "--kms-key-id",
                "alias/rds-handoff/rev-audit",
                "--target-account",
                TARGET,
            ],
        )
        .await
        .ok();
    assert!(clean.stdout.contains("no findings"), "{}", clean.stdout);
    // Without the target named, the target's statements let in an account nobody vouched for.
    let unnamed = wd
        .run(
            Agent::Src,
            &source,
            &["audit", "--kms-key-id", "alias/rds-handoff/rev-audit"],
        )
        .await;
    assert_eq!(unnamed.code, 1, "{}{}", unnamed.stdout, unnamed.stderr);
    assert!(
        unnamed.stdout.contains("untrusted-account") && unnamed.stdout.contains(TARGET),
        "{}",
        unnamed.stdout
    );

    let open = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"},
      {"Sid":"Anyone","Effect":"Allow","Principal":{"AWS":"*"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    let key = key_with_policy(&source, open).await;
    let run = wd
        .run(Agent::Src, &source, &["audit", "--kms-key-id", &key])
        .await;
    assert_eq!(run.code, 1, "{}{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("[HIGH] wildcard-principal: statement `Anyone`"),
        "{}",
        run.stdout
    );

    // moto stores any policy; KMS itself would have refused this one (lockout).
    let locked = r#"{"Version":"2012-10-17","Statement":[
      {"Sid":"UseOnly","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:Decrypt","Resource":"*"}]}"#;
    let key = key_with_policy(&source, locked).await;
    let run = wd
        .run(
            Agent::Src,
            &source,
            &["audit", "--kms-key-id", &key, "--output", "json"],
        )
        .await;
    assert_eq!(run.code, 1);
    let report: serde_json::Value = serde_json::from_str(run.stdout.trim()).unwrap();
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["check"] == "lockout" && f["severity"] == "high"),
        "{report}"
    );
}

#[tokio::test]
async fn export_onto_an_existing_key_adds_the_target_statements_and_keeps_the_rest() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-key");
    mysql_instance(&source, "rev-key", false).await;
    let key = key_with_policy(&source, DEFAULT_POLICY).await;
    // The dry run audits the key as the run does, says how its policy will change, and
    // changes nothing.
    let dry = ["--kms-key-id", key.as_str(), "--dry-run"];
    let plan = export(&wd, &source, "--db-instance", "rev-key", &dry)
        .await
        .ok();
    let said = format!("{}{}", plan.stdout, plan.stderr);
    let change = format!("key policy (set {SID_TARGET_USE}, {SID_TARGET_GRANTS} for {TARGET}");
    assert!(said.contains(&change), "{said}");
    assert_eq!(key_policy(&source, &key).await.statements().len(), 1);
    export(
        &wd,
        &source,
        "--db-instance",
        "rev-key",
        &["--kms-key-id", &key],
    )
    .await
    .ok();
    let policy = key_policy(&source, &key).await;
    let sids: Vec<&str> = policy.statements().iter().map(|s| s.sid()).collect();
    assert_eq!(
        sids,
        [
            "Enable IAM User Permissions",
            SID_TARGET_USE,
            SID_TARGET_GRANTS
        ]
    );
    let manifest = crate::common::manifest(&wd, "rev-key");
    assert_eq!(manifest.snapshot.kms_key_arn.unwrap().as_str(), key);
    // Run again without the key flag: the finished handoff, under the key it used.
    let again = export(&wd, &source, "--db-instance", "rev-key", &[])
        .await
        .ok();
    assert!(
        again.stdout.contains("already exported"),
        "{}",
        again.stdout
    );
}

#[tokio::test]
async fn a_key_admin_list_that_excludes_the_caller_is_refused_before_kms() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-lockout");
    mysql_instance(&source, "rev-lockout", false).await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let other = format!("arn:aws:iam::{SOURCE}:role/SomeoneElse");
    let args = [
        "export",
        "--db-instance",
        "rev-lockout",
        "--target-account",
        TARGET,
        "--key-admin",
        other.as_str(),
    ];
    let run = wd.via(&proxy, Agent::Src, &source, &args).await;
    let run = run.refused(3, "would lock you out");
    assert!(
        run.stderr
            .contains("--key-admin arn:aws:iam::111111111111:role/rds-handoff-admin"),
        "{}",
        run.stderr
    );
    // The policy is checked before any KMS request: KMS sees nothing, not even a look-up.
    let kms: Vec<String> = proxy
        .stats
        .actions()
        .into_iter()
        .filter(|a| a.starts_with("kms:"))
        .collect();
    assert!(kms.is_empty(), "KMS got {kms:?}");
    assert!(
        proxy.stats.saw("GetCallerIdentity"),
        "the proxy saw the run: {:?}",
        proxy.stats.actions()
    );
}

#[tokio::test]
async fn audit_exits_non_zero_on_statements_it_cannot_clear() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-adversary");
    let third = e2e::THIRD;
    let admin = r#"{"Sid":"Admin","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111111111111:root"},"Action":"kms:*","Resource":"*"}"#;
    for (statement, finding) in [
        (
            format!(
                r#"{{"Sid":"PinnedElsewhere","Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{{"StringEquals":{{"kms:CallerAccount":"{third}"}}}}}}"#
            ),
            "[HIGH] untrusted-account: statement `PinnedElsewhere`",
        ),
        (
            r#"{"Sid":"ServiceAdmin","Effect":"Allow","Principal":{"Service":"logs.amazonaws.com"},"Action":"kms:PutKeyPolicy","Resource":"*","Condition":{"StringEquals":{"aws:SourceAccount":"111111111111"}}}"#.to_owned(),
            "[HIGH] service-control: statement `ServiceAdmin`",
        ),
        (
            format!(
                r#"{{"Sid":"ServiceElsewhere","Effect":"Allow","Principal":{{"Service":"logs.amazonaws.com"}},"Action":"kms:Decrypt","Resource":"*","Condition":{{"StringEquals":{{"aws:SourceAccount":"{third}"}}}}}}"#
            ),
            "[HIGH] untrusted-account: statement `ServiceElsewhere`",
        ),
    ] {
        let policy = format!(r#"{{"Version":"2012-10-17","Statement":[{admin},{statement}]}}"#);
        let key = key_with_policy(&source, &policy).await;
        let run = wd.run(Agent::Src, &source, &["audit", "--kms-key-id", &key]).await;
        assert_eq!(run.code, 1, "{finding}: {}{}", run.stdout, run.stderr);
        assert!(run.stdout.contains(finding), "{finding}: {}", run.stdout);
    }
}

/// A run that fails after adding the target's statements to a key the operator named takes
/// them back: the key's policy is as it was, and the run's own error is what it says.
#[tokio::test]
async fn a_failed_export_takes_back_what_it_added_to_a_named_key() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-undo");
    mysql_instance(&source, "rev-undo", false).await;
    let key = key_with_policy(&source, DEFAULT_POLICY).await;
    let before = key_policy(&source, &key).await;
    let plan = FaultPlan::deny("CopyDBSnapshot");
    let proxy = Proxy::start(&Emulator::get().url, plan).await;
    let args = [
        "export",
        "--db-instance",
        "rev-undo",
        "--target-account",
        TARGET,
        "--kms-key-id",
        key.as_str(),
    ];
    let run = wd.via(&proxy, Agent::Src, &source, &args).await;
    assert_ne!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("target statements this run added taken back"),
        "{}",
        run.stderr
    );
    assert_eq!(key_policy(&source, &key).await, before);
    // The same command, once the copy is allowed, adds them again and finishes.
    export(
        &wd,
        &source,
        "--db-instance",
        "rev-undo",
        &["--kms-key-id", &key],
    )
    .await
    .ok();
    assert_eq!(key_policy(&source, &key).await.statements().len(), 3);
}

/// The dry run is the run minus the changes: what the run refuses before its first change,
/// the dry run refuses with the same exit code; a finished export answers its dry run with
/// the plan of what exists, and refuses a key flag that names another key than it used.
#[tokio::test]
async fn a_dry_run_refuses_what_the_run_refuses_and_a_finished_export_shows_its_plan() {
    let (source, _) = accounts().await;
    let wd = Workdir::new("rev-same");
    mysql_instance(&source, "rev-same", false).await;
    let db = "rev-same";
    for extra in [&["--dry-run"][..], &[]] {
        let args = [&["--kms-key-id", "alias/nope"][..], extra].concat();
        export(&wd, &source, "--db-instance", db, &args)
            .await
            .refused(3, "`alias/nope` not found");
    }
    export(&wd, &source, "--db-instance", db, &[]).await.ok();
    let finished = export(&wd, &source, "--db-instance", db, &["--dry-run"])
        .await
        .ok();
    assert!(
        finished.stdout.contains("already exported"),
        "{}",
        finished.stdout
    );
    for line in [
        "reuse          key: arn:aws:kms:",
        "reuse          shared copy: rh-rev-same-to-",
    ] {
        assert!(
            finished.stderr.contains(line),
            "{line} in {}",
            finished.stderr
        );
    }
    // Another key, whose policy the audit passes: not the one the handoff used.
    let other = key_with_policy(&source, DEFAULT_POLICY).await;
    for extra in [&["--dry-run"][..], &[]] {
        let args = [&["--kms-key-id", other.as_str()][..], extra].concat();
        export(&wd, &source, "--db-instance", db, &args)
            .await
            .refused(3, "was already exported to");
    }
    // Naming the key the handoff used is no difference.
    let same = ["--kms-key-id", "alias/rds-handoff/rev-same", "--dry-run"];
    let run = export(&wd, &source, "--db-instance", db, &same).await.ok();
    assert!(run.stdout.contains("already exported"), "{}", run.stdout);
    // Unfinished (the manifest gone, the shared copy there): the copy is under the first
    // key, so the run would refuse the other one, and so does its dry run.
    std::fs::remove_file(wd.file("rev-same.handoff.json")).unwrap();
    let args = ["--kms-key-id", other.as_str(), "--dry-run"];
    export(&wd, &source, "--db-instance", db, &args)
        .await
        .refused(3, "is not this run's: it is encrypted with");
    assert_eq!(
        key_policy(&source, &other).await.statements().len(),
        1,
        "unchanged"
    );
}
