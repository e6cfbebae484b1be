//! Plans made now and carried out later (`cutover plan`, `cutover apply`, `auto` with
//! approval): what a person reviews is what runs, or nothing does.
//!
//! A plan file holds each upgrade's prepared plan with every image it runs (target, hops, related
//! products) pinned to the digest its tag had, the identity and configuration fingerprint of
//! each container it moves, when it was made and until when it holds, and a checksum of all of
//! it. The create requests themselves carry
//! secrets and are never written (see [`crate::plan::steps::Create`]): `apply` prepares the same
//! upgrade again, to the pinned digests, and runs it only when the containers are those planned
//! and the plan it computes is the one in the file. Fields a later cutover adds are kept and
//! checked like the others.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::engine::reference::ImageRef;
use crate::engine::registry::RegistryClient;
use crate::engine::{Container, Engine};
use crate::error::{Error, Result};
use crate::notify::{Message, Severity};
use crate::plan::Plan;
use crate::run::StateDir;

/// The plan file's format, for a later cutover to read an older file by.
pub const FORMAT: u32 = 1;

/// How long a plan holds unless `--valid-for` says: long enough for a weekly review, short
/// enough that what was reviewed still describes the host.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(7 * 24 * 3600);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: u32,
    /// The checksum's first digits: what `pending` lists and `approve` takes.
    pub id: String,
    #[serde(with = "crate::run::journal::humantime_serde_rfc3339")]
    pub made_at: SystemTime,
    #[serde(with = "crate::run::journal::humantime_serde_rfc3339")]
    pub valid_until: SystemTime,
    /// What it does, as people read it.
    pub summary: Vec<String>,
    /// In the order they run.
    pub upgrades: Vec<Planned>,
    /// Fields a later cutover adds (release notes), kept and covered by the checksum.
    #[serde(flatten)]
    pub more: BTreeMap<String, Value>,
    /// `sha256:` of everything else (see [`checksum`]).
    pub checksum: String,
}

/// One upgrade of a plan file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Planned {
    /// The container as the command named it: NAME, or HOST/NAME of the config file's fleet.
    pub container: String,
    pub from: String,
    /// Where it goes, pinned: `REPOSITORY:TAG@sha256:…`.
    pub to: String,
    /// Each intermediate hop pinned to the digest its tag had, which `apply` runs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub via: Vec<String>,
    /// Every step, as `--dry-run` shows it: the backups and migrations among them.
    pub steps: Vec<String>,
    /// How long the service is expected to be down, and between which steps.
    pub downtime: String,
    /// What the live check found on the running product.
    pub live_check: String,
    /// The containers it moves, as they were when it was planned.
    pub containers: Vec<Identity>,
    /// A hash of the configuration carried to each successor (never its values).
    pub carried: String,
    /// What was asked, as the command that made the plan reads it back.
    pub asked: Value,
    /// The plan itself, without the carried configuration (environment values among it).
    pub plan: Plan,
}

/// A container as it was planned: recreated, on another image or with another configuration,
/// it is no longer the one planned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub name: String,
    pub id: String,
    pub image: String,
    pub image_id: String,
    /// [`Container::fingerprint`].
    pub fingerprint: String,
}

impl Identity {
    pub fn of(container: &Container) -> Identity {
        Identity {
            name: container.name().to_string(),
            id: container.id().to_string(),
            image: container.image().to_string(),
            image_id: container.image_id().to_string(),
            fingerprint: container.fingerprint(),
        }
    }
}

/// The identities of the named containers as the engine reports them now; a missing one is
/// left out, which [`changed`] tells.
pub async fn identities(engine: &dyn Engine, names: &[String]) -> Result<Vec<Identity>> {
    let mut found = Vec::new();
    for name in names {
        if let Some(container) = engine.inspect(name).await? {
            found.push(Identity::of(&container));
        }
    }
    Ok(found)
}

