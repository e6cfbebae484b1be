//! `cutover auto` over a fleet: one rolling pass. The fleet is checked at once (each repository
//! asked once); its clusters over hosts move first, each as a whole (see [`clusters`]); then the
//! canary host upgrades alone, and only if all of it went well do the
//! other hosts follow, `parallel` at a time, each host's containers one by one in dependency
//! order. The rollout stops when more hosts failed than the failure budget allows, or a host
//! needs attention; every host it did not reach is left as it was, and said so.

use std::time::SystemTime;

use super::clusters;
use crate::auto::{
    not_attempted, stop_if_interrupted, OnHost, PassOutcome, PassReport, PassResult, PassSettings,
};
use crate::discover::check::{self, FleetHost, Selection, Status, Unreached};
use crate::engine::registry::RegistryClient;
use crate::error::Result;
use crate::fleet::host_of;
use crate::fleet::Host;
use crate::plan::build::Target;
use crate::run::Interrupt;

/// How the rollout goes over the hosts.
#[derive(Debug, Clone, Default)]
pub struct Rollout {
    /// The host that goes first, alone; the first host with something to upgrade otherwise.
    pub canary: Option<String>,
    /// Hosts upgraded at once after the canary (at least 1).
    pub parallel: usize,
    /// Failed hosts the rollout tolerates before it stops (the canary's failure always stops it).
    pub failure_budget: usize,
}

/// The hosts in the order the rollout takes them: the canary alone, then the others in waves of
/// `parallel`, in the fleet's order.
pub fn waves(hosts: &[String], canary: Option<&str>, parallel: usize) -> Vec<Vec<String>> {
    let first = canary
        .filter(|c| hosts.iter().any(|h| h == c))
        .or(hosts.first().map(String::as_str));
    let Some(first) = first else {
        return Vec::new();
    };
    let rest: Vec<String> = hosts.iter().filter(|h| *h != first).cloned().collect();
    std::iter::once(vec![first.to_string()])
        .chain(rest.chunks(parallel.max(1)).map(<[String]>::to_vec))
        .collect()
}

/// Whether a host's results count against the budget: anything but upgraded.
fn failed(results: &[PassResult]) -> bool {
    results.iter().any(|r| r.result != PassOutcome::Upgraded)
}

