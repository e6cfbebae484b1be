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

/// The demo app, and an upgrade of it to a version never healthy SIGKILLed while it waits for
/// that version's health: its name and its container's id.
fn killed_waiting_for_a_version_never_healthy(scene: &Scene) -> (String, String) {
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
    (name, original)
}

#[test]
fn killed_while_waiting_for_a_version_that_never_gets_healthy_then_recover_rolls_back() {
    let scene = Scene::new("killunhealthy");
    let (name, original) = killed_waiting_for_a_version_never_healthy(&scene);
    assert_eq!(scene.recover(&[&name])["outcome"], "rolled_back");
    assert_eq!(id_of(&name), original);
    assert!(is_running(&name));
    assert_no_leftovers(&name);
}

#[test]
fn killed_while_the_old_container_is_renamed_then_recover_puts_it_back() {
    let scene = Scene::new("killrename");
    let (name, port) = scene.run_published("app", "1");
    killed_after_the_rename_is_put_back(&scene, &name, port);
    assert!(scene.journal_text().contains("\"recovered\":true"));
}

/// An upgrade of `name` (demo:1, serving on `port`) to 2, SIGKILLed right after it renamed the
/// old container aside, then `recover`: the same container back under its name, running on its
/// data, started once more.
pub(crate) fn killed_after_the_rename_is_put_back(scene: &Scene, name: &str, port: u16) {
    let original = id_of(name);
    // Step 5 renames the old container to NAME-old; the run pauses right after it.
    let mut run = scene.spawn(
        &["upgrade", name, "--to", "2", "--yes"],
        &[("CUTOVER_PAUSE_AFTER", "5")],
    );
    scene.wait_for_journal("\"index\":4,\"phase\":\"done\"", WAIT);
    kill_hard(&mut run);
    assert_eq!(id_of(&format!("{name}-old")), original);
    assert!(!exists(name), "the service is down, its container renamed");
    assert!(exists(&format!("{name}-new")));

    assert_eq!(scene.recover(&[])["outcome"], "rolled_back");
    assert_eq!(id_of(name), original);
    assert!(is_running(name));
    assert_no_leftovers(name);
    assert_eq!(
        http_get_eventually(port, "/log.txt")
            .matches("v1 started")
            .count(),
        2,
        "its data kept, started once more"
    );
}

#[test]
fn a_journal_that_cannot_be_read_is_said_with_a_failing_exit_never_nothing_to_recover() {
    let scene = Scene::new("unreadable");
    let name = scene.run("app", &["--init"], "1");
    // A run killed after it stopped the container, whose journal a bad disk then damaged.
    let mut run = scene.spawn(&["upgrade", &name, "--to", "slow", "--yes"], &[]);
    scene.wait_for_journal("\"index\":7,\"phase\":\"started\"", WAIT);
    kill_hard(&mut run);
    let runs = scene.runs();
    let journal = std::fs::read_dir(&runs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .unwrap();
    let text = read(&journal);
    let damaged = text.replacen("\"kind\":\"upgrade\"", "\"kind\":***", 1);
    assert_ne!(text, damaged);
    std::fs::write(&journal, damaged).unwrap();

    let out = scene.cutover(&["recover", "--yes"]);
    out.expect(3);
    assert!(
        out.stdout.contains("cannot be read") && out.stdout.contains(&name),
        "{}",
        out.stdout
    );
    let json = scene.cutover(&["recover", "--yes", "--json"]);
    json.expect(3);
    assert_eq!(json.json()["recovered"][0]["outcome"], "needs_attention");
    let blocked = scene.upgrade(&name, "2", &[]);
    blocked.refused(&["cannot be read", "move the journal out of"]);
    let history = scene.cutover(&["history"]);
    history.expect(0);
    assert!(history.stdout.contains("UNREADABLE"), "{}", history.stdout);
}

#[test]
fn a_journal_whose_last_record_was_torn_by_a_power_loss_is_recovered() {
    let scene = Scene::new("tornjournal");
    let (name, port) = scene.run_published("app", "1");
    let id = id_of(&name);
    // Killed once the old container is renamed (step 5), in the middle of writing the next
    // record: its first bytes reached the disk, its end did not.
    let mut run = scene.spawn(
        &["upgrade", &name, "--to", "2", "--yes"],
        &[("CUTOVER_PAUSE_AFTER", "5")],
    );
    scene.wait_for_journal("\"index\":4,\"phase\":\"done\"", WAIT);
    kill_hard(&mut run);
    let journal = std::fs::read_dir(scene.runs())
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "jsonl"))
        .expect("the run's journal");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&journal)
        .unwrap();
    std::io::Write::write_all(&mut file, b"{\"event\":\"step\",\"stage\":0,\"ind").unwrap();
    drop(file);

    assert_eq!(scene.recover(&[])["outcome"], "rolled_back");
    assert_eq!(id_of(&name), id, "the old container serves again");
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert_no_leftovers(&name);
    assert!(
        !scene.journal_text().contains("\"ind{"),
        "the torn record was cut before recovery wrote after it"
    );
}

