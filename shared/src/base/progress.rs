//! Progress events and how the agents show them.
//!
//! The library reports what it is doing as [`Event`]s through the [`Progress`] trait; the
//! [`Printer`] renders them for the chosen `--output`: a live spinner on a terminal, plain
//! lines on stderr otherwise, or one JSON object per line on stdout, each with its `event`, a
//! `timestamp` and the `database` it concerns. Data (the manifest path, the next command) goes
//! to stdout, progress to stderr, so text output pipes cleanly.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;

/// One thing that happened.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `step` (a step started or found done), `wait` (a poll), `plan` (dry run), `warning`.
    pub event: &'static str,
    pub stage: String,
    pub resource: String,
    pub status: String,
    pub elapsed_secs: u64,
}

impl Event {
    pub fn step(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("step", stage, resource, status, Duration::ZERO)
    }

    pub fn wait(stage: &str, resource: &str, status: &str, elapsed: Duration) -> Self {
        Self::new("wait", stage, resource, status, elapsed)
    }

    pub fn plan(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("plan", stage, resource, status, Duration::ZERO)
    }

    /// Something the operator should know that does not stop the run.
    pub fn warning(stage: &str, resource: &str, status: &str) -> Self {
        Self::new("warning", stage, resource, status, Duration::ZERO)
    }

    fn new(
        event: &'static str,
        stage: &str,
        resource: &str,
        status: &str,
        elapsed: Duration,
    ) -> Self {
        Self {
            event,
            stage: stage.to_owned(),
            resource: resource.to_owned(),
            status: status.to_owned(),
            elapsed_secs: elapsed.as_secs(),
        }
    }
}

/// Where the library sends its events.
pub trait Progress: Sync {
    fn event(&self, event: &Event);

    /// The stage the run is now in, said before work that may fail before any event (the
    /// key's checks): a failure is reported at the stage it happened in. Prints nothing.
    fn stage(&self, _stage: &str) {}

    /// A resource this run just created (`kind` as in [`crate::base::state`]); recorded in the
    /// run's state file, so `cleanup` finds it whatever happens next.
    fn created(&self, _kind: &str, _id: &str) {}

    /// A request about to be sent whose result AWS lets no retry find (see
    /// [`crate::base::state::State::requested`]); recorded in the run's state file.
    fn requested(&self, _kind: &str, _id: &str) {}

    /// What earlier runs of this handoff recorded as created or requested, of `kind` (empty
    /// without a state file).
    fn recorded(&self, _kind: &str) -> Vec<String> {
        Vec::new()
    }
}

/// Discards events (for callers that only want the result).
pub struct Silent;

impl Progress for Silent {
    fn event(&self, _: &Event) {}
}

/// `--output`, with the AWS CLI's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OutputFormat {
    /// Progress lines on stderr, the result as text on stdout
    #[default]
    #[value(alias = "human")]
    Text,
    /// As `text`, the result as a table
    Table,
    /// One JSON object per line on stdout
    Json,
}

/// Renders events and results for one run; clones share one output.
#[derive(Clone)]
pub struct Printer {
    format: OutputFormat,
    /// On a terminal: the run's spinner, and the lines of a fleet's databases below it.
    multi: Option<MultiProgress>,
    spinner: Option<ProgressBar>,
    lock: Arc<Mutex<()>>,
    /// The database the run concerns, named in every JSON line.
    database: Arc<Mutex<Option<String>>>,
}

fn spinner() -> ProgressBar {
    let bar = ProgressBar::new_spinner();
    if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}") {
        bar.set_style(style);
    }
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// Now, as RFC 3339 in UTC.
pub fn timestamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

impl Printer {
    pub fn new(format: OutputFormat) -> Self {
        let multi = (format != OutputFormat::Json && std::io::stderr().is_terminal())
            .then(MultiProgress::new);
        let spinner = multi.as_ref().map(|multi| multi.add(spinner()));
        Self {
            format,
            multi,
            spinner,
            lock: Arc::new(Mutex::new(())),
            database: Arc::new(Mutex::new(None)),
        }
    }

    pub fn format(&self) -> OutputFormat {
        self.format
    }

    /// Names the database every later JSON line concerns.
    pub fn set_database(&self, database: &str) {
        if let Ok(mut slot) = self.database.lock() {
            *slot = Some(database.to_owned());
        }
    }

