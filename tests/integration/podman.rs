//! The core promises on Podman's Docker-compatible service (the world's private rootful one),
//! reached as Podman's users point Docker tools at it: `DOCKER_HOST`. Each difference from
//! Docker that cutover handles (see `src/engine/podman.rs`) is met by a case here.

use std::path::Path;

use serde_json::Value;

use crate::auto::{config, webhook};
use crate::backups::{
    killed_migration_recovered_onto_the_database, mariadb_restored_across_a_failed_migration,
    server_volume_copied_and_back, snapshot_taken_and_put_back, volumes_round_trip,
};
use crate::campaigns::two_hops;
use crate::compose::compose_keeps_the_new_tag;
use crate::helpers::*;
use crate::products::{
    anchore_group_moves_together, anchore_with, devlake_moved_with_its_env_file_and_key,
    proget_upgraded_by_its_upgradedb_command,
};
use crate::recover::killed_after_the_rename_is_put_back;
use crate::rehearse::mariadb_rehearsed_on_a_copy;
use crate::rollback::rolled_back_to_the_kept_old_container;
use crate::steps::{carried_with_its_mode_and_owner, hooks_run_inside_both};
use crate::tasks::own_task_runs_in_a_one_shot;
use crate::upgrade::assert_rolled_back;

/// `demo:TAG` on Podman, its port 8080 on a free loopback port, with `options` besides.
fn served(scene: &Scene, tag: &str, options: &[&str]) -> (String, u16) {
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let all = [&["-p", publish.as_str()][..], options].concat();
    (scene.run("app", &all, tag), port)
}

/// Podman reports ulimits as `RLIMIT_NOFILE`, gives each container a random MAC address and
/// writes its own `HOSTNAME` and `container=podman` into its environment; its create refuses
/// the first and ignores the second. The new version keeps the container's volume,
/// environment and limits, names its own host, and serves; the plan says it ran on Podman.
#[test]
fn an_upgrade_on_podman_keeps_the_data_the_settings_and_the_limits() {
    upgraded_keeping_the_data_and_the_settings(&Scene::on_podman("podup"), true);
}

/// A rootless Podman (its service run by a user with subordinate ids, containers on its own
/// network namespace through slirp4netns): the same upgrade keeps the data, its owners and
/// the settings. Its container's address on its network is the namespace's, not the host's:
/// the new version is judged through the port it publishes on the host's loopback. (Its
/// Docker-compatible create ignores `--ulimit`, measured: there is no limit to carry.)
#[test]
fn an_upgrade_on_rootless_podman_keeps_the_data_and_is_judged_where_it_publishes() {
    let out = upgraded_keeping_the_data_and_the_settings(
        &Scene::on_rootless_podman("podrootless"),
        false,
    );
    let judged = step_detail(&out.json(), "await_healthy").to_string();
    assert!(
        judged.contains("published as 127.0.0.1:") && !judged.contains("its address on network"),
        "{judged}"
    );
}

/// The upgrade of a container with a volume (a file of user 999's in it), an environment and,
/// with `limits`, limits of its own, on the scene's Podman, from 1 to 2: its outcome.
fn upgraded_keeping_the_data_and_the_settings(scene: &Scene, limits: bool) -> Outcome {
    let volume = scene.name("data");
    let mount = format!("{volume}:/data");
    let mut options = vec!["-v", &mount, "-e", "KEPT=yes"];
    if limits {
        options.extend([
            "--ulimit",
            "nofile=1000:1000",
            "--ulimit",
            "nproc=2000:2000",
        ]);
    }
    let (name, port) = served(scene, "1", &options);
    http_get_eventually(port, "/");
    let mine = "echo written-on-1 > /data/mine && chown 999:999 /data/mine";
    docker(&["exec", &name, "sh", "-c", mine]);
    let old_id = id_of(&name);
    let out = scene.upgrade(&name, "2", &["--json", "--settle", "2s"]);
    out.expect(0);
    assert!(
        out.json()["notes"].to_string().contains("Podman Engine"),
        "the plan says which engine it ran on: {}",
        out.stdout
    );
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert_eq!(
        docker(&["exec", &name, "cat", "/data/mine"]),
        "written-on-1"
    );
    let c = inspect(&name).unwrap();
    let env = c["Config"]["Env"].to_string();
    assert!(env.contains("KEPT=yes"), "{env}");
    assert_eq!(
        docker(&["exec", &name, "stat", "-c", "%u:%g", "/data/mine"]),
        "999:999"
    );
    let carried = c["HostConfig"]["Ulimits"].to_string();
    assert!(
        !limits || carried.contains("1000"),
        "the container's own limit was carried: {carried}"
    );
    let host = docker(&["exec", &name, "hostname"]);
    assert!(!old_id.starts_with(&host), "a host of its own: {host}");
    assert_eq!(
        docker(&["exec", &name, "sh", "-c", "echo $HOSTNAME"]),
        host,
        "Podman's own HOSTNAME of the old container was not carried"
    );
    assert_no_leftovers(&name);
    out
}

