//! Building the outbound encryption header: one `xenc:EncryptedKey` plus one
//! `xenc:EncryptedData` per attachment, as an XML fragment for `wsse:Security`.
//!
//! The key transport follows the recipient certificate's public key:
//! - RSA: RSA-OAEP SHA-256 / MGF1-SHA256 (`xenc11#rsa-oaep`, eDelivery AS4 1.15); the recipient
//!   reference is the EncryptedKey's `ds:KeyInfo`;
//! - X25519: eDelivery AS4 2.0 key agreement (`xmldsig-more#x25519`, HKDF-SHA256, `kw-aes128`),
//!   with a fresh ephemeral key and salt per EncryptedKey (see the `agreement` module for the
//!   exact `xenc:AgreementMethod` written); the recipient reference goes into
//!   `xenc:AgreementMethod/xenc:RecipientKeyInfo`;
//! - EC P-256: the AS4 2.0 Alternative EC profile, the same with `xenc11#ECDH-ES`.
//!
//! The recipient is named by `ds:X509IssuerSerial` by default: that is what Domibus (WSS4J's
//! default key identifier for encryption) sends, see the Domibus `is_incoming_message.xml`
//! vector. [`RecipientKeyReference::BinarySecurityToken`] instead embeds the recipient
//! certificate as a BST and references it, which every WSS4J-based receiver also accepts;
//! [`RecipientKeyReference::SubjectKeyIdentifier`] sends the certificate's SKI.
//!
//! Each fragment element declares its own namespaces, so the fragment does not depend on the
//! envelope's prefixes. Identifiers and the content key are supplied by the caller (sans-I/O);
//! the RSA-OAEP seed, ephemeral keys and HKDF salts come from aws-lc's CSPRNG.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::agreement::{Curve, agreement_method_xml};
use super::error::XmlEncError;
use super::key_transport::{ContentKey, wrap_key_agreement, wrap_key_rsa_oaep_sha256};
use super::uris::{
    AES128_GCM, ATTACHMENT_CIPHERTEXT_TRANSFORM, DIGEST_SHA256, DS_NS, ENCODING_BASE64, KW_AES128,
    MGF1_SHA256, RSA_OAEP_XENC11, TOKEN_TYPE_ENCRYPTED_KEY, TYPE_ATTACHMENT_CONTENT_ONLY,
    VALUE_TYPE_SKI, VALUE_TYPE_X509V3, WSSE_NS, WSSE11_NS, WSU_NS, XENC_NS, XENC11_NS,
};
use crate::key_kind;
use crate::xml_util::escape;

/// How the EncryptedKey names the recipient certificate (for RSA in the EncryptedKey's
/// `ds:KeyInfo`, for a key agreement in `xenc:RecipientKeyInfo`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RecipientKeyReference {
    /// `wsse:SecurityTokenReference/ds:X509Data/ds:X509IssuerSerial` (the default; Domibus).
    #[default]
    IssuerSerial,
    /// A `wsse:BinarySecurityToken` with this `wsu:Id`, emitted in the fragment before the
    /// EncryptedKey, referenced by `wsse:Reference URI="#id"`.
    BinarySecurityToken {
        /// The `wsu:Id` for the token.
        token_id: String,
    },
    /// `wsse:SecurityTokenReference/wsse:KeyIdentifier` of ValueType
    /// `X509SubjectKeyIdentifier`: the certificate's SubjectKeyIdentifier extension, which
    /// must be present.
    SubjectKeyIdentifier,
}

/// One attachment to list in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentEncryption {
    /// `Id` of the `xenc:EncryptedData` (unique in the message, an XML NCName).
    pub data_id: String,
    /// Content-ID of the MIME part, without `cid:` and angle brackets.
    pub content_id: String,
    /// Content type of the plaintext part, written as `EncryptedData/@MimeType`; the MIME
    /// part itself goes out as [`ENCRYPTED_PART_CONTENT_TYPE`].
    pub mime_type: String,
}

/// Content-Type of an encrypted MIME part on the wire (as WSS4J sends). The receiver restores
/// the original type from `EncryptedData/@MimeType` (and the ebMS `PartProperties` MimeType).
pub const ENCRYPTED_PART_CONTENT_TYPE: &str = "application/octet-stream";

