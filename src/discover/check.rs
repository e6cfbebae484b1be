//! `cutover check`: for each container, what it runs, what it may move to, and why.
//!
//! Containers are grouped by repository and each repository is asked once (its tag list, and a
//! `HEAD` per floating tag watched by digest), concurrently with a bound. Image ages are fetched
//! only for the candidates a minimum age has to judge, once each per pass; an image that does
//! not say when it was built counts from when cutover first saw its digest. Release notes come
//! from the profile, else from the OCI labels of the target's image when its config was fetched
//! anyway, else of the running image: no request is made for them. Nothing is ever pulled.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use crate::engine::Container;
use futures_util::stream::{self, StreamExt};
use serde::Serialize;

use crate::config::{LABEL_DEPENDS_ON, LABEL_ENABLE};
use crate::engine::facts::Facts;
use crate::engine::reference::ImageRef;
use crate::engine::registry::{built_at, RegistryClient, RemoteImage};
use crate::engine::{self, Engine, OciLabels, Service};
use crate::error::Result;
use crate::ops::group::Node;
use crate::ops::settings::{self, Given, Subject};
use crate::plan::build::Target;
use crate::profile::{self, notes, Catalog, Choice, NotesLink, Profile};
use crate::run::FirstSeen;
use crate::version::{self, Policy, Rules, TagVersion};

/// Repositories asked at once.
const CONCURRENCY: usize = 8;
/// Candidates whose age a minimum age may fetch before giving up on a container for this pass.
const MAX_AGE_LOOKUPS: usize = 3;

/// A running container, as update discovery sees it.
#[derive(Debug, Clone)]
pub struct Watched {
    pub name: String,
    /// The reference it was created from; `None` when that was an image id.
    pub image: Option<ImageRef>,
    /// The digests the engine recorded when it pulled the image (`RepoDigests`).
    pub local_digests: Vec<String>,
    /// What the running image's OCI labels say of where it comes from: the project's pages,
    /// which a target's release notes fall back on.
    pub oci: OciLabels,
    pub rules: std::result::Result<Rules, String>,
    /// The product profile it follows: its path decides the hops of an upgrade.
    pub profile: Option<Profile>,
    /// The compose project and service it belongs to.
    pub compose: Option<(String, String)>,
    /// Opted in by the `cutover.enable=true` label or by being listed in the config.
    pub opted_in: bool,
    /// Containers this one needs running first: links, `cutover.depends_on`, compose's
    /// `depends_on`.
    pub depends_on: Vec<String>,
    /// The Swarm service it is a task of, which no upgrade of it alone may change.
    pub swarm_service: Option<String>,
    /// It is a Swarm service itself, which its manager moves (see `ops::service`).
    pub swarm: bool,
    /// Why a pass leaves it alone although it may move: Podman's own auto-update manages it, or
    /// it is in a Podman pod.
    pub raced: Option<String>,
    /// Why no registry is asked about its image: Podman built or tagged it on its host.
    pub unchecked: Option<String>,
    /// The systemd unit that runs it, and whether an upgrade keeps the unit true to it.
    pub unit: Option<String>,
}

/// What discovery reads of a container or of a Swarm service.
struct Seen {
    name: String,
    labels: HashMap<String, String>,
    /// Its image as written.
    image: Option<String>,
    /// The digests the engine knows for it (`RepoDigests`), or the one its spec pins.
    local_digests: Vec<String>,
    /// Its image's OCI labels, when the engine has the image.
    oci: OciLabels,
    depends_on: Vec<String>,
    compose: Option<(String, String)>,
    swarm_service: Option<String>,
    swarm: bool,
    /// The infra container of the Podman pod it is in.
    pod: Option<String>,
    /// Why no registry is asked about its image (see [`Watched::unchecked`]).
    unchecked: Option<String>,
    /// The systemd unit that runs it (see [`Watched::unit`]).
    unit: Option<String>,
}

impl Seen {
    /// A service, by its spec: the image it pins is the one its tasks run, and its labels or
    /// its containers' opt it in.
    fn of_service(service: &Service) -> Seen {
        let image = service.image();
        let local_digests = ImageRef::parse(&image)
            .and_then(|i| Some(format!("{}@{}", i.repository, i.digest?)))
            .into_iter()
            .collect();
        Seen {
            name: service.name().to_string(),
            labels: service.labels(),
            image: Some(image),
            local_digests,
            oci: OciLabels::default(),
            depends_on: Vec::new(),
            compose: None,
            swarm_service: None,
            swarm: true,
            pod: None,
            unchecked: None,
            unit: None,
        }
    }
}

