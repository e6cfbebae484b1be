use std::time::Duration;

use super::build::{CarriedPath, Migration, Target};
use super::*;
use crate::engine::reference::ImageRef;
use crate::engine::successor::tests::fixture;
use crate::engine::successor::{self, Predecessor};
use crate::health::HealthPolicy;

fn health() -> HealthPolicy {
    HealthPolicy::new(Duration::from_secs(10), Duration::from_secs(120))
}

fn options() -> UpgradeOptions {
    UpgradeOptions::new(
        Target::Image(ImageRef::parse("127.0.0.1:5000/demo:2").unwrap()),
        health(),
    )
}

fn upgrade(opts: &UpgradeOptions) -> Plan {
    let (container, image) = fixture();
    let old = Predecessor {
        inspect: &container,
        origin: &image,
    };
    plan_upgrade(&[old], opts).unwrap()
}

fn names(plan: &Plan) -> Vec<&'static str> {
    plan.stages
        .iter()
        .flat_map(|s| s.steps.iter().map(Step::name))
        .collect()
}

fn described(plan: &Plan) -> Vec<String> {
    plan.stages
        .iter()
        .flat_map(|s| s.steps.iter().map(|step| step.describe(plan)))
        .collect()
}

#[test]
fn upgrade_plan_snapshot() {
    insta::assert_json_snapshot!(upgrade(&options()));
}

#[test]
fn nothing_goes_down_before_the_successor_is_created_and_verified() {
    assert_eq!(
        names(&upgrade(&options())),
        [
            "pull",
            "create",
            "verify",
            "stop",
            "rename",
            "rename",
            "start",
            "await_healthy",
            "remove"
        ]
    );
}

#[test]
fn keep_old_keeps_the_old_container() {
    let mut opts = options();
    opts.keep_old = true;
    let plan = upgrade(&opts);
    assert!(!names(&plan).contains(&"remove"));
    assert!(!plan.removes_old());
}

#[test]
fn every_step_that_changes_the_host_has_its_undo() {
    let plan = upgrade(&options());
    let undos: Vec<Option<String>> = plan.stages[0]
        .steps
        .iter()
        .map(|s| s.action().undo_describe(&plan))
        .collect();
    assert_eq!(
        undos,
        [
            None,
            Some("remove fx-web-new".into()),
            None,
            Some("start fx-web (demo:1)".into()),
            Some("rename fx-web-old to fx-web".into()),
            Some("rename fx-web to fx-web-new".into()),
            Some("stop fx-web (demo:2)".into()),
            None,
            None,
        ]
    );
    assert!(
        plan.stages[0].steps.last().unwrap().traits().cleanup,
        "removing the old one never rolls back a healthy service"
    );
    let downs: Vec<bool> = plan.stages[0]
        .steps
        .iter()
        .map(|s| s.traits().starts_downtime)
        .collect();
    assert_eq!(
        downs.iter().filter(|d| **d).count(),
        1,
        "only the stop of the old container takes the service down"
    );
}

#[test]
fn a_migration_runs_from_the_new_image_while_the_service_is_stopped() {
    let mut opts = options();
    opts.steps.migrate = Some(Migration {
        shown: None,
        env: Vec::new(),
        command: vec!["migrate".into(), "head".into()],
        entrypoint: None,
        timeout: Duration::from_secs(1800),
        fails_if_output_has: vec![],
    });
    opts.steps.exec_before = vec![vec!["sync".into()]];
    opts.steps.exec_after = vec![vec!["check".into(), "--all".into()]];
    opts.steps.carry = vec![CarriedPath {
        path: "/app/.env".into(),
        optional: false,
        by_profile: false,
    }];
    let plan = upgrade(&opts);
    assert_eq!(
        names(&plan),
        [
            "pull",
            "create",
            "verify",
            "exec",
            "carry_file",
            "stop",
            "migrate",
            "rename",
            "rename",
            "start",
            "await_healthy",
            "exec",
            "remove"
        ]
    );
    let text = described(&plan);
    assert_eq!(text[6], "run `migrate head` in a one-shot container fx-web-migrate from demo:2 with the configuration of fx-web (demo:1) (must exit 0 within 30m)");
    assert_eq!(
        text[3],
        "run `sync` inside fx-web (demo:1) (must exit 0 within 5m)"
    );
    assert_eq!(
        text[4],
        "copy /app/.env from fx-web (demo:1) into fx-web (demo:2)"
    );
    assert!(plan.stages[0].steps[6].traits().writes_data);
}

