//! Which certificate an `xenc:EncryptedKey` is addressed to, and whether that is one of ours.
//!
//! The KeyInfo of an EncryptedKey names the recipient in one of the WSS X.509 token profile
//! forms. We only have to decide whether it is *our* certificate (we hold the private key), so
//! each form is matched against the caller's own certificates, each read once into an
//! [`OwnCertificate`]: issuer + serial (DN compared attribute by attribute,
//! case-insensitively, in any RDN order, since Java emits RFC 2253 order and others emit DER
//! order), subject key identifier, SHA-1 thumbprint, or the whole certificate (a
//! `wsse:Reference` to a BinarySecurityToken, or an embedded `X509v3` KeyIdentifier).
//!
//! The crate's token module resolves the same forms for signatures against partner stores; this
//! private resolver exists because decryption needs only "is it ours?" and no trust decision.

use aws_lc_rs::digest;
use uppsala::{Document, NodeId};
use x509_parser::extensions::ParsedExtension;
use x509_parser::prelude::{FromDer, X509Certificate};

use super::error::XmlEncError;
use super::uris::{DS_NS, VALUE_TYPE_SKI, VALUE_TYPE_X509V3, WSSE_NS};
use super::xml::{child, decode_base64, id_of, text};

/// ValueType of a SHA-1 thumbprint KeyIdentifier.
const VALUE_TYPE_THUMBPRINT: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1";
/// ValueType of a BinarySecurityToken holding a certificate path (leaf last).
const VALUE_TYPE_PKIPATH: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1";
/// Most certificates accepted in one X509PKIPathv1 token.
pub const MAX_PKIPATH_CERTIFICATES: usize = 8;
/// Longest BinarySecurityToken / embedded certificate we decode, in bytes of base64 text.
pub const MAX_TOKEN_BASE64_LEN: usize = 64 * 1024;

/// How the EncryptedKey names the recipient's certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RecipientReference {
    /// `ds:X509IssuerSerial`: issuer DN as written, serial as a decimal string.
    IssuerSerial {
        /// `ds:X509IssuerName` text.
        issuer: String,
        /// `ds:X509SerialNumber` text (decimal).
        serial: String,
    },
    /// `wsse:KeyIdentifier` of ValueType X509SubjectKeyIdentifier (or `ds:X509SKI`).
    SubjectKeyIdentifier(Vec<u8>),
    /// `wsse:KeyIdentifier` of ValueType ThumbprintSHA1.
    ThumbprintSha1(Vec<u8>),
    /// A raw public key given by value (X25519 `RecipientKeyInfo`), compared with the
    /// certificate's subject public key.
    PublicKey(Vec<u8>),
    /// The whole certificate (DER): from a referenced BinarySecurityToken, an `X509v3`
    /// KeyIdentifier or a `ds:X509Certificate`.
    Certificate(Vec<u8>),
}

impl RecipientReference {
    /// Reads the reference from a `ds:KeyInfo` element. `security` is the `wsse:Security`
    /// header, searched for the BinarySecurityToken a `wsse:Reference` points at.
    pub(crate) fn read(
        doc: &Document<'_>,
        key_info: NodeId,
        security: NodeId,
    ) -> Result<Self, XmlEncError> {
        if let Some(str_node) = child(doc, key_info, WSSE_NS, "SecurityTokenReference") {
            if let Some(reference) = child(doc, str_node, WSSE_NS, "Reference") {
                return Self::read_token_reference(doc, reference, security);
            }
            if let Some(identifier) = child(doc, str_node, WSSE_NS, "KeyIdentifier") {
                return Self::read_key_identifier(doc, identifier);
            }
            if let Some(x509_data) = child(doc, str_node, DS_NS, "X509Data") {
                return Self::read_x509_data(doc, x509_data);
            }
            return Err(XmlEncError::UnsupportedKeyReference);
        }
        if let Some(x509_data) = child(doc, key_info, DS_NS, "X509Data") {
            return Self::read_x509_data(doc, x509_data);
        }
        Err(XmlEncError::UnsupportedKeyReference)
    }

    fn read_token_reference(
        doc: &Document<'_>,
        reference: NodeId,
        security: NodeId,
    ) -> Result<Self, XmlEncError> {
        let uri = doc
            .get_attribute(reference, "URI")
            .ok_or(XmlEncError::MissingAttribute {
                element: "Reference",
                attribute: "URI",
            })?;
        let id = uri
            .strip_prefix('#')
            .ok_or(XmlEncError::UnsupportedKeyReference)?;
        let token = doc
            .children_iter(security)
            .find(|node| {
                doc.element(*node)
                    .is_some_and(|e| e.matches_name_ns(WSSE_NS, "BinarySecurityToken"))
                    && id_of(doc, *node) == Some(id)
            })
            .ok_or_else(|| XmlEncError::SecurityTokenNotFound(id.to_owned()))?;
        let value = decode_base64(
            &text(doc, token),
            MAX_TOKEN_BASE64_LEN,
            "BinarySecurityToken",
        )?;
        match doc.get_attribute(token, "ValueType") {
            Some(VALUE_TYPE_X509V3) => Ok(Self::Certificate(value)),
            Some(VALUE_TYPE_PKIPATH) => Ok(Self::Certificate(pkipath_leaf(&value)?)),
            _ => Err(XmlEncError::UnsupportedKeyReference),
        }
    }

