//! A database server that only the product uses, copied as files: its data volume mirrored
//! into a volume of its own while the server is stopped for a moment, so that the window holds
//! what changed rather than the database's size.
//!
//! The copy is taken in two passes. The first runs before any downtime, while the server
//! serves: every file copied, inconsistent as the server writes. The second runs in the window,
//! the server stopped: only the files either side changed since the first began (their
//! modification times say so, against a marker written a second before the first pass
//! started), those one side lacks, and the removals; then the server starts again. A failed
//! upgrade puts the data back the same way, the other direction: only the files the migrated
//! server wrote since the second pass go back, each moved aside on its own volume first (a
//! rename), kept until the old version serves. The copy is read by a throwaway server of the
//! same image once the new version serves, for the portable backup, then removed.
//!
//! Each pass runs in a one-shot container of the server's own image (its shell, `find`, `cp`,
//! `awk`), as root, without network; the stop and start of the server, and the check that it
//! answers again, are the plan's (its `snapshot_volume` step).

use crate::engine::Container;
use serde::{Deserialize, Serialize};

use super::location::DbEngine;
use super::{database, App, BackupError, DatabaseTarget};
use crate::engine::{Engine, Helper};

/// Where a pass finds the server's data volume, and the copy's.
const DATA: &str = "/cutover-data";
const COPY: &str = "/cutover-copy";

/// The operations: `room DIR` (in the server's running container: the mount's size, the room
/// on its storage, the data directory's folders), `precopy`, `sync`, `back ASIDE`, `settle
/// ASIDE` (in a one-shot over both volumes). Files named `.cutover-*` at either root are the
/// copy's own (its markers, the plan of a pass, a rollback's folder aside), never data.
const SCRIPT: &str = r#"set -e
op=$1
data=/cutover-data copy=/cutover-copy
# What makes DST equal to SRC: `copy F` for a file DST lacks or that either side changed after
# REF was written, `drop F` for one SRC lacks.
plan() { # SRC DST REF
  {
    (cd "$1" && find . ! -type d | sed 's/^/S /')
    (cd "$2" && find . ! -type d | sed 's/^/D /')
    (cd "$1" && find . ! -type d -newer "$3" | sed 's/^/N /')
    (cd "$2" && find . ! -type d -newer "$3" | sed 's/^/N /')
  } | awk '
    { k = substr($0, 3) }
    k ~ /^\.\/\.cutover-/ { next }
    /^S / { s[k] = 1 } /^D / { d[k] = 1 } /^N / { n[k] = 1 }
    END {
      for (k in s) if (!(k in d) || (k in n)) print "copy " k
      for (k in d) if (!(k in s)) print "drop " k
    }'
}
# Makes DST equal to SRC (cutover's files apart), each file DST loses moved into ASIDE first.
mirror() { # SRC DST REF [ASIDE]
  src=$1 dst=$2 ref=$3 aside=${4:-}
  plan "$src" "$dst" "$ref" >"$copy/.cutover-plan"
  (cd "$src" && find . -type d) | while IFS= read -r d; do
    case $d in ./.cutover-*) continue ;; esac
    if [ ! -d "$dst/$d" ]; then
      mkdir -p "$dst/$d"
      chown "$(stat -c %u:%g "$src/$d")" "$dst/$d"
      chmod "$(stat -c %a "$src/$d")" "$dst/$d"
    fi
  done
  while read -r act f; do
    if [ -n "$aside" ] && { [ -e "$dst/$f" ] || [ -L "$dst/$f" ]; }; then
      mkdir -p "$dst/$aside/${f%/*}"
      mv -f "$dst/$f" "$dst/$aside/$f"
    fi
    rm -f "$dst/$f"
    if [ "$act" = copy ]; then cp -a "$src/$f" "$dst/$f"; fi
  done <"$copy/.cutover-plan"
  (cd "$dst" && find . -depth -type d) | while IFS= read -r d; do
    case $d in .|./.cutover-*) continue ;; esac
    if [ ! -d "$src/$d" ]; then rm -rf "$dst/$d"; fi
  done
  rm -f "$copy/.cutover-plan"
  sync
}
case $op in
room)
  echo "$(du -sk "$2" | cut -f1)|$(df -Pk "$2" | awk 'NR == 2 { print $4 }')"
  find "$3" -mindepth 1 -maxdepth 1 -type d | sed 's|.*/||' ;;
