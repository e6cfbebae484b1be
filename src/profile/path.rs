//! The path a product's versions must take, and the hops it makes of one upgrade.

use serde::{Deserialize, Serialize};

use crate::version::TagVersion;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpgradePath {
    /// How many minor versions one hop may move within a major version (Quay: 1, only from the
    /// previous minor).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minors_per_hop: Option<u64>,
    /// Versions every upgrade that crosses them must stop at (Quay: 2.0.0).
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
) -> Result<Vec<String>, String> {
    let parse = |t: &str| {
        TagVersion::parse(t).ok_or_else(|| format!("{t} is not a version, so the upgrade path cannot be computed; give the hops with --via"))
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
    // Waypoints the upgrade crosses: reached by their exact version.
    for waypoint in &path.waypoints {
        let w = parse(waypoint)?;
        if from.numbers < w.numbers && w.numbers < to.numbers {
            let tag = family
                .iter()
                .find(|(v, _)| trimmed(&v.numbers) == trimmed(&w.numbers))
                .map(|(_, t)| (*t).clone());
            let tag = tag.ok_or_else(|| format!("{current} to {target} must stop at {waypoint}, which the registry does not have"))?;
            stops.push((w.numbers.clone(), tag));
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
            return Err(format!(
                "{current} to {target} moves at most {step} minor version(s) per hop, through {}, which the registry does not have",
                missing.join(", ")
            ));
        }
    }
    stops.sort();
    stops.dedup();
    Ok(stops.into_iter().map(|(_, tag)| tag).collect())
}

fn trimmed(numbers: &[u64]) -> Vec<u64> {
    let mut n = numbers.to_vec();
    while n.len() > 1 && n.last() == Some(&0) {
        n.pop();
    }
    n
}
