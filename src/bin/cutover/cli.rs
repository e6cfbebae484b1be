//! The command line, apart from what the commands do.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use cutover::engine::reference::ImageRef;
use cutover::health::{HealthPolicy, HealthSettings};
use cutover::ops::backup::BackupRequest;
use cutover::ops::compose::ComposeRequest;
use cutover::plan::build::{CarriedPath, Migration, Target};
use cutover::plan::steps::VersionSource;
use cutover::plan::UpgradeOptions;
use cutover::profile::Choice;

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

    #[command(subcommand)]
    pub command: Command,
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
version serving (exit 3) rather than start the old one on data it may refuse.")]
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
patch releases and other tags (latest) follow their digest."
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
pass on that cron expression. A host-wide lock keeps two passes from overlapping. No confirmation is asked.")]
    Auto(AutoArgs),
}

const TASK_EXIT_CODES: &str = "\
Exit codes:
  0  done: the task's work is done and every container of the group runs healthy
  1  failed after the group stopped, and rolled back: it runs as before, on its old configuration and data
  2  nothing changed: bad input, a refused precondition, or a failure before anything stopped
  3  failed and needs attention: the group may be down; the message says what is left";

const AUTO_EXIT_CODES: &str = "\
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

#[derive(Args, Debug)]
pub struct BackupArgs {
    /// The container to back up
    pub name: String,
    /// Back up while it runs instead of stopping it
    #[arg(long)]
    pub online: bool,
    /// The product profile that names its database: a name, a file, or none
    #[arg(long, value_name = "NAME|FILE|none")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub what: BackupWhat,
    #[command(flatten)]
    pub place: BackupWhere,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct BackupsArgs {
    /// Only this container's backups
    pub name: Option<String>,
    /// Where backups live [default: STATE_DIR/backups]
    #[arg(long, value_name = "DIR")]
    pub backup_dir: Option<PathBuf>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// The container whose data is replaced
    pub name: String,
    /// The backup (`cutover backups NAME` lists them), or `latest`
    pub backup: String,
    #[command(flatten)]
    pub place: BackupWhere,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args, Debug)]
pub struct TasksArgs {
    /// A container of the product
    pub name: String,
    /// The product profile: a name or a file
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// Print JSON
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct TaskArgs {
    /// A container of the product: the task runs over its whole group
    #[arg(required_unless_present = "help")]
    pub name: Option<String>,
    /// The task, as `cutover tasks NAME` lists it
    #[arg(required_unless_present = "help")]
    pub task: Option<String>,
    /// The task's own options (`cutover tasks NAME` lists them)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "TASK OPTIONS"
    )]
    pub words: Vec<String>,
    /// Print the plan; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The product profile: a name or a file
    #[arg(long, value_name = "NAME|FILE")]
    pub profile: Option<String>,
    /// Take no backup of the database first (say why: your own backup)
    #[arg(long, help_heading = "Backup")]
    pub skip_backup: bool,
    #[command(flatten)]
    pub backup_where: BackupWhere,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
    /// Print help; after TASK, the task's own options
    #[arg(short, long)]
    pub help: bool,
}

impl TaskArgs {
    pub fn backup(&self) -> BackupRequest {
        BackupRequest {
            skip: self.skip_backup,
            dir: self.backup_where.backup_dir.clone(),
            keep: self.backup_where.keep_backups,
            ..BackupRequest::default()
        }
    }

    /// The command line read again with `options` (words after TASK that are not the task's
    /// own) moved before NAME, where they are cutover's options.
    pub fn with_options(&self, options: &[String]) -> Result<TaskArgs, clap::Error> {
        let argv: Vec<String> = std::env::args().collect();
        let at = argv
            .iter()
            .skip(1)
            .position(|a| a == "task")
            .map_or(1, |i| i + 2);
        let end = argv.len() - self.words.len();
        let reordered: Vec<String> = argv[..at]
            .iter()
            .chain(options)
            .chain(&argv[at..end])
            .cloned()
            .collect();
        match Cli::try_parse_from(reordered)?.command {
            Command::Task(args) => Ok(args),
            _ => unreachable!("the same command line names the same command"),
        }
    }
}

/// The value of a `--profile` among words clap did not read (those after a task's name).
pub fn profile_among(words: &[String]) -> Option<String> {
    words
        .iter()
        .enumerate()
        .find_map(|(i, w)| match w.strip_prefix("--profile") {
            Some("") => words.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        })
}

