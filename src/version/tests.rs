use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::testing::{cases, mutated_text, said, seeds, text, ARBITRARY, MUTATED, ROUND_TRIP};

fn rules(policy: Policy) -> Rules {
    Rules {
        policy,
        pin: None,
        prerelease: false,
        min_age: Duration::ZERO,
        rehearse: false,
    }
}

fn tags(list: &str) -> Vec<String> {
    list.split_whitespace().map(str::to_string).collect()
}

const TAGS: &str = "1.2.3 1.2.4 1.3.0 2.0.0 2.0.0-rc1 2.1.0-rc1 latest 1.2.4-alpine";

#[test]
fn each_policy_chooses_its_target() {
    let t = tags(TAGS);
    let pick = |p| {
        candidates("1.2.3", &t, &rules(p))
            .unwrap()
            .allowed
            .first()
            .cloned()
    };
    assert_eq!(pick(Policy::Patch).as_deref(), Some("1.2.4"));
    assert_eq!(pick(Policy::Minor).as_deref(), Some("1.3.0"));
    assert_eq!(pick(Policy::Major).as_deref(), Some("2.0.0"));
    assert_eq!(pick(Policy::Digest), None, "digest never changes the tag");
    let c = candidates("1.2.3", &t, &rules(Policy::Patch)).unwrap();
    assert_eq!(
        c.newest.as_deref(),
        Some("2.0.0"),
        "newest overall, pre-releases excluded"
    );
    assert_eq!(
        candidates("2.0.0", &t, &rules(Policy::Major))
            .unwrap()
            .allowed,
        Vec::<String>::new()
    );
}

#[test]
fn prereleases_only_when_asked() {
    let t = tags(TAGS);
    let mut r = rules(Policy::Major);
    r.prerelease = true;
    let c = candidates("1.2.3", &t, &r).unwrap();
    assert_eq!(c.allowed, tags("2.1.0-rc1 2.0.0 2.0.0-rc1 1.3.0 1.2.4"));
    assert!(TagVersion::parse("2.0.0-rc1").unwrap() < TagVersion::parse("2.0.0").unwrap());
    assert!(TagVersion::parse("1.0.3-beta2").unwrap() < TagVersion::parse("1.0.3-beta10").unwrap());
}

#[test]
fn variants_stay_in_their_family() {
    let t = tags("1.2.3-alpine 1.2.4-alpine 1.2.5 1.2.9-alpine");
    let c = candidates("1.2.3-alpine", &t, &rules(Policy::Patch)).unwrap();
    assert_eq!(c.allowed, tags("1.2.9-alpine 1.2.4-alpine"));
    let plain = candidates("1.2.3", &t, &rules(Policy::Patch)).unwrap();
    assert_eq!(plain.allowed, tags("1.2.5"));
}

#[test]
fn v_prefixes_and_date_like_versions() {
    let t = tags("v0.7.1 v0.8.0 v1.0.2 v1.0.3-beta1 0.9.0");
    assert_eq!(
        candidates("v0.7.1", &t, &rules(Policy::Major))
            .unwrap()
            .allowed,
        tags("v1.0.2 v0.8.0")
    );
    let dates = tags("2024.3 2024.10 2025.1 2024.3.1");
    assert_eq!(
        candidates("2024.3", &dates, &rules(Policy::Minor))
            .unwrap()
            .allowed,
        tags("2024.10"),
        "2024.10 is after 2024.3"
    );
    let inedo = tags("24.0.5 24.0.12 25.0.1 25.0.13");
    assert_eq!(
        candidates("24.0.5", &inedo, &rules(Policy::Patch))
            .unwrap()
            .allowed,
        tags("24.0.12")
    );
    assert_eq!(
        candidates("24.0.5", &inedo, &rules(Policy::Major))
            .unwrap()
            .allowed[0],
        "25.0.13"
    );
}

#[test]
fn pins_bound_the_target() {
    let t = tags("2023.9 2024.1 2024.7 2025.2");
    let mut r = rules(Policy::Major);
    r.pin = Some("^2024".parse().unwrap());
    assert_eq!(
        candidates("2023.9", &t, &r).unwrap().allowed,
        tags("2024.7 2024.1")
    );
    let t = tags(TAGS);
    r.pin = Some("<2".parse().unwrap());
    assert_eq!(
        candidates("1.2.3", &t, &r).unwrap().allowed,
        tags("1.3.0 1.2.4")
    );
}

