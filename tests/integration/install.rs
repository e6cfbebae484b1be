//! `install.sh --cron` and `--systemd-timer` install the schedule (with a stand-in `crontab` on
//! PATH that keeps its table in a file, and a private unit directory).

use std::path::Path;
use std::process::Command;

use crate::helpers::*;

fn install(scene: &Scene, args: &[&str], env: &[(&str, String)]) -> Outcome {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("install.sh");
    let mut cmd = Command::new("bash");
    cmd.arg(script)
        .args(args)
        .env("CUTOVER_BINARY", env!("CARGO_BIN_EXE_cutover"))
        .env("CUTOVER_BIN_DIR", temp_dir(scene, "bin"));
    for (k, v) in env {
        cmd.env(k, v);
    }
    Outcome::from(cmd.output().unwrap())
}

#[test]
fn install_schedules_auto_with_cron_once_and_keeps_other_lines() {
    let scene = Scene::new("cron");
    let fake = temp_dir(&scene, "fakebin");
    let table = fake.join("table");
    std::fs::write(&table, "5 4 * * * /usr/bin/backup\n").unwrap();
    std::fs::write(
        fake.join("crontab"),
        format!("#!/bin/sh\nif [ \"$1\" = -l ]; then cat {0}; else cat > {0}.new && mv {0}.new {0}; fi\n", table.display()),
    )
    .unwrap();
    Command::new("chmod")
        .arg("755")
        .arg(fake.join("crontab"))
        .status()
        .unwrap();
    let config = temp_dir(&scene, "cfg").join("auto.yml");
    std::fs::write(&config, "containers: {}\n").unwrap();
    let path = format!("{}:{}", fake.display(), std::env::var("PATH").unwrap());
    for _ in 0..2 {
        install(
            &scene,
            &["--cron", "0 3 * * *", "--config", config.to_str().unwrap()],
            &[("PATH", path.clone())],
        )
        .expect(0);
    }
    let text = read(&table);
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("cutover auto"))
        .collect();
    assert_eq!(ours.len(), 1, "installing twice keeps one line: {text}");
    assert!(
        ours[0].starts_with("0 3 * * * ")
            && ours[0].contains(&format!("--config {}", config.display())),
        "{text}"
    );
    assert!(
        text.contains("/usr/bin/backup"),
        "the user's own lines survive: {text}"
    );
    assert!(
        temp_dir(&scene, "bin").join("cutover").exists(),
        "the binary is installed"
    );

    let bad = install(&scene, &["--cron", "nightly"], &[("PATH", path)]);
    bad.expect(2);
    assert!(bad.stderr.contains("0 3 * * *"));
}

#[test]
fn install_writes_a_systemd_timer() {
    let scene = Scene::new("timer");
    let units = temp_dir(&scene, "units");
    install(
        &scene,
        &["--systemd-timer", "*-*-* 03:00:00"],
        &[("CUTOVER_SYSTEMD_DIR", units.display().to_string())],
    )
    .expect(0);
    assert!(read(&units.join("cutover-auto.timer")).contains("OnCalendar=*-*-* 03:00:00"));
    assert!(read(&units.join("cutover-auto.service")).contains("cutover auto"));
}