/// Replaces the `Content-Type` header of an attachment about to be encrypted with
/// [`ENCRYPTED_PART_CONTENT_TYPE`], returning the original value for
/// [`AttachmentEncryption::mime_type`]. Header names compare case-insensitively; a part without
/// Content-Type gets one and `None` is returned.
pub fn rewrite_content_type_for_encryption(headers: &mut Vec<(String, String)>) -> Option<String> {
    let position = headers
        .iter()
        .position(|(name, _)| name.eq_ignore_ascii_case("Content-Type"));
    match position {
        Some(index) => Some(std::mem::replace(
            &mut headers[index].1,
            ENCRYPTED_PART_CONTENT_TYPE.to_owned(),
        )),
        None => {
            headers.push((
                "Content-Type".to_owned(),
                ENCRYPTED_PART_CONTENT_TYPE.to_owned(),
            ));
            None
        }
    }
}

/// Builds the `xenc:EncryptedKey` + `xenc:EncryptedData` fragment for one recipient.
#[derive(Debug, Clone)]
pub struct EncryptedKeyBuilder<'a> {
    recipient_cert_der: &'a [u8],
    key_id: String,
    reference: RecipientKeyReference,
}

fn check_ncname(value: &str) -> Result<(), XmlEncError> {
    let mut chars = value.chars();
    let valid_start = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if valid_start && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
        Ok(())
    } else {
        Err(XmlEncError::InvalidIdentifier(value.to_owned()))
    }
}

/// Percent-encodes a Content-ID for a `cid:` URL (RFC 2392: URL-escaped addr-spec).
fn cid_url(content_id: &str) -> Result<String, XmlEncError> {
    if content_id.is_empty() || content_id.starts_with('<') || content_id.ends_with('>') {
        return Err(XmlEncError::InvalidIdentifier(content_id.to_owned()));
    }
    let mut out = String::from("cid:");
    for byte in content_id.bytes() {
        if byte.is_ascii_alphanumeric() || b"@.-_~!$&'()*+,;=:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    Ok(out)
}

/// RFC 4514 string of the issuer DN (most significant RDN last, as Java's `X500Principal`).
fn issuer_rfc4514(cert: &X509Certificate<'_>) -> Result<String, XmlEncError> {
    let mut rdns = Vec::new();
    for rdn in cert.issuer().iter_rdn() {
        let mut attributes = Vec::new();
        for attribute in rdn.iter() {
            let oid = attribute.attr_type().to_id_string();
            let name = match oid.as_str() {
                "2.5.4.3" => "CN".to_owned(),
                "2.5.4.6" => "C".to_owned(),
                "2.5.4.10" => "O".to_owned(),
                "2.5.4.11" => "OU".to_owned(),
                "2.5.4.7" => "L".to_owned(),
                "2.5.4.8" => "ST".to_owned(),
                "2.5.4.9" => "STREET".to_owned(),
                "0.9.2342.19200300.100.1.25" => "DC".to_owned(),
                "0.9.2342.19200300.100.1.1" => "UID".to_owned(),
                _ => oid,
            };
            let value = attribute
                .as_str()
                .map_err(|_| XmlEncError::InvalidCertificate)?;
            attributes.push(format!("{name}={}", escape_dn_value(value)));
        }
        rdns.push(attributes.join("+"));
    }
    rdns.reverse();
    Ok(rdns.join(","))
}

fn escape_dn_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for (index, c) in value.chars().enumerate() {
        let leading = index == 0 && (c == ' ' || c == '#');
        let trailing = index + 1 == value.chars().count() && c == ' ';
        if leading || trailing || matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';' | '=') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// How a recipient certificate's key receives the content key.
enum RecipientKey {
    /// RSA-OAEP key transport.
    Rsa,
    /// Ephemeral-static key agreement on this curve.
    Agreement(Curve),
}

fn recipient_key(cert: &X509Certificate<'_>) -> Result<RecipientKey, XmlEncError> {
    let spki = cert.public_key();
    if let Some(curve) = Curve::of_spki(spki)? {
        return Ok(RecipientKey::Agreement(curve));
    }
    match key_kind::algorithm_oid(spki) {
        oid if oid == key_kind::OID_RSA => Ok(RecipientKey::Rsa),
        oid => Err(XmlEncError::UnsupportedRecipientKey(oid)),
    }
}

fn subject_key_identifier<'c>(cert: &'c X509Certificate<'_>) -> Result<&'c [u8], XmlEncError> {
    cert.extensions()
        .iter()
        .find_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0),
            _ => None,
        })
        .ok_or(XmlEncError::NoSubjectKeyIdentifier)
}

