//! A REST back-end on loopback that counts deliveries by MessageId, for the delivery tests.
//! Its behaviour can be switched while it runs: accept (HTTP 200), fail (HTTP 500) or down
//! (every connection is closed before a response).

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// How the back-end answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Mode {
    /// HTTP 200: delivered.
    Accept = 0,
    /// HTTP 500: retried by the gateway.
    Fail = 1,
    /// Connections are closed unanswered.
    Down = 2,
}

/// One accepted delivery.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The metadata's `delivery.possibleDuplicate`.
    pub possible_duplicate: bool,
}

#[derive(Default)]
struct State {
    mode: AtomicU8,
    requests: AtomicUsize,
    accepted: Mutex<HashMap<String, Vec<Seen>>>,
}

/// The mock back-end.
pub struct Backend {
    addr: SocketAddr,
    state: Arc<State>,
}

impl Backend {
    /// Starts one on 127.0.0.1 with `mode`.
    pub async fn start(mode: Mode) -> Backend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        state.mode.store(mode as u8, Ordering::SeqCst);
        let shared = state.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                if shared.mode.load(Ordering::SeqCst) == Mode::Down as u8 {
                    drop(tcp);
                    continue;
                }
                let state = shared.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| handle(req, state.clone()));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        Backend { addr, state }
    }

    /// The URL to configure as the back-end's `url`.
    pub fn url(&self) -> String {
        format!("http://{}/deliver", self.addr)
    }

    /// Switches the behaviour.
    pub fn set_mode(&self, mode: Mode) {
        self.state.mode.store(mode as u8, Ordering::SeqCst);
    }

    /// Requests received (any answer).
    pub fn requests(&self) -> usize {
        self.state.requests.load(Ordering::SeqCst)
    }

    /// Accepted deliveries per MessageId.
    pub fn accepted(&self) -> HashMap<String, Vec<Seen>> {
        self.state.accepted.lock().unwrap().clone()
    }

    /// Distinct MessageIds accepted.
    pub fn distinct(&self) -> usize {
        self.state.accepted.lock().unwrap().len()
    }

    /// Accepted MessageIds delivered more than once: `(id, deliveries, all repeats flagged
    /// possibleDuplicate)`.
    pub fn repeats(&self) -> Vec<(String, usize, bool)> {
        self.state
            .accepted
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, seen)| seen.len() > 1)
            .map(|(id, seen)| {
                (
                    id.clone(),
                    seen.len(),
                    seen[1..].iter().all(|s| s.possible_duplicate),
                )
            })
            .collect()
    }

    /// Waits until `n` distinct MessageIds were accepted; false on timeout.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> bool {
        let start = Instant::now();
        while self.distinct() < n {
            if start.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        true
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    state.requests.fetch_add(1, Ordering::SeqCst);
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => Bytes::new(),
    };
    let mode = state.mode.load(Ordering::SeqCst);
    let status = if mode == Mode::Accept as u8 {
        let text = String::from_utf8_lossy(&body);
        if let Some(id) = json_string(&text, "messageId") {
            let possible_duplicate = text.contains("\"possibleDuplicate\":true");
            state
                .accepted
                .lock()
                .unwrap()
                .entry(id)
                .or_default()
                .push(Seen { possible_duplicate });
            200
        } else {
            400
        }
    } else {
        500
    };
    let mut response = Response::new(Full::new(Bytes::from_static(b"ok")));
    *response.status_mut() = hyper::StatusCode::from_u16(status).unwrap();
    Ok(response)
}

/// The first `"key":"value"` string value in `text` (no escapes in test ids).
fn json_string(text: &str, key: &str) -> Option<String> {
    let needle = format!("\"{key}\":\"");
    let at = text.find(&needle)? + needle.len();
    let end = text[at..].find('"')?;
    Some(text[at..at + end].to_owned())
}
