//! Outbound signing of an AS4 envelope, shaped like WSS4J's output so Domibus, phase4 and
//! Holodeck accept it.
//!
//! Into the existing `wsse:Security` header we append a `wsse:BinarySecurityToken` (X509v3)
//! and a `ds:Signature` with Exclusive C14N (`ec:InclusiveNamespaces PrefixList` naming the
//! SOAP envelope prefix, as WSS4J does), the signature algorithm chosen by key type
//! (RSA-SHA256, ECDSA-SHA256 or Ed25519), SHA-256 digests, a reference to `eb:Messaging`, one
//! to the SOAP Body and one per attachment (`cid:` + SwA content transform, digest computed by
//! the caller while it streamed the part), and KeyInfo = SecurityTokenReference → BST.
//!
//! We build the signature ourselves rather than hand a template to the XML-DSig engine: the
//! envelope is parsed once, for the two XML digests, and `SignedInfo` is canonicalised in a
//! small document that reproduces its namespace context (bergshamra's C14N throughout), where
//! the engine's template path parses the whole envelope several times.
//! Every outbound signature is checked by our verifier and by independent ones (xmlsec1,
//! Python lxml + cryptography) in the tests. Private-key operations run on aws-lc with keys
//! parsed once.

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::model::{NrReference, TransformSpec};

use aws_lc_rs::digest;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::c14n;
use crate::key_kind;
use crate::signed_info::same_document_id;
use crate::swa::digest_bytes;
use crate::xml_util::{descendants_named, encode_base64, escape};
use crate::{WssecError, names};

/// Base64 characters per PEM line (RFC 7468 strict form).
const PEM_LINE: usize = 64;

/// Our private key and certificate.
///
/// The key is parsed once into an aws-lc key object and kept: RSA key checks and blinding
/// set-up then happen once, not on every receipt (they cost as much as the signature itself).
pub struct SigningIdentity {
    key: CachedKey,
    certificate: Vec<u8>,
    chain: Vec<Vec<u8>>,
    signature_method: &'static str,
}

impl std::fmt::Debug for SigningIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningIdentity")
            .field("signature_method", &self.signature_method)
            .field("certificate_bytes", &self.certificate.len())
            .finish_non_exhaustive()
    }
}

impl SigningIdentity {
    /// Load an unencrypted PKCS#8 private key (RSA, ECDSA P-256 or Ed25519) with its
    /// certificate (DER) and the certificates above it (DER, kept for the caller). Refuses a
    /// key that does not belong to the certificate.
    pub fn from_pkcs8_der(
        key_der: &[u8],
        cert_der: &[u8],
        chain: Vec<Vec<u8>>,
    ) -> Result<Self, WssecError> {
        let (_, cert) = X509Certificate::from_der(cert_der)
            .map_err(|e| WssecError::MalformedCertificate(e.to_string()))?;
        let spki = cert.public_key();
        let signature_method =
            key_kind::signature_method_of(spki).map_err(WssecError::SigningKey)?;
        // bergshamra's provider-neutral loader takes PEM (RFC 7468: 64-character lines).
        let b64 = encode_base64(key_der);
        let mut pem = String::from("-----BEGIN PRIVATE KEY-----\n");
        for line in b64.as_bytes().chunks(PEM_LINE) {
            pem.push_str(&String::from_utf8_lossy(line));
            pem.push('\n');
        }
        pem.push_str("-----END PRIVATE KEY-----\n");
        let loaded = bergshamra::keys::loader::load_pem_auto(pem.as_bytes(), None)
            .map_err(|e| WssecError::SigningKey(e.to_string()))?;
        if loaded.to_spki_der().as_deref() != Some(spki.raw) {
            return Err(WssecError::SigningKey(
                "the private key does not belong to the certificate".into(),
            ));
        }
        let key = CachedKey::from_pkcs8(signature_method, key_der)?;
        Ok(Self {
            key,
            certificate: cert_der.to_vec(),
            chain,
            signature_method,
        })
    }

