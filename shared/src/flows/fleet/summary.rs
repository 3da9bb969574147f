//! How a fleet run ends: each database's [`Outcome`], and the [`Summary`] of them all (a
//! table for people, the outcomes for machines) that the fleet's export and import return.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

use super::{Done, Member};
use crate::aws::budget::Report;
use crate::base::error::{Error, ExitCode};
use crate::base::vocabulary::DbKind;

/// How one database of a fleet ended.
#[derive(Debug, Serialize)]
pub struct Outcome {
    pub database: String,
    pub kind: DbKind,
    /// The last stage it reached.
    pub stage: String,
    /// `exported`, `already exported`, `imported`, … or `failed`.
    pub result: String,
    pub error: Option<String>,
    pub hint: Option<String>,
    pub elapsed_secs: u64,
    /// The manifest or report it wrote, and its SHA-256 (manifests).
    pub file: Option<String>,
    pub sha256: Option<String>,
    /// With `--detach`: the Step Functions execution that goes on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution: Option<String>,
}

impl Outcome {
    /// How `member` ended: at `stage`, after `elapsed`, with `result`.
    pub(super) fn of(
        member: &Member,
        stage: String,
        elapsed: Duration,
        result: crate::Result<Done>,
    ) -> Self {
        let mut outcome = Outcome {
            database: member.id.clone(),
            kind: member.kind,
            stage,
            result: "failed".into(),
            error: None,
            hint: None,
            elapsed_secs: elapsed.as_secs(),
            file: None,
            sha256: None,
            execution: None,
        };
        match result {
            Ok(done) => {
                outcome.result = done.result.into();
                outcome.file = done.file;
                outcome.sha256 = done.sha256;
            }
            Err(Error::Detached { execution, .. }) => {
                outcome.result = "detached".into();
                outcome.execution = Some(execution);
            }
            Err(err) => {
                outcome.error = Some(err.to_string());
                outcome.hint = err.hint();
            }
        }
        outcome
    }

    pub fn failed(&self) -> bool {
        self.error.is_some()
    }
}

/// The summary a fleet run ends with: a table for people, the outcomes for machines.
pub struct Summary {
    pub outcomes: Vec<Outcome>,
    /// Extra lines after the table (the index, the next command).
    pub after: Vec<String>,
    pub json: serde_json::Value,
    /// A dry run: nothing was changed, so nothing is left "to finish".
    pub dry_run: bool,
    /// What the run sent to each service, against its budget.
    pub requests: Vec<Report>,
}

impl Summary {
    /// Exit code: [`ExitCode::Partial`] when any database failed.
    pub fn exit_code(&self) -> ExitCode {
        if self.outcomes.iter().any(Outcome::failed) {
            ExitCode::Partial
        } else {
            ExitCode::Ok
        }
    }