/// A version that crashes as it starts is rolled back to the same container on Podman, whose
/// data is intact.
#[test]
fn a_crashing_version_on_podman_goes_back_to_the_same_container() {
    crashing_version_goes_back(&Scene::on_podman("podcrash"));
}

/// The same on a rootless Podman.
#[test]
fn a_crashing_version_on_rootless_podman_goes_back_to_the_same_container() {
    crashing_version_goes_back(&Scene::on_rootless_podman("podrlcrash"));
}

/// An upgrade of `demo:1` (restarted always) to a version that crashes as it starts, on the
/// scene's Podman: back to the same container, serving.
fn crashing_version_goes_back(scene: &Scene) {
    let (name, port) = served(scene, "1", &["--restart", "always"]);
    http_get_eventually(port, "/");
    let before = inspect(&name).unwrap();
    let crash = image("crash");
    let out = scene.cutover(&[
        "upgrade", &name, "--image", &crash, "--yes", "--json", "--settle", "5s",
    ]);
    assert_rolled_back(scene, &name, port, &before, &out);
}

/// A run killed right after it renamed the old container aside on Podman: `recover` puts the
/// same container back under its name, running on its data.
#[test]
fn a_run_killed_on_podman_is_put_back_by_recover() {
    killed_then_recovered(&Scene::on_podman("podkill"));
}

/// The same on a rootless Podman.
#[test]
fn a_run_killed_on_rootless_podman_is_put_back_by_recover() {
    killed_then_recovered(&Scene::on_rootless_podman("podrlkill"));
}

/// `demo:1` on the scene's Podman, its upgrade killed after the rename, then `recover`.
fn killed_then_recovered(scene: &Scene) {
    let (name, port) = served(scene, "1", &[]);
    http_get_eventually(port, "/");
    killed_after_the_rename_is_put_back(scene, &name, port);
}

/// Quay's profile on Podman, as Red Hat's standalone procedure runs it: its PostgreSQL, run by
/// Podman too, is backed up before the migration and restored, byte for byte, when the new
/// version fails after it; the next upgrade then goes through.
#[test]
fn quay_on_podman_is_migrated_and_its_database_restored_when_it_fails() {
    let scene = Scene::on_podman("podquay");
    let site = quay_site(&scene);
    let (name, port) = site.node(&scene, "quay", &product("projectquay/quay:v3.8.0"), &[]);
    http_get_eventually(port, "/health/instance");
    let pg = |query: &str| sql(&site.db, "quay", "quay", query);
    pg("CREATE TABLE repositories (id serial PRIMARY KEY, name text); INSERT INTO repositories (name) SELECT 'repo-' || g FROM generate_series(1, 500) g");
    let before = pg_dump_plain(&site.db, "quay", "quay");

    let failed = scene.upgrade(&name, "v3.9.0", &["--json", "--exec-after", "false"]);
    failed.expect(1);
    assert!(
        failed.json()["restored"].to_string().contains("quay"),
        "the rollback restored the database: {}",
        failed.stdout
    );
    assert_eq!(pg("SELECT version FROM emulator_schema"), "3.8.0");
    assert_eq!(pg_dump_plain(&site.db, "quay", "quay"), before);
    assert!(http_get_eventually(port, "/health/instance").contains("\"status_code\":200"));

    let passed = scene.upgrade(&name, "v3.9.0", &["--json"]);
    passed.expect(0);
    assert_eq!(pg("SELECT version FROM emulator_schema"), "3.9.0");
    assert_eq!(pg("SELECT count(*) FROM repositories"), "500");
    assert_no_leftovers(&name);
}

