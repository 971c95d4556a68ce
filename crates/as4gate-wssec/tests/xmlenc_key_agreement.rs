//! eDelivery AS4 2.0 key agreement, outbound and back: X25519 (Common Usage Profile) and
//! ECDH-ES over P-256 (Alternative EC profile), each with HKDF-SHA256 and AES-128 key wrap.
//!
//! What [`EncryptedKeyBuilder`] writes for an X25519 or P-256 recipient certificate must be read
//! by our own [`EncryptionPlan`] / [`DecryptionKey`] with every recipient reference form, fail
//! with a named error for the wrong key or a tampered key, and unwrap to the same content key
//! in an independent implementation (Python `cryptography`,
//! `tests/fixtures/xmlenc/unwrap_agreement.py`). Keys come from `test-pki/red_gw`
//! (`x25519.*`, and `ecdsa.*` whose P-256 key also serves for ECDH).

use std::path::{Path, PathBuf};
use std::process::Command;

use as4gate_wssec::xmlenc::{
    AttachmentEncryption, ContentKey, DecryptionKey, EncryptedKey, EncryptedKeyBuilder,
    EncryptionPlan, GcmDecryptor, GcmEncryptor, HKDF_SALT_LEN, KeyAgreement, KeyTransport,
    OwnCertificate, P256_PUBLIC_KEY_LEN, RecipientKeyReference, RecipientReference,
    X25519_PUBLIC_KEY_LEN, XmlEncError, insert_into_security_header,
};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uppsala::{Document, NodeId};

const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-pki");
const ORACLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/xmlenc/unwrap_agreement.py"
);
const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
const TEMPLATE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header><eb:Messaging xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"/><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd" env:mustUnderstand="true"><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></wsse:Security></env:Header><env:Body/></env:Envelope>"#;

/// The two AS4 2.0 key agreements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Profile {
    /// Common Usage Profile: `xmldsig-more#x25519`.
    X25519,
    /// Alternative EC profile: `xmlenc11#ECDH-ES` over P-256.
    P256,
}

impl Profile {
    const ALL: [Self; 2] = [Self::X25519, Self::P256];

    /// The test-pki file stem of this profile's key pair.
    fn stem(self) -> &'static str {
        match self {
            Self::X25519 => "x25519",
            Self::P256 => "ecdsa",
        }
    }

    fn agreement_uri(self) -> &'static str {
        match self {
            Self::X25519 => "http://www.w3.org/2021/04/xmldsig-more#x25519",
            Self::P256 => "http://www.w3.org/2009/xmlenc11#ECDH-ES",
        }
    }

    fn other(self) -> Self {
        match self {
            Self::X25519 => Self::P256,
            Self::P256 => Self::X25519,
        }
    }

    /// The agreement of `key`, which must be of this profile.
    fn agreement(self, key: &EncryptedKey) -> &KeyAgreement {
        match (self, &key.transport) {
            (Self::X25519, KeyTransport::X25519HkdfKeyWrap(agreement))
            | (Self::P256, KeyTransport::EcdhEsP256HkdfKeyWrap(agreement)) => agreement,
            (_, other) => panic!("{self:?}: unexpected transport {other:?}"),
        }
    }
}

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

fn cert_file(party: &str, stem: &str) -> Vec<u8> {
    pem_der(format!("{PKI}/{party}/{stem}.crt"))
}

fn key_path(party: &str, stem: &str) -> PathBuf {
    PathBuf::from(format!("{PKI}/{party}/{stem}.key"))
}

fn key_file(party: &str, stem: &str) -> DecryptionKey {
    DecryptionKey::from_pkcs8_der(&pem_der(key_path(party, stem))).unwrap()
}

fn cert(party: &str, profile: Profile) -> Vec<u8> {
    cert_file(party, profile.stem())
}

