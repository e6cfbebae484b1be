//! The `cutover` command: parses arguments, asks for confirmation, calls the library and turns
//! its result into output and an exit code.

mod cli;
mod output;

use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use cutover::discover::auto;
use cutover::discover::check::{self, Selection};
use cutover::discover::config::Config;
use cutover::discover::schedule::{Schedule, Window};
use cutover::engine::registry::RegistryClient;
use cutover::engine::DockerEngine;
use cutover::ops::backup::{self, BackupRequest};
use cutover::ops::preflight::Prepared;
use cutover::ops::{history, live, rollback, task, upgrade};
use cutover::profile::Catalog;
use cutover::run::journal::{self, StateDir};
use cutover::run::recover;
use cutover::run::Interrupt;
use indicatif::MultiProgress;

use cli::{Cli, Command, CommonArgs, ProfilesCommand};
use output::Exit;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(cutover::secrets::RedactingStderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CUTOVER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            return output::fatal(
                &anyhow::anyhow!("cannot start the async runtime: {e}"),
                false,
            )
        }
    };
    let json = match &cli.command {
        Command::Upgrade(a) => a.common.json,
        Command::Rollback(a) => a.common.json,
        Command::Recover(a) => a.common.json,
        Command::History(a) => a.json,
        Command::Profiles(ProfilesCommand::List { json } | ProfilesCommand::Check { json, .. }) => {
            *json
        }
        Command::Profiles(_) => false,
        Command::Backup(a) => a.common.json,
        Command::Backups(a) => a.json,
        Command::Restore(a) => a.common.json,
        Command::Check(a) => a.json,
        Command::Auto(a) => a.json,
        Command::Tasks(a) => a.json,
        // Options after TASK are cutover's too.
        Command::Task(a) => a.common.json || a.words.iter().any(|w| w == "--json"),
    };
    match runtime.block_on(run(cli)) {
        Ok(exit) => exit.into(),
        Err(e) => output::fatal(&e, json),
    }
}

