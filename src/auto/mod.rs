//! `cutover auto`: one unattended pass over the opted-in containers.
//!
//! Each eligible container is upgraded with the same plan, checks and rollback as a manual
//! `cutover upgrade`, one at a time, dependencies first. A failure that rolled back does not
//! stop the pass (the service runs as before); one that needs attention does, so that a broken
//! host is not made worse. A host-wide lock keeps two passes from overlapping.

pub mod metrics;
pub mod notice;

use std::collections::HashSet;
use std::time::{Instant, SystemTime};

use serde::Serialize;

use crate::discover::check::{self, Selection, Status};
use crate::engine::reference::ImageRef;
use crate::engine::registry::RegistryClient;
use crate::engine::Engine;
use crate::error::{Error, Exit, Result};
use crate::health::HealthPolicy;
use crate::notify::seconds;
use crate::ops::backup::BackupRequest;
use crate::ops::compose::ComposeRequest;
use crate::ops::rehearse;
use crate::ops::settings::Given;
use crate::ops::upgrade::{self, UpgradeRequest};
use crate::plan::build::Target;
use crate::plan::UpgradeOptions;
use crate::profile::{Catalog, NotesLink};
use crate::run::{FirstSeen, Interrupt, Outcome, RunReport, StateDir};
use crate::schedule::{Schedule, Window};
use crate::secrets;

/// What every upgrade of an unattended pass runs with, the same for each container it moves.
pub struct PassSettings {
    /// The config file and the command line's health flags, which each upgrade resolves over
    /// its container's profile and labels.
    pub given: Given,
    pub catalog: Catalog,
    pub window: Option<Window>,
    pub asked: Asked,
    /// When cutover first saw each image that does not say when it was built, for a minimum
    /// age: one record for every engine and host this machine looks at.
    pub first_seen: FirstSeen,
}

/// What each upgrade of a pass asks besides its target: `cutover upgrade`'s options over
/// several containers; nothing more for `auto`.
#[derive(Default)]
pub struct Asked {
    /// Intermediate tags, steps, `--keep-old`: the target is each container's own.
    pub options: Option<UpgradeOptions>,
    pub backup: BackupRequest,
    /// Every upgrade rehearsed first (`upgrade --rehearse`), as a container's `rehearse` rule
    /// asks of its own.
    pub rehearse: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PassOutcome {
    Upgraded,
    RolledBack,
    /// Went part of the way (some hops) and rolled the failing hop back.
    Partial,
    /// Failed before any downtime; the container runs as before.
    NothingChanged,
    NeedsAttention,
    /// cutover would not start it (another run holds it, a precondition failed).
    Refused,
    /// Its rehearsal on a copy of the database failed: the upgrade was not started, and the
    /// container runs as before.
    HeldBack,
    /// Eligible, but the pass stopped at an earlier failure or is outside its window.
    NotAttempted,
}

#[derive(Debug, Clone, Serialize)]
pub struct PassResult {
    pub container: String,
    /// The compose project it belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    pub from: String,
    pub to: String,
    pub result: PassOutcome,
    pub duration_ms: u64,
    /// How long the service was down, when an upgrade ran.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
    pub message: String,
    /// The backups the upgrade took, as its backup steps told them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub backups: Vec<String>,
    /// Where to read what the target and each hop through change, as `check` found them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub release_notes: Vec<NotesLink>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    #[serde(serialize_with = "rfc3339")]
    pub started_at: SystemTime,
    /// Every opted-in container with what check found.
    pub checked: Vec<Status>,
    /// What the pass did to the eligible ones, in the order it did it.
    pub results: Vec<PassResult>,
    /// The hosts of a fleet it could not read.
    #[serde(rename = "unreached_hosts", skip_serializing_if = "Vec::is_empty")]
    pub unreached: Vec<check::Unreached>,
    /// The newest backup of each container in the stores of the hosts it read, for the
    /// metrics: a backup that is old or missing is something to alert on.
    #[serde(skip)]
    pub backups: Vec<NewestBackup>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NewestBackup {
    /// `HOST/NAME` on a fleet.
    pub container: String,
    pub bytes: u64,
    pub taken_at: SystemTime,
}

/// The newest backup of each container in the default store of `state` (`auto`'s), named as
/// the pass names its containers on `host`. A store that cannot be read tells nothing.
pub(super) fn newest_backups(state: &StateDir, host: &str) -> Vec<NewestBackup> {
    let listed = crate::backup::list(&BackupRequest::default().root(state), None);
    let mut newest: Vec<NewestBackup> = Vec::new();
    // Oldest first: a later one of the same container replaces the earlier.
    for backup in listed.unwrap_or_default() {
        let container = match host {
            "" => backup.manifest.container.clone(),
            host => format!("{host}/{}", backup.manifest.container),
        };
        let entry = NewestBackup {
            container,
            bytes: backup.bytes,
            taken_at: backup.manifest.taken_at,
        };
        match newest.iter_mut().find(|n| n.container == entry.container) {
            Some(n) => *n = entry,
            None => newest.push(entry),
        }
    }
    newest
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
}

impl PassOutcome {
    pub const ALL: [PassOutcome; 8] = [
        PassOutcome::Upgraded,
        PassOutcome::RolledBack,
        PassOutcome::Partial,
        PassOutcome::NothingChanged,
        PassOutcome::NeedsAttention,
        PassOutcome::Refused,
        PassOutcome::HeldBack,
        PassOutcome::NotAttempted,
    ];

