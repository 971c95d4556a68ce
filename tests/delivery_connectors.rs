//! The connector contract: one suite every back-end connector must pass, run here for the
//! REST and the SOAP connector against a scripted mock back-end (hyper, in-process, on
//! 127.0.0.1).
//!
//! Each case starts its own mock and blob store. The mock answers every request with the
//! case's scripted reply (optionally after a delay), records what it received (headers and
//! the whole body) and counts the requests in flight. Per connector, a [`Target`] says how
//! to build it, what a success answer looks like and how to decode the request it sends
//! (multipart parsed with the same splitter the gateway uses for inbound AS4). The HTTPS
//! cases use the committed test PKI (`red_gw/tls.crt` serves, `blue_gw/tls.crt` is the
//! client certificate, both from `ca/ca.crt`).
//!
//! The back-end interface documents in `docs/backend/` are checked here too: the SOAP
//! envelopes the connector produces validate against `as4gate-backend.xsd` and the WSDL's
//! schema import resolves, with the `xmllint` CLI (libxml2-utils). Without `xmllint` those
//! tests are skipped with a printed note, except with `CI=true`, where they fail.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use as4gate::delivery::BackendTls;
use as4gate::delivery::soap::{BACKEND_NS, DELIVER_ACTION, envelope};
use as4gate::delivery::{
    Attempt, BackendConfig, Binding, Connector, Outcome, RestConnector, RetrySchedule,
    SoapConnector,
};
use as4gate::pem;
use as4gate::store::{BlobStore, InboundRecord, StoredPayload, StoredProperty};
use as4gate_ebms::EbmsError;
use as4gate_ebms::mime::{MultipartRelated, MultipartSplitter, PartHeaders, PartSink};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// What the mock answers.
#[derive(Clone)]
struct Reply {
    status: u16,
    content_type: &'static str,
    body: String,
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            content_type: "text/plain",
            body: format!("status {status}"),
            delay: Duration::ZERO,
        }
    }
}

/// One request the mock received.
#[derive(Clone)]
struct Received {
    /// Every request header, names in lower case (last value wins).
    headers: HashMap<String, String>,
    content_type: String,
    content_length: Option<u64>,
    body: Bytes,
}

#[derive(Default)]
struct MockState {
    received: Mutex<Vec<Received>>,
    /// TLS connections on which the client presented a certificate.
    client_certificates: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
}

/// A scripted back-end on 127.0.0.1.
struct Mock {
    addr: SocketAddr,
    state: Arc<MockState>,
}

impl Mock {
    async fn start(reply: Reply) -> Mock {
        Mock::start_with(reply, None).await
    }

    /// A mock on HTTPS with `red_gw/tls.crt`, requiring a client certificate from the test CA.
    async fn start_tls(reply: Reply) -> Mock {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from(
                pem::certificates(&pki("ca/ca.crt")).unwrap().remove(0),
            ))
            .unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .build()
        .unwrap();
        let chain = pem::certificates(&pki("red_gw/tls.crt"))
            .unwrap()
            .into_iter()
            .map(CertificateDer::from)
            .collect();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            pem::pkcs8_key(&pki("red_gw/tls.key")).unwrap(),
        ));
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain, key)
            .unwrap();
        Mock::start_with(reply, Some(Arc::new(config))).await
    }

    async fn start_with(reply: Reply, tls: Option<Arc<rustls::ServerConfig>>) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(MockState::default());
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let state = shared.clone();
                let reply = reply.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    let service = {
                        let state = state.clone();
                        service_fn(move |req| handle(req, state.clone(), reply.clone()))
                    };
                    let http = hyper::server::conn::http1::Builder::new();
                    match tls {
                        None => {
                            let _ = http.serve_connection(TokioIo::new(tcp), service).await;
                        }
                        Some(config) => {
                            let Ok(stream) = TlsAcceptor::from(config).accept(tcp).await else {
                                return;
                            };
                            if stream.get_ref().1.peer_certificates().is_some() {
                                state.client_certificates.fetch_add(1, Ordering::SeqCst);
                            }
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Mock { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}/backend/deliver?x=1", self.addr)
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<MockState>,
    reply: Reply,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let now = state.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    state.max_in_flight.fetch_max(now, Ordering::SeqCst);
    assert_eq!(req.method(), hyper::Method::POST);
    assert_eq!(req.uri().path(), "/backend/deliver");
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let headers = req
        .headers()
        .iter()
        .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let content_type = header("content-type").unwrap_or_default();
    let content_length = header("content-length").and_then(|v| v.parse().ok());
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    tokio::time::sleep(reply.delay).await;
    if let Ok(body) = body {
        state.received.lock().unwrap().push(Received {
            headers,
            content_type,
            content_length,
            body,
        });
    }
    state.in_flight.fetch_sub(1, Ordering::SeqCst);
    Ok(Response::builder()
        .status(reply.status)
        .header("content-type", reply.content_type)
        .body(Full::new(Bytes::from(reply.body)))
        .unwrap())
}

/// One MIME part of a received request.
#[derive(Debug, Clone)]
struct Part {
    headers: HashMap<String, String>,
    content_id: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
}

#[derive(Default)]
struct Collect(Vec<Part>);

impl PartSink for Collect {
    fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError> {
        self.0.push(Part {
            headers: headers
                .headers
                .iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.clone()))
                .collect(),
            content_id: headers.content_id,
            content_type: headers.content_type,
            body: Vec::new(),
        });
        Ok(())
    }
    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
        self.0.last_mut().unwrap().body.extend_from_slice(data);
        Ok(())
    }
    fn part_end(&mut self) -> Result<(), EbmsError> {
        Ok(())
    }
}

