//! `cutover upgrade`: preflight over every member of the group, then the plan of
//! [`crate::plan::plan_upgrade`].

use super::preflight::{self, Prepared};
use crate::engine::{self, Engine};
use crate::error::{Error, Result};
use crate::plan::recreate::Predecessor;
use crate::plan::{self, UpgradeOptions};
use crate::run::StateDir;
use crate::secrets;

pub struct UpgradeRequest {
    /// The container the command names; the group's primary member.
    pub name: String,
    /// Other containers that move with it (`--with`), in the order they stop.
    pub with: Vec<String>,
    pub options: UpgradeOptions,
}

/// Everything that can be checked without changing the host, then the plan.
pub async fn prepare(engine: &dyn Engine, state: &StateDir, req: &UpgradeRequest) -> Result<Prepared> {
    let names: Vec<&str> = std::iter::once(req.name.as_str()).chain(req.with.iter().map(String::as_str)).collect();
    for (i, name) in names.iter().enumerate() {
        if plan::is_reserved_name(name) {
            return Err(Error::Refused(format!(
                "{name} is a container cutover keeps aside during an upgrade; upgrade the service's own container, or use `cutover rollback`"
            )));
        }
        if names[..i].contains(name) {
            return Err(Error::Refused(format!("{name} is named twice; give each member of the group once")));
        }
    }
    let mut locks = Vec::new();
    for name in &names {
        locks.push(preflight::claim(state, name)?);
    }
    let mut olds = Vec::new();
    for name in &names {
        let old = preflight::running_container(engine, name).await?;
        secrets::register_container(&old);
        if old.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true) {
            return Err(Error::Refused(format!(
                "{name} was started with --rm: stopping it would delete it, leaving nothing to roll back to; recreate it without --rm first"
            )));
        }
        let old_name = plan::old_name(name);
        preflight::name_free(engine, &old_name, &format!(
            "it is kept from an earlier `upgrade --keep-old`: `cutover rollback {name}` to go back to it, or `docker rm {old_name}` to keep the current version"
        )).await?;
        preflight::name_free(engine, &plan::new_name(name), "it is left from an interrupted run: remove it, or run `cutover recover`").await?;
        olds.push(old);
    }
    if req.options.migrate.is_some() {
        preflight::name_free(engine, &plan::migrate_name(&req.name), "it is left from an interrupted migration: remove it, or run `cutover recover`").await?;
    }
    let mut images = Vec::new();
    let mut vanished = Vec::new();
    for (old, name) in olds.iter().zip(&names) {
        let image_id = old.image.clone().unwrap_or_default();
        let image = engine.image(&image_id).await?.map(|i| i.config.unwrap_or_default()).ok_or_else(|| Error::Refused(format!(
            "the image {name} was created from ({}) is no longer on this host, so its defaults cannot be told from the settings you made; pull {} again first",
            engine::short(&image_id), engine::image_of(old)
        )))?;
        images.push(image);
        let mut gone = Vec::new();
        for source in old.host_config.as_ref().and_then(|h| h.volumes_from.clone()).unwrap_or_default() {
            let source = source.split(':').next().unwrap_or_default().to_string();
            if engine.inspect(&source).await?.is_none() {
                gone.push(source);
            }
        }
        vanished.push(gone);
    }
    let members: Vec<Predecessor<'_>> = olds
        .iter()
        .zip(&images)
        .zip(&vanished)
        .map(|((inspect, image), vanished)| Predecessor { inspect, image, vanished_volumes_from: vanished })
        .collect();
    let plan = plan::plan_upgrade(&members, &req.options).map_err(Error::Refused)?;
    Ok(Prepared { plan, locks })
}
