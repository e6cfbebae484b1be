//! A profile task over the in-memory engine: killed at every moment of every step and recovered,
//! and each way it can fail (a destination that fails its check, a migration short of its total,
//! a way back that fails with and without the backup to cover it).
//!
//! The fake's object store: its data `docs` names the driver that holds the documents, and
//! `store-check`, `store-move` and `store-list` play `anchore-manager objectstorage`.

use crate::engine::Engine;
use crate::health::HealthSettings;
use crate::ops::backup::BackupRequest;
use crate::ops::preflight::Prepared;
use crate::ops::settings::Given;
use crate::ops::task::{prepare, tasks_of, TaskRequest};
use crate::ops::upgrade_tests::{
    assert_settled, expected, health, new_host, run_plan, Host, BACKUPS_IN_HOST, DEAD_FOR,
};
use crate::plan::Plan;
use crate::profile::{Catalog, Choice, Loaded, Profile};
use crate::run::journal::Outcome;
use crate::run::recover::recover;
use crate::run::runner::{Fault, Moment, RunError, RunReport};

const PROFILE: &str = r#"
name: store
description: an app whose documents live in a store its config names
match: [app]
group: {by: database}
database:
  sources: [{url_env: {name: DB_URL}}]
tasks:
  move-store:
    description: move the documents to the store of another config
    args:
      - {name: dest, value: FILE, file: true, required: true, help: the config to switch to}
    config: {path: /etc/app.yaml, role: store}
    checks:
      - {file: dest, has_any: [store.driver], why: it names the new store}
    steps:
      - run: {name: check, before_stop: true, command: [store-check, "${file:dest}"]}
      - run:
          name: move
          command: [store-move, "${file:source}", "${file:dest}"]
          changes_data: true
          capture: {name: move, after: "Migration Task Id:"}
          undo:
            - command: [store-move, "${file:dest}", "${file:source}"]
              capture: {name: back, after: "Migration Task Id:"}
            - command: [store-list]
              table: {row: {id: "${captured:back}"}, expect: {state: complete}, same: [[moved, total]]}
          backup_covers: {file: source, at: [store.driver], in: [db]}
      - run:
          name: verify
          command: [store-list]
          table: {row: {id: "${captured:move}"}, expect: {state: complete}, same: [[moved, total]]}
      - swap: {from: dest, keep_old_as: /etc/app.old.yaml}
  repair:
    description: repair the database with every app stopped
    steps:
      - run: {name: repair, command: ["${arg:how|migrate-fail}", migrate], changes_data: true}
    args:
      - {name: how, help: repair the way that fails half-way}
"#;

/// Two members that hold the store (`web`, `worker`) and one that does not (`cron`).
const MEMBERS: [&str; 3] = ["web", "worker", "cron"];

fn config(driver: &str) -> String {
    format!("store:\n  driver: {driver}\n")
}

/// A host whose documents are in the store `source`, and a destination config for `dest`; each
/// member's config is on a volume of its own.
fn task_host(source: &str, dest: &str) -> (Host, std::path::PathBuf) {
    task_host_with(source, dest, |_| Some("web-etc:/etc".into()))
}

/// Web's mount, from the host's directory.
type WebMount = fn(&std::path::Path) -> Option<String>;

/// As [`task_host`], with web's mount (`SOURCE:DEST[:ro]`) given by `web_mount` from the host's
/// directory, or none.
fn task_host_with(
    source: &str,
    dest: &str,
    web_mount: impl Fn(&std::path::Path) -> Option<String>,
) -> (Host, std::path::PathBuf) {
    let host = new_host(&[]);
    let own = config(source);
    for name in MEMBERS {
        let file = match name {
            "cron" => "schedule: hourly\n",
            _ => own.as_str(),
        };
        host.engine.run(
            name,
            "app:1",
            &["DB_URL=postgres://app:pw-1234@db:5432/app"],
            &[("/etc/app.yaml", file)],
        );
        let mount = match name {
            "web" => web_mount(&host.dir),
            _ => Some(format!("{name}-etc:/etc")),
        };
        if let Some(mount) = mount {
            host.engine.mount(name, &mount);
        }
    }
    host.engine.with_data(&[("docs", source)]);
    let path = host.dir.join("dest.yaml");
    std::fs::create_dir_all(&host.dir).unwrap();
    std::fs::write(&path, config(dest)).unwrap();
    (host, path)
}

