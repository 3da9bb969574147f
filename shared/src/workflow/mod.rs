//! The long part of each workflow, described once as an ordered list of steps.
//!
//! A workflow (export, import, encrypt) is a fixed list of [`Slot`]s: what each step
//! creates, how it finds an earlier try's result, what it waits for. A run fills the
//! slots that apply to it with [`Step`]s (the values: names, key, tags). Three readers:
//! - [`local`]: the local engine runs the steps in this process;
//! - [`asl`]: the compiler turns the slots into Amazon States Language, and [`states`]
//!   runs that state machine on AWS Step Functions with the steps as its input.
//!
//! What needs judgement or secrets (identity, the manifest's verification, preflight, the
//! key and its policy, ownership checks before a delete, the password) stays in the
//! agents, before and after the steps, whichever engine runs them.

pub mod asl;
pub mod batch;
pub mod local;
pub mod states;
mod step;

use crate::aws::wait::WaitPolicy;
use crate::aws::Aws;
use crate::base::error::Result;
use crate::base::progress::Progress;
use crate::base::vocabulary::{
    DbKind, TAG_DB, TAG_ENCRYPTED_FROM, TAG_ROLE, TAG_SOURCE_SNAPSHOT, TAG_TARGET,
};

pub use batch::Batch;
pub use local::Done;
pub use states::{Engine, EngineArgs};
pub use step::{find_param, Op, Step};

/// Runs one database's steps on the engine the operator chose.
pub async fn run(
    aws: &Aws,
    engine: &EngineArgs,
    workflow: Workflow,
    database: &str,
    steps: &[Step],
    wait: WaitPolicy,
    progress: &dyn Progress,
) -> Result<Done> {
    match engine.engine {
        Engine::Local => local::run(aws, steps, wait, progress).await,
        Engine::StepFunctions => {
            refuse_other_regions(steps)?;
            states::run(aws, engine, workflow, database, steps, wait, progress).await?;
            add_user_tags(aws, steps, progress).await;
            Ok(Done::default())
        }
    }
}

/// A state machine calls AWS in its own region only (its AWS SDK integrations take no
/// region): steps in another region run on the local engine.
pub fn refuse_other_regions(steps: &[Step]) -> Result<()> {
    let elsewhere = steps.iter().find_map(|s| s.region.as_ref());
    refuse_state_machine_in(Engine::StepFunctions, elsewhere)
}

/// Refuses `engine` for a handoff with steps in another `region`: what an export with
/// `--target-region` checks before anything is made, and [`run`] again before it starts.
pub fn refuse_state_machine_in(
    engine: Engine,
    region: Option<&crate::ident::Region>,
) -> Result<()> {
    let (Engine::StepFunctions, Some(region)) = (engine, region) else {
        return Ok(());
    };
    Err(crate::base::error::Error::Usage {
        message: format!(
            "a copy into `{region}` is made by calling RDS in `{region}`, and a state machine calls AWS only in its own region (its AWS SDK integrations take no region)"
        ),
        hint: Some("run a cross-region handoff with `--engine local` (the default)".into()),
    })
}

/// Gives the databases an execution made the operator's tags, which its state machine does
/// not write (it writes only the toolkit's): the agent adds them, with its own rights.
async fn add_user_tags(aws: &Aws, steps: &[Step], progress: &dyn Progress) {
    for step in steps
        .iter()
        .filter(|s| matches!(s.op, Op::Restore(_) | Op::Writer(_)))
    {
        let (kind, id) = (step.resource_kind(), step.resource());
        let tags = step.user_tags();
        add_tags(aws, kind, id, &tags, &step.marks_resent(), progress).await;
    }
}

/// Adds to database `id` each of `tags` it lacks, `along` sent with them; a refusal is a
/// warning that says what to add: the database is made, and what follows (its new master
/// password above all) must not wait on a tag.
pub async fn add_tags(
    aws: &Aws,
    kind: DbKind,
    id: &str,
    tags: &std::collections::BTreeMap<String, String>,
    along: &std::collections::BTreeMap<String, String>,
    progress: &dyn Progress,
) {
    use crate::base::progress::Event;
    if tags.is_empty() {
        return;
    }
    let stage = "tags";
    match crate::aws::rds::add_missing_tags(aws, kind, id, tags, along).await {
        Ok(added) if added.is_empty() => {}
        Ok(added) => progress.event(&Event::step(
            stage,
            id,
            &format!("added {}", added.join(", ")),
        )),
        Err(err) => {
            let keys: Vec<&str> = tags.keys().map(String::as_str).collect();
            let what = format!(
                "the original's tags ({}) were not added: {err}; add them with `aws rds add-tags-to-resource`",
                keys.join(", ")
            );
            progress.event(&Event::warning(stage, id, &what));
        }
    }
}

