//! The Docker Engine API, as cutover needs it.
//!
//! Every operation that changes a container is idempotent (starting a running container,
//! stopping a stopped one, renaming to the name it already has, removing one that is gone all
//! succeed), because recovery replays undo steps that may or may not have happened.

use std::collections::HashMap;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ImageConfig, ImageInspect, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, RemoveContainerOptions, RenameContainerOptions,
    StopContainerOptions,
};
use bollard::Docker;
use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use crate::recreate::SuccessorSpec;
use crate::reference::ImageRef;
use crate::secrets;

/// The engine's own default grace period for `docker stop`.
const DEFAULT_STOP_TIMEOUT_SECS: i64 = 10;
/// Room for the engine to answer after a stop's grace period ran out and it killed the process.
const STOP_REQUEST_SLACK: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot reach the Docker engine ({host}): {message}. Is dockerd running, and does DOCKER_HOST point at it?")]
    Unreachable { host: String, message: String },
    #[error("{action}: {message}")]
    Api { action: String, status: Option<u16>, message: String },
    #[error("pulling {image} failed: {message}")]
    Pull { image: String, message: String },
}

impl EngineError {
    fn api(action: impl Into<String>, e: BollardError) -> EngineError {
        let status = match &e {
            BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
            _ => None,
        };
        let message = match e {
            BollardError::DockerResponseServerError { message, .. } => message,
            other => other.to_string(),
        };
        EngineError::Api { action: action.into(), status, message: secrets::redact(&message) }
    }
}

fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

impl Engine {
    /// Connects the way the docker CLI does (`DOCKER_HOST`, `DOCKER_TLS_VERIFY`,
    /// `DOCKER_CERT_PATH`) and settles on an API version both sides speak.
    pub async fn connect() -> Result<Engine, EngineError> {
        let host = std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
        let unreachable = |e: BollardError| EngineError::Unreachable { host: host.clone(), message: e.to_string() };
        let docker = Docker::connect_with_defaults().map_err(unreachable)?;
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        Ok(Engine { docker })
    }

