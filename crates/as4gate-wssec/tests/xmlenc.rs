//! Fixture-driven tests of AS4 attachment encryption against an independent implementation
//! (Python `cryptography` / OpenSSL, `tests/fixtures/xmlenc/make_fixtures.py`) and against the
//! Domibus message vectors.

use std::path::{Path, PathBuf};
use std::process::Command;

use as4gate_wssec::xmlenc::{
    AttachmentEncryption, ContentKey, DecryptionKey, EncryptedKeyBuilder, EncryptionPlan,
    GcmDecryptor, GcmEncryptor, KeyTransport, OaepDigest, OwnCertificate, PlanLimits,
    RecipientKeyReference, RecipientReference, XmlEncError, insert_into_security_header,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uppsala::{Document, NodeId};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/xmlenc");
const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-pki");
const DOMIBUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/domibus/Domibus-MSH/src/test/resources/dataset/as4"
);
const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const CID: &str = "payload-1@as4gate.test";

fn pem_der(path: impl AsRef<Path>) -> Vec<u8> {
    let pem = std::fs::read_to_string(path.as_ref())
        .unwrap_or_else(|e| panic!("{}: {e}", path.as_ref().display()));
    let body: String = pem
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END"))
        .collect();
    STANDARD.decode(body).unwrap()
}

fn cert(party: &str) -> Vec<u8> {
    pem_der(format!("{PKI}/{party}/rsa.crt"))
}

/// One of our certificates, read as decryption matches it.
fn own(der: Vec<u8>) -> OwnCertificate {
    OwnCertificate::new(der).unwrap()
}

fn key(party: &str) -> DecryptionKey {
    DecryptionKey::from_pkcs8_der(&pem_der(format!("{PKI}/{party}/rsa.key"))).unwrap()
}

fn x25519_cert(party: &str) -> Vec<u8> {
    pem_der(format!("{PKI}/{party}/x25519.crt"))
}

fn x25519_key(party: &str) -> DecryptionKey {
    DecryptionKey::from_pkcs8_der(&pem_der(format!("{PKI}/{party}/x25519.key"))).unwrap()
}

fn security(doc: &Document<'_>) -> NodeId {
    let envelope = doc.document_element().unwrap();
    let header = doc
        .first_child_element_by_name_ns(envelope, SOAP12_NS, "Header")
        .unwrap();
    doc.first_child_element_by_name_ns(header, WSSE_NS, "Security")
        .unwrap()
}

fn read_plan(xml: &str) -> Result<EncryptionPlan, XmlEncError> {
    let doc = uppsala::parse(xml).unwrap();
    EncryptionPlan::read(&doc, security(&doc))
}

fn fixture(case: &str, file: &str) -> PathBuf {
    Path::new(FIXTURES).join(case).join(file)
}

fn envelope(case: &str) -> String {
    std::fs::read_to_string(fixture(case, "envelope.xml")).unwrap()
}

/// Decrypts `body` in uneven chunks and returns the plaintext, or the error of `finish`.
fn decrypt_part(key: &ContentKey, body: &[u8]) -> Result<Vec<u8>, XmlEncError> {
    let mut decryptor = GcmDecryptor::new(key.bytes());
    let mut out = Vec::new();
    let mut rest = body;
    for size in [1usize, 5, 11, 16, 17, 4000].iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let take = (*size).min(rest.len());
        decryptor.update(&rest[..take], &mut out)?;
        rest = &rest[take..];
    }
    decryptor.finish()?;
    Ok(out)
}

fn decrypt_case(case: &str) -> EncryptionPlan {
    let xml = envelope(case);
    let plan = read_plan(&xml).unwrap();
    let x25519 = case.starts_with("x25519");
    let (red, blue, red_key) = if x25519 {
        (
            x25519_cert("red_gw"),
            x25519_cert("blue_gw"),
            x25519_key("red_gw"),
        )
    } else {
        (cert("red_gw"), cert("blue_gw"), key("red_gw"))
    };
    let (encrypted_key, index) = plan.key_for_certificate(&[&own(blue), &own(red)]).unwrap();
    assert_eq!(index, 1, "{case}: must pick red_gw's certificate");
    let content_key = red_key.unwrap_key(encrypted_key).unwrap();
    assert!(!plan.parts().is_empty());
    for part in plan.parts_of(encrypted_key) {
        let body = std::fs::read(fixture(case, &format!("{}.bin", part.content_id))).unwrap();
        let expected = std::fs::read(fixture(case, &format!("{}.plain", part.content_id))).unwrap();
        assert_eq!(
            decrypt_part(&content_key, &body).unwrap(),
            expected,
            "{case}"
        );
    }
    plan
}

