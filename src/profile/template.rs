//! `${VAR}` and `${VAR:-default}` in a profile's command words, from the container's
//! environment: a migration needs the same database the service uses, named by its variables.

use crate::engine::facts::env_value;

/// One `${NAME}` or `${NAME:-default}` of a word, and where it stands.
struct Reference<'a> {
    start: usize,
    end: usize,
    name: &'a str,
    default: Option<&'a str>,
}

fn references(word: &str) -> Result<Vec<Reference<'_>>, String> {
    let mut found = Vec::new();
    let mut rest = 0;
    while let Some(open) = word[rest..].find("${").map(|i| rest + i) {
        let close = word[open..]
            .find('}')
            .map(|i| open + i)
            .ok_or_else(|| format!("{word:?}: an unclosed ${{"))?;
        let inner = &word[open + 2..close];
        let (name, default) = match inner.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (inner, None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{word:?}: ${{{inner}}} does not name a variable"));
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

pub fn check(word: &str) -> Result<(), String> {
    references(word).map(|_| ())
}

/// The word with every reference replaced; a variable the container lacks, without a default,
/// is an error that names it.
pub fn expand(word: &str, env: &[String]) -> Result<String, String> {
    let mut out = String::new();
    let mut at = 0;
    for r in references(word)? {
        out.push_str(&word[at..r.start]);
        let value = env_value(env, r.name).or(r.default).ok_or_else(|| {
            format!(
                "the container has no {}, which the profile's command needs",
                r.name
            )
        })?;
        out.push_str(value);
        at = r.end;
    }
    out.push_str(&word[at..]);
    Ok(out)
}
