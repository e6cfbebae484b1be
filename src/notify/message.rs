//! What a message says: one per changing command (a pass's is written by discovery's notice,
//! which uses this layer as every command does).
//! Operators read it on a phone: what moved, from and to, the downtime, what failed and the
//! state each service is left in, the backups taken. Every text is scrubbed of secrets.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::plan::{Kind, Plan};
use crate::run::journal::Outcome;
use crate::run::RunReport;
use crate::secrets;

/// How much a message matters; a URL's level takes those at or above its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Nothing moved.
    Quiet,
    /// Something moved, and all went well.
    Success,
    /// Something failed: rolled back, refused, a host not read, or left needing a person.
    Failure,
}

impl Severity {
    /// The `type` Apprise's JSON and API use.
    pub fn apprise_type(self) -> &'static str {
        match self {
            Severity::Quiet => "info",
            Severity::Success => "success",
            Severity::Failure => "failure",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Message {
    pub title: String,
    /// One line per container, then what else there is to know.
    pub lines: Vec<String>,
    pub severity: Severity,
    /// The results as `auto --json` tells them, for receivers that read JSON.
    pub results: serde_json::Value,
    pub started_at: SystemTime,
}

impl Message {
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// A run of `upgrade`, `rollback`, `backup`, `restore` or `task` on `host`.
    pub fn of_run(host: &str, plan: &Plan, report: &RunReport, started_at: SystemTime) -> Message {
        let what = match (&plan.kind, &plan.task) {
            (Kind::Task, Some(task)) => format!("task {task}"),
            (kind, _) => kind.word().to_string(),
        };
        let moved = match plan.image_from == plan.image_to {
            true => plan.image_from.clone(),
            false => format!("{} -> {}", plan.image_from, plan.image_to),
        };
        let (verdict, severity) = match report.outcome {
            Outcome::Succeeded => ("done".to_string(), Severity::Success),
            Outcome::RolledBack => ("failed and was rolled back".to_string(), Severity::Failure),
            Outcome::NothingChanged => (
                "failed before any downtime, nothing changed".to_string(),
                Severity::Failure,
            ),
            Outcome::Partial => (
                format!("went part of the way: {} hop(s) done", report.stages_done),
                Severity::Failure,
            ),
            Outcome::NeedsAttention | Outcome::KeptNew => {
                ("NEEDS ATTENTION".to_string(), Severity::Failure)
            }
        };
        let mut lines = vec![format!("{}: {moved}: {verdict}", plan.container)];
        lines.extend(report.failure.iter().map(|f| format!("why: {f}")));
        lines.extend(
            report
                .undo_failures
                .iter()
                .map(|u| format!("not put back: {u}")),
        );
        lines.push(format!("runs {}", report.running));
        lines.extend(report.downtime_ms.map(|ms| format!("down {}", seconds(ms))));
        lines.extend(backups(report).into_iter().map(|b| format!("backup {b}")));
        lines.extend(report.restored.iter().map(|r| format!("restored {r}")));
        lines.extend(report.warnings.iter().map(|w| format!("warning: {w}")));
        let result = json!({
            "container": plan.container,
            "from": plan.image_from,
            "to": plan.image_to,
            "result": report.outcome,
            "downtime_ms": report.downtime_ms,
            "message": report.failure.clone().unwrap_or_else(|| "done".into()),
        });
        Message::new(
            format!("cutover {what} {} on {host}: {verdict}", plan.container),
            lines,
            severity,
            json!([result]),
            started_at,
        )
    }

    /// A command that stopped with an error before it could report a run.
    pub fn of_error(host: &str, what: &str, error: &str, started_at: SystemTime) -> Message {
        Message::new(
            format!("cutover {what} on {host}: failed"),
            vec![error.to_string()],
            Severity::Failure,
            json!([]),
            started_at,
        )
    }

    /// Every text scrubbed of secrets, whatever fed it.
    pub fn new(
        title: String,
        lines: Vec<String>,
        severity: Severity,
        results: serde_json::Value,
        started_at: SystemTime,
    ) -> Message {
        Message {
            title: secrets::redact(&title),
            lines: lines.iter().map(|l| secrets::redact(l)).collect(),
            severity,
            results: secrets::redact_json(&results),
            started_at,
        }
    }
}

/// The backups a run took, as its backup steps told them.
pub fn backups(report: &RunReport) -> Vec<String> {
    report
        .steps
        .iter()
        .filter(|s| s.step == "backup" && s.status != crate::run::runner::StepStatus::NotRun)
        .filter_map(|s| s.detail.clone())
        .collect()
}

/// A duration as people read it.
pub fn seconds(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}
