//! `cutover rehearse`: an upgrade's migrations tried on a copy of the product's PostgreSQL
//! database while production serves, against the Anchore emulator (v0.7.0 -> v0.7.1 migrates,
//! v0.8.0's migration fails) and a real PostgreSQL. Whatever the migration does, production's
//! containers, data and networks must come out as they went in, and nothing the rehearsal made
//! may be left: not its containers, network, named volume, nor any anonymous volume.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use crate::backups::{maria_app, maria_dump};
use crate::helpers::*;
use crate::products::{anchore, image_of, proget_with_a_secret_file, schema, Anchore};

/// What a rehearsal's containers, network and volume are named after: `NAME-cutover-rehearse`.
const REHEARSE: &str = "cutover-rehearse";

/// The label on everything a rehearsal makes, whose value is the product's container.
const LABEL: &str = "cutover.rehearsal";

/// `cutover rehearse NAME --to TAG --yes EXTRA...`.
fn rehearse(scene: &Scene, name: &str, to: &str, extra: &[&str]) -> Outcome {
    let args = [&["rehearse", name, "--to", to, "--yes"][..], extra].concat();
    scene.cutover(&args)
}

/// What of a container must not change while a rehearsal runs beside it: the same container
/// (Id), never restarted (StartedAt), on the same image.
fn identity(name: &str) -> (Value, Value, String) {
    let c = inspect(name).unwrap_or_else(|| panic!("no container {name}"));
    (
        c["Id"].clone(),
        c["State"]["StartedAt"].clone(),
        image_of(name),
    )
}

/// Production as the rehearsal must leave it: its services' identities, its database's dump,
/// and what PostgreSQL counted of the writes to each of its tables. The counters see what a dump
/// cannot: a restore of the same dump into production leaves it equal, but recreates the tables
/// (new relids) and counts every row it inserted.
#[derive(Debug, PartialEq)]
struct Production {
    services: Vec<(Value, Value, String)>,
    dump: String,
    writes: String,
}

impl Production {
    /// Production before a rehearsal, whose counters hold the fixture's writes.
    fn of(a: &Anchore) -> Production {
        let before = Production::read(a);
        assert!(
            counts_fixture(&before.writes),
            "the counters of the fixture's table images (200 rows inserted) are not read: {:?}",
            before.writes
        );
        before
    }

    fn read(a: &Anchore) -> Production {
        Production {
            services: a.services.iter().map(|s| identity(s)).collect(),
            dump: a.database(),
            writes: writes(a),
        }
    }

    /// Asserts production is as `self` was, and still serving.
    fn assert_unchanged(&self, a: &Anchore) {
        let now = Production::read(a);
        for (i, service) in a.services.iter().enumerate() {
            assert_eq!(
                now.services[i], self.services[i],
                "{service} was replaced, restarted or moved to another image (Id, StartedAt, image)"
            );
            let state = &inspect(service).unwrap()["State"];
            assert!(
                state["Running"] == true && state["Health"]["Status"] == "healthy",
                "{service} no longer serves: {state}"
            );
        }
        assert!(
            now.dump == self.dump,
            "production's database changed:\nbefore:\n{}\nafter:\n{}",
            self.dump,
            now.dump
        );
        assert_eq!(
            now.writes, self.writes,
            "PostgreSQL counted writes to production's tables, or they were recreated (relid name inserts+updates+deletes)"
        );
    }
}

/// Each table of the product's database, its relid and the rows PostgreSQL counted inserted,
/// updated or deleted in it: once two reads agree and the fixture's 200 rows are counted, since
/// a session's counts reach the statistics only as it ends (within 10 s, else as they are).
fn writes(a: &Anchore) -> String {
    let read = || {
        sql(
            &a.db,
            a.user,
            a.database_name(),
            "SELECT string_agg(relid || ' ' || relname || ' ' || (n_tup_ins + n_tup_upd + n_tup_del), ', ' ORDER BY relid) FROM pg_stat_user_tables",
        )
    };
    let start = Instant::now();
    let mut last = read();
    loop {
        std::thread::sleep(Duration::from_millis(300));
        let now = read();
        if (now == last && counts_fixture(&now)) || start.elapsed() > Duration::from_secs(10) {
            return now;
        }
        last = now;
    }
}