    /// An outcome someone should hear of: the upgrade did not happen as asked.
    pub fn failed(self) -> bool {
        matches!(
            self,
            PassOutcome::NeedsAttention
                | PassOutcome::RolledBack
                | PassOutcome::Partial
                | PassOutcome::NothingChanged
                | PassOutcome::Refused
                | PassOutcome::HeldBack
        )
    }
}

impl PassReport {
    pub fn upgraded(&self) -> usize {
        self.results
            .iter()
            .filter(|r| r.result == PassOutcome::Upgraded)
            .count()
    }

    /// Whether someone should hear of the pass: an upgrade did not happen as asked, or a host
    /// was not read.
    pub fn failed(&self) -> bool {
        self.worst().is_some_and(PassOutcome::failed)
    }

    /// The pass's exit code (README, `auto`'s table): its worst result's, else `upgraded` when
    /// it upgraded something (`auto`'s 10; a rolling `upgrade`'s 0), else done.
    pub fn exit(&self, upgraded: Exit) -> Exit {
        match self.worst() {
            Some(PassOutcome::NeedsAttention) => Exit::NeedsAttention,
            Some(PassOutcome::HeldBack) => Exit::RehearsalFailed,
            Some(worst) if worst.failed() => Exit::RolledBack,
            _ if self.upgraded() > 0 => upgraded,
            _ => Exit::Done,
        }
    }

    pub fn worst(&self) -> Option<PassOutcome> {
        let rank = |r: &PassOutcome| match r {
            PassOutcome::NeedsAttention => 5,
            PassOutcome::RolledBack | PassOutcome::Partial | PassOutcome::NothingChanged => 4,
            PassOutcome::HeldBack => 3,
            PassOutcome::Refused => 2,
            PassOutcome::NotAttempted => 1,
            PassOutcome::Upgraded => 0,
        };
        // A host that could not be read is as a container cutover would not start.
        let unreached = self.unreached.iter().map(|_| PassOutcome::Refused);
        self.results
            .iter()
            .map(|r| r.result)
            .chain(unreached)
            .max_by_key(rank)
    }
}

pub async fn pass(
    engine: &dyn Engine,
    state: &StateDir,
    registry: &RegistryClient,
    settings: &PassSettings,
    interrupt: &Interrupt,
) -> Result<PassReport> {
    let _host = state.lock_auto()?;
    let started_at = SystemTime::now();
    let checked = survey(engine, registry, settings).await?;
    let outside_window = settings.window.is_some_and(|w| !w.contains_now());
    let eligible = checked.iter().filter(|s| s.eligible).collect();
    let results = OnHost {
        engine,
        state,
        given: &settings.given,
        host: "",
    }
    .upgrade_in_order(eligible, settings, outside_window, interrupt)
    .await;
    let report = PassReport {
        started_at,
        checked,
        results,
        unreached: Vec::new(),
        backups: newest_backups(state, ""),
    };
    Ok(report)
}

/// What check finds for a pass on this engine: its opted-in containers.
pub async fn survey(
    engine: &dyn Engine,
    registry: &RegistryClient,
    settings: &PassSettings,
) -> Result<Vec<Status>> {
    let watched = check::discover(
        engine,
        &settings.given,
        &settings.catalog,
        &Selection::OptedIn,
    )
    .await?;
    Ok(check::check(registry, &settings.first_seen, &watched).await)
}

/// How an upgrade of a pass ended: its outcome, what to tell, and the downtime when it ran.
pub(super) struct Ended {
    pub result: PassOutcome,
    pub message: String,
    pub downtime_ms: Option<u64>,
    pub backups: Vec<String>,
}

impl PassResult {
    /// `status`'s container, moved to `to` as `ended` tells, in `duration_ms`.
    pub(super) fn of(status: &Status, to: String, ended: Ended, duration_ms: u64) -> PassResult {
        PassResult {
            container: status.container.clone(),
            project: status.project.clone(),
            from: status.image.clone(),
            to,
            result: ended.result,
            duration_ms,
            downtime_ms: ended.downtime_ms,
            message: ended.message,
            backups: ended.backups,
            release_notes: status.release_notes.clone(),
        }
    }

