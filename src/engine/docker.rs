//! The Docker Engine API through bollard.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::exec::{CreateExecOptions, StartExecResults};
use bollard::models::{ContainerCreateBody, EndpointSettings, NetworkConnectRequest};
use bollard::query_parameters::{
    CreateContainerOptions, CreateImageOptions, DownloadFromContainerOptions, KillContainerOptions,
    ListTasksOptionsBuilder, LogsOptions, RemoveContainerOptions, RenameContainerOptions,
    StopContainerOptions, UpdateServiceOptions, UploadToContainerOptions, WaitContainerOptions,
};
use bollard::Docker;
use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::endpoint::Endpoint;
use super::reference::ImageRef;
use super::ssh;
use super::{
    short, ByteSink, ByteStream, Engine, EngineError, LineSink, Machine, Stored, TarStream,
};
use super::{Container, Image, Network, Service, ServiceSpec, Task};
use crate::secrets;

/// The engine's own default grace period for `docker stop`.
const DEFAULT_STOP_TIMEOUT_SECS: i64 = 10;
/// Room for the engine to answer after a stop's grace period ran out and it killed the process.
const STOP_REQUEST_SLACK: Duration = Duration::from_secs(60);
/// Following output and waiting for an exit last as long as the command runs: the caller bounds
/// them with its own timeout, so bollard's per-request one (120 s) must not cut them short.
const UNBOUNDED: Duration = Duration::from_secs(60 * 60 * 24 * 365);
/// bollard's own per-request timeout, for requests that are not bounded by their caller.
const REQUEST_TIMEOUT_SECS: u64 = 120;

fn api_error(host: &str, action: impl Into<String>, e: BollardError) -> EngineError {
    // A failure to connect or a connection cut mid-answer: no engine answered at all.
    if matches!(
        e,
        BollardError::IOError { .. }
            | BollardError::HyperResponseError { .. }
            | BollardError::HyperLegacyError { .. }
            | BollardError::SocketNotFoundError(_)
    ) {
        return EngineError::Lost {
            host: host.to_string(),
            action: action.into(),
            message: secrets::redact(&e.to_string()),
        };
    }
    let status = status_of(&e);
    let message = match e {
        BollardError::DockerResponseServerError { message, .. } => message,
        other => other.to_string(),
    };
    EngineError::Api {
        action: action.into(),
        status,
        message: secrets::redact(&message),
    }
}

fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

#[derive(Clone)]
pub struct DockerEngine {
    docker: Docker,
    machine: Machine,
    /// The address it was reached at, as errors name it.
    host: String,
    wait: Duration,
    /// Podman's Docker-compatible service answers it (its `/version` says so): its answers
    /// are made Docker's (see [`super::podman`]).
    podman: bool,
    /// What `/version` named: `Podman Engine 4.3.1`.
    product: String,
    /// See [`Engine::networks_here`]: false for another machine's engine and a rootless one.
    networks_here: bool,
    /// The ssh process that forwards the engine's socket on another host, for as long as the
    /// engine is used.
    _forward: Option<Arc<ssh::Forward>>,
}

impl DockerEngine {
    /// Connects to the engine the docker CLI would (see [`endpoint`](super::endpoint)) and
    /// settles on an API version both sides speak; an engine that does not answer is named, with
    /// what to check for its kind of address.
    pub async fn connect(endpoint: &Endpoint) -> Result<DockerEngine, EngineError> {
        let host = match &endpoint.context {
            Some(name) => format!("{} of the docker context {name}", endpoint.host),
            None => endpoint.host.clone(),
        };
        let unreachable = |message: String| EngineError::Unreachable {
            host: host.clone(),
            message: secrets::redact(&message),
            check: check_for(endpoint),
        };
        let (docker, said, forward) = open(endpoint).await.map_err(unreachable)?;
        let answered = async {
            let docker = docker.negotiate_version().await?;
            docker.ping().await?;
            let version = docker.version().await?;
            Ok::<_, BollardError>((docker, version))
        };
        match answered.await {
            Ok((docker, version)) => Ok(DockerEngine {
                docker,
                machine: endpoint.machine(),
                host,
                wait: endpoint.wait,
                podman: super::podman::is_podman(&version),
                product: super::podman::product(&version),
                networks_here: endpoint.machine() == Machine::This && !endpoint.rootless(),
                _forward: forward,
            }),
            Err(e) => {
                let mut message = crate::causes::error_text(&e);
                if let Some(said) = said {
                    message = said.with_words(message).await;
                }
                Err(unreachable(
                    message.trim_end_matches(['.', '\n', ' ']).to_string(),
                ))
            }
        }
    }

