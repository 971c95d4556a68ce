//! Shared helpers for the XML-DSig integration tests: test-PKI loading, an unsigned AS4
//! envelope, an in-memory attachment source and a one-call verifier.

#![allow(dead_code)] // each test binary uses a different subset

use std::io::Read;

use as4gate_ebms::EnvelopeNodes;
use as4gate_wssec::{
    AttachmentSource, AttachmentToSign, SecurityPolicy, SigningIdentity, TrustAnchors, Verified,
    VerifyRequest, WssecError, sign_envelope, verify_envelope,
};
use base64::Engine;
use time::OffsetDateTime;
use time::macros::datetime;

/// Validation time used by the tests: inside every non-expired test certificate's validity.
pub const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

pub fn pki_path(rel: &str) -> String {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-pki/").to_owned() + rel
}

/// DER of the first PEM block in a test-PKI file.
pub fn pem_der(rel: &str) -> Vec<u8> {
    let text = std::fs::read_to_string(pki_path(rel)).unwrap();
    let b64: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap()
}

pub fn identity(party: &str, kind: &str) -> SigningIdentity {
    SigningIdentity::from_pkcs8_der(
        &pem_der(&format!("{party}/{kind}.key")),
        &pem_der(&format!("{party}/{kind}.crt")),
        vec![],
    )
    .unwrap()
}

pub fn anchors() -> TrustAnchors {
    TrustAnchors::from_der(&[pem_der("ca/ca.crt")]).unwrap()
}

/// An attachment held in memory.
#[derive(Clone)]
pub struct Part {
    pub cid: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

pub fn part(cid: &str, content_type: &str, content: &[u8]) -> Part {
    Part {
        cid: cid.to_owned(),
        content_type: content_type.to_owned(),
        content: content.to_vec(),
    }
}

/// The three attachment kinds the SwA transform distinguishes.
pub fn sample_parts() -> Vec<Part> {
    vec![
        part(
            "payload-1@as4gate.test",
            "application/gzip",
            b"\x1f\x8b\x08\x00binary\r\n\x00\xff",
        ),
        part(
            "payload-2@as4gate.test",
            "application/xml",
            b"<?xml version=\"1.0\"?>\n<inv:Invoice xmlns:inv=\"urn:inv\" xmlns:unused=\"urn:u\"><!-- c --><inv:Total a='1'>10</inv:Total></inv:Invoice>",
        ),
        part("payload-3@as4gate.test", "text/plain", b"line one\nline two\r\n"),
    ]
}

pub struct Parts(pub Vec<Part>);

impl AttachmentSource for Parts {
    fn attachment(&self, cid: &str) -> Option<(String, Box<dyn Read + '_>)> {
        self.0.iter().find(|p| p.cid == cid).map(|p| {
            (
                p.content_type.clone(),
                Box::new(p.content.as_slice()) as Box<dyn Read>,
            )
        })
    }

    fn cids(&self) -> Vec<String> {
        self.0.iter().map(|p| p.cid.clone()).collect()
    }
}

/// An unsigned AS4 UserMessage envelope with an empty Security header and PartInfo for `parts`.
pub fn unsigned_envelope(parts: &[Part]) -> String {
    let part_infos: String = parts
        .iter()
        .map(|p| {
            format!(
                "<eb:PartInfo href=\"cid:{}\"><eb:PartProperties><eb:Property name=\"MimeType\">{}</eb:Property></eb:PartProperties></eb:PartInfo>",
                p.cid, p.content_type
            )
        })
        .collect();
    let payload_info = if parts.is_empty() {
        String::new()
    } else {
        format!("<eb:PayloadInfo>{part_infos}</eb:PayloadInfo>")
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope" xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" xmlns:wsu="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><S12:Header><wsse:Security S12:mustUnderstand="true"></wsse:Security><eb:Messaging S12:mustUnderstand="true" wsu:Id="_messaging"><eb:UserMessage><eb:MessageInfo><eb:Timestamp>2026-11-23T12:00:00.000Z</eb:Timestamp><eb:MessageId>msg-1@as4gate.test</eb:MessageId></eb:MessageInfo><eb:PartyInfo><eb:From><eb:PartyId type="urn:oasis:names:tc:ebcore:partyid-type:unregistered">blue_gw</eb:PartyId><eb:Role>http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator</eb:Role></eb:From><eb:To><eb:PartyId type="urn:oasis:names:tc:ebcore:partyid-type:unregistered">red_gw</eb:PartyId><eb:Role>http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder</eb:Role></eb:To></eb:PartyInfo><eb:CollaborationInfo><eb:Service type="urn:as4gate:test">urn:as4gate:service</eb:Service><eb:Action>Deliver</eb:Action><eb:ConversationId>conv-1</eb:ConversationId></eb:CollaborationInfo>{payload_info}</eb:UserMessage></eb:Messaging></S12:Header><S12:Body wsu:Id="_body"/></S12:Envelope>"#
    )
}

pub fn to_sign(parts: &[Part]) -> Vec<AttachmentToSign> {
    parts
        .iter()
        .map(|p| AttachmentToSign::from_content(&p.cid, &p.content_type, &p.content).unwrap())
        .collect()
}

/// Sign the sample envelope for `parts` as blue_gw with key `kind`.
pub fn signed(kind: &str, parts: &[Part]) -> String {
    sign_envelope(
        &unsigned_envelope(parts),
        &identity("blue_gw", kind),
        &to_sign(parts),
    )
    .unwrap()
    .xml
}

/// Parse, locate and verify `xml` in one call.
pub fn verify_with(
    xml: &str,
    parts: &[Part],
    policy: &SecurityPolicy,
    known: &[Vec<u8>],
    now: OffsetDateTime,
) -> Result<Verified<as4gate_ebms::Messaging>, WssecError> {
    let doc = uppsala::parse(xml).unwrap();
    let nodes = EnvelopeNodes::locate(&doc)?;
    let source = Parts(parts.to_vec());
    let anchors = anchors();
    verify_envelope(&VerifyRequest {
        doc: &doc,
        nodes: &nodes,
        attachments: &source,
        policy,
        anchors: &anchors,
        known_certificates: known,
        now,
    })
}

/// Verify with the default (AS4 1.15) policy, no known certificates, at [`NOW`].
pub fn verify(xml: &str, parts: &[Part]) -> Result<Verified<as4gate_ebms::Messaging>, WssecError> {
    verify_with(xml, parts, &SecurityPolicy::default(), &[], NOW)
}

/// Replace exactly one occurrence of `from` (panics otherwise, so a test cannot silently
/// tamper with nothing).
pub fn replace_once(xml: &str, from: &str, to: &str) -> String {
    assert_eq!(
        xml.matches(from).count(),
        1,
        "expected exactly one {from:?} in the envelope"
    );
    xml.replacen(from, to, 1)
}

/// The text between the first `start` and the next `end` (inclusive of both).
pub fn between<'a>(xml: &'a str, start: &str, end: &str) -> &'a str {
    let s = xml.find(start).unwrap();
    let e = s + xml[s..].find(end).unwrap() + end.len();
    &xml[s..e]
}
