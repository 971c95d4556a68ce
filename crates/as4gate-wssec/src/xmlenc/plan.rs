//! Reading the encryption part of a `wsse:Security` header into an [`EncryptionPlan`].
//!
//! AS4 encrypts MIME attachment bodies only (WSS SwA profile 1.1 §5.4, eDelivery AS4 1.15
//! §3.2): each `xenc:EncryptedData` has Type `Attachment-Content-Only`, a `cid:`
//! CipherReference with the `Attachment-Ciphertext-Transform`, and is listed in the
//! `xenc:ReferenceList` of an `xenc:EncryptedKey` carrying the wrapped AES key. Everything else
//! is refused here, before any private-key operation: other EncryptedData types, inline cipher
//! data, EncryptedData outside the Security header, references to Body or `eb:Messaging`,
//! EncryptedData no key lists, unknown algorithms, and counts above [`PlanLimits`].

use uppsala::{Document, NodeId};

use super::agreement::KeyAgreement;
use super::error::XmlEncError;
use super::recipient::{OwnCertificate, RecipientReference};
use super::uris::{
    AES128_GCM, ATTACHMENT_CIPHERTEXT_TRANSFORM, DIGEST_SHA1, DIGEST_SHA256, DS_NS, EBMS_NS,
    MGF1_SHA1, MGF1_SHA256, RSA_OAEP_MGF1P, RSA_OAEP_XENC11, SOAP11_NS, SOAP12_NS,
    TYPE_ATTACHMENT_COMPLETE, TYPE_ATTACHMENT_CONTENT_ONLY, WSSE_NS, XENC_NS, XENC11_NS,
};
use super::xml::{child, decode_base64, id_of, percent_decode, single_child, text};

/// Bounds applied while reading a Security header. Defaults suit AS4 (one key, a few payloads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanLimits {
    /// Most `xenc:EncryptedKey` elements accepted. Default 4 (AS4 sends one).
    pub max_encrypted_keys: usize,
    /// Most `xenc:EncryptedData` elements (= encrypted attachments). Default 256.
    pub max_encrypted_data: usize,
    /// Largest decoded CipherValue of an EncryptedKey, in bytes. Default 1024 (RSA-8192).
    pub max_cipher_value_bytes: usize,
}

impl Default for PlanLimits {
    fn default() -> Self {
        Self {
            max_encrypted_keys: 4,
            max_encrypted_data: 256,
            max_cipher_value_bytes: 1024,
        }
    }
}

/// Hash function used by RSA-OAEP for both the label digest and MGF1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OaepDigest {
    /// SHA-1 / MGF1-SHA1 (`xmlenc#rsa-oaep-mgf1p`, or xenc11 rsa-oaep with defaults).
    Sha1,
    /// SHA-256 / MGF1-SHA256 (eDelivery AS4 1.15).
    Sha256,
}

/// How the content-encryption key is carried.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyTransport {
    /// RSA-OAEP key transport to the recipient's RSA certificate.
    RsaOaep {
        /// Digest and MGF1 hash (only equal pairs are supported by aws-lc-rs).
        digest: OaepDigest,
        /// `xenc:OAEPparams` (the OAEP label), if present.
        label: Option<Vec<u8>>,
    },
    /// eDelivery AS4 2.0: X25519 agreement, HKDF-SHA256, AES-128 key wrap.
    X25519HkdfKeyWrap(KeyAgreement),
    /// eDelivery AS4 2.0 Alternative EC profile: ECDH-ES over P-256, HKDF-SHA256, AES-128 key
    /// wrap.
    EcdhEsP256HkdfKeyWrap(KeyAgreement),
}

/// One `xenc:EncryptedKey` of the header.
#[derive(Debug, Clone)]
pub struct EncryptedKey {
    /// The `Id` attribute, if any.
    pub id: Option<String>,
    /// Key transport algorithm and parameters.
    pub transport: KeyTransport,
    /// The `ds:KeyInfo` node, for callers that resolve the token themselves.
    pub key_info: NodeId,
    /// The recipient certificate the key is addressed to.
    pub recipient: RecipientReference,
    /// The decoded CipherValue (wrapped key).
    pub cipher_value: Vec<u8>,
    /// Ids (without `#`) from the `xenc:ReferenceList`.
    pub data_references: Vec<String>,
}

