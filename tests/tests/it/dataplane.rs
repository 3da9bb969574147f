//! The emulator's data plane (`moto/dataplane.py`, `e2e::dataplane`): a database opted in is
//! a real server, reached on `127.0.0.1` as through a tunnel, with TLS that verifies against
//! the endpoint name RDS reports. A snapshot holds the data as it was when taken: a restore
//! has the seeded rows and not a row written after, also after copies into another account.
//! As on AWS a restore keeps the source's master password, and the API changes it in the
//! server. A deleted database's server is gone. A database not opted in has none.

use e2e::dataplane::{
    admin_sql, can_log_in, port_open, registered, seed, served, tls_verifies, Served,
};
use e2e::fixtures::{data_cluster, data_instance, describe_instance, master_login, mysql_instance};
use e2e::{Account, SOURCE, TARGET};

/// The id of the row written after the snapshot.
const LATE_ID: u32 = 1_000_000;

/// The seeded orders table, and the database to run SQL in ("" for none).
fn orders(engine: &str) -> (&'static str, &'static str) {
    if engine.contains("postgres") {
        ("app.orders", "shop")
    } else {
        ("shop.orders", "")
    }
}

/// The count and a hash of every column of every seeded order (the late row left out): what
/// a restore must give back, byte for byte.
fn seeded_orders(account: &Account, db: &str, engine: &str) -> String {
    let (table, database) = orders(engine);
    let sql = if engine.contains("postgres") {
        format!(
            "SELECT count(*), md5(string_agg(o::text, ',' ORDER BY id)) \
             FROM {table} o WHERE id < {LATE_ID};"
        )
    } else {
        format!(
            "SELECT COUNT(*), MD5(GROUP_CONCAT(CONCAT_WS('|', id, customer_id, amount, \
             COALESCE(note, '<null>'), placed_at, COALESCE(HEX(payload), '<null>')) \
             ORDER BY id SEPARATOR ',')) FROM {table} WHERE id < {LATE_ID};"
        )
    };
    admin_sql(account, db, database, &sql).trim().to_owned()
}

fn write_late_row(account: &Account, db: &str, engine: &str) {
    let (table, database) = orders(engine);
    admin_sql(
        account,
        db,
        database,
        &format!(
            "INSERT INTO {table} (id, customer_id, amount, placed_at) \
             VALUES ({LATE_ID}, 1, 1.00, now());"
        ),
    );
}

fn late_rows(account: &Account, db: &str, engine: &str) -> String {
    let (table, database) = orders(engine);
    admin_sql(
        account,
        db,
        database,
        &format!("SELECT count(*) FROM {table} WHERE id = {LATE_ID};"),
    )
    .trim()
    .to_owned()
}

/// Deleting the database stops its server: no registry entry, nothing on its port.
fn assert_gone(account: &Account, db: &str, server: &Served) {
    assert!(
        registered(account, db).is_none(),
        "`{db}` deleted: its registry entry is gone"
    );
    assert!(
        !port_open(server.port),
        "`{db}` deleted: nothing listens on port {} any more",
        server.port
    );
}

async fn new_key(account: &Account) -> String {
    let key = account.kms().create_key().send().await.unwrap();
    key.key_metadata().unwrap().arn().unwrap().to_owned()
}