fn split(boundary: &str, body: &[u8]) -> Vec<Part> {
    let mut splitter = MultipartSplitter::new(boundary, &as4gate_ebms::Limits::default()).unwrap();
    let mut sink = Collect::default();
    for chunk in body.chunks(7919) {
        splitter.push(chunk, &mut sink).unwrap();
    }
    splitter.finish(&mut sink).unwrap();
    sink.0
}

/// What a connector sent, decoded into binding-neutral terms.
#[derive(Debug)]
struct Decoded {
    message_id: String,
    /// (subscription, attempt, possibleDuplicate) from the body.
    delivery: (String, u32, bool),
    conversation_id: String,
    from_party: String,
    action: String,
    property: (String, String),
    /// (content id, MIME type, bytes) per payload, in order.
    payloads: Vec<(String, String, Vec<u8>)>,
}

/// A connector under contract.
trait Target {
    type C: Connector;
    const BINDING: Binding;
    /// Whether a 200 answer carrying a SOAP Fault is a retry for this binding.
    const FAULT_IN_200_RETRIES: bool;
    fn build(config: BackendConfig) -> Self::C;
    fn success() -> Reply;
    fn decode(received: &Received) -> Decoded;
}

struct Rest;
struct Soap;

impl Target for Rest {
    type C = RestConnector;
    const BINDING: Binding = Binding::Rest;
    const FAULT_IN_200_RETRIES: bool = false;

    fn build(config: BackendConfig) -> RestConnector {
        RestConnector::new(config).unwrap()
    }

    fn success() -> Reply {
        Reply {
            status: 200,
            content_type: "application/json",
            body: "{\"accepted\":true}".into(),
            delay: Duration::ZERO,
        }
    }

    fn decode(received: &Received) -> Decoded {
        let boundary = received
            .content_type
            .strip_prefix("multipart/form-data; boundary=")
            .expect("multipart/form-data");
        let parts = split(boundary, &received.body);
        assert_eq!(
            parts[0].headers["content-disposition"],
            "form-data; name=\"metadata\""
        );
        assert_eq!(parts[0].content_type.as_deref(), Some("application/json"));
        let meta: serde_json::Value = serde_json::from_slice(&parts[0].body).unwrap();
        // `delivery` follows `messageId` on the wire.
        let message_id = serde_json::to_string(&meta["messageId"]).unwrap();
        assert!(
            parts[0]
                .body
                .starts_with(format!("{{\"messageId\":{message_id},\"delivery\":{{").as_bytes()),
            "{}",
            String::from_utf8_lossy(&parts[0].body)
        );
        let delivery = &meta["delivery"];
        assert_eq!(delivery.as_object().unwrap().len(), 3, "{delivery}");
        let listed = meta["payloads"].as_array().unwrap();
        assert_eq!(listed.len(), parts.len() - 1);
        let payloads = parts[1..]
            .iter()
            .zip(listed)
            .map(|(p, info)| {
                let cid = info["contentId"].as_str().unwrap().to_owned();
                assert_eq!(
                    p.headers["content-disposition"],
                    format!("form-data; name=\"payload\"; filename=\"{cid}\"")
                );
                assert_eq!(info["size"].as_u64().unwrap(), p.body.len() as u64);
                (cid, p.content_type.clone().unwrap(), p.body.clone())
            })
            .collect();
        let s = |v: &serde_json::Value| v.as_str().unwrap().to_owned();
        Decoded {
            message_id: s(&meta["messageId"]),
            delivery: (
                s(&delivery["subscription"]),
                u32::try_from(delivery["attempt"].as_u64().unwrap()).unwrap(),
                delivery["possibleDuplicate"].as_bool().unwrap(),
            ),
            conversation_id: s(&meta["conversationId"]),
            from_party: s(&meta["from"]["partyId"]),
            action: s(&meta["action"]),
            property: (
                s(&meta["properties"][0]["name"]),
                s(&meta["properties"][0]["value"]),
            ),
            payloads,
        }
    }
}

impl Target for Soap {
    type C = SoapConnector;
    const BINDING: Binding = Binding::Soap;
    const FAULT_IN_200_RETRIES: bool = true;

    fn build(config: BackendConfig) -> SoapConnector {
        SoapConnector::new(config).unwrap()
    }

