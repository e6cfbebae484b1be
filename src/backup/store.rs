//! Where backups live: one directory per container, one per backup, each with its manifest;
//! files readable by their owner only.

use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use futures_util::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::{io, BackupError, Manifest};
use crate::engine::ByteStream;

/// The size of the chunks files are read and written in.
pub const CHUNK: usize = 256 * 1024;

const MANIFEST: &str = "manifest.json";

/// Fast enough to keep up with a disk, and still a third of the size of most data.
const LEVEL: i32 = 1;
/// Threads that compress while the data streams in: compression on the host, beside the
/// transfer, is what makes a dump faster than `pg_dump -Fc` compressing in the server's one
/// process (bench/window.sh).
const WORKERS: u32 = 2;

/// A writer that hashes and counts what reaches the file.
struct Hashing<W: Write> {
    inner: W,
    hash: Sha256,
    bytes: u64,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A backup file being written: compressed with zstd as the data comes, never held in memory
/// whole, and hashed as stored.
pub struct Compressed {
    encoder: zstd::Encoder<'static, Hashing<std::io::BufWriter<std::fs::File>>>,
    path: PathBuf,
}

impl Compressed {
    /// Creates `path`, which should end in `.zst`: that is how [`open`] knows to decompress.
    pub fn create(path: &Path) -> Result<Compressed, BackupError> {
        let hashing = Hashing {
            inner: std::io::BufWriter::new(create_file(path)?),
            hash: Sha256::new(),
            bytes: 0,
        };
        let mut encoder =
            zstd::Encoder::new(hashing, LEVEL).map_err(io("starting the compressor"))?;
        encoder
            .multithread(WORKERS)
            .map_err(io("starting the compressor"))?;
        Ok(Compressed {
            encoder,
            path: path.to_path_buf(),
        })
    }

    pub fn write(&mut self, chunk: &[u8]) -> std::io::Result<()> {
        self.encoder.write_all(chunk)
    }

    /// Ends the stream and flushes the file to disk: the bytes stored and their SHA-256.
    pub fn finish(self) -> Result<(u64, String), BackupError> {
        let failed = || io(format!("writing {}", self.path.display()));
        let Hashing { inner, hash, bytes } = self.encoder.finish().map_err(failed())?;
        inner
            .into_inner()
            .map_err(|e| failed()(e.into_error()))?
            .sync_all()
            .map_err(failed())?;
        Ok((bytes, format!("{:x}", hash.finalize())))
    }
}

/// A backup file's content: decompressed when its name ends in `.zst` (older backups' dumps
/// were stored as the tool wrote them).
pub fn open(path: &Path) -> Result<Box<dyn Read + Send>, BackupError> {
    let failed = || io(format!("reading {}", path.display()));
    let file = std::fs::File::open(path).map_err(failed())?;
    Ok(match path.extension().is_some_and(|e| e == "zst") {
        true => Box::new(zstd::Decoder::new(file).map_err(failed())?),
        false => Box::new(file),
    })
}

/// A new backup's directory, named by when it was taken (sortable), with a suffix when another
/// backup of the container was taken in the same millisecond, in `dir` (refused when other users
/// could write it: see [`crate::private::dir`]); returns its id and path.
pub fn create_dir(dir: &Path, at: SystemTime) -> Result<(String, PathBuf), BackupError> {
    let stamp = humantime::format_rfc3339_millis(at)
        .to_string()
        .replace([':', '-'], "")
        .replace('.', "-");
    let stamp = stamp.trim_end_matches('Z');
    crate::private::dir(dir).map_err(|e| BackupError::Failed(e.to_string()))?;
    for n in 1.. {
        let id = if n == 1 {
            stamp.to_string()
        } else {
            format!("{stamp}-{n}")
        };
        let path = dir.join(&id);
        match std::fs::DirBuilder::new().mode(0o700).create(&path) {
            Ok(()) => return Ok((id, path)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io(format!("creating {}", path.display()))(e)),
        }
    }
    unreachable!("one of the suffixes is free")
}

pub fn create_file(path: &Path) -> Result<std::fs::File, BackupError> {
    crate::private::options()
        .create_new(true)
        .write(true)
        .open(path)
        .map_err(io(format!("creating {}", path.display())))
}

pub fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<(), BackupError> {
    let path = dir.join(MANIFEST);
    let text =
        serde_json::to_string_pretty(manifest).map_err(|e| BackupError::Failed(e.to_string()))?;
    let mut file = create_file(&path)?;
    // Typed data without credentials (they are read from the application when needed): never
    // masked as text, which could turn a boolean or a name that equals a secret into `***`.
    std::io::Write::write_all(&mut file, text.as_bytes())
        .map_err(io(format!("writing {}", path.display())))?;
    file.sync_all()
        .map_err(io(format!("writing {}", path.display())))
}

pub fn read_manifest(dir: &Path) -> Result<Manifest, BackupError> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path).map_err(io(format!("reading {}", path.display())))?;
    serde_json::from_str(&text).map_err(|e| {
        BackupError::Failed(format!("{} is not a backup manifest: {e}", path.display()))
    })
}

