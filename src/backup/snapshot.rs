//! A PostgreSQL database copied on its own server while the product is stopped: `CREATE
//! DATABASE snap TEMPLATE db` copies the database's files at the storage's speed (`STRATEGY
//! FILE_COPY` from PostgreSQL 15, the only way before), where a dump goes at `pg_dump`'s. The
//! copy is closed to connections so that nothing writes it; a failed upgrade puts it back by
//! renaming (the migrated database set aside, dropped once the old version serves), and a
//! successful one writes the portable backup from it, out of the window, then drops it.
//!
//! It runs as the server's superuser over the container's local socket (the official image
//! trusts `POSTGRES_USER` there), through one script whose first argument is the operation:
//! the application's own user may not create databases, and no password is needed or passed.

use super::location::DbEngine;
use super::{BackupError, DatabaseTarget};
use crate::engine::Engine;

/// The part of the names cutover gives its copies, which people recognise and `cutover backups`
/// lists: `appdb__cutover_20261207T031500`.
pub const MARK: &str = "__cutover_";

/// What the migrated database is renamed to when the snapshot is put back.
const ASIDE: &str = "_failed";

/// PostgreSQL's longest name, in bytes.
const MAX_NAME: usize = 63;

/// The operations, in the database's container: `probe DB PORT`, `create DB PORT SNAP OWNER
/// STRATEGY`, `swap DB PORT SNAP ASIDE`, `drop DB PORT NAME`, `allow DB PORT NAME`, `exists DB
/// PORT NAME`, `list DB PORT` (every copy on the server). Names reach SQL only as psql variables, quoted by psql (`:"name"`, `:'name'`).
const SCRIPT: &str = r#"set -e
op=$1; db=$2; port=$3; shift 3
user=${POSTGRES_USER:-postgres}
host=
for d in "${PGHOST:-}" /var/run/postgresql /run/postgresql /tmp; do
  if [ -n "$d" ] && [ -S "$d/.s.PGSQL.$port" ]; then host=$d; break; fi
done
if [ -z "$host" ]; then echo "no local socket of the server for port $port in /var/run/postgresql, /run/postgresql or /tmp" >&2; exit 3; fi
# A session on the database itself would keep it from being copied or renamed: the
# maintenance database is another one (template1 for a product on `postgres`, as Anchore's
# quickstart is).
maint=postgres
if [ "$db" = postgres ]; then maint=template1; fi
sql() { psql -X -q -At -v ON_ERROR_STOP=1 -h "$host" -p "$port" -U "$user" -d "$maint" -v db="$db" "$@"; }
case $op in
probe)
  line=$(sql <<'EOF'
SELECT concat_ws('|', current_setting('server_version_num'), r.rolsuper, pg_database_size(d.oid),
  pg_get_userbyid(d.datdba), current_setting('data_directory'))
FROM pg_roles r, pg_database d WHERE r.rolname = current_user AND d.datname = :'db';
EOF
)
  dir=${line##*|}
  free=$(df -Pk "$dir" | awk 'NR == 2 { print $4 }')
  echo "${line%|*}|$free" ;;
create)
  sql -v snap="$1" -v owner="$2" -v strategy="$3" <<'EOF'
CREATE DATABASE :"snap" OWNER :"owner" TEMPLATE :"db" :strategy;
ALTER DATABASE :"snap" WITH ALLOW_CONNECTIONS false;
EOF
  ;;
swap)
  sql -v snap="$1" -v aside="$2" <<'EOF'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname IN (:'db', :'snap') AND pid <> pg_backend_pid() \g /dev/null
SELECT format('ALTER DATABASE %I RENAME TO %I', :'db', :'aside')
  WHERE EXISTS (SELECT FROM pg_database WHERE datname = :'snap')
    AND EXISTS (SELECT FROM pg_database WHERE datname = :'db')
    AND NOT EXISTS (SELECT FROM pg_database WHERE datname = :'aside') \gexec
SELECT format('ALTER DATABASE %I RENAME TO %I', :'snap', :'db')
  WHERE EXISTS (SELECT FROM pg_database WHERE datname = :'snap')
    AND NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
UPDATE pg_database d SET datacl = a.datacl, datconnlimit = a.datconnlimit
  FROM pg_database a WHERE a.datname = :'aside' AND d.datname = :'db';
