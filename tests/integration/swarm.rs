//! A real swarm: a private engine initialised as a single-node swarm manager.

use std::time::{Duration, Instant};

use crate::engines::PrivateEngine;
use crate::helpers::*;

#[test]
fn a_swarm_task_is_never_moved_alone() {
    let scene = Scene::new("swarm");
    let (engine, _) = swarm(&scene);
    let service = scene.name("svc");
    engine.run(&[
        "service",
        "create",
        "--detach",
        "--name",
        &service,
        "--container-label",
        "cutover.enable=true",
        "--container-label",
        "cutover.policy=major",
        &image("1"),
        "/app/start",
    ]);
    let start = Instant::now();
    let task = loop {
        let names = engine.names();
        if let Some(task) = names
            .into_iter()
            .find(|n| n.starts_with(&format!("{service}.")))
        {
            if engine.inspect(&task, "{{.State.Running}}").as_deref() == Some("true") {
                break task;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the service's task never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let id = engine.inspect(&task, "{{.Id}}").unwrap();
    let host = engine.host();
    let env = [("DOCKER_HOST", host.as_str())];

    // The task is listed as not to be moved; its service, opted in by its containers' label,
    // is what moves.
    let out = scene.cutover_with_env(&["check", "--json"], &env);
    out.expect(0);
    let statuses = out.json()["containers"].clone();
    let status = |name: &str| {
        statuses
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["container"] == name)
            .unwrap_or_else(|| panic!("{name} not listed: {statuses}"))
            .clone()
    };
    let of_task = status(&task);
    assert_eq!(of_task["eligible"], false, "{of_task}");
    assert!(
        of_task["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("a task of the Swarm service {service}")),
        "{of_task}"
    );
    assert_eq!(status(&service)["eligible"], true);

    let out = scene.cutover_with_env(&["upgrade", &task, "--to", "2", "--yes"], &env);
    out.refused(&[&format!(
        "{task} is a task of the Swarm service {service}: Swarm replaces its containers itself"
    )]);
    assert_eq!(
        engine.inspect(&task, "{{.Id}}").as_deref(),
        Some(id.as_str())
    );
    assert_eq!(
        engine
            .inspect(&task, "{{.Config.Image}}")
            .map(|i| i.starts_with(&image("1"))),
        Some(true)
    );

    let out = scene.cutover_with_env(&["auto", "--json", "--settle", "1s"], &env);
    out.expect(10);
    let results = pass_results(&out);
    assert_eq!(
        results
            .iter()
            .map(|(name, result, _)| (name.as_str(), result.as_str()))
            .collect::<Vec<_>>(),
        [(service.as_str(), "upgraded")],
        "only the service moved, never its task alone"
    );
}

/// A single-node swarm on a private engine, and the environment that reaches it.
/// Its manager listens on a loopback address of its own (where its gossip binds too) and a port
/// of its own, and its data path on another port, so that swarms of tests running at once do not
/// meet on Swarm's default ports: two on one gossip port lose their services' names.
pub fn swarm(scene: &Scene) -> (PrivateEngine, String) {
    let mut engine = PrivateEngine::start(&scene.prefix, &[]);
    engine.own_gateway_bridge();
    let listen = format!("{}:{}", engine.loopback(), free_port());
    let data_port = free_port().to_string();
    engine.run(&[
        "swarm",
        "init",
        "--advertise-addr",
        &listen,
        "--listen-addr",
        &listen,
        "--data-path-port",
        &data_port,
    ]);
    let host = engine.host();
    (engine, host)
}

/// `docker service create` of `image` with `replicas` and `options`, waited for until every
/// task runs it.
pub fn service(engine: &PrivateEngine, name: &str, replicas: u32, image: &str, options: &[&str]) {
    create_service(engine, name, replicas, options, &[image, "/app/start"]);
}

/// `docker service create` running `image_and_args` (the image, then its arguments) with
/// `replicas` and `options`, waited for until every task runs it.
pub fn create_service(
    engine: &PrivateEngine,
    name: &str,
    replicas: u32,
    options: &[&str],
    image_and_args: &[&str],
) {
    let replicas_text = replicas.to_string();
    let mut args = vec![
        "service",
        "create",
        "--detach",
        "--name",
        name,
        "--replicas",
        &replicas_text,
    ];
    args.extend_from_slice(options);
    args.extend_from_slice(image_and_args);
    engine.run(&args);
    wait_running(engine, name, replicas, image_and_args[0]);
}

/// The images the service's running tasks run, as their specs name them.
pub fn running_images(engine: &PrivateEngine, name: &str) -> Vec<String> {
    engine
        .run(&[
            "service",
            "ps",
            name,
            "--filter",
            "desired-state=running",
            "--no-trunc",
            "--format",
            "{{.Image}} {{.CurrentState}}",
        ])
        .lines()
        .filter(|l| l.contains(" Running "))
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

pub fn wait_running(engine: &PrivateEngine, name: &str, replicas: u32, image: &str) {
    let start = Instant::now();
    loop {
        let images = running_images(engine, name);
        if images.len() == replicas as usize && images.iter().all(|i| i.starts_with(image)) {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "{name} never ran {image} on {replicas} tasks: {images:?}; its tasks:\n{}\nwhat they printed last:\n{}",
            engine.run(&["service", "ps", "--no-trunc", name]),
            String::from_utf8_lossy(
                &engine
                    .docker(&["service", "logs", "--tail", "20", name])
                    .stderr
            )
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

pub fn spec_image(engine: &PrivateEngine, name: &str) -> String {
    engine
        .run(&[
            "service",
            "inspect",
            "-f",
            "{{.Spec.TaskTemplate.ContainerSpec.Image}}",
            name,
        ])
        .trim()
        .to_string()
}

#[test]
fn a_service_moves_to_its_target_pinned_and_one_that_fails_goes_back_to_its_image() {
    let scene = Scene::new("svcup");
    let (engine, host) = swarm(&scene);
    let env = [("DOCKER_HOST", host.as_str())];
    let name = scene.name("web");
    service(&engine, &name, 2, &image("1"), &[]);
    let before = spec_image(&engine, &name);

    // A tag the registry does not have: refused at the pull, the service as it was.
    let out = scene.cutover_with_env(&["upgrade", &name, "--to", "9.9.9", "--yes"], &env);
    out.expect(2);
    assert_eq!(spec_image(&engine, &name), before);
    // What a service's upgrade does not do is refused, not dropped.
    let out = scene.cutover_with_env(
        &["upgrade", &name, "--to", "2", "--keep-old", "--yes"],
        &env,
    );
    out.refused(&["--keep-old not taken for a service"]);
    // The dry run shows the plan.
    let out = scene.cutover_with_env(&["upgrade", &name, "--to", "2", "--dry-run"], &env);
    out.expect(0);
    assert!(
        out.stdout.contains("update the Swarm service"),
        "{}",
        out.stdout
    );
    assert_eq!(spec_image(&engine, &name), before);

    let out = scene.cutover_with_env(
        &[
            "upgrade", &name, "--to", "2", "--yes", "--json", "--settle", "2s",
        ],
        &env,
    );
    out.expect(0);
    let report = out.json();
    assert_eq!(report["outcome"], "succeeded", "{report}");
    // One task at a time, the other serving: no downtime to tell.
    assert!(report["downtime_ms"].is_null(), "{report}");
    let pinned = spec_image(&engine, &name);
    assert!(
        pinned.starts_with(&format!("{}@sha256:", image("2"))),
        "the spec names the target by its digest: {pinned}"
    );
    assert_eq!(
        running_images(&engine, &name),
        [pinned.clone(), pinned.clone()]
    );

    // A target whose tasks never pass their HEALTHCHECK: the previous image is put back, and
    // runs on both tasks.
    let out = scene.cutover_with_env(
        &[
            "upgrade",
            &name,
            "--to",
            "unhealthy",
            "--yes",
            "--json",
            "--settle",
            "2s",
        ],
        &env,
    );
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert!(
        report["failure"].as_str().unwrap().contains("unhealthy"),
        "{report}"
    );
    assert_eq!(spec_image(&engine, &name), pinned);
    wait_running(&engine, &name, 2, &pinned);
    let runs = scene.cutover_with_env(&["history", "--json"], &env).json();
    let outcomes: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["nothing_changed", "succeeded", "rolled_back"]);
}

/// `cutover upgrade NAME ARGS` on the swarm at `host`, paused after step `after` (1-based, as
/// printed) and killed there; then `recover`'s report of it.
pub fn killed_after(scene: &Scene, host: &str, args: &[&str], after: usize) -> serde_json::Value {
    let pause = after.to_string();
    let mut run = scene.spawn(
        args,
        &[
            ("DOCKER_HOST", host),
            ("CUTOVER_PAUSE_AFTER", pause.as_str()),
        ],
    );
    let done = format!("\"index\":{},\"phase\":\"done\"", after - 1);
    scene.wait_for_journal_of(host, &done, Duration::from_secs(90));
    kill_hard(&mut run);
    let out = scene.cutover_with_env(&["recover", "--yes", "--json"], &[("DOCKER_HOST", host)]);
    out.expect(0);
    out.json()["recovered"][0].clone()
}

#[test]
fn a_service_upgrade_killed_after_the_update_is_finished_by_recover() {
    let scene = Scene::new("svcrecover");
    let (engine, host) = swarm(&scene);
    let name = scene.name("web");
    service(&engine, &name, 1, &image("1"), &[]);
    // Killed after its second step, the spec's update.
    let args = ["upgrade", &name, "--to", "2", "--yes", "--settle", "1s"];
    let recovered = killed_after(&scene, &host, &args, 2);
    assert_eq!(recovered["outcome"], "succeeded", "{recovered}");
    let pinned = spec_image(&engine, &name);
    assert!(pinned.starts_with(&image("2")), "{pinned}");
    wait_running(&engine, &name, 1, &pinned);
}

#[test]
fn a_service_upgrade_killed_after_its_migration_job_is_put_back_by_recover() {
    let scene = Scene::new("svcrecoverjob");
    let (engine, host) = swarm(&scene);
    let name = scene.name("app");
    let mount = format!("type=volume,source={name}-data,target=/data");
    service(&engine, &name, 2, &image("1"), &["--mount", &mount]);
    let before = spec_image(&engine, &name);
    // Killed after its third step, the migration job: pull, scale to 0, job.
    let args = [
        "upgrade",
        &name,
        "--to",
        "2",
        "--yes",
        "--settle",
        "1s",
        "--migrate",
        "/app/migrate",
    ];
    let recovered = killed_after(&scene, &host, &args, 3);
    assert_eq!(recovered["outcome"], "rolled_back", "{recovered}");
    assert_eq!(spec_image(&engine, &name), before);
    wait_running(&engine, &name, 2, &before);
    assert!(!engine
        .run(&["service", "ls", "--format", "{{.Name}}"])
        .contains("cutover-migrate"));
}

#[test]
fn check_sees_an_opted_in_service_and_auto_moves_it_by_its_policy() {
    let scene = Scene::new("svcauto");
    let (engine, host) = swarm(&scene);
    let env = [("DOCKER_HOST", host.as_str())];
    let name = scene.name("web");
    let labels = [
        "--label",
        "cutover.enable=true",
        "--label",
        "cutover.policy=major",
    ];
    service(&engine, &name, 1, &image("1"), &labels);

    let out = scene.cutover_with_env(&["check", "--json"], &env);
    out.expect(0);
    let status = &out.json()["containers"][0];
    assert_eq!(status["container"], name.as_str(), "{status}");
    assert_eq!(status["swarm"], true, "{status}");
    assert_eq!(status["eligible"], true, "{status}");
    assert_eq!(status["target"], image("5").as_str(), "{status}");

    let out = scene.cutover_with_env(&["auto", "--json", "--settle", "1s"], &env);
    out.expect(10);
    let results = pass_results(&out);
    assert_eq!(
        (results.len(), results[0].0.as_str(), results[0].1.as_str()),
        (1, name.as_str(), "upgraded"),
        "{}",
        out.stdout
    );
    let pinned = spec_image(&engine, &name);
    assert!(
        pinned.starts_with(&format!("{}@sha256:", image("5"))),
        "{pinned}"
    );
    wait_running(&engine, &name, 1, &pinned);
}

#[test]
fn a_stack_moves_its_app_services_and_its_file_keeps_the_new_image_for_the_next_deploy() {
    let scene = Scene::new("svcstack");
    let (engine, host) = swarm(&scene);
    let env = [("DOCKER_HOST", host.as_str())];
    let stack = scene.name("shop");
    let dir = temp_dir(&scene, "stack");
    let file = dir.join("stack.yml");
    let (app, db) = (image("1"), format!("{}/auto-a:1.0.0", registry()));
    std::fs::write(
        &file,
        format!(
            "version: \"3.8\"
services:
  web:
    image: {app}
    command: [\"/app/start\"]
  worker:
    image: {app} # the same image
    command: [\"/app/start\"]
  db:
    image: {db}
"
        ),
    )
    .unwrap();
    let deploy = |file: &std::path::Path| {
        engine.run(&["stack", "deploy", "-c", file.to_str().unwrap(), &stack]);
    };
    deploy(&file);
    let (web, worker, database) = (
        format!("{stack}_web"),
        format!("{stack}_worker"),
        format!("{stack}_db"),
    );
    wait_running(&engine, &web, 1, &app);
    wait_running(&engine, &worker, 1, &app);
    wait_running(&engine, &database, 1, &db);

    let out = scene.cutover_with_env(
        &[
            "upgrade",
            "--stack",
            &stack,
            "--to",
            "2",
            "--stack-file",
            file.to_str().unwrap(),
            "--yes",
            "--json",
            "--settle",
            "1s",
        ],
        &env,
    );
    out.expect(0);
    let report = out.json();
    assert_eq!(
        report["members"],
        serde_json::json!([web, worker]),
        "{report}"
    );
    for service in [&web, &worker] {
        assert!(
            spec_image(&engine, service).starts_with(&format!("{}@sha256:", image("2"))),
            "{service}"
        );
    }
    assert!(
        spec_image(&engine, &database).starts_with(&db),
        "the database stays"
    );
    let text = read(&file);
    assert_eq!(
        text.matches(&format!("image: {}", image("2"))).count(),
        2,
        "{text}"
    );
    assert!(text.contains(&format!("image: {db}")), "{text}");
    assert!(text.contains("# the same image"), "comments stay: {text}");

    // The next deploy of the file keeps the new version.
    deploy(&file);
    std::thread::sleep(Duration::from_secs(2));
    for service in [&web, &worker] {
        assert!(
            spec_image(&engine, service).starts_with(&image("2")),
            "{service}"
        );
        wait_running(&engine, service, 1, &image("2"));
    }
}

/// What the file `path` holds in a running task of `service`.
/// A running task of the service (its container's id).
pub fn task_of(engine: &PrivateEngine, service: &str) -> Option<String> {
    engine
        .run(&[
            "ps",
            "-q",
            "--filter",
            &format!("label=com.docker.swarm.service.name={service}"),
        ])
        .lines()
        .next()
        .map(str::to_string)
}

pub fn read_in_task(engine: &PrivateEngine, service: &str, path: &str) -> String {
    let task = task_of(engine, service).unwrap_or_else(|| panic!("no task of {service} runs"));
    engine.run(&["exec", &task, "cat", path]).trim().to_string()
}

#[test]
fn a_migration_runs_as_a_job_with_every_task_stopped_and_one_that_fails_puts_the_service_back() {
    let scene = Scene::new("svcmigrate");
    let (engine, host) = swarm(&scene);
    let env = [("DOCKER_HOST", host.as_str())];
    let name = scene.name("app");
    let mount = format!("type=volume,source={name}-data,target=/data");
    service(&engine, &name, 2, &image("1"), &["--mount", &mount]);

    let migrate_to = |tag: &str, migration: &str| {
        let args = [
            "upgrade", &name, "--to", tag, "--yes", "--json", "--settle", "1s",
        ];
        scene.cutover_with_env(&[&args[..], &["--migrate", migration]].concat(), &env)
    };

    // A migration that fails: the job's output is shown, the service runs demo:1 on two tasks
    // again, and no job is left.
    let before = spec_image(&engine, &name);
    let out = migrate_to("2", "/app/migrate --fail");
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert!(
        report["failure"]
            .as_str()
            .unwrap()
            .contains("migration 0042 failed"),
        "the job's output is told: {report}"
    );
    assert_eq!(spec_image(&engine, &name), before);
    wait_running(&engine, &name, 2, &before);
    assert!(!engine
        .run(&["service", "ls", "--format", "{{.Name}}"])
        .contains("cutover-migrate"));

    // The migration runs once, while no task runs, from the new image, on the service's volume.
    let out = migrate_to("2", "/app/migrate");
    out.expect(0);
    let report = out.json();
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(
        steps,
        [
            "pull",
            "service_scale",
            "service_job",
            "service_update",
            "service_await"
        ]
    );
    assert!(
        report["downtime_ms"].as_u64().is_some(),
        "scaled to 0: {report}"
    );
    let pinned = spec_image(&engine, &name);
    wait_running(&engine, &name, 2, &pinned);
    assert_eq!(read_in_task(&engine, &name, "/data/schema"), "2");

    // A new version that never serves after its migration: the old one comes back, and the
    // report warns that it runs on data the migration may have changed (no backup was taken).
    let out = migrate_to("unhealthy", "/app/migrate");
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back", "{report}");
    assert!(
        report["warnings"][0]
            .as_str()
            .unwrap()
            .contains("may have changed the data"),
        "{report}"
    );
    assert_eq!(spec_image(&engine, &name), pinned);
    wait_running(&engine, &name, 2, &pinned);
}
