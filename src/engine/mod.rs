//! The container engine, as cutover needs it: a trait, so that plans can be run and recovered
//! against an in-memory engine in unit tests and against the Docker Engine API for real.
//!
//! Every operation that changes a container is idempotent (starting a running container,
//! stopping a stopped one, renaming to the name it already has, removing one that is gone all
//! succeed), because recovery replays undo steps that may or may not have happened.

pub mod claim;
mod container;
pub mod credentials;
mod docker;
pub mod endpoint;
pub mod facts;
#[cfg(test)]
pub mod fake;
mod helper;
mod image;
pub mod podman;
pub mod reference;
pub mod registry;
mod service;
mod ssh;
pub mod successor;

use std::time::Duration;

use async_trait::async_trait;
use bollard::models::{ContainerCreateBody, EndpointSettings};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use indicatif::MultiProgress;

pub use container::{Attachment, Container, Mount};
pub use docker::DockerEngine;
pub use helper::Helper;
pub use image::{Image, Network, OciLabels};
use reference::ImageRef;
pub use service::{Service, ServiceSpec, Task};

/// The label on everything a rehearsal (`cutover rehearse`) makes, whose value is the product's
/// container: what recovery and the in-memory engine know its containers, network and volume by.
pub const REHEARSAL_LABEL: &str = "cutover.rehearsal";

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine at {host}: {message}. {check}")]
    Unreachable {
        host: String,
        message: String,
        /// What to check, for the kind of address.
        check: &'static str,
    },
    #[error("{action}: {message}")]
    Api {
        action: String,
        status: Option<u16>,
        message: String,
    },
    #[error("pulling {image} failed: {message}")]
    Pull { image: String, message: String },
    /// A container's image was removed: its defaults can no longer be told from the settings
    /// made, which a successor or a one-shot of it needs.
    #[error("the image {container} was created from ({image}) is no longer on this host, so its defaults cannot be told from the settings made; pull {reference} again first")]
    ImageGone {
        container: String,
        image: String,
        reference: String,
    },
    /// The engine went away in the middle of a call: dockerd stopped or restarted.
    #[error("{action}: the Docker engine at {host} stopped answering ({message})")]
    Lost {
        host: String,
        action: String,
        message: String,
    },
}

impl EngineError {
    pub fn status(&self) -> Option<u16> {
        match self {
            EngineError::Api { status, .. } => *status,
            _ => None,
        }
    }

    /// The engine itself was gone, rather than refusing: a restart is worth waiting for.
    pub fn is_lost(&self) -> bool {
        matches!(
            self,
            EngineError::Unreachable { .. } | EngineError::Lost { .. }
        )
    }
}

/// Where the lines a container or an exec prints go, as they arrive.
pub type LineSink<'a> = &'a mut (dyn FnMut(&str) + Send);

/// A tar archive as the engine streams it.
pub type TarStream = BoxStream<'static, Result<Bytes, EngineError>>;

/// Bytes sent to the engine: an archive to extract, or a command's standard input.
pub type ByteStream = BoxStream<'static, Result<Bytes, std::io::Error>>;

/// Where a command's standard output goes, as it arrives.
pub type ByteSink<'a> = &'a mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send);

/// The machine an engine runs on, as cutover sees it: where a container's published ports are
/// reached, and whether its own addresses are reachable at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Machine {
    /// This one: the engine's bridges and published ports are here.
    #[default]
    This,
    /// Another host, by the name or address its engine was reached at.
    Remote(String),
}

#[async_trait]
pub trait Engine: Send + Sync {
    /// Where the engine runs; this machine unless it was reached over the network.
    fn machine(&self) -> Machine {
        Machine::This
    }

    /// Whether this machine reaches the containers' own addresses on the engine's networks:
    /// not on another machine, nor for a rootless engine, whose networks live in its user's
    /// own network namespace (only what it publishes is on this machine's loopback).
    fn networks_here(&self) -> bool {
        self.machine() == Machine::This
    }

    /// The engine, when it is not Docker's: Podman's Docker-compatible service, named with its
    /// version, which plans note (its answers are made Docker's, see `podman.rs`).
    fn other_than_docker(&self) -> Option<String> {
        None
    }

    /// Answers once the engine does: how a run knows that a restarted engine is back.
    async fn ping(&self) -> Result<(), EngineError>;

    /// How long one run waits in all for this engine while it does not answer (see
    /// [`endpoint::DEFAULT_WAIT`]).
    fn wait(&self) -> Duration {
        endpoint::DEFAULT_WAIT
    }

    /// The container, or `None` when there is none by that name or id.
    async fn inspect(&self, name_or_id: &str) -> Result<Option<Container>, EngineError>;

    /// The image, or `None` when the engine does not have it.
    async fn image(&self, image: &str) -> Result<Option<Image>, EngineError>;

