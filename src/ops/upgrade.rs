//! `cutover upgrade`: preflight over every member of the group, the product profile's steps for
//! each hop, then the plan of [`crate::plan::plan_upgrade`].

use std::collections::BTreeMap;

use crate::engine::Container;

use super::backup::BackupRequest;
use super::group::{beside, choose_profile, claim_running, gather_facts, group_members};
use super::live;
use super::preflight::{self, Prepared};
pub use super::request::UpgradeRequest;
use super::request::{hop_steps, plan_hops};
use super::settings;
use crate::backup::location::DatabaseSpec;
use crate::engine::reference::ImageRef;
use crate::engine::successor::Predecessor;
use crate::engine::OciLabels;
use crate::engine::{self, Engine, Service};
use crate::error::{Error, Result};
use crate::plan::build::{RelatedMove, Target};
use crate::plan::{self, ProfileUse, UpgradeOptions};
use crate::profile::{notes, Catalog, Facts, GroupBy, Loaded, NotesLink, Profile};
use crate::run::journal::ContainerLock;
use crate::run::StateDir;

/// What an upgrade moves. Both kinds go through one preparation ([`prepare`]): the profile,
/// its group on one database, its companions, the hops, each hop's steps, the settings, the
/// live check and the notes are read the same way; [`super::service`] answers where a service
/// is moved otherwise (by its manager, read through a running task).
enum Workload {
    /// Containers of this engine, each replaced by a successor.
    Containers,
    /// Swarm services: member `i` is `services[i]`; when a profile reads the product, through
    /// a running task of it on this node (`olds[i]`). Companions come last, unread.
    Services(Vec<Service>),
}

/// The members an upgrade moves, claimed, with what the profile read of each.
struct Claimed {
    workload: Workload,
    names: Vec<String>,
    locks: Vec<ContainerLock>,
    /// Each member's container: a container's own, a service's running task.
    olds: Vec<Container>,
    facts: Vec<Facts>,
    /// The databases of the related products' containers, by container.
    related_databases: BTreeMap<String, DatabaseSpec>,
}

impl Claimed {
    fn new(workload: Workload) -> Claimed {
        Claimed {
            workload,
            names: Vec::new(),
            locks: Vec::new(),
            olds: Vec::new(),
            facts: Vec::new(),
            related_databases: BTreeMap::new(),
        }
    }

    /// The members the request names, locked: a stack's services, a name that is no container
    /// but a Swarm service, else containers (a compose project's, or the name and `--with`),
    /// found running.
    async fn find(engine: &dyn Engine, state: &StateDir, req: &UpgradeRequest) -> Result<Claimed> {
        let services = match &req.compose.stack {
            Some(stack) => {
                Some(super::service::stack_members(engine, stack, &req.compose.services).await?)
            }
            None if req.compose.project.is_none() && engine.inspect(&req.name).await?.is_none() => {
                engine.service(&req.name).await?.map(|s| vec![s])
            }
            None => None,
        };
        if let Some(services) = services {
            super::service::refuse_asked(req)?;
            let mut group = Claimed::new(Workload::Services(Vec::new()));
            for service in services {
                group.add_service(state, service)?;
            }
            return Ok(group);
        }
        if !req.compose.stack_files.is_empty() {
            return Err(Error::Refused(format!(
                "--stack-file is a Swarm stack's file: it goes with a service or --stack, and {} is a container",
                req.name
            )));
        }
        let names: Vec<String> = match &req.compose.project {
            Some(project) => {
                super::compose::project_members(engine, project, &req.compose.services).await?
            }
            None => std::iter::once(req.name.clone())
                .chain(req.with.iter().cloned())
                .collect(),
        };
        check_names(&names)?;
        let mut group = Claimed::new(Workload::Containers);
        for name in &names {
            group.claim(engine, state, name).await?;
        }
        Ok(group)
    }

