//! Clusters spread over a fleet's hosts. Each product whose profile groups by database has its
//! vendor stop every container on the database before the schema changes (Quay: "Shutdown the
//! Quay Enterprise cluster: Remove all containers from service", coreos/docs
//! quay-enterprise/upgrade-quay.md; Anchore: `db upgrade` "requires *all* anchore-engine
//! services to be stopped"; DevLake: never two instances on one database). So the containers
//! of one product that name the same database server from several hosts move as one cluster
//! (see [`crate::plan::steps::gate`]), only as a whole and to one version; and one whose
//! database may also serve a host that could not be read is held back.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use crate::auto::{
    judge, not_attempted, rehearse_first, request, Ended, PassOutcome, PassResult, PassSettings,
};
use crate::discover::check::{
    self, discover_fleet, FleetHost, FleetWatch, Selection, Status, Unreached,
};
use crate::engine::registry::RegistryClient;
use crate::fleet::host_of;
use crate::fleet::Host;
use crate::ops::group::Node;
use crate::ops::preflight::Prepared;
use crate::ops::settings::Given;
use crate::ops::upgrade;
use crate::plan::steps::gate::{Cluster, ClusterRecord, Gate, Moves};
use crate::profile::Catalog;
use crate::run::{FirstSeen, Interrupt};
use crate::Result;

impl FleetWatch {
    /// [`check::check`] over the fleet, with its clusters over hosts (see [`form`]).
    pub async fn check(&self, registry: &RegistryClient, first_seen: &FirstSeen) -> Vec<Status> {
        let mut statuses = check::check(registry, first_seen, &self.watched).await;
        form(&mut statuses, &self.nodes, &self.unreached);
        statuses
    }
}

/// What a node's place in the fleet allows.
enum Place<'a> {
    /// On its own, or with the other nodes of its one host.
    Alone,
    /// With these nodes on other hosts, itself included, the one that migrates first.
    Cluster(Vec<&'a Node>),
    /// Neither: why not.
    Held(String),
}

fn place<'a>(node: &Node, nodes: &'a [Node], unreached: &[Unreached]) -> Place<'a> {
    let reachable = !node.database.local || !node.database.published.is_empty();
    if reachable && !unreached.is_empty() {
        let hosts: Vec<&str> = unreached.iter().map(|u| u.host.as_str()).collect();
        return Place::Held(format!(
            "its database {} may serve other hosts, and {} could not be read: a {} container there on the same database would be left on a schema it may refuse",
            node.database,
            hosts.join(", "),
            node.profile
        ));
    }
    let cluster = cluster_of(node, nodes);
    match cluster
        .iter()
        .any(|n| host_of(&n.container) != host_of(&node.container))
    {
        true => Place::Cluster(cluster),
        false => Place::Alone,
    }
}

fn names(cluster: &[&Node]) -> String {
    let names: Vec<&str> = cluster.iter().map(|n| n.container.as_str()).collect();
    format!(
        "{}, all on the database {}",
        names.join(", "),
        cluster[0].database
    )
}

/// Marks each eligible node of a cluster over hosts with the cluster's nodes, or holds it back
/// when the cluster cannot move as a whole. Containers are `HOST/NAME`.
pub fn form(statuses: &mut [Status], nodes: &[Node], unreached: &[Unreached]) {
    let mut decided: Vec<(usize, std::result::Result<Vec<String>, String>)> = Vec::new();
    for (i, status) in statuses.iter().enumerate().filter(|(_, s)| s.eligible) {
        let Some(node) = nodes.iter().find(|n| n.container == status.container) else {
            continue;
        };
        let decision = match place(node, nodes, unreached) {
            Place::Alone => continue,
            Place::Held(why) => Err(format!("held back: {why}")),
            Place::Cluster(cluster) => match cluster.iter().find_map(|n| unfit(n, status, statuses)) {
                Some(why) => Err(format!(
                    "held back: its cluster over hosts ({}) moves only as a whole and to one version, and {why}",
                    names(&cluster)
                )),
                None => Ok(cluster.iter().map(|n| n.container.clone()).collect()),
            },
        };
        decided.push((i, decision));
    }
    for (i, decision) in decided {
        let status = &mut statuses[i];
        match decision {
            Ok(cluster) => status.cluster = cluster,
            Err(why) => {
                status.eligible = false;
                status.held_back = true;
                status.reason = why;
            }
        }
    }
}