/// The `profile` flag's three forms.
pub fn choice(profile: Option<&str>) -> Choice {
    match profile {
        None => Choice::Auto,
        Some("none") => Choice::Without,
        Some(name) => Choice::Named(name.to_string()),
    }
}

#[derive(Subcommand, Debug)]
pub enum ProfilesCommand {
    /// The profiles this host knows (built in, /etc/cutover/profiles, ~/.config/cutover/profiles) and what they match
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// A profile as cutover resolved it, in YAML
    Show {
        /// A profile name, or a file
        name: String,
    },
    /// Check a profile file: its errors name the line and column
    Validate { file: PathBuf },
    /// Try a container's profile on the running product, changing nothing: its health and version rules for the version that runs, its database (found, dumpable, restorable, its extensions), on every container of its group. An upgrade runs the same checks before anything stops.
    #[command(
        after_help = "Exit codes:\n  0  the product answers as its profile says\n  2  a rule does not match (each is shown with what the product answered), or bad input"
    )]
    Check {
        /// The container
        name: String,
        /// The profile to try, a name or a file [default: the container's own]
        #[arg(long, value_name = "NAME|FILE")]
        profile: Option<String>,
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
}

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
    /// The YAML config: opted-in containers, their policies, insecure registries, webhook, window (see README)
    #[arg(long, value_name = "FILE", env = "CUTOVER_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub struct UpgradeArgs {
    /// The container to upgrade (with --with, the first of the group)
    #[arg(required_unless_present = "project")]
    pub name: Option<String>,
    /// Upgrade the services of this compose project as one group: those that run the image most
    /// of its services run (not its database), or those named with --service; dependents stop first
    #[arg(long, value_name = "PROJECT", conflicts_with_all = ["name", "with"])]
    pub project: Option<String>,
    /// With --project: a service to upgrade (repeatable)
    #[arg(long, value_name = "SERVICE", requires = "project")]
    pub service: Vec<String>,
    /// Leave compose files alone (their old tag would bring the old version back on the next
    /// `docker-compose up --force-recreate` or `down`/`up`)
    #[arg(long)]
    pub no_compose_edit: bool,
    /// The tag to move to, in the container's current repository
    #[arg(
        long,
        value_name = "TAG",
        required_unless_present = "image",
        conflicts_with = "image"
    )]
    pub to: Option<String>,
    /// The image to move to, possibly in another repository
    #[arg(long, value_name = "REPOSITORY:TAG")]
    pub image: Option<String>,
    /// Go through this intermediate tag first, as an upgrade of its own (repeatable, in order)
    #[arg(long, value_name = "TAG")]
    pub via: Vec<String>,
    /// Another container that moves with it to the same tag (repeatable; stopped in the order given, started in reverse)
    #[arg(long = "with", value_name = "NAME")]
    pub with: Vec<String>,
    /// Keep the old container, stopped, as NAME-old, for `cutover rollback` (with --via: the one of the last hop)
    #[arg(long)]
    pub keep_old: bool,
    /// Print the plan and the configuration that will be carried; change nothing
    #[arg(long)]
    pub dry_run: bool,
    /// The product profile to follow: a name (`cutover profiles list`), a file, or `none` [default: the container's
    /// cutover.profile label, else the profile matching its image]
    #[arg(long, value_name = "NAME|FILE|none")]
    pub profile: Option<String>,
    #[command(flatten)]
    pub discovery: DiscoveryArgs,
    #[command(flatten)]
    pub steps: StepArgs,
    /// Take no backup (say why: a database cutover cannot dump, your own backup)
    #[arg(long, help_heading = "Backup")]
    pub skip_backup: bool,
    /// Take the backup while the old version still runs (less downtime, a backup that may miss the last writes)
    #[arg(long, help_heading = "Backup", conflicts_with = "skip_backup")]
    pub backup_online: bool,
    #[command(flatten)]
    pub backup_what: BackupWhat,
    #[command(flatten)]
    pub backup_where: BackupWhere,
    #[command(flatten)]
    pub health: HealthArgs,
    #[command(flatten)]
    pub common: CommonArgs,
}

