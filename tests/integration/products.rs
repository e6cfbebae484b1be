//! Each product upgraded from its profile alone (`cutover upgrade NAME --to TAG --yes`), against
//! the product emulator (`fixtures/emulator`) and a real PostgreSQL, with each product's trap.

use std::time::{Duration, Instant};

use crate::helpers::*;

/// The product's schema version and what migrated it last, as the emulator records them.
pub(crate) fn schema(db: &str, user: &str, database: &str, product: &str) -> (String, String) {
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

pub(crate) fn image_of(name: &str) -> String {
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
    proget_upgraded_by_its_upgradedb_command(&Scene::new("proget"));
}

/// ProGet on PostgreSQL upgraded by `upgradedb` of each side of 2025, a failed migration rolled
/// back onto its database.
pub(crate) fn proget_upgraded_by_its_upgradedb_command(scene: &Scene) {
    let net = network(scene);
    let db = postgres(scene, &net, "proget", "pg-secret-proget", "proget");
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
    assert!(
        serving(port, "/health").contains("\"versionNumber\":\"2024.1 (Build 1)\""),
        "the marketing version, never equal to a tag"
    );

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
    assert!(serving(port, "/health").contains("\"releaseNumber\":\"25.0.1\""));
    assert_eq!(schema(&db, "proget", "proget", "proget").0, "25.0.1");
    assert_no_leftovers(&name);
    assert!(!exists(&format!("{name}-migrate")));

    // To 2026 without a backup, a check that fails once upgradedb migrated and the new version
    // serves keeps the new version: the old one may refuse the migrated database.
    let out = scene.upgrade(
        &name,
        "26.0.1",
        &["--json", "--skip-backup", "--exec-after", "false"],
    );
    out.expect(3);
    let report = out.json();
    assert_eq!(report["outcome"], "kept_new", "{}", out.stdout);
    assert_eq!(image_of(&name), product("inedo/proget:26.0.1"));
    assert_eq!(serving(port, "/health"), "OK", "2026 answers plain text");
    assert_eq!(schema(&db, "proget", "proget", "proget").0, "26.0.1");
    assert!(
        exists(&format!("{name}-old")) && !is_running(&format!("{name}-old")),
        "the old version is kept stopped for a person to decide"
    );
}

/// ProGet 5.2 as Inedo's proget-docker image ran it: its PostgreSQL connection written into the
/// SharedConfig volume at first start, a /health without databaseStatus. Refused before
/// anything stops, in Inedo's words, whatever the target.
#[test]
fn proget_5_2_is_refused_before_any_downtime_with_inedos_way_by_hand() {
    let scene = Scene::new("proget52");
    let net = network(&scene);
    postgres(&scene, &net, "proget", "pw-proget-52", "proget");
    let (name, port) = scene.run_served(
        "proget",
        &net,
        80,
        &[
            "-e",
            "PROGET_DATABASE=Server=db; Database=proget; User Id=proget; Password=pw-proget-52;",
        ],
        &product("inedo/proget:5.2.32"),
    );
    let health = serving(port, "/health");
    assert!(
        health.contains("\"releaseNumber\":\"5.2.32\"") && !health.contains("databaseStatus"),
        "{health}"
    );
    assert!(
        docker(&[
            "exec",
            &name,
            "cat",
            "/usr/share/Inedo/SharedConfig/ProGet.config"
        ])
        .contains("<ConnectionString Type=\"PostgreSQL\">Server=db;"),
        "the image wrote the connection into its SharedConfig volume"
    );
    for to in ["25.0.1", "24.0.1"] {
        let out = scene.upgrade_refused(
            &name,
            to,
            &[],
            &[
                &format!("profile proget, 5.2.32 to {to}"),
                "As of ProGet 5.3, PostgreSQL is no longer supported",
                "https://docs.inedo.com/docs/proget-5-3-upgrade-notes",
                "upgrade to latest ProGet 5.2, then latest ProGet 2026",
            ],
        );
        assert!(
            !out.stderr.contains("does not answer as profile"),
            "{}",
            out.stderr
        );
    }
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
            serving(port, "/health").contains("\"releaseNumber\":\"24.0.1\""),
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

/// Runs on the emulator, or on Quay's own code with CUTOVER_TEST_QUAY_REAL (`QuayCode`).
#[test]
fn quay_goes_through_each_minor_with_every_node_of_the_cluster() {
    let quay = quay_code();
    let scene = Scene::new("quay");
    let site = quay_site(&scene);
    let db = &site.db;
    let (first, port) = site.node(&scene, "quay-a", &quay.image("v3.8.0"), &[]);
    quay.healthy(port);
    let (second, second_port) = site.node(&scene, "quay-b", &quay.image("v3.8.0"), &[]);
    quay.healthy(second_port);
    let other = scene.run_image("other", &["--init"], &image("1"));
    assert_eq!(quay.schema(&site.db), quay.schema_of("v3.8.0"));

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
    assert!(!dry.stdout.contains(QUAY_SECRET_KEY) && !dry.stdout.contains(QUAY_DB_PASSWORD));

    let out = scene.upgrade(&first, "v3.10.0", &["--json"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(
        (report["hops_done"].as_u64(), report["hops"].as_u64()),
        (Some(2), Some(2))
    );
    assert_eq!(quay.schema(&site.db), quay.schema_of("v3.10.0"));
    if !quay.is_real() {
        let history = sql(
            db,
            "quay",
            "quay",
            "SELECT history FROM emulator_schema WHERE product = 'quay'",
        );
        assert_eq!(history, "3.8.0 3.9.0 3.10.0", "one minor at a time");
        assert_eq!(schema(db, "quay", "quay", "quay").1, "migrate head");
    }
    for node in [&first, &second] {
        assert_eq!(image_of(node), quay.image("v3.10.0"), "{node}");
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
    assert!(!scene.journal_text().contains(QUAY_DB_PASSWORD));
    assert!(quay.healthy(port).contains("\"status_code\":200"));
}

/// A hop whose migration fails (`QuayCode::failing_hop`) rolls every node back onto a database
/// equal to the one before, and they serve again.
#[test]
fn a_failing_quay_migration_rolls_both_nodes_back_onto_the_same_database() {
    let quay = quay_code();
    let (from, to, breaking) = quay.failing_hop();
    let scene = Scene::new("quayfail");
    let site = quay_site(&scene);
    let (first, port) = site.node(&scene, "quay-a", &quay.image(from), &[]);
    quay.healthy(port);
    let (second, second_port) = site.node(&scene, "quay-b", &quay.image(from), &[]);
    quay.healthy(second_port);
    if let Some(query) = breaking {
        sql(&site.db, "quay", "quay", query);
    }
    let before = pg_dump_plain(&site.db, "quay", "quay");

    let out = scene.upgrade(&first, to, &["--json"]);
    out.expect(1);
    let report = out.json();
    assert!(
        report["failure"]
            .as_str()
            .unwrap()
            .contains("`migrate head` exited with code 1"),
        "{}",
        out.stdout
    );
    assert!(
        report["restored"].to_string().contains("quay"),
        "the rollback restored the database: {}",
        out.stdout
    );
    assert_eq!(pg_dump_plain(&site.db, "quay", "quay"), before);
    assert_eq!(quay.schema(&site.db), quay.schema_of(from));
    for node in [&first, &second] {
        assert_eq!(image_of(node), quay.image(from));
        assert!(is_running(node));
        assert_no_leftovers(node);
    }
    assert!(quay.healthy(port).contains("\"status_code\":200"));
}

const CLAIR_DB_PASSWORD: &str = "clair-pw-66";

/// Clair v4 beside Quay as Red Hat sets it up (quay-docs clair-standalone-configure.adoc
/// L28-39, L105-152): its own PostgreSQL (`clair-db`), its configuration in `/clair` named by
/// `CLAIR_CONF`, introspection on `:8088` published on loopback, from `clair_image`. The name and
/// that port.
pub(crate) fn clair(scene: &Scene, net: &str, clair_image: &str) -> (String, u16) {
    scene.run_image(
        "clair-db",
        &[
            "--network",
            net,
            "--network-alias",
            "clair-db",
            "-e",
            "POSTGRES_USER=clair",
            "-e",
            &format!("POSTGRES_PASSWORD={CLAIR_DB_PASSWORD}"),
            "-e",
            "POSTGRES_DB=clair",
        ],
        &product("postgres:15"),
    );
    let conf = scene.name("clair-conf");
    let connstring = format!(
        "host=clair-db port=5432 dbname=clair user=clair password={CLAIR_DB_PASSWORD} sslmode=disable"
    );
    let config = format!(
        "http_listen_addr: :6060\\nintrospection_addr: :8088\\nindexer:\\n  connstring: {connstring}\\n  migrations: true\\nmatcher:\\n  connstring: {connstring}\\n  migrations: true\\nnotifier:\\n  connstring: {connstring}\\n  migrations: true\\n"
    );
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{conf}:/clair"),
        "--entrypoint",
        "/bin/sh",
        &image("1"),
        "-c",
        &format!("printf '{config}' > /clair/config.yaml"),
    ]);
    let mount = format!("{conf}:/clair");
    scene.run_served(
        "clair",
        net,
        8088,
        &["-e", "CLAIR_CONF=/clair/config.yaml", "-v", &mount],
        clair_image,
    )
}

#[test]
fn quays_clair_moves_with_it_backed_up_and_ready_before_quay_starts() {
    let scene = Scene::new("clair");
    let site = quay_site(&scene);
    let (quay, port) = site.node(&scene, "quay", &product("projectquay/quay:v3.8.0"), &[]);
    let (clair, ready) = clair(&scene, &site.net, &product("projectquay/clair:4.7.0"));
    serving(port, "/health/instance");
    http_get_eventually(ready, "/readyz");
    let clair_db = scene.name("clair-db");
    assert_eq!(schema(&clair_db, "clair", "clair", "clair").0, "4.7.0");

    // Upstream Clair's version is not tied to Quay's: the operator must say it.
    let clair_before = inspect(&clair).unwrap();
    scene.upgrade_refused(
        &quay,
        "v3.9.0",
        &[],
        &[&format!("{clair} (clair)"), "--related clair=TAG"],
    );
    assert_untouched(&clair, &clair_before);

    let out = scene.upgrade(&quay, "v3.9.0", &["--related", "clair=4.8.0", "--json"]);
    out.expect(0);
    assert_eq!(image_of(&quay), product("projectquay/quay:v3.9.0"));
    assert_eq!(image_of(&clair), product("projectquay/clair:4.8.0"));
    assert!(is_running(&quay) && is_running(&clair));
    assert_eq!(
        schema(&clair_db, "clair", "clair", "clair"),
        ("4.8.0".to_string(), "clair startup".to_string()),
        "Clair migrated its own database as it started"
    );
    assert_eq!(schema(&site.db, "quay", "quay", "quay").0, "3.9.0");
    let report = out.json();
    let steps = steps_field(&report, "description");
    let at = |prefix: &str| {
        steps
            .iter()
            .position(|s| s.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {steps:#?}"))
    };
    assert!(at(&format!("stop {quay}")) < at(&format!("stop {clair}")));
    // Backed up (here as a snapshot of its server's volume) while everything is stopped.
    let backup = steps
        .iter()
        .position(|s| s.contains(&format!("the PostgreSQL database clair of {clair} ")))
        .unwrap_or_else(|| panic!("Clair's database is backed up: {steps:#?}"));
    assert!(at(&format!("stop {clair}")) < backup && backup < at(&format!("start {clair}")));
    assert!(at(&format!("wait until {clair}")) < at(&format!("start {quay}")));
    assert!(
        steps[at(&format!("wait until {clair}"))].contains("/readyz"),
        "its readiness endpoint: {steps:#?}"
    );
    for node in [&quay, &clair] {
        assert_no_leftovers(node);
    }
    let journal = scene.journal_text();
    assert!(!journal.contains(CLAIR_DB_PASSWORD) && !journal.contains(QUAY_DB_PASSWORD));

    // Clair 4.9.0 fails its migration as it starts, after Quay's own migration moved Quay's
    // database: both are put back, both run their old versions.
    let out = scene.upgrade(&quay, "v3.10.0", &["--related", "clair=4.9.0", "--json"]);
    out.expect(1);
    let report = out.json();
    let restored: Vec<String> = serde_json::from_value(report["restored"].clone()).unwrap();
    assert_eq!(restored.len(), 2, "{restored:?}");
    assert_eq!(image_of(&quay), product("projectquay/quay:v3.9.0"));
    assert_eq!(image_of(&clair), product("projectquay/clair:4.8.0"));
    assert!(is_running(&quay) && is_running(&clair));
    assert_eq!(schema(&site.db, "quay", "quay", "quay").0, "3.9.0");
    assert_eq!(schema(&clair_db, "clair", "clair", "clair").0, "4.8.0");
    assert!(serving(port, "/health/instance").contains("\"status_code\":200"));
    http_get_eventually(ready, "/readyz");
}

#[test]
fn anchore_services_on_one_database_move_together_and_the_schema_is_checked() {
    anchore_group_moves_together(&anchore("anchore", "anchore", &[]));
}

/// Anchore's three services on one database move to the next version together, the schema
/// migrated once before any starts; a version whose migration fails puts all three back.
pub(crate) fn anchore_group_moves_together(a: &Anchore) {
    let (scene, db) = (&a.scene, &a.db);
    let [catalog, api, queue] = [&a.services[0], &a.services[1], &a.services[2]];
    let out = scene.upgrade(api, "v0.7.1", &["--json"]);
    out.expect(0);
    let report = out.json();
    assert_eq!(
        report["members"].as_array().unwrap().len(),
        3,
        "every service on the database moved: {}",
        out.stdout
    );
    assert_eq!(
        schema(db, "anchore", "anchore", "anchore"),
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
    for c in [catalog, api, queue] {
        assert_eq!(image_of(c), product("anchore/anchore-engine:v0.7.1"));
        assert_no_leftovers(c);
    }
    assert!(!out.stdout.contains(&a.password) && !out.stderr.contains(&a.password));

    let out = scene.upgrade(catalog, "v0.8.0", &["--json"]);
    out.expect(1);
    assert!(
        out.json()["failure"]
            .as_str()
            .unwrap()
            .contains("exited with code 2"),
        "{}",
        out.stdout
    );
    for c in [catalog, api, queue] {
        assert_eq!(image_of(c), product("anchore/anchore-engine:v0.7.1"));
        assert!(is_running(c));
    }
}

#[test]
fn devlake_keeps_its_env_file_and_gets_its_encryption_secret_from_the_old_key() {
    devlake_moved_with_its_env_file_and_key(&Scene::new("devlake"));
}

/// DevLake 0.17 on PostgreSQL moves to 0.18 with its `.env` carried and `ENCRYPTION_SECRET` from
/// its `ENCODE_KEY`, its migration confirmed; a failing 0.19 goes back to 0.18.
pub(crate) fn devlake_moved_with_its_env_file_and_key(scene: &Scene) {
    let net = network(scene);
    postgres(scene, &net, "lake", "lake-pw-42", "lake");
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

/// DevLake `tag` on a new network of the scene, its database `lake` in a PostgreSQL there whose
/// user `lake` has `password`, with the `docker run` options `options`: the network, the
/// container and its published port.
fn lake_on_postgres(
    scene: &Scene,
    what: &str,
    password: &str,
    options: &[&str],
    tag: &str,
) -> (String, String, u16) {
    let net = network(scene);
    postgres(scene, &net, "lake", password, "lake");
    let url = format!("DB_URL=postgres://lake:{password}@db:5432/lake");
    let mut all = vec!["-e", url.as_str()];
    all.extend(options);
    let (name, port) = scene.run_served(
        what,
        &net,
        8080,
        &all,
        &product(&format!("apache/devlake:{tag}")),
    );
    (net, name, port)
}

/// DevLake's login gate (AUTH_ENABLED, its main branch after v1.0.3) answers 401 on /blueprints:
/// health is read on /ready and the migration's wait there, and /proceed-db-migration, which the
/// gate leaves open, confirms it.
#[test]
fn devlake_behind_its_login_gate_is_judged_on_ready_and_its_migration_confirmed() {
    let scene = Scene::new("devlakegate");
    let (_, name, port) = lake_on_postgres(
        &scene,
        "lake",
        "lake-pw-45",
        &[
            "-e",
            "ENCRYPTION_SECRET=lake-secret-45",
            "-e",
            "AUTH_ENABLED=true",
            "-e",
            "SESSION_SECRET=a-session-secret-of-forty-bytes-0123456",
        ],
        "v1.0.3",
    );
    serving(port, "/ready");
    let out = scene.upgrade(&name, "v1.1.0", &["--json"]);
    out.expect(0);
    let report = out.json();
    let call = step_detail(&report, "call");
    assert_eq!(
        call, "called /proceed-db-migration; /ready now answers 200",
        "{}",
        out.stdout
    );
    assert!(serving(port, "/version").contains("v1.1.0"));
    assert_eq!(
        http_answer(port, "/blueprints"),
        Some((401, r#"{"success":false,"message":"unauthorized"}"#.into())),
        "the gate is on: /blueprints is closed"
    );
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
    scene.upgrade_refused(
        &name,
        "v0.18.0",
        &[],
        &["none of ENCRYPTION_SECRET, ENCODE_KEY set"],
    );
}

#[test]
fn check_and_auto_move_quay_through_its_hops_never_skipping() {
    let _turn = auto_turn();
    let scene = Scene::new("quayauto");
    let site = quay_site(&scene);
    let db = &site.db;
    // The profile's policy is minor; the pin keeps it off v3.11.0, whose migration fails.
    let (name, port) = site.node(
        &scene,
        "quay",
        &product("projectquay/quay:v3.8.0"),
        &["-l", "cutover.enable=true", "-l", "cutover.pin=<3.11"],
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
        db,
        "quay",
        "quay",
        "SELECT history FROM emulator_schema WHERE product = 'quay'",
    );
    assert_eq!(history, "3.8.0 3.9.0 3.10.0", "auto never skips a minor");
}

#[test]
fn auto_moves_two_quay_nodes_of_one_database_once_together() {
    let _turn = auto_turn();
    let scene = Scene::new("quaypair");
    let site = quay_site(&scene);
    let opted = ["-l", "cutover.enable=true", "-l", "cutover.pin=<3.10"];
    let (first, port) = site.node(
        &scene,
        "quay-a",
        &product("projectquay/quay:v3.8.0"),
        &opted,
    );
    serving(port, "/health/instance");
    let (second, port) = site.node(
        &scene,
        "quay-b",
        &product("projectquay/quay:v3.8.0"),
        &opted,
    );
    serving(port, "/health/instance");
    let out = scene.cutover(&["auto", "--json"]);
    out.expect(10);
    let upgraded = |name: &str, message: &str| {
        (
            name.to_string(),
            "upgraded".to_string(),
            message.to_string(),
        )
    };
    assert_eq!(
        pass_results(&out),
        [
            upgraded(&first, "done"),
            upgraded(&second, &format!("moved with {first}: done"))
        ],
        "{}",
        out.stdout
    );
    for node in [&first, &second] {
        assert_eq!(image_of(node), product("projectquay/quay:v3.9.0"));
    }
    assert_eq!(
        scene.journal_text().matches("\"event\":\"begin\"").count(),
        1,
        "one run moved both"
    );
}

/// The quickstart's Anchore (docs/content/docs/quickstart/docker-compose.yaml): its services on
/// the database `postgres` of user `postgres`, with nothing but the host and password set, so
/// that the image's own defaults (`ANCHORE_AUTH_SECRET=null`, `..._TOKEN_EXPIRATION=3600`,
/// `..._HASHED_PASSWORDS=false`, `ANCHORE_CLI_PASS=foobar`, `ANCHORE_DB_NAME=postgres`) apply.
/// `db_user` other than `postgres` owns the database without CREATEDB, as production setups do.
pub(crate) struct Anchore {
    pub(crate) scene: Scene,
    pub(crate) db: String,
    /// The quickstart's password, made the test's own: a watch of command lines must not see
    /// another test setting up its database with it.
    pub(crate) password: String,
    /// The database user and name the services use.
    pub(crate) user: &'static str,
    pub(crate) services: Vec<String>,
}

const QUICKSTART_PASSWORD: &str = "mysecretpassword";

pub(crate) fn anchore(test: &str, db_user: &'static str, extra_env: &[&str]) -> Anchore {
    anchore_with(Scene::new(test), db_user, extra_env, |_, _| Vec::new())
}

/// As [`anchore`] on `scene`'s engine, each service also given the `docker run` options
/// `options` makes from the scene and the database password.
pub(crate) fn anchore_with(
    scene: Scene,
    db_user: &'static str,
    extra_env: &[&str],
    options: impl Fn(&Scene, &str) -> Vec<String>,
) -> Anchore {
    let net = network(&scene);
    let password = format!("{QUICKSTART_PASSWORD}-{}", scene.prefix);
    let db = postgres(&scene, &net, "postgres", &password, "postgres");
    let mut env = vec![
        "ANCHORE_DB_HOST=db".to_string(),
        format!("ANCHORE_DB_PASSWORD={password}"),
        "ANCHORE_ADMIN_PASSWORD=foobar".to_string(),
    ];
    if db_user != "postgres" {
        sql_eventually(
            &db,
            "postgres",
            "postgres",
            &format!("CREATE ROLE {db_user} LOGIN NOCREATEDB PASSWORD '{password}'"),
        );
        sql_eventually(
            &db,
            "postgres",
            "postgres",
            &format!("CREATE DATABASE {db_user} OWNER {db_user}"),
        );
        env.push(format!("ANCHORE_DB_USER={db_user}"));
        env.push(format!("ANCHORE_DB_NAME={db_user}"));
    }
    env.extend(extra_env.iter().map(|e| e.to_string()));
    let own_options = options(&scene, &password);
    let image = product("anchore/anchore-engine:v0.7.0");
    let services: Vec<String> = ["catalog", "apiext", "simplequeue"]
        .iter()
        .map(|service| {
            let mut options = vec!["--network".to_string(), net.clone()];
            for e in &env {
                options.extend(["-e".to_string(), e.clone()]);
            }
            options.extend(own_options.iter().cloned());
            let name = scene.name(service);
            let mut args = vec!["run", "-d", "--name", name.as_str()];
            args.extend(options.iter().map(String::as_str));
            args.extend([
                image.as_str(),
                "anchore-manager",
                "service",
                "start",
                service,
            ]);
            docker(&args);
            name
        })
        .collect();
    // A service run with `--no-healthcheck` (no health status, or Podman's empty one) is asked
    // what its HEALTHCHECK would ask.
    let healthy = |c: &String| match inspect(c).unwrap()["State"]["Health"]["Status"].as_str() {
        Some(status) if !status.is_empty() => status == "healthy",
        _ => docker_output(&["exec", c, "healthcheck", "http://127.0.0.1:8228/health"])
            .status
            .success(),
    };
    let start = Instant::now();
    while !services.iter().all(healthy) {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the Anchore services never became healthy"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let database = if db_user == "postgres" {
        "postgres"
    } else {
        db_user
    };
    sql_eventually(
        &db,
        db_user,
        database,
        "CREATE TABLE images (digest text PRIMARY KEY, analyzed boolean); INSERT INTO images SELECT 'sha256:' || g, g % 2 = 0 FROM generate_series(1, 200) g",
    );
    Anchore {
        scene,
        db,
        password,
        user: db_user,
        services,
    }
}

impl Anchore {
    pub(crate) fn database(&self) -> String {
        pg_dump_plain(&self.db, self.user, self.database_name())
    }

    pub(crate) fn database_name(&self) -> &str {
        if self.user == "postgres" {
            "postgres"
        } else {
            self.user
        }
    }

    fn assert_serving(&self, tag: &str) {
        for c in &self.services {
            assert_eq!(
                image_of(c),
                product(&format!("anchore/anchore-engine:{tag}")),
                "{c}"
            );
            assert!(is_running(c), "{c}");
            assert_no_leftovers(c);
        }
    }
}

/// An upgrade whose new version fails once its migration changed the schema: the rollback
/// restores the database before the old version starts: what the migration changed copied
/// back from the copy of its server's volume, the snapshot put back in its place, or with
/// `--backup-dump` the dump restored into it; `restored` says which.
fn anchore_fails_after_its_migration_and_comes_back_on_its_data(
    a: &Anchore,
    extra: &[&str],
    restored: &str,
    expected: usize,
) {
    let before = a.database();
    let args = [&["--json"][..], extra].concat();
    let out = a.scene.upgrade(&a.services[0], "v0.7.2", &args);
    out.expect(1);
    let report = out.json();
    assert!(
        report["restored"][0]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("{restored} {}", a.database_name())),
        "{}",
        out.stdout
    );
    assert_eq!(
        a.database(),
        before,
        "the database equals the one before the upgrade"
    );
    a.assert_serving("v0.7.0");
    assert_journals_parse(&a.scene);
    let history = a.scene.cutover(&["history", "--json"]);
    history.expect(0);
    assert_eq!(history.json()[0]["outcome"], "rolled_back");
    let backups = a.scene.cutover(&["backups", "--json"]);
    backups.expect(0);
    let listed = backups.json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        expected,
        "{}",
        backups.stdout
    );
    if expected > 0 {
        assert_eq!(listed[0]["manifest"]["online"], false);
    }
    for text in [&out.stdout, &out.stderr, &a.scene.journal_text()] {
        assert!(!text.contains(&a.password), "a secret leaked");
    }
}

/// Its database server stopped: the refusal says that alone, with what to do, and gives no
/// advice to change the profile (the health rule fails too, for that reason only).
#[test]
fn anchore_with_its_database_stopped_is_told_to_start_it_not_to_fix_its_profile() {
    let a = anchore("anchoredbstop", "postgres", &[]);
    docker(&["stop", &a.db]);
    let out = a.scene.upgrade_refused(
        &a.services[0],
        "v0.7.1",
        &[],
        &[&format!(
            "served by the container {}, which is not running: start it",
            a.db
        )],
    );
    assert!(
        !out.stderr.contains("Fix or replace the profile"),
        "{}",
        out.stderr
    );
}

/// Every service listens on ANCHORE_SERVICE_PORT (the image's config sets each `port` to it):
/// health and the version are asked there. The image's own HEALTHCHECK curls 8228 whatever the
/// variable says, so such a container brings its own.
#[test]
fn anchore_on_its_own_service_port_is_judged_there() {
    let a = anchore_with(
        Scene::new("anchoreport"),
        "postgres",
        &["ANCHORE_SERVICE_PORT=9228"],
        |_, _| {
            [
                "--health-cmd",
                "healthcheck http://127.0.0.1:9228/health",
                "--health-interval",
                "1s",
            ]
            .map(String::from)
            .to_vec()
        },
    );
    let out = a.scene.upgrade(&a.services[1], "v0.7.1", &["--json"]);
    out.expect(0);
    let report = out.json();
    let checks: Vec<String> = steps_field(&report, "detail")
        .into_iter()
        .filter(|d| d.contains("reports 0.7.1"))
        .collect();
    assert_eq!(
        checks.len(),
        3,
        "each service asked on 9228: {}",
        out.stdout
    );
    a.assert_serving("v0.7.1");
}

/// An operator's own config.yaml whose db_connect names another database than ANCHORE_DB_*:
/// Anchore uses the config's, so backing up and migrating the variables' would miss it.
#[test]
fn anchore_whose_config_names_another_database_is_refused_before_any_downtime() {
    let a = anchore_with(
        Scene::new("anchoreconnect"),
        "anchore",
        &[],
        |scene, password| {
            let file = temp_dir(scene, "config").join("config.yaml");
            std::fs::write(
            &file,
            format!("credentials:\n  database:\n    db_connect: 'postgresql://postgres:{password}@db:5432/postgres'\n    db_connect_args: {{ssl: false}}\nservices:\n  catalog:\n    enabled: true\n"),
        )
        .unwrap();
            vec![
                "-v".into(),
                format!("{}:/config/config.yaml:ro", file.display()),
            ]
        },
    );
    let before: Vec<serde_json::Value> = a.services.iter().map(|c| inspect(c).unwrap()).collect();
    let out = a.scene.upgrade_refused(
        &a.services[0],
        "v0.7.1",
        &[],
        &[
            "credentials.database.db_connect in /config/config.yaml names the database postgres@db:5432/postgres, but ANCHORE_DB_HOST",
            "anchore@db:5432/anchore",
            "`postgresql://${ANCHORE_DB_USER}:${ANCHORE_DB_PASSWORD}@${ANCHORE_DB_HOST}:${ANCHORE_DB_PORT}/${ANCHORE_DB_NAME}`",
        ],
    );
    assert!(!out.stderr.contains(&a.password), "{}", out.stderr);
    for (c, before) in a.services.iter().zip(&before) {
        assert_untouched(c, before);
    }
}

#[test]
fn anchore_quickstart_with_its_image_defaults_comes_back_on_its_postgres_database() {
    let a = anchore("anchorequick", "postgres", &[]);
    // Its server's volume copied in the window and what the migration changed copied back: no
    // dump was needed, so none is kept.
    anchore_fails_after_its_migration_and_comes_back_on_its_data(&a, &[], "put the database", 0);
}

#[test]
fn an_owner_without_createdb_gets_its_database_back_in_place_and_no_command_line_held_its_password()
{
    // The migration lasts 2 s (a test knob of the emulator), long enough to be read in `ps`.
    let a = anchore("anchoreowner", "anchore", &["MIGRATION_DELAY_SECS=2"]);
    let watch = ArgvWatch::start(&a.password);
    // Dumped in the window and restored in place by the owner, who may not create databases.
    anchore_fails_after_its_migration_and_comes_back_on_its_data(
        &a,
        &["--backup-dump"],
        "restored the PostgreSQL database",
        1,
    );
    let (seen, leaks) = watch.stop();
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    assert!(
        seen.iter().any(|line| line
            .contains("anchore-manager db --db-connect postgresql://anchore@db:5432/anchore")),
        "the migration was seen, and connected with the password from PGPASSWORD: {seen:#?}"
    );
}

#[test]
fn anchore_killed_during_its_migration_is_recovered_onto_its_data() {
    // The migration takes 60 s (a test knob of the emulator), time to kill cutover in it.
    let a = anchore("anchorekill", "postgres", &["MIGRATION_DELAY_SECS=60"]);
    let before = a.database();
    let mut run = a
        .scene
        .spawn(&["upgrade", &a.services[0], "--to", "v0.7.1", "--yes"], &[]);
    let migrate = format!("{}-migrate", a.services[0]);
    let start = Instant::now();
    while !is_running(&migrate) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the migration never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    kill_hard(&mut run);
    let blocked = a.scene.upgrade(&a.services[1], "v0.7.1", &[]);
    blocked.refused(&["cutover recover"]);
    let recovered = a.scene.recover(&[]);
    assert_eq!(recovered["outcome"], "rolled_back", "{recovered}");
    assert_eq!(a.database(), before, "recover restored the database");
    a.assert_serving("v0.7.0");
    assert!(!exists(&migrate), "the one-shot is gone");
    assert_journals_parse(&a.scene);
}

/// ProGet 2025 as its Docker guide runs it: no connection string, so its embedded database is
/// the volume on /var/proget/database; listening on 8181 through ASPNETCORE_URLS.
fn proget_embedded(scene: &Scene) -> (String, u16) {
    let net = network(scene);
    let (name, port) = scene.run_served(
        "proget",
        &net,
        8181,
        &[
            "-e",
            "ASPNETCORE_URLS=http://*:8181",
            "-v",
            &format!("{}:/var/proget/packages", scene.name("packages")),
            "-v",
            &format!("{}:/var/proget/database", scene.name("database")),
        ],
        &product("inedo/proget:25.0.1"),
    );
    assert!(serving(port, "/health").contains("\"releaseNumber\":\"25.0.1\""));
    docker(&[
        "exec",
        &name,
        "sh",
        "-c",
        "echo feed-nuget >> /var/proget/database/feeds",
    ]);
    (name, port)
}

fn embedded_database(name: &str) -> String {
    docker(&[
        "exec",
        name,
        "sh",
        "-c",
        "cd /var/proget/database && for f in $(ls | sort); do echo \"== $f\"; cat \"$f\"; done",
    ])
}

#[test]
fn proget_2025_on_its_embedded_database_moves_to_2026_alone_and_comes_back_when_2026_fails() {
    let scene = Scene::new("progetembedded");
    let (name, port) = proget_embedded(&scene);
    let before = embedded_database(&name);

    // 26.0.2 upgrades the database, then never serves (the profile would wait 10 minutes for
    // it): the volume's copy is put back.
    let out = scene.upgrade(&name, "26.0.2", &["--json", "--health-timeout", "15s"]);
    out.expect(1);
    let report = out.json();
    assert!(
        report["restored"][0]
            .as_str()
            .unwrap_or_default()
            .contains("the embedded database on /var/proget/database"),
        "{}",
        out.stdout
    );
    assert_eq!(embedded_database(&name), before, "the database as it was");
    assert!(serving(port, "/health").contains("\"releaseNumber\":\"25.0.1\""));
    assert_no_leftovers(&name);

    let out = scene.upgrade(&name, "26.0.1", &["--json"]);
    out.expect(0);
    let report = out.json();
    assert!(
        step_detail(&report, "backup").contains("verified"),
        "a backup was taken: {}",
        out.stdout
    );
    assert!(
        step_detail(&report, "check_version").contains("it reports 26.0.1"),
        "the version from releaseNumber: {}",
        out.stdout
    );
    assert!(
        step_detail(&report, "await_healthy").contains(":8181"),
        "health on the port ASPNETCORE_URLS gives"
    );
    assert_eq!(serving(port, "/health"), "OK", "2026 answers plain text");
    assert!(
        embedded_database(&name).contains("feed-nuget"),
        "its data came along"
    );
    assert!(
        embedded_database(&name).contains("26.0.1"),
        "and was upgraded"
    );
    assert_no_leftovers(&name);
    let refused = scene.upgrade(&name, "26.0.2", &["--backup-online"]);
    refused.refused(&["only consistent while it is stopped"]);
}

/// ProGet 25.0.1 on a PostgreSQL of its own whose user has `password`, its connection string
/// in a secret file (`PROGET_POSTGRES_CONNECTION_STRING_FILE`, the file's directory bind-mounted
/// read-only at /run/secrets), serving: its container, its port, the database's container and
/// the secret file.
pub(crate) fn proget_with_a_secret_file(
    scene: &Scene,
    password: &str,
) -> (String, u16, String, std::path::PathBuf) {
    let net = network(scene);
    let db = postgres(scene, &net, "proget", password, "proget");
    let secrets = temp_dir(scene, "secrets");
    std::fs::write(
        secrets.join("connection"),
        format!("Server=db;Port=5432;Database=proget;User Id=proget;Password={password};\n"),
    )
    .unwrap();
    let (name, port) = scene.run_served(
        "proget",
        &net,
        80,
        &[
            "-e",
            "PROGET_POSTGRES_CONNECTION_STRING_FILE=/run/secrets/connection",
            "-v",
            &format!("{}:/run/secrets:ro", secrets.display()),
        ],
        &product("inedo/proget:25.0.1"),
    );
    assert!(serving(port, "/health").contains("\"databaseStatus\":\"OK\""));
    (name, port, db, secrets.join("connection"))
}

#[test]
fn proget_on_an_external_postgresql_given_as_a_secret_file_is_backed_up_with_pg_dump() {
    let scene = Scene::new("progetexternal");
    let (name, _, db, _) = proget_with_a_secret_file(&scene, "pg-secret-file-9");
    let watch = ArgvWatch::start("pg-secret-file-9");
    let out = scene.upgrade(&name, "26.0.1", &["--json"]);
    let (seen, leaks) = watch.stop();
    out.expect(0);
    assert!(
        leaks.is_empty(),
        "the password on a command line: {leaks:#?}"
    );
    assert!(
        seen.iter().any(|line| line.contains("proget upgradedb")),
        "the migration's one-shot was seen: {seen:#?}"
    );
    let report = out.json();
    assert!(
        step_detail(&report, "backup_from_snapshot").contains("written after"),
        "the database copied on its server in the window, its backup written after: {}",
        out.stdout
    );
    assert!(
        steps_field(&report, "description")
            .iter()
            .any(|d| d.contains("the PostgreSQL database proget")),
        "{}",
        out.stdout
    );
    assert_eq!(schema(&db, "proget", "proget", "proget").0, "26.0.1");
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(!text.contains("pg-secret-file-9"), "the password leaked");
    }
}

#[test]
fn a_profile_that_does_not_match_the_running_product_is_refused_before_any_downtime() {
    let scene = Scene::new("livecheck");
    let (name, _) = proget_embedded(&scene);
    let profiles = temp_dir(&scene, "profiles");
    // What cutover believed before ProGet 2026 was read: versionNumber equals the tag.
    let believed = profiles.join("believed.yaml");
    std::fs::write(
        &believed,
        "name: believed\ndescription: x\nmatch: [inedo/proget]\nhealth: {port: 80, path: /health, status: 200, json: [databaseStatus=OK], port_from_urls: ASPNETCORE_URLS}\nexpect_version: \"/health#versionNumber\"\n",
    )
    .unwrap();
    let believed_profile = ["--profile", believed.to_str().unwrap()];
    scene.upgrade_refused(
        &name,
        "26.0.1",
        &believed_profile,
        &[
            "does not answer as profile believed says",
            "version",
            "\"2025.1 (Build 1)\", which is not its tag 25.0.1",
            "cutover profiles check",
        ],
    );

    let check = scene.cutover(&[
        "profiles",
        "check",
        &name,
        "--profile",
        believed.to_str().unwrap(),
    ]);
    check.expect(2);
    assert!(
        check.stdout.contains("FAIL") && check.stdout.contains("versionNumber"),
        "{}",
        check.stdout
    );
    let check = scene.cutover(&["profiles", "check", &name, "--json"]);
    check.expect(0);
    let report = check.json();
    assert_eq!(report["profile"], "proget");
    let checks: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(checks, ["health", "version", "database"], "{report}");
    // Each rule says where the profile read it.
    let sources: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap_or_default())
        .collect();
    assert!(
        sources[0].contains("proget/api/health.md")
            && sources[1].contains("releaseNumber")
            && sources[2].contains("docker-guide.md"),
        "{report}"
    );
    let shown = scene.cutover(&["profiles", "check", &name]);
    shown.expect(0);
    assert!(
        shown
            .stdout
            .contains("the rule's source: GET /health?format=json"),
        "{}",
        shown.stdout
    );
    // ProGet 2026 answers /health in plain text: the JSON rule no longer holds.
    scene.upgrade(&name, "26.0.1", &[]).expect(0);
    scene.upgrade_refused(
        &name,
        "26.0.2",
        &believed_profile,
        &[
            "health: port 8181 /health answers 200 with databaseStatus=OK",
            "without a JSON body",
            ": \"OK\"",
        ],
    );
}

/// A self-signed certificate and its key in Quay's config volume: Quay then serves TLS on 8443.
fn quay_tls(scene: &Scene, volume: &str) {
    let dir = temp_dir(scene, "tls");
    let status = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=quay.lan",
        ])
        .arg("-keyout")
        .arg(dir.join("ssl.key"))
        .arg("-out")
        .arg(dir.join("ssl.cert"))
        .output()
        .expect("openssl runs");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{volume}:/conf/stack"),
        "-v",
        &format!("{}:/tls", dir.display()),
        "--entrypoint",
        "/bin/sh",
        &image("1"),
        "-c",
        "cp /tls/ssl.key /tls/ssl.cert /conf/stack/ && chmod 644 /conf/stack/ssl.*",
    ]);
}

#[test]
fn quay_serving_tls_itself_is_judged_on_8443() {
    let scene = Scene::new("quaytls");
    let site = quay_site(&scene);
    let db = &site.db;
    quay_tls(&scene, &site.conf);
    let (name, _) = site.node(&scene, "quay", &product("projectquay/quay:v3.8.0"), &[]);
    let out = scene.upgrade(&name, "v3.9.0", &["--json"]);
    out.expect(0);
    let health = step_detail(&out.json(), "await_healthy").to_string();
    assert!(
        health.contains(":8443"),
        "asked over https on 8443: {health}"
    );
    assert_eq!(schema(db, "quay", "quay", "quay").0, "3.9.0");
}

/// Runs on the emulator, or on Quay's own code with CUTOVER_TEST_QUAY_REAL (`QuayCode`).
#[test]
fn quay_whose_environment_sets_quayentry_still_migrates() {
    let quay = quay_code();
    let scene = Scene::new("quayentry");
    let site = quay_site(&scene);
    let (name, port) = site.node(
        &scene,
        "quay",
        &quay.image("v3.8.0"),
        &["-e", "QUAYENTRY=registry"],
    );
    quay.healthy(port);
    let started = Instant::now();
    let out = scene.upgrade(&name, "v3.9.0", &["--json"]);
    out.expect(0);
    // A one-shot that started the registry instead would run until the step's hour is out;
    // Quay's own code then takes its minute or more to answer healthy.
    let bound = if quay.is_real() { 600 } else { 120 };
    assert!(
        started.elapsed() < Duration::from_secs(bound),
        "the migration ran and ended"
    );
    assert_eq!(quay.schema(&site.db), quay.schema_of("v3.9.0"));
    if !quay.is_real() {
        assert_eq!(
            schema(&site.db, "quay", "quay", "quay").1,
            "migrate head",
            "the one-shot migrated instead of starting the registry"
        );
    }
    assert!(
        env_of(&name).contains(&"QUAYENTRY=registry".to_string()),
        "the service keeps its own"
    );
}

#[test]
fn quay_2_is_refused_before_any_downtime_where_3_0_needs_a_person() {
    let scene = Scene::new("quay2");
    let site = quay_site(&scene);
    let (name, port) = site.node(&scene, "quay", &product("coreos/quay:v2.9.5"), &[]);
    serving(port, "/health/instance");
    scene.upgrade_refused(&name, "v3.0.5", &[], &["V3_UPGRADE_MODE"]);
}

#[test]
fn quay_without_pg_trgm_is_refused_before_its_schema_changes() {
    let scene = Scene::new("quaytrgm");
    let site = quay_site(&scene);
    let db = &site.db;
    let (name, port) = site.node(&scene, "quay", &product("projectquay/quay:v3.8.0"), &[]);
    serving(port, "/health/instance");
    // Dropped behind the running registry's back; `migrate` would not notice.
    sql(db, "quay", "quay", "DROP EXTENSION pg_trgm");
    scene.upgrade_refused(
        &name,
        "v3.9.0",
        &[],
        &[
            "pg_trgm is not installed",
            "CREATE EXTENSION IF NOT EXISTS pg_trgm",
        ],
    );
    assert_eq!(schema(db, "quay", "quay", "quay").0, "3.8.0");
}

/// DevLake 0.17 as its own compose file runs it: `./.env:/app/.env` bind-mounted
/// (devops/releases/lake-v0.17.0/docker-compose.yml). The profile's `/app/.env` is there already
/// for the new container, which shares the mount: nothing is carried, and the key still reaches
/// 0.18 as ENCRYPTION_SECRET.
#[test]
fn devlake_0_17_with_its_env_file_bind_mounted_moves_to_0_18_with_its_key() {
    let scene = Scene::new("devlakebind");
    let net = network(&scene);
    postgres(&scene, &net, "lake", "lake-pw-45", "lake");
    let env_file = temp_dir(&scene, "compose").join(".env");
    std::fs::write(
        &env_file,
        "DB_URL=postgres://lake:lake-pw-45@db:5432/lake\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &env_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o666),
    )
    .unwrap();
    let (name, port) = scene.run_served(
        "lake",
        &net,
        8080,
        &["-v", &format!("{}:/app/.env", env_file.display())],
        &product("apache/devlake:v0.17.0"),
    );
    serving(port, "/blueprints");
    let dotenv = std::fs::read_to_string(&env_file).unwrap();
    let key = dotenv
        .lines()
        .find_map(|l| l.strip_prefix("ENCODE_KEY="))
        .expect("the first boot wrote ENCODE_KEY into the host's .env")
        .to_string();
    let out = scene.upgrade(&name, "v0.18.0", &["--json"]);
    out.expect(0);
    let steps = steps_field(&out.json(), "step");
    assert!(
        !steps.iter().any(|s| s == "carry_file"),
        "nothing to carry: {steps:?}"
    );
    assert!(
        env_of(&name).contains(&format!("ENCRYPTION_SECRET={key}")),
        "{:?}",
        env_of(&name)
    );
    assert!(serving(port, "/version").contains("v0.18.0"));
    assert_eq!(
        std::fs::read_to_string(&env_file).unwrap(),
        dotenv,
        "the host's .env is as it was"
    );
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(
            !text.contains(&key) && !text.contains("lake-pw-45"),
            "a secret leaked"
        );
    }
    assert_no_leftovers(&name);
}

