//! Every way an inbound signature must be refused, each asserting the exact error variant,
//! plus the three SecurityTokenReference forms (positive and unknown certificate).

mod dsig_support;

use as4gate_ebms::{ErrorCode, ns};
use as4gate_wssec::{SecurityPolicy, WssecError};
use base64::Engine;
use dsig_support::*;
use x509_parser::prelude::{FromDer, ParsedExtension, X509Certificate};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Empty the same-document DigestValues and the SignatureValue of `xml` and sign it again with
/// blue_gw's RSA key, so a test can change SignedInfo and still get a cryptographically valid
/// signature (the attack cases the coverage checks exist for).
fn resign(xml: &str) -> String {
    let mut out = String::new();
    let mut rest = xml;
    while let Some(start) = rest.find("<ds:Reference URI=\"") {
        let (head, tail) = rest.split_at(start);
        out.push_str(head);
        let end = tail.find("</ds:Reference>").unwrap() + "</ds:Reference>".len();
        let reference = &tail[..end];
        if reference.starts_with("<ds:Reference URI=\"#") {
            let v = between(reference, "<ds:DigestValue>", "</ds:DigestValue>");
            out.push_str(&reference.replace(v, "<ds:DigestValue></ds:DigestValue>"));
        } else {
            out.push_str(reference);
        }
        rest = &tail[end..];
    }
    out.push_str(rest);
    let sv = between(&out, "<ds:SignatureValue>", "</ds:SignatureValue>").to_owned();
    let template = out.replace(&sv, "<ds:SignatureValue></ds:SignatureValue>");
    let key_pem = std::fs::read(pki_path("blue_gw/rsa.key")).unwrap();
    let key = bergshamra::keys::loader::load_pem_auto(&key_pem, None).unwrap();
    let mut keys = bergshamra::KeysManager::new();
    keys.add_key(key);
    bergshamra::sign(&bergshamra::DsigContext::new(keys), &template).unwrap()
}

fn expect_err(result: Result<impl std::fmt::Debug, WssecError>) -> WssecError {
    result.expect_err("verification must fail")
}

#[test]
fn resign_helper_produces_a_valid_signature() {
    verify(&resign(&signed("rsa", &[])), &[]).unwrap();
}

/// A same-document reference without transforms is outside the shape the gateway's own core
/// validation handles (its digest is over the inclusive canonical form): the general engine
/// still verifies it, and still refuses it once the Body changes.
#[test]
fn reference_without_transforms_is_verified_by_the_general_engine() {
    let xml = signed("rsa", &[]);
    let body_reference = between(&xml, "<ds:Reference URI=\"#_body\"", "</ds:Reference>");
    let transforms = between(body_reference, "<ds:Transforms>", "</ds:Transforms>");
    let bare = body_reference.replace(transforms, "");
    let xml = resign(&replace_once(&xml, body_reference, &bare));
    assert!(
        !between(&xml, "<ds:Reference URI=\"#_body\"", "</ds:Reference>").contains("Transform")
    );
    verify(&xml, &[]).unwrap();
    let tampered = replace_once(
        &xml,
        "<S12:Body wsu:Id=\"_body\"/>",
        "<S12:Body wsu:Id=\"_body\"><x/></S12:Body>",
    );
    let err = expect_err(verify(&tampered, &[]));
    assert!(
        matches!(err, WssecError::ReferenceDigestMismatch(_)),
        "{err:?}"
    );
}

#[test]
fn tampered_attachment() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts);
    let mut tampered = parts.clone();
    tampered[0].content.push(0);
    let err = expect_err(verify(&xml, &tampered));
    assert!(
        matches!(&err, WssecError::AttachmentDigestMismatch { cid } if cid == "payload-1@as4gate.test"),
        "{err:?}"
    );
    assert_eq!(ErrorCode::from(&err), ErrorCode::FailedAuthentication);
}

