//! Faults real hosts have, produced for real: a full disk under the journal or the backups,
//! filled while a run is paused at a known step (`CUTOVER_PAUSE_AFTER` with
//! `CUTOVER_PAUSE_FOR`); a registry killed in the middle of a pull and a dockerd restarted in
//! the middle of a migration, on an engine and a registry of the test's own. Each ends with one
//! version serving, nothing left behind, and a true exit code and message.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::engines::{OwnRegistry, PrivateEngine, SlowLink};
use crate::helpers::*;

const WAIT: Duration = Duration::from_secs(60);

/// A small tmpfs mounted for the test, unmounted when dropped.
struct SmallDisk {
    dir: PathBuf,
}

impl SmallDisk {
    fn new(scene: &Scene, what: &str, size: &str) -> SmallDisk {
        let dir = temp_dir(scene, what);
        let mounted = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(&dir)
            .status()
            .expect("mount runs");
        assert!(
            mounted.success(),
            "a tmpfs on {} (these tests run as root)",
            dir.display()
        );
        SmallDisk { dir }
    }

    /// Writes until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.dir.join("filler")).unwrap();
        let block = vec![0u8; 64 * 1024];
        while file.write_all(&block).is_ok() {}
        let _ = file.sync_all();
    }

    fn free(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }

    fn path(&self) -> &Path {
        &self.dir
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// Runs `cutover ARGS --yes --json` paused for 3 s after step `after` (1-based), fills the disk
/// during the pause, and returns how the run ended.
fn filled_after(scene: &Scene, args: &[&str], after: usize, disk: &SmallDisk) -> Outcome {
    let pause = after.to_string();
    let mut all = args.to_vec();
    all.extend(["--yes", "--json"]);
    let run = scene.spawn(
        &all,
        &[
            ("CUTOVER_PAUSE_AFTER", pause.as_str()),
            ("CUTOVER_PAUSE_FOR", "3s"),
        ],
    );
    scene.wait_for_journal(&format!("\"index\":{},\"phase\":\"done\"", after - 1), WAIT);
    disk.fill();
    Outcome::from(run.wait_with_output().unwrap())
}

#[test]
fn a_journal_that_cannot_be_written_stops_the_run_and_the_old_version_comes_back() {
    let mut scene = Scene::new("fulljournal");
    let disk = SmallDisk::new(&scene, "state", "1m");
    scene.state_dir = disk.path().join("state");
    let (name, port) = scene.run_published("app", "1");
    let id = id_of(&name);
    // After the stop (step 4), the next record finds no room.
    let out = filled_after(&scene, &["upgrade", &name, "--to", "2"], 4, &disk);
    let report = out.ended(1, "rolled_back", "the journal cannot be written");
    assert!(
        report["warnings"].to_string().contains("cutover recover"),
        "it says how to close the journal: {}",
        out.stdout
    );
    assert_eq!(id_of(&name), id, "the old container serves again");
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert_no_leftovers(&name);

    // With room again, recover closes the journal and the container can be upgraded.
    disk.free();
    let recovered = scene.recover(&[]);
    assert_eq!(recovered["outcome"], "rolled_back", "{recovered}");
    assert_eq!(id_of(&name), id);
    scene.upgrade(&name, "2", &[]).expect(0);
}

#[test]
fn a_backup_that_runs_out_of_room_aborts_cleanly_and_the_old_version_keeps_its_data() {
    let scene = Scene::new("fullbackup");
    let net = network(&scene);
    let db = postgres(&scene, &net, "app", "app-pw-21", "app");
    sql_eventually(
        &db,
        "app",
        "app",
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 1000)",
    );
    let before = pg_dump_plain(&db, "app", "app");
    let (name, port) = scene.run_served(
        "app",
        &net,
        8080,
        &[
            "--init",
            "-e",
            "DB_URL=postgres://app:app-pw-21@db:5432/app",
        ],
        &image("1"),
    );
    http_get_eventually(port, "/");
    let id = id_of(&name);
    let disk = SmallDisk::new(&scene, "backups", "64m");
    let backups = disk.path().to_str().unwrap().to_string();
    // After the stop (step 4) the disk fills; the dump in the window (step 5) finds no room.
    let out = filled_after(
        &scene,
        &[
            "upgrade",
            &name,
            "--to",
            "2",
            "--backup-db",
            "DB_URL",
            "--backup-dir",
            &backups,
            "--backup-dump",
        ],
        4,
        &disk,
    );
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back", "{}", out.stdout);
    assert!(
        step_detail(&report, "backup").contains("No space left on device"),
        "{}",
        out.stdout
    );
    assert_eq!(id_of(&name), id);
    assert!(http_get_eventually(port, "/").contains("version=1"));
    assert_no_leftovers(&name);
    assert_eq!(
        pg_dump_plain(&db, "app", "app"),
        before,
        "the data as it was"
    );
    let partial: Vec<_> = std::fs::read_dir(disk.path().join(&name))
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(partial.is_empty(), "no partial backup is left: {partial:?}");
}

