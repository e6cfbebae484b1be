//! `cutover tasks` and `cutover task`: a profile's maintenance procedure over the whole group,
//! everything checked before anything stops (the files parse and have what the task needs, the
//! members that do the work agree on their configuration, the database can be backed up), then
//! the plan of [`plan`].

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::engine::Container;

use super::backup::BackupRequest;
use super::group::{choose_profile, claim_running, with_its_group};
use super::live;
use super::preflight::{self, Prepared};
use super::settings::{self, Given};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::steps::sha256;
use crate::plan::steps::Home;
use crate::plan::steps::VersionSource;
mod plan;

use crate::plan::ProfileUse;
use crate::profile::task::{
    lookup, resolve_command, ConfigSpec, Files, TaskOptions, TaskSpec, TaskStepSpec, SOURCE,
};
use crate::profile::{Catalog, Choice, Facts, Loaded};
use crate::run::journal::ContainerLock;
use crate::run::StateDir;
use plan::{one_shot_name, plan_task, TaskInput, TaskMember};

/// A container's profile and its tasks.
pub struct Tasks {
    pub loaded: Loaded,
    /// Why this profile applies.
    pub why: String,
}

impl Tasks {
    /// The task by name, or a refusal that lists the ones there are.
    pub fn get(&self, task: &str) -> Result<&TaskSpec> {
        let profile = &self.loaded.profile;
        profile.tasks.get(task).ok_or_else(|| {
            let known: Vec<&str> = profile.tasks.keys().map(String::as_str).collect();
            Error::Refused(match known.is_empty() {
                true => format!("profile {} has no tasks", profile.name),
                false => format!(
                    "profile {} has no task {task:?}; its tasks: {} (`cutover tasks NAME` explains them)",
                    profile.name,
                    known.join(", ")
                ),
            })
        })
    }
}

/// The profile a container follows, for its tasks.
pub async fn tasks_of(
    engine: &dyn Engine,
    catalog: &Catalog,
    name: &str,
    choice: &Choice,
) -> Result<Tasks> {
    let c = engine
        .inspect(name)
        .await?
        .ok_or_else(|| Error::Refused(format!("there is no container named {name}")))?;
    let (loaded, why) = choose_profile(catalog, choice, &c)?.ok_or_else(|| {
        Error::Refused(format!(
            "{name} follows no product profile, so it has no tasks; name one with --profile"
        ))
    })?;
    Ok(Tasks { loaded, why })
}

pub struct TaskRequest {
    /// The container the command names; the group's first member.
    pub name: String,
    pub task: String,
    pub args: TaskOptions,
    /// The config file, the command line's health flags and `--profile` (which chose `tasks`).
    pub given: Given,
    pub backup: BackupRequest,
}

const LEFT_FROM_A_TASK: &str =
    "it is left from an interrupted task: remove it, or run `cutover recover`";

/// The members as the task sees them: those whose configuration file has the task's role do
/// the work; without a configuration file, the container named does.
async fn roles<'a>(
    engine: &dyn Engine,
    spec: &TaskSpec,
    members: &'a [(Container, Facts)],
    files: &mut Files,
    digests: &mut BTreeMap<String, String>,
) -> Result<Vec<TaskMember<'a>>> {
    let Some(config) = &spec.config else {
        return Ok(members
            .iter()
            .enumerate()
            .map(|(i, (c, _))| TaskMember {
                inspect: c,
                role: i == 0,
                holds: false,
                config_site: String::new(),
                home: Home::Mount,
            })
            .collect());
    };
    let swaps = spec
        .steps
        .iter()
        .any(|s| matches!(s, TaskStepSpec::Swap { .. }));
    config_members(engine, config, swaps, members, files, digests).await
}

