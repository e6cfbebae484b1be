//! Compose projects with Debian's real docker-compose (1.29): after cutover upgrades a service,
//! its file says the new tag and compose leaves the new container alone, or brings the new
//! version back after `down`.

use std::path::PathBuf;
use std::process::Command;

use crate::helpers::*;

/// A compose project of the scene: its name (compose lowercases it) and directory.
struct Project {
    name: String,
    dir: PathBuf,
}

impl Project {
    fn new(scene: &Scene, files: &[(&str, &str)]) -> Project {
        let dir = temp_dir(scene, "project");
        for (file, text) in files {
            std::fs::write(dir.join(file), text.replace("REGISTRY", &registry())).unwrap();
        }
        Project {
            name: scene
                .name("p")
                .to_lowercase()
                .replace(|c: char| !c.is_ascii_alphanumeric(), ""),
            dir,
        }
    }

    fn compose(&self, args: &[&str]) -> String {
        let out = Command::new("docker-compose")
            .args(["-p", &self.name])
            .args(args)
            .current_dir(&self.dir)
            .env("DOCKER_HOST", docker_host())
            .output()
            .expect("docker-compose runs");
        succeeded(&format!("docker-compose {args:?}"), out)
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.name)
    }

    fn read(&self, file: &str) -> String {
        std::fs::read_to_string(self.dir.join(file)).unwrap()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .args(["-p", &self.name, "down", "-v"])
            .current_dir(&self.dir)
            .env("DOCKER_HOST", docker_host())
            .output();
    }
}

fn image_of(name: &str) -> String {
    inspect(name).unwrap()["Config"]["Image"]
        .as_str()
        .unwrap()
        .to_string()
}

const SHOP: &str = "version: \"3.7\"\n# the shop: a database and an app\nservices:\n  db:\n    image: REGISTRY/demo:1   # the database stays\n    init: true\n  app:\n    image: REGISTRY/demo:1   # upgraded by cutover\n    init: true\n    depends_on: [db]\n    volumes: [data:/data]\nvolumes:\n  data:\n";

#[test]
fn an_upgrade_writes_the_new_tag_and_compose_keeps_it() {
    compose_keeps_the_new_tag(&Scene::new("compose"));
}

/// A compose service upgraded: the file names the new tag, and `up -d` keeps it.
pub(crate) fn compose_keeps_the_new_tag(scene: &Scene) {
    let project = Project::new(scene, &[("docker-compose.yml", SHOP)]);
    project.compose(&["up", "-d"]);
    let app = project.container("app");
    let before = project.read("docker-compose.yml");

    let out = scene.upgrade(&app, "2", &["--json", "--settle", "1s"]);
    out.expect(0);
    let after = project.read("docker-compose.yml");
    let expected = before.replacen(
        &format!("{}/demo:1   # upgraded", registry()),
        &format!("{}/demo:2   # upgraded", registry()),
        1,
    );
    assert_eq!(
        after, expected,
        "only the app's image line changed; the comment and the db service are byte-identical"
    );

    // A plain `up -d` recreates nothing.
    let id = id_of(&app);
    project.compose(&["up", "-d"]);
    assert_eq!(id_of(&app), id, "compose left the upgraded container alone");
    assert_eq!(image_of(&app), image("2"));
    assert!(
        project
            .compose(&["ps"])
            .lines()
            .any(|l| l.starts_with(&app) && l.contains("Up")),
        "compose sees it up"
    );

    // Recreating, or down then up, brings the new version back with its data.
    project.compose(&["up", "-d", "--force-recreate"]);
    assert_eq!(image_of(&app), image("2"));
    project.compose(&["down"]);
    project.compose(&["up", "-d"]);
    assert_eq!(image_of(&app), image("2"));
    let log = docker(&["exec", &app, "cat", "/data/log.txt"]);
    assert!(
        log.contains("v1 started") && log.contains("v2 started"),
        "{log}"
    );
}

