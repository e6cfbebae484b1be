//! Podman's containers that systemd units run: a unit written by `podman generate systemd --new`
//! (its `ExecStart` runs `podman run ... IMAGE`) or a Quadlet `.container` file (its `Image=`),
//! which, like a compose file, names the image the next start of the unit brings back. Podman
//! labels a container a unit started `PODMAN_SYSTEMD_UNIT=<unit>`: both kinds set
//! `Environment=PODMAN_SYSTEMD_UNIT=%n`, and podman 4.3.1's `run` turns that variable into the
//! label (measured). The file is edited as text, so comments and layout stay; systemd reads it
//! again on `systemctl daemon-reload`, which cutover leaves to the operator: it needs no systemd.

use std::ffi::OsString;
use std::path::PathBuf;

use super::ComposeError;
use crate::engine::reference::ImageRef;

/// The label a unit's container carries, naming the unit.
pub const LABEL_UNIT: &str = "PODMAN_SYSTEMD_UNIT";

/// The variable that replaces [`search_dirs`] (directories separated by `:`), for a machine
/// that keeps its units elsewhere, and for tests.
pub const UNIT_PATH_VAR: &str = "CUTOVER_UNIT_PATH";

/// Where unit files are looked for, most specific first: systemd's system unit paths
/// (systemd.unit(5): `/etc/systemd/system`, `/run/systemd/system`,
/// `/usr/local/lib/systemd/system`, `/usr/lib/systemd/system`, and Debian's `/lib`), Quadlet's
/// (podman-systemd.unit(5): `/etc/containers/systemd`, `/usr/share/containers/systemd`), then a
/// rootless user's of both (`~/.config/systemd/user`, `~/.config/containers/systemd`).
pub fn search_dirs(var: impl Fn(&str) -> Option<OsString>) -> Vec<PathBuf> {
    if let Some(dirs) = var(UNIT_PATH_VAR) {
        return std::env::split_paths(&dirs).collect();
    }
    let mut dirs: Vec<PathBuf> = [
        "/etc/systemd/system",
        "/run/systemd/system",
        "/usr/local/lib/systemd/system",
        "/usr/lib/systemd/system",
        "/lib/systemd/system",
        "/etc/containers/systemd",
        "/usr/share/containers/systemd",
    ]
    .map(PathBuf::from)
    .into();
    let config = var("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| var("HOME").map(|h| PathBuf::from(h).join(".config")));
    if let Some(config) = config {
        dirs.push(config.join("systemd/user"));
        dirs.push(config.join("containers/systemd"));
    }
    dirs
}

/// The file that defines `unit` in the first directory holding one: the unit itself, or the
/// Quadlet file Podman's generator makes it from (`app.service` from `app.container`).
pub fn find(unit: &str, dirs: &[PathBuf]) -> Option<PathBuf> {
    let quadlet = unit
        .strip_suffix(".service")
        .map(|stem| format!("{stem}.container"));
    dirs.iter().find_map(|dir| {
        [Some(unit.to_string()), quadlet.clone()]
            .into_iter()
            .flatten()
            .map(|name| dir.join(name))
            .find(|path| path.is_file())
    })
}

/// Whether `written` names `old` as Podman resolved it: the same, or a short name of it
/// (`app:1` for `registry.lan/app:1`, `postgres:15` for `docker.io/library/postgres:15`).
fn names(written: &str, old: &ImageRef) -> bool {
    let Some(w) = ImageRef::parse(written) else {
        return false;
    };
    let full = |r: &ImageRef| (r.registry().map(str::to_string), r.path_in_registry());
    w == *old
        || (w.tag == old.tag
            && w.digest == old.digest
            && (full(&w) == full(old)
                || (w.registry().is_none()
                    && old.repository.ends_with(&format!("/{}", w.repository)))))
}

/// The unit's text with `new` where it names `old`: Quadlet's `Image=`, or the image argument of
/// the `podman ... run` in `ExecStart` (continued over `\` lines); an error when it names no such
/// image (a Quadlet `.image` unit, or another image), so nothing is written that was not meant.
pub fn set_image(text: &str, old: &str, new: &str) -> Result<String, ComposeError> {
    let old_ref = ImageRef::parse(old)
        .ok_or_else(|| ComposeError::Unreadable(format!("{old} is not an image reference")))?;
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let mut out = String::with_capacity(text.len() + new.len());
    let mut found = false;
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let key = line.trim_start();
        if let Some(value) = key.strip_prefix("Image=").filter(|_| !found) {
            if names(value.trim(), &old_ref) {
                let indent = &line[..line.len() - key.len()];
                let end = &value[value.trim_end().len()..];
                out.push_str(&format!("{indent}Image={new}{end}"));
                found = true;
                i += 1;
                continue;
            }
        }
        if key.starts_with("ExecStart=") && !found {
            // The whole command: this line and those its trailing `\` continues onto.
            let mut end = i;
            while end + 1 < lines.len() && lines[end].trim_end().ends_with('\\') {
                end += 1;
            }
            let command: String = lines[i..=end].concat();
            if let Some(edited) = replace_run_image(&command, &old_ref, new) {
                out.push_str(&edited);
                found = true;
                i = end + 1;
                continue;
            }
        }
        out.push_str(line);
        i += 1;
    }
    match found {
        true => Ok(out),
        false => Err(ComposeError::Unwritable(format!(
            "it has no `Image=` nor `podman run` in `ExecStart=` that names {old}"
        ))),
    }
}

