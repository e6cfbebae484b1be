//! Backups of a product's data, taken before an upgrade changes it and restored when the upgrade
//! rolls back across a change: its database (dumped through the database's own container,
//! streamed to the host, never staged inside a container) and its volumes (streamed through the
//! archive API and compressed).
//!
//! Each backup is a directory (0700) of files (0600) with a manifest: what was backed up, from
//! which container and image, the server's version, each file's size and sha256. Credentials are
//! never written down: they are read from the application's container when they are needed.

mod database;
pub mod location;
pub mod rehearsal;
pub mod snapshot;
mod store;
pub mod volume_copy;
mod volumes;

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::engine::Container;
use indicatif::MultiProgress;
use serde::{Deserialize, Serialize};

use crate::engine::facts::Facts;
use crate::engine::{self, Engine, EngineError};
use location::{DatabaseSpec, DbEngine};
pub use store::{catalogue, list, prune, Listed, UnreadableBackup};

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("{0}")]
    Failed(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// What a backup of one container holds, decided before the run: nothing secret, so that the
/// journal can keep it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BackupTarget {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseTarget>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<VolumeTarget>,
}

impl BackupTarget {
    pub fn is_empty(&self) -> bool {
        self.database.is_none() && self.volumes.is_empty()
    }

    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(db) = &self.database {
            parts.push(format!(
                "the {} database {} (through {})",
                db.engine.name(),
                db.name,
                db.container
            ));
        }
        for embedded in self.volumes.iter().filter(|v| v.database) {
            parts.push(format!("the embedded database on {}", embedded.path));
        }
        let paths: Vec<&str> = self
            .volumes
            .iter()
            .filter(|v| !v.database)
            .map(|v| v.path.as_str())
            .collect();
        if !paths.is_empty() {
            parts.push(format!("the volumes on {}", paths.join(", ")));
        }
        parts.join(" and ")
    }

    /// Holds a database that lives in the application's own files, which only a stopped
    /// application leaves consistent.
    pub fn has_embedded_database(&self) -> bool {
        self.volumes.iter().any(|v| v.database)
    }
}

/// The application's database, reached through the container that serves it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatabaseTarget {
    /// Where the application reads its connection: credentials are read from there each time.
    pub spec: DatabaseSpec,
    pub engine: DbEngine,
    /// The database server's container, on a network the application shares.
    pub container: String,
    pub port: u16,
    pub name: String,
    pub user: String,
}

/// A volume or bind mount of the application.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeTarget {
    /// Where the application mounts it.
    pub path: String,
    /// The volume's name, or the host directory of a bind mount.
    pub source: String,
    /// The product's embedded database lives there (its files are the database).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub database: bool,
}

/// One file of a backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    /// `database` or `volume`.
    pub kind: String,
    /// The database's name, or the mount's path.
    pub of: String,
    pub bytes: u64,
    pub sha256: String,
}

/// What a backup holds, as its `manifest.json` says.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub id: String,
    pub container: String,
    pub image: String,
    #[serde(with = "rfc3339")]
    pub taken_at: SystemTime,
    /// Taken while the application ran (`--backup-online`).
    pub online: bool,
    /// The run (journal) and container slot that took it, so that recovery finds it even when
    /// the run was killed before it journaled where it was.
    #[serde(default)]
    pub run: String,
    pub target: BackupTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_version: Option<String>,
    /// The product's schema version, where its profile says how to read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_version: Option<String>,
    pub files: Vec<FileEntry>,
    pub cutover: String,
}

mod rfc3339 {
    use std::time::SystemTime;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_seconds(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        humantime::parse_rfc3339(&String::deserialize(d)?).map_err(D::Error::custom)
    }
}

/// The application a backup is of: its container, and its settings when the run read them
/// before (`known`: a Swarm service's, whose tasks are gone while it is scaled to 0), which live
/// only in memory.
#[derive(Clone, Copy)]
pub struct App<'a> {
    pub container: &'a Container,
    pub known: Option<&'a Facts>,
}

