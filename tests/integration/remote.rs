//! Engines reached as the docker CLI reaches them: a dockerd listening on TCP with TLS
//! (certificates the test makes), named by a context the real `docker context create` wrote or
//! by `DOCKER_TLS_VERIFY`; and one behind Debian's sshd on a loopback port, reached through
//! `ssh ... docker system dial-stdio`, or, Podman's, through its socket forwarded by ssh.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::engines::PrivateEngine;
use crate::helpers::*;

/// Runs a command to its end; fails the test with its stderr when it fails.
fn succeed(mut command: Command) {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn sh(program: &str, args: &[&str], cwd: &Path) {
    let mut command = Command::new(program);
    command.args(args).current_dir(cwd);
    succeed(command);
}

/// The real docker CLI on a context store of the test's own.
fn docker_cli(config: &Path, args: &[&str]) {
    let mut command = Command::new("/usr/bin/docker");
    command.args(args).env("DOCKER_CONFIG", config);
    succeed(command);
}

/// A certificate authority, the engine's certificate for 127.0.0.1 and a client's, as
/// `ca.pem`, `server-*.pem`, and `cert.pem`/`key.pem` (the names the docker CLI looks for).
fn certificates(dir: &Path) {
    let openssl = |args: &[&str]| sh("openssl", args, dir);
    // A new P-256 key without a passphrase, written to the file that follows.
    let new_key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
    ];
    openssl(
        &[
            &["req", "-x509"][..],
            &new_key,
            &[
                "ca-key.pem",
                "-out",
                "ca.pem",
                "-days",
                "2",
                "-subj",
                "/CN=cutover test CA",
            ],
        ]
        .concat(),
    );
    for (who, ext) in [
        (
            "server",
            "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        ),
        ("client", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(format!("{who}.ext")), ext).unwrap();
        let key = format!("{who}-key.pem");
        openssl(
            &[
                &["req"][..],
                &new_key,
                &[
                    &key,
                    "-out",
                    &format!("{who}.csr"),
                    "-subj",
                    &format!("/CN={who}"),
                ],
            ]
            .concat(),
        );
        openssl(&[
            "x509",
            "-req",
            "-in",
            &format!("{who}.csr"),
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{who}.ext"),
            "-out",
            &format!("{who}-cert.pem"),
        ]);
    }
    std::fs::copy(dir.join("client-cert.pem"), dir.join("cert.pem")).unwrap();
    std::fs::copy(dir.join("client-key.pem"), dir.join("key.pem")).unwrap();
}

/// `cutover ARGS` with exactly this engine environment: the world's `DOCKER_HOST` is unset
/// unless `env` sets it.
fn cutover(scene: &Scene, args: &[&str], env: &[(&str, &str)]) -> Outcome {
    let unset = [
        ("DOCKER_HOST", ""),
        ("DOCKER_CONTEXT", ""),
        ("DOCKER_TLS_VERIFY", ""),
        ("DOCKER_CERT_PATH", ""),
    ];
    let merged: Vec<(&str, &str)> = unset
        .iter()
        .filter(|(k, _)| !env.iter().any(|(e, _)| e == k))
        .chain(env)
        .copied()
        .collect();
    scene.cutover_with_env(args, &merged)
}

#[test]
fn an_engine_over_tcp_with_tls_is_reached_by_its_context_and_by_the_environment() {
    let scene = Scene::new("tls");
    let dir = temp_dir(&scene, "tls");
    certificates(&dir);
    let path = |f: &str| dir.join(f).display().to_string();
    let port = free_port();
    let address = format!("tcp://127.0.0.1:{port}");
    let engine = PrivateEngine::start(
        "tls",
        &[
            "-H",
            &address,
            "--tlsverify",
            "--tlscacert",
            &path("ca.pem"),
            "--tlscert",
            &path("server-cert.pem"),
            "--tlskey",
            &path("server-key.pem"),
        ],
    );
    let name = scene.name("app");
    engine.run_app(&name, &image("1"));

    // The context as the docker CLI writes it, in a store of the test's own.
    let config = dir.join("docker-config");
    let docker_config = config.display().to_string();
    let keys = format!(
        "host={address},ca={},cert={},key={}",
        path("ca.pem"),
        path("cert.pem"),
        path("key.pem")
    );
    docker_cli(&config, &["context", "create", "far", "--docker", &keys]);
    let with_store = [("DOCKER_CONFIG", docker_config.as_str())];

    // --context beats the world's DOCKER_HOST.
    let world = std::env::var("DOCKER_HOST").unwrap();
    let out = cutover(
        &scene,
        &[
            "--context",
            "far",
            "upgrade",
            &name,
            "--to",
            "2",
            "--yes",
            "--json",
            "--settle",
            "1s",
        ],
        &[with_store[0], ("DOCKER_HOST", world.as_str())],
    );
    out.expect(0);
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}").unwrap(),
        image("2")
    );

    // The context `docker context use` chose, after a flag given after the command.
    docker_cli(&config, &["context", "use", "far"]);
    let out = cutover(
        &scene,
        &["upgrade", &name, "--to", "3", "--yes", "--settle", "1s"],
        &with_store,
    );
    out.expect(0);
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}").unwrap(),
        image("3")
    );

    // DOCKER_TLS_VERIFY with DOCKER_CERT_PATH, as `docker` takes them.
    let env = [
        ("DOCKER_HOST", address.as_str()),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", dir.to_str().unwrap()),
    ];
    let out = cutover(&scene, &["rollback", &name, "--yes", "--dry-run"], &env);
    assert!(
        out.stderr.contains(&format!("{name}-old")) || out.stdout.contains(&format!("{name}-old")),
        "the engine answered about its containers: {}{}",
        out.stdout,
        out.stderr
    );
    // Without TLS the engine refuses, and cutover says where and what to check, changing
    // nothing.
    let out = cutover(
        &scene,
        &["-H", &address, "upgrade", &name, "--to", "2", "--yes"],
        &[],
    );
    out.expect(2);
    assert!(
        out.stderr
            .contains(&format!("cannot reach the Docker engine at {address}"))
            && out
                .stderr
                .contains("Client sent an HTTP request to an HTTPS server")
            && out.stderr.contains("For TLS, set DOCKER_TLS_VERIFY=1"),
        "{}",
        out.stderr
    );
    let out = cutover(
        &scene,
        &["--context", "nowhere", "check", "--all"],
        &with_store,
    );
    out.expect(2);
    assert!(
        out.stderr
            .contains("there is no docker context \"nowhere\""),
        "{}",
        out.stderr
    );
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}").unwrap(),
        image("3")
    );
}

