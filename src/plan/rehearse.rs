//! The plan of a rehearsal: the upgrade's migrations tried, hop by hop, from the new images,
//! against a copy of the product's database on a network of their own, while production serves
//! untouched. A pure function, like [`super::plan_upgrade`], whose hops and specs it shares.

use std::collections::BTreeMap;

use crate::engine::Container;

use super::build::{member, register_commands, UpgradeOptions};
use super::part::{Phase, Place};
use super::steps::{
    AwaitHealthy, CheckVersion, Pull, RehearseDump, RehearseMigrate, RehearseNetwork,
    RehearseRemove, RehearseRestore, RehearseServer, RehearseStart, RehearseStop,
};
use super::{Kind, Plan, PlanError, Slot, SlotInfo, Stage, Step};
use crate::backup::rehearsal::{CopyServer, LABEL};
use crate::backup::DatabaseTarget;
use crate::engine::successor::{self, Predecessor, SuccessorSpec};
use crate::health::HealthPolicy;

/// What a rehearsal needs besides the upgrade's options.
pub struct Rehearsal {
    /// The product's database, which is dumped.
    pub database: DatabaseTarget,
    /// The variables that point the product at the copy (see
    /// [`crate::backup::location::DatabaseSpec::point_at`]); they hold the password.
    pub env: Vec<(String, String)>,
    /// Files (path, bytes) put into each of its containers before it starts: the directory of
    /// the product's connection file, the file pointed at the copy. They hold the password.
    pub files: Vec<(String, Vec<u8>)>,
}

impl Rehearsal {
    /// `spec` made one of the rehearsal's containers (see [`isolate`]; no scratch space over
    /// where its files go), and proved so (see [`isolated`]).
    fn contain(
        &self,
        spec: &mut SuccessorSpec,
        production: &Container,
        copy: &CopyServer,
    ) -> Result<(), PlanError> {
        let paths: Vec<&str> = self.files.iter().map(|(path, _)| path.as_str()).collect();
        isolate(spec, production, copy, &self.env, &paths);
        isolated(spec, copy)
    }
}

/// The one-shot of the rehearsal's migrations.
pub fn migrate_name(name: &str) -> String {
    format!("{name}-cutover-rehearse-migrate")
}

/// The new version, started on the migrated copy.
pub fn start_name(name: &str) -> String {
    format!("{name}-cutover-rehearse-app")
}

