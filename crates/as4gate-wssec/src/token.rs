//! Resolution of `wsse:SecurityTokenReference` (WSS X.509 Token Profile 1.1) to certificates.
//!
//! Three forms are supported, which together cover what Domibus, phase4, Holodeck and AS4.NET
//! send:
//! 1. `wsse:Reference URI="#id"` to a `wsse:BinarySecurityToken` inside the same
//!    `wsse:Security` header, ValueType `X509v3` (one certificate) or `X509PKIPathv1` (DER
//!    `SEQUENCE OF Certificate`, anchor first, leaf last). The token's EncodingType must be
//!    Base64Binary (an absent EncodingType means Base64Binary, as in WSS 1.1).
//! 2. `ds:X509Data/ds:X509IssuerSerial`, looked up in the caller's known partner certificates.
//!    Issuer names are compared as sets of (attribute type, value) pairs, case-insensitively,
//!    because senders differ in RDN order and spacing.
//! 3. `wsse:KeyIdentifier` with ValueType `X509SubjectKeyIdentifier`, compared with the
//!    SubjectKeyIdentifier extension of the known certificates (certificates without that
//!    extension are never matched).
//!
//! The returned certificates are NOT trusted yet; the caller validates them
//! ([`crate::trust::validate_certificate`]).

use uppsala::{Document, NodeId};
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

use crate::trust::{MAX_CERTIFICATE_BYTES, MAX_INTERMEDIATES, check_size};
use crate::xml_util::{compact_text, decode_base64, descendants_named, single_child};
use crate::{WssecError, names};

/// Longest X509PKIPathv1 accepted: a leaf, [`MAX_INTERMEDIATES`] intermediates and an anchor.
pub const MAX_PKI_PATH_CERTIFICATES: usize = MAX_INTERMEDIATES + 2;

/// Longest `X509SerialNumber` text accepted (decimal digits); serials are at most 20 octets.
const MAX_SERIAL_DIGITS: usize = 64;

/// The certificate a SecurityTokenReference points to, plus any other certificates the sender
/// supplied with it (PKIPath order, without the leaf).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolvedToken {
    /// DER of the end-entity certificate.
    pub leaf: Vec<u8>,
    /// DER of the other certificates from a PKIPath token (may include the anchor).
    pub chain: Vec<Vec<u8>>,
}

/// Resolve the `wsse:SecurityTokenReference` element `str_node` (in the envelope whose
/// `wsse:Security` header is `security`) to certificates. `known` are DER certificates of
/// partners, used for issuer-serial and SKI references.
pub fn resolve_security_token_reference(
    doc: &Document<'_>,
    security: NodeId,
    str_node: NodeId,
    known: &[Vec<u8>],
) -> Result<ResolvedToken, WssecError> {
    let one = |local: &'static str, ns: &str| {
        single_child(doc, str_node, ns, local)
            .map_err(|n| WssecError::UnsupportedTokenReference(format!("{n} {local} elements")))
    };
    if let Some(reference) = one("Reference", names::WSSE)? {
        return resolve_bst_reference(doc, security, reference);
    }
    if let Some(x509_data) = one("X509Data", names::DS)? {
        let issuer_serial = single_child(doc, x509_data, names::DS, "X509IssuerSerial")
            .ok()
            .flatten()
            .ok_or_else(|| {
                WssecError::UnsupportedTokenReference(
                    "X509Data without one X509IssuerSerial".into(),
                )
            })?;
        return resolve_issuer_serial(doc, issuer_serial, known);
    }
    if let Some(key_identifier) = one("KeyIdentifier", names::WSSE)? {
        return resolve_key_identifier(doc, key_identifier, known);
    }
    Err(WssecError::UnsupportedTokenReference(
        "no wsse:Reference, ds:X509Data or wsse:KeyIdentifier".into(),
    ))
}

fn check_encoding_type(doc: &Document<'_>, node: NodeId) -> Result<(), WssecError> {
    match doc.get_attribute(node, "EncodingType") {
        None => Ok(()),
        Some(t) if t == names::BASE64_BINARY => Ok(()),
        Some(other) => Err(WssecError::UnsupportedTokenEncoding {
            encoding_type: other.to_owned(),
        }),
    }
}

