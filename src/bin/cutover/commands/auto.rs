//! `cutover auto`: one unattended pass, or a pass on a schedule.

use std::path::{Path, PathBuf};

use clap::Args;
use cutover::auto::{self, metrics};
use cutover::engine::credentials::Logins;
use cutover::engine::registry::RegistryClient;
use cutover::engine::DockerEngine;
use cutover::fleet;
use cutover::fleet::rollout::{self, Rollout};
use cutover::notify;
use cutover::run::journal::StateDir;
use cutover::run::FirstSeen;
use cutover::run::Interrupt;
use cutover::schedule::{Schedule, Window};

use super::{config_told, given_of, load_profiles, plan, refused, Site};
use crate::args::{CommonArgs, DiscoveryArgs, HealthArgs, NotifyArgs, PolicyArgs, RolloutArgs};
use crate::output::{self, Exit};
use cutover::config::Approval;
use cutover::ops::plan_file::PlanFile;

pub async fn run(args: AutoArgs, site: &Site) -> anyhow::Result<Exit> {
    let config = config_told(&args.discovery, &args.notify)?;
    let given = given_of(config, Some(&args.health), Some(&args.policy), None)?;
    let window = args
        .window
        .as_ref()
        .or(given.config.window.as_ref())
        .map(|w| Window::parse(w))
        .transpose()
        .map_err(cutover::Error::from)?;
    let schedule = args
        .schedule
        .as_deref()
        .map(Schedule::parse)
        .transpose()
        .map_err(cutover::Error::from)?;
    let fleet = !given.config.hosts.is_empty();
    let approval = args.approval || given.config.approval == Approval::Required;
    let settings = auto::PassSettings {
        asked: auto::Asked::default(),
        given,
        catalog: load_profiles()?,
        window,
        first_seen: FirstSeen::under(&site.state_root),
    };
    if approval {
        return match schedule {
            None => approval_pass(&args, site, &settings).await,
            Some(schedule) => approval_passes(&args, site, &settings, &schedule).await,
        };
    }
    let exposition = match args.metrics_listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| {
                refused(format!("--metrics-listen {addr}: {e}; give a free address"))
            })?;
            let exposition = metrics::Exposition::default();
            exposition.clone().serve(listener);
            tracing::info!("serving metrics on http://{addr}/metrics");
            Some(exposition)
        }
        None => None,
    };
    let mut registry = RegistryClient::new(settings.given.config.insecure_registries.clone())?;
    let interrupt = Interrupt::from_signals();
    let rollout = args.rollout.rollout();
    // One engine is reached once; a fleet's hosts at each pass, so that a host away for one
    // pass is tried again at the next.
    let host = match fleet {
        true => None,
        false => Some(site.connect().await?),
    };
    if let Some((engine, _)) = &host {
        registry = registry.logins(Logins::of(engine));
    }
    let passes = Passes {
        over: match &host {
            Some((engine, state)) => Over::Host(engine, state),
            None => Over::Fleet(site, &rollout),
        },
        registry: &registry,
        settings: &settings,
        interrupt: &interrupt,
        metrics: args.metrics_file.as_deref(),
        exposition: exposition.clone(),
    };
    match schedule {
        None => {
            let report = passes.pass().await?;
            let exit = output::auto(&report, args.json);
            passes.tell(&report).await;
            Ok(exit)
        }
        Some(schedule) => passes.run(&schedule, args.json).await,
    }
}

#[derive(Args, Debug)]
pub struct AutoArgs {
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub policy: PolicyArgs,
    /// Stay resident and run a pass on this cron expression (5 or 6 fields, e.g. "0 3 * * *")
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Start upgrades only inside this daily window, local time (e.g. 02:00-05:00); overrides the config
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub window: Option<String>,
    /// Move nothing: write what the pass would upgrade as a plan in the state directory, tell
    /// the notifiers, and wait for `cutover approve ID` (the config's `approval: required`)
    /// With --schedule: each pass also applies the plans approved with `cutover approve ID
    /// --in-window`, inside the window
    #[arg(long, conflicts_with = "metrics_file")]
    pub approval: bool,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    /// After each pass, write its metrics to this file in Prometheus' text format, whole (for
    /// node_exporter's --collector.textfile.directory: name it *.prom there)
    #[arg(long, value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,
    /// With --schedule: serve the last pass's metrics on http://ADDR/metrics (e.g. 127.0.0.1:9561)
    #[arg(long, value_name = "ADDR", requires = "schedule")]
    pub metrics_listen: Option<std::net::SocketAddr>,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub rollout: RolloutArgs,
    #[command(flatten)]
    pub health: HealthArgs,
}

/// What passes go over: one engine, or the config file's fleet as a rolling upgrade.
enum Over<'a> {
    Host(&'a DockerEngine, &'a StateDir),
    Fleet(&'a Site, &'a Rollout),
}

/// What a pass, once or on a schedule, runs with.
struct Passes<'a> {
    over: Over<'a>,
    registry: &'a RegistryClient,
    settings: &'a auto::PassSettings,
    interrupt: &'a Interrupt,
    metrics: Option<&'a Path>,
    exposition: Option<metrics::Exposition>,
}

