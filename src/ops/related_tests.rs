//! A product with a related product (as Quay with Clair) over the in-memory engine: found
//! beside it, moved to its own version with its own database backed up, started and ready
//! first, both put back when either fails, and recovered after a kill at every moment of every
//! step.

use std::time::Duration;

use super::upgrade_tests::{expected, health, migration, new_host, run_plan, Host, DB, DEAD_FOR};
use crate::engine::fake::Behaviour;
use crate::health::HealthSettings;
use crate::ops::backup::BackupRequest;
use crate::ops::settings::Given;
use crate::ops::upgrade::{prepare, UpgradeRequest};
use crate::plan::build::Target;
use crate::plan::{is_reserved_name, Plan, UpgradeOptions};
use crate::profile::{Catalog, Choice, Loaded, Profile};
use crate::run::journal::Outcome;
use crate::run::recover::recover;
use crate::run::runner::{Fault, Moment, RunError};

/// A product on `app` whose related product `scanner` (on `scan`) keeps its own database in
/// its configuration file, as Quay's profile says of Clair.
const PROFILE: &str = r#"
name: webapp
description: a product with a related scanner
match: ["app"]
database:
  sources: [{ url_env: { name: DB_URL } }]
related:
  scanner:
    match: ["scan"]
    config: { path: /config/config.yaml, env: SCAN_CONF }
    database: { key: indexer.connstring, same_as: [matcher.connstring] }
    ready: { port: 8089, addr_key: introspection_addr, path: /readyz, status: 200, timeout: 10m }
"#;

/// Its introspection address on loopback: the fake serves no HTTP, so it is awaited by its
/// HEALTHCHECK (the loopback rule of [`crate::profile::RelatedSpec::readiness`]).
const CONFIG: &str = "introspection_addr: localhost:8089\nindexer:\n  connstring: host=db port=5432 dbname=scan user=scan password=scan-pw-31\nmatcher:\n  connstring: postgres://scan:scan-pw-31@db:5432/scan\n";

/// `web` on `app:1` beside its scanner on `scan:1`, `scan:2` and `scan:3` in the registry.
fn host() -> Host {
    let host = new_host(&["web"]);
    for tag in ["1", "2", "3"] {
        host.engine
            .publish(&format!("scan:{tag}"), Behaviour::Healthy, &[]);
    }
    host.engine
        .run("scanner", "scan:1", &[], &[("/config/config.yaml", CONFIG)]);
    host
}

fn catalog() -> Catalog {
    Catalog {
        profiles: vec![Loaded {
            profile: Profile::parse(PROFILE, "test").unwrap(),
            origin: "test".into(),
        }],
    }
}

/// `web` to `to` with its migration and a backup, the scanner's version given as `scanner`.
fn request(host: &Host, to: &str, scanner: Option<&str>) -> UpgradeRequest {
    let mut options = UpgradeOptions::new(Target::Tag(to.into()), health());
    options.steps.migrate = Some(migration(600));
    UpgradeRequest {
        follows: None,
        related: scanner
            .map(|tag| ("scanner".to_string(), tag.to_string()))
            .into_iter()
            .collect(),
        name: "web".into(),
        with: Vec::new(),
        given: Given {
            health: HealthSettings {
                settle: Some(Duration::from_secs(10)),
                timeout: Some(Duration::from_secs(120)),
                ..HealthSettings::default()
            },
            profile: Choice::Auto,
            ..Given::default()
        },
        options,
        backup: BackupRequest {
            dir: Some(host.dir.join("backups")),
            ..BackupRequest::default()
        },
        compose: Default::default(),
    }
}

async fn planned(host: &Host, to: &str, scanner: Option<&str>) -> crate::Result<Plan> {
    prepare(
        &host.engine,
        &host.state,
        &catalog(),
        &request(host, to, scanner),
    )
    .await
    .map(|prepared| prepared.plan.clone())
}

/// Why moving `web` to `app:2` is refused, with the scanner's version given as `scanner`.
async fn refusal(host: &Host, scanner: Option<&str>) -> String {
    match planned(host, "2", scanner).await {
        Ok(plan) => panic!("planned: {:?}", plan.members),
        Err(e) => e.to_string(),
    }
}

/// What `web` and the scanner run, and whether both run.
fn running(host: &Host) -> (String, String) {
    let of = |name: &str| {
        let c = host.engine.named(name).expect("it is there");
        assert!(c.running, "{name} is not running");
        c.image
    };
    (of("web"), of("scanner"))
}

