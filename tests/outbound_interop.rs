//! Independent checks of what we send: outbound UserMessages composed by
//! [`as4gate::outbound::compose`] are verified and decrypted by implementations that share no
//! code with ours.
//!
//! - `xmlsec1` (libxmlsec1 + OpenSSL) verifies the WS-Security signature of messages without
//!   attachments, signed with RSA and with ECDSA P-256, using the certificate the message's
//!   BinarySecurityToken carries. xmlsec1 knows neither the SwA attachment transform nor
//!   Ed25519, hence no attachments there.
//! - `tests/fixtures/outbound/verify_signature.py` (lxml's Exclusive C14N, Python
//!   `cryptography`) verifies signatures with attachments (RSA, ECDSA, Ed25519): SignedInfo,
//!   every same-document reference and every `cid:` reference under the SwA
//!   Attachment-Content-Signature-Transform.
//! - `tests/fixtures/outbound/decrypt_attachment.py` (Python `cryptography`) decrypts
//!   attachments encrypted to an X25519 and to a P-256 certificate (eDelivery AS4 2.0 key
//!   agreement, HKDF, AES key wrap, AES-128-GCM) and gunzips them.
//!
//! Every check has a negative control (tampered envelope, attachment or key), so a check that
//! passes vacuously fails the test. Without `xmlsec1`, or without python3 with `lxml` and
//! `cryptography`, the tests are skipped with a printed reason, except with `CI=true`, where
//! a missing tool fails them.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::repo;

use as4gate::outbound::compose::{Composed, Outgoing, OutgoingPayload, SenderKeys, compose};
use as4gate_pmode::PMode;
use as4gate_wssec::sign::SigningIdentity;
use base64::Engine;

/// The message timestamp: pinned, inside the test certificates' validity.
const NOW: time::OffsetDateTime = time::macros::datetime!(2026-06-01 12:00 UTC);

/// An XML payload whose canonical form differs from its bytes (declaration, attribute order,
/// an unused namespace, an empty element, whitespace in a tag).
const XML_PAYLOAD: &[u8] = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<inv:Invoice xmlns:inv=\"urn:example:invoice\" xmlns:unused=\"urn:example:unused\" b=\"2\" a=\"1\">\n  <inv:Line amount=\"10.00\" ></inv:Line>\n  <inv:Note/>\n</inv:Invoice>\n";

/// A text payload with LF, CRLF and lone CR line endings.
const TEXT_PAYLOAD: &[u8] = b"line one\nline two\r\nline three\rend\n";

/// The ID attributes xmlsec1 must know (our Body and Messaging carry `wsu:Id`).
const XMLSEC1_ID_ATTRIBUTES: &[&str] = &[
    "--id-attr:Id",
    "http://www.w3.org/2003/05/soap-envelope:Body",
    "--id-attr:Id",
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging",
];

fn pki(rel: &str) -> PathBuf {
    repo().join("test-pki").join(rel)
}

fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures/outbound").join(name)
}

/// A blue_gw → red_gw P-Mode that signs, and encrypts and compresses as asked.
fn pmode(profile: &str, encrypt: bool, compress: bool) -> PMode {
    let mut file = common::pair::PModeFile::new("outbound-interop", profile);
    file.encrypt = encrypt;
    file.compress = compress;
    PMode::from_toml_str(&file.toml(), Path::new("outbound-interop.toml")).unwrap()
}

/// The DER of the first certificate in a test-pki PEM file.
fn certificate(rel: &str) -> Vec<u8> {
    as4gate::pem::certificates(&pki(rel)).unwrap().remove(0)
}

/// blue_gw's signing identity of `kind` ("rsa", "ecdsa" or "ed25519").
fn blue_signer(kind: &str) -> SigningIdentity {
    let key = as4gate::pem::pkcs8_key(&pki(&format!("blue_gw/{kind}.key"))).unwrap();
    let cert = certificate(&format!("blue_gw/{kind}.crt"));
    SigningIdentity::from_pkcs8_der(&key, &cert, vec![]).unwrap()
}

fn payload(content_id: &str, mime_type: &str, content: &[u8]) -> OutgoingPayload {
    OutgoingPayload {
        content_id: content_id.to_owned(),
        mime_type: mime_type.to_owned(),
        character_set: None,
        content: content.to_vec(),
        already_compressed: false,
    }
}