    /// `name`, locked and found running.
    async fn claim(&mut self, engine: &dyn Engine, state: &StateDir, name: &str) -> Result<()> {
        let (lock, old) = claim_running(engine, state, name).await?;
        self.names.push(name.to_string());
        self.locks.push(lock);
        self.olds.push(old);
        Ok(())
    }

    /// The Swarm service, locked.
    fn add_service(&mut self, state: &StateDir, service: Service) -> Result<()> {
        self.locks.push(state.lock(service.name())?);
        self.names.push(service.name().to_string());
        if let Workload::Services(services) = &mut self.workload {
            services.push(service);
        }
        Ok(())
    }

    /// The profile the members follow: the first one's, which every service must share.
    fn profile(&self, catalog: &Catalog, req: &UpgradeRequest) -> Result<Option<(Loaded, String)>> {
        match &self.workload {
            Workload::Containers => choose_profile(catalog, &req.given.profile, &self.olds[0]),
            Workload::Services(services) => super::service::profile_of(catalog, req, services),
        }
    }

    /// What the profile reads of each member: a container's own, a service's running task's
    /// (a service no profile reads is moved unread).
    async fn read(&mut self, engine: &dyn Engine, profile: Option<&Profile>) -> Result<()> {
        match (&self.workload, profile) {
            (Workload::Containers, _) => {
                for old in &self.olds {
                    self.facts.push(gather_facts(engine, profile, old).await?);
                }
            }
            (Workload::Services(services), Some(profile)) => {
                for service in services {
                    let (task, facts) =
                        super::service::running_task(engine, profile, service).await?;
                    crate::secrets::register_env(task.env());
                    self.olds.push(task);
                    self.facts.push(facts);
                }
            }
            (Workload::Services(_), None) => {}
        }
        Ok(())
    }

    /// Another running container of the product on the same database: claimed, or, moving
    /// services, its service, which every instance must be.
    async fn join(
        &mut self,
        engine: &dyn Engine,
        state: &StateDir,
        profile: &Profile,
        (name, c, facts): (String, Container, Facts),
    ) -> Result<()> {
        let Workload::Services(services) = &self.workload else {
            self.claim(engine, state, &name).await?;
            self.facts.push(facts);
            return Ok(());
        };
        let service = super::service::of_task(profile, &name, &c)?;
        if services.iter().any(|s| s.name() == service) {
            return Ok(());
        }
        let other = engine.service(&service).await?.ok_or_else(|| {
            Error::Refused(format!("the Swarm service {service} of {name} is gone"))
        })?;
        let (task, facts) = super::service::running_task(engine, profile, &other).await?;
        self.add_service(state, other)?;
        self.olds.push(task);
        self.facts.push(facts);
        Ok(())
    }

    /// The members the operator listed (`--with`, a stack's `--service`): the profile's
    /// group then adds none.
    fn listed(&self, req: &UpgradeRequest) -> bool {
        match self.workload {
            Workload::Containers => !req.with.is_empty(),
            Workload::Services(_) => !req.compose.services.is_empty(),
        }
    }

    /// The labels the settings of the primary member are read from.
    fn labels(&self) -> std::collections::HashMap<String, String> {
        match &self.workload {
            Workload::Containers => self.olds[0].labels(),
            Workload::Services(services) => services[0].labels(),
        }
    }

    /// The image the primary member runs, as written, whose tag decides its default rules.
    fn image(&self) -> String {
        match &self.workload {
            Workload::Containers => self.olds[0].image().to_string(),
            Workload::Services(services) => services[0].image(),
        }
    }

    /// The members and facts of the product itself: neither companions nor related products,
    /// whose facts its profile's rules do not read.
    fn product<'a>(
        &'a self,
        options: &'a UpgradeOptions,
    ) -> impl Iterator<Item = (&'a Container, &'a Facts)> + 'a {
        self.names
            .iter()
            .zip(self.olds.iter().zip(&self.facts))
            .filter(|(name, _)| {
                !options.companions.contains(name) && !options.related.contains_key(*name)
            })
            .map(|(_, member)| member)
    }
}

