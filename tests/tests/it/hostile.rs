//! Hostile input: bad manifests, identifiers and flag combinations. Each exits non-zero with
//! one message naming the problem, never panics, and makes no AWS call when the problem is
//! local (the agents' endpoint is a proxy that counts requests).

use e2e::agents::sha_of;
use e2e::fixtures::{footprint, mysql_instance};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir, TARGET, THIRD};

use crate::common::{accounts, export};

async fn refused_locally(
    wd: &Workdir,
    proxy: &Proxy,
    agent: Agent,
    account: &Account,
    args: &[&str],
    expect: &str,
) -> Run {
    refused_before_aws(wd, proxy, agent, account, args, 2, expect).await
}

/// Refused with `code` and one message containing `expect`, before any AWS call.
async fn refused_before_aws(
    wd: &Workdir,
    proxy: &Proxy,
    agent: Agent,
    account: &Account,
    args: &[&str],
    code: i32,
    expect: &str,
) -> Run {
    let before = proxy.requests();
    let run = wd
        .run_with(agent, account, args, &[("AWS_ENDPOINT_URL", &proxy.url)])
        .await;
    assert_eq!(
        run.code, code,
        "{args:?}: exit code; stderr:\n{}",
        run.stderr
    );
    assert!(!run.stderr.contains("panicked"), "{args:?}: {}", run.stderr);
    assert!(
        run.stderr.contains(expect),
        "{args:?}: expected {expect:?} in:\n{}",
        run.stderr
    );
    assert_eq!(
        run.stderr
            .lines()
            .filter(|l| l.starts_with("error"))
            .count(),
        1,
        "{args:?}: one message:\n{}",
        run.stderr
    );
    assert_eq!(proxy.requests(), before, "{args:?} made an AWS call");
    run
}

/// A manifest `src-agent export` really wrote, to corrupt.
async fn good_manifest(source: &Account, db: &str) -> String {
    let wd = Workdir::new(&format!("{db}-good"));
    mysql_instance(source, db, false).await;
    export(&wd, source, "--db-instance", db, &[]).await.ok();
    std::fs::read_to_string(wd.file(&format!("{db}.handoff.json"))).unwrap()
}

