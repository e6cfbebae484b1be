//! Update discovery against the real registries: tag pages, digests of floating tags, policies,
//! cooldowns, and credentials from docker's config and from a credential helper.

use std::path::Path;

use cutover::engine::reference::ImageRef;
use cutover::engine::registry::RegistryClient;
use serde_json::Value;

use crate::helpers::*;

fn statuses(out: &Outcome) -> Vec<Value> {
    out.json()["containers"].as_array().unwrap().clone()
}

fn status_of<'a>(all: &'a [Value], name: &str) -> &'a Value {
    all.iter()
        .find(|s| s["container"] == name)
        .unwrap_or_else(|| panic!("{name} not in {all:?}"))
}

#[test]
fn the_real_registry_lists_every_tag_in_one_request() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let image = ImageRef::parse(&format!("{}/policy:1.2.3", registry())).unwrap();
    let client = RegistryClient::new(vec![]).unwrap();
    let mut tags = runtime.block_on(client.tags(&image)).unwrap();
    tags.sort();
    assert_eq!(
        tags,
        ["1.2.3", "1.2.4", "1.3.0", "2.0.0", "2.0.0-rc1", "latest"]
    );
    assert_eq!(client.requests(), 1);
}

/// Debian's registry (distribution 2.8) ignores `n` on tag lists, so `Link` pagination is
/// proved against a loopback server that pages the way distribution 3 and Docker Hub do.
#[test]
fn tags_are_listed_across_pages_by_following_link_headers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let pages = [
        (
            r#"{"name":"paged","tags":["1.0.0","1.0.1"]}"#,
            Some("</v2/paged/tags/list?last=1.0.1&n=2>; rel=\"next\""),
        ),
        (
            r#"{"name":"paged","tags":["1.1.0","2.0.0"]}"#,
            Some("</v2/paged/tags/list?last=2.0.0&n=2>; rel=\"next\""),
        ),
        (r#"{"name":"paged","tags":["2.1.0"]}"#, None),
    ];
    let server = std::thread::spawn(move || {
        let mut asked = Vec::new();
        for (body, link) in pages {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 2048];
            let n = std::io::Read::read(&mut stream, &mut request).unwrap();
            asked.push(
                String::from_utf8_lossy(&request[..n])
                    .lines()
                    .next()
                    .unwrap()
                    .to_string(),
            );
            let link = link.map(|l| format!("Link: {l}\r\n")).unwrap_or_default();
            let response = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{link}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
            std::io::Write::write_all(&mut stream, response.as_bytes()).unwrap();
        }
        asked
    });
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = RegistryClient::new(vec![]).unwrap().with_page_size(2);
    let image = ImageRef::parse(&format!("{addr}/paged:1.0.0")).unwrap();
    let tags = runtime.block_on(client.tags(&image)).unwrap();
    assert_eq!(tags, ["1.0.0", "1.0.1", "1.1.0", "2.0.0", "2.1.0"]);
    assert_eq!(client.requests(), 3);
    let asked = server.join().unwrap();
    assert_eq!(asked[0], "GET /v2/paged/tags/list?n=2 HTTP/1.1");
    assert_eq!(asked[2], "GET /v2/paged/tags/list?last=2.0.0&n=2 HTTP/1.1");
}

