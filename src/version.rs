//! Reading image tags as versions, and choosing which newer tag a container may move to.
//!
//! `semver` alone is too strict for tags (`16`, `2024.3` and `v0.7.1` are not semver, and it would
//! take `1.2.3-alpine` for a pre-release of `1.2.3`). Tags are read leniently here: an optional
//! `v`, one to four numbers, and a suffix that is either a pre-release (`-rc1`, `-beta.2`) or a
//! variant (`-alpine`). A container only moves among tags of its own *family*: the same `v`
//! prefix, the same number of components and the same variant.

use std::cmp::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Suffixes that mark a pre-release rather than a variant of a release.
const PRERELEASE_WORDS: &[&str] = &[
    "alpha",
    "beta",
    "rc",
    "pre",
    "preview",
    "dev",
    "snapshot",
    "nightly",
    "canary",
    "milestone",
    "m",
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagVersion {
    pub v_prefix: bool,
    pub numbers: Vec<u64>,
    /// `Some` for a pre-release: what follows the first `-`.
    pub prerelease: Option<String>,
    /// `Some` for a variant such as `alpine`: compared only with the same variant.
    pub variant: Option<String>,
}

impl TagVersion {
    pub fn parse(tag: &str) -> Option<TagVersion> {
        let (v_prefix, rest) = match tag.strip_prefix(['v', 'V']) {
            Some(rest) => (true, rest),
            None => (false, tag),
        };
        let (core, suffix) = match rest.split_once(['-', '+']) {
            Some((core, suffix)) => (core, Some(suffix)),
            None => (rest, None),
        };
        let numbers: Vec<u64> = core
            .split('.')
            .map(|p| p.parse().ok())
            .collect::<Option<_>>()?;
        if numbers.is_empty() || numbers.len() > 4 {
            return None;
        }
        let suffix = suffix
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase);
        let is_prerelease = suffix.as_deref().is_some_and(|s| {
            let word: String = s.chars().take_while(|c| c.is_ascii_alphabetic()).collect();
            PRERELEASE_WORDS.contains(&word.as_str())
        });
        let (prerelease, variant) = if is_prerelease {
            (suffix, None)
        } else {
            (None, suffix)
        };
        Some(TagVersion {
            v_prefix,
            numbers,
            prerelease,
            variant,
        })
    }

    /// Whether `other` is a tag this one may move to at all.
    pub fn same_family(&self, other: &TagVersion) -> bool {
        self.v_prefix == other.v_prefix
            && self.numbers.len() == other.numbers.len()
            && self.variant == other.variant
    }

    fn number(&self, i: usize) -> u64 {
        self.numbers.get(i).copied().unwrap_or(0)
    }

    /// The version as semver, for pins such as `^2024` or `<3`.
    pub fn as_semver(&self) -> semver::Version {
        let mut v = semver::Version::new(self.number(0), self.number(1), self.number(2));
        if let Some(pre) = &self.prerelease {
            v.pre = semver::Prerelease::new(
                &pre.replace(|c: char| !c.is_ascii_alphanumeric() && c != '.', "."),
            )
            .unwrap_or_default();
        }
        v
    }
}

impl PartialOrd for TagVersion {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for TagVersion {
    fn cmp(&self, other: &Self) -> Ordering {
        let width = self.numbers.len().max(other.numbers.len());
        (0..width)
            .map(|i| self.number(i).cmp(&other.number(i)))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| match (&self.prerelease, &other.prerelease) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Greater,
                (Some(_), None) => Ordering::Less,
                (Some(a), Some(b)) => natural_cmp(a, b),
            })
    }
}

/// `rc2` before `rc10`: digit runs compare as numbers.
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let chunks = |s: &str| -> Vec<(bool, String)> {
        let mut out: Vec<(bool, String)> = Vec::new();
        for c in s.chars() {
            let digit = c.is_ascii_digit();
            match out.last_mut() {
                Some((d, text)) if *d == digit => text.push(c),
                _ => out.push((digit, c.to_string())),
            }
        }
        out
    };
    for (x, y) in chunks(a).iter().zip(chunks(b).iter()) {
        let o = match (x, y) {
            ((true, x), (true, y)) => x
                .parse::<u64>()
                .unwrap_or(0)
                .cmp(&y.parse::<u64>().unwrap_or(0)),
            ((_, x), (_, y)) => x.cmp(y),
        };
        if o.is_ne() {
            return o;
        }
    }
    a.len().cmp(&b.len())
}

