//! What the command prints: people get sentences on standard output, scripts get one JSON
//! document; both say what state the host was left in. Everything passes through
//! [`secrets::redact`].

use std::collections::BTreeMap;
use std::process::ExitCode;

use cutover::auto::PassReport;
use cutover::backup::Listed;
use cutover::config::HostEntry;
use cutover::discover::check::{Status, Unreached};
use cutover::ops::backup::Leftover;
use cutover::ops::history::Entry;
use cutover::ops::live::Finding;
use cutover::ops::rehearse::Findings;
use cutover::ops::task::Tasks;
use cutover::plan::{self, short_image, Kind, Plan};
use cutover::profile::task::TaskSpec;
use cutover::profile::{Catalog, Loaded};
use cutover::run::recover::Recovery;
use cutover::run::runner::StepStatus;
use cutover::run::{Outcome, RunReport};
use cutover::secrets;
use cutover::size::human_bytes;
use serde_json::json;

pub use cutover::error::Exit;

fn print(text: &str) {
    println!("{}", secrets::redact(text));
}

pub fn print_json(value: &serde_json::Value) {
    print(&serde_json::to_string_pretty(value).unwrap_or_default());
}

/// Errors before anything changed (bad input, refused preconditions, an engine out of reach).
/// Its exit code is the error's, as the library derives it.
pub fn fatal(error: &anyhow::Error, json: bool) -> ExitCode {
    let message = secrets::redact(&format!("{error:#}"));
    let exit = Exit::of_error(error.as_ref());
    if json {
        print_json(
            &json!({ "outcome": "refused", "exit_code": exit.code(), "error": message, "state": "nothing was changed" }),
        );
    }
    eprintln!("cutover: {message}");
    eprintln!("Nothing was changed.");
    exit.into()
}

/// The steps, numbered as the run prints them, under a heading per hop when there are several.
fn plan_lines(plan: &Plan) -> Vec<String> {
    let hops = plan.stages.len();
    let mut lines = Vec::new();
    let mut number = 0;
    for (i, stage) in plan.stages.iter().enumerate() {
        if hops > 1 {
            lines.push(format!(
                "Hop {} of {hops}: {} -> {}",
                i + 1,
                short_image(&stage.from),
                short_image(&stage.to)
            ));
        }
        for step in &stage.steps {
            number += 1;
            lines.push(format!("  {number}. {}", step.describe(plan)));
            // How the data comes back is what an operator weighs before saying yes.
            let traits = step.traits();
            if traits.reverts_data || traits.critical_undo {
                if let Some(undo) = step.action().undo_describe(plan) {
                    lines.push(format!("       if a later step fails: {undo}"));
                }
            }
        }
    }
    lines
}

fn headline(plan: &Plan) -> String {
    let with = match plan.members.len() {
        1 => String::new(),
        _ => format!(" (with {})", plan.members[1..].join(", ")),
    };
    match plan.image_from == plan.image_to {
        true => format!(
            "{} {}{with} ({})",
            verb(plan),
            plan.container,
            plan.image_from
        ),
        false => format!(
            "{} {}{with}: {} -> {}",
            verb(plan),
            plan.container,
            plan.image_from,
            plan.image_to
        ),
    }
}

/// Which profile the plan follows and why, when one does.
fn profile_line(plan: &Plan) -> Option<String> {
    plan.profile
        .as_ref()
        .map(|p| format!("Profile: {} ({}; {})", p.name, p.why, p.origin))
}

/// What to know before saying yes: the vendor's follow-ups for these versions, which cutover
/// cannot do, and what it noted of the host.
fn note_lines(plan: &Plan) -> Vec<String> {
    plan.notes.iter().map(|n| format!("Note: {n}")).collect()
}

pub fn plan_summary(plan: &Plan) {
    eprintln!("{}", secrets::redact(&headline(plan)));
    if let Some(line) = profile_line(plan) {
        eprintln!("{line}");
    }
    for line in plan_lines(plan).into_iter().chain(note_lines(plan)) {
        eprintln!("{}", secrets::redact(&line));
    }
}

