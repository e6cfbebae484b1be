use bollard::models::{ImageInspect, MountPoint};

use crate::engine::Origin;

use super::*;

/// A real `docker inspect` of a container with networks, ports, volumes, env, labels, user,
/// limits and log options, and of the image it was created from (`fixtures/inspect/`).
pub(crate) fn fixture() -> (Container, Origin) {
    let container =
        serde_json::from_str(include_str!("../../../fixtures/inspect/web-container.json")).unwrap();
    let image: ImageInspect =
        serde_json::from_str(include_str!("../../../fixtures/inspect/demo-1-image.json")).unwrap();
    let origin = Origin {
        image: image.config.unwrap(),
        vanished_volumes_from: vec![],
    };
    (container, origin)
}

fn spec_for(container: &Container, image: &Origin) -> SuccessorSpec {
    let old = Predecessor {
        inspect: container,
        origin: image,
    };
    successor_spec(&old, "127.0.0.1:5000/demo:2")
}

#[test]
fn carries_what_the_user_set_and_drops_the_old_image_defaults() {
    let (container, image) = fixture();
    let spec = spec_for(&container, &image);
    let body = &spec.body;
    assert_eq!(body.image.as_deref(), Some("127.0.0.1:5000/demo:2"));
    assert_eq!(
        body.env.clone().unwrap(),
        vec![
            "APP_COLOR=red",
            "DB_PASSWORD=fixture-password",
            "GREETING=hello"
        ],
        "PATH and APP_VERSION came from the image; APP_COLOR=red overrides the image's blue"
    );
    assert_eq!(
        body.labels.clone().unwrap(),
        HashMap::from([("team".to_string(), "ops".to_string())])
    );
    assert_eq!(body.cmd, None);
    assert_eq!(body.entrypoint, None);
    assert_eq!(body.volumes, None, "the image's VOLUME /data");
    assert_eq!(body.exposed_ports, None, "the image's EXPOSE 8080");
    assert_eq!(body.hostname, None, "the engine's short-id hostname");
    assert_eq!(body.user.as_deref(), Some("1000:1000"));
    assert_eq!(body.stop_timeout, Some(5));
    let hc = body.host_config.as_ref().unwrap();
    assert_eq!(
        hc.volumes_from.clone().unwrap(),
        vec![container.0.id.clone().unwrap()]
    );
    assert_eq!(hc.memory, Some(64 * 1024 * 1024));
    assert_eq!(hc.init, Some(true));
    assert!(hc.port_bindings.as_ref().unwrap().contains_key("8080/tcp"));
}

#[test]
fn networks_keep_user_aliases_without_the_engine_short_id() {
    let (container, image) = fixture();
    let spec = spec_for(&container, &image);
    let primary = spec
        .body
        .networking_config
        .unwrap()
        .endpoints_config
        .unwrap();
    let front = &primary["fx-front"];
    assert_eq!(front.aliases.clone().unwrap(), vec!["web"]);
    assert_eq!(front.network_id, None, "runtime fields are not carried");
    assert_eq!(front.ip_address, None);
    assert_eq!(
        front.mac_address, None,
        "the engine derived this MAC from the IP"
    );
    assert_eq!(
        spec.extra_networks.keys().collect::<Vec<_>>(),
        vec!["fx-back"]
    );
    assert_eq!(
        spec.extra_networks["fx-back"].aliases.clone().unwrap(),
        vec!["web-internal"]
    );
}

#[test]
fn entrypoint_and_command_overrides() {
    let image = ImageConfig {
        entrypoint: Some(vec!["/entry".into()]),
        cmd: Some(vec!["serve".into()]),
        ..Default::default()
    };
    let v = |items: &[&str]| Some(items.iter().map(|s| s.to_string()).collect::<Vec<_>>());
    // Nothing overridden: both follow the new image.
    assert_eq!(
        user_command(v(&["/entry"]), v(&["serve"]), &image),
        (None, None)
    );
    // Only the command.
    assert_eq!(
        user_command(v(&["/entry"]), v(&["migrate"]), &image),
        (None, v(&["migrate"]))
    );
    // Another entrypoint, with and without a command.
    assert_eq!(
        user_command(v(&["/bin/sh"]), v(&["-c", "x"]), &image),
        (v(&["/bin/sh"]), v(&["-c", "x"]))
    );
    assert_eq!(
        user_command(v(&["/bin/sh"]), None, &image),
        (v(&["/bin/sh"]), None)
    );
    // `--entrypoint /entry` made the engine drop the image's command: repeat the override.
    assert_eq!(
        user_command(v(&["/entry"]), None, &image),
        (v(&["/entry"]), None)
    );
}

#[test]
fn an_anonymous_mount_is_pinned_to_the_old_volume() {
    let (mut container, image) = fixture();
    let mount: bollard::models::Mount =
        serde_json::from_value(serde_json::json!({"Type": "volume", "Target": "/cache"})).unwrap();
    container.0.host_config.as_mut().unwrap().mounts = Some(vec![mount]);
    let point: MountPoint = serde_json::from_value(
        serde_json::json!({"Type": "volume", "Name": "abc123", "Destination": "/cache"}),
    )
    .unwrap();
    container.0.mounts.as_mut().unwrap().push(point);
    let spec = spec_for(&container, &image);
    let mounts = spec.body.host_config.unwrap().mounts.unwrap();
    assert_eq!(mounts[0].source.as_deref(), Some("abc123"));
}