#[test]
fn an_image_written_with_a_variable_changes_the_env_file() {
    let scene = Scene::new("composeenv");
    let file = "services:\n  app:\n    image: \"REGISTRY/demo:${APP_TAG}\"\n    init: true\n";
    let project = Project::new(
        &scene,
        &[
            ("docker-compose.yml", file),
            (".env", "# versions\nAPP_TAG=1\n"),
        ],
    );
    project.compose(&["up", "-d"]);
    let app = project.container("app");
    let compose_file = project.read("docker-compose.yml");
    scene
        .cutover(&["upgrade", &app, "--to", "2", "--yes", "--settle", "1s"])
        .expect(0);
    assert_eq!(project.read(".env"), "# versions\nAPP_TAG=2\n");
    assert_eq!(
        project.read("docker-compose.yml"),
        compose_file,
        "the compose file is untouched"
    );
    let id = id_of(&app);
    project.compose(&["up", "-d"]);
    assert_eq!(id_of(&app), id);
    assert_eq!(image_of(&app), image("2"));
}

#[test]
fn a_failed_upgrade_leaves_the_files_as_they_were() {
    let scene = Scene::new("composefail");
    let project = Project::new(&scene, &[("docker-compose.yml", SHOP)]);
    project.compose(&["up", "-d"]);
    let app = project.container("app");
    let before = project.read("docker-compose.yml");
    let id = id_of(&app);
    let out = scene.upgrade(&app, "crash", &["--settle", "3s"]);
    out.expect(1);
    assert_eq!(project.read("docker-compose.yml"), before, "byte-identical");
    assert_eq!(id_of(&app), id, "the old container serves");
    assert!(is_running(&app));
    project.compose(&["up", "-d"]);
    assert_eq!(id_of(&app), id, "and compose is content with it");
}

#[test]
fn a_project_of_three_app_services_moves_as_one_group() {
    let scene = Scene::new("composeproject");
    let file = "services:\n  db:\n    image: REGISTRY/postgres:15\n    environment: [POSTGRES_PASSWORD=pw-compose-1]\n  api:\n    image: REGISTRY/demo:1\n    init: true\n    depends_on: [db, worker]\n  worker:\n    image: REGISTRY/demo:1\n    init: true\n    depends_on: [db]\n  cron:\n    image: REGISTRY/demo:1\n    init: true\n";
    let project = Project::new(&scene, &[("docker-compose.yml", file)]);
    project.compose(&["up", "-d"]);
    let db_id = id_of(&project.container("db"));
    let out = scene.cutover(&[
        "upgrade",
        "--project",
        &project.name,
        "--to",
        "2",
        "--yes",
        "--json",
        "--settle",
        "1s",
    ]);
    out.expect(0);
    let report = out.json();
    let members: Vec<String> = serde_json::from_value(report["members"].clone()).unwrap();
    assert_eq!(
        members,
        [
            project.container("api"),
            project.container("cron"),
            project.container("worker")
        ],
        "dependents first, so they stop first and start last"
    );
    for service in ["api", "worker", "cron"] {
        assert_eq!(
            image_of(&project.container(service)),
            image("2"),
            "{service}"
        );
    }
    assert_eq!(
        id_of(&project.container("db")),
        db_id,
        "the database is left running"
    );
    let text = project.read("docker-compose.yml");
    assert_eq!(text.matches("/demo:2").count(), 3, "{text}");
    project.compose(&["up", "-d"]);
    assert_eq!(image_of(&project.container("api")), image("2"));
}

#[test]
fn a_service_built_from_build_is_refused_before_any_downtime() {
    let scene = Scene::new("composebuild");
    let file =
        "services:\n  app:\n    build: ./app\n    image: REGISTRY/built-app:1\n    init: true\n";
    let project = Project::new(&scene, &[("docker-compose.yml", file)]);
    std::fs::create_dir_all(project.dir.join("app")).unwrap();
    std::fs::write(
        project.dir.join("app/Dockerfile"),
        format!("FROM {}\n", image("1")),
    )
    .unwrap();
    project.compose(&["up", "-d"]);
    let app = project.container("app");
    let before = inspect(&app).unwrap();
    let out = scene.upgrade(&app, "2", &[]);
    out.refused(&["built from `build:`", "--no-compose-edit"]);
    assert_untouched(&app, &before);
}
