//! Where a product's database is, read the way the product reads it: a URL in a variable, an
//! ADO connection string, separate variables, or a key of a file inside the container.
//!
//! Group membership compares where containers' databases are; backups use the rest. The password is a secret: it is registered for redaction when it is read and never
//! displayed.

use serde::{Deserialize, Serialize};

use crate::engine::facts::{file_variants, Facts};

/// Why a container's database cannot be told, or pointed at a copy: found before anything
/// runs. No message quotes a connection, which may hold a password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LocationError {
    /// A connection string or URL that cannot be read, and why.
    #[error("{0}")]
    Unreadable(String),
    #[error("the container's database connection is not set: it was looked for in {0}")]
    NotSet(String),
    /// The product's own reading names another database than the sources do (see
    /// [`ProductReads`]), or none they name.
    #[error("{0}")]
    Disagrees(String),
    /// A connection a rehearsal cannot rewrite to name the copy.
    #[error("{0}")]
    Unwritable(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DbEngine {
    Postgres,
    Mysql,
    /// SQL Server, which cutover cannot dump: backups must be skipped explicitly.
    Sqlserver,
}

impl DbEngine {
    pub fn name(self) -> &'static str {
        match self {
            DbEngine::Postgres => "PostgreSQL",
            DbEngine::Mysql => "MySQL/MariaDB",
            DbEngine::Sqlserver => "SQL Server",
        }
    }
}

/// Where the connection is read; the first source that is set wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSpec {
    #[serde(with = "yaml_serde::with::singleton_map_recursive")]
    pub sources: Vec<Source>,
    /// A query that answers the product's schema version, recorded with each backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schema_query: Option<String>,
    /// PostgreSQL extensions the product needs (Quay's `pg_trgm`), checked before any downtime.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires_extensions: Vec<String>,
    /// Where the product itself reads its connection, when that can name another database than
    /// the sources do: the database is located only when the two agree.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product_reads: Option<ProductReads>,
}

/// A URL under a dotted key of a YAML file inside the container, into whose text the product
/// puts each `${NAME}` whose variable (named with `prefix`) is set: Anchore's
/// `credentials.database.db_connect`, which its image's config builds from the `ANCHORE_DB_*`
/// variables the sources read, and which an operator's own config may write out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductReads {
    pub path: String,
    pub key: String,
    pub prefix: String,
    /// The value that agrees with the sources, for the refusal to show (no secret in it).
    pub written_as: String,
    /// Where the product says so, for the refusal to link.
    pub see: String,
}

impl ProductReads {
    /// The location the sources found, when the file names the same database (engine, host,
    /// port, name, user and password); a refusal that says how to make them agree otherwise.
    /// Without the file or the key, the sources alone decide.
    fn agrees(
        &self,
        facts: &Facts,
        found: Result<Location, LocationError>,
        sources: &str,
    ) -> Result<Location, LocationError> {
        let Some(value) = facts
            .files
            .get(&self.path)
            .and_then(|text| yaml_key(text, &self.key))
        else {
            return found;
        };
        let place = format!("{} in {}", self.key, self.path);
        let how = format!(
            "write it as the image's own configuration does, `{}` ({}), with those variables set for the database, or give those variables the database it names",
            self.written_as, self.see
        );
        let url = self.filled_in(facts, &value).map_err(|unset| {
            LocationError::Unreadable(format!(
                "{place} uses ${{{unset}}}, which the container's environment does not set"
            ))
        })?;
        let theirs =
            parse_url(&url).map_err(|e| LocationError::Unreadable(format!("{place}: {e}")))?;
        crate::secrets::register(&theirs.password);
        let who = |l: &Location| format!("{}@{}:{}/{}", l.user, l.host, l.port, l.name);
        match found {
            Err(_) => Err(LocationError::Disagrees(format!(
                "{place} names the database {} itself, where cutover does not read it: it reads the database from {sources} to back it up and migrate it, and they are not set; {how}",
                who(&theirs)
            ))),
            Ok(ours) if (theirs.engine, who(&theirs)) != (ours.engine, who(&ours)) => Err(LocationError::Disagrees(format!(
                "{place} names the database {}, but {sources} name {}: cutover would back up and migrate another database than the one the product uses; {how}",
                who(&theirs),
                who(&ours)
            ))),
            Ok(ours) if theirs.password != ours.password => Err(LocationError::Disagrees(format!(
                "{place} names the database {} with another password than {sources}: cutover would connect with the wrong one; {how}",
                who(&theirs)
            ))),
            Ok(ours) => Ok(ours),
        }
    }

