//! The check of a running product against its profile, before anything stops.
//!
//! A profile is a belief about someone else's software, and vendors change it (ProGet 2026
//! moved `/health` to plain text). So before any downtime the profile's rules for the version
//! that runs now are tried on the running container: its health check must pass, its version
//! check must report the current tag, the database it names must be found, with the extensions
//! the product needs. A rule the product disagrees with stops the upgrade with nothing changed
//! and says which, quoting what the product answered. `cutover profiles check` runs the same
//! checks alone, and also proves the database can be dumped and restored.

use crate::engine::Container;
use serde::Serialize;

use super::backup::{database_server, embedded_database};
use super::group::{choose_profile, with_its_group};
use super::settings::{self, Given};
use crate::backup::location::{DatabaseSpec, DbEngine, Found};
use crate::backup::{self, BackupTarget, DatabaseTarget, Server};
use crate::engine::facts::Facts;
use crate::engine::reference::ImageRef;
use crate::engine::Engine;
use crate::error::Error;
use crate::health::{self, HealthPolicy};
use crate::plan::steps::{CheckVersion, VersionSource};
use crate::plan::Slot;
use crate::profile::{Catalog, Choice};

/// One rule of the profile, tried on the running product.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub container: String,
    /// `health`, `version`, `database` or `extensions`.
    pub check: &'static str,
    /// The profile's rule, as people read it.
    pub rule: String,
    pub passed: bool,
    /// What the product answered, secrets masked.
    pub answer: String,
    /// The cause lies outside the product (its database server is stopped): the profile is
    /// not in question, and the refusal says only that, with what to do.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub outside: bool,
    /// Where the profile read the rule (its `sources`), for `cutover profiles check`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The rules of a profile, as they apply to the version that runs now (with the command line's
/// options over them).
pub struct LiveRules<'a> {
    pub health: &'a HealthPolicy,
    pub version: Option<&'a VersionSource>,
    /// The database the profile names, checked through the first container of the group.
    pub database: Option<&'a DatabaseSpec>,
    /// Also prove that the database can be dumped and put back (an upgrade proves it when it
    /// plans its backup).
    pub dump: bool,
}

/// Every rule tried on every running container of the product's group (the first is the one
/// named), the database through the first.
pub async fn check_group(
    engine: &dyn Engine,
    members: &[(&Container, &Facts)],
    rules: &LiveRules<'_>,
) -> Vec<Finding> {
    let mut findings = Vec::new();
    for (i, (c, facts)) in members.iter().enumerate() {
        let rules = LiveRules {
            database: rules.database.filter(|_| i == 0),
            ..*rules
        };
        findings.extend(check(engine, c, facts, &rules).await);
    }
    findings
}

/// The check before any downtime: `Ok` when the product answers as its profile says (what
/// each rule found is logged), a refusal that names each rule it disagrees with otherwise.
pub async fn require_match(
    engine: &dyn Engine,
    profile: &str,
    members: &[(&Container, &Facts)],
    rules: &LiveRules<'_>,
) -> crate::Result<()> {
    let findings = check_group(engine, members, rules).await;
    if let Some(why) = refusal(profile, &findings) {
        return Err(Error::Refused(why));
    }
    for f in &findings {
        tracing::info!(
            "{} matches its profile's {} rule: {}",
            f.container,
            f.check,
            f.answer
        );
    }
    Ok(())
}

/// Every rule of the profile that applies, tried on one running container.
async fn check(
    engine: &dyn Engine,
    c: &Container,
    facts: &Facts,
    rules: &LiveRules<'_>,
) -> Vec<Finding> {
    let name = c.name().to_string();
    let id = c.id().to_string();
    let finding = |check, rule: String, result: Result<String, String>| Finding {
        container: name.clone(),
        check,
        rule,
        passed: result.is_ok(),
        answer: result.unwrap_or_else(|e| e),
        outside: false,
        source: None,
    };
    let mut findings = Vec::new();
    if let Some(rule) = rules.health.named_check() {
        let seen = match health::probe_now(engine, &id, rules.health).await {
            Ok(seen) => seen,
            Err(e) => Err(e.to_string()),
        };
        findings.push(finding("health", rule, seen));
    }
    if let Some(source) = rules.version {
        findings.push(finding(
            "version",
            format!("{source} reports the tag it runs"),
            reports_current(engine, c, &id, source, rules.health).await,
        ));
    }
    if let Some(spec) = rules.database {
        match database(engine, c, facts, spec, rules.dump).await {
            Ok(answers) => findings.extend(
                answers
                    .into_iter()
                    .map(|(check, rule, result)| finding(check, rule, result)),
            ),
            Err(cause) => findings.push(Finding {
                outside: true,
                ..finding("database", "its database server runs".into(), Err(cause))
            }),
        }
    }
    findings
}

