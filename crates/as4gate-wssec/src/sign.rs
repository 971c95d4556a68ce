//! Outbound signing of an AS4 envelope, shaped like WSS4J's output so Domibus, phase4 and
//! Holodeck accept it.
//!
//! Into the existing `wsse:Security` header we append a `wsse:BinarySecurityToken` (X509v3)
//! and a `ds:Signature` with Exclusive C14N (`ec:InclusiveNamespaces PrefixList` naming the
//! SOAP envelope prefix, as WSS4J does), the signature algorithm chosen by key type
//! (RSA-SHA256, ECDSA-SHA256 or Ed25519), SHA-256 digests, a reference to `eb:Messaging`, one
//! to the SOAP Body and one per attachment (`cid:` + SwA content transform, digest computed by
//! us and pre-filled; the engine then signs `SignedInfo` including it), and KeyInfo =
//! SecurityTokenReference → BST. Private-key operations run on aws-lc (bergshamra's `aws-lc`
//! provider).

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::model::NrReference;
use std::sync::Arc;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, RsaKeyPair};
use bergshamra::{DsigContext, KeysManager};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::signed_info::{ParsedSignature, same_document_id};
use crate::swa::digest_bytes;
use crate::xml_util::{descendants_named, encode_base64, escape};
use crate::{WssecError, names};

/// OID of rsaEncryption.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// OID of id-ecPublicKey.
const OID_EC: &str = "1.2.840.10045.2.1";
/// OID of the P-256 curve.
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// Base64 characters per PEM line (RFC 7468 strict form).
const PEM_LINE: usize = 64;
/// OID of Ed25519.
const OID_ED25519: &str = "1.3.101.112";

/// Our private key and certificate.
///
/// The key is parsed once into an aws-lc key object and kept: RSA key checks and blinding
/// set-up then happen once, not on every receipt (they cost as much as the signature itself).
pub struct SigningIdentity {
    key: Arc<CachedKey>,
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
        let signature_method = match spki.algorithm.algorithm.to_id_string().as_str() {
            OID_RSA => names::RSA_SHA256,
            OID_ED25519 => names::EDDSA_ED25519,
            OID_EC => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.as_oid().ok())
                    .map(|o| o.to_id_string());
                if curve.as_deref() != Some(OID_P256) {
                    return Err(WssecError::SigningKey(format!(
                        "EC curve {curve:?} is not P-256"
                    )));
                }
                names::ECDSA_SHA256
            }
            other => {
                return Err(WssecError::SigningKey(format!(
                    "unsupported key algorithm {other}"
                )));
            }
        };
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
            key: Arc::new(key),
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

/// A signed envelope; [`SignedEnvelope::references`] reads back what a receipt for it must
/// echo (only a sender needs that, so it is not computed for every receipt we sign).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedEnvelope {
    /// The signed SOAP envelope.
    pub xml: String,
    signature_id: String,
}

