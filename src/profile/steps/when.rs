//! `when:`, the bounds any step may take, and how it is read from within the step's own fields.

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use super::ApplyError;
use crate::version::TagVersion;

/// Bounds a step to some hops: `from` and `to` are version ranges (`<25`, `>=0.18`) of the hop's
/// source and target; `crossing` holds when the hop goes from below that version to it or above,
/// pre-releases counted as semver orders them (`0.18.0-0` is below every `0.18.0-beta1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub crossing: Option<String>,
}

impl When {
    pub fn is_always(&self) -> bool {
        *self == When::default()
    }

    /// Whether a hop from `from` to `to` (tags) is in bounds.
    pub fn holds(&self, from: &str, to: &str) -> Result<bool, ApplyError> {
        if self.is_always() {
            return Ok(true);
        }
        let version = |tag: &str| {
            TagVersion::parse(tag)
                .map(|v| v.as_semver())
                .ok_or_else(|| {
                    ApplyError::Bounds(format!(
                        "{tag} is not a version, so the profile's bounds cannot judge it"
                    ))
                })
        };
        let range = |text: &str| {
            semver::VersionReq::parse(text)
                .map_err(|e| ApplyError::Bounds(format!("{text:?}: {e}")))
        };
        let (from_v, to_v) = (version(from)?, version(to)?);
        if let Some(r) = &self.from {
            if !range(r)?.matches(&from_v) {
                return Ok(false);
            }
        }
        if let Some(r) = &self.to {
            if !range(r)?.matches(&to_v) {
                return Ok(false);
            }
        }
        if let Some(at) = &self.crossing {
            let at = crossing_version(at).map_err(ApplyError::Bounds)?;
            if !(from_v < at && at <= to_v) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        for r in [&self.from, &self.to].into_iter().flatten() {
            semver::VersionReq::parse(r).map_err(|e| format!("when: {r:?}: {e}"))?;
        }
        if let Some(at) = &self.crossing {
            crossing_version(at)?;
        }
        Ok(())
    }
}

/// A `crossing` bound: semver, so that `0.18.0-0` names the lowest pre-release of 0.18.0, or a
/// tag-like version (`v0.18`).
fn crossing_version(text: &str) -> Result<semver::Version, String> {
    semver::Version::parse(text.trim_start_matches(['v', 'V']))
        .ok()
        .or_else(|| TagVersion::parse(text).map(|v| v.as_semver()))
        .ok_or_else(|| format!("when: crossing {text:?} is not a version"))
}

/// A step's fields with `when` taken aside: the kind's own struct reads the rest, its unknown
/// fields still refused and every error still placed by the YAML reader (serde's `flatten`
/// would lose both).
pub(super) struct Aside<'w, D> {
    inner: D,
    when: &'w mut Option<When>,
}

impl<'w, D> Aside<'w, D> {
    pub(super) fn new(inner: D, when: &'w mut Option<When>) -> Self {
        Aside { inner, when }
    }
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Aside<'_, D> {
    type Error = D::Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, D::Error> {
        self.inner.deserialize_map(Fields {
            visitor,
            when: self.when,
        })
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, D::Error> {
        self.deserialize_any(visitor)
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
        ignored_any
    }
}

/// The visitor of the kind's struct, given the mapping without its `when`.
struct Fields<'w, V> {
    visitor: V,
    when: &'w mut Option<When>,
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Fields<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        self.visitor.expecting(f)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<V::Value, A::Error> {
        self.visitor.visit_map(Skipping {
            map,
            when: self.when,
        })
    }
}

struct Skipping<'w, A> {
    map: A,
    when: &'w mut Option<When>,
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Skipping<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        while let Some(key) = self.map.next_key::<String>()? {
            if key != "when" {
                let key: StringDeserializer<A::Error> = key.into_deserializer();
                return seed.deserialize(key).map(Some);
            }
            if self.when.is_some() {
                return Err(de::Error::duplicate_field("when"));
            }
            *self.when = Some(self.map.next_value()?);
        }
        Ok(None)
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}
