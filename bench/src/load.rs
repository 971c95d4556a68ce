//! The timed part: C tasks post the pre-built messages over loopback HTTP/1.1 with keep-alive
//! (hyper-util's pooled client), each taking the next message from a shared counter, and
//! record every request's latency (first byte sent to last byte of the answer received) and
//! whether the answer is an HTTP 200 carrying a receipt that refers to the message sent.
//!
//! In end-to-end runs it also watches the sink: the warm-up messages must all be delivered
//! before timing starts; the timed window then runs from the first request sent until the sink
//! has seen every timed MessageId, and the gateway's and the broker's CPU time are read at
//! both ends of that window.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncReadExt;

use crate::messages::Prebuilt;
use crate::sink::Sink;

/// Read size when streaming a body from disk.
const FILE_CHUNK: usize = 256 * 1024;
/// How many failed answers are printed in full (the rest are only counted).
const SHOWN_FAILURES: usize = 3;
/// How much of a failed answer is printed.
const SHOWN_ANSWER_CHARS: usize = 600;
/// How long the broker's CPU time is sampled before timing starts, to show what it uses
/// while the run is not sending (other users of the broker, its own housekeeping).
const BROKER_IDLE_SAMPLE: Duration = Duration::from_secs(2);
/// How long the sink keeps counting after the last delivery, so that a repeat that comes
/// right behind it fails the run too.
const REPEAT_GRACE: Duration = Duration::from_secs(1);

type RequestBody = BoxBody<Bytes, std::io::Error>;
type HttpClient = Client<HttpConnector, RequestBody>;

/// What to post.
pub struct Plan<'a> {
    /// The AS4 endpoint.
    pub url: &'a str,
    /// The messages; the first `warmup` are posted before timing starts.
    pub prebuilt: &'a Prebuilt,
    /// Untimed messages at the start.
    pub warmup: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// The gateway's pid, when its CPU time can be sampled.
    pub gateway_pid: Option<u32>,
    /// End-to-end runs: where the gateway delivers to.
    pub delivery: Option<DeliveryWatch<'a>>,
}

/// What an end-to-end run watches besides the receipts.
pub struct DeliveryWatch<'a> {
    /// The back-end sink the gateway pushes to.
    pub sink: &'a Sink,
    /// The queue kind, for the report.
    pub queue: &'static str,
    /// The RabbitMQ server's pid, when its CPU time is measured.
    pub broker_pid: Option<u32>,
    /// How long to wait for the deliveries after the last receipt (and for the warm-up's).
    pub timeout: Duration,
}

/// What the sink saw in the timed part of an end-to-end run.
#[derive(Debug)]
pub struct DeliveryOutcome {
    /// `embedded` or `rabbitmq`.
    pub queue: &'static str,
    /// Distinct timed messages delivered.
    pub delivered: usize,
    /// Timed messages not delivered within the timeout.
    pub missing: usize,
    /// Deliveries of a message already delivered (warm-up included).
    pub repeats: usize,
    /// Deliveries of ids not sent by this run, and requests without a readable id.
    pub strays: usize,
    /// From the first timed request sent to the last timed message's first delivery (`None`
    /// when some never came).
    pub elapsed: Option<Duration>,
    /// From the last receipt read to the last delivery.
    pub lag: Option<Duration>,
    /// The gateway's CPU time from the first timed request until all were delivered.
    pub gateway_cpu: Option<Duration>,
    /// The broker's CPU time over the same window.
    pub broker_cpu: Option<Duration>,
    /// The broker's CPU use just before timing, in percent of one core.
    pub broker_idle_percent: Option<f64>,
}

/// What the timed part measured.
#[derive(Debug)]
pub struct Outcome {
    /// Messages posted in the timed part.
    pub messages: usize,
    /// Answers that were not an HTTP 200 receipt for the message (or no answer).
    pub failures: usize,
    /// Latency of every timed request (successful or not).
    pub latencies: Vec<Duration>,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// HTTP body bytes posted in the timed part.
    pub bytes_sent: u64,
    /// The gateway's CPU time during the timed part.
    pub gateway_cpu: Option<Duration>,
    /// The generator's own CPU time during the timed part.
    pub generator_cpu: Duration,
    /// End-to-end runs: the deliveries.
    pub delivery: Option<DeliveryOutcome>,
}