fn key(party: &str, profile: Profile) -> DecryptionKey {
    key_file(party, profile.stem())
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

fn decrypt_part(key: &ContentKey, body: &[u8]) -> Result<Vec<u8>, XmlEncError> {
    let mut decryptor = GcmDecryptor::new(key.bytes());
    let mut out = Vec::new();
    for chunk in body.chunks(700) {
        decryptor.update(chunk, &mut out)?;
    }
    decryptor.finish()?;
    Ok(out)
}

const CONTENT_KEY: [u8; 16] = *b"AS4 2.0 cek 0123";

/// An envelope with our EncryptedKey + EncryptedData, and (cid, plaintext, encrypted body).
struct OurMessage {
    envelope: String,
    parts: Vec<(String, Vec<u8>, Vec<u8>)>,
}

fn encrypt_for(recipient_cert: &[u8], reference: RecipientKeyReference) -> OurMessage {
    let content_key = ContentKey::new(CONTENT_KEY);
    let plaintexts = [
        (
            "payload-1@as4gate.test",
            (0..3000u32).map(|i| (i * 13) as u8).collect::<Vec<_>>(),
        ),
        ("second part@as4gate.test", b"<x/>".to_vec()),
    ];
    let mut parts = Vec::new();
    let mut attachments = Vec::new();
    for (index, (cid, plaintext)) in plaintexts.iter().enumerate() {
        let mut encryptor = GcmEncryptor::new(content_key.bytes(), &[index as u8 + 7; 12]).unwrap();
        let mut body = Vec::new();
        encryptor.update(plaintext, &mut body).unwrap();
        encryptor.finish(&mut body).unwrap();
        parts.push(((*cid).to_owned(), plaintext.clone(), body));
        attachments.push(AttachmentEncryption {
            data_id: format!("ED-{index}"),
            content_id: (*cid).to_owned(),
            mime_type: "application/gzip".to_owned(),
        });
    }
    let fragment = EncryptedKeyBuilder::new(recipient_cert, "EK-1")
        .reference(reference)
        .build(&content_key, &attachments)
        .unwrap();
    let envelope = insert_into_security_header(TEMPLATE, &fragment).unwrap();
    OurMessage { envelope, parts }
}

fn encrypt(profile: Profile, reference: RecipientKeyReference) -> OurMessage {
    encrypt_for(&cert("red_gw", profile), reference)
}

fn every_reference_form() -> [RecipientKeyReference; 3] {
    [
        RecipientKeyReference::IssuerSerial,
        RecipientKeyReference::BinarySecurityToken {
            token_id: "X509-red-enc".to_owned(),
        },
        RecipientKeyReference::SubjectKeyIdentifier,
    ]
}

fn round_trip(profile: Profile) {
    let ours = cert("red_gw", profile);
    for reference in every_reference_form() {
        let message = encrypt(profile, reference.clone());
        let plan = read_plan(&message.envelope).unwrap_or_else(|e| panic!("{reference:?}: {e}"));
        let candidates = [
            cert_file("red_gw", "rsa"),
            cert("red_gw", profile.other()),
            ours.clone(),
        ];
        let candidates: Vec<OwnCertificate> = candidates
            .into_iter()
            .map(|der| OwnCertificate::new(der).unwrap())
            .collect();
        let candidates: Vec<&OwnCertificate> = candidates.iter().collect();
        let (encrypted_key, index) = plan.key_for_certificate(&candidates).unwrap();
        assert_eq!(
            index, 2,
            "{profile:?} {reference:?}: must pick the {profile:?} certificate"
        );
        profile.agreement(encrypted_key);
        let form_matches = match (&reference, &encrypted_key.recipient) {
            (RecipientKeyReference::IssuerSerial, RecipientReference::IssuerSerial { .. })
            | (
                RecipientKeyReference::SubjectKeyIdentifier,
                RecipientReference::SubjectKeyIdentifier(_),
            ) => true,
            (
                RecipientKeyReference::BinarySecurityToken { .. },
                RecipientReference::Certificate(der),
            ) => der == &ours,
            _ => false,
        };
        assert!(
            form_matches,
            "{profile:?} {reference:?}: read back as {:?}",
            encrypted_key.recipient
        );
        let content_key = key("red_gw", profile).unwrap_key(encrypted_key).unwrap();
        assert_eq!(
            content_key.bytes(),
            &CONTENT_KEY,
            "{profile:?} {reference:?}"
        );
        assert_eq!(plan.parts_of(encrypted_key).count(), message.parts.len());
        for (cid, plaintext, body) in &message.parts {
            assert!(plan.part_for_content_id(cid).is_some());
            assert_eq!(&decrypt_part(&content_key, body).unwrap(), plaintext);
        }
    }
}

#[test]
fn x25519_round_trips_with_every_reference_form() {
    round_trip(Profile::X25519);
}

#[test]
fn p256_ecdh_es_round_trips_with_every_reference_form() {
    round_trip(Profile::P256);
}

#[test]
fn fragment_has_the_as4_2_0_agreement_shape() {
    for profile in Profile::ALL {
        let message = encrypt(profile, RecipientKeyReference::IssuerSerial);
        let xml = &message.envelope;
        for expected in [
            r#"<xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#kw-aes128"/>"#,
            &format!(
                r#"<xenc:AgreementMethod Algorithm="{}">"#,
                profile.agreement_uri()
            ),
            r#"Algorithm="http://www.w3.org/2021/04/xmldsig-more#hkdf""#,
            r#"<dsig-more:HKDFParams xmlns:dsig-more="http://www.w3.org/2021/04/xmldsig-more#">"#,
            r#"<dsig-more:PRF Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"/>"#,
            "<dsig-more:Salt>",
            "<dsig-more:KeyLength>16</dsig-more:KeyLength>",
            "<xenc:OriginatorKeyInfo><dsig11:DEREncodedKeyValue",
            "<xenc:RecipientKeyInfo><wsse:SecurityTokenReference",
        ] {
            assert!(
                xml.contains(expected),
                "{profile:?}: missing {expected}\n{xml}"
            );
        }
        assert!(xml.find("EncryptedKey").unwrap() < xml.find("ds:Signature").unwrap());
        assert!(!xml.contains("rsa-oaep"), "{profile:?}");
        let plan = read_plan(xml).unwrap();
        let agreement = profile.agreement(&plan.keys()[0]);
        assert_eq!(agreement.salt.as_ref().map(Vec::len), Some(HKDF_SALT_LEN));
        assert_eq!(agreement.info, None);
        let expected_len = match profile {
            Profile::X25519 => X25519_PUBLIC_KEY_LEN,
            Profile::P256 => P256_PUBLIC_KEY_LEN,
        };
        assert_eq!(agreement.originator_public_key.len(), expected_len);
        assert_eq!(
            plan.keys()[0].cipher_value.len(),
            24,
            "RFC 3394 wrap of 16 bytes"
        );
    }
}

#[test]
fn every_encrypted_key_gets_a_fresh_ephemeral_key_and_salt() {
    for profile in Profile::ALL {
        let first =
            read_plan(&encrypt(profile, RecipientKeyReference::IssuerSerial).envelope).unwrap();
        let second =
            read_plan(&encrypt(profile, RecipientKeyReference::IssuerSerial).envelope).unwrap();
        let (a, b) = (
            profile.agreement(&first.keys()[0]),
            profile.agreement(&second.keys()[0]),
        );
        assert_ne!(
            a.originator_public_key, b.originator_public_key,
            "{profile:?}"
        );
        assert_ne!(a.salt, b.salt, "{profile:?}");
        assert_ne!(
            first.keys()[0].cipher_value,
            second.keys()[0].cipher_value,
            "{profile:?}"
        );
    }
}

#[test]
fn wrong_recipient_key_fails_with_named_errors() {
    for profile in Profile::ALL {
        let plan =
            read_plan(&encrypt(profile, RecipientKeyReference::IssuerSerial).envelope).unwrap();
        let encrypted_key = &plan.keys()[0];
        // Same curve, someone else's key: the agreement yields another KEK, the unwrap fails.
        for party in ["blue_gw", "mallory"] {
            assert!(
                matches!(
                    key(party, profile).unwrap_key(encrypted_key),
                    Err(XmlEncError::KeyUnwrapFailed)
                ),
                "{profile:?} {party}"
            );
        }
        // Our key of another type: refused before any private-key operation.
        for other in [key("red_gw", profile.other()), key_file("red_gw", "rsa")] {
            assert!(matches!(
                other.unwrap_key(encrypted_key),
                Err(XmlEncError::KeyTypeMismatch)
            ));
        }
        let theirs = [cert("blue_gw", profile), cert("mallory", profile)]
            .map(|der| OwnCertificate::new(der).unwrap());
        assert!(matches!(
            plan.key_for_certificate(&[&theirs[0], &theirs[1]]),
            Err(XmlEncError::NoKeyForOurCertificate)
        ));
    }
}

#[test]
fn tampered_wrapped_key_fails_with_key_unwrap_failed() {
    for profile in Profile::ALL {
        let message = encrypt(profile, RecipientKeyReference::IssuerSerial);
        let plan = read_plan(&message.envelope).unwrap();
        let red = key("red_gw", profile);
        let original = &plan.keys()[0];
        for index in [0, 7, 8, 23] {
            let mut tampered = original.clone();
            tampered.cipher_value[index] ^= 0x01;
            assert!(
                matches!(red.unwrap_key(&tampered), Err(XmlEncError::KeyUnwrapFailed)),
                "{profile:?} byte {index}"
            );
        }
        let mut truncated = original.clone();
        truncated.cipher_value.truncate(16);
        assert!(matches!(
            red.unwrap_key(&truncated),
            Err(XmlEncError::KeyUnwrapFailed)
        ));
        // A different salt derives a different KEK.
        let mut salted = original.clone();
        match &mut salted.transport {
            KeyTransport::X25519HkdfKeyWrap(a) | KeyTransport::EcdhEsP256HkdfKeyWrap(a) => {
                a.salt.as_mut().unwrap()[0] ^= 0x01;
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            red.unwrap_key(&salted),
            Err(XmlEncError::KeyUnwrapFailed)
        ));
        // Tampering on the wire: one character of the CipherValue text.
        let plan_text = {
            let start = message.envelope.find("<xenc:CipherValue>").unwrap() + 18;
            let mut bytes = message.envelope.clone().into_bytes();
            bytes[start] = if bytes[start] == b'A' { b'B' } else { b'A' };
            String::from_utf8(bytes).unwrap()
        };
        let plan = read_plan(&plan_text).unwrap();
        assert!(matches!(
            red.unwrap_key(&plan.keys()[0]),
            Err(XmlEncError::KeyUnwrapFailed)
        ));
    }
}

#[test]
fn key_length_other_than_128_bits_is_refused() {
    for profile in Profile::ALL {
        let envelope = encrypt(profile, RecipientKeyReference::IssuerSerial).envelope;
        assert!(
            !envelope.contains("<dsig-more:Salt><"),
            "{profile:?}: Salt not plain"
        );
        for length in ["256", "32", "0", "-128", "one hundred"] {
            let changed = envelope.replace(
                "<dsig-more:KeyLength>16</dsig-more:KeyLength>",
                &format!("<dsig-more:KeyLength>{length}</dsig-more:KeyLength>"),
            );
            assert_ne!(changed, envelope);
            assert!(
                matches!(
                    read_plan(&changed),
                    Err(XmlEncError::UnsupportedKeyTransport(_))
                ),
                "{profile:?} KeyLength {length}"
            );
        }
        // 128 is the same length in bits, as go-as4 writes it, with its Salt in `Specified`.
        let go_as4 = envelope
            .replace(
                "<dsig-more:KeyLength>16</dsig-more:KeyLength>",
                "<dsig-more:KeyLength>128</dsig-more:KeyLength>",
            )
            .replace("<dsig-more:Salt>", "<dsig-more:Salt><dsig-more:Specified>")
            .replace(
                "</dsig-more:Salt>",
                "</dsig-more:Specified></dsig-more:Salt>",
            );
        let plan = read_plan(&go_as4).expect("go-as4 form");
        let original = read_plan(&envelope).unwrap();
        assert_eq!(
            profile.agreement(&plan.keys()[0]).salt,
            profile.agreement(&original.keys()[0]).salt,
            "{profile:?}: the Specified salt is the same salt"
        );
    }
}

/// The base64 text of the first `DEREncodedKeyValue` in `xml`.
fn originator_spki(xml: &str) -> &str {
    let open = "<dsig11:DEREncodedKeyValue xmlns:dsig11=\"http://www.w3.org/2009/xmldsig11#\">";
    let start = xml.find(open).unwrap() + open.len();
    let end = start + xml[start..].find("</dsig11:DEREncodedKeyValue>").unwrap();
    &xml[start..end]
}

#[test]
fn agreement_refuses_keys_of_the_other_curve_and_points_off_the_curve() {
    let p256 = encrypt(Profile::P256, RecipientKeyReference::IssuerSerial).envelope;
    let x25519 = encrypt(Profile::X25519, RecipientKeyReference::IssuerSerial).envelope;
    // ECDH-ES with an X25519 ephemeral key, x25519 with a P-256 one.
    for (envelope, foreign) in [(&p256, &x25519), (&x25519, &p256)] {
        let swapped = envelope.replace(originator_spki(envelope), originator_spki(foreign));
        assert!(matches!(
            read_plan(&swapped),
            Err(XmlEncError::UnsupportedKeyTransport(_))
        ));
    }
    // A P-256 point whose Y coordinate is changed is no longer on the curve.
    let mut spki = STANDARD.decode(originator_spki(&p256)).unwrap();
    *spki.last_mut().unwrap() ^= 0x01;
    let off_curve = p256.replace(originator_spki(&p256), &STANDARD.encode(&spki));
    assert!(matches!(
        read_plan(&off_curve),
        Err(XmlEncError::InvalidPublicKey)
    ));
    // The agreement algorithm names the curve: an unknown one is refused.
    let unknown = p256.replace(
        "http://www.w3.org/2009/xmlenc11#ECDH-ES",
        "http://www.w3.org/2009/xmlenc11#dh-es",
    );
    assert!(matches!(
        read_plan(&unknown),
        Err(XmlEncError::UnsupportedKeyTransport(_))
    ));
}

#[test]
fn recipient_certificate_key_type_selects_the_transport() {
    let rsa = encrypt_for(
        &cert_file("red_gw", "rsa"),
        RecipientKeyReference::SubjectKeyIdentifier,
    );
    let plan = read_plan(&rsa.envelope).unwrap();
    assert!(matches!(
        plan.keys()[0].transport,
        KeyTransport::RsaOaep { .. }
    ));
    assert!(!rsa.envelope.contains("AgreementMethod"));
    let content_key = key_file("red_gw", "rsa")
        .unwrap_key(&plan.keys()[0])
        .unwrap();
    assert_eq!(content_key.bytes(), &CONTENT_KEY);

    let ed25519 = cert_file("red_gw", "ed25519");
    let refused =
        EncryptedKeyBuilder::new(&ed25519, "EK-1").build(&ContentKey::new(CONTENT_KEY), &[]);
    assert!(
        matches!(&refused, Err(XmlEncError::UnsupportedRecipientKey(oid)) if oid == "1.3.101.112"),
        "{refused:?}"
    );
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
fn python_unwraps_what_we_wrap() {
    if !python_available() {
        return;
    }
    for profile in Profile::ALL {
        for reference in every_reference_form() {
            let message = encrypt(profile, reference.clone());
            let dir = tempfile::tempdir().unwrap();
            let envelope_path = dir.path().join("envelope.xml");
            std::fs::write(&envelope_path, &message.envelope).unwrap();
            let output = Command::new("python3")
                .arg(ORACLE)
                .arg(&envelope_path)
                .arg(key_path("red_gw", profile.stem()))
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{profile:?} {reference:?}: python failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            let hex: String = CONTENT_KEY.iter().map(|b| format!("{b:02x}")).collect();
            assert_eq!(
                String::from_utf8_lossy(&output.stdout).trim(),
                hex,
                "{profile:?} {reference:?}"
            );
        }
    }
}
