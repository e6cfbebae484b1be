//! Every command that starts containers reads its health rules from one resolver: a profile's
//! timeout, the config file's and a container's label apply to `upgrade`, `rollback`, `backup`
//! and `restore` alike, and the command line's flag beats them all. Read from their dry runs.

use crate::helpers::*;

/// How long the dry run's health step of `cutover ARGS --dry-run --json` waits at most.
fn waits(scene: &Scene, args: &[&str]) -> String {
    let all = [args, &["--dry-run", "--json"][..]].concat();
    let out = scene.cutover(&all);
    out.expect(0);
    let steps = out.json()["steps"].to_string();
    let at = steps
        .find("(at most ")
        .unwrap_or_else(|| panic!("{args:?}: no health step in {steps}"));
    steps[at + "(at most ".len()..]
        .split(')')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn a_profiles_timeout_the_config_files_and_a_label_reach_every_command_and_a_flag_beats_them() {
    let scene = Scene::new("settings");
    let dir = temp_dir(&scene, "settings");
    let profile = dir.join("demo.yaml");
    std::fs::write(
        &profile,
        "name: demo-settings\ndescription: the demo app\nmatch: [demo]\nhealth: { port: 8080, path: /, timeout: 7m }\n",
    )
    .unwrap();
    let profile = profile.to_str().unwrap().to_string();
    let config = dir.join("cutover.yaml");
    std::fs::write(&config, "health_timeout: 9m\n").unwrap();
    let config = config.to_str().unwrap().to_string();

    let (name, _) = scene.run_published("app", "1");
    // What an `upgrade --keep-old` leaves for a rollback.
    let (back, _) = scene.run_published("back", "2");
    let old = scene.run("back-old", &["--init"], "1");
    docker(&["stop", &old]);
    let backups = dir.join("backups");
    let backups = backups.to_str().unwrap();
    scene
        .cutover(&[
            "backup",
            &name,
            "--backup-volumes",
            "--online",
            "--backup-dir",
            backups,
            "--yes",
        ])
        .expect(0);

    let commands: [Vec<&str>; 4] = [
        vec!["upgrade", &name, "--to", "2"],
        vec!["rollback", &back],
        vec!["backup", &name, "--backup-volumes", "--backup-dir", backups],
        vec!["restore", &name, "latest", "--backup-dir", backups],
    ];
    for command in &commands {
        assert_eq!(waits(&scene, command), "2m", "{command:?}: the default");
        let profiled = [&command[..], &["--profile", &profile]].concat();
        assert_eq!(waits(&scene, &profiled), "7m", "{command:?}: the profile");
        let layered = [&profiled[..], &["--config", &config]].concat();
        assert_eq!(
            waits(&scene, &layered),
            "9m",
            "{command:?}: the config file"
        );
        let flagged = [&layered[..], &["--health-timeout", "11m"]].concat();
        assert_eq!(waits(&scene, &flagged), "11m", "{command:?}: the flag");
    }

    // A label of the container sits between the config file and the flags.
    let labelled = scene.run(
        "labelled",
        &["--init", "--label", "cutover.health_timeout=10m"],
        "1",
    );
    let args = ["upgrade", &labelled, "--to", "2", "--config", &config];
    assert_eq!(waits(&scene, &args), "10m");
}