fn corrupt_manifests(good: &str) -> Vec<(String, Vec<u8>, &'static str)> {
    let edit = |from: &str, to: &str| {
        assert!(good.contains(from), "{from}");
        good.replacen(from, to, 1).into_bytes()
    };
    let n = good.len();
    let huge = good
        .replacen(
            "\"engine\":",
            &format!("\"pad\": \"{}\", \"engine\":", "x".repeat(2 << 20)),
            1,
        )
        .into_bytes();
    let mut cases: Vec<(String, Vec<u8>, &'static str)> = vec![];
    for cut in [1, n / 10, n / 2, n * 9 / 10, n - 2] {
        cases.push((
            format!("truncated at {cut}"),
            good.as_bytes()[..cut].to_vec(),
            "not valid JSON",
        ));
    }
    for (name, text, expect) in [
        ("empty", "", "not valid JSON"),
        ("plain text", "hello", "not valid JSON"),
        ("array", "[]", "no numeric `schema`"),
        ("null", "null", "no numeric `schema`"),
        ("empty object", "{}", "no numeric `schema`"),
    ] {
        cases.push((name.into(), text.as_bytes().to_vec(), expect));
    }
    let typed: [(&str, &str, &str, &'static str); 19] = [
        (
            "schema as string",
            "\"schema\": 3",
            "\"schema\": \"1\"",
            "no numeric `schema`",
        ),
        (
            "schema 0",
            "\"schema\": 3",
            "\"schema\": 0",
            "schema version 0",
        ),
        (
            "schema 5",
            "\"schema\": 3",
            "\"schema\": 5",
            "schema version 5",
        ),
        (
            "schema 999",
            "\"schema\": 3",
            "\"schema\": 999",
            "schema version 999",
        ),
        (
            "port as string",
            "\"port\": 3306",
            "\"port\": \"3306\"",
            "invalid type",
        ),
        (
            "multi_az as string",
            "\"multi_az\": false",
            "\"multi_az\": \"no\"",
            "invalid type",
        ),
        (
            "tags as list",
            "\"tags\": {",
            "\"tags\": [], \"x\": {",
            "invalid type",
        ),
        (
            "encrypted as string",
            "\"encrypted\": true",
            "\"encrypted\": \"true\"",
            "invalid type",
        ),
        (
            "unknown top-level field",
            "\"schema\": 3,",
            "\"schema\": 3, \"extra\": 1,",
            "unknown field `extra`",
        ),
        (
            "unknown nested field",
            "\"engine\":",
            "\"engin\": \"x\", \"engine\":",
            "unknown field `engin`",
        ),
        (
            "short account id",
            "\"account\": \"222222222222\"",
            "\"account\": \"2222\"",
            "`2222`",
        ),
        (
            "letters in account id",
            "\"account\": \"111111111111\"",
            "\"account\": \"11111111111a\"",
            "`11111111111a`",
        ),
        (
            "13-digit account id",
            "\"account\": \"222222222222\"",
            "\"account\": \"2222222222222\"",
            "exactly 12 digits",
        ),
        (
            "ARN without parts",
            "\"arn\": \"arn:aws:rds:",
            "\"arn\": \"not-an-arn\", \"x\": \"",
            "invalid ARN `not-an-arn`",
        ),
        (
            "ARN with bad partition",
            "\"arn\": \"arn:aws:rds:",
            "\"arn\": \"arn:aws-xx:rds:",
            "the partition must be",
        ),
        (
            "key ARN with bad region",
            "arn:aws:kms:us-east-1:",
            "arn:aws:kms:moon:",
            "the region is not a region name",
        ),
        (
            "bad database identifier",
            "\"identifier\": \"hostile-db\"",
            "\"identifier\": \"1-hostile\"",
            "must start with a letter",
        ),
        (
            "target region the source's",
            "\"target\": {",
            "\"target\": { \"region\": \"us-east-1\",",
            "names the source's region",
        ),
        (
            "target region not the snapshot's",
            "\"target\": {",
            "\"target\": { \"region\": \"eu-west-1\",",
            "the manifest says the shared snapshot is in `eu-west-1`",
        ),
    ];
    for (name, from, to, expect) in typed {
        cases.push((name.into(), edit(from, to), expect));
    }
    cases.push(("huge".into(), huge, "larger than any manifest"));
    cases.push((
        "non-UTF-8 start".into(),
        [b"\xff\xfe".as_slice(), good.as_bytes()].concat(),
        "not UTF-8",
    ));
    let mut inner = good.as_bytes().to_vec();
    inner[n / 2] = 0xc3;
    inner[n / 2 + 1] = 0x28;
    cases.push(("non-UTF-8 inside".into(), inner, "not UTF-8"));
    cases
}

#[tokio::test]
async fn hostile_manifests_flags_and_identifiers_are_refused_without_aws_calls() {
    let (source, target) = accounts().await;
    let good = good_manifest(&source, "hostile-db").await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let wd = Workdir::new("hostile");
    // Each with the SHA-256 of the file as it is: what the parser refuses, not the fingerprint.
    let import = |manifest: &str| -> Vec<String> {
        let sha = sha_of(wd.path(), manifest);
        [
            "import",
            manifest,
            "--source-account",
            "111111111111",
            "--manifest-sha256",
            sha.as_str(),
            "--db-subnet-group-name",
            "g",
            "--vpc-security-group-ids",
            "sg-12345678",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    let mut cases = corrupt_manifests(&good);
    let tag = "\"team\": \"payments\"";
    assert!(good.contains(tag));
    let many: Vec<String> = (0..51).map(|n| format!("\"t{n}\": \"v\"")).collect();
    for (name, to, expect) in [
        (
            "aws: tag",
            "\"aws:createdBy\": \"x\"".to_owned(),
            "`aws:createdBy` is reserved",
        ),
        (
            "toolkit tag",
            "\"rds-handoff:source-snapshot\": \"x\"".to_owned(),
            "`rds-handoff:source-snapshot` is reserved",
        ),
        ("51 tags", many.join(", "), "52 tags, more than AWS allows"),
    ] {
        cases.push((name.into(), good.replacen(tag, &to, 1).into_bytes(), expect));
    }
    cases.push((
        "port out of range".into(),
        good.replacen("\"port\": 3306", "\"port\": 80", 1)
            .into_bytes(),
        "outside 1150-65535",
    ));
    for (i, (name, bytes, expect)) in cases.iter().enumerate() {
        let file = format!("bad-{i}.json");
        std::fs::write(wd.file(&file), bytes).unwrap();
        let args = import(&file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = refused_locally(&wd, &proxy, Agent::Tgt, &target, &args, expect).await;
        assert!(
            run.stderr.contains(&format!("manifest `{file}`")),
            "{name}: names the file:\n{}",
            run.stderr
        );
    }
    // A manifest that is not there: the message names the file and says it does not exist.
    let missing = import("no-such.json");
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    let expect = "error: no-such.json: No such file or directory";
    refused_locally(&wd, &proxy, Agent::Tgt, &target, &missing, expect).await;

    let long = format!("a{}", "b".repeat(63));
    let src_cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["export", "--db-instance", "", "--target-account", TARGET],
            "1 to 63",
        ),
        (
            vec!["export", "--db-instance", "-x", "--target-account", TARGET],
            "--db-instance",
        ),
        (
            vec!["export", "--db-instance", "x-", "--target-account", TARGET],
            "end with a hyphen",
        ),
        (
            vec!["export", "--db-instance", "x_y", "--target-account", TARGET],
            "`_` at position 1",
        ),
        (
            vec!["export", "--db-cluster", &long, "--target-account", TARGET],
            "1 to 63",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                "12345678901a",
            ],
            "exactly 12 digits",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--target-principal",
                "arn:aws:iam::333333333333:role/x",
            ],
            "not in the target account",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--target-principal",
                "nonsense",
            ],
            "invalid ARN `nonsense`",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--key-alias",
                "alias/aws/rds",
            ],
            "invalid key alias",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--key-alias",
                "mine",
            ],
            "invalid key alias",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--kms-key-id",
                "k",
                "--key-alias",
                "alias/x",
            ],
            "cannot be used with",
        ),
        (
            vec![
                "export",
                "--db-cluster",
                "db",
                "--target-account",
                TARGET,
                "--encrypt-at-source",
                "--allow-unencrypted-share",
            ],
            "cannot be used with",
        ),
        (vec!["export", "--target-account", TARGET], "--db-instance"),
        (
            vec![
                "export",
                "--all",
                "--db-cluster",
                "b",
                "--target-account",
                TARGET,
            ],
            "cannot be used with",
        ),
        (
            vec!["export", "--tag", "team", "--target-account", TARGET],
            "is not KEY=VALUE",
        ),
        (
            vec![
                "export",
                "--all",
                "--target-account",
                TARGET,
                "--manifest",
                "m.json",
            ],
            "name one database's file",
        ),
        (
            vec![
                "export",
                "--tag",
                "team=payments",
                "--target-account",
                TARGET,
                "--key-alias",
                "alias/shared",
            ],
            "snapshot and key",
        ),
        (
            vec![
                "export",
                "--all",
                "--target-account",
                TARGET,
                "--max-parallel",
                "0",
            ],
            "--max-parallel",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--wait-timeout",
                "soon",
            ],
            "`soon` is not a duration",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--org-id",
                "acme",
            ],
            "not an organization id",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--region",
                "mars",
            ],
            "`mars`",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--from-snapshot",
                "1bad",
            ],
            "must start with a letter",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--key-admin",
                "admin",
            ],
            "invalid ARN `admin`",
        ),
        (
            vec![
                "export",
                "--db-instance",
                "db",
                "--target-account",
                TARGET,
                "--output",
                "xml",
            ],
            "'xml'",
        ),
        (vec!["exfiltrate"], "unrecognized subcommand"),
        (
            vec!["policy", "--target-account", THIRD, "--source-account", "1"],
            "`1`",
        ),
    ];
    for (args, expect) in &src_cases {
        refused_locally(&wd, &proxy, Agent::Src, &source, args, expect).await;
    }
    std::fs::write(wd.file("ok.json"), &good).unwrap();
    let sha = rds_handoff::base::manifest::fingerprint(good.as_bytes());
    let tgt_cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--manifest-sha256",
                &sha,
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "default",
            ],
            "`default` is not a security group id",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "--db-subnet-group-name",
        ),
        (
            vec!["import", "ok.json", "--db-subnet-group-name", "g"],
            "--vpc-security-group-ids",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--manifest-sha256",
                &sha,
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
                "--db-identifier",
                "1bad",
            ],
            "must start with a letter",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--manifest-sha256",
                &sha,
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
                "--password-mode",
                "rotat",
            ],
            "`--password-mode` takes `rotate` or `rds-managed`",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
                "--wait-timeout",
                "-1",
            ],
            "unexpected argument",
        ),
        (
            vec![
                "check",
                "ok.json",
                "--source-account",
                "111111111111",
                "--manifest-sha256",
                &sha,
                "--db-subnet-group-name",
                "",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "1 to 255",
        ),
    ];
    for (args, expect) in &tgt_cases {
        refused_locally(&wd, &proxy, Agent::Tgt, &target, args, expect).await;
    }
    // Refused as checks (exit 3), still before any AWS call: whom the target trusts and the
    // manifest's fingerprint are known without AWS.
    let other_sha = "0".repeat(64);
    let pinned: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["import", "ok.json", "--source-account", THIRD, "--manifest-sha256", &sha, "--db-subnet-group-name", "g", "--vpc-security-group-ids", "sg-12345678"],
            "the manifest's source account is `111111111111`, but you expect the database from `333333333333`",
        ),
        (
            vec!["check", "ok.json", "--source-account", THIRD, "--manifest-sha256", &sha, "--db-subnet-group-name", "g", "--vpc-security-group-ids", "sg-12345678"],
            "but you expect the database from `333333333333`",
        ),
        (
            vec!["import", "ok.json", "--source-account", "111111111111", "--manifest-sha256", &other_sha, "--db-subnet-group-name", "g", "--vpc-security-group-ids", "sg-12345678"],
            "it is not the manifest the source admin exported",
        ),
    ];
    for (args, expect) in &pinned {
        refused_before_aws(&wd, &proxy, Agent::Tgt, &target, args, 3, expect).await;
    }
    let usage: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "import",
                "ok.json",
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "no source account to trust",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "`--manifest-sha256` is required",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "1111",
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "`1111`",
        ),
        (
            vec![
                "import",
                "ok.json",
                "--source-account",
                "111111111111",
                "--manifest-sha256",
                &sha[..63],
                "--db-subnet-group-name",
                "g",
                "--vpc-security-group-ids",
                "sg-12345678",
            ],
            "64 hexadecimal characters",
        ),
    ];
    for (args, expect) in &usage {
        refused_locally(&wd, &proxy, Agent::Tgt, &target, args, expect).await;
    }
    println!(
        "hostile: {} bad manifests, {} bad src-agent and {} bad tgt-agent command lines: all exit 2; {} manifests from an untrusted source or with another fingerprint: exit 3; no AWS call, no panic",
        cases.len() + 1,
        src_cases.len(),
        tgt_cases.len() + usage.len(),
        pinned.len()
    );
}