#[test]
fn vanished_volumes_from_are_dropped_and_said() {
    let (mut container, image) = fixture();
    container.0.host_config.as_mut().unwrap().volumes_from =
        Some(vec!["gone:ro".into(), "sidecar".into()]);
    let old = Predecessor {
        inspect: &container,
        origin: &Origin {
            vanished_volumes_from: vec!["gone".to_string()],
            ..image
        },
    };
    let spec = successor_spec(&old, "demo:2");
    let from = spec.body.host_config.unwrap().volumes_from.unwrap();
    assert_eq!(
        from,
        vec!["sidecar".to_string(), container.0.id.clone().unwrap()]
    );
    assert_eq!(spec.notes.len(), 1);
    assert!(spec.notes[0].contains("gone"));
}

#[test]
fn a_shared_network_namespace_carries_no_networks_nor_hostname() {
    let (mut container, image) = fixture();
    container.0.host_config.as_mut().unwrap().network_mode = Some("container:db".into());
    container.0.config.as_mut().unwrap().hostname = Some("custom".into());
    let spec = spec_for(&container, &image);
    assert!(spec.body.networking_config.is_none());
    assert!(spec.extra_networks.is_empty());
    assert_eq!(spec.body.hostname, None);
}

#[test]
fn links_and_macs() {
    assert_eq!(
        crate::engine::create_form_link("/db:/web/database"),
        "db:database"
    );
    assert_eq!(
        crate::engine::create_form_link("cache:cache"),
        "cache:cache"
    );
    assert!(engine_derived_mac("02:42:ac:11:00:02", Some("172.17.0.2")));
    assert!(!engine_derived_mac("02:42:ac:11:00:09", Some("172.17.0.2")));
    assert!(!engine_derived_mac("de:ad:be:ef:00:01", None));
}

/// The created container as the engine reports it: here, the old one plus what the successor
/// gets on top (the `VolumesFrom` of the old container).
fn created_from(container: &Container) -> Container {
    let mut created = container.clone();
    created.0.host_config.as_mut().unwrap().volumes_from =
        Some(vec![container.0.id.clone().unwrap()]);
    created
}

#[test]
fn verify_accepts_a_faithful_successor() {
    let (container, image) = fixture();
    let spec = spec_for(&container, &image);
    assert_eq!(verify(&spec, &created_from(&container)), vec![]);
}

#[test]
fn verify_names_every_lost_setting_with_secrets_masked() {
    let (container, image) = fixture();
    let spec = spec_for(&container, &image);
    let mut created = created_from(&container);
    created.0.host_config.as_mut().unwrap().memory = Some(0);
    let networks = created
        .0
        .network_settings
        .as_mut()
        .unwrap()
        .networks
        .as_mut()
        .unwrap();
    networks.get_mut("fx-back").unwrap().aliases = Some(vec![]);
    let env = created.0.config.as_mut().unwrap().env.as_mut().unwrap();
    env.retain(|e| !e.starts_with("DB_PASSWORD"));
    let diffs = verify(&spec, &created);
    let paths: Vec<&str> = diffs.iter().map(|d| d.path.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "Config.Env",
            "HostConfig.Memory",
            "Networks.fx-back.Aliases"
        ]
    );
    assert_eq!(diffs[0].expected, "DB_PASSWORD=***");
}

#[test]
fn the_masked_view_hides_secret_values() {
    let (container, image) = fixture();
    let text = masked(&spec_for(&container, &image)).to_string();
    assert!(text.contains("DB_PASSWORD=***"));
    assert!(!text.contains("fixture-password"));
}

/// Links, host entries and another container's volumes, added to a real container's request,
/// are each named, and none is left once the request is isolated.
#[test]
fn an_isolated_request_reaches_nothing_beyond_its_network() {
    let (container, image) = fixture();
    let mut spec = spec_for(&container, &image);
    let host = spec.body.host_config.get_or_insert_with(Default::default);
    host.links = Some(vec!["db:db".into()]);
    host.extra_hosts = Some(vec!["db:10.0.0.5".into()]);
    host.pid_mode = Some("host".into());
    let reaches = spec.reaches_beyond("rehearsal");
    for leak in [
        "mounts",
        "another container's volumes",
        "links or host entries",
        "published ports",
        "another network",
        "another container's namespaces",
    ] {
        assert!(reaches.contains(&leak), "{leak}: {reaches:?}");
    }
    spec.isolate(
        "rehearsal",
        &[("role".into(), "copy".into())],
        &["/data".into()],
    );
    assert_eq!(spec.reaches_beyond("rehearsal"), Vec::<&str>::new());
    assert_eq!(spec.scratch(), ["/data"]);
    assert_eq!(spec.label("role"), Some("copy"));
}
