//! Containers cutover makes for its own work, never the product's: a tool run in a product's
//! image (emptying a volume before a restore, copying a database's volume) or another server
//! like a product's database server (a throwaway reader of a copy, a rehearsal's copy). They are
//! described in the library's words here; only the engine turns them into its create request.

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};

use super::{Engine, EngineError};
use crate::secrets;

/// The lines of a helper's output kept for a message: enough to say why it failed.
const SAID: usize = 8;

/// How a helper run to its end ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ran {
    pub code: i64,
    /// Its first lines of output, secrets hidden.
    pub said: Vec<String>,
}

/// What a helper container is created with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Helper {
    /// An image reference or id.
    pub image: String,
    /// The user it runs as; the image's when `None`.
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Option<Vec<String>>,
    pub working_dir: Option<String>,
    pub labels: Vec<(String, String)>,
    /// `VOLUME:PATH` mounts.
    pub binds: Vec<String>,
    /// Containers whose volumes it mounts where they mount them.
    pub volumes_from: Vec<String>,
    /// The one network it is on, with the names it answers to there; none at all when `None`:
    /// a helper reaches nothing unless it must.
    pub network: Option<(String, Vec<String>)>,
}

impl Helper {
    /// Runs it once as `name` to its exit, then removes it. One of that name a killed run left
    /// behind is of no use and is removed first.
    pub async fn run_once(&self, engine: &dyn Engine, name: &str) -> Result<Ran, EngineError> {
        if let Some(old) = engine.inspect(name).await? {
            engine.remove(old.id()).await?;
        }
        let id = engine.create_helper(name, self).await?;
        let mut said = Vec::new();
        let ran = async {
            engine.start(&id).await?;
            engine
                .follow_to_exit(&id, &mut |line| {
                    if said.len() < SAID {
                        said.push(secrets::redact(line));
                    }
                })
                .await
        }
        .await;
        engine.remove(&id).await?;
        Ok(Ran { code: ran?, said })
    }

    /// The engine's create request for it.
    pub(super) fn body(&self) -> ContainerCreateBody {
        let some = |v: &Vec<String>| (!v.is_empty()).then(|| v.clone());
        let (network_mode, networking_config) = match &self.network {
            None => ("none".to_string(), None),
            Some((network, aliases)) => {
                let endpoint = EndpointSettings {
                    aliases: some(aliases),
                    ..Default::default()
                };
                let config = NetworkingConfig {
                    endpoints_config: Some([(network.clone(), endpoint)].into()),
                };
                (network.clone(), Some(config))
            }
        };
        ContainerCreateBody {
            image: Some(self.image.clone()),
            user: self.user.clone(),
            entrypoint: self.entrypoint.clone(),
            cmd: self.cmd.clone(),
            env: self.env.clone(),
            working_dir: self.working_dir.clone(),
            labels: (!self.labels.is_empty()).then(|| self.labels.iter().cloned().collect()),
            network_disabled: self.network.is_none().then_some(true),
            host_config: Some(HostConfig {
                binds: some(&self.binds),
                volumes_from: some(&self.volumes_from),
                network_mode: Some(network_mode),
                ..Default::default()
            }),
            networking_config,
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_helper_without_a_network_is_on_none_and_one_with_answers_to_its_aliases() {
        let alone = Helper {
            image: "sha256:pg".into(),
            binds: vec!["copy:/data".into()],
            ..Default::default()
        }
        .body();
        let host = alone.host_config.unwrap();
        assert_eq!(
            (alone.network_disabled, host.network_mode.as_deref()),
            (Some(true), Some("none"))
        );
        assert_eq!(host.binds, Some(vec!["copy:/data".into()]));
        assert_eq!(host.volumes_from, None);
        let on = Helper {
            image: "sha256:pg".into(),
            network: Some(("rehearsal".into(), vec!["db".into()])),
            ..Default::default()
        }
        .body();
        assert_eq!(on.network_disabled, None);
        assert_eq!(
            on.host_config.unwrap().network_mode.as_deref(),
            Some("rehearsal")
        );
        let endpoints = on.networking_config.unwrap().endpoints_config.unwrap();
        assert_eq!(endpoints["rehearsal"].aliases, Some(vec!["db".into()]));
    }
}
