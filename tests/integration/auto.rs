//! `cutover auto` passes. Every pass looks at every opted-in container of the engine, so these
//! tests take turns (`auto_turn`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::*;

pub(crate) fn config(scene: &Scene, text: &str) -> String {
    let path = temp_dir(scene, "config").join("auto.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

/// A one-shot HTTP endpoint on loopback that hands back the body it receives.
pub(crate) fn webhook() -> (String, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut reader = BufReader::new(stream);
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" {
                break;
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        reader
            .get_mut()
            .write_all(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap();
        String::from_utf8(body).unwrap()
    });
    (url, handle)
}

fn tag_of(name: &str) -> String {
    inspect(name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn auto_upgrades_the_opted_in_containers_in_dependency_order_and_leaves_the_others() {
    let _turn = auto_turn();
    let scene = Scene::new("auto");
    let reg = registry();
    let b = scene.run_image("b", &["--init"], &format!("{reg}/auto-b:1.0.0"));
    let depends = format!("cutover.depends_on={b}");
    let a = scene.run_image(
        "a",
        &["--init", "-l", "cutover.enable=true", "-l", &depends],
        &format!("{reg}/auto-a:1.0.0"),
    );
    let c = scene.run_image("c", &["--init"], &format!("{reg}/auto-c:1.0.0"));
    let (url, hook) = webhook();
    let cfg = config(
        &scene,
        &format!("webhook: {url}\ncontainers:\n  {b}: {{policy: patch}}\n"),
    );

    let out = scene.cutover(&["auto", "--config", &cfg, "--json", "--settle", "1s"]);
    out.expect(10);
    let pass = &out.json()["pass"];
    let order: Vec<&str> = pass["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["container"].as_str().unwrap())
        .collect();
    assert_eq!(order, [b.as_str(), a.as_str()], "b first: a depends on it");
    assert!(pass["results"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["result"] == "upgraded"));
    assert_eq!(
        (tag_of(&a), tag_of(&b), tag_of(&c)),
        ("1.0.1".into(), "1.0.1".into(), "1.0.0".into()),
        "c is not opted in"
    );

    let body: Value = serde_json::from_str(&hook.join().unwrap()).unwrap();
    let sent = body["containers"].as_array().unwrap();
    assert_eq!(sent.len(), 2);
    for field in ["container", "from", "to", "result", "duration_ms"] {
        assert!(!sent[0][field].is_null(), "webhook lacks {field}: {body}");
    }

    let again = scene.cutover(&["auto", "--config", &cfg, "--json"]);
    again.expect(0);
    assert!(again.json()["pass"]["results"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn auto_rolls_back_a_failing_target_and_reports_it() {
    let _turn = auto_turn();
    let scene = Scene::new("autofail");
    let name = scene.run_image(
        "f",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{}/auto-fail:1.0.0", registry()),
    );
    let original = id_of(&name);
    // Nothing listens on this port: the notification fails, the pass must not.
    let cfg = config(
        &scene,
        &format!("webhook: http://127.0.0.1:{}/hook\n", free_port()),
    );
    let out = scene.cutover(&["auto", "--config", &cfg, "--json", "--settle", "3s"]);
    out.expect(1);
    let result = &out.json()["pass"]["results"][0];
    assert_eq!(result["container"], name);
    assert_eq!(result["result"], "rolled_back", "{result}");
    assert_eq!(id_of(&name), original);
    assert!(is_running(&name));
    assert!(
        out.stderr.contains("notifying http://127.0.0.1 failed"),
        "the failed notification is logged: {}",
        out.stderr
    );
}

#[test]
fn a_second_auto_pass_is_refused_while_one_runs() {
    let _turn = auto_turn();
    let scene = Scene::new("autolock");
    let name = scene.run_image(
        "x",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{}/auto-a:1.0.0", registry()),
    );
    // The first pass pauses after its upgrade's first step, holding the host lock.
    let mut first = scene.spawn(&["auto"], &[("CUTOVER_PAUSE_AFTER", "1")]);
    scene.wait_for_journal("\"index\":0,\"phase\":\"done\"", Duration::from_secs(60));
    let second = scene.cutover(&["auto"]);
    second.expect(2);
    assert!(
        second.stderr.contains("`cutover auto` pass"),
        "{}",
        second.stderr
    );
    kill_hard(&mut first);
    scene.cutover(&["recover", "--yes"]).expect(0);
    assert_eq!(tag_of(&name), "1.0.0");
    assert!(is_running(&name));
}

#[test]
fn a_resident_auto_runs_passes_on_its_schedule() {
    let _turn = auto_turn();
    let scene = Scene::new("autoschedule");
    let name = scene.run_image("s", &["--init"], &format!("{}/auto-b:1.0.0", registry()));
    let cfg = config(
        &scene,
        &format!("containers:\n  {name}: {{}}\nsettle: 1s\n"),
    );
    // Every second; the first pass that comes upgrades the container, later ones find it current.
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut resident = scene.spawn(
        &[
            "auto",
            "--config",
            &cfg,
            "--schedule",
            "* * * * * *",
            "--metrics-listen",
            &listen,
        ],
        &[],
    );
    scene.wait_for_journal("\"outcome\":\"succeeded\"", Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        resident.try_wait().unwrap().is_none(),
        "it stays resident after a pass"
    );
    // The last pass's metrics, served while it stays.
    let served = http_get_eventually(port, "/metrics");
    assert!(
        served
            .lines()
            .any(|l| l == "cutover_last_pass_upgrades{result=\"upgraded\"} 0.0"),
        "a later pass found nothing to do: {served}"
    );
    promtool_accepts(&served);
    assert_eq!(http_get(port, "/other"), None);
    kill_hard(&mut resident);
    assert_eq!(tag_of(&name), "1.0.1");
    assert!(is_running(&name));
    let runs = scene.cutover(&["history", "--json"]).json();
    assert_eq!(
        runs.as_array().unwrap().len(),
        1,
        "later passes found nothing to do: {runs}"
    );
}

#[test]
fn a_pass_writes_metrics_that_promtool_accepts_and_node_exporter_serves() {
    let _turn = auto_turn();
    let scene = Scene::new("metrics");
    let reg = registry();
    let good = scene.run_image(
        "good",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{reg}/auto-a:1.0.0"),
    );
    let bad = scene.run_image(
        "bad",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{reg}/auto-fail:1.0.0"),
    );
    let dir = temp_dir(&scene, "textfile");
    let file = dir.join("cutover.prom");
    let out = scene.cutover(&[
        "auto",
        "--json",
        "--settle",
        "3s",
        "--metrics-file",
        file.to_str().unwrap(),
    ]);
    out.expect(1);
    let text = read(&file);
    for line in [
        "cutover_last_pass_success 0.0".to_string(),
        "cutover_last_pass_upgrades{result=\"upgraded\"} 1.0".to_string(),
        "cutover_last_pass_upgrades{result=\"rolled_back\"} 1.0".to_string(),
        format!("cutover_last_pass_downtime_seconds{{container=\"{good}\"}}"),
        format!("cutover_last_pass_downtime_seconds{{container=\"{bad}\"}}"),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }

    promtool_accepts(&text);

    // node_exporter's textfile collector serves it.
    let port = free_port();
    let mut exporter = std::process::Command::new("prometheus-node-exporter")
        .args([
            "--collector.disable-defaults",
            "--collector.textfile",
            &format!("--collector.textfile.directory={}", dir.display()),
            &format!("--web.listen-address=127.0.0.1:{port}"),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let served = http_get_eventually(port, "/metrics");
    let _ = exporter.kill();
    let _ = exporter.wait();
    assert!(
        served.contains("cutover_last_pass_upgrades{result=\"upgraded\"} 1"),
        "{served}"
    );
    assert!(
        served.lines().any(|l| l == "node_textfile_scrape_error 0"),
        "node_exporter read the file: {served}"
    );
}
