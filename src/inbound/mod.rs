//! The receiving MSH: `POST /as4`.
//!
//! The request body streams from the connection into a blocking worker ([`intake`] splits it,
//! [`process`] parses, matches the P-Mode, decrypts, verifies, decompresses and stores the
//! payload blobs and builds the signed receipt); the message record is then committed in one
//! transaction and only after that the receipt is returned. Every failure becomes a signed
//! ebMS error or a SOAP fault in one place, [`respond`].

pub mod intake;
pub mod process;
pub mod respond;

use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::post;
use futures_util::StreamExt;
use http_body_util::BodyExt;
use tokio::sync::mpsc;

use crate::gateway::Shared;
use crate::queue::QueueBackend;
use crate::server::Peer;
use crate::store::InsertOutcome;
use as4gate_ebms::error::{EbmsError, ErrorCode};
use intake::Intake;
use process::{Arrival, Processed, Rejected};

/// How many body chunks may wait between the connection and the worker.
const BODY_CHANNEL_CHUNKS: usize = 16;

/// Bodies that declare at most this length are read whole before processing.
const IN_MEMORY_BODY_BYTES: u64 = 256 * 1024;

/// Bodies up to this length are processed on the runtime's own thread ([`receive_body`]).
const ON_RUNTIME_BODY_BYTES: u64 = 64 * 1024;

/// Ends the intake and runs the checks (blocking).
fn run_pipeline(shared: &Shared, intake: Intake, arrival: &Arrival) -> Result<Processed, Rejected> {
    let received = intake.finish().map_err(Rejected::unparsed)?;
    process::process(shared, received, arrival, time::OffsetDateTime::now_utc())
}

/// The AS4 router: `POST /as4`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/as4", post(receive))
        .with_state(shared)
}

async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let peer = request.extensions().get::<Peer>().cloned();
    let content_type = request
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let declared_length = request
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let body = request.into_body();
    let arrival = Arrival::Pushed(peer);
    let outcome = receive_body(&shared, &content_type, declared_length, body, arrival).await;
    match outcome {
        Ok(Processed::Message(accepted)) => match commit(&shared, *accepted).await {
            Ok(receipt) => respond::receipt(receipt),
            Err(rejected) => respond::rejection(&shared, rejected).await,
        },
        Ok(Processed::Signal(envelope)) => crate::outbound::pull::answer(&shared, envelope).await,
        Err(rejected) => respond::rejection(&shared, rejected).await,
    }
}

/// Runs the pipeline over a message body on a blocking worker, under the configured limits:
/// a request pushed to `/as4`, or the answer to our PullRequest.
///
/// A body that declares a small length is read whole first and processed in one blocking
/// call (fewer thread hand-offs per message); anything else streams into the worker chunk by
/// chunk, so memory does not grow with the body. A body of at most [`ON_RUNTIME_BODY_BYTES`]
/// (and below the spool threshold, so it never touches the spool) is processed right on the
/// runtime's thread: its work is a fraction of a millisecond, less than the hand-off to a
/// blocking thread and back costs. Should one of its payloads inflate past the inline
/// threshold, the blob file is written through `block_in_place` ([`PayloadWriter`]).
///
/// [`PayloadWriter`]: crate::store::PayloadWriter
pub async fn receive_body<B>(
    shared: &Arc<Shared>,
    content_type: &str,
    declared_length: Option<u64>,
    body: B,
    arrival: Arrival,
) -> Result<Processed, Rejected>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Send + Unpin,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + std::fmt::Display,
{
    let gateway = &shared.gateway;
    let intake = Intake::new(
        content_type,
        &gateway.limits,
        &shared.spool_dir,
        gateway.config.limits.spool_threshold_bytes,
    )
    .map_err(Rejected::unparsed)?;
    let max_body = gateway.config.limits.max_body_bytes;
    let too_large = || {
        Rejected::unparsed(EbmsError::new(
            ErrorCode::Other,
            format!("request body larger than limits.max_body_bytes ({max_body} bytes)"),
        ))
    };
    let worker_shared = shared.clone();
    let accepted = match declared_length {
        Some(length) if length > max_body => return Err(too_large()),
        Some(length) if length <= IN_MEMORY_BODY_BYTES => {
            let bytes = http_body_util::Limited::new(body, length as usize)
                .collect()
                .await
                .map_err(|e| {
                    Rejected::unparsed(EbmsError::new(
                        ErrorCode::Other,
                        format!("request body could not be read: {e}"),
                    ))
                })?
                .to_bytes();
            let work = move || {
                let mut intake = intake;
                intake.push(&bytes).map_err(Rejected::unparsed)?;
                run_pipeline(&worker_shared, intake, &arrival)
            };
            let spool_threshold = gateway.config.limits.spool_threshold_bytes as u64;
            if length <= ON_RUNTIME_BODY_BYTES.min(spool_threshold) {
                Ok(work())
            } else {
                tokio::task::spawn_blocking(work).await
            }
        }
        _ => {
            let (tx, mut rx) = mpsc::channel::<bytes::Bytes>(BODY_CHANNEL_CHUNKS);
            let worker = tokio::task::spawn_blocking(move || {
                let mut intake = intake;
                while let Some(chunk) = rx.blocking_recv() {
                    intake.push(&chunk).map_err(Rejected::unparsed)?;
                }
                run_pipeline(&worker_shared, intake, &arrival)
            });
            let mut stream = body.into_data_stream();
            let mut total: u64 = 0;
            let mut read_error = None;
            while let Some(chunk) = stream.next().await {
                match chunk {
                    Ok(chunk) => {
                        total += chunk.len() as u64;
                        if total > max_body {
                            read_error = Some(too_large());
                            break;
                        }
                        if tx.send(chunk).await.is_err() {
                            // The worker stopped early (it refused the message); its verdict
                            // follows.
                            break;
                        }
                    }
                    Err(e) => {
                        read_error = Some(Rejected::unparsed(EbmsError::new(
                            ErrorCode::Other,
                            format!("request body could not be read: {e}"),
                        )));
                        break;
                    }
                }
            }
            drop(tx);
            if let Some(rejected) = read_error {
                worker.abort();
                return Err(rejected);
            }
            worker.await
        }
    };
    match accepted {
        Ok(result) => result,
        Err(e) => Err(Rejected::internal(
            None,
            anyhow::anyhow!("worker failed: {e}"),
        )),
    }
}

/// Routes and stores an accepted message (group commit); returns the receipt to answer with,
/// the original one for a duplicate.
pub async fn commit(shared: &Shared, accepted: process::Accepted) -> Result<Vec<u8>, Rejected> {
    let record = accepted.record;
    let message_id = record.message_id.clone();
    let receipt = record.receipt.clone();
    let (pmode, from, payloads, test) = (
        record.pmode_id.clone(),
        record.from_party.clone(),
        record.payloads.len(),
        record.is_test,
    );
    let routes = shared
        .gateway
        .router
        .route(&record, time::OffsetDateTime::now_utc());
    let routed = routes.len();
    match shared.store.insert_inbound(record, routes).await {
        Ok(InsertOutcome::Inserted) => {
            if routed > 0 {
                shared.queue.wake();
            }
            tracing::info!(
                message_id,
                pmode,
                from,
                payloads,
                test,
                routed,
                "message received and receipted"
            );
            Ok(receipt)
        }
        Ok(InsertOutcome::Duplicate { receipt }) => {
            tracing::info!(
                message_id,
                "duplicate message: original receipt re-sent, not stored again"
            );
            Ok(receipt)
        }
        Err(e) => Err(Rejected::internal(Some(message_id), e.into())),
    }
}
