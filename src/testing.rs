//! What the property tests of the parsers share: how many cases each kind of property tries
//! (the README's table quotes these), the inputs they try, and the damage they do to files.
//!
//! Random text alone rarely gets past a parser's first character, so most properties also try
//! valid examples with a few bytes flipped, inserted or deleted: those reach deep into the
//! parser, where a panic or a silent misreading would hide.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Cases of a property that feeds random text to a parser: cheap, so many.
pub const ARBITRARY: u32 = 512;
/// Cases of a property that feeds mutated valid examples to a parser.
pub const MUTATED: u32 = 512;
/// Cases of a property that writes a value as cutover does and reads it back.
pub const ROUND_TRIP: u32 = 256;
/// Cases of a property that writes files (each case fsyncs what it writes): fewer.
pub const FILES: u32 = 32;

/// A proptest configuration that tries `cases` cases.
pub fn cases(cases: u32) -> ProptestConfig {
    ProptestConfig::with_cases(cases)
}

/// Text a person or a damaged file might hand a parser: any Unicode, or printable ASCII with
/// line breaks, which holds the characters parsers split on.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![any::<String>(), "[ -~\n]{0,80}"]
}

/// One change to a valid example; positions are taken modulo its length.
#[derive(Debug, Clone)]
enum Edit {
    Flip { at: usize, bit: u8 },
    Insert { at: usize, byte: u8 },
    Delete { at: usize },
}

fn edit() -> impl Strategy<Value = Edit> {
    // Inserted bytes are often ones that mean something to YAML, JSON, URLs or templates.
    let byte = prop_oneof![
        any::<u8>(),
        proptest::sample::select(b":-{}[]\"'#\n\t /@$%?&=.,!*|>".to_vec())
    ];
    prop_oneof![
        (any::<usize>(), 0..8u8).prop_map(|(at, bit)| Edit::Flip { at, bit }),
        (any::<usize>(), byte).prop_map(|(at, byte)| Edit::Insert { at, byte }),
        any::<usize>().prop_map(|at| Edit::Delete { at }),
    ]
}

/// One of `seeds` with one to eight bytes flipped, inserted or deleted.
pub fn mutated(seeds: Vec<String>) -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::sample::select(seeds),
        proptest::collection::vec(edit(), 1..=8),
    )
        .prop_map(|(seed, edits)| {
            let mut bytes = seed.into_bytes();
            for edit in edits {
                match edit {
                    Edit::Flip { at, bit } if !bytes.is_empty() => {
                        let at = at % bytes.len();
                        bytes[at] ^= 1 << bit;
                    }
                    Edit::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
                    Edit::Delete { at } if !bytes.is_empty() => {
                        let at = at % bytes.len();
                        bytes.remove(at);
                    }
                    Edit::Flip { .. } | Edit::Delete { .. } => {}
                }
            }
            bytes
        })
}

/// [`mutated`] as text, for parsers that take a `&str` (broken UTF-8 read as U+FFFD, as a
/// lossy reader would).
pub fn mutated_text(seeds: Vec<String>) -> impl Strategy<Value = String> {
    mutated(seeds).prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

/// `seeds` as owned strings, for [`mutated`].
pub fn seeds(texts: &[&str]) -> Vec<String> {
    texts.iter().map(|t| t.to_string()).collect()
}

/// An error a person can act on has some text.
pub fn said(error: impl std::fmt::Display) -> Result<(), TestCaseError> {
    prop_assert!(!error.to_string().trim().is_empty(), "an empty error");
    Ok(())
}

/// What a file can be after a crash or a bad disk: cut short at an offset, or with the byte
/// there overwritten by a NUL (a block the disk never wrote) or by 0xFF (not UTF-8).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Damage {
    Cut,
    Nul,
    NotUtf8,
}

/// Every way [`Damage`] can befall `bytes`, at every offset: exhaustive, not sampled.
pub fn damaged(bytes: &[u8]) -> impl Iterator<Item = (Damage, usize, Vec<u8>)> + '_ {
    let cut = (0..bytes.len()).map(|at| (Damage::Cut, at, bytes[..at].to_vec()));
    let overwritten = (0..bytes.len()).flat_map(move |at| {
        [(Damage::Nul, 0u8), (Damage::NotUtf8, 0xFF)].map(|(damage, byte)| {
            let mut copy = bytes.to_vec();
            copy[at] = byte;
            (damage, at, copy)
        })
    });
    cut.chain(overwritten)
}

/// A directory of its own for a test, removed when the test is done with it.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory, even for each case of a property or each thread of the test run.
    pub fn new(name: &str) -> Scratch {
        static MADE: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cutover-{name}-{}-{}",
            std::process::id(),
            MADE.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
