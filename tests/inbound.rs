//! End-to-end tests of the receiving MSH over loopback HTTP: a real gateway, messages
//! composed, signed and encrypted the way a partner sends them, and every refusal checked for
//! its ebMS error code.

mod common;

use std::io::Write;

use common::{Sender, TestGateway, assert_ebms_error, payload, post};

/// Incompressible bytes (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    as4gate_ebms::gzip::gzip_compress(&mut &data[..], &mut out).unwrap();
    out
}

#[tokio::test]
async fn signed_encrypted_compressed_message_is_receipted_stored_and_deduplicated() {
    let gw = TestGateway::start("").await;
    let sender = Sender::blue("blue-to-red");
    let big: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let composed = sender.compose(
        "e2e-1@blue.test",
        vec![
            payload(1, "application/xml", b"<doc>hello</doc>"),
            payload(2, "application/octet-stream", &big),
        ],
    );
    let (status, receipt) = gw.send(&composed).await;
    assert_eq!(status, 200, "{receipt}");
    assert!(receipt.contains("NonRepudiationInformation"), "{receipt}");
    // One MessagePartNRInformation per signed reference: Body, Messaging, two attachments.
    assert_eq!(
        receipt.matches("MessagePartNRInformation>").count() / 2,
        4,
        "{receipt}"
    );
    assert!(receipt.contains("<eb:RefToMessageId>e2e-1@blue.test</eb:RefToMessageId>"));

    let store = &gw.running.shared.store;
    let detail = store.message("e2e-1@blue.test").await.unwrap().unwrap();
    // Received first; this configuration routes nowhere, so it is dead-lettered `no_route`
    // in the same transaction (tests/delivery.rs covers routing).
    assert_eq!(detail.history[0].state, "RECEIVED");
    assert_eq!(detail.state, "DELIVERY_FAILED");
    assert_eq!(detail.record.pmode_id, "blue-to-red");
    assert_eq!(detail.record.payloads.len(), 2);
    assert_eq!(detail.record.payloads[0].blob.size, 16);
    assert_eq!(detail.record.payloads[1].blob.size, big.len() as u64);
    assert!(detail.record.payloads[1].compressed);
    assert_eq!(
        detail.record.payloads[0].mime_type.as_deref(),
        Some("application/xml")
    );
    let stored = detail.record.payloads[1]
        .content(&gw.running.shared.blobs)
        .unwrap();
    assert!(
        detail.record.payloads[0].inline.is_some(),
        "small payloads stay in the row"
    );
    assert!(
        detail.record.payloads[1].inline.is_none(),
        "large payloads become blob files"
    );
    assert_eq!(
        stored, big,
        "the stored payload is the decrypted, decompressed original"
    );

    // A duplicate gets the original receipt and is not stored again.
    let (status, again) = gw.send(&composed).await;
    assert_eq!(status, 200);
    assert_eq!(again, receipt);
    assert_eq!(store.list(10).await.unwrap().len(), 1);
}

#[tokio::test]
async fn ping_is_receipted_and_marked_as_test() {
    let gw = TestGateway::start("").await;
    let composed = Sender::blue("ping").compose("ping-1@blue.test", vec![]);
    let (status, body) = gw.send(&composed).await;
    assert_eq!(status, 200, "{body}");
    let detail = gw
        .running
        .shared
        .store
        .message("ping-1@blue.test")
        .await
        .unwrap()
        .unwrap();
    assert!(detail.record.is_test);
}

