//! What a Swarm service's upgrade (`cutover upgrade SERVICE`, `upgrade --stack NAME` on a
//! manager) does otherwise than a container's, within the upgrade's one preparation
//! ([`super::upgrade::prepare`]): the services found (a stack's), read through a running task
//! on this node, the hop's steps a service takes or refuses, and the plan, where the manager
//! moves the images, their tasks are watched, the previous images put back when they do not
//! come up, and the stack's files written once they do. A product's services are scaled to 0,
//! the database backed up, the migration run as a job, the new tasks tried by the profile's
//! rules, and on failure the database restored before the old version runs again. What the
//! command line asks beyond that is refused rather than silently dropped.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::Container;

use super::group::gather_facts;
use super::request::UpgradeRequest;
use super::settings;
use crate::compose::{self, edit, Change};
use crate::engine::facts::Facts;
use crate::engine::reference::ImageRef;
use crate::engine::{self, Engine, Service};
use crate::error::{Error, Result};
use crate::health::HealthPolicy;
use crate::plan::build::{
    plan_service_update, BackupPlan, ServiceMove, ServiceSteps, StageOptions, Target,
};
use crate::plan::steps::{
    sha, Call, ComposeEdit, Hidden, Known, ServiceSettings, SettingsHome, TaskChecks,
};
use crate::plan::{Plan, UpgradeOptions};
use crate::profile::{Catalog, Loaded, Profile};
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
        .filter(|s| s.labels().get(STACK_LABEL).is_some_and(|n| n == stack))
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
                    .find(|s| s.name() == n || short_name(s) == *n)
                    .cloned()
                    .ok_or_else(|| Error::Refused(format!("the stack {stack} has no service {n}")))
            })
            .collect();
    }
    let mut by_repository: BTreeMap<String, Vec<Service>> = BTreeMap::new();
    for s in of_stack {
        let repository = ImageRef::parse(&s.image())
            .map(|i| i.repository)
            .unwrap_or_default();
        by_repository.entry(repository).or_default().push(s);
    }
    for services in by_repository.values_mut() {
        services.sort_by(|a, b| a.name().cmp(b.name()));
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

/// What a profile read of the product's services: each one's running task on this node, and
/// what the profile reads of it (see `upgrade::Claimed::read`).
pub(super) struct Read<'a> {
    pub tasks: &'a [Container],
    pub facts: &'a [Facts],
}

/// The plan that moves `services` (the product's, read as `read` says, then its companions'),
/// once the upgrade's one preparation has chosen the profile, its hop's steps and the health
/// rules (`options`) and tried them on the running tasks.
pub(super) async fn plan(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    profile: Option<&Profile>,
    services: &[Service],
    read: Read<'_>,
    options: &UpgradeOptions,
) -> Result<Plan> {
    let stage = options.hop(0);
    let steps = match profile {
        Some(profile) => product_steps(engine, state, req, profile, services, read, options).await?,
        None if req.backup.db_var.is_some() => {
            return Err(Error::Refused(
                "--backup-db: a Swarm service is backed up only by its product's profile; nothing was changed".into(),
            ))
        }
        None => ServiceSteps {
            migration: stage.migrate.clone(),
            ..ServiceSteps::default()
        },
    };
    let mut moves = Vec::new();
    let mut health: Option<HealthPolicy> = None;
    for service in services {
        let (to, policy) = check(req, service, profile.is_some())?;
        moves.push(ServiceMove {
            companion: options.companions.iter().any(|c| c == service.name()),
            service: service.name().to_string(),
            from: service.image(),
            to: to.to_string(),
            stops_all: service.stops_all(),
            replicas: service.replicas(),
        });
        // The longest wait any of them asks for.
        health = Some(match health {
            Some(h) if h.timeout >= policy.timeout && h.settle >= policy.settle => h,
            _ => policy,
        });
    }
    if let Some(global) = moves
        .iter()
        .find(|m| steps.scales() && m.replicas.is_none())
    {
        return Err(Error::Refused(format!(
            "{} is a global service, which cannot be scaled to 0 to change its data with none running",
            global.service
        )));
    }
    let edits = stack_edits(&req.compose.stack_files, services, &moves)?;
    let health = match profile {
        Some(_) => options.health.clone(),
        None => health.unwrap_or_default(),
    };
    let mut plan = plan_service_update(&moves, &steps, edits, &health);
    if profile.is_some() {
        plan.notes.extend(stage.notes);
    }
    if req.compose.stack_files.is_empty() {
        if let Some(stack) = services.iter().find_map(|s| s.labels().remove(STACK_LABEL)) {
            plan.notes.push(format!(
                "the stack {stack}'s file still names the old image: a later `docker stack deploy` brings it back; give --stack-file to write the new one there"
            ));
        }
    }
    Ok(plan)
}

