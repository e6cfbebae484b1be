//! The `auto` configuration file and the layers that decide each container's update rules.
//!
//! Rules are merged from layers, weakest first: cutover's built-in default, then the product
//! profile, the config file's `defaults`, its entry for the container, the container's own
//! `cutover.*` labels, and last the command line. Each layer sets only what it names;
//! `ops::settings` gathers the layers, with the health settings they carry too.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::engine::endpoint::{self, Endpoint};
use crate::notify::{Level, Notifier};
use crate::version::{Policy, Rules, TagVersion};

pub const LABEL_ENABLE: &str = "cutover.enable";
pub const LABEL_POLICY: &str = "cutover.policy";
pub const LABEL_PIN: &str = "cutover.pin";
pub const LABEL_PRERELEASE: &str = "cutover.prerelease";
pub const LABEL_MIN_AGE: &str = "cutover.min_age";
/// `min_age`'s earlier name, still read with the same meaning.
pub const LABEL_COOLDOWN: &str = "cutover.cooldown";
pub const LABEL_DEPENDS_ON: &str = "cutover.depends_on";
pub const LABEL_REHEARSE: &str = "cutover.rehearse";

/// A config file that cannot be used: bad input, by its path, saying what to write.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{path} is not a valid cutover config: {why}")]
    Parse { path: String, why: Invalid },
    /// A host of the fleet whose engine its entry does not tell.
    #[error("host {name}: {why}")]
    Host {
        name: String,
        why: endpoint::EndpointError,
    },
}

/// What is wrong in a config file's text.
#[derive(Debug, thiserror::Error)]
pub enum Invalid {
    /// Not YAML, or not the file's fields (serde's message names the field and the line).
    #[error("{0}")]
    Yaml(String),
    /// A layer of update rules whose values do not read (see [`RuleLayer::apply`]).
    #[error("{0}")]
    Rules(String),
    #[error(transparent)]
    Window(#[from] crate::schedule::ScheduleError),
    #[error("hosts: {0:?}: a host's name has no slash (its containers are HOST/NAME)")]
    HostName(String),
    #[error(
        "hosts: {0}: give it a context or a host (ssh://USER@HOST, tcp://HOST:PORT), one of them"
    )]
    HostEngine(String),
    #[error("containers: {name}: there is no host {host} under hosts")]
    NoHost { name: String, host: String },
}

crate::error::category! { ConfigError => bad_input }

/// One layer of rules; every field optional.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RuleLayer {
    pub policy: Option<String>,
    pub pin: Option<String>,
    pub prerelease: Option<bool>,
    /// How long a version must have been published before a pass takes it (`3d`).
    pub min_age: Option<String>,
    /// `min_age`'s earlier name: one setting, so a layer gives one or the other.
    pub cooldown: Option<String>,
    /// Rehearse each upgrade first (`cutover rehearse`); a failed rehearsal holds it back.
    pub rehearse: Option<bool>,
    /// A container's entry may set its own health settings, over the file's (see
    /// `ops::settings`).
    #[serde(default, deserialize_with = "duration")]
    pub health_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub settle: Option<Duration>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub defaults: RuleLayer,
    /// Containers opted in by name, each with its own rules (`{}` for the defaults).
    #[serde(default)]
    pub containers: BTreeMap<String, Option<RuleLayer>>,
    /// Registries reached over plain http although not on loopback.
    #[serde(default)]
    pub insecure_registries: Vec<String>,
    /// Where a message goes after each pass and each changing command: notification URLs
    /// (README "Notifications"), read with the file so that a malformed one stops the command
    /// before anything runs. `--notify` adds to them.
    #[serde(default)]
    pub notify: Vec<Notifier>,
    /// The one URL earlier versions POSTed each pass to: a `notify` URL that takes every pass.
    webhook: Option<Notifier>,
    /// Upgrades start only inside this daily window, local time, e.g. `02:00-05:00`.
    pub window: Option<String>,
    /// `required`: `auto` writes a plan for a person to approve (`cutover approve ID`)
    /// instead of moving anything.
    #[serde(default)]
    pub approval: Approval,
    /// The config file's layer of the health settings (see `ops::settings`).
    #[serde(default, deserialize_with = "duration")]
    pub health_timeout: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    pub settle: Option<Duration>,
    /// A fleet: hosts by name, each reached as the docker CLI reaches it; their containers are
    /// `HOST/NAME`, in `containers` as on the command line.
    #[serde(default)]
    pub hosts: BTreeMap<String, HostEntry>,
}

