//! Key agreement of the content-encryption key: ephemeral-static ECDH, HKDF-SHA256 and AES-128
//! key wrap (RFC 9231, RFC 5869, RFC 3394), read inbound and written outbound.
//!
//! Two agreements are supported, both with the same derivation and wrap:
//! - eDelivery AS4 2.0 Common Usage Profile: `xmldsig-more#x25519` (X25519, RFC 7748);
//! - the AS4 2.0 Alternative EC profile: `xmlenc11#ECDH-ES` over P-256 (prime256v1). Brainpool
//!   curves, which that profile also allows, are not supported (aws-lc has no brainpool ECDH).
//!
//! The EncryptedKey's EncryptionMethod is `xmlenc#kw-aes128`; its KeyInfo holds an
//! `xenc:AgreementMethod` with an `xenc11:KeyDerivationMethod Algorithm="…xmldsig-more#hkdf"`
//! (HKDFParams: PRF hmac-sha256, optional Salt — as `Salt/Specified` or plain base64 —,
//! optional Info, KeyLength 128 in bits — or 16, the byte count Santuario writes), the
//! sender's ephemeral key in
//! `xenc:OriginatorKeyInfo` and the recipient in `xenc:RecipientKeyInfo`.
//!
//! Inbound, the ephemeral key may be a `dsig11:DEREncodedKeyValue` (SubjectPublicKeyInfo) or a
//! `ds:KeyValue/dsig11:ECKeyValue/dsig11:PublicKey` (raw X25519 key, or uncompressed P-256
//! point with `NamedCurve` prime256v1); a well-formed key of another type or curve is refused as
//! an unsupported agreement, a malformed one (or a P-256 point not on the curve) as an invalid
//! key. HKDFParams is read in the RFC 9231 namespace and, for interop with early
//! implementations, in the 2001/04 xmldsig-more namespace.
//!
//! Outbound ([`agreement_method_xml`]) we write what Apache Santuario (the XML-security engine
//! under Domibus and phase4) writes and reads: HKDFParams in the RFC 9231 namespace with PRF
//! hmac-sha256, a fresh 32-byte Salt as plain base64 text (Santuario reads only the Salt's
//! own text, so a `Salt/Specified` wrapper would derive a different key there), no Info and
//! `KeyLength` 16 (bytes, as Santuario's `HKDFParamsImpl` writes it); the ephemeral key as
//! `DEREncodedKeyValue`. go-as4 reads KeyLength as bits and a Salt only inside `Specified`, so
//! it cannot read Santuario's form either; we follow the engine most partners run.

use aws_lc_rs::agreement;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uppsala::{Document, NodeId};
use x509_parser::prelude::FromDer;
use x509_parser::x509::SubjectPublicKeyInfo;

use super::error::XmlEncError;
use super::plan::KeyTransport;
use super::recipient::RecipientReference;
use super::uris::{
    DS_NS, DSIG_MORE_NS, DSIG11_NS, ECDH_ES, HKDF, HMAC_SHA256, KW_AES128, X25519, XENC_NS,
    XENC11_NS,
};
use super::xml::{child, decode_base64, single_child, text};
use crate::key_kind;

/// The pre-RFC 9231 "xmldsig-more" namespace some implementations put HKDFParams in.
const DSIG_MORE_2001_NS: &str = "http://www.w3.org/2001/04/xmldsig-more#";
/// `dsig11:NamedCurve/@URI` of P-256.
const P256_CURVE_URI: &str = "urn:oid:1.2.840.10045.3.1.7";
/// Length of an X25519 public key.
pub const X25519_PUBLIC_KEY_LEN: usize = 32;
/// Length of an uncompressed P-256 point (`04 || X || Y`).
pub const P256_PUBLIC_KEY_LEN: usize = 65;
/// Length of the random HKDF salt we send (the SHA-256 output length, as RFC 5869 recommends).
pub const HKDF_SALT_LEN: usize = 32;
/// HKDF output length in bits required for kw-aes128.
const KEK_BITS: u32 = 128;
/// The same length in bytes, as Apache Santuario writes it.
const KEK_BYTES: u32 = 16;
/// Longest Salt / Info / key value accepted, in bytes of base64 text.
const MAX_HKDF_PARAM_BASE64_LEN: usize = 1024;

