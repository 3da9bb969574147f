//! The index of a fleet export: one line per manifest, each with its SHA-256.
//!
//! Each database keeps its own manifest, the unit the target verifies. The index lists them
//! with their fingerprints, so one SHA-256 sent on another channel (the index's) vouches for
//! every manifest: `tgt-agent import rds-handoff-index.json --manifest-sha256 …` refuses an
//! index that differs, then any manifest that differs from its line.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::base::error::{Error, Result};
use crate::base::manifest::{fingerprint, read_bounded, write_atomic};
use crate::base::vocabulary::DbKind;
use crate::ident::{check_rds_id, AccountId, Region};

pub const INDEX_SCHEMA: u32 = 1;
/// The index's file name, in the folder of the manifests it lists.
pub const INDEX_FILE: &str = "rds-handoff-index.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Index {
    pub schema: u32,
    pub created_at: String,
    pub source_account: AccountId,
    pub region: Region,
    pub target_account: AccountId,
    pub manifests: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub database: String,
    pub kind: DbKind,
    /// The manifest's file name, in the index's folder.
    pub file: String,
    pub sha256: String,
}

/// The file name of a database's manifest in a fleet's folder: `<db>.handoff.json`, except
/// for a cluster whose identifier an instance of the same fleet also has (`shared_ids`):
/// `<db>.cluster.handoff.json`, so the two never write one file.
pub fn manifest_file(kind: DbKind, database: &str, shared_ids: &BTreeSet<String>) -> String {
    if kind == DbKind::Cluster && shared_ids.contains(database) {
        format!("{database}.cluster.handoff.json")
    } else {
        format!("{database}.handoff.json")
    }
}

/// The identifiers a fleet has both as a DB instance and as a DB cluster.
pub fn shared_ids<'a>(members: impl IntoIterator<Item = (DbKind, &'a str)>) -> BTreeSet<String> {
    let mut instances = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    for (kind, id) in members {
        match kind {
            DbKind::Instance => instances.insert(id),
            DbKind::Cluster => clusters.insert(id),
        };
    }
    instances
        .intersection(&clusters)
        .map(|id| (*id).to_owned())
        .collect()
}