    /// Our certificate (DER).
    pub fn certificate(&self) -> &[u8] {
        &self.certificate
    }

    /// The certificates above ours (DER), as given.
    pub fn chain(&self) -> &[Vec<u8>] {
        &self.chain
    }

    /// The `SignatureMethod` URI used for this key.
    pub fn signature_algorithm(&self) -> &'static str {
        self.signature_method
    }
}

/// One attachment to reference from the signature: its Content-ID and the SHA-256 digest of
/// its content under the SwA content transform.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttachmentToSign {
    /// Content-ID without angle brackets.
    pub cid: String,
    /// SHA-256 digest per [`crate::swa::AttachmentDigest`] (stream large payloads through it).
    pub sha256_digest: Vec<u8>,
}

impl AttachmentToSign {
    /// Digest in-memory `content` of MIME type `content_type`.
    pub fn from_content(cid: &str, content_type: &str, content: &[u8]) -> Result<Self, WssecError> {
        Ok(Self {
            cid: cid.to_owned(),
            sha256_digest: digest_bytes(content_type, names::SHA256, content)?,
        })
    }
}

/// A signed envelope with the references its signature covers (what a receipt for it must
/// echo).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEnvelope {
    /// The signed SOAP envelope.
    pub xml: String,
    references: Vec<NrReference>,
}

impl SignedEnvelope {
    /// Our signature's references, in signature order.
    pub fn references(&self) -> &[NrReference] {
        &self.references
    }

    /// Take the references out of the envelope.
    pub fn into_parts(self) -> (String, Vec<NrReference>) {
        (self.xml, self.references)
    }
}

/// The `wsu:Id` of `node`, required to be a bare NCName.
fn wsu_id(
    doc: &uppsala::Document<'_>,
    node: uppsala::NodeId,
    element: &'static str,
) -> Result<String, WssecError> {
    let id = doc
        .get_attribute_ns(node, names::WSU, "Id")
        .ok_or(WssecError::MissingWsuId { element })?;
    if same_document_id(&format!("#{id}")).is_none() {
        return Err(WssecError::SigningFailed(format!(
            "wsu:Id {id:?} of {element} is not an NCName"
        )));
    }
    Ok(id.to_owned())
}

fn exc_c14n_with_prefixes(element: &str, prefix_list: &str) -> String {
    format!(
        "<ds:{element} Algorithm=\"{exc}\"><ec:InclusiveNamespaces xmlns:ec=\"{exc}\" PrefixList=\"{p}\"/></ds:{element}>",
        exc = names::EXC_C14N,
        p = escape(prefix_list),
    )
}

/// Append `reference` as a `ds:Reference` element.
fn push_reference(out: &mut String, reference: &NrReference) {
    out.push_str("<ds:Reference URI=\"");
    out.push_str(&escape(&reference.uri));
    out.push_str("\"><ds:Transforms>");
    for transform in &reference.transforms {
        match &transform.inclusive_prefixes {
            Some(prefixes) => out.push_str(&exc_c14n_with_prefixes("Transform", prefixes)),
            None => {
                out.push_str("<ds:Transform Algorithm=\"");
                out.push_str(&escape(&transform.algorithm));
                out.push_str("\"/>");
            }
        }
    }
    out.push_str("</ds:Transforms><ds:DigestMethod Algorithm=\"");
    out.push_str(&escape(&reference.digest_method));
    out.push_str("\"/><ds:DigestValue>");
    out.push_str(&reference.digest_value_b64);
    out.push_str("</ds:DigestValue></ds:Reference>");
}

/// Exclusive C14N of the subtree at `node` (comments dropped), with `prefix_list` as the
/// InclusiveNamespaces PrefixList.
fn exc_c14n(doc: &uppsala::Document<'_>, node: uppsala::NodeId, prefix_list: &str) -> Vec<u8> {
    let prefixes: Vec<&str> = prefix_list.split_ascii_whitespace().collect();
    c14n::exclusive_subtree(doc, node, &prefixes)
}

