//! `as4load`: a reproducible inbound load run against an as4gate gateway.
//!
//! The generator plays the partner `blue_gw` with the committed test PKI. Before any timing it
//! pre-builds N distinct messages (distinct MessageIds, incompressible random payloads) with
//! the gateway's own composer (signed, gzip-compressed, encrypted per the P-Mode); large
//! payloads are composed as a stream into a file on disk instead of memory. It then posts them
//! with C concurrent tasks over loopback HTTP/1.1 keep-alive, checks that every answer is an
//! HTTP 200 carrying a receipt for the message sent, and prints throughput, latency
//! percentiles, failures and — when it started the gateway itself — the gateway's peak RSS.
#![forbid(unsafe_code)]

mod gateway;
mod load;
mod messages;
mod payload;
mod report;
mod spooled;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

use crate::gateway::{SpawnOptions, SpawnedGateway, StoreSync};
use crate::messages::{Prebuilt, Sender};
use crate::report::Summary;

/// Repository root (the bench package lives in `bench/`).
const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// Payloads at least this large are composed into files on disk and streamed from there, so the
/// generator never holds them in memory.
const ON_DISK_PAYLOAD_BYTES: u64 = 64 * 1024 * 1024;

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
    /// A label printed in the result row (for the results table).
    #[arg(long, default_value = "")]
    label: String,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(summary) if summary.failures == 0 => ExitCode::SUCCESS,
        Ok(summary) => {
            eprintln!(
                "as4load: FAILED: {} of {} messages were not receipted",
                summary.failures, summary.messages
            );
            ExitCode::FAILURE
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

    let mut spawned = None;
    let url = match &args.url {
        Some(url) => url.clone(),
        None => {
            let gateway_bin = match &args.gateway_bin {
                Some(p) => p.clone(),
                None => std::env::current_exe()?
                    .parent()
                    .context("the directory of as4load")?
                    .join("as4gate"),
            };
            let g = SpawnedGateway::start(&SpawnOptions {
                binary: &gateway_bin,
                repo: &repo,
                pmode: &pmode_path,
                dir: work.path(),
                store_sync: args.store_sync,
            })?;
            let url = g.url();
            spawned = Some(g);
            url
        }
    };
    eprintln!(
        "as4load: posting {} messages (+{} warm-up) with concurrency {} to {url}",
        args.messages, args.warmup, args.concurrency
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads)
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(load::run(&load::Plan {
        url: &url,
        prebuilt: &prebuilt,
        warmup: args.warmup,
        concurrency: args.concurrency,
        gateway_pid: spawned.as_ref().map(SpawnedGateway::pid),
    }))?;
    let peak_rss = match &mut spawned {
        Some(g) => Some(g.stop()?),
        None => None,
    };
    let summary = Summary::new(args.payload_bytes, args.concurrency, &outcome, peak_rss);
    summary.print(&args.label);
    Ok(summary)
}