#[test]
fn tampered_xml_attachment_but_equivalent_canonical_form_is_accepted() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts);
    let mut changed = parts.clone();
    // Same canonical XML: different quoting, no comment, no XML declaration.
    changed[1].content =
        b"<inv:Invoice xmlns:inv=\"urn:inv\"><inv:Total a=\"1\">10</inv:Total></inv:Invoice>"
            .to_vec();
    verify(&xml, &changed).unwrap();
    changed[1].content =
        b"<inv:Invoice xmlns:inv=\"urn:inv\"><inv:Total a=\"1\">11</inv:Total></inv:Invoice>"
            .to_vec();
    assert!(matches!(
        expect_err(verify(&xml, &changed)),
        WssecError::AttachmentDigestMismatch { .. }
    ));
}

#[test]
fn tampered_messaging() {
    let xml = replace_once(
        &signed("rsa", &[]),
        "<eb:Action>Deliver<",
        "<eb:Action>Steal<",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::ReferenceDigestMismatch(_)),
        "{err:?}"
    );
}

#[test]
fn tampered_body() {
    let xml = replace_once(
        &signed("rsa", &[]),
        "<S12:Body wsu:Id=\"_body\"/>",
        "<S12:Body wsu:Id=\"_body\"><evil/></S12:Body>",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::ReferenceDigestMismatch(_)),
        "{err:?}"
    );
}

#[test]
fn tampered_signature_value() {
    let xml = signed("rsa", &[]);
    let sv = between(&xml, "<ds:SignatureValue>", "</ds:SignatureValue>").to_owned();
    let replacement = if sv.starts_with("<ds:SignatureValue>A") {
        sv.replacen("<ds:SignatureValue>A", "<ds:SignatureValue>B", 1)
    } else {
        format!(
            "<ds:SignatureValue>A{}",
            &sv["<ds:SignatureValue>".len() + 1..]
        )
    };
    let err = expect_err(verify(&xml.replace(&sv, &replacement), &[]));
    assert!(matches!(err, WssecError::SignatureInvalid(_)), "{err:?}");
}

#[test]
fn duplicate_wsu_id() {
    let xml = replace_once(
        &signed("rsa", &[]),
        "<eb:Messaging ",
        "<x:Other xmlns:x=\"urn:x\" wsu:Id=\"_body\"/><eb:Messaging ",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(&err, WssecError::DuplicateId(id) if id == "_body"),
        "{err:?}"
    );
}

#[test]
fn body_wrapped_and_replaced() {
    // The signed Body is moved into a header block; a new Body is put where the gateway reads.
    let xml = signed("rsa", &[]);
    let xml = replace_once(
        &xml,
        "<S12:Body wsu:Id=\"_body\"/>",
        "<S12:Body wsu:Id=\"_evil\"><evil/></S12:Body>",
    );
    let xml = replace_once(
        &xml,
        "<eb:Messaging ",
        "<x:Wrapper xmlns:x=\"urn:x\"><S12:Body wsu:Id=\"_body\"/></x:Wrapper><eb:Messaging ",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(&err, WssecError::UnexpectedSignedElement { uri } if uri == "#_body"),
        "{err:?}"
    );
}

#[test]
fn signature_over_another_element() {
    let xml = signed("rsa", &[]);
    let xml = replace_once(
        &xml,
        "<eb:Messaging ",
        "<x:Other xmlns:x=\"urn:x\" wsu:Id=\"_other\"/><eb:Messaging ",
    );
    let xml = resign(&replace_once(&xml, "URI=\"#_body\"", "URI=\"#_other\""));
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(&err, WssecError::UnexpectedSignedElement { uri } if uri == "#_other"),
        "{err:?}"
    );
}

#[test]
fn body_reference_missing() {
    let xml = signed("rsa", &[]);
    let body_ref = between(&xml, "<ds:Reference URI=\"#_body\"", "</ds:Reference>").to_owned();
    let err = expect_err(verify(&resign(&xml.replace(&body_ref, "")), &[]));
    assert!(matches!(err, WssecError::BodyNotSigned), "{err:?}");
}