/// The namespace `prefix` (`#default`: the default namespace) is bound to at `node`.
fn binding_at<'d>(
    doc: &'d uppsala::Document<'_>,
    node: uppsala::NodeId,
    prefix: &str,
) -> Option<&'d str> {
    let wanted = if prefix == "#default" { "" } else { prefix };
    let mut at = Some(node);
    while let Some(current) = at {
        if let Some(declared) = doc.element(current).and_then(|e| {
            e.namespace_declarations
                .iter()
                .find(|(p, _)| p.as_ref() == wanted)
        }) {
            return Some(declared.1.as_ref());
        }
        at = doc.parent(current);
    }
    None
}

/// Exclusive C14N of `signed_info` as it will stand in the envelope: inside a `ds:Signature`
/// declaring `ds`, in `wsse:Security` where the PrefixList prefix is bound to `binding`.
///
/// Its canonical form depends on nothing else: Exclusive C14N renders only the namespaces an
/// element uses (`ds`; `ec` is declared by the elements that use it) and those the PrefixList
/// names, so a small document with just that context canonicalises to the same bytes as the
/// whole envelope would.
fn canonical_signed_info(
    signed_info: &str,
    prefix_list: &str,
    binding: Option<&str>,
) -> Result<Vec<u8>, WssecError> {
    let (open, close) = match (prefix_list, binding) {
        (_, None) => ("<context>".to_owned(), "</context>".to_owned()),
        ("#default", Some(ns)) => (
            format!("<context xmlns=\"{}\">", escape(ns)),
            "</context>".to_owned(),
        ),
        (prefix, Some(ns)) => (
            format!("<{prefix}:context xmlns:{prefix}=\"{}\">", escape(ns)),
            format!("</{prefix}:context>"),
        ),
    };
    let xml = format!(
        "{open}<ds:Signature xmlns:ds=\"{ds}\">{signed_info}</ds:Signature>{close}",
        ds = names::DS
    );
    let doc = uppsala::parse(&xml)
        .map_err(|e| WssecError::SigningFailed(format!("SignedInfo does not parse: {e}")))?;
    let node = descendants_named(&doc, doc.root(), names::DS, "SignedInfo")
        .first()
        .copied()
        .ok_or_else(|| WssecError::SigningFailed("SignedInfo not found".into()))?;
    Ok(exc_c14n(&doc, node, prefix_list))
}

