//! What every integration test needs: the world's engine and registry, unique names, the
//! `cutover` binary, and reading containers back.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Debian's docker client, which speaks the API of Debian's engine.
const DOCKER_CLI: &str = "/usr/bin/docker";

static ONE_PASS_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Held by every test that runs `cutover auto` or opts a container in with a label: a pass looks
/// at every opted-in container of the engine, another test's too.
pub fn auto_turn() -> std::sync::MutexGuard<'static, ()> {
    ONE_PASS_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

pub fn registry() -> String {
    std::env::var("CUTOVER_TEST_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5000".into())
}

/// The registry that wants a user and password (htpasswd).
pub fn auth_registry() -> String {
    std::env::var("CUTOVER_TEST_AUTH_REGISTRY").unwrap_or_else(|_| "127.0.0.1:5001".into())
}

/// The world's own docker config, logged in to the authenticated registry.
pub fn logged_in_docker_config() -> PathBuf {
    PathBuf::from(
        std::env::var("CUTOVER_TEST_WORLD").unwrap_or_else(|_| "/tmp/cutover-world".into()),
    )
    .join("docker-config")
}

/// The password of the authenticated registry's fixture user.
pub const REGISTRY_PASSWORD: &str = "registry-pass-123";

/// `path`, written as `podman login` writes its auth.json for the authenticated registry's
/// fixture user (containers-auth.json(5): `auths`, base64 of `user:password`).
pub fn podman_login_file(path: PathBuf) -> PathBuf {
    use base64::Engine as _;
    let auth =
        base64::engine::general_purpose::STANDARD.encode(format!("cutover:{REGISTRY_PASSWORD}"));
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(
        &path,
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{auth}\"}}}}}}",
            auth_registry()
        ),
    )
    .unwrap();
    path
}

/// An image of the test world's products (`fixtures/world.sh`), e.g. `projectquay/quay:v3.8.0`.
pub fn product(repo_tag: &str) -> String {
    format!("{}/{repo_tag}", registry())
}

/// A network of the scene, where its containers find each other by alias.
pub fn network(scene: &Scene) -> String {
    let net = scene.name("net");
    docker(&["network", "create", &net]);
    net
}

/// A database server of the test world on `net`, reachable there as `db`, set up by `env`.
pub fn database(scene: &Scene, net: &str, image: &str, env: &[&str]) -> String {
    let mut options = vec!["--network", net, "--network-alias", "db"];
    for pair in env {
        options.extend(["-e", pair]);
    }
    scene.run_image("db", &options, &product(image))
}

/// A PostgreSQL server on `net`, reachable there as `db`.
pub fn postgres(scene: &Scene, net: &str, user: &str, password: &str, name: &str) -> String {
    let env = [
        format!("POSTGRES_USER={user}"),
        format!("POSTGRES_PASSWORD={password}"),
        format!("POSTGRES_DB={name}"),
    ];
    database(
        scene,
        net,
        "postgres:15",
        &env.each_ref().map(String::as_str),
    )
}

pub fn image(tag: &str) -> String {
    format!("{}/demo:{tag}", registry())
}

