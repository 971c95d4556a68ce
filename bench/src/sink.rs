//! The back-end sink of end-to-end runs: an HTTP/1.1 server on 127.0.0.1 that plays the REST
//! back-end the spawned gateway pushes to. It reads each request whole, takes the MessageId
//! from the JSON `metadata` part (`"messageId":"…"`, the first part of the REST binding's
//! `multipart/form-data` body), checks it against the `X-AS4Gate-Message-Id` header and
//! answers 200 with an empty body.
//!
//! It knows every MessageId of the run (warm-up and timed) and counts, per id, the first
//! delivery (distinct) and any further one (a repeat). Ids it does not know and requests
//! without a readable id are counted too; any of them, a repeat or a timed id never delivered
//! fails the run. The instant the last timed id is first seen is the end of the end-to-end
//! window.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Largest request body the sink reads (far above any benchmark message; bigger ones are
/// refused with 413 and then show up as missing deliveries).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;
/// What precedes the MessageId in the metadata JSON (serde_json writes no spaces).
const MESSAGE_ID_KEY: &[u8] = b"\"messageId\":\"";
/// The delivery header carrying the MessageId.
const MESSAGE_ID_HEADER: &str = "x-as4gate-message-id";
/// How many odd requests (unknown id, no id) are printed; the rest are only counted.
const SHOWN_ODDITIES: usize = 3;

/// What the sink has seen so far.
#[derive(Debug, Clone)]
pub struct Progress {
    /// Per message index: whether it was delivered at least once.
    seen: Vec<bool>,
    /// Messages `0..warmup` are warm-up, the rest timed.
    warmup: usize,
    /// Distinct warm-up messages delivered.
    pub warmup_seen: usize,
    /// Distinct timed messages delivered.
    pub timed_seen: usize,
    /// Deliveries of a message already delivered.
    pub repeats: usize,
    /// Deliveries of a MessageId that is not one of the run's.
    pub unknown: usize,
    /// Requests without a readable MessageId, or whose header and body disagree.
    pub malformed: usize,
    /// When the last timed message was first delivered (once all were).
    pub timed_completed_at: Option<Instant>,
}

impl Progress {
    /// How many timed messages there are.
    pub fn timed_total(&self) -> usize {
        self.seen.len() - self.warmup
    }

    /// Records one delivery of the message with index `index`.
    fn record(&mut self, index: usize, at: Instant) {
        if std::mem::replace(&mut self.seen[index], true) {
            self.repeats += 1;
        } else if index < self.warmup {
            self.warmup_seen += 1;
        } else {
            self.timed_seen += 1;
            if self.timed_seen == self.timed_total() {
                self.timed_completed_at = Some(at);
            }
        }
    }
}

/// The running sink.
pub struct Sink {
    address: std::net::SocketAddr,
    progress: watch::Receiver<Progress>,
    server: JoinHandle<()>,
}

struct Shared {
    index: HashMap<String, usize>,
    progress: watch::Sender<Progress>,
}

impl Sink {
    /// Serves on `listener` (already bound, so the gateway's configuration can name it before
    /// the runtime runs). `message_ids` are all ids of the run in order; the first `warmup`
    /// are the warm-up messages. Must be called inside a tokio runtime.
    pub fn start(
        listener: std::net::TcpListener,
        message_ids: Vec<String>,
        warmup: usize,
    ) -> anyhow::Result<Sink> {
        anyhow::ensure!(warmup <= message_ids.len(), "more warm-up than messages");
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let listener = tokio::net::TcpListener::from_std(listener)?;
        let progress = Progress {
            seen: vec![false; message_ids.len()],
            warmup,
            warmup_seen: 0,
            timed_seen: 0,
            repeats: 0,
            unknown: 0,
            malformed: 0,
            timed_completed_at: None,
        };
        let (sender, receiver) = watch::channel(progress);
        let index = message_ids
            .into_iter()
            .enumerate()
            .map(|(i, id)| (id, i))
            .collect();
        let shared = Arc::new(Shared {
            index,
            progress: sender,
        });
        let server = tokio::spawn(accept_loop(listener, shared));
        Ok(Sink {
            address,
            progress: receiver,
            server,
        })
    }

    /// The URL the gateway's `[[backend]]` posts to.
    pub fn url(&self) -> String {
        format!("http://{}/deliver", self.address)
    }

    /// A snapshot of the counts.
    pub fn progress(&self) -> Progress {
        self.progress.borrow().clone()
    }

    /// Waits until every warm-up message was delivered, at most `limit`.
    pub async fn wait_warmup(&self, limit: Duration) -> Progress {
        self.wait(limit, |p| p.warmup_seen == p.warmup).await
    }

    /// Waits until every timed message was delivered, at most `limit`.
    pub async fn wait_timed(&self, limit: Duration) -> Progress {
        self.wait(limit, |p| p.timed_completed_at.is_some()).await
    }