/// Sign `unsigned_xml` (an envelope with an empty or partly filled `wsse:Security` header and
/// `wsu:Id`s on `eb:Messaging` and the Body) with `identity`, covering `attachments`.
///
/// The digests of `eb:Messaging` and the Body are taken from `unsigned_xml`: the signature
/// goes into `wsse:Security`, outside both subtrees, and Exclusive C14N renders only the
/// namespaces a subtree uses or the PrefixList names, so their canonical form is the same in
/// the signed envelope. `SignedInfo` is canonicalised in its own context (see
/// `canonical_signed_info`), so the envelope is parsed once.
pub fn sign_envelope(
    unsigned_xml: &str,
    identity: &SigningIdentity,
    attachments: &[AttachmentToSign],
) -> Result<SignedEnvelope, WssecError> {
    let doc = uppsala::parse(unsigned_xml)
        .map_err(|e| WssecError::SigningFailed(format!("envelope does not parse: {e}")))?;
    let nodes = EnvelopeNodes::locate(&doc)?;
    let security = nodes.security.ok_or(WssecError::SecurityHeaderMissing)?;
    let body_id = wsu_id(&doc, nodes.body, "S12:Body")?;
    let messaging_id = wsu_id(&doc, nodes.messaging, "eb:Messaging")?;
    let prefix_list = doc
        .element(nodes.envelope)
        .and_then(|e| e.name.prefix.as_deref().map(str::to_owned))
        .unwrap_or_else(|| "#default".to_owned());
    let bst_id = format!("{messaging_id}.x509");
    let signature_id = format!("{messaging_id}.signature");

    let mut references = Vec::with_capacity(2 + attachments.len());
    for (id, node) in [(&messaging_id, nodes.messaging), (&body_id, nodes.body)] {
        let canonical = exc_c14n(&doc, node, &prefix_list);
        references.push(NrReference {
            uri: format!("#{id}"),
            transforms: vec![TransformSpec {
                algorithm: names::EXC_C14N.to_owned(),
                inclusive_prefixes: Some(prefix_list.clone()),
            }],
            digest_method: names::SHA256.to_owned(),
            digest_value_b64: encode_base64(digest::digest(&digest::SHA256, &canonical).as_ref()),
        });
    }
    references.extend(attachments.iter().map(|attachment| NrReference {
        uri: format!("cid:{}", attachment.cid),
        transforms: vec![TransformSpec {
            algorithm: names::SWA_CONTENT_TRANSFORM.to_owned(),
            inclusive_prefixes: None,
        }],
        digest_method: names::SHA256.to_owned(),
        digest_value_b64: encode_base64(&attachment.sha256_digest),
    }));

    let mut signed_info = format!(
        "<ds:SignedInfo>{c14n}<ds:SignatureMethod Algorithm=\"{sm}\"/>",
        c14n = exc_c14n_with_prefixes("CanonicalizationMethod", &prefix_list),
        sm = identity.signature_method,
    );
    for reference in &references {
        push_reference(&mut signed_info, reference);
    }
    signed_info.push_str("</ds:SignedInfo>");
    let binding = binding_at(&doc, security, &prefix_list);
    let canonical = canonical_signed_info(&signed_info, &prefix_list, binding)?;
    let value = encode_base64(&identity.key.sign(&canonical)?);

    let fragment = format!(
        "<wsse:BinarySecurityToken xmlns:wsse=\"{wsse}\" xmlns:wsu=\"{wsu}\" EncodingType=\"{enc}\" ValueType=\"{vt}\" wsu:Id=\"{bst_id}\">{cert}</wsse:BinarySecurityToken><ds:Signature xmlns:ds=\"{ds}\" Id=\"{signature_id}\">{signed_info}<ds:SignatureValue>{value}</ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference xmlns:wsse=\"{wsse}\"><wsse:Reference URI=\"#{bst_id}\" ValueType=\"{vt}\"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature>",
        wsse = names::WSSE,
        wsu = names::WSU,
        enc = names::BASE64_BINARY,
        vt = names::X509V3,
        cert = encode_base64(identity.certificate()),
        ds = names::DS,
    );

    let range = doc
        .node_range(security)
        .ok_or_else(|| WssecError::SigningFailed("no source range for wsse:Security".into()))?;
    let security_source = &unsigned_xml[range.clone()];
    let mut signed = String::with_capacity(unsigned_xml.len() + fragment.len() + 32);
    if security_source.ends_with("/>") {
        let qname = doc
            .element(security)
            .map(|e| e.name.prefixed_name().into_owned())
            .unwrap_or_else(|| "wsse:Security".to_owned());
        signed.push_str(&unsigned_xml[..range.end - 2]);
        signed.push('>');
        signed.push_str(&fragment);
        signed.push_str(&format!("</{qname}>"));
        signed.push_str(&unsigned_xml[range.end..]);
    } else {
        let close = security_source
            .rfind("</")
            .ok_or_else(|| WssecError::SigningFailed("wsse:Security has no end tag".into()))?;
        let insert_at = range.start + close;
        signed.push_str(&unsigned_xml[..insert_at]);
        signed.push_str(&fragment);
        signed.push_str(&unsigned_xml[insert_at..]);
    }
    Ok(SignedEnvelope {
        xml: signed,
        references,
    })
}