/// Binary, XML and text payloads: the three canonicalisations of the SwA content transform
/// when sent uncompressed, raw gzip octets when compressed.
fn payloads() -> Vec<OutgoingPayload> {
    let binary: Vec<u8> = (0..4096u32).map(|i| (i * 7 % 256) as u8).collect();
    vec![
        payload("binary@blue.test", "application/octet-stream", &binary),
        payload("invoice@blue.test", "application/xml", XML_PAYLOAD),
        payload("note@blue.test", "text/plain", TEXT_PAYLOAD),
    ]
}

fn compose_message(
    pmode: &PMode,
    signing: &SigningIdentity,
    receiver_certificate: Option<&[u8]>,
    message_id: &str,
    payloads: Vec<OutgoingPayload>,
) -> Composed {
    compose(
        &Outgoing {
            pmode,
            message_id: message_id.to_owned(),
            conversation_id: "conversation-1".to_owned(),
            properties: vec![],
            payloads,
            now: NOW,
        },
        &SenderKeys {
            signing,
            receiver_certificate,
        },
    )
    .unwrap()
}

/// The message with one character of `eb:Messaging` changed (the ConversationId).
fn tamper_messaging(envelope: &str) -> String {
    let tampered = envelope.replacen(
        "<eb:ConversationId>conversation-1<",
        "<eb:ConversationId>conversation-2<",
        1,
    );
    assert_ne!(tampered, envelope, "no ConversationId to tamper with");
    tampered
}

/// The DER certificate in the envelope's BinarySecurityToken.
fn binary_security_token(envelope: &str) -> Vec<u8> {
    let start = envelope
        .find("<wsse:BinarySecurityToken")
        .expect("a BinarySecurityToken");
    let content = start + envelope[start..].find('>').unwrap() + 1;
    let end = content
        + envelope[content..]
            .find("</wsse:BinarySecurityToken>")
            .unwrap();
    let text: String = envelope[content..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

/// Whether `program args` runs successfully; when it does not, the test is skipped with a
/// printed reason, or fails under `CI=true`.
fn tool_available(program: &str, args: &[&str], what: &str) -> bool {
    let ok = Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{what} is required when CI=true"
        );
        eprintln!("skipping: {what} is not available");
    }
    ok
}

fn xmlsec1_available() -> bool {
    tool_available(
        "xmlsec1",
        &["--version"],
        "xmlsec1 (apt-get install xmlsec1)",
    )
}

fn python_available() -> bool {
    tool_available(
        "python3",
        &["-c", "import lxml.etree, cryptography"],
        "python3 with `lxml` and `cryptography` (pip install lxml cryptography)",
    )
}