/// A container Podman's own auto-update manages (its label `io.containers.autoupdate`) is not
/// moved by an unattended pass, which `check` says with the target it would take; an upgrade by
/// hand notes the race in its plan.
#[test]
fn a_container_podmans_auto_update_manages_is_left_to_it_unless_moved_by_hand() {
    let scene = Scene::on_podman("podautoupdate");
    let name = scene.run_image(
        "app",
        &["--label", "io.containers.autoupdate=registry"],
        &format!("{}/auto-a:1.0.0", registry()),
    );
    let checked = scene.cutover(&["check", "--json", &name]);
    checked.expect(0);
    let status = checked.json()["containers"][0].clone();
    assert_eq!(status["eligible"], false, "{status}");
    let reason = status["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("1.0.1 would be next")
            && reason.contains("io.containers.autoupdate=registry"),
        "{reason}"
    );
    let planned = scene.upgrade(&name, "1.0.1", &["--dry-run", "--json"]);
    planned.expect(0);
    assert!(
        planned.json()["notes"]
            .to_string()
            .contains("two tools would race"),
        "{}",
        planned.stdout
    );
}

/// `check`'s first container would move to `target`.
fn assert_target(checked: &Outcome, target: &str) {
    assert_eq!(
        checked.json()["containers"][0]["target"],
        target,
        "{}",
        checked.stdout
    );
}

/// `podman` on the world's service, for what the Docker CLI cannot do (pods).
fn podman(args: &[&str]) -> String {
    let url = std::env::var("CUTOVER_TEST_PODMAN").expect("CUTOVER_TEST_PODMAN is not set");
    let out = std::process::Command::new("podman")
        .args(["--remote", "--url", &url])
        .args(args)
        .output()
        .expect("podman runs");
    succeeded(&format!("podman {args:?}"), out)
}

/// A pod this test made, removed with its containers however the test ends.
struct Pod(String);

impl Drop for Pod {
    fn drop(&mut self) {
        let _ = std::panic::catch_unwind(|| podman(&["pod", "rm", "-f", &self.0]));
    }
}

/// A container in a Podman pod is never taken out of it: a new container made through the
/// Docker-compatible API would share the pod's namespaces without being its member. `upgrade`
/// refuses it before anything stops (exit 2, the container untouched) and `check` says why it
/// is not eligible.
#[test]
fn a_container_in_a_podman_pod_is_refused_and_left_in_its_pod() {
    let scene = Scene::on_podman("podpod");
    let pod = Pod(scene.name("pod"));
    podman(&["pod", "create", "--name", &pod.0]);
    let name = scene.name("app");
    let app = format!("{}/auto-a:1.0.0", registry());
    podman(&["run", "-d", "--pod", &pod.0, "--name", &name, &app]);
    let before = inspect(&name).unwrap();
    scene.upgrade(&name, "1.0.1", &[]).refused(&[
        "is in a Podman pod",
        "-infra",
        "podman run --pod",
    ]);
    assert_untouched(&name, &before);
    let members = podman(&[
        "ps",
        "--filter",
        &format!("pod={}", pod.0),
        "--format",
        "{{.Names}}",
    ]);
    assert!(
        members.lines().any(|m| m == name),
        "still a member of its pod: {members}"
    );
    let checked = scene.cutover(&["check", "--json", &name]);
    checked.expect(0);
    let status = checked.json()["containers"][0].clone();
    assert_eq!(status["eligible"], false, "{status}");
    assert!(
        status["reason"]
            .as_str()
            .is_some_and(|r| r.contains("1.0.1 would be next") && r.contains("is in a Podman pod")),
        "{status}"
    );
}

