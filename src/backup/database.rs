//! Dumps and restores through the database server's own container: `pg_dump -Fc -Z0` and
//! `mysqldump --single-transaction` by exec, their output streamed to the host and compressed
//! there; the password is given in the exec's environment (`PGPASSWORD`, `MYSQL_PWD`), never on
//! a command line.
//! A restore goes into the existing database, which it never drops: see [`restore`].

use std::path::Path;

use indicatif::MultiProgress;

use super::location::DbEngine;
use super::{store, BackupError, DatabaseTarget, FileEntry};
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

/// The options every client takes to reach the database over the container's own TCP port,
/// as the application reaches it.
fn connection(db: &DatabaseTarget) -> Vec<String> {
    let (port, user) = match db.engine {
        DbEngine::Mysql => ("-P", "-u"),
        _ => ("-p", "-U"),
    };
    [
        "-h",
        "127.0.0.1",
        port,
        &db.port.to_string(),
        user,
        &db.user,
    ]
    .map(str::to_string)
    .to_vec()
}

/// A client command against the database.
fn client(db: &DatabaseTarget, program: &str, args: &[&str]) -> Vec<String> {
    let mut cmd = vec![program.to_string()];
    cmd.extend(connection(db));
    cmd.extend(args.iter().map(|a| a.to_string()));
    cmd
}

fn unsupported(db: &DatabaseTarget) -> BackupError {
    BackupError::Failed(format!(
        "cutover cannot dump a {} database from here; back it up with its own tools and pass --skip-backup",
        db.engine.name()
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

/// The files a dump is written to.
pub const PG_DUMP: &str = "database.pgdump.zst";
pub const MYSQL_DUMP: &str = "database.sql.zst";

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
        // settings and privileges. -Z0: pg_dump's own compression runs in its one process and
        // halves its speed (bench/window.sh); the host compresses on several threads instead.
        DbEngine::Postgres => (
            "SHOW server_version",
            client(db, "pg_dump", &["-Fc", "-Z0", "--create", "-d", &db.name]),
            PG_DUMP,
        ),
        DbEngine::Mysql => (
            "SELECT VERSION()",
            client(
                db,
                "mysqldump",
                // Without --databases: no CREATE DATABASE or USE, so that the dump restores into
                // the existing database, which the user may not be allowed to create.
                &["--single-transaction", "--no-tablespaces", &db.name],
            ),
            MYSQL_DUMP,
        ),
        DbEngine::Sqlserver => return Err(unsupported(db)),
    };
    let version = query(engine, db, password, version_sql).await?;
    let path = dir.join(name);
    let mut file = store::Compressed::create(&path)?;
    let bar = store::bar(progress, &format!("dump of {}", db.name));
    let mut failure = None;
    run(engine, db, password, &cmd, None, &mut |chunk| {
        bar.inc(chunk.len() as u64);
        file.write(chunk)
            .inspect_err(|e| failure = Some(e.to_string()))
    })
    .await?;
    bar.finish_and_clear();
    if let Some(e) = failure {
        return Err(BackupError::Failed(format!(
            "writing {}: {e}",
            path.display()
        )));
    }
    let (bytes, sha256) = file.finish()?;
    Ok((
        FileEntry {
            name: name.into(),
            kind: "database".into(),
            of: db.name.clone(),
            bytes,
            sha256,
        },
        version,
    ))
}

/// A dump's content as a stream, for a command's standard input.
fn file_stream(path: &Path) -> Result<ByteStream, BackupError> {
    Ok(store::read_stream(store::open(path)?))
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
            // mysqldump ends a complete dump with this line: read to the end, which also proves
            // the compressed file whole.
            let mut tail = Vec::new();
            store::read_chunks(store::open(path)?, path, |chunk| {
                tail.extend_from_slice(chunk);
                tail.drain(..tail.len().saturating_sub(256));
            })?;
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

/// Empties the database of everything a restore puts back, so that objects the dump does not
/// hold (a table a migration added) go too: every schema but `public` with what it holds, and
/// in `public` every table, view, sequence, routine and type that no extension owns.
/// Extensions stay (`CREATE EXTENSION IF NOT EXISTS` in the dump keeps them): a superuser may
/// have created them for a user who could not create them again.
const PG_EMPTY: &str = r#"DO $cutover$
DECLARE
  system CONSTANT text := '^(pg_catalog|information_schema|pg_toast.*|pg_temp.*)$';
  target text;
BEGIN
  FOR target IN SELECT format('SCHEMA %I', nspname) FROM pg_namespace
      WHERE nspname <> 'public' AND nspname !~ system LOOP
    EXECUTE format('DROP %s CASCADE', target);
  END LOOP;
  FOR target IN
    SELECT format('%s IF EXISTS %s',
        CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
          WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END,
        format('%I.%I', 'public', c.relname))
      FROM pg_class c
      WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
          AND d.objid = c.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('%s IF EXISTS %s',
        CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE' ELSE 'FUNCTION' END,
        p.oid::regprocedure::text)
      FROM pg_proc p
      WHERE p.pronamespace = 'public'::regnamespace
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
          AND d.objid = p.oid AND d.deptype = 'e')
    UNION ALL
    SELECT format('%s IF EXISTS %s', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END,
        format('%I.%I', 'public', t.typname))
      FROM pg_type t
      WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'd', 'r', 'm', 'c')
        AND (t.typtype <> 'c' OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
        AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
          AND d.objid = t.oid AND d.deptype = 'e')
  LOOP
    EXECUTE format('DROP %s CASCADE', target);
  END LOOP;