/// Everything that can be checked without changing the host, then the plan.
pub async fn prepare(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    tasks: &Tasks,
    req: &TaskRequest,
) -> Result<Prepared> {
    let spec = tasks.get(&req.task)?;
    let profile = &tasks.loaded.profile;
    let (locks, members) = claim_group(engine, state, catalog, tasks, &req.name).await?;
    let (mut files, mut digests) = given_files(spec, &req.args)?;
    let task_members = roles(engine, spec, &members, &mut files, &mut digests).await?;
    spec.check_files(&req.args, &files)?;
    if let Some(worker) = task_members.iter().find(|m| m.role) {
        check_environment(spec, &req.args, &files, worker.inspect)?;
    }
    let health =
        settings::resolve(&req.given, Some((profile, &members[0].1)), &members[0].0).health()?;
    let version = profile.expect_version.clone().map(VersionSource::Url);
    let rules = live::LiveRules {
        health: &health,
        version: version.as_ref(),
        database: profile.database.as_ref(),
        dump: false,
    };
    let with_facts: Vec<(&Container, &Facts)> = members.iter().map(|(c, f)| (c, f)).collect();
    live::require_match(engine, &profile.name, &with_facts, &rules).await?;
    let backup = super::backup::plan_for(
        engine,
        state,
        &req.backup,
        profile.database.as_ref(),
        &Default::default(),
        &with_facts,
    )
    .await?;
    let one_shot = one_shot_name(&req.name);
    for name in [one_shot.clone(), format!("{one_shot}-undo")] {
        preflight::name_free(engine, &name, LEFT_FROM_A_TASK).await?;
    }
    let input = TaskInput {
        task: &req.task,
        spec,
        args: &req.args,
        files: &files,
        digests: &digests,
        members: task_members,
        backup,
        health,
    };
    let mut plan = plan_task(&input)?;
    plan.profile = Some(ProfileUse {
        name: profile.name.clone(),
        origin: tasks.loaded.origin.clone(),
        why: tasks.why.clone(),
    });
    Ok(Prepared { plan, locks })
}

/// The container named and, when the profile groups by database, every other one on the same
/// database: claimed, with what the profile read of each.
async fn claim_group(
    engine: &dyn Engine,
    state: &StateDir,
    catalog: &Catalog,
    tasks: &Tasks,
    name: &str,
) -> Result<(Vec<ContainerLock>, Vec<(Container, Facts)>)> {
    let (lock, primary) = claim_running(engine, state, name).await?;
    let mut locks = vec![lock];
    let members = with_its_group(engine, catalog, &tasks.loaded, primary).await?;
    for (name, ..) in &members[1..] {
        locks.push(claim_running(engine, state, name).await?.0);
    }
    Ok((locks, members.into_iter().map(|(_, c, f)| (c, f)).collect()))
}

/// The files the task's options name, read and parsed, with their digests (the plan keeps
/// them as they were checked).
fn given_files(spec: &TaskSpec, args: &TaskOptions) -> Result<(Files, BTreeMap<String, String>)> {
    let mut files = Files::new();
    let mut digests = BTreeMap::new();
    for arg in spec.args.iter().filter(|a| a.file) {
        let Some(path) = args.values.get(&arg.name).and_then(|v| v.first()) else {
            continue;
        };
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Refused(format!("--{} {path}: {e}", arg.name)))?;
        let what = format!("{path} (--{})", arg.name);
        files.insert(arg.name.clone(), parse(&what, &bytes)?);
        digests.insert(arg.name.clone(), sha256(&bytes));
    }
    Ok((files, digests))
}

/// The members as the task's configuration file sorts them: those that run the role's service
/// and whose file has the role section do the work, and must agree on it (it becomes the file
/// `source`); every member whose file has the section gets the new one, checked writable here.
async fn config_members<'a>(
    engine: &dyn Engine,
    config: &ConfigSpec,
    swaps: bool,
    members: &'a [(Container, Facts)],
    files: &mut Files,
    digests: &mut BTreeMap<String, String>,
) -> Result<Vec<TaskMember<'a>>> {
    let mut task_members = Vec::new();
    let mut source: Option<(String, serde_json::Value)> = None;
    for (c, _) in members {
        let name = c.name().to_string();
        let read = Facts::read(engine, c, std::slice::from_ref(&config.path)).await?;
        let text = read.files.get(&config.path);
        let parsed = match text {
            Some(text) => Some(parse(
                &format!("{} of {name}", config.path),
                text.as_bytes(),
            )?),
            None => None,
        };
        let works = match &config.runs {
            Some(runs) => runs.runs(&c.command(), c.env()),
            None => true,
        };
        let section = parsed
            .as_ref()
            .and_then(|v| lookup(v, &config.role))
            .cloned();
        let mut home = Home::Mount;
        if let (Some(section), Some(text), Some(parsed)) = (&section, text, &parsed) {
            match &source {
                _ if !works => {}
                None => {
                    files.insert(SOURCE.into(), parsed.clone());
                    digests.insert(SOURCE.into(), sha256(text.as_bytes()));
                    source = Some((name.clone(), section.clone()));
                }
                Some((first, other)) if other != section => {
                    return Err(Error::Refused(format!(
                        "{first} and {name} have different {} sections in {}: the task would move one of them and leave the other pointing at the old place; make them agree first",
                        config.role, config.path
                    )));
                }
                Some(_) => {}
            }
            if swaps {
                home = writable_home(c, &config.path, text)?;
            }
        }
        task_members.push(TaskMember {
            inspect: c,
            role: works && section.is_some(),
            holds: section.is_some(),
            config_site: config_site(c, &config.path),
            home,
        });
    }
    Ok(task_members)
}

