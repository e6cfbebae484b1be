//! Where Podman's Docker-compatible API (`podman system service`) answers otherwise than
//! Docker's, its answers made Docker's, so that the rest of cutover knows one engine. Each
//! difference is named with where it was seen (Debian's podman 4.3.1, rootful).

use std::time::Duration;

use bollard::models::{ContainerInspectResponse, ResourcesUlimits, SystemVersion};

use super::reference::ImageRef;

/// Podman reports a container between its exit and its cleanup or restart (by its restart
/// policy) as `"Status": "stopped"`, a state Docker's API does not have, which no Docker client
/// reads (`unknown variant `stopped``). It lasts a moment, so an inspect is asked again, every
/// [`TRANSIENT_POLL`], for at most [`TRANSIENT_FOR`]: seen on a container crashing under
/// `--restart always`, a third of the answers.
pub const TRANSIENT_FOR: Duration = Duration::from_secs(10);
pub const TRANSIENT_POLL: Duration = Duration::from_millis(100);

/// Whether a request failed on that moment: an inspect cannot read the state, or fails
/// reading the process that just ended (`read /proc/PID/cgroup: no such process`); a forced
/// remove is refused (`container state improper: stopped`).
pub fn transient_state(error: &str) -> bool {
    [
        "unknown variant `stopped`",
        "container state improper",
        ": no such process",
    ]
    .iter()
    .any(|seen| error.contains(seen))
}

/// Whether a request failed on a container removed while it was read: Podman resolves a name
/// to an id, then finds the id gone and answers 500, not 404, `container ID does not exist in
/// database: no such container` (seen here: an inspect by name while another client removed
/// it; the list fails so too, podman issues #10120 and #10225). Such a container is absent.
pub fn removed_meanwhile(error: &str) -> bool {
    error.contains("does not exist in database: no such container")
}

/// The commands that tell a file's owner inside a container, tried in order (coreutils' and
/// busybox's `stat`, else `ls`): Podman's archive API names every file's owner `0:0` (measured
/// on 4.3.1, a file of 1000:1000 in a container's own layer), though its archive upload keeps
/// the owner a header gives. A file carried through it would become root's.
pub fn owner_commands(path: &str) -> [Vec<String>; 2] {
    [
        ["stat", "-c", "%u:%g", "--", path]
            .map(String::from)
            .to_vec(),
        ["ls", "-nd", "--", path].map(String::from).to_vec(),
    ]
}

/// The owner one of [`owner_commands`] printed: `1000:1000` from `stat`, or the third and
/// fourth fields of `ls -nd`'s line.
pub fn owner_in(printed: &str) -> Option<(u64, u64)> {
    let line = printed.lines().next()?.trim();
    let (uid, gid) = match line.split_once(':') {
        Some((uid, gid)) if !line.contains(' ') => (uid, gid),
        _ => {
            let fields: Vec<&str> = line.split_whitespace().collect();
            (*fields.get(2)?, *fields.get(3)?)
        }
    };
    Some((uid.parse().ok()?, gid.parse().ok()?))
}

/// The label by which Podman's own `podman auto-update` (run by its systemd timer) pulls and
/// restarts a container (`registry` or `local`; docs.podman.io podman-auto-update(1)).
pub const AUTO_UPDATE_LABEL: &str = "io.containers.autoupdate";

/// Why an unattended pass does not move a container Podman's own auto-update manages too, or
/// `None` when its labels do not ask for that: two tools would pull and restart it, each behind
/// the other's back.
pub fn auto_update_race(labels: &std::collections::HashMap<String, String>) -> Option<String> {
    let policy = labels.get(AUTO_UPDATE_LABEL).filter(|v| !v.is_empty())?;
    Some(format!(
        "Podman's own auto-update also manages it (label {AUTO_UPDATE_LABEL}={policy}): two tools would race; remove that label to leave it to cutover, or upgrade it by hand"
    ))
}

/// Why a container's HEALTHCHECK that never ran stays `starting` on Podman: Podman 4.3 runs
/// each from a systemd timer, and without systemd (a container, WSL) none is set (its service
/// logs "unable to get systemd connection to add healthchecks", measured on 4.3.1).
pub const HEALTHCHECK_NEVER_RAN: &str = "Podman never ran its HEALTHCHECK: Podman runs them from systemd timers, and where no systemd runs, none runs and its status stays `starting` (run Podman's service under systemd, or the container without its HEALTHCHECK, `--no-healthcheck`)";

