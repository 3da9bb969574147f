//! The harness itself: one emulator, two accounts that are really different.

use e2e::{Account, Agent, Workdir, SOURCE, TARGET};

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

    // What one account creates, the other does not see.
    let key = source.kms().create_key().send().await.unwrap();
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let seen = target.kms().describe_key().key_id(&key_id).send().await;
    assert!(seen.is_err(), "the target must not see the source's key");
}

#[tokio::test]
async fn agents_run_isolated_from_the_host_aws_setup() {
    let source = Account::assume(SOURCE).await;
    let wd = Workdir::new("isolation");
    // A bogus profile on the host must not matter: the agents see only the harness's variables.
    let run = wd
        .run_with(Agent::Src, &source, &["audit", "--key", "alias/none"], &[])
        .await;
    assert!(
        run.stderr.contains("`alias/none` not found"),
        "{}",
        run.stderr
    );
    let no_region = wd
        .run_with(
            Agent::Src,
            &source,
            &["policy", "--target-account", TARGET],
            &[("AWS_REGION", "")],
        )
        .await;
    assert_eq!(no_region.code, 2, "{}", no_region.stderr);
    assert!(no_region.stderr.contains("region"), "{}", no_region.stderr);
}
