//! Gateway to gateway: two `as4gate serve` processes on this machine, `blue_gw` sending to
//! `red_gw` over loopback HTTP, as two access points exchange messages in production.
//!
//! Before any timing the generator writes both configurations (the committed test PKI, both
//! crypto generations' keys, the P-Mode under test in both P-Mode directories), starts the
//! receiver, and submits N distinct messages (one random, incompressible payload each) to the
//! sender's store through the gateway's own submission API while the sender is not running,
//! so every message waits as `SEND_ENQUEUED` with its work item queued. Then it starts the
//! sender and waits until every message is `ACKNOWLEDGED` (a valid, verified receipt whose
//! NonRepudiationInformation matches what was sent) or `SEND_FAILURE`.
//!
//! Throughput is N over the window from the first attempt (`SEND_IN_PROGRESS`) to the last
//! `ACKNOWLEDGED`, both taken from the sender's own state history; sender and receiver CPU
//! come from `/proc/<pid>/stat` (the sender's whole life, start included; the receiver's over
//! the sender's life) and peak RSS from `VmHWM`. The receiver's store must hold exactly the N
//! MessageIds at the end; anything else fails the run.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use as4gate::outbound::submit::{PayloadSource, Submission, SubmittedPayload, submit};
use as4gate::store::{BlobStore, Store};
use futures_util::stream::{self, StreamExt, TryStreamExt};
use sqlx::Row;
use time::OffsetDateTime;

use crate::gateway::{QueueKind, SpawnedGateway, StoreSync, cpu_time, free_port, queue_section};
use crate::payload::{RandomReader, random_bytes};

/// Payloads larger than this are written to a file and submitted from there (the submission
/// streams files into the payload store), so the generator never holds them in memory.
const IN_MEMORY_PAYLOAD_BYTES: u64 = 1024 * 1024;
/// Submissions in flight at once while preparing.
const SUBMIT_CONCURRENCY: usize = 16;
/// Pause between checks of the sender's progress.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What to run.
pub struct PairOptions<'a> {
    /// The `as4gate` binary (both gateways).
    pub binary: &'a Path,
    /// The repository root (test PKI).
    pub repo: &'a Path,
    /// The P-Mode file both gateways load; messages are submitted under it.
    pub pmode: &'a Path,
    /// Directory for both gateways' configurations, data and logs.
    pub dir: &'a Path,
    /// Messages to send.
    pub messages: usize,
    /// Payload size of each message.
    pub payload_bytes: u64,
    /// SQLite durability of both gateways.
    pub store_sync: StoreSync,
    /// The sender's queue.
    pub queue: QueueKind,
    /// With RabbitMQ: the broker URL and this run's queue-name prefix.
    pub rabbitmq: Option<(&'a str, &'a str)>,
    /// The sender's `[queue] prefetch`: send work items it holds at most.
    pub prefetch: u16,
    /// The partner's `concurrency` in the sender's configuration: sends in flight at most.
    pub concurrency: usize,
    /// How long the sender may take for all messages.
    pub timeout: Duration,
}

/// The numbers of one gateway-to-gateway run.
#[derive(Debug)]
pub struct PairSummary {
    /// P-Mode id.
    pub pmode: String,
    /// Payload size of each message.
    pub payload_bytes: u64,
    /// `embedded` or `rabbitmq`.
    pub queue: &'static str,
    /// Messages sent.
    pub messages: usize,
    /// Messages acknowledged by a valid receipt.
    pub acknowledged: usize,
    /// Messages the sender gave up on, or never finished within the timeout.
    pub unfinished: usize,
    /// Messages the receiver stored that were not sent in this run, or are missing there.
    pub receiver_mismatch: usize,
    /// Submissions per second while preparing (the sender's store, durable).
    pub submitted_per_second: f64,
    /// First attempt to last acknowledgement, from the sender's state history.
    pub window: Duration,
    /// Acknowledged messages per second over `window`.
    pub per_second: f64,
    /// Sender CPU milliseconds per message (its whole life, start included).
    pub sender_cpu_ms: f64,
    /// Receiver CPU milliseconds per message (while the sender ran).
    pub receiver_cpu_ms: f64,
    /// Both processes' CPU over the sender's life, in percent of one core.
    pub cpu_percent: f64,
    /// Peak RSS of the sender and the receiver, in bytes.
    pub peak_rss: (u64, u64),
}

impl PairSummary {
    /// Whether every message was acknowledged and the receiver holds exactly them.
    pub fn is_clean(&self) -> bool {
        self.acknowledged == self.messages && self.unfinished == 0 && self.receiver_mismatch == 0
    }

