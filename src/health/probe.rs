//! HTTP checks of a container from the host: a URL, or a port of the container reached through
//! its address on a network the host shares or through its published binding.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use crate::engine::Container;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{HealthError, HealthPolicy};
use crate::engine::{Engine, Machine};
use crate::secrets;

const HTTP_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(3);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// `field=value`: a field of the JSON answer (a dotted path such as `data.status`, or a JSON
/// pointer such as `/data/status`) that must hold that value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct JsonCondition {
    pub field: String,
    pub value: String,
}

/// A JSON condition that cannot be read (a flag, a profile): bad input, quoted, with the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{0:?} is not a JSON condition; write FIELD=VALUE, e.g. status_code=200 or databaseStatus=OK"
)]
pub struct JsonConditionError(String);

impl std::str::FromStr for JsonCondition {
    type Err = JsonConditionError;

    fn from_str(s: &str) -> Result<JsonCondition, JsonConditionError> {
        match s.split_once('=') {
            Some((field, value)) if !field.trim().is_empty() => Ok(JsonCondition {
                field: field.trim().to_string(),
                value: value.trim().to_string(),
            }),
            _ => Err(JsonConditionError(s.to_string())),
        }
    }
}

impl TryFrom<String> for JsonCondition {
    type Error = JsonConditionError;

    fn try_from(s: String) -> Result<JsonCondition, JsonConditionError> {
        s.parse()
    }
}

impl From<JsonCondition> for String {
    fn from(c: JsonCondition) -> String {
        c.to_string()
    }
}

impl fmt::Display for JsonCondition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={}", self.field, self.value)
    }
}

/// A field of a JSON document, named by a JSON pointer (`/data/status`) or a dotted path
/// (`data.status`).
pub fn json_field<'a>(body: &'a Value, field: &str) -> Option<&'a Value> {
    if field.starts_with('/') {
        body.pointer(field)
    } else {
        body.pointer(&format!("/{}", field.replace('.', "/")))
    }
}

impl JsonCondition {
    /// `Err` says what the answer held instead.
    pub fn check(&self, body: &Value) -> Result<(), String> {
        match json_field(body, &self.field) {
            Some(found) if scalar_text(found) == self.value => Ok(()),
            Some(found) => Err(format!(
                "{} is {}, not {}",
                self.field,
                scalar_text(found),
                self.value
            )),
            None => Err(format!("the answer has no {}", self.field)),
        }
    }
}

/// A JSON value as people write it in a condition: strings without quotes.
pub fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// An answer's body as a check quotes it: its start, secrets masked, so that a profile that
/// disagrees with the product shows what the product said.
pub fn quoted(body: &str) -> String {
    const SHOWN: usize = 160;
    let body = body.trim();
    if body.is_empty() {
        return String::new();
    }
    let cut: String = body.chars().take(SHOWN).collect();
    let more = if cut.len() < body.len() { "..." } else { "" };
    format!(": {:?}", format!("{}{more}", secrets::redact(&cut)))
}

/// The HTTP client of health and version checks: certificates are not verified, because a
/// product that serves TLS itself serves a self-signed certificate more often than not, and the
/// check asks a container cutover knows by its address, not a site by its name. So no
/// certificate authority is loaded either: reading the system's store costs every upgrade
/// about a MiB.
pub fn client(timeout: Duration) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(timeout)
        .danger_accept_invalid_certs(true)
        .tls_built_in_root_certs(false)
        .build()
}

/// One way to reach a container's port from the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// `HOST:PORT`, as a URL's authority writes it.
    pub addr: String,
    /// Reached without the engine's userland proxy, which accepts connections on a published
    /// port even when nothing listens behind it: only here does an accepted connection mean the
    /// application listens.
    pub direct: bool,
    pub how: String,
}

impl fmt::Display for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.addr, self.how)
    }
}

/// A label naming the port the default probe asks, on a container that cannot publish the one
/// it stands in for: a rehearsal's copy of a product, asked as the product would be.
pub const PROBE_PORT_LABEL: &str = "cutover.probe_port";

/// The port the default probe asks: the one [`PROBE_PORT_LABEL`] names, else the lowest
/// published TCP port, else the lowest exposed one.
pub fn probe_port(c: &Container) -> Option<u16> {
    let labelled = c.label(PROBE_PORT_LABEL).and_then(|p| p.parse().ok());
    labelled
        .or_else(|| c.tcp_ports_to_publish().first().copied())
        .or_else(|| c.exposed_tcp_ports().first().copied())
}