    fn read_key_identifier(doc: &Document<'_>, identifier: NodeId) -> Result<Self, XmlEncError> {
        let value = decode_base64(
            &text(doc, identifier),
            MAX_TOKEN_BASE64_LEN,
            "KeyIdentifier",
        )?;
        match doc.get_attribute(identifier, "ValueType") {
            Some(VALUE_TYPE_SKI) => Ok(Self::SubjectKeyIdentifier(value)),
            Some(VALUE_TYPE_THUMBPRINT) => Ok(Self::ThumbprintSha1(value)),
            Some(VALUE_TYPE_X509V3) => Ok(Self::Certificate(value)),
            _ => Err(XmlEncError::UnsupportedKeyReference),
        }
    }

    fn read_x509_data(doc: &Document<'_>, x509_data: NodeId) -> Result<Self, XmlEncError> {
        if let Some(issuer_serial) = child(doc, x509_data, DS_NS, "X509IssuerSerial") {
            let issuer = child(doc, issuer_serial, DS_NS, "X509IssuerName")
                .ok_or(XmlEncError::MissingElement("X509IssuerName"))?;
            let serial = child(doc, issuer_serial, DS_NS, "X509SerialNumber")
                .ok_or(XmlEncError::MissingElement("X509SerialNumber"))?;
            return Ok(Self::IssuerSerial {
                issuer: text(doc, issuer).trim().to_owned(),
                serial: text(doc, serial).trim().to_owned(),
            });
        }
        if let Some(ski) = child(doc, x509_data, DS_NS, "X509SKI") {
            let value = decode_base64(&text(doc, ski), MAX_TOKEN_BASE64_LEN, "X509SKI")?;
            return Ok(Self::SubjectKeyIdentifier(value));
        }
        if let Some(cert) = child(doc, x509_data, DS_NS, "X509Certificate") {
            let der = decode_base64(&text(doc, cert), MAX_TOKEN_BASE64_LEN, "X509Certificate")?;
            return Ok(Self::Certificate(der));
        }
        Err(XmlEncError::UnsupportedKeyReference)
    }

    /// Whether this reference names `own`.
    pub fn matches(&self, own: &OwnCertificate) -> bool {
        match self {
            Self::Certificate(der) => *der == own.der,
            Self::ThumbprintSha1(thumbprint) => {
                digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &own.der).as_ref()
                    == thumbprint.as_slice()
            }
            Self::IssuerSerial { issuer, serial } => {
                decimal_equal(serial, &own.serial)
                    && own.issuer.is_some()
                    && parse_dn(issuer) == own.issuer
            }
            Self::SubjectKeyIdentifier(ski) => own.subject_key_identifier.as_ref() == Some(ski),
            Self::PublicKey(key) => *key == own.public_key,
        }
    }
}

/// One of our certificates in the forms a [`RecipientReference`] can name it by, read once
/// (at start) so that matching an EncryptedKey parses nothing.
#[derive(Debug, Clone)]
pub struct OwnCertificate {
    der: Vec<u8>,
    /// Serial number, decimal.
    serial: String,
    /// Issuer DN as sorted, normalised (type, value) pairs; `None` when an attribute value is
    /// not a string (no written DN can match it).
    issuer: Option<Vec<(String, String)>>,
    subject_key_identifier: Option<Vec<u8>>,
    /// The subjectPublicKey bits.
    public_key: Vec<u8>,
}

impl OwnCertificate {
    /// Reads the certificate `der`.
    ///
    /// # Errors
    /// [`XmlEncError::InvalidCertificate`] when `der` does not parse.
    pub fn new(der: Vec<u8>) -> Result<Self, XmlEncError> {
        let (_, cert) =
            X509Certificate::from_der(&der).map_err(|_| XmlEncError::InvalidCertificate)?;
        let issuer = cert
            .issuer()
            .iter_attributes()
            .map(|attribute| {
                let value = attribute.as_str().ok()?;
                Some((
                    attribute_type_name(&attribute.attr_type().to_id_string()),
                    normalize_value(value),
                ))
            })
            .collect::<Option<Vec<_>>>()
            .map(|mut pairs| {
                pairs.sort();
                pairs
            });
        let subject_key_identifier =
            cert.extensions()
                .iter()
                .find_map(|ext| match ext.parsed_extension() {
                    ParsedExtension::SubjectKeyIdentifier(id) => Some(id.0.to_vec()),
                    _ => None,
                });
        Ok(Self {
            serial: cert.tbs_certificate.serial.to_string(),
            issuer,
            subject_key_identifier,
            public_key: cert.public_key().subject_public_key.data.to_vec(),
            der,
        })
    }