impl Index {
    pub fn to_json(&self) -> String {
        // INVARIANT: the index holds only strings and numbers.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the index atomically; returns its SHA-256.
    pub fn write(&self, path: &Path) -> Result<String> {
        let json = self.to_json();
        write_atomic(path, json.as_bytes())?;
        Ok(fingerprint(json.as_bytes()))
    }

    /// Whether `bytes` are an index rather than a manifest (an object with `manifests`).
    pub fn looks_like(bytes: &[u8]) -> bool {
        serde_json::from_slice::<serde_json::Value>(bytes)
            .is_ok_and(|v| v.get("manifests").is_some_and(serde_json::Value::is_array))
    }

    /// Reads and checks an index; returns it with its SHA-256.
    pub fn read(path: &Path) -> Result<(Self, String)> {
        let bytes = read_bounded(path, "index")?;
        let index = Self::parse(&bytes).map_err(|message| Error::Usage {
            message: format!("index `{}`: {message}", path.display()),
            hint: Some("use the index exactly as `src-agent export` wrote it".into()),
        })?;
        Ok((index, fingerprint(&bytes)))
    }

    fn parse(bytes: &[u8]) -> std::result::Result<Self, String> {
        let index: Self = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
        if index.schema != INDEX_SCHEMA {
            return Err(format!(
                "schema version {} is not known to this tgt-agent (it reads version {INDEX_SCHEMA}): upgrade rds-handoff",
                index.schema
            ));
        }
        let shared = shared_ids(
            index
                .manifests
                .iter()
                .map(|e| (e.kind, e.database.as_str())),
        );
        let mut seen = BTreeSet::new();
        for entry in &index.manifests {
            check_rds_id(entry.kind.id_kind(), &entry.database)
                .map_err(|e| format!("manifests: {e}"))?;
            if entry.file != manifest_file(entry.kind, &entry.database, &shared) {
                return Err(format!(
                    "manifests: `{}` is not the manifest file of `{}`",
                    entry.file, entry.database
                ));
            }
            let hex = entry.sha256.len() == 64
                && entry
                    .sha256
                    .bytes()
                    .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
            if !hex {
                return Err(format!("manifests: `{}` has no SHA-256", entry.file));
            }
            if !seen.insert((entry.kind, &entry.database)) {
                return Err(format!("manifests: `{}` is listed twice", entry.database));
            }
        }
        Ok(index)
    }

    /// Each manifest's path (beside the index) with the SHA-256 it must have.
    pub fn manifests(&self, index_path: &Path) -> Vec<(PathBuf, String)> {
        let dir = index_path.parent().unwrap_or(Path::new(""));
        self.manifests
            .iter()
            .map(|entry| (dir.join(&entry.file), entry.sha256.clone()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> Index {
        Index {
            schema: INDEX_SCHEMA,
            created_at: "2026-11-24T00:00:00Z".into(),
            source_account: "111111111111".parse().unwrap(),
            region: "us-east-1".parse().unwrap(),
            target_account: "222222222222".parse().unwrap(),
            manifests: vec![Entry {
                database: "orders".into(),
                kind: DbKind::Instance,
                file: "orders.handoff.json".into(),
                sha256: "a".repeat(64),
            }],
        }
    }

    #[test]
    fn an_index_reads_back_and_names_its_manifests_beside_it() {
        let json = index().to_json();
        assert!(Index::looks_like(json.as_bytes()));
        assert_eq!(Index::parse(json.as_bytes()).unwrap(), index());
        let paths = index().manifests(Path::new("out/rds-handoff-index.json"));
        assert_eq!(
            paths,
            vec![(PathBuf::from("out/orders.handoff.json"), "a".repeat(64))]
        );
    }

    /// Why `Index::parse` refuses the index `change` makes of a valid one.
    fn refused(change: impl FnOnce(&mut Index)) -> String {
        let mut bad = index();
        change(&mut bad);
        Index::parse(bad.to_json().as_bytes()).unwrap_err()
    }

    #[test]
    fn an_instance_and_a_cluster_of_one_identifier_get_two_manifest_files() {
        let none = BTreeSet::new();
        assert_eq!(
            manifest_file(DbKind::Cluster, "orders", &none),
            "orders.handoff.json",
            "a cluster alone keeps the usual name"
        );
        let shared = shared_ids([
            (DbKind::Instance, "orders"),
            (DbKind::Cluster, "orders"),
            (DbKind::Cluster, "billing"),
        ]);
        assert_eq!(shared, BTreeSet::from(["orders".to_owned()]));
        let instance = manifest_file(DbKind::Instance, "orders", &shared);
        let cluster = manifest_file(DbKind::Cluster, "orders", &shared);
        assert_eq!(instance, "orders.handoff.json");
        assert_eq!(cluster, "orders.cluster.handoff.json");
        assert_eq!(
            manifest_file(DbKind::Cluster, "billing", &shared),
            "billing.handoff.json"
        );
        // Such an index reads back; each kind under the other's name is refused.
        let mut both = index();
        both.manifests.push(Entry {
            database: "orders".into(),
            kind: DbKind::Cluster,
            file: cluster,
            sha256: "b".repeat(64),
        });
        assert_eq!(Index::parse(both.to_json().as_bytes()).unwrap(), both);
        let mut swapped = both.clone();
        swapped.manifests[1].file = instance;
        assert_eq!(
            Index::parse(swapped.to_json().as_bytes()).unwrap_err(),
            "manifests: `orders.handoff.json` is not the manifest file of `orders`"
        );
    }

    #[test]
    fn an_index_that_points_elsewhere_or_repeats_is_refused() {
        // Each case is the valid index with one thing wrong, and the message names that thing.
        assert_eq!(
            refused(|i| i.manifests[0].file = "../orders.handoff.json".into()),
            "manifests: `../orders.handoff.json` is not the manifest file of `orders`"
        );
        assert_eq!(
            refused(|i| i.manifests.push(i.manifests[0].clone())),
            "manifests: `orders` is listed twice"
        );
        for sha256 in ["A".repeat(64), "a".repeat(63), "g".repeat(64)] {
            assert_eq!(
                refused(|i| i.manifests[0].sha256 = sha256),
                "manifests: `orders.handoff.json` has no SHA-256"
            );
        }
        assert_eq!(
            refused(|i| {
                i.manifests[0].database = "orders_1".into();
                i.manifests[0].file = "orders_1.handoff.json".into();
            }),
            "manifests: invalid DB instance identifier `orders_1`: character `_` at position 6 is not allowed: use letters, digits and hyphens"
        );
        assert_eq!(
            refused(|i| i.schema = 2),
            "schema version 2 is not known to this tgt-agent (it reads version 1): upgrade rds-handoff"
        );
        let json = index().to_json();
        let text = json.replace("\"schema\": 1", "\"schema\": 1, \"x\": 1");
        assert_ne!(text, json);
        let err = Index::parse(text.as_bytes()).unwrap_err();
        assert!(err.contains("unknown field `x`"), "{err}");
    }
}