fn resolve_bst_reference(
    doc: &Document<'_>,
    security: NodeId,
    reference: NodeId,
) -> Result<ResolvedToken, WssecError> {
    let uri = doc.get_attribute(reference, "URI").unwrap_or_default();
    let id = uri.strip_prefix('#').ok_or_else(|| {
        WssecError::UnsupportedTokenReference(format!("wsse:Reference URI {uri:?} is not #id"))
    })?;
    let candidates: Vec<NodeId> =
        descendants_named(doc, security, names::WSSE, "BinarySecurityToken")
            .into_iter()
            .filter(|n| doc.get_attribute_ns(*n, names::WSU, "Id") == Some(id))
            .collect();
    let bst = match candidates.as_slice() {
        [one] => *one,
        [] => return Err(WssecError::TokenNotFound { id: id.to_owned() }),
        _ => return Err(WssecError::DuplicateId(id.to_owned())),
    };
    check_encoding_type(doc, bst)?;
    let value_type = doc.get_attribute(bst, "ValueType").unwrap_or_default();
    let bytes = decode_base64(&compact_text(doc, bst))
        .map_err(|e| WssecError::MalformedToken(format!("BinarySecurityToken base64: {e}")))?;
    match value_type {
        names::X509V3 => {
            check_size(&bytes, MAX_CERTIFICATE_BYTES)?;
            Ok(ResolvedToken {
                leaf: bytes,
                chain: Vec::new(),
            })
        }
        names::X509_PKI_PATH_V1 => {
            let mut certs = split_pki_path(&bytes)?;
            let leaf = certs
                .pop()
                .ok_or_else(|| WssecError::MalformedToken("empty PKIPath".into()))?;
            Ok(ResolvedToken { leaf, chain: certs })
        }
        other => Err(WssecError::UnsupportedTokenValueType {
            value_type: other.to_owned(),
        }),
    }
}

/// Read one DER TLV header at `input[0..]`; returns (total TLV length).
fn der_tlv_len(input: &[u8]) -> Result<usize, WssecError> {
    let bad = || WssecError::MalformedToken("PKIPath is not valid DER".into());
    let first = *input.get(1).ok_or_else(bad)?;
    let (len, header) = if first < 0x80 {
        (usize::from(first), 2)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return Err(bad());
        }
        let bytes = input.get(2..2 + n).ok_or_else(bad)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, 2 + n)
    };
    header.checked_add(len).ok_or_else(bad)
}

/// Split a DER `SEQUENCE OF Certificate` into the certificates' DER encodings.
fn split_pki_path(der: &[u8]) -> Result<Vec<Vec<u8>>, WssecError> {
    let bad = || WssecError::MalformedToken("PKIPath is not a DER SEQUENCE OF Certificate".into());
    if der.first() != Some(&0x30) {
        return Err(bad());
    }
    let total = der_tlv_len(der)?;
    if total != der.len() {
        return Err(bad());
    }
    let header = header_len(der)?;
    let mut rest = der.get(header..).ok_or_else(bad)?;
    let mut certs = Vec::new();
    while !rest.is_empty() {
        if rest[0] != 0x30 {
            return Err(bad());
        }
        let len = der_tlv_len(rest)?;
        let cert = rest.get(..len).ok_or_else(bad)?;
        check_size(cert, MAX_CERTIFICATE_BYTES)?;
        if certs.len() == MAX_PKI_PATH_CERTIFICATES {
            return Err(WssecError::MalformedToken(format!(
                "PKIPath longer than {MAX_PKI_PATH_CERTIFICATES} certificates"
            )));
        }
        certs.push(cert.to_vec());
        rest = &rest[len..];
    }
    Ok(certs)
}

/// Length of the outer TLV header (tag + length octets).
fn header_len(der: &[u8]) -> Result<usize, WssecError> {
    let first = *der
        .get(1)
        .ok_or_else(|| WssecError::MalformedToken("PKIPath truncated".into()))?;
    Ok(if first < 0x80 {
        2
    } else {
        2 + usize::from(first & 0x7f)
    })
}

fn parse_known(der: &[u8]) -> Option<X509Certificate<'_>> {
    X509Certificate::from_der(der).ok().map(|(_, c)| c)
}

fn resolve_issuer_serial(
    doc: &Document<'_>,
    issuer_serial: NodeId,
    known: &[Vec<u8>],
) -> Result<ResolvedToken, WssecError> {
    let text_of = |local: &'static str| -> Result<String, WssecError> {
        single_child(doc, issuer_serial, names::DS, local)
            .ok()
            .flatten()
            .map(|n| doc.text_content_deep(n).trim().to_owned())
            .ok_or_else(|| {
                WssecError::UnsupportedTokenReference(format!(
                    "X509IssuerSerial without one {local}"
                ))
            })
    };
    let issuer = text_of("X509IssuerName")?;
    let serial = text_of("X509SerialNumber")?;
    if serial.is_empty()
        || serial.len() > MAX_SERIAL_DIGITS
        || !serial.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(WssecError::MalformedToken(format!(
            "X509SerialNumber {serial:?}"
        )));
    }
    let serial = serial.trim_start_matches('0');
    let serial = if serial.is_empty() { "0" } else { serial };
    let wanted_issuer = normalize_dn_string(&issuer);
    for der in known {
        let Some(cert) = parse_known(der) else {
            continue;
        };
        if cert.tbs_certificate.serial.to_string() == serial
            && normalize_x509_name(cert.issuer()) == wanted_issuer
        {
            return Ok(ResolvedToken {
                leaf: der.clone(),
                chain: Vec::new(),
            });
        }
    }
    Err(WssecError::UnknownCertificate(format!(
        "issuer {issuer:?}, serial {serial}"
    )))
}

