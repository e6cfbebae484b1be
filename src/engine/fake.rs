//! An in-memory engine for unit tests of plans, the runner and recovery.
//!
//! It keeps what the runner relies on: ids and unique names, created/running/exited states,
//! idempotent start/stop/rename/remove, image defaults merged into a container's config,
//! HEALTHCHECK status, files for the archive API, and commands whose behaviour is named by
//! their first word (`true`, `false`, `hang`, `migrate`, `migrate-fail`).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;

use async_trait::async_trait;
use bollard::models::{
    ContainerConfig, ContainerCreateBody, ContainerInspectResponse, ContainerState,
    EndpointSettings, Health, HealthConfig, HealthStatusEnum, HostConfig, ImageConfig,
    ImageInspect, MountPoint, NetworkInspect, NetworkSettings,
};
use bytes::Bytes;
use futures_util::StreamExt;
use indicatif::MultiProgress;

use super::reference::ImageRef;
use super::{ByteSink, ByteStream, Engine, EngineError, LineSink, Stored, TarStream};
use super::{Container, Image, Network, Service, ServiceSpec, Task};

/// How a container of an image behaves once started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Runs; no HEALTHCHECK.
    Serve,
    /// Runs, and its HEALTHCHECK reports healthy.
    Healthy,
    /// Runs, and its HEALTHCHECK reports unhealthy.
    Unhealthy,
    /// Exits with code 3 as soon as it starts.
    Crash,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeFile {
    pub bytes: Vec<u8>,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct FakeContainer {
    pub id: String,
    pub name: String,
    pub image: String,
    pub body: ContainerCreateBody,
    pub running: bool,
    pub exit_code: i64,
    pub networks: BTreeMap<String, EndpointSettings>,
    pub files: BTreeMap<String, FakeFile>,
    /// What a one-shot prints after its command line.
    pub output: Vec<String>,
}

/// Everything the fake holds; tests compare snapshots of it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    pub containers: BTreeMap<String, FakeContainer>,
    pub images: BTreeMap<String, (ImageConfig, Behaviour)>,
    /// Images only the registry has until they are pulled.
    pub registry: BTreeMap<String, (ImageConfig, Behaviour)>,
    /// Keys migrations and hooks wrote, as a database would keep them.
    pub data: BTreeMap<String, String>,
    /// The copies of the database its server made (as the backup's snapshot script asks), by name;
    /// `None` for a server whose superuser does not answer, which copies nothing.
    pub copies: Option<BTreeMap<String, BTreeMap<String, String>>>,
    /// Why the server refuses to copy the database (another session is on it).
    pub copy_refused: Option<String>,
    /// Named volumes, with what a copy of the database's volume holds (the backup's volume
    /// copy); the database's own volume holds `data`.
    pub volumes: BTreeMap<String, BTreeMap<String, String>>,
    /// Files of the database a rollback set aside on its volume, by folder.
    pub asides: BTreeMap<String, BTreeMap<String, String>>,
    /// Why a pass copying the database's volume in the window fails (the storage is full).
    pub volume_copy_fails: Option<String>,
    /// Databases the server holds besides the product's.
    pub other_databases: Vec<String>,
    /// The networks cutover made (a rehearsal's), none of which routes out.
    pub networks: std::collections::BTreeSet<String>,
    /// What the database user may not do that a restore needs, as the database says it.
    pub restore_denied: Option<String>,
    /// Containers whose files cannot be read, with whether they are removed at the first try.
    pub unreadable: BTreeMap<String, bool>,
    /// The engine goes away at a call of this name, after letting that many through, for that
    /// many calls; each outage once the one before it happened.
    pub outages: std::collections::VecDeque<(&'static str, usize, usize)>,
    /// Calls that fail still, the engine being away.
    pub away_for: usize,
    next_id: Counter,
}

/// How many ids the fake handed out: what names the next container, not what the world holds,
/// so that two worlds that hold the same are equal however many one-shots came and went.
#[derive(Debug, Clone, Default)]
struct Counter(u64);

impl PartialEq for Counter {
    fn eq(&self, _: &Counter) -> bool {
        true
    }
}

#[derive(Default)]
pub struct FakeEngine {
    world: Mutex<World>,
}

fn not_found(what: &str) -> EngineError {
    EngineError::Api {
        action: what.to_string(),
        status: Some(404),
        message: "no such container".into(),
    }
}

impl FakeEngine {
    pub fn world(&self) -> World {
        self.world.lock().unwrap().clone()
    }

    fn with<T>(&self, f: impl FnOnce(&mut World) -> T) -> T {
        f(&mut self.world.lock().unwrap())
    }

    /// Docker refuses an exec into a stopped container with 409; so does the fake.
    fn ensure_running(&self, id: &str) -> Result<(), EngineError> {
        let running = self
            .with(|w| find(w, id).map(|c| c.running))
            .ok_or_else(|| not_found(id))?;
        if running {
            return Ok(());
        }
        Err(EngineError::Api {
            action: format!("exec in {id}"),
            status: Some(409),
            message: "container is not running".into(),
        })
    }

    /// An image in the registry; `env` entries become its defaults.
    pub fn publish(&self, image: &str, behaviour: Behaviour, env: &[&str]) {
        let healthcheck =
            matches!(behaviour, Behaviour::Healthy | Behaviour::Unhealthy).then(|| HealthConfig {
                test: Some(vec!["CMD".into(), "probe".into()]),
                ..Default::default()
            });
        let config = ImageConfig {
            env: Some(env.iter().map(|e| e.to_string()).collect()),
            healthcheck,
            ..Default::default()
        };
        self.with(|w| w.registry.insert(image.to_string(), (config, behaviour)));
    }

    /// `docker run -d --name NAME` of an image from the registry.
    pub fn run(&self, name: &str, image: &str, env: &[&str], files: &[(&str, &str)]) -> String {
        self.with(|w| {
            let found = w.registry[image].clone();
            w.images.insert(image.to_string(), found);
        });
        // Every container of the fake is on one network, where its name answers.
        let networking_config = Some(bollard::models::NetworkingConfig {
            endpoints_config: Some([("net".to_string(), EndpointSettings::default())].into()),
        });
        let body = ContainerCreateBody {
            image: Some(image.to_string()),
            env: Some(env.iter().map(|e| e.to_string()).collect()),
            networking_config,
            ..Default::default()
        };
        let id = self.with(|w| create(w, name, &body)).unwrap();
        self.with(|w| {
            let c = w.containers.get_mut(&id).unwrap();
            for (path, content) in files {
                c.files.insert(
                    path.to_string(),
                    FakeFile {
                        bytes: content.as_bytes().to_vec(),
                        mode: 0o640,
                        uid: 1000,
                        gid: 1000,
                    },
                );
            }
            start(w, &id);
        });
        id
    }

    /// `docker rmi` while a container of the image still exists (`--force`).
    pub fn remove_image(&self, image: &str) {
        self.with(|w| w.images.remove(image));
    }

    /// Mounts `bind` (`SOURCE:DEST[:ro]`: a volume, or a path of the host) in a container, as
    /// `docker run -v` would have. The fake keeps its files per container all the same.
    pub fn mount(&self, name: &str, bind: &str) {
        self.with(|w| {
            let c = w.containers.values_mut().find(|c| c.name == name).unwrap();
            let host = c.body.host_config.get_or_insert_with(HostConfig::default);
            host.binds
                .get_or_insert_with(Vec::new)
                .push(bind.to_string());
        });
    }

    /// The database user may not do what a restore needs; the database says `why`.
    pub fn set_restore_denied(&self, why: &str) {
        self.with(|w| w.restore_denied = Some(why.to_string()));
    }

    /// Reading a file of `name` fails as Docker's archive API does while it removes the
    /// container; with `vanish`, the container is gone once the read failed.
    pub fn fail_reads(&self, name: &str, vanish: bool) {
        self.with(|w| w.unreadable.insert(name.to_string(), vanish));
    }

    /// The engine goes away at a `call` (an [`Engine`] method's name) once `skip` such calls
    /// went through, as dockerd does when it restarts: every container stops, and `calls`
    /// calls, pings included, fail. A second outage asked waits for the first to happen.
    pub fn outage_at(&self, call: &'static str, skip: usize, calls: usize) {
        self.with(|w| w.outages.push_back((call, skip, calls)));
    }

    /// The engine answers again, and no outage is waiting.
    pub fn end_outages(&self) {
        self.with(|w| {
            w.outages.clear();
            w.away_for = 0;
        });
    }

    fn reach(&self, call: &'static str) -> Result<(), EngineError> {
        self.with(|w| {
            if let Some(&(at, skip, calls)) = w.outages.front() {
                if at == call && skip > 0 {
                    w.outages[0] = (at, skip - 1, calls);
                } else if at == call {
                    w.outages.pop_front();
                    w.away_for = calls;
                    for c in w.containers.values_mut().filter(|c| c.running) {
                        c.running = false;
                        c.exit_code = 143;
                    }
                }
            }
            if w.away_for == 0 {
                return Ok(());
            }
            w.away_for -= 1;
            Err(EngineError::Lost {
                host: "unix:///fake.sock".into(),
                action: call.to_string(),
                message: "connection refused".into(),
            })
        })
    }

    /// The database's server copies databases: its superuser answers over its local socket.
    pub fn copies_databases(&self) {
        self.with(|w| w.copies = Some(BTreeMap::new()));
    }

    /// A pass copying the database's volume in the window fails, saying why.
    pub fn fail_volume_copies(&self, why: &str) {
        self.with(|w| w.volume_copy_fails = Some(why.to_string()));
    }

    /// The database's server holds these databases besides the product's.
    pub fn hold_other_databases(&self, names: &[&str]) {
        self.with(|w| w.other_databases = names.iter().map(|n| n.to_string()).collect());
    }

    /// A volume named `name` is on the engine.
    pub fn with_volume(&self, name: &str) {
        self.with(|w| {
            w.volumes.entry(name.to_string()).or_default();
        });
    }

    /// A copy of the database named `name` is on its server.
    pub fn with_copy(&self, name: &str) {
        self.with(|w| {
            let data = w.data.clone();
            w.copies
                .get_or_insert_with(BTreeMap::new)
                .insert(name.to_string(), data);
        });
    }

    /// The server refuses to copy the database, saying why.
    pub fn refuse_copies(&self, why: &str) {
        self.with(|w| w.copy_refused = Some(why.to_string()));
    }

    /// An operation of the snapshot script on the server's copies: what it prints, or why it
    /// fails. The database itself is `data`; every other name is a copy.
    fn snapshot_op(&self, args: &[String]) -> Result<String, String> {
        let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
        self.with(|w| {
            let Some(copies) = w.copies.as_mut() else {
                return match arg(0).as_str() {
                    "probe" => Ok("150004|f|1048576|app|10485760".into()),
                    _ => Err("the server's superuser does not answer".into()),
                };
            };
            match arg(0).as_str() {
                "probe" => Ok("150004|t|1048576|app|10485760".into()),
                "create" if w.copy_refused.is_some() => Err(w.copy_refused.clone().unwrap()),
                "create" if copies.contains_key(&arg(3)) => {
                    Err(format!("database \"{}\" already exists", arg(3)))
                }
                "create" => {
                    copies.insert(arg(3), w.data.clone());
                    Ok(String::new())
                }
                "swap" => {
                    if let Some(snapshot) = copies.remove(&arg(3)) {
                        let migrated = std::mem::replace(&mut w.data, snapshot);
                        copies.entry(arg(4)).or_insert(migrated);
                    }
                    Ok(String::new())
                }
                "drop" => {
                    copies.remove(&arg(3));
                    Ok(String::new())
                }
                "allow" => Ok(String::new()),
                "exists" => Ok(format!("{}\n", copies.contains_key(&arg(3)) as u8)),
                "list" => Ok(copies
                    .keys()
                    .filter(|name| name.contains("__cutover_"))
                    .map(|name| format!("{name}\n"))
                    .collect()),
                op => Err(format!("no operation {op}")),
            }
        })
    }

    /// What the fake's database holds.
    pub fn with_data(&self, data: &[(&str, &str)]) {
        self.with(|w| {
            w.data = data
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        });
    }

    pub fn named(&self, name: &str) -> Option<FakeContainer> {
        self.with(|w| w.containers.values().find(|c| c.name == name).cloned())
    }
}

fn create(w: &mut World, name: &str, body: &ContainerCreateBody) -> Result<String, EngineError> {
    if w.containers.values().any(|c| c.name == name) {
        return Err(EngineError::Api {
            action: format!("creating {name}"),
            status: Some(409),
            message: "name in use".into(),
        });
    }
    let image = body.image.clone().unwrap_or_default();
    if !w.images.contains_key(&image) {
        return Err(EngineError::Api {
            action: format!("creating {name}"),
            status: Some(404),
            message: format!("no such image {image}"),
        });
    }
    for (source, _) in binds(body) {
        if !source.starts_with('/') {
            w.volumes.entry(source).or_default();
        }
    }
    w.next_id.0 += 1;
    let id = format!("{:064x}", w.next_id.0);
    let networks = body
        .networking_config
        .as_ref()
        .and_then(|n| n.endpoints_config.clone())
        .map(|e| e.into_iter().collect())
        .unwrap_or_default();
    let container = FakeContainer {
        id: id.clone(),
        name: name.to_string(),
        image,
        body: body.clone(),
        running: false,
        exit_code: 0,
        networks,
        files: BTreeMap::new(),
        output: Vec::new(),
    };
    w.containers.insert(id.clone(), container);
    Ok(id)
}

/// A container's binds, as (source, destination).
fn binds(body: &ContainerCreateBody) -> Vec<(String, String)> {
    body.host_config
        .iter()
        .flat_map(|h| h.binds.iter().flatten())
        .map(|b| {
            let mut parts = b.split(':');
            let source = parts.next().unwrap_or_default().to_string();
            (source, parts.next().unwrap_or_default().to_string())
        })
        .collect()
}

/// A pass of the backup's volume copy's script over the database's volume and its copy:
/// what it says and its exit code. The first pass copies a server that writes as it is read
/// (a torn copy, which the second must mend); the others refuse a running server, which would
/// tear what they copy.
fn volume_pass(w: &mut World, helper: &FakeContainer) -> (Vec<String>, i64) {
    let words = helper.body.entrypoint.clone().unwrap_or_default();
    let op = words.get(4).cloned().unwrap_or_default();
    let mounted = binds(&helper.body);
    let at = |dest: &str| {
        mounted
            .iter()
            .find(|(_, d)| d == dest)
            .map(|(s, _)| s.clone())
            .unwrap_or_default()
    };
    let (data, copy) = (at("/cutover-data"), at("/cutover-copy"));
    let server_runs = w
        .containers
        .values()
        .any(|c| c.running && c.id != helper.id && binds(&c.body).iter().any(|(s, _)| *s == data));
    if server_runs && op != "precopy" && op != "settle" {
        return (vec![format!("{op}: the server on {data} is running")], 1);
    }
    match op.as_str() {
        "precopy" => {
            let mut torn = w.data.clone();
            torn.insert("torn".into(), "precopy".into());
            w.volumes.insert(copy, torn);
        }
        "sync" => match &w.volume_copy_fails {
            Some(why) => return (vec![why.clone()], 1),
            None => {
                w.volumes.insert(copy, w.data.clone());
            }
        },
        "back" => {
            let aside = words.get(5).cloned().unwrap_or_default();
            let before = w.volumes.get(&copy).cloned().unwrap_or_default();
            // Again after a kill: what the first moved aside stays there.
            let migrated = std::mem::replace(&mut w.data, before);
            w.asides.entry(aside).or_insert(migrated);
        }
        "settle" => {
            w.asides.remove(&words.get(5).cloned().unwrap_or_default());
        }
        op => return (vec![format!("no operation {op}")], 2),
    }
    (Vec::new(), 0)
}

/// The volume of the rehearsal's copy a container works on: the copy's server itself (labelled
/// as a rehearsal's), or a one-shot on the network of a running one. `None`: the fake's own
/// database, `data`.
fn rehearsal_copy(w: &World, c: &FakeContainer) -> Option<String> {
    let label = super::REHEARSAL_LABEL;
    // The rehearsal's one-shots mount nothing: the labelled container with a volume is the
    // copy's server.
    let server_volume = |s: &FakeContainer| {
        let labelled = s
            .body
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(label));
        labelled
            .then(|| binds(&s.body).into_iter().next().map(|(v, _)| v))
            .flatten()
    };
    if let Some(volume) = server_volume(c) {
        return Some(volume);
    }
    w.containers
        .values()
        .filter(|s| s.running && s.id != c.id)
        .filter(|s| s.networks.keys().any(|n| c.networks.contains_key(n)))
        .find_map(server_volume)
}