/// Everything that can be checked without changing the host, then the plan: one preparation
/// for containers and Swarm services (see [`Workload`]).
pub async fn prepare(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    req: &UpgradeRequest,
) -> Result<Prepared> {
    let mut group = Claimed::find(engine, state, req).await?;
    let chosen = group.profile(catalog, req)?;
    let profile = chosen.as_ref().map(|(loaded, _)| &loaded.profile);
    group.read(engine, profile).await?;
    let mut options = req.options.clone();
    if req.follows.is_some() {
        options.steps.migrate = None;
        options.steps.migrates_at_start = false;
    }
    if let Some((loaded, _)) = &chosen {
        follow_profile(
            engine,
            state,
            catalog,
            req,
            loaded,
            &mut group,
            &mut options,
        )
        .await?;
    }
    let read = profile.map(|p| (p, &group.facts[0]));
    let primary = settings::Subject {
        name: &group.names[0],
        labels: &group.labels(),
        image: &group.image(),
        profile: read,
    };
    options.health = settings::resolve_workload(&req.given, &primary).health()?;
    if let Some(profile) = profile {
        require_live(engine, profile, &group, &options, req.follows.is_some()).await?;
    }
    let mut plan = match &group.workload {
        Workload::Containers => {
            plan_containers(engine, state, req, profile, &group, &mut options).await?
        }
        Workload::Services(services) => {
            let read = super::service::Read {
                facts: &group.facts,
                tasks: &group.olds,
            };
            super::service::plan(engine, state, req, profile, services, read, &options).await?
        }
    };
    if let Some(old) = group.olds.first() {
        plan.notes
            .extend(labelled_notes(engine, old, profile, &options).await?);
    }
    plan.profile = chosen.map(ProfileUse::from);
    if let Some(race) = group
        .olds
        .first()
        .and_then(|old| engine::podman::auto_update_race(&old.labels()))
    {
        plan.notes.push(format!(
            "{race}; until then its timer may pull and restart it behind cutover's back"
        ));
    }
    for old in &group.olds {
        if let Some(note) = super::compose::unit_note(engine, old) {
            plan.notes.push(format!("{}: {note}", old.name()));
        }
    }
    if let Some(other) = engine.other_than_docker() {
        plan.notes.push(format!(
            "the engine is {other}, through its Docker-compatible API: its answers are read as Docker's (ulimit names, its random MAC addresses not carried, its transient state `stopped` waited out)"
        ));
    }
    Ok(Prepared {
        plan,
        locks: group.locks,
    })
}

/// The plan of containers replaced by successors: their compose files' edits, the backups,
/// the names the run needs free, each member's origin.
async fn plan_containers(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    profile: Option<&Profile>,
    group: &Claimed,
    options: &mut UpgradeOptions,
) -> Result<plan::Plan> {
    options.compose = compose_plan(engine, state, req, group, options).await?;
    // A node that follows backs up no database: the first node backed up the shared one, and
    // restoring it from here would undo that node's migration.
    let (database, backup) = match req.follows {
        None => (profile.and_then(|p| p.database.clone()), req.backup.clone()),
        Some(_) => (
            None,
            BackupRequest {
                db_var: None,
                ..req.backup.clone()
            },
        ),
    };
    let members: Vec<(&Container, &Facts)> = group.olds.iter().zip(&group.facts).collect();
    options.backup = super::backup::plan_for(
        engine,
        state,
        &backup,
        database.as_ref(),
        &group.related_databases,
        &members,
    )
    .await?;
    if let Some(plan) = options.backup.as_mut() {
        super::backup::choose_snapshots(engine, &backup, plan, &members).await;
    }
    names_free(engine, &group.names, &req.name, options).await?;
    let origins = origins(engine, group).await?;
    let members: Vec<Predecessor<'_>> = group
        .olds
        .iter()
        .zip(&origins)
        .map(|(inspect, origin)| Predecessor { inspect, origin })
        .collect();
    Ok(plan::plan_upgrade(&members, options)?)
}