fn resolve_key_identifier(
    doc: &Document<'_>,
    key_identifier: NodeId,
    known: &[Vec<u8>],
) -> Result<ResolvedToken, WssecError> {
    let value_type = doc
        .get_attribute(key_identifier, "ValueType")
        .unwrap_or_default();
    if value_type != names::X509_SKI {
        return Err(WssecError::UnsupportedTokenReference(format!(
            "KeyIdentifier ValueType {value_type:?}"
        )));
    }
    check_encoding_type(doc, key_identifier)?;
    let ski = decode_base64(&compact_text(doc, key_identifier))
        .map_err(|e| WssecError::MalformedToken(format!("KeyIdentifier base64: {e}")))?;
    for der in known {
        let Some(cert) = parse_known(der) else {
            continue;
        };
        let matches = cert.extensions().iter().any(|ext| {
            matches!(ext.parsed_extension(), ParsedExtension::SubjectKeyIdentifier(k) if k.0 == ski.as_slice())
        });
        if matches {
            return Ok(ResolvedToken {
                leaf: der.clone(),
                chain: Vec::new(),
            });
        }
    }
    Err(WssecError::UnknownCertificate(format!(
        "subject key identifier {}",
        crate::xml_util::encode_base64(&ski)
    )))
}

/// Canonical attribute-type name for a dotted OID or an alias.
fn attribute_type_name(t: &str) -> String {
    let upper = t.trim().to_ascii_uppercase();
    let upper = upper.strip_prefix("OID.").unwrap_or(&upper).to_owned();
    match upper.as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.7" => "L",
        "2.5.4.8" | "S" => "ST",
        "2.5.4.5" => "SERIALNUMBER",
        "2.5.4.97" => "ORGANIZATIONIDENTIFIER",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        "1.2.840.113549.1.9.1" | "E" | "EMAIL" => "EMAILADDRESS",
        other => return other.to_owned(),
    }
    .to_owned()
}

/// Normalised value: trimmed, inner whitespace runs collapsed, lower-cased.
fn normalize_value(v: &str) -> String {
    v.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// RFC 4514 string -> sorted (type, value) pairs. Handles `\,`-style and `\XX` escapes,
/// multi-valued RDNs (`+`) and quoted values.
fn normalize_dn_string(dn: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    let mut current = String::new();
    let mut chars = dn.chars().peekable();
    let mut in_quotes = false;
    let push = |part: &str, pairs: &mut Vec<(String, String)>| {
        if let Some((t, v)) = part.split_once('=') {
            let v = v.trim().trim_matches('"');
            pairs.push((attribute_type_name(t), normalize_value(v)));
        }
    };
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                let Some(next) = chars.next() else { break };
                if next.is_ascii_hexdigit() && chars.peek().is_some_and(char::is_ascii_hexdigit) {
                    let low = chars.next().unwrap_or('0');
                    let byte = u8::from_str_radix(&format!("{next}{low}"), 16).unwrap_or(b'?');
                    current.push(char::from(byte));
                } else {
                    current.push(next);
                }
            }
            '"' => in_quotes = !in_quotes,
            ',' | ';' | '+' if !in_quotes => {
                push(&current, &mut pairs);
                current.clear();
            }
            other => current.push(other),
        }
    }
    push(&current, &mut pairs);
    pairs.sort();
    pairs
}

fn normalize_x509_name(name: &x509_parser::x509::X509Name<'_>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = name
        .iter_attributes()
        .map(|a| {
            let value = a
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|_| format!("#{}", hex(a.attr_value().data)));
            (
                attribute_type_name(&a.attr_type().to_id_string()),
                normalize_value(&value),
            )
        })
        .collect();
    pairs.sort();
    pairs
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dn_strings_compare_order_and_case_insensitively() {
        assert_eq!(
            normalize_dn_string("CN=as4gate Test Root CA,O=as4gate test,C=LV"),
            normalize_dn_string("c=LV, o=AS4GATE test,  cn=as4gate  Test Root CA")
        );
        assert_eq!(
            normalize_dn_string(r"CN=a\,b,E=x@y"),
            vec![
                ("CN".to_owned(), "a,b".to_owned()),
                ("EMAILADDRESS".to_owned(), "x@y".to_owned())
            ]
        );
        assert_ne!(
            normalize_dn_string("CN=a,O=b"),
            normalize_dn_string("CN=a,O=c")
        );
    }

    #[test]
    fn pki_path_splitting_rejects_garbage() {
        assert!(matches!(
            split_pki_path(&[0x31, 0x00]),
            Err(WssecError::MalformedToken(_))
        ));
        assert!(matches!(
            split_pki_path(&[0x30, 0x05, 0x30]),
            Err(WssecError::MalformedToken(_))
        ));
        assert_eq!(
            split_pki_path(&[0x30, 0x00]).unwrap(),
            Vec::<Vec<u8>>::new()
        );
        assert_eq!(
            split_pki_path(&[0x30, 0x04, 0x30, 0x00, 0x30, 0x00]).unwrap(),
            vec![vec![0x30, 0x00], vec![0x30, 0x00]]
        );
    }
}
