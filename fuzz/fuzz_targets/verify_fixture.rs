//! The fixed side of the `signature_verifier` target — trust anchor, partner certificates,
//! policy, validation time and the MIME attachments it can present — shared with `make_corpus`,
//! which verifies every seed with exactly these settings, so that the seeds verify all the way
//! through and the fuzzer starts from the success path.
//!
//! Which attachments a message "carries" is read from the envelope text: those whose
//! `href="cid:…"` occurs in it (how `eb:PartInfo` names them; an NRR receipt names them as
//! `URI="cid:…"` and so carries none). The check is textual on purpose, so a mutated envelope
//! can still reference an absent part or leave a present one unsigned.

use as4gate_wssec::SecurityPolicy;
use time::OffsetDateTime;

/// The test PKI's root CA, the only trust anchor.
pub const CA_PEM: &str = include_str!("../../test-pki/ca/ca.crt");

/// blue_gw's signing certificates, the partner certificates for issuer-serial and SKI
/// references.
pub const KNOWN_PEMS: [&str; 3] = [
    include_str!("../../test-pki/blue_gw/rsa.crt"),
    include_str!("../../test-pki/blue_gw/ecdsa.crt"),
    include_str!("../../test-pki/blue_gw/ed25519.crt"),
];

/// Validation time: inside the test PKI's validity (2026-01-01 .. 2036-01-01).
pub const VERIFY_AT: OffsetDateTime = time::macros::datetime!(2026-11-23 12:00 UTC);

/// The eDelivery AS4 1.15 policy widened to the 2.0 signature algorithms, so RSA, ECDSA and
/// Ed25519 seeds all reach the cryptographic checks.
pub fn policy() -> SecurityPolicy {
    let mut policy = SecurityPolicy::edelivery_1_15();
    policy
        .allowed_signature_algorithms
        .extend(SecurityPolicy::edelivery_2_0().allowed_signature_algorithms);
    policy
}

/// DER of the single certificate in a PEM text.
pub fn der(pem: &str) -> Vec<u8> {
    use base64::Engine as _;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .expect("test PKI PEM is base64")
}

/// One attachment: Content-ID (no brackets), Content-Type and the (decrypted) content.
pub struct FixedAttachment {
    /// Content-ID without angle brackets.
    pub content_id: &'static str,
    /// The part's Content-Type, as covered by the SwA content-signature transform.
    pub content_type: &'static str,
    /// The part's content.
    pub content: &'static [u8],
}

/// Every attachment a seed message can carry.
pub const FIXED_ATTACHMENTS: [FixedAttachment; 2] = [
    FixedAttachment {
        content_id: "payload-1@fuzz",
        content_type: "application/xml",
        content: b"<Invoice xmlns=\"urn:as4gate:fuzz\"><ID>INV-1</ID><Total currencyID=\"EUR\">12.50</Total></Invoice>\n",
    },
    FixedAttachment {
        content_id: "payload-2@fuzz",
        content_type: "application/octet-stream",
        content: b"\x00\x01\x02 binary attachment \xfe\xff\r\n--not-a-boundary\r\n",
    },
];

/// The attachments `envelope` names with `href="cid:<content id>"`.
pub fn carried_by(envelope: &str) -> Vec<&'static FixedAttachment> {
    FIXED_ATTACHMENTS
        .iter()
        .filter(|a| envelope.contains(&format!("href=\"cid:{}\"", a.content_id)))
        .collect()
}

/// Presents the attachments a message carries to the verifier.
pub struct Present(pub Vec<&'static FixedAttachment>);

impl as4gate_wssec::AttachmentSource for Present {
    fn attachment(&self, cid: &str) -> Option<(String, Box<dyn std::io::Read + '_>)> {
        self.0.iter().find(|a| a.content_id == cid).map(|a| {
            (
                a.content_type.to_owned(),
                Box::new(a.content) as Box<dyn std::io::Read>,
            )
        })
    }
    fn cids(&self) -> Vec<String> {
        self.0.iter().map(|a| a.content_id.to_owned()).collect()
    }
}