#[test]
fn tags_that_are_not_versions() {
    assert_eq!(TagVersion::parse("latest"), None);
    assert_eq!(TagVersion::parse("1.2.3.4.5"), None);
    assert_eq!(TagVersion::parse("v"), None);
    assert!(candidates("latest", &tags(TAGS), &rules(Policy::Major)).is_none());
    let v = TagVersion::parse("16").unwrap();
    assert_eq!(v.numbers, vec![16]);
    assert_eq!(
        candidates("16", &tags("16 17 16.3"), &rules(Policy::Major))
            .unwrap()
            .allowed,
        tags("17")
    );
}

#[test]
fn policies_parse_with_a_helpful_error() {
    assert_eq!("Minor".parse::<Policy>(), Ok(Policy::Minor));
    assert!("sometimes"
        .parse::<Policy>()
        .unwrap_err()
        .contains("digest, patch, minor or major"));
}

/// A tag as registries carry them, with the parts it is made of: an optional `v`, one to four
/// numbers, and a pre-release or a variant.
fn tag() -> impl Strategy<Value = (String, TagVersion)> {
    let prerelease = ("(alpha|beta|rc|dev|nightly)", "[0-9]{0,3}").prop_map(|(w, n)| w + &n);
    let suffix = prop_oneof![
        Just((None, None)),
        prerelease.prop_map(|p| (Some(p), None)),
        "(alpine|slim|bookworm|ubi[0-9])".prop_map(|v| (None, Some(v))),
    ];
    (
        any::<bool>(),
        proptest::collection::vec(any::<u64>(), 1..=4),
        suffix,
    )
        .prop_map(|(v_prefix, numbers, (prerelease, variant))| {
            let mut tag = if v_prefix {
                "v".to_string()
            } else {
                String::new()
            };
            let core: Vec<String> = numbers.iter().map(u64::to_string).collect();
            tag.push_str(&core.join("."));
            if let Some(suffix) = prerelease.as_ref().or(variant.as_ref()) {
                tag.push('-');
                tag.push_str(suffix);
            }
            let version = TagVersion {
                v_prefix,
                numbers,
                prerelease,
                variant,
            };
            (tag, version)
        })
}

/// A tag from a registry is a version or none, never a panic, and comparing it with the
/// running one (which `candidates` does with every tag of the repository) cannot panic
/// either; what `candidates` allows is newer and among the tags it was given.
fn read_as_version(current: &str, tag: &str) -> Result<(), TestCaseError> {
    if let Some(v) = TagVersion::parse(tag) {
        prop_assert!((1..=4).contains(&v.numbers.len()));
        let _ = v.as_semver();
    }
    let tags = vec![tag.to_string(), "1.2.3".to_string()];
    if let Some(c) = candidates(current, &tags, &rules(Policy::Major)) {
        let now = TagVersion::parse(current).unwrap();
        for allowed in &c.allowed {
            prop_assert!(tags.contains(allowed));
            prop_assert!(TagVersion::parse(allowed).unwrap() > now);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(ROUND_TRIP))]
    #[test]
    fn a_tag_reads_as_the_parts_it_is_written_with((tag, version) in tag()) {
        prop_assert_eq!(TagVersion::parse(&tag), Some(version));
    }

    #[test]
    fn a_policy_reads_back_as_it_is_written(
        policy in proptest::sample::select(vec![Policy::Digest, Policy::Patch, Policy::Minor, Policy::Major])
    ) {
        prop_assert_eq!(policy.to_string().parse::<Policy>(), Ok(policy));
    }
}

proptest! {
    #![proptest_config(cases(ARBITRARY))]
    #[test]
    fn any_tag_is_a_version_or_none(current in text(), tag in text()) {
        read_as_version(&current, &tag)?;
        read_as_version("1.2.3", &tag)?;
    }

    #[test]
    fn any_policy_word_is_a_policy_or_an_error_naming_the_four(word in text()) {
        if let Err(e) = word.parse::<Policy>() {
            said(&e)?;
            prop_assert!(e.contains("digest, patch, minor or major"), "{}", e);
        }
    }
}

proptest! {
    #![proptest_config(cases(MUTATED))]
    #[test]
    fn mistyped_tags_are_a_version_or_none(
        tag in mutated_text(seeds(&["1.2.3", "v0.7.1", "2024.3", "2.0.0-rc1", "1.2.4-alpine", "16"]))
    ) {
        read_as_version("1.2.3", &tag)?;
        read_as_version(&tag, "1.2.4")?;
    }
}
