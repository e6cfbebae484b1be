//! A rehearsal's copy of the product's database: a server of the production server's own image,
//! with its settings, on a fresh volume and on an isolated network only, holding a consistent
//! dump of the product's database read while the product serves. The migration of the new
//! version is tried there, where whatever it does touches nothing of production's.
//!
//! Production is only read: one `pg_dump` session (a snapshot, as `--backup-online` takes it)
//! and a query of the extensions the database has. The copy's server is given what a restore as
//! the product's own user needs and a fresh server lacks: the product's role with its password,
//! the database it owns, the extensions a superuser made for it (Quay's `pg_trgm`). That is done
//! as the copy's superuser over its local socket (the official image trusts `POSTGRES_USER`
//! there), the statements on standard input, so that the password is on no command line.

use std::path::Path;

use crate::engine::Container;
use serde::{Deserialize, Serialize};

use super::location::DbEngine;
use super::{database, volume_copy, App, BackupError, DatabaseTarget};
use crate::engine::{Engine, Helper};

/// The name the copy's server answers to on the rehearsal's network. It is deliberately not
/// the production server's: a setting the rehearsal did not rewrite names a host that does not
/// resolve there, and fails, rather than reaching anything.
pub const ALIAS: &str = "cutover-rehearsal-db";

pub use crate::engine::REHEARSAL_LABEL as LABEL;

/// What a rehearsal of `product` makes, by names fixed from the product's, so that an undo or
/// `cutover recover` finds each without having journaled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CopyServer {
    pub product: String,
    /// The internal network the rehearsal's containers share and nothing else is on.
    pub network: String,
    /// The copy's server container, and its data volume.
    pub container: String,
    pub volume: String,
}

impl CopyServer {
    pub fn of(product: &str) -> CopyServer {
        CopyServer {
            product: product.to_string(),
            network: format!("{product}-cutover-rehearse"),
            container: format!("{product}-cutover-rehearse-db"),
            volume: format!("{product}-cutover-rehearse-db"),
        }
    }

    /// The copy, as the product's user reaches it from inside its server.
    pub fn target(&self, db: &DatabaseTarget) -> DatabaseTarget {
        DatabaseTarget {
            container: self.container.clone(),
            ..db.clone()
        }
    }

    /// The host entry (`ALIAS:ADDRESS`) that names the copy on the rehearsal's network to a
    /// container there, or `None` before the copy has an address. The engine's DNS names it
    /// too, except Podman's with its CNI backend (Debian's 4.3), which leaves an internal
    /// network without DNS (podman-network-create(1), `--internal`): seen, a migration that
    /// could not resolve the copy.
    pub async fn host_entry(&self, engine: &dyn Engine) -> Result<Option<String>, BackupError> {
        let Some(copy) = engine.inspect(&self.container).await? else {
            return Ok(None);
        };
        Ok(copy
            .attachments()
            .into_iter()
            .find(|a| a.network == self.network)
            .and_then(|a| a.address)
            .map(|address| format!("{ALIAS}:{address}")))
    }

    /// The label everything of this rehearsal carries.
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![(LABEL.to_string(), self.product.clone())]
    }
}

/// The copy's superuser, in its server's container: `wait ENGINE PORT` until the server accepts
/// connections over TCP (an image's first start runs a server without networking while it
/// initialises), `sql ENGINE PORT [DATABASE]` runs the statements on standard input as the
/// superuser over the local socket (PostgreSQL: in DATABASE, `postgres` without it) (the official images trust it: `POSTGRES_USER`; MySQL's root, with
/// `MYSQL_ROOT_PASSWORD`/`MARIADB_ROOT_PASSWORD` from the container's own environment).
const SUPERUSER: &str = r#"set -e
op=$1 engine=$2 port=$3
ready() {
  case $engine in
  pg) pg_isready -q -h 127.0.0.1 -p "$port" ;;
  # Alive is 0 even when the server refuses who asks.
  *) mariadb-admin ping -h 127.0.0.1 -P "$port" --silent 2>/dev/null || mysqladmin ping -h 127.0.0.1 -P "$port" --silent 2>/dev/null ;;
  esac
}
if [ "$op" = wait ]; then
  i=0
  until ready; do
    i=$((i + 1))
    if [ "$i" -ge 1200 ]; then echo "the copy's server did not accept connections within 120 s" >&2; exit 3; fi
    sleep 0.1
  done
  exit 0
fi
case $engine in
pg)
  host=
  for d in "${PGHOST:-}" /var/run/postgresql /run/postgresql /tmp; do
    if [ -n "$d" ] && [ -S "$d/.s.PGSQL.$port" ]; then host=$d; break; fi
  done
  if [ -z "$host" ]; then echo "no local socket of the copy's server for port $port" >&2; exit 3; fi
  psql -X -q -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "${POSTGRES_USER:-postgres}" -d "${4:-postgres}" ;;
