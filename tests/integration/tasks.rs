//! Anchore Engine's object-storage migration as one command (`cutover task NAME
//! migrate-object-storage --dest-config FILE`), against the product emulator's Anchore (its
//! `anchore-manager objectstorage` with the real tool's traps) and a real PostgreSQL; and a task
//! of an operator's own profile.

use std::time::{Duration, Instant};

use crate::helpers::*;

const PASSWORD: &str = "anchore-pw-31";
const DOCUMENTS: usize = 10;

/// The catalog's configuration: documents in the database (the default driver), or in a
/// directory of the `archive` volume.
fn catalog_config(driver: &str) -> String {
    match driver {
        "db" => "services:\n  catalog:\n    enabled: true\n    object_store:\n      storage_driver:\n        name: db\n".into(),
        dir => format!("services:\n  catalog:\n    enabled: true\n    object_store:\n      storage_driver:\n        name: localfs\n        config:\n          archive_data_dir: {dir}\n"),
    }
}

/// Three Anchore containers on one database: two catalogs (one with a config volume, one with
/// a config file bind-mounted from the host) and an API service with its own config, which
/// enables the catalog too, as the image's default config does for every service
/// (conf/default_config.yaml L85-167): only the start command says which container runs the
/// catalog. Documents in the database.
struct Group {
    scene: Scene,
    db: String,
    catalog: String,
    catalog_port: u16,
    second: String,
    /// The host file the second catalog mounts as its config.
    second_file: std::path::PathBuf,
    api: String,
    /// The destination config's path on the host.
    dest: String,
}

impl Group {
    /// `cutover task CATALOG migrate-object-storage --dest-config DEST` then `more`.
    fn migrate_args<'a>(&'a self, more: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "task",
            &self.catalog,
            "migrate-object-storage",
            "--dest-config",
            &self.dest,
        ];
        args.extend(more);
        args
    }
}

fn group(test: &str, extra_env: &[&str]) -> Group {
    let scene = Scene::new(test);
    let net = network(&scene);
    let db = postgres(&scene, &net, "anchore", PASSWORD, "anchore");
    let config = |what: &str, text: &str| {
        let volume = scene.name(what);
        docker(&[
            "run",
            "--rm",
            "-v",
            &format!("{volume}:/config"),
            "--entrypoint",
            "/bin/sh",
            &image("1"),
            "-c",
            &format!("printf '{text}' > /config/config.yaml"),
        ]);
        format!("{volume}:/config")
    };
    let catalog_conf = config("conf-catalog", &catalog_config("db"));
    // The second catalog's config is a single file bind-mounted from the host (Anchore's
    // compose files show `./config-engine.yaml:/config/config.yaml`), which the engine cannot
    // replace: cutover writes it in place.
    let second_file = temp_dir(&scene, "conf-second").join("config.yaml");
    std::fs::write(&second_file, catalog_config("db")).unwrap();
    let second_conf = format!("{}:/config/config.yaml", second_file.display());
    let api_conf = config(
        "conf-api",
        &format!("{}  apiext:\n    enabled: true\n", catalog_config("db")),
    );
    let archive = format!("{}:/archive", scene.name("archive"));
    let mut env = vec![
        "-e".to_string(),
        "ANCHORE_DB_HOST=db".into(),
        "-e".into(),
        "ANCHORE_DB_USER=anchore".into(),
        "-e".into(),
        format!("ANCHORE_DB_PASSWORD={PASSWORD}"),
        "-e".into(),
        "ANCHORE_DB_NAME=anchore".into(),
    ];
    for e in extra_env {
        env.extend(["-e".to_string(), e.to_string()]);
    }
    let run = |what: &str, conf: &str, service: &str, publish: bool| {
        let mut options: Vec<&str> = vec!["-v", conf, "-v", &archive];
        options.extend(env.iter().map(String::as_str));
        let image = product("anchore/anchore-engine:v0.7.0");
        let command = ["anchore-manager", "service", "start", service];
        let mut all = options.clone();
        all.push(&image);
        all.extend(command);
        let (name, port) = match publish {
            true => {
                let port = free_port();
                let publish = format!("127.0.0.1:{port}:8228");
                let mut with = vec!["--network", &net, "-p", &publish];
                with.extend(all);
                (run_args(&scene, what, &with), port)
            }
            false => {
                let mut with = vec!["--network", net.as_str()];
                with.extend(all);
                (run_args(&scene, what, &with), 0)
            }
        };
        (name, port)
    };
    let (catalog, catalog_port) = run("catalog", &catalog_conf, "catalog", true);
    let (second, _) = run("second", &second_conf, "catalog", false);
    let (api, _) = run("api", &api_conf, "apiext", false);
    http_get_eventually(catalog_port, "/health");
    docker(&[
        "exec",
        &catalog,
        "/emulator",
        "add-documents",
        &DOCUMENTS.to_string(),
    ]);
    let dest = temp_dir(&scene, "dest")
        .join("dest.yaml")
        .display()
        .to_string();
    std::fs::write(&dest, catalog_config("/archive/store")).unwrap();
    Group {
        scene,
        db,
        catalog,
        catalog_port,
        second,
        second_file,
        api,
        dest,
    }
}