impl<'a> App<'a> {
    /// A container whose settings are read from it each time.
    pub fn of(container: &'a Container) -> App<'a> {
        App {
            container,
            known: None,
        }
    }
}

/// Runs `cmd` in `container` by exec (a script of [`snapshot`], [`volume_copy`] or
/// [`rehearsal`]), `input` on its standard input (never on a command line, which any local user
/// reads); what it printed, or, when it fails, its first lines of error output, secrets masked.
async fn exec_script(
    engine: &dyn Engine,
    container: &str,
    cmd: &[String],
    input: Option<String>,
    what: &str,
) -> Result<String, BackupError> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let input = input.map(|text| -> engine::ByteStream {
        Box::pin(futures_util::stream::once(async move {
            Ok(bytes::Bytes::from(text))
        }))
    });
    let code = engine
        .exec_io(
            container,
            cmd,
            &[],
            input,
            &mut |bytes| {
                out.extend_from_slice(bytes);
                Ok(())
            },
            &mut |line| {
                if errors.len() < 8 {
                    errors.push(crate::secrets::redact(line));
                }
            },
        )
        .await?;
    if code != 0 {
        return Err(BackupError::Failed(format!(
            "{what} in {container} exited with code {code}: {}",
            match errors.is_empty() {
                true => "no message".to_string(),
                false => errors.join(" / "),
            }
        )));
    }
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

/// The credentials of the database, read again from the application's container (its
/// environment and files), so that they are never stored; or from what the run read before.
async fn credentials(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
) -> Result<String, BackupError> {
    let read;
    let facts = match app.known {
        Some(facts) => facts,
        None => {
            let container = app.container;
            let files = db.spec.files(container.env());
            read = Facts::read(engine, container, &files).await?;
            &read
        }
    };
    let location = db
        .spec
        .locate(facts)
        .map_err(|e| BackupError::Failed(format!("the application's database connection: {e}")))?;
    Ok(location.password)
}

/// Proves, before any downtime, that the database can be dumped and a restore could put the
/// dump back with the application's own database user (see [`database::check_access`]).
pub async fn check_database(
    engine: &dyn Engine,
    app: &Container,
    db: &DatabaseTarget,
) -> Result<(), BackupError> {
    let password = credentials(engine, App::of(app), db).await?;
    database::check_access(engine, db, &password).await
}

/// Which of `extensions` the PostgreSQL database lacks.
pub async fn missing_extensions(
    engine: &dyn Engine,
    app: &Container,
    db: &DatabaseTarget,
    extensions: &[String],
) -> Result<Vec<String>, BackupError> {
    let password = credentials(engine, App::of(app), db).await?;
    let installed =
        database::query(engine, db, &password, "SELECT extname FROM pg_extension").await?;
    let installed: Vec<&str> = installed.lines().map(str::trim).collect();
    Ok(extensions
        .iter()
        .filter(|e| !installed.contains(&e.as_str()))
        .cloned()
        .collect())
}

/// Takes a backup of `app` into a new directory under `dir` (the container's folder of backups);
/// its database read from `copy`, a copy of it the run took (on its server, or a throwaway
/// server on a copy of its volume), when given.
#[allow(clippy::too_many_arguments)]
pub async fn take(
    engine: &dyn Engine,
    app: App<'_>,
    target: &BackupTarget,
    dir: &Path,
    online: bool,
    run: &str,
    progress: Option<&MultiProgress>,
    copy: Option<&DatabaseTarget>,
) -> Result<(Manifest, PathBuf), BackupError> {
    let taken_at = crate::clock::now();
    let (id, path) = store::create_dir(dir, taken_at)?;
    let mut files = Vec::new();
    let mut server_version = None;
    let mut schema_version = None;
    let result = async {
        if let Some(db) = &target.database {
            let password = credentials(engine, app, db).await?;
            // What is read: the database, or the run's copy of it; the backup names the
            // database either way.
            let source = copy.unwrap_or(db).clone();
            let (mut file, version) =
                database::dump(engine, &source, &password, &path, progress).await?;
            file.of = db.name.clone();
            files.push(file);
            server_version = Some(version);
            if let Some(query) = &db.spec.schema_query {
                // A schema the query does not fit (another version's) is not worth failing for.
                match database::query(engine, &source, &password, query).await {
                    Ok(v) if !v.is_empty() => schema_version = Some(v),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("the schema version could not be read: {e}"),
                }
            }
        }
        for (i, volume) in target.volumes.iter().enumerate() {
            files.push(volumes::save(engine, app.container, volume, &path, i + 1, progress).await?);
        }
        Ok::<(), BackupError>(())
    }
    .await;
    if let Err(e) = result {
        let _ = std::fs::remove_dir_all(&path);
        return Err(e);
    }
    let manifest = Manifest {
        id,
        container: app.container.name().to_string(),
        image: app.container.image().to_string(),
        taken_at,
        online,
        run: run.to_string(),
        target: target.clone(),
        server_version,
        schema_version,
        files,
        cutover: env!("CARGO_PKG_VERSION").to_string(),
    };
    store::write_manifest(&path, &manifest)?;
    verify(engine, &manifest, &path).await?;
    Ok((manifest, path))
}

/// Proves a backup readable: every file's checksum, and the database dump read by its tool.
pub async fn verify(
    engine: &dyn Engine,
    manifest: &Manifest,
    path: &Path,
) -> Result<(), BackupError> {
    for file in &manifest.files {
        let sha = store::sha256_file(&path.join(&file.name))?;
        if sha != file.sha256 {
            return Err(BackupError::Failed(format!(
                "{} in {} does not match its checksum: the backup is damaged",
                file.name,
                path.display()
            )));
        }
    }
    if let (Some(db), Some(file)) = (
        &manifest.target.database,
        manifest.files.iter().find(|f| f.kind == "database"),
    ) {
        database::check(engine, db, &path.join(&file.name)).await?;
    }
    Ok(())
}

/// Puts a backup back: the database, then each volume (emptied first), into the stopped `app`.
pub async fn restore(
    engine: &dyn Engine,
    app: App<'_>,
    path: &Path,
) -> Result<Manifest, BackupError> {
    let manifest = store::read_manifest(path)?;
    verify(engine, &manifest, path).await?;
    for file in &manifest.files {
        let source = path.join(&file.name);
        match file.kind.as_str() {
            "database" => {
                let db = manifest.target.database.as_ref().ok_or_else(|| {
                    BackupError::Failed("the manifest has a dump but no database".into())
                })?;
                let password = credentials(engine, app, db).await?;
                database::restore(engine, db, &password, &source).await?;
            }
            _ => volumes::restore(engine, app.container, &file.of, &source).await?,
        }
    }
    Ok(manifest)
}

/// How much room a backup will take at most: the database's size as its server reports it and
/// the mounts' sizes where this host can read them.
pub async fn estimate(
    engine: &dyn Engine,
    app: &Container,
    target: &BackupTarget,
) -> Result<u64, BackupError> {
    let mut bytes = 0;
    if let Some(db) = &target.database {
        let password = credentials(engine, App::of(app), db).await?;
        bytes += database::size(engine, db, &password).await?;
    }
    for volume in &target.volumes {
        let source = app
            .mounts()
            .into_iter()
            .find(|m| m.destination == volume.path)
            .and_then(|m| m.source);
        bytes += source.map(|s| store::du(Path::new(&s))).unwrap_or(0);
    }
    Ok(bytes)
}

/// Whether `c` is a task of the Swarm service that `host` names on its networks: the service's
/// own name, or its name in its stack's file (`docker stack deploy` gives each service that
/// alias). A task's endpoint lists neither among its aliases: Swarm's DNS answers for them.
fn answers_for_service(c: &Container, host: &str) -> bool {
    let labels = c.labels();
    let Some(service) = labels.get("com.docker.swarm.service.name") else {
        return false;
    };
    service == host
        || labels
            .get("com.docker.stack.namespace")
            .is_some_and(|stack| *service == format!("{stack}_{host}"))
}

/// The container serving a database, as [`database_container`] finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Server {
    Running(String),
    /// A container that would answer to the host name, but is not running.
    Stopped(String),
}