/// Posts the plan's messages and measures.
pub async fn run(plan: &Plan<'_>) -> anyhow::Result<Outcome> {
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(plan.concurrency)
        .build_http();
    let client = Arc::new(client);
    if plan.warmup > 0 {
        let (_, failures) = post_range(&client, plan, 0..plan.warmup).await?;
        anyhow::ensure!(
            failures == 0,
            "{failures} warm-up messages were not receipted"
        );
    }
    if let Some(watch) = &plan.delivery {
        let seen = watch.sink.wait_warmup(watch.timeout).await;
        anyhow::ensure!(
            seen.warmup_seen == plan.warmup,
            "only {} of {} warm-up messages were delivered within {:?}",
            seen.warmup_seen,
            plan.warmup,
            watch.timeout
        );
    }
    let broker_pid = plan.delivery.as_ref().and_then(|w| w.broker_pid);
    let broker_idle_percent = match broker_pid {
        Some(pid) => {
            let before = crate::gateway::cpu_time(pid)?;
            tokio::time::sleep(BROKER_IDLE_SAMPLE).await;
            let used = crate::gateway::cpu_time(pid)?.saturating_sub(before);
            Some(used.as_secs_f64() / BROKER_IDLE_SAMPLE.as_secs_f64() * 100.0)
        }
        None => None,
    };
    let own_pid = std::process::id();
    let gateway_before = plan.gateway_pid.map(crate::gateway::cpu_time).transpose()?;
    let broker_before = broker_pid.map(crate::gateway::cpu_time).transpose()?;
    let generator_before = crate::gateway::cpu_time(own_pid)?;
    let started = Instant::now();
    let range = plan.warmup..plan.prebuilt.len();
    let (latencies, failures) = post_range(&client, plan, range.clone()).await?;
    let elapsed = started.elapsed();
    let receipted_at = Instant::now();
    let gateway_cpu = match (plan.gateway_pid, gateway_before) {
        (Some(pid), Some(before)) => Some(crate::gateway::cpu_time(pid)?.saturating_sub(before)),
        _ => None,
    };
    let generator_cpu = crate::gateway::cpu_time(own_pid)?.saturating_sub(generator_before);
    let delivery = match &plan.delivery {
        Some(watch) => {
            let seen = watch.sink.wait_timed(watch.timeout).await;
            let cpu_since = |pid: Option<u32>, before: Option<Duration>| match (pid, before) {
                (Some(pid), Some(before)) => {
                    crate::gateway::cpu_time(pid).map(|now| Some(now.saturating_sub(before)))
                }
                _ => Ok(None),
            };
            let gateway_cpu = cpu_since(plan.gateway_pid, gateway_before)?;
            let broker_cpu = cpu_since(broker_pid, broker_before)?;
            let seen = if seen.timed_completed_at.is_some() {
                tokio::time::sleep(REPEAT_GRACE).await;
                watch.sink.progress()
            } else {
                seen
            };
            Some(DeliveryOutcome {
                queue: watch.queue,
                delivered: seen.timed_seen,
                missing: seen.timed_total() - seen.timed_seen,
                repeats: seen.repeats,
                strays: seen.unknown + seen.malformed,
                elapsed: seen
                    .timed_completed_at
                    .map(|at| at.saturating_duration_since(started)),
                lag: seen
                    .timed_completed_at
                    .map(|at| at.saturating_duration_since(receipted_at)),
                gateway_cpu,
                broker_cpu,
                broker_idle_percent,
            })
        }
        None => None,
    };
    Ok(Outcome {
        messages: range.len(),
        failures,
        latencies,
        elapsed,
        bytes_sent: range.map(|i| plan.prebuilt.wire_bytes(i)).sum(),
        gateway_cpu,
        generator_cpu,
        delivery,
    })
}

/// Posts messages `range` with the plan's concurrency; returns latencies and failure count.
async fn post_range(
    client: &Arc<HttpClient>,
    plan: &Plan<'_>,
    range: std::ops::Range<usize>,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let next = Arc::new(AtomicUsize::new(range.start));
    let end = range.end;
    // Spawned tasks must own what they use: the requests are shared through an `Arc` (the
    // bodies are `Bytes`, so this copies no payload).
    let shared = Arc::new(Requests::from(plan.prebuilt));
    let mut tasks = Vec::with_capacity(plan.concurrency);
    for _ in 0..plan.concurrency.min(range.len()) {
        let client = client.clone();
        let next = next.clone();
        let shared = shared.clone();
        let url = plan.url.to_owned();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut failures = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= end {
                    break;
                }
                let started = Instant::now();
                let result = post_one(&client, &url, &shared.requests[i]).await;
                latencies.push(started.elapsed());
                if let Err(e) = result {
                    failures += 1;
                    if failures <= SHOWN_FAILURES {
                        eprintln!("as4load: message {i} failed: {e:#}");
                    }
                }
            }
            (latencies, failures)
        }));
    }
    let mut latencies = Vec::with_capacity(range.len());
    let mut failures = 0;
    for task in tasks {
        let (l, f) = task.await.context("a posting task panicked")?;
        latencies.extend(l);
        failures += f;
    }
    Ok((latencies, failures))
}