    /// The certificate (DER).
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

/// The last (target) certificate of a DER `PkiPath ::= SEQUENCE OF Certificate`.
fn pkipath_leaf(path: &[u8]) -> Result<Vec<u8>, XmlEncError> {
    let (rest, sequence) = x509_parser::asn1_rs::Sequence::from_der(path)
        .map_err(|_| XmlEncError::InvalidCertificate)?;
    if !rest.is_empty() {
        return Err(XmlEncError::InvalidCertificate);
    }
    let mut remaining: &[u8] = &sequence.content;
    let mut leaf = None;
    for _ in 0..MAX_PKIPATH_CERTIFICATES {
        if remaining.is_empty() {
            break;
        }
        let (rest, _) =
            X509Certificate::from_der(remaining).map_err(|_| XmlEncError::InvalidCertificate)?;
        leaf = Some(&remaining[..remaining.len() - rest.len()]);
        remaining = rest;
    }
    if !remaining.is_empty() {
        return Err(XmlEncError::InvalidCertificate);
    }
    leaf.map(<[u8]>::to_vec)
        .ok_or(XmlEncError::InvalidCertificate)
}

fn decimal_equal(a: &str, b: &str) -> bool {
    let a = a.trim().trim_start_matches('0');
    let b = b.trim().trim_start_matches('0');
    !a.is_empty() && a.bytes().all(|c| c.is_ascii_digit()) && a == b
}

/// Short name for a DN attribute type given as a name or dotted OID.
fn attribute_type_name(raw: &str) -> String {
    let upper = raw.trim().to_ascii_uppercase();
    let oid = upper.strip_prefix("OID.").unwrap_or(&upper);
    let name = match oid {
        "2.5.4.3" | "CN" => "CN",
        "2.5.4.6" | "C" => "C",
        "2.5.4.10" | "O" => "O",
        "2.5.4.11" | "OU" => "OU",
        "2.5.4.7" | "L" => "L",
        "2.5.4.8" | "ST" | "S" => "ST",
        "2.5.4.9" | "STREET" => "STREET",
        "2.5.4.5" | "SERIALNUMBER" => "SERIALNUMBER",
        "2.5.4.97" | "ORGANIZATIONIDENTIFIER" => "ORGANIZATIONIDENTIFIER",
        "0.9.2342.19200300.100.1.25" | "DC" => "DC",
        "0.9.2342.19200300.100.1.1" | "UID" => "UID",
        "1.2.840.113549.1.9.1" | "E" | "EMAILADDRESS" => "E",
        other => other,
    };
    name.to_owned()
}

/// Canonical form of an attribute value for caseIgnoreMatch-style comparison.
fn normalize_value(value: &str) -> String {
    value
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Splits an RFC 4514 / RFC 2253 style DN string into (type, value) pairs, unescaping values.
fn parse_dn(dn: &str) -> Option<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars().peekable();
    let mut in_quotes = false;
    let mut parts = Vec::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let next = chars.next()?;
                if next.is_ascii_hexdigit() {
                    let low = chars.next()?;
                    let byte = u8::from_str_radix(&format!("{next}{low}"), 16).ok()?;
                    current.push(char::from(byte));
                } else {
                    current.push(next);
                }
            }
            '"' => in_quotes = !in_quotes,
            ',' | ';' | '+' if !in_quotes => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    for part in parts {
        let (kind, value) = part.split_once('=')?;
        pairs.push((attribute_type_name(kind), normalize_value(value)));
    }
    pairs.sort();
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_parsing_ignores_order_case_and_escapes() {
        let a = parse_dn("CN=red_gw,O=as4gate test,C=LV").unwrap();
        let b = parse_dn("C=LV, O=AS4GATE  Test, CN=red_gw").unwrap();
        assert_eq!(a, b);
        let escaped = parse_dn(r"CN=Acme\, Inc.,C=BE").unwrap();
        assert_eq!(
            escaped,
            vec![
                ("C".to_owned(), "be".to_owned()),
                ("CN".to_owned(), "acme, inc.".to_owned())
            ]
        );
        assert_eq!(
            parse_dn("2.5.4.3=x,EMAILADDRESS=a@b").unwrap(),
            parse_dn("E=a@b,CN=x").unwrap()
        );
        assert!(parse_dn("no-equals-sign").is_none());
    }

    #[test]
    fn serials_compare_as_decimals() {
        assert!(decimal_equal("0042", "42"));
        assert!(!decimal_equal("42", "420"));
        assert!(!decimal_equal("", "0"));
        assert!(!decimal_equal("0x2a", "42"));
    }
}
