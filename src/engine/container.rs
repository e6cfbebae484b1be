//! A container as the engine reports it, in the words the rest of cutover asks it: its name,
//! image, environment, labels, state, mounts and networks. The engine's wire form (Docker's
//! inspect document, which Podman's service imitates) stays inside `engine/`: what reads a
//! container goes through these methods, and what builds a successor from one is
//! [`super::successor`].

use std::collections::HashMap;

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use sha2::Digest;

/// One container, as inspected; read from `docker inspect`'s own JSON form too (captured
/// fixtures).
#[derive(Debug, Clone, Default, PartialEq, serde::Deserialize)]
#[serde(transparent)]
pub struct Container(pub(super) ContainerInspectResponse);

/// A network a container is on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Attachment {
    pub network: String,
    /// Its address there, once it has one.
    pub address: Option<String>,
    /// The names it answers to there besides its own.
    pub aliases: Vec<String>,
}

/// A port key of the engine's (`8080/tcp`) when it is TCP.
fn tcp_port(key: &str) -> Option<u16> {
    key.strip_suffix("/tcp").and_then(|p| p.parse().ok())
}

/// A volume, bind or tmpfs mounted into a container.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Mount {
    /// `volume`, `bind`, `tmpfs`, ...
    pub kind: String,
    /// The volume's name; none for binds and tmpfs.
    pub name: Option<String>,
    /// Where its files are on the host (a bind's directory, a volume's data).
    pub source: Option<String>,
    /// Where the container sees it.
    pub destination: String,
    /// A volume's driver (`local`, or a plugin's that may store it elsewhere).
    pub driver: Option<String>,
    /// Whether the container may write to it.
    pub writable: bool,
}

impl Mount {
    /// Whether `path` lies on this mount (at it, or below it).
    pub fn holds(&self, path: &str) -> bool {
        let dest = self.destination.trim_end_matches('/');
        path == dest || path.starts_with(&format!("{dest}/"))
    }
}

impl From<ContainerInspectResponse> for Container {
    fn from(c: ContainerInspectResponse) -> Container {
        Container(c)
    }
}

impl Container {
    /// The engine's id, in full.
    pub fn id(&self) -> &str {
        self.0.id.as_deref().unwrap_or_default()
    }

    /// The name, without the engine's leading `/`.
    pub fn name(&self) -> &str {
        self.0
            .name
            .as_deref()
            .unwrap_or_default()
            .trim_start_matches('/')
    }

    /// The image reference it was created from, as written (`repo:tag`, or a digest form).
    pub fn image(&self) -> &str {
        self.0
            .config
            .as_ref()
            .and_then(|c| c.image.as_deref())
            .unwrap_or_default()
    }

    /// The id of the image it runs, which outlives a tag moved to another image.
    pub fn image_id(&self) -> &str {
        self.0.image.as_deref().unwrap_or_default()
    }

    /// When it was created, as the engine writes it (RFC 3339, sortable).
    pub fn created(&self) -> &str {
        self.0.created.as_deref().unwrap_or_default()
    }

    /// Its whole environment, its image's defaults included.
    pub fn env(&self) -> &[String] {
        self.0
            .config
            .as_ref()
            .and_then(|c| c.env.as_deref())
            .unwrap_or_default()
    }

    pub fn labels(&self) -> HashMap<String, String> {
        self.0
            .config
            .as_ref()
            .and_then(|c| c.labels.clone())
            .unwrap_or_default()
    }

    pub fn label(&self, name: &str) -> Option<&str> {
        self.0
            .config
            .as_ref()
            .and_then(|c| c.labels.as_ref())
            .and_then(|l| l.get(name))
            .map(String::as_str)
    }

    /// The command it runs: its entrypoint then its arguments.
    pub fn command(&self) -> Vec<String> {
        let config = self.0.config.as_ref();
        let part = |p: Option<&Vec<String>>| p.cloned().unwrap_or_default();
        let mut command = part(config.and_then(|c| c.entrypoint.as_ref()));
        command.extend(part(config.and_then(|c| c.cmd.as_ref())));
        command
    }

    /// Its own stop grace period (`--stop-timeout`), if it has one.
    pub fn stop_timeout(&self) -> Option<i64> {
        self.0.config.as_ref().and_then(|c| c.stop_timeout)
    }

    pub fn is_running(&self) -> bool {
        self.0
            .state
            .as_ref()
            .and_then(|s| s.running)
            .unwrap_or(false)
    }

