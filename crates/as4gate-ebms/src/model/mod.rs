//! The ebMS3 message model: what an `eb:Messaging` header block says.
//!
//! Types mirror the ebMS3 core schema (`ebms-header-3_0-200704.xsd`) with the
//! AS4 restrictions applied at parse time (see [`Messaging::parse`] in
//! `parse.rs`): at most one user message, payloads referenced by `cid:` only.
//! Receipts keep their non-repudiation references as [`NrReference`]s so the
//! sender side can compare them with what it signed.

mod lexical;
mod parse;

pub use lexical::is_valid_message_id;

use crate::ns;

/// The content of one `eb:Messaging` header block.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Messaging {
    /// User message units (AS4: at most one).
    pub user_messages: Vec<UserMessage>,
    /// Signal message units, in document order.
    pub signals: Vec<SignalMessage>,
}

/// `eb:MessageInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageInfo {
    /// `eb:Timestamp` (xs:dateTime, lexical form as received).
    pub timestamp: String,
    /// `eb:MessageId` (RFC 2822 msg-id without angle brackets).
    pub message_id: String,
    /// `eb:RefToMessageId`.
    pub ref_to_message_id: Option<String>,
}

/// `eb:UserMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserMessage {
    /// `@mpc`; absent means [`ns::DEFAULT_MPC`].
    pub mpc: Option<String>,
    /// `eb:MessageInfo`.
    pub message_info: MessageInfo,
    /// `eb:PartyInfo`.
    pub party_info: PartyInfo,
    /// `eb:CollaborationInfo`.
    pub collaboration_info: CollaborationInfo,
    /// `eb:MessageProperties/eb:Property`, in order.
    pub message_properties: Vec<Property>,
    /// `eb:PayloadInfo/eb:PartInfo`, in order.
    pub payload_info: Vec<PartInfo>,
}

impl UserMessage {
    /// True for an ebMS test message (service [`ns::TEST_SERVICE`] and action
    /// [`ns::TEST_ACTION`]), which is acknowledged but not delivered.
    pub fn is_test_message(&self) -> bool {
        self.collaboration_info.service.value == ns::TEST_SERVICE
            && self.collaboration_info.action == ns::TEST_ACTION
    }

    /// The effective MPC: `@mpc` or the default MPC.
    pub fn effective_mpc(&self) -> &str {
        self.mpc.as_deref().unwrap_or(ns::DEFAULT_MPC)
    }
}

/// `eb:PartyInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyInfo {
    /// `eb:From`.
    pub from: Party,
    /// `eb:To`.
    pub to: Party,
}

/// `eb:From` / `eb:To`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    /// One or more `eb:PartyId`.
    pub party_ids: Vec<PartyId>,
    /// `eb:Role`.
    pub role: String,
}

/// `eb:PartyId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartyId {
    /// The identifier.
    pub value: String,
    /// `@type`; when absent the value must be a URI (ebMS3 core §5.2.2.4).
    pub r#type: Option<String>,
}

/// `eb:CollaborationInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollaborationInfo {
    /// `eb:AgreementRef`.
    pub agreement_ref: Option<AgreementRef>,
    /// `eb:Service`.
    pub service: Service,
    /// `eb:Action`.
    pub action: String,
    /// `eb:ConversationId`.
    pub conversation_id: String,
}

/// `eb:AgreementRef`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgreementRef {
    /// The agreement identifier.
    pub value: String,
    /// `@type`.
    pub r#type: Option<String>,
    /// `@pmode`.
    pub pmode: Option<String>,
}

/// `eb:Service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service identifier.
    pub value: String,
    /// `@type`; when absent the value must be a URI (ebMS3 core §5.2.2.8).
    pub r#type: Option<String>,
}

/// `eb:Property` (message or part property).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// `@name`.
    pub name: String,
    /// The text value, verbatim.
    pub value: String,
    /// `@type` (added by later schema revisions; eDelivery uses it).
    pub r#type: Option<String>,
}

/// `eb:PartInfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartInfo {
    /// `@href`; AS4 accepts only `cid:` references.
    pub href: Option<String>,
    /// `eb:PartProperties/eb:Property`, in order.
    pub properties: Vec<Property>,
}

impl PartInfo {
    /// The Content-ID the href points at (`"cid:x"` -> `"x"`), if it is a `cid:` URI.
    pub fn cid(&self) -> Option<&str> {
        let href = self.href.as_deref()?;
        let scheme = href.get(..4)?;
        if scheme.eq_ignore_ascii_case("cid:") {
            href.get(4..)
        } else {
            None
        }
    }