#[test]
fn each_policy_chooses_its_target_from_the_registry() {
    let scene = Scene::new("policies");
    let img = format!("{}/policy:1.2.3", registry());
    let cases = [
        ("patch", vec!["cutover.policy=patch"], Some("1.2.4")),
        ("minor", vec!["cutover.policy=minor"], Some("1.3.0")),
        ("major", vec!["cutover.policy=major"], Some("2.0.0")),
        (
            "pinned",
            vec!["cutover.policy=major", "cutover.pin=<2"],
            Some("1.3.0"),
        ),
        (
            "prerelease",
            vec!["cutover.policy=major", "cutover.prerelease=true"],
            Some("2.0.0"),
        ),
        ("digest", vec!["cutover.policy=digest"], None),
        (
            "cooling",
            vec!["cutover.policy=minor", "cutover.cooldown=3650d"],
            None,
        ),
        (
            "cooled",
            vec!["cutover.policy=minor", "cutover.cooldown=1s"],
            Some("1.3.0"),
        ),
        ("default", vec![], Some("1.2.4")),
    ];
    let mut names = Vec::new();
    for (what, labels, _) in &cases {
        let mut options = vec!["--init"];
        for label in labels {
            options.extend(["-l", label]);
        }
        names.push(scene.run_image(what, &options, &img));
    }
    // A floating tag of the same repository under a version policy: its tag, not whether the
    // repository's tags were fetched for the others, says it is no version.
    let floating = scene.run_image(
        "floating",
        &["--init", "-l", "cutover.policy=patch"],
        &format!("{}/policy:latest", registry()),
    );
    let mut args = vec!["check", "--json", floating.as_str()];
    args.extend(names.iter().map(String::as_str));
    let out = scene.cutover(&args);
    out.expect(0);
    let all = statuses(&out);
    for ((what, _, want), name) in cases.iter().zip(&names) {
        let s = status_of(&all, name);
        let target = s["target"]
            .as_str()
            .map(|t| t.rsplit(':').next().unwrap().to_string());
        assert_eq!(target.as_deref(), *want, "{what}: {s}");
        assert_eq!(s["eligible"], want.is_some(), "{what}");
        assert_eq!(
            s["newest"], "2.0.0",
            "{what}: the newest overall excludes pre-releases"
        );
    }
    assert!(status_of(&all, &names[5])["reason"]
        .as_str()
        .unwrap()
        .starts_with("up to date"));
    assert!(status_of(&all, &names[6])["reason"]
        .as_str()
        .unwrap()
        .contains("cooldown"));
    let f = status_of(&all, &floating);
    assert_eq!(f["eligible"], false);
    assert!(
        f["reason"].as_str().unwrap().contains("not a version"),
        "{f}"
    );
    // One tag list and one HEAD for the whole repository; image ages only for the cooldowns.
    let requests = out.json()["registry_requests"].as_u64().unwrap();
    assert!(requests <= 2 + 2 * 4, "{requests} requests");
}

#[test]
fn a_new_digest_of_a_floating_tag_is_found_and_upgraded_to() {
    let scene = Scene::new("float");
    let floating = format!("{}/float-{}:latest", registry(), scene.prefix);
    docker(&["tag", &image("1"), &floating]);
    docker(&["push", "-q", &floating]);
    let name = scene.run_image("app", &["--init"], &floating);
    let check = || {
        let out = scene.cutover(&["check", "--json", &name]);
        out.expect(0);
        statuses(&out)[0].clone()
    };
    let before = check();
    assert_eq!(
        before["policy"], "digest",
        "a tag that is no version follows its digest"
    );
    assert_eq!(before["eligible"], false, "{before}");
    // A new image is pushed under the same tag.
    docker(&["pull", "-q", &image("2")]);
    docker(&["tag", &image("2"), &floating]);
    docker(&["push", "-q", &floating]);
    let after = check();
    assert_eq!(after["eligible"], true, "{after}");
    assert_eq!(after["target"], floating);
    scene
        .cutover(&[
            "upgrade", &name, "--to", "latest", "--yes", "--settle", "1s",
        ])
        .expect(0);
    let env = inspect(&name).unwrap()["Config"]["Env"].to_string();
    assert!(env.contains("APP_VERSION=2"), "{env}");
    assert_eq!(check()["eligible"], false);
}

