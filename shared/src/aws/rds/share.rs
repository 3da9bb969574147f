//! Sharing a snapshot with other accounts: the accounts in its `restore` attribute, adding
//! and removing them, and the options (persistent, permanent) that make a snapshot unshareable.

use crate::aws::Aws;
use crate::base::error::{sdk, Result};
use crate::base::vocabulary::DbKind;

/// Adds or removes accounts in a snapshot's `restore` attribute.
pub async fn set_shared(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    add: &[String],
    remove: &[String],
) -> Result<()> {
    match kind {
        DbKind::Instance => aws
            .rds
            // Retry-safe: adding an account already in `restore` changes nothing.
            .modify_db_snapshot_attribute()
            .db_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(add.to_vec()).filter(|v| !v.is_empty()))
            .set_values_to_remove(Some(remove.to_vec()).filter(|v| !v.is_empty()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBSnapshotAttribute")),
        DbKind::Cluster => aws
            .rds
            // Retry-safe: adding an account already in `restore` changes nothing.
            .modify_db_cluster_snapshot_attribute()
            .db_cluster_snapshot_identifier(id)
            .attribute_name("restore")
            .set_values_to_add(Some(add.to_vec()).filter(|v| !v.is_empty()))
            .set_values_to_remove(Some(remove.to_vec()).filter(|v| !v.is_empty()))
            .send()
            .await
            .map(|_| ())
            .map_err(sdk("rds:ModifyDBClusterSnapshotAttribute")),
    }
}

/// The accounts in a snapshot's `restore` attribute.
pub async fn shared_with(aws: &Aws, kind: DbKind, id: &str) -> Result<Vec<String>> {
    let values =
        |name: Option<&str>, values: &[String]| (name == Some("restore")).then(|| values.to_vec());
    let found = match kind {
        DbKind::Instance => aws
            .rds
            .describe_db_snapshot_attributes()
            .db_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBSnapshotAttributes"))?
            .db_snapshot_attributes_result()
            .and_then(|r| {
                r.db_snapshot_attributes()
                    .iter()
                    .find_map(|a| values(a.attribute_name(), a.attribute_values()))
            }),
        DbKind::Cluster => aws
            .rds
            .describe_db_cluster_snapshot_attributes()
            .db_cluster_snapshot_identifier(id)
            .send()
            .await
            .map_err(sdk("rds:DescribeDBClusterSnapshotAttributes"))?
            .db_cluster_snapshot_attributes_result()
            .and_then(|r| {
                r.db_cluster_snapshot_attributes()
                    .iter()
                    .find_map(|a| values(a.attribute_name(), a.attribute_values()))
            }),
    };
    Ok(found.unwrap_or_default())
}

/// Options that make a snapshot unshareable: persistent or permanent ones (TDE).
pub async fn unshareable_options(aws: &Aws, option_group: &str) -> Result<Vec<String>> {
    if option_group.starts_with("default:") {
        return Ok(Vec::new());
    }
    let out = aws
        .rds
        .describe_option_groups()
        .option_group_name(option_group)
        .send()
        .await
        .map_err(sdk("rds:DescribeOptionGroups"))?;
    Ok(out
        .option_groups_list()
        .iter()
        .flat_map(|g| g.options())
        .filter(|o| o.persistent().unwrap_or(false) || o.permanent().unwrap_or(false))
        .filter_map(|o| o.option_name())
        .map(str::to_owned)
        .collect())
}