pub async fn pass(
    members: &[Host<'_>],
    registry: &RegistryClient,
    settings: &PassSettings,
    rollout: &Rollout,
    interrupt: &Interrupt,
) -> Result<PassReport> {
    let surveyed = survey(members, registry, settings).await?;
    upgrade_surveyed(members, surveyed, settings, rollout, interrupt).await
}

/// `cutover upgrade HOST/NAME...`, before anything changes: the named containers, each to move
/// to `target` whatever its policy says, with their clusters over hosts (see
/// [`clusters::form`]), and the hosts that could not be read.
pub async fn survey_named(
    members: &[Host<'_>],
    names: &[String],
    target: &Target,
    settings: &PassSettings,
) -> Result<(Vec<Status>, Vec<Unreached>)> {
    let found = discover(members, settings, &Selection::All).await?;
    let mut checked = Vec::new();
    for name in names {
        let Some(watched) = found.watched.iter().find(|w| &w.name == name) else {
            let host = host_of(name);
            let why = match found.unreached.iter().find(|u| u.host == host) {
                Some(u) => format!("{name}: host {host} could not be read: {}", u.error),
                None => format!("there is no running container named {name}"),
            };
            return Err(crate::Error::Refused(why));
        };
        checked.push(Status::asked(watched, target)?);
    }
    clusters::form(&mut checked, &found.nodes, &found.unreached);
    Ok((checked, found.unreached))
}

/// The eligible containers of a survey (a pass's, or [`survey_named`]'s) moved as a rolling
/// pass, holding each host's pass lock, which keeps two passes from overlapping.
pub async fn upgrade_surveyed(
    members: &[Host<'_>],
    (checked, unreached): (Vec<Status>, Vec<Unreached>),
    settings: &PassSettings,
    rollout: &Rollout,
    interrupt: &Interrupt,
) -> Result<PassReport> {
    let started_at = SystemTime::now();
    let locks = lock(members)?;
    let results = roll(members, &checked, settings, rollout, interrupt).await;
    drop(locks);
    let backups = members
        .iter()
        .filter_map(|h| Some((&h.name, h.reached.as_ref().ok()?.1)))
        .flat_map(|(name, state)| crate::auto::newest_backups(state, name))
        .collect();
    Ok(PassReport {
        started_at,
        checked,
        results,
        unreached,
        backups,
    })
}

/// Each reached host's lock for a pass, which keeps two from overlapping.
fn lock(members: &[Host<'_>]) -> Result<Vec<crate::run::journal::ContainerLock>> {
    let mut locks = Vec::new();
    for m in members {
        if let Ok((_, state)) = &m.reached {
            locks.push(state.lock_auto()?);
        }
    }
    Ok(locks)
}

/// Discovery over the members' engines, with the config file's entries for each.
async fn discover(
    members: &[Host<'_>],
    settings: &PassSettings,
    selection: &Selection,
) -> Result<check::FleetWatch> {
    let hosts: Vec<FleetHost<'_>> = members
        .iter()
        .map(|m| FleetHost {
            name: m.name.clone(),
            engine: m.reached.as_ref().map(|(e, _)| *e).map_err(Clone::clone),
        })
        .collect();
    check::discover_fleet(&hosts, &settings.given, &settings.catalog, selection).await
}

/// The rollout itself, over what was checked: clusters over hosts first, then the canary host,
/// then the others in waves.
async fn roll(
    members: &[Host<'_>],
    checked: &[Status],
    settings: &PassSettings,
    rollout: &Rollout,
    interrupt: &Interrupt,
) -> Vec<PassResult> {
    let of_host = |host: &str| -> Vec<&Status> {
        checked
            .iter()
            .filter(|s| s.eligible && s.cluster.is_empty() && host_of(&s.container) == host)
            .collect()
    };
    let with_work: Vec<String> = members
        .iter()
        .map(|m| m.name.clone())
        .filter(|h| !of_host(h).is_empty())
        .collect();
    let outside_window = settings.window.is_some_and(|w| !w.contains_now());
    let mut stopped = outside_window.then(|| "outside the maintenance window".to_string());
    let mut failed_hosts = 0;
    let mut results = Vec::new();
    // Clusters over hosts first: each is a canary of its own.
    for nodes in clusters_of(checked) {
        stop_if_interrupted(&mut stopped, interrupt);
        if let Some(why) = &stopped {
            results.extend(nodes.iter().map(|s| not_attempted(s, why)));
            continue;
        }
        let done = clusters::upgrade(members, &nodes, settings, interrupt).await;
        if failed(&done) {
            stopped = Some(format!(
                "not attempted: the rollout stopped after the cluster of {} failed",
                nodes[0].container
            ));
        }
        results.extend(done);
    }
    for (i, wave) in waves(&with_work, rollout.canary.as_deref(), rollout.parallel)
        .into_iter()
        .enumerate()
    {
        stop_if_interrupted(&mut stopped, interrupt);
        if let Some(why) = &stopped {
            for host in &wave {
                results.extend(of_host(host).into_iter().map(|s| not_attempted(s, why)));
            }
            continue;
        }
        let runs = wave.iter().map(|host| {
            let member = members.iter().find(|m| &m.name == host);
            upgrade_host(member, of_host(host), settings, interrupt)
        });
        let done = futures_util::future::join_all(runs).await;
        let failed_now: Vec<&String> = wave
            .iter()
            .zip(&done)
            .filter(|(_, r)| failed(r))
            .map(|(h, _)| h)
            .collect();
        failed_hosts += failed_now.len();
        let attention = done
            .iter()
            .flatten()
            .find(|r| r.result == PassOutcome::NeedsAttention);
        stopped = stop_after(
            i == 0,
            failed_now.first().copied(),
            attention,
            failed_hosts,
            rollout.failure_budget,
        );
        results.extend(done.into_iter().flatten());
    }
    results
}

/// The clusters over hosts among the eligible containers, each in the order
/// [`clusters::form`] gave its nodes: the one that migrates first.
fn clusters_of(checked: &[Status]) -> Vec<Vec<&Status>> {
    let mut clusters: Vec<Vec<&Status>> = Vec::new();
    for status in checked
        .iter()
        .filter(|s| s.eligible && !s.cluster.is_empty())
    {
        if clusters
            .iter()
            .any(|c| c.iter().any(|n| n.container == status.container))
        {
            continue;
        }
        let nodes: Vec<&Status> = status
            .cluster
            .iter()
            .filter_map(|name| checked.iter().find(|s| &s.container == name))
            .collect();
        clusters.push(nodes);
    }
    clusters
}

/// Every host's opted-in containers, checked at once, and the hosts that could not be read.
/// What check finds over the fleet for a pass: its opted-in containers, and the hosts that
/// could not be read.
pub async fn survey(
    members: &[Host<'_>],
    registry: &RegistryClient,
    settings: &PassSettings,
) -> Result<(Vec<Status>, Vec<Unreached>)> {
    let found = discover(members, settings, &Selection::OptedIn).await?;
    let checked = found.check(registry, &settings.first_seen).await;
    Ok((checked, found.unreached))
}

/// Why the rollout stops after a wave, if it does: a container that needs attention, a failed
/// canary, or more failed hosts than the budget allows.
fn stop_after(
    canary: bool,
    failed: Option<&String>,
    attention: Option<&PassResult>,
    failed_hosts: usize,
    budget: usize,
) -> Option<String> {
    match (canary, failed, attention) {
        (_, _, Some(r)) => Some(format!(
            "not attempted: the rollout stopped after {} needed attention",
            r.container
        )),
        (true, Some(host), _) => Some(format!(
            "not attempted: the rollout stopped after the canary host {host} failed"
        )),
        (false, Some(_), _) if failed_hosts > budget => Some(format!(
            "not attempted: the rollout stopped after {failed_hosts} host(s) failed (failure budget {budget})"
        )),
        _ => None,
    }
}

/// One host's eligible containers, one by one in dependency order, as a single-host pass does
/// them, with the config file's entries for that host; stops at one that needs attention.
async fn upgrade_host(
    member: Option<&Host<'_>>,
    statuses: Vec<&Status>,
    settings: &PassSettings,
    interrupt: &Interrupt,
) -> Vec<PassResult> {
    let Some(Host {
        name: host,
        reached: Ok((engine, state)),
    }) = member
    else {
        return Vec::new();
    };
    let given = settings.given.for_host(host);
    OnHost {
        engine: *engine,
        state,
        given: &given,
        host,
    }
    .upgrade_in_order(statuses, settings, false, interrupt)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn the_canary_goes_alone_then_the_others_in_waves() {
        let all = hosts(&["a", "b", "c", "d", "e"]);
        assert_eq!(
            waves(&all, Some("c"), 2),
            [hosts(&["c"]), hosts(&["a", "b"]), hosts(&["d", "e"])]
        );
        assert_eq!(
            waves(&all, None, 1),
            [
                hosts(&["a"]),
                hosts(&["b"]),
                hosts(&["c"]),
                hosts(&["d"]),
                hosts(&["e"])
            ]
        );
        // A canary with nothing to upgrade: the first host that has something goes first.
        assert_eq!(
            waves(&hosts(&["b", "d"]), Some("c"), 0),
            [hosts(&["b"]), hosts(&["d"])]
        );
        assert!(waves(&[], Some("a"), 3).is_empty());
    }
}