    /// The `MimeType` part property.
    pub fn mime_type(&self) -> Option<&str> {
        self.property(ns::PART_PROPERTY_MIME_TYPE)
    }

    /// The `CompressionType` part property.
    pub fn compression_type(&self) -> Option<&str> {
        self.property(ns::PART_PROPERTY_COMPRESSION_TYPE)
    }

    /// The `CharacterSet` part property.
    pub fn character_set(&self) -> Option<&str> {
        self.property(ns::PART_PROPERTY_CHARACTER_SET)
    }

    /// The value of the first part property called `name`.
    pub fn property(&self, name: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|p| p.name == name)
            .map(|p| p.value.as_str())
    }
}

/// `eb:SignalMessage`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalMessage {
    /// `eb:MessageInfo`.
    pub message_info: MessageInfo,
    /// What the signal carries.
    pub signal: Signal,
}

/// The content of a signal message unit (exactly one kind per unit).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Signal {
    /// `eb:PullRequest`.
    PullRequest(PullRequest),
    /// `eb:Receipt`.
    Receipt(Receipt),
    /// One or more `eb:Error`.
    Errors(Vec<ErrorReport>),
}

/// `eb:PullRequest`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// `@mpc`; absent means [`ns::DEFAULT_MPC`].
    pub mpc: Option<String>,
}

/// `eb:Receipt`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Receipt {
    /// `ebbp:NonRepudiationInformation`: one reference per `ds:Reference` of the
    /// acknowledged message's signature, in order.
    NonRepudiation(Vec<NrReference>),
    /// A copy of the acknowledged `eb:UserMessage` (AS4 reception awareness
    /// without non-repudiation).
    UserMessageCopy,
    /// Some other receipt content; the `{namespace}local` name of its first element.
    Other(String),
}

/// An `eb:Error` received in an error signal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorReport {
    /// `@errorCode` as received (use [`ErrorReport::code`] to map it).
    pub error_code: String,
    /// `@severity` as received.
    pub severity: String,
    /// `@category`.
    pub category: Option<String>,
    /// `@origin`.
    pub origin: Option<String>,
    /// `@shortDescription`.
    pub short_description: Option<String>,
    /// `@refToMessageInError`.
    pub ref_to_message_in_error: Option<String>,
    /// `eb:Description` text.
    pub description: Option<String>,
    /// `eb:ErrorDetail` text.
    pub error_detail: Option<String>,
}

impl ErrorReport {
    /// The standard code, if `error_code` is one.
    pub fn code(&self) -> Option<crate::error::ErrorCode> {
        crate::error::ErrorCode::from_code(&self.error_code)
    }
}

/// One `ds:Reference` of a signature, as recorded in a receipt's
/// `ebbp:MessagePartNRInformation`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NrReference {
    /// `@URI` (`#id` for XML parts, `cid:…` for attachments).
    pub uri: String,
    /// `ds:Transforms/ds:Transform`, in order.
    pub transforms: Vec<TransformSpec>,
    /// `ds:DigestMethod/@Algorithm`.
    pub digest_method: String,
    /// `ds:DigestValue` text (base64, whitespace removed).
    pub digest_value_b64: String,
}

/// One `ds:Transform`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformSpec {
    /// `@Algorithm`.
    pub algorithm: String,
    /// `ec:InclusiveNamespaces/@PrefixList`, when present.
    pub inclusive_prefixes: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(href: Option<&str>) -> PartInfo {
        PartInfo {
            href: href.map(str::to_owned),
            properties: vec![
                Property {
                    name: "MimeType".into(),
                    value: "application/xml".into(),
                    r#type: None,
                },
                Property {
                    name: "CompressionType".into(),
                    value: "application/gzip".into(),
                    r#type: None,
                },
            ],
        }
    }

    #[test]
    fn part_info_helpers() {
        assert_eq!(part(Some("cid:abc@x")).cid(), Some("abc@x"));
        assert_eq!(part(Some("CID:abc")).cid(), Some("abc"));
        assert_eq!(part(Some("http://x")).cid(), None);
        assert_eq!(part(None).cid(), None);
        let p = part(None);
        assert_eq!(p.mime_type(), Some("application/xml"));
        assert_eq!(p.compression_type(), Some("application/gzip"));
        assert_eq!(p.character_set(), None);
    }
}
