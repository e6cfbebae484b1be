//! The backup at the storage's speed: while the product is stopped, its PostgreSQL database is
//! copied on its own server ([`crate::backup::snapshot`]) instead of dumped, so that the window
//! does not grow with the data; once the new version serves, the portable backup (the dump
//! `cutover restore` takes) is written from the copy, which nobody writes, and the copy dropped.
//! Going back puts the copy in the database's place by renaming, in seconds, where a dump's
//! restore reloads everything; the migrated database is set aside and dropped only once the old
//! version serves again.

use std::path::PathBuf;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{took, Action, Backup, Cx, Done, Outputs, StepError, Traits};
use crate::backup::volume_copy::{self, VolumeCopy};
use crate::backup::{self, snapshot, DatabaseTarget};
use crate::engine::inspect_required;
use crate::plan::Plan;

/// The snapshot of one member's database, in the window.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// The backup the snapshot stands for; taken as it is (a dump, in the window) when the
    /// server will not copy the database then (another session is still connected to it).
    pub backup: Backup,
    /// The copy's name, and the migrated database's once set aside: fixed by the plan, so that
    /// recovery finds both.
    pub name: String,
    pub aside: String,
    /// Who owns the database, and so the copy.
    pub owner: String,
    /// `STRATEGY FILE_COPY`, or nothing before PostgreSQL 15.
    pub strategy: String,
}

/// The portable backup written from the snapshot once the new version serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SnapshotBackup {
    pub backup: Backup,
    pub name: String,
    /// The snapshot is a copy of the server's data volume, read through a throwaway server of
    /// the same image (see [`super::VolumeSnapshot`]), not a database on the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volume: Option<VolumeCopy>,
}

/// The database the step copies.
fn database(backup: &Backup) -> Result<&DatabaseTarget, StepError> {
    backup
        .target
        .database
        .as_ref()
        .ok_or_else(|| StepError::Failed("the backup has no database to snapshot".into()))
}

/// A snapshot taken: its name in the step's outputs, where the report reads it.
pub(super) fn taken(name: &str, clock: tokio::time::Instant) -> Done {
    Done {
        detail: Some(format!("snapshot {name} in {}", took(clock))),
        outputs: Outputs {
            more: [("snapshot".to_string(), name.to_string().into())].into(),
            ..Outputs::default()
        },
        ..Done::default()
    }
}

/// The dump a snapshot that could not be taken gives way to, in the window, saying why.
pub(super) async fn dumped_instead(
    backup: &Backup,
    cx: &Cx<'_>,
    why: &str,
) -> Result<Done, StepError> {
    let mut done = backup.perform(cx).await?;
    done.warning = Some(format!(
        "the database was dumped in the window, not snapshotted: {}",
        crate::secrets::redact(why)
    ));
    Ok(done)
}

#[async_trait]
impl Action for Snapshot {
    fn describe(&self, plan: &Plan) -> String {
        let db = self.backup.target.database.as_ref();
        format!(
            "snapshot the PostgreSQL database {} of {} as {} on its server (a copy of its files, closed to connections; the portable backup is written from it once the new version serves)",
            db.map(|d| d.name.as_str()).unwrap_or_default(),
            plan.label(&self.backup.slot),
            self.name
        )
    }

