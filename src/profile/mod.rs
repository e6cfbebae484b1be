//! Product profiles: a vendor's upgrade procedure as data.
//!
//! A profile names the images it applies to, the path its versions must take, the health and
//! version checks, the group its containers move in, where its database is, and the steps around
//! the swap (migration, carried files, environment, required secrets, calls after start), each
//! optionally bounded to a range of source or target versions. For one hop, each step kind turns
//! itself ([`steps`]) into the same options the command line gives, or into parts the plan
//! places by phase, so the plan knows no product.
//!
//! Profiles are YAML files (`profiles/*.yaml`), embedded in the binary; files of the same name in
//! `/etc/cutover/profiles`, then in `$XDG_CONFIG_HOME/cutover/profiles`
//! (`~/.config/cutover/profiles`), replace them, and other files there add profiles.

pub mod notes;
mod path;
pub mod related;
pub mod steps;
pub mod task;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use crate::backup::location::DatabaseSpec;
pub use crate::engine::facts::Facts;
use crate::engine::reference::ImageRef;
use crate::health::{HealthSettings, JsonCondition};
use crate::plan::build::StartOrder;
use crate::plan::steps::VersionSource;
pub use notes::{NotesLink, ReleaseNotes};
pub use path::{hops, UpgradePath};
pub use related::RelatedSpec;
pub use steps::{HopSteps, ProfileStep};

/// The label that names a container's profile (or `none`).
pub const LABEL_PROFILE: &str = "cutover.profile";

/// Which profile applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Choice {
    /// The `cutover.profile` label, else the profile whose repositories match the image.
    Auto,
    /// `--profile NAME|FILE`.
    Named(String),
    /// `--profile none`: the generic upgrade only.
    Without,
}

/// The profiles shipped in the binary, as `profiles/` holds them.
const BUILTIN: &[(&str, &str)] = &[
    (
        "anchore-engine.yaml",
        include_str!("../../profiles/anchore-engine.yaml"),
    ),
    (
        "buildmaster.yaml",
        include_str!("../../profiles/buildmaster.yaml"),
    ),
    ("devlake.yaml", include_str!("../../profiles/devlake.yaml")),
    ("otter.yaml", include_str!("../../profiles/otter.yaml")),
    ("proget.yaml", include_str!("../../profiles/proget.yaml")),
    ("quay.yaml", include_str!("../../profiles/quay.yaml")),
];

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// `file:line:column: message`, as editors read it.
    #[error("{origin}:{line}:{column}: {message}")]
    Invalid {
        origin: String,
        line: usize,
        column: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Unreadable { origin: String, message: String },
    #[error("there is no profile named {0:?}; `cutover profiles list` shows them, or give a file")]
    Unknown(String),
}

/// Why a profile cannot be applied to a container: a value it reads of the container or the
/// hop (a variable, a file's key, a tag) is missing or does not read, or the container is
/// unfit; found while the plan is made, before anything runs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Template(#[from] crate::template::TemplateError),
    /// A duration the profile gives, under its key.
    #[error("{key}: {why}")]
    Duration {
        key: &'static str,
        why: crate::duration::DurationError,
    },
    /// A hop the step's bounds cannot judge (a tag that is no version).
    #[error("{0}")]
    Bounds(String),
    /// The vendor's upgrade path from the current version to the target stops at a release
    /// the registry does not have.
    #[error("{0}")]
    NoPath(String),
    /// What the profile reads of the container, or of the files given to its task, is missing
    /// or does not fit what it needs.
    #[error("{0}")]
    Unfit(String),
}

