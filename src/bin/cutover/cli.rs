//! The command line, apart from what the commands do.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

const EXIT_CODES: &str = "\
Exit codes:
  0  done: the service runs the target
  1  failed after the service went down, and rolled back: the old container runs again
  2  nothing changed: bad input, a refused precondition, or a failure before any downtime
  3  failed and needs attention: the service may be down; the message says what is left";

#[derive(Parser, Debug)]
#[command(name = "cutover", version, about = "Upgrade a container to a new image safely: pull first, carry its whole configuration, verify, roll back by itself.", after_help = EXIT_CODES)]
pub struct Cli {
    /// Where journals and locks live [default: /var/lib/cutover for root, else $XDG_STATE_HOME/cutover]
    #[arg(long, global = true, env = "CUTOVER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upgrade a running container to another tag or image, keeping its configuration and data
    #[command(after_help = EXIT_CODES, long_about = "Upgrade a running container to another tag or image.\n\n\
The target image is pulled first, and the new container is created as NAME-new with the old one's \
whole configuration and --volumes-from the old one, then compared with it, all before any downtime. \
Only then is the old container stopped and renamed NAME-old, the new one renamed NAME, started and \
awaited until healthy. On success NAME-old is removed (kept with --keep-old); on any failure the \
new container is removed and NAME-old goes back to being NAME. Settings that came from the old \
image's defaults (Env, Labels, Cmd, Entrypoint, ...) are not carried: the new image's apply.")]
    Upgrade(UpgradeArgs),
    /// Go back to the NAME-old container an `upgrade --keep-old` left
    #[command(after_help = EXIT_CODES, long_about = "Go back to the NAME-old container an `upgrade --keep-old` left.\n\n\
The current NAME is stopped and kept aside as NAME-failed (stopped, not removed, so its logs and any \
data only it holds survive; `docker rm NAME-failed` when done); NAME-old becomes NAME again, is \
started and awaited until healthy. If it does not come up, the current container is put back.")]
    Rollback(RollbackArgs),
    /// Finish or undo runs that were interrupted (process killed, machine rebooted)
    #[command(after_help = "Exit codes:\n  0  every service found runs again (finished or rolled back), or there was nothing to recover\n  2  nothing changed: bad input or a refused precondition\n  3  a service could not be brought back: the message says what is left")]
    Recover(RecoverArgs),
    /// List past runs from the journal
    History(HistoryArgs),
    /// For each container: what it runs, the newest version its policy allows, and why
    #[command(long_about = "For each container: what it runs, the newest version its policy allows, the newest overall, and why it is or is not eligible.\n\n\
Without names, the opted-in containers (label cutover.enable=true, or listed in the config); --all for every running container. \
Each repository is asked once (tag list, and a HEAD per floating tag); nothing is pulled.\n\n\
Policies come from labels (cutover.policy=digest|patch|minor|major, cutover.pin=^2024, cutover.prerelease=true, \
cutover.cooldown=3d) over the config file's entry for the container over its defaults; without any, versioned tags follow \
patch releases and other tags (latest) follow their digest.")]
    Check(CheckArgs),
    /// One unattended pass: upgrade the opted-in containers along their policies
    #[command(after_help = AUTO_EXIT_CODES, long_about = "One unattended pass, for cron: check the opted-in containers and upgrade the eligible ones \
one at a time, dependencies first (links, cutover.depends_on, compose depends_on), each with the safety of `cutover upgrade`. \
A failure that rolled back does not stop the pass; one that needs attention does. With --schedule, stay resident and run a \
pass on that cron expression. A host-wide lock keeps two passes from overlapping. No confirmation is asked.")]
    Auto(AutoArgs),
}

const AUTO_EXIT_CODES: &str = "\
Exit codes:
  0   nothing to upgrade (or only outside the maintenance window)
  10  upgraded at least one container, no failure
  1   an upgrade failed and was rolled back (or refused): those services run as before
  2   nothing changed: bad input, or another pass is running
  3   an upgrade failed and needs attention: the pass stopped there";

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// Containers to check [default: the opted-in ones]
    pub names: Vec<String>,
    /// Check every running container
    #[arg(long, conflicts_with = "names")]
    pub all: bool,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct AutoArgs {
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    /// Stay resident and run a pass on this cron expression (5 or 6 fields, e.g. "0 3 * * *")
    #[arg(long, value_name = "CRON")]
    pub schedule: Option<String>,
    /// Start upgrades only inside this daily window, local time (e.g. 02:00-05:00); overrides the config
    #[arg(long, value_name = "HH:MM-HH:MM")]
    pub window: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub health: HealthArgs,
}

#[derive(Args, Debug)]
pub struct DiscoveryArgs {
    /// The YAML config: opted-in containers, their policies, webhook, window (see README)
    #[arg(long, value_name = "FILE", env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// The container to upgrade
    pub name: String,
    /// The tag to move to, in the container's current repository
    #[arg(long, value_name = "TAG", required_unless_present = "image", conflicts_with = "image")]
    pub to: Option<String>,
    /// The image to move to, possibly in another repository
    #[arg(long, value_name = "REPOSITORY:TAG")]
    pub image: Option<String>,
    /// Keep the old container, stopped, as NAME-old, for `cutover rollback`
    #[arg(long)]
    pub keep_old: bool,
    /// Print the plan and the configuration that will be carried; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The container to roll back
    pub name: String,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct RecoverArgs {
    /// Only this container's interrupted runs
    pub name: Option<String>,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Only this container's runs
    pub name: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct CommonArgs {
    /// Do not ask for confirmation (required without a terminal)
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Print the result as JSON on standard output
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct HealthArgs {
    /// Check this URL when the container has no HEALTHCHECK (e.g. http://127.0.0.1:8080/health)
    #[arg(long, value_name = "URL")]
    pub health_url: Option<String>,
    /// The HTTP status --health-url must answer [default: any 2xx]
    #[arg(long, value_name = "CODE", requires = "health_url")]
    pub health_status: Option<u16>,
    /// How long to wait for the new container to be healthy [default: 2m]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,
    /// Without a HEALTHCHECK or URL: how long it must run without exiting or restarting [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub settle: Option<Duration>,
}

const DEFAULT_HEALTH_TIMEOUT: Duration = Duration::from_secs(120);
const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

/// Durations as people write them: `90s`, `2m`, `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text).map_err(|e| format!("{e} (write durations like 90s, 2m or 1h30m)"))
}

impl HealthArgs {
    pub fn policy(&self) -> cutover::health::HealthPolicy {
        self.policy_over(None, None)
    }

    /// The flags over the config file's values over the defaults.
    pub fn policy_over(&self, timeout: Option<Duration>, settle: Option<Duration>) -> cutover::health::HealthPolicy {
        cutover::health::HealthPolicy {
            url: self.health_url.clone(),
            expect_status: self.health_status,
            settle: self.settle.or(settle).unwrap_or(DEFAULT_SETTLE),
            timeout: self.health_timeout.or(timeout).unwrap_or(DEFAULT_HEALTH_TIMEOUT),
        }
    }
}