pub fn dry_run(plan: &Plan, json: bool) -> Exit {
    if json {
        let stages: Vec<serde_json::Value> = plan
            .stages
            .iter()
            .map(|s| json!({ "from": s.from, "to": s.to, "steps": s.steps.iter().map(|step| step.describe(plan)).collect::<Vec<_>>() }))
            .collect();
        let steps: Vec<String> = plan
            .stages
            .iter()
            .flat_map(|s| s.steps.iter().map(|step| step.describe(plan)))
            .collect();
        print_json(&json!({
            "command": plan.kind.word(), "task": plan.task, "dry_run": true, "container": plan.container, "members": plan.members,
            "from": plan.image_from, "to": plan.image_to, "profile": plan.profile,
            "stages": stages, "steps": steps, "carried": plan.carried, "notes": plan.notes,
        }));
    } else {
        print(&format!(
            "Dry run: {}. Nothing will be changed.",
            headline(plan)
        ));
        if let Some(line) = profile_line(plan) {
            print(&line);
        }
        print("Steps:");
        for line in plan_lines(plan).into_iter().chain(note_lines(plan)) {
            print(&line);
        }
        if !plan.carried.is_null() {
            print("Configuration carried to the new container (secrets masked):");
            print(&serde_json::to_string_pretty(&plan.carried).unwrap_or_default());
        }
    }
    Exit::Done
}

pub fn run(plan: &Plan, report: &RunReport, json: bool) -> Exit {
    let rehearsal = (plan.kind == Kind::Rehearsal).then(|| Findings::of(plan, report));
    let exit = Exit::of_run(plan, report);
    let state = host_state(plan, report);
    if json {
        print_json(&json!({
            "rehearsal": rehearsal,
            "command": plan.kind.word(), "task": plan.task, "container": plan.container, "members": plan.members,
            "from": plan.image_from, "to": plan.image_to, "running": report.running, "profile": plan.profile,
            "outcome": report.outcome, "exit_code": exit.code(), "state": state,
            "failure": report.failure, "undo_failures": report.undo_failures,
            "warnings": report.warnings, "restored": report.restored,
            "downtime_ms": report.downtime_ms, "settled_ms": report.settled_ms,
            "hops_done": report.stages_done, "hops": plan.stages.len(),
            "steps": report.steps, "notes": plan.notes, "journal": report.journal,
        }));
        return exit;
    }
    match &report.failure {
        None => print(&format!("{}: done.", headline(plan))),
        Some(failure) => print(&format!(
            "{} {} failed: {failure}",
            verb(plan),
            plan.container
        )),
    }
    print(&state);
    for restored in &report.restored {
        print(&format!("Restored: {restored}"));
    }
    for warning in &report.warnings {
        print(&format!("warning: {warning}"));
    }
    for line in note_lines(plan) {
        print(&line);
    }
    if let Some(findings) = &rehearsal {
        rehearsal_lines(findings);
    }
    if let Some(ms) = report.downtime_ms {
        let settled = match report.settled_ms {
            Some(settle) => format!(
                " (then confirmed by running {} without exiting or restarting)",
                humantime::format_duration(std::time::Duration::from_millis(settle))
            ),
            None => String::new(),
        };
        // The backup in the window: a dump, or a snapshot whose dump came after.
        let within = ["backup", "snapshot"].map(|step| {
            let ms: u64 = report
                .steps
                .iter()
                .filter(|s| s.step == step && s.status == StepStatus::Done)
                .map(|s| s.millis)
                .sum();
            match ms {
                0 => String::new(),
                ms => format!(
                    ", of which the {step} took {}",
                    humantime::format_duration(std::time::Duration::from_millis(ms))
                ),
            }
        });
        print(&format!(
            "Downtime: {}{}{settled}",
            humantime::format_duration(std::time::Duration::from_millis(ms)),
            within.concat()
        ));
    }
    for after in report
        .steps
        .iter()
        .filter(|s| s.step == "backup_from_snapshot" && s.status == StepStatus::Done)
    {
        print(&format!(
            "Backup: {}",
            after.detail.as_deref().unwrap_or_default()
        ));
    }
    print(&format!("Journal: {}", report.journal));
    exit
}

/// A rehearsal that passed before an upgrade: what it measured, on standard error, so that the
/// upgrade's own result is the one on standard output.
pub fn rehearsed(plan: &Plan, report: &RunReport) {
    let findings = Findings::of(plan, report);
    for line in rehearsal_text(&findings) {
        eprintln!("{}", secrets::redact(&line));
    }
}

/// What a rehearsal measured, for people.
fn rehearsal_lines(findings: &Findings) {
    for line in rehearsal_text(findings) {
        print(&line);
    }
}