    fn success() -> Reply {
        Reply {
            status: 200,
            content_type: "application/soap+xml; charset=UTF-8",
            body: r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><deliverMessageResponse xmlns="urn:as4gate:backend:1"/></env:Body></env:Envelope>"#.into(),
            delay: Duration::ZERO,
        }
    }

    fn decode(received: &Received) -> Decoded {
        let related = MultipartRelated::parse(&received.content_type).unwrap();
        assert_eq!(related.r#type.as_deref(), Some("application/soap+xml"));
        let parts = split(&related.boundary, &received.body);
        let root = &parts[0];
        assert_eq!(
            root.content_id.as_deref(),
            related.start.as_deref().map(|s| s.trim_matches(['<', '>']))
        );
        assert!(
            root.content_type
                .as_deref()
                .unwrap()
                .starts_with("application/soap+xml")
        );
        let xml = std::str::from_utf8(&root.body).unwrap();
        let doc = uppsala::Parser::new().parse(xml).unwrap();
        let ns = Some("urn:as4gate:backend:1");
        let mut by_name: HashMap<String, Vec<uppsala::NodeId>> = HashMap::new();
        collect(&doc, doc.document_element().unwrap(), ns, &mut by_name);
        let text = |name: &str, i: usize| doc.text_content_deep(by_name[name][i]);
        let hrefs: Vec<(String, String)> = by_name["payload"]
            .iter()
            .map(|id| {
                let e = doc.element(*id).unwrap();
                (
                    e.get_attribute("href").unwrap().to_owned(),
                    e.get_attribute("mimeType").unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(hrefs.len(), parts.len() - 1);
        let payloads = parts[1..]
            .iter()
            .zip(hrefs)
            .map(|(p, (href, mime))| {
                let cid = p.content_id.clone().unwrap();
                assert_eq!(href, format!("cid:{cid}"));
                assert_eq!(p.content_type.as_deref(), Some(mime.as_str()));
                (cid, mime, p.body.clone())
            })
            .collect();
        let property = by_name["property"][0];
        let delivery = doc.element(by_name["delivery"][0]).unwrap();
        let attribute = |name| delivery.get_attribute(name).unwrap().to_owned();
        let possible_duplicate = match attribute("possibleDuplicate").as_str() {
            "true" => true,
            "false" => false,
            other => panic!("possibleDuplicate={other:?}"),
        };
        Decoded {
            message_id: text("messageId", 0),
            delivery: (
                attribute("subscription"),
                attribute("attempt").parse().unwrap(),
                possible_duplicate,
            ),
            conversation_id: text("conversationId", 0),
            from_party: text("partyId", 0),
            action: text("action", 0),
            property: (
                doc.element(property)
                    .unwrap()
                    .get_attribute("name")
                    .unwrap()
                    .to_owned(),
                doc.text_content_deep(property),
            ),
            payloads,
        }
    }
}

fn collect(
    doc: &uppsala::Document<'_>,
    id: uppsala::NodeId,
    ns: Option<&str>,
    out: &mut HashMap<String, Vec<uppsala::NodeId>>,
) {
    for child in doc.children_iter(id) {
        if let Some(e) = doc.element(child) {
            if e.name.namespace_uri.as_deref() == ns {
                out.entry(e.name.local_name.to_string())
                    .or_default()
                    .push(child);
            }
            collect(doc, child, ns, out);
        }
    }
}

fn config<T: Target>(url: String) -> BackendConfig {
    BackendConfig {
        id: "backend-under-test".into(),
        binding: T::BINDING,
        url,
        timeout: Duration::from_secs(5),
        concurrency: 4,
        retry: RetrySchedule::default(),
        tls: None,
    }
}

/// A message with one inline payload and one payload in a blob file of `blob_size` bytes.
fn message(blobs: &BlobStore, blob_size: usize) -> (InboundRecord, Vec<u8>) {
    let big: Vec<u8> = (0..blob_size as u64)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let blob = blobs.put(&big).unwrap();
    let small = b"<invoice id=\"1\">&amp;</invoice>".to_vec();
    let record = InboundRecord {
        message_id: "m1@blue.example".into(),
        pmode_id: "blue-to-red".into(),
        from_party: "blue_gw".into(),
        from_role: "init".into(),
        to_party: "red_gw".into(),
        to_role: "resp".into(),
        service: "svc".into(),
        service_type: Some("urn:t".into()),
        action: "Deliver<&>".into(),
        conversation_id: "conv-1".into(),
        agreement: None,
        mpc: "mpc".into(),
        ref_to_message_id: None,
        message_timestamp: "2026-11-23T00:00:00Z".into(),
        message_properties: vec![StoredProperty {
            name: "originalSender".into(),
            value: "urn:oasis:x \"quoted\"".into(),
            r#type: None,
        }],
        is_test: false,
        signer_certificate: None,
        envelope: b"<S12:Envelope/>".to_vec(),
        payloads: vec![
            StoredPayload {
                content_id: "invoice@blue.example".into(),
                blob: as4gate::store::BlobRef {
                    id: "22".repeat(32),
                    size: small.len() as u64,
                },
                inline: Some(small),
                mime_type: Some("application/xml".into()),
                character_set: Some("UTF-8".into()),
                compressed: false,
                properties: vec![],
            },
            StoredPayload {
                content_id: "scan@blue.example".into(),
                blob,
                inline: None,
                mime_type: Some("application/pdf".into()),
                character_set: None,
                compressed: true,
                properties: vec![],
            },
        ],
        receipt: b"<receipt/>".to_vec(),
        received_at: "2026-11-23T00:00:01Z".into(),
    };
    (record, big)
}

/// The first attempt of the subscription the contract cases deliver for.
fn first_attempt() -> Attempt {
    Attempt {
        subscription: "archive".into(),
        number: 1,
        possible_duplicate: false,
    }
}

fn blob_store() -> (tempfile::TempDir, BlobStore) {
    let dir = tempfile::tempdir().unwrap();
    let blobs = BlobStore::open(dir.path()).unwrap();
    (dir, blobs)
}

/// Delivers one message to a mock that answers `reply`; returns the outcome and the mock.
async fn deliver_once<T: Target>(reply: Reply) -> (Outcome, Mock) {
    let mock = Mock::start(reply).await;
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 1000);
    let connector = T::build(config::<T>(mock.url()));
    (
        connector.deliver(&record, &blobs, &first_attempt()).await,
        mock,
    )
}

fn assert_retry(outcome: &Outcome, needle: &str) {
    match outcome {
        Outcome::Retry { reason } => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected Retry containing {needle:?}, got {other:?}"),
    }
}

fn assert_permanent(outcome: &Outcome, needle: &str) {
    match outcome {
        Outcome::Permanent { reason } => assert!(reason.contains(needle), "{reason}"),
        other => panic!("expected Permanent containing {needle:?}, got {other:?}"),
    }
}

// ---- the contract ----

async fn success_delivers_exact_payloads_and_metadata<T: Target>() {
    let mock = Mock::start(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, big) = message(&blobs, 100_000);
    let connector = T::build(config::<T>(mock.url()));
    assert_eq!(connector.id(), "backend-under-test");
    assert_eq!(
        connector.deliver(&record, &blobs, &first_attempt()).await,
        Outcome::Delivered
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    assert_eq!(
        received[0].headers["x-as4gate-message-id"],
        "m1@blue.example"
    );
    assert_eq!(received[0].headers["x-as4gate-attempt"], "1");
    assert_eq!(received[0].headers["x-as4gate-possible-duplicate"], "false");
    assert_eq!(
        received[0].content_length,
        Some(received[0].body.len() as u64)
    );
    let d = T::decode(&received[0]);
    assert_eq!(d.message_id, "m1@blue.example");
    assert_eq!(d.delivery, ("archive".to_owned(), 1, false));
    assert_eq!(d.conversation_id, "conv-1");
    assert_eq!(d.from_party, "blue_gw");
    assert_eq!(d.action, "Deliver<&>");
    assert_eq!(
        d.property,
        ("originalSender".into(), "urn:oasis:x \"quoted\"".into())
    );
    assert_eq!(
        d.payloads,
        vec![
            (
                "invoice@blue.example".to_owned(),
                "application/xml".to_owned(),
                record.payloads[0].inline.clone().unwrap()
            ),
            (
                "scan@blue.example".to_owned(),
                "application/pdf".to_owned(),
                big
            ),
        ]
    );
}

async fn attempt_data_reaches_back_end<T: Target>() {
    let mock = Mock::start(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 10);
    let connector = T::build(config::<T>(mock.url()));
    let retry = Attempt {
        subscription: "archive \"A\" <&>".into(),
        number: 3,
        possible_duplicate: true,
    };
    assert_eq!(
        connector.deliver(&record, &blobs, &retry).await,
        Outcome::Delivered
    );
    let received = mock.received();
    assert_eq!(received.len(), 1);
    let headers = &received[0].headers;
    assert_eq!(headers["x-as4gate-message-id"], "m1@blue.example");
    assert_eq!(headers["x-as4gate-attempt"], "3");
    assert_eq!(headers["x-as4gate-possible-duplicate"], "true");
    assert_eq!(
        T::decode(&received[0]).delivery,
        ("archive \"A\" <&>".to_owned(), 3, true)
    );
}

async fn server_error_retries<T: Target>() {
    let (outcome, mock) = deliver_once::<T>(Reply::status(500)).await;
    assert_retry(&outcome, "HTTP 500");
    assert_eq!(mock.received().len(), 1);
}

async fn soap_fault_in_200<T: Target>() {
    let reply = Reply {
        status: 200,
        content_type: "application/soap+xml",
        body: r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="en">archive offline</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#.into(),
        delay: Duration::ZERO,
    };
    let (outcome, _) = deliver_once::<T>(reply).await;
    if T::FAULT_IN_200_RETRIES {
        assert_retry(&outcome, "archive offline");
    } else {
        assert_eq!(outcome, Outcome::Delivered);
    }
}

async fn client_errors_are_permanent<T: Target>() {
    for status in [400, 404, 409, 413] {
        let (outcome, _) = deliver_once::<T>(Reply::status(status)).await;
        assert_permanent(&outcome, &format!("HTTP {status}"));
    }
}

async fn timeout_and_throttle_statuses_retry<T: Target>() {
    for status in [408, 429, 502, 503] {
        let (outcome, _) = deliver_once::<T>(Reply::status(status)).await;
        assert_retry(&outcome, &format!("HTTP {status}"));
    }
}

async fn connection_refused_retries<T: Target>() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 10);
    let connector = T::build(config::<T>(format!("http://{addr}/deliver")));
    assert_retry(
        &connector.deliver(&record, &blobs, &first_attempt()).await,
        "cannot connect to the back-end",
    );
}

async fn slow_back_end_times_out<T: Target>() {
    let mock = Mock::start(Reply {
        delay: Duration::from_secs(3),
        ..T::success()
    })
    .await;
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 10);
    let mut cfg = config::<T>(mock.url());
    cfg.timeout = Duration::from_millis(300);
    let connector = T::build(cfg);
    let started = std::time::Instant::now();
    assert_retry(
        &connector.deliver(&record, &blobs, &first_attempt()).await,
        "no complete answer within",
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

async fn concurrency_limit_is_honoured<T: Target>() {
    let mock = Mock::start(Reply {
        delay: Duration::from_millis(150),
        ..T::success()
    })
    .await;
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 1000);
    let mut cfg = config::<T>(mock.url());
    cfg.concurrency = 2;
    let connector = T::build(cfg);
    let attempt = first_attempt();
    let outcomes = futures_util::future::join_all(
        (0..6).map(|_| connector.deliver(&record, &blobs, &attempt)),
    )
    .await;
    assert!(
        outcomes.iter().all(|o| *o == Outcome::Delivered),
        "{outcomes:?}"
    );
    assert_eq!(mock.received().len(), 6);
    assert_eq!(mock.state.max_in_flight.load(Ordering::SeqCst), 2);
}

async fn large_payload_streams_intact<T: Target>() {
    let mock = Mock::start(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, big) = message(&blobs, 5 * 1024 * 1024);
    let connector = T::build(config::<T>(mock.url()));
    assert_eq!(
        connector.deliver(&record, &blobs, &first_attempt()).await,
        Outcome::Delivered
    );
    let d = T::decode(&mock.received()[0]);
    assert_eq!(d.payloads[1].2.len(), big.len());
    assert!(d.payloads[1].2 == big, "5 MB payload altered in transit");
}

async fn missing_blob_is_permanent_and_sends_nothing<T: Target>() {
    let mock = Mock::start(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (mut record, _) = message(&blobs, 10);
    record.payloads[1].blob.id = "ab".repeat(32);
    let connector = T::build(config::<T>(mock.url()));
    assert_permanent(
        &connector.deliver(&record, &blobs, &first_attempt()).await,
        "scan@blue.example cannot be read from the store",
    );
    assert!(mock.received().is_empty());
}

async fn corrupt_blob_is_permanent_and_never_complete<T: Target>() {
    let mock = Mock::start(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, big) = message(&blobs, 300_000);
    let path = blobs.path(&record.payloads[1].blob.id).unwrap();
    let mut altered = big.clone();
    altered[250_000] ^= 1;
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, &altered).unwrap();
    let connector = T::build(config::<T>(mock.url()));
    assert_permanent(
        &connector.deliver(&record, &blobs, &first_attempt()).await,
        "blob of payload scan@blue.example is corrupted: SHA-256 is",
    );
    // The request was cut off before its announced length: the back-end never got a
    // complete message.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(mock.received().is_empty());
}

fn pki(path: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("test-pki")
        .join(path)
}

async fn mutual_tls_delivers<T: Target>() {
    let mock = Mock::start_tls(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, big) = message(&blobs, 100_000);
    let mut cfg = config::<T>(mock.url().replace("http://", "https://"));
    cfg.tls = Some(BackendTls {
        ca: pki("ca/ca.crt"),
        certificate: Some(pki("blue_gw/tls.crt")),
        key: Some(pki("blue_gw/tls.key")),
    });
    let connector = T::build(cfg);
    assert_eq!(
        connector.deliver(&record, &blobs, &first_attempt()).await,
        Outcome::Delivered
    );
    assert_eq!(mock.state.client_certificates.load(Ordering::SeqCst), 1);
    assert_eq!(T::decode(&mock.received()[0]).payloads[1].2, big);
}

async fn untrusted_server_certificate_retries<T: Target>() {
    let mock = Mock::start_tls(T::success()).await;
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 10);
    let mut cfg = config::<T>(mock.url().replace("http://", "https://"));
    cfg.tls = Some(BackendTls {
        ca: pki("other-ca/ca.crt"),
        certificate: Some(pki("blue_gw/tls.crt")),
        key: Some(pki("blue_gw/tls.key")),
    });
    let connector = T::build(cfg);
    assert_retry(
        &connector.deliver(&record, &blobs, &first_attempt()).await,
        "TLS handshake with the back-end failed",
    );
    assert!(mock.received().is_empty());
}

macro_rules! contract {
    ($module:ident, $target:ty) => {
        mod $module {
            use super::*;

            #[tokio::test]
            async fn success_delivers_exact_payloads_and_metadata() {
                super::success_delivers_exact_payloads_and_metadata::<$target>().await
            }
            #[tokio::test]
            async fn attempt_data_reaches_back_end() {
                super::attempt_data_reaches_back_end::<$target>().await
            }
            #[tokio::test]
            async fn server_error_retries() {
                super::server_error_retries::<$target>().await
            }
            #[tokio::test]
            async fn soap_fault_in_200() {
                super::soap_fault_in_200::<$target>().await
            }
            #[tokio::test]
            async fn client_errors_are_permanent() {
                super::client_errors_are_permanent::<$target>().await
            }
            #[tokio::test]
            async fn timeout_and_throttle_statuses_retry() {
                super::timeout_and_throttle_statuses_retry::<$target>().await
            }
            #[tokio::test]
            async fn connection_refused_retries() {
                super::connection_refused_retries::<$target>().await
            }
            #[tokio::test]
            async fn slow_back_end_times_out() {
                super::slow_back_end_times_out::<$target>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn concurrency_limit_is_honoured() {
                super::concurrency_limit_is_honoured::<$target>().await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn large_payload_streams_intact() {
                super::large_payload_streams_intact::<$target>().await
            }
            #[tokio::test]
            async fn corrupt_blob_is_permanent_and_never_complete() {
                super::corrupt_blob_is_permanent_and_never_complete::<$target>().await
            }
            #[tokio::test]
            async fn mutual_tls_delivers() {
                super::mutual_tls_delivers::<$target>().await
            }
            #[tokio::test]
            async fn untrusted_server_certificate_retries() {
                super::untrusted_server_certificate_retries::<$target>().await
            }
            #[tokio::test]
            async fn missing_blob_is_permanent_and_sends_nothing() {
                super::missing_blob_is_permanent_and_sends_nothing::<$target>().await
            }
        }
    };
}

contract!(rest, Rest);
contract!(soap, Soap);

// ---- the back-end interface documents (docs/backend/) ----

fn backend_doc(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs/backend")
        .join(name)
}

/// Whether xmllint can run; panics under CI when it cannot.
fn xmllint_available() -> bool {
    let ok = Command::new("xmllint")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("xmllint is required under CI=true (apt-get install libxml2-utils)");
        }
        eprintln!("SKIPPED: xmllint not found on PATH (install the libxml2-utils package)");
    }
    ok
}

/// Runs `xmllint --noout [--schema schema] file`; returns whether it passed and its output.
fn xmllint(schema: Option<&Path>, file: &Path) -> (bool, String) {
    let mut command = Command::new("xmllint");
    command.arg("--noout").arg("--nonet");
    if let Some(schema) = schema {
        command.arg("--schema").arg(schema);
    }
    let out = command.arg(file).output().expect("xmllint runs");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), log)
}

