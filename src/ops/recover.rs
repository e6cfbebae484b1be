//! `cutover recover` on one engine: the interrupted runs finished or undone from the journal,
//! then the claims their killed controller left on the engine released.

use crate::engine::{claim, Engine};
use crate::error::Result;
use crate::run::recover::Recovery;
use crate::run::{Interrupt, StateDir};

pub async fn recover(
    engine: &dyn Engine,
    state: &StateDir,
    name: Option<&str>,
    interrupt: &Interrupt,
) -> Result<Vec<Recovery>> {
    let recoveries = crate::run::recover::recover(engine, state, name, interrupt).await?;
    // A run still going on in another process (no outcome) keeps its claim.
    for r in recoveries.iter().filter(|r| r.outcome.is_some()) {
        claim::release_of(engine, &r.members).await;
    }
    Ok(recoveries)
}
