//! Bad input and unsafe requests: a clear error, exit code 2, and nothing changed.

use std::time::Duration;

use crate::helpers::*;

#[test]
fn without_a_terminal_and_without_yes_it_refuses_rather_than_hangs() {
    let scene = Scene::new("notty");
    let name = scene.run("app", &["--init"], "1");
    let before = inspect(&name).unwrap();
    let out = scene.cutover(&["upgrade", &name, "--to", "2"]);
    out.expect(2);
    assert!(out.stderr.contains("--yes"), "{}", out.stderr);
    assert_untouched(&name, &before);
}

#[test]
fn unknown_containers_and_kept_aside_names_are_refused() {
    let scene = Scene::new("badname");
    let missing = scene.name("nothing");
    let out = scene.upgrade(&missing, "2", &["--json"]);
    out.expect(2);
    assert!(
        out.json()["error"]
            .as_str()
            .unwrap()
            .contains("no container named"),
        "{}",
        out.stdout
    );
    let name = scene.run("app-old", &["--init"], "1");
    let out = scene.upgrade(&name, "2", &[]);
    out.expect(2);
    assert!(out.stderr.contains("keeps aside"), "{}", out.stderr);
    let out = scene.cutover(&["upgrade", &name, "--to", "2", "--image", "x:1", "--yes"]);
    out.expect(2);
    let out = scene.upgrade(&name, "2", &["--health-timeout", "soon"]);
    out.expect(2);
    assert!(
        out.stderr.contains("90s"),
        "durations are explained: {}",
        out.stderr
    );
}

#[test]
fn a_container_started_with_rm_is_refused() {
    let scene = Scene::new("autorm");
    let name = scene.run("app", &["--init", "--rm"], "1");
    let before = inspect(&name).unwrap();
    let out = scene.upgrade(&name, "2", &[]);
    out.expect(2);
    assert!(out.stderr.contains("--rm"), "{}", out.stderr);
    assert_untouched(&name, &before);
}

#[test]
fn a_second_run_on_the_same_container_is_refused_while_the_first_works() {
    let scene = Scene::new("concurrent");
    let name = scene.run("app", &["--init"], "1");
    let mut first = scene.spawn(&["upgrade", &name, "--to", "slow", "--yes"], &[]);
    scene.wait_for_journal("\"index\":0,\"phase\":\"started\"", Duration::from_secs(30));
    let second = scene.upgrade(&name, "3", &[]);
    second.expect(2);
    assert!(
        second.stderr.contains(&format!(
            "another cutover run is working on {name} right now (held by cutover process {}",
            first.id()
        )),
        "it says who holds it: {}",
        second.stderr
    );
    let first = first.wait().expect("first run ends");
    assert_eq!(first.code(), Some(0), "the first run is not disturbed");
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("slow"));
}

#[test]
fn a_run_on_another_member_of_a_group_under_way_is_refused_at_once() {
    let scene = Scene::new("concurrentgroup");
    let web = scene.run("web", &["--init"], "1");
    let worker = scene.run("worker", &["--init"], "1");
    let mut group = scene.spawn(
        &["upgrade", &web, "--with", &worker, "--to", "2", "--yes"],
        &[("CUTOVER_PAUSE_AFTER", "1")],
    );
    scene.wait_for_journal("\"index\":0,\"phase\":\"done\"", Duration::from_secs(30));
    let before = inspect(&worker).unwrap();
    let started = std::time::Instant::now();
    let second = scene.upgrade(&worker, "3", &[]);
    second.refused(&[
        &format!("another cutover run is working on {worker}"),
        &format!("held by cutover process {}", group.id()),
    ]);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused at once"
    );
    assert_untouched(&worker, &before);
    kill_hard(&mut group);
    scene.recover(&[]);
}

#[test]
fn a_state_directory_other_users_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let scene = Scene::new("exposed");
    std::fs::create_dir_all(&scene.state_dir).unwrap();
    let exposed = std::fs::Permissions::from_mode(0o775);
    std::fs::set_permissions(&scene.state_dir, exposed).unwrap();
    let out = scene.cutover(&["history"]);
    out.refused(&[
        &format!("`chmod 700 {}`", scene.state_dir.display()),
        "Nothing was changed.",
    ]);
    let left: Vec<_> = std::fs::read_dir(&scene.state_dir).unwrap().collect();
    assert!(left.is_empty(), "nothing was made in it: {left:?}");
}

#[test]
fn under_umask_000_the_state_directories_are_made_private() {
    use std::os::unix::fs::MetadataExt;
    let scene = Scene::new("umask");
    scene.cutover_under_umask("000", &["history"]).expect(0);
    let runs = scene.runs();
    let mut made: Vec<std::path::PathBuf> = runs
        .ancestors()
        .take_while(|d| d.starts_with(&scene.state_dir))
        .map(std::path::Path::to_path_buf)
        .collect();
    made.push(runs.with_file_name("locks"));
    for dir in made {
        let mode = std::fs::metadata(&dir).unwrap().mode() & 0o7777;
        assert_eq!(format!("{mode:o}"), "700", "{}", dir.display());
    }
}
