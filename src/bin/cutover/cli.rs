//! The command line: the commands, and the groups of flags several of them take. Each
//! command's own arguments live with it, in `commands/`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cutover::health::HealthSettings;
use cutover::ops::backup::BackupRequest;
use cutover::profile::Choice;

use crate::commands::{
    auto::AutoArgs, backup::BackupArgs, backups::BackupsArgs, check::CheckArgs,
    history::HistoryArgs, profiles::ProfilesCommand, recover::RecoverArgs, restore::RestoreArgs,
    rollback::RollbackArgs, task::TaskArgs, tasks::TasksArgs, upgrade::UpgradeArgs,
};

const EXIT_CODES: &str = "\
Exit codes:
  0  done: the service runs the target
  1  failed after the service went down, and rolled back: the old container runs again
  2  nothing changed: bad input, a refused precondition, or a failure before any downtime
  3  failed and needs attention: the service may be down, or the new version was kept serving after a
     migration with no backup to go back with; the message says which and what is left
  4  with --via: a later hop failed and was rolled back: the service runs the last hop that worked

SIGINT or SIGTERM stop a run between steps: before the downtime nothing changes (2), during it the
old version comes back (1), once the new one was started the upgrade finishes (0).";

#[derive(Parser, Debug)]
#[command(name = "cutover", version, about = "Upgrade a container to a new image safely: pull first, carry its whole configuration, verify, roll back by itself.", after_help = EXIT_CODES)]
pub struct Cli {
    /// Where journals and locks live [default: /var/lib/cutover for root, else $XDG_STATE_HOME/cutover]
    #[arg(long, global = true, env = "CUTOVER_STATE_DIR", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,

