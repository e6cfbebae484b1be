//! Runs a plan stage by stage, journaling each step before and after it with its outputs, and
//! undoes what a failed stage started. Recovery resumes a killed run with the same machinery.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use indicatif::MultiProgress;
use serde::Serialize;

use super::interrupt::Interrupt;
use super::journal::{Event, Journal, JournalError, Outcome, Run, StepPhase};
use crate::clock;
use crate::engine::{inspect_required, Engine};
use crate::health;
use crate::plan::steps::{Cx, Done, Outputs, Step, StepError};
use crate::plan::{old_name, Kind, Plan, Slot};
use crate::secrets;

/// How long a container put back by a rollback must keep running to count as running again.
const CONFIRM_SETTLE: Duration = Duration::from_secs(3);

/// How often a run asks an engine that stopped answering whether it is back, and how long it
/// waits for one answer: an engine on another host that vanished may not even refuse.
const ENGINE_POLL: Duration = Duration::from_millis(500);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// An undo the engine's absence made fail is tried again once it answers, this many times in all.
const UNDO_ATTEMPTS: usize = 3;

/// Fault injection for the crash-recovery tests: `CUTOVER_PAUSE_AFTER=N` makes a run stop
/// after step N (1-based over the whole plan, as printed) is journaled as done, so a test can
/// kill or signal it at a known point, or change the host under it: until a signal, or for
/// `CUTOVER_PAUSE_FOR` (a duration) and then go on. Unset in normal use.
const PAUSE_AFTER_ENV: &str = "CUTOVER_PAUSE_AFTER";
const PAUSE_FOR_ENV: &str = "CUTOVER_PAUSE_FOR";

/// Where a run stops on purpose, for tests of recovery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Waits once step N (1-based) is done, for a test to kill or signal the process: until a
    /// signal, or for the duration given.
    PauseAfter(usize, Option<Duration>),
    /// Returns as if the process died at that moment of step N (0-based): the journal has no
    /// end.
    #[cfg(test)]
    Crash { step: usize, at: Moment },
    /// SIGTERM arrives once step N (0-based) is journaled as done.
    #[cfg(test)]
    Signal(usize),
}

/// Where in a step a test crashes the run.
#[cfg(test)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    /// Journaled as begun, nothing done yet.
    Began,
    /// Done, but not yet journaled as done: its outputs are lost.
    Acted,
    /// Done and journaled.
    Journaled,
}

impl Fault {
    pub fn from_env() -> Option<Fault> {
        let pause_for = std::env::var(PAUSE_FOR_ENV)
            .ok()
            .and_then(|v| humantime::parse_duration(&v).ok());
        std::env::var(PAUSE_AFTER_ENV)
            .ok()
            .and_then(|v| v.parse().ok())
            .map(|step| Fault::PauseAfter(step, pause_for))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A [`Fault::Crash`] ended the run the way a killed process would.
    #[cfg(test)]
    #[error("interrupted on purpose")]
    Interrupted,
}

/// Where a step of the plan ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    NotRun,
    Done,
    Failed,
    Undone,
    UndoFailed,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    /// The hop it belongs to, from 0.
    pub stage: usize,
    pub step: &'static str,
    pub description: String,
    pub status: StepStatus,
    pub millis: u64,
    /// What the step saw: a health verdict, a command's exit, what was copied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub outcome: Outcome,
    /// What failed, when something did.
    pub failure: Option<String>,
    /// Undo steps that failed: what a person must finish by hand.
    pub undo_failures: Vec<String>,
    /// Problems that did not change the outcome: a cleanup after the service was healthy that
    /// failed, or data a rolled-back step may have changed.
    pub warnings: Vec<String>,
    /// What the rollback put back besides the containers: a backup it restored.
    pub restored: Vec<String>,
    /// From the first stop of a stage until its last container first passed its checks (or was
    /// put back), summed over the stages.
    pub downtime_ms: Option<u64>,
    /// A settle time that confirmed the new containers after they were serving; not downtime.
    pub settled_ms: Option<u64>,
    /// Stages (hops) that completed.
    pub stages_done: usize,
    /// The image the primary container runs now.
    pub running: String,
    pub steps: Vec<StepReport>,
    pub journal: String,
}

/// What a run knows as it goes, and what recovery rebuilds from the journal.
struct State {
    slots: BTreeMap<Slot, String>,
    outputs: BTreeMap<(usize, usize), Outputs>,
    /// Steps of each stage that began, in order.
    started: BTreeMap<usize, Vec<usize>>,
    /// When each stage's first stop began, and when its last container was serving again.
    down: BTreeMap<usize, (SystemTime, Option<SystemTime>)>,
    settled_ms: Option<u64>,
    reports: Vec<StepReport>,
    warnings: Vec<String>,
    /// What undos put back (a restored backup).
    restored: Vec<String>,
    /// Values steps captured from their commands' output, for later steps.
    captured: BTreeMap<String, String>,
    /// Why the journal could not be written, once it could not: the run stops before its next
    /// step and puts things back without it.
    unjournaled: Option<String>,
}