/// `docker run -d --name NAME ARGS...` where the image and its command end ARGS.
fn run_args(scene: &Scene, what: &str, args: &[&str]) -> String {
    let name = scene.name(what);
    let mut all = vec!["run", "-d", "--name", &name];
    all.extend_from_slice(args);
    docker(&all);
    name
}

/// What document `i` holds, as the emulator writes it.
fn bucket(i: usize) -> &'static str {
    if i.is_multiple_of(2) {
        "analysis_data"
    } else {
        "manifest_data"
    }
}

/// Every document, read through the catalog's API, from whichever store its config names.
fn assert_documents_readable(g: &Group, case: &str) {
    http_get_eventually(g.catalog_port, "/health");
    for i in 0..DOCUMENTS {
        let body = http_get(g.catalog_port, &format!("/documents/{}/doc-{i}", bucket(i)));
        assert!(
            body.as_deref()
                .is_some_and(|b| b.contains(&format!("\"document\": {i},"))),
            "{case}: document {i} is not readable: {body:?}"
        );
    }
}

fn config_of(name: &str) -> String {
    docker(&["exec", name, "cat", "/config/config.yaml"])
}

/// Where each document lives now, from the database's index.
fn stores(db: &str) -> String {
    sql(
        db,
        "anchore",
        "anchore",
        "SELECT DISTINCT split_part(content_url, ':', 1) FROM archive_metadata ORDER BY 1",
    )
}

#[test]
fn the_object_store_moves_to_another_driver_and_every_component_switches_to_it() {
    // Each document's copy takes 200 ms (a test knob of the emulator): the migration's command
    // line is there to be read for 2 s.
    let g = group("objstore", &["EMULATOR_MIGRATE_DELAY_MS=200"]);
    let out = g.scene.cutover(&["tasks", &g.catalog]);
    out.expect(0);
    assert!(
        out.stdout
            .contains("migrate-object-storage: Move the documents"),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("--dest-config FILE"), "{}", out.stdout);

    let before = inspect(&g.catalog).unwrap();
    let dry_run = |args: &[&str]| {
        let out = g.scene.cutover(args);
        out.expect(0);
        assert!(
            out.stdout
                .contains(&format!("Task migrate-object-storage on {}", g.catalog)),
            "{}",
            out.stdout
        );
        assert_untouched(&g.catalog, &before);
    };
    dry_run(&g.migrate_args(&["--dry-run"]));
    // HOST/NAME of a fleet, its config file among the words after the task.
    let fleet = temp_dir(&g.scene, "fleet").join("fleet.yaml");
    let world = std::env::var("DOCKER_HOST").unwrap();
    std::fs::write(&fleet, format!("hosts:\n  here: {{host: '{world}'}}\n")).unwrap();
    let here = format!("here/{}", g.catalog);
    let mut args = g.migrate_args(&["--dry-run", "--config", fleet.to_str().unwrap()]);
    args[1] = &here;
    dry_run(&args);

    // cutover's own options may follow the task's.
    let watch = ArgvWatch::start(PASSWORD);
    let out = g.scene.cutover(&g.migrate_args(&["--yes", "--json"]));
    let (seen, leaks) = watch.stop();
    out.expect(0);
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    assert!(
        seen.iter().any(|line| line
            .contains("objectstorage --db-connect postgresql://anchore@db:5432/anchore")
            && line.contains(" migrate ")),
        "the migration was seen, and connected with the password from PGPASSWORD: {seen:#?}"
    );
    let report = out.json();
    assert_eq!(report["outcome"], "succeeded", "{}", out.stdout);
    let mut members: Vec<String> = serde_json::from_value(report["members"].clone()).unwrap();
    members.sort();
    let mut want = vec![g.catalog.clone(), g.second.clone(), g.api.clone()];
    want.sort();
    assert_eq!(members, want, "every Anchore container on the database");
    assert!(step_detail(&report, "run").contains("exited 0"), "{report}");
    let verify = steps_field(&report, "detail")
        .into_iter()
        .find(|d| d.contains("list-migrations"))
        .unwrap();
    assert!(
        verify.ends_with(&format!("migrated count {DOCUMENTS} = total to migrate")),
        "{verify}"
    );
    assert_eq!(stores(&g.db), "file", "every document moved");
    // Anchore's step 7: "Ensure the dest-config.yaml is in place for all the components as
    // config.yaml": the API's own file too, though it runs no catalog.
    for member in [&g.catalog, &g.second, &g.api] {
        assert!(
            config_of(member).contains("name: localfs"),
            "{member} switched"
        );
        let old = docker(&["exec", member, "cat", "/config/config.old.yaml"]);
        assert!(
            old.contains("name: db"),
            "{member} keeps its old config beside"
        );
    }
    assert!(
        docker(&["exec", &g.api, "cat", "/config/config.old.yaml"]).contains("apiext:"),
        "the API's own old file is the one kept beside it"
    );
    assert!(
        std::fs::read_to_string(&g.second_file)
            .unwrap()
            .contains("name: localfs"),
        "the bind-mounted file itself is rewritten"
    );
    assert_documents_readable(&g, "after the migration");
    for name in [&g.catalog, &g.second, &g.api] {
        assert!(is_running(name));
        assert!(!exists(&format!("{}-cutover-task", g.catalog)));
    }
    assert!(!out.stdout.contains(PASSWORD) && !out.stderr.contains(PASSWORD));
    assert!(
        !g.scene.journal_text().contains(PASSWORD),
        "the journal holds no password"
    );
}

