//! A fleet's databases as one execution: a Map over them whose `MaxConcurrency` is the
//! account's copy quota, so the quota holds without this process.
//!
//! Each database's run does its own checks, then hands its steps to the batch (or leaves
//! it, when it has none or failed before). When every database of the batch has, the last
//! one to arrive starts the execution (or attaches to it: its name is the set's hash), and
//! each follows its own item of it, as a single run follows its own execution.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::watch;

use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::{Error, Result};
use crate::base::progress::Progress;

use super::states::{self, EngineArgs};
use super::{Step, Workflow};

/// One execution gathered from several databases' runs.
#[derive(Debug)]
pub struct Batch {
    workflow: Workflow,
    max_concurrency: usize,
    gather: Mutex<Gather>,
    /// The execution's ARN once started, or why it could not start.
    started: watch::Sender<Option<std::result::Result<String, String>>>,
}

#[derive(Debug, Default)]
struct Gather {
    /// Databases that have neither handed in their steps nor left.
    waiting: BTreeSet<String>,
    /// The items handed in, by database.
    items: Vec<Arrived>,
}

/// One database's part of the execution: its item of the input, and the steps it is made of.
#[derive(Debug)]
struct Arrived {
    database: String,
    item: Value,
    steps: Vec<Step>,
}

impl Batch {
    /// A batch of `databases` running `workflow`, at most `max_concurrency` at once.
    pub fn new(
        workflow: Workflow,
        databases: impl IntoIterator<Item = String>,
        max_concurrency: usize,
    ) -> Arc<Batch> {
        Arc::new(Batch {
            workflow,
            max_concurrency,
            gather: Mutex::new(Gather {
                waiting: databases.into_iter().collect(),
                items: Vec::new(),
            }),
            started: watch::Sender::new(None),
        })
    }

    /// Hands in `database`'s steps, waits for the execution, and follows its item.
    pub async fn run(
        &self,
        aws: &Aws,
        args: &EngineArgs,
        database: &str,
        steps: &[Step],
        wait: WaitPolicy,
        progress: &dyn Progress,
    ) -> Result<()> {
        if steps.is_empty() {
            self.leave(aws, args, database, progress).await;
            return Ok(());
        }
        let item = match states::item(database, steps, args.poll_interval) {
            Ok(item) => item,
            Err(e) => {
                self.leave(aws, args, database, progress).await;
                return Err(e);
            }
        };
        let arrived = Arrived {
            database: database.to_owned(),
            item,
            steps: steps.to_vec(),
        };
        if let Some(items) = self.arrive(database, Some(arrived)) {
            self.start(aws, args, items, progress).await;
        }
        let execution = self.execution().await?;
        states::finish(aws, args, &execution, database, steps, wait, progress).await
    }

    /// `database` will hand in no steps (it had none, or its run ended before them).
    pub async fn leave(
        &self,
        aws: &Aws,
        args: &EngineArgs,
        database: &str,
        progress: &dyn Progress,
    ) {
        if let Some(items) = self.arrive(database, None) {
            self.start(aws, args, items, progress).await;
        }
    }

    /// Counts `database` in; the items, once the last one has come.
    fn arrive(&self, database: &str, item: Option<Arrived>) -> Option<Vec<Arrived>> {
        let mut gather = self.gather.lock().unwrap_or_else(|e| e.into_inner());
        if !gather.waiting.remove(database) {
            return None;
        }
        if let Some(item) = item {
            gather.items.push(item);
        }
        gather
            .waiting
            .is_empty()
            .then(|| std::mem::take(&mut gather.items))
    }

    /// Starts (or attaches to) the execution of `items` and tells every database.
    async fn start(
        &self,
        aws: &Aws,
        args: &EngineArgs,
        mut items: Vec<Arrived>,
        progress: &dyn Progress,
    ) {
        if items.is_empty() {
            return;
        }
        items.sort_by(|a, b| a.database.cmp(&b.database));
        let started = async {
            let all: Vec<Step> = items.iter().flat_map(|a| a.steps.clone()).collect();
            let role = states::role(args)?;
            let machine = states::ensure_machine(aws, self.workflow, &all, role, progress).await?;
            let name = execution_name(&items);
            let runs: Vec<&[Step]> = items.iter().map(|a| a.steps.as_slice()).collect();
            let input = states::input(
                items.iter().map(|a| a.item.clone()).collect(),
                &runs,
                self.max_concurrency,
            )?;
            states::attach_or_start(aws, &machine, &name, &input, &runs, progress).await
        };
        let started = started.await.map_err(|e: Error| match e.hint() {
            Some(hint) => format!("{e} ({hint})"),
            None => e.to_string(),
        });
        self.started.send_replace(Some(started));
    }

    /// The execution's ARN, once the last database has come.
    async fn execution(&self) -> Result<String> {
        let mut started = self.started.subscribe();
        let found = started
            .wait_for(Option::is_some)
            .await
            .map_err(|_| Error::Interrupted)?
            .clone();
        match found {
            Some(Ok(arn)) => Ok(arn),
            Some(Err(why)) => Err(Error::refused(
                format!("the fleet's Step Functions execution did not start: {why}"),
                "fix the cause, then re-run the same command",
            )),
            None => Err(Error::Interrupted),
        }
    }
}

/// `fleet-<16 hex of the SHA-256 of the databases' names and run keys>`: the same run of
/// the same databases, the same execution, so the same command run again attaches to it.
fn execution_name(items: &[Arrived]) -> String {
    let runs: Vec<String> = items
        .iter()
        .map(|a| format!("{} {}", a.database, states::run_key(&a.steps)))
        .collect();
    let digest = crate::base::manifest::fingerprint(runs.join("\n").as_bytes());
    format!("fleet-{}", &digest[..16])
}