/// Steps around the swap, for products that need more than a new container.
#[derive(Args, Debug)]
#[command(next_help_heading = "Steps around the swap")]
pub struct StepArgs {
    /// While the service is stopped, run this command in a one-shot container from the new image
    /// with the old container's configuration (e.g. "migrate head"); it must exit 0. Stdin is
    /// closed: give a tool that asks (y/N) its non-interactive flag
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub migrate: Option<String>,
    /// The entrypoint of the migration container [default: the new image's]
    #[arg(
        long,
        value_name = "CMD",
        requires = "migrate",
        allow_hyphen_values = true
    )]
    pub migrate_entrypoint: Option<String>,
    /// How long the migration may run before it is killed and the upgrade rolled back
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "30m", requires = "migrate")]
    pub migrate_timeout: Duration,
    /// Run this command inside the old container before it stops; a failure aborts with no downtime (repeatable)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub exec_before: Vec<String>,
    /// Run this command inside the new container once it is healthy; a failure rolls back (repeatable)
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub exec_after: Vec<String>,
    /// How long each --exec-before/--exec-after command may run
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "5m")]
    pub hook_timeout: Duration,
    /// Copy this file, which lives on no volume, from the old container into the new one, with its mode and owner (repeatable)
    #[arg(long, value_name = "PATH")]
    pub carry_file: Vec<String>,
    /// Like --carry-file, for a file that may not exist
    #[arg(long, value_name = "PATH")]
    pub carry_file_if_present: Vec<String>,
    /// Set a variable in the new container (repeatable)
    #[arg(long = "env", value_name = "NAME=VALUE")]
    pub env: Vec<String>,
    /// Remove a variable you set from the new container (a default of the new image still applies) (repeatable)
    #[arg(long, value_name = "NAME")]
    pub env_unset: Vec<String>,
    /// Move a variable's value to a new name in the new container, e.g. ENCODE_KEY=ENCRYPTION_SECRET (repeatable)
    #[arg(long, value_name = "OLD=NEW")]
    pub env_rename: Vec<String>,
    /// After health, the new container must report the target version at this URL: http://HOST:PORT/PATH, or /PATH
    /// or :PORT/PATH on the container, with #FIELD naming a JSON field (e.g. /version#service.version)
    #[arg(
        long,
        value_name = "URL[#FIELD]",
        conflicts_with = "expect_version_cmd"
    )]
    pub expect_version: Option<String>,
    /// After health, this command inside the new container must print the target version
    #[arg(long, value_name = "CMD", allow_hyphen_values = true)]
    pub expect_version_cmd: Option<String>,
}

#[derive(Args, Debug)]
pub struct RollbackArgs {
    /// The container to roll back
    pub name: String,
    /// Keep the current data rather than restore the backup taken before the upgrade (the old
    /// version may not run on data the new one migrated)
    #[arg(long)]
    pub no_restore: bool,
    #[command(flatten)]
    pub backup_where: BackupWhere,
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
    /// How long to wait for the new container to be healthy [default: 2m, or the profile's]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub health_timeout: Option<Duration>,
    /// Without a HEALTHCHECK, URL or port: how long it must also run without exiting or restarting [default: 10s]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub settle: Option<Duration>,
}

/// Durations as people write them: `90s`, `2m`, `1h30m`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    humantime::parse_duration(text)
        .map_err(|e| format!("{e} (write durations like 90s, 2m or 1h30m)"))
}

impl HealthArgs {
    /// The flags over the config file's timeout and settle.
    pub fn settings(
        &self,
        timeout: Option<Duration>,
        settle: Option<Duration>,
    ) -> Result<HealthSettings, String> {
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
            settle: self.settle.or(settle),
            timeout: self.health_timeout.or(timeout),
        })
    }

    /// The flags over the defaults alone, for commands that read no config file.
    pub fn policy(&self) -> Result<HealthPolicy, String> {
        Ok(self.settings(None, None)?.over(HealthPolicy::default()))
    }
}

/// A tag as `--to` and `--via` take it.
fn tag(text: &str) -> Result<String, String> {
    if text.is_empty() || text.contains(['/', '@', ':']) || text.contains(char::is_whitespace) {
        return Err(format!(
            "{text:?} is not a tag; use --image for a whole reference"
        ));
    }
    Ok(text.to_string())
}

/// A command line, split the way a shell would (quotes group words; no variables, no globs).
fn command(flag: &str, text: &str) -> Result<Vec<String>, String> {
    let words = shell_words::split(text).map_err(|e| format!("{flag} {text:?}: {e}"))?;
    if words.is_empty() {
        return Err(format!("{flag} needs a command"));
    }
    Ok(words)
}

