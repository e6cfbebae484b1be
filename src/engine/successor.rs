//! Turning a running container into the create request for its successor, and checking the
//! created successor against it.
//!
//! `docker inspect` mixes the old image's defaults into `Config`. Copying them would pin the old
//! image's Env, Labels, Cmd… into the new container, so the new image's defaults would never
//! apply. Everything here subtracts what equals the old image's value and keeps the rest: what
//! the user set survives even when the new image changes its default.

use std::collections::{BTreeMap, HashMap};

use bollard::models::{
    ContainerConfig, ContainerCreateBody, EndpointSettings, HostConfig, ImageConfig, MountType,
    NetworkingConfig,
};
use serde::Serialize;
use serde_json::Value;

use crate::engine::facts::env_value;
use crate::engine::{self, env_name, put_env, Container, Mount};
use crate::secrets;

/// The create request for a successor, plus the networks to connect before it starts (engines
/// older than API 1.44 accept only one network in the create call).
#[derive(Debug, Clone, Default, Serialize)]
pub struct SuccessorSpec {
    pub(super) body: ContainerCreateBody,
    pub(super) extra_networks: BTreeMap<String, EndpointSettings>,
    /// Settings that could not be carried, said out loud in the plan.
    pub notes: Vec<String>,
}

impl SuccessorSpec {
    /// The same request lending the volumes of `source`: the container the successor replaces,
    /// whose id is known only when the stage runs (in a campaign, the previous hop's).
    /// The request with `entry` (`NAME:ADDRESS`) added to its container's hosts file.
    pub fn with_host(&self, entry: Option<String>) -> SuccessorSpec {
        let mut spec = self.clone();
        if let Some(entry) = entry {
            let host = spec.body.host_config.get_or_insert_with(Default::default);
            host.extra_hosts.get_or_insert_with(Vec::new).push(entry);
        }
        spec
    }

    pub fn with_source(&self, source: &str) -> SuccessorSpec {
        let mut spec = self.clone();
        if let Some(from) = spec
            .body
            .host_config
            .as_mut()
            .and_then(|h| h.volumes_from.as_mut())
        {
            if let Some(last) = from.last_mut() {
                *last = source.to_string();
            }
        }
        spec
    }

    pub fn with_image(&self, image: &str) -> SuccessorSpec {
        let mut spec = self.clone();
        spec.body.image = Some(image.to_string());
        spec
    }

    /// The entries the successor's environment sets.
    pub fn env(&self) -> &[String] {
        self.body.env.as_deref().unwrap_or_default()
    }

    /// The image it is created from.
    pub fn image(&self) -> &str {
        self.body.image.as_deref().unwrap_or_default()
    }

    /// The networks connected after the create call, beside the one it names.
    pub fn extra_networks(&self) -> usize {
        self.extra_networks.len()
    }

    /// Whether it mounts another container's volumes (`--volumes-from`): then the anonymous
    /// volumes of its image are that container's, not its own to remove with it.
    pub fn borrows_volumes(&self) -> bool {
        self.body
            .host_config
            .as_ref()
            .is_some_and(|h| h.volumes_from.as_ref().is_some_and(|v| !v.is_empty()))
    }