async fn run(cli: Cli) -> anyhow::Result<Exit> {
    let state_root = cli
        .state_dir
        .clone()
        .unwrap_or_else(journal::default_state_dir);
    match cli.command {
        Command::Upgrade(args) => {
            let changes = !args.dry_run;
            if changes {
                ensure_can_confirm(&args.common)?;
            }
            let options = args.options().map_err(refused)?;
            let config = load_config(&args.discovery)?;
            let health = args.health.settings(None, None).map_err(refused)?;
            let catalog = load_profiles()?;
            let (engine, state) = connect(&state_root).await?;
            let request = upgrade::UpgradeRequest {
                name: args.name.clone().unwrap_or_default(),
                with: args.with.clone(),
                options,
                health,
                profile: cli::choice(args.profile.as_deref()),
                insecure_registries: config.insecure_registries.clone(),
                backup: args.backup(),
                compose: args.compose(),
            };
            let prepared = upgrade::prepare(&engine, &state, &catalog, &request).await?;
            carry_out(prepared, &engine, &state, args.dry_run, &args.common).await
        }
        Command::Rollback(args) => {
            if !args.dry_run {
                ensure_can_confirm(&args.common)?;
            }
            let health = args.health.policy().map_err(refused)?;
            let (engine, state) = connect(&state_root).await?;
            let request = BackupRequest {
                dir: args.backup_where.backup_dir.clone(),
                keep: args.backup_where.keep_backups,
                ..BackupRequest::default()
            };
            let prepared = rollback::prepare(
                &engine,
                &state,
                &args.name,
                health,
                !args.no_restore,
                &request,
            )
            .await?;
            carry_out(prepared, &engine, &state, args.dry_run, &args.common).await
        }
        Command::Recover(args) => {
            ensure_can_confirm(&args.common)?;
            let (engine, state) = connect(&state_root).await?;
            let pending = state.unfinished(args.name.as_deref())?;
            if !pending.is_empty() && !args.common.yes {
                let names: Vec<String> =
                    pending.iter().map(|r| r.plan.members.join(", ")).collect();
                confirm(&format!(
                    "Recover the interrupted runs of {}?",
                    names.join(", ")
                ))?;
            }
            let interrupt = Interrupt::from_signals();
            let recoveries =
                recover::recover(&engine, &state, args.name.as_deref(), &interrupt).await?;
            Ok(output::recoveries(&recoveries, args.common.json))
        }
        Command::Profiles(command) => {
            let catalog = load_profiles()?;
            match command {
                ProfilesCommand::List { json } => Ok(output::profiles(&catalog, json)),
                ProfilesCommand::Show { name } => {
                    let loaded = catalog.named(&name).map_err(|e| refused(e.to_string()))?;
                    Ok(output::profile(&loaded))
                }
                ProfilesCommand::Check {
                    name,
                    profile,
                    json,
                } => {
                    let engine = DockerEngine::connect().await?;
                    let choice = cli::choice(profile.as_deref());
                    let (profile, findings) =
                        live::check_container(&engine, &catalog, &name, &choice).await?;
                    Ok(output::profile_check(&name, &profile, &findings, json))
                }
                ProfilesCommand::Validate { file } => {
                    let loaded =
                        cutover::profile::load_file(&file).map_err(|e| refused(e.to_string()))?;
                    println!(
                        "{}: valid profile {:?}",
                        file.display(),
                        loaded.profile.name
                    );
                    Ok(output::Exit::Done)
                }
            }
        }
        Command::Backup(args) => {
            ensure_can_confirm(&args.common)?;
            let health = args.health.policy().map_err(refused)?;
            let catalog = load_profiles()?;
            let request = BackupRequest {
                db_var: args.what.backup_db.clone(),
                volumes: args.what.backup_volumes,
                online: args.online,
                dir: args.place.backup_dir.clone(),
                keep: args.place.keep_backups,
                skip: false,
            };
            let (engine, state) = connect(&state_root).await?;
            let prepared = backup::prepare_backup(
                &engine,
                &state,
                &catalog,
                &args.name,
                &cli::choice(args.profile.as_deref()),
                &request,
                health,
            )
            .await?;
            carry_out(prepared, &engine, &state, false, &args.common).await
        }
        Command::Backups(args) => {
            let state = StateDir::open(&state_root)?;
            let root = args
                .backup_dir
                .clone()
                .unwrap_or_else(|| state.path().join("backups"));
            let (found, unreadable) = cutover::backup::catalogue(&root, args.name.as_deref())
                .map_err(|e| refused(e.to_string()))?;
            for u in &unreadable {
                tracing::warn!(
                    "the backup in {} cannot be read: {}",
                    u.path.display(),
                    u.why
                );
            }
            Ok(output::backups(&found, args.json))
        }
        Command::Restore(args) => {
            if !args.dry_run {
                ensure_can_confirm(&args.common)?;
            }
            let health = args.health.policy().map_err(refused)?;
            let request = BackupRequest {
                dir: args.place.backup_dir.clone(),
                keep: args.place.keep_backups,
                ..BackupRequest::default()
            };
            let (engine, state) = connect(&state_root).await?;
            let prepared = backup::prepare_restore(
                &engine,
                &state,
                &args.name,
                &args.backup,
                &request,
                health,
            )
            .await?;
            carry_out(prepared, &engine, &state, args.dry_run, &args.common).await
        }
        Command::Tasks(args) => {
            let catalog = load_profiles()?;
            let engine = DockerEngine::connect().await?;
            let choice = cli::choice(args.profile.as_deref());
            let tasks = task::tasks_of(&engine, &catalog, &args.name, &choice).await?;
            Ok(output::tasks(&args.name, &tasks, args.json))
        }
        Command::Task(args) => {
            let (Some(name), Some(task_name)) = (args.name.clone(), args.task.clone()) else {
                // `--help` before TASK: clap's own help of the command.
                let mut cli = <Cli as clap::CommandFactory>::command();
                cli.build();
                let command = cli.find_subcommand_mut("task").expect("the task command");
                // A closed pipe (`| head`) is no failure of the help.
                let _ = command.print_long_help();
                return Ok(Exit::Done);
            };
            let catalog = load_profiles()?;
            let (engine, state) = connect(&state_root).await?;
            // The profile says which words after TASK are the task's, so a --profile among
            // them is read first.
            let profile = args
                .profile
                .clone()
                .or_else(|| cli::profile_among(&args.words));
            let choice = cli::choice(profile.as_deref());
            let tasks = task::tasks_of(&engine, &catalog, &name, &choice).await?;
            let spec = tasks.get(&task_name)?;
            if args.help || args.words.iter().any(|w| w == "--help" || w == "-h") {
                return Ok(output::task_help(&name, &task_name, spec));
            }
            let usage = || format!("the options of {task_name}: {}", spec.usage().join("; "));
            let (task_args, options) = spec
                .parse_args(&args.words)
                .map_err(|e| refused(format!("{e}; {}", usage())))?;
            let args = match options.is_empty() {
                true => args,
                false => args.with_options(&options).map_err(|e| match e.kind() {
                    clap::error::ErrorKind::UnknownArgument => refused(format!(
                        "{} is an option neither of {task_name} nor of cutover task; {}; cutover's: `cutover task --help`",
                        e.get(clap::error::ContextKind::InvalidArg)
                            .map_or_else(|| options.join(" "), |a| a.to_string()),
                        usage()
                    )),
                    _ => e.exit(),
                })?,
            };
            if !args.dry_run {
                ensure_can_confirm(&args.common)?;
            }
            let request = task::TaskRequest {
                name,
                task: task_name,
                args: task_args,
                health: args.health.settings(None, None).map_err(refused)?,
                backup: args.backup(),
            };
            let prepared = task::prepare(&engine, &state, &catalog, &tasks, &request).await?;
            carry_out(prepared, &engine, &state, args.dry_run, &args.common).await
        }
        Command::History(args) => {
            let state = StateDir::open(&state_root)?;
            let entries = history::history(&state, args.name.as_deref())?;
            Ok(output::history(&entries, args.json))
        }
        Command::Check(args) => {
            let config = load_config(&args.discovery)?;
            let engine = DockerEngine::connect().await?;
            let registry = RegistryClient::new(config.insecure_registries.clone())?;
            let selection = match (args.all, args.names.is_empty()) {
                (true, _) => Selection::All,
                (false, true) => Selection::OptedIn,
                (false, false) => Selection::Named(args.names.clone()),
            };
            let catalog = load_profiles()?;
            let watched = check::discover(&engine, &config, &catalog, &selection).await?;
            let statuses = check::check(&registry, &watched).await;
            Ok(output::check(&statuses, registry.requests(), args.json))
        }
        Command::Auto(args) => {
            let config = load_config(&args.discovery)?;
            let durations = |d: &Option<String>| {
                d.as_deref()
                    .map(cutover::discover::config::parse_duration)
                    .transpose()
            };
            let health = args
                .health
                .settings(
                    durations(&config.health_timeout).map_err(refused)?,
                    durations(&config.settle).map_err(refused)?,
                )
                .map_err(refused)?;
            let window = args
                .window
                .as_ref()
                .or(config.window.as_ref())
                .map(|w| Window::parse(w))
                .transpose()
                .map_err(refused)?;
            let schedule = args
                .schedule
                .as_deref()
                .map(Schedule::parse)
                .transpose()
                .map_err(refused)?;
            let (engine, state) = connect(&state_root).await?;
            let registry = RegistryClient::new(config.insecure_registries.clone())?;
            let catalog = load_profiles()?;
            let settings = auto::Settings {
                config,
                catalog,
                health,
                window,
            };
            let interrupt = Interrupt::from_signals();
            match schedule {
                None => {
                    let report =
                        auto::pass(&engine, &state, &registry, &settings, &interrupt).await?;
                    Ok(output::auto(&report, args.json))
                }
                Some(schedule) => {
                    let resident = Resident {
                        engine: &engine,
                        state: &state,
                        registry: &registry,
                        settings: &settings,
                        interrupt: &interrupt,
                    };
                    resident.run(&schedule, args.json).await
                }
            }
        }
    }
}