/// Debian's sshd on a loopback port, whose one key may only run commands with `DOCKER_HOST` set
/// to an engine of the test; and the ssh configuration cutover's `ssh` uses (through a wrapper
/// first on its PATH, since ssh reads no configuration from the environment).
struct Sshd {
    dir: PathBuf,
    port: u16,
    daemon: Child,
}

impl Sshd {
    fn start(dir: &Path, engine_host: &str) -> Sshd {
        let keygen = |file: &str| {
            sh(
                "ssh-keygen",
                &["-q", "-t", "ed25519", "-N", "", "-f", file],
                dir,
            )
        };
        keygen("host_key");
        keygen("id");
        keygen("stranger");
        let key = std::fs::read_to_string(dir.join("id.pub")).unwrap();
        std::fs::write(
            dir.join("authorized_keys"),
            format!("environment=\"DOCKER_HOST={engine_host}\" {key}"),
        )
        .unwrap();
        let port = free_port();
        let at = |f: &str| dir.join(f).display().to_string();
        std::fs::write(
            dir.join("sshd_config"),
            format!(
                "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nAuthorizedKeysFile {}\nPidFile {}\n\
                 PermitRootLogin prohibit-password\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n\
                 PermitUserEnvironment yes\nStrictModes no\nUsePAM no\nLogLevel ERROR\n",
                at("host_key"),
                at("authorized_keys"),
                at("sshd.pid")
            ),
        )
        .unwrap();
        std::fs::create_dir_all("/run/sshd").unwrap();
        let daemon = Command::new("/usr/sbin/sshd")
            .args(["-D", "-e", "-f", &at("sshd_config")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("sshd.log")).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "sshd did not come up"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        let host_key = std::fs::read_to_string(dir.join("host_key.pub")).unwrap();
        std::fs::write(
            dir.join("known_hosts"),
            format!("[127.0.0.1]:{port} {host_key}"),
        )
        .unwrap();
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        Sshd {
            dir: dir.to_path_buf(),
            port,
            daemon,
        }
        .with_key("id")
    }

    /// cutover's `ssh` logs in with `key` from now on.
    fn with_key(self, key: &str) -> Sshd {
        let at = |f: &str| self.dir.join(f).display().to_string();
        std::fs::write(
            self.dir.join("ssh_config"),
            format!(
                "Host *\n  IdentityFile {}\n  IdentitiesOnly yes\n  UserKnownHostsFile {}\n  StrictHostKeyChecking yes\n  BatchMode yes\n",
                at(key),
                at("known_hosts")
            ),
        )
        .unwrap();
        let wrapper = self.dir.join("bin/ssh");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec /usr/bin/ssh -F {} \"$@\"\n",
                at("ssh_config")
            ),
        )
        .unwrap();
        sh("chmod", &["+x", wrapper.to_str().unwrap()], &self.dir);
        self
    }

    /// A PATH whose `ssh` is the wrapper.
    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.join("bin").display(),
            std::env::var("PATH").unwrap()
        )
    }
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.daemon.kill();
        let _ = self.daemon.wait();
    }
}

#[test]
fn an_engine_behind_ssh_is_reached_through_docker_system_dial_stdio() {
    let scene = Scene::new("ssh");
    let dir = temp_dir(&scene, "ssh");
    let engine = PrivateEngine::start("ssh", &[]);
    let sshd = Sshd::start(&dir, &engine.host());
    let name = scene.name("app");
    let id = engine.run_app(&name, &image("1"));
    let address = format!("ssh://root@127.0.0.1:{}", sshd.port);
    let path = sshd.path();

    let out = cutover(
        &scene,
        &[
            "upgrade", &name, "--to", "2", "--yes", "--json", "--settle", "1s", "-H", &address,
        ],
        &[("PATH", path.as_str())],
    );
    out.expect(0);
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}").unwrap(),
        image("2")
    );
    assert_eq!(engine.names(), [name.as_str()], "nothing left behind");
    // The run is journaled as that engine's: the local engine's history and recovery never
    // see it.
    let world = std::env::var("DOCKER_HOST").unwrap();
    let runs_of = |env: &[(&str, &str)], args: &[&str]| -> Vec<String> {
        let out = cutover(&scene, &[&["history", "--json"][..], args].concat(), env);
        out.expect(0);
        out.json()
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["container"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        runs_of(&[("PATH", path.as_str())], &["-H", &address]),
        [name.as_str()]
    );
    assert!(runs_of(&[("DOCKER_HOST", world.as_str())], &[]).is_empty());

    // A context the docker CLI made for it, chosen by DOCKER_CONTEXT.
    let config = dir.join("docker-config");
    docker_cli(
        &config,
        &[
            "context",
            "create",
            "over-ssh",
            "--docker",
            &format!("host={address}"),
        ],
    );
    let out = cutover(
        &scene,
        &["rollback", &name, "--yes", "--dry-run"],
        &[
            ("PATH", path.as_str()),
            ("DOCKER_CONFIG", config.to_str().unwrap()),
            ("DOCKER_CONTEXT", "over-ssh"),
        ],
    );
    assert!(
        format!("{}{}", out.stdout, out.stderr).contains(&format!("{name}-old")),
        "the engine answered about its containers: {}{}",
        out.stdout,
        out.stderr
    );

    // A key the host does not accept: named, what to check said, nothing changed.
    let sshd = sshd.with_key("stranger");
    let out = cutover(
        &scene,
        &["upgrade", &name, "--to", "3", "--yes", "-H", &address],
        &[("PATH", sshd.path().as_str())],
    );
    out.expect(2);
    assert!(
        out.stderr
            .contains(&format!("cannot reach the Docker engine at {address}"))
            && out.stderr.contains("Permission denied")
            && out
                .stderr
                .contains("Does `ssh` reach that host without a prompt"),
        "{}",
        out.stderr
    );
    assert_ne!(
        engine.inspect(&name, "{{.Id}}").unwrap(),
        id,
        "the upgrade to 2 replaced it"
    );
    assert_eq!(
        engine.inspect(&name, "{{.Config.Image}}").unwrap(),
        image("2")
    );
}