#[test]
fn the_one_shot_keeps_the_configuration_but_serves_nothing() {
    let mut opts = options();
    opts.steps.migrate = Some(Migration {
        shown: None,
        env: Vec::new(),
        command: vec!["migrate".into()],
        entrypoint: Some(vec!["/bin/tool".into()]),
        timeout: Duration::from_secs(60),
        fails_if_output_has: vec![],
    });
    let plan = upgrade(&opts);
    let Step::OneShot(one_shot) = &plan.stages[0].steps[4] else {
        panic!("{:?}", names(&plan))
    };
    let Step::Create(create) = &plan.stages[0].steps[1] else {
        panic!()
    };
    // As the plan shows them (secrets masked alike), in the engine's own field names.
    let shot = successor::masked(&one_shot.spec);
    let made = successor::masked(&create.spec);
    let body = &shot["create"];
    assert_eq!(body["Cmd"], serde_json::json!(["migrate"]));
    assert_eq!(body["Entrypoint"], serde_json::json!(["/bin/tool"]));
    assert_eq!(
        body["Env"], made["create"]["Env"],
        "the old container's environment"
    );
    assert_eq!(body["User"], made["create"]["User"]);
    let hc = &body["HostConfig"];
    assert!(hc["PortBindings"].is_null(), "no published ports");
    assert!(hc["RestartPolicy"].is_null());
    assert_eq!(
        hc["VolumesFrom"], made["create"]["HostConfig"]["VolumesFrom"],
        "the old container's volumes"
    );
    let endpoints = body["NetworkingConfig"]["EndpointsConfig"]
        .as_object()
        .unwrap();
    assert!(
        endpoints.values().all(|e| e["Aliases"].is_null()),
        "answers to none of the service's names"
    );
    assert!(
        shot["connect"].get("fx-back").is_some(),
        "on every network the service is on"
    );
}

#[test]
fn hops_are_stages_each_a_full_upgrade_with_every_image_pulled_first() {
    let mut opts = options();
    opts.target = Target::Image(ImageRef::parse("127.0.0.1:5000/demo:3").unwrap());
    opts.via = vec!["2".into()];
    let plan = upgrade(&opts);
    assert_eq!(plan.stages.len(), 2);
    assert_eq!(
        (plan.stages[0].to.as_str(), plan.stages[1].to.as_str()),
        ("127.0.0.1:5000/demo:2", "127.0.0.1:5000/demo:3")
    );
    let pulls: Vec<String> = plan.stages[0]
        .steps
        .iter()
        .filter(|s| s.name() == "pull")
        .map(|s| s.describe(&plan))
        .collect();
    assert_eq!(
        pulls,
        ["pull 127.0.0.1:5000/demo:2", "pull 127.0.0.1:5000/demo:3"],
        "no hop waits for a pull"
    );
    assert!(plan.stages[1].steps.iter().all(|s| s.name() != "pull"));
    assert_eq!(plan.label(&Slot::new("fx-web", 1)), "fx-web (demo:2)");
    let Step::Create(second) = &plan.stages[1].steps[0] else {
        panic!()
    };
    assert_eq!(
        second.source,
        Slot::new("fx-web", 1),
        "the second hop replaces the first hop's container"
    );
    assert_eq!(second.spec.image(), "127.0.0.1:5000/demo:3");
    opts.via = vec!["3".into()];
    assert!(plan_upgrade(
        &[Predecessor {
            inspect: &fixture().0,
            origin: &fixture().1,
        }],
        &opts
    )
    .unwrap_err()
    .to_string()
    .contains("repeats a hop"));
}