    /// Removes a container, gone or not; `anonymous_volumes` removes the volumes only it had.
    async fn remove_container(&self, id: &str, anonymous_volumes: bool) -> Result<(), EngineError> {
        let options = RemoveContainerOptions {
            force: true,
            v: anonymous_volumes,
            link: false,
        };
        let removed = self
            .past_transient(|| self.docker.remove_container(id, Some(options.clone())))
            .await;
        match removed {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(&self.host, format!("removing {}", short(id)), e)),
        }
    }

    /// `request`'s answer, asked again while Podman answers it in a transient state (see
    /// [`super::podman::TRANSIENT_FOR`]); Docker's as it comes.
    async fn past_transient<T, F, Fut>(&self, request: F) -> Result<T, BollardError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, BollardError>>,
    {
        self.past(super::podman::transient_state, request).await
    }

    /// A request asked again on Podman while its error is one `passing` says will pass.
    async fn past<T, F, Fut>(
        &self,
        passing: fn(&str) -> bool,
        request: F,
    ) -> Result<T, BollardError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, BollardError>>,
    {
        let mut answer = request().await;
        let mut waited = Duration::ZERO;
        while self.podman && waited < super::podman::TRANSIENT_FOR {
            match &answer {
                Err(e) if passing(&e.to_string()) => {
                    tokio::time::sleep(super::podman::TRANSIENT_POLL).await;
                    waited += super::podman::TRANSIENT_POLL;
                    answer = request().await;
                }
                _ => break,
            }
        }
        answer
    }

    /// One stop request, with the grace period given (the container's own without one).
    async fn stop_once(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        let grace = timeout_secs.unwrap_or(DEFAULT_STOP_TIMEOUT_SECS).max(0) as u64;
        // bollard's request timeout covers the whole call: a long grace period needs a longer one.
        let docker = self
            .docker
            .clone()
            .with_timeout(Duration::from_secs(grace) + STOP_REQUEST_SLACK);
        // Without one, Docker stops with the container's own grace period or 10 s; Podman with
        // the container's own, which its compatible API records as 0 when none was given (see
        // `podman::as_docker`): it is given Docker's default.
        let timeout_secs = match self.podman {
            true => Some(grace as i64),
            false => timeout_secs,
        };
        let options = timeout_secs.map(|t| StopContainerOptions {
            t: Some(t as i32),
            signal: None,
        });
        match docker.stop_container(id, options).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(api_error(&self.host, format!("stopping {}", short(id)), e)),
        }
    }

    /// Podman answers a stop that meets a container between two runs of its restart policy (in
    /// its transient `stopped` state) as done, then restarts it: stopped again until it stays
    /// so, for at most [`super::podman::TRANSIENT_FOR`].
    async fn stays_stopped(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        let mut waited = Duration::ZERO;
        while waited < super::podman::TRANSIENT_FOR {
            let Some(c) = self.inspect(id).await? else {
                return Ok(());
            };
            if !c.is_running() && !c.is_restarting() {
                return Ok(());
            }
            self.stop_once(id, timeout_secs).await?;
            tokio::time::sleep(super::podman::TRANSIENT_POLL).await;
            waited += super::podman::TRANSIENT_POLL;
        }
        Err(EngineError::Api {
            action: format!("stopping {}", short(id)),
            status: None,
            message: "Podman restarted it by its restart policy each time it was stopped".into(),
        })
    }

    fn unbounded(&self) -> Docker {
        self.docker.clone().with_timeout(UNBOUNDED)
    }
}

/// Where an ssh transport keeps what ssh last said on its standard error.
type SshSaid = Arc<ssh::Said>;