/// The profile that services follow: the first one's, which every other must share.
pub(super) fn profile_of(
    catalog: &Catalog,
    req: &UpgradeRequest,
    services: &[Service],
) -> Result<Option<(Loaded, String)>> {
    let choose = |s: &Service| {
        catalog
            .choose(&req.given.profile, &s.labels(), &s.image())
            .map_err(|e| Error::Refused(e.to_string()))
    };
    let chosen = choose(&services[0])?;
    let name = |c: &Option<(Loaded, String)>| c.as_ref().map(|(l, _)| l.profile.name.clone());
    for other in &services[1..] {
        if name(&choose(other)?) != name(&chosen) {
            return Err(Error::Refused(format!(
                "{} and {} are not the same product: move them one at a time",
                services[0].name(),
                other.name()
            )));
        }
    }
    Ok(chosen)
}

/// The service whose task `c` (`name`) is, another instance of the product on the same
/// database: every instance must stop before the schema changes.
pub(super) fn of_task(profile: &Profile, name: &str, c: &Container) -> Result<String> {
    c.swarm_service().ok_or_else(|| {
        Error::Refused(format!(
            "{name} runs {} on the same database but is no Swarm task: every instance must stop before the schema changes; make it a service of the swarm, or move it apart from the services",
            profile.name
        ))
    })
}

/// What the profile's hop does to the product's services, read through their tasks: its steps
/// that a service takes (or the refusal of one it cannot), its database backed up with every
/// instance stopped, its migration as a job, the settings the new version needs, its rules
/// tried on the new tasks.
async fn product_steps(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    profile: &Profile,
    services: &[Service],
    read: Read<'_>,
    options: &UpgradeOptions,
) -> Result<ServiceSteps> {
    let (task, facts) = (&read.tasks[0], &read.facts[0]);
    let product = &services[..read.tasks.len()];
    let stage = options.hop(0);
    let calls = fits_a_service(&profile.name, &stage, product, facts)?;
    if let Some(m) = &stage.migrate {
        crate::secrets::register_command(&m.command);
    }
    let backup = backup_plan(engine, state, req, profile, (task, facts), &services[0]).await?;
    let mut settings = Vec::new();
    for (service, facts) in product.iter().zip(read.facts) {
        settings.extend(settings_for(
            service,
            facts,
            &stage.env.set,
            &options.target,
        )?);
    }
    let made: Vec<&String> = settings
        .iter()
        .filter_map(|s| match &s.into {
            SettingsHome::File { made, .. } => Some(made),
            SettingsHome::Env => None,
        })
        .collect();
    if let Some(shared) = made
        .iter()
        .enumerate()
        .find(|(i, m)| made[..*i].contains(m))
    {
        return Err(Error::Refused(format!(
            "the services share the file that becomes {}: give each its own secret or config, or set the new variable on them first",
            shared.1
        )));
    }
    Ok(ServiceSteps {
        migration: stage.migrate.clone(),
        migrates_at_start: stage.migrates_at_start,
        backup,
        known: Known(Some(std::sync::Arc::new(facts.clone()))),
        settings,
        checks: Some(TaskChecks {
            calls,
            health: options.health.clone(),
            version: stage.expect_version.clone(),
        }),
    })
}

