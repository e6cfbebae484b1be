//! A fleet: the hosts of the config file's `hosts`, reached at once, each as the docker CLI
//! would reach it (a host that does not answer is told, and the others are read all the same),
//! its `HOST/NAME` containers, its rolling passes and upgrades ([`rollout`]), and the clusters
//! of a product spread over its hosts, which move only as a whole ([`clusters`]).

#[cfg(test)]
mod cluster_tests;
pub mod clusters;
pub mod rollout;
mod site;

pub use site::Site;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::HostEntry;
use crate::discover::check::FleetHost;
use crate::engine::endpoint::Endpoint;
use crate::engine::{DockerEngine, Engine};
use crate::run::recover::Recovery;
use crate::run::{Interrupt, Outcome, StateDir};

/// A host of the fleet as it was reached.
pub struct Reached {
    pub endpoint: Endpoint,
    pub engine: DockerEngine,
}

/// Every host's engine, or why it could not be reached, in the file's order.
pub async fn connect(
    hosts: &BTreeMap<String, HostEntry>,
) -> Vec<(String, Result<Reached, String>)> {
    let reached = hosts.iter().map(|(name, entry)| async move {
        let reached = match entry.endpoint(name) {
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

/// A host reached with the state of its containers, for the commands that change them.
pub struct Connected {
    pub name: String,
    pub reached: Result<(DockerEngine, StateDir), String>,
}

impl Connected {
    pub fn host(&self) -> Host<'_> {
        Host {
            name: self.name.clone(),
            reached: self
                .reached
                .as_ref()
                .map(|(engine, state)| (engine as &dyn Engine, state))
                .map_err(Clone::clone),
        }
    }
}

/// Every host reached at once, each with its state directory under `root` opened.
pub async fn connect_with_state(
    hosts: &BTreeMap<String, HostEntry>,
    root: &Path,
) -> crate::Result<Vec<Connected>> {
    let mut connected = Vec::new();
    for (name, reached) in connect(hosts).await {
        let reached = match reached {
            Ok(r) => Ok((r.engine, open_state(root, &r.endpoint)?)),
            Err(e) => Err(e),
        };
        connected.push(Connected { name, reached });
    }
    Ok(connected)
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

/// The state directory of an engine's containers under `root` (see [`state_dir`]), opened.
/// `root` and its `hosts/` are refused as the engine's own directory is when other users could
/// write them (see [`crate::private::dir`]): they could put another directory in its place.
pub fn open_state(
    root: &Path,
    endpoint: &Endpoint,
) -> Result<StateDir, crate::run::journal::JournalError> {
    let dir = state_dir(root, endpoint);
    let above: Vec<&Path> = dir
        .ancestors()
        .skip(1)
        .take_while(|a| a.starts_with(root))
        .collect();
    // From the top: nothing is made under a directory that is refused.
    for above in above.into_iter().rev() {
        crate::private::dir(above)?;
    }
    StateDir::open(&dir)
}

/// A host of the fleet as a command over its state sees it: its engine and state, or why it
/// was not reached.
pub struct Host<'a> {
    pub name: String,
    pub reached: Result<(&'a dyn Engine, &'a StateDir), String>,
}

/// The interrupted runs of every host, or of `HOST/NAME`'s, each finished or undone by the
/// journal of its own engine; containers are told as `HOST/NAME`. A host that was not reached
/// is told as needing attention: its runs are not known.
pub async fn recover(
    hosts: &[Host<'_>],
    name: Option<&str>,
    interrupt: &Interrupt,
) -> crate::Result<Vec<Recovery>> {
    let (only_host, only_name) = split(name)?;
    let asked = hosts
        .iter()
        .filter(|h| only_host.is_none_or(|o| o == h.name));
    let mut all = recover_hosts(asked, only_name, interrupt).await?;
    // A node of a cluster over hosts waits for its first node's run, which a later host may
    // have held: once that one is recovered, it can be.
    let waiting: Vec<&str> = all
        .iter()
        .filter(|r| r.waits_for.is_some())
        .map(|r| host_of(&r.container))
        .collect();
    if !waiting.is_empty() {
        let again = hosts.iter().filter(|h| waiting.contains(&h.name.as_str()));
        let retried = recover_hosts(again, only_name, interrupt).await?;
        all.retain(|r| r.waits_for.is_none());
        all.extend(retried);
    }
    Ok(all)
}

async fn recover_hosts<'a>(
    hosts: impl Iterator<Item = &'a Host<'a>>,
    only_name: Option<&str>,
    interrupt: &Interrupt,
) -> crate::Result<Vec<Recovery>> {
    let mut all = Vec::new();
    for host in hosts {
        match &host.reached {
            Ok((engine, state)) => {
                let done =
                    crate::ops::recover::recover(*engine, state, only_name, interrupt).await?;
                all.extend(done.into_iter().map(|mut r| {
                    r.container = format!("{}/{}", host.name, r.container);
                    r
                }));
            }
            Err(why) => all.push(Recovery {
                container: host.name.clone(),
                kind: None,
                journal: String::new(),
                outcome: Some(Outcome::NeedsAttention),
                message: format!(
                    "the host was not reached, so its interrupted runs are not known: {why}"
                ),
                downtime_ms: None,
                members: Vec::new(),
                waits_for: None,
            }),
        }
    }
    Ok(all)
}

/// `HOST/NAME` as the host and the name; a bare name is refused, since the fleet has many.
pub fn split(name: Option<&str>) -> crate::Result<(Option<&str>, Option<&str>)> {
    match name.map(|n| n.split_once('/')) {
        None => Ok((None, None)),
        Some(Some((host, name))) => Ok((Some(host), Some(name))),
        Some(None) => Err(crate::Error::Refused(format!(
            "{}: in a fleet, name a container HOST/NAME",
            name.unwrap_or_default()
        ))),
    }
}

/// The runs every host's journals tell (or `HOST/NAME`'s), read on this machine: no host is
/// asked. Containers are told as `HOST/NAME`, the newest run first.
pub fn history(
    hosts: &BTreeMap<String, HostEntry>,
    root: &Path,
    name: Option<&str>,
) -> crate::Result<Vec<crate::ops::history::Entry>> {
    let (only_host, only_name) = split(name)?;
    let mut all = Vec::new();
    for (host, entry) in hosts
        .iter()
        .filter(|(h, _)| only_host.is_none_or(|o| o == *h))
    {
        let endpoint = entry.endpoint(host)?;
        let state = open_state(root, &endpoint)?;
        all.extend(
            crate::ops::history::history(&state, only_name)?
                .into_iter()
                .map(|mut e| {
                    e.container = format!("{host}/{}", e.container);
                    e
                }),
        );
    }
    all.sort_by(|a, b| b.started_at.cmp(&a.started_at));
    Ok(all)
}

/// The host of a fleet's `HOST/NAME`.
pub fn host_of(container: &str) -> &str {
    container.split_once('/').map_or("", |(host, _)| host)
}

/// One host as discovery reads it (see [`crate::discover::check::discover_fleet`]).
impl<'a> FleetHost<'a> {
    /// The hosts as [`connect`] reached them.
    pub fn all(
        connected: &'a [(String, std::result::Result<Reached, String>)],
    ) -> Vec<FleetHost<'a>> {
        connected
            .iter()
            .map(|(name, reached)| FleetHost {
                name: name.clone(),
                engine: reached
                    .as_ref()
                    .map(|r| &r.engine as &dyn Engine)
                    .map_err(Clone::clone),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::private::{assert_refuses, chmod};
    use proptest::prelude::*;

    use crate::testing::{cases, said, text, ARBITRARY};

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        /// `HOST/NAME` splits at its first slash into parts that make it up again; a name
        /// without one is refused with the name and the form.
        #[test]
        fn a_fleet_name_splits_into_its_host_and_name_or_is_refused(name in text()) {
            match super::split(Some(&name)) {
                Ok((Some(host), Some(container))) => {
                    prop_assert!(!host.contains('/'));
                    prop_assert_eq!(format!("{host}/{container}"), name);
                }
                Ok(other) => prop_assert!(false, "{:?}", other),
                Err(e) => {
                    let e = e.to_string();
                    said(&e)?;
                    prop_assert!(!name.contains('/'));
                    prop_assert!(e.contains(&name) && e.contains("HOST/NAME"), "{}", e);
                }
            }
        }
    }

    #[test]
    fn the_state_root_above_an_engines_own_directory_is_refused_when_others_can_write_it() {
        let root = std::env::temp_dir().join(format!("cutover-fleet-{}", std::process::id()));
        let remote = Endpoint::at("tcp://10.0.0.2:2375");
        open_state(&root, &remote).unwrap();
        for exposed in [root.clone(), root.join("hosts")] {
            chmod(&exposed, 0o777);
            assert_refuses(open_state(&root, &remote).err().expect("refused"), &exposed);
            chmod(&exposed, 0o700);
        }
        std::fs::remove_dir_all(&root).unwrap();
    }
}
