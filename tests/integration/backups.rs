//! Backups before an upgrade and their restore when it rolls back across a migration, against
//! real PostgreSQL and MariaDB servers; volume backups round-tripped byte for byte.

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A plain SQL dump's text without its comments (which name times and versions).
fn plain(dump: &str) -> String {
    dump.lines()
        .filter(|l| !l.starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pg_plain(db: &str) -> String {
    pg_dump_plain(db, "quay", "quay")
}

fn pg(db: &str, query: &str) -> String {
    sql(db, "quay", "quay", query)
}

/// A Quay node on v3.8.0 with its PostgreSQL, and rows of the data it serves: the emulator's,
/// or Quay's own code with CUTOVER_TEST_QUAY_REAL (`QuayCode`).
fn quay(scene: &Scene) -> (String, String, u16) {
    let site = quay_site(scene);
    let (name, port) = site.node(scene, "quay", &quay_code().image("v3.8.0"), &[]);
    quay_code().healthy(port);
    pg(&site.db, "CREATE TABLE repositories (id serial PRIMARY KEY, name text); INSERT INTO repositories (name) SELECT 'repo-' || g FROM generate_series(1, 500) g");
    (name, site.db, port)
}

#[test]
fn a_rollback_across_a_migration_restores_the_postgres_database() {
    let scene = Scene::new("pgrestore");
    let (name, db, port) = quay(&scene);
    let before = pg_plain(&db);
    // A hook that fails once the new version serves: after the migration. The dump in the
    // window, as before snapshots, and where the server cannot copy.
    let out = scene.upgrade(
        &name,
        "v3.9.0",
        &["--json", "--exec-after", "false", "--backup-dump"],
    );
    out.expect(1);
    let report = out.json();
    let restored = report["restored"][0].as_str().unwrap_or_default();
    assert!(
        restored.contains("restored the PostgreSQL database quay"),
        "the rollback says it restored: {}",
        out.stdout
    );
    let steps = steps_field(&report, "step");
    let position = |name: &str| steps.iter().position(|s| *s == name).unwrap();
    assert!(
        position("stop") < position("backup") && position("backup") < position("migrate"),
        "backed up while stopped, before the migration: {steps:?}"
    );
    assert_eq!(
        quay_code().schema(&db),
        quay_code().schema_of("v3.8.0"),
        "the old code's schema is back"
    );
    assert_eq!(pg(&db, "SELECT count(*) FROM repositories"), "500");
    assert_eq!(
        pg_plain(&db),
        before,
        "the database equals the one before the upgrade"
    );
    assert!(
        quay_code().healthy(port).contains("\"status_code\":200"),
        "the old version serves on it"
    );
    assert_no_leftovers(&name);

    // The backup: a directory of its own, readable by its owner only, with a manifest free of secrets.
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    let backup = &listed[0];
    let dir = std::path::PathBuf::from(backup["path"].as_str().unwrap());
    assert_eq!(
        std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );
    for entry in std::fs::read_dir(&dir).unwrap().flatten() {
        assert_eq!(
            entry.metadata().unwrap().permissions().mode() & 0o777,
            0o600,
            "{:?}",
            entry.path()
        );
    }
    let manifest = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    assert!(manifest.contains("\"server_version\": \"15."), "{manifest}");
    assert!(
        manifest.contains(&format!(
            "\"schema_version\": \"{}\"",
            quay_code().schema_of("v3.8.0")
        )),
        "the profile's schema query: {manifest}"
    );
    assert!(manifest.contains("\"sha256\""), "{manifest}");
    for secret in [QUAY_DB_PASSWORD, QUAY_SECRET_KEY] {
        assert!(
            !manifest.contains(secret)
                && !scene.journal_text().contains(secret)
                && !out.stdout.contains(secret)
                && !out.stderr.contains(secret),
            "{secret} leaked"
        );
    }
}

/// What belongs to the database itself rather than to what it holds, which a copy of it does
/// not take: its privileges, connection limit and settings.
fn database_itself(db: &str) -> String {
    pg(
        db,
        "SELECT datacl::text || ' ' || datconnlimit || ' ' || COALESCE((SELECT setconfig::text FROM pg_db_role_setting s WHERE s.setdatabase = d.oid AND s.setrole = 0), '') FROM pg_database d WHERE datname = 'quay'",
    )
}

/// The copies of the database a run left on its server.
fn copies(db: &str) -> String {
    pg(
        db,
        "SELECT count(*) FROM pg_database WHERE datname LIKE 'quay\\_\\_cutover\\_%'",
    )
}

#[test]
fn a_snapshot_goes_back_with_the_databases_own_settings_and_becomes_the_backup_after_success() {
    snapshot_taken_and_put_back(&Scene::new("pgsnapshot"));
}

/// A database copied on its server before the migration, put back after a failure.
pub(crate) fn snapshot_taken_and_put_back(scene: &Scene) {
    let (name, db, port) = quay(scene);
    // A server shared with another application's database: copying its whole volume would put
    // that one back too, so the database is copied on the server.
    pg(&db, "CREATE DATABASE billing");
    pg(
        &db,
        "ALTER DATABASE quay SET work_mem = '7MB'; ALTER DATABASE quay CONNECTION LIMIT 50; CREATE ROLE reader; GRANT CONNECT ON DATABASE quay TO reader",
    );
    let (before, itself) = (pg_plain(&db), database_itself(&db));
    assert!(
        itself.contains("reader=c") && itself.contains("work_mem=7MB"),
        "{itself}"
    );
    let out = scene.upgrade(&name, "v3.9.0", &["--json", "--exec-after", "false"]);
    out.expect(1);
    let report = out.json();
    let steps = steps_field(&report, "step");
    let position = |name: &str| steps.iter().position(|s| *s == name).unwrap();
    assert!(
        position("stop") < position("snapshot") && position("snapshot") < position("migrate"),
        "copied on the server while stopped, before the migration: {steps:?}"
    );
    assert!(
        !steps.iter().any(|s| s == "backup" || s == "precopy"),
        "no dump in the window, no copy of the shared volume: {steps:?}"
    );
    assert!(
        report["restored"][0]
            .as_str()
            .is_some_and(|r| r.contains("put the snapshot quay__cutover_")),
        "{}",
        out.stdout
    );
    assert_eq!(pg_plain(&db), before, "the database equals the one before");
    assert_eq!(
        database_itself(&db),
        itself,
        "with its own settings and privileges"
    );
    assert_eq!(
        copies(&db),
        "0",
        "neither the snapshot nor the migrated copy is left"
    );
    assert!(quay_code().healthy(port).contains("\"status_code\":200"));
    assert_no_leftovers(&name);

    let out = scene.upgrade(&name, "v3.9.0", &["--json"]);
    out.expect(0);
    let report = out.json();
    let written = step_detail(&report, "backup_from_snapshot");
    assert!(written.contains("written after"), "{written}");
    assert_eq!(copies(&db), "0", "the snapshot was dropped");
    assert_eq!(quay_code().schema(&db), quay_code().schema_of("v3.9.0"));
    assert_eq!(
        database_itself(&db),
        itself,
        "the database was never replaced"
    );
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["manifest"]["schema_version"],
        quay_code().schema_of("v3.8.0").as_str(),
        "the portable backup holds the data from before the migration"
    );
    assert_eq!(listed[0]["manifest"]["container"], name.as_str());
}

/// The run's copies of a server's volume left on the engine, and the folders a rollback set
/// aside in its data.
fn volume_leftovers(db: &str) -> (String, String) {
    let volumes = docker(&[
        "volume",
        "ls",
        "-q",
        "--filter",
        &format!("name={db}__cutover_"),
    ]);
    let aside = docker(&[
        "exec",
        db,
        "sh",
        "-c",
        "ls -a $(dirname $PGDATA/x) /var/lib/mysql 2>/dev/null | grep cutover || true",
    ]);
    (volumes, aside)
}

#[test]
fn a_server_of_the_product_alone_is_copied_as_its_volume_and_copied_back_after_a_failure() {
    server_volume_copied_and_back(&Scene::new("pgvolume"));
}

/// A PostgreSQL server of the product alone, copied as its volume and copied back.
pub(crate) fn server_volume_copied_and_back(scene: &Scene) {
    let (name, db, port) = quay(scene);
    let before = pg_plain(&db);
    let out = scene.upgrade(&name, "v3.9.0", &["--json", "--exec-after", "false"]);
    out.expect(1);
    let report = out.json();
    let steps = steps_field(&report, "step");
    let position = |name: &str| steps.iter().position(|s| *s == name).unwrap();
    assert!(
        position("precopy") < position("stop")
            && position("stop") < position("snapshot_volume")
            && position("snapshot_volume") < position("migrate"),
        "copied while it served, then what changed while stopped, before the migration: {steps:?}"
    );
    assert!(
        report["restored"][0]
            .as_str()
            .is_some_and(|r| r.contains("put the database quay back from the copy")),
        "{}",
        out.stdout
    );
    assert_eq!(pg_plain(&db), before, "the database equals the one before");
    assert_eq!(pg(&db, "SELECT count(*) FROM repositories"), "500");
    assert_eq!(
        volume_leftovers(&db),
        (String::new(), String::new()),
        "neither the copy nor the files set aside are left"
    );
    assert!(quay_code().healthy(port).contains("\"status_code\":200"));
    assert_no_leftovers(&name);
    assert!(!exists(&format!("{db}-cutover-copy")));

    let out = scene.upgrade(&name, "v3.9.0", &["--json"]);
    out.expect(0);
    let report = out.json();
    let written = step_detail(&report, "backup_from_snapshot");
    assert!(written.contains("written after"), "{written}");
    assert_eq!(quay_code().schema(&db), quay_code().schema_of("v3.9.0"));
    assert_eq!(volume_leftovers(&db), (String::new(), String::new()));
    assert!(
        !exists(&format!("{db}-cutover-backup")),
        "the throwaway server is gone"
    );
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(
        listed[0]["manifest"]["schema_version"],
        quay_code().schema_of("v3.8.0").as_str(),
        "the portable backup holds the data from before the migration"
    );
    // A copy a run could not remove is named where the backups are listed.
    let stray = format!("{db}__cutover_20260101T000000");
    docker(&["volume", "create", &stray]);
    let listed = scene.cutover(&["backups", &name]);
    listed.expect(0);
    assert!(
        listed
            .stdout
            .contains(&format!("Left behind: the copy {stray}")),
        "{}",
        listed.stdout
    );
    docker(&["volume", "rm", &stray]);
    // `cutover restore` takes it (v3.9.0 migrates it again as it starts, as Quay does).
    pg(&db, "DELETE FROM repositories");
    let out = scene.cutover(&["restore", &name, "latest", "--yes", "--json"]);
    out.expect(0);
    assert_eq!(pg(&db, "SELECT count(*) FROM repositories"), "500");
}

#[test]
fn without_a_backup_a_failure_after_the_migration_keeps_the_new_version_serving() {
    let scene = Scene::new("pgnobackup");
    let (name, db, port) = quay(&scene);
    let out = scene.upgrade(
        &name,
        "v3.9.0",
        &["--json", "--skip-backup", "--exec-after", "false"],
    );
    out.expect(3);
    let report = out.json();
    assert_eq!(report["outcome"], "kept_new", "{}", out.stdout);
    assert!(
        report["state"]
            .as_str()
            .unwrap()
            .starts_with("NEEDS ATTENTION"),
        "{}",
        out.stdout
    );
    assert_eq!(
        quay_code().schema(&db),
        quay_code().schema_of("v3.9.0"),
        "the migration stays: the old version would refuse it"
    );
    assert_eq!(
        inspect(&name).unwrap()["Config"]["Image"],
        quay_code().image("v3.9.0")
    );
    assert!(
        quay_code().healthy(port).contains("\"status_code\":200"),
        "the new version serves"
    );
    let old = format!("{name}-old");
    assert!(
        exists(&old) && !is_running(&old),
        "the old container is kept stopped"
    );
    // Nothing for recover to take back: the run ended, serving.
    let recovered = scene.cutover(&["recover", "--yes", "--json"]);
    recovered.expect(0);
    assert!(recovered.json()["recovered"].as_array().unwrap().is_empty());
}

#[test]
fn killed_during_the_migration_then_recover_restores_the_database() {
    killed_migration_recovered_onto_the_database(&Scene::new("pgkill"));
}

/// A run killed during the migration: `recover` restores the database.
pub(crate) fn killed_migration_recovered_onto_the_database(scene: &Scene) {
    let (name, db, port) = quay(scene);
    let before = pg_plain(&db);
    // Quay's image runs /quay-registry/quay-entrypoint.sh (Dockerfile, ENTRYPOINT).
    let migrate = "-c '/quay-registry/quay-entrypoint.sh migrate head; sleep 1000'";
    let mut run = scene.spawn(
        &[
            "upgrade",
            &name,
            "--to",
            "v3.9.0",
            "--yes",
            "--migrate-entrypoint",
            "/bin/sh",
            "--migrate",
            migrate,
        ],
        &[],
    );
    let start = Instant::now();
    // The server stops for a moment in the window, while what changed is copied.
    let version = || {
        let out = docker_output(&psql_args(
            &db,
            "quay",
            "quay",
            "SELECT version_num FROM alembic_version",
        ));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let migrated = quay_code().schema_of("v3.9.0");
    while version() != migrated {
        assert!(
            start.elapsed() < Duration::from_secs(180),
            "the migration never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    kill_hard(&mut run);
    assert_eq!(scene.recover(&[])["outcome"], "rolled_back");
    assert_eq!(pg_plain(&db), before, "recover restored the database");
    assert!(quay_code().healthy(port).contains("\"status_code\":200"));
    assert!(!exists(&format!("{name}-migrate")));
    assert_no_leftovers(&name);
}

pub(crate) fn maria_dump(db: &str) -> String {
    plain(&docker(&[
        "exec",
        "-e",
        "MYSQL_PWD=app-pw-9",
        db,
        "mysqldump",
        "-h",
        "127.0.0.1",
        "-u",
        "app",
        "--skip-dump-date",
        "app",
    ]))
}

/// A MariaDB server on `net` with database `app` of user `app`, once it answers.
fn mariadb(scene: &Scene, net: &str) -> String {
    let db = database(
        scene,
        net,
        "mariadb:10",
        &[
            "MARIADB_ROOT_PASSWORD=root-pw-1",
            "MARIADB_DATABASE=app",
            "MARIADB_USER=app",
            "MARIADB_PASSWORD=app-pw-9",
        ],
    );
    let start = Instant::now();
    while !docker_output(&[
        "exec",
        "-e",
        "MYSQL_PWD=app-pw-9",
        &db,
        "mariadb",
        "-h",
        "127.0.0.1",
        "-u",
        "app",
        "app",
        "-e",
        "SELECT 1",
    ])
    .status
    .success()
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "MariaDB never came up"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    db
}

#[test]
fn a_mariadb_user_who_could_not_restore_is_refused_before_any_downtime() {
    let scene = Scene::new("mariadbpriv");
    let net = network(&scene);
    let db = mariadb(&scene, &net);
    // A user that reads and writes rows but may not create or drop tables.
    // root is root@localhost: through the server's socket.
    docker(&["exec", "-e", "MYSQL_PWD=root-pw-1", &db, "mariadb", "--socket=/tmp/mysql.sock", "-u", "root", "-e",
        "CREATE USER 'rows'@'%' IDENTIFIED BY 'rows-pw-4'; GRANT SELECT, INSERT, UPDATE, DELETE, LOCK TABLES ON app.* TO 'rows'@'%'"]);
    let (name, port) = scene.run_served(
        "app",
        &net,
        8080,
        &["-e", "DB_URL=mysql://rows:rows-pw-4@db:3306/app"],
        &product("mysql-app:1"),
    );
    http_get_eventually(port, "/");
    let out = scene.upgrade_refused(
        &name,
        "2",
        &["--backup-db", "DB_URL"],
        &[
            "a restore could not put the backup back",
            "the database user rows",
        ],
    );
    assert!(!out.stderr.contains("rows-pw-4"));
}

#[test]
fn a_stopped_database_is_named_and_refused() {
    let scene = Scene::new("pgstopped");
    let (name, db, _) = quay(&scene);
    docker(&["stop", &db]);
    scene.upgrade_refused(
        &name,
        "v3.9.0",
        &[],
        &[&format!(
            "the container {db}, which is not running: start it"
        )],
    );
}

/// The app of version 1 on its own MariaDB, serving, with rows of its data: the server, the
/// app and its port.
pub(crate) fn maria_app(scene: &Scene) -> (String, String, u16) {
    let net = network(scene);
    let db = mariadb(scene, &net);
    let (name, port) = scene.run_served(
        "app",
        &net,
        8080,
        &["-e", "DB_URL=mysql://app:app-pw-9@db:3306/app"],
        &product("mysql-app:1"),
    );
    http_get_eventually(port, "/");
    docker(&["exec", "-e", "MYSQL_PWD=app-pw-9", &db, "mariadb", "-h", "127.0.0.1", "-u", "app", "app", "-e",
        "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)); INSERT INTO items VALUES (1, 'one'), (2, 'two'), (3, 'three')"]);
    (db, name, port)
}

#[test]
fn a_rollback_across_a_migration_restores_the_mariadb_database() {
    mariadb_restored_across_a_failed_migration(&Scene::new("mariadb"));
}

/// The app on its MariaDB, migrated by version 2 which then fails: its dump restores the
/// database; then a migration that passes keeps the old container and its data.
pub(crate) fn mariadb_restored_across_a_failed_migration(scene: &Scene) {
    let (db, name, port) = maria_app(scene);
    let before = maria_dump(&db);

    let failing = [
        "upgrade",
        &name,
        "--to",
        "2",
        "--yes",
        "--json",
        "--backup-db",
        "DB_URL",
        "--backup-dump",
        "--migrate",
        "/app/migrate-mysql",
        "--health-url",
        "http://127.0.0.1:9/",
        "--health-timeout",
        "3s",
    ];
    let out = scene.cutover(&failing);
    out.expect(1);
    assert!(
        out.stderr.contains("schema migrated to 2"),
        "the migration ran: {}",
        out.stderr
    );
    assert!(
        out.json()["restored"][0]
            .as_str()
            .unwrap()
            .contains("MySQL/MariaDB database app"),
        "{}",
        out.stdout
    );
    assert_eq!(
        maria_dump(&db),
        before,
        "the database equals the one before"
    );
    assert!(http_get_eventually(port, "/").contains("version=1"));
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(!text.contains("app-pw-9"), "the password leaked");
    }

    let out = scene.upgrade(
        &name,
        "2",
        &[
            "--json",
            "--keep-old",
            "--backup-db",
            "DB_URL",
            "--migrate",
            "/app/migrate-mysql",
            "--settle",
            "1s",
        ],
    );
    out.expect(0);
    assert!(
        maria_dump(&db).contains("migrated_to"),
        "a good upgrade keeps its migration"
    );
    assert!(
        step_detail(&out.json(), "backup_from_snapshot").contains("written after"),
        "its server's volume copied in the window, the backup read from the copy after: {}",
        out.stdout
    );
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "one backup per upgrade"
    );

    // Going back to version 1 puts back the data version 1 ran on, after backing up today's.
    let dry = scene.cutover(&["rollback", &name, "--dry-run"]);
    dry.expect(0);
    assert!(
        dry.stdout.contains("restore the data of"),
        "the rollback offers the restore: {}",
        dry.stdout
    );
    let out = scene.cutover(&["rollback", &name, "--yes", "--settle", "1s"]);
    out.expect(0);
    assert_eq!(maria_dump(&db), before, "the data of version 1");
    assert!(http_get_eventually(port, "/").contains("version=1"));
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        3,
        "the migrated data was backed up before the restore"
    );
}

#[test]
fn a_mariadb_server_of_the_product_alone_is_copied_as_its_volume_and_copied_back() {
    let scene = Scene::new("mariavolume");
    let (db, name, port) = maria_app(&scene);
    let before = maria_dump(&db);
    let out = scene.cutover(&[
        "upgrade",
        &name,
        "--to",
        "2",
        "--yes",
        "--json",
        "--backup-db",
        "DB_URL",
        "--migrate",
        "/app/migrate-mysql",
        "--health-url",
        "http://127.0.0.1:9/",
        "--health-timeout",
        "3s",
    ]);
    out.expect(1);
    let report = out.json();
    let steps = steps_field(&report, "step");
    assert!(
        steps.contains(&"precopy".to_string()) && steps.contains(&"snapshot_volume".to_string()),
        "{steps:?}"
    );
    assert!(
        report["restored"][0]
            .as_str()
            .is_some_and(|r| r.contains("put the database app back from the copy")),
        "{}",
        out.stdout
    );
    assert_eq!(
        maria_dump(&db),
        before,
        "the database equals the one before"
    );
    assert_eq!(volume_leftovers(&db), (String::new(), String::new()));
    assert!(http_get_eventually(port, "/").contains("version=1"));
    for text in [&out.stdout, &out.stderr, &scene.journal_text()] {
        assert!(!text.contains("app-pw-9"), "the password leaked");
    }
}

/// A volume's files as `stat` sees them, with each file's checksum.
fn tree(name: &str) -> String {
    docker(&["exec", name, "sh", "-c", "cd /payload && find . | sort | while read -r f; do stat -c '%n %a %u:%g %h %F %s' \"$f\"; [ -L \"$f\" ] && readlink \"$f\"; [ -f \"$f\" ] && [ ! -L \"$f\" ] && md5sum \"$f\" | cut -d' ' -f1; done; true"])
}

#[test]
fn volumes_round_trip_byte_for_byte() {
    volumes_round_trip(&Scene::new("volumes"));
}

/// `backup --backup-volumes` then `restore latest` on the scene's engine: modes, owners, links,
/// hard links, empty directories and a 256 MiB file come back.
pub fn volumes_round_trip(scene: &Scene) {
    // Not /data, where the app records each start.
    let volume = format!("{}:/payload", scene.name("payload"));
    let name = scene.run("app", &["--init", "-v", &volume], "1");
    docker(&["exec", &name, "sh", "-c", "set -e; cd /payload; mkdir -p empty deep/er; echo secret > deep/er/mode600; chmod 600 deep/er/mode600; \
        echo owned > owned; chown 1234:5678 owned; ln -s deep/er/mode600 link; echo hard > hard1; ln hard1 hard2; \
        dd if=/dev/urandom of=big bs=1M count=256 2>/dev/null; chmod 751 deep"]);
    let before = tree(&name);
    let out = scene.cutover(&["backup", &name, "--backup-volumes", "--yes", "--json"]);
    out.expect(0);
    docker(&["exec", &name, "sh", "-c", "cd /payload; rm -rf empty owned; echo changed > hard1; echo new > added; dd if=/dev/zero of=big bs=1M count=1 conv=notrunc 2>/dev/null"]);
    assert_ne!(tree(&name), before);
    let out = scene.cutover(&["restore", &name, "latest", "--yes", "--json"]);
    out.expect(0);
    assert_eq!(
        tree(&name),
        before,
        "modes, owners, links, hard links, empty directories and the 256 MiB file come back"
    );
    let listed = scene.cutover(&["backups", &name, "--json"]).json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "the data the restore replaced was backed up first"
    );
    assert!(is_running(&name));
}

#[test]
fn a_backup_that_would_not_fit_is_refused_before_any_downtime() {
    let scene = Scene::new("nospace");
    let volume = format!("{}:/data", scene.name("data"));
    let name = scene.run("app", &["--init", "-v", &volume], "1");
    docker(&[
        "exec",
        &name,
        "dd",
        "if=/dev/urandom",
        "of=/data/blob",
        "bs=1M",
        "count=4",
    ]);
    let small = temp_dir(&scene, "tmpfs");
    // Its root root's alone: a tmpfs is 1777 otherwise, which cutover refuses for backups.
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs"])
        .arg(&small)
        .status()
        .unwrap();
    assert!(mounted.success(), "mounting a small tmpfs needs root");
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(
        &name,
        "2",
        &["--backup-volumes", "--backup-dir", small.to_str().unwrap()],
    );
    let _ = std::process::Command::new("umount").arg(&small).status();
    out.refused(&["the backup needs about", "free"]);
    assert_untouched(&name, &before);
}