/// Data encryption algorithm of an attachment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DataEncryption {
    /// `xenc11#aes128-gcm`, body = IV(12) || ciphertext || tag(16).
    Aes128Gcm,
}

/// One encrypted attachment (`xenc:EncryptedData`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedPart {
    /// The `Id` attribute.
    pub id: String,
    /// `@MimeType`: the content type of the plaintext part (the MIME part itself is
    /// `application/octet-stream` on the wire). `None` when the sender omitted it.
    pub mime_type: Option<String>,
    /// The Content-ID of the MIME part holding the cipher text (the `cid:` URL, decoded,
    /// without `cid:` and without angle brackets).
    pub content_id: String,
    /// The data encryption algorithm.
    pub algorithm: DataEncryption,
    /// Index into [`EncryptionPlan::keys`] of the key that lists this part.
    pub key: usize,
}

/// Everything the Security header says about encryption, checked against the AS4 profile.
#[derive(Debug, Clone)]
pub struct EncryptionPlan {
    keys: Vec<EncryptedKey>,
    parts: Vec<EncryptedPart>,
}

impl EncryptionPlan {
    /// Reads the plan from the `wsse:Security` element `security` with default [`PlanLimits`].
    ///
    /// # Errors
    /// The [`XmlEncError`] naming the first profile violation found.
    pub fn read(doc: &Document<'_>, security: NodeId) -> Result<Self, XmlEncError> {
        Self::read_with_limits(doc, security, &PlanLimits::default())
    }

    /// Reads the plan with explicit limits.
    ///
    /// # Errors
    /// The [`XmlEncError`] naming the first profile violation found.
    pub fn read_with_limits(
        doc: &Document<'_>,
        security: NodeId,
        limits: &PlanLimits,
    ) -> Result<Self, XmlEncError> {
        let mut key_nodes = Vec::new();
        let mut data_nodes = Vec::new();
        for node in doc.children_iter(security) {
            let Some(element) = doc.element(node) else {
                continue;
            };
            if element.matches_name_ns(XENC_NS, "EncryptedKey") {
                key_nodes.push(node);
                if key_nodes.len() > limits.max_encrypted_keys {
                    return Err(XmlEncError::TooManyEncryptedKeys {
                        limit: limits.max_encrypted_keys,
                    });
                }
            } else if element.matches_name_ns(XENC_NS, "EncryptedData") {
                data_nodes.push(node);
                if data_nodes.len() > limits.max_encrypted_data {
                    return Err(XmlEncError::TooManyEncryptedData {
                        limit: limits.max_encrypted_data,
                    });
                }
            }
        }
        refuse_encrypted_data_elsewhere(doc, security)?;

        let mut parts = Vec::with_capacity(data_nodes.len());
        let mut key_refs = Vec::with_capacity(data_nodes.len());
        for node in &data_nodes {
            let (part, key_ref) = read_encrypted_data(doc, *node)?;
            if parts
                .iter()
                .any(|p: &EncryptedPart| p.id == part.id || p.content_id == part.content_id)
            {
                return Err(XmlEncError::DuplicateEncryptedData(part.id));
            }
            parts.push(part);
            key_refs.push(key_ref);
        }

        let mut keys = Vec::with_capacity(key_nodes.len());
        let mut listed = vec![false; parts.len()];
        for (key_index, node) in key_nodes.iter().enumerate() {
            let key = read_encrypted_key(doc, *node, security, limits)?;
            for reference in &key.data_references {
                let Some(part_index) = parts.iter().position(|p| &p.id == reference) else {
                    return Err(classify_dangling(doc, reference));
                };
                if listed[part_index] {
                    return Err(XmlEncError::DataReferencedTwice(reference.clone()));
                }
                listed[part_index] = true;
                parts[part_index].key = key_index;
                if let Some(named) = &key_refs[part_index]
                    && key.id.as_deref() != Some(named.as_str())
                {
                    return Err(XmlEncError::KeyReferenceMismatch(reference.clone()));
                }
            }
            keys.push(key);
        }
        if let Some(unlisted) = listed.iter().position(|l| !l) {
            return Err(XmlEncError::UnreferencedEncryptedData(
                parts[unlisted].id.clone(),
            ));
        }
        Ok(Self { keys, parts })
    }