/// The release notes of each hop its profile tells none of (see [`notes`]): the pages
/// the OCI labels of the hop's image name when the engine has it, else the running image's.
/// Nothing is asked of a registry: the labels are the engine's.
async fn labelled_notes(
    engine: &dyn Engine,
    old: &Container,
    profile: Option<&Profile>,
    options: &UpgradeOptions,
) -> Result<Vec<String>> {
    let Some(current) = ImageRef::parse(old.image()) else {
        return Ok(Vec::new());
    };
    let tag_of = |image: &ImageRef| image.tag.clone().unwrap_or_else(|| "latest".into());
    let target = match &options.target {
        Target::Tag(tag) => current.with_tag(tag),
        Target::Image(image) => image.clone(),
    };
    let (current_tag, target_tag) = (tag_of(&current), tag_of(&target));
    let mut running: Option<OciLabels> = None;
    let mut lines = Vec::new();
    for (from, to) in notes::pairs(&current_tag, &options.via, &target_tag) {
        if profile.is_some_and(|p| !p.release_notes(from, to).is_empty()) {
            continue;
        }
        let hop = match to == target_tag {
            true => target.clone(),
            false => current.with_tag(to),
        };
        let links = match engine.image(&hop.to_string()).await? {
            Some(image) => {
                let oci = OciLabels::read(&image.labels());
                notes::from_labels(
                    &notes::labelled_version(to, &oci),
                    &oci,
                    &format!("{to}'s image"),
                )
            }
            None => {
                let oci = match running.take() {
                    Some(known) => known,
                    None => {
                        let image = engine.image(old.image_id()).await?;
                        OciLabels::read(&image.map(|i| i.labels()).unwrap_or_default())
                    }
                };
                let links = notes::from_labels(to, &oci, "the running image");
                running = Some(oci);
                links
            }
        };
        lines.extend(links.iter().map(NotesLink::line));
    }
    Ok(lines)
}

/// The profile's rules, tried on the product's running containers before anything stops; those
/// of the database only where it is backed up and migrated (not on a node that `follows`).
async fn require_live(
    engine: &dyn Engine,
    profile: &Profile,
    group: &Claimed,
    options: &UpgradeOptions,
    follows: bool,
) -> Result<()> {
    let version = options.hop(0).expect_version;
    let rules = live::LiveRules {
        health: &options.health,
        version: version.as_ref(),
        database: profile.database.as_ref().filter(|_| !follows),
        dump: false,
    };
    let members: Vec<(&Container, &Facts)> = group.product(options).collect();
    live::require_match(engine, &profile.name, &members, &rules).await
}