impl<'a> EncryptedKeyBuilder<'a> {
    /// Starts a builder for the recipient's encryption certificate (DER): RSA, X25519 or EC
    /// P-256; its key type selects the key transport (see the module docs). `key_id` becomes
    /// the EncryptedKey's `Id`.
    pub fn new(recipient_cert_der: &'a [u8], key_id: impl Into<String>) -> Self {
        Self {
            recipient_cert_der,
            key_id: key_id.into(),
            reference: RecipientKeyReference::default(),
        }
    }

    /// Chooses how the recipient certificate is referenced.
    pub fn reference(mut self, reference: RecipientKeyReference) -> Self {
        self.reference = reference;
        self
    }

    /// The `wsse:SecurityTokenReference` naming the recipient; a BinarySecurityToken it
    /// references is appended to `xml`.
    fn token_reference(
        &self,
        cert: &X509Certificate<'_>,
        xml: &mut String,
    ) -> Result<String, XmlEncError> {
        let inner = match &self.reference {
            RecipientKeyReference::IssuerSerial => format!(
                "<ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>{}</ds:X509IssuerName>\
                 <ds:X509SerialNumber>{}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data>",
                escape(&issuer_rfc4514(cert)?),
                cert.tbs_certificate.serial
            ),
            RecipientKeyReference::BinarySecurityToken { token_id } => {
                check_ncname(token_id)?;
                xml.push_str(&format!(
                    "<wsse:BinarySecurityToken xmlns:wsse=\"{WSSE_NS}\" xmlns:wsu=\"{WSU_NS}\" \
                     EncodingType=\"{ENCODING_BASE64}\" ValueType=\"{VALUE_TYPE_X509V3}\" \
                     wsu:Id=\"{token_id}\">{}</wsse:BinarySecurityToken>",
                    STANDARD.encode(self.recipient_cert_der)
                ));
                format!("<wsse:Reference URI=\"#{token_id}\" ValueType=\"{VALUE_TYPE_X509V3}\"/>")
            }
            RecipientKeyReference::SubjectKeyIdentifier => format!(
                "<wsse:KeyIdentifier EncodingType=\"{ENCODING_BASE64}\" \
                 ValueType=\"{VALUE_TYPE_SKI}\">{}</wsse:KeyIdentifier>",
                STANDARD.encode(subject_key_identifier(cert)?)
            ),
        };
        Ok(format!(
            "<wsse:SecurityTokenReference xmlns:wsse=\"{WSSE_NS}\">{inner}</wsse:SecurityTokenReference>"
        ))
    }