pub fn sha256_file(path: &Path) -> Result<String, BackupError> {
    let file = std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    let mut hash = Sha256::new();
    read_chunks(file, path, |chunk| hash.update(chunk))?;
    Ok(format!("{:x}", hash.finalize()))
}

/// Reads `reader` (the content of `path`) to its end, chunk by chunk.
pub fn read_chunks(
    mut reader: impl Read,
    path: &Path,
    mut each: impl FnMut(&[u8]),
) -> Result<(), BackupError> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        let n = reader
            .read(&mut buf)
            .map_err(io(format!("reading {}", path.display())))?;
        if n == 0 {
            return Ok(());
        }
        each(&buf[..n]);
    }
}

/// A reader as a stream of chunks, read on a blocking thread so that disk and decompression
/// never hold up the runtime.
pub fn read_stream(mut reader: impl Read + Send + 'static) -> ByteStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<bytes::Bytes>>(4);
    tokio::task::spawn_blocking(move || {
        let mut buf = vec![0u8; CHUNK];
        loop {
            match reader.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    if tx
                        .blocking_send(Ok(bytes::Bytes::copy_from_slice(&buf[..n])))
                        .is_err()
                    {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    break;
                }
            }
        }
    });
    futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// The bytes under a directory this host can read; what it cannot read counts nothing.
pub fn du(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| du(&e.path()))
        .sum()
}

/// A progress bar in bytes with throughput, on a terminal.
pub fn bar(progress: Option<&MultiProgress>, what: &str) -> ProgressBar {
    let Some(multi) = progress else {
        return ProgressBar::hidden();
    };
    let bar = multi.add(ProgressBar::no_length());
    let style = ProgressStyle::with_template("{prefix:.dim} {bytes} ({bytes_per_sec})")
        .unwrap_or_else(|_| ProgressStyle::default_spinner());
    bar.set_style(style);
    bar.set_prefix(what.to_string());
    bar
}

/// A backup as `cutover backups` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Listed {
    pub path: PathBuf,
    pub manifest: Manifest,
    pub bytes: u64,
}

/// A backup directory whose manifest cannot be read: it is said, never taken for no backup.
#[derive(Debug, Clone, Serialize)]
pub struct UnreadableBackup {
    pub path: PathBuf,
    pub why: String,
}

/// Every backup under `root`, of one container or all, oldest first.
pub fn list(root: &Path, container: Option<&str>) -> Result<Vec<Listed>, BackupError> {
    Ok(catalogue(root, container)?.0)
}

