//! `cutover plan`, `apply`, `pending`, `approve` and `auto` with approval: what was planned
//! runs exactly, or nothing does.

use serde_json::Value;

use crate::helpers::*;

/// `cutover plan ... --out FILE` for `name`, its file named `what`: the file's path and its
/// JSON.
fn plan(scene: &Scene, what: &str, name: &str, extra: &[&str]) -> (String, Value) {
    let file = temp_dir(scene, what).join("plan.json");
    let file = file.display().to_string();
    let args = [&["plan", name, "--out", &file][..], extra].concat();
    let out = scene.cutover(&args);
    out.expect(0);
    assert!(out.stdout.contains("cutover apply"), "{}", out.stdout);
    let json = serde_json::from_str(&read(std::path::Path::new(&file))).unwrap();
    (file, json)
}

fn env_of(name: &str) -> String {
    inspect(name).unwrap()["Config"]["Env"].to_string()
}

#[test]
fn a_plan_runs_its_pinned_digest_after_the_tag_moved() {
    let scene = Scene::new("planpin");
    let repo = format!("{}/plan-{}", registry(), scene.prefix);
    for tag in ["1", "2"] {
        push(&repo, tag, tag);
    }
    let name = scene.run_image(
        "app",
        &["--init", "-e", "API_TOKEN=hunter2hunter2"],
        &format!("{repo}:1"),
    );
    let before = id_of(&name);
    let (file, json) = plan(&scene, "plan", &name, &["--to", "2", "--settle", "1s"]);
    let planned = &json["upgrades"][0];
    let pinned = planned["to"].as_str().unwrap().to_string();
    assert!(pinned.starts_with(&format!("{repo}:2@sha256:")), "{pinned}");
    assert!(!read(std::path::Path::new(&file)).contains("hunter2hunter2"));
    assert!(planned["downtime"].as_str().unwrap().contains("down from"));
    assert_eq!(id_of(&name), before, "planning changes nothing");

    // The tag is pushed again, with other content.
    push(&repo, "2", "3");

    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    let env = env_of(&name);
    assert!(
        env.contains("APP_VERSION=2"),
        "the planned digest runs: {env}"
    );
    assert!(env.contains("API_TOKEN=hunter2hunter2"));
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], pinned.as_str());
    // Its tag is still read.
    let check = scene.cutover(&["check", "--json", &name]);
    check.expect(0);
    assert_eq!(
        check.json()["containers"][0]["current_tag"],
        "2",
        "{}",
        check.stdout
    );

    let again = scene.cutover(&["apply", &file, "--yes"]);
    again.expect(0);
    assert!(again.stdout.contains("applied already"), "{}", again.stdout);
}

/// Pushes `content` (a tag of the world's demo image) to `repo:tag`.
fn push(repo: &str, tag: &str, content: &str) {
    copy(&image(content), &format!("{repo}:{tag}"));
}

/// Pushes the image `from` as `to`.
fn copy(from: &str, to: &str) {
    docker(&["pull", "-q", from]);
    docker(&["tag", from, to]);
    docker(&["push", "-q", to]);
}

#[test]
fn a_plan_runs_its_pinned_hop_after_the_hop_s_tag_moved() {
    let scene = Scene::new("planhop");
    let repo = format!("{}/plan-{}", registry(), scene.prefix);
    for tag in ["1", "2", "3"] {
        push(&repo, tag, tag);
    }
    let name = scene.run_image("app", &["--init"], &format!("{repo}:1"));
    scene
        .cutover(&[
            "upgrade",
            &name,
            "--to",
            "3",
            "--pin",
            &format!("{repo}:2"),
            "--dry-run",
        ])
        .refused(&["--pin", "REPOSITORY:TAG@sha256:DIGEST"]);
    let (file, json) = plan(
        &scene,
        "plan",
        &name,
        &["--via", "2", "--to", "3", "--settle", "1s"],
    );
    let hop = json["upgrades"][0]["via"][0].as_str().unwrap().to_string();
    assert!(hop.starts_with(&format!("{repo}:2@sha256:")), "{hop}");

    // The hop's tag is pushed again, with other content: its new digest is never run.
    push(&repo, "2", "3");
    let digests: Vec<String> = serde_json::from_str(&docker(&[
        "inspect",
        "--format",
        "{{json .RepoDigests}}",
        &image("3"),
    ]))
    .unwrap();
    let moved = digests
        .iter()
        .find_map(|d| d.strip_prefix(&format!("{repo}@")))
        .unwrap()
        .to_string();
    assert!(!hop.ends_with(&moved), "the tag moved");

    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    assert!(env_of(&name).contains("APP_VERSION=3"));
    let journal = scene.journal_text();
    assert!(
        journal.contains(&hop),
        "the planned hop digest ran: {journal}"
    );
    assert!(!journal.contains(&format!("{repo}:2@{moved}")));
}

