//! Where the runs of one cluster spread over hosts wait for each other. Its vendors stop every
//! node on the database before the schema changes, then run the new version on one node, which
//! migrates, and only then the others (see `crate::discover::clusters`). Each host's run is its
//! own plan and journal; these steps are where they meet, through gates this process holds:
//! - the first node's run, before it stops anything, waits until every other node is stopped;
//! - each other node's run, once its node is stopped, waits until the first node serves the new
//!   version on the migrated database, then for its turn, one node after the other.
//!
//! An old node is never started on a database the first node moved on: a node whose new
//! version fails then, or whose run is recovered by another process (which cannot tell what the
//! first node did), is left stopped, needing attention, while the first node serves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{Action, Cx, Done, Outputs, StepError, Traits};
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Gate {
    /// The cluster's run in the controlling process.
    pub cluster: String,
    /// The first node, `HOST/NAME`, which migrates.
    pub first: String,
    /// This run's node, `HOST/NAME`.
    pub node: String,
}

impl Gate {
    fn is_first(&self) -> bool {
        self.node == self.first
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
            cluster.state.send_modify(|s| s.first_passed = true);
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
                "the first node {} failed: {}",
                self.first, why.message
            ))),
            None => Ok(Done::said(format!(
                "{} serves the new version; {}'s turn",
                self.first, self.node
            ))),
        }
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        (!self.is_first()).then(|| {
            format!(
                "go on back to {}'s old version only if {} left the database as it was",
                self.node, self.first
            )
        })
    }

    async fn undo(
        &self,
        _cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let left_alone = Cluster::find(&self.cluster).is_some_and(|c| c.database_as_it_was());
        match left_alone {
            true => Ok(None),
            false => Err(StepError::Failed(format!(
                "{} may have moved the database on, where {}'s old version is not made to run: it is left stopped while {} serves; bring it to the new version by hand once the cause is fixed (`cutover history` on both hosts tells what each run did)",
                self.first, self.node, self.first
            ))),
        }
    }
}

/// How the first node's run ended, as the other nodes' gates need it.
#[derive(Debug, Clone)]
pub struct FirstFailed {
    pub message: String,
    /// Its rollback put the database back as it was (or it never changed it).
    pub database_as_it_was: bool,
}

#[derive(Debug, Clone, Default)]
struct State {
    followers: Vec<String>,
    stopped: BTreeSet<String>,
    /// Why the first node must not go on: another node's run ended before its node stopped.
    aborted: Option<String>,
    /// Whether the first node went past its gate: from then on it may change the database.
    first_passed: bool,
    first_failed: Option<FirstFailed>,
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
            .expect("the sender lives as long as the cluster")
            .clone();
        state
    }

    fn stopped(&self, node: &str) {
        self.state.send_modify(|s| {
            s.stopped.insert(node.to_string());
        });
    }

    fn database_as_it_was(&self) -> bool {
        let state = self.state.borrow();
        !state.first_passed
            || state
                .first_failed
                .as_ref()
                .is_some_and(|f| f.database_as_it_was)
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
    pub fn first_ended(&self, failed: Option<FirstFailed>) {
        self.state.send_modify(|s| match failed {
            Some(failed) => s.first_failed = Some(failed),
            None => s.turn = s.followers.first().cloned(),
        });
    }
}
