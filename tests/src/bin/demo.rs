//! `cargo run -p e2e --bin demo`: the whole handoff on a local emulator, no AWS account.
//!
//! Starts moto server, creates an unencrypted PostgreSQL instance in the source account
//! (111111111111), backed by a real PostgreSQL server with rows in it, runs `src-agent export
//! --verify-data` there and `tgt-agent import --verify-data` in the target account
//! (222222222222) exactly as the two admins would (reaching each database through a tunnel,
//! as with an SSM port forward), and shows what arrived. The first export meets an
//! application still writing: the check catches it and nothing is shared.

#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a demo: setup failures stop it with their reason"
)]

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use e2e::agents::build_agents;
use e2e::dataplane::{admin_sql_on, ca_bundle, seed, served, tunnel};
use e2e::fixtures::{data_instance, network};
use e2e::{Account, Agent, Emulator, Workdir, SOURCE, TARGET};

const DB: &str = "orders-db";

fn banner(text: &str) {
    println!("\n\x1b[1m== {text}\x1b[0m");
}

/// Runs an agent like an admin at a terminal: its progress and results go straight through.
fn admin(wd: &Workdir, agent: Agent, account: &Account, args: &[&str]) {
    let code = run(wd, agent, account, args);
    assert_eq!(code, 0, "{} failed", agent.name());
}

/// Runs an agent as [`admin`] does; its exit code.
fn run(wd: &Workdir, agent: Agent, account: &Account, args: &[&str]) -> i32 {
    println!("$ {} {}", agent.name(), args.join(" "));
    let status = Command::new(agent.path())
        .args(args)
        .current_dir(wd.path())
        .env_clear()
        .env("HOME", wd.path())
        .envs(account.env())
        .status()
        .expect("run the agent");
    status.code().unwrap_or(-1)
}

/// An application still writing to the source: a row every 50 ms into `app.orders`.
fn application_writing(account: &Account) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, server) = (stop.clone(), served(account, DB));
    let writer = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            admin_sql_on(
                &server,
                "shop",
                "INSERT INTO app.orders SELECT max(id) + 1, 1, 9.99, 'late', now(), NULL FROM app.orders;",
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    (stop, writer)
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
        "source account {SOURCE}: an unencrypted PostgreSQL instance `{DB}`, with rows"
    ));
    let login_secret = data_instance(&source, DB, "postgres", false).await;
    seed(&source, DB, 500);
    let before = e2e::fixtures::instance_state(&source, DB).await;
    println!(
        "{DB}: status {}, encrypted: {}; 500 rows in each of shop.app.orders and shop.public.customers",
        before.status, before.encrypted
    );
    // The admin's tunnels (an SSM port forward in real life) and AWS's RDS CA bundle.
    let source_tunnel = format!("127.0.0.1:{}", tunnel(&source, DB));
    let target_tunnel = format!("127.0.0.1:{}", tunnel(&target, DB));
    let bundle = ca_bundle().display().to_string();

    banner("source admin: review the key policy, then export with the data check");
    admin(
        &wd,
        Agent::Src,
        &source,
        &["policy", "--target-account", TARGET, "--format", "explain"],
    );
    let export = [
        "export",
        "--db-instance",
        DB,
        "--target-account",
        TARGET,
        "--verify-data",
        "--db-secret",
        &login_secret,
        "--db-endpoint",
        &source_tunnel,
        "--db-ca-bundle",
        &bundle,
    ];
    println!("(the application is still writing to {DB})");
    let (stop, writer) = application_writing(&source);
    let code = run(&wd, Agent::Src, &source, &export);
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the application's writer");
    assert_eq!(code, 7, "the writes during the snapshot are caught");
    println!("(exit code {code}: nothing was shared; the application is stopped, and the admin runs the same command again)");
    admin(&wd, Agent::Src, &source, &export);

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
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
        "--verify-data",
        "--db-endpoint",
        &target_tunnel,
        "--db-ca-bundle",
        &bundle,
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