/// Why a command that changes one container or its database (`upgrade`, `rollback`,
/// `restore`, `task`) must not touch `container` (`HOST/NAME` of the config file's fleet) alone: it is
/// a node of a cluster over hosts, or may be. Reads every host of the fleet.
pub async fn refusal(given: &Given, catalog: &Catalog, container: &str) -> Result<Option<String>> {
    let connected = crate::fleet::connect(&given.config.hosts).await;
    let hosts = FleetHost::all(&connected);
    let fleet = discover_fleet(&hosts, given, catalog, &Selection::OptedIn).await?;
    let Some(node) = fleet.nodes.iter().find(|n| n.container == container) else {
        return Ok(None);
    };
    Ok(match place(node, &fleet.nodes, &fleet.unreached) {
        Place::Alone => None,
        Place::Held(why) => Some(format!("{container}: {why}")),
        Place::Cluster(cluster) => Some(format!(
            "{container} is a node of a cluster over hosts ({}): its vendor stops every node before the schema changes, so it moves only with the others; opt them all in (label cutover.enable=true) and run `cutover auto` with this config file, which moves them together",
            names(&cluster)
        )),
    })
}

/// The nodes of `node`'s product that share its database, itself included: those beside the
/// database's container first (only they can back it up), then in the fleet's order.
/// Taken whole: two nodes of the database's host that name it differently (its container, and
/// the port it publishes) share it through the nodes of other hosts, and are one cluster.
fn cluster_of<'a>(node: &Node, nodes: &'a [Node]) -> Vec<&'a Node> {
    let shares = |a: &Node, b: &Node| {
        a.profile == b.profile
            && match host_of(&a.container) == host_of(&b.container) {
                true => a.database == b.database,
                false => a.database.across_hosts(&b.database),
            }
    };
    let mut cluster: Vec<&Node> = nodes
        .iter()
        .filter(|n| n.container == node.container)
        .collect();
    let mut grew = true;
    while grew {
        let more: Vec<&Node> = nodes
            .iter()
            .filter(|n| !cluster.iter().any(|c| c.container == n.container))
            .filter(|n| cluster.iter().any(|c| shares(c, n)))
            .collect();
        grew = !more.is_empty();
        cluster.extend(more);
    }
    // The fleet's order, those beside the database's container first.
    cluster.sort_by_key(|n| {
        let at = nodes.iter().position(|m| m.container == n.container);
        (!n.database.local, at)
    });
    cluster
}

/// Why `node` cannot move with `status`'s container, if it cannot.
fn unfit(node: &Node, status: &Status, statuses: &[Status]) -> Option<String> {
    let name = &node.container;
    match statuses.iter().find(|s| &s.container == name) {
        None => Some(format!(
            "{name} is not opted in (label cutover.enable=true, or list it in the config)"
        )),
        Some(other) if !other.eligible => Some(format!("{name} may not move: {}", other.reason)),
        Some(other) if other.target != status.target => Some(format!(
            "{name} would move to {} rather than {}",
            other.target.as_deref().unwrap_or("nothing"),
            status.target.as_deref().unwrap_or("nothing")
        )),
        Some(_) => None,
    }
}

