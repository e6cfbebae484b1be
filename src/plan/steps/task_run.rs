//! A task's one-shot command (`anchore-manager objectstorage ... migrate`): a container from a
//! member's image with its whole configuration and the task's files, run while the group is
//! stopped. Besides its exit code and output that means failure, it may have to print a value
//! later steps use (the migration's id) and a table row that says the work is complete; its undo
//! runs the command that reverses it (the migration back).
//!
//! The command's `${VAR}` references are filled in from the member's environment only when it
//! runs, so the database password it needs is in neither the plan nor the journal.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::keep_file::read_kept;
use super::one_shot::run_once;
use super::{finished, shown, Action, Cx, Done, Outputs, StepError, Traits, Transcript};
use crate::engine::successor::{
    one_shot_spec, set_env, successor_spec, Predecessor, SuccessorSpec,
};
use crate::engine::{self, inspect_required};
use crate::plan::{short_image, Plan, Slot};

/// A value the command prints, for later steps (`${captured:NAME}`): the word after `after`.
/// The step fails when it is not printed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capture {
    pub name: String,
    pub after: String,
}

/// A table the command prints (a header line naming the columns, which stand apart by two
/// spaces or more): the row where each `row` column has its value must exist, have the
/// `expect` values, and equal values in each pair of `same` columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableCheck {
    pub row: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub expect: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same: Vec<[String; 2]>,
}

/// The name in `${captured:NAME}`, when the value is one.
pub fn captured_name(value: &str) -> Option<&str> {
    value.strip_prefix("${captured:")?.strip_suffix('}')
}

/// A command and how its output is judged besides its exit code: as a profile's task writes an
/// undo, and as the plan runs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Judged {
    /// Journals before the field was named so called it `words`.
    #[serde(alias = "words")]
    pub command: Vec<String>,
    /// Output that fails it although it exited 0.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fails_if_output_has: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capture: Option<Capture>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<TableCheck>,
}

/// A command of a task, its task's templates resolved, with the kept files it reads.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskCommand {
    #[serde(flatten)]
    pub run: Judged,
    /// Kept files it reads: the name they were kept under, and where they stand in the one-shot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub files: Vec<(String, String)>,
}

