//! Sending: two gateways on loopback, C2 (`blue_gw`, the sender) and C3 (`red_gw`, the
//! receiver), each with its own keys from test-pki. Submissions are sent, receipted and
//! stored for eDelivery AS4 1.15 and 2.0 P-Modes, with 0, 1 and several payloads, with and
//! without compression, and with payloads past the spool threshold (streamed); reception
//! awareness retries until a valid receipt (receiver down first; never up → SEND_FAILURE with
//! EBMS:0301; forged and mismatched receipts refused); submissions are idempotent; `kill -9`
//! of the sender mid-retry loses nothing; a message that cannot be composed ends in
//! SEND_FAILURE. Pull: served and pulled messages (also one past the 1 MiB answer limit),
//! authorisation, EBMS:0006 and re-offers. Refusals are signed with the receiver's key of
//! the sender's crypto generation.

mod common;

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use as4gate::config::Config;
use as4gate::outbound::submit::{PayloadSource, Submission, SubmittedPayload, submit};
use as4gate::store::outbound::{ACKNOWLEDGED, SEND_FAILURE};
use as4gate::store::{MessageDetail, Store};
use bytes::Bytes;
use common::pair::{Node, PULL_MPC, count, endpoint, http_listener, wait_state, write_config};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// Red (C3) receiving, and blue (C2) sending to `endpoint` (red's URL by default).
async fn pair() -> (Node, Node) {
    let red = Node::http("red_gw", "blue_gw", "127.0.0.1:0", None, "").await;
    let blue = Node::http("blue_gw", "red_gw", "127.0.0.1:0", Some(&red.url()), "").await;
    (red, blue)
}