/// A DB instance of `engine`: seeded, snapshotted, written to after, restored in the same
/// account; its password changed through the API; deleted.
async fn instance_round_trip(engine: &str, db: &str) {
    let source = Account::assume(SOURCE).await;
    data_instance(&source, db, engine, false).await;
    let (user, password) = master_login(&source, db).await;
    let server = served(&source, db);
    let described = describe_instance(&source, db).await;
    let endpoint = described
        .endpoint()
        .expect("an available instance has an endpoint");
    assert_eq!(endpoint.address(), Some(server.address.as_str()));
    let api_port = endpoint.port();
    assert_ne!(
        api_port,
        Some(i32::from(server.port)),
        "the API's port is RDS's, not the server's"
    );
    assert!(
        can_log_in(&source, db, &user, &password),
        "the master logs in with the password the API was given"
    );
    assert!(!can_log_in(&source, db, &user, "not-the-password-1A!"));
    assert!(
        tls_verifies(&source, db, &server.address),
        "the certificate names the endpoint address"
    );
    assert!(
        !tls_verifies(&source, db, "127.0.0.1"),
        "the certificate names the endpoint, not the tunnel's address"
    );

    seed(&source, db, 40);
    let seeded = seeded_orders(&source, db, engine);
    assert!(seeded.starts_with("40"), "40 rows seeded: {seeded}");
    let snapshot = format!("{db}-snap");
    source
        .rds()
        .create_db_snapshot()
        .db_instance_identifier(db)
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    write_late_row(&source, db, engine);
    assert_eq!(late_rows(&source, db, engine), "1");

    let restored = format!("{db}-restored");
    source
        .rds()
        .restore_db_instance_from_db_snapshot()
        .db_instance_identifier(&restored)
        .db_snapshot_identifier(&snapshot)
        .send()
        .await
        .unwrap();
    assert_eq!(
        seeded_orders(&source, &restored, engine),
        seeded,
        "the restore has the snapshot's rows, every column the same"
    );
    assert_eq!(
        late_rows(&source, &restored, engine),
        "0",
        "a write after the snapshot is not in its restore"
    );
    let copy = served(&source, &restored);
    assert_ne!(copy.port, server.port, "a server of its own");
    let described = describe_instance(&source, &restored).await;
    let endpoint = described.endpoint().expect("an endpoint");
    assert_eq!(endpoint.address(), Some(copy.address.as_str()));
    assert_eq!(
        endpoint.port(),
        api_port,
        "a restore keeps its snapshot's port"
    );
    assert!(tls_verifies(&source, &restored, &copy.address));
    assert!(!tls_verifies(&source, &restored, &server.address));

    assert!(
        can_log_in(&source, &restored, &user, &password),
        "as on AWS, a restore keeps the source's master password"
    );
    let new_password = rds_handoff::base::password::generate(engine);
    source
        .rds()
        .modify_db_instance()
        .db_instance_identifier(&restored)
        .master_user_password(new_password.expose())
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    assert!(
        can_log_in(&source, &restored, &user, new_password.expose()),
        "ModifyDBInstance's password logs in"
    );
    assert!(
        !can_log_in(&source, &restored, &user, &password),
        "the old password no longer does"
    );
    assert!(
        can_log_in(&source, db, &user, &password),
        "the source's password is its own"
    );

    source
        .rds()
        .delete_db_instance()
        .db_instance_identifier(&restored)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert_gone(&source, &restored, &copy);
    assert!(port_open(server.port), "the source still runs");
}

#[tokio::test]
async fn postgres_instance_restores_what_its_snapshot_held_and_takes_the_apis_password() {
    instance_round_trip("postgres", "dp-pg").await;
}

#[tokio::test]
async fn mariadb_instance_restores_what_its_snapshot_held_and_takes_the_apis_password() {
    instance_round_trip("mariadb", "dp-maria").await;
    // A database not opted in has no server, whatever its engine.
    let source = Account::assume(SOURCE).await;
    mysql_instance(&source, "dp-plain", false).await;
    assert!(registered(&source, "dp-plain").is_none());
}

