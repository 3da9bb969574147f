//! Fleets: many databases in one export and one import, within AWS's copy limits.
//!
//! Each test has a source account of its own, so `--all` sees only the test's databases.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use e2e::agents::import_args;
use e2e::fixtures::{aurora_cluster, footprint, mysql_instance, network};
use e2e::proxy::{FaultPlan, Proxy};
use e2e::{Account, Agent, Emulator, Run, Workdir};
use rds_handoff::base::manifest::fingerprint;
use rds_handoff::flows::fleet::index::Index;

use crate::reliability::kill_at;

/// The target account of every fleet test (its databases have distinct names).
pub(crate) const FLEET_TARGET: &str = "555555555555";
/// Where the fleet tests' exports write their index.
const INDEX: &str = "out/rds-handoff-index.json";

fn lines(run: &Run) -> Vec<serde_json::Value> {
    run.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The run's summary: its JSON `done` line.
pub(crate) fn summary(run: &Run) -> serde_json::Value {
    lines(run)
        .into_iter()
        .find(|l| l["event"] == "done")
        .unwrap_or_else(|| panic!("no summary:\n{}\n{}", run.stdout, run.stderr))
}

/// The run's summary: database → (result, stage, error).
pub(crate) fn results(run: &Run) -> BTreeMap<String, (String, String, String)> {
    summary(run)["databases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let text = |k: &str| d[k].as_str().unwrap_or_default().to_owned();
            (
                text("database"),
                (text("result"), text("stage"), text("error")),
            )
        })
        .collect()
}

/// A fleet export of `selection` to [`FLEET_TARGET`], manifests in `out/`, JSON output.
pub(crate) fn export_args<'a>(selection: &[&'a str], extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["export"];
    args.extend_from_slice(selection);
    args.extend_from_slice(&["--target-account", FLEET_TARGET, "--manifest-dir", "out"]);
    args.extend_from_slice(&["--output", "json"]);
    args.extend_from_slice(extra);
    args
}

/// `tgt-agent import` of `manifests` (or the index) into the target's network, JSON output.
fn import_json(target: &Account, manifests: &[&str], source: &str, shas: &[&str]) -> Vec<String> {
    let mut args = import_args(manifests, source, shas, &network(target));
    args.extend(["--output".to_owned(), "json".to_owned()]);
    args
}

async fn import_index(wd: &Workdir, target: &Account, source: &str, sha: &str) -> Run {
    let args = import_json(target, &[INDEX], source, &[sha]);
    wd.run(Agent::Tgt, target, &args).await
}

