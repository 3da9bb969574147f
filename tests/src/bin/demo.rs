//! `cargo run -p e2e --bin demo`: the whole handoff on a local emulator, no AWS account.
//!
//! Starts moto server, creates an unencrypted MySQL instance in the source account
//! (111111111111), runs `src-agent export` there and `tgt-agent import` in the target account
//! (222222222222) exactly as the two admins would, and shows what arrived.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a demo: setup failures stop it with their reason"
)]

use std::process::Command;

use e2e::agents::build_agents;
use e2e::fixtures::{mysql_instance, network};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE, TARGET};

const DB: &str = "orders-db";

fn banner(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

/// Runs an agent like an admin at a terminal: its progress and results go straight through.
fn admin(wd: &Workdir, agent: Agent, account: &Account, args: &[&str]) {
    println!("$ {} {}", agent.name(), args.join(" "));
    let status = Command::new(agent.path())
        .args(args)
        .current_dir(wd.path())
        .env_clear()
        .env("HOME", wd.path())
        .envs(account.env())
        .status()
        .expect("run the agent");
    assert!(status.success(), "{} failed: {status}", agent.name());
}

#[tokio::main]
async fn main() {
    build_agents(false);
    let emulator = Emulator::get();
    banner(&format!("local AWS emulator (moto) at {}", emulator.url));
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    let wd = Workdir::new("demo");

    banner(&format!(
        "source account {SOURCE}: an unencrypted MySQL instance `{DB}`"
    ));
    mysql_instance(&source, DB, false).await;
    let before = e2e::fixtures::instance_state(&source, DB).await;
    println!(
        "{DB}: status {}, encrypted: {}",
        before.status, before.encrypted
    );

    banner("source admin: review the key policy, then export");
    admin(
        &wd,
        Agent::Src,
        &source,
        &["policy", "--target-account", TARGET, "--format", "explain"],
    );
    admin(
        &wd,
        Agent::Src,
        &source,
        &["export", "--db-instance", DB, "--target-account", TARGET],
    );

    banner(&format!(
        "target account {TARGET}: import into our own network"
    ));
    let net = network(&target);
    let manifest = format!("{DB}.handoff.json");
    // The source admin sends the SHA-256 export printed on another channel than the file.
    let bytes = std::fs::read(wd.file(&manifest)).expect("the export wrote the manifest");
    let sha256 = rds_handoff::base::manifest::fingerprint(&bytes);
    let import = [
        "import",
        &manifest,
        "--source-account",
        SOURCE,
        "--manifest-sha256",
        &sha256,
        "--db-subnet-group",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    admin(&wd, Agent::Tgt, &target, &import);

    banner("result in the target account");
    let db = target
        .rds()
        .describe_db_instances()
        .db_instance_identifier(DB)
        .send()
        .await
        .unwrap();
    let db = &db.db_instances()[0];
    println!(
        "{}: status {}",
        db.db_instance_arn().unwrap_or_default(),
        db.db_instance_status().unwrap_or_default()
    );
    println!(
        "  encrypted: {} with {}",
        db.storage_encrypted().unwrap_or(false),
        db.kms_key_id().unwrap_or("-")
    );
    println!(
        "  subnet group: {}",
        db.db_subnet_group()
            .and_then(|g| g.db_subnet_group_name())
            .unwrap_or("-")
    );
    let secret = target
        .secrets()
        .describe_secret()
        .secret_id(format!("rds-handoff/{DB}/master"))
        .send()
        .await
        .unwrap();
    println!(
        "  master secret: {} (under {})",
        secret.arn().unwrap_or_default(),
        secret.kms_key_id().unwrap_or("-")
    );
    let after = e2e::fixtures::instance_state(&source, DB).await;
    println!("source {DB} unchanged: {}", after == before);
    println!(
        "\nfiles written in {}: {manifest}, {DB}.import.json",
        wd.path().display()
    );
}
