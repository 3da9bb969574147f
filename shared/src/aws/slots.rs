//! Slots for snapshot copies in progress and room for manual snapshots: what a run takes
//! before it starts a copy or a temporary snapshot, and gives back once it is done.
//!
//! AWS's limits (20 DB snapshot copies, 5 DB cluster snapshot copies in progress per account
//! and region: USER_CopySnapshot) are the ceiling; [`CopySlots::none`] is the single run's:
//! no limit of its own. [`crate::aws::quota`] reads how much of them an account has left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::base::vocabulary::DbKind;

/// AWS's copies in progress per account and region, DB snapshots.
pub const INSTANCE_COPIES: usize = 20;
/// AWS's copies in progress per account and region, DB cluster snapshots.
pub const CLUSTER_COPIES: usize = 5;

/// Slots for copies in progress, one pool per snapshot kind; clones share the pools.
#[derive(Debug, Clone, Default)]
pub struct CopySlots {
    instance: Option<Pool>,
    cluster: Option<Pool>,
}

#[derive(Debug, Clone)]
struct Pool {
    limit: usize,
    slots: Arc<Semaphore>,
    held: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

/// A copy slot; given back when dropped.
#[derive(Debug)]
pub struct Slot {
    _permit: Option<OwnedSemaphorePermit>,
    held: Option<Arc<AtomicUsize>>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some(held) = &self.held {
            held.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

impl Pool {
    fn new(limit: usize) -> Self {
        Self {
            limit,
            slots: Arc::new(Semaphore::new(limit)),
            held: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl CopySlots {
    /// No limit of the toolkit's own (one database: AWS's limit cannot be reached by it).
    pub fn none() -> Self {
        Self::default()
    }

    /// At most `instance` DB snapshot copies and `cluster` DB cluster snapshot copies at once.
    pub fn new(instance: usize, cluster: usize) -> Self {
        Self {
            instance: Some(Pool::new(instance)),
            cluster: Some(Pool::new(cluster)),
        }
    }

    fn pool(&self, kind: DbKind) -> Option<&Pool> {
        match kind {
            DbKind::Instance => self.instance.as_ref(),
            DbKind::Cluster => self.cluster.as_ref(),
        }
    }

    /// Waits for a free slot for a copy of `kind`; hold it until the copy is `available`.
    pub async fn take(&self, kind: DbKind) -> Slot {
        let Some(pool) = self.pool(kind) else {
            return Slot {
                _permit: None,
                held: None,
            };
        };
        // The semaphore is never closed, so acquiring fails only if it were.
        let permit = pool.slots.clone().acquire_owned().await.ok();
        let now = pool.held.fetch_add(1, Ordering::SeqCst) + 1;
        pool.peak.fetch_max(now, Ordering::SeqCst);
        Slot {
            _permit: permit,
            held: Some(pool.held.clone()),
        }
    }

    /// The most copies of `kind` this run had in progress at once.
    pub fn peak(&self, kind: DbKind) -> usize {
        self.pool(kind)
            .map_or(0, |pool| pool.peak.load(Ordering::SeqCst))
    }

    /// The run's own limit for `kind`, if it has one.
    pub fn limit(&self, kind: DbKind) -> Option<usize> {
        self.pool(kind).map(|pool| pool.limit)
    }
}

/// Room for manual snapshots (AWS's quota, 100 per kind and region by default): what a fleet
/// keeps (the shared copies) is set aside when it starts, and what it takes only for a while
/// (intermediate snapshots, the target's copies) is taken and given back as it goes.
#[derive(Debug, Clone, Default)]
pub struct Room {
    temporary: Option<Arc<Semaphore>>,
}

/// What one database needs of the room: snapshots it keeps, and whether it needs one for a
/// while.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Need {
    pub kept: usize,
    pub temporary: bool,
}

impl Room {
    /// Admits databases in the order given while the room holds what they keep plus at least
    /// one temporary snapshot (`free`: the quota minus what is used; `None` when unknown:
    /// everyone is admitted). Returns which are admitted.
    pub fn admit(free: Option<usize>, needs: &[Need]) -> (Vec<bool>, Self) {
        let Some(free) = free else {
            return (vec![true; needs.len()], Self::default());
        };
        let (mut kept, mut temporary) = (0, false);
        let admitted = needs
            .iter()
            .map(|need| {
                let fits = kept + need.kept + usize::from(temporary || need.temporary) <= free;
                if fits {
                    kept += need.kept;
                    temporary |= need.temporary;
                }
                fits
            })
            .collect();
        let room = Self {
            temporary: Some(Arc::new(Semaphore::new(free - kept))),
        };
        (admitted, room)
    }

    /// [`Self::admit`] when what databases keep and what they take for a while are in two
    /// regions (a cross-region export: shared copies in the target's, intermediate snapshots
    /// in the source's), each with its own quota.
    pub fn admit_apart(
        kept_free: Option<usize>,
        temporary_free: Option<usize>,
        needs: &[Need],
    ) -> (Vec<bool>, Self) {
        let mut kept = 0;
        let admitted = needs
            .iter()
            .map(|need| {
                let fits_kept = kept_free.is_none_or(|free| kept + need.kept <= free);
                let fits_temporary = !need.temporary || temporary_free != Some(0);
                let fits = fits_kept && fits_temporary;
                if fits {
                    kept += need.kept;
                }
                fits
            })
            .collect();
        let room = Self {
            temporary: temporary_free.map(|free| Arc::new(Semaphore::new(free))),
        };
        (admitted, room)
    }

    /// Waits for room for one temporary snapshot; the room is given back when dropped.
    pub async fn take(&self) -> Option<OwnedSemaphorePermit> {
        self.temporary.clone()?.acquire_owned().await.ok()
    }
}

/// AWS's limit of copies in progress for `kind`.
pub fn limit(kind: DbKind) -> usize {
    match kind {
        DbKind::Instance => INSTANCE_COPIES,
        DbKind::Cluster => CLUSTER_COPIES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_admits_what_it_keeps_plus_one_temporary_largest_first() {
        let new = Need {
            kept: 1,
            temporary: true,
        };
        let done = Need {
            kept: 0,
            temporary: false,
        };
        let (admitted, _) = Room::admit(Some(3), &[new, done, new, new]);
        assert_eq!(admitted, vec![true, true, true, false]);
        let (admitted, _) = Room::admit(Some(1), &[new, done]);
        assert_eq!(admitted, vec![false, true]);
        let (admitted, _) = Room::admit(None, &[new; 300]);
        assert!(admitted.iter().all(|a| *a));
    }

    #[test]
    fn apart_what_is_kept_counts_in_one_region_and_what_is_temporary_in_the_other() {
        let new = Need {
            kept: 1,
            temporary: true,
        };
        let (admitted, _) = Room::admit_apart(Some(2), Some(1), &[new, new, new]);
        assert_eq!(admitted, vec![true, true, false]);
        let (admitted, _) = Room::admit_apart(Some(5), Some(0), &[new]);
        assert_eq!(admitted, vec![false]);
        let copied = Need {
            kept: 1,
            temporary: false,
        };
        assert_eq!(Room::admit_apart(Some(1), Some(0), &[copied]).0, vec![true]);
    }

    #[tokio::test]
    async fn never_more_slots_held_than_the_limit() {
        let slots = CopySlots::new(3, 1);
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..12 {
            let slots = slots.clone();
            tasks.spawn(async move {
                let _slot = slots.take(DbKind::Instance).await;
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            });
        }
        while tasks.join_next().await.is_some() {}
        assert_eq!(slots.peak(DbKind::Instance), 3);
        assert_eq!(slots.peak(DbKind::Cluster), 0);
    }
}
