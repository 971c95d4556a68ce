//! ebMS3 / AS4 / eDelivery header rules: one mutation of a valid envelope per
//! rule, each refused with its exact code.

use as4gate_ebms::model::Signal;
use as4gate_ebms::{EbmsError, EnvelopeNodes, ErrorCode, Limits, Messaging, xml};

const VALID: &str = r#"<S12:Envelope xmlns:S12="http://www.w3.org/2003/05/soap-envelope" xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/"><S12:Header><eb:Messaging S12:mustUnderstand="true"><eb:UserMessage mpc="urn:mpc"><eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>m1@x</eb:MessageId></eb:MessageInfo><eb:PartyInfo><eb:From><eb:PartyId type="urn:t">A</eb:PartyId><eb:Role>urn:r1</eb:Role></eb:From><eb:To><eb:PartyId type="urn:t">B</eb:PartyId><eb:Role>urn:r2</eb:Role></eb:To></eb:PartyInfo><eb:CollaborationInfo><eb:Service type="t">svc</eb:Service><eb:Action>act</eb:Action><eb:ConversationId>c1</eb:ConversationId></eb:CollaborationInfo><eb:PayloadInfo><eb:PartInfo href="cid:p1@x"><eb:PartProperties><eb:Property name="MimeType">application/xml</eb:Property><eb:Property name="CompressionType">application/gzip</eb:Property></eb:PartProperties></eb:PartInfo></eb:PayloadInfo></eb:UserMessage></eb:Messaging></S12:Header><S12:Body/></S12:Envelope>"#;

fn parse(text: &str) -> Result<Messaging, EbmsError> {
    let doc = xml::parse(text, &Limits::default())?;
    let nodes = EnvelopeNodes::locate(&doc)?;
    Messaging::parse(&doc, nodes.messaging)
}

fn refused(from: &str, to: &str, code: ErrorCode, needle: &str) {
    assert!(VALID.contains(from), "template lacks {from}");
    let e = parse(&VALID.replacen(from, to, 1)).unwrap_err();
    assert_eq!(e.code, code, "{from} -> {to}: {e}");
    assert!(e.detail.contains(needle), "{from} -> {to}: {e}");
}

#[test]
fn valid_template_parses() {
    let m = parse(VALID).unwrap();
    let um = &m.user_messages[0];
    assert_eq!(um.mpc.as_deref(), Some("urn:mpc"));
    assert_eq!(um.payload_info[0].cid(), Some("p1@x"));
    assert_eq!(um.party_info.to.party_ids[0].value, "B");
}