/// Whether `writes` counts the 200 rows the fixture inserted into its table `images`.
fn counts_fixture(writes: &str) -> bool {
    writes.split(", ").any(|t| t.ends_with(" images 200"))
}

/// Everything cutover left on the engine for the scene's containers: containers, networks and
/// volumes named `...-cutover-...` (a rehearsal's, the claim `NAME-cutover-lock` of a run) or
/// labelled as a rehearsal's. Only the scene's own: other tests rehearse at the same time.
fn leftovers(scene: &Scene) -> Vec<String> {
    let mine = |name: &str| name.starts_with(&scene.prefix);
    let mut left = Vec::new();
    for (kind, list, name) in [
        ("container", ["ps", "-a"], "{{.Names}}"),
        ("network", ["network", "ls"], "{{.Name}}"),
        ("volume", ["volume", "ls"], "{{.Name}}"),
    ] {
        let format = format!("{name} {{{{.Label \"{LABEL}\"}}}}");
        let listed = docker(&[&list[..], &["--format", &format]].concat());
        for line in listed.lines() {
            let (name, label) = line.split_once(' ').unwrap_or((line, ""));
            if (mine(name) && name.contains("-cutover-")) || mine(label) {
                left.push(format!("{kind} {name}"));
            }
        }
    }
    left
}

fn assert_nothing_left(scene: &Scene) {
    let left = leftovers(scene);
    assert!(left.is_empty(), "cutover left {left:?}");
}

/// The engine's events from a moment on, read as they come (`docker events`, which replays
/// those since the start time, so that none is missed while it connects): which containers were
/// created and which volumes each mounted, anonymous ones included.
struct EngineEvents {
    child: Child,
    reader: JoinHandle<()>,
    events: Arc<Mutex<Vec<Value>>>,
}

/// What the engine reported while a rehearsal ran: the containers created, by name, and the
/// volumes each mounted.
struct Seen {
    containers: Vec<(String, String)>,
    mounts: Vec<(String, String)>,
}

impl Seen {
    /// The volumes mounted by the containers whose name starts with `prefix` and holds `part`.
    fn volumes_of(&self, prefix: &str, part: &str) -> Vec<String> {
        let ids: Vec<&String> = self
            .containers
            .iter()
            .filter(|(_, name)| name.starts_with(prefix) && name.contains(part))
            .map(|(id, _)| id)
            .collect();
        self.mounts
            .iter()
            .filter(|(_, container)| ids.contains(&container))
            .map(|(volume, _)| volume.clone())
            .collect()
    }

    fn created(&self, name: &str) -> bool {
        self.containers.iter().any(|(_, n)| n == name)
    }
}

impl EngineEvents {
    fn start() -> EngineEvents {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
            - 1;
        let mut child = Command::new("/usr/bin/docker")
            .args(["events", "--since", &since.to_string()])
            .args(["--filter", "type=container", "--filter", "type=volume"])
            .args(["--format", "{{json .}}"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker events starts");
        let stdout = child.stdout.take().unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let into = events.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(event) = serde_json::from_str(&line) {
                    into.lock().unwrap().push(event);
                }
            }
        });
        EngineEvents {
            child,
            reader,
            events,
        }
    }

    /// Stops reading, once the engine had a moment to send what happened until now.
    fn stop(mut self) -> Seen {
        std::thread::sleep(Duration::from_millis(500));
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = self.reader.join();
        let events = self.events.lock().unwrap();
        let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
        let of = |kind: &str, action: &str| -> Vec<&Value> {
            events
                .iter()
                .filter(|e| e["Type"] == kind && e["Action"] == action)
                .collect()
        };
        // Each event's actor, with one of its attributes.
        let pairs = |kind: &str, action: &str, attribute: &str| {
            of(kind, action)
                .into_iter()
                .map(|e| {
                    (
                        text(&e["Actor"]["ID"]),
                        text(&e["Actor"]["Attributes"][attribute]),
                    )
                })
                .collect()
        };
        Seen {
            containers: pairs("container", "create", "name"),
            mounts: pairs("volume", "mount", "container"),
        }
    }
}

