//! SecurityTokenReference forms as Domibus (WSS4J) writes them, from the Domibus test vectors:
//! the BST forms resolve to the inline certificates; the issuer-serial and SKI forms are parsed
//! and looked up (the Domibus certificates are not in our vectors, so with our partner
//! certificates as the known list they must be reported as unknown, not mis-parsed).

mod dsig_support;

use as4gate_ebms::{EnvelopeNodes, ns};
use as4gate_wssec::{ResolvedToken, WssecError, resolve_security_token_reference};
use dsig_support::pem_der;
use x509_parser::prelude::{FromDer, X509Certificate};

const DIR: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/vectors/domibus/Domibus-MSH/src/test/resources/dataset/as4/"
);

fn resolve_signature_token(file: &str) -> Result<ResolvedToken, WssecError> {
    let xml = std::fs::read_to_string(format!("{DIR}{file}")).unwrap();
    let doc = uppsala::parse(&xml).unwrap();
    let nodes = EnvelopeNodes::locate(&doc).unwrap();
    let security = nodes.security.unwrap();
    let signature = doc
        .child_elements_by_name_ns(security, ns::DS, "Signature")
        .pop()
        .unwrap();
    let key_info = doc
        .first_child_element_by_name_ns(signature, ns::DS, "KeyInfo")
        .unwrap();
    let str_node = doc
        .first_child_element_by_name_ns(key_info, ns::WSSE, "SecurityTokenReference")
        .unwrap();
    resolve_security_token_reference(
        &doc,
        security,
        str_node,
        &[pem_der("blue_gw/rsa.crt"), pem_der("red_gw/rsa.crt")],
    )
}

fn subject_cn(der: &[u8]) -> String {
    let (_, cert) = X509Certificate::from_der(der).unwrap();
    cert.subject().to_string()
}

#[test]
fn x509v3_token() {
    let token = resolve_signature_token("bst_x509v3_incoming_message.xml").unwrap();
    assert!(token.chain.is_empty());
    assert!(
        subject_cn(&token.leaf).contains("CN="),
        "{}",
        subject_cn(&token.leaf)
    );
}

#[test]
fn pki_path_token() {
    let token = resolve_signature_token("bst_X509PKIPathv1_incoming_message.xml").unwrap();
    assert!(!token.chain.is_empty());
    for der in &token.chain {
        X509Certificate::from_der(der).unwrap();
    }
    // PKIPath order is anchor first, leaf last: the leaf is issued by the last chain element.
    let (_, leaf) = X509Certificate::from_der(&token.leaf).unwrap();
    let (_, issuer) = X509Certificate::from_der(token.chain.last().unwrap()).unwrap();
    assert_eq!(leaf.issuer(), issuer.subject());
}

#[test]
fn issuer_serial_token_is_parsed_and_looked_up() {
    let err = resolve_signature_token("is_incoming_message.xml").unwrap_err();
    assert!(
        matches!(&err, WssecError::UnknownCertificate(what) if what.contains("4096")),
        "{err:?}"
    );
}

#[test]
fn subject_key_identifier_token_is_parsed_and_looked_up() {
    let err = resolve_signature_token("ski_incoming_message.xml").unwrap_err();
    assert!(
        matches!(&err, WssecError::UnknownCertificate(what) if what.contains("subject key identifier")),
        "{err:?}"
    );
}
