//! `cutover recover`: bringing the service back after a run was killed (the process, or the
//! machine) part-way.
//!
//! The journal says which steps began. If the new container had been started and is healthy,
//! the upgrade is finished; otherwise every step that began is undone, last first. Undo steps
//! are idempotent, so a step that began but never completed is undone safely too.

use serde::Serialize;

use crate::docker::Engine;
use crate::error::Result;
use crate::executor::{self, Containers};
use crate::health;
use crate::journal::{Event, JournalError, Outcome, Run, StateDir};
use crate::plan::{Kind, Role, Step};
use crate::secrets;

#[derive(Debug, Serialize)]
pub struct Recovery {
    pub container: String,
    pub kind: Kind,
    pub journal: String,
    /// `None` when the run is still going on in another process and was left alone.
    pub outcome: Option<Outcome>,
    pub message: String,
}

pub async fn recover(engine: &Engine, state: &StateDir, name: Option<&str>) -> Result<Vec<Recovery>> {
    let mut recoveries = Vec::new();
    for run in state.unfinished(name)? {
        let mut recovery = Recovery {
            container: run.plan.container.clone(),
            kind: run.plan.kind,
            journal: run.path.display().to_string(),
            outcome: None,
            message: String::new(),
        };
        let _lock = match state.lock(&run.plan.container) {
            Ok(lock) => lock,
            Err(JournalError::Busy { .. }) => {
                recovery.message = "the run is still going on in another cutover process; left alone".into();
                recoveries.push(recovery);
                continue;
            }
            Err(e) => return Err(e.into()),
        };
        let (outcome, message) = recover_run(engine, state, &run).await?;
        recovery.outcome = Some(outcome);
        recovery.message = message;
        recoveries.push(recovery);
    }
    Ok(recoveries)
}

async fn recover_run(engine: &Engine, state: &StateDir, run: &Run) -> Result<(Outcome, String)> {
    let plan = &run.plan;
    let mut journal = state.resume(run)?;
    let known = run.incoming_id.clone().or(plan.incoming_id.clone());
    let incoming = match plan.kind {
        Kind::Upgrade => executor::find_incoming(engine, known.as_deref(), plan).await?,
        Kind::Rollback => known,
    };
    for id in [Some(&plan.outgoing_id), incoming.as_ref()].into_iter().flatten() {
        if let Some(c) = engine.inspect(id).await? {
            secrets::register_container(&c);
        }
    }
    let containers = Containers { outgoing: plan.outgoing_id.clone(), incoming };

    if plan.kind == Kind::Upgrade {
        if let Some(message) = try_finish(engine, run, &containers).await? {
            journal.record(Event::End { outcome: Outcome::Succeeded, message: message.clone(), downtime_ms: None, recovered: true })?;
            return Ok((Outcome::Succeeded, message));
        }
    }

    tracing::info!("undoing the {} steps the interrupted run began", run.started_steps.len());
    let failures = executor::undo(engine, &mut journal, plan, &run.started_steps, &containers, None).await?;
    let confirmed = failures.is_empty() && executor::confirm_outgoing(engine, plan, &containers).await.is_ok();
    let went_down = run.started_steps.iter().any(|&i| matches!(plan.steps[i], Step::Stop { who: Role::Outgoing, .. }));
    let (outcome, message) = match (confirmed, went_down) {
        (true, true) => (Outcome::RolledBack, format!("rolled back: {} runs the container it ran before the interrupted {}", plan.container, kind_word(plan.kind))),
        (true, false) => (Outcome::NothingChanged, format!("undone: the interrupted {} had not stopped {} yet; it runs as before", kind_word(plan.kind), plan.container)),
        (false, _) if failures.is_empty() => (Outcome::NeedsAttention, format!("the old container of {} was put back but does not stay running", plan.container)),
        (false, _) => (Outcome::NeedsAttention, format!("could not put everything back: {}", failures.join("; "))),
    };
    journal.record(Event::End { outcome, message: message.clone(), downtime_ms: None, recovered: true })?;
    Ok((outcome, message))
}

/// Finishes an upgrade whose new container was started and is (or becomes) healthy.
async fn try_finish(engine: &Engine, run: &Run, containers: &Containers) -> Result<Option<String>> {
    let plan = &run.plan;
    let Some(incoming) = containers.incoming.as_deref() else { return Ok(None) };
    let started_new = run.started_steps.iter().any(|&i| matches!(plan.steps[i], Step::Start { who: Role::Incoming }));
    let running = engine.inspect(incoming).await?.is_some_and(|c| crate::docker::is_running(&c));
    let policy = plan.steps.iter().find_map(|s| match s {
        Step::AwaitHealthy { policy, .. } => Some(policy.clone()),
        _ => None,
    });
    let (true, true, Some(policy)) = (started_new, running, policy) else { return Ok(None) };
    tracing::info!("the new container of {} was started; checking its health: {}", plan.container, policy.describe());
    let evidence = match health::await_healthy(engine, incoming, &policy).await {
        Ok(evidence) => evidence,
        Err(e) => {
            tracing::warn!("the new container is not healthy ({}); rolling back", secrets::redact(&e.to_string()));
            return Ok(None);
        }
    };
    let removes_old = plan.steps.iter().any(|s| matches!(s, Step::Remove { who: Role::Outgoing }));
    if removes_old {
        engine.remove(&containers.outgoing).await?;
    }
    let kept = if removes_old { "the old container removed" } else { "the old container kept as -old" };
    Ok(Some(format!("finished: {} runs {} ({evidence}), {kept}", plan.container, plan.image_to)))
}

fn kind_word(kind: Kind) -> &'static str {
    match kind {
        Kind::Upgrade => "upgrade",
        Kind::Rollback => "rollback",
    }
}
