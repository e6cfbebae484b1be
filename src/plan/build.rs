//! The pure functions that turn what the engine reported and what the operator asked into a
//! plan.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use crate::engine::Container;

use super::part::{OnAService, Part, Phase, Place};
use super::steps::{
    AwaitHealthy, Backup, Call, CarryFile, CheckVersion, ComposeEdit, Create, Exec, Hook, Known,
    OneShot, PreCopy, Pull, Remove, Rename, Restore, ServiceAwait, ServiceJob, ServiceScale,
    ServiceSettings, ServiceUpdate, Snapshot, SnapshotBackup, Start, Stop, TaskChecks, Verify,
    VersionSource, VolumeSnapshot,
};
use super::{
    failed_name, migrate_name, new_name, old_name, Kind, Plan, PlanError, Slot, SlotInfo, Stage,
    Step,
};
use crate::backup::volume_copy::VolumeCopy;
use crate::engine::reference::ImageRef;
use crate::engine::successor::{self, EnvChanges, Predecessor, SuccessorSpec};
use crate::health::HealthPolicy;

/// What to move to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// This tag in each member's own repository.
    Tag(String),
    /// This image for every member.
    Image(ImageRef),
}

/// A one-shot command from the new image while the service is stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// The words the container runs, secrets included: never journaled.
    pub command: Vec<String>,
    /// The command as people read it and the journal keeps it, when it differs: a profile's
    /// `${VAR}` templates before the container's values filled them in.
    pub shown: Option<Vec<String>>,
    /// Variables set in the one-shot container only (Quay's entrypoint reads its mode from
    /// `QUAYENTRY` before its arguments; Anchore's tool its password from `PGPASSWORD`), secrets
    /// included: never journaled.
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub timeout: Duration,
    /// Output that means the command did nothing although it exited 0 (Anchore's "Skipping
    /// upgrade").
    pub fails_if_output_has: Vec<String>,
}

impl Migration {
    /// How long a migration may run when nobody said: long enough for the schema changes of a
    /// large database, short enough that a hung one does not hold the service down for a day.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30 * 60);

    /// Its one-shot container `name` from `image`, made from `spec`, with the configuration of
    /// the container in `source`.
    pub(super) fn one_shot(
        &self,
        source: Slot,
        name: String,
        image: String,
        spec: SuccessorSpec,
    ) -> OneShot {
        OneShot {
            source,
            name,
            image,
            entrypoint: self.entrypoint.clone(),
            command: self.shown.clone().unwrap_or_else(|| self.command.clone()),
            timeout: self.timeout,
            fails_if_output_has: self.fails_if_output_has.clone(),
            spec: Box::new(spec),
        }
    }
}

/// A file on no volume, carried from each member's old container to its successor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CarriedPath {
    pub path: String,
    pub optional: bool,
    /// A profile's, which cannot know the container's layout: where the file lies on a mount
    /// the successor shares (DevLake 0.17's compose file bind-mounts `./.env:/app/.env`), it
    /// is there already and nothing is carried. `--carry-file` there is refused as a mistake.
    pub by_profile: bool,
}

impl CarriedPath {
    /// Whether the member `inspect` carries it: not a profile's file on a mount its successor
    /// shares.
    fn carried_by(&self, inspect: &Container) -> bool {
        !(self.by_profile && inspect.mount_holding(&self.path).is_some())
    }
}

/// What a hop does around the swap, beyond creating, stopping, renaming and starting.
#[derive(Debug, Clone, Default)]
pub struct StageOptions {
    pub migrate: Option<Migration>,
    pub exec_before: Vec<Vec<String>>,
    pub exec_after: Vec<Vec<String>>,
    pub carry: Vec<CarriedPath>,
    pub env: EnvChanges,
    /// Steps placed by phase: a profile's own kinds (DevLake's call after start).
    pub parts: Vec<Arc<dyn Part>>,
    pub expect_version: Option<VersionSource>,
    /// The new version upgrades the data as it starts: its start counts as a migration.
    pub migrates_at_start: bool,
    /// Follow-ups the vendor lists for the hop, told with the plan.
    pub notes: Vec<String>,
}

impl StageOptions {
    /// These options (the command line's) over a profile's for one hop: a migration or version
    /// check given here replaces the profile's, the rest add up.
    pub fn over(&self, profile: &StageOptions) -> StageOptions {
        let mut carry = profile.carry.clone();
        carry.extend(
            self.carry
                .iter()
                .filter(|c| !profile.carry.iter().any(|p| p.path == c.path))
                .cloned(),
        );
        let mut env = profile.env.clone();
        env.set.extend(self.env.set.iter().cloned());
        env.unset.extend(self.env.unset.iter().cloned());
        env.rename.extend(self.env.rename.iter().cloned());
        StageOptions {
            migrate: self.migrate.clone().or_else(|| profile.migrate.clone()),
            exec_before: [profile.exec_before.clone(), self.exec_before.clone()].concat(),
            exec_after: [profile.exec_after.clone(), self.exec_after.clone()].concat(),
            carry,
            env,
            parts: [profile.parts.clone(), self.parts.clone()].concat(),
            expect_version: self
                .expect_version
                .clone()
                .or_else(|| profile.expect_version.clone()),
            migrates_at_start: self.migrates_at_start || profile.migrates_at_start,
            notes: [profile.notes.clone(), self.notes.clone()].concat(),
        }
    }