/// A product's profile, as its file says it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Repository paths, matched whatever registry or mirror serves them, as the last components
    /// of the image's path: `projectquay/quay` matches `quay.io/projectquay/quay` and
    /// `mirror.lan/cache/projectquay/quay`. A leading `*/` says the same out loud.
    #[serde(rename = "match")]
    pub repositories: Vec<String>,
    /// The default version policy of `check` and `auto`: patch, minor or major.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upgrade_path: Option<UpgradePath>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<HealthSpec>,
    /// Where the new version reports its version, checked after health (`--expect-version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<GroupSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<DatabaseSpec>,
    /// The product upgrades its database when the new version starts (no migration step runs
    /// before): its start moves the data on, as a migration does.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub migrates_at_start: bool,
    /// Written as YAML maps (`- migrate: {...}`), not tags.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<ProfileStep>,
    /// Other products of the installation that move with it and must be ready before it
    /// starts (Quay's Clair), by name.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub related: std::collections::BTreeMap<String, RelatedSpec>,
    /// Where the vendor publishes release notes, each page a URL template over the version
    /// (see [`notes`]); its source under `sources: release_notes`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub release_notes: Vec<ReleaseNotes>,
    /// Where each rule the running product is tried against was read (a vendor's document or
    /// source path), by the check that tries it ([`Profile::rules_given`]): what `cutover profiles check`
    /// shows beside the product's answer, so that a rule it disagrees with can be weighed
    /// against its source.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sources: std::collections::BTreeMap<String, String>,
    /// Maintenance procedures (`cutover task`), by name.
    #[serde(
        default,
        skip_serializing_if = "std::collections::BTreeMap::is_empty",
        with = "yaml_serde::with::singleton_map_recursive"
    )]
    pub tasks: std::collections::BTreeMap<String, task::TaskSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthSpec {
    pub port: u16,
    #[serde(default = "root")]
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub json: Vec<JsonCondition>,
    /// How long the product may take to come up (migrating at start can take minutes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// A variable of the container listing the URLs the product listens on
    /// (`http://*:8181;https://*:4443`, ASP.NET's `ASPNETCORE_URLS`): when set, the port of its
    /// first `http://` URL replaces `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_from_urls: Option<String>,
    /// A variable of the container holding the port the product listens on (Anchore's
    /// `ANCHORE_SERVICE_PORT`): when set, it replaces `port`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_from_env: Option<String>,
    /// When the product serves TLS itself: health is then asked over https on another port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsSpec>,
    /// Another path, when a setting of the container closes `path` (DevLake's login gate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_when: Option<PathWhen>,
}

/// `path` instead, when `env` holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathWhen {
    pub env: EnvIs,
    pub path: String,
}

/// A variable of the container (its environment, else the dotenv `files`) set to one of `is`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnvIs {
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<String>,
    pub is: Vec<String>,
}

impl EnvIs {
    pub fn holds(&self, facts: &Facts) -> bool {
        facts
            .value(&self.name, &self.files)
            .is_some_and(|v| self.is.iter().any(|w| *w == v.trim()))
    }
}

/// TLS the product turns on when a file exists in the container (Quay's `ssl.key`); its
/// certificate is not verified, since self-signed ones are common.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSpec {
    pub when_file: String,
    pub port: u16,
}

fn root() -> String {
    "/".into()
}

/// Which other containers move with the one named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    /// Every running container of this profile whose database is the same.
    pub by: GroupBy,
    /// `named_first`: the named container starts first and the rest once it is healthy (Quay
    /// nodes); `reverse`: the rest start first and the named one last.
    #[serde(default)]
    pub start: StartOrder,
    /// Repository paths of other images of the same installation, which move to the same tag
    /// (DevLake's UI and dashboard): running containers of those images that share a network
    /// or a compose project with the one named. They get the swap and their own health only:
    /// the profile's steps are the product's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub companions: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupBy {
    Database,
}

fn parse_duration(key: &'static str, text: &str) -> Result<Duration, ApplyError> {
    crate::duration::parse(text).map_err(|why| ApplyError::Duration { key, why })
}

impl Profile {
    /// Whether every running container of the product on one database moves together.
    pub fn groups_by_database(&self) -> bool {
        self.group
            .as_ref()
            .is_some_and(|g| g.by == GroupBy::Database)
    }

