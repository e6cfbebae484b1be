//! `cutover auto`: one unattended pass, or a pass on a schedule.

use std::path::{Path, PathBuf};

use clap::Args;
use cutover::discover::rollout::{self, Rollout};
use cutover::discover::{auto, metrics};
use cutover::engine::registry::RegistryClient;
use cutover::engine::DockerEngine;
use cutover::notify;
use cutover::ops::fleet;
use cutover::ops::settings::Given;
use cutover::profile::Choice;
use cutover::run::journal::StateDir;
use cutover::run::FirstSeen;
use cutover::run::Interrupt;
use cutover::schedule::{Schedule, Window};

use super::{config_told, load_profiles, refused, Site};
use crate::args::{DiscoveryArgs, HealthArgs, NotifyArgs, PolicyArgs, RolloutArgs};
use crate::output::{self, Exit};

pub async fn run(args: AutoArgs, site: &Site) -> anyhow::Result<Exit> {
    let mut config = config_told(&args.discovery, &args.notify)?;
    config.command_line = args.policy.layer();
    let given = Given {
        config,
        health: args.health.settings().map_err(refused)?,
        profile: Choice::Auto,
    };
    let window = args
        .window
        .as_ref()
        .or(given.config.window.as_ref())
        .map(|w| Window::parse(w))
        .transpose()
        .map_err(refused)?;
    let schedule = args
        .schedule
        .as_deref()
        .map(Schedule::parse)
        .transpose()
        .map_err(refused)?;
    let registry = RegistryClient::new(given.config.insecure_registries.clone())?;
    let fleet = !given.config.hosts.is_empty();
    let settings = auto::PassSettings {
        asked: auto::Asked::default(),
        given,
        catalog: load_profiles()?,
        window,
        first_seen: FirstSeen::under(&site.state_root),
    };
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
    let interrupt = Interrupt::from_signals();
    let rollout = args.rollout.rollout();
    // One engine is reached once; a fleet's hosts at each pass, so that a host away for one
    // pass is tried again at the next.
    let host = match fleet {
        true => None,
        false => Some(site.connect().await?),
    };
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
        loop {
            let now = chrono::Local::now();
            let Some(next) = schedule.next_after(now) else {
                return Err(refused("the schedule has no next occurrence".into()));
            };
            tracing::info!("next pass at {}", next.format("%Y-%m-%d %H:%M:%S"));
            let wait = (next - now).to_std().unwrap_or_default();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                () = self.interrupt.wait() => return Ok(Exit::Done),
            }
            match self.pass().await {
                Ok(report) => {
                    output::auto(&report, json);
                    self.tell(&report).await;
                }
                Err(e) => {
                    tracing::warn!("pass skipped: {}", cutover::secrets::redact(&e.to_string()))
                }
            }
            if self.interrupt.raised().is_some() {
                return Ok(Exit::Done);
            }
        }
    }
}