precopy)
  (cd "$copy" && find . -mindepth 1 -maxdepth 1) | while IFS= read -r f; do rm -rf "$copy/$f"; done
  touch "$copy/.cutover-precopy"
  # A file written in the same second as the marker was written before the copy began.
  sleep 1
  if ! cp -a "$data/." "$copy/" 2>"$copy/.cutover-errors"; then
    # Files the serving database removed while they were copied are no error: the second
    # pass finds them gone.
    if grep -v 'No such file' "$copy/.cutover-errors" >&2; then exit 1; fi
  fi
  rm -f "$copy/.cutover-errors"
  sync ;;
sync)
  # Nothing writes the data until the server starts again, after this pass: whatever it writes
  # then is newer than this marker.
  touch "$copy/.cutover-synced"
  mirror "$data" "$copy" "$copy/.cutover-precopy" ;;
back)
  mirror "$copy" "$data" "$copy/.cutover-synced" "$2" ;;
settle)
  rm -rf "${data:?}/$2" ;;
esac
"#;

/// The copy of one database server's data volume, fixed by the plan so that recovery finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VolumeCopy {
    /// The named volume holding the server's data, and where its container mounts it.
    pub volume: String,
    pub mount: String,
    /// The copy's volume: `VOLUME__cutover_STAMP[_N]`, which people recognise.
    pub copy: String,
}

impl VolumeCopy {
    /// The copy of hop `stage`, named after the volume, or after the server's container when
    /// the volume is an anonymous one (64 hexadecimal digits nobody recognises).
    pub fn new(volume: &str, server: &str, mount: &str, stamp: &str, stage: usize) -> VolumeCopy {
        let hop = match stage {
            0 => String::new(),
            n => format!("_{}", n + 1),
        };
        let anonymous = volume.len() == 64 && volume.bytes().all(|b| b.is_ascii_hexdigit());
        let base = match anonymous {
            true => server,
            false => volume,
        };
        VolumeCopy {
            volume: volume.to_string(),
            mount: mount.to_string(),
            copy: format!("{base}{}{stamp}{hop}", super::snapshot::MARK),
        }
    }

    /// The folder, on the data volume itself, where a rollback moves the files the new version
    /// wrote: a rename, no copying, dropped once the old version serves.
    pub fn aside(&self) -> String {
        format!(".cutover-failed-{}", self.copy)
    }
}

/// What the server's container said before any downtime: how big its data is, the room beside
/// it, and the databases it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Room {
    pub bytes: u64,
    pub free_bytes: u64,
    /// The data directory's folders: a MySQL database each, besides the server's own.
    pub folders: Vec<String>,
}

impl Room {
    fn parse(text: &str) -> Option<Room> {
        let mut lines = text.lines();
        let (used, free) = lines.next()?.trim().split_once('|')?;
        Some(Room {
            bytes: used.parse::<u64>().ok()? * 1024,
            free_bytes: free.parse::<u64>().ok()? * 1024,
            folders: lines.map(str::to_string).collect(),
        })
    }

    /// Why the volume cannot be copied: the copy needs its size again on the same storage,
    /// with room to spare for the server's own writes.
    pub fn refusal(&self) -> Option<String> {
        let wanted = self.bytes + self.bytes / 10 + (64 << 20);
        (wanted > self.free_bytes).then(|| {
            format!(
                "a copy of the database's volume ({}) needs about {} beside it, which has {} free",
                crate::size::human_bytes(self.bytes),
                crate::size::human_bytes(wanted),
                crate::size::human_bytes(self.free_bytes)
            )
        })
    }
}

/// The server's own databases in a MySQL data directory, which every server has: the
/// `mysql_install_db` system schemas, and InnoDB's folders (`#innodb_redo`, `#innodb_temp`).
fn is_system_folder(name: &str) -> bool {
    matches!(
        name,
        "mysql" | "performance_schema" | "sys" | "lost+found" | "test"
    ) || name.starts_with('#')
        || name.starts_with('.')
}

