//! What the command prints: people get sentences on standard output, scripts get one JSON
//! document; both say what state the host was left in. Everything passes through
//! [`secrets::redact`].

use std::process::ExitCode;

use cutover::auto::{PassOutcome, PassReport};
use cutover::check::Status;
use cutover::executor::RunReport;
use cutover::history::Entry;
use cutover::journal::Outcome;
use cutover::plan::{self, Kind, Plan};
use cutover::recover::Recovery;
use cutover::secrets;
use serde_json::json;

/// The documented exit codes (see `cutover --help`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    Done = 0,
    RolledBack = 1,
    NothingChanged = 2,
    NeedsAttention = 3,
    /// `auto` only: upgraded at least one container, with no failure.
    Upgraded = 10,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> ExitCode {
        ExitCode::from(e as u8)
    }
}

impl From<Outcome> for Exit {
    fn from(o: Outcome) -> Exit {
        match o {
            Outcome::Succeeded => Exit::Done,
            Outcome::RolledBack => Exit::RolledBack,
            Outcome::NothingChanged => Exit::NothingChanged,
            Outcome::NeedsAttention => Exit::NeedsAttention,
        }
    }
}

fn print(text: &str) {
    println!("{}", secrets::redact(text));
}

fn print_json(value: &serde_json::Value) {
    print(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Errors before anything changed (bad input, refused preconditions, an engine out of reach).
pub fn fatal(error: &anyhow::Error, json: bool) -> ExitCode {
    let message = secrets::redact(&format!("{error:#}"));
    if json {
        print_json(&json!({ "outcome": "refused", "exit_code": Exit::NothingChanged as u8, "error": message, "state": "nothing was changed" }));
    }
    eprintln!("cutover: {message}");
    eprintln!("Nothing was changed.");
    Exit::NothingChanged.into()
}

pub fn plan_summary(plan: &Plan) {
    eprintln!("{} {}: {} -> {}", verb(plan.kind), plan.container, plan.image_from, plan.image_to);
    for (i, step) in plan.steps.iter().enumerate() {
        eprintln!("  {}. {}", i + 1, step.describe());
    }
}

pub fn dry_run(plan: &Plan, json: bool) -> Exit {
    let steps: Vec<String> = plan.steps.iter().map(|s| s.describe()).collect();
    if json {
        print_json(&json!({
            "command": plan_command(plan.kind), "dry_run": true, "container": plan.container,
            "from": plan.image_from, "to": plan.image_to, "steps": steps, "carried": plan.carried,
        }));
    } else {
        print(&format!("Dry run: {} {} from {} to {}. Nothing will be changed.", verb(plan.kind).to_lowercase(), plan.container, plan.image_from, plan.image_to));
        print("Steps:");
        for (i, step) in steps.iter().enumerate() {
            print(&format!("  {}. {step}", i + 1));
        }
        if !plan.carried.is_null() {
            print("Configuration carried to the new container (secrets masked):");
            print(&serde_json::to_string_pretty(&plan.carried).unwrap_or_default());
        }
    }
    Exit::Done
}

pub fn run(plan: &Plan, report: &RunReport, json: bool) -> Exit {
    let exit = Exit::from(report.outcome);
    let state = host_state(plan, report);
    if json {
        print_json(&json!({
            "command": plan_command(plan.kind), "container": plan.container,
            "from": plan.image_from, "to": plan.image_to,
            "outcome": report.outcome, "exit_code": exit as u8, "state": state,
            "failure": report.failure, "undo_failures": report.undo_failures,
            "warnings": report.warnings, "downtime_ms": report.downtime_ms,
            "steps": report.steps, "journal": report.journal,
        }));
        return exit;
    }
    match &report.failure {
        None => print(&format!("{} {}: {} -> {}: done.", verb(plan.kind), plan.container, plan.image_from, plan.image_to)),
        Some(failure) => print(&format!("{} {} failed: {failure}", verb(plan.kind), plan.container)),
    }
    print(&state);
    for warning in &report.warnings {
        print(&format!("warning: {warning}"));
    }
    if let Some(ms) = report.downtime_ms {
        print(&format!("Downtime: {}", humantime::format_duration(std::time::Duration::from_millis(ms))));
    }
    print(&format!("Journal: {}", report.journal));
    exit
}

/// One sentence on what runs now: the truth an operator needs after any outcome.
fn host_state(plan: &Plan, report: &RunReport) -> String {
    let name = &plan.container;
    match (report.outcome, plan.kind) {
        (Outcome::Succeeded, Kind::Upgrade) => {
            let kept = plan.steps.iter().all(|s| !matches!(s, plan::Step::Remove { .. }));
            if kept {
                format!("{name} runs {}; the old container is kept, stopped, as {} (`cutover rollback {name}` goes back to it).", plan.image_to, plan::old_name(name))
            } else {
                format!("{name} runs {}; the old container was removed (its volumes were not).", plan.image_to)
            }
        }
        (Outcome::Succeeded, Kind::Rollback) => format!(
            "{name} runs {} again on its previous container; the one it replaced is stopped and kept as {}.",
            plan.image_to, plan::failed_name(name)
        ),
        (Outcome::RolledBack, _) => format!("Rolled back: {name} runs {} again, on the container it ran before, with its data; the new container was removed.", plan.image_from),
        (Outcome::NothingChanged, _) => format!("Nothing was changed: {name} still runs {} and was not stopped.", plan.image_from),
        (Outcome::NeedsAttention, _) => format!(
            "NEEDS ATTENTION: {name} may be down. Could not finish putting it back: {}. Every step is in the journal; `cutover recover {name}` tries again.",
            if report.undo_failures.is_empty() { "the old container does not stay running".to_string() } else { report.undo_failures.join("; ") }
        ),
    }
}

pub fn recoveries(recoveries: &[Recovery], json: bool) -> Exit {
    let exit = if recoveries.iter().any(|r| r.outcome == Some(Outcome::NeedsAttention)) { Exit::NeedsAttention } else { Exit::Done };
    if json {
        print_json(&json!({ "command": "recover", "exit_code": exit as u8, "recovered": recoveries }));
    } else if recoveries.is_empty() {
        print("No interrupted run to recover.");
    } else {
        for r in recoveries {
            print(&format!("{} ({}): {}", r.container, plan_command(r.kind), r.message));
        }
    }
    exit
}

pub fn history(entries: &[Entry], json: bool) -> Exit {
    if json {
        print_json(&json!(entries));
        return Exit::Done;
    }
    if entries.is_empty() {
        print("No runs recorded.");
    }
    for e in entries {
        let outcome = match e.outcome {
            None => "interrupted (run `cutover recover`)".to_string(),
            Some(o) => serde_json::to_value(o).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default(),
        };
        let downtime = e.downtime_ms.map(|ms| format!(", downtime {}", humantime::format_duration(std::time::Duration::from_millis(ms)))).unwrap_or_default();
        let recovered = if e.recovered { " (by recover)" } else { "" };
        print(&format!("{}  {:<8} {}  {} -> {}  {outcome}{recovered}{downtime}", e.started_at, plan_command(e.kind), e.container, e.from, e.to));
    }
    Exit::Done
}

pub fn check(statuses: &[Status], requests: usize, json: bool) -> Exit {
    if json {
        print_json(&json!({ "containers": statuses, "registry_requests": requests }));
        return Exit::Done;
    }
    if statuses.is_empty() {
        print("No container to check (opt containers in with the label cutover.enable=true, or name them).");
        return Exit::Done;
    }
    print(&format!("{:<20} {:<12} {:<8} {:<12} {:<12} {:<9} WHY", "CONTAINER", "CURRENT", "POLICY", "TARGET", "NEWEST", "ELIGIBLE"));
    for s in statuses {
        let target = s.target.as_deref().and_then(cutover::reference::ImageRef::parse).and_then(|r| r.tag).unwrap_or_else(|| "-".into());
        print(&format!(
            "{:<20} {:<12} {:<8} {:<12} {:<12} {:<9} {}",
            s.container,
            s.current_tag.as_deref().unwrap_or("-"),
            s.policy.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            target,
            s.newest.as_deref().unwrap_or("-"),
            if s.eligible { "yes" } else { "no" },
            s.reason
        ));
    }
    Exit::Done
}

pub fn auto(report: &PassReport, json: bool) -> Exit {
    let exit = match report.worst() {
        Some(PassOutcome::NeedsAttention) => Exit::NeedsAttention,
        Some(PassOutcome::RolledBack | PassOutcome::NothingChanged | PassOutcome::Refused) => Exit::RolledBack,
        _ if report.upgraded() > 0 => Exit::Upgraded,
        _ => Exit::Done,
    };
    if json {
        print_json(&json!({ "command": "auto", "exit_code": exit as u8, "pass": report }));
        return exit;
    }
    let eligible = report.checked.iter().filter(|s| s.eligible).count();
    print(&format!("auto: {} opted-in container(s) checked, {eligible} eligible, {} upgraded.", report.checked.len(), report.upgraded()));
    for r in &report.results {
        let result = serde_json::to_value(r.result).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        print(&format!("  {:<20} {} -> {}  {result} ({})  {}", r.container, r.from, r.to, humantime::format_duration(std::time::Duration::from_millis(r.duration_ms)), r.message));
    }
    exit
}

fn verb(kind: Kind) -> &'static str {
    match kind {
        Kind::Upgrade => "Upgrade",
        Kind::Rollback => "Rollback",
    }
}

fn plan_command(kind: Kind) -> &'static str {
    match kind {
        Kind::Upgrade => "upgrade",
        Kind::Rollback => "rollback",
    }
}
