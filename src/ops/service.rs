//! `cutover upgrade SERVICE` and `upgrade --stack NAME` on a Swarm manager: services' images
//! moved by their manager (with `--migrate`, scaled to 0 and the migration run as a job first),
//! their tasks watched, the previous images put back when they do not come up, and the stack's
//! files written once they do. What the command line asks beyond the target, a migration and
//! the health timings is refused rather than silently dropped, and so is a product's service:
//! its vendor's procedure (a database backup before the migration, the profile's checks) is not
//! built for Swarm yet.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use bollard::models::{Service, ServiceSpec, ServiceSpecUpdateConfigOrderEnum};

use super::preflight::Prepared;
use super::settings;
use super::upgrade::UpgradeRequest;
use crate::compose::{self, edit, Change};
use crate::engine::reference::ImageRef;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::health::HealthPolicy;
use crate::plan::build::{plan_service_update, ServiceMove, Target};
use crate::plan::steps::{replicas_of, service_image, sha, ComposeEdit};
use crate::profile::Catalog;
use crate::run::StateDir;

/// The label `docker stack deploy` gives each service of a stack.
const STACK_LABEL: &str = "com.docker.stack.namespace";

/// The services `--stack` moves: those named with `--service` (as the stack file names them,
/// or whole), else those that run the repository most of the stack's services run (an app's
/// services, not its database).
pub async fn stack_members(
    engine: &dyn Engine,
    stack: &str,
    named: &[String],
) -> Result<Vec<Service>> {
    let of_stack: Vec<Service> = engine
        .services()
        .await?
        .into_iter()
        .filter(|s| labels(s).get(STACK_LABEL).is_some_and(|n| n == stack))
        .collect();
    if of_stack.is_empty() {
        return Err(Error::Refused(format!(
            "no Swarm service of this engine belongs to the stack {stack} (`docker stack services {stack}` lists them; run cutover against a manager)"
        )));
    }
    if !named.is_empty() {
        return named
            .iter()
            .map(|n| {
                of_stack
                    .iter()
                    .find(|s| name_of(s) == *n || short_name(s) == *n)
                    .cloned()
                    .ok_or_else(|| Error::Refused(format!("the stack {stack} has no service {n}")))
            })
            .collect();
    }
    let mut by_repository: BTreeMap<String, Vec<Service>> = BTreeMap::new();
    for s in of_stack {
        let repository = ImageRef::parse(&service_image(&s))
            .map(|i| i.repository)
            .unwrap_or_default();
        by_repository.entry(repository).or_default().push(s);
    }
    for services in by_repository.values_mut() {
        services.sort_by_key(name_of);
    }
    let most = by_repository.values().map(Vec::len).max().unwrap_or(0);
    let mut widest: Vec<Vec<Service>> = by_repository
        .into_values()
        .filter(|v| v.len() == most)
        .collect();
    match widest.len() {
        1 => Ok(widest.remove(0)),
        _ => Err(Error::Refused(format!(
            "the services of the stack {stack} run as many images of one repository as of another: name those to move with --service"
        ))),
    }
}

pub fn prepare(
    state: &StateDir,
    catalog: &Catalog,
    req: &UpgradeRequest,
    services: &[Service],
) -> Result<Prepared> {
    let asked = unsupported(req);
    if !asked.is_empty() {
        return Err(Error::Refused(format!(
            "a Swarm service is moved to a new image and nothing more: {} not taken for a service",
            asked.join(", ")
        )));
    }
    let mut moves = Vec::new();
    let mut health: Option<HealthPolicy> = None;
    for service in services {
        let (to, policy) = check(catalog, req, service)?;
        moves.push(ServiceMove {
            service: name_of(service),
            from: service_image(service),
            to: to.to_string(),
            stops_all: stops_all(&service.spec.clone().unwrap_or_default()),
            replicas: service.spec.as_ref().and_then(replicas_of),
        });
        // The longest wait any of them asks for.
        health = Some(match health {
            Some(h) if h.timeout >= policy.timeout && h.settle >= policy.settle => h,
            _ => policy,
        });
    }
    let migration = req.options.steps.migrate.as_ref();
    if let Some(global) = moves
        .iter()
        .find(|m| migration.is_some() && m.replicas.is_none())
    {
        return Err(Error::Refused(format!(
            "{} is a global service, which cannot be scaled to 0 for --migrate",
            global.service
        )));
    }
    let edits = stack_edits(&req.compose.stack_files, services, &moves)?;
    let mut locks = Vec::new();
    for m in &moves {
        locks.push(state.lock(&m.service)?);
    }
    let mut plan = plan_service_update(&moves, migration, edits, &health.unwrap_or_default());
    if req.compose.stack_files.is_empty() {
        if let Some(stack) = services.iter().find_map(|s| labels(s).remove(STACK_LABEL)) {
            plan.notes.push(format!(
                "the stack {stack}'s file still names the old image: a later `docker stack deploy` brings it back; give --stack-file to write the new one there"
            ));
        }
    }
    Ok(Prepared { plan, locks })
}

