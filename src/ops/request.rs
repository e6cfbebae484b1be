//! What an upgrade is asked, and the hops it takes through a profile's upgrade path with each
//! hop's steps: shared by the upgrade of containers ([`super::upgrade`]) and of a product's
//! Swarm services ([`super::service`]).

use crate::engine::credentials::Logins;
use crate::engine::{Container, Engine};

use super::backup::BackupRequest;
use super::compose::ComposeRequest;
use super::settings::Given;
use crate::engine::reference::ImageRef;
use crate::engine::registry::RegistryClient;
use crate::error::{Error, Result};
use crate::plan::build::{StageOptions, Target};
use crate::plan::UpgradeOptions;
use crate::profile::{self, Facts, Profile};

pub struct UpgradeRequest {
    /// The container the command names; the group's primary member.
    pub name: String,
    /// Other containers that move with it (`--with`), in the order they stop.
    pub with: Vec<String>,
    /// What the command line asked for; a profile adds to it. Its health policy is replaced by
    /// the one [`settings::resolve`] makes of every layer.
    pub options: UpgradeOptions,
    /// The config file, the command line's health flags and `--profile`.
    pub given: Given,
    pub backup: BackupRequest,
    pub compose: ComposeRequest,
    /// Another node of its cluster, on another host, moves the shared database to the target
    /// first (see [`crate::plan::steps::gate`]): this one goes straight to the target, with
    /// neither a migration nor a backup of that database, whose rollback would undo the other
    /// node's.
    pub follows: Option<String>,
    /// The versions of the profile's related products the operator gave (`--related
    /// clair=4.8.0`), by the profile's name for each.
    pub related: std::collections::BTreeMap<String, String>,
}

/// The hops the profile's upgrade path needs, from the registry's tags: asked with the config's
/// insecure registries and the logins of the engine's tool (see [`Logins`]).
pub(super) async fn plan_hops(
    engine: &dyn Engine,
    primary: &Container,
    target: &Target,
    path: &profile::UpgradePath,
    insecure: &[String],
) -> Result<Vec<String>> {
    let current = ImageRef::parse(primary.image());
    let target = match (target, &current) {
        (Target::Image(image), _) => image.clone(),
        (Target::Tag(tag), Some(current)) => current.with_tag(tag),
        (Target::Tag(_), None) => return Ok(Vec::new()),
    };
    let (Some(current_tag), Some(target_tag)) = (current.and_then(|c| c.tag), target.tag.clone())
    else {
        return Ok(Vec::new());
    };
    let registry = RegistryClient::new(insecure.to_vec())
        .map_err(|e| Error::Refused(e.to_string()))?
        .logins(Logins::of(engine));
    let tags = registry.tags(&target).await.map_err(|e| Error::Refused(format!(
        "the profile's upgrade path needs the registry's tags to choose the hops: {e}; give them with --via"
    )))?;
    let via = profile::hops(&current_tag, &target_tag, &tags, path)?;
    if !via.is_empty() {
        tracing::info!("the upgrade path goes through {}", via.join(", "));
    }
    Ok(via)
}

/// The profile's steps for each hop, refusing when a member lacks what the new version needs.
pub(super) fn hop_steps(
    profile: &Profile,
    primary: &Container,
    options: &UpgradeOptions,
    facts: &[Facts],
) -> Result<Vec<StageOptions>> {
    let current = ImageRef::parse(primary.image())
        .and_then(|r| r.tag)
        .unwrap_or_default();
    let target = match &options.target {
        Target::Tag(tag) => tag.clone(),
        Target::Image(image) => image.tag.clone().unwrap_or_default(),
    };
    let tags: Vec<String> = std::iter::once(current)
        .chain(options.via.iter().cloned())
        .chain(std::iter::once(target))
        .collect();
    let mut stages = Vec::new();
    for pair in tags.windows(2) {
        let mut steps = None;
        for member in facts {
            let hop = profile
                .for_hop(&pair[0], &pair[1], member)
                .map_err(|e| Error::Refused(format!("profile {}: {e}", profile.name)))?;
            if let Some(why) = hop.refusal {
                return Err(Error::Refused(format!(
                    "profile {}, {} to {}: {why}",
                    profile.name, pair[0], pair[1]
                )));
            }
            steps.get_or_insert(hop.stage);
        }
        stages.push(steps.unwrap_or_default());
    }
    Ok(stages)
}