    /// What the hop does when it moves a Swarm service: the calls each new task takes as it
    /// starts, or why the hop cannot be done to a service (its files carried are judged with
    /// the service, whose spec may give them).
    pub fn on_a_service(&self) -> Result<Vec<Call>, String> {
        if !(self.exec_before.is_empty() && self.exec_after.is_empty()) {
            return Err(
                "its commands run inside a container (`exec`) are not run in a Swarm task".into(),
            );
        }
        if !(self.env.unset.is_empty() && self.env.rename.is_empty()) {
            return Err(
                "this hop removes or renames variables, which is not done to a Swarm service's spec"
                    .into(),
            );
        }
        self.parts
            .iter()
            .map(|part| match part.on_a_service() {
                OnAService::CalledOnEachTask(call) => Ok(call.clone()),
                OnAService::Refused(why) => Err(format!("its `{}` step: {why}", part.kind())),
            })
            .collect()
    }
}

/// The backups an upgrade takes at each hop, per member.
#[derive(Debug, Clone, Default)]
pub struct BackupPlan {
    pub targets: BTreeMap<String, crate::backup::BackupTarget>,
    pub root: std::path::PathBuf,
    pub keep: usize,
    /// Taken while the old version still serves, for less downtime.
    pub online: bool,
    /// Members whose database is copied on its server in the window, the portable backup
    /// written once the new version serves (see [`Snapshot`]).
    pub snapshots: BTreeMap<String, SnapshotPlan>,
    /// Why a member's database is dumped in the window rather than copied, where it could have
    /// been: what the plan tells.
    pub dumped_because: BTreeMap<String, String>,
}

/// A database copy the server said it can take, before any downtime.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotPlan {
    /// When the run was planned (`20261207T031500`), in the copies' names.
    pub stamp: String,
    pub how: SnapshotHow,
}

/// How a database is copied in the window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotHow {
    /// On its server, as a database (see [`Snapshot`]).
    Server {
        owner: String,
        /// The clause of `CREATE DATABASE` that copies files.
        strategy: String,
    },
    /// Its server's whole data volume, the server being the product's alone (see
    /// [`VolumeSnapshot`]).
    Volume { volume: String, mount: String },
}

impl BackupPlan {
    /// A backup step for each member that has something to back up, on the container given
    /// (or, with `services`, of the Swarm service the slot names): the snapshot of hop `stage`
    /// where the server takes one.
    pub fn steps<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, Slot)>,
        services: Option<&Known>,
        stage: usize,
    ) -> Vec<Step> {
        self.each(members, services, stage, |backup, copy| {
            Some(match copy {
                Some(Copy::Server {
                    name,
                    aside,
                    owner,
                    strategy,
                }) => Snapshot {
                    backup,
                    name,
                    aside,
                    owner,
                    strategy,
                }
                .into(),
                Some(Copy::Volume(copy)) => VolumeSnapshot { backup, copy }.into(),
                None => backup.into(),
            })
        })
    }

    /// The first passes of the volume copies of hop `stage`, while the old version serves.
    pub fn before_downtime<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, Slot)>,
        stage: usize,
    ) -> Vec<Step> {
        self.each(members, None, stage, |backup, copy| match copy {
            Some(Copy::Volume(copy)) => Some(
                PreCopy {
                    slot: backup.slot,
                    database: backup.target.database?,
                    copy,
                }
                .into(),
            ),
            _ => None,
        })
    }

    /// The portable backups written from the snapshots of hop `stage` once its new version
    /// serves, read through each member's container from before it (stopped, still there).
    pub fn after_serving<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, Slot)>,
        stage: usize,
    ) -> Vec<Step> {
        self.each(members, None, stage, |backup, copy| {
            Some(
                match copy? {
                    Copy::Server { name, .. } => SnapshotBackup {
                        backup,
                        name,
                        volume: None,
                    },
                    Copy::Volume(copy) => SnapshotBackup {
                        backup,
                        name: copy.copy.clone(),
                        volume: Some(copy),
                    },
                }
                .into(),
            )
        })
    }

    /// What `place` makes of each member that has something to back up: its backup, and its
    /// snapshot of hop `stage` when its database is copied.
    fn each<'a>(
        &self,
        members: impl IntoIterator<Item = (&'a str, Slot)>,
        services: Option<&Known>,
        stage: usize,
        place: impl Fn(Backup, Option<Copy>) -> Option<Step>,
    ) -> Vec<Step> {
        members
            .into_iter()
            .filter_map(|(name, slot)| {
                let target = self.targets.get(name)?;
                let backup = self.backup(name, slot, target, services);
                place(backup, self.snapshot_of(name, target, stage, services))
            })
            .collect()
    }

    /// The backup of member `name` into the plan's folder.
    fn backup(
        &self,
        name: &str,
        slot: Slot,
        target: &crate::backup::BackupTarget,
        services: Option<&Known>,
    ) -> Backup {
        Backup {
            slot,
            target: target.clone(),
            root: self.root.clone(),
            keep: self.keep,
            online: self.online,
            service: services.is_some(),
            known: services.cloned().unwrap_or_default(),
            dumped_because: match services {
                // Swarm places a service's database server on any node, whose storage and
                // server cutover does not copy yet.
                Some(_) if target.database.is_some() && !self.online => Some(
                    "a Swarm service's database is dumped: only a container's is copied in the window yet"
                        .to_string(),
                ),
                _ => self.dumped_because.get(name).cloned(),
            },
        }
    }

    /// A member's snapshot of hop `stage` and its names, when its database is copied: a
    /// container's (a Swarm service's is dumped), in the window.
    fn snapshot_of(
        &self,
        name: &str,
        target: &crate::backup::BackupTarget,
        stage: usize,
        services: Option<&Known>,
    ) -> Option<Copy> {
        let plan = self
            .snapshots
            .get(name)
            .filter(|_| services.is_none() && !self.online)?;
        let db = target.database.as_ref()?;
        Some(match &plan.how {
            SnapshotHow::Server { owner, strategy } => {
                let (name, aside) = crate::backup::snapshot::names(&db.name, &plan.stamp, stage);
                Copy::Server {
                    name,
                    aside,
                    owner: owner.clone(),
                    strategy: strategy.clone(),
                }
            }
            SnapshotHow::Volume { volume, mount } => Copy::Volume(VolumeCopy::new(
                volume,
                &db.container,
                mount,
                &plan.stamp,
                stage,
            )),
        })
    }
}