/// What a rehearsal measured, a line each.
fn rehearsal_text(findings: &Findings) -> Vec<String> {
    let took = |ms: u64| humantime::format_duration(std::time::Duration::from_millis(ms));
    let mut lines = Vec::new();
    for m in &findings.migrations {
        lines.push(format!(
            "Migration from {} on the copy: {} after {}",
            short_image(&m.image),
            if m.succeeded { "passed" } else { "FAILED" },
            took(m.ms)
        ));
    }
    if let Some(ms) = findings.window_ms {
        let dump = findings
            .dump_ms
            .map(|d| format!("; a backup dumped in the window adds about {} (this rehearsal's dump of the serving database)", took(d)))
            .unwrap_or_default();
        let migrations = match findings.migrations.is_empty() {
            true => String::new(),
            false => format!(
                ", migrations {}",
                took(findings.migrations.iter().map(|m| m.ms).sum())
            ),
        };
        lines.push(format!(
            "Predicted window: about {} (stop {}{migrations}, start until healthy {}){dump}. The copy was freshly restored: a long-lived database may take longer",
            took(ms),
            took(findings.stop_ms.unwrap_or_default()),
            took(findings.start_ms.unwrap_or_default()),
        ));
    }
    lines
}

fn swarm_services(plan: &Plan) -> &'static str {
    match plan.members.len() {
        1 => "Swarm service",
        _ => "Swarm services",
    }
}

/// One sentence on what runs now: the truth an operator needs after any outcome.
fn host_state(plan: &Plan, report: &RunReport) -> String {
    let names = plan.members.join(", ");
    let (runs, containers, were) = if plan.members.len() == 1 {
        ("runs", "container", "was")
    } else {
        ("run", "containers", "were")
    };
    match (report.outcome, plan.kind) {
        (Outcome::Succeeded, Kind::Upgrade) if plan.moves_a_service() => {
            format!("The {} {names} {runs} {} on every task.", swarm_services(plan), plan.image_to)
        }
        (Outcome::KeptNew, _) if plan.moves_a_service() => format!(
            "NEEDS ATTENTION: the {} {names} {runs} {}, kept although a check failed after the migration, because cutover has no backup to go back with.",
            swarm_services(plan),
            plan.image_to
        ),
        (Outcome::RolledBack, _) if plan.moves_a_service() => format!(
            "Rolled back: the {} {names} {runs} {} again on every task.",
            swarm_services(plan),
            plan.image_from
        ),
        (Outcome::Succeeded, Kind::Upgrade) => {
            if plan.removes_old() {
                format!("{names} {runs} {}; the old {containers} {were} removed (volumes are kept).", plan.image_to)
            } else {
                let kept: Vec<String> = plan.members.iter().map(|m| plan::old_name(m)).collect();
                format!("{names} {runs} {}; the old {containers} {were} kept, stopped, as {} (`cutover rollback {}` goes back).", plan.image_to, kept.join(", "), plan.container)
            }
        }
        (Outcome::Succeeded, Kind::Rehearsal) => format!("{names} still {runs} {}, untouched; the migrations ran on a copy of its database, which is removed.", plan.image_from),
        (Outcome::Succeeded, Kind::Task) => format!("{names} {runs} {} again, healthy, with the task done.", plan.image_from),
        (Outcome::RolledBack, Kind::Task) => format!("Rolled back: every step of the task was undone and {names} {runs} {} again as before it.", plan.image_from),
        (Outcome::Succeeded, Kind::Backup) => format!("{names} is backed up and {runs} {} as before.", plan.image_from),
        (Outcome::Succeeded, Kind::Restore) => format!("{names} {runs} {} on the restored data; the data it had is kept as a backup too.", plan.image_from),
        (Outcome::Succeeded, Kind::Rollback) => format!(
            "{names} {runs} {} again on its previous container; the one it replaced is stopped and kept as {}.",
            plan.image_to, plan::failed_name(&plan.container)
        ),
        (Outcome::Partial, _) => format!(
            "{names} {runs} {}, the last hop that succeeded ({} of {}); the failing hop was rolled back.",
            report.running, report.stages_done, plan.stages.len()
        ),
        (Outcome::RolledBack, _) => format!("Rolled back: {names} {runs} {} again, on the {containers} {} ran before, with {} data; the new {containers} {were} removed.", plan.image_from, if plan.members.len() == 1 { "it" } else { "they" }, if plan.members.len() == 1 { "its" } else { "their" }),
        (Outcome::NothingChanged, _) => format!("Nothing was changed: {names} still {runs} {} and {were} not stopped.", plan.image_from),
        (Outcome::KeptNew, _) => format!(
            "NEEDS ATTENTION: {names} {runs} {}, kept although a check failed after the migration, because cutover has no backup to go back with; the old {containers} {were} kept stopped as {}.",
            report.running,
            plan.members.iter().map(|m| plan::old_name(m)).collect::<Vec<_>>().join(", ")
        ),
        (Outcome::NeedsAttention, _) => format!(
            "NEEDS ATTENTION: {names} may be down. Could not finish putting things back: {}. Every step is in the journal; `cutover recover {}` tries again.",
            if report.undo_failures.is_empty() { "a container put back does not stay running".to_string() } else { report.undo_failures.join("; ") },
            plan.container
        ),
    }
}