fn helper_dir(scene: &Scene) -> (std::path::PathBuf, std::path::PathBuf) {
    let dir = temp_dir(scene, "helper");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let helper = bin.join("docker-credential-cutovertest");
    std::fs::write(
        &helper,
        format!("#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"cutover\",\"Secret\":\"{REGISTRY_PASSWORD}\"}}' \"$server\"\n"),
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("755")
        .arg(&helper)
        .status()
        .unwrap();
    let config = dir.join("config");
    std::fs::create_dir_all(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(
            "{{\"credHelpers\":{{\"{}\":\"cutovertest\"}}}}",
            auth_registry()
        ),
    )
    .unwrap();
    (bin, config)
}

fn with_path(bin: &Path) -> String {
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// The authenticated registry's `private/app:1.0.0`, running; 1.0.1 is there too.
fn run_private_app(scene: &Scene) -> String {
    let img = format!("{}/private/app:1.0.0", auth_registry());
    scene.run_image("app", &["--init"], &img)
}

/// On Docker, a registry Docker's config has no login for is looked up in `podman login`'s
/// files after it: `~/.config/containers/auth.json` here.
#[test]
fn a_login_dockers_config_lacks_is_found_in_podmans_files() {
    let scene = Scene::new("authpodman");
    let name = run_private_app(&scene);
    let home = temp_dir(&scene, "home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    std::fs::write(
        home.join(".docker/config.json"),
        r#"{"auths":{"other.lan":{"auth":"dTpw"}}}"#,
    )
    .unwrap();
    let env = [
        ("HOME", home.to_str().unwrap()),
        ("DOCKER_CONFIG", home.join(".docker").to_str().unwrap()),
        ("XDG_RUNTIME_DIR", home.join("run").to_str().unwrap()),
    ]
    .map(|(k, v)| (k, v.to_string()));
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let refused = scene.cutover_with_env(&["check", "--json", &name], &env);
    assert!(
        statuses(&refused)[0]["reason"].to_string().contains("401"),
        "{}",
        refused.stdout
    );
    podman_login_file(home.join(".config/containers/auth.json"));
    let checked = scene.cutover_with_env(&["check", "--json", &name], &env);
    assert_eq!(
        statuses(&checked)[0]["target"],
        format!("{}/private/app:1.0.1", auth_registry()),
        "{}",
        checked.stdout
    );
}

#[test]
fn credentials_come_from_docker_config_and_credential_helpers() {
    let scene = Scene::new("auth");
    let name = run_private_app(&scene);
    let empty = temp_dir(&scene, "nocreds");

    let anonymous = scene.cutover_with_env(
        &["check", "--json", &name],
        &[("DOCKER_CONFIG", empty.to_str().unwrap())],
    );
    let s = statuses(&anonymous)[0].clone();
    assert_eq!(s["eligible"], false);
    assert!(s["reason"].as_str().unwrap().contains("401"), "{s}");

    let config = logged_in_docker_config();
    let logged_in = scene.cutover_with_env(
        &["check", "--json", &name],
        &[("DOCKER_CONFIG", config.to_str().unwrap())],
    );
    assert_eq!(
        statuses(&logged_in)[0]["target"],
        format!("{}/private/app:1.0.1", auth_registry())
    );

    let (bin, helper_config) = helper_dir(&scene);
    let env = [
        ("DOCKER_CONFIG", helper_config.to_str().unwrap().to_string()),
        ("PATH", with_path(&bin)),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let helped = scene.cutover_with_env(&["check", "--json", &name], &env);
    assert_eq!(statuses(&helped)[0]["eligible"], true, "{}", helped.stdout);
    // The engine pulls with the helper's credentials too.
    let upgraded = scene.cutover_with_env(
        &["upgrade", &name, "--to", "1.0.1", "--yes", "--settle", "1s"],
        &env,
    );
    upgraded.expect(0);
    for out in [&anonymous, &logged_in, &helped, &upgraded] {
        assert!(!out.stdout.contains(REGISTRY_PASSWORD) && !out.stderr.contains(REGISTRY_PASSWORD));
    }
    assert!(!scene.journal_text().contains(REGISTRY_PASSWORD));
}