/// Validates a whole SOAP 1.2 envelope: a minimal schema for `Envelope`/`Body` (only what
/// the back-end interface uses) whose Body holds exactly one `deliverMessage` or
/// `deliverMessageResponse` of `docs/backend/as4gate-backend.xsd`.
fn validate_envelope(xml: &str) -> (bool, String) {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("soap12-envelope.xsd");
    std::fs::write(
        &schema,
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:b="{BACKEND_NS}"
           targetNamespace="http://www.w3.org/2003/05/soap-envelope"
           elementFormDefault="qualified">
  <xs:import namespace="{BACKEND_NS}" schemaLocation="{}"/>
  <xs:element name="Envelope">
    <xs:complexType><xs:sequence>
      <xs:element name="Body">
        <xs:complexType><xs:choice>
          <xs:element ref="b:deliverMessage"/>
          <xs:element ref="b:deliverMessageResponse"/>
        </xs:choice></xs:complexType>
      </xs:element>
    </xs:sequence></xs:complexType>
  </xs:element>
</xs:schema>
"#,
            backend_doc("as4gate-backend.xsd").display()
        ),
    )
    .unwrap();
    let file = dir.path().join("envelope.xml");
    std::fs::write(&file, xml).unwrap();
    xmllint(Some(&schema), &file)
}

