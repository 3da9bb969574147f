//! The restored database's new master password: generated and kept in a Secrets Manager
//! secret the toolkit owns (written before the password is set, so it is never lost), or
//! handed to RDS to manage.

use crate::aws::kms::Key;
use crate::aws::rds::DbInfo;
use crate::aws::secrets::{describe_secret, Secret};
use crate::aws::Aws;
use crate::base::error::{sdk, Error, Result};
use crate::base::password::generate;
use crate::base::progress::{Event, Progress};
use crate::base::vocabulary::DbKind;
use crate::flows::export::TAG_ROLE;

use super::{tags, ImportPlan, TAG_PASSWORD_SET};

/// The engine name AWS's rotation functions expect (`reference_secret_json_structure`):
/// one of `mysql`, `mariadb`, `postgres`, `oracle`, `sqlserver`, `db2`.
fn rotation_engine(engine: &str) -> &str {
    match engine {
        "aurora" | "aurora-mysql" | "mysql" => "mysql",
        "aurora-postgresql" | "postgres" => "postgres",
        e if e.starts_with("oracle") || e.starts_with("custom-oracle") => "oracle",
        e if e.starts_with("sqlserver") || e.starts_with("custom-sqlserver") => "sqlserver",
        e if e.starts_with("db2") => "db2",
        other => other,
    }
}

/// The secret's JSON, as AWS's rotation functions read it, from the restored database as AWS
/// describes it; `dbname` is left out when the database has none (never `null`).
fn secret_json(kind: DbKind, db: &DbInfo, password: &str) -> String {
    let d = &db.database;
    let id_field = match kind {
        DbKind::Instance => "dbInstanceIdentifier",
        DbKind::Cluster => "dbClusterIdentifier",
    };
    let mut value = serde_json::json!({
        "engine": rotation_engine(&d.engine),
        "host": db.endpoint,
        "username": d.master_username,
        "password": password,
        id_field: d.identifier,
    });
    if let Some(port) = d.port {
        value["port"] = port.into();
    }
    if let Some(name) = &d.database_name {
        value["dbname"] = name.as_str().into();
    }
    value.to_string()
}

/// Stores a new password in Secrets Manager, then sets it on the database. The secret is
/// written first so the password is never set without being kept; the tag that marks it
/// applied is written last and names the database's resource id, so a re-run after a kill,
/// or an import into a database deleted and restored again under the same name, sets a fresh
/// one.
pub(super) async fn rotate_password(
    aws: &Aws,
    plan: &ImportPlan,
    db: &DbInfo,
    key: &Key,
    progress: &dyn Progress,
) -> Result<String> {
    let name = &plan.secret_name;
    let existing = describe_secret(aws, name).await?;
    if let Some(secret) = &existing {
        check_own_secret(secret, plan, key)?;
        let marker = secret.tags.get(TAG_PASSWORD_SET);
        if marker.is_some() && marker == db.resource_id.as_ref() {
            progress.event(&Event::step("master password", name, "already set"));
            return Ok(secret.arn.clone());
        }
    }
    let password = generate(&db.database.engine);
    let value = secret_json(plan.kind, db, password.expose());
    let arn = match existing {
        Some(secret) => {
            aws.secrets
                // Retry-safe: the SDK fills `ClientRequestToken` once per call and its retries reuse it.
                .put_secret_value()
                .secret_id(&secret.arn)
                .secret_string(value)
                .send()
                .await
                .map_err(sdk("secretsmanager:PutSecretValue"))?;
            secret.arn
        }
        None => {
            let arn = create_secret(aws, plan, key, value).await?;
            progress.created("secret", &arn);
            arn
        }
    };
    set_master_password(aws, plan, password.expose()).await?;
    let applied = aws_sdk_secretsmanager::types::Tag::builder()
        .key(TAG_PASSWORD_SET)
        .value(db.resource_id.clone().unwrap_or_default())
        .build();
    aws.secrets
        .tag_resource()
        .secret_id(&arn)
        .tags(applied)
        .send()
        .await
        .map_err(sdk("secretsmanager:TagResource"))?;
    progress.event(&Event::step(
        "master password",
        name,
        "new password set and stored",
    ));
    Ok(arn)
}

async fn create_secret(aws: &Aws, plan: &ImportPlan, key: &Key, value: String) -> Result<String> {
    let secret_tags = tags(plan, "master-secret")
        .into_iter()
        .map(|(k, v)| {
            aws_sdk_secretsmanager::types::Tag::builder()
                .key(k)
                .value(v)
                .build()
        })
        .collect();
    let created = aws
        .secrets
        // Retry-safe: the SDK fills `ClientRequestToken` once per call and its retries reuse it (idempotent in Secrets Manager).
        .create_secret()
        .name(&plan.secret_name)
        .description(format!(
            "master user of {} {}, set by rds-handoff",
            plan.kind.name(),
            plan.db
        ))
        .kms_key_id(&key.arn)
        .secret_string(value)
        .set_tags(Some(secret_tags))
        .send()
        .await
        .map_err(sdk("secretsmanager:CreateSecret"));
    match created {
        Ok(out) => Ok(out.arn().unwrap_or_default().to_owned()),
        // A retried create whose first response was lost: the secret is ours (checked), the
        // value is rewritten by the caller's next step on a re-run.
        Err(err) if err.aws_code() == Some("ResourceExistsException") => {
            let secret = describe_secret(aws, &plan.secret_name).await?.ok_or(err)?;
            check_own_secret(&secret, plan, key)?;
            Ok(secret.arn)
        }
        Err(err) => Err(err),
    }
}

