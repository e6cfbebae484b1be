//! Where the runs of one cluster spread over hosts wait for each other. Its vendors stop every
//! node on the database before the schema changes, then run the new version on one node, which
//! migrates, and only then the others (see the clusters over hosts, in `discover`). Each host's run is its
//! own plan and journal; these steps are where they meet, through gates this process holds:
//! - the first node's run, before it stops anything, waits until every other node is stopped;
//! - each other node's run, once its node is stopped, waits until the first node serves the new
//!   version on the migrated database, then for its turn, one node after the other.
//!
//! An old node is never started on a database the first node moved on: a node whose new
//! version fails then is left stopped, needing attention, while the first node serves. What the
//! first node did to the database is kept in a [`ClusterRecord`] beside its journal, so that `recover`
//! in another process can tell too: it puts another node back only once the first node's run
//! has put the database back (or never touched it), and waits while that run is unfinished.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Action, Cx, Done, Outputs, Runs, StepError, Traits};
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gate {
    /// The cluster's run in the controlling process.
    pub cluster: String,
    /// The first node, `HOST/NAME`, which migrates.
    pub first: String,
    /// This run's node, `HOST/NAME`.
    pub node: String,
    /// The cluster run's [`ClusterRecord`].
    pub record: PathBuf,
}

impl Gate {
    fn is_first(&self) -> bool {
        self.node == self.first
    }

    /// For another node's run: the first node, while its run may still change the database
    /// and has not ended (an interrupted run not yet recovered), so that this one's recovery
    /// waits for it.
    pub fn waits_for(&self, runs: &dyn Runs) -> Option<&str> {
        (!self.is_first() && ClusterRecord::read(&self.record, runs) == Moves::Unfinished)
            .then_some(self.first.as_str())
    }
}

#[async_trait]
impl Action for Gate {
    fn describe(&self, _plan: &Plan) -> String {
        match self.is_first() {
            true => "wait until every other node of the cluster is stopped".into(),
            false => format!(
                "wait until {} serves the new version on the migrated database, then for this node's turn",
                self.first
            ),
        }
    }

    fn traits(&self) -> Traits {
        Traits {
            critical_undo: !self.is_first(),
            ..Traits::default()
        }
    }

    async fn perform(&self, _cx: &Cx<'_>) -> Result<Done, StepError> {
        let Some(cluster) = Cluster::find(&self.cluster) else {
            return Err(StepError::Failed(format!(
                "the cluster's other runs are not in this process (cluster run {})",
                self.cluster
            )));
        };
        if self.is_first() {
            let state = cluster
                .wait(|s| s.aborted.is_some() || s.all_stopped())
                .await;
            if let Some(why) = state.aborted {
                return Err(StepError::Failed(why));
            }
            ClusterRecord::write(&self.record, Moves::Moving).map_err(StepError::Failed)?;
            return Ok(Done::said(format!(
                "stopped: {}",
                state.followers.join(", ")
            )));
        }
        cluster.stopped(&self.node);
        let node = self.node.clone();
        let state = cluster
            .wait(move |s| s.first_failed.is_some() || s.turn.as_deref() == Some(node.as_str()))
            .await;
        match state.first_failed {
            Some(why) => Err(StepError::Failed(format!(
                "the first node {} failed: {why}",
                self.first
            ))),
            None => Ok(Done::said(format!(
                "{} serves the new version; {}'s turn",
                self.first, self.node
            ))),
        }
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(match self.is_first() {
            true => "record that the database is as it was".into(),
            false => format!(
                "go on back to {}'s old version only if {} left the database as it was",
                self.node, self.first
            ),
        })
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        // The first node's later steps are undone by now: the database is back.
        if self.is_first() {
            return ClusterRecord::write(&self.record, Moves::PutBack)
                .map(|()| None)
                .map_err(StepError::Failed);
        }
        match ClusterRecord::read(&self.record, cx.runs) {
            Moves::Untouched | Moves::PutBack => Ok(None),
            Moves::Moving | Moves::Unfinished | Moves::Moved => Err(StepError::Failed(format!(
                "{} may have moved the database on, where {}'s old version is not made to run: it is left stopped while {} serves; bring it to the new version by hand once the cause is fixed (`cutover history` on both hosts tells what each run did)",
                self.first, self.node, self.first
            ))),
        }
    }
}

/// What the first node's run did to the database, as its [`ClusterRecord`] tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Moves {
    /// Not past its gate: the database is as it was.
    Untouched,
    /// Past its gate: it may have changed the database.
    Moving,
    /// Its rollback undid everything after its gate: the database is as it was.
    PutBack,
    /// It serves the new version on the database it moved on.
    Moved,
    /// Moving, and its run has not ended: an interrupted run to recover first.
    Unfinished,
}

/// A cluster run's record of the first node's run, beside that run's journal (`clusters/` in
/// its host's state directory), written at each of its turns and flushed to disk.
#[derive(Debug, Serialize, Deserialize)]
pub struct ClusterRecord {
    /// The first node's container on its host.
    pub first: String,
    pub moves: Moves,
}

