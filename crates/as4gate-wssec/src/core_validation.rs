//! XML-DSig core validation (reference digests, then `SignatureValue`) of a signature in the
//! shape AS4 peers send, without the general engine.
//!
//! bergshamra canonicalises each reference and `SignedInfo` by walking the whole envelope
//! against a node set; that was most of the verification's cost (bench/ANALYSIS.md). An AS4
//! signature needs none of its generality: Exclusive C14N of `SignedInfo`, same-document
//! references by bare `#id` with exactly one Exclusive C14N transform each, and a key of the
//! kind the signature method names. For that shape this module canonicalises just the
//! subtrees ([`crate::c14n`], checked byte for byte against bergshamra), digests them,
//! compares in constant time and checks `SignatureValue` with aws-lc. Any other shape is
//! left to bergshamra, so what is accepted does not change: [`validate`] says `None`.
//!
//! IDs are looked up as bergshamra does: the `Id`, `ID`, `id` and `AssertionID` attributes
//! of every element, whatever their namespace (`wsu:Id` included), and a value found twice in
//! the document refuses the message, so a reference cannot be pointed at a copy.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use as4gate_ebms::model::NrReference;
use aws_lc_rs::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use aws_lc_rs::{constant_time, digest};
use uppsala::{Document, NodeId};
use x509_parser::prelude::{FromDer, X509Certificate};
use x509_parser::public_key::PublicKey;

use crate::signed_info::{ParsedSignature, same_document_id};
use crate::swa::digest_algorithm;
use crate::xml_util::{compact_text, decode_base64};
use crate::{WssecError, c14n, key_kind, names};

/// The smallest RSA modulus accepted (aws-lc-rs verifies nothing smaller).
const MIN_RSA_BITS: usize = 2048;

/// Attributes that carry an element's ID (local names, any namespace).
const ID_ATTRIBUTES: [&str; 4] = ["Id", "ID", "id", "AssertionID"];

/// One reference after validation: its URI, the element a same-document reference resolved
/// to, and whether its digest was checked (`cid:` references are digested by [`crate::swa`]).
pub(crate) type CheckedReference = (String, Option<NodeId>, bool);

/// Core validation of `parsed` with the public key of the certificate `leaf`: `None` when the
/// signature is not in the shape this module handles (the caller then asks bergshamra).
pub(crate) fn validate(
    doc: &Document<'_>,
    parsed: &ParsedSignature,
    leaf: &[u8],
) -> Result<Option<Vec<CheckedReference>>, WssecError> {
    let (_, cert) = X509Certificate::from_der(leaf)
        .map_err(|e| WssecError::MalformedCertificate(e.to_string()))?;
    let spki = cert.public_key();
    let algorithm: &'static dyn VerificationAlgorithm =
        match key_kind::signature_method_of(spki).ok() {
            Some(method) if method != parsed.signature_method => return Ok(None),
            Some(names::RSA_SHA256) => {
                let bits = match spki.parsed() {
                    Ok(PublicKey::RSA(rsa)) => rsa.key_size(),
                    _ => return Ok(None),
                };
                if bits < MIN_RSA_BITS {
                    return Err(WssecError::VerificationFailed(format!(
                        "{bits}-bit RSA key: below the {MIN_RSA_BITS}-bit minimum"
                    )));
                }
                &signature::RSA_PKCS1_2048_8192_SHA256
            }
            Some(names::ECDSA_SHA256) => &signature::ECDSA_P256_SHA256_FIXED,
            Some(names::EDDSA_ED25519) => &signature::ED25519,
            _ => return Ok(None),
        };
    if parsed.c14n_method != names::EXC_C14N || !parsed.references.iter().all(in_shape) {
        return Ok(None);
    }

    let ids = id_map(doc)?;
    let mut checked = Vec::with_capacity(parsed.references.len());
    for reference in &parsed.references {
        let Some(id) = same_document_id(&reference.uri) else {
            checked.push((reference.uri.clone(), None, false));
            continue;
        };
        let node = *ids.get(id).ok_or_else(|| {
            WssecError::VerificationFailed(format!("invalid URI reference: ID not found: {id}"))
        })?;
        let prefixes = reference.transforms[0].inclusive_prefixes.as_deref();
        let canonical = c14n::exclusive_subtree(doc, node, &prefix_list(prefixes));
        let computed = digest::digest(digest_algorithm(&reference.digest_method)?, &canonical);
        let expected = decode_base64(&reference.digest_value_b64).map_err(|e| {
            WssecError::VerificationFailed(format!("DigestValue of {}: {e}", reference.uri))
        })?;
        constant_time::verify_slices_are_equal(computed.as_ref(), &expected).map_err(|_| {
            WssecError::ReferenceDigestMismatch(format!(
                "Reference digest failed: URI={}",
                reference.uri
            ))
        })?;
        checked.push((reference.uri.clone(), Some(node), true));
    }

    let signed_info = c14n::exclusive_subtree(
        doc,
        parsed.signed_info,
        &prefix_list(parsed.c14n_prefixes.as_deref()),
    );
    let value = decode_base64(&compact_text(doc, parsed.signature_value))
        .map_err(|e| WssecError::VerificationFailed(format!("SignatureValue: {e}")))?;
    UnparsedPublicKey::new(algorithm, &spki.subject_public_key.data)
        .verify(&signed_info, &value)
        .map_err(|_| WssecError::SignatureInvalid("signature value verification failed".into()))?;
    Ok(Some(checked))
}