#[test]
fn a_destination_that_fails_its_check_changes_nothing() {
    let g = group("objcheck", &[]);
    std::fs::write(&g.dest, catalog_config("/proc/nowhere")).unwrap();
    let before = inspect(&g.catalog).unwrap();
    let out = g.scene.cutover(&g.migrate_args(&["--yes"]));
    out.expect(2);
    assert!(out.stdout.contains("Nothing was changed"), "{}", out.stdout);
    assert!(
        out.stdout.contains("/proc/nowhere"),
        "the check's own words: {}",
        out.stdout
    );
    assert_untouched(&g.catalog, &before);
    assert!(config_of(&g.catalog).contains("name: db"));
    assert_eq!(stores(&g.db), "db");
    assert_documents_readable(&g, "after a failed check");

    // Bad input is refused before anything is looked at twice.
    let missing = g
        .scene
        .cutover(&["task", &g.catalog, "migrate-object-storage", "--yes"]);
    missing.refused(&["--dest-config FILE is required"]);
    std::fs::write(&g.dest, "services:\n  apiext: {}\n").unwrap();
    let wrong = g.scene.cutover(&g.migrate_args(&["--yes"]));
    wrong.refused(&["has none of services.catalog"]);
    let unknown = g.scene.cutover(&["task", &g.catalog, "vacuum", "--yes"]);
    unknown.refused(&["has no task \"vacuum\"", "migrate-object-storage"]);
    std::fs::write(&g.dest, catalog_config("db")).unwrap();
    let same = g.scene.cutover(&g.migrate_args(&["--yes"]));
    same.refused(&[
        "has the same services.catalog as /config/config.yaml: there is nothing to move",
    ]);
    let bogus = g
        .scene
        .cutover(&g.migrate_args(&["--nodelete", "--bogus", "--yes"]));
    bogus.refused(&["--bogus is an option neither of migrate-object-storage nor of cutover task"]);
    let help = g
        .scene
        .cutover(&["task", &g.catalog, "migrate-object-storage", "--help"]);
    help.expect(0);
    assert!(
        help.stdout.contains("--nodelete: leave each document"),
        "{}",
        help.stdout
    );
    assert_untouched(&g.catalog, &before);
}