#[tokio::test]
async fn a_password_mode_that_could_be_a_password_is_refused_without_repeating_it() {
    let (_, target) = accounts().await;
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let wd = Workdir::new("hostile-pw");
    let secret = "Tr0ub4dor&3-horse";
    let sha = "0".repeat(64);
    let base = [
        "import",
        "m.json",
        "--source-account",
        "111111111111",
        "--manifest-sha256",
        sha.as_str(),
        "--db-subnet-group-name",
        "g",
        "--vpc-security-group-ids",
        "sg-12345678",
    ];
    let (flag, alias) = (
        format!("--password-mode={secret}"),
        format!("--password={secret}"),
    );
    let hyphen = format!("-{secret}");
    let spellings: Vec<Vec<&str>> = vec![
        vec!["--password-mode", secret],
        vec!["--password", secret],
        vec![flag.as_str()],
        vec![alias.as_str()],
        vec!["--password", hyphen.as_str()],
    ];
    let outputs: [&[&str]; 2] = [&[], &["--output", "json"]];
    for spelling in &spellings {
        for output in outputs {
            let args = [&base[..], &spelling[..], output].concat();
            let run = wd.via(&proxy, Agent::Tgt, &target, &args).await;
            assert_eq!(run.code, 2, "{args:?}: {}{}", run.stdout, run.stderr);
            for shown in [&run.stdout, &run.stderr] {
                assert!(
                    !shown.contains("Tr0ub4dor"),
                    "{spelling:?} {output:?}: the value came back:\n{shown}"
                );
            }
            let said = if output.is_empty() {
                &run.stderr
            } else {
                &run.stdout
            };
            assert!(
                said.contains("`--password-mode` takes `rotate` or `rds-managed`"),
                "{args:?}:\n{said}"
            );
            assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
        }
    }
    // The old name still takes a mode: the run gets past the flags to the missing manifest.
    let args = [&base[..], &["--password", "rds-managed"][..]].concat();
    let run = wd.via(&proxy, Agent::Tgt, &target, &args).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("m.json: No such file or directory"),
        "{}",
        run.stderr
    );
    assert_eq!(proxy.requests(), 0, "refused before any AWS call");
}

