//! `cutover rehearse`: the upgrade's migrations tried on a copy of the product's database
//! before any downtime (see [`crate::plan::rehearse`]). Everything is checked as an upgrade
//! checks it, read-only, before anything is made; the plan then copies, migrates the copy and
//! removes it, production serving throughout.

use serde::Serialize;

use super::group::{choose_profile, gather_facts};
use super::preflight::{self, claim_running, Prepared};
use super::request::{hop_steps, plan_hops, UpgradeRequest};
use super::{backup::database_server, live, settings};
use crate::backup::location::{DbEngine, Found};
use crate::backup::rehearsal::{CopyServer, ALIAS};
use crate::engine::successor::Predecessor;
use crate::engine::{self, facts::Facts, Engine};
use crate::error::{Error, Result};
use crate::plan::rehearse::{migrate_name, plan_rehearsal, start_name, Rehearsal};
use crate::plan::{Plan, ProfileUse, Step};
use crate::run::runner::StepStatus;
use crate::run::{RunReport, StateDir};

/// Everything a rehearsal can check without making anything, then its plan.
pub async fn prepare(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &crate::profile::Catalog,
    req: &UpgradeRequest,
) -> Result<Prepared> {
    let name = &req.name;
    if req.compose.project.is_some() || req.compose.stack.is_some() || !req.with.is_empty() {
        return Err(Error::Refused(
            "a rehearsal tries the migration of one container: name the product's container alone (its group's other members share its database and are not needed)".into(),
        ));
    }
    if engine.inspect(name).await?.is_none() && engine.service(name).await?.is_some() {
        return Err(Error::Refused(format!(
            "{name} is a Swarm service, which a rehearsal does not copy yet: rehearse on a container of the same images and database, or upgrade without a rehearsal"
        )));
    }
    let (lock, old) = claim_running(engine, state, name).await?;
    let chosen = choose_profile(catalog, &req.given.profile, &old)?;
    let profile = chosen.as_ref().map(|(loaded, _)| &loaded.profile);
    let spec = req
        .backup
        .spec(profile.and_then(|p| p.database.as_ref()))
        .ok_or_else(|| {
            Error::Refused(format!(
                "no profile says where {name}'s database is: give --backup-db VAR, the variable holding its database URL"
            ))
        })?;
    let facts = match profile {
        Some(profile) => gather_facts(engine, Some(profile), &old).await?,
        // `--backup-db VAR` may be given as `VAR_FILE`, a file to read.
        None => Facts::read(engine, &old, &spec.files(old.env())).await?,
    };
    let location = match spec.find(&facts).map_err(|e| Error::Refused(format!("{name}: {e}")))? {
        Found::Server(location) => location,
        Found::Embedded(path) => {
            return Err(Error::Refused(format!(
                "{name} keeps its database in its own files ({path}), which are consistent only while it is stopped: a rehearsal cannot copy them while it serves"
            )))
        }
    };
    if location.engine == DbEngine::Sqlserver {
        return Err(Error::Refused(format!(
            "{name}'s database is SQL Server ({}), which cutover cannot dump, so it cannot make a copy to rehearse on",
            location.from
        )));
    }
    let database = database_server(engine, &old, &spec, location)
        .await?
        .ok_or_else(|| {
            Error::Refused(format!(
                "{name}'s database is on no container of this engine, so no copy of its server can be made beside it"
            ))
        })?;
    crate::backup::rehearsal::check(engine, crate::backup::App::of(&old), &database)
        .await
        .map_err(|e| {
            Error::Refused(format!(
                "{name}: {e}; a rehearsal copies the database as the product's own user"
            ))
        })?;
    let pointed = spec
        .point_at(&facts, ALIAS)
        .map_err(|e| Error::Refused(format!("{name}: {e}")))?;
    let files = match &pointed.file {
        Some((path, text)) if !pointed.whole_directory => {
            vec![(path.clone(), text.clone().into_bytes())]
        }
        Some(file) => with_its_directory(engine, &old, file).await?,
        None => Vec::new(),
    };
    let mut options = req.options.clone();
    if let Some(profile) = profile {
        if options.via.is_empty() {
            if let Some(path) = &profile.upgrade_path {
                let insecure = &req.given.config.insecure_registries;
                options.via = plan_hops(engine, &old, &options.target, path, insecure).await?;
            }
        }
        // The profile's commands are written against the copy: `${ANCHORE_DB_HOST}` is its.
        options.hop_steps = hop_steps(profile, &old, &options, &[pointed.facts(&facts)])?;
        options.health = settings::resolve(&req.given, Some((profile, &facts)), &old).health()?;
        let version = options.hop(0).expect_version;
        let rules = live::LiveRules {
            health: &options.health,
            version: version.as_ref(),
            database: profile.database.as_ref(),
            dump: false,
        };
        live::require_match(engine, &profile.name, &[(&old, &facts)], &rules).await?;
    }
    let copy = CopyServer::of(name);
    for left in [&copy.container, &migrate_name(name), &start_name(name)] {
        preflight::name_free(
            engine,
            left,
            &format!("it is left from an interrupted rehearsal: run `cutover recover {name}`, or remove it"),
        )
        .await?;
    }
    let origin = engine::origin(engine, &old).await?;
    let predecessor = Predecessor {
        inspect: &old,
        origin: &origin,
    };
    let rehearsal = Rehearsal {
        database,
        env: pointed.env,
        files,
    };
    let mut plan = plan_rehearsal(&predecessor, &options, &rehearsal)?;
    plan.profile = chosen.map(ProfileUse::from);
    Ok(Prepared {
        plan,
        locks: vec![lock],
    })
}