/// Whether `auto`'s upgrades wait for a person.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Approval {
    /// A pass upgrades what it found.
    #[default]
    None,
    /// A pass writes its upgrades as a plan, which waits for `cutover approve`.
    Required,
}

/// One host of the fleet: a docker context, or an engine's address (`ssh://...`, `tcp://...`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct HostEntry {
    pub context: Option<String>,
    pub host: Option<String>,
    /// How long a run on this host waits in all for its engine while it does not answer
    /// (`engine_wait: 5m`), over `CUTOVER_ENGINE_WAIT` and the default.
    #[serde(default, deserialize_with = "duration")]
    pub engine_wait: Option<Duration>,
    /// Free labels (a site, a role), told with the host in `check --json`.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl HostEntry {
    /// The engine of the host `name`, as the docker CLI would reach it given its `--context` or
    /// `--host`; the error names the host.
    pub fn endpoint(&self, name: &str) -> Result<Endpoint, ConfigError> {
        let given = endpoint::EngineGiven {
            host: self.host.clone(),
            context: self.context.clone(),
            wait: self.engine_wait,
        };
        endpoint::resolve(&given, &endpoint::Sources::process()).map_err(|why| ConfigError::Host {
            name: name.to_string(),
            why,
        })
    }
}

/// A duration as people write it, read when the file is: a typo fails before anything is
/// looked at.
fn duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    let text = String::deserialize(d)?;
    crate::duration::parse(&text)
        .map(Some)
        .map_err(serde::de::Error::custom)
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text).map_err(|why| ConfigError::Parse {
            path: path.display().to_string(),
            why,
        })
    }

    pub fn parse(text: &str) -> Result<Config, Invalid> {
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config =
            yaml_serde::from_str(text).map_err(|e| Invalid::Yaml(e.to_string()))?;
        // Values are checked now, so that a typo fails the run before anything is looked at.
        for layer in std::iter::once(&config.defaults).chain(config.containers.values().flatten()) {
            layer.validate().map_err(Invalid::Rules)?;
        }
        if let Some(window) = &config.window {
            crate::schedule::Window::parse(window)?;
        }
        for (name, host) in &config.hosts {
            if name.is_empty() || name.contains('/') {
                return Err(Invalid::HostName(name.clone()));
            }
            if host.context.is_some() == host.host.is_some() {
                return Err(Invalid::HostEngine(name.clone()));
            }
        }
        for name in config.containers.keys() {
            if let Some((host, _)) = name.split_once('/') {
                if !config.hosts.contains_key(host) {
                    return Err(Invalid::NoHost {
                        name: name.clone(),
                        host: host.to_string(),
                    });
                }
            }
        }
        Ok(config)
    }

    /// The file as one host of the fleet sees it: its `HOST/NAME` entries under their bare
    /// names, over the entries every host shares; other hosts' entries left out.
    pub fn for_host(&self, host: &str) -> Config {
        let mut containers: BTreeMap<String, Option<RuleLayer>> = self
            .containers
            .iter()
            .filter(|(name, _)| !name.contains('/'))
            .map(|(name, rules)| (name.clone(), rules.clone()))
            .collect();
        for (name, rules) in &self.containers {
            if let Some(bare) = name.strip_prefix(host).and_then(|n| n.strip_prefix('/')) {
                containers.insert(bare.to_string(), rules.clone());
            }
        }
        Config {
            containers,
            ..self.clone()
        }
    }

    /// Where messages go: `notify`, then `webhook` (which takes every message, as it always did).
    pub fn notifiers(&self) -> Vec<Notifier> {
        let webhook = self.webhook.clone().map(|w| Notifier {
            level: Level::All,
            ..w
        });
        self.notify.iter().cloned().chain(webhook).collect()
    }

    pub fn lists(&self, name: &str) -> bool {
        self.containers.contains_key(name)
    }
}