/// Runs a command; returns whether it succeeded, its stdout and its stderr.
fn run(command: &mut Command) -> (bool, Vec<u8>, String) {
    let out = command.output().unwrap();
    (
        out.status.success(),
        out.stdout,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `xmlsec1 --verify` of `envelope` with the public key of the DER certificate `key_cert`,
/// same-document references only; returns success and xmlsec1's log.
fn xmlsec1_verify(dir: &Path, envelope: &str, key_cert: &[u8]) -> (bool, String) {
    let file = dir.join("message.xml");
    let cert = dir.join("key.der");
    std::fs::write(&file, envelope).unwrap();
    std::fs::write(&cert, key_cert).unwrap();
    let (ok, stdout, stderr) = run(Command::new("xmlsec1")
        .arg("--verify")
        .arg("--pubkey-cert-der")
        .arg(&cert)
        .args(["--enabled-reference-uris", "same-doc"])
        .args(XMLSEC1_ID_ATTRIBUTES)
        .arg(&file));
    (ok, format!("{}{stderr}", String::from_utf8_lossy(&stdout)))
}

/// A message from blue_gw signed with its `kind` key, without attachments, verifies with
/// xmlsec1 with the BinarySecurityToken's certificate; a tampered copy and another key fail.
fn xmlsec1_checks_outbound_signature(kind: &str, profile: &str, signature_method: &str) {
    let signing = blue_signer(kind);
    let composed = compose_message(
        &pmode(profile, false, false),
        &signing,
        None,
        &format!("xmlsec1-{kind}@blue.test"),
        vec![],
    );
    assert!(composed.parts.is_empty());
    assert!(
        composed
            .envelope
            .contains(&format!("SignatureMethod Algorithm=\"{signature_method}\"")),
        "{kind}: not signed with {signature_method}: {}",
        composed.envelope
    );
    // The key xmlsec1 uses is the one a receiver takes: the message's own token.
    let token = binary_security_token(&composed.envelope);
    assert_eq!(token, certificate(&format!("blue_gw/{kind}.crt")));

    let dir = tempfile::tempdir().unwrap();
    let (ok, log) = xmlsec1_verify(dir.path(), &composed.envelope, &token);
    assert!(ok, "xmlsec1 refused our {kind} signature: {log}");
    assert!(
        log.contains("SignedInfo References (ok/all): 2/2"),
        "{kind}: {log}"
    );

    // Negative controls: xmlsec1 notices a changed eb:Messaging and a wrong key.
    let tampered = tamper_messaging(&composed.envelope);
    let (ok, log) = xmlsec1_verify(dir.path(), &tampered, &token);
    assert!(!ok, "xmlsec1 accepted a tampered {kind} envelope: {log}");
    assert!(
        log.contains("data and digest do not match"),
        "{kind}: {log}"
    );
    let other = certificate(&format!("red_gw/{kind}.crt"));
    let (ok, log) = xmlsec1_verify(dir.path(), &composed.envelope, &other);
    assert!(
        !ok,
        "xmlsec1 accepted our {kind} signature with red_gw's key: {log}"
    );
    assert!(
        log.contains("signature verification failed"),
        "{kind}: {log}"
    );
}

#[test]
fn rsa_signed_outbound_message_verifies_with_xmlsec1() {
    if xmlsec1_available() {
        xmlsec1_checks_outbound_signature(
            "rsa",
            "edelivery-as4-1.15",
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
        );
    }
}

#[test]
fn ecdsa_signed_outbound_message_verifies_with_xmlsec1() {
    if xmlsec1_available() {
        xmlsec1_checks_outbound_signature(
            "ecdsa",
            "edelivery-as4-2.0",
            "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
        );
    }
}

/// An attachment as the Python signature check reads it: Content-ID, the content type it was
/// signed under, and its bytes as signed.
struct SignedAttachment<'a> {
    content_id: &'a str,
    content_type: &'a str,
    body: &'a [u8],
}

/// Runs `verify_signature.py` on `envelope` and `attachments` (trusting test-pki's CA);
/// returns success, its stdout and its stderr.
fn python_verify_signature(
    envelope: &str,
    attachments: &[SignedAttachment<'_>],
) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let envelope_file = dir.path().join("envelope.xml");
    std::fs::write(&envelope_file, envelope).unwrap();
    let mut listed = Vec::new();
    for (i, attachment) in attachments.iter().enumerate() {
        let file = dir.path().join(format!("part-{i}.bin"));
        std::fs::write(&file, attachment.body).unwrap();
        listed.push(serde_json::json!({
            "cid": attachment.content_id,
            "content_type": attachment.content_type,
            "file": file,
        }));
    }
    let manifest = dir.path().join("manifest.json");
    std::fs::write(
        &manifest,
        serde_json::json!({ "attachments": listed }).to_string(),
    )
    .unwrap();
    let (ok, stdout, stderr) = run(Command::new("python3")
        .arg(fixture("verify_signature.py"))
        .arg(&envelope_file)
        .arg(&manifest)
        .arg(pki("ca/ca.crt")));
    (ok, String::from_utf8_lossy(&stdout).into_owned(), stderr)
}

fn signed_attachments(composed: &Composed) -> Vec<SignedAttachment<'_>> {
    composed
        .parts
        .iter()
        .map(|p| SignedAttachment {
            content_id: &p.content_id,
            content_type: &p.content_type,
            body: &p.body,
        })
        .collect()
}