/// A client, what ssh says when it carries it, and the forwarding that must outlive it.
type Opened = (Docker, Option<SshSaid>, Option<Arc<ssh::Forward>>);

/// A client for the endpoint's kind of address, what ssh says when one carries it, and the
/// forwarding of a socket on another host.
async fn open(endpoint: &Endpoint) -> Result<Opened, String> {
    let host = endpoint.host.as_str();
    if let Some(destination) = host
        .starts_with("ssh://")
        .then(|| ssh::Destination::parse(host))
        .transpose()?
        .filter(|d| d.socket.is_some())
    {
        let said = SshSaid::default();
        let forward = match ssh::Forward::open(&destination, said.clone()).await {
            Ok(forward) => forward,
            Err(why) => return Err(said.with_words(why).await),
        };
        let docker = Docker::connect_with_unix(
            &forward.local(),
            REQUEST_TIMEOUT_SECS,
            bollard::API_DEFAULT_VERSION,
        )
        .map_err(|e| e.to_string())?;
        return Ok((docker, Some(said), Some(Arc::new(forward))));
    }
    let version = bollard::API_DEFAULT_VERSION;
    let docker = match (host.split("://").next().unwrap_or_default(), &endpoint.tls) {
        ("unix", _) => Docker::connect_with_unix(host, REQUEST_TIMEOUT_SECS, version),
        ("tcp" | "https", Some(tls)) => Docker::connect_with_ssl(
            host,
            &tls.key,
            &tls.cert,
            &tls.ca,
            REQUEST_TIMEOUT_SECS,
            version,
        ),
        ("tcp" | "http", None) => Docker::connect_with_http(host, REQUEST_TIMEOUT_SECS, version),
        ("ssh", _) => {
            let connector = ssh::Connector::new(ssh::Destination::parse(host)?);
            let said = connector.said.clone();
            let client = hyper_util::client::legacy::Client::builder(
                hyper_util::rt::TokioExecutor::new(),
            )
            .build(connector);
            let transport = move |request: bollard::BollardRequest| {
                let client = client.clone();
                async move { client.request(request).await.map_err(BollardError::from) }
            };
            return Docker::connect_with_custom_transport(
                transport,
                Some(host),
                REQUEST_TIMEOUT_SECS,
                version,
            )
            .map(|docker| (docker, Some(said), None))
            .map_err(|e| e.to_string());
        }
        _ => {
            return Err(format!(
                "cutover reaches an engine at unix://, tcp:// (with TLS when the context or DOCKER_TLS_VERIFY says so) or ssh://, not {host}"
            ))
        }
    };
    docker.map(|d| (d, None, None)).map_err(|e| e.to_string())
}

/// What to check when the engine at `endpoint` does not answer.
fn check_for(endpoint: &Endpoint) -> &'static str {
    match (endpoint.host.split("://").next().unwrap_or_default(), &endpoint.tls) {
        ("ssh", _) if ssh::Destination::parse(&endpoint.host).is_ok_and(|d| d.socket.is_some()) => "Does `ssh` reach that host without a prompt (a key the host accepts, a host key already known), may that user forward a socket (sshd's AllowStreamLocalForwarding), and does the engine's service listen at that path for that user (`systemctl enable --now podman.socket`)?",
        ("ssh", _) => "Does `ssh` reach that host without a prompt (a key the host accepts, a host key already known), and does `docker` run there for that user?",
        ("tcp" | "http" | "https", Some(_)) => "Does dockerd listen there, and were its certificate and the client's signed by the authority in ca.pem?",
        ("tcp" | "http" | "https", None) => "Does dockerd listen there without TLS? For TLS, set DOCKER_TLS_VERIFY=1 and DOCKER_CERT_PATH, or use a docker context that has the certificates.",
        _ => "Is dockerd running, and does DOCKER_HOST (or --host, --context, CONTAINER_HOST) point at it?",
    }
}

#[async_trait]
impl Engine for DockerEngine {
    fn other_than_docker(&self) -> Option<String> {
        self.podman.then(|| self.product.clone())
    }