    /// `value` with the fields every JSON line carries: `event` (kept if set), `timestamp`,
    /// `database`.
    fn stamped(&self, value: &serde_json::Value, event: &str) -> serde_json::Value {
        let database = self.database.lock().ok().and_then(|d| d.clone());
        stamp(value, event, database.as_deref())
    }

    /// A line of its own for `database` in a fleet run: every event it reports names it.
    pub fn line(&self, database: &str) -> DatabaseLine {
        DatabaseLine {
            printer: self.clone(),
            database: database.to_owned(),
            bar: self.multi.as_ref().map(|multi| multi.add(spinner())),
            stage: Mutex::new(String::new()),
        }
    }

    /// A bar counting a fleet's finished databases (on a terminal).
    pub fn total(&self, databases: usize) -> Option<ProgressBar> {
        let multi = self.multi.as_ref()?;
        let bar = multi.add(ProgressBar::new(databases as u64));
        if let Ok(style) = ProgressStyle::with_template("{bar:30} {pos}/{len} databases done {msg}")
        {
            bar.set_style(style);
        }
        Some(bar)
    }

    fn json_line(&self, value: &serde_json::Value, event: &str, database: Option<&str>) {
        let line = match database {
            Some(database) => stamp(value, event, Some(database)),
            None => self.stamped(value, event),
        };
        self.stdout_line(&line.to_string());
    }

    /// A line for people on stderr, above any live bars.
    fn human(&self, line: &str) {
        match &self.multi {
            Some(multi) => {
                let _ = multi.println(line);
            }
            None => {
                let _ = writeln!(std::io::stderr().lock(), "{line}");
            }
        }
    }

    fn stdout_line(&self, line: &str) {
        // A closed stdout (e.g. `| head`) must not turn a finished run into a failure.
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    }

    /// Prints the run's result: `text` for people (or `json` as a table), `json` for
    /// machines, always on stdout.
    pub fn result(&self, text: &str, json: &serde_json::Value) {
        self.clear();
        let _guard = self.lock.lock();
        match self.format {
            OutputFormat::Text => self.stdout_line(text),
            OutputFormat::Table => self.stdout_line(&table(json)),
            OutputFormat::Json => self.stdout_line(&self.stamped(json, "done").to_string()),
        }
    }

    /// Prints a result whose text is a table already (a fleet's summary): as `text` for
    /// `--output table` too.
    pub fn tabular(&self, text: &str, json: &serde_json::Value) {
        let format = match self.format {
            OutputFormat::Table => OutputFormat::Text,
            other => other,
        };
        Printer {
            format,
            ..self.clone()
        }
        .result(text, json);
    }

    /// Prints an error and its hint: on stderr for people, one JSON line on stdout otherwise.
    pub fn error(&self, message: &str, hint: Option<&str>, exit_code: u8) {
        self.clear();
        let _guard = self.lock.lock();
        match self.format {
            OutputFormat::Json => {
                let json = serde_json::json!({"event": "error", "error": message, "hint": hint, "exit_code": exit_code});
                self.stdout_line(&self.stamped(&json, "error").to_string());
            }
            OutputFormat::Text | OutputFormat::Table => {
                let mut err = std::io::stderr().lock();
                let _ = writeln!(err, "error: {message}");
                if let Some(hint) = hint {
                    let _ = writeln!(err, "\nhint: {hint}");
                }
            }
        }
    }

    /// Removes the spinner before an error or a result is printed.
    pub fn clear(&self) {
        if let Some(bar) = &self.spinner {
            bar.finish_and_clear();
        }
    }
}

/// `value` with the fields every JSON line carries: `event` (kept if set), `timestamp`,
/// `database` (kept if set).
fn stamp(value: &serde_json::Value, event: &str, database: Option<&str>) -> serde_json::Value {
    let mut object = match value {
        serde_json::Value::Object(map) => map.clone(),
        other => serde_json::Map::from_iter([("result".to_owned(), other.clone())]),
    };
    object
        .entry("event")
        .or_insert_with(|| serde_json::Value::from(event));
    object.insert("timestamp".into(), timestamp().into());
    object.entry("database").or_insert_with(|| database.into());
    serde_json::Value::Object(object)
}

/// One database's events in a fleet run: its own live line on a terminal, its name before
/// each plain line and in each JSON line. Remembers the last stage it reached.
pub struct DatabaseLine {
    printer: Printer,
    database: String,
    bar: Option<ProgressBar>,
    stage: Mutex<String>,
}

