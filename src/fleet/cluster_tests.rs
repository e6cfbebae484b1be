//! A cluster over hosts on in-memory engines, moved as a rolling pass moves it: its runs meet at
//! their gates (see [`crate::plan::steps::gate`]).

use std::time::Duration;

use crate::auto::{Asked, PassOutcome, PassSettings};
use crate::discover::check::Status;
use crate::engine::fake::Behaviour;
use crate::engine::Engine;
use crate::fleet;
use crate::fleet::rollout::{self, Rollout};
use crate::health::HealthSettings;
use crate::ops::backup::BackupRequest;
use crate::ops::settings::Given;
use crate::ops::upgrade_tests::{health, migration, new_host, Host, BACKUPS_IN_HOST};
use crate::plan::build::{Migration, Target};
use crate::plan::UpgradeOptions;
use crate::profile::{Catalog, Choice};
use crate::run::Interrupt;

const NODES: [&str; 3] = ["a/web", "b/web", "c/web"];

/// Hosts a, b and c, each running `web` on `app:1` beside a database of its own in the fake
/// (the first node's is the cluster's: the others' never change, as nothing of theirs may touch
/// it).
fn hosts() -> Vec<Host> {
    (0..3).map(|_| new_host(&["web"])).collect()
}

/// Every node to `app:2`; the first migrates with `migrate`, backing up the database.
async fn roll(hosts: &[Host]) -> Vec<(String, PassOutcome, String)> {
    roll_asking(hosts, false, "migrate", &NODES).await
}

/// `nodes` (of hosts a, b and c) to `app:2` as one cluster, or `web` of host a alone when it
/// is the only one, migrating with `command`; with `rehearse`, rehearsed first.
async fn roll_asking(
    hosts: &[Host],
    rehearse: bool,
    command: &str,
    nodes: &[&str],
) -> Vec<(String, PassOutcome, String)> {
    let mut options = UpgradeOptions::new(Target::Tag("2".into()), health());
    options.steps.migrate = Some(Migration {
        command: vec![command.into()],
        ..migration(600)
    });
    let settings = PassSettings {
        given: Given {
            health: HealthSettings {
                settle: Some(Duration::from_secs(10)),
                timeout: Some(Duration::from_secs(120)),
                ..HealthSettings::default()
            },
            profile: Choice::Without,
            ..Given::default()
        },
        catalog: Catalog::default(),
        window: None,
        first_seen: crate::run::FirstSeen::under(&hosts[0].dir),
        asked: Asked {
            options: Some(options),
            backup: BackupRequest {
                db_var: Some("DB_URL".into()),
                dir: Some(hosts[0].dir.join(BACKUPS_IN_HOST)),
                ..BackupRequest::default()
            },
            rehearse,
        },
    };
    let members: Vec<fleet::Host<'_>> = ["a", "b", "c"]
        .iter()
        .zip(hosts)
        .map(|(name, host)| fleet::Host {
            name: name.to_string(),
            reached: Ok((&host.engine as &dyn Engine, &host.state)),
        })
        .collect();
    let cluster = match nodes.len() {
        1 => Vec::new(),
        _ => nodes.iter().map(|n| n.to_string()).collect(),
    };
    let statuses: Vec<Status> = nodes
        .iter()
        .map(|node| Status {
            image: "app:1".into(),
            target: Some("app:2".into()),
            cluster: cluster.clone(),
            ..Status::eligible(node)
        })
        .collect();
    let rollout = Rollout {
        canary: None,
        parallel: 1,
        failure_budget: 0,
    };
    let surveyed = (statuses, Vec::new());
    let interrupt = Interrupt::default();
    rollout::upgrade_surveyed(&members, surveyed, &settings, &rollout, &interrupt)
        .await
        .expect("the pass ran")
        .results
        .into_iter()
        .map(|r| (r.container, r.result, r.message))
        .collect()
}

fn outcomes(results: &[(String, PassOutcome, String)]) -> Vec<PassOutcome> {
    results.iter().map(|(_, outcome, _)| *outcome).collect()
}

/// What `web` runs on the host, and whether it runs.
fn web(host: &Host) -> (String, bool) {
    let c = host.engine.named("web").expect("web is there");
    (c.image, c.running)
}

fn schema(host: &Host) -> String {
    host.engine.world().data["schema"].clone()
}

#[tokio::test(start_paused = true)]
async fn the_first_node_migrates_once_and_the_others_follow_without_migrating() {
    let hosts = hosts();
    let results = roll(&hosts).await;
    assert_eq!(
        outcomes(&results),
        [PassOutcome::Upgraded; 3],
        "{results:?}"
    );
    for host in &hosts {
        assert_eq!(web(host), ("app:2".into(), true));
    }
    assert_eq!(
        hosts.iter().map(schema).collect::<Vec<_>>(),
        ["2", "1", "1"],
        "only the first node ran the migration"
    );
    let backups = walk(&hosts[0].dir.join(BACKUPS_IN_HOST));
    assert_eq!(
        backups
            .iter()
            .filter(|p| p.ends_with("manifest.json"))
            .count(),
        1,
        "only the first node backed the database up: {backups:?}"
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<String> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        match entry.path().is_dir() {
            true => files.extend(walk(&entry.path())),
            false => files.push(entry.path().display().to_string()),
        }
    }
    files
}