pub fn recoveries(recoveries: &[Recovery], json: bool) -> Exit {
    let exit = if recoveries
        .iter()
        .any(|r| matches!(r.outcome, Some(Outcome::NeedsAttention | Outcome::KeptNew)))
    {
        Exit::NeedsAttention
    } else {
        Exit::Done
    };
    if json {
        print_json(
            &json!({ "command": "recover", "exit_code": exit.code(), "recovered": recoveries }),
        );
    } else if recoveries.is_empty() {
        print("No interrupted run to recover.");
    } else {
        for r in recoveries {
            let kind = r.kind.map_or("unreadable journal", |k| k.word());
            print(&format!("{} ({kind}): {}", r.container, r.message));
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
        if let Some(why) = &e.unreadable {
            print(&format!(
                "{}  UNREADABLE journal of a run on {} ({why}): {}",
                e.journal,
                e.container,
                e.message.as_deref().unwrap_or_default()
            ));
            continue;
        }
        let outcome = match e.outcome {
            None => "interrupted (run `cutover recover`)".to_string(),
            Some(o) => serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
        };
        let downtime = e
            .downtime_ms
            .map(|ms| {
                format!(
                    ", downtime {}",
                    humantime::format_duration(std::time::Duration::from_millis(ms))
                )
            })
            .unwrap_or_default();
        let recovered = if e.recovered { " (by recover)" } else { "" };
        // A run that kept its image says what it did instead of an image going nowhere.
        let what = match (&e.task, e.from == e.to) {
            (Some(task), _) => format!("{task} on {}", e.from),
            (None, true) => e.from.clone(),
            (None, false) => format!("{} -> {}", e.from, e.to),
        };
        print(&format!(
            "{}  {:<8} {}  {what}  {outcome}{recovered}{downtime}",
            e.started_at,
            e.kind.map_or("", |k| k.word()),
            e.container,
        ));
    }
    Exit::Done
}

/// The backups, and the copies of database volumes runs left on the engine: said on standard
/// error beside the JSON, whose shape stays a list of backups.
pub fn backups(found: &[Listed], left: &[Leftover], json: bool) -> Exit {
    for l in left {
        let said = format!(
            "the copy {} of {} was left by a run: `cutover recover` takes up a run that is unfinished; once none is, {} removes it",
            l.copy, l.of, l.remove
        );
        match json {
            true => tracing::warn!("{said}"),
            false => print(&format!("Left behind: {said}")),
        }
    }
    if json {
        print_json(&json!(found));
        return Exit::Done;
    }
    if found.is_empty() {
        print("No backups.");
        return Exit::Done;
    }
    print(&format!(
        "{:<24} {:<20} {:<10} {:<32} {}",
        "BACKUP", "CONTAINER", "SIZE", "IMAGE", "HOLDS"
    ));
    for b in found {
        let m = &b.manifest;
        print(&format!(
            "{:<24} {:<20} {:<10} {:<32} {}",
            m.id,
            m.container,
            human_bytes(b.bytes),
            short_image(&m.image),
            m.target.describe()
        ));
    }
    Exit::Done
}

/// `profiles check`: each rule with what the product answered.
pub fn profile_check(name: &str, profile: &str, findings: &[Finding], json: bool) -> Exit {
    let exit = match findings.iter().all(|f| f.passed) {
        true => Exit::Done,
        false => Exit::NothingChanged,
    };
    if json {
        print_json(
            &json!({ "container": name, "profile": profile, "exit_code": exit.code(), "checks": findings }),
        );
        return exit;
    }
    print(&format!("Profile {profile} on {name}:"));
    for f in findings {
        let mark = if f.passed { "ok  " } else { "FAIL" };
        print(&format!(
            "  {mark} {} {}: {}: {}",
            f.container, f.check, f.rule, f.answer
        ));
        if let Some(source) = &f.source {
            print(&format!("       the rule's source: {source}"));
        }
    }
    if findings.is_empty() {
        print("  the profile names no rule that can be tried on a running container");
    }
    exit
}

pub fn profiles(catalog: &Catalog, json: bool) -> Exit {
    if json {
        let list: Vec<serde_json::Value> = catalog
            .profiles
            .iter()
            .map(|p| json!({ "name": p.profile.name, "description": p.profile.description, "match": p.profile.repositories, "origin": p.origin }))
            .collect();
        print_json(&json!(list));
        return Exit::Done;
    }
    print(&format!("{:<16} {:<44} {}", "PROFILE", "MATCHES", "FROM"));
    for p in &catalog.profiles {
        print(&format!(
            "{:<16} {:<44} {}",
            p.profile.name,
            p.profile.repositories.join(", "),
            p.origin
        ));
    }
    Exit::Done
}

/// The profile as cutover resolved it, in the file format.
pub fn profile(loaded: &Loaded) -> Exit {
    print(&format!("# {} ({})", loaded.profile.name, loaded.origin));
    print(
        yaml_serde::to_string(&loaded.profile)
            .unwrap_or_default()
            .trim_end(),
    );
    Exit::Done
}

/// The statuses, and a fleet's hosts with their labels and why one could not be read: then the
/// answer is not whole, and the exit code says so (2).
pub fn check(
    statuses: &[Status],
    hosts: &BTreeMap<String, HostEntry>,
    unreached: &[Unreached],
    requests: usize,
    json: bool,
) -> Exit {
    let exit = match unreached.is_empty() {
        true => Exit::Done,
        false => Exit::NothingChanged,
    };
    if json {
        let hosts: Vec<_> = hosts
            .iter()
            .map(|(host, entry)| {
                let error = unreached
                    .iter()
                    .find(|u| &u.host == host)
                    .map(|u| secrets::redact(&u.error));
                json!({ "host": host, "labels": entry.labels, "error": error })
            })
            .collect();
        print_json(
            &json!({ "containers": statuses, "hosts": hosts, "registry_requests": requests }),
        );
        return exit;
    }
    for u in unreached {
        eprintln!(
            "cutover: host {} was not read: {}",
            u.host,
            secrets::redact(&u.error)
        );
    }
    if statuses.is_empty() {
        print("No container to check (opt containers in with the label cutover.enable=true, or name them).");
        return exit;
    }
    print(&format!(
        "{:<20} {:<12} {:<8} {:<12} {:<12} {:<9} WHY",
        "CONTAINER", "CURRENT", "POLICY", "TARGET", "NEWEST", "ELIGIBLE"
    ));
    for s in by_project(statuses, |s| s.project.as_deref()) {
        let target = s
            .target
            .as_deref()
            .and_then(cutover::engine::reference::ImageRef::parse)
            .and_then(|r| r.tag)
            .unwrap_or_else(|| "-".into());
        print(&format!(
            "{:<20} {:<12} {:<8} {:<12} {:<12} {:<9} {}",
            s.container,
            s.current_tag.as_deref().unwrap_or("-"),
            s.policy
                .map(|p| p.to_string())
                .unwrap_or_else(|| "-".into()),
            target,
            s.newest.as_deref().unwrap_or("-"),
            if s.eligible { "yes" } else { "no" },
            match s.cluster.is_empty() {
                true => s.reason.clone(),
                false => format!(
                    "{}; moves with its cluster over hosts: {}",
                    s.reason,
                    s.cluster.join(", ")
                ),
            }
        ));
        for link in &s.release_notes {
            print(&format!("  {}", link.line()));
        }
    }
    exit
}

/// `cutover auto`'s pass: exit 10 when it upgraded something and nothing failed.
pub fn auto(report: &PassReport, json: bool) -> Exit {
    pass("auto", Exit::Upgraded, report, json)
}

/// A pass of `command`: `auto`'s, or the rolling `upgrade` of several containers. `upgraded`
/// is its exit when it upgraded something and nothing failed.
pub fn pass(command: &str, upgraded: Exit, report: &PassReport, json: bool) -> Exit {
    let exit = report.exit(upgraded);
    if json {
        print_json(&json!({ "command": command, "exit_code": exit.code(), "pass": report }));
        return exit;
    }
    let eligible = report.checked.iter().filter(|s| s.eligible).count();
    print(&format!(
        "{command}: {} container(s) checked, {eligible} eligible, {} upgraded.",
        report.checked.len(),
        report.upgraded()
    ));
    for u in &report.unreached {
        print(&format!(
            "  host {} was not read: {}",
            u.host,
            secrets::redact(&u.error)
        ));
    }
    for s in report.checked.iter().filter(|s| s.held_back) {
        print(&format!("  {:<20} {}  {}", s.container, s.image, s.reason));
    }
    for r in by_project(&report.results, |r| r.project.as_deref()) {
        let result = serde_json::to_value(r.result)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default();
        let downtime = r
            .downtime_ms
            .map(|ms| format!(", down {ms} ms"))
            .unwrap_or_default();
        print(&format!(
            "  {:<20} {} -> {}  {result} ({}{downtime})  {}",
            r.container,
            r.from,
            r.to,
            humantime::format_duration(std::time::Duration::from_millis(r.duration_ms)),
            r.message
        ));
    }
    exit
}

/// The items with those of each compose project together, each group after a heading line that
/// is printed as the caller reaches its first item.
fn by_project<'a, T>(
    items: &'a [T],
    project: impl Fn(&T) -> Option<&str> + 'a,
) -> impl Iterator<Item = &'a T> + 'a {
    let mut sorted: Vec<&T> = items.iter().collect();
    sorted.sort_by_key(|item| project(item).map(str::to_string));
    let mut heading: Option<String> = None;
    sorted.into_iter().inspect(move |item| {
        if let Some(p) = project(item).filter(|p| heading.as_deref() != Some(*p)) {
            heading = Some(p.to_string());
            print(&format!("compose project {p}:"));
        }
    })
}

