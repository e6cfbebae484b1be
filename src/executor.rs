//! Runs a plan, journaling each step before and after it, and undoes what it started when a
//! step fails.

use std::time::{Duration, Instant};

use indicatif::MultiProgress;
use serde::Serialize;

use crate::docker::{self, Engine, EngineError};
use crate::health::{self, HealthError};
use crate::journal::{Event, Journal, JournalError, Outcome, Phase};
use crate::plan::{self, Plan, Role, Step};
use crate::recreate::{self, Difference};
use crate::reference::ImageRef;
use crate::secrets;

/// How long a container put back by a rollback must keep running to count as running again.
const CONFIRM_SETTLE: Duration = Duration::from_secs(3);

/// Fault injection for the crash-recovery tests: `CUTOVER_PAUSE_AFTER=N` makes a run stop
/// forever after step N (1-based, as printed) is journaled as done, so a test can kill it at a
/// known point. Unset in normal use.
const PAUSE_AFTER_ENV: &str = "CUTOVER_PAUSE_AFTER";

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("the new container does not carry every setting of the old one: {}", list(.0))]
    ConfigLost(Vec<Difference>),
    #[error("the {0:?} container is not known to this run")]
    UnknownContainer(Role),
    #[error("{0} is not an image reference")]
    BadImage(String),
}