/// An existing secret of the chosen name is written to only if the toolkit made it for this
/// database, under the key the operator chose.
fn check_own_secret(secret: &Secret, plan: &ImportPlan, key: &Key) -> Result<()> {
    check_secret_owner(secret, plan)?;
    let under_key = secret
        .kms_key_id
        .as_deref()
        .is_some_and(|k| k == key.arn || k == key.id || k.ends_with(&format!("/{}", key.id)));
    if !under_key {
        return Err(Error::refused(
            format!(
                "secret `{}` is encrypted with `{}`, not with the key this import uses (`{}`)",
                plan.secret_name,
                secret
                    .kms_key_id
                    .as_deref()
                    .unwrap_or("the AWS managed key"),
                key.arn
            ),
            "pass the same `--kms-key-id` as the first run, or `--secret-name` with a new name",
        ));
    }
    Ok(())
}

/// Whether the toolkit made the secret for this database (its tags say so).
pub(super) fn check_secret_owner(secret: &Secret, plan: &ImportPlan) -> Result<()> {
    let ours = secret.tags.get(crate::flows::export::TAG_DB) == Some(&plan.db)
        && secret.tags.get(TAG_ROLE).map(String::as_str) == Some("master-secret");
    if !ours {
        return Err(Error::refused(
            format!(
                "secret `{}` already exists and was not made by rds-handoff for `{}`: the new master password is not written into it",
                plan.secret_name, plan.db
            ),
            "pass `--secret-name` with a name of your own for the new password",
        ));
    }
    Ok(())
}

async fn set_master_password(aws: &Aws, plan: &ImportPlan, password: &str) -> Result<()> {
    match plan.kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe: the same values set again.
            .modify_db_instance()
            .db_instance_identifier(&plan.db)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBInstance")),
        DbKind::Cluster => aws
            .rds
            // Retry-safe: the same values set again.
            .modify_db_cluster()
            .db_cluster_identifier(&plan.db)
            .master_user_password(password)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBCluster")),
    }
}

pub(super) async fn rds_managed_password(
    aws: &Aws,
    plan: &ImportPlan,
    key: &Key,
    progress: &dyn Progress,
) -> Result<()> {
    match plan.kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe: the same values set again.
            .modify_db_instance()
            .db_instance_identifier(&plan.db)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&key.arn)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBInstance"))?,
        DbKind::Cluster => aws
            .rds
            // Retry-safe: the same values set again.
            .modify_db_cluster()
            .db_cluster_identifier(&plan.db)
            .manage_master_user_password(true)
            .master_user_secret_kms_key_id(&key.arn)
            .apply_immediately(true)
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBCluster"))?,
    }
    progress.event(&Event::step("master password", &plan.db, "managed by RDS"));
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    #[test]
    fn rotation_engines_for_every_engine_restored() {
        for (engine, expected) in [
            ("mysql", "mysql"),
            ("aurora-mysql", "mysql"),
            ("mariadb", "mariadb"),
            ("postgres", "postgres"),
            ("aurora-postgresql", "postgres"),
            ("oracle-ee", "oracle"),
            ("oracle-se2-cdb", "oracle"),
            ("sqlserver-se", "sqlserver"),
            ("sqlserver-ex", "sqlserver"),
            ("db2-se", "db2"),
            ("db2-ae", "db2"),
        ] {
            assert_eq!(rotation_engine(engine), expected, "{engine}");
        }
    }

    #[test]
    fn secret_json_omits_a_missing_dbname_and_reads_the_restored_database() {
        let db = DbInfo {
            arn: String::new(),
            status: "available".into(),
            encryption: crate::base::vocabulary::Encryption::KmsKey,
            kms_key_id: None,
            endpoint: Some("orders.example".into()),
            subnet_group: None,
            security_groups: Vec::new(),
            publicly_accessible: None,
            availability_zones: Vec::new(),
            deletion_protection: false,
            writer: None,
            resource_id: None,
            member_of: None,
            managed_secret: None,
            database: crate::base::manifest::Database {
                kind: DbKind::Instance,
                identifier: "orders".into(),
                engine: "sqlserver-se".into(),
                engine_version: "15".into(),
                port: Some(1433),
                master_username: "admin".into(),
                database_name: None,
                instance_class: None,
                allocated_storage: None,
                storage_type: None,
                iops: None,
                multi_az: false,
                iam_auth: false,
                tags: BTreeMap::new(),
                parameter_group: None,
                option_group: None,
            },
        };
        let value: serde_json::Value =
            serde_json::from_str(&secret_json(DbKind::Instance, &db, "pw")).unwrap();
        assert_eq!(value["engine"], "sqlserver");
        assert_eq!(value["port"], 1433);
        assert_eq!(value["username"], "admin");
        assert_eq!(value["dbInstanceIdentifier"], "orders");
        assert!(value.get("dbname").is_none(), "{value}");
    }
}