/// The services of the profile's companion images (DevLake's config UI and dashboard) that
/// belong with `services`: in their stack, or on one of their networks.
pub(super) async fn companions(
    engine: &dyn Engine,
    profile: &Profile,
    services: &[Service],
) -> Result<Vec<Service>> {
    let patterns = profile
        .group
        .as_ref()
        .map(|g| g.companions.clone())
        .unwrap_or_default();
    if patterns.is_empty() {
        return Ok(Vec::new());
    }
    let installation = |s: &Service| {
        let networks = s.networks().into_iter();
        let stack = s.labels().remove(STACK_LABEL).map(|n| format!("stack:{n}"));
        networks.chain(stack).collect::<Vec<_>>()
    };
    let ours: Vec<String> = services.iter().flat_map(installation).collect();
    Ok(engine
        .services()
        .await?
        .into_iter()
        .filter(|s| !services.iter().any(|m| m.name() == s.name()))
        .filter(|s| {
            ImageRef::parse(&s.image())
                .is_some_and(|i| crate::profile::repository_matching(&patterns, &i).is_some())
        })
        .filter(|s| installation(s).iter().any(|i| ours.contains(i)))
        .collect())
}

/// A running task of the service on this node, and what the profile reads of it.
pub(super) async fn running_task(
    engine: &dyn Engine,
    profile: &Profile,
    service: &Service,
) -> Result<(Container, Facts)> {
    let name = service.name().to_string();
    let task = engine::service_containers(engine, &name)
        .await?
        .into_iter()
        .find(|c| c.is_running())
        .ok_or_else(|| {
            Error::Refused(format!(
                "no task of {name} runs on this engine's node: cutover reads a product's settings and checks it through a running task; run it against a manager whose node runs one"
            ))
        })?;
    let facts = gather_facts(engine, Some(profile), &task).await?;
    Ok((task, facts))
}

/// Refuses the profile's steps that a service cannot take yet (each says why), and the files
/// it carries that a new task would start without; the calls each new task takes otherwise.
fn fits_a_service(
    profile: &str,
    stage: &StageOptions,
    services: &[Service],
    facts: &Facts,
) -> Result<Vec<Call>> {
    let refused = |what: String| {
        Err(Error::Refused(format!(
            "profile {profile}: {what}; nothing was changed"
        )))
    };
    let calls = match stage.on_a_service() {
        Ok(calls) => calls,
        Err(why) => return refused(why),
    };
    for carried in &stage.carry {
        // An optional file the task does not have is nothing to carry.
        if carried.optional
            && !facts.files.contains_key(&carried.path)
            && !facts.present.contains(&carried.path)
        {
            continue;
        }
        if let Some(s) = services.iter().find(|s| !s.gives(&carried.path)) {
            return refused(format!(
                "{} keeps {} in its own files, which every new task of {} starts without: give it to the service as a Swarm config or secret (or a mount), which its spec carries",
                profile,
                carried.path,
                s.name()
            ));
        }
    }
    Ok(calls)
}

