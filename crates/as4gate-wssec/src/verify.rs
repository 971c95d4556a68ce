//! Inbound signature verification of an AS4 envelope: the only producer of a signed
//! [`Verified`].
//!
//! Order of checks (each failure has its own [`WssecError`] variant):
//! 1. exactly one `ds:Signature` in the whole envelope, a direct child of `wsse:Security`
//!    (none at all: accepted unsigned only if the policy allows);
//! 2. our own read of `SignedInfo`: reference count limit, then algorithms, canonicalization
//!    and transforms against the [`SecurityPolicy`]; only bare `#id` and `cid:` URIs;
//! 3. the `SecurityTokenReference` resolved to a certificate ([`crate::token`]) that chains to
//!    a trust anchor and is valid at `now` ([`crate::trust`]);
//! 4. core validation with only that certificate's public key checks the same-document
//!    digests and `SignatureValue`, and refuses duplicate IDs: `core_validation` for
//!    the shape AS4 peers send, the bergshamra engine (non-strict mode) for any other;
//! 5. coverage: the same-document references resolve exactly to `nodes.body` and
//!    `nodes.messaging` (NodeId equality — no signature wrapping), every `cid:` reference names
//!    a present attachment exactly once and every attachment is covered;
//! 6. attachment digests (SwA content transform, computed by us, constant-time compare);
//! 7. `eb:Messaging` parsed from the very node that was verified.

use std::collections::HashSet;
use std::io::Read;

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::model::{Messaging, NrReference};
use bergshamra::{DsigContext, KeysManager, VerifyResult};
use time::OffsetDateTime;
use uppsala::Document;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::core_validation::{self, CheckedReference};
use crate::signed_info::{ParsedSignature, same_document_id};
use crate::swa::AttachmentDigest;
use crate::trust::check_size;
use crate::xml_util::{decode_base64, descendants_named, single_child};
use crate::{
    SecurityPolicy, SignatureEvidence, TrustAnchors, Verified, WssecError, names,
    resolve_security_token_reference, validate_certificate,
};

/// Read buffer used when streaming attachments into their digests.
const ATTACHMENT_READ_CHUNK: usize = 64 * 1024;

/// Access to the message's MIME attachments (decrypted content), keyed by Content-ID without
/// angle brackets.
pub trait AttachmentSource {
    /// The attachment's Content-Type and a reader over its (decrypted) content.
    fn attachment(&self, cid: &str) -> Option<(String, Box<dyn Read + '_>)>;
    /// Content-IDs of every attachment present in the message.
    fn cids(&self) -> Vec<String>;
}

/// Everything [`verify_envelope`] needs; the document is the one the daemon parsed once.
pub struct VerifyRequest<'a> {
    /// The parsed envelope.
    pub doc: &'a Document<'a>,
    /// Its located nodes (`EnvelopeNodes::locate`).
    pub nodes: &'a EnvelopeNodes,
    /// The attachments.
    pub attachments: &'a dyn AttachmentSource,
    /// Acceptance policy.
    pub policy: &'a SecurityPolicy,
    /// CA certificates the signer must chain to.
    pub anchors: &'a TrustAnchors,
    /// Partner certificates (DER) for issuer-serial and SKI references.
    pub known_certificates: &'a [Vec<u8>],
    /// Validation time.
    pub now: OffsetDateTime,
}

/// A reference after the policy check, sorted by kind.
enum ReferenceKind {
    SameDocument,
    /// Content-ID after percent-decoding (RFC 2392 `cid:` URLs are URL-encoded).
    Attachment {
        cid: String,
    },
}

/// Percent-decode the content-id part of a `cid:` URL; undecodable input is kept as is.
fn decode_cid(raw: &str) -> String {
    if !raw.contains('%') {
        return raw.to_owned();
    }
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (other, _) => {
                out.push(other);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| raw.to_owned())
}

/// The `ds:SignatureMethod` algorithm the first signature in the `wsse:Security` header
/// claims, **unverified**. Only for choosing how to answer a message that is refused before a
/// P-Mode says which crypto generation applies (an error signal to an Ed25519 sender is
/// signed with our Ed25519 key); never for a trust decision.
pub fn claimed_signature_method(doc: &Document<'_>, nodes: &EnvelopeNodes) -> Option<String> {
    let security = nodes.security?;
    let method = descendants_named(doc, security, names::DS, "SignatureMethod")
        .into_iter()
        .next()?;
    doc.get_attribute(method, "Algorithm").map(str::to_owned)
}

