//! The containers a command works on: claimed, running, with their profile and the other
//! members of their group (every container of the profile on the same database).

use bollard::models::ContainerInspectResponse;

use super::preflight;
use crate::engine::{self, Engine};
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
) -> Result<(ContainerLock, ContainerInspectResponse)> {
    let (lock, old) = preflight::claim_running(engine, state, name).await?;
    if old.host_config.as_ref().and_then(|h| h.auto_remove) == Some(true) {
        return Err(Error::Refused(format!(
            "{name} was started with --rm: stopping it would delete it, leaving nothing to roll back to; recreate it without --rm first"
        )));
    }
    Ok((lock, old))
}

/// The profile a container follows (see [`Catalog::choose`]).
pub fn choose_profile(
    catalog: &Catalog,
    choice: &Choice,
    c: &ContainerInspectResponse,
) -> Result<Option<(Loaded, String)>> {
    let labels = c
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    catalog
        .choose(choice, &labels, &engine::image_of(c))
        .map_err(|e| Error::Refused(e.to_string()))
}

/// What the profile reads from a container: its environment and files.
pub async fn gather_facts(
    engine: &dyn Engine,
    profile: Option<&Profile>,
    c: &ContainerInspectResponse,
) -> Result<Facts> {
    let Some(profile) = profile else {
        return Ok(Facts::read(engine, c, &[]).await?);
    };
    let mut facts = Facts::read(engine, c, &profile.files_to_read(&engine::env_of(c))).await?;
    facts.test(engine, c, &profile.files_to_test()).await?;
    Ok(facts)
}

/// The other running containers of the same profile on the same database, by name.
pub async fn group_members(
    engine: &dyn Engine,
    catalog: &Catalog,
    loaded: &Loaded,
    primary: &ContainerInspectResponse,
    primary_facts: &Facts,
) -> Result<Vec<(String, ContainerInspectResponse, Facts)>> {
    let profile = &loaded.profile;
    let Some(database) = &profile.database else {
        return Ok(Vec::new());
    };
    let identity = database_identity(engine, primary, database, primary_facts).await?;
    let mut found = Vec::new();
    for (name, c) in others_running(engine, primary).await? {
        let same_profile = match choose_profile(catalog, &Choice::Auto, &c) {
            Ok(Some((other, _))) => other.profile.name == profile.name,
            _ => false,
        };
        if !same_profile {
            continue;
        }
        secrets::register_container(&c);
        let facts = gather_facts(engine, Some(profile), &c).await?;
        if database_identity(engine, &c, database, &facts)
            .await
            .is_ok_and(|other| other == identity)
        {
            tracing::info!(
                "{name} is on the same database: it moves with {}",
                engine::name_of(primary)
            );
            found.push((name, c, facts));
        }
    }
    Ok(found)
}

/// The running containers of the same installation as `primary` whose images are in one of the
/// `companions` repositories: on a user-defined network it is on, or in its compose project.
pub async fn companions(
    engine: &dyn Engine,
    companions: &[String],
    primary: &ContainerInspectResponse,
) -> Result<Vec<String>> {
    let installation = |c: &ContainerInspectResponse| {
        let networks = c
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .map(|n| n.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default()
            .into_iter()
            .filter(|n| !matches!(n.as_str(), "bridge" | "host" | "none"));
        let project = c
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get("com.docker.compose.project"))
            .map(|p| format!("compose:{p}"));
        networks.chain(project).collect::<Vec<_>>()
    };
    let ours = installation(primary);
    let mut found = Vec::new();
    for (name, c) in others_running(engine, primary).await? {
        let image = crate::engine::reference::ImageRef::parse(&engine::image_of(&c));
        let companion = image
            .as_ref()
            .and_then(|i| profile::repository_matching(companions, i))
            .is_some();
        if companion && installation(&c).iter().any(|i| ours.contains(i)) {
            tracing::info!(
                "{name} ({}) belongs to the same installation: it moves with {}",
                engine::image_of(&c),
                engine::name_of(primary)
            );
            found.push(name);
        }
    }
    Ok(found)
}

/// The running containers besides `primary` and those cutover keeps aside, by name.
async fn others_running(
    engine: &dyn Engine,
    primary: &ContainerInspectResponse,
) -> Result<Vec<(String, ContainerInspectResponse)>> {
    let mut names = engine.container_names(false).await?;
    names.sort();
    let mut found = Vec::new();
    for name in names {
        if name == engine::name_of(primary) || plan::is_reserved_name(&name) {
            continue;
        }
        if let Some(c) = engine.inspect(&name).await? {
            found.push((name, c));
        }
    }
    Ok(found)
}

/// What makes two containers share a database: the server (the database's container when it
/// runs in one, since two projects may each call theirs `db`, else its host), port and name.
async fn database_identity(
    engine: &dyn Engine,
    c: &ContainerInspectResponse,
    database: &profile::DatabaseSpec,
    facts: &Facts,
) -> Result<(String, u16, String)> {
    let location = database
        .locate(facts)
        .map_err(|e| Error::Refused(format!("{}: {e}", engine::name_of(c))))?;
    let server = crate::backup::database_container(engine, c, &location.host)
        .await?
        .map_or(location.host, |s| s.name().to_string());
    Ok((server, location.port, location.name))
}