DELETE FROM pg_db_role_setting WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = :'db')
  AND EXISTS (SELECT FROM pg_database WHERE datname = :'aside');
INSERT INTO pg_db_role_setting SELECT d.oid, s.setrole, s.setconfig
  FROM pg_db_role_setting s JOIN pg_database a ON a.oid = s.setdatabase AND a.datname = :'aside',
    pg_database d WHERE d.datname = :'db';
SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS true', :'db') \gexec
EOF
  ;;
drop)
  sql -v name="$1" <<'EOF'
SELECT pg_terminate_backend(pid) FROM pg_stat_activity
  WHERE datname = :'name' AND pid <> pg_backend_pid() \g /dev/null
DROP DATABASE IF EXISTS :"name";
EOF
  ;;
allow)
  sql -v name="$1" <<'EOF'
ALTER DATABASE :"name" WITH ALLOW_CONNECTIONS true;
EOF
  ;;
exists)
  sql -v name="$1" <<'EOF'
SELECT count(*) FROM pg_database WHERE datname = :'name';
EOF
  ;;
list)
  sql <<'EOF'
SELECT datname FROM pg_database WHERE position('__cutover_' in datname) > 0 ORDER BY 1;
EOF
  ;;
esac
"#;

/// What the server said before any downtime: whether, and how, the database can be copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub version_num: u32,
    pub superuser: bool,
    pub bytes: u64,
    pub owner: String,
    /// Room left on the storage of the server's data directory.
    pub free_bytes: u64,
}

impl Probe {
    fn parse(line: &str) -> Option<Probe> {
        let parts: Vec<&str> = line.trim().split('|').collect();
        let [version, superuser, bytes, owner, free_kib] = parts[..] else {
            return None;
        };
        Some(Probe {
            version_num: version.parse().ok()?,
            superuser: superuser == "t",
            bytes: bytes.parse().ok()?,
            owner: owner.to_string(),
            free_bytes: free_kib.parse::<u64>().ok()? * 1024,
        })
    }

    /// Why a snapshot cannot be taken, when it cannot: a copy needs the superuser and the
    /// database's size again on its storage, with room to spare for the server's own writes.
    pub fn refusal(&self) -> Option<String> {
        let wanted = self.bytes + self.bytes / 10 + (64 << 20);
        if !self.superuser {
            return Some(
                "the server's own user (POSTGRES_USER) is no superuser over its local socket"
                    .into(),
            );
        }
        (wanted > self.free_bytes).then(|| {
            format!(
                "a copy of the database ({}) needs about {} on the server's storage, which has {} free",
                crate::size::human_bytes(self.bytes),
                crate::size::human_bytes(wanted),
                crate::size::human_bytes(self.free_bytes)
            )
        })
    }

    /// The clause that makes `CREATE DATABASE` copy files: PostgreSQL 15's default, `WAL_LOG`,
    /// writes every block through the WAL, slower for a large database; before 15 there was
    /// only the file copy.
    pub fn strategy(&self) -> &'static str {
        match self.version_num >= 150000 {
            true => "STRATEGY FILE_COPY",
            false => "",
        }
    }
}

/// The names of a run's copy of `db`: the snapshot (`db__cutover_STAMP`, with the hop after
/// the first), and the migrated database once set aside (`..._failed`); `db` shortened so that
/// both fit PostgreSQL's 63 bytes.
pub fn names(db: &str, stamp: &str, stage: usize) -> (String, String) {
    let hop = match stage {
        0 => String::new(),
        n => format!("_{}", n + 1),
    };
    let tail = format!("{MARK}{stamp}{hop}");
    let room = MAX_NAME - tail.len() - ASIDE.len();
    let mut head = db.to_string();
    while head.len() > room {
        head.pop();
    }
    let snapshot = format!("{head}{tail}");
    let aside = format!("{snapshot}{ASIDE}");
    (snapshot, aside)
}

