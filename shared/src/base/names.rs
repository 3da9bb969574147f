//! Deterministic names for what a run creates, so a re-run finds its own work.
//!
//! Names are built from the database and the target account; when that would pass an RDS
//! length limit, the database part is shortened and a hash of the full name keeps it unique.

use crate::ident::{check_rds_id, RdsIdKind};

/// FNV-1a: a stable hash (unlike `DefaultHasher`, the same across Rust releases).
fn stable_hash(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `rh-<db>-<suffix>`, shortened to fit `kind`'s limit.
pub fn bounded(kind: RdsIdKind, db: &str, suffix: &str) -> String {
    let full = format!("rh-{db}-{suffix}");
    if full.len() <= kind.max_len() {
        return full;
    }
    let hash = format!("{:08x}", stable_hash(&full) as u32);
    let room = kind
        .max_len()
        .saturating_sub("rh--".len() + hash.len() + 1 + suffix.len());
    let short = db[..room.min(db.len())].trim_end_matches('-');
    format!("rh-{short}-{hash}-{suffix}")
}

/// The names one export run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportNames {
    /// The snapshot shared with the target.
    pub shared: String,
    /// The snapshot of the database that the shared copy is made from.
    pub intermediate: String,
    /// `--encrypt-at-source`: the temporary cluster restored under the key.
    pub temp_cluster: String,
}

impl ExportNames {
    pub fn new(snapshot_kind: RdsIdKind, db: &str, target: &str) -> Self {
        Self {
            shared: bounded(snapshot_kind, db, &format!("to-{target}")),
            intermediate: bounded(snapshot_kind, db, &format!("to-{target}-src")),
            temp_cluster: bounded(RdsIdKind::Cluster, db, &format!("to-{target}-tmp")),
        }
    }

    /// The names of a handoff from region `from` into region `to`: apart from those of a
    /// handoff within either region (a database of the same name there may be handed to the
    /// same target), and from those into any other region.
    /// The target account and target region an intermediate of [`Self::across`] is named
    /// for (`rh-<db>-to-<target>-<region>-src`).
    pub fn intermediate_parts(id: &str) -> Option<(&str, &str)> {
        let (_, tail) = id.strip_suffix("-src")?.rsplit_once("-to-")?;
        let (target, region) = tail.split_once('-')?;
        let account = target.len() == 12 && target.bytes().all(|b| b.is_ascii_digit());
        (account && crate::ident::is_region(region)).then_some((target, region))
    }

    pub fn across(snapshot_kind: RdsIdKind, db: &str, target: &str, from: &str, to: &str) -> Self {
        Self {
            shared: bounded(snapshot_kind, db, &format!("to-{target}-from-{from}")),
            intermediate: bounded(snapshot_kind, db, &format!("to-{target}-{to}-src")),
            temp_cluster: bounded(RdsIdKind::Cluster, db, &format!("to-{target}-{to}-tmp")),
        }
    }
}

/// The names one `src-agent encrypt` run uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptNames {
    /// The snapshot of the original database.
    pub snapshot: String,
    /// Its copy under the key (instances; a cluster is encrypted by the restore itself).
    pub copy: String,
}

impl EncryptNames {
    pub fn new(snapshot_kind: RdsIdKind, db: &str) -> Self {
        Self {
            snapshot: bounded(snapshot_kind, db, "encrypt-src"),
            copy: bounded(snapshot_kind, db, "encrypt"),
        }
    }
}

/// A cluster's writer instance: `<cluster>-writer`, shortened to 63 characters.
pub fn writer_instance(cluster: &str) -> String {
    let room = RdsIdKind::Instance.max_len() - "-writer".len();
    format!(
        "{}-writer",
        cluster[..cluster.len().min(room)].trim_end_matches('-')
    )
}

/// Checks a generated name against the rules it must meet (a bug guard, tested below).
pub fn is_valid(kind: RdsIdKind, name: &str) -> bool {
    check_rds_id(kind, name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names_are_readable() {
        let names = ExportNames::new(RdsIdKind::ClusterSnapshot, "orders", "222222222222");
        assert_eq!(names.shared, "rh-orders-to-222222222222");
        assert_eq!(names.intermediate, "rh-orders-to-222222222222-src");
        assert_eq!(names.temp_cluster, "rh-orders-to-222222222222-tmp");
    }

    #[test]
    fn an_intermediate_across_regions_says_its_target_and_region() {
        for db in ["orders", "to-to-1", &"a".repeat(63)] {
            let names = ExportNames::across(
                RdsIdKind::Snapshot,
                db,
                "222222222222",
                "us-east-1",
                "us-west-2",
            );
            assert_eq!(
                ExportNames::intermediate_parts(&names.intermediate),
                Some(("222222222222", "us-west-2")),
                "{db}"
            );
            assert_eq!(ExportNames::intermediate_parts(&names.shared), None);
        }
        let within = ExportNames::new(RdsIdKind::Snapshot, "orders", "222222222222");
        assert_eq!(ExportNames::intermediate_parts(&within.intermediate), None);
    }

    #[test]
    fn writer_names_fit() {
        assert_eq!(writer_instance("orders"), "orders-writer");
        let long = "a".repeat(63);
        assert_eq!(writer_instance(&long).len(), 63);
        assert!(is_valid(RdsIdKind::Instance, &writer_instance(&long)));
    }

    #[test]
    fn long_names_fit_and_stay_distinct() {
        let long = format!("a{}", "-b".repeat(31));
        let other = format!("a{}c", "-b".repeat(30));
        for kind in [
            RdsIdKind::ClusterSnapshot,
            RdsIdKind::Snapshot,
            RdsIdKind::Cluster,
        ] {
            let a = ExportNames::new(kind, &long, "222222222222");
            let b = ExportNames::new(kind, &other, "222222222222");
            for name in [&a.shared, &a.intermediate, &a.temp_cluster] {
                assert!(
                    is_valid(RdsIdKind::ClusterSnapshot, name) || kind == RdsIdKind::Snapshot,
                    "{name}"
                );
                assert!(is_valid(RdsIdKind::Snapshot, name), "{name}");
            }
            assert_ne!(a.shared, b.shared);
            assert_eq!(
                a,
                ExportNames::new(kind, &long, "222222222222"),
                "deterministic"
            );
        }
    }
}
