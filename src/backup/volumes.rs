//! Volumes and bind mounts, streamed through the archive API as tar and compressed with zstd
//! as they come: never held in memory whole. On Podman, whose archive API reports every file as
//! root's, through `tar` run in a one-shot of the application's image instead, so that owners
//! come back too.

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
    let name = format!("volume-{n}.tar.zst");
    let path = dir.join(&name);
    let entry = |(bytes, sha256)| FileEntry {
        name: name.clone(),
        kind: "volume".into(),
        of: volume.path.clone(),
        bytes,
        sha256,
    };
    if engine.other_than_docker().is_some() {
        return Ok(entry(
            save_with_tar(engine, app, &volume.path, &path).await?,
        ));
    }
    let id = app.id().to_string();
    let mut stream = engine
        .archive_get(&id, &volume.path)
        .await?
        .ok_or_else(|| {
            BackupError::Failed(format!("{} is not in the container any more", volume.path))
        })?;
    let mut file = store::Compressed::create(&path)?;
    let bar = store::bar(progress, &format!("volume {}", volume.path));
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        bar.inc(chunk.len() as u64);
        file.write(&chunk)
            .map_err(io(format!("writing {}", path.display())))?;
    }
    bar.finish_and_clear();
    Ok(entry(file.finish()?))
}

/// The mount's files, owners and all, as `tar` in a one-shot of the app's image writes them
/// (entries named `./x`): its size and checksum once compressed into `path`.
async fn save_with_tar(
    engine: &dyn Engine,
    app: &Container,
    mount: &str,
    path: &Path,
) -> Result<(u64, String), BackupError> {
    let mut file = store::Compressed::create(path)?;
    let command = ["tar", "-cf", "-", "-C", mount, "."].map(str::to_string);
    in_holder(engine, app, "save", &command, None, &mut |chunk| {
        file.write(chunk)
    })
    .await?;
    file.finish()
}

/// Runs `command` in a one-shot of `app`'s image that holds its volumes (see
/// [`Helper::over_volumes_of`]), feeding it `input`, its output to `stdout`.
async fn in_holder(
    engine: &dyn Engine,
    app: &Container,
    what: &str,
    command: &[String],
    input: Option<crate::engine::ByteStream>,
    stdout: crate::engine::ByteSink<'_>,
) -> Result<(), BackupError> {
    // It holds the volumes for as long as `tar` runs in it; one a killed run leaves behind
    // goes by itself within a day, or when that container is next backed up or restored.
    let holder = Helper::over_volumes_of(app, &["/bin/sh", "-c", "exec sleep 86400"]);
    let name = format!("{}-{what}", app.name());
    let ran = holder
        .exec_once(engine, &name, command, input, stdout)
        .await?;
    match ran.code {
        0 => Ok(()),
        code => Err(BackupError::Failed(format!(
            "`{}` for {} exited with code {code} ({}); the image needs /bin/sh, sleep, tar and rm",
            command.join(" "),
            app.name(),
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
    if first_entry(archive)?.starts_with(b"./") {
        // Written by `tar` in a one-shot (on Podman): put back the same way, owners and all.
        let command = [
            "/bin/sh",
            "-c",
            &format!("{script}; tar -xf - -C \"$1\""),
            "sh",
            mount,
        ]
        .map(str::to_string);
        let input = store::read_stream(store::open(archive)?);
        return in_holder(engine, app, "restore", &command, Some(input), &mut |_| {
            Ok(())
        })
        .await;
    }
    let helper = Helper::over_volumes_of(app, &["/bin/sh", "-c", script, "sh", mount]);
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
    if crate::engine::podman::rooted_at_the_directory(&first_entry(archive)?) {
        return Ok(mount);
    }
    Ok(match mount.rsplit_once('/') {
        Some(("", _)) | None => "/",
        Some((parent, _)) => parent,
    })
}

/// The name of the archive's first entry: how it was written says where it goes.
fn first_entry(archive: &Path) -> Result<Vec<u8>, BackupError> {
    let mut tar = tar::Archive::new(store::open(archive)?);
    let what = format!("reading {}", archive.display());
    Ok(match tar.entries().map_err(io(what.clone()))?.next() {
        Some(entry) => entry.map_err(io(what))?.header().path_bytes().to_vec(),
        None => Vec::new(),
    })
}
