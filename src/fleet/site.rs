//! Where a command works: the engine the docker CLI would reach (or the one `-H`/`--context`
//! names), the state directory of this host, and where a container the command line names
//! lives: `HOST/NAME` routed to that host of the config file's fleet.

use std::path::PathBuf;

use crate::engine::endpoint::{self, Endpoint};
use crate::engine::DockerEngine;
use crate::error::{Error, Result};
use crate::ops::settings::Given;
use crate::profile::Catalog;
use crate::run::journal::{self, StateDir};

/// The engine a command works on and the state directory of this host (journals and locks stay
/// with the one who runs cutover).
#[derive(Clone)]
pub struct Site {
    pub state_root: PathBuf,
    pub endpoint: Endpoint,
    /// `-H` or `--context` was given, or a `HOST/NAME` aimed at a host of the fleet.
    pub named_engine: bool,
}

impl Site {
    /// The site the command line names: its state directory, and the engine it resolves to.
    pub fn new(state_dir: Option<PathBuf>, engine: &endpoint::EngineGiven) -> Result<Site> {
        Ok(Site {
            state_root: state_dir.unwrap_or_else(journal::default_state_dir),
            endpoint: endpoint::resolve(engine, &endpoint::Sources::process())
                .map_err(Error::bad_input)?,
            named_engine: *engine != endpoint::EngineGiven::default(),
        })
    }

    pub async fn engine(&self) -> Result<DockerEngine> {
        Ok(DockerEngine::connect(&self.endpoint).await?)
    }

    /// The state of the engine's containers: a directory per remote engine.
    pub fn state(&self) -> Result<StateDir> {
        Ok(super::open_state(&self.state_root, &self.endpoint)?)
    }

    pub async fn connect(&self) -> Result<(DockerEngine, StateDir)> {
        let state = self.state()?;
        Ok((self.engine().await?, state))
    }

    /// [`Site::aim`] for a command that changes the container's version or its database,
    /// refused on a node of a cluster over hosts, which moves only with the others.
    pub async fn aim_alone(
        &self,
        given: Given,
        name: &str,
        catalog: &Catalog,
    ) -> Result<(Site, Given, String)> {
        if name.contains('/') && !given.config.hosts.is_empty() {
            if let Some(why) = super::clusters::refusal(&given, catalog, name).await? {
                return Err(Error::Refused(why));
            }
        }
        self.aim(given, name)
    }

    /// Where a container the command line names lives: `HOST/NAME` is NAME on that host of the
    /// config file's fleet, with the file's entries as that host sees them; any other name is
    /// on this site's engine.
    pub fn aim(&self, given: Given, name: &str) -> Result<(Site, Given, String)> {
        let Some((host, bare)) = name.split_once('/') else {
            return Ok((self.clone(), given, name.to_string()));
        };
        if self.named_engine {
            return Err(Error::Refused(format!(
                "{name} names its host, and -H/--context name another engine: give one"
            )));
        }
        let Some(entry) = given.config.hosts.get(host) else {
            return Err(Error::Refused(format!(
                "{name}: {host} is no host of the config file's `hosts` (give --config with it, or -H/--context and the bare name)"
            )));
        };
        let endpoint = entry.endpoint(host)?;
        let site = Site {
            state_root: self.state_root.clone(),
            endpoint,
            named_engine: true,
        };
        Ok((site, given.for_host(host), bare.to_string()))
    }
}
