//! The local engine: runs a workflow's steps in this process, each one first looking for
//! an earlier try's result, then creating it, then waiting for it.

use crate::aws::rds::{self, DbInfo, Snap};
use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::{Event, Progress};

use super::{Op, Step};

/// What the steps left, as their last polls saw it (no second describe afterwards).
#[derive(Debug, Default)]
pub struct Done {
    pub snapshots: Vec<Snap>,
    pub databases: Vec<DbInfo>,
}

impl Done {
    pub fn snapshot(&self, id: &str) -> Option<&Snap> {
        self.snapshots.iter().find(|s| s.id == id)
    }

    pub fn database(&self, id: &str) -> Option<&DbInfo> {
        self.databases.iter().find(|d| d.database.identifier == id)
    }
}

/// Runs `steps` in order.
pub async fn run(
    aws: &Aws,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Done> {
    let mut done = Done::default();
    for step in steps {
        run_step(aws, step, wait, progress, &mut done).await?;
    }
    Ok(done)
}

async fn run_step(
    aws: &Aws,
    step: &Step,
    wait: WaitPolicy,
    progress: &dyn Progress,
    done: &mut Done,
) -> Result<()> {
    let (kind, stage) = (step.kind, step.slot.stage);
    let aws = &aws.at_step(step.region.as_ref()).await?;
    match &step.op {
        Op::Stop { db, snapshot, tags } => {
            rds::stop_db(aws, kind, db, snapshot.as_deref()).await?;
            let what = match snapshot {
                Some(id) => {
                    progress.created(rds::snapshot_kind(kind), id);
                    "stopping, its snapshot taken first"
                }
                None => "stopping after its snapshot",
            };
            progress.event(&Event::step(stage, db, what));
            let goal = (stage, "stopped");
            rds::wait_db_status(aws, kind, db, goal, wait, progress).await?;
            if let Some(id) = snapshot {
                if !rds::adopt_stop_snapshot(aws, kind, db, id, tags).await? {
                    return Err(Error::StoppedWithoutSnapshot {
                        kind,
                        db: db.clone(),
                        status: "stopped".into(),
                        snapshot: id.clone(),
                    });
                }
            }
        }
        Op::Snapshot { db, id, tags } => {
            let snap = rds::ensure_snapshot(aws, kind, db, id, tags, wait, progress).await?;
            done.snapshots.push(snap);
        }
        Op::Copy {
            source,
            id,
            key,
            option_group,
            tags,
        } => {
            let to = rds::CopyTo {
                id,
                key: key.as_deref(),
                option_group: option_group.as_deref(),
                tags,
            };
            let copy = rds::ensure_copy(aws, kind, source, &to, wait, progress).await?;
            done.snapshots.push(copy);
        }
        Op::Restore(spec) => {
            if rds::describe_db(aws, kind, &spec.id).await?.is_none() {
                rds::restore(aws, kind, spec).await?;
                progress.event(&Event::step(stage, &spec.id, "started"));
                progress.created(rds::database_kind(kind), &spec.id);
            }
            let db = rds::wait_db(aws, kind, &spec.id, stage, wait, progress).await?;
            done.databases.push(db);
        }
        Op::Writer(spec) => rds::ensure_writer(aws, spec, wait, progress).await?,
        Op::Share { id, account } => {
            if !rds::shared_with(aws, kind, id).await?.contains(account) {
                rds::set_shared(aws, kind, id, std::slice::from_ref(account), &[]).await?;
            }
        }
    }
    Ok(())
}