    /// Adds `labels` over its own.
    pub fn add_labels<'a>(&mut self, labels: impl IntoIterator<Item = (&'a String, &'a String)>) {
        let own = self.body.labels.get_or_insert_with(Default::default);
        own.extend(labels.into_iter().map(|(k, v)| (k.clone(), v.clone())));
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.body.labels.as_ref()?.get(name).map(String::as_str)
    }

    /// The directories it gets as empty scratch space (tmpfs).
    pub fn scratch(&self) -> Vec<&str> {
        let tmpfs = self
            .body
            .host_config
            .as_ref()
            .and_then(|h| h.tmpfs.as_ref());
        let mut dirs: Vec<&str> = tmpfs
            .into_iter()
            .flatten()
            .map(|(d, _)| d.as_str())
            .collect();
        dirs.sort();
        dirs
    }

    /// Makes the request reach nothing but `network`: none of the old container's volumes,
    /// binds, links, host entries, published ports, logging or restart policy, no namespace
    /// shared with another container or the host; `scratch` directories as empty tmpfs and
    /// `labels` added. What a rehearsal's container is made from production's configuration.
    pub fn isolate(&mut self, network: &str, labels: &[(String, String)], scratch: &[String]) {
        let body = &mut self.body;
        body.labels
            .get_or_insert_with(Default::default)
            .extend(labels.iter().cloned());
        body.volumes = None;
        let host = body.host_config.get_or_insert_with(Default::default);
        host.binds = None;
        host.mounts = None;
        host.volumes_from = None;
        host.volume_driver = None;
        host.links = None;
        host.extra_hosts = None;
        host.port_bindings = None;
        host.publish_all_ports = None;
        host.network_mode = Some(network.to_string());
        host.log_config = None;
        host.restart_policy = None;
        host.auto_remove = None;
        // Only a namespace of its own is kept: private, or shareable by others.
        if host
            .ipc_mode
            .as_deref()
            .is_some_and(|m| m != "private" && m != "shareable")
        {
            host.ipc_mode = None;
        }
        if shares_namespace(&host.pid_mode) {
            host.pid_mode = None;
        }
        let tmpfs = host.tmpfs.get_or_insert_with(Default::default);
        tmpfs.extend(scratch.iter().map(|d| (d.clone(), String::new())));
        body.networking_config = Some(NetworkingConfig {
            endpoints_config: Some([(network.to_string(), EndpointSettings::default())].into()),
        });
        self.extra_networks.clear();
    }

    /// What the request would reach beyond `network` (its mounts, another container's volumes
    /// or namespaces, links or host entries, published ports, another network); none when
    /// [`SuccessorSpec::isolate`] made it so.
    pub fn reaches_beyond(&self, network: &str) -> Vec<&'static str> {
        let body = &self.body;
        let host = body.host_config.clone().unwrap_or_default();
        let mut reaches = Vec::new();
        let some = |v: &Option<Vec<String>>| v.as_ref().is_some_and(|v| !v.is_empty());
        if some(&host.binds) || host.mounts.as_ref().is_some_and(|m| !m.is_empty()) {
            reaches.push("mounts");
        }
        if some(&host.volumes_from) {
            reaches.push("another container's volumes");
        }
        if some(&host.links) || some(&host.extra_hosts) {
            reaches.push("links or host entries");
        }
        if host.port_bindings.as_ref().is_some_and(|p| !p.is_empty()) {
            reaches.push("published ports");
        }
        let endpoints: Vec<&String> = body
            .networking_config
            .iter()
            .flat_map(|n| n.endpoints_config.iter().flatten())
            .map(|(name, _)| name)
            .collect();
        if host.network_mode.as_deref() != Some(network)
            || !self.extra_networks.is_empty()
            || endpoints != [network]
        {
            reaches.push("another network");
        }
        if shares_namespace(&host.ipc_mode) || shares_namespace(&host.pid_mode) {
            reaches.push("another container's namespaces");
        }
        reaches
    }
}

/// Whether an IPC or PID mode joins another container's namespace or the host's.
fn shares_namespace(mode: &Option<String>) -> bool {
    mode.as_deref()
        .is_some_and(|m| m.starts_with("container:") || m == "host")
}

/// What the old container looked like, as far as recreating it is concerned.
pub struct Predecessor<'a> {
    pub inspect: &'a Container,
    /// Its image's configuration and the `--volumes-from` sources gone since.
    pub origin: &'a engine::Origin,
}