    /// All EncryptedKeys, in document order.
    pub fn keys(&self) -> &[EncryptedKey] {
        &self.keys
    }

    /// All encrypted attachments, in document order.
    pub fn parts(&self) -> &[EncryptedPart] {
        &self.parts
    }

    /// The encrypted attachment whose cipher text is the MIME part `content_id`
    /// (without `cid:` and angle brackets).
    pub fn part_for_content_id(&self, content_id: &str) -> Option<&EncryptedPart> {
        self.parts.iter().find(|p| p.content_id == content_id)
    }

    /// Whether the header encrypts nothing.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.parts.is_empty()
    }

    /// Picks the EncryptedKey addressed to one of our certificates, returning it and the
    /// index into `own_certificates` of the certificate whose private key must unwrap it.
    ///
    /// # Errors
    /// [`XmlEncError::NoKeyForOurCertificate`] when no key names one of them.
    pub fn key_for_certificate(
        &self,
        own_certificates: &[&OwnCertificate],
    ) -> Result<(&EncryptedKey, usize), XmlEncError> {
        for key in &self.keys {
            if let Some(index) = own_certificates
                .iter()
                .position(|own| key.recipient.matches(own))
            {
                return Ok((key, index));
            }
        }
        Err(XmlEncError::NoKeyForOurCertificate)
    }

    /// The attachments protected by `key`, which must be one of [`Self::keys`] of this plan
    /// (as returned by [`Self::key_for_certificate`]); any other reference yields nothing.
    pub fn parts_of(&self, key: &EncryptedKey) -> impl Iterator<Item = &EncryptedPart> {
        let index = self.keys.iter().position(|k| std::ptr::eq(k, key));
        self.parts.iter().filter(move |p| Some(p.key) == index)
    }
}

fn refuse_encrypted_data_elsewhere(
    doc: &Document<'_>,
    security: NodeId,
) -> Result<(), XmlEncError> {
    for node in doc.get_elements_by_tag_name_ns(XENC_NS, "EncryptedData") {
        if doc.parent(node) != Some(security) {
            return Err(
                match doc
                    .ancestors(node)
                    .into_iter()
                    .find_map(|a| soap_role(doc, a))
                {
                    Some(violation) => violation,
                    None => XmlEncError::EncryptedDataOutsideSecurityHeader,
                },
            );
        }
    }
    Ok(())
}

/// Body / Messaging classification of an element, as the error its encryption would be.
fn soap_role(doc: &Document<'_>, node: NodeId) -> Option<XmlEncError> {
    let element = doc.element(node)?;
    if element.matches_name_ns(SOAP12_NS, "Body") || element.matches_name_ns(SOAP11_NS, "Body") {
        Some(XmlEncError::BodyEncrypted)
    } else if element.matches_name_ns(EBMS_NS, "Messaging") {
        Some(XmlEncError::MessagingEncrypted)
    } else {
        None
    }
}

fn classify_dangling(doc: &Document<'_>, reference: &str) -> XmlEncError {
    let target = doc
        .descendants(doc.root())
        .into_iter()
        .find(|node| id_of(doc, *node) == Some(reference));
    target
        .and_then(|node| soap_role(doc, node))
        .unwrap_or_else(|| XmlEncError::DanglingDataReference(reference.to_owned()))
}

fn algorithm_of<'d>(
    doc: &'d Document<'_>,
    parent: NodeId,
    ns: &str,
    local: &'static str,
) -> Result<Option<&'d str>, XmlEncError> {
    match single_child(doc, parent, ns, local)? {
        None => Ok(None),
        Some(node) => {
            doc.get_attribute(node, "Algorithm")
                .map(Some)
                .ok_or(XmlEncError::MissingAttribute {
                    element: local,
                    attribute: "Algorithm",
                })
        }
    }
}

