use proptest::prelude::*;

use super::*;
use crate::backup::location::{DbEngine, Location};
use crate::plan::part::{Phase, Place};
use crate::plan::{Slot, Step};
use crate::template;
use crate::testing::{cases, mutated, said, text, Scratch, ARBITRARY, MUTATED};
use steps::When;

fn for_hop(profile: &Profile, from: &str, to: &str, facts: &Facts) -> Result<HopSteps, String> {
    profile.for_hop(from, to, facts).map_err(|e| e.to_string())
}

/// The steps a hop's parts of `phase` place for the named container of a group.
fn placed(hop: &HopSteps, phase: Phase) -> Vec<Step> {
    let at = Place {
        old: Slot::new("app", 0),
        new: Slot::new("app", 1),
        primary: true,
        companion: false,
    };
    hop.stage
        .parts
        .iter()
        .filter(|p| p.phase() == phase)
        .flat_map(|p| p.steps(&at))
        .collect()
}

fn facts(env: &[&str], files: &[(&str, &str)]) -> Facts {
    Facts {
        env: env.iter().map(|e| e.to_string()).collect(),
        files: files
            .iter()
            .map(|(p, t)| (p.to_string(), t.to_string()))
            .collect(),
        present: Default::default(),
    }
}

fn shipped(name: &str) -> Profile {
    Catalog::builtin()
        .get(name)
        .unwrap_or_else(|| panic!("{name} is shipped"))
        .profile
        .clone()
}

#[test]
fn every_shipped_profile_is_valid_and_each_product_has_one() {
    let catalog = Catalog::builtin();
    let names: Vec<&str> = catalog
        .profiles
        .iter()
        .map(|p| p.profile.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "anchore-engine",
            "buildmaster",
            "devlake",
            "otter",
            "proget",
            "quay"
        ]
    );
    for (file, text) in BUILTIN {
        let profile = Profile::parse(text, file).unwrap();
        // What `profiles show` prints reads back as the same profile.
        let shown = yaml_serde::to_string(&profile).unwrap();
        assert_eq!(Profile::parse(&shown, file).unwrap(), profile, "{file}");
    }
}

/// Every rule a built-in profile gives the running product to answer names where it was read,
/// which `cutover profiles check` shows beside the answer; a source for a rule the profile does
/// not give is refused where it is written.
#[test]
fn every_built_in_rule_names_its_source() {
    for (file, text) in BUILTIN {
        let profile = Profile::parse(text, file).unwrap();
        for rule in profile.rules_given() {
            assert!(
                profile
                    .sources
                    .get(rule)
                    .is_some_and(|s| !s.trim().is_empty()),
                "{file}: no source for its {rule} rule"
            );
        }
    }
    let stray = "name: x\ndescription: y\nmatch: [a/b]\nsources:\n  health: doc\n";
    let e = Profile::parse(stray, "mine.yaml").unwrap_err().to_string();
    assert!(
        e.starts_with("mine.yaml:5:")
            && e.contains("health is none of the rules this profile gives"),
        "{e}"
    );
}

