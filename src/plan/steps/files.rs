//! Files in and out of containers through the archive API (which works on stopped containers
//! too), and the run's private copies of them.

use std::io::{Read, Write};
use std::path::Path;

use futures_util::StreamExt;

use super::StepError;
use crate::engine::Engine;

/// Files moved this way are configuration, not data: anything larger is refused rather than
/// held in memory.
const MAX_BYTES: usize = 16 * 1024 * 1024;

/// A file as the archive API gave it: its bytes, and the header that holds its mode and owner.
pub struct ArchiveEntry {
    pub bytes: Vec<u8>,
    pub header: tar::Header,
}

/// The archive of `path` in the container, or `None` when there is nothing there.
async fn archive(engine: &dyn Engine, id: &str, path: &str) -> Result<Option<Vec<u8>>, StepError> {
    let Some(mut stream) = engine.archive_get(id, path).await? else {
        return Ok(None);
    };
    let mut tar = Vec::new();
    while let Some(chunk) = stream.next().await {
        tar.extend_from_slice(&chunk?);
        if tar.len() > MAX_BYTES + 64 * 1024 {
            return Err(StepError::Failed(format!(
                "{path} is larger than {} MiB: carry only configuration files; put data on a volume",
                MAX_BYTES >> 20
            )));
        }
    }
    Ok(Some(tar))
}

/// Every regular file under the directory `dir` in the container, by its path there: a
/// directory of configuration, copied whole.
pub async fn fetch_dir(
    engine: &dyn Engine,
    id: &str,
    dir: &str,
) -> Result<Vec<(String, Vec<u8>)>, StepError> {
    let Some(tar) = archive(engine, id, dir).await? else {
        return Ok(Vec::new());
    };
    let unreadable =
        |e: std::io::Error| StepError::Failed(format!("reading the archive of {dir}: {e}"));
    // The archive names its entries from the directory's own name on: `stack/config.yaml`.
    let (parent, _) = split(dir.trim_end_matches('/'));
    let mut files = Vec::new();
    let mut archive = tar::Archive::new(tar.as_slice());
    for entry in archive.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let relative = entry.path().map_err(unreadable)?.display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).map_err(unreadable)?;
        files.push((
            format!("{}/{relative}", parent.trim_end_matches('/')),
            bytes,
        ));
    }
    Ok(files)
}

/// The regular file at `path` in the container, or `None` when there is none.
pub async fn fetch(
    engine: &dyn Engine,
    id: &str,
    path: &str,
) -> Result<Option<ArchiveEntry>, StepError> {
    let Some(tar) = archive(engine, id, path).await? else {
        return Ok(None);
    };
    let (mut header, bytes) = the_file(&tar, path)?;
    if let Some((uid, gid)) = engine.owner_of(id, path).await? {
        header.set_uid(uid);
        header.set_gid(gid);
    }
    Ok(Some(ArchiveEntry { bytes, header }))
}

/// The header and bytes of the regular file `path` that `tar` holds as its one entry.
fn the_file(tar: &[u8], path: &str) -> Result<(tar::Header, Vec<u8>), StepError> {
    let unreadable =
        |e: std::io::Error| StepError::Failed(format!("reading the archive of {path}: {e}"));
    let mut archive = tar::Archive::new(tar);
    let mut entries = archive.entries().map_err(unreadable)?;
    let mut entry = match entries.next() {
        Some(entry) => entry.map_err(unreadable)?,
        None => {
            return Err(StepError::Failed(format!(
                "the engine sent an empty archive for {path}"
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
                "{path} is a symbolic link to {target}; name the file it points to"
            )));
        }
        other => {
            return Err(StepError::Failed(format!(
                "{path} is not a regular file ({other:?}); name files one by one"
            )))
        }
    }
    let mut bytes = Vec::new();
    entry
        .read_to_end(&mut bytes)
        .map_err(|e| StepError::Failed(format!("reading {path}: {e}")))?;
    Ok((header, bytes))
}

/// Writes `bytes` at `path` in the container, with the mode and owner of `header`.
pub async fn put(
    engine: &dyn Engine,
    id: &str,
    path: &str,
    bytes: &[u8],
    header: &tar::Header,
) -> Result<(), StepError> {
    let (dir, file_name) = split(path);
    let mut header = header.clone();
    header
        .set_path(file_name)
        .map_err(|e| StepError::Failed(format!("{path}: {e}")))?;
    header.set_size(bytes.len() as u64);
    header.set_cksum();
    let mut archive = tar::Builder::new(Vec::new());
    archive
        .append(&header, bytes)
        .map_err(|e| StepError::Failed(e.to_string()))?;
    let tar = archive
        .into_inner()
        .map_err(|e| StepError::Failed(e.to_string()))?;
    engine
        .archive_put(id, dir, crate::engine::bytes_stream(tar))
        .await?;
    Ok(())
}

/// Replaces the content of a file of this host in place, keeping its inode (a container mounts
/// it by inode), mode and owner, and flushes it to disk before the run journals the step done.
pub fn overwrite(path: &Path, bytes: &[u8]) -> Result<(), StepError> {
    let failed = |e: std::io::Error| StepError::Failed(format!("writing {}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .map_err(failed)?;
    file.write_all(bytes).map_err(failed)?;
    file.sync_all().map_err(failed)
}

/// Writes new files (absolute paths, bytes) into a one-shot container that has not started, their
/// directories created. They are readable by any user, because the product's image may run as
/// one cutover cannot name; no other container sees that filesystem, and it is removed with the
/// one-shot.
pub async fn put_new(
    engine: &dyn Engine,
    id: &str,
    entries: &[(String, Vec<u8>)],
) -> Result<(), StepError> {
    let mut archive = tar::Builder::new(Vec::new());
    let mut dirs: Vec<&str> = Vec::new();
    let failed = |e: std::io::Error| StepError::Failed(e.to_string());
    for (path, bytes) in entries {
        let relative = path.trim_start_matches('/');
        let (dir, _) = split(relative);
        if dir != "/" && !dirs.contains(&dir) {
            let mut header = new_header(tar::EntryType::Directory, 0o755, 0);
            archive
                .append_data(&mut header, format!("{dir}/"), std::io::empty())
                .map_err(failed)?;
            dirs.push(dir);
        }
        let mut header = new_header(tar::EntryType::Regular, 0o644, bytes.len() as u64);
        archive
            .append_data(&mut header, relative, bytes.as_slice())
            .map_err(failed)?;
    }
    let tar = archive.into_inner().map_err(failed)?;
    engine
        .archive_put(id, "/", crate::engine::bytes_stream(tar))
        .await?;
    Ok(())
}

/// A header owned by root, dated now.
fn new_header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_mode(mode);
    header.set_size(size);
    header.set_uid(0);
    header.set_gid(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    header.set_mtime(now.as_secs());
    header
}

pub fn split(path: &str) -> (&str, &str) {
    match path.rsplit_once('/') {
        Some(("", name)) => ("/", name),
        Some((dir, name)) => (dir, name),
        None => ("/", path),
    }
}

/// Writes the run's copy readable by its owner only, in a directory only its owner can enter
/// (see [`crate::private`]), and waits until it is on disk.
pub fn keep(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        crate::private::dir(dir).map_err(|e| e.to_string())?;
    }
    crate::private::write(path, bytes).map_err(|e| e.to_string())
}

/// Deletes a copy of the run; one that is already gone is fine.
pub fn forget(path: &Path) -> Result<(), StepError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StepError::Failed(e.to_string())),
        _ => Ok(()),
    }
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