/// A parsed private key kept for the life of the identity.
enum CachedKey {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl CachedKey {
    fn from_pkcs8(signature_method: &str, der: &[u8]) -> Result<Self, WssecError> {
        let bad = |e: aws_lc_rs::error::KeyRejected| WssecError::SigningKey(e.to_string());
        Ok(match signature_method {
            names::RSA_SHA256 => CachedKey::Rsa(RsaKeyPair::from_pkcs8(der).map_err(bad)?),
            names::ECDSA_SHA256 => CachedKey::Ecdsa(
                EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der)
                    .map_err(bad)?,
            ),
            _ => CachedKey::Ed25519(Ed25519KeyPair::from_pkcs8(der).map_err(bad)?),
        })
    }

    /// The XML-DSig signature value over `data`: PKCS#1 v1.5 for RSA, raw `r || s` for ECDSA,
    /// RFC 8032 for Ed25519.
    fn sign(&self, data: &[u8]) -> Result<Vec<u8>, WssecError> {
        let failed = |_| WssecError::SigningFailed("the private-key operation failed".into());
        let rng = SystemRandom::new();
        match self {
            CachedKey::Rsa(key) => {
                let mut out = vec![0u8; key.public_modulus_len()];
                key.sign(&signature::RSA_PKCS1_SHA256, &rng, data, &mut out)
                    .map_err(failed)?;
                Ok(out)
            }
            CachedKey::Ecdsa(key) => Ok(key.sign(&rng, data).map_err(failed)?.as_ref().to_vec()),
            CachedKey::Ed25519(key) => Ok(key.sign(data).as_ref().to_vec()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `canonical_signed_info` must give the bytes the whole envelope gives, whatever the
    /// envelope's prefix (including the default namespace and a prefix the signature reuses).
    #[test]
    fn signed_info_context_canonicalises_like_the_envelope() {
        let signed_info = format!(
            "<ds:SignedInfo>{}<ds:SignatureMethod Algorithm=\"{}\"/></ds:SignedInfo>",
            exc_c14n_with_prefixes("CanonicalizationMethod", "P"),
            names::EDDSA_ED25519
        );
        for (open, close, prefix) in [
            (
                "<S12:Envelope xmlns:S12=\"urn:soap\" xmlns:eb=\"urn:eb\"><S12:Header xmlns:x=\"urn:x\">",
                "</S12:Header></S12:Envelope>",
                "S12",
            ),
            (
                "<Envelope xmlns=\"urn:soap\"><Header>",
                "</Header></Envelope>",
                "#default",
            ),
            (
                "<ds:Envelope xmlns:ds=\"urn:soap\"><ds:Header>",
                "</ds:Header></ds:Envelope>",
                "ds",
            ),
            (
                "<S12:Envelope xmlns:S12=\"urn:soap\"><S12:Header>",
                "</S12:Header></S12:Envelope>",
                "absent",
            ),
        ] {
            let signed_info =
                signed_info.replace("PrefixList=\"P\"", &format!("PrefixList=\"{prefix}\""));
            let envelope = format!(
                "{open}<wsse:Security xmlns:wsse=\"urn:wsse\"><ds:Signature xmlns:ds=\"{ds}\">{signed_info}<ds:SignatureValue/></ds:Signature></wsse:Security>{close}",
                ds = names::DS
            );
            let doc = uppsala::parse(&envelope).unwrap();
            let node = descendants_named(&doc, doc.root(), names::DS, "SignedInfo")[0];
            let security = doc.parent(doc.parent(node).unwrap()).unwrap();
            let in_place = exc_c14n(&doc, node, prefix);
            let alone =
                canonical_signed_info(&signed_info, prefix, binding_at(&doc, security, prefix))
                    .unwrap();
            assert_eq!(
                String::from_utf8(alone).unwrap(),
                String::from_utf8(in_place).unwrap(),
                "prefix {prefix}"
            );
        }
    }
}