/// An operator of Podman logs in with `podman login`, which writes only its own auth.json:
/// `check` and the engine's pull find the login there, in the order containers-auth.json(5)
/// gives (`REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`), with no
/// Docker config at all; without it the registry refuses (401). No password is shown.
#[test]
fn podmans_own_login_file_reaches_an_authenticated_registry() {
    let scene = Scene::on_podman("podlogin");
    let image = format!("{}/private/app:1.0.0", auth_registry());
    let runtime = temp_dir(&scene, "xdg-runtime");
    let login = podman_login_file(runtime.join("containers/auth.json"));
    podman(&["pull", "--authfile", login.to_str().unwrap(), &image]);
    let name = scene.run_image("app", &["--init"], &image);
    let home = temp_dir(&scene, "home");
    let nowhere = temp_dir(&scene, "nowhere");
    let env = |runtime: &Path| {
        [
            ("HOME", home.to_str().unwrap().to_string()),
            (
                "DOCKER_CONFIG",
                home.join(".docker").to_str().unwrap().into(),
            ),
            ("XDG_RUNTIME_DIR", runtime.to_str().unwrap().into()),
        ]
    };
    let run = |args: &[&str], env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        scene.cutover_with_env(args, &env)
    };
    let anonymous = run(&["check", "--json", &name], &env(&nowhere));
    let reason = anonymous.json()["containers"][0]["reason"].to_string();
    assert!(
        reason.contains("401") && reason.contains("podman login"),
        "{reason}"
    );

    let checked = run(&["check", "--json", &name], &env(&runtime));
    let target = format!("{}/private/app:1.0.1", auth_registry());
    assert_target(&checked, &target);
    // The file REGISTRY_AUTH_FILE names stands for the primary one.
    let elsewhere = podman_login_file(home.join("auth.json"));
    let mut named = env(&nowhere).to_vec();
    named.push(("REGISTRY_AUTH_FILE", elsewhere.to_str().unwrap().into()));
    let upgraded = run(
        &["upgrade", &name, "--to", "1.0.1", "--yes", "--settle", "1s"],
        &named,
    );
    upgraded.expect(0);
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], target.as_str());
    for out in [&anonymous, &checked, &upgraded] {
        assert!(!out.stdout.contains(REGISTRY_PASSWORD) && !out.stderr.contains(REGISTRY_PASSWORD));
    }
    assert!(!scene.journal_text().contains(REGISTRY_PASSWORD));
}

/// Images this test tagged on Podman's host, removed however it ends.
struct Tagged(Vec<String>);

impl Drop for Tagged {
    fn drop(&mut self) {
        for image in &self.0 {
            let _ = std::panic::catch_unwind(|| podman(&["rmi", "-f", image]));
        }
    }
}

/// `podman run -d --name NAME OPTIONS IMAGE` through Podman's own CLI, as its users run it.
fn podman_run(scene: &Scene, what: &str, options: &[&str], image: &str) -> String {
    let name = scene.name(what);
    podman(&[&["run", "-d", "--name", &name][..], options, &[image]].concat());
    name
}

/// A container created from a short name (`auto-a:1.0.0`) that Podman found in its storage
/// reports the name in full, the registry's (`Config.Image`), as one Podman found through
/// `unqualified-search-registries` does: `check` and `upgrade --to` work on it as given.
#[test]
fn a_container_podman_made_from_a_short_name_is_checked_and_upgraded() {
    let scene = Scene::on_podman("podshort");
    let full = format!("{}/auto-a:1.0.0", registry());
    podman(&["pull", &full]);
    let name = podman_run(&scene, "app", &[], "auto-a:1.0.0");
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], full.as_str());
    let checked = scene.cutover(&["check", "--json", &name]);
    let next = format!("{}/auto-a:1.0.1", registry());
    assert_target(&checked, &next);
    scene.upgrade(&name, "1.0.1", &["--settle", "1s"]).expect(0);
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], next.as_str());
}

/// An image built or tagged on Podman's host is `localhost/NAME`, which no registry serves:
/// `check` says so without asking one; an upgrade to a tag not built there fails before
/// anything stops, saying what to do; one to a tag built there uses it without a pull.
#[test]
fn an_image_podman_built_on_its_host_is_upgraded_without_a_registry() {
    let scene = Scene::on_podman("podbuilt");
    let built = format!("localhost/{}", scene.name("built"));
    let tagged = Tagged(vec![format!("{built}:1"), format!("{built}:2")]);
    podman(&["pull", &image("1")]);
    podman(&["pull", &image("2")]);
    podman(&["tag", &image("1"), &tagged.0[0]]);
    podman(&["tag", &image("2"), &tagged.0[1]]);
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let short = format!("{}:1", scene.name("built"));
    let name = podman_run(&scene, "app", &["-p", &publish], &short);
    assert_eq!(
        inspect(&name).unwrap()["Config"]["Image"],
        tagged.0[0].as_str()
    );
    http_get_eventually(port, "/");

    let checked = scene.cutover(&["check", "--json", &name]);
    let reason = checked.json()["containers"][0]["reason"].to_string();
    assert!(
        reason.contains("built or tagged on Podman's host"),
        "{reason}"
    );

    let before = inspect(&name).unwrap();
    let missing = scene.upgrade(&name, "3", &[]);
    assert_ne!(missing.code, 0, "{}", missing.stdout);
    assert!(
        missing.stderr.contains("is not on Podman's host")
            || missing.stdout.contains("is not on Podman's host"),
        "{} {}",
        missing.stdout,
        missing.stderr
    );
    assert_untouched(&name, &before);

    scene.upgrade(&name, "2", &["--settle", "1s"]).expect(0);
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert_eq!(
        inspect(&name).unwrap()["Config"]["Image"],
        tagged.0[1].as_str()
    );
}