    /// Prints the numbers for people and one `PAIR ` row for `run.sh`.
    pub fn print(&self, label: &str) {
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0);
        println!("P-Mode:          {} ({} queue)", self.pmode, self.queue);
        println!(
            "acknowledged:    {} of {} ({} unfinished, {} receiver mismatches)",
            self.acknowledged, self.messages, self.unfinished, self.receiver_mismatch
        );
        println!(
            "submitted:       {:.1} messages/s",
            self.submitted_per_second
        );
        println!("window:          {:.2} s", self.window.as_secs_f64());
        println!(
            "throughput:      {:.1} acknowledged messages/s",
            self.per_second
        );
        println!(
            "CPU per message: sender {:.2} ms, receiver {:.2} ms ({:.0} % of one core together)",
            self.sender_cpu_ms, self.receiver_cpu_ms, self.cpu_percent
        );
        println!(
            "peak RSS:        sender {}, receiver {}",
            mib(self.peak_rss.0),
            mib(self.peak_rss.1)
        );
        println!(
            "PAIR | {label} | {} | {} | {} | {} | {:.1} | {:.2} ms | {:.2} ms | {:.0} % | {} | {} | {} / {} |",
            self.pmode,
            self.queue,
            crate::report::size(self.payload_bytes),
            self.messages,
            self.per_second,
            self.sender_cpu_ms,
            self.receiver_cpu_ms,
            self.cpu_percent,
            mib(self.peak_rss.0),
            mib(self.peak_rss.1),
            self.unfinished,
            self.receiver_mismatch,
        );
    }
}

/// Runs one gateway-to-gateway measurement.
pub fn run(
    options: &PairOptions<'_>,
    runtime: &tokio::runtime::Runtime,
) -> anyhow::Result<PairSummary> {
    let pmode = as4gate_pmode::PMode::load_file(options.pmode)
        .map_err(|e| anyhow::anyhow!("{}: {e}", options.pmode.display()))?;
    let red = Side::new(options.dir, "red")?;
    let blue = Side::new(options.dir, "blue")?;
    for side in [&red, &blue] {
        std::fs::copy(options.pmode, side.pmodes.join("bench.toml"))?;
    }
    red.write_config(&receiver_config(options, &red)?)?;
    blue.write_config(&sender_config(options, &blue, red.address)?)?;

    let mut receiver = SpawnedGateway::spawn(options.binary, &red.config, &red.dir, red.address)?;
    eprintln!(
        "as4load: submitting {} messages with {} byte payloads to the sender's store...",
        options.messages, options.payload_bytes
    );
    let started = Instant::now();
    let sent = runtime.block_on(submit_all(options, &blue, &pmode.id))?;
    let submitted_per_second = options.messages as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "as4load: submitted in {:.1} s; starting the sender",
        started.elapsed().as_secs_f64()
    );

    let receiver_cpu_before = cpu_time(receiver.pid())?;
    let mut sender = SpawnedGateway::spawn(options.binary, &blue.config, &blue.dir, blue.address)?;
    let life = Instant::now();
    let progress = runtime.block_on(wait_until_done(&blue, options.messages, options.timeout))?;
    let sender_cpu = cpu_time(sender.pid())?;
    let receiver_cpu = cpu_time(receiver.pid())? - receiver_cpu_before;
    let life = life.elapsed();
    let peak_rss = (sender.stop()?, receiver.stop()?);

    let window = runtime.block_on(send_window(&blue))?;
    let received = runtime.block_on(received_ids(&red))?;
    let receiver_mismatch = received.symmetric_difference(&sent).count();
    let n = options.messages as f64;
    Ok(PairSummary {
        pmode: pmode.id,
        payload_bytes: options.payload_bytes,
        queue: options.queue.as_str(),
        messages: options.messages,
        acknowledged: progress.acknowledged,
        unfinished: options.messages - progress.acknowledged,
        receiver_mismatch,
        submitted_per_second,
        window,
        per_second: progress.acknowledged as f64 / window.as_secs_f64().max(1e-3),
        sender_cpu_ms: sender_cpu.as_secs_f64() * 1000.0 / n,
        receiver_cpu_ms: receiver_cpu.as_secs_f64() * 1000.0 / n,
        cpu_percent: (sender_cpu + receiver_cpu).as_secs_f64() * 100.0 / life.as_secs_f64(),
        peak_rss,
    })
}

/// One gateway's directory, configuration path and HTTP address.
struct Side {
    dir: PathBuf,
    pmodes: PathBuf,
    config: PathBuf,
    address: SocketAddr,
}

