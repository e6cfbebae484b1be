//! Compose projects as the upgrade sees them: which containers `--project` moves and in which
//! order, where their files must say the new tag, and the config hash compose will expect.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::Container;

use crate::compose::{self, Membership};
use crate::engine::reference::ImageRef;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::build::ComposePlan;
use crate::plan::steps::{sha, ComposeEdit};

/// What the command line says about compose.
#[derive(Debug, Clone, Default)]
pub struct ComposeRequest {
    /// `--project`: upgrade the services of this project.
    pub project: Option<String>,
    /// `--service`: only these services of it (or of the stack).
    pub services: Vec<String>,
    /// `--stack`: upgrade the Swarm services of this stack (see `ops::service`).
    pub stack: Option<String>,
    /// `--stack-file`: the stack's files, as `docker stack deploy -c` took them, written with
    /// the new image once the services run it.
    pub stack_files: Vec<std::path::PathBuf>,
    /// `--no-compose-edit`: leave the files alone, compose's and systemd units'.
    pub no_edit: bool,
    /// A dry run reads the files but pulls nothing, so the config hash is left to the run.
    pub dry_run: bool,
}

/// The containers `--project` moves: the services named, or those that run the product most of
/// the project's services run (an app's services, not its database); dependents first, so that
/// they stop first and start last.
pub async fn project_members(
    engine: &dyn Engine,
    project: &str,
    services: &[String],
) -> Result<Vec<String>> {
    let mut found: Vec<(String, Membership, String)> = Vec::new();
    for name in engine.container_names(false).await? {
        let Some(c) = engine.inspect(&name).await? else {
            continue;
        };
        if let Some(m) = Membership::of(&c).filter(|m| m.project == project) {
            let repository = ImageRef::parse(c.image())
                .map(|r| r.repository)
                .unwrap_or_default();
            found.push((name, m, repository));
        }
    }
    if found.is_empty() {
        return Err(Error::Refused(format!(
            "no running container belongs to compose project {project}"
        )));
    }
    let chosen: Vec<&(String, Membership, String)> = if services.is_empty() {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (_, _, repository) in &found {
            *counts.entry(repository).or_default() += 1;
        }
        let most = counts.values().max().copied().unwrap_or(0);
        let leaders: Vec<&str> = counts
            .iter()
            .filter(|(_, n)| **n == most)
            .map(|(r, _)| *r)
            .collect();
        if leaders.len() > 1 {
            let all: Vec<&str> = found.iter().map(|(_, m, _)| m.service.as_str()).collect();
            return Err(Error::Refused(format!(
                "the services of project {project} ({}) run different images, none more than the others: name the ones to upgrade with --service",
                all.join(", ")
            )));
        }
        found.iter().filter(|(_, _, r)| r == leaders[0]).collect()
    } else {
        let mut chosen = Vec::new();
        for service in services {
            let hit = found.iter().find(|(_, m, _)| m.service == *service);
            chosen.push(hit.ok_or_else(|| {
                Error::Refused(format!(
                    "project {project} has no running service {service}"
                ))
            })?);
        }
        chosen
    };
    // Dependents first: a service goes before every service it depends on.
    let texts = read_files(&chosen[0].1)?;
    let defs = compose::services(&texts)?;
    let mut ordered: Vec<&(String, Membership, String)> = Vec::new();
    let mut pending = chosen.clone();
    pending.sort_by(|a, b| a.1.service.cmp(&b.1.service));
    while !pending.is_empty() {
        let free = pending.iter().position(|candidate| {
            // No other pending service depends on it.
            !pending.iter().any(|other| {
                defs.get(&other.1.service)
                    .is_some_and(|d| d.depends_on.contains(&candidate.1.service))
            })
        });
        ordered.push(pending.remove(free.unwrap_or(0)));
    }
    Ok(ordered
        .into_iter()
        .map(|(name, _, _)| name.clone())
        .collect())
}

fn read_files(m: &Membership) -> Result<Vec<(PathBuf, String)>> {
    m.config_files
        .iter()
        .map(|f| {
            std::fs::read_to_string(f).map(|t| (f.clone(), t)).map_err(|e| {
                Error::Refused(format!(
                    "{} of compose project {} cannot be read ({e}); pass --no-compose-edit to upgrade without keeping the file true",
                    f.display(),
                    m.project
                ))
            })
        })
        .collect()
}

/// The edits and labels that keep each compose-managed member's project true to its new image,
/// or a refusal (before any downtime) that says what to do.
pub async fn plan(
    engine: &dyn Engine,
    request: &ComposeRequest,
    members: &[(&Container, String)],
    scratch: PathBuf,
) -> Result<Option<ComposePlan>> {
    let managed: Vec<Managed<'_>> = members
        .iter()
        .filter_map(|(c, image)| Membership::of(c).map(|m| (m, *c, image)))
        .collect();
    if managed.is_empty() {
        return Ok(None);
    }
    if request.no_edit {
        tracing::warn!("--no-compose-edit: the compose files keep the old tag, and `docker-compose up --force-recreate` or `down`/`up` would bring the old version back");
        return Ok(None);
    }
    let changed = file_changes(&managed)?;
    let mut plan = ComposePlan::default();
    for (file, (original, changes)) in &changed {
        plan.edits.push(ComposeEdit {
            file: file.clone(),
            changes: changes.clone(),
            planned: sha(original),
        });
    }
    if request.dry_run {
        return Ok(Some(plan));
    }
    if !compose::available() {
        tracing::warn!("docker-compose is not on this host's PATH: the new containers keep their old config hash, so the next `docker-compose up` recreates them once (with the new version)");
        return Ok(Some(plan));
    }
    plan.labels = config_hash_labels(engine, &managed, &changed, &scratch).await?;
    Ok(Some(plan))
}