/// A container a systemd unit runs (`podman generate systemd --new`, whose `ExecStart` runs
/// `podman run ... IMAGE` and whose containers Podman labels `PODMAN_SYSTEMD_UNIT`): `check`
/// names the unit and its file; a failed upgrade leaves the file byte for byte; one that
/// serves writes the new image in it, and its plan says to `systemctl daemon-reload`. The unit
/// directory is given by `CUTOVER_UNIT_PATH`: this machine runs no systemd.
#[test]
fn the_unit_that_runs_a_podman_container_is_kept_true_to_its_new_image() {
    let scene = Scene::on_podman("podunit");
    let port = free_port();
    let publish = format!("127.0.0.1:{port}:8080");
    let unit = format!("container-{}.service", scene.name("app"));
    let label = format!("PODMAN_SYSTEMD_UNIT={unit}");
    let name = podman_run(
        &scene,
        "app",
        &["-p", &publish, "--label", &label],
        &image("1"),
    );
    http_get_eventually(port, "/");
    let units = temp_dir(&scene, "units");
    let file = units.join(&unit);
    let generated = podman(&["generate", "systemd", "--new", "--name", &name]);
    std::fs::write(&file, format!("{generated}\n")).unwrap();
    let before = read(&file);
    assert!(before.contains(&image("1")), "{before}");
    let dirs = units.to_str().unwrap();
    let env = [("CUTOVER_UNIT_PATH", dirs)];

    let checked = scene.cutover_with_env(&["check", "--json", &name], &env);
    let reason = checked.json()["containers"][0]["reason"].to_string();
    assert!(
        reason.contains(&format!("systemd unit {unit} runs it"))
            && reason.contains(file.to_str().unwrap()),
        "{reason}"
    );
    let nowhere = temp_dir(&scene, "nowhere");
    let lost = scene.cutover_with_env(
        &["check", "--json", &name],
        &[("CUTOVER_UNIT_PATH", nowhere.to_str().unwrap())],
    );
    let reason = lost.json()["containers"][0]["reason"].to_string();
    assert!(
        reason.contains("would bring back the image it names"),
        "{reason}"
    );

    let crashed = scene.cutover_with_env(
        &["upgrade", &name, "--to", "crash", "--yes", "--settle", "3s"],
        &env,
    );
    crashed.expect(1);
    assert_eq!(read(&file), before, "byte for byte");

    let upgraded = scene.cutover_with_env(
        &[
            "upgrade", &name, "--to", "2", "--yes", "--json", "--settle", "1s",
        ],
        &env,
    );
    upgraded.expect(0);
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert_eq!(read(&file), before.replace(&image("1"), &image("2")));
    let notes = upgraded.json()["notes"].to_string();
    assert!(
        notes.contains("systemctl daemon-reload") && notes.contains(&unit),
        "{notes}"
    );
}

/// A Quadlet `.container` file (Podman 4.4+ makes `NAME.service` of it), its image written
/// short: the upgrade writes the new image in its `Image=`, comments and the rest kept.
#[test]
fn a_quadlet_files_image_is_kept_true_to_the_new_version() {
    let scene = Scene::on_podman("podquadlet");
    let stem = scene.name("app");
    let label = format!("PODMAN_SYSTEMD_UNIT={stem}.service");
    let name = podman_run(&scene, "app", &["--label", &label], &image("1"));
    let units = temp_dir(&scene, "quadlet");
    let file = units.join(format!("{stem}.container"));
    let short = |tag: &str| format!("demo:{tag}");
    let quadlet = |image: &str| {
        format!("# the demo\n[Container]\nContainerName={name}\nImage={image}\n\n[Install]\nWantedBy=default.target\n")
    };
    std::fs::write(&file, quadlet(&short("1"))).unwrap();
    let env = [("CUTOVER_UNIT_PATH", units.to_str().unwrap())];
    let upgraded = scene.cutover_with_env(
        &["upgrade", &name, "--to", "2", "--yes", "--settle", "1s"],
        &env,
    );
    upgraded.expect(0);
    assert_eq!(read(&file), quadlet(&image("2")));
}

