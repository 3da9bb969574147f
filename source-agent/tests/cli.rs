//! `src-agent` as a reviewer and a newcomer see it: help, and the key policy printed with
//! no credentials and no network.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use std::process::Command;

fn src_agent(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_src-agent"))
        .args(args)
        .env_clear()
        // Nothing to find: no credentials, no config files, an endpoint nobody answers on.
        .env("AWS_CONFIG_FILE", "/nonexistent/rds-handoff")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/rds-handoff")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
        .output()
        .unwrap()
}

#[test]
fn help_explains_the_steps_in_order() {
    let out = src_agent(&["--help"]);
    let help = String::from_utf8(out.stdout).unwrap();
    let steps = [
        "checks the caller",
        "KMS key",
        "snapshots the database",
        "shares the copy",
        "writes a manifest",
    ];
    let positions: Vec<usize> = steps
        .iter()
        .map(|s| help.find(s).unwrap_or_else(|| panic!("{s} in {help}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "steps in order: {help}"
    );
    for verb in ["export", "policy", "audit"] {
        assert!(help.contains(verb), "{verb}");
    }
}

#[test]
fn policy_equals_the_reviewed_document_without_credentials_or_network() {
    let out = src_agent(&[
        "policy",
        "--source-account",
        "111111111111",
        "--target-account",
        "222222222222",
        "--region",
        "us-east-1",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let reviewed: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/key-policy.json")).unwrap();
    assert_eq!(
        printed, reviewed,
        "the generated key policy changed: review the change, then update policies/key-policy.json and policies/README.md"
    );
}

#[test]
fn explain_names_who_what_when_why() {
    let out = src_agent(&[
        "policy",
        "--source-account",
        "111111111111",
        "--target-account",
        "222222222222",
        "--region",
        "us-east-1",
        "--format",
        "explain",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("TargetAccountUsesKeyThroughRdsToCopySharedSnapshot"));
    assert!(text.contains("only through rds.us-east-1.amazonaws.com (kms:ViaService)"));
    assert!(text.contains("only when the caller is in account 222222222222"));
    // One entry per statement of the reviewed policy, in its order, each with who, what,
    // when and a reason of its own.
    let reviewed: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/key-policy.json")).unwrap();
    let sids: Vec<&str> = reviewed["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    let headings: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with(|c: char| c.is_ascii_digit()))
        .collect();
    let expected: Vec<String> = sids
        .iter()
        .enumerate()
        .map(|(n, sid)| format!("{}. {sid}", n + 1))
        .collect();
    assert_eq!(headings, expected, "{text}");
    let count = |field: &str| text.lines().filter(|l| l.starts_with(field)).count();
    for field in ["   who:   ", "   what:  ", "   why:   "] {
        assert_eq!(count(field), sids.len(), "{field:?}: {text}");
    }
    assert!(count("   when:  ") >= sids.len(), "{text}");
    assert!(!text.contains("not written by rds-handoff"), "{text}");
    assert!(text.contains("Checked by evaluating the policy above"));
    assert!(!text.contains("FAILS"), "{text}");
    assert!(!text.contains("NOT VERIFIED"), "{text}");
}

#[test]
fn strict_key_policy_is_opt_in_and_marked_unverified() {
    let args = [
        "policy",
        "--source-account",
        "111111111111",
        "--target-account",
        "222222222222",
        "--region",
        "us-east-1",
        "--key-policy",
        "strict",
    ];
    let out = src_agent(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("valid JSON");
    let reviewed: serde_json::Value =
        serde_json::from_str(include_str!("../../policies/key-policy.strict.json")).unwrap();
    assert_eq!(printed, reviewed, "review policies/key-policy.strict.json");
    let out = src_agent(&[&args[..], &["--format", "explain"]].concat());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("NOT VERIFIED ON AWS"), "{text}");
    for command in ["policy", "export"] {
        let help = String::from_utf8(src_agent(&[command, "--help"]).stdout).unwrap();
        assert!(help.contains("NOT VERIFIED ON AWS"), "{command}: {help}");
    }
}

#[test]
fn bad_flags_are_usage_errors_naming_the_value() {
    let out = src_agent(&[
        "policy",
        "--source-account",
        "1111",
        "--target-account",
        "222222222222",
        "--region",
        "us-east-1",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("`1111`"));
    let out = src_agent(&[
        "export",
        "--db-instance",
        "a",
        "--db-cluster",
        "b",
        "--target-account",
        "222222222222",
    ]);
    assert_eq!(out.status.code(), Some(2));
    // Step Functions without the role it runs as: refused before any AWS call.
    let out = src_agent(&[
        "export",
        "--db-instance",
        "a",
        "--target-account",
        "222222222222",
        "--engine",
        "step-functions",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--execution-role"));
}

#[test]
fn missing_credentials_are_one_clear_sentence() {
    let out = src_agent(&[
        "export",
        "--db-instance",
        "db1",
        "--target-account",
        "222222222222",
        "--region",
        "us-east-1",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.starts_with("error: no usable AWS credentials"),
        "{stderr}"
    );
    assert!(
        stderr.contains("hint: set `AWS_PROFILE` or pass `--profile`"),
        "{stderr}"
    );
    let out = src_agent(&[
        "export",
        "--db-instance",
        "db1",
        "--target-account",
        "222222222222",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: no AWS region is set"),
        "{stderr}"
    );
}