fn list(diffs: &[Difference]) -> String {
    diffs.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// The containers a run acts on, by id, so renames never confuse them.
#[derive(Debug, Clone)]
pub struct Containers {
    pub outgoing: String,
    pub incoming: Option<String>,
}

impl Containers {
    fn id(&self, who: Role) -> Result<&str, StepError> {
        match who {
            Role::Outgoing => Ok(&self.outgoing),
            Role::Incoming => self.incoming.as_deref().ok_or(StepError::UnknownContainer(who)),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StepReport {
    pub step: &'static str,
    pub description: String,
    /// `done`, `failed`, `undone`, `undo_failed` or `not_run`.
    pub status: &'static str,
    pub millis: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub outcome: Outcome,
    /// What failed, when something did.
    pub failure: Option<String>,
    /// Undo steps that failed: what a person must finish by hand.
    pub undo_failures: Vec<String>,
    /// Problems after the service was confirmed healthy (for example the old container could
    /// not be removed); they do not undo a healthy upgrade.
    pub warnings: Vec<String>,
    pub downtime_ms: Option<u64>,
    pub steps: Vec<StepReport>,
    pub journal: String,
}

pub struct Executor<'a> {
    pub engine: &'a Engine,
    pub journal: &'a mut Journal,
    pub progress: Option<&'a MultiProgress>,
}

impl Executor<'_> {
    pub async fn run(&mut self, plan: &Plan) -> Result<RunReport, JournalError> {
        let mut containers = Containers { outgoing: plan.outgoing_id.clone(), incoming: plan.incoming_id.clone() };
        let mut steps: Vec<StepReport> = plan
            .steps
            .iter()
            .map(|s| StepReport { step: s.name(), description: s.describe(), status: "not_run", millis: 0 })
            .collect();
        let mut warnings = Vec::new();
        let mut failure = None;
        let mut stopped_at: Option<Instant> = None;
        let mut healthy_at: Option<Instant> = None;
        let mut started = Vec::new();
        let total = plan.steps.len();
        let pause_after: Option<usize> = std::env::var(PAUSE_AFTER_ENV).ok().and_then(|v| v.parse().ok());
        for (index, step) in plan.steps.iter().enumerate() {
            tracing::info!("[{}/{total}] {}", index + 1, step.describe());
            self.journal.record(Event::Step { index, phase: Phase::Started, detail: None, incoming_id: None })?;
            started.push(index);
            if matches!(step, Step::Stop { who: Role::Outgoing, .. }) {
                stopped_at = Some(Instant::now());
            }
            let clock = Instant::now();
            let result = self.perform(plan, step, &mut containers).await;
            steps[index].millis = clock.elapsed().as_millis() as u64;
            match result {
                Ok(detail) => {
                    steps[index].status = "done";
                    if let Some(detail) = &detail {
                        tracing::info!("      {detail}");
                    }
                    if matches!(step, Step::AwaitHealthy { .. }) {
                        healthy_at = Some(Instant::now());
                    }
                    self.journal.record(Event::Step { index, phase: Phase::Done, detail, incoming_id: containers.incoming.clone() })?;
                    if pause_after == Some(index + 1) {
                        tracing::warn!("{PAUSE_AFTER_ENV}={}: pausing here until killed", index + 1);
                        std::future::pending::<()>().await;
                    }
                }
                Err(e) => {
                    let message = secrets::redact(&e.to_string());
                    steps[index].status = "failed";
                    self.journal.record(Event::Step { index, phase: Phase::Failed, detail: Some(message.clone()), incoming_id: containers.incoming.clone() })?;
                    if step.is_cleanup() {
                        tracing::warn!("{} failed after the service was healthy: {message}", step.name());
                        warnings.push(format!("{}: {message}", step.describe()));
                        continue;
                    }
                    tracing::error!("{} failed: {message}", step.name());
                    failure = Some(format!("{}: {message}", step.describe()));
                    break;
                }
            }
        }

        let (outcome, undo_failures, downtime_end) = match &failure {
            None => (Outcome::Succeeded, Vec::new(), healthy_at),
            Some(_) => {
                if started.iter().any(|&i| plan.steps[i].undo().is_some()) {
                    tracing::warn!("rolling back");
                } else {
                    tracing::info!("nothing was changed yet; nothing to undo");
                }
                let undo_failures = undo(self.engine, self.journal, plan, &started, &containers, Some(&mut steps)).await?;
                let back = undo_failures.is_empty() && confirm_outgoing(self.engine, plan, &containers).await.is_ok();
                let outcome = match (back, stopped_at) {
                    (false, _) => Outcome::NeedsAttention,
                    (true, Some(_)) => Outcome::RolledBack,
                    (true, None) => Outcome::NothingChanged,
                };
                (outcome, undo_failures, Some(Instant::now()))
            }
        };
        let downtime_ms = stopped_at.zip(downtime_end).map(|(a, b)| b.duration_since(a).as_millis() as u64);
        let message = failure.clone().unwrap_or_else(|| "done".into());
        self.journal.record(Event::End { outcome, message, downtime_ms, recovered: false })?;
        Ok(RunReport {
            outcome,
            failure,
            undo_failures,
            warnings,
            downtime_ms,
            steps,
            journal: self.journal.path().display().to_string(),
        })
    }

    async fn perform(&self, plan: &Plan, step: &Step, containers: &mut Containers) -> Result<Option<String>, StepError> {
        perform(self.engine, plan, step, containers, self.progress).await
    }
}

async fn perform(
    engine: &Engine,
    plan: &Plan,
    step: &Step,
    containers: &mut Containers,
    progress: Option<&MultiProgress>,
) -> Result<Option<String>, StepError> {
    match step {
        Step::Pull { image } => {
            let reference = ImageRef::parse(image).ok_or_else(|| StepError::BadImage(image.clone()))?;
            engine.pull(&reference, progress).await?;
            Ok(None)
        }
        Step::Create { name, spec } => {
            let id = engine.create(name, spec).await?;
            containers.incoming = Some(id.clone());
            engine.connect_networks(&id, name, spec).await?;
            Ok(Some(format!("created {name} ({})", docker::short(&id))))
        }
        Step::Verify => {
            let created = engine.inspect_required(containers.id(Role::Incoming)?).await?;
            let spec = plan.steps.iter().find_map(|s| match s {
                Step::Create { spec, .. } => Some(spec),
                _ => None,
            });
            let diffs = spec.map(|spec| recreate::verify(spec, &created)).unwrap_or_default();
            if diffs.is_empty() {
                Ok(Some("every setting of the old container is carried".into()))
            } else {
                Err(StepError::ConfigLost(diffs))
            }
        }
        Step::Stop { who, timeout_secs } => Ok(engine.stop(containers.id(*who)?, *timeout_secs).await.map(|_| None)?),
        Step::Rename { who, to, .. } => Ok(engine.rename(containers.id(*who)?, to).await.map(|_| None)?),
        Step::Start { who } => Ok(engine.start(containers.id(*who)?).await.map(|_| None)?),
        Step::AwaitHealthy { who, policy } => {
            Ok(Some(health::await_healthy(engine, containers.id(*who)?, policy).await?))
        }
        Step::Remove { who } => Ok(engine.remove(containers.id(*who)?).await.map(|_| None)?),
    }
}

/// Undoes the started steps, last first, journaling each undo. Every undo is tried even when
/// an earlier one failed, so as much as possible is put back; the failures are returned.
pub async fn undo(
    engine: &Engine,
    journal: &mut Journal,
    plan: &Plan,
    started: &[usize],
    containers: &Containers,
    mut reports: Option<&mut Vec<StepReport>>,
) -> Result<Vec<String>, JournalError> {
    let mut failures = Vec::new();
    let mut containers = containers.clone();
    for &index in started.iter().rev() {
        let Some(undo) = plan.steps[index].undo() else { continue };
        if matches!(undo, Step::Remove { who: Role::Incoming }) && containers.incoming.is_none() {
            continue; // the create never returned an id: there is nothing to remove.
        }
        tracing::info!("undo: {}", undo.describe());
        journal.record(Event::Undo { index, phase: Phase::Started, detail: None })?;
        let clock = Instant::now();
        let result = perform(engine, plan, &undo, &mut containers, None).await;
        let status = match result {
            Ok(_) => {
                journal.record(Event::Undo { index, phase: Phase::Done, detail: None })?;
                "undone"
            }
            Err(e) => {
                let message = secrets::redact(&e.to_string());
                tracing::error!("undo failed: {message}");
                journal.record(Event::Undo { index, phase: Phase::Failed, detail: Some(message.clone()) })?;
                failures.push(format!("{}: {message}", undo.describe()));
                "undo_failed"
            }
        };
        if let Some(reports) = reports.as_deref_mut() {
            reports[index].status = status;
            reports[index].millis += clock.elapsed().as_millis() as u64;
        }
    }
    Ok(failures)
}

/// After a rollback, the container serving under the name must be the outgoing one and keep
/// running; for an upgrade that is the old container, for a rollback the one it replaced.
pub async fn confirm_outgoing(engine: &Engine, plan: &Plan, containers: &Containers) -> Result<(), StepError> {
    let c = engine.inspect_required(&containers.outgoing).await?;
    if docker::name_of(&c) != plan.container {
        return Err(StepError::UnknownContainer(Role::Outgoing));
    }
    health::confirm_running(engine, &containers.outgoing, CONFIRM_SETTLE).await?;
    Ok(())
}

/// The incoming container of an upgrade whose create step never journaled its id: the one
/// under the temporary name, or under the service's name when it is not the outgoing one.
pub async fn find_incoming(engine: &Engine, known: Option<&str>, plan: &Plan) -> Result<Option<String>, EngineError> {
    if let Some(id) = known {
        return Ok(Some(id.to_string()));
    }
    for name in [plan::new_name(&plan.container), plan.container.clone()] {
        if let Some(c) = engine.inspect(&name).await? {
            let id = c.id.unwrap_or_default();
            if id != plan.outgoing_id {
                return Ok(Some(id));
            }
        }
    }
    Ok(None)
}