#[test]
fn decrypts_python_rsa_oaep_sha256_issuer_serial() {
    let plan = decrypt_case("rsa-oaep-sha256");
    let key = &plan.keys()[0];
    assert_eq!(
        key.transport,
        KeyTransport::RsaOaep {
            digest: OaepDigest::Sha256,
            label: None
        }
    );
    assert!(matches!(
        key.recipient,
        RecipientReference::IssuerSerial { .. }
    ));
    let part = plan.part_for_content_id(CID).unwrap();
    assert_eq!(part.mime_type.as_deref(), Some("application/xml"));
    assert_eq!(part.id, "ED-0");
}

#[test]
fn decrypts_python_rsa_oaep_mgf1p_bst() {
    let plan = decrypt_case("rsa-oaep-mgf1p");
    let key = &plan.keys()[0];
    assert_eq!(
        key.transport,
        KeyTransport::RsaOaep {
            digest: OaepDigest::Sha1,
            label: None
        }
    );
    assert_eq!(
        key.recipient,
        RecipientReference::Certificate(cert("red_gw"))
    );
}

#[test]
fn decrypts_python_ski_two_parts_with_escaped_cid() {
    let plan = decrypt_case("rsa-oaep-ski");
    assert!(matches!(
        plan.keys()[0].recipient,
        RecipientReference::SubjectKeyIdentifier(_)
    ));
    assert_eq!(plan.parts().len(), 2);
    assert!(
        plan.part_for_content_id("first part@as4gate.test")
            .is_some()
    );
    assert_eq!(
        plan.part_for_content_id("empty@as4gate.test")
            .unwrap()
            .mime_type
            .as_deref(),
        Some("text/plain")
    );
}

#[test]
fn decrypts_python_x25519_hkdf_der_encoded_key() {
    let plan = decrypt_case("x25519-hkdf-der");
    let KeyTransport::X25519HkdfKeyWrap(agreement) = &plan.keys()[0].transport else {
        panic!("expected X25519 agreement");
    };
    assert_eq!(agreement.salt.as_ref().map(Vec::len), Some(32));
    assert_eq!(
        agreement.info.as_deref(),
        Some(&b"EU eDelivery AS4 2.0"[..])
    );
    assert!(matches!(
        plan.keys()[0].recipient,
        RecipientReference::IssuerSerial { .. }
    ));
}

#[test]
fn decrypts_python_x25519_hkdf_ec_key_value() {
    let plan = decrypt_case("x25519-hkdf-ecvalue");
    let KeyTransport::X25519HkdfKeyWrap(agreement) = &plan.keys()[0].transport else {
        panic!("expected X25519 agreement");
    };
    assert_eq!(agreement.salt, None);
    assert!(matches!(
        plan.keys()[0].recipient,
        RecipientReference::PublicKey(_)
    ));
}

#[test]
fn x25519_wrong_key_and_key_type_mismatch() {
    let plan = read_plan(&envelope("x25519-hkdf-der")).unwrap();
    assert!(matches!(
        x25519_key("blue_gw").unwrap_key(&plan.keys()[0]),
        Err(XmlEncError::KeyUnwrapFailed)
    ));
    assert!(matches!(
        key("red_gw").unwrap_key(&plan.keys()[0]),
        Err(XmlEncError::KeyTypeMismatch)
    ));
    let rsa_plan = read_plan(&envelope("rsa-oaep-sha256")).unwrap();
    assert!(matches!(
        x25519_key("red_gw").unwrap_key(&rsa_plan.keys()[0]),
        Err(XmlEncError::KeyTypeMismatch)
    ));
    let mut tampered = plan.keys()[0].clone();
    tampered.cipher_value[3] ^= 1;
    assert!(matches!(
        x25519_key("red_gw").unwrap_key(&tampered),
        Err(XmlEncError::KeyUnwrapFailed)
    ));
}

#[test]
fn x25519_refuses_unsupported_parameters() {
    let base = envelope("x25519-hkdf-der");
    expect_refused(
        &base.replace(">128</dsig-more:KeyLength>", ">256</dsig-more:KeyLength>"),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
            "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512",
        ),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2021/04/xmldsig-more#x25519",
            "http://www.w3.org/2009/xmlenc11#ECDH-ES",
        ),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2021/04/xmldsig-more#hkdf",
            "http://www.w3.org/2009/xmlenc11#ConcatKDF",
        ),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "<dsig11:DEREncodedKeyValue>MC",
            "<dsig11:DEREncodedKeyValue>MD",
        ),
        |e| matches!(e, XmlEncError::InvalidPublicKey),
    );
}

