//! One HTTP exchange with a back-end or a partner gateway: take an idle connection from the
//! pool or open one (TCP, then TLS for `https`), POST a streamed body, read the answer up to
//! [`MAX_ANSWER_BYTES`] (or hand it to the caller as it streams, for a message pulled from a
//! partner: [`HttpSender::post_bytes_streaming`]), and keep the connection for the next
//! exchange when it can carry one.
//!
//! A per-sender [`tokio::sync::Semaphore`] bounds how many exchanges run at once, and the
//! `timeout` covers the whole exchange, taking or opening the connection and reading the
//! answer included (waiting for a permit is not counted); a timeout drops the connection. TLS
//! is rustls with aws-lc-rs, TLS 1.2 and 1.3 only, ALPN `http/1.1`, server certificates
//! checked against the configured CA file, with an optional client certificate for mutual TLS.
//! A handshake the server refuses is [`ExchangeError::Tls`], also when the refusal only arrives
//! with the first answer (under TLS 1.3 a server checks the client certificate after the client
//! has finished its side).
//!
//! # Connection pool
//!
//! Each [`HttpSender`] keeps HTTP/1.1 connections open between exchanges (keep-alive; no
//! `Connection: close` is sent). The pool holds idle connections only, under these rules:
//!
//! - A connection goes back into the pool only after an exchange that ended cleanly: the
//!   answer was read to its end (not cut off at [`MAX_ANSWER_BYTES`], not left unread by the
//!   caller of [`HttpSender::post_bytes_streaming`]), came as HTTP/1.1 without
//!   `Connection: close`, and the connection is not closed. An error, a timeout or a
//!   truncated answer drops the connection, which closes it.
//! - A connection taken out belongs to that one exchange until it is put back or dropped; two
//!   exchanges never share one.
//! - At most `concurrency` connections are idle; when the pool is full the oldest is closed.
//! - A connection idle for [`IDLE_TIMEOUT`] is closed and never used again. A background task
//!   (one per sender, running only while the pool is not empty) closes it even when no
//!   further exchange comes.
//! - Right before use, the newest idle connection is taken; it must not be closed and must be
//!   ready for a request within [`READY_WAIT`], or it is dropped and the next one (or a new
//!   connection) is tried.
//!
//! The server may still close an idle connection just as a request goes out on it. When hyper
//! hands the request back unwritten, it is sent on the next connection. Once it may have been
//! written, the failure is reported as [`ExchangeError::Http`] and the caller's retry schedule
//! decides: the body is streamed only once (it may be partly consumed), and the server may
//! already have acted on the request. The short idle timeout and the check right before use
//! keep that window small.

use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::client::conn::http1::SendRequest;
use hyper::header::{
    CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, HeaderName, TE, TRANSFER_ENCODING,
    UPGRADE, USER_AGENT,
};
use hyper::{Uri, Version};
use hyper_util::rt::TokioIo;
use rustls::RootCertStore;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsConnector;

use super::ConnectorError;
use super::config::BackendConfig;
use super::multipart::{CorruptBlob, Multipart};
use super::retry::{Answer, ExchangeError, MAX_ANSWER_BYTES};
use crate::pem;

/// A request body and its length.
type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::io::Error>;

/// The `User-Agent` sent to back-ends.
const USER_AGENT_VALUE: &str = concat!("as4gate/", env!("CARGO_PKG_VERSION"));

/// How long a connection may stay idle in the pool before it is closed. Servers close idle
/// connections after their keep-alive timeout (5 s for many, 60 s or more for others); closing
/// ours well before that means we seldom pick a connection the server is closing just then.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an idle connection may take to accept the next request before it is dropped. A
/// live idle connection is ready as soon as its driver task has run once; one that is not is
/// still busy with an earlier exchange and not worth waiting for.
pub const READY_WAIT: Duration = Duration::from_millis(100);

/// Request headers that belong to the connection and are never taken from the caller.
const HOP_BY_HOP: [HeaderName; 5] = [
    CONNECTION,
    HeaderName::from_static("keep-alive"),
    TE,
    TRANSFER_ENCODING,
    UPGRADE,
];

/// Where and how to reach one back-end or partner, with the idle connections to it.
pub struct HttpSender {
    uri: Uri,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    permits: Arc<Semaphore>,
    pool: Arc<Pool>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("available_permits", &self.permits.available_permits())
            .field("idle_connections", &self.pool.lock().idle.len())
            .finish()
    }
}

