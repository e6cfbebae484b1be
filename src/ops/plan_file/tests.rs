use std::time::{Duration, SystemTime};

use super::*;
use crate::engine::successor::tests::fixture;
use crate::engine::successor::Predecessor;
use crate::health::HealthPolicy;
use crate::plan::build::{Migration, Target};
use crate::plan::{plan_upgrade, UpgradeOptions};
use crate::testing::Scratch;

/// The fixture container's upgrade to `demo:2`, with a migration when asked.
fn prepared(migrate: bool) -> (Plan, Container) {
    let (container, image) = fixture();
    let mut options = UpgradeOptions::new(
        Target::Image(ImageRef::parse("127.0.0.1:5000/demo:2@sha256:aa").unwrap()),
        HealthPolicy::new(Duration::from_secs(10), Duration::from_secs(120)),
    );
    if migrate {
        options.steps.migrate = Some(Migration {
            shown: None,
            env: Vec::new(),
            command: vec!["migrate".into(), "head".into()],
            entrypoint: None,
            timeout: Migration::DEFAULT_TIMEOUT,
            fails_if_output_has: Vec::new(),
        });
    }
    let old = Predecessor {
        inspect: &container,
        origin: &image,
    };
    (plan_upgrade(&[old], &options).unwrap(), container)
}

fn planned(migrate: bool) -> Planned {
    let (plan, container) = prepared(migrate);
    let asked = serde_json::json!({"names": ["web"]});
    Planned::of(
        "web",
        &plan,
        Vec::new(),
        vec![Identity::of(&container)],
        asked,
    )
}

fn sealed() -> (PlanFile, SystemTime) {
    let made = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    (
        PlanFile::seal(vec![planned(true)], made, DEFAULT_VALIDITY),
        made,
    )
}

#[test]
fn a_sealed_plan_reads_back_until_it_expires() {
    let (file, made) = sealed();
    assert_eq!(file.id.len(), 12);
    assert!(file.checksum.starts_with(&format!("sha256:{}", file.id)));
    let read = PlanFile::read(&file.text(), made + Duration::from_secs(3600)).unwrap();
    assert_eq!(read.checksum, file.checksum);
    assert_eq!(read.upgrades[0].steps, file.upgrades[0].steps);
    let late = made + DEFAULT_VALIDITY + Duration::from_secs(1);
    let expired = PlanFile::read(&file.text(), late).unwrap_err().to_string();
    assert!(expired.contains("expired at"), "{expired}");
}

#[test]
fn any_edit_is_refused() {
    let (file, made) = sealed();
    let text = file.text();
    let to = &file.upgrades[0].to;
    for (what, edited) in [
        (
            "target",
            text.replacen(to.as_str(), "127.0.0.1:5000/demo:3", 1),
        ),
        (
            "expiry",
            text.replacen("\"valid_until\": \"2027", "\"valid_until\": \"2037", 1),
        ),
        ("id", text.replacen(&file.id, "000000000000", 1)),
        ("step", text.replacen("migrate head", "migrate down", 1)),
    ] {
        assert_ne!(edited, text, "{what} was edited");
        let refused = PlanFile::read(&edited, made).unwrap_err().to_string();
        assert!(refused.contains("altered"), "{what}: {refused}");
    }
    assert!(PlanFile::read("{", made)
        .unwrap_err()
        .to_string()
        .contains("not a plan file"));
}

#[test]
fn an_added_field_is_kept_and_checked() {
    let (mut file, made) = sealed();
    file.more.insert(
        "release_notes".into(),
        serde_json::json!(["https://example.com/2"]),
    );
    file.reseal();
    let read = PlanFile::read(&file.text(), made).unwrap();
    assert_eq!(
        read.more["release_notes"],
        serde_json::json!(["https://example.com/2"])
    );
    let edited = file.text().replace("example.com/2", "example.com/3");
    assert!(PlanFile::read(&edited, made)
        .unwrap_err()
        .to_string()
        .contains("altered"));
}

#[test]
fn the_file_holds_no_environment_value() {
    let (file, _) = sealed();
    let (container, _) = fixture();
    let text = file.text();
    for entry in container.env() {
        let value = entry.split_once('=').map_or("", |(_, v)| v);
        if value.len() > 3 {
            assert!(!text.contains(value), "{entry} is in the plan file");
        }
    }
}