    /// Parses and checks a profile; errors carry the file, line and column.
    pub fn parse(text: &str, origin: &str) -> Result<Profile, ProfileError> {
        let invalid = |(line, column), message| ProfileError::Invalid {
            origin: origin.to_string(),
            line,
            column,
            message,
        };
        let profile: Profile = yaml_serde::from_str(text).map_err(|e| {
            let at = e.location().map_or((1, 1), |l| (l.line(), l.column()));
            // The location leads the message already.
            let message = e.to_string();
            let message = message
                .split(" at line ")
                .next()
                .unwrap_or(&message)
                .to_string();
            invalid(at, message)
        })?;
        profile
            .check()
            .map_err(|p| invalid(locate(text, &p.at), p.message))?;
        Ok(profile)
    }

    /// The rules this profile gives that are claims about the vendor's software, each needing
    /// its entry in `sources`: the checks of the running product, and where release notes are.
    pub fn rules_given(&self) -> Vec<&'static str> {
        let database = self.database.as_ref();
        [
            ("health", self.health.is_some()),
            ("version", self.expect_version.is_some()),
            ("database", database.is_some()),
            (
                "extensions",
                database.is_some_and(|d| !d.requires_extensions.is_empty()),
            ),
            ("release_notes", !self.release_notes.is_empty()),
        ]
        .into_iter()
        .filter_map(|(check, given)| given.then_some(check))
        .collect()
    }

    /// What serde cannot check: ranges, durations, policies, templates; each problem with the
    /// keys that lead to its value.
    fn check(&self) -> Result<(), Problem> {
        let given = self.rules_given();
        if let Some(other) = self.sources.keys().find(|k| !given.contains(&k.as_str())) {
            return Err(Problem::under(&["sources", other])(format!(
                "sources: {other} is none of the rules this profile gives ({})",
                given.join(", ")
            )));
        }
        if self.repositories.is_empty() {
            return Err(Problem::under(&["match"])(
                "match: name at least one repository path".into(),
            ));
        }
        if let Some(policy) = &self.policy {
            let p: crate::version::Policy = policy.parse().map_err(Problem::under(&["policy"]))?;
            if p == crate::version::Policy::Digest {
                return Err(Problem::under(&["policy"])(
                    "policy: a profile's policy follows versions: patch, minor or major".into(),
                ));
            }
        }
        if let Some(path) = &self.upgrade_path {
            path.check().map_err(Problem::under(&["upgrade_path"]))?;
        }
        for (i, notes) in self.release_notes.iter().enumerate() {
            notes.check().map_err(|message| Problem {
                at: vec![Key::name("release_notes"), Key::Item(i), Key::name("url")],
                message: format!("release_notes: {message}"),
            })?;
        }
        if let Some(t) = self.health.as_ref().and_then(|h| h.timeout.as_ref()) {
            parse_duration("health: timeout", t)
                .map_err(|e| Problem::under(&["health", "timeout"])(e.to_string()))?;
        }
        let secrets: Vec<String> = self
            .database
            .iter()
            .flat_map(|d| d.secret_variables())
            .collect();
        for (i, step) in self.steps.iter().enumerate() {
            step.check(&secrets).map_err(|(key, message)| Problem {
                at: vec![
                    Key::name("steps"),
                    Key::Item(i),
                    Key::name(step.spec.name()),
                    Key::name(key),
                ],
                message,
            })?;
        }
        for (name, spec) in &self.related {
            spec.check().map_err(|(key, message)| Problem {
                at: vec![Key::name("related"), Key::name(name), Key::name(key)],
                message: format!("related {name}: {key}: {message}"),
            })?;
        }
        for (name, spec) in &self.tasks {
            spec.check(name, &secrets)
                .map_err(Problem::under(&["tasks", name]))?;
        }
        Ok(())
    }

    /// What the profile adds to the hop from `from` to `to` (tags) for a container with these
    /// facts: its version check and start-up migration, its steps within their bounds, and its
    /// release notes among the hop's notes.
    pub fn for_hop(&self, from: &str, to: &str, facts: &Facts) -> Result<HopSteps, ApplyError> {
        let mut hop = steps::for_hop(&self.steps, from, to, facts)?;
        hop.stage
            .notes
            .extend(self.release_notes(from, to).iter().map(NotesLink::line));
        hop.stage.migrates_at_start = self.migrates_at_start;
        if let Some(url) = &self.expect_version {
            hop.stage.expect_version = Some(VersionSource::Url(url.clone()));
        }
        Ok(hop)
    }

    /// Whether the profile applies to an image, and the pattern that matched.
    pub fn matches(&self, image: &ImageRef) -> Option<&str> {
        repository_matching(&self.repositories, image)
    }

    /// The files the profile reads from a container whose environment is `env`: dotenv files,
    /// the database's configuration file and the files its variables are given in, and the
    /// configuration files its commands' conditions read.
    pub fn files_to_read(&self, env: &[String]) -> Vec<String> {
        let mut files: Vec<String> = self
            .steps
            .iter()
            .flat_map(|s| s.spec.plans().files())
            .collect();
        files.extend(
            self.health
                .iter()
                .flat_map(|h| h.path_when.iter().flat_map(|w| w.env.files.clone())),
        );
        files.extend(self.database.iter().flat_map(|d| d.files(env)));
        files.sort();
        files.dedup();
        files
    }

    /// The paths whose existence the profile asks of a container (a TLS key).
    pub fn files_to_test(&self) -> Vec<String> {
        self.health
            .iter()
            .flat_map(|h| h.tls.iter().map(|t| t.when_file.clone()))
            .collect()
    }

    /// The profile's layer of health settings for a container with these facts, under the
    /// config file's and the command line's: its port moved by its URL variable, and https when
    /// it serves TLS itself.
    pub fn health(&self, facts: &Facts) -> Result<HealthSettings, ApplyError> {
        let Some(spec) = &self.health else {
            return Ok(HealthSettings::default());
        };
        let tls = spec
            .tls
            .as_ref()
            .filter(|t| facts.present.contains(&t.when_file));
        let listed = spec
            .port_from_urls
            .as_ref()
            .and_then(|name| facts.value(name, &[]))
            .and_then(|urls| http_port(&urls));
        let set = match spec
            .port_from_env
            .as_ref()
            .and_then(|name| facts.value(name, &[]).map(|v| (name, v)))
        {
            Some((name, v)) => Some(v.trim().parse::<u16>().map_err(|_| {
                ApplyError::Unfit(format!(
                    "{name}={v:?} is not a port: set it to the port the product listens on"
                ))
            })?),
            None => None,
        };
        let listed = set.or(listed);
        let path = match spec.path_when.as_ref().filter(|w| w.env.holds(facts)) {
            Some(when) => when.path.clone(),
            None => spec.path.clone(),
        };
        Ok(HealthSettings {
            port: Some(tls.map_or(listed.unwrap_or(spec.port), |t| t.port)),
            path: Some(path),
            tls: tls.is_some(),
            expect_status: spec.status,
            json: spec.json.clone(),
            timeout: spec
                .timeout
                .as_deref()
                .map(|t| parse_duration("health: timeout", t))
                .transpose()?,
            ..HealthSettings::default()
        })
    }
}

