//! `cutover rollback` after `upgrade --keep-old`.

use crate::helpers::*;

#[test]
fn rollback_returns_to_the_kept_old_container_with_its_data() {
    let scene = Scene::new("rollback");
    let (name, port) = scene.run_published("app", "1");
    rolled_back_to_the_kept_old_container(&scene, &name, port);
}

/// `upgrade --keep-old` of `name` (`demo:1` serving on `port`) to 2, then `rollback`: the same
/// container serves version 1 again on its data, the replaced one kept aside.
pub(crate) fn rolled_back_to_the_kept_old_container(scene: &Scene, name: &str, port: u16) {
    let original = id_of(name);
    let out = scene.cutover(&[
        "upgrade",
        name,
        "--to",
        "2",
        "--keep-old",
        "--yes",
        "--json",
        "--settle",
        "1s",
    ]);
    out.expect(0);
    assert!(
        out.json()["state"]
            .as_str()
            .unwrap()
            .contains("kept, stopped"),
        "{}",
        out.stdout
    );
    let old = format!("{name}-old");
    assert_eq!(id_of(&old), original);
    assert!(!is_running(&old));
    assert!(http_get_eventually(port, "/").contains("version=2"));
    let upgraded = id_of(name);

    let out = scene.cutover(&["rollback", name, "--yes", "--json", "--settle", "1s"]);
    out.expect(0);
    assert_eq!(out.json()["outcome"], "succeeded");
    assert_eq!(id_of(name), original, "the original container serves again");
    assert!(is_running(name));
    assert!(!exists(&old));
    let failed = format!("{name}-failed");
    assert_eq!(
        id_of(&failed),
        upgraded,
        "the replaced container is kept aside"
    );
    assert!(!is_running(&failed));
    assert!(http_get_eventually(port, "/").contains("version=1"));
    let log = http_get_eventually(port, "/log.txt");
    assert_eq!(
        log.matches("started").count(),
        3,
        "v1, v2 and v1 again, on one volume: {log}"
    );

    let history = scene.cutover(&["history", name]);
    history.expect(0);
    assert!(
        history.stdout.contains("upgrade") && history.stdout.contains("rollback"),
        "{}",
        history.stdout
    );
}

#[test]
fn rollback_without_a_kept_old_container_is_refused() {
    let scene = Scene::new("norollback");
    let name = scene.run("app", &["--init"], "1");
    let out = scene.cutover(&["rollback", &name, "--yes"]);
    out.expect(2);
    assert!(out.stderr.contains("--keep-old"), "{}", out.stderr);
    assert!(is_running(&name));
}
