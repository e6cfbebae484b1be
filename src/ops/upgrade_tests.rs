//! Upgrades as `ops` prepares them, run and recovered over the in-memory engine on tokio's
//! paused clock: every plan shape is killed at every moment of every step and recovered from its
//! journal alone. The other `*_tests` of `ops`, `ops::task` and `discover` share its harness.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::engine::fake::{Behaviour, FakeEngine};
use crate::engine::{endpoint, Engine};
use crate::health::{HealthPolicy, HealthSettings};
use crate::ops::backup::BackupRequest;
use crate::ops::settings::Given;
use crate::ops::upgrade::{prepare, UpgradeRequest};
use crate::plan::build::{BackupPlan, CarriedPath, Migration, Target};
use crate::plan::steps::Cx;
use crate::plan::steps::VersionSource;
use crate::plan::{is_reserved_name, Plan, UpgradeOptions};
use crate::profile::{Catalog, Choice};
use crate::run::journal::{Outcome, StateDir};
use crate::run::recover::recover;
use crate::run::runner::{global, Fault, Moment, RunError, RunReport, Runner, StepStatus};

/// The database server's container.
pub(crate) const DB: &str = "db";

/// Marks options that want a backup: the request then names the database, and each host keeps
/// its backups in its own directory.
pub(crate) const BACKUPS_IN_HOST: &str = "backups";

/// How long a killed run stays dead before `cutover recover` runs.
pub(crate) const DEAD_FOR: Duration = Duration::from_secs(60);

pub(crate) struct Host {
    pub(crate) engine: FakeEngine,
    pub(crate) state: StateDir,
    pub(crate) dir: std::path::PathBuf,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A host running `members` on `app:1`, with `app:2` and `app:3` (healthy), `app:serve` (no
/// HEALTHCHECK), `app:bad` (unhealthy) and `app:crash` in the registry.
pub(crate) fn new_host(members: &[&str]) -> Host {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "cutover-unit-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let engine = FakeEngine::default();
    engine.publish("app:1", Behaviour::Serve, &["APP_VERSION=1"]);
    engine.publish("app:2", Behaviour::Healthy, &["APP_VERSION=2"]);
    engine.publish("app:3", Behaviour::Healthy, &["APP_VERSION=3"]);
    engine.publish("app:serve", Behaviour::Serve, &["APP_VERSION=serve"]);
    engine.publish("app:bad", Behaviour::Unhealthy, &[]);
    engine.publish("app:crash", Behaviour::Crash, &[]);
    for name in members {
        engine.run(
            name,
            "app:1",
            &[
                "ENCODE_KEY=k-123456",
                "TZ=UTC",
                "DB_URL=postgres://app:pw-1234@db:5432/app",
            ],
            &[("/app/.env", "ENCODE_KEY=k-123456\n")],
        );
    }
    // The database server the apps use; its data is the fake's `data`.
    engine.run(DB, "app:1", &[], &[]);
    engine.with_data(&[("schema", "1")]);
    Host {
        engine,
        state: StateDir::open(&dir).unwrap(),
        dir,
    }
}

pub(crate) fn health() -> HealthPolicy {
    HealthPolicy::new(Duration::from_secs(10), Duration::from_secs(120))
}

fn options(to: &str) -> UpgradeOptions {
    UpgradeOptions::new(Target::Tag(to.into()), health())
}

fn request(host: &Host, members: &[&str], mut options: UpgradeOptions) -> UpgradeRequest {
    let backup = match options.backup.take() {
        Some(_) => BackupRequest {
            db_var: Some("DB_URL".into()),
            dir: Some(host.dir.join(BACKUPS_IN_HOST)),
            keep: Some(2),
            ..BackupRequest::default()
        },
        None => BackupRequest {
            skip: true,
            ..BackupRequest::default()
        },
    };
    UpgradeRequest {
        follows: None,
        related: Default::default(),
        name: members[0].into(),
        with: members[1..].iter().map(|m| m.to_string()).collect(),
        given: Given {
            health: HealthSettings {
                settle: Some(options.health.settle),
                timeout: Some(options.health.timeout),
                ..HealthSettings::default()
            },
            profile: Choice::Without,
            ..Given::default()
        },
        options,
        backup,
        compose: Default::default(),
    }
}

async fn upgrade(
    host: &Host,
    members: &[&str],
    options: UpgradeOptions,
    fault: Option<Fault>,
) -> (Plan, Result<RunReport, RunError>) {
    let prepared = prepare(
        &host.engine,
        &host.state,
        &Catalog::default(),
        &request(host, members, options),
    )
    .await
    .expect("preflight");
    let plan = prepared.plan.clone();
    let result = run_plan(host, &plan, fault).await;
    (plan, result)
}

/// Runs `plan` on the host with a journal of its own, as the CLI would.
pub(crate) async fn run_plan(
    host: &Host,
    plan: &Plan,
    fault: Option<Fault>,
) -> Result<RunReport, RunError> {
    let mut journal = host.state.begin(plan).unwrap();
    Runner {
        engine: &host.engine,
        journal: &mut journal,
        progress: None,
        fault,
        interrupt: Default::default(),
        patience: Default::default(),
    }
    .run(plan)
    .await
}

/// Every member runs under its name, once; nothing the run made is left. Returns what the
/// first member runs.
pub(crate) fn assert_settled(host: &Host, members: &[&str]) -> String {
    let world = host.engine.world();
    for c in world.containers.values() {
        assert!(
            !is_reserved_name(&c.name),
            "{} was left behind: {world:#?}",
            c.name
        );
    }
    assert_eq!(
        world.containers.len(),
        members.len() + 1,
        "one container per member, and the database: {world:#?}"
    );
    let images: Vec<String> = members
        .iter()
        .map(|m| {
            let c = host
                .engine
                .named(m)
                .unwrap_or_else(|| panic!("{m} is gone: {world:#?}"));
            assert!(c.running, "{m} is not running");
            c.image
        })
        .collect();
    assert!(
        images.iter().all(|i| *i == images[0]),
        "the group runs one version: {images:?}"
    );
    images[0].clone()
}

/// `migrate` in a one-shot, within `secs`.
pub(crate) fn migration(secs: u64) -> Migration {
    Migration {
        shown: None,
        env: Vec::new(),
        command: vec!["migrate".into()],
        entrypoint: None,
        timeout: Duration::from_secs(secs),
        fails_if_output_has: vec![],
    }
}

/// How the database of a shape's backup can be copied in the window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Copies {
    /// Not at all: it is dumped.
    Dump,
    /// By its server (a snapshot database).
    Server,
    /// As its server's data volume, the server's being the product's alone; its server could
    /// copy it too, but the volume is the faster way.
    Volume,
}

/// A plan's shape: its name, its members, its options, and how the database can be copied.
type Shape = (&'static str, Vec<&'static str>, UpgradeOptions, Copies);

/// A host for a shape.
pub(crate) fn shape_host(members: &[&str], copies: Copies) -> Host {
    let host = new_host(members);
    if copies != Copies::Dump {
        host.engine.copies_databases();
    }
    if copies == Copies::Volume {
        host.engine.mount(DB, "dbdata:/var/lib/postgresql/data");
    }
    host
}

fn shapes() -> Vec<Shape> {
    let mut migrate = options("2");
    migrate.steps.migrate = Some(migration(600));
    let mut hooks = options("2");
    hooks.steps.exec_before = vec![vec!["true".into()]];
    hooks.steps.exec_after = vec![vec!["true".into()]];
    let mut carried = options("2");
    carried.steps.carry = vec![CarriedPath {
        path: "/app/.env".into(),
        optional: false,
        by_profile: false,
    }];
    let mut hops = options("3");
    hops.via = vec!["2".into()];
    let mut backed_up = options("2");
    backed_up.steps.migrate = Some(migration(600));
    let backed_up = with_backup(backed_up);
    let mut checked = options("2");
    checked.steps.expect_version = Some(VersionSource::Command(vec![
        "print".into(),
        "version 2".into(),
    ]));
    let mut snapshot_hops = with_backup(options("3"));
    snapshot_hops.via = vec!["2".into()];
    snapshot_hops.steps.migrate = Some(migration(600));
    vec![
        ("swap", vec!["web"], options("2"), Copies::Dump),
        ("migrate", vec!["web"], migrate, Copies::Dump),
        ("hooks", vec!["web"], hooks, Copies::Dump),
        ("carried file", vec!["web"], carried, Copies::Dump),
        (
            "group of three",
            vec!["web", "worker", "cron"],
            options("2"),
            Copies::Dump,
        ),
        ("two hops", vec!["web"], hops, Copies::Dump),
        (
            "migrate with a backup",
            vec!["web"],
            backed_up.clone(),
            Copies::Dump,
        ),
        (
            "migrate with a snapshot",
            vec!["web"],
            backed_up.clone(),
            Copies::Server,
        ),
        (
            "migrate with a volume snapshot",
            vec!["web"],
            backed_up,
            Copies::Volume,
        ),
        (
            "two hops with snapshots",
            vec!["web"],
            snapshot_hops.clone(),
            Copies::Server,
        ),
        (
            "two hops with volume snapshots",
            vec!["web"],
            snapshot_hops,
            Copies::Volume,
        ),
        ("version check", vec!["web"], checked, Copies::Dump),
    ]
}

/// Where a plan's step lives, and what recovery must make of a crash there.
pub(crate) fn expected(plan: &Plan, step: usize) -> (usize, Outcome, bool) {
    let mut stage = 0;
    let mut local = step;
    while local >= plan.stages[stage].steps.len() {
        local -= plan.stages[stage].steps.len();
        stage += 1;
    }
    let steps = &plan.stages[stage].steps;
    let commits = steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.traits().runs_app)
        .all(|(i, _)| i <= local);
    let went_down = steps
        .iter()
        .take(local + 1)
        .any(|s| s.traits().starts_downtime);
    let last = stage + 1 == plan.stages.len();
    let outcome = match (commits, last, stage, went_down) {
        (true, true, _, _) => Outcome::Succeeded,
        (true, false, _, _) | (false, _, 1.., _) => Outcome::Partial,
        (false, _, 0, true) => Outcome::RolledBack,
        (false, _, 0, false) => Outcome::NothingChanged,
    };
    (stage, outcome, went_down)
}

