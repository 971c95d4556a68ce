//! eDelivery AS4 2.0 key agreement: X25519 + HKDF-SHA256 + AES-128 key wrap (RFC 9231, RFC 5869,
//! RFC 3394), inbound only.
//!
//! The EncryptedKey's EncryptionMethod is `xmlenc#kw-aes128`; its KeyInfo holds an
//! `xenc:AgreementMethod Algorithm="…xmldsig-more#x25519"` with an
//! `xenc11:KeyDerivationMethod Algorithm="…xmldsig-more#hkdf"` (HKDFParams: PRF hmac-sha256,
//! optional Salt — as `Salt/Specified` or plain base64 —, optional Info, KeyLength in **bits**,
//! 128), the sender's ephemeral key in `xenc:OriginatorKeyInfo` (`dsig11:DEREncodedKeyValue`
//! SPKI, or `ds:KeyValue/dsig11:ECKeyValue/dsig11:PublicKey` raw 32 bytes) and the recipient in
//! `xenc:RecipientKeyInfo`. HKDFParams is read in the RFC 9231 namespace and, for interop with
//! early implementations, in the 2001/04 xmldsig-more namespace.

use uppsala::{Document, NodeId};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::XmlEncError;
use super::recipient::RecipientReference;
use super::uris::{
    DS_NS, DSIG_MORE_NS, DSIG11_NS, HKDF, HMAC_SHA256, KW_AES128, X25519, XENC_NS, XENC11_NS,
};
use super::xml::{child, decode_base64, single_child, text};

/// The pre-RFC 9231 "xmldsig-more" namespace some implementations put HKDFParams in.
const DSIG_MORE_2001_NS: &str = "http://www.w3.org/2001/04/xmldsig-more#";
/// OID of X25519 keys (RFC 8410).
const X25519_OID: &str = "1.3.101.110";
/// Length of an X25519 public key.
pub const X25519_PUBLIC_KEY_LEN: usize = 32;
/// HKDF output length in bits required for kw-aes128.
const KEK_BITS: u32 = 128;
/// Longest Salt / Info accepted, in bytes of base64 text.
const MAX_HKDF_PARAM_BASE64_LEN: usize = 1024;

/// Parameters of an X25519 + HKDF + kw-aes128 key agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAgreement {
    /// The sender's ephemeral X25519 public key.
    pub originator_public_key: [u8; X25519_PUBLIC_KEY_LEN],
    /// HKDF salt; `None` means the RFC 5869 default (HashLen zero bytes).
    pub salt: Option<Vec<u8>>,
    /// HKDF info; `None` means empty.
    pub info: Option<Vec<u8>>,
}