/// Why the server `db` is not only the product's, so that putting its whole volume back
/// could undo another application's writes; or `None`. PostgreSQL's catalogue names every
/// database to any user; a MySQL server keeps a folder per database in its data directory.
pub async fn others(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    password: &str,
    room: &Room,
) -> Result<Option<String>, BackupError> {
    let others: Vec<String> = match db.engine {
        DbEngine::Postgres => database::query(
            engine,
            db,
            password,
            "SELECT datname FROM pg_database WHERE datname NOT IN ('template0', 'template1', 'postgres') AND datname <> current_database() ORDER BY 1",
        )
        .await?
        .lines()
        .map(str::to_string)
        .filter(|l| !l.is_empty())
        .collect(),
        _ => room
            .folders
            .iter()
            .filter(|f| !is_system_folder(f) && **f != db.name)
            .cloned()
            .collect(),
    };
    Ok((!others.is_empty()).then(|| {
        format!(
            "the server {} holds other databases too ({}), which a copy of its whole volume would put back with the product's",
            db.container,
            others.join(", ")
        )
    }))
}

/// Where the server keeps its data: PostgreSQL's official image says `PGDATA` (its default
/// `/var/lib/postgresql/data`, docker-library/postgres Dockerfile); MySQL and MariaDB answer
/// `@@datadir` to any user.
pub async fn data_directory(
    engine: &dyn Engine,
    server: &Container,
    db: &DatabaseTarget,
    password: &str,
) -> Result<String, BackupError> {
    let dir = match db.engine {
        DbEngine::Postgres => server
            .env()
            .to_vec()
            .iter()
            .find_map(|e| e.strip_prefix("PGDATA=").map(str::to_string))
            .unwrap_or_else(|| "/var/lib/postgresql/data".to_string()),
        _ => database::query(engine, db, password, "SELECT @@datadir").await?,
    };
    Ok(dir.trim_end_matches('/').to_string())
}

/// The named volume holding `dir` in the server's container, and where it is mounted; or why
/// there is none that a copy could take whole: a bind mount (whose copy would land on other
/// storage), another volume driver, or a second mount inside the data.
pub fn data_volume(server: &Container, dir: &str) -> Result<(String, String), String> {
    let mounts = server.mounts();
    let holder = mounts
        .iter()
        .filter(|m| m.holds(dir))
        .max_by_key(|m| m.destination.len())
        .ok_or_else(|| format!("its data directory {dir} is on no volume"))?;
    let mount = holder.destination.clone();
    if let Some(nested) = mounts
        .iter()
        .find(|m| m.destination != mount && holder.holds(&m.destination))
    {
        return Err(format!(
            "another mount ({}) lies inside its data volume at {mount}",
            nested.destination
        ));
    }
    match (holder.kind.as_str(), holder.driver.as_deref()) {
        ("volume", None | Some("local")) => {}
        ("volume", Some(driver)) => {
            return Err(format!(
                "its data is on a volume of the {driver} driver, which may be remote"
            ))
        }
        _ => {
            return Err(format!(
                "its data directory is a bind mount of {}, not a volume",
                holder.source.as_deref().unwrap_or_default()
            ))
        }
    }
    let volume = holder
        .name
        .clone()
        .ok_or_else(|| format!("the volume at {mount} has no name"))?;
    Ok((volume, mount))
}

/// Asks the server's running container how big its data is and what room is beside it.
pub async fn room(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    mount: &str,
    dir: &str,
) -> Result<Room, BackupError> {
    let cmd: Vec<String> = ["sh", "-c", SCRIPT, "sh", "room", mount, dir]
        .map(str::to_string)
        .to_vec();
    let text = super::exec_script(
        engine,
        &db.container,
        &cmd,
        None,
        &format!("measuring {mount}"),
    )
    .await?;
    Room::parse(&text)
        .ok_or_else(|| BackupError::Failed(format!("the server's answer {text:?} cannot be read")))
}

/// The one-shot container of a pass.
fn copier(db: &DatabaseTarget) -> String {
    format!("{}-cutover-copy", db.container)
}

/// The server's container, which must still be there.
pub(super) async fn server(
    engine: &dyn Engine,
    db: &DatabaseTarget,
) -> Result<Container, BackupError> {
    engine
        .inspect(&db.container)
        .await?
        .ok_or_else(|| BackupError::Failed(format!("the database server {} is gone", db.container)))
}