#[test]
fn devlake_to_a_beta_of_0_18_gets_its_secret_and_its_ui_and_dashboard_move_with_it() {
    let scene = Scene::new("devlakebeta");
    let (net, name, port) = lake_on_postgres(
        &scene,
        "devlake",
        "lake-pw-44",
        &["--network-alias", "devlake"],
        "v0.17.0",
    );
    serving(port, "/blueprints");
    let ui = scene.run_image(
        "config-ui",
        &[
            "--network",
            &net,
            "-e",
            "DEVLAKE_ENDPOINT=devlake:8080",
            "-e",
            "GRAFANA_ENDPOINT=grafana:3000",
        ],
        &product("apache/devlake-config-ui:v0.17.0"),
    );
    let grafana = scene.run_image(
        "grafana",
        &[
            "--network",
            &net,
            "--network-alias",
            "grafana",
            "-e",
            "MYSQL_URL=db:3306",
        ],
        &product("apache/devlake-dashboard:v0.17.0"),
    );
    let elsewhere = scene.run_image(
        "other-ui",
        &[
            "-e",
            "DEVLAKE_ENDPOINT=lake.example:8080",
            "-e",
            "GRAFANA_ENDPOINT=grafana.example:3000",
        ],
        &product("apache/devlake-config-ui:v0.17.0"),
    );
    let key = docker(&["exec", &name, "cat", "/app/.env"])
        .lines()
        .find_map(|l| l.strip_prefix("ENCODE_KEY=").map(str::to_string))
        .expect("the first boot wrote ENCODE_KEY");

    let out = scene.upgrade(&name, "v0.18.0-beta1", &["--json", "--settle", "2s"]);
    out.expect(0);
    assert!(env_of(&name).contains(&format!("ENCRYPTION_SECRET={key}")));
    assert!(serving(port, "/version").contains("v0.18.0-beta1"));
    for (c, repo) in [
        (&ui, "apache/devlake-config-ui"),
        (&grafana, "apache/devlake-dashboard"),
    ] {
        assert_eq!(
            image_of(c),
            product(&format!("{repo}:v0.18.0-beta1")),
            "{c}"
        );
        assert!(is_running(c), "{c}");
        assert!(
            !env_of(c).iter().any(|e| e.starts_with("ENCRYPTION_SECRET")),
            "the key stays with DevLake"
        );
        assert_no_leftovers(c);
    }
    assert_eq!(
        image_of(&elsewhere),
        product("apache/devlake-config-ui:v0.17.0"),
        "a UI of no network of this DevLake is another installation's"
    );
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(
            !text.contains(&key) && !text.contains("lake-pw-44"),
            "a secret leaked"
        );
    }
}