END
$cutover$;"#;

/// What stops a restore into the existing database, one line each: a user who is not a
/// superuser must be able to drop and recreate every object it replaces (own it, or be a member
/// of its owner), create schemas in the database when it has more than `public`, and create
/// tables in `public`.
const PG_RESTORE_PRIVILEGES: &str = r#"WITH me AS (SELECT rolsuper FROM pg_roles WHERE rolname = current_user),
ext AS (SELECT classid, objid FROM pg_depend WHERE deptype = 'e'),
problems AS (
  SELECT format('schema %I is owned by %I', nspname, pg_get_userbyid(nspowner)) AS problem
    FROM pg_namespace
    WHERE nspname !~ '^(pg_catalog|information_schema|pg_toast.*|pg_temp.*|public)$'
      AND NOT pg_has_role(nspowner, 'MEMBER')
  UNION ALL
  SELECT format('%s %I.%I is owned by %I', CASE c.relkind WHEN 'S' THEN 'sequence' WHEN 'v' THEN 'view' ELSE 'table' END,
      n.nspname, c.relname, pg_get_userbyid(c.relowner))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname !~ '^(pg_catalog|information_schema|pg_toast.*|pg_temp.*)$'
      AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S') AND NOT pg_has_role(c.relowner, 'MEMBER')
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_class'::regclass AND ext.objid = c.oid)
  UNION ALL
  SELECT format('routine %s is owned by %I', p.oid::regprocedure, pg_get_userbyid(p.proowner))
    FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE n.nspname !~ '^(pg_catalog|information_schema|pg_toast.*|pg_temp.*)$'
      AND NOT pg_has_role(p.proowner, 'MEMBER')
      AND NOT EXISTS (SELECT 1 FROM ext WHERE ext.classid = 'pg_proc'::regclass AND ext.objid = p.oid)
  UNION ALL
  SELECT 'it may not create schemas in the database (CREATE on the database)'
    WHERE NOT has_database_privilege(current_database(), 'CREATE')
      AND EXISTS (SELECT 1 FROM pg_namespace
        WHERE nspname !~ '^(pg_catalog|information_schema|pg_toast.*|pg_temp.*|public)$')
  UNION ALL
  SELECT 'it may not create tables in schema public (CREATE on public)'
    WHERE EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public')
      AND NOT has_schema_privilege('public', 'CREATE')
)
SELECT problem FROM problems, me WHERE NOT me.rolsuper LIMIT 5"#;

/// A probe of what a MySQL/MariaDB restore does to the database's tables (create, lock, insert,
/// alter, drop), on a table of its own: it touches none of the application's.
fn mysql_probe() -> String {
    let table = format!("`cutover_probe_{}`", std::process::id());
    format!(
        "CREATE TABLE {table} (i INT PRIMARY KEY); LOCK TABLES {table} WRITE; INSERT INTO {table} VALUES (1); UNLOCK TABLES; ALTER TABLE {table} ADD COLUMN j INT; DROP TABLE {table}"
    )
}