/// Builds the successor's create request: the old container's whole user configuration, the
/// new image reference, and `VolumesFrom` the old container, as the vendors' procedures do.
pub fn successor_spec(old: &Predecessor<'_>, image: &str) -> SuccessorSpec {
    let inspect = &old.inspect.0;
    let id = old.inspect.id().to_string();
    let mut notes = Vec::new();
    let host_config = carried_host_config(old, &id, &mut notes);
    let (networking_config, extra_networks) = carried_networks(old.inspect, &host_config, &id);

    let ContainerConfig {
        hostname,
        domainname,
        user,
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports,
        tty,
        open_stdin,
        stdin_once,
        env,
        cmd,
        healthcheck,
        args_escaped: _, // Windows-only and derived from the image's Cmd.
        image: _,
        volumes,
        working_dir,
        entrypoint,
        network_disabled,
        on_build,
        labels,
        stop_signal,
        stop_timeout,
        shell,
    } = inspect.config.clone().unwrap_or_default();
    let img = &old.origin.image;

    let (entrypoint, cmd) = user_command(entrypoint, cmd, img);
    let shares_namespace = matches!(host_config.network_mode.as_deref(), Some(m) if m == "host" || m.starts_with("container:"));
    // The engine sets the hostname to the short id unless told otherwise; with a shared network
    // namespace it is the other side's and must not be set at all.
    let hostname =
        hostname.filter(|h| !h.is_empty() && !shares_namespace && !id.starts_with(h.as_str()));

    let body = ContainerCreateBody {
        hostname,
        domainname: non_empty(domainname),
        user: unless_image(non_empty(user), non_empty(img.user.clone())),
        attach_stdin,
        attach_stdout,
        attach_stderr,
        exposed_ports: minus(exposed_ports, img.exposed_ports.as_ref()),
        tty,
        open_stdin,
        stdin_once,
        env: minus(env, img.env.as_ref()),
        cmd,
        healthcheck: unless_image(healthcheck, img.healthcheck.clone()),
        args_escaped: None,
        image: Some(image.to_string()),
        volumes: minus(volumes, img.volumes.as_ref()),
        working_dir: unless_image(non_empty(working_dir), non_empty(img.working_dir.clone())),
        entrypoint,
        network_disabled,
        on_build: unless_image(on_build.filter(|v| !v.is_empty()), img.on_build.clone()),
        labels: labels_minus(labels, img.labels.as_ref()),
        stop_signal: unless_image(non_empty(stop_signal), non_empty(img.stop_signal.clone())),
        stop_timeout,
        shell: unless_image(shell, img.shell.clone()),
        host_config: Some(host_config),
        networking_config,
    };
    SuccessorSpec {
        body,
        extra_networks,
        notes,
    }
}

/// Entrypoint and Cmd the user set. The engine drops the image's Cmd when `--entrypoint` is
/// given, so an entrypoint equal to the image's with an empty Cmd (while the image has one) is an
/// explicit override that must be repeated.
fn user_command(
    entrypoint: Option<Vec<String>>,
    cmd: Option<Vec<String>>,
    img: &ImageConfig,
) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let entrypoint = entrypoint.filter(|e| !e.is_empty());
    let cmd = cmd.filter(|c| !c.is_empty());
    let image_entrypoint = img.entrypoint.clone().filter(|e| !e.is_empty());
    let image_cmd = img.cmd.clone().filter(|c| !c.is_empty());
    if entrypoint != image_entrypoint {
        return (entrypoint, cmd);
    }
    match (cmd, image_cmd) {
        (None, Some(_)) => (entrypoint, None),
        (cmd, image_cmd) if cmd == image_cmd => (None, None),
        (cmd, _) => (None, cmd),
    }
}

fn carried_host_config(old: &Predecessor<'_>, id: &str, notes: &mut Vec<String>) -> HostConfig {
    let mut hc = old.inspect.0.host_config.clone().unwrap_or_default();
    // The engine stores links as `/target:/this-name/alias`; create takes `target:alias`.
    hc.links = hc
        .links
        .map(|links| links.iter().map(|l| engine::create_form_link(l)).collect());
    let mut volumes_from: Vec<String> = hc
        .volumes_from
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| {
            let source = entry.split(':').next().unwrap_or_default();
            let vanished = old.origin.vanished_volumes_from.iter().any(|v| v == source);
            if vanished {
                notes.push(format!(
                    "VolumesFrom {source} dropped: that container no longer exists; its volumes \
                     are mounted in the old container and carried from there"
                ));
            }
            !vanished
        })
        .collect();
    volumes_from.push(id.to_string());
    hc.volumes_from = Some(volumes_from);
    hc.mounts = hc
        .mounts
        .map(|mounts| pin_anonymous_mounts(mounts, &old.inspect.mounts()));
    hc
}

/// An anonymous `--mount type=volume` would get a *fresh* empty volume in the successor and
/// shadow the data that `VolumesFrom` brings; naming the old container's volume keeps the data.
fn pin_anonymous_mounts(
    mounts: Vec<bollard::models::Mount>,
    actual: &[Mount],
) -> Vec<bollard::models::Mount> {
    mounts
        .into_iter()
        .map(|mut m| {
            let anonymous =
                m.typ == Some(MountType::VOLUME) && m.source.as_deref().is_none_or(str::is_empty);
            if anonymous {
                m.source = actual
                    .iter()
                    .find(|p| Some(&p.destination) == m.target.as_ref())
                    .and_then(|p| p.name.clone());
            }
            m
        })
        .collect()
}