/// How many steps the shape's plan has.
async fn step_count(members: &[&str], opts: &UpgradeOptions, copies: Copies) -> usize {
    let host = shape_host(members, copies);
    let prepared = prepare(
        &host.engine,
        &host.state,
        &Catalog::default(),
        &request(&host, members, opts.clone()),
    )
    .await
    .expect("preflight");
    prepared.plan.step_count()
}

#[tokio::test(start_paused = true)]
async fn every_shape_recovers_from_a_kill_at_every_moment_of_every_step() {
    for (shape, members, opts, copies) in shapes() {
        let steps = step_count(&members, &opts, copies).await;
        for step in 0..steps {
            for at in [Moment::Began, Moment::Acted, Moment::Journaled] {
                let case = format!("{shape}, killed at step {} ({at:?})", step + 1);
                let host = shape_host(&members, copies);
                let (plan, result) = upgrade(
                    &host,
                    &members,
                    opts.clone(),
                    Some(Fault::Crash { step, at }),
                )
                .await;
                assert!(
                    matches!(result, Err(RunError::Interrupted)),
                    "{case}: the run went on"
                );
                tokio::time::sleep(DEAD_FOR).await;
                let recoveries = recover(&host.engine, &host.state, None, &Default::default())
                    .await
                    .unwrap();
                assert_eq!(recoveries.len(), 1, "{case}");
                let (stage, outcome, went_down) = expected(&plan, step);
                let recovered = &recoveries[0];
                assert_eq!(
                    recovered.outcome,
                    Some(outcome),
                    "{case}: {}",
                    recovered.message
                );
                let runs = assert_settled(&host, &members);
                let schema = host.engine.world().data["schema"].clone();
                // Each hop's migration moves the schema to its tag: the version serving has its
                // own, migrated to or put back by the backup.
                if opts.steps.migrate.is_some()
                    && (opts.backup.is_some() || outcome == Outcome::Succeeded)
                {
                    assert_eq!(
                        Some(schema.as_str()),
                        runs.rsplit(':').next(),
                        "{case}: the data of the version serving"
                    );
                }
                assert_eq!(runs, serving_after(&plan, stage, outcome), "{case}");
                let stopped_before = plan.stages[..stage]
                    .iter()
                    .any(|s| s.steps.iter().any(|s| s.traits().starts_downtime));
                match (went_down || stopped_before, recovered.downtime_ms) {
                    (false, None) => {}
                    (true, Some(_)) => {}
                    (down, downtime) => panic!("{case}: went down {down}, downtime {downtime:?}"),
                }
                // Down when killed: the outage lasted until recovery brought the service back.
                let health_done = plan.stages[stage]
                    .steps
                    .iter()
                    .enumerate()
                    .filter(|(_, s)| s.name() == "await_healthy")
                    .all(|(i, _)| {
                        global(&plan, stage, i) < step
                            || (global(&plan, stage, i) == step && at == Moment::Journaled)
                    });
                if went_down && !health_done {
                    assert!(
                        recovered.downtime_ms.unwrap() >= DEAD_FOR.as_millis() as u64,
                        "{case}: {:?}",
                        recovered.downtime_ms
                    );
                }
                assert!(
                    host.state.unfinished(None).unwrap().is_empty(),
                    "{case}: the run is closed"
                );
                let world = host.engine.world();
                assert!(
                    world.copies.iter().all(|c| c.is_empty())
                        && world.asides.is_empty()
                        && !world.volumes.keys().any(|v| v.contains("__cutover_")),
                    "{case}: no snapshot or database set aside is left: {:?} {:?} {:?}",
                    world.copies,
                    world.volumes,
                    world.asides
                );
                assert!(
                    !world.data.contains_key("torn"),
                    "{case}: the first pass's torn copy reached the database: {:?}",
                    world.data
                );
                assert_no_run_files(&host, &case);
            }
        }
    }
}