#[test]
fn messaging_referenced_twice() {
    let xml = signed("rsa", &[]);
    let body_ref = between(&xml, "<ds:Reference URI=\"#_body\"", "</ds:Reference>").to_owned();
    let twice = body_ref.replace("#_body", "#_messaging");
    let err = expect_err(verify(&resign(&xml.replace(&body_ref, &twice)), &[]));
    assert!(
        matches!(err, WssecError::DuplicateReference { .. }),
        "{err:?}"
    );
}

#[test]
fn untrusted_ca() {
    let err = expect_err(verify(&signed("rsa-other-ca", &[]), &[]));
    assert!(
        matches!(err, WssecError::UntrustedCertificate(_)),
        "{err:?}"
    );
    assert_eq!(ErrorCode::from(&err), ErrorCode::FailedAuthentication);
}

#[test]
fn expired_certificate() {
    let err = expect_err(verify(&signed("rsa-expired", &[]), &[]));
    assert!(
        matches!(err, WssecError::CertificateExpired { .. }),
        "{err:?}"
    );
}

#[test]
fn not_yet_valid_certificate() {
    let xml = signed("rsa", &[]);
    let err = expect_err(verify_with(
        &xml,
        &[],
        &SecurityPolicy::default(),
        &[],
        time::macros::datetime!(2025-06-01 0:00 UTC),
    ));
    assert!(
        matches!(err, WssecError::CertificateNotYetValid { .. }),
        "{err:?}"
    );
}

#[test]
fn valid_chain_but_other_party() {
    let parts = sample_parts();
    let xml = as4gate_wssec::sign_envelope(
        &unsigned_envelope(&parts),
        &identity("mallory", "rsa"),
        &to_sign(&parts),
    )
    .unwrap()
    .xml;
    let verified = verify(&xml, &parts).unwrap();
    assert!(
        !verified
            .evidence()
            .unwrap()
            .signed_by(&[pem_der("blue_gw/rsa.crt")])
    );
}

#[test]
fn disallowed_signature_algorithm_rsa_sha1() {
    let xml = replace_once(
        &signed("rsa", &[]),
        ns::ALG_RSA_SHA256,
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(&err, WssecError::SignatureAlgorithmNotAllowed { uri } if uri.ends_with("#rsa-sha1")),
        "{err:?}"
    );
    assert_eq!(ErrorCode::from(&err), ErrorCode::PolicyNoncompliance);
}

#[test]
fn disallowed_digest_algorithm_sha1() {
    let xml =
        signed("rsa", &[]).replacen(ns::ALG_SHA256, "http://www.w3.org/2000/09/xmldsig#sha1", 1);
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::DigestAlgorithmNotAllowed { .. }),
        "{err:?}"
    );
}

#[test]
fn ecdsa_refused_by_as4_1_15_policy() {
    let err = expect_err(verify(&signed("ecdsa", &[]), &[]));
    assert!(
        matches!(err, WssecError::SignatureAlgorithmNotAllowed { .. }),
        "{err:?}"
    );
}

#[test]
fn inclusive_c14n_refused() {
    let xml = signed("rsa", &[]).replacen(
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/2001/10/xml-exc-c14n#\"",
        "<ds:CanonicalizationMethod Algorithm=\"http://www.w3.org/TR/2001/REC-xml-c14n-20010315\"",
        1,
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::CanonicalizationNotAllowed { .. }),
        "{err:?}"
    );
}

#[test]
fn complete_signature_transform_refused() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts).replacen(
        ns::SWA_ATTACHMENT_CONTENT_SIGNATURE_TRANSFORM,
        ns::SWA_ATTACHMENT_COMPLETE_SIGNATURE_TRANSFORM,
        1,
    );
    let err = expect_err(verify(&xml, &parts));
    assert!(
        matches!(
            err,
            WssecError::CompleteSignatureTransformUnsupported { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn remote_reference_uri_refused() {
    let xml = replace_once(
        &signed("rsa", &[]),
        "URI=\"#_body\"",
        "URI=\"file:///etc/passwd\"",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::ReferenceUriNotAllowed { .. }),
        "{err:?}"
    );
}

#[test]
fn too_many_references() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts);
    let policy = SecurityPolicy {
        max_references: 4,
        ..SecurityPolicy::default()
    };
    let err = expect_err(verify_with(&xml, &parts, &policy, &[], NOW));
    assert!(
        matches!(err, WssecError::TooManyReferences { count: 5, limit: 4 }),
        "{err:?}"
    );
}

