//! Sending over HTTPS and reusing connections: blue_gw sends to red_gw's HTTPS listener,
//! which requires a TLS client certificate (mutual TLS with the test PKI's `tls.crt`/`tls.key`
//! pairs), through a TCP relay that counts connections: sequential sends share one. Without a
//! client certificate the handshake is refused, every attempt fails naming TLS on a new
//! connection, and reception awareness gives up. Against a mock HTTP/1.1 server that counts
//! accepted connections, sequential exchanges share one connection, an idle one is closed
//! after [`IDLE_TIMEOUT`], a server's `Connection: close` or its own close is honoured, and no
//! more than `concurrency` connections are opened at once.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use as4gate::delivery::transport::{HttpSender, IDLE_TIMEOUT};
use as4gate::delivery::{BackendConfig, Binding, RetrySchedule};
use as4gate::store::outbound::{ACKNOWLEDGED, SEND_FAILURE};
use bytes::Bytes;
use common::pair::{Node, count, wait_state};
use http_body_util::{BodyExt, Full};
use hyper::header::HeaderMap;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

/// How a gateway is reached and reaches its partner.
enum Role<'a> {
    /// Red: listens on HTTPS only and requires blue's TLS client certificate.
    Receiver,
    /// Blue: listens on plain HTTP and sends to `endpoint`, presenting its TLS client
    /// certificate when `client_certificate` is set.
    Sender {
        endpoint: &'a str,
        client_certificate: bool,
    },
}