/// Runs one operation; what it printed.
async fn run(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    op: &str,
    args: &[&str],
) -> Result<String, BackupError> {
    if db.engine != DbEngine::Postgres {
        return Err(BackupError::Failed(format!(
            "a snapshot is a PostgreSQL copy; {} is a {} database",
            db.name,
            db.engine.name()
        )));
    }
    let port = db.port.to_string();
    let mut cmd: Vec<String> = ["sh", "-c", SCRIPT, "sh", op, &db.name, &port]
        .map(str::to_string)
        .to_vec();
    cmd.extend(args.iter().map(|a| a.to_string()));
    super::exec_script(engine, &db.container, &cmd, None, op).await
}

/// Asks the server, as its superuser, what a snapshot of the database would take.
pub async fn probe(engine: &dyn Engine, db: &DatabaseTarget) -> Result<Probe, BackupError> {
    let line = run(engine, db, "probe", &[]).await?;
    Probe::parse(&line)
        .ok_or_else(|| BackupError::Failed(format!("the server's answer {line:?} cannot be read")))
}

/// Copies the database into `snapshot`, owned by `owner`, closed to connections.
pub async fn create(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    snapshot: &str,
    owner: &str,
    strategy: &str,
) -> Result<(), BackupError> {
    run(engine, db, "create", &[snapshot, owner, strategy])
        .await
        .map(|_| ())
}

/// Puts the snapshot back in the database's place: the database (migrated) is renamed `aside`,
/// the snapshot takes its name, with its privileges, connection limit and settings (tied to the
/// database itself, which a copy does not take), and opens to connections. Any stage of it left
/// by a kill is taken up where it stopped.
pub async fn swap_back(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    snapshot: &str,
    aside: &str,
) -> Result<(), BackupError> {
    run(engine, db, "swap", &[snapshot, aside])
        .await
        .map(|_| ())
}

/// Drops a copy, gone or not.
pub async fn remove(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    name: &str,
) -> Result<(), BackupError> {
    run(engine, db, "drop", &[name]).await.map(|_| ())
}

/// Opens a copy to connections, so that the portable backup can be read from it.
pub async fn allow(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    name: &str,
) -> Result<(), BackupError> {
    run(engine, db, "allow", &[name]).await.map(|_| ())
}

/// Every copy a run left on the server of `db`: none, unless a run's cleanup failed or a run is
/// unfinished.
pub async fn left_behind(
    engine: &dyn Engine,
    db: &DatabaseTarget,
) -> Result<Vec<String>, BackupError> {
    Ok(run(engine, db, "list", &[])
        .await?
        .lines()
        .map(str::to_string)
        .collect())
}

pub async fn exists(
    engine: &dyn Engine,
    db: &DatabaseTarget,
    name: &str,
) -> Result<bool, BackupError> {
    Ok(run(engine, db, "exists", &[name]).await? == "1")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fit_postgresql_and_say_whose_they_are() {
        let (snap, aside) = names("appdb", "20261207T031500", 0);
        assert_eq!(snap, "appdb__cutover_20261207T031500");
        assert_eq!(aside, "appdb__cutover_20261207T031500_failed");
        let (snap, _) = names("appdb", "20261207T031500", 1);
        assert_eq!(snap, "appdb__cutover_20261207T031500_2");
        let long = "a".repeat(63);
        let (snap, aside) = names(&long, "20261207T031500", 9);
        assert!(
            aside.len() <= MAX_NAME && snap.starts_with("aaa"),
            "{aside}"
        );
        assert!(snap.ends_with("__cutover_20261207T031500_10"), "{snap}");
    }

    #[test]
    fn a_probe_says_when_a_copy_cannot_be_taken() {
        let probe = Probe::parse("150004|t|1073741824|app|10485760").unwrap();
        assert_eq!(probe.free_bytes, 10 << 30);
        assert_eq!(probe.refusal(), None);
        assert_eq!(probe.strategy(), "STRATEGY FILE_COPY");
        let full = Probe {
            free_bytes: 1 << 30,
            ..probe.clone()
        };
        assert!(
            full.refusal().unwrap().contains("1.0 GiB free"),
            "{:?}",
            full.refusal()
        );
        let user = Probe {
            superuser: false,
            ..probe.clone()
        };
        assert!(user.refusal().unwrap().contains("no superuser"));
        let old = Probe {
            version_num: 140010,
            ..probe
        };
        assert_eq!(old.strategy(), "");
        assert_eq!(Probe::parse("150004|t|x|app|1"), None);
    }
}
