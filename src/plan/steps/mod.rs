//! Every kind of step, each in its own module with its description, action, undo and traits.
//!
//! The runner, recovery and the output only ever ask a step through [`Action`]; adding a step
//! kind is a module here and one line in the [`steps!`] list.

mod await_healthy;
mod backup;
mod call;
mod carry_file;
mod check_version;
mod compose_edit;
mod create;
mod exec;
pub(crate) mod files;
pub mod gate;
mod keep_file;
mod one_shot;
mod pull;
mod rehearse;
mod remove;
mod rename;
mod restore;
mod service;
mod service_settings;
mod snapshot;
mod start;
mod stop;
mod swap;
mod task_run;
mod verify;
mod volume_snapshot;

use std::collections::{BTreeMap, VecDeque};
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use indicatif::MultiProgress;
use serde::{Deserialize, Serialize};

use super::{Plan, Slot};
use crate::engine::{Engine, EngineError};
use crate::health::HealthError;
use crate::secrets;

pub use await_healthy::AwaitHealthy;
pub use backup::{Backup, Known};
pub use call::{Call, CallStep};
pub use carry_file::CarryFile;
pub use check_version::{reports, CheckVersion, VersionSource};
pub use compose_edit::{sha, ComposeEdit};
pub use create::Create;
pub use exec::{Exec, Hook};
pub use gate::Gate;
pub use keep_file::{sha256, FileSource, KeepFile};
pub use one_shot::OneShot;
pub use pull::Pull;
pub use rehearse::{
    RehearseDump, RehearseMigrate, RehearseNetwork, RehearseRemove, RehearseRestore,
    RehearseServer, RehearseStart, RehearseStop,
};
pub use remove::Remove;
pub use rename::Rename;
pub use restore::Restore;
pub use service::{ServiceAwait, ServiceJob, ServiceScale, ServiceUpdate, TaskChecks};
pub use service_settings::{Hidden, ServiceSettings, SettingsHome};
pub use snapshot::{Snapshot, SnapshotBackup};
pub use start::Start;
pub use stop::Stop;
pub use swap::{Home, Swap};
pub use task_run::{captured_name, Capture, Judged, TableCheck, TaskCommand, TaskRun};
pub use verify::Verify;
pub use volume_snapshot::{PreCopy, VolumeSnapshot};

/// How long since `clock`, to the millisecond, as people read it.
pub(super) fn took(clock: tokio::time::Instant) -> String {
    humantime::format_duration(Duration::from_millis(clock.elapsed().as_millis() as u64))
        .to_string()
}

/// How many of a command's last output lines a report keeps.
const TAIL_LINES: usize = 20;

/// How many lines a step that reads a command's whole output keeps: a table of every migration
/// ever run fits many times over.
const MAX_KEPT_LINES: usize = 100_000;

#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Health(#[from] HealthError),
    #[error("the container {0} is not known to this run")]
    Unbound(Slot),
    /// A step's own failure, said in its own words.
    #[error("{0}")]
    Failed(String),
    /// An undo that could not put the data back, which the undo of an earlier step (restoring
    /// the backup) will: the rollback goes on, with a warning.
    #[error("{0}")]
    Covered(String),
}

/// A backup's failure, said in its words, secrets masked.
impl From<crate::backup::BackupError> for StepError {
    fn from(e: crate::backup::BackupError) -> StepError {
        StepError::Failed(secrets::redact(&e.to_string()))
    }
}

/// What kind of effect a step has, which is all the runner needs to know about it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traits {
    /// Takes the service down: a stage's downtime starts when the first such step begins.
    pub starts_downtime: bool,
    /// Replaces what serves without taking all of it down (a Swarm service updated a task at
    /// a time): no downtime, but a failure once it began is a rollback, not "nothing changed".
    pub replaces_app: bool,
    /// Starts a successor. Once every such step of a stage began, recovery finishes the stage
    /// (health decides) rather than undoing it.
    pub runs_app: bool,
    /// After the service was confirmed healthy: a failure is a warning, never a rollback.
    pub cleanup: bool,
    /// May change the application's data (a migration, the new version's first start): going
    /// back across it puts the old version on data the new one may have changed.
    pub writes_data: bool,
    /// Its undo puts the data it changed back as it was (a migration reversed): once that undo
    /// succeeded, the step no longer counts as having touched the data.
    pub reverts_data: bool,
    /// An undo whose failure must stop the rollback: the undos before it in the plan (starting
    /// the old version) would do harm on data it could not put back.
    pub critical_undo: bool,
    /// Moves the product's schema on (a migration): the old version may refuse what it leaves.
    pub migrates: bool,
    /// Its undo can put the data back as it was before the stage (a backup's restore).
    pub backs_up: bool,
    /// Confirms that a successor serves: once every such step of a stage is done, the new
    /// version is known to work.
    pub proves_serving: bool,
    /// Only waits on something outside and changes nothing on the host (a pull): a signal may
    /// cut it short, where any other step is finished first.
    pub interruptible: bool,
}