/// A pin fixes the hop and the target of its `REPOSITORY:TAG` to its digest, and the related
/// product's image of its own; an image no pin names moves by its tag.
#[test]
fn pinned_images_run_their_digest_at_every_hop() {
    let (containers, image) = pair("fx-scanner");
    let members = predecessors(&containers, &image);
    let digest = |n: char| format!("sha256:{}", n.to_string().repeat(64));
    let mut opts = options();
    opts.target = Target::Tag("3".into());
    opts.via = vec!["2".into()];
    opts.related.insert(
        "fx-scanner".into(),
        build::RelatedMove {
            images: vec!["scan:4.8".into(), "scan:4.9".into()],
            ready: health(),
        },
    );
    let pins = [
        format!("127.0.0.1:5000/demo:2@{}", digest('a')),
        format!("scan:4.9@{}", digest('b')),
        format!("other:2@{}", digest('c')),
    ];
    opts.pins = pins.iter().map(|p| ImageRef::parse(p).unwrap()).collect();
    let plan = plan_upgrade(&members, &opts).unwrap();
    let image =
        |member: &str, generation: u32| plan.slots[&Slot::new(member, generation)].image.clone();
    assert_eq!(image("fx-web", 1), pins[0]);
    assert_eq!(plan.stages[0].to, pins[0]);
    assert_eq!(image("fx-web", 2), "127.0.0.1:5000/demo:3");
    assert_eq!(image("fx-scanner", 1), "scan:4.8");
    assert_eq!(image("fx-scanner", 2), pins[1]);
    assert!(
        described(&plan).contains(&format!("pull {}", pins[0])),
        "{:#?}",
        described(&plan)
    );
}

/// Where the first step described as starting with `prefix` is.
fn first(text: &[String], prefix: &str) -> usize {
    text.iter()
        .position(|t| t.starts_with(prefix))
        .unwrap_or_else(|| panic!("{prefix}: {text:#?}"))
}

/// The fixture's `fx-web` and a member `name` of the same image and configuration.
fn pair(name: &str) -> ([crate::engine::Container; 2], crate::engine::Origin) {
    let (web, image) = fixture();
    let other =
        web.patched(serde_json::json!({"Name": format!("/{name}"), "Id": format!("{name}-id")}));
    ([web, other], image)
}

fn predecessors<'a>(
    containers: &'a [crate::engine::Container],
    origin: &'a crate::engine::Origin,
) -> Vec<Predecessor<'a>> {
    containers
        .iter()
        .map(|inspect| Predecessor { inspect, origin })
        .collect()
}

#[test]
fn a_group_is_created_before_any_stop_and_started_in_reverse() {
    let (containers, image) = pair("fx-worker");
    let plan = plan_upgrade(&predecessors(&containers, &image), &options()).unwrap();
    assert_eq!(plan.members, ["fx-web", "fx-worker"]);
    let text = described(&plan);
    let position = |prefix: &str| first(&text, prefix);
    assert!(
        position("check that fx-worker") < position("stop fx-web"),
        "every member is verified before any stop"
    );
    assert!(
        position("stop fx-web") < position("stop fx-worker"),
        "stopped in the order given"
    );
    assert!(
        position("start fx-worker") < position("start fx-web"),
        "started in reverse order"
    );
    assert!(
        position("wait until fx-worker") < position("start fx-web"),
        "each awaited healthy before the next starts"
    );
    assert!(
        plan.carried.get("fx-worker").is_some(),
        "each member's carried configuration is shown"
    );
}