impl DatabaseLine {
    /// The last stage an event or [`Progress::stage`] reported.
    pub fn reached(&self) -> String {
        self.stage.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reports how this database ended (`done` or `failed`) and removes its live line.
    pub fn finish(&self, event: &str, text: &str, json: &serde_json::Value) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        let _guard = self.printer.lock.lock();
        match self.printer.format {
            OutputFormat::Json => self.printer.json_line(json, event, Some(&self.database)),
            _ => self.printer.human(&format!("{}: {text}", self.database)),
        }
    }
}

impl Progress for DatabaseLine {
    fn stage(&self, stage: &str) {
        if let Ok(mut now) = self.stage.lock() {
            stage.clone_into(&mut now);
        }
    }

    fn event(&self, event: &Event) {
        Progress::stage(self, &event.stage);
        let _guard = self.printer.lock.lock();
        let line = format!("{}: {}", self.database, human_line(event));
        match (self.printer.format, &self.bar) {
            (OutputFormat::Json, _) => {
                let value = serde_json::to_value(event).unwrap_or_default();
                self.printer
                    .json_line(&value, event.event, Some(&self.database));
            }
            (_, Some(bar)) if event.event == "wait" => bar.set_message(line),
            _ => self.printer.human(&line),
        }
    }
}

/// A result as tables, as the AWS CLI's `--output table`: the object's plain fields as a
/// two-column table, keys in order; each list of objects (`handoffs`, `databases`) as a table
/// of its own under its name, a column per field and a row per item, an item's own list of
/// objects (a handoff's `resources`) flattened into a row per entry.
pub fn table(json: &serde_json::Value) -> String {
    use serde_json::Value;
    let Value::Object(map) = json else {
        return boxed(&["result".to_owned()], &[vec![cell(json)]], false);
    };
    let mut plain = Vec::new();
    let mut sections = Vec::new();
    for (key, value) in map.iter().filter(|(key, _)| key.as_str() != "event") {
        match objects(value) {
            Some(items) => sections.push((key, items)),
            None => plain.push(vec![key.clone(), cell(value)]),
        }
    }
    let mut out = Vec::new();
    if !plain.is_empty() {
        out.push(boxed(&[], &plain, false));
    }
    for (key, items) in sections {
        let rows: Vec<serde_json::Map<String, Value>> = items.iter().flat_map(flatten).collect();
        let mut columns: Vec<String> = Vec::new();
        for row in &rows {
            for key in row.keys() {
                if !columns.contains(key) {
                    columns.push(key.clone());
                }
            }
        }
        // What names a row first, then the rest by name.
        columns.sort_by_key(|c| LEADING.iter().position(|l| l == c).unwrap_or(LEADING.len()));
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|row| {
                columns
                    .iter()
                    .map(|c| row.get(c).map_or_else(String::new, cell))
                    .collect()
            })
            .collect();
        out.push(format!("{key}\n{}", boxed(&columns, &cells, true)));
    }
    out.join("\n")
}

/// The columns a table of results starts with, in this order.
const LEADING: &[&str] = &["database", "stage", "kind", "id", "status", "role"];

/// `value` as a list of objects, if it is a non-empty one.
fn objects(value: &serde_json::Value) -> Option<&Vec<serde_json::Value>> {
    value
        .as_array()
        .filter(|items| !items.is_empty() && items.iter().all(serde_json::Value::is_object))
}

/// One item as rows: its plain fields, once per entry of its first list of objects (merged
/// with that entry's own rows), or once if it has none.
fn flatten(item: &serde_json::Value) -> Vec<serde_json::Map<String, serde_json::Value>> {
    let Some(map) = item.as_object() else {
        return Vec::new();
    };
    let nested = map.values().find_map(objects);
    let plain: serde_json::Map<String, serde_json::Value> = map
        .iter()
        .filter(|(_, value)| {
            objects(value).is_none() && value.as_array().is_none_or(|a| !a.is_empty())
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match nested {
        None => vec![plain],
        Some(entries) => entries
            .iter()
            .flat_map(flatten)
            .map(|entry| {
                let mut row = plain.clone();
                row.extend(entry);
                row
            })
            .collect(),
    }
}

/// A value as one cell: text as is, a list joined with commas, nothing as `-`.
fn cell(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

/// Rows in a box, columns padded to their widest cell; `header` (if any) above a rule.
fn boxed(header: &[String], rows: &[Vec<String>], with_header: bool) -> String {
    let columns = rows
        .iter()
        .map(Vec::len)
        .chain([header.len()])
        .max()
        .unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            let header = header.get(i).map_or(0, |h| h.chars().count());
            let cells = rows
                .iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count());
            cells.chain([header]).max().unwrap_or(0)
        })
        .collect();
    let rule = widths
        .iter()
        .map(|w| "-".repeat(w + 2))
        .collect::<Vec<_>>()
        .join("+");
    let rule = format!("+{rule}+");
    let line = |cells: &[String]| {
        let padded: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| format!(" {:<w$} ", cells.get(i).map_or("", String::as_str)))
            .collect();
        format!("|{}|", padded.join("|"))
    };
    let mut lines = vec![rule.clone()];
    if with_header {
        lines.push(line(header));
        lines.push(rule.clone());
    }
    lines.extend(rows.iter().map(|r| line(r)));
    lines.push(rule);
    lines.join("\n")
}