    async fn wait(&self, limit: Duration, done: impl FnMut(&Progress) -> bool) -> Progress {
        let mut progress = self.progress.clone();
        // The sender lives as long as the server task, which only ends when aborted, so a
        // closed channel cannot happen here; a timeout just returns what was seen.
        let _ = tokio::time::timeout(limit, progress.wait_for(done)).await;
        self.progress()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn accept_loop(listener: tokio::net::TcpListener, shared: Arc<Shared>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: keep serving what can be served.
                eprintln!("as4load: sink accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| answer(shared.clone(), request));
            // A connection error (the gateway gave up on a slow exchange) shows up as a
            // missing or repeated delivery; nothing to do here.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn answer(
    shared: Arc<Shared>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let header = request
        .headers()
        .get(MESSAGE_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = match Limited::new(request.into_body(), MAX_BODY_BYTES)
        .collect()
        .await
    {
        Ok(collected) => collected.to_bytes(),
        Err(_) => return Ok(status(StatusCode::PAYLOAD_TOO_LARGE)),
    };
    let received = Instant::now();
    let id = metadata_message_id(&body);
    let verdict = match (&id, &header) {
        (Some(id), Some(header)) if id != header => Err("header and metadata disagree"),
        (Some(id), _) => shared.index.get(id).copied().ok_or("unknown MessageId"),
        (None, _) => Err("no messageId in the metadata part"),
    };
    match verdict {
        Ok(index) => {
            shared.progress.send_modify(|p| p.record(index, received));
            Ok(status(StatusCode::OK))
        }
        Err(problem) => {
            let mut shown = 0;
            shared.progress.send_modify(|p| {
                if problem == "unknown MessageId" {
                    p.unknown += 1;
                } else {
                    p.malformed += 1;
                }
                shown = p.unknown + p.malformed;
            });
            if shown <= SHOWN_ODDITIES {
                eprintln!("as4load: sink: {problem} (body id {id:?}, header {header:?})");
            }
            // A real back-end would accept an unknown id; only a malformed request is refused.
            Ok(status(if problem == "unknown MessageId" {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            }))
        }
    }
}

fn status(code: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = code;
    response
}

/// The MessageId of the first `"messageId":"…"` in `body` (the metadata part comes first).
/// MessageIds of this benchmark contain no characters JSON escapes, so an escape means the
/// id is not one of ours and is returned as written.
fn metadata_message_id(body: &[u8]) -> Option<String> {
    let start = body
        .windows(MESSAGE_ID_KEY.len())
        .position(|w| w == MESSAGE_ID_KEY)?
        + MESSAGE_ID_KEY.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    String::from_utf8(body[start..start + len].to_vec()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_id_comes_from_the_metadata_part() {
        let body = b"--b\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\
            Content-Type: application/json\r\n\r\n{\"messageId\":\"m-1@blue\",\"delivery\":{}}\r\n\
            --b\r\nContent-Disposition: form-data; name=\"payload\"\r\n\r\n\"messageId\":\"x\"\r\n--b--";
        assert_eq!(metadata_message_id(body).as_deref(), Some("m-1@blue"));
        assert_eq!(metadata_message_id(b"{\"messageId\":\"unterminated"), None);
        assert_eq!(metadata_message_id(b"no metadata"), None);
    }

    #[test]
    fn progress_counts_distinct_repeats_and_completion() {
        let mut p = Progress {
            seen: vec![false; 4],
            warmup: 1,
            warmup_seen: 0,
            timed_seen: 0,
            repeats: 0,
            unknown: 0,
            malformed: 0,
            timed_completed_at: None,
        };
        let now = Instant::now();
        p.record(0, now);
        p.record(1, now);
        p.record(1, now);
        p.record(2, now);
        assert_eq!((p.warmup_seen, p.timed_seen, p.repeats), (1, 2, 1));
        assert!(p.timed_completed_at.is_none());
        p.record(3, now);
        assert_eq!(p.timed_completed_at, Some(now));
        assert_eq!(p.timed_total(), 3);
    }

    #[tokio::test]
    async fn sink_answers_and_counts_over_http() {
        use http_body_util::Full;
        use hyper_util::client::legacy::Client;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sink = Sink::start(listener, vec!["w@b".into(), "t@b".into()], 1).unwrap();
        let client: Client<_, Full<Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build_http();
        for (id, header) in [
            ("w@b", "w@b"),
            ("t@b", "t@b"),
            ("t@b", "t@b"),
            ("z@b", "z@b"),
        ] {
            let body = format!("{{\"messageId\":\"{id}\"}}");
            let request = Request::post(sink.url())
                .header(MESSAGE_ID_HEADER, header)
                .body(Full::new(Bytes::from(body)))
                .unwrap();
            let response = client.request(request).await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
        }
        let mismatch = Request::post(sink.url())
            .header(MESSAGE_ID_HEADER, "other@b")
            .body(Full::new(Bytes::from_static(b"{\"messageId\":\"t@b\"}")))
            .unwrap();
        let response = client.request(mismatch).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        let p = sink.wait_timed(Duration::from_secs(5)).await;
        assert_eq!((p.warmup_seen, p.timed_seen), (1, 1));
        assert_eq!((p.repeats, p.unknown, p.malformed), (1, 1, 1));
        assert!(p.timed_completed_at.is_some());
    }
}