/// The three workflows that have a long part.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workflow {
    Export,
    Import,
    Encrypt,
}

impl Workflow {
    pub const ALL: [Workflow; 3] = [Self::Export, Self::Import, Self::Encrypt];

    pub fn name(self) -> &'static str {
        match self {
            Self::Export => "export",
            Self::Import => "import",
            Self::Encrypt => "encrypt",
        }
    }

    /// The state machine's name in the account.
    pub fn state_machine(self) -> String {
        format!("rds-handoff-{}", self.name())
    }

    /// The workflow's steps, in order.
    pub fn slots(self) -> &'static [Slot] {
        match self {
            Self::Export => EXPORT,
            Self::Import => IMPORT,
            Self::Encrypt => ENCRYPT,
        }
    }

    /// The slot named `name`: every step of a run is one of its workflow's slots.
    pub fn slot(self, name: &str) -> &'static Slot {
        self.slots()
            .iter()
            .find(|s| s.name == name)
            .unwrap_or(&UNKNOWN)
    }
}

/// What kind of AWS operation a step performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpKind {
    /// Stop the database (an instance with the snapshot AWS takes just before), wait until
    /// `stopped`.
    Stop,
    /// Snapshot a database, wait until `available`.
    Snapshot,
    /// Copy a snapshot (under a key), wait until `available`.
    Copy,
    /// Restore a database from a snapshot, wait until `available`.
    Restore,
    /// Create a cluster's writer instance, wait until `available`.
    Writer,
    /// Add an account to a snapshot's `restore` attribute (nothing to wait for).
    Share,
}

/// One step of a workflow, whatever the run: its name, what it does, for which kinds.
#[derive(Debug, PartialEq, Eq)]
pub struct Slot {
    /// The step's name in the state machine (`Snapshot`, `Copy`, …).
    pub name: &'static str,
    /// The stage its progress events carry.
    pub stage: &'static str,
    pub op: OpKind,
    /// The kinds of database whose workflow has this step.
    pub kinds: &'static [DbKind],
    /// The toolkit's tags its create call gives what it makes.
    pub marks: &'static [Mark],
}

/// One of the toolkit's tags a step gives what it makes. Its key, and its value where it does
/// not vary (a role, an export's target), are written in the state machine's definition: no
/// execution input can choose which of the toolkit's tags a step gives, nor a role of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A tag whose value the run computed (the database, the shared snapshot's ARN).
    Run(&'static str),
    /// `rds-handoff:role`, with this value.
    Role(&'static str),
    /// `rds-handoff:target-account`: the account of the export's state machine.
    Target,
}

impl Mark {
    /// The tag's key.
    pub fn key(self) -> &'static str {
        match self {
            Self::Run(key) => key,
            Self::Role(_) => TAG_ROLE,
            Self::Target => TAG_TARGET,
        }
    }
}

const BOTH: &[DbKind] = &[DbKind::Instance, DbKind::Cluster];
const CLUSTER: &[DbKind] = &[DbKind::Cluster];
const INSTANCE: &[DbKind] = &[DbKind::Instance];

const fn slot(
    name: &'static str,
    stage: &'static str,
    op: OpKind,
    kinds: &'static [DbKind],
    marks: &'static [Mark],
) -> Slot {
    Slot {
        name,
        stage,
        op,
        kinds,
        marks,
    }
}

const UNKNOWN: Slot = slot("Unknown", "unknown", OpKind::Share, &[], &[]);

/// An export's marks: the database, the target account, the role.
const fn exported(role: &'static str) -> [Mark; 3] {
    [Mark::Run(TAG_DB), Mark::Target, Mark::Role(role)]
}

/// An import's marks: the database, the shared snapshot, the role.
const fn imported(role: &'static str) -> [Mark; 3] {
    [
        Mark::Run(TAG_DB),
        Mark::Run(TAG_SOURCE_SNAPSHOT),
        Mark::Role(role),
    ]
}

