//! Backups as the commands use them: what to back up for a container (its profile's database,
//! `--backup-db`, `--backup-volumes`), whether there is room, and the `backup`, `backups` and
//! `restore` commands.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::engine::Container;

use super::preflight::{self, Prepared};
use super::settings::{self, Given};
use crate::backup::location::{DatabaseSpec, DbEngine, Found, Location, Source};
use crate::backup::{self, BackupTarget, DatabaseTarget, Listed, Server, VolumeTarget};
use crate::engine::facts::Facts;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan;
use crate::plan::build::{BackupPlan, SnapshotHow, SnapshotPlan};
use crate::profile::Catalog;
use crate::run::StateDir;
use crate::size::human_bytes;

/// How many backups of a container are kept when nothing says otherwise.
pub const DEFAULT_KEEP: usize = 5;
/// Room left free beyond the estimate: a dump is rarely larger than the data, but a disk that
/// fills mid-backup fails the upgrade.
const MARGIN: f64 = 1.1;

/// What the command line says about backups.
#[derive(Debug, Clone, Default)]
pub struct BackupRequest {
    pub skip: bool,
    /// A variable of the container holding its database's URL, when no profile names it.
    pub db_var: Option<String>,
    pub volumes: bool,
    pub online: bool,
    pub dir: Option<PathBuf>,
    pub keep: Option<usize>,
    /// Dump a database in the window even where its server could copy it (`--backup-dump`).
    pub dump: bool,
}

impl BackupRequest {
    pub fn root(&self, state: &StateDir) -> PathBuf {
        self.dir
            .clone()
            .unwrap_or_else(|| state.path().join("backups"))
    }

    pub fn keep(&self) -> usize {
        self.keep.unwrap_or(DEFAULT_KEEP).max(1)
    }

    /// Refuses an online backup of a database that lives in the application's own files: only
    /// a stopped application leaves them consistent.
    fn check_online(&self, app: &Container, target: &BackupTarget) -> Result<()> {
        match self.online && target.has_embedded_database() {
            true => Err(Error::Refused(format!(
                "{} keeps its database in its own files ({}), which are only consistent while it is stopped: leave out --backup-online",
                app.name(),
                target.describe()
            ))),
            false => Ok(()),
        }
    }

    /// Where the database is: `--backup-db`, else the profile's.
    pub(super) fn spec(&self, profile: Option<&DatabaseSpec>) -> Option<DatabaseSpec> {
        match &self.db_var {
            Some(var) => Some(DatabaseSpec {
                sources: vec![Source::UrlEnv {
                    name: var.clone(),
                    files: Vec::new(),
                }],
                schema_query: None,
                requires_extensions: Vec::new(),
                product_reads: None,
            }),
            None => profile.cloned(),
        }
    }
}

/// What to back up of one container, checked before anything changes: the database must be one
/// cutover can dump, served by a container on a network the application shares.
pub async fn target(
    engine: &dyn Engine,
    app: &Container,
    facts: &Facts,
    spec: Option<&DatabaseSpec>,
    volumes: bool,
) -> Result<BackupTarget> {
    let name = app.name().to_string();
    let mut target = BackupTarget::default();
    if let Some(spec) = spec {
        let found = spec.find(facts).map_err(|e| {
            Error::Refused(format!(
                "{name}: {e}; say where with --backup-db VAR, or pass --skip-backup"
            ))
        })?;
        match found {
            Found::Server(location) => {
                target.database = Some(database_target(engine, app, spec, location).await?)
            }
            Found::Embedded(path) => target.volumes.push(embedded_database(app, &path)?),
        }
    }
    if volumes {
        for mount in app.mounts() {
            if !matches!(mount.kind.as_str(), "volume" | "bind") {
                continue;
            }
            let Some(path) = Some(mount.destination.clone()).filter(|d| !d.is_empty()) else {
                continue;
            };
            let source = mount
                .name
                .clone()
                .or(mount.source.clone())
                .unwrap_or_default();
            if !target.volumes.iter().any(|v| v.path == path) {
                target.volumes.push(VolumeTarget {
                    path,
                    source,
                    database: false,
                });
            }
        }
    }
    Ok(target)
}