#[test]
fn a_run_journaled_where_an_earlier_cutover_kept_it_is_named_not_taken_for_nothing_to_recover() {
    let scene = Scene::new("legacyroot");
    let (name, original) = killed_waiting_for_a_version_never_healthy(&scene);
    // Where a cutover before per-engine state kept it: the state directory's own runs.
    let legacy = scene.state_dir.join("runs");
    std::fs::create_dir_all(&legacy).unwrap();
    for journal in std::fs::read_dir(scene.runs()).unwrap().flatten() {
        std::fs::rename(journal.path(), legacy.join(journal.file_name())).unwrap();
    }
    let out = scene.cutover(&["recover", "--yes"]);
    out.expect(0);
    assert!(
        out.stderr
            .contains(&format!("also holds interrupted runs of {name}"))
            && out.stderr.contains(&scene.runs().display().to_string()),
        "{}",
        out.stderr
    );
    // As the message says: moved into this engine's own runs, it is recovered.
    for journal in std::fs::read_dir(&legacy).unwrap().flatten() {
        std::fs::rename(journal.path(), scene.runs().join(journal.file_name())).unwrap();
    }
    assert_eq!(scene.recover(&[&name])["outcome"], "rolled_back");
    assert_eq!(id_of(&name), original);
    assert!(is_running(&name));
}

#[test]
fn a_second_controller_is_refused_by_the_claim_on_the_engine_until_the_first_recovered() {
    let first = Scene::new("claimfirst");
    let second = Scene::new("claimsecond");
    let name = first.run("app", &["--init"], "1");
    // The first controller is killed after it pulled, before it created anything.
    let mut run = first.spawn(
        &["upgrade", &name, "--to", "2", "--yes"],
        &[("CUTOVER_PAUSE_AFTER", "1")],
    );
    first.wait_for_journal("\"index\":0,\"phase\":\"done\"", WAIT);
    // Another machine's cutover (its own state directory) sees the claim on the engine.
    let refused = second.upgrade(&name, "3", &["--settle", "1s"]);
    refused.expect(2);
    assert!(
        refused
            .stderr
            .contains(&format!("{name} is being changed by cutover on "))
            && refused.stderr.contains(&format!("(process {})", run.id())),
        "{}",
        refused.stderr
    );
    kill_hard(&mut run);
    second.upgrade(&name, "3", &["--settle", "1s"]).expect(2);
    let claim = inspect(&format!("{name}-cutover-lock")).expect("the claim stays");
    // The image's VOLUME gave the claim an anonymous volume of its own.
    let volume = claim["Mounts"][0]["Name"].as_str().unwrap().to_string();

    // Recovered by the first controller, the claim is gone and the second may go on.
    assert_eq!(first.recover(&[&name])["outcome"], "nothing_changed");
    assert!(!exists(&format!("{name}-cutover-lock")));
    let gone = std::process::Command::new("/usr/bin/docker")
        .args(["volume", "inspect", &volume])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the claim's anonymous volume went with it"
    );
    second.upgrade(&name, "3", &["--settle", "1s"]).expect(0);
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("3"));
    assert!(
        !exists(&format!("{name}-cutover-lock")),
        "released when the run ended"
    );
}