    fn traits(&self) -> Traits {
        self.backup.traits()
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let db = database(&self.backup)?;
        let clock = tokio::time::Instant::now();
        match snapshot::create(cx.engine, db, &self.name, &self.owner, &self.strategy).await {
            Ok(()) => Ok(taken(&self.name, clock)),
            // Another session still on the database (a monitor, a second application) keeps
            // the server from copying it: the dump does not mind.
            Err(e) => {
                tracing::warn!(
                    "the database could not be copied on its server ({e}): dumping it instead"
                );
                let _ = snapshot::remove(cx.engine, db, &self.name).await;
                dumped_instead(&self.backup, cx, &e.to_string()).await
            }
        }
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!(
            "put the snapshot {} back in place of the database of {} if a later step may have changed it (the changed one kept as {} until the old version serves), else drop it",
            self.name,
            plan.label(&self.backup.slot),
            self.aside
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
        let db = database(&self.backup)?;
        if !cx.data_touched {
            snapshot::remove(cx.engine, db, &self.name)
                .await
                .map_err(StepError::from)?;
            return Ok(None);
        }
        // The server gone or refusing: say which copy holds the data from before, and where.
        let lost = |e: backup::BackupError| {
            StepError::Failed(format!(
                "the snapshot {} of the database {} (from before the upgrade) could not be put back on {}: {}; it stays there: once the server answers, `cutover recover` puts it back",
                self.name,
                db.name,
                db.container,
                crate::secrets::redact(&e.to_string())
            ))
        };
        let had = snapshot::exists(cx.engine, db, &self.name)
            .await
            .map_err(lost)?;
        if !had
            && !snapshot::exists(cx.engine, db, &self.aside)
                .await
                .map_err(lost)?
        {
            return Err(StepError::Failed(format!(
                "the data may have changed, and neither the snapshot {} nor an earlier swap's {} is on {}",
                self.name, self.aside, db.container
            )));
        }
        snapshot::swap_back(cx.engine, db, &self.name, &self.aside)
            .await
            .map_err(lost)?;
        Ok(Some(format!(
            "put the snapshot {} back as the database {} (the changed one kept as {} until the old version serves)",
            self.name, db.name, self.aside
        )))
    }

    async fn settle(&self, cx: &Cx<'_>) -> Result<Option<String>, StepError> {
        let db = database(&self.backup)?;
        if !snapshot::exists(cx.engine, db, &self.aside)
            .await
            .map_err(StepError::from)?
        {
            return Ok(None);
        }
        snapshot::remove(cx.engine, db, &self.aside)
            .await
            .map_err(StepError::from)?;
        Ok(Some(format!(
            "dropped {}, the database as the new version left it",
            self.aside
        )))
    }
}

#[async_trait]
impl Action for SnapshotBackup {
    fn describe(&self, plan: &Plan) -> String {
        format!(
            "write the portable backup of {} from the snapshot {} into {} (verified; the last {} kept), then drop the snapshot",
            plan.label(&self.backup.slot),
            self.name,
            self.backup.root.join(&self.backup.slot.member).display(),
            self.backup.keep
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            cleanup: true,
            ..Traits::default()
        }
    }

    /// Again after a kill: a backup half written is no backup (it has no manifest), and the
    /// snapshot stays until one is whole.
    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let db = database(&self.backup)?;
        let there = match &self.volume {
            Some(copy) => volume_copy::exists(cx.engine, copy).await,
            None => snapshot::exists(cx.engine, db, &self.name).await,
        };
        if !there.map_err(StepError::from)? {
            return Ok(Done::said(format!(
                "no snapshot {} (the backup was dumped in the window, or written already)",
                self.name
            )));
        }
        let clock = tokio::time::Instant::now();
        // The old container, stopped and renamed NAME-old by now: its image is the data's, and
        // its settings say how to reach the database; the backup is the member's.
        let app = inspect_required(cx.engine, cx.id(&self.backup.slot)?)
            .await?
            .named(&self.backup.slot.member);
        let taken = async {
            let source = match &self.volume {
                Some(copy) => {
                    volume_copy::serve(cx.engine, backup::App::of(&app), db, copy).await?
                }
                None => {
                    snapshot::allow(cx.engine, db, &self.name).await?;
                    DatabaseTarget {
                        name: self.name.clone(),
                        ..db.clone()
                    }
                }
            };
            backup::take(
                cx.engine,
                backup::App::of(&app),
                &self.backup.target,
                &self.backup.root.join(&self.backup.slot.member),
                false,
                &self.backup.run(cx),
                cx.progress,
                Some(&source),
            )
            .await
        }
        .await;
        let dropped = match &self.volume {
            Some(copy) => volume_copy::remove(cx.engine, db, copy).await,
            None => snapshot::remove(cx.engine, db, &self.name).await,
        };
        let (manifest, path): (_, PathBuf) = taken.map_err(|e| {
            StepError::Failed(format!(
                "the portable backup could not be written from the snapshot, which is dropped: no backup of this upgrade exists ({})",
                crate::secrets::redact(&e.to_string())
            ))
        })?;
        dropped.map_err(StepError::from)?;
        let removed = backup::prune(
            &self.backup.root,
            &self.backup.slot.member,
            self.backup.keep,
        )
        .map_err(StepError::from)?;
        let bytes: u64 = manifest.files.iter().map(|f| f.bytes).sum();
        Ok(Done {
            detail: Some(format!(
                "backup {} written after, {} in {}{}; snapshot dropped",
                manifest.id,
                crate::size::human_bytes(bytes),
                took(clock),
                match removed.len() {
                    0 => String::new(),
                    n => format!("; {n} older backup(s) removed"),
                }
            )),
            outputs: Outputs {
                more: [("backup".to_string(), path.display().to_string().into())].into(),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }
}
