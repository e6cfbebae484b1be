//! Each product upgraded from its profile alone (`cutover upgrade NAME --to TAG --yes`), against
//! the product emulator (`fixtures/emulator`) and a real PostgreSQL, with each product's trap.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// The product's schema version and what migrated it last, as the emulator records them.
fn schema(db: &str, user: &str, database: &str, product: &str) -> (String, String) {
    let row = sql(
        db,
        user,
        database,
        &format!(
            "SELECT version || '|' || migrated_by FROM emulator_schema WHERE product = '{product}'"
        ),
    );
    let (version, by) = row
        .split_once('|')
        .unwrap_or_else(|| panic!("no schema row for {product}: {row:?}"));
    (version.to_string(), by.to_string())
}

/// Polls until `GET path` on the published port answers 200.
fn serving(port: u16, path: &str) -> String {
    http_get_eventually(port, path)
}

fn image_of(name: &str) -> String {
    inspect(name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string()
}

fn env_of(name: &str) -> Vec<String> {
    serde_json::from_value(inspect(name).unwrap()["Config"]["Env"].clone()).unwrap_or_default()
}

#[test]
fn proget_uses_the_upgradedb_command_of_each_side_of_2025_and_rolls_back_a_failed_migration() {
    let scene = Scene::new("proget");
    let net = network(&scene);
    let db = postgres(&scene, &net, "proget", "pg-secret-proget", "proget");
    let connection = "PROGET_SQL_CONNECTION_STRING=Data Source=db; Initial Catalog=proget; User ID=proget; Password=pg-secret-proget";
    let (name, port) = scene.run_served(
        "proget",
        &net,
        80,
        &[
            "-e",
            connection,
            "-v",
            &format!("{}:/var/proget/packages", scene.name("packages")),
        ],
        &product("inedo/proget:24.0.1"),
    );
    assert!(serving(port, "/health").contains("\"databaseStatus\":\"OK\""));

    // ProGet 2024 keeps its data in SQL Server, which cutover cannot dump: it says so.
    let out = scene.upgrade(&name, "24.0.2", &[]);
    out.expect(2);
    assert!(
        out.stderr.contains(
            "SQL Server database (PROGET_SQL_CONNECTION_STRING), which cutover cannot dump"
        ),
        "{}",
        out.stderr
    );
    let out = scene.upgrade(&name, "24.0.2", &["--json", "--skip-backup"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(report["profile"]["name"], "proget", "{}", out.stdout);
    assert_eq!(
        schema(&db, "proget", "proget", "proget"),
        (
            "24.0.2".into(),
            "upgradedb:/usr/local/proget/service/ProGet.Service".into()
        )
    );
    assert_eq!(image_of(&name), product("inedo/proget:24.0.2"));
    assert_no_leftovers(&name);

    let out = scene.upgrade(&name, "25.0.1", &["--skip-backup"]);
    out.expect(0);
    assert_eq!(
        schema(&db, "proget", "proget", "proget"),
        (
            "25.0.1".into(),
            "upgradedb:/usr/local/proget/service/proget".into()
        ),
        "2025 moved the command"
    );
    assert!(
        out.stderr.contains("it reports 25.0.1"),
        "the version check ran: {}",
        out.stderr
    );
    assert!(!out.stdout.contains("pg-secret-proget") && !out.stderr.contains("pg-secret-proget"));
    assert!(!scene.journal_text().contains("pg-secret-proget"));

    let before = id_of(&name);
    let out = scene.upgrade(&name, "25.0.2", &["--json", "--skip-backup"]);
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("migration 25.0.1 -> 25.0.2 failed"),
        "{}",
        out.stdout
    );
    assert_eq!(id_of(&name), before, "the old version serves again");
    assert!(serving(port, "/health").contains("\"versionNumber\":\"25.0.1\""));
    assert_eq!(schema(&db, "proget", "proget", "proget").0, "25.0.1");
    assert_no_leftovers(&name);
    assert!(!exists(&format!("{name}-migrate")));
}

#[test]
fn buildmaster_and_otter_upgrade_their_database_at_start() {
    for p in ["buildmaster", "otter"] {
        let scene = Scene::new(p);
        let net = network(&scene);
        let db = postgres(&scene, &net, p, "pw-inedo-1", p);
        let connection = format!("{}_SQL_CONNECTION_STRING=Data Source=db; Initial Catalog={p}; User ID={p}; Password=pw-inedo-1", p.to_uppercase());
        let (name, port) = scene.run_served(
            p,
            &net,
            80,
            &["-e", &connection],
            &product(&format!("inedo/{p}:24.0.1")),
        );
        assert!(
            serving(port, "/health").contains("\"versionNumber\":\"24.0.1\""),
            "installed"
        );
        let out = scene.upgrade(&name, "25.0.1", &["--json", "--skip-backup"]);
        out.expect(0);
        let report = out.json();
        assert_eq!(report["profile"]["name"], p);
        let health = step_detail(&report, "await_healthy");
        assert!(
            health.contains("answered HTTP 200"),
            "{p}: waited past the 500s of the start-up migration: {health}"
        );
        assert_eq!(schema(&db, p, p, p), ("25.0.1".into(), "startup".into()));
        assert_no_leftovers(&name);
    }
}

/// `DB_URI` and `DATABASE_SECRET_KEY` in a config volume, as Quay keeps them.
fn quay_config(scene: &Scene) -> String {
    let volume = scene.name("conf");
    let mount = format!("{volume}:/conf/stack");
    let config = "DATABASE_SECRET_KEY: quay-db-secret-77\nDB_URI: postgresql://quay:quay-pw-55@db:5432/quay\nSERVER_HOSTNAME: quay.lan\n";
    docker(&[
        "run",
        "--rm",
        "-v",
        &mount,
        "--entrypoint",
        "/bin/sh",
        &image("1"),
        "-c",
        &format!("printf '{config}' > /conf/stack/config.yaml"),
    ]);
    volume
}

#[test]
fn quay_goes_through_each_minor_with_every_node_of_the_cluster() {
    let scene = Scene::new("quay");
    let net = network(&scene);
    let db = postgres(&scene, &net, "quay", "quay-pw-55", "quay");
    let conf = format!("{}:/conf/stack", quay_config(&scene));
    let (first, port) = scene.run_served(
        "quay-a",
        &net,
        8080,
        &["-v", &conf],
        &product("projectquay/quay:v3.8.0"),
    );
    serving(port, "/health/instance");
    let second = scene.run_image(
        "quay-b",
        &["--network", &net, "-v", &conf],
        &product("projectquay/quay:v3.8.0"),
    );
    let other = scene.run_image("other", &["--init"], &image("1"));

    // Without the profile, 3.8 to 3.10 in one step is refused by Quay itself: rolled back.
    let out = scene.cutover(&[
        "upgrade",
        &first,
        "--to",
        "v3.10.0",
        "--profile",
        "none",
        "--yes",
        "--json",
        "--settle",
        "3s",
    ]);
    out.expect(1);
    assert_eq!(schema(&db, "quay", "quay", "quay").0, "3.8.0");

    let dry = scene.cutover(&["upgrade", &first, "--to", "v3.10.0", "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout
            .contains("Profile: quay (its image is in repository projectquay/quay"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("Hop 1 of 2: quay:v3.8.0 -> quay:v3.9.0"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains(&format!("(with {second})")),
        "the other node moves too: {}",
        dry.stdout
    );
    assert!(!dry.stdout.contains("quay-db-secret-77") && !dry.stdout.contains("quay-pw-55"));

    let out = scene.upgrade(&first, "v3.10.0", &["--json"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(
        (report["hops_done"].as_u64(), report["hops"].as_u64()),
        (Some(2), Some(2))
    );
    let history = sql(
        &db,
        "quay",
        "quay",
        "SELECT history FROM emulator_schema WHERE product = 'quay'",
    );
    assert_eq!(history, "3.8.0 3.9.0 3.10.0", "one minor at a time");
    assert_eq!(schema(&db, "quay", "quay", "quay").1, "migrate head");
    for node in [&first, &second] {
        assert_eq!(
            image_of(node),
            product("projectquay/quay:v3.10.0"),
            "{node}"
        );
        assert!(is_running(node));
        assert_no_leftovers(node);
    }
    assert_eq!(
        image_of(&other),
        image("1"),
        "a container of another product is left alone"
    );
    let steps = steps_field(&report, "description");
    let start_first = steps
        .iter()
        .position(|s| s.starts_with(&format!("start {first}")))
        .unwrap();
    let start_second = steps
        .iter()
        .position(|s| s.starts_with(&format!("start {second}")))
        .unwrap();
    assert!(
        start_first < start_second,
        "the named node first, the rest once it is healthy"
    );
    assert!(!scene.journal_text().contains("quay-pw-55"));

    // A migration that fails rolls both nodes back.
    let out = scene.upgrade(&first, "v3.11.0", &["--json"]);
    out.expect(1);
    assert!(
        out.json()["failure"].as_str().unwrap().contains("failed"),
        "{}",
        out.stdout
    );
    for node in [&first, &second] {
        assert_eq!(image_of(node), product("projectquay/quay:v3.10.0"));
        assert!(is_running(node));
    }
    assert!(serving(port, "/health/instance").contains("\"status_code\":200"));
}

#[test]
fn anchore_services_on_one_database_move_together_and_the_schema_is_checked() {
    let scene = Scene::new("anchore");
    let net = network(&scene);
    let db = postgres(&scene, &net, "anchore", "anchore-pw-31", "anchore");
    let env = [
        "ANCHORE_DB_HOST=db",
        "ANCHORE_DB_USER=anchore",
        "ANCHORE_DB_PASSWORD=anchore-pw-31",
        "ANCHORE_DB_NAME=anchore",
    ];
    let mut options: Vec<&str> = vec!["--network", &net];
    for e in &env {
        options.extend(["-e", e]);
    }
    let image = product("anchore/anchore-engine:v0.7.0");
    let run = |service: &str| {
        let name = scene.name(service);
        let mut args = vec!["run", "-d", "--name", name.as_str()];
        args.extend(options.iter().copied());
        args.extend([
            image.as_str(),
            "anchore-manager",
            "service",
            "start",
            service,
        ]);
        docker(&args);
        name
    };
    let catalog = run("catalog");
    let api = run("api");
    let queue = run("queue");
    let start = Instant::now();
    while ![&catalog, &api, &queue]
        .iter()
        .all(|c| inspect(c).unwrap()["State"]["Health"]["Status"] == "healthy")
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the Anchore services never became healthy"
        );
        std::thread::sleep(Duration::from_millis(300));
    }

    let out = scene.upgrade(&api, "v0.7.1", &["--json"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(
        report["members"].as_array().unwrap().len(),
        3,
        "every service on the database moved: {}",
        out.stdout
    );
    assert_eq!(
        schema(&db, "anchore", "anchore", "anchore"),
        ("0.7.1".into(), "anchore-manager db upgrade".into()),
        "the one-shot upgraded it before any service started"
    );
    let checks = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["step"] == "check_version" && s["status"] == "done")
        .count();
    assert_eq!(checks, 3, "each service reports the new version");
    for c in [&catalog, &api, &queue] {
        assert_eq!(image_of(c), product("anchore/anchore-engine:v0.7.1"));
        assert_no_leftovers(c);
    }
    assert!(!out.stdout.contains("anchore-pw-31") && !out.stderr.contains("anchore-pw-31"));

    let out = scene.upgrade(&catalog, "v0.8.0", &["--json"]);
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("exited with code 2"),
        "{}",
        out.stdout
    );
    for c in [&catalog, &api, &queue] {
        assert_eq!(image_of(c), product("anchore/anchore-engine:v0.7.1"));
        assert!(is_running(c));
    }
}

#[test]
fn devlake_keeps_its_env_file_and_gets_its_encryption_secret_from_the_old_key() {
    let scene = Scene::new("devlake");
    let net = network(&scene);
    postgres(&scene, &net, "lake", "lake-pw-42", "lake");
    let (name, port) = scene.run_served(
        "lake",
        &net,
        8080,
        &["-e", "DB_URL=postgres://lake:lake-pw-42@db:5432/lake"],
        &product("apache/devlake:v0.17.0"),
    );
    serving(port, "/blueprints");
    let dotenv = docker(&["exec", &name, "cat", "/app/.env"]);
    let key = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("ENCODE_KEY="))
        .expect("the first boot wrote ENCODE_KEY")
        .to_string();

    // Without the profile, 0.18 does not start without ENCRYPTION_SECRET: rolled back.
    let out = scene.cutover(&[
        "upgrade",
        &name,
        "--to",
        "v0.18.0",
        "--profile",
        "none",
        "--yes",
        "--settle",
        "3s",
    ]);
    out.expect(1);

    let out = scene.upgrade(&name, "v0.18.0", &["--json"]);
    out.expect(0);
    assert!(
        env_of(&name).contains(&format!("ENCRYPTION_SECRET={key}")),
        "{:?}",
        env_of(&name)
    );
    assert_eq!(
        docker(&["exec", &name, "cat", "/app/.env"]),
        dotenv,
        "the .env file is kept"
    );
    let report = out.json();
    let call = step_detail(&report, "call");
    assert!(call.contains("called /proceed-db-migration"), "{call}");
    assert!(serving(port, "/version").contains("v0.18.0"));
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(
            !text.contains(&key) && !text.contains("lake-pw-42"),
            "a secret leaked"
        );
    }
    assert_no_leftovers(&name);

    // A failing migration: back to 0.18, which still decrypts its data.
    let out = scene.upgrade(&name, "v0.19.0", &[]);
    out.expect(1);
    assert!(serving(port, "/version").contains("v0.18.0"));
    assert_no_leftovers(&name);
}

#[test]
fn a_devlake_without_its_key_is_refused_before_any_downtime() {
    let scene = Scene::new("devlakekey");
    let net = network(&scene);
    postgres(&scene, &net, "lake", "lake-pw-43", "lake");
    let name = scene.run_image(
        "lake",
        &[
            "--network",
            &net,
            "-e",
            "DB_URL=postgres://lake:lake-pw-43@db:5432/lake",
        ],
        &product("apache/devlake:v0.17.0"),
    );
    let start = Instant::now();
    while docker_output(&["exec", &name, "grep", "-q", "ENCODE_KEY", "/app/.env"])
        .status
        .code()
        != Some(0)
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "DevLake never wrote its key"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // The key is lost from the file (the running process still has it in memory).
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "grep -v ENCODE_KEY /app/.env > /tmp/env; cat /tmp/env > /app/.env",
    ]);
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "v0.18.0", &[]);
    out.refused(&["none of ENCRYPTION_SECRET, ENCODE_KEY set"]);
    assert_untouched(&name, &before);
}

