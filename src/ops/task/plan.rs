//! The plan of a profile task (`cutover task`): the files it uses kept, the whole group stopped,
//! the database backed up, the task's steps, then the group started and awaited healthy. Every
//! member stays the same container throughout: its slot is generation 0 from start to end.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use crate::engine::Container;

use crate::health::HealthPolicy;
use crate::plan::build::{in_place, BackupPlan};
use crate::plan::steps::{
    AwaitHealthy, FileSource, Home, Judged, KeepFile, Start, Step, Stop, Swap, TaskCommand, TaskRun,
};
use crate::plan::{Kind, Plan, Slot};
use crate::profile::task::{self, Files, TaskOptions, TaskSpec, TaskStepSpec, SOURCE};
use crate::profile::ApplyError;

/// A member of the group, as the task sees it.
pub struct TaskMember<'a> {
    pub inspect: &'a Container,
    /// It does the work: it runs the role's service and its configuration file has the
    /// section.
    pub role: bool,
    /// Its configuration file has the task's role section, so a swap replaces it, whether the
    /// member does the work or not: Anchore's procedure puts the destination config "in place
    /// for all the components" (profiles/anchore-engine.yaml says where).
    pub holds: bool,
    /// Where its configuration file lives (a volume, a bind mount, or the container itself):
    /// members that share one file swap it once.
    pub config_site: String,
    /// Where its configuration file lives, for the swap.
    pub home: Home,
}

/// What a task's plan is computed from.
pub struct TaskInput<'a> {
    pub task: &'a str,
    pub spec: &'a TaskSpec,
    pub args: &'a TaskOptions,
    /// The files it reads, parsed: `source` and the file arguments.
    pub files: &'a Files,
    /// The SHA-256 of each, as checked: the run refuses a file that changed since.
    pub digests: &'a BTreeMap<String, String>,
    /// Every member, the one named first, in the order they stop.
    pub members: Vec<TaskMember<'a>>,
    pub backup: Option<BackupPlan>,
    pub health: HealthPolicy,
}

/// How long a task's command may run when its profile says nothing.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60 * 60);

/// The one-shot container a task's commands run in, named after the group's first member.
pub fn one_shot_name(name: &str) -> String {
    format!("{name}-cutover-task")
}

pub fn plan_task(input: &TaskInput<'_>) -> Result<Plan, ApplyError> {
    let workers: Vec<&TaskMember<'_>> = input.members.iter().filter(|m| m.role).collect();
    let worker = workers
        .first()
        .ok_or_else(|| ApplyError::Unfit(no_worker(input)))?;
    let mut steps = kept_files(input, worker)?;
    let (before, after) = task_steps(input, worker)?;
    steps.extend(before);
    for m in &input.members {
        steps.push(
            Stop {
                slot: slot(m.inspect),
                timeout_secs: m.inspect.stop_timeout(),
                serving: true,
            }
            .into(),
        );
    }
    if let Some(backup) = &input.backup {
        let names: Vec<String> = input
            .members
            .iter()
            .map(|m| m.inspect.name().to_string())
            .collect();
        steps.extend(backup.steps(names.iter().map(|n| (n.as_str(), Slot::new(n, 0))), None, 0));
    }
    steps.extend(after);
    // The members that do the work first: the others wait for them (Anchore's catalog).
    let starting: Vec<&TaskMember<'_>> = workers
        .iter()
        .copied()
        .chain(input.members.iter().filter(|m| !m.role))
        .collect();
    for m in &starting {
        steps.push(
            Start {
                slot: slot(m.inspect),
                successor: true,
                migrates: false,
            }
            .into(),
        );
    }
    for m in &starting {
        steps.push(
            AwaitHealthy {
                slot: slot(m.inspect),
                policy: input.health.clone(),
            }
            .into(),
        );
    }
    let members: Vec<&Container> = input.members.iter().map(|m| m.inspect).collect();
    Ok(Plan {
        task: Some(input.task.to_string()),
        ..in_place(Kind::Task, &members, steps)
    })
}

/// A task runs its members in place: each keeps its container, generation 0.
fn slot(c: &Container) -> Slot {
    Slot::new(c.name(), 0)
}