impl Passes<'_> {
    /// A pass's message, sent once its result is printed: a notifier that fails is logged and
    /// changes nothing else.
    async fn tell(&self, report: &auto::PassReport) {
        let message = report.message("auto", &notify::host_name());
        notify::send(&self.settings.given.config.notifiers(), &message).await;
    }

    /// A pass, its metrics written when asked: a file that cannot be written is logged and
    /// changes nothing else.
    async fn pass(&self) -> anyhow::Result<auto::PassReport> {
        let report = self.upgrade().await?;
        if self.metrics.is_none() && self.exposition.is_none() {
            return Ok(report);
        }
        let text = metrics::text(&report);
        if let Some(path) = self.metrics {
            if let Err(e) = metrics::write(path, &text) {
                tracing::warn!("metrics not written: {e}");
            }
        }
        if let Some(exposition) = &self.exposition {
            exposition.set(text);
        }
        Ok(report)
    }

    async fn upgrade(&self) -> anyhow::Result<auto::PassReport> {
        let (registry, settings, interrupt) = (self.registry, self.settings, self.interrupt);
        match self.over {
            Over::Host(engine, state) => {
                Ok(auto::pass(engine, state, registry, settings, interrupt).await?)
            }
            Over::Fleet(site, rollout) => {
                let hosts = &settings.given.config.hosts;
                let connected = fleet::connect_with_state(hosts, &site.state_root).await?;
                let members: Vec<fleet::Host<'_>> =
                    connected.iter().map(fleet::Connected::host).collect();
                Ok(rollout::pass(&members, registry, settings, rollout, interrupt).await?)
            }
        }
    }

    /// A pass at every occurrence until SIGINT or SIGTERM (a pass under way finishes or rolls
    /// back its upgrade first). A pass that cannot run (another one holds the host lock) is
    /// reported and the schedule goes on.
    async fn run(&self, schedule: &Schedule, json: bool) -> anyhow::Result<Exit> {
        auto::on_schedule(schedule, self.interrupt, async || match self.pass().await {
            Ok(report) => {
                output::auto(&report, json);
                self.tell(&report).await;
            }
            Err(e) => tracing::warn!("pass skipped: {}", cutover::secrets::redact(&e.to_string())),
        })
        .await?;
        Ok(Exit::Done)
    }
}

/// A pass with approval: what it would upgrade, planned as `cutover plan NAME --image TARGET`
/// plans it (in the order the pass would move them), kept in the state directory and told to
/// the notifiers with the command that approves it. Nothing moves.
async fn approval_pass(
    args: &AutoArgs,
    site: &Site,
    settings: &auto::PassSettings,
) -> anyhow::Result<Exit> {
    if args.health.given() {
        return Err(refused(
            "approval: plans are made with the health settings of the config file and labels, not --health-*".into(),
        ));
    }
    let plans = plan::plans(site)?;
    let planned =
        plan::plan_eligible(site, settings, args.discovery.config.as_deref(), &plans).await?;
    if planned.is_empty() {
        println!("Nothing to upgrade: no plan was written.");
        return Ok(Exit::Done);
    }
    let file = PlanFile::seal(
        planned,
        std::time::SystemTime::now(),
        cutover::ops::plan_file::DEFAULT_VALIDITY,
    );
    let path = plans.keep(&file)?;
    let exit = plan::told(
        &file,
        &path,
        &format!("cutover approve {}", file.id),
        args.json,
    );
    let message = file.message(&notify::host_name());
    notify::send(&settings.given.config.notifiers(), &message).await;
    Ok(exit)
}

/// Approval passes on `schedule`, until SIGINT or SIGTERM: each applies the plans approved for
/// it (`approve ID --in-window`) when inside the window, then plans what it would upgrade. A plan
/// that cannot be applied is told and waits again, unapproved.
async fn approval_passes(
    args: &AutoArgs,
    site: &Site,
    settings: &auto::PassSettings,
    schedule: &Schedule,
) -> anyhow::Result<Exit> {
    let interrupt = Interrupt::from_signals();
    auto::on_schedule(schedule, &interrupt, async || {
        if settings.window.is_none_or(|w| w.contains_now()) {
            if let Err(e) = apply_approved(args, site).await {
                tracing::warn!("approved plans not applied: {e:#}");
            }
        }
        if let Err(e) = approval_pass(args, site, settings).await {
            tracing::warn!("pass skipped: {}", cutover::secrets::redact(&e.to_string()));
        }
    })
    .await?;
    Ok(Exit::Done)
}

/// The plans approved for the next pass in the window (`approve ID --in-window`), applied; a
/// plan that cannot be applied is told and waits again, unapproved.
async fn apply_approved(args: &AutoArgs, site: &Site) -> anyhow::Result<()> {
    let plans = plan::plans(site)?;
    for approved in plans.approved(std::time::SystemTime::now())? {
        let Ok(file) = approved.plan else { continue };
        let common = CommonArgs {
            yes: true,
            json: args.json,
        };
        let text = file.text();
        if let Err(e) = plan::carry_out(&text, &file.id, NotifyArgs::default(), common, site).await
        {
            tracing::warn!(
                "approved plan {} was not applied, and waits again: {e:#}",
                file.id
            );
            plans.withdraw(&file.id)?;
        }
    }
    Ok(())
}