#[test]
fn a_migration_that_fails_half_way_is_migrated_back_and_the_old_config_serves() {
    // The destination fails after three documents: the tool logs, skips and says "complete".
    let g = group("objhalf", &["EMULATOR_FAIL_WRITES=localfs:3"]);
    let out = g.scene.cutover(&g.migrate_args(&["--yes", "--json"]));
    out.expect(1);
    let report = out.json();
    assert_eq!(report["outcome"], "rolled_back");
    assert!(
        report["failure"]
            .as_str()
            .unwrap()
            .contains("migrated count 3 but total to migrate 10"),
        "{report}"
    );
    assert!(
        report["restored"][0]
            .as_str()
            .unwrap()
            .starts_with("went back:"),
        "{report}"
    );
    assert_eq!(
        stores(&g.db),
        "db",
        "every document is back in the database"
    );
    for member in [&g.catalog, &g.second, &g.api] {
        assert!(config_of(member).contains("name: db"), "{member}");
    }
    assert!(
        config_of(&g.api).contains("apiext:"),
        "the API's own file back"
    );
    assert_documents_readable(&g, "after the way back");
}

#[test]
fn a_task_killed_during_the_migration_is_recovered() {
    let g = group("objkill", &["EMULATOR_MIGRATE_DELAY_MS=400"]);
    let mut run = g.scene.spawn(&g.migrate_args(&["--yes"]), &[]);
    let start = Instant::now();
    let moved = || {
        sql(
            &g.db,
            "anchore",
            "anchore",
            "SELECT count(*) FROM archive_metadata WHERE content_url LIKE 'file:%'",
        )
    };
    while moved().parse::<usize>().unwrap_or(0) < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the migration never began"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_hard(&mut run);
    assert!(
        exists(&format!("{}-cutover-task", g.catalog)),
        "the migration runs on, killed only with cutover"
    );
    assert_eq!(g.scene.recover(&[])["outcome"], "rolled_back");
    assert!(!exists(&format!("{}-cutover-task", g.catalog)));
    assert!(!exists(&format!("{}-cutover-task-undo", g.catalog)));
    assert_eq!(stores(&g.db), "db", "the documents that moved came back");
    for name in [&g.catalog, &g.second, &g.api] {
        assert!(is_running(name), "{name}");
    }
    assert!(config_of(&g.catalog).contains("name: db"));
    assert_documents_readable(&g, "after recovery");
}

#[test]
fn a_task_of_your_own_profile_runs_in_a_one_shot_while_the_app_is_stopped() {
    own_task_runs_in_a_one_shot(&Scene::new("owntask"));
}

/// A task of the operator's own profile, on the scene's engine: listed, then run in a one-shot
/// on the app's volume while the app is stopped; the same container serves again.
pub fn own_task_runs_in_a_one_shot(scene: &Scene) {
    let data = format!("{}:/data", scene.name("data"));
    let name = scene.run("app", &["-v", &data], "1");
    let profile = temp_dir(scene, "profile").join("mine.yaml");
    std::fs::write(
        &profile,
        r#"name: mine
description: my app's maintenance
match: [nothing/matches]
tasks:
  mark:
    description: write a marker into the data volume while the app is stopped
    args:
      - {name: text, value: WORDS, required: true, help: what the marker says}
    steps:
      - run: {name: mark, command: [sh, -c, 'echo "$@" > /data/marker', sh, "${value:text}"], changes_data: true}
"#,
    )
    .unwrap();
    let profile = profile.display().to_string();
    let listed = scene.cutover(&["tasks", &name, "--profile", &profile]);
    listed.expect(0);
    assert!(
        listed.stdout.contains("--text WORDS: what the marker says"),
        "{}",
        listed.stdout
    );
    let before = inspect(&name).unwrap();
    // The profile named after the task's options, where cutover's own may stand too.
    let out = scene.cutover(&[
        "task",
        &name,
        "mark",
        "--text",
        "hello",
        "--profile",
        &profile,
        "--settle",
        "1s",
        "--yes",
        "--json",
    ]);
    out.expect(0);
    let report = out.json();
    assert_eq!(report["outcome"], "succeeded", "{}", out.stdout);
    assert!(
        report["downtime_ms"].as_u64().is_some(),
        "the app was stopped"
    );
    assert_eq!(docker(&["exec", &name, "cat", "/data/marker"]), "hello");
    assert_eq!(
        inspect(&name).unwrap()["Id"],
        before["Id"],
        "the same container"
    );
    assert!(is_running(&name));
    assert!(!exists(&format!("{name}-cutover-task")));
    let history = scene.cutover(&["history", &name]);
    assert!(history.stdout.contains("task     "), "{}", history.stdout);
    assert!(history.stdout.contains("  mark on "), "{}", history.stdout);
}