/// The connection's file rewritten (`file`: its path and new text) with every other file of
/// its directory in production's container, as the rehearsal's containers get them: a
/// product's configuration directory holds what it needs beside it (Quay's `/conf/stack`: its
/// TLS certificate and key, extra CA certificates).
async fn with_its_directory(
    engine: &dyn Engine,
    old: &crate::engine::Container,
    (path, text): &(String, String),
) -> Result<Vec<(String, Vec<u8>)>> {
    let id = old.id().to_string();
    let (dir, _) = crate::plan::steps::files::split(path);
    let mut files = crate::plan::steps::files::fetch_dir(engine, &id, dir)
        .await
        .map_err(|e| {
            Error::Refused(format!(
                "{}: a rehearsal copies {dir}, which holds its database connection: {e}",
                old.name()
            ))
        })?;
    files.retain(|(p, _)| p != path);
    files.push((path.clone(), text.clone().into_bytes()));
    Ok(files)
}

/// What a rehearsal measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Findings {
    /// Each hop's migration that ran, in order: the image it ran from and how long it took.
    pub migrations: Vec<Migrated>,
    /// How long the dump of the database took while it served: what a backup taken in the
    /// window as a dump adds to it.
    pub dump_ms: Option<u64>,
    /// From the new version's start on the migrated copy until it first passed its checks: its
    /// settle time after that is not downtime, as the upgrade's report counts it.
    pub start_ms: Option<u64>,
    /// How long the new version took to stop: the upgrade stops the old one likewise.
    pub stop_ms: Option<u64>,
    /// The upgrade's window as the rehearsal predicts it, when every step it times passed:
    /// the stop, the migrations, the start until healthy; a backup in the window comes on top.
    pub window_ms: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migrated {
    pub image: String,
    pub ms: u64,
    pub succeeded: bool,
}

impl Findings {
    pub fn of(plan: &Plan, report: &RunReport) -> Findings {
        let steps: Vec<&Step> = plan.stages.iter().flat_map(|s| s.steps.iter()).collect();
        let began = |i: usize| {
            report
                .steps
                .get(i)
                .is_some_and(|s| s.status != StepStatus::NotRun)
        };
        // Steps run one after the other: each that began before the last completed, and the
        // last failed when the run did (its status says "undone" once rolled back).
        let last = (0..steps.len()).rev().find(|&i| began(i));
        let succeeded = |i: usize| began(i) && (Some(i) != last || report.failure.is_none());
        // The time of the steps of these kinds, when every one of them succeeded (none: 0).
        let timed = |kinds: &[&str]| {
            let of_kind: Vec<usize> = (0..steps.len())
                .filter(|&i| kinds.contains(&steps[i].name()))
                .collect();
            of_kind
                .iter()
                .all(|&i| succeeded(i))
                .then(|| of_kind.iter().map(|&i| report.steps[i].millis).sum::<u64>())
        };
        let migrations = (0..steps.len())
            .filter(|&i| began(i))
            .filter_map(|i| match steps[i] {
                Step::RehearseMigrate(m) => Some(Migrated {
                    image: m.run.image.clone(),
                    ms: report.steps[i].millis,
                    succeeded: succeeded(i),
                }),
                _ => None,
            })
            .collect();
        let (migrated, start_ms, stop_ms) = (
            timed(&["rehearse_migrate"]),
            // The profile's calls as the new version starts (DevLake's migration) included.
            timed(&["rehearse_start", "call", "await_healthy"])
                .map(|ms| ms.saturating_sub(report.settled_ms.unwrap_or_default())),
            timed(&["rehearse_stop"]),
        );
        let window_ms = match (migrated, start_ms, stop_ms) {
            (Some(m), Some(start), Some(stop)) => Some(stop + m + start),
            _ => None,
        };
        Findings {
            migrations,
            dump_ms: timed(&["rehearse_dump"]),
            start_ms,
            stop_ms,
            window_ms,
        }
    }
}
