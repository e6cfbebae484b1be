//! `cutover upgrade SERVICE` on a Swarm manager: a service's image moved by its manager, its
//! tasks watched, the previous image put back when they do not come up. What the command line
//! asks beyond the target and the health timings is refused rather than silently dropped, and
//! so is a product's service: its vendor's procedure (a database backup and a migration with
//! every instance stopped) is not built for Swarm yet.

use std::collections::HashMap;

use bollard::models::{Service, ServiceSpec, ServiceSpecUpdateConfigOrderEnum};

use super::preflight::Prepared;
use super::settings;
use super::upgrade::UpgradeRequest;
use crate::engine::reference::ImageRef;
use crate::error::{Error, Result};
use crate::plan::build::{plan_service_update, Target};
use crate::plan::steps::service_image;
use crate::profile::Catalog;
use crate::run::StateDir;

pub async fn prepare(
    state: &StateDir,
    catalog: &Catalog,
    req: &UpgradeRequest,
    service: &Service,
) -> Result<Prepared> {
    let name = &req.name;
    let asked = unsupported(req);
    if !asked.is_empty() {
        return Err(Error::Refused(format!(
            "{name} is a Swarm service, which cutover moves to a new image and nothing more: {} not taken for a service",
            asked.join(", ")
        )));
    }
    let spec = service.spec.clone().unwrap_or_default();
    if spec
        .mode
        .as_ref()
        .is_some_and(|m| m.replicated_job.is_some() || m.global_job.is_some())
    {
        return Err(Error::Refused(format!(
            "{name} is a Swarm job, which runs to its end: update it with `docker service update`"
        )));
    }
    let from = service_image(service);
    let labels = labels(service);
    let chosen = catalog
        .choose(&req.given.profile, &labels, &from)
        .map_err(|e| Error::Refused(e.to_string()))?;
    if let Some((loaded, why)) = chosen {
        return Err(Error::Refused(format!(
            "{name} runs {} ({why}): {}; or give --profile none if it is not that product",
            loaded.profile.name,
            product_refusal(&loaded.profile.name)
        )));
    }
    let current = ImageRef::parse(&from).ok_or_else(|| {
        Error::Refused(format!(
            "the spec of {name} names {from:?}, no image reference"
        ))
    })?;
    let to = match &req.options.target {
        Target::Tag(tag) => ImageRef {
            digest: None,
            ..current.with_tag(tag)
        },
        Target::Image(image) => image.clone(),
    };
    let health = settings::resolve_named(&req.given, None, name, &labels)?.health;
    if health.explicit() {
        return Err(Error::Refused(format!(
            "{name} is a Swarm service: its tasks' HEALTHCHECK, which Swarm awaits, decides; --health-url and --health-port are not taken for it"
        )));
    }
    let lock = state.lock(name)?;
    let plan = plan_service_update(name, &from, &to.to_string(), stops_all(&spec), &health);
    Ok(Prepared {
        plan,
        locks: vec![lock],
    })
}

/// Why a product's service is left alone, for `upgrade` and `check`.
pub fn product_refusal(profile: &str) -> String {
    format!("{profile}'s vendor backs up and migrates the database with every instance stopped, which cutover does not do for a Swarm service yet: upgrade it by the vendor's procedure")
}

/// Whether its update stops every task before any new one runs: stop-first (Swarm's default
/// order), with as many replicas as it updates at once (0: all).
fn stops_all(spec: &ServiceSpec) -> bool {
    let update = spec.update_config.clone().unwrap_or_default();
    let start_first = update.order == Some(ServiceSpecUpdateConfigOrderEnum::START_FIRST);
    let replicas = spec
        .mode
        .as_ref()
        .and_then(|m| m.replicated.as_ref())
        .and_then(|r| r.replicas);
    // Swarm's default parallelism is 1.
    let parallelism = update.parallelism.unwrap_or(1);
    !start_first && (parallelism == 0 || replicas.is_some_and(|n| n <= parallelism))
}

/// The service's labels and its containers': either may opt it in or name its profile.
fn labels(service: &Service) -> HashMap<String, String> {
    let spec = service.spec.clone().unwrap_or_default();
    let mut labels = spec
        .task_template
        .and_then(|t| t.container_spec)
        .and_then(|c| c.labels)
        .unwrap_or_default();
    labels.extend(spec.labels.unwrap_or_default());
    labels
}

/// The options given that a service's upgrade does not do.
fn unsupported(req: &UpgradeRequest) -> Vec<&'static str> {
    let options = &req.options;
    let steps = &options.steps;
    let backup = &req.backup;
    [
        (!req.with.is_empty(), "--with"),
        (!options.via.is_empty(), "--via"),
        (options.keep_old, "--keep-old"),
        (steps.migrate.is_some(), "--migrate"),
        (!steps.exec_before.is_empty(), "--exec-before"),
        (!steps.exec_after.is_empty(), "--exec-after"),
        (!steps.carry.is_empty(), "--carry-file"),
        (
            !(steps.env.set.is_empty()
                && steps.env.unset.is_empty()
                && steps.env.rename.is_empty()),
            "--env and its kin",
        ),
        (steps.expect_version.is_some(), "--expect-version"),
        (backup.db_var.is_some() || backup.volumes, "a backup"),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect()
}
