//! Builders for outbound envelopes: receipts, error signals and user messages.
//!
//! Each builder returns an UNSIGNED SOAP 1.2 envelope string of this shape,
//! ready for `as4gate-wssec` to sign (it fills the empty `wsse:Security`):
//!
//! ```text
//! <S12:Envelope xmlns:S12 xmlns:eb xmlns:wsu xmlns:wsse>
//!   <S12:Header>
//!     <wsse:Security S12:mustUnderstand="true"></wsse:Security>
//!     <eb:Messaging S12:mustUnderstand="true" wsu:Id="_messaging-<id>">…</eb:Messaging>
//!   </S12:Header>
//!   <S12:Body wsu:Id="_body-<id>"/>
//! </S12:Envelope>
//! ```
//!
//! The `wsu:Id`s are derived deterministically from the message id (sanitised
//! to an NCName). All text and attribute values are escaped by `write.rs`.
//! Builders refuse (EBMS:0004 Other: a local programming/config error, never
//! sent on the wire) a message id that is not a strict RFC 2822 msg-id, and a
//! receipt without references.

mod write;

use crate::error::{EbmsError, ErrorCode};
use crate::model::{NrReference, Property, UserMessage, is_valid_message_id};
use crate::ns;
use write::{XmlOut, ncname};

/// Input for [`build_receipt`].
#[derive(Debug, Clone)]
pub struct ReceiptSpec<'a> {
    /// Id of the receipt signal itself.
    pub message_id: String,
    /// `eb:Timestamp` (xs:dateTime, UTC with `Z`).
    pub timestamp: String,
    /// Id of the acknowledged user message.
    pub ref_to_message_id: String,
    /// The `ds:Reference`s of the acknowledged message's signature, in order.
    pub references: &'a [NrReference],
}

/// Input for [`build_error`].
#[derive(Debug, Clone)]
pub struct ErrorSignalSpec<'a> {
    /// Id of the error signal itself.
    pub message_id: String,
    /// `eb:Timestamp` (xs:dateTime, UTC with `Z`).
    pub timestamp: String,
    /// Id of the message in error, when known.
    pub ref_to_message_id: Option<String>,
    /// The errors to report (at least one).
    pub errors: &'a [EbmsError],
}

const S12_MU: (&str, &str) = ("S12:mustUnderstand", "true");

/// Starts a signal envelope: the envelope, `eb:SignalMessage` and its `eb:MessageInfo`.
fn open_signal(message_id: &str, timestamp: &str, ref_to_message_id: Option<&str>) -> XmlOut {
    let mut w = XmlOut::new();
    open_envelope(&mut w, message_id);
    w.open("eb:SignalMessage", &[]);
    message_info(&mut w, timestamp, message_id, ref_to_message_id);
    w
}

/// Builds an unsigned receipt with `ebbp:NonRepudiationInformation` holding one
/// `ebbp:MessagePartNRInformation` per reference.
pub fn build_receipt(spec: &ReceiptSpec<'_>) -> Result<String, EbmsError> {
    check_id(&spec.message_id)?;
    if spec.references.is_empty() {
        return Err(EbmsError::new(
            ErrorCode::Other,
            "a non-repudiation receipt needs at least one reference",
        ));
    }
    let mut w = open_signal(
        &spec.message_id,
        &spec.timestamp,
        Some(&spec.ref_to_message_id),
    );
    w.open("eb:Receipt", &[]);
    w.open(
        "ebbp:NonRepudiationInformation",
        &[("xmlns:ebbp", ns::EBBP_SIGNALS), ("xmlns:ds", ns::DS)],
    );
    for r in spec.references {
        w.open("ebbp:MessagePartNRInformation", &[]);
        w.open("ds:Reference", &[("URI", &r.uri)]);
        if !r.transforms.is_empty() {
            w.open("ds:Transforms", &[]);
            for t in &r.transforms {
                match &t.inclusive_prefixes {
                    Some(prefixes) => {
                        w.open("ds:Transform", &[("Algorithm", &t.algorithm)]);
                        w.empty(
                            "ec:InclusiveNamespaces",
                            &[("xmlns:ec", ns::EXC_C14N), ("PrefixList", prefixes)],
                        );
                        w.close("ds:Transform");
                    }
                    None => w.empty("ds:Transform", &[("Algorithm", &t.algorithm)]),
                }
            }
            w.close("ds:Transforms");
        }
        w.empty("ds:DigestMethod", &[("Algorithm", &r.digest_method)]);
        w.leaf("ds:DigestValue", &[], &r.digest_value_b64);
        w.close("ds:Reference");
        w.close("ebbp:MessagePartNRInformation");
    }
    w.close("ebbp:NonRepudiationInformation");
    w.close("eb:Receipt");
    w.close("eb:SignalMessage");
    Ok(close_envelope(w, &spec.message_id))
}

/// Builds an unsigned ebMS error signal with one `eb:Error` per error.
/// `refToMessageInError` is the error's own `ref_to_message_id`, else the spec's.
pub fn build_error(spec: &ErrorSignalSpec<'_>) -> Result<String, EbmsError> {
    check_id(&spec.message_id)?;
    if spec.errors.is_empty() {
        return Err(EbmsError::new(
            ErrorCode::Other,
            "an error signal needs at least one error",
        ));
    }
    let mut w = open_signal(
        &spec.message_id,
        &spec.timestamp,
        spec.ref_to_message_id.as_deref(),
    );
    for e in spec.errors {
        let mut attrs = vec![
            ("errorCode", e.code.code()),
            ("severity", e.code.severity().as_str()),
            ("category", e.code.category().as_str()),
            ("origin", e.code.origin()),
            ("shortDescription", e.code.short_description()),
        ];
        if let Some(r) = e
            .ref_to_message_id
            .as_deref()
            .or(spec.ref_to_message_id.as_deref())
        {
            attrs.push(("refToMessageInError", r));
        }
        w.open("eb:Error", &attrs);
        if !e.detail.is_empty() {
            w.leaf("eb:Description", &[("xml:lang", "en")], &e.detail);
        }
        w.close("eb:Error");
    }
    w.close("eb:SignalMessage");
    Ok(close_envelope(w, &spec.message_id))
}