#[test]
fn check_reads_every_host_of_a_fleet_at_once_and_asks_each_repository_once() {
    let scene = Scene::new("fleet");
    let dir = temp_dir(&scene, "fleet");
    let far = PrivateEngine::start("fleet", &[]);
    let sshd = Sshd::start(&dir, &far.host());
    // The same name on two hosts: two containers.
    let name = scene.run("app", &[], "1");
    far.run_app(&name, &image("1"));
    let world = std::env::var("DOCKER_HOST").unwrap();
    let config = dir.join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "hosts:\n  here: {{host: '{world}'}}\n  far: {{host: 'ssh://root@127.0.0.1:{}', labels: {{site: b}}}}\n  gone: {{host: 'unix:///nonexistent/docker.sock'}}\ncontainers:\n  here/{name}: {{policy: minor}}\n  far/{name}: {{}}\n",
            sshd.port
        ),
    )
    .unwrap();
    let config = config.to_str().unwrap();
    let path = sshd.path();
    let env = [("PATH", path.as_str())];
    let names = |out: &Outcome| -> Vec<String> {
        let mut names: Vec<String> = out.json()["containers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["container"].as_str().unwrap().to_string())
            .collect();
        names.sort();
        names
    };

    let out = cutover(&scene, &["check", "--config", config, "--json"], &env);
    out.expect(2);
    assert_eq!(names(&out), [format!("far/{name}"), format!("here/{name}")]);
    let report = out.json();
    let hosts = &report["hosts"];
    assert_eq!(hosts[0]["host"], "far", "{report}");
    assert_eq!(hosts[0]["labels"]["site"], "b", "{report}");
    assert!(
        hosts[0]["error"].is_null() && hosts[2]["error"].is_null(),
        "{report}"
    );
    assert_eq!(hosts[1]["host"], "gone", "{report}");
    assert!(
        hosts[1]["error"]
            .as_str()
            .unwrap()
            .contains("cannot reach the Docker engine at unix:///nonexistent/docker.sock"),
        "{report}"
    );
    // Both are of one repository: the registry is asked as often as for one container alone.
    let alone = cutover(
        &scene,
        &["check", &name, "--json"],
        &[("DOCKER_HOST", world.as_str())],
    );
    alone.expect(0);
    assert!(alone.json()["registry_requests"].as_u64().unwrap() >= 1);
    assert_eq!(
        report["registry_requests"],
        alone.json()["registry_requests"]
    );

    // One host's container by HOST/NAME: the other hosts are not read.
    let out = cutover(
        &scene,
        &[
            "check",
            &format!("far/{name}"),
            "--config",
            config,
            "--json",
        ],
        &env,
    );
    out.expect(0);
    assert_eq!(names(&out), [format!("far/{name}")]);
    let out = cutover(&scene, &["check", &name, "--config", config], &env);
    out.expect(2);
    assert!(
        out.stderr.contains(&format!(
            "{name}: in a fleet, name a container HOST/NAME (hosts: far, gone, here)"
        )),
        "{}",
        out.stderr
    );
}