/// The rehearsal of the upgrade of `old` that `opts` describe.
pub fn plan_rehearsal(
    old: &Predecessor<'_>,
    opts: &UpgradeOptions,
    rehearsal: &Rehearsal,
) -> Result<Plan, PlanError> {
    let hops = opts.hops();
    register_commands(&hops);
    let m = member(old, opts, &hops, true)?;
    let name = m.name.clone();
    let copy = CopyServer::of(&name);
    let slot = Slot::new(&name, 0);
    let one_shot = migrate_name(&name);
    let mut steps: Vec<Step> = Vec::new();
    for (i, image) in m.images.iter().enumerate().skip(1) {
        if !m.images[1..i].contains(image) {
            steps.push(
                Pull {
                    image: image.clone(),
                }
                .into(),
            );
        }
    }
    steps.push(RehearseNetwork { copy: copy.clone() }.into());
    steps.push(
        RehearseServer {
            slot: slot.clone(),
            database: rehearsal.database.clone(),
            copy: copy.clone(),
        }
        .into(),
    );
    steps.push(
        RehearseDump {
            slot: slot.clone(),
            database: rehearsal.database.clone(),
        }
        .into(),
    );
    steps.push(
        RehearseRestore {
            slot: slot.clone(),
            database: rehearsal.database.clone(),
            copy: copy.clone(),
        }
        .into(),
    );
    let mut slots = BTreeMap::from([(
        slot.clone(),
        SlotInfo {
            image: m.images[0].clone(),
            id: Some(old.inspect.id().to_string()),
        },
    )]);
    let mut carried = serde_json::Value::Null;
    let mut migrates = false;
    for (stage, hop) in hops.iter().enumerate() {
        let image = m.images[stage + 1].clone();
        if let Some(migration) = &hop.migrate {
            migrates = true;
            let mut spec = successor::one_shot_spec(
                &m.specs[stage],
                &migration.command,
                migration.entrypoint.as_deref(),
            );
            successor::set_env(&mut spec, &migration.env);
            rehearsal.contain(&mut spec, old.inspect, &copy)?;
            steps.push(
                RehearseMigrate {
                    run: migration.one_shot(slot.clone(), one_shot.clone(), image.clone(), spec),
                    files: rehearsal.files.clone(),
                    copy: Some(copy.clone()),
                }
                .into(),
            );
        }
        // Named after its container, which is what people see of it.
        let started = Slot::new(&start_name(&name), stage as u32 + 1);
        let at = Place {
            old: slot.clone(),
            new: started.clone(),
            primary: true,
            companion: false,
        };
        let parts: Vec<Step> = hop
            .parts
            .iter()
            .filter(|p| p.phase() == Phase::Started)
            .flat_map(|p| p.steps(&at))
            .collect();
        let start_migrates = hop.migrates_at_start || parts.iter().any(|s| s.traits().migrates);
        migrates |= start_migrates;
        // A hop's version is started where its start migrates the copy (as it starts, or by the
        // profile's call on it), and the last hop's always: it must serve on the migrated data.
        if !start_migrates && stage + 1 < hops.len() {
            continue;
        }
        let mut spec = m.specs[stage].clone();
        rehearsal.contain(&mut spec, old.inspect, &copy)?;
        // What the dry run shows: the rehearsal's container, not production's configuration.
        carried = successor::masked(&spec);
        slots.insert(
            started.clone(),
            SlotInfo {
                image: image.clone(),
                id: None,
            },
        );
        steps.push(
            RehearseStart {
                slot: started.clone(),
                name: start_name(&name),
                spec: Box::new(spec),
                files: rehearsal.files.clone(),
                copy: Some(copy.clone()),
            }
            .into(),
        );
        steps.extend(parts);
        steps.push(
            AwaitHealthy {
                slot: started.clone(),
                policy: health(&opts.health, old.inspect),
            }
            .into(),
        );
        if let Some(source) = &hop.expect_version {
            steps.push(
                CheckVersion {
                    slot: started.clone(),
                    source: source.clone(),
                    want: super::build::short_tag(&image),
                    port: opts.health.port,
                    tls: opts.health.tls,
                }
                .into(),
            );
        }
        steps.push(
            RehearseStop {
                slot: started,
                timeout_secs: old.inspect.stop_timeout(),
            }
            .into(),
        );
    }
    if !migrates {
        return Err(PlanError::NothingToRehearse(name));
    }
    steps.push(
        RehearseRemove {
            copy,
            containers: vec![one_shot, start_name(&name)],
        }
        .into(),
    );
    let current = m.images[0].clone();
    Ok(Plan {
        kind: Kind::Rehearsal,
        container: name.clone(),
        members: vec![name.clone()],
        image_from: current.clone(),
        image_to: m.images.last().cloned().unwrap_or_default(),
        slots,
        // Production does not move.
        stages: vec![Stage {
            from: current.clone(),
            to: current,
            steps,
        }],
        carried,
        profile: None,
        task: None,
        notes: Vec::new(),
    })
}

/// The upgrade's health policy as the rehearsal's container can be asked it. A URL on the host
/// reaches production, which serves throughout: one on a port production publishes becomes
/// that container port with the URL's path; another is dropped, the rest of the policy kept.
pub fn health(policy: &HealthPolicy, production: &Container) -> HealthPolicy {
    let Some(url) = policy.url.as_deref() else {
        return policy.clone();
    };
    let parsed = reqwest::Url::parse(url).ok();
    let published = |host_port: u16| production.tcp_port_published_as(host_port);
    let port = parsed
        .as_ref()
        .and_then(|u| u.port_or_known_default())
        .and_then(published);
    HealthPolicy {
        url: None,
        port: port.or(policy.port),
        path: match (port, &parsed) {
            (Some(_), Some(u)) => match u.query() {
                Some(query) => format!("{}?{query}", u.path()),
                None => u.path().to_string(),
            },
            _ => policy.path.clone(),
        },
        tls: match (port, &parsed) {
            (Some(_), Some(u)) => u.scheme() == "https",
            _ => policy.tls,
        },
        ..policy.clone()
    }
}

