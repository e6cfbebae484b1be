//! Profile tasks: a product's maintenance procedure (Anchore's object-storage migration) as
//! data, run by `cutover task` with the safety of an upgrade.
//!
//! A task runs with the whole group stopped and the database backed up: its steps are one-shot
//! commands from the product's image with a member's configuration (checked exit code, output
//! that means failure, a value captured for later steps, a table row that must say the work is
//! complete, and a command that undoes them) and the swap of the members' configuration file;
//! then the group starts and must come up healthy. The members that do the work are the ones
//! whose configuration file has the task's `role` section (Anchore's `services.catalog`) and,
//! with `runs`, that run its service; a swap replaces the file of every member that has the
//! section, working or not.
//!
//! Command words take `${VAR}` from the member's environment (expanded only when the step runs,
//! so a password never enters the plan or the journal), `${file:source}` (the role members'
//! configuration) and `${file:ARG}` (a file given as an argument) as paths inside the one-shot
//! container, and whole words `${arg:NAME}` (the option as given: `--nodelete`, `--bucket a
//! --bucket b`, or nothing), `${arg:NAME|WORD}` (WORD when the option was given) and
//! `${value:NAME}` (its values alone, a word each).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{parse_duration, ApplyError};
pub use crate::plan::steps::{captured_name, Capture, Judged, TableCheck};
use crate::template;

/// The name `${file:...}` gives the role members' configuration file.
pub const SOURCE: &str = "source";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    pub description: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<ArgSpec>,
    /// Without it, the container the command names does the work and nothing is swapped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ConfigSpec>,
    /// Conditions the files must meet before anything stops.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSpec>,
    pub steps: Vec<TaskStepSpec>,
}

/// An option of the task, after its name on the command line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgSpec {
    /// Given as `--NAME`.
    pub name: String,
    /// What its value is called in help (`FILE`, `NAME`); none for a flag.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The value is a file on this host, read and checked before anything changes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub file: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub repeat: bool,
    /// Options that cannot be given with this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    pub help: String,
}

/// The configuration file every member reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigSpec {
    /// An absolute path inside the containers.
    pub path: String,
    /// The section (dotted path) of the working members' files, which must agree; a member
    /// whose file has it gets the new file from a swap, and without `runs` it also does the
    /// work.
    pub role: String,
    /// Which members work, by the service their start command runs, where every member's file
    /// has the section (Anchore's default configuration enables every service everywhere).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<ServiceRole>,
}

/// A member runs `service` when its command, after the words `after`, names it; naming none, the
/// space-separated variable `env` decides; neither, the flag `all` runs every service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceRole {
    pub service: String,
    pub after: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all: Option<String>,
}

impl ServiceRole {
    /// Whether a container with this command (entrypoint then cmd, programs by any path) and
    /// environment runs the service.
    pub fn runs(&self, command: &[String], env: &[String]) -> bool {
        let words: Vec<&str> = command
            .iter()
            .map(|w| w.rsplit('/').next().unwrap_or(w))
            .collect();
        let after: Vec<&str> = self.after.iter().map(String::as_str).collect();
        let Some(at) = words
            .windows(after.len())
            .position(|w| w == after.as_slice())
        else {
            return false;
        };
        let args = &words[at + after.len()..];
        let named: Vec<&str> = args
            .iter()
            .copied()
            .filter(|a| !a.starts_with('-'))
            .collect();
        if !named.is_empty() {
            return named.contains(&self.service.as_str());
        }
        let listed = self
            .env
            .as_deref()
            .and_then(|name| crate::engine::facts::env_value(env, name))
            .filter(|v| !v.trim().is_empty());
        match listed {
            Some(list) => list.split_whitespace().any(|s| s == self.service),
            None => self.all.as_deref().is_some_and(|all| args.contains(&all)),
        }
    }
}