/// The image `service` moves to, and its health timings; a product's service, a job or an
/// HTTP check refused.
fn check(
    catalog: &Catalog,
    req: &UpgradeRequest,
    service: &Service,
) -> Result<(ImageRef, HealthPolicy)> {
    let name = name_of(service);
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
    let health = settings::resolve_named(&req.given, None, &name, &labels)?.health;
    if health.explicit() {
        return Err(Error::Refused(format!(
            "{name} is a Swarm service: its tasks' HEALTHCHECK, which Swarm awaits, decides; --health-url and --health-port are not taken for it"
        )));
    }
    Ok((to, health))
}

/// The edits that write each moved service's new image in the stack's files, as
/// `docker stack deploy -c` reads them; refused where the files cannot say it plainly.
fn stack_edits(
    files: &[PathBuf],
    services: &[Service],
    moves: &[ServiceMove],
) -> Result<Vec<ComposeEdit>> {
    if files.is_empty() {
        return Ok(Vec::new());
    }
    let refused = |why: String| Error::Refused(format!("--stack-file: {why}; nothing was changed"));
    let mut texts = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| refused(format!("{}: {e}", file.display())))?;
        texts.push((file.clone(), text));
    }
    let defs = compose::services(&texts).map_err(refused)?;
    let mut edits: Vec<ComposeEdit> = Vec::new();
    for (service, m) in services.iter().zip(moves) {
        let short = short_name(service);
        let def = defs
            .get(&short)
            .ok_or_else(|| refused(format!("no file defines the service {short}")))?;
        let (file, written) = def
            .image
            .clone()
            .ok_or_else(|| refused(format!("no file sets the image of {short}")))?;
        if edit::variable(&written).map_err(refused)?.is_some() {
            return Err(refused(format!(
                "the image of {short} is written {written:?}: `docker stack deploy` takes the variable from the environment of whoever runs it, which cutover cannot change"
            )));
        }
        let change = Change::ImageLine {
            service: short,
            image: m.to.clone(),
        };
        match edits.iter_mut().find(|e| e.file == file) {
            Some(e) => e.changes.push(change),
            None => {
                let text = &texts
                    .iter()
                    .find(|(f, _)| *f == file)
                    .expect("read above")
                    .1;
                edits.push(ComposeEdit {
                    planned: sha(text),
                    file,
                    changes: vec![change],
                });
            }
        }
    }
    Ok(edits)
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
    // Swarm's default parallelism is 1.
    let parallelism = update.parallelism.unwrap_or(1);
    !start_first && (parallelism == 0 || replicas_of(spec).is_some_and(|n| n <= parallelism))
}

fn name_of(service: &Service) -> String {
    service
        .spec
        .as_ref()
        .and_then(|s| s.name.clone())
        .unwrap_or_default()
}

/// The service's name in its stack's file: its name without the stack's prefix.
fn short_name(service: &Service) -> String {
    let name = name_of(service);
    match labels(service).get(STACK_LABEL) {
        Some(stack) => name
            .strip_prefix(&format!("{stack}_"))
            .unwrap_or(&name)
            .to_string(),
        None => name,
    }
}

/// The service's labels and its containers': either may opt it in or name its profile.
pub fn labels(service: &Service) -> HashMap<String, String> {
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

#[cfg(test)]
mod tests {
    use bollard::models::{ServiceSpecMode, ServiceSpecModeReplicated, ServiceSpecUpdateConfig};

    use super::*;

    fn spec(replicas: i64, parallelism: Option<i64>, start_first: bool) -> ServiceSpec {
        ServiceSpec {
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated {
                    replicas: Some(replicas),
                }),
                ..Default::default()
            }),
            update_config: Some(ServiceSpecUpdateConfig {
                parallelism,
                order: start_first.then_some(ServiceSpecUpdateConfigOrderEnum::START_FIRST),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_service_is_down_only_when_its_update_stops_every_task_first() {
        assert!(stops_all(&spec(1, None, false)), "one replica, stop-first");
        assert!(
            !stops_all(&spec(2, None, false)),
            "one task at a time of two"
        );
        assert!(stops_all(&spec(3, Some(0), false)), "all at once");
        assert!(stops_all(&spec(2, Some(2), false)));
        assert!(!stops_all(&spec(1, None, true)), "start-first");
    }
}
