//! Related products: other products of the installation, each with its own image, version,
//! database and readiness, which the product needs serving before it starts (Quay's Clair:
//! "Start Clair using the new version of the image. Wait until Clair is ready to accept
//! connections before starting the new version of Quay", quay-docs
//! `modules/proc_upgrade_standalone.adoc`). Their containers move in the product's group, are
//! backed up with it, and start first (see `docs/design/clair.md`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{parse_duration, ApplyError};
use crate::backup::location::{yaml_key, DatabaseSpec, Source};
use crate::engine::facts::{env_value, Facts};
use crate::engine::reference::ImageRef;
use crate::health::HealthPolicy;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelatedSpec {
    /// Its images' repository paths, matched as a profile's `match` is.
    #[serde(rename = "match")]
    pub repositories: Vec<String>,
    /// Repositories whose version is the product's own tag at each hop (Red Hat's images);
    /// any other needs its version given (`--related NAME=TAG`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_tag: Vec<String>,
    pub config: ConfigFile,
    pub database: DatabaseKey,
    pub ready: Ready,
}

/// Its configuration file: `path`, unless the container's variable `env` names another.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
}

/// Its database: a key of its configuration file (a dotted path); `same_as`, other keys that
/// must name the same database, since one database is backed up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseKey {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_as: Vec<String>,
}

/// Where it says it is ready: `path` on `port`, or on the port of the address its
/// configuration's `addr_key` gives (`:8088`, `0.0.0.0:8089`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ready {
    pub port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub addr_key: Option<String>,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
}

/// How long a related product may take to be ready when its profile does not say.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

impl RelatedSpec {
    /// What serde cannot check, with the key at fault.
    pub(super) fn check(&self) -> Result<(), (&'static str, String)> {
        if self.repositories.is_empty() {
            return Err(("match", "name at least one repository path".into()));
        }
        if let Some(other) = self
            .same_tag
            .iter()
            .find(|s| !self.repositories.contains(s))
        {
            return Err((
                "same_tag",
                format!("{other} is not one of its match repositories"),
            ));
        }
        if !self.config.path.starts_with('/') {
            return Err(("config", "path: give an absolute path".into()));
        }
        if !self.ready.path.starts_with('/') {
            return Err(("ready", "path: give a path starting with /".into()));
        }
        if let Some(t) = &self.ready.timeout {
            parse_duration("timeout", t).map_err(|e| ("ready", e.to_string()))?;
        }
        Ok(())
    }

    /// Whether a container of `image` is one of its.
    pub fn matches(&self, image: &ImageRef) -> bool {
        super::repository_matching(&self.repositories, image).is_some()
    }

    /// Its configuration file in a container whose environment is `env`.
    pub fn config_path(&self, env: &[String]) -> String {
        self.config
            .env
            .as_deref()
            .and_then(|name| env_value(env, name))
            .filter(|path| !path.is_empty())
            .unwrap_or(&self.config.path)
            .to_string()
    }

    /// Where a container whose environment is `env` has its database, as a backup reads it.
    pub fn database(&self, env: &[String]) -> DatabaseSpec {
        DatabaseSpec {
            sources: vec![Source::FileKey {
                path: self.config_path(env),
                key: self.database.key.clone(),
            }],
            schema_query: None,
            requires_extensions: Vec::new(),
            product_reads: None,
        }
    }

    /// Refuses a container whose other keys (`same_as`) name another database than its own:
    /// only the one is backed up.
    pub fn one_database(&self, facts: &Facts) -> Result<(), ApplyError> {
        let path = self.config_path(&facts.env);
        let text = facts.files.get(&path);
        let named = |key: &str| -> Result<Option<(String, u16, String)>, ApplyError> {
            let Some(value) = text.and_then(|t| yaml_key(t, key)) else {
                return Ok(None);
            };
            let at = crate::backup::location::parse_connection(&value)
                .map_err(|e| ApplyError::Unfit(format!("{key} in {path}: {e}")))?;
            Ok(Some((at.host, at.port, at.name)))
        };
        let own = named(&self.database.key)?;
        for other in &self.database.same_as {
            if let Some(theirs) = named(other)? {
                if Some(&theirs) != own.as_ref() {
                    return Err(ApplyError::Unfit(format!(
                        "{other} in {path} names another database than {} ({}:{}/{}): cutover backs up one database per container; back them up yourself and pass --skip-backup",
                        self.database.key, theirs.0, theirs.1, theirs.2
                    )));
                }
            }
        }
        Ok(())
    }