    /// The container, or `None` when there is none by that name or id.
    pub async fn inspect(&self, name_or_id: &str) -> Result<Option<ContainerInspectResponse>, EngineError> {
        match self.docker.inspect_container(name_or_id, None).await {
            Ok(c) => Ok(Some(c)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting {name_or_id}"), e)),
        }
    }

    pub async fn inspect_required(&self, name_or_id: &str) -> Result<ContainerInspectResponse, EngineError> {
        self.inspect(name_or_id).await?.ok_or_else(|| EngineError::Api {
            action: format!("inspecting {name_or_id}"),
            status: Some(404),
            message: "no such container".into(),
        })
    }

    /// The image, or `None` when the engine no longer has it.
    pub async fn image(&self, image: &str) -> Result<Option<ImageInspect>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(i)),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(EngineError::api(format!("inspecting image {image}"), e)),
        }
    }

    /// The image's configuration, or `None` when the engine no longer has the image.
    pub async fn image_config(&self, image: &str) -> Result<Option<ImageConfig>, EngineError> {
        Ok(self.image(image).await?.map(|i| i.config.unwrap_or_default()))
    }

    /// The names of the running containers.
    pub async fn running_names(&self) -> Result<Vec<String>, EngineError> {
        let list = self
            .docker
            .list_containers(None::<bollard::query_parameters::ListContainersOptions>)
            .await
            .map_err(|e| EngineError::api("listing containers", e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| c.names.and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string())))
            .collect())
    }

    /// Pulls with the credentials the docker CLI would use, drawing one progress bar per layer
    /// when `progress` is given. Errors that arrive inside the stream fail the pull.
    pub async fn pull(&self, image: &ImageRef, progress: Option<&MultiProgress>) -> Result<(), EngineError> {
        let credentials = crate::credentials::for_pull(image.auth_key()).await;
        let options = CreateImageOptions {
            from_image: Some(image.repository.clone()),
            tag: Some(image.tag_or_digest()),
            ..Default::default()
        };
        let failed = |message: String| EngineError::Pull { image: image.to_string(), message: secrets::redact(&message) };
        let mut bars: HashMap<String, ProgressBar> = HashMap::new();
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                BollardError::DockerResponseServerError { message, .. } => failed(message),
                BollardError::DockerStreamError { error } => failed(error),
                other => failed(other.to_string()),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(failed(detail.message.unwrap_or_else(|| "the engine reported an error".into())));
            }
            if let (Some(multi), Some(id)) = (progress, info.id) {
                let bar = bars.entry(id.clone()).or_insert_with(|| {
                    let bar = multi.add(ProgressBar::new(0));
                    bar.set_style(layer_style(false));
                    bar.set_prefix(id);
                    bar
                });
                let detail = info.progress_detail.unwrap_or_default();
                if let Some(total) = detail.total.filter(|t| *t > 0) {
                    if bar.length() == Some(0) {
                        bar.set_style(layer_style(true));
                    }
                    bar.set_length(total as u64);
                    bar.set_position(detail.current.unwrap_or(0).max(0) as u64);
                }
                bar.set_message(info.status.unwrap_or_default());
            }
        }
        for bar in bars.values() {
            bar.finish();
        }
        Ok(())
    }

    /// Creates the container (not started) on its primary network.
    pub async fn create(&self, name: &str, spec: &SuccessorSpec) -> Result<String, EngineError> {
        let options = CreateContainerOptions { name: Some(name.to_string()), ..Default::default() };
        let created = self
            .docker
            .create_container(Some(options), spec.body.clone())
            .await
            .map_err(|e| EngineError::api(format!("creating {name}"), e))?;
        Ok(created.id)
    }

    /// Connects the container's other networks before it ever starts: engines older than API
    /// 1.44 take only one network in the create call.
    pub async fn connect_networks(&self, id: &str, name: &str, spec: &SuccessorSpec) -> Result<(), EngineError> {
        for (network, endpoint) in &spec.extra_networks {
            let request = NetworkConnectRequest { container: id.to_string(), endpoint_config: Some(endpoint.clone()) };
            self.docker
                .connect_network(network, request)
                .await
                .map_err(|e| EngineError::api(format!("connecting {name} to network {network}"), e))?;
        }
        Ok(())
    }

    pub async fn start(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(EngineError::api(format!("starting {}", short(id)), e)),
        }
    }

    /// Stops with the container's own stop signal; `timeout_secs` `None` lets the engine use
    /// the container's configured grace period.
    pub async fn stop(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        let grace = timeout_secs.unwrap_or(DEFAULT_STOP_TIMEOUT_SECS).max(0) as u64;
        // bollard's request timeout covers the whole call: a long grace period needs a longer one.
        let docker = self.docker.clone().with_timeout(Duration::from_secs(grace) + STOP_REQUEST_SLACK);
        let options = timeout_secs.map(|t| StopContainerOptions { t: Some(t as i32), signal: None });
        match docker.stop_container(id, options).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(EngineError::api(format!("stopping {}", short(id)), e)),
        }
    }

    pub async fn rename(&self, id: &str, to: &str) -> Result<(), EngineError> {
        let current = self.inspect_required(id).await?;
        if current.name.as_deref().map(|n| n.trim_start_matches('/')) == Some(to) {
            return Ok(());
        }
        self.docker
            .rename_container(id, RenameContainerOptions { name: to.to_string() })
            .await
            .map_err(|e| EngineError::api(format!("renaming {} to {to}", short(id)), e))
    }

    /// Removes the container but never its volumes: data outlives every container cutover
    /// removes.
    pub async fn remove(&self, id: &str) -> Result<(), EngineError> {
        let options = RemoveContainerOptions { force: true, v: false, link: false };
        match self.docker.remove_container(id, Some(options)).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(EngineError::api(format!("removing {}", short(id)), e)),
        }
    }
}

pub fn short(id: &str) -> &str {
    &id[..id.len().min(12)]
}

pub fn is_running(c: &ContainerInspectResponse) -> bool {
    c.state.as_ref().and_then(|s| s.running).unwrap_or(false)
}

pub fn name_of(c: &ContainerInspectResponse) -> String {
    c.name.as_deref().unwrap_or_default().trim_start_matches('/').to_string()
}

/// A layer's line: its status alone until the engine says how big it is, then a bar.
fn layer_style(sized: bool) -> ProgressStyle {
    let template = if sized { "{prefix:.dim} {msg:<12} {bar:30} {bytes}/{total_bytes}" } else { "{prefix:.dim} {msg}" };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}
