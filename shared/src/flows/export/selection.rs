//! Which databases a command names: an export's selection (named, tagged or all of the
//! region) and the one database of `--db-instance` / `--db-cluster` (used by `encrypt`).

use crate::base::error::{Error, Result};
use crate::base::vocabulary::DbKind;
use crate::ident::{DbClusterId, DbInstanceId};

/// Which databases an export hands off: named ones, tagged ones, or all of the region.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = true)]
pub struct Selection {
    /// A DB instance to hand off (repeat the flag for several)
    #[arg(long, value_name = "ID")]
    pub db_instance: Vec<DbInstanceId>,
    /// An Aurora DB cluster to hand off (repeat the flag for several)
    #[arg(long, value_name = "ID")]
    pub db_cluster: Vec<DbClusterId>,
    /// Every DB instance and cluster carrying this tag (repeated: carrying all of them);
    /// members of a cluster go with their cluster
    #[arg(long, value_name = "KEY=VALUE", value_parser = parse_tag_filter)]
    pub tag: Vec<(String, String)>,
    /// Every DB instance and Aurora cluster of the region (members go with their cluster)
    #[arg(long, conflicts_with_all = ["db_instance", "db_cluster", "tag"])]
    pub all: bool,
}

impl Selection {
    /// The one database named, when exactly one is and nothing else selects.
    pub fn single(&self) -> Option<(DbKind, String)> {
        if self.all || !self.tag.is_empty() {
            return None;
        }
        match (self.db_instance.as_slice(), self.db_cluster.as_slice()) {
            ([id], []) => Some((DbKind::Instance, id.to_string())),
            ([], [id]) => Some((DbKind::Cluster, id.to_string())),
            _ => None,
        }
    }
}

fn parse_tag_filter(value: &str) -> std::result::Result<(String, String), String> {
    match value.split_once('=') {
        Some((key, tag)) if !key.is_empty() => Ok((key.to_owned(), tag.to_owned())),
        _ => Err(format!("`{value}` is not KEY=VALUE")),
    }
}

/// `--db-instance ID` or `--db-cluster ID`: exactly one.
#[derive(Debug, Clone, clap::Args)]
#[group(required = true, multiple = false)]
pub struct DatabaseArgs {
    /// The DB instance
    #[arg(long, value_name = "ID")]
    pub db_instance: Option<DbInstanceId>,
    /// The Aurora DB cluster
    #[arg(long, value_name = "ID")]
    pub db_cluster: Option<DbClusterId>,
}

impl DatabaseArgs {
    /// The kind and identifier named (clap has already made the flags exclusive).
    pub fn chosen(&self) -> Result<(DbKind, String)> {
        match (&self.db_instance, &self.db_cluster) {
            (Some(id), None) => Ok((DbKind::Instance, id.to_string())),
            (None, Some(id)) => Ok((DbKind::Cluster, id.to_string())),
            _ => Err(Error::usage(
                "give exactly one of `--db-instance` and `--db-cluster`",
            )),
        }
    }
}
