//! Containers cutover makes for its own work, never the product's: a tool run in a product's
//! image (emptying a volume before a restore, copying a database's volume) or another server
//! like a product's database server (a throwaway reader of a copy, a rehearsal's copy). They are
//! described in the library's words here; only the engine turns them into its create request.

use bollard::models::{ContainerCreateBody, EndpointSettings, HostConfig, NetworkingConfig};

use super::{ByteSink, ByteStream, Container, Engine, EngineError};
use crate::secrets;

/// The lines of a helper's output kept for a message: enough to say why it failed.
const SAID: usize = 8;

/// The first lines a helper said, secrets hidden.
#[derive(Default)]
struct Said(Vec<String>);

impl Said {
    fn hear(&mut self, line: &str) {
        if self.0.len() < SAID {
            self.0.push(secrets::redact(line));
        }
    }
}

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
    /// A one-shot of `app`'s own image that mounts its volumes where it does, as root and
    /// without network (the app itself may be stopped): the tools that work on a product's
    /// files are those of its image, which the engine's API lacks (deleting files, `tar` that
    /// keeps owners).
    pub fn over_volumes_of(app: &Container, entrypoint: &[&str]) -> Helper {
        Helper {
            image: app.image().to_string(),
            user: Some("0".into()),
            entrypoint: Some(entrypoint.iter().map(|w| w.to_string()).collect()),
            volumes_from: vec![app.id().to_string()],
            ..Default::default()
        }
    }

    /// Runs it once as `name` to its exit, then removes it.
    pub async fn run_once(&self, engine: &dyn Engine, name: &str) -> Result<Ran, EngineError> {
        let id = self.create(engine, name).await?;
        let mut said = Said::default();
        let ran = async {
            engine.start(&id).await?;
            engine.follow_to_exit(&id, &mut |l| said.hear(l)).await
        }
        .await;
        engine.remove(&id).await?;
        Ok(Ran {
            code: ran?,
            said: said.0,
        })
    }

    /// Starts it as `name`, runs `command` in it (fed `input`, its output to `stdout`), then
    /// kills and removes it: a holder of volumes, whose entrypoint waits (`sleep`), for a
    /// command whose input and output are streams.
    pub async fn exec_once(
        &self,
        engine: &dyn Engine,
        name: &str,
        command: &[String],
        input: Option<ByteStream>,
        stdout: ByteSink<'_>,
    ) -> Result<Ran, EngineError> {
        let id = self.create(engine, name).await?;
        let mut said = Said::default();
        let ran = async {
            engine.start(&id).await?;
            engine
                .exec_io(&id, command, &[], input, stdout, &mut |l| said.hear(l))
                .await
        }
        .await;
        let _ = engine.kill(&id).await;
        engine.remove(&id).await?;
        Ok(Ran {
            code: ran?,
            said: said.0,
        })
    }

    /// Creates it as `name`. One of that name a killed run left behind is of no use: it is
    /// killed and removed first.
    async fn create(&self, engine: &dyn Engine, name: &str) -> Result<String, EngineError> {
        if let Some(old) = engine.inspect(name).await? {
            let _ = engine.kill(old.id()).await;
            engine.remove(old.id()).await?;
        }
        engine.create_helper(name, self).await
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