#[test]
fn outbound_signatures_with_attachments_verify_in_python_for_rsa_ecdsa_ed25519() {
    if !python_available() {
        return;
    }
    for (kind, profile, name) in [
        ("rsa", "edelivery-as4-1.15", "rsa-sha256"),
        ("ecdsa", "edelivery-as4-2.0", "ecdsa-sha256"),
        ("ed25519", "edelivery-as4-2.0", "eddsa-ed25519"),
    ] {
        let signing = blue_signer(kind);
        for compress in [false, true] {
            let case = format!("{kind}, compress = {compress}");
            let composed = compose_message(
                &pmode(profile, false, compress),
                &signing,
                None,
                &format!("python-{kind}-{compress}@blue.test"),
                payloads(),
            );
            let expected_type = |mime: &str| {
                if compress {
                    "application/gzip".to_owned()
                } else {
                    mime.to_owned()
                }
            };
            let sent_types: Vec<_> = composed.parts.iter().map(|p| &p.content_type).collect();
            assert_eq!(
                sent_types,
                [
                    &expected_type("application/octet-stream"),
                    &expected_type("application/xml"),
                    &expected_type("text/plain"),
                ],
                "{case}"
            );

            let (ok, stdout, stderr) =
                python_verify_signature(&composed.envelope, &signed_attachments(&composed));
            assert!(ok, "{case}: Python refused our signature: {stderr}");
            assert_eq!(
                stdout.trim(),
                format!("ok {name} same-document=2 attachments=3"),
                "{case}"
            );

            // Negative controls. One bit of one attachment changed:
            let mut altered = composed.clone();
            altered.parts[0].body[100] ^= 0x01;
            let (ok, _, stderr) =
                python_verify_signature(&altered.envelope, &signed_attachments(&altered));
            assert!(!ok, "{case}: Python accepted a tampered attachment");
            assert!(
                stderr.contains("digest mismatch for cid:binary@blue.test"),
                "{case}: {stderr}"
            );
            // Uncompressed XML and text parts are digested after their SwA canonicalisation
            // (Exclusive C14N, CRLF line endings): read as raw octets, they do not match.
            if !compress {
                for (index, cid) in [(1, "invoice@blue.test"), (2, "note@blue.test")] {
                    let mut raw = signed_attachments(&composed);
                    raw[index].content_type = "application/octet-stream";
                    let (ok, _, stderr) = python_verify_signature(&composed.envelope, &raw);
                    assert!(!ok, "{case}: {cid} digested as raw octets");
                    assert!(
                        stderr.contains(&format!("digest mismatch for cid:{cid}")),
                        "{case}: {stderr}"
                    );
                }
            }
            // One character of eb:Messaging changed:
            let tampered = tamper_messaging(&composed.envelope);
            let (ok, _, stderr) =
                python_verify_signature(&tampered, &signed_attachments(&composed));
            assert!(!ok, "{case}: Python accepted a tampered eb:Messaging");
            assert!(
                stderr.contains("digest mismatch for #_messaging"),
                "{case}: {stderr}"
            );
            // Another party's certificate (same CA, same key type) in the token:
            let b64 = base64::engine::general_purpose::STANDARD;
            let ours = b64.encode(binary_security_token(&composed.envelope));
            let theirs = b64.encode(certificate(&format!("red_gw/{kind}.crt")));
            let swapped = composed.envelope.replacen(&ours, &theirs, 1);
            assert_ne!(swapped, composed.envelope);
            let (ok, _, stderr) = python_verify_signature(&swapped, &signed_attachments(&composed));
            assert!(
                !ok,
                "{case}: Python accepted the signature with another key"
            );
            assert!(
                stderr.contains("SignatureValue does not verify"),
                "{case}: {stderr}"
            );
        }
    }
}

