//! A workload's settings (its health rules and its update rules), resolved once from every
//! layer that may set them into one [`Settings`], weakest first:
//! 1. cutover's defaults (the default health policy; the update rules its tag calls for,
//!    `config::builtin_rules`),
//! 2. the product profile (its health check; its `policy`),
//! 3. the config file's own values (`health_timeout`, `settle`),
//! 4. the file's `defaults`,
//! 5. the file's entry for the container or service,
//! 6. the workload's labels (`cutover.health_timeout`, `cutover.settle`, `cutover.policy`,
//!    `cutover.pin`, ...),
//! 7. the command line (the health flags, `--min-age`).
//!
//! Each layer sets only what it names. Every command that starts containers reads its health
//! rules from here, so that a profile's or a config file's timeout applies to `rollback`,
//! `backup` and `restore` as it does to `upgrade`; `check` and `auto` read the update rules
//! from the same resolution.

use std::collections::HashMap;

use crate::engine::{Container, Service};

use super::group::{choose_profile, gather_facts};
use crate::config::{self, Config, RuleLayer};
use crate::duration;
use crate::engine::facts::Facts;
use crate::engine::reference::ImageRef;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::health::{HealthPolicy, HealthSettings};
use crate::profile::{Catalog, Choice, Loaded, Profile};
use crate::version::Rules;

/// Labels a container may carry to set its own health timeout and settle time.
pub const LABEL_HEALTH_TIMEOUT: &str = "cutover.health_timeout";
pub const LABEL_SETTLE: &str = "cutover.settle";

/// What the operator gave a command, before any container is looked at: every layer of the
/// settings that is not the workload's own. The binary builds it in one place, from the
/// command line and the config file it names.
#[derive(Debug, Clone)]
pub struct Given {
    /// The config file (`--config`, `CUTOVER_CONFIG`), or its defaults.
    pub config: Config,
    /// The command line's health flags.
    pub health: HealthSettings,
    /// The command line's update rules (`--min-age`), over every workload's labels: what the
    /// one who runs the command asks of this run.
    pub rules: RuleLayer,
    /// `--profile`.
    pub profile: Choice,
}

impl Default for Given {
    fn default() -> Given {
        Given {
            config: Config::default(),
            health: HealthSettings::default(),
            rules: RuleLayer::default(),
            profile: Choice::Auto,
        }
    }
}

impl Given {
    /// What was given, as one host of the config file's fleet sees it (see
    /// [`Config::for_host`]).
    pub fn for_host(&self, host: &str) -> Given {
        Given {
            config: self.config.for_host(host),
            ..self.clone()
        }
    }
}

/// What the settings of a workload (a container, a Swarm service) depend on of it.
pub struct Subject<'a> {
    /// What the config file names it: a container's name, or a Swarm service's.
    pub name: &'a str,
    pub labels: &'a HashMap<String, String>,
    /// Its image as written, whose tag decides the default update policy.
    pub image: &'a str,
    /// The product profile it follows, with what the profile read of it.
    pub profile: Option<(&'a Profile, &'a Facts)>,
}

/// A workload's settings, every layer applied. Each setting keeps its own verdict, so that a
/// command is refused only over a setting it uses: a malformed `cutover.policy` label holds
/// back that container's updates in `check` and `auto` but stops no `upgrade` of it, and a
/// malformed `cutover.settle` stops an upgrade but leaves `check` to report what it may move
/// to.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    health: std::result::Result<HealthPolicy, String>,
    rules: std::result::Result<Rules, String>,
}

impl Settings {
    /// How a container started with these settings is judged healthy.
    pub fn health(&self) -> Result<HealthPolicy> {
        self.health.clone().map_err(Error::Refused)
    }

    /// Which versions the workload may move to.
    pub fn rules(&self) -> std::result::Result<Rules, String> {
        self.rules.clone()
    }
}

/// One layer of the settings: what it names of the health rules, and of the update rules;
/// either may be malformed.
struct Layer {
    health: std::result::Result<HealthSettings, String>,
    rules: std::result::Result<RuleLayer, String>,
}

impl Layer {
    /// A layer of the config file: what it says of health as well as of the rules.
    fn of_file(layer: &RuleLayer) -> Layer {
        Layer {
            health: Ok(HealthSettings {
                timeout: layer.health_timeout,
                settle: layer.settle,
                ..HealthSettings::default()
            }),
            rules: Ok(layer.clone()),
        }
    }
}