/// A YAML file, its secrets registered for redaction before anything prints it.
fn parse(what: &str, bytes: &[u8]) -> Result<serde_json::Value> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| Error::Refused(format!("{what} is not a text file")))?;
    crate::secrets::register_config_text(text);
    yaml_serde::from_str(text).map_err(|e| Error::Refused(format!("{what} is not valid YAML: {e}")))
}

/// Where a container's file lives: a volume or bind mount (shared by every container that
/// mounts it), else the container's own filesystem.
fn config_site(c: &Container, path: &str) -> String {
    match c.mount_holding(path) {
        Some(m) => format!(
            "{}{}",
            m.name.clone().or(m.source.clone()).unwrap_or_default(),
            &path[m.destination.trim_end_matches('/').len()..]
        ),
        None => format!("container {}", c.id()),
    }
}

/// Where a working member's configuration file lives, refusing before anything stops one the
/// task could not replace: on a read-only mount, or bind-mounted as a single file that cutover
/// cannot reach. The engine cannot replace a file that is itself a mount point, so such a file
/// is written in place on this host, once its content proves it is the file the container
/// reads. One in the container's own filesystem is replaced there, and the run warns that it
/// lasts only as long as the container.
fn writable_home(c: &Container, path: &str, text: &str) -> Result<Home> {
    let name = c.name().to_string();
    let Some(mount) = c.mount_holding(path) else {
        return Ok(Home::Container);
    };
    if !mount.writable {
        return Err(Error::Refused(format!(
            "{path} of {name} is on a read-only mount, so the task could not put the new configuration in place; mount it read-write first"
        )));
    }
    if mount.destination.trim_end_matches('/') != path {
        return Ok(Home::Mount);
    }
    let source = PathBuf::from(mount.source.clone().unwrap_or_default());
    let unreachable = |why: String| {
        Error::Refused(format!(
            "{path} of {name} is the file {} bind-mounted from the engine's host, which the engine cannot replace (it is a mount point) and cutover {why}: run cutover on the engine's host with the rights to write that file, or mount its directory instead ({}:{})",
            source.display(),
            parent(&source.display().to_string()),
            parent(path)
        ))
    };
    match std::fs::read(&source) {
        Ok(bytes) if bytes == text.as_bytes() => {}
        Ok(_) => return Err(unreachable("finds another file at that path here".into())),
        Err(e) => return Err(unreachable(format!("cannot read it here ({e})"))),
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&source)
        .map_err(|e| unreachable(format!("cannot write it ({e})")))?;
    Ok(Home::HostFile(source))
}

fn parent(path: &str) -> &str {
    match path.rsplit_once('/') {
        Some(("", _)) => "/",
        Some((dir, _)) => dir,
        None => ".",
    }
}

/// Refuses when the member that does the work lacks a variable the task's commands need.
fn check_environment(
    spec: &TaskSpec,
    args: &TaskOptions,
    files: &Files,
    worker: &Container,
) -> Result<()> {
    let env = worker.env().to_vec();
    for step in &spec.steps {
        if let TaskStepSpec::Run(run) = step {
            let undo = run.undo.iter().flat_map(|u| u.command.clone());
            let words: Vec<String> = run.command.iter().cloned().chain(undo).collect();
            for word in resolve_command(&words, args, files).0 {
                crate::template::expand(&word, &env)
                    .map_err(|e| Error::Refused(format!("{}: {e}", worker.name())))?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
