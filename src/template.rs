//! Templates in command words: `${VAR}` and `${VAR:-default}` from a container's
//! environment: a migration needs the same database the service uses, named by its variables.
//! A whole word `${if:FILE#KEY|WORD}` is WORD when the YAML file FILE sets KEY (a dotted path)
//! to true, and no word at all otherwise: a flag that follows the product's own configuration
//! (Anchore's `--db-use-ssl`, from `db_connect_args.ssl` in its `config.yaml`).
//! Profiles' steps are filled in when their hop is planned; a task's commands only as they run,
//! from the member's environment then, so that their secrets stay out of the plan. A command's
//! words never take a secret ([`check`]); a one-shot's environment does ([`check_value`]).

use serde_json::Value;

use crate::engine::facts::{env_value, Facts};

/// A template that is malformed or would leak a secret (the profile's words: bad input), or
/// one the container gives no value for (a refusal of that container).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    #[error("{0:?}: an unclosed ${{")]
    Unclosed(String),
    #[error("{word:?}: ${{{inner}}} does not name a variable")]
    NotAVariable { word: String, inner: String },
    #[error("{0:?}: write a condition as the whole word ${{if:FILE#KEY|WORD}}")]
    Condition(String),
    #[error("{word:?}: ${{{name}}} would put a secret on the one-shot's command line, which every user of the host reads in `ps`: pass it in the one-shot's environment instead (`env: {{PGPASSWORD: \"${{{name}}}\"}}` with a URL that has no password, for a libpq client)")]
    Secret { word: String, name: String },
    #[error("the container has no {0}, which the profile's command needs")]
    Unset(String),
}

/// A whole word `${if:FILE#KEY|WORD}`.
#[derive(Debug, PartialEq, Eq)]
pub struct Condition<'a> {
    /// A path inside the container (a migration), or the name of a task's file.
    pub file: &'a str,
    pub key: &'a str,
    pub word: &'a str,
}

/// The condition a whole word is, if it is one.
pub fn condition(word: &str) -> Option<Condition<'_>> {
    let inner = word.strip_prefix("${if:")?.strip_suffix('}')?;
    let (test, word) = inner.split_once('|')?;
    let (file, key) = test.split_once('#')?;
    (!file.is_empty() && !key.is_empty() && !word.is_empty()).then_some(Condition {
        file,
        key,
        word,
    })
}

impl Condition<'_> {
    /// Whether the key is true in the document: `true`, or a string or number that says so.
    pub fn holds(&self, doc: Option<&Value>) -> bool {
        let found = doc.and_then(|d| self.key.split('.').try_fold(d, |v, k| v.get(k)));
        match found {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => {
                matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on" | "1")
            }
            Some(Value::Number(n)) => n.as_i64() == Some(1),
            _ => false,
        }
    }
}

/// The files a migration's conditions read from the container.
pub fn condition_files(words: &[String]) -> Vec<String> {
    words
        .iter()
        .filter_map(|w| condition(w).map(|c| c.file.to_string()))
        .collect()
}

/// A migration's words for a container with these facts: variables filled in, conditions
/// resolved (a condition that does not hold leaves no word).
pub fn expand_command(words: &[String], facts: &Facts) -> Result<Vec<String>, TemplateError> {
    let mut out = Vec::new();
    for word in words {
        match condition(word) {
            Some(c) => {
                let doc = facts
                    .files
                    .get(c.file)
                    .and_then(|text| yaml_serde::from_str::<Value>(text).ok());
                if c.holds(doc.as_ref()) {
                    out.push(c.word.to_string());
                }
            }
            None => out.push(expand(word, &facts.env)?),
        }
    }
    Ok(out)
}

/// One `${NAME}` or `${NAME:-default}` of a word, and where it stands.
struct Reference<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    default: Option<&'a str>,
}

fn references(word: &str) -> Result<Vec<Reference<'_>>, TemplateError> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = word[rest..].find("${").map(|i| rest + i) {
        let close = word[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| TemplateError::Unclosed(word.to_string()))?;
        let inner = &word[open + 2..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(TemplateError::NotAVariable {
                word: word.to_string(),
                inner: inner.to_string(),
            });
        }
        found.push(Reference {
            start: open,
            end: close + 1,
            name,
            default,
        });
        rest = close + 1;
    }
    Ok(found)
}

/// A word of a one-shot's command line: its templates well formed, and none of them a secret.
/// A command line is every local user's to read (`ps`, `/proc/PID/cmdline`), a container's
/// too, and `docker inspect` shows it, so a secret goes through the one-shot's environment
/// instead (see [`check_value`]), as libpq's `PGPASSWORD` with a URL that has no password.
/// `secrets` are the variables the profile knows to hold one (its database's password or URL),
/// besides those whose name says so.
pub fn check(word: &str, secrets: &[String]) -> Result<(), TemplateError> {
    if word.starts_with("${if:") && condition(word).is_none() {
        return Err(TemplateError::Condition(word.to_string()));
    }
    if condition(word).is_some() {
        return Ok(());
    }
    match references(word)?
        .into_iter()
        .find(|r| crate::secrets::is_secret_name(r.name) || secrets.iter().any(|s| s == r.name))
    {
        Some(r) => Err(TemplateError::Secret {
            word: word.to_string(),
            name: r.name.to_string(),
        }),
        None => Ok(()),
    }
}