/// The infra container of the Podman pod `c` belongs to, or `None` when it is in none. Podman's
/// Docker-compatible inspect does not name a container's pod (its own libpod API does); what it
/// shows is that the container joins another's network, IPC and UTS namespaces
/// (`"NetworkMode": "container:ID"`), and that other is the pod's infra container, named
/// `<first 12 of the pod's id>-infra` and running `/catatonit -P` (seen on Debian's podman
/// 4.3.1 for `podman pod create` and `podman run --pod`). A container recreated through the
/// Docker-compatible API would join those namespaces but not the pod: `podman pod stop`,
/// `restart` and the pod's systemd unit would no longer include it.
pub async fn pod_infra(
    engine: &dyn super::Engine,
    c: &super::Container,
) -> Result<Option<String>, super::EngineError> {
    let Some(other) = c.network_mode().strip_prefix("container:") else {
        return Ok(None);
    };
    if engine.other_than_docker().is_none() {
        return Ok(None);
    }
    let Some(infra) = engine.inspect(other).await? else {
        return Ok(None);
    };
    let named = infra
        .name()
        .strip_suffix("-infra")
        .is_some_and(|id| id.len() == 12 && id.bytes().all(|b| b.is_ascii_hexdigit()));
    let pauses = infra.command() == ["/catatonit", "-P"];
    Ok((named || pauses).then(|| infra.name().to_string()))
}

/// Whether Podman names the image as one built or tagged on its host: `podman build -t app:1`
/// and `podman tag` make `localhost/app:1`, which containers made from the short name report
/// (`Config.Image`, seen on podman 4.3.1). No registry serves it: its Docker-compatible pull
/// asks `https://localhost/v2/` and fails. A short name Podman found in a registry is reported
/// in full (`127.0.0.1:5000/app:1`), found locally or through `unqualified-search-registries`.
pub fn is_built_here(image: &ImageRef) -> bool {
    image.registry() == Some("localhost")
}

/// Why `check` asks no registry about a container's image, when Podman built it on its host.
pub fn built_here(engine: &dyn super::Engine, image: &str) -> Option<String> {
    engine.other_than_docker()?;
    let image = ImageRef::parse(image).filter(is_built_here)?;
    Some(format!(
        "{image} was built or tagged on Podman's host (`localhost/`): no registry to ask; build or tag the next version as {}:TAG there, then `cutover upgrade --to TAG`",
        image.repository
    ))
}

/// Why a pull of an image Podman would build on its host cannot be done: the tag is not there.
pub fn not_built_here(image: &ImageRef) -> String {
    format!(
        "{image} is not on Podman's host, and no registry serves `localhost/` images: build or tag it there first (`podman build -t {image}` or `podman tag`); nothing was changed"
    )
}

/// Whether an archive the engine gave of a directory names its entries from the directory
/// itself (`/`, `/x`) rather than after it (`payload`, `payload/x`, as Docker names them, and
/// Podman for a running container): Podman 4.3.1 does so for a stopped container's volume
/// (measured). Such an archive is extracted into the directory, not beside it.
pub fn rooted_at_the_directory(first_entry: &[u8]) -> bool {
    first_entry.starts_with(b"/")
}

/// Why a container in a Podman pod is not moved.
pub fn pod_refusal(name: &str, infra: &str) -> String {
    format!(
        "{name} is in a Podman pod (it shares the namespaces of the pod's infra container {infra}): a new container made through Podman's Docker-compatible API would not be a member of the pod, so cutover does not move it; upgrade it with Podman (`podman pod` and `podman run --pod`), or run it outside a pod"
    )
}

/// Whether the engine that answered `/version` is Podman: its components name it.
pub fn is_podman(version: &SystemVersion) -> bool {
    version
        .components
        .iter()
        .flatten()
        .any(|c| c.name.starts_with("Podman"))
}

/// The engine as its `/version` names its first component: `Podman Engine 4.3.1`.
pub fn product(version: &SystemVersion) -> String {
    match version.components.iter().flatten().next() {
        Some(c) => format!("{} {}", c.name, c.version),
        None => format!(
            "an engine of version {}",
            version.version.as_deref().unwrap_or("?")
        ),
    }
}