    fn machine(&self) -> Machine {
        self.machine.clone()
    }

    fn networks_here(&self) -> bool {
        self.networks_here
    }

    fn wait(&self) -> Duration {
        self.wait
    }

    async fn ping(&self) -> Result<(), EngineError> {
        self.docker
            .ping()
            .await
            .map(drop)
            .map_err(|e| api_error(&self.host, "asking the engine whether it answers", e))
    }

    async fn inspect(&self, name_or_id: &str) -> Result<Option<Container>, EngineError> {
        let inspected = self
            .past_transient(|| self.docker.inspect_container(name_or_id, None))
            .await;
        match inspected {
            Ok(c) if self.podman => Ok(Some(super::podman::as_docker(c).into())),
            Ok(c) => Ok(Some(c.into())),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) if self.podman && super::podman::removed_meanwhile(&e.to_string()) => Ok(None),
            Err(e) => Err(api_error(&self.host, format!("inspecting {name_or_id}"), e)),
        }
    }

    async fn image(&self, image: &str) -> Result<Option<Image>, EngineError> {
        match self.docker.inspect_image(image).await {
            Ok(i) => Ok(Some(Image(i))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(api_error(
                &self.host,
                format!("inspecting image {image}"),
                e,
            )),
        }
    }

    async fn container_names(&self, all: bool) -> Result<Vec<String>, EngineError> {
        let options = bollard::query_parameters::ListContainersOptionsBuilder::default()
            .all(all)
            .build();
        // One container between its exit and its restart on Podman (`stopped`), or one being
        // removed, fails the whole list's reading: asked again, as for one container.
        let passing =
            |e: &str| super::podman::transient_state(e) || super::podman::removed_meanwhile(e);
        let list = self
            .past(passing, || {
                self.docker.list_containers(Some(options.clone()))
            })
            .await
            .map_err(|e| api_error(&self.host, "listing containers", e))?;
        Ok(list
            .into_iter()
            .filter_map(|c| {
                c.names
                    .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
            })
            .collect())
    }

    /// One progress bar per layer when `progress` is given.
    async fn pull(
        &self,
        image: &ImageRef,
        progress: Option<&MultiProgress>,
    ) -> Result<(), EngineError> {
        // Podman's own builds have no registry: the one on its host is used as it is.
        if self.podman && super::podman::is_built_here(image) {
            return match self.image(&image.to_string()).await? {
                Some(_) => Ok(()),
                None => Err(EngineError::Pull {
                    image: image.to_string(),
                    message: super::podman::not_built_here(image),
                }),
            };
        }
        let credentials =
            super::credentials::for_pull(image, super::credentials::Logins::of(self)).await;
        let options = CreateImageOptions {
            from_image: Some(image.repository.clone()),
            tag: Some(image.tag_or_digest()),
            ..Default::default()
        };
        let failed = |message: String| EngineError::Pull {
            image: image.to_string(),
            message: secrets::redact(&message),
        };
        let mut bars: HashMap<String, ProgressBar> = HashMap::new();
        let mut stream = self.docker.create_image(Some(options), None, credentials);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| match e {
                BollardError::DockerResponseServerError { message, .. } => failed(message),
                BollardError::DockerStreamError { error } => failed(error),
                other => failed(other.to_string()),
            })?;
            if let Some(detail) = info.error_detail {
                return Err(failed(
                    detail
                        .message
                        .unwrap_or_else(|| "the engine reported an error".into()),
                ));
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

    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, EngineError> {
        let options = CreateContainerOptions {
            name: Some(name.to_string()),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(Some(options), body.clone())
            .await
            .map_err(|e| api_error(&self.host, format!("creating {name}"), e))?;
        Ok(created.id)
    }

    async fn connect(
        &self,
        id: &str,
        network: &str,
        endpoint: &EndpointSettings,
    ) -> Result<(), EngineError> {
        let request = NetworkConnectRequest {
            container: id.to_string(),
            endpoint_config: Some(endpoint.clone()),
        };
        self.docker
            .connect_network(network, request)
            .await
            .map_err(|e| {
                api_error(
                    &self.host,
                    format!("connecting {} to network {network}", short(id)),
                    e,
                )
            })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        match self.docker.start_container(id, None).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(304) => Ok(()),
            Err(e) => Err(api_error(&self.host, format!("starting {}", short(id)), e)),
        }
    }

    async fn stop(&self, id: &str, timeout_secs: Option<i64>) -> Result<(), EngineError> {
        self.stop_once(id, timeout_secs).await?;
        if self.podman {
            self.stays_stopped(id, timeout_secs).await?;
        }
        Ok(())
    }

    async fn kill(&self, id: &str) -> Result<(), EngineError> {
        match self
            .docker
            .kill_container(id, Some(KillContainerOptions::default()))
            .await
        {
            Ok(()) => Ok(()),
            // Not running (409) or gone (404): either way it no longer runs.
            Err(e) if matches!(status_of(&e), Some(404 | 409)) => Ok(()),
            Err(e) => Err(api_error(&self.host, format!("killing {}", short(id)), e)),
        }
    }

    async fn rename(&self, id: &str, to: &str) -> Result<(), EngineError> {
        let current = super::inspect_required(self, id).await?;
        if current.name() == to {
            return Ok(());
        }
        self.docker
            .rename_container(
                id,
                RenameContainerOptions {
                    name: to.to_string(),
                },
            )
            .await
            .map_err(|e| api_error(&self.host, format!("renaming {} to {to}", short(id)), e))
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.remove_container(id, false).await
    }

    async fn remove_with_anonymous_volumes(&self, id: &str) -> Result<(), EngineError> {
        self.remove_container(id, true).await
    }

    async fn follow_to_exit(&self, id: &str, sink: LineSink<'_>) -> Result<i64, EngineError> {
        let docker = self.unbounded();
        let options = LogsOptions {
            follow: true,
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut logs = docker.logs(id, Some(options));
        let mut lines = Lines::default();
        while let Some(frame) = logs.next().await {
            let frame = frame.map_err(|e| {
                api_error(
                    &self.host,
                    format!("reading the output of {}", short(id)),
                    e,
                )
            })?;
            lines.feed(frame.as_ref(), sink);
        }
        lines.finish(sink);
        let options = WaitContainerOptions {
            condition: "not-running".into(),
        };
        let mut wait = docker.wait_container(id, Some(options));
        match wait.next().await {
            Some(Ok(r)) => Ok(r.status_code),
            Some(Err(BollardError::DockerContainerWaitError { code, .. })) => Ok(code),
            Some(Err(e)) => Err(api_error(
                &self.host,
                format!("waiting for {}", short(id)),
                e,
            )),
            None => Err(EngineError::Api {
                action: format!("waiting for {}", short(id)),
                status: None,
                message: "the engine closed the wait without an exit code".into(),
            }),
        }
    }

    async fn exec(&self, id: &str, cmd: &[String], sink: LineSink<'_>) -> Result<i64, EngineError> {
        let mut lines = Lines::default();
        let code = self
            .run_exec(id, cmd, &[], None, &mut |frame| {
                lines.feed(frame.as_ref(), sink);
                Ok(())
            })
            .await?;
        lines.finish(sink);
        Ok(code)
    }

    async fn exec_io(
        &self,
        id: &str,
        cmd: &[String],
        env: &[String],
        input: Option<ByteStream>,
        stdout: ByteSink<'_>,
        stderr: LineSink<'_>,
    ) -> Result<i64, EngineError> {
        let mut lines = Lines::default();
        let code = self
            .run_exec(id, cmd, env, input, &mut |frame| match frame {
                LogOutput::StdOut { message } => stdout(&message),
                other => {
                    lines.feed(other.as_ref(), stderr);
                    Ok(())
                }
            })
            .await?;
        lines.finish(stderr);
        Ok(code)
    }

    async fn archive_get(&self, id: &str, path: &str) -> Result<Option<TarStream>, EngineError> {
        let options = DownloadFromContainerOptions {
            path: path.to_string(),
        };
        let mut stream = self
            .unbounded()
            .download_from_container(id, Some(options))
            .boxed();
        let action = format!("copying {path} out of {}", short(id));
        // The engine answers 404 before the first byte when the path does not exist.
        let first = match stream.next().await {
            None => Bytes::new(),
            Some(Ok(bytes)) => bytes,
            Some(Err(e)) if status_of(&e) == Some(404) => return Ok(None),
            Some(Err(e)) => return Err(api_error(&self.host, action, e)),
        };
        let host = self.host.clone();
        let rest = stream.map(move |item| item.map_err(|e| api_error(&host, action.clone(), e)));
        Ok(Some(
            futures_util::stream::once(async move { Ok(first) })
                .chain(rest)
                .boxed(),
        ))
    }

    async fn owner_of(&self, id: &str, path: &str) -> Result<Option<(u64, u64)>, EngineError> {
        if !self.podman {
            return Ok(None);
        }
        for command in super::podman::owner_commands(path) {
            let mut printed = String::new();
            let ran = self
                .exec(id, &command, &mut |line| {
                    printed.push_str(line);
                    printed.push('\n');
                })
                .await;
            // A container that is not running, or an image without the command: the next.
            if let (Ok(0), Some(owner)) = (ran, super::podman::owner_in(&printed)) {
                return Ok(Some(owner));
            }
        }
        Ok(None)
    }

    async fn archive_put(&self, id: &str, dir: &str, tar: ByteStream) -> Result<(), EngineError> {
        let options = UploadToContainerOptions {
            path: dir.to_string(),
            ..Default::default()
        };
        self.unbounded()
            .upload_to_container(id, Some(options), bollard::body_try_stream(tar))
            .await
            .map_err(|e| api_error(&self.host, format!("copying into {}:{dir}", short(id)), e))
    }

    async fn service(&self, name_or_id: &str) -> Result<Option<Service>, EngineError> {
        match self.docker.inspect_service(name_or_id, None).await {
            Ok(s) => Ok(Some(s.into())),
            // 503: this engine is no Swarm manager, so it has no services to upgrade.
            Err(e) if matches!(status_of(&e), Some(404 | 503)) => Ok(None),
            Err(e) => Err(api_error(
                &self.host,
                format!("inspecting the service {name_or_id}"),
                e,
            )),
        }
    }

    async fn services(&self) -> Result<Vec<Service>, EngineError> {
        match self.docker.list_services(None).await {
            Ok(services) => Ok(services.into_iter().map(Service::from).collect()),
            // 503: this engine is no Swarm manager; 404: it has no Swarm at all (Podman).
            Err(e) if matches!(status_of(&e), Some(404 | 503)) => Ok(Vec::new()),
            Err(e) => Err(api_error(&self.host, "listing the services", e)),
        }
    }

    async fn update_service(
        &self,
        id: &str,
        version: i32,
        spec: ServiceSpec,
    ) -> Result<(), EngineError> {
        let options = UpdateServiceOptions {
            version,
            ..Default::default()
        };
        let credentials = registry_auth(&spec).await;
        self.docker
            .update_service(id, spec.0, options, credentials)
            .await
            .map(drop)
            .map_err(|e| api_error(&self.host, format!("updating the service {id}"), e))
    }

    async fn create_service(&self, spec: ServiceSpec) -> Result<String, EngineError> {
        let credentials = registry_auth(&spec).await;
        let name = spec.0.name.clone().unwrap_or_default();
        self.docker
            .create_service(spec.0, credentials)
            .await
            .map(|created| created.id.unwrap_or_default())
            .map_err(|e| api_error(&self.host, format!("creating the service {name}"), e))
    }

    async fn remove_service(&self, name_or_id: &str) -> Result<(), EngineError> {
        match self.docker.delete_service(name_or_id).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(
                &self.host,
                format!("removing the service {name_or_id}"),
                e,
            )),
        }
    }

    async fn service_logs(&self, id: &str) -> Result<Vec<String>, EngineError> {
        let options = LogsOptions {
            stdout: true,
            stderr: true,
            ..Default::default()
        };
        let mut stream = self.docker.service_logs(id, Some(options));
        let mut text = String::new();
        while let Some(frame) = stream.next().await {
            let frame =
                frame.map_err(|e| api_error(&self.host, format!("reading the logs of {id}"), e))?;
            text.push_str(&String::from_utf8_lossy(&frame.into_bytes()));
        }
        Ok(text.lines().map(str::to_string).collect())
    }

    async fn service_tasks(&self, id: &str) -> Result<Vec<Task>, EngineError> {
        let filters = HashMap::from([("service", vec![id.to_string()])]);
        let options = ListTasksOptionsBuilder::new().filters(&filters).build();
        self.docker
            .list_tasks(Some(options))
            .await
            .map(|tasks| tasks.into_iter().map(Task::from).collect())
            .map_err(|e| api_error(&self.host, format!("listing the tasks of {id}"), e))
    }

    async fn create_stored(
        &self,
        kind: Stored,
        name: &str,
        data: &[u8],
    ) -> Result<String, EngineError> {
        use base64::Engine as _;
        let data = Some(base64::engine::general_purpose::STANDARD.encode(data));
        let made = match kind {
            Stored::Secret => {
                self.docker
                    .create_secret(bollard::models::SecretSpec {
                        name: Some(name.to_string()),
                        data,
                        ..Default::default()
                    })
                    .await
            }
            Stored::Config => {
                self.docker
                    .create_config(bollard::models::ConfigSpec {
                        name: Some(name.to_string()),
                        data,
                        ..Default::default()
                    })
                    .await
            }
        };
        made.map(|r| r.id)
            .map_err(|e| api_error(&self.host, format!("creating the {kind} {name}"), e))
    }

    async fn remove_stored(&self, kind: Stored, name_or_id: &str) -> Result<(), EngineError> {
        let removed = match kind {
            Stored::Secret => self.docker.delete_secret(name_or_id).await,
            Stored::Config => self.docker.delete_config(name_or_id).await,
        };
        match removed {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(
                &self.host,
                format!("removing the {kind} {name_or_id}"),
                e,
            )),
        }
    }

    async fn volumes(&self) -> Result<Vec<String>, EngineError> {
        let listed = self
            .docker
            .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
            .await
            .map_err(|e| api_error(&self.host, "listing the volumes".to_string(), e))?;
        Ok(listed
            .volumes
            .into_iter()
            .flatten()
            .map(|v| v.name)
            .collect())
    }

    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        match self
            .docker
            .remove_volume(name, None::<bollard::query_parameters::RemoveVolumeOptions>)
            .await
        {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(
                &self.host,
                format!("removing the volume {name}"),
                e,
            )),
        }
    }

    async fn create_internal_network(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), EngineError> {
        let request = bollard::models::NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            internal: Some(true),
            labels: Some(labels.iter().cloned().collect()),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map(|_| ())
            .map_err(|e| api_error(&self.host, format!("creating the network {name}"), e))
    }

    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        match self.docker.remove_network(name).await {
            Ok(()) => Ok(()),
            Err(e) if status_of(&e) == Some(404) => Ok(()),
            Err(e) => Err(api_error(
                &self.host,
                format!("removing the network {name}"),
                e,
            )),
        }
    }

    async fn network(&self, name: &str) -> Result<Option<Network>, EngineError> {
        // Podman's reading of a network lists its containers and fails so on one being
        // removed (podman issue #17341): asked again.
        let inspected = self
            .past(super::podman::removed_meanwhile, || {
                self.docker.inspect_network(name, None)
            })
            .await;
        match inspected {
            Ok(n) => Ok(Some(Network(n))),
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(api_error(
                &self.host,
                format!("inspecting the network {name}"),
                e,
            )),
        }
    }
}

