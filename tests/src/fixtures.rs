//! What the tests hand off: source databases, and the target's network to restore into.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

use aws_sdk_rds::types::{DbInstance, Tag};

use rds_handoff::base::vocabulary::DbKind;
use rds_handoff::policy::PolicyDocument;

use crate::accounts::Account;
use crate::dataplane;
pub use crate::dataplane::seed;
use crate::emulator::{python, Emulator};

/// A source DB instance or cluster as the tests compare it before and after.
#[derive(Debug, Clone, PartialEq)]
pub struct DbState {
    pub status: String,
    pub encrypted: bool,
    pub kms_key_id: Option<String>,
    pub tags: BTreeMap<String, String>,
}

fn tags() -> Vec<Tag> {
    vec![
        Tag::builder().key("team").value("payments").build(),
        Tag::builder().key("env").value("prod").build(),
    ]
}

/// A MySQL instance; `encrypted` uses the AWS managed key `aws/rds`, as the console does.
pub async fn mysql_instance(account: &Account, id: &str, encrypted: bool) {
    // The source's own password never matters to the tests; it is made fresh each run.
    let password = rds_handoff::base::password::generate("mysql");
    let mut request = account
        .rds()
        .create_db_instance()
        .db_instance_identifier(id)
        .engine("mysql")
        .engine_version("8.0.36")
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username("admin")
        .master_user_password(password.expose())
        .db_name("shop")
        .set_tags(Some(tags()));
    if encrypted {
        request = request.storage_encrypted(true).kms_key_id("alias/aws/rds");
    }
    made(
        request.send().await,
        &format!("create instance {id}"),
        &["DBInstanceAlreadyExists"],
    );
}

/// A create call's result: made, or met by a retry of itself (the SDK sends a request again
/// when its answer was lost, and the emulator may have carried out the first one; a test's
/// identifiers are its own, so what `retried` names can only be that). Panics otherwise.
fn made<T, E>(result: Result<T, aws_sdk_rds::error::SdkError<E>>, what: &str, retried: &[&str])
where
    E: aws_sdk_rds::error::ProvideErrorMetadata + std::fmt::Debug,
{
    if let Err(err) = result {
        let code = err.as_service_error().and_then(|e| e.code());
        if !code.is_some_and(|c| retried.contains(&c)) {
            panic!("{what}: {err:?}");
        }
    }
}

/// An unencrypted MySQL instance placed on purpose: own subnet group, security group,
/// parameter and option groups, zone, port and class.
pub async fn placed_instance(account: &Account, id: &str) {
    let net = network(account);
    let rds = account.rds();
    rds.create_db_parameter_group()
        .db_parameter_group_name(format!("{id}-params"))
        .db_parameter_group_family("mysql8.0")
        .description("rds-handoff tests")
        .send()
        .await
        .unwrap_or_else(|e| panic!("placed instance {id}: {e:?}"));
    rds.create_option_group()
        .option_group_name(format!("{id}-options"))
        .engine_name("mysql")
        .major_engine_version("8.0")
        .option_group_description("rds-handoff tests")
        .send()
        .await
        .unwrap_or_else(|e| panic!("placed instance {id}: {e:?}"));
    let password = rds_handoff::base::password::generate("mysql");
    rds.create_db_instance()
        .db_instance_identifier(id)
        .engine("mysql")
        .engine_version("8.0.36")
        .db_instance_class("db.t3.small")
        .allocated_storage(30)
        .storage_type("gp2")
        .master_username("admin")
        .master_user_password(password.expose())
        .db_subnet_group_name(&net.subnet_group)
        .vpc_security_group_ids(&net.security_group)
        .availability_zone("us-east-1b")
        .port(3307)
        .db_parameter_group_name(format!("{id}-params"))
        .option_group_name(format!("{id}-options"))
        .tags(Tag::builder().key("team").value("payments").build())
        .tags(Tag::builder().key("env").value("prod").build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("placed instance {id}: {e:?}"));
}

/// An Aurora MySQL cluster with a writer instance.
pub async fn aurora_cluster(account: &Account, id: &str, encrypted: bool) {
    aurora_cluster_encrypted(account, id, Some(encrypted)).await;
}

/// An Aurora cluster made as AWS makes one since 2026-02-18 when nothing is said about
/// encryption: under an AWS owned key (`sse-rds`, DOMAIN.md §14; the shim's fifth rule).
pub async fn aurora_cluster_default(account: &Account, id: &str) {
    aurora_cluster_encrypted(account, id, None).await;
}