/// Makes a container of the product's configuration a rehearsal's: on the rehearsal's network
/// alone, with none of production's volumes, binds, links, host entries, ports or namespaces
/// (every place production mounts gets an empty scratch space instead, but those that will
/// hold files put in at `paths`, which a scratch space mounted over them would hide), its
/// connection pointed at the copy (`env`), and labelled as the rehearsal's.
pub fn isolate(
    spec: &mut SuccessorSpec,
    production: &Container,
    copy: &CopyServer,
    env: &[(String, String)],
    paths: &[&str],
) {
    successor::set_env(spec, env);
    let mut labels = vec![(LABEL.to_string(), copy.product.clone())];
    // Its ports are not published: the default probe asks the port production's is asked on.
    if let Some(port) = crate::health::probe_port(production) {
        labels.push((
            crate::health::PROBE_PORT_LABEL.to_string(),
            port.to_string(),
        ));
    }
    let scratch: Vec<String> = production
        .mounts()
        .into_iter()
        .filter(|m| !m.destination.is_empty() && !paths.iter().any(|p| m.holds(p)))
        .map(|m| m.destination)
        .collect();
    spec.isolate(&copy.network, &labels, &scratch);
}

/// Why a rehearsal's container could reach something of production's, or `Ok`: checked on
/// every container a rehearsal creates, whatever built it.
pub fn isolated(spec: &SuccessorSpec, copy: &CopyServer) -> Result<(), PlanError> {
    let reaches = spec.reaches_beyond(&copy.network);
    match reaches.is_empty() {
        true => Ok(()),
        false => Err(PlanError::NotIsolated {
            product: copy.product.clone(),
            reaches: reaches.join(", "),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::engine::successor::tests::fixture;

    /// The fixture publishes 8080 on 127.0.0.1:8080: a URL there becomes the container's port.
    #[test]
    fn a_health_url_on_productions_published_port_asks_the_copys_container_port() {
        let (container, _) = fixture();
        let mut policy = HealthPolicy::new(Duration::from_secs(1), Duration::from_secs(9));
        policy.url = Some("http://127.0.0.1:8080/health?full=1".into());
        let asked = health(&policy, &container);
        assert_eq!(
            (asked.url, asked.port, asked.path.as_str()),
            (None, Some(8080), "/health?full=1")
        );
        policy.url = Some("http://127.0.0.1:9999/".into());
        let asked = health(&policy, &container);
        assert_eq!(
            (asked.url, asked.port),
            (None, None),
            "not production's: dropped"
        );
    }

    /// A real container's one-shot (two networks, a published port, a bind and a volume) keeps
    /// none of them once made a rehearsal's: every place production mounts is scratch space.
    #[test]
    fn a_one_shot_made_a_rehearsals_keeps_nothing_of_productions() {
        let (container, image) = fixture();
        let old = Predecessor {
            inspect: &container,
            origin: &image,
        };
        let mut spec = successor::one_shot_spec(
            &successor::successor_spec(&old, "demo:2"),
            &["migrate".into()],
            None,
        );
        let copy = CopyServer::of("web");
        let refused = isolated(&spec, &copy).unwrap_err().to_string();
        for leak in ["mounts", "another network"] {
            assert!(refused.contains(leak), "{leak}: {refused}");
        }
        let pointed = [(
            "DB_URL".to_string(),
            "postgres://u:p@cutover-rehearsal-db/x".to_string(),
        )];
        isolate(&mut spec, &container, &copy, &pointed, &[]);
        assert_eq!(isolated(&spec, &copy), Ok(()));
        assert_eq!(
            spec.scratch().len(),
            2,
            "/bind and /data are empty scratch space: {:?}",
            spec.scratch()
        );
        assert!(spec
            .env()
            .contains(&"DB_URL=postgres://u:p@cutover-rehearsal-db/x".to_string()));
        assert_eq!(spec.label(LABEL), Some("web"));
        // Files put in at /data (a connection's file) must not lie under a scratch space.
        let mut spec = successor::successor_spec(&old, "demo:2");
        isolate(
            &mut spec,
            &container,
            &copy,
            &[],
            &["/data/conf/config.yaml"],
        );
        assert_eq!(isolated(&spec, &copy), Ok(()));
        assert_eq!(spec.scratch(), ["/bind"], "the files' mount is not hidden");
    }
}