/// What the profile adds: the other members of its group (on the same database, and its
/// companions' containers), their start order, the hops of its upgrade path, each hop's steps.
async fn follow_profile(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    req: &UpgradeRequest,
    loaded: &Loaded,
    group: &mut Claimed,
    options: &mut UpgradeOptions,
) -> Result<()> {
    let profile = &loaded.profile;
    if let Some(spec) = &profile.group {
        if !group.listed(req) && spec.by == GroupBy::Database {
            for member in
                group_members(engine, catalog, loaded, &group.olds[0], &group.facts[0]).await?
            {
                group.join(engine, state, profile, member).await?;
            }
        }
        match &group.workload {
            Workload::Containers if req.with.is_empty() && req.compose.project.is_none() => {
                for name in beside(engine, &spec.companions, &group.olds[0]).await? {
                    group.claim(engine, state, &name).await?;
                    let old = group.olds.last().expect("just claimed");
                    group.facts.push(gather_facts(engine, None, old).await?);
                    options.companions.push(name);
                }
            }
            Workload::Services(services) => {
                for service in super::service::companions(engine, profile, services).await? {
                    options.companions.push(service.name().to_string());
                    group.add_service(state, service)?;
                }
            }
            Workload::Containers => {}
        }
        options.start_order = spec.start;
    }
    if options.via.is_empty() && req.follows.is_none() {
        if let Some(path) = &profile.upgrade_path {
            let insecure = &req.given.config.insecure_registries;
            options.via =
                plan_hops(engine, &group.olds[0], &options.target, path, insecure).await?;
            if let (Workload::Services(_), Some(next)) = (&group.workload, options.via.first()) {
                return Err(Error::Refused(format!(
                    "profile {}: this upgrade goes through {}; a Swarm service moves one hop at a time: give --to {next} first",
                    profile.name,
                    options.via.join(", ")
                )));
            }
        }
    }
    match (&group.workload, &req.follows) {
        // A related product (Quay's Clair) is not looked for among services: `--related` is
        // refused for them (see `service::refuse_asked`).
        (Workload::Services(_), _) => {}
        (Workload::Containers, None) => {
            follow_related(engine, state, req, profile, group, options).await?
        }
        (Workload::Containers, Some(_)) if !req.related.is_empty() => {
            return Err(Error::Refused(
                "--related: a node that follows its cluster's first node moves no related product; give it to the first node's upgrade".into(),
            ))
        }
        (Workload::Containers, Some(_)) => {}
    }
    // The profile's steps are the product's: its other images' containers need none.
    let product: Vec<Facts> = group.product(options).map(|(_, f)| f.clone()).collect();
    options.hop_steps = hop_steps(profile, &group.olds[0], options, &product)?;
    if let Some(first) = &req.follows {
        for hop in &mut options.hop_steps {
            hop.migrate = None;
            hop.migrates_at_start = false;
            hop.notes.push(format!(
                "{first} migrates the database shared with this node first"
            ));
        }
    }
    Ok(())
}

/// The profile's related products (Quay's Clair): their containers among the members given
/// (`--with`, a compose project's), else found beside the product's, each with its images per
/// hop, its readiness and its database; refused before anything changes when its version is
/// not known or its configuration cannot be read.
async fn follow_related(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    profile: &Profile,
    group: &mut Claimed,
    options: &mut UpgradeOptions,
) -> Result<()> {
    if let Some((unknown, _)) = req
        .related
        .iter()
        .find(|(name, _)| !profile.related.contains_key(*name))
    {
        let known: Vec<&str> = profile.related.keys().map(String::as_str).collect();
        return Err(Error::Refused(format!(
            "--related {unknown}: profile {} has no related product of that name{}",
            profile.name,
            match known.is_empty() {
                true => String::new(),
                false => format!(" (it has: {})", known.join(", ")),
            }
        )));
    }
    let target_tag = match &options.target {
        Target::Tag(tag) => Some(tag.clone()),
        Target::Image(image) => image.tag.clone(),
    };
    let tags: Vec<String> = options.via.iter().cloned().chain(target_tag).collect();
    for (name, spec) in &profile.related {
        let matching = |group: &Claimed| -> Vec<usize> {
            (1..group.names.len())
                .filter(|&i| {
                    ImageRef::parse(group.olds[i].image()).is_some_and(|i| spec.matches(&i))
                })
                .collect()
        };
        if matching(group).is_empty() && req.with.is_empty() && req.compose.project.is_none() {
            for container in beside(engine, &spec.repositories, &group.olds[0]).await? {
                group.claim(engine, state, &container).await?;
                group.facts.push(Facts::default());
            }
        }
        let members = matching(group);
        if members.is_empty() && req.related.contains_key(name) {
            return Err(Error::Refused(format!(
                "--related {name}: no running {name} container ({}) was found beside {} (on a user-defined network it is on, or in its compose project); leave the option out to move {} alone",
                spec.repositories.join(", "),
                req.name,
                req.name
            )));
        }
        for i in members {
            let (container, old) = (group.names[i].clone(), &group.olds[i]);
            let env = old.env().to_vec();
            let facts = Facts::read(engine, old, &[spec.config_path(&env)]).await?;
            let refused = |e: String| Error::Refused(format!("{container} ({name}): {e}"));
            let image = ImageRef::parse(old.image())
                .ok_or_else(|| refused("its image names no repository to move in".into()))?;
            let images = spec
                .images(
                    name,
                    &image,
                    &tags,
                    req.related.get(name).map(String::as_str),
                )
                .map_err(refused)?;
            let ready = spec
                .readiness(&facts, crate::health::DEFAULT_SETTLE)
                .map_err(|e| refused(e.to_string()))?;
            if ready.port.is_none() {
                options.steps.notes.push(format!(
                    "{container} ({name}) answers its readiness on loopback only ({} in {}): it is awaited as a container without health rule",
                    spec.ready.addr_key.as_deref().unwrap_or("its address"),
                    spec.config_path(&env)
                ));
            }
            if !req.backup.skip {
                spec.one_database(&facts)
                    .map_err(|e| refused(e.to_string()))?;
                group
                    .related_databases
                    .insert(container.clone(), spec.database(&env));
            }
            tracing::info!(
                "{container} ({name}) moves with {} to {}, ready before it starts",
                req.name,
                images.join(", then ")
            );
            options
                .related
                .insert(container, RelatedMove { images, ready });
            group.facts[i] = facts;
        }
    }
    Ok(())
}

