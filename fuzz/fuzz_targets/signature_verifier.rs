//! Fuzzes signature verification of a whole envelope against the test PKI: whatever the input,
//! verification must end in a verdict, never a panic.
//!
//! The trust anchors, partner certificates and policy ([`verify_fixture`], shared with
//! `make_corpus`) are built once in a `OnceLock`, so an iteration costs one XML parse plus
//! whatever verification the input reaches. The attachments presented are the fixed ones the
//! input names in a `href="cid:…"` ([`verify_fixture::carried_by`]).
#![no_main]

mod verify_fixture;

use std::sync::OnceLock;

use as4gate_ebms::EnvelopeNodes;
use as4gate_ebms::limits::Limits;
use as4gate_wssec::{SecurityPolicy, TrustAnchors, VerifyRequest, verify_envelope};
use libfuzzer_sys::fuzz_target;
use verify_fixture::{CA_PEM, KNOWN_PEMS, Present, VERIFY_AT, carried_by, der, policy};

/// Everything that does not depend on the input.
struct Fixture {
    anchors: TrustAnchors,
    known: Vec<Vec<u8>>,
    policy: SecurityPolicy,
    limits: Limits,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        anchors: TrustAnchors::from_der(&[der(CA_PEM)]).expect("test CA is a valid anchor"),
        known: KNOWN_PEMS.iter().map(|pem| der(pem)).collect(),
        policy: policy(),
        limits: Limits::default(),
    })
}

fuzz_target!(|data: &[u8]| {
    let fixture = fixture();
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = as4gate_ebms::xml::parse(text, &fixture.limits) else {
        return;
    };
    let Ok(nodes) = EnvelopeNodes::locate(&doc) else {
        return;
    };
    let _ = verify_envelope(&VerifyRequest {
        doc: &doc,
        nodes: &nodes,
        attachments: &Present(carried_by(text)),
        policy: &fixture.policy,
        anchors: &fixture.anchors,
        known_certificates: &fixture.known,
        now: VERIFY_AT,
    });
});