/// The containers a rehearsal of `product` makes: the copy's server, the migrations' one-shot,
/// and the new version started on the migrated copy.
fn rehearsal_containers(product: &str) -> [String; 3] {
    [
        format!("{product}-{REHEARSE}-db"),
        format!("{product}-{REHEARSE}-migrate"),
        format!("{product}-{REHEARSE}-app"),
    ]
}

/// Asserts that the rehearsal of `product` made exactly the containers `made` of
/// [`rehearsal_containers`] (so that their absence afterwards means something), and that no
/// volume any of them mounted, the copy's named one or an anonymous one, still exists.
fn assert_volumes_gone(seen: &Seen, product: &str, made: &[&String]) {
    for name in rehearsal_containers(product) {
        assert_eq!(
            seen.created(&name),
            made.contains(&&name),
            "{name} created (true) or not (false) by the rehearsal: {:?}",
            seen.containers
        );
    }
    let volumes = seen.volumes_of(product, REHEARSE);
    let named = format!("{product}-{REHEARSE}-db");
    assert!(
        volumes.contains(&named),
        "the copy's server was not seen mounting its volume {named}: {volumes:?}"
    );
    for volume in volumes {
        assert!(
            !docker_output(&["volume", "inspect", &volume])
                .status
                .success(),
            "the volume {volume}, mounted by a rehearsal's container, was left behind"
        );
    }
}

/// The password is in none of what cutover printed or journaled.
fn assert_secret_kept(a: &Anchore, out: &Outcome) {
    for (what, text) in [
        ("stdout", &out.stdout),
        ("stderr", &out.stderr),
        ("the journal", &a.scene.journal_text()),
    ] {
        assert!(
            !text.contains(&a.password),
            "the database password is in {what}"
        );
    }
}