    /// `status`'s container, which the upgrade this result tells moved with its group.
    pub(super) fn moved_with(&self, status: &Status) -> PassResult {
        PassResult {
            container: status.container.clone(),
            project: status.project.clone(),
            from: status.image.clone(),
            message: format!("moved with {}: {}", self.container, self.message),
            duration_ms: 0,
            ..self.clone()
        }
    }
}

#[cfg(test)]
impl PassResult {
    /// `container` moved from `app:1` to `app:2` with `result`, for the tests of what tells a
    /// pass.
    pub fn told(container: &str, result: PassOutcome, downtime_ms: Option<u64>) -> PassResult {
        PassResult {
            container: container.into(),
            project: None,
            from: "app:1".into(),
            to: "app:2".into(),
            result,
            duration_ms: 1000,
            downtime_ms,
            message: String::new(),
            backups: Vec::new(),
            release_notes: Vec::new(),
        }
    }
}

/// Once a signal came, what is not under way yet is not attempted.
pub(super) fn stop_if_interrupted(stopped: &mut Option<String>, interrupt: &Interrupt) {
    if let (None, Some(signal)) = (&stopped, interrupt.raised()) {
        *stopped = Some(format!(
            "not attempted: the pass was interrupted by {signal}"
        ));
    }
}

/// An eligible container a pass did not upgrade, and why.
pub(super) fn not_attempted(status: &Status, why: &str) -> PassResult {
    let ended = Ended {
        result: PassOutcome::NotAttempted,
        message: why.to_string(),
        downtime_ms: None,
        backups: Vec::new(),
    };
    PassResult::of(status, status.target.clone().unwrap_or_default(), ended, 0)
}

/// One engine a pass upgrades on, with the config file's entries as that host sees them; its
/// containers are named `HOST/NAME` in the pass when `host` is not empty.
pub(super) struct OnHost<'a> {
    pub engine: &'a dyn Engine,
    pub state: &'a StateDir,
    pub given: &'a Given,
    pub host: &'a str,
}

impl OnHost<'_> {
    /// The eligible containers of this engine, one by one in dependency order, each as
    /// `cutover upgrade NAME --image TARGET` moves it. One that an earlier upgrade moved with
    /// its group (on the same database) is told so, not moved again. After one that needs
    /// attention, or once interrupted, the rest are not attempted.
    pub(super) async fn upgrade_in_order(
        &self,
        statuses: Vec<&Status>,
        settings: &PassSettings,
        outside_window: bool,
        interrupt: &Interrupt,
    ) -> Vec<PassResult> {
        let mut results: Vec<PassResult> = Vec::new();
        let mut moved: Vec<(String, usize)> = Vec::new();
        let mut stopped: Option<String> = None;
        for status in dependency_order(statuses) {
            stop_if_interrupted(&mut stopped, interrupt);
            let skip = stopped
                .clone()
                .or_else(|| outside_window.then(|| "outside the maintenance window".to_string()));
            if let Some(why) = skip {
                results.push(not_attempted(status, &why));
                continue;
            }
            let bare = match self.host.is_empty() {
                true => status.container.clone(),
                false => status.container[self.host.len() + 1..].to_string(),
            };
            if let Some((_, i)) = moved.iter().find(|(m, _)| *m == bare) {
                results.push(results[*i].moved_with(status));
                continue;
            }
            let target = status.target.clone().unwrap_or_default();
            tracing::info!(
                "auto: upgrading {} from {} to {target}",
                status.container,
                status.image
            );
            let clock = Instant::now();
            let (ended, members) = self.upgrade_one(&bare, status, settings, interrupt).await;
            if ended.result == PassOutcome::NeedsAttention {
                stopped = Some(format!(
                    "not attempted: the pass stopped after {} needed attention",
                    status.container
                ));
            }
            moved.extend(members.into_iter().map(|m| (m, results.len())));
            let duration_ms = clock.elapsed().as_millis() as u64;
            results.push(PassResult::of(status, target, ended, duration_ms));
        }
        results
    }