/// How the containers now differ from those planned, each said for people.
pub fn changed(planned: &[Identity], now: &[Identity]) -> Vec<String> {
    let mut said = Vec::new();
    for was in planned {
        let name = &was.name;
        let Some(is) = now.iter().find(|i| i.name == was.name) else {
            said.push(format!("{name} is gone"));
            continue;
        };
        if is.id != was.id {
            said.push(format!(
                "{name} was recreated since (container {}, now {})",
                short(&was.id),
                short(&is.id)
            ));
        } else if is.image != was.image || is.image_id != was.image_id {
            said.push(format!(
                "{name} runs another image ({} {}, now {} {})",
                was.image,
                short(&was.image_id),
                is.image,
                short(&is.image_id)
            ));
        } else if is.fingerprint != was.fingerprint {
            said.push(format!("{name}'s configuration changed since"));
        }
    }
    for is in now
        .iter()
        .filter(|i| !planned.iter().any(|p| p.name == i.name))
    {
        said.push(format!(
            "{} moves with it now, and was not planned",
            is.name
        ));
    }
    said
}

fn short(id: &str) -> &str {
    let id = id.strip_prefix("sha256:").unwrap_or(id);
    &id[..id.len().min(12)]
}

/// Every step of a plan, as `--dry-run` shows it.
pub fn steps(plan: &Plan) -> Vec<String> {
    plan.stages
        .iter()
        .flat_map(|s| s.steps.iter().map(|step| step.describe(plan)))
        .collect()
}

/// How a plan computed now differs from the planned one: the first step that differs (the
/// names of its database copies aside, which tell when each was prepared), the configuration
/// carried.
pub fn plan_differs(planned: &Planned, now: &Plan) -> Vec<String> {
    let mut said = Vec::new();
    let (was, is) = (&planned.steps, steps(now));
    let same = |i: usize| was.get(i).map(|s| unstamped(s)) == is.get(i).map(|s| unstamped(s));
    if let Some(i) = (0..was.len().max(is.len())).find(|&i| !same(i)) {
        let step = |s: Option<&String>| s.map_or("nothing".to_string(), |s| format!("`{s}`"));
        said.push(format!(
            "its steps differ from step {}: planned {}, now {}",
            i + 1,
            step(was.get(i)),
            step(is.get(i))
        ));
    }
    if carried_hash(now) != planned.carried {
        said.push("the configuration it would carry to the new containers differs".into());
    }
    said
}

/// A step's description with the run's stamp in its copies' names (`db__cutover_STAMP`, see
/// [`crate::backup::snapshot::MARK`]) left out: a plan prepared again is prepared at another
/// time.
fn unstamped(step: &str) -> String {
    let mark = crate::backup::snapshot::MARK;
    let mut parts = step.split(mark);
    let mut text = parts.next().unwrap_or_default().to_string();
    for part in parts {
        let stamp = part
            .char_indices()
            .take_while(|(_, c)| c.is_ascii_digit() || *c == 'T')
            .count();
        text.push_str(mark);
        text.push_str(&part[stamp..]);
    }
    text
}

fn carried_hash(plan: &Plan) -> String {
    sha256(plan.carried.to_string().as_bytes())
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{:x}", Sha256::digest(bytes))
}

/// The downtime a plan expects, from its steps' traits: in each stage, from the first step
/// that takes the service down until the new version is proven serving.
pub fn downtime(plan: &Plan) -> String {
    let mut windows = Vec::new();
    for stage in &plan.stages {
        let Some(start) = stage.steps.iter().position(|s| s.traits().starts_downtime) else {
            continue;
        };
        let end = stage.steps[start..]
            .iter()
            .position(|s| s.traits().proves_serving)
            .map_or(stage.steps.len() - 1, |i| start + i);
        let within = &stage.steps[start..=end];
        let mut what = Vec::new();
        if within.iter().any(|s| s.traits().backs_up) {
            what.push("a backup");
        }
        if within.iter().any(|s| s.traits().migrates) {
            what.push("a migration");
        }
        windows.push(format!(
            "from `{}` until `{}` ({} steps{})",
            stage.steps[start].describe(plan),
            stage.steps[end].describe(plan),
            within.len(),
            match what.is_empty() {
                true => String::new(),
                false => format!(", {} among them", what.join(" and ")),
            }
        ));
    }
    match windows.len() {
        0 => "none: nothing is stopped".into(),
        _ => format!("the service is down {}", windows.join("; then ")),
    }
}