/// The primary network goes into the create call, the others are connected afterwards.
fn carried_networks(
    inspect: &Container,
    hc: &HostConfig,
    id: &str,
) -> (Option<NetworkingConfig>, BTreeMap<String, EndpointSettings>) {
    let mode = hc.network_mode.as_deref().unwrap_or("default");
    if mode == "host" || mode == "none" || mode.starts_with("container:") {
        return (None, BTreeMap::new());
    }
    let primary = if mode == "default" { "bridge" } else { mode };
    let name = inspect.name();
    let mut extra: BTreeMap<String, EndpointSettings> = inspect
        .0
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(net, ep)| (net, carried_endpoint(ep, id, name)))
        .collect();
    let networking = extra.remove(primary).map(|ep| NetworkingConfig {
        endpoints_config: Some(HashMap::from([(primary.to_string(), ep)])),
    });
    (networking, extra)
}

/// Only what the user asked for: aliases (without the engine's own short-id and name aliases,
/// which would pile up with every upgrade), static addresses, links, driver options and a MAC
/// address the engine did not derive itself. Runtime fields (endpoint ids, assigned IPs) go.
fn carried_endpoint(ep: EndpointSettings, id: &str, name: &str) -> EndpointSettings {
    let aliases = ep.aliases.map(|a| {
        a.into_iter()
            .filter(|alias| alias != name && !(alias.len() >= 12 && id.starts_with(alias.as_str())))
            .collect::<Vec<_>>()
    });
    let ipam_config = ep.ipam_config.filter(|c| {
        c.ipv4_address.as_deref().is_some_and(|a| !a.is_empty())
            || c.ipv6_address.as_deref().is_some_and(|a| !a.is_empty())
            || c.link_local_ips.as_ref().is_some_and(|l| !l.is_empty())
    });
    let mac_address = ep
        .mac_address
        .filter(|mac| !mac.is_empty() && !engine_derived_mac(mac, ep.ip_address.as_deref()));
    EndpointSettings {
        ipam_config,
        links: ep.links.filter(|l| !l.is_empty()),
        aliases: aliases.filter(|a| !a.is_empty()),
        driver_opts: ep.driver_opts.filter(|d| !d.is_empty()),
        mac_address,
        gw_priority: ep.gw_priority.filter(|p| *p != 0),
        ..Default::default()
    }
}

/// Engines before 26 derive a container's MAC from its IPv4 address (`02:42:` + the four
/// bytes); such an address was not chosen by the user and must not be pinned.
fn engine_derived_mac(mac: &str, ip: Option<&str>) -> bool {
    let Some(ip) = ip.and_then(|ip| ip.parse::<std::net::Ipv4Addr>().ok()) else {
        return false;
    };
    let [a, b, c, d] = ip.octets();
    mac.eq_ignore_ascii_case(&format!("02:42:{a:02x}:{b:02x}:{c:02x}:{d:02x}"))
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

fn unless_image<T: PartialEq>(value: Option<T>, image: Option<T>) -> Option<T> {
    if value == image {
        None
    } else {
        value
    }
}

fn minus(values: Option<Vec<String>>, image: Option<&Vec<String>>) -> Option<Vec<String>> {
    let kept: Vec<String> = values
        .unwrap_or_default()
        .into_iter()
        .filter(|v| !image.is_some_and(|img| img.contains(v)))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

fn labels_minus(
    labels: Option<HashMap<String, String>>,
    image: Option<&HashMap<String, String>>,
) -> Option<HashMap<String, String>> {
    let kept: HashMap<String, String> = labels
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, v)| image.and_then(|img| img.get(k)) != Some(v))
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// One setting the successor does not have as the old container had it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Difference {
    pub path: String,
    pub expected: String,
    pub actual: String,
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: wanted {}, got {}",
            self.path, self.expected, self.actual
        )
    }
}