    /// Whether the engine is restarting it after it exited (a crash loop under a restart
    /// policy).
    pub fn is_restarting(&self) -> bool {
        self.0
            .state
            .as_ref()
            .and_then(|s| s.restarting)
            .unwrap_or(false)
    }

    /// The exit code of its last run.
    pub fn exit_code(&self) -> Option<i64> {
        self.0.state.as_ref().and_then(|s| s.exit_code)
    }

    /// The health its HEALTHCHECK reports (`healthy`, `unhealthy`, `starting`), if it has one.
    pub fn health(&self) -> Option<String> {
        self.0
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.status)
            .filter(|s| !matches!(s, HealthStatusEnum::EMPTY | HealthStatusEnum::NONE))
            .map(|s| s.to_string())
    }

    /// Whether it was started with `--rm` (stopping it deletes it).
    pub fn removes_itself(&self) -> bool {
        self.0
            .host_config
            .as_ref()
            .and_then(|h| h.auto_remove)
            .unwrap_or(false)
    }

    /// Its network mode: `default`, `bridge`, `host`, `none`, `container:ID` or a network's name.
    pub fn network_mode(&self) -> &str {
        self.0
            .host_config
            .as_ref()
            .and_then(|h| h.network_mode.as_deref())
            .unwrap_or("default")
    }

    /// The containers it takes volumes from (`--volumes-from`), as given (`NAME[:ro]`).
    pub fn volumes_from(&self) -> Vec<String> {
        self.0
            .host_config
            .as_ref()
            .and_then(|h| h.volumes_from.clone())
            .unwrap_or_default()
    }

    pub fn mounts(&self) -> Vec<Mount> {
        self.0
            .mounts
            .iter()
            .flatten()
            .map(|m| Mount {
                kind: m.typ.as_ref().map(|t| t.to_string()).unwrap_or_default(),
                name: m.name.clone().filter(|n| !n.is_empty()),
                source: m.source.clone().filter(|s| !s.is_empty()),
                destination: m.destination.clone().unwrap_or_default(),
                driver: m.driver.clone().filter(|d| !d.is_empty()),
                writable: m.rw.unwrap_or(true),
            })
            .collect()
    }

    /// The mount (volume or bind) that holds `path`, if any: mounted at the file itself or at a
    /// directory above it. A file there is shared with the successor already.
    pub fn mount_holding(&self, path: &str) -> Option<Mount> {
        self.mounts().into_iter().find(|m| m.holds(path))
    }

    /// The networks it is on, with its address and aliases on each, by network name.
    pub fn attachments(&self) -> Vec<Attachment> {
        let mut attachments: Vec<Attachment> = self
            .0
            .network_settings
            .as_ref()
            .and_then(|s| s.networks.as_ref())
            .into_iter()
            .flatten()
            .map(|(name, ep)| Attachment {
                network: name.clone(),
                address: ep.ip_address.clone().filter(|a| !a.is_empty()),
                aliases: ep.aliases.clone().unwrap_or_default(),
            })
            .collect();
        attachments.sort_by(|a, b| a.network.cmp(&b.network));
        attachments
    }

    /// Its legacy links (`--link`), in the form create takes them (`target:alias`).
    pub fn links(&self) -> Vec<String> {
        self.0
            .host_config
            .as_ref()
            .and_then(|h| h.links.as_ref())
            .into_iter()
            .flatten()
            .map(|l| super::create_form_link(l))
            .collect()
    }

    /// How many times the engine restarted it under its restart policy.
    pub fn restart_count(&self) -> i64 {
        self.0.restart_count.unwrap_or(0)
    }

    /// Whether it (its own setting or its image's) has a HEALTHCHECK that is not disabled with
    /// `NONE`.
    pub fn has_healthcheck(&self) -> bool {
        let test = self
            .0
            .config
            .as_ref()
            .and_then(|c| c.healthcheck.as_ref())
            .and_then(|h| h.test.as_ref());
        test.is_some_and(|t| !t.is_empty() && t[0] != "NONE")
    }

    /// Whether its HEALTHCHECK ran at least once: its health log has an entry.
    pub fn healthcheck_ran(&self) -> bool {
        self.0
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.log.as_ref())
            .is_some_and(|l| !l.is_empty())
    }

    /// What its HEALTHCHECK's last probe printed.
    pub fn last_health_output(&self) -> Option<String> {
        self.0
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.log.as_ref())
            .and_then(|l| l.last())
            .and_then(|r| r.output.clone())
    }

    /// Its TCP ports it asked to publish, each with the host ports asked for it (empty strings
    /// where the engine was to choose).
    fn asked_to_publish(&self) -> Vec<(u16, Vec<String>)> {
        let bindings = self
            .0
            .host_config
            .as_ref()
            .and_then(|h| h.port_bindings.as_ref());
        bindings
            .into_iter()
            .flatten()
            .filter_map(|(key, to)| {
                let hosts = to.iter().flatten();
                Some((
                    tcp_port(key)?,
                    hosts
                        .map(|b| b.host_port.clone().unwrap_or_default())
                        .collect(),
                ))
            })
            .collect()
    }

    /// The TCP ports it asked to publish (whether or not the engine could), lowest first.
    pub fn tcp_ports_to_publish(&self) -> Vec<u16> {
        let mut ports: Vec<u16> = self
            .asked_to_publish()
            .into_iter()
            .filter(|(_, hosts)| !hosts.is_empty())
            .map(|(port, _)| port)
            .collect();
        ports.sort();
        ports
    }

    /// The container's TCP port it asked to publish on host port `host_port`, if any.
    pub fn tcp_port_published_as(&self, host_port: u16) -> Option<u16> {
        let wanted = host_port.to_string();
        self.asked_to_publish()
            .into_iter()
            .find(|(_, hosts)| hosts.contains(&wanted))
            .map(|(port, _)| port)
    }

    /// The TCP ports it (or its image) exposes, lowest first.
    pub fn exposed_tcp_ports(&self) -> Vec<u16> {
        let exposed = self
            .0
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.as_ref());
        let mut ports: Vec<u16> = exposed
            .into_iter()
            .flatten()
            .filter_map(|k| tcp_port(k))
            .collect();
        ports.sort();
        ports
    }

    /// The host ports its container ports are published on: `(container port, protocol, host
    /// address, host port)`.
    pub fn published(&self) -> Vec<(u16, String, String, u16)> {
        let mut published = Vec::new();
        let ports = self
            .0
            .network_settings
            .as_ref()
            .and_then(|s| s.ports.as_ref());
        for (key, bindings) in ports.into_iter().flatten() {
            let (port, proto) = key.split_once('/').unwrap_or((key, "tcp"));
            let Ok(port) = port.parse::<u16>() else {
                continue;
            };
            for b in bindings.iter().flatten() {
                if let Some(host_port) = b.host_port.as_deref().and_then(|p| p.parse().ok()) {
                    let ip = b.host_ip.clone().unwrap_or_default();
                    published.push((port, proto.to_string(), ip, host_port));
                }
            }
        }
        published.sort();
        published
    }

    /// The create request of another server of the same image with this one's own settings
    /// (environment, command, user, working directory) and none of its storage or networks:
    /// where a throwaway or a rehearsal's copy of a database server starts.
    pub fn same_server(&self) -> super::Helper {
        let config = self.0.config.clone().unwrap_or_default();
        super::Helper {
            image: self.image_id().to_string(),
            env: config.env,
            cmd: config.cmd,
            entrypoint: config.entrypoint,
            user: config.user,
            working_dir: config.working_dir,
            ..Default::default()
        }
    }

    /// The same container as if it were named `name`: a renamed old container read as the
    /// member it stands for.
    pub fn named(mut self, name: &str) -> Container {
        self.0.name = Some(format!("/{name}"));
        self
    }

    /// The Swarm service whose task it is: Swarm replaces such a container itself, and would
    /// undo any change made to it alone.
    pub fn swarm_service(&self) -> Option<String> {
        self.label("com.docker.swarm.service.name")
            .map(str::to_string)
    }
}