impl Planned {
    /// The upgrade of `container` (as the command named it), prepared as `plan` to `to`
    /// (pinned), through the pinned hops `via`, over the containers `now`.
    pub fn of(
        container: &str,
        plan: &Plan,
        via: Vec<String>,
        now: Vec<Identity>,
        asked: Value,
    ) -> Planned {
        let live_check = match &plan.profile {
            Some(profile) => format!(
                "the running product answers as profile {} says (its health, version and database rules passed)",
                profile.name
            ),
            None => "no product profile: nothing to check on the running product".into(),
        };
        let mut kept = plan.clone();
        kept.carried = Value::Null;
        Planned {
            container: container.to_string(),
            from: plan.image_from.clone(),
            to: plan.image_to.clone(),
            via,
            steps: steps(plan),
            downtime: downtime(plan),
            live_check,
            containers: now,
            carried: carried_hash(plan),
            asked,
            plan: kept,
        }
    }
}

/// How a plan's upgrades of several hosts roll, as `upgrade` of several `HOST/NAME` does with
/// `--parallel 1`: the canary host first, then one host after the other.
#[derive(Debug, Clone, Default)]
pub struct Roll {
    /// The host that goes first; the first one planned otherwise.
    pub canary: Option<String>,
    /// Failed hosts tolerated after the canary before the roll stops.
    pub failure_budget: usize,
}

impl Roll {
    /// The order the upgrades of `containers` (NAME or HOST/NAME, as planned) run in: the canary
    /// host's, then the others' as planned.
    pub fn order(&self, containers: &[String]) -> Vec<usize> {
        let first = self.first(containers);
        let (mut order, rest): (Vec<usize>, Vec<usize>) =
            (0..containers.len()).partition(|&i| host(&containers[i]) == first);
        order.extend(rest);
        order
    }

    /// The canary: the one given when a container of the plan is on it, else the first host
    /// planned.
    pub fn first<'a>(&'a self, containers: &'a [String]) -> &'a str {
        self.canary
            .as_deref()
            .filter(|c| containers.iter().any(|n| host(n) == *c))
            .or(containers.first().map(|c| host(c)))
            .unwrap_or_default()
    }

    /// Why the roll stops after an upgrade on `host` that did not end done, when it does: one
    /// that needs attention, the canary's failure, or more failed hosts than the budget allows
    /// (`failed_hosts` counts this one).
    pub fn stops(&self, canary: bool, attention: bool, failed_hosts: usize) -> Option<String> {
        match (attention, canary) {
            (true, _) => Some("it needs attention".into()),
            (false, true) => Some("it is on the canary host".into()),
            _ if failed_hosts > self.failure_budget => Some(format!(
                "{failed_hosts} host(s) failed (failure budget {})",
                self.failure_budget
            )),
            _ => None,
        }
    }
}

/// The host of a container as planned: `HOST` of `HOST/NAME`, empty for a bare name.
pub fn host(container: &str) -> &str {
    container.split_once('/').map_or("", |(host, _)| host)
}

impl Planned {
    /// The containers it moves, named as the plan names them (`HOST/NAME` on a fleet).
    pub fn moves(&self) -> Vec<String> {
        let host = match host(&self.container) {
            "" => String::new(),
            host => format!("{host}/"),
        };
        self.plan
            .members
            .iter()
            .map(|m| format!("{host}{m}"))
            .collect()
    }
}

/// `image` pinned to the digest the registry serves for its tag now: `REPOSITORY:TAG@sha256:…`
/// (one pinned already is kept).
pub async fn pin(registry: &RegistryClient, image: &str) -> Result<String> {
    let Some(reference) = ImageRef::parse(image) else {
        return Err(Error::Refused(format!(
            "{image} is not an image reference to pin"
        )));
    };
    if reference.digest.is_some() {
        return Ok(image.to_string());
    }
    let tag = reference.tag.clone().unwrap_or_else(|| "latest".into());
    let digest = registry
        .digest(&reference, &tag)
        .await
        .map_err(|e| Error::Refused(format!("{image} could not be pinned to its digest: {e}")))?;
    Ok(ImageRef {
        digest: Some(digest),
        tag: Some(tag),
        ..reference
    }
    .to_string())
}