/// Compares what was carried with what the engine actually created: every carried setting must
/// be present in the created container. Values are rendered with secrets masked.
pub fn verify(spec: &SuccessorSpec, created: &Container) -> Vec<Difference> {
    let expected = comparable(&spec.body, &spec.extra_networks);
    let actual = comparable_created(&created.0);
    let mut diffs = Vec::new();
    contained(&expected, &actual, "", &mut diffs);
    diffs
}

fn comparable(body: &ContainerCreateBody, extra: &BTreeMap<String, EndpointSettings>) -> Value {
    let mut config = body.clone();
    let host_config = config.host_config.take();
    let mut networks: BTreeMap<String, EndpointSettings> = config
        .networking_config
        .take()
        .and_then(|n| n.endpoints_config)
        .unwrap_or_default()
        .into_iter()
        .collect();
    networks.extend(extra.clone());
    // Hostname and image are decided by the engine and the target, not carried settings.
    config.hostname = None;
    config.image = None;
    let mut hc = serde_json::to_value(host_config).unwrap_or(Value::Null);
    normalise_links(&mut hc);
    serde_json::json!({ "Config": config, "HostConfig": hc, "Networks": networks })
}

fn comparable_created(created: &bollard::models::ContainerInspectResponse) -> Value {
    let mut hc = serde_json::to_value(&created.host_config).unwrap_or(Value::Null);
    normalise_links(&mut hc);
    let networks = created
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.clone());
    serde_json::json!({ "Config": created.config, "HostConfig": hc, "Networks": networks })
}

fn normalise_links(hc: &mut Value) {
    if let Some(Value::Array(links)) = hc.get_mut("Links") {
        for link in links.iter_mut() {
            if let Value::String(s) = link {
                *s = engine::create_form_link(s);
            }
        }
    }
}

/// Arrays whose order the engine does not keep, or to which it adds entries of its own.
const SET_LIKE: &[&str] = &[
    "Env",
    "Aliases",
    "DNSNames",
    "CapAdd",
    "CapDrop",
    "SecurityOpt",
];

fn contained(expected: &Value, actual: &Value, path: &str, diffs: &mut Vec<Difference>) {
    match (expected, actual) {
        (Value::Null, _) => {}
        (Value::Object(want), Value::Object(have)) => {
            for (key, value) in want {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                contained(value, have.get(key).unwrap_or(&Value::Null), &child, diffs);
            }
        }
        (Value::Array(want), Value::Array(have)) if SET_LIKE.iter().any(|k| path.ends_with(k)) => {
            for item in want.iter().filter(|item| !have.contains(item)) {
                diffs.push(difference(path, item, &Value::Null));
            }
        }
        (want, have) if want == have || is_empty(want) && is_empty(have) => {}
        (want, have) => diffs.push(difference(path, want, have)),
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        Value::String(s) => s.is_empty(),
        _ => false,
    }
}

fn difference(path: &str, expected: &Value, actual: &Value) -> Difference {
    let render = |v: &Value| match v {
        Value::Null => "nothing".to_string(),
        Value::String(s) => secrets::mask_env_entry(s),
        other => other.to_string(),
    };
    Difference {
        path: path.to_string(),
        expected: secrets::redact(&render(expected)),
        actual: secrets::redact(&render(actual)),
    }
}

/// Changes to the environment of the successor, asked for on top of what is carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvChanges {
    /// `NAME=VALUE` entries set (or replaced).
    pub set: Vec<(String, String)>,
    pub unset: Vec<String>,
    /// `(OLD, NEW)`: the value of OLD moves to NEW and OLD goes.
    pub rename: Vec<(String, String)>,
}

impl EnvChanges {
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.unset.is_empty() && self.rename.is_empty()
    }
}

/// Applies the changes to the successor's environment and returns the names that must no longer
/// be set. A rename reads the old container's whole environment (`old_env`), so a value that
/// came from its image moves too; `require_renamed` refuses when OLD is not there at all,
/// because a rename that silently did nothing would lose the value.
pub fn apply_env_changes(
    spec: &mut SuccessorSpec,
    old_env: &[String],
    changes: &EnvChanges,
    require_renamed: bool,
) -> Result<Vec<String>, String> {
    let mut env: Vec<String> = spec.env().to_vec();
    let removed = change_env(&mut env, old_env, changes, require_renamed)?;
    spec.body.env = (!env.is_empty()).then_some(env);
    Ok(removed)
}