/// Verify the envelope's signature and return its `eb:Messaging` as a [`Verified`] value.
pub fn verify_envelope(req: &VerifyRequest<'_>) -> Result<Verified<Messaging>, WssecError> {
    let doc = req.doc;
    let signatures = descendants_named(doc, doc.root(), names::DS, "Signature");
    let signature = match signatures.as_slice() {
        [] => {
            let messaging = Messaging::parse(doc, req.nodes.messaging)?;
            return Verified::unsigned_by_policy(messaging, req.policy);
        }
        [one] => *one,
        more => return Err(WssecError::MultipleSignatures { count: more.len() }),
    };
    let security = req
        .nodes
        .security
        .ok_or(WssecError::SecurityHeaderMissing)?;
    if doc.parent(signature) != Some(security) {
        return Err(WssecError::SignatureOutsideSecurityHeader);
    }

    let parsed = ParsedSignature::read(doc, signature, req.policy.max_references)?;
    let kinds = check_policy(&parsed, req.policy)?;

    let key_info = parsed.key_info.ok_or(WssecError::KeyInfoMissing)?;
    let str_node = single_child(doc, key_info, names::WSSE, "SecurityTokenReference")
        .ok()
        .flatten()
        .ok_or(WssecError::KeyInfoMissing)?;
    let token = resolve_security_token_reference(doc, security, str_node, req.known_certificates)?;
    check_size(&token.leaf, req.policy.max_certificate_bytes)?;
    for der in &token.chain {
        check_size(der, req.policy.max_certificate_bytes)?;
    }
    validate_certificate(&token.leaf, &token.chain, req.anchors, req.now)?;

    let engine_references = match core_validation::validate(doc, &parsed, &token.leaf)? {
        Some(checked) => checked,
        None => engine_verify(doc, &token.leaf)?,
    };
    check_same_document_coverage(&parsed.references, &kinds, &engine_references, req.nodes)?;
    check_attachments(&parsed.references, &kinds, req.attachments)?;

    let messaging = Messaging::parse(doc, req.nodes.messaging)?;
    Ok(Verified::signed(
        messaging,
        SignatureEvidence {
            signer_certificate: token.leaf,
            signer_chain: token.chain,
            references: parsed.references,
            signature_algorithm: parsed.signature_method,
            canonicalization_algorithm: parsed.c14n_method,
        },
    ))
}

/// Algorithms, transforms and URI forms against the policy; classifies each reference.
fn check_policy(
    parsed: &ParsedSignature,
    policy: &SecurityPolicy,
) -> Result<Vec<ReferenceKind>, WssecError> {
    if !policy.allows_c14n(&parsed.c14n_method) {
        return Err(WssecError::CanonicalizationNotAllowed {
            uri: parsed.c14n_method.clone(),
        });
    }
    if !policy.allows_signature_algorithm(&parsed.signature_method) {
        return Err(WssecError::SignatureAlgorithmNotAllowed {
            uri: parsed.signature_method.clone(),
        });
    }
    parsed
        .references
        .iter()
        .map(|r| {
            if !policy.allows_digest_algorithm(&r.digest_method) {
                return Err(WssecError::DigestAlgorithmNotAllowed {
                    uri: r.digest_method.clone(),
                });
            }
            if same_document_id(&r.uri).is_some() {
                if let Some(t) = r
                    .transforms
                    .iter()
                    .find(|t| !policy.allows_c14n(&t.algorithm))
                {
                    return Err(WssecError::TransformNotAllowed {
                        reference: r.uri.clone(),
                        uri: t.algorithm.clone(),
                    });
                }
                Ok(ReferenceKind::SameDocument)
            } else if let Some(cid) = r.uri.strip_prefix("cid:") {
                if r.transforms
                    .iter()
                    .any(|t| t.algorithm == names::SWA_COMPLETE_TRANSFORM)
                {
                    return Err(WssecError::CompleteSignatureTransformUnsupported {
                        reference: r.uri.clone(),
                    });
                }
                match r.transforms.as_slice() {
                    [only] if only.algorithm == names::SWA_CONTENT_TRANSFORM => {
                        Ok(ReferenceKind::Attachment {
                            cid: decode_cid(cid),
                        })
                    }
                    _ => Err(WssecError::AttachmentTransformMissing {
                        reference: r.uri.clone(),
                    }),
                }
            } else {
                Err(WssecError::ReferenceUriNotAllowed { uri: r.uri.clone() })
            }
        })
        .collect()
}

/// Run bergshamra with only the signer's public key: `SignatureValue` and same-document digests
/// of a signature outside the shape [`core_validation`] handles.
fn engine_verify(doc: &Document<'_>, leaf: &[u8]) -> Result<Vec<CheckedReference>, WssecError> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| WssecError::MalformedCertificate(e.to_string()))?;
    let key = bergshamra::keys::loader::load_spki_der(cert.public_key().raw)
        .map_err(|e| WssecError::MalformedCertificate(format!("public key: {e}")))?;
    let mut keys = KeysManager::new();
    keys.add_key(key);
    let ctx = DsigContext::new(keys)
        .with_trusted_keys_only(true)
        .with_strict_verification(false)
        .with_require_reference_digests(false);
    match bergshamra::dsig::verify::verify_document(&ctx, doc) {
        Ok(VerifyResult::Valid { references, .. }) => Ok(references
            .into_iter()
            .map(|r| (r.uri, r.resolved_node, r.digest_verified))
            .collect()),
        Ok(VerifyResult::Invalid { reason }) => {
            if reason.starts_with("Reference digest failed") {
                Err(WssecError::ReferenceDigestMismatch(reason))
            } else {
                Err(WssecError::SignatureInvalid(reason))
            }
        }
        Err(bergshamra::Error::XmlStructure(msg)) if msg.starts_with("duplicate ID") => Err(
            WssecError::DuplicateId(msg.trim_start_matches("duplicate ID: ").to_owned()),
        ),
        Err(bergshamra::Error::Key(msg) | bergshamra::Error::KeyNotFound(msg)) => {
            Err(WssecError::SignatureInvalid(msg))
        }
        Err(other) => Err(WssecError::VerificationFailed(other.to_string())),
    }
}

