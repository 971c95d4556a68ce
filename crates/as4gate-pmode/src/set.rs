//! The loaded set of P-Modes: reading a directory, set-wide checks, lookup and matching.
//!
//! [`PModeSet::load_dir`] reads every `*.toml` file directly in a directory (sorted by name;
//! subdirectories and dot-files are ignored), parses each one, and then checks the set: ids
//! are unique and no two P-Modes match the same messages. Every problem in every file is
//! collected into one [`LoadErrors`]; a set is only returned when there is none.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::error::{LoadError, LoadErrorKind, LoadErrors};
use crate::matching::{self, MatchError, MatchKey};
use crate::model::PMode;
use crate::parse::parse_pmode;

/// Largest accepted P-Mode file, in bytes: a P-Mode is a few hundred bytes; a megabyte is a
/// wrong file.
pub const MAX_PMODE_FILE_BYTES: u64 = 1024 * 1024;

/// Most P-Mode files one directory may hold; every message is matched against all of them.
pub const MAX_PMODE_FILES: usize = 10_000;

impl PMode {
    /// Reads and validates one P-Mode file. Set-wide checks (duplicates, ambiguity) need
    /// [`PModeSet::load_dir`].
    pub fn load_file(path: &Path) -> Result<PMode, LoadErrors> {
        let text = read_limited(path).map_err(|kind| {
            LoadErrors(vec![LoadError {
                file: path.to_path_buf(),
                key: None,
                line: None,
                kind,
            }])
        })?;
        PMode::from_toml_str(&text, path)
    }

    /// Parses and validates one P-Mode from TOML text; `origin` only labels the errors.
    pub fn from_toml_str(text: &str, origin: &Path) -> Result<PMode, LoadErrors> {
        parse_pmode(text, origin).map_err(LoadErrors)
    }
}

/// A validated set of P-Modes with unique ids, of which at most one matches any message.
#[derive(Debug, Clone)]
pub struct PModeSet {
    /// In load order (file name order).
    pmodes: Vec<PMode>,
    /// Id to index in `pmodes`.
    by_id: HashMap<String, usize>,
}

impl PModeSet {
    /// Loads every `*.toml` file in `dir`; see the module documentation. Fails with every
    /// problem found when any file is invalid, ids repeat, two P-Modes are ambiguous, or the
    /// directory holds no P-Mode file.
    pub fn load_dir(dir: &Path) -> Result<PModeSet, LoadErrors> {
        let dir_error = |kind| {
            LoadErrors(vec![LoadError {
                file: dir.to_path_buf(),
                key: None,
                line: None,
                kind,
            }])
        };
        let files = pmode_files(dir).map_err(|e| dir_error(LoadErrorKind::Io(e)))?;
        if files.is_empty() {
            return Err(dir_error(LoadErrorKind::NoPModes));
        }
        if files.len() > MAX_PMODE_FILES {
            return Err(dir_error(LoadErrorKind::TooManyFiles {
                limit: MAX_PMODE_FILES,
            }));
        }

        let mut errors = Vec::new();
        let mut loaded = Vec::new();
        for file in files {
            match PMode::load_file(&file) {
                Ok(pmode) => loaded.push((file, pmode)),
                Err(LoadErrors(mut found)) => errors.append(&mut found),
            }
        }
        let set = Self::from_loaded(loaded, &mut errors);
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(LoadErrors(errors))
        }
    }

    /// Builds the set, reporting duplicate ids and ambiguous pairs into `errors` (the later
    /// file of a pair is the one reported, and left out).
    fn from_loaded(loaded: Vec<(PathBuf, PMode)>, errors: &mut Vec<LoadError>) -> PModeSet {
        let mut pmodes: Vec<PMode> = Vec::with_capacity(loaded.len());
        let mut files: Vec<PathBuf> = Vec::with_capacity(loaded.len());
        let mut by_id: HashMap<String, usize> = HashMap::new();
        for (file, pmode) in loaded {
            if let Some(&first) = by_id.get(&pmode.id) {
                errors.push(LoadError {
                    file,
                    key: Some("pmode.id".to_owned()),
                    line: None,
                    kind: LoadErrorKind::DuplicateId {
                        id: pmode.id,
                        first: files[first].clone(),
                    },
                });
                continue;
            }
            let key = MatchKey::of(&pmode);
            if let Some(other) = pmodes
                .iter()
                .position(|p| MatchKey::of(p).selects_same_messages(&key))
            {
                errors.push(LoadError {
                    file,
                    key: Some("pmode".to_owned()),
                    line: None,
                    kind: LoadErrorKind::Ambiguous {
                        id: pmode.id,
                        other: pmodes[other].id.clone(),
                        other_file: files[other].clone(),
                    },
                });
                continue;
            }
            by_id.insert(pmode.id.clone(), pmodes.len());
            pmodes.push(pmode);
            files.push(file);
        }
        PModeSet { pmodes, by_id }
    }

    /// The P-Mode with this id.
    pub fn by_id(&self, id: &str) -> Option<&PMode> {
        self.by_id.get(id).map(|&i| &self.pmodes[i])
    }

    /// The one P-Mode whose header values equal `key`'s; see [`crate::matching`] for the rules
    /// and for what the error reports.
    pub fn match_user_message(&self, key: &MatchKey<'_>) -> Result<&PMode, MatchError> {
        matching::match_key(&self.pmodes, key)
    }

    /// All P-Modes, in load order.
    pub fn iter(&self) -> impl Iterator<Item = &PMode> {
        self.pmodes.iter()
    }

    /// Number of P-Modes.
    pub fn len(&self) -> usize {
        self.pmodes.len()
    }

    /// Whether the set is empty (never true for a set from [`PModeSet::load_dir`]).
    pub fn is_empty(&self) -> bool {
        self.pmodes.is_empty()
    }
}

/// The `*.toml` files directly in `dir`, without dot-files, sorted by name.
fn pmode_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
            continue;
        };
        if name.starts_with('.') || !name.ends_with(".toml") || !path.is_file() {
            continue;
        }
        files.push(path);
    }
    files.sort();
    Ok(files)
}

/// Reads a file of at most [`MAX_PMODE_FILE_BYTES`] as UTF-8.
fn read_limited(path: &Path) -> Result<String, LoadErrorKind> {
    let file = std::fs::File::open(path).map_err(LoadErrorKind::Io)?;
    let mut bytes = Vec::new();
    file.take(MAX_PMODE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(LoadErrorKind::Io)?;
    if bytes.len() as u64 > MAX_PMODE_FILE_BYTES {
        return Err(LoadErrorKind::FileTooLarge {
            limit: MAX_PMODE_FILE_BYTES,
        });
    }
    String::from_utf8(bytes).map_err(|_| LoadErrorKind::NotUtf8)
}
