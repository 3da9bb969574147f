//! `tgt-agent` as a newcomer sees it, and the refusals that need no AWS call.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use std::process::Command;

fn tgt_agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tgt-agent"))
        .args(args)
        .env_clear()
        .env("AWS_CONFIG_FILE", "/nonexistent/rds-handoff")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/rds-handoff")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

#[test]
fn help_explains_the_steps_in_order() {
    let help = String::from_utf8(tgt_agent(&["--help"]).stdout).unwrap();
    let steps = [
        "verifies the manifest",
        "KMS key of our own",
        "copies the shared snapshot",
        "new master password",
        "import.json",
    ];
    let positions: Vec<usize> = steps
        .iter()
        .map(|s| help.find(s).unwrap_or_else(|| panic!("{s} in {help}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "steps in order: {help}"
    );
    assert!(help.contains("check"));
}

#[test]
fn local_problems_are_refused_before_any_aws_call() {
    let dir = std::env::temp_dir().join(format!("tgt-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("m.json");
    std::fs::write(&manifest, "{not json").unwrap();
    let path = manifest.to_str().unwrap();
    let out = tgt_agent(&[
        "import",
        path,
        "--source-account",
        "111111111111",
        "--manifest-sha256",
        "0000000000000000000000000000000000000000000000000000000000000000",
        "--db-subnet-group-name",
        "g",
        "--vpc-security-group-ids",
        "sg-12345678",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("not valid JSON"), "{stderr}");
    assert!(
        !stderr.contains("credentials"),
        "no AWS call was tried: {stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
