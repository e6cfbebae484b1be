//! Steps beyond the swap against the real engine: a migration container, hooks, carried files,
//! env changes, health by port with JSON conditions, the default port probe and the version
//! check.

use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

/// `docker run -d` of demo:1 with a named volume on /data and a published port.
fn app_with_volume(scene: &Scene, options: &[&str]) -> (String, u16) {
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let volume = format!("{}:/data", scene.name("data"));
    let mut all = vec!["--init", "-p", publish.as_str(), "-v", volume.as_str()];
    all.extend_from_slice(options);
    let name = scene.run("app", &all, "1");
    http_get_eventually(port, "/log.txt");
    (name, port)
}

fn exec(name: &str, cmd: &[&str]) -> String {
    let mut args = vec!["exec", name];
    args.extend_from_slice(cmd);
    docker(&args)
}

fn env_of(name: &str) -> Vec<String> {
    serde_json::from_value(inspect(name).unwrap()["Config"]["Env"].clone()).unwrap_or_default()
}

fn assert_back_on_v1(name: &str, port: u16, before: &Value, out: &Outcome) {
    out.expect(1);
    assert_eq!(out.json()["outcome"], "rolled_back", "{}", out.stdout);
    assert_eq!(
        id_of(name),
        before["Id"].as_str().unwrap(),
        "the old container serves again"
    );
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert_no_leftovers(name);
    assert!(
        !exists(&format!("{name}-migrate")),
        "the one-shot container is removed"
    );
}

#[test]
fn a_migration_runs_from_the_new_image_between_stop_and_start() {
    let scene = Scene::new("migrate");
    let (name, port) = app_with_volume(&scene, &[]);
    // Version 4 refuses to start on data it has not migrated: without --migrate the upgrade fails.
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "4", &["--json", "--settle", "3s"]);
    assert_back_on_v1(&name, port, &before, &out);

    let out = scene.upgrade(
        &name,
        "4",
        &["--json", "--settle", "1s", "--migrate", "/app/migrate"],
    );
    out.expect(0);
    assert!(
        out.stderr.contains("migrating schema none to 4"),
        "its output is streamed: {}",
        out.stderr
    );
    let report = out.json();
    assert_eq!(step(&report, "migrate")["status"], "done");
    assert_eq!(
        exec(&name, &["cat", "/data/schema"]),
        "4",
        "the migration wrote into the old container's volume"
    );
    let log = http_get_eventually(port, "/log.txt");
    assert!(
        log.contains("v4 started"),
        "the new version found the migrated data: {log}"
    );
    assert!(!exists(&format!("{name}-migrate")));
    assert_no_leftovers(&name);
}

#[test]
fn a_failing_migration_and_a_hanging_one_roll_back_with_the_data_intact() {
    for (command, timeout, says) in [
        ("/app/migrate --fail", "1m", "exited with code 3"),
        ("/app/migrate --hang", "3s", "did not finish within 3s"),
    ] {
        let scene = Scene::new("migratefail");
        let (name, port) = app_with_volume(&scene, &[]);
        let before = inspect(&name).unwrap();
        let out = scene.upgrade(
            &name,
            "4",
            &["--json", "--migrate", command, "--migrate-timeout", timeout],
        );
        assert_back_on_v1(&name, port, &before, &out);
        let failure = out.json()["failure"].as_str().unwrap().to_string();
        assert!(failure.contains(says), "{command}: {failure}");
        if command.ends_with("--fail") {
            assert!(
                failure.contains("migration 0042 failed"),
                "the last lines are in the report: {failure}"
            );
        }
        let log = http_get_eventually(port, "/log.txt");
        assert_eq!(
            log.matches("v1 started").count(),
            2,
            "{command}: the data survived: {log}"
        );
        assert!(out.json()["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("may have changed the data")));
    }
}

#[test]
fn a_file_on_no_volume_is_carried_with_its_mode_and_owner() {
    carried_with_its_mode_and_owner(&Scene::new("carry"));
}

/// A generated key on no volume, carried with `--carry-file` with its mode and owner.
pub(crate) fn carried_with_its_mode_and_owner(scene: &Scene) {
    let (name, _) = app_with_volume(scene, &[]);
    let key = exec(&name, &["cat", "/app/conf/app.env"]);
    assert!(key.starts_with("ENCODE_KEY="), "{key}");
    let out = scene.upgrade(
        &name,
        "2",
        &[
            "--settle",
            "1s",
            "--carry-file",
            "/app/conf/app.env",
            "--carry-file-if-present",
            "/app/conf/absent",
        ],
    );
    out.expect(0);
    assert_eq!(
        exec(&name, &["cat", "/app/conf/app.env"]),
        key,
        "the new container kept the generated key"
    );
    assert_eq!(
        exec(&name, &["stat", "-c", "%a %u:%g", "/app/conf/app.env"]),
        "640 1000:1000"
    );
    assert!(
        !out.stdout.contains(&key) && !out.stderr.contains(&key[11..]),
        "the file's content is never printed"
    );
    assert!(
        !scene
            .runs()
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.path().is_dir()),
        "the run's copy is deleted"
    );
    // Without --carry-file, the new container generates another key: what the step prevents.
    scene
        .cutover(&["upgrade", &name, "--to", "3", "--yes", "--settle", "1s"])
        .expect(0);
    assert_ne!(exec(&name, &["cat", "/app/conf/app.env"]), key);
}

#[test]
fn a_missing_file_or_one_on_a_volume_is_refused_before_any_downtime() {
    let scene = Scene::new("carrymissing");
    let (name, _) = app_with_volume(&scene, &[]);
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "2", &["--json", "--carry-file", "/app/conf/nothing"]);
    out.expect(2);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("has no /app/conf/nothing"),
        "{}",
        out.stdout
    );
    let out = scene.upgrade(&name, "2", &["--carry-file", "/data/log.txt"]);
    out.refused(&["lies on the mount /data"]);
    assert_untouched(&name, &before);
}

