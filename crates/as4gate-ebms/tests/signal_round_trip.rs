//! Build -> parse -> compare for every outbound builder, with hostile strings.

use as4gate_ebms::model::{
    AgreementRef, CollaborationInfo, MessageInfo, PartInfo, Party, PartyId, PartyInfo, Property,
    Receipt, Service, Signal, UserMessage,
};
use as4gate_ebms::signal::{
    ErrorSignalSpec, ReceiptSpec, build_error, build_pull_request, build_receipt,
    build_user_message,
};
use as4gate_ebms::{
    EbmsError, EnvelopeNodes, ErrorCode, Limits, Messaging, NrReference, TransformSpec, ns, xml,
};

const HOSTILE: &str = "a<b>&c\"d'e]]>f&amp;g</eb:Messaging>é€😀";

fn parse(envelope: &str) -> Messaging {
    let doc = xml::parse(envelope, &Limits::default()).unwrap();
    let nodes = EnvelopeNodes::locate(&doc).unwrap();
    assert!(nodes.security.is_some());
    assert_eq!(doc.children(nodes.body).len(), 0, "Body must be empty");
    Messaging::parse(&doc, nodes.messaging).unwrap()
}

fn prop(name: &str, value: &str, r#type: Option<&str>) -> Property {
    Property {
        name: name.into(),
        value: value.into(),
        r#type: r#type.map(Into::into),
    }
}

fn user_message() -> UserMessage {
    UserMessage {
        mpc: Some("urn:mpc:x?a=1&b=2".into()),
        message_info: MessageInfo {
            timestamp: "2026-11-23T12:00:00.123Z".into(),
            message_id: "f00d-1@as4gate.example".into(),
            ref_to_message_id: Some("prev@x".into()),
        },
        party_info: PartyInfo {
            from: Party {
                party_ids: vec![
                    PartyId {
                        value: "0088:123".into(),
                        r#type: Some("urn:oasis:names:tc:ebcore:partyid-type:iso6523".into()),
                    },
                    PartyId {
                        value: "urn:x:y".into(),
                        r#type: None,
                    },
                ],
                role: ns::DEFAULT_INITIATOR_ROLE.into(),
            },
            to: Party {
                party_ids: vec![PartyId {
                    value: HOSTILE.into(),
                    r#type: Some(HOSTILE.into()),
                }],
                role: ns::DEFAULT_RESPONDER_ROLE.into(),
            },
        },
        collaboration_info: CollaborationInfo {
            agreement_ref: Some(AgreementRef {
                value: "urn:agreement".into(),
                r#type: Some("t".into()),
                pmode: Some("pm<1>".into()),
            }),
            service: Service {
                value: "svc".into(),
                r#type: Some("urn:svc-type".into()),
            },
            action: HOSTILE.into(),
            conversation_id: "conv-1".into(),
        },
        message_properties: vec![
            prop(
                "originalSender",
                "urn:oasis:names:tc:ebcore:partyid-type:unregistered:C1",
                Some("iso6523-actorid-upis"),
            ),
            prop(HOSTILE, "  spaced value with\ttab\nand newline  ", None),
        ],
        payload_info: vec![PartInfo {
            href: Some("cid:payload-1@as4gate.example".into()),
            properties: vec![
                prop("MimeType", "application/xml", None),
                prop("CompressionType", "application/gzip", None),
                prop("CharacterSet", "utf-8", None),
            ],
        }],
    }
}