impl Container {
    /// A hash of the settings an upgrade carries to the successor (its configuration, host
    /// configuration and networks), so that a plan made earlier can tell this container was
    /// changed since without writing any of its values (environment secrets among them) down.
    /// Its state (running, addresses, health) does not count.
    pub fn fingerprint(&self) -> String {
        let mut networks: Vec<String> = self.attachments().into_iter().map(|a| a.network).collect();
        networks.sort();
        let settings = serde_json::json!({
            "config": self.0.config,
            "host_config": self.0.host_config,
            "networks": networks,
        });
        // A map's keys come sorted (serde_json without `preserve_order`), so the same settings
        // always hash the same.
        format!(
            "sha256:{:x}",
            sha2::Sha256::digest(settings.to_string().as_bytes())
        )
    }
}

#[cfg(test)]
impl Container {
    /// The same container with `patch` (the engine's own JSON form, `{"Config": {"Image":
    /// ...}}`) merged over it: how unit tests outside the engine make the containers they need.
    pub fn patched(&self, patch: serde_json::Value) -> Container {
        fn merge(into: &mut serde_json::Value, patch: serde_json::Value) {
            match (into, patch) {
                (serde_json::Value::Object(into), serde_json::Value::Object(patch)) => {
                    for (key, value) in patch {
                        merge(into.entry(key).or_insert(serde_json::Value::Null), value);
                    }
                }
                (into, patch) => *into = patch,
            }
        }
        let mut wire = serde_json::to_value(&self.0).expect("an inspect document serialises");
        merge(&mut wire, patch);
        Container(serde_json::from_value(wire).expect("the patch fits an inspect document"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from(json: serde_json::Value) -> Container {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn a_disabled_healthcheck_is_none() {
        assert!(!Container::default().has_healthcheck());
        let none = from(serde_json::json!({"Config": {"Healthcheck": {"Test": ["NONE"]}}}));
        assert!(!none.has_healthcheck());
        let set = from(serde_json::json!({"Config": {"Healthcheck": {"Test": ["CMD", "true"]}}}));
        assert!(set.has_healthcheck());
    }

    #[test]
    fn a_mount_holds_what_lies_at_or_below_it() {
        let c = from(serde_json::json!({"Mounts": [
            {"Type": "volume", "Name": "data", "Destination": "/var/lib/data/", "RW": false},
            {"Type": "bind", "Source": "/srv/conf", "Destination": "/conf"}
        ]}));
        let data = c.mount_holding("/var/lib/data/db/file").unwrap();
        assert_eq!(
            (data.kind.as_str(), data.name.as_deref(), data.writable),
            ("volume", Some("data"), false)
        );
        assert!(c.mount_holding("/var/lib/database").is_none());
        let conf = c.mount_holding("/conf").unwrap();
        assert_eq!(
            (conf.kind.as_str(), conf.source.as_deref()),
            ("bind", Some("/srv/conf"))
        );
    }

    #[test]
    fn ports_are_read_as_asked_and_as_published() {
        let c = from(serde_json::json!({
            "Config": {"ExposedPorts": {"9000/tcp": {}, "53/udp": {}, "8443/tcp": {}}},
            "HostConfig": {"PortBindings": {
                "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18443"}],
                "9000/tcp": [{"HostIp": "", "HostPort": ""}]
            }},
            "NetworkSettings": {"Ports": {
                "8443/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18443"}],
                "9000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "32768"}],
                "53/udp": null
            }}
        }));
        assert_eq!(c.exposed_tcp_ports(), vec![8443, 9000]);
        assert_eq!(c.tcp_ports_to_publish(), vec![8443, 9000]);
        assert_eq!(c.tcp_port_published_as(18443), Some(8443));
        assert_eq!(c.tcp_port_published_as(32768), None);
        assert_eq!(
            c.published(),
            vec![
                (8443, "tcp".into(), "127.0.0.1".into(), 18443),
                (9000, "tcp".into(), "0.0.0.0".into(), 32768)
            ]
        );
    }

    #[test]
    fn the_fingerprint_changes_with_what_an_upgrade_carries_only() {
        let c = from(serde_json::json!({
            "Id": "abc", "Config": {"Image": "app:1", "Env": ["TOKEN=s3cret"]},
            "HostConfig": {"Binds": ["/srv:/data"]},
            "State": {"Running": true},
            "NetworkSettings": {"Networks": {"app": {"IPAddress": "172.18.0.2"}}}
        }));
        let print = c.fingerprint();
        assert!(print.starts_with("sha256:") && !print.contains("s3cret"));
        let restarted = c.patched(serde_json::json!({
            "State": {"Running": false},
            "NetworkSettings": {"Networks": {"app": {"IPAddress": "172.18.0.9"}}}
        }));
        assert_eq!(restarted.fingerprint(), print);
        for changed in [
            serde_json::json!({"Config": {"Env": ["TOKEN=other"]}}),
            serde_json::json!({"Config": {"Image": "app:2"}}),
            serde_json::json!({"HostConfig": {"Binds": ["/srv:/other"]}}),
            serde_json::json!({"NetworkSettings": {"Networks": {"more": {}}}}),
        ] {
            assert_ne!(c.patched(changed.clone()).fingerprint(), print, "{changed}");
        }
    }
}