    /// The names of the running containers, or of every container with `all`.
    async fn container_names(&self, all: bool) -> Result<Vec<String>, EngineError>;

    /// Pulls with the credentials the docker CLI would use; errors inside the stream fail it.
    async fn pull(
        &self,
        image: &ImageRef,
        progress: Option<&MultiProgress>,
    ) -> Result<(), EngineError>;

    /// Creates a container (not started) on its primary network; returns its id.
    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, EngineError>;

    /// Creates (not starts) a container for cutover's own work; returns its id.
    async fn create_helper(&self, name: &str, helper: &Helper) -> Result<String, EngineError> {
        self.create(name, &helper.body()).await
    }

    /// Creates (not starts) a container from a successor's request, connected before it can
    /// start to the networks the create call could not name (engines before API 1.44 take one);
    /// returns its id. One that cannot be connected is removed: it is made whole or not at all.
    async fn create_successor(
        &self,
        name: &str,
        spec: &successor::SuccessorSpec,
    ) -> Result<String, EngineError> {
        let id = self.create(name, &spec.body).await?;
        for (network, endpoint) in &spec.extra_networks {
            if let Err(e) = self.connect(&id, network, endpoint).await {
                // The connect's failure is the one to tell; a removal that fails too leaves a
                // container that recovery and the next run find by its name.
                let _ = self.remove_successor(&id, spec).await;
                return Err(e);
            }
        }
        Ok(id)
    }

    /// Removes a container made from `spec`: with the anonymous volumes its image gave it, unless
    /// it borrows another container's (`--volumes-from`), which are that one's data.
    async fn remove_successor(
        &self,
        id: &str,
        spec: &successor::SuccessorSpec,
    ) -> Result<(), EngineError> {
        match spec.borrows_volumes() {
            true => self.remove(id).await,
            false => self.remove_with_anonymous_volumes(id).await,
        }
    }

    async fn connect(
        &self,
        id: &str,
        network: &str,
        endpoint: &EndpointSettings,
    ) -> Result<(), EngineError>;

    async fn start(&self, id: &str) -> Result<(), EngineError>;