    #[command(flatten)]
    pub engine: EngineArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Which engine, in the docker CLI's own words: what `docker` reaches, cutover reaches.
#[derive(Args, Debug, Clone, Default)]
pub struct EngineArgs {
    /// The engine: unix:///PATH, tcp://HOST:PORT (TLS when DOCKER_TLS_VERIFY is set, with DOCKER_CERT_PATH's ca.pem, cert.pem, key.pem) or ssh://[USER@]HOST[:PORT] (through `ssh HOST docker system dial-stdio`, as the docker CLI) [default: DOCKER_HOST, else the docker context]
    #[arg(short = 'H', long, global = true, value_name = "HOST")]
    pub host: Option<String>,
    /// A docker context (`docker context ls`), read from DOCKER_CONFIG or ~/.docker, its TLS material included [default: DOCKER_CONTEXT, else the one `docker context use` chose]
    #[arg(long, global = true, value_name = "NAME")]
    pub context: Option<String>,
    /// How long one run waits in all for the engine while it does not answer (dockerd restarting): once spent, the run stops, journaled, and exits 3 for `cutover recover` [default: CUTOVER_ENGINE_WAIT, else 2m; a fleet's hosts: their engine_wait, else CUTOVER_ENGINE_WAIT]
    #[arg(long, global = true, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub engine_wait: Option<Duration>,
}

impl EngineArgs {
    pub fn given(&self) -> cutover::engine::endpoint::Given {
        cutover::engine::endpoint::Given {
            host: self.host.clone(),
            context: self.context.clone(),
            wait: self.engine_wait,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Upgrade a running container to another tag or image, keeping its configuration and data
    #[command(after_help = EXIT_CODES, long_about = "Upgrade a running container to another tag or image.\n\n\
Before any downtime: with a product profile, its rules are tried on the running product (health, \
version, database; `cutover profiles check` alone) and a mismatch is refused; the target image is pulled, the new container is created as NAME-new with the old \
one's whole configuration (plus --env changes) and --volumes-from the old one, and compared with it; \
--exec-before runs inside the old container and --carry-file copies files into the new one. Then the old \
container is stopped, the --migrate command runs in a one-shot container from the new image, the old \
container is renamed NAME-old and the new one NAME, started and awaited until healthy; --exec-after and \
--expect-version check it. On success NAME-old is removed (kept with --keep-old); on any failure every \
step is undone and NAME-old is NAME again.\n\n\
--with moves more containers in the same run (all created first, all stopped, then started in reverse \
order); --migrate and the hooks run once, with the first container's configuration, while --carry-file \
and --env apply to each. --via goes through intermediate tags, each hop a full upgrade of its own. Settings that came from \
the old image's defaults (Env, Labels, Cmd, Entrypoint, ...) are not carried: the new image's apply. \
A check that fails after a migration moved the data on, with no backup to go back with, keeps the new \
version serving (exit 3) rather than start the old one on data it may refuse.\n\n\
Several HOST/NAME of the config file's fleet are a rolling upgrade, as `cutover auto` rolls out over a fleet \
(--canary, --parallel, --failure-budget), each container to the target with these options; a product's \
containers on several hosts that share one database move as one cluster. One node of such a cluster is \
refused alone.\n\n\
On a Swarm manager, NAME may be a service, and --stack moves a stack's services: the target is pulled, \
the spec updated to it pinned to its digest, every task awaited; on failure the previous image is put \
back. With --migrate, the services are scaled to 0 and the command runs once as a Swarm job from the new \
image with the first service's task template. A product's services follow its profile, read and checked \
through a running task on this node: scaled to 0, the database backed up, the profile's migration run as \
a job, its settings given (a new Swarm secret or config where the old one holds them), its calls made and \
its rules tried on the new tasks; on failure the old image goes back with no task running and the \
database is restored before the replicas return. --stack-file writes the new image in the stack's files.")]
    Upgrade(Box<UpgradeArgs>),
    /// Go back to the NAME-old container an `upgrade --keep-old` left
    #[command(after_help = EXIT_CODES, long_about = "Go back to the NAME-old container an `upgrade --keep-old` left.\n\n\
The current NAME is stopped and kept aside as NAME-failed (stopped, not removed, so its logs and any \
data only it holds survive; `docker rm NAME-failed` when done); NAME-old becomes NAME again, is \
started and awaited until healthy. If it does not come up, the current container is put back.\n\n\
When the upgrade took a backup while NAME-old ran, its data is restored first (the old version may not \
run on data the new one migrated): the current data is backed up, then the backup put back. Data \
written since the upgrade is then only in that new backup; --no-restore keeps the current data.")]
    Rollback(RollbackArgs),
    /// Finish or undo runs that were interrupted (process killed, machine rebooted)
    #[command(
        after_help = "Exit codes:\n  0  every service found runs again (finished or rolled back), or there was nothing to recover\n  2  nothing changed: bad input or a refused precondition\n  3  a service could not be brought back: the message says what is left"
    )]
    Recover(RecoverArgs),
    /// List past runs from the journal
    History(HistoryArgs),
    /// For each container: what it runs, the newest version its policy allows, and why
    #[command(
        long_about = "For each container: what it runs, the newest version its policy allows, the newest overall, and why it is or is not eligible.\n\n\
Without names, the opted-in containers (label cutover.enable=true, or listed in the config); --all for every running container. \
Each repository is asked once (tag list, and a HEAD per floating tag); nothing is pulled.\n\n\
Policies come from labels (cutover.policy=digest|patch|minor|major, cutover.pin=^2024, cutover.prerelease=true, \
cutover.cooldown=3d) over the config file's entry for the container over its defaults; without any, versioned tags follow \
patch releases and other tags (latest) follow their digest.\n\n\
With a config file that names `hosts` (a fleet: each a docker context or an engine's address), every host is read at once \
and its containers are HOST/NAME; a host that cannot be read is named and the exit code is 2. \
A product's containers on several hosts that share one database are one cluster: each lists it, or is held back (held_back) \
when the cluster cannot move as a whole."
    )]
    Check(CheckArgs),
    /// Product profiles: list them, show one, or check a file
    #[command(subcommand)]
    Profiles(ProfilesCommand),
    /// Back up a container's database (named by its profile or --backup-db) and volumes: stopped, backed up, started
    #[command(after_help = EXIT_CODES)]
    Backup(BackupArgs),
    /// List backups, newest last
    Backups(BackupsArgs),
    /// Put a backup back: stop the container, back up its current data, restore, start, check; a failure puts the current data back
    #[command(after_help = EXIT_CODES)]
    Restore(RestoreArgs),
    /// The maintenance tasks a container's product profile offers, with their options
    Tasks(TasksArgs),
    /// Run a task of the container's product profile over its whole group (Anchore's migrate-object-storage)
    #[command(after_help = TASK_EXIT_CODES, long_about = "Run a task of the container's product profile over its whole group: every container of the product on the same database (`cutover tasks NAME` lists the tasks and their options).

Before anything stops: the files given parse and have what the task needs, the containers that do the work agree on their configuration, the database can be backed up. Then every container of the group is stopped, the database backed up, the task's commands run in one-shot containers from the product's image with the configuration of the container that does the work (their exit codes and output checked), configuration files are swapped (the old one kept beside the new), and the group is started and awaited healthy. On any failure every step is undone: the task's work reversed (Anchore: the migration run back) or the backup restored, the old configuration put back, the group started as before.