    /// The value with each `${NAME}` of the prefix put in from the environment, as the product
    /// does; the first one the environment does not set, otherwise.
    fn filled_in(&self, facts: &Facts, value: &str) -> Result<String, String> {
        let mut out = String::new();
        let mut rest = value;
        while let Some(open) = rest.find("${") {
            let Some(close) = rest[open..].find('}').map(|i| open + i) else {
                break;
            };
            let name = &rest[open + 2..close];
            out.push_str(&rest[..open]);
            match crate::engine::facts::env_value(&facts.env, name) {
                Some(v) if name.starts_with(&self.prefix) => out.push_str(v),
                _ if name.starts_with(&self.prefix) => return Err(name.to_string()),
                _ => out.push_str(&rest[open..=close]),
            }
            rest = &rest[close + 1..];
        }
        out.push_str(rest);
        Ok(out)
    }
}

impl DatabaseSpec {
    /// The extensions the product needs of a database of `engine`: PostgreSQL's alone, none of
    /// another (Quay on MySQL, still supported, is asked no `pg_trgm`).
    pub fn extensions_of(&self, engine: DbEngine) -> &[String] {
        match engine {
            DbEngine::Postgres => &self.requires_extensions,
            _ => &[],
        }
    }

    /// The variables its sources read a secret from: a password, or a URL or connection string
    /// that holds one.
    pub fn secret_variables(&self) -> Vec<String> {
        self.sources
            .iter()
            .filter_map(|s| match s {
                Source::UrlEnv { name, .. } | Source::AdoEnv { name, .. } => Some(name.clone()),
                Source::PartsEnv { password, .. } => Some(password.clone()),
                Source::FileKey { .. } | Source::Embedded { .. } => None,
            })
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Source {
    /// A URL (`postgres://USER:PASS@HOST:PORT/NAME`, `mysql://...`) in a variable, or in a
    /// dotenv file when the environment does not set it.
    UrlEnv {
        name: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        files: Vec<String>,
    },
    /// An ADO connection string (`Host=...;Database=...` or `Data Source=...;Initial Catalog=...`).
    AdoEnv { name: String, engine: DbEngine },
    /// One variable per part.
    PartsEnv {
        engine: DbEngine,
        host: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        port: Option<String>,
        name: String,
        user: String,
        password: String,
    },
    /// A URL under a key of a YAML file inside the container: a top-level key, or a dotted
    /// path (Clair's `indexer.connstring`); PostgreSQL's keyword/value form (`host=db
    /// port=5432 dbname=clair user=clair password=...`, which Clair's pgx reads as well as a URL)
    /// is read too.
    FileKey { path: String, key: String },
    /// The product's own embedded database, whose files are this directory of the container,
    /// used when no other source is set (ProGet 2025+ by default): it is backed up as a cold
    /// copy of the volume there while the container is stopped, and must be on a volume.
    Embedded { path: String },
}

/// Where a container's database is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// A server the container connects to.
    Server(Location),
    /// Files of the container itself, under this path.
    Embedded(String),
}

/// A database as the container reaches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub engine: DbEngine,
    pub host: String,
    pub port: u16,
    pub name: String,
    pub user: String,
    pub password: String,
    /// Which source said so, for people.
    pub from: String,
}

impl DatabaseSpec {
    /// The files inside the container (whose environment is `env`) the sources read: dotenv and
    /// configuration files, and the file of each variable given as `NAME_FILE`.
    pub fn files(&self, env: &[String]) -> Vec<String> {
        self.sources
            .iter()
            .flat_map(|s| match s {
                Source::UrlEnv { name, files } => {
                    [files.clone(), file_variants(env, &[name])].concat()
                }
                Source::AdoEnv { name, .. } => file_variants(env, &[name]),
                Source::PartsEnv {
                    host,
                    port,
                    name,
                    user,
                    password,
                    ..
                } => {
                    let mut names = vec![host.as_str(), name, user, password];
                    names.extend(port.as_deref());
                    file_variants(env, &names)
                }
                Source::FileKey { path, .. } => vec![path.clone()],
                Source::Embedded { .. } => Vec::new(),
            })
            .chain(self.product_reads.iter().map(|r| r.path.clone()))
            .collect()
    }

    /// Where the sources look, for people: `PROGET_POSTGRES_CONNECTION_STRING, ..., or the
    /// embedded database on /var/proget/database`.
    pub fn describe(&self) -> String {
        let places: Vec<String> = self
            .sources
            .iter()
            .map(|s| match s {
                Source::UrlEnv { name, .. } | Source::AdoEnv { name, .. } => name.clone(),
                Source::PartsEnv { host, name, .. } => format!("{host}, {name}, ..."),
                Source::FileKey { path, key } => format!("{key} in {path}"),
                Source::Embedded { path } => format!("the embedded database on {path}"),
            })
            .collect();
        places.join(", or ")
    }

    /// Where the container's database is: the first source set, else the product's embedded
    /// database when the profile names one.
    pub fn find(&self, facts: &Facts) -> Result<Found, LocationError> {
        match self.locate(facts) {
            Ok(location) => Ok(Found::Server(location)),
            Err(e) => self
                .sources
                .iter()
                .find_map(|s| match s {
                    Source::Embedded { path } => Some(Found::Embedded(path.clone())),
                    _ => None,
                })
                .ok_or(e),
        }
    }