    /// The same upgrade as `cutover upgrade NAME --image TARGET`, through the hops check
    /// found: how it ended, what to tell, the downtime when it ran, and every container it
    /// moved.
    async fn upgrade_one(
        &self,
        bare: &str,
        status: &Status,
        settings: &PassSettings,
        interrupt: &Interrupt,
    ) -> (Ended, Vec<String>) {
        let bare = Status {
            container: bare.to_string(),
            ..status.clone()
        };
        let request = match request(&bare, self.given, &settings.asked, None) {
            Ok(request) => request,
            Err(e) => return (Ended::refused(&e.to_string()), Vec::new()),
        };
        let rehearsed = match settings.asked.rehearses(status) {
            true => {
                let on = (self.engine, self.state, &settings.catalog);
                match rehearse_first(on, &request, interrupt).await {
                    Ok(said) => Some(said),
                    Err(held) => return (held, Vec::new()),
                }
            }
            false => None,
        };
        match upgrade::prepare(self.engine, self.state, &settings.catalog, &request).await {
            Ok(prepared) => {
                let members = prepared.plan.members.clone();
                let ran = prepared
                    .execute(self.engine, self.state, None, interrupt)
                    .await;
                (judge(ran).after(rehearsed), members)
            }
            Err(e) => (Ended::refused(&e.to_string()), Vec::new()),
        }
    }
}

impl Asked {
    /// Whether `status`'s upgrade is rehearsed first: its rules say so, or the command asked.
    pub(super) fn rehearses(&self, status: &Status) -> bool {
        self.rehearse || status.rehearse
    }
}

impl Ended {
    /// cutover would not start it, for `why`.
    pub(super) fn refused(why: &str) -> Ended {
        Ended {
            result: PassOutcome::Refused,
            message: secrets::redact(why),
            downtime_ms: None,
            backups: Vec::new(),
        }
    }

    /// This end, told after what the rehearsal before it said.
    pub(super) fn after(mut self, rehearsed: Option<String>) -> Ended {
        if let Some(said) = rehearsed {
            self.message = format!("{} ({said})", self.message);
        }
        self
    }
}

/// The upgrade `request` asks, rehearsed on a copy of the database on the host `on` names
/// (see [`crate::ops::rehearse`]) before anything is stopped: what the rehearsal found when
/// it passed, or how the container's pass ends when it did not (held back, untouched; refused
/// when it cannot be rehearsed, since a rehearsal was asked).
pub(super) async fn rehearse_first(
    on: (&dyn Engine, &StateDir, &Catalog),
    request: &UpgradeRequest,
    interrupt: &Interrupt,
) -> std::result::Result<String, Ended> {
    let (engine, state, catalog) = on;
    let prepared = rehearse::prepare(engine, state, catalog, request)
        .await
        .map_err(|e| Ended::refused(&format!("a rehearsal was asked, and {e}")))?;
    let plan = prepared.plan.clone();
    let held = |why: String| Ended {
        result: PassOutcome::HeldBack,
        message: secrets::redact(&format!("its rehearsal failed: {why}")),
        downtime_ms: None,
        backups: Vec::new(),
    };
    let report = prepared
        .execute(engine, state, None, interrupt)
        .await
        .map_err(|e| held(e.to_string()))?;
    if report.outcome != Outcome::Succeeded {
        let mut why = report.failure.clone().unwrap_or_default();
        if !report.undo_failures.is_empty() {
            why = format!("{why}; not removed: {}", report.undo_failures.join("; "));
        }
        return Err(held(why));
    }
    let window = rehearse::Findings::of(&plan, &report)
        .window_ms
        .map(|ms| format!(", predicted window {}", seconds(ms)))
        .unwrap_or_default();
    Ok(format!("rehearsed first{window}"))
}