The task's options come after TASK; cutover's own options may come before NAME or after TASK.", disable_help_flag = true,
        override_usage = "cutover task [OPTIONS] <NAME> <TASK> [TASK OPTIONS]...")]
    Task(TaskArgs),
    /// One unattended pass: upgrade the opted-in containers along their policies
    #[command(after_help = AUTO_EXIT_CODES, long_about = "One unattended pass, for cron: check the opted-in containers and upgrade the eligible ones \
one at a time, dependencies first (links, cutover.depends_on, compose depends_on), each with the safety of `cutover upgrade`. \
A failure that rolled back does not stop the pass; one that needs attention does. With --schedule, stay resident and run a \
pass on that cron expression. A host-wide lock keeps two passes from overlapping. No confirmation is asked.\n\n\
With a config file that names `hosts`, one pass is a rolling upgrade of the fleet: the canary host alone first (--canary), \
then the others --parallel N at a time; it stops when more hosts failed than --failure-budget allows or one needs attention, \
leaving every host it did not reach as it was. A product's containers on several hosts that share one database (Quay, Anchore) \
move first, as one cluster: every node stopped, the one beside the database backed up and migrated once, then the others \
started one by one; a cluster some of whose nodes may not move is held back whole.")]
    Auto(AutoArgs),
    /// Print the shell completion script (bash, zsh, fish, ...); install.sh installs them
    Completions(CompletionsArgs),
    /// Print cutover's man page, or write every command's into a directory; install.sh installs them
    Man(ManArgs),
}

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Write cutover.1 and a cutover-COMMAND.1 for each command into this directory
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub const TASK_EXIT_CODES: &str = "\
Exit codes:
  0  done: the task's work is done and every container of the group runs healthy
  1  failed after the group stopped, and rolled back: it runs as before, on its old configuration and data
  2  nothing changed: bad input, a refused precondition, or a failure before anything stopped
  3  failed and needs attention: the group may be down; the message says what is left";

pub const AUTO_EXIT_CODES: &str = "\
Exit codes:
  0   nothing to upgrade (or only outside the maintenance window)
  10  upgraded at least one container, no failure
  1   an upgrade failed and was rolled back (or refused): those services run as before
  2   nothing changed: bad input, or another pass is running
  3   an upgrade failed and needs attention: the pass stopped there";

/// What a backup holds beyond the database a profile names.
#[derive(Args, Debug)]
#[command(next_help_heading = "Backup")]
pub struct BackupWhat {
    /// A variable of the container that holds its database's URL (postgres://... or mysql://...), when no profile names it
    #[arg(long, value_name = "VAR")]
    pub backup_db: Option<String>,
    /// Back up the container's volumes and bind mounts too
    #[arg(long)]
    pub backup_volumes: bool,
}

#[derive(Args, Debug)]
#[command(next_help_heading = "Backup")]
pub struct BackupWhere {
    /// Where backups live, a folder per container [default: STATE_DIR/backups]
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// How many backups of a container to keep [default: 5]
    #[arg(long, value_name = "N")]
    pub keep_backups: Option<usize>,
}

impl BackupWhere {
    /// A request for backups kept where these flags say.
    pub fn request(&self) -> BackupRequest {
        BackupRequest {
            dir: self.backup_dir.clone(),
            keep: self.keep_backups,
            ..BackupRequest::default()
        }
    }
}

/// The `profile` flag's three forms.
pub fn choice(profile: Option<&str>) -> Choice {
    match profile {
        None => Choice::Auto,
        Some("none") => Choice::Without,
        Some(name) => Choice::Named(name.to_string()),
    }
}

/// How a rolling upgrade goes over a fleet's hosts (`auto`, `upgrade` of several HOST/NAME).
#[derive(Args, Debug)]
#[command(next_help_heading = "Rolling over a fleet")]
pub struct RolloutArgs {
    /// The host that goes first, alone; the rest follow only if it all went well [default: the first host with something to upgrade]
    #[arg(long, value_name = "HOST")]
    pub canary: Option<String>,
    /// How many hosts upgrade at once after the canary
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub parallel: u64,
    /// How many failed hosts the rollout tolerates after the canary before it stops
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub failure_budget: usize,
}

impl RolloutArgs {
    pub fn rollout(&self) -> cutover::discover::rollout::Rollout {
        cutover::discover::rollout::Rollout {
            canary: self.canary.clone(),
            parallel: usize::try_from(self.parallel).unwrap_or(usize::MAX),
            failure_budget: self.failure_budget,
        }
    }
}