/// The same-document references must be exactly Body and Messaging, each once.
fn check_same_document_coverage(
    references: &[NrReference],
    kinds: &[ReferenceKind],
    engine: &[CheckedReference],
    nodes: &EnvelopeNodes,
) -> Result<(), WssecError> {
    if engine.len() != references.len() {
        return Err(WssecError::MalformedSignature(format!(
            "engine reported {} references, SignedInfo has {}",
            engine.len(),
            references.len()
        )));
    }
    let (mut body, mut messaging) = (false, false);
    for ((reference, kind), (uri, node, digested)) in references.iter().zip(kinds).zip(engine) {
        if *uri != reference.uri {
            return Err(WssecError::MalformedSignature(format!(
                "engine reference {uri} does not match {}",
                reference.uri
            )));
        }
        let ReferenceKind::SameDocument = kind else {
            continue;
        };
        let node = node.ok_or_else(|| WssecError::UnexpectedSignedElement { uri: uri.clone() })?;
        if !digested {
            return Err(WssecError::ReferenceDigestMismatch(format!(
                "{uri} was not digested"
            )));
        }
        let seen = if node == nodes.body {
            &mut body
        } else if node == nodes.messaging {
            &mut messaging
        } else {
            return Err(WssecError::UnexpectedSignedElement { uri: uri.clone() });
        };
        if std::mem::replace(seen, true) {
            return Err(WssecError::DuplicateReference {
                target: uri.clone(),
            });
        }
    }
    if !body {
        return Err(WssecError::BodyNotSigned);
    }
    if !messaging {
        return Err(WssecError::MessagingNotSigned);
    }
    Ok(())
}

/// Every attachment covered exactly once, then every attachment digest recomputed.
fn check_attachments(
    references: &[NrReference],
    kinds: &[ReferenceKind],
    attachments: &dyn AttachmentSource,
) -> Result<(), WssecError> {
    let signed: Vec<(&str, &NrReference)> = references
        .iter()
        .zip(kinds)
        .filter_map(|(r, k)| match k {
            ReferenceKind::Attachment { cid } => Some((cid.as_str(), r)),
            ReferenceKind::SameDocument => None,
        })
        .collect();
    let mut covered = HashSet::new();
    for (cid, _) in &signed {
        if !covered.insert(*cid) {
            return Err(WssecError::DuplicateReference {
                target: format!("cid:{cid}"),
            });
        }
    }
    let present = attachments.cids();
    for (cid, _) in &signed {
        if !present.iter().any(|p| p == cid) {
            return Err(WssecError::AttachmentMissing {
                cid: (*cid).to_owned(),
            });
        }
    }
    if let Some(cid) = present.iter().find(|p| !covered.contains(p.as_str())) {
        return Err(WssecError::AttachmentNotSigned { cid: cid.clone() });
    }
    for (cid, reference) in signed {
        let computed = attachment_digest(attachments, cid, &reference.digest_method)?;
        let declared = decode_base64(&reference.digest_value_b64).map_err(|e| {
            WssecError::MalformedSignature(format!("DigestValue of {}: {e}", reference.uri))
        })?;
        if aws_lc_rs::constant_time::verify_slices_are_equal(&computed, &declared).is_err() {
            return Err(WssecError::AttachmentDigestMismatch {
                cid: cid.to_owned(),
            });
        }
    }
    Ok(())
}

fn attachment_digest(
    attachments: &dyn AttachmentSource,
    cid: &str,
    digest_method: &str,
) -> Result<Vec<u8>, WssecError> {
    let (content_type, mut reader) =
        attachments
            .attachment(cid)
            .ok_or_else(|| WssecError::AttachmentMissing {
                cid: cid.to_owned(),
            })?;
    let mut digest = AttachmentDigest::new(&content_type, digest_method)?;
    let mut buffer = vec![0u8; ATTACHMENT_READ_CHUNK];
    loop {
        let n = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(source) => {
                return Err(WssecError::AttachmentRead {
                    cid: cid.to_owned(),
                    source,
                });
            }
        };
        digest.update(&buffer[..n])?;
    }
    digest.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cid_urls_are_percent_decoded() {
        assert_eq!(
            decode_cid("payload-1@as4gate.test"),
            "payload-1@as4gate.test"
        );
        assert_eq!(decode_cid("a%40b%2Fc"), "a@b/c");
        assert_eq!(decode_cid("bad%zz%4"), "bad%zz%4");
        assert_eq!(decode_cid("%ff"), "%ff");
    }
}