/// A member's snapshot at one hop, named.
enum Copy {
    Server {
        name: String,
        aside: String,
        owner: String,
        strategy: String,
    },
    Volume(VolumeCopy),
}

/// What a compose project needs of the upgrade: its files rewritten once the new version is
/// healthy, and the labels compose will expect of the new containers (`config-hash`).
#[derive(Debug, Clone, Default)]
pub struct ComposePlan {
    pub edits: Vec<ComposeEdit>,
    pub labels: BTreeMap<String, BTreeMap<String, String>>,
}

/// In which order the members of a group start once every one is stopped (a profile's
/// `group.start`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartOrder {
    /// The last stopped starts first; the named container last.
    #[default]
    Reverse,
    /// The named container first, the rest once it is healthy (Quay nodes).
    NamedFirst,
}

#[derive(Debug, Clone)]
pub struct UpgradeOptions {
    pub target: Target,
    /// Intermediate tags, in order, each a full upgrade (a hop) of its own.
    pub via: Vec<String>,
    pub keep_old: bool,
    pub health: HealthPolicy,
    pub hook_timeout: Duration,
    /// What every hop does (the command line's options).
    pub steps: StageOptions,
    /// What each hop adds (a product profile's steps for that hop); empty, or one per hop.
    pub hop_steps: Vec<StageOptions>,
    pub start_order: StartOrder,
    pub backup: Option<BackupPlan>,
    pub compose: Option<ComposePlan>,
    /// Members that are other images of the product's installation (DevLake's UI): they move
    /// to the same tag with the swap and their own health only, none of the hop's steps.
    pub companions: Vec<String>,
    /// Members that are related products (Quay's Clair), by name: the swap only, as a
    /// companion, to images of their own, started and ready before the rest.
    pub related: BTreeMap<String, RelatedMove>,
    /// Images fixed to a digest (`REPOSITORY:TAG@sha256:…`, `--pin`, as a plan file holds
    /// them): a member that would move to one's `REPOSITORY:TAG`, at any hop, runs its digest,
    /// even if the tag moved since.
    pub pins: Vec<ImageRef>,
}

/// How a related product's container moves with the product (see
/// [`crate::profile::RelatedSpec`]).
#[derive(Debug, Clone, PartialEq)]
pub struct RelatedMove {
    /// Its image after each hop.
    pub images: Vec<String>,
    /// Its readiness (Clair's `/readyz`), asked before any other member starts. Its start
    /// counts as a migration: a related product upgrades its own database as it starts (Clair
    /// with `migrations: true`), which has no separate command.
    pub ready: HealthPolicy,
}

impl UpgradeOptions {
    /// Moving to `target` with nothing but the swap.
    pub fn new(target: Target, health: HealthPolicy) -> UpgradeOptions {
        UpgradeOptions {
            target,
            via: Vec::new(),
            keep_old: false,
            health,
            hook_timeout: Exec::DEFAULT_TIMEOUT,
            steps: StageOptions::default(),
            hop_steps: Vec::new(),
            start_order: StartOrder::Reverse,
            backup: None,
            compose: None,
            companions: Vec::new(),
            related: BTreeMap::new(),
            pins: Vec::new(),
        }
    }

    /// Everything hop `stage` does.
    pub fn hop(&self, stage: usize) -> StageOptions {
        match self.hop_steps.get(stage) {
            Some(profile) => self.steps.over(profile),
            None => self.steps.clone(),
        }
    }

    pub(super) fn hops(&self) -> Vec<StageOptions> {
        (0..=self.via.len()).map(|stage| self.hop(stage)).collect()
    }
}

/// One member as the plan needs it.
pub(super) struct Member<'a> {
    pub(super) name: String,
    /// Another image of the installation: the swap only (see [`UpgradeOptions::companions`]).
    companion: bool,
    /// A related product's readiness: it starts before the others (see
    /// [`UpgradeOptions::related`]).
    ready_first: Option<HealthPolicy>,
    inspect: &'a Container,
    /// The image of each generation: the current one, then one per stage.
    pub(super) images: Vec<String>,
    /// Each stage's create request: the carried configuration, the stage's image, and the
    /// environment changes of that stage and those before it.
    pub(super) specs: Vec<SuccessorSpec>,
    /// Per stage, the variables it removed or renamed away.
    removed_env: Vec<Vec<String>>,
}