    /// The database the container uses, or why it cannot be told: where the sources say, when
    /// the product's own reading agrees.
    pub fn locate(&self, facts: &Facts) -> Result<Location, LocationError> {
        let found = self.located_by_sources(facts);
        match &self.product_reads {
            Some(reads) => reads.agrees(facts, found, &self.describe()),
            None => found,
        }
    }

    fn located_by_sources(&self, facts: &Facts) -> Result<Location, LocationError> {
        for source in &self.sources {
            let found = match source {
                Source::UrlEnv { name, files } => facts.value(name, files).map(|url| {
                    parse_url(&url).map(|l| Location {
                        from: name.clone(),
                        ..l
                    })
                }),
                Source::AdoEnv { name, engine } => facts.value(name, &[]).map(|ado| {
                    parse_ado(&ado, *engine).map(|l| Location {
                        from: name.clone(),
                        ..l
                    })
                }),
                Source::PartsEnv {
                    engine,
                    host,
                    port,
                    name,
                    user,
                    password,
                } => facts.value(host, &[]).map(|h| {
                    let default_port = match engine {
                        DbEngine::Postgres => 5432,
                        DbEngine::Mysql => 3306,
                        DbEngine::Sqlserver => 1433,
                    };
                    let port = port
                        .as_deref()
                        .and_then(|p| facts.value(p, &[]))
                        .map(|p| {
                            p.parse().map_err(|_| {
                                LocationError::Unreadable(format!("{p:?} is not a port"))
                            })
                        })
                        .transpose()?;
                    Ok(Location {
                        engine: *engine,
                        host: h,
                        port: port.unwrap_or(default_port),
                        name: facts.value(name, &[]).unwrap_or_default(),
                        user: facts.value(user, &[]).unwrap_or_default(),
                        password: facts.value(password, &[]).unwrap_or_default(),
                        from: format!("{host}, {name}, ..."),
                    })
                }),
                Source::FileKey { path, key } => facts
                    .files
                    .get(path)
                    .and_then(|text| yaml_key(text, key))
                    .map(|url| {
                        parse_connection(&url).map(|l| Location {
                            from: format!("{key} in {path}"),
                            ..l
                        })
                    }),
                Source::Embedded { .. } => None,
            };
            if let Some(found) = found {
                let location = found?;
                crate::secrets::register(&location.password);
                return Ok(location);
            }
        }
        Err(LocationError::NotSet(self.describe()))
    }
}

/// What points a container at a copy of its database, every other part of its connection as
/// it was: variables to set, or one of its files (path, new text) to put in place of its own.
/// Both hold the password.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pointed {
    pub env: Vec<(String, String)>,
    pub file: Option<(String, String)>,
    /// The file is a product's configuration, which needs the rest of its directory beside it
    /// (Quay's certificates): that directory is copied with it.
    pub whole_directory: bool,
}

impl Pointed {
    fn env(env: Vec<(String, String)>) -> Pointed {
        Pointed {
            env,
            ..Pointed::default()
        }
    }

    /// `facts` as a container pointed so reads them.
    pub fn facts(&self, facts: &Facts) -> Facts {
        let mut env: Vec<String> = facts
            .env
            .iter()
            .filter(|e| {
                !self
                    .env
                    .iter()
                    .any(|(name, _)| e.split_once('=').is_some_and(|(n, _)| n == name))
            })
            .cloned()
            .collect();
        env.extend(
            self.env
                .iter()
                .map(|(name, value)| format!("{name}={value}")),
        );
        let mut files = facts.files.clone();
        files.extend(self.file.clone());
        Facts {
            env,
            files,
            ..facts.clone()
        }
    }
}

impl DatabaseSpec {
    /// What points the container at a copy of its database served on `host`, every other part
    /// of the connection (port, name, user, password, options) as it was: what a rehearsal
    /// gives the containers it runs on the copy. The first source set is the one rewritten, as
    /// [`DatabaseSpec::locate`] reads it, where the container reads it: a variable of its
    /// environment, the file of its `NAME_FILE` secret, a dotenv file, a configuration file's
    /// key (a variable set as well would not override those for every product).
    pub fn point_at(&self, facts: &Facts, host: &str) -> Result<Pointed, LocationError> {
        let in_env = |name: &str| {
            crate::engine::facts::env_value(&facts.env, name)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
        };
        for source in &self.sources {
            let pointed = match source {
                Source::UrlEnv { name, files } => match in_env(name) {
                    Some(url) => Some(Pointed::env(vec![(name.clone(), url_at(&url, host)?)])),
                    None => in_file(facts, name, files, |url| url_at(url, host))?,
                },
                Source::AdoEnv { name, .. } => match in_env(name) {
                    Some(ado) => Some(Pointed::env(vec![(name.clone(), ado_at(&ado, host)?)])),
                    None => in_file(facts, name, &[], |ado| ado_at(ado, host))?,
                },
                Source::PartsEnv { host: var, .. } => match in_env(var) {
                    Some(_) => Some(Pointed::env(vec![(var.clone(), host.to_string())])),
                    None => in_file(facts, var, &[], |_| Ok(host.to_string()))?,
                },
                Source::FileKey { path, key } => match facts.files.get(path) {
                    Some(text) => match yaml_key(text, key) {
                        Some(url) => Some(in_key(facts, (path, text), key, &url, host)?),
                        None => None,
                    },
                    None => None,
                },
                Source::Embedded { .. } => None,
            };
            if let Some(pointed) = pointed {
                return Ok(pointed);
            }
        }
        Err(LocationError::NotSet(self.describe()))
    }
}