/// Runs one pass in a one-shot container of the server's image over both volumes.
pub async fn pass(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    copy: &VolumeCopy,
    op: &str,
) -> Result<(), BackupError> {
    let server = server(engine, db).await?;
    let name = copier(db);
    let mut entrypoint: Vec<String> = ["/bin/sh", "-c", SCRIPT, "sh", op]
        .map(str::to_string)
        .to_vec();
    if matches!(op, "back" | "settle") {
        entrypoint.push(copy.aside());
    }
    // Settling reads no copy, which may be removed by then: naming it would make it anew.
    let mut binds = vec![format!("{}:{DATA}", copy.volume)];
    if op != "settle" {
        binds.push(format!("{}:{COPY}", copy.copy));
    }
    let helper = Helper {
        image: server.image_id().to_string(),
        user: Some("0".into()),
        entrypoint: Some(entrypoint),
        binds,
        ..Default::default()
    };
    // One left by a kill is of no use: the pass starts again.
    let ran = helper.run_once(engine, &name).await?;
    match ran.code {
        0 => Ok(()),
        code => Err(BackupError::Failed(format!(
            "copying the volume {} ({op}) exited with code {code}: {}; the server's image needs /bin/sh, find, awk, cp and stat",
            copy.volume,
            match ran.said.is_empty() {
                true => "no message".to_string(),
                false => ran.said.join(" / "),
            }
        ))),
    }
}

/// How long a server started again (or a throwaway one) has to answer.
pub const ANSWER_WITHIN: std::time::Duration = std::time::Duration::from_secs(120);

/// Waits until the server answers the product's user again, after it was started.
pub async fn answers(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
) -> Result<(), BackupError> {
    let password = super::credentials(engine, app, db).await?;
    let until = tokio::time::Instant::now() + ANSWER_WITHIN;
    loop {
        match database::query(engine, db, &password, "SELECT 1").await {
            Ok(_) => return Ok(()),
            Err(e) if tokio::time::Instant::now() >= until => {
                return Err(BackupError::Failed(format!(
                    "the database server {} did not answer within {}: {e}",
                    db.container,
                    humantime::format_duration(ANSWER_WITHIN)
                )))
            }
            Err(_) => tokio::time::sleep(std::time::Duration::from_millis(250)).await,
        }
    }
}

/// The copies of volumes runs left on the engine: none, unless a run's cleanup failed or a run
/// is still unfinished (`cutover recover` takes it up).
pub async fn left_behind(engine: &dyn Engine) -> Result<Vec<String>, BackupError> {
    let mut names = engine.volumes().await?;
    names.retain(|n| n.contains(super::snapshot::MARK));
    Ok(names)
}

/// Whether the run's copy is still there (a backup written from it removes it).
pub async fn exists(engine: &dyn Engine, copy: &VolumeCopy) -> Result<bool, BackupError> {
    Ok(engine.volumes().await?.contains(&copy.copy))
}

/// The throwaway server's name.
fn reader(db: &DatabaseTarget) -> String {
    format!("{}-cutover-backup", db.container)
}

/// Starts a throwaway server on the copy and waits until it answers: the database to read the
/// portable backup from.
pub async fn serve(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
    copy: &VolumeCopy,
) -> Result<DatabaseTarget, BackupError> {
    let server = server(engine, db).await?;
    let name = reader(db);
    engine.remove_with_anonymous_volumes(&name).await?;
    let id = engine
        .create_helper(&name, &throwaway(&server, copy))
        .await?;
    engine.start(&id).await?;
    let source = DatabaseTarget {
        container: name,
        ..db.clone()
    };
    answers(engine, app, &source).await?;
    Ok(source)
}

/// Removes the throwaway server, if any, and the copy.
pub async fn remove(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    copy: &VolumeCopy,
) -> Result<(), BackupError> {
    engine.remove_with_anonymous_volumes(&reader(db)).await?;
    engine.remove(&copier(db)).await?;
    engine.remove_volume(&copy.copy).await?;
    Ok(())
}

/// The product's database server's data volume and where it is mounted, when the whole volume
/// can be copied in the window: a server container of its own, its data on one local named
/// volume with room for a copy beside it, holding no other application's database. Otherwise
/// why not.
pub async fn fits(
    engine: &dyn Engine,
    app: App<'_>,
    db: &DatabaseTarget,
) -> Result<(String, String), String> {
    let asked = |e: BackupError| format!("the server's container could not be asked ({e})");
    let server = engine
        .inspect(&db.container)
        .await
        .map_err(|e| asked(e.into()))?
        .ok_or_else(|| format!("the server's container {} is gone", db.container))?;
    if server.id() == app.container.id() {
        return Err("the database lives in the product's own container".into());
    }
    let password = super::credentials(engine, app, db).await.map_err(asked)?;
    let dir = data_directory(engine, &server, db, &password)
        .await
        .map_err(asked)?;
    let (volume, mount) = data_volume(&server, &dir)?;
    let room = room(engine, db, &mount, &dir).await.map_err(asked)?;
    if let Some(why) = room.refusal() {
        return Err(why);
    }
    match others(engine, db, &password, &room).await.map_err(asked)? {
        Some(why) => Err(why),
        None => Ok((volume, mount)),
    }
}

