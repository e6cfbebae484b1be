//! A profile's steps around the swap. Each kind is a module holding its spec, as a profile file
//! writes it, and how it plans itself into a hop ([`Plans`]); `when:` bounds any of them
//! ([`ProfileStep`]). Adding a kind is its module and one line in the [`kinds!`] list: the plan builder
//! places what it adds ([`crate::plan::part::Part`]) without knowing its name.

mod call;
mod carry_file;
mod env_copy;
mod exec;
mod migrate;
mod note;
mod refuse;
mod require_env;
mod when;

use std::time::Duration;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use call::CallSpec;
pub use carry_file::CarryFileSpec;
pub use env_copy::EnvCopy;
pub use exec::ExecSpec;
pub use migrate::Migrate;
pub use note::Note;
pub use refuse::Refuse;
pub use require_env::RequireEnv;
pub use when::When;

use super::ApplyError;
use crate::engine::facts::Facts;
use crate::plan::build::StageOptions;

/// What a step kind knows of itself.
pub trait Plans {
    /// What serde cannot check (a duration, a template, a path): the key of the value at fault
    /// and why. `secrets` are the variables the profile's database is read from that hold a
    /// secret, which no command line may carry.
    fn check(&self, _secrets: &[String]) -> Result<(), (&'static str, String)> {
        Ok(())
    }

    /// The files of the container the step reads (dotenv files, configuration files its
    /// command's conditions test), read before the hop is planned.
    fn files(&self) -> Vec<String> {
        Vec::new()
    }

    /// What the step adds to one hop for a container with these facts; a step that finds the
    /// container unfit refuses the hop ([`HopSteps::refuse`]).
    fn plan(&self, facts: &Facts, hop: &mut HopSteps) -> Result<(), ApplyError>;
}

/// What a profile adds to one hop: the plan's options, and why the hop may not run at all.
#[derive(Debug, Clone, Default)]
pub struct HopSteps {
    pub stage: StageOptions,
    pub refusal: Option<String>,
}

impl HopSteps {
    /// Refuses the hop before any downtime; the first reason found is the one told.
    pub fn refuse(&mut self, why: String) {
        self.refusal.get_or_insert(why);
    }
}

/// A duration a step's profile may give, or its default.
fn timeout_or(timeout: &Option<String>, default: Duration) -> Result<Duration, ApplyError> {
    match timeout {
        Some(t) => super::parse_duration("timeout", t),
        None => Ok(default),
    }
}

/// Checks a step's optional duration, under its key.
fn check_timeout(timeout: &Option<String>) -> Result<(), (&'static str, String)> {
    timeout_or(timeout, Duration::ZERO)
        .map(drop)
        .map_err(|e| ("timeout", e.to_string()))
}

/// Declares the kinds once: the enum of specs, their names, their parsing by name.
macro_rules! kinds {
    ($($name:literal => $variant:ident($kind:ident)),* $(,)?) => {
        /// A step's spec, of one of the kinds.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Spec {
            $($variant($kind),)*
        }

        const NAMES: &[&str] = &[$($name),*];

        impl Spec {
            /// The key the step is written under.
            pub fn name(&self) -> &'static str {
                match self {
                    $(Spec::$variant(_) => $name,)*
                }
            }

            pub fn plans(&self) -> &dyn Plans {
                match self {
                    $(Spec::$variant(s) => s,)*
                }
            }

            fn parse<'de, D: Deserializer<'de>>(name: &str, d: D) -> Result<Spec, D::Error> {
                match name {
                    $($name => $kind::deserialize(d).map(Spec::$variant),)*
                    other => Err(de::Error::unknown_variant(other, NAMES)),
                }
            }

            fn body(&self) -> Result<yaml_serde::Value, yaml_serde::Error> {
                match self {
                    $(Spec::$variant(s) => yaml_serde::to_value(s),)*
                }
            }
        }
    };
}

kinds! {
    "migrate" => Migrate(Migrate),
    "carry_file" => CarryFile(CarryFileSpec),
    "env_copy" => EnvCopy(EnvCopy),
    "require_env" => RequireEnv(RequireEnv),
    "refuse" => Refuse(Refuse),
    "note" => Note(Note),
    "call" => Call(CallSpec),
    "exec" => Exec(ExecSpec),
}

/// A step as a profile writes it, `- KIND: { ...fields, when: {...} }`: its spec, and the hops
/// it is bounded to, which every kind takes alike.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileStep {
    pub spec: Spec,
    pub when: When,
}

impl ProfileStep {
    /// What this step adds to a hop from `from` to `to` (tags), if it is within its bounds.
    pub fn plan(
        &self,
        from: &str,
        to: &str,
        facts: &Facts,
        hop: &mut HopSteps,
    ) -> Result<(), ApplyError> {
        match self.when.holds(from, to)? {
            true => self.spec.plans().plan(facts, hop),
            false => Ok(()),
        }
    }

    /// What serde cannot check, with the key under the step that leads to the value at fault;
    /// the message names the kind.
    pub fn check(&self, secrets: &[String]) -> Result<(), (&'static str, String)> {
        self.when
            .check()
            .map_err(|e| ("when", e))
            .and_then(|()| self.spec.plans().check(secrets))
            .map_err(|(key, e)| (key, format!("{}: {e}", self.spec.name())))
    }
}

impl<'de> Deserialize<'de> for ProfileStep {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<ProfileStep, D::Error> {
        d.deserialize_map(StepVisitor)
    }
}

struct StepVisitor;

impl<'de> Visitor<'de> for StepVisitor {
    type Value = ProfileStep;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(f, "a step: one of {} with its fields", NAMES.join(", "))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProfileStep, A::Error> {
        let Some(name) = map.next_key::<String>()? else {
            return Err(de::Error::invalid_length(0, &self));
        };
        let step = map.next_value_seed(Named(&name))?;
        if let Some(other) = map.next_key::<String>()? {
            return Err(de::Error::custom(format!(
                "a step is of one kind: {name} or {other}, not both (start another item with `- `)"
            )));
        }
        Ok(step)
    }
}

/// The fields of a step of kind `.0`, `when` taken aside for [`ProfileStep`].
struct Named<'a>(&'a str);

impl<'de> DeserializeSeed<'de> for Named<'_> {
    type Value = ProfileStep;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<ProfileStep, D::Error> {
        let mut bound = None;
        let spec = Spec::parse(self.0, when::Aside::new(d, &mut bound))?;
        Ok(ProfileStep {
            spec,
            when: bound.unwrap_or_default(),
        })
    }
}

impl Serialize for ProfileStep {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut body = self.spec.body().map_err(serde::ser::Error::custom)?;
        if let (false, Some(fields)) = (self.when.is_always(), body.as_mapping_mut()) {
            let when = yaml_serde::to_value(&self.when).map_err(serde::ser::Error::custom)?;
            fields.insert("when".into(), when);
        }
        let mut map = s.serialize_map(Some(1))?;
        map.serialize_entry(self.spec.name(), &body)?;
        map.end()
    }
}

/// What a profile's steps add to the hop from `from` to `to` for a container with these facts.
pub fn for_hop(
    steps: &[ProfileStep],
    from: &str,
    to: &str,
    facts: &Facts,
) -> Result<HopSteps, ApplyError> {
    let mut hop = HopSteps::default();
    for step in steps {
        step.plan(from, to, facts, &mut hop)?;
    }
    Ok(hop)
}