    /// Wraps `content_key` for the recipient and returns the fragment: optional BST, then
    /// `xenc:EncryptedKey` with its `ReferenceList`, then one `xenc:EncryptedData` per attachment.
    ///
    /// For an X25519 or P-256 recipient every call draws a fresh ephemeral key pair and HKDF
    /// salt, so two calls never produce the same EncryptedKey.
    ///
    /// # Errors
    /// [`XmlEncError::InvalidIdentifier`] for ids that are not NCNames or bad content ids;
    /// [`XmlEncError::InvalidCertificate`] when the certificate or its key is unusable;
    /// [`XmlEncError::UnsupportedRecipientKey`] for a key type that cannot receive a key (and
    /// [`XmlEncError::UnsupportedKeyTransport`] for an EC key on a curve other than P-256);
    /// [`XmlEncError::NoSubjectKeyIdentifier`] when the SKI reference is asked for a
    /// certificate without one; [`XmlEncError::Crypto`] when aws-lc fails internally.
    pub fn build(
        &self,
        content_key: &ContentKey,
        attachments: &[AttachmentEncryption],
    ) -> Result<String, XmlEncError> {
        check_ncname(&self.key_id)?;
        for attachment in attachments {
            check_ncname(&attachment.data_id)?;
        }
        let (_, cert) = X509Certificate::from_der(self.recipient_cert_der)
            .map_err(|_| XmlEncError::InvalidCertificate)?;
        let transport = recipient_key(&cert)?;

        let mut xml = String::new();
        let token_reference = self.token_reference(&cert, &mut xml)?;
        let (method, key_info, wrapped) = match transport {
            RecipientKey::Rsa => (
                format!(
                    "<xenc:EncryptionMethod Algorithm=\"{RSA_OAEP_XENC11}\">\
                     <ds:DigestMethod xmlns:ds=\"{DS_NS}\" Algorithm=\"{DIGEST_SHA256}\"/>\
                     <xenc11:MGF xmlns:xenc11=\"{XENC11_NS}\" Algorithm=\"{MGF1_SHA256}\"/>\
                     </xenc:EncryptionMethod>"
                ),
                token_reference,
                wrap_key_rsa_oaep_sha256(content_key, self.recipient_cert_der)?,
            ),
            RecipientKey::Agreement(curve) => {
                let sent = wrap_key_agreement(curve, content_key, cert.public_key().raw)?;
                (
                    format!("<xenc:EncryptionMethod Algorithm=\"{KW_AES128}\"/>"),
                    agreement_method_xml(
                        curve,
                        &sent.salt,
                        &sent.originator_spki,
                        &token_reference,
                    ),
                    sent.wrapped.to_vec(),
                )
            }
        };
        xml.push_str(&format!(
            "<xenc:EncryptedKey xmlns:xenc=\"{XENC_NS}\" Id=\"{key_id}\">{method}\
             <ds:KeyInfo xmlns:ds=\"{DS_NS}\">{key_info}</ds:KeyInfo>\
             <xenc:CipherData><xenc:CipherValue>{cipher}</xenc:CipherValue></xenc:CipherData>\
             <xenc:ReferenceList>",
            key_id = self.key_id,
            cipher = STANDARD.encode(&wrapped),
        ));
        for attachment in attachments {
            xml.push_str(&format!(
                "<xenc:DataReference URI=\"#{}\"/>",
                attachment.data_id
            ));
        }
        xml.push_str("</xenc:ReferenceList></xenc:EncryptedKey>");
        for attachment in attachments {
            xml.push_str(&format!(
                "<xenc:EncryptedData xmlns:xenc=\"{XENC_NS}\" Id=\"{data_id}\" MimeType=\"{mime}\" \
                 Type=\"{TYPE_ATTACHMENT_CONTENT_ONLY}\">\
                 <xenc:EncryptionMethod Algorithm=\"{AES128_GCM}\"/>\
                 <ds:KeyInfo xmlns:ds=\"{DS_NS}\">\
                 <wsse:SecurityTokenReference xmlns:wsse=\"{WSSE_NS}\" xmlns:wsse11=\"{WSSE11_NS}\" \
                 wsse11:TokenType=\"{TOKEN_TYPE_ENCRYPTED_KEY}\">\
                 <wsse:Reference URI=\"#{key_id}\"/></wsse:SecurityTokenReference></ds:KeyInfo>\
                 <xenc:CipherData><xenc:CipherReference URI=\"{uri}\"><xenc:Transforms>\
                 <ds:Transform xmlns:ds=\"{DS_NS}\" Algorithm=\"{ATTACHMENT_CIPHERTEXT_TRANSFORM}\"/>\
                 </xenc:Transforms></xenc:CipherReference></xenc:CipherData></xenc:EncryptedData>",
                data_id = attachment.data_id,
                mime = escape(&attachment.mime_type),
                key_id = self.key_id,
                uri = escape(&cid_url(&attachment.content_id)?),
            ));
        }
        Ok(xml)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_rewrite() {
        let mut headers = vec![
            ("Content-ID".to_owned(), "<p1@x>".to_owned()),
            ("content-type".to_owned(), "application/gzip".to_owned()),
        ];
        assert_eq!(
            rewrite_content_type_for_encryption(&mut headers).as_deref(),
            Some("application/gzip")
        );
        assert_eq!(headers[1].1, ENCRYPTED_PART_CONTENT_TYPE);
        let mut bare = Vec::new();
        assert_eq!(rewrite_content_type_for_encryption(&mut bare), None);
        assert_eq!(bare[0].1, ENCRYPTED_PART_CONTENT_TYPE);
    }

    #[test]
    fn identifiers_are_checked() {
        assert!(check_ncname("EK-1a.b_c").is_ok());
        assert!(matches!(
            check_ncname("1abc"),
            Err(XmlEncError::InvalidIdentifier(_))
        ));
        assert!(matches!(
            check_ncname("a\"b"),
            Err(XmlEncError::InvalidIdentifier(_))
        ));
        assert_eq!(cid_url("payload@x.org").unwrap(), "cid:payload@x.org");
        assert_eq!(cid_url("a b/c").unwrap(), "cid:a%20b%2Fc");
        assert!(cid_url("<p@x>").is_err());
    }

    #[test]
    fn dn_values_are_escaped() {
        assert_eq!(escape_dn_value("Acme, Inc."), "Acme\\, Inc.");
        assert_eq!(escape_dn_value(" x "), "\\ x\\ ");
    }
}