#[tokio::test(start_paused = true)]
async fn a_first_node_that_fails_puts_the_database_back_and_every_node_goes_back() {
    let hosts = hosts();
    hosts[0]
        .engine
        .publish("app:2", Behaviour::Unhealthy, &["APP_VERSION=2"]);
    let results = roll(&hosts).await;
    assert_eq!(
        outcomes(&results),
        [PassOutcome::RolledBack; 3],
        "{results:?}"
    );
    for host in &hosts {
        assert_eq!(web(host), ("app:1".into(), true));
    }
    assert_eq!(schema(&hosts[0]), "1", "the backup was restored");
    assert!(
        results[1].2.contains("the first node a/web failed"),
        "{results:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn another_node_that_fails_after_the_migration_is_left_stopped_and_the_others_go_on() {
    let hosts = hosts();
    hosts[1]
        .engine
        .publish("app:2", Behaviour::Unhealthy, &["APP_VERSION=2"]);
    let results = roll(&hosts).await;
    assert_eq!(
        outcomes(&results),
        [
            PassOutcome::Upgraded,
            PassOutcome::NeedsAttention,
            PassOutcome::Upgraded
        ],
        "{results:?}"
    );
    assert_eq!(
        web(&hosts[1]),
        ("app:1".into(), false),
        "its old version never starts on the migrated database"
    );
    assert!(
        results[1]
            .2
            .contains("it is left stopped while a/web serves"),
        "{results:?}"
    );
    assert_eq!(web(&hosts[2]), ("app:2".into(), true));
}

#[tokio::test(start_paused = true)]
async fn a_node_that_cannot_be_prepared_leaves_every_node_as_it_was() {
    let hosts = hosts();
    hosts[2].engine.stop("web", None).await.unwrap();
    let results = roll(&hosts).await;
    assert_eq!(
        outcomes(&results),
        [
            PassOutcome::NotAttempted,
            PassOutcome::NotAttempted,
            PassOutcome::Refused
        ],
        "{results:?}"
    );
    for host in &hosts[..2] {
        assert_eq!(web(host), ("app:1".into(), true));
    }
    assert_eq!(schema(&hosts[0]), "1");
}

/// A rehearsal asked of the pass: the cluster's migration is tried on a copy of the first
/// node's database; it fails there, so no node is stopped and no database moves.
#[tokio::test(start_paused = true)]
async fn a_cluster_whose_rehearsal_fails_is_held_back_whole_with_nothing_stopped() {
    let hosts = hosts();
    let results = roll_asking(&hosts, true, "migrate-fail", &NODES).await;
    assert_eq!(
        outcomes(&results),
        [
            PassOutcome::HeldBack,
            PassOutcome::NotAttempted,
            PassOutcome::NotAttempted
        ],
        "{results:?}"
    );
    assert!(results[0].2.contains("its rehearsal failed"), "{results:?}");
    for host in &hosts {
        assert_eq!(web(host), ("app:1".into(), true));
        assert_eq!(schema(host), "1");
        assert_eq!(host.engine.world().containers.len(), 2, "only web and db");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rehearsal_that_passes_lets_the_cluster_move_and_says_the_predicted_window() {
    let hosts = hosts();
    let results = roll_asking(&hosts, true, "migrate", &NODES).await;
    assert_eq!(
        outcomes(&results),
        [PassOutcome::Upgraded; 3],
        "{results:?}"
    );
    assert!(
        results[0].2.contains("rehearsed first, predicted window"),
        "{results:?}"
    );
    assert_eq!(
        hosts.iter().map(schema).collect::<Vec<_>>(),
        ["2", "1", "1"]
    );
}

/// A lone container of a pass (not a cluster) is rehearsed likewise.
#[tokio::test(start_paused = true)]
async fn a_lone_container_is_rehearsed_first_and_held_back_when_it_fails() {
    let hosts = hosts();
    let results = roll_asking(&hosts, true, "migrate-fail", &["a/web"]).await;
    assert_eq!(outcomes(&results), [PassOutcome::HeldBack], "{results:?}");
    assert_eq!(web(&hosts[0]), ("app:1".into(), true));
    assert_eq!(schema(&hosts[0]), "1");
    let results = roll_asking(&hosts, true, "migrate", &["a/web"]).await;
    assert_eq!(outcomes(&results), [PassOutcome::Upgraded], "{results:?}");
    assert!(results[0].2.contains("rehearsed first"), "{results:?}");
    assert_eq!(web(&hosts[0]), ("app:2".into(), true));
}