impl PlanFile {
    /// A plan file of `upgrades`, made at `made_at` and valid for `valid_for`, sealed with its
    /// id and checksum.
    pub fn seal(upgrades: Vec<Planned>, made_at: SystemTime, valid_for: Duration) -> PlanFile {
        // Each upgrade's line, then its plan's notes: the release notes of each hop and the
        // vendor's follow-ups are what a reviewer reads before approving.
        let summary = upgrades
            .iter()
            .flat_map(|u| {
                let via: Vec<&str> = u.via.iter().map(|v| crate::plan::short_image(v)).collect();
                let line = format!(
                    "{}: {} -> {}{}; {} steps; {}",
                    u.container,
                    crate::plan::short_image(&u.from),
                    crate::plan::short_image(&u.to),
                    match via.is_empty() {
                        true => String::new(),
                        false => format!(" through {}", via.join(", ")),
                    },
                    u.steps.len(),
                    u.downtime
                );
                std::iter::once(line).chain(u.plan.notes.iter().map(|n| format!("  {n}")))
            })
            .collect();
        let mut file = PlanFile {
            format: FORMAT,
            id: String::new(),
            made_at,
            valid_until: made_at + valid_for,
            summary,
            upgrades,
            more: BTreeMap::new(),
            checksum: String::new(),
        };
        file.reseal();
        file
    }

    /// Computes the id and checksum again, after a field was added.
    pub fn reseal(&mut self) {
        let value = serde_json::to_value(&*self).expect("a plan file serialises");
        self.checksum = checksum(&value);
        self.id = id_of(&self.checksum);
    }

    /// The message that tells a plan waits for approval on `host`, and the command that
    /// approves it.
    pub fn message(&self, host: &str) -> Message {
        let mut lines = self.summary.clone();
        lines.push(format!(
            "Nothing was changed. Valid until {}; to carry it out: cutover approve {}",
            humantime::format_rfc3339_seconds(self.valid_until),
            self.id
        ));
        let upgrades: Vec<Value> = self
            .upgrades
            .iter()
            .map(|u| serde_json::json!({"container": u.container, "from": u.from, "to": u.to, "result": "waits_for_approval"}))
            .collect();
        Message::new(
            format!("cutover plan {} on {host}: waits for approval", self.id),
            lines,
            Severity::Success,
            Value::Array(upgrades),
            self.made_at,
        )
    }

    /// The file's text: JSON, as people read it.
    pub fn text(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan file serialises") + "\n"
    }

    /// A plan file's text read back, refused (with what to do) when it was altered since it was
    /// made, is of a format this cutover does not know, or has expired at `now`.
    pub fn read(text: &str, now: SystemTime) -> std::result::Result<PlanFile, PlanFileError> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| PlanFileError::NotCutovers(e.to_string()))?;
        let written = value
            .get("checksum")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if written != checksum(&value)
            || value.get("id").and_then(Value::as_str) != Some(&id_of(written))
        {
            return Err(PlanFileError::Altered);
        }
        let file: PlanFile =
            serde_json::from_value(value).map_err(|e| PlanFileError::Unreadable(e.to_string()))?;
        if file.format != FORMAT {
            return Err(PlanFileError::Format(file.format));
        }
        if now > file.valid_until {
            return Err(PlanFileError::Expired {
                until: humantime::format_rfc3339_seconds(file.valid_until).to_string(),
                made: humantime::format_rfc3339_seconds(file.made_at).to_string(),
            });
        }
        Ok(file)
    }
}

/// Why a plan file is refused; each says to make a new plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanFileError {
    #[error("it is not a plan file of cutover's: {0}")]
    NotCutovers(String),
    #[error("it was altered since it was made (its checksum does not match what it holds): make a new plan with `cutover plan`")]
    Altered,
    #[error("it is not a plan file this cutover reads: {0}")]
    Unreadable(String),
    #[error("it is of format {0}, and this cutover reads format {FORMAT}: make a new plan with this cutover")]
    Format(u32),
    #[error("it expired at {until} (made at {made}): make a new plan with `cutover plan`")]
    Expired { until: String, made: String },
}

/// The checksum of a plan file: sha256 of its JSON without `checksum` and `id`, keys sorted
/// (serde_json's maps keep them so), so that any change to what it holds shows.
pub fn checksum(value: &Value) -> String {
    let mut value = value.clone();
    if let Some(fields) = value.as_object_mut() {
        fields.remove("checksum");
        fields.remove("id");
    }
    sha256(value.to_string().as_bytes())
}

fn id_of(checksum: &str) -> String {
    checksum
        .strip_prefix("sha256:")
        .unwrap_or(checksum)
        .chars()
        .take(12)
        .collect()
}