/// The first of `patterns` (repository paths, as the last components of the image's path,
/// whatever registry or mirror serves it) that names the image's repository.
pub fn repository_matching<'a>(patterns: &'a [String], image: &ImageRef) -> Option<&'a str> {
    let path: Vec<&str> = match image.registry() {
        Some(host) => image.repository[host.len() + 1..].split('/').collect(),
        None => image.repository.split('/').collect(),
    };
    patterns.iter().map(String::as_str).find(|pattern| {
        let want: Vec<&str> = pattern.trim_start_matches("*/").split('/').collect();
        path.len() >= want.len() && path[path.len() - want.len()..] == want[..]
    })
}

/// The port of the first `http://` URL of a list such as `http://*:8181;https://*:4443`
/// (`ASPNETCORE_URLS`); 80 when that URL names none.
fn http_port(urls: &str) -> Option<u16> {
    let url = urls
        .split([';', ','])
        .map(str::trim)
        .find_map(|u| u.strip_prefix("http://"))?;
    let authority = url.split('/').next().unwrap_or_default();
    match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().ok(),
        None => Some(80),
    }
}

/// A key on the way to a value of a profile: a mapping's key, or a list's item.
#[derive(Debug, Clone, PartialEq)]
enum Key {
    Name(String),
    Item(usize),
}