impl State {
    fn new(plan: &Plan) -> State {
        let reports = plan
            .stages
            .iter()
            .enumerate()
            .flat_map(|(stage, s)| s.steps.iter().map(move |step| (stage, step)))
            .map(|(stage, step)| StepReport {
                stage,
                step: step.name(),
                description: step.describe(plan),
                status: StepStatus::NotRun,
                millis: 0,
                detail: None,
            })
            .collect();
        State {
            slots: plan.known_ids(),
            outputs: BTreeMap::new(),
            started: BTreeMap::new(),
            down: BTreeMap::new(),
            settled_ms: None,
            reports,
            warnings: Vec::new(),
            restored: Vec::new(),
            captured: BTreeMap::new(),
            unjournaled: None,
        }
    }

    /// Everything the journal of an interrupted run says.
    fn from_run(run: &Run) -> State {
        let mut state = State::new(&run.plan);
        for (&(stage, index), record) in &run.steps {
            state.started.entry(stage).or_default().push(index);
            let step = &run.plan.stages[stage].steps[index];
            if step.traits().starts_downtime {
                state.down.entry(stage).or_insert((record.started_at, None));
            }
            let report = &mut state.reports[global(&run.plan, stage, index)];
            report.status = match record.done {
                true => StepStatus::Done,
                false => StepStatus::Failed,
            };
            if let Some(outputs) = &record.outputs {
                state.learn(stage, index, outputs.clone());
            }
        }
        state
    }

    fn learn(&mut self, stage: usize, index: usize, outputs: Outputs) {
        if let Some((slot, id)) = &outputs.bind {
            self.slots.insert(slot.clone(), id.clone());
        }
        if let Some(at) = outputs.serving_at_ms.map(clock::from_millis) {
            if let Some((_, serving)) = self.down.get_mut(&stage) {
                *serving = Some(serving.map_or(at, |s| s.max(at)));
            }
        }
        if let Some(settled) = outputs.settled_ms {
            self.settled_ms = Some(self.settled_ms.map_or(settled, |s| s.max(settled)));
        }
        if let Some(captured) = outputs.more.get("captured").and_then(|c| c.as_object()) {
            for (name, value) in captured {
                let value = value.as_str().unwrap_or_default().to_string();
                self.captured.insert(name.clone(), value);
            }
        }
        self.outputs.insert((stage, index), outputs);
    }

    fn downtime_ms(&self) -> Option<u64> {
        let total: Option<Duration> = self
            .down
            .values()
            .map(|(from, to)| {
                to.unwrap_or_else(clock::now)
                    .duration_since(*from)
                    .unwrap_or_default()
            })
            .reduce(|a, b| a + b);
        total.map(|d| d.as_millis() as u64)
    }
}

/// The migration of a failed stage that means its new version must be kept: it moved the data
/// on, nothing the stage took can put the data back, and every successor was proven serving
/// (the failure came after, from a version check or a hook). Going back would start the old
/// version on data it may refuse, which is how a service ends up down.
fn keeps_new(plan: &Plan, stage: usize, started: &[usize], state: &State) -> Option<String> {
    // A rehearsal's migrations moved its copy, which is removed: production is as it was.
    if plan.kind == Kind::Rehearsal {
        return None;
    }
    let steps = &plan.stages[stage].steps;
    let done = |i: usize| state.reports[global(plan, stage, i)].status == StepStatus::Done;
    if started.iter().any(|&i| steps[i].traits().backs_up) {
        return None;
    }
    let mut proofs = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.traits().proves_serving)
        .peekable();
    proofs.peek()?;
    if !proofs.all(|(i, _)| done(i)) {
        return None;
    }
    started
        .iter()
        .find(|&&i| steps[i].traits().migrates && done(i))
        .map(|&i| steps[i].describe(plan))
}

/// A rollback that restored no backup says so when a step that began may have changed the data
/// the old version put back now runs on.
fn warn_unrestored(plan: &Plan, stage: usize, started: &[usize], state: &mut State) {
    if plan.kind == Kind::Rehearsal {
        return;
    }
    let steps = &plan.stages[stage].steps;
    if let Some(step) = started
        .iter()
        .map(|&i| &steps[i])
        .find(|s| s.traits().writes_data)
    {
        state.warnings.push(format!(
            "`{}` began before the failure and may have changed the data, which the old version put back now runs on. cutover took no backup: check the data, or restore your own backup",
            step.describe(plan)
        ));
    }
}