/// The settings of `workload`: every layer (see the module's doc) over cutover's defaults.
pub fn resolve_workload(given: &Given, workload: &Subject) -> Settings {
    let config = &given.config;
    let profile = match workload.profile {
        Some((profile, facts)) => Layer {
            health: profile.health(facts).map_err(|e| e.to_string()),
            rules: Ok(RuleLayer {
                policy: profile.policy.clone(),
                ..RuleLayer::default()
            }),
        },
        // A layer that names nothing.
        None => Layer::of_file(&RuleLayer::default()),
    };
    let file = Layer::of_file(&RuleLayer {
        health_timeout: config.health_timeout,
        settle: config.settle,
        ..RuleLayer::default()
    });
    let entry = (config.containers.get(workload.name).cloned().flatten()).unwrap_or_default();
    let labels = Layer {
        health: health_labels(workload.labels),
        rules: RuleLayer::from_labels(workload.labels),
    };
    let flags = Layer {
        health: Ok(given.health.clone()),
        rules: Ok(given.rules.clone()),
    };
    let layers = [
        profile,
        file,
        Layer::of_file(&config.defaults),
        Layer::of_file(&entry),
        labels,
        flags,
    ];
    let health = layers
        .iter()
        .try_fold(HealthPolicy::default(), |policy, layer| {
            Ok(layer.health.as_ref().map_err(Clone::clone)?.over(policy))
        });
    let rules = layers
        .iter()
        .map(|layer| layer.rules.as_ref().map_err(Clone::clone))
        .collect::<std::result::Result<Vec<&RuleLayer>, String>>()
        .and_then(|rules| config::resolve(&tag(workload.image), &rules));
    Settings { health, rules }
}

/// The tag an image as written runs: `latest` when it names none, nothing when it is no
/// reference.
fn tag(image: &str) -> String {
    ImageRef::parse(image)
        .map(|i| i.tag.unwrap_or_else(|| "latest".into()))
        .unwrap_or_default()
}

/// [`resolve_workload`] for a container that follows `profile` (read with `facts`), if any.
pub fn resolve(given: &Given, profile: Option<(&Profile, &Facts)>, c: &Container) -> Settings {
    resolve_workload(
        given,
        &Subject {
            name: c.name(),
            labels: &c.labels(),
            image: c.image(),
            profile,
        },
    )
}

/// [`resolve_workload`] for a Swarm service read without a profile.
pub fn resolve_service(given: &Given, service: &Service) -> Settings {
    resolve_workload(
        given,
        &Subject {
            name: service.name(),
            labels: &service.labels(),
            image: &service.image(),
            profile: None,
        },
    )
}

/// The health rules of a container whose profile the command has not chosen yet: chosen here
/// as `--profile` says; with what the profile reads of the container.
pub async fn of_container(
    engine: &dyn Engine,
    catalog: &Catalog,
    given: &Given,
    c: &Container,
) -> Result<(Option<Loaded>, Facts, HealthPolicy)> {
    let loaded = choose_profile(catalog, &given.profile, c)?.map(|(loaded, _)| loaded);
    let profile = loaded.as_ref().map(|l| &l.profile);
    let facts = gather_facts(engine, profile, c).await?;
    let health = resolve(given, profile.map(|p| (p, &facts)), c).health()?;
    Ok((loaded, facts, health))
}