impl Side {
    fn new(parent: &Path, name: &str) -> anyhow::Result<Side> {
        let dir = parent.join(name);
        let pmodes = dir.join("pmodes");
        std::fs::create_dir_all(&pmodes)?;
        Ok(Side {
            config: dir.join("as4gate.toml"),
            pmodes,
            dir,
            address: free_port()?,
        })
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn write_config(&self, text: &str) -> anyhow::Result<()> {
        std::fs::write(&self.config, text)
            .with_context(|| format!("writing {}", self.config.display()))
    }

    async fn store(&self) -> anyhow::Result<Store> {
        let config = as4gate::config::Config::load(&self.config)?;
        Ok(Store::open(&config.database_path(), config.store.sqlite_synchronous).await?)
    }
}

/// The common top of both configurations: data, P-Modes, our party with both generations'
/// keys, the HTTP listener and the store's durability.
fn gateway_section(options: &PairOptions<'_>, side: &Side, party: &str) -> anyhow::Result<String> {
    let pki = options.repo.canonicalize()?.join("test-pki").join(party);
    let ca = options.repo.canonicalize()?.join("test-pki/ca/ca.crt");
    let sync = match options.store_sync {
        StoreSync::Full => "full",
        StoreSync::Normal => "normal",
    };
    Ok(format!(
        r#"# Generated by as4load for one gateway-to-gateway run.
data_dir = "{data}"
pmodes_dir = "{pmodes}"

[gateway]
party_id = "{party}"
signing_certificate = "{pki}/rsa.crt"
signing_key = "{pki}/rsa.key"
trust_anchors = ["{ca}"]

[gateway.edelivery_2_0]
signing_certificate = "{pki}/ed25519.crt"
signing_key = "{pki}/ed25519.key"
decryption_certificate = "{pki}/x25519.crt"
decryption_key = "{pki}/x25519.key"

[listen]
http = "{address}"

[store]
sqlite_synchronous = "{sync}"
"#,
        data = side.data().display(),
        pmodes = side.pmodes.display(),
        pki = pki.display(),
        ca = ca.display(),
        address = side.address,
    ))
}

/// `red_gw`: receives from `blue_gw` and answers with receipts.
fn receiver_config(options: &PairOptions<'_>, red: &Side) -> anyhow::Result<String> {
    let blue = options.repo.canonicalize()?.join("test-pki/blue_gw");
    Ok(gateway_section(options, red, "red_gw")?
        + &format!(
            r#"
[[partner]]
party_id = "blue_gw"
signing_certificates = ["{blue}/rsa.crt", "{blue}/ed25519.crt"]
"#,
            blue = blue.display()
        ))
}

/// `blue_gw`: sends to `red_gw` at `red_address` through its queue.
fn sender_config(
    options: &PairOptions<'_>,
    blue: &Side,
    red_address: SocketAddr,
) -> anyhow::Result<String> {
    let red = options.repo.canonicalize()?.join("test-pki/red_gw");
    Ok(gateway_section(options, blue, "blue_gw")?
        + &queue_section(options.queue, options.rabbitmq, options.prefetch)?
        + &format!(
            r#"
[[partner]]
party_id = "red_gw"
signing_certificates = ["{red}/rsa.crt", "{red}/ed25519.crt"]
encryption_certificates = ["{red}/rsa.crt", "{red}/x25519.crt"]
endpoint = "http://{red_address}/as4"
timeout = "60s"
concurrency = {concurrency}
"#,
            red = red.display(),
            concurrency = options.concurrency,
        ))
}

/// Submits the run's messages to the sender's store; returns their MessageIds.
async fn submit_all(
    options: &PairOptions<'_>,
    blue: &Side,
    pmode_id: &str,
) -> anyhow::Result<HashSet<String>> {
    let config = as4gate::config::Config::load(&blue.config)?;
    let gateway = as4gate::gateway::Gateway::load(&config)?;
    std::fs::create_dir_all(&config.data_dir)?;
    let store = blue.store().await?;
    let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
    let scratch = blue.dir.join("payloads");
    std::fs::create_dir_all(&scratch)?;
    let ids = stream::iter(0..options.messages)
        .map(|i| {
            let (gateway, store, blobs, scratch) = (&gateway, &store, &blobs, &scratch);
            async move {
                let source = if options.payload_bytes <= IN_MEMORY_PAYLOAD_BYTES {
                    PayloadSource::Bytes(random_bytes(options.payload_bytes as usize)?)
                } else {
                    let path = scratch.join(format!("{i}.bin"));
                    let mut file = std::fs::File::create(&path)?;
                    std::io::copy(&mut RandomReader::new(options.payload_bytes), &mut file)?;
                    PayloadSource::File(path)
                };
                let file = match &source {
                    PayloadSource::File(path) => Some(path.clone()),
                    PayloadSource::Bytes(_) => None,
                };
                let submitted = submit(
                    gateway,
                    store,
                    blobs,
                    Submission {
                        pmode_id: pmode_id.to_owned(),
                        payloads: vec![SubmittedPayload {
                            source,
                            mime_type: "application/octet-stream".into(),
                            character_set: None,
                            content_id: None,
                        }],
                        ..Submission::default()
                    },
                )
                .await
                .context("submitting")?;
                if let Some(path) = file {
                    std::fs::remove_file(path)?;
                }
                anyhow::Ok(submitted.message_id)
            }
        })
        .buffer_unordered(SUBMIT_CONCURRENCY)
        .try_collect()
        .await?;
    Ok(ids)
}

/// How far the sender got.
struct Progress {
    acknowledged: usize,
}

/// Waits until every outbound message is `ACKNOWLEDGED` or `SEND_FAILURE`, or `timeout`.
async fn wait_until_done(
    blue: &Side,
    messages: usize,
    timeout: Duration,
) -> anyhow::Result<Progress> {
    let store = blue.store().await?;
    let deadline = Instant::now() + timeout;
    loop {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM messages WHERE direction = 'outbound' GROUP BY state",
        )
        .fetch_all(store.pool())
        .await?;
        let count = |state: &str| -> usize {
            rows.iter()
                .filter(|r| r.get::<String, _>("state") == state)
                .map(|r| r.get::<i64, _>("n") as usize)
                .sum()
        };
        let acknowledged = count("ACKNOWLEDGED");
        if acknowledged + count("SEND_FAILURE") >= messages || Instant::now() >= deadline {
            return Ok(Progress { acknowledged });
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// From the first `SEND_IN_PROGRESS` to the last `ACKNOWLEDGED` in the sender's history.
async fn send_window(blue: &Side) -> anyhow::Result<Duration> {
    let store = blue.store().await?;
    let rows = sqlx::query(
        "SELECT state, at FROM state_history WHERE state IN ('SEND_IN_PROGRESS', 'ACKNOWLEDGED')",
    )
    .fetch_all(store.pool())
    .await?;
    let mut first: Option<OffsetDateTime> = None;
    let mut last: Option<OffsetDateTime> = None;
    for row in rows {
        let at = OffsetDateTime::parse(
            &row.get::<String, _>("at"),
            &time::format_description::well_known::Rfc3339,
        )?;
        if row.get::<String, _>("state") == "SEND_IN_PROGRESS" {
            first = Some(first.map_or(at, |f| f.min(at)));
        } else {
            last = Some(last.map_or(at, |l| l.max(at)));
        }
    }
    let (Some(first), Some(last)) = (first, last) else {
        anyhow::bail!("the sender acknowledged nothing");
    };
    Ok((last - first).try_into().unwrap_or_default())
}

/// The MessageIds the receiver stored.
async fn received_ids(red: &Side) -> anyhow::Result<HashSet<String>> {
    let store = red.store().await?;
    let rows = sqlx::query("SELECT message_id FROM messages WHERE direction = 'inbound'")
        .fetch_all(store.pool())
        .await?;
    Ok(rows.iter().map(|r| r.get("message_id")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_configurations_load_in_the_gateway() {
        let repo = PathBuf::from(crate::REPO);
        let pmode = repo.join("samples/pmodes/blue-to-red-2.0.toml");
        let dir = tempfile::tempdir().unwrap();
        let options = PairOptions {
            binary: Path::new("as4gate"),
            repo: &repo,
            pmode: &pmode,
            dir: dir.path(),
            messages: 1,
            payload_bytes: 1,
            store_sync: StoreSync::Full,
            queue: QueueKind::Embedded,
            rabbitmq: None,
            prefetch: 64,
            concurrency: 48,
            timeout: Duration::from_secs(1),
        };
        let red = Side::new(dir.path(), "red").unwrap();
        let blue = Side::new(dir.path(), "blue").unwrap();
        for side in [&red, &blue] {
            std::fs::copy(&pmode, side.pmodes.join("bench.toml")).unwrap();
        }
        red.write_config(&receiver_config(&options, &red).unwrap())
            .unwrap();
        blue.write_config(&sender_config(&options, &blue, red.address).unwrap())
            .unwrap();
        for side in [&red, &blue] {
            let config = as4gate::config::Config::load(&side.config).unwrap();
            as4gate::gateway::Gateway::load(&config).unwrap();
        }
        let config = as4gate::config::Config::load(&blue.config).unwrap();
        assert_eq!(config.queue.prefetch.get(), 64);
        assert_eq!(config.partners[0].concurrency, 48);
        assert_eq!(
            config.partners[0].endpoint.as_deref(),
            Some(format!("http://{}/as4", red.address).as_str())
        );
    }
}