#[test]
fn tampered_tag_and_ciphertext_fail_authentication() {
    let plan = read_plan(&envelope("rsa-oaep-sha256")).unwrap();
    let content_key = key("red_gw").unwrap_key(&plan.keys()[0]).unwrap();
    let body = std::fs::read(fixture("rsa-oaep-sha256", &format!("{CID}.bin"))).unwrap();
    for index in [0, 12, body.len() / 2, body.len() - 1] {
        let mut tampered = body.clone();
        tampered[index] ^= 0x80;
        assert!(matches!(
            decrypt_part(&content_key, &tampered),
            Err(XmlEncError::AuthenticationFailed)
        ));
    }
    assert!(matches!(
        decrypt_part(&content_key, &body[..20]),
        Err(XmlEncError::CiphertextTooShort)
    ));
}

#[test]
fn wrong_private_key_fails_generically() {
    let plan = read_plan(&envelope("rsa-oaep-sha256")).unwrap();
    assert!(matches!(
        key("blue_gw").unwrap_key(&plan.keys()[0]),
        Err(XmlEncError::KeyUnwrapFailed)
    ));
    assert!(matches!(
        plan.key_for_certificate(&[&own(cert("blue_gw")), &own(cert("mallory"))]),
        Err(XmlEncError::NoKeyForOurCertificate)
    ));
}

#[test]
fn tampered_cipher_value_fails_generically() {
    let plan = read_plan(&envelope("rsa-oaep-sha256")).unwrap();
    let mut encrypted_key = plan.keys()[0].clone();
    encrypted_key.cipher_value[10] ^= 1;
    assert!(matches!(
        key("red_gw").unwrap_key(&encrypted_key),
        Err(XmlEncError::KeyUnwrapFailed)
    ));
    encrypted_key.cipher_value.truncate(100);
    assert!(matches!(
        key("red_gw").unwrap_key(&encrypted_key),
        Err(XmlEncError::KeyUnwrapFailed)
    ));
}

#[test]
fn domibus_vectors_parse_with_every_key_reference_form() {
    let cases = [
        ("is_incoming_message.xml", "issuer-serial"),
        ("ski_incoming_message.xml", "ski"),
        ("bst_x509v3_incoming_message.xml", "bst"),
        ("bst_X509PKIPathv1_incoming_message.xml", "bst"),
    ];
    for (file, form) in cases {
        let xml = std::fs::read_to_string(Path::new(DOMIBUS).join(file)).unwrap();
        let plan = read_plan(&xml).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(plan.keys().len(), 1, "{file}");
        let part = plan.part_for_content_id("message").unwrap();
        assert_eq!(
            part.mime_type.as_deref(),
            Some("application/gzip"),
            "{file}"
        );
        let recipient = &plan.keys()[0].recipient;
        let ok = match form {
            "issuer-serial" => {
                matches!(recipient, RecipientReference::IssuerSerial { serial, .. } if serial == "10922018999856918860")
            }
            "ski" => matches!(recipient, RecipientReference::SubjectKeyIdentifier(_)),
            _ => matches!(recipient, RecipientReference::Certificate(der) if !der.is_empty()),
        };
        assert!(ok, "{file}: {recipient:?}");
        assert!(matches!(
            plan.key_for_certificate(&[&own(cert("red_gw"))]),
            Err(XmlEncError::NoKeyForOurCertificate)
        ));
    }
}

fn expect_refused(xml: &str, check: impl Fn(&XmlEncError) -> bool) {
    match read_plan(xml) {
        Ok(_) => panic!("accepted"),
        Err(e) => assert!(check(&e), "unexpected error {e:?}"),
    }
}