#[test]
fn a_related_product_moves_to_its_own_images_and_is_ready_before_the_product_starts() {
    let (containers, image) = pair("fx-scanner");
    let members = predecessors(&containers, &image);
    let mut opts = options();
    opts.target = Target::Image(ImageRef::parse("127.0.0.1:5000/demo:3").unwrap());
    opts.via = vec!["2".into()];
    opts.start_order = build::StartOrder::NamedFirst;
    opts.steps.migrate = Some(Migration {
        command: vec!["migrate".into()],
        shown: None,
        env: vec![],
        entrypoint: None,
        timeout: Duration::from_secs(60),
        fails_if_output_has: vec![],
    });
    opts.steps.expect_version = Some(steps::VersionSource::Url("/version".into()));
    let ready = HealthPolicy {
        port: Some(8089),
        path: "/readyz".into(),
        expect_status: Some(200),
        ..health()
    };
    opts.related.insert(
        "fx-scanner".into(),
        build::RelatedMove {
            images: vec!["scan:4.8".into(), "scan:4.9".into()],
            ready: ready.clone(),
        },
    );
    let plan = plan_upgrade(&members, &opts).unwrap();
    assert_eq!(plan.members, ["fx-web", "fx-scanner"]);
    assert_eq!(
        plan.label(&Slot::new("fx-scanner", 2)),
        "fx-scanner (scan:4.9)"
    );
    assert_eq!(plan.label(&Slot::new("fx-web", 2)), "fx-web (demo:3)");
    for stage in &plan.stages {
        let text: Vec<String> = stage.steps.iter().map(|s| s.describe(&plan)).collect();
        let position = |prefix: &str| first(&text, prefix);
        assert!(position("stop fx-web") < position("stop fx-scanner"));
        assert!(
            position("run `migrate`") < position("start fx-scanner"),
            "{text:#?}"
        );
        assert!(
            position("start fx-scanner") < position("start fx-web"),
            "the related product starts first"
        );
        let scanner_ready = stage
            .steps
            .iter()
            .position(|s| matches!(s, Step::AwaitHealthy(a) if a.slot.member == "fx-scanner"))
            .unwrap();
        let Step::AwaitHealthy(awaited) = &stage.steps[scanner_ready] else {
            unreachable!()
        };
        assert_eq!(awaited.policy, ready, "its own readiness rule");
        assert!(
            scanner_ready < position("start fx-web"),
            "ready before the product starts"
        );
        assert!(
            text[position("start fx-scanner")].contains("upgrades its database as it starts"),
            "{text:#?}"
        );
        let checked = |member: &str| {
            text.iter().any(|t| {
                t.starts_with(&format!("check that {member} (")) && t.contains("reports version")
            })
        };
        assert!(checked("fx-web"), "{text:#?}");
        assert!(
            !checked("fx-scanner"),
            "the product's version check is not asked of it: {text:#?}"
        );
    }
    opts.related.get_mut("fx-scanner").unwrap().images.pop();
    assert!(plan_upgrade(&members, &opts)
        .unwrap_err()
        .to_string()
        .contains("fx-scanner is given 1 images for 2 hops"));
}

#[test]
fn rollback_plan_swaps_the_kept_old_container_back() {
    let (current, _) = fixture();
    let previous = current.patched(
        serde_json::json!({"Id": "previous-id", "Config": {"Image": "127.0.0.1:5000/demo:0"}}),
    );
    let plan = plan_rollback("fx-web", &current, &previous, health(), None);
    assert_eq!(
        described(&plan)[..4],
        [
            "stop fx-web (demo:1) (grace period 5s)".to_string(),
            "rename fx-web to fx-web-failed".into(),
            "rename fx-web-old to fx-web".into(),
            "start fx-web (demo:0)".into(),
        ]
    );
    assert_eq!(plan.known_ids()[&Slot::new("fx-web", 1)], "previous-id");
    assert_eq!(plan.image_to, "127.0.0.1:5000/demo:0");
}