/// `backup --backup-volumes` and `restore` on Podman, whose archive API reports every file as
/// 0:0 (measured): taken and put back with `tar` in a one-shot of the app's image, a volume's
/// files come back byte for byte with their owners, modes and links.
#[test]
fn volumes_round_trip_on_podman() {
    volumes_round_trip(&Scene::on_podman("podvolumes"));
}

/// The same on a rootless Podman, whose volumes hold the files of its user's subordinate ids:
/// they come back as the container sees them.
#[test]
fn volumes_round_trip_on_rootless_podman() {
    volumes_round_trip(&Scene::on_rootless_podman("podrlvolumes"));
}

/// `task` on Podman: a profile's task runs in a one-shot on the app's volume while it is stopped.
#[test]
fn a_task_runs_on_podman() {
    own_task_runs_in_a_one_shot(&Scene::on_podman("podtask"));
}

/// A campaign of two hops (`--via`) on Podman, in one run.
#[test]
fn two_hops_on_podman() {
    two_hops(&Scene::on_podman("podhops"));
}

/// `check` on Podman, which has no Swarm: its services endpoint answers 404, taken for no
/// services (every `check --all` and `auto` pass on Podman was refused before). Beside it a
/// container Podman keeps restarting, which reads `stopped` between its runs, a state Docker's
/// API has no word for: a list of containers that meets it is asked again (seen once refusing
/// Quay's upgrade in CI; this loop meets that moment only sometimes).
#[test]
fn check_reads_podmans_containers_beside_one_it_keeps_restarting() {
    let scene = Scene::on_podman("podlist");
    scene.run_image("loop", &["--restart", "always"], &image("crash"));
    for _ in 0..30 {
        scene.cutover(&["check", "--all", "--json"]).expect(0);
    }
}

/// `check`'s entry for `name` among the containers it reported.
fn status_of(checked: &Outcome, name: &str) -> Value {
    checked.json()["containers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["container"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("check did not report {name}: {}", checked.stdout))
}

/// `auto` on Podman: a container opted in by its label and one by the config file are seen by
/// `check` for what they are, eligible, and upgraded by one pass, which notifies its webhook.
#[test]
fn auto_on_podman_upgrades_the_opted_in_containers_and_notifies() {
    let _turn = auto_turn();
    auto_upgrades_the_opted_in(&Scene::on_podman("podauto"));
}

/// The same pass on rootless Podman.
#[test]
fn auto_on_rootless_podman_upgrades_the_opted_in_containers_and_notifies() {
    let _turn = auto_turn();
    auto_upgrades_the_opted_in(&Scene::on_rootless_podman("rlauto"));
}

/// A container opted in by its label and one by the config file: `check` sees both eligible,
/// one `auto` pass upgrades both and notifies its webhook.
fn auto_upgrades_the_opted_in(scene: &Scene) {
    let reg = registry();
    let labelled = scene.run_image(
        "a",
        &["--init", "-l", "cutover.enable=true"],
        &format!("{reg}/auto-a:1.0.0"),
    );
    let listed = scene.run_image("b", &["--init"], &format!("{reg}/auto-b:1.0.0"));
    let (url, hook) = webhook();
    let cfg = config(
        scene,
        &format!("webhook: {url}\ncontainers:\n  {listed}: {{policy: patch}}\n"),
    );
    let checked = scene.cutover(&["check", "--json", "--config", &cfg]);
    checked.expect(0);
    for (name, repo) in [(&labelled, "auto-a"), (&listed, "auto-b")] {
        let status = status_of(&checked, name);
        assert_eq!(status["eligible"], true, "{status}");
        assert_eq!(status["target"], format!("{reg}/{repo}:1.0.1"), "{status}");
    }

    let out = scene.cutover(&["auto", "--config", &cfg, "--json", "--settle", "1s"]);
    out.expect(10);
    let results = out.json()["pass"]["results"].clone();
    for (name, repo) in [(&labelled, "auto-a"), (&listed, "auto-b")] {
        let result = results
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["container"] == name.as_str())
            .unwrap_or_else(|| panic!("{name} was not in the pass: {results}"));
        assert_eq!(result["result"], "upgraded", "{result}");
        assert_eq!(
            inspect(name).unwrap()["Config"]["Image"],
            format!("{reg}/{repo}:1.0.1")
        );
    }
    let body: Value = serde_json::from_str(&hook.join().unwrap()).unwrap();
    let told = body["containers"].to_string();
    assert!(told.contains(&labelled) && told.contains(&listed), "{body}");
}

