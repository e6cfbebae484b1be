use std::path::PathBuf;

use proptest::prelude::*;

use super::edit::{set_dotenv, set_image, variable, VarRef};
use super::*;
use crate::engine::facts::dotenv_value;
use crate::testing::{cases, mutated_text, said, seeds, text, ARBITRARY, MUTATED, ROUND_TRIP};

const FILE: &str = "version: \"3.7\"\n# the project\nservices:\n  db:\n    image: postgres:15   # keep\n  app:\n    # the app\n    image: \"registry.lan/app:1.2.3\"   # pinned\n    depends_on: [db]\n    environment:\n      image: not-this-one\n  worker:\n    build: ./worker\n";

#[test]
fn the_image_line_changes_and_nothing_else() {
    let changed = set_image(FILE, "app", "registry.lan/app:1.3.0").unwrap();
    assert_eq!(
        changed,
        FILE.replace("\"registry.lan/app:1.2.3\"", "\"registry.lan/app:1.3.0\"")
    );
    let db = set_image(FILE, "db", "postgres:16").unwrap();
    assert_eq!(
        db,
        FILE.replace("image: postgres:15   # keep", "image: postgres:16   # keep")
    );
    assert!(set_image(FILE, "worker", "x")
        .unwrap_err()
        .to_string()
        .contains("cannot find the `image:` line"));
    assert!(set_image(FILE, "nope", "x").is_err());
}

#[test]
fn version_1_files_and_windows_endings_and_single_quotes() {
    let v1 = "web:\n  image: 'demo:1'\n  ports: [\"80:80\"]\ncache:\n  image: redis\n";
    assert_eq!(
        set_image(v1, "web", "demo:2").unwrap(),
        "web:\n  image: 'demo:2'\n  ports: [\"80:80\"]\ncache:\n  image: redis\n"
    );
    let crlf = "services:\r\n  web:\r\n    image: demo:1\r\n";
    assert_eq!(
        set_image(crlf, "web", "demo:2").unwrap(),
        "services:\r\n  web:\r\n    image: demo:2\r\n"
    );
    let alias = "services:\n  web:\n    image: *img\n";
    assert!(set_image(alias, "web", "x")
        .unwrap_err()
        .to_string()
        .contains("alias"));
}

#[test]
fn variables_in_images_are_found_with_what_surrounds_them() {
    let v = |name: &str, default: Option<&str>, prefix: &str, suffix: &str| {
        Some(VarRef {
            name: name.into(),
            default: default.map(Into::into),
            prefix: prefix.into(),
            suffix: suffix.into(),
        })
    };
    assert_eq!(variable("demo:1").unwrap(), None);
    assert_eq!(
        variable("${APP_IMAGE}").unwrap(),
        v("APP_IMAGE", None, "", "")
    );
    assert_eq!(
        variable("registry.lan/app:${APP_TAG:-1.2.3}").unwrap(),
        v("APP_TAG", Some("1.2.3"), "registry.lan/app:", "")
    );
    assert_eq!(
        variable("app:$TAG-alpine").unwrap(),
        v("TAG", None, "app:", "-alpine")
    );
    assert!(variable("${REG}/app:${TAG}")
        .unwrap_err()
        .to_string()
        .contains("several variables"));
}

#[test]
fn dotenv_values_are_rewritten_in_place_or_appended() {
    let text = "# versions\nexport APP_TAG=\"1.2.3\"\nOTHER=x\n";
    assert_eq!(
        set_dotenv(text, "APP_TAG", "1.3.0"),
        "# versions\nexport APP_TAG=\"1.3.0\"\nOTHER=x\n"
    );
    assert_eq!(
        set_dotenv("OTHER=x", "APP_TAG", "2"),
        "OTHER=x\nAPP_TAG=2\n"
    );
    assert_eq!(set_dotenv("", "APP_TAG", "2"), "APP_TAG=2\n");
}

fn member(service: &str) -> Membership {
    Membership {
        project: "p".into(),
        service: service.into(),
        working_dir: "/srv/p".into(),
        config_files: vec!["/srv/p/docker-compose.yml".into()],
        env_file: "/srv/p/.env".into(),
    }
}

#[test]
fn the_place_to_write_the_tag_is_the_file_that_sets_the_image_last() {
    let base = (PathBuf::from("/srv/p/docker-compose.yml"), FILE.to_string());
    let over = (
        PathBuf::from("/srv/p/override.yml"),
        "services:\n  app:\n    image: registry.lan/app:${APP_TAG:-1.2.3}\n".to_string(),
    );
    let defs = services(&[base.clone(), over.clone()]).unwrap();
    assert_eq!(defs["app"].depends_on, ["db"]);
    assert!(defs["worker"].build);
    let (file, change) = plan_change(
        &member("app"),
        &defs,
        Some("APP_TAG=1.2.3\n"),
        "registry.lan/app:1.3.0",
    )
    .unwrap();
    assert_eq!(file, PathBuf::from("/srv/p/.env"));
    assert_eq!(
        change,
        Change::Variable {
            name: "APP_TAG".into(),
            value: "1.3.0".into()
        }
    );
    // Only the base file: its image line.
    let defs = services(&[base]).unwrap();
    let (file, change) =
        plan_change(&member("app"), &defs, None, "registry.lan/app:1.3.0").unwrap();
    assert_eq!(file, PathBuf::from("/srv/p/docker-compose.yml"));
    assert_eq!(change.apply(FILE).unwrap(), FILE.replace("1.2.3", "1.3.0"));
    assert!(plan_change(&member("worker"), &defs, None, "x")
        .unwrap_err()
        .to_string()
        .contains("built from `build:`"));
}