#[tokio::test]
async fn tampered_attachment_is_refused() {
    let gw = TestGateway::start("").await;
    // Plaintext attachment changed after signing: the SwA digest no longer matches.
    let mut composed = Sender::blue("sign-only").compose(
        "tamper-1@blue.test",
        vec![payload(1, "application/xml", b"<doc>original</doc>")],
    );
    composed.parts[0].body = b"<doc>tampered</doc>".to_vec();
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0101");

    // Ciphertext changed: the GCM tag fails.
    let mut composed = Sender::blue("blue-to-red").compose(
        "tamper-2@blue.test",
        vec![payload(1, "application/xml", b"<doc>original</doc>")],
    );
    let last = composed.parts[0].body.len() - 1;
    composed.parts[0].body[last] ^= 1;
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0102");
    assert!(gw.running.shared.store.list(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn tampered_messaging_is_refused() {
    let gw = TestGateway::start("").await;
    let mut composed = Sender::blue("blue-to-red").compose(
        "tamper-3@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    composed.envelope = composed
        .envelope
        .replace("conversation-1", "conversation-2");
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0101");
}

#[tokio::test]
async fn wrong_signers_are_refused() {
    let gw = TestGateway::start("").await;
    for (key, why) in [
        ("mallory/rsa", "a valid certificate of another party"),
        ("blue_gw/rsa-expired", "an expired certificate"),
        ("blue_gw/rsa-other-ca", "a certificate from an untrusted CA"),
    ] {
        let composed = Sender::with_key("blue-to-red", key).compose(
            &format!("signer-{}@blue.test", key.replace('/', "-")),
            vec![payload(1, "application/xml", b"<doc/>")],
        );
        let answer = gw.send(&composed).await;
        assert_eq!(
            common::error_code(&answer.1).as_deref(),
            Some("EBMS:0101"),
            "{why}: {}",
            answer.1
        );
    }
    assert!(gw.running.shared.store.list(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn disallowed_signature_algorithm_is_refused() {
    let gw = TestGateway::start("").await;
    // ECDSA is not an eDelivery AS4 1.15 signature algorithm.
    let composed = Sender::with_key("blue-to-red", "blue_gw/ecdsa").compose(
        "alg-1@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0103");
}

#[tokio::test]
async fn unencrypted_payload_under_an_encrypting_pmode_is_refused() {
    let gw = TestGateway::start("").await;
    let mut sender = Sender::blue("blue-to-red");
    sender.pmode.security.encrypt = false;
    let composed = sender.compose(
        "plain-1@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0103");
}

#[tokio::test]
async fn missing_and_unlisted_attachments_are_refused() {
    let gw = TestGateway::start("").await;
    let sender = Sender::blue("sign-only");
    let mut composed = sender.compose(
        "missing-1@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    composed.parts.clear();
    // The signature check sees it first: a signed reference without its part.
    let answer = gw.send(&composed).await;
    assert_ebms_error(&answer, "EBMS:0101");
    assert!(answer.1.contains("payload-1@as4gate.test"), "{}", answer.1);

    let mut composed = sender.compose(
        "extra-1@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    let mut extra = composed.parts[0].clone();
    extra.content_id = "extra@as4gate.test".into();
    composed.parts.push(extra);
    // The signature check sees it first: a MIME part no reference covers.
    let answer = gw.send(&composed).await;
    assert_ebms_error(&answer, "EBMS:0101");
    assert!(answer.1.contains("extra@as4gate.test"), "{}", answer.1);
    assert!(gw.running.shared.store.list(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn corrupted_gzip_is_refused_with_decompression_failure() {
    let gw = TestGateway::start("").await;
    let mut gz = gzip(b"<doc>some content that compresses</doc>");
    let n = gz.len();
    gz[n - 6] ^= 0xff; // breaks the CRC32 trailer
    gz.truncate(n - 2);
    let mut p = payload(1, "application/xml", &gz);
    p.already_compressed = true;
    let composed = Sender::blue("sign-only").compose("gzip-1@blue.test", vec![p]);
    assert_ebms_error(&gw.send(&composed).await, "EBMS:0303");
}

#[tokio::test]
async fn decompression_bomb_is_stopped_by_the_limit() {
    let gw = TestGateway::start("[limits]\nmax_decompressed_bytes = 100000\n").await;
    let mut p = payload(1, "application/xml", &gzip(&vec![b'a'; 1_000_000]));
    p.already_compressed = true;
    let composed = Sender::blue("sign-only").compose("bomb-1@blue.test", vec![p]);
    let answer = gw.send(&composed).await;
    assert!(
        answer.1.contains("max_decompressed_bytes") || answer.1.contains("limit"),
        "{}",
        answer.1
    );
    assert_eq!(answer.0, 500);
}

#[tokio::test]
async fn oversize_body_is_refused_with_the_limit_named() {
    let gw = TestGateway::start("[limits]\nmax_body_bytes = 50000\n").await;
    let composed = Sender::blue("blue-to-red").compose(
        "big-1@blue.test",
        vec![payload(1, "application/octet-stream", &noise(200_000))],
    );
    let answer = gw.send(&composed).await;
    assert_ebms_error(&answer, "EBMS:0004");
    assert!(answer.1.contains("max_body_bytes"), "{}", answer.1);
}

#[tokio::test]
async fn doctype_is_refused() {
    let gw = TestGateway::start("").await;
    let composed = Sender::blue("ping").compose("doctype-1@blue.test", vec![]);
    let envelope = format!(
        "<!DOCTYPE x [<!ENTITY a \"b\">]>{}",
        composed
            .envelope
            .trim_start_matches("<?xml version=\"1.0\" encoding=\"UTF-8\"?>")
    );
    let answer = post(
        &gw.url(),
        "application/soap+xml; charset=UTF-8",
        envelope.into_bytes(),
    )
    .await;
    assert_ebms_error(&answer, "EBMS:0009");
    assert!(answer.1.contains("(DTD) is not allowed"), "{}", answer.1);
}

#[tokio::test]
async fn unknown_must_understand_header_gets_a_must_understand_fault() {
    let gw = TestGateway::start("").await;
    let composed = Sender::blue("ping").compose("mu-1@blue.test", vec![]);
    let envelope = composed.envelope.replacen(
        "<S12:Header>",
        "<S12:Header><x:Routing xmlns:x=\"urn:example:routing\" S12:mustUnderstand=\"true\"/>",
        1,
    );
    assert_ne!(envelope, composed.envelope);
    let (status, body) = post(&gw.url(), "application/soap+xml", envelope.into_bytes()).await;
    assert_eq!(status, 500, "{body}");
    assert!(body.contains("env:MustUnderstand"), "{body}");
    assert!(body.contains("x:Routing"), "{body}");
}

#[tokio::test]
async fn garbage_gets_a_soap_fault() {
    let gw = TestGateway::start("").await;
    let (status, body) = post(
        &gw.url(),
        "application/soap+xml",
        b"this is not xml".to_vec(),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("env:Sender"), "{body}");
}

#[tokio::test]
async fn receipt_verifies_with_xmlsec1() {
    let Some(xmlsec1) = common_tool("xmlsec1") else {
        return;
    };
    let gw = TestGateway::start("").await;
    let composed = Sender::blue("blue-to-red").compose(
        "xmlsec-1@blue.test",
        vec![payload(1, "application/xml", b"<doc/>")],
    );
    let (status, receipt) = gw.send(&composed).await;
    assert_eq!(status, 200, "{receipt}");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("receipt.xml");
    std::fs::File::create(&file)
        .unwrap()
        .write_all(receipt.as_bytes())
        .unwrap();
    assert!(
        xmlsec1_verifies(xmlsec1, &file),
        "xmlsec1 refused our receipt"
    );
    // And a tampered receipt fails, so the check above is not vacuous.
    std::fs::write(
        &file,
        receipt.replace("xmlsec-1@blue.test", "xmlsec-2@blue.test"),
    )
    .unwrap();
    assert!(!xmlsec1_verifies(xmlsec1, &file));
}

/// `xmlsec1 --verify` of a signed envelope with red_gw's certificate; prints its complaint.
fn xmlsec1_verifies(xmlsec1: &str, file: &std::path::Path) -> bool {
    let out = std::process::Command::new(xmlsec1)
        .args(["--verify", "--pubkey-cert-pem"])
        .arg(common::pki("red_gw/rsa.crt"))
        .args([
            "--id-attr:Id",
            "http://www.w3.org/2003/05/soap-envelope:Body",
            "--id-attr:Id",
            "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/:Messaging",
        ])
        .arg(file)
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!("xmlsec1: {}", String::from_utf8_lossy(&out.stderr));
    }
    out.status.success()
}

/// An external tool, or `None` (test skipped with a message) — but under `CI=true` a missing
/// tool fails the test.
fn common_tool(name: &str) -> Option<&str> {
    let found = std::process::Command::new(name)
        .arg("--version")
        .output()
        .is_ok();
    if found {
        return Some(name);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is required in CI"
    );
    eprintln!("skipping: {name} is not installed");
    None
}

/// POSTs `body` with chunked transfer encoding (no Content-Length), in 1000-byte frames, so
/// the gateway takes its streaming path.
async fn post_chunked(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    use http_body_util::{BodyExt, StreamBody};
    use hyper::body::{Bytes, Frame};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = body
        .chunks(1000)
        .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
        .collect();
    let stream = StreamBody::new(futures_util::stream::iter(frames));
    let client = Client::builder(TokioExecutor::new()).build_http();
    let request = hyper::Request::post(url)
        .header("content-type", content_type)
        .body(stream)
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn chunked_bodies_stream_and_are_bounded() {
    let gw = TestGateway::start("[limits]\nmax_body_bytes = 50000\n").await;
    let sender = Sender::blue("blue-to-red");
    let small = sender.compose(
        "chunked-1@blue.test",
        vec![payload(1, "application/xml", b"<doc>streamed</doc>")],
    );
    let (content_type, body) = small.to_mime("MIMEBoundary_chunked").unwrap();
    let (status, receipt) = post_chunked(&gw.url(), &content_type, body).await;
    assert_eq!(status, 200, "{receipt}");

    let big = sender.compose(
        "chunked-2@blue.test",
        vec![payload(1, "application/octet-stream", &noise(200_000))],
    );
    let (content_type, body) = big.to_mime("MIMEBoundary_chunked").unwrap();
    let answer = post_chunked(&gw.url(), &content_type, body).await;
    assert_ebms_error(&answer, "EBMS:0004");
    assert!(answer.1.contains("max_body_bytes"), "{}", answer.1);
}