/// On Podman, the passes that only plan (`plan --all`, `auto --approval`) read `podman login`'s
/// file before Docker's config, as `check` and `upgrade` do: an old Docker login for the same
/// registry, which it refuses, is not the one used. No password is shown.
#[test]
fn plans_on_podman_take_podmans_login_before_an_old_docker_one() {
    use base64::Engine as _;
    let _turn = auto_turn();
    let scene = Scene::on_podman("podplanlogin");
    let image = format!("{}/private/app:1.0.0", auth_registry());
    let runtime = temp_dir(&scene, "xdg-runtime");
    let login = podman_login_file(runtime.join("containers/auth.json"));
    podman(&["pull", "--authfile", login.to_str().unwrap(), &image]);
    let name = scene.run_image("app", &[], &image);
    let home = temp_dir(&scene, "home");
    let docker_config = home.join(".docker");
    std::fs::create_dir_all(&docker_config).unwrap();
    let old = base64::engine::general_purpose::STANDARD.encode("cutover:an-old-password");
    std::fs::write(
        docker_config.join("config.json"),
        format!(
            "{{\"auths\":{{\"{}\":{{\"auth\":\"{old}\"}}}}}}",
            auth_registry()
        ),
    )
    .unwrap();
    let env = [
        ("HOME", home.to_str().unwrap()),
        ("DOCKER_CONFIG", docker_config.to_str().unwrap()),
        ("XDG_RUNTIME_DIR", runtime.to_str().unwrap()),
    ];
    let cfg = config(
        &scene,
        &format!("settle: 1s\ncontainers:\n  {name}: {{policy: patch}}\n"),
    );
    let target = format!("{}/private/app:1.0.1@sha256:", auth_registry());

    let file = temp_dir(&scene, "plan").join("plan.json");
    let file = file.to_str().unwrap();
    let all = scene.cutover_with_env(&["plan", "--all", "--config", &cfg, "--out", file], &env);
    all.expect(0);
    let written: Value = serde_json::from_str(&read(Path::new(file))).unwrap();
    let planned = written["upgrades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["container"] == name.as_str())
        .unwrap_or_else(|| panic!("{name} was not planned: {written}"));
    assert!(
        planned["to"].as_str().unwrap().starts_with(&target),
        "{planned}"
    );

    let approval =
        scene.cutover_with_env(&["auto", "--approval", "--config", &cfg, "--json"], &env);
    approval.expect(0);
    assert!(
        approval.json()["summary"].to_string().contains(&name),
        "{}",
        approval.stdout
    );
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image.as_str());
    for out in [&all, &approval] {
        assert!(!out.stdout.contains(REGISTRY_PASSWORD) && !out.stderr.contains(REGISTRY_PASSWORD));
    }
}

/// A product's group on Podman: Anchore's three services on one PostgreSQL, all run by Podman,
/// move together and go back together, as on Docker. Without their image's HEALTHCHECK, which
/// Podman runs from systemd timers, and this machine has no systemd: it would stay `starting`
/// (see README); cutover asks their profile's health endpoint.
#[test]
fn anchore_services_on_podman_move_together_and_go_back_together() {
    let a = anchore_with(Scene::on_podman("podanchore"), "anchore", &[], |_, _| {
        vec!["--no-healthcheck".into()]
    });
    anchore_group_moves_together(&a);
}

/// `rollback` on Podman, after `upgrade --keep-old`: the kept container serves again.
#[test]
fn rollback_on_podman_returns_to_the_kept_old_container() {
    let scene = Scene::on_podman("podrollback");
    let (name, port) = scene.run_published("app", "1");
    rolled_back_to_the_kept_old_container(&scene, &name, port);
}

/// Podman runs a HEALTHCHECK from a systemd timer, and this machine runs no systemd: a version
/// with one never reports healthy. The upgrade goes back when its health timeout ends, and says
/// why, not only that it was still starting.
#[test]
fn a_healthcheck_podman_never_runs_is_named_when_the_upgrade_goes_back() {
    let scene = Scene::on_podman("podnohealth");
    let (name, port) = served(&scene, "1", &["--init"]);
    http_get_eventually(port, "/");
    let out = scene.upgrade(&name, "healthy", &["--json", "--health-timeout", "4s"]);
    out.expect(1);
    let failure = out.json()["failure"].to_string();
    assert!(
        failure.contains("Podman never ran its HEALTHCHECK"),
        "{failure}"
    );
    assert!(http_get_eventually(port, "/").contains("version=1"));
}

