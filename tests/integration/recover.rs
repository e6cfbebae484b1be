//! `cutover recover` after the process was killed with SIGKILL at known points.

use std::time::Duration;

use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(60);

#[test]
fn killed_while_waiting_for_health_then_recover_finishes_the_upgrade() {
    let scene = Scene::new("killhealth");
    let name = scene.run("app", &["--init"], "1");
    let mut run = scene.spawn(&["upgrade", &name, "--to", "slow", "--yes"], &[]);
    scene.wait_for_journal("\"index\":7,\"phase\":\"started\"", WAIT);
    kill_hard(&mut run);
    assert!(
        exists(&format!("{name}-old")),
        "killed mid-way, the old container is still aside"
    );

    let blocked = scene.upgrade(&name, "3", &[]);
    blocked.expect(2);
    assert!(
        blocked.stderr.contains("cutover recover"),
        "{}",
        blocked.stderr
    );

    assert_eq!(scene.recover(&[])["outcome"], "succeeded");
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("slow"));
    assert!(is_running(&name));
    assert_no_leftovers(&name);
    let history = scene.cutover(&["history", "--json"]).json();
    assert_eq!(history[0]["recovered"], true);
    assert_eq!(
        scene.cutover(&["recover", "--yes"]).expect(0).stdout.trim(),
        "No interrupted run to recover."
    );
}

#[test]
fn killed_while_waiting_for_a_version_that_never_gets_healthy_then_recover_rolls_back() {
    let scene = Scene::new("killunhealthy");
    let name = scene.run("app", &["--init"], "1");
    let original = id_of(&name);
    let mut run = scene.spawn(
        &[
            "upgrade",
            &name,
            "--to",
            "unhealthy",
            "--yes",
            "--health-timeout",
            "30s",
        ],
        &[],
    );
    scene.wait_for_journal("\"index\":7,\"phase\":\"started\"", WAIT);
    kill_hard(&mut run);
    assert_eq!(scene.recover(&[&name])["outcome"], "rolled_back");
    assert_eq!(id_of(&name), original);
    assert!(is_running(&name));
    assert_no_leftovers(&name);
}

#[test]
fn killed_while_the_old_container_is_renamed_then_recover_puts_it_back() {
    let scene = Scene::new("killrename");
    let (name, port) = scene.run_published("app", "1");
    let original = id_of(&name);
    // Step 5 renames the old container to NAME-old; the run pauses right after it.
    let mut run = scene.spawn(
        &["upgrade", &name, "--to", "2", "--yes"],
        &[("CUTOVER_PAUSE_AFTER", "5")],
    );
    scene.wait_for_journal("\"index\":4,\"phase\":\"done\"", WAIT);
    kill_hard(&mut run);
    assert_eq!(id_of(&format!("{name}-old")), original);
    assert!(!exists(&name), "the service is down, its container renamed");
    assert!(exists(&format!("{name}-new")));

    assert_eq!(scene.recover(&[])["outcome"], "rolled_back");
    assert_eq!(id_of(&name), original);
    assert!(is_running(&name));
    assert_no_leftovers(&name);
    assert_eq!(
        http_get_eventually(port, "/log.txt")
            .matches("v1 started")
            .count(),
        2
    );
    assert!(scene.journal_text().contains("\"recovered\":true"));
}