#[test]
fn an_image_the_project_takes_from_the_environment_is_refused() {
    let defs = services(&[(
        PathBuf::from("/srv/p/docker-compose.yml"),
        "services:\n  app:\n    image: app:${APP_TAG}\n".to_string(),
    )])
    .unwrap();
    let refused = plan_change(&member("app"), &defs, Some("OTHER=1\n"), "app:2")
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("$APP_TAG is not set in /srv/p/.env"),
        "{refused}"
    );
    let defs = services(&[(
        PathBuf::from("/srv/p/docker-compose.yml"),
        "services:\n  app:\n    image: app:${APP_TAG}-alpine\n".to_string(),
    )])
    .unwrap();
    assert!(
        plan_change(&member("app"), &defs, Some("APP_TAG=1\n"), "app:2")
            .unwrap_err()
            .to_string()
            .contains("no value of $APP_TAG")
    );
}

#[test]
fn membership_comes_from_compose_labels() {
    let c: Container = serde_json::from_value(serde_json::json!({"Config": {"Labels": {
        "com.docker.compose.project": "shop",
        "com.docker.compose.service": "web",
        "com.docker.compose.project.working_dir": "/srv/shop",
        "com.docker.compose.project.config_files": "docker-compose.yml,/etc/extra.yml",
        "com.docker.compose.oneoff": "False"
    }}}))
    .unwrap();
    let m = Membership::of(&c).unwrap();
    assert_eq!(
        m.config_files,
        [
            PathBuf::from("/srv/shop/docker-compose.yml"),
            PathBuf::from("/etc/extra.yml")
        ]
    );
    assert_eq!(m.env_file, PathBuf::from("/srv/shop/.env"));
    assert_eq!(Membership::of(&Container::default()), None);
}

/// A project's file as compose reads it: its services, or an error naming the file; and the
/// edits cutover makes to it and to a `.env` fail with a message, never a panic.
fn read_or_refused_naming_it(text: &str) -> Result<(), TestCaseError> {
    let path = PathBuf::from("/srv/app/compose.yaml");
    if let Err(e) = services(&[(path, text.to_string())]).map_err(|e| e.to_string()) {
        said(&e)?;
        prop_assert!(e.starts_with("/srv/app/compose.yaml: "), "{}", e);
    }
    if let Err(e) = set_image(text, "app", "registry.lan/app:1.3.0") {
        said(&e)?;
    }
    if let Err(e) = variable(text) {
        said(&e)?;
    }
    let _ = set_dotenv(text, "APP_TAG", "1.3.0");
    Ok(())
}

proptest! {
    #![proptest_config(cases(ARBITRARY))]
    #[test]
    fn any_text_is_a_project_or_refused_naming_its_file(text in text()) {
        read_or_refused_naming_it(&text)?;
    }
}

proptest! {
    #![proptest_config(cases(MUTATED))]
    #[test]
    fn a_mistyped_project_is_read_or_refused_naming_its_file(
        text in mutated_text(seeds(&[FILE, "web:\r\n  image: 'nginx:1.25'\r\n", "services:\n  app:\n    image: ${REGISTRY:-registry.lan}/app:${APP_TAG}\n"]))
    ) {
        read_or_refused_naming_it(&text)?;
    }
}

proptest! {
    #![proptest_config(cases(ROUND_TRIP))]
    /// The image cutover writes into a service's line is the one compose then reads, and the
    /// other services keep theirs; a value written into `.env` reads back.
    #[test]
    fn a_written_image_and_dotenv_value_read_back_equal(
        service in proptest::sample::select(vec!["db", "app"]),
        image in "[a-z0-9-]{1,10}(\\.[a-z]{2,4}(:[0-9]{2,5})?)?/[a-z0-9_-]{1,12}:[A-Za-z0-9_.-]{1,16}(@sha256:[0-9a-f]{64})?",
        dotenv in "([A-Z_]{1,8}=[a-z0-9]{0,8}\n){0,4}",
        value in "[A-Za-z0-9_.:/-]{1,30}",
    ) {
        let path = PathBuf::from("compose.yaml");
        let before = services(&[(path.clone(), FILE.to_string())]).unwrap();
        let edited = set_image(FILE, service, &image).unwrap();
        let after = services(&[(path.clone(), edited)]).unwrap();
        for (name, def) in &after {
            let expected = match name == service {
                true => Some((path.clone(), image.clone())),
                false => before[name].image.clone(),
            };
            prop_assert_eq!(&def.image, &expected, "{}", name);
        }
        let written = set_dotenv(&dotenv, "APP_TAG", &value);
        prop_assert_eq!(dotenv_value(&written, "APP_TAG"), Some(value));
    }
}
