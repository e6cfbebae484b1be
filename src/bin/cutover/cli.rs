//! The command line: the commands, and which module runs each. Each command's own arguments
//! live with it, in `commands/`; the groups of flags several of them take, in `args.rs`.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, CommandFactory, Parser, Subcommand};

use crate::commands::{
    auto, auto::AutoArgs, backup, backup::BackupArgs, backups, backups::BackupsArgs, check,
    check::CheckArgs, docs, docs::CompletionsArgs, docs::ManArgs, history, history::HistoryArgs,
    plan, plan::ApplyArgs, plan::ApproveArgs, plan::PendingArgs, plan::PlanArgs, profiles,
    profiles::ProfilesCommand, recover, recover::RecoverArgs, rehearse, rehearse::RehearseArgs,
    restore, restore::RestoreArgs, rollback, rollback::RollbackArgs, task, task::TaskArgs, tasks,
    tasks::TasksArgs, upgrade, upgrade::UpgradeArgs, Site,
};
use crate::output::Exit;

const EXIT_CODES: &str = "\
Exit codes:
  0  done: the service runs the target
  1  failed after the service went down, and rolled back: the old container runs again
  2  nothing changed: bad input, a refused precondition, or a failure before any downtime
  3  failed and needs attention: the service may be down, or the new version was kept serving after a
     migration with no backup to go back with; the message says which and what is left
  4  with --via: a later hop failed and was rolled back: the service runs the last hop that worked
  5  with --rehearse: a step failed on the copy of the database; the upgrade did not start

SIGINT or SIGTERM stop a run between steps: before the downtime nothing changes (2), during it the
old version comes back (1), once the new one was started the upgrade finishes (0).";

const REHEARSE_EXIT_CODES: &str = "\
Exit codes:
  0  every migration passed on the copy
  2  nothing was tried: bad input or a refused precondition
  3  the rehearsal's containers, network or volume could not all be removed: the message names them
  5  a migration failed on the copy: its output is shown; production was not touched