/// A database kept by its dump on Podman: MariaDB's, restored when version 2's migration
/// passes and the version then fails, as on Docker.
#[test]
fn mariadb_on_podman_is_restored_across_a_failed_migration() {
    mariadb_restored_across_a_failed_migration(&Scene::on_podman("podmaria"));
}

/// DevLake on Podman: its `.env`, which lives on no volume, is carried through Podman's archive
/// API, and `ENCRYPTION_SECRET` given from its `ENCODE_KEY`, as on Docker.
#[test]
fn devlake_on_podman_keeps_its_env_file_and_key() {
    devlake_moved_with_its_env_file_and_key(&Scene::on_podman("podlake"));
}

/// ProGet on Podman: Inedo's `upgradedb` one-shot on each side of 2025 and a failed migration
/// rolled back onto its database, as on Docker.
#[test]
fn proget_on_podman_is_upgraded_by_its_upgradedb_command() {
    proget_upgraded_by_its_upgradedb_command(&Scene::on_podman("podproget"));
}

/// A file on no volume carried on Podman keeps its mode and owner, though Podman's archive API
/// names every file's owner `0:0`.
#[test]
fn a_file_carried_on_podman_keeps_its_mode_and_owner() {
    carried_with_its_mode_and_owner(&Scene::on_podman("podcarry"));
}

/// Commands run inside Podman's containers, their exit codes read as on Docker.
#[test]
fn hooks_run_inside_podmans_containers() {
    hooks_run_inside_both(&Scene::on_podman("podhooks"));
}

/// A PostgreSQL run by Podman: its database copied on the server, put back after a failure.
#[test]
fn a_snapshot_on_podman_is_taken_and_put_back() {
    snapshot_taken_and_put_back(&Scene::on_podman("podsnapshot"));
}

/// A PostgreSQL server of the product alone, run by Podman, copied as its volume and back.
#[test]
fn a_server_volume_on_podman_is_copied_and_copied_back() {
    server_volume_copied_and_back(&Scene::on_podman("podpgvolume"));
}

/// A run killed during its migration on Podman: `recover` restores the database.
#[test]
fn a_run_killed_during_its_migration_on_podman_is_recovered_onto_its_database() {
    killed_migration_recovered_onto_the_database(&Scene::on_podman("podpgkill"));
}

/// docker-compose pointed at Podman's service: the project's file keeps the new tag.
#[test]
fn compose_on_podman_keeps_the_new_tag() {
    compose_keeps_the_new_tag(&Scene::on_podman("podcompose"));
}

/// A rehearsal on Podman: the migration runs on a copy of MariaDB, production untouched.
#[test]
fn a_rehearsal_on_podman_runs_on_a_copy() {
    mariadb_rehearsed_on_a_copy(&Scene::on_podman("podrehearse"));
}

/// Rootless: MariaDB's dump restored across a failed migration.
#[test]
fn mariadb_on_rootless_podman_is_restored_across_a_failed_migration() {
    mariadb_restored_across_a_failed_migration(&Scene::on_rootless_podman("rlmaria"));
}

/// Rootless: a PostgreSQL database copied on its server and put back.
#[test]
fn a_snapshot_on_rootless_podman_is_taken_and_put_back() {
    snapshot_taken_and_put_back(&Scene::on_rootless_podman("rlsnapshot"));
}

/// Rootless: a file carried keeps its mode and its owner, mapped through the subordinate ids.
#[test]
fn a_file_carried_on_rootless_podman_keeps_its_mode_and_owner() {
    carried_with_its_mode_and_owner(&Scene::on_rootless_podman("rlcarry"));
}

/// Rootless: the rehearsal on a copy, on the user's own internal network.
#[test]
fn a_rehearsal_on_rootless_podman_runs_on_a_copy() {
    mariadb_rehearsed_on_a_copy(&Scene::on_rootless_podman("rlrehearse"));
}

/// Rootless: DevLake with its `.env` and key.
#[test]
fn devlake_on_rootless_podman_keeps_its_env_file_and_key() {
    devlake_moved_with_its_env_file_and_key(&Scene::on_rootless_podman("rllake"));
}