/// The health settings of a workload's labels; a value that is no duration is refused naming
/// its label.
fn health_labels(labels: &HashMap<String, String>) -> std::result::Result<HealthSettings, String> {
    let read = |label: &str| {
        labels
            .get(label)
            .map(|text| duration::parse(text).map_err(|e| format!("label {label}: {e}")))
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
    use crate::version::Policy;

    fn minutes(m: u64) -> Option<Duration> {
        Some(Duration::from_secs(m * 60))
    }

    fn days(d: u64) -> Duration {
        Duration::from_secs(d * 86400)
    }

    fn container(image: &str, labels: &[(&str, &str)]) -> Container {
        let labels: HashMap<&str, &str> = labels.iter().copied().collect();
        Container::default().patched(
            serde_json::json!({"Name": "/app", "Config": {"Image": image, "Labels": labels}}),
        )
    }

    #[test]
    fn each_layer_beats_the_ones_below_and_sets_only_what_it_names() {
        let profile = Profile::parse(
            "name: p\ndescription: test\nmatch: [app]\npolicy: minor\nhealth: { port: 8080, path: /ready, timeout: 7m }\n",
            "p.yaml",
        )
        .unwrap();
        let facts = Facts::default();
        // What each layer may set: the health timeout, the settle time, the check's path; the
        // policy, the minimum age.
        let settings = |given: &Given, labels: &[(&str, &str)]| {
            let settings = resolve(
                given,
                Some((&profile, &facts)),
                &container("app:1.2.3", labels),
            );
            let health = settings.health().unwrap();
            let rules = settings.rules().unwrap();
            (
                health.timeout,
                health.settle,
                health.path,
                rules.policy,
                rules.min_age,
            )
        };
        let without_profile = |image: &str| {
            let settings = resolve(&Given::default(), None, &container(image, &[]));
            (settings.health().unwrap(), settings.rules().unwrap().policy)
        };
        let defaults = HealthPolicy::default();
        assert_eq!(
            without_profile("app:1.2.3"),
            (defaults.clone(), Policy::Patch),
            "cutover's defaults: patch releases of a versioned tag"
        );
        assert_eq!(
            without_profile("app:latest").1,
            Policy::Digest,
            "and the digest of any other"
        );
        let mut given = Given::default();
        assert_eq!(
            settings(&given, &[]),
            (
                Duration::from_secs(420),
                defaults.settle,
                "/ready".to_string(),
                Policy::Minor,
                Duration::ZERO
            ),
            "the profile over the defaults"
        );
        given.config.health_timeout = minutes(9);
        given.config.settle = minutes(1);
        let file = settings(&given, &[]);
        assert_eq!(file.0, Duration::from_secs(540), "the config file");
        assert_eq!(file.2, "/ready", "which names no check");
        assert_eq!(file.3, Policy::Minor, "nor a rule of its own");
        given.config.defaults = RuleLayer {
            health_timeout: Some(Duration::from_secs(555)),
            policy: Some("major".into()),
            min_age: Some("1d".into()),
            ..RuleLayer::default()
        };
        let file_defaults = settings(&given, &[]);
        assert_eq!(
            (file_defaults.0, file_defaults.3, file_defaults.4),
            (Duration::from_secs(555), Policy::Major, days(1)),
            "the file's defaults"
        );
        let entry = RuleLayer {
            health_timeout: Some(Duration::from_secs(570)),
            min_age: Some("2d".into()),
            ..RuleLayer::default()
        };
        given.config.containers.insert("app".into(), Some(entry));
        let entry = settings(&given, &[]);
        assert_eq!(
            (entry.0, entry.3, entry.4),
            (Duration::from_secs(570), Policy::Major, days(2)),
            "its entry for the container, which leaves the policy to the defaults"
        );
        assert_eq!(entry.1, Duration::from_secs(60), "the file's settle");
        let labelled = [
            (LABEL_HEALTH_TIMEOUT, "10m"),
            (config::LABEL_POLICY, "patch"),
            (config::LABEL_MIN_AGE, "3d"),
        ];
        let labels = settings(&given, &labelled);
        assert_eq!(
            (labels.0, labels.1, labels.3, labels.4),
            (
                Duration::from_secs(600),
                Duration::from_secs(60),
                Policy::Patch,
                days(3)
            ),
            "the labels"
        );
        given.health.timeout = minutes(11);
        given.rules.min_age = Some("4d".into());
        let flags = settings(&given, &labelled);
        assert_eq!(
            (flags.0, flags.3, flags.4),
            (Duration::from_secs(660), Policy::Patch, days(4)),
            "the flags"
        );
    }

    #[test]
    fn a_bad_label_is_refused_naming_it_and_only_where_its_setting_is_used() {
        let health = resolve(
            &Given::default(),
            None,
            &container("app:1", &[(LABEL_SETTLE, "soon")]),
        );
        let refused = health.health().unwrap_err().to_string();
        assert!(
            refused.contains("label cutover.settle") && refused.contains("\"soon\""),
            "{refused}"
        );
        assert!(health.rules().is_ok(), "the rules name no settle time");
        for (label, value) in [
            (config::LABEL_POLICY, "often"),
            (config::LABEL_PIN, "abc"),
            (config::LABEL_MIN_AGE, "forever"),
            (config::LABEL_COOLDOWN, "later"),
        ] {
            let rules = resolve(
                &Given::default(),
                None,
                &container("app:1", &[(label, value)]),
            );
            let refused = rules.rules().unwrap_err();
            assert!(
                refused.contains(&format!("label {label}")) && refused.contains(value),
                "{refused}"
            );
            assert!(rules.health().is_ok(), "health takes no {label}");
        }
    }
}
