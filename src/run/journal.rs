//! The state directory: one journal per run, and one lock per container.
//!
//! A journal is a JSON-lines file written with an fsync after every record: the plan first,
//! then each step as it starts and ends, each undo, and the outcome. A journal without an
//! outcome belongs to a run that was killed, which `cutover recover` finishes or undoes.
//! Records are written from typed data that holds no secret value (commands keep their
//! `${VAR}` templates, free text is scrubbed where it is made), never masked as a whole line:
//! masking a line would turn a name, a number or a boolean that happens to equal a secret into
//! `***`, and the journal could no longer be read back.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::clock;
use crate::plan::steps::Outputs;
use crate::plan::Plan;

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("state directory {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Dir(#[from] crate::private::DirError),
    #[error("another cutover run is working on {what} right now ({holder}; lock {path}); wait for it to finish")]
    Busy {
        what: String,
        /// Who holds the lock, as the holder wrote it in the lock file.
        holder: String,
        path: PathBuf,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where state lives when neither `--state-dir` nor `CUTOVER_STATE_DIR` says: the system's
/// state directory for root, the XDG one otherwise.
pub fn default_state_dir() -> PathBuf {
    let root = fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    if root {
        return PathBuf::from("/var/lib/cutover");
    }
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state"));
    xdg.or(home)
        .unwrap_or_else(std::env::temp_dir)
        .join("cutover")
}

pub struct StateDir {
    root: PathBuf,
}

/// Held for as long as a run works on a container; the operating system releases it when the
/// process dies, however it dies.
#[derive(Debug)]
pub struct ContainerLock {
    _file: File,
}

impl StateDir {
    /// Creates the state directory and the ones it holds, refusing any that other users could
    /// write (see [`crate::private::dir`]): `recover` acts as root on what the journals say.
    pub fn open(root: &Path) -> Result<StateDir, JournalError> {
        for dir in [root.to_path_buf(), root.join("runs"), root.join("locks")] {
            crate::private::dir(&dir)?;
        }
        Ok(StateDir {
            root: root.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.root
    }

    pub fn lock(&self, container: &str) -> Result<ContainerLock, JournalError> {
        self.lock_file(&format!("{container}.lock"), container)
    }

    /// The host-wide lock of `cutover auto`, so two passes never overlap. Its file name starts
    /// with a dot, which no container name can.
    pub fn lock_auto(&self) -> Result<ContainerLock, JournalError> {
        self.lock_file(".auto.lock", "this host's `cutover auto` pass")
    }

    fn lock_file(&self, file_name: &str, what: &str) -> Result<ContainerLock, JournalError> {
        let path = self.root.join("locks").join(file_name);
        let file = crate::private::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(io_error(&path))?;
        match file.try_lock() {
            Ok(()) => {
                // Who holds it, for the refusal of a second run: best effort, the lock is what
                // counts.
                let holder = format!(
                    "held by cutover process {} since {}",
                    std::process::id(),
                    humantime::format_rfc3339_seconds(clock::now())
                );
                let _ = file
                    .set_len(0)
                    .and_then(|()| (&file).write_all(holder.as_bytes()));
                Ok(ContainerLock { _file: file })
            }
            Err(TryLockError::WouldBlock) => Err(JournalError::Busy {
                what: what.to_string(),
                holder: fs::read_to_string(&path)
                    .ok()
                    .filter(|h| !h.is_empty())
                    .unwrap_or_else(|| "held by a cutover process".into()),
                path,
            }),
            Err(TryLockError::Error(e)) => Err(JournalError::Io { path, source: e }),
        }
    }

    /// Starts the journal of a new run with its plan as the first record.
    pub fn begin(&self, plan: &Plan) -> Result<Journal, JournalError> {
        let millis = clock::millis(clock::now());
        let path = self.root.join("runs").join(format!(
            "{millis}-{}-{}.jsonl",
            plan.container,
            plan.kind.word()
        ));
        let file = crate::private::options()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let runs = self.root.join("runs");
        File::open(&runs)
            .and_then(|d| d.sync_all())
            .map_err(io_error(&runs))?;
        let mut journal = Journal { file, path };
        journal.record(Event::Begin { plan: plan.clone() })?;
        Ok(journal)
    }

    /// Reopens an interrupted run's journal so recovery can append to it. A last record the
    /// crash cut short (power lost mid-write) is cut off first: a record appended after it
    /// would leave it in the middle, where it would make the journal unreadable.
    pub fn resume(&self, run: &Run) -> Result<Journal, JournalError> {
        let text = fs::read(&run.path).map_err(io_error(&run.path))?;
        let whole = text.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let file = OpenOptions::new()
            .append(true)
            .open(&run.path)
            .map_err(io_error(&run.path))?;
        if whole < text.len() {
            file.set_len(whole as u64)
                .and_then(|()| file.sync_data())
                .map_err(io_error(&run.path))?;
        }
        Ok(Journal {
            file,
            path: run.path.clone(),
        })
    }

    /// Every journal, oldest first: the runs they tell, and those that cannot be read or that
    /// another user could have written (see [`crate::private::exposure`]), which are never acted
    /// on: `recover` would undo and redo, as root, whatever such a journal said.
    pub fn journals(&self) -> Result<Journals, JournalError> {
        let dir = self.root.join("runs");
        let mut paths: Vec<PathBuf> = fs::read_dir(&dir)
            .map_err(io_error(&dir))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .collect();
        paths.sort();
        let mut journals = Journals::default();
        for path in paths {
            let meta = fs::metadata(&path).map_err(io_error(&path))?;
            if let Some(exposure) = crate::private::exposure(&meta) {
                journals.unreadable.push(Unreadable {
                    container: container_of(&path),
                    why: exposure.to_string(),
                    exposure: Some(exposure),
                    path,
                });
                continue;
            }
            // Bytes, not text: a record torn inside a character is not UTF-8, and it must not
            // hide the records before it (nor a damaged journal the others).
            let text = fs::read(&path).map_err(io_error(&path))?;
            match Run::read(path.clone(), &text) {
                Ok(Some(run)) => journals.runs.push(run),
                Ok(None) => {}
                Err(why) => journals.unreadable.push(Unreadable {
                    container: container_of(&path),
                    path,
                    why,
                    exposure: None,
                }),
            }
        }
        Ok(journals)
    }

    /// Every run that can be read, oldest first.
    pub fn runs(&self) -> Result<Vec<Run>, JournalError> {
        Ok(self.journals()?.runs)
    }

    /// Runs that left a service in doubt: interrupted ones, and ones that ended needing
    /// attention (recovery tries putting them back again).
    pub fn unfinished(&self, container: Option<&str>) -> Result<Vec<Run>, JournalError> {
        Ok(self
            .runs()?
            .into_iter()
            .filter(|r| matches!(r.outcome, None | Some(Outcome::NeedsAttention)))
            .filter(|r| container.is_none_or(|c| r.plan.involves(c)))
            .collect())
    }

    /// Journals that cannot be read, of runs on `container` (as their file names say) or of
    /// all: what they did is unknown, so their containers may be down.
    pub fn unreadable(&self, container: Option<&str>) -> Result<Vec<Unreadable>, JournalError> {
        Ok(self
            .journals()?
            .unreadable
            .into_iter()
            .filter(|u| container.is_none_or(|c| u.container == c))
            .collect())
    }
}

/// What the state directory's journals hold.
#[derive(Debug, Default)]
pub struct Journals {
    pub runs: Vec<Run>,
    pub unreadable: Vec<Unreadable>,
}

/// A journal cutover cannot read (damaged, or written by a version whose records it does not
/// know) or will not trust (another user could have written it). Whatever the run did is
/// unknown, so it is reported, never taken for nothing to do.
#[derive(Debug, Clone, Serialize)]
pub struct Unreadable {
    pub path: PathBuf,
    /// The container the run began on, as the journal's file name says.
    pub container: String,
    pub why: String,
    /// How another user could have written it, when that is why it is not read.
    #[serde(skip)]
    pub exposure: Option<crate::private::Exposure>,
}

impl Unreadable {
    /// What to do about it: nobody can tell what its run left behind.
    pub fn advice(&self) -> String {
        let dir = self
            .path
            .parent()
            .map(|p| p.display().to_string())
            .unwrap_or_default();
        let (problem, then) = match &self.exposure {
            None => (
                "cannot be read",
                format!("then move the journal out of {dir}"),
            ),
            Some(exposure) => (
                "is not trusted",
                format!(
                    "then, if the journal is yours, make it yours alone (`{}`) and run recover again, or else move it out of {dir}",
                    exposure.fix(&self.path, 0o600)
                ),
            ),
        };
        format!(
            "the journal {} of a run on {} {problem} ({}), so what that run left is unknown: check its containers (`docker ps -a --filter name={}`), bring the service back by hand if it is down, {then}",
            self.path.display(),
            self.container,
            self.why,
            self.container,
        )
    }
}

/// The container a journal's file name (`MILLIS-CONTAINER-KIND.jsonl`) names.
fn container_of(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_default();
    let rest = stem.split_once('-').map_or(stem.as_str(), |(_, rest)| rest);
    let name = rest.rsplit_once('-').map_or(rest, |(name, _)| name);
    name.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    Started,
    Done,
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The run did what it was asked: the service runs on its target.
    Succeeded,
    /// The run failed after the service went down and put the old container back; the
    /// service runs as before.
    RolledBack,
    /// The run failed before any downtime (a pull, a create, a lost setting) and left the host
    /// as it found it.
    NothingChanged,
    /// A campaign of several hops failed at a later hop and undid that hop only: the service
    /// runs the version of the last hop that succeeded.
    Partial,
    /// The run failed and could not restore a running service: a person must look.
    NeedsAttention,
    /// A check failed after a migration moved the schema on and the new version served, with
    /// no backup to go back with: the old version might refuse the migrated data, so the new
    /// one was kept serving (the old containers kept stopped) for a person to decide.
    KeptNew,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Begin {
        plan: Plan,
    },
    Step {
        stage: usize,
        index: usize,
        phase: StepPhase,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        outputs: Option<Outputs>,
    },
    Undo {
        stage: usize,
        index: usize,
        phase: StepPhase,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        detail: Option<String>,
    },
    End {
        outcome: Outcome,
        message: String,
        #[serde(skip_serializing_if = "Option::is_none", default)]
        downtime_ms: Option<u64>,
        #[serde(default)]
        recovered: bool,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    #[serde(with = "humantime_serde_rfc3339")]
    pub at: SystemTime,
    #[serde(flatten)]
    pub event: Event,
}

pub struct Journal {
    file: File,
    path: PathBuf,
}

impl Journal {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The run's private directory, for copies of files it carries between containers.
    pub fn files_dir(&self) -> PathBuf {
        files_dir(&self.path)
    }

    /// Appends one record and waits until it is on disk.
    pub fn record(&mut self, event: Event) -> Result<(), JournalError> {
        let record = Record {
            at: clock::now(),
            event,
        };
        let line = serde_json::to_string(&record).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: e.into(),
        })?;
        let path = self.path.clone();
        let length = self.file.metadata().map_err(io_error(&path))?.len();
        let written = self
            .file
            .write_all(format!("{line}\n").as_bytes())
            .and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            // Part of the record may be on disk (a full disk): take it back, so that the
            // records written after it, once there is room, stay readable.
            let _ = self.file.set_len(length);
            return Err(io_error(&path)(e));
        }
        Ok(())
    }
}

fn files_dir(journal: &Path) -> PathBuf {
    journal.with_extension("files")
}

/// One step as the journal tells it.
#[derive(Debug, Clone)]
pub struct StepRecord {
    pub started_at: SystemTime,
    pub done: bool,
    pub outputs: Option<Outputs>,
}

/// A run as its journal tells it.
#[derive(Debug, Clone)]
pub struct Run {
    pub path: PathBuf,
    pub started_at: SystemTime,
    pub plan: Plan,
    /// Every step that began, by stage and index.
    pub steps: BTreeMap<(usize, usize), StepRecord>,
    /// Stages the run had decided to undo: a step failed that was not a cleanup, or an undo began.
    pub rolling_back: BTreeSet<usize>,
    pub outcome: Option<Outcome>,
    pub message: Option<String>,
    pub downtime: Option<Duration>,
    pub recovered: bool,
    pub ended_at: Option<SystemTime>,
}

impl Run {
    /// A journal's bytes as a run: `None` when no record was completed (the run was cut short
    /// while writing its plan, before any step began), an error when a record cannot be read.
    /// Only the last line may be incomplete, as a crash mid-write leaves it (even inside a
    /// character): it is skipped, and the records before it tell the story.
    fn read(path: PathBuf, text: &[u8]) -> Result<Option<Run>, String> {
        let torn = !text.is_empty() && !text.ends_with(b"\n");
        let lines: Vec<&[u8]> = match text {
            [] => Vec::new(),
            _ => text
                .strip_suffix(b"\n")
                .unwrap_or(text)
                .split(|b| *b == b'\n')
                .collect(),
        };
        let mut records = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            match serde_json::from_slice::<Record>(line) {
                Ok(record) => records.push(record),
                Err(_) if torn && i + 1 == lines.len() => {}
                Err(e) => return Err(format!("line {}: {e}", i + 1)),
            }
        }
        if records.is_empty() {
            return Ok(None);
        }
        Run::from_records(path, records)
            .map(Some)
            .ok_or_else(|| "its first record is not the plan of a run".to_string())
    }

    fn from_records(path: PathBuf, records: Vec<Record>) -> Option<Run> {
        let mut records = records.into_iter();
        let first = records.next()?;
        let Event::Begin { plan } = first.event else {
            return None;
        };
        let mut run = Run {
            path,
            started_at: first.at,
            plan,
            steps: BTreeMap::new(),
            rolling_back: BTreeSet::new(),
            outcome: None,
            message: None,
            downtime: None,
            recovered: false,
            ended_at: None,
        };
        for record in records {
            match record.event {
                Event::Step {
                    stage,
                    index,
                    phase,
                    outputs,
                    ..
                } => match phase {
                    StepPhase::Started => {
                        run.steps.insert(
                            (stage, index),
                            StepRecord {
                                started_at: record.at,
                                done: false,
                                outputs: None,
                            },
                        );
                    }
                    StepPhase::Done => {
                        if let Some(step) = run.steps.get_mut(&(stage, index)) {
                            step.done = true;
                            step.outputs = outputs;
                        }
                    }
                    StepPhase::Failed => {
                        let step = run.plan.stages.get(stage).and_then(|s| s.steps.get(index));
                        if step.is_some_and(|s| !s.traits().cleanup) {
                            run.rolling_back.insert(stage);
                        }
                    }
                },
                Event::End {
                    outcome,
                    message,
                    downtime_ms,
                    recovered,
                } => {
                    run.outcome = Some(outcome);
                    run.message = Some(message);
                    run.downtime = downtime_ms.map(Duration::from_millis);
                    run.recovered = recovered;
                    run.ended_at = Some(record.at);
                }
                Event::Undo { stage, .. } => {
                    run.rolling_back.insert(stage);
                }
                Event::Begin { .. } => {}
            }
        }
        Some(run)
    }

    /// The stage the run was in when it stopped: the last one any step of which began.
    pub fn current_stage(&self) -> Option<usize> {
        self.steps.keys().map(|(stage, _)| *stage).max()
    }

    /// Indices of the steps of `stage` that began, in order.
    pub fn started(&self, stage: usize) -> Vec<usize> {
        self.steps
            .keys()
            .filter(|(s, _)| *s == stage)
            .map(|(_, i)| *i)
            .collect()
    }
}

/// RFC 3339 timestamps, readable in the journal (and plan files) by people and tools alike.
pub(crate) mod humantime_serde_rfc3339 {
    use std::time::SystemTime;

    use serde::{de::Error, Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_rfc3339_millis(*t).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SystemTime, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_rfc3339(&text).map_err(D::Error::custom)
    }
}

/// The runs of any state directory, as steps ask of them (see [`crate::plan::steps::Runs`]).
pub struct StateDirs;

impl crate::plan::steps::Runs for StateDirs {
    fn unfinished(&self, root: &Path, container: &str) -> Result<bool, String> {
        let state = StateDir::open(root).map_err(|e| e.to_string())?;
        let runs = state
            .unfinished(Some(container))
            .map_err(|e| e.to_string())?;
        Ok(!runs.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::plan::{Kind, Slot};
    use crate::testing::{
        cases, damaged, mutated, said, Damage, Scratch, ARBITRARY, MUTATED, ROUND_TRIP,
    };

    fn plan() -> Plan {
        Plan {
            kind: Kind::Upgrade,
            container: "web".into(),
            members: vec!["web".into(), "worker".into()],
            image_from: "demo:1".into(),
            image_to: "demo:2".into(),
            slots: Default::default(),
            stages: vec![],
            carried: serde_json::Value::Null,
            profile: None,
            task: None,
            notes: Vec::new(),
        }
    }

    #[test]
    fn a_run_without_an_end_is_unfinished_and_keeps_its_steps_and_outputs() {
        let dir = std::env::temp_dir().join(format!("cutover-journal-{}", std::process::id()));
        let state = StateDir::open(&dir).unwrap();
        let mut j = state.begin(&plan()).unwrap();
        let bound = Outputs {
            bind: Some((crate::plan::Slot::new("web", 1), "def".into())),
            ..Outputs::default()
        };
        j.record(Event::Step {
            stage: 0,
            index: 0,
            phase: StepPhase::Started,
            detail: None,
            outputs: None,
        })
        .unwrap();
        j.record(Event::Step {
            stage: 0,
            index: 0,
            phase: StepPhase::Done,
            detail: None,
            outputs: Some(bound.clone()),
        })
        .unwrap();
        j.record(Event::Step {
            stage: 1,
            index: 0,
            phase: StepPhase::Started,
            detail: None,
            outputs: None,
        })
        .unwrap();
        // A record torn by a crash must not hide the ones before it.
        std::fs::OpenOptions::new()
            .append(true)
            .open(j.path())
            .unwrap()
            .write_all(b"{\"at\":\"20")
            .unwrap();
        let runs = state.unfinished(Some("worker")).unwrap();
        assert_eq!(runs.len(), 1, "a run concerns every member of its group");
        let run = &runs[0];
        assert_eq!(run.current_stage(), Some(1));
        assert_eq!(run.started(0), vec![0]);
        assert_eq!(run.steps[&(0, 0)].outputs.as_ref(), Some(&bound));
        assert!(!run.steps[&(1, 0)].done);
        assert!(state.unfinished(Some("other")).unwrap().is_empty());
        // Recovery appends after the torn record cut off, and the journal stays readable.
        let mut resumed = state.resume(run).unwrap();
        resumed
            .record(Event::End {
                outcome: Outcome::RolledBack,
                message: "recovered".into(),
                downtime_ms: None,
                recovered: true,
            })
            .unwrap();
        assert!(state.unreadable(None).unwrap().is_empty());
        assert_eq!(state.runs().unwrap()[0].outcome, Some(Outcome::RolledBack));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A journal as a run writes it: the plan, a step that began and ended with outputs, one
    /// that failed with an engine's words (not all ASCII), its undo, and the end.
    fn written(state: &StateDir) -> PathBuf {
        let mut j = state.begin(&plan()).unwrap();
        let step = |index, phase, detail: Option<&str>, outputs| Event::Step {
            stage: 0,
            index,
            phase,
            detail: detail.map(str::to_string),
            outputs,
        };
        let bound = Outputs {
            bind: Some((Slot::new("web", 1), "def".into())),
            serving_at_ms: Some(1_700_000_000_000),
            ..Outputs::default()
        };
        for event in [
            step(0, StepPhase::Started, None, None),
            step(0, StepPhase::Done, None, Some(bound)),
            step(1, StepPhase::Started, None, None),
            step(
                1,
                StepPhase::Failed,
                Some("pull failed — “demo:2” not found"),
                None,
            ),
            Event::Undo {
                stage: 0,
                index: 0,
                phase: StepPhase::Done,
                detail: None,
            },
            Event::End {
                outcome: Outcome::RolledBack,
                message: "rolled back — web runs demo:1".into(),
                downtime_ms: Some(1500),
                recovered: false,
            },
        ] {
            j.record(event).unwrap();
        }
        j.path().to_path_buf()
    }

    /// What `cutover recover` acts on, after a kill at any byte of a journal's last record or
    /// a bad disk anywhere in it: the run its whole records tell (never a cut record taken for a
    /// whole one, which could make a run look finished), or a journal reported as unreadable by
    /// its file and line, never hiding the other journals. Exhaustive over the offsets.
    #[test]
    fn a_journal_damaged_at_any_byte_reads_its_whole_records_or_is_reported() {
        let scratch = Scratch::new("journal-damaged");
        let state = StateDir::open(scratch.path()).unwrap();
        let path = written(&state);
        let bytes = fs::read(&path).unwrap();
        let ends: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i] == b'\n').collect();
        // The run the first `n` whole records tell.
        let told = |n: usize| {
            (n > 0).then(|| {
                let run = Run::read(path.clone(), &bytes[..=ends[n - 1]]);
                format!("{:?}", run.unwrap().unwrap())
            })
        };
        for (damage, at, text) in damaged(&bytes) {
            fs::write(&path, &text).unwrap();
            let journals = state.journals().unwrap();
            let runs: Vec<String> = journals.runs.iter().map(|r| format!("{r:?}")).collect();
            // The line the damage is on, counted from 0: the records before it are whole.
            let line = ends.iter().filter(|&&end| end < at).count();
            let whole = match damage {
                // Cut just before its newline, a record is whole all the same.
                Damage::Cut if bytes[at] == b'\n' => Some(line + 1),
                Damage::Cut => Some(line),
                // Its newline overwritten, the last record reads as one a crash cut short.
                Damage::Nul | Damage::NotUtf8 if at + 1 == bytes.len() => Some(line),
                Damage::Nul | Damage::NotUtf8 => None,
            };
            match whole {
                Some(whole) => {
                    assert!(journals.unreadable.is_empty(), "{damage:?} at {at}");
                    assert_eq!(runs, told(whole).into_iter().collect::<Vec<_>>());
                    assert_eq!(
                        journals.runs.iter().any(|r| r.outcome.is_some()),
                        whole == ends.len(),
                        "{damage:?} at {at}: only the whole end record ends the run"
                    );
                }
                None => {
                    assert!(runs.is_empty(), "{damage:?} at {at}");
                    assert_eq!(journals.unreadable.len(), 1, "{damage:?} at {at}");
                    let bad = &journals.unreadable[0];
                    assert_eq!(bad.path, path);
                    assert!(
                        bad.why.starts_with(&format!("line {}:", line + 1)),
                        "{damage:?} at {at}: {}",
                        bad.why
                    );
                }
            }
        }
    }

    /// A step's outputs as the runner records them: a bound container, times, and what its
    /// undo needs.
    fn outputs() -> impl Strategy<Value = Option<Outputs>> {
        proptest::option::of(
            (
                proptest::option::of(("[a-z][a-z0-9_.-]{0,12}", any::<u32>(), any::<String>())),
                proptest::option::of(any::<u64>()),
                proptest::option::of(any::<u64>()),
                proptest::collection::btree_map(any::<String>(), any::<String>(), 0..3),
            )
                .prop_map(|(bind, serving_at_ms, settled_ms, more)| Outputs {
                    bind: bind.map(|(member, generation, id)| (Slot::new(&member, generation), id)),
                    serving_at_ms,
                    settled_ms,
                    more: more.into_iter().map(|(k, v)| (k, v.into())).collect(),
                }),
        )
    }

    fn event() -> impl Strategy<Value = Event> {
        let phase =
            proptest::sample::select(vec![StepPhase::Started, StepPhase::Done, StepPhase::Failed]);
        let outcome = proptest::sample::select(vec![
            Outcome::Succeeded,
            Outcome::RolledBack,
            Outcome::NothingChanged,
            Outcome::Partial,
            Outcome::NeedsAttention,
            Outcome::KeptNew,
        ]);
        prop_oneof![
            (
                any::<usize>(),
                any::<usize>(),
                phase.clone(),
                proptest::option::of(any::<String>()),
                outputs()
            )
                .prop_map(|(stage, index, phase, detail, outputs)| Event::Step {
                    stage,
                    index,
                    phase,
                    detail,
                    outputs
                }),
            (
                any::<usize>(),
                any::<usize>(),
                phase,
                proptest::option::of(any::<String>())
            )
                .prop_map(|(stage, index, phase, detail)| Event::Undo {
                    stage,
                    index,
                    phase,
                    detail
                }),
            (
                outcome,
                any::<String>(),
                proptest::option::of(any::<u64>()),
                any::<bool>()
            )
                .prop_map(|(outcome, message, downtime_ms, recovered)| Event::End {
                    outcome,
                    message,
                    downtime_ms,
                    recovered
                }),
        ]
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// A record reads back as it was written, to the millisecond the journal keeps.
        #[test]
        fn a_written_record_reads_back_equal(millis in 0..253_402_300_799_999u64, event in event()) {
            let record = Record { at: SystemTime::UNIX_EPOCH + Duration::from_millis(millis), event };
            let line = serde_json::to_string(&record).unwrap();
            prop_assert!(!line.contains('\n'), "one record, one line");
            let read: Record = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(read.at, record.at);
            prop_assert_eq!(serde_json::to_value(&read.event).unwrap(), serde_json::to_value(&record.event).unwrap());
        }
    }

    /// Whatever a journal holds, reading it tells a run, nothing, or why not.
    fn read_or_said(text: &[u8]) -> Result<(), TestCaseError> {
        if let Err(e) = Run::read(PathBuf::from("runs/1-web-upgrade.jsonl"), text) {
            said(&e)?;
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_bytes_are_a_run_nothing_or_an_error(text in proptest::collection::vec(any::<u8>(), 0..256)) {
            read_or_said(&text)?;
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn a_mutated_journal_is_a_run_nothing_or_an_error(text in mutated(vec![{
            let scratch = Scratch::new("journal-seed");
            let state = StateDir::open(scratch.path()).unwrap();
            String::from_utf8(fs::read(written(&state)).unwrap()).unwrap()
        }])) {
            read_or_said(&text)?;
        }
    }

    #[test]
    fn records_keep_names_and_values_that_equal_a_secret() {
        let dir =
            std::env::temp_dir().join(format!("cutover-journal-typed-{}", std::process::id()));
        let state = StateDir::open(&dir).unwrap();
        // A password that is also the name of the database and its container, as quickstarts
        // have it (a rarer word than `postgres`: the registry is shared by every test).
        crate::secrets::register("pg-quickstart");
        crate::secrets::register_env(&["ANCHORE_OAUTH_TOKEN_EXPIRATION=3600".to_string()]);
        let mut p = plan();
        p.container = "pg-quickstart".into();
        p.members = vec!["pg-quickstart".into()];
        let mut j = state.begin(&p).unwrap();
        j.record(Event::End {
            outcome: Outcome::Succeeded,
            message: "finished".into(),
            downtime_ms: Some(3600),
            recovered: false,
        })
        .unwrap();
        let runs = state.runs().unwrap();
        assert_eq!(runs.len(), 1);
        assert_eq!(runs[0].plan.container, "pg-quickstart");
        assert_eq!(runs[0].downtime, Some(Duration::from_millis(3600)));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_that_cannot_be_read_is_reported_not_skipped() {
        let dir = std::env::temp_dir().join(format!("cutover-journal-bad-{}", std::process::id()));
        let state = StateDir::open(&dir).unwrap();
        let j = state.begin(&plan()).unwrap();
        let path = j.path().to_path_buf();
        // A record damaged in the middle: what happened after it is unknown.
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}{{\"at\": ***}}\n{text}")).unwrap();
        assert!(state.runs().unwrap().is_empty());
        let bad = state.unreadable(Some("web")).unwrap();
        assert_eq!(bad.len(), 1, "named by its file: {bad:?}");
        assert!(bad[0].why.starts_with("line 2:"), "{}", bad[0].why);
        assert!(bad[0].advice().contains("cannot be read"));
        assert!(state.unreadable(Some("worker")).unwrap().is_empty());
        // A first record that is not a plan.
        std::fs::write(&path, "{\"at\":\"2026-01-01T00:00:00Z\",\"event\":\"undo\",\"stage\":0,\"index\":0,\"phase\":\"started\"}\n").unwrap();
        assert_eq!(state.unreadable(None).unwrap().len(), 1);
        // A journal cut short while its plan was written: no step began.
        std::fs::write(&path, "{\"at\":\"2026").unwrap();
        assert!(state.unreadable(None).unwrap().is_empty());
        assert!(state.runs().unwrap().is_empty());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_journal_names_its_container_in_its_file_name() {
        for (file, name) in [
            ("1700000000000-web-upgrade.jsonl", "web"),
            ("1700000000000-my-app-old-rollback.jsonl", "my-app-old"),
            ("17-x.jsonl", "x"),
        ] {
            assert_eq!(container_of(Path::new(file)), name, "{file}");
        }
    }

    #[test]
    fn a_state_directory_other_users_can_write_is_refused() {
        use crate::private::{assert_refuses, chmod};
        let dir = std::env::temp_dir().join(format!("cutover-open-{}", std::process::id()));
        StateDir::open(&dir).unwrap();
        for exposed in [dir.clone(), dir.join("runs"), dir.join("locks")] {
            chmod(&exposed, 0o770);
            assert_refuses(StateDir::open(&dir).err().expect("refused"), &exposed);
            chmod(&exposed, 0o700);
        }
        // A sticky bit, as /tmp has, still lets every user add files.
        chmod(&dir, 0o1777);
        assert!(StateDir::open(&dir).is_err());
        chmod(&dir, 0o755);
        StateDir::open(&dir).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_second_lock_on_one_container_is_refused() {
        let dir = std::env::temp_dir().join(format!("cutover-lock-{}", std::process::id()));
        let state = StateDir::open(&dir).unwrap();
        let held = state.lock("web").unwrap();
        assert!(matches!(state.lock("web"), Err(JournalError::Busy { .. })));
        assert!(state.lock("db").is_ok());
        drop(held);
        assert!(state.lock("web").is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