/// Every way to reach `port` of the container from this machine, direct ones first. On another
/// machine only what it publishes on all its addresses (or one of them) is reached, at that
/// machine: its bridges and its loopback are not this one's. Its addresses on the engine's
/// networks are asked only when `networks_here` (see [`Engine::networks_here`]): a rootless
/// engine's are in its own namespace, and asking them would go out by the default route.
pub fn routes(c: &Container, port: u16, machine: &Machine, networks_here: bool) -> Vec<Route> {
    let mut out = Vec::new();
    let here = *machine == Machine::This && networks_here;
    let at = |ip: IpAddr, port: u16| SocketAddr::new(ip, port).to_string();
    if c.network_mode() == "host" {
        out.push(Route {
            addr: match machine {
                Machine::This => at(Ipv4Addr::LOCALHOST.into(), port),
                Machine::Remote(host) => authority(host, port),
            },
            direct: true,
            how: "the host's network".into(),
        });
    }
    let networks = c.attachments().into_iter().filter(|_| here);
    for on in networks {
        if let Some(ip) = on.address.and_then(|ip| ip.parse::<IpAddr>().ok()) {
            out.push(Route {
                addr: at(ip, port),
                direct: true,
                how: format!("its address on network {}", on.network),
            });
        }
    }
    let bindings = c
        .published()
        .into_iter()
        .filter(|(p, proto, _, _)| *p == port && proto == "tcp");
    for (_, _, host_ip, host_port) in bindings {
        let ip = host_ip.parse::<IpAddr>().ok();
        let addr = match (ip, machine) {
            (Some(ip), _) if !ip.is_unspecified() && !ip.is_loopback() => at(ip, host_port),
            (_, Machine::This) => at(
                ip.filter(|ip| ip.is_loopback())
                    .unwrap_or(Ipv4Addr::LOCALHOST.into()),
                host_port,
            ),
            // Its loopback is not this machine's.
            (Some(ip), Machine::Remote(_)) if ip.is_loopback() => continue,
            (_, Machine::Remote(host)) => authority(host, host_port),
        };
        let endpoint = Route {
            how: format!("its port {port} published as {addr}"),
            addr,
            direct: false,
        };
        if !out.iter().any(|e| e.addr == endpoint.addr) {
            out.push(endpoint);
        }
    }
    out
}

/// `host:port`, an IPv6 address in brackets.
fn authority(host: &str, port: u16) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port).to_string(),
        Err(_) => format!("{host}:{port}"),
    }
}

enum Target {
    Url(String),
    /// A port named by the operator: the answer must satisfy the policy.
    Port {
        port: u16,
        path: String,
        tls: bool,
    },
    /// The default probe: any HTTP answer below 500, or an accepted connection.
    Default {
        port: u16,
    },
}

pub(super) struct Probe {
    target: Target,
    expect_status: Option<u16>,
    json: Vec<JsonCondition>,
    http: reqwest::Client,
}

impl Probe {
    pub(super) fn named(policy: &HealthPolicy) -> Result<Probe, HealthError> {
        let target = match (&policy.url, policy.port) {
            (Some(url), _) => Target::Url(url.clone()),
            (None, Some(port)) => Target::Port {
                port,
                path: policy.path.clone(),
                tls: policy.tls,
            },
            (None, None) => unreachable!("a named probe has a URL or a port"),
        };
        Probe::new(target, policy.expect_status, policy.json.clone())
    }

    /// The probe of a container no check was named for: its [`probe_port`], unless nothing
    /// reaches it from here, a port it only exposes on an engine whose networks are not this
    /// machine's (another machine's, a rootless one's): then none, as for a container with no
    /// port, and the settle time alone judges it.
    pub(super) fn default_for(
        c: &Container,
        engine: &dyn Engine,
    ) -> Option<Result<Probe, HealthError>> {
        let port = probe_port(c)?;
        if !engine.networks_here() && routes(c, port, &engine.machine(), false).is_empty() {
            tracing::info!(
                "{}: port {port} is not published, and its address is not reached from here: judged by its settle time alone",
                c.name()
            );
            return None;
        }
        Some(Probe::new(Target::Default { port }, None, Vec::new()))
    }

