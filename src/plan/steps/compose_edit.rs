//! Writing the new tag where a compose project defines the image, once the new version is
//! healthy, so that the next `docker-compose up` (or `down` and `up`) keeps it; undone by putting
//! the file back as it was.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Action, Cx, Done, Outputs, StepError};
use crate::compose::{edit, Change};
use crate::plan::Plan;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ComposeEdit {
    /// A compose file or the project's `.env`.
    pub file: PathBuf,
    pub changes: Vec<Change>,
    /// The sha256 of the file when the upgrade was planned (of nothing, when it did not exist):
    /// a file someone changed meanwhile is not overwritten.
    pub planned: String,
}

pub fn sha(text: &str) -> String {
    format!("{:x}", Sha256::digest(text.as_bytes()))
}

#[async_trait]
impl Action for ComposeEdit {
    fn describe(&self, _plan: &Plan) -> String {
        let changes: Vec<String> = self.changes.iter().map(Change::describe).collect();
        format!("write {} in {}", changes.join(", "), self.file.display())
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let existed = self.file.exists();
        let current = match existed {
            true => std::fs::read_to_string(&self.file).map_err(|e| failed(&self.file, e))?,
            false => String::new(),
        };
        let edited = self.edited(&current)?;
        if edited == current {
            return Ok(Done::said(format!(
                "{} says so already",
                self.file.display()
            )));
        }
        if sha(&current) != self.planned {
            return Err(StepError::Failed(format!(
                "{} changed since the upgrade was planned; it was left alone: write the new tag there yourself",
                self.file.display()
            )));
        }
        // The original, for the undo: the run's private directory (the file may hold secrets).
        let kept = self.kept(cx.files);
        crate::private::dir(cx.files).map_err(|e| StepError::Failed(e.to_string()))?;
        let (copy, original) = match existed {
            true => (kept, current.as_str()),
            false => (absent(&kept), ""),
        };
        crate::private::write(&copy, original.as_bytes()).map_err(|e| failed(&copy, e))?;
        edit::replace(&self.file, &edited).map_err(StepError::Failed)?;
        Ok(Done {
            detail: Some(format!("wrote {}", self.file.display())),
            outputs: Outputs::default(),
            ..Done::default()
        })
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("put {} back as it was", self.file.display()))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let kept = self.kept(cx.files);
        if let Ok(original) = std::fs::read_to_string(&kept) {
            edit::replace(&self.file, &original).map_err(StepError::Failed)?;
            return Ok(Some(format!("put {} back as it was", self.file.display())));
        }
        if absent(&kept).exists() {
            match std::fs::remove_file(&self.file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(failed(&self.file, e))
                }
                _ => {
                    return Ok(Some(format!(
                        "removed {}, which the upgrade had created",
                        self.file.display()
                    )))
                }
            }
        }
        Ok(None)
    }
}

impl ComposeEdit {
    fn edited(&self, text: &str) -> Result<String, StepError> {
        self.changes
            .iter()
            .try_fold(text.to_string(), |text, change| change.apply(&text))
            .map_err(|e| StepError::Failed(e.to_string()))
    }

    /// Where the run keeps the original: one name per file, so recovery finds it.
    fn kept(&self, files: &Path) -> PathBuf {
        files.join(format!(
            "compose-{}",
            &sha(&self.file.display().to_string())[..16]
        ))
    }
}

/// The marker that the file did not exist before the run.
fn absent(kept: &Path) -> PathBuf {
    kept.with_extension("absent")
}

fn failed(path: &Path, e: std::io::Error) -> StepError {
    StepError::Failed(format!("{}: {e}", path.display()))
}
