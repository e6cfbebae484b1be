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
    // `cooldown`, min_age's earlier name, holds it back until a time it tells.
    let cooling = status_of(&all, &names[6]);
    assert!(
        cooling["reason"]
            .as_str()
            .unwrap()
            .contains("under min_age 3650d it is eligible from"),
        "{cooling}"
    );
    assert!(cooling["eligible_at"].is_string(), "{cooling}");
    let f = status_of(&all, &floating);
    assert_eq!(f["eligible"], false);
    assert!(
        f["reason"].as_str().unwrap().contains("not a version"),
        "{f}"
    );
    // One tag list and one HEAD for the whole repository; image ages only for the minimum
    // ages, each fetched once.
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

/// `FROM demo:1` with these Dockerfile lines, built by the legacy builder (as the world builds
/// its fixtures) and pushed as `repo:tag`.
fn build_and_push(scene: &Scene, repo: &str, tag: &str, lines: &[String]) -> String {
    let context = temp_dir(scene, &format!("build-{tag}"));
    std::fs::write(
        context.join("Dockerfile"),
        format!("FROM {}\n{}\n", image("1"), lines.join("\n")),
    )
    .unwrap();
    let reference = format!("{repo}:{tag}");
    let build = std::process::Command::new("/usr/bin/docker")
        .args(["build", "-q", "-t", &reference])
        .arg(&context)
        .env("DOCKER_HOST", std::env::var("DOCKER_HOST").unwrap())
        .env("DOCKER_BUILDKIT", "0")
        .output()
        .unwrap();
    succeeded(&format!("docker build {reference}"), build);
    docker(&["push", "-q", &reference]);
    reference
}

/// OCI labels naming the project's pages, for one version.
fn oci_labels(version: &str) -> Vec<String> {
    vec![
        format!("LABEL org.opencontainers.image.documentation=https://docs.example.com/app/{version} \\"),
        "      org.opencontainers.image.source=https://github.com/example/app \\".into(),
        format!("      org.opencontainers.image.version={version}"),
    ]
}

fn urls(status: &Value) -> Vec<(String, String, String)> {
    status["release_notes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let text = |k: &str| l[k].as_str().unwrap_or_default().to_string();
            (text("version"), text("url"), text("from"))
        })
        .collect()
}

#[test]
fn release_notes_come_from_the_oci_labels_of_the_image_without_a_request_of_their_own() {
    let scene = Scene::new("ocilabels");
    let repo = format!("{}/notes-{}", registry(), scene.prefix);
    let old = build_and_push(&scene, &repo, "1.0.0", &oci_labels("1.0.0"));
    build_and_push(&scene, &repo, "1.1.0", &oci_labels("1.1.0"));
    let name = scene.run_image("app", &["--init", "-l", "cutover.policy=minor"], &old);

    // Without a minimum age, nothing but the tag list is asked: the running image's labels name
    // the project's pages, for the target's version.
    let plain = scene.cutover(&["check", "--json", &name]);
    plain.expect(0);
    let s = statuses(&plain)[0].clone();
    assert_eq!(s["target"], format!("{repo}:1.1.0"), "{s}");
    let running = "of the running image";
    assert_eq!(
        urls(&s),
        [
            (
                "1.1.0".into(),
                "https://docs.example.com/app/1.0.0".into(),
                format!("label org.opencontainers.image.documentation {running}")
            ),
            (
                "1.1.0".into(),
                "https://github.com/example/app".into(),
                format!("label org.opencontainers.image.source {running}")
            ),
        ]
    );
    assert_eq!(plain.json()["registry_requests"], 1, "{}", plain.stdout);

    // A minimum age fetches the target's config anyway: its own labels are read then, for the
    // version they say (a manifest and a config more).
    let aged = scene.cutover(&["check", "--json", "--min-age", "1s", &name]);
    aged.expect(0);
    let s = statuses(&aged)[0].clone();
    assert_eq!(s["eligible"], true, "{s}");
    assert_eq!(
        urls(&s)[0],
        (
            "1.1.0".into(),
            "https://docs.example.com/app/1.1.0".into(),
            "label org.opencontainers.image.documentation of 1.1.0's image".into()
        )
    );
    assert_eq!(aged.json()["registry_requests"], 3, "{}", aged.stdout);

    let text = scene.cutover(&["check", &name]);
    text.expect(0);
    assert!(
        text.stdout
            .contains("release notes of 1.1.0: https://docs.example.com/app/1.0.0"),
        "{}",
        text.stdout
    );

    // The plan of the upgrade tells them too, from the target's image the engine has.
    let plan = scene.cutover(&["upgrade", &name, "--to", "1.1.0", "--dry-run", "--json"]);
    plan.expect(0);
    let notes = plan.json()["notes"].to_string();
    assert!(
        notes.contains("release notes of 1.1.0: https://docs.example.com/app/1.1.0 (label org.opencontainers.image.documentation of 1.1.0's image)"),
        "{}",
        plan.stdout
    );
}

