//! The data check (`--verify-data`, `tgt-agent verify`) against real database servers behind
//! the emulator (`e2e::dataplane`): rows on the source, a snapshot that holds them, a restore
//! that holds the snapshot, logged in as an admin with a tunnel would (`--db-endpoint`), TLS
//! checked against the RDS endpoint's name.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use e2e::dataplane::{admin_sql, admin_sql_on, ca_bundle, can_log_in, seed, served, tunnel};
use e2e::fixtures::{
    data_cluster, data_instance, keys_for, master_login, secret_login, snapshots_for,
};
use e2e::{Account, Agent, Run, Workdir};

use crate::common::{accounts, export, import, manifest};

/// The flags of a check through a tunnel to `db` in `account`, the certificate checked with
/// the emulator's CA.
fn reach(account: &Account, db: &str) -> Vec<String> {
    vec![
        "--db-endpoint".into(),
        format!("127.0.0.1:{}", tunnel(account, db)),
        "--db-ca-bundle".into(),
        ca_bundle().display().to_string(),
    ]
}

async fn export_verified(
    wd: &Workdir,
    source: &Account,
    flag: &str,
    db: &str,
    secret: &str,
    extra: &[&str],
) -> Run {
    // `--debug`: every log line, with every AWS request, must still hold no password.
    let mut args = vec![
        "--verify-data".to_owned(),
        "--db-secret".into(),
        secret.into(),
        "--debug".into(),
    ];
    args.extend(extra.iter().map(|a| (*a).to_owned()));
    args.extend(reach(source, db));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    export(wd, source, flag, db, &args).await
}

async fn import_verified(wd: &Workdir, target: &Account, db: &str) -> Run {
    let mut args = vec!["--verify-data".to_owned(), "--debug".into()];
    args.extend(reach(target, db));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    import(wd, target, db, &args).await.0
}

