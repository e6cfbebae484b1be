//! SIGTERM and SIGINT sent to a real `cutover upgrade` at known points (paused there with
//! `CUTOVER_PAUSE_AFTER`): before the downtime nothing changes, during it the old version comes
//! back, once the new one was started the upgrade finishes; each with its exit code.

use std::process::Command;
use std::time::Duration;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(60);

/// Pauses an upgrade of demo 1 to 2 after step `after` (1-based), sends `signal`, and returns
/// what the run printed and how it exited.
fn signalled(scene: &Scene, name: &str, after: usize, signal: &str) -> Outcome {
    let pause = after.to_string();
    let run = scene.spawn(
        &["upgrade", name, "--to", "2", "--yes", "--json"],
        &[("CUTOVER_PAUSE_AFTER", pause.as_str())],
    );
    scene.wait_for_journal(&format!("\"index\":{},\"phase\":\"done\"", after - 1), WAIT);
    let sent = Command::new("kill")
        .args([&format!("-{signal}"), &run.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    Outcome::from(run.wait_with_output().unwrap())
}

#[test]
fn a_signal_before_the_downtime_changes_nothing() {
    let scene = Scene::new("sigbefore");
    let (name, _) = scene.run_published("app", "1");
    let before = inspect(&name).unwrap();
    // After the pull (step 1).
    let out = signalled(&scene, &name, 1, "TERM");
    out.expect(2);
    assert_eq!(out.json()["outcome"], "nothing_changed", "{}", out.stdout);
    assert!(out.json()["failure"]
        .as_str()
        .unwrap()
        .contains("interrupted by SIGTERM"));
    assert_untouched(&name, &before);
}

#[test]
fn a_signal_during_the_downtime_puts_the_old_version_back() {
    let scene = Scene::new("sigduring");
    let (name, port) = scene.run_published("app", "1");
    let id = id_of(&name);
    // After the stop (step 4): the service is down.
    let out = signalled(&scene, &name, 4, "INT");
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back", "{}", out.stdout);
    assert!(report["failure"]
        .as_str()
        .unwrap()
        .contains("interrupted by SIGINT"));
    assert!(
        out.stderr
            .contains("SIGINT: cutover stops after the step it is in"),
        "it says what it does: {}",
        out.stderr
    );
    assert_eq!(id_of(&name), id, "the old container serves again");
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert_no_leftovers(&name);
}

#[test]
fn a_signal_once_the_new_version_was_started_finishes_the_upgrade() {
    let scene = Scene::new("sigafter");
    let (name, port) = scene.run_published("app", "1");
    // After the new container's start (step 7): finishing is the shorter way back to service.
    let out = signalled(&scene, &name, 7, "TERM");
    out.expect(0);
    assert_eq!(out.json()["outcome"], "succeeded", "{}", out.stdout);
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("2"));
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert_no_leftovers(&name);
}