/// Writes the configuration of `me` (talking to `other`) into `dir`.
fn write_config(dir: &Path, me: &str, other: &str, role: Role<'_>) -> PathBuf {
    let pki = common::repo().join("test-pki");
    let pki = pki.display();
    let (listen, partner) = match role {
        Role::Receiver => (
            format!(
                r#"[listen.https]
address = "127.0.0.1:0"
certificate = "{pki}/{me}/tls.crt"
key = "{pki}/{me}/tls.key"
client_auth = "required"
client_ca = ["{pki}/ca/ca.crt"]"#
            ),
            format!(r#"tls_client_certificates = ["{pki}/{other}/tls.crt"]"#),
        ),
        Role::Sender {
            endpoint,
            client_certificate,
        } => {
            let credentials = if client_certificate {
                format!("certificate = \"{pki}/{me}/tls.crt\"\nkey = \"{pki}/{me}/tls.key\"")
            } else {
                String::new()
            };
            (
                "[listen]\nhttp = \"127.0.0.1:0\"".to_owned(),
                format!(
                    "endpoint = \"{endpoint}\"\ntimeout = \"5s\"\n[partner.tls]\nca = \"{pki}/ca/ca.crt\"\n{credentials}"
                ),
            )
        }
    };
    common::pair::write_config(dir, me, other, &listen, &partner, "")
}

/// Starts `me` (talking to `other`) in `role`.
async fn node(me: &str, other: &str, role: Role<'_>) -> Node {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), me, other, role);
    Node::start(dir, &config).await
}

/// Red receiving on HTTPS with client certificates required, and blue sending to it with or
/// without its client certificate, through a TCP relay that counts blue's connections.
async fn pair(client_certificate: bool) -> (Node, Node, Arc<AtomicUsize>) {
    let red = node("red_gw", "blue_gw", Role::Receiver).await;
    let (relay, connections) = counting_relay(red.running.https.unwrap()).await;
    let endpoint = format!("https://{relay}/as4");
    let blue = node(
        "blue_gw",
        "red_gw",
        Role::Sender {
            endpoint: &endpoint,
            client_certificate,
        },
    )
    .await;
    (red, blue, connections)
}

/// A TCP relay on 127.0.0.1 (so red's certificate still matches) to `target`, counting the
/// connections it accepts; TLS passes through it untouched.
async fn counting_relay(target: SocketAddr) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let connections = Arc::new(AtomicUsize::new(0));
    let counter = connections.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut inbound, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (address, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_over_mutual_tls_and_gets_receipts() {
    let (red, blue, connections) = pair(true).await;
    // One after the other, each acknowledged before the next is submitted: well within the
    // idle timeout of each other, so they share one TLS connection.
    for pmode in ["b2r-115", "b2r-20", "b2r-115", "b2r-20"] {
        let id = blue
            .submit(
                pmode,
                &[(b"<invoice>over TLS</invoice>", "application/xml")],
            )
            .await;
        let ours = wait_state(blue.store(), &id, ACKNOWLEDGED, Duration::from_secs(60)).await;
        assert_eq!(count(&ours, "SEND_IN_PROGRESS"), 1, "{:?}", ours.history);
        assert!(
            String::from_utf8_lossy(&ours.record.receipt).contains("NonRepudiationInformation")
        );
        let theirs = red
            .store()
            .message(&id)
            .await
            .unwrap()
            .expect("stored at red");
        assert_eq!(
            theirs.record.payloads[0]
                .content(&red.running.shared.blobs)
                .unwrap(),
            b"<invoice>over TLS</invoice>"
        );
    }
    // One connection; a second only if a slow machine left the connection idle too long.
    let opened = connections.load(Ordering::SeqCst);
    assert!((1..=2).contains(&opened), "4 sends, {opened} connections");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_certificate_the_handshake_is_refused_and_retried() {
    let (red, blue, connections) = pair(false).await;
    let id = blue
        .submit("b2r-115-give-up", &[(b"<refused/>", "application/xml")])
        .await;
    let ours = wait_state(blue.store(), &id, SEND_FAILURE, Duration::from_secs(30)).await;
    // 1 + max_retries (2) attempts, every one refused in the TLS handshake.
    assert_eq!(count(&ours, "SEND_IN_PROGRESS"), 3, "{:?}", ours.history);
    assert_eq!(count(&ours, ACKNOWLEDGED), 0, "{:?}", ours.history);
    let retries: Vec<&str> = ours
        .history
        .iter()
        .filter(|h| h.state == "WAITING_FOR_RETRY")
        .map(|h| h.detail.as_deref().unwrap_or_default())
        .collect();
    assert_eq!(retries.len(), 2, "{:?}", ours.history);
    for detail in retries {
        assert!(detail.contains("TLS"), "{detail}");
    }
    let failed = blue.store().failed_sends(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message_id, id);
    assert_eq!(failed[0].error_code.as_deref(), Some("EBMS:0301"));
    let last = failed[0].last_error.as_deref().unwrap();
    assert!(
        last.contains("MissingReceipt") && last.contains("TLS"),
        "{last}"
    );
    // Nothing got through to red, and no refused connection was used again.
    assert!(red.store().message(&id).await.unwrap().is_none());
    assert_eq!(connections.load(Ordering::SeqCst), 3);
}

/// How the mock server treats connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    /// Keep-alive, as long as the client wants.
    Alive,
    /// Every answer carries `Connection: close`.
    CloseEach,
    /// Keep-alive, but the server closes every connection this long after accepting it.
    For(Duration),
}

/// A plain HTTP/1.1 server on loopback answering every POST with 200, counting the
/// connections it accepted and those that have ended.
struct CountingServer {
    url: String,
    accepted: Arc<AtomicUsize>,
    ended: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
}

impl CountingServer {
    async fn start(keep: Keep) -> CountingServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/deliver", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let ended = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let (a, e, r) = (accepted.clone(), ended.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                a.fetch_add(1, Ordering::SeqCst);
                let (ended, requests) = (e.clone(), r.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        let requests = requests.clone();
                        async move {
                            let _ = req.into_body().collect().await;
                            requests.fetch_add(1, Ordering::SeqCst);
                            let mut response = hyper::Response::new(Full::new(Bytes::from("ok")));
                            if keep == Keep::CloseEach {
                                response
                                    .headers_mut()
                                    .insert("connection", "close".parse().unwrap());
                            }
                            Ok::<_, Infallible>(response)
                        }
                    });
                    let serve = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service);
                    match keep {
                        Keep::For(limit) => {
                            let _ = tokio::time::timeout(limit, serve).await;
                        }
                        Keep::Alive | Keep::CloseEach => {
                            let _ = serve.await;
                        }
                    }
                    ended.fetch_add(1, Ordering::SeqCst);
                });
            }
        });
        CountingServer {
            url,
            accepted,
            ended,
            requests,
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    fn ended(&self) -> usize {
        self.ended.load(Ordering::SeqCst)
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

fn sender(url: &str, concurrency: usize) -> HttpSender {
    HttpSender::new(&BackendConfig {
        id: "counting".into(),
        binding: Binding::Rest,
        url: url.into(),
        timeout: Duration::from_secs(5),
        concurrency,
        retry: RetrySchedule::default(),
        tls: None,
    })
    .unwrap()
}

async fn post(sender: &HttpSender, n: usize) {
    let answer = sender
        .post_bytes(
            "application/xml".into(),
            HeaderMap::new(),
            Bytes::from(format!("<n>{n}</n>")),
        )
        .await
        .unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body.as_ref(), b"ok");
}

/// Waits until `check` holds, for at most `timeout`.
async fn eventually(what: &str, timeout: Duration, check: impl Fn() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < timeout, "{what} not within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequential_exchanges_reuse_one_connection_until_it_is_idle_too_long() {
    let server = CountingServer::start(Keep::Alive).await;
    let sender = sender(&server.url, 4);
    for n in 0..20 {
        post(&sender, n).await;
    }
    assert_eq!(server.requests(), 20);
    assert_eq!(
        server.accepted(),
        1,
        "20 sequential exchanges, one connection"
    );
    // Idle past the idle timeout, the connection is closed by us, without another exchange.
    eventually("idle connection closed", IDLE_TIMEOUT * 3, || {
        server.ended() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    post(&sender, 20).await;
    assert_eq!(
        server.accepted(),
        2,
        "a new connection after the idle timeout"
    );
    for n in 21..30 {
        post(&sender, n).await;
    }
    assert_eq!(server.accepted(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_answers_get_a_new_connection_each_time() {
    let server = CountingServer::start(Keep::CloseEach).await;
    let sender = sender(&server.url, 4);
    for n in 0..5 {
        post(&sender, n).await;
    }
    assert_eq!(server.requests(), 5);
    assert_eq!(server.accepted(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_closed_is_not_reused() {
    let server = CountingServer::start(Keep::For(Duration::from_millis(300))).await;
    let sender = sender(&server.url, 4);
    post(&sender, 0).await;
    post(&sender, 1).await;
    assert_eq!(server.accepted(), 1);
    // The server closes its side while the connection is idle in our pool (before our idle
    // timeout); the next exchange takes a new connection and does not fail.
    eventually(
        "server closed the connection",
        Duration::from_secs(2),
        || server.ended() == 1,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    post(&sender, 2).await;
    assert_eq!(server.accepted(), 2);
    assert_eq!(server.requests(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_exchanges_open_at_most_concurrency_connections() {
    let server = CountingServer::start(Keep::Alive).await;
    let sender = Arc::new(sender(&server.url, 3));
    for round in 0..4 {
        let tasks: Vec<_> = (0..12)
            .map(|n| {
                let sender = sender.clone();
                tokio::spawn(async move { post(&sender, round * 100 + n).await })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    }
    assert_eq!(server.requests(), 48);
    let accepted = server.accepted();
    assert!(
        (1..=3).contains(&accepted),
        "48 exchanges, at most 3 at once: {accepted} connections"
    );
}