/// The compose file's edits, when the members belong to a compose project, and those of the
/// systemd units that run them.
async fn compose_plan(
    engine: &dyn Engine,
    state: &StateDir,
    req: &UpgradeRequest,
    group: &Claimed,
    options: &UpgradeOptions,
) -> Result<Option<plan::build::ComposePlan>> {
    let mut targets = Vec::new();
    for (name, old) in group.names.iter().zip(&group.olds) {
        let target = match options.related.get(name).and_then(|r| r.images.last()) {
            Some(image) => image.clone(),
            None => plan::build::target_of(old, &options.target)?.to_string(),
        };
        targets.push((old, target));
    }
    let scratch = state
        .path()
        .join("tmp")
        .join(format!("compose-{}", std::process::id()));
    let mut plan = super::compose::plan(engine, &req.compose, &targets, scratch).await?;
    let units = super::compose::unit_edits(engine, &req.compose, &targets)?;
    if !units.is_empty() {
        plan.get_or_insert_with(Default::default)
            .edits
            .extend(units);
    }
    Ok(plan)
}

/// Refuses when a name the run needs is taken: a successor or a migration left by an
/// interrupted run, or an old container an `upgrade --keep-old` kept.
async fn names_free(
    engine: &dyn Engine,
    names: &[String],
    primary: &str,
    options: &UpgradeOptions,
) -> Result<()> {
    for name in names {
        preflight::name_free(
            engine,
            &plan::new_name(name),
            "it is left from an interrupted run: remove it, or run `cutover recover`",
        )
        .await?;
        let old_name = plan::old_name(name);
        preflight::name_free(engine, &old_name, &format!(
            "it is kept from an earlier `upgrade --keep-old`: `cutover rollback {name}` to go back to it, or `docker rm {old_name}` to keep the current version"
        )).await?;
    }
    if (0..=options.via.len()).any(|hop| options.hop(hop).migrate.is_some()) {
        preflight::name_free(
            engine,
            &plan::migrate_name(primary),
            "it is left from an interrupted migration: remove it, or run `cutover recover`",
        )
        .await?;
    }
    Ok(())
}

/// Each member's image configuration and vanished `--volumes-from`, which its successor's
/// configuration is told from; refused when an image is gone.
async fn origins(engine: &dyn Engine, group: &Claimed) -> Result<Vec<engine::Origin>> {
    let mut origins = Vec::new();
    for old in &group.olds {
        origins.push(engine::origin(engine, old).await?);
    }
    Ok(origins)
}

fn check_names(names: &[String]) -> Result<()> {
    for (i, name) in names.iter().enumerate() {
        if plan::is_reserved_name(name) {
            return Err(Error::Refused(format!(
                "{name} is a container cutover keeps aside during an upgrade; upgrade the service's own container, or use `cutover rollback`"
            )));
        }
        if names[..i].contains(name) {
            return Err(Error::Refused(format!(
                "{name} is named twice; give each member of the group once"
            )));
        }
    }
    Ok(())
}