/// The registry's credentials for a service's image, as `--with-registry-auth` sends them: the
/// manager hands them to the nodes that pull it.
async fn registry_auth(spec: &ServiceSpec) -> Option<bollard::auth::DockerCredentials> {
    let image = spec
        .0
        .task_template
        .as_ref()
        .and_then(|t| t.container_spec.as_ref())
        .and_then(|c| c.image.as_deref())
        .and_then(ImageRef::parse)?;
    super::credentials::for_pull(&image, super::credentials::Logins::DockerFirst).await
}

impl DockerEngine {
    /// Runs a command inside the container, feeding `input` to its standard input while its
    /// output frames go to `on_frame`; both at once, so that neither side waits on the other.
    async fn run_exec(
        &self,
        id: &str,
        cmd: &[String],
        env: &[String],
        input: Option<ByteStream>,
        on_frame: &mut (dyn FnMut(LogOutput) -> std::io::Result<()> + Send),
    ) -> Result<i64, EngineError> {
        let action = || {
            format!(
                "running {:?} in {}",
                cmd.first().cloned().unwrap_or_default(),
                short(id)
            )
        };
        let failed = |e: std::io::Error| EngineError::Api {
            action: action(),
            status: None,
            message: e.to_string(),
        };
        let docker = self.unbounded();
        let options = CreateExecOptions {
            cmd: Some(cmd.to_vec()),
            env: (!env.is_empty()).then(|| env.to_vec()),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            attach_stdin: Some(input.is_some()),
            tty: Some(false),
            ..Default::default()
        };
        let exec = docker
            .create_exec(id, options)
            .await
            .map_err(|e| api_error(&self.host, action(), e))?;
        if let StartExecResults::Attached {
            output,
            input: writer,
        } = docker
            .start_exec(&exec.id, None)
            .await
            .map_err(|e| api_error(&self.host, action(), e))?
        {
            pump(output, writer, input, on_frame, &action())
                .await
                .map_err(failed)?;
        }
        let inspected = docker
            .inspect_exec(&exec.id)
            .await
            .map_err(|e| api_error(&self.host, action(), e))?;
        inspected.exit_code.ok_or_else(|| EngineError::Api {
            action: action(),
            status: None,
            message: "the engine reported no exit code".into(),
        })
    }
}