/// A migration that fails on the copy: exit 5 with its output, production untouched, the
/// copy gone. The owner is not a superuser and may not create databases, as in production: the
/// copy's server must be given the role and database by its own superuser. The migration lasts
/// 2 s more (a test knob of the emulator), long enough to be read in `ps`.
#[test]
fn a_migration_that_fails_on_the_copy_leaves_production_and_nothing_else_and_no_password_shown() {
    let a = anchore("rehearsefail", "anchore", &["MIGRATION_DELAY_SECS=2"]);
    let catalog = &a.services[0];
    let before = Production::of(&a);
    let events = EngineEvents::start();
    let watch = ArgvWatch::start(&a.password);
    let out = rehearse(&a.scene, catalog, "v0.8.0", &["--json"]);
    let (seen, leaks) = watch.stop();
    let engine = events.stop();

    let report = out.ended(
        5,
        "nothing_changed",
        "column \"owner_id\" of relation \"feeds\" already exists",
    );
    assert_eq!(report["exit_code"], 5, "{}", out.stdout);
    let failure = report["failure"].as_str().unwrap();
    assert!(
        failure.contains("Executing upgrade function: db_upgrade_070_080"),
        "the failure quotes the migration's output: {failure}"
    );
    let migrations = report["rehearsal"]["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 1, "{}", out.stdout);
    assert_eq!(
        migrations[0]["image"],
        product("anchore/anchore-engine:v0.8.0"),
        "{}",
        out.stdout
    );
    assert_eq!(migrations[0]["succeeded"], false, "{}", out.stdout);
    for what in ["window_ms", "start_ms", "stop_ms"] {
        assert!(
            report["rehearsal"][what].is_null(),
            "no {what} after a failed migration: {}",
            out.stdout
        );
    }

    before.assert_unchanged(&a);
    for service in &a.services {
        assert_eq!(
            image_of(service),
            product("anchore/anchore-engine:v0.7.0"),
            "{service}"
        );
    }
    assert_nothing_left(&a.scene);
    let [db, migrate, _] = &rehearsal_containers(catalog);
    assert_volumes_gone(&engine, catalog, &[db, migrate]);
    assert_secret_kept(&a, &out);
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    assert!(
        seen.iter().any(|line| line.contains(
            "anchore-manager db --db-connect postgresql://anchore@cutover-rehearsal-db:5432/anchore"
        )),
        "the migration was seen, connected to the copy with the password from PGPASSWORD: {seen:#?}"
    );
    assert_journals_parse(&a.scene);
}

/// A migration that passes on the copy: exit 0 with what it measured, production still on its
/// schema, and nothing in the way of the real upgrade that follows.
#[test]
fn a_migration_that_passes_on_the_copy_is_timed_and_the_upgrade_then_goes_through() {
    let a = anchore("rehearsepass", "postgres", &[]);
    let catalog = &a.services[0];
    let before = Production::of(&a);
    let events = EngineEvents::start();
    let out = rehearse(&a.scene, catalog, "v0.7.1", &["--json"]);
    let engine = events.stop();
    out.expect(0);
    let report = out.json();
    assert_eq!(report["outcome"], "succeeded", "{}", out.stdout);
    assert!(report["failure"].is_null(), "{}", out.stdout);
    let rehearsal = &report["rehearsal"];
    let migrations = rehearsal["migrations"].as_array().unwrap();
    assert_eq!(migrations.len(), 1, "one hop, one migration: {rehearsal}");
    assert_eq!(
        migrations[0]["image"],
        product("anchore/anchore-engine:v0.7.1"),
        "{rehearsal}"
    );
    assert_eq!(migrations[0]["succeeded"], true, "{rehearsal}");
    let ms = migrations[0]["ms"].as_u64().unwrap_or_default();
    assert!(ms > 0, "the migration was timed: {rehearsal}");
    let timed = |what: &str| {
        rehearsal[what]
            .as_u64()
            .unwrap_or_else(|| panic!("no {what}: {rehearsal}"))
    };
    let (start, stop) = (timed("start_ms"), timed("stop_ms"));
    assert!(start > 0, "the new version's start was timed: {rehearsal}");
    assert_eq!(
        timed("window_ms"),
        stop + ms + start,
        "the predicted window is the stop, the migration and the start: {rehearsal}"
    );
    timed("dump_ms");
    for kind in [
        "rehearse_start",
        "await_healthy",
        "check_version",
        "rehearse_stop",
    ] {
        assert_eq!(
            step(&report, kind)["status"],
            "done",
            "the new version started on the copy, was healthy and reported its version: {}",
            out.stdout
        );
    }
    assert!(
        out.stderr.contains("Upgrading DB: from=0.7.0 to=0.7.1")
            && out.stderr.contains("Upgrade success."),
        "the migration ran, on a copy of the 0.7.0 schema: {}",
        out.stderr
    );

    assert_eq!(
        schema(&a.db, a.user, a.database_name(), "anchore").0,
        "0.7.0",
        "production's schema did not move"
    );
    before.assert_unchanged(&a);
    assert_nothing_left(&a.scene);
    let made = rehearsal_containers(catalog);
    assert_volumes_gone(&engine, catalog, &made.iter().collect::<Vec<_>>());
    assert_secret_kept(&a, &out);
    assert_journals_parse(&a.scene);

    let upgrade = a.scene.upgrade(catalog, "v0.7.1", &["--json"]);
    upgrade.expect(0);
    assert_eq!(
        schema(&a.db, a.user, a.database_name(), "anchore"),
        ("0.7.1".into(), "anchore-manager db upgrade".into()),
        "the real upgrade migrated production"
    );
    for service in &a.services {
        assert_eq!(
            image_of(service),
            product("anchore/anchore-engine:v0.7.1"),
            "{service} moved with the upgrade"
        );
        assert!(is_running(service), "{service} runs after the upgrade");
        assert_no_leftovers(service);
    }
}

/// A rehearsal SIGKILLed while its migration runs on the copy (60 s: a test knob of the
/// emulator) leaves its copy behind and its journal open: the container's upgrade is refused
/// until `cutover recover`, which removes everything the rehearsal made and nothing else.
#[test]
fn a_rehearsal_killed_during_its_migration_is_removed_by_recover() {
    let a = anchore("rehearsekill", "postgres", &["MIGRATION_DELAY_SECS=60"]);
    let catalog = &a.services[0];
    let before = Production::of(&a);
    let events = EngineEvents::start();
    let mut run = a
        .scene
        .spawn(&["rehearse", catalog, "--to", "v0.7.1", "--yes"], &[]);
    let migrate = format!("{catalog}-{REHEARSE}-migrate");
    let start = Instant::now();
    while !is_running(&migrate) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the rehearsal's migration never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    kill_hard(&mut run);
    let left = leftovers(&a.scene);
    for made in [
        format!("container {migrate}"),
        format!("container {catalog}-{REHEARSE}-db"),
        format!("network {catalog}-{REHEARSE}"),
        format!("volume {catalog}-{REHEARSE}-db"),
    ] {
        assert!(
            left.contains(&made),
            "killed, the rehearsal had made {made}: {left:?}"
        );
    }

    a.scene
        .upgrade_refused(catalog, "v0.7.1", &[], &["cutover recover"]);
    rehearse(&a.scene, catalog, "v0.7.1", &[]).refused(&["cutover recover"]);

    let recovered = a.scene.recover(&[]);
    let engine = events.stop();
    assert_eq!(recovered["kind"], "rehearsal", "{recovered}");
    assert_eq!(recovered["outcome"], "nothing_changed", "{recovered}");
    assert_nothing_left(&a.scene);
    let [db, migrate, _] = &rehearsal_containers(catalog);
    assert_volumes_gone(&engine, catalog, &[db, migrate]);
    before.assert_unchanged(&a);
    assert_eq!(
        schema(&a.db, a.user, a.database_name(), "anchore").0,
        "0.7.0",
        "production's schema did not move"
    );
    assert_journals_parse(&a.scene);
    assert_eq!(
        a.scene
            .cutover(&["recover", "--yes"])
            .expect(0)
            .stdout
            .trim(),
        "No interrupted run to recover."
    );
}

/// `upgrade --rehearse` to a version whose migration fails on the copy: the upgrade never
/// begins (exit 5, the rehearsal's report), production is as it was and nothing is left.
#[test]
fn an_upgrade_whose_rehearsal_fails_never_begins() {
    let a = anchore("rehearseupgrade", "postgres", &[]);
    let catalog = &a.services[0];
    let before = Production::of(&a);
    let out = a
        .scene
        .upgrade(catalog, "v0.8.0", &["--rehearse", "--json"]);
    let report = out.ended(
        5,
        "nothing_changed",
        "column \"owner_id\" of relation \"feeds\" already exists",
    );
    assert_eq!(report["command"], "rehearsal", "{}", out.stdout);
    before.assert_unchanged(&a);
    assert_nothing_left(&a.scene);
    for service in &a.services {
        assert_no_leftovers(service);
    }
    let journals = a.scene.journal_text();
    assert!(
        journals.contains("\"kind\":\"rehearsal\"") && !journals.contains("\"kind\":\"upgrade\""),
        "the rehearsal was journaled, no upgrade was: {journals}"
    );
    assert_secret_kept(&a, &out);
}

/// A refused rehearsal made nothing: the container is the same one, never restarted, and
/// nothing of a rehearsal exists.
fn assert_refused_and_nothing_made(
    scene: &Scene,
    name: &str,
    extra: &[&str],
    reasons: &[&str],
) -> Outcome {
    let before = inspect(name).unwrap_or_else(|| panic!("no container {name}"));
    let out = rehearse(scene, name, "2", extra);
    out.refused(reasons);
    assert_untouched(name, &before);
    assert_nothing_left(scene);
    out
}

/// Without a profile, nothing says where the database is: the rehearsal asks for `--backup-db`.
#[test]
fn a_container_without_profile_is_told_to_name_its_database() {
    let scene = Scene::new("rehearsenoprofile");
    let name = scene.run("app", &["--init"], "1");
    assert_refused_and_nothing_made(
        &scene,
        &name,
        &["--profile", "none", "--migrate", "true"],
        &["give --backup-db VAR"],
    );
}

/// A PostgreSQL URL whose host is no container of the engine: there is no server whose image
/// the copy could run, so the rehearsal is refused; the password in the URL is not shown.
#[test]
fn a_database_on_no_container_is_refused() {
    let scene = Scene::new("rehearseelsewhere");
    let net = network(&scene);
    let name = scene.run(
        "app",
        &[
            "--init",
            "--network",
            &net,
            "-e",
            "DATABASE_URL=postgres://app:elsewhere-pw-31@db.example.internal:5432/app",
        ],
        "1",
    );
    let out = assert_refused_and_nothing_made(
        &scene,
        &name,
        &["--backup-db", "DATABASE_URL", "--migrate", "true"],
        &["is on no container of this engine"],
    );
    assert!(
        !out.stderr.contains("elsewhere-pw-31") && !out.stdout.contains("elsewhere-pw-31"),
        "the password was shown: {}",
        out.stderr
    );
}

/// A MariaDB database (no profile: `--backup-db` and `--migrate`), copied onto a server of its
/// image whose first start makes the product's user from the same environment: the app's
/// migration runs on the copy, production's container and dump are as they were, nothing is
/// left, and no command line held the password.
#[test]
fn a_mariadb_database_is_rehearsed_on_a_copy() {
    mariadb_rehearsed_on_a_copy(&Scene::new("rehearsemaria"));
}

/// The app's migration rehearsed on a copy of its MariaDB; production untouched.
pub(crate) fn mariadb_rehearsed_on_a_copy(scene: &Scene) {
    let (db, name, _) = maria_app(scene);
    let before = (identity(&name), maria_dump(&db));
    let watch = ArgvWatch::start("app-pw-9");
    let out = rehearse(
        scene,
        &name,
        "2",
        &[
            "--backup-db",
            "DB_URL",
            "--migrate",
            "/app/migrate-mysql",
            "--json",
        ],
    );
    let (_, leaks) = watch.stop();
    out.expect(0);
    assert!(
        out.stderr.contains("schema migrated to 2"),
        "the migration ran on the copy: {}",
        out.stderr
    );
    assert_eq!(
        (identity(&name), maria_dump(&db)),
        before,
        "production's container and database are as they were"
    );
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(!text.contains("app-pw-9"), "the password was shown");
    }
    assert_nothing_left(scene);
}