/// Waits until message `id` has failed `n` attempts (`WAITING_FOR_RETRY` entries).
async fn wait_retries(store: &Store, id: &str, n: usize) {
    let start = Instant::now();
    loop {
        let d = store.message(id).await.unwrap().unwrap();
        if count(&d, "WAITING_FOR_RETRY") >= n {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{:?}", d.history);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until blue's message `id` (sent under `pmode`) is acknowledged after one attempt and
/// checks that red stored exactly `payloads` (bytes, MIME type, compressed unless the P-Mode
/// is a `-plain` one); returns both sides' records.
async fn sent_and_stored(
    blue: &Node,
    red: &Node,
    pmode: &str,
    id: &str,
    payloads: &[(&[u8], &str)],
) -> (MessageDetail, MessageDetail) {
    let ours = wait_state(blue.store(), id, ACKNOWLEDGED, Duration::from_secs(60)).await;
    assert_eq!(
        count(&ours, "SEND_IN_PROGRESS"),
        1,
        "{pmode}: {:?}",
        ours.history
    );
    let theirs = red
        .store()
        .message(id)
        .await
        .unwrap()
        .expect("stored at red");
    assert_eq!(theirs.record.payloads.len(), payloads.len(), "{pmode}");
    for (i, (stored, (bytes, mime))) in theirs.record.payloads.iter().zip(payloads).enumerate() {
        let received = stored.content(&red.running.shared.blobs).unwrap();
        assert!(received == *bytes, "{pmode}: payload {i} differs");
        assert_eq!(stored.mime_type.as_deref(), Some(*mime), "{pmode}");
        assert_eq!(stored.compressed, !pmode.ends_with("plain"), "{pmode}");
    }
    (ours, theirs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_exchange_under_1_15_and_2_0() {
    let (red, blue) = pair().await;
    let xml = b"<invoice><total>42.00</total></invoice>".as_slice();
    let big: Vec<u8> = (0..200_000u32).flat_map(|i| i.to_le_bytes()).collect();
    // Gzips to about 1 KiB: a small request, processed on the receiver's runtime thread,
    // whose payload inflates past the inline threshold into a blob file.
    let zeros = vec![0u8; 1024 * 1024];
    let mut sent = Vec::new();
    for pmode in ["b2r-115", "b2r-115-plain", "b2r-20", "b2r-20-plain"] {
        for payloads in [
            vec![],
            vec![(xml, "application/xml")],
            vec![
                (xml, "application/xml"),
                (b"plain text".as_slice(), "text/plain"),
                (big.as_slice(), "application/octet-stream"),
            ],
            vec![(zeros.as_slice(), "application/octet-stream")],
        ] {
            let id = blue.submit(pmode, &payloads).await;
            sent.push((pmode, id, payloads));
        }
    }
    for (pmode, id, payloads) in &sent {
        let (ours, theirs) = sent_and_stored(&blue, &red, pmode, id, payloads).await;
        assert!(
            String::from_utf8_lossy(&ours.record.receipt).contains("NonRepudiationInformation")
        );
        assert_eq!(theirs.record.pmode_id, *pmode);
        if payloads
            .first()
            .is_some_and(|(bytes, _)| bytes.len() == zeros.len())
        {
            assert!(
                theirs.record.payloads[0].inline.is_none(),
                "{pmode}: kept as a blob"
            );
        }
        let final_recipient = theirs
            .record
            .message_properties
            .iter()
            .find(|p| p.name == "finalRecipient")
            .map(|p| p.value.as_str());
        assert_eq!(final_recipient, Some("urn:as4gate:test:recipient"));
        // 2.0 messages are signed with blue's Ed25519 key, 1.15 with its RSA key.
        let key = if pmode.starts_with("b2r-20") {
            "ed25519"
        } else {
            "rsa"
        };
        let cert = as4gate::pem::certificates(&common::pki(&format!("blue_gw/{key}.crt")))
            .unwrap()
            .remove(0);
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &cert);
        assert_eq!(
            theirs.record.signer_certificate.as_deref(),
            Some(as4gate::store::blobs::hex(digest.as_ref()).as_str()),
            "{pmode}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_past_the_spool_threshold_stream_to_the_receiver() {
    let (red, blue) = pair().await;
    // Random bytes do not shrink under gzip, so every part is staged past the 1 MiB spool
    // threshold (in a spool file) and encrypted while the request streams, compressed or not.
    let large = random_bytes(3 * 1024 * 1024 + 17);
    let larger = random_bytes(5 * 1024 * 1024);
    let payloads = [
        (large.as_slice(), "application/octet-stream"),
        (b"<small/>".as_slice(), "application/xml"),
        (larger.as_slice(), "application/pdf"),
    ];
    let mut sent = Vec::new();
    for pmode in ["b2r-115", "b2r-115-plain", "b2r-20"] {
        sent.push((pmode, blue.submit(pmode, &payloads).await));
    }
    for (pmode, id) in &sent {
        sent_and_stored(&blue, &red, pmode, id, &payloads).await;
    }
    // Nothing is left in the sender's spool.
    let spool = &blue.running.shared.spool_dir;
    assert_eq!(std::fs::read_dir(spool).unwrap().count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_down_first_then_up_gets_it_exactly_once() {
    let port = free_port();
    let blue = sender_to(port).await;
    let id = blue
        .submit("b2r-115", &[(b"<late/>", "application/xml")])
        .await;
    wait_retries(blue.store(), &id, 2).await;
    let red = Node::http("red_gw", "blue_gw", &format!("127.0.0.1:{port}"), None, "").await;
    let ours = wait_state(blue.store(), &id, ACKNOWLEDGED, Duration::from_secs(30)).await;
    let attempts = count(&ours, "SEND_IN_PROGRESS");
    assert!(attempts >= 3, "{:?}", ours.history);
    // Retries stop at the receipt: no further attempt follows.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let later = blue.store().message(&id).await.unwrap().unwrap();
    assert_eq!(count(&later, "SEND_IN_PROGRESS"), attempts);
    assert_eq!(later.state, ACKNOWLEDGED);
    // One message at the receiver.
    assert!(red.store().message(&id).await.unwrap().is_some());
    assert_eq!(red.store().list(100).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_never_up_ends_in_send_failure_with_missing_receipt() {
    let port = free_port();
    let blue = sender_to(port).await;
    let id = blue
        .submit("b2r-115-give-up", &[(b"<x/>", "application/xml")])
        .await;
    let ours = wait_state(blue.store(), &id, SEND_FAILURE, Duration::from_secs(30)).await;
    // 1 + max_retries (2) attempts, then EBMS:0301.
    assert_eq!(count(&ours, "SEND_IN_PROGRESS"), 3, "{:?}", ours.history);
    let failed = blue.store().failed_sends(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message_id, id);
    assert_eq!(failed[0].error_code.as_deref(), Some("EBMS:0301"));
    assert!(
        failed[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("MissingReceipt")
    );
}

/// A message whose payload cannot be read any more (its blob file was damaged after the
/// submission) fails to compose on every attempt: that counts as an attempt without a
/// receipt, so it ends in SEND_FAILURE on the reception-awareness schedule instead of being
/// retried for ever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_cannot_be_composed_ends_in_send_failure() {
    let port = free_port();
    let blue = sender_to(port).await;
    let big = random_bytes(200 * 1024);
    let id = blue
        .submit("b2r-115-give-up", &[(&big, "application/octet-stream")])
        .await;
    let stored = blue.store().message(&id).await.unwrap().unwrap();
    let blob = &stored.record.payloads[0].blob;
    assert!(
        stored.record.payloads[0].inline.is_none(),
        "payload kept in a blob file"
    );
    let path = blue.running.shared.blobs.path(&blob.id).unwrap();
    std::fs::write(&path, b"damaged").unwrap();
    let ours = wait_state(blue.store(), &id, SEND_FAILURE, Duration::from_secs(30)).await;
    assert_eq!(count(&ours, "SEND_IN_PROGRESS"), 3, "{:?}", ours.history);
    let failed = blue.store().failed_sends(10).await.unwrap();
    let last = failed[0].last_error.as_deref().unwrap();
    assert!(last.contains("could not be composed"), "{last}");
}

/// A man in the middle in front of red: answers the first request for each message with a
/// receipt whose signature is broken, the second with a genuine receipt for another message,
/// and forwards later ones.
async fn meddler(red_url: String, other_receipt: String) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (red_url, other, counter) =
                (red_url.clone(), other_receipt.clone(), counter.clone());
            tokio::spawn(async move {
                let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let (red_url, other, counter) =
                        (red_url.clone(), other.clone(), counter.clone());
                    async move {
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .unwrap()
                            .to_str()
                            .unwrap()
                            .to_owned();
                        let body = req.into_body().collect().await.unwrap().to_bytes();
                        let n = counter.fetch_add(1, Ordering::SeqCst);
                        let (_, genuine) =
                            as4gate::sample::post(&red_url, &content_type, body.to_vec())
                                .await
                                .unwrap();
                        let answer = match n {
                            0 => tamper_digest(&genuine),
                            1 => other,
                            _ => genuine,
                        };
                        let mut response = hyper::Response::new(Full::new(Bytes::from(answer)));
                        response.headers_mut().insert(
                            "content-type",
                            "application/soap+xml; charset=UTF-8".parse().unwrap(),
                        );
                        Ok::<_, Infallible>(response)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    (format!("http://{addr}/as4"), seen)
}

/// Changes one character of the first DigestValue in the receipt's NonRepudiationInformation.
fn tamper_digest(receipt: &str) -> String {
    let nri = receipt.find("NonRepudiationInformation").unwrap();
    let at = nri + receipt[nri..].find("DigestValue>").unwrap() + "DigestValue>".len();
    let mut bytes = receipt.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_and_mismatched_receipts_are_refused_and_retried() {
    let (red, direct) = pair().await;
    // A genuine receipt, but for another message.
    let other = direct
        .submit("b2r-115", &[(b"<other/>", "application/xml")])
        .await;
    let other_receipt = wait_state(
        direct.store(),
        &other,
        ACKNOWLEDGED,
        Duration::from_secs(30),
    )
    .await
    .record
    .receipt;
    let (url, seen) = meddler(red.url(), String::from_utf8(other_receipt).unwrap()).await;
    let blue = Node::http("blue_gw", "red_gw", "127.0.0.1:0", Some(&url), "").await;
    let id = blue
        .submit("b2r-115", &[(b"<doc/>", "application/xml")])
        .await;
    let ours = wait_state(blue.store(), &id, ACKNOWLEDGED, Duration::from_secs(30)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 3);
    let retries: Vec<&str> = ours
        .history
        .iter()
        .filter(|h| h.state == "WAITING_FOR_RETRY")
        .map(|h| h.detail.as_deref().unwrap())
        .collect();
    assert_eq!(retries.len(), 2, "{:?}", ours.history);
    assert!(
        retries[0].contains("signature does not verify"),
        "{}",
        retries[0]
    );
    assert!(
        retries[1].contains(&format!("no signal refers to {id}")),
        "{}",
        retries[1]
    );
    // Red got the same MessageId three times and stored it once; the third answer was its
    // original receipt for the duplicate, which matches what blue signed every time.
    assert!(red.store().message(&id).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submissions_are_checked_and_idempotent() {
    let (_red, blue) = pair().await;
    let shared = &blue.running.shared;
    let submission = Submission {
        submission_id: Some("order-4711".into()),
        pmode_id: "b2r-115".into(),
        payloads: vec![SubmittedPayload {
            source: PayloadSource::Bytes(b"<order/>".to_vec()),
            mime_type: "application/xml".into(),
            character_set: Some("UTF-8".into()),
            content_id: Some("order@blue".into()),
        }],
        ..Submission::default()
    };
    let first = submit(
        &shared.gateway,
        &shared.store,
        &shared.blobs,
        submission.clone(),
    )
    .await
    .unwrap();
    let again = submit(
        &shared.gateway,
        &shared.store,
        &shared.blobs,
        submission.clone(),
    )
    .await
    .unwrap();
    assert!(!first.duplicate);
    assert!(again.duplicate);
    assert_eq!(first.message_id, again.message_id);
    wait_state(
        blue.store(),
        &first.message_id,
        ACKNOWLEDGED,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(blue.store().list(10).await.unwrap().len(), 1);

    let refused = |s: Submission| async {
        submit(&shared.gateway, &shared.store, &shared.blobs, s)
            .await
            .unwrap_err()
            .to_string()
    };
    let mut unknown = submission.clone();
    unknown.submission_id = None;
    unknown.pmode_id = "nope".into();
    assert!(refused(unknown).await.contains("no P-Mode with id"));
    let mut bad_type = submission.clone();
    bad_type.submission_id = None;
    bad_type.payloads[0].mime_type = "xml".into();
    assert!(refused(bad_type).await.contains("not type/subtype"));
    let mut reserved = submission.clone();
    reserved.submission_id = None;
    reserved.properties = vec![("finalRecipient".into(), "x".into())];
    assert!(refused(reserved).await.contains("set by its own option"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_sender_mid_retry_loses_nothing() {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "blue_gw",
        "red_gw",
        &http_listener("127.0.0.1:0"),
        &endpoint(&format!("http://127.0.0.1:{port}/as4")),
        "",
    );
    let payload = dir.path().join("doc.xml");
    std::fs::write(&payload, "<doc>kill</doc>").unwrap();
    let (mut child, _) = common::spawn_gateway(&config);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_as4gate"))
        .args(["send", "--config"])
        .arg(&config)
        .args(["--pmode", "b2r-115", "--payload"])
        .arg(&payload)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    // Let it fail a couple of times, then kill it mid-retry.
    let cfg = Config::load(&config).unwrap();
    let store = Store::open(&cfg.database_path(), cfg.store.sqlite_synchronous)
        .await
        .unwrap();
    wait_retries(&store, &id, 2).await;
    child.kill().unwrap();
    child.wait().unwrap();
    let red = Node::http("red_gw", "blue_gw", &format!("127.0.0.1:{port}"), None, "").await;
    let (mut child, _) = common::spawn_gateway(&config);
    let ours = wait_state(&store, &id, ACKNOWLEDGED, Duration::from_secs(30)).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(count(&ours, "SEND_IN_PROGRESS") >= 3);
    let theirs = red
        .store()
        .message(&id)
        .await
        .unwrap()
        .expect("same MessageId at red");
    assert_eq!(
        theirs.record.payloads[0]
            .content(&red.running.shared.blobs)
            .unwrap(),
        b"<doc>kill</doc>"
    );
}

/// Blue sending to red at loopback `port`, where nothing may listen yet.
async fn sender_to(port: u16) -> Node {
    let url = format!("http://127.0.0.1:{port}/as4");
    Node::http("blue_gw", "red_gw", "127.0.0.1:0", Some(&url), "").await
}

/// A loopback port nothing listens on (yet).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulled_messages_arrive_exactly_once_and_are_receipted() {
    // Blue holds the messages; red pulls them (it is the pull P-Mode's responder).
    let blue = Node::http("blue_gw", "red_gw", "127.0.0.1:0", None, "").await;
    let ids = [
        blue.submit("b2r-pull", &[(b"<pulled n='1'/>", "application/xml")])
            .await,
        blue.submit("b2r-pull", &[(b"<pulled n='2'/>", "application/xml")])
            .await,
    ];
    for id in &ids {
        let d = blue.store().message(id).await.unwrap().unwrap();
        assert_eq!(d.state, "READY_TO_PULL");
    }
    let red = puller_of(&blue).await;
    for (i, id) in ids.iter().enumerate() {
        let ours = wait_state(blue.store(), id, ACKNOWLEDGED, Duration::from_secs(30)).await;
        assert_eq!(count(&ours, "WAITING_FOR_RECEIPT"), 1, "{:?}", ours.history);
        let theirs = red.store().message(id).await.unwrap().expect("pulled");
        assert_eq!(
            theirs.record.payloads[0]
                .content(&red.running.shared.blobs)
                .unwrap(),
            format!("<pulled n='{}'/>", i + 1).as_bytes()
        );
        assert_eq!(theirs.record.mpc, PULL_MPC);
        assert!(
            String::from_utf8_lossy(&ours.record.receipt).contains("NonRepudiationInformation")
        );
    }
    // Red keeps pulling an empty MPC: nothing more arrives, nothing is handed out twice.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(red.store().list(10).await.unwrap().len(), 2);
    for id in &ids {
        let ours = blue.store().message(id).await.unwrap().unwrap();
        assert_eq!(count(&ours, "WAITING_FOR_RECEIPT"), 1);
    }
}

/// red_gw pulling the `b2r-pull` MPC from `blue` every 200 ms.
async fn puller_of(blue: &Node) -> Node {
    Node::http(
        "red_gw",
        "blue_gw",
        "127.0.0.1:0",
        Some(&blue.url()),
        "[[pull]]\npmode = \"b2r-pull\"\ninterval = \"200ms\"\n",
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pulled_message_past_the_answer_limit_streams_to_the_puller() {
    let blue = Node::http("blue_gw", "red_gw", "127.0.0.1:0", None, "").await;
    // Larger than the 1 MiB a back-end's answer may have: the pulled message streams into
    // red's intake like a pushed one.
    let large = random_bytes(3 * 1024 * 1024);
    let id = blue
        .submit(
            "b2r-pull",
            &[(large.as_slice(), "application/octet-stream")],
        )
        .await;
    let red = puller_of(&blue).await;
    let ours = wait_state(blue.store(), &id, ACKNOWLEDGED, Duration::from_secs(60)).await;
    assert_eq!(count(&ours, "WAITING_FOR_RECEIPT"), 1, "{:?}", ours.history);
    let theirs = red.store().message(&id).await.unwrap().expect("pulled");
    let received = theirs.record.payloads[0]
        .content(&red.running.shared.blobs)
        .unwrap();
    assert!(received == large, "the pulled payload differs");
}

/// `len` random bytes.
fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

/// A PullRequest for `mpc` signed with `key` (a test-pki key path without extension).
fn pull_request(mpc: &str, key: &str) -> String {
    let cert = as4gate::pem::certificates(&common::pki(&format!("{key}.crt"))).unwrap();
    let der = as4gate::pem::pkcs8_key(&common::pki(&format!("{key}.key"))).unwrap();
    let signing =
        as4gate_wssec::sign::SigningIdentity::from_pkcs8_der(&der, &cert[0], vec![]).unwrap();
    let unsigned = as4gate_ebms::signal::build_pull_request(
        &format!("pull-{}@test", uuid::Uuid::now_v7()),
        "2026-11-23T12:00:00Z",
        mpc,
    )
    .unwrap();
    as4gate_wssec::sign::sign_envelope(&unsigned, &signing, &[])
        .unwrap()
        .xml
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_requests_are_authorised_and_an_empty_mpc_is_a_warning() {
    let blue = Node::http("blue_gw", "red_gw", "127.0.0.1:0", None, "").await;
    let id = blue
        .submit("b2r-pull", &[(b"<kept/>", "application/xml")])
        .await;
    let soap = "application/soap+xml; charset=UTF-8";
    // Signed by a key that is not red_gw's: refused, nothing handed out.
    let intruder = common::post(
        &blue.url(),
        soap,
        pull_request(PULL_MPC, "mallory/rsa").into_bytes(),
    )
    .await;
    common::assert_ebms_error(&intruder, "EBMS:0101");
    // An MPC no pull P-Mode offers.
    let elsewhere = common::post(
        &blue.url(),
        soap,
        pull_request("urn:as4gate:mpc:nothing-here", "red_gw/rsa").into_bytes(),
    )
    .await;
    common::assert_ebms_error(&elsewhere, "EBMS:0010");
    assert_eq!(
        blue.store().message(&id).await.unwrap().unwrap().state,
        "READY_TO_PULL"
    );
    // red_gw pulls it (the answer is the message) but never sends a receipt: after a retry
    // interval it is offered again; after 1 + max_retries (2) pulls it fails with EBMS:0301.
    for attempt in 1..=3 {
        wait_state(blue.store(), &id, "READY_TO_PULL", Duration::from_secs(30)).await;
        let request = pull_request(PULL_MPC, "red_gw/rsa").into_bytes();
        let (status, body) = common::post(&blue.url(), soap, request).await;
        assert_eq!(status, 200);
        assert!(
            body.contains(&id),
            "pull {attempt}: the pulled message: {body}"
        );
        if attempt == 1 {
            // Nothing else waits: EBMS:0006 as a warning with HTTP 200.
            let request = pull_request(PULL_MPC, "red_gw/rsa").into_bytes();
            let (status, body) = common::post(&blue.url(), soap, request).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(common::error_code(&body).as_deref(), Some("EBMS:0006"));
            assert!(body.contains("severity=\"warning\""), "{body}");
        }
    }
    let ours = wait_state(blue.store(), &id, SEND_FAILURE, Duration::from_secs(30)).await;
    assert_eq!(count(&ours, "WAITING_FOR_RECEIPT"), 3, "{:?}", ours.history);
    let failed = blue.store().failed_sends(10).await.unwrap();
    assert_eq!(failed[0].error_code.as_deref(), Some("EBMS:0301"));
}

/// The base64 `wsse:BinarySecurityToken` of a signed answer and its `ds:SignatureMethod`.
fn answer_signer(body: &str) -> (String, String) {
    let token = body
        .split_once("BinarySecurityToken")
        .and_then(|(_, rest)| rest.split_once('>'))
        .and_then(|(_, rest)| rest.split_once('<'))
        .map(|(token, _)| token.split_whitespace().collect())
        .unwrap_or_default();
    let method = body
        .split_once("SignatureMethod Algorithm=\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(method, _)| method.to_owned())
        .unwrap_or_default();
    (token, method)
}

fn certificate_base64(rel: &str) -> String {
    use base64::Engine;
    let der = as4gate::pem::certificates(&common::pki(rel))
        .unwrap()
        .remove(0);
    base64::engine::general_purpose::STANDARD.encode(der)
}

/// Composes a one-payload message `id` from `sender`, replaces `from` with `to` in its signed
/// envelope (so that it is refused) and posts it to `node`.
async fn post_altered(
    node: &Node,
    sender: &common::Sender,
    id: &str,
    from: &str,
    to: &str,
) -> (u16, String) {
    let mut composed = sender.compose(id, vec![common::payload(1, "application/xml", b"<doc/>")]);
    composed.envelope = composed.envelope.replace(from, to);
    let (content_type, body) = composed.to_mime("MIMEBoundary_generation").unwrap();
    common::post(&node.url(), &content_type, body).await
}

/// A sender playing blue_gw under one of the pair's P-Modes, signing with `key`.
fn blue_as(pmode_id: &str, profile: &str, key: &str, receiver: &str) -> common::Sender {
    let mut sender = common::Sender::with_key("blue-to-red", key);
    sender.pmode = as4gate_pmode::PMode::from_toml_str(
        &common::pair::PModeFile::new(pmode_id, profile).toml(),
        std::path::Path::new("pair.toml"),
    )
    .unwrap();
    sender.receiver_certificate = as4gate::pem::certificates(&common::pki(receiver))
        .unwrap()
        .remove(0);
    sender
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_are_signed_with_the_key_of_the_senders_generation() {
    let red = Node::http("red_gw", "blue_gw", "127.0.0.1:0", None, "").await;
    let sender = blue_as(
        "b2r-20",
        "edelivery-as4-2.0",
        "blue_gw/ed25519",
        "red_gw/x25519.crt",
    );
    let ed25519 = (
        certificate_base64("red_gw/ed25519.crt"),
        "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519".to_owned(),
    );

    // An AS4 2.0 message its P-Mode matched, refused: signed with our Ed25519 key.
    let answer = post_altered(
        &red,
        &sender,
        "gen-1@blue.test",
        "conversation-1",
        "conversation-2",
    )
    .await;
    common::assert_ebms_error(&answer, "EBMS:0101");
    assert_eq!(answer_signer(&answer.1), ed25519, "{}", answer.1);

    // Ed25519-signed but no P-Mode matches: the signature's claim chooses the key.
    let answer = post_altered(
        &red,
        &sender,
        "gen-2@blue.test",
        ">b2r-20<",
        ">NoSuchAction<",
    )
    .await;
    assert!(
        matches!(
            common::error_code(&answer.1).as_deref(),
            Some("EBMS:0001" | "EBMS:0010")
        ),
        "{}",
        answer.1
    );
    assert_eq!(answer_signer(&answer.1), ed25519, "{}", answer.1);

    // An AS4 1.15 message refused: signed with our RSA key.
    let rsa = blue_as(
        "b2r-115",
        "edelivery-as4-1.15",
        "blue_gw/rsa",
        "red_gw/rsa.crt",
    );
    let answer = post_altered(
        &red,
        &rsa,
        "gen-3@blue.test",
        "conversation-1",
        "conversation-2",
    )
    .await;
    common::assert_ebms_error(&answer, "EBMS:0101");
    assert_eq!(
        answer_signer(&answer.1),
        (
            certificate_base64("red_gw/rsa.crt"),
            "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256".to_owned()
        ),
        "{}",
        answer.1
    );
}