/// Where the service keeps each variable the hop sets (DevLake's `ENCRYPTION_SECRET`, a copy of
/// its `ENCODE_KEY`): beside the value copied, in the spec's environment or in the dotenv file
/// a Swarm secret or config holds, so that a value kept secret is not written into the spec.
fn settings_for(
    service: &Service,
    facts: &Facts,
    set: &[(String, String)],
    target: &Target,
) -> Result<Vec<ServiceSettings>> {
    let name = service.name().to_string();
    let spec_env = service.env();
    let holds_value = |entries: &[String], value: &str| {
        entries
            .iter()
            .any(|e| e.split_once('=').is_some_and(|(_, v)| v == value))
    };
    let mut env = ServiceSettings {
        service: name.clone(),
        names: Vec::new(),
        into: SettingsHome::Env,
        text: Hidden::default(),
    };
    let mut files: Vec<ServiceSettings> = Vec::new();
    for (variable, value) in set {
        let in_file = facts.files.iter().find_map(|(path, text)| {
            let lines: Vec<String> = text.lines().map(|l| l.trim().replace('"', "")).collect();
            holds_value(&lines, value)
                .then(|| Some((path, text, service.stored_at(path)?)))
                .flatten()
        });
        let in_env = holds_value(&spec_env, value) || holds_value(&facts.env, value);
        let into = match (in_file, in_env) {
            (_, true) => &mut env,
            (Some((path, text, (kind, from, from_id))), false) => {
                let made_for = |f: &ServiceSettings| {
                    matches!(&f.into, SettingsHome::File { target, .. } if target == path)
                };
                let at = match files.iter().position(made_for) {
                    Some(at) => at,
                    None => {
                        let mut text = text.clone();
                        if !text.is_empty() && !text.ends_with('\n') {
                            text.push('\n');
                        }
                        files.push(ServiceSettings {
                            service: name.clone(),
                            names: Vec::new(),
                            into: SettingsHome::File {
                                kind,
                                made: made_name(&from, target),
                                from,
                                from_id,
                                target: path.clone(),
                            },
                            text: Hidden(text),
                        });
                        files.len() - 1
                    }
                };
                &mut files[at]
            }
            (None, false) => {
                return Err(Error::Refused(format!(
                    "{name}: the new version needs {variable}, whose value comes from neither its spec's environment nor a file a Swarm secret or config gives it: set {variable} on the service first"
                )))
            }
        };
        into.names.push(variable.clone());
        into.text.0.push_str(&format!("{variable}={value}\n"));
    }
    Ok(std::iter::once(env)
        .filter(|e| !e.names.is_empty())
        .chain(files)
        .collect())
}

/// The name of the Swarm secret or config made from `from` for the target: `NAME-TAG`, as
/// Swarm takes names (64 characters of letters, digits, `-`, `_` and `.`).
fn made_name(from: &str, target: &Target) -> String {
    let tag = match target {
        Target::Tag(tag) => tag.clone(),
        Target::Image(image) => image.tag.clone().unwrap_or_default(),
    };
    let tag: String = tag
        .chars()
        .map(|c| match c.is_ascii_alphanumeric() || "-_.".contains(c) {
            true => c,
            false => '-',
        })
        .collect();
    let mut name = format!("{from}-{tag}");
    name.truncate(64);
    name
}

/// The backup of the product's database, taken through the service's newest task (its
/// settings say where the database is and who may dump it), kept under the service's name.
async fn backup_plan(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    profile: &Profile,
    (task, facts): (&Container, &Facts),
    service: &Service,
) -> Result<Option<BackupPlan>> {
    let Some(mut plan) = super::backup::plan_for(
        engine,
        state,
        &req.backup,
        profile.database.as_ref(),
        &Default::default(),
        &[(task, facts)],
    )
    .await?
    else {
        return Ok(None);
    };
    let target = plan.targets.remove(task.name()).unwrap_or_default();
    if target.has_embedded_database() || !target.volumes.is_empty() {
        return Err(Error::Refused(format!(
            "{} keeps its data on a volume of the node its task runs on, which cutover does not back up for a Swarm service: give it an external database, or back it up yourself and give --skip-backup",
            service.name()
        )));
    }
    plan.targets = [(service.name().to_string(), target)].into();
    Ok(Some(plan))
}