/// DevLake on PostgreSQL, whose migration is the profile's call on the new version as it
/// starts (`/proceed-db-migration`): 0.18's passes on the copy and is timed in the start; the
/// emulator's 0.19 answers 500 to it, which fails the rehearsal (exit 5) with the answer. Its
/// production database keeps 0.17's schema and nothing is left either way.
#[test]
fn devlake_is_rehearsed_through_its_migration_call_on_the_started_copy() {
    let scene = Scene::new("rehearselake");
    let net = network(&scene);
    let db = postgres(&scene, &net, "lake", "lake-rehearse-7", "lake");
    let (name, port) = scene.run_served(
        "lake",
        &net,
        8080,
        &["-e", "DB_URL=postgres://lake:lake-rehearse-7@db:5432/lake"],
        &product("apache/devlake:v0.17.0"),
    );
    http_get_eventually(port, "/blueprints");
    let schema_of = || {
        sql(
            &db,
            "lake",
            "lake",
            "SELECT version FROM emulator_schema WHERE product = 'devlake'",
        )
    };
    let before = (
        identity(&name),
        pg_dump_plain(&db, "lake", "lake"),
        schema_of(),
    );

    let passed = rehearse(&scene, &name, "v0.18.0", &["--json"]);
    passed.expect(0);
    let report = passed.json();
    let calls: Vec<&Value> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "call")
        .collect();
    assert!(
        calls.len() == 1 && calls[0]["status"] == "done",
        "the migration call was made on the copy: {}",
        passed.stdout
    );
    let start = report["rehearsal"]["start_ms"].as_u64().unwrap();
    assert_eq!(
        report["rehearsal"]["window_ms"].as_u64(),
        Some(report["rehearsal"]["stop_ms"].as_u64().unwrap() + start),
        "no one-shot: the window is the stop and the start with its migration"
    );

    let failed = rehearse(&scene, &name, "v0.19.0", &["--json"]);
    failed.expect(5);
    let failure = failed.json()["failure"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        failure.contains("/proceed-db-migration answered 500"),
        "{failure}"
    );
    assert_eq!(
        (
            identity(&name),
            pg_dump_plain(&db, "lake", "lake"),
            schema_of()
        ),
        before,
        "production's container and database are as they were"
    );
    for text in [
        &passed.stdout,
        &passed.stderr,
        &failed.stderr,
        &scene.journal_text(),
    ] {
        assert!(!text.contains("lake-rehearse-7"), "the password was shown");
    }
    assert_nothing_left(&scene);
}