/// What a posting task needs to send one message.
enum Body {
    Memory(Bytes),
    File { path: std::path::PathBuf, len: u64 },
}

struct Request {
    message_id: String,
    content_type: String,
    body: Body,
}

struct Requests {
    requests: Vec<Request>,
}

impl From<&Prebuilt> for Requests {
    fn from(prebuilt: &Prebuilt) -> Requests {
        let requests = match prebuilt {
            Prebuilt::InMemory(v) => v
                .iter()
                .map(|m| Request {
                    message_id: m.message_id.clone(),
                    content_type: m.content_type.clone(),
                    body: Body::Memory(m.body.clone()),
                })
                .collect(),
            Prebuilt::OnDisk(v) => v
                .iter()
                .map(|m| Request {
                    message_id: m.message_id.clone(),
                    content_type: m.content_type.clone(),
                    body: Body::File {
                        path: m.path.clone(),
                        len: m.len,
                    },
                })
                .collect(),
        };
        Requests { requests }
    }
}

async fn post_one(client: &HttpClient, url: &str, request: &Request) -> anyhow::Result<()> {
    let (body, len): (RequestBody, u64) = match &request.body {
        Body::Memory(bytes) => (
            Full::new(bytes.clone())
                .map_err(|never| match never {})
                .boxed(),
            bytes.len() as u64,
        ),
        Body::File { path, len } => (file_body(path).await?, *len),
    };
    let http = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, &request.content_type)
        .header(hyper::header::CONTENT_LENGTH, len)
        .body(body)?;
    let response = client.request(http).await.context("HTTP exchange")?;
    let status = response.status();
    let answer = response.into_body().collect().await?.to_bytes();
    check_receipt(status.as_u16(), &answer, &request.message_id)
}

/// A body streamed from `path` in [`FILE_CHUNK`] pieces.
async fn file_body(path: &std::path::Path) -> anyhow::Result<RequestBody> {
    let file = tokio::fs::File::open(path)
        .await
        .with_context(|| format!("open {}", path.display()))?;
    let chunks = futures_util::stream::try_unfold(file, |mut file| async move {
        let mut buf = vec![0u8; FILE_CHUNK];
        let n = file.read(&mut buf).await?;
        if n == 0 {
            return Ok(None);
        }
        buf.truncate(n);
        Ok(Some((Frame::data(Bytes::from(buf)), file)))
    });
    Ok(BodyExt::boxed(StreamBody::new(chunks)))
}

/// Accepts only an HTTP 200 whose body is a receipt referring to `message_id`.
fn check_receipt(status: u16, answer: &[u8], message_id: &str) -> anyhow::Result<()> {
    let text = String::from_utf8_lossy(answer);
    let is_receipt = text.contains(":Receipt>") || text.contains(":Receipt ");
    let refers = text.contains(&format!("RefToMessageId>{message_id}<"));
    if status == 200 && is_receipt && refers {
        return Ok(());
    }
    let shown: String = text.chars().take(SHOWN_ANSWER_CHARS).collect();
    anyhow::bail!(
        "HTTP {status}, {}: {shown}",
        if !is_receipt {
            "no receipt"
        } else {
            "receipt for another message"
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECEIPT: &str = "<S12:Envelope><eb:Messaging><eb:SignalMessage><eb:MessageInfo>\
        <eb:RefToMessageId>m-1@blue</eb:RefToMessageId></eb:MessageInfo>\
        <eb:Receipt><ebbp:NonRepudiationInformation/></eb:Receipt></eb:SignalMessage>\
        </eb:Messaging></S12:Envelope>";

    #[test]
    fn receipt_for_the_message_is_accepted() {
        check_receipt(200, RECEIPT.as_bytes(), "m-1@blue").unwrap();
    }

    #[test]
    fn receipt_for_another_message_is_a_failure() {
        let e = check_receipt(200, RECEIPT.as_bytes(), "m-2@blue").unwrap_err();
        assert!(e.to_string().contains("receipt for another message"), "{e}");
    }

    #[test]
    fn error_signal_is_a_failure() {
        let error = "<eb:SignalMessage><eb:Error errorCode=\"EBMS:0101\"/></eb:SignalMessage>";
        let e = check_receipt(500, error.as_bytes(), "m-1@blue").unwrap_err();
        assert!(e.to_string().starts_with("HTTP 500, no receipt"), "{e}");
    }

    #[test]
    fn http_error_with_receipt_text_is_a_failure() {
        let e = check_receipt(503, RECEIPT.as_bytes(), "m-1@blue").unwrap_err();
        assert!(e.to_string().starts_with("HTTP 503"), "{e}");
    }
}