/// The server database a container uses, checked before anything changes: one cutover can dump,
/// served by a running container on a network the application shares, whose user could put a
/// backup back.
async fn database_target(
    engine: &dyn Engine,
    app: &Container,
    spec: &DatabaseSpec,
    location: Location,
) -> Result<DatabaseTarget> {
    let name = app.name().to_string();
    let (host, port) = (location.host.clone(), location.port);
    let database = database_server(engine, app, spec, location).await?.ok_or_else(|| {
        Error::Refused(format!(
            "{name}'s database is on {host}:{port}, which is no container on a network {name} shares, so cutover cannot dump it through the database's own tools: back it up yourself and pass --skip-backup"
        ))
    })?;
    backup::check_database(engine, app, &database)
        .await
        .map_err(|e| {
            Error::Refused(format!(
                "{name}: {e}; give the user those rights, or back up and restore yourself and pass --skip-backup"
            ))
        })?;
    Ok(database)
}

/// The server database a container uses, reached through its running container on a network
/// the application shares; `None` when no container there serves it (a database elsewhere).
/// One that cutover cannot dump, or whose container is stopped, is refused, saying why.
pub async fn database_server(
    engine: &dyn Engine,
    app: &Container,
    spec: &DatabaseSpec,
    location: Location,
) -> Result<Option<DatabaseTarget>> {
    let name = app.name().to_string();
    if location.engine == DbEngine::Sqlserver {
        return Err(Error::Refused(format!(
            "{name} uses a SQL Server database ({}), which cutover cannot dump: back it up with SQL Server's own tools, then pass --skip-backup",
            location.from
        )));
    }
    let container = match backup::database_container(engine, app, &location.host).await? {
        Some(Server::Running(container)) => container,
        Some(Server::Stopped(container)) => {
            return Err(Error::Refused(format!(
                "{name}'s database is served by the container {container}, which is not running: start it (`docker start {container}`), so that cutover can read the database before anything changes"
            )))
        }
        None => return Ok(None),
    };
    Ok(Some(DatabaseTarget {
        spec: spec.clone(),
        engine: location.engine,
        container,
        port: location.port,
        name: location.name,
        user: location.user,
    }))
}

/// The product's embedded database, backed up as a copy of the mount that holds its files: it
/// must be on a volume or bind mount, or the new container would start without it.
pub fn embedded_database(app: &Container, path: &str) -> Result<VolumeTarget> {
    let name = app.name().to_string();
    let mount = app
        .mounts()
        .into_iter()
        .find(|m| m.destination == path)
        .filter(|m| matches!(m.kind.as_str(), "volume" | "bind"))
        .ok_or_else(|| {
            Error::Refused(format!(
                "{name} keeps its embedded database in {path}, which is on no volume: the new container would start without it. Mount a volume there first (docker run -v NAME:{path}), or say where its database is"
            ))
        })?;
    Ok(VolumeTarget {
        path: path.to_string(),
        source: mount
            .name
            .clone()
            .or(mount.source.clone())
            .unwrap_or_default(),
        database: true,
    })
}

/// Refuses, before any downtime, when the backups' disk lacks room for the estimate, or when
/// other users could write the backups' directory or an app's folder in it (see
/// [`crate::private::dir`]): a restore loads whatever is there into the database.
pub async fn ensure_room(
    engine: &dyn Engine,
    root: &Path,
    apps: &[(&Container, &BackupTarget)],
) -> Result<()> {
    let mut needed = 0u64;
    for (app, target) in apps {
        needed += backup::estimate(engine, app, target)
            .await
            .map_err(|e| Error::Refused(format!("estimating the backup's size: {e}")))?;
    }
    let folders = apps.iter().map(|(app, _)| root.join(app.name()));
    for dir in std::iter::once(root.to_path_buf()).chain(folders) {
        crate::private::dir(&dir)
            .map_err(|e| Error::Refused(format!("the backup directory: {e}")))?;
    }
    let free = fs4::available_space(root).map_err(|e| {
        Error::Refused(format!(
            "cannot tell the free space of {}: {e}",
            root.display()
        ))
    })?;
    let wanted = (needed as f64 * MARGIN) as u64;
    if wanted > free {
        return Err(Error::Refused(format!(
            "the backup needs about {} and {} has {} free: free some space, give another --backup-dir, or pass --skip-backup",
            human_bytes(wanted),
            root.display(),
            human_bytes(free)
        )));
    }
    Ok(())
}