/// Encrypts to red_gw's `recipient` certificate ("x25519" or "ecdsa"), signed by blue_gw's
/// `signer` key, under the eDelivery AS4 2.0 profile, with and without compression. Python
/// decrypts every part with red_gw's private key and gets the payload back, then checks the
/// signature over the decrypted parts; a wrong private key and an altered ciphertext fail.
fn python_decrypts_outbound_attachments(recipient: &str, signer: &str) {
    let signing = blue_signer(signer);
    let receiver = certificate(&format!("red_gw/{recipient}.crt"));
    let key = pki(&format!("red_gw/{recipient}.key"));
    let cert = pki(&format!("red_gw/{recipient}.crt"));
    for compress in [true, false] {
        let case = format!("{recipient}, compress = {compress}");
        let sent = payloads();
        let composed = compose_message(
            &pmode("edelivery-as4-2.0", true, compress),
            &signing,
            Some(&receiver),
            &format!("encrypted-{recipient}-{compress}@blue.test"),
            sent.clone(),
        );
        assert!(
            composed.envelope.contains("<xenc:EncryptedKey"),
            "{case}: {}",
            composed.envelope
        );
        let dir = tempfile::tempdir().unwrap();
        let envelope_file = dir.path().join("envelope.xml");
        std::fs::write(&envelope_file, &composed.envelope).unwrap();
        let decrypt = |key: &Path, part: &[u8], cid: &str, out: &Path| {
            std::fs::create_dir_all(out).unwrap();
            let part_file = out.join("part.bin");
            std::fs::write(&part_file, part).unwrap();
            run(Command::new("python3")
                .arg(fixture("decrypt_attachment.py"))
                .arg(&envelope_file)
                .arg(key)
                .arg(&cert)
                .arg(cid)
                .arg(&part_file)
                .arg(out))
        };

        let mut decrypted_parts = Vec::new();
        for (i, (part, original)) in composed.parts.iter().zip(&sent).enumerate() {
            assert_eq!(part.content_id, original.content_id);
            assert_eq!(part.content_type, "application/octet-stream", "{case}");
            let head = &original.content[..16];
            assert!(
                !part.body.windows(head.len()).any(|w| w == head),
                "{case}: part {i} is sent in clear"
            );
            let out = dir.path().join(format!("part-{i}"));
            let (ok, stdout, stderr) = decrypt(&key, &part.body, &part.content_id, &out);
            assert!(ok, "{case}: Python could not decrypt part {i}: {stderr}");
            let report: serde_json::Value = serde_json::from_slice(&stdout).unwrap();
            assert_eq!(report["compressed"], compress, "{case}");
            let payload = std::fs::read(out.join("payload.bin")).unwrap();
            assert!(payload == original.content, "{case}: part {i} differs");
            let mime_type = report["mime_type"].as_str().unwrap().to_owned();
            let expected_type = if compress {
                "application/gzip"
            } else {
                original.mime_type.as_str()
            };
            assert_eq!(mime_type, expected_type, "{case}");
            decrypted_parts.push((
                part.content_id.clone(),
                mime_type,
                std::fs::read(out.join("decrypted.bin")).unwrap(),
            ));

            // Negative controls: another private key, and one altered ciphertext bit.
            let other_key = pki(&format!("blue_gw/{recipient}.key"));
            let (ok, _, stderr) = decrypt(&other_key, &part.body, &part.content_id, &out);
            assert!(!ok, "{case}: decrypted with blue_gw's key");
            assert!(stderr.contains("does not unwrap"), "{case}: {stderr}");
            let mut altered = part.body.clone();
            altered[20] ^= 0x01;
            let (ok, _, stderr) = decrypt(&key, &altered, &part.content_id, &out);
            assert!(!ok, "{case}: decrypted an altered part");
            assert!(stderr.contains("tag mismatch"), "{case}: {stderr}");
        }

        // The receiver's next step: the signature over the decrypted parts.
        let attachments: Vec<_> = decrypted_parts
            .iter()
            .map(|(cid, mime, body)| SignedAttachment {
                content_id: cid,
                content_type: mime,
                body,
            })
            .collect();
        let (ok, stdout, stderr) = python_verify_signature(&composed.envelope, &attachments);
        assert!(
            ok,
            "{case}: Python refused the signature of the decrypted parts: {stderr}"
        );
        assert!(
            stdout.trim().ends_with("same-document=2 attachments=3"),
            "{case}: {stdout}"
        );
    }
}

#[test]
fn x25519_encrypted_attachment_decrypts_in_python() {
    if python_available() {
        python_decrypts_outbound_attachments("x25519", "ed25519");
    }
}

#[test]
fn ecdh_es_p256_encrypted_attachment_decrypts_in_python() {
    if python_available() {
        python_decrypts_outbound_attachments("ecdsa", "ecdsa");
    }
}