/// Whether every new container of the stage was started (a stage that starts none, such as a
/// backup's, counts as started): from then on the stage is finished rather than undone, by
/// recovery after a crash as after a signal.
/// A rehearsal is never committed: production did not move, and undoing it removes its copy.
fn committed(plan: &Plan, stage: usize, state: &State) -> bool {
    if plan.kind == Kind::Rehearsal {
        return false;
    }
    let started = state.started.get(&stage);
    plan.stages[stage]
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.traits().runs_app)
        .all(|(i, _)| started.is_some_and(|s| s.contains(&i)))
}

/// An undo's end in the report: what it said (a restored backup), or its failure, which stops
/// the rollback unless the backup's restore covers it (a warning then); the journal's phase and
/// detail.
fn undo_result(
    result: Result<Option<String>, StepError>,
    description: &str,
    number: usize,
    state: &mut State,
) -> (StepPhase, Option<String>, Option<String>) {
    match result {
        Ok(said) => {
            let said = said.map(|s| secrets::redact(&s));
            if let Some(said) = &said {
                tracing::info!("      {said}");
                if !state.restored.contains(said) {
                    state.restored.push(said.clone());
                }
            }
            state.reports[number].status = StepStatus::Undone;
            (StepPhase::Done, said, None)
        }
        Err(e) => {
            let message = secrets::redact(&e.to_string());
            state.reports[number].status = StepStatus::UndoFailed;
            let failure = match e {
                StepError::Covered(_) => {
                    tracing::warn!("{message}");
                    state.warnings.push(format!("{description}: {message}"));
                    None
                }
                _ => {
                    tracing::error!("undo failed: {message}");
                    Some(message.clone())
                }
            };
            (StepPhase::Failed, Some(message), failure)
        }
    }
}

/// A step's number across the whole plan, as the journal and the report count them.
pub(crate) fn global(plan: &Plan, stage: usize, index: usize) -> usize {
    plan.stages[..stage]
        .iter()
        .map(|s| s.steps.len())
        .sum::<usize>()
        + index
}

/// How one undo ended, and whether the engine went away meanwhile.
struct Undid {
    undone: bool,
    /// What a person must finish by hand; not for an undo whose data the backup's restore
    /// covers, which is only a warning.
    failure: Option<String>,
    engine_was_away: bool,
}

/// How a stage's forward run ended.
enum Flow {
    Done,
    Failed(String),
}

pub struct Runner<'a> {
    pub engine: &'a dyn Engine,
    pub journal: &'a mut Journal,
    pub progress: Option<&'a MultiProgress>,
    pub fault: Option<Fault>,
    /// A signal asking the run to stop, read between steps.
    pub interrupt: Interrupt,
    /// What is left of the run's wait for an absent engine.
    pub patience: Patience,
}

/// One wait for an absent engine per run ([`Engine::wait`]), shared by every step and undo: an
/// engine that stays away (dockerd stopped for good, a host powered off) ends the run once the
/// wait is spent, rather than after a wait per step and per undo, with the lock held meanwhile.
/// A restart that comes back within it lets the run go on as before.
#[derive(Debug, Default)]
pub struct Patience {
    /// What is left, once the engine first stopped answering.
    left: std::sync::Mutex<Option<Duration>>,
    /// The wait was spent and the engine still did not answer: nothing more is tried.
    spent: std::sync::atomic::AtomicBool,
}

impl Patience {
    fn left(&self, engine: &dyn Engine) -> Duration {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        *left.get_or_insert_with(|| engine.wait())
    }

