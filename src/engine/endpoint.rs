//! Which engine to talk to, chosen as the docker CLI chooses it, so that a host an operator
//! reaches with `docker` is reached by cutover with the same words: `--host`, else `--context`,
//! else `DOCKER_HOST`, else `DOCKER_CONTEXT`, else Podman's `CONTAINER_HOST` (see
//! [`podman_host`]), else the current context of `config.json`, else the local socket. A
//! context is read from the CLI's own store (`contexts/meta/<sha256 of the name>/meta.json`, its
//! TLS material under `contexts/tls/`), in `DOCKER_CONFIG` or `~/.docker`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};

/// The engine's address when nothing names one.
pub const LOCAL: &str = "unix:///var/run/docker.sock";

/// How long one run waits in all for an engine that stopped answering, when nothing says: a
/// restart of dockerd takes seconds, a package upgrade under it a minute; past that the engine
/// is not coming back soon, and a run that kept waiting would hold its lock and leave its caller
/// (a service manager, a cron pass, an operator) looking at a hang.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Podman's own variable for its service's address (podman(1), `--url`), which its users set
/// where Docker's users set `DOCKER_HOST`.
pub const PODMAN_HOST_ENV: &str = "CONTAINER_HOST";

/// The variable that sets the wait when `--engine-wait` does not (and for a fleet's hosts,
/// whose entries may set their own).
pub const WAIT_ENV: &str = "CUTOVER_ENGINE_WAIT";

/// What the command line says of the engine (`-H/--host`, `--context`, `--engine-wait`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineGiven {
    pub host: Option<String>,
    pub context: Option<String>,
    pub wait: Option<Duration>,
}

/// An engine to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `unix://PATH`, `tcp://HOST:PORT` or `ssh://[USER@]HOST[:PORT][/PATH]`.
    pub host: String,
    /// The client certificate and the authority that signed the engine's, for `tcp://` with TLS.
    pub tls: Option<Tls>,
    /// The context it came from, for messages.
    pub context: Option<String>,
    /// How long a run waits in all for this engine while it does not answer, before it leaves
    /// the rest to `cutover recover`.
    pub wait: Duration,
}

impl Endpoint {
    /// The engine at `host` with no TLS and the default wait: what a plain `-H` gives.
    pub fn at(host: &str) -> Endpoint {
        Endpoint {
            host: host.to_string(),
            tls: None,
            context: None,
            wait: DEFAULT_WAIT,
        }
    }

    /// Where this engine's journals, locks and backups live under the state directory: the
    /// directory itself for the host's own engine (its standard socket), else a directory of its
    /// own per address, so that two engines' containers of the same name never share a lock,
    /// and `recover` never applies one engine's journal to another.
    pub fn state_key(&self) -> Option<String> {
        if [LOCAL, "unix:///run/docker.sock"].contains(&self.host.as_str()) {
            return None;
        }
        let (scheme, rest) = self.host.split_once("://")?;
        let safe: String = rest
            .trim_end_matches('/')
            .chars()
            .map(|c| match c {
                'a'..='z' | 'A'..='Z' | '0'..='9' | '.' | '-' | '@' => c,
                _ => '_',
            })
            .collect();
        Some(format!("{scheme}_{safe}"))
    }

    /// Whether the engine runs rootless: its socket on this machine belongs to a user other than
    /// root, as a rootless Podman's (`$XDG_RUNTIME_DIR/podman/podman.sock`) or a rootless
    /// Docker's (`$XDG_RUNTIME_DIR/docker.sock`) does. A socket that cannot be read is taken for
    /// a rootful one's.
    pub fn rootless(&self) -> bool {
        use std::os::unix::fs::MetadataExt as _;
        self.host
            .strip_prefix("unix://")
            .and_then(|path| std::fs::metadata(path).ok())
            .is_some_and(|socket| socket.uid() != 0)
    }