/// The curve of an ephemeral-static key agreement, as named by `AgreementMethod/@Algorithm`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Curve {
    /// `xmldsig-more#x25519`.
    X25519,
    /// `xmlenc11#ECDH-ES` over P-256.
    P256,
}

impl Curve {
    /// The AgreementMethod algorithm URI.
    fn uri(self) -> &'static str {
        match self {
            Self::X25519 => X25519,
            Self::P256 => ECDH_ES,
        }
    }

    /// The aws-lc-rs agreement algorithm.
    pub(crate) fn algorithm(self) -> &'static agreement::Algorithm {
        match self {
            Self::X25519 => &agreement::X25519,
            Self::P256 => &agreement::ECDH_P256,
        }
    }

    /// The curve of a certificate's SubjectPublicKeyInfo, `None` when it is no key-agreement key
    /// (RSA, Ed25519, …).
    ///
    /// # Errors
    /// [`XmlEncError::UnsupportedKeyTransport`] for an EC key on a curve other than P-256.
    pub(crate) fn of_spki(spki: &SubjectPublicKeyInfo<'_>) -> Result<Option<Self>, XmlEncError> {
        match key_kind::algorithm_oid(spki).as_str() {
            key_kind::OID_X25519 => Ok(Some(Self::X25519)),
            key_kind::OID_EC => {
                let curve = key_kind::named_curve(spki);
                match curve.as_deref() {
                    Some(key_kind::OID_P256) => Ok(Some(Self::P256)),
                    other => Err(XmlEncError::UnsupportedKeyTransport(format!(
                        "ECDH-ES over curve {}",
                        other.unwrap_or("(unnamed)")
                    ))),
                }
            }
            _ => Ok(None),
        }
    }

    /// Checks raw public-key bytes for this curve and returns them.
    fn check_key(self, bytes: &[u8]) -> Result<Vec<u8>, XmlEncError> {
        match self {
            Self::X25519 if bytes.len() == X25519_PUBLIC_KEY_LEN => Ok(bytes.to_vec()),
            Self::P256 if bytes.len() == P256_PUBLIC_KEY_LEN && bytes[0] == 0x04 => {
                // Parsing validates that the point lies on the curve.
                agreement::ParsedPublicKey::try_from(&agreement::UnparsedPublicKey::new(
                    &agreement::ECDH_P256,
                    bytes,
                ))
                .map_err(|_| XmlEncError::InvalidPublicKey)?;
                Ok(bytes.to_vec())
            }
            _ => Err(XmlEncError::InvalidPublicKey),
        }
    }

    /// The key of a SubjectPublicKeyInfo (DER), which must be of this curve.
    fn key_from_spki(self, der: &[u8]) -> Result<Vec<u8>, XmlEncError> {
        let (rest, spki) =
            SubjectPublicKeyInfo::from_der(der).map_err(|_| XmlEncError::InvalidPublicKey)?;
        if !rest.is_empty() {
            return Err(XmlEncError::InvalidPublicKey);
        }
        if Self::of_spki(&spki)? != Some(self) {
            return Err(XmlEncError::UnsupportedKeyTransport(format!(
                "{} agreement with a key of type {}",
                self.uri(),
                spki.algorithm.algorithm.to_id_string()
            )));
        }
        self.check_key(&spki.subject_public_key.data)
    }

    /// The transport variant carrying an agreement on this curve.
    fn transport(self, agreement: KeyAgreement) -> KeyTransport {
        match self {
            Self::X25519 => KeyTransport::X25519HkdfKeyWrap(agreement),
            Self::P256 => KeyTransport::EcdhEsP256HkdfKeyWrap(agreement),
        }
    }
}