/// A member of a compose project, and the image it moves to.
type Managed<'a> = (Membership, &'a Container, &'a String);

/// Each compose file the upgrade must edit: its text now and the changes to it.
fn file_changes(
    managed: &[Managed<'_>],
) -> Result<BTreeMap<PathBuf, (String, Vec<compose::Change>)>> {
    let mut changed: BTreeMap<PathBuf, (String, Vec<compose::Change>)> = BTreeMap::new();
    for (m, c, image) in managed {
        let texts = read_files(m)?;
        let defs = compose::services(&texts)?;
        let dotenv = std::fs::read_to_string(&m.env_file).ok();
        let (file, change) =
            compose::plan_change(m, &defs, dotenv.as_deref(), image).map_err(|why| {
                Error::Refused(format!("{}: {why}; or pass --no-compose-edit", c.name()))
            })?;
        if !compose::edit::writable(&file) {
            return Err(Error::Refused(format!(
                "{} must say the new tag of {}, but it is read-only here; make it writable, or pass --no-compose-edit",
                file.display(),
                m.describe()
            )));
        }
        let original = std::fs::read_to_string(&file).unwrap_or_default();
        changed
            .entry(file)
            .or_insert_with(|| (original, Vec::new()))
            .1
            .push(change);
    }
    Ok(changed)
}

/// The config hash compose would give each new container once its file is edited, as the
/// label that keeps the next `docker-compose up` from recreating it.
async fn config_hash_labels(
    engine: &dyn Engine,
    managed: &[Managed<'_>],
    changed: &BTreeMap<PathBuf, (String, Vec<compose::Change>)>,
    scratch: &std::path::Path,
) -> Result<BTreeMap<String, BTreeMap<String, String>>> {
    // compose hashes the image's id: the new image must be here.
    let mut pulled: Vec<String> = Vec::new();
    for (_, _, image) in managed {
        if !pulled.contains(*image) {
            let reference = ImageRef::parse(image)
                .ok_or_else(|| Error::Refused(format!("{image} is not an image reference")))?;
            engine.pull(&reference, None).await?;
            pulled.push((*image).clone());
        }
    }
    let edited: BTreeMap<PathBuf, String> = changed
        .iter()
        .map(|(file, (original, changes))| {
            let text = changes
                .iter()
                .try_fold(original.clone(), |t, c| c.apply(&t))?;
            Ok((file.clone(), text))
        })
        .collect::<Result<_>>()?;
    let mut by_project: BTreeMap<String, Vec<&Membership>> = BTreeMap::new();
    for (m, _, _) in managed {
        by_project.entry(m.project.clone()).or_default().push(m);
    }
    let mut labels = BTreeMap::new();
    for (project, ms) in by_project {
        let services: Vec<String> = ms.iter().map(|m| m.service.clone()).collect();
        let hashes = compose::config_hashes(ms[0], &services, &edited, &scratch.join(&project))
            .await
            .map_err(|e| {
                Error::Refused(format!(
                    "{e}; pass --no-compose-edit to upgrade without keeping project {project} true"
                ))
            })?;
        for (m, c, _) in managed {
            if let Some(hash) = hashes.get(&m.service).filter(|_| m.project == project) {
                labels.insert(
                    c.name().to_string(),
                    BTreeMap::from([(compose::LABEL_CONFIG_HASH.to_string(), hash.clone())]),
                );
            }
        }
    }
    Ok(labels)
}

/// The edits that keep each member's systemd unit (see [`compose::units`]) true to its new
/// image, once it serves; none for units on another host, whose files cutover cannot reach, nor
/// with `--no-compose-edit`. A unit file that names no image cutover can replace is refused
/// before any downtime, saying what to do.
pub fn unit_edits(
    engine: &dyn Engine,
    request: &ComposeRequest,
    members: &[(&Container, String)],
) -> Result<Vec<ComposeEdit>> {
    if request.no_edit || engine.machine() != crate::engine::Machine::This {
        return Ok(Vec::new());
    }
    let dirs = compose::units::here();
    let mut edits = Vec::new();
    for (c, image) in members {
        let Some(unit) = c.label(compose::units::LABEL_UNIT) else {
            continue;
        };
        let Some(file) = compose::units::find(unit, &dirs) else {
            continue;
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| Error::Refused(format!("{}: {e}", file.display())))?;
        let change = compose::Change::UnitImage {
            unit: unit.to_string(),
            old: c.image().to_string(),
            image: image.clone(),
        };
        let refused = |why: String| {
            Error::Refused(format!(
                "{}: {why}; write the new image there yourself once it serves, and upgrade with --no-compose-edit",
                file.display()
            ))
        };
        change.apply(&text).map_err(|e| refused(e.to_string()))?;
        if !compose::edit::writable(&file) {
            return Err(refused("cutover may not write it".into()));
        }
        edits.push(ComposeEdit {
            file,
            changes: vec![change],
            planned: sha(&text),
        });
    }
    Ok(edits)
}

/// What a plan and `check` say of a container a systemd unit runs: where the new image is
/// written, or that the unit's next start would bring back the old one.
pub fn unit_note(engine: &dyn Engine, c: &Container) -> Option<String> {
    let unit = c.label(compose::units::LABEL_UNIT)?;
    Some(match engine.machine() {
        crate::engine::Machine::This => compose::units::described(unit, &compose::units::here()),
        crate::engine::Machine::Remote(host) => format!(
            "systemd unit {unit} runs it on {host}, whose files cutover does not edit: write the new image in the unit there and `systemctl daemon-reload`, or its next start brings back the old one"
        ),
    })
}