/// The data the container `id` works on: its rehearsal's copy, else the fake's database.
fn database<'w>(w: &'w mut World, id: &str) -> &'w mut BTreeMap<String, String> {
    match rehearsal_copy(w, &w.containers[id]) {
        Some(volume) => w.volumes.entry(volume).or_default(),
        None => &mut w.data,
    }
}

/// The first word of a container's command decides what a one-shot does.
fn start(w: &mut World, id: &str) {
    let c = w.containers.get_mut(id).unwrap();
    if c.running {
        return;
    }
    let pass = c
        .body
        .entrypoint
        .as_ref()
        .and_then(|e| e.get(2))
        .is_some_and(|script| script.contains("data=/cutover-data"));
    if pass {
        let helper = c.clone();
        let (output, code) = volume_pass(w, &helper);
        let c = w.containers.get_mut(id).unwrap();
        c.output = output;
        c.exit_code = code;
        return;
    }
    let behaviour = w.images[&c.image].1;
    let command = c.body.cmd.clone().unwrap_or_default();
    let word = command.first().map(String::as_str).unwrap_or_default();
    c.running = true;
    c.exit_code = 0;
    match (word, behaviour) {
        ("migrate", _) => {
            c.running = false;
            let version = c.image.rsplit(':').next().unwrap_or_default().to_string();
            database(w, id).insert("schema".into(), version);
        }
        ("migrate-fail", _) => {
            c.running = false;
            c.exit_code = 2;
            database(w, id).insert("schema".into(), "half-migrated".into());
        }
        ("hang", _) => {}
        ("store-check", _) => {
            c.running = false;
            let dest = store_driver(c, command.get(1));
            if dest.contains("broken") {
                c.exit_code = 5;
                c.output = vec![format!("cannot reach the {dest} store")];
            }
        }
        // The object store of a task's tests: the fake's data `docs` names the driver that holds
        // the documents; moving them from a driver with `oneway` in its name fails, and into
        // one with `flaky` leaves the migration's row short of its total.
        ("store-move", _) => {
            c.running = false;
            let from = store_driver(c, command.get(1));
            let to = store_driver(c, command.get(2));
            if from.contains("oneway") {
                c.exit_code = 2;
                c.output = vec![format!("cannot read from {from}")];
                return;
            }
            if w.data.get("docs") == Some(&from) {
                w.data.insert("docs".into(), to.clone());
            }
            let n = w.data.keys().filter(|k| k.starts_with("move-")).count() + 1;
            let moved = if to.contains("flaky") { 0 } else { 1 };
            w.data
                .insert(format!("move-{n}"), format!("{from}>{to} {moved}"));
            c.output = vec![format!("Migration Task Id: {n}")];
        }
        ("store-list", _) => {
            c.running = false;
            c.output = vec!["[INFO] id  state  moved  total".into()];
            for (key, value) in w.data.iter().filter(|(k, _)| k.starts_with("move-")) {
                let moved = value.rsplit(' ').next().unwrap_or_default();
                c.output
                    .push(format!("{}  complete  {moved}  1", &key[5..]));
            }
        }
        (_, Behaviour::Crash) => {
            c.running = false;
            c.exit_code = 3;
        }
        _ => {}
    }
}