/// The version the running container reports, against the tag it runs.
async fn reports_current(
    engine: &dyn Engine,
    c: &Container,
    id: &str,
    source: &VersionSource,
    health: &HealthPolicy,
) -> Result<String, String> {
    let image = c.image().to_string();
    // A floating tag (`latest`) names no version: there is nothing to compare with.
    let Some(tag) = ImageRef::parse(&image)
        .and_then(|r| r.tag)
        .filter(|t| crate::version::TagVersion::parse(t).is_some())
    else {
        return Ok(format!("{image} names no version to compare with"));
    };
    let check = CheckVersion {
        slot: Slot::new(c.name(), 0),
        source: source.clone(),
        want: tag.clone(),
        port: health.port,
        tls: health.tls,
    };
    let reported = check.read(engine, id).await.map_err(|e| e.to_string())?;
    match crate::plan::steps::reports(&tag, &reported) {
        true => Ok(format!("it reports {reported}")),
        false => Err(format!(
            "it reports {reported:?}, which is not its tag {tag}"
        )),
    }
}

/// The database the profile names: found where the profile looks, served by a running
/// container (or on a volume, embedded), with the extensions the product needs; dumped and
/// restorable when asked. Its server's container found stopped is a cause outside the product
/// (`Err`), whatever else fails because of it.
async fn database(
    engine: &dyn Engine,
    c: &Container,
    facts: &Facts,
    spec: &DatabaseSpec,
    dump: bool,
) -> Result<Vec<Answer>, String> {
    let rule = format!("the database where the profile looks ({})", spec.describe());
    let location = match spec.find(facts) {
        Err(e) => return Ok(vec![("database", rule, Err(e.to_string()))]),
        Ok(Found::Embedded(path)) => {
            let result = embedded_database(c, &path)
                .map(|v| format!("its embedded database is on {} ({})", v.path, v.source))
                .map_err(|e| e.to_string());
            return Ok(vec![("database", rule, result)]);
        }
        Ok(Found::Server(location)) => location,
    };
    let at = format!(
        "{} {} on {}:{} ({})",
        location.engine.name(),
        location.name,
        location.host,
        location.port,
        location.from
    );
    if location.engine == DbEngine::Sqlserver {
        return Ok(vec![(
            "database",
            rule,
            Ok(format!(
                "{at}: cutover cannot dump SQL Server; back it up with its own tools"
            )),
        )]);
    }
    if let Ok(Some(Server::Stopped(container))) =
        backup::database_container(engine, c, &location.host).await
    {
        return Err(format!(
            "its database ({at}) is served by the container {container}, which is not running: start it (`docker start {container}`), then try again"
        ));
    }
    let extensions = spec.extensions_of(location.engine);
    let server = match database_server(engine, c, spec, location).await {
        Ok(Some(server)) => server,
        // A database outside this host's containers is one an upgrade without a backup can use,
        // but nothing more can be checked of it.
        Ok(None) if !dump && extensions.is_empty() => {
            return Ok(vec![("database", rule, Ok(format!("{at}, outside this host's containers")))])
        }
        Ok(None) => {
            return Ok(vec![(
                "database",
                rule,
                Err(format!("{at}, which is no container on a network the product shares: cutover cannot reach it to check it")),
            )])
        }
        Err(e) => return Ok(vec![("database", rule, Err(e.to_string()))]),
    };
    let mut found = vec![(
        "database",
        rule,
        Ok(format!("{at}, served by {}", server.container)),
    )];
    found.extend(served(engine, c, spec, &server, dump).await);
    Ok(found)
}