#[test]
fn refuses_profile_violations() {
    let base = envelope("rsa-oaep-sha256");
    let content_only = "oasis-wss-SwAProfile-1.1#Attachment-Content-Only";
    expect_refused(
        &base.replace(content_only, "oasis-wss-SwAProfile-1.1#Attachment-Complete"),
        |e| matches!(e, XmlEncError::AttachmentCompleteNotAccepted),
    );
    expect_refused(
        &base.replace(
            &format!("http://docs.oasis-open.org/wss/{content_only}"),
            "http://www.w3.org/2001/04/xmlenc#Element",
        ),
        |e| matches!(e, XmlEncError::UnsupportedEncryptedDataType(_)),
    );
    expect_refused(
        &base.replace(&format!("URI=\"cid:{CID}\""), "URI=\"http://evil/x\""),
        |e| matches!(e, XmlEncError::CipherReferenceNotCid),
    );
    expect_refused(
        &base.replace("<xenc:DataReference URI=\"#ED-0\"/>", ""),
        |e| matches!(e, XmlEncError::UnreferencedEncryptedData(id) if id == "ED-0"),
    );
    expect_refused(
        &base.replace(
            "<xenc:DataReference URI=\"#ED-0\"/>",
            "<xenc:DataReference URI=\"#ED-0\"/><xenc:DataReference URI=\"#_body\"/>",
        ),
        |e| matches!(e, XmlEncError::BodyEncrypted),
    );
    expect_refused(
        &base.replace(
            "<xenc:DataReference URI=\"#ED-0\"/>",
            "<xenc:DataReference URI=\"#ED-0\"/><xenc:DataReference URI=\"#_messaging\"/>",
        ),
        |e| matches!(e, XmlEncError::MessagingEncrypted),
    );
    expect_refused(
        &base.replace(
            "<xenc:DataReference URI=\"#ED-0\"/>",
            "<xenc:DataReference URI=\"#ED-0\"/><xenc:DataReference URI=\"#nowhere\"/>",
        ),
        |e| matches!(e, XmlEncError::DanglingDataReference(id) if id == "nowhere"),
    );
    expect_refused(
        &base.replace(
            "<xenc:DataReference URI=\"#ED-0\"/>",
            "<xenc:DataReference URI=\"#ED-0\"/><xenc:DataReference URI=\"#ED-0\"/>",
        ),
        |e| matches!(e, XmlEncError::DataReferencedTwice(id) if id == "ED-0"),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2009/xmlenc11#aes128-gcm",
            "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
        ),
        |e| matches!(e, XmlEncError::UnsupportedDataEncryption(_)),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2009/xmlenc11#rsa-oaep\"",
            "http://www.w3.org/2001/04/xmlenc#rsa-1_5\"",
        ),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "http://www.w3.org/2009/xmlenc11#mgf1sha256",
            "http://www.w3.org/2009/xmlenc11#mgf1sha1",
        ),
        |e| matches!(e, XmlEncError::UnsupportedKeyTransport(_)),
    );
    expect_refused(
        &base.replace(
            "#Attachment-Ciphertext-Transform",
            "#Attachment-Content-Signature-Transform",
        ),
        |e| matches!(e, XmlEncError::UnsupportedTransform(_)),
    );
    expect_refused(
        &base.replace(
            "<wsse:Reference URI=\"#EK-rsa-oaep-sha256\"/>",
            "<wsse:Reference URI=\"#EK-other\"/>",
        ),
        |e| matches!(e, XmlEncError::KeyReferenceMismatch(id) if id == "ED-0"),
    );
    let inline = regex_free_replace_between(
        &base,
        "<xenc:CipherReference",
        "</xenc:CipherReference>",
        "<xenc:CipherValue>AAAA</xenc:CipherValue>",
    );
    expect_refused(&inline, |e| matches!(e, XmlEncError::InlineCipherData));
    let body_encrypted = base.replace(
        "wsu:Id=\"_body\"/>",
        "wsu:Id=\"_body\"><xenc:EncryptedData xmlns:xenc=\"http://www.w3.org/2001/04/xmlenc#\" Id=\"ED-b\"/></env:Body>",
    );
    expect_refused(&body_encrypted, |e| matches!(e, XmlEncError::BodyEncrypted));
}

fn regex_free_replace_between(text: &str, start: &str, end: &str, with: &str) -> String {
    let from = text.find(start).unwrap();
    let to = text[from..].find(end).unwrap() + from + end.len();
    format!("{}{with}{}", &text[..from], &text[to..])
}

#[test]
fn limits_are_enforced() {
    let xml = envelope("rsa-oaep-ski");
    let doc = uppsala::parse(&xml).unwrap();
    let security = security(&doc);
    let tight = PlanLimits {
        max_encrypted_data: 1,
        ..PlanLimits::default()
    };
    assert!(matches!(
        EncryptionPlan::read_with_limits(&doc, security, &tight),
        Err(XmlEncError::TooManyEncryptedData { limit: 1 })
    ));
    let no_keys = PlanLimits {
        max_encrypted_keys: 0,
        ..PlanLimits::default()
    };
    assert!(matches!(
        EncryptionPlan::read_with_limits(&doc, security, &no_keys),
        Err(XmlEncError::TooManyEncryptedKeys { limit: 0 })
    ));
    let short = PlanLimits {
        max_cipher_value_bytes: 128,
        ..PlanLimits::default()
    };
    assert!(matches!(
        EncryptionPlan::read_with_limits(&doc, security, &short),
        Err(XmlEncError::CipherValueTooLong { limit: 128 })
    ));
    let just_below = PlanLimits {
        max_cipher_value_bytes: 255,
        ..PlanLimits::default()
    };
    assert!(matches!(
        EncryptionPlan::read_with_limits(&doc, security, &just_below),
        Err(XmlEncError::CipherValueTooLong { limit: 255 })
    ));
}

const TEMPLATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header><eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"/><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" env:mustUnderstand="true"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></wsse:Security></env:Header><env:Body/></env:Envelope>"#;

struct OurMessage {
    envelope: String,
    parts: Vec<(String, Vec<u8>, Vec<u8>)>,
}

fn encrypt_with_ours(reference: RecipientKeyReference) -> OurMessage {
    let content_key = ContentKey::new(*b"0123456789abcdef");
    let plaintexts: Vec<(String, Vec<u8>)> = vec![
        (
            "payload-1@as4gate.test".to_owned(),
            (0..5000u32).map(|i| (i * 7) as u8).collect(),
        ),
        ("second part@as4gate.test".to_owned(), b"hello".to_vec()),
    ];
    let mut parts = Vec::new();
    let mut attachments = Vec::new();
    for (index, (cid, plaintext)) in plaintexts.iter().enumerate() {
        let iv = [index as u8 + 1; 12];
        let mut encryptor = GcmEncryptor::new(content_key.bytes(), &iv).unwrap();
        let mut body = Vec::new();
        for chunk in plaintext.chunks(333) {
            encryptor.update(chunk, &mut body).unwrap();
        }
        encryptor.finish(&mut body).unwrap();
        parts.push((cid.clone(), plaintext.clone(), body));
        attachments.push(AttachmentEncryption {
            data_id: format!("ED-{index}"),
            content_id: cid.clone(),
            mime_type: "application/gzip".to_owned(),
        });
    }
    let red = cert("red_gw");
    let fragment = EncryptedKeyBuilder::new(&red, "EK-1")
        .reference(reference)
        .build(&content_key, &attachments)
        .unwrap();
    let envelope = insert_into_security_header(TEMPLATE, &fragment).unwrap();
    OurMessage { envelope, parts }
}

#[test]
fn our_encryption_round_trips_through_our_decryption() {
    for reference in [
        RecipientKeyReference::IssuerSerial,
        RecipientKeyReference::BinarySecurityToken {
            token_id: "X509-red".to_owned(),
        },
    ] {
        let message = encrypt_with_ours(reference);
        assert!(
            message.envelope.find("EncryptedKey").unwrap()
                < message.envelope.find("ds:Signature").unwrap()
        );
        let plan = read_plan(&message.envelope).unwrap();
        let (encrypted_key, _) = plan.key_for_certificate(&[&own(cert("red_gw"))]).unwrap();
        let content_key = key("red_gw").unwrap_key(encrypted_key).unwrap();
        for (cid, plaintext, body) in &message.parts {
            let part = plan.part_for_content_id(cid).unwrap();
            assert_eq!(part.mime_type.as_deref(), Some("application/gzip"));
            assert_eq!(&decrypt_part(&content_key, body).unwrap(), plaintext);
        }
    }
}

/// Whether the Python oracle can run; with `CI=true` its absence fails the test.
fn python_available() -> bool {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "python3 with `cryptography` is required when CI=true"
        );
        eprintln!("skipping: python3 with the `cryptography` package is not available");
    }
    ok
}

#[test]
fn python_decrypts_what_we_encrypt() {
    if !python_available() {
        return;
    }
    for reference in [
        RecipientKeyReference::IssuerSerial,
        RecipientKeyReference::BinarySecurityToken {
            token_id: "X509-red".to_owned(),
        },
    ] {
        let message = encrypt_with_ours(reference);
        let dir = tempfile::tempdir().unwrap();
        let envelope_path = dir.path().join("envelope.xml");
        std::fs::write(&envelope_path, &message.envelope).unwrap();
        for (cid, _, body) in &message.parts {
            std::fs::write(dir.path().join(format!("{cid}.bin")), body).unwrap();
        }
        let out_dir = dir.path().join("out");
        let output = Command::new("python3")
            .arg(Path::new(FIXTURES).join("make_fixtures.py"))
            .arg("--decrypt")
            .arg(&envelope_path)
            .arg(format!("{PKI}/red_gw/rsa.key"))
            .arg(dir.path())
            .arg(&out_dir)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "python failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        for (cid, plaintext, _) in &message.parts {
            let decrypted = std::fs::read(out_dir.join(format!("{cid}.plain"))).unwrap();
            assert_eq!(&decrypted, plaintext, "{cid}");
        }
    }
}