impl ClusterRecord {
    /// Where the record of the cluster run `cluster`, whose first node is `first` on the host
    /// of `state`, is kept.
    pub fn path(state: &Path, cluster: &str) -> PathBuf {
        let file: String = cluster
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        state.join("clusters").join(format!("{file}.json"))
    }

    /// A new record: the first node's run has not begun.
    pub fn create(path: &Path, first: &str) -> Result<(), String> {
        if let Some(dir) = path.parent() {
            crate::private::dir(dir).map_err(|e| e.to_string())?;
        }
        let record = ClusterRecord {
            first: first.to_string(),
            moves: Moves::Untouched,
        };
        Self::put(path, &record)
    }

    pub fn write(path: &Path, moves: Moves) -> Result<(), String> {
        let mut record: ClusterRecord = Self::load(path)?;
        record.moves = moves;
        Self::put(path, &record)
    }

    fn put(path: &Path, record: &ClusterRecord) -> Result<(), String> {
        let text = serde_json::to_string(record).map_err(|e| e.to_string())?;
        crate::compose::edit::replace(path, &text)
    }

    fn load(path: &Path) -> Result<ClusterRecord, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// What the first node's run did; a record that cannot be read tells nothing, and counts as
    /// moved. Moving becomes [`Moves::Unfinished`] while its run is one to recover, and
    /// [`Moves::Moved`] once it ended without putting the database back.
    pub fn read(path: &Path, runs: &dyn Runs) -> Moves {
        let Ok(record) = Self::load(path) else {
            return Moves::Moved;
        };
        if record.moves != Moves::Moving {
            return record.moves;
        }
        let unfinished = path
            .parent()
            .and_then(Path::parent)
            .map(|state| runs.unfinished(state, &record.first));
        match unfinished {
            Some(Ok(false)) => Moves::Moved,
            _ => Moves::Unfinished,
        }
    }
}

#[derive(Debug, Clone, Default)]
struct State {
    followers: Vec<String>,
    stopped: BTreeSet<String>,
    /// Why the first node must not go on: another node's run ended before its node stopped.
    aborted: Option<String>,
    first_failed: Option<String>,
    /// The node whose run may start its new version now.
    turn: Option<String>,
}

impl State {
    fn all_stopped(&self) -> bool {
        self.followers.iter().all(|f| self.stopped.contains(f))
    }
}

/// One cluster's gates, held by the process that runs its nodes, found by the steps through
/// their cluster's name.
pub struct Cluster {
    name: String,
    state: watch::Sender<State>,
}

fn registry() -> &'static Mutex<BTreeMap<String, Arc<Cluster>>> {
    static CLUSTERS: OnceLock<Mutex<BTreeMap<String, Arc<Cluster>>>> = OnceLock::new();
    CLUSTERS.get_or_init(Default::default)
}

impl Cluster {
    /// Gates for a run whose other nodes are `followers`, in the order they start; dropped from
    /// the registry when the returned value is.
    pub fn open(name: &str, followers: Vec<String>) -> Arc<Cluster> {
        let cluster = Arc::new(Cluster {
            name: name.to_string(),
            state: watch::Sender::new(State {
                followers,
                ..State::default()
            }),
        });
        registry()
            .lock()
            .expect("cluster registry")
            .insert(name.to_string(), cluster.clone());
        cluster
    }

    pub fn close(&self) {
        registry()
            .lock()
            .expect("cluster registry")
            .remove(&self.name);
    }

    fn find(name: &str) -> Option<Arc<Cluster>> {
        registry()
            .lock()
            .expect("cluster registry")
            .get(name)
            .cloned()
    }

    async fn wait(&self, ready: impl Fn(&State) -> bool) -> State {
        let mut rx = self.state.subscribe();
        let state = rx
            .wait_for(|s| ready(s))
            .await
            .expect("the sender lives as long as the cluster");
        state.clone()
    }

    fn stopped(&self, node: &str) {
        self.state.send_modify(|s| {
            s.stopped.insert(node.to_string());
        });
    }

    /// A node's run ended: before its node stopped, the first node must not go on; after its
    /// turn, the next node's comes.
    pub fn node_ended(&self, node: &str, message: &str) {
        self.state.send_modify(|s| {
            if !s.stopped.contains(node) && s.aborted.is_none() {
                s.aborted = Some(format!("{node} did not stop: {message}"));
            }
            if s.turn.as_deref() == Some(node) {
                let next = s.followers.iter().skip_while(|f| *f != node).nth(1);
                s.turn = next.cloned();
            }
        });
    }

    /// The first node's run ended: the other nodes start their new version one by one, or go
    /// back.
    pub fn first_ended(&self, failed: Option<String>) {
        self.state.send_modify(|s| match failed {
            Some(failed) => s.first_failed = Some(failed),
            None => s.turn = s.followers.first().cloned(),
        });
    }
}
