//! as4gate-ebms: the sans-I/O ebMS3 / AS4 message layer of the gateway.
//!
//! This crate owns everything about an AS4 message that is not cryptography:
//! the namespaces and URIs ([`ns`]), the ebMS error codes ([`error`]), input
//! bounds ([`limits`]), safe XML parsing into the one shared
//! `uppsala::Document` ([`xml`]), locating the SOAP 1.2 envelope's structural
//! nodes ([`envelope`]), the `eb:Messaging` model and its validation
//! ([`model`]), MIME multipart/related splitting and writing ([`mime`]), capped
//! gzip ([`gzip`]) and building unsigned receipt / error / user-message
//! envelopes ([`signal`]). It performs no I/O of its own: bytes come in through
//! slices, `Read` and `Write`; time and identifiers are passed in by the caller.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod dom;
pub mod envelope;
pub mod error;
pub mod gzip;
pub mod limits;
pub mod mime;
pub mod model;
pub mod ns;
pub mod signal;
pub mod xml;

pub use envelope::EnvelopeNodes;
pub use error::{EbmsError, ErrorCode};
pub use limits::Limits;
pub use model::{Messaging, NrReference, TransformSpec};
