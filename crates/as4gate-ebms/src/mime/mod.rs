//! MIME multipart/related (RFC 2046, RFC 2387) for SOAP-with-Attachments.
//!
//! * [`MultipartRelated::parse`] reads the HTTP `Content-Type` header;
//! * [`MultipartSplitter`] splits a body pushed in arbitrary chunks into parts,
//!   streaming part bodies to a [`PartSink`] without ever holding a whole part:
//!   memory stays bounded by the boundary length, the header limit and a fixed
//!   processing step;
//! * [`MultipartWriter`] writes an outbound body; [`part_header_lines`] and
//!   friends give its framing to a caller that streams the body itself.
//!
//! All inbound violations are EBMS:0007 MimeInconsistency.

mod content_type;
mod headers;
mod splitter;
mod writer;

pub use content_type::MultipartRelated;
pub use headers::{ACCEPTED_TRANSFER_ENCODINGS, PartHeaders};
pub use splitter::{MAX_TRANSPORT_PADDING, MultipartSplitter, PROCESS_STEP, PartSink};
pub use writer::{MultipartWriter, part_header_lines, related_content_type, root_header_lines};

/// Longest boundary RFC 2046 allows (§5.1.1: 1 to 70 characters).
pub const MAX_BOUNDARY_LEN: usize = 70;

/// True for RFC 2046 `bchars` (boundary characters); space is allowed except last.
fn is_boundary_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "'()+_,-./:=? ".contains(c)
}

/// RFC 2046 §5.1.1 boundary syntax: 1..=70 `bchars`, not ending in a space.
fn is_valid_boundary(boundary: &str) -> bool {
    !boundary.is_empty()
        && boundary.len() <= MAX_BOUNDARY_LEN
        && boundary.chars().all(is_boundary_char)
        && !boundary.ends_with(' ')
}