/// `cutover ARGS` against `engine`, started in the background.
fn spawn_on(scene: &Scene, engine: &PrivateEngine, args: &[&str]) -> std::process::Child {
    scene.spawn(args, &[("DOCKER_HOST", engine.host().as_str())])
}

/// Waits until `ready` holds, or fails the test saying `what` never happened.
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let start = std::time::Instant::now();
    while !ready() {
        assert!(start.elapsed() < WAIT, "{what} never happened");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_registry_killed_in_the_middle_of_the_pull_changes_nothing_and_the_next_run_upgrades() {
    let scene = Scene::new("registrydies");
    let mut registry = OwnRegistry::start("registrydies");
    let link = SlowLink::to(registry.port);
    // A new version with a layer of 4 MB of its own, pushed to the test's registry.
    let context = temp_dir(&scene, "image");
    let mut payload = Vec::new();
    std::fs::File::open("/dev/urandom")
        .unwrap()
        .take(4 << 20)
        .read_to_end(&mut payload)
        .unwrap();
    std::fs::write(context.join("payload"), payload).unwrap();
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {}\nCOPY payload /payload\n", image("2")),
    )
    .unwrap();
    let own = |tag: &str| format!("127.0.0.1:{}/demo:{tag}", registry.port);
    let build = Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &own("big")])
        .arg(&context)
        .env("DOCKER_HOST", std::env::var("DOCKER_HOST").unwrap())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    docker(&["tag", &image("1"), &own("1")]);
    for tag in ["1", "big"] {
        docker(&["push", "-q", &own(tag)]);
        docker(&["rmi", &own(tag)]);
    }

    // The engine tries a download once (dockerd's default of 5 attempts with growing pauses
    // only makes the same failure take a minute).
    let engine = PrivateEngine::start("registrydies", &["--max-download-attempts", "1"]);
    let through_link = |tag: &str| format!("127.0.0.1:{}/demo:{tag}", link.port);
    let name = scene.name("app");
    let id = engine.run_app(&name, &through_link("1"));

    link.slow_down();
    let args = [
        "upgrade", &name, "--to", "big", "--yes", "--json", "--settle", "2s",
    ];
    let run = spawn_on(&scene, &engine, &args);
    until("a quarter of a megabyte of the new layer", || {
        link.relayed_slowly() > 256 << 10
    });
    registry.kill();
    let out = Outcome::from(run.wait_with_output().unwrap());
    out.ended(2, "nothing_changed", "pull");
    assert_eq!(
        engine.inspect(&name, "{{.Id}} {{.State.Running}}"),
        Some(format!("{id} true"))
    );
    assert_eq!(engine.names(), [name.as_str()], "nothing left behind");

    // The registry comes back: the next run pulls the whole image and upgrades.
    registry.up();
    link.speed_up();
    let out = Outcome::from(spawn_on(&scene, &engine, &args).wait_with_output().unwrap());
    out.expect(0);
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}"),
        Some(through_link("big"))
    );
    let log = engine.run(&["exec", &name, "cat", "/data/log.txt"]);
    assert!(
        log.contains("v1 started") && log.contains("v2 started"),
        "{log}"
    );
}