impl SignedEnvelope {
    /// Our signature's references, in signature order.
    pub fn references(&self) -> Result<Vec<NrReference>, WssecError> {
        let signed = uppsala::parse(&self.xml).map_err(|e| {
            WssecError::SigningFailed(format!("signed envelope does not parse: {e}"))
        })?;
        let signature = descendants_named(&signed, signed.root(), names::DS, "Signature")
            .into_iter()
            .find(|s| signed.get_attribute(*s, "Id") == Some(self.signature_id.as_str()))
            .ok_or_else(|| WssecError::SigningFailed("signature vanished".into()))?;
        Ok(ParsedSignature::read(&signed, signature, usize::MAX)?.references)
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

fn same_document_reference(id: &str, prefix_list: &str) -> String {
    format!(
        "<ds:Reference URI=\"#{id}\"><ds:Transforms>{t}</ds:Transforms><ds:DigestMethod Algorithm=\"{sha}\"/><ds:DigestValue></ds:DigestValue></ds:Reference>",
        t = exc_c14n_with_prefixes("Transform", prefix_list),
        sha = names::SHA256,
    )
}

fn attachment_reference(attachment: &AttachmentToSign) -> String {
    format!(
        "<ds:Reference URI=\"cid:{cid}\"><ds:Transforms><ds:Transform Algorithm=\"{swa}\"/></ds:Transforms><ds:DigestMethod Algorithm=\"{sha}\"/><ds:DigestValue>{d}</ds:DigestValue></ds:Reference>",
        cid = escape(&attachment.cid),
        swa = names::SWA_CONTENT_TRANSFORM,
        sha = names::SHA256,
        d = encode_base64(&attachment.sha256_digest),
    )
}

/// Sign `unsigned_xml` (an envelope with an empty or partly filled `wsse:Security` header and
/// `wsu:Id`s on `eb:Messaging` and the Body) with `identity`, covering `attachments`.
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

    let mut fragment = format!(
        "<wsse:BinarySecurityToken xmlns:wsse=\"{wsse}\" xmlns:wsu=\"{wsu}\" EncodingType=\"{enc}\" ValueType=\"{vt}\" wsu:Id=\"{bst_id}\">{cert}</wsse:BinarySecurityToken>",
        wsse = names::WSSE,
        wsu = names::WSU,
        enc = names::BASE64_BINARY,
        vt = names::X509V3,
        cert = encode_base64(identity.certificate()),
    );
    fragment.push_str(&format!(
        "<ds:Signature xmlns:ds=\"{ds}\" Id=\"{signature_id}\"><ds:SignedInfo>{c14n}<ds:SignatureMethod Algorithm=\"{sm}\"/>{mref}{bref}",
        ds = names::DS,
        c14n = exc_c14n_with_prefixes("CanonicalizationMethod", &prefix_list),
        sm = identity.signature_method,
        mref = same_document_reference(&messaging_id, &prefix_list),
        bref = same_document_reference(&body_id, &prefix_list),
    ));
    for attachment in attachments {
        fragment.push_str(&attachment_reference(attachment));
    }
    fragment.push_str(&format!(
        "</ds:SignedInfo><ds:SignatureValue></ds:SignatureValue><ds:KeyInfo><wsse:SecurityTokenReference xmlns:wsse=\"{wsse}\"><wsse:Reference URI=\"#{bst_id}\" ValueType=\"{vt}\"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature>",
        wsse = names::WSSE,
        vt = names::X509V3,
    ));

    let range = doc
        .node_range(security)
        .ok_or_else(|| WssecError::SigningFailed("no source range for wsse:Security".into()))?;
    let security_source = &unsigned_xml[range.clone()];
    let template = if security_source.ends_with("/>") {
        let qname = doc
            .element(security)
            .map(|e| e.name.prefixed_name().into_owned())
            .unwrap_or_else(|| "wsse:Security".to_owned());
        format!(
            "{}>{fragment}</{qname}>{}",
            &unsigned_xml[..range.end - 2],
            &unsigned_xml[range.end..]
        )
    } else {
        let close = security_source
            .rfind("</")
            .ok_or_else(|| WssecError::SigningFailed("wsse:Security has no end tag".into()))?;
        let at = range.start + close;
        format!("{}{fragment}{}", &unsigned_xml[..at], &unsigned_xml[at..])
    };
    drop(doc);

    let ctx = DsigContext::new(KeysManager::new())
        .with_hsm_signer(Box::new(KeySigner(identity.key.clone())));
    let xml =
        bergshamra::sign(&ctx, &template).map_err(|e| WssecError::SigningFailed(e.to_string()))?;

    Ok(SignedEnvelope { xml, signature_id })
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
}

/// Hands the cached key to bergshamra through its external-signer hook: bergshamra builds and
/// canonicalises `SignedInfo`, we produce the signature value (XML-DSig form: PKCS#1 v1.5 for
/// RSA, raw `r || s` for ECDSA, RFC 8032 for Ed25519).
struct KeySigner(Arc<CachedKey>);

impl kryptering::Signer for KeySigner {
    fn algorithm(&self) -> kryptering::SignatureAlgorithm {
        use kryptering::{EcCurve, HashAlgorithm, SignatureAlgorithm};
        match &*self.0 {
            CachedKey::Rsa(_) => SignatureAlgorithm::RsaPkcs1v15(HashAlgorithm::Sha256),
            CachedKey::Ecdsa(_) => SignatureAlgorithm::Ecdsa(EcCurve::P256, HashAlgorithm::Sha256),
            CachedKey::Ed25519(_) => SignatureAlgorithm::Ed25519,
        }
    }

    fn sign(&self, data: &[u8]) -> kryptering::Result<Vec<u8>> {
        let failed = |_| kryptering::Error::Crypto("signing failed".into());
        let rng = SystemRandom::new();
        match &*self.0 {
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