fn read_encrypted_data(
    doc: &Document<'_>,
    node: NodeId,
) -> Result<(EncryptedPart, Option<String>), XmlEncError> {
    let id = id_of(doc, node).ok_or(XmlEncError::MissingAttribute {
        element: "EncryptedData",
        attribute: "Id",
    })?;
    match doc.get_attribute(node, "Type") {
        Some(TYPE_ATTACHMENT_CONTENT_ONLY) => {}
        Some(TYPE_ATTACHMENT_COMPLETE) => return Err(XmlEncError::AttachmentCompleteNotAccepted),
        Some(other) => return Err(XmlEncError::UnsupportedEncryptedDataType(other.to_owned())),
        None => {
            return Err(XmlEncError::MissingAttribute {
                element: "EncryptedData",
                attribute: "Type",
            });
        }
    }
    let algorithm = match algorithm_of(doc, node, XENC_NS, "EncryptionMethod")? {
        Some(AES128_GCM) => DataEncryption::Aes128Gcm,
        Some(other) => return Err(XmlEncError::UnsupportedDataEncryption(other.to_owned())),
        None => return Err(XmlEncError::MissingElement("EncryptionMethod")),
    };
    let cipher_data = single_child(doc, node, XENC_NS, "CipherData")?
        .ok_or(XmlEncError::MissingElement("CipherData"))?;
    if child(doc, cipher_data, XENC_NS, "CipherValue").is_some() {
        return Err(XmlEncError::InlineCipherData);
    }
    let reference = single_child(doc, cipher_data, XENC_NS, "CipherReference")?
        .ok_or(XmlEncError::MissingElement("CipherReference"))?;
    let uri = doc
        .get_attribute(reference, "URI")
        .ok_or(XmlEncError::MissingAttribute {
            element: "CipherReference",
            attribute: "URI",
        })?;
    let content_id = uri
        .strip_prefix("cid:")
        .and_then(percent_decode)
        .filter(|cid| !cid.is_empty())
        .ok_or(XmlEncError::CipherReferenceNotCid)?;
    if let Some(transforms) = single_child(doc, reference, XENC_NS, "Transforms")? {
        for transform in doc.children_iter(transforms) {
            if doc.element(transform).is_none() {
                continue;
            }
            let algorithm = doc.get_attribute(transform, "Algorithm").unwrap_or("");
            if algorithm != ATTACHMENT_CIPHERTEXT_TRANSFORM {
                return Err(XmlEncError::UnsupportedTransform(algorithm.to_owned()));
            }
        }
    }
    let key_ref = single_child(doc, node, DS_NS, "KeyInfo")?
        .and_then(|info| child(doc, info, WSSE_NS, "SecurityTokenReference"))
        .and_then(|str_node| child(doc, str_node, WSSE_NS, "Reference"))
        .and_then(|r| doc.get_attribute(r, "URI"))
        .and_then(|uri| uri.strip_prefix('#'))
        .map(str::to_owned);
    Ok((
        EncryptedPart {
            id: id.to_owned(),
            mime_type: doc.get_attribute(node, "MimeType").map(str::to_owned),
            content_id,
            algorithm,
            key: 0,
        },
        key_ref,
    ))
}