impl KeyAgreement {
    /// Reads the agreement of an EncryptedKey whose EncryptionMethod is `method`. Returns
    /// `Ok(None)` when the key is not a kw-aes128 key with an AgreementMethod.
    pub(crate) fn read(
        doc: &Document<'_>,
        method: NodeId,
        key_info: NodeId,
        security: NodeId,
    ) -> Result<Option<(Self, RecipientReference)>, XmlEncError> {
        if doc.get_attribute(method, "Algorithm") != Some(KW_AES128) {
            return Ok(None);
        }
        let Some(agreement) = single_child(doc, key_info, XENC_NS, "AgreementMethod")? else {
            return Ok(None);
        };
        match doc.get_attribute(agreement, "Algorithm") {
            Some(X25519) => {}
            other => {
                return Err(XmlEncError::UnsupportedKeyTransport(format!(
                    "key agreement {}",
                    other.unwrap_or("(none)")
                )));
            }
        }
        let derivation = single_child(doc, agreement, XENC11_NS, "KeyDerivationMethod")?
            .ok_or(XmlEncError::MissingElement("KeyDerivationMethod"))?;
        match doc.get_attribute(derivation, "Algorithm") {
            Some(HKDF) => {}
            other => {
                return Err(XmlEncError::UnsupportedKeyTransport(format!(
                    "key derivation {}",
                    other.unwrap_or("(none)")
                )));
            }
        }
        let params = child(doc, derivation, DSIG_MORE_NS, "HKDFParams")
            .or_else(|| child(doc, derivation, DSIG_MORE_2001_NS, "HKDFParams"))
            .ok_or(XmlEncError::MissingElement("HKDFParams"))?;
        let ns = doc
            .element(params)
            .and_then(|e| e.name.namespace_uri.as_deref())
            .unwrap_or(DSIG_MORE_NS);
        if let Some(prf) = single_child(doc, params, ns, "PRF")? {
            let algorithm = doc.get_attribute(prf, "Algorithm").unwrap_or("(none)");
            if algorithm != HMAC_SHA256 {
                return Err(XmlEncError::UnsupportedKeyTransport(format!(
                    "HKDF PRF {algorithm}"
                )));
            }
        }
        let salt = match single_child(doc, params, ns, "Salt")? {
            Some(salt) => {
                let value = child(doc, salt, ns, "Specified").unwrap_or(salt);
                Some(decode_base64(
                    &text(doc, value),
                    MAX_HKDF_PARAM_BASE64_LEN,
                    "Salt",
                )?)
            }
            None => None,
        };
        let info = match single_child(doc, params, ns, "Info")? {
            Some(info) => Some(decode_base64(
                &text(doc, info),
                MAX_HKDF_PARAM_BASE64_LEN,
                "Info",
            )?),
            None => None,
        };
        if let Some(length) = single_child(doc, params, ns, "KeyLength")?
            && text(doc, length).trim().parse::<u32>().ok() != Some(KEK_BITS)
        {
            return Err(XmlEncError::UnsupportedKeyTransport(
                "HKDF KeyLength other than 128 bits".to_owned(),
            ));
        }
        let originator = single_child(doc, agreement, XENC_NS, "OriginatorKeyInfo")?
            .ok_or(XmlEncError::MissingElement("OriginatorKeyInfo"))?;
        let originator_public_key = public_key_of(doc, originator)?
            .ok_or(XmlEncError::MissingElement("OriginatorKeyInfo key value"))?;
        let recipient_info = single_child(doc, agreement, XENC_NS, "RecipientKeyInfo")?
            .ok_or(XmlEncError::MissingElement("RecipientKeyInfo"))?;
        let recipient = match public_key_of(doc, recipient_info)? {
            Some(key) => RecipientReference::PublicKey(key.to_vec()),
            None => RecipientReference::read(doc, recipient_info, security)?,
        };
        Ok(Some((
            Self {
                originator_public_key,
                salt,
                info,
            },
            recipient,
        )))
    }
}

/// An X25519 public key given by value in a KeyInfo-like element, if there is one.
fn public_key_of(
    doc: &Document<'_>,
    key_info: NodeId,
) -> Result<Option<[u8; X25519_PUBLIC_KEY_LEN]>, XmlEncError> {
    if let Some(der) = child(doc, key_info, DSIG11_NS, "DEREncodedKeyValue") {
        let der = decode_base64(
            &text(doc, der),
            MAX_HKDF_PARAM_BASE64_LEN,
            "DEREncodedKeyValue",
        )?;
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(&der).map_err(|_| XmlEncError::InvalidPublicKey)?;
        if !rest.is_empty() || spki.algorithm.algorithm.to_id_string() != X25519_OID {
            return Err(XmlEncError::InvalidPublicKey);
        }
        return raw_key(&spki.subject_public_key.data).map(Some);
    }
    let Some(value) = child(doc, key_info, DS_NS, "KeyValue") else {
        return Ok(None);
    };
    let ec = child(doc, value, DSIG11_NS, "ECKeyValue")
        .ok_or(XmlEncError::MissingElement("ECKeyValue"))?;
    let public =
        child(doc, ec, DSIG11_NS, "PublicKey").ok_or(XmlEncError::MissingElement("PublicKey"))?;
    let bytes = decode_base64(&text(doc, public), MAX_HKDF_PARAM_BASE64_LEN, "PublicKey")?;
    raw_key(&bytes).map(Some)
}

fn raw_key(bytes: &[u8]) -> Result<[u8; X25519_PUBLIC_KEY_LEN], XmlEncError> {
    bytes.try_into().map_err(|_| XmlEncError::InvalidPublicKey)
}