/// The built-in profiles and the user's; a broken user profile stops the command, with its
/// file, line and column.
fn load_profiles() -> anyhow::Result<Catalog> {
    Catalog::load().map_err(|e| refused(e.to_string()))
}

fn refused(message: String) -> anyhow::Error {
    cutover::Error::Refused(message).into()
}

fn load_config(args: &cli::DiscoveryArgs) -> anyhow::Result<Config> {
    match &args.config {
        Some(path) => Config::load(path).map_err(|e| refused(e.to_string())),
        None => Ok(Config::default()),
    }
}

/// What `auto --schedule` runs a pass with.
struct Resident<'a> {
    engine: &'a DockerEngine,
    state: &'a StateDir,
    registry: &'a RegistryClient,
    settings: &'a auto::Settings,
    interrupt: &'a Interrupt,
}

impl Resident<'_> {
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
            let pass = auto::pass(
                self.engine,
                self.state,
                self.registry,
                self.settings,
                self.interrupt,
            );
            match pass.await {
                Ok(report) => {
                    output::auto(&report, json);
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

async fn connect(state_root: &std::path::Path) -> anyhow::Result<(DockerEngine, StateDir)> {
    let state = StateDir::open(state_root)?;
    let engine = DockerEngine::connect().await?;
    Ok((engine, state))
}

async fn carry_out(
    prepared: Prepared,
    engine: &DockerEngine,
    state: &StateDir,
    dry_run: bool,
    common: &CommonArgs,
) -> anyhow::Result<Exit> {
    if dry_run {
        return Ok(output::dry_run(&prepared.plan, common.json));
    }
    if !common.yes {
        output::plan_summary(&prepared.plan);
        confirm("Proceed?")?;
    }
    let progress = std::io::stderr().is_terminal().then(MultiProgress::new);
    let plan = prepared.plan.clone();
    // From here a signal stops the run between steps, rather than the process mid-step.
    let interrupt = Interrupt::from_signals();
    let report = prepared
        .execute(engine, state, progress.as_ref(), &interrupt)
        .await?;
    Ok(output::run(&plan, &report, common.json))
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