/// A file must have one of the sections `has_any` (dotted paths), or its section `at` must
/// differ from the same section of the file `differs_from`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckSpec {
    /// A file argument, or `source`.
    pub file: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub has_any: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub differs_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
    /// Applies only when this option was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub if_arg: Option<String>,
    /// Applies only when this option was not given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_arg: Option<String>,
    pub why: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TaskStepSpec {
    /// A one-shot container from the first role member's image, with its configuration.
    Run(Box<RunSpec>),
    /// The file argument `from` replaces the configuration file of every member whose file has
    /// the role section (working or not), the old one kept beside it as `keep_old_as`.
    Swap { from: String, keep_old_as: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// The step's name in the plan; its one-shot container is `NAME-cutover-task`.
    pub name: String,
    pub command: Vec<String>,
    /// Variables set in its one-shot containers (its undo's too), over the member's own, filled
    /// in from the member's environment as they run: where a secret the command needs goes
    /// (Anchore's `PGPASSWORD`), never into its words.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_if_output_has: Vec<String>,
    /// The command changes the product's data: undoing earlier steps must then put it back.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub changes_data: bool,
    /// Runs while the group still serves, before anything stops: a check that fails then
    /// costs no downtime. Only for commands that change no data.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub before_stop: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableCheck>,
    /// Commands that undo it, in order (the migration reversed, then its result read back),
    /// each checked as the step's own command is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<Judged>,
    /// When restoring the database backup puts back what the step changed, a failed undo is
    /// covered by that restore and the rollback goes on; otherwise it stops there, for a person.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup_covers: Option<ValueCondition>,
}

impl RunSpec {
    /// Its own command, judged as the profile says.
    pub fn judged(&self) -> Judged {
        Judged {
            command: self.command.clone(),
            fails_if_output_has: self.fails_if_output_has.clone(),
            capture: self.capture.clone(),
            table: self.table.clone(),
        }
    }

    /// The time its command may take, when the profile sets one.
    pub fn timeout(&self) -> Result<Option<std::time::Duration>, ApplyError> {
        self.timeout
            .as_deref()
            .map(|t| parse_duration("timeout", t))
            .transpose()
    }
}

/// A value of a YAML file: the first of `at` (dotted paths) present, else `default`, is one of
/// `is`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValueCondition {
    pub file: String,
    pub at: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    #[serde(rename = "in")]
    pub is: Vec<String>,
    /// Never holds when this option was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unless_arg: Option<String>,
}

/// The task's options as given: each name with its values (none for a flag).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskOptions {
    pub values: BTreeMap<String, Vec<String>>,
}

impl TaskOptions {
    pub fn given(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }
}

/// The files a task reads, by the name `${file:...}` gives them: parsed YAML.
pub type Files = BTreeMap<String, Value>;

impl TaskSpec {
    /// What serde cannot check; `name` is the task's, for messages.
    pub(super) fn check(&self, name: &str, secrets: &[String]) -> Result<(), String> {
        self.check_parts(secrets)
            .map_err(|m| format!("tasks: {name}: {m}"))
    }

    fn check_parts(&self, secrets: &[String]) -> Result<(), String> {
        if let Some(config) = self.config.as_ref().filter(|c| !c.path.starts_with('/')) {
            return Err(format!("config: {:?} is not an absolute path", config.path));
        }
        let files: Vec<&str> = self
            .args
            .iter()
            .filter(|a| a.file)
            .map(|a| a.name.as_str())
            .chain(self.config.as_ref().map(|_| SOURCE))
            .collect();
        self.check_args()?;
        self.check_checks(&files)?;
        if self.steps.is_empty() {
            return Err("steps: name at least one".into());
        }
        let mut captured = Vec::new();
        for step in &self.steps {
            match step {
                TaskStepSpec::Run(run) => self.check_run(run, &files, secrets, &mut captured)?,
                TaskStepSpec::Swap { .. } if self.config.is_none() => {
                    return Err(
                        "swap: name the config file it replaces (config: {path, role})".into(),
                    );
                }
                TaskStepSpec::Swap { from, .. } if !files.contains(&from.as_str()) => {
                    return Err(format!("swap: {from} is not a file of the task"));
                }
                TaskStepSpec::Swap { .. } => {}
            }
        }
        Ok(())
    }