impl Key {
    fn name(name: &str) -> Key {
        Key::Name(name.to_string())
    }
}

/// Why a profile is invalid, and the keys that lead to the value at fault.
#[derive(Debug)]
struct Problem {
    at: Vec<Key>,
    message: String,
}

impl Problem {
    /// The problem of the value under `keys`, for `map_err`.
    fn under(keys: &[&str]) -> impl FnOnce(String) -> Problem {
        let at = keys.iter().map(|k| Key::name(k)).collect();
        move |message| Problem { at, message }
    }
}

/// The line and column (1-based) of the value `at` leads to in the YAML `text`, following block
/// mappings and lists by their indentation and flow mappings (`{ port: 8080 }`) within a line;
/// as deep as the keys can be followed, the start of the file when none can.
fn locate(text: &str, at: &[Key]) -> (usize, usize) {
    let lines: Vec<&str> = text.lines().collect();
    let indent = |line: &str| line.len() - line.trim_start().len();
    let meaningful = |line: &str| {
        let t = line.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    // The lines of a node whose key (or an item's dash) stands at `col` of line `i`.
    let block = |i: usize, col: usize| {
        let end = (i + 1..lines.len())
            .find(|&j| meaningful(lines[j]) && indent(lines[j]) <= col)
            .unwrap_or(lines.len());
        i + 1..end
    };
    let mut found = (1, 1);
    // The current node: its own line, the column of its key, the lines of its block.
    let mut node: Option<(usize, usize)> = None;
    let mut within = 0..lines.len();
    for key in at {
        let deeper = |col: usize| node.is_none_or(|(_, c)| col > c);
        let hit = match key {
            Key::Name(name) => {
                let pattern = format!("{name}:");
                let own = node.map(|(i, _)| i);
                own.into_iter()
                    .chain(within.clone())
                    .filter_map(|i| {
                        let line = lines[i];
                        let start = indent(line);
                        let (col, rest) = match line[start..].strip_prefix("- ") {
                            Some(rest) => (start + 2, rest),
                            None => (start, &line[start..]),
                        };
                        if rest.starts_with(&pattern) && (deeper(col) || Some(i) == own) {
                            return Some((i, col));
                        }
                        // A flow mapping on the node's own line.
                        (Some(i) == own)
                            .then(|| flow_key(line, &pattern).filter(|&c| c > col))
                            .flatten()
                            .map(|c| (i, c))
                    })
                    .min_by_key(|&(i, col)| (col, i))
            }
            Key::Item(n) => {
                let items: Vec<(usize, usize)> = within
                    .clone()
                    .filter(|&i| {
                        let t = lines[i].trim_start();
                        (t.starts_with("- ") || t == "-") && deeper(indent(lines[i]))
                    })
                    .map(|i| (i, indent(lines[i])))
                    .collect();
                let least = items.iter().map(|&(_, col)| col).min();
                items
                    .into_iter()
                    .filter(|&(_, col)| Some(col) == least)
                    .nth(*n)
            }
        };
        let Some((i, col)) = hit else { break };
        found = (i + 1, col + 1);
        node = Some((i, col));
        within = block(i, col);
    }
    found
}

/// The column of `pattern` (`key:`) as a key of a flow mapping in `line`.
fn flow_key(line: &str, pattern: &str) -> Option<usize> {
    line.match_indices(pattern)
        .find(|(at, _)| line[..*at].trim_end_matches(' ').ends_with(['{', ',']))
        .map(|(at, _)| at)
}

/// Where a profile came from, for `profiles list` and plans.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Loaded {
    pub profile: Profile,
    /// `built-in`, or the file that defined or replaced it.
    pub origin: String,
}

