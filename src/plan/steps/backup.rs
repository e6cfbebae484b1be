//! A backup of the application's data before the upgrade can change it; its undo restores it
//! when a step after it (a migration, the new version's start) may have changed the data.

use std::path::PathBuf;

use crate::engine::Container;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{took, Action, Cx, Done, Outputs, StepError, Traits};
use crate::backup::{self, BackupTarget};
use crate::engine::facts::Facts;
use crate::engine::inspect_required;
use crate::plan::{Plan, Slot};
use crate::size::human_bytes;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    /// The application, stopped (or running, for an online backup).
    pub slot: Slot,
    pub target: BackupTarget,
    /// Where backups live: a folder per container under it.
    pub root: PathBuf,
    /// How many backups of the container to keep.
    pub keep: usize,
    pub online: bool,
    /// The slot's member is a Swarm service, not a container (see [`Backup::app`]).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub service: bool,
    #[serde(skip)]
    pub known: Known,
    /// Why the database is dumped here rather than copied on its server, where it could have
    /// been (see [`super::Snapshot`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dumped_because: Option<String>,
}

/// What the run read of a Swarm service's settings through a running task before it scaled the
/// service to 0 (a password in a Swarm secret only a task can read): in memory only, never
/// journaled or printed. A recovering run has none, and reads the service's spec instead.
#[derive(Clone, Default)]
pub struct Known(pub Option<std::sync::Arc<Facts>>);

impl std::fmt::Debug for Known {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(_) => f.write_str("Known(settings read before the run)"),
            None => f.write_str("Known(none)"),
        }
    }
}

#[async_trait]
impl Action for Backup {
    fn describe(&self, plan: &Plan) -> String {
        let when = if self.online {
            "while it runs"
        } else {
            "while it is stopped"
        };
        let why = match &self.dumped_because {
            Some(why) => format!("; dumped, not snapshotted: {why}"),
            None => String::new(),
        };
        format!(
            "back up {} of {} {when} into {} (verified; the last {} kept{why})",
            self.target.describe(),
            self.label(plan),
            self.root.join(&self.slot.member).display(),
            self.keep
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            critical_undo: true,
            backs_up: true,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let (app, known) = self.app(cx).await?;
        let dir = self.root.join(&self.slot.member);
        let clock = tokio::time::Instant::now();
        let (manifest, path) = backup::take(
            cx.engine,
            backup::App {
                container: &app,
                known: known.as_ref(),
            },
            &self.target,
            &dir,
            self.online,
            &self.run(cx),
            cx.progress,
            None,
        )
        .await
        .map_err(StepError::from)?;
        let removed =
            backup::prune(&self.root, &self.slot.member, self.keep).map_err(StepError::from)?;
        let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
        let pruned = match removed.len() {
            0 => String::new(),
            n => format!("; {n} older backup(s) removed"),
        };
        Ok(Done {
            detail: Some(format!(
                "backup {} ({}, verified) in {}{pruned}",
                manifest.id,
                human_bytes(bytes),
                took(clock)
            )),
            outputs: Outputs {
                more: [("backup".to_string(), path.display().to_string().into())].into(),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!(
            "restore {} of {} from the backup, if a later step may have changed it",
            self.target.describe(),
            self.label(plan)
        ))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        if !cx.data_touched {
            return Ok(None);
        }
        let journaled = outputs
            .and_then(|o| o.more.get("backup"))
            .and_then(|p| p.as_str())
            .map(PathBuf::from);
        let path = match journaled {
            Some(path) => path,
            // Killed before it journaled where: the backup says which run took it.
            None => {
                let run = self.run(cx);
                let found = backup::list(&self.root, Some(&self.slot.member))
                    .map_err(StepError::from)?
                    .into_iter()
                    .find(|b| b.manifest.run == run);
                found.map(|b| b.path).ok_or_else(|| {
                    StepError::Failed(
                        "the data may have changed, and the backup this run took cannot be found"
                            .into(),
                    )
                })?
            }
        };
        let (app, known) = self.app(cx).await?;
        let manifest = backup::restore(
            cx.engine,
            backup::App {
                container: &app,
                known: known.as_ref(),
            },
            &path,
        )
        .await
        .map_err(StepError::from)?;
        Ok(Some(format!(
            "restored {} from backup {} ({})",
            self.target.describe(),
            manifest.id,
            path.display()
        )))
    }
}

impl Backup {
    /// The application's container, whose settings and files say how to reach the database,
    /// and those settings when they cannot be read from it. A Swarm service's is a running task
    /// of it, else (scaled to 0) its spec as a container would hold it, with what the run read
    /// before it scaled the service, or the spec's environment alone when recovering.
    pub(super) async fn app(&self, cx: &Cx<'_>) -> Result<(Container, Option<Facts>), StepError> {
        if !self.service {
            return Ok((inspect_required(cx.engine, cx.id(&self.slot)?).await?, None));
        }
        let name = &self.slot.member;
        let tasks = crate::engine::service_containers(cx.engine, name).await?;
        if let Some(task) = tasks.into_iter().find(|c| c.is_running()) {
            return Ok((task, None));
        }
        let service = cx
            .engine
            .service(name)
            .await?
            .ok_or_else(|| StepError::Failed(format!("the Swarm service {name} is gone")))?;
        let app = crate::engine::service_as_container(cx.engine, &service).await?;
        let facts = match &self.known.0 {
            Some(facts) => (**facts).clone(),
            None => Facts {
                env: app.env().to_vec(),
                ..Facts::default()
            },
        };
        Ok((app, Some(facts)))
    }

    fn label(&self, plan: &Plan) -> String {
        match self.service {
            true => format!("the Swarm service {}", self.slot.member),
            false => plan.label(&self.slot),
        }
    }

    /// This step of this run, as the manifest records it.
    pub(super) fn run(&self, cx: &Cx<'_>) -> String {
        let journal = cx
            .files
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        format!("{journal}#{}", self.slot)
    }
}
