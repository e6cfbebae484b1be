//! Groups (`--with`) and hops (`--via`) against the real engine.

use crate::helpers::*;

fn started_at(name: &str) -> String {
    inspect(name).unwrap()["State"]["StartedAt"]
        .as_str()
        .unwrap()
        .to_string()
}

#[test]
fn a_group_of_three_moves_together_and_starts_in_reverse_order() {
    let scene = Scene::new("group");
    let names: Vec<String> = ["api", "catalog", "queue"]
        .iter()
        .map(|m| scene.run(m, &["--init"], "1"))
        .collect();
    let out = scene.cutover(&[
        "upgrade", &names[0], "--with", &names[1], "--with", &names[2], "--to", "2", "--yes",
        "--json", "--settle", "1s",
    ]);
    out.expect(0);
    let report = out.json();
    assert_eq!(report["members"].as_array().unwrap().len(), 3);
    for name in &names {
        assert_eq!(
            inspect(name).unwrap()["Config"]["Image"],
            image("2"),
            "{name}"
        );
        assert!(is_running(name));
        assert_no_leftovers(name);
    }
    assert!(
        started_at(&names[2]) < started_at(&names[1])
            && started_at(&names[1]) < started_at(&names[0]),
        "started in reverse order"
    );
    let steps = steps_field(&report, "description");
    let last_verify = steps
        .iter()
        .rposition(|s| s.starts_with("check that"))
        .unwrap();
    let first_stop = steps.iter().position(|s| s.starts_with("stop")).unwrap();
    assert!(
        last_verify < first_stop,
        "every member created and verified before any stop: {steps:#?}"
    );
}

#[test]
fn a_group_member_that_fails_rolls_the_whole_group_back() {
    let scene = Scene::new("groupfail");
    let names: Vec<String> = ["api", "catalog", "queue"]
        .iter()
        .map(|m| scene.run(m, &["--init"], "1"))
        .collect();
    let ids: Vec<String> = names.iter().map(|n| id_of(n)).collect();
    let out = scene.cutover(&[
        "upgrade", &names[0], "--with", &names[1], "--with", &names[2], "--to", "crash", "--yes",
        "--json", "--settle", "3s",
    ]);
    out.expect(1);
    assert!(
        out.json()["state"]
            .as_str()
            .unwrap()
            .starts_with("Rolled back"),
        "{}",
        out.stdout
    );
    for (name, id) in names.iter().zip(&ids) {
        assert_eq!(&id_of(name), id, "{name} is back on its old container");
        assert!(is_running(name));
        assert_no_leftovers(name);
    }
}

#[test]
fn two_hops_in_one_run() {
    two_hops(&Scene::new("hops"));
}

/// `--via 2 --to 3` on the scene's engine: each hop runs, in one run, on one volume.
pub fn two_hops(scene: &Scene) {
    let (name, port) = scene.run_published("app", "1");
    let out = scene.cutover(&[
        "upgrade", &name, "--via", "2", "--to", "3", "--yes", "--json", "--settle", "1s",
    ]);
    out.expect(0);
    let report = out.json();
    assert_eq!(
        (report["hops_done"].as_u64(), report["hops"].as_u64()),
        (Some(2), Some(2))
    );
    let log = http_get_eventually(port, "/log.txt");
    assert!(
        log.contains("v1 started") && log.contains("v2 started") && log.contains("v3 started"),
        "each hop ran: {log}"
    );
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("3"));
    assert_no_leftovers(&name);
    let history = scene.cutover(&["history", "--json"]).json();
    assert_eq!(
        history.as_array().unwrap().len(),
        1,
        "one run for the whole campaign"
    );
}

#[test]
fn a_failing_second_hop_leaves_the_first_hop_running_and_says_so() {
    let scene = Scene::new("hopfail");
    let (name, port) = scene.run_published("app", "1");
    let out = scene.cutover(&[
        "upgrade", &name, "--via", "2", "--to", "crash", "--yes", "--json", "--settle", "3s",
    ]);
    out.expect(4);
    let report = out.json();
    assert_eq!(report["outcome"], "partial");
    assert_eq!(report["running"], image("2"));
    assert!(
        report["state"]
            .as_str()
            .unwrap()
            .contains("the last hop that succeeded (1 of 2)"),
        "{}",
        out.stdout
    );
    assert!(http_get_eventually(port, "/").contains("version=2"));
    assert_eq!(inspect(&name).unwrap()["Config"]["Image"], image("2"));
    assert_no_leftovers(&name);
}