    fn check_args(&self) -> Result<(), String> {
        for arg in &self.args {
            if ["profile", "help"].contains(&arg.name.as_str()) {
                return Err(format!(
                    "args: --{} is cutover's own option; name the task's otherwise",
                    arg.name
                ));
            }
            if arg.value.is_some() && !arg.file && crate::secrets::is_secret_name(&arg.name) {
                return Err(format!(
                    "args: --{} looks like a secret, and a task's options are written in its plan and journal; let the command read it from the container's environment (${{VAR}}, read only when the step runs)",
                    arg.name
                ));
            }
            if arg.file && arg.value.is_none() {
                return Err(format!(
                    "args: {} is a file, so it needs a value name",
                    arg.name
                ));
            }
            if let Some(other) = arg.conflicts.iter().find(|c| self.arg(c).is_none()) {
                return Err(format!(
                    "args: {} conflicts with {other}, which is not an option",
                    arg.name
                ));
            }
        }
        Ok(())
    }

    /// An option a condition names must be one of the task's.
    fn known_arg(&self, name: &Option<String>) -> Result<(), String> {
        match name {
            Some(n) if self.arg(n).is_none() => Err(format!("{n} is not an option of the task")),
            _ => Ok(()),
        }
    }

    fn check_checks(&self, files: &[&str]) -> Result<(), String> {
        for check in &self.checks {
            for file in std::iter::once(&check.file).chain(&check.differs_from) {
                if !files.contains(&file.as_str()) {
                    return Err(format!("checks: {file} is not a file of the task"));
                }
            }
            if check.has_any.is_empty() == check.differs_from.is_none()
                || check.differs_from.is_some() != check.at.is_some()
            {
                return Err(format!(
                    "checks: a check of {} names either has_any, or differs_from with at",
                    check.file
                ));
            }
            self.known_arg(&check.if_arg)?;
            self.known_arg(&check.unless_arg)?;
        }
        Ok(())
    }

