//! `cutover rollback`: back to the `-old` container an `upgrade --keep-old` left, with the data
//! of the backup taken before that upgrade when there is one.

use super::backup::BackupRequest;
use super::preflight::{self, Prepared};
use super::settings::{self, Given};
use crate::backup;
use crate::engine::facts::Facts;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::{self, build::RestoreOnRollback};
use crate::profile::Catalog;
use crate::run::StateDir;
use crate::secrets;

/// The plan to start `NAME-old` again in place of `name`, awaited with the health rules of the
/// old version (its profile's, under the config file's, its labels' and the command line's).
pub async fn prepare(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    name: &str,
    given: &Given,
    restore: bool,
    request: &BackupRequest,
) -> Result<Prepared> {
    let lock = preflight::claim(state, name)?;
    let previous = engine
        .inspect(&plan::old_name(name))
        .await?
        .ok_or_else(|| {
            Error::Refused(format!(
        "there is no {} to go back to; only an `upgrade --keep-old` keeps the old container",
        plan::old_name(name)
    ))
        })?;
    let current = engine
        .inspect(name)
        .await?
        .ok_or_else(|| Error::Refused(format!("there is no container named {name}")))?;
    for c in [&previous, &current] {
        secrets::register_env(c.env());
    }
    preflight::name_free(
        engine,
        &plan::failed_name(name),
        &format!(
            "it is kept from an earlier rollback: `docker rm {}` when you no longer need it",
            plan::failed_name(name)
        ),
    )
    .await?;
    let (.., health) = settings::of_container(engine, catalog, given, &previous).await?;
    let restore = match restore {
        true => restore_plan(engine, state, name, &current, &previous, request).await?,
        false => None,
    };
    Ok(Prepared {
        plan: plan::plan_rollback(name, &current, &previous, health, restore),
        locks: vec![lock],
    })
}

/// The newest backup taken while the old version ran, if the upgrade took one.
async fn restore_plan(
    engine: &dyn Engine,
    state: &StateDir,
    name: &str,
    current: &crate::engine::Container,
    previous: &crate::engine::Container,
    request: &BackupRequest,
) -> Result<Option<RestoreOnRollback>> {
    let root = request.root(state);
    let backups = backup::list(&root, Some(name)).map_err(|e| Error::Refused(e.to_string()))?;
    let Some(taken) = backups
        .into_iter()
        .rev()
        .find(|b| b.manifest.image == previous.image())
    else {
        tracing::info!(
            "no backup of {name} taken while it ran {}: the data stays as it is",
            previous.image().to_string()
        );
        return Ok(None);
    };
    let target = taken.manifest.target.clone();
    let files = target
        .database
        .as_ref()
        .map(|d| d.spec.files(current.env()))
        .unwrap_or_default();
    let facts = Facts::read(engine, current, &files).await?;
    let spec = target.database.as_ref().map(|d| d.spec.clone());
    let current_target = super::backup::target(
        engine,
        current,
        &facts,
        spec.as_ref(),
        target.volumes.iter().any(|v| !v.database),
    )
    .await?;
    super::backup::ensure_room(engine, &root, &[(current, &current_target)]).await?;
    Ok(Some(RestoreOnRollback {
        backup: taken.path,
        current: current_target,
        root,
        keep: request.keep(),
    }))
}