#[test]
fn mistakes_are_reported_with_file_line_and_column() {
    let unknown = "name: x\ndescription: y\nmatch: [a/b]\nhelth:\n  port: 80\n";
    let e = Profile::parse(unknown, "mine.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mine.yaml:4:1: unknown field `helth`"), "{e}");
    let bad_type = "name: x\ndescription: y\nmatch: [a/b]\nhealth:\n  port: eighty\n";
    let e = Profile::parse(bad_type, "mine.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("mine.yaml:5:9: health.port: invalid type"),
        "{e}"
    );
    let bad_step = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n  - migrate:\n      command: [m]\n      when: { to: \"newer than 3\" }\n";
    let e = Profile::parse(bad_step, "mine.yaml")
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("mine.yaml:7:7: migrate: when:"), "{e}");
    // The value at fault, not the first line that names its key: the second step's timeout,
    // in a flow mapping.
    let second = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n  - migrate:\n      command: [m]\n      timeout: 1h\n  - carry_file: { path: /a }\n  - migrate: { command: [n], timeout: soon }\n";
    let e = Profile::parse(second, "mine.yaml").unwrap_err().to_string();
    assert!(e.starts_with("mine.yaml:9:30: migrate: timeout:"), "{e}");
    let bad_template = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n  - migrate:\n      command: [\"${UNCLOSED\"]\n";
    assert!(Profile::parse(bad_template, "t.yaml")
        .unwrap_err()
        .to_string()
        .contains("unclosed"));
    let secret_word = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n  - migrate:\n      command: [m, \"--password=${DB_PASSWORD}\"]\n";
    let e = Profile::parse(secret_word, "s.yaml")
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("s.yaml:6:")
            && e.contains("${DB_PASSWORD} would put a secret on the one-shot's command line"),
        "{e}"
    );
    let in_env = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n  - migrate:\n      command: [m]\n      env: { PGPASSWORD: \"${DB_PASSWORD}\" }\n";
    Profile::parse(in_env, "e.yaml").expect("a secret goes in the environment");
    // A variable the profile's database is read from holds a secret whatever its name.
    let database = "name: x\ndescription: y\nmatch: [a/b]\ndatabase:\n  sources:\n    - parts_env: { engine: postgres, host: H, name: N, user: U, password: DBPW }\ntasks:\n  t:\n    description: d\n    steps:\n      - run: { name: r, command: [m, \"${DBPW}\"] }\n";
    let e = Profile::parse(database, "p.yaml").unwrap_err().to_string();
    assert!(e.contains("${DBPW} would put a secret"), "{e}");
    let digest = "name: x\ndescription: y\nmatch: [a/b]\npolicy: digest\n";
    assert!(Profile::parse(digest, "d.yaml")
        .unwrap_err()
        .to_string()
        .starts_with("d.yaml:4:1: policy:"));
}

#[test]
fn repositories_match_whatever_registry_or_mirror_serves_them() {
    let catalog = Catalog::builtin();
    let found = |image: &str| {
        catalog
            .matching(&ImageRef::parse(image).unwrap())
            .map(|(p, _)| p.profile.name.clone())
    };
    assert_eq!(
        found("proget.inedo.com/productimages/inedo/proget:25.0.13").as_deref(),
        Some("proget")
    );
    assert_eq!(found("inedo/proget:24.0.1").as_deref(), Some("proget"));
    assert_eq!(
        found("127.0.0.1:5000/projectquay/quay:v3.8.0").as_deref(),
        Some("quay")
    );
    assert_eq!(
        found("quay.io/coreos/registry:v2.9.5").as_deref(),
        Some("quay")
    );
    assert_eq!(
        found("mirror.lan/dockerhub/apache/devlake:v0.17.0").as_deref(),
        Some("devlake")
    );
    assert_eq!(
        found("anchore/anchore-engine:v0.7.0").as_deref(),
        Some("anchore-engine")
    );
    assert_eq!(
        found("apache/devlake-config-ui:v0.17.0"),
        None,
        "another image of the product"
    );
    assert_eq!(found("postgres:15"), None);
    let wild = Profile::parse(
        "name: w\ndescription: w\nmatch: [\"*/inedo/proget\"]\n",
        "w",
    )
    .unwrap();
    assert!(wild
        .matches(&ImageRef::parse("registry.lan/inedo/proget:1").unwrap())
        .is_some());
    assert!(
        wild.matches(&ImageRef::parse("inedo/proget:1").unwrap())
            .is_some(),
        "any registry, Docker Hub too"
    );
    assert!(wild
        .matches(&ImageRef::parse("registry.lan/other/proget:1").unwrap())
        .is_none());
}

#[test]
fn labels_and_flags_choose_before_the_image() {
    let catalog = Catalog::builtin();
    let labels =
        |v: &str| std::collections::HashMap::from([(LABEL_PROFILE.to_string(), v.to_string())]);
    let chosen = |choice: &Choice, labels, image| {
        catalog
            .choose(choice, &labels, image)
            .unwrap()
            .map(|(p, why)| (p.profile.name, why))
    };
    let quay = "127.0.0.1:5000/projectquay/quay:v3.8.0";
    assert_eq!(
        chosen(&Choice::Auto, Default::default(), quay),
        Some((
            "quay".into(),
            "its image is in repository projectquay/quay".into()
        ))
    );
    assert_eq!(chosen(&Choice::Auto, labels("none"), quay), None);
    assert_eq!(
        chosen(&Choice::Auto, labels("devlake"), quay).unwrap().1,
        "label cutover.profile=devlake"
    );
    assert_eq!(
        chosen(&Choice::Named("proget".into()), labels("devlake"), quay)
            .unwrap()
            .0,
        "proget"
    );
    assert_eq!(chosen(&Choice::Without, Default::default(), quay), None);
    assert!(catalog
        .choose(&Choice::Named("nope".into()), &Default::default(), quay)
        .unwrap_err()
        .to_string()
        .contains("profiles list"));
}

#[test]
fn quay_goes_one_minor_at_a_time_through_the_registrys_newest_patch() {
    let path = shipped("quay").upgrade_path.unwrap();
    let tags: Vec<String> = [
        "v3.8.0",
        "v3.8.1",
        "v3.9.0",
        "v3.9.2",
        "v3.9.10",
        "v3.10.0",
        "v3.10.1",
        "v3.11.0-rc1",
        "latest",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    assert_eq!(
        hops("v3.8.0", "v3.10.1", &tags, &path).unwrap(),
        ["v3.9.10"]
    );
    assert_eq!(
        hops("v3.8.0", "v3.9.2", &tags, &path).unwrap(),
        Vec::<String>::new(),
        "the next minor needs no hop"
    );
    assert_eq!(
        hops("v3.8.0", "v3.8.1", &tags, &path).unwrap(),
        Vec::<String>::new()
    );
    let missing: Vec<String> = ["v3.8.0", "v3.10.0"]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let e = hops("v3.8.0", "v3.10.0", &missing, &path)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("through 3.9.x, which the registry does not have"),
        "{e}"
    );
    // An exact waypoint, and a series reached by its newest release (ProGet: 5.1 and older go
    // to the latest 5.2 first).
    let tags: Vec<String> = [
        "5.1.3", "5.2.0", "5.2.9", "5.3.10", "24.0.1", "25.0.13", "2.0.0",
    ]
    .iter()
    .map(|t| t.to_string())
    .collect();
    let waypoints = |w: &[&str]| UpgradePath {
        minors_per_hop: None,
        waypoints: w.iter().map(|w| w.to_string()).collect(),
    };
    assert_eq!(
        hops("5.1.3", "25.0.13", &tags, &waypoints(&["5.2"])).unwrap(),
        ["5.2.9"]
    );
    assert!(hops("5.2.3", "25.0.13", &tags, &waypoints(&["5.2"]))
        .unwrap()
        .is_empty());
    assert!(hops("5.1.3", "5.2.5", &tags, &waypoints(&["5.2"]))
        .unwrap()
        .is_empty());
    assert_eq!(
        hops("1.1.0", "5.1.3", &tags, &waypoints(&["2.0.0"])).unwrap(),
        ["2.0.0"]
    );
    assert!(hops("5.1.3", "25.0.13", &tags, &waypoints(&["4.1"]))
        .unwrap()
        .is_empty());
}

#[test]
fn proget_takes_the_upgradedb_command_of_the_target_version() {
    let proget = shipped("proget");
    let migration = |from, to| {
        for_hop(&proget, from, to, &Facts::default())
            .unwrap()
            .stage
            .migrate
            .unwrap()
            .entrypoint
            .unwrap()
    };
    assert_eq!(
        migration("24.0.1", "24.0.2"),
        ["/usr/local/proget/service/ProGet.Service"]
    );
    assert_eq!(
        migration("24.0.2", "25.0.1"),
        ["/usr/local/proget/service/proget"]
    );
    assert_eq!(
        migration("25.0.1", "25.0.13"),
        ["/usr/local/proget/service/proget"]
    );
}

#[test]
fn devlake_copies_its_key_only_when_crossing_0_18_and_needs_one() {
    let devlake = shipped("devlake");
    let dotenv = facts(
        &["DB_URL=postgres://lake:pw@db:5432/lake"],
        &[("/app/.env", "ENCODE_KEY=\"k-5f2d9a\"\nOTHER=1\n")],
    );
    let crossing = for_hop(&devlake, "v0.17.0", "v0.18.0", &dotenv).unwrap();
    assert_eq!(crossing.refusal, None);
    assert_eq!(
        crossing.stage.env.set,
        [("ENCRYPTION_SECRET".to_string(), "k-5f2d9a".to_string())],
        "read from the .env file"
    );
    assert_eq!(crossing.stage.carry[0].path, "/app/.env");
    // Before v0.10.0 DevLake did not migrate its own schema.
    let old = for_hop(&devlake, "v0.9.3", "v0.10.0", &dotenv).unwrap();
    assert!(
        old.refusal.is_some_and(|r| r.contains("prior to v0.10.0")),
        "refused before any downtime"
    );
    let [Step::CallStep(call)] = &placed(&crossing, Phase::Started)[..] else {
        panic!("one call as the new version starts");
    };
    assert_eq!(call.call.path, "/proceed-db-migration");
    // The rename happened in the first beta of 0.18 already.
    let beta = for_hop(&devlake, "v0.17.0", "v0.18.0-beta1", &dotenv).unwrap();
    assert_eq!(
        beta.stage.env.set, crossing.stage.env.set,
        "a beta crosses 0.18"
    );
    assert!(for_hop(&devlake, "v0.18.0-beta1", "v0.18.0", &dotenv)
        .unwrap()
        .stage
        .env
        .set
        .is_empty());
    assert!(
        for_hop(&devlake, "v0.18.0", "v0.19.0", &dotenv)
            .unwrap()
            .stage
            .env
            .set
            .is_empty(),
        "not crossing 0.18"
    );
    // The environment wins over the file, as DevLake reads them.
    let env = facts(
        &["ENCODE_KEY=from-env-1234"],
        &[("/app/.env", "ENCODE_KEY=from-file\n")],
    );
    assert_eq!(
        for_hop(&devlake, "v0.17.0", "v0.18.0", &env)
            .unwrap()
            .stage
            .env
            .set[0]
            .1,
        "from-env-1234"
    );
    let nothing = facts(&[], &[("/app/.env", "DB_URL=x\n")]);
    let refused = for_hop(&devlake, "v0.17.0", "v0.18.0", &nothing)
        .unwrap()
        .refusal
        .unwrap();
    assert!(
        refused.contains("ENCRYPTION_SECRET, ENCODE_KEY"),
        "{refused}"
    );
}

#[test]
fn anchores_migration_reads_the_database_from_the_containers_environment() {
    let anchore = shipped("anchore-engine");
    let env = facts(
        &[
            "ANCHORE_DB_HOST=db",
            "ANCHORE_DB_USER=anchore",
            "ANCHORE_DB_PASSWORD=pw-1234",
            "ANCHORE_DB_NAME=anchore",
        ],
        &[],
    );
    let migrate = for_hop(&anchore, "v0.7.0", "v0.7.1", &env)
        .unwrap()
        .stage
        .migrate
        .unwrap();
    assert_eq!(
        migrate.command[3], "postgresql://anchore@db:5432/anchore",
        "the port defaults to 5432; the password is not on the command line"
    );
    assert!(!migrate.command.concat().contains("pw-1234"));
    assert_eq!(
        migrate.env,
        [("PGPASSWORD".to_string(), "pw-1234".to_string())],
        "libpq reads it from the one-shot's environment"
    );
    assert!(migrate.command.contains(&"--dontask".to_string()));
    assert_eq!(migrate.fails_if_output_has, ["Skipping upgrade"]);
    let e = for_hop(
        &anchore,
        "v0.7.0",
        "v0.7.1",
        &facts(&["ANCHORE_DB_HOST=db"], &[]),
    )
    .unwrap_err();
    assert!(e.contains("has no ANCHORE_DB_USER"), "{e}");
}

#[test]
fn databases_are_located_the_way_each_product_reads_them() {
    let anchore = shipped("anchore-engine").database.unwrap();
    let env = facts(
        &[
            "ANCHORE_DB_HOST=db",
            "ANCHORE_DB_PORT=5433",
            "ANCHORE_DB_USER=a",
            "ANCHORE_DB_PASSWORD=p",
            "ANCHORE_DB_NAME=anchore",
        ],
        &[],
    );
    let l = anchore.locate(&env).unwrap();
    assert_eq!(
        (l.engine, l.host.as_str(), l.port, l.name.as_str()),
        (DbEngine::Postgres, "db", 5433, "anchore")
    );
    let quay = shipped("quay").database.unwrap();
    let config = facts(&[], &[("/conf/stack/config.yaml", "DATABASE_SECRET_KEY: abc\nDB_URI: postgresql://quay:pw@quay-db:5432/quay\nSERVER_HOSTNAME: q\n")]);
    let l = quay.locate(&config).unwrap();
    assert_eq!(
        (l.host.as_str(), l.name.as_str(), l.from.as_str()),
        ("quay-db", "quay", "DB_URI in /conf/stack/config.yaml")
    );
    let proget = shipped("proget").database.unwrap();
    let sql = facts(&["PROGET_SQL_CONNECTION_STRING=Data Source=sql,1434; Initial Catalog=ProGet; User ID=sa; Password=pw"], &[]);
    let l: Location = proget.locate(&sql).unwrap();
    assert_eq!(
        (l.engine, l.host.as_str(), l.port, l.name.as_str()),
        (DbEngine::Sqlserver, "sql", 1434, "ProGet")
    );
    let pg = facts(
        &["PROGET_POSTGRES_CONNECTION_STRING=Host=pg;Database=proget;Username=u;Password=pw"],
        &[],
    );
    assert_eq!(proget.locate(&pg).unwrap().engine, DbEngine::Postgres);
    let devlake = shipped("devlake").database.unwrap();
    let dotenv = facts(
        &[],
        &[(
            "/app/.env",
            "DB_URL=mysql://merico:merico@mysql:3306/lake?charset=utf8mb4\n",
        )],
    );
    let l = devlake.locate(&dotenv).unwrap();
    assert_eq!(
        (l.engine, l.port, l.name.as_str()),
        (DbEngine::Mysql, 3306, "lake")
    );
    assert!(devlake.locate(&Facts::default()).is_err());
}

#[test]
fn when_bounds_hops_by_their_versions() {
    let w = |from: Option<&str>, to: Option<&str>, crossing: Option<&str>| When {
        from: from.map(Into::into),
        to: to.map(Into::into),
        crossing: crossing.map(Into::into),
    };
    assert!(w(None, Some("<25"), None)
        .holds("24.0.1", "24.0.9")
        .unwrap());
    assert!(!w(None, Some("<25"), None)
        .holds("24.0.1", "25.0.1")
        .unwrap());
    assert!(w(Some(">=3.8"), None, None)
        .holds("v3.8.0", "v3.9.0")
        .unwrap());
    assert!(w(None, None, Some("0.18.0"))
        .holds("v0.17.0", "v0.18.0")
        .unwrap());
    assert!(w(None, None, Some("0.18.0"))
        .holds("v0.17.3", "v0.19.0")
        .unwrap());
    assert!(!w(None, None, Some("0.18.0"))
        .holds("v0.18.0", "v0.19.0")
        .unwrap());
    assert!(
        w(None, None, None).holds("latest", "stable").unwrap(),
        "an unbounded step needs no versions"
    );
    assert!(w(None, Some("<25"), None)
        .holds("latest", "25.0.1")
        .unwrap_err()
        .to_string()
        .contains("latest is not a version"));
}

fn migrate_object_storage() -> task::TaskSpec {
    shipped("anchore-engine").tasks["migrate-object-storage"].clone()
}

fn words(list: &[&str]) -> Vec<String> {
    list.iter().map(|w| w.to_string()).collect()
}

#[test]
fn a_task_takes_its_options_and_hands_back_the_command_s_own() {
    let spec = migrate_object_storage();
    let (args, rest) = spec
        .parse_args(&words(&[
            "--dest-config",
            "dest.yaml",
            "--yes",
            "--bucket",
            "a",
            "--bucket=b",
            "--nodelete",
            "--json",
        ]))
        .unwrap();
    assert_eq!(args.values["dest-config"], ["dest.yaml"]);
    assert_eq!(args.values["bucket"], ["a", "b"]);
    assert!(args.given("nodelete") && !args.given("to-analysis-archive"));
    assert_eq!(rest, ["--yes", "--json"]);
    let refused = |given: &[&str]| spec.parse_args(&words(given)).unwrap_err();
    assert!(refused(&[]).starts_with("--dest-config FILE is required"));
    assert!(refused(&["--dest-config"]).contains("needs a value (FILE)"));
    assert!(refused(&["--dest-config=a", "--dest-config=b"]).contains("given twice"));
    assert!(refused(&["--dest-config=a", "--nodelete=yes"]).contains("takes no value"));
}

#[test]
fn a_task_command_gets_its_options_and_files_but_keeps_its_variables_for_later() {
    let spec = migrate_object_storage();
    let task::TaskStepSpec::Run(migrate) = &spec.steps[1] else {
        panic!("the second step migrates")
    };
    let (args, _) = spec
        .parse_args(&words(&[
            "--dest-config",
            "d.yaml",
            "--nodelete",
            "--to-analysis-archive",
            "--bucket",
            "x",
        ]))
        .unwrap();
    let (forward, files) = task::resolve_command(&migrate.command, &args, &task::Files::new());
    assert_eq!(
        forward[4..],
        words(&[
            "migrate",
            "/cutover-task/source.yaml",
            "/cutover-task/dest-config.yaml",
            "--dontask",
            "--nodelete",
            "--to-analysis-archive",
            "--bucket",
            "x"
        ])
    );
    assert!(
        forward[3].contains("${ANCHORE_DB_USER}") && !forward[3].contains("PASSWORD"),
        "expanded only when it runs, and no password on the command line: {}",
        forward[3]
    );
    assert_eq!(
        migrate.env["PGPASSWORD"], "${ANCHORE_DB_PASSWORD}",
        "libpq reads it from the one-shot's environment"
    );
    assert_eq!(files, ["source", "dest-config"]);
    let (back, _) = task::resolve_command(&migrate.undo[0].command, &args, &task::Files::new());
    assert_eq!(
        back[5..],
        words(&[
            "/cutover-task/dest-config.yaml",
            "/cutover-task/source.yaml",
            "--dontask",
            "--from-analysis-archive",
            "--bucket",
            "x"
        ]),
        "the way back reverses the configs and the analysis-archive side"
    );
    let (values, _) = task::resolve_command(
        &words(&[
            "echo",
            "${value:bucket}",
            "${value:nodelete}",
            "${value:from-analysis-archive}",
        ]),
        &args,
        &task::Files::new(),
    );
    assert_eq!(
        values,
        words(&["echo", "x"]),
        "values alone; a flag has none"
    );
}

#[test]
fn a_task_checks_its_files_and_whether_the_backup_covers_its_way_back() {
    let spec = migrate_object_storage();
    let yaml = |text: &str| -> serde_json::Value { yaml_serde::from_str(text).unwrap() };
    let (plain, _) = spec
        .parse_args(&words(&["--dest-config", "d.yaml"]))
        .unwrap();
    let (archive, _) = spec
        .parse_args(&words(&[
            "--dest-config",
            "d.yaml",
            "--to-analysis-archive",
        ]))
        .unwrap();
    let files = |dest: &str, source: &str| -> task::Files {
        [
            ("dest-config".to_string(), yaml(dest)),
            ("source".to_string(), yaml(source)),
        ]
        .into()
    };
    let localfs =
        "services:\n  catalog:\n    object_store:\n      storage_driver:\n        name: localfs\n";
    let bare = "services:\n  catalog:\n    enabled: true\n";
    assert_eq!(spec.check_files(&plain, &files(localfs, bare)), Ok(()));
    let e = spec
        .check_files(&plain, &files(bare, bare))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("d.yaml (--dest-config) has none of services.catalog.object_store, services.catalog.archive"), "{e}");
    let e = spec
        .check_files(&archive, &files(localfs, bare))
        .unwrap_err()
        .to_string();
    assert!(e.contains("services.catalog.analysis_archive"), "{e}");
    let e = spec
        .check_files(&plain, &files("other: 1", bare))
        .unwrap_err()
        .to_string();
    assert!(e.contains("has none of services.catalog:"), "{e}");
    let e = spec
        .check_files(&plain, &files(localfs, localfs))
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("d.yaml (--dest-config) has the same services.catalog as /config/config.yaml: there is nothing to move"),
        "{e}"
    );

    let task::TaskStepSpec::Run(migrate) = &spec.steps[1] else {
        panic!("the second step migrates")
    };
    let covers = migrate.backup_covers.as_ref().unwrap();
    assert!(
        covers.holds(&plain, &files(localfs, bare)),
        "no section: the default driver, db"
    );
    assert!(
        !covers.holds(&plain, &files(bare, localfs)),
        "documents in files are not in the backup"
    );
    let db2 = "services:\n  catalog:\n    archive:\n      storage_driver:\n        name: db2\n";
    assert!(
        covers.holds(&plain, &files(localfs, db2)),
        "the older `archive` key"
    );
    let (from_archive, _) = spec
        .parse_args(&words(&[
            "--dest-config",
            "d.yaml",
            "--from-analysis-archive",
        ]))
        .unwrap();
    assert!(!covers.holds(&from_archive, &files(localfs, bare)));
}