fn assert_valid(xml: &str) {
    let (ok, log) = validate_envelope(xml);
    assert!(ok && log.contains("validates"), "{log}\n{xml}");
}

fn assert_invalid(xml: &str, needle: &str) {
    let (ok, log) = validate_envelope(xml);
    assert!(!ok, "accepted:\n{xml}");
    assert!(log.contains("fails to validate"), "{log}");
    assert!(log.contains(needle), "expected {needle:?} in: {log}");
}

fn property(name: &str, value: &str, r#type: Option<&str>) -> StoredProperty {
    StoredProperty {
        name: name.into(),
        value: value.into(),
        r#type: r#type.map(Into::into),
    }
}

fn payload(content_id: &str, full: bool) -> StoredPayload {
    StoredPayload {
        content_id: content_id.into(),
        blob: as4gate::store::BlobRef {
            id: "0f".repeat(32),
            size: 12,
        },
        inline: Some(b"hello world!".to_vec()),
        mime_type: full.then(|| "text/plain; charset=UTF-8".into()),
        character_set: full.then(|| "UTF-8".into()),
        compressed: full,
        properties: if full {
            vec![
                property("part", "1 of 2 <&>", Some("urn:t")),
                property("untyped", "", None),
            ]
        } else {
            vec![]
        },
    }
}