#[test]
fn check_and_auto_move_quay_through_its_hops_never_skipping() {
    let scene = Scene::new("quayauto");
    let net = network(&scene);
    let db = postgres(&scene, &net, "quay", "quay-pw-55", "quay");
    let conf = format!("{}:/conf/stack", quay_config(&scene));
    // The profile's policy is minor; the pin keeps it off v3.11.0, whose migration fails.
    let (name, port) = scene.run_served(
        "quay",
        &net,
        8080,
        &[
            "-v",
            &conf,
            "-l",
            "cutover.enable=true",
            "-l",
            "cutover.pin=<3.11",
        ],
        &product("projectquay/quay:v3.8.0"),
    );
    serving(port, "/health/instance");
    let out = scene.cutover(&["check", &name, "--json"]);
    out.expect(0);
    let status = &out.json()["containers"][0];
    assert_eq!(status["profile"], "quay", "{status}");
    assert_eq!(
        status["policy"], "minor",
        "the profile's policy applies: {status}"
    );
    assert_eq!(status["target"], product("projectquay/quay:v3.10.0"));
    assert_eq!(status["via"], serde_json::json!(["v3.9.0"]), "{status}");
    assert_eq!(status["eligible"], true);

    let config = temp_dir(&scene, "config").join("auto.yml");
    std::fs::write(&config, format!("containers:\n  {name}: {{}}\n")).unwrap();
    let out = scene.cutover(&["auto", "--config", config.to_str().unwrap(), "--json"]);
    out.expect(10);
    assert_eq!(image_of(&name), product("projectquay/quay:v3.10.0"));
    let history = sql(
        &db,
        "quay",
        "quay",
        "SELECT history FROM emulator_schema WHERE product = 'quay'",
    );
    assert_eq!(history, "3.8.0 3.9.0 3.10.0", "auto never skips a minor");
}