/// A container as Docker would report it:
/// - Podman names its ulimits as the kernel does (`RLIMIT_NOFILE`) but its create takes
///   Docker's names (`nofile`) and refuses its own: `ulimit option "RLIMIT_NOFILE=1024:1024"
///   requires name=SOFT:HARD ... invalid ulimit type`;
/// - it gives every container a random MAC address, reported as the endpoint's, which a MAC
///   set with `podman run --mac-address` looks exactly like, and its create ignores the
///   endpoint's MAC the Docker API sends: none is carried (a Docker engine before 26 derives
///   its own from the address, which cutover does not carry either);
/// - it writes `container=podman` and `HOSTNAME=` its hostname into every container's
///   environment, where Docker's config has neither: carried, the new container's `HOSTNAME`
///   would name the old one;
/// - a container its Docker-compatible API created without a stop timeout reports 0 seconds
///   (Docker reports none, and stops with 10): stopped so, a database server is killed at once
///   and its data left mid-write (seen: PostgreSQL then found no valid checkpoint in what a
///   rollback copied back). Read as none: stopped with the default grace period;
/// - it lists every volume the container mounts in `HostConfig.Binds`, an anonymous one (an
///   image's `VOLUME`, `-v /path`, one taken by `--volumes-from`) by its 64-hex name (measured
///   on 4.3.1), where Docker lists only what `-v` named: a new version whose image declares a
///   new `VOLUME` would seem to have gained a mount its predecessor lacked (seen: ProGet 2025's
///   `/var/proget/database`), and such a volume, carried by name, would bypass
///   `--volumes-from`. Left out, as Docker leaves it out; the new container still gets it from
///   its predecessor by `--volumes-from`, as on Docker.
pub fn as_docker(mut c: ContainerInspectResponse) -> ContainerInspectResponse {
    let anonymous: Vec<String> = c
        .mounts
        .iter()
        .flatten()
        .filter(|m| m.typ.as_deref() == Some("volume"))
        .filter_map(|m| m.name.clone())
        .filter(|name| name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    if let Some(binds) = c.host_config.as_mut().and_then(|h| h.binds.as_mut()) {
        binds.retain(|bind| {
            let source = bind.split(':').next().unwrap_or_default();
            !anonymous.iter().any(|name| name == source)
        });
    }
    if let Some(config) = c.config.as_mut() {
        if config.stop_timeout == Some(0) {
            config.stop_timeout = None;
        }
        let own = format!(
            "HOSTNAME={}",
            config.hostname.as_deref().unwrap_or_default()
        );
        if let Some(env) = config.env.as_mut() {
            env.retain(|e| e != "container=podman" && *e != own);
        }
    }
    let networks = c
        .network_settings
        .as_mut()
        .and_then(|s| s.networks.as_mut());
    for endpoint in networks.into_iter().flat_map(|n| n.values_mut()) {
        endpoint.mac_address = None;
    }
    if let Some(ulimits) = c.host_config.as_mut().and_then(|h| h.ulimits.as_mut()) {
        for ulimit in ulimits.iter_mut() {
            *ulimit = ResourcesUlimits {
                name: ulimit.name.as_deref().map(ulimit_name),
                ..ulimit.clone()
            };
        }
    }
    c
}

/// `RLIMIT_NOFILE` as Docker names it, `nofile`; a Docker name as it is.
fn ulimit_name(name: &str) -> String {
    name.strip_prefix("RLIMIT_")
        .map(str::to_ascii_lowercase)
        .unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{
        EndpointSettings, HostConfig, MountPoint, NetworkSettings, SystemVersionComponents,
    };

    #[test]
    fn a_container_podmans_auto_update_manages_is_named() {
        let labels = |v: &str| [(AUTO_UPDATE_LABEL.to_string(), v.to_string())].into();
        let race = auto_update_race(&labels("registry")).unwrap();
        assert!(race.contains("io.containers.autoupdate=registry"), "{race}");
        assert_eq!(auto_update_race(&labels("")), None);
        assert_eq!(auto_update_race(&Default::default()), None);
    }

    #[test]
    fn only_podmans_localhost_names_are_built_here() {
        let built = |text: &str| is_built_here(&ImageRef::parse(text).unwrap());
        assert!(built("localhost/app:1"));
        assert!(!built("localhost:5000/app:1"));
        assert!(!built("127.0.0.1:5000/app:1"));
        assert!(!built("app:1"));
    }

    #[test]
    fn an_archive_rooted_at_the_directory_is_told_by_its_first_entry() {
        assert!(rooted_at_the_directory(b"/"));
        assert!(!rooted_at_the_directory(b"payload"));
        assert!(!rooted_at_the_directory(b"payload/x"));
    }

    #[test]
    fn podman_is_told_by_its_version_components() {
        let of = |name: &str| SystemVersion {
            components: Some(vec![SystemVersionComponents {
                name: name.into(),
                version: "4.3.1".into(),
                details: None,
            }]),
            ..Default::default()
        };
        assert!(is_podman(&of("Podman Engine")));
        assert!(!is_podman(&of("Engine")));
    }

    #[test]
    fn podmans_own_variables_and_zero_grace_are_not_the_containers() {
        let c = ContainerInspectResponse {
            config: Some(bollard::models::ContainerConfig {
                stop_timeout: Some(0),
                hostname: Some("1d3fcfb0c689".into()),
                env: Some(vec![
                    "KEPT=yes".into(),
                    "container=podman".into(),
                    "HOSTNAME=1d3fcfb0c689".into(),
                    "HOSTNAME_OF_DB=db".into(),
                ]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let config = as_docker(c).config.unwrap();
        assert_eq!(config.env.unwrap(), ["KEPT=yes", "HOSTNAME_OF_DB=db"]);
        assert_eq!(config.stop_timeout, None);
    }

    #[test]
    fn podmans_random_macs_are_not_carried() {
        let c = ContainerInspectResponse {
            network_settings: Some(NetworkSettings {
                networks: Some(
                    [(
                        "podman".to_string(),
                        EndpointSettings {
                            mac_address: Some("ee:a5:b1:20:8e:fb".into()),
                            ip_address: Some("10.89.77.3".into()),
                            ..Default::default()
                        },
                    )]
                    .into(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        };
        let endpoint = as_docker(c).network_settings.unwrap().networks.unwrap()["podman"].clone();
        assert_eq!(endpoint.mac_address, None);
        assert_eq!(endpoint.ip_address.as_deref(), Some("10.89.77.3"));
    }

    #[test]
    fn a_files_owner_is_read_from_stat_or_ls() {
        assert_eq!(owner_in("1000:1000\n"), Some((1000, 1000)));
        assert_eq!(
            owner_in("-rw-r-----    1 999      998            3 Dec  8 01:15 /app/.env"),
            Some((999, 998))
        );
        assert_eq!(owner_in("stat: can't stat '/x': No such file"), None);
        assert_eq!(owner_in(""), None);
        assert_eq!(
            owner_commands("/app/.env")[0].join(" "),
            "stat -c %u:%g -- /app/.env"
        );
    }

    #[test]
    fn podmans_anonymous_volumes_are_not_binds() {
        let anonymous = "10ad937e0076fc0e6380ba000be73c7463e4dc6a4a45271584fdbb2368fae4ed";
        let volume = |name: &str, at: &str| MountPoint {
            typ: Some("volume".into()),
            name: Some(name.into()),
            destination: Some(at.into()),
            ..Default::default()
        };
        // As Podman 4.3.1 reported `-v /data -v named:/named -v /srv:/srv`.
        let c = ContainerInspectResponse {
            host_config: Some(HostConfig {
                binds: Some(vec![
                    format!("{anonymous}:/data:rw,rprivate,nosuid,nodev,rbind"),
                    "named:/named:rw,rprivate,nosuid,nodev,rbind".into(),
                    "/srv:/srv:rw,rprivate,rbind".into(),
                ]),
                ..Default::default()
            }),
            mounts: Some(vec![volume(anonymous, "/data"), volume("named", "/named")]),
            ..Default::default()
        };
        assert_eq!(
            as_docker(c).host_config.unwrap().binds.unwrap(),
            [
                "named:/named:rw,rprivate,nosuid,nodev,rbind",
                "/srv:/srv:rw,rprivate,rbind"
            ]
        );
    }

    #[test]
    fn podmans_ulimit_names_become_dockers() {
        let limit = |name: &str| ResourcesUlimits {
            name: Some(name.into()),
            soft: Some(1024),
            hard: Some(2048),
        };
        let c = ContainerInspectResponse {
            host_config: Some(HostConfig {
                ulimits: Some(vec![limit("RLIMIT_NOFILE"), limit("nproc")]),
                ..Default::default()
            }),
            ..Default::default()
        };
        let ulimits = as_docker(c).host_config.unwrap().ulimits.unwrap();
        assert_eq!(ulimits, [limit("nofile"), limit("nproc")]);
    }
}
