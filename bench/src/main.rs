//! `as4load`: a reproducible inbound load run against an as4gate gateway.
//!
//! The generator plays the partner `blue_gw` with the committed test PKI. Before any timing it
//! pre-builds N distinct messages (distinct MessageIds, incompressible random payloads) with
//! the gateway's own composer (signed, gzip-compressed, encrypted per the P-Mode); large
//! payloads are composed as a stream into a file on disk instead of memory. It then posts them
//! with C concurrent tasks over loopback HTTP/1.1 keep-alive, checks that every answer is an
//! HTTP 200 carrying a receipt for the message sent, and prints throughput, latency
//! percentiles, failures and — when it started the gateway itself — the gateway's peak RSS.
//!
//! With `--deliver rest` the run is end to end: the spawned gateway routes every message to a
//! REST back-end played by the generator's own sink ([`sink`]) through the queue chosen with
//! `--queue` (embedded, or RabbitMQ with a prefix of its own that is deleted afterwards,
//! [`broker`]), and the run also reports delivered messages/s, the delivery lag, gateway CPU
//! per delivered message and, with RabbitMQ, the broker's CPU per message. A missing, repeated
//! or unattributable delivery fails the run like a missing receipt does.
#![forbid(unsafe_code)]

mod broker;
mod gateway;
mod load;
mod messages;
mod pair;
mod payload;
mod report;
mod sink;
mod spooled;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::gateway::{DeliveryOptions, QueueKind, SpawnOptions, SpawnedGateway, StoreSync};
use crate::messages::{Prebuilt, Sender};
use crate::report::Summary;
use crate::sink::Sink;

/// Repository root (the bench package lives in `bench/`).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Payloads at least this large are composed into files on disk and streamed from there, so the
/// generator never holds them in memory.
const ON_DISK_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

/// Default of `--backend-concurrency`: exchanges in flight from the gateway to the sink.
const DEFAULT_BACKEND_CONCURRENCY: usize = 32;
/// Default of `--prefetch`: the gateway's own default for unsettled work items.
const DEFAULT_PREFETCH: u16 = 256;
/// Default of `--delivery-timeout`, seconds.
const DEFAULT_DELIVERY_TIMEOUT_SECS: u64 = 120;

/// How received messages leave the gateway in an end-to-end run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Deliver {
    /// One multipart/form-data POST per message to the generator's sink.
    Rest,
}