std::thread_local! {
    /// The engine this test's docker CLI and `cutover` speak to when it is not the world's
    /// dockerd: Podman's service, for the tests of [`Scene::on_podman`].
    static ENGINE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// The address of this test's engine: the world's dockerd, or Podman's for a Podman scene.
pub fn docker_host() -> String {
    ENGINE.with(|e| e.borrow().clone()).unwrap_or_else(|| {
        std::env::var("DOCKER_HOST").expect(
            "DOCKER_HOST is not set: these tests need the real engine of `bash fixtures/world.sh test`",
        )
    })
}

/// Runs the docker CLI against the world's engine; panics with its stderr when it fails.
pub fn docker(args: &[&str]) -> String {
    succeeded(&format!("docker {args:?}"), docker_output(args))
}

/// What a command printed, trimmed; panics with its stderr when it failed.
pub fn succeeded(what: &str, out: Output) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

pub fn docker_output(args: &[&str]) -> Output {
    Command::new(DOCKER_CLI)
        .args(args)
        .env("DOCKER_HOST", docker_host())
        .output()
        .expect("docker CLI")
}

pub fn inspect(name: &str) -> Option<Value> {
    let out = docker_output(&["inspect", "--type", "container", name]);
    if !out.status.success() {
        return None;
    }
    let mut all: Vec<Value> = serde_json::from_slice(&out.stdout).expect("inspect JSON");
    all.pop()
}

pub fn exists(name: &str) -> bool {
    inspect(name).is_some()
}

pub fn id_of(name: &str) -> String {
    inspect(name).unwrap_or_else(|| panic!("no container {name}"))["Id"]
        .as_str()
        .unwrap()
        .to_string()
}

pub fn is_running(name: &str) -> bool {
    inspect(name).is_some_and(|c| c["State"]["Running"] == Value::Bool(true))
}

/// A test's own names, state directory and cleanup: containers, networks and volumes whose name
/// starts with the prefix are removed when the test ends, pass or fail.
pub struct Scene {
    pub prefix: String,
    pub state_dir: PathBuf,
    /// Held by a scene on rootless Podman until it is cleaned up: its CNI bridge plugin, all
    /// networks in the user's one namespace, fails now and then to attach a container to a new
    /// network while another test attaches one (`failed to set bridge addr: could not set
    /// bridge's mac: invalid argument`, seen in the test's own `docker run`).
    _turn: Option<std::sync::MutexGuard<'static, ()>>,
}

static ONE_ROOTLESS_SCENE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

impl Scene {
    pub fn new(test: &str) -> Scene {
        static N: AtomicUsize = AtomicUsize::new(0);
        let prefix = format!(
            "t{}-{}-{test}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let state_dir = std::env::temp_dir().join(format!("cutover-state-{prefix}"));
        Scene {
            prefix,
            state_dir,
            _turn: None,
        }
    }

    /// A scene on the world's Podman service (`CUTOVER_TEST_PODMAN`): this test's docker CLI
    /// and `cutover` reach it by `DOCKER_HOST`, as Podman's users point Docker tools at it.
    pub fn on_podman(test: &str) -> Scene {
        Scene::on_engine("CUTOVER_TEST_PODMAN", test)
    }

    /// As [`Scene::on_podman`], on the world's rootless Podman service.
    pub fn on_rootless_podman(test: &str) -> Scene {
        let turn = ONE_ROOTLESS_SCENE_AT_A_TIME
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let mut scene = Scene::on_engine("CUTOVER_TEST_PODMAN_ROOTLESS", test);
        scene._turn = Some(turn);
        scene
    }

    /// A scene on the engine whose address the variable `var` holds, for this test's thread.
    fn on_engine(var: &str, test: &str) -> Scene {
        let host = std::env::var(var).unwrap_or_else(|_| {
            panic!("{var} is not set: run the tests in `bash fixtures/world.sh test`")
        });
        ENGINE.with(|e| *e.borrow_mut() = Some(host));
        Scene::new(test)
    }

    pub fn name(&self, what: &str) -> String {
        format!("{}-{what}", self.prefix)
    }

    /// `docker run -d` with the given options, the fixture image `demo:TAG` last.
    pub fn run(&self, what: &str, options: &[&str], image_tag: &str) -> String {
        self.run_image(what, options, &image(image_tag))
    }

    /// `docker run -d --init -p 127.0.0.1:PORT:8080` of `demo:TAG`: the name and the port.
    pub fn run_published(&self, what: &str, image_tag: &str) -> (String, u16) {
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:8080");
        (self.run(what, &["--init", "-p", &publish], image_tag), port)
    }

    /// `docker run -d` of an image on `net`, its port `inner` published on a free loopback port.
    pub fn run_served(
        &self,
        what: &str,
        net: &str,
        inner: u16,
        options: &[&str],
        image: &str,
    ) -> (String, u16) {
        let port = free_port();
        let publish = format!("127.0.0.1:{port}:{inner}");
        let all = [&["--network", net, "-p", &publish][..], options].concat();
        (self.run_image(what, &all, image), port)
    }

    /// `docker run -d` of any image.
    pub fn run_image(&self, what: &str, options: &[&str], image: &str) -> String {
        let name = self.name(what);
        let mut args = vec!["run", "-d", "--name", &name];
        args.extend_from_slice(options);
        args.push(image);
        docker(&args);
        name
    }

    /// Runs `cutover` with this scene's state directory; `--yes` is not added.
    pub fn cutover(&self, args: &[&str]) -> Outcome {
        self.cutover_with_env(args, &[])
    }

    /// `cutover upgrade NAME --to TAG --yes EXTRA...`, the call most tests make.
    pub fn upgrade(&self, name: &str, to: &str, extra: &[&str]) -> Outcome {
        let args = [&["upgrade", name, "--to", to, "--yes"][..], extra].concat();
        self.cutover(&args)
    }

    pub fn cutover_with_env(&self, args: &[&str], env: &[(&str, &str)]) -> Outcome {
        let out = self
            .command(args, env)
            .stdin(Stdio::null())
            .output()
            .expect("cutover runs");
        Outcome::from(out)
    }

    /// Runs `cutover` as `cutover_with_env` does, started by `sh` under `umask MASK`.
    pub fn cutover_under_umask(&self, mask: &str, args: &[&str]) -> Outcome {
        let cutover = self.command(args, &[]);
        let mut sh = Command::new("sh");
        sh.args(["-c", &format!("umask {mask} && exec \"$@\""), "sh"])
            .arg(cutover.get_program())
            .args(cutover.get_args());
        for (key, value) in cutover.get_envs() {
            match value {
                Some(value) => sh.env(key, value),
                None => sh.env_remove(key),
            };
        }
        Outcome::from(sh.stdin(Stdio::null()).output().expect("sh runs"))
    }

    /// Starts `cutover` in the background, for tests that kill or race it.
    /// `cutover recover [ARGS] --yes --json`, which must exit 0: the first run it recovered.
    pub fn recover(&self, args: &[&str]) -> Value {
        let mut all = vec!["recover"];
        all.extend(args);
        all.extend(["--yes", "--json"]);
        let out = self.cutover(&all);
        out.expect(0);
        let report = out.json();
        assert!(report["recovered"][0].is_object(), "{}", out.stdout);
        report["recovered"][0].clone()
    }

    pub fn spawn(&self, args: &[&str], env: &[(&str, &str)]) -> Child {
        self.command(args, env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cutover starts")
    }

    fn command(&self, args: &[&str], env: &[(&str, &str)]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cutover"));
        cmd.args(args)
            .env("DOCKER_HOST", docker_host())
            .env("CUTOVER_STATE_DIR", &self.state_dir)
            .env_remove("CUTOVER_PAUSE_AFTER");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd
    }

    /// Where the runs on the world's engine are journaled: its own directory under the state
    /// directory, as for any engine but the host's standard socket.
    pub fn runs(&self) -> PathBuf {
        self.runs_of(&docker_host())
    }

    /// Where the runs on the engine at `host` are journaled.
    pub fn runs_of(&self, host: &str) -> PathBuf {
        let engine = cutover::engine::endpoint::Endpoint::at(host);
        cutover::fleet::state_dir(&self.state_dir, &engine).join("runs")
    }

    /// Everything the state directory holds, as text: the journals.
    pub fn journal_text(&self) -> String {
        self.journal_text_of(&docker_host())
    }

    /// The journals of the runs on the engine at `host`, as text.
    pub fn journal_text_of(&self, host: &str) -> String {
        let mut text = String::new();
        for entry in std::fs::read_dir(self.runs_of(host))
            .into_iter()
            .flatten()
            .flatten()
        {
            text.push_str(&std::fs::read_to_string(entry.path()).unwrap_or_default());
        }
        text
    }

    /// Waits until the journal holds `needle` (a run reached a known step).
    pub fn wait_for_journal(&self, needle: &str, timeout: Duration) {
        self.wait_for_journal_of(&docker_host(), needle, timeout);
    }

    /// As [`Scene::wait_for_journal`], for a run on the engine at `host`.
    pub fn wait_for_journal_of(&self, host: &str, needle: &str, timeout: Duration) {
        let start = Instant::now();
        while !self.journal_text_of(host).contains(needle) {
            assert!(
                start.elapsed() < timeout,
                "journal never showed {needle}: {}",
                self.journal_text_of(host)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Scene {
    fn drop(&mut self) {
        if std::env::var_os("DOCKER_HOST").is_none() {
            return; // the test already failed for want of an engine; a second panic would abort
        }
        let filter = format!("name={}", self.prefix);
        let ids = docker_output(&["ps", "-aq", "--filter", &filter]);
        for id in String::from_utf8_lossy(&ids.stdout).split_whitespace() {
            // With its anonymous volumes: a database's is 128 MB, and CI's disk is small.
            let _ = docker_output(&["rm", "-f", "-v", id]);
        }
        for kind in ["network", "volume"] {
            let out = docker_output(&[kind, "ls", "-q", "--filter", &filter]);
            for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                let _ = docker_output(&[kind, "rm", id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.state_dir);
        // The directories `temp_dir` made; copies of the binary among them take 186 MB each.
        let mine = format!("{}-", self.prefix);
        if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&mine) {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
    }
}

/// What a `cutover` run printed and how it exited.
pub struct Outcome {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Outcome {
    fn from(out: Output) -> Outcome {
        Outcome {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Outcome {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}\nstderr: {}", self.stdout, self.stderr))
    }

    /// Asserts the exit code, showing everything the run printed when it differs.
    pub fn expect(&self, code: i32) -> &Outcome {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Asserts how a `--json` run ended: its exit code, its outcome and a part of its failure;
    /// returns its report.
    pub fn ended(&self, code: i32, outcome: &str, failure: &str) -> Value {
        self.expect(code);
        let report = self.json();
        assert_eq!(report["outcome"], outcome, "{}", self.stdout);
        assert!(
            report["failure"]
                .as_str()
                .is_some_and(|f| f.contains(failure)),
            "expected {failure:?} in the failure: {}",
            self.stdout
        );
        report
    }

    /// Asserts a refusal: exit code 2 and stderr naming every one of `reasons`.
    pub fn refused(&self, reasons: &[&str]) -> &Outcome {
        self.expect(2);
        for reason in reasons {
            assert!(
                self.stderr.contains(reason),
                "expected {reason:?} in:\n{}",
                self.stderr
            );
        }
        self
    }
}

/// An `auto --json` pass's (or a rolling `upgrade`'s) results: each container, how it ended and
/// what was said.
pub fn pass_results(out: &Outcome) -> Vec<(String, String, String)> {
    out.json()["pass"]["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let text = |field: &str| r[field].as_str().unwrap().to_string();
            (text("container"), text("result"), text("message"))
        })
        .collect()
}

/// The first step of kind `kind` in a `--json` report.
pub fn step<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == kind)
        .unwrap_or_else(|| panic!("no {kind} step in {report}"))
}

/// The detail a step of kind `kind` reported.
pub fn step_detail<'a>(report: &'a Value, kind: &str) -> &'a str {
    step(report, kind)["detail"].as_str().unwrap_or_default()
}

/// One field (`step`, `description`, `detail`) of every step in a `--json` report, in order;
/// empty where a step has none.
pub fn steps_field(report: &Value, field: &str) -> Vec<String> {
    report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].as_str().unwrap_or_default().to_string())
        .collect()
}

/// A refused or failed-before-downtime run: the same container, never restarted, nothing left over.
pub fn assert_untouched(name: &str, before: &Value) {
    let after = inspect(name).unwrap();
    assert_eq!(after["Id"], before["Id"], "{name} was replaced");
    assert_eq!(
        after["State"]["StartedAt"], before["State"]["StartedAt"],
        "{name} was restarted"
    );
    assert_no_leftovers(name);
}

/// A port on 127.0.0.1 that nothing listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The body of `GET path` on 127.0.0.1:port, or `None` when nothing answers 200.
pub fn http_get(port: u16, path: &str) -> Option<String> {
    let (status, body) = http_answer(port, path)?;
    (status == 200).then_some(body)
}

/// `GET path` on 127.0.0.1:`port`: its status and body, or nothing when nothing answered.
pub fn http_answer(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, body.to_string()))
}

/// Polls `http_get` until it answers, for a container that was just started: within a minute,
/// since the suite runs several private engines beside it (seen: an emulator that needed more
/// than 20 s to answer under that load).
pub fn http_get_eventually(port: u16, path: &str) -> String {
    let start = Instant::now();
    loop {
        if let Some(body) = http_get(port, path) {
            return body;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "nothing answered on port {port}{path}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn temp_dir(scene: &Scene, what: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(scene.name(what));
    std::fs::create_dir_all(&dir).unwrap();
    // The container may run as another user.
    std::process::Command::new("chmod")
        .arg("777")
        .arg(&dir)
        .status()
        .unwrap();
    dir
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// SIGKILL, as a crash or an OOM kill would end the process: no cleanup runs.
pub fn kill_hard(child: &mut Child) {
    child.kill().expect("kill cutover");
    child.wait().expect("reap cutover");
}

/// Leftover containers of a run: neither may exist once a run has ended cleanly.
pub fn assert_no_leftovers(name: &str) {
    for suffix in ["-new", "-old"] {
        assert!(
            !exists(&format!("{name}{suffix}")),
            "{name}{suffix} was left behind"
        );
    }
}

/// `docker exec` of psql inside the container `db`, answering `query` unaligned.
pub fn psql_args<'a>(
    db: &'a str,
    user: &'a str,
    database: &'a str,
    query: &'a str,
) -> [&'a str; 11] {
    [
        "exec", db, "psql", "-h", "/tmp", "-U", user, "-d", database, "-Atc", query,
    ]
}

/// One value from a PostgreSQL database, through psql inside its container.
pub fn sql(db: &str, user: &str, database: &str, query: &str) -> String {
    docker(&psql_args(db, user, database, query))
}

/// `sql`, retried until the database answers (a server that was just started).
pub fn sql_eventually(db: &str, user: &str, database: &str, query: &str) -> String {
    let start = Instant::now();
    loop {
        let out = docker_output(&psql_args(db, user, database, query));
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{db} never answered {query}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `docker exec` of pg_dump inside the container `db`: the whole database as plain SQL.
pub fn pg_dump_args<'a>(db: &'a str, user: &'a str, database: &'a str) -> [&'a str; 10] {
    [
        "exec",
        db,
        "pg_dump",
        "-h",
        "/tmp",
        "-U",
        user,
        "-d",
        database,
        "--format=plain",
    ]
}

/// A plain dump without what changes from one dump to the next (comments with times,
/// pg_dump's random `\restrict` keys): equal texts, equal databases.
pub fn comparable(dump: &str) -> String {
    dump.lines()
        .filter(|l| {
            !l.starts_with("--") && !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A whole PostgreSQL database as comparable plain SQL.
pub fn pg_dump_plain(db: &str, user: &str, database: &str) -> String {
    comparable(&docker(&pg_dump_args(db, user, database)))
}

/// Every line of every journal parses as JSON: nothing masked their structure.
pub fn assert_journals_parse(scene: &Scene) {
    for line in scene.journal_text().lines() {
        assert!(
            serde_json::from_str::<Value>(line).is_ok(),
            "a journal record does not parse: {line}"
        );
    }
}

/// A Quay installation's shared parts on a network of the scene: its PostgreSQL (with the
/// pg_trgm extension its configuration check wants, config-tool validators.go L662-679) and
/// its config volume (`DB_URI`, `DATABASE_SECRET_KEY`), as Quay keeps them.
pub struct QuaySite {
    pub net: String,
    pub db: String,
    /// The config volume's name.
    pub conf: String,
}

pub const QUAY_DB_PASSWORD: &str = "quay-pw-55";
pub const QUAY_SECRET_KEY: &str = "quay-db-secret-77";

pub fn quay_site(scene: &Scene) -> QuaySite {
    let net = network(scene);
    let db = postgres(scene, &net, "quay", QUAY_DB_PASSWORD, "quay");
    sql_eventually(
        &db,
        "quay",
        "quay",
        "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    );
    let conf = scene.name("conf");
    // Quay's boot refuses a configuration without SETUP_COMPLETE (boot.py L99-103).
    let config = format!("DATABASE_SECRET_KEY: {QUAY_SECRET_KEY}\\nDB_URI: postgresql://quay:{QUAY_DB_PASSWORD}@db:5432/quay\\nSERVER_HOSTNAME: quay.lan\\nSETUP_COMPLETE: true\\n");
    docker(&[
        "run",
        "--rm",
        "-v",
        &format!("{conf}:/conf/stack"),
        "--entrypoint",
        "/bin/sh",
        &image("1"),
        "-c",
        &format!("printf '{config}' > /conf/stack/config.yaml"),
    ]);
    QuaySite { net, db, conf }
}

impl QuaySite {
    /// `-v CONF:/conf/stack`.
    pub fn mount(&self) -> String {
        format!("{}:/conf/stack", self.conf)
    }

    /// A node of `image` (`QuayCode::image`), its port 8080 published on a free loopback port,
    /// with `options` besides.
    pub fn node(&self, scene: &Scene, what: &str, image: &str, options: &[&str]) -> (String, u16) {
        let mount = self.mount();
        let all = [&["-v", mount.as_str()][..], options].concat();
        scene.run_served(what, &self.net, 8080, &all, image)
    }
}

/// The Quay code the Quay tests run against: the emulator's images of the test world
/// (`projectquay/quay:vX`), or, when `CUTOVER_TEST_QUAY_REAL` names a repository prefix (such as
/// `127.0.0.1:5000/quay-real`), images of Quay's own code built from its public source and
/// pushed as `PREFIX/projectquay/quay:vX` (never built by this repository: profiles/README.md,
/// "Quay's real code"). The same tests run on both; only what each can show differs.
pub struct QuayCode {
    real: Option<String>,
}

pub fn quay_code() -> QuayCode {
    QuayCode {
        real: std::env::var("CUTOVER_TEST_QUAY_REAL")
            .ok()
            .filter(|prefix| !prefix.is_empty()),
    }
}

impl QuayCode {
    pub fn is_real(&self) -> bool {
        self.real.is_some()
    }

    /// The image of Quay's `tag`, such as `v3.8.0`.
    pub fn image(&self, tag: &str) -> String {
        match &self.real {
            Some(prefix) => format!("{prefix}/projectquay/quay:{tag}"),
            None => product(&format!("projectquay/quay:{tag}")),
        }
    }

    /// What `alembic_version` holds once `tag`'s code migrated: the emulator writes its version;
    /// Quay writes the head revision of its data/migrations/versions at that tag.
    pub fn schema_of(&self, tag: &str) -> String {
        match (self.is_real(), tag) {
            (true, "v3.8.0") => "7bca88923f2c".into(),
            (true, "v3.9.0") => "8cf90670bf38".into(),
            (true, "v3.10.0") => "2062bbd5ef0e".into(),
            (true, _) => panic!("no head revision known for Quay {tag}"),
            (false, _) => tag.trim_start_matches('v').into(),
        }
    }

    /// `alembic_version` in the database container `db` (of `quay_site`).
    pub fn schema(&self, db: &str) -> String {
        sql(
            db,
            "quay",
            "quay",
            "SELECT version_num FROM alembic_version",
        )
    }

    /// `/health/instance` of a node once it answers 200. Quay's own code first runs its init
    /// scripts, the migration included, then nginx and two gunicorns: seen 60 s on an idle machine.
    pub fn healthy(&self, port: u16) -> String {
        let within = Duration::from_secs(if self.is_real() { 600 } else { 60 });
        let start = Instant::now();
        loop {
            if let Some(body) = http_get(port, "/health/instance") {
                return body;
            }
            assert!(
                start.elapsed() < within,
                "Quay on port {port} never answered healthy"
            );
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// A hop whose migration fails, as (from, to, SQL that makes it fail, run at `from`). The
    /// emulator's v3.11.0 fails by its MIGRATION_FAILS knob. Quay's own 3.8 -> 3.9 runs six
    /// revisions, then fails at 8cf90670bf38, which inserts the logentrykind
    /// `permanently_delete_tag` (data/migrations/versions/8cf90670bf38_add_permanently_delete_tag_log_entry_.py),
    /// when that row exists already (the name is unique): a migration that changed the schema
    /// before it failed, as Quay's migrations do not run in one transaction (env.py,
    /// transactional_ddl=False).
    pub fn failing_hop(&self) -> (&'static str, &'static str, Option<&'static str>) {
        match self.is_real() {
            true => (
                "v3.8.0",
                "v3.9.0",
                Some("INSERT INTO logentrykind (name) VALUES ('permanently_delete_tag')"),
            ),
            false => ("v3.10.0", "v3.11.0", None),
        }
    }
}

impl Scene {
    /// `cutover upgrade NAME --to TAG --yes EXTRA...` is refused naming every one of `reasons`,
    /// and the container is the same one, never restarted, nothing left over.
    pub fn upgrade_refused(
        &self,
        name: &str,
        to: &str,
        extra: &[&str],
        reasons: &[&str],
    ) -> Outcome {
        let before = inspect(name).unwrap_or_else(|| panic!("no container {name}"));
        let out = self.upgrade(name, to, extra);
        out.refused(reasons);
        assert_untouched(name, &before);
        out
    }
}

/// Prometheus' own linter takes the metrics text.
pub fn promtool_accepts(text: &str) {
    let mut lint = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    assert!(
        lint.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
}

/// Reads, until stopped, every command line on the host (`/proc/PID/cmdline`, what `ps` shows
/// every local user: containers' processes and execs included) and every container's command
/// (`docker ps -a --no-trunc`, one-shots included while they exist), looking for a secret.
/// The docker CLI's own command lines are the tests' (`docker run -e ...`), never cutover's,
/// which speaks the engine's API.
pub struct ArgvWatch {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<(Vec<String>, Vec<String>)>,
}

impl ArgvWatch {
    pub fn start(secret: &str) -> ArgvWatch {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (flag, secret) = (stop.clone(), secret.to_string());
        let thread = std::thread::spawn(move || {
            let (mut seen, mut leaks) = (std::collections::BTreeSet::new(), Vec::new());
            while !flag.load(Ordering::SeqCst) {
                let mut lines: Vec<String> = std::fs::read_dir("/proc")
                    .into_iter()
                    .flatten()
                    .flatten()
                    .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
                    .map(|raw| String::from_utf8_lossy(&raw).replace('\0', " "))
                    .filter(|line| !line.starts_with(DOCKER_CLI) && !line.starts_with("docker "))
                    .collect();
                let containers =
                    docker_output(&["ps", "-a", "--no-trunc", "--format", "{{.Command}}"]);
                lines.extend(
                    String::from_utf8_lossy(&containers.stdout)
                        .lines()
                        .map(str::to_string),
                );
                for line in lines {
                    if line.contains(&secret) {
                        leaks.push(line.clone());
                    }
                    seen.insert(line);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (seen.into_iter().collect(), leaks)
        });
        ArgvWatch { stop, thread }
    }

    /// Every command line seen, and those that held the secret.
    pub fn stop(self) -> (Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread.join().expect("the watch")
    }
}