    fn new(
        target: Target,
        expect_status: Option<u16>,
        json: Vec<JsonCondition>,
    ) -> Result<Probe, HealthError> {
        let http = client(HTTP_ATTEMPT_TIMEOUT).map_err(|e| HealthError::Timeout {
            waited: Duration::ZERO,
            last: e.to_string(),
        })?;
        Ok(Probe {
            target,
            expect_status,
            json,
            http,
        })
    }

    /// One attempt: `Ok` with what passed, `Err` with what was seen instead.
    pub(super) async fn attempt(
        &mut self,
        c: &Container,
        engine: &dyn Engine,
    ) -> Result<String, String> {
        let (port, path, default, scheme) = match &self.target {
            Target::Url(url) => {
                return self
                    .get(url)
                    .await
                    .map(|code| format!("{url} answered {code}"))
                    .map_err(|miss| miss.to_string())
            }
            Target::Port { port, path, tls } => (
                *port,
                path.clone(),
                false,
                if *tls { "https" } else { "http" },
            ),
            Target::Default { port } => (*port, "/".to_string(), true, "http"),
        };
        let candidates = routes(c, port, &engine.machine(), engine.networks_here());
        if candidates.is_empty() {
            return Err(format!(
                "port {port} is neither on a network the host reaches nor published"
            ));
        }
        for endpoint in &candidates {
            let connect = tokio::net::TcpStream::connect(endpoint.addr.as_str());
            if !matches!(
                tokio::time::timeout(CONNECT_TIMEOUT, connect).await,
                Ok(Ok(_))
            ) {
                continue;
            }
            let url = format!("{scheme}://{}{path}", endpoint.addr);
            return match (self.get(&url).await, default) {
                (Ok(code), _) => Ok(format!("{endpoint} answered HTTP {code}")),
                (Err(Miss::NotHttp(_)), true) if endpoint.direct => Ok(format!(
                    "{endpoint} accepts connections (it does not answer HTTP)"
                )),
                (Err(seen), _) => Err(format!("{endpoint}: {seen}")),
            };
        }
        let tried: Vec<String> = candidates.iter().map(ToString::to_string).collect();
        Err(format!(
            "nothing accepts connections on port {port} yet (tried {})",
            tried.join(", ")
        ))
    }

    /// The status when the answer passes; what was wrong otherwise.
    async fn get(&self, url: &str) -> Result<u16, Miss> {
        let resp = match self.http.get(url).send().await {
            Ok(resp) => resp,
            Err(e) if e.is_connect() || e.is_timeout() => {
                return Err(Miss::Answer(secrets::redact(&crate::causes::error_text(
                    &e,
                ))))
            }
            Err(e) => {
                return Err(Miss::NotHttp(secrets::redact(&crate::causes::error_text(
                    &e,
                ))))
            }
        };
        self.judge(resp).await.map_err(Miss::Answer)
    }

    /// Whether an HTTP answer passes: its status, and its body's JSON conditions.
    async fn judge(&self, resp: reqwest::Response) -> Result<u16, String> {
        let code = resp.status().as_u16();
        let status_passes = match (&self.target, self.expect_status) {
            (Target::Default { .. }, _) => code < 500,
            (_, Some(want)) => code == want,
            (_, None) => (200..300).contains(&code),
        };
        if !status_passes {
            let text = resp.text().await.unwrap_or_default();
            return Err(format!("answered {code}{}", quoted(&text)));
        }
        if self.json.is_empty() {
            return Ok(code);
        }
        let text = resp
            .text()
            .await
            .map_err(|e| format!("answered {code}, but the body could not be read ({e})"))?;
        let body: Value = serde_json::from_str(&text)
            .map_err(|e| format!("answered {code} without a JSON body ({e}){}", quoted(&text)))?;
        for condition in &self.json {
            condition
                .check(&body)
                .map_err(|why| format!("answered {code}, but {why}"))?;
        }
        Ok(code)
    }
}