impl Judged {
    /// What it must show besides its exit code, for people.
    fn checks(&self) -> Vec<String> {
        let mut checks = Vec::new();
        if let Some(c) = &self.capture {
            checks.push(format!("print {:?} and its {}", c.after, c.name));
        }
        if let Some(t) = &self.table {
            checks.push(format!("list {}", describe_table(t)));
        }
        checks
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskRun {
    /// The member whose image and configuration the one-shot takes.
    pub source: Slot,
    /// The one-shot's name; its undo's is this with `-undo`.
    pub name: String,
    pub image: String,
    pub command: TaskCommand,
    /// Variables set in its one-shot containers, as the profile writes them: their `${VAR}`
    /// are filled in from the member's environment only as they run, like the words.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(with = "crate::clock::duration_ms")]
    pub timeout: Duration,
    pub changes_data: bool,
    /// Commands that undo it, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub undo: Vec<TaskCommand>,
    /// Restoring the database backup puts back what the step changed, so a failed undo need not
    /// stop the rollback.
    pub backup_covers: bool,
}

#[async_trait]
impl Action for TaskRun {
    fn describe(&self, plan: &Plan) -> String {
        let mut checks = vec![format!(
            "must exit 0 within {}",
            humantime::format_duration(self.timeout)
        )];
        checks.extend(self.command.run.checks());
        format!(
            "run `{}` in a one-shot container {} from {} with the configuration of {} ({})",
            shown(&self.command.run.command),
            self.name,
            short_image(&self.image),
            plan.label(&self.source),
            checks.join(", ")
        )
    }

    fn traits(&self) -> Traits {
        Traits {
            writes_data: self.changes_data,
            reverts_data: !self.undo.is_empty(),
            critical_undo: !self.undo.is_empty() && !self.backup_covers,
            ..Traits::default()
        }
    }

    async fn perform(&self, cx: &Cx<'_>) -> Result<Done, StepError> {
        let mut captured = cx.captured.clone();
        self.run_checked(cx, &self.name, &self.command, &mut captured)
            .await
    }

    fn undo_describe(&self, _plan: &Plan) -> Option<String> {
        let mut said = format!("remove {} if it is left", self.name);
        for command in &self.undo {
            let checks = command.run.checks();
            let checks = match checks.is_empty() {
                true => String::new(),
                false => format!(" ({})", checks.join(", ")),
            };
            said.push_str(&format!(
                ", then run `{}` in a one-shot container {}-undo{checks}",
                shown(&command.run.command),
                self.name
            ));
        }
        Some(said)
    }

    async fn undo(
        &self,
        cx: &Cx<'_>,
        _outputs: Option<&Outputs>,
    ) -> Result<Option<String>, StepError> {
        cx.remove_stray(&self.name).await?;
        if self.undo.is_empty() {
            return Ok(None);
        }
        let name = format!("{}-undo", self.name);
        let mut captured = cx.captured.clone();
        let mut said = Vec::new();
        for command in &self.undo {
            cx.remove_stray(&name).await?;
            let done = self
                .run_checked(cx, &name, command, &mut captured)
                .await
                .map_err(|e| match self.backup_covers {
                    true => StepError::Covered(format!(
                        "going back failed, so the database backup is restored instead: {e}"
                    )),
                    false => StepError::Failed(format!(
                        "going back failed, and the rollback stops here: what the step moved may be split between the two places, and the database backup alone would not bring it back: {e}"
                    )),
                })?;
            said.extend(done.detail);
        }
        Ok(Some(format!("went back: {}", said.join("; "))))
    }
}

/// A command's exit (when it ended) and its output.
type Ran = (Option<i64>, Transcript);

impl TaskRun {
    /// Runs a command and judges it: its exit code and output, the value it must print (added to
    /// `captured`), the table row it must list.
    async fn run_checked(
        &self,
        cx: &Cx<'_>,
        name: &str,
        command: &TaskCommand,
        captured: &mut BTreeMap<String, String>,
    ) -> Result<Done, StepError> {
        let keep_all = command.run.capture.is_some() || command.run.table.is_some();
        let (words, (code, transcript)) = self.execute(cx, name, command, keep_all).await?;
        let mut done = finished(&words, code, self.timeout, &transcript, "it was killed")?;
        let lines = transcript.all();
        let mut said = Vec::new();
        if let Some(capture) = &command.run.capture {
            let value = capture_value(lines, &capture.after).ok_or_else(|| {
                StepError::Failed(format!(
                    "`{}` exited 0 but never printed {:?}, so there is no proof it did its work; {}",
                    shown(&words),
                    capture.after,
                    transcript.tail_text()
                ))
            })?;
            said.push(format!("{} {value}", capture.name));
            captured.insert(capture.name.clone(), value.clone());
            done.outputs.more.insert(
                "captured".into(),
                serde_json::json!({ &capture.name: value }),
            );
        }
        if let Some(table) = &command.run.table {
            said.push(check_table(lines, table, captured).map_err(|why| {
                StepError::Failed(format!(
                    "`{}`: {why}; {}",
                    shown(&words),
                    transcript.tail_text()
                ))
            })?);
        }
        if !said.is_empty() {
            done.detail = Some(format!(
                "{}: {}",
                done.detail.unwrap_or_default(),
                said.join("; ")
            ));
        }
        Ok(done)
    }

    /// Runs one of the step's commands in a one-shot named `name`, with the member's
    /// configuration and environment as they are now.
    async fn execute(
        &self,
        cx: &Cx<'_>,
        name: &str,
        command: &TaskCommand,
        keep_all: bool,
    ) -> Result<(Vec<String>, Ran), StepError> {
        let member = inspect_required(cx.engine, cx.id(&self.source)?).await?;
        crate::secrets::register_env(member.env());
        let env = member.env().to_vec();
        let words = command
            .run
            .command
            .iter()
            .map(|w| crate::template::expand(w, &env))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| StepError::Failed(e.to_string()))?;
        crate::secrets::register_command(&words);
        let vars = self
            .env
            .iter()
            .map(|(name, value)| Ok((name.clone(), crate::template::expand(value, &env)?)))
            .collect::<Result<Vec<_>, crate::template::TemplateError>>()
            .map_err(|e| StepError::Failed(e.to_string()))?;
        let mut files = Vec::new();
        for (key, path) in &command.files {
            files.push((path.clone(), read_kept(cx.files, key)?));
        }
        let mut spec = one_shot_spec(&self.member_spec(cx, &member).await?, &words, None);
        set_env(&mut spec, &vars);
        let mut transcript = Transcript::new(name).watching(&command.run.fails_if_output_has);
        if keep_all {
            transcript = transcript.keeping_all();
        }
        let code = run_once(cx, name, &spec, &files, self.timeout, &mut transcript).await?;
        Ok((words, (code, transcript)))
    }

    /// The member's whole configuration, as a container that would replace it would get it.
    async fn member_spec(
        &self,
        cx: &Cx<'_>,
        member: &crate::engine::Container,
    ) -> Result<SuccessorSpec, StepError> {
        let origin = engine::origin(cx.engine, member).await?;
        let member = Predecessor {
            inspect: member,
            origin: &origin,
        };
        Ok(successor_spec(&member, &self.image))
    }
}

fn describe_table(t: &TableCheck) -> String {
    let row: Vec<String> = t
        .row
        .iter()
        .map(|(k, v)| match captured_name(v) {
            Some(name) => format!("{k} the {name} printed before"),
            None => format!("{k} {v}"),
        })
        .collect();
    let mut wants: Vec<String> = t.expect.iter().map(|(k, v)| format!("{k} {v}")).collect();
    wants.extend(t.same.iter().map(|[a, b]| format!("{a} = {b}")));
    format!("the row of {} with {}", row.join(", "), wants.join(", "))
}

/// The word after `after` on the first line that has it.
pub fn capture_value(lines: &[String], after: &str) -> Option<String> {
    lines.iter().find_map(|line| {
        let (_, rest) = line.split_once(after)?;
        rest.split_whitespace().next().map(str::to_string)
    })
}

/// The cells of a line of a plain table: apart by two spaces or more.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

/// Finds the table's row and checks it; says what it found.
pub fn check_table(
    lines: &[String],
    table: &TableCheck,
    captured: &BTreeMap<String, String>,
) -> Result<String, String> {
    let wanted = table
        .row
        .iter()
        .map(|(column, value)| match captured_name(value) {
            Some(name) => captured
                .get(name)
                .map(|v| (column.clone(), v.clone()))
                .ok_or_else(|| format!("nothing captured {name}")),
            None => Ok((column.clone(), value.clone())),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let mut columns: Vec<&str> = table.row.keys().map(String::as_str).collect();
    columns.extend(table.expect.keys().map(String::as_str));
    columns.extend(table.same.iter().flatten().map(String::as_str));
    // A header cell may carry a log prefix (`[MainThread] [INFO] id`).
    let names = |line: &str| -> Vec<String> {
        cells(line)
            .iter()
            .map(|c| {
                columns
                    .iter()
                    .find(|name| *c == **name || c.ends_with(&format!(" {name}")))
                    .map_or(c.to_string(), |name| name.to_string())
            })
            .collect()
    };
    let at = lines
        .iter()
        .position(|l| {
            let header = names(l);
            columns.iter().all(|c| header.iter().any(|h| h == c))
        })
        .ok_or_else(|| {
            format!(
                "it printed no table with the columns {}",
                columns.join(", ")
            )
        })?;
    let header = names(&lines[at]);
    let row = lines[at + 1..]
        .iter()
        .map(|l| cells(l))
        .filter(|c| c.len() == header.len())
        .map(|c| {
            header
                .iter()
                .cloned()
                .zip(c.into_iter().map(str::to_string))
                .collect::<BTreeMap<String, String>>()
        })
        .find(|row| wanted.iter().all(|(k, v)| row.get(k) == Some(v)));
    let which: Vec<String> = wanted.iter().map(|(k, v)| format!("{k} {v}")).collect();
    let row = row.ok_or_else(|| format!("its table has no row with {}", which.join(", ")))?;
    judge_row(&row, table, &which.join(", "))
}

/// The row found, held to the table's expected values and equal columns.
fn judge_row(
    row: &BTreeMap<String, String>,
    table: &TableCheck,
    which: &str,
) -> Result<String, String> {
    let mut found = Vec::new();
    for (column, value) in &table.expect {
        let got = &row[column];
        if got != value {
            return Err(format!(
                "the row with {which} has {column} {got:?}, not {value:?}"
            ));
        }
        found.push(format!("{column} {got}"));
    }
    for [a, b] in &table.same {
        if row[a] != row[b] {
            return Err(format!(
                "the row with {which} has {a} {} but {b} {}: not everything was done",
                row[a], row[b]
            ));
        }
        found.push(format!("{a} {} = {b}", row[a]));
    }
    Ok(format!("{which}: {}", found.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_journaled_before_judged_commands_reads_back() {
        let then = r#"{"words":["anchore-manager","list"],"fails_if_output_has":["x"],"files":[["dest","/cutover-task/dest.yaml"]]}"#;
        let command: TaskCommand = serde_json::from_str(then).unwrap();
        assert_eq!(command.run.command, ["anchore-manager", "list"]);
        assert_eq!(command.run.fails_if_output_has, ["x"]);
        assert_eq!(command.files.len(), 1);
        let now = serde_json::to_string(&command).unwrap();
        assert!(
            now.starts_with(r#"{"command":["anchore-manager","list"]"#),
            "{now}"
        );
        assert_eq!(serde_json::from_str::<TaskCommand>(&now).unwrap(), command);
    }

    fn lines(text: &str) -> Vec<String> {
        text.lines().map(str::to_string).collect()
    }

    fn table() -> TableCheck {
        TableCheck {
            row: [("id".to_string(), "${captured:migration}".to_string())].into(),
            expect: [("state".to_string(), "complete".to_string())].into(),
            same: vec![["migrated count".into(), "total to migrate".into()]],
        }
    }

    const LISTING: &str = "\
[MainThread] [INFO] id        state           start time        end time        from        to             migrated count        total to migrate        last updated
1         complete        1700000000Z        1700000001Z        db          localfs        30                    30                      1700000001Z
2         complete        1700000100Z        1700000101Z        localfs     db             12                    30                      1700000101Z
3         running         1700000200Z        None               db          localfs        4                     30                      1700000201Z";

    #[test]
    fn the_captured_row_must_be_complete_with_every_document() {
        let captured = |id: &str| BTreeMap::from([("migration".to_string(), id.to_string())]);
        let ok = check_table(&lines(LISTING), &table(), &captured("1")).unwrap();
        assert_eq!(
            ok,
            "id 1: state complete, migrated count 30 = total to migrate"
        );
        let partial = check_table(&lines(LISTING), &table(), &captured("2")).unwrap_err();
        assert!(
            partial.contains("migrated count 12 but total to migrate 30"),
            "{partial}"
        );
        let running = check_table(&lines(LISTING), &table(), &captured("3")).unwrap_err();
        assert!(
            running.contains("state \"running\", not \"complete\""),
            "{running}"
        );
        let missing = check_table(&lines(LISTING), &table(), &captured("9")).unwrap_err();
        assert!(missing.contains("no row with id 9"), "{missing}");
        let none =
            check_table(&lines("Skipping conversion."), &table(), &captured("1")).unwrap_err();
        assert!(none.contains("no table"), "{none}");
    }

    #[test]
    fn a_value_is_captured_after_its_label() {
        let out = lines("[INFO] Loading configs\n[INFO] Migration Task Id: 17\n[INFO] done");
        assert_eq!(capture_value(&out, "Migration Task Id:"), Some("17".into()));
        assert_eq!(capture_value(&out, "Nothing:"), None);
    }
}