Production is never stopped: a signal stops the rehearsal between steps and removes what it made.";

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
    /// The engine: unix:///PATH, tcp://HOST:PORT (TLS when DOCKER_TLS_VERIFY is set, with DOCKER_CERT_PATH's ca.pem, cert.pem, key.pem) or ssh://[USER@]HOST[:PORT] (through `ssh HOST docker system dial-stdio`, as the docker CLI; with /PATH, ssh forwards the engine's socket PATH on HOST, as Podman's connections name it) [default: DOCKER_HOST, else DOCKER_CONTEXT, else Podman's CONTAINER_HOST, else the docker context in use]
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
    pub fn given(&self) -> cutover::engine::endpoint::EngineGiven {
        cutover::engine::endpoint::EngineGiven {
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
    /// Plan an upgrade now, to carry it out later exactly as planned: its targets pinned to their digests; nothing changes
    #[command(long_about = "Plan an upgrade now, to carry it out later exactly as planned (`cutover apply FILE`, or `cutover approve ID`).\n\n\
Takes what `cutover upgrade` takes (NAME, --with, several HOST/NAME of the config file's fleet, the steps and health options) and \
checks everything an upgrade checks before any downtime (the profile's rules on the running product, the target's existence), \
changing nothing. The plan holds every target pinned to the digest its tag has now, each hop, every step (the backups and \
migrations among them), the downtime expected, each container's identity and a fingerprint of its configuration, when it was made \
and until when it holds (--valid-for), and a checksum of all of it. It is written as JSON to --out FILE, else kept in the state \
directory, where `cutover pending` lists it. Environment values are never written in it (so --env NAME=VALUE is refused).", after_help = PLAN_EXIT_CODES)]
    Plan(Box<PlanArgs>),
    /// Carry out a plan file exactly as planned, or refuse it (altered, expired, its containers changed) before any downtime
    #[command(long_about = "Carry out a plan file `cutover plan --out FILE` wrote, exactly as planned: the pinned digests, even if the tags have moved since, \
and the same steps.\n\n\
Refused with exit 2, before any downtime and with nothing changed, saying what differs: a file altered since it was made (its checksum), \
one that expired, one whose containers are no longer those planned (recreated, another image, another configuration), one whose \
intermediate hops' tags moved, or one whose steps would now differ. A plan applied already does nothing the second time, and says \
so. Each upgrade of a plan runs as `cutover upgrade` runs it; those of several hosts roll one host at a time, the canary host \
first, as --canary and --failure-budget given to `plan` say, and those of one engine stop at the first failure. \
Asks for confirmation unless --yes (required without a terminal).", after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// List the plans that wait for approval in the state directory (`auto` with approval, `plan` without --out)
    Pending(PendingArgs),
    /// Carry out a waiting plan now, as `cutover apply` does
    #[command(after_help = EXIT_CODES)]
    Approve(ApproveArgs),
    /// Try an upgrade's migrations on a copy of the product's database, while it serves untouched
    #[command(after_help = REHEARSE_EXIT_CODES, long_about = "Try an upgrade's migrations on a copy of the product's database, while the product serves untouched.\n\n\
Everything an upgrade checks is checked first (the profile's rules on the running product, the database's access). \
Then, on an internal network of its own (NAME-cutover-rehearse, no route out of it): a server of the database server's own image \
on a fresh volume (NAME-cutover-rehearse-db), given the product's database user, its database and extensions; a dump of \
the product's database read while it serves (one snapshot), restored there; each hop's migration (the profile's, or \
--migrate) run from its new image with the product's configuration, its connection pointed at the copy, none of its \
volumes (empty scratch space in their place), ports or networks; then the new version started on the migrated copy \
(with the profile's calls as it starts, DevLake's migration), awaited healthy, its version checked, and stopped: the \
last hop's, and each hop's whose version migrates as it starts. The report says which step failed and its output, \
how long each migration took, and the window predicted: the stop, the migrations, the start until healthy. Everything the rehearsal made is removed; a rehearsal that was killed \
is removed by `cutover recover NAME`.\n\n\
So far: a PostgreSQL, MySQL or MariaDB database on a container of this engine, its connection held in the product's \
environment. Refused, with the reason: SQL Server databases, embedded databases, a connection in a file, Swarm services.")]
    Rehearse(RehearseArgs),
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
cutover.min_age=3d, cutover.rehearse=true) over the config file's entry for the container over its defaults, and --min-age over them all; without any, versioned tags follow \
patch releases and other tags (latest) follow their digest. A version younger than its min_age (cooldown, its earlier name) is held back, with when it becomes \
eligible; an image that does not say when it was built counts from when cutover first saw it. An eligible target is shown with its release notes, and \
every hop's: the product profile's links, else the pages its image's OCI labels name.\n\n\
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
started one by one; a cluster some of whose nodes may not move is held back whole.\n\n\
A container whose rules say rehearse (label cutover.rehearse=true, or `rehearse: true` in the config) has its upgrade rehearsed \
first, as `cutover rehearse` does, while it serves; when the rehearsal fails it is held back, untouched, and the pass says why.")]
    Auto(AutoArgs),
    /// Print the shell completion script (bash, zsh, fish, ...); install.sh installs them
    Completions(CompletionsArgs),
    /// Print cutover's man page, or write every command's into a directory; install.sh installs them
    Man(ManArgs),
}

pub const TASK_EXIT_CODES: &str = "\
Exit codes:
  0  done: the task's work is done and every container of the group runs healthy
  1  failed after the group stopped, and rolled back: it runs as before, on its old configuration and data
  2  nothing changed: bad input, a refused precondition, or a failure before anything stopped
  3  failed and needs attention: the group may be down; the message says what is left";

pub const PLAN_EXIT_CODES: &str = "\
Exit codes:
  0  the plan was written; nothing was changed
  2  nothing was planned: bad input, or a refused precondition";

pub const AUTO_EXIT_CODES: &str = "\
Exit codes:
  0   nothing to upgrade (or only outside the maintenance window); with approval, nothing moved: a plan
      was written, or there was nothing to plan
  10  upgraded at least one container, no failure
  1   an upgrade failed and was rolled back (or refused): those services run as before
  2   nothing changed: bad input, or another pass is running
  3   an upgrade failed and needs attention: the pass stopped there
  5   a rehearsal failed: that container was held back, untouched (and nothing worse happened)";

impl Command {
    /// Whether the command was asked for JSON, which its errors then are too.
    pub fn json(&self) -> bool {
        match self {
            Command::Upgrade(a) => a.change.common.json,
            Command::Plan(a) => a.upgrade.change.common.json,
            Command::Apply(a) => a.common.json,
            Command::Approve(a) => a.common.json,
            Command::Pending(a) => a.json,
            Command::Rehearse(a) => a.change.common.json,
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

impl Cli {
    /// Runs the command the line names; the engine is resolved only for commands that use one.
    pub async fn run(self) -> anyhow::Result<Exit> {
        let Cli {
            state_dir,
            engine,
            command,
        } = self;
        let site = || Site::new(state_dir.clone(), &engine.given());
        match command {
            Command::Upgrade(args) => upgrade::run(*args, &site()?).await,
            Command::Plan(args) => plan::plan(*args, &site()?).await,
            Command::Apply(args) => plan::apply(args, &site()?).await,
            Command::Pending(args) => plan::pending(args, &site()?),
            Command::Approve(args) => plan::approve(args, &site()?).await,
            Command::Rehearse(args) => rehearse::run(args, &site()?).await,
            Command::Rollback(args) => rollback::run(args, &site()?).await,
            Command::Recover(args) => recover::run(args, &site()?).await,
            Command::History(args) => history::run(args, &site()?),
            Command::Profiles(command) => profiles::run(command, &site()?).await,
            Command::Backup(args) => backup::run(args, &site()?).await,
            Command::Backups(args) => backups::run(args, &site()?).await,
            Command::Restore(args) => restore::run(args, &site()?).await,
            Command::Tasks(args) => tasks::run(args, &site()?).await,
            Command::Task(args) => task::run(args, &site()?, Cli::command()).await,
            Command::Check(args) => check::run(args, &site()?).await,
            Command::Auto(args) => auto::run(args, &site()?).await,
            Command::Completions(args) => Ok(docs::completions(&args, Cli::command())),
            Command::Man(args) => docs::man(&args, Cli::command()),
        }
    }
}