/// Moves one cluster over hosts as its vendors do: every node's run prepared first (nothing
/// changes if one cannot be), then all at once, meeting at their gates (see
/// [`crate::plan::steps::gate`]). `nodes` is `HOST/NAME`, the first node first; a node that an
/// earlier run of its host moves with its group (on the same database) is that run's, as on a
/// single host, and any other gets a run of its own.
pub async fn upgrade(
    members: &[Host<'_>],
    nodes: &[&Status],
    settings: &PassSettings,
    interrupt: &Interrupt,
) -> Vec<PassResult> {
    let first = nodes[0].container.clone();
    let mut runs: Vec<&Status> = Vec::new();
    let mut carried: Vec<(&Status, String)> = Vec::new();
    let mut prepared = Vec::new();
    let mut rehearsed = None;
    for status in nodes {
        let host = host_of(&status.container);
        let bare_name = &status.container[host.len() + 1..];
        // A node an earlier run of its host moves with its group is that run's.
        let moved_by = prepared
            .iter()
            .find(|(node, _, _, p): &&(String, _, _, Prepared)| {
                host_of(node) == host && p.plan.involves(bare_name)
            });
        if let Some((node, ..)) = moved_by {
            carried.push((status, node.clone()));
            continue;
        }
        let reached = members
            .iter()
            .find(|m| m.name == host)
            .and_then(|m| m.reached.as_ref().ok());
        let Some((engine, state)) = reached else {
            return refused(
                nodes,
                &status.container,
                Ended::refused("its host was not reached"),
            );
        };
        let given = settings.given.for_host(host);
        let bare = Status {
            container: bare_name.to_string(),
            target: nodes[0].target.clone(),
            ..(*status).clone()
        };
        let follows = (status.container != first).then_some(first.as_str());
        let req = match request(&bare, &given, &settings.asked, follows) {
            Ok(req) => req,
            Err(e) => return refused(nodes, &status.container, Ended::refused(&e.to_string())),
        };
        // The database moves once, with the first node: its migration is the one rehearsed.
        if follows.is_none() && settings.asked.rehearses(status) {
            let on = (*engine, *state, &settings.catalog);
            match rehearse_first(on, &req, interrupt).await {
                Ok(said) => rehearsed = Some(said),
                Err(held) => return refused(nodes, &status.container, held),
            }
        }
        match upgrade::prepare(*engine, state, &settings.catalog, &req).await {
            Ok(p) => prepared.push((status.container.clone(), *engine, *state, p)),
            Err(e) => return refused(nodes, &status.container, Ended::refused(&e.to_string())),
        }
        runs.push(status);
    }
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "{first}#{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::SeqCst)
    );
    let record = ClusterRecord::path(prepared[0].2.path(), &name);
    let bare_first = &first[host_of(&first).len() + 1..];
    if let Err(e) = ClusterRecord::create(&record, bare_first) {
        return refused(nodes, &first, Ended::refused(&e));
    }
    let followers = runs[1..].iter().map(|s| s.container.clone()).collect();
    let gates = Cluster::open(&name, followers);
    tracing::info!(
        "cluster over hosts: {first} migrates once every other node ({}) is stopped",
        runs[1..]
            .iter()
            .map(|s| s.container.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let moves = prepared.into_iter().map(|(node, engine, state, mut p)| {
        p.plan.gate(Gate {
            cluster: name.clone(),
            first: first.clone(),
            node: node.clone(),
            record: record.clone(),
        });
        let (gates, first, record) = (gates.clone(), first.clone(), record.clone());
        let rehearsed = rehearsed.clone().filter(|_| node == first);
        async move {
            let clock = Instant::now();
            let ended = judge(p.execute(engine, state, None, interrupt).await).after(rehearsed);
            match (node == first, ended.result == PassOutcome::Upgraded) {
                (true, true) => {
                    if let Err(e) = ClusterRecord::write(&record, Moves::Moved) {
                        tracing::warn!("{e}");
                    }
                    gates.first_ended(None);
                }
                (true, false) => gates.first_ended(Some(ended.message.clone())),
                (false, _) => gates.node_ended(&node, &ended.message),
            }
            (ended, clock.elapsed().as_millis() as u64)
        }
    });
    let done = futures_util::future::join_all(moves).await;
    gates.close();
    // Only a run that needs attention may be taken up again by `recover`, which reads the record.
    if done
        .iter()
        .all(|(ended, _)| ended.result != PassOutcome::NeedsAttention)
    {
        if let Err(e) = std::fs::remove_file(&record) {
            tracing::warn!("{}: {e}", record.display());
        }
    }
    let to = runs[0].target.clone().unwrap_or_default();
    let mut results: Vec<PassResult> = runs
        .iter()
        .zip(done)
        .map(|(status, (ended, duration_ms))| {
            PassResult::of(status, to.clone(), ended, duration_ms)
        })
        .collect();
    for (status, with) in carried {
        if let Some(moved) = results.iter().find(|r| r.container == with) {
            results.push(moved.moved_with(status));
        }
    }
    results
}

/// Every node of a cluster that could not be prepared: the one that failed refused (or held
/// back by its rehearsal), the others not attempted; nothing changed.
fn refused(nodes: &[&Status], failed: &str, ended: Ended) -> Vec<PassResult> {
    nodes
        .iter()
        .map(|status| match status.container == failed {
            true => PassResult {
                result: ended.result,
                message: ended.message.clone(),
                ..not_attempted(status, "")
            },
            false => not_attempted(
                status,
                &format!("not attempted: its cluster moves only as a whole, and {failed} could not be prepared"),
            ),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::group::DatabaseIdentity;

    fn node(container: &str, profile: &str, server: &str, local: bool) -> Node {
        Node {
            container: container.into(),
            profile: profile.into(),
            database: DatabaseIdentity {
                server: server.into(),
                port: 5432,
                name: "quay".into(),
                local,
                published: Vec::new(),
            },
        }
    }

    fn eligible(container: &str) -> Status {
        Status {
            target: Some("quay:v3.9.0".into()),
            reason: "v3.9.0 available".into(),
            ..Status::eligible(container)
        }
    }

    fn held(statuses: &[Status]) -> Vec<&str> {
        statuses
            .iter()
            .filter(|s| s.held_back && !s.eligible)
            .map(|s| s.container.as_str())
            .collect()
    }

    fn cluster_of<'a>(statuses: &'a [Status], name: &str) -> &'a [String] {
        &statuses
            .iter()
            .find(|s| s.container == name)
            .unwrap()
            .cluster
    }

    #[test]
    fn nodes_of_one_database_on_several_hosts_move_as_one_cluster() {
        let nodes = [
            node("a/quay", "quay", "db.internal", false),
            node("b/quay", "quay", "db.internal", false),
            // Same server name, but each host's own container: two installations.
            node("a/quay2", "quay", "db", true),
            node("b/quay2", "quay", "db", true),
            // Another database on the same server.
            node("c/quay", "quay", "other.internal", false),
            // Another product on the same database is no node of this cluster.
            node("c/lake", "devlake", "db.internal", false),
        ];
        let mut statuses: Vec<Status> = [
            "a/quay", "b/quay", "a/quay2", "b/quay2", "c/quay", "c/lake", "c/web",
        ]
        .into_iter()
        .map(eligible)
        .collect();
        hold_back_none(&mut statuses, &nodes);
        assert_eq!(cluster_of(&statuses, "a/quay"), ["a/quay", "b/quay"]);
        assert_eq!(cluster_of(&statuses, "b/quay"), ["a/quay", "b/quay"]);
        for alone in ["a/quay2", "b/quay2", "c/quay", "c/lake", "c/web"] {
            assert!(cluster_of(&statuses, alone).is_empty(), "{alone}");
        }
    }

    fn hold_back_none(statuses: &mut [Status], nodes: &[Node]) {
        form(statuses, nodes, &[]);
        assert!(held(statuses).is_empty());
    }

    #[test]
    fn a_cluster_moves_only_as_a_whole_and_to_one_version() {
        let nodes = [
            node("a/quay", "quay", "db.internal", false),
            node("b/quay", "quay", "db.internal", false),
            node("c/quay", "quay", "db.internal", false),
        ];
        // c's node is not opted in.
        let mut statuses: Vec<Status> = ["a/quay", "b/quay"].into_iter().map(eligible).collect();
        form(&mut statuses, &nodes, &[]);
        assert_eq!(held(&statuses), ["a/quay", "b/quay"]);
        assert!(
            statuses[0].reason.contains(
                "its cluster over hosts (a/quay, b/quay, c/quay, all on the database db.internal:5432/quay) moves only as a whole and to one version, and c/quay is not opted in"
            ),
            "{}",
            statuses[0].reason
        );
        // c's node would move elsewhere.
        let mut statuses: Vec<Status> = ["a/quay", "b/quay", "c/quay"]
            .into_iter()
            .map(eligible)
            .collect();
        statuses[2].target = Some("quay:v3.10.0".into());
        form(&mut statuses, &nodes, &[]);
        assert_eq!(held(&statuses), ["a/quay", "b/quay", "c/quay"]);
        assert!(statuses[0]
            .reason
            .contains("c/quay would move to quay:v3.10.0 rather than quay:v3.9.0"));
    }

    #[test]
    fn a_node_whose_database_may_serve_an_unread_host_is_held_back() {
        let nodes = [
            node("a/quay", "quay", "db.internal", false),
            node("a/quay2", "quay", "db", true),
        ];
        let mut statuses: Vec<Status> = ["a/quay", "a/quay2", "a/web"]
            .into_iter()
            .map(eligible)
            .collect();
        let gone = Unreached {
            host: "b".into(),
            error: "cannot reach".into(),
        };
        form(&mut statuses, &nodes, &[gone]);
        assert_eq!(held(&statuses), ["a/quay"]);
        assert!(statuses[0]
            .reason
            .contains("db.internal:5432/quay may serve other hosts, and b could not be read"));
        // Reached, the fleet has no other node: nothing is held, and no cluster formed.
        let mut statuses = vec![eligible("a/quay")];
        hold_back_none(&mut statuses, &nodes);
        assert!(statuses[0].cluster.is_empty());
    }

    #[test]
    fn the_node_beside_the_database_container_it_publishes_goes_first() {
        let mut beside = node("c/quay", "quay", "quay-db", true);
        beside.database.published = vec![15432];
        let far = |host: &str, port: u16| {
            let mut n = node(&format!("{host}/quay"), "quay", "10.0.0.3", false);
            n.database.port = port;
            n
        };
        let nodes = [
            far("a", 15432),
            far("b", 15432),
            beside.clone(),
            far("d", 5432),
        ];
        let mut statuses: Vec<Status> = ["a/quay", "b/quay", "c/quay", "d/quay"]
            .into_iter()
            .map(eligible)
            .collect();
        hold_back_none(&mut statuses, &nodes);
        for member in ["a/quay", "b/quay", "c/quay"] {
            assert_eq!(
                cluster_of(&statuses, member),
                ["c/quay", "a/quay", "b/quay"]
            );
        }
        // Another port: another database, as far as can be told.
        assert!(cluster_of(&statuses, "d/quay").is_empty());
        // A node of c reaching the database through the published port shares it through the
        // other hosts' nodes: one cluster, the same for each.
        let mut through_port = far("c", 15432);
        through_port.container = "c/quay2".into();
        let nodes = [far("a", 15432), beside.clone(), through_port];
        let mut statuses: Vec<Status> = ["a/quay", "c/quay", "c/quay2"]
            .into_iter()
            .map(eligible)
            .collect();
        hold_back_none(&mut statuses, &nodes);
        for member in ["a/quay", "c/quay", "c/quay2"] {
            assert_eq!(
                cluster_of(&statuses, member),
                ["c/quay", "a/quay", "c/quay2"]
            );
        }
        // Unpublished, the container cannot be what other hosts reach.
        beside.database.published.clear();
        let nodes = [far("a", 15432), beside];
        let mut statuses: Vec<Status> = ["a/quay", "c/quay"].into_iter().map(eligible).collect();
        hold_back_none(&mut statuses, &nodes);
        assert!(statuses.iter().all(|s| s.cluster.is_empty()));
    }
}
