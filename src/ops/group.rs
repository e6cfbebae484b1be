//! The containers a command works on: claimed, running, with their profile and the other
//! members of their group (every container of the profile on the same database).

use crate::engine::Container;

use super::preflight;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan;
use crate::profile::{self, Catalog, Choice, Facts, Loaded, Profile};
use crate::run::journal::ContainerLock;
use crate::run::StateDir;
use crate::secrets;

/// The member's lock and its running container, or a refusal that says what to do.
pub async fn claim_running(
    engine: &dyn Engine,
    state: &StateDir,
    name: &str,
) -> Result<(ContainerLock, Container)> {
    let (lock, old) = preflight::claim_running(engine, state, name).await?;
    if old.removes_itself() {
        return Err(Error::Refused(format!(
            "{name} was started with --rm: stopping it would delete it, leaving nothing to roll back to; recreate it without --rm first"
        )));
    }
    if let Some(infra) = crate::engine::podman::pod_infra(engine, &old).await? {
        return Err(Error::Refused(crate::engine::podman::pod_refusal(
            name, &infra,
        )));
    }
    Ok((lock, old))
}

/// The profile a container follows (see [`Catalog::choose`]).
pub fn choose_profile(
    catalog: &Catalog,
    choice: &Choice,
    c: &Container,
) -> Result<Option<(Loaded, String)>> {
    catalog
        .choose(choice, &c.labels(), c.image())
        .map_err(|e| Error::Refused(e.to_string()))
}

/// What the profile reads from a container: its environment and files.
pub async fn gather_facts(
    engine: &dyn Engine,
    profile: Option<&Profile>,
    c: &Container,
) -> Result<Facts> {
    let Some(profile) = profile else {
        return Ok(Facts::read(engine, c, &[]).await?);
    };
    let mut facts = Facts::read(engine, c, &profile.files_to_read(c.env())).await?;
    facts.test(engine, c, &profile.files_to_test()).await?;
    Ok(facts)
}

/// `c` with what its profile reads of it, then, when the profile groups by database, every
/// other running container of the product on the same database.
pub async fn with_its_group(
    engine: &dyn Engine,
    catalog: &Catalog,
    loaded: &Loaded,
    c: Container,
) -> Result<Vec<(String, Container, Facts)>> {
    let profile = &loaded.profile;
    let facts = gather_facts(engine, Some(profile), &c).await?;
    let mut members = vec![(c.name().to_string(), c, facts)];
    if profile.groups_by_database() {
        let (_, first, first_facts) = &members[0];
        let others = group_members(engine, catalog, loaded, first, first_facts).await?;
        members.extend(others);
    }
    Ok(members)
}

/// The other running containers of the same profile on the same database, by name.
pub async fn group_members(
    engine: &dyn Engine,
    catalog: &Catalog,
    loaded: &Loaded,
    primary: &Container,
    primary_facts: &Facts,
) -> Result<Vec<(String, Container, Facts)>> {
    let profile = &loaded.profile;
    let Some(database) = &profile.database else {
        return Ok(Vec::new());
    };
    let identity = database_identity(engine, primary, database, primary_facts).await?;
    let mut found = Vec::new();
    for (name, c) in running(engine, Some(primary.name())).await? {
        let same_profile = match choose_profile(catalog, &Choice::Auto, &c) {
            Ok(Some((other, _))) => other.profile.name == profile.name,
            _ => false,
        };
        if !same_profile {
            continue;
        }
        secrets::register_env(c.env());
        let facts = match gather_facts(engine, Some(profile), &c).await {
            Ok(facts) => facts,
            // A container removed or stopped while it was read (a one-shot run with --rm, another
            // tool's cleanup) is no member; one still running that cannot be read might be, and
            // moving without it could leave it on a schema its version refuses.
            Err(e) if still_running(engine, &name).await? => return Err(e),
            Err(e) => {
                tracing::debug!("{name} went away while it was read ({e}): not a member");
                continue;
            }
        };
        if database_identity(engine, &c, database, &facts)
            .await
            .is_ok_and(|other| other == identity)
        {
            tracing::info!(
                "{name} is on the same database: it moves with {}",
                primary.name().to_string()
            );
            found.push((name, c, facts));
        }
    }
    Ok(found)
}

/// The running containers of the same installation as `primary` whose images are in one of the
/// `repositories` (a profile's companions, or a related product's): on a user-defined network
/// it is on, or in its compose project.
pub async fn beside(
    engine: &dyn Engine,
    repositories: &[String],
    primary: &Container,
) -> Result<Vec<String>> {
    let installation = |c: &Container| {
        let networks = c
            .attachments()
            .into_iter()
            .map(|a| a.network)
            .filter(|n| !matches!(n.as_str(), "bridge" | "host" | "none"));
        let project = c
            .label("com.docker.compose.project")
            .map(|p| format!("compose:{p}"));
        networks.chain(project).collect::<Vec<_>>()
    };
    let ours = installation(primary);
    let mut found = Vec::new();
    for (name, c) in running(engine, Some(primary.name())).await? {
        let image = crate::engine::reference::ImageRef::parse(c.image());
        let companion = image
            .as_ref()
            .and_then(|i| profile::repository_matching(repositories, i))
            .is_some();
        if companion && installation(&c).iter().any(|i| ours.contains(i)) {
            tracing::info!(
                "{name} ({}) belongs to the same installation: it moves with {}",
                c.image().to_string(),
                primary.name().to_string()
            );
            found.push(name);
        }
    }
    Ok(found)
}

/// The running containers besides `besides` and those cutover keeps aside, by name.
async fn running(engine: &dyn Engine, besides: Option<&str>) -> Result<Vec<(String, Container)>> {
    let mut names = engine.container_names(false).await?;
    names.sort();
    let mut found = Vec::new();
    for name in names {
        if Some(name.as_str()) == besides || plan::is_reserved_name(&name) {
            continue;
        }
        if let Some(c) = engine.inspect(&name).await? {
            found.push((name, c));
        }
    }
    Ok(found)
}