    fn spend(&self, waited: Duration, back: bool) {
        let mut left = self.left.lock().unwrap_or_else(|e| e.into_inner());
        let now = left.unwrap_or_default().saturating_sub(waited);
        *left = Some(now);
        if !back {
            self.spent.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    /// The engine did not come back within the run's wait.
    pub fn spent(&self) -> bool {
        self.spent.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Whether a failure came with the engine's absence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absence {
    /// The engine answers: the failure is the step's own.
    None,
    /// It was gone and answers again.
    Back,
    /// It was gone and did not come back within the run's wait.
    Gone,
}

impl Runner<'_> {
    /// Runs the whole plan; a failing stage is undone and ends the run.
    pub async fn run(&mut self, plan: &Plan) -> Result<RunReport, RunError> {
        let mut state = State::new(plan);
        for stage in 0..plan.stages.len() {
            if let Flow::Failed(failure) = self.forward(plan, stage, 0, &mut state).await? {
                return self.fail(plan, stage, failure, state, false).await;
            }
        }
        self.succeed(plan, plan.stages.len(), state, false, "done".into())
            .await
    }

    /// Brings an interrupted run to an end: its stage is finished when every successor of it
    /// was started (their health decides), otherwise every step it began is undone.
    pub async fn resume(&mut self, run: &Run) -> Result<RunReport, RunError> {
        let plan = &run.plan;
        let mut state = State::from_run(run);
        for id in state.slots.values() {
            if let Some(c) = self.engine.inspect(id).await.ok().flatten() {
                secrets::register_env(c.env());
            }
        }
        let Some(stage) = run.current_stage() else {
            return Ok(self.end(
                plan,
                Outcome::NothingChanged,
                "the interrupted run had not begun any step".into(),
                0,
                state,
                true,
                Vec::new(),
            )?);
        };
        let started = run.started(stage);
        let last = *started.last().unwrap_or(&0);
        let last_done = run.steps.get(&(stage, last)).is_some_and(|r| r.done);
        if committed(plan, stage, &state) && !run.rolling_back.contains(&stage) {
            let from = if last_done { last + 1 } else { last };
            tracing::info!(
                "every new container of the interrupted run was started: finishing it from step {}",
                global(plan, stage, from) + 1
            );
            if let Flow::Failed(failure) = self.forward(plan, stage, from, &mut state).await? {
                return self.fail(plan, stage, failure, state, true).await;
            }
            return self
                .succeed(plan, stage + 1, state, true, "finished".into())
                .await;
        }
        tracing::info!(
            "undoing the {} steps the interrupted run began",
            started.len()
        );
        self.fail(plan, stage, "the run was interrupted".into(), state, true)
            .await
    }

    async fn forward(
        &mut self,
        plan: &Plan,
        stage: usize,
        from: usize,
        state: &mut State,
    ) -> Result<Flow, RunError> {
        for index in from..plan.stages[stage].steps.len() {
            if let Some(failure) = self.step(plan, stage, index, state).await? {
                return Ok(Flow::Failed(failure));
            }
        }
        Ok(Flow::Done)
    }

    /// Runs one step, journaled before and after it: `Some(failure)` when the stage must stop.
    async fn step(
        &mut self,
        plan: &Plan,
        stage: usize,
        index: usize,
        state: &mut State,
    ) -> Result<Option<String>, RunError> {
        let step = &plan.stages[stage].steps[index];
        let number = global(plan, stage, index);
        let description = step.describe(plan);
        if let Some(stop) = self.begin(plan, stage, index, &description, state) {
            return Ok(Some(stop));
        }
        #[cfg(test)]
        self.crash_point(number, Moment::Began)?;
        let clock = tokio::time::Instant::now();
        let result = self.perform(step, state).await;
        state.reports[number].millis = clock.elapsed().as_millis() as u64;
        match result {
            Ok(done) => {
                self.done(plan, stage, index, &description, done, state)
                    .await
            }
            Err(e) => Ok(self
                .failed(plan, stage, index, &description, e, state)
                .await),
        }
    }

    /// Says and journals that a step begins, unless a signal or a journal that cannot be
    /// written stops the stage before it: then why.
    fn begin(
        &mut self,
        plan: &Plan,
        stage: usize,
        index: usize,
        description: &str,
        state: &mut State,
    ) -> Option<String> {
        let total = plan.step_count();
        let number = global(plan, stage, index);
        self.interrupt
            .doing(&format!("step {} of {total}, {description}", number + 1));
        if let Some(signal) = self.interrupt.raised() {
            // Before the downtime, stop; during it, go back, unless every new container was
            // started already: finishing is then the shorter way to a serving product.
            if !touched(plan, stage, state) || !committed(plan, stage, state) {
                return Some(format!("interrupted by {signal}"));
            }
        }
        tracing::info!("[{}/{total}] {description}", number + 1);
        let began = Event::Step {
            stage,
            index,
            phase: StepPhase::Started,
            detail: None,
            outputs: None,
        };
        // A step that could not be journaled is not begun: recovery would not know of it.
        if let Some(why) = self.write(began, state) {
            return Some(format!("before {description}: {why}"));
        }
        let started = state.started.entry(stage).or_default();
        if !started.contains(&index) {
            started.push(index);
        }
        if plan.stages[stage].steps[index].traits().starts_downtime {
            state.down.entry(stage).or_insert((clock::now(), None));
        }
        None
    }

    /// The step's action; one that only waits (a pull) is cut short by a signal.
    async fn perform(&self, step: &Step, state: &State) -> Result<Done, StepError> {
        let files = self.files();
        let cx = self.cx(state, &files, self.progress, false);
        match step.traits().interruptible {
            true => tokio::select! {
                done = step.action().perform(&cx) => done,
                () = self.interrupt.wait() => Err(StepError::Failed(format!(
                    "interrupted by {}",
                    self.interrupt.raised().unwrap_or("a signal")
                ))),
            },
            false => step.action().perform(&cx).await,
        }
    }

    /// Records a step that did its work; `Some(why)` when its record could not be journaled.
    async fn done(
        &mut self,
        plan: &Plan,
        stage: usize,
        index: usize,
        description: &str,
        done: Done,
        state: &mut State,
    ) -> Result<Option<String>, RunError> {
        let number = global(plan, stage, index);
        #[cfg(test)]
        self.crash_point(number, Moment::Acted)?;
        let report = &mut state.reports[number];
        report.status = StepStatus::Done;
        let detail = done.detail.map(|d| secrets::redact(&d));
        if let Some(detail) = &detail {
            tracing::info!("      {detail}");
        }
        report.detail = detail.clone();
        if let Some(warning) = done.warning.as_deref().map(secrets::redact) {
            tracing::warn!("{warning}");
            state.warnings.push(warning);
        }
        state.learn(stage, index, done.outputs.clone());
        let finished = Event::Step {
            stage,
            index,
            phase: StepPhase::Done,
            detail,
            outputs: Some(done.outputs),
        };
        if let Some(why) = self.write(finished, state) {
            return Ok(Some(format!("after {description}: {why}")));
        }
        #[cfg(test)]
        self.crash_point(number, Moment::Journaled)?;
        #[cfg(test)]
        if self.fault == Some(Fault::Signal(number)) {
            self.interrupt.raise("SIGTERM");
        }
        self.pause_if_asked(number).await;
        Ok(None)
    }

    /// [`Fault::PauseAfter`]: waits once step `number` (0-based) is done.
    async fn pause_if_asked(&self, number: usize) {
        let Some(Fault::PauseAfter(step, pause_for)) = self.fault else {
            return;
        };
        if step != number + 1 {
            return;
        }
        tracing::warn!("{PAUSE_AFTER_ENV}={step}: pausing here until killed or signalled");
        match pause_for {
            Some(pause) => tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = self.interrupt.wait() => {}
            },
            None => self.interrupt.wait().await,
        }
    }

    /// Records a step that failed: `Some(failure)` unless it was a cleanup after the service was
    /// healthy, which is only a warning.
    async fn failed(
        &mut self,
        plan: &Plan,
        stage: usize,
        index: usize,
        description: &str,
        e: StepError,
        state: &mut State,
    ) -> Option<String> {
        let step = &plan.stages[stage].steps[index];
        let mut message = secrets::redact(&e.to_string());
        if self.engine_returned(&e).await == Absence::Back {
            message.push_str(" (the Docker engine went away during the step and is back: the step's container was stopped with it)");
        }
        let report = &mut state.reports[global(plan, stage, index)];
        report.status = StepStatus::Failed;
        report.detail = Some(message.clone());
        let failed = Event::Step {
            stage,
            index,
            phase: StepPhase::Failed,
            detail: Some(message.clone()),
            outputs: None,
        };
        self.write(failed, state);
        if step.traits().cleanup {
            tracing::warn!(
                "{} failed after the service was healthy: {message}",
                step.name()
            );
            state.warnings.push(format!("{description}: {message}"));
            return None;
        }
        tracing::error!("{} failed: {message}", step.name());
        Some(format!("{description}: {message}"))
    }

    #[cfg(test)]
    fn crash_point(&self, step: usize, at: Moment) -> Result<(), RunError> {
        match self.fault == Some(Fault::Crash { step, at }) {
            true => Err(RunError::Interrupted),
            false => Ok(()),
        }
    }

    fn files(&self) -> PathBuf {
        self.journal.files_dir()
    }

    /// What a step may use, as the run stands.
    fn cx<'s>(
        &'s self,
        state: &'s State,
        files: &'s Path,
        progress: Option<&'s MultiProgress>,
        data_touched: bool,
    ) -> Cx<'s> {
        Cx {
            engine: self.engine,
            slots: &state.slots,
            files,
            progress,
            data_touched,
            captured: &state.captured,
            runs: &super::journal::StateDirs,
        }
    }

    /// Undoes a failed stage, confirms that every member runs its container from before the
    /// stage, and ends the run.
    async fn fail(
        &mut self,
        plan: &Plan,
        stage: usize,
        failure: String,
        mut state: State,
        recovered: bool,
    ) -> Result<RunReport, RunError> {
        let started = state.started.get(&stage).cloned().unwrap_or_default();
        if self.patience.spent() {
            return self.abandon(plan, stage, failure, state, recovered, Vec::new());
        }
        if let Some(migration) = keeps_new(plan, stage, &started, &state) {
            let old = match plan.moves_a_service() {
                true => "the services' specs kept on the new image".to_string(),
                false => format!(
                    "the old {} kept stopped",
                    plan.members
                        .iter()
                        .map(|m| old_name(m))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            };
            let message = format!(
                "{failure}; the step \"{migration}\" had moved the data on and the new version serves, but cutover took no backup to go back with, and the old version may refuse the migrated data: the new version was kept serving, and {old}. Check it; to go back, restore your own backup of the data first"
            );
            tracing::error!("{message}");
            return self.end_failed(
                plan,
                Outcome::KeptNew,
                message,
                stage + 1,
                state,
                recovered,
                Vec::new(),
                failure,
            );
        }
        let undo_failures = self.roll_back(plan, stage, &started, &mut state).await;
        if self.patience.spent() {
            return self.abandon(plan, stage, failure, state, recovered, undo_failures);
        }
        let back = undo_failures.is_empty() && self.confirm(plan, stage, &state).await.is_ok();
        if back {
            self.settle(plan, stage, &started, &mut state).await;
        }
        let went_down = touched(plan, stage, &state);
        if let Some((_, serving)) = state.down.get_mut(&stage) {
            *serving = Some(clock::now());
        }
        let outcome = match (back, stage, went_down) {
            (false, _, _) => Outcome::NeedsAttention,
            (true, 1.., _) => Outcome::Partial,
            (true, 0, true) => Outcome::RolledBack,
            (true, 0, false) => Outcome::NothingChanged,
        };
        if back && state.restored.is_empty() {
            warn_unrestored(plan, stage, &started, &mut state);
        }
        let message = match outcome {
            Outcome::NeedsAttention if undo_failures.is_empty() => {
                format!("{failure}; the container put back does not stay running")
            }
            Outcome::NeedsAttention => format!(
                "{failure}; could not put everything back: {}",
                undo_failures.join("; ")
            ),
            _ => failure.clone(),
        };
        self.end_failed(
            plan,
            outcome,
            message,
            stage,
            state,
            recovered,
            undo_failures,
            failure,
        )
    }

    /// Ends a run whose engine stayed away past the run's wait: nothing more is tried, so that
    /// its locks are released and its caller hears it now. The journal holds where the run
    /// stands (the steps begun, the undos done), and `cutover recover` finishes or undoes the
    /// rest once the engine answers; the run's copies of carried files stay for it.
    fn abandon(
        &mut self,
        plan: &Plan,
        stage: usize,
        failure: String,
        state: State,
        recovered: bool,
        undo_failures: Vec<String>,
    ) -> Result<RunReport, RunError> {
        let message = format!(
            "{failure}; the Docker engine did not answer within the run's wait for it ({}, --engine-wait), so cutover stopped trying: once it answers, `cutover recover {}` finishes or undoes the run",
            humantime::format_duration(self.engine.wait()),
            plan.container
        );
        tracing::error!("{message}");
        self.end_failed(
            plan,
            Outcome::NeedsAttention,
            message,
            stage,
            state,
            recovered,
            undo_failures,
            failure,
        )
    }

    /// Undoes the steps of `stage` that began, once more when the engine restarted meanwhile:
    /// what could not be undone.
    async fn roll_back(
        &mut self,
        plan: &Plan,
        stage: usize,
        started: &[usize],
        state: &mut State,
    ) -> Vec<String> {
        let steps = &plan.stages[stage].steps;
        if started
            .iter()
            .any(|&i| steps[i].action().undo_describe(plan).is_some())
        {
            match plan.kind {
                Kind::Rehearsal => tracing::warn!("removing what the rehearsal made"),
                _ => tracing::warn!("rolling back"),
            }
        }
        let (undo_failures, away) = self.undo(plan, stage, started, state).await;
        if !away || !undo_failures.is_empty() || self.patience.spent() {
            return undo_failures;
        }
        // A restart stops every container, those the rollback had started too; each undo can
        // be applied again.
        tracing::warn!("the Docker engine restarted during the rollback: rolling back again");
        self.undo(plan, stage, started, state).await.0
    }

    /// Once the old version serves again, lets each step that began remove what its undo kept
    /// until then; a failure is a warning, the old version serving either way.
    async fn settle(&mut self, plan: &Plan, stage: usize, started: &[usize], state: &mut State) {
        let files = self.files();
        for &index in started.iter().rev() {
            let step = &plan.stages[stage].steps[index];
            let cx = self.cx(state, &files, None, false);
            match step.action().settle(&cx).await {
                Ok(Some(said)) => tracing::info!("{}", secrets::redact(&said)),
                Ok(None) => {}
                Err(e) => {
                    let message = format!(
                        "{}: once the old version served, {}",
                        step.describe(plan),
                        secrets::redact(&e.to_string())
                    );
                    tracing::warn!("{message}");
                    state.warnings.push(message);
                }
            }
        }
    }

    /// Undoes the steps of `stage` that began, last first: what could not be undone, and whether
    /// the engine went away and came back meanwhile.
    async fn undo(
        &mut self,
        plan: &Plan,
        stage: usize,
        started: &[usize],
        state: &mut State,
    ) -> (Vec<String>, bool) {
        let steps = &plan.stages[stage].steps;
        let mut away = false;
        let mut undo_failures = Vec::new();
        let mut reverted = Vec::new();
        for &index in started.iter().rev() {
            if self.patience.spent() {
                break;
            }
            let step = &steps[index];
            let Some(description) = step.action().undo_describe(plan) else {
                continue;
            };
            let data_touched = started.iter().any(|&later| {
                later > index && steps[later].traits().writes_data && !reverted.contains(&later)
            });
            let undid = self
                .undo_step(plan, stage, index, &description, data_touched, state)
                .await;
            away |= undid.engine_was_away;
            if undid.undone && step.traits().reverts_data {
                reverted.push(index);
            }
            if let Some(message) = undid.failure {
                undo_failures.push(format!("{description}: {message}"));
                if step.traits().critical_undo {
                    tracing::error!("stopping the rollback here: what comes before this step would run on data that could not be put back");
                    break;
                }
            }
        }
        (undo_failures, away)
    }

    /// Undoes one step, journaled before and after, applied again when it failed for the
    /// engine's absence alone.
    async fn undo_step(
        &mut self,
        plan: &Plan,
        stage: usize,
        index: usize,
        description: &str,
        data_touched: bool,
        state: &mut State,
    ) -> Undid {
        let step = &plan.stages[stage].steps[index];
        self.interrupt
            .doing(&format!("rolling back: {description}"));
        tracing::info!("undo: {description}");
        // Without a journal the rollback still goes on: every undo can be applied again.
        let began = Event::Undo {
            stage,
            index,
            phase: StepPhase::Started,
            detail: None,
        };
        self.write(began, state);
        let clock = tokio::time::Instant::now();
        let files = self.files();
        let cx = self.cx(state, &files, None, data_touched);
        let outputs = state.outputs.get(&(stage, index));
        let (result, engine_was_away) = self.attempt_undo(step, &cx, outputs, description).await;
        let number = global(plan, stage, index);
        state.reports[number].millis += clock.elapsed().as_millis() as u64;
        let (phase, detail, failure) = undo_result(result, description, number, state);
        let undone = phase == StepPhase::Done;
        let ended = Event::Undo {
            stage,
            index,
            phase,
            detail,
        };
        self.write(ended, state);
        Undid {
            undone,
            failure,
            engine_was_away,
        }
    }

    /// Applies a step's undo, again while it fails for the engine's absence alone; and whether
    /// the engine was away.
    async fn attempt_undo(
        &self,
        step: &Step,
        cx: &Cx<'_>,
        outputs: Option<&Outputs>,
        description: &str,
    ) -> (Result<Option<String>, StepError>, bool) {
        let mut engine_was_away = false;
        let mut result = step.action().undo(cx, outputs).await;
        for _ in 1..UNDO_ATTEMPTS {
            match &result {
                Err(e) if self.engine_returned(e).await == Absence::Back => {
                    engine_was_away = true;
                    tracing::info!("undo again: {description}");
                    result = step.action().undo(cx, outputs).await;
                }
                _ => break,
            }
        }
        (result, engine_was_away)
    }

    async fn succeed(
        &mut self,
        plan: &Plan,
        stages_done: usize,
        state: State,
        recovered: bool,
        message: String,
    ) -> Result<RunReport, RunError> {
        let outcome = if stages_done == plan.stages.len() {
            Outcome::Succeeded
        } else {
            Outcome::Partial
        };
        Ok(self.end(
            plan,
            outcome,
            message,
            stages_done,
            state,
            recovered,
            Vec::new(),
        )?)
    }

    /// Ends a run that failed: [`Runner::end`], with the failure that started the rollback.
    #[allow(clippy::too_many_arguments)]
    fn end_failed(
        &mut self,
        plan: &Plan,
        outcome: Outcome,
        message: String,
        stages_done: usize,
        state: State,
        recovered: bool,
        undo_failures: Vec<String>,
        failure: String,
    ) -> Result<RunReport, RunError> {
        let report = self.end(
            plan,
            outcome,
            message,
            stages_done,
            state,
            recovered,
            undo_failures,
        )?;
        Ok(RunReport {
            failure: Some(failure),
            ..report
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn end(
        &mut self,
        plan: &Plan,
        outcome: Outcome,
        message: String,
        stages_done: usize,
        state: State,
        recovered: bool,
        undo_failures: Vec<String>,
    ) -> Result<RunReport, JournalError> {
        let mut state = state;
        let downtime_ms = state.downtime_ms();
        let ended = Event::End {
            outcome,
            message: secrets::redact(&message),
            downtime_ms,
            recovered,
        };
        self.write(ended, &mut state);
        if let Some(why) = &state.unjournaled {
            // The journal lacks records: `recover` closes it, applying again what it must.
            state.warnings.push(format!(
                "{why}; once there is room, `cutover recover {}` closes the run's journal",
                plan.container
            ));
        }
        if outcome != Outcome::NeedsAttention {
            // The copies served their purpose; a run that needs a person keeps them.
            let _ = std::fs::remove_dir_all(self.files());
        }
        Ok(RunReport {
            outcome,
            failure: None,
            undo_failures,
            warnings: state.warnings,
            restored: state.restored,
            downtime_ms,
            settled_ms: state.settled_ms,
            stages_done,
            running: plan.image_after(stages_done).to_string(),
            steps: state.reports,
            journal: self.journal.path().display().to_string(),
        })
    }

    /// Journals an event; `Some(why)` when the journal cannot be written (a full disk), which
    /// the state keeps so the run stops before its next step and says so.
    fn write(&mut self, event: Event, state: &mut State) -> Option<String> {
        let error = self.journal.record(event).err()?;
        let why = format!("the journal cannot be written ({error})");
        if state.unjournaled.is_none() {
            tracing::error!("{why}: stopping before the next step");
            state.unjournaled = Some(why.clone());
        }
        Some(why)
    }

    /// After a step failed: when the engine itself was gone, waits for it to answer again, for
    /// what is left of the run's [`Patience`]. `Back` when it was gone and is back, so that what
    /// failed for its absence alone can be judged, or undone, against the engine as it is now.
    async fn engine_returned(&self, error: &StepError) -> Absence {
        if self.patience.spent() {
            return Absence::Gone;
        }
        let lost = matches!(error, StepError::Engine(e) if e.is_lost());
        if !lost && self.answers().await {
            return Absence::None;
        }
        let left = self.patience.left(self.engine);
        tracing::warn!(
            "the Docker engine stopped answering: waiting up to {} for it to come back",
            humantime::format_duration(left)
        );
        self.interrupt
            .doing("waiting for the Docker engine to answer again");
        let began = tokio::time::Instant::now();
        let back = loop {
            if self.answers().await {
                break true;
            }
            let waited = began.elapsed();
            if waited >= left {
                break false;
            }
            tokio::time::sleep(ENGINE_POLL.min(left - waited)).await;
        };
        self.patience.spend(began.elapsed(), back);
        match back {
            true => {
                tracing::info!("the Docker engine answers again");
                Absence::Back
            }
            false => {
                tracing::error!(
                    "the Docker engine did not come back within the run's wait for it ({}): stopping here",
                    humantime::format_duration(self.engine.wait())
                );
                Absence::Gone
            }
        }
    }

    /// Whether the engine answers a ping within [`PING_TIMEOUT`].
    async fn answers(&self) -> bool {
        matches!(
            tokio::time::timeout(PING_TIMEOUT, self.engine.ping()).await,
            Ok(Ok(()))
        )
    }

    /// After undoing a stage, each member's container from before it must serve under the
    /// member's name and keep running.
    /// A member without containers of the plan's (a Swarm service, whose manager runs its tasks)
    /// was confirmed by its own undo.
    async fn confirm(&self, plan: &Plan, stage: usize, state: &State) -> Result<(), StepError> {
        for member in &plan.members {
            let slot = Slot::new(member, stage as u32);
            if !plan.slots.contains_key(&slot) {
                continue;
            }
            let id = state
                .slots
                .get(&slot)
                .ok_or_else(|| StepError::Unbound(slot.clone()))?;
            let c = inspect_required(self.engine, id).await?;
            if c.name() != member {
                return Err(StepError::Failed(format!(
                    "{} is not named {member}",
                    plan.label(&slot)
                )));
            }
            health::confirm_running(self.engine, id, CONFIRM_SETTLE).await?;
        }
        Ok(())
    }
}

/// Whether the stage changed what serves: took it down, or began replacing it.
fn touched(plan: &Plan, stage: usize, state: &State) -> bool {
    let steps = &plan.stages[stage].steps;
    state.down.contains_key(&stage)
        || state
            .started
            .get(&stage)
            .is_some_and(|began| began.iter().any(|&i| steps[i].traits().replaces_app))
}