    /// Stops with the container's own stop signal; `None` uses its configured grace period.
    async fn stop(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError>;

    async fn kill(&self, id: &str) -> Result<(), EngineError>;

    async fn rename(&self, id: &str, to: &str) -> Result<(), EngineError>;

    /// Removes the container but never its volumes: data outlives every container cutover
    /// removes.
    async fn remove(&self, id: &str) -> Result<(), EngineError>;

    /// Removes a container cutover created to hold nothing (a claim) with the anonymous volumes
    /// its image's VOLUMEs gave it, which would otherwise pile up; named volumes stay.
    async fn remove_with_anonymous_volumes(&self, id: &str) -> Result<(), EngineError>;

    /// Follows the container's output (stdout and stderr) line by line until it stops, then
    /// returns its exit code.
    async fn follow_to_exit(&self, id: &str, sink: LineSink<'_>) -> Result<i64, EngineError>;

    /// Runs a command inside a running container, without a terminal or stdin, streaming its
    /// output; returns its exit code.
    async fn exec(&self, id: &str, cmd: &[String], sink: LineSink<'_>) -> Result<i64, EngineError>;

    /// Runs a command inside a running container with `env` added, feeding `input` to its
    /// standard input and its standard output, as bytes, to `stdout` (a database dump or
    /// restore); its standard error goes to `stderr` line by line. Returns its exit code.
    async fn exec_io(
        &self,
        id: &str,
        cmd: &[String],
        env: &[String],
        input: Option<ByteStream>,
        stdout: ByteSink<'_>,
        stderr: LineSink<'_>,
    ) -> Result<i64, EngineError>;

    /// A tar archive of `path` in the container, or `None` when the path does not exist.
    async fn archive_get(&self, id: &str, path: &str) -> Result<Option<TarStream>, EngineError>;

    /// The owner (uid, gid) of the file at `path` in a running container, where the engine's
    /// archives do not tell it (Podman's name every file's owner `0:0`, see
    /// [`podman::owner_in`]); `None` where they do, or where it cannot be read.
    async fn owner_of(&self, _id: &str, _path: &str) -> Result<Option<(u64, u64)>, EngineError> {
        Ok(None)
    }

    /// Extracts a tar archive into directory `dir` of the container (created, running or
    /// stopped), as it streams.
    async fn archive_put(&self, id: &str, dir: &str, tar: ByteStream) -> Result<(), EngineError>;

    /// The Swarm service, or `None` when there is none by that name or id, or the engine is no
    /// Swarm manager.
    async fn service(&self, name_or_id: &str) -> Result<Option<Service>, EngineError>;

    /// Every Swarm service of the manager; none when the engine is no Swarm manager.
    async fn services(&self) -> Result<Vec<Service>, EngineError>;

    /// Replaces a service's spec; `version` is the one it was read at, so that a change made
    /// meanwhile by someone else is refused rather than overwritten.
    async fn update_service(
        &self,
        id: &str,
        version: i32,
        spec: ServiceSpec,
    ) -> Result<(), EngineError>;

    /// Creates a service (a one-shot job's); its id.
    async fn create_service(&self, spec: ServiceSpec) -> Result<String, EngineError>;

    /// Removes a service; one already gone is no error.
    async fn remove_service(&self, name_or_id: &str) -> Result<(), EngineError>;

    /// What a service's tasks printed, line by line, so far.
    async fn service_logs(&self, id: &str) -> Result<Vec<String>, EngineError>;

    /// Every task of a service its manager keeps: those it runs, and the history of those it
    /// replaced or that failed.
    async fn service_tasks(&self, id: &str) -> Result<Vec<Task>, EngineError>;
    /// The network and the containers of this engine on it, or `None` when there is none by
    /// that name.
    async fn network(&self, name: &str) -> Result<Option<Network>, EngineError>;

    /// Creates a local bridge network with no route out of it (`internal`), labelled: where a
    /// rehearsal's containers reach only each other.
    async fn create_internal_network(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), EngineError>;

    /// Removes a network cutover made; one already gone is no error.
    async fn remove_network(&self, name: &str) -> Result<(), EngineError>;

    /// Creates a Swarm secret or config holding `data`; its id.
    async fn create_stored(
        &self,
        kind: Stored,
        name: &str,
        data: &[u8],
    ) -> Result<String, EngineError>;

    /// Removes a Swarm secret or config; one already gone is no error.
    async fn remove_stored(&self, kind: Stored, name_or_id: &str) -> Result<(), EngineError>;

    /// The names of the engine's volumes.
    async fn volumes(&self) -> Result<Vec<String>, EngineError>;

    /// Removes a volume cutover made (a database's copy); one already gone is no error.
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError>;
}

/// What Swarm keeps for services to mount as files, and never changes once made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stored {
    Secret,
    Config,
}

impl Stored {
    /// Where a task finds the file a spec mounts at `file`: a secret's relative name under
    /// `/run/secrets`, a config's under `/`.
    pub fn target(self, file: &str) -> String {
        match (self, file.starts_with('/')) {
            (_, true) => file.to_string(),
            (Stored::Secret, false) => format!("/run/secrets/{file}"),
            (Stored::Config, false) => format!("/{file}"),
        }
    }
}

impl std::fmt::Display for Stored {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Stored::Secret => "secret",
            Stored::Config => "config",
        })
    }
}

/// A legacy link as a create call takes it (`target:alias`), from the form inspect reports it
/// in (`/target:/name/alias`).
pub fn create_form_link(link: &str) -> String {
    match link.split_once(':') {
        Some((target, alias)) => {
            let target = target.trim_start_matches('/');
            let alias = alias.rsplit('/').next().unwrap_or(alias);
            format!("{target}:{alias}")
        }
        None => link.trim_start_matches('/').to_string(),
    }
}

