//! Load errors: every problem found in a P-Mode directory, each with its file, the TOML key
//! it concerns and, when known, its line.
//!
//! Loading never stops at the first problem; [`LoadErrors`] displays one problem per line so an
//! operator can fix a whole directory in one pass.

use std::fmt;
use std::path::PathBuf;

/// One problem in one P-Mode file.
#[derive(Debug)]
pub struct LoadError {
    /// The file the problem is in (the directory itself for directory-level problems).
    pub file: PathBuf,
    /// Dotted TOML key the problem concerns (`pmode.security.profile`), when it has one.
    pub key: Option<String>,
    /// 1-based line of the problem, when the parser reported a position.
    pub line: Option<usize>,
    /// What is wrong.
    pub kind: LoadErrorKind,
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.kind)
    }
}

impl std::error::Error for LoadError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            LoadErrorKind::Io(e) => Some(e),
            _ => None,
        }
    }
}

/// What is wrong with a P-Mode file or directory.
#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    /// The file or directory could not be read.
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    /// The file is larger than [`crate::MAX_PMODE_FILE_BYTES`].
    #[error("file is larger than {limit} bytes")]
    FileTooLarge {
        /// The limit that was exceeded.
        limit: u64,
    },
    /// The directory holds more than [`crate::MAX_PMODE_FILES`] P-Mode files.
    #[error("more than {limit} P-Mode files")]
    TooManyFiles {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The directory holds no `*.toml` file: a gateway without P-Modes accepts nothing.
    #[error("no P-Mode files (*.toml) found")]
    NoPModes,
    /// The file is not UTF-8.
    #[error("file is not valid UTF-8")]
    NotUtf8,
    /// The file is not valid TOML.
    #[error("invalid TOML: {0}")]
    Syntax(String),
    /// A key this schema does not define (typo, or a key in the wrong table).
    #[error("unknown key; expected one of: {expected}")]
    UnknownKey {
        /// The keys allowed at this place, comma-separated.
        expected: &'static str,
    },
    /// A required key is absent.
    #[error("required key is missing")]
    MissingKey,
    /// A value has the wrong type, an unknown enum value, or a nested unknown key (the
    /// deserializer's message).
    #[error("{0}")]
    InvalidValue(String),
    /// A string that must not be empty is empty or only whitespace.
    #[error("must not be empty")]
    Empty,
    /// The P-Mode id is too long or uses characters outside `A-Z a-z 0-9 . _ : -`.
    #[error("invalid P-Mode id {id:?}: use 1 to {max} characters from A-Z a-z 0-9 . _ : -")]
    InvalidId {
        /// The offending id.
        id: String,
        /// [`crate::MAX_ID_LEN`].
        max: usize,
    },
    /// A value that ebMS3 requires to be an absolute URI (because no `type` is given, or
    /// because the element is a URI, like an MPC) is not one.
    #[error("{value:?} is not an absolute URI ({why})")]
    NotAnAbsoluteUri {
        /// The offending value.
        value: String,
        /// Why a URI is required.
        why: &'static str,
    },
    /// A feature the model parses but the gateway does not implement yet.
    #[error("{feature} is not supported yet")]
    NotSupported {
        /// The feature, as an operator would name it.
        feature: &'static str,
    },
    /// `encrypt = true` with `sign = false`: encrypted but unsigned messages are refused.
    #[error("encrypt = true requires sign = true (encryption without a signature is refused)")]
    EncryptWithoutSign,
    /// A number outside its allowed range.
    #[error("{value} is outside the allowed range {min}..={max}")]
    OutOfRange {
        /// The offending value.
        value: u64,
        /// Smallest allowed value.
        min: u64,
        /// Largest allowed value.
        max: u64,
    },
    /// Two files use the same P-Mode id.
    #[error("duplicate P-Mode id {id:?}, already defined in {first}")]
    DuplicateId {
        /// The id.
        id: String,
        /// The file that defined it first.
        first: PathBuf,
    },
    /// Two P-Modes would match exactly the same user messages.
    #[error("P-Mode {id:?} matches the same messages as P-Mode {other:?} in {other_file}")]
    Ambiguous {
        /// This file's P-Mode id.
        id: String,
        /// The other P-Mode's id.
        other: String,
        /// The other P-Mode's file.
        other_file: PathBuf,
    },
}

/// Every problem found while loading; displayed one per line.
#[derive(Debug)]
pub struct LoadErrors(pub Vec<LoadError>);

impl LoadErrors {
    /// The problems, in file-name order and, within a file, by line (those without a line
    /// last); set-wide problems (duplicates, ambiguity) come after all file problems.
    pub fn errors(&self) -> &[LoadError] {
        &self.0
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} problem(s) in P-Mode configuration:", self.0.len())?;
        for error in &self.0 {
            write!(f, "\n  {error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for LoadErrors {}