#[test]
fn a_journaled_plan_reads_back_without_the_create_request() {
    let plan = upgrade(&options());
    let text = serde_json::to_string(&plan).unwrap();
    assert!(
        !text.contains("fixture-password"),
        "the create request is never journaled in clear"
    );
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back.step_count(), plan.step_count());
    assert_eq!(
        back.stages[0].steps[3]
            .action()
            .undo_describe(&back)
            .unwrap(),
        "start fx-web (demo:1)"
    );
}

#[test]
fn carried_files_on_a_volume_and_relative_paths_are_refused() {
    let mut opts = options();
    opts.steps.carry = vec![CarriedPath {
        path: "/data/settings".into(),
        optional: false,
        by_profile: false,
    }];
    let (container, image) = fixture();
    let old = Predecessor {
        inspect: &container,
        origin: &image,
    };
    let refused = plan_upgrade(&[old], &opts).unwrap_err().to_string();
    assert!(refused.contains("lies on the mount /data"), "{refused}");
    // A profile's file there is there already for the successor, which shares the mount.
    opts.steps.carry[0].by_profile = true;
    let old = Predecessor {
        inspect: &container,
        origin: &image,
    };
    let plan = plan_upgrade(&[old], &opts).expect("nothing to carry");
    assert!(!names(&plan).contains(&"carry_file"), "{:?}", names(&plan));
    opts.steps.carry = vec![CarriedPath {
        path: "app/.env".into(),
        optional: false,
        by_profile: false,
    }];
    let old = Predecessor {
        inspect: &container,
        origin: &image,
    };
    assert!(plan_upgrade(&[old], &opts)
        .unwrap_err()
        .to_string()
        .contains("absolute path"));
}

#[test]
fn a_cluster_s_first_node_waits_before_it_stops_and_another_node_once_stopped() {
    let gate = |node: &str| steps::Gate {
        cluster: "c".into(),
        first: "a/quay".into(),
        node: node.into(),
        record: "/nonexistent".into(),
    };
    let mut first = upgrade(&options());
    first.gate(gate("a/quay"));
    let mut other = upgrade(&options());
    other.gate(gate("b/quay"));
    assert_eq!(names(&first)[2..6], ["verify", "gate", "stop", "rename"]);
    assert_eq!(names(&other)[2..6], ["verify", "stop", "gate", "rename"]);
    assert!(!first.stages[0].steps[3].traits().critical_undo);
    assert!(other.stages[0].steps[4].traits().critical_undo);
}

fn service_move(service: &str, companion: bool) -> build::ServiceMove {
    build::ServiceMove {
        service: service.into(),
        from: "reg/lake:1@sha256:a".into(),
        to: "reg/lake:2".into(),
        stops_all: true,
        replicas: Some(2),
        companion,
    }
}