    /// Its readiness in a container with these facts, within its timeout: no port when its
    /// address listens on loopback only (`localhost:8089`), which nothing outside the container
    /// can ask: then it is awaited as a container without a health rule.
    pub fn readiness(&self, facts: &Facts, settle: Duration) -> Result<HealthPolicy, ApplyError> {
        let path = self.config_path(&facts.env);
        let addr = self
            .ready
            .addr_key
            .as_deref()
            .and_then(|key| facts.files.get(&path).and_then(|t| yaml_key(t, key)))
            .filter(|a| !a.is_empty());
        let timeout = match &self.ready.timeout {
            Some(t) => parse_duration("timeout", t)?,
            None => DEFAULT_TIMEOUT,
        };
        let port = match &addr {
            None => self.ready.port,
            Some(addr) => {
                let (host, port) = addr.rsplit_once(':').ok_or_else(|| {
                    ApplyError::Unfit(format!("{addr:?} in {path} is no host:port"))
                })?;
                if matches!(
                    host.trim_matches(['[', ']']),
                    "localhost" | "127.0.0.1" | "::1"
                ) {
                    return Ok(HealthPolicy::new(settle, timeout));
                }
                port.parse()
                    .map_err(|_| ApplyError::Unfit(format!("{addr:?} in {path} names no port")))?
            }
        };
        Ok(HealthPolicy {
            port: Some(port),
            path: self.ready.path.clone(),
            expect_status: self.ready.status,
            ..HealthPolicy::new(settle, timeout)
        })
    }