impl HttpSender {
    /// Checks the configuration and loads the TLS material.
    pub fn new(config: &BackendConfig) -> Result<HttpSender, ConnectorError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(ConnectorError::Config(problems));
        }
        let uri: Uri = config
            .url
            .parse()
            .map_err(|e| ConnectorError::Config(vec![format!("url: {e}")]))?;
        let https = uri.scheme_str() == Some("https");
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_matches(['[', ']'])
            .to_owned();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let tls = match (&config.tls, https) {
            (Some(tls), true) => {
                let connector = TlsConnector::from(client_config(tls)?);
                let name = ServerName::try_from(host.clone())
                    .map_err(|e| ConnectorError::Config(vec![format!("url host: {e}")]))?;
                Some((connector, name))
            }
            _ => None,
        };
        Ok(HttpSender {
            uri,
            host,
            port,
            tls,
            timeout: config.timeout,
            permits: Arc::new(Semaphore::new(config.concurrency)),
            pool: Arc::new(Pool::new(config.concurrency)),
        })
    }

    /// POSTs `body` with `content_type` and the extra request `headers` (the delivery
    /// headers); waits for a concurrency permit first, then bounds the exchange by the
    /// timeout. `headers` cannot replace the ones set here (`Host`, `Content-Type`,
    /// `Content-Length`, `User-Agent`) nor set the connection's own (`Connection`,
    /// `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`).
    pub async fn post(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: Multipart,
    ) -> Result<Answer, ExchangeError> {
        self.send(content_type, headers, body.finish(), collect)
            .await
    }

    /// POSTs `body` as it is (an AS4 message) with `content_type` and `headers`, under the
    /// same concurrency limit and timeout as [`HttpSender::post`].
    pub async fn post_bytes(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, ExchangeError> {
        self.send(content_type, headers, full(body), collect).await
    }

    /// Like [`HttpSender::post_bytes`], but the answer is handed to `read` as it streams
    /// instead of being collected up to [`MAX_ANSWER_BYTES`]: for an answer that may be a
    /// large message. The timeout covers `read`; the connection is kept only when `read`
    /// consumed the body to its end.
    pub async fn post_bytes_streaming<T>(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: Bytes,
        read: impl AsyncFnOnce(StreamedAnswer<'_>) -> T,
    ) -> Result<T, ExchangeError> {
        self.send(content_type, headers, full(body), async |answer| {
            Ok(read(answer).await)
        })
        .await
    }

    async fn send<T>(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: (u64, Body),
        read: impl AsyncFnOnce(StreamedAnswer<'_>) -> Result<T, ExchangeError>,
    ) -> Result<T, ExchangeError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ExchangeError::Request("the connector is shut down".to_owned()))?;
        let exchange = self.exchange(content_type, headers, body, read);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    async fn exchange<T>(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: (u64, Body),
        read: impl AsyncFnOnce(StreamedAnswer<'_>) -> Result<T, ExchangeError>,
    ) -> Result<T, ExchangeError> {
        let mut request = self.request(content_type, headers, body)?;
        loop {
            let (mut connection, reused) = match self.pool.take() {
                Some(idle) => (idle, true),
                None => (self.connect().await?, false),
            };
            if reused {
                let ready = tokio::time::timeout(READY_WAIT, connection.sender.ready()).await;
                if !matches!(ready, Ok(Ok(()))) {
                    continue;
                }
            }
            match connection.sender.try_send_request(request).await {
                Ok(response) => return self.answer(connection, response, read).await,
                Err(mut failed) => match failed.take_message() {
                    // Never written: the idle connection was closed before it could be used.
                    Some(unsent) if reused => {
                        tracing::debug!(uri = %self.uri, "idle connection closed; using another");
                        request = unsent;
                    }
                    _ => {
                        if reused {
                            tracing::debug!(
                                uri = %self.uri,
                                "request failed on a reused connection; not resent"
                            );
                        }
                        return Err(exchange_failure(failed.into_error()));
                    }
                },
            }
        }
    }

    /// The request, with our headers first and the caller's after them.
    fn request(
        &self,
        content_type: String,
        headers: HeaderMap,
        (length, body): (u64, Body),
    ) -> Result<hyper::Request<Body>, ExchangeError> {
        let path = self
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let authority = self
            .uri
            .authority()
            .map_or(self.host.clone(), |a| a.to_string());
        let mut request = hyper::Request::post(path)
            .header(HOST, authority)
            .header(CONTENT_TYPE, content_type)
            .header(CONTENT_LENGTH, length)
            .header(USER_AGENT, USER_AGENT_VALUE)
            .body(body)
            .map_err(|e| ExchangeError::Request(e.to_string()))?;
        let extra: Vec<_> = headers
            .iter()
            .filter(|(name, _)| {
                !request.headers().contains_key(*name) && !HOP_BY_HOP.contains(name)
            })
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        request.headers_mut().extend(extra);
        Ok(request)
    }

    /// Opens a new connection: TCP, TLS for `https`, then the HTTP/1.1 handshake.
    async fn connect(&self) -> Result<Connection, ExchangeError> {
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(ExchangeError::Connect)?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some((connector, name)) => {
                let stream = connector
                    .connect(name.clone(), tcp)
                    .await
                    .map_err(ExchangeError::Tls)?;
                Connection::handshake(TokioIo::new(stream)).await
            }
            None => Connection::handshake(TokioIo::new(tcp)).await,
        }
    }

    /// Hands the answer to `read`, then puts the connection back when it can carry another
    /// request.
    async fn answer<T>(
        &self,
        connection: Connection,
        response: hyper::Response<Incoming>,
        read: impl AsyncFnOnce(StreamedAnswer<'_>) -> Result<T, ExchangeError>,
    ) -> Result<T, ExchangeError> {
        let (head, mut incoming) = response.into_parts();
        let keep_alive = head.version == Version::HTTP_11
            && !head
                .headers
                .get_all(CONNECTION)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|token| token.trim().eq_ignore_ascii_case("close"));
        let header = |name| {
            head.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let mut ended = false;
        let result = read(StreamedAnswer {
            status: head.status.as_u16(),
            content_type: header(CONTENT_TYPE),
            content_length: header(CONTENT_LENGTH).and_then(|v| v.parse().ok()),
            body: AnswerBody {
                incoming: &mut incoming,
                ended: &mut ended,
            },
        })
        .await;
        if keep_alive && ended && !connection.sender.is_closed() {
            self.pool.put(connection);
        }
        result
    }
}

/// An answer whose body is read as it arrives.
#[derive(Debug)]
pub struct StreamedAnswer<'a> {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, when present and readable.
    pub content_type: Option<String>,
    /// The `Content-Length` header, when present and valid.
    pub content_length: Option<u64>,
    /// The body.
    pub body: AnswerBody<'a>,
}

/// The body of a [`StreamedAnswer`]; it notes whether it was read to its end (only then can
/// the connection carry another exchange).
#[derive(Debug)]
pub struct AnswerBody<'a> {
    incoming: &'a mut Incoming,
    ended: &'a mut bool,
}