/// Parameters of an ephemeral-static key agreement + HKDF-SHA256 + kw-aes128 (the curve is
/// given by the [`KeyTransport`] variant holding it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAgreement {
    /// The sender's ephemeral public key: the raw 32 bytes for X25519
    /// ([`X25519_PUBLIC_KEY_LEN`]), the uncompressed point for P-256 ([`P256_PUBLIC_KEY_LEN`]).
    pub originator_public_key: Vec<u8>,
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
    ) -> Result<Option<(KeyTransport, RecipientReference)>, XmlEncError> {
        if doc.get_attribute(method, "Algorithm") != Some(KW_AES128) {
            return Ok(None);
        }
        let Some(agreement) = single_child(doc, key_info, XENC_NS, "AgreementMethod")? else {
            return Ok(None);
        };
        let curve = match doc.get_attribute(agreement, "Algorithm") {
            Some(X25519) => Curve::X25519,
            Some(ECDH_ES) => Curve::P256,
            other => {
                return Err(XmlEncError::UnsupportedKeyTransport(format!(
                    "key agreement {}",
                    other.unwrap_or("(none)")
                )));
            }
        };
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
        // KeyLength 128 is bits (go-as4, RFC 9231 examples); Apache Santuario (under Domibus
        // and phase4) writes the same length in bytes, 16. Both mean the 128-bit KEK.
        if let Some(length) = single_child(doc, params, ns, "KeyLength")?
            && !matches!(
                text(doc, length).trim().parse::<u32>().ok(),
                Some(KEK_BITS | KEK_BYTES)
            )
        {
            return Err(XmlEncError::UnsupportedKeyTransport(
                "HKDF KeyLength other than 128 bits (or 16 bytes)".to_owned(),
            ));
        }
        let originator = single_child(doc, agreement, XENC_NS, "OriginatorKeyInfo")?
            .ok_or(XmlEncError::MissingElement("OriginatorKeyInfo"))?;
        let originator_public_key = public_key_of(doc, originator, curve)?
            .ok_or(XmlEncError::MissingElement("OriginatorKeyInfo key value"))?;
        let recipient_info = single_child(doc, agreement, XENC_NS, "RecipientKeyInfo")?
            .ok_or(XmlEncError::MissingElement("RecipientKeyInfo"))?;
        let recipient = match public_key_of(doc, recipient_info, curve)? {
            Some(key) => RecipientReference::PublicKey(key),
            None => RecipientReference::read(doc, recipient_info, security)?,
        };
        let agreement = Self {
            originator_public_key,
            salt,
            info,
        };
        Ok(Some((curve.transport(agreement), recipient)))
    }
}

/// A public key of `curve` given by value in a KeyInfo-like element, if there is one.
fn public_key_of(
    doc: &Document<'_>,
    key_info: NodeId,
    curve: Curve,
) -> Result<Option<Vec<u8>>, XmlEncError> {
    if let Some(der) = child(doc, key_info, DSIG11_NS, "DEREncodedKeyValue") {
        let der = decode_base64(
            &text(doc, der),
            MAX_HKDF_PARAM_BASE64_LEN,
            "DEREncodedKeyValue",
        )?;
        return curve.key_from_spki(&der).map(Some);
    }
    let Some(value) = child(doc, key_info, DS_NS, "KeyValue") else {
        return Ok(None);
    };
    let ec = child(doc, value, DSIG11_NS, "ECKeyValue")
        .ok_or(XmlEncError::MissingElement("ECKeyValue"))?;
    if curve == Curve::P256 {
        let named = child(doc, ec, DSIG11_NS, "NamedCurve")
            .and_then(|n| doc.get_attribute(n, "URI"))
            .map(str::trim);
        if named != Some(P256_CURVE_URI) {
            return Err(XmlEncError::UnsupportedKeyTransport(format!(
                "ECDH-ES over curve {}",
                named.unwrap_or("(not named)")
            )));
        }
    }
    let public =
        child(doc, ec, DSIG11_NS, "PublicKey").ok_or(XmlEncError::MissingElement("PublicKey"))?;
    let bytes = decode_base64(&text(doc, public), MAX_HKDF_PARAM_BASE64_LEN, "PublicKey")?;
    curve.check_key(&bytes).map(Some)
}