fn report(wd: &Workdir, db: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(wd.file(&format!("{db}.import.json"))).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The new master password, from the secret the import stored.
async fn new_login(target: &Account, db: &str) -> (String, String) {
    secret_login(target, &format!("rds-handoff/{db}/master")).await
}

/// `tgt-agent verify` of `<db>.handoff.json`, through a tunnel to the restored database.
async fn verify(wd: &Workdir, target: &Account, db: &str) -> Run {
    let sha = e2e::agents::sha_of(wd.path(), &format!("{db}.handoff.json"));
    let mut args = vec![
        "verify".to_owned(),
        format!("{db}.handoff.json"),
        "--source-account".into(),
        e2e::SOURCE.into(),
        "--manifest-sha256".into(),
        sha,
    ];
    args.extend(reach(target, db));
    wd.run(Agent::Tgt, target, &args).await
}

/// Nothing the runs printed or wrote holds a password.
fn assert_no_password(wd: &Workdir, runs: &[&Run], passwords: &[&str]) {
    for password in passwords {
        for run in runs {
            assert!(!run.stdout.contains(password) && !run.stderr.contains(password));
        }
        for entry in std::fs::read_dir(wd.path()).unwrap().flatten() {
            let bytes = std::fs::read(entry.path()).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            assert!(!text.contains(password), "{}", entry.path().display());
        }
    }
}

/// A whole handoff verified on both sides; the tables it must list.
async fn handoff_verified(db: &str, engine: &str, cluster: bool, tables: &[&str]) {
    handoff_verified_into(db, engine, cluster, tables, None).await;
}

/// [`handoff_verified`], the target in `region` (`export --target-region`) when given.
async fn handoff_verified_into(
    db: &str,
    engine: &str,
    cluster: bool,
    tables: &[&str],
    region: Option<&'static str>,
) {
    let (source, target) = accounts().await;
    let target = target.in_region(region.unwrap_or(target.region));
    let across = region.map(|r| ["--target-region", r]);
    let across: &[&str] = across.as_ref().map_or(&[], |a| a.as_slice());
    let secret = if cluster {
        data_cluster(&source, db, engine).await
    } else {
        data_instance(&source, db, engine, false).await
    };
    seed(&source, db, 30);
    let wd = Workdir::new(db);
    let flag = if cluster {
        "--db-cluster"
    } else {
        "--db-instance"
    };
    let exported = export_verified(&wd, &source, flag, db, &secret, across)
        .await
        .ok();
    assert!(
        exported
            .stdout
            .contains("the same before and after the snapshot"),
        "{}",
        exported.stdout
    );
    let digest = manifest(&wd, db)
        .data
        .expect("the manifest holds the digest");
    for table in tables {
        assert_eq!(
            digest.tables[*table].rows, 30,
            "{table} in {:?}",
            digest.tables
        );
    }
    assert_eq!(digest.tables.len(), tables.len(), "{:?}", digest.tables);

    let imported = import_verified(&wd, &target, db).await.ok();
    assert!(
        imported.stdout.contains("data: verified, "),
        "{}",
        imported.stdout
    );
    let check = &report(&wd, db)["data_check"];
    assert_eq!(check["result"], "equal", "{check}");
    for table in tables {
        assert_eq!(check["tables"][*table]["rows"], 30, "{check}");
        assert_eq!(
            check["tables"][*table]["checksum"],
            digest.tables[*table].checksum.as_str()
        );
    }
    let (user, password) = new_login(&target, db).await;
    assert!(
        can_log_in(&target, db, &user, &password),
        "the new password logs in"
    );
    let (_, old) = master_login(&source, db).await;
    assert!(
        !can_log_in(&target, db, &user, &old),
        "the source's password no longer does"
    );
    assert_no_password(&wd, &[&exported, &imported], &[&password, &old]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_instance_arrives_whole_and_its_new_password_works() {
    handoff_verified(
        "dv-pg",
        "postgres",
        false,
        &["shop.app.orders", "shop.public.customers"],
    )
    .await;
}

/// Across regions: the snapshot taken here, copied into us-west-2 and restored there holds
/// every row, and the new password works there.
#[tokio::test(flavor = "multi_thread")]
async fn a_postgres_instance_handed_to_another_region_arrives_whole() {
    handoff_verified_into(
        "dv-xr",
        "postgres",
        false,
        &["shop.app.orders", "shop.public.customers"],
        Some("us-west-2"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_mariadb_instance_arrives_whole_and_its_new_password_works() {
    handoff_verified(
        "dv-maria",
        "mariadb",
        false,
        &["crm.customers", "shop.orders"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aurora_postgresql_cluster_arrives_whole() {
    handoff_verified(
        "dv-apg",
        "aurora-postgresql",
        true,
        &["shop.app.orders", "shop.public.customers"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_aurora_mysql_cluster_arrives_whole() {
    handoff_verified(
        "dv-amy",
        "aurora-mysql",
        true,
        &["crm.customers", "shop.orders"],
    )
    .await;
}

/// Writes one row every 50 ms to `app.orders` until stopped.
fn keep_writing(source: &Account, db: &str) -> (Arc<AtomicBool>, std::thread::JoinHandle<()>) {
    let stop = Arc::new(AtomicBool::new(false));
    let (flag, server) = (stop.clone(), served(source, db));
    let writer = std::thread::spawn(move || {
        while !flag.load(Ordering::Relaxed) {
            admin_sql_on(
                &server,
                "shop",
                "INSERT INTO app.orders SELECT max(id) + 1, 1, 1, 'late', now(), NULL FROM app.orders;",
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    });
    (stop, writer)
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_during_the_snapshot_stop_the_export_before_anything_is_shared() {
    let (source, _target) = accounts().await;
    let db = "dv-busy";
    let secret = data_instance(&source, db, "postgres", false).await;
    seed(&source, db, 10);
    let wd = Workdir::new(db);
    let (stop, writer) = keep_writing(&source, db);
    let run = export_verified(&wd, &source, "--db-instance", db, &secret, &[]).await;
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let run = run.refused(7, "shop.app.orders: ");
    assert!(
        run.stderr.contains(" rows before the snapshot, "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("written to while its snapshot was taken"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("shop.public.customers"),
        "only the table written to: {}",
        run.stderr
    );
    assert!(
        snapshots_for(&source, db).await.is_empty(),
        "the snapshot is deleted, nothing shared"
    );
    assert!(!wd.file(&format!("{db}.handoff.json")).exists());

    // Once the writes stop, the same command takes a new snapshot and goes through.
    export_verified(&wd, &source, "--db-instance", db, &secret, &[])
        .await
        .ok();
    assert!(manifest(&wd, db).data.is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_row_changed_or_deleted_after_the_restore_fails_the_check_naming_the_table() {
    let (source, target) = accounts().await;
    let db = "dv-tamper";
    let secret = data_instance(&source, db, "mariadb", false).await;
    seed(&source, db, 20);
    let wd = Workdir::new(db);
    export_verified(&wd, &source, "--db-instance", db, &secret, &[])
        .await
        .ok();
    import(&wd, &target, db, &[]).await.0.ok();

    admin_sql(
        &target,
        db,
        "shop",
        "UPDATE shop.orders SET amount = amount + 1 WHERE id = 3;",
    );
    let again = import_verified(&wd, &target, db).await;
    again.refused(7, "shop.orders: same row count, different contents");
    assert_eq!(
        report(&wd, db)["data_check"]["result"],
        "differs",
        "the report records it"
    );

    admin_sql(
        &target,
        db,
        "crm",
        "DELETE FROM crm.customers WHERE id = 5;",
    );
    let verify = verify(&wd, &target, db).await;
    let verify = verify.refused(7, "crm.customers: 19 rows, expected 20");
    assert!(verify.stderr.contains("shop.orders"), "{}", verify.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_certificate_is_checked_against_the_endpoint_name_before_anything_is_made() {
    let (source, _target) = accounts().await;
    let db = "dv-tls";
    let secret = data_instance(&source, db, "postgres", false).await;
    let wd = Workdir::new(db);
    let port = tunnel(&source, db).to_string();
    let tunnel_flag = format!("127.0.0.1:{port}");
    let args = [
        "--verify-data",
        "--db-secret",
        &secret,
        "--db-endpoint",
        &tunnel_flag,
    ];
    let run = export(&wd, &source, "--db-instance", db, &args).await;
    let run = run.refused(3, "--db-ca-bundle");
    assert!(run.stderr.contains("TLS"), "{}", run.stderr);
    assert!(keys_for(&source, db).await.is_empty(), "no key made");
    assert!(
        snapshots_for(&source, db).await.is_empty(),
        "no snapshot made"
    );
    assert!(served(&source, db).port > 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_without_a_digest_is_refused_before_anything_is_made() {
    let (source, _target) = accounts().await;
    let db = "dv-oracle";
    source
        .rds()
        .create_db_instance()
        .db_instance_identifier(db)
        .engine("oracle-ee")
        .db_instance_class("db.m5.large")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password(rds_handoff::base::password::generate("oracle-ee").expose())
        .send()
        .await
        .unwrap();
    let wd = Workdir::new(db);
    let run = export(
        &wd,
        &source,
        "--db-instance",
        db,
        &["--verify-data", "--db-secret", "any"],
    )
    .await;
    run.refused(3, "engine `oracle-ee` has no data check");
    assert!(keys_for(&source, db).await.is_empty(), "no key made");
    assert!(
        snapshots_for(&source, db).await.is_empty(),
        "no snapshot made"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_value_changed_beside_a_column_named_t_is_caught_on_postgres() {
    let (source, target) = accounts().await;
    let db = "dv-pgt";
    let secret = data_instance(&source, db, "postgres", false).await;
    seed(&source, db, 5);
    // A column named like the row's alias must not stand for the whole row in the hash.
    let master = served(&source, db).master_user;
    admin_sql(
        &source,
        db,
        "shop",
        &format!(
            "CREATE TABLE app.events (id int PRIMARY KEY, t timestamptz, body text);
             ALTER TABLE app.events OWNER TO \"{master}\";
             INSERT INTO app.events SELECT n, timestamptz '2024-01-01 00:00+00', 'body ' || n
             FROM generate_series(1, 5) n;"
        ),
    );
    let wd = Workdir::new(db);
    export_verified(&wd, &source, "--db-instance", db, &secret, &[])
        .await
        .ok();
    import_verified(&wd, &target, db).await.ok();

    admin_sql(
        &target,
        db,
        "shop",
        "UPDATE app.events SET body = 'changed' WHERE id = 2;",
    );
    let run = verify(&wd, &target, db).await;
    let run = run.refused(7, "shop.app.events: same row count, different contents");
    assert!(!run.stderr.contains("shop.app.orders"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread")]
async fn stop_source_stops_the_instance_with_its_snapshot_and_the_target_finds_every_row() {
    let (source, target) = accounts().await;
    let db = "dv-stop";
    let secret = data_instance(&source, db, "postgres", false).await;
    seed(&source, db, 12);
    let wd = Workdir::new(db);
    let mut args = vec![
        "--stop-source".to_owned(),
        "--verify-data".into(),
        "--db-secret".into(),
        secret,
    ];
    args.extend(reach(&source, db));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = export(&wd, &source, "--db-instance", db, &args).await.ok();
    assert!(
        run.stdout
            .contains("read just before the stop that took the snapshot"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("left stopped"), "{}", run.stdout);
    assert!(
        run.stderr.contains("stopped with its snapshot"),
        "{}",
        run.stderr
    );
    let state = e2e::fixtures::instance_state(&source, db).await;
    assert_eq!(state.status, "stopped", "the source stays stopped");
    assert_eq!(
        manifest(&wd, db).data.unwrap().tables["shop.app.orders"].rows,
        12
    );
    // Run again: finished, nothing repeated, the stopped source no obstacle.
    let again = export(&wd, &source, "--db-instance", db, &args).await.ok();
    assert!(
        again.stdout.contains("already exported"),
        "{}",
        again.stdout
    );

    import_verified(&wd, &target, db).await.ok();
    assert_eq!(report(&wd, db)["data_check"]["result"], "equal");
}