/// Which containers to look at.
pub enum Selection {
    Named(Vec<String>),
    All,
    OptedIn,
}

/// Finds the containers and reads their rules (resolved as `ops::settings` resolves every
/// setting: the profile's policy, then the config file, the labels, the command line); engine
/// calls only.
pub async fn discover(
    engine: &dyn Engine,
    given: &Given,
    catalog: &Catalog,
    selection: &Selection,
) -> Result<Vec<Watched>> {
    let (inspected, services) = selected(engine, selection).await?;
    let compose = compose_services(&inspected);
    // Many containers often share one image: inspect each image once.
    let mut images: HashMap<String, (Vec<String>, OciLabels)> = HashMap::new();
    let mut seen = Vec::new();
    for c in &inspected {
        let name = c.name().to_string();
        let labels = c.labels();
        let (local_digests, oci) = match (
            ImageRef::parse(c.image()),
            Some(c.image_id()).filter(|i| !i.is_empty()),
        ) {
            (Some(_), Some(id)) => match images.get(id) {
                Some(known) => known.clone(),
                None => {
                    let known = engine
                        .image(id)
                        .await?
                        .map(|i| (i.repo_digests(), OciLabels::read(&i.labels())))
                        .unwrap_or_default();
                    images.insert(id.to_string(), known.clone());
                    known
                }
            },
            _ => Default::default(),
        };
        seen.push(Seen {
            depends_on: depends_on(c, &labels, &compose, &name),
            compose: crate::compose::Membership::of(c).map(|m| (m.project, m.service)),
            swarm_service: c.swarm_service(),
            image: Some(c.image().to_string()).filter(|i| !i.is_empty()),
            swarm: false,
            pod: crate::engine::podman::pod_infra(engine, c).await?,
            unchecked: crate::engine::podman::built_here(engine, c.image()),
            unit: crate::ops::compose::unit_note(engine, c),
            name,
            labels,
            local_digests,
            oci,
        });
    }
    seen.extend(services.iter().map(Seen::of_service));
    let mut watched = Vec::new();
    for s in seen {
        let opted_in =
            s.labels.get(LABEL_ENABLE).is_some_and(|v| v == "true") || given.config.lists(&s.name);
        if matches!(selection, Selection::OptedIn) && !opted_in {
            continue;
        }
        let image = s.image.as_deref().and_then(ImageRef::parse);
        let written = s.image.clone().unwrap_or_default();
        let profile = match catalog.choose(&Choice::Auto, &s.labels, &written) {
            Ok(found) => found.map(|(loaded, _)| loaded.profile),
            Err(e) => return Err(crate::Error::Refused(format!("{}: {e}", s.name))),
        };
        // Discovery reads nothing of a container for its profile: only the update rules are
        // taken of its settings, and no fact decides them.
        let facts = Facts::default();
        let rules = settings::resolve_workload(
            given,
            &Subject {
                name: &s.name,
                labels: &s.labels,
                image: &written,
                profile: profile.as_ref().map(|p| (p, &facts)),
            },
        )
        .rules();
        watched.push(Watched {
            raced: engine::podman::auto_update_race(&s.labels).or_else(|| {
                let infra = s.pod.as_deref()?;
                Some(engine::podman::pod_refusal(&s.name, infra))
            }),
            swarm_service: s.swarm_service,
            swarm: s.swarm,
            unchecked: s.unchecked,
            unit: s.unit,
            name: s.name,
            image,
            local_digests: s.local_digests,
            oci: s.oci,
            rules,
            profile,
            compose: s.compose,
            opted_in,
            depends_on: s.depends_on,
        });
    }
    Ok(watched)
}

/// One host of a fleet as discovery reached it: its engine, or why it could not be reached.
pub struct FleetHost<'a> {
    pub name: String,
    pub engine: std::result::Result<&'a dyn Engine, String>,
}

/// A host of a fleet that could not be read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Unreached {
    pub host: String,
    pub error: String,
}