/// `cutover tasks NAME`: the profile's tasks and their options.
pub fn tasks(name: &str, tasks: &Tasks, json: bool) -> Exit {
    let profile = &tasks.loaded.profile;
    if json {
        let listed: Vec<serde_json::Value> = profile
            .tasks
            .iter()
            .map(|(task, spec)| json!({ "name": task, "description": spec.description, "options": spec.usage() }))
            .collect();
        print_json(
            &json!({ "container": name, "profile": profile.name, "why": tasks.why, "tasks": listed }),
        );
        return Exit::Done;
    }
    print(&format!(
        "{name} follows profile {} ({}; {}).",
        profile.name, tasks.why, tasks.loaded.origin
    ));
    if profile.tasks.is_empty() {
        print("It has no tasks.");
    }
    for (task, spec) in &profile.tasks {
        task_lines(name, task, spec);
    }
    Exit::Done
}

/// `cutover task NAME TASK --help`: that task's options.
pub fn task_help(name: &str, task: &str, spec: &TaskSpec) -> Exit {
    task_lines(name, task, spec);
    print("cutover's own options (--dry-run, --yes, --json, --skip-backup, ...): `cutover task --help`.");
    Exit::Done
}

fn task_lines(name: &str, task: &str, spec: &TaskSpec) {
    print(&format!("\n{task}: {}", spec.description));
    for line in spec.usage() {
        print(&format!("    {line}"));
    }
    let required: Vec<String> = spec
        .args
        .iter()
        .filter(|a| a.required)
        .map(|a| format!("--{} {}", a.name, a.value.as_deref().unwrap_or_default()))
        .collect();
    print(&format!(
        "  e.g. cutover task {name} {task} {} --dry-run",
        required.join(" ")
    ));
}

/// What the plan does, as a headline starts: `Upgrade`, or `Task NAME on` for a profile task.
fn verb(plan: &Plan) -> String {
    if let (Kind::Task, Some(task)) = (plan.kind, &plan.task) {
        return format!("Task {task} on");
    }
    if plan.kind == Kind::Rehearsal {
        return "Rehearsal of the upgrade of".into();
    }
    let word = plan.kind.word();
    word[..1].to_uppercase() + &word[1..]
}
