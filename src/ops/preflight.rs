//! Checks shared by every command that changes a container, made before it changes anything.

use crate::engine::Container;
use indicatif::MultiProgress;

use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::plan::Plan;
use crate::run::journal::{ContainerLock, StateDir};
use crate::run::{Fault, Interrupt, RunReport, Runner};

/// Takes the container's lock and refuses while an interrupted run of it awaits recovery: a
/// new run on top of a half-done one could lose the old container.
pub fn claim(state: &StateDir, name: &str) -> Result<ContainerLock> {
    let lock = state.lock(name)?;
    if let Some(run) = state.unfinished(Some(name))?.first() {
        return Err(Error::Refused(format!(
            "an earlier run on {name} was interrupted (journal {}); run `cutover recover {name}` first",
            run.path.display()
        )));
    }
    if let Some(journal) = state.unreadable(Some(name))?.first() {
        return Err(Error::Refused(journal.advice()));
    }
    Ok(lock)
}

/// Claims the container (see [`claim`]) and returns it running, its secrets registered for
/// masking before anything about it is printed; a refusal says what is wrong.
pub async fn claim_running(
    engine: &dyn Engine,
    state: &StateDir,
    name: &str,
) -> Result<(ContainerLock, Container)> {
    let lock = claim(state, name)?;
    let container = engine
        .inspect(name)
        .await?
        .ok_or_else(|| Error::Refused(format!("there is no container named {name}")))?;
    if let Some(service) = container.swarm_service() {
        return Err(Error::Refused(engine::swarm_refusal(name, &service)));
    }
    if !container.is_running() {
        return Err(Error::Refused(format!("{name} is not running; start it first, so that cutover can tell a failed start from a stopped service")));
    }
    crate::secrets::register_env(container.env());
    Ok((lock, container))
}

/// Refuses when a container already has a name the run is about to give.
pub async fn name_free(engine: &dyn Engine, name: &str, hint: &str) -> Result<()> {
    match engine.inspect(name).await? {
        Some(_) => Err(Error::Refused(format!(
            "a container named {name} already exists; {hint}"
        ))),
        None => Ok(()),
    }
}

/// A plan ready to run, holding its containers' locks until it has run.
pub struct Prepared {
    pub plan: Plan,
    pub(crate) locks: Vec<ContainerLock>,
}

impl Prepared {
    /// Runs the plan holding a claim on its containers on the engine itself (see
    /// [`engine::claim`]), which another controller of the same host sees; `interrupt` stops it
    /// between steps (see [`Interrupt`]).
    pub async fn execute(
        self,
        engine: &dyn Engine,
        state: &StateDir,
        progress: Option<&MultiProgress>,
        interrupt: &Interrupt,
    ) -> Result<RunReport> {
        if let Some(signal) = interrupt.raised() {
            return Err(Error::Refused(format!(
                "interrupted by {signal} before anything changed"
            )));
        }
        let claim = engine::claim::claim(engine, &self.plan.members)
            .await
            .map_err(|e| match e {
                engine::claim::ClaimError::Engine(e) => Error::Engine(e),
                held => Error::Refused(held.to_string()),
            })?;
        let report = self.run(engine, state, progress, interrupt).await;
        claim.release(engine).await;
        report
    }

    async fn run(
        self,
        engine: &dyn Engine,
        state: &StateDir,
        progress: Option<&MultiProgress>,
        interrupt: &Interrupt,
    ) -> Result<RunReport> {
        let mut journal = state.begin(&self.plan)?;
        let mut runner = Runner {
            engine,
            journal: &mut journal,
            progress,
            fault: Fault::from_env(),
            interrupt: interrupt.clone(),
            patience: Default::default(),
        };
        let report = runner.run(&self.plan).await?;
        drop(self.locks);
        Ok(report)
    }
}