async fn aurora_cluster_encrypted(account: &Account, id: &str, storage_encrypted: Option<bool>) {
    let password = rds_handoff::base::password::generate("aurora-mysql");
    let cluster = account
        .rds()
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine("aurora-mysql")
        .engine_version("8.0.mysql_aurora.3.05.2")
        .master_username("admin")
        .master_user_password(password.expose())
        .database_name("shop")
        .set_storage_encrypted(storage_encrypted)
        .set_tags(Some(tags()))
        .send()
        .await;
    // moto names a new cluster's automated snapshot by the minute: a retry meets it first.
    let retried = [
        "DBClusterAlreadyExistsFault",
        "DBClusterSnapshotAlreadyExistsFault",
    ];
    made(cluster, &format!("create cluster {id}"), &retried);
    let writer = account
        .rds()
        .create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .engine("aurora-mysql")
        .db_instance_class("db.r6g.large")
        .send()
        .await;
    made(
        writer,
        &format!("create cluster writer {id}-1"),
        &["DBInstanceAlreadyExists"],
    );
}

/// A DB instance as RDS describes it.
pub async fn describe_instance(account: &Account, id: &str) -> DbInstance {
    let out = account
        .rds()
        .describe_db_instances()
        .db_instance_identifier(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe instance {id}: {e:?}"));
    out.db_instances()[0].clone()
}

/// Gives DB instance `id` these tags, as anyone allowed `rds:AddTagsToResource` can.
pub async fn tag_instance(account: &Account, id: &str, tags: &[(&str, &str)]) {
    let arn = describe_instance(account, id)
        .await
        .db_instance_arn()
        .unwrap_or_default()
        .to_owned();
    let tags = tags
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build());
    account
        .rds()
        .add_tags_to_resource()
        .resource_name(arn)
        .set_tags(Some(tags.collect()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("tag instance {id}: {e:?}"));
}

pub async fn instance_state(account: &Account, id: &str) -> DbState {
    let db = describe_instance(account, id).await;
    DbState {
        status: db.db_instance_status().unwrap_or_default().to_owned(),
        encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        tags: db
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    }
}

pub async fn cluster_state(account: &Account, id: &str) -> DbState {
    let out = account
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .expect("describe cluster");
    let db = &out.db_clusters()[0];
    DbState {
        status: db.status().unwrap_or_default().to_owned(),
        encrypted: db.storage_encrypted().unwrap_or(false),
        kms_key_id: db.kms_key_id().map(str::to_owned),
        tags: db
            .tag_list()
            .iter()
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_owned(),
                    t.value().unwrap_or_default().to_owned(),
                )
            })
            .collect(),
    }
}

/// An account's subnet group and security group, for restores.
#[derive(Debug, Clone)]
pub struct Network {
    pub subnet_group: String,
    pub security_group: String,
}

static NETWORKS: Mutex<BTreeMap<String, Network>> = Mutex::new(BTreeMap::new());

/// The network of `account` (made once per account and emulator).
pub fn network(account: &Account) -> Network {
    let mut networks = NETWORKS.lock().unwrap_or_else(|e| e.into_inner());
    networks
        .entry(format!(
            "{} {} {}",
            account.emulator, account.id, account.region
        ))
        .or_insert_with(|| make_network(account))
        .clone()
}

