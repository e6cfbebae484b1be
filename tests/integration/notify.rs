//! Notifications, against real receivers on loopback: the services' requests recorded by
//! `fixtures/notify/receiver.py` (plain HTTP, and HTTPS through it as a proxy, under a test
//! authority given by SSL_CERT_FILE), and mail by Debian's aiosmtpd. Every pass looks at every
//! opted-in container of the engine, so these tests take turns with `auto`'s.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::*;

/// A process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        kill_hard(&mut self.0);
    }
}

/// The request recorder: its port, and where it writes.
struct Receiver {
    port: u16,
    dir: PathBuf,
    _process: Running,
}

impl Receiver {
    fn start(scene: &Scene) -> Receiver {
        let dir = temp_dir(scene, "receiver");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/notify/receiver.py");
        let mut child = Command::new("python3")
            .args([script, dir.to_str().unwrap()])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        Receiver {
            port: line.trim().parse().expect("the receiver prints its port"),
            dir,
            _process: Running(child),
        }
    }

    /// What cutover needs to reach the HTTPS services through it.
    fn env(&self) -> [(String, String); 2] {
        [
            (
                "HTTPS_PROXY".into(),
                format!("http://127.0.0.1:{}", self.port),
            ),
            (
                "SSL_CERT_FILE".into(),
                self.dir.join("ca.pem").display().to_string(),
            ),
        ]
    }

