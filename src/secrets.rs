//! Keeping secrets out of everything cutover writes.
//!
//! Two layers: environment entries whose *name* looks secret are shown as `NAME=***` wherever
//! cutover renders configuration, and their *values* (plus registry passwords) are registered
//! process-wide so that [`redact`] can scrub them from any text people read: the terminal, log
//! lines, error messages (including text that came back from the engine), and the free-text
//! fields of the journal (details, messages, commands).
//!
//! Records cutover reads back (journals, backup manifests) are never masked as a whole: they
//! are written from typed data that holds no secret value, so that masking can never change a
//! container's name, a port or a boolean into `***`. A product's image sets defaults such as
//! `ANCHORE_AUTH_SECRET=null` or `ANCHORE_OAUTH_TOKEN_EXPIRATION=3600` under names that look
//! secret; values that cannot be secrets (booleans, null, plain numbers) are never registered.

use std::io::{self, Write};
use std::sync::{Mutex, OnceLock, RwLock};

/// Parts of a variable name that mark its value as secret (matched case-insensitively).
const SECRET_NAME_PARTS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "PASS",
    "SECRET",
    "KEY",
    "TOKEN",
    "CONNECTION_STRING",
    "CREDENTIAL",
    "AUTH",
    "PRIVATE",
    "DSN",
    "DB_URL",
    "DB_URI",
    "DATABASE_URL",
    "COOKIE",
    "SALT",
];

/// Values shorter than this are not scrubbed from free text: masking every `1` or `on` would
/// garble output without protecting anything worth protecting.
const MIN_REDACTED_LEN: usize = 4;

pub const MASK: &str = "***";

pub fn is_secret_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    SECRET_NAME_PARTS.iter().any(|part| upper.contains(part))
}

/// `NAME=value` with the value masked when the name looks secret.
pub fn mask_env_entry(entry: &str) -> String {
    match entry.split_once('=') {
        Some((name, _)) if is_secret_name(name) => format!("{name}={MASK}"),
        _ => entry.to_string(),
    }
}

fn registry() -> &'static RwLock<Vec<String>> {
    static VALUES: OnceLock<RwLock<Vec<String>>> = OnceLock::new();
    VALUES.get_or_init(|| RwLock::new(Vec::new()))
}

/// Whether a value may be a secret: not a boolean, null or a plain number, whatever its
/// variable is called (`ANCHORE_AUTH_SECRET=null`, `..._TOKEN_EXPIRATION=3600`,
/// `..._HASHED_PASSWORDS=false`), and long enough to be worth scrubbing from free text.
fn may_be_secret(value: &str) -> bool {
    let word = value.trim().to_ascii_lowercase();
    let plain_number = {
        let digits = word.strip_prefix(['-', '+']).unwrap_or(&word);
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
            && digits.chars().filter(|c| *c == '.').count() <= 1
    };
    let literal = matches!(
        word.as_str(),
        "true"
            | "false"
            | "yes"
            | "no"
            | "on"
            | "off"
            | "null"
            | "none"
            | "nil"
            | "~"
            | "undefined"
    );
    value.len() >= MIN_REDACTED_LEN && !literal && !plain_number
}

/// The scheme of `text` (what stands before `://`) when it is one: all an error may show of
/// a URL that could not be read, whose rest, or whole, may be a password or a token.
pub fn shown_scheme(text: &str) -> Option<&str> {
    text.trim()
        .split_once("://")
        .map(|(scheme, _)| scheme)
        .filter(|s| {
            s.starts_with(|c: char| c.is_ascii_alphabetic())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        })
}

/// Remembers a secret value so that [`redact`] scrubs it from then on.
pub fn register(value: &str) {
    if !may_be_secret(value) {
        return;
    }
    let mut values = registry().write().unwrap_or_else(|e| e.into_inner());
    if !values.iter().any(|v| v == value) {
        values.push(value.to_string());
        // Longest first, so a secret that contains another is scrubbed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
    }
}

/// Registers the values of every secret-looking entry of a container's environment.
pub fn register_env<'a>(env: impl IntoIterator<Item = &'a String>) {
    for entry in env {
        if let Some((name, value)) = entry.split_once('=') {
            if is_secret_name(name) {
                register(value);
            }
        }
    }
}

/// Registers the secret-looking values of a configuration file, YAML (`password: x`) or dotenv
/// (`SECRET=x`), and the passwords of the URLs it holds.
pub fn register_config_text(text: &str) {
    for line in text.lines() {
        let line = line.trim();
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once(": ").or_else(|| line.split_once('=')) else {
            continue;
        };
        let value = value.trim().trim_matches(['"', '\'']);
        if is_secret_name(name.trim()) {
            register(value);
        }
        register_command(&[value.to_string()]);
    }
}

/// Registers the secrets a command line carries: the password of a URL
/// (`postgresql://user:PASS@host/db`) and the value of a secret-looking `NAME=VALUE` word, so that
/// the command can be shown, journaled and reported.
pub fn register_command(words: &[String]) {
    for word in words {
        register_env(std::iter::once(word));
        for (i, _) in word.match_indices("://") {
            let rest = &word[i + 3..];
            let userinfo = rest.split(['/', '?', '#']).next().unwrap_or_default();
            if let Some((credentials, _host)) = userinfo.rsplit_once('@') {
                if let Some((_user, password)) = credentials.split_once(':') {
                    register(password);
                }
            }
        }
    }
}

/// The text with every registered secret value replaced by `***`.
pub fn redact(text: &str) -> String {
    let values = registry().read().unwrap_or_else(|e| e.into_inner());
    values
        .iter()
        .fold(text.to_string(), |acc, v| acc.replace(v.as_str(), MASK))
}