/// Builds an unsigned PullRequest signal for the message partition channel `mpc`.
pub fn build_pull_request(
    message_id: &str,
    timestamp: &str,
    mpc: &str,
) -> Result<String, EbmsError> {
    check_id(message_id)?;
    let mut w = open_signal(message_id, timestamp, None);
    w.empty("eb:PullRequest", &[("mpc", mpc)]);
    w.close("eb:SignalMessage");
    Ok(close_envelope(w, message_id))
}

/// Builds an unsigned user message (sender side). Payloads are referenced by
/// their `PartInfo` hrefs (expected `cid:`); the Body stays empty.
pub fn build_user_message(um: &UserMessage) -> Result<String, EbmsError> {
    let id = &um.message_info.message_id;
    check_id(id)?;
    let mut w = XmlOut::new();
    open_envelope(&mut w, id);
    match &um.mpc {
        Some(mpc) => w.open("eb:UserMessage", &[("mpc", mpc)]),
        None => w.open("eb:UserMessage", &[]),
    }
    message_info(
        &mut w,
        &um.message_info.timestamp,
        id,
        um.message_info.ref_to_message_id.as_deref(),
    );
    w.open("eb:PartyInfo", &[]);
    for (tag, party) in [
        ("eb:From", &um.party_info.from),
        ("eb:To", &um.party_info.to),
    ] {
        w.open(tag, &[]);
        for p in &party.party_ids {
            w.leaf("eb:PartyId", &typed(p.r#type.as_deref()), &p.value);
        }
        w.leaf("eb:Role", &[], &party.role);
        w.close(tag);
    }
    w.close("eb:PartyInfo");
    let ci = &um.collaboration_info;
    w.open("eb:CollaborationInfo", &[]);
    if let Some(a) = &ci.agreement_ref {
        let mut attrs = typed(a.r#type.as_deref());
        if let Some(p) = &a.pmode {
            attrs.push(("pmode", p));
        }
        w.leaf("eb:AgreementRef", &attrs, &a.value);
    }
    w.leaf(
        "eb:Service",
        &typed(ci.service.r#type.as_deref()),
        &ci.service.value,
    );
    w.leaf("eb:Action", &[], &ci.action);
    w.leaf("eb:ConversationId", &[], &ci.conversation_id);
    w.close("eb:CollaborationInfo");
    if !um.message_properties.is_empty() {
        w.open("eb:MessageProperties", &[]);
        properties(&mut w, &um.message_properties);
        w.close("eb:MessageProperties");
    }
    if !um.payload_info.is_empty() {
        w.open("eb:PayloadInfo", &[]);
        for part in &um.payload_info {
            match &part.href {
                Some(href) => w.open("eb:PartInfo", &[("href", href)]),
                None => w.open("eb:PartInfo", &[]),
            }
            if !part.properties.is_empty() {
                w.open("eb:PartProperties", &[]);
                properties(&mut w, &part.properties);
                w.close("eb:PartProperties");
            }
            w.close("eb:PartInfo");
        }
        w.close("eb:PayloadInfo");
    }
    w.close("eb:UserMessage");
    Ok(close_envelope(w, id))
}

fn check_id(id: &str) -> Result<(), EbmsError> {
    if is_valid_message_id(id) {
        Ok(())
    } else {
        Err(EbmsError::new(
            ErrorCode::Other,
            format!("outbound message id {id:?} is not an RFC 2822 msg-id"),
        ))
    }
}

fn typed(r#type: Option<&str>) -> Vec<(&'static str, &str)> {
    r#type.map(|t| ("type", t)).into_iter().collect()
}

fn properties(w: &mut XmlOut, props: &[Property]) {
    for p in props {
        let mut attrs = vec![("name", p.name.as_str())];
        if let Some(t) = &p.r#type {
            attrs.push(("type", t));
        }
        w.leaf("eb:Property", &attrs, &p.value);
    }
}

fn message_info(w: &mut XmlOut, timestamp: &str, message_id: &str, ref_to: Option<&str>) {
    w.open("eb:MessageInfo", &[]);
    w.leaf("eb:Timestamp", &[], timestamp);
    w.leaf("eb:MessageId", &[], message_id);
    if let Some(r) = ref_to {
        w.leaf("eb:RefToMessageId", &[], r);
    }
    w.close("eb:MessageInfo");
}

fn open_envelope(w: &mut XmlOut, message_id: &str) {
    w.open(
        "S12:Envelope",
        &[
            ("xmlns:S12", ns::SOAP12_ENV),
            ("xmlns:eb", ns::EBMS),
            ("xmlns:wsu", ns::WSU),
            ("xmlns:wsse", ns::WSSE),
        ],
    );
    w.open("S12:Header", &[]);
    w.open("wsse:Security", &[S12_MU]);
    w.close("wsse:Security");
    w.open(
        "eb:Messaging",
        &[S12_MU, ("wsu:Id", &ncname("_messaging-", message_id))],
    );
}

fn close_envelope(mut w: XmlOut, message_id: &str) -> String {
    w.close("eb:Messaging");
    w.close("S12:Header");
    w.empty("S12:Body", &[("wsu:Id", &ncname("_body-", message_id))]);
    w.close("S12:Envelope");
    w.finish()
}
