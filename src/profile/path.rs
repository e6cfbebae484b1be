//! The path a product's versions must take, and the hops it makes of one upgrade.

use serde::{Deserialize, Serialize};

use super::ApplyError;
use crate::version::TagVersion;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradePath {
    /// How many minor versions one hop may move within a major version (Quay: 1, only from the
    /// previous minor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minors_per_hop: Option<u64>,
    /// Versions every upgrade that crosses them must stop at: `3.0.5` exactly, or `2.9` for
    /// the newest release of that series the registry has.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waypoints: Vec<String>,
}

impl UpgradePath {
    pub(super) fn check(&self) -> Result<(), String> {
        if self.minors_per_hop == Some(0) {
            return Err("upgrade_path: minors_per_hop must be at least 1".into());
        }
        for w in &self.waypoints {
            TagVersion::parse(w)
                .ok_or_else(|| format!("upgrade_path: waypoint {w:?} is not a version"))?;
        }
        Ok(())
    }
}

/// The intermediate tags an upgrade from `current` to `target` must go through, chosen from the
/// registry's `tags` (the newest release of each minor it must visit, of the same tag family), or
/// why it cannot: the path it would need, and what the registry lacks.
pub fn hops(
    current: &str,
    target: &str,
    tags: &[String],
    path: &UpgradePath,
) -> Result<Vec<String>, ApplyError> {
    let parse = |t: &str| {
        TagVersion::parse(t).ok_or_else(|| ApplyError::Bounds(format!("{t} is not a version, so the upgrade path cannot be computed; give the hops with --via")))
    };
    let (from, to) = (parse(current)?, parse(target)?);
    if to <= from {
        return Ok(Vec::new());
    }
    let family: Vec<(TagVersion, &String)> = tags
        .iter()
        .filter_map(|t| TagVersion::parse(t).map(|v| (v, t)))
        .filter(|(v, _)| v.same_family(&from) && v.prerelease.is_none())
        .collect();
    let mut stops: Vec<(Vec<u64>, String)> = Vec::new();
    // Waypoints the upgrade crosses (it comes from below their series and goes above it): each
    // reached by the newest release of its series.
    for waypoint in &path.waypoints {
        let w = parse(waypoint)?;
        let series = |v: &TagVersion| -> Vec<u64> {
            (0..w.numbers.len())
                .map(|i| v.numbers.get(i).copied().unwrap_or(0))
                .collect()
        };
        if series(&from) < w.numbers && w.numbers < series(&to) {
            let newest = family
                .iter()
                .filter(|(v, _)| series(v) == w.numbers)
                .max_by(|a, b| a.0.cmp(&b.0));
            let (v, tag) = newest.ok_or_else(|| ApplyError::NoPath(format!("{current} to {target} must stop at {waypoint}, which the registry does not have")))?;
            stops.push((v.numbers.clone(), (*tag).clone()));
        }
    }
    if let Some(step) = path.minors_per_hop {
        let minor = |v: &TagVersion| {
            (
                v.numbers.first().copied().unwrap_or(0),
                v.numbers.get(1).copied().unwrap_or(0),
            )
        };
        let (mut major, mut at) = minor(&from);
        let (to_major, to_minor) = minor(&to);
        let mut missing = Vec::new();
        loop {
            // Across a major version, the next hop is the first minor of the next major.
            let next = if major < to_major {
                (major + 1, 0)
            } else {
                (major, at + step)
            };
            if next >= (to_major, to_minor) {
                break;
            }
            let newest = family
                .iter()
                .filter(|(v, _)| minor(v) == next)
                .max_by(|a, b| a.0.cmp(&b.0));
            match newest {
                Some((v, tag)) => stops.push((v.numbers.clone(), (*tag).clone())),
                None => missing.push(format!("{}.{}.x", next.0, next.1)),
            }
            (major, at) = next;
        }
        if !missing.is_empty() {
            return Err(ApplyError::NoPath(format!(
                "{current} to {target} moves at most {step} minor version(s) per hop, through {}, which the registry does not have",
                missing.join(", ")
            )));
        }
    }
    stops.sort();
    stops.dedup();
    Ok(stops.into_iter().map(|(_, tag)| tag).collect())
}
