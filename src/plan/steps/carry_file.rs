//! A file that lives on no volume (DevLake's `/app/.env`): copied out of the old container
//! through the archive API while it still serves, kept in the run's directory (0600), and put
//! into the successor before it starts, with its mode and owner.

use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use super::{Action, Cx, Done, Outputs, StepError};
use crate::plan::{Plan, Slot};

/// Carried files are configuration, not data: anything larger is refused rather than held in
/// memory.
const MAX_BYTES: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CarryFile {
    pub from: Slot,
    pub to: Slot,
    /// An absolute path inside the containers.
    pub path: String,
    /// A missing file is skipped rather than refused.
    pub optional: bool,
}

/// A file as the archive API gave it.
struct Entry {
    bytes: Vec<u8>,
    header: tar::Header,
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
        store(&stored, &entry.bytes).map_err(|e| {
            StepError::Failed(format!(
                "keeping a copy of {} in {}: {e}",
                self.path,
                stored.display()
            ))
        })?;
        let (dir, file_name) = split(&self.path);
        let mut header = entry.header.clone();
        header
            .set_path(file_name)
            .map_err(|e| StepError::Failed(format!("{}: {e}", self.path)))?;
        header.set_cksum();
        let mut archive = tar::Builder::new(Vec::new());
        archive
            .append(&header, entry.bytes.as_slice())
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let tar = archive
            .into_inner()
            .map_err(|e| StepError::Failed(e.to_string()))?;
        cx.engine
            .archive_put(cx.id(&self.to)?, dir, crate::engine::bytes_stream(tar))
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
        match std::fs::remove_file(self.stored(cx.files)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(StepError::Failed(e.to_string()))
            }
            _ => Ok(None),
        }
    }
}

impl CarryFile {
    /// Where the run keeps its copy: one name per container and path, so recovery finds it.
    fn stored(&self, files: &Path) -> PathBuf {
        files.join(format!("{}{}", self.from, self.path.replace('/', "%")))
    }

    async fn fetch(&self, cx: &Cx<'_>) -> Result<Option<Entry>, StepError> {
        let from = cx.id(&self.from)?;
        let Some(mut stream) = cx.engine.archive_get(from, &self.path).await? else {
            return match self.optional {
                true => Ok(None),
                false => Err(StepError::Failed(format!(
                    "the old container has no {}; check the path, or use --carry-file-if-present for a file that may be missing",
                    self.path
                ))),
            };
        };
        let mut tar = Vec::new();
        while let Some(chunk) = stream.next().await {
            tar.extend_from_slice(&chunk?);
            if tar.len() > MAX_BYTES + 64 * 1024 {
                return Err(StepError::Failed(format!("{} is larger than {} MiB: carry only configuration files; put data on a volume", self.path, MAX_BYTES >> 20)));
            }
        }
        let mut archive = tar::Archive::new(tar.as_slice());
        let mut entries = archive
            .entries()
            .map_err(|e| StepError::Failed(format!("reading the archive of {}: {e}", self.path)))?;
        let mut entry = match entries.next() {
            Some(Ok(entry)) => entry,
            Some(Err(e)) => {
                return Err(StepError::Failed(format!(
                    "reading the archive of {}: {e}",
                    self.path
                )))
            }
            None => {
                return Err(StepError::Failed(format!(
                    "the engine sent an empty archive for {}",
                    self.path
                )))
            }
        };
        let header = entry.header().clone();
        match header.entry_type() {
            tar::EntryType::Regular => {}
            tar::EntryType::Symlink => {
                let target = entry
                    .link_name()
                    .ok()
                    .flatten()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default();
                return Err(StepError::Failed(format!(
                    "{} is a symbolic link to {target}; carry the file it points to",
                    self.path
                )));
            }
            other => {
                return Err(StepError::Failed(format!(
                    "{} is not a regular file ({other:?}); carry files one by one",
                    self.path
                )))
            }
        }
        let mut bytes = Vec::new();
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| StepError::Failed(format!("reading {}: {e}", self.path)))?;
        Ok(Some(Entry { bytes, header }))
    }
}

fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

/// Writes the copy readable by its owner only, in a directory only its owner can enter, and
/// waits until it is on disk.
fn store(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn paths_split_into_directory_and_name() {
        assert_eq!(split("/app/.env"), ("/app", ".env"));
        assert_eq!(split("/settings"), ("/", "settings"));
        assert_eq!(split("/a/b/c.yaml"), ("/a/b", "c.yaml"));
    }
}
