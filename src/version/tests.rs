use std::time::Duration;

use super::*;

fn rules(policy: Policy) -> Rules {
    Rules {
        policy,
        pin: None,
        prerelease: false,
        cooldown: Duration::ZERO,
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