/// The command with its `run`'s image word replaced, when a word after `run` names `old`.
fn replace_run_image(command: &str, old: &ImageRef, new: &str) -> Option<String> {
    let words: Vec<(usize, &str)> = command
        .split(|c: char| c.is_whitespace() || c == '\\')
        .scan(0usize, |at, word| {
            let start = *at;
            *at += word.len() + 1;
            Some((start, word))
        })
        .filter(|(_, w)| !w.is_empty())
        .collect();
    let run = words.iter().position(|(_, w)| *w == "run")?;
    let (at, word) = words[run + 1..]
        .iter()
        .find(|(_, w)| !w.starts_with('-') && names(w, old))?;
    Some(format!(
        "{}{new}{}",
        &command[..*at],
        &command[at + word.len()..]
    ))
}

/// What `check` and a plan say of a container a unit runs, on this machine's files in `dirs`.
pub fn described(unit: &str, dirs: &[PathBuf]) -> String {
    match find(unit, dirs) {
        Some(file) => format!(
            "systemd unit {unit} runs it: an upgrade writes the new image in {}, then `systemctl daemon-reload`",
            file.display()
        ),
        None => format!(
            "systemd unit {unit} runs it, whose file is not in {}: its next start would bring back the image it names; write the new one there (or set {UNIT_PATH_VAR}) and `systemctl daemon-reload`",
            shown(dirs)
        ),
    }
}

fn shown(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The unit directories of this process's environment.
pub fn here() -> Vec<PathBuf> {
    search_dirs(|v| std::env::var_os(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `podman generate systemd --new --name probe-unit` wrote on podman 4.3.1 (remote).
    const GENERATED: &str = "[Service]\nEnvironment=PODMAN_SYSTEMD_UNIT=%n\nRestart=on-failure\nExecStart=/usr/bin/podman \\\n\t--remote \\\n\t--url unix:///run/podman/podman.sock run \\\n\t--cidfile=%t/%n.ctr-id \\\n\t--rm \\\n\t-d \\\n\t--replace \\\n\t--name probe-unit 127.0.0.1:5000/auto-a:1.0.0\nExecStop=/usr/bin/podman stop \\\n\t--ignore -t 10 \\\n\t--cidfile=%t/%n.ctr-id\n";

    #[test]
    fn a_generated_units_run_image_is_replaced_and_nothing_else() {
        let edited = set_image(
            GENERATED,
            "127.0.0.1:5000/auto-a:1.0.0",
            "127.0.0.1:5000/auto-a:1.0.1",
        )
        .unwrap();
        assert_eq!(
            edited,
            GENERATED.replace("auto-a:1.0.0", "auto-a:1.0.1"),
            "{edited}"
        );
    }

    #[test]
    fn a_short_name_in_the_unit_names_the_image_podman_resolved() {
        let unit =
            "ExecStart=/usr/bin/podman run -d --name app postgres:15 -c max_connections=50\n";
        let edited = set_image(
            unit,
            "docker.io/library/postgres:15",
            "docker.io/library/postgres:16",
        )
        .unwrap();
        assert_eq!(
            edited,
            "ExecStart=/usr/bin/podman run -d --name app docker.io/library/postgres:16 -c max_connections=50\n"
        );
        let other = set_image(
            unit,
            "docker.io/library/redis:7",
            "docker.io/library/redis:8",
        );
        assert!(other
            .unwrap_err()
            .to_string()
            .contains("names docker.io/library/redis:7"));
    }

    #[test]
    fn a_quadlet_files_image_is_replaced() {
        let quadlet = "# app\n[Container]\nContainerName=app\nImage=registry.lan/app:1\n\n[Install]\nWantedBy=default.target\n";
        let edited = set_image(quadlet, "registry.lan/app:1", "registry.lan/app:2").unwrap();
        assert_eq!(edited, quadlet.replace("app:1", "app:2"));
        let built = "[Container]\nImage=app.image\n";
        assert!(set_image(built, "registry.lan/app:1", "registry.lan/app:2").is_err());
    }

    #[test]
    fn a_unit_is_found_as_itself_or_as_its_quadlet_file_in_the_first_directory() {
        let root = std::env::temp_dir().join(format!("cutover-units-{}", std::process::id()));
        let (first, second) = (root.join("a"), root.join("b"));
        std::fs::create_dir_all(&first).unwrap();
        std::fs::create_dir_all(&second).unwrap();
        std::fs::write(second.join("app.container"), "").unwrap();
        std::fs::write(second.join("container-db.service"), "").unwrap();
        let dirs = [first.clone(), second.clone()];
        assert_eq!(
            find("app.service", &dirs),
            Some(second.join("app.container"))
        );
        assert_eq!(
            find("container-db.service", &dirs),
            Some(second.join("container-db.service"))
        );
        assert_eq!(find("gone.service", &dirs), None);
        assert!(described("gone.service", &dirs).contains("is not in"));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_search_path_is_systemds_and_quadlets_unless_overridden() {
        let none = |_: &str| None;
        let dirs = search_dirs(none);
        assert_eq!(dirs[0], PathBuf::from("/etc/systemd/system"));
        assert!(dirs.contains(&PathBuf::from("/etc/containers/systemd")));
        let home = |v: &str| (v == "HOME").then(|| OsString::from("/home/op"));
        assert!(search_dirs(home).contains(&PathBuf::from("/home/op/.config/containers/systemd")));
        let set = |v: &str| (v == UNIT_PATH_VAR).then(|| OsString::from("/x:/y"));
        assert_eq!(search_dirs(set), [PathBuf::from("/x"), PathBuf::from("/y")]);
    }
}