/// The image `service` moves to, and its health timings; a job refused, and an HTTP check
/// given for a service that is no product's (its tasks' HEALTHCHECK decides).
fn check(
    req: &UpgradeRequest,
    service: &Service,
    product: bool,
) -> Result<(ImageRef, HealthPolicy)> {
    let name = service.name().to_string();
    if service.is_job() {
        return Err(Error::Refused(format!(
            "{name} is a Swarm job, which runs to its end: update it with `docker service update`"
        )));
    }
    let from = service.image();
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
    let to = crate::plan::build::pinned(to, &req.options.pins);
    let health = settings::resolve_service(&req.given, service).health()?;
    if health.explicit() && !product {
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
    let defs = compose::services(&texts).map_err(|e| refused(e.to_string()))?;
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
        if edit::variable(&written)
            .map_err(|e| refused(e.to_string()))?
            .is_some()
        {
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

/// The service's name in its stack's file: its name without the stack's prefix.
fn short_name(service: &Service) -> String {
    let name = service.name().to_string();
    match service.labels().get(STACK_LABEL) {
        Some(stack) => name
            .strip_prefix(&format!("{stack}_"))
            .unwrap_or(&name)
            .to_string(),
        None => name,
    }
}

/// Refuses the options given that a service's upgrade does not do, rather than dropping them.
pub(super) fn refuse_asked(req: &UpgradeRequest) -> Result<()> {
    let options = &req.options;
    let steps = &options.steps;
    let backup = &req.backup;
    let asked: Vec<&str> = [
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
        (
            backup.volumes,
            "--backup-volumes (a task's volumes are its node's)",
        ),
        (
            !req.related.is_empty(),
            "--related (a related product's services are moved on their own)",
        ),
    ]
    .into_iter()
    .filter_map(|(given, flag)| given.then_some(flag))
    .collect();
    match asked.is_empty() {
        true => Ok(()),
        false => Err(Error::Refused(format!(
            "a Swarm service is moved to a new image and nothing more: {} not taken for a service",
            asked.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DevLake's service: `env` in its spec, its dotenv file from the secret `lake-env`.
    fn lake(env: &[&str]) -> Service {
        serde_json::from_value(serde_json::json!({"Spec": {
            "Name": "lake",
            "TaskTemplate": {"ContainerSpec": {
                "Env": env,
                "Secrets": [{"File": {"Name": "/app/.env"}, "SecretID": "s1", "SecretName": "lake-env"}],
                "Mounts": [{"Target": "/var/lib/lake"}]
            }}
        }}))
        .unwrap()
    }

    fn facts(dotenv: &str) -> Facts {
        Facts {
            env: vec!["PATH=/bin".into()],
            files: [("/app/.env".to_string(), dotenv.to_string())].into(),
            ..Facts::default()
        }
    }

    #[test]
    fn a_copied_key_goes_where_the_service_keeps_the_old_one() {
        let set = [("ENCRYPTION_SECRET".to_string(), "k1".to_string())];
        let to = Target::Tag("v0.18.0".into());

        // In the spec's environment: set there, beside it.
        let made = settings_for(&lake(&["ENCODE_KEY=k1"]), &facts(""), &set, &to).unwrap();
        assert_eq!(made.len(), 1);
        assert_eq!(made[0].into, SettingsHome::Env);
        assert_eq!(made[0].text.0, "ENCRYPTION_SECRET=k1\n");

        // In the secret's file: a new secret with the file's lines and the new one.
        let made =
            settings_for(&lake(&[]), &facts("DB_URL=x\nENCODE_KEY=\"k1\""), &set, &to).unwrap();
        assert_eq!(
            made[0].into,
            SettingsHome::File {
                kind: crate::engine::Stored::Secret,
                from: "lake-env".into(),
                from_id: "s1".into(),
                made: "lake-env-v0.18.0".into(),
                target: "/app/.env".into(),
            }
        );
        assert_eq!(
            made[0].text.0,
            "DB_URL=x\nENCODE_KEY=\"k1\"\nENCRYPTION_SECRET=k1\n"
        );
        assert_eq!(made[0].names, ["ENCRYPTION_SECRET"]);

        // Anywhere else: refused, naming the variable.
        let why = settings_for(&lake(&[]), &facts("DB_URL=x"), &set, &to)
            .err()
            .unwrap()
            .to_string();
        assert!(
            why.contains("set ENCRYPTION_SECRET on the service"),
            "{why}"
        );
    }

    #[test]
    fn what_a_spec_gives_its_tasks_is_carried_and_a_made_name_is_one_swarm_takes() {
        let service = lake(&[]);
        assert!(service.gives("/app/.env"));
        assert!(service.gives("/var/lib/lake/conf.yaml"));
        assert!(!service.gives("/app/config.yaml"));
        assert!(!service.gives("/var/lib/lakehouse"));
        let long = "x".repeat(70);
        assert_eq!(made_name(&long, &Target::Tag("v1".into())).len(), 64);
        assert_eq!(
            made_name("env", &Target::Tag("1.0+build/7".into())),
            "env-1.0-build-7"
        );
    }
}
