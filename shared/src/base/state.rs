//! The state file a run keeps beside its manifest or report: every resource the run
//! creates, recorded the moment it is created and written atomically, whether the run ends
//! well or not. With the toolkit's tags on each resource, it is how `cleanup` finds what an
//! unfinished run left, and how an operator sees what a run made.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::base::manifest::write_atomic;
use crate::base::progress::{timestamp, Event, Progress};

/// One created resource: `kind` is `kms-key`, `db-snapshot`, `db-cluster-snapshot`,
/// `db-instance`, `db-cluster` or `secret`; `id` its identifier or ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub kind: String,
    pub id: String,
    pub created_at: String,
}

/// The file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// `export`, `import` or `encrypt`.
    pub run: String,
    pub database: String,
    pub created: Vec<Created>,
    /// Requests sent that make something AWS gives no idempotency token for (`kms-key-request`:
    /// a `CreateKey`, `id` the key's description), so a run killed before the answer finds
    /// what it made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requested: Vec<Created>,
    /// An export's: where it goes, so that a later run of the same manifest path cannot
    /// hand the database off elsewhere over it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub headed: Option<Headed>,
}

/// Where an export hands its database off: from the database's region, to the target
/// account, its shared copy made in `destination` (the database's region, or the one
/// `--target-region` named).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Headed {
    pub source_region: String,
    pub target_account: String,
    pub destination: String,
}

impl State {
    /// Reads a state file; a missing or unreadable one is an empty state.
    pub fn read(path: &Path) -> Self {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    }
}

/// The state file beside `path` (`orders.handoff.json` → `orders.handoff.state.json`).
pub fn path_beside(path: &Path) -> PathBuf {
    path.with_extension("state.json")
}

/// Passes events on and records every creation in the state file.
pub struct Recorder<'a> {
    path: PathBuf,
    state: Mutex<State>,
    inner: &'a dyn Progress,
}

impl<'a> Recorder<'a> {
    /// Records into `path`, keeping what earlier runs recorded there.
    pub fn new(path: PathBuf, run: &str, database: &str, inner: &'a dyn Progress) -> Self {
        let mut state = State::read(&path);
        state.run = run.to_owned();
        state.database = database.to_owned();
        Self {
            path,
            state: Mutex::new(state),
            inner,
        }
    }

    /// Records, with the first resource, where the run hands its database off.
    pub fn headed(self, headed: Headed) -> Self {
        if let Ok(mut state) = self.state.lock() {
            state.headed = Some(headed);
        }
        self
    }
}

impl Progress for Recorder<'_> {
    fn event(&self, event: &Event) {
        self.inner.event(event);
    }

    fn stage(&self, stage: &str) {
        self.inner.stage(stage);
    }

    fn recorded(&self, kind: &str) -> Vec<String> {
        let Ok(state) = self.state.lock() else {
            return Vec::new();
        };
        state
            .created
            .iter()
            .chain(&state.requested)
            .filter(|c| c.kind == kind)
            .map(|c| c.id.clone())
            .collect()
    }

    fn created(&self, kind: &str, id: &str) {
        self.record(|state| &mut state.created, kind, id);
    }

    fn requested(&self, kind: &str, id: &str) {
        self.record(|state| &mut state.requested, kind, id);
    }
}

impl Recorder<'_> {
    /// Adds one entry to `list` of the state, and writes the file.
    fn record(&self, list: fn(&mut State) -> &mut Vec<Created>, kind: &str, id: &str) {
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        let entries = list(&mut state);
        if entries.iter().any(|c| c.kind == kind && c.id == id) {
            return;
        }
        entries.push(Created {
            kind: kind.to_owned(),
            id: id.to_owned(),
            created_at: timestamp(),
        });
        let written = serde_json::to_string_pretty(&*state)
            .map_err(|e| e.to_string())
            .and_then(|text| write_atomic(&self.path, text.as_bytes()).map_err(|e| e.to_string()));
        if let Err(err) = written {
            let shown = self.path.display().to_string();
            let status = format!("not recorded ({err}); the resource carries the toolkit's tags");
            self.inner
                .event(&Event::warning("state file", &shown, &status));
        }
    }
}