/// A record with every optional field of `envelope()` present (`full`) or none of them,
/// with `payloads` payloads.
fn schema_record(full: bool, payloads: usize) -> InboundRecord {
    let (_dir, blobs) = blob_store();
    let (record, _) = message(&blobs, 1);
    let some = |v: &str| full.then(|| v.to_owned());
    InboundRecord {
        ref_to_message_id: some("m0@red.example"),
        agreement: some("urn:agreements:<1>"),
        service_type: some("urn:services"),
        message_timestamp: if full {
            "2026-11-23T00:00:00.123+01:00".into()
        } else {
            "2026-11-23T00:00:00".into()
        },
        received_at: "2026-11-23T00:00:01.5Z".into(),
        message_properties: if full {
            vec![
                property("originalSender", "urn:x:\"1\"\r\n", Some("string")),
                property("finalRecipient", "urn:x:2", None),
            ]
        } else {
            vec![]
        },
        payloads: (0..payloads)
            .map(|i| payload(&format!("p{i}@blue.example"), full))
            .collect(),
        ..record
    }
}

fn retry_attempt() -> Attempt {
    Attempt {
        subscription: "archive \"A\" <&>".into(),
        number: 4_294_967_295,
        possible_duplicate: true,
    }
}

#[test]
fn soap_envelope_with_every_optional_field_validates() {
    if !xmllint_available() {
        return;
    }
    let xml = envelope(&schema_record(true, 2), &retry_attempt());
    for present in [
        "<refToMessageId>",
        "<agreement>",
        "<service type=",
        "mimeType=",
        "characterSet=",
        "<property name=\"originalSender\" type=",
        "<property name=\"part\" type=",
    ] {
        assert!(xml.contains(present), "{present} missing from {xml}");
    }
    assert_valid(&xml);
}