    /// A command step: its words, its undo, the values its tables read (captured by a step
    /// before it), its backup cover.
    fn check_run<'a>(
        &self,
        run: &'a RunSpec,
        files: &[&str],
        secrets: &[String],
        captured: &mut Vec<&'a str>,
    ) -> Result<(), String> {
        let name = &run.name;
        if run.command.is_empty() {
            return Err(format!("{name}: command is empty"));
        }
        run.timeout().map_err(|e| e.to_string())?;
        if run.before_stop && (run.changes_data || !run.undo.is_empty()) {
            return Err(format!(
                "{name}: a step before the stop must change no data and need no undo"
            ));
        }
        let undo = run.undo.iter().flat_map(|u| &u.command);
        for word in run.command.iter().chain(undo) {
            self.check_word(word, files, secrets)
                .map_err(|m| format!("{name}: {m}"))?;
        }
        for value in run.env.values() {
            template::check_value(value).map_err(|m| format!("{name}: env: {m}"))?;
        }
        if let Some(c) = &run.capture {
            captured.push(c.name.as_str());
        }
        let mut undo_captured = captured.clone();
        if let Some(table) = &run.table {
            check_table_refs(table, captured).map_err(|m| format!("{name}: {m}"))?;
        }
        for undo in &run.undo {
            if let Some(table) = &undo.table {
                check_table_refs(table, &undo_captured).map_err(|m| format!("{name} undo: {m}"))?;
            }
            if let Some(c) = &undo.capture {
                undo_captured.push(c.name.as_str());
            }
        }
        if let Some(cover) = &run.backup_covers {
            if !files.contains(&cover.file.as_str()) {
                return Err(format!("{name}: {} is not a file of the task", cover.file));
            }
            self.known_arg(&cover.unless_arg)?;
        }
        Ok(())
    }

    fn arg(&self, name: &str) -> Option<&ArgSpec> {
        self.args.iter().find(|a| a.name == name)
    }

    fn check_word(&self, word: &str, files: &[&str], secrets: &[String]) -> Result<(), String> {
        if let Some((name, _)) = arg_reference(word) {
            return match self.arg(name) {
                Some(_) => Ok(()),
                None => Err(format!("{word}: {name} is not an option of the task")),
            };
        }
        if let Some(c) = template::condition(word) {
            return match files.contains(&c.file) {
                true => Ok(()),
                false => Err(format!("{word}: {} is not a file of the task", c.file)),
            };
        }
        let rest = file_references(word, files)?;
        template::check(&rest, secrets).map_err(|e| e.to_string())
    }

    /// The task's options out of the words after its name; the words it does not know (the
    /// command's own options) come back in their order.
    pub fn parse_args(&self, words: &[String]) -> Result<(TaskOptions, Vec<String>), String> {
        let mut args = TaskOptions::default();
        let mut rest = Vec::new();
        let mut words = words.iter();
        while let Some(word) = words.next() {
            let (name, inline) = match word.strip_prefix("--") {
                Some(option) => match option.split_once('=') {
                    Some((name, value)) => (name, Some(value.to_string())),
                    None => (option, None),
                },
                None => ("", None),
            };
            let Some(spec) = self.arg(name) else {
                rest.push(word.clone());
                continue;
            };
            let value = match (&spec.value, inline) {
                (None, Some(_)) => return Err(format!("--{name} takes no value")),
                (None, None) => None,
                (Some(_), Some(v)) => Some(v),
                (Some(what), None) => Some(
                    words
                        .next()
                        .cloned()
                        .ok_or_else(|| format!("--{name} needs a value ({what})"))?,
                ),
            };
            if !spec.repeat && args.given(name) {
                return Err(format!("--{name} is given twice"));
            }
            args.values
                .entry(name.to_string())
                .or_default()
                .extend(value);
        }
        for spec in &self.args {
            if spec.required && !args.given(&spec.name) {
                return Err(format!(
                    "--{} {} is required: {}",
                    spec.name,
                    spec.value.as_deref().unwrap_or_default(),
                    spec.help
                ));
            }
            let clash = spec.conflicts.iter().find(|c| args.given(c));
            if let (true, Some(other)) = (args.given(&spec.name), clash) {
                return Err(format!(
                    "--{} and --{other} cannot be given together",
                    spec.name
                ));
            }
        }
        Ok((args, rest))
    }

    /// One line per option, for `cutover tasks` and errors.
    pub fn usage(&self) -> Vec<String> {
        self.args
            .iter()
            .map(|a| {
                let value = a
                    .value
                    .as_deref()
                    .map(|v| format!(" {v}"))
                    .unwrap_or_default();
                let mut notes = Vec::new();
                if a.required {
                    notes.push("required");
                }
                if a.repeat {
                    notes.push("repeatable");
                }
                let notes = match notes.is_empty() {
                    true => String::new(),
                    false => format!(" ({})", notes.join(", ")),
                };
                format!("--{}{value}: {}{notes}", a.name, a.help)
            })
            .collect()
    }

    /// Refuses when a file lacks what the task needs of it.
    pub fn check_files(&self, args: &TaskOptions, files: &Files) -> Result<(), ApplyError> {
        for check in &self.checks {
            if check.if_arg.as_ref().is_some_and(|a| !args.given(a))
                || check.unless_arg.as_ref().is_some_and(|a| args.given(a))
            {
                continue;
            }
            let Some(file) = files.get(&check.file) else {
                continue;
            };
            if let (Some(other), Some(at)) = (&check.differs_from, &check.at) {
                let theirs = files.get(other).and_then(|o| lookup(o, at));
                if lookup(file, at) == theirs {
                    return Err(ApplyError::Unfit(format!(
                        "{} has the same {at} as {}: {}",
                        self.describe_file(args, &check.file),
                        self.describe_file(args, other),
                        check.why
                    )));
                }
                continue;
            }
            if !check.has_any.iter().any(|p| lookup(file, p).is_some()) {
                return Err(ApplyError::Unfit(format!(
                    "{} has none of {}: {}",
                    self.describe_file(args, &check.file),
                    check.has_any.join(", "),
                    check.why
                )));
            }
        }
        Ok(())
    }

    /// A file of the task as people know it: the path given, or the configuration's.
    pub fn describe_file(&self, args: &TaskOptions, name: &str) -> String {
        match args.values.get(name).and_then(|v| v.first()) {
            Some(path) => format!("{path} (--{name})"),
            None => self
                .config
                .as_ref()
                .map_or_else(|| name.to_string(), |c| c.path.clone()),
        }
    }
}

