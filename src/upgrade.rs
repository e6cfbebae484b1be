//! `cutover upgrade`: preflight, then the plan of [`crate::plan::plan_upgrade`].

use crate::docker::Engine;
use crate::error::{Error, Result};
use crate::health::HealthPolicy;
use crate::journal::StateDir;
use crate::plan::{self, UpgradeOptions};
use crate::preflight::{self, Prepared};
use crate::recreate::Predecessor;
use crate::reference::ImageRef;
use crate::secrets;

pub enum Target {
    /// Same repository, another tag.
    Tag(String),
    /// Any reference, possibly in another repository.
    Image(String),
}

pub struct UpgradeRequest {
    pub name: String,
    pub target: Target,
    pub keep_old: bool,
    pub health: HealthPolicy,
}

/// Everything that can be checked without changing the host, then the plan.
pub async fn prepare(engine: &Engine, state: &StateDir, req: &UpgradeRequest) -> Result<Prepared> {
    let name = req.name.as_str();
    if name.ends_with("-old") || name.ends_with("-new") || name.ends_with("-failed") {
        return Err(Error::Refused(format!(
            "{name} is a container cutover keeps aside during an upgrade; upgrade the service's own container, or use `cutover rollback`"
        )));
    }
    let lock = preflight::claim(state, name)?;
    let old = preflight::running_container(engine, name).await?;
    secrets::register_container(&old);
    let config = old.config.clone().unwrap_or_default();
    if old.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true) {
        return Err(Error::Refused(format!(
            "{name} was started with --rm: stopping it would delete it, leaving nothing to roll back to; recreate it without --rm first"
        )));
    }
    preflight::name_free(engine, &plan::old_name(name), &format!(
        "it is kept from an earlier `upgrade --keep-old`: `cutover rollback {name}` to go back to it, or `docker rm {}` to keep the current version", plan::old_name(name)
    )).await?;
    preflight::name_free(engine, &plan::new_name(name), "it is left from an interrupted run: remove it, or run `cutover recover`").await?;

    let target = match &req.target {
        Target::Image(image) => ImageRef::parse(image)
            .ok_or_else(|| Error::Refused(format!("{image} is not an image reference (REPOSITORY[:TAG])")))?,
        Target::Tag(tag) => {
            let current = config.image.clone().unwrap_or_default();
            let reference = ImageRef::parse(&current).ok_or_else(|| Error::Refused(format!(
                "{name} was created from image {current}, which names no repository; give the target with --image REPOSITORY:TAG"
            )))?;
            if tag.is_empty() || tag.contains(['/', '@', ':']) {
                return Err(Error::Refused(format!("{tag:?} is not a tag; use --image for a whole reference")));
            }
            reference.with_tag(tag)
        }
    };

    let image_id = old.image.clone().unwrap_or_default();
    let image = engine.image_config(&image_id).await?.ok_or_else(|| Error::Refused(format!(
        "the image {name} was created from ({}) is no longer on this host, so its defaults cannot be told from the settings you made; pull {} again first",
        crate::docker::short(&image_id), config.image.clone().unwrap_or_default()
    )))?;
    let mut vanished = Vec::new();
    for source in old.host_config.as_ref().and_then(|h| h.volumes_from.clone()).unwrap_or_default() {
        let source = source.split(':').next().unwrap_or_default().to_string();
        if engine.inspect(&source).await?.is_none() {
            vanished.push(source);
        }
    }
    let predecessor = Predecessor { inspect: &old, image: &image, vanished_volumes_from: &vanished };
    let options = UpgradeOptions { target, keep_old: req.keep_old, health: req.health.clone() };
    let plan = plan::plan_upgrade(&predecessor, name, &options);
    Ok(Prepared { plan, lock })
}
