//! The backup at the storage's speed for a database server only the product uses: its data
//! volume copied once before any downtime ([`PreCopy`]), then, in the window, only what
//! changed since ([`VolumeSnapshot`], the server stopped for that moment), so that the window
//! does not grow with the database. Going back copies back only what the new version wrote,
//! which is set aside on the volume until the old version serves. The portable backup is
//! written from the copy once the new version serves ([`super::SnapshotBackup`]).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::snapshot::{dumped_instead, taken};
use super::{took, Action, Backup, Cx, Done, Outputs, StepError, Traits};
use crate::backup::volume_copy::{self, VolumeCopy};
use crate::backup::{self, DatabaseTarget};
use crate::plan::{Plan, Slot};

/// The first pass, before any downtime, while the server serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreCopy {
    /// The application whose database it is.
    pub slot: Slot,
    pub database: DatabaseTarget,
    pub copy: VolumeCopy,
}

/// The second pass, in the window: the server stopped, the changes copied, the server started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VolumeSnapshot {
    /// The backup the copy stands for; taken as it is (a dump, in the window) when the copy
    /// fails.
    pub backup: Backup,
    pub copy: VolumeCopy,
}

#[async_trait]
impl Action for PreCopy {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "copy the volume {} of the database server {} of {} into {} while it serves (a first pass; the window copies only what changed since)",
            self.copy.volume,
            self.database.container,
            plan.label(&self.slot),
            self.copy.copy
        )
    }

    fn traits(&self) -> Traits {
        Traits::default()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let clock = tokio::time::Instant::now();
        volume_copy::pass(cx.engine, &self.database, &self.copy, "precopy")
            .await
            .map_err(StepError::from)?;
        Ok(Done::said(format!(
            "copied {} into {} in {}",
            self.copy.volume,
            self.copy.copy,
            took(clock)
        )))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("remove the copy {}", self.copy.copy))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        volume_copy::remove(cx.engine, &self.database, &self.copy)
            .await
            .map_err(StepError::from)?;
        Ok(None)
    }
}

impl VolumeSnapshot {
    fn database(&self) -> Result<&DatabaseTarget, StepError> {
        self.backup
            .target
            .database
            .as_ref()
            .ok_or_else(|| StepError::Failed("the backup has no database to copy".into()))
    }

    /// Starts the server (again) and waits until it answers the product's user.
    async fn serve(&self, cx: &Cx<'_>) -> Result<(), StepError> {
        let db = self.database()?;
        cx.engine.start(&db.container).await?;
        let (app, known) = self.backup.app(cx).await?;
        let app = backup::App {
            container: &app,
            known: known.as_ref(),
        };
        volume_copy::answers(cx.engine, app, db)
            .await
            .map_err(StepError::from)
    }

    /// Stops the server for a pass, and runs it.
    async fn pass(&self, cx: &Cx<'_>, op: &str) -> Result<(), StepError> {
        let db = self.database()?;
        cx.engine.stop(&db.container, None).await?;
        volume_copy::pass(cx.engine, db, &self.copy, op)
            .await
            .map_err(StepError::from)
    }
}

#[async_trait]
impl Action for VolumeSnapshot {
    fn describe(&self, plan: &Plan) -> String {
        let db = self.backup.target.database.as_ref();
        format!(
            "snapshot the {} database {} of {} as the volume {}: its server {} stopped while what changed since the first pass is copied, then started again (the portable backup is written from the copy once the new version serves)",
            db.map(|d| d.engine.name()).unwrap_or_default(),
            db.map(|d| d.name.as_str()).unwrap_or_default(),
            plan.label(&self.backup.slot),
            self.copy.copy,
            db.map(|d| d.container.as_str()).unwrap_or_default(),
        )
    }

    fn traits(&self) -> Traits {
        self.backup.traits()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let clock = tokio::time::Instant::now();
        match self.pass(cx, "sync").await {
            Ok(()) => {
                self.serve(cx).await?;
                Ok(taken(&self.copy.copy, clock))
            }
            // A copy that failed (the storage filled) leaves the data as it was: the server
            // serves again and the dump takes its place.
            Err(e) => {
                tracing::warn!(
                    "the database's volume could not be copied ({e}): dumping it instead"
                );
                self.serve(cx).await?;
                dumped_instead(&self.backup, cx, &e.to_string()).await
            }
        }
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!(
            "if a later step may have changed the data of {}, stop its database server and copy back from {} what changed (the changed files kept aside on the volume as {} until the old version serves); start the server",
            plan.label(&self.backup.slot),
            self.copy.copy,
            self.copy.aside()
        ))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        if outputs.is_some_and(|o| o.more.contains_key("backup")) {
            return self.backup.undo(cx, outputs).await;
        }
        let db = self.database()?;
        if !cx.data_touched {
            // Killed in the pass: its one-shot goes, the server serves again.
            cx.engine
                .remove(&format!("{}-cutover-copy", db.container))
                .await?;
            self.serve(cx).await?;
            return Ok(None);
        }
        let lost = |e: StepError| {
            StepError::Failed(format!(
                "the copy {} of the database server {} (its data from before the upgrade) could not be put back: {e}; it stays there: once the server's engine answers, `cutover recover` puts it back",
                self.copy.copy, db.container
            ))
        };
        if !volume_copy::exists(cx.engine, &self.copy)
            .await
            .map_err(|e| lost(StepError::from(e)))?
        {
            return Err(StepError::Failed(format!(
                "the data may have changed, and the copy {} is not on the engine",
                self.copy.copy
            )));
        }
        self.pass(cx, "back").await.map_err(lost)?;
        self.serve(cx).await.map_err(lost)?;
        Ok(Some(format!(
            "put the database {} back from the copy {}: what the new version changed on its server {} copied back (kept aside as {} until the old version serves)",
            db.name,
            self.copy.copy,
            db.container,
            self.copy.aside()
        )))
    }

    async fn settle(&self, cx: &Cx<'_>) -> Result<Option<String>, StepError> {
        let db = self.database()?;
        volume_copy::pass(cx.engine, db, &self.copy, "settle")
            .await
            .map_err(StepError::from)?;
        volume_copy::remove(cx.engine, db, &self.copy)
            .await
            .map_err(StepError::from)?;
        Ok(Some(format!(
            "removed {} and the files the new version wrote",
            self.copy.copy
        )))
    }
}