#[test]
fn certificate_over_policy_size_limit() {
    let policy = SecurityPolicy {
        max_certificate_bytes: 100,
        ..SecurityPolicy::default()
    };
    let err = expect_err(verify_with(&signed("rsa", &[]), &[], &policy, &[], NOW));
    assert!(
        matches!(err, WssecError::CertificateTooLarge { limit: 100, .. }),
        "{err:?}"
    );
}

#[test]
fn missing_attachment() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts);
    let err = expect_err(verify(&xml, &parts[..2]));
    assert!(
        matches!(&err, WssecError::AttachmentMissing { cid } if cid == "payload-3@as4gate.test"),
        "{err:?}"
    );
}

#[test]
fn attachment_not_covered() {
    let parts = sample_parts();
    let xml = signed("rsa", &parts[..2]);
    let err = expect_err(verify(&xml, &parts));
    assert!(
        matches!(&err, WssecError::AttachmentNotSigned { cid } if cid == "payload-3@as4gate.test"),
        "{err:?}"
    );
}

#[test]
fn two_signatures() {
    let xml = signed("rsa", &[]);
    let sig = between(&xml, "<ds:Signature ", "</ds:Signature>").to_owned();
    let xml = xml.replace(&sig, &format!("{sig}{sig}"));
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::MultipleSignatures { count: 2 }),
        "{err:?}"
    );
}

#[test]
fn signature_outside_security_header() {
    let xml = signed("rsa", &[]);
    let sig = between(&xml, "<ds:Signature ", "</ds:Signature>").to_owned();
    let xml = xml.replace(&sig, "").replace(
        "</S12:Header>",
        &format!("<x:H xmlns:x=\"urn:x\">{sig}</x:H></S12:Header>"),
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::SignatureOutsideSecurityHeader),
        "{err:?}"
    );
}

#[test]
fn signer_certificate_swapped() {
    let xml = signed("rsa", &[]);
    let bst = between(
        &xml,
        "wsu:Id=\"_messaging.x509\">",
        "</wsse:BinarySecurityToken>",
    )
    .to_owned();
    let other = format!(
        "wsu:Id=\"_messaging.x509\">{}</wsse:BinarySecurityToken>",
        b64(&pem_der("red_gw/rsa.crt"))
    );
    let err = expect_err(verify(&xml.replace(&bst, &other), &[]));
    assert!(matches!(err, WssecError::SignatureInvalid(_)), "{err:?}");
}

// ---- SecurityTokenReference forms -------------------------------------------------------

fn str_element(xml: &str) -> String {
    between(
        xml,
        "<wsse:SecurityTokenReference",
        "</wsse:SecurityTokenReference>",
    )
    .to_owned()
}

fn with_str_content(xml: &str, content: &str) -> String {
    let old = str_element(xml);
    xml.replace(
        &old,
        &format!(
            "<wsse:SecurityTokenReference xmlns:wsse=\"{}\">{content}</wsse:SecurityTokenReference>",
            ns::WSSE
        ),
    )
}

fn issuer_serial_str(cert_der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    format!(
        "<ds:X509Data><ds:X509IssuerSerial><ds:X509IssuerName>CN=as4gate Test Root CA,O=as4gate test,C=LV</ds:X509IssuerName><ds:X509SerialNumber>{}</ds:X509SerialNumber></ds:X509IssuerSerial></ds:X509Data>",
        cert.tbs_certificate.serial
    )
}