/// Output arrives in frames that need not end at a line break: whole lines go to the sink, the
/// rest waits for the next frame.
#[derive(Default)]
struct Lines {
    pending: Vec<u8>,
}

impl Lines {
    fn feed(&mut self, bytes: &[u8], sink: LineSink<'_>) {
        self.pending.extend_from_slice(bytes);
        while let Some(end) = self.pending.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            sink(String::from_utf8_lossy(&line).trim_end());
        }
    }

    fn finish(&mut self, sink: LineSink<'_>) {
        if !self.pending.is_empty() {
            sink(String::from_utf8_lossy(&self.pending).trim_end());
            self.pending.clear();
        }
    }
}

/// A layer's line: its status alone until the engine says how big it is, then a bar.
fn layer_style(sized: bool) -> ProgressStyle {
    let template = if sized {
        "{prefix:.dim} {msg:<12} {bar:30} {bytes}/{total_bytes}"
    } else {
        "{prefix:.dim} {msg}"
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar())
}

/// Feeds an exec its input while its output goes to `on_frame`, until the output ends. The
/// output ends when the command does: whatever input it did not read then is dropped
/// (`pg_restore --list` reads the table of contents only). A truncated input makes a restore
/// fail, which its exit code tells.
async fn pump(
    mut output: Pin<Box<dyn Stream<Item = Result<LogOutput, BollardError>> + Send>>,
    mut writer: Pin<Box<dyn AsyncWrite + Send>>,
    input: Option<ByteStream>,
    on_frame: &mut (dyn FnMut(LogOutput) -> std::io::Result<()> + Send),
    action: &str,
) -> std::io::Result<()> {
    let feed = async {
        if let Some(mut input) = input {
            while let Some(chunk) = input.next().await {
                writer.write_all(&chunk?).await?;
            }
        }
        writer.shutdown().await
    };
    let read = async {
        while let Some(frame) = output.next().await {
            on_frame(frame.map_err(|e| std::io::Error::other(e.to_string()))?)?;
        }
        Ok::<(), std::io::Error>(())
    };
    tokio::pin!(feed, read);
    tokio::select! {
        read = &mut read => read,
        fed = &mut feed => {
            if let Err(e) = fed {
                tracing::debug!("{action} stopped reading its input: {e}");
            }
            read.await
        }
    }
}

#[cfg(test)]
mod tests;