/// The URL under the top-level `key` of the YAML file (`path`, `text`) pointed at `host` in a
/// copy of that file, written on its own line `KEY: URL` (quoted or not). Checked by reading
/// the copy back.
fn in_key(
    facts: &Facts,
    (path, text): (&String, &String),
    key: &str,
    url: &str,
    host: &str,
) -> Result<Pointed, LocationError> {
    let wanted = url_at(url, host)?;
    let on_its_line = |line: &str| {
        line.strip_prefix(key)
            .is_some_and(|rest| rest.starts_with(':'))
    };
    let pointed = Pointed {
        env: Vec::new(),
        file: Some((path.clone(), in_line(text, on_its_line, url, &wanted))),
        whole_directory: true,
    };
    let read = pointed
        .facts(facts)
        .files
        .get(path)
        .and_then(|t| yaml_key(t, key));
    match read == Some(wanted) {
        true => Ok(pointed),
        false => Err(unwritable(key, path, &format!("`{key}: URL` on one line"))),
    }
}

/// The variable `name` as the container reads it from a file (its `NAME_FILE` secret, else a
/// dotenv file of `files`), rewritten by `at` in a copy of that file; `None` when no file sets
/// it. Checked by reading the copy back as the container would.
fn in_file(
    facts: &Facts,
    name: &str,
    files: &[String],
    at: impl Fn(&str) -> Result<String, LocationError>,
) -> Result<Option<Pointed>, LocationError> {
    let Some(value) = facts.value(name, files) else {
        return Ok(None);
    };
    let wanted = at(&value)?;
    let secret = crate::engine::facts::env_value(&facts.env, &format!("{name}_FILE"))
        .filter(|path| facts.files.contains_key(*path));
    let dotenv = || {
        files.iter().find(|f| {
            facts
                .files
                .get(*f)
                .is_some_and(|text| crate::engine::facts::dotenv_value(text, name).is_some())
        })
    };
    let (path, written) = match secret {
        Some(path) => (path.to_string(), "the value alone"),
        None => match dotenv() {
            Some(path) => (path.clone(), "`NAME=VALUE` on one line"),
            None => return Ok(None),
        },
    };
    let sets_it = |line: &str| {
        let line = line.trim_start();
        let line = line.strip_prefix("export ").unwrap_or(line);
        secret.is_some()
            || line
                .strip_prefix(name)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
    };
    let text = &facts.files[&path];
    let pointed = Pointed {
        env: Vec::new(),
        file: Some((path.clone(), in_line(text, sets_it, &value, &wanted))),
        whole_directory: false,
    };
    match pointed.facts(facts).value(name, files) == Some(wanted) {
        true => Ok(Some(pointed)),
        false => Err(unwritable(name, &path, written)),
    }
}

/// `text` with `value` replaced by `wanted` on the first line `sets_it` that holds it, every
/// other byte as it was.
fn in_line(text: &str, sets_it: impl Fn(&str) -> bool, value: &str, wanted: &str) -> String {
    let mut out = String::with_capacity(text.len() + wanted.len());
    let mut rewritten = false;
    for line in text.split_inclusive('\n') {
        match line.find(value).filter(|_| !rewritten && sets_it(line)) {
            Some(at) => {
                out.push_str(&line[..at]);
                out.push_str(wanted);
                out.push_str(&line[at + value.len()..]);
                rewritten = true;
            }
            None => out.push_str(line),
        }
    }
    out
}

/// Why a connection in a file could not be rewritten, and how to write it so that it can.
fn unwritable(name: &str, path: &str, written: &str) -> LocationError {
    LocationError::Unwritable(format!(
        "{name} in {path} is not written as {written}, the only way a rehearsal rewrites it to name the copy: write it so to rehearse"
    ))
}

/// `url` with its host replaced, every other byte as it was.
fn url_at(url: &str, host: &str) -> Result<String, LocationError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| LocationError::Unreadable("the database URL has no scheme".into()))?;
    // Split where [`parse_url`] splits, so that both read the same host.
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (credentials, hostport) = match authority.rsplit_once('@') {
        Some((c, h)) => (Some(c), h),
        None => (None, authority),
    };
    let port = hostport.rsplit_once(':').map(|(_, p)| p);
    let mut out = format!("{scheme}://");
    if let Some(credentials) = credentials {
        out.push_str(credentials);
        out.push('@');
    }
    out.push_str(host);
    if let Some(port) = port {
        out.push(':');
        out.push_str(port);
    }
    out.push_str(path);
    Ok(out)
}

