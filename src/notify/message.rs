//! What a message says: one per `auto` pass (or rolling `upgrade`), one per changing command.
//! Operators read it on a phone: what moved, from and to, the downtime, what failed and the
//! state each service is left in, the backups taken. Every text is scrubbed of secrets.

use std::time::{Duration, SystemTime};

use serde_json::json;

use crate::discover::auto::{PassOutcome, PassReport, PassResult};
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

    /// A pass of `command` (`auto`, or the rolling `upgrade` of several containers) on `host`.
    pub fn of_pass(command: &str, host: &str, report: &PassReport) -> Message {
        let counts: Vec<(PassOutcome, usize)> = PassOutcome::ALL
            .into_iter()
            .map(|o| (o, report.results.iter().filter(|r| r.result == o).count()))
            .filter(|(_, n)| *n > 0)
            .collect();
        let summary = match counts.is_empty() {
            true => format!("nothing to upgrade, {} checked", report.checked.len()),
            false => counts
                .iter()
                .map(|(o, n)| format!("{n} {}", said(*o)))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let mut lines: Vec<String> = report.results.iter().map(line).collect();
        lines.extend(
            report
                .unreached
                .iter()
                .map(|u| format!("host {} was not read: {}", u.host, u.error)),
        );
        let severity = match (report.failed(), report.upgraded()) {
            (true, _) => Severity::Failure,
            (false, 0) => Severity::Quiet,
            (false, _) => Severity::Success,
        };
        Message::new(
            format!("cutover {command} on {host}: {summary}"),
            lines,
            severity,
            json!(report.results),
            report.started_at,
        )
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
    fn new(
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

fn said(outcome: PassOutcome) -> &'static str {
    match outcome {
        PassOutcome::Upgraded => "upgraded",
        PassOutcome::RolledBack => "rolled back",
        PassOutcome::Partial => "part of the way",
        PassOutcome::NothingChanged => "failed before any downtime",
        PassOutcome::NeedsAttention => "NEED ATTENTION",
        PassOutcome::Refused => "refused",
        PassOutcome::NotAttempted => "not attempted",
    }
}

/// A container's line: from and to, what happened, the state it is left in.
fn line(r: &PassResult) -> String {
    let moved = format!("{} -> {}", r.from, r.to);
    let down = r
        .downtime_ms
        .map(|ms| format!(", down {}", seconds(ms)))
        .unwrap_or_default();
    let mut text = match r.result {
        PassOutcome::Upgraded => format!("{moved}: upgraded{down}; runs {}", r.to),
        PassOutcome::RolledBack => format!(
            "{moved}: failed and was rolled back{down}: {}; runs {} again",
            r.message, r.from
        ),
        PassOutcome::NothingChanged => format!(
            "{moved}: failed before any downtime: {}; runs {}, untouched",
            r.message, r.from
        ),
        PassOutcome::Partial => format!("{moved}: went part of the way{down}: {}", r.message),
        PassOutcome::NeedsAttention => format!("{moved}: NEEDS ATTENTION{down}: {}", r.message),
        PassOutcome::Refused => format!("{moved}: refused: {}; untouched", r.message),
        PassOutcome::NotAttempted => {
            format!("{moved}: not attempted: {}; runs {}", r.message, r.from)
        }
    };
    for b in &r.backups {
        text.push_str(&format!("; backup {b}"));
    }
    format!("{}: {text}", r.container)
}

fn seconds(ms: u64) -> String {
    humantime::format_duration(Duration::from_millis(ms)).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discover::check::Status;

    fn result(name: &str, result: PassOutcome, message: &str) -> PassResult {
        PassResult {
            message: message.into(),
            ..PassResult::told(name, result, Some(1250))
        }
    }

    fn report(results: Vec<PassResult>) -> PassReport {
        PassReport {
            started_at: SystemTime::UNIX_EPOCH,
            checked: vec![Status::eligible("a"), Status::eligible("b")],
            results,
            unreached: vec![],
            backups: vec![],
        }
    }

    #[test]
    fn a_pass_says_what_moved_what_failed_and_where_each_is_left() {
        let mut good = result("web", PassOutcome::Upgraded, "done");
        good.backups = vec!["20261201T0300Z (12 MiB, verified) in 2s".into()];
        let bad = result("quay", PassOutcome::RolledBack, "health: 503");
        let message = Message::of_pass("auto", "h1", &report(vec![good, bad]));
        assert_eq!(
            message.title,
            "cutover auto on h1: 1 upgraded, 1 rolled back"
        );
        assert_eq!(message.severity, Severity::Failure);
        assert_eq!(
            message.lines,
            [
                "web: app:1 -> app:2: upgraded, down 1s 250ms; runs app:2; backup 20261201T0300Z (12 MiB, verified) in 2s",
                "quay: app:1 -> app:2: failed and was rolled back, down 1s 250ms: health: 503; runs app:1 again",
            ]
        );
        assert_eq!(message.results[1]["result"], "rolled_back");
    }

    #[test]
    fn a_quiet_pass_is_quiet_and_a_pass_that_only_upgraded_is_a_success() {
        let quiet = Message::of_pass("auto", "h1", &report(vec![]));
        assert_eq!(quiet.severity, Severity::Quiet);
        assert_eq!(
            quiet.title,
            "cutover auto on h1: nothing to upgrade, 2 checked"
        );
        let good = report(vec![result("web", PassOutcome::Upgraded, "done")]);
        assert_eq!(
            Message::of_pass("auto", "h1", &good).severity,
            Severity::Success
        );
    }

    #[test]
    fn no_secret_reaches_a_message() {
        secrets::register("hunter2-notify-secret");
        let bad = result(
            "db",
            PassOutcome::NeedsAttention,
            "psql: password hunter2-notify-secret refused",
        );
        let message = Message::of_pass("auto", "h1", &report(vec![bad]));
        let all = format!("{} {} {}", message.title, message.text(), message.results);
        assert!(!all.contains("hunter2-notify-secret"), "{all}");
        assert!(all.contains("NEEDS ATTENTION"));
    }
}
