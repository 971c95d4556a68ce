//! Resource limits applied to inbound messages.
//!
//! Every bound this crate enforces on hostile input is a field of [`Limits`] with
//! a named default constant; there is no "0 = unlimited". The daemon maps its
//! configuration onto this struct.

/// Default maximum size of the SOAP envelope (MIME root part or plain body): 4 MiB.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
/// Default maximum number of MIME parts (root part included): 100.
pub const DEFAULT_MAX_MIME_PARTS: usize = 100;
/// Default maximum size of one MIME part's header block: 8 KiB.
pub const DEFAULT_MAX_MIME_HEADER_BYTES: usize = 8 * 1024;
/// Default maximum XML element nesting depth: 64 (AS4 envelopes nest < 15 deep).
pub const DEFAULT_MAX_XML_DEPTH: u32 = 64;
/// Default maximum decompressed size of one payload: 2 GiB.
pub const DEFAULT_MAX_DECOMPRESSED_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Default maximum number of `eb:Property` elements in one properties block: 100.
pub const DEFAULT_MAX_PROPERTIES: usize = 100;
/// Default maximum number of `eb:PartInfo` elements in one user message: 100.
pub const DEFAULT_MAX_PART_INFOS: usize = 100;
/// Default maximum number of signal message units / `eb:Error` / NRR references: 100.
pub const DEFAULT_MAX_SIGNAL_ITEMS: usize = 100;

/// Default maximum length of an `eb:MessageId` / `eb:RefToMessageId`: 255 bytes
/// (the column size Domibus and most stores use).
pub const DEFAULT_MAX_MESSAGE_ID_LEN: usize = 255;

/// Bounds on inbound input. `Limits::default()` gives the documented defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Maximum size in bytes of the SOAP envelope; default [`DEFAULT_MAX_ENVELOPE_BYTES`].
    pub max_envelope_bytes: usize,
    /// Maximum number of MIME parts, root part included; default [`DEFAULT_MAX_MIME_PARTS`].
    pub max_mime_parts: usize,
    /// Maximum size in bytes of one MIME part header block (including its
    /// terminating empty line); default [`DEFAULT_MAX_MIME_HEADER_BYTES`].
    pub max_mime_header_bytes: usize,
    /// Maximum XML element nesting depth; default [`DEFAULT_MAX_XML_DEPTH`].
    pub max_xml_depth: u32,
    /// Maximum decompressed size of one payload in bytes; default
    /// [`DEFAULT_MAX_DECOMPRESSED_BYTES`].
    pub max_decompressed_bytes: u64,
    /// Maximum number of properties in `eb:MessageProperties` or one
    /// `eb:PartProperties`; default [`DEFAULT_MAX_PROPERTIES`].
    pub max_properties: usize,
    /// Maximum number of `eb:PartInfo` in one user message; default [`DEFAULT_MAX_PART_INFOS`].
    pub max_part_infos: usize,
    /// Maximum number of signal message units in one `eb:Messaging`, of `eb:Error`
    /// in one signal, and of NRR references in one receipt; default
    /// [`DEFAULT_MAX_SIGNAL_ITEMS`].
    pub max_signal_items: usize,
    /// Maximum length in bytes of a message id; default [`DEFAULT_MAX_MESSAGE_ID_LEN`].
    pub max_message_id_len: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_envelope_bytes: DEFAULT_MAX_ENVELOPE_BYTES,
            max_mime_parts: DEFAULT_MAX_MIME_PARTS,
            max_mime_header_bytes: DEFAULT_MAX_MIME_HEADER_BYTES,
            max_xml_depth: DEFAULT_MAX_XML_DEPTH,
            max_decompressed_bytes: DEFAULT_MAX_DECOMPRESSED_BYTES,
            max_properties: DEFAULT_MAX_PROPERTIES,
            max_part_infos: DEFAULT_MAX_PART_INFOS,
            max_signal_items: DEFAULT_MAX_SIGNAL_ITEMS,
            max_message_id_len: DEFAULT_MAX_MESSAGE_ID_LEN,
        }
    }
}
