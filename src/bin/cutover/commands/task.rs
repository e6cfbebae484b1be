//! `cutover task`: the task's own options come after TASK, and the profile says which they are.

use clap::Args;
use cutover::ops::backup::BackupRequest;
use cutover::ops::task;

use std::path::PathBuf;

use super::{before_change, carry_out, given, given_of, load_config, load_profiles, refused, Site};
use crate::args::{self, BackupWhere, ChangeArgs, DiscoveryArgs};
use crate::output::{self, Exit};

/// Runs `cutover task`; `cli` is the whole command line's definition, which reads it again
/// once the task's profile says which words are the task's.
pub async fn run(args: TaskArgs, site: &Site, mut cli: clap::Command) -> anyhow::Result<Exit> {
    let (Some(name), Some(task_name)) = (args.name.clone(), args.task.clone()) else {
        // `--help` before TASK: clap's own help of the command.
        cli.build();
        let command = cli.find_subcommand_mut("task").expect("the task command");
        // A closed pipe (`| head`) is no failure of the help.
        let _ = command.print_long_help();
        return Ok(Exit::Done);
    };
    let catalog = load_profiles()?;
    // The profile says which words after TASK are the task's, so a --profile or --config among
    // them (the config file's hosts tell where HOST/NAME lives) is read first.
    let discovery = DiscoveryArgs {
        config: (args.change.discovery.config.clone())
            .or_else(|| option_among(&args.words, "--config").map(PathBuf::from)),
    };
    let (site, aimed, name) = site
        .aim_alone(
            given_of(load_config(&discovery)?, None, None, None)?,
            &name,
            &catalog,
        )
        .await?;
    let (engine, state) = site.connect().await?;
    let profile = args
        .change
        .profile
        .clone()
        .or_else(|| option_among(&args.words, "--profile"));
    let choice = args::choice(profile.as_deref());
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
        false => args.with_options(&options, cli).map_err(|e| match e.kind() {
            clap::error::ErrorKind::UnknownArgument => refused(format!(
                "{} is an option neither of {task_name} nor of cutover task; {}; cutover's: `cutover task --help`",
                e.get(clap::error::ContextKind::InvalidArg)
                    .map_or_else(|| options.join(" "), |a| a.to_string()),
                usage()
            )),
            _ => e.exit(),
        })?,
    };
    before_change(&args.change)?;
    // The file's notification URLs and the command line's, with the file as the host sees it.
    let mut given = given(&args.change)?;
    let told = std::mem::replace(&mut given.config, aimed.config);
    given.config.notify = told.notify;
    let tell = super::tell(&site, &given);
    let request = task::TaskRequest {
        name,
        task: task_name,
        args: task_args,
        given,
        backup: args.backup(),
    };
    let prepared = task::prepare(&engine, &state, &catalog, &tasks, &request).await?;
    carry_out(prepared, &engine, &state, &args.change, tell).await
}

#[derive(Args, Debug)]
pub struct TaskArgs {
    /// A container of the product: the task runs over its whole group; HOST/NAME for one of the
    /// config file's hosts
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
    /// Take no backup of the database first (say why: your own backup)
    #[arg(long, help_heading = "Backup")]
    pub skip_backup: bool,
    #[command(flatten)]
    pub backup_where: BackupWhere,
    /// Print help; after TASK, the task's own options
    #[arg(short, long)]
    pub help: bool,
    #[command(flatten)]
    pub change: ChangeArgs,
}

impl TaskArgs {
    pub fn backup(&self) -> BackupRequest {
        BackupRequest {
            skip: self.skip_backup,
            ..self.backup_where.request()
        }
    }

    /// The command line read again with `options` (words after TASK that are not the task's
    /// own) moved before NAME, where they are cutover's options.
    pub fn with_options(
        &self,
        options: &[String],
        cli: clap::Command,
    ) -> Result<TaskArgs, clap::Error> {
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
        let matches = cli.try_get_matches_from(reordered)?;
        let (_, task) = matches
            .subcommand()
            .expect("the same command line names the same command");
        <TaskArgs as clap::FromArgMatches>::from_arg_matches(task)
    }
}

/// The value of `option` among words clap did not read (those after a task's name).
pub fn option_among(words: &[String], option: &str) -> Option<String> {
    words
        .iter()
        .enumerate()
        .find_map(|(i, w)| match w.strip_prefix(option) {
            Some("") => words.get(i + 1).cloned(),
            Some(rest) => rest.strip_prefix('=').map(str::to_string),
            None => None,
        })
}