*)
  socket=
  for s in /var/run/mysqld/mysqld.sock /run/mysqld/mysqld.sock /tmp/mysql.sock; do
    if [ -S "$s" ]; then socket=$s; break; fi
  done
  if [ -z "$socket" ]; then echo "no local socket of the copy's server" >&2; exit 3; fi
  client=mariadb
  command -v mariadb >/dev/null || client=mysql
  MYSQL_PWD=${MARIADB_ROOT_PASSWORD:-${MYSQL_ROOT_PASSWORD:-}} "$client" --socket="$socket" -uroot ;;
esac
"#;

/// The copy's server: the production server's image, environment, command and user (so that
/// it listens where the product expects and initialises the same superuser), a fresh volume
/// where production keeps its data, on the rehearsal's network alone under [`ALIAS`]. None of
/// production's mounts, ports or networks.
pub fn server_body(server: &Container, data_mount: &str, copy: &CopyServer) -> Helper {
    Helper {
        labels: copy.labels().into_iter().collect(),
        binds: vec![format!("{}:{data_mount}", copy.volume)],
        network: Some((copy.network.clone(), vec![ALIAS.to_string()])),
        ..server.same_server()
    }
}

/// Where the copy's fresh volume goes: the production mount that holds the data directory (so
/// that a `PGDATA` below it is initialised as production's was), else the directory itself.
fn data_mount(server: &Container, dir: &str) -> String {
    let inside = |of: &str| dir == of || dir.starts_with(&format!("{of}/"));
    server
        .mounts()
        .into_iter()
        .map(|m| m.destination)
        .filter(|d| inside(d))
        .max_by_key(|d| d.len())
        .unwrap_or_else(|| dir.to_string())
}

/// `text` as a string literal of the server's SQL (MySQL's reads backslashes as escapes).
fn literal(engine: DbEngine, text: &str) -> String {
    let text = match engine {
        DbEngine::Mysql => text.replace('\\', "\\\\"),
        _ => text.to_string(),
    };
    format!("'{}'", text.replace('\'', "''"))
}

/// `text` as an identifier of the server's SQL.
fn ident(engine: DbEngine, text: &str) -> String {
    match engine {
        DbEngine::Mysql => format!("`{}`", text.replace('`', "``")),
        _ => format!("\"{}\"", text.replace('"', "\"\"")),
    }
}

/// What the copy's superuser runs before the restore: the product's user with its password
/// and its database, when the image's first start did not make them (from the same
/// environment, it usually did), and the extensions production's database has.
fn preparation(db: &DatabaseTarget, password: &str, extensions: &[String]) -> String {
    let e = db.engine;
    let (user, pw, name) = (
        literal(e, &db.user),
        literal(e, password),
        literal(e, &db.name),
    );
    if e == DbEngine::Mysql {
        return format!(
            "CREATE DATABASE IF NOT EXISTS {db};\nCREATE USER IF NOT EXISTS {user}@'%' IDENTIFIED BY {pw};\nGRANT ALL PRIVILEGES ON {db}.* TO {user}@'%';\n",
            db = ident(e, &db.name)
        );
    }
    let mut sql = format!(
        "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', {user}, {pw}) WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = {user}) \\gexec\n\
         SELECT format('CREATE DATABASE %I OWNER %I', {name}, {user}) WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = {name}) \\gexec\n\
         \\connect {}\n",
        ident(e, &db.name),
    );
    for extension in extensions {
        sql.push_str(&format!(
            "CREATE EXTENSION IF NOT EXISTS {};\n",
            ident(e, extension)
        ));
    }
    sql
}

/// Runs `op` of [`SUPERUSER`] in the copy's server, `sql` on its standard input, in the
/// database `on` (PostgreSQL).
async fn superuser(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    copy: &CopyServer,
    op: &str,
    sql: Option<String>,
    on: Option<&str>,
) -> Result<(), BackupError> {
    let kind = match db.engine {
        DbEngine::Postgres => "pg",
        _ => "mysql",
    };
    let mut cmd: Vec<String> = ["sh", "-c", SUPERUSER, "sh", op, kind, &db.port.to_string()]
        .map(str::to_string)
        .to_vec();
    cmd.extend(on.map(str::to_string));
    let what = format!("preparing the copy's server ({op})");
    super::exec_script(engine, &copy.container, &cmd, sql, &what)
        .await
        .map(|_| ())
}

/// Starts the copy's server on the rehearsal's network, gives it the product's role, database
/// and extensions, and waits until it answers the product's user with production's password.
pub async fn start(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
    copy: &CopyServer,
) -> Result<(), BackupError> {
    let server = volume_copy::server(engine, db).await?;
    let password = super::credentials(engine, app, db).await?;
    let dir = volume_copy::data_directory(engine, &server, db, &password).await?;
    let extensions: Vec<String> = match db.engine {
        DbEngine::Postgres => database::query(
            engine,
            db,
            &password,
            "SELECT extname FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
        )
        .await?
        .lines()
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect(),
        _ => Vec::new(),
    };
    // One a killed rehearsal left is of no use: its data may be half restored.
    remove_server(engine, copy).await?;
    let body = server_body(&server, &data_mount(&server, &dir), copy);
    let id = engine.create_helper(&copy.container, &body).await?;
    engine.start(&id).await?;
    superuser(engine, db, copy, "wait", None, None).await?;
    // MySQL's root may be unknown (a random password): it is asked only when the user the
    // image made from the same environment does not answer.
    let target = copy.target(db);
    let made = db.engine == DbEngine::Mysql
        && database::query(engine, &target, &password, "SELECT 1")
            .await
            .is_ok();
    if !made {
        let sql = preparation(db, &password, &extensions);
        superuser(engine, db, copy, "sql", Some(sql), None).await?;
    }
    volume_copy::answers(engine, app, &target).await
}