/// `repo:tag` rebuilt with every creation time at the epoch, as reproducible builds write it,
/// and pushed.
fn push_with_epoch_creation(scene: &Scene, repo: &str, tag: &str) -> String {
    let built = build_and_push(
        scene,
        repo,
        &format!("{tag}-built"),
        &["LABEL built=now".into()],
    );
    let dir = temp_dir(scene, &format!("epoch-{tag}"));
    let tar = dir.join("image.tar");
    docker(&["save", "-o", tar.to_str().unwrap(), &built]);
    let reference = format!("{repo}:{tag}");
    let script = format!(
        "set -e; cd '{dir}'; mkdir x; tar -xf image.tar -C x; cd x; \
         config=$(sed -n 's/.*\"Config\":\"\\([^\"]*\\)\".*/\\1/p' manifest.json); \
         sed -i 's/\"created\":\"[^\"]*\"/\"created\":\"1970-01-01T00:00:00Z\"/g' \"$config\"; \
         sed -i 's#\"RepoTags\":\\[[^]]*\\]#\"RepoTags\":[\"{reference}\"]#' manifest.json; \
         tar -cf ../epoch.tar *",
        dir = dir.display()
    );
    let out = std::process::Command::new("sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    succeeded("rewriting the image's creation time", out);
    docker(&["load", "-q", "-i", dir.join("epoch.tar").to_str().unwrap()]);
    let created = docker(&["image", "inspect", "-f", "{{.Created}}", &reference]);
    assert!(created.starts_with("1970-01-01"), "{created}");
    docker(&["push", "-q", &reference]);
    reference
}

const THREE_DAYS: std::time::Duration = std::time::Duration::from_secs(3 * 86400);

/// A container of `image` that follows minor releases once they are three days old.
fn run_waiting_3d(scene: &Scene, image: &str) -> String {
    let labels = ["cutover.policy=minor", "cutover.min_age=3d"];
    scene.run_image("app", &["--init", "-l", labels[0], "-l", labels[1]], image)
}

#[test]
fn min_age_holds_back_a_fresh_tag_and_check_says_until_when() {
    let scene = Scene::new("minage");
    let repo = format!("{}/fresh-{}", registry(), scene.prefix);
    let old = build_and_push(&scene, &repo, "1.0.0", &["LABEL release=1.0.0".into()]);
    let fresh = build_and_push(&scene, &repo, "1.1.0", &["LABEL release=1.1.0".into()]);
    let created = docker(&["image", "inspect", "-f", "{{.Created}}", &fresh]);
    let created = humantime::parse_rfc3339_weak(created.split('.').next().unwrap()).unwrap();
    let name = run_waiting_3d(&scene, &old);

    let held = scene.cutover(&["check", "--json", &name]);
    held.expect(0);
    let s = statuses(&held)[0].clone();
    assert_eq!(s["eligible"], false, "{s}");
    assert_eq!(s["waiting_for"], "1.1.0");
    let at = humantime::parse_rfc3339(s["eligible_at"].as_str().unwrap()).unwrap();
    let off = at
        .duration_since(created + THREE_DAYS)
        .unwrap_or_else(|e| e.duration());
    assert!(off.as_secs() <= 1, "{s}: built at {created:?}");
    let reason = s["reason"].as_str().unwrap();
    assert!(
        reason.contains("as its image says") && reason.contains("eligible from"),
        "{reason}"
    );
    let text = scene.cutover(&["check", &name]);
    assert!(text.stdout.contains("eligible from"), "{}", text.stdout);

    // The command line's minimum age is over the label's; the earlier name is the same setting.
    let now = scene.cutover(&["check", "--json", "--min-age", "1s", &name]);
    assert_eq!(statuses(&now)[0]["eligible"], true, "{}", now.stdout);

    // The config file's entry, by the earlier name, holds it back the same.
    let unlabelled = scene.run_image("bare", &["--init"], &old);
    let config = temp_dir(&scene, "config").join("cutover.yml");
    std::fs::write(
        &config,
        format!("containers:\n  {unlabelled}: {{policy: minor, cooldown: 3d}}\n"),
    )
    .unwrap();
    let by_config = scene.cutover(&[
        "check",
        "--json",
        "--config",
        config.to_str().unwrap(),
        &unlabelled,
    ]);
    by_config.expect(0);
    let c = statuses(&by_config)[0].clone();
    assert_eq!(
        (c["eligible"].clone(), c["eligible_at"].clone()),
        (false.into(), s["eligible_at"].clone()),
        "{c}"
    );
}

#[test]
fn an_image_that_does_not_say_when_it_was_built_counts_from_when_cutover_first_saw_it() {
    let scene = Scene::new("firstseen");
    let repo = format!("{}/epoch-{}", registry(), scene.prefix);
    let old = build_and_push(&scene, &repo, "1.0.0", &["LABEL release=1.0.0".into()]);
    push_with_epoch_creation(&scene, &repo, "1.1.0");
    let name = run_waiting_3d(&scene, &old);
    let before = std::time::SystemTime::now();
    let first = scene.cutover(&["check", "--json", &name]);
    first.expect(0);
    let s = statuses(&first)[0].clone();
    assert_eq!(s["eligible"], false, "the epoch is no age: {s}");
    assert!(
        s["reason"]
            .as_str()
            .unwrap()
            .contains("first seen by cutover"),
        "{s}"
    );
    let at = humantime::parse_rfc3339(s["eligible_at"].as_str().unwrap()).unwrap();
    assert!(
        at + std::time::Duration::from_secs(1) >= before + THREE_DAYS,
        "{s}"
    );
    let record = std::fs::read_to_string(scene.state_dir.join("first-seen.json")).unwrap();
    assert!(record.contains("sha256:"), "{record}");

    // Seen again later, it keeps its first sighting.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = scene.cutover(&["check", "--json", &name]);
    assert_eq!(statuses(&again)[0]["eligible_at"], s["eligible_at"]);
}

#[test]
fn check_links_each_product_s_release_notes_for_the_target_and_every_hop() {
    let scene = Scene::new("vendornotes");
    let cases = [
        (
            "proget",
            "inedo/proget:24.0.1",
            "https://docs.inedo.com/docs/proget-upgrade-2026",
        ),
        (
            "buildmaster",
            "inedo/buildmaster:24.0.1",
            "https://docs.inedo.com/docs/buildmaster-upgrade-2025",
        ),
        (
            "otter",
            "inedo/otter:24.0.1",
            "https://docs.inedo.com/docs/otter-upgrade-2025",
        ),
        (
            "quay",
            "projectquay/quay:v3.8.0",
            "https://github.com/quay/quay/blob/v3.11.0/CHANGELOG.md#v3.11.0",
        ),
        (
            "anchore",
            "anchore/anchore-engine:v0.7.0",
            "https://github.com/anchore/anchore-engine/blob/v0.8.0/CHANGELOG.md",
        ),
        (
            "devlake",
            "apache/devlake:v0.17.0",
            "https://github.com/apache/incubator-devlake/releases/tag/v1.1.0",
        ),
    ];
    // Created, not started: check reads what they run, and no product needs to answer.
    let names: Vec<String> = cases
        .iter()
        .map(|(what, image, _)| {
            let name = scene.name(what);
            docker(&[
                "create",
                "--name",
                &name,
                "-l",
                "cutover.policy=major",
                &product(image),
            ]);
            name
        })
        .collect();
    let mut args = vec!["check", "--json"];
    args.extend(names.iter().map(String::as_str));
    let out = scene.cutover(&args);
    out.expect(0);
    let all = statuses(&out);
    for ((what, _, url), name) in cases.iter().zip(&names) {
        let s = status_of(&all, name);
        assert_eq!(s["eligible"], true, "{what}: {s}");
        let links = urls(s);
        assert!(links.iter().any(|(_, u, _)| u == url), "{what}: {links:?}");
        assert!(
            links.iter().all(|(_, _, from)| from
                .starts_with(&format!("profile {}", s["profile"].as_str().unwrap()))),
            "{what}: {links:?}"
        );
        // Every hop through has its own.
        for via in s["via"].as_array().into_iter().flatten() {
            assert!(
                links.iter().any(|(v, _, _)| v == via),
                "{what}: {via} in {links:?}"
            );
        }
    }
    let quay = status_of(&all, &names[3]);
    assert_eq!(
        quay["via"],
        serde_json::json!(["v3.9.0", "v3.10.0"]),
        "{quay}"
    );
    assert!(urls(quay).iter().any(|(_, u, _)| u
        == "https://access.redhat.com/documentation/en-us/red_hat_quay/3.9/html/red_hat_quay_release_notes/index"));
}