fn catalog() -> Catalog {
    Catalog {
        profiles: vec![Loaded {
            profile: Profile::parse(PROFILE, "store.yaml").unwrap(),
            origin: "test".into(),
        }],
    }
}

/// The preflight of the task that moves the store to `dest`.
async fn prepare_task(host: &Host, dest: &std::path::Path) -> crate::error::Result<Prepared> {
    prepare_named(
        host,
        "move-store",
        &["--dest".into(), dest.display().to_string()],
    )
    .await
}

/// The preflight of `task` with its options `words`, named on web.
async fn prepare_named(
    host: &Host,
    task: &str,
    words: &[String],
) -> crate::error::Result<Prepared> {
    prepare_given(host, task, words, |_| {}).await
}

/// [`prepare_named`] with what the operator gave changed by `change`.
async fn prepare_given(
    host: &Host,
    task: &str,
    words: &[String],
    change: impl FnOnce(&mut Given),
) -> crate::error::Result<Prepared> {
    let catalog = catalog();
    let tasks = tasks_of(&host.engine, &catalog, "web", &Choice::Auto)
        .await
        .unwrap();
    let spec = tasks.get(task).unwrap();
    let (args, rest) = spec.parse_args(words).unwrap();
    assert!(rest.is_empty());
    let policy = health();
    let mut given = Given {
        health: HealthSettings {
            settle: Some(policy.settle),
            timeout: Some(policy.timeout),
            ..HealthSettings::default()
        },
        ..Given::default()
    };
    change(&mut given);
    let request = TaskRequest {
        name: "web".into(),
        task: task.into(),
        args,
        given,
        backup: BackupRequest {
            db_var: Some("DB_URL".into()),
            dir: Some(host.dir.join(BACKUPS_IN_HOST)),
            keep: Some(2),
            ..BackupRequest::default()
        },
    };
    prepare(&host.engine, &host.state, &catalog, &tasks, &request).await
}

/// The task run from a store `source` to `dest`, which must end with `outcome`.
async fn moved(source: &str, dest: &str, outcome: Outcome) -> (Host, RunReport) {
    let (host, path) = task_host(source, dest);
    let (_, report) = task(&host, &path, None).await;
    let report = report.unwrap();
    assert_eq!(
        report.outcome, outcome,
        "{:?} {:?}",
        report.failure, report.undo_failures
    );
    (host, report)
}

async fn task(
    host: &Host,
    dest: &std::path::Path,
    fault: Option<Fault>,
) -> (Plan, Result<RunReport, RunError>) {
    let prepared = prepare_task(host, dest).await.expect("preflight");
    let plan = prepared.plan.clone();
    let result = run_plan(host, &plan, fault).await;
    (plan, result)
}

/// The text of a member's configuration file, and of the old one kept beside it.
fn configs(host: &Host, name: &str) -> (String, Option<String>) {
    let c = host.engine.named(name).unwrap();
    let text = |path: &str| {
        c.files
            .get(path)
            .map(|f| String::from_utf8_lossy(&f.bytes).to_string())
    };
    (text("/etc/app.yaml").unwrap(), text("/etc/app.old.yaml"))
}