#[tokio::test(start_paused = true)]
async fn the_related_product_moves_to_its_version_backed_up_and_ready_before_the_product() {
    let host = host();
    let plan = planned(&host, "2", Some("2")).await.unwrap();
    assert_eq!(plan.members, ["web", "scanner"]);
    let text: Vec<String> = plan.stages[0]
        .steps
        .iter()
        .map(|s| s.describe(&plan))
        .collect();
    let at = |prefix: &str| {
        text.iter()
            .position(|t| t.starts_with(prefix))
            .unwrap_or_else(|| panic!("{prefix}: {text:#?}"))
    };
    assert!(at("stop web") < at("stop scanner"));
    let backup = "back up the PostgreSQL database scan (through db) of scanner";
    assert!(at("stop scanner") < at(backup), "{text:#?}");
    assert!(at(backup) < at("start scanner"));
    assert!(
        at("run `migrate`") < at("start scanner"),
        "the product migrates first"
    );
    assert!(
        text[at("wait until scanner")].contains("(at most 10m)"),
        "its own timeout"
    );
    assert!(
        plan.notes
            .iter()
            .any(|n| n.contains("scanner (scanner) answers its readiness on loopback only")),
        "{:?}",
        plan.notes
    );
    assert!(at("wait until scanner") < at("start web"), "{text:#?}");
    assert!(!text.join("\n").contains("scan-pw-31"));

    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
    assert_eq!(running(&host), ("app:2".into(), "scan:2".into()));
    let folders: Vec<String> = std::fs::read_dir(host.dir.join("backups"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        folders.contains(&"web".to_string()) && folders.contains(&"scanner".to_string()),
        "each database backed up in its container's folder: {folders:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn without_the_related_version_or_with_another_database_nothing_changes() {
    let host = host();
    let before = host.engine.world();
    let refused = refusal(&host, None).await;
    assert!(
        refused.contains("scanner (scanner)") && refused.contains("--related scanner=TAG"),
        "{refused}"
    );
    let mut other = request(&host, "2", Some("2"));
    other.related.insert("clair".into(), "4.8.0".into());
    let refused = prepare(&host.engine, &host.state, &catalog(), &other)
        .await
        .err()
        .unwrap()
        .to_string();
    assert!(
        refused.contains(
            "--related clair: profile webapp has no related product of that name (it has: scanner)"
        ),
        "{refused}"
    );
    assert_eq!(host.engine.world(), before, "nothing changed");
    host.engine.run(
        "scanner-2",
        "scan:1",
        &["SCAN_CONF=/etc/scan.yaml"],
        &[(
            "/etc/scan.yaml",
            "indexer:\n  connstring: host=db dbname=scan user=scan\nmatcher:\n  connstring: host=db dbname=vulns user=scan\n",
        )],
    );
    let refused = refusal(&host, Some("2")).await;
    assert!(
        refused.contains(
            "scanner-2 (scanner): matcher.connstring in /etc/scan.yaml names another database"
        ),
        "{refused}"
    );
    assert_eq!(running(&host), ("app:1".into(), "scan:1".into()));
    assert_eq!(host.engine.world().data, before.data, "nothing changed");
}

#[tokio::test(start_paused = true)]
async fn without_a_related_container_the_product_moves_alone_and_a_version_for_none_is_refused() {
    let host = new_host(&["web"]);
    let refused = refusal(&host, Some("2")).await;
    assert!(
        refused.contains(
            "--related scanner: no running scanner container (scan) was found beside web"
        ),
        "{refused}"
    );
    let plan = planned(&host, "2", None).await.unwrap();
    assert_eq!(plan.members, ["web"]);
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::Succeeded, "{:?}", report.failure);
}

#[tokio::test(start_paused = true)]
async fn a_product_that_fails_after_the_related_one_started_puts_both_back() {
    let host = host();
    host.engine.publish("app:bad", Behaviour::Unhealthy, &[]);
    let plan = planned(&host, "bad", Some("2")).await.unwrap();
    let report = run_plan(&host, &plan, None).await.unwrap();
    assert_eq!(report.outcome, Outcome::RolledBack, "{:?}", report.failure);
    assert_eq!(running(&host), ("app:1".into(), "scan:1".into()));
    assert_eq!(
        host.engine.world().data["schema"],
        "1",
        "the migration undone"
    );
    assert_eq!(
        report.restored.len(),
        2,
        "both databases put back: {:?}",
        report.restored
    );
    assert!(
        report.restored.iter().any(|r| r.contains("scanner")),
        "{:?}",
        report.restored
    );
}

#[tokio::test(start_paused = true)]
async fn killed_at_every_moment_of_every_step_both_recover_to_one_version() {
    let steps = planned(&host(), "2", Some("2")).await.unwrap().step_count();
    for step in 0..steps {
        for at in [Moment::Began, Moment::Acted, Moment::Journaled] {
            let case = format!("killed at step {} ({at:?})", step + 1);
            let host = host();
            let plan = planned(&host, "2", Some("2")).await.unwrap();
            let result = run_plan(&host, &plan, Some(Fault::Crash { step, at })).await;
            assert!(matches!(result, Err(RunError::Interrupted)), "{case}");
            tokio::time::sleep(DEAD_FOR).await;
            let recovered = recover(&host.engine, &host.state, None, &Default::default())
                .await
                .unwrap();
            assert_eq!(recovered.len(), 1, "{case}");
            let (_, outcome, _) = expected(&plan, step);
            assert_eq!(
                recovered[0].outcome,
                Some(outcome),
                "{case}: {}",
                recovered[0].message
            );
            let world = host.engine.world();
            assert!(
                world
                    .containers
                    .values()
                    .all(|c| !is_reserved_name(&c.name))
                    && world.containers.len() == 3,
                "{case}: web, scanner and {DB}, nothing left: {world:#?}"
            );
            let pair = match outcome {
                Outcome::Succeeded => ("app:2".to_string(), "scan:2".to_string()),
                _ => ("app:1".to_string(), "scan:1".to_string()),
            };
            assert_eq!(running(&host), pair, "{case}");
            let schema = &world.data["schema"];
            assert_eq!(Some(schema.as_str()), pair.0.rsplit(':').next(), "{case}");
        }
    }
}