/// Why no member can do the task's work.
fn no_worker(input: &TaskInput<'_>) -> String {
    match input.spec.config.as_ref() {
        Some(config) => match &config.runs {
            Some(runs) => format!(
                "none of the containers runs the {} service (started with `{} {}`, or {}): the task needs one that does the work",
                runs.service,
                runs.after.join(" "),
                runs.service,
                runs.env.as_deref().map_or("--all".into(), |e| format!("{e} naming it, or {}", runs.all.as_deref().unwrap_or("--all")))
            ),
            None => format!(
                "none of the containers has {} in {}: the task needs one that does the work",
                config.role, config.path
            ),
        },
        None => "the task has no container to do its work".to_string(),
    }
}

/// The files given to the task and the worker's configuration, kept as they were checked.
fn kept_files(input: &TaskInput<'_>, worker: &TaskMember<'_>) -> Result<Vec<Step>, ApplyError> {
    let mut steps: Vec<Step> = Vec::new();
    for arg in input.spec.args.iter().filter(|a| a.file) {
        if let Some(path) = input.args.values.get(&arg.name).and_then(|v| v.first()) {
            steps.push(
                KeepFile {
                    key: arg.name.clone(),
                    from: FileSource::Host(PathBuf::from(path)),
                    sha256: digest(input, &arg.name)?,
                }
                .into(),
            );
        }
    }
    if let Some(config) = &input.spec.config {
        steps.push(
            KeepFile {
                key: SOURCE.into(),
                from: FileSource::Container {
                    slot: slot(worker.inspect),
                    path: config.path.clone(),
                },
                sha256: digest(input, SOURCE)?,
            }
            .into(),
        );
    }
    Ok(steps)
}

/// The task's own steps: those that run before the group stops, and those after.
fn task_steps(
    input: &TaskInput<'_>,
    worker: &TaskMember<'_>,
) -> Result<(Vec<Step>, Vec<Step>), ApplyError> {
    let (mut before, mut after) = (Vec::new(), Vec::new());
    for spec in &input.spec.steps {
        match spec {
            TaskStepSpec::Run(run) => {
                let step = run_step(input, worker, run)?;
                match run.before_stop {
                    true => before.push(step.into()),
                    false => after.push(step.into()),
                }
            }
            TaskStepSpec::Swap { from, keep_old_as } => {
                let config =
                    input.spec.config.as_ref().ok_or_else(|| {
                        ApplyError::Unfit("a swap needs the task's config".into())
                    })?;
                let mut sites = Vec::new();
                for m in input.members.iter().filter(|m| m.holds) {
                    if sites.contains(&&m.config_site) {
                        continue;
                    }
                    sites.push(&m.config_site);
                    after.push(
                        Swap {
                            slot: slot(m.inspect),
                            path: config.path.clone(),
                            key: from.clone(),
                            keep_old_as: keep_old_as.clone(),
                            home: m.home.clone(),
                        }
                        .into(),
                    );
                }
            }
        }
    }
    Ok((before, after))
}

/// A command of the task, in a one-shot container with the worker's configuration.
fn run_step(
    input: &TaskInput<'_>,
    worker: &TaskMember<'_>,
    run: &task::RunSpec,
) -> Result<TaskRun, ApplyError> {
    let command = |judged: Judged| {
        let (words, used) = task::resolve_command(&judged.command, input.args, input.files);
        TaskCommand {
            run: Judged {
                command: words,
                ..judged
            },
            files: used
                .iter()
                .map(|f| (f.clone(), task::file_path(f)))
                .collect(),
        }
    };
    Ok(TaskRun {
        source: slot(worker.inspect),
        name: one_shot_name(input.members[0].inspect.name()),
        image: worker.inspect.image().to_string(),
        command: command(run.judged()),
        env: run.env.clone(),
        timeout: run.timeout()?.unwrap_or(DEFAULT_TIMEOUT),
        changes_data: run.changes_data,
        undo: run.undo.iter().map(|u| command(u.clone())).collect(),
        backup_covers: input.backup.is_some()
            && run
                .backup_covers
                .as_ref()
                .is_some_and(|c| c.holds(input.args, input.files)),
    })
}

fn digest(input: &TaskInput<'_>, name: &str) -> Result<String, ApplyError> {
    input
        .digests
        .get(name)
        .cloned()
        .ok_or_else(|| ApplyError::Unfit(format!("{name} was not read before planning")))
}