impl Traits {
    /// A migration's: it changes the data, and the old version may refuse what it leaves.
    pub fn migration() -> Traits {
        Traits {
            writes_data: true,
            migrates: true,
            ..Traits::default()
        }
    }
}

/// What a step leaves for later steps, for its undo, and for recovery; journaled with it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outputs {
    /// A container the step created, bound to its slot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bind: Option<(Slot, String)>,
    /// When the container first passed its health checks (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serving_at_ms: Option<u64>,
    /// A settle time that confirmed the container after it was serving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settled_ms: Option<u64>,
    /// Anything else the step's own undo needs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub more: BTreeMap<String, serde_json::Value>,
}

/// A step that completed: what to tell people and what to journal.
#[derive(Debug, Default)]
pub struct Done {
    pub detail: Option<String>,
    pub outputs: Outputs,
    /// What the operator must know although the step did its work: it ends up in the report's
    /// warnings, not only in the step's log line.
    pub warning: Option<String>,
}

impl Done {
    pub fn said(detail: impl Into<String>) -> Done {
        Done {
            detail: Some(detail.into()),
            ..Done::default()
        }
    }
}

/// What a step may use while it runs.
pub struct Cx<'a> {
    pub engine: &'a dyn Engine,
    pub slots: &'a BTreeMap<Slot, String>,
    /// The run's private directory (0700) for copies of files; it may not exist yet.
    pub files: &'a Path,
    pub progress: Option<&'a MultiProgress>,
    /// While undoing: whether a step after this one that may change data began (and was not
    /// reverted).
    pub data_touched: bool,
    /// Values earlier steps captured from their commands' output.
    pub captured: &'a BTreeMap<String, String>,
    /// The runs journaled on this host, which the runner keeps.
    pub runs: &'a dyn Runs,
}

/// What a step may ask of the runs the runner journals: a cluster's gate asks whether the
/// first node's run ended.
pub trait Runs: Sync {
    /// Whether a run of `container`, journaled in the state directory `root`, is unfinished
    /// (to recover, or needing a person).
    fn unfinished(&self, root: &Path, container: &str) -> Result<bool, String>;
}

impl Cx<'_> {
    pub fn id(&self, slot: &Slot) -> Result<&str, StepError> {
        self.slots
            .get(slot)
            .map(String::as_str)
            .ok_or_else(|| StepError::Unbound(slot.clone()))
    }

    /// A container found by name that the run may have created before it could journal the
    /// id: any container under that name that is none of the run's known ones.
    pub async fn stray(&self, name: &str) -> Result<Option<String>, StepError> {
        let Some(c) = self.engine.inspect(name).await? else {
            return Ok(None);
        };
        let id = c.id().to_string();
        Ok((!self.slots.values().any(|known| *known == id)).then_some(id))
    }

    /// Removes a one-shot container a killed run left under `name`.
    pub async fn remove_stray(&self, name: &str) -> Result<(), StepError> {
        if let Some(id) = self.stray(name).await? {
            self.engine.remove(&id).await?;
        }
        Ok(())
    }
}

#[async_trait]
pub trait Action: Send + Sync {
    /// A short description for people, free of secrets.
    fn describe(&self, plan: &Plan) -> String;

    fn traits(&self) -> Traits {
        Traits::default()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError>;

    /// What undoing the step does, for people; `None` when there is nothing to undo.
    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        None
    }

    /// Puts the host back as it was before the step began. Idempotent, and works without the
    /// step's outputs (a step killed before it journaled them), because recovery applies it to
    /// steps that may or may not have completed. What it says (a restored backup) goes to the
    /// report.
    async fn undo(
        &self,
        _cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        Ok(None)
    }

    /// Once a rollback put the old version back and it serves, removes what the undo kept until
    /// then (the migrated database set aside), so that nothing is destroyed before the old
    /// version serves. Idempotent, like the undo; a failure is a warning.
    async fn settle(&self, _cx: &Cx<'_>) -> Result<Option<String>, StepError> {
        Ok(None)
    }
}

/// Declares the step kinds once: the journaled enum, its names and its dispatch.
macro_rules! steps {
    ($($name:literal => $variant:ident),* $(,)?) => {
        #[derive(Debug, Clone, Serialize, Deserialize)]
        #[serde(tag = "step")]
        pub enum Step {
            $(#[serde(rename = $name)] $variant($variant),)*
        }

        impl Step {
            pub fn action(&self) -> &dyn Action {
                match self {
                    $(Step::$variant(s) => s,)*
                }
            }

            /// The step's name in reports and the journal.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Step::$variant(_) => $name,)*
                }
            }
        }

        $(impl From<$variant> for Step {
            fn from(s: $variant) -> Step {
                Step::$variant(s)
            }
        })*
    };
}

