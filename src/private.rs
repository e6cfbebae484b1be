//! Files that hold data (journals, locks, backups, a run's copies of files, cluster records):
//! their owner's alone whatever the umask, in directories nobody else can write.
//!
//! Modes are given when a file or directory is created (0600, 0700): a umask can only take bits
//! away from them, never add any. A directory that exists already keeps the mode it has, so it
//! is checked instead ([`dir`]): cutover does not change the mode of a directory someone chose.

use std::fmt;
use std::fs::{Metadata, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    #[error("creating {path}: {source}")]
    Create {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not private: {exposure}, and whoever can write there could plant or change the files cutover reads back and acts on; make it yours alone (`{}`) or use another directory", exposure.fix(path, 0o700))]
    Exposed { path: PathBuf, exposure: Exposure },
}

/// Creates `path` and its missing parents, 0700, and refuses it when other users could write
/// in it (see [`exposure`]). Only `path` itself is checked: its parents are the operator's, and
/// a directory cutover creates in them is 0700 from the start.
pub fn dir(path: &Path) -> Result<(), DirError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(path)
        .and_then(|()| std::fs::metadata(path))
        .map_err(|source| DirError::Create {
            path: path.to_path_buf(),
            source,
        })
        .and_then(|meta| match exposure(&meta) {
            Some(exposure) => Err(DirError::Exposed {
                path: path.to_path_buf(),
                exposure,
            }),
            None => Ok(()),
        })
}

/// Options that create a file readable and writable by its owner only (an existing file keeps
/// its mode); the caller says how to open it.
pub fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(0o600);
    options
}

/// Writes `bytes` as the whole content of the file at `path`, created 0600 if it does not exist,
/// and waits until it is on disk.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// How a user other than this process's could write a file or directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exposure {
    /// Its group or every user may write it (`mode`, its permission bits); a sticky bit does not
    /// help a directory, since they could still add files to it.
    Writable { mode: u32 },
    /// It belongs to `owner`, neither this process's user (`me`) nor root: its owner may change
    /// its mode and content at will.
    Owner { owner: u32, me: u32 },
}

impl Exposure {
    /// The command that makes `path` its owner's alone again, `mode` being the one it should have.
    pub fn fix(&self, path: &Path, mode: u32) -> String {
        match self {
            Exposure::Writable { .. } => format!("chmod {mode:o} {}", path.display()),
            Exposure::Owner { me, .. } => format!("chown {me} {}", path.display()),
        }
    }
}

impl fmt::Display for Exposure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Exposure::Writable { mode } => {
                write!(
                    f,
                    "users other than its owner can write it (mode {mode:04o})"
                )
            }
            Exposure::Owner { owner, me } => write!(
                f,
                "it belongs to user {owner}, who is neither this user ({me}) nor root"
            ),
        }
    }
}

/// Whether a user other than this process's and root could have written what `meta` describes:
/// the rule for the state and backup directories, the subdirectories cutover uses in them, and
/// the journals `recover` acts on. A directory of root's with mode 0755 is fine; `/tmp`'s 1777
/// is not.
pub fn exposure(meta: &Metadata) -> Option<Exposure> {
    exposure_of(meta.mode(), meta.uid(), rustix::process::geteuid().as_raw())
}

fn exposure_of(mode: u32, owner: u32, me: u32) -> Option<Exposure> {
    if mode & 0o022 != 0 {
        return Some(Exposure::Writable {
            mode: mode & 0o7777,
        });
    }
    if owner != me && owner != 0 {
        return Some(Exposure::Owner { owner, me });
    }
    None
}

/// Gives `path` the permission bits `mode`, for tests that expose a file or directory.
#[cfg(test)]
pub(crate) fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Asserts that `refused` refuses the directory `exposed`, which group and others can write,
/// naming the command that fixes it.
#[cfg(test)]
pub(crate) fn assert_refuses(refused: impl fmt::Display, exposed: &Path) {
    let refused = refused.to_string();
    assert!(
        refused.contains(&format!("`chmod 700 {}`", exposed.display())),
        "{refused}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_its_user_or_root_alone_can_write_is_trusted() {
        let me = 1000;
        for (mode, owner, trusted) in [
            (0o700, me, true),
            (0o755, 0, true),
            (0o600, me, true),
            (0o644, 0, true),
            (0o1777, 0, false),
            (0o775, me, false),
            (0o757, me, false),
            (0o666, me, false),
            (0o700, 1001, false),
        ] {
            assert_eq!(
                exposure_of(mode, owner, me).is_none(),
                trusted,
                "mode {mode:o} of user {owner}"
            );
        }
        // Root trusts what root owns, and nobody else's.
        assert_eq!(exposure_of(0o700, 0, 0), None);
        assert_eq!(
            exposure_of(0o700, 1000, 0),
            Some(Exposure::Owner { owner: 1000, me: 0 })
        );
    }

    #[test]
    fn a_directory_others_can_write_is_refused_with_the_command_that_fixes_it() {
        let path = std::env::temp_dir().join(format!("cutover-private-{}", std::process::id()));
        dir(&path.join("deeper")).unwrap();
        chmod(&path, 0o770);
        let refused = dir(&path).unwrap_err().to_string();
        assert_refuses(&refused, &path);
        assert!(refused.contains("mode 0770"), "{refused}");
        // A parent's mode is the operator's: only the directory asked for is checked.
        dir(&path.join("deeper")).unwrap();
        chmod(&path, 0o700);
        dir(&path).unwrap();
        std::fs::remove_dir_all(&path).unwrap();
    }
}