/// The runs' private copies (carried files, a rehearsal's dump) are deleted.
pub(crate) fn assert_no_run_files(host: &Host, case: &str) {
    assert!(
        !host
            .dir
            .join("runs")
            .read_dir()
            .unwrap()
            .flatten()
            .any(|e| e.path().extension().is_some_and(|x| x == "files")),
        "{case}: copies are deleted"
    );
}

#[tokio::test(start_paused = true)]
async fn recover_leaves_alone_a_journal_another_user_could_have_written() {
    use crate::private::chmod;
    let host = new_host(&["web"]);
    let (plan, result) = upgrade(
        &host,
        &["web"],
        options("2"),
        Some(Fault::Crash {
            step: step_count(&["web"], &options("2"), Copies::Dump).await / 2,
            at: Moment::Acted,
        }),
    )
    .await;
    assert!(matches!(result, Err(RunError::Interrupted)));
    let journal = host.state.unfinished(None).unwrap()[0].path.clone();
    chmod(&journal, 0o620);
    let written = std::fs::read(&journal).unwrap();
    let world = host.engine.world();
    let recoveries = recover(&host.engine, &host.state, None, &Default::default())
        .await
        .unwrap();
    assert_eq!(recoveries.len(), 1);
    let told = &recoveries[0];
    assert_eq!(told.outcome, Some(Outcome::NeedsAttention));
    assert_eq!(told.journal, journal.display().to_string());
    assert!(
        told.message
            .contains("is not trusted (users other than its owner can write it (mode 0620))")
            && told
                .message
                .contains(&format!("`chmod 600 {}`", journal.display())),
        "{}",
        told.message
    );
    assert_eq!(
        std::fs::read(&journal).unwrap(),
        written,
        "the journal is left alone"
    );
    assert_eq!(host.engine.world(), world, "so are the containers");
    // Made its owner's alone again, as the message says, it is recovered.
    chmod(&journal, 0o600);
    let recoveries = recover(&host.engine, &host.state, None, &Default::default())
        .await
        .unwrap();
    assert_eq!(
        recoveries[0].kind,
        Some(plan.kind),
        "{}",
        recoveries[0].message
    );
    assert_settled(&host, &["web"]);
}

/// What the first member runs once a run of `plan` ended with `outcome` in `stage`.
fn serving_after(plan: &Plan, stage: usize, outcome: Outcome) -> String {
    match outcome {
        Outcome::Succeeded => plan.image_to.clone(),
        Outcome::Partial if stage == 0 => plan.stages[0].to.clone(),
        Outcome::Partial => plan.stages[stage - 1].to.clone(),
        _ => plan.image_from.clone(),
    }
}