/// The upgrade of a group of running containers (the first is the one the command named)
/// through each hop to the target.
///
/// Each stage creates and verifies every successor under a temporary name while the old
/// containers still serve, so a setting the engine would not carry aborts with no downtime at
/// all. Only then are the old ones stopped (in order), the migration run, the names moved, and
/// the successors started (in reverse order, or the named one first), each awaited healthy.
/// Downtime runs from the first stop to the last successor serving.
pub fn plan_upgrade(members: &[Predecessor<'_>], opts: &UpgradeOptions) -> Result<Plan, PlanError> {
    let hops = opts.hops();
    register_commands(&hops);
    let members = members
        .iter()
        .enumerate()
        .map(|(i, old)| member(old, opts, &hops, i == 0))
        .collect::<Result<Vec<_>, _>>()?;
    let primary = &members[0];
    let mut pulls: Vec<String> = Vec::new();
    for m in &members {
        for image in &m.images[1..] {
            if !pulls.contains(image) {
                pulls.push(image.clone());
            }
        }
    }
    let stages = hops
        .iter()
        .enumerate()
        .map(|(stage, hop)| {
            let mut steps: Vec<Step> = Vec::new();
            if stage == 0 {
                steps.extend(pulls.iter().map(|image| {
                    Pull {
                        image: image.clone(),
                    }
                    .into()
                }));
            }
            let planned = Hop {
                members: &members,
                stage,
                hop,
                opts,
            };
            steps.extend(planned.steps());
            Stage {
                from: primary.images[stage].clone(),
                to: primary.images[stage + 1].clone(),
                steps,
            }
        })
        .collect();
    let carried = if members.len() == 1 {
        successor::masked(&primary.specs[0])
    } else {
        serde_json::Value::Object(
            members
                .iter()
                .map(|m| (m.name.clone(), successor::masked(&m.specs[0])))
                .collect(),
        )
    };
    Ok(Plan {
        kind: Kind::Upgrade,
        container: primary.name.clone(),
        members: members.iter().map(|m| m.name.clone()).collect(),
        image_from: primary.images[0].clone(),
        image_to: primary.images.last().cloned().unwrap_or_default(),
        slots: upgrade_slots(&members),
        stages,
        carried,
        profile: None,
        task: None,
        notes: hops
            .iter()
            .flat_map(|h| h.notes.iter())
            .fold(Vec::new(), |mut notes, note| {
                if !notes.contains(note) {
                    notes.push(note.clone());
                }
                notes
            }),
    })
}

/// The commands the hops run may carry secrets (a URL's password, a `TOKEN=...` word): they are
/// registered so that the plan can show and journal those commands masked.
pub(super) fn register_commands(hops: &[StageOptions]) {
    let commands = hops.iter().flat_map(|h| {
        h.migrate
            .iter()
            .map(|m| &m.command)
            .chain(&h.exec_before)
            .chain(&h.exec_after)
    });
    let version_commands = hops.iter().filter_map(|h| match &h.expect_version {
        Some(VersionSource::Command(cmd)) => Some(cmd),
        _ => None,
    });
    for command in commands.chain(version_commands) {
        crate::secrets::register_command(command);
    }
}

/// Every generation of every member: the running container (its id known) and one successor
/// per hop.
fn upgrade_slots(members: &[Member<'_>]) -> BTreeMap<Slot, SlotInfo> {
    let mut slots = BTreeMap::new();
    for m in members {
        for (generation, image) in m.images.iter().enumerate() {
            let id = (generation == 0).then(|| m.inspect.id().to_string());
            slots.insert(
                Slot::new(&m.name, generation as u32),
                SlotInfo {
                    image: image.clone(),
                    id,
                },
            );
        }
    }
    slots
}

/// `image` as the pin of its `REPOSITORY:TAG` fixes it, if one does (see
/// [`UpgradeOptions::pins`]).
pub fn pinned(image: ImageRef, pins: &[ImageRef]) -> ImageRef {
    pins.iter()
        .find(|p| image.tag.is_some() && p.repository == image.repository && p.tag == image.tag)
        .cloned()
        .unwrap_or(image)
}

/// The image a container moves to.
pub fn target_of(inspect: &Container, target: &Target) -> Result<ImageRef, PlanError> {
    let current = inspect.image().to_string();
    match target {
        Target::Image(image) => Ok(image.clone()),
        Target::Tag(tag) => ImageRef::parse(&current)
            .map(|r| r.with_tag(tag))
            .ok_or_else(|| PlanError::NoRepository {
                container: inspect.name().to_string(),
                image: current.clone(),
            }),
    }
}

pub(super) fn member<'a>(
    old: &Predecessor<'a>,
    opts: &UpgradeOptions,
    hops: &[StageOptions],
    primary: bool,
) -> Result<Member<'a>, PlanError> {
    let inspect = old.inspect;
    let name = inspect.name().to_string();
    let related = opts.related.get(&name);
    let companion = related.is_some() || opts.companions.contains(&name);
    let mut images = vec![inspect.image().to_string()];
    match related {
        Some(r) if r.images.len() == hops.len() => images.extend(r.images.iter().cloned()),
        Some(r) => {
            return Err(PlanError::HopImages {
                container: name,
                given: r.images.len(),
                hops: hops.len(),
            })
        }
        None => {
            let target = target_of(inspect, &opts.target)?;
            images.extend(opts.via.iter().map(|tag| target.with_tag(tag).to_string()));
            images.push(target.to_string());
        }
    }
    for image in &mut images[1..] {
        if let Some(reference) = ImageRef::parse(image) {
            *image = pinned(reference, &opts.pins).to_string();
        }
    }
    for pair in images[1..].windows(2) {
        if pair[0] == pair[1] {
            return Err(PlanError::RepeatedHop(short_tag(&pair[0])));
        }
    }
    // Each stage starts from the previous one's configuration and environment.
    let mut spec = successor::successor_spec(old, &images[1]);
    let mut env = inspect.env().to_vec();
    let mut specs = Vec::new();
    let mut removed_env = Vec::new();
    let unchanged = EnvChanges::default();
    for (stage, hop) in hops.iter().enumerate() {
        spec = spec.with_image(&images[stage + 1]);
        let changes = if companion { &unchanged } else { &hop.env };
        let removed = successor::apply_env_changes(&mut spec, &env, changes, primary)
            .map_err(PlanError::Env)?;
        env = successor::apply_to_whole_env(&env, changes);
        let mut stage_spec = spec.clone();
        // Only the last hop's container stays: it carries the labels compose expects of it.
        if stage == hops.len() - 1 {
            if let Some(labels) = opts.compose.as_ref().and_then(|c| c.labels.get(&name)) {
                stage_spec.add_labels(labels);
            }
        }
        specs.push(stage_spec);
        removed_env.push(removed);
        if !companion {
            fits(inspect, hop, &images[stage + 1])?;
        }
    }
    Ok(Member {
        name,
        companion,
        ready_first: related.map(|r| r.ready.clone()),
        inspect,
        images,
        specs,
        removed_env,
    })
}

