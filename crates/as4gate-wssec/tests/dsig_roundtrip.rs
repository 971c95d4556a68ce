//! sign_envelope -> verify_envelope round trips for RSA, ECDSA and Ed25519 with attachments of
//! every SwA canonicalisation kind (raw octets, XML, text).

mod dsig_support;

use as4gate_ebms::ns;
use as4gate_wssec::{SecurityPolicy, sign_envelope};
use dsig_support::*;

fn round_trip(kind: &str, policy: &SecurityPolicy, expected_alg: &str) {
    let parts = sample_parts();
    let identity = identity("blue_gw", kind);
    let signed = sign_envelope(&unsigned_envelope(&parts), &identity, &to_sign(&parts)).unwrap();
    let signed_references = signed.references().to_vec();
    assert_eq!(signed_references.len(), 2 + parts.len());
    assert_eq!(signed_references[0].uri, "#_messaging");
    assert_eq!(signed_references[1].uri, "#_body");
    assert_eq!(signed_references[2].uri, "cid:payload-1@as4gate.test");
    assert_eq!(
        signed_references[2].transforms[0].algorithm,
        ns::SWA_ATTACHMENT_CONTENT_SIGNATURE_TRANSFORM
    );
    assert_eq!(
        signed_references[0].transforms[0]
            .inclusive_prefixes
            .as_deref(),
        Some("S12")
    );

    let verified = verify_with(&signed.xml, &parts, policy, &[], NOW).unwrap();
    let evidence = verified.evidence().unwrap();
    assert_eq!(
        evidence.signer_certificate,
        pem_der(&format!("blue_gw/{kind}.crt"))
    );
    assert!(evidence.signed_by(&[pem_der(&format!("blue_gw/{kind}.crt"))]));
    assert!(!evidence.signed_by(&[pem_der(&format!("red_gw/{kind}.crt"))]));
    assert_eq!(evidence.signature_algorithm, expected_alg);
    assert_eq!(evidence.references, signed_references);
    let user_message = &verified.value().user_messages[0];
    assert_eq!(user_message.message_info.message_id, "msg-1@as4gate.test");
}

#[test]
fn rsa_round_trip_with_attachments() {
    round_trip("rsa", &SecurityPolicy::default(), ns::ALG_RSA_SHA256);
}

#[test]
fn ecdsa_round_trip_with_attachments() {
    round_trip(
        "ecdsa",
        &SecurityPolicy::edelivery_2_0(),
        ns::ALG_ECDSA_SHA256,
    );
}

#[test]
fn ed25519_round_trip_with_attachments() {
    round_trip(
        "ed25519",
        &SecurityPolicy::edelivery_2_0(),
        ns::ALG_EDDSA_ED25519,
    );
}

#[test]
fn round_trip_without_attachments() {
    let xml = signed("rsa", &[]);
    let verified = verify(&xml, &[]).unwrap();
    assert_eq!(verified.evidence().unwrap().references.len(), 2);
}

#[test]
fn self_closing_security_header_is_expanded() {
    let unsigned = unsigned_envelope(&[]).replace(
        "<wsse:Security S12:mustUnderstand=\"true\"></wsse:Security>",
        "<wsse:Security S12:mustUnderstand=\"true\"/>",
    );
    let signed = sign_envelope(&unsigned, &identity("blue_gw", "rsa"), &[]).unwrap();
    verify(&signed.xml, &[]).unwrap();
}

#[test]
fn key_must_match_certificate() {
    let err = as4gate_wssec::SigningIdentity::from_pkcs8_der(
        &pem_der("blue_gw/rsa.key"),
        &pem_der("red_gw/rsa.crt"),
        vec![],
    )
    .unwrap_err();
    assert!(
        matches!(err, as4gate_wssec::WssecError::SigningKey(_)),
        "{err:?}"
    );
}

#[test]
fn unsigned_message_accepted_only_when_policy_allows() {
    let xml = unsigned_envelope(&[]);
    assert!(matches!(
        verify(&xml, &[]),
        Err(as4gate_wssec::WssecError::SignatureMissing)
    ));
    let lax = SecurityPolicy {
        require_signature: false,
        ..SecurityPolicy::default()
    };
    let verified = verify_with(&xml, &[], &lax, &[], NOW).unwrap();
    assert!(verified.evidence().is_none());
}