/// Quay's Clair is pinned as Quay is: its tag pushed again with a version that fails as it
/// starts (the world's Clair 4.9.0), the plan still runs the Clair it planned.
#[test]
fn a_plan_runs_the_related_product_s_pinned_digest() {
    let scene = Scene::new("planclair");
    let repo = format!("{}/plan-{}/projectquay", registry(), scene.prefix);
    for (what, tag) in [
        ("quay", "v3.8.0"),
        ("quay", "v3.9.0"),
        ("clair", "4.7.0"),
        ("clair", "4.8.0"),
    ] {
        copy(
            &product(&format!("projectquay/{what}:{tag}")),
            &format!("{repo}/{what}:{tag}"),
        );
    }
    let site = quay_site(&scene);
    let (quay, port) = site.node(&scene, "quay", &format!("{repo}/quay:v3.8.0"), &[]);
    let (clair, ready) = crate::products::clair(&scene, &site.net, &format!("{repo}/clair:4.7.0"));
    http_get_eventually(port, "/health/instance");
    http_get_eventually(ready, "/readyz");
    let (file, _) = plan(
        &scene,
        "plan",
        &quay,
        &["--to", "v3.9.0", "--related", "clair=4.8.0"],
    );
    let text = read(std::path::Path::new(&file));
    let pinned = format!("{repo}/clair:4.8.0@sha256:");
    assert!(text.contains(&pinned), "{text}");

    copy(
        &product("projectquay/clair:4.9.0"),
        &format!("{repo}/clair:4.8.0"),
    );
    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    let image = crate::products::image_of(&clair);
    assert!(image.starts_with(&pinned), "{image}");
    let clair_db = scene.name("clair-db");
    assert_eq!(
        crate::products::schema(&clair_db, "clair", "clair", "clair").0,
        "4.8.0"
    );
    assert!(crate::products::image_of(&quay).starts_with(&format!("{repo}/quay:v3.9.0@sha256:")));
}

#[test]
fn apply_refuses_an_edited_expired_or_outdated_plan() {
    let scene = Scene::new("planrefuse");
    let name = scene.run("app", &["--init"], "1");
    let (file, _) = plan(&scene, "plan", &name, &["--to", "2", "--settle", "1s"]);
    let text = read(std::path::Path::new(&file));
    let before = inspect(&name).unwrap();

    let edited = temp_dir(&scene, "edited").join("plan.json");
    std::fs::write(
        &edited,
        text.replacen("\"summary\": [", "\"summary\": [\"more\",", 1),
    )
    .unwrap();
    scene
        .cutover(&["apply", &edited.display().to_string(), "--yes"])
        .refused(&["altered"]);
    assert_untouched(&name, &before);

    let (short, _) = plan(&scene, "short", &name, &["--to", "2", "--valid-for", "1s"]);
    std::thread::sleep(std::time::Duration::from_secs(2));
    scene
        .cutover(&["apply", &short, "--yes"])
        .refused(&["expired"]);
    assert_untouched(&name, &before);

    // Its configuration is changed in place, then put back.
    docker(&["update", "--restart", "always", &name]);
    scene
        .cutover(&["apply", &file, "--yes"])
        .refused(&["configuration changed since"]);
    docker(&["update", "--restart", "no", &name]);

    // The container is recreated with the same settings after planning.
    docker(&["rm", "-f", &name]);
    let name = scene.run("app", &["--init"], "1");
    let recreated = inspect(&name).unwrap();
    scene
        .cutover(&["apply", &file, "--yes"])
        .refused(&["was recreated", "nothing was changed"]);
    assert_untouched(&name, &recreated);
    assert!(!exists(&format!("{name}-new")));
}