/// A reference this module can digest: a `cid:` one (not digested here), or a bare `#id`
/// with exactly one Exclusive C14N transform and a digest method we know.
fn in_shape(reference: &NrReference) -> bool {
    if same_document_id(&reference.uri).is_none() {
        return reference.uri.starts_with("cid:");
    }
    matches!(reference.transforms.as_slice(), [only] if only.algorithm == names::EXC_C14N)
        && digest_algorithm(&reference.digest_method).is_ok()
}

/// The prefixes of an InclusiveNamespaces PrefixList.
fn prefix_list(list: Option<&str>) -> Vec<&str> {
    list.map(|l| l.split_ascii_whitespace().collect())
        .unwrap_or_default()
}

/// Every ID in the document, refusing one that appears twice.
fn id_map<'d>(doc: &'d Document<'_>) -> Result<HashMap<&'d str, NodeId>, WssecError> {
    let mut ids = HashMap::new();
    for node in doc.descendants(doc.root()) {
        let Some(element) = doc.element(node) else {
            continue;
        };
        for name in ID_ATTRIBUTES {
            let Some(value) = element.get_attribute(name) else {
                continue;
            };
            match ids.entry(value) {
                Entry::Vacant(slot) => {
                    slot.insert(node);
                }
                Entry::Occupied(_) => return Err(WssecError::DuplicateId(value.to_owned())),
            }
        }
    }
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml_util::descendants_named;

    fn pki(rel: &str) -> Vec<u8> {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-pki/blue_gw/").to_owned() + rel;
        std::fs::read(path).unwrap()
    }

    /// The DER of a PEM certificate.
    fn der(pem: &[u8]) -> Vec<u8> {
        let text = std::str::from_utf8(pem).unwrap();
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        decode_base64(&b64).unwrap()
    }

    /// `<Doc>` with two signed elements, signed by bergshamra with `kind`'s key; `transform`
    /// is the Transforms element of the second reference.
    fn signed_by_bergshamra(kind: &str, method: &str, transform: &str) -> String {
        let reference = |id: &str, transforms: &str| {
            format!(
                "<ds:Reference URI=\"#{id}\">{transforms}<ds:DigestMethod Algorithm=\"{}\"/>\
                 <ds:DigestValue></ds:DigestValue></ds:Reference>",
                names::SHA256
            )
        };
        let exc = format!(
            "<ds:Transforms><ds:Transform Algorithm=\"{}\"/></ds:Transforms>",
            names::EXC_C14N
        );
        let template = format!(
            "<Doc xmlns=\"urn:d\" xmlns:wsu=\"{wsu}\" xmlns:o=\"urn:other\">\
             <o:A wsu:Id=\"a\" o:x=\"1\">text &amp; more<!-- gone --></o:A><B Id=\"b\"><C/></B>\
             <ds:Signature xmlns:ds=\"{ds}\"><ds:SignedInfo>\
             <ds:CanonicalizationMethod Algorithm=\"{exc_uri}\">\
             <ec:InclusiveNamespaces xmlns:ec=\"{exc_uri}\" PrefixList=\"o\"/>\
             </ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"{method}\"/>{a}{b}\
             </ds:SignedInfo><ds:SignatureValue></ds:SignatureValue></ds:Signature></Doc>",
            wsu = names::WSU,
            ds = names::DS,
            exc_uri = names::EXC_C14N,
            a = reference("a", &exc),
            b = reference("b", transform),
        );
        let key =
            bergshamra::keys::loader::load_pem_auto(&pki(&format!("{kind}.key")), None).unwrap();
        let mut keys = bergshamra::KeysManager::new();
        keys.add_key(key);
        bergshamra::sign(&bergshamra::DsigContext::new(keys), &template).unwrap()
    }

    fn validate_xml(xml: &str, kind: &str) -> Result<Option<Vec<CheckedReference>>, WssecError> {
        let doc = uppsala::parse(xml).unwrap();
        let signature = descendants_named(&doc, doc.root(), names::DS, "Signature")[0];
        let parsed = ParsedSignature::read(&doc, signature, 8)?;
        validate(&doc, &parsed, &der(&pki(&format!("{kind}.crt"))))
    }

    /// Signatures bergshamra makes with each kind of key are validated here, not handed back
    /// to it, and a change to a signed element or to `SignedInfo` is refused.
    #[test]
    fn validates_what_bergshamra_signs_with_every_key_kind() {
        let exc = format!(
            "<ds:Transforms><ds:Transform Algorithm=\"{}\"/></ds:Transforms>",
            names::EXC_C14N
        );
        for (kind, method) in [
            ("rsa", names::RSA_SHA256),
            ("ecdsa", names::ECDSA_SHA256),
            ("ed25519", names::EDDSA_ED25519),
        ] {
            let xml = signed_by_bergshamra(kind, method, &exc);
            let checked = validate_xml(&xml, kind).unwrap().expect("in shape");
            let uris: Vec<_> = checked.iter().map(|c| (c.0.as_str(), c.2)).collect();
            assert_eq!(uris, [("#a", true), ("#b", true)], "{kind}");

            let body = xml.replace("<C/>", "<C></C><D/>");
            let err = validate_xml(&body, kind).unwrap_err();
            assert!(
                matches!(err, WssecError::ReferenceDigestMismatch(_)),
                "{kind}: {err:?}"
            );
            let info = xml.replace("URI=\"#b\"", "URI=\"#b\" Type=\"x\"");
            let err = validate_xml(&info, kind).unwrap_err();
            assert!(
                matches!(err, WssecError::SignatureInvalid(_)),
                "{kind}: {err:?}"
            );
        }
        // An RSA key with the Ed25519 method, or a reference without transforms: bergshamra's.
        let xml = signed_by_bergshamra("rsa", names::RSA_SHA256, &exc);
        let other_method = xml.replace(names::RSA_SHA256, names::EDDSA_ED25519);
        assert!(validate_xml(&other_method, "rsa").unwrap().is_none());
        let bare = signed_by_bergshamra("rsa", names::RSA_SHA256, "");
        assert!(validate_xml(&bare, "rsa").unwrap().is_none());
    }

    #[test]
    fn an_id_found_twice_is_refused() {
        let exc = format!(
            "<ds:Transforms><ds:Transform Algorithm=\"{}\"/></ds:Transforms>",
            names::EXC_C14N
        );
        let xml = signed_by_bergshamra("ed25519", names::EDDSA_ED25519, &exc)
            .replace("<C/>", "<C ID=\"a\"/>");
        let err = validate_xml(&xml, "ed25519").unwrap_err();
        assert!(
            matches!(&err, WssecError::DuplicateId(id) if id == "a"),
            "{err:?}"
        );
    }
}
