//! The P-Mode model and its TOML schema.
//!
//! The doc comments on these structs are the reference for P-Mode files. One file holds one
//! P-Mode under a `[pmode]` table; every table rejects unknown keys. Defaults fail closed: a
//! P-Mode that says nothing about security is signed, encrypted and asks for a signed receipt.
//! Parameter names follow ebMS3 core appendix D and the eDelivery AS4 1.15 P-Mode table
//! (`PMode[1].BusinessInfo.Service` is `business.service`, and so on).
//!
//! ```toml
//! [pmode]
//! id = "blue-to-red"                  # unique in the directory
//! mep = "one-way"                     # default; "two-way" is refused for now
//! binding = "push"                    # default; "pull" is parsed
//!
//! [pmode.agreement]                   # optional: eb:AgreementRef
//! value = "urn:as4gate:agreements:sample"
//!
//! [pmode.initiator]                   # eb:From
//! party_id = "blue_gw"
//! party_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
//! role = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator"
//!
//! [pmode.responder]                   # eb:To
//! party_id = "red_gw"
//! party_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
//! role = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder"
//!
//! [pmode.business]
//! service = "urn:as4gate:services:test-documents"
//! service_type = "urn:as4gate:service-type"
//! action = "Submit"
//!
//! [pmode.security]
//! profile = "edelivery-as4-1.15"      # required; sign/encrypt/receipt keys default to on
//! ```

use serde::Deserialize;

/// The default Message Partition Channel (ebMS3 core §3.4.1), used when a P-Mode or a message
/// names none.
pub const DEFAULT_MPC: &str =
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC";

/// Longest accepted P-Mode id, in bytes: ids appear in logs, the message store and the CLI.
pub const MAX_ID_LEN: usize = 128;

/// Default for [`PayloadSpec::max_parts`].
pub const DEFAULT_MAX_PARTS: u32 = 100;
/// Largest accepted [`PayloadSpec::max_parts`]: more payloads than this in one message is a
/// configuration mistake, and every part costs a spool file.
pub const MAX_PARTS_LIMIT: u32 = 1_000;

/// Default for [`ReceptionAwareness::max_retries`].
pub const DEFAULT_MAX_RETRIES: u32 = 5;
/// Largest accepted [`ReceptionAwareness::max_retries`]; beyond it a message should fail and be
/// reported to the producer rather than linger in the queue.
pub const MAX_RETRIES_LIMIT: u32 = 100;
/// Default for [`ReceptionAwareness::retry_interval_secs`].
pub const DEFAULT_RETRY_INTERVAL_SECS: u64 = 60;
/// Default for [`ReceptionAwareness::max_retry_interval_secs`].
pub const DEFAULT_MAX_RETRY_INTERVAL_SECS: u64 = 3_600;
/// Largest accepted retry interval (one day): a longer wait hides outages from operators.
pub const MAX_RETRY_INTERVAL_LIMIT_SECS: u64 = 86_400;
/// Default for [`ReceptionAwareness::duplicate_window_secs`] (seven days).
pub const DEFAULT_DUPLICATE_WINDOW_SECS: u64 = 604_800;
/// Largest accepted duplicate-detection window (366 days), bounding the id store.
pub const MAX_DUPLICATE_WINDOW_SECS: u64 = 31_622_400;

/// A file: exactly one `[pmode]` table.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PModeFile {
    /// The P-Mode.
    pub(crate) pmode: PMode,
}

/// One Processing Mode: the agreed parameters for one kind of user message (`[pmode]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PMode {
    /// `PMode.ID`: unique within the loaded set; 1 to [`MAX_ID_LEN`] characters from
    /// `A-Z a-z 0-9 . _ : -`. Required.
    pub id: String,
    /// `PMode.Agreement` (`[pmode.agreement]`): when set, messages must carry this
    /// `eb:AgreementRef`; when absent, messages must carry none.
    pub agreement: Option<AgreementRef>,
    /// `PMode.MEP`: `"one-way"` (default) or `"two-way"` (parsed, refused: not supported yet).
    #[serde(default)]
    pub mep: Mep,
    /// `PMode.MEPbinding`: `"push"` (default) or `"pull"`.
    #[serde(default)]
    pub binding: Binding,
    /// `PMode.Initiator` (`[pmode.initiator]`): the sender, `eb:From`. Required.
    pub initiator: PartySpec,
    /// `PMode.Responder` (`[pmode.responder]`): the receiver, `eb:To`. Required.
    pub responder: PartySpec,
    /// `PMode[1].BusinessInfo` (`[pmode.business]`). Required.
    pub business: BusinessInfo,
    /// `PMode[1].Security` (`[pmode.security]`). Required, because `profile` is.
    pub security: SecuritySpec,
    /// `PMode[1].PayloadService` and payload limits (`[pmode.payload]`). Optional.
    #[serde(default)]
    pub payload: PayloadSpec,
    /// `PMode[1].ReceptionAwareness` (`[pmode.reception_awareness]`). Optional.
    #[serde(default)]
    pub reception_awareness: ReceptionAwareness,
}