#[test]
fn a_plan_over_a_fleet_moves_each_host_s_container_in_turn() {
    let scene = Scene::new("planfleet");
    let world = std::env::var("DOCKER_HOST").unwrap();
    let (a, b) = (
        scene.run("a", &["--init"], "1"),
        scene.run("b", &["--init"], "1"),
    );
    let config = crate::auto::config(
        &scene,
        &format!("settle: 1s\nhosts:\n  one: {{host: '{world}'}}\n  two: {{host: '{world}'}}\n"),
    );
    let (one, two) = (format!("one/{a}"), format!("two/{b}"));
    let (file, json) = plan(
        &scene,
        "plan",
        &one,
        &[&two, "--to", "2", "--config", &config, "--canary", "two"],
    );
    let planned: Vec<&str> = json["upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["container"].as_str().unwrap())
        .collect();
    assert_eq!(planned, [one.as_str(), two.as_str()]);
    assert!(env_of(&a).contains("APP_VERSION=1") && env_of(&b).contains("APP_VERSION=1"));
    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    assert!(env_of(&a).contains("APP_VERSION=2") && env_of(&b).contains("APP_VERSION=2"));
    let created = |name: &str| {
        inspect(name).unwrap()["Created"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(created(&b) < created(&a), "the canary host two went first");
}

#[test]
fn auto_with_approval_moves_nothing_until_approved() {
    let _turn = auto_turn();
    let scene = Scene::new("approval");
    let name = scene.run_image(
        "app",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{}/auto-b:1.0.0", registry()),
    );
    let before = inspect(&name).unwrap();
    let (url, hook) = crate::auto::webhook();
    let config = crate::auto::config(
        &scene,
        &format!("approval: required\nsettle: 1s\nwebhook: {url}\ncontainers:\n  {name}: {{policy: patch}}\n"),
    );

    let out = scene.cutover(&["auto", "--config", &config]);
    out.expect(0);
    assert!(out.stdout.contains("cutover approve"), "{}", out.stdout);
    assert_untouched(&name, &before);
    let told = hook.join().unwrap();
    assert!(
        told.contains("waits for approval") && told.contains("cutover approve"),
        "{told}"
    );

    let pending = scene.cutover(&["pending", "--json"]);
    pending.expect(0);
    let waiting = pending.json()["pending"].as_array().unwrap().clone();
    let ours = waiting
        .iter()
        .find(|p| p["summary"].to_string().contains(&name))
        .unwrap_or_else(|| panic!("{}", pending.stdout));
    let id = ours["id"].as_str().unwrap();

    scene.cutover(&["approve", id, "--yes"]).expect(0);
    let image = inspect(&name).unwrap()["Config"]["Image"].to_string();
    assert!(image.contains("auto-b:1.0.1@sha256:"), "{image}");
    let left = scene.cutover(&["pending", "--json"]).json();
    assert!(!left.to_string().contains(id), "{left}");
}

#[test]
fn a_resident_auto_applies_a_plan_approved_for_its_window() {
    let _turn = auto_turn();
    let scene = Scene::new("approvalwindow");
    let name = scene.run_image("app", &["--init"], &format!("{}/auto-c:1.0.0", registry()));
    let config = crate::auto::config(
        &scene,
        &format!("approval: required\nsettle: 1s\ncontainers:\n  {name}: {{policy: patch}}\n"),
    );
    // Every second: the first pass plans, later ones find the plan waiting and plan nothing more.
    let mut resident = scene.spawn(
        &["auto", "--config", &config, "--schedule", "* * * * * *"],
        &[],
    );
    let waiting = || -> Vec<Value> {
        let pending = scene.cutover(&["pending", "--json"]).json();
        pending["pending"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["summary"].to_string().contains(&name))
            .cloned()
            .collect()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while waiting().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    std::thread::sleep(std::time::Duration::from_secs(3));
    let plans = waiting();
    assert_eq!(plans.len(), 1, "one plan, not one per pass: {plans:?}");
    assert_eq!(tag_of(&name), "1.0.0", "nothing moves before approval");

    let id = plans[0]["id"].as_str().unwrap();
    let approved = scene.cutover(&["approve", id, "--in-window"]);
    approved.expect(0);
    assert!(
        approved.stdout.contains("is approved"),
        "{}",
        approved.stdout
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    // Applied, the plan waits no more.
    while !waiting().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    kill_hard(&mut resident);
    assert!(waiting().is_empty());
    let tag = tag_of(&name);
    assert!(tag.starts_with("1.0.1@sha256:"), "{tag}");
    assert!(is_running(&name));
}

/// The tag (and digest) a container's image names.
fn tag_of(name: &str) -> String {
    let image = inspect(name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string();
    let last = image.rsplit('/').next().unwrap();
    last.split_once(':')
        .map(|(_, t)| t.to_string())
        .unwrap_or_default()
}

#[test]
fn plan_all_plans_what_the_policies_make_eligible_in_one_file() {
    let _turn = auto_turn();
    let scene = Scene::new("planall");
    let patch = scene.run_image(
        "patch",
        &["--init"],
        &format!("{}/auto-b:1.0.0", registry()),
    );
    let pinned = scene.run_image(
        "pinned",
        &["--init"],
        &format!("{}/auto-c:1.0.0", registry()),
    );
    let config = crate::auto::config(
        &scene,
        &format!(
            "settle: 1s\ncontainers:\n  {patch}: {{policy: patch}}\n  {pinned}: {{policy: patch, pin: \"<1.0.1\"}}\n"
        ),
    );
    let before = inspect(&patch).unwrap();
    scene
        .cutover(&["plan", "--all", "--config", &config, "--keep-old"])
        .refused(&["--all", "no other upgrade option"]);
    let file = temp_dir(&scene, "plan").join("plan.json");
    let file = file.display().to_string();
    let out = scene.cutover(&["plan", "--all", "--config", &config, "--out", &file]);
    out.expect(0);
    let json: Value = serde_json::from_str(&read(std::path::Path::new(&file))).unwrap();
    let ours: Vec<&Value> = json["upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| [&patch, &pinned].contains(&&u["container"].as_str().unwrap().to_string()))
        .collect();
    assert_eq!(ours.len(), 1, "the pinned one is not eligible: {json}");
    assert_eq!(ours[0]["container"], patch.as_str());
    let to = ours[0]["to"].as_str().unwrap();
    assert!(to.contains("auto-b:1.0.1@sha256:"), "{to}");
    assert_untouched(&patch, &before);

    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    assert_eq!(inspect(&patch).unwrap()["Config"]["Image"], to);
    assert_eq!(tag_of(&pinned), "1.0.0");
}

/// The hops Quay's upgrade path chooses are planned, pinned and fixed: `apply` goes through
/// them, not through what the registry's tags would choose then.
#[test]
fn a_plan_fixes_and_pins_the_hops_of_the_profile_s_upgrade_path() {
    let scene = Scene::new("planpath");
    let site = quay_site(&scene);
    let (quay, port) = site.node(&scene, "quay", &product("projectquay/quay:v3.8.0"), &[]);
    http_get_eventually(port, "/health/instance");
    let (file, json) = plan(&scene, "plan", &quay, &["--to", "v3.10.0"]);
    let planned = &json["upgrades"][0];
    let hop = planned["via"][0].as_str().unwrap();
    assert!(
        hop.starts_with(&format!("{}@sha256:", product("projectquay/quay:v3.9.0"))),
        "{planned}"
    );
    assert_eq!(
        planned["asked"]["target"]["via"],
        serde_json::json!(["v3.9.0"])
    );
    scene.cutover(&["apply", &file, "--yes"]).expect(0);
    let image = crate::products::image_of(&quay);
    assert!(
        image.starts_with(&format!("{}@sha256:", product("projectquay/quay:v3.10.0"))),
        "{image}"
    );
    assert!(scene.journal_text().contains(hop));
}

/// A Swarm service's plan holds its target pinned too: the tag pushed again, the service is
/// updated to the planned digest.
#[test]
fn a_plan_of_a_swarm_service_runs_its_pinned_digest() {
    let scene = Scene::new("plansvc");
    let repo = format!("{}/plan-{}", registry(), scene.prefix);
    for tag in ["1", "2"] {
        push(&repo, tag, tag);
    }
    let (engine, host) = crate::swarm::swarm(&scene);
    let env = [("DOCKER_HOST", host.as_str())];
    let name = scene.name("web");
    crate::swarm::service(&engine, &name, 1, &format!("{repo}:1"), &[]);
    let file = temp_dir(&scene, "plan").join("plan.json");
    let file = file.display().to_string();
    let args = ["plan", &name, "--to", "2", "--settle", "1s", "--out", &file];
    scene.cutover_with_env(&args, &env).expect(0);
    let json: Value = serde_json::from_str(&read(std::path::Path::new(&file))).unwrap();
    let to = json["upgrades"][0]["to"].as_str().unwrap().to_string();
    assert!(to.starts_with(&format!("{repo}:2@sha256:")), "{json}");

    push(&repo, "2", "3");
    scene
        .cutover_with_env(&["apply", &file, "--yes"], &env)
        .expect(0);
    assert_eq!(crate::swarm::spec_image(&engine, &name), to);
}