fn ski_str(cert_der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(cert_der).unwrap();
    let ski = cert
        .extensions()
        .iter()
        .find_map(|e| match e.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(k) => Some(k.0.to_vec()),
            _ => None,
        })
        .unwrap();
    format!(
        "<wsse:KeyIdentifier EncodingType=\"{}\" ValueType=\"{}\">{}</wsse:KeyIdentifier>",
        ns::WSSE_BASE64_BINARY,
        ns::SKI_VALUE_TYPE,
        b64(&ski)
    )
}

#[test]
fn issuer_serial_resolution() {
    let cert = pem_der("blue_gw/rsa.crt");
    let xml = with_str_content(&signed("rsa", &[]), &issuer_serial_str(&cert));
    let policy = SecurityPolicy::default();
    let known = vec![pem_der("red_gw/rsa.crt"), cert.clone()];
    let verified = verify_with(&xml, &[], &policy, &known, NOW).unwrap();
    assert_eq!(verified.evidence().unwrap().signer_certificate, cert);

    let err = expect_err(verify_with(
        &xml,
        &[],
        &policy,
        &[pem_der("red_gw/rsa.crt")],
        NOW,
    ));
    assert!(matches!(err, WssecError::UnknownCertificate(_)), "{err:?}");
}

#[test]
fn subject_key_identifier_resolution() {
    let cert = pem_der("blue_gw/rsa.crt");
    let xml = with_str_content(&signed("rsa", &[]), &ski_str(&cert));
    let policy = SecurityPolicy::default();
    let verified = verify_with(&xml, &[], &policy, std::slice::from_ref(&cert), NOW).unwrap();
    assert_eq!(verified.evidence().unwrap().signer_certificate, cert);

    let err = expect_err(verify_with(
        &xml,
        &[],
        &policy,
        &[pem_der("mallory/rsa.crt")],
        NOW,
    ));
    assert!(matches!(err, WssecError::UnknownCertificate(_)), "{err:?}");
}

#[test]
fn pki_path_token() {
    let xml = signed("rsa", &[]);
    let path = std::fs::read(pki_path("blue_gw/rsa.pkipath")).unwrap();
    let bst = between(
        &xml,
        "<wsse:BinarySecurityToken",
        "</wsse:BinarySecurityToken>",
    )
    .to_owned();
    let new_bst = format!(
        "<wsse:BinarySecurityToken xmlns:wsse=\"{}\" xmlns:wsu=\"{}\" EncodingType=\"{}\" ValueType=\"{}\" wsu:Id=\"_messaging.x509\">{}</wsse:BinarySecurityToken>",
        ns::WSSE,
        ns::WSU,
        ns::WSSE_BASE64_BINARY,
        ns::BST_X509_PKIPATH_V1,
        b64(&path)
    );
    let verified = verify(&xml.replace(&bst, &new_bst), &[]).unwrap();
    let evidence = verified.evidence().unwrap();
    assert_eq!(evidence.signer_certificate, pem_der("blue_gw/rsa.crt"));
    assert_eq!(evidence.signer_chain, vec![pem_der("ca/ca.crt")]);
}

#[test]
fn bst_with_wrong_encoding_type() {
    let xml = replace_once(
        &signed("rsa", &[]),
        ns::WSSE_BASE64_BINARY,
        "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#HexBinary",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(err, WssecError::UnsupportedTokenEncoding { .. }),
        "{err:?}"
    );
}

#[test]
fn reference_to_missing_token() {
    let xml = replace_once(
        &signed("rsa", &[]),
        "URI=\"#_messaging.x509\"",
        "URI=\"#nothing\"",
    );
    let err = expect_err(verify(&xml, &[]));
    assert!(
        matches!(&err, WssecError::TokenNotFound { id } if id == "nothing"),
        "{err:?}"
    );
}

#[test]
fn key_info_missing() {
    let xml = signed("rsa", &[]);
    let ki = between(&xml, "<ds:KeyInfo>", "</ds:KeyInfo>").to_owned();
    let err = expect_err(verify(&xml.replace(&ki, ""), &[]));
    assert!(matches!(err, WssecError::KeyInfoMissing), "{err:?}");
}