    /// Its image after each hop of the product through `tags` (the product's tag after each
    /// hop), for a container now on `image`: the product's tag in its own repository where the
    /// vendor ties the two, else `given` (one hop only: no source names its version between).
    pub fn images(
        &self,
        name: &str,
        image: &ImageRef,
        tags: &[String],
        given: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let same = super::repository_matching(&self.same_tag, image).is_some();
        match (given, same) {
            (Some(tag), _) if tags.len() == 1 => Ok(vec![image.with_tag(tag).to_string()]),
            (Some(_), _) => Err(format!(
                "--related {name}=TAG gives one version, and this upgrade takes {} hops: upgrade one hop at a time (--to each of {}), giving {name}'s version for each",
                tags.len(),
                tags.join(", ")
            )),
            (None, true) => Ok(tags.iter().map(|t| image.with_tag(t).to_string()).collect()),
            (None, false) => Err(format!(
                "which {name} version goes with {} is not said by its vendor for {}: give it with --related {name}=TAG",
                tags.last().map(String::as_str).unwrap_or_default(),
                image.repository
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clair() -> RelatedSpec {
        yaml_serde::from_str(
            r#"
match: ["projectquay/clair", "quay/clair-rhel8"]
same_tag: ["quay/clair-rhel8"]
config: { path: /config/config.yaml, env: CLAIR_CONF }
database: { key: indexer.connstring, same_as: [matcher.connstring, notifier.connstring] }
ready: { port: 8089, addr_key: introspection_addr, path: /readyz, status: 200, timeout: 5m }
"#,
        )
        .unwrap()
    }

    fn facts(env: &[&str], path: &str, config: &str) -> Facts {
        Facts {
            env: env.iter().map(|e| e.to_string()).collect(),
            files: [(path.to_string(), config.to_string())].into(),
            ..Facts::default()
        }
    }

    const CONN: &str = "host=clair-db port=5432 dbname=clair user=clair password=pw-9";

    #[test]
    fn its_config_is_where_its_variable_says_and_its_database_is_read_there() {
        let spec = clair();
        let env = ["CLAIR_CONF=/clair/config.yaml".to_string()];
        assert_eq!(spec.config_path(&env), "/clair/config.yaml");
        assert_eq!(spec.config_path(&[]), "/config/config.yaml");
        let f = facts(
            &["CLAIR_CONF=/clair/config.yaml"],
            "/clair/config.yaml",
            &format!("indexer:\n  connstring: {CONN}\n"),
        );
        let found = spec.database(&f.env).locate(&f).unwrap();
        assert_eq!(
            (found.host.as_str(), found.name.as_str()),
            ("clair-db", "clair")
        );
    }

    #[test]
    fn a_matcher_on_another_database_is_refused_and_the_same_one_passes() {
        let spec = clair();
        let same = format!(
            "indexer:\n  connstring: {CONN}\nmatcher:\n  connstring: postgresql://clair:pw-9@clair-db:5432/clair\n"
        );
        spec.one_database(&facts(&[], "/config/config.yaml", &same))
            .unwrap();
        let other = format!(
            "indexer:\n  connstring: {CONN}\nnotifier:\n  connstring: host=clair-db dbname=notes user=clair\n"
        );
        let refused = spec
            .one_database(&facts(&[], "/config/config.yaml", &other))
            .unwrap_err()
            .to_string();
        assert!(refused.starts_with("notifier.connstring"), "{refused}");
        assert!(!refused.contains("pw-9"), "{refused}");
    }

    #[test]
    fn readiness_is_asked_on_the_introspection_port_unless_it_is_loopback() {
        let spec = clair();
        let settle = Duration::from_secs(1);
        let at = |config: &str| spec.readiness(&facts(&[], "/config/config.yaml", config), settle);
        let own = at("introspection_addr: :8088\n").unwrap();
        assert_eq!(
            (own.port, own.path.as_str(), own.expect_status, own.timeout),
            (Some(8088), "/readyz", Some(200), Duration::from_secs(300))
        );
        assert_eq!(at("log_level: info\n").unwrap().port, Some(8089));
        assert_eq!(
            at("introspection_addr: localhost:8089\n").unwrap(),
            HealthPolicy::new(settle, Duration::from_secs(300)),
            "awaited without a port, within its own timeout"
        );
        assert!(at("introspection_addr: nowhere\n").is_err());
    }

    #[test]
    fn red_hats_clair_takes_quays_tag_and_the_upstream_one_needs_its_version() {
        let spec = clair();
        let tags = |t: &[&str]| t.iter().map(|t| t.to_string()).collect::<Vec<_>>();
        let rhel = ImageRef::parse("registry.redhat.io/quay/clair-rhel8:v3.8.0").unwrap();
        assert_eq!(
            spec.images("clair", &rhel, &tags(&["v3.9.0", "v3.10.0"]), None)
                .unwrap(),
            [
                "registry.redhat.io/quay/clair-rhel8:v3.9.0",
                "registry.redhat.io/quay/clair-rhel8:v3.10.0"
            ]
        );
        let upstream = ImageRef::parse("quay.io/projectquay/clair:4.7.2").unwrap();
        let refused = spec
            .images("clair", &upstream, &tags(&["v3.9.0"]), None)
            .unwrap_err();
        assert!(refused.contains("--related clair=TAG"), "{refused}");
        assert_eq!(
            spec.images("clair", &upstream, &tags(&["v3.9.0"]), Some("4.8.0"))
                .unwrap(),
            ["quay.io/projectquay/clair:4.8.0"]
        );
        let hops = spec
            .images(
                "clair",
                &upstream,
                &tags(&["v3.9.0", "v3.10.0"]),
                Some("4.8.0"),
            )
            .unwrap_err();
        assert!(hops.contains("one hop at a time"), "{hops}");
    }
}
