//! A copy, in the run's directory (0600), of a file a task uses: a file given on the command
//! line, or a member's configuration read before it stops. Later steps (and their undos, in
//! `cutover recover` too) read the copy, so what they use is what was checked when the plan was
//! made: a file changed since is refused.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::files;
use super::{Action, Cx, Done, Outputs, StepError};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FileSource {
    Host(PathBuf),
    Container { slot: Slot, path: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeepFile {
    /// The name later steps use for it.
    pub key: String,
    pub from: FileSource,
    /// Its SHA-256 when the plan was made.
    pub sha256: String,
}

#[async_trait]
impl Action for KeepFile {
    fn describe(&self, plan: &Plan) -> String {
        let from = match &self.from {
            FileSource::Host(path) => path.display().to_string(),
            FileSource::Container { slot, path } => format!("{path} of {}", plan.label(slot)),
        };
        format!("keep a copy of {from} in the run's directory, as checked")
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let bytes = match &self.from {
            FileSource::Host(path) => std::fs::read(path)
                .map_err(|e| StepError::Failed(format!("{}: {e}", path.display())))?,
            FileSource::Container { slot, path } => {
                files::fetch(cx.engine, cx.id(slot)?, path)
                    .await?
                    .ok_or_else(|| StepError::Failed(format!("{path} is gone from {slot}")))?
                    .bytes
            }
        };
        if sha256(&bytes) != self.sha256 {
            return Err(StepError::Failed(
                "the file changed since it was checked; run the command again".into(),
            ));
        }
        files::keep(&kept(cx.files, &self.key), &bytes)
            .map_err(|e| StepError::Failed(format!("keeping a copy of {}: {e}", self.key)))?;
        Ok(Done::said(format!("{} bytes", bytes.len())))
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        Some(format!("delete the run's copy of {}", self.key))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        files::forget(&kept(cx.files, &self.key))?;
        Ok(None)
    }
}

/// Where the run keeps the copy named `key`.
pub fn kept(files: &Path, key: &str) -> PathBuf {
    files.join("kept").join(key)
}

/// Reads a kept copy back, registering its secret-looking values for redaction: the command
/// that uses it may print it.
pub fn read_kept(files: &Path, key: &str) -> Result<Vec<u8>, StepError> {
    let bytes = std::fs::read(kept(files, key))
        .map_err(|e| StepError::Failed(format!("the run's copy of {key} cannot be read: {e}")))?;
    crate::secrets::register_config_text(&String::from_utf8_lossy(&bytes));
    Ok(bytes)
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}