/// A throwaway server of the same image on the copy, on no network, from which the portable
/// backup is read: the server's own settings, its data volume replaced by the copy.
pub fn throwaway(server: &Container, copy: &VolumeCopy) -> Helper {
    Helper {
        labels: vec![("cutover.copy".to_string(), copy.copy.clone())],
        binds: vec![format!("{}:{}", copy.copy, copy.mount)],
        network: None,
        ..server.same_server()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mount(typ: &str, name: Option<&str>, dest: &str) -> serde_json::Value {
        serde_json::json!({
            "Type": typ, "Name": name, "Source": format!("/srv/{dest}"), "Destination": dest
        })
    }

    fn server(mounts: Vec<serde_json::Value>) -> Container {
        serde_json::from_value(serde_json::json!({ "Mounts": mounts })).unwrap()
    }

    #[test]
    fn the_data_volume_is_the_named_volume_holding_the_data_directory_whole() {
        let pg = server(vec![
            mount("volume", Some("pgdata"), "/var/lib/postgresql/data"),
            mount("bind", None, "/etc/postgresql"),
        ]);
        assert_eq!(
            data_volume(&pg, "/var/lib/postgresql/data"),
            Ok(("pgdata".into(), "/var/lib/postgresql/data".into()))
        );
        let parent = server(vec![mount("volume", Some("pg"), "/var/lib/postgresql")]);
        assert_eq!(
            data_volume(&parent, "/var/lib/postgresql/data"),
            Ok(("pg".into(), "/var/lib/postgresql".into()))
        );
        let bind = server(vec![mount("bind", None, "/var/lib/mysql")]);
        assert!(data_volume(&bind, "/var/lib/mysql")
            .unwrap_err()
            .contains("bind mount"));
        let nested = server(vec![
            mount("volume", Some("pg"), "/var/lib/postgresql/data"),
            mount("volume", Some("wal"), "/var/lib/postgresql/data/pg_wal"),
        ]);
        assert!(data_volume(&nested, "/var/lib/postgresql/data")
            .unwrap_err()
            .contains("pg_wal"));
        let mut remote = mount("volume", Some("nfs"), "/var/lib/mysql");
        remote["Driver"] = "rexray".into();
        assert!(data_volume(&server(vec![remote]), "/var/lib/mysql")
            .unwrap_err()
            .contains("rexray"));
        assert!(data_volume(&server(vec![]), "/var/lib/mysql")
            .unwrap_err()
            .contains("on no volume"));
    }

    #[test]
    fn names_say_whose_copy_it_is() {
        let copy = VolumeCopy::new(
            "quay_db",
            "quay-postgres",
            "/var/lib/postgresql/data",
            "20261207T031500",
            1,
        );
        assert_eq!(copy.copy, "quay_db__cutover_20261207T031500_2");
        let anonymous = VolumeCopy::new(
            &"ab12".repeat(16),
            "quay-postgres",
            "/d",
            "20261207T031500",
            0,
        );
        assert_eq!(anonymous.copy, "quay-postgres__cutover_20261207T031500");
        assert_eq!(
            copy.aside(),
            ".cutover-failed-quay_db__cutover_20261207T031500_2"
        );
    }

    #[test]
    fn room_is_read_and_refused_when_short() {
        let room = Room::parse("1048576|4194304\nmysql\napp\n#innodb_redo\n").unwrap();
        assert_eq!(room.bytes, 1 << 30);
        assert_eq!(room.folders, ["mysql", "app", "#innodb_redo"]);
        assert_eq!(room.refusal(), None);
        let short = Room {
            free_bytes: 1 << 30,
            ..room
        };
        assert!(short.refusal().unwrap().contains("1.0 GiB free"));
        assert_eq!(Room::parse("x|1"), None);
        assert!(is_system_folder("#innodb_temp") && !is_system_folder("app"));
    }
}