steps! {
    "pull" => Pull,
    "create" => Create,
    "verify" => Verify,
    "exec" => Exec,
    "carry_file" => CarryFile,
    "stop" => Stop,
    "gate" => Gate,
    "backup" => Backup,
    "precopy" => PreCopy,
    "snapshot" => Snapshot,
    "snapshot_volume" => VolumeSnapshot,
    "backup_from_snapshot" => SnapshotBackup,
    "restore" => Restore,
    "migrate" => OneShot,
    "rename" => Rename,
    "start" => Start,
    "call" => CallStep,
    "await_healthy" => AwaitHealthy,
    "check_version" => CheckVersion,
    "compose_edit" => ComposeEdit,
    "keep_file" => KeepFile,
    "run" => TaskRun,
    "swap" => Swap,
    "remove" => Remove,
    "service_scale" => ServiceScale,
    "service_job" => ServiceJob,
    "service_settings" => ServiceSettings,
    "service_update" => ServiceUpdate,
    "service_await" => ServiceAwait,
    "rehearse_network" => RehearseNetwork,
    "rehearse_server" => RehearseServer,
    "rehearse_dump" => RehearseDump,
    "rehearse_restore" => RehearseRestore,
    "rehearse_migrate" => RehearseMigrate,
    "rehearse_start" => RehearseStart,
    "rehearse_stop" => RehearseStop,
    "rehearse_remove" => RehearseRemove,
}

impl Step {
    pub fn describe(&self, plan: &Plan) -> String {
        self.action().describe(plan)
    }

    pub fn traits(&self) -> Traits {
        self.action().traits()
    }
}

/// A command's output: streamed to the log as it comes (secrets scrubbed), its last lines kept
/// for the report.
pub struct Transcript {
    prefix: String,
    tail: VecDeque<String>,
    /// Output that means failure whatever the exit code, and the first such line seen.
    watch: Vec<String>,
    seen: Option<String>,
    /// Every line, when a step reads the output whole (a table, a value to capture).
    all: Option<Vec<String>>,
}

impl Transcript {
    pub fn new(prefix: &str) -> Transcript {
        Transcript {
            prefix: prefix.to_string(),
            tail: VecDeque::new(),
            watch: Vec::new(),
            seen: None,
            all: None,
        }
    }

    pub fn keeping_all(mut self) -> Transcript {
        self.all = Some(Vec::new());
        self
    }

    /// Every line, when [`Transcript::keeping_all`] asked for them.
    pub fn all(&self) -> &[String] {
        self.all.as_deref().unwrap_or_default()
    }

    pub fn watching(mut self, watch: &[String]) -> Transcript {
        self.watch = watch.to_vec();
        self
    }

    pub fn line(&mut self, line: &str) {
        if self.seen.is_none() && self.watch.iter().any(|w| line.contains(w.as_str())) {
            self.seen = Some(secrets::redact(line.trim()));
        }
        let line = secrets::redact(line);
        tracing::info!("  {} | {line}", self.prefix);
        if let Some(all) = self.all.as_mut().filter(|a| a.len() < MAX_KEPT_LINES) {
            all.push(line.clone());
        }
        if self.tail.len() == TAIL_LINES {
            self.tail.pop_front();
        }
        self.tail.push_back(line);
    }

    pub fn tail(&self) -> Vec<String> {
        self.tail.iter().cloned().collect()
    }

    /// The tail as one block for an error message.
    pub fn tail_text(&self) -> String {
        if self.tail.is_empty() {
            "it printed nothing".into()
        } else {
            format!(
                "last output:\n    {}",
                self.tail.iter().cloned().collect::<Vec<_>>().join("\n    ")
            )
        }
    }
}

/// A command's end as a step's result: exit 0 is done, with its last lines kept; anything else
/// fails with them. `timed_out` says what became of a command that ran out of time.
pub fn finished(
    command: &[String],
    code: Option<i64>,
    timeout: Duration,
    transcript: &Transcript,
    timed_out: &str,
) -> Result<Done, StepError> {
    let command = shown(command);
    if let (Some(0), Some(seen)) = (code, &transcript.seen) {
        return Err(StepError::Failed(format!(
            "`{command}` exited 0 but printed {seen:?}, which means it did nothing; {}",
            transcript.tail_text()
        )));
    }
    match code {
        Some(0) => Ok(Done {
            detail: Some(format!("`{command}` exited 0")),
            outputs: Outputs {
                more: [("tail".to_string(), transcript.tail().into())].into(),
                ..Outputs::default()
            },
            ..Done::default()
        }),
        Some(code) => Err(StepError::Failed(format!(
            "`{command}` exited with code {code}; {}",
            transcript.tail_text()
        ))),
        None => Err(StepError::Failed(format!(
            "`{command}` did not finish within {} ({timed_out}); {}",
            humantime::format_duration(timeout),
            transcript.tail_text()
        ))),
    }
}

/// Runs a command to its end or its timeout. `Ok(Some(code))` when it ended, `Ok(None)` when
/// the time ran out (the caller stops what runs it).
pub async fn bounded<F>(timeout: Duration, run: F) -> Result<Option<i64>, StepError>
where
    F: std::future::Future<Output = Result<i64, EngineError>>,
{
    match tokio::time::timeout(timeout, run).await {
        Ok(result) => Ok(Some(result?)),
        Err(_) => Ok(None),
    }
}

/// A command line as the report shows it.
pub fn shown(command: &[String]) -> String {
    secrets::redact(&shell_words::join(command))
}