/// Proves the product's user can dump its database, which is all a rehearsal asks of it: a
/// dump of the schema alone, which changes nothing (a restore's checks would write to it).
pub async fn check(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
) -> Result<(), BackupError> {
    let password = super::credentials(engine, app, db).await?;
    database::check_dump(engine, db, &password).await
}

/// Where the dump is kept in the run's private directory `dir` until it is restored.
pub fn dump_path(dir: &Path, engine: DbEngine) -> std::path::PathBuf {
    dir.join(match engine {
        DbEngine::Mysql => database::MYSQL_DUMP,
        _ => database::PG_DUMP,
    })
}

/// Dumps the product's database while it serves (one snapshot, as `--backup-online` reads it)
/// into the run's private directory `dir` (see [`dump_path`]): its size.
pub async fn dump(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
    dir: &Path,
) -> Result<u64, BackupError> {
    let password = super::credentials(engine, app, db).await?;
    crate::private::dir(dir).map_err(|e| BackupError::Failed(e.to_string()))?;
    let (entry, _) = database::dump(engine, db, &password, dir, None).await?;
    Ok(entry.bytes)
}

/// Restores the dump in `dir` into the copy as the product's user, as a rollback restores.
pub async fn restore(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
    copy: &CopyServer,
    dir: &Path,
) -> Result<(), BackupError> {
    let password = super::credentials(engine, app, db).await?;
    database::restore(
        engine,
        &copy.target(db),
        &password,
        &dump_path(dir, db.engine),
    )
    .await?;
    // Freshly restored rows carry no hint bits and no statistics: the migration's first read of
    // each page would write it again (and autovacuum would run beside it), which production's
    // long-lived tables do not pay, so the migration's time would be foretold too long. The
    // checkpoint writes the restore out before the migration is timed.
    if db.engine == DbEngine::Postgres {
        let settle = "VACUUM (ANALYZE);\nCHECKPOINT;\n".to_string();
        superuser(engine, db, copy, "sql", Some(settle), Some(&db.name)).await?;
    }
    Ok(())
}

/// Removes the copy's server and its data.
pub async fn remove_server(engine: &dyn Engine, copy: &CopyServer) -> Result<(), BackupError> {
    engine
        .remove_with_anonymous_volumes(&copy.container)
        .await?;
    engine.remove_volume(&copy.volume).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_copy_server_takes_the_servers_settings_and_nothing_of_its_storage_or_networks() {
        let server: Container = serde_json::from_value(serde_json::json!({
            "Image": "sha256:pg",
            "Config": {
                "Env": ["POSTGRES_PASSWORD=pw", "PGDATA=/var/lib/postgresql/data/pgdata"],
                "Cmd": ["postgres"]
            },
            "Mounts": [{"Destination": "/var/lib/postgresql/data", "Name": "pgdata"}]
        }))
        .unwrap();
        let copy = CopyServer::of("quay");
        let body = server_body(
            &server,
            &data_mount(&server, "/var/lib/postgresql/data/pgdata"),
            &copy,
        );
        assert_eq!(body.image, "sha256:pg");
        assert_eq!(body.env.as_deref(), Some(server.env()));
        assert_eq!(
            body.binds,
            vec!["quay-cutover-rehearse-db:/var/lib/postgresql/data".to_string()]
        );
        assert_eq!(
            body.network,
            Some(("quay-cutover-rehearse".into(), vec![ALIAS.to_string()]))
        );
        assert!(body.volumes_from.is_empty());
        assert_eq!(data_mount(&Container::default(), "/data"), "/data");
    }

    #[test]
    fn the_preparation_quotes_every_name_and_the_password() {
        let db = DatabaseTarget {
            spec: super::super::location::DatabaseSpec {
                sources: vec![],
                schema_query: None,
                requires_extensions: vec![],
                product_reads: None,
            },
            engine: DbEngine::Postgres,
            container: "db".into(),
            port: 5432,
            name: "my\"db".into(),
            user: "o'neil".into(),
        };
        let sql = preparation(&db, "p'w\\", &["pg_trgm".into()]);
        assert!(sql.contains("'o''neil'") && sql.contains("'p''w\\'"));
        assert!(sql.contains("\\connect \"my\"\"db\""));
        assert!(sql.ends_with("CREATE EXTENSION IF NOT EXISTS \"pg_trgm\";\n"));
        let mysql = DatabaseTarget {
            engine: DbEngine::Mysql,
            name: "my`db".into(),
            ..db
        };
        let sql = preparation(&mysql, "p'w\\", &[]);
        assert!(
            sql.contains("`my``db`") && sql.contains("'p''w\\\\'"),
            "{sql}"
        );
    }
}