#[test]
fn soap_envelope_without_optional_fields_validates() {
    if !xmllint_available() {
        return;
    }
    for payloads in [0, 1] {
        let xml = envelope(&schema_record(false, payloads), &first_attempt());
        for absent in [
            "<refToMessageId>",
            "<agreement>",
            "type=",
            "mimeType=",
            "characterSet=",
            "<property",
        ] {
            assert!(!xml.contains(absent), "{absent} in {xml}");
        }
        assert_valid(&xml);
    }
}

#[test]
fn backend_schema_rejects_what_it_does_not_describe() {
    if !xmllint_available() {
        return;
    }
    let good = envelope(&schema_record(true, 1), &retry_attempt());
    assert_valid(&good);
    let cases = [
        // An element the interface does not have.
        (
            good.replacen("<mpc>", "<colour>blue</colour><mpc>", 1),
            "colour",
        ),
        // The attempt data is required...
        (
            good.replacen(
                "<delivery subscription=\"archive &quot;A&quot; &lt;&amp;&gt;\" \
                 attempt=\"4294967295\" possibleDuplicate=\"true\"/>",
                "",
                1,
            ),
            "conversationId",
        ),
        // ...and typed.
        (
            good.replacen(
                "possibleDuplicate=\"true\"",
                "possibleDuplicate=\"maybe\"",
                1,
            ),
            "possibleDuplicate",
        ),
        (
            good.replacen("attempt=\"4294967295\"", "attempt=\"0\"", 1),
            "attempt",
        ),
        // The element order is fixed.
        (
            good.replacen("<pmodeId>blue-to-red</pmodeId>", "", 1)
                .replacen("</mpc>", "</mpc><pmodeId>blue-to-red</pmodeId>", 1),
            "pmodeId",
        ),
        // A payload's digest is lower-case hex SHA-256.
        (
            good.replacen(&"0f".repeat(32), &"0F".repeat(32), 1),
            "sha256",
        ),
    ];
    for (xml, needle) in cases {
        assert_ne!(xml, good, "the case for {needle} changed nothing");
        assert_invalid(&xml, needle);
    }
}