/// What a fleet's discovery found: every container as `HOST/NAME`, and the hosts it could not
/// read, with why.
#[derive(Default)]
pub struct FleetWatch {
    pub watched: Vec<Watched>,
    pub unreached: Vec<Unreached>,
    /// The running containers of products that move together by database, on every host read.
    pub nodes: Vec<Node>,
}

/// Discovery over every host of a fleet at once, each with the config file's entries for its
/// containers; a host that cannot be read is told, not a reason to stop reading the others.
/// Named containers are `HOST/NAME`.
pub async fn discover_fleet(
    hosts: &[FleetHost<'_>],
    given: &Given,
    catalog: &Catalog,
    selection: &Selection,
) -> Result<FleetWatch> {
    let per_host: Vec<(&FleetHost<'_>, Option<Selection>)> = hosts
        .iter()
        .map(|h| (h, on_host(selection, &h.name)))
        .collect();
    if let Selection::Named(names) = selection {
        if let Some(bare) = names.iter().find(|n| {
            !n.split_once('/')
                .is_some_and(|(host, _)| hosts.iter().any(|h| h.name == host))
        }) {
            let known: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
            return Err(crate::Error::Refused(format!(
                "{bare}: in a fleet, name a container HOST/NAME (hosts: {})",
                known.join(", ")
            )));
        }
    }
    let reads = per_host.iter().filter_map(|(host, selection)| {
        let selection = selection.as_ref()?;
        Some(async move {
            let found = match &host.engine {
                Ok(engine) => read_host(*engine, &given.for_host(&host.name), catalog, selection)
                    .await
                    .map_err(|e| e.to_string()),
                Err(why) => Err(why.clone()),
            };
            (host.name.clone(), found)
        })
    });
    let mut fleet = FleetWatch::default();
    for (host, found) in futures_util::future::join_all(reads).await {
        match found {
            Ok((watched, nodes)) => {
                fleet.watched.extend(watched.into_iter().map(|mut w| {
                    w.name = format!("{host}/{}", w.name);
                    w.depends_on = w.depends_on.iter().map(|d| format!("{host}/{d}")).collect();
                    w
                }));
                fleet.nodes.extend(nodes.into_iter().map(|mut n| {
                    n.container = format!("{host}/{}", n.container);
                    n
                }));
            }
            Err(error) => fleet.unreached.push(Unreached { host, error }),
        }
    }
    Ok(fleet)
}

/// One host's selected containers, and its nodes of products that move together by database.
async fn read_host(
    engine: &dyn Engine,
    given: &Given,
    catalog: &Catalog,
    selection: &Selection,
) -> Result<(Vec<Watched>, Vec<Node>)> {
    let watched = discover(engine, given, catalog, selection).await?;
    Ok((watched, crate::ops::group::nodes(engine, catalog).await?))
}

/// What a fleet-wide selection asks of one host; `None` when it names none of its containers.
fn on_host(selection: &Selection, host: &str) -> Option<Selection> {
    match selection {
        Selection::All => Some(Selection::All),
        Selection::OptedIn => Some(Selection::OptedIn),
        Selection::Named(names) => {
            let here: Vec<String> = names
                .iter()
                .filter_map(|n| n.strip_prefix(host)?.strip_prefix('/'))
                .map(str::to_string)
                .collect();
            (!here.is_empty()).then_some(Selection::Named(here))
        }
    }
}

/// The running containers the selection names; a named one that does not exist is refused.
/// The containers selected, and the Swarm services of a manager: every one, or those named
/// that are no container.
async fn selected(
    engine: &dyn Engine,
    selection: &Selection,
) -> Result<(Vec<Container>, Vec<Service>)> {
    let names = match selection {
        Selection::Named(names) => names.clone(),
        Selection::All | Selection::OptedIn => {
            let containers = engine.container_names(false).await?;
            let mut inspected = Vec::new();
            for name in &containers {
                // One gone since the listing is left out.
                inspected.extend(engine.inspect(name).await?);
            }
            return Ok((inspected, engine.services().await?));
        }
    };
    let mut inspected = Vec::new();
    let mut services = Vec::new();
    for name in &names {
        match engine.inspect(name).await? {
            Some(c) => inspected.push(c),
            None => match engine.service(name).await? {
                Some(s) => services.push(s),
                None => {
                    return Err(crate::Error::Refused(format!(
                        "there is no container named {name}"
                    )))
                }
            },
        }
    }
    Ok((inspected, services))
}

/// A compose container's project and service.
fn service_of(c: &Container) -> Option<(String, String)> {
    let labels = c.labels();
    Some((
        labels.get("com.docker.compose.project")?.clone(),
        labels.get("com.docker.compose.service")?.clone(),
    ))
}

/// compose names services, not containers: each project's services, to container names.
fn compose_services(inspected: &[Container]) -> HashMap<(String, String), String> {
    inspected
        .iter()
        .filter_map(|c| service_of(c).map(|k| (k, c.name().to_string())))
        .collect()
}

/// The containers `c` needs up first: its links, its `cutover.depends_on` label and its
/// compose `depends_on`.
fn depends_on(
    c: &Container,
    labels: &HashMap<String, String>,
    services: &HashMap<(String, String), String>,
    name: &str,
) -> Vec<String> {
    let mut depends_on: Vec<String> = c
        .links()
        .iter()
        .map(|l| l.split(':').next().unwrap_or_default().to_string())
        .collect();
    depends_on.extend(
        labels
            .get(LABEL_DEPENDS_ON)
            .iter()
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_string()),
    );
    if let (Some(deps), Some((project, _))) =
        (labels.get("com.docker.compose.depends_on"), service_of(c))
    {
        // `service:condition:restart,…`
        for service in deps.split(',').filter_map(|d| d.split(':').next()) {
            if let Some(container) = services.get(&(project.clone(), service.trim().to_string())) {
                depends_on.push(container.clone());
            }
        }
    }
    depends_on.retain(|d| !d.is_empty() && d != name);
    depends_on
}

#[derive(Debug, Clone, Serialize)]
pub struct Status {
    pub container: String,
    pub image: String,
    pub current_tag: Option<String>,
    pub current_digest: Option<String>,
    pub policy: Option<Policy>,
    /// The reference an upgrade would move to.
    pub target: Option<String>,
    /// The tags it would go through first, as its profile's upgrade path requires.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    /// The compose project it belongs to, and its service there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The newest version of the tag's family, allowed or not.
    pub newest: Option<String>,
    pub eligible: bool,
    pub reason: String,
    /// Held back by its minimum age: when the first of its newer versions becomes eligible
    /// (RFC 3339), and which one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting_for: Option<String>,
    /// Where to read what the target and each hop through change (see [`profile::notes`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub release_notes: Vec<NotesLink>,
    /// Eligible, but held back by the topology of the fleet (see the clusters over hosts).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub held_back: bool,
    /// Every node of the cluster over hosts it moves with, itself included (see
    /// the clusters over hosts).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster: Vec<String>,
    pub opted_in: bool,
    /// A Swarm service, which its manager moves, rather than a container.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub swarm: bool,
    /// A pass rehearses its upgrade first (its rules say `rehearse`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub rehearse: bool,
    #[serde(skip)]
    pub depends_on: Vec<String>,
}

/// Why what the registry says of an image, or when cutover first saw it, is not known: told as
/// the container's reason, the others checked all the same.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    #[error("registry: {0}")]
    Registry(String),
    #[error("min_age: {0}")]
    FirstSeen(crate::run::first_seen::FirstSeenError),
}