/// Where a label's value goes in a layer.
type Setter = fn(&mut RuleLayer, &str);

/// The labels that set update rules, each with where its value goes.
const RULE_LABELS: [(&str, Setter); 6] = [
    (LABEL_POLICY, |l, v| l.policy = Some(v.into())),
    (LABEL_PIN, |l, v| l.pin = Some(v.into())),
    (LABEL_PRERELEASE, |l, v| l.prerelease = Some(yes(v))),
    (LABEL_MIN_AGE, |l, v| l.min_age = Some(v.into())),
    (LABEL_COOLDOWN, |l, v| l.cooldown = Some(v.into())),
    (LABEL_REHEARSE, |l, v| l.rehearse = Some(yes(v))),
];

impl RuleLayer {
    /// The `cutover.*` labels of a container; a value that is no rule is refused naming its
    /// label, which is where the operator has to correct it.
    pub fn from_labels(labels: &HashMap<String, String>) -> Result<RuleLayer, String> {
        let mut layer = RuleLayer::default();
        for (label, set) in RULE_LABELS {
            if let Some(value) = labels.get(label) {
                let mut alone = RuleLayer::default();
                set(&mut alone, value);
                alone
                    .validate()
                    .map_err(|e| format!("label {label}: {e}"))?;
                set(&mut layer, value);
            }
        }
        Ok(layer)
    }

    fn validate(&self) -> Result<(), String> {
        self.apply(Rules {
            policy: Policy::Patch,
            pin: None,
            prerelease: false,
            min_age: Duration::ZERO,
            rehearse: false,
        })
        .map(|_| ())
    }

    /// These settings on top of `rules`.
    fn apply(&self, mut rules: Rules) -> Result<Rules, String> {
        if let Some(policy) = &self.policy {
            rules.policy = policy.parse()?;
        }
        if let Some(pin) = &self.pin {
            rules.pin =
                Some(pin.parse().map_err(|e| {
                    format!("pin {pin:?}: {e} (write pins like ^2024, <3 or ~1.2)")
                })?);
        }
        if let Some(prerelease) = self.prerelease {
            rules.prerelease = prerelease;
        }
        let min_age = match (&self.min_age, &self.cooldown) {
            (Some(_), Some(_)) => {
                return Err("min_age and cooldown are one setting (cooldown is its earlier name): give only min_age".into())
            }
            (given, earlier) => given.as_ref().or(earlier.as_ref()),
        };
        if let Some(min_age) = min_age {
            rules.min_age = crate::duration::parse(min_age).map_err(|e| e.to_string())?;
        }
        if let Some(rehearse) = self.rehearse {
            rules.rehearse = rehearse;
        }
        Ok(rules)
    }
}

/// A boolean label as people write one.
fn yes(value: &str) -> bool {
    matches!(value, "true" | "1" | "yes")
}

/// cutover's own default: follow patch releases of a versioned tag, and the digest of any
/// other tag (`latest`, `stable`).
pub fn builtin_rules(tag: &str) -> Rules {
    let policy = if TagVersion::parse(tag).is_some() {
        Policy::Patch
    } else {
        Policy::Digest
    };
    Rules {
        policy,
        pin: None,
        prerelease: false,
        min_age: Duration::ZERO,
        rehearse: false,
    }
}

