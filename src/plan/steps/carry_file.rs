//! A file that lives on no volume (DevLake's `/app/.env`): copied out of the old container
//! through the archive API while it still serves, kept in the run's directory (0600), and put
//! into the successor before it starts, with its mode and owner.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::files::{self, ArchiveEntry};
use super::{Action, Cx, Done, Outputs, StepError};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarryFile {
    pub from: Slot,
    pub to: Slot,
    /// An absolute path inside the containers.
    pub path: String,
    /// A missing file is skipped rather than refused.
    pub optional: bool,
}

#[async_trait]
impl Action for CarryFile {
    fn describe(&self, plan: &Plan) -> String {
        let optional = if self.optional { " (if it exists)" } else { "" };
        format!(
            "copy {}{optional} from {} into {}",
            self.path,
            plan.label(&self.from),
            plan.label(&self.to)
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let Some(entry) = self.fetch(cx).await? else {
            return Ok(Done::said(format!(
                "{} does not exist in the old container; nothing to carry",
                self.path
            )));
        };
        let stored = self.stored(cx.files);
        files::keep(&stored, &entry.bytes).map_err(|e| {
            StepError::Failed(format!(
                "keeping a copy of {} in {}: {e}",
                self.path,
                stored.display()
            ))
        })?;
        files::put(
            cx.engine,
            cx.id(&self.to)?,
            &self.path,
            &entry.bytes,
            &entry.header,
        )
        .await?;
        let mode = entry.header.mode().unwrap_or(0o644);
        let (uid, gid) = (
            entry.header.uid().unwrap_or(0),
            entry.header.gid().unwrap_or(0),
        );
        Ok(Done {
            detail: Some(format!(
                "copied {} ({} bytes, mode {mode:04o}, owner {uid}:{gid})",
                self.path,
                entry.bytes.len()
            )),
            outputs: Outputs {
                more: [("stored".to_string(), stored.display().to_string().into())].into(),
                ..Outputs::default()
            },
            ..Done::default()
        })
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("delete the run's copy of {}", self.path))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        files::forget(&self.stored(cx.files))?;
        Ok(None)
    }
}

impl CarryFile {
    /// Where the run keeps its copy: one name per container and path, so recovery finds it.
    fn stored(&self, files: &Path) -> PathBuf {
        files.join(format!("{}{}", self.from, self.path.replace('/', "%")))
    }

    async fn fetch(&self, cx: &Cx<'_>) -> Result<Option<ArchiveEntry>, StepError> {
        match files::fetch(cx.engine, cx.id(&self.from)?, &self.path).await? {
            Some(entry) => Ok(Some(entry)),
            None if self.optional => Ok(None),
            None => Err(StepError::Failed(format!(
                "the old container has no {}; check the path, or use --carry-file-if-present for a file that may be missing",
                self.path
            ))),
        }
    }
}