#[tokio::test(start_paused = true)]
async fn every_shape_stopped_by_a_signal_after_any_step_ends_with_one_version_serving() {
    for (shape, members, opts, copies) in shapes() {
        let steps = step_count(&members, &opts, copies).await;
        for step in 0..steps {
            let case = format!("{shape}, SIGTERM after step {}", step + 1);
            let host = shape_host(&members, copies);
            let (plan, result) =
                upgrade(&host, &members, opts.clone(), Some(Fault::Signal(step))).await;
            let report = result.unwrap_or_else(|e| panic!("{case}: {e}"));
            // As recovery after a kill there: finished once every new container was started,
            // undone before.
            let (stage, outcome, _) = expected(&plan, step);
            assert_eq!(report.outcome, outcome, "{case}: {:?}", report.failure);
            assert_eq!(
                assert_settled(&host, &members),
                serving_after(&plan, stage, outcome),
                "{case}"
            );
            if !matches!(outcome, Outcome::Succeeded) {
                assert!(
                    report
                        .failure
                        .as_deref()
                        .is_some_and(|f| f.contains("interrupted by SIGTERM")),
                    "{case}: it says why: {:?}",
                    report.failure
                );
            }
            if opts.backup.is_some() && outcome == Outcome::RolledBack {
                assert_eq!(host.engine.world().data["schema"], "1", "{case}");
            }
            assert!(host.state.unfinished(None).unwrap().is_empty(), "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn every_undo_applied_twice_is_applied_once() {
    for (shape, members, opts, copies) in shapes() {
        let steps = step_count(&members, &opts, copies).await;
        for step in 0..steps {
            let host = shape_host(&members, copies);
            let (plan, _) = upgrade(
                &host,
                &members,
                opts.clone(),
                Some(Fault::Crash {
                    step,
                    at: Moment::Journaled,
                }),
            )
            .await;
            let run = host.state.unfinished(None).unwrap().remove(0);
            let (stage, index) = *run.steps.keys().last().unwrap();
            let mut slots = plan.known_ids();
            for record in run.steps.values() {
                if let Some((slot, id)) = record.outputs.as_ref().and_then(|o| o.bind.clone()) {
                    slots.insert(slot, id);
                }
            }
            let files = run.path.with_extension("files");
            // As if later steps changed data, so that a backup's undo restores it.
            let cx = Cx {
                engine: &host.engine,
                slots: &slots,
                files: &files,
                progress: None,
                data_touched: true,
                captured: &BTreeMap::new(),
                runs: &crate::run::journal::StateDirs,
            };
            let action = plan.stages[stage].steps[index].action();
            let outputs = run.steps[&(stage, index)].outputs.as_ref();
            action
                .undo(&cx, outputs)
                .await
                .unwrap_or_else(|e| panic!("{shape}, step {}: {e}", step + 1));
            let once = host.engine.world();
            action
                .undo(&cx, outputs)
                .await
                .unwrap_or_else(|e| panic!("{shape}, step {} again: {e}", step + 1));
            assert_eq!(
                host.engine.world(),
                once,
                "{shape}: undoing step {} twice differs from once",
                step + 1
            );
            // Without its outputs (killed before they were journaled), the undo finds its way too.
            action
                .undo(&cx, None)
                .await
                .unwrap_or_else(|e| panic!("{shape}, step {} without outputs: {e}", step + 1));
            assert_eq!(
                host.engine.world(),
                once,
                "{shape}: undoing step {} without outputs differs",
                step + 1
            );
        }
    }
}

#[tokio::test(start_paused = true)]
async fn each_shape_succeeds_and_tells_its_downtime() {
    for (shape, members, opts, copies) in shapes() {
        let host = shape_host(&members, copies);
        let (plan, report) = upgrade(&host, &members, opts, None).await;
        let report = report.unwrap();
        assert_eq!(
            report.outcome,
            Outcome::Succeeded,
            "{shape}: {:?}",
            report.failure
        );
        assert_eq!(assert_settled(&host, &members), plan.image_to, "{shape}");
        assert_eq!(report.stages_done, plan.stages.len());
        // HEALTHCHECKs pass at the first look, 100 ms apart at most per member.
        let downtime = report.downtime_ms.unwrap();
        assert!(
            downtime < 200 * members.len() as u64 * plan.stages.len() as u64,
            "{shape}: {downtime} ms"
        );
        assert_eq!(
            report.settled_ms, None,
            "{shape}: a HEALTHCHECK judged it, not a settle"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_settle_is_confirmation_and_not_downtime() {
    let host = new_host(&["web"]);
    let (_, report) = upgrade(&host, &["web"], options("serve"), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded);
    assert!(
        report.downtime_ms.unwrap() < 100,
        "down until it started: {:?}",
        report.downtime_ms
    );
    assert_eq!(report.settled_ms, Some(10_000));
    let health = report
        .steps
        .iter()
        .find(|s| s.step == "await_healthy")
        .unwrap();
    assert!(
        health
            .detail
            .as_deref()
            .unwrap()
            .contains("ran 10s without exiting"),
        "{:?}",
        health.detail
    );
}

#[tokio::test(start_paused = true)]
async fn a_failing_migration_rolls_back_removes_its_container_and_warns_about_the_data() {
    for (command, says) in [
        ("migrate-fail", "exited with code 2"),
        ("hang", "did not finish within 1m"),
    ] {
        let host = new_host(&["web"]);
        let mut opts = options("2");
        opts.steps.migrate = Some(Migration {
            command: vec![command.into()],
            ..migration(60)
        });
        let (_, report) = upgrade(&host, &["web"], opts, None).await;
        let report = report.unwrap();
        assert_eq!(report.outcome, Outcome::RolledBack, "{command}");
        assert!(
            report.failure.as_deref().unwrap().contains(says),
            "{command}: {:?}",
            report.failure
        );
        assert!(
            report.failure.as_deref().unwrap().contains("last output"),
            "the tail is kept: {:?}",
            report.failure
        );
        assert_eq!(assert_settled(&host, &["web"]), "app:1");
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("may have changed the data")),
            "{:?}",
            report.warnings
        );
    }
}

#[tokio::test(start_paused = true)]
async fn hooks_fail_before_downtime_or_roll_back_after_it() {
    let host1 = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.exec_before = vec![vec!["false".into()]];
    let (_, report) = upgrade(&host1, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::NothingChanged);
    assert_eq!(report.downtime_ms, None);
    assert!(report
        .failure
        .unwrap()
        .contains("`false` exited with code 1"));
    assert_settled(&host1, &["web"]);

    let host2 = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.exec_after = vec![vec!["false".into()]];
    let (_, report) = upgrade(&host2, &["web"], opts, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::RolledBack);
    assert_eq!(assert_settled(&host2, &["web"]), "app:1");
}

#[tokio::test(start_paused = true)]
async fn a_group_member_that_fails_rolls_every_member_back() {
    let host = new_host(&["web", "worker", "cron"]);
    // The target of every member is app:bad: the first one started (cron) fails its check.
    let (_, report) = upgrade(&host, &["web", "worker", "cron"], options("bad"), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(assert_settled(&host, &["web", "worker", "cron"]), "app:1");
}

#[tokio::test(start_paused = true)]
async fn a_failing_second_hop_leaves_the_first_hop_running() {
    let host = new_host(&["web"]);
    let mut opts = options("bad");
    opts.via = vec!["2".into()];
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Partial);
    assert_eq!(report.stages_done, 1);
    assert_eq!(report.running, "app:2");
    assert_eq!(assert_settled(&host, &["web"]), "app:2");
}

#[tokio::test(start_paused = true)]
async fn a_carried_file_keeps_its_content_mode_and_owner_and_its_copy_goes() {
    let host = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.carry = vec![
        CarriedPath {
            path: "/app/.env".into(),
            optional: false,
            by_profile: false,
        },
        CarriedPath {
            path: "/app/missing".into(),
            optional: true,
            by_profile: false,
        },
    ];
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    let file = &host.engine.named("web").unwrap().files["/app/.env"];
    assert_eq!(
        (file.bytes.as_slice(), file.mode, file.uid, file.gid),
        (&b"ENCODE_KEY=k-123456\n"[..], 0o640, 1000, 1000)
    );
    assert!(!host
        .dir
        .join("runs")
        .read_dir()
        .unwrap()
        .flatten()
        .any(|e| e.path().extension().is_some_and(|x| x == "files")));

    let host = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.carry = vec![CarriedPath {
        path: "/app/missing".into(),
        optional: false,
        by_profile: false,
    }];
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::NothingChanged);
    assert!(report.failure.unwrap().contains("has no /app/missing"));
}

#[tokio::test(start_paused = true)]
async fn an_env_rename_moves_the_value_and_verify_expects_it() {
    let host = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.env.rename = vec![("ENCODE_KEY".into(), "ENCRYPTION_SECRET".into())];
    opts.steps.env.set = vec![("MODE".into(), "fast".into())];
    opts.steps.env.unset = vec!["TZ".into()];
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    let env = host
        .engine
        .inspect("web")
        .await
        .unwrap()
        .unwrap()
        .env()
        .to_vec();
    assert!(
        env.contains(&"ENCRYPTION_SECRET=k-123456".to_string()),
        "{env:?}"
    );
    assert!(env.contains(&"MODE=fast".to_string()));
    assert!(
        !env.iter()
            .any(|e| e.starts_with("ENCODE_KEY=") || e.starts_with("TZ=")),
        "{env:?}"
    );

    let host = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.env.rename = vec![("NO_SUCH_KEY".into(), "X".into())];
    let refused = prepare(
        &host.engine,
        &host.state,
        &Catalog::default(),
        &request(&host, &["web"], opts),
    )
    .await
    .err()
    .unwrap();
    assert!(
        refused
            .to_string()
            .contains("the container has no NO_SUCH_KEY"),
        "{refused}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_migration_that_prints_it_did_nothing_fails_although_it_exited_0() {
    let host = new_host(&["web"]);
    let mut opts = options("2");
    // The fake prints the command it runs, as Anchore's tool prints "Skipping upgrade".
    let command = vec!["migrate".to_string(), "Skipping upgrade.".to_string()];
    opts.steps.migrate = Some(Migration {
        command,
        fails_if_output_has: vec!["Skipping upgrade".into()],
        ..migration(60)
    });
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert!(
        report.failure.unwrap().contains("exited 0 but printed"),
        "it did nothing, and said so"
    );
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}

/// Backs up the apps' database (named by `DB_URL`) into the host's directory.
fn with_backup(mut options: UpgradeOptions) -> UpgradeOptions {
    options.backup = Some(BackupPlan {
        root: BACKUPS_IN_HOST.into(),
        keep: 2,
        ..BackupPlan::default()
    });
    options
}

#[tokio::test(start_paused = true)]
async fn a_rollback_across_a_migration_restores_the_backup_and_says_so() {
    let host = new_host(&["web"]);
    let mut opts = options("bad");
    opts.steps.migrate = Some(migration(60));
    let opts = with_backup(opts);
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        host.engine.world().data["schema"],
        "1",
        "the migration's change was undone"
    );
    assert!(
        report.restored[0].contains("restored the PostgreSQL database app"),
        "{:?}",
        report.restored
    );
    assert!(
        report
            .warnings
            .iter()
            .all(|w| !w.contains("cutover took no backup")),
        "{:?}",
        report.warnings
    );
    let backup = report.steps.iter().find(|s| s.step == "backup").unwrap();
    assert_eq!(backup.status, StepStatus::Undone);
}

#[tokio::test(start_paused = true)]
async fn a_backup_directory_other_users_can_write_is_refused_before_anything_changes() {
    use crate::private::{assert_refuses, chmod};
    let host = new_host(&["web"]);
    let root = host.dir.join(BACKUPS_IN_HOST);
    let folder = root.join("web");
    std::fs::create_dir_all(&folder).unwrap();
    for (exposed, other) in [(&root, &folder), (&folder, &root)] {
        chmod(exposed, 0o770);
        chmod(other, 0o700);
        let request = request(&host, &["web"], with_backup(options("2")));
        let refused = prepare(&host.engine, &host.state, &Catalog::default(), &request).await;
        assert_refuses(refused.err().expect("refused"), exposed);
        assert_eq!(assert_settled(&host, &["web"]), "app:1");
        assert!(host.state.runs().unwrap().is_empty());
    }
}

/// Set in the process [`under_umask_000_what_a_run_writes_is_its_owners_alone`] starts.
const UMASK_000_CHILD: &str = "CUTOVER_TEST_UMASK_000_CHILD";

/// Under `umask 000`, every directory a run creates is 0700 and every file 0600: the state
/// directory, journal and locks, the backups, the run's copies of files and a cluster record.
/// A umask belongs to the whole process, and unit tests run side by side in its threads: this
/// test runs itself again (this test binary, this one test) in a process of its own that
/// `sh -c 'umask 000; exec …'` starts, so no other test makes files under that umask, and the
/// child checks that it really has it.
#[test]
fn under_umask_000_what_a_run_writes_is_its_owners_alone() {
    use std::os::unix::fs::MetadataExt;
    if std::env::var_os(UMASK_000_CHILD).is_none() {
        let module = module_path!().split_once("::").map_or("", |(_, m)| m);
        let test = format!("{module}::under_umask_000_what_a_run_writes_is_its_owners_alone");
        let out = std::process::Command::new("sh")
            .args(["-c", "umask 000 && exec \"$@\"", "sh"])
            .arg(std::env::current_exe().unwrap())
            .args(["--exact", &test, "--test-threads=1"])
            .env(UMASK_000_CHILD, "1")
            .output()
            .unwrap();
        let told = String::from_utf8_lossy(&out.stdout) + String::from_utf8_lossy(&out.stderr);
        // A filter that matched no test passes too: the child must have run this one.
        assert!(out.status.success() && told.contains(" 1 passed"), "{told}");
        return;
    }
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    assert!(
        status.lines().any(|l| l == "Umask:\t0000"),
        "the child runs under umask 000: {status}"
    );
    let host = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(async {
            let host = new_host(&["web"]);
            let mut opts = with_backup(options("2"));
            opts.steps.carry = vec![CarriedPath {
                path: "/app/.env".into(),
                optional: false,
                by_profile: false,
            }];
            // Killed once its last step is journaled: nothing is cleaned up yet.
            let last = step_count(&["web"], &opts, Copies::Dump).await - 1;
            let fault = Fault::Crash {
                step: last,
                at: Moment::Journaled,
            };
            let (_, result) = upgrade(&host, &["web"], opts, Some(fault)).await;
            assert!(matches!(result, Err(RunError::Interrupted)));
            host
        });
    let record = crate::plan::steps::gate::ClusterRecord::path(&host.dir, "cluster");
    crate::plan::steps::gate::ClusterRecord::create(&record, "web").unwrap();
    let mut seen = Vec::new();
    let mut dirs = vec![host.dir.clone()];
    while let Some(dir) = dirs.pop() {
        let meta = std::fs::symlink_metadata(&dir).unwrap();
        assert_eq!(
            format!("{:o}", meta.mode() & 0o7777),
            "700",
            "{}",
            dir.display()
        );
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            seen.push(path.strip_prefix(&host.dir).unwrap().display().to_string());
            match entry.file_type().unwrap().is_dir() {
                true => dirs.push(path),
                false => {
                    let mode = entry.metadata().unwrap().mode() & 0o7777;
                    assert_eq!(format!("{mode:o}"), "600", "{}", path.display());
                }
            }
        }
    }
    let journal = |p: &String| p.starts_with("runs/") && p.ends_with(".jsonl");
    let copy = |p: &String| p.contains(".files/") && p.ends_with("%app%.env");
    let backup = |p: &String| p.starts_with("backups/web/") && p.ends_with("manifest.json");
    for (what, found) in [
        ("the journal", seen.iter().any(journal)),
        ("the lock", seen.iter().any(|p| p == "locks/web.lock")),
        ("the carried file's copy", seen.iter().any(copy)),
        ("the backup", seen.iter().any(backup)),
        (
            "the cluster record",
            seen.iter().any(|p| p == "clusters/cluster.json"),
        ),
    ] {
        assert!(found, "{what} is among {seen:#?}");
    }
}

/// The migration of these options, and a version check the new version fails after it served.
fn migrated_then_misreported(to: &str) -> UpgradeOptions {
    let mut opts = options(to);
    opts.steps.migrate = Some(migration(60));
    opts.steps.expect_version = Some(VersionSource::Command(vec![
        "print".into(),
        "version 2025.13 (Build 4)".into(),
    ]));
    opts
}

#[tokio::test(start_paused = true)]
async fn a_check_failing_after_a_migration_without_a_backup_keeps_the_new_version_serving() {
    let host = new_host(&["web"]);
    let (_, report) = upgrade(&host, &["web"], migrated_then_misreported("2"), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::KeptNew, "{:?}", report.failure);
    assert_eq!(report.running, "app:2");
    let web = host.engine.inspect("web").await.unwrap().unwrap();
    assert_eq!(web.image().to_string(), "app:2");
    assert!(web.is_running());
    let old = host.engine.inspect("web-old").await.unwrap().unwrap();
    assert!(!old.is_running(), "the old version is kept stopped");
    assert_eq!(
        host.engine.world().data["schema"],
        "2",
        "the data stays migrated"
    );
    assert!(
        host.state.unfinished(None).unwrap().is_empty(),
        "recover must not take it back"
    );
    // With a backup the same failure goes back, data and all.
    let host = new_host(&["web"]);
    let (_, report) = upgrade(
        &host,
        &["web"],
        with_backup(migrated_then_misreported("2")),
        None,
    )
    .await;
    assert_eq!(report.unwrap().outcome, Outcome::RolledBack);
    assert_eq!(host.engine.world().data["schema"], "1");
}

#[tokio::test(start_paused = true)]
async fn a_database_user_who_could_not_restore_is_refused_before_anything_stops() {
    let host = new_host(&["web"]);
    host.engine
        .set_restore_denied("table public.jobs is owned by postgres");
    let request = request(&host, &["web"], with_backup(options("2")));
    let refused = prepare(&host.engine, &host.state, &Catalog::default(), &request).await;
    let Err(crate::Error::Refused(message)) = refused else {
        panic!("not refused: {:?}", refused.map(|p| p.plan.container));
    };
    assert!(
        message.contains(
            "cannot replace what the database holds: table public.jobs is owned by postgres"
        ),
        "{message}"
    );
    let web = host.engine.inspect("web").await.unwrap().unwrap();
    assert_eq!(web.image().to_string(), "app:1");
    assert!(web.is_running());
}

#[tokio::test(start_paused = true)]
async fn a_migration_that_fails_half_way_is_undone_by_the_restore() {
    let host = new_host(&["web"]);
    let mut opts = options("2");
    opts.steps.migrate = Some(Migration {
        command: vec!["migrate-fail".into()],
        ..migration(60)
    });
    let (_, report) = upgrade(&host, &["web"], with_backup(opts), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack);
    assert_eq!(
        host.engine.world().data["schema"],
        "1",
        "not left half-migrated"
    );
    assert!(!report.restored.is_empty());
}

/// A host whose database held `old` when a backup of it was taken and holds `new` now, and the
/// plan of `cutover restore` of that backup (5 steps).
async fn restore_of_old_data() -> (Host, Plan) {
    use crate::backup::location::{DatabaseSpec, DbEngine, Source};
    use crate::backup::{BackupTarget, DatabaseTarget};
    let spec = DatabaseSpec {
        sources: vec![Source::UrlEnv {
            name: "DB_URL".into(),
            files: vec![],
        }],
        schema_query: None,
        requires_extensions: Vec::new(),
        product_reads: None,
    };
    let target = BackupTarget {
        database: Some(DatabaseTarget {
            spec,
            engine: DbEngine::Postgres,
            container: DB.into(),
            port: 5432,
            name: "app".into(),
            user: "app".into(),
        }),
        volumes: vec![],
    };
    let host = new_host(&["web"]);
    let app = host.engine.inspect("web").await.unwrap().unwrap();
    host.engine.with_data(&[("schema", "old")]);
    let root = host.dir.join("backups");
    let (_, taken) = crate::backup::take(
        &host.engine,
        crate::backup::App::of(&app),
        &target,
        &root.join("web"),
        false,
        "earlier",
        None,
        None,
    )
    .await
    .unwrap();
    host.engine.with_data(&[("schema", "new")]);
    let plan = crate::plan::build::plan_restore(&app, target, &taken, root, 3, health());
    assert_eq!(plan.step_count(), 5);
    (host, plan)
}

#[tokio::test(start_paused = true)]
async fn a_restore_stopped_by_a_signal_ends_on_one_whole_set_of_data() {
    for step in 0..5 {
        let case = format!("restore, SIGTERM after step {}", step + 1);
        let (host, plan) = restore_of_old_data().await;
        let report = run_plan(&host, &plan, Some(Fault::Signal(step)))
            .await
            .unwrap();
        let schema = host.engine.world().data["schema"].clone();
        // Down from the stop (step 1); started again at step 4: finished from there.
        match step {
            0..=2 => {
                assert_eq!(report.outcome, Outcome::RolledBack, "{case}");
                assert_eq!(schema, "new", "{case}: the data it had is back");
            }
            _ => {
                assert_eq!(report.outcome, Outcome::Succeeded, "{case}");
                assert_eq!(schema, "old", "{case}: restored");
            }
        }
        assert_settled(&host, &["web"]);
    }
}

#[tokio::test(start_paused = true)]
async fn a_restore_killed_at_any_moment_ends_on_one_whole_set_of_data() {
    let steps = 5;
    for step in 0..steps {
        for at in [Moment::Began, Moment::Acted, Moment::Journaled] {
            let case = format!("restore killed at step {} ({at:?})", step + 1);
            let (host, plan) = restore_of_old_data().await;
            let result = run_plan(&host, &plan, Some(Fault::Crash { step, at })).await;
            assert!(matches!(result, Err(RunError::Interrupted)), "{case}");
            tokio::time::sleep(DEAD_FOR).await;
            let recovered = recover(&host.engine, &host.state, None, &Default::default())
                .await
                .unwrap()
                .remove(0);
            let schema = host.engine.world().data["schema"].clone();
            match recovered.outcome {
                Some(Outcome::Succeeded) => assert_eq!(schema, "old", "{case}: restored"),
                Some(Outcome::RolledBack | Outcome::NothingChanged) => {
                    assert_eq!(schema, "new", "{case}: the data it had is back")
                }
                other => panic!("{case}: {other:?} {}", recovered.message),
            }
            assert_settled(&host, &["web"]);
        }
    }
}

/// An upgrade of `web` with a migration that runs `command`.
fn migrating(command: &str) -> UpgradeOptions {
    let mut opts = options("2");
    opts.steps.migrate = Some(Migration {
        command: vec![command.into()],
        ..migration(60)
    });
    opts
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_restarts_during_the_migration_is_waited_for_and_the_old_version_comes_back()
{
    let host = new_host(&["web"]);
    // dockerd stops every container as it goes, and answers none of the next 6 calls.
    host.engine.outage_at("follow_to_exit", 0, 6);
    let (_, report) = upgrade(&host, &["web"], migrating("migrate"), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    let failure = report.failure.unwrap();
    assert!(
        failure.contains("the Docker engine went away during the step and is back"),
        "{failure}"
    );
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}

#[tokio::test(start_paused = true)]
async fn an_undo_the_engine_was_away_for_is_applied_again_once_it_answers() {
    let host = new_host(&["web"]);
    // Away at the rollback's removal of the migration's container (the migration removed it
    // once already), for that call and two pings; it stops every container.
    host.engine.outage_at("remove", 1, 3);
    let (_, report) = upgrade(&host, &["web"], migrating("migrate-fail"), None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{report:?}");
    let failure = report.failure.unwrap();
    assert!(failure.contains("exited with code 2"), "{failure}");
    assert!(
        !failure.contains("went away"),
        "away only in the rollback: {failure}"
    );
    assert!(
        host.engine.world().outages.is_empty(),
        "the engine went away"
    );
    assert!(
        report.undo_failures.is_empty(),
        "{:?}",
        report.undo_failures
    );
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}

/// The engine answers again: `recover` rolls the run back, the old version serving.
async fn recovered_once_the_engine_answers(host: &Host) {
    host.engine.end_outages();
    recover_rolls_back(host).await;
    assert_eq!(assert_settled(host, &["web"]), "app:1");
}

/// `recover` takes the host's one unfinished run back to the version before it.
async fn recover_rolls_back(host: &Host) {
    let recovered = recover(&host.engine, &host.state, None, &Default::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(
        recovered.outcome,
        Some(Outcome::RolledBack),
        "{}",
        recovered.message
    );
}

/// A run's journal as text.
fn journal_text(report: &RunReport) -> String {
    std::fs::read_to_string(&report.journal).unwrap()
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_stays_away_ends_the_run_within_its_wait_and_recover_brings_it_back() {
    let host = new_host(&["web"]);
    host.engine.outage_at("follow_to_exit", 0, usize::MAX);
    let began = tokio::time::Instant::now();
    let (_, report) = upgrade(&host, &["web"], migrating("migrate"), None).await;
    let report = report.unwrap();
    let waited = began.elapsed();
    assert_eq!(report.outcome, Outcome::NeedsAttention, "{report:?}");
    // One wait for the whole run, the undos included: not one per step.
    assert!(
        waited >= endpoint::DEFAULT_WAIT
            && waited < endpoint::DEFAULT_WAIT + Duration::from_secs(10),
        "{waited:?}"
    );
    let failure = report.failure.clone().unwrap();
    let message = format!("{failure} {}", journal_text(&report));
    assert!(
        message.contains("`cutover recover web`") && message.contains("2m"),
        "{message}"
    );
    assert!(
        !journal_text(&report).contains("\"event\":\"undo\""),
        "nothing is undone without an engine: {}",
        journal_text(&report)
    );
    recovered_once_the_engine_answers(&host).await;
}

#[tokio::test(start_paused = true)]
async fn the_wait_for_the_engine_is_one_for_the_whole_run() {
    let host = new_host(&["web"]);
    // Away for about 100 s during the migration (each failed ping 0.5 s apart), then back: the
    // run rolls back; away again at the rollback's removal of the migration's container, for
    // longer than the 20 s the run has left of its 2 minutes.
    host.engine.outage_at("follow_to_exit", 0, 200);
    host.engine.outage_at("remove", 0, usize::MAX);
    let began = tokio::time::Instant::now();
    let (_, report) = upgrade(&host, &["web"], migrating("migrate"), None).await;
    let report = report.unwrap();
    let waited = began.elapsed();
    assert_eq!(report.outcome, Outcome::NeedsAttention, "{report:?}");
    assert!(
        waited < endpoint::DEFAULT_WAIT + Duration::from_secs(10),
        "the second absence had what was left of the wait: {waited:?}"
    );
    recovered_once_the_engine_answers(&host).await;
}

/// The backups of `web` the host keeps, and what their manifests say of the database.
fn backups_of_web(host: &Host) -> Vec<crate::backup::Listed> {
    crate::backup::list(&host.dir.join(BACKUPS_IN_HOST), Some("web")).unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_snapshot_in_the_window_becomes_the_portable_backup_once_the_new_version_serves() {
    let host = shape_host(&["web"], Copies::Server);
    let opts = with_backup(migrating("migrate"));
    let (plan, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    let names: Vec<&str> = report.steps.iter().map(|s| s.step).collect();
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        !names.contains(&"backup"),
        "no dump in the window: {names:?}"
    );
    assert!(
        at("stop") < at("snapshot") && at("snapshot") < at("migrate"),
        "{names:?}"
    );
    assert!(
        at("await_healthy") < at("backup_from_snapshot"),
        "{names:?}"
    );
    assert!(plan.stages[0].steps.iter().any(|s| s
        .describe(&plan)
        .contains("snapshot the PostgreSQL database app")));
    let written = report
        .steps
        .iter()
        .find(|s| s.step == "backup_from_snapshot")
        .unwrap();
    assert!(
        written
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("written after")),
        "{written:?}"
    );
    let backups = backups_of_web(&host);
    assert_eq!(backups.len(), 1, "the portable backup");
    assert_eq!(backups[0].manifest.container, "web");
    assert_eq!(
        backups[0].manifest.target.database.as_ref().unwrap().name,
        "app"
    );
    let world = host.engine.world();
    assert_eq!(world.data["schema"], "2");
    assert_eq!(
        world.copies,
        Some(BTreeMap::new()),
        "the snapshot was dropped"
    );
    // What it holds is the data before the migration: restoring it gives the old schema.
    let dump = std::fs::read(backups[0].path.join("database.pgdump.zst")).unwrap();
    let data: BTreeMap<String, String> =
        serde_json::from_slice(&zstd::decode_all(&dump[..]).unwrap()).unwrap();
    assert_eq!(data["schema"], "1");
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_puts_the_snapshot_back_and_drops_the_migrated_copy_once_the_old_version_serves(
) {
    let host = shape_host(&["web"], Copies::Server);
    let opts = with_backup(migrating("migrate-fail"));
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.failure);
    assert!(
        report
            .restored
            .iter()
            .any(|r| r.contains("put the snapshot app__cutover_")),
        "{:?}",
        report.restored
    );
    let world = host.engine.world();
    assert_eq!(world.data["schema"], "1", "the data before the migration");
    assert_eq!(
        world.copies,
        Some(BTreeMap::new()),
        "neither the snapshot nor the migrated copy is left"
    );
    assert!(
        backups_of_web(&host).is_empty(),
        "no backup was written: none was needed"
    );
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}

#[tokio::test(start_paused = true)]
async fn a_server_that_cannot_copy_says_why_the_database_is_dumped() {
    let host = new_host(&["web"]);
    let opts = with_backup(migrating("migrate"));
    let (plan, report) = upgrade(&host, &["web"], opts, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    let backup = plan.stages[0]
        .steps
        .iter()
        .find(|s| s.name() == "backup")
        .expect("a dump in the window");
    assert!(
        backup.describe(&plan).contains(
            "dumped, not snapshotted: its server's volume cannot be copied: its data directory /var/lib/postgresql/data is on no volume; and the server cannot copy the database: the server's own user (POSTGRES_USER) is no superuser"
        ),
        "{}",
        backup.describe(&plan)
    );
}

#[tokio::test(start_paused = true)]
async fn copies_a_run_could_not_remove_are_found_on_their_servers_and_volumes() {
    let host = shape_host(&["web"], Copies::Server);
    let (plan, report) = upgrade(&host, &["web"], with_backup(migrating("migrate")), None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    assert!(crate::ops::backup::copies_left(&host.engine, &host.state)
        .await
        .is_empty());
    // As if the run's cleanup had failed: its copy stays on the server, and a volume's too.
    let name = plan.stages[0]
        .steps
        .iter()
        .find_map(|s| match s {
            crate::plan::Step::Snapshot(s) => Some(s.name.clone()),
            _ => None,
        })
        .unwrap();
    host.engine
        .mount("web", "dbdata__cutover_20260101T000000:/x");
    host.engine.with_copy(&name);
    let left = crate::ops::backup::copies_left(&host.engine, &host.state).await;
    let copies: Vec<&str> = left.iter().map(|l| l.copy.as_str()).collect();
    assert_eq!(copies, [name.as_str()], "{left:?}");
    assert!(left[0].of.contains("on the server db") && left[0].remove.contains("DROP DATABASE"));
}

/// The steps of a report, by name.
fn step_names(report: &RunReport) -> Vec<&'static str> {
    report.steps.iter().map(|s| s.step).collect()
}

#[tokio::test(start_paused = true)]
async fn a_server_of_the_product_alone_is_copied_as_its_volume_first_while_it_serves() {
    let host = shape_host(&["web"], Copies::Volume);
    let opts = with_backup(migrating("migrate"));
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    let names = step_names(&report);
    let at = |name: &str| names.iter().position(|n| *n == name).unwrap();
    assert!(
        at("precopy") < at("stop")
            && at("stop") < at("snapshot_volume")
            && at("snapshot_volume") < at("migrate")
            && at("await_healthy") < at("backup_from_snapshot"),
        "{names:?}"
    );
    assert!(!names.contains(&"backup") && !names.contains(&"snapshot"));
    let backups = backups_of_web(&host);
    assert_eq!(backups.len(), 1, "the portable backup");
    let dump = std::fs::read(backups[0].path.join("database.pgdump.zst")).unwrap();
    let data: BTreeMap<String, String> =
        serde_json::from_slice(&zstd::decode_all(&dump[..]).unwrap()).unwrap();
    assert_eq!(
        data,
        BTreeMap::from([("schema".to_string(), "1".to_string())]),
        "the data from before the migration, read from the copy the window mended"
    );
    let world = host.engine.world();
    assert_eq!(world.data["schema"], "2");
    assert_eq!(
        world.volumes.keys().collect::<Vec<_>>(),
        ["dbdata"],
        "the copy was removed"
    );
    assert_settled(&host, &["web"]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_migration_copies_back_what_it_changed_and_drops_it_once_the_old_version_serves() {
    let host = shape_host(&["web"], Copies::Volume);
    let opts = with_backup(migrating("migrate-fail"));
    let (_, report) = upgrade(&host, &["web"], opts, None).await;
    let report = report.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.failure);
    assert!(
        report
            .restored
            .iter()
            .any(|r| r.contains("put the database app back from the copy dbdata__cutover_")),
        "{:?}",
        report.restored
    );
    let world = host.engine.world();
    assert_eq!(
        world.data,
        BTreeMap::from([("schema".to_string(), "1".to_string())])
    );
    assert!(world.asides.is_empty(), "{:?}", world.asides);
    assert_eq!(world.volumes.keys().collect::<Vec<_>>(), ["dbdata"]);
    assert!(backups_of_web(&host).is_empty(), "none was needed");
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}

/// A copy the window cannot take (another session on the database keeps its server from
/// copying it; the storage fills under a volume's pass) gives way to the dump, said, which the
/// rollback restores; the server serves all along.
#[tokio::test(start_paused = true)]
async fn a_copy_the_window_cannot_take_is_a_dump_there_and_is_restored() {
    /// How the copy is taken, what makes it fail, and what the warning says of it.
    type Case = (Copies, fn(&Host), &'static str);
    let cases: [Case; 2] = [
        (
            Copies::Server,
            |h| {
                h.engine
                    .refuse_copies("source database \"app\" is being accessed by other users")
            },
            "being accessed by other users",
        ),
        (
            Copies::Volume,
            |h| {
                h.engine
                    .fail_volume_copies("cp: write error: No space left on device")
            },
            "No space left",
        ),
    ];
    for (copies, fail, why) in cases {
        let host = shape_host(&["web"], copies);
        fail(&host);
        let opts = with_backup(migrating("migrate-fail"));
        let (_, report) = upgrade(&host, &["web"], opts, None).await;
        let report = report.unwrap();
        assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.failure);
        assert!(
            report
                .warnings
                .iter()
                .any(|w| w.contains("dumped in the window, not snapshotted") && w.contains(why)),
            "{copies:?}: {:?}",
            report.warnings
        );
        assert!(
            report.restored[0].contains("restored the PostgreSQL database app"),
            "{:?}",
            report.restored
        );
        assert_eq!(host.engine.world().data["schema"], "1");
        assert!(host.engine.named(DB).unwrap().running, "the server serves");
        assert_eq!(assert_settled(&host, &["web"]), "app:1");
    }
}

#[tokio::test(start_paused = true)]
async fn a_server_holding_other_databases_is_copied_on_the_server_and_says_why() {
    let host = shape_host(&["web"], Copies::Volume);
    host.engine.hold_other_databases(&["billing"]);
    let opts = with_backup(migrating("migrate"));
    let (plan, report) = upgrade(&host, &["web"], opts, None).await;
    assert_eq!(report.unwrap().outcome, Outcome::Succeeded);
    let names: Vec<&str> = plan.stages[0].steps.iter().map(|s| s.name()).collect();
    assert!(
        names.contains(&"snapshot") && !names.contains(&"precopy"),
        "{names:?}"
    );
    // Nor can its server copy it: the dump, saying why.
    let host = new_host(&["web"]);
    host.engine.mount(DB, "dbdata:/var/lib/postgresql/data");
    host.engine.hold_other_databases(&["billing"]);
    let (plan, _) = upgrade(&host, &["web"], with_backup(migrating("migrate")), None).await;
    let backup = plan.stages[0]
        .steps
        .iter()
        .find(|s| s.name() == "backup")
        .expect("a dump");
    assert!(
        backup
            .describe(&plan)
            .contains("holds other databases too (billing)"),
        "{}",
        backup.describe(&plan)
    );
}

#[tokio::test(start_paused = true)]
async fn a_snapshotted_database_whose_server_is_gone_is_named_and_recover_puts_it_back_later() {
    let host = shape_host(&["web"], Copies::Server);
    let opts = with_backup(migrating("migrate"));
    let planned = prepare(
        &host.engine,
        &host.state,
        &Catalog::default(),
        &request(&host, &["web"], opts.clone()),
    )
    .await
    .expect("preflight")
    .plan;
    let migrate = planned.stages[0]
        .steps
        .iter()
        .position(|s| s.name() == "migrate")
        .unwrap();
    let (_, result) = upgrade(
        &host,
        &["web"],
        opts,
        Some(Fault::Crash {
            step: migrate,
            at: Moment::Journaled,
        }),
    )
    .await;
    assert!(matches!(result, Err(RunError::Interrupted)));
    host.engine.stop(DB, None).await.unwrap();
    let recovered = recover(&host.engine, &host.state, None, &Default::default())
        .await
        .unwrap()
        .remove(0);
    assert_eq!(recovered.outcome, Some(Outcome::NeedsAttention));
    assert!(
        recovered.message.contains("the snapshot app__cutover_")
            && recovered.message.contains("could not be put back on db"),
        "{}",
        recovered.message
    );
    assert_eq!(
        host.engine.world().data["schema"],
        "2",
        "nothing was guessed"
    );
    host.engine.start(DB).await.unwrap();
    recover_rolls_back(&host).await;
    let world = host.engine.world();
    assert_eq!(world.data["schema"], "1");
    assert_eq!(world.copies, Some(BTreeMap::new()));
    assert_eq!(assert_settled(&host, &["web"]), "app:1");
}