/// Whether a hop's steps can apply to a container moving to `image`: its carried files on no
/// mount, a tag to compare the reported version with.
fn fits(inspect: &Container, hop: &StageOptions, image: &str) -> Result<(), PlanError> {
    for carried in hop.carry.iter().filter(|c| c.carried_by(inspect)) {
        if !carried.path.starts_with('/') {
            return Err(PlanError::CarryRelative(carried.path.clone()));
        }
        if let Some(mount) = inspect.mount_holding(&carried.path) {
            return Err(PlanError::CarryOnMount {
                path: carried.path.clone(),
                mount: mount.destination.clone(),
                container: inspect.name().to_string(),
            });
        }
    }
    if hop.expect_version.is_some() && ImageRef::parse(image).and_then(|r| r.tag).is_none() {
        return Err(PlanError::NoTag(image.to_string()));
    }
    Ok(())
}

pub(super) fn short_tag(image: &str) -> String {
    ImageRef::parse(image)
        .and_then(|r| r.tag)
        .unwrap_or_else(|| image.to_string())
}

/// One hop of the plan being built: its members, its options, the whole upgrade's.
struct Hop<'a> {
    members: &'a [Member<'a>],
    stage: usize,
    hop: &'a StageOptions,
    opts: &'a UpgradeOptions,
}