/// The `xenc:AgreementMethod` element for an EncryptedKey's `ds:KeyInfo` (see the module docs).
/// `originator_spki` is the DER SubjectPublicKeyInfo of the ephemeral key; `recipient_key_info`
/// is the already serialized content of `xenc:RecipientKeyInfo` (a SecurityTokenReference).
pub(crate) fn agreement_method_xml(
    curve: Curve,
    salt: &[u8],
    originator_spki: &[u8],
    recipient_key_info: &str,
) -> String {
    format!(
        "<xenc:AgreementMethod Algorithm=\"{algorithm}\">\
         <xenc11:KeyDerivationMethod xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{HKDF}\">\
         <dsig-more:HKDFParams xmlns:dsig-more=\"{DSIG_MORE_NS}\">\
         <dsig-more:PRF Algorithm=\"{HMAC_SHA256}\"/>\
         <dsig-more:Salt>{salt}</dsig-more:Salt>\
         <dsig-more:KeyLength>{KEK_BYTES}</dsig-more:KeyLength>\
         </dsig-more:HKDFParams></xenc11:KeyDerivationMethod>\
         <xenc:OriginatorKeyInfo><dsig11:DEREncodedKeyValue xmlns:dsig11=\"{DSIG11_NS}\">{spki}\
         </dsig11:DEREncodedKeyValue></xenc:OriginatorKeyInfo>\
         <xenc:RecipientKeyInfo>{recipient_key_info}</xenc:RecipientKeyInfo>\
         </xenc:AgreementMethod>",
        algorithm = curve.uri(),
        salt = STANDARD.encode(salt),
        spki = STANDARD.encode(originator_spki),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p256_points_are_checked() {
        assert!(matches!(
            Curve::P256.check_key(&[0x04; P256_PUBLIC_KEY_LEN]),
            Err(XmlEncError::InvalidPublicKey)
        ));
        assert!(matches!(
            Curve::P256.check_key(&[0x02; 33]),
            Err(XmlEncError::InvalidPublicKey)
        ));
        assert!(matches!(
            Curve::X25519.check_key(&[9; 31]),
            Err(XmlEncError::InvalidPublicKey)
        ));
        assert!(Curve::X25519.check_key(&[9; 32]).is_ok());
    }

    #[test]
    fn written_agreement_method_reads_back() {
        let private = agreement::PrivateKey::generate(&agreement::ECDH_P256).unwrap();
        let public = private.compute_public_key().unwrap();
        let spki = aws_lc_rs::encoding::AsDer::<aws_lc_rs::encoding::PublicKeyX509Der<'_>>::as_der(
            &public,
        )
        .unwrap();
        let fragment = agreement_method_xml(Curve::P256, &[7; 32], spki.as_ref(), "");
        let xml = format!(
            "<ds:KeyInfo xmlns:ds=\"{DS_NS}\" xmlns:xenc=\"{XENC_NS}\">{fragment}</ds:KeyInfo>"
        );
        let doc = uppsala::parse(&xml).unwrap();
        let key_info = doc.document_element().unwrap();
        let agreement_node = child(&doc, key_info, XENC_NS, "AgreementMethod").unwrap();
        let originator = child(&doc, agreement_node, XENC_NS, "OriginatorKeyInfo").unwrap();
        assert_eq!(
            public_key_of(&doc, originator, Curve::P256)
                .unwrap()
                .unwrap(),
            public.as_ref()
        );
        assert!(matches!(
            public_key_of(&doc, originator, Curve::X25519),
            Err(XmlEncError::UnsupportedKeyTransport(_))
        ));
    }
}