fn read_rsa_oaep(
    doc: &Document<'_>,
    method: NodeId,
    algorithm: &str,
) -> Result<KeyTransport, XmlEncError> {
    let digest = algorithm_of(doc, method, DS_NS, "DigestMethod")?.unwrap_or(DIGEST_SHA1);
    let mgf = if algorithm == RSA_OAEP_XENC11 {
        algorithm_of(doc, method, XENC11_NS, "MGF")?.unwrap_or(MGF1_SHA1)
    } else {
        // rsa-oaep-mgf1p fixes MGF1 to SHA-1; an MGF element would contradict it.
        if single_child(doc, method, XENC11_NS, "MGF")?.is_some() {
            return Err(XmlEncError::UnsupportedKeyTransport(format!(
                "{algorithm} with MGF"
            )));
        }
        MGF1_SHA1
    };
    let digest = match (digest, mgf) {
        (DIGEST_SHA1, MGF1_SHA1) => OaepDigest::Sha1,
        (DIGEST_SHA256, MGF1_SHA256) => OaepDigest::Sha256,
        (digest, mgf) => {
            return Err(XmlEncError::UnsupportedKeyTransport(format!(
                "{algorithm} digest {digest} mgf {mgf}"
            )));
        }
    };
    let label = match single_child(doc, method, XENC_NS, "OAEPparams")? {
        Some(params) => Some(decode_base64(&text(doc, params), 1024, "OAEPparams")?),
        None => None,
    };
    Ok(KeyTransport::RsaOaep { digest, label })
}

fn read_encrypted_key(
    doc: &Document<'_>,
    node: NodeId,
    security: NodeId,
    limits: &PlanLimits,
) -> Result<EncryptedKey, XmlEncError> {
    let method = single_child(doc, node, XENC_NS, "EncryptionMethod")?
        .ok_or(XmlEncError::MissingElement("EncryptionMethod"))?;
    let algorithm =
        doc.get_attribute(method, "Algorithm")
            .ok_or(XmlEncError::MissingAttribute {
                element: "EncryptionMethod",
                attribute: "Algorithm",
            })?;
    let key_info =
        single_child(doc, node, DS_NS, "KeyInfo")?.ok_or(XmlEncError::MissingElement("KeyInfo"))?;
    let (transport, recipient) = match algorithm {
        RSA_OAEP_XENC11 | RSA_OAEP_MGF1P => (
            read_rsa_oaep(doc, method, algorithm)?,
            RecipientReference::read(doc, key_info, security)?,
        ),
        other => match KeyAgreement::read(doc, method, key_info, security)? {
            Some(transport_and_recipient) => transport_and_recipient,
            None => return Err(XmlEncError::UnsupportedKeyTransport(other.to_owned())),
        },
    };
    let cipher_data = single_child(doc, node, XENC_NS, "CipherData")?
        .ok_or(XmlEncError::MissingElement("CipherData"))?;
    let cipher_value = single_child(doc, cipher_data, XENC_NS, "CipherValue")?
        .ok_or(XmlEncError::MissingElement("CipherValue"))?;
    // base64 expands 3 bytes to 4 characters; allow generous whitespace around line breaks.
    let too_long = XmlEncError::CipherValueTooLong {
        limit: limits.max_cipher_value_bytes,
    };
    let max_text = limits
        .max_cipher_value_bytes
        .saturating_mul(2)
        .saturating_add(64);
    let cipher_text = text(doc, cipher_value);
    if cipher_text.len() > max_text {
        return Err(too_long);
    }
    let cipher_value = decode_base64(&cipher_text, max_text, "CipherValue")?;
    if cipher_value.len() > limits.max_cipher_value_bytes {
        return Err(too_long);
    }
    let mut data_references = Vec::new();
    if let Some(list) = single_child(doc, node, XENC_NS, "ReferenceList")? {
        for reference in doc.child_elements_by_name_ns(list, XENC_NS, "DataReference") {
            if data_references.len() == limits.max_encrypted_data {
                return Err(XmlEncError::TooManyDataReferences {
                    limit: limits.max_encrypted_data,
                });
            }
            let uri = doc
                .get_attribute(reference, "URI")
                .ok_or(XmlEncError::MissingAttribute {
                    element: "DataReference",
                    attribute: "URI",
                })?;
            let id = uri
                .strip_prefix('#')
                .ok_or_else(|| XmlEncError::DanglingDataReference(uri.to_owned()))?;
            data_references.push(id.to_owned());
        }
    }
    Ok(EncryptedKey {
        id: id_of(doc, node).map(str::to_owned),
        transport,
        key_info,
        recipient,
        cipher_value,
        data_references,
    })
}
