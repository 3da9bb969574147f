//! Steps several test modules share.

use e2e::agents::sha_of;
use e2e::fixtures::{network, Network};
use e2e::{Account, Agent, Run, Workdir, SOURCE, TARGET};
use rds_handoff::base::manifest::Manifest;

pub async fn accounts() -> (Account, Account) {
    (Account::assume(SOURCE).await, Account::assume(TARGET).await)
}

/// `src-agent export` of an instance or cluster to the target, extra flags appended.
pub async fn export(
    wd: &Workdir,
    source: &Account,
    kind_flag: &str,
    db: &str,
    extra: &[&str],
) -> Run {
    let mut args = vec!["export", kind_flag, db, "--target-account", TARGET];
    args.extend_from_slice(extra);
    wd.run(Agent::Src, source, &args).await
}

pub fn manifest(wd: &Workdir, db: &str) -> Manifest {
    Manifest::read(&wd.file(&format!("{db}.handoff.json")))
        .expect("the export wrote a valid manifest")
}

/// `tgt-agent import` of `<db>.handoff.json` into the target's test network, with the
/// manifest's SHA-256 as the export printed it (unless `extra` names one, or waives it).
pub async fn import(wd: &Workdir, target: &Account, db: &str, extra: &[&str]) -> (Run, Network) {
    let net = network(target);
    let manifest = format!("{db}.handoff.json");
    let sha = sha_of(wd.path(), &manifest);
    let mut args = vec![
        "import",
        &manifest,
        "--source-account",
        SOURCE,
        "--db-subnet-group-name",
        &net.subnet_group,
        "--vpc-security-group-ids",
        &net.security_group,
    ];
    let fingerprint = ["--manifest-sha256", "--skip-manifest-sha256"];
    if !extra.iter().any(|a| fingerprint.contains(a)) {
        args.extend(["--manifest-sha256", sha.as_str()]);
    }
    args.extend_from_slice(extra);
    let run = wd.run(Agent::Tgt, target, &args).await;
    (run, net)
}