fn make_network(account: &Account) -> Network {
    let _ = Emulator::get();
    let python = python().expect("emulator venv");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/moto/network.py");
    let out = Command::new(python)
        .arg(script)
        .arg("rh-test-subnets")
        .env_clear()
        .envs(account.env())
        .output()
        .expect("run network.py");
    assert!(
        out.status.success(),
        "network.py: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("network.py prints JSON");
    Network {
        subnet_group: json["subnet_group"].as_str().unwrap_or_default().to_owned(),
        security_group: json["security_group"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    }
}

/// A key's metadata (id, ARN or alias); panics if there is none.
async fn key_metadata(account: &Account, key: &str) -> aws_sdk_kms::types::KeyMetadata {
    let out = account
        .kms()
        .describe_key()
        .key_id(key)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe key {key}: {e:?}"));
    out.key_metadata()
        .cloned()
        .unwrap_or_else(|| panic!("key {key} has no metadata"))
}

/// The ARN of a key (id, ARN or alias); panics if there is none.
pub async fn key_arn(account: &Account, key: &str) -> String {
    key_metadata(account, key)
        .await
        .arn()
        .unwrap_or_default()
        .to_owned()
}

/// A key's state (`Enabled`, `PendingDeletion`, …).
pub async fn key_state(account: &Account, key: &str) -> aws_sdk_kms::types::KeyState {
    let state = key_metadata(account, key).await.key_state().cloned();
    state.unwrap_or_else(|| panic!("key {key} has no state"))
}

/// A key's live policy, parsed.
pub async fn key_policy(account: &Account, key: &str) -> PolicyDocument {
    let out = account
        .kms()
        .get_key_policy()
        .key_id(key)
        .policy_name("default")
        .send()
        .await
        .unwrap_or_else(|e| panic!("get key policy {key}: {e:?}"));
    PolicyDocument::parse(out.policy().unwrap_or_default())
        .unwrap_or_else(|e| panic!("policy of {key}: {e}"))
}

/// Drains a paginator's items (`$request.into_paginator().items().send()`), every page.
macro_rules! all_items {
    ($request:expr, $what:literal) => {{
        let mut stream = $request.into_paginator().items().send();
        let mut items = Vec::new();
        while let Some(item) = stream.next().await {
            items.push(item.expect($what));
        }
        items
    }};
}

/// Manual snapshots (instance and cluster) whose identifier mentions `db`: what a run made
/// for that database, whatever other tests do meanwhile.
pub async fn snapshots_for(account: &Account, db: &str) -> Vec<String> {
    let rds = account.rds();
    let snapshots = all_items!(
        rds.describe_db_snapshots().snapshot_type("manual"),
        "describe snapshots"
    );
    let cluster_snapshots = all_items!(
        rds.describe_db_cluster_snapshots().snapshot_type("manual"),
        "describe cluster snapshots"
    );
    let mut ids: Vec<String> = snapshots
        .iter()
        .filter_map(|s| s.db_snapshot_identifier().map(str::to_owned))
        .chain(
            cluster_snapshots
                .iter()
                .filter_map(|s| s.db_cluster_snapshot_identifier().map(str::to_owned)),
        )
        .filter(|id| id.contains(db))
        .collect();
    ids.sort();
    ids
}

/// KMS keys the toolkit tagged for `db`.
pub async fn keys_for(account: &Account, db: &str) -> Vec<String> {
    let mut ids: Vec<String> = key_owners(account)
        .await
        .into_iter()
        .filter(|(_, owner)| owner == db)
        .map(|(id, _)| id)
        .collect();
    ids.sort();
    ids
}

/// Every KMS key of `account` the toolkit made, with the database it was made for: one
/// pass over the keys, so a fleet's thousand databases are counted in one scan.
pub async fn key_owners(account: &Account) -> Vec<(String, String)> {
    let kms = account.kms();
    let mut owners = Vec::new();
    for key in all_items!(kms.list_keys(), "list keys") {
        let id = key.key_id().unwrap_or_default();
        let tags = kms
            .list_resource_tags()
            .key_id(id)
            .send()
            .await
            .expect("list key tags");
        let tagged = tags
            .tags()
            .iter()
            .find(|t| t.tag_key() == "rds-handoff:db")
            .map(|t| t.tag_value().to_owned());
        // An untagged key counts too when its description is the toolkit's for a
        // database's alias (`rds-handoff alias/rds-handoff/<db> <token>`): a run stopped
        // between `CreateKey` and `TagResource` leaves one.
        let owner = match tagged {
            Some(db) => Some(db),
            None => described_owner(&kms, id).await,
        };
        if let Some(db) = owner {
            owners.push((id.to_owned(), db));
        }
    }
    owners
}

/// The database an untagged key's toolkit description names, if it has one.
async fn described_owner(kms: &aws_sdk_kms::Client, id: &str) -> Option<String> {
    let out = kms
        .describe_key()
        .key_id(id)
        .send()
        .await
        .expect("describe key");
    let description = out.key_metadata()?.description()?;
    let alias = description
        .strip_prefix("rds-handoff ")?
        .split(' ')
        .next()?;
    alias.rsplit_once('/').map(|(_, db)| db.to_owned())
}

/// Secrets whose name mentions `db`.
pub async fn secrets_for(account: &Account, db: &str) -> Vec<String> {
    let mut pages = account.secrets().list_secrets().into_paginator().send();
    let mut names = Vec::new();
    while let Some(page) = pages.next().await {
        let page = page.expect("list secrets");
        names.extend(
            page.secret_list()
                .iter()
                .filter_map(|s| s.name().map(str::to_owned))
                .filter(|n| n.contains(db)),
        );
    }
    names.sort();
    names
}

/// Everything of `db` in an account: snapshots, keys, secrets, databases.
#[derive(Debug, PartialEq)]
pub struct Footprint {
    pub snapshots: Vec<String>,
    pub keys: Vec<String>,
    pub secrets: Vec<String>,
    pub databases: Vec<String>,
}

pub async fn footprint(account: &Account, db: &str) -> Footprint {
    let rds = account.rds();
    let instances = all_items!(rds.describe_db_instances(), "describe instances");
    let clusters = all_items!(rds.describe_db_clusters(), "describe clusters");
    let mut databases: Vec<String> = instances
        .iter()
        .filter_map(|d| d.db_instance_identifier().map(str::to_owned))
        .chain(
            clusters
                .iter()
                .filter_map(|d| d.db_cluster_identifier().map(str::to_owned)),
        )
        .collect();
    databases.retain(|d| d.contains(db));
    databases.sort();
    Footprint {
        snapshots: snapshots_for(account, db).await,
        keys: keys_for(account, db).await,
        secrets: secrets_for(account, db).await,
        databases,
    }
}

/// The accounts (or `all`) a snapshot's `restore` attribute lets copy or restore it.
pub async fn restore_attribute(owner: &Account, kind: DbKind, name: &str) -> Vec<String> {
    let rds = owner.rds();
    match kind {
        DbKind::Instance => {
            let out = rds
                .describe_db_snapshot_attributes()
                .db_snapshot_identifier(name)
                .send()
                .await
                .unwrap();
            out.db_snapshot_attributes_result()
                .map(|r| {
                    r.db_snapshot_attributes()
                        .iter()
                        .flat_map(|a| a.attribute_values().to_vec())
                        .collect()
                })
                .unwrap_or_default()
        }
        DbKind::Cluster => {
            let out = rds
                .describe_db_cluster_snapshot_attributes()
                .db_cluster_snapshot_identifier(name)
                .send()
                .await
                .unwrap();
            out.db_cluster_snapshot_attributes_result()
                .map(|r| {
                    r.db_cluster_snapshot_attributes()
                        .iter()
                        .flat_map(|a| a.attribute_values().to_vec())
                        .collect()
                })
                .unwrap_or_default()
        }
    }
}

/// A key of `account` made with `policy`; its ARN.
pub async fn key_with_policy(account: &Account, policy: &str) -> String {
    let key = account
        .kms()
        .create_key()
        .policy(policy)
        .send()
        .await
        .expect("create key");
    key.key_metadata()
        .and_then(|m| m.arn())
        .expect("a key has an ARN")
        .to_owned()
}

/// The tags of a database the data plane backs with a real server (see [`crate::dataplane`]).
fn data_tags() -> Vec<Tag> {
    let mut tags = tags();
    tags.push(Tag::builder().key(dataplane::TAG).value("true").build());
    tags
}

/// The master user the RDS console proposes: `postgres` for PostgreSQL, `admin` otherwise.
fn master_username(engine: &str) -> &'static str {
    if engine.contains("postgres") {
        "postgres"
    } else {
        "admin"
    }
}

/// The `engine` of a secret AWS's rotation functions read.
fn rotation_engine(engine: &str) -> &str {
    match engine {
        "aurora-postgresql" => "postgres",
        "aurora-mysql" | "aurora" => "mysql",
        other => other,
    }
}

/// Keeps the master login of `id` in the secret `<id>-master` of `account`, in the JSON AWS's
/// rotation functions read; its ARN.
async fn keep_master_login(account: &Account, id: &str, value: serde_json::Value) -> String {
    let out = account
        .secrets()
        .create_secret()
        .name(format!("{id}-master"))
        .secret_string(value.to_string())
        .send()
        .await
        .unwrap_or_else(|e| panic!("create secret {id}-master: {e:?}"));
    out.arn().unwrap_or_default().to_owned()
}

/// A DB instance backed by a real server (the data plane): engine `postgres` (PostgreSQL
/// 15.7), `mariadb` or `mysql` (both a MariaDB server), database `shop`, a fresh master
/// password kept in the secret `<id>-master` (see [`master_login`]); its ARN. `encrypted`
/// uses the AWS managed key `aws/rds`, as the console does.
pub async fn data_instance(account: &Account, id: &str, engine: &str, encrypted: bool) -> String {
    dataplane::engine_ready(engine);
    let version = match engine {
        "postgres" => "15.7",
        "mariadb" => "10.11.8",
        _ => "8.0.36",
    };
    let password = rds_handoff::base::password::generate(engine);
    let user = master_username(engine);
    let mut request = account
        .rds()
        .create_db_instance()
        .db_instance_identifier(id)
        .engine(engine)
        .engine_version(version)
        .db_instance_class("db.t3.micro")
        .allocated_storage(20)
        .master_username(user)
        .master_user_password(password.expose())
        .db_name("shop")
        .set_tags(Some(data_tags()));
    if encrypted {
        request = request.storage_encrypted(true).kms_key_id("alias/aws/rds");
    }
    request
        .send()
        .await
        .unwrap_or_else(|e| panic!("create instance {id}: {e:?}"));
    let db = describe_instance(account, id).await;
    let endpoint = db.endpoint();
    let login = serde_json::json!({
        "engine": rotation_engine(engine),
        "host": endpoint.and_then(|e| e.address()).unwrap_or_default(),
        "port": endpoint.and_then(|e| e.port()).unwrap_or_default(),
        "username": user,
        "password": password.expose(),
        "dbname": "shop",
        "dbInstanceIdentifier": id,
    });
    keep_master_login(account, id, login).await
}

/// An Aurora cluster backed by a real server (the data plane), with a writer instance
/// `<id>-1`: engine `aurora-postgresql` (PostgreSQL 15) or `aurora-mysql` (MariaDB), database
/// `shop`, encrypted as AWS encrypts a new cluster when nothing is said (an AWS owned key,
/// `sse-rds`), a fresh master password kept in the secret `<id>-master` (see
/// [`master_login`]); its ARN.
pub async fn data_cluster(account: &Account, id: &str, engine: &str) -> String {
    dataplane::engine_ready(engine);
    let version = if engine == "aurora-postgresql" {
        "15.4"
    } else {
        "8.0.mysql_aurora.3.05.2"
    };
    let password = rds_handoff::base::password::generate(engine);
    let user = master_username(engine);
    account
        .rds()
        .create_db_cluster()
        .db_cluster_identifier(id)
        .engine(engine)
        .engine_version(version)
        .master_username(user)
        .master_user_password(password.expose())
        .database_name("shop")
        .set_tags(Some(data_tags()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("create cluster {id}: {e:?}"));
    account
        .rds()
        .create_db_instance()
        .db_instance_identifier(format!("{id}-1"))
        .db_cluster_identifier(id)
        .engine(engine)
        .db_instance_class("db.r6g.large")
        .send()
        .await
        .unwrap_or_else(|e| panic!("create cluster writer {id}-1: {e:?}"));
    let out = account
        .rds()
        .describe_db_clusters()
        .db_cluster_identifier(id)
        .send()
        .await
        .unwrap_or_else(|e| panic!("describe cluster {id}: {e:?}"));
    let cluster = out
        .db_clusters()
        .first()
        .unwrap_or_else(|| panic!("cluster {id} not described"));
    let login = serde_json::json!({
        "engine": rotation_engine(engine),
        "host": cluster.endpoint().unwrap_or_default(),
        "port": cluster.port().unwrap_or_default(),
        "username": user,
        "password": password.expose(),
        "dbname": "shop",
        "dbClusterIdentifier": id,
    });
    keep_master_login(account, id, login).await
}

/// The master user and password [`data_instance`] or [`data_cluster`] kept for `id`.
pub async fn master_login(account: &Account, id: &str) -> (String, String) {
    secret_login(account, &format!("{id}-master")).await
}

/// The `username` and `password` a secret of `account` holds (RDS's rotation format).
pub async fn secret_login(account: &Account, secret: &str) -> (String, String) {
    let out = account
        .secrets()
        .get_secret_value()
        .secret_id(secret)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get secret {secret}: {e:?}"));
    let value: serde_json::Value = serde_json::from_str(out.secret_string().unwrap_or_default())
        .unwrap_or_else(|e| panic!("secret {secret} is not JSON: {e}"));
    let field = |name: &str| value[name].as_str().unwrap_or_default().to_owned();
    (field("username"), field("password"))
}
