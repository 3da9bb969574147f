//! How much of AWS's limits an account has left: snapshot copies already in progress (20 DB
//! snapshot copies, 5 DB cluster snapshot copies per account and region: USER_CopySnapshot)
//! and the manual snapshot quota, read at the start of a fleet run.
//!
//! A single handoff never comes near them; a fleet does. It reads the copies the account
//! already has in progress, subtracts them, lowers the rest to `--max-parallel`, and never
//! raises anything; the result is the run's [`CopySlots`].

use crate::aws::rds::Listed;
use crate::aws::slots::{limit, CopySlots};
use crate::base::error::{Error, Result};
use crate::base::vocabulary::DbKind;

/// Statuses of a snapshot whose copy is still under way.
const COPYING: [&str; 3] = ["creating", "copying", "pending"];

/// The slots a fleet may use in an account whose listing is `listed`: AWS's limits minus
/// the copies already in progress there, lowered to `max_parallel`. Refuses when AWS's
/// limit is already reached for a kind the fleet needs.
pub fn fleet_slots(
    listed: &[Listed],
    region: &crate::ident::Region,
    max_parallel: Option<usize>,
    needs: &[DbKind],
) -> Result<CopySlots> {
    let room = |kind: DbKind| -> Result<usize> {
        let (limit, busy) = (limit(kind), in_progress(listed, kind));
        let free = limit.saturating_sub(busy);
        if free == 0 && needs.contains(&kind) {
            return Err(Error::refused(
                format!("the account already has {busy} {} snapshot copies in progress in `{region}`, AWS's limit of {limit} per region", kind.name()),
                format!("wait for those copies to finish (`aws rds {} --region {region}` shows them), then re-run the same command", match kind {
                    DbKind::Instance => "describe-db-snapshots",
                    DbKind::Cluster => "describe-db-cluster-snapshots",
                }),
            ));
        }
        Ok(max_parallel.map_or(free, |n| n.min(free)))
    };
    Ok(CopySlots::new(
        room(DbKind::Instance)?,
        room(DbKind::Cluster)?,
    ))
}

/// Copies of `kind` in progress in a listing: snapshots that are copies and not yet done.
pub fn in_progress(listed: &[Listed], kind: DbKind) -> usize {
    let snapshot = crate::aws::rds::snapshot_kind(kind);
    listed
        .iter()
        .filter(|l| l.kind == snapshot && l.copy_of.is_some())
        .filter(|l| COPYING.contains(&l.status.as_str()))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot(kind: &'static str, status: &str, copy: bool) -> Listed {
        Listed {
            kind,
            id: "s".into(),
            status: status.into(),
            kms_key_id: None,
            snapshot_type: Some("manual".into()),
            tags: Default::default(),
            allocated_gib: 20,
            cluster: None,
            copy_of: copy.then(|| "src".into()),
            encryption: crate::base::vocabulary::Encryption::KmsKey,
        }
    }

    fn here() -> crate::ident::Region {
        "us-east-1".parse().unwrap()
    }

    #[test]
    fn copies_in_progress_lower_the_fleets_slots_and_max_parallel_never_raises_them() {
        let mut listed = vec![snapshot("db-snapshot", "available", true)];
        listed.extend((0..3).map(|_| snapshot("db-snapshot", "copying", true)));
        listed.push(snapshot("db-snapshot", "creating", false));
        listed.push(snapshot("db-cluster-snapshot", "copying", true));
        let slots = fleet_slots(&listed, &here(), None, &[DbKind::Instance]).unwrap();
        assert_eq!(slots.limit(DbKind::Instance), Some(17));
        assert_eq!(slots.limit(DbKind::Cluster), Some(4));
        let slots = fleet_slots(&listed, &here(), Some(2), &[]).unwrap();
        assert_eq!(slots.limit(DbKind::Instance), Some(2));
        let slots = fleet_slots(&listed, &here(), Some(100), &[]).unwrap();
        assert_eq!(slots.limit(DbKind::Cluster), Some(4));
    }

    #[test]
    fn a_full_quota_is_refused_only_for_the_kind_the_fleet_needs() {
        let listed: Vec<_> = (0..5)
            .map(|_| snapshot("db-cluster-snapshot", "copying", true))
            .collect();
        assert!(fleet_slots(&listed, &here(), None, &[DbKind::Instance]).is_ok());
        let err = fleet_slots(&listed, &here(), None, &[DbKind::Cluster]).unwrap_err();
        assert!(err.to_string().contains("5 DB cluster snapshot copies"));
    }
}