/// The backups of an upgrade (or `None`): the primary's database, each related product's own
/// (`related`, by container), and, with `volumes`, every member's mounts.
pub async fn plan_for(
    engine: &dyn Engine,
    state: &StateDir,
    request: &BackupRequest,
    profile: Option<&DatabaseSpec>,
    related: &BTreeMap<String, DatabaseSpec>,
    members: &[(&Container, &Facts)],
) -> Result<Option<BackupPlan>> {
    if request.skip {
        tracing::info!("no backup: --skip-backup");
        return Ok(None);
    }
    let spec = request.spec(profile);
    let mut plan = BackupPlan {
        targets: Default::default(),
        root: request.root(state),
        keep: request.keep(),
        online: request.online,
        ..BackupPlan::default()
    };
    for (i, (app, facts)) in members.iter().enumerate() {
        let spec = match i {
            0 => spec.as_ref(),
            _ => related.get(app.name()),
        };
        let target = target(engine, app, facts, spec, request.volumes).await?;
        request.check_online(app, &target)?;
        if !target.is_empty() {
            plan.targets.insert(app.name().to_string(), target);
        }
    }
    if plan.targets.is_empty() {
        return Ok(None);
    }
    let apps: Vec<(&Container, &BackupTarget)> = members
        .iter()
        .filter_map(|(app, _)| plan.targets.get(app.name()).map(|t| (*app, t)))
        .collect();
    ensure_room(engine, &plan.root, &apps).await?;
    Ok(Some(plan))
}

/// Which databases of `plan` are copied in the window rather than dumped (see
/// [`crate::plan::steps::VolumeSnapshot`] and [`crate::plan::steps::Snapshot`]), asked before
/// any downtime, in a backup of nothing else taken while the product is stopped: the server's
/// whole data volume where the server is the product's alone, on a local volume with room for
/// a copy; else a PostgreSQL database copied on its server, when its superuser answers over the
/// local socket with room for the copy. Otherwise the dump, and the plan says why.
pub async fn choose_snapshots(
    engine: &dyn Engine,
    request: &BackupRequest,
    plan: &mut BackupPlan,
    members: &[(&Container, &Facts)],
) {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S").to_string();
    let mut dumped_because = BTreeMap::new();
    for (member, target) in &plan.targets {
        let Some(db) = &target.database else {
            continue;
        };
        let Some((app, facts)) = members.iter().find(|(app, _)| app.name() == member) else {
            continue;
        };
        let why = match () {
            _ if plan.online => continue,
            _ if request.dump => "--backup-dump".to_string(),
            _ if !target.volumes.is_empty() => {
                "the volumes are backed up in the window too".to_string()
            }
            _ => match snapshot_how(
                engine,
                backup::App {
                    container: app,
                    known: Some(facts),
                },
                db,
            )
            .await
            {
                Ok(how) => {
                    plan.snapshots.insert(
                        member.clone(),
                        SnapshotPlan {
                            stamp: stamp.clone(),
                            how,
                        },
                    );
                    continue;
                }
                Err(why) => why,
            },
        };
        tracing::info!("{member}'s database is dumped in the window: {why}");
        dumped_because.insert(member.clone(), why);
    }
    plan.dumped_because = dumped_because;
}

/// How the database can be copied in the window, the fastest way first; or why it cannot.
async fn snapshot_how(
    engine: &dyn Engine,
    app: backup::App<'_>,
    db: &DatabaseTarget,
) -> std::result::Result<SnapshotHow, String> {
    let volume = match crate::backup::volume_copy::fits(engine, app, db).await {
        Ok((volume, mount)) => return Ok(SnapshotHow::Volume { volume, mount }),
        Err(why) => format!("its server's volume cannot be copied: {why}"),
    };
    if db.engine != DbEngine::Postgres {
        return Err(volume);
    }
    let server = match crate::backup::snapshot::probe(engine, db).await {
        Ok(probe) => match probe.refusal() {
            None => {
                return Ok(SnapshotHow::Server {
                    owner: probe.owner.clone(),
                    strategy: probe.strategy().to_string(),
                })
            }
            Some(why) => why,
        },
        Err(e) => format!("the server could not be asked as its superuser ({e})"),
    };
    Err(format!(
        "{volume}; and the server cannot copy the database: {server}"
    ))
}

/// A copy of a database a run left behind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Leftover {
    pub copy: String,
    /// What it is a copy of, and where.
    pub of: String,
    /// What removes it, once no run needs it.
    pub remove: String,
}

