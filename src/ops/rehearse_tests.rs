//! A rehearsal over the in-memory engine: its migration runs on the copy and never on the
//! fake's own database, a failure says so with nothing changed, and a kill at every moment of
//! every step leaves nothing once recovered.
//!
//! The fake's copy: the rehearsal's server (the labelled container with a volume) keeps what is
//! restored into it in that volume, and a one-shot on its network migrates that volume.

use super::upgrade_tests::{
    assert_no_run_files, health, migration, new_host, run_plan, Host, DEAD_FOR,
};
use crate::health::HealthSettings;
use crate::ops::backup::BackupRequest;
use crate::ops::rehearse::{prepare, Findings};
use crate::ops::settings::Given;
use crate::ops::upgrade::UpgradeRequest;
use crate::plan::build::Target;
use crate::plan::{Plan, UpgradeOptions};
use crate::profile::{Catalog, Choice};
use crate::run::journal::Outcome;
use crate::run::recover::recover;
use crate::run::runner::{Fault, Moment, RunError};

/// A rehearsal of `web`'s move to `to`, running `command` as its migration, its database named
/// by `--backup-db DB_URL`.
async fn rehearsal(host: &Host, to: &str, command: &str) -> Plan {
    let mut options = UpgradeOptions::new(Target::Tag(to.into()), health());
    options.steps.migrate = Some(crate::plan::build::Migration {
        command: vec![command.into()],
        ..migration(600)
    });
    prepared(host, options).await.expect("preflight")
}

/// The plan of a rehearsal with these options, or why it is refused.
async fn prepared(host: &Host, options: UpgradeOptions) -> Result<Plan, crate::Error> {
    let request = UpgradeRequest {
        follows: None,
        name: "web".into(),
        with: Vec::new(),
        given: Given {
            health: HealthSettings::default(),
            profile: Choice::Without,
            ..Given::default()
        },
        options,
        backup: BackupRequest {
            db_var: Some("DB_URL".into()),
            ..BackupRequest::default()
        },
        compose: Default::default(),
        related: Default::default(),
    };
    prepare(&host.engine, &host.state, &Catalog::default(), &request)
        .await
        .map(|p| p.plan)
}

/// Production as it was: `web` the same container on `app:1`, the database at schema 1, and
/// nothing of the rehearsal left (containers, network, volume, files).
fn assert_untouched(host: &Host, web: &str, case: &str) {
    let world = host.engine.world();
    assert_eq!(world.data["schema"], "1", "{case}: the database moved");
    let names: Vec<&str> = world.containers.values().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names.len(),
        2,
        "{case}: only web and db are left: {names:?}"
    );
    let now = host.engine.named("web").unwrap();
    assert_eq!(now.id, web, "{case}: web was replaced");
    assert!(
        now.running && now.image == "app:1",
        "{case}: web stopped or moved"
    );
    assert!(world.networks.is_empty(), "{case}: {:?}", world.networks);
    assert!(
        !world.volumes.keys().any(|v| v.contains("cutover-rehearse")),
        "{case}: {:?}",
        world.volumes
    );
    assert_no_run_files(host, case);
}

#[tokio::test(start_paused = true)]
async fn a_rehearsal_migrates_the_copy_and_leaves_production_as_it_was() {
    let host = new_host(&["web"]);
    let web = host.engine.named("web").unwrap().id;
    let plan = rehearsal(&host, "2", "migrate").await;
    // The copy is read as the migration left it, just before it is removed.
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    let findings = Findings::of(&plan, &report);
    assert_eq!(findings.migrations.len(), 1);
    assert!(findings.migrations[0].succeeded);
    assert!(findings.window_ms.is_some() && findings.dump_ms.is_some());
    assert_eq!(
        findings.window_ms,
        Some(findings.stop_ms.unwrap() + findings.migrations[0].ms + findings.start_ms.unwrap())
    );
    assert_untouched(&host, &web, "passed");
}

#[tokio::test(start_paused = true)]
async fn the_copy_holds_the_data_and_takes_the_migration() {
    let host = new_host(&["web"]);
    let mut plan = rehearsal(&host, "2", "migrate").await;
    // Without its removal, what the rehearsal made stays to be read.
    plan.stages[0].steps.pop();
    run_plan(&host, &plan, None).await.unwrap();
    let world = host.engine.world();
    assert_eq!(
        world.data["schema"], "1",
        "production's database did not move"
    );
    assert_eq!(
        world.volumes["web-cutover-rehearse-db"]["schema"], "2",
        "the copy was migrated: {world:#?}"
    );
    let one_shots_on_production = world
        .containers
        .values()
        .filter(|c| c.name != "db" && c.networks.contains_key("net"))
        .count();
    assert_eq!(
        one_shots_on_production, 1,
        "only web is on production's network"
    );
}

#[tokio::test(start_paused = true)]
async fn a_migration_that_fails_on_the_copy_changes_nothing_and_says_so() {
    let host = new_host(&["web"]);
    let web = host.engine.named("web").unwrap().id;
    let plan = rehearsal(&host, "2", "migrate-fail").await;
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::NothingChanged);
    assert!(
        report
            .failure
            .as_deref()
            .unwrap()
            .contains("exited with code 2"),
        "{:?}",
        report.failure
    );
    assert!(
        report.warnings.is_empty(),
        "no warning about production's data: {:?}",
        report.warnings
    );
    let findings = Findings::of(&plan, &report);
    assert!(!findings.migrations[0].succeeded && findings.window_ms.is_none());
    assert_untouched(&host, &web, "failed");
}

#[tokio::test(start_paused = true)]
async fn a_rehearsal_killed_at_every_moment_of_every_step_leaves_nothing_once_recovered() {
    let steps = rehearsal(&new_host(&["web"]), "2", "migrate")
        .await
        .step_count();
    for step in 0..steps {
        for at in [Moment::Began, Moment::Acted, Moment::Journaled] {
            let case = format!("killed at step {} ({at:?})", step + 1);
            let host = new_host(&["web"]);
            let web = host.engine.named("web").unwrap().id;
            let plan = rehearsal(&host, "2", "migrate").await;
            let result = run_plan(&host, &plan, Some(Fault::Crash { step, at })).await;
            assert!(matches!(result, Err(RunError::Interrupted)), "{case}");
            tokio::time::sleep(DEAD_FOR).await;
            let recoveries = recover(&host.engine, &host.state, None, &Default::default())
                .await
                .unwrap();
            assert_eq!(
                recoveries[0].outcome,
                Some(Outcome::NothingChanged),
                "{case}: {}",
                recoveries[0].message
            );
            assert_eq!(recoveries[0].downtime_ms, None, "{case}: never down");
            assert_untouched(&host, &web, &case);
            assert!(host.state.unfinished(None).unwrap().is_empty(), "{case}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_version_that_migrates_as_it_starts_is_rehearsed_by_its_start_and_none_is_refused() {
    let host = new_host(&["web"]);
    let mut options = UpgradeOptions::new(Target::Tag("2".into()), health());
    let refused = prepared(&host, options.clone()).await.unwrap_err();
    assert!(
        refused.to_string().contains("nothing to rehearse"),
        "{refused}"
    );
    options.steps.migrates_at_start = true;
    let plan = prepared(&host, options).await.unwrap();
    let names: Vec<&str> = plan.stages[0].steps.iter().map(|s| s.name()).collect();
    assert!(
        names.contains(&"rehearse_start") && !names.contains(&"rehearse_migrate"),
        "{names:?}"
    );
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    assert!(Findings::of(&plan, &report).window_ms.is_some());
}
