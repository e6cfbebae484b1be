//! One container's settings, resolved once from every layer that may set them, weakest first:
//! cutover's defaults, the product profile, the config file (its own values, then its entry for
//! the container), the container's labels, the command line. Every command that starts
//! containers reads its health rules from here, so that a profile's or a config file's timeout
//! applies to `rollback`, `backup` and `restore` as it does to `upgrade`.

use std::collections::HashMap;

use crate::engine::Container;

use super::group::{choose_profile, gather_facts};
use crate::config::Config;
use crate::duration;
use crate::engine::facts::Facts;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::health::{HealthPolicy, HealthSettings};
use crate::profile::{Catalog, Choice, Loaded, Profile};

/// Labels a container may carry to set its own health timeout and settle time.
pub const LABEL_HEALTH_TIMEOUT: &str = "cutover.health_timeout";
pub const LABEL_SETTLE: &str = "cutover.settle";

/// What the operator gave a command, before any container is looked at.
#[derive(Debug, Clone)]
pub struct Given {
    /// The config file (`--config`, `CUTOVER_CONFIG`), or its defaults.
    pub config: Config,
    /// The command line's health flags.
    pub health: HealthSettings,
    /// `--profile`.
    pub profile: Choice,
}

impl Default for Given {
    fn default() -> Given {
        Given {
            config: Config::default(),
            health: HealthSettings::default(),
            profile: Choice::Auto,
        }
    }
}

/// A container's settings, every layer applied.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub health: HealthPolicy,
}

/// The layers over cutover's defaults for a container that follows `profile` (read with
/// `facts`), if any.
pub fn resolve(
    given: &Given,
    profile: Option<(&Profile, &Facts)>,
    c: &Container,
) -> Result<Settings> {
    resolve_named(given, profile, c.name(), &c.labels())
}

/// [`resolve`] for what the config file names `name` and carries `labels`: a container, or a
/// Swarm service.
pub fn resolve_named(
    given: &Given,
    profile: Option<(&Profile, &Facts)>,
    name: &str,
    labels: &std::collections::HashMap<String, String>,
) -> Result<Settings> {
    let mut health = HealthPolicy::default();
    if let Some((profile, facts)) = profile {
        health = profile.health(facts)?.over(health);
    }
    let config = &given.config;
    let entry = config
        .containers
        .get(name)
        .cloned()
        .flatten()
        .unwrap_or_default();
    // The file's `defaults` take the same keys as an entry: a duration given there holds for
    // every container the file does not give its own.
    let defaults = &config.defaults;
    let config = HealthSettings {
        timeout: (entry.health_timeout)
            .or(defaults.health_timeout)
            .or(config.health_timeout),
        settle: entry.settle.or(defaults.settle).or(config.settle),
        ..HealthSettings::default()
    };
    health = config.over(health);
    health = from_labels(labels)?.over(health);
    health = given.health.over(health);
    Ok(Settings { health })
}

/// [`resolve`] for a container whose profile the command has not chosen yet: chosen here as
/// `--profile` says; with what the profile reads of the container.
pub async fn of_container(
    engine: &dyn Engine,
    catalog: &Catalog,
    given: &Given,
    c: &Container,
) -> Result<(Option<Loaded>, Facts, Settings)> {
    let loaded = choose_profile(catalog, &given.profile, c)?.map(|(loaded, _)| loaded);
    let profile = loaded.as_ref().map(|l| &l.profile);
    let facts = gather_facts(engine, profile, c).await?;
    let settings = resolve(given, profile.map(|p| (p, &facts)), c)?;
    Ok((loaded, facts, settings))
}

fn from_labels(labels: &HashMap<String, String>) -> Result<HealthSettings> {
    let read = |label: &str| {
        labels
            .get(label)
            .map(|text| {
                duration::parse(text).map_err(|e| Error::Refused(format!("label {label}: {e}")))
            })
            .transpose()
    };
    Ok(HealthSettings {
        timeout: read(LABEL_HEALTH_TIMEOUT)?,
        settle: read(LABEL_SETTLE)?,
        ..HealthSettings::default()
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn minutes(m: u64) -> Option<Duration> {
        Some(Duration::from_secs(m * 60))
    }

    fn container(labels: &[(&str, &str)]) -> Container {
        let labels: HashMap<&str, &str> = labels.iter().copied().collect();
        Container::default()
            .patched(serde_json::json!({"Name": "/app", "Config": {"Labels": labels}}))
    }

    #[test]
    fn each_layer_beats_the_ones_below_and_sets_only_what_it_names() {
        let profile = Profile::parse(
            "name: p\ndescription: test\nmatch: [app]\nhealth: { port: 8080, path: /ready, timeout: 7m }\n",
            "p.yaml",
        )
        .unwrap();
        let facts = Facts::default();
        let timeout = |given: &Given, labels: &[(&str, &str)]| {
            let settings = resolve(given, Some((&profile, &facts)), &container(labels)).unwrap();
            (
                settings.health.timeout,
                settings.health.settle,
                settings.health.path,
            )
        };
        let mut given = Given::default();
        let defaults = HealthPolicy::default();
        assert_eq!(
            timeout(&given, &[]),
            (
                Duration::from_secs(420),
                defaults.settle,
                "/ready".to_string()
            ),
            "the profile over the defaults"
        );
        given.config.health_timeout = minutes(9);
        given.config.settle = minutes(1);
        assert_eq!(
            timeout(&given, &[]).0,
            Duration::from_secs(540),
            "the config file"
        );
        assert_eq!(timeout(&given, &[]).2, "/ready", "which names no check");
        given.config.defaults.health_timeout = Some(Duration::from_secs(555));
        assert_eq!(
            timeout(&given, &[]).0,
            Duration::from_secs(555),
            "the file's defaults"
        );
        let entry = crate::config::RuleLayer {
            health_timeout: Some(Duration::from_secs(570)),
            ..Default::default()
        };
        given.config.containers.insert("app".into(), Some(entry));
        assert_eq!(
            timeout(&given, &[]).0,
            Duration::from_secs(570),
            "its entry for the container"
        );
        assert_eq!(
            timeout(&given, &[]).1,
            Duration::from_secs(60),
            "the file's settle"
        );
        let labelled = [(LABEL_HEALTH_TIMEOUT, "10m")];
        assert_eq!(
            timeout(&given, &labelled).0,
            Duration::from_secs(600),
            "the label"
        );
        assert_eq!(timeout(&given, &labelled).1, Duration::from_secs(60));
        given.health.timeout = minutes(11);
        assert_eq!(
            timeout(&given, &labelled).0,
            Duration::from_secs(660),
            "the flag"
        );
    }

    #[test]
    fn a_label_that_is_no_duration_is_refused_naming_the_label() {
        let c = container(&[(LABEL_SETTLE, "soon")]);
        let refused = resolve(&Given::default(), None, &c)
            .unwrap_err()
            .to_string();
        assert!(
            refused.contains("label cutover.settle") && refused.contains("\"soon\""),
            "{refused}"
        );
    }
}
