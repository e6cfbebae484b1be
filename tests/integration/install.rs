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
        .env("CUTOVER_BIN_DIR", temp_dir(scene, "bin"))
        .env("CUTOVER_SHARE_DIR", temp_dir(scene, "share"));
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

#[test]
fn install_puts_completions_bash_loads_and_man_pages() {
    let scene = Scene::new("completions");
    install(&scene, &[], &[]).expect(0);
    let share = temp_dir(&scene, "share");
    // bash's own completion machinery: the script loads and completes commands and options.
    let complete = |line: &[&str]| -> String {
        let words = line
            .iter()
            .map(|w| format!("'{w}'"))
            .collect::<Vec<_>>()
            .join(" ");
        let script = format!(
            "source {}/bash-completion/completions/cutover; COMP_WORDS=({words}); COMP_CWORD={}; _cutover cutover; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            share.display(),
            line.len() - 1
        );
        let out = Command::new("bash").args(["-c", &script]).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    assert!(complete(&["cutover", "up"]).lines().any(|l| l == "upgrade"));
    let options = complete(&["cutover", "auto", "--can"]);
    assert!(options.lines().any(|l| l == "--canary"), "{options}");
    for (file, has) in [
        ("zsh/site-functions/_cutover", "#compdef cutover"),
        (
            "fish/vendor_completions.d/cutover.fish",
            "complete -c cutover",
        ),
        ("man/man1/cutover.1", ".TH cutover 1"),
        ("man/man1/cutover-upgrade.1", "\\-\\-canary"),
    ] {
        let text = read(&share.join(file));
        assert!(
            text.contains(has),
            "{file} lacks {has}: {}",
            &text[..text.len().min(300)]
        );
    }
}