    fn requests(&self) -> Vec<Value> {
        std::fs::read_to_string(self.dir.join("requests.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// The requests to `host` whose path starts with `path` (`/` only the root itself).
    fn to(&self, host: &str, path: &str) -> Vec<Value> {
        let matches = |p: &str| p == path || (path != "/" && p.starts_with(path));
        self.requests()
            .into_iter()
            .filter(|r| r["host"] == host && matches(r["path"].as_str().unwrap()))
            .collect()
    }

    /// The one request to `host` and `path`, its body read as JSON.
    fn one(&self, host: &str, path: &str) -> (Value, Value) {
        let found = self.to(host, path);
        assert_eq!(found.len(), 1, "one request to {host}{path}: {found:?}");
        let body = serde_json::from_str(found[0]["body"].as_str().unwrap()).unwrap();
        (found[0].clone(), body)
    }
}

/// Debian's aiosmtpd, keeping each mail it takes in a maildir.
fn smtp_server(scene: &Scene) -> (u16, PathBuf, Running) {
    let port = free_port();
    let maildir = temp_dir(scene, "maildir");
    let child = Command::new("/usr/bin/python3")
        .args(["-m", "aiosmtpd", "-n", "-l"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-c", "aiosmtpd.handlers.Mailbox"])
        .arg(maildir.join("box"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "aiosmtpd did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    (port, maildir.join("box"), Running(child))
}

fn mails(maildir: &Path) -> Vec<String> {
    std::fs::read_dir(maildir.join("new"))
        .map(|d| d.flatten().map(|e| read(&e.path())).collect())
        .unwrap_or_default()
}

fn write_config(scene: &Scene, text: &str) -> String {
    let path = temp_dir(scene, "config").join("notify.yml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn a_pass_that_upgrades_one_and_rolls_one_back_tells_each_service_once() {
    let _turn = auto_turn();
    let scene = Scene::new("notify");
    let reg = registry();
    let good = scene.run_image(
        "good",
        &["--init", "-l", "cutover.enable=true", "-v", "/data"],
        &format!("{reg}/auto-a:1.0.0"),
    );
    let bad = scene.run_image(
        "bad",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{reg}/auto-fail:1.0.0"),
    );
    // A backup of good's volume, which the pass's metrics tell.
    scene
        .cutover(&["backup", &good, "--backup-volumes", "--yes"])
        .expect(0);
    let receiver = Receiver::start(&scene);
    let (smtp, maildir, _smtp) = smtp_server(&scene);
    let at = format!("127.0.0.1:{}", receiver.port);
    let config = write_config(
        &scene,
        &format!(
            "notify:
  - gotify://{at}/gotify/GotifyAppSecret
  - slack://T0001/B0002/SlackHookSecret
  - discord://424242/DiscordHookSecret
  - workflows://prod-00.westeurope.logic.azure.com:443/wf1/TeamsSigSecret
  - matrix://bot:MatrixPassSecret@{at}/#ops
  - smtp://127.0.0.1:{smtp}/?to=ops@example.com&from=cutover@example.com
  - json://{at}/hook
  - apprise://{at}/cutover-key?tags=ops
  - json://{at}/every?level=all
  - json://{at}/failures?level=failure
  # Answers 500 every time: tried three times, logged, and the pass is unaffected.
  - json://{at}/broken/fail
"
        ),
    );
    let metrics = temp_dir(&scene, "textfile").join("cutover.prom");
    let env = receiver.env();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ntfy = format!("ntfy://tk_NtfySecret@{at}/upgrades");
    let out = scene.cutover_with_env(
        &[
            "auto",
            "--config",
            &config,
            "--notify",
            &ntfy,
            "--json",
            "--settle",
            "3s",
            "--metrics-file",
            metrics.to_str().unwrap(),
        ],
        &env,
    );
    // What the pass did decides the exit, as without notifications.
    out.expect(1);
    let results = pass_results(&out);
    assert_eq!(results.len(), 2, "{}", out.stdout);
    let title = "1 upgraded, 1 rolled back";

    // ntfy: JSON publishing to the server's root, the token as a bearer.
    let (request, body) = receiver.one(&at, "/");
    assert_eq!(request["method"], "POST");
    assert_eq!(request["headers"]["authorization"], "Bearer tk_NtfySecret");
    assert_eq!(body["topic"], "upgrades");
    assert!(body["title"].as_str().unwrap().ends_with(title), "{body}");
    for name in [&good, &bad] {
        assert!(body["message"].as_str().unwrap().contains(name.as_str()));
    }
    assert!(
        body["message"].as_str().unwrap().contains("runs "),
        "{body}"
    );
    // Gotify: POST /message under its path, the app token in X-Gotify-Key.
    let (request, body) = receiver.one(&at, "/gotify/message");
    assert_eq!(request["headers"]["x-gotify-key"], "GotifyAppSecret");
    assert_eq!(body["priority"], 8);
    assert!(body["title"].as_str().unwrap().ends_with(title));
    // Slack and Discord: their webhooks, over HTTPS to their own hosts.
    let (request, body) = receiver.one("hooks.slack.com", "/services/T0001/B0002/SlackHookSecret");
    assert_eq!(request["scheme"], "https");
    assert!(body["text"]
        .as_str()
        .unwrap()
        .starts_with("*cutover auto on "));
    let (request, body) = receiver.one("discord.com", "/api/webhooks/424242/DiscordHookSecret");
    assert_eq!(request["scheme"], "https");
    assert_eq!(body["username"], "cutover");
    assert!(body["content"].as_str().unwrap().contains(title));
    // Teams: the workflow's trigger, its signature in the query, an adaptive card.
    let (request, body) = receiver.one(
        "prod-00.westeurope.logic.azure.com",
        "/workflows/wf1/triggers/manual/paths/invoke?api-version=2016-06-01&",
    );
    assert!(request["path"]
        .as_str()
        .unwrap()
        .ends_with("&sig=TeamsSigSecret"));
    assert_eq!(body["type"], "message");
    assert_eq!(
        body["attachments"][0]["contentType"],
        "application/vnd.microsoft.card.adaptive"
    );
    // Matrix: a login, the room joined by its alias, the message sent to the id it answered.
    let (_, login) = receiver.one(&at, "/_matrix/client/v3/login");
    assert_eq!(login["identifier"]["user"], "bot");
    assert_eq!(login["password"], "MatrixPassSecret");
    let (join, _) = receiver.one(&at, "/_matrix/client/v3/join/%23ops%3A127.0.0.1");
    assert_eq!(join["headers"]["authorization"], "Bearer syt_from_login");
    let (send, body) = receiver.one(
        &at,
        "/_matrix/client/v3/rooms/%21room%3Amatrix.test/send/m.room.message/",
    );
    assert_eq!(send["method"], "PUT");
    assert_eq!(body["msgtype"], "m.text");
    // The generic JSON and Apprise's API.
    let (_, body) = receiver.one(&at, "/hook");
    assert_eq!(body["type"], "failure");
    assert_eq!(body["containers"].as_array().unwrap().len(), 2);
    let (_, body) = receiver.one(&at, "/notify/cutover-key");
    assert_eq!(
        (&body["tag"], &body["type"]),
        (&"ops".into(), &"failure".into())
    );
    receiver.one(&at, "/failures");
    receiver.one(&at, "/every");
    // Mail, through a real SMTP server.
    let mail = mails(&maildir);
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("To: ops@example.com"), "{}", mail[0]);
    assert!(mail[0].contains(title), "{}", mail[0]);
    assert!(mail[0].contains(&bad), "{}", mail[0]);

    // The failing notifier: three attempts, then a line in the log.
    assert_eq!(receiver.to(&at, "/broken/fail").len(), 3);
    assert!(
        out.stderr.contains("notifying json://127.0.0.1 failed"),
        "{}",
        out.stderr
    );
    // No URL's secret reaches what cutover prints.
    for secret in [
        "GotifyAppSecret",
        "SlackHookSecret",
        "DiscordHookSecret",
        "TeamsSigSecret",
        "MatrixPassSecret",
        "tk_NtfySecret",
    ] {
        assert!(
            !out.stderr.contains(secret) && !out.stdout.contains(secret),
            "{secret} printed: {}",
            out.stderr
        );
    }

    // The same pass's metrics: node_exporter's format, good's backup among them.
    let text = read(&metrics);
    for line in [
        "cutover_last_pass_upgrades{result=\"upgraded\"} 1.0".to_string(),
        "cutover_last_pass_upgrades{result=\"rolled_back\"} 1.0".to_string(),
        format!("cutover_backup_last_bytes{{container=\"{good}\"}}"),
        format!("cutover_backup_last_timestamp_seconds{{container=\"{good}\"}}"),
    ] {
        assert!(text.contains(&line), "{line} missing from:\n{text}");
    }
    promtool_accepts(&text);

    // A pass with nothing to do is quiet, but for the URL that takes every pass.
    docker(&["rm", "-f", &bad]);
    let before = receiver.requests().len();
    scene
        .cutover_with_env(&["auto", "--config", &config, "--json"], &env)
        .expect(0);
    let after = receiver.requests();
    let new: Vec<&str> = after[before..]
        .iter()
        .map(|r| r["path"].as_str().unwrap())
        .collect();
    assert_eq!(new, ["/every"]);
}

#[test]
fn a_command_tells_its_run_and_a_malformed_url_is_refused_before_anything() {
    let scene = Scene::new("notifycmd");
    let reg = registry();
    let app = scene.run_image("app", &["--init"], &format!("{reg}/auto-fail:1.0.0"));
    let before = inspect(&app).unwrap();
    // A typo is refused when the file is read, its secret not shown, nothing changed.
    let config = write_config(&scene, "notify:\n  - slack://T0001/B0002SlackSecret\n");
    for (args, says, hidden) in [
        (
            ["--config", config.as_str()],
            "slack://TOKEN_A/TOKEN_B/TOKEN_C",
            "B0002SlackSecret",
        ),
        (
            ["--notify", "telegram://bot/chat"],
            "not a service cutover sends to",
            "",
        ),
        (
            ["--notify", "discord://1234/"],
            "discord://WEBHOOK_ID/WEBHOOK_TOKEN",
            "",
        ),
        (
            ["--notify", "slack://T1/B2SlackFlagSecret"],
            "slack://TOKEN_A",
            "B2SlackFlagSecret",
        ),
    ] {
        let out = scene.upgrade(&app, "1.0.1", &args);
        out.expect(2);
        assert!(out.stderr.contains(says), "{}", out.stderr);
        assert!(
            hidden.is_empty() || !out.stderr.contains(hidden),
            "{}",
            out.stderr
        );
    }
    assert_untouched(&app, &before);

    // One message for the run, which failed and was rolled back.
    let receiver = Receiver::start(&scene);
    let url = format!("json://127.0.0.1:{}/command", receiver.port);
    scene
        .upgrade(&app, "1.0.1", &["--notify", &url, "--settle", "3s"])
        .expect(1);
    let (_, body) = receiver.one(&format!("127.0.0.1:{}", receiver.port), "/command");
    assert_eq!(body["type"], "failure");
    let title = body["title"].as_str().unwrap();
    assert!(
        title.starts_with("cutover upgrade ") && title.ends_with(": failed and was rolled back"),
        "{title}"
    );
    let message = body["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("runs {reg}/auto-fail:1.0.0")),
        "{message}"
    );
    assert_eq!(body["containers"][0]["result"], "rolled_back");
}