/// An Aurora cluster of `engine`: seeded, snapshotted, written to after; the snapshot re-keyed
/// through a temporary cluster (AWS owned keys can't be shared), shared, copied into the
/// target under its key and restored there; the target's password changed through the API;
/// deleted.
async fn cluster_across_accounts(engine: &str, db: &str) {
    let source = Account::assume(SOURCE).await;
    let target = Account::assume(TARGET).await;
    data_cluster(&source, db, engine).await;
    let (user, password) = master_login(&source, db).await;
    assert!(
        registered(&source, &format!("{db}-1")).is_none(),
        "a cluster's instances have no server of their own"
    );
    seed(&source, db, 30);
    let seeded = seeded_orders(&source, db, engine);
    let rds = source.rds();
    rds.create_db_cluster_snapshot()
        .db_cluster_identifier(db)
        .db_cluster_snapshot_identifier(format!("{db}-snap"))
        .send()
        .await
        .unwrap();
    write_late_row(&source, db, engine);

    // Under AWS's owned key (`sse-rds`) a snapshot can be neither shared nor copied under a
    // KMS key: its data goes through a temporary cluster restored under one, as the toolkit
    // takes it.
    let source_key = new_key(&source).await;
    let temporary = format!("{db}-rekey");
    rds.restore_db_cluster_from_snapshot()
        .db_cluster_identifier(&temporary)
        .snapshot_identifier(format!("{db}-snap"))
        .engine(engine)
        .kms_key_id(&source_key)
        .send()
        .await
        .unwrap();
    let shared = rds
        .create_db_cluster_snapshot()
        .db_cluster_identifier(&temporary)
        .db_cluster_snapshot_identifier(format!("{db}-shared"))
        .send()
        .await
        .unwrap();
    let arn = shared
        .db_cluster_snapshot()
        .and_then(|s| s.db_cluster_snapshot_arn())
        .unwrap()
        .to_owned();
    let temporary_server = served(&source, &temporary);
    rds.delete_db_cluster()
        .db_cluster_identifier(&temporary)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert_gone(&source, &temporary, &temporary_server);
    rds.modify_db_cluster_snapshot_attribute()
        .db_cluster_snapshot_identifier(format!("{db}-shared"))
        .attribute_name("restore")
        .values_to_add(TARGET)
        .send()
        .await
        .unwrap();
    let target_key = new_key(&target).await;
    target
        .rds()
        .copy_db_cluster_snapshot()
        .source_db_cluster_snapshot_identifier(&arn)
        .target_db_cluster_snapshot_identifier(format!("{db}-copy"))
        .kms_key_id(&target_key)
        .send()
        .await
        .unwrap();
    target
        .rds()
        .restore_db_cluster_from_snapshot()
        .db_cluster_identifier(db)
        .snapshot_identifier(format!("{db}-copy"))
        .engine(engine)
        .kms_key_id(&target_key)
        .send()
        .await
        .unwrap();

    assert_eq!(
        seeded_orders(&target, db, engine),
        seeded,
        "the target's restore has the rows of the source's snapshot"
    );
    assert_eq!(
        late_rows(&target, db, engine),
        "0",
        "a write after the snapshot is not in the target"
    );
    let server = served(&target, db);
    let out = target
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(db)
        .send()
        .await
        .unwrap();
    let cluster = &out.db_clusters()[0];
    assert_eq!(cluster.endpoint(), Some(server.address.as_str()));
    assert_ne!(server.port, served(&source, db).port);
    assert!(tls_verifies(&target, db, &server.address));
    assert!(
        can_log_in(&target, db, &user, &password),
        "as on AWS, the restore keeps the source's master password"
    );
    let new_password = rds_handoff::base::password::generate(engine);
    target
        .rds()
        .modify_db_cluster()
        .db_cluster_identifier(db)
        .master_user_password(new_password.expose())
        .apply_immediately(true)
        .send()
        .await
        .unwrap();
    assert!(can_log_in(&target, db, &user, new_password.expose()));
    assert!(!can_log_in(&target, db, &user, &password));

    target
        .rds()
        .delete_db_cluster()
        .db_cluster_identifier(db)
        .skip_final_snapshot(true)
        .send()
        .await
        .unwrap();
    assert_gone(&target, db, &server);
}

#[tokio::test]
async fn aurora_postgresql_snapshot_data_reaches_another_accounts_restore() {
    cluster_across_accounts("aurora-postgresql", "dp-apg").await;
}

#[tokio::test]
async fn aurora_mysql_snapshot_data_reaches_another_accounts_restore() {
    cluster_across_accounts("aurora-mysql", "dp-amy").await;
}