/// What `cutover upgrade NAME --image TARGET` would ask for `status`, through the hops check
/// found unless another node of its cluster (`follows`) moves the database first.
pub(super) fn request(
    status: &Status,
    given: &Given,
    asked: &Asked,
    follows: Option<&str>,
) -> Result<UpgradeRequest> {
    let target = status.target.clone().unwrap_or_default();
    let Some(target) = ImageRef::parse(&target) else {
        return Err(crate::Error::Refused(format!(
            "{target} is not an image reference"
        )));
    };
    let mut options = match &asked.options {
        Some(options) => options.clone(),
        None => UpgradeOptions::new(Target::Image(target.clone()), HealthPolicy::default()),
    };
    options.target = Target::Image(target);
    match follows {
        Some(_) => options.via.clear(),
        None if !status.via.is_empty() => options.via = status.via.clone(),
        None => {}
    }
    Ok(UpgradeRequest {
        name: status.container.clone(),
        with: Vec::new(),
        options,
        given: given.clone(),
        backup: asked.backup.clone(),
        compose: ComposeRequest::default(),
        follows: follows.map(str::to_string),
        related: Default::default(),
    })
}

/// A run's end as a pass tells it.
pub(super) fn judge(result: Result<RunReport>) -> Ended {
    match result {
        Ok(report) => {
            let result = match report.outcome {
                Outcome::Succeeded => PassOutcome::Upgraded,
                Outcome::RolledBack => PassOutcome::RolledBack,
                Outcome::NothingChanged => PassOutcome::NothingChanged,
                Outcome::Partial => PassOutcome::Partial,
                // The new version serves on data the old may refuse: a person decides.
                Outcome::NeedsAttention | Outcome::KeptNew => PassOutcome::NeedsAttention,
            };
            let mut message = report.failure.clone().unwrap_or_else(|| "done".into());
            if !report.undo_failures.is_empty() {
                message = format!(
                    "{message}; not put back: {}",
                    report.undo_failures.join("; ")
                );
            }
            Ended {
                result,
                message: secrets::redact(&message),
                downtime_ms: report.downtime_ms,
                backups: crate::notify::backups(&report),
            }
        }
        Err(e) => Ended {
            result: PassOutcome::NeedsAttention,
            message: secrets::redact(&e.to_string()),
            downtime_ms: None,
            backups: Vec::new(),
        },
    }
}

/// Dependencies first: a container waits until every eligible container it depends on is
/// placed. A cycle (which the engine would not start anyway) keeps the remaining order.
pub fn dependency_order(mut pending: Vec<&Status>) -> Vec<&Status> {
    pending.sort_by(|a, b| a.container.cmp(&b.container));
    let names: HashSet<&str> = pending.iter().map(|s| s.container.as_str()).collect();
    let mut placed: HashSet<String> = HashSet::new();
    let mut ordered = Vec::new();
    while !pending.is_empty() {
        let ready = pending.iter().position(|s| {
            s.depends_on
                .iter()
                .all(|d| !names.contains(d.as_str()) || placed.contains(d))
        });
        let next = pending.remove(ready.unwrap_or(0));
        placed.insert(next.container.clone());
        ordered.push(next);
    }
    ordered
}

