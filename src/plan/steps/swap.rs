//! A member's configuration file replaced by a task's new one (Anchore's destination
//! `config.yaml`), the old one kept beside it and in the run's directory; undoing puts the old
//! one back.

use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::files;
use super::keep_file::read_kept;
use super::{Action, Cx, Done, Outputs, StepError};
use crate::plan::{Plan, Slot};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Swap {
    /// A stopped member whose file this is (members that share the file through one volume
    /// swap it once).
    pub slot: Slot,
    pub path: String,
    /// The kept file that takes its place.
    pub key: String,
    /// Where the old file is kept beside it.
    pub keep_old_as: String,
    #[serde(default)]
    pub home: Home,
}

/// Where the file lives, which decides how it is written and how long the new one lasts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Home {
    /// On a volume or a bind-mounted directory: written through the engine.
    #[default]
    Mount,
    /// A file of this host bind-mounted by itself: the engine cannot replace a mount point, so
    /// it is written here, in place.
    HostFile(PathBuf),
    /// The container's own filesystem: written through the engine, and lost when the container
    /// is recreated from its image.
    Container,
}

#[async_trait]
impl Action for Swap {
    fn describe(&self, plan: &Plan) -> String {
        let written = match &self.home {
            Home::HostFile(file) => {
                format!(", written in place at {} on this host", file.display())
            }
            Home::Container => ", in the container's own filesystem".to_string(),
            Home::Mount => String::new(),
        };
        format!(
            "put the kept {} in place as {} of {}{written} (the old one kept as {})",
            self.key,
            self.path,
            plan.label(&self.slot),
            self.keep_old_as
        )
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let id = cx.id(&self.slot)?;
        let current = files::fetch(cx.engine, id, &self.path)
            .await?
            .ok_or_else(|| {
                StepError::Failed(format!("{} is gone from {}", self.path, self.slot))
            })?;
        let previous = self.previous(cx.files);
        // A resumed run finds the copy it made the first time, before the file was replaced.
        let old = match std::fs::read(&previous) {
            Ok(bytes) => bytes,
            Err(_) => {
                // A file already where the old one is kept (an earlier task's) comes back if
                // this one is undone.
                if let Some(there) = files::fetch(cx.engine, id, &self.keep_old_as).await? {
                    files::keep(&self.beside(cx.files), &there.bytes).map_err(|e| {
                        StepError::Failed(format!("keeping a copy of {}: {e}", self.keep_old_as))
                    })?;
                }
                files::keep(&previous, &current.bytes).map_err(|e| {
                    StepError::Failed(format!("keeping a copy of {}: {e}", self.path))
                })?;
                current.bytes.clone()
            }
        };
        let new = read_kept(cx.files, &self.key)?;
        files::put(cx.engine, id, &self.keep_old_as, &old, &current.header).await?;
        self.write(cx, id, &new, &current.header).await?;
        let warning = (self.home == Home::Container).then(|| {
            format!(
                "{} of {} is in the container's own filesystem: the new one lasts as long as this container, and recreating it from its image (an upgrade, `docker-compose up`) brings back the image's file; mount it from a volume or the host to keep it",
                self.path, self.slot.member
            )
        });
        Ok(Done {
            warning,
            ..Done::said(format!(
                "{} replaced ({} bytes; the old {} bytes kept as {})",
                self.path,
                new.len(),
                old.len(),
                self.keep_old_as
            ))
        })
    }

    fn undo_describe(&self, plan: &Plan) -> Option<String> {
        Some(format!(
            "put the old {} of {} back",
            self.path,
            plan.label(&self.slot)
        ))
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        let Ok(old) = std::fs::read(self.previous(cx.files)) else {
            // Never replaced: the copy is made before the file is touched.
            return Ok(None);
        };
        let id = cx.id(&self.slot)?;
        let header = match files::fetch(cx.engine, id, &self.path).await? {
            Some(current) => current.header,
            None => files::fetch(cx.engine, id, &self.keep_old_as)
                .await?
                .map(|e| e.header)
                .ok_or_else(|| StepError::Failed(format!("{} is gone", self.path)))?,
        };
        self.write(cx, id, &old, &header).await?;
        let mut said = format!("put the old {} of {} back", self.path, self.slot.member);
        if let Ok(there) = std::fs::read(self.beside(cx.files)) {
            files::put(cx.engine, id, &self.keep_old_as, &there, &header).await?;
            said.push_str(&format!(
                ", and the {} that was there before",
                self.keep_old_as
            ));
        }
        Ok(Some(said))
    }
}

impl Swap {
    async fn write(
        &self,
        cx: &Cx<'_>,
        id: &str,
        bytes: &[u8],
        header: &tar::Header,
    ) -> Result<(), StepError> {
        match &self.home {
            Home::HostFile(file) => files::overwrite(file, bytes),
            Home::Mount | Home::Container => {
                files::put(cx.engine, id, &self.path, bytes, header).await
            }
        }
    }

    fn previous(&self, files: &Path) -> PathBuf {
        self.kept(files, &self.path)
    }

    /// The copy of what stood at `keep_old_as` before the step.
    fn beside(&self, files: &Path) -> PathBuf {
        self.kept(files, &self.keep_old_as)
    }

    fn kept(&self, files: &Path, path: &str) -> PathBuf {
        files
            .join("previous")
            .join(format!("{}{}", self.slot, path.replace('/', "%")))
    }
}
