//! Compose files and `.env` files changed as text, one value at a time: a YAML round trip would
//! lose the user's comments, order and quoting.

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use super::ComposeError;

/// `${NAME}`, `${NAME:-default}` or `$NAME` in an image string, with what stands around it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VarRef {
    pub name: String,
    pub default: Option<String>,
    pub prefix: String,
    pub suffix: String,
}

/// The variable an image is written with, if any; several are refused, since no single value
/// could be written for them.
pub fn variable(written: &str) -> Result<Option<VarRef>, ComposeError> {
    let Some(start) = written.find('$') else {
        return Ok(None);
    };
    let rest = &written[start + 1..];
    let (inner, end) = if let Some(braced) = rest.strip_prefix('{') {
        let close = braced
            .find('}')
            .ok_or_else(|| ComposeError::Unreadable(format!("{written:?}: an unclosed ${{")))?;
        (&braced[..close], start + 2 + close + 1)
    } else {
        let len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        (&rest[..len], start + 1 + len)
    };
    let (name, default) = match inner.split_once(":-").or_else(|| inner.split_once('-')) {
        Some((name, default)) => (name, Some(default.to_string())),
        None => (inner, None),
    };
    let suffix = &written[end..];
    if suffix.contains('$') {
        return Err(ComposeError::Unwritable(format!("the image {written:?} is written with several variables; change them yourself and pass --no-compose-edit")));
    }
    Ok(Some(VarRef {
        name: name.to_string(),
        default,
        prefix: written[..start].to_string(),
        suffix: suffix.to_string(),
    }))
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// Blank lines and comments belong to no block.
fn is_content(line: &str) -> bool {
    let t = line.trim();
    !t.is_empty() && !t.starts_with('#')
}

/// Whether the line is the key `name:` (plain or quoted), with nothing after it but a comment.
fn is_key(line: &str, name: &str) -> bool {
    let t = line.trim();
    let rest = [
        format!("{name}:"),
        format!("\"{name}\":"),
        format!("'{name}':"),
    ]
    .into_iter()
    .find_map(|k| t.strip_prefix(&k).map(str::to_string));
    rest.is_some_and(|r| r.trim().is_empty() || r.trim_start().starts_with('#'))
}

/// The text with the `image:` value of `service` replaced by `image`, keeping its quotes, its
/// comment and every other byte of the file.
pub fn set_image(text: &str, service: &str, image: &str) -> Result<String, ComposeError> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let not_found = || {
        ComposeError::Unwritable(format!("cannot find the `image:` line of service {service}; change it yourself and pass --no-compose-edit"))
    };
    // Version 1 files have the services at the top level.
    let services = lines
        .iter()
        .position(|l| indent(l) == 0 && is_key(l, "services"));
    let (from, parent) = match services {
        Some(i) => (i + 1, Some(0)),
        None => (0, None),
    };
    let key = lines[from..]
        .iter()
        .position(|l| {
            is_content(l)
                && parent.is_none_or(|p| indent(l) > p)
                && is_key(l, service)
                && (parent.is_some() || indent(l) == 0)
        })
        .map(|i| i + from)
        .ok_or_else(not_found)?;
    let key_indent = indent(lines[key]);
    let mut child_indent = None;
    for (i, line) in lines.iter().enumerate().skip(key + 1) {
        if !is_content(line) {
            continue;
        }
        let at = indent(line);
        if at <= key_indent {
            break;
        }
        let child = *child_indent.get_or_insert(at);
        let trimmed = line.trim_start();
        if at == child && trimmed.starts_with("image:") {
            let mut out = String::with_capacity(text.len() + image.len());
            for l in &lines[..i] {
                out.push_str(l);
            }
            out.push_str(&replace_value(line, image)?);
            for l in &lines[i + 1..] {
                out.push_str(l);
            }
            return Ok(out);
        }
    }
    Err(not_found())
}

