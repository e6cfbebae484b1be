//! The library's layers as `src/lib.rs` lists them, held against its code: no module uses one
//! listed after it (no arrow up the layers, hence no circle between them), the leaves use none,
//! and every module has its place in the list. Unit tests (`mod tests`, `*tests.rs`, the
//! in-memory engine's helpers) are left out: they may drive what is above what they test.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const LIB: &str = include_str!("../src/lib.rs");

/// The first backquoted word of a line.
fn first_quoted(line: &str) -> Option<String> {
    let rest = line.split_once('`')?.1;
    Some(rest.split_once('`')?.0.to_string())
}

/// The layers, lowest first (`//! - [`name`]: ...`), and the leaves (every backquoted name of
/// the paragraph that begins `//! Beneath them all`).
fn listed() -> (Vec<String>, BTreeSet<String>) {
    let layers = LIB
        .lines()
        .filter_map(|l| l.strip_prefix("//! - "))
        .filter_map(first_quoted)
        .collect();
    let mut leaves = BTreeSet::new();
    let mut in_leaves = false;
    for line in LIB.lines().filter_map(|l| l.strip_prefix("//!")) {
        in_leaves |= line.trim_start().starts_with("Beneath them all");
        if in_leaves {
            leaves.extend(line.split('`').skip(1).step_by(2).map(str::to_string));
        }
        if in_leaves && line.trim().is_empty() {
            break;
        }
    }
    leaves.remove("");
    (layers, leaves)
}

/// The modules `lib.rs` declares, the tests' own helpers aside.
fn declared() -> BTreeSet<String> {
    LIB.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l
                .strip_prefix("pub mod ")
                .or_else(|| l.strip_prefix("pub(crate) mod "))
                .or_else(|| l.strip_prefix("mod "))?;
            Some(l.trim_end_matches(';').to_string())
        })
        .filter(|m| m != "testing")
        .collect()
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The code of a file without its comments and its `#[cfg(test)] mod` (written last).
fn code(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let mut kept = String::new();
    for (i, line) in lines.iter().enumerate() {
        let trimmed = line.trim_start();
        let next = lines.get(i + 1).map(|l| l.trim_start()).unwrap_or_default();
        if trimmed.starts_with("#[cfg(test)]")
            && (next.starts_with("mod ") || next.starts_with("pub mod "))
        {
            break;
        }
        if !trimmed.starts_with("//") {
            kept.push_str(line);
            kept.push('\n');
        }
    }
    kept
}

/// The top modules a piece of code names as `crate::NAME` or in `crate::{NAME, ...}`.
fn uses(code: &str) -> BTreeSet<String> {
    let word = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut used = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + "crate::".len()..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let mut depth = 0;
                let mut item_start = true;
                for (i, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        _ if item_start && !c.is_whitespace() => {
                            used.insert(word(&group[i..]));
                            item_start = false;
                        }
                        _ => {}
                    }
                }
            }
            None => {
                used.insert(word(rest));
            }
        }
    }
    used
}

#[test]
fn no_module_uses_one_listed_after_it() {
    let (layers, leaves) = listed();
    let declared = declared();
    let placed: BTreeSet<String> = layers
        .iter()
        .cloned()
        .chain(leaves.iter().cloned())
        .collect();
    assert_eq!(
        declared, placed,
        "every module of lib.rs is listed once in its doc, as a layer or a leaf"
    );
    let rank = |m: &str| {
        layers
            .iter()
            .position(|l| l == m)
            .map(|i| i + 1)
            .unwrap_or(0)
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&root, &mut files);
    let mut up = Vec::new();
    for file in files {
        let relative = file.strip_prefix(&root).unwrap().display().to_string();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let top = relative
            .split('/')
            .next()
            .unwrap()
            .trim_end_matches(".rs")
            .to_string();
        if top == "bin" || top == "lib" || top == "testing" || name.ends_with("tests.rs") {
            continue;
        }
        assert!(placed.contains(&top), "{relative} is in no listed module");
        let text = std::fs::read_to_string(&file).unwrap();
        for used in uses(&code(&text)) {
            if !placed.contains(&used) {
                continue;
            }
            let wrong = match leaves.contains(&top) {
                true => !leaves.contains(&used),
                false => rank(&used) > rank(&top),
            };
            if wrong {
                up.push(format!("{relative} uses {used}"));
            }
        }
    }
    assert!(up.is_empty(), "arrows up the layers of lib.rs: {up:#?}");
}

/// The reading itself: grouped imports and paths are both seen, comments are not.
#[test]
fn the_check_sees_every_way_of_naming_a_module() {
    let text = "use crate::{engine::X, plan::{a, b}};\n// crate::discover\nlet x = crate::ops::f();\n#[cfg(test)]\nmod tests {\n    use crate::run;\n}\n";
    assert_eq!(
        uses(&code(text)).into_iter().collect::<Vec<_>>(),
        ["engine", "ops", "plan"]
    );
}

/// The engine's wire types (bollard's) are read and written in `src/engine/` alone: the rest of
/// the library and the binary speak of containers, services, images and networks in the
/// engine's own types, so that another engine or another client touches one folder.
#[test]
fn no_wire_type_leaves_the_engine() {
    let mut files = Vec::new();
    sources(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src")),
        &mut files,
    );
    let engine = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/src/engine"));
    let named: Vec<String> = files
        .iter()
        .filter(|f| !f.starts_with(engine))
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            text.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .any(|l| l.contains("bollard"))
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        named.is_empty(),
        "bollard named outside src/engine/: {named:?}"
    );
}