impl ValueCondition {
    pub fn holds(&self, args: &TaskOptions, files: &Files) -> bool {
        if self.unless_arg.as_ref().is_some_and(|a| args.given(a)) {
            return false;
        }
        let Some(file) = files.get(&self.file) else {
            return false;
        };
        let value = self
            .at
            .iter()
            .find_map(|p| lookup(file, p))
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .or_else(|| self.default.clone());
        value.is_some_and(|v| self.is.contains(&v))
    }
}

/// The value at a dotted path (`services.catalog.object_store`), when it is there and not null.
pub fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.')
        .try_fold(value, |v, key| v.get(key))
        .filter(|v| !v.is_null())
}

/// What a whole word that names a task's option puts in a command.
enum ArgForm<'a> {
    /// `${arg:NAME}`: the option as given.
    AsGiven,
    /// `${arg:NAME|WORD}`: WORD when it was given.
    When(&'a str),
    /// `${value:NAME}`: its values alone.
    Values,
}

/// `${arg:NAME}`, `${arg:NAME|WORD}` or `${value:NAME}` as a whole word.
fn arg_reference(word: &str) -> Option<(&str, ArgForm<'_>)> {
    if let Some(name) = word
        .strip_prefix("${value:")
        .and_then(|w| w.strip_suffix('}'))
    {
        return Some((name, ArgForm::Values));
    }
    let inner = word.strip_prefix("${arg:")?.strip_suffix('}')?;
    Some(match inner.split_once('|') {
        Some((name, when)) => (name, ArgForm::When(when)),
        None => (inner, ArgForm::AsGiven),
    })
}

/// Refuses a table whose row names a value nothing captured before it.
fn check_table_refs(table: &TableCheck, captured: &[&str]) -> Result<(), String> {
    for value in table.row.values() {
        if let Some(name) = captured_name(value) {
            if !captured.contains(&name) {
                return Err(format!("nothing earlier captures {name}"));
            }
        }
    }
    Ok(())
}

/// Checks the `${file:...}` references of a word against the files, and returns the word
/// without them (for the environment references to be checked).
fn file_references(word: &str, files: &[&str]) -> Result<String, String> {
    let mut rest = word.to_string();
    while let Some(open) = rest.find("${file:") {
        let close = rest[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| format!("{word:?}: an unclosed ${{"))?;
        let name = &rest[open + 7..close];
        if !files.contains(&name) {
            return Err(format!("{word:?}: {name} is not a file of the task"));
        }
        rest.replace_range(open..=close, "");
    }
    Ok(rest)
}

/// Where a file of the task stands inside a one-shot container.
pub fn file_path(name: &str) -> String {
    format!("/cutover-task/{name}.yaml")
}

/// A command with the task's options put in (`${arg:...}`), its conditions on the task's files
/// resolved (`${if:FILE#KEY|WORD}`) and its files named where they stand in the one-shot
/// (`${file:...}`); `${VAR}` stays for the step to fill in when it runs. Also returns the files
/// the command uses.
pub fn resolve_command(
    words: &[String],
    args: &TaskOptions,
    files: &Files,
) -> (Vec<String>, Vec<String>) {
    let mut out = Vec::new();
    let mut used = Vec::new();
    for word in words {
        if let Some(c) = template::condition(word) {
            if c.holds(files.get(c.file)) {
                out.push(c.word.to_string());
            }
            continue;
        }
        if let Some((name, form)) = arg_reference(word) {
            let Some(values) = args.values.get(name) else {
                continue;
            };
            match form {
                ArgForm::When(when) => out.push(when.to_string()),
                ArgForm::Values => out.extend(values.iter().cloned()),
                ArgForm::AsGiven if values.is_empty() => out.push(format!("--{name}")),
                ArgForm::AsGiven => {
                    for v in values {
                        out.push(format!("--{name}"));
                        out.push(v.clone());
                    }
                }
            }
            continue;
        }
        let mut word = word.clone();
        while let Some(open) = word.find("${file:") {
            let close = open + word[open..].find('}').unwrap_or(word.len() - open);
            let name = word[open + 7..close].to_string();
            word.replace_range(open..=close, &file_path(&name));
            if !used.contains(&name) {
                used.push(name);
            }
        }
        out.push(word);
    }
    (out, used)
}