/// An ADO connection string with its host replaced (SQL Server's `tcp:` and `,port` kept),
/// every other part as it was; a list of hosts is refused, since each would need a copy.
fn ado_at(ado: &str, host: &str) -> Result<String, LocationError> {
    let parts: Vec<String> = ado
        .split(';')
        .map(|part| {
            let Some((key, value)) = part.split_once('=') else {
                return Ok(part.to_string());
            };
            let normal = key.trim().to_ascii_lowercase().replace(' ', "");
            if !matches!(normal.as_str(), "host" | "server" | "datasource" | "address") {
                return Ok(part.to_string());
            }
            let value = value.trim();
            let (tcp, bare) = match value.strip_prefix("tcp:") {
                Some(bare) => ("tcp:", bare),
                None => ("", value),
            };
            let port = match bare.split_once(',') {
                Some((_, port)) if port.trim().parse::<u16>().is_ok() => format!(",{}", port.trim()),
                Some(_) => return Err(LocationError::Unwritable("the connection string names several hosts, each of which a rehearsal would need a copy of".into())),
                None => String::new(),
            };
            Ok(format!("{key}={tcp}{host}{port}"))
        })
        .collect::<Result<_, _>>()?;
    Ok(parts.join(";"))
}

/// A key of a YAML document, as a string: a top-level key, else a dotted path
/// (`indexer.connstring`).
pub fn yaml_key(text: &str, key: &str) -> Option<String> {
    let doc: serde_json::Value = yaml_serde::from_str(text).ok()?;
    doc.get(key)
        .or_else(|| crate::health::json_field(&doc, key))
        .map(crate::health::scalar_text)
}

/// A PostgreSQL connection as libpq and pgx read it: a URL, or keyword/value pairs.
pub fn parse_connection(text: &str) -> Result<Location, LocationError> {
    match text.contains("://") || !text.contains('=') {
        true => parse_url(text),
        false => parse_keywords(text),
    }
}

/// libpq's keyword/value form, `host=db port=5432 dbname=clair user=clair password='a b'`:
/// pairs separated by spaces, `=` with optional spaces around it, a value in single quotes
/// with `\'` and `\\` escaped (PostgreSQL's "Connection Strings", libpq-connect). `dbname`
/// defaults to `user`, as libpq does.
pub fn parse_keywords(text: &str) -> Result<Location, LocationError> {
    let mut pairs = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| *c != '=' && !c.is_whitespace()) {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            // The word is not quoted: it may be a password written out of place.
            return Err(LocationError::Unreadable(
                "the connection string has a word without '=' after it".into(),
            ));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    Some('\\') => value.extend(chars.next()),
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => {
                        return Err(LocationError::Unreadable(
                            "the connection string has a quoted value without its closing quote"
                                .into(),
                        ))
                    }
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                match c {
                    '\\' => value.extend(chars.next()),
                    c => value.push(c),
                }
            }
        }
        pairs.push((key, value));
    }
    let get = |want: &str| {
        pairs
            .iter()
            .rev()
            .find(|(key, _)| key == want)
            .map(|(_, value)| value.clone())
    };
    let user = get("user").unwrap_or_default();
    let port = match get("port") {
        Some(p) => p.parse().map_err(|_| {
            LocationError::Unreadable("the connection string's port is not a number".into())
        })?,
        None => 5432,
    };
    Ok(Location {
        engine: DbEngine::Postgres,
        host: get("host").or_else(|| get("hostaddr")).ok_or_else(|| {
            LocationError::Unreadable("the connection string names no host".into())
        })?,
        port,
        name: get("dbname").unwrap_or_else(|| user.clone()),
        user,
        password: get("password").unwrap_or_default(),
        from: String::new(),
    })
}