/// The rules of one container: every layer applied over the built-in default, weakest first.
pub fn resolve(tag: &str, layers: &[&RuleLayer]) -> Result<Rules, String> {
    layers
        .iter()
        .try_fold(builtin_rules(tag), |rules, layer| layer.apply(rules))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated, said, seeds, text, Scratch, ARBITRARY, MUTATED};

    /// A config file as operators write one (notify URLs left out: reading one registers its
    /// tokens as secrets for the whole test run; their own properties try them).
    const EXAMPLES: &[&str] = &[
        "defaults: {policy: minor, cooldown: 1d}\ncontainers:\n  web: {policy: major, pin: '<3', rehearse: true}\n  db:\n",
        "hosts:\n  quay-1: {context: quay-1}\n  quay-2: {host: 'ssh://deploy@quay-2', labels: {site: b}}\ncontainers:\n  quay: {policy: minor}\n  quay-2/quay: {policy: major, settle: 30s}\n  quay-2/clair:\n",
        "window: '02:00-05:00'\napproval: required\nhealth_timeout: 2m\nsettle: 10s\ninsecure_registries: [registry.lan:5000]\ndefaults:\n  prerelease: false\n  health_timeout: 90s\n",
    ];

    /// The config file is read, or refused by its path and a message.
    fn loaded_or_refused_naming_it(text: &[u8]) -> Result<(), TestCaseError> {
        let scratch = Scratch::new("config");
        let path = scratch.path().join("config.yaml");
        std::fs::write(&path, text).unwrap();
        if let Err(e) = Config::load(&path) {
            let e = e.to_string();
            said(&e)?;
            prop_assert!(e.contains(&path.display().to_string()), "{}", e);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_text_is_a_config_or_an_error(text in text()) {
            if let Err(e) = Config::parse(&text) {
                said(&e)?;
            }
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn a_mistyped_config_file_is_read_or_refused_naming_it(text in mutated(seeds(EXAMPLES))) {
            loaded_or_refused_naming_it(&text)?;
        }
    }

    #[test]
    fn labels_beat_the_container_entry_which_beats_the_defaults() {
        let config = Config::parse(
            "defaults: {policy: minor, cooldown: 1d}\ncontainers:\n  web: {policy: major, pin: '<3', rehearse: true}\n  db:\n",
        )
        .unwrap();
        assert!(config.lists("db") && config.lists("web") && !config.lists("cache"));
        let web = config.containers["web"].clone().unwrap();
        let labels =
            RuleLayer::from_labels(&HashMap::from([(LABEL_PIN.to_string(), "^2".to_string())]))
                .unwrap();
        let rules = resolve("1.2.3", &[&config.defaults, &web, &labels]).unwrap();
        assert_eq!(rules.policy, Policy::Major);
        assert_eq!(rules.pin.unwrap().to_string(), "^2");
        assert_eq!(rules.min_age, Duration::from_secs(86400));
        assert!(rules.rehearse, "its entry asks for a rehearsal");
        let declined = RuleLayer::from_labels(&HashMap::from([(
            LABEL_REHEARSE.to_string(),
            "false".into(),
        )]))
        .unwrap();
        assert!(!resolve("1.2.3", &[&web, &declined]).unwrap().rehearse);
        assert!(!resolve("1.2.3", &[&config.defaults]).unwrap().rehearse);
        assert_eq!(resolve("latest", &[]).unwrap().policy, Policy::Digest);
        assert_eq!(resolve("1.2", &[]).unwrap().policy, Policy::Patch);
    }

    #[test]
    fn approval_is_required_or_not() {
        assert_eq!(
            Config::parse("settle: 1s").unwrap().approval,
            Approval::None
        );
        let required = Config::parse("approval: required").unwrap();
        assert_eq!(required.approval, Approval::Required);
        let e = Config::parse("approval: maybe").unwrap_err().to_string();
        assert!(e.contains("required"), "{e}");
    }

    #[test]
    fn min_age_and_its_earlier_name_cooldown_are_one_setting() {
        let label = |key: &str| {
            RuleLayer::from_labels(&HashMap::from([(key.to_string(), "3d".to_string())])).unwrap()
        };
        for layer in [label(LABEL_MIN_AGE), label(LABEL_COOLDOWN)] {
            let rules = resolve("1.2.3", &[&layer]).unwrap();
            assert_eq!(rules.min_age, Duration::from_secs(3 * 86400));
        }
        let config =
            Config::parse("defaults: {min_age: 2d}\ncontainers:\n  web: {cooldown: 1h}\n").unwrap();
        let web = config.containers["web"].clone().unwrap();
        let rules = resolve("1.2.3", &[&config.defaults, &web]).unwrap();
        assert_eq!(
            rules.min_age,
            Duration::from_secs(3600),
            "the stronger layer's, by either name"
        );
        let flag = RuleLayer {
            min_age: Some("5m".into()),
            ..RuleLayer::default()
        };
        let rules = resolve("1.2.3", &[&label(LABEL_MIN_AGE), &flag]).unwrap();
        assert_eq!(
            rules.min_age,
            Duration::from_secs(300),
            "the command line over the labels"
        );
        let both = Config::parse("defaults: {min_age: 2d, cooldown: 1d}")
            .unwrap_err()
            .to_string();
        assert!(both.contains("one setting"), "{both}");
    }

    #[test]
    fn a_fleet_s_entries_apply_to_their_host() {
        let config = Config::parse(
            "hosts:\n  quay-1: {context: quay-1}\n  quay-2: {host: 'ssh://deploy@quay-2', labels: {site: b}}\ncontainers:\n  quay: {policy: minor}\n  quay-2/quay: {policy: major}\n  quay-2/clair:\n",
        )
        .unwrap();
        let one = config.for_host("quay-1");
        assert_eq!(one.containers.keys().collect::<Vec<_>>(), ["quay"]);
        assert_eq!(
            one.containers["quay"].as_ref().unwrap().policy.as_deref(),
            Some("minor")
        );
        let two = config.for_host("quay-2");
        assert_eq!(two.containers.keys().collect::<Vec<_>>(), ["clair", "quay"]);
        assert_eq!(
            two.containers["quay"].as_ref().unwrap().policy.as_deref(),
            Some("major")
        );
        assert_eq!(config.hosts["quay-2"].labels["site"], "b");
        for (text, says) in [
            ("hosts: {a: {}}", "a context or a host"),
            ("hosts: {a: {context: x, host: 'tcp://h:1'}}", "one of them"),
            ("hosts: {'a/b': {context: x}}", "has no slash"),
            ("containers: {nowhere/web: {}}", "there is no host nowhere"),
            ("hosts: {a: {contxt: x}}", "contxt"),
        ] {
            let e = Config::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text}: {e}");
        }
    }

    #[test]
    fn mistakes_are_reported_with_what_to_write() {
        assert!(Config::parse("defaults: {policy: often}")
            .unwrap_err()
            .to_string()
            .contains("digest, patch, minor or major"));
        assert!(Config::parse("defaults: {cooldown: forever}")
            .unwrap_err()
            .to_string()
            .contains("3d"));
        assert!(Config::parse("defaults: {pin: 'abc'}")
            .unwrap_err()
            .to_string()
            .contains("^2024"));
        assert!(Config::parse("health_timeout: soon")
            .unwrap_err()
            .to_string()
            .contains("\"soon\" is not a duration"));
        assert!(Config::parse("containers: {web: {settle: later}}")
            .unwrap_err()
            .to_string()
            .contains("\"later\" is not a duration"));
        assert!(Config::parse("webhok: x")
            .unwrap_err()
            .to_string()
            .contains("webhok"));
        assert!(Config::parse("window: '25:00-26:00'").is_err());
        assert!(Config::parse("").is_ok());
    }

    /// A config file that cannot be read is bad input (exit 2) whose message, as the command
    /// prints it with its causes, names the file and the reason once.
    #[test]
    fn an_unreadable_config_file_is_bad_input_told_once() {
        let scratch = Scratch::new("config-missing");
        let path = scratch.path().join("none.yaml");
        let e = crate::Error::from(Config::load(&path).unwrap_err());
        assert!(matches!(e, crate::Error::BadInput(_)), "{e:?}");
        assert_eq!(e.exit(), crate::error::Exit::NothingChanged);
        let told = format!("{:#}", anyhow::Error::from(e));
        assert!(
            told.starts_with(&format!("cannot read {}: ", path.display())),
            "{told}"
        );
        assert_eq!(told.matches("No such file").count(), 1, "{told}");
    }
}