#[test]
fn a_products_services_are_stopped_backed_up_given_their_settings_and_migrated_before_the_update() {
    use crate::plan::steps::{Hidden, ServiceSettings, SettingsHome, TaskChecks};
    let settings = ServiceSettings {
        service: "lake".into(),
        names: vec!["ENCRYPTION_SECRET".into()],
        into: SettingsHome::Env,
        text: Hidden("ENCRYPTION_SECRET=k".into()),
    };
    use crate::backup::location::{DatabaseSpec, DbEngine, Source};
    let database = crate::backup::DatabaseTarget {
        spec: DatabaseSpec {
            sources: vec![Source::UrlEnv {
                name: "DB_URL".into(),
                files: vec![],
            }],
            schema_query: None,
            requires_extensions: Vec::new(),
            product_reads: None,
        },
        engine: DbEngine::Mysql,
        container: "mysql".into(),
        port: 3306,
        name: "lake".into(),
        user: "merico".into(),
    };
    let target = crate::backup::BackupTarget {
        database: Some(database),
        volumes: vec![],
    };
    let backup = |online| build::BackupPlan {
        targets: [("lake".to_string(), target.clone())].into(),
        root: "/backups".into(),
        keep: 2,
        online,
        ..build::BackupPlan::default()
    };
    let steps = build::ServiceSteps {
        migration: Some(Migration {
            shown: None,
            env: Vec::new(),
            command: vec!["migrate".into()],
            entrypoint: None,
            timeout: Duration::from_secs(60),
            fails_if_output_has: vec![],
        }),
        backup: Some(backup(false)),
        settings: vec![settings],
        checks: Some(TaskChecks {
            calls: Vec::new(),
            health: health(),
            version: None,
        }),
        ..Default::default()
    };
    let moves = [service_move("lake", false), service_move("ui", true)];
    let plan = build::plan_service_update(&moves, &steps, Vec::new(), &health());
    assert_eq!(
        names(&plan),
        [
            "pull",
            "service_scale",
            "service_scale",
            "backup",
            "service_settings",
            "service_job",
            "service_update",
            "service_update",
            "service_await",
            "service_await"
        ]
    );
    let steps_of = |plan: &Plan| plan.stages[0].steps.clone();
    let backed_up = steps_of(&plan)[3].describe(&plan);
    assert!(
        backed_up.contains("dumped, not snapshotted: a Swarm service's database is dumped"),
        "the plan says why no snapshot: {backed_up}"
    );
    let undo = steps_of(&plan)[6].action().undo_describe(&plan).unwrap();
    assert!(
        undo.contains("with 0 replicas"),
        "the old version starts only once the data is back: {undo}"
    );
    let awaits: Vec<bool> = steps_of(&plan)
        .iter()
        .filter_map(|s| match s {
            Step::ServiceAwait(a) => Some(a.checks.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(
        awaits,
        [true, false],
        "a companion is not tried by the profile"
    );

    // An online backup is taken while the services still serve; nothing else stops them.
    let online = build::ServiceSteps {
        backup: Some(backup(true)),
        ..Default::default()
    };
    let plan = build::plan_service_update(&moves[..1], &online, Vec::new(), &health());
    assert_eq!(
        names(&plan),
        ["pull", "backup", "service_update", "service_await"]
    );
}

/// A step kind that cannot be done to a service, as a profile's `exec` is.
#[derive(Debug)]
struct InsideTheContainer;

impl part::Part for InsideTheContainer {
    fn kind(&self) -> &'static str {
        "inside"
    }

    fn on_a_service(&self) -> part::OnAService<'_> {
        part::OnAService::Refused("it runs in the old container")
    }

    fn phase(&self) -> part::Phase {
        part::Phase::BeforeDowntime
    }

    fn steps(&self, _at: &part::Place) -> Vec<Step> {
        Vec::new()
    }
}

#[test]
fn each_part_says_what_it_does_for_a_service_and_the_hop_refuses_what_it_cannot() {
    let call = steps::Call {
        port: 8080,
        path: "/proceed-db-migration".into(),
        while_path: "/ping".into(),
        while_status: 428,
        timeout: Duration::from_secs(60),
    };
    let mut stage = build::StageOptions {
        parts: vec![std::sync::Arc::new(call.clone())],
        ..Default::default()
    };
    assert_eq!(stage.on_a_service(), Ok(vec![call.clone()]));

    stage.parts.push(std::sync::Arc::new(InsideTheContainer));
    let refused = stage.on_a_service().unwrap_err();
    assert!(
        refused.contains("`inside` step: it runs in the old container"),
        "{refused}"
    );

    stage.parts.truncate(1);
    stage.env.rename.push(("OLD".into(), "NEW".into()));
    let refused = stage.on_a_service().unwrap_err();
    assert!(refused.contains("renames variables"), "{refused}");

    stage.env.rename.clear();
    stage.exec_after.push(vec!["true".into()]);
    assert!(stage.on_a_service().unwrap_err().contains("`exec`"));
}