/// An encrypt's marks: the database, the role.
const fn encrypting(role: &'static str) -> [Mark; 2] {
    [Mark::Run(TAG_DB), Mark::Role(role)]
}

/// Export: (stop an instance, AWS snapshotting it just before,) snapshot, copy under the
/// shared key (or, for an unencrypted cluster, restore a temporary cluster under the key and
/// snapshot it), share with the target.
const EXPORT: &[Slot] = &[
    slot("Stop", "stop source", OpKind::Stop, INSTANCE, &[]),
    slot(
        "Snapshot",
        "snapshot",
        OpKind::Snapshot,
        BOTH,
        &exported("intermediate"),
    ),
    slot(
        "TempCluster",
        "temporary cluster",
        OpKind::Restore,
        CLUSTER,
        &exported("temporary-cluster"),
    ),
    slot("Copy", "copy", OpKind::Copy, BOTH, &exported("shared-copy")),
    slot(
        "TempSnapshot",
        "encrypted snapshot",
        OpKind::Snapshot,
        CLUSTER,
        &exported("shared-copy"),
    ),
    slot("Share", "share", OpKind::Share, BOTH, &[]),
];

/// Import: copy the shared snapshot under our key, restore, add a cluster's writer.
const IMPORT: &[Slot] = &[
    slot(
        "Copy",
        "copy",
        OpKind::Copy,
        BOTH,
        &imported("intermediate"),
    ),
    slot(
        "Restore",
        "restore",
        OpKind::Restore,
        BOTH,
        &imported("restored-database"),
    ),
    slot(
        "Writer",
        "writer instance",
        OpKind::Writer,
        CLUSTER,
        &imported("writer-instance"),
    ),
];

/// Encrypt: (stop an instance, AWS snapshotting it just before,) snapshot, (stop a cluster
/// once its snapshot is available,) copy an instance's snapshot under the key, restore the
/// encrypted twin, recreate a cluster's writer. AWS snapshots no stopped database.
const ENCRYPT: &[Slot] = &[
    slot("Stop", "stop source", OpKind::Stop, INSTANCE, &[]),
    slot(
        "Snapshot",
        "snapshot",
        OpKind::Snapshot,
        BOTH,
        &encrypting("intermediate"),
    ),
    slot(
        "StopAfterSnapshot",
        "stop source",
        OpKind::Stop,
        CLUSTER,
        &[],
    ),
    slot(
        "Copy",
        "copy",
        OpKind::Copy,
        INSTANCE,
        &encrypting("intermediate"),
    ),
    // The twin is the operator's database, not the toolkit's: it carries no role.
    slot(
        "Restore",
        "restore",
        OpKind::Restore,
        BOTH,
        &[Mark::Run(TAG_ENCRYPTED_FROM)],
    ),
    slot(
        "Writer",
        "writer instance",
        OpKind::Writer,
        CLUSTER,
        &encrypting("writer-instance"),
    ),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_slot_name_is_unique_within_its_workflow() {
        for workflow in Workflow::ALL {
            let names: std::collections::BTreeSet<_> =
                workflow.slots().iter().map(|s| s.name).collect();
            assert_eq!(names.len(), workflow.slots().len(), "{workflow:?}");
        }
    }

    /// Every step name the agents build a step with is a slot of its workflow: an unknown
    /// name would be a step the state machine never runs.
    #[test]
    fn the_agents_build_steps_only_from_their_workflows_slots() {
        let flows = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/flows");
        for (file, workflow) in [
            ("export", Workflow::Export),
            ("import", Workflow::Import),
            ("encrypt", Workflow::Encrypt),
        ] {
            // The flow's folder, every file of it.
            let text: String = std::fs::read_dir(flows.join(file))
                .unwrap()
                .map(|entry| std::fs::read_to_string(entry.unwrap().path()).unwrap())
                .collect();
            // The builders' own `step(` closure, not `plan::step(` or `Event::step(`.
            let names: Vec<&str> = text
                .match_indices("step(")
                .filter(|(at, _)| !text[..*at].ends_with(':'))
                .filter_map(|(at, _)| {
                    text[at + 5..]
                        .trim_start()
                        .strip_prefix('"')?
                        .split('"')
                        .next()
                })
                .collect();
            assert!(!names.is_empty(), "{file} builds no step");
            for name in names {
                assert_ne!(
                    workflow.slot(name),
                    &UNKNOWN,
                    "{file}: `{name}` is no slot of {workflow:?}"
                );
            }
        }
    }
}
