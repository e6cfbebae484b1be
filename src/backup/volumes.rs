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
    let name = format!("{}-restore", app.name());
    if let Some(old) = engine.inspect(&name).await? {
        engine.remove(old.id()).await?;
    }
    let helper = engine.create_helper(&name, &helper).await?;
    let mut said = Vec::new();
    let emptied = async {
        engine.start(&helper).await?;
        engine
            .follow_to_exit(&helper, &mut |line| said.push(line.to_string()))
            .await
    }
    .await;
    engine.remove(&helper).await?;
    match emptied? {
        0 => {}
        code => {
            return Err(BackupError::Failed(format!(
                "emptying {mount} before restoring it failed (exit {code}: {}); the image needs /bin/sh and rm",
                said.join(" / ")
            )))
        }
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
