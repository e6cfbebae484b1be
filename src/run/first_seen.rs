//! When cutover first saw each digest: the publication time of an image that does not say when
//! it was built (no creation time, or the epoch that reproducible builds write), so that a
//! minimum age still holds it back until it has been out that long.
//!
//! One record per machine that runs cutover (`STATE_DIR/first-seen.json`, digest to RFC 3339
//! time), whichever engine or fleet it looks at: a digest is the registry's, not a host's.
//! Several cutover processes may look at once (a `check` beside a resident `auto`): a lock file
//! makes each update whole, and the file is replaced by a rename, never half written.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

const FILE: &str = "first-seen.json";
const LOCK: &str = ".first-seen.lock";

/// The record cannot be kept: its directory, or its file or lock in it (state, not input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirstSeenError {
    /// The state directory cannot be made or is not private (see [`crate::private::dir`]).
    #[error("{0}")]
    Dir(String),
    #[error("cannot {what} {} (when cutover first saw each image): {why}", path.display())]
    File {
        what: &'static str,
        path: PathBuf,
        why: String,
    },
}

/// The record of first sightings under a state directory.
#[derive(Debug, Clone)]
pub struct FirstSeen {
    root: PathBuf,
}

impl FirstSeen {
    /// The record kept in the state directory `root` (made when first written).
    pub fn under(root: &Path) -> FirstSeen {
        FirstSeen {
            root: root.to_path_buf(),
        }
    }

    /// When `digest` was first seen; never seen before, it is seen `now`, and that is recorded.
    pub fn first_seen(&self, digest: &str, now: SystemTime) -> Result<SystemTime, FirstSeenError> {
        let failed =
            |what: &'static str, path: &Path, e: &dyn std::fmt::Display| FirstSeenError::File {
                what,
                path: path.to_path_buf(),
                why: e.to_string(),
            };
        crate::private::dir(&self.root).map_err(|e| FirstSeenError::Dir(e.to_string()))?;
        let lock_path = self.root.join(LOCK);
        let lock = crate::private::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| failed("open", &lock_path, &e))?;
        lock.lock().map_err(|e| failed("lock", &lock_path, &e))?;
        let path = self.root.join(FILE);
        let mut seen = read(&path).map_err(|e| failed("read", &path, &e))?;
        if let Some(at) = seen
            .get(digest)
            .and_then(|t| humantime::parse_rfc3339(t).ok())
        {
            return Ok(at);
        }
        seen.insert(
            digest.to_string(),
            humantime::format_rfc3339_seconds(now).to_string(),
        );
        let text = serde_json::to_vec_pretty(&seen).map_err(|e| failed("write", &path, &e))?;
        let temporary = self.root.join(format!("{FILE}.{}", std::process::id()));
        crate::private::write(&temporary, &text)
            .and_then(|()| fs::rename(&temporary, &path))
            .map_err(|e| failed("write", &path, &e))?;
        // Seconds, as written: the same answer now as at the next look.
        Ok(
            humantime::parse_rfc3339(&humantime::format_rfc3339_seconds(now).to_string())
                .unwrap_or(now),
        )
    }
}

/// The record, empty when there is none yet.
fn read(path: &Path) -> std::io::Result<BTreeMap<String, String>> {
    match fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::Scratch;

    #[test]
    fn a_digest_is_first_seen_once_and_keeps_that_time() {
        let scratch = Scratch::new("first-seen");
        let root = scratch.path().join("state");
        let seen = FirstSeen::under(&root);
        let monday = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_000_000);
        let later = monday + Duration::from_secs(3 * 86400);
        assert_eq!(seen.first_seen("sha256:aaa", monday), Ok(monday));
        assert_eq!(
            seen.first_seen("sha256:aaa", later),
            Ok(monday),
            "seen again, it keeps its first time"
        );
        assert_eq!(seen.first_seen("sha256:bbb", later), Ok(later));
        // Another process reads the same record.
        let again = FirstSeen::under(&root);
        assert_eq!(again.first_seen("sha256:aaa", later), Ok(monday));
        let text = fs::read_to_string(root.join(FILE)).unwrap();
        assert!(text.contains("\"sha256:bbb\""), "{text}");
    }

    #[test]
    fn a_damaged_record_is_told_with_its_path() {
        let scratch = Scratch::new("first-seen-damaged");
        let root = scratch.path().join("state");
        crate::private::dir(&root).unwrap();
        fs::write(root.join(FILE), "{not json").unwrap();
        let e = FirstSeen::under(&root)
            .first_seen("sha256:aaa", SystemTime::now())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("first-seen.json") && e.contains("cannot read"),
            "{e}"
        );
    }
}