    /// The machine the engine runs on: another one when its address names a host that is not
    /// this one's loopback.
    pub fn machine(&self) -> super::Machine {
        let Some((scheme, rest)) = self.host.split_once("://") else {
            return super::Machine::This;
        };
        if scheme == "unix" {
            return super::Machine::This;
        }
        let authority = rest.split('/').next().unwrap_or_default();
        let authority = authority.rsplit_once('@').map_or(authority, |(_, a)| a);
        let host = match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or_default(),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        };
        let loopback = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        match loopback {
            true => super::Machine::This,
            false => super::Machine::Remote(host.to_string()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    pub ca: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EndpointError {
    #[error("--host and --context both name an engine: give one")]
    Both,
    #[error("there is no docker context {name:?} in {store} (`docker context ls` lists them; DOCKER_CONFIG names another store)")]
    NoContext { name: String, store: String },
    #[error("the docker context {name:?} cannot be read ({path}): {why}")]
    Unreadable {
        name: String,
        path: String,
        why: String,
    },
    #[error("{what}: {why}")]
    Tls { what: String, why: String },
    #[error("{WAIT_ENV}: {0}")]
    Wait(crate::duration::DurationError),
    #[error("{PODMAN_HOST_ENV}={url}: {why}")]
    PodmanHost { url: String, why: String },
}

/// The environment and the files the choice reads, so that it can be tried without either.
pub struct Sources<'a> {
    pub env: &'a dyn Fn(&str) -> Option<String>,
    /// The docker CLI's configuration directory.
    pub config_dir: PathBuf,
}

impl Sources<'_> {
    /// This process's environment and `DOCKER_CONFIG` (or `~/.docker`).
    pub fn process() -> Sources<'static> {
        let env: &'static dyn Fn(&str) -> Option<String> =
            &|name| std::env::var(name).ok().filter(|v| !v.is_empty());
        let config_dir = env("DOCKER_CONFIG").map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env("HOME").unwrap_or_else(|| "/root".into())).join(".docker")
        });
        Sources { env, config_dir }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|v| !v.is_empty())
    }
}

/// The engine the command line and the environment name, as the docker CLI would pick it.
pub fn resolve(given: &EngineGiven, sources: &Sources<'_>) -> Result<Endpoint, EndpointError> {
    if given.host.is_some() && given.context.is_some() {
        return Err(EndpointError::Both);
    }
    let named = match (&given.host, &given.context) {
        (_, Some(name)) => Some(name.clone()),
        (Some(_), None) => None,
        (None, None) if sources.var("DOCKER_HOST").is_some() => None,
        (None, None) => sources.var("DOCKER_CONTEXT").or_else(|| {
            // Podman's variable, set, names the engine before the CLI's file does.
            match sources.var(PODMAN_HOST_ENV) {
                Some(_) => None,
                None => current_context(&sources.config_dir),
            }
        }),
    };
    let wait = match (given.wait, sources.var(WAIT_ENV)) {
        (Some(wait), _) => wait,
        (None, Some(value)) => crate::duration::parse(&value).map_err(EndpointError::Wait)?,
        (None, None) => DEFAULT_WAIT,
    };
    let (host, tls, context) = match named.filter(|n| n != "default") {
        Some(name) => from_store(&name, &sources.config_dir)?,
        None => default_endpoint(given, sources)?,
    };
    Ok(Endpoint {
        host,
        tls,
        context,
        wait,
    })
}

/// An engine's address, its TLS material and the context that named it.
type Reached = (String, Option<Tls>, Option<String>);

/// The `default` context: `--host` or `DOCKER_HOST`, with TLS when `DOCKER_TLS_VERIFY` is set
/// (its files in `DOCKER_CERT_PATH`, else the configuration directory); else Podman's
/// `CONTAINER_HOST`, which has no TLS; else the local socket.
fn default_endpoint(given: &EngineGiven, sources: &Sources<'_>) -> Result<Reached, EndpointError> {
    let docker = given.host.clone().or_else(|| sources.var("DOCKER_HOST"));
    let host = match (docker, sources.var(PODMAN_HOST_ENV)) {
        (Some(host), _) => host,
        (None, Some(podman)) => return Ok((podman_host(&podman)?, None, None)),
        (None, None) => LOCAL.to_string(),
    };
    let tls = match sources.var("DOCKER_TLS_VERIFY") {
        Some(_) => {
            let dir = sources
                .var("DOCKER_CERT_PATH")
                .map(PathBuf::from)
                .unwrap_or_else(|| sources.config_dir.clone());
            Some(tls_in(&dir, "DOCKER_TLS_VERIFY is set, so")?)
        }
        None => None,
    };
    Ok((host, tls, None))
}