/// None of `secrets` in what the runs printed or the scene's journals hold.
fn never_said(scene: &Scene, runs: &[&Outcome], secrets: &[&str]) {
    let mut texts: Vec<String> = runs
        .iter()
        .flat_map(|r| [r.stdout.clone(), r.stderr.clone()])
        .collect();
    texts.push(scene.journal_text());
    for text in &texts {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret} was said: {text}");
        }
    }
}

/// Quay keeps its connection in `config.yaml` on its config volume (Red Hat's standalone
/// procedure mounts it at /conf/stack): the rehearsal's containers get a copy of that
/// directory with `DB_URI` pointed at the copy, and production's file, container and database
/// stay as they were, whether the new version's migration passes or fails.
#[test]
fn quay_is_rehearsed_on_a_copy_of_its_config_directory_pointed_at_the_copy() {
    let scene = Scene::new("rehearsequay");
    let site = quay_site(&scene);
    let (name, port) = site.node(&scene, "quay", &product("projectquay/quay:v3.9.0"), &[]);
    http_get_eventually(port, "/health/instance");
    let mount = site.mount();
    let config = || {
        docker(&[
            "run",
            "--rm",
            "-v",
            &mount,
            "--entrypoint",
            "/bin/cat",
            &image("1"),
            "/conf/stack/config.yaml",
        ])
    };
    let before = (
        identity(&name),
        pg_dump_plain(&site.db, "quay", "quay"),
        config(),
    );

    let passed = rehearse(&scene, &name, "v3.10.0", &["--json"]);
    passed.expect(0);
    let report = passed.json();
    assert!(
        report["rehearsal"]["window_ms"].as_u64().is_some(),
        "{}",
        passed.stdout
    );
    assert!(
        steps_field(&report, "description")
            .iter()
            .any(|d| d.contains("/conf/stack with its connection pointed at the copy")),
        "the migration was given the config directory: {}",
        passed.stdout
    );
    assert_nothing_left(&scene);

    let failed = rehearse(&scene, &name, "v3.11.0", &["--json"]);
    failed.expect(5);
    assert_eq!(
        (
            identity(&name),
            pg_dump_plain(&site.db, "quay", "quay"),
            config()
        ),
        before,
        "production's container, database and config file are as they were"
    );
    never_said(
        &scene,
        &[&passed, &failed],
        &[QUAY_DB_PASSWORD, QUAY_SECRET_KEY],
    );
    assert_nothing_left(&scene);
}