/// A container named with a tag to move to, whose image names no repository to take it from:
/// a refusal.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0} was created from an image id, not a reference: give --image")]
pub struct NoReference(String);

crate::error::category! { NoReference => refused }

/// What a repository's registry said, once for all its containers.
#[derive(Default)]
struct RepoFacts {
    tags: Option<std::result::Result<Vec<String>, String>>,
    digests: HashMap<String, std::result::Result<String, String>>,
}

/// Each container's status: what the registry serves, judged by its rules; `first_seen` is
/// when cutover first saw each image that does not say when it was built.
pub async fn check(
    registry: &RegistryClient,
    first_seen: &FirstSeen,
    watched: &[Watched],
) -> Vec<Status> {
    let mut repos: BTreeMap<String, (ImageRef, bool, Vec<String>)> = BTreeMap::new();
    for w in watched {
        let (Some(image), Ok(rules), None) = (&w.image, &w.rules, &w.unchecked) else {
            continue;
        };
        let tag = image.tag.clone().unwrap_or_else(|| "latest".into());
        let entry = repos
            .entry(image.repository.clone())
            .or_insert_with(|| (image.clone(), false, Vec::new()));
        if TagVersion::parse(&tag).is_some() {
            entry.1 = true;
        }
        if rules.policy == Policy::Digest && !entry.2.contains(&tag) {
            entry.2.push(tag);
        }
    }
    let facts: HashMap<String, RepoFacts> = stream::iter(repos)
        .map(|(repository, (image, want_tags, digest_tags))| async move {
            let mut facts = RepoFacts::default();
            if want_tags {
                facts.tags = Some(registry.tags(&image).await.map_err(|e| e.to_string()));
            }
            for tag in digest_tags {
                let digest = registry
                    .digest(&image, &tag)
                    .await
                    .map_err(|e| e.to_string());
                facts.digests.insert(tag, digest);
            }
            (repository, facts)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;

    let mut lookups = Lookups {
        registry,
        first_seen,
        images: HashMap::new(),
    };
    let mut statuses = Vec::new();
    for w in watched {
        let mut status = judge(
            &mut lookups,
            w,
            w.image.as_ref().and_then(|i| facts.get(&i.repository)),
        )
        .await;
        if let Some(race) = w.raced.as_ref().filter(|_| status.eligible) {
            status.eligible = false;
            status.reason = format!(
                "{} would be next, but {race}",
                status.target.clone().unwrap_or_default()
            );
        }
        if let Some(unit) = &w.unit {
            status.reason = format!("{}; {unit}", status.reason);
        }
        statuses.push(status);
    }
    statuses
}

async fn judge(lookups: &mut Lookups<'_>, w: &Watched, facts: Option<&RepoFacts>) -> Status {
    let mut status = unjudged(w);
    if let Some(service) = &w.swarm_service {
        status.reason = engine::swarm_refusal("it", service);
        return status;
    }
    if let Some(why) = &w.unchecked {
        status.reason = why.clone();
        return status;
    }
    let (Some(image), Some(tag)) = (&w.image, status.current_tag.clone()) else {
        status.reason =
            "created from an image id, not a reference: upgrade it by hand with --image".into();
        return status;
    };
    let rules = match &w.rules {
        Ok(rules) => rules,
        Err(e) => {
            status.reason = format!("bad rules: {e}");
            return status;
        }
    };
    let Some(facts) = facts else {
        status.reason = "no registry answer".into();
        return status;
    };
    let family = match &facts.tags {
        Some(Ok(tags)) => version::candidates(&tag, tags, rules),
        _ => None,
    };
    status.newest = family.as_ref().and_then(|c| c.newest.clone());
    let candidates = match rules.policy {
        Policy::Digest => digest_candidates(w, &tag, facts),
        _ => version_candidates(&tag, rules, facts, family, status.newest.as_deref()),
    };
    let candidates = match candidates {
        Ok((candidates, reason)) => {
            status.reason = reason;
            candidates
        }
        Err(reason) => {
            status.reason = reason;
            return status;
        }
    };
    match past_min_age(lookups, image, &candidates, rules.min_age).await {
        Ok(Aged::Eligible(target)) => {
            eligible(&mut status, w, image, &tag, &target, rules, facts);
            if status.eligible {
                status.release_notes = lookups.release_notes(w, image, &tag, &status.via, &target);
            }
        }
        Ok(Aged::Waiting(soonest)) => {
            status.reason = soonest.reason(rules.min_age);
            status.eligible_at = Some(rfc3339(soonest.eligible_at(rules.min_age)));
            status.waiting_for = Some(soonest.tag);
        }
        Ok(Aged::Nothing) => status.reason = "no newer version was found".into(),
        Err(e) => status.reason = e.to_string(),
    }
    status
}

/// What check asks the registry of single images, once each per pass, and when cutover first
/// saw those that do not say when they were built.
struct Lookups<'a> {
    registry: &'a RegistryClient,
    first_seen: &'a FirstSeen,
    /// By repository and tag.
    images: HashMap<(String, String), std::result::Result<RemoteImage, LookupError>>,
}

/// When a version was published, and how that is known.
#[derive(Debug, Clone, PartialEq)]
struct Published {
    tag: String,
    at: SystemTime,
    /// Its image does not say when it was built: `at` is when cutover first saw its digest.
    first_seen: bool,
}

impl Published {
    fn eligible_at(&self, min_age: Duration) -> SystemTime {
        self.at + min_age
    }

    /// Why it is not taken yet, and until when.
    fn reason(&self, min_age: Duration) -> String {
        let how = match self.first_seen {
            true => "first seen by cutover then: its image does not say when it was built",
            false => "as its image says",
        };
        format!(
            "{} was published at {} ({how}); under min_age {} it is eligible from {}",
            self.tag,
            rfc3339(self.at),
            age_text(min_age),
            rfc3339(self.eligible_at(min_age))
        )
    }
}

/// A minimum age as people write one: whole days as days (`3650d`, not humantime's years of
/// 365.25 days), anything else as humantime writes it.
fn age_text(age: Duration) -> String {
    const DAY: u64 = 86400;
    match age.as_secs() {
        secs if secs > 0 && secs % DAY == 0 && age.subsec_nanos() == 0 => {
            format!("{}d", secs / DAY)
        }
        _ => humantime::format_duration(age).to_string(),
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// What a minimum age makes of the candidates.
#[derive(Debug, PartialEq)]
enum Aged {
    /// The newest candidate old enough.
    Eligible(String),
    /// None is old enough yet: the one that becomes eligible first.
    Waiting(Published),
    /// There is no candidate.
    Nothing,
}

impl Lookups<'_> {
    /// What the registry says of `image`'s `tag`, asked once per pass.
    async fn image(
        &mut self,
        image: &ImageRef,
        tag: &str,
    ) -> std::result::Result<RemoteImage, LookupError> {
        let key = (image.repository.clone(), tag.to_string());
        if let Some(known) = self.images.get(&key) {
            return known.clone();
        }
        let found = self
            .registry
            .image(image, tag)
            .await
            .map_err(|e| LookupError::Registry(e.to_string()));
        self.images.insert(key, found.clone());
        found
    }

    /// When the version behind `tag` was published: when its image was built, as its config
    /// (else its `org.opencontainers.image.created` label) says, else when cutover first saw its
    /// digest.
    async fn published(
        &mut self,
        image: &ImageRef,
        tag: &str,
    ) -> std::result::Result<Published, LookupError> {
        let remote = self.image(image, tag).await?;
        let built = remote.created.or_else(|| {
            OciLabels::read(&remote.labels)
                .created
                .as_deref()
                .and_then(built_at)
        });
        let (at, first_seen) = match built {
            Some(at) => (at, false),
            None => (
                self.first_seen
                    .first_seen(&remote.digest, SystemTime::now())
                    .map_err(LookupError::FirstSeen)?,
                true,
            ),
        };
        Ok(Published {
            tag: tag.to_string(),
            at,
            first_seen,
        })
    }

    /// The release notes of each hop from `current` through `via` to `target`: the profile's,
    /// else the pages the OCI labels name, of the hop's image when this pass fetched its config
    /// anyway, else of the running image (no request is made for them).
    fn release_notes(
        &self,
        w: &Watched,
        image: &ImageRef,
        current: &str,
        via: &[String],
        target: &str,
    ) -> Vec<NotesLink> {
        notes::pairs(current, via, target)
            .into_iter()
            .flat_map(|(from, to)| {
                let told = w
                    .profile
                    .as_ref()
                    .map(|p| p.release_notes(from, to))
                    .unwrap_or_default();
                if !told.is_empty() {
                    return told;
                }
                match self.images.get(&(image.repository.clone(), to.to_string())) {
                    Some(Ok(remote)) => {
                        let oci = OciLabels::read(&remote.labels);
                        let version = notes::labelled_version(to, &oci);
                        notes::from_labels(&version, &oci, &format!("{to}'s image"))
                    }
                    _ => notes::from_labels(to, &w.oci, "the running image"),
                }
            })
            .collect()
    }
}

/// What is known of a container before the registry is asked.
impl Status {
    /// An eligible container with nothing else known, for the tests of what a pass does.
    #[cfg(test)]
    pub fn eligible(container: &str) -> Status {
        Status {
            container: container.into(),
            image: String::new(),
            current_tag: None,
            current_digest: None,
            policy: None,
            target: None,
            via: Vec::new(),
            profile: None,
            project: None,
            service: None,
            newest: None,
            eligible: true,
            reason: String::new(),
            eligible_at: None,
            waiting_for: None,
            release_notes: Vec::new(),
            held_back: false,
            cluster: Vec::new(),
            opted_in: true,
            swarm: false,
            rehearse: false,
            depends_on: Vec::new(),
        }
    }

    /// A container the command line names, to move to `target` whatever its policy says.
    pub fn asked(w: &Watched, target: &Target) -> std::result::Result<Status, NoReference> {
        let mut status = unjudged(w);
        let to = match (target, &w.image) {
            (Target::Image(image), _) => image.clone(),
            (Target::Tag(tag), Some(current)) => current.with_tag(tag),
            (Target::Tag(_), None) => return Err(NoReference(w.name.clone())),
        };
        status.target = Some(to.to_string());
        status.eligible = true;
        status.reason = "named on the command line".into();
        Ok(status)
    }
}

fn unjudged(w: &Watched) -> Status {
    Status {
        container: w.name.clone(),
        image: w
            .image
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        current_tag: w
            .image
            .as_ref()
            .map(|i| i.tag.clone().unwrap_or_else(|| "latest".into())),
        current_digest: w
            .local_digests
            .first()
            .and_then(|d| d.split_once('@'))
            .map(|(_, d)| d.to_string()),
        policy: w.rules.as_ref().ok().map(|r| r.policy),
        target: None,
        via: Vec::new(),
        profile: w.profile.as_ref().map(|p| p.name.clone()),
        project: w.compose.as_ref().map(|c| c.0.clone()),
        service: w.compose.as_ref().map(|c| c.1.clone()),
        newest: None,
        eligible: false,
        reason: String::new(),
        eligible_at: None,
        waiting_for: None,
        release_notes: Vec::new(),
        held_back: false,
        cluster: Vec::new(),
        opted_in: w.opted_in,
        swarm: w.swarm,
        rehearse: w.rules.as_ref().is_ok_and(|r| r.rehearse),
        depends_on: w.depends_on.clone(),
    }
}

/// Candidates (and the reason so far), or why there are none.
type Judged = std::result::Result<(Vec<String>, String), String>;

/// Under policy digest: the tag itself, when the registry has a new digest for it.
fn digest_candidates(w: &Watched, tag: &str, facts: &RepoFacts) -> Judged {
    match facts.digests.get(tag) {
        Some(Ok(remote)) if w.local_digests.iter().any(|d| d.ends_with(remote.as_str())) => {
            Err(format!(
                "up to date: {tag} still has digest {}",
                short_digest(remote)
            ))
        }
        Some(Ok(remote)) => Ok((
            vec![tag.to_string()],
            format!("{tag} has a new digest {}", short_digest(remote)),
        )),
        Some(Err(e)) => Err(format!("registry: {e}")),
        None => Ok((Vec::new(), String::new())),
    }
}

/// Under a version policy: the allowed newer versions of the tag's family.
fn version_candidates(
    tag: &str,
    rules: &Rules,
    facts: &RepoFacts,
    family: Option<version::Candidates>,
    newest: Option<&str>,
) -> Judged {
    // Tags are fetched per repository: another container may have asked for them, so a tag
    // that is no version is told by the tag itself, not by whether tags were fetched.
    if TagVersion::parse(tag).is_none() {
        return Err(format!(
            "tag {tag} is not a version: use policy digest to follow it"
        ));
    }
    if let Some(Err(e)) = &facts.tags {
        return Err(format!("registry: {e}"));
    }
    let allowed = family.map(|c| c.allowed).unwrap_or_default();
    if allowed.is_empty() {
        return Err(match newest {
            Some(newest) if newest != tag => format!(
                "{newest} is newer but outside policy {}{}",
                rules.policy,
                pin_text(rules)
            ),
            _ => format!("up to date under policy {}", rules.policy),
        });
    }
    Ok((allowed, String::new()))
}

/// Marks the container eligible for `target`, through the hops its profile's upgrade path needs
/// (or says why the path cannot be followed).
fn eligible(
    status: &mut Status,
    w: &Watched,
    image: &ImageRef,
    tag: &str,
    target: &str,
    rules: &Rules,
    facts: &RepoFacts,
) {
    let path = w.profile.as_ref().and_then(|p| p.upgrade_path.as_ref());
    let tags = match &facts.tags {
        Some(Ok(tags)) => tags.as_slice(),
        _ => &[],
    };
    match path
        .map(|path| profile::hops(tag, target, tags, path))
        .transpose()
    {
        Ok(via) => status.via = via.unwrap_or_default(),
        Err(e) => {
            status.reason = format!("{target} is allowed, but {e}");
            return;
        }
    }
    status.eligible = true;
    if rules.policy != Policy::Digest {
        let via = match status.via.is_empty() {
            true => String::new(),
            false => format!(
                " (through {}, as its upgrade path requires)",
                status.via.join(", ")
            ),
        };
        status.reason = format!(
            "{target} is allowed by policy {}{}{via}",
            rules.policy,
            pin_text(rules)
        );
    }
    status.target = Some(image.with_tag(target).to_string());
}

/// The newest candidate published at least `min_age` ago; ages are fetched only when there is
/// a minimum age, for the newest few candidates.
async fn past_min_age(
    lookups: &mut Lookups<'_>,
    image: &ImageRef,
    candidates: &[String],
    min_age: Duration,
) -> std::result::Result<Aged, LookupError> {
    if min_age.is_zero() {
        return Ok(candidates
            .first()
            .map_or(Aged::Nothing, |t| Aged::Eligible(t.clone())));
    }
    let mut soonest: Option<Published> = None;
    for tag in candidates.iter().take(MAX_AGE_LOOKUPS) {
        let published = lookups.published(image, tag).await?;
        if let Some(aged) = ripe(published, min_age, SystemTime::now(), &mut soonest) {
            return Ok(aged);
        }
    }
    Ok(soonest.map_or(Aged::Nothing, Aged::Waiting))
}

/// A candidate published as `published`, at `now`: eligible when old enough, else kept in
/// `soonest` if it becomes eligible before the others seen so far.
fn ripe(
    published: Published,
    min_age: Duration,
    now: SystemTime,
    soonest: &mut Option<Published>,
) -> Option<Aged> {
    if published.eligible_at(min_age) <= now {
        return Some(Aged::Eligible(published.tag));
    }
    if soonest.as_ref().is_none_or(|s| published.at < s.at) {
        *soonest = Some(published);
    }
    None
}

fn pin_text(rules: &Rules) -> String {
    rules
        .pin
        .as_ref()
        .map(|p| format!(" and pin {p}"))
        .unwrap_or_default()
}

fn short_digest(digest: &str) -> &str {
    let hex = digest.split(':').nth(1).unwrap_or(digest);
    &hex[..hex.len().min(12)]
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86400);

    fn published(tag: &str, at: SystemTime, first_seen: bool) -> Published {
        Published {
            tag: tag.into(),
            at,
            first_seen,
        }
    }

    #[test]
    fn a_version_is_eligible_once_published_for_its_min_age_and_told_until_when_before() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let mut soonest = None;
        // Newest first: 1.4.0 came out an hour ago, 1.3.0 a day ago, 1.2.9 two days ago.
        let hour = Duration::from_secs(3600);
        assert_eq!(
            ripe(
                published("1.4.0", now - hour, false),
                3 * DAY,
                now,
                &mut soonest
            ),
            None
        );
        assert_eq!(
            ripe(
                published("1.3.0", now - DAY, true),
                3 * DAY,
                now,
                &mut soonest
            ),
            None
        );
        let waiting = soonest.clone().unwrap();
        assert_eq!(waiting.tag, "1.3.0", "the older one becomes eligible first");
        assert_eq!(waiting.eligible_at(3 * DAY), now + 2 * DAY);
        assert_eq!(
            waiting.reason(3 * DAY),
            format!(
                "1.3.0 was published at {} (first seen by cutover then: its image does not say when it was built); under min_age 3d it is eligible from {}",
                rfc3339(now - DAY),
                rfc3339(now + 2 * DAY)
            )
        );
        assert_eq!(
            ripe(
                published("1.2.9", now - 3 * DAY, false),
                3 * DAY,
                now,
                &mut soonest
            ),
            Some(Aged::Eligible("1.2.9".into())),
            "published exactly min_age ago: eligible"
        );
        assert_eq!(age_text(3650 * DAY), "3650d");
        assert_eq!(age_text(Duration::from_secs(90)), "1m 30s");
    }
}
