//! Dumps and restores through the database server's own container: `pg_dump -Fc` and
//! `mysqldump --single-transaction` by exec, their output streamed to the host; the password is
//! given in the exec's environment (`PGPASSWORD`, `MYSQL_PWD`), never on a command line.

use std::io::{Read, Write};
use std::path::Path;

use indicatif::MultiProgress;
use sha2::{Digest, Sha256};

use super::location::Engine as DbEngine;
use super::{io, store, BackupError, DatabaseTarget, FileEntry};
use crate::engine::{ByteStream, Engine};
use crate::secrets;

/// How much of a tool's error output a failure quotes.
const ERROR_LINES: usize = 8;

fn env(db: &DatabaseTarget, password: &str) -> Vec<String> {
    match db.engine {
        DbEngine::Mysql => vec![format!("MYSQL_PWD={password}")],
        _ => vec![format!("PGPASSWORD={password}")],
    }
}

/// A client command against the database over the container's own TCP port, as the
/// application reaches it.
fn client(db: &DatabaseTarget, program: &str, args: &[&str]) -> Vec<String> {
    let port = db.port.to_string();
    let mut cmd: Vec<String> = match db.engine {
        DbEngine::Mysql => vec![
            program.into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-P".into(),
            port,
            "-u".into(),
            db.user.clone(),
        ],
        _ => vec![
            program.into(),
            "-h".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port,
            "-U".into(),
            db.user.clone(),
        ],
    };
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

fn unsupported(db: &DatabaseTarget) -> BackupError {
    BackupError::Failed(format!(
        "cutover cannot dump a {} database from here; back it up with its own tools and pass --skip-backup",
        db.engine_name()
    ))
}

/// Runs a command in the database's container; its error output is kept for the message.
async fn run(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    cmd: &[String],
    input: Option<ByteStream>,
    stdout: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<(), BackupError> {
    let mut errors: Vec<String> = Vec::new();
    let code = engine
        .exec_io(
            &db.container,
            cmd,
            &env(db, password),
            input,
            stdout,
            &mut |line| {
                if errors.len() < ERROR_LINES {
                    errors.push(secrets::redact(line));
                }
            },
        )
        .await?;
    if code != 0 {
        return Err(BackupError::Failed(format!(
            "`{}` in {} exited with code {code}: {}",
            cmd[0],
            db.container,
            if errors.is_empty() {
                "no message".to_string()
            } else {
                errors.join(" / ")
            }
        )));
    }
    Ok(())
}

/// A query's single value.
pub async fn query(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    sql: &str,
) -> Result<String, BackupError> {
    let cmd = match db.engine {
        DbEngine::Postgres => client(db, "psql", &["-d", &db.name, "-Atc", sql]),
        DbEngine::Mysql => client(db, "mysql", &["-N", "-B", "-e", sql, &db.name]),
        DbEngine::Sqlserver => return Err(unsupported(db)),
    };
    let mut out = Vec::new();
    run(engine, db, password, &cmd, None, &mut |bytes| {
        out.extend_from_slice(bytes);
        Ok(())
    })
    .await?;
    Ok(String::from_utf8_lossy(&out).trim().to_string())
}

pub async fn size(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
) -> Result<u64, BackupError> {
    let sql = match db.engine {
        DbEngine::Postgres => "SELECT pg_database_size(current_database())".to_string(),
        _ => format!("SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = '{}'", db.name.replace('\'', "")),
    };
    let text = query(engine, db, password, &sql).await?;
    Ok(text.trim().parse().unwrap_or(0))
}

/// Streams the dump into `dir`; returns its entry and the server's version.
pub async fn dump(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    dir: &Path,
    progress: Option<&MultiProgress>,
) -> Result<(FileEntry, String), BackupError> {
    let (version_sql, cmd, name) = match db.engine {
        // With --create the dump recreates the database itself, with its encoding, locale,
        // settings and privileges.
        DbEngine::Postgres => (
            "SHOW server_version",
            client(db, "pg_dump", &["-Fc", "--create", "-d", &db.name]),
            "database.pgdump",
        ),
        DbEngine::Mysql => (
            "SELECT VERSION()",
            client(
                db,
                "mysqldump",
                &[
                    "--single-transaction",
                    "--no-tablespaces",
                    "--databases",
                    &db.name,
                ],
            ),
            "database.sql",
        ),
        DbEngine::Sqlserver => return Err(unsupported(db)),
    };
    let version = query(engine, db, password, version_sql).await?;
    let path = dir.join(name);
    let mut file = store::create_file(&path)?;
    let mut hash = Sha256::new();
    let mut bytes = 0u64;
    let bar = store::bar(progress, &format!("dump of {}", db.name));
    let mut failure = None;
    run(engine, db, password, &cmd, None, &mut |chunk| {
        hash.update(chunk);
        bytes += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
        file.write_all(chunk)
            .inspect_err(|e| failure = Some(e.to_string()))
    })
    .await?;
    bar.finish_and_clear();
    file.sync_all()
        .map_err(io(format!("writing {}", path.display())))?;
    if let Some(e) = failure {
        return Err(BackupError::Failed(format!(
            "writing {}: {e}",
            path.display()
        )));
    }
    Ok((
        FileEntry {
            name: name.into(),
            kind: "database".into(),
            of: db.name.clone(),
            bytes,
            sha256: format!("{:x}", hash.finalize()),
        },
        version,
    ))
}

/// A file as a stream, for a command's standard input.
fn file_stream(path: &Path) -> Result<ByteStream, BackupError> {
    let file = std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
    Ok(store::read_stream(file))
}

/// Proves the dump readable by its own tool.
pub async fn check(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    path: &Path,
) -> Result<(), BackupError> {
    match db.engine {
        DbEngine::Postgres => {
            let cmd = vec!["pg_restore".to_string(), "--list".to_string()];
            run(engine, db, "", &cmd, Some(file_stream(path)?), &mut |_| {
                Ok(())
            })
            .await
        }
        _ => {
            // mysqldump ends a complete dump with this line.
            let mut file =
                std::fs::File::open(path).map_err(io(format!("reading {}", path.display())))?;
            let len = file.metadata().map(|m| m.len()).unwrap_or(0);
            let mut tail = Vec::new();
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(len.saturating_sub(256)))
                .map_err(io("reading the dump"))?;
            file.read_to_end(&mut tail)
                .map_err(io("reading the dump"))?;
            match String::from_utf8_lossy(&tail).contains("-- Dump completed") {
                true => Ok(()),
                false => Err(BackupError::Failed(format!(
                    "{} is not a complete mysqldump (no \"Dump completed\" line)",
                    path.display()
                ))),
            }
        }
    }
}

/// Replaces the database with the dump: the database is dropped and created again, so that
/// every object the dump does not hold (a table a migration added) goes too. This needs a
/// database user that may drop and create its database (its owner with CREATEDB, or a
/// superuser, as the products' own compose files set up).
pub async fn restore(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    path: &Path,
) -> Result<(), BackupError> {
    match db.engine {
        DbEngine::Postgres => {
            let cmd = client(
                db,
                "pg_restore",
                &[
                    "-d",
                    "postgres",
                    "--create",
                    "--clean",
                    "--if-exists",
                    "--exit-on-error",
                ],
            );
            run(engine, db, password, &cmd, Some(file_stream(path)?), &mut |_| Ok(())).await.map_err(|e| {
                BackupError::Failed(format!("{e} (restoring drops and creates the database {}: its user needs to own it and have CREATEDB)", db.name))
            })
        }
        DbEngine::Mysql => {
            let name = db.name.replace('`', "");
            let reset = format!("DROP DATABASE IF EXISTS `{name}`; CREATE DATABASE `{name}`");
            run(
                engine,
                db,
                password,
                &client(db, "mysql", &["-e", &reset]),
                None,
                &mut |_| Ok(()),
            )
            .await?;
            run(
                engine,
                db,
                password,
                &client(db, "mysql", &[]),
                Some(file_stream(path)?),
                &mut |_| Ok(()),
            )
            .await
        }
        DbEngine::Sqlserver => Err(unsupported(db)),
    }
}