#[derive(Args, Debug)]
pub struct DiscoveryArgs {
    /// The YAML config: opted-in containers, their policies, the hosts of a fleet, insecure registries, notification URLs, window, health timeout and settle (see README)
    #[arg(long, value_name = "FILE", env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
}

/// What every command that changes containers takes; flattened last, since its groups set the
/// help headings of what follows them.
#[derive(Args, Debug)]
#[command(next_help_heading = "Common")]
pub struct ChangeArgs {
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The product profile to follow: a name (`cutover profiles list`), a file, or `none` [default: the container's
    /// cutover.profile label, else the profile matching its image]
    #[arg(long, value_name = "NAME|FILE|none")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub notify: NotifyArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub health: HealthArgs,
}

#[derive(Args, Debug, Clone, Default)]
pub struct NotifyArgs {
    /// Send a message of what this did to URL (repeatable; adds to the config file's `notify`):
    /// ntfy://, gotify://, slack://, discord://, workflows:// (Teams), matrix://, smtp://,
    /// mailto://, json://, apprise://, their TLS forms ending in s, each with
    /// ?level=all|change|failure [default level: change] (README "Notifications")
    // Read by `commands::config_told`, not by clap, whose error would quote the URL's token.
    #[arg(long = "notify", value_name = "URL")]
    pub urls: Vec<String>,
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
#[command(next_help_heading = "Health")]
pub struct HealthArgs {
    /// Require this URL to answer too, besides the image's HEALTHCHECK if it has one (e.g. http://127.0.0.1:8080/health)
    #[arg(long, value_name = "URL", conflicts_with = "health_port")]
    pub health_url: Option<String>,
    /// Require this port of the container to answer too, reached through its address or its published binding
    #[arg(long, value_name = "PORT")]
    pub health_port: Option<u16>,
    /// The path asked on --health-port
    #[arg(
        long,
        value_name = "PATH",
        default_value = "/",
        requires = "health_port"
    )]
    pub health_path: String,
    /// Ask --health-port over https, without verifying its certificate (products that serve TLS themselves serve self-signed ones)
    #[arg(long, requires = "health_port")]
    pub health_https: bool,
    /// The HTTP status --health-url or --health-port must answer [default: any 2xx]
    #[arg(long, value_name = "CODE")]
    pub health_status: Option<u16>,
    /// A field the JSON answer must hold, e.g. status_code=200 or databaseStatus=OK (repeatable)
    #[arg(long, value_name = "FIELD=VALUE")]
    pub health_json: Vec<String>,
    /// How long to wait for the new container to be healthy [default: the container's cutover.health_timeout label, else the config file's, else the profile's, else 2m]
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub health_timeout: Option<Duration>,
    /// Without a HEALTHCHECK, URL or port: how long it must also run without exiting or restarting [default: the cutover.settle label, else the config file's, else 10s]
    #[arg(long, value_name = "DURATION", value_parser = cutover::duration::parse)]
    pub settle: Option<Duration>,
}

impl HealthArgs {
    /// The command line's layer of the health settings.
    pub fn settings(&self) -> Result<HealthSettings, String> {
        let named = self.health_url.is_some() || self.health_port.is_some();
        if !named && (self.health_status.is_some() || !self.health_json.is_empty()) {
            return Err("--health-status and --health-json judge the answer of --health-url or --health-port: give one of them".into());
        }
        Ok(HealthSettings {
            url: self.health_url.clone(),
            port: self.health_port,
            path: Some(self.health_path.clone()),
            tls: self.health_https,
            expect_status: self.health_status,
            json: self
                .health_json
                .iter()
                .map(|c| c.parse())
                .collect::<Result<_, _>>()?,
            settle: self.settle,
            timeout: self.health_timeout,
        })
    }
}

impl Command {
    /// Whether the command was asked for JSON, which its errors then are too.
    pub fn json(&self) -> bool {
        match self {
            Command::Upgrade(a) => a.change.common.json,
            Command::Rollback(a) => a.change.common.json,
            Command::Backup(a) => a.change.common.json,
            Command::Restore(a) => a.change.common.json,
            Command::Recover(a) => a.common.json,
            Command::History(a) => a.json,
            Command::Profiles(p) => p.json(),
            Command::Backups(a) => a.json,
            Command::Check(a) => a.json,
            Command::Auto(a) => a.json,
            Command::Tasks(a) => a.json,
            // Options after TASK are cutover's too.
            Command::Task(a) => a.change.common.json || a.words.iter().any(|w| w == "--json"),
            Command::Completions(_) | Command::Man(_) => false,
        }
    }
}