#[test]
fn wsdl_is_well_formed_and_its_schema_import_resolves() {
    if !xmllint_available() {
        return;
    }
    let wsdl_path = backend_doc("as4gate-backend.wsdl");
    let (ok, log) = xmllint(None, &wsdl_path);
    assert!(ok, "{log}");

    const WSDL: &str = "http://schemas.xmlsoap.org/wsdl/";
    const SOAP12_BINDING: &str = "http://schemas.xmlsoap.org/wsdl/soap12/";
    const XS: &str = "http://www.w3.org/2001/XMLSchema";
    let text = std::fs::read_to_string(&wsdl_path).unwrap();
    let wsdl = uppsala::Parser::new().parse(&text).unwrap();
    let root = wsdl.document_element().unwrap();
    let definitions = wsdl.element(root).unwrap();
    assert!(definitions.name.matches(Some(WSDL), "definitions"));
    assert_eq!(
        definitions.get_attribute("targetNamespace"),
        Some(BACKEND_NS)
    );
    let elements = |doc: &uppsala::Document<'_>, ns: &str, local: &str| {
        let mut found = Vec::new();
        let mut stack = vec![doc.document_element().unwrap()];
        while let Some(id) = stack.pop() {
            if doc.element(id).unwrap().name.matches(Some(ns), local) {
                found.push(id);
            }
            stack.extend(doc.children_iter(id).filter(|c| doc.element(*c).is_some()));
        }
        found
    };
    let attribute = |doc: &uppsala::Document<'_>, id, name: &str| {
        doc.element(id)
            .unwrap()
            .get_attribute(name)
            .unwrap_or_else(|| panic!("no {name} attribute"))
            .to_owned()
    };

    // The schema import in wsdl:types names a file beside the WSDL that is the schema of
    // the back-end namespace, and xmllint compiles it and validates against it.
    let imports = elements(&wsdl, XS, "import");
    assert_eq!(imports.len(), 1);
    assert_eq!(attribute(&wsdl, imports[0], "namespace"), BACKEND_NS);
    let location = wsdl_path
        .parent()
        .unwrap()
        .join(attribute(&wsdl, imports[0], "schemaLocation"));
    assert!(location.is_file(), "{} does not exist", location.display());
    let xsd_text = std::fs::read_to_string(&location).unwrap();
    let xsd = uppsala::Parser::new().parse(&xsd_text).unwrap();
    let schema = xsd.document_element().unwrap();
    assert_eq!(
        xsd.element(schema)
            .unwrap()
            .get_attribute("targetNamespace"),
        Some(BACKEND_NS)
    );
    let dir = tempfile::tempdir().unwrap();
    let response = dir.path().join("response.xml");
    std::fs::write(
        &response,
        format!("<deliverMessageResponse xmlns=\"{BACKEND_NS}\"/>"),
    )
    .unwrap();
    let (ok, log) = xmllint(Some(&location), &response);
    assert!(ok && log.contains("validates"), "{log}");

    // Every message part names a global element of that schema.
    let global: Vec<String> = xsd
        .children_iter(schema)
        .filter(|c| {
            xsd.element(*c)
                .is_some_and(|e| e.name.matches(Some(XS), "element"))
        })
        .map(|c| attribute(&xsd, c, "name"))
        .collect();
    let tns = definitions
        .namespace_declarations
        .iter()
        .find(|(_, uri)| uri == BACKEND_NS)
        .map(|(prefix, _)| prefix.to_string())
        .expect("a prefix for the back-end namespace");
    let mut parts: Vec<String> = elements(&wsdl, WSDL, "part")
        .into_iter()
        .map(|p| {
            let qname = attribute(&wsdl, p, "element");
            let local = qname
                .strip_prefix(&format!("{tns}:"))
                .unwrap_or_else(|| panic!("{qname} is not in {BACKEND_NS}"));
            assert!(global.iter().any(|g| g == local), "{local} not in the XSD");
            local.to_owned()
        })
        .collect();
    parts.sort();
    assert_eq!(parts, ["deliverMessage", "deliverMessageResponse"]);

    // One operation, bound to SOAP 1.2 with the action the connector sends.
    let operations: Vec<String> = elements(&wsdl, WSDL, "operation")
        .into_iter()
        .map(|o| attribute(&wsdl, o, "name"))
        .collect();
    assert_eq!(operations, ["deliverMessage", "deliverMessage"]);
    let bound = elements(&wsdl, SOAP12_BINDING, "operation");
    assert_eq!(bound.len(), 1);
    assert_eq!(attribute(&wsdl, bound[0], "soapAction"), DELIVER_ACTION);
    let binding = elements(&wsdl, SOAP12_BINDING, "binding");
    assert_eq!(attribute(&wsdl, binding[0], "style"), "document");
    for body in elements(&wsdl, SOAP12_BINDING, "body") {
        assert_eq!(attribute(&wsdl, body, "use"), "literal");
    }
}