/// The profile `choose_profile` chose, with why, as a plan names it.
impl From<(Loaded, String)> for crate::plan::ProfileUse {
    fn from((loaded, why): (Loaded, String)) -> Self {
        crate::plan::ProfileUse {
            name: loaded.profile.name,
            origin: loaded.origin,
            why,
        }
    }
}

/// Every profile this host knows: the built-in ones, replaced or added to by the files of the
/// user directories.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    pub profiles: Vec<Loaded>,
}

impl Catalog {
    pub fn builtin() -> Catalog {
        let profiles = BUILTIN
            .iter()
            .map(|(file, text)| Loaded {
                profile: Profile::parse(text, &format!("profiles/{file}"))
                    .unwrap_or_else(|e| panic!("a shipped profile is invalid: {e}")),
                origin: "built-in".into(),
            })
            .collect();
        Catalog { profiles }
    }

    /// The built-in profiles, then `/etc/cutover/profiles`, then the user's configuration
    /// directory; a later file replaces a profile of the same name.
    pub fn load() -> Result<Catalog, ProfileError> {
        let mut catalog = Catalog::builtin();
        for dir in user_dirs() {
            catalog.add_dir(&dir)?;
        }
        Ok(catalog)
    }

    pub fn add_dir(&mut self, dir: &Path) -> Result<(), ProfileError> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
            .collect();
        files.sort();
        for file in files {
            let loaded = load_file(&file)?;
            self.profiles
                .retain(|p| p.profile.name != loaded.profile.name);
            self.profiles.push(loaded);
        }
        Ok(())
    }

    pub fn get(&self, name: &str) -> Option<&Loaded> {
        self.profiles.iter().find(|p| p.profile.name == name)
    }

    /// The profile `--profile` names: a known name, or a file.
    pub fn named(&self, name_or_file: &str) -> Result<Loaded, ProfileError> {
        if let Some(found) = self.get(name_or_file) {
            return Ok(found.clone());
        }
        let path = Path::new(name_or_file);
        if path.exists() || name_or_file.contains('/') || name_or_file.ends_with(".yaml") {
            return load_file(path);
        }
        Err(ProfileError::Unknown(name_or_file.to_string()))
    }

    /// The profile whose repositories match the image, with the pattern that matched.
    pub fn matching(&self, image: &ImageRef) -> Option<(&Loaded, String)> {
        self.profiles.iter().find_map(|p| {
            p.profile
                .matches(image)
                .map(|pattern| (p, pattern.to_string()))
        })
    }

    /// The profile a container follows, and why: the choice given, else its `cutover.profile`
    /// label, else the profile matching its image.
    pub fn choose(
        &self,
        choice: &Choice,
        labels: &std::collections::HashMap<String, String>,
        image: &str,
    ) -> Result<Option<(Loaded, String)>, ProfileError> {
        match choice {
            Choice::Without => return Ok(None),
            Choice::Named(name) => return Ok(Some((self.named(name)?, "--profile".to_string()))),
            Choice::Auto => {}
        }
        match labels.get(LABEL_PROFILE).map(String::as_str) {
            Some("none") => Ok(None),
            Some(name) => Ok(Some((
                self.named(name)?,
                format!("label {LABEL_PROFILE}={name}"),
            ))),
            None => {
                let image = ImageRef::parse(image);
                let found = image.as_ref().and_then(|i| self.matching(i));
                Ok(found.map(|(loaded, pattern)| {
                    (
                        loaded.clone(),
                        format!("its image is in repository {pattern}"),
                    )
                }))
            }
        }
    }
}

pub fn load_file(path: &Path) -> Result<Loaded, ProfileError> {
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| ProfileError::Unreadable {
        origin: origin.clone(),
        message: e.to_string(),
    })?;
    Ok(Loaded {
        profile: Profile::parse(&text, &origin)?,
        origin,
    })
}

fn user_dirs() -> Vec<PathBuf> {
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
    let mut dirs = vec![PathBuf::from("/etc/cutover/profiles")];
    dirs.extend(config.map(|c| c.join("cutover/profiles")));
    dirs
}

#[cfg(test)]
mod tests;
