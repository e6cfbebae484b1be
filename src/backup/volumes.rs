//! Volumes and bind mounts, streamed through the archive API as tar and compressed with zstd
//! as they come: never held in memory whole.

use std::path::Path;

use crate::engine::Container;
use futures_util::StreamExt;
use indicatif::MultiProgress;

use super::{io, store, BackupError, FileEntry, VolumeTarget};
use crate::engine::{Engine, Helper};

/// Saves one mount of the (stopped) application as `volume-N.tar.zst`.
pub async fn save(
    engine: &dyn Engine,
    app: &Container,
    volume: &VolumeTarget,
    dir: &Path,
    n: usize,
    progress: Option<&MultiProgress>,
) -> Result<FileEntry, BackupError> {
    let id = app.id().to_string();
    let mut stream = engine
        .archive_get(&id, &volume.path)
        .await?
        .ok_or_else(|| {
            BackupError::Failed(format!("{} is not in the container any more", volume.path))
        })?;
    let name = format!("volume-{n}.tar.zst");
    let path = dir.join(&name);
    let mut file = store::Compressed::create(&path)?;
    let bar = store::bar(progress, &format!("volume {}", volume.path));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bar.inc(chunk.len() as u64);
        file.write(&chunk)
            .map_err(io(format!("writing {}", path.display())))?;
    }
    bar.finish_and_clear();
    let (bytes, sha256) = file.finish()?;
    Ok(FileEntry {
        name,
        kind: "volume".into(),
        of: volume.path.clone(),
        bytes,
        sha256,
    })
}

/// The first file of `mounts` (of the running or stopped `app`) that root does not own, if any.
///
/// Podman's archive API reports every file as owned by root (measured on Podman 4.3.1, running
/// or stopped): a volume saved through it would come back with all its files root's, and a
/// server that checks who owns its data (PostgreSQL) would not start on it. So on Podman a
/// volume is backed up only when root owns all of it. The look runs in a one-shot container of
/// the application's own image, as root, without network.
pub async fn not_owned_by_root(
    engine: &dyn Engine,
    app: &Container,
    mounts: &[String],
) -> Result<Option<String>, BackupError> {
    let script = "for d; do find \"$d\" \\( ! -user 0 -o ! -group 0 \\) -print | head -n 1; done";
    let mut entrypoint: Vec<String> = ["/bin/sh", "-c", script, "sh"].map(str::to_string).to_vec();
    entrypoint.extend(mounts.iter().cloned());
    let helper = Helper {
        image: app.image().to_string(),
        user: Some("0".into()),
        entrypoint: Some(entrypoint),
        volumes_from: vec![app.id().to_string()],
        ..Default::default()
    };
    let ran = helper
        .run_once(engine, &format!("{}-owners", app.name()))
        .await?;
    match ran.code {
        0 => Ok(ran.said.into_iter().find(|line| !line.is_empty())),
        code => Err(BackupError::Failed(format!(
            "looking who owns the files of {} failed (exit {code}: {}); the image needs /bin/sh, find and head",
            mounts.join(", "),
            ran.said.join(" / ")
        ))),
    }
}

/// Empties the mount and extracts the archive into it, so that it holds what was saved and
/// nothing a later version wrote. The emptying runs in a one-shot container of the
/// application's own image (the engine's API cannot delete files), as root, without network.
pub async fn restore(
    engine: &dyn Engine,
    app: &Container,
    mount: &str,
    archive: &Path,
) -> Result<(), BackupError> {
    let id = app.id().to_string();
    let script = "set -e; for d; do cd \"$d\"; rm -rf -- ./* ./.[!.]* ./..?*; done";
    let helper = Helper {
        image: app.image().to_string(),
        user: Some("0".into()),
        entrypoint: Some(vec![
            "/bin/sh".into(),
            "-c".into(),
            script.into(),
            "sh".into(),
            mount.into(),
        ]),
        volumes_from: vec![id.clone()],
        ..Default::default()
    };
    let emptied = helper
        .run_once(engine, &format!("{}-restore", app.name()))
        .await?;
    if emptied.code != 0 {
        return Err(BackupError::Failed(format!(
            "emptying {mount} before restoring it failed (exit {}: {}); the image needs /bin/sh and rm",
            emptied.code,
            emptied.said.join(" / ")
        )));
    }
    engine
        .archive_put(
            &id,
            extract_at(archive, mount)?,
            store::read_stream(store::open(archive)?),
        )
        .await?;
    Ok(())
}

/// Where the archive of `mount` is extracted: beside it, its entries being named after it
/// (`payload/x`); or into it, when they are named from it (see
/// [`crate::engine::podman::rooted_at_the_directory`]).
fn extract_at<'a>(archive: &Path, mount: &'a str) -> Result<&'a str, BackupError> {
    let mut tar = tar::Archive::new(store::open(archive)?);
    let what = format!("reading {}", archive.display());
    let first = match tar.entries().map_err(io(what.clone()))?.next() {
        Some(entry) => entry.map_err(io(what))?.header().path_bytes().to_vec(),
        None => Vec::new(),
    };
    if crate::engine::podman::rooted_at_the_directory(&first) {
        return Ok(mount);
    }
    Ok(match mount.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    })
}