impl hyper::body::Body for AnswerBody<'_> {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut *this.incoming).poll_frame(cx);
        if matches!(polled, Poll::Ready(None)) {
            *this.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.incoming.size_hint()
    }
}

/// `bytes` as a request body with its length.
fn full(bytes: Bytes) -> (u64, Body) {
    let length = bytes.len() as u64;
    let body = http_body_util::Full::new(bytes)
        .map_err(|never| match never {})
        .boxed_unsync();
    (length, body)
}

/// Reads an answer up to [`MAX_ANSWER_BYTES`]; a longer one is cut off there.
async fn collect(answer: StreamedAnswer<'_>) -> Result<Answer, ExchangeError> {
    let StreamedAnswer {
        status,
        content_type,
        mut body,
        ..
    } = answer;
    let mut collected = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(exchange_failure)?;
        if let Ok(data) = frame.into_data() {
            let room = MAX_ANSWER_BYTES - collected.len();
            if data.len() > room {
                collected.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            collected.extend_from_slice(&data);
        }
    }
    Ok(Answer {
        status,
        content_type,
        body: Bytes::from(collected),
        truncated,
    })
}

/// One HTTP/1.1 connection: the handle requests go through and the task that drives it.
/// Dropping it stops the task, which closes the connection.
struct Connection {
    sender: SendRequest<Body>,
    _driver: AbortOnDrop,
}

impl Connection {
    async fn handshake<S>(io: TokioIo<S>) -> Result<Connection, ExchangeError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(exchange_failure)?;
        let driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        Ok(Connection {
            sender,
            _driver: driver,
        })
    }

    /// Whether the connection can still be used after being idle since `since`.
    fn usable(&self, since: Instant, now: Instant) -> bool {
        now.saturating_duration_since(since) < IDLE_TIMEOUT && !self.sender.is_closed()
    }
}