/// The variables a word names, in order; an error when one is malformed.
pub fn names(word: &str) -> Result<Vec<&str>, TemplateError> {
    Ok(references(word)?.into_iter().map(|r| r.name).collect())
}

/// A value of a one-shot's environment: its templates well formed. Secrets belong here.
pub fn check_value(value: &str) -> Result<(), TemplateError> {
    references(value).map(|_| ())
}

/// The word with every reference replaced; a variable the container lacks, without a default,
/// is an error that names it.
pub fn expand(word: &str, env: &[String]) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut at = 0;
    for r in references(word)? {
        out.push_str(&word[at..r.start]);
        let value = env_value(env, r.name)
            .or(r.default)
            .ok_or_else(|| TemplateError::Unset(r.name.to_string()))?;
        out.push_str(value);
        at = r.end;
    }
    out.push_str(&word[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated_text, said, seeds, text, ARBITRARY, MUTATED, ROUND_TRIP};

    /// One piece of a word: text as it stands, or a reference with its value in the
    /// environment (none: its default is used).
    #[derive(Debug, Clone)]
    enum Piece {
        Text(String),
        Reference {
            name: String,
            value: Option<String>,
            default: String,
        },
    }

    fn piece() -> impl Strategy<Value = Piece> {
        prop_oneof![
            "[a-zA-Z0-9 /:.=}-]{0,10}".prop_map(Piece::Text),
            (
                "[A-Z_][A-Z0-9_]{0,8}",
                proptest::option::of(any::<String>()),
                "[a-z0-9./-]{0,8}"
            )
                .prop_map(|(name, value, default)| Piece::Reference {
                    name,
                    value,
                    default
                }),
        ]
    }

    /// A word is checked (when its profile is loaded) before it is expanded (when its hop is
    /// planned or its task runs): a word the check let through fails to expand only for a
    /// variable the container lacks, never for how it is written.
    fn checked_then_expanded(word: &str) -> Result<(), TestCaseError> {
        let env = ["HOME=/root".to_string(), "DB=quay".to_string()];
        let checked = check(word, &[]);
        let expanded = expand(word, &env);
        if let Err(e) = &checked {
            said(e)?;
        }
        if let Err(e) = &expanded {
            said(e)?;
        }
        if checked.is_ok() && condition(word).is_none() {
            if let Err(e) = expanded {
                prop_assert!(e.to_string().contains("the container has no"), "{}", e);
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        #[test]
        fn any_word_expands_or_says_why(word in text()) {
            checked_then_expanded(&word)?;
        }
    }

    proptest! {
        #![proptest_config(cases(MUTATED))]
        #[test]
        fn mistyped_templates_expand_or_say_why(
            word in mutated_text(seeds(&[
                "--db=${DB}",
                "${USER:-anchore}@${HOST}:${PORT:-5432}",
                "${if:/config/config.yaml#db_connect_args.ssl|--db-use-ssl}",
            ]))
        ) {
            checked_then_expanded(&word)?;
        }
    }

    proptest! {
        #![proptest_config(cases(ROUND_TRIP))]
        /// Each reference is replaced by its value (or its default) and only it: the text
        /// around stays, and a value that looks like a template is not expanded again.
        #[test]
        fn a_word_expands_to_its_text_and_its_values(pieces in proptest::collection::vec(piece(), 0..6)) {
            // A container has one value per name: the first piece to give one.
            let mut env: Vec<String> = Vec::new();
            for piece in &pieces {
                if let Piece::Reference { name, value: Some(value), .. } = piece {
                    if env_value(&env, name).is_none() {
                        env.push(format!("{name}={value}"));
                    }
                }
            }
            let mut word = String::new();
            let mut expected = String::new();
            for piece in &pieces {
                match piece {
                    Piece::Text(text) => {
                        word.push_str(text);
                        expected.push_str(text);
                    }
                    Piece::Reference { name, default, .. } => {
                        word.push_str(&format!("${{{name}:-{default}}}"));
                        expected.push_str(env_value(&env, name).unwrap_or(default));
                    }
                }
            }
            let secret = pieces.iter().any(|p| {
                matches!(p, Piece::Reference { name, .. } if crate::secrets::is_secret_name(name))
            });
            match check(&word, &[]) {
                Err(e) if secret => {
                    prop_assert!(e.to_string().contains("would put a secret"), "{}", e)
                }
                checked => prop_assert_eq!(checked, Ok(())),
            }
            prop_assert_eq!(expand(&word, &env), Ok(expected));
        }
    }
}
