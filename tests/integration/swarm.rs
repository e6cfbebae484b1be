//! A real swarm: a private engine initialised as a single-node swarm manager.

use std::time::{Duration, Instant};

use crate::engines::PrivateEngine;
use crate::helpers::*;

#[test]
fn a_swarm_task_is_never_moved_alone() {
    let scene = Scene::new("swarm");
    let engine = PrivateEngine::start(&scene.prefix, &[]);
    engine.run(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
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

    let out = scene.cutover_with_env(&["check", "--json"], &env);
    out.expect(0);
    let status = &out.json()["containers"][0];
    assert_eq!(status["container"], task.as_str(), "{status}");
    assert_eq!(status["eligible"], false, "{status}");
    assert!(
        status["reason"]
            .as_str()
            .unwrap()
            .contains(&format!("a task of the Swarm service {service}")),
        "{status}"
    );
    let out = scene.cutover_with_env(&["auto", "--json"], &env);
    out.expect(0);
    assert!(out.json()["pass"]["results"].as_array().unwrap().is_empty());

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
}