/// The copies runs left on the engine: none, unless a run's cleanup failed or a run is
/// unfinished. Volumes (`VOLUME__cutover_...`), and databases on the PostgreSQL servers that
/// the journaled snapshot steps of `state` name, each server asked once; one that does not
/// answer tells nothing.
pub async fn copies_left(engine: &dyn Engine, state: &StateDir) -> Vec<Leftover> {
    let mut left: Vec<Leftover> = crate::backup::volume_copy::left_behind(engine)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|volume| Leftover {
            of: "a database server's volume".into(),
            remove: format!("`docker volume rm {volume}`"),
            copy: volume,
        })
        .collect();
    let mut servers: BTreeMap<String, DatabaseTarget> = BTreeMap::new();
    for run in state.runs().unwrap_or_default() {
        for step in run.plan.stages.iter().flat_map(|s| &s.steps) {
            if let plan::Step::Snapshot(snapshot) = step {
                if let Some(db) = &snapshot.backup.target.database {
                    servers
                        .entry(db.container.clone())
                        .or_insert_with(|| db.clone());
                }
            }
        }
    }
    for (container, db) in servers {
        match crate::backup::snapshot::left_behind(engine, &db).await {
            Ok(names) => left.extend(names.into_iter().map(|name| Leftover {
                of: format!("a database on the server {container}"),
                remove: format!("`DROP DATABASE \"{name}\"` there, as its superuser,"),
                copy: name,
            })),
            Err(e) => tracing::debug!("the copies on {container} were not listed: {e}"),
        }
    }
    left
}

/// `cutover backup NAME`: stops the container (unless online), backs it up, starts it again.
pub async fn prepare_backup(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    name: &str,
    given: &Given,
    request: &BackupRequest,
) -> Result<Prepared> {
    let (lock, app) = preflight::claim_running(engine, state, name).await?;
    let (loaded, facts, health) = settings::of_container(engine, catalog, given, &app).await?;
    let spec = loaded.and_then(|l| l.profile.database);
    let target = target(
        engine,
        &app,
        &facts,
        request.spec(spec.as_ref()).as_ref(),
        request.volumes,
    )
    .await?;
    request.check_online(&app, &target)?;
    if target.is_empty() {
        return Err(Error::Refused(format!(
            "nothing to back up for {name}: no profile names its database; give --backup-db VAR (a variable of the container holding its database URL) or --backup-volumes"
        )));
    }
    let root = request.root(state);
    ensure_room(engine, &root, &[(&app, &target)]).await?;
    let plan = plan::build::plan_backup(&app, target, root, request.keep(), request.online, health);
    Ok(Prepared {
        plan,
        locks: vec![lock],
    })
}

/// `cutover restore NAME ID`: stops the container, backs up its current data, restores the
/// backup, starts it and checks it; a failure puts the current data back.
pub async fn prepare_restore(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    name: &str,
    id: &str,
    given: &Given,
    request: &BackupRequest,
) -> Result<Prepared> {
    let (lock, app) = preflight::claim_running(engine, state, name).await?;
    let (.., health) = settings::of_container(engine, catalog, given, &app).await?;
    let root = request.root(state);
    let found = find(&root, name, id)?;
    let facts = Facts::read(
        engine,
        &app,
        &found
            .manifest
            .target
            .database
            .as_ref()
            .map(|d| d.spec.files(app.env()))
            .unwrap_or_default(),
    )
    .await?;
    let safety = target(
        engine,
        &app,
        &facts,
        found.manifest.target.database.as_ref().map(|d| &d.spec),
        !found.manifest.target.volumes.is_empty(),
    )
    .await?;
    ensure_room(engine, &root, &[(&app, &safety)]).await?;
    let plan = plan::build::plan_restore(&app, safety, &found.path, root, request.keep(), health);
    Ok(Prepared {
        plan,
        locks: vec![lock],
    })
}

/// A container's backup by id (or the newest, for `latest`).
pub fn find(root: &Path, name: &str, id: &str) -> Result<Listed> {
    let all = backup::list(root, Some(name)).map_err(|e| Error::Refused(e.to_string()))?;
    let found = match id {
        "latest" => all.last().cloned(),
        id => all.iter().find(|b| b.manifest.id == id).cloned(),
    };
    found.ok_or_else(|| {
        Error::Refused(format!(
            "there is no backup {id} of {name} in {}; `cutover backups {name}` lists them",
            root.display()
        ))
    })
}