/// The dump tool reads every object: a dump of the schema alone, which changes nothing.
pub async fn check_dump(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
) -> Result<(), BackupError> {
    let dump = match db.engine {
        DbEngine::Postgres => client(db, "pg_dump", &["--schema-only", "-d", &db.name]),
        DbEngine::Mysql => client(
            db,
            "mysqldump",
            &["--no-data", "--no-tablespaces", &db.name],
        ),
        DbEngine::Sqlserver => return Err(unsupported(db)),
    };
    run(engine, db, password, &dump, None, &mut |_| Ok(()))
        .await
        .map_err(|e| BackupError::Failed(format!("the database cannot be dumped: {e}")))
}

/// Proves, before anything stops, that the backup can be taken and put back: the dump tool reads
/// every object ([`check_dump`]), and the user may replace every object a restore replaces (on
/// MySQL, tried on a table of its own). Says what is missing.
pub async fn check_access(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
) -> Result<(), BackupError> {
    check_dump(engine, db, password).await?;
    let restore = match db.engine {
        DbEngine::Mysql => Some(mysql_probe()),
        _ => None,
    };
    let missing = match restore {
        None => query(engine, db, password, PG_RESTORE_PRIVILEGES).await?,
        Some(probe) => {
            let cmd = client(db, "mysql", &["-e", &probe, &db.name]);
            match run(engine, db, password, &cmd, None, &mut |_| Ok(())).await {
                Ok(()) => String::new(),
                Err(e) => e.to_string(),
            }
        }
    };
    match missing.trim() {
        "" => Ok(()),
        missing => Err(BackupError::Failed(format!(
            "a restore could not put the backup back, because the database user {} cannot replace what the database holds: {}",
            db.user,
            missing.lines().collect::<Vec<_>>().join("; ")
        ))),
    }
}

/// Replaces the database's contents with the dump, inside the existing database: it is never
/// dropped (the application's user may not be allowed to create it again, and the quickstarts'
/// `postgres` database cannot be dropped while connected to it). PostgreSQL empties it and
/// restores in one transaction, so that a restore that fails leaves everything as it was;
/// MySQL/MariaDB, whose DDL cannot be rolled back, drops the tables then loads the dump, after
/// [`check_access`] proved before any downtime that the user may do both.
pub async fn restore(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    path: &Path,
) -> Result<(), BackupError> {
    let script = match db.engine {
        // A COMMENT ON EXTENSION needs the extension's owner, often a superuser: extensions are
        // kept, so their comments are too. COPY data passes through untouched. A dump that
        // cannot be read ends in an error, never in a COMMIT.
        DbEngine::Postgres => concat!(
            "sql=$1; db=$2; shift 2; ",
            "{ printf '%s\\n' 'BEGIN;' \"$sql\"; ",
            "if pg_restore -f -; then echo 'COMMIT;'; ",
            "else echo \"DO \\$\\$BEGIN RAISE EXCEPTION 'the backup could not be read back'; END\\$\\$;\"; fi; } ",
            "| awk 'copy { print; if ($0 == \"\\\\.\") copy = 0; next } ",
            "/^COPY .* FROM stdin;$/ { copy = 1 } /^COMMENT ON EXTENSION / { next } { print }' ",
            "| psql -X -q -v ON_ERROR_STOP=1 \"$@\" -d \"$db\""
        ),
        DbEngine::Mysql => concat!(
            "sql=$1; db=$2; shift 2; ",
            "{ echo 'SET FOREIGN_KEY_CHECKS=0;'; ",
            "mysql -N -B \"$@\" -e \"$sql\" \"$db\" || echo 'SELECT * FROM cutover_could_not_list_the_tables;'; ",
            "echo 'SET FOREIGN_KEY_CHECKS=1;'; cat; } | mysql \"$@\" \"$db\""
        ),
        DbEngine::Sqlserver => return Err(unsupported(db)),
    };
    let empty = match db.engine {
        DbEngine::Postgres => PG_EMPTY.to_string(),
        _ => "SELECT CONCAT('DROP ', IF(TABLE_TYPE = 'VIEW', 'VIEW', 'TABLE'), ' IF EXISTS `', REPLACE(TABLE_NAME, '`', '``'), '`;') FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()".to_string(),
    };
    let mut cmd = vec![
        "sh".to_string(),
        "-c".to_string(),
        script.to_string(),
        "sh".to_string(),
        empty,
        db.name.clone(),
    ];
    cmd.extend(connection(db));
    run(
        engine,
        db,
        password,
        &cmd,
        Some(file_stream(path)?),
        &mut |_| Ok(()),
    )
    .await
    .map_err(|e| BackupError::Failed(format!("restoring the database {}: {e}", db.name)))
}