/// `eb:AgreementRef`: which agreement governs the exchange.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementRef {
    /// The reference; must be an absolute URI when `type` is absent (ebMS3 core §5.2.2.7).
    pub value: String,
    /// `@type`: how to interpret `value`. Optional; not used for matching.
    pub r#type: Option<String>,
}

/// Message exchange pattern (`PMode.MEP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mep {
    /// `…/200704/oneWay`: a single user message leg.
    #[default]
    OneWay,
    /// `…/200704/twoWay`: request and response legs. Refused when loading: not supported yet.
    TwoWay,
}

/// Transport channel binding (`PMode.MEPbinding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Binding {
    /// `…/200704/push`: the initiator sends the user message in an HTTP request.
    #[default]
    Push,
    /// `…/200704/pull`: the responder pulls the user message from the initiator's MPC.
    Pull,
}

/// One side of the exchange (`[pmode.initiator]`, `[pmode.responder]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartySpec {
    /// `eb:PartyId` value. Required; must be an absolute URI when `party_type` is absent
    /// (ebMS3 core §5.2.2.4).
    pub party_id: String,
    /// `eb:PartyId/@type`, e.g. `urn:oasis:names:tc:ebcore:partyid-type:unregistered`. Must
    /// match exactly: a P-Mode without a type only matches PartyIds without a type.
    pub party_type: Option<String>,
    /// `eb:Role`. Required.
    pub role: String,
}

/// `PMode[1].BusinessInfo` (`[pmode.business]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessInfo {
    /// `eb:Service`. Required; must be an absolute URI when `service_type` is absent
    /// (ebMS3 core §5.2.2.8).
    pub service: String,
    /// `eb:Service/@type`. Must match exactly, like `PartySpec::party_type`.
    pub service_type: Option<String>,
    /// `eb:Action`. Required.
    pub action: String,
    /// `PMode[1].BusinessInfo.MPC`, an absolute URI; absent means [`DEFAULT_MPC`]. A message
    /// without `@mpc` is on [`DEFAULT_MPC`].
    pub mpc: Option<String>,
}

impl BusinessInfo {
    /// The MPC this P-Mode uses: `mpc`, or [`DEFAULT_MPC`] when absent.
    pub fn mpc_or_default(&self) -> &str {
        self.mpc.as_deref().unwrap_or(DEFAULT_MPC)
    }
}

/// Which security profile governs signing and encryption algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum SecurityProfile {
    /// `"edelivery-as4-1.15"`: RSA-SHA256 signatures, RSA-OAEP key transport, AES-128-GCM.
    #[serde(rename = "edelivery-as4-1.15")]
    EdeliveryAs4_1_15,
    /// `"edelivery-as4-2.0"`: Ed25519 signatures, X25519 key agreement, AES-128-GCM.
    #[serde(rename = "edelivery-as4-2.0")]
    EdeliveryAs4_2_0,
}

/// `PMode[1].Security` (`[pmode.security]`). Every switch defaults to the safe setting.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecuritySpec {
    /// The algorithm profile. Required.
    pub profile: SecurityProfile,
    /// `PMode[1].Security.X509.Sign`: user messages must be signed. Default `true`.
    #[serde(default = "yes")]
    pub sign: bool,
    /// `PMode[1].Security.X509.Encryption.Encrypt`: payloads must be encrypted. Default `true`;
    /// `true` requires `sign = true` (encrypting without signing is refused).
    #[serde(default = "yes")]
    pub encrypt: bool,
    /// `PMode[1].Security.SendReceipt`: the responder answers with a receipt. Default `true`.
    #[serde(default = "yes")]
    pub send_receipt: bool,
    /// `PMode[1].Security.SendReceipt.NonRepudiation`: the receipt is signed and carries the
    /// non-repudiation information. Default `true`.
    #[serde(default = "yes")]
    pub receipt_signed: bool,
    /// `PMode[1].Security.SendReceipt.ReplyPattern`: `"response"` (default, the only one
    /// supported) or `"callback"` (parsed, refused: not supported yet).
    #[serde(default)]
    pub receipt_reply_pattern: ReplyPattern,
}

