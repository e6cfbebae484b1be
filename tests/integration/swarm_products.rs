//! A product's Swarm services moved by its profile on a real single-node swarm: Anchore
//! Engine's services, ProGet and DevLake, each on a real PostgreSQL service of an overlay network.

use std::time::{Duration, Instant};

use crate::engines::PrivateEngine;
use crate::helpers::*;
use crate::swarm::{create_service, read_in_task, spec_image, swarm, task_of, wait_running};

const DB_PASSWORD: &str = "swarm-db-pw-31";

/// A swarm with an overlay network and a PostgreSQL service on it.
struct Site {
    scene: Scene,
    engine: PrivateEngine,
    host: String,
    net: String,
    /// The database's service, which the products reach by this name.
    db: String,
}

impl Site {
    fn new(test: &str, user: &str, database: &str) -> Site {
        let scene = Scene::new(test);
        let (engine, host) = swarm(&scene);
        let net = scene.name("net");
        engine.run(&["network", "create", "--driver", "overlay", &net]);
        let db = scene.name("db");
        let env = [
            format!("POSTGRES_USER={user}"),
            format!("POSTGRES_PASSWORD={DB_PASSWORD}"),
            format!("POSTGRES_DB={database}"),
        ];
        // DNS round robin: a virtual IP needs IPVS, which this machine's engines lack.
        let mut options = vec!["--network", &net, "--endpoint-mode", "dnsrr"];
        for e in &env {
            options.extend(["-e", e]);
        }
        create_service(&engine, &db, 1, &options, &[&product("postgres:15")]);
        let site = Site {
            scene,
            engine,
            host,
            net,
            db,
        };
        // The products fail when their database does not answer yet.
        site.sql(user, database, "SELECT 1");
        site
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("DOCKER_HOST", self.host.as_str())]
    }

    /// The database service's task.
    fn db_task(&self) -> String {
        task_of(&self.engine, &self.db).expect("the database's task runs")
    }

    /// A query's answer, retried until the server answers.
    fn sql(&self, user: &str, database: &str, query: &str) -> String {
        let start = Instant::now();
        loop {
            let task = self.db_task();
            let out = self.engine.docker(&psql_args(&task, user, database, query));
            if out.status.success() {
                return String::from_utf8_lossy(&out.stdout).trim().to_string();
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "{query}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The whole database as plain SQL, without what differs between two dumps of one state.
    fn dump(&self, user: &str, database: &str) -> String {
        let task = self.db_task();
        comparable(&self.engine.run(&pg_dump_args(&task, user, database)))
    }

    /// The product's schema version, as the emulator keeps it.
    fn schema(&self, user: &str, database: &str, product: &str) -> String {
        self.sql(
            user,
            database,
            &format!("SELECT version FROM emulator_schema WHERE product = '{product}'"),
        )
    }

    fn upgrade(&self, service: &str, to: &str) -> Outcome {
        self.upgrade_with(service, to, &[])
    }

    /// An upgrade that fails and rolls back (exit 1): its report.
    fn rolls_back(&self, service: &str, to: &str, extra: &[&str]) -> serde_json::Value {
        let out = self.upgrade_with(service, to, extra);
        out.expect(1);
        let report = out.json();
        assert_eq!(report["outcome"], "rolled_back", "{report}");
        for text in [&out.stdout, &out.stderr] {
            assert!(!text.contains(DB_PASSWORD), "the password leaked");
        }
        report
    }

    fn upgrade_with(&self, service: &str, to: &str, extra: &[&str]) -> Outcome {
        let args = [
            "upgrade", service, "--to", to, "--yes", "--json", "--settle", "2s",
        ];
        self.scene
            .cutover_with_env(&[&args[..], extra].concat(), &self.env())
    }

    /// Waits until a task of the service answers `path` on `port` inside it (a product with no
    /// HEALTHCHECK runs before it serves).
    fn serving(&self, service: &str, port: u16, path: &str) {
        let url = format!("http://127.0.0.1:{port}{path}");
        let start = Instant::now();
        loop {
            let task = task_of(&self.engine, service);
            if let Some(task) = task {
                if self
                    .engine
                    .docker(&["exec", &task, "wget", "-qO-", &url])
                    .status
                    .success()
                {
                    return;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(90),
                "{service} never answered {url}"
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Whether every one of the service's `replicas` tasks runs `image` (as its spec pins it).
    fn assert_runs(&self, service: &str, replicas: u32, image: &str) {
        let spec = spec_image(&self.engine, service);
        assert!(spec.starts_with(&format!("{image}@sha256:")), "{spec}");
        wait_running(&self.engine, service, replicas, &spec);
    }
}

/// Anchore Engine's catalog (two replicas) and its API (one) as services on the quickstart's
/// database (user and database `postgres`, as the image defaults them), with `extra`
/// variables; their names.
fn anchore(test: &str, extra: &[&str]) -> (Site, String, String) {
    let site = Site::new(test, "postgres", "postgres");
    let name = site.scene.name("catalog");
    let api = site.scene.name("apiext");
    let host_var = format!("ANCHORE_DB_HOST={}", site.db);
    let password_var = format!("ANCHORE_DB_PASSWORD={DB_PASSWORD}");
    let mut options = vec![
        "--network",
        &site.net,
        "-e",
        &host_var,
        "-e",
        &password_var,
        "-e",
        "ANCHORE_ADMIN_PASSWORD=foobar",
    ];
    for e in extra {
        options.extend(["-e", e]);
    }
    create_service(
        &site.engine,
        &name,
        2,
        &options,
        &[
            &product("anchore/anchore-engine:v0.7.0"),
            "anchore-manager",
            "service",
            "start",
            "catalog",
        ],
    );
    create_service(
        &site.engine,
        &api,
        1,
        &options,
        &[
            &product("anchore/anchore-engine:v0.7.0"),
            "anchore-manager",
            "service",
            "start",
            "apiext",
        ],
    );
    site.sql(
        "postgres",
        "postgres",
        "CREATE TABLE images (digest text PRIMARY KEY, analyzed boolean); INSERT INTO images SELECT 'sha256:' || g, g % 2 = 0 FROM generate_series(1, 200) g",
    );
    (site, name, api)
}

fn step_names(report: &serde_json::Value) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn anchore_on_two_replicas_migrates_as_a_job_and_a_failure_restores_its_database() {
    let (site, name, api) = anchore("swarmanchore", &[]);
    let anchore = |tag: &str| product(&format!("anchore/anchore-engine:{tag}"));

    // A migration that fails: the previous spec back on every task of both services (the API
    // is on the same database, so it moves too), the database as before.
    let before = site.dump("postgres", "postgres");
    let report = site.rolls_back(&name, "v0.8.0", &[]);
    assert!(
        report["failure"].as_str().unwrap().contains("failed"),
        "{report}"
    );
    site.assert_runs(&name, 2, &anchore("v0.7.0"));
    site.assert_runs(&api, 1, &anchore("v0.7.0"));
    assert_eq!(site.dump("postgres", "postgres"), before, "restored");

    // The migration as a job while no task runs, the database backed up first, the new tasks
    // tried by the profile's health and version rules.
    let out = site.upgrade(&name, "v0.7.1");
    out.expect(0);
    let report = out.json();
    assert_eq!(
        step_names(&report),
        [
            "pull",
            "service_scale",
            "service_scale",
            "backup",
            "service_job",
            "service_update",
            "service_update",
            "service_await",
            "service_await"
        ],
        "{report}"
    );
    assert_eq!(report["profile"]["name"], "anchore-engine", "{report}");
    let awaited = report["steps"][7]["detail"].as_str().unwrap();
    assert!(
        awaited.contains("answered HTTP 200") && awaited.contains("it reports 0.7.1"),
        "{awaited}"
    );
    site.assert_runs(&name, 2, &anchore("v0.7.1"));
    site.assert_runs(&api, 1, &anchore("v0.7.1"));
    assert_eq!(site.schema("postgres", "postgres", "anchore"), "0.7.1");
    assert_eq!(
        site.sql("postgres", "postgres", "SELECT count(*) FROM images"),
        "200"
    );

    // `check` judges the product's service by its profile's policy, like its containers.
    let out = site
        .scene
        .cutover_with_env(&["check", "--all", "--json"], &site.env());
    out.expect(0);
    let statuses = out.json()["containers"].clone();
    let status = statuses
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["container"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} is not listed: {statuses}"))
        .clone();
    assert_eq!(
        (status["swarm"].as_bool(), status["eligible"].as_bool()),
        (Some(true), Some(true)),
        "{status}"
    );
    assert_eq!(status["profile"], "anchore-engine", "{status}");

    // A new version that fails once its migration changed the schema: the old image back
    // with no task running, the database restored, then the replicas.
    let before = site.dump("postgres", "postgres");
    let report = site.rolls_back(&name, "v0.7.2", &[]);
    let text = report.to_string();
    assert!(text.contains("restored the PostgreSQL database"), "{text}");
    site.assert_runs(&name, 2, &anchore("v0.7.1"));
    site.assert_runs(&api, 1, &anchore("v0.7.1"));
    assert_eq!(site.dump("postgres", "postgres"), before, "restored");
    assert_eq!(site.schema("postgres", "postgres", "anchore"), "0.7.1");

    assert!(
        !site.scene.journal_text_of(&site.host).contains(DB_PASSWORD),
        "the password leaked into a journal"
    );
    assert!(!site
        .engine
        .run(&["service", "ls", "--format", "{{.Name}}"])
        .contains("cutover-migrate"));
}

#[test]
fn anchore_killed_during_its_migration_job_is_recovered_onto_its_data() {
    // The migration takes 60 s (a test knob of the emulator), time to kill cutover in it.
    let (site, name, api) = anchore("swarmanchorekill", &["MIGRATION_DELAY_SECS=60"]);
    let before = site.dump("postgres", "postgres");
    let args = [
        "upgrade", &name, "--to", "v0.7.1", "--yes", "--settle", "2s",
    ];
    let mut run = site.scene.spawn(&args, &site.env());
    let job = format!("{name}-cutover-migrate");
    let start = Instant::now();
    while !site
        .engine
        .run(&["ps", "--format", "{{.Names}}"])
        .contains(&job)
    {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "the migration job never ran"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    kill_hard(&mut run);
    let out = site
        .scene
        .cutover_with_env(&["recover", "--yes", "--json"], &site.env());
    out.expect(0);
    let recovered = out.json()["recovered"][0].clone();
    assert_eq!(recovered["outcome"], "rolled_back", "{recovered}");
    let anchore = product("anchore/anchore-engine:v0.7.0");
    site.assert_runs(&name, 2, &anchore);
    site.assert_runs(&api, 1, &anchore);
    assert_eq!(
        site.dump("postgres", "postgres"),
        before,
        "recover restored it"
    );
    assert!(!site
        .engine
        .run(&["service", "ls", "--format", "{{.Name}}"])
        .contains("cutover-migrate"));
}

#[test]
fn proget_whose_connection_is_a_swarm_secret_keeps_it_and_is_restored_through_it() {
    let site = Site::new("swarmproget", "proget", "proget");
    let secret_name = site.scene.name("connection");
    let connection = format!(
        "Server={};Port=5432;Database=proget;User Id=proget;Password={DB_PASSWORD};",
        site.db
    );
    secret(&site, &secret_name, &connection);
    let name = site.scene.name("proget");
    create_service(
        &site.engine,
        &name,
        1,
        &[
            "--network",
            &site.net,
            "--secret",
            &format!("source={secret_name},target=connection"),
            "-e",
            "PROGET_POSTGRES_CONNECTION_STRING_FILE=/run/secrets/connection",
        ],
        &[&product("inedo/proget:25.0.1")],
    );
    site.serving(&name, 80, "/health");
    let proget = |tag: &str| product(&format!("inedo/proget:{tag}"));

    // `upgradedb` as a job with the service's secret, the database reached and backed up with
    // the connection the secret holds, read through the running task.
    let out = site.upgrade(&name, "26.0.1");
    out.expect(0);
    let report = out.json();
    assert!(
        step_names(&report).contains(&"backup".to_string()),
        "{report}"
    );
    site.assert_runs(&name, 1, &proget("26.0.1"));
    assert_eq!(site.schema("proget", "proget", "proget"), "26.0.1");

    // 26.0.2 fails once its migration changed the schema: the backup, read with the secret's
    // password while the task still ran, is restored with it while none runs.
    let before = site.dump("proget", "proget");
    // It answers 500 for ever: the profile's 10 minutes are not waited out.
    let report = site.rolls_back(&name, "26.0.2", &["--health-timeout", "20s"]);
    assert!(
        report
            .to_string()
            .contains("restored the PostgreSQL database proget"),
        "{report}"
    );
    site.assert_runs(&name, 1, &proget("26.0.1"));
    assert_eq!(site.dump("proget", "proget"), before, "restored");
    assert_eq!(site.schema("proget", "proget", "proget"), "26.0.1");

    // The secret stays the service's: the job ran with it, and the new task has it.
    let spec_secrets = site.engine.run(&[
        "service",
        "inspect",
        "-f",
        "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}} {{end}}",
        &name,
    ]);
    assert_eq!(spec_secrets.trim(), secret_name);
    assert!(
        !site.scene.journal_text_of(&site.host).contains(DB_PASSWORD),
        "the password leaked into a journal"
    );
}

/// `docker secret create NAME -` with `data`.
fn secret(site: &Site, name: &str, data: &str) {
    let mut made = std::process::Command::new("/usr/bin/docker")
        .args(["secret", "create", name, "-"])
        .env("DOCKER_HOST", &site.host)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(made.stdin.as_mut().unwrap(), data.as_bytes()).unwrap();
    drop(made.stdin.take());
    assert!(made.wait().unwrap().success());
}

/// The secrets the service's spec names, and where.
fn secrets_of(site: &Site, service: &str) -> String {
    site.engine
        .run(&[
            "service",
            "inspect",
            "-f",
            "{{range .Spec.TaskTemplate.ContainerSpec.Secrets}}{{.SecretName}}:{{.File.Name}} {{end}}",
            service,
        ])
        .trim()
        .to_string()
}

#[test]
fn devlake_whose_key_is_in_a_swarm_secret_gets_a_new_secret_with_its_encryption_secret() {
    let site = Site::new("swarmdevlake", "lake", "lake");
    let key = "3f5e8c1d9a7b4e2f6c0d8a1b5e9f7c3d";
    let env_secret = site.scene.name("lake-env");
    secret(
        &site,
        &env_secret,
        &format!(
            "DB_URL=postgres://lake:{DB_PASSWORD}@{}:5432/lake\nENCODE_KEY={key}\n",
            site.db
        ),
    );
    let lake = site.scene.name("devlake");
    create_service(
        &site.engine,
        &lake,
        1,
        &[
            "--network",
            &site.net,
            "--secret",
            &format!("source={env_secret},target=/app/.env"),
        ],
        &[&product("apache/devlake:v0.17.0")],
    );
    site.serving(&lake, 8080, "/ping");
    let lake_image = |tag: &str| product(&format!("apache/devlake:{tag}"));

    // 0.19's migration fails once called: DevLake back on its data, the old secret with it,
    // and the one made for the new version removed.
    let before = site.dump("lake", "lake");
    site.rolls_back(&lake, "v0.19.0", &[]);
    site.assert_runs(&lake, 1, &lake_image("v0.17.0"));
    assert_eq!(secrets_of(&site, &lake), format!("{env_secret}:/app/.env"));
    let secrets = site.engine.run(&["secret", "ls", "--format", "{{.Name}}"]);
    assert_eq!(secrets.trim(), env_secret, "the new secret is removed");
    assert_eq!(site.dump("lake", "lake"), before, "restored");

    let devlake_endpoint = format!("DEVLAKE_ENDPOINT={lake}:8080");
    let ui = site.scene.name("config-ui");
    create_service(
        &site.engine,
        &ui,
        1,
        &[
            "--network",
            &site.net,
            "-e",
            &devlake_endpoint,
            "-e",
            "GRAFANA_ENDPOINT=grafana:3000",
        ],
        &[&product("apache/devlake-config-ui:v0.17.0")],
    );
    // 0.18: a new secret, the old file with ENCRYPTION_SECRET added, in the old one's place;
    // the migration called on the new task; the config UI moved to the same tag.
    let out = site.upgrade(&lake, "v0.18.0-beta1");
    out.expect(0);
    let report = out.json();
    let made = format!("{env_secret}-v0.18.0-beta1");
    assert_eq!(secrets_of(&site, &lake), format!("{made}:/app/.env"));
    let dotenv = read_in_task(&site.engine, &lake, "/app/.env");
    assert!(
        dotenv.contains(&format!("ENCODE_KEY={key}"))
            && dotenv.contains(&format!("ENCRYPTION_SECRET={key}")),
        "the new secret's file has both"
    );
    let text = report.to_string();
    assert!(text.contains("called /proceed-db-migration"), "{text}");
    site.assert_runs(&lake, 1, &lake_image("v0.18.0-beta1"));
    site.assert_runs(&ui, 1, &product("apache/devlake-config-ui:v0.18.0-beta1"));
    assert_eq!(site.schema("lake", "lake", "devlake"), "0.18.0-beta1");
    for text in [
        &out.stdout,
        &out.stderr,
        &site.scene.journal_text_of(&site.host),
    ] {
        assert!(
            !text.contains(key) && !text.contains(DB_PASSWORD),
            "a secret leaked"
        );
    }
}