impl Hop<'_> {
    /// The steps of the hop, in the order of the swap: what can be done while the old version
    /// serves, the downtime up to the renames, the starts and checks, then the cleanup.
    fn steps(&self) -> Vec<Step> {
        let mut steps = self.before_downtime();
        steps.extend(self.down());
        steps.extend(self.starts());
        steps.extend(self.after_healthy());
        steps
    }

    /// A member's container before the hop.
    fn before(&self, m: &Member<'_>) -> Slot {
        Slot::new(&m.name, self.stage as u32)
    }

    /// A member's successor.
    fn after(&self, m: &Member<'_>) -> Slot {
        Slot::new(&m.name, self.stage as u32 + 1)
    }

    /// The steps the hop's parts of `phase` place for member `m`.
    fn parts(&self, phase: Phase, m: &Member<'_>) -> Vec<Step> {
        let at = Place {
            old: self.before(m),
            new: self.after(m),
            primary: std::ptr::eq(m, &self.members[0]),
            companion: m.companion,
        };
        self.hop
            .parts
            .iter()
            .filter(|p| p.phase() == phase)
            .flat_map(|p| p.steps(&at))
            .collect()
    }

    /// Successors created and compared, hooks run and files carried while the old version serves.
    fn before_downtime(&self) -> Vec<Step> {
        let (members, stage, hop, opts) = (self.members, self.stage, self.hop, self.opts);
        let mut steps: Vec<Step> = Vec::new();
        for m in members {
            steps.push(
                Create {
                    slot: self.after(m),
                    source: self.before(m),
                    name: new_name(&m.name),
                    spec: Box::new(m.specs[stage].clone()),
                }
                .into(),
            );
        }
        for m in members {
            steps.push(
                Verify {
                    slot: self.after(m),
                    source: self.before(m),
                    expected: Box::new(m.specs[stage].clone()),
                    removed_env: m.removed_env[stage].clone(),
                }
                .into(),
            );
        }
        for command in &hop.exec_before {
            steps.push(
                Exec {
                    slot: self.before(&members[0]),
                    hook: Hook::Before,
                    command: command.clone(),
                    timeout: opts.hook_timeout,
                }
                .into(),
            );
        }
        for m in members.iter().filter(|m| !m.companion) {
            for carried in hop.carry.iter().filter(|c| c.carried_by(m.inspect)) {
                steps.push(
                    CarryFile {
                        from: self.before(m),
                        to: self.after(m),
                        path: carried.path.clone(),
                        optional: carried.optional,
                    }
                    .into(),
                );
            }
        }
        for m in members {
            steps.extend(self.parts(Phase::BeforeDowntime, m));
        }
        // Last before the stop, so that the window copies as little as possible.
        if let Some(plan) = &opts.backup {
            steps.extend(plan.before_downtime(
                members.iter().map(|m| (m.name.as_str(), self.before(m))),
                self.stage,
            ));
        }
        steps
    }

    /// The stops (with the backup before or after them), the migration and the renames.
    fn down(&self) -> Vec<Step> {
        let (members, stage, hop, opts) = (self.members, self.stage, self.hop, self.opts);
        let primary = &members[0];
        let mut steps: Vec<Step> = Vec::new();
        let backups = |steps: &mut Vec<Step>| {
            if let Some(plan) = &opts.backup {
                steps.extend(plan.steps(
                    members.iter().map(|m| (m.name.as_str(), self.before(m))),
                    None,
                    stage,
                ));
            }
        };
        if opts.backup.as_ref().is_some_and(|b| b.online) {
            backups(&mut steps);
        }
        for m in members {
            let timeout_secs = m.inspect.stop_timeout();
            steps.push(
                Stop {
                    slot: self.before(m),
                    timeout_secs,
                    serving: true,
                }
                .into(),
            );
        }
        if opts.backup.as_ref().is_some_and(|b| !b.online) {
            backups(&mut steps);
        }
        if let Some(migration) = &hop.migrate {
            let mut spec = successor::one_shot_spec(
                &primary.specs[stage],
                &migration.command,
                migration.entrypoint.as_deref(),
            );
            successor::set_env(&mut spec, &migration.env);
            steps.push(
                migration
                    .one_shot(
                        self.before(primary),
                        migrate_name(&primary.name),
                        primary.images[stage + 1].clone(),
                        spec,
                    )
                    .into(),
            );
        }
        for m in members {
            steps.push(
                Rename {
                    slot: self.before(m),
                    from: m.name.clone(),
                    to: old_name(&m.name),
                }
                .into(),
            );
            steps.push(
                Rename {
                    slot: self.after(m),
                    from: new_name(&m.name),
                    to: m.name.clone(),
                }
                .into(),
            );
        }
        steps
    }

    /// Each successor started in the group's order, called as the profile says, and awaited:
    /// related products first, each ready before the next starts ("Wait until Clair is ready
    /// to accept connections before starting the new version of Quay").
    fn starts(&self) -> Vec<Step> {
        let (members, hop, opts) = (self.members, self.hop, self.opts);
        let ordered: Vec<&Member<'_>> = match opts.start_order {
            StartOrder::Reverse => members.iter().rev().collect(),
            StartOrder::NamedFirst => members.iter().collect(),
        };
        let (mut starting, rest): (Vec<&Member<'_>>, Vec<&Member<'_>>) =
            ordered.into_iter().partition(|m| m.ready_first.is_some());
        starting.extend(rest);
        let mut steps: Vec<Step> = Vec::new();
        for m in starting {
            steps.push(
                Start {
                    slot: self.after(m),
                    successor: true,
                    migrates: hop.migrates_at_start || m.ready_first.is_some(),
                }
                .into(),
            );
            steps.extend(self.parts(Phase::Started, m));
            // A companion has its own port and health: its HEALTHCHECK, or the default probe.
            let policy = match (&m.ready_first, m.companion) {
                (Some(ready), _) => ready.clone(),
                (None, true) => HealthPolicy::new(opts.health.settle, opts.health.timeout),
                (None, false) => opts.health.clone(),
            };
            steps.push(
                AwaitHealthy {
                    slot: self.after(m),
                    policy,
                }
                .into(),
            );
        }
        steps
    }

    /// Hooks and version checks on the serving successors, then the compose file's edits and the
    /// removal of the old containers.
    fn after_healthy(&self) -> Vec<Step> {
        let (members, stage, hop, opts) = (self.members, self.stage, self.hop, self.opts);
        let mut steps: Vec<Step> = Vec::new();
        for command in &hop.exec_after {
            steps.push(
                Exec {
                    slot: self.after(&members[0]),
                    hook: Hook::After,
                    command: command.clone(),
                    timeout: opts.hook_timeout,
                }
                .into(),
            );
        }
        for m in members {
            steps.extend(self.parts(Phase::AfterHealthy, m));
        }
        if let Some(source) = &hop.expect_version {
            for m in members.iter().filter(|m| !m.companion) {
                let want = short_tag(&m.images[stage + 1]);
                steps.push(
                    CheckVersion {
                        slot: self.after(m),
                        source: source.clone(),
                        want,
                        port: opts.health.port,
                        tls: opts.health.tls,
                    }
                    .into(),
                );
            }
        }
        let last = stage == opts.via.len();
        if last {
            steps.extend(
                opts.compose
                    .iter()
                    .flat_map(|c| c.edits.iter().cloned().map(Step::from)),
            );
        }
        if let Some(plan) = &opts.backup {
            steps.extend(plan.after_serving(
                members.iter().map(|m| (m.name.as_str(), self.before(m))),
                stage,
            ));
        }
        if !(opts.keep_old && last) {
            for m in members {
                steps.push(
                    Remove {
                        slot: self.before(m),
                        name: old_name(&m.name),
                    }
                    .into(),
                );
            }
        }
        steps
    }
}

/// A backup to put back while going back: the one taken before the upgrade, and where the
/// current data's own backup goes first.
#[derive(Debug, Clone)]
pub struct RestoreOnRollback {
    pub backup: std::path::PathBuf,
    pub current: crate::backup::BackupTarget,
    pub root: std::path::PathBuf,
    pub keep: usize,
}