/// How a receipt travels back (`PMode[1].Security.SendReceipt.ReplyPattern`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ReplyPattern {
    /// On the HTTP response to the user message (the eDelivery AS4 requirement).
    #[default]
    Response,
    /// In a separate HTTP request. Refused when loading: not supported yet.
    Callback,
}

/// `PMode[1].PayloadService` and payload limits (`[pmode.payload]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PayloadSpec {
    /// `PMode[1].PayloadService.CompressionType = application/gzip`: compress payloads when
    /// sending. Default `true`. Receiving always accepts compressed and plain parts.
    #[serde(default = "yes")]
    pub compress: bool,
    /// Most payload parts one user message may carry. Default [`DEFAULT_MAX_PARTS`]; 1 to
    /// [`MAX_PARTS_LIMIT`].
    #[serde(default = "default_max_parts")]
    pub max_parts: u32,
}

impl Default for PayloadSpec {
    fn default() -> Self {
        Self {
            compress: true,
            max_parts: DEFAULT_MAX_PARTS,
        }
    }
}

/// How the retry delay grows between attempts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Backoff {
    /// Every retry waits `retry_interval_secs`.
    Constant,
    /// The wait doubles after every attempt, capped at `max_retry_interval_secs`.
    #[default]
    Exponential,
}

/// `PMode[1].ReceptionAwareness` (`[pmode.reception_awareness]`): retries until a receipt
/// arrives, and duplicate elimination. Required on by eDelivery AS4; always on here.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceptionAwareness {
    /// Retries after the first attempt before the message fails. Default
    /// [`DEFAULT_MAX_RETRIES`]; 0 to [`MAX_RETRIES_LIMIT`] (0 means: one attempt only).
    #[serde(default = "default_max_retries")]
    pub max_retries: u32,
    /// Wait before the first retry, seconds. Default [`DEFAULT_RETRY_INTERVAL_SECS`]; 1 to
    /// [`MAX_RETRY_INTERVAL_LIMIT_SECS`].
    #[serde(default = "default_retry_interval")]
    pub retry_interval_secs: u64,
    /// Growth of the wait between retries. Default `"exponential"`; or `"constant"`.
    #[serde(default)]
    pub backoff: Backoff,
    /// Cap on the wait between retries, seconds. Default
    /// [`DEFAULT_MAX_RETRY_INTERVAL_SECS`]; from `retry_interval_secs` to
    /// [`MAX_RETRY_INTERVAL_LIMIT_SECS`].
    #[serde(default = "default_max_retry_interval")]
    pub max_retry_interval_secs: u64,
    /// `DuplicateDetection`: drop (and re-acknowledge) a user message whose MessageId was
    /// already received. Default `true`.
    #[serde(default = "yes")]
    pub duplicate_detection: bool,
    /// How long received MessageIds are remembered for duplicate detection, seconds. Default
    /// [`DEFAULT_DUPLICATE_WINDOW_SECS`]; 1 to [`MAX_DUPLICATE_WINDOW_SECS`].
    #[serde(default = "default_duplicate_window")]
    pub duplicate_window_secs: u64,
}

impl Default for ReceptionAwareness {
    fn default() -> Self {
        Self {
            max_retries: DEFAULT_MAX_RETRIES,
            retry_interval_secs: DEFAULT_RETRY_INTERVAL_SECS,
            backoff: Backoff::default(),
            max_retry_interval_secs: DEFAULT_MAX_RETRY_INTERVAL_SECS,
            duplicate_detection: true,
            duplicate_window_secs: DEFAULT_DUPLICATE_WINDOW_SECS,
        }
    }
}

fn yes() -> bool {
    true
}

fn default_max_parts() -> u32 {
    DEFAULT_MAX_PARTS
}

fn default_max_retries() -> u32 {
    DEFAULT_MAX_RETRIES
}

fn default_retry_interval() -> u64 {
    DEFAULT_RETRY_INTERVAL_SECS
}

fn default_max_retry_interval() -> u64 {
    DEFAULT_MAX_RETRY_INTERVAL_SECS
}

fn default_duplicate_window() -> u64 {
    DEFAULT_DUPLICATE_WINDOW_SECS
}