/// The address `CONTAINER_HOST` gives, in podman(1)'s forms: `unix:///PATH` (or
/// `unix://PATH`, which Podman's own examples write and read as `/PATH`), `tcp://HOST:PORT`
/// (plain, as Podman serves it) or `ssh://[USER@]HOST[:PORT]/PATH`, the service's socket on
/// that host (see [`super::ssh`]).
pub fn podman_host(url: &str) -> Result<String, EndpointError> {
    let bad = |why: &str| EndpointError::PodmanHost {
        url: url.to_string(),
        why: why.to_string(),
    };
    match url.split_once("://") {
        Some(("unix", "")) => Err(bad("it names no socket")),
        Some(("unix", path)) => Ok(format!("unix:///{}", path.trim_start_matches('/'))),
        Some(("tcp", _)) => Ok(url.to_string()),
        Some(("ssh", rest)) => match rest.split_once('/') {
            Some((_, path)) if !path.is_empty() => Ok(url.to_string()),
            _ => Err(bad(
                "an ssh:// address there names the service's socket on that host, as `podman system connection list` shows it (ssh://core@host:22/run/podman/podman.sock)",
            )),
        },
        _ => Err(bad("cutover takes unix://, tcp:// or ssh:// there")),
    }
}

/// `ca.pem`, `cert.pem` and `key.pem` in `dir`, each required.
fn tls_in(dir: &Path, what: &str) -> Result<Tls, EndpointError> {
    let tls = Tls {
        ca: dir.join("ca.pem"),
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    for file in [&tls.ca, &tls.cert, &tls.key] {
        if !file.is_file() {
            return Err(EndpointError::Tls {
                what: format!("{what} cutover needs {}", file.display()),
                why: "it is missing".into(),
            });
        }
    }
    Ok(tls)
}

#[derive(Deserialize)]
struct Config {
    #[serde(rename = "currentContext", default)]
    current_context: Option<String>,
}

/// The context `docker context use` chose, if any (an unreadable `config.json` chooses none, as
/// the CLI then would not start either).
fn current_context(config_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(config_dir.join("config.json")).ok()?;
    serde_json::from_str::<Config>(&text)
        .ok()?
        .current_context
        .filter(|c| !c.is_empty())
}

#[derive(Deserialize)]
struct Meta {
    #[serde(rename = "Endpoints")]
    endpoints: std::collections::BTreeMap<String, MetaEndpoint>,
}

#[derive(Deserialize)]
struct MetaEndpoint {
    #[serde(rename = "Host")]
    host: String,
    #[serde(rename = "SkipTLSVerify", default)]
    skip_tls_verify: bool,
}

/// The directory of a context in the store: named by the SHA-256 of its name.
fn context_dir(name: &str) -> String {
    format!("{:x}", Sha256::digest(name.as_bytes()))
}

fn from_store(name: &str, config_dir: &Path) -> Result<Reached, EndpointError> {
    let store = config_dir.join("contexts");
    let id = context_dir(name);
    let path = store.join("meta").join(&id).join("meta.json");
    let unreadable = |why: String| EndpointError::Unreadable {
        name: name.to_string(),
        path: path.display().to_string(),
        why,
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(EndpointError::NoContext {
                name: name.to_string(),
                store: store.display().to_string(),
            })
        }
        Err(e) => return Err(unreadable(e.to_string())),
    };
    let meta: Meta = serde_json::from_str(&text).map_err(|e| unreadable(e.to_string()))?;
    let docker = meta
        .endpoints
        .get("docker")
        .ok_or_else(|| unreadable("it has no docker endpoint".into()))?;
    let tls_dir = store.join("tls").join(&id).join("docker");
    let tls = match (tls_dir.is_dir(), docker.skip_tls_verify) {
        (false, _) => None,
        (true, true) => {
            return Err(EndpointError::Tls {
                what: format!("the docker context {name:?} skips verifying the engine's certificate"),
                why: "cutover verifies it: give the context the authority that signed it (`docker context update --docker ca=...`)".into(),
            })
        }
        (true, false) => Some(tls_in(&tls_dir, &format!("the docker context {name:?} has TLS material, so"))?),
    };
    Ok((docker.host.clone(), tls, Some(name.to_string())))
}

#[cfg(test)]
mod tests;