/// `  image: "old"  # note\n` with `new` in place of `old`.
fn replace_value(line: &str, new: &str) -> Result<String, ComposeError> {
    let colon = line.find("image:").map(|i| i + "image:".len()).unwrap_or(0);
    let (head, tail) = line.split_at(colon);
    let body = tail.trim_end_matches(['\n', '\r']);
    let ending = &tail[body.len()..];
    let spaces = &body[..body.len() - body.trim_start().len()];
    let value = body.trim_start();
    let (quoted, rest) = match value.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let close = value[1..].find(q).ok_or_else(|| {
                ComposeError::Unreadable("an unclosed quote on the image line".into())
            })?;
            (Some(q), &value[close + 2..])
        }
        Some('*' | '&' | '!' | '{' | '[') => return Err(ComposeError::Unwritable(
            "the image line uses YAML that cutover does not rewrite (an alias, tag or flow value)"
                .into(),
        )),
        // A plain value ends where its comment's spaces begin.
        _ => (
            None,
            value
                .find(" #")
                .map_or("", |i| &value[value[..i].trim_end().len()..]),
        ),
    };
    let new = match quoted {
        Some(q) => format!("{q}{new}{q}"),
        None => new.to_string(),
    };
    Ok(format!("{head}{spaces}{new}{rest}{ending}"))
}

/// The dotenv text with `name` set to `value`: its line rewritten in place (keeping `export` and
/// the quoting), or appended.
pub fn set_dotenv(text: &str, name: &str, value: &str) -> String {
    let mut out = String::with_capacity(text.len() + name.len() + value.len() + 2);
    let mut done = false;
    for line in text.split_inclusive('\n') {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        let (export, rest) = match body.trim_start().strip_prefix("export ") {
            Some(rest) => ("export ", rest),
            None => ("", body.trim_start()),
        };
        match rest.split_once('=') {
            Some((key, old)) if !done && key.trim() == name => {
                let quote = old
                    .trim()
                    .chars()
                    .next()
                    .filter(|c| *c == '"' || *c == '\'');
                let lead = &body[..body.len() - body.trim_start().len()];
                match quote {
                    Some(q) => out.push_str(&format!("{lead}{export}{name}={q}{value}{q}{ending}")),
                    None => out.push_str(&format!("{lead}{export}{name}={value}{ending}")),
                }
                done = true;
            }
            _ => out.push_str(line),
        }
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&format!("{name}={value}\n"));
    }
    out
}

/// Replaces a file's content in one step (a new file renamed over it), keeping its mode and
/// owner, so that a crash leaves the old content or the new, never half of one.
pub fn replace(path: &Path, text: &str) -> Result<(), String> {
    let shown = |e: std::io::Error| format!("{}: {e}", path.display());
    let meta = std::fs::metadata(path).ok();
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    let temp = dir.join(format!(".{name}.cutover"));
    let mut file = crate::private::options()
        .create(true)
        .write(true)
        .truncate(true)
        .open(&temp)
        .map_err(shown)?;
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(shown)?;
    if let Some(meta) = &meta {
        std::fs::set_permissions(
            &temp,
            std::fs::Permissions::from_mode(meta.permissions().mode()),
        )
        .map_err(shown)?;
        std::os::unix::fs::chown(&temp, Some(meta.uid()), Some(meta.gid())).map_err(shown)?;
    }
    std::fs::rename(&temp, path).map_err(shown)?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(shown)
}

/// Whether this process may change the file (or create it, when it does not exist).
pub fn writable(path: &Path) -> bool {
    match std::fs::metadata(path) {
        Ok(meta) => {
            !meta.permissions().readonly()
                && std::fs::OpenOptions::new().append(true).open(path).is_ok()
        }
        Err(_) => path
            .parent()
            .is_some_and(|d| std::fs::metadata(d).is_ok_and(|m| !m.permissions().readonly())),
    }
}