/// ProGet on PostgreSQL, its connection string given as a secret file (a bind mount): the
/// rehearsal's containers get a copy of that file naming the copy; production's file,
/// container and database are as they were, and no password reaches a command line.
#[test]
fn proget_on_postgresql_with_its_connection_in_a_secret_file_is_rehearsed() {
    let scene = Scene::new("rehearseproget");
    let password = "pg-rehearse-secret-3";
    let (name, _, db, secret) = proget_with_a_secret_file(&scene, password);
    let connection = std::fs::read_to_string(&secret).unwrap();
    let before = (identity(&name), pg_dump_plain(&db, "proget", "proget"));

    let watch = ArgvWatch::start(password);
    let passed = rehearse(&scene, &name, "26.0.1", &["--json"]);
    let (_, leaks) = watch.stop();
    passed.expect(0);
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    assert!(
        steps_field(&passed.json(), "description")
            .iter()
            .any(|d| d.contains("a copy of its file in /run/secrets")),
        "the migration was given the secret file: {}",
        passed.stdout
    );
    assert!(
        passed.stderr.contains("26.0.1"),
        "the new version's migration ran: {}",
        passed.stderr
    );

    let failed = rehearse(&scene, &name, "25.0.2", &["--json"]);
    failed.expect(5);
    assert_eq!(
        (identity(&name), pg_dump_plain(&db, "proget", "proget")),
        before,
        "production's container and database are as they were"
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        connection,
        "production's secret file was only read"
    );
    never_said(&scene, &[&passed, &failed], &[password]);
    assert_nothing_left(&scene);
}
