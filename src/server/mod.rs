//! HTTP and HTTPS listeners.
//!
//! Both run our own accept loop so that every request carries who sent it: the remote address
//! and, over TLS, the client certificate chain the handshake verified ([`Peer`] in the request
//! extensions). Connections are served with hyper (HTTP/1.1 and HTTP/2) by the axum router.
//! A refused TLS handshake ends in a lingering close ([`linger`]), so the client reads the
//! alert that says why.

pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

/// Who is on the other end of a request.
#[derive(Debug, Clone)]
pub struct Peer {
    /// Remote socket address.
    pub address: SocketAddr,
    /// DER client certificate chain verified during the TLS handshake (leaf first); empty over
    /// plain HTTP or when the client sent none.
    pub certificates: Vec<Vec<u8>>,
}

/// Serves `router` on `listener`, with TLS when `tls` is given, until the task is dropped.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    router: Router,
) -> std::io::Result<()> {
    let acceptor = tls.map(TlsAcceptor::from);
    loop {
        let (stream, address) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // Running out of file descriptors must not end the listener.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            match acceptor {
                None => {
                    let peer = Peer {
                        address,
                        certificates: Vec::new(),
                    };
                    serve_connection(TokioIo::new(stream), peer, router).await;
                }
                Some(acceptor) => match acceptor.accept(stream).into_fallible().await {
                    Ok(tls_stream) => {
                        let certificates = tls_stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .map(|c| c.iter().map(|c| c.to_vec()).collect())
                            .unwrap_or_default();
                        let peer = Peer {
                            address,
                            certificates,
                        };
                        serve_connection(TokioIo::new(tls_stream), peer, router).await;
                    }
                    Err((e, stream)) => {
                        tracing::info!(%address, error = %e, "TLS handshake refused");
                        linger(stream).await;
                    }
                },
            }
        });
    }
}

/// How long, at most, a connection whose handshake was refused is read before it is closed.
const LINGER: Duration = Duration::from_secs(2);

/// How many bytes, at most, such a connection is read.
const LINGER_BYTES: usize = 256 * 1024;

/// Closes a connection whose TLS handshake was refused, after its alert was sent. Under TLS
/// 1.3 a server checks the client certificate after the client finished its side, so the
/// client's first request is usually on its way already; closing with that data unread makes
/// the kernel answer with a reset, which can discard the alert before the client reads it
/// (the client then sees only "connection reset"). So the write side is shut down and what
/// the client still sends is read and dropped, bounded in time and bytes.
async fn linger(mut stream: TcpStream) {
    let _ = stream.shutdown().await;
    let mut buffer = [0u8; 4096];
    let mut left = LINGER_BYTES;
    let _ = tokio::time::timeout(LINGER, async {
        while left > 0 {
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n),
            }
        }
    })
    .await;
}

async fn serve_connection<I>(io: TokioIo<I>, peer: Peer, router: Router)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let address = peer.address;
    let service =
        hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(peer.clone());
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
    if let Err(e) = auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await
    {
        tracing::debug!(%address, error = %e, "connection ended with an error");
    }
}