/// A resident `auto`: `pass` at every occurrence of `schedule`, until SIGINT or SIGTERM (a pass
/// under way finishes, or rolls its upgrade back, first). What a pass does with its failures is
/// its own: the schedule goes on.
pub async fn on_schedule(
    schedule: &Schedule,
    interrupt: &Interrupt,
    mut pass: impl AsyncFnMut(),
) -> Result<()> {
    while next_occurrence(schedule, interrupt).await? {
        pass().await;
        if interrupt.raised().is_some() {
            break;
        }
    }
    Ok(())
}

/// Waits for the schedule's next occurrence: false when a signal came first.
async fn next_occurrence(schedule: &Schedule, interrupt: &Interrupt) -> Result<bool> {
    let now = chrono::Local::now();
    let Some(next) = schedule.next_after(now) else {
        return Err(Error::Refused("the schedule has no next occurrence".into()));
    };
    tracing::info!("next pass at {}", next.format("%Y-%m-%d %H:%M:%S"));
    let wait = (next - now).to_std().unwrap_or_default();
    tokio::select! {
        _ = tokio::time::sleep(wait) => Ok(true),
        () = interrupt.wait() => Ok(false),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_resident_pass_runs_at_each_occurrence_until_a_signal() {
        let every_second = Schedule::parse("* * * * * *").unwrap();
        let interrupt = Interrupt::default();
        let mut passes = 0;
        on_schedule(&every_second, &interrupt, async || {
            passes += 1;
            if passes == 2 {
                // As a SIGTERM during a pass: it finishes, and no other starts.
                interrupt.raise("SIGTERM");
            }
        })
        .await
        .unwrap();
        assert_eq!(passes, 2);

        // A signal while it waits ends it before any pass.
        let yearly = Schedule::parse("0 0 1 1 *").unwrap();
        let waiting = Interrupt::default();
        let mut ran = false;
        let raiser = waiting.clone();
        tokio::spawn(async move { raiser.raise("SIGINT") });
        on_schedule(&yearly, &waiting, async || ran = true)
            .await
            .unwrap();
        assert!(!ran);
    }

    fn status(name: &str, deps: &[&str]) -> Status {
        Status {
            depends_on: deps.iter().map(|d| d.to_string()).collect(),
            ..Status::eligible(name)
        }
    }

    #[test]
    fn dependencies_come_first() {
        let (app, db, cache, web) = (
            status("app", &["db", "cache"]),
            status("db", &[]),
            status("cache", &["db"]),
            status("web", &["app", "outside"]),
        );
        let order: Vec<&str> = dependency_order(vec![&web, &app, &cache, &db])
            .iter()
            .map(|s| s.container.as_str())
            .collect();
        assert_eq!(order, ["db", "cache", "app", "web"]);
    }

    #[test]
    fn a_cycle_does_not_hang() {
        let (a, b) = (status("a", &["b"]), status("b", &["a"]));
        assert_eq!(dependency_order(vec![&a, &b]).len(), 2);
    }

    /// `auto`'s table: 0 nothing to upgrade, 10 upgraded with no failure, 1 a failure rolled
    /// back (or refused), 3 one needs attention, 5 a rehearsal held one back; a rolling
    /// `upgrade` exits 0 where `auto` exits 10.
    #[test]
    fn a_pass_exits_with_its_worst_result() {
        let pass = |results: &[PassOutcome]| PassReport {
            started_at: SystemTime::UNIX_EPOCH,
            checked: Vec::new(),
            results: results
                .iter()
                .map(|r| PassResult::told("app", *r, None))
                .collect(),
            unreached: Vec::new(),
            backups: Vec::new(),
        };
        use PassOutcome::*;
        let table = [
            (vec![], 0),
            (vec![NotAttempted], 0),
            (vec![Upgraded], 10),
            (vec![Upgraded, RolledBack], 1),
            (vec![Refused], 1),
            (vec![Upgraded, HeldBack], 5),
            (vec![HeldBack, RolledBack], 1),
            (vec![RolledBack, NeedsAttention], 3),
        ];
        for (results, code) in table {
            assert_eq!(
                pass(&results).exit(Exit::Upgraded).code(),
                code,
                "{results:?}"
            );
        }
        assert_eq!(pass(&[Upgraded]).exit(Exit::Done), Exit::Done);
    }
}