impl Server {
    fn of(name: String, running: bool) -> Server {
        match running {
            true => Server::Running(name),
            false => Server::Stopped(name),
        }
    }

    pub fn name(&self) -> &str {
        match self {
            Server::Running(name) | Server::Stopped(name) => name,
        }
    }
}

/// The database server's container: on a network the application shares, answering to the
/// host name the application uses (a container name or a network alias); a running one first,
/// else a stopped one that would.
pub async fn database_container(
    engine: &dyn Engine,
    app: &Container,
    host: &str,
) -> Result<Option<Server>, EngineError> {
    let networks: Vec<String> = app.attachments().into_iter().map(|a| a.network).collect();
    for link in app.links() {
        if let Some((target, alias)) = link.split_once(':') {
            if alias == host || target == host {
                let running = engine
                    .inspect(target)
                    .await?
                    .is_some_and(|c| c.is_running());
                return Ok(Some(Server::of(target.to_string(), running)));
            }
        }
    }
    let mut stopped = None;
    for name in engine.container_names(true).await? {
        let Some(c) = engine.inspect(&name).await? else {
            continue;
        };
        let answers = c.attachments().iter().any(|on| {
            networks.contains(&on.network)
                && (name == host
                    || answers_for_service(&c, host)
                    || on.aliases.iter().any(|a| a == host)
                    || on.address.as_deref() == Some(host)
                    || (c.id().starts_with(host) && host.len() >= 12))
        });
        if answers && app.name() != name {
            match c.is_running() {
                true => return Ok(Some(Server::Running(name))),
                false => stopped = stopped.or(Some(Server::Stopped(name))),
            }
        }
    }
    Ok(stopped)
}