/// Every backup under `root` (oldest first), and the directories whose manifest cannot be read.
pub fn catalogue(
    root: &Path,
    container: Option<&str>,
) -> Result<(Vec<Listed>, Vec<UnreadableBackup>), BackupError> {
    let mut found = Vec::new();
    let mut unreadable = Vec::new();
    let Ok(containers) = std::fs::read_dir(root) else {
        return Ok((found, unreadable));
    };
    for dir in containers
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
    {
        if container.is_some_and(|c| dir.file_name().is_none_or(|n| n != c)) {
            continue;
        }
        for backup in std::fs::read_dir(&dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
        {
            if !backup.is_dir() {
                continue;
            }
            match read_manifest(&backup) {
                Ok(manifest) => {
                    let bytes = manifest.files.iter().map(|f| f.bytes).sum();
                    found.push(Listed {
                        path: backup,
                        manifest,
                        bytes,
                    });
                }
                Err(e) => unreadable.push(UnreadableBackup {
                    path: backup,
                    why: e.to_string(),
                }),
            }
        }
    }
    found.sort_by_key(|b| b.manifest.taken_at);
    Ok((found, unreadable))
}

/// Removes the oldest backups of a container beyond the newest `keep`; returns what it removed.
pub fn prune(root: &Path, container: &str, keep: usize) -> Result<Vec<String>, BackupError> {
    let all = list(root, Some(container))?;
    let mut removed = Vec::new();
    for old in all.iter().take(all.len().saturating_sub(keep)) {
        std::fs::remove_dir_all(&old.path)
            .map_err(io(format!("removing {}", old.path.display())))?;
        removed.push(old.manifest.id.clone());
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use proptest::prelude::*;

    use super::*;
    use crate::backup::{BackupTarget, FileEntry, VolumeTarget};
    use crate::testing::{cases, damaged, mutated, said, Scratch, ARBITRARY, FILES, MUTATED};

    /// A manifest as a backup writes it, from its parts.
    fn manifest() -> impl Strategy<Value = Manifest> {
        let volume = (any::<String>(), any::<String>(), any::<bool>()).prop_map(
            |(path, source, database)| VolumeTarget {
                path,
                source,
                database,
            },
        );
        let file = (
            any::<String>(),
            any::<String>(),
            any::<u64>(),
            "[0-9a-f]{64}",
        )
            .prop_map(|(name, of, bytes, sha256)| FileEntry {
                name,
                kind: "volume".into(),
                of,
                bytes,
                sha256,
            });
        (
            (
                any::<String>(),
                any::<String>(),
                any::<String>(),
                0..253_402_300_799u64,
            ),
            (
                any::<bool>(),
                any::<String>(),
                proptest::collection::vec(volume, 0..3),
            ),
            (
                proptest::option::of(any::<String>()),
                proptest::option::of(any::<String>()),
                proptest::collection::vec(file, 0..3),
            ),
        )
            .prop_map(
                |(
                    (id, container, image, secs),
                    (online, run, volumes),
                    (server, schema, files),
                )| {
                    Manifest {
                        id,
                        container,
                        image,
                        taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
                        online,
                        run,
                        target: BackupTarget {
                            database: None,
                            volumes,
                        },
                        server_version: server,
                        schema_version: schema,
                        files,
                        cutover: env!("CARGO_PKG_VERSION").into(),
                    }
                },
            )
    }

    /// The manifest of a backup of a volume and its embedded database, as written.
    fn written(dir: &Path) -> Vec<u8> {
        let example = Manifest {
            id: "20261121T120000Z".into(),
            container: "proget".into(),
            image: "proget.inedo.com/productimages/inedo/proget:2024.22".into(),
            taken_at: SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_262_400),
            online: false,
            run: "1795262399000-proget-upgrade.jsonl#proget@0".into(),
            target: BackupTarget {
                database: None,
                volumes: vec![VolumeTarget {
                    path: "/var/proget/database".into(),
                    source: "proget-db — données".into(),
                    database: true,
                }],
            },
            server_version: Some("16.4".into()),
            schema_version: None,
            files: vec![FileEntry {
                name: "volume-1.tar.zst".into(),
                kind: "volume".into(),
                of: "/var/proget/database".into(),
                bytes: 1234,
                sha256: "ab".repeat(32),
            }],
            cutover: "0.1.0".into(),
        };
        write_manifest(dir, &example).unwrap();
        std::fs::read(dir.join(MANIFEST)).unwrap()
    }

    /// A manifest that cannot be read is refused with its file named, so that `backups` lists
    /// it as unreadable and a restore says which backup is damaged.
    fn refused_naming_it(dir: &Path) -> Result<(), TestCaseError> {
        let e = read_manifest(dir).unwrap_err().to_string();
        said(&e)?;
        let path = dir.join(MANIFEST).display().to_string();
        prop_assert!(e.contains(&path), "{}", e);
        Ok(())
    }

    /// A manifest damaged at any byte (cut short by a crash while it was written, or
    /// overwritten by NUL or 0xFF) is refused, never read as another manifest: pretty JSON
    /// holds no byte that such damage leaves valid. Exhaustive over the offsets.
    #[test]
    fn a_manifest_damaged_at_any_byte_is_refused_with_its_file_named() {
        let scratch = Scratch::new("manifest-damaged");
        let bytes = written(scratch.path());
        for (damage, at, text) in damaged(&bytes) {
            std::fs::write(scratch.path().join(MANIFEST), &text).unwrap();
            if let Err(e) = refused_naming_it(scratch.path()) {
                panic!("{damage:?} at {at}: {e}");
            }
        }
    }

    proptest! {
        #![proptest_config(cases(FILES))]
        #[test]
        fn a_written_manifest_reads_back_equal(manifest in manifest()) {
            let scratch = Scratch::new("manifest-written");
            write_manifest(scratch.path(), &manifest).unwrap();
            prop_assert_eq!(read_manifest(scratch.path()).unwrap(), manifest);
        }
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_bytes_are_a_manifest_or_refused_naming_it(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let scratch = Scratch::new("manifest-bytes");
            std::fs::write(scratch.path().join(MANIFEST), &bytes).unwrap();
            if read_manifest(scratch.path()).is_err() {
                refused_naming_it(scratch.path())?;
            }
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn a_mutated_manifest_is_read_or_refused_naming_it(bytes in mutated(vec![{
            let scratch = Scratch::new("manifest-seed");
            String::from_utf8(written(scratch.path())).unwrap()
        }])) {
            let scratch = Scratch::new("manifest-mutated");
            std::fs::write(scratch.path().join(MANIFEST), &bytes).unwrap();
            if read_manifest(scratch.path()).is_err() {
                refused_naming_it(scratch.path())?;
            }
        }
    }

    #[test]
    fn a_dump_reads_back_the_same_stored_compressed_or_as_older_versions_stored_it() {
        let dir = std::env::temp_dir().join(format!("cutover-store-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..3 * CHUNK).map(|i| (i % 251) as u8).collect();

        let compressed = dir.join("database.pgdump.zst");
        let mut file = Compressed::create(&compressed).unwrap();
        file.write(&data).unwrap();
        let (bytes, sha256) = file.finish().unwrap();
        assert_eq!(bytes, std::fs::metadata(&compressed).unwrap().len());
        assert!(bytes < data.len() as u64 / 10, "compressed: {bytes}");
        assert_eq!(
            sha256,
            sha256_file(&compressed).unwrap(),
            "the hash is of what is stored"
        );

        let plain = dir.join("database.pgdump");
        std::fs::write(&plain, &data).unwrap();
        for path in [&compressed, &plain] {
            let mut read = Vec::new();
            open(path).unwrap().read_to_end(&mut read).unwrap();
            assert!(read == data, "{} reads back", path.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