fn human_line(event: &Event) -> String {
    let mut line = format!("{}: {}", event.stage, event.resource);
    if !event.status.is_empty() {
        line.push_str(&format!(" ({})", event.status));
    }
    if event.event == "wait" {
        line = format!("[{:>5}s] {line}", event.elapsed_secs);
    } else if event.event == "plan" {
        line = format!("{:<14} {}: {}", event.status, event.stage, event.resource);
    } else if event.event == "warning" {
        line = format!("warning: {line}");
    }
    line
}

impl Progress for Printer {
    fn event(&self, event: &Event) {
        let _guard = self.lock.lock();
        match (self.format, &self.spinner) {
            (OutputFormat::Json, _) => {
                let value = serde_json::to_value(event).unwrap_or_default();
                self.json_line(&value, event.event, None);
            }
            (_, Some(bar)) if event.event == "wait" => bar.set_message(human_line(event)),
            _ => self.human(&human_line(event)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_for_people() {
        let wait = Event::wait(
            "copy snapshot",
            "DB snapshot s1",
            "copying",
            Duration::from_secs(42),
        );
        assert_eq!(
            human_line(&wait),
            "[   42s] copy snapshot: DB snapshot s1 (copying)"
        );
        let plan = Event::plan("key", "alias/rds-handoff/db1", "create");
        assert_eq!(
            human_line(&plan),
            "create         key: alias/rds-handoff/db1"
        );
    }

    /// A list of objects is a table with a column per field; an item's own list is
    /// flattened, a row per entry: never JSON in a cell.
    #[test]
    fn lists_of_objects_are_tables_with_columns() {
        let json = serde_json::json!({"event": "done", "region": "us-east-1", "handoffs": [
            {"database": "db1", "stage": "shared", "resources": [
                {"kind": "kms-key", "id": "k1", "status": "Enabled"},
                {"kind": "db-snapshot", "id": "s1", "status": "available", "shared_with": ["2"]},
            ]},
            {"database": "db2", "stage": "key made, nothing else", "resources": []},
        ]});
        let text = table(&json);
        assert!(!text.contains('{'), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[1], "| region | us-east-1 |");
        assert_eq!(lines[3], "handoffs");
        let header: Vec<&str> = lines[5]
            .split('|')
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .collect();
        assert_eq!(
            header,
            ["database", "stage", "kind", "id", "status", "shared_with"]
        );
        assert!(lines[7].starts_with("| db1      | shared "), "{text}");
        assert!(
            lines[8].contains("| s1 ") && lines[8].contains("| 2 "),
            "{text}"
        );
        assert!(lines[9].starts_with("| db2 "), "{text}");
    }

    #[test]
    fn tables_for_people() {
        let json = serde_json::json!({"event": "done", "manifest": "db1.handoff.json", "dry_run": false, "removed": ["a", "b"]});
        assert_eq!(
            table(&json),
            "+----------+------------------+\n| dry_run  | false            |\n| manifest | db1.handoff.json |\n| removed  | a, b             |\n+----------+------------------+"
        );
    }

    #[test]
    fn json_lines_carry_event_timestamp_and_database() {
        let printer = Printer::new(OutputFormat::Json);
        printer.set_database("db1");
        let line = printer.stamped(&serde_json::json!({"x": 1}), "done");
        assert_eq!(line["event"], "done");
        assert_eq!(line["database"], "db1");
        assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn json_events_have_stable_fields() {
        let event = Event::wait(
            "copy snapshot",
            "DB snapshot s1",
            "copying",
            Duration::from_secs(3),
        );
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "wait", "stage": "copy snapshot", "resource": "DB snapshot s1", "status": "copying", "elapsed_secs": 3})
        );
    }
}
