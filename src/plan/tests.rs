use std::time::Duration;

use super::*;
use crate::recreate::tests::fixture;

fn health() -> HealthPolicy {
    HealthPolicy { url: None, expect_status: None, settle: Duration::from_secs(10), timeout: Duration::from_secs(120) }
}

fn upgrade(keep_old: bool) -> Plan {
    let (container, image) = fixture();
    let old = Predecessor { inspect: &container, image: &image, vanished_volumes_from: &[] };
    let target = ImageRef::parse("127.0.0.1:5000/demo:2").unwrap();
    plan_upgrade(&old, "fx-web", &UpgradeOptions { target, keep_old, health: health() })
}

#[test]
fn upgrade_plan_snapshot() {
    insta::assert_json_snapshot!(upgrade(false));
}

#[test]
fn nothing_goes_down_before_the_successor_is_created_and_verified() {
    let names: Vec<&str> = upgrade(false).steps.iter().map(Step::name).collect();
    assert_eq!(
        names,
        ["pull", "create", "verify", "stop", "rename", "rename", "start", "await_healthy", "remove"]
    );
}

#[test]
fn keep_old_keeps_the_old_container() {
    let plan = upgrade(true);
    assert!(!plan.steps.iter().any(|s| matches!(s, Step::Remove { .. })));
}

#[test]
fn every_step_that_changes_the_host_has_its_undo() {
    let plan = upgrade(false);
    let undos: Vec<Option<String>> = plan.steps.iter().map(|s| s.undo().map(|u| u.describe())).collect();
    assert_eq!(
        undos,
        [
            None,
            Some("remove the new container".into()),
            None,
            Some("start the old container".into()),
            Some("rename fx-web-old to fx-web".into()),
            Some("rename fx-web to fx-web-new".into()),
            Some("stop the new container".into()),
            None,
            None,
        ]
    );
    assert!(plan.steps.last().unwrap().is_cleanup(), "removing the old one never rolls back a healthy service");
}

#[test]
fn rollback_plan_swaps_the_kept_old_container_back() {
    let (current, _) = fixture();
    let mut previous = current.clone();
    previous.id = Some("previous-id".into());
    previous.config.as_mut().unwrap().image = Some("127.0.0.1:5000/demo:0".into());
    let plan = plan_rollback("fx-web", &current, &previous, health());
    let described: Vec<String> = plan.steps.iter().map(Step::describe).collect();
    assert_eq!(described[..4], [
        "stop the old container (grace period 5s)".to_string(),
        "rename fx-web to fx-web-failed".into(),
        "rename fx-web-old to fx-web".into(),
        "start the new container".into(),
    ]);
    assert_eq!(plan.incoming_id.as_deref(), Some("previous-id"));
    assert_eq!(plan.image_to, "127.0.0.1:5000/demo:0");
}

#[test]
fn a_journaled_plan_reads_back_without_the_create_request() {
    let plan = upgrade(false);
    let text = serde_json::to_string(&plan).unwrap();
    assert!(!text.contains("fixture-password"), "the create request is never journaled in clear");
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back.steps.len(), plan.steps.len());
    assert_eq!(back.steps[3].undo().unwrap().describe(), "start the old container");
}