/// The idle connections of one sender (the rules are in the module docs).
struct Pool {
    /// Most idle connections kept: the sender's concurrency.
    capacity: usize,
    state: Mutex<PoolState>,
}

struct PoolState {
    /// Idle connections with the moment each became idle, oldest first.
    idle: Vec<(Connection, Instant)>,
    /// Whether the task closing expired connections is running.
    reaper: bool,
}

impl Pool {
    fn new(capacity: usize) -> Pool {
        Pool {
            capacity,
            state: Mutex::new(PoolState {
                idle: Vec::new(),
                reaper: false,
            }),
        }
    }

    /// The state; a panic elsewhere while it was held leaves it consistent (every change is
    /// one `Vec` operation), so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, PoolState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The most recently used connection that is still usable; expired or closed ones met on
    /// the way are closed.
    fn take(&self) -> Option<Connection> {
        let now = Instant::now();
        let mut state = self.lock();
        while let Some((connection, since)) = state.idle.pop() {
            if connection.usable(since, now) {
                return Some(connection);
            }
        }
        None
    }

    /// Keeps `connection` as idle, closing the oldest when the pool is full, and makes sure
    /// the reaper runs.
    fn put(self: &Arc<Self>, connection: Connection) {
        let mut state = self.lock();
        if state.idle.len() >= self.capacity {
            state.idle.remove(0);
        }
        state.idle.push((connection, Instant::now()));
        if !state.reaper {
            state.reaper = true;
            tokio::spawn(reap(Arc::downgrade(self)));
        }
    }

    /// Closes the expired and closed connections; returns when the oldest remaining one
    /// expires, or `None` (and the reaper stops) when none is left.
    fn prune(&self) -> Option<Instant> {
        let now = Instant::now();
        let mut state = self.lock();
        state
            .idle
            .retain(|(connection, since)| connection.usable(*since, now));
        match state.idle.first() {
            Some((_, since)) => Some(*since + IDLE_TIMEOUT),
            None => {
                state.reaper = false;
                None
            }
        }
    }
}

/// Closes idle connections as they expire, until the pool is empty or the sender is gone.
async fn reap(pool: Weak<Pool>) {
    loop {
        let Some(due) = pool.upgrade().and_then(|pool| pool.prune()) else {
            return;
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(due)).await;
    }
}

/// A failed exchange: a corrupt blob detected while streaming is a payload problem, a TLS
/// alert (a handshake the server refused late, see the module docs) a TLS failure, anything
/// else an HTTP failure.
fn exchange_failure(error: hyper::Error) -> ExchangeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        let io = e.downcast_ref::<std::io::Error>();
        let inner = io.and_then(|io| io.get_ref());
        let corrupt = e
            .downcast_ref::<CorruptBlob>()
            .or_else(|| inner.and_then(|inner| inner.downcast_ref::<CorruptBlob>()));
        if let Some(corrupt) = corrupt {
            return ExchangeError::Payload {
                content_id: corrupt.content_id.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, corrupt.to_string()),
            };
        }
        let tls = e
            .downcast_ref::<rustls::Error>()
            .or_else(|| inner.and_then(|inner| inner.downcast_ref::<rustls::Error>()));
        if let Some(tls) = tls {
            let kind = io.map_or(std::io::ErrorKind::InvalidData, std::io::Error::kind);
            return ExchangeError::Tls(std::io::Error::new(kind, tls.clone()));
        }
        source = e.source();
    }
    ExchangeError::Http(error)
}

/// Stops the connection task when the connection is dropped (exchange failed or abandoned,
/// connection expired or not reusable).
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn client_config(
    tls: &super::config::BackendTls,
) -> Result<Arc<rustls::ClientConfig>, ConnectorError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = RootCertStore::empty();
    for ca in pem::certificates(&tls.ca)? {
        roots.add(CertificateDer::from(ca))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_root_certificates(roots);
    let mut config = match (&tls.certificate, &tls.key) {
        (Some(certificate), Some(key)) => {
            let chain = pem::certificates(certificate)?
                .into_iter()
                .map(CertificateDer::from)
                .collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pem::pkcs8_key(key)?));
            builder.with_client_auth_cert(chain, key)?
        }
        _ => builder.with_no_client_auth(),
    };
    // We speak HTTP/1.1 only; saying so keeps a server that also offers h2 from picking it.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