/// Bytes already in memory, as a stream to send.
pub fn bytes_stream(bytes: Vec<u8>) -> ByteStream {
    Box::pin(futures_util::stream::once(
        async move { Ok(Bytes::from(bytes)) },
    ))
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

/// The name of an environment entry (`NAME=VALUE`, or a bare `NAME`).
pub fn env_name(entry: &str) -> &str {
    entry.split_once('=').map_or(entry, |(name, _)| name)
}

/// Sets `name` in an environment list, replacing the entry it had.
pub fn put_env(env: &mut Vec<String>, name: &str, value: &str) {
    env.retain(|e| env_name(e) != name);
    env.push(format!("{name}={value}"));
}

/// The containers of a Swarm service's tasks on this engine's node, those running first, then
/// the newest: a running one to read a product's settings from, a stopped one (Swarm keeps
/// them as its task history) to read them again while the service is scaled to 0.
pub async fn service_containers(
    engine: &dyn Engine,
    service: &str,
) -> Result<Vec<Container>, EngineError> {
    let mut found = Vec::new();
    for name in engine.container_names(true).await? {
        if let Some(c) = engine.inspect(&name).await? {
            if c.swarm_service().as_deref() == Some(service) {
                found.push(c);
            }
        }
    }
    found.sort_by_key(|c| {
        (
            std::cmp::Reverse(c.is_running()),
            std::cmp::Reverse(c.created().to_string()),
        )
    });
    Ok(found)
}

/// A Swarm service as a container of it would be: its name, the image its spec names, that
/// image's environment under the spec's, and its labels. What a product's settings are read
/// from while no task of it runs.
pub async fn service_as_container(
    engine: &dyn Engine,
    service: &Service,
) -> Result<Container, EngineError> {
    let container = service.task_container();
    let image = container.image.clone().unwrap_or_default();
    let mut env = engine
        .image(&image)
        .await?
        .map(|i| i.env())
        .unwrap_or_default();
    for given in container.env.unwrap_or_default() {
        let (name, value) = given.split_once('=').unwrap_or((&given, ""));
        put_env(&mut env, name, value);
    }
    Ok(bollard::models::ContainerInspectResponse {
        name: Some(service.name().to_string()),
        config: Some(bollard::models::ContainerConfig {
            image: Some(image),
            env: Some(env),
            labels: container.labels,
            ..Default::default()
        }),
        ..Default::default()
    }
    .into())
}

/// The container as this machine reaches it, for a probe of its ports. A Swarm task's overlay
/// addresses are routed by no bridge of this host (they would leave by its default route), but
/// every such task also has an address on the node's `docker_gwbridge`: that one stands for its
/// networks.
pub async fn inspect_reached(engine: &dyn Engine, id: &str) -> Result<Container, EngineError> {
    let mut c = inspect_required(engine, id).await?;
    if c.swarm_service().is_none() || engine.machine() != Machine::This {
        return Ok(c);
    }
    let id = c.id().to_string();
    let gateway = engine
        .network("docker_gwbridge")
        .await?
        .and_then(|n| n.address_of(&id));
    if let Some(settings) = c.0.network_settings.as_mut() {
        settings.networks = Some(
            gateway
                .map(|ip| {
                    let endpoint = bollard::models::EndpointSettings {
                        ip_address: Some(ip),
                        ..Default::default()
                    };
                    [("docker_gwbridge".to_string(), endpoint)].into()
                })
                .unwrap_or_default(),
        );
    }
    Ok(c)
}

/// Why a Swarm task is not moved on its own.
pub fn swarm_refusal(name: &str, service: &str) -> String {
    format!(
        "{name} is a task of the Swarm service {service}: Swarm replaces its containers itself and would undo a change to one of them: upgrade the service (`cutover upgrade {service}`)"
    )
}

/// The container, or an error naming it: for steps that act on a container they know exists.
pub async fn inspect_required(
    engine: &dyn Engine,
    name_or_id: &str,
) -> Result<Container, EngineError> {
    engine
        .inspect(name_or_id)
        .await?
        .ok_or_else(|| EngineError::Api {
            action: format!("inspecting {}", short(name_or_id)),
            status: Some(404),
            message: "no such container".into(),
        })
}

/// What a successor of a container is built from besides the container itself, as the engine
/// knows it now.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The configuration of the image the container was created from, which tells its defaults
    /// from the settings made.
    pub(crate) image: bollard::models::ImageConfig,
    /// `--volumes-from` entries that name containers that no longer exist (typically a
    /// predecessor an earlier upgrade removed): the volumes they lent are already mounted in the
    /// container and reach its successor through it.
    pub vanished_volumes_from: Vec<String>,
}

/// Everything a successor of `c` is built from besides `c`; an error when its image is gone.
pub async fn origin(engine: &dyn Engine, c: &Container) -> Result<Origin, EngineError> {
    let image_id = c.image_id().to_string();
    let image = engine
        .image(&image_id)
        .await?
        .and_then(|i| i.config())
        .ok_or_else(|| EngineError::ImageGone {
            container: c.name().to_string(),
            image: short(&image_id).to_string(),
            reference: c.image().to_string(),
        })?;
    let mut vanished_volumes_from = Vec::new();
    for entry in c.volumes_from() {
        let source = entry.split(':').next().unwrap_or_default().to_string();
        if engine.inspect(&source).await?.is_none() {
            vanished_volumes_from.push(source);
        }
    }
    Ok(Origin {
        image,
        vanished_volumes_from,
    })
}

#[cfg(test)]
mod tests {
    use super::fake::{Behaviour, FakeEngine};
    use super::*;

    #[tokio::test]
    async fn a_container_whose_image_is_gone_has_no_origin_and_says_what_to_pull() {
        let engine = FakeEngine::default();
        engine.publish("demo:1", Behaviour::Healthy, &["A=1"]);
        let id = engine.run("app", "demo:1", &[], &[]);
        let app = inspect_required(&engine, &id).await.unwrap();
        assert_eq!(
            origin(&engine, &app).await.unwrap().image.env,
            Some(vec!["A=1".into()])
        );
        engine.remove_image("demo:1");
        let e = origin(&engine, &app).await.err().unwrap().to_string();
        assert!(
            e.starts_with("the image app was created from (demo:1) is no longer on this host")
                && e.ends_with("pull demo:1 again first"),
            "{e}"
        );
    }
}
