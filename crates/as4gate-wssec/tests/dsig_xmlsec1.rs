//! Independent interop with the `xmlsec1` CLI (libxmlsec1 + OpenSSL), both directions.
//!
//! xmlsec1 1.2.x knows neither the SwA attachment transform nor Ed25519, so these envelopes
//! carry only the Body and Messaging references and use RSA-SHA256 / ECDSA-SHA256. Without
//! `xmlsec1` the tests are skipped with a printed reason, except with `CI=true`, where a
//! missing binary fails them.

mod dsig_support;

use std::path::Path;
use std::process::Command;

use as4gate_ebms::ns;
use as4gate_wssec::SecurityPolicy;
use base64::Engine;
use dsig_support::*;

/// Whether xmlsec1 can run; panics under CI when it cannot.
fn xmlsec1_available() -> bool {
    let ok = Command::new("xmlsec1")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("xmlsec1 is required under CI=true (apt-get install xmlsec1)");
        }
        eprintln!("SKIPPED: xmlsec1 not found on PATH (install the xmlsec1 package)");
    }
    ok
}

/// An xmlsec1 signing template: BST with the certificate plus an empty ds:Signature over
/// Messaging and Body, KeyInfo = SecurityTokenReference -> BST (as WSS4J writes it).
fn template(kind: &str, signature_method: &str) -> String {
    let cert =
        base64::engine::general_purpose::STANDARD.encode(pem_der(&format!("blue_gw/{kind}.crt")));
    let exc = ns::EXC_C14N;
    let reference = |id: &str| {
        format!(
            "<ds:Reference URI=\"#{id}\"><ds:Transforms><ds:Transform Algorithm=\"{exc}\"><ec:InclusiveNamespaces xmlns:ec=\"{exc}\" PrefixList=\"S12\"/></ds:Transform></ds:Transforms><ds:DigestMethod Algorithm=\"{}\"/><ds:DigestValue/></ds:Reference>",
            ns::ALG_SHA256
        )
    };
    let security = format!(
        "<wsse:BinarySecurityToken EncodingType=\"{enc}\" ValueType=\"{vt}\" wsu:Id=\"X509-c0ffee\">{cert}</wsse:BinarySecurityToken><ds:Signature xmlns:ds=\"{ds}\" Id=\"SIG-1\"><ds:SignedInfo><ds:CanonicalizationMethod Algorithm=\"{exc}\"><ec:InclusiveNamespaces xmlns:ec=\"{exc}\" PrefixList=\"S12\"/></ds:CanonicalizationMethod><ds:SignatureMethod Algorithm=\"{signature_method}\"/>{m}{b}</ds:SignedInfo><ds:SignatureValue/><ds:KeyInfo><wsse:SecurityTokenReference><wsse:Reference URI=\"#X509-c0ffee\" ValueType=\"{vt}\"/></wsse:SecurityTokenReference></ds:KeyInfo></ds:Signature>",
        enc = ns::WSSE_BASE64_BINARY,
        vt = ns::BST_X509V3,
        ds = ns::DS,
        m = reference("_messaging"),
        b = reference("_body"),
    );
    unsigned_envelope(&[]).replace(
        "<wsse:Security S12:mustUnderstand=\"true\"></wsse:Security>",
        &format!("<wsse:Security S12:mustUnderstand=\"true\">{security}</wsse:Security>"),
    )
}

fn xmlsec1(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = Command::new("xmlsec1")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

fn xmlsec1_signed(kind: &str, signature_method: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("template.xml"),
        template(kind, signature_method),
    )
    .unwrap();
    let keys = format!(
        "{},{}",
        pki_path(&format!("blue_gw/{kind}.key")),
        pki_path(&format!("blue_gw/{kind}.crt"))
    );
    let (ok, log) = xmlsec1(
        dir.path(),
        &[
            "--sign",
            "--privkey-pem",
            &keys,
            "--id-attr:Id",
            "Messaging",
            "--id-attr:Id",
            "Body",
            "--output",
            "signed.xml",
            "template.xml",
        ],
    );
    assert!(ok, "xmlsec1 --sign failed: {log}");
    std::fs::read_to_string(dir.path().join("signed.xml")).unwrap()
}

#[test]
fn xmlsec1_rsa_signature_is_accepted() {
    if !xmlsec1_available() {
        return;
    }
    let xml = xmlsec1_signed("rsa", ns::ALG_RSA_SHA256);
    let verified = verify(&xml, &[]).unwrap();
    assert_eq!(
        verified.evidence().unwrap().signer_certificate,
        pem_der("blue_gw/rsa.crt")
    );
    // And the same document with Messaging altered is refused.
    let tampered = xml.replacen("<eb:Action>Deliver<", "<eb:Action>Other<", 1);
    assert!(matches!(
        verify(&tampered, &[]),
        Err(as4gate_wssec::WssecError::ReferenceDigestMismatch(_))
    ));
}

#[test]
fn xmlsec1_ecdsa_signature_is_accepted() {
    if !xmlsec1_available() {
        return;
    }
    let xml = xmlsec1_signed("ecdsa", ns::ALG_ECDSA_SHA256);
    verify_with(&xml, &[], &SecurityPolicy::edelivery_2_0(), &[], NOW).unwrap();
}

fn xmlsec1_verifies_ours(kind: &str) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signed.xml"), signed(kind, &[])).unwrap();
    let cert = pki_path(&format!("blue_gw/{kind}.crt"));
    let ca = pki_path("ca/ca.crt");
    let (ok, log) = xmlsec1(
        dir.path(),
        &[
            "--verify",
            "--trusted-pem",
            &ca,
            "--pubkey-cert-pem",
            &cert,
            "--id-attr:Id",
            "Messaging",
            "--id-attr:Id",
            "Body",
            "signed.xml",
        ],
    );
    assert!(ok, "xmlsec1 --verify refused our {kind} signature: {log}");
    assert!(log.contains("SignedInfo References (ok/all): 2/2"), "{log}");

    // Sanity: xmlsec1 does notice tampering, so the check above means something.
    let tampered = signed(kind, &[]).replacen("<eb:Action>Deliver<", "<eb:Action>Other<", 1);
    std::fs::write(dir.path().join("tampered.xml"), tampered).unwrap();
    let (ok, _) = xmlsec1(
        dir.path(),
        &[
            "--verify",
            "--pubkey-cert-pem",
            &cert,
            "--id-attr:Id",
            "Messaging",
            "--id-attr:Id",
            "Body",
            "tampered.xml",
        ],
    );
    assert!(!ok, "xmlsec1 accepted a tampered envelope");
}

#[test]
fn our_rsa_signature_verifies_with_xmlsec1() {
    if xmlsec1_available() {
        xmlsec1_verifies_ours("rsa");
    }
}

#[test]
fn our_ecdsa_signature_verifies_with_xmlsec1() {
    if xmlsec1_available() {
        xmlsec1_verifies_ours("ecdsa");
    }
}