#[test]
fn auto_rolls_out_over_a_fleet_canary_first_and_stops_when_the_budget_is_spent() {
    let scene = Scene::new("rollout");
    let dir = temp_dir(&scene, "rollout");
    let name = scene.name("app");
    let hosts = ["a", "b", "c", "d"];
    let engines: Vec<PrivateEngine> = hosts
        .iter()
        .map(|h| PrivateEngine::start(&format!("rollout-{h}"), &[]))
        .collect();
    // On host a, the app's own health check accepts version 1 only: any upgrade there fails
    // its health and rolls back.
    engines[0].run(&[
        "run",
        "-d",
        "--name",
        &name,
        "--init",
        "--health-cmd",
        "test \"$APP_VERSION\" = 1",
        "--health-interval",
        "1s",
        &image("1"),
    ]);
    for engine in &engines[1..] {
        engine.run_app(&name, &image("1"));
    }
    let mut text = String::from("defaults: {policy: major}\nsettle: 1s\nhosts:\n");
    for (h, engine) in hosts.iter().zip(&engines) {
        text.push_str(&format!("  {h}: {{host: '{}'}}\n", engine.host()));
    }
    text.push_str("containers:\n");
    for h in hosts {
        text.push_str(&format!("  {h}/{name}: {{}}\n"));
    }
    let config = dir.join("fleet.yaml");
    std::fs::write(&config, text).unwrap();
    let config = config.to_str().unwrap();
    let auto = |args: &[&str]| -> Vec<(String, String, String)> {
        let out = cutover(
            &scene,
            &[&["auto", "--config", config, "--json"][..], args].concat(),
            &[],
        );
        out.expect(1);
        out.json()["pass"]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| {
                (
                    r["container"]
                        .as_str()
                        .unwrap()
                        .split('/')
                        .next()
                        .unwrap()
                        .to_string(),
                    r["result"].as_str().unwrap().to_string(),
                    r["message"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let version = |i: usize| engines[i].inspect(&name, "{{.Config.Image}}").unwrap();
    let target = image("5");

    // The canary fails: no other host is touched.
    let results = auto(&["--canary", "a"]);
    assert_eq!(results[0].0, "a");
    assert_eq!(results[0].1, "rolled_back", "{results:?}");
    for r in &results[1..] {
        assert_eq!(r.1, "not_attempted", "{results:?}");
        assert!(r.2.contains("the canary host a failed"), "{results:?}");
    }
    assert!((0..4).all(|i| version(i) == image("1")));

    // Canary b, then one host at a time with no failure allowed: a fails, c and d wait.
    let results = auto(&["--canary", "b", "--parallel", "1"]);
    let by_host: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    assert_eq!(
        by_host,
        [
            ("b", "upgraded"),
            ("a", "rolled_back"),
            ("c", "not_attempted"),
            ("d", "not_attempted")
        ]
    );
    assert!(
        results[2].2.contains("1 host(s) failed (failure budget 0)"),
        "{results:?}"
    );
    assert_eq!(
        (version(0), version(1), version(2)),
        (image("1"), target.clone(), image("1"))
    );

    // Canary c, then a and d at once, one failure allowed: d upgrades beside a's rollback.
    let results = auto(&["--canary", "c", "--parallel", "2", "--failure-budget", "1"]);
    let mut by_host: Vec<(&str, &str)> = results
        .iter()
        .map(|r| (r.0.as_str(), r.1.as_str()))
        .collect();
    by_host[1..].sort();
    assert_eq!(
        by_host,
        [("c", "upgraded"), ("a", "rolled_back"), ("d", "upgraded")]
    );
    assert_eq!(version(0), image("1"));
    assert!((1..4).all(|i| version(i) == target));
}

/// The demo app v1 as one name on two private engines, the hosts x and y of a fleet's config
/// file that starts with `head`, with both containers opted in by it if `listed`.
struct TwoHosts {
    engines: [PrivateEngine; 2],
    name: String,
    ids: Vec<String>,
    config: String,
}

impl TwoHosts {
    fn start(scene: &Scene, head: &str, listed: bool) -> TwoHosts {
        let name = scene.name("app");
        let engines =
            ["x", "y"].map(|h| PrivateEngine::start(&format!("{}-{h}", scene.prefix), &[]));
        let ids = engines
            .iter()
            .map(|e| e.run_app(&name, &image("1")))
            .collect();
        let mut text = format!(
            "{head}hosts:\n  x: {{host: '{}'}}\n  y: {{host: '{}'}}\n",
            engines[0].host(),
            engines[1].host()
        );
        if listed {
            text.push_str(&format!(
                "containers:\n  x/{name}: {{}}\n  y/{name}: {{}}\n"
            ));
        }
        let config = temp_dir(scene, "fleet").join("fleet.yaml");
        std::fs::write(&config, text).unwrap();
        TwoHosts {
            engines,
            name,
            ids,
            config: config.to_str().unwrap().to_string(),
        }
    }
}

#[test]
fn a_rollout_killed_on_its_canary_is_recovered_from_that_host_s_own_journal() {
    let scene = Scene::new("fleetkill");
    let TwoHosts {
        engines,
        name,
        ids,
        config,
    } = TwoHosts::start(&scene, "defaults: {policy: major}\nsettle: 1s\n", true);
    let config = config.as_str();
    let x_runs = scene.runs_of(&engines[0].host());

    // The controller dies on the canary once its container is stopped.
    let mut run = scene.spawn(
        &["auto", "--config", config, "--canary", "x"],
        &[("CUTOVER_PAUSE_AFTER", "5")],
    );
    let start = Instant::now();
    while !std::fs::read_dir(&x_runs)
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| read(&e.path()).contains("\"index\":4,\"phase\":\"done\""))
    {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the canary never stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kill_hard(&mut run);
    assert_eq!(
        engines[0].inspect(&ids[0], "{{.State.Running}}").as_deref(),
        Some("false")
    );

    // The world's engine has nothing to recover: the run is x's.
    let world = std::env::var("DOCKER_HOST").unwrap();
    let out = cutover(
        &scene,
        &["recover", "--yes", "--json"],
        &[("DOCKER_HOST", world.as_str())],
    );
    out.expect(0);
    assert_eq!(out.json()["recovered"].as_array().unwrap().len(), 0);

    let out = cutover(
        &scene,
        &["recover", "--config", config, "--yes", "--json"],
        &[],
    );
    out.expect(0);
    let recovered = out.json()["recovered"].clone();
    assert_eq!(
        recovered[0]["container"],
        format!("x/{name}"),
        "{recovered}"
    );
    assert_eq!(recovered[0]["outcome"], "rolled_back", "{recovered}");
    assert_eq!(recovered.as_array().unwrap().len(), 1, "{recovered}");
    for (engine, id) in engines.iter().zip(&ids) {
        assert_eq!(
            engine.inspect(&name, "{{.Id}} {{.State.Running}} {{.Config.Image}}"),
            Some(format!("{id} true {}", image("1"))),
            "the same container runs demo:1 on each host"
        );
    }
    let out = cutover(&scene, &["history", "--config", config, "--json"], &[]);
    out.expect(0);
    let runs = out.json();
    assert_eq!(runs[0]["container"], format!("x/{name}"), "{runs}");
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");

    // One container of the fleet by HOST/NAME, on that host alone.
    let y = format!("y/{name}");
    let out = cutover(
        &scene,
        &[
            "upgrade", &y, "--to", "2", "--config", config, "--yes", "--settle", "1s",
        ],
        &[],
    );
    out.expect(0);
    assert_eq!(
        engines[1].inspect(&name, "{{.Config.Image}}"),
        Some(image("2"))
    );
    assert_eq!(
        engines[0].inspect(&name, "{{.Config.Image}}"),
        Some(image("1"))
    );
    let out = cutover(&scene, &["history", &y, "--config", config, "--json"], &[]);
    assert_eq!(out.json()[0]["container"], y);
    for (args, says) in [
        (
            vec!["upgrade", "z/app", "--to", "2", "--config", config, "--yes"],
            "z is no host of the config file's `hosts`",
        ),
        (
            vec![
                "-H",
                "unix:///nowhere.sock",
                "upgrade",
                &y,
                "--to",
                "3",
                "--config",
                config,
                "--yes",
            ],
            "names its host, and -H/--context name another engine",
        ),
    ] {
        let out = cutover(&scene, &args, &[]);
        out.expect(2);
        assert!(out.stderr.contains(says), "{}", out.stderr);
    }
}

#[test]
fn a_resident_auto_rolls_out_over_its_fleet_on_its_schedule() {
    let scene = Scene::new("fleetschedule");
    let dir = temp_dir(&scene, "fleetschedule");
    let name = scene.name("app");
    let engine = PrivateEngine::start("fleetschedule", &[]);
    engine.run_app(&name, &image("1"));
    let config = dir.join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "defaults: {{policy: major}}\nsettle: 1s\nhosts:\n  p: {{host: '{}'}}\ncontainers:\n  p/{name}: {{}}\n",
            engine.host()
        ),
    )
    .unwrap();
    // Every second: the first pass upgrades p's container, later ones find it current.
    let mut resident = scene.spawn(
        &[
            "auto",
            "--config",
            config.to_str().unwrap(),
            "--schedule",
            "* * * * * *",
        ],
        &[],
    );
    let start = Instant::now();
    while engine.inspect(&name, "{{.Config.Image}}") != Some(image("5")) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no pass upgraded it"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(2));
    assert!(resident.try_wait().unwrap().is_none(), "it stays resident");
    kill_hard(&mut resident);
    assert_eq!(
        engine.inspect(&name, "{{.State.Running}}").as_deref(),
        Some("true")
    );
}

/// When each step named `name` of a journal's runs began, and when each run ended, as the
/// journal wrote them (RFC 3339 to the millisecond, so that the texts sort as the times do).
fn began(journal: &str, name: &str) -> (Vec<String>, Vec<String>) {
    let (mut began, mut ended) = (Vec::new(), Vec::new());
    let mut steps = serde_json::Value::Null;
    for line in journal.lines() {
        let record: serde_json::Value = serde_json::from_str(line).unwrap();
        let at = record["at"].as_str().unwrap().to_string();
        match record["event"].as_str() {
            Some("begin") => steps = record["plan"]["stages"].clone(),
            Some("end") => ended.push(at),
            Some("step") if record["phase"] == "started" => {
                let (stage, index) = (&record["stage"], &record["index"]);
                let step = &steps[stage.as_u64().unwrap() as usize]["steps"]
                    [index.as_u64().unwrap() as usize];
                if step["step"] == name {
                    began.push(at);
                }
            }
            _ => {}
        }
    }
    (began, ended)
}

/// Waits until `node` on `engine` answers on its port 8080 at `path`, from inside.
fn answers(engine: &PrivateEngine, node: &str, path: &str) {
    let start = Instant::now();
    let url = format!("http://127.0.0.1:8080{path}");
    loop {
        let asked = engine.docker(&["exec", node, "wget", "-q", "-O", "/dev/null", &url]);
        if asked.status.success() {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{node} never answered {path}: {}\n{}",
            String::from_utf8_lossy(&asked.stderr),
            String::from_utf8_lossy(&engine.docker(&["logs", "--tail", "20", node]).stderr)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// A PostgreSQL `shared-db` on `engine`, its port published on the engine's bridge address (on
/// this machine only, where every private engine's containers reach it), awaited until it
/// answers; the port.
fn database_beside(engine: &PrivateEngine, user: &str, password: &str, name: &str) -> u16 {
    let port = free_port();
    engine.run(&[
        "run",
        "-d",
        "--name",
        "shared-db",
        "-e",
        &format!("POSTGRES_USER={user}"),
        "-e",
        &format!("POSTGRES_PASSWORD={password}"),
        "-e",
        &format!("POSTGRES_DB={name}"),
        "-p",
        &format!("{}:{port}:5432", engine.gateway),
        &format!("{}/postgres:15", registry()),
    ]);
    let start = Instant::now();
    while !psql_on(engine, user, "SELECT 1").status.success() {
        assert!(start.elapsed() < Duration::from_secs(60), "no database");
        std::thread::sleep(Duration::from_millis(300));
    }
    port
}

/// `query` on the database of `user` (named after it) in `shared-db` on `engine`.
fn psql_on(engine: &PrivateEngine, user: &str, query: &str) -> std::process::Output {
    engine.docker(&psql_args("shared-db", user, user, query))
}

/// A Quay cluster over private engines: the database beside the node of the first host, which
/// the nodes of the others reach through the port it publishes on that host's bridge address
/// (on this machine only). Every node is opted in, named `quay`.
struct QuayCluster {
    engines: Vec<PrivateEngine>,
    hosts: Vec<&'static str>,
    config: PathBuf,
    /// How the config file reaches each host.
    addresses: Vec<String>,
    /// The last host's, when it is reached over ssh.
    sshd: Option<Sshd>,
}

fn quay(tag: &str) -> String {
    format!("{}/projectquay/quay:{tag}", registry())
}

impl QuayCluster {
    /// Nodes of v3.8.0 on `hosts`, the options of each node's `docker run` besides; the last
    /// host reached over ssh if `ssh`, its node's port published on loopback, where cutover
    /// judges a remote host's health.
    fn start(scene: &Scene, hosts: &[&'static str], options: &[&[&str]], ssh: bool) -> QuayCluster {
        let dir = temp_dir(scene, "cluster");
        let engines: Vec<PrivateEngine> = hosts
            .iter()
            .map(|h| PrivateEngine::start(&format!("{}-{h}", scene.prefix), &[]))
            .collect();
        let mut addresses: Vec<String> = engines.iter().map(PrivateEngine::host).collect();
        let last = engines.len() - 1;
        let sshd = ssh.then(|| {
            let sshd = Sshd::start(&temp_dir(scene, "sshd"), &engines[last].host());
            addresses[last] = format!("ssh://root@127.0.0.1:{}", sshd.port);
            sshd
        });
        let cluster = QuayCluster {
            engines,
            hosts: hosts.to_vec(),
            config: dir.join("fleet.yaml"),
            addresses,
            sshd,
        };
        let near = &cluster.engines[0];
        let port = database_beside(near, "quay", QUAY_DB_PASSWORD, "quay");
        assert!(cluster
            .psql("CREATE EXTENSION IF NOT EXISTS pg_trgm")
            .status
            .success());
        let stack = |what: &str, server: &str| -> String {
            let conf = dir.join(what);
            std::fs::create_dir_all(&conf).unwrap();
            std::fs::write(
                conf.join("config.yaml"),
                format!("DATABASE_SECRET_KEY: {QUAY_SECRET_KEY}\nDB_URI: postgresql://quay:{QUAY_DB_PASSWORD}@{server}/quay\nSETUP_COMPLETE: true\n"),
            )
            .unwrap();
            format!("{}:/conf/stack", conf.display())
        };
        let (beside, far) = (
            stack("near", "db:5432"),
            stack("far", &format!("{}:{port}", near.gateway)),
        );
        let published = format!("127.0.0.1:{}:8080", free_port());
        for (i, engine) in cluster.engines.iter().enumerate() {
            let (mount, link): (&str, &[&str]) = match i {
                0 => (&beside, &["--link", "shared-db:db"]),
                _ if i == last && ssh => (&far, &["-p", &published]),
                _ => (&far, &[]),
            };
            engine.run(
                &[
                    &["run", "-d", "--name", "quay"][..],
                    link,
                    options.get(i).copied().unwrap_or_default(),
                    &["-l", "cutover.enable=true", "-v", mount, &quay("v3.8.0")],
                ]
                .concat(),
            );
            answers(engine, "quay", "/health/instance");
        }
        cluster
    }

    fn psql(&self, query: &str) -> std::process::Output {
        psql_on(&self.engines[0], "quay", query)
    }

    /// Writes the fleet's config file with these defaults; its path.
    fn fleet(&self, defaults: &str) -> &str {
        let mut text = format!("defaults: {{{defaults}}}\nsettle: 1s\nhosts:\n");
        for (h, address) in self.hosts.iter().zip(&self.addresses) {
            text.push_str(&format!("  {h}: {{host: '{address}'}}\n"));
        }
        std::fs::write(&self.config, text).unwrap();
        self.config.to_str().unwrap()
    }

    /// The versions the emulator's schema went through.
    fn history(&self) -> String {
        let out = self.psql("SELECT history FROM emulator_schema WHERE product = 'quay'");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `cutover` with the `ssh` that reaches the host behind sshd.
    fn cutover(&self, scene: &Scene, args: &[&str]) -> Outcome {
        match &self.sshd {
            Some(sshd) => cutover(scene, args, &[("PATH", sshd.path().as_str())]),
            None => cutover(scene, args, &[]),
        }
    }

    fn images(&self) -> Vec<String> {
        self.engines
            .iter()
            .map(|e| e.inspect("quay", "{{.Config.Image}}").unwrap())
            .collect()
    }
}

/// An `auto --json` pass's results: each container and how it ended.
fn results(out: &Outcome) -> Vec<(String, String)> {
    pass_results(out)
        .into_iter()
        .map(|(container, result, _)| (container, result))
        .collect()
}

#[test]
fn a_quay_cluster_over_three_hosts_one_over_ssh_migrates_once_with_every_node_stopped() {
    let scene = Scene::new("cluster");
    let cluster = QuayCluster::start(&scene, &["a", "b", "c"], &[], true);
    let engines = &cluster.engines;
    let nodes = ["a/quay", "b/quay", "c/quay"];

    // Off v3.11.0, whose migration fails: through v3.9.0 to v3.10.0, the node beside the
    // database first, migrating at each hop; the others straight to v3.10.0, never migrating.
    let config_path = cluster.fleet("pin: '<3.11'");
    let out = cluster.cutover(&scene, &["check", "--config", config_path, "--json"]);
    out.expect(0);
    for status in out.json()["containers"].as_array().unwrap() {
        assert_eq!(status["cluster"], serde_json::json!(nodes), "{status}");
        assert_eq!(status["eligible"], true, "{status}");
    }
    let out = cluster.cutover(&scene, &["auto", "--config", config_path, "--json"]);
    out.expect(10);
    let moved: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.to_string(), "upgraded".to_string()))
        .collect();
    assert_eq!(results(&out), moved, "{}", out.stderr);
    assert_eq!(
        cluster.images(),
        [quay("v3.10.0"), quay("v3.10.0"), quay("v3.10.0")]
    );
    assert_eq!(
        cluster.history(),
        "3.8.0 3.9.0 3.10.0",
        "one migration per hop"
    );
    for engine in engines {
        answers(engine, "quay", "/health/instance");
    }
    let first = scene.journal_text_of(&cluster.addresses[0]);
    // The database server's volume copied in the window, the backup written after.
    assert!(
        first.contains("\"step\":\"migrate\"")
            && first.contains("\"step\":\"snapshot_volume\"")
            && first.contains("\"step\":\"backup_from_snapshot\"")
    );
    for address in &cluster.addresses[1..] {
        let other = scene.journal_text_of(address);
        assert!(other.contains("\"step\":\"gate\""), "{other}");
        assert!(!other.contains("\"step\":\"migrate\"") && !other.contains("\"step\":\"snapshot"));
    }
    // Each other node was stopped before the first one's migration began, and started its new
    // version only once the first one's run had ended, serving.
    let (migrations, first_end) = began(&first, "migrate");
    assert_eq!(migrations.len(), 2, "{first}");
    for address in &cluster.addresses[1..] {
        let other = scene.journal_text_of(address);
        let (gates, _) = began(&other, "gate");
        let (starts, _) = began(&other, "start");
        assert!(gates[0] <= migrations[0], "{gates:?} {migrations:?}");
        assert!(starts[0] >= first_end[0], "{starts:?} {first_end:?}");
    }
    assert!(
        out.stderr.contains(
            "cluster over hosts: a/quay migrates once every other node (b/quay, c/quay) is stopped"
        ),
        "{}",
        out.stderr
    );

    // To v3.11.0, whose migration fails: the first node's database is restored, and every
    // other node, stopped meanwhile, goes back to v3.10.0 on it.
    // By hand this time: several HOST/NAME roll out as auto does.
    cluster.fleet("policy: minor");
    let out = cluster.cutover(
        &scene,
        &[
            &["upgrade"][..],
            &nodes,
            &[
                "--to",
                "v3.11.0",
                "--config",
                config_path,
                "--yes",
                "--json",
            ],
        ]
        .concat(),
    );
    out.expect(1);
    let back: Vec<(String, String)> = nodes
        .iter()
        .map(|n| (n.to_string(), "rolled_back".to_string()))
        .collect();
    assert_eq!(results(&out), back, "{}", out.stderr);
    assert_eq!(
        cluster.images(),
        [quay("v3.10.0"), quay("v3.10.0"), quay("v3.10.0")]
    );
    assert_eq!(cluster.history(), "3.8.0 3.9.0 3.10.0");
    for engine in engines {
        answers(engine, "quay", "/health/instance");
    }
    assert!(!out.stdout.contains(QUAY_DB_PASSWORD));

    // One node alone, by hand, would move the database under the others: refused.
    for args in [
        &["upgrade", "b/quay", "--to", "v3.11.0"][..],
        &["rollback", "a/quay"],
    ] {
        let out = cluster.cutover(
            &scene,
            &[args, &["--config", config_path, "--yes"]].concat(),
        );
        out.refused(&["is a node of a cluster over hosts (a/quay, b/quay, c/quay, all on the database shared-db:5432/quay)", "cutover auto"]);
    }
    assert_eq!(
        cluster.images(),
        [quay("v3.10.0"), quay("v3.10.0"), quay("v3.10.0")]
    );
}

#[test]
fn a_node_whose_new_version_fails_after_the_migration_is_left_stopped_and_the_others_go_on() {
    let scene = Scene::new("clusterfail");
    // b's own HEALTHCHECK accepts v3.8.0 only.
    let picky: &[&str] = &[
        "--health-cmd",
        "test \"$PRODUCT_VERSION\" = 3.8.0",
        "--health-interval",
        "1s",
        "--health-retries",
        "1",
    ];
    let cluster = QuayCluster::start(&scene, &["a", "b", "c"], &[&[], picky], false);
    let config = cluster.fleet("pin: '<3.10'");
    let out = cutover(&scene, &["auto", "--config", config, "--json"], &[]);
    out.expect(3);
    let ended = results(&out);
    assert_eq!(
        ended,
        [
            ("a/quay".to_string(), "upgraded".to_string()),
            ("b/quay".to_string(), "needs_attention".to_string()),
            ("c/quay".to_string(), "upgraded".to_string()),
        ],
        "{}",
        out.stderr
    );
    let message = out.json()["pass"]["results"][1]["message"].to_string();
    assert!(
        message.contains("a/quay may have moved the database on, where b/quay's old version is not made to run: it is left stopped while a/quay serves"),
        "{message}"
    );
    assert_eq!(cluster.history(), "3.8.0 3.9.0");
    // b's old version never ran on the migrated database; a and c serve the new one.
    let b = &cluster.engines[1];
    assert_eq!(
        b.inspect("quay", "{{.State.Running}}").as_deref(),
        Some("false")
    );
    assert_eq!(b.inspect("quay", "{{.Config.Image}}"), Some(quay("v3.8.0")));
    for i in [0, 2] {
        assert_eq!(cluster.images()[i], quay("v3.9.0"));
        answers(&cluster.engines[i], "quay", "/health/instance");
    }
}

#[test]
fn a_cluster_run_killed_in_its_migration_is_recovered_first_node_first() {
    let scene = Scene::new("clusterkill");
    // The first node, beside the database, is on host c: the fleet's last host, which `recover`
    // reaches after the others' nodes, which wait for it.
    let slow: &[&str] = &["-e", "MIGRATION_DELAY_SECS=60"];
    let cluster = QuayCluster::start(&scene, &["c", "a", "b"], &[slow], false);
    let config = cluster.fleet("pin: '<3.10'");
    let first = &cluster.engines[0];
    let mut run = scene.spawn(&["auto", "--config", config], &[]);
    let start = Instant::now();
    while began(&scene.journal_text_of(&first.host()), "migrate")
        .0
        .is_empty()
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the migration never began"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    kill_hard(&mut run);
    for engine in &cluster.engines {
        assert_eq!(
            engine.inspect("quay", "{{.State.Running}}").as_deref(),
            Some("false"),
            "every node is stopped before the migration"
        );
    }

    // Alone, a node of another host waits for the first one, stopped: its old version may not
    // run on a database the first may have moved on.
    let out = cutover(
        &scene,
        &["recover", "a/quay", "--config", config, "--yes", "--json"],
        &[],
    );
    out.expect(3);
    let waits = &out.json()["recovered"][0];
    assert_eq!(waits["waits_for"], "c/quay", "{waits}");
    assert_eq!(
        cluster.engines[1]
            .inspect("quay", "{{.State.Running}}")
            .as_deref(),
        Some("false")
    );

    // The whole fleet: c first (its database restored), then a and b back on it.
    let out = cutover(
        &scene,
        &["recover", "--config", config, "--yes", "--json"],
        &[],
    );
    out.expect(0);
    let mut recovered: Vec<(String, String)> = out.json()["recovered"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["container"].as_str().unwrap().to_string(),
                r["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    recovered.sort();
    assert_eq!(
        recovered,
        [
            ("a/quay".to_string(), "rolled_back".to_string()),
            ("b/quay".to_string(), "rolled_back".to_string()),
            ("c/quay".to_string(), "rolled_back".to_string()),
        ],
        "{}",
        out.stdout
    );
    assert_eq!(cluster.history(), "3.8.0");
    assert_eq!(
        cluster.images(),
        [quay("v3.8.0"), quay("v3.8.0"), quay("v3.8.0")]
    );
    for engine in &cluster.engines {
        answers(engine, "quay", "/health/instance");
    }
}

#[test]
fn upgrade_of_several_containers_over_a_fleet_rolls_out_canary_first() {
    let scene = Scene::new("several");
    let TwoHosts {
        engines,
        name,
        ids,
        config,
    } = TwoHosts::start(&scene, "settle: 1s\n", false);
    let config = config.as_str();
    let (x, y) = (format!("x/{name}"), format!("y/{name}"));
    let version = |i: usize| engines[i].inspect(&name, "{{.Config.Image}}").unwrap();

    // Nothing changes on a dry run, nor for a name the fleet does not have.
    let out = cutover(
        &scene,
        &[
            "upgrade",
            &x,
            &y,
            "--to",
            "2",
            "--config",
            config,
            "--dry-run",
            "--json",
        ],
        &[],
    );
    out.expect(0);
    let targets: Vec<String> = out.json()["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["target"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(targets, [image("2"), image("2")]);
    let out = cutover(
        &scene,
        &[
            "upgrade",
            &x,
            "y/nothing",
            "--to",
            "2",
            "--config",
            config,
            "--yes",
        ],
        &[],
    );
    out.refused(&["there is no running container named y/nothing"]);
    let out = cutover(&scene, &["upgrade", &x, &name, "--to", "2", "--yes"], &[]);
    out.refused(&["name each HOST/NAME of its `hosts`"]);
    assert_eq!((version(0), version(1)), (image("1"), image("1")));

    let out = cutover(
        &scene,
        &[
            "upgrade", &x, &y, "--to", "2", "--config", config, "--canary", "y", "--yes", "--json",
        ],
        &[],
    );
    out.expect(0);
    assert_eq!(out.json()["command"], "upgrade");
    let upgraded = |name: &str| (name.to_string(), "upgraded".to_string());
    assert_eq!(results(&out), [upgraded(&y), upgraded(&x)]);
    assert_eq!((version(0), version(1)), (image("2"), image("2")));
    for (engine, id) in engines.iter().zip(&ids) {
        assert_ne!(engine.inspect(&name, "{{.Id}}").as_ref(), Some(id));
    }
}

#[test]
fn a_host_that_goes_away_mid_rollout_is_told_and_left_as_it_was() {
    let scene = Scene::new("hostgone");
    // x, the canary, takes its time settling; y goes away meanwhile, before its turn.
    let TwoHosts {
        mut engines,
        name,
        config,
        ..
    } = TwoHosts::start(&scene, "defaults: {policy: major}\nsettle: 8s\n", true);
    let run = scene.spawn(
        &[
            "auto",
            "--config",
            &config,
            "--canary",
            "x",
            "--failure-budget",
            "1",
            "--json",
        ],
        &[],
    );
    let start = Instant::now();
    while began(&scene.journal_text_of(&engines[0].host()), "await_healthy")
        .0
        .is_empty()
    {
        assert!(start.elapsed() < Duration::from_secs(60), "x never started");
        std::thread::sleep(Duration::from_millis(100));
    }
    engines[1].down();
    let out = Outcome::from(run.wait_with_output().unwrap());
    out.expect(1);
    let results = results(&out);
    assert_eq!(
        results,
        [
            (format!("x/{name}"), "upgraded".to_string()),
            (format!("y/{name}"), "refused".to_string()),
        ],
        "{}",
        out.stderr
    );
    let message = out.json()["pass"]["results"][1]["message"].to_string();
    assert!(
        message.contains(&format!(
            "the Docker engine at {} stopped answering",
            engines[1].host()
        )),
        "{message}"
    );
    // Back, y has its container as it was, under its name, and nothing of a run.
    engines[1].up_again();
    assert_eq!(
        engines[1].inspect(&name, "{{.Config.Image}}"),
        Some(image("1"))
    );
    assert_eq!(
        engines[1]
            .names()
            .into_iter()
            .filter(|n| n.starts_with(&name))
            .collect::<Vec<_>>(),
        std::slice::from_ref(&name)
    );
}

#[test]
fn anchore_services_spread_over_two_hosts_move_as_one_cluster() {
    let scene = Scene::new("anchorespread");
    let engines = ["a", "b"].map(|h| PrivateEngine::start(&format!("{}-{h}", scene.prefix), &[]));
    // The quickstart's database `postgres` of user `postgres`, beside the catalog on host a;
    // the API on host b reaches it through the port published on a's bridge address.
    let port = database_beside(&engines[0], "postgres", "anchore-pw-3", "postgres");
    let image = |tag: &str| format!("{}/anchore/anchore-engine:{tag}", registry());
    let run = |engine: &PrivateEngine, service: &str, place: &[&str]| {
        engine.run(
            &[
                &["run", "-d", "--name", service, "-l", "cutover.enable=true"][..],
                place,
                &[
                    "-e",
                    "ANCHORE_DB_PASSWORD=anchore-pw-3",
                    "-e",
                    "ANCHORE_ADMIN_PASSWORD=foobar",
                    &image("v0.7.0"),
                    "anchore-manager",
                    "service",
                    "start",
                    service,
                ],
            ]
            .concat(),
        );
    };
    run(
        &engines[0],
        "catalog",
        &["--link", "shared-db:db", "-e", "ANCHORE_DB_HOST=db"],
    );
    let (host, port) = (
        format!("ANCHORE_DB_HOST={}", engines[0].gateway),
        format!("ANCHORE_DB_PORT={port}"),
    );
    run(&engines[1], "apiext", &["-e", &host, "-e", &port]);
    let start = Instant::now();
    while !engines
        .iter()
        .zip(["catalog", "apiext"])
        .all(|(e, s)| e.inspect(s, "{{.State.Health.Status}}").as_deref() == Some("healthy"))
    {
        assert!(
            start.elapsed() < Duration::from_secs(90),
            "the Anchore services never became healthy"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    let schema = || {
        let out = psql_on(
            &engines[0],
            "postgres",
            "SELECT history FROM emulator_schema WHERE product = 'anchore'",
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let before = schema();
    let config = temp_dir(&scene, "fleet").join("fleet.yaml");
    std::fs::write(
        &config,
        format!(
            "defaults: {{pin: '<0.7.2'}}\nsettle: 1s\nhosts:\n  a: {{host: '{}'}}\n  b: {{host: '{}'}}\n",
            engines[0].host(),
            engines[1].host()
        ),
    )
    .unwrap();
    let out = cutover(
        &scene,
        &["auto", "--config", config.to_str().unwrap(), "--json"],
        &[],
    );
    out.expect(10);
    assert_eq!(
        results(&out),
        [
            ("a/catalog".to_string(), "upgraded".to_string()),
            ("b/apiext".to_string(), "upgraded".to_string()),
        ],
        "{}",
        out.stderr
    );
    for (engine, service) in engines.iter().zip(["catalog", "apiext"]) {
        assert_eq!(
            engine.inspect(service, "{{.Config.Image}}"),
            Some(image("v0.7.1"))
        );
    }
    assert_eq!(
        schema(),
        format!("{before} 0.7.1"),
        "one migration, by the catalog's host"
    );
    assert!(!out.stdout.contains("anchore-pw-3") && !out.stderr.contains("anchore-pw-3"));
}

/// Podman's users name a service on another host as `podman system connection` does, its
/// socket's path after the host (`CONTAINER_HOST=ssh://USER@HOST:PORT/run/podman/podman.sock`):
/// Podman has no `dial-stdio`, so ssh forwards that socket to one of the run's own. The world's
/// Podman, behind sshd on loopback, is upgraded so, though its forwarding is killed mid-run
/// (started again, the run goes on); none outlives the run; a path where nothing listens is
/// named with what ssh said, nothing changed.
#[test]
fn podman_named_by_container_host_over_ssh_is_reached_through_its_forwarded_socket() {
    let scene = Scene::on_podman("podssh");
    let dir = temp_dir(&scene, "ssh");
    let podman = std::env::var("CUTOVER_TEST_PODMAN").unwrap();
    let socket = podman.strip_prefix("unix://").unwrap();
    let sshd = Sshd::start(&dir, &podman);
    let (name, port) = scene.run_published("app", "1");
    let path = sshd.path();
    let address = format!("ssh://root@127.0.0.1:{}{socket}", sshd.port);
    let forwarding = || {
        Command::new("pgrep")
            .args(["-f", "--", &format!("StreamLocalBindUnlink.*{socket}")])
            .output()
            .unwrap()
    };

    let run = scene.spawn(
        &[
            "upgrade",
            &name,
            "--to",
            "2",
            "--yes",
            "--json",
            "--settle",
            "1s",
            "--engine-wait",
            "30s",
        ],
        &[
            ("DOCKER_HOST", ""),
            ("PATH", path.as_str()),
            ("CONTAINER_HOST", address.as_str()),
            ("CUTOVER_PAUSE_AFTER", "1"),
            ("CUTOVER_PAUSE_FOR", "3s"),
        ],
    );
    scene.wait_for_journal_of(
        &address,
        "\"index\":0,\"phase\":\"done\"",
        Duration::from_secs(60),
    );
    let killed = Command::new("pkill")
        .args(["-f", "--", &format!("StreamLocalBindUnlink.*{socket}")])
        .status()
        .unwrap();
    assert!(
        killed.success(),
        "the run's forwarding was found and killed"
    );
    let out = Outcome::from(run.wait_with_output().unwrap());
    out.expect(0);
    assert_eq!(
        inspect(&name).unwrap()["Config"]["Image"],
        image("2").as_str()
    );
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert!(
        out.stdout.contains("Podman Engine"),
        "the plan says it ran on Podman: {}",
        out.stdout
    );
    assert_eq!(
        forwarding().status.code(),
        Some(1),
        "no forwarding outlives the run: {:?}",
        forwarding()
    );

    let nowhere = format!("ssh://root@127.0.0.1:{}/run/nowhere/podman.sock", sshd.port);
    let out = cutover(
        &scene,
        &["upgrade", &name, "--to", "3", "--yes"],
        &[
            ("PATH", path.as_str()),
            ("CONTAINER_HOST", nowhere.as_str()),
        ],
    );
    out.expect(2);
    assert!(
        out.stderr
            .contains(&format!("cannot reach the Docker engine at {nowhere}"))
            && out.stderr.contains("ssh said")
            && out.stderr.contains("AllowStreamLocalForwarding"),
        "{}",
        out.stderr
    );
    assert_eq!(
        inspect(&name).unwrap()["Config"]["Image"],
        image("2").as_str()
    );
}