async fn still_running(engine: &dyn Engine, name: &str) -> Result<bool> {
    Ok(engine.inspect(name).await?.is_some_and(|c| c.is_running()))
}

/// What makes two containers share a database: the server (the database's container when it
/// runs in one, since two projects may each call theirs `db`, else its host), port and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DatabaseIdentity {
    pub server: String,
    pub port: u16,
    pub name: String,
    /// The server is a container of the node's own engine: its name means nothing on another
    /// host.
    pub local: bool,
    /// The host ports a local server publishes its database's port on: what a node on
    /// another host would name it by, with this host's address.
    pub published: Vec<u16>,
}

impl DatabaseIdentity {
    /// Whether nodes on two hosts may share this database: the same server, port and name as
    /// both name it, or a port one host's database container publishes, with the same name.
    /// Two hosts' own database containers are never one.
    pub fn across_hosts(&self, other: &DatabaseIdentity) -> bool {
        match (self.local, other.local) {
            (false, false) => self == other,
            (true, true) => false,
            (true, false) => self.name == other.name && self.published.contains(&other.port),
            (false, true) => other.across_hosts(self),
        }
    }
}

impl std::fmt::Display for DatabaseIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}/{}", self.server, self.port, self.name)
    }
}

async fn database_identity(
    engine: &dyn Engine,
    c: &Container,
    database: &profile::DatabaseSpec,
    facts: &Facts,
) -> Result<DatabaseIdentity> {
    let location = database
        .locate(facts)
        .map_err(|e| Error::Refused(format!("{}: {e}", c.name())))?;
    let container = crate::backup::database_container(engine, c, &location.host).await?;
    let published = match &container {
        Some(server) => published(engine, server.name(), location.port).await?,
        None => Vec::new(),
    };
    Ok(DatabaseIdentity {
        local: container.is_some(),
        server: container.map_or(location.host, |s| s.name().to_string()),
        port: location.port,
        name: location.name,
        published,
    })
}

/// The host ports `container` publishes its TCP `port` on.
async fn published(engine: &dyn Engine, container: &str, port: u16) -> Result<Vec<u16>> {
    let bindings = engine
        .inspect(container)
        .await?
        .map(|c| c.published())
        .unwrap_or_default();
    let mut ports: Vec<u16> = bindings
        .into_iter()
        .filter(|(p, proto, _, _)| *p == port && proto == "tcp")
        .map(|(_, _, _, host_port)| host_port)
        .collect();
    ports.dedup();
    Ok(ports)
}

/// A running container of a product whose containers on one database move together.
#[derive(Debug, Clone)]
pub struct Node {
    pub container: String,
    pub profile: String,
    pub database: DatabaseIdentity,
}

/// Every running container of this engine that follows a profile grouping by database, with its
/// database: over a fleet, what tells the nodes of one cluster spread over several hosts. A
/// container whose database cannot be told is left out, and said so.
pub async fn nodes(engine: &dyn Engine, catalog: &Catalog) -> Result<Vec<Node>> {
    let mut found = Vec::new();
    for (name, c) in running(engine, None).await? {
        let Ok(Some((loaded, _))) = choose_profile(catalog, &Choice::Auto, &c) else {
            continue;
        };
        let profile = &loaded.profile;
        let (true, Some(database)) = (profile.groups_by_database(), &profile.database) else {
            continue;
        };
        secrets::register_env(c.env());
        let identity = match gather_facts(engine, Some(profile), &c).await {
            Ok(facts) => database_identity(engine, &c, database, &facts).await,
            Err(e) => Err(e),
        };
        match identity {
            Ok(database) => found.push(Node {
                container: name,
                profile: profile.name.clone(),
                database,
            }),
            Err(e) => tracing::warn!("{name}: its database cannot be told ({e})"),
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::{Behaviour, FakeEngine};

    const QUAY: &str = "quay.io/projectquay/quay:v3.8.0";

    fn node(fake: &FakeEngine, name: &str) {
        let config = "DB_URI: postgresql://quay:pw@db:5432/quay\nDATABASE_SECRET_KEY: k\n";
        fake.run(name, QUAY, &[], &[("/conf/stack/config.yaml", config)]);
    }

    async fn members(fake: &FakeEngine) -> Result<Vec<String>> {
        let catalog = Catalog::builtin();
        let primary = fake.inspect("quay-a").await.unwrap().unwrap();
        let (loaded, _) = choose_profile(&catalog, &Choice::Auto, &primary)?.unwrap();
        let facts = gather_facts(fake, Some(&loaded.profile), &primary).await?;
        let found = group_members(fake, &catalog, &loaded, &primary, &facts).await?;
        Ok(found.into_iter().map(|(name, ..)| name).collect())
    }

    #[tokio::test]
    async fn a_node_removed_while_it_is_read_is_left_out_and_a_running_one_is_not() {
        let fake = FakeEngine::default();
        fake.publish(QUAY, Behaviour::Serve, &[]);
        for name in ["quay-a", "quay-b", "quay-c"] {
            node(&fake, name);
        }
        assert_eq!(members(&fake).await.unwrap(), ["quay-b", "quay-c"]);

        fake.fail_reads("quay-c", true);
        assert_eq!(members(&fake).await.unwrap(), ["quay-b"]);

        // Still running, unreadable: it may be on the database, so nothing goes ahead.
        fake.fail_reads("quay-b", false);
        let refused = members(&fake).await.unwrap_err().to_string();
        assert!(refused.contains("unexpectedly nil"), "{refused}");
    }
}