#[test]
fn missing_mandatory_elements_are_0009() {
    use ErrorCode::InvalidHeader as H;
    refused(
        r#"<eb:PartyId type="urn:t">A</eb:PartyId>"#,
        "",
        H,
        "missing eb:PartyId",
    );
    refused("<eb:Role>urn:r1</eb:Role>", "", H, "missing eb:Role");
    refused(
        "<eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp>",
        "",
        H,
        "missing eb:Timestamp",
    );
    refused("<eb:Action>act</eb:Action>", "", H, "missing eb:Action");
    refused(
        "<eb:ConversationId>c1</eb:ConversationId>",
        "",
        H,
        "missing eb:ConversationId",
    );
    refused(
        r#"<eb:PartyId type="urn:t">A</eb:PartyId>"#,
        r#"<eb:PartyId type="urn:t"> </eb:PartyId>"#,
        H,
        "must not be empty",
    );
    refused(
        "<eb:MessageId>m1@x</eb:MessageId>",
        "<eb:MessageId>&lt;m1@x&gt;</eb:MessageId>",
        H,
        "not a message id",
    );
    refused("2026-01-01T00:00:00Z", "yesterday", H, "not an xs:dateTime");
    refused(
        "<eb:ConversationId>c1</eb:ConversationId>",
        "<eb:ConversationId>c1</eb:ConversationId><eb:Extra/>",
        H,
        "unexpected element",
    );
    refused(
        "<eb:Action>act</eb:Action>",
        "<eb:Action><x/></eb:Action>",
        H,
        "text only",
    );
    refused(
        r#"<eb:Property name="MimeType">"#,
        "<eb:Property>",
        H,
        "missing attribute name",
    );
    refused(r#"mpc="urn:mpc""#, r#"mpc="""#, H, "must not be empty");
}

#[test]
fn user_message_errors_name_the_message() {
    let e = parse(&VALID.replace("<eb:Action>act</eb:Action>", "")).unwrap_err();
    assert_eq!(e.ref_to_message_id.as_deref(), Some("m1@x"));
}

#[test]
fn payload_rules() {
    refused(
        r#"href="cid:p1@x""#,
        r#"href="http://evil/x""#,
        ErrorCode::ExternalPayloadError,
        "not a cid:",
    );
    refused(
        r#"href="cid:p1@x""#,
        "",
        ErrorCode::ExternalPayloadError,
        "SOAP Body payload",
    );
    refused(
        r#"href="cid:p1@x""#,
        r#"href="cid:""#,
        ErrorCode::ExternalPayloadError,
        "names no Content-ID",
    );
    refused(
        "application/gzip",
        "application/x-rar",
        ErrorCode::DecompressionFailure,
        "unsupported CompressionType",
    );
    refused(
        r#"<eb:Property name="MimeType">application/xml</eb:Property>"#,
        "",
        ErrorCode::ValueInconsistent,
        "no MimeType",
    );
    let part = r#"<eb:PartInfo href="cid:p1@x"><eb:PartProperties><eb:Property name="MimeType">application/xml</eb:Property><eb:Property name="CompressionType">application/gzip</eb:Property></eb:PartProperties></eb:PartInfo>"#;
    refused(
        part,
        &format!("{part}{part}"),
        ErrorCode::ValueInconsistent,
        "same href",
    );
}

#[test]
fn untyped_identifiers_must_be_uris() {
    refused(
        r#"<eb:PartyId type="urn:t">A</eb:PartyId>"#,
        "<eb:PartyId>A</eb:PartyId>",
        ErrorCode::ValueInconsistent,
        "not a URI",
    );
    refused(
        r#"<eb:Service type="t">svc</eb:Service>"#,
        "<eb:Service>svc</eb:Service>",
        ErrorCode::ValueInconsistent,
        "not a URI",
    );
    parse(&VALID.replace(
        r#"<eb:PartyId type="urn:t">A</eb:PartyId>"#,
        "<eb:PartyId>urn:a</eb:PartyId>",
    ))
    .unwrap();
}

#[test]
fn bundling_and_signal_rules() {
    let um_start = VALID.find("<eb:UserMessage").unwrap();
    let um_end = VALID.find("</eb:UserMessage>").unwrap() + "</eb:UserMessage>".len();
    let um = &VALID[um_start..um_end];
    refused(
        um,
        &format!("{um}{um}"),
        ErrorCode::ValueInconsistent,
        "2 eb:UserMessage",
    );
    refused(
        um,
        "",
        ErrorCode::InvalidHeader,
        "neither eb:UserMessage nor eb:SignalMessage",
    );

    let info = "<eb:MessageInfo><eb:Timestamp>2026-01-01T00:00:00Z</eb:Timestamp><eb:MessageId>s1@x</eb:MessageId></eb:MessageInfo>";
    let pull =
        format!(r#"<eb:SignalMessage>{info}<eb:PullRequest mpc="urn:m"/></eb:SignalMessage>"#);
    let m = parse(&VALID.replace(um, &pull)).unwrap();
    assert!(
        matches!(&m.signals[0].signal, Signal::PullRequest(p) if p.mpc.as_deref() == Some("urn:m"))
    );
    // A signal bundled with the user message is fine (AS4 §2.1.x packaging).
    let m = parse(&VALID.replace(um, &format!("{pull}{um}"))).unwrap();
    assert_eq!((m.signals.len(), m.user_messages.len()), (1, 1));
    refused(
        um,
        &format!("<eb:SignalMessage>{info}</eb:SignalMessage>"),
        ErrorCode::InvalidHeader,
        "carries no PullRequest",
    );
    refused(
        um,
        &format!(
            r#"<eb:SignalMessage>{info}<eb:PullRequest/><eb:Error errorCode="EBMS:0001" severity="failure"/></eb:SignalMessage>"#
        ),
        ErrorCode::InvalidHeader,
        "mixes",
    );
    refused(
        um,
        &format!(r#"<eb:SignalMessage>{info}<eb:Error severity="failure"/></eb:SignalMessage>"#),
        ErrorCode::InvalidHeader,
        "missing attribute errorCode",
    );
    refused(
        um,
        &format!("<eb:SignalMessage>{info}<eb:Receipt/></eb:SignalMessage>"),
        ErrorCode::InvalidReceipt,
        "empty",
    );
    let nri = r##"<eb:Receipt><ebbp:NonRepudiationInformation xmlns:ebbp="http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0"><ebbp:MessagePartNRInformation><ds:Reference xmlns:ds="http://www.w3.org/2000/09/xmldsig#" URI="#a"><ds:DigestValue>x</ds:DigestValue></ds:Reference></ebbp:MessagePartNRInformation></ebbp:NonRepudiationInformation></eb:Receipt>"##;
    refused(
        um,
        &format!("<eb:SignalMessage>{info}{nri}</eb:SignalMessage>"),
        ErrorCode::InvalidReceipt,
        "unexpected",
    );
    // Foreign extension elements after the signal content are allowed.
    parse(&VALID.replace(um, &format!(r#"<eb:SignalMessage>{info}<eb:PullRequest/><x:Ext xmlns:x="urn:x"/></eb:SignalMessage>"#))).unwrap();
}

#[test]
fn limits_apply() {
    let limits = Limits {
        max_part_infos: 1,
        ..Limits::default()
    };
    let part = r#"<eb:PartInfo href="cid:p1@x">"#;
    let text = VALID.replace(part, r#"<eb:PartInfo href="cid:p0@x"><eb:PartProperties><eb:Property name="MimeType">a/b</eb:Property></eb:PartProperties></eb:PartInfo><eb:PartInfo href="cid:p1@x">"#);
    let doc = xml::parse(&text, &limits).unwrap();
    let nodes = EnvelopeNodes::locate(&doc).unwrap();
    let e = Messaging::parse_with_limits(&doc, nodes.messaging, &limits).unwrap_err();
    assert_eq!(e.code, ErrorCode::InvalidHeader);
    assert!(e.detail.contains("more than 1 eb:PartInfo"));
}