/// `scheme://user:password@host:port/name?options`.
pub fn parse_url(url: &str) -> Result<Location, LocationError> {
    let shown = |why: &str| {
        LocationError::Unreadable(format!(
            "the database URL is not one cutover can read ({why})"
        ))
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| shown("no scheme"))?;
    let engine = match scheme.split('+').next().unwrap_or_default() {
        "postgres" | "postgresql" => DbEngine::Postgres,
        "mysql" | "mariadb" => DbEngine::Mysql,
        "sqlserver" | "mssql" => DbEngine::Sqlserver,
        // A password followed by `://` must not be shown as a scheme.
        _ => match crate::secrets::shown_scheme(url) {
            Some(scheme) => return Err(shown(&format!("scheme {scheme}"))),
            None => return Err(shown("no scheme")),
        },
    };
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (credentials, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = credentials.split_once(':').unwrap_or((credentials, ""));
    let (host, port) = match hostport.rsplit_once(':') {
        Some((host, port)) => (
            host,
            Some(
                port.parse::<u16>()
                    .map_err(|_| shown("a port that is not a number"))?,
            ),
        ),
        None => (hostport, None),
    };
    let default_port = if engine == DbEngine::Mysql {
        3306
    } else {
        5432
    };
    Ok(Location {
        engine,
        host: host.to_string(),
        port: port.unwrap_or(default_port),
        name: path
            .split(['?', '#'])
            .next()
            .unwrap_or_default()
            .to_string(),
        user: user.to_string(),
        password: password.to_string(),
        from: String::new(),
    })
}

/// `Key=Value;...` as SQL Server and Npgsql write it.
pub fn parse_ado(ado: &str, engine: DbEngine) -> Result<Location, LocationError> {
    let mut host = None;
    let mut port = None;
    let mut name = None;
    let mut user = String::new();
    let mut password = String::new();
    for part in ado.split(';').filter(|p| !p.trim().is_empty()) {
        let (key, value) = part.split_once('=').ok_or_else(|| {
            LocationError::Unreadable("the connection string has a part without '='".into())
        })?;
        let value = value.trim().to_string();
        match key.trim().to_ascii_lowercase().replace(' ', "").as_str() {
            "host" | "server" | "datasource" | "address" => {
                // SQL Server writes `host,port`; Npgsql `Port=`.
                match value.split_once(',') {
                    Some((h, p)) => {
                        host = Some(h.trim().trim_start_matches("tcp:").to_string());
                        port = p.trim().parse().ok();
                    }
                    None => host = Some(value.trim_start_matches("tcp:").to_string()),
                }
            }
            "port" => port = value.parse().ok(),
            "database" | "initialcatalog" => name = Some(value),
            "username" | "userid" | "user" | "uid" => user = value,
            "password" | "pwd" => password = value,
            _ => {}
        }
    }
    let default_port = match engine {
        DbEngine::Sqlserver => 1433,
        DbEngine::Mysql => 3306,
        DbEngine::Postgres => 5432,
    };
    Ok(Location {
        engine,
        host: host.ok_or_else(|| {
            LocationError::Unreadable("the connection string names no host".into())
        })?,
        port: port.unwrap_or(default_port),
        name: name.ok_or_else(|| {
            LocationError::Unreadable("the connection string names no database".into())
        })?,
        user,
        password,
        from: String::new(),
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated_text, said, seeds, ARBITRARY, MUTATED, ROUND_TRIP};

    /// A password as products generate them, long enough that finding it in an error means the
    /// error quoted it.
    const PASSWORD: &str = "[A-Za-z0-9!#%&*+,.;<=>^_~-]{12,24}";

    /// A connection read from a container, or why not: an error that never quotes its
    /// password, since errors are printed and sent to notification services.
    fn read_without_telling(text: &str, password: &str) -> Result<(), TestCaseError> {
        for read in [
            parse_url(text),
            parse_keywords(text),
            parse_ado(text, DbEngine::Sqlserver),
            parse_ado(text, DbEngine::Postgres),
        ] {
            if let Err(e) = read.map_err(|e| e.to_string()) {
                said(&e)?;
                prop_assert!(!e.contains(password), "{}", e);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_connection_text_is_read_or_refused_without_its_password(
            head in "[ -~]{0,40}", password in PASSWORD, tail in "[ -~]{0,40}"
        ) {
            read_without_telling(&format!("{head}{password}{tail}"), &password)?;
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn mistyped_connections_are_read_or_refused_without_their_password(
            text in mutated_text(seeds(&[
                "postgresql://quay:S3cr3tPassw0rd@quay-db:5432/quay?sslmode=disable",
                "mysql+pymysql://app:S3cr3tPassw0rd@db/app",
                "Server=tcp:sql,1433;Database=ProGet;User ID=proget;Password=S3cr3tPassw0rd",
                "Host=postgres;Port=5432;Database=otter;Username=otter;Password=S3cr3tPassw0rd",
            ]))
        ) {
            read_without_telling(&text, "S3cr3tPassw0rd")?;
        }
    }

    fn facts(env: &[&str]) -> Facts {
        Facts {
            env: env.iter().map(|e| e.to_string()).collect(),
            ..Facts::default()
        }
    }

    /// Read again, a rewritten connection reaches the new host with every other part the same.
    fn only_the_host_moved(spec: &DatabaseSpec, facts: &Facts) -> Result<(), TestCaseError> {
        let set = spec.point_at(facts, "cutover-rehearsal-db").unwrap();
        let before = spec.locate(facts).unwrap();
        let after = spec.locate(&set.facts(facts)).unwrap();
        prop_assert_eq!(&after.host, "cutover-rehearsal-db");
        prop_assert_eq!(
            Location {
                host: before.host.clone(),
                ..after
            },
            before
        );
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// Whatever a password holds, pointing a connection at a copy moves its host alone.
        #[test]
        fn a_connection_pointed_at_a_copy_moves_only_its_host(
            user in "[a-z][a-z0-9_]{0,10}",
            password in "[A-Za-z0-9!#%&*+,.:@/=<>^_~-]{0,24}",
            host in "[a-z][a-z0-9.-]{0,20}",
            port in proptest::option::of(1u16..),
            name in "[a-z][a-z0-9_]{0,10}",
        ) {
            let at = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = DatabaseSpec { sources: vec![Source::UrlEnv { name: "DB_URL".into(), files: vec![] }], schema_query: None, requires_extensions: vec![], product_reads: None };
            // A URL's password holds no `/`: it would be percent-encoded.
            let text = format!("DB_URL=postgresql+psycopg2://{user}:{}@{host}{at}/{name}?sslmode=disable", password.replace('/', ""));
            only_the_host_moved(&url, &facts(&[&text]))?;
            let ado = DatabaseSpec { sources: vec![Source::AdoEnv { name: "CS".into(), engine: DbEngine::Postgres }], schema_query: None, requires_extensions: vec![], product_reads: None };
            let password = password.replace(';', "");
            let text = format!("CS=Host={host};Port={};Database={name};Username={user};Password={password}", port.unwrap_or(5432));
            only_the_host_moved(&ado, &facts(&[&text]))?;
            let mut secret = facts(&["CS_FILE=/run/secrets/cs"]);
            secret.files.insert("/run/secrets/cs".into(), format!("{}\n", text.trim_start_matches("CS=")));
            only_the_host_moved(&ado, &secret)?;
            let parts = DatabaseSpec { sources: vec![Source::PartsEnv { engine: DbEngine::Postgres, host: "H".into(), port: Some("P".into()), name: "N".into(), user: "U".into(), password: "W".into() }], schema_query: None, requires_extensions: vec![], product_reads: None };
            let env = [format!("H={host}"), format!("P={}", port.unwrap_or(5432)), format!("N={name}"), format!("U={user}"), format!("W={password}")];
            only_the_host_moved(&parts, &facts(&env.iter().map(String::as_str).collect::<Vec<_>>()))?;
            let quay = DatabaseSpec { sources: vec![Source::FileKey { path: "/conf/stack/config.yaml".into(), key: "DB_URI".into() }], schema_query: None, requires_extensions: vec![], product_reads: None };
            let url = format!("postgresql://{user}:{}@{host}{at}/{name}", password.replace(['/', '\''], ""));
            for written in [format!("DB_URI: {url}"), format!("DB_URI: '{url}'  # the database"), format!("DB_URI:    \"{url}\"")] {
                let mut config = facts(&[]);
                let text = format!("SERVER_HOSTNAME: quay.lan\n{written}\nDB_URI_X: {url}\n");
                config.files.insert("/conf/stack/config.yaml".into(), text.clone());
                only_the_host_moved(&quay, &config)?;
                let pointed = quay.point_at(&config, "cutover-rehearsal-db").unwrap();
                let (_, new) = pointed.file.unwrap();
                prop_assert_eq!(new.lines().count(), text.lines().count());
                prop_assert!(new.ends_with(&format!("DB_URI_X: {url}\n")), "{}", new);
            }
        }
    }

    #[test]
    fn extensions_are_asked_of_postgresql_alone() {
        let quay = DatabaseSpec {
            sources: vec![],
            schema_query: None,
            requires_extensions: vec!["pg_trgm".into()],
            product_reads: None,
        };
        assert_eq!(quay.extensions_of(DbEngine::Postgres), ["pg_trgm"]);
        assert!(quay.extensions_of(DbEngine::Mysql).is_empty());
    }

    #[test]
    fn a_file_key_written_otherwise_than_on_its_line_is_refused() {
        let quay = DatabaseSpec {
            sources: vec![Source::FileKey {
                path: "/c.yaml".into(),
                key: "DB_URI".into(),
            }],
            schema_query: None,
            requires_extensions: vec![],
            product_reads: None,
        };
        let mut config = facts(&[]);
        config.files.insert(
            "/c.yaml".into(),
            "DB_URI: >-\n  postgresql://u:p@db/quay\n".into(),
        );
        let refused = quay.point_at(&config, "copy").unwrap_err().to_string();
        assert!(refused.contains("write it so"), "{refused}");
        assert!(!refused.contains("u:p"), "{refused}");
    }

    #[test]
    fn a_connection_in_a_secret_or_a_dotenv_file_is_pointed_in_a_copy_of_that_file() {
        let url = DatabaseSpec {
            sources: vec![Source::UrlEnv {
                name: "DB_URL".into(),
                files: vec!["/app/.env".into()],
            }],
            schema_query: None,
            requires_extensions: vec![],
            product_reads: None,
        };
        let mut secret = facts(&["DB_URL_FILE=/run/secrets/db"]);
        secret
            .files
            .insert("/run/secrets/db".into(), "postgres://a:b@db/x\n".into());
        let pointed = url.point_at(&secret, "copy").unwrap();
        assert_eq!(
            pointed.file,
            Some(("/run/secrets/db".into(), "postgres://a:b@copy/x\n".into()))
        );
        assert!(pointed.env.is_empty() && !pointed.whole_directory);
        let mut dotenv = facts(&[]);
        dotenv.files.insert(
            "/app/.env".into(),
            "# lake\nDB_URL_OLD=postgres://a:b@db/x\nexport DB_URL=\"postgres://a:b@db/x\"\nPORT=8080\n".into(),
        );
        assert_eq!(
            url.point_at(&dotenv, "copy").unwrap().file.unwrap().1,
            "# lake\nDB_URL_OLD=postgres://a:b@db/x\nexport DB_URL=\"postgres://a:b@copy/x\"\nPORT=8080\n"
        );
    }

    #[test]
    fn an_ado_string_moves_its_host_alone_and_the_embedded_database_is_not_pointed_at_a_copy() {
        let sql = "Server=tcp:sql,1433;Database=ProGet";
        assert_eq!(
            ado_at(sql, "copy").unwrap(),
            "Server=tcp:copy,1433;Database=ProGet"
        );
        assert!(ado_at("Host=a,b;Database=x", "copy")
            .unwrap_err()
            .to_string()
            .contains("several hosts"));
        let embedded = DatabaseSpec {
            sources: vec![Source::Embedded {
                path: "/var/proget/database".into(),
            }],
            schema_query: None,
            requires_extensions: vec![],
            product_reads: None,
        };
        assert!(embedded
            .point_at(&facts(&[]), "copy")
            .unwrap_err()
            .to_string()
            .contains("embedded database"));
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// A URL written with its parts reads as those parts.
        #[test]
        fn a_database_url_reads_as_its_parts(
            scheme in proptest::sample::select(vec![("postgresql", DbEngine::Postgres), ("mysql", DbEngine::Mysql), ("sqlserver", DbEngine::Sqlserver)]),
            user in "[a-z][a-z0-9_]{0,10}",
            password in "[A-Za-z0-9_.~-]{0,24}",
            host in "[a-z][a-z0-9.-]{0,20}",
            port in any::<u16>(),
            name in "[a-z][a-z0-9_]{0,10}",
        ) {
            let (scheme, engine) = scheme;
            let url = format!("{scheme}://{user}:{password}@{host}:{port}/{name}?sslmode=disable");
            let read = parse_url(&url).unwrap();
            prop_assert_eq!(read.engine, engine);
            prop_assert_eq!(
                (read.user, read.password, read.host, read.port, read.name),
                (user, password, host, port, name)
            );
        }
    }
    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// libpq's keyword/value form, values bare or quoted in any order, reads as its parts.
        #[test]
        fn a_keyword_connection_string_reads_as_its_parts(
            user in "[a-z][a-z0-9_]{0,10}",
            password in "[A-Za-z0-9 '\\\\_.~-]{0,24}",
            host in "[a-z][a-z0-9.-]{0,20}",
            port in any::<u16>(),
            name in "[a-z][a-z0-9_]{0,10}",
            reversed in any::<bool>(),
        ) {
            let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
            let mut parts = [
                format!("host={host}"),
                format!("port = {port}"),
                format!("dbname={name}"),
                format!("user={user}"),
                format!("password='{quoted}'"),
                "sslmode=disable".to_string(),
            ];
            if reversed {
                parts.reverse();
            }
            let read = parse_connection(&parts.join("  ")).unwrap();
            prop_assert_eq!(read.engine, DbEngine::Postgres);
            prop_assert_eq!(
                (read.user, read.password, read.host, read.port, read.name),
                (user, password, host, port, name)
            );
        }
    }

    #[test]
    fn a_nested_file_key_names_clairs_database_and_dbname_defaults_to_the_user() {
        let clair = DatabaseSpec {
            sources: vec![Source::FileKey {
                path: "/config/config.yaml".into(),
                key: "indexer.connstring".into(),
            }],
            schema_query: None,
            requires_extensions: vec![],
            product_reads: None,
        };
        let mut config = facts(&[]);
        config.files.insert(
            "/config/config.yaml".into(),
            "http_listen_addr: :8081\nindexer:\n  connstring: host=clair-db port=5433 user=clairuser password=clairpass sslmode=disable\n  migrations: true\n".into(),
        );
        let found = clair.locate(&config).unwrap();
        assert_eq!(
            (found.host.as_str(), found.port, found.name.as_str()),
            ("clair-db", 5433, "clairuser")
        );
        assert_eq!(found.from, "indexer.connstring in /config/config.yaml");
        let unclosed = parse_keywords("host=db password='abc")
            .unwrap_err()
            .to_string();
        assert!(
            unclosed.contains("closing quote") && !unclosed.contains("abc"),
            "{unclosed}"
        );
        assert!(parse_keywords("dbname=clair")
            .unwrap_err()
            .to_string()
            .contains("no host"));
    }
}