/// Command line of `as4load`.
#[derive(Debug, Parser)]
#[command(about = "Inbound load generator for as4gate")]
struct Args {
    /// How many distinct messages to post (timed).
    #[arg(long, default_value_t = 1000)]
    messages: usize,
    /// How many requests are in flight at once.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Size of the single (random, incompressible) payload of each message, in bytes.
    #[arg(long, default_value_t = 1024)]
    payload_bytes: u64,
    /// Extra messages posted before timing starts (opens connections, warms caches).
    #[arg(long, default_value_t = 0)]
    warmup: usize,
    /// The gateway's AS4 endpoint (a gateway that is already running).
    #[arg(
        long,
        conflicts_with = "spawn_gateway",
        required_unless_present = "spawn_gateway"
    )]
    url: Option<String>,
    /// Start `as4gate serve` with a generated configuration and a fresh temporary data
    /// directory, and report its peak RSS (VmHWM) at the end.
    #[arg(long)]
    spawn_gateway: bool,
    /// The gateway binary for --spawn-gateway (default: `as4gate` next to this binary).
    #[arg(long)]
    gateway_bin: Option<PathBuf>,
    /// Where the temporary data directory of a spawned gateway is created (default: the
    /// system temporary directory). Its disk is the one that durable storage fsyncs to.
    #[arg(long)]
    data_parent: Option<PathBuf>,
    /// SQLite `synchronous` mode of a spawned gateway (`full` is the durable default).
    #[arg(long, value_enum, default_value_t = StoreSync::Full)]
    store_sync: StoreSync,
    /// P-Mode to send under (default: samples/pmodes/blue-to-red.toml: signed, encrypted,
    /// gzip). A spawned gateway loads it together with the sample P-Modes.
    #[arg(long)]
    pmode: Option<PathBuf>,
    /// Worker threads of the generator's own runtime.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// End to end: the spawned gateway delivers every message to the generator's sink over
    /// this binding, and the run waits for and counts the deliveries.
    #[arg(long, value_enum, requires = "spawn_gateway")]
    deliver: Option<Deliver>,
    /// Which queue carries the delivery work (with --deliver) or the sender's work (with
    /// --to-gateway).
    #[arg(long, value_enum, default_value_t = QueueKind::Embedded)]
    queue: QueueKind,
    /// The RabbitMQ broker for `--queue rabbitmq`; the run uses queues of its own prefix
    /// and deletes them at the end.
    #[arg(long, default_value = broker::DEFAULT_URL)]
    rabbitmq_url: String,
    /// `[[backend]] concurrency` of the spawned gateway (with --deliver).
    #[arg(long, default_value_t = DEFAULT_BACKEND_CONCURRENCY)]
    backend_concurrency: usize,
    /// `[queue] prefetch` of the spawned gateway (with --deliver).
    #[arg(long, default_value_t = DEFAULT_PREFETCH)]
    prefetch: u16,
    /// How long to wait for the deliveries after the last receipt, in seconds; what has not
    /// arrived by then counts as missing.
    #[arg(long, default_value_t = DEFAULT_DELIVERY_TIMEOUT_SECS)]
    delivery_timeout: u64,
    /// Gateway to gateway: instead of posting itself, the generator submits the messages to
    /// a second spawned gateway (`blue_gw`) that sends them to the first (`red_gw`) and waits
    /// for their receipts ([`pair`]). `--concurrency` is then the sender's sends in flight to
    /// the receiver (partner `concurrency`), `--prefetch` its queue prefetch and `--queue` its
    /// queue; `--pmode` defaults to samples/pmodes/blue-to-red-2.0.toml.
    #[arg(long, requires = "spawn_gateway", conflicts_with = "deliver")]
    to_gateway: bool,
    /// A label printed in the result row (for the results table).
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.to_gateway {
        return match run_pair(&args) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("as4load: FAILED: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match run(&args) {
        Ok(summary) => {
            let mut ok = true;
            if summary.failures > 0 {
                eprintln!(
                    "as4load: FAILED: {} of {} messages were not receipted",
                    summary.failures, summary.messages
                );
                ok = false;
            }
            if let Some(e2e) = summary.e2e.as_ref().filter(|e| !e.is_clean()) {
                eprintln!(
                    "as4load: FAILED: deliveries: {} missing, {} repeated, {} not from this run",
                    e2e.missing, e2e.repeats, e2e.strays
                );
                ok = false;
            }
            if ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            }
        }
        Err(e) => {
            eprintln!("as4load: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> anyhow::Result<Summary> {
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    anyhow::ensure!(args.concurrency > 0, "--concurrency must be at least 1");
    anyhow::ensure!(
        args.client_threads > 0,
        "--client-threads must be at least 1"
    );
    anyhow::ensure!(
        args.queue == QueueKind::Embedded || args.deliver.is_some() || args.to_gateway,
        "--queue needs --deliver or --to-gateway"
    );
    let repo = PathBuf::from(REPO);
    let pmode_path = args
        .pmode
        .clone()
        .unwrap_or_else(|| repo.join("samples/pmodes/blue-to-red.toml"));
    let sender = Sender::blue(&repo, &pmode_path)?;
    let work = tempfile::Builder::new()
        .prefix("as4load-")
        .tempdir_in(args.data_parent.clone().unwrap_or_else(std::env::temp_dir))
        .context("temporary directory")?;

    let total = args.messages + args.warmup;
    let on_disk = args.payload_bytes >= ON_DISK_PAYLOAD_BYTES;
    eprintln!(
        "as4load: pre-building {total} messages with {} byte payloads ({})...",
        args.payload_bytes,
        if on_disk { "on disk" } else { "in memory" }
    );
    let started = std::time::Instant::now();
    let prebuilt = if on_disk {
        Prebuilt::OnDisk(spooled::build_all(
            &sender,
            total,
            args.payload_bytes,
            work.path(),
        )?)
    } else {
        Prebuilt::InMemory(messages::build_all(&sender, total, args.payload_bytes)?)
    };
    eprintln!(
        "as4load: built in {:.1} s; wire size {} bytes per message",
        started.elapsed().as_secs_f64(),
        prebuilt.wire_bytes(0)
    );

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let sink = match args.deliver {
        Some(Deliver::Rest) => {
            let _context = runtime.enter();
            let listener = std::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
                .context("binding the back-end sink")?;
            Some(Sink::start(listener, prebuilt.message_ids(), args.warmup)?)
        }
        None => None,
    };
    let prefix =
        (args.deliver.is_some() && args.queue == QueueKind::Rabbitmq).then(broker::unique_prefix);
    let sink_url = sink.as_ref().map(Sink::url);
    let delivery = sink_url.as_deref().map(|sink_url| DeliveryOptions {
        sink_url,
        queue: args.queue,
        rabbitmq: prefix
            .as_deref()
            .map(|prefix| (args.rabbitmq_url.as_str(), prefix)),
        backend_concurrency: args.backend_concurrency,
        prefetch: args.prefetch,
    });
    let gateway_bin = match (&args.url, &args.gateway_bin) {
        (Some(_), _) => None,
        (None, Some(path)) => Some(path.clone()),
        (None, None) => Some(
            std::env::current_exe()?
                .parent()
                .context("the directory of as4load")?
                .join("as4gate"),
        ),
    };
    let spawn = gateway_bin.as_deref().map(|binary| SpawnOptions {
        binary,
        repo: &repo,
        pmode: &pmode_path,
        dir: work.path(),
        store_sync: args.store_sync,
        delivery,
    });
    let result = post_and_measure(args, spawn, &prebuilt, &runtime, sink.as_ref());
    drop(sink);
    if let Some(prefix) = &prefix {
        // Also after a failed run: the gateway may have declared the topology before failing.
        let scratch = work.path().join("broker-cleanup");
        std::fs::create_dir_all(&scratch)?;
        let cleaned = runtime.block_on(broker::delete_topology(
            &args.rabbitmq_url,
            prefix,
            &scratch,
        ));
        match (&result, cleaned) {
            (_, Ok(())) => eprintln!("as4load: deleted the broker queues of prefix {prefix}"),
            (Ok(_), Err(e)) => return Err(e.context("cleaning up the broker")),
            (Err(_), Err(e)) => eprintln!("as4load: cleaning up the broker failed too: {e:#}"),
        }
    }
    let summary = result?;
    summary.print(&args.label);
    Ok(summary)
}

/// A gateway-to-gateway run ([`pair`]): prints its own summary; an unfinished message or a
/// receiver that does not hold exactly the messages sent fails it.
fn run_pair(args: &Args) -> anyhow::Result<()> {
    anyhow::ensure!(args.messages > 0, "--messages must be at least 1");
    let repo = &PathBuf::from(REPO);
    let pmode = args
        .pmode
        .clone()
        .unwrap_or_else(|| repo.join("samples/pmodes/blue-to-red-2.0.toml"));
    let work = tempfile::Builder::new()
        .prefix("as4pair-")
        .tempdir_in(args.data_parent.clone().unwrap_or_else(std::env::temp_dir))
        .context("temporary directory")?;
    let binary = match &args.gateway_bin {
        Some(path) => path.clone(),
        None => std::env::current_exe()?
            .parent()
            .context("the directory of as4load")?
            .join("as4gate"),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let prefix = (args.queue == QueueKind::Rabbitmq).then(broker::unique_prefix);
    let result = pair::run(
        &pair::PairOptions {
            binary: &binary,
            repo,
            pmode: &pmode,
            dir: work.path(),
            messages: args.messages,
            payload_bytes: args.payload_bytes,
            store_sync: args.store_sync,
            queue: args.queue,
            rabbitmq: prefix
                .as_deref()
                .map(|prefix| (args.rabbitmq_url.as_str(), prefix)),
            prefetch: args.prefetch,
            concurrency: args.concurrency,
            timeout: Duration::from_secs(args.delivery_timeout.max(600)),
        },
        &runtime,
    );
    if let Some(prefix) = &prefix {
        let scratch = work.path().join("broker-cleanup");
        std::fs::create_dir_all(&scratch)?;
        runtime
            .block_on(broker::delete_topology(
                &args.rabbitmq_url,
                prefix,
                &scratch,
            ))
            .context("cleaning up the broker")?;
    }
    let summary = result?;
    summary.print(&args.label);
    anyhow::ensure!(
        summary.is_clean(),
        "{} of {} messages not acknowledged, {} receiver mismatches",
        summary.unfinished,
        summary.messages,
        summary.receiver_mismatch
    );
    Ok(())
}

/// Starts the gateway (with `spawn`), posts, waits for the deliveries of an end-to-end run
/// and stops the gateway.
fn post_and_measure(
    args: &Args,
    spawn: Option<SpawnOptions<'_>>,
    prebuilt: &Prebuilt,
    runtime: &tokio::runtime::Runtime,
    sink: Option<&Sink>,
) -> anyhow::Result<Summary> {
    let mut spawned = spawn.as_ref().map(SpawnedGateway::start).transpose()?;
    let url = match (&args.url, &spawned) {
        (Some(url), _) => url.clone(),
        (None, Some(gateway)) => gateway.url(),
        (None, None) => anyhow::bail!("neither --url nor --spawn-gateway"),
    };
    let broker_pid = match (sink, args.queue) {
        (Some(_), QueueKind::Rabbitmq) => Some(broker::rabbitmq_pid()?),
        _ => None,
    };
    eprintln!(
        "as4load: posting {} messages (+{} warm-up) with concurrency {} to {url}{}",
        args.messages,
        args.warmup,
        args.concurrency,
        match sink {
            Some(sink) => format!(
                ", delivered through the {} queue to {}",
                args.queue.as_str(),
                sink.url()
            ),
            None => String::new(),
        }
    );
    let outcome = runtime.block_on(load::run(&load::Plan {
        url: &url,
        prebuilt,
        warmup: args.warmup,
        concurrency: args.concurrency,
        gateway_pid: spawned.as_ref().map(SpawnedGateway::pid),
        delivery: sink.map(|sink| load::DeliveryWatch {
            sink,
            queue: args.queue.as_str(),
            broker_pid,
            timeout: Duration::from_secs(args.delivery_timeout),
        }),
    }))?;
    let peak_rss = match &mut spawned {
        Some(g) => Some(g.stop()?),
        None => None,
    };
    Ok(Summary::new(
        args.payload_bytes,
        args.concurrency,
        &outcome,
        peak_rss,
    ))
}