#[test]
fn env_changes_reach_the_new_container_and_secrets_stay_masked() {
    let scene = Scene::new("envrename");
    let secret = "encode-key-5f2d9a17c3";
    let env = format!("ENCODE_KEY={secret}");
    let (name, _) = app_with_volume(&scene, &["-e", &env, "-e", "TZ=UTC", "-e", "OLD_FLAG=1"]);
    let out = scene.upgrade(
        &name,
        "2",
        &[
            "--settle",
            "1s",
            "--env-rename",
            "ENCODE_KEY=ENCRYPTION_SECRET",
            "--env-unset",
            "OLD_FLAG",
            "--env",
            "MODE=fast",
        ],
    );
    out.expect(0);
    let env = env_of(&name);
    assert!(
        env.contains(&format!("ENCRYPTION_SECRET={secret}")),
        "{env:?}"
    );
    assert!(
        env.contains(&"MODE=fast".to_string()) && env.contains(&"TZ=UTC".to_string()),
        "{env:?}"
    );
    assert!(
        !env.iter()
            .any(|e| e.starts_with("ENCODE_KEY=") || e.starts_with("OLD_FLAG=")),
        "{env:?}"
    );
    assert!(!out.stdout.contains(secret) && !out.stderr.contains(secret));
    assert!(!scene.journal_text().contains(secret));

    let out = scene.upgrade(&name, "3", &["--env-rename", "NO_SUCH=X"]);
    out.expect(2);
    assert!(
        out.stderr.contains("the container has no NO_SUCH"),
        "{}",
        out.stderr
    );
}

#[test]
fn hooks_run_inside_the_old_and_the_new_container() {
    hooks_run_inside_both(&Scene::new("hooks"));
}

/// `--exec-before` in the old container, `--exec-after` in the new; a failing one rolls back.
pub(crate) fn hooks_run_inside_both(scene: &Scene) {
    let (name, port) = app_with_volume(scene, &[]);
    let out = scene.upgrade(
        &name,
        "2",
        &[
            "--settle",
            "1s",
            "--exec-before",
            "sh -c 'echo flushed by $APP_VERSION > /data/flush'",
            "--exec-after",
            "sh -c 'test -f /data/flush && echo checked'",
        ],
    );
    out.expect(0);
    assert_eq!(
        exec(&name, &["cat", "/data/flush"]),
        "flushed by 1",
        "the before hook ran in the old container"
    );
    assert!(
        out.stderr.contains("exec-after | checked"),
        "{}",
        out.stderr
    );

    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "3", &["--json", "--exec-before", "false"]);
    out.expect(2);
    assert_eq!(out.json()["outcome"], "nothing_changed");
    assert_eq!(
        inspect(&name).unwrap()["State"]["StartedAt"],
        before["State"]["StartedAt"],
        "a failing before hook costs no downtime"
    );

    let out = scene.upgrade(
        &name,
        "3",
        &[
            "--json",
            "--settle",
            "1s",
            "--exec-after",
            "sh -c 'echo nope; exit 5'",
        ],
    );
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("exited with code 5"),
        "{}",
        out.stdout
    );
    assert!(http_get_eventually(port, "/").contains("version=2"));
}

#[test]
fn a_profiles_exec_steps_run_inside_the_old_and_the_new_container() {
    let scene = Scene::new("profile-exec");
    let (name, port) = app_with_volume(&scene, &[]);
    let dir = temp_dir(&scene, "profile-exec");
    let profile = |file: &str, steps: &str| {
        let path = dir.join(file);
        std::fs::write(
            &path,
            format!("name: mine\ndescription: mine\nmatch: [demo]\nsteps:\n{steps}"),
        )
        .unwrap();
        path.to_str().unwrap().to_string()
    };
    let switched = profile(
        "switched.yaml",
        "  - exec: { command: [sh, -c, 'echo flushed by $APP_VERSION > /data/flush'], in: old }\n  - exec: { command: [sh, -c, 'test -f /data/flush && echo checked'], in: new, when: { to: \">=2\" } }\n",
    );
    let out = scene.upgrade(&name, "2", &["--settle", "1s", "--profile", &switched]);
    out.expect(0);
    assert_eq!(
        exec(&name, &["cat", "/data/flush"]),
        "flushed by 1",
        "the step in: old ran in the old container"
    );
    assert!(
        out.stderr.contains("exec-after | checked"),
        "{}",
        out.stderr
    );

    let failing = profile(
        "failing.yaml",
        "  - exec: { command: [sh, -c, 'echo nope; exit 5'], in: new, timeout: 30s }\n",
    );
    let out = scene.upgrade(
        &name,
        "3",
        &["--json", "--settle", "1s", "--profile", &failing],
    );
    out.expect(1);
    let failure = out.json()["failure"].as_str().unwrap().to_string();
    assert!(failure.contains("exited with code 5"), "{failure}");
    assert!(http_get_eventually(port, "/").contains("version=2"));
}