/// Where plans wait for approval (`auto` with approval), and what was applied.
pub struct PlanStore {
    dir: PathBuf,
}

/// A waiting plan, or one that cannot be read, with why.
pub struct WaitingPlan {
    pub path: PathBuf,
    pub plan: std::result::Result<PlanFile, String>,
}

impl PlanStore {
    /// The `plans/` of a state directory, created private (see [`crate::private::dir`]).
    pub fn open(state: &StateDir) -> Result<PlanStore> {
        let dir = state.path().join("plans");
        for dir in [dir.clone(), dir.join("applied"), dir.join("approved")] {
            crate::private::dir(&dir).map_err(|e| Error::Refused(e.to_string()))?;
        }
        Ok(PlanStore { dir })
    }

    /// Keeps `plan` to wait for approval; its path.
    pub fn keep(&self, plan: &PlanFile) -> Result<PathBuf> {
        let path = self.dir.join(format!("{}.json", plan.id));
        crate::private::write(&path, plan.text().as_bytes()).map_err(|e| io(&path, e))?;
        Ok(path)
    }

    /// The plans waiting, oldest first, read as of `now`.
    pub fn waiting(&self, now: SystemTime) -> Result<Vec<WaitingPlan>> {
        let mut found = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(|e| io(&self.dir, e))? {
            let path = entry.map_err(|e| io(&self.dir, e))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            let plan = std::fs::read_to_string(&path)
                .map_err(|e| e.to_string())
                .and_then(|text| PlanFile::read(&text, now).map_err(|e| e.to_string()));
            found.push(WaitingPlan { path, plan });
        }
        found.sort_by_key(|w| w.plan.as_ref().map(|p| p.made_at).ok());
        Ok(found)
    }

    /// The waiting plan `id` (or an unambiguous start of it).
    pub fn find(&self, id: &str) -> Result<PathBuf> {
        let mut matching: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map_err(|e| io(&self.dir, e))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && p.file_stem()
                        .is_some_and(|s| !id.is_empty() && s.to_string_lossy().starts_with(id))
            })
            .collect();
        match matching.len() {
            1 => Ok(matching.remove(0)),
            0 => Err(Error::Refused(format!(
                "no plan {id} waits in {}: `cutover pending` lists them",
                self.dir.display()
            ))),
            _ => Err(Error::Refused(format!(
                "{id} starts several plans' ids: give more of it (`cutover pending`)"
            ))),
        }
    }

    /// When and how plan `id` was applied, if it was.
    pub fn applied(&self, id: &str) -> Option<String> {
        std::fs::read_to_string(self.dir.join("applied").join(id)).ok()
    }

    /// Records that plan `id` was applied (`how`), and takes it off the waiting list.
    pub fn mark_applied(&self, id: &str, how: &str) -> Result<()> {
        let path = self.dir.join("applied").join(id);
        let said = format!(
            "{} ({how})",
            humantime::format_rfc3339_seconds(crate::clock::now())
        );
        crate::private::write(&path, said.as_bytes()).map_err(|e| io(&path, e))?;
        for done in [
            self.dir.join(format!("{id}.json")),
            self.dir.join("approved").join(id),
        ] {
            if done.exists() {
                std::fs::remove_file(&done).map_err(|e| io(&done, e))?;
            }
        }
        Ok(())
    }

    /// Records that the waiting plan `id` was approved, for a resident `auto` to apply in its
    /// window.
    pub fn approve(&self, id: &str) -> Result<()> {
        let path = self.dir.join("approved").join(id);
        crate::private::write(&path, b"").map_err(|e| io(&path, e))
    }

    /// Takes back the approval of plan `id`, which could not be applied: it waits again.
    pub fn withdraw(&self, id: &str) -> Result<()> {
        let path = self.dir.join("approved").join(id);
        std::fs::remove_file(&path).map_err(|e| io(&path, e))
    }

    /// The waiting plans approved for a resident `auto`, with their paths, oldest first.
    pub fn approved(&self, now: SystemTime) -> Result<Vec<WaitingPlan>> {
        let approved = self.dir.join("approved");
        Ok(self
            .waiting(now)?
            .into_iter()
            .filter(|w| {
                w.path
                    .file_stem()
                    .is_some_and(|id| approved.join(id).exists())
            })
            .collect())
    }
}

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Refused(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests;