impl RestoreOnRollback {
    /// The current data backed up (kept beside the others), then the earlier backup put back,
    /// while the container in `slot` is stopped.
    fn steps(self, slot: &Slot) -> [Step; 2] {
        [
            Backup {
                slot: slot.clone(),
                target: self.current,
                root: self.root,
                keep: self.keep + 1,
                online: false,
                service: false,
                known: Known::default(),
                dumped_because: None,
            }
            .into(),
            Restore {
                slot: slot.clone(),
                backup: self.backup,
            }
            .into(),
        ]
    }
}

/// Going back to the `-old` container kept by `upgrade --keep-old`. The current container is
/// stopped and kept aside as `NAME-failed`, so its logs and any data only it holds survive. With
/// `restore`, the data goes back to the backup taken before the upgrade (the current data is
/// backed up first), because the old version may not run on data the new one migrated.
pub fn plan_rollback(
    name: &str,
    current: &Container,
    previous: &Container,
    health: HealthPolicy,
    restore: Option<RestoreOnRollback>,
) -> Plan {
    let now = Slot::new(name, 0);
    let back = Slot::new(name, 1);
    let info = |c: &Container| SlotInfo {
        image: c.image().to_string(),
        id: Some(c.id().to_string()),
    };
    let mut steps: Vec<Step> = vec![
        Stop {
            slot: now.clone(),
            timeout_secs: current.stop_timeout(),
            serving: true,
        }
        .into(),
        Rename {
            slot: now.clone(),
            from: name.to_string(),
            to: failed_name(name),
        }
        .into(),
    ];
    steps.extend(restore.into_iter().flat_map(|r| r.steps(&now)));
    steps.extend([
        Rename {
            slot: back.clone(),
            from: old_name(name),
            to: name.to_string(),
        }
        .into(),
        Start {
            slot: back.clone(),
            successor: true,
            migrates: false,
        }
        .into(),
        AwaitHealthy {
            slot: back.clone(),
            policy: health,
        }
        .into(),
    ]);
    Plan {
        kind: Kind::Rollback,
        container: name.to_string(),
        members: vec![name.to_string()],
        image_from: current.image().to_string(),
        image_to: previous.image().to_string(),
        slots: BTreeMap::from([(now, info(current)), (back, info(previous))]),
        stages: vec![Stage {
            from: current.image().to_string(),
            to: previous.image().to_string(),
            steps,
        }],
        carried: serde_json::Value::Null,
        profile: None,
        task: None,
        notes: Vec::new(),
    }
}

/// `cutover backup`: the container stopped, backed up and started again (or, online, backed up
/// while it runs).
pub fn plan_backup(
    app: &Container,
    target: crate::backup::BackupTarget,
    root: std::path::PathBuf,
    keep: usize,
    online: bool,
    health: HealthPolicy,
) -> Plan {
    let name = app.name().to_string();
    let slot = Slot::new(&name, 0);
    let backup: Step = Backup {
        slot: slot.clone(),
        target,
        root,
        keep,
        online,
        service: false,
        known: Known::default(),
        dumped_because: None,
    }
    .into();
    let steps = match online {
        true => vec![backup],
        false => vec![
            Stop {
                slot: slot.clone(),
                timeout_secs: app.stop_timeout(),
                serving: true,
            }
            .into(),
            backup,
            Start {
                slot: slot.clone(),
                successor: false,
                migrates: false,
            }
            .into(),
            AwaitHealthy {
                slot: slot.clone(),
                policy: health,
            }
            .into(),
        ],
    };
    in_place(Kind::Backup, &[app], steps)
}

/// `cutover restore`: the current data backed up first, then the backup put back; if the
/// container does not come up healthy on it, the current data goes back.
pub fn plan_restore(
    app: &Container,
    safety: crate::backup::BackupTarget,
    backup: &std::path::Path,
    root: std::path::PathBuf,
    keep: usize,
    health: HealthPolicy,
) -> Plan {
    let name = app.name().to_string();
    let slot = Slot::new(&name, 0);
    let steps: Vec<Step> = vec![
        Stop {
            slot: slot.clone(),
            timeout_secs: app.stop_timeout(),
            serving: true,
        }
        .into(),
        Backup {
            slot: slot.clone(),
            target: safety,
            root,
            keep: keep + 1,
            online: false,
            service: false,
            known: Known::default(),
            dumped_because: None,
        }
        .into(),
        Restore {
            slot: slot.clone(),
            backup: backup.to_path_buf(),
        }
        .into(),
        Start {
            slot: slot.clone(),
            successor: true,
            migrates: false,
        }
        .into(),
        AwaitHealthy {
            slot: slot.clone(),
            policy: health,
        }
        .into(),
    ];
    in_place(Kind::Restore, &[app], steps)
}

/// A plan on containers that stay the same containers (each slot is generation 0 throughout),
/// the first one named.
pub fn in_place(kind: Kind, members: &[&Container], steps: Vec<Step>) -> Plan {
    let image = members[0].image().to_string();
    Plan {
        kind,
        container: members[0].name().to_string(),
        members: members.iter().map(|m| m.name().to_string()).collect(),
        image_from: image.clone(),
        image_to: image.clone(),
        slots: members
            .iter()
            .map(|m| {
                (
                    Slot::new(m.name(), 0),
                    SlotInfo {
                        image: m.image().to_string(),
                        id: Some(m.id().to_string()),
                    },
                )
            })
            .collect(),
        stages: vec![Stage {
            from: image.clone(),
            to: image,
            steps,
        }],
        carried: serde_json::Value::Null,
        profile: None,
        task: None,
        notes: Vec::new(),
    }
}