#[tokio::test]
async fn a_fleet_of_instances_and_clusters_is_handed_off_and_one_failure_does_not_stop_the_rest() {
    let source = Account::assume("444444444444").await;
    let target = Account::assume(FLEET_TARGET).await;
    for (id, encrypted) in [("fl-a", true), ("fl-b", false), ("fl-c", true)] {
        mysql_instance(&source, id, encrypted).await;
    }
    aurora_cluster(&source, "fl-d", true).await;
    mysql_instance(&source, "fl-stopped", true).await;
    source
        .rds()
        .stop_db_instance()
        .db_instance_identifier("fl-stopped")
        .send()
        .await
        .unwrap();
    let wd = Workdir::new("fleet-mixed");

    let plan = wd
        .run(
            Agent::Src,
            &source,
            &export_args(&["--all"], &["--dry-run"]),
        )
        .await;
    assert_eq!(plan.code, 6, "{}\n{}", plan.stdout, plan.stderr);
    let planned = results(&plan);
    assert_eq!(planned["fl-a"].0, "would export");
    assert!(!wd.file(INDEX).exists());
    assert_eq!(
        footprint(&source, "rh-").await.snapshots,
        Vec::<String>::new()
    );

    let run = wd
        .run(Agent::Src, &source, &export_args(&["--all"], &[]))
        .await;
    assert_eq!(run.code, 6, "some failed: {}\n{}", run.stdout, run.stderr);
    let got = results(&run);
    let names: Vec<&str> = got.keys().map(String::as_str).collect();
    // The cluster's member instance goes with its cluster, never on its own.
    assert_eq!(names, ["fl-a", "fl-b", "fl-c", "fl-d", "fl-stopped"]);
    for db in ["fl-a", "fl-b", "fl-c", "fl-d"] {
        assert_eq!(got[db].0, "exported", "{db}: {:?}", got[db]);
    }
    let (result, _, error) = &got["fl-stopped"];
    assert_eq!(result, "failed");
    assert!(error.contains("`stopped`"), "{error}");
    // Every progress line names its database, one of the fleet's; only the run's own lines
    // (who runs it, the fleet's copy limits, its request budget) concern no one database and
    // name none.
    let mut named = std::collections::BTreeSet::new();
    for line in lines(&run)
        .iter()
        .filter(|l| l["event"] == "wait" || l["event"] == "step")
    {
        match &line["database"] {
            serde_json::Value::Null => assert!(
                ["identity", "fleet", "request budget"]
                    .contains(&line["stage"].as_str().unwrap_or_default()),
                "a line about one database names none: {line}"
            ),
            db => {
                let db = db.as_str().unwrap_or_default();
                assert!(names.contains(&db), "not in the fleet: {line}");
                named.insert(db.to_owned());
            }
        }
    }
    assert_eq!(
        named.iter().map(String::as_str).collect::<Vec<_>>(),
        names,
        "every database has progress lines of its own:\n{}",
        run.stdout
    );

    let (index, sha) = Index::read(&wd.file(INDEX)).unwrap();
    assert_eq!(index.manifests.len(), 4, "the failed one has no manifest");
    for entry in &index.manifests {
        let bytes = std::fs::read(wd.file(&format!("out/{}", entry.file))).unwrap();
        assert_eq!(fingerprint(&bytes), entry.sha256);
    }
    let done = lines(&run)
        .into_iter()
        .find(|l| l["event"] == "done")
        .unwrap();
    assert_eq!(done["index_sha256"], sha.as_str());

    let imported = import_index(&wd, &target, "444444444444", &sha).await.ok();
    let got = results(&imported);
    assert_eq!(got.len(), 4);
    assert!(
        got.values().all(|(result, ..)| result == "imported"),
        "{got:?}"
    );
    let there = footprint(&target, "fl-").await;
    assert_eq!(
        there.databases,
        ["fl-a", "fl-b", "fl-c", "fl-d", "fl-d-writer"]
    );
    assert_eq!(there.secrets.len(), 4);

    // Again, once the stopped database is started: only what is left is done.
    let before = footprint(&source, "rh-").await;
    source
        .rds()
        .start_db_instance()
        .db_instance_identifier("fl-stopped")
        .send()
        .await
        .unwrap();
    let again = wd
        .run(Agent::Src, &source, &export_args(&["--all"], &[]))
        .await
        .ok();
    let got = results(&again);
    assert_eq!(got["fl-stopped"].0, "exported");
    for db in ["fl-a", "fl-b", "fl-c", "fl-d"] {
        assert_eq!(got[db].0, "already exported", "{db}");
    }
    let after = footprint(&source, "rh-").await;
    let new: Vec<_> = after
        .snapshots
        .iter()
        .filter(|s| !before.snapshots.contains(s))
        .collect();
    assert_eq!(new, ["rh-fl-stopped-to-555555555555"]);
    let (index, sha) = Index::read(&wd.file(INDEX)).unwrap();
    assert_eq!(index.manifests.len(), 5);
    let imported = import_index(&wd, &target, "444444444444", &sha).await.ok();
    let got = results(&imported);
    assert_eq!(got["fl-stopped"].0, "imported");
    assert_eq!(got["fl-a"].0, "already imported");

    // A manifest changed after the index was written, or an index that is not the one
    // exported, is refused before any AWS request.
    let proxy = Proxy::start(&Emulator::get().url, FaultPlan::default()).await;
    let net = network(&target);
    let import = |sha: &str| import_args(&[INDEX], "444444444444", &[sha], &net);
    let wrong = "0".repeat(64);
    wd.via(&proxy, Agent::Tgt, &target, &import(&wrong))
        .await
        .refused(3, "not the index the source admin exported");
    let path = wd.file("out/fl-a.handoff.json");
    let tampered = std::fs::read_to_string(&path)
        .unwrap()
        .replace("\"fl-a\"", "\"fl-a\" ");
    std::fs::write(&path, tampered).unwrap();
    wd.via(&proxy, Agent::Tgt, &target, &import(&sha))
        .await
        .refused(3, "of `out/fl-a.handoff.json` is");
    assert_eq!(proxy.requests(), 0, "refused before any AWS request");
}