#[test]
fn user_message_round_trips() {
    let um = user_message();
    let xml = build_user_message(&um).unwrap();
    assert!(xml.contains(r#"wsu:Id="_messaging-f00d-1_as4gate.example""#));
    assert!(xml.contains(r#"<S12:Body wsu:Id="_body-f00d-1_as4gate.example"/>"#));
    let m = parse(&xml);
    assert!(m.signals.is_empty());
    assert_eq!(m.user_messages, vec![um]);
}

#[test]
fn minimal_user_message_round_trips() {
    let mut um = user_message();
    um.mpc = None;
    um.message_info.ref_to_message_id = None;
    um.collaboration_info.agreement_ref = None;
    um.collaboration_info.service = Service {
        value: ns::TEST_SERVICE.into(),
        r#type: None,
    };
    um.collaboration_info.action = ns::TEST_ACTION.into();
    um.message_properties.clear();
    um.payload_info.clear();
    let m = parse(&build_user_message(&um).unwrap());
    assert!(m.user_messages[0].is_test_message());
    assert_eq!(m.user_messages[0].effective_mpc(), ns::DEFAULT_MPC);
    assert_eq!(m.user_messages, vec![um]);
}

#[test]
fn control_characters_are_replaced_not_emitted() {
    let mut um = user_message();
    um.message_properties = vec![prop("p", "bell\u{7}null\u{0}", None)];
    let m = parse(&build_user_message(&um).unwrap());
    assert_eq!(
        m.user_messages[0].message_properties[0].value,
        "bell\u{fffd}null\u{fffd}"
    );
}

#[test]
fn receipt_round_trips() {
    let refs = vec![
        NrReference {
            uri: "#_body-x".into(),
            transforms: vec![TransformSpec {
                algorithm: ns::EXC_C14N.into(),
                inclusive_prefixes: Some("S12 eb".into()),
            }],
            digest_method: ns::ALG_SHA256.into(),
            digest_value_b64: "q1w2e3+/=".into(),
        },
        NrReference {
            uri: format!("cid:{HOSTILE}"),
            transforms: vec![TransformSpec {
                algorithm: ns::SWA_ATTACHMENT_CONTENT_SIGNATURE_TRANSFORM.into(),
                inclusive_prefixes: None,
            }],
            digest_method: ns::ALG_SHA256.into(),
            digest_value_b64: "AAAA".into(),
        },
        NrReference {
            uri: "#no-transforms".into(),
            transforms: vec![],
            digest_method: ns::ALG_SHA256.into(),
            digest_value_b64: "BBBB".into(),
        },
    ];
    let spec = ReceiptSpec {
        message_id: "r-1@gw".into(),
        timestamp: "2026-11-23T12:00:01Z".into(),
        ref_to_message_id: "f00d-1@as4gate.example".into(),
        references: &refs,
    };
    let m = parse(&build_receipt(&spec).unwrap());
    assert!(m.user_messages.is_empty());
    let s = &m.signals[0];
    assert_eq!(s.message_info.message_id, "r-1@gw");
    assert_eq!(s.message_info.timestamp, "2026-11-23T12:00:01Z");
    assert_eq!(
        s.message_info.ref_to_message_id.as_deref(),
        Some("f00d-1@as4gate.example")
    );
    assert_eq!(s.signal, Signal::Receipt(Receipt::NonRepudiation(refs)));
}

#[test]
fn error_signal_round_trips() {
    let errors = vec![
        EbmsError::new(ErrorCode::FailedAuthentication, HOSTILE),
        EbmsError::new(ErrorCode::DecompressionFailure, "").with_ref_to_message_id("other@x"),
    ];
    let spec = ErrorSignalSpec {
        message_id: "e-1@gw".into(),
        timestamp: "2026-11-23T12:00:02Z".into(),
        ref_to_message_id: Some("bad@sender".into()),
        errors: &errors,
    };
    let m = parse(&build_error(&spec).unwrap());
    let Signal::Errors(reports) = &m.signals[0].signal else {
        panic!("not an error signal")
    };
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].code(), Some(ErrorCode::FailedAuthentication));
    assert_eq!(reports[0].severity, "failure");
    assert_eq!(reports[0].category.as_deref(), Some("Processing"));
    assert_eq!(reports[0].origin.as_deref(), Some("security"));
    assert_eq!(
        reports[0].short_description.as_deref(),
        Some("FailedAuthentication")
    );
    assert_eq!(reports[0].description.as_deref(), Some(HOSTILE));
    assert_eq!(
        reports[0].ref_to_message_in_error.as_deref(),
        Some("bad@sender")
    );
    assert_eq!(reports[1].code(), Some(ErrorCode::DecompressionFailure));
    assert_eq!(reports[1].description, None);
    assert_eq!(
        reports[1].ref_to_message_in_error.as_deref(),
        Some("other@x")
    );
    assert!(
        build_error(&spec)
            .unwrap()
            .contains(r#"<eb:Description xml:lang="en">"#)
    );
}

#[test]
fn builders_refuse_bad_input() {
    let mut um = user_message();
    um.message_info.message_id = "<not@valid>".into();
    assert_eq!(build_user_message(&um).unwrap_err().code, ErrorCode::Other);
    let spec = ReceiptSpec {
        message_id: "r@x".into(),
        timestamp: "t".into(),
        ref_to_message_id: "x@y".into(),
        references: &[],
    };
    assert!(
        build_receipt(&spec)
            .unwrap_err()
            .detail
            .contains("at least one reference")
    );
    let spec = ErrorSignalSpec {
        message_id: "e@x".into(),
        timestamp: "t".into(),
        ref_to_message_id: None,
        errors: &[],
    };
    assert!(
        build_error(&spec)
            .unwrap_err()
            .detail
            .contains("at least one error")
    );
}

#[test]
fn pull_request_round_trips_with_a_hostile_mpc() {
    let mpc = format!("urn:mpc:{HOSTILE}");
    let m = parse(&build_pull_request("pull-1@x", "2026-11-23T12:00:00Z", &mpc).unwrap());
    assert!(m.user_messages.is_empty());
    assert_eq!(m.signals.len(), 1);
    assert_eq!(m.signals[0].message_info.message_id, "pull-1@x");
    assert_eq!(m.signals[0].message_info.ref_to_message_id, None);
    match &m.signals[0].signal {
        Signal::PullRequest(p) => assert_eq!(p.mpc.as_deref(), Some(mpc.as_str())),
        other => panic!("expected a PullRequest, got {other:?}"),
    }
}