/// Why a request did not pass.
#[derive(Debug, thiserror::Error)]
enum Miss {
    /// Something answered, but not in HTTP: the default probe of a container serving another
    /// protocol takes the connection as its sign of life.
    #[error("not HTTP: {0}")]
    NotHttp(String),
    #[error("{0}")]
    Answer(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn container(json: Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn json_conditions_read_dotted_paths_and_pointers() {
        let body = serde_json::json!({"status_code": 200, "data": {"services": {"database": true}}, "databaseStatus": "OK"});
        for text in [
            "status_code=200",
            "databaseStatus=OK",
            "data.services.database=true",
            "/data/services/database=true",
        ] {
            let c: JsonCondition = text.parse().unwrap();
            assert_eq!(c.check(&body), Ok(()), "{text}");
        }
        let c: JsonCondition = "databaseStatus=Error".parse().unwrap();
        assert_eq!(
            c.check(&body),
            Err("databaseStatus is OK, not Error".into())
        );
        let c: JsonCondition = "licenseStatus=OK".parse().unwrap();
        assert_eq!(
            c.check(&body),
            Err("the answer has no licenseStatus".into())
        );
        assert!("=x".parse::<JsonCondition>().is_err());
        assert!("novalue"
            .parse::<JsonCondition>()
            .unwrap_err()
            .to_string()
            .contains("FIELD=VALUE"));
    }

    #[test]
    fn the_probe_port_prefers_published_ports_then_the_lowest_exposed() {
        let c = container(serde_json::json!({
            "Config": {"ExposedPorts": {"9000/tcp": {}, "8080/tcp": {}, "53/udp": {}}},
            "HostConfig": {"PortBindings": {"9000/tcp": [{"HostIp": "127.0.0.1", "HostPort": "19000"}]}}
        }));
        assert_eq!(probe_port(&c), Some(9000));
        let c = container(
            serde_json::json!({"Config": {"ExposedPorts": {"9000/tcp": {}, "8080/tcp": {}, "53/udp": {}}}}),
        );
        assert_eq!(probe_port(&c), Some(8080));
        assert_eq!(probe_port(&container(serde_json::json!({}))), None);
        let labelled = container(serde_json::json!({
            "Config": {"ExposedPorts": {"3306/tcp": {}, "8080/tcp": {}}, "Labels": {PROBE_PORT_LABEL: "8080"}}
        }));
        assert_eq!(probe_port(&labelled), Some(8080));
    }

    #[test]
    fn endpoints_go_direct_first_then_through_the_published_binding() {
        let c = container(serde_json::json!({
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {
                "Networks": {"bridge": {"IPAddress": "172.17.0.3"}, "none-yet": {"IPAddress": ""}},
                "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "::", "HostPort": "18080"}]}
            }
        }));
        let found: Vec<String> = routes(&c, 8080, &Machine::This, true)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "172.17.0.3:8080 (its address on network bridge)",
                "127.0.0.1:18080 (its port 8080 published as 127.0.0.1:18080)",
            ]
        );
        assert!(
            routes(&c, 8080, &Machine::This, true)[0].direct
                && !routes(&c, 8080, &Machine::This, true)[1].direct
        );
        // On another machine its bridge and its loopback are out of reach: only what it
        // publishes on its addresses, at that machine.
        let far = container(serde_json::json!({
            "HostConfig": {"NetworkMode": "bridge"},
            "NetworkSettings": {
                "Networks": {"bridge": {"IPAddress": "172.17.0.3"}},
                "Ports": {"8080/tcp": [{"HostIp": "0.0.0.0", "HostPort": "18080"}, {"HostIp": "127.0.0.1", "HostPort": "18081"}, {"HostIp": "192.0.2.7", "HostPort": "18082"}]}
            }
        }));
        let remote = Machine::Remote("quay-2.lan".into());
        let found: Vec<String> = routes(&far, 8080, &remote, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            found,
            [
                "quay-2.lan:18080 (its port 8080 published as quay-2.lan:18080)",
                "192.0.2.7:18082 (its port 8080 published as 192.0.2.7:18082)",
            ]
        );
        assert!(routes(&far, 8080, &remote, false).iter().all(|e| !e.direct));
        let host = container(serde_json::json!({"HostConfig": {"NetworkMode": "host"}}));
        assert_eq!(
            routes(&host, 80, &Machine::This, true)[0].to_string(),
            "127.0.0.1:80 (the host's network)"
        );
        // A rootless engine's network is in its own namespace (rootless Podman reports its
        // `podman` network at 10.88.0.2, which from here is the default route's): only what it
        // publishes on this machine's loopback is asked.
        let rootless: Vec<String> = routes(&c, 8080, &Machine::This, false)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            rootless,
            ["127.0.0.1:18080 (its port 8080 published as 127.0.0.1:18080)"]
        );
    }
}
