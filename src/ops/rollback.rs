//! `cutover rollback`: back to the `-old` container an `upgrade --keep-old` left.

use super::preflight::{self, Prepared};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::health::HealthPolicy;
use crate::plan;
use crate::run::StateDir;
use crate::secrets;

pub async fn prepare(engine: &dyn Engine, state: &StateDir, name: &str, health: HealthPolicy) -> Result<Prepared> {
    let lock = preflight::claim(state, name)?;
    let previous = engine.inspect(&plan::old_name(name)).await?.ok_or_else(|| Error::Refused(format!(
        "there is no {} to go back to; only an `upgrade --keep-old` keeps the old container",
        plan::old_name(name)
    )))?;
    let current = engine
        .inspect(name)
        .await?
        .ok_or_else(|| Error::Refused(format!("there is no container named {name}")))?;
    for c in [&previous, &current] {
        secrets::register_container(c);
    }
    preflight::name_free(engine, &plan::failed_name(name), &format!(
        "it is kept from an earlier rollback: `docker rm {}` when you no longer need it", plan::failed_name(name)
    )).await?;
    Ok(Prepared { plan: plan::plan_rollback(name, &current, &previous, health), locks: vec![lock] })
}
