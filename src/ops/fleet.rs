//! The hosts of a fleet (the config file's `hosts`), reached at once, each as the docker CLI
//! would reach it: a host that does not answer is told, and the others are read all the same.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::discover::config::HostEntry;
use crate::engine::endpoint::{self, Endpoint, Sources};
use crate::engine::DockerEngine;

/// A host of the fleet as it was reached.
pub struct Reached {
    pub endpoint: Endpoint,
    pub engine: DockerEngine,
}

/// Every host's engine, or why it could not be reached, in the file's order.
pub async fn connect(
    hosts: &BTreeMap<String, HostEntry>,
) -> Vec<(String, Result<Reached, String>)> {
    let sources = Sources::process();
    let sources = &sources;
    let reached = hosts.iter().map(|(name, entry)| async move {
        let reached = match endpoint::resolve(&entry.given(), sources) {
            Ok(endpoint) => DockerEngine::connect(&endpoint)
                .await
                .map(|engine| Reached { endpoint, engine })
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (name.clone(), reached)
    });
    futures_util::future::join_all(reached).await
}

/// Where an engine's containers keep their state under `root`: `root` itself for a local
/// socket, a directory of its own for an engine reached over the network (see
/// [`Endpoint::state_key`]).
pub fn state_dir(root: &Path, endpoint: &Endpoint) -> PathBuf {
    match endpoint.state_key() {
        Some(key) => root.join("hosts").join(key),
        None => root.to_path_buf(),
    }
}