    /// The table: database, kind, stage reached, result, elapsed; then each failure's hint.
    pub fn text(&self) -> String {
        let mut rows = vec![[
            "DATABASE".to_owned(),
            "KIND".into(),
            "STAGE".into(),
            "RESULT".into(),
            "ELAPSED".into(),
        ]];
        rows.extend(self.outcomes.iter().map(|o| {
            [
                o.database.clone(),
                format!("{:?}", o.kind).to_lowercase(),
                o.stage.clone(),
                o.error
                    .as_ref()
                    .map_or_else(|| o.result.clone(), |e| format!("failed: {e}")),
                humantime::format_duration(Duration::from_secs(o.elapsed_secs)).to_string(),
            ]
        }));
        let widths: Vec<usize> = (0..4)
            .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
            .collect();
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| {
                format!(
                    "{:<w0$}  {:<w1$}  {:<w2$}  {:<w3$}  {}",
                    r[0],
                    r[1],
                    r[2],
                    r[3],
                    r[4],
                    w0 = widths[0],
                    w1 = widths[1],
                    w2 = widths[2],
                    w3 = widths[3]
                )
                .trim_end()
                .to_owned()
            })
            .collect();
        let failed = self.outcomes.iter().filter(|o| o.failed()).count();
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for o in &self.outcomes {
            *counts.entry(o.result.as_str()).or_default() += 1;
        }
        let counts: Vec<String> = counts.iter().map(|(r, n)| format!("{n} {r}")).collect();
        lines.push(String::new());
        lines.push(format!(
            "{} databases: {}",
            self.outcomes.len(),
            counts.join(", ")
        ));
        lines.extend(self.requests.iter().map(requests_line));
        for o in self.outcomes.iter().filter(|o| o.hint.is_some()) {
            lines.push(format!(
                "hint for {}: {}",
                o.database,
                o.hint.as_deref().unwrap_or_default()
            ));
        }
        if failed > 0 && self.dry_run {
            lines.push("fix what the failures say, then run the dry run again".into());
        } else if failed > 0 {
            lines.push(
                "re-run the same command to finish the rest: what is done is not done again".into(),
            );
        }
        let detached: std::collections::BTreeSet<&str> = self
            .outcomes
            .iter()
            .filter_map(|o| o.execution.as_deref())
            .collect();
        for execution in detached {
            lines.push(format!("execution going on: {execution}\n  follow it with `status --execution {execution}`; once it has succeeded, the same command again finishes the run"));
        }
        lines.extend(self.after.iter().cloned());
        lines.join("\n")
    }
}

/// `requests to rds: 2130, at most 150 in a second and 6.0/s over any minute (budget: 150,
/// then 6/s), 0 throttled`.
fn requests_line(report: &Report) -> String {
    let region = report.region.as_deref().map(|r| format!(" in {r}"));
    format!(
        "requests to {}{}: {}, at most {} in a second and {:.1}/s over any minute (budget: {}, then {}/s), {} throttled",
        report.service,
        region.unwrap_or_default(),
        report.requests,
        report.peak_per_second,
        report.peak_per_second_over_a_minute,
        report.budget.burst,
        report.budget.per_second,
        report.throttles
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(database: &str, error: Option<&str>) -> Outcome {
        Outcome {
            database: database.into(),
            kind: DbKind::Instance,
            stage: "copy".into(),
            result: if error.is_some() {
                "failed"
            } else {
                "exported"
            }
            .into(),
            error: error.map(str::to_owned),
            hint: error.map(|_| "start it".to_owned()),
            elapsed_secs: 61,
            file: None,
            sha256: None,
            execution: None,
        }
    }

    #[test]
    fn the_summary_names_each_database_and_says_some_failed() {
        let summary = Summary {
            outcomes: vec![outcome("a", None), outcome("bb", Some("it is stopped"))],
            after: vec!["index: x".into()],
            json: serde_json::Value::Null,
            dry_run: false,
            requests: vec![Report {
                service: "rds",
                requests: 40,
                throttles: 2,
                peak_per_second: 30,
                peak_per_second_over_a_minute: 0.7,
                budget: crate::aws::budget::Rate::RDS,
                ..Report::default()
            }],
        };
        assert_eq!(summary.exit_code(), ExitCode::Partial);
        let text = summary.text();
        assert!(
            text.starts_with("DATABASE  KIND      STAGE  RESULT"),
            "{text}"
        );
        assert!(text.contains("bb        instance  copy   failed: it is stopped  1m 1s"));
        assert!(text.contains("2 databases: 1 exported, 1 failed"), "{text}");
        assert!(text.contains("hint for bb: start it"));
        assert!(text.ends_with("index: x"));
        assert!(
            text.contains("requests to rds: 40, at most 30 in a second and 0.7/s over any minute (budget: 150, then 6/s), 2 throttled"),
            "{text}"
        );
        let ok = Summary {
            outcomes: vec![outcome("a", None)],
            after: vec![],
            json: serde_json::Value::Null,
            dry_run: true,
            requests: vec![],
        };
        assert_eq!(ok.exit_code(), ExitCode::Ok);
    }
}