#[test]
fn containers_that_changed_are_told() {
    let (_, container) = prepared(false);
    let was = vec![Identity::of(&container)];
    assert!(changed(&was, &was).is_empty());
    let recreated = Identity::of(&container.patched(serde_json::json!({"Id": "f00d"})));
    assert!(changed(&was, &[recreated])[0].contains("was recreated"));
    let other = container.patched(serde_json::json!({"Image": "sha256:beef"}));
    assert!(changed(&was, &[Identity::of(&other)])[0].contains("runs another image"));
    let env = container.patched(serde_json::json!({"Config": {"Env": ["A=b"]}}));
    assert!(changed(&was, &[Identity::of(&env)])[0].contains("configuration changed"));
    assert!(changed(&was, &[])[0].contains("is gone"));
}

#[test]
fn a_plan_computed_again_differs_by_its_steps() {
    let with_migration = planned(true);
    let (same, _) = prepared(true);
    assert!(plan_differs(&with_migration, &same).is_empty());
    let (without, _) = prepared(false);
    let said = plan_differs(&with_migration, &without);
    assert!(
        said[0].starts_with("its steps differ from step"),
        "{said:?}"
    );
}

#[test]
fn a_database_copy_s_stamp_is_no_difference() {
    let copy =
        |stamp: &str| format!("copy the volume v of db into db__cutover_{stamp}_2 while it serves");
    assert_eq!(
        unstamped(&copy("20261207T194531")),
        unstamped(&copy("20261208T080000"))
    );
    assert_ne!(
        unstamped(&copy("20261207T194531")),
        unstamped("copy the volume v of db into db2__cutover_20261207T194531_2 while it serves")
    );
}

#[test]
fn the_downtime_runs_from_the_stop_until_serving() {
    let said = planned(true).downtime;
    assert!(said.starts_with("the service is down from `stop"), "{said}");
    assert!(said.contains("a migration among them"), "{said}");
}

#[test]
fn applied_plans_leave_the_waiting_list() {
    let scratch = Scratch::new("plans");
    let state = StateDir::open(scratch.path()).unwrap();
    let plans = PlanStore::open(&state).unwrap();
    let (file, made) = sealed();
    plans.keep(&file).unwrap();
    let waiting = plans.waiting(made).unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].plan.as_ref().unwrap().id, file.id);
    assert_eq!(plans.find(&file.id[..4]).unwrap(), waiting[0].path);
    assert!(plans.applied(&file.id).is_none());
    assert!(plans.approved(made).unwrap().is_empty());
    plans.approve(&file.id).unwrap();
    assert_eq!(plans.approved(made).unwrap()[0].path, waiting[0].path);
    plans.withdraw(&file.id).unwrap();
    assert!(plans.approved(made).unwrap().is_empty());
    plans.approve(&file.id).unwrap();
    plans.mark_applied(&file.id, "done").unwrap();
    assert!(plans.approved(made).unwrap().is_empty());
    assert!(plans.applied(&file.id).unwrap().contains("done"));
    assert!(plans.waiting(made).unwrap().is_empty());
    assert!(plans.find(&file.id).is_err());
}

#[test]
fn a_plan_rolls_from_its_canary_host_one_host_at_a_time() {
    let planned: Vec<String> = ["a/x", "b/x", "a/y", "c/x"].map(String::from).to_vec();
    let by_default = Roll::default();
    assert_eq!(by_default.order(&planned), [0, 2, 1, 3]);
    assert_eq!(by_default.first(&planned), "a");
    let canary = Roll {
        canary: Some("c".into()),
        failure_budget: 1,
    };
    assert_eq!(canary.order(&planned), [3, 0, 1, 2]);
    let unknown = Roll {
        canary: Some("z".into()),
        ..Roll::default()
    };
    assert_eq!(unknown.first(&planned), "a");
    assert!(canary.stops(true, false, 1).unwrap().contains("canary"));
    assert!(canary.stops(false, true, 0).unwrap().contains("attention"));
    assert_eq!(canary.stops(false, false, 1), None);
    assert!(canary.stops(false, false, 2).unwrap().contains("budget 1"));
    let one_host: Vec<String> = vec!["x".into(), "y".into()];
    assert_eq!(by_default.order(&one_host), [0, 1]);
    assert!(by_default.stops(true, false, 1).is_some());
}

#[test]
fn the_summary_tells_each_upgrade_with_its_release_notes() {
    let mut upgrade = planned(false);
    let link = "release notes of 2: https://example.com/releases/2 (profile demo)";
    upgrade.plan.notes.push(link.into());
    let file = PlanFile::seal(
        vec![upgrade, planned(true)],
        SystemTime::now(),
        DEFAULT_VALIDITY,
    );
    assert_eq!(file.summary.len(), 3, "{:?}", file.summary);
    assert!(file.summary[0].starts_with(&file.upgrades[0].container));
    assert_eq!(file.summary[1], format!("  {link}"));
    assert!(file.summary[2].starts_with(&file.upgrades[1].container));
    let told = file.message("here").lines.join("\n");
    assert!(told.contains(link), "{told}");
}