#[tokio::test]
async fn a_killed_fleet_run_again_creates_nothing_twice() {
    let source = Account::assume("444444444445").await;
    let target = Account::assume(FLEET_TARGET).await;
    for id in ["fk-a", "fk-b", "fk-c"] {
        mysql_instance(&source, id, true).await;
    }
    aurora_cluster(&source, "fk-d", true).await;
    let wd = Workdir::new("fleet-killed");
    let args = export_args(&["--all"], &[]);
    for k in [25, 60] {
        assert!(
            kill_at(&wd, &source, Agent::Src, &args, k, vec![]).await,
            "the export ended before request {k}"
        );
    }
    let run = wd.run(Agent::Src, &source, &args).await.ok();
    assert!(results(&run).values().all(|(r, ..)| r.contains("exported")));
    for db in ["fk-a", "fk-b", "fk-c", "fk-d"] {
        let left = footprint(&source, db).await;
        assert_eq!(left.snapshots, [format!("rh-{db}-to-555555555555")], "{db}");
        assert_eq!(left.keys.len(), 1, "{db}: one key");
    }
    let (_, sha) = Index::read(&wd.file(INDEX)).unwrap();
    let import = import_json(&target, &[INDEX], "444444444445", &[&sha]);
    assert!(kill_at(&wd, &target, Agent::Tgt, &import, 40, vec![]).await);
    let run = wd.run(Agent::Tgt, &target, &import).await.ok();
    assert!(results(&run).values().all(|(r, ..)| r.contains("imported")));
    // Manifests named one by one: each must match one of the SHA-256s given.
    let (index, _) = Index::read(&wd.file(INDEX)).unwrap();
    let sha_of = |db: &str| {
        let entry = index.manifests.iter().find(|e| e.database == db).unwrap();
        entry.sha256.clone()
    };
    let (a, b) = (sha_of("fk-a"), sha_of("fk-b"));
    let by_name = |shas: &[&str]| {
        let manifests = ["out/fk-a.handoff.json", "out/fk-b.handoff.json"];
        import_json(&target, &manifests, "444444444445", shas)
    };
    let run = wd.run(Agent::Tgt, &target, &by_name(&[&a, &b])).await.ok();
    let got = results(&run);
    assert_eq!(got.len(), 2);
    assert!(
        got.values().all(|(r, ..)| r == "already imported"),
        "{got:?}"
    );
    let run = wd.run(Agent::Tgt, &target, &by_name(&[&a])).await;
    assert_eq!(run.code, 3, "{}", run.stdout);
    assert!(
        run.stdout.contains("out/fk-b.handoff.json"),
        "{}",
        run.stdout
    );
    for db in ["fk-a", "fk-b", "fk-c", "fk-d"] {
        let there = footprint(&target, db).await;
        assert_eq!(there.secrets, [format!("rds-handoff/{db}/master")], "{db}");
        assert_eq!(there.keys.len(), 1, "{db}: one key");
        assert!(
            there.snapshots.is_empty(),
            "{db}: the copy is deleted once restored"
        );
    }
}

#[tokio::test]
async fn copies_in_progress_never_exceed_the_limit_and_the_fleet_runs_in_rounds() {
    let source = Account::assume("444444444446").await;
    for i in 0..6 {
        mysql_instance(&source, &format!("fq-{i}"), true).await;
    }
    let proxy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            copy_time: Some(Duration::from_secs(3)),
            ..FaultPlan::default()
        },
    )
    .await;
    let wd = Workdir::new("fleet-quota");
    let args = export_args(&["--all"], &["--max-parallel", "2"]);
    let started = Instant::now();
    let run = wd.via(&proxy, Agent::Src, &source, &args).await.ok();
    let took = started.elapsed();
    assert!(results(&run).values().all(|(r, ..)| r == "exported"));
    let copies = proxy.stats.copies();
    assert_eq!(copies.total, 6, "one copy per database");
    let mut targets: Vec<String> = proxy
        .stats
        .bodies("rds:CopyDBSnapshot")
        .iter()
        .filter_map(|body| {
            let (_, id) = body.split_once("TargetDBSnapshotIdentifier=")?;
            Some(id.split('&').next().unwrap_or_default().to_owned())
        })
        .collect();
    targets.sort();
    let each: Vec<String> = (0..6)
        .map(|i| format!("rh-fq-{i}-to-{FLEET_TARGET}"))
        .collect();
    assert_eq!(targets, each, "each database's copy, once");
    assert_eq!(
        copies.peak_db, 2,
        "never more than --max-parallel copies in progress, and that many"
    );
    // Rounds: each copy stays in progress for its 3 s (until a poll after that), and at most
    // 2 run at once, so the 6 take at least three rounds of 3 s, one after another.
    assert_eq!(copies.peak_cluster, 0, "no cluster in this fleet");
    assert!(
        copies.median >= Duration::from_secs(3),
        "a copy took {:?}",
        copies.median
    );
    assert!(
        took >= Duration::from_secs(9),
        "six copies of 3 s, two at a time, done in {took:?}: not in rounds"
    );
    let done = lines(&run)
        .into_iter()
        .find(|l| l["event"] == "done")
        .unwrap();
    assert_eq!(done["peak_copies"]["db_snapshot"], 2);
    // The waits went through the run's poll rounds (whether two copies share one depends
    // on timing: `rounds.rs`'s unit tests show the sharing).
    assert!(done["poll_rounds"]["rounds"].as_u64().unwrap() > 0);
}

