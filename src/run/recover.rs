//! `cutover recover`: bringing the service back after a run was killed (the process, or the
//! machine) part-way.
//!
//! The journal alone tells what to do: which stage the run was in, which steps began, and the
//! containers they bound. A stage whose new containers had all been started is finished (their
//! health decides); otherwise every step it began is undone, last first. Undo steps are
//! idempotent, so a step that began but never completed is undone safely too.

use serde::Serialize;

use super::interrupt::Interrupt;
use super::journal::{JournalError, Outcome, StateDir};
use super::runner::{RunError, RunReport, Runner};
use crate::engine::Engine;
use crate::plan::{Kind, Step};

#[derive(Debug, Serialize)]
pub struct Recovery {
    pub container: String,
    /// `None` when the journal cannot be read.
    pub kind: Option<Kind>,
    pub journal: String,
    /// `None` when the run is still going on in another process and was left alone.
    pub outcome: Option<Outcome>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub downtime_ms: Option<u64>,
    /// Every container the run moved, whose claims on the engine its killed controller left.
    #[serde(skip)]
    pub members: Vec<String>,
    /// Left for later: the run of another host's node it depends on must be recovered first.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waits_for: Option<String>,
}

pub async fn recover(
    engine: &dyn Engine,
    state: &StateDir,
    name: Option<&str>,
    interrupt: &Interrupt,
) -> Result<Vec<Recovery>, RunError> {
    // A journal that cannot be read is said first, as needing a person: taking it for nothing
    // to recover could leave a service down while cutover says all is well.
    let mut recoveries: Vec<Recovery> = state
        .unreadable(name)?
        .iter()
        .map(|journal| Recovery {
            container: journal.container.clone(),
            kind: None,
            journal: journal.path.display().to_string(),
            outcome: Some(Outcome::NeedsAttention),
            message: journal.advice(),
            downtime_ms: None,
            members: Vec::new(),
            waits_for: None,
        })
        .collect();
    for run in state.unfinished(name)? {
        let plan = &run.plan;
        let mut recovery = Recovery {
            container: plan.container.clone(),
            kind: Some(plan.kind),
            journal: run.path.display().to_string(),
            outcome: None,
            message: String::new(),
            downtime_ms: None,
            members: plan.members.clone(),
            waits_for: None,
        };
        if let Some(first) = waits_for(plan) {
            recovery.outcome = Some(Outcome::NeedsAttention);
            recovery.message = format!(
                "left stopped for now: it is a node of a cluster over hosts, and the run of its first node {first} may have moved their database on and is not recovered yet; recover that one first (`cutover recover --config FILE` does the whole fleet, in that order)"
            );
            recovery.waits_for = Some(first);
            recoveries.push(recovery);
            continue;
        }
        let mut locks = Vec::new();
        for member in &plan.members {
            match state.lock(member) {
                Ok(lock) => locks.push(lock),
                Err(JournalError::Busy { .. }) => break,
                Err(e) => return Err(e.into()),
            }
        }
        if locks.len() < plan.members.len() {
            recovery.message =
                "the run is still going on in another cutover process; left alone".into();
            recoveries.push(recovery);
            continue;
        }
        let mut journal = state.resume(&run)?;
        let report = Runner {
            engine,
            journal: &mut journal,
            progress: None,
            fault: None,
            interrupt: interrupt.clone(),
            patience: Default::default(),
        }
        .resume(&run)
        .await?;
        recovery.message = message(plan.kind, &plan.container, &report);
        recovery.outcome = Some(report.outcome);
        recovery.downtime_ms = report.downtime_ms;
        recoveries.push(recovery);
    }
    Ok(recoveries)
}

/// The node of a cluster over hosts whose interrupted run this one's recovery must wait for.
fn waits_for(plan: &crate::plan::Plan) -> Option<String> {
    plan.stages
        .iter()
        .flat_map(|s| &s.steps)
        .find_map(|step| match step {
            Step::Gate(gate) => gate
                .waits_for(&super::journal::StateDirs)
                .map(str::to_string),
            _ => None,
        })
}

fn message(kind: Kind, name: &str, report: &RunReport) -> String {
    let kind = kind.word();
    match report.outcome {
        Outcome::Succeeded => format!("finished: {name} runs {}", report.running),
        Outcome::RolledBack => format!(
            "rolled back: {name} runs the container it ran before the interrupted {kind} ({})",
            report.running
        ),
        Outcome::NothingChanged if kind == "rehearsal" => {
            format!("undone: what the interrupted rehearsal made is removed; {name} runs as before")
        }
        Outcome::NothingChanged => {
            format!("undone: the interrupted {kind} had not stopped {name} yet; it runs as before")
        }
        Outcome::Partial => format!(
            "{name} runs {}, the last hop of the interrupted {kind} that completed",
            report.running
        ),
        Outcome::KeptNew => format!(
            "{name} runs {}, kept because going back could not put the data back: {}",
            report.running,
            report.failure.clone().unwrap_or_default()
        ),
        Outcome::NeedsAttention => format!(
            "could not bring {name} back: {}",
            if report.undo_failures.is_empty() {
                report.failure.clone().unwrap_or_default()
            } else {
                report.undo_failures.join("; ")
            }
        ),
    }
}
