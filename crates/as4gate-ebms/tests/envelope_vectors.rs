//! Table-driven parse of every plain-XML envelope among the shared vectors
//! (phase4, AS4.NET, Domibus, Holodeck via phase4): each must parse, or be
//! refused with the ebMS code that fits. The reason for every refusal is in the
//! table.

use as4gate_ebms::model::{Receipt, Signal};
use as4gate_ebms::{EbmsError, EnvelopeNodes, ErrorCode, Limits, Messaging, xml};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/");

#[derive(Debug)]
enum Expect {
    /// Parses: (user messages, signal kinds in order: 'P'ull, 'R'eceipt NRR, 'C'opy receipt, 'E'rror).
    Parses(usize, &'static str),
    /// Refused with this code and a detail containing this text.
    Refused(ErrorCode, &'static str),
}
use Expect::*;

const P4: &str = "phase4/phase4-lib/src/test/resources/external/";
const P4T: &str = "phase4/phase4-test/src/test/resources/";
const NET_U: &str = "as4net/source/Eu.EDelivery.AS4.UnitTests/Resources/";
const NET_I: &str = "as4net/source/Eu.EDelivery.AS4.IntegrationTests/Resources/";
const DOM: &str = "domibus/Domibus-MSH/src/test/resources/dataset/as4/";

fn table() -> Vec<(String, Expect)> {
    let soap11 = Refused(ErrorCode::InvalidHeader, "SOAP 1.1");
    let untyped_party = Refused(
        ErrorCode::ValueInconsistent,
        "no type attribute and is not a URI",
    );
    let e = |dir: &str, file: &str| format!("{dir}{file}");
    vec![
        (e(P4, "soap12test/PullRequest12.xml"), Parses(0, "P")),
        // PartInfo href="#…" points into the SOAP Body; AS4 carries payloads as MIME parts only.
        (
            e(P4, "soap12test/UserMessage12.xml"),
            Refused(ErrorCode::ExternalPayloadError, "not a cid:"),
        ),
        // The vector itself is not well-formed (a Property element is never closed).
        (
            e(P4, "soap12test/UserMessageWithCompressedPayload12.xml"),
            Refused(ErrorCode::InvalidHeader, "not well-formed"),
        ),
        // Bare-UUID MessageId (no '@'): accepted by the lenient inbound id check.
        (e(P4, "soap12test/test-2023-03-15.xml"), Parses(1, "")),
        (e(P4, "soap11test/BundledMessage.xml"), soap11),
        (
            e(P4, "soap11test/EmptyMessaging.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/ErrorMessage.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/MessageInfoIDMissing.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/MessageInfoImaginaryTimestamp.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/MessageInfoMissing.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/NoMessaging.xml"),
            Refused(ErrorCode::InvalidHeader, "not a SOAP 1.2 Envelope"),
        ),
        (
            e(P4, "soap11test/PullRequest.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/ReceiptMessage.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/UserMessage-no-soap.xml"),
            Refused(ErrorCode::InvalidHeader, "not a SOAP 1.2 Envelope"),
        ),
        (
            e(P4, "soap11test/UserMessage.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(P4, "soap11test/UserMessageResponse.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (e(P4T, "testfiles/ErrorMessage.xml"), Parses(0, "E")),
        // refToMessageInError="" is read as absent in received errors.
        (
            e(P4T, "testfiles/ErrorMessageNoRefToMessageID.xml"),
            Parses(0, "E"),
        ),
        (
            e(P4T, "testfiles/ErrorMessageWithFault.xml"),
            Parses(0, "E"),
        ),
        (
            e(P4T, "testfiles/NoResponder.xml"),
            Refused(ErrorCode::InvalidHeader, "missing eb:To"),
        ),
        // SBDH business documents, not SOAP envelopes.
        (
            e(P4T, "testfiles/PullPush.xml"),
            Refused(ErrorCode::InvalidHeader, "not a SOAP 1.2 Envelope"),
        ),
        (
            e(P4T, "testfiles/PushPull.xml"),
            Refused(ErrorCode::InvalidHeader, "not a SOAP 1.2 Envelope"),
        ),
        (
            e(P4T, "testfiles/TestReceipt11.xml"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (e(P4T, "testfiles/TestReceipt12.xml"), Parses(0, "R")),
        (
            e(P4T, "testfiles/TwoUserMessages.xml"),
            Refused(ErrorCode::ValueInconsistent, "2 eb:UserMessage"),
        ),
        (
            e(P4T, "testfiles/UserMessageNoPartyID.xml"),
            Refused(ErrorCode::InvalidHeader, "PartyId must not be empty"),
        ),
        // ebMS3 core §5.2.2.4: a PartyId without @type must be a URI ("APP_1000000101" is not).
        (e(P4T, "testfiles/WrongSigningAlgorithm.xml"), untyped_party),
        (
            e(P4T, "testfiles/WrongSigningDigestAlgorithm.xml"),
            Refused(ErrorCode::ValueInconsistent, "not a URI"),
        ),
        // A licence comment was put before the XML declaration: not well-formed as stored.
        (
            e(P4T, "unused/holodeck/from-holodeck-1.xml"),
            Refused(ErrorCode::InvalidHeader, "not well-formed"),
        ),
        (
            e(P4T, "unused/holodeck/ex-mmd-push.mmd"),
            Refused(ErrorCode::InvalidHeader, "SOAP 1.1"),
        ),
        (
            e(NET_I, "as4-soap-wrong-signed-callback-message.txt"),
            Parses(1, ""),
        ),
        (e(NET_I, "as4-soap-wrong-signed-message.txt"), Parses(1, "")),
        (e(NET_U, "as4-soap-wrong-signed-message.txt"), Parses(1, "")),
        (e(NET_U, "as4-soap-signed-message.txt"), Parses(1, "")),
        (
            e(NET_U, "as4-soap-untrusted-signed-message.txt"),
            Parses(1, ""),
        ),
        // Body element in the SOAP 1.1 namespace inside a SOAP 1.2 envelope.
        (
            e(NET_U, "BizTalkUserMessage.xml"),
            Refused(
                ErrorCode::InvalidHeader,
                "exactly one Header followed by one Body",
            ),
        ),
        (e(NET_U, "as4-soap-pullrequest.xml"), Parses(0, "P")),
        (e(NET_U, "as4-soap-signed-pullrequest.xml"), Parses(0, "P")),
        (
            e(NET_U, "as4-soap-wrong-signed-pullrequest.xml"),
            Parses(0, "P"),
        ),
        // AS4.NET wrote an `eb:Schemas` element that the ebMS3 schema does not define.
        (
            e(NET_U, "as4-soap-signed-encrypted-message.xml"),
            Refused(
                ErrorCode::InvalidHeader,
                "unexpected element {http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/}Schemas",
            ),
        ),
        (
            e(
                NET_U,
                "as4-soap-signed-encrypted-message-with-extra-hashtag.xml",
            ),
            Refused(ErrorCode::InvalidHeader, "Schemas"),
        ),
        // A user message bundled with two NRR receipts; MessageId "1" passes the lenient check.
        (
            e(NET_U, "as4-soap-user-receipt-message.xml"),
            Parses(1, "RR"),
        ),
        (e(NET_U, "multihopreceipt.xml"), Parses(0, "R")),
        (e(NET_U, "receipt.xml"), Parses(0, "R")),
        // White space was stripped from the markup (`<?xmlversion=…`): not XML.
        (
            e(DOM, "RawXMLMessage.xml"),
            Refused(ErrorCode::InvalidHeader, "not well-formed"),
        ),
        // href="sbdh-order": neither cid: nor a body reference.
        (
            e(DOM, "RawXMLMessageWithSpaces.xml"),
            Refused(ErrorCode::ExternalPayloadError, "\"sbdh-order\""),
        ),
        (
            e(DOM, "RawXMLMessageWithSpacesAndPkiPath.xml"),
            Refused(ErrorCode::ExternalPayloadError, "\"sbdh-order\""),
        ),
        (
            e(DOM, "bst_X509PKIPathv1_incoming_message.xml"),
            Parses(1, ""),
        ),
        (e(DOM, "bst_x509v3_incoming_message.xml"), Parses(1, "")),
        (e(DOM, "is_incoming_message.xml"), Parses(1, "")),
        (e(DOM, "ski_incoming_message.xml"), Parses(1, "")),
    ]
}

fn parse(text: &str) -> Result<Messaging, EbmsError> {
    let doc = xml::parse(text, &Limits::default())?;
    let nodes = EnvelopeNodes::locate(&doc)?;
    Messaging::parse(&doc, nodes.messaging)
}

fn kinds(m: &Messaging) -> String {
    m.signals
        .iter()
        .map(|s| match &s.signal {
            Signal::PullRequest(_) => 'P',
            Signal::Receipt(Receipt::NonRepudiation(_)) => 'R',
            Signal::Receipt(Receipt::UserMessageCopy) => 'C',
            Signal::Receipt(Receipt::Other(_)) => 'O',
            Signal::Errors(_) => 'E',
        })
        .collect()
}

#[test]
fn every_plain_xml_vector_has_the_expected_outcome() {
    let mut failures = Vec::new();
    for (file, expect) in table() {
        let bytes = std::fs::read(format!("{VECTORS}{file}")).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        let text = text.trim_start_matches('\u{feff}');
        let got = parse(text);
        let ok = match (&expect, &got) {
            (Parses(users, signals), Ok(m)) => {
                m.user_messages.len() == *users && kinds(m) == *signals
            }
            (Refused(code, needle), Err(e)) => e.code == *code && e.detail.contains(needle),
            _ => false,
        };
        if !ok {
            failures.push(format!("{file}: expected {expect:?}, got {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn holodeck_message_without_the_licence_comment() {
    let text =
        std::fs::read_to_string(format!("{VECTORS}{P4T}unused/holodeck/from-holodeck-1.xml"))
            .unwrap();
    let start = text.find("<?xml").unwrap();
    let e = parse(&text[start..]).unwrap_err();
    assert_eq!(e.code, ErrorCode::ValueInconsistent);
    assert!(e.detail.contains("\"APP_1000000101\""));
    assert_eq!(
        e.ref_to_message_id.as_deref(),
        Some("1d2726f5-e0f2-4a7d-b984-d073d630df29@PC65063.brzg.local")
    );
}

#[test]
fn domibus_user_message_fields() {
    let text =
        std::fs::read_to_string(format!("{VECTORS}{DOM}bst_x509v3_incoming_message.xml")).unwrap();
    let m = parse(&text).unwrap();
    let um = &m.user_messages[0];
    assert!(!um.message_info.message_id.is_empty());
    assert!(!um.party_info.from.party_ids.is_empty());
    for part in &um.payload_info {
        assert!(part.cid().is_some_and(|c| !c.is_empty()));
    }
}

#[test]
fn receipt_references_are_structured() {
    let text =
        std::fs::read_to_string(format!("{VECTORS}{P4T}testfiles/TestReceipt12.xml")).unwrap();
    let m = parse(&text).unwrap();
    let Signal::Receipt(Receipt::NonRepudiation(refs)) = &m.signals[0].signal else {
        panic!("not an NRR receipt");
    };
    assert!(!refs.is_empty());
    for r in refs {
        assert!(!r.uri.is_empty());
        assert_eq!(r.digest_method, as4gate_ebms::ns::ALG_SHA256);
        assert!(!r.digest_value_b64.contains(char::is_whitespace));
    }
}