fn pair<'a>(flag: &str, text: &'a str, shape: &str) -> Result<(&'a str, &'a str), String> {
    match text.split_once('=') {
        Some((name, value)) if valid_env_name(name) => Ok((name, value)),
        _ => Err(format!("{flag} {text:?}: write {shape}")),
    }
}

fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains(char::is_whitespace)
}

impl UpgradeArgs {
    /// The raw flags, validated into the options of an upgrade.
    pub fn options(&self) -> Result<UpgradeOptions, String> {
        let target =
            match (&self.to, &self.image) {
                (Some(to), _) => Target::Tag(tag(to)?),
                (None, Some(image)) => Target::Image(ImageRef::parse(image).ok_or_else(|| {
                    format!("{image} is not an image reference (REPOSITORY[:TAG])")
                })?),
                (None, None) => unreachable!("clap requires --to or --image"),
            };
        let mut options = UpgradeOptions::new(target, HealthPolicy::default());
        options.via = self.via.iter().map(|v| tag(v)).collect::<Result<_, _>>()?;
        options.keep_old = self.keep_old;
        let s = &self.steps;
        let steps = &mut options.steps;
        steps.migrate = match &s.migrate {
            Some(cmd) => Some(Migration {
                shown: None,
                env: Vec::new(),
                command: command("--migrate", cmd)?,
                entrypoint: s
                    .migrate_entrypoint
                    .as_deref()
                    .map(|e| command("--migrate-entrypoint", e))
                    .transpose()?,
                timeout: s.migrate_timeout,
                fails_if_output_has: Vec::new(),
            }),
            None => None,
        };
        steps.exec_before = s
            .exec_before
            .iter()
            .map(|c| command("--exec-before", c))
            .collect::<Result<_, _>>()?;
        steps.exec_after = s
            .exec_after
            .iter()
            .map(|c| command("--exec-after", c))
            .collect::<Result<_, _>>()?;
        steps.carry = s
            .carry_file
            .iter()
            .map(|p| CarriedPath {
                path: p.clone(),
                optional: false,
            })
            .chain(s.carry_file_if_present.iter().map(|p| CarriedPath {
                path: p.clone(),
                optional: true,
            }))
            .collect();
        for entry in &s.env {
            let (name, value) = pair("--env", entry, "NAME=VALUE")?;
            steps.env.set.push((name.to_string(), value.to_string()));
        }
        for name in &s.env_unset {
            if !valid_env_name(name) || name.contains('=') {
                return Err(format!("--env-unset {name:?}: give a variable name"));
            }
            steps.env.unset.push(name.clone());
        }
        for entry in &s.env_rename {
            let (old, new) = pair("--env-rename", entry, "OLD=NEW")?;
            if !valid_env_name(new) {
                return Err(format!("--env-rename {entry:?}: write OLD=NEW"));
            }
            steps.env.rename.push((old.to_string(), new.to_string()));
        }
        steps.expect_version = match (&s.expect_version, &s.expect_version_cmd) {
            (Some(url), _) => {
                let address = url.split('#').next().unwrap_or_default();
                let known = ["http://", "https://", "/", ":"]
                    .iter()
                    .any(|p| address.starts_with(p));
                if !known {
                    return Err(format!("--expect-version {url:?}: write http://HOST:PORT/PATH, /PATH or :PORT/PATH, optionally with #FIELD"));
                }
                Some(VersionSource::Url(url.clone()))
            }
            (None, Some(cmd)) => Some(VersionSource::Command(command(
                "--expect-version-cmd",
                cmd,
            )?)),
            (None, None) => None,
        };
        options.hook_timeout = s.hook_timeout;
        Ok(options)
    }

    pub fn compose(&self) -> ComposeRequest {
        ComposeRequest {
            project: self.project.clone(),
            services: self.service.clone(),
            no_edit: self.no_compose_edit,
            dry_run: self.dry_run,
        }
    }

    pub fn backup(&self) -> BackupRequest {
        BackupRequest {
            skip: self.skip_backup,
            db_var: self.backup_what.backup_db.clone(),
            volumes: self.backup_what.backup_volumes,
            online: self.backup_online,
            dir: self.backup_where.backup_dir.clone(),
            keep: self.backup_where.keep_backups,
        }
    }
}
