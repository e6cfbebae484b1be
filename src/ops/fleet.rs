//! The hosts of a fleet (the config file's `hosts`), reached at once, each as the docker CLI
//! would reach it: a host that does not answer is told, and the others are read all the same.

use std::collections::BTreeMap;

use crate::discover::config::HostEntry;
use crate::engine::endpoint::{self, Sources};
use crate::engine::DockerEngine;

/// Every host's engine, or why it could not be reached, in the file's order.
pub async fn connect(
    hosts: &BTreeMap<String, HostEntry>,
) -> Vec<(String, Result<DockerEngine, String>)> {
    let sources = Sources::process();
    let sources = &sources;
    let reached = hosts.iter().map(|(name, entry)| async move {
        let engine = match endpoint::resolve(&entry.given(), sources) {
            Ok(at) => DockerEngine::connect(&at).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        (name.clone(), engine)
    });
    futures_util::future::join_all(reached).await
}
