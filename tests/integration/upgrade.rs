//! `cutover upgrade` against the real engine: configuration and data carried, image defaults
//! following the new image, and every failure rolled back.

use serde_json::{json, Value};

use crate::helpers::*;

fn env_of(c: &Value) -> Vec<String> {
    serde_json::from_value(c["Config"]["Env"].clone()).unwrap_or_default()
}

#[test]
fn upgrade_keeps_a_rich_configuration_and_the_data() {
    let scene = Scene::new("rich");
    let (net_a, net_b, volume) = (scene.name("neta"), scene.name("netb"), scene.name("data"));
    docker(&["network", "create", &net_a]);
    docker(&["network", "create", &net_b]);
    let bind = temp_dir(&scene, "bind");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let mount = format!("{volume}:/data");
    let bind_mount = format!("{}:/bind", bind.display());
    let name = scene.name("web");
    // Entrypoint and command both overridden (`sh -c '…; exec /app/start'`), among much else.
    let mut args = vec![
        "run",
        "-d",
        "--name",
        &name,
        "--init",
        "--network",
        &net_a,
        "--network-alias",
        "web-a",
        "-p",
        &publish,
        "-v",
        &mount,
        "-v",
        &bind_mount,
        "-e",
        "GREETING=hello",
        "-e",
        "APP_COLOR=red",
        "-l",
        "team=ops",
        "--restart",
        "unless-stopped",
        "--user",
        "1000:1000",
        "--entrypoint",
        "/bin/sh",
        "--memory",
        "64m",
        "--log-opt",
        "max-size=1m",
        "--cap-drop",
        "NET_RAW",
        "--stop-timeout",
        "5",
        "--hostname",
        "webhost",
    ];
    let img = image("1");
    args.extend([
        img.as_str(),
        "-c",
        "echo $APP_VERSION >> /bind/starts; exec /app/start custom",
    ]);
    docker(&args);
    docker(&[
        "network", "connect", "--alias", "web-b", "--alias", "web-b2", &net_b, &name,
    ]);
    assert!(http_get_eventually(port, "/log.txt").contains("v1 started custom"));
    let before = inspect(&name).unwrap();

    let out = scene.upgrade(&name, "2", &["--json", "--settle", "2s"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(report["outcome"], "succeeded");
    assert_eq!(report["to"], image("2"));
    assert!(report["downtime_ms"].as_u64().unwrap() > 0);

    let after = inspect(&name).unwrap();
    assert_ne!(
        after["Id"], before["Id"],
        "a new container serves under the name"
    );
    assert_eq!(
        after["Config"]["Image"],
        image("2"),
        "created from the reference, not an id"
    );
    // Everything the user set is kept.
    for path in [
        "/HostConfig/PortBindings",
        "/HostConfig/Binds",
        "/HostConfig/RestartPolicy",
        "/HostConfig/Memory",
        "/HostConfig/LogConfig",
        "/HostConfig/CapDrop",
        "/HostConfig/Init",
        "/Config/User",
        "/Config/Entrypoint",
        "/Config/Cmd",
        "/Config/Hostname",
        "/Config/StopTimeout",
    ] {
        assert_eq!(after.pointer(path), before.pointer(path), "{path}");
    }
    let env = env_of(&after);
    assert!(env.contains(&"GREETING=hello".to_string()));
    assert!(
        env.contains(&"APP_COLOR=red".to_string()),
        "a user value beats the new image's default: {env:?}"
    );
    assert!(
        env.contains(&"APP_VERSION=2".to_string()),
        "an image default follows the new image: {env:?}"
    );
    assert_eq!(after["Config"]["Labels"]["team"], "ops");
    for (net, aliases) in [(&net_a, vec!["web-a"]), (&net_b, vec!["web-b", "web-b2"])] {
        let have: Vec<String> =
            serde_json::from_value(after["NetworkSettings"]["Networks"][net]["Aliases"].clone())
                .unwrap();
        for alias in aliases {
            assert!(
                have.contains(&alias.to_string()),
                "{net} lost alias {alias}: {have:?}"
            );
        }
        let old_short_id = &before["Id"].as_str().unwrap()[..12];
        assert!(
            !have.iter().any(|a| a == old_short_id),
            "the old container's id alias piled up: {have:?}"
        );
    }
    // The data written by v1 is still there under v2, in the named volume and the bind mount.
    let log = http_get_eventually(port, "/log.txt");
    assert!(
        log.contains("v1 started custom") && log.contains("v2 started custom"),
        "{log}"
    );
    assert_eq!(read(&bind.join("starts")), "1\n2\n");
    assert!(http_get_eventually(port, "/").contains("version=2 color=red"));
    assert_no_leftovers(&name);
    assert!(
        docker(&["volume", "ls", "-q"]).lines().any(|v| v == volume),
        "the volume survives"
    );
}

#[test]
fn image_defaults_follow_the_new_image() {
    let scene = Scene::new("defaults");
    let name = scene.run("app", &["--init", "-e", "MINE=1", "-l", "mine=yes"], "1");
    scene
        .cutover(&["upgrade", &name, "--to", "2", "--yes", "--settle", "1s"])
        .expect(0);
    let c = inspect(&name).unwrap();
    let env = env_of(&c);
    assert!(env.contains(&"APP_COLOR=green".to_string()), "{env:?}");
    assert!(
        !env.contains(&"APP_COLOR=blue".to_string()),
        "the old image's ENV was pinned: {env:?}"
    );
    assert!(env.contains(&"MINE=1".to_string()));
    assert_eq!(
        c["Config"]["Cmd"],
        json!(["/app/start", "--v2"]),
        "the new image's CMD applies"
    );
    assert_eq!(c["Config"]["Labels"]["org.example.version"], "2");
    assert!(
        c["Config"]["Labels"].get("org.example.only-v1").is_none(),
        "the old image's LABEL was pinned"
    );
    assert_eq!(c["Config"]["Labels"]["mine"], "yes");
}

#[test]
fn a_missing_tag_fails_before_any_downtime_and_changes_nothing() {
    let scene = Scene::new("missing");
    let name = scene.run("app", &["--init"], "1");
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "does-not-exist", &["--json"]);
    out.expect(2);
    assert_eq!(out.json()["outcome"], "nothing_changed");
    assert!(
        out.stdout.contains("does-not-exist"),
        "the failure names the tag: {}",
        out.stdout
    );
    assert_untouched(&name, &before);
    assert!(is_running(&name));
}

pub(crate) fn assert_rolled_back(
    scene: &Scene,
    name: &str,
    port: u16,
    before: &Value,
    out: &Outcome,
) {
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back");
    assert!(
        report["state"].as_str().unwrap().contains("Rolled back"),
        "{report}"
    );
    assert_eq!(
        id_of(name),
        before["Id"].as_str().unwrap(),
        "the old container serves again"
    );
    assert!(is_running(name));
    assert_no_leftovers(name);
    let log = http_get_eventually(port, "/log.txt");
    assert_eq!(
        log.matches("v1 started").count(),
        2,
        "its data is intact and it restarted once: {log}"
    );
    assert!(scene.journal_text().contains("\"outcome\":\"rolled_back\""));
}

#[test]
fn a_crash_on_start_rolls_back_to_the_old_container() {
    let scene = Scene::new("crash");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let name = scene.run(
        "app",
        &["--init", "-p", &publish, "--restart", "always"],
        "1",
    );
    let before = inspect(&name).unwrap();
    let image = image("crash");
    let out = scene.cutover(&[
        "upgrade", &name, "--image", &image, "--yes", "--json", "--settle", "5s",
    ]);
    assert_rolled_back(&scene, &name, port, &before, &out);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("restarted"),
        "{}",
        out.stdout
    );
}