/// How far a container may move on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// Same tag, newer digest: for floating tags such as `latest` or `16`.
    Digest,
    /// Newer patch releases: `1.2.3` to `1.2.9`, never `1.3.0`.
    Patch,
    /// Newer minor releases within the major: `1.2.3` to `1.9.0`, never `2.0.0`.
    Minor,
    /// Any newer release.
    Major,
}

impl std::str::FromStr for Policy {
    type Err = String;

    fn from_str(s: &str) -> Result<Policy, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "digest" => Ok(Policy::Digest),
            "patch" => Ok(Policy::Patch),
            "minor" => Ok(Policy::Minor),
            "major" => Ok(Policy::Major),
            other => Err(format!(
                "unknown policy {other:?}: use digest, patch, minor or major"
            )),
        }
    }
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Digest => "digest",
            Policy::Patch => "patch",
            Policy::Minor => "minor",
            Policy::Major => "major",
        })
    }
}

/// Everything that decides a container's target and how a pass moves it, once its layers of
/// settings are merged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rules {
    pub policy: Policy,
    #[serde(serialize_with = "serialize_pin")]
    pub pin: Option<semver::VersionReq>,
    pub prerelease: bool,
    /// How long a version must have been published before a pass takes it (`min_age`, which
    /// `cooldown` names too): a release pulled back within days is never installed.
    #[serde(with = "humantime_secs")]
    pub min_age: Duration,
    /// A pass first rehearses the upgrade on a copy of the database (`cutover rehearse`) and
    /// holds the container back when the rehearsal fails.
    pub rehearse: bool,
}

fn serialize_pin<S: serde::Serializer>(
    pin: &Option<semver::VersionReq>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match pin {
        Some(req) => s.serialize_str(&req.to_string()),
        None => s.serialize_none(),
    }
}

mod humantime_secs {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

/// Why a tag is or is not a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidates {
    /// Allowed targets, newest first (the minimum age, which needs the registry, is checked later).
    pub allowed: Vec<String>,
    /// The newest version of the family, allowed or not.
    pub newest: Option<String>,
}

/// The tags a container running `current` may move to under `rules`, newest first.
pub fn candidates(current: &str, tags: &[String], rules: &Rules) -> Option<Candidates> {
    let now = TagVersion::parse(current)?;
    let mut family: Vec<(TagVersion, &String)> = tags
        .iter()
        .filter_map(|t| TagVersion::parse(t).map(|v| (v, t)))
        .filter(|(v, _)| now.same_family(v) && (rules.prerelease || v.prerelease.is_none()))
        .collect();
    family.sort_by(|a, b| b.0.cmp(&a.0));
    let newest = family.first().map(|(_, t)| (*t).clone());
    let allowed = family
        .iter()
        .filter(|(v, _)| *v > now && within_policy(&now, v, rules.policy))
        .filter(|(v, _)| rules.pin.as_ref().is_none_or(|pin| pin_matches(pin, v)))
        .map(|(_, t)| (*t).clone())
        .collect();
    Some(Candidates { allowed, newest })
}

fn pin_matches(pin: &semver::VersionReq, v: &TagVersion) -> bool {
    // semver excludes pre-releases from ranges unless the range names one; the caller already
    // decided whether pre-releases are wanted, so the pin is checked on the release numbers.
    let mut release = v.as_semver();
    release.pre = semver::Prerelease::EMPTY;
    pin.matches(&release)
}

fn within_policy(now: &TagVersion, v: &TagVersion, policy: Policy) -> bool {
    match policy {
        Policy::Digest => false,
        Policy::Major => true,
        Policy::Minor => v.number(0) == now.number(0),
        Policy::Patch => v.number(0) == now.number(0) && v.number(1) == now.number(1),
    }
}

#[cfg(test)]
mod tests;
