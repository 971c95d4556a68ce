//! P-Modes for as4gate: the model, loading from TOML files, validation and matching.
//!
//! A P-Mode (ebMS3 core §D, OASIS AS4 profile §5, eDelivery AS4 1.15 §1.4.5) fixes the
//! parties, business service, security and retry settings of one kind of user message. This
//! crate owns their configuration format (one `[pmode]` table per file; the reference is the
//! doc comments in [`model`]), loads a directory into a [`PModeSet`] while collecting every
//! problem with its file and key ([`LoadErrors`]), and matches a received message's header
//! values ([`MatchKey`]) to exactly one P-Mode, explaining a failure against the closest
//! candidate ([`MatchError`]). It depends on no other as4gate crate: the daemon builds the
//! `MatchKey` from the parsed `eb:UserMessage` and maps [`MatchErrorCode`] to its ebMS error.
//! The only I/O is reading the files in [`PModeSet::load_dir`] and [`PMode::load_file`].

#![forbid(unsafe_code)]

mod error;
pub mod matching;
pub mod model;
mod parse;
mod set;
mod validate;

pub use error::{LoadError, LoadErrorKind, LoadErrors};
pub use matching::{MatchError, MatchErrorCode, MatchField, MatchKey, Mismatch};
pub use model::{
    AgreementRef, Backoff, Binding, BusinessInfo, DEFAULT_MPC, MAX_ID_LEN, Mep, PMode, PartySpec,
    PayloadSpec, ReceptionAwareness, ReplyPattern, SecurityProfile, SecuritySpec,
};
pub use set::{MAX_PMODE_FILE_BYTES, MAX_PMODE_FILES, PModeSet};