/// Where the documents are, and what the members that hold the store read.
fn assert_state(host: &Host, docs: &str, driver: &str, case: &str) {
    assert_eq!(host.engine.world().data["docs"], docs, "{case}: documents");
    for name in ["web", "worker"] {
        assert_eq!(
            configs(host, name).0,
            config(driver),
            "{case}: {name}'s config"
        );
    }
    assert_eq!(
        configs(host, "cron").0,
        "schedule: hourly\n",
        "{case}: cron is not a store member"
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_moves_the_documents_and_swaps_the_config_of_every_member_that_holds_the_store() {
    let (host, dest) = task_host("db", "fs");
    let (plan, report) = task(&host, &dest, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    let names: Vec<&str> = plan.stages[0].steps.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "keep_file",
            "keep_file",
            "run",
            "stop",
            "stop",
            "stop",
            "backup",
            "run",
            "run",
            "swap",
            "swap",
            "start",
            "start",
            "start",
            "await_healthy",
            "await_healthy",
            "await_healthy"
        ]
    );
    assert_settled(&host, &MEMBERS);
    assert_state(&host, "fs", "fs", "done");
    assert_eq!(
        configs(&host, "web").1,
        Some(config("db")),
        "the old config is kept beside"
    );
    let verify = &report.steps[8];
    assert_eq!(
        verify.detail.as_deref(),
        Some("`store-list` exited 0: id 1: state complete, moved 1 = total")
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_killed_at_every_moment_of_every_step_is_recovered() {
    let (probe, dest) = task_host("db", "fs");
    let (plan, _) = task(&probe, &dest, None).await;
    for step in 0..plan.step_count() {
        for at in [Moment::Began, Moment::Acted, Moment::Journaled] {
            let case = format!("killed at step {} ({at:?})", step + 1);
            let (host, dest) = task_host("db", "fs");
            let (plan, result) = task(&host, &dest, Some(Fault::Crash { step, at })).await;
            assert!(matches!(result, Err(RunError::Interrupted)), "{case}");
            tokio::time::sleep(DEAD_FOR).await;
            let recoveries = recover(&host.engine, &host.state, None, &Default::default())
                .await
                .unwrap();
            let (_, outcome, _) = expected(&plan, step);
            assert_eq!(
                recoveries[0].outcome,
                Some(outcome),
                "{case}: {}",
                recoveries[0].message
            );
            assert_settled(&host, &MEMBERS);
            match outcome {
                Outcome::Succeeded => assert_state(&host, "fs", "fs", &case),
                _ => assert_state(&host, "db", "db", &case),
            }
            assert!(host.state.unfinished(None).unwrap().is_empty(), "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_destination_that_fails_its_check_stops_nothing() {
    let (host, report) = moved("db", "broken", Outcome::NothingChanged).await;
    assert!(report
        .failure
        .unwrap()
        .contains("cannot reach the broken store"));
    assert_eq!(report.downtime_ms, None, "nothing stopped");
    assert_settled(&host, &MEMBERS);
    assert_state(&host, "db", "db", "check failed");
}

#[tokio::test(start_paused = true)]
async fn a_migration_short_of_its_total_is_migrated_back() {
    let (host, report) = moved("db", "flaky", Outcome::RolledBack).await;
    assert!(report
        .failure
        .unwrap()
        .contains("has moved 0 but total 1: not everything was done"));
    assert_eq!(report.restored.len(), 1, "{:?}", report.restored);
    assert!(
        report.restored[0].starts_with("went back: `store-move"),
        "{:?}",
        report.restored
    );
    assert_settled(&host, &MEMBERS);
    assert_state(&host, "db", "db", "short");
    assert_eq!(configs(&host, "web").1, None, "never swapped");
}

#[tokio::test(start_paused = true)]
async fn a_way_back_that_fails_is_covered_by_the_backup_when_it_holds_the_documents() {
    let (host, report) = moved("db", "oneway-flaky", Outcome::RolledBack).await;
    assert!(
        report.warnings[0]
            .contains("going back failed, so the database backup is restored instead"),
        "{:?}",
        report.warnings
    );
    assert_restored_the_database(&report);
    assert_settled(&host, &MEMBERS);
    assert_state(&host, "db", "db", "covered");
}

#[tokio::test(start_paused = true)]
async fn a_way_back_that_fails_stops_for_a_person_when_the_backup_does_not_hold_the_documents() {
    let (host, report) = moved("files", "oneway-flaky", Outcome::NeedsAttention).await;
    assert!(
        report.undo_failures[0].contains("the rollback stops here"),
        "{:?}",
        report.undo_failures
    );
    assert_eq!(
        host.engine.world().data["docs"],
        "oneway-flaky",
        "left as it is, not restored over"
    );
    for name in MEMBERS {
        assert!(
            !host.engine.named(name).unwrap().running,
            "{name} is left stopped"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_config_the_task_could_not_replace_is_refused_before_anything_stops() {
    let cases: [(&str, WebMount, &str); 3] = [
        (
            "read-only",
            |_| Some("web-etc:/etc:ro".into()),
            "read-only mount",
        ),
        (
            "another host's file",
            |dir| Some(format!("{}/elsewhere.yaml:/etc/app.yaml", dir.display())),
            "cannot read it here",
        ),
        (
            "a different file here",
            |dir| {
                std::fs::create_dir_all(dir).unwrap();
                std::fs::write(dir.join("other.yaml"), "store: {driver: s3}\n").unwrap();
                Some(format!("{}/other.yaml:/etc/app.yaml", dir.display()))
            },
            "finds another file at that path here",
        ),
    ];
    for (case, mount, says) in cases {
        let (host, dest) = task_host_with("db", "fs", mount);
        let refused = prepare_task(&host, &dest).await.err().expect(case);
        assert!(refused.to_string().contains(says), "{case}: {refused}");
        assert_settled(&host, &MEMBERS);
        assert_state(&host, "db", "db", case);
    }
}

#[tokio::test(start_paused = true)]
async fn a_config_bind_mounted_as_a_file_is_rewritten_in_place_on_the_host() {
    let bind = |dir: &std::path::Path| {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("web.yaml"), config("db")).unwrap();
        Some(format!("{}/web.yaml:/etc/app.yaml", dir.display()))
    };
    let (host, dest) = task_host_with("db", "fs", bind);
    let file = host.dir.join("web.yaml");
    let inode =
        |f: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(f).unwrap());
    let before = inode(&file);
    let (plan, report) = task(&host, &dest, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    assert!(plan.stages[0]
        .steps
        .iter()
        .any(|s| s.describe(&plan).contains(&file.display().to_string())));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), config("fs"));
    assert_eq!(
        inode(&file),
        before,
        "the same file, which the container mounts"
    );
    assert_eq!(
        configs(&host, "web").1,
        Some(config("db")),
        "the old one kept beside"
    );

    // Killed once the file was rewritten: recovery writes the old one back in place.
    let (host, dest) = task_host_with("db", "fs", bind);
    let file = host.dir.join("web.yaml");
    let before = inode(&file);
    killed_after_the_first_swap_then_recovered(&host, &dest, || {
        assert_eq!(std::fs::read_to_string(&file).unwrap(), config("fs"));
    })
    .await;
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        config("db"),
        "put back"
    );
    assert_eq!(inode(&file), before, "in place");
}

#[tokio::test(start_paused = true)]
async fn an_undone_swap_puts_back_the_file_that_stood_where_the_old_one_is_kept() {
    let (host, dest) = task_host("db", "fs");
    // An earlier task's old config, where this one keeps web's.
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(7);
    header.set_mode(0o640);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(0);
    tar.append_data(&mut header, "app.old.yaml", "earlier".as_bytes())
        .unwrap();
    let id = host.engine.named("web").unwrap().id;
    host.engine
        .archive_put(
            &id,
            "/etc",
            crate::engine::bytes_stream(tar.into_inner().unwrap()),
        )
        .await
        .unwrap();
    killed_after_the_first_swap_then_recovered(&host, &dest, || {
        assert_eq!(configs(&host, "web"), (config("fs"), Some(config("db"))));
    })
    .await;
    assert_eq!(
        configs(&host, "web"),
        (config("db"), Some("earlier".into()))
    );
}

/// Runs the task killed once its first config swap was done, lets `killed` look at the host
/// then, and recovers, which must roll it back.
async fn killed_after_the_first_swap_then_recovered(
    host: &Host,
    dest: &std::path::Path,
    killed: impl FnOnce(),
) {
    let plan = prepare_task(host, dest).await.expect("preflight").plan;
    let swap = plan.stages[0]
        .steps
        .iter()
        .position(|s| s.name() == "swap")
        .unwrap();
    let fault = Fault::Crash {
        step: swap,
        at: Moment::Acted,
    };
    let result = run_plan(host, &plan, Some(fault)).await;
    assert!(matches!(result, Err(RunError::Interrupted)));
    killed();
    tokio::time::sleep(DEAD_FOR).await;
    let recovered = recover(&host.engine, &host.state, None, &Default::default())
        .await
        .unwrap();
    assert_eq!(recovered[0].outcome, Some(Outcome::RolledBack));
}

#[tokio::test(start_paused = true)]
async fn a_task_without_a_config_runs_in_the_named_container_and_the_backup_covers_it() {
    let (host, _) = task_host("db", "fs");
    let plan = prepare_named(&host, "repair", &[]).await.unwrap().plan;
    let names: Vec<&str> = plan.stages[0].steps.iter().map(|s| s.name()).collect();
    assert_eq!(
        names,
        [
            "stop",
            "stop",
            "stop",
            "backup",
            "run",
            "start",
            "start",
            "start",
            "await_healthy",
            "await_healthy",
            "await_healthy"
        ],
        "nothing kept, nothing swapped"
    );
    assert!(plan.stages[0].steps[4]
        .describe(&plan)
        .contains("with the configuration of web"));
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    assert_eq!(host.engine.world().data["schema"], "1", "repaired");
    assert_settled(&host, &MEMBERS);

    let (host, _) = task_host("db", "fs");
    let plan = prepare_named(&host, "repair", &["--how".into()])
        .await
        .unwrap()
        .plan;
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_restored_the_database(&report);
    assert!(
        !host.engine.world().data.contains_key("schema"),
        "the half-done repair is undone"
    );
    assert_settled(&host, &MEMBERS);
}

fn assert_restored_the_database(report: &RunReport) {
    assert!(
        report
            .restored
            .iter()
            .any(|r| r.starts_with("restored the PostgreSQL database")),
        "{:?}",
        report.restored
    );
}

#[tokio::test(start_paused = true)]
async fn a_config_in_the_containers_own_filesystem_is_swapped_with_a_warning() {
    let (host, dest) = task_host_with("db", "fs", |_| None);
    let (plan, report) = task(&host, &dest, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    assert_eq!(configs(&host, "web"), (config("fs"), Some(config("db"))));
    assert!(plan.stages[0].steps.iter().any(|s| s
        .describe(&plan)
        .contains("of web (app:1), in the container's own filesystem")));
    assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
    assert!(
        report.warnings[0].starts_with("/etc/app.yaml of web is in the container's own filesystem: the new one lasts as long as this container"),
        "{:?}",
        report.warnings
    );
}

#[tokio::test(start_paused = true)]
async fn a_task_waits_as_long_as_the_config_file_says_unless_a_flag_says_otherwise() {
    let (host, path) = task_host("db", "localfs");
    let words = ["--dest".to_string(), path.display().to_string()];
    let waits = |prepared: Prepared| {
        let plan = prepared.plan;
        plan.stages
            .iter()
            .flat_map(|s| &s.steps)
            .map(|step| step.describe(&plan))
            .find(|d| d.contains("(at most "))
            .unwrap()
    };
    let configured = prepare_given(&host, "move-store", &words, |given| {
        given.health = HealthSettings::default();
        given.config.health_timeout = Some(std::time::Duration::from_secs(540));
    })
    .await
    .unwrap();
    assert!(waits(configured).contains("(at most 9m)"));
    let flagged = prepare_given(&host, "move-store", &words, |given| {
        given.config.health_timeout = Some(std::time::Duration::from_secs(540));
        given.health.timeout = Some(std::time::Duration::from_secs(660));
    })
    .await
    .unwrap();
    assert!(waits(flagged).contains("(at most 11m)"));
}