/// A JSON document for people to read, each string in it redacted: the structure, numbers and
/// booleans stay as they are.
pub fn redact_json(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match value {
        Value::String(s) => Value::String(redact(s)),
        Value::Array(items) => Value::Array(items.iter().map(redact_json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (k.clone(), redact_json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// Serializes command words as people read them, secrets scrubbed: a command given on the
/// command line may hold a password, and the journal keeps the command only to show it.
pub fn shown_words<S: serde::Serializer>(words: &[String], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(words.iter().map(|w| redact(w)))
}

/// Serializes a URL with the password of its user info (`http://user:PASS@host/`) masked: the
/// rest of it stays usable.
pub fn url_without_password<S: serde::Serializer>(
    url: &Option<String>,
    s: S,
) -> Result<S::Ok, S::Error> {
    let masked = url.as_deref().map(|url| {
        let Some((scheme, rest)) = url.split_once("://") else {
            return url.to_string();
        };
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        match authority.rsplit_once('@') {
            Some((info, host)) => match info.split_once(':') {
                Some((user, _)) => {
                    format!(
                        "{scheme}://{user}:{MASK}@{host}{}",
                        &rest[authority.len()..]
                    )
                }
                None => url.to_string(),
            },
            None => url.to_string(),
        }
    });
    serde::Serialize::serialize(&masked, s)
}

/// A `tracing` writer for standard error that redacts each formatted event.
#[derive(Clone, Copy, Default)]
pub struct RedactingStderr;

impl Write for RedactingStderr {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // tracing-subscriber formats a whole event before writing it, so each call is one line.
        static LOCK: Mutex<()> = Mutex::new(());
        let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
        io::stderr().write_all(redact(&String::from_utf8_lossy(buf)).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactingStderr {
    type Writer = RedactingStderr;

    fn make_writer(&'a self) -> Self::Writer {
        *self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_are_recognised() {
        for name in [
            "ENCODE_KEY",
            "PROGET_SQL_CONNECTION_STRING",
            "ANCHORE_DB_PASSWORD",
            "db_password",
            "ENCRYPTION_SECRET",
            "GITHUB_TOKEN",
            "DB_URL",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["PATH", "APP_COLOR", "TZ", "ANCHORE_DB_HOST"] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn env_entries_are_masked_by_name() {
        assert_eq!(mask_env_entry("ENCODE_KEY=abc=def"), "ENCODE_KEY=***");
        assert_eq!(mask_env_entry("TZ=UTC"), "TZ=UTC");
        assert_eq!(mask_env_entry("NOVALUE"), "NOVALUE");
    }

    #[test]
    fn passwords_in_command_lines_are_scrubbed() {
        let words: Vec<String> = [
            "anchore-manager",
            "db",
            "--db-connect",
            "postgresql+pg8000://anchore:pg-pass-7731@db:5432/anchore",
            "PGPASSWORD=other-pass-99",
            "upgrade",
        ]
        .iter()
        .map(|w| w.to_string())
        .collect();
        register_command(&words);
        let shown = redact(&words.join(" "));
        assert_eq!(shown, "anchore-manager db --db-connect postgresql+pg8000://anchore:***@db:5432/anchore PGPASSWORD=*** upgrade");
    }

    #[test]
    fn values_that_cannot_be_secrets_are_never_registered() {
        // The real Anchore image's own defaults, under names that look secret.
        register_env(&[
            "ANCHORE_AUTH_ENABLE_HASHED_PASSWORDS=false".to_string(),
            "ANCHORE_DISABLE_METRICS_AUTH=false".to_string(),
            "ANCHORE_OAUTH_TOKEN_EXPIRATION=3600".to_string(),
            "ANCHORE_AUTH_SECRET=null".to_string(),
            "SOME_KEY_TTL=-12.5".to_string(),
            "ANCHORE_CLI_PASS=foobar".to_string(),
        ]);
        let record =
            r#"{"online":false,"timeout_secs":3600,"user":null,"ttl":-12.5,"pass":"foobar"}"#;
        assert_eq!(
            redact(record),
            r#"{"online":false,"timeout_secs":3600,"user":null,"ttl":-12.5,"pass":"***"}"#
        );
    }

    #[test]
    fn a_url_is_journaled_without_its_password() {
        let shown = |url: &str| {
            serde_json::to_value(Wrapper(Some(url.to_string())))
                .unwrap()
                .as_str()
                .unwrap()
                .to_string()
        };
        #[derive(serde::Serialize)]
        struct Wrapper(#[serde(serialize_with = "url_without_password")] Option<String>);
        assert_eq!(
            shown("http://admin:pw-4455@app:8080/health?x=1"),
            "http://admin:***@app:8080/health?x=1"
        );
        assert_eq!(shown("http://app:8080/a@b"), "http://app:8080/a@b");
        assert_eq!(shown("not a url"), "not a url");
    }

    #[test]
    fn json_for_people_keeps_its_structure() {
        register("s3cr3t-json-value");
        let doc = serde_json::json!({"env": ["A=s3cr3t-json-value"], "n": 5, "ok": true});
        assert_eq!(
            redact_json(&doc),
            serde_json::json!({"env": ["A=***"], "n": 5, "ok": true})
        );
    }

    #[test]
    fn registered_values_are_scrubbed_from_free_text() {
        register_env(&[
            "APP_PASSWORD=hunter2-secret".to_string(),
            "TZ=Europe/Paris".to_string(),
        ]);
        register("abc"); // too short to scrub
        let text = redact("connect failed: password hunter2-secret rejected; tz Europe/Paris abc");
        assert_eq!(
            text,
            "connect failed: password *** rejected; tz Europe/Paris abc"
        );
    }
}
