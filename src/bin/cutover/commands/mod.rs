//! One module per command: each reads its arguments into the library's request, calls the
//! library and renders the result. What several of them need is here.

pub mod auto;
pub mod backup;
pub mod backups;
pub mod check;
pub mod docs;
pub mod history;
pub mod plan;
pub mod profiles;
pub mod recover;
pub mod rehearse;
pub mod restore;
pub mod rollback;
pub mod task;
pub mod tasks;
pub mod upgrade;

use std::io::{BufRead, IsTerminal, Write};

use cutover::config::Config;
use cutover::engine::DockerEngine;
pub use cutover::fleet::Site;
use cutover::notify::{self, Message, Notifier};
use cutover::ops::preflight::Prepared;
use cutover::ops::settings::Given;
use cutover::profile::Catalog;
use cutover::run::journal::StateDir;
use cutover::run::Interrupt;
use indicatif::MultiProgress;

use crate::args::{
    self, ChangeArgs, CommonArgs, DiscoveryArgs, HealthArgs, NotifyArgs, PolicyArgs,
};
use crate::output::{self, Exit};

/// The built-in profiles and the user's; a broken user profile stops the command, with its
/// file, line and column.
fn load_profiles() -> anyhow::Result<Catalog> {
    Ok(Catalog::load().map_err(cutover::Error::from)?)
}

fn refused(message: String) -> anyhow::Error {
    cutover::Error::Refused(message).into()
}

/// Options that cannot be read or do not go together: bad input, its message saying which.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct BadOptions(String);

fn bad_input(message: String) -> anyhow::Error {
    cutover::Error::bad_input(BadOptions(message)).into()
}

fn load_config(args: &DiscoveryArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Ok(Config::load(path).map_err(cutover::Error::from)?),
        None => Ok(Config::default()),
    }
}

/// The config file, with the command line's notification URLs after its own.
fn config_told(args: &DiscoveryArgs, notify: &NotifyArgs) -> anyhow::Result<Config> {
    let mut config = load_config(args)?;
    for url in &notify.urls {
        config
            .notify
            .push(url.parse().map_err(cutover::Error::from)?);
    }
    Ok(config)
}

/// What the library resolves each workload's settings from, gathered here alone: the config
/// file, the health flags, the rule flags (`--min-age`), `--profile`; a command that takes no
/// such flag gives `None`.
fn given_of(
    config: Config,
    health: Option<&HealthArgs>,
    policy: Option<&PolicyArgs>,
    profile: Option<&str>,
) -> anyhow::Result<Given> {
    Ok(Given {
        config,
        health: (health.map(HealthArgs::settings).transpose())
            .map_err(bad_input)?
            .unwrap_or_default(),
        rules: policy.map(PolicyArgs::layer).unwrap_or_default(),
        profile: args::choice(profile),
    })
}

/// What a command that changes containers was given: the config file with the command line's
/// notification URLs, the health flags, `--profile`.
fn given(change: &ChangeArgs) -> anyhow::Result<Given> {
    let config = config_told(&change.discovery, &change.notify)?;
    given_of(
        config,
        Some(&change.health),
        None,
        change.profile.as_deref(),
    )
}

/// Refuses a changing command that could not ask for its confirmation, before anything is
/// looked at; a dry run asks nothing.
fn before_change(change: &ChangeArgs) -> anyhow::Result<()> {
    match change.dry_run {
        true => Ok(()),
        false => ensure_can_confirm(&change.common),
    }
}

/// Where a command's message goes, naming the site: the engine when one was named, else this
/// machine.
fn tell(site: &Site, given: &Given) -> Tell {
    Tell {
        notifiers: given.config.notifiers(),
        host: match site.named_engine {
            true => site.endpoint.host.clone(),
            false => notify::host_name(),
        },
    }
}

/// What a command about one container works with: where it lives, the settings as its host
/// sees them, its bare name, the profiles, its engine and that engine's state directory.
struct One {
    site: Site,
    given: Given,
    name: String,
    catalog: Catalog,
    engine: DockerEngine,
    state: StateDir,
}

impl One {
    /// Aims at the container `name` the command line gives (see [`Site::aim_alone`]) and
    /// connects to its engine.
    async fn aim(site: &Site, change: &ChangeArgs, name: &str) -> anyhow::Result<One> {
        let (site, given, name) = site
            .aim_alone(given(change)?, name, &load_profiles()?)
            .await?;
        let catalog = load_profiles()?;
        let (engine, state) = site.connect().await?;
        Ok(One {
            site,
            given,
            name,
            catalog,
            engine,
            state,
        })
    }

    fn tell(&self) -> Tell {
        tell(&self.site, &self.given)
    }
}

/// Where a command's message goes, and the host it names.
struct Tell {
    notifiers: Vec<Notifier>,
    host: String,
}

/// Shows the plan of a dry run, or asks (unless `--yes`) and runs it, prints what it did, then
/// tells the run's notifiers.
async fn carry_out(
    prepared: Prepared,
    engine: &DockerEngine,
    state: &StateDir,
    change: &ChangeArgs,
    tell: Tell,
) -> anyhow::Result<Exit> {
    let common = &change.common;
    if change.dry_run {
        return Ok(output::dry_run(&prepared.plan, common.json));
    }
    if !common.yes {
        output::plan_summary(&prepared.plan);
        confirm("Proceed?")?;
    }
    execute(prepared, engine, state, common.json, tell).await
}

/// Runs a plan already confirmed, prints what it did, then tells the run's notifiers.
async fn execute(
    prepared: Prepared,
    engine: &DockerEngine,
    state: &StateDir,
    json: bool,
    tell: Tell,
) -> anyhow::Result<Exit> {
    let progress = std::io::stderr().is_terminal().then(MultiProgress::new);
    let plan = prepared.plan.clone();
    // From here a signal stops the run between steps, rather than the process mid-step.
    let interrupt = Interrupt::from_signals();
    let started_at = std::time::SystemTime::now();
    let ran = prepared
        .execute(engine, state, progress.as_ref(), &interrupt)
        .await;
    // The result is printed first: a slow notifier delays only the exit.
    match ran {
        Ok(report) => {
            let exit = output::run(&plan, &report, json);
            let message = Message::of_run(&tell.host, &plan, &report, started_at);
            notify::send(&tell.notifiers, &message).await;
            Ok(exit)
        }
        Err(e) => {
            let what = format!("{} {}", plan.kind.word(), plan.container);
            let message = Message::of_error(&tell.host, &what, &e.to_string(), started_at);
            notify::send(&tell.notifiers, &message).await;
            Err(e.into())
        }
    }
}

/// Refuses, before anything is looked at, to run a command that would need an answer nobody
/// can give: a cron job must say `--yes`, and must not hang on a prompt.
fn ensure_can_confirm(common: &CommonArgs) -> anyhow::Result<()> {
    if common.yes || std::io::stdin().is_terminal() {
        return Ok(());
    }
    Err(cutover::Error::Refused("this command changes containers and asks for confirmation, but standard input is not a terminal; pass --yes to run it unattended".into()).into())
}

fn confirm(question: &str) -> anyhow::Result<()> {
    eprint!("{question} [y/N] ");
    std::io::stderr().flush().ok();
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer)?;
    if matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes") {
        Ok(())
    } else {
        Err(cutover::Error::Refused("not confirmed; nothing was changed".into()).into())
    }
}