/// RDS's bucket as the proxy keeps it, and what the run's summary says it sent to RDS.
fn rds_requests(run: &Run) -> serde_json::Value {
    let requests = summary(run)["requests"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    requests
        .into_iter()
        .find(|r| r["service"] == "rds")
        .unwrap_or_else(|| panic!("no RDS requests in the summary:\n{}", run.stdout))
}

#[tokio::test]
async fn throttling_is_weather_and_a_budget_under_the_accounts_bucket_is_never_throttled() {
    let source = Account::assume("444444444447").await;
    let target = Account::assume(FLEET_TARGET).await;
    let dbs = ["ft-a", "ft-b", "ft-c"];
    for id in dbs {
        mysql_instance(&source, id, true).await;
    }
    let wd = Workdir::new("fleet-throttled");
    // An account bucket far smaller than AWS's, so the run's default budget (150, then 6/s)
    // overdraws it and RDS throttles.
    let tight = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            rds_bucket: Some(e2e::proxy::Bucket {
                burst: 10.0,
                per_second: 2.0,
            }),
            ..FaultPlan::default()
        },
    )
    .await;
    let run = wd
        .via(&tight, Agent::Src, &source, &export_args(&["--all"], &[]))
        .await
        .ok();
    assert!(
        results(&run).values().all(|(r, ..)| r == "exported"),
        "{:?}",
        results(&run)
    );
    let throttled = tight.stats.faults.lock().unwrap()["throttle-bucket"];
    assert!(throttled > 0, "the tight bucket throttled nothing");
    let rds = rds_requests(&run);
    assert_eq!(
        rds["throttles"], throttled,
        "the summary counts each throttle the run received"
    );
    assert!(rds["requests"].as_u64().unwrap() > throttled as u64);
    assert!(run.stdout.contains("\"throttles\""), "{}", run.stdout);
    for db in dbs {
        let left = footprint(&source, db).await;
        assert_eq!(
            left.snapshots,
            [format!("rh-{db}-to-{FLEET_TARGET}")],
            "{db}"
        );
        assert_eq!(left.keys.len(), 1, "{db}: one key");
    }
    assert_eq!(tight.stats.copies().total, 3, "one copy per database");

    // A budget under the account's bucket (50, then 2/s, against 60, then 3/s) is never
    // throttled: the run holds itself back instead.
    let roomy = Proxy::start(
        &Emulator::get().url,
        FaultPlan {
            rds_bucket: Some(e2e::proxy::Bucket {
                burst: 60.0,
                per_second: 3.0,
            }),
            ..FaultPlan::default()
        },
    )
    .await;
    let (_, sha) = Index::read(&wd.file(INDEX)).unwrap();
    let mut import = import_json(&target, &[INDEX], "444444444447", &[&sha]);
    import.extend(["--max-request-rate".to_owned(), "2".to_owned()]);
    let run = wd.via(&roomy, Agent::Tgt, &target, &import).await.ok();
    assert!(results(&run).values().all(|(r, ..)| r == "imported"));
    assert_eq!(roomy.faulted(), 0, "never throttled");
    let rds = rds_requests(&run);
    assert_eq!(rds["throttles"], 0);
    assert!(rds["peak_per_second"].as_u64().unwrap() <= 50, "{rds}");
    assert_eq!(rds["budget"]["per_second"], 2.0);
    for db in dbs {
        let there = footprint(&target, db).await;
        assert_eq!(there.secrets, [format!("rds-handoff/{db}/master")], "{db}");
        assert_eq!(there.keys.len(), 1, "{db}: one key");
    }
}
