//! Keeping secrets out of everything cutover writes.
//!
//! Two layers: environment entries whose *name* looks secret are shown as `NAME=***` wherever
//! cutover renders configuration, and their *values* (plus registry passwords) are registered
//! process-wide so that [`redact`] can scrub them from any text that reaches a terminal, a log
//! line, the journal or an error message, including text that came back from the engine.

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

/// Remembers a secret value so that [`redact`] scrubs it from then on.
pub fn register(value: &str) {
    if value.len() < MIN_REDACTED_LEN {
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

/// Registers the secrets of a container's environment, before anything about it is printed.
pub fn register_container(c: &bollard::models::ContainerInspectResponse) {
    register_env(c.config.iter().flat_map(|c| c.env.iter().flatten()));
}

/// The text with every registered secret value replaced by `***`.
pub fn redact(text: &str) -> String {
    let values = registry().read().unwrap_or_else(|e| e.into_inner());
    values
        .iter()
        .fold(text.to_string(), |acc, v| acc.replace(v.as_str(), MASK))
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