/// A container's whole environment after the changes: what the next hop starts from.
pub fn apply_to_whole_env(env: &[String], changes: &EnvChanges) -> Vec<String> {
    let mut changed = env.to_vec();
    // Without `require_renamed` a change cannot fail.
    let _ = change_env(&mut changed, env, changes, false);
    changed
}

/// Sets `name` in an environment, replacing any value it had.
/// Sets variables in a one-shot container's environment, over the carried ones.
pub fn set_env(spec: &mut SuccessorSpec, vars: &[(String, String)]) {
    if vars.is_empty() {
        return;
    }
    let env = spec.body.env.get_or_insert_with(Vec::new);
    for (name, value) in vars {
        put_env(env, name, value);
    }
}

fn change_env(
    env: &mut Vec<String>,
    old_env: &[String],
    changes: &EnvChanges,
    require_renamed: bool,
) -> Result<Vec<String>, String> {
    let mut removed = Vec::new();
    for (old, new) in &changes.rename {
        let Some(value) = env_value(old_env, old) else {
            if require_renamed {
                return Err(format!(
                    "--env-rename {old}={new}: the container has no {old}; without it there is no value to move (give --env {new}=VALUE instead)"
                ));
            }
            continue;
        };
        if env_value(old_env, new).is_some_and(|v| v != value) {
            return Err(format!(
                "--env-rename {old}={new}: the container already sets {new} to another value; unset one of them first"
            ));
        }
        env.retain(|e| env_name(e) != old);
        put_env(env, new, value);
        removed.push(old.clone());
    }
    for name in &changes.unset {
        env.retain(|e| env_name(e) != name);
        removed.push(name.clone());
    }
    for (name, value) in &changes.set {
        crate::secrets::register_env(std::iter::once(&format!("{name}={value}")));
        put_env(env, name, value);
        removed.retain(|r| r != name);
    }
    Ok(removed)
}

/// The create request of a one-shot container (a migration): the successor's configuration
/// (environment, volumes, networks, user) with the command given, and nothing that serves or
/// could clash with the service. The image's entrypoint applies unless one is given, because the
/// command is meant for the product's image rather than for the way the service was started.
pub fn one_shot_spec(
    successor: &SuccessorSpec,
    command: &[String],
    entrypoint: Option<&[String]>,
) -> SuccessorSpec {
    let mut spec = successor.clone();
    let body = &mut spec.body;
    body.cmd = Some(command.to_vec());
    body.entrypoint = entrypoint.map(<[String]>::to_vec);
    body.tty = None;
    body.open_stdin = None;
    body.stdin_once = None;
    body.attach_stdin = None;
    body.exposed_ports = None;
    body.healthcheck = Some(bollard::models::HealthConfig {
        test: Some(vec!["NONE".into()]),
        ..Default::default()
    });
    // compose would count a container with its labels as one of the service's.
    body.labels = body.labels.take().map(|l| {
        l.into_iter()
            .filter(|(k, _)| !k.starts_with("com.docker.compose."))
            .collect()
    });
    if let Some(hc) = body.host_config.as_mut() {
        hc.port_bindings = None;
        hc.publish_all_ports = None;
        hc.restart_policy = None;
        hc.auto_remove = None;
    }
    let quiet = |ep: &mut EndpointSettings| {
        ep.aliases = None;
        ep.ipam_config = None;
        ep.mac_address = None;
    };
    if let Some(endpoints) = body
        .networking_config
        .as_mut()
        .and_then(|n| n.endpoints_config.as_mut())
    {
        endpoints.values_mut().for_each(quiet);
    }
    spec.extra_networks.values_mut().for_each(quiet);
    spec.notes.clear();
    spec
}

/// The carried configuration with secret env values masked, for plans, dry runs and journals.
pub fn masked(spec: &SuccessorSpec) -> Value {
    let mut body = spec.body.clone();
    body.env = body
        .env
        .map(|env| env.iter().map(|e| secrets::mask_env_entry(e)).collect());
    secrets::redact_json(&serde_json::json!({
        "create": body,
        "connect": spec.extra_networks,
        "notes": spec.notes,
    }))
}

#[cfg(test)]
pub(crate) mod tests;