/// A Swarm service to move, as the plan says it.
#[derive(Debug, Clone)]
pub struct ServiceMove {
    pub service: String,
    /// The image its spec names, as written there.
    pub from: String,
    /// The target as asked (pinned to its digest when the update runs).
    pub to: String,
    /// Its update stops every task before any new one runs (see `ServiceUpdate::stops_all`).
    pub stops_all: bool,
    /// Its replicas; `None` for a global service.
    pub replicas: Option<i64>,
    /// Another image of the product's installation: the profile's rules are not its.
    pub companion: bool,
}

/// What a move of Swarm services does beyond the update: a product profile's procedure, or
/// the command line's `--migrate`.
#[derive(Debug, Clone, Default)]
pub struct ServiceSteps {
    pub migration: Option<Migration>,
    /// The new version upgrades the data as it starts (Inedo's products).
    pub migrates_at_start: bool,
    /// Keyed by service: the database reached through its newest task's settings.
    pub backup: Option<BackupPlan>,
    /// The settings read through a running task, which the backup and its restore read the
    /// database's credentials from once no task runs.
    pub known: Known,
    /// Settings the new version needs given to the services, while none of their tasks runs.
    pub settings: Vec<ServiceSettings>,
    pub checks: Option<TaskChecks>,
}

impl ServiceSteps {
    /// Every instance must be stopped first: the data is backed up, or a new version changes
    /// it, only with none running, as the vendors' procedures do it.
    pub fn scales(&self) -> bool {
        self.migration.is_some()
            || self.migrates_at_start
            || !self.settings.is_empty()
            || self.backup.as_ref().is_some_and(|b| !b.online)
    }

    /// Its backup steps, one per service that has something to back up.
    fn backups(&self, moves: &[ServiceMove]) -> Vec<Step> {
        self.backup
            .iter()
            .flat_map(|backup| {
                backup.steps(
                    moves
                        .iter()
                        .map(|m| (m.service.as_str(), Slot::new(&m.service, 0))),
                    Some(&self.known),
                    0,
                )
            })
            .collect()
    }
}

/// Swarm services moved by their manager: each target pulled on this engine first (a missing
/// tag fails with nothing changed); when `steps` change the data, every service scaled to 0,
/// the data backed up and the migration run once as a job with the first one's task template;
/// each spec updated to its target pinned to its digest (with its replicas back), every task
/// awaited (and tried by the profile's rules), then the stack's files written (`edits`). The
/// plan knows the services by name: their tasks are the manager's. Undone, the old image is put
/// back with no task running, the backup restored, and only then the replicas given back.
pub fn plan_service_update(
    moves: &[ServiceMove],
    steps_asked: &ServiceSteps,
    edits: Vec<ComposeEdit>,
    health: &HealthPolicy,
) -> Plan {
    let mut targets: Vec<&str> = moves.iter().map(|m| m.to.as_str()).collect();
    targets.dedup();
    let mut steps: Vec<Step> = targets
        .into_iter()
        .map(|to| Pull { image: to.into() }.into())
        .collect();
    let scales = steps_asked.scales();
    let online = steps_asked.backup.as_ref().is_some_and(|b| b.online);
    if online {
        steps.extend(steps_asked.backups(moves));
    }
    if scales {
        steps.extend(moves.iter().map(|m| {
            ServiceScale {
                service: m.service.clone(),
                replicas: m.replicas.unwrap_or_default(),
                image: m.from.clone(),
                timeout: health.timeout,
                settle: health.settle,
            }
            .into()
        }));
    }
    if !online {
        steps.extend(steps_asked.backups(moves));
    }
    steps.extend(steps_asked.settings.iter().cloned().map(Step::from));
    if let Some(migration) = &steps_asked.migration {
        steps.push(
            ServiceJob {
                service: moves[0].service.clone(),
                to: moves[0].to.clone(),
                command: migration
                    .shown
                    .clone()
                    .unwrap_or_else(|| migration.command.clone()),
                words: migration.command.clone(),
                entrypoint: migration.entrypoint.clone(),
                env: migration.env.clone(),
                fails_if_output_has: migration.fails_if_output_has.clone(),
                timeout: migration.timeout,
            }
            .into(),
        );
    }
    steps.extend(moves.iter().map(|m| {
        ServiceUpdate {
            service: m.service.clone(),
            from: m.from.clone(),
            to: m.to.clone(),
            timeout: health.timeout,
            settle: health.settle,
            stops_all: m.stops_all,
            replicas: m.replicas.filter(|_| scales),
        }
        .into()
    }));
    steps.extend(moves.iter().map(|m| {
        ServiceAwait {
            service: m.service.clone(),
            to: m.to.clone(),
            timeout: health.timeout,
            settle: health.settle,
            checks: steps_asked.checks.clone().filter(|_| !m.companion),
        }
        .into()
    }));
    steps.extend(edits.into_iter().map(Step::from));
    let first = &moves[0];
    Plan {
        kind: Kind::Upgrade,
        container: first.service.clone(),
        members: moves.iter().map(|m| m.service.clone()).collect(),
        image_from: first.from.clone(),
        image_to: first.to.clone(),
        slots: BTreeMap::new(),
        stages: vec![Stage {
            from: first.from.clone(),
            to: first.to.clone(),
            steps,
        }],
        carried: serde_json::Value::Null,
        profile: None,
        task: None,
        notes: Vec::new(),
    }
}