#[test]
fn a_task_that_names_what_it_does_not_have_is_refused_where_it_says_so() {
    let profile = |step: &str| {
        format!(
            "name: x\ndescription: y\nmatch: [a/b]\ntasks:\n  t:\n    description: d\n    args:\n      - {{name: to, value: FILE, file: true, help: h}}\n    config: {{path: /c.yaml, role: r}}\n    steps:\n{step}"
        )
    };
    let error = |step: &str| {
        Profile::parse(&profile(step), "x.yaml")
            .unwrap_err()
            .to_string()
    };
    let e = error("      - run: {name: a, command: [x, \"${arg:from}\"]}\n");
    assert!(
        e.contains("tasks: t: a: ${arg:from}: from is not an option of the task"),
        "{e}"
    );
    let e = error("      - run: {name: a, command: [x, \"${file:other}\"]}\n");
    assert!(e.contains("other is not a file of the task"), "{e}");
    let e = error("      - run: {name: a, command: [x], table: {row: {id: \"${captured:n}\"}}}\n");
    assert!(e.contains("nothing earlier captures n"), "{e}");
    let e = error("      - run: {name: a, command: [x], before_stop: true, changes_data: true}\n");
    assert!(
        e.contains("a step before the stop must change no data"),
        "{e}"
    );
    let e = error("      - swap: {from: nowhere, keep_old_as: /c.old}\n");
    assert!(e.contains("swap: nowhere is not a file of the task"), "{e}");
    assert!(e.starts_with("x.yaml:5:3:"), "points at the task: {e}");
    let checked = |check: &str| {
        Profile::parse(
            &profile("      - run: {name: a, command: [x]}\n").replace(
                "    steps:\n",
                &format!("    checks: [{check}]\n    steps:\n"),
            ),
            "x.yaml",
        )
    };
    for (check, says) in [
        (
            "{file: to, differs_from: source, why: w}",
            "names either has_any, or differs_from with at",
        ),
        (
            "{file: to, has_any: [r], differs_from: source, at: r, why: w}",
            "names either has_any, or differs_from with at",
        ),
        (
            "{file: to, differs_from: elsewhere, at: r, why: w}",
            "checks: elsewhere is not a file of the task",
        ),
    ] {
        let e = checked(check).unwrap_err().to_string();
        assert!(e.contains(says), "{check}: {e}");
    }
    checked("{file: to, differs_from: source, at: r, why: w}").unwrap();
    let without_config = |step: &str| {
        Profile::parse(
            &profile(step).replace("    config: {path: /c.yaml, role: r}\n", ""),
            "x.yaml",
        )
    };
    let e = without_config("      - swap: {from: to, keep_old_as: /c.old}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("swap: name the config file it replaces"), "{e}");
    let e = without_config("      - run: {name: a, command: [x, \"${file:source}\"]}\n")
        .unwrap_err()
        .to_string();
    assert!(e.contains("source is not a file of the task"), "{e}");
    without_config("      - run: {name: a, command: [x, \"${file:to}\"]}\n").unwrap();
    let e = Profile::parse(
        &profile("      - run: {name: a, command: [x]}\n").replace(
            "{name: to, value: FILE, file: true, help: h}",
            "{name: profile, help: h}",
        ),
        "x.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--profile is cutover's own option"), "{e}");
    let e = Profile::parse(
        &profile("      - run: {name: a, command: [x]}\n").replace(
            "{name: to, value: FILE, file: true, help: h}",
            "{name: admin-password, value: PW, help: h}",
        ),
        "x.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("--admin-password looks like a secret"), "{e}");
    let fine = profile(
        "      - run: {name: a, command: [x, \"${file:to}\", \"${arg:to}\", \"${HOME}\"]}\n",
    );
    Profile::parse(&fine, "x.yaml").unwrap();
}

#[test]
fn anchore_workers_are_found_by_the_service_their_command_starts() {
    let role = task::ServiceRole {
        service: "catalog".into(),
        after: words(&["anchore-manager", "service", "start"]),
        env: Some("ANCHORE_ENGINE_SERVICES".into()),
        all: Some("--all".into()),
    };
    let image_default = words(&[
        "/docker-entrypoint.sh",
        "anchore-manager",
        "service",
        "start",
        "--all",
    ]);
    let env = |v: &str| vec![format!("ANCHORE_ENGINE_SERVICES={v}")];
    let cases: &[(&[&str], Vec<String>, bool)] = &[
        (
            &[
                "/docker-entrypoint.sh",
                "anchore-manager",
                "service",
                "start",
                "--all",
            ],
            vec![],
            true,
        ),
        (
            &["anchore-manager", "service", "start", "catalog"],
            vec![],
            true,
        ),
        (
            &["/usr/bin/anchore-manager", "service", "start", "apiext"],
            vec![],
            false,
        ),
        (
            &["anchore-manager", "service", "start", "apiext", "catalog"],
            vec![],
            true,
        ),
        (&["anchore-manager", "service", "start"], vec![], false),
        (
            &["anchore-manager", "service", "start"],
            env("catalog simplequeue"),
            true,
        ),
        (
            &["anchore-manager", "service", "start", "apiext"],
            env("catalog"),
            false,
        ),
        (&["anchore-manager", "db", "upgrade"], vec![], false),
    ];
    for (command, env, runs) in cases {
        assert_eq!(
            role.runs(&words(command), env),
            *runs,
            "{command:?} {env:?}"
        );
    }
    // The variable wins over --all when it names services.
    assert!(!role.runs(&image_default, &env("apiext analyzer")));
    assert!(role.runs(&image_default, &env("   ")));
}

#[test]
fn a_migration_flag_follows_the_products_own_configuration() {
    let ssl = "credentials:\n  database:\n    db_connect_args:\n      ssl: true\n";
    let plain = "credentials:\n  database:\n    db_connect_args:\n      ssl: false\n";
    let command = words(&[
        "anchore-manager",
        "db",
        "--db-connect",
        "postgresql://${ANCHORE_DB_USER}@db/x",
        "${if:/config/config.yaml#credentials.database.db_connect_args.ssl|--db-use-ssl}",
        "upgrade",
    ]);
    for (config, expected) in [(Some(ssl), true), (Some(plain), false), (None, false)] {
        let files: Vec<(&str, &str)> = config
            .map(|c| ("/config/config.yaml", c))
            .into_iter()
            .collect();
        let words =
            template::expand_command(&command, &facts(&["ANCHORE_DB_USER=anchore"], &files))
                .unwrap();
        assert_eq!(
            words.contains(&"--db-use-ssl".to_string()),
            expected,
            "{words:?}"
        );
        assert!(words.contains(&"postgresql://anchore@db/x".to_string()));
        assert_eq!(words.len(), if expected { 6 } else { 5 });
    }
    assert!(
        template::check("${if:/config/config.yaml#ssl}", &[]).is_err(),
        "a condition names its word"
    );
}

#[test]
fn health_follows_the_products_own_port_and_tls() {
    let proget = shipped("proget");
    let plain = proget.health(&facts(&[], &[])).unwrap();
    assert_eq!((plain.port, plain.tls), (Some(80), false));
    assert_eq!(plain.path.as_deref(), Some("/health?format=json"));
    let moved = proget
        .health(&facts(
            &["ASPNETCORE_URLS=https://*:4443;http://+:8181"],
            &[],
        ))
        .unwrap();
    assert_eq!(moved.port, Some(8181), "the first http URL's port");
    let bare = proget
        .health(&facts(&["ASPNETCORE_URLS=http://localhost"], &[]))
        .unwrap();
    assert_eq!(bare.port, Some(80));
    let quay = shipped("quay");
    let mut with_key = facts(&[], &[]);
    assert_eq!(quay.health(&with_key).unwrap().port, Some(8080));
    with_key.present.insert("/conf/stack/ssl.key".into());
    let tls = quay.health(&with_key).unwrap();
    assert_eq!((tls.port, tls.tls), (Some(8443), true));
    assert_eq!(quay.files_to_test(), ["/conf/stack/ssl.key"]);
    let anchore = shipped("anchore-engine");
    assert_eq!(anchore.health(&facts(&[], &[])).unwrap().port, Some(8228));
    let moved = anchore
        .health(&facts(&["ANCHORE_SERVICE_PORT=9228"], &[]))
        .unwrap();
    assert_eq!(moved.port, Some(9228), "every service's port in its config");
    let wrong = anchore
        .health(&facts(&["ANCHORE_SERVICE_PORT=eighty"], &[]))
        .unwrap_err()
        .to_string();
    assert!(wrong.contains("is not a port"), "{wrong}");
}

#[test]
fn anchore_reads_its_database_where_its_config_says_or_refuses() {
    let anchore = shipped("anchore-engine");
    let db = anchore.database.as_ref().unwrap();
    let config = "/config/config.yaml";
    assert!(db.files(&[]).contains(&config.to_string()));
    let env = [
        "ANCHORE_DB_HOST=db",
        "ANCHORE_DB_PORT=5432",
        "ANCHORE_DB_NAME=anchore",
        "ANCHORE_DB_USER=anchore",
        "ANCHORE_DB_PASSWORD=pw-4711-secret",
    ];
    let with = |env: &[&str], db_connect: &str| {
        let text = format!("credentials:\n  database:\n    db_connect: '{db_connect}'\n");
        facts(env, &[(config, text.as_str())])
    };
    let image = "postgresql://${ANCHORE_DB_USER}:${ANCHORE_DB_PASSWORD}@${ANCHORE_DB_HOST}:${ANCHORE_DB_PORT}/${ANCHORE_DB_NAME}";
    let found = db.locate(&with(&env, image)).unwrap();
    assert_eq!(
        (found.host.as_str(), found.name.as_str()),
        ("db", "anchore")
    );
    let same = "postgresql://anchore:pw-4711-secret@db:5432/anchore";
    assert_eq!(
        db.locate(&with(&env, same)).unwrap(),
        found,
        "written out, the same"
    );
    assert_eq!(db.locate(&facts(&env, &[])).unwrap(), found, "no file read");
    for (env, db_connect, says) in [
        (
            &env[..],
            "postgresql://anchore:pw-4711-secret@other:5432/anchore",
            "names the database anchore@other:5432/anchore, but ANCHORE_DB_HOST",
        ),
        (
            &env[..],
            "postgresql://anchore:another-pw-0815@db:5432/anchore",
            "with another password than ANCHORE_DB_HOST",
        ),
        (
            &[][..],
            "postgresql://anchore:pw-4711-secret@db:5432/anchore",
            "names the database anchore@db:5432/anchore itself, where cutover does not read it",
        ),
        (
            &env[1..],
            image,
            "uses ${ANCHORE_DB_HOST}, which the container's environment does not set",
        ),
    ] {
        let refused = db.locate(&with(env, db_connect)).unwrap_err().to_string();
        assert!(refused.contains(says), "{refused}");
        assert!(
            !refused.contains("pw-4711-secret") && !refused.contains("another-pw-0815"),
            "{refused}"
        );
        if !says.starts_with("uses") {
            assert!(
                refused.contains("postgresql://${ANCHORE_DB_USER}:${ANCHORE_DB_PASSWORD}@")
                    && refused.contains("anchore-engine/blob/v1.1.0/conf/default_config.yaml"),
                "says how: {refused}"
            );
        }
    }
}

#[test]
fn quay_migrates_whatever_its_environment_says_and_never_crosses_into_3_0_unattended() {
    let quay = shipped("quay");
    let hop = for_hop(
        &quay,
        "v3.8.0",
        "v3.9.0",
        &facts(&["QUAYENTRY=registry"], &[]),
    )
    .unwrap();
    let migrate = hop.stage.migrate.unwrap();
    assert!(migrate
        .env
        .contains(&("QUAYENTRY".into(), "migrate".into())));
    assert!(migrate
        .env
        .contains(&("MIGRATION_VERSION".into(), "head".into())));
    let refused = for_hop(&quay, "v2.9.5", "v3.0.5", &facts(&[], &[]))
        .unwrap()
        .refusal
        .unwrap();
    assert!(refused.contains("V3_UPGRADE_MODE"), "{refused}");
    assert!(for_hop(&quay, "v3.0.5", "v3.1.3", &facts(&[], &[]))
        .unwrap()
        .refusal
        .is_none());
}

#[test]
fn proget_crossing_6_0_gets_its_connection_string_under_the_name_6_0_reads() {
    let proget = shipped("proget");
    let old = "Data Source=sql;Initial Catalog=ProGet;User ID=proget;Password=pw";
    let set = |env: &[&str]| {
        for_hop(&proget, "5.3.44", "6.0.1", &facts(env, &[]))
            .unwrap()
            .stage
            .env
            .set
    };
    let named = format!("SQL_CONNECTION_STRING={old}");
    assert_eq!(
        set(&[&named]),
        [("PROGET_SQL_CONNECTION_STRING".to_string(), old.to_string())]
    );
    let both = [
        named.as_str(),
        "PROGET_SQL_CONNECTION_STRING=Data Source=other",
    ];
    assert!(set(&both).is_empty(), "a set new name is left as it is");
    let neither = for_hop(&proget, "5.3.44", "6.0.1", &facts(&[], &[])).unwrap();
    assert_eq!(neither.refusal, None);
    assert!(
        for_hop(&proget, "6.0.1", "2022.1.0", &facts(&[&named], &[]))
            .unwrap()
            .stage
            .env
            .set
            .is_empty()
    );
}

#[test]
fn proget_5_2_and_older_are_refused_with_the_way_inedo_gives() {
    let proget = shipped("proget");
    assert_eq!(proget.upgrade_path, None, "no waypoint through 5.2");
    for (from, to) in [
        ("5.2.32", "5.3.10"),
        ("5.2.9", "25.0.13"),
        ("5.1.3", "5.2.32"),
    ] {
        let refused = for_hop(&proget, from, to, &facts(&[], &[]))
            .unwrap()
            .refusal
            .unwrap_or_else(|| panic!("{from} to {to} is refused"));
        for says in [
            "/usr/share/Inedo/SharedConfig/ProGet.config",
            "As of ProGet 5.3, PostgreSQL is no longer supported",
            "https://docs.inedo.com/docs/proget-5-3-upgrade-notes",
            "https://docs.inedo.com/docs/proget-upgrade-2026",
        ] {
            assert!(refused.contains(says), "{refused}");
        }
    }
    for (from, to) in [("5.3.10", "6.0.1"), ("5.3.44", "25.0.13")] {
        let hop = for_hop(&proget, from, to, &facts(&[], &[])).unwrap();
        assert_eq!(hop.refusal, None, "{from} to {to}");
    }
}

#[test]
fn proget_tells_the_follow_ups_its_vendor_lists_for_the_versions_crossed() {
    let proget = shipped("proget");
    let notes = |from, to| {
        for_hop(&proget, from, to, &facts(&[], &[]))
            .unwrap()
            .stage
            .notes
    };
    assert!(notes("22.0.5", "24.0.1")
        .iter()
        .any(|n| n.contains("retention rules")));
    assert!(notes("24.0.1", "25.0.1")
        .iter()
        .any(|n| n.contains("db_owner")));
    let (links, follow_ups): (Vec<String>, Vec<String>) = notes("25.0.1", "26.0.1")
        .into_iter()
        .partition(|n| n.starts_with("release notes of "));
    assert!(follow_ups.is_empty(), "{follow_ups:?}");
    assert_eq!(links.len(), 2, "{links:?}");
    assert!(
        links[0].starts_with("release notes of 26.0.1: https://docs.inedo.com/docs/proget-upgrade-2026 (profile proget (docs.inedo.com"),
        "{links:?}"
    );
    assert!(links[1].contains("https://my.inedo.com/downloads/issues"));
}

#[test]
fn each_shipped_profile_links_its_vendor_s_release_notes() {
    for (profile, from, to, url) in [
        ("proget", "24.0.1", "25.0.13", "https://docs.inedo.com/docs/proget-upgrade-2025"),
        ("buildmaster", "23.0.9", "24.0.2", "https://docs.inedo.com/docs/buildmaster-upgrade-2024"),
        ("otter", "23.0.1", "25.0.3", "https://docs.inedo.com/docs/otter-upgrade-2025"),
        ("quay", "v3.9.0", "v3.10.0", "https://github.com/quay/quay/blob/v3.10.0/CHANGELOG.md#v3.10.0"),
        ("quay", "v3.9.0", "v3.10.0", "https://access.redhat.com/documentation/en-us/red_hat_quay/3.10/html/red_hat_quay_release_notes/index"),
        ("anchore-engine", "v1.0.1", "v1.1.0", "https://github.com/anchore/anchore-engine/blob/v1.1.0/CHANGELOG.md"),
        ("devlake", "v0.21.0", "v1.0.0", "https://github.com/apache/incubator-devlake/releases/tag/v1.0.0"),
    ] {
        let links = shipped(profile).release_notes(from, to);
        assert!(
            links.iter().any(|l| l.url == url && l.version == to),
            "{profile} {from} to {to}: {links:?}"
        );
        assert!(links.iter().all(|l| l.from.starts_with(&format!("profile {profile} ("))));
    }
}

#[test]
fn a_step_kind_plans_itself_where_the_swap_needs_it() {
    let text = r#"
name: shop
description: a shop
match: [acme/shop]
steps:
  - exec:
      command: [shop, maintenance, "on"]
      in: old
      when: { to: ">=2" }
  - exec: { command: [shop, cache, warm], in: new, timeout: 1m }
  - call: { port: 8080, path: /go, while_path: /ready, while_status: 428 }
"#;
    let profile = Profile::parse(text, "shop.yaml").unwrap();
    let mut opts = crate::plan::UpgradeOptions::new(
        crate::plan::build::Target::Image(ImageRef::parse("127.0.0.1:5000/demo:2").unwrap()),
        crate::health::HealthPolicy::new(
            std::time::Duration::from_secs(10),
            std::time::Duration::from_secs(120),
        ),
    );
    opts.hop_steps = vec![profile.for_hop("1", "2", &Facts::default()).unwrap().stage];
    let (container, image) = crate::engine::successor::tests::fixture();
    let old = crate::engine::successor::Predecessor {
        inspect: &container,
        origin: &image,
    };
    let plan = crate::plan::plan_upgrade(&[old], &opts).unwrap();
    let steps: Vec<String> = plan.stages[0]
        .steps
        .iter()
        .map(|s| format!("{}: {}", s.name(), s.describe(&plan)))
        .collect();
    let at = |prefix: &str| steps.iter().position(|s| s.starts_with(prefix)).unwrap();
    assert!(
        steps[at("exec: run `shop maintenance on` inside fx-web (demo:1)")..]
            .iter()
            .position(|s| s.starts_with("stop:"))
            .is_some(),
        "the old one is switched before it stops: {steps:#?}"
    );
    assert!(steps[at("exec: run `shop maintenance on`")].ends_with("within 5m)"));
    assert_eq!(
        [
            at("start:"),
            at("call:"),
            at("await_healthy:"),
            at("exec: run `shop cache warm`")
        ],
        [
            at("start:"),
            at("start:") + 1,
            at("start:") + 2,
            at("await_healthy:") + 1
        ],
        "called as it starts, warmed once it serves: {steps:#?}"
    );
    assert!(steps[at("exec: run `shop cache warm`")]
        .contains("inside fx-web (demo:2) (must exit 0 within 1m)"));
    // Out of its bounds, a step adds nothing.
    let earlier = profile.for_hop("0.9", "1", &Facts::default()).unwrap();
    assert_eq!(placed(&earlier, Phase::BeforeDowntime).len(), 0);
    assert_eq!(placed(&earlier, Phase::AfterHealthy).len(), 1);
    // Written back as it was read.
    let shown = yaml_serde::to_string(&profile).unwrap();
    assert_eq!(Profile::parse(&shown, "shop.yaml").unwrap(), profile);
    // Only the named container of a group runs it.
    let hop = profile.for_hop("1", "2", &Facts::default()).unwrap();
    let other = Place {
        old: Slot::new("worker", 0),
        new: Slot::new("worker", 1),
        primary: false,
        companion: false,
    };
    assert!(hop
        .stage
        .parts
        .iter()
        .all(|p| p.steps(&other).iter().all(|s| s.name() != "exec")));
}

#[test]
fn a_step_is_read_with_its_kind_s_own_fields_and_any_when() {
    let head = "name: x\ndescription: y\nmatch: [a/b]\nsteps:\n";
    let error = |steps: &str| {
        Profile::parse(&format!("{head}{steps}"), "m.yaml")
            .unwrap_err()
            .to_string()
    };
    let e = error("  - note:\n      text: t\n      txt: u\n");
    assert!(
        e.starts_with("m.yaml:6:7: steps[0].note: unknown field `txt`, expected `text`"),
        "{e}"
    );
    let e = error("  - nte: { text: t }\n");
    assert!(
        e.contains("unknown variant `nte`, expected one of `migrate`"),
        "{e}"
    );
    let e = error("  - note: { text: t }\n    refuse: { why: w }\n");
    assert!(e.contains("a step is of one kind: note or refuse"), "{e}");
    let e = error("  - note: { text: t, when: { to: \"<2\" }, when: { to: \"<3\" } }\n");
    assert!(e.contains("duplicate field `when`"), "{e}");
    let e = error("  - exec: { command: [a], in: later }\n");
    assert!(
        e.contains("unknown variant `later`, expected `old` or `new`"),
        "{e}"
    );
    let ok = Profile::parse(
        &format!("{head}  - note:\n      when: {{ crossing: \"2.0.0\" }}\n      text: t\n"),
        "m.yaml",
    )
    .unwrap();
    assert_eq!(ok.steps[0].when.crossing.as_deref(), Some("2.0.0"));
}

/// A profile file is loaded, or refused as `FILE:LINE:COLUMN: message` with a line of the
/// file, as editors read it.
fn loaded_or_refused_at_a_line(text: &[u8]) -> Result<(), TestCaseError> {
    let scratch = Scratch::new("profile");
    let path = scratch.path().join("mine.yaml");
    std::fs::write(&path, text).unwrap();
    let origin = path.display().to_string();
    match load_file(&path) {
        Ok(loaded) => prop_assert_eq!(loaded.origin, origin),
        Err(ProfileError::Invalid {
            origin: named,
            line,
            column,
            message,
        }) => {
            said(&message)?;
            prop_assert_eq!(named, origin);
            let lines = String::from_utf8_lossy(text).lines().count();
            prop_assert!(line >= 1 && line <= lines + 1, "line {} of {}", line, lines);
            prop_assert!(column >= 1);
        }
        Err(e) => {
            let e = e.to_string();
            prop_assert!(e.starts_with(&format!("{origin}: ")), "{}", e);
        }
    }
    Ok(())
}

/// A task's options as a person types them: a task reads them or says what is wrong.
fn task_options_read_or_refused(words: &[String]) -> Result<(), TestCaseError> {
    for loaded in &Catalog::builtin().profiles {
        for task in loaded.profile.tasks.values() {
            if let Err(e) = task.parse_args(words) {
                said(&e)?;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(ARBITRARY))]
    #[test]
    fn any_text_is_a_profile_or_refused_at_a_line(text in text()) {
        loaded_or_refused_at_a_line(text.as_bytes())?;
    }

    #[test]
    fn any_words_are_a_task_s_options_or_refused(
        words in proptest::collection::vec(prop_oneof![text(), "--[a-z-]{1,12}(=[ -~]{0,8})?"], 0..6)
    ) {
        task_options_read_or_refused(&words)?;
    }
}

proptest! {
    #![proptest_config(cases(MUTATED))]
    #[test]
    fn a_mistyped_shipped_profile_is_loaded_or_refused_at_a_line(
        text in mutated(BUILTIN.iter().map(|(_, text)| text.to_string()).collect())
    ) {
        loaded_or_refused_at_a_line(&text)?;
    }
}
