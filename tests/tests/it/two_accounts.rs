//! The harness itself: one emulator, two accounts that are really different.

use e2e::{Account, Agent, Run, Workdir, SOURCE, TARGET};

#[tokio::test]
async fn source_111111111111_and_target_222222222222_are_distinct_accounts() {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    let s = source.sts().get_caller_identity().send().await.unwrap();
    let t = target.sts().get_caller_identity().send().await.unwrap();
    assert_eq!(s.account(), Some(SOURCE));
    assert_eq!(t.account(), Some(TARGET));
    assert_eq!(
        s.arn(),
        Some("arn:aws:sts::111111111111:assumed-role/rds-handoff-admin/e2e")
    );

    // What one account creates, the other does not see: the same request finds the key in
    // its own account and answers `NotFoundException` in the other.
    let key = source.kms().create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    source
        .kms()
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .unwrap();
    let refused = target
        .kms()
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect_err("the target must not see the source's key");
    assert_eq!(
        refused
            .as_service_error()
            .and_then(|e| aws_sdk_kms::error::ProvideErrorMetadata::code(e)),
        Some("NotFoundException"),
        "{refused:?}"
    );
}

#[tokio::test]
async fn agents_run_isolated_from_the_host_aws_setup() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("isolation");
    // A bogus default profile where the SDK looks for one unless told otherwise: the
    // `~/.aws/config` and `~/.aws/credentials` of the HOME the agents run with. The harness
    // points them at other files, so it must not matter.
    let dot_aws = wd.path().join(".aws");
    std::fs::create_dir_all(&dot_aws).unwrap();
    let config = dot_aws.join("config");
    std::fs::write(
        &config,
        "[default]\nregion = eu-west-3\noutput = json\nendpoint_url = http://127.0.0.1:9\n",
    )
    .unwrap();
    std::fs::write(
        dot_aws.join("credentials"),
        "[default]\naws_access_key_id = bogus-host-profile\naws_secret_access_key = bogus\n",
    )
    .unwrap();
    let audit = ["audit", "--kms-key-id", "alias/none"];

    // Were the profile read, its `output = json` would print the error as a JSON line on
    // stdout; the agent refuses in text, on stderr, after asking the emulator.
    let run = wd.run(Agent::Src, &source, &audit).await;
    let run = run.refused(3, "error: KMS key `alias/none` not found");
    assert!(run.stdout.is_empty(), "{}", run.stdout);
    assert_eq!(run.error_lines().len(), 1, "{}", run.stderr);

    // The control: the same run pointed at that profile does follow it.
    let config = config.display().to_string();
    let seen = wd
        .run_with(
            Agent::Src,
            &source,
            &audit,
            &[("AWS_CONFIG_FILE", config.as_str())],
        )
        .await;
    assert_eq!(seen.code, 3, "{}\n{}", seen.stdout, seen.stderr);
    let last = seen.stdout.lines().next_back().unwrap_or_default();
    let line: serde_json::Value = serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", seen.stdout, seen.stderr));
    assert_eq!(line["event"], "error", "{line}");
    assert_eq!(line["error"], "KMS key `alias/none` not found", "{line}");

    // With no region in the environment, none comes from the profile's `region` either.
    let policy = ["policy", "--target-account", TARGET];
    let out = wd
        .command(Agent::Src, &source, &policy)
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    let no_region = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    no_region.refused(2, "error: no AWS region is set");
}