/// A rule's kind, the rule, and what the product answered.
type Answer = (&'static str, String, Result<String, String>);

/// What the server of the product's database must allow: a dump and its restore when asked,
/// and the extensions the product needs.
async fn served(
    engine: &dyn Engine,
    c: &Container,
    spec: &DatabaseSpec,
    server: &DatabaseTarget,
    dump: bool,
) -> Vec<Answer> {
    let mut found = Vec::new();
    if dump {
        let target = BackupTarget {
            database: Some(server.clone()),
            volumes: Vec::new(),
        };
        found.push((
            "database",
            "it can be dumped, and a restore could put the dump back".to_string(),
            backup::check_database(engine, c, server)
                .await
                .map(|()| format!("{} can do both", target.describe()))
                .map_err(|e| e.to_string()),
        ));
    }
    let wanted = spec.extensions_of(server.engine);
    if !wanted.is_empty() {
        let rule = format!("the database has {}", wanted.join(", "));
        let result = match backup::missing_extensions(engine, c, server, wanted).await {
            Ok(missing) if missing.is_empty() => Ok("they are installed".to_string()),
            Ok(missing) => Err(format!(
                "{} is not installed: a superuser must run `CREATE EXTENSION IF NOT EXISTS {};` in {}",
                missing.join(", "),
                missing[0],
                server.name
            )),
            Err(e) => Err(e.to_string()),
        };
        found.push(("extensions", rule, result));
    }
    found
}

/// `cutover profiles check NAME`: every rule of the container's profile tried on it and on the
/// other containers of its group, the database proven dumpable and restorable; the profile's
/// name and what each rule found.
pub async fn check_container(
    engine: &dyn Engine,
    catalog: &Catalog,
    name: &str,
    choice: &Choice,
) -> crate::Result<(String, Vec<Finding>)> {
    let c = engine
        .inspect(name)
        .await?
        .ok_or_else(|| Error::Refused(format!("there is no container named {name}")))?;
    if !c.is_running() {
        return Err(Error::Refused(format!(
            "{name} is not running: a profile is checked against the running product; start it first"
        )));
    }
    crate::secrets::register_env(c.env());
    let (loaded, _) = choose_profile(catalog, choice, &c)?.ok_or_else(|| {
        Error::Refused(format!(
            "{name} follows no product profile; name one with --profile NAME|FILE"
        ))
    })?;
    let profile = &loaded.profile;
    let members: Vec<(Container, Facts)> = with_its_group(engine, catalog, &loaded, c)
        .await?
        .into_iter()
        .map(|(_, c, f)| (c, f))
        .collect();
    let given = Given {
        profile: choice.clone(),
        ..Given::default()
    };
    let health =
        settings::resolve(&given, Some((profile, &members[0].1)), &members[0].0).health()?;
    let version = profile.expect_version.clone().map(VersionSource::Url);
    let rules = LiveRules {
        health: &health,
        version: version.as_ref(),
        database: profile.database.as_ref(),
        dump: true,
    };
    let members: Vec<(&Container, &Facts)> = members.iter().map(|(c, f)| (c, f)).collect();
    let mut findings = check_group(engine, &members, &rules).await;
    for f in findings.iter_mut().filter(|f| !f.outside) {
        f.source = profile.sources.get(f.check).cloned();
    }
    Ok((profile.name.clone(), findings))
}

/// Why the upgrade stops, when a rule failed: each rule the product disagrees with, what it
/// answered, and what to do.
pub fn refusal(profile: &str, findings: &[Finding]) -> Option<String> {
    // A cause outside the product explains what else failed: it alone is said.
    let outside: Vec<String> = findings
        .iter()
        .filter(|f| !f.passed && f.outside)
        .map(|f| format!("{}: {}", f.container, f.answer))
        .collect();
    if !outside.is_empty() {
        return Some(format!("nothing was changed: {}", outside.join("; ")));
    }
    let failed: Vec<String> = findings
        .iter()
        .filter(|f| !f.passed)
        .map(|f| format!("  - {} {}: {}: {}", f.container, f.check, f.rule, f.answer))
        .collect();
    let first = findings.iter().find(|f| !f.passed)?;
    Some(format!(
        "the running product does not answer as profile {profile} says, so its upgrade could not be judged; nothing was changed:\n{}\nFix or replace the profile (`cutover profiles show {profile}`; a file of the same name in /etc/cutover/profiles replaces it) or give the --health-* and --expect-version options; `cutover profiles check {}` runs these checks alone",
        failed.join("\n"),
        first.container
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(container: &str, check: &'static str, passed: bool, answer: &str) -> Finding {
        Finding {
            container: container.into(),
            check,
            rule: format!("the {check} rule"),
            passed,
            answer: answer.into(),
            outside: false,
            source: None,
        }
    }

    #[test]
    fn a_stopped_database_server_is_said_alone_with_what_to_do_not_as_a_broken_profile() {
        let findings = [
            finding("catalog", "health", false, "answered HTTP 500"),
            Finding {
                outside: true,
                ..finding(
                    "catalog",
                    "database",
                    false,
                    "its database is served by the container db, which is not running: start it",
                )
            },
        ];
        let why = refusal("anchore-engine", &findings).unwrap();
        assert!(why.contains("which is not running: start it"), "{why}");
        assert!(
            !why.contains("Fix or replace the profile") && !why.contains("HTTP 500"),
            "{why}"
        );
    }

    #[test]
    fn a_refusal_names_each_rule_the_product_disagrees_with_and_what_it_answered() {
        let passing = [finding("proget", "health", true, "answered HTTP 200")];
        assert_eq!(refusal("proget", &passing), None);
        let findings = [
            finding("proget", "health", true, "answered HTTP 200"),
            finding(
                "proget",
                "version",
                false,
                "it reports \"2025.1 (Build 1)\"",
            ),
            finding("proget-2", "database", false, "not set"),
        ];
        let why = refusal("proget", &findings).unwrap();
        assert!(
            why.contains("does not answer as profile proget says"),
            "{why}"
        );
        assert!(
            why.contains("  - proget version: the version rule: it reports \"2025.1 (Build 1)\""),
            "{why}"
        );
        assert!(
            why.contains("  - proget-2 database: the database rule: not set"),
            "{why}"
        );
        assert!(
            !why.contains("answered HTTP 200"),
            "only what disagrees: {why}"
        );
        assert!(why.contains("`cutover profiles check proget`"), "{why}");
    }
}