#[test]
fn a_never_healthy_version_rolls_back_to_the_old_container() {
    let scene = Scene::new("unhealthy");
    let (name, port) = scene.run_published("app", "1");
    let before = inspect(&name).unwrap();
    let image = image("unhealthy");
    let out = scene.cutover(&[
        "upgrade",
        &name,
        "--image",
        &image,
        "--yes",
        "--json",
        "--health-timeout",
        "30s",
    ]);
    assert_rolled_back(&scene, &name, port, &before, &out);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("unhealthy"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_http_check_that_never_passes_rolls_back_in_time() {
    let scene = Scene::new("httpcheck");
    let (name, port) = scene.run_published("app", "1");
    let before = inspect(&name).unwrap();
    let url = format!("http://127.0.0.1:{port}/no-such-page");
    let out = scene.upgrade(
        &name,
        "2",
        &["--json", "--health-url", &url, "--health-timeout", "3s"],
    );
    assert_rolled_back(&scene, &name, port, &before, &out);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("answered 404"),
        "{}",
        out.stdout
    );
}

#[test]
fn an_http_check_and_a_healthcheck_both_confirm_a_good_upgrade() {
    let scene = Scene::new("healthy");
    let (name, port) = scene.run_published("app", "1");
    let url = format!("http://127.0.0.1:{port}/");
    let out = scene.upgrade(&name, "2", &["--health-url", &url]);
    out.expect(0);
    assert!(
        out.stderr.contains(&format!("{url} answered 200")),
        "{}",
        out.stderr
    );
    let out = scene.upgrade(&name, "healthy", &[]);
    out.expect(0);
    assert!(
        out.stderr.contains("its HEALTHCHECK reports healthy"),
        "{}",
        out.stderr
    );
}

#[test]
fn secrets_never_reach_output_or_journal() {
    let scene = Scene::new("secrets");
    let secrets = [
        "s3cr3t-db-password",
        "ENCODEKEY-0123456789abcdef",
        "Data Source=db;Password=hunter2xx",
    ];
    let env = [
        format!("DB_PASSWORD={}", secrets[0]),
        format!("ENCODE_KEY={}", secrets[1]),
        format!("PROGET_SQL_CONNECTION_STRING={}", secrets[2]),
    ];
    let name = scene.run(
        "app",
        &["--init", "-e", &env[0], "-e", &env[1], "-e", &env[2]],
        "1",
    );
    let runs = [
        scene.cutover(&["upgrade", &name, "--to", "2", "--dry-run"]),
        scene.cutover(&["upgrade", &name, "--to", "2", "--dry-run", "--json"]),
        scene.upgrade(&name, "crash", &["--json", "--settle", "3s"]),
        scene.upgrade(&name, "2", &["--settle", "1s"]),
        scene.cutover(&["history", "--json"]),
    ];
    assert!(
        runs[0].stdout.contains("ENCODE_KEY=***"),
        "the dry run shows the key is carried, masked"
    );
    runs[2].expect(1);
    runs[3].expect(0);
    let journal = scene.journal_text();
    assert!(!journal.is_empty());
    for secret in secrets {
        for run in &runs {
            assert!(
                !run.stdout.contains(secret) && !run.stderr.contains(secret),
                "{secret} printed"
            );
        }
        assert!(!journal.contains(secret), "{secret} journaled");
    }
    // And the secrets themselves were carried.
    let env_after = env_of(&inspect(&name).unwrap());
    for entry in &env {
        assert!(env_after.contains(entry));
    }
}

#[test]
fn a_dry_run_prints_the_plan_and_changes_nothing() {
    let scene = Scene::new("dryrun");
    let name = scene.run("app", &["--init", "-e", "MINE=1"], "1");
    let before = inspect(&name).unwrap();
    let out = scene.cutover(&["upgrade", &name, "--to", "dry", "--dry-run", "--json"]);
    out.expect(0);
    let plan = out.json();
    assert_eq!(plan["dry_run"], true);
    assert_eq!(plan["to"], image("dry"));
    assert_eq!(
        plan["carried"]["create"]["Env"],
        json!(["MINE=1"]),
        "only what the user set is carried"
    );
    let stop = format!("stop {name} (demo:1)");
    assert!(
        plan["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s.as_str().unwrap().starts_with(&stop)),
        "{plan}"
    );
    assert_untouched(&name, &before);
    assert!(
        !docker_output(&["image", "inspect", &image("dry")])
            .status
            .success(),
        "a dry run pulls nothing"
    );
    assert!(
        !scene
            .runs()
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(false),
        "no journal for a dry run"
    );
}