/// The `driver:` a store configuration put into a one-shot names.
fn store_driver(c: &FakeContainer, path: Option<&String>) -> String {
    let text = path
        .and_then(|p| c.files.get(p))
        .map(|f| String::from_utf8_lossy(&f.bytes).to_string())
        .unwrap_or_default();
    text.lines()
        .find_map(|l| l.trim().strip_prefix("driver: "))
        .unwrap_or("none")
        .to_string()
}

fn find<'a>(w: &'a mut World, name_or_id: &str) -> Option<&'a mut FakeContainer> {
    w.containers
        .values_mut()
        .find(|c| c.id == name_or_id || c.name == name_or_id)
}

fn inspect(w: &World, c: &FakeContainer) -> ContainerInspectResponse {
    let (image, behaviour) = w.images[&c.image].clone();
    let mut env = image.env.clone().unwrap_or_default();
    for entry in c.body.env.iter().flatten() {
        let name = entry.split('=').next().unwrap_or_default();
        env.retain(|e| e.split('=').next() != Some(name));
        env.push(entry.clone());
    }
    let body = &c.body;
    let health = (c.running && image.healthcheck.is_some()).then(|| Health {
        status: Some(if behaviour == Behaviour::Unhealthy {
            HealthStatusEnum::UNHEALTHY
        } else {
            HealthStatusEnum::HEALTHY
        }),
        ..Default::default()
    });
    ContainerInspectResponse {
        id: Some(c.id.clone()),
        name: Some(format!("/{}", c.name)),
        image: Some(c.image.clone()),
        restart_count: Some(0),
        config: Some(ContainerConfig {
            image: Some(c.image.clone()),
            env: Some(env),
            cmd: body.cmd.clone().or(image.cmd.clone()),
            entrypoint: body.entrypoint.clone().or(image.entrypoint.clone()),
            labels: body.labels.clone(),
            healthcheck: body.healthcheck.clone().or(image.healthcheck.clone()),
            user: body.user.clone(),
            stop_timeout: body.stop_timeout,
            ..Default::default()
        }),
        host_config: body.host_config.clone(),
        mounts: Some(mounts(body)),
        state: Some(ContainerState {
            running: Some(c.running),
            exit_code: Some(c.exit_code),
            health,
            ..Default::default()
        }),
        network_settings: Some(NetworkSettings {
            networks: Some(c.networks.clone().into_iter().collect::<HashMap<_, _>>()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The mounts the engine reports for a container's binds.
fn mounts(body: &ContainerCreateBody) -> Vec<MountPoint> {
    let binds = body
        .host_config
        .iter()
        .flat_map(|h| h.binds.iter().flatten());
    binds
        .map(|bind| {
            let mut parts = bind.split(':');
            let source = parts.next().unwrap_or_default().to_string();
            let destination = parts.next().map(str::to_string);
            let volume = !source.starts_with('/');
            MountPoint {
                typ: Some(match volume {
                    true => "volume".into(),
                    false => "bind".into(),
                }),
                name: volume.then(|| source.clone()),
                source: Some(source),
                destination,
                rw: Some(parts.next() != Some("ro")),
                ..Default::default()
            }
        })
        .collect()
}

#[async_trait]
impl Engine for FakeEngine {
    async fn ping(&self) -> Result<(), EngineError> {
        self.reach("ping")
    }

    async fn inspect(&self, name_or_id: &str) -> Result<Option<Container>, EngineError> {
        self.reach("inspect")?;
        Ok(self.with(|w| {
            let c = w
                .containers
                .values()
                .find(|c| c.id == name_or_id || c.name == name_or_id)?;
            Some(inspect(w, c).into())
        }))
    }

    async fn image(&self, image: &str) -> Result<Option<Image>, EngineError> {
        self.reach("image")?;
        Ok(self.with(|w| {
            w.images.get(image).map(|(config, _)| {
                Image(ImageInspect {
                    id: Some(image.to_string()),
                    config: Some(config.clone()),
                    ..Default::default()
                })
            })
        }))
    }

    async fn container_names(&self, all: bool) -> Result<Vec<String>, EngineError> {
        self.reach("container_names")?;
        Ok(self.with(|w| {
            w.containers
                .values()
                .filter(|c| all || c.running)
                .map(|c| c.name.clone())
                .collect()
        }))
    }

    async fn pull(
        &self,
        image: &ImageRef,
        _progress: Option<&MultiProgress>,
    ) -> Result<(), EngineError> {
        self.reach("pull")?;
        let name = image.to_string();
        self.with(|w| match w.registry.get(&name).cloned() {
            Some(found) => {
                w.images.insert(name, found);
                Ok(())
            }
            None => Err(EngineError::Pull {
                image: name,
                message: "manifest unknown".into(),
            }),
        })
    }

    async fn create(&self, name: &str, body: &ContainerCreateBody) -> Result<String, EngineError> {
        self.reach("create")?;
        self.with(|w| create(w, name, body))
    }

    async fn connect(
        &self,
        id: &str,
        network: &str,
        endpoint: &EndpointSettings,
    ) -> Result<(), EngineError> {
        self.reach("connect")?;
        self.with(|w| {
            let c = find(w, id).ok_or_else(|| not_found(id))?;
            c.networks.insert(network.to_string(), endpoint.clone());
            Ok(())
        })
    }

    async fn start(&self, id: &str) -> Result<(), EngineError> {
        self.reach("start")?;
        self.with(|w| {
            let id = find(w, id).ok_or_else(|| not_found(id))?.id.clone();
            start(w, &id);
            Ok(())
        })
    }

    async fn stop(&self, id: &str, _timeout_secs: Option<i64>) -> Result<(), EngineError> {
        self.kill(id).await
    }

    async fn kill(&self, id: &str) -> Result<(), EngineError> {
        self.reach("kill")?;
        self.with(|w| {
            find(w, id).ok_or_else(|| not_found(id))?.running = false;
            Ok(())
        })
    }

    async fn rename(&self, id: &str, to: &str) -> Result<(), EngineError> {
        self.reach("rename")?;
        self.with(|w| {
            let own = find(w, id).ok_or_else(|| not_found(id))?.id.clone();
            if w.containers.values().any(|c| c.name == to && c.id != own) {
                return Err(EngineError::Api {
                    action: format!("renaming to {to}"),
                    status: Some(409),
                    message: "name in use".into(),
                });
            }
            w.containers.get_mut(&own).unwrap().name = to.to_string();
            Ok(())
        })
    }

    async fn remove(&self, id: &str) -> Result<(), EngineError> {
        self.reach("remove")?;
        self.with(|w| {
            if let Some(own) = find(w, id).map(|c| c.id.clone()) {
                w.containers.remove(&own);
            }
            Ok(())
        })
    }

    /// The fake keeps no volumes of its own: as `remove`.
    async fn remove_with_anonymous_volumes(&self, id: &str) -> Result<(), EngineError> {
        self.remove(id).await
    }

    async fn follow_to_exit(&self, id: &str, sink: LineSink<'_>) -> Result<i64, EngineError> {
        self.reach("follow_to_exit")?;
        let (running, code, command, output) = self.with(|w| {
            let c = find(w, id).ok_or_else(|| not_found(id))?;
            Ok::<_, EngineError>((
                c.running,
                c.exit_code,
                c.body.cmd.clone().unwrap_or_default(),
                c.output.clone(),
            ))
        })?;
        sink(&format!("running {}", command.join(" ")));
        for line in output {
            sink(&line);
        }
        if running {
            std::future::pending::<()>().await;
        }
        Ok(code)
    }

    async fn exec(&self, id: &str, cmd: &[String], sink: LineSink<'_>) -> Result<i64, EngineError> {
        self.reach("exec")?;
        self.ensure_running(id)?;
        sink(&format!("exec {}", cmd.join(" ")));
        match cmd.first().map(String::as_str) {
            Some("hang") => std::future::pending().await,
            Some("false") => Ok(1),
            Some("print") => {
                sink(&cmd[1..].join(" "));
                Ok(0)
            }
            _ => Ok(0),
        }
    }

    /// The fake's database is [`World::data`]: `pg_dump`/`mysqldump` print it as JSON,
    /// `pg_restore`/`mysql` given input replace it, `pg_restore --list` checks it parses.
    async fn exec_io(
        &self,
        id: &str,
        cmd: &[String],
        _env: &[String],
        input: Option<ByteStream>,
        stdout: ByteSink<'_>,
        stderr: LineSink<'_>,
    ) -> Result<i64, EngineError> {
        self.reach("exec_io")?;
        self.ensure_running(id)?;
        let mut fed = Vec::new();
        if let Some(mut input) = input {
            while let Some(chunk) = input.next().await {
                fed.extend_from_slice(&chunk.unwrap());
            }
        }
        let program = cmd.first().map(String::as_str).unwrap_or_default();
        let listing = cmd.iter().any(|a| a == "--list");
        let denied = self.with(|w| w.restore_denied.clone());
        if program == "sh" && cmd.get(2).is_some_and(|s| s.contains("data=/cutover-data")) {
            let others = self.with(|w| w.other_databases.clone());
            let said = format!("1024|10485760\nbase\n{}", others.join("\n"));
            stdout(said.as_bytes()).map_err(|e| not_found(&e.to_string()))?;
            return Ok(0);
        }
        // The rehearsal's superuser preparing the copy's server.
        if program == "sh" && cmd.get(2).is_some_and(|s| s.contains("the copy's server")) {
            return Ok(0);
        }
        let snapshot_op = program == "sh" && cmd.get(2).is_some_and(|s| s.contains("op=$1"));
        if snapshot_op {
            return match self.snapshot_op(&cmd[4..]) {
                Ok(said) => {
                    stdout(said.as_bytes()).map_err(|e| not_found(&e.to_string()))?;
                    Ok(0)
                }
                Err(e) => {
                    stderr(&e);
                    Ok(1)
                }
            };
        }
        match program {
            "pg_dump" | "mysqldump" => {
                // `-d NAME` for pg_dump, the last word for mysqldump: a copy's data, when named.
                let from = cmd
                    .iter()
                    .position(|a| a == "-d")
                    .and_then(|i| cmd.get(i + 1))
                    .or(cmd.last());
                let dump = self.with(|w| {
                    let copy = from.and_then(|f| w.copies.as_ref()?.get(f));
                    // A throwaway server on a copy of the volume serves the copy.
                    let on_copy = w
                        .containers
                        .values()
                        .find(|c| c.id == id || c.name == id)
                        .and_then(|c| {
                            binds(&c.body)
                                .into_iter()
                                .find_map(|(s, _)| w.volumes.get(&s).filter(|v| !v.is_empty()))
                        });
                    serde_json::to_vec(copy.or(on_copy).unwrap_or(&w.data)).unwrap()
                });
                stdout(&dump).map_err(|e| not_found(&e.to_string()))?;
                Ok(0)
            }
            "psql" if cmd.iter().any(|a| a.contains("FROM pg_extension")) => Ok(0),
            "psql" if cmd.iter().any(|a| a.contains("FROM pg_database")) => {
                let others = self.with(|w| w.other_databases.join("\n"));
                stdout(others.as_bytes()).map_err(|e| not_found(&e.to_string()))?;
                Ok(0)
            }
            // What a restore needs, asked of PostgreSQL (a query naming its problems) or tried
            // on MySQL (a probe table).
            "psql" if cmd.iter().any(|a| a.contains("rolsuper")) => {
                let said = denied.map(|d| format!("{d}\n")).unwrap_or_default();
                stdout(said.as_bytes()).map_err(|e| not_found(&e.to_string()))?;
                Ok(0)
            }
            "mysql" if cmd.iter().any(|a| a.contains("cutover_probe")) => match denied {
                Some(d) => {
                    stderr(&d);
                    Ok(1)
                }
                None => Ok(0),
            },
            // The restore: a shell that empties the database and loads the dump.
            "sh" | "pg_restore" if !fed.is_empty() => {
                match serde_json::from_slice::<BTreeMap<String, String>>(&fed) {
                    Ok(data) if !listing => {
                        self.with(|w| {
                            let id = find(w, id).map(|c| c.id.clone()).unwrap_or_default();
                            *database(w, &id) = data;
                        });
                        Ok(0)
                    }
                    Ok(_) => Ok(0),
                    Err(e) => {
                        stderr(&format!("not a dump: {e}"));
                        Ok(1)
                    }
                }
            }
            _ => {
                stdout(b"42\n").map_err(|e| not_found(&e.to_string()))?;
                Ok(0)
            }
        }
    }

    async fn archive_get(&self, id: &str, path: &str) -> Result<Option<TarStream>, EngineError> {
        self.reach("archive_get")?;
        let failing = self.with(|w| {
            let c = find(w, id)?;
            let (id, name) = (c.id.clone(), c.name.clone());
            let vanish = *w.unreadable.get(&name)?;
            if vanish {
                w.containers.remove(&id);
            }
            Some(id)
        });
        if let Some(id) = failing {
            return Err(EngineError::Api {
                action: format!("copying {path} out of {id}"),
                status: Some(500),
                message: format!("RWLayer of container {id} is unexpectedly nil"),
            });
        }
        // The file at `path`, or every file under the directory `path`, named from its last
        // component on as the engine names them.
        let base = path.trim_end_matches('/');
        let name = base.rsplit('/').next().unwrap_or(base).to_string();
        let files: Vec<(String, FakeFile)> = self
            .with(|w| {
                find(w, id).map(|c| {
                    c.files
                        .iter()
                        .filter_map(|(at, file)| match at == path {
                            true => Some((name.clone(), file.clone())),
                            false => at
                                .strip_prefix(&format!("{base}/"))
                                .map(|rest| (format!("{name}/{rest}"), file.clone())),
                        })
                        .collect()
                })
            })
            .ok_or_else(|| not_found(id))?;
        if files.is_empty() {
            return Ok(None);
        }
        let mut archive = tar::Builder::new(Vec::new());
        for (at, file) in files {
            let mut header = tar::Header::new_gnu();
            header.set_path(at).unwrap();
            header.set_size(file.bytes.len() as u64);
            header.set_mode(file.mode);
            header.set_uid(file.uid);
            header.set_gid(file.gid);
            header.set_cksum();
            archive.append(&header, file.bytes.as_slice()).unwrap();
        }
        let bytes = Bytes::from(archive.into_inner().unwrap());
        Ok(Some(
            futures_util::stream::once(async move { Ok(bytes) }).boxed(),
        ))
    }

    /// The fake is no Swarm manager.
    async fn service(&self, _name_or_id: &str) -> Result<Option<Service>, EngineError> {
        self.reach("service")?;
        Ok(None)
    }

    async fn services(&self) -> Result<Vec<Service>, EngineError> {
        self.reach("services")?;
        Ok(Vec::new())
    }

    async fn update_service(
        &self,
        id: &str,
        _version: i32,
        _spec: ServiceSpec,
    ) -> Result<(), EngineError> {
        Err(not_found(id))
    }

    async fn service_tasks(&self, id: &str) -> Result<Vec<Task>, EngineError> {
        Err(not_found(id))
    }

    async fn network(&self, name: &str) -> Result<Option<Network>, EngineError> {
        self.reach("network")?;
        Ok(self.with(|w| w.networks.contains(name)).then(|| {
            Network(NetworkInspect {
                name: Some(name.to_string()),
                internal: Some(true),
                ..Default::default()
            })
        }))
    }

    async fn create_internal_network(
        &self,
        name: &str,
        _labels: &[(String, String)],
    ) -> Result<(), EngineError> {
        self.reach("create_internal_network")?;
        self.with(|w| match w.networks.insert(name.to_string()) {
            true => Ok(()),
            false => Err(EngineError::Api {
                action: format!("creating the network {name}"),
                status: Some(409),
                message: format!("network with name {name} already exists"),
            }),
        })
    }

    /// Refused while a container is on it, as Docker refuses.
    async fn remove_network(&self, name: &str) -> Result<(), EngineError> {
        self.reach("remove_network")?;
        self.with(|w| {
            if w.containers.values().any(|c| c.networks.contains_key(name)) {
                return Err(EngineError::Api {
                    action: format!("removing the network {name}"),
                    status: Some(403),
                    message: "network has active endpoints".into(),
                });
            }
            w.networks.remove(name);
            Ok(())
        })
    }

    async fn create_stored(
        &self,
        _kind: Stored,
        name: &str,
        _data: &[u8],
    ) -> Result<String, EngineError> {
        Err(not_found(name))
    }

    async fn remove_stored(&self, _kind: Stored, _name_or_id: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn volumes(&self) -> Result<Vec<String>, EngineError> {
        self.reach("volumes")?;
        Ok(self.with(|w| w.volumes.keys().cloned().collect()))
    }

    /// Refused while a container uses it, as Docker refuses.
    async fn remove_volume(&self, name: &str) -> Result<(), EngineError> {
        self.reach("remove_volume")?;
        self.with(|w| {
            if w.containers
                .values()
                .any(|c| binds(&c.body).iter().any(|(s, _)| s == name))
            {
                return Err(EngineError::Api {
                    action: format!("removing the volume {name}"),
                    status: Some(409),
                    message: "volume is in use".into(),
                });
            }
            w.volumes.remove(name);
            Ok(())
        })
    }

    async fn create_service(&self, spec: ServiceSpec) -> Result<String, EngineError> {
        Err(not_found(&spec.0.name.unwrap_or_default()))
    }

    async fn remove_service(&self, _name_or_id: &str) -> Result<(), EngineError> {
        Ok(())
    }

    async fn service_logs(&self, id: &str) -> Result<Vec<String>, EngineError> {
        Err(not_found(id))
    }

    async fn archive_put(
        &self,
        id: &str,
        dir: &str,
        mut tar: ByteStream,
    ) -> Result<(), EngineError> {
        self.reach("archive_put")?;
        let mut bytes = Vec::new();
        while let Some(chunk) = tar.next().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        let mut archive = tar::Archive::new(bytes.as_slice());
        let mut files = Vec::new();
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            let header = entry.header().clone();
            if header.entry_type() == tar::EntryType::Directory {
                continue;
            }
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            let name = entry.path().unwrap().display().to_string();
            let file = FakeFile {
                bytes,
                mode: header.mode().unwrap(),
                uid: header.uid().unwrap(),
                gid: header.gid().unwrap(),
            };
            files.push((format!("{}/{name}", dir.trim_end_matches('/')), file));
        }
        self.with(|w| {
            let c = find(w, id).ok_or_else(|| not_found(id))?;
            c.files.extend(files);
            Ok(())
        })
    }
}
