//! Clusters spread over a fleet's hosts. Each product whose profile groups by database has its
//! vendor stop every container on the database before the schema changes (Quay: "Shutdown the
//! Quay Enterprise cluster: Remove all containers from service", coreos/docs
//! quay-enterprise/upgrade-quay.md; Anchore: `db upgrade` "requires *all* anchore-engine
//! services to be stopped"; DevLake: never two instances on one database). cutover moves such
//! containers together only on one host, so a node whose database also serves nodes on another
//! host, or perhaps on a host that could not be read, is held back rather than upgraded under
//! them.

use super::check::{host_of, Status, Unreached};
use crate::ops::group::Node;

/// A fleet's nodes, each as `HOST/NAME`.
pub fn hold_back(statuses: &mut [Status], nodes: &[Node], unreached: &[Unreached]) {
    for status in statuses.iter_mut().filter(|s| s.eligible) {
        let Some(node) = nodes.iter().find(|n| n.container == status.container) else {
            continue;
        };
        if node.database.local {
            continue;
        }
        let host = host_of(&node.container);
        let elsewhere: Vec<&str> = nodes
            .iter()
            .filter(|n| {
                host_of(&n.container) != host
                    && n.profile == node.profile
                    && n.database == node.database
            })
            .map(|n| n.container.as_str())
            .collect();
        let why = if !elsewhere.is_empty() {
            format!(
                "held back: {} containers on other hosts share its database {} ({}); {} stops every container on the database before the schema changes, and cutover moves them together only on one host: upgrade them by hand in one window, or run them on one host",
                node.profile,
                node.database,
                elsewhere.join(", "),
                node.profile
            )
        } else if !unreached.is_empty() {
            let hosts: Vec<&str> = unreached.iter().map(|u| u.host.as_str()).collect();
            format!(
                "held back: its database {} is outside its host, and {} could not be read: a {} container there on the same database would be left on a schema it may refuse",
                node.database,
                hosts.join(", "),
                node.profile
            )
        } else {
            continue;
        };
        status.eligible = false;
        status.held_back = true;
        status.reason = why;
    }
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
            },
        }
    }

    fn eligible(container: &str) -> Status {
        Status {
            container: container.into(),
            image: String::new(),
            current_tag: None,
            current_digest: None,
            policy: None,
            target: Some("quay:v3.9.0".into()),
            via: Vec::new(),
            profile: None,
            project: None,
            service: None,
            newest: None,
            eligible: true,
            reason: "v3.9.0 available".into(),
            held_back: false,
            opted_in: true,
            depends_on: Vec::new(),
        }
    }

    fn held(statuses: &[Status]) -> Vec<&str> {
        statuses
            .iter()
            .filter(|s| s.held_back && !s.eligible)
            .map(|s| s.container.as_str())
            .collect()
    }

    #[test]
    fn nodes_of_one_database_on_two_hosts_are_held_back_and_others_go_on() {
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
        hold_back(&mut statuses, &nodes, &[]);
        assert_eq!(held(&statuses), ["a/quay", "b/quay"]);
        assert!(
            statuses[0]
                .reason
                .contains("quay containers on other hosts share its database db.internal:5432/quay (b/quay)"),
            "{}",
            statuses[0].reason
        );
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
        hold_back(&mut statuses, &nodes, &[gone]);
        assert_eq!(held(&statuses), ["a/quay"]);
        assert!(statuses[0].reason.contains("and b could not be read"));
        // Reached, the fleet has no other node: nothing is held.
        let mut statuses = vec![eligible("a/quay")];
        hold_back(&mut statuses, &nodes, &[]);
        assert!(held(&statuses).is_empty());
    }
}
