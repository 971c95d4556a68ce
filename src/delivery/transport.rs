//! One HTTP exchange with a back-end: connect (TCP, then TLS for `https`), POST a streamed
//! body, read the answer up to [`MAX_ANSWER_BYTES`].
//!
//! Each exchange uses its own HTTP/1.1 connection (`Connection: close`); a per-back-end
//! [`tokio::sync::Semaphore`] bounds how many run at once, and the back-end's `timeout`
//! covers the whole exchange (waiting for a permit is not counted). TLS is rustls with
//! aws-lc-rs, TLS 1.2 and 1.3 only, server certificates checked against the configured CA
//! file, with an optional client certificate for mutual TLS.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::Uri;
use hyper::header::{CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderMap, USER_AGENT};
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

/// Where and how to reach one back-end.
pub struct HttpSender {
    uri: Uri,
    host: String,
    port: u16,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    permits: Arc<Semaphore>,
}

impl std::fmt::Debug for HttpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSender")
            .field("uri", &self.uri)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("available_permits", &self.permits.available_permits())
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
        })
    }

    /// POSTs `body` with `content_type` and the extra request `headers` (the delivery
    /// headers); waits for a concurrency permit first, then bounds the exchange by the
    /// timeout. `headers` cannot replace the ones set here (`Host`, `Content-Type`,
    /// `Content-Length`, `User-Agent`, `Connection`).
    pub async fn post(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: Multipart,
    ) -> Result<Answer, ExchangeError> {
        self.send(content_type, headers, body.finish()).await
    }

    /// POSTs `body` as it is (an AS4 message) with `content_type` and `headers`, under the
    /// same concurrency limit and timeout as [`HttpSender::post`].
    pub async fn post_bytes(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: Bytes,
    ) -> Result<Answer, ExchangeError> {
        let length = body.len() as u64;
        let body = http_body_util::Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync();
        self.send(content_type, headers, (length, body)).await
    }

    async fn send(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: (u64, Body),
    ) -> Result<Answer, ExchangeError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ExchangeError::Request("the connector is shut down".to_owned()))?;
        let exchange = self.exchange(content_type, headers, body);
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(ExchangeError::Timeout(self.timeout)),
        }
    }

    async fn exchange(
        &self,
        content_type: String,
        headers: HeaderMap,
        body: (u64, Body),
    ) -> Result<Answer, ExchangeError> {
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
                self.http1(TokioIo::new(stream), content_type, headers, body)
                    .await
            }
            None => {
                self.http1(TokioIo::new(tcp), content_type, headers, body)
                    .await
            }
        }
    }

    async fn http1<S>(
        &self,
        io: TokioIo<S>,
        content_type: String,
        headers: HeaderMap,
        body: (u64, Body),
    ) -> Result<Answer, ExchangeError>
    where
        S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let (mut sender, connection) = hyper::client::conn::http1::handshake(io)
            .await
            .map_err(ExchangeError::Http)?;
        let _driver = AbortOnDrop(tokio::spawn(async move {
            let _ = connection.await;
        }));
        let (length, body) = body;
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
            .header(CONNECTION, "close")
            .body(body)
            .map_err(|e| ExchangeError::Request(e.to_string()))?;
        let extra: Vec<_> = headers
            .iter()
            .filter(|(name, _)| !request.headers().contains_key(*name))
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect();
        request.headers_mut().extend(extra);
        let response = sender
            .send_request(request)
            .await
            .map_err(request_failure)?;
        let status = response.status().as_u16();
        let content_type = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let mut incoming = response.into_body();
        let mut collected = Vec::new();
        let mut truncated = false;
        while let Some(frame) = incoming.frame().await {
            let frame = frame.map_err(ExchangeError::Http)?;
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
}

/// A failed request: a corrupt blob detected while streaming is a payload problem, anything
/// else an HTTP failure.
fn request_failure(error: hyper::Error) -> ExchangeError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&error);
    while let Some(e) = source {
        let corrupt = e.downcast_ref::<CorruptBlob>().or_else(|| {
            e.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .and_then(|inner| inner.downcast_ref::<CorruptBlob>())
        });
        if let Some(corrupt) = corrupt {
            return ExchangeError::Payload {
                content_id: corrupt.content_id.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, corrupt.to_string()),
            };
        }
        source = e.source();
    }
    ExchangeError::Http(error)
}

/// Stops the connection task when the exchange ends or is abandoned (timeout).
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
    let config = match (&tls.certificate, &tls.key) {
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
    Ok(Arc::new(config))
}