#[test]
fn health_by_port_with_json_conditions() {
    let scene = Scene::new("healthport");
    let (name, port) = app_with_volume(&scene, &[]);
    let flags = [
        "--health-port",
        "8080",
        "--health-path",
        "/health.json",
        "--health-json",
        "status=OK",
    ];
    let mut args = vec!["upgrade", name.as_str(), "--to", "2", "--yes"];
    args.extend(flags);
    let out = scene.cutover(&args);
    out.expect(0);
    // Through the container's address when the host reaches the bridge, else through the
    // published port (a host where another engine holds docker0): either way it says which.
    let published = format!("(its port 8080 published as 127.0.0.1:{port}) answered HTTP 200");
    assert!(
        out.stderr
            .contains("(its address on network bridge) answered HTTP 200")
            || out.stderr.contains(&published),
        "it says how it reached the port: {}",
        out.stderr
    );

    let before = inspect(&name).unwrap();
    let mut args = vec![
        "upgrade",
        name.as_str(),
        "--to",
        "sick",
        "--yes",
        "--json",
        "--health-timeout",
        "4s",
    ];
    args.extend(flags);
    let out = scene.cutover(&args);
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("status is ERROR, not OK"),
        "{}",
        out.stdout
    );
    assert_eq!(id_of(&name), before["Id"].as_str().unwrap());
    assert!(http_get_eventually(port, "/").contains("version=2"));
}

#[test]
fn a_product_that_answers_500_while_it_migrates_is_not_declared_up_by_the_settle() {
    let scene = Scene::new("warm");
    let (name, port) = app_with_volume(&scene, &[]);
    let out = scene.upgrade(&name, "warm", &["--json", "--settle", "2s"]);
    out.expect(0);
    let report = out.json();
    let health = step_detail(&report, "await_healthy");
    assert!(health.contains("answered HTTP 200"), "{health}");
    let downtime = report["downtime_ms"].as_u64().unwrap();
    assert!(
        downtime >= 7_000,
        "down while it answered 500: {downtime} ms"
    );
    assert_eq!(report["settled_ms"], 2000, "the settle is reported apart");
    assert!(
        http_get(port, "/").is_some(),
        "serving when cutover said so"
    );
}

#[test]
fn the_new_container_must_report_the_target_version() {
    let scene = Scene::new("expectversion");
    let (name, port) = app_with_volume(&scene, &[]);
    let out = scene.upgrade(
        &name,
        "2",
        &[
            "--json",
            "--settle",
            "1s",
            "--expect-version",
            "/health.json#version",
        ],
    );
    out.expect(0);
    let report = out.json();
    assert_eq!(step_detail(&report, "check_version"), "it reports 2");
    // Tag 5 holds version 2's code: caught and rolled back.
    let out = scene.upgrade(
        &name,
        "5",
        &[
            "--json",
            "--settle",
            "1s",
            "--expect-version",
            ":8080/health.json#/version",
        ],
    );
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("reports version \"2\", not 5"),
        "{}",
        out.stdout
    );
    assert!(http_get_eventually(port, "/").contains("version=2"));
    let out = scene.upgrade(
        &name,
        "3",
        &[
            "--settle",
            "1s",
            "--expect-version-cmd",
            "sh -c 'echo $APP_VERSION'",
        ],
    );
    out.expect(0);
}

#[test]
fn killed_during_the_migration_then_recover_rolls_back() {
    let scene = Scene::new("killmigrate");
    let (name, port) = app_with_volume(&scene, &[]);
    let original = id_of(&name);
    let mut run = scene.spawn(
        &[
            "upgrade",
            &name,
            "--to",
            "4",
            "--yes",
            "--migrate",
            "/app/migrate --hang",
        ],
        &[],
    );
    // pull, create, verify, stop, then the migration (index 4).
    scene.wait_for_journal("\"index\":4,\"phase\":\"started\"", Duration::from_secs(60));
    let start = std::time::Instant::now();
    while !exists(&format!("{name}-migrate")) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the migration container never appeared"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_hard(&mut run);
    assert!(
        !is_running(&name),
        "killed mid-migration, the service is down"
    );
    let recovered = scene.recover(&[]);
    assert_eq!(recovered["outcome"], "rolled_back", "{recovered}");
    assert!(recovered["downtime_ms"].as_u64().is_some());
    assert_eq!(id_of(&name), original);
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert!(
        !exists(&format!("{name}-migrate")),
        "the one-shot container is removed"
    );
    assert_no_leftovers(&name);
}