/// `cutover upgrade NAME --to 2 EXTRA...` on `engine` with a migration of 5 s, started in the
/// background and returned once its migration runs.
fn in_its_migration(
    scene: &Scene,
    engine: &PrivateEngine,
    name: &str,
    extra: &[&str],
) -> std::process::Child {
    let args = [
        &[
            "upgrade",
            name,
            "--to",
            "2",
            "--yes",
            "--json",
            "--migrate",
            "sh -c 'sleep 5; /app/migrate'",
        ][..],
        extra,
    ]
    .concat();
    let run = spawn_on(scene, engine, &args);
    let migration = format!("{name}-migrate");
    until("the migration's start", || {
        engine.inspect(&migration, "{{.State.Running}}").as_deref() == Some("true")
    });
    run
}

/// The old container (`id`) serves again under its name, with its data, and nothing else is left.
fn old_serves_again(engine: &PrivateEngine, name: &str, id: &str) {
    assert_eq!(
        engine.inspect(name, "{{.Id}} {{.State.Running}} {{.Config.Image}}"),
        Some(format!("{id} true {}", image("1"))),
        "the old container serves again"
    );
    assert_eq!(engine.names(), [name], "nothing left behind");
    let log = engine.run(&["exec", name, "cat", "/data/log.txt"]);
    assert!(log.starts_with("v1 started"), "its data is there: {log}");
}

#[test]
fn a_dockerd_restarted_in_the_middle_of_the_migration_is_waited_for_and_the_old_version_comes_back()
{
    let scene = Scene::new("enginerestart");
    let mut engine = PrivateEngine::start("enginerestart", &[]);
    let name = scene.name("app");
    let id = engine.run_app(&name, &image("1"));
    let run = in_its_migration(&scene, &engine, &name, &["--settle", "2s"]);
    // What `systemctl restart docker` does: SIGTERM stops every container, then it comes back.
    engine.restart();
    let out = Outcome::from(run.wait_with_output().unwrap());
    out.ended(
        1,
        "rolled_back",
        "the Docker engine went away during the step and is back",
    );
    assert!(
        out.stderr.contains("waiting up to 2m for it to come back"),
        "{}",
        out.stderr
    );
    old_serves_again(&engine, &name, &id);
}

#[test]
fn a_dockerd_that_stays_away_ends_the_run_within_its_wait_and_recover_brings_the_old_version_back()
{
    let scene = Scene::new("enginegone");
    let mut engine = PrivateEngine::start("enginegone", &[]);
    let name = scene.name("app");
    let id = engine.run_app(&name, &image("1"));
    let run = in_its_migration(&scene, &engine, &name, &["--engine-wait", "10s"]);
    // dockerd stopped for good (a failed package upgrade, a host being drained).
    let stopped = std::time::Instant::now();
    engine.down();
    let out = Outcome::from(run.wait_with_output().unwrap());
    let took = stopped.elapsed();
    out.ended(3, "needs_attention", "");
    assert!(
        took < Duration::from_secs(10 + 8),
        "one wait for the whole run, undos included: {took:?}"
    );
    let report = out.json();
    let message = report.to_string();
    assert!(
        message.contains(&format!("`cutover recover {name}`")) && message.contains("10s"),
        "{}",
        out.stdout
    );
    engine.up_again();
    let recovered = scene
        .cutover_with_env(
            &["recover", "--yes", "--json"],
            &[("DOCKER_HOST", engine.host().as_str())],
        )
        .expect(0)
        .json();
    assert_eq!(
        recovered["recovered"][0]["outcome"], "rolled_back",
        "{recovered}"
    );
    old_serves_again(&engine, &name, &id);
}