#[tokio::test]
async fn manifests_pointing_elsewhere_are_refused_by_aws_checks_and_create_nothing() {
    let (source, target) = accounts().await;
    let good = good_manifest(&source, "hostile-aws").await;
    let wd = Workdir::new("hostile-aws");
    let net = e2e::fixtures::network(&target);
    let before = footprint(&target, "hostile-aws").await;
    let cases = [
        (
            "\"account\": \"222222222222\"",
            "\"account\": \"333333333333\"",
            "hands the database to account `333333333333`",
        ),
        (
            "snapshot:rh-hostile-aws",
            "cluster-snapshot:rh-hostile-aws",
            "is not a DB instance snapshot",
        ),
    ];
    let to_ireland = |text: &str| {
        text.replacen(
            ":us-east-1:111111111111:snapshot",
            ":eu-west-1:111111111111:snapshot",
            1,
        )
    };
    // The source's region and the snapshot's both edited: a manifest that holds together,
    // pointing at a region this run is not in.
    let elsewhere =
        to_ireland(&good).replacen("\"region\": \"us-east-1\"", "\"region\": \"eu-west-1\"", 1);
    // A handoff into another region, claimed for a snapshot that is here.
    let across = good.replacen(
        "\"target\": {",
        "\"target\": { \"region\": \"eu-west-1\",",
        1,
    );
    let mut manifests: Vec<(String, &str)> = cases
        .iter()
        .map(|(from, to, expect)| (good.replacen(from, to, 1), *expect))
        .collect();
    manifests.push((elsewhere, "the snapshot is in region `eu-west-1`"));
    manifests.push((to_ireland(&across), "the snapshot is in region `eu-west-1`"));
    for (manifest, expect) in manifests {
        std::fs::write(wd.file("m.json"), manifest).unwrap();
        let sha = sha_of(wd.path(), "m.json");
        let run = wd
            .run(
                Agent::Tgt,
                &target,
                &[
                    "import",
                    "m.json",
                    "--source-account",
                    e2e::SOURCE,
                    "--manifest-sha256",
                    &sha,
                    "--region",
                    "us-east-1",
                    "--db-subnet-group-name",
                    &net.subnet_group,
                    "--vpc-security-group-ids",
                    &net.security_group,
                ],
            )
            .await;
        run.refused(3, expect);
    }
    assert_eq!(footprint(&target, "hostile-aws").await, before);
}
