//! Running the gateway under test: `as4gate serve --config <generated>` with a fresh data
//! directory, on a free loopback port, its log in the data directory. While it runs its CPU
//! time can be read from `/proc/<pid>/stat`; when it stops, its peak resident set size is read
//! from `VmHWM` in `/proc/<pid>/status`.
//!
//! For end-to-end runs the configuration also routes every received message to one REST
//! back-end (the generator's sink): a `[queue]` section (embedded, or RabbitMQ with the run's
//! own prefix), one `[[backend]]`, one `[[delivery_queue]]` taking every message and one
//! `[[subscription]]`.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;

/// How long the gateway may take to start listening.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(50);
/// The sample P-Modes every spawned gateway loads.
const SAMPLE_PMODES: [&str; 2] = ["blue-to-red.toml", "ping.toml"];

/// SQLite durability of the spawned gateway (`[store] sqlite_synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StoreSync {
    /// fsync on every commit (durable across power loss; the gateway's default).
    Full,
    /// fsync at WAL checkpoints only (for diagnosis, not the target configuration).
    Normal,
}

/// Which queue carries the delivery work of an end-to-end run (`[queue] backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum QueueKind {
    /// Tables in the gateway's SQLite database.
    Embedded,
    /// RabbitMQ quorum queues with publisher confirms and manual acks.
    Rabbitmq,
}

impl QueueKind {
    /// The configuration value, also used in result rows.
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Embedded => "embedded",
            QueueKind::Rabbitmq => "rabbitmq",
        }
    }
}

/// Delivery of every received message to the sink (end-to-end runs).
pub struct DeliveryOptions<'a> {
    /// The sink's URL (the `[[backend]]` url).
    pub sink_url: &'a str,
    /// Which queue.
    pub queue: QueueKind,
    /// With RabbitMQ: the broker URL and this run's queue-name prefix.
    pub rabbitmq: Option<(&'a str, &'a str)>,
    /// `[[backend]] concurrency`: exchanges in flight to the sink.
    pub backend_concurrency: usize,
    /// `[queue] prefetch`: unsettled work items the delivery worker holds.
    pub prefetch: u16,
}

/// What to start.
pub struct SpawnOptions<'a> {
    /// The `as4gate` binary.
    pub binary: &'a Path,
    /// The repository root (test PKI, sample P-Modes).
    pub repo: &'a Path,
    /// The P-Mode the generator sends under; loaded in addition to the samples.
    pub pmode: &'a Path,
    /// Directory for the configuration, P-Modes, data and log.
    pub dir: &'a Path,
    /// SQLite durability.
    pub store_sync: StoreSync,
    /// Delivery to the sink, for end-to-end runs.
    pub delivery: Option<DeliveryOptions<'a>>,
}

/// A gateway process started by the generator.
pub struct SpawnedGateway {
    child: Child,
    address: SocketAddr,
    log: PathBuf,
}

impl SpawnedGateway {
    /// Writes a configuration, starts `serve` and waits until the HTTP port accepts.
    pub fn start(options: &SpawnOptions<'_>) -> anyhow::Result<SpawnedGateway> {
        let address = free_port()?;
        let config = write_config(options, address)?;
        SpawnedGateway::spawn(options.binary, &config, options.dir, address)
    }

    /// Starts `binary serve --config <config>`, which listens for HTTP on `address`, with its
    /// output in `dir`, and waits until the port accepts.
    pub fn spawn(
        binary: &Path,
        config: &Path,
        dir: &Path,
        address: SocketAddr,
    ) -> anyhow::Result<SpawnedGateway> {
        let log = dir.join("gateway.log");
        let child = Command::new(binary)
            .arg("serve")
            .arg("--config")
            .arg(config)
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("gateway.stdout"))?)
            .stderr(File::create(&log)?)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut gateway = SpawnedGateway {
            child,
            address,
            log,
        };
        gateway.wait_ready()?;
        Ok(gateway)
    }

    /// The gateway's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The AS4 endpoint.
    pub fn url(&self) -> String {
        format!("http://{}/as4", self.address)
    }

    fn wait_ready(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the gateway exited during start ({status}); log:\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                );
            }
            if TcpStream::connect_timeout(&self.address, PROBE_INTERVAL).is_ok() {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the gateway did not listen on {} within {START_TIMEOUT:?}",
                self.address
            );
            std::thread::sleep(PROBE_INTERVAL);
        }
    }

    /// Reads the peak RSS (VmHWM, bytes), then kills and reaps the process.
    pub fn stop(&mut self) -> anyhow::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .context("reading the gateway's /proc status")?;
        let peak =
            status_kib(&status, "VmHWM:").context("no VmHWM in the gateway's /proc status")? * 1024;
        self.child.kill()?;
        self.child.wait()?;
        Ok(peak)
    }
}

impl Drop for SpawnedGateway {
    fn drop(&mut self) {
        // Already reaped after `stop`; otherwise make sure no gateway outlives the run.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// CPU time (user + system) of process `pid` so far, from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .context("malformed /proc stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| -> anyhow::Result<u64> {
        Ok(fields.get(i).context("short /proc stat")?.parse::<u64>()?)
    };
    // `rest` starts at field 3 (state), so field n is at index n - 3.
    let total = ticks(14 - 3)? + ticks(15 - 3)?;
    Ok(Duration::from_millis(
        total * 1000 / clock_ticks_per_second(),
    ))
}

/// `sysconf(_SC_CLK_TCK)`; 100 on every Linux this runs on, asked from `getconf` to be sure.
fn clock_ticks_per_second() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

fn status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line[key.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// A loopback address with a port that is free right now.
pub fn free_port() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(listener.local_addr()?)
}

fn write_config(options: &SpawnOptions<'_>, address: SocketAddr) -> anyhow::Result<PathBuf> {
    let dir = options.dir;
    let pmodes = dir.join("pmodes");
    std::fs::create_dir_all(&pmodes)?;
    let samples = options.repo.join("samples/pmodes");
    for name in SAMPLE_PMODES {
        std::fs::copy(samples.join(name), pmodes.join(name))?;
    }
    let own = options.pmode.file_name().context("--pmode names no file")?;
    if !SAMPLE_PMODES.iter().any(|s| *s == own) || options.pmode.parent() != Some(&samples) {
        std::fs::copy(
            options.pmode,
            pmodes.join(format!("bench-{}", own.display())),
        )?;
    }
    let sync = match options.store_sync {
        StoreSync::Full => "full",
        StoreSync::Normal => "normal",
    };
    let repo = options.repo.canonicalize()?;
    let text = format!(
        r#"# Generated by as4load for one benchmark run.
data_dir = "{data}"
pmodes_dir = "{pmodes}"

[gateway]
party_id = "red_gw"
signing_certificate = "{repo}/test-pki/red_gw/rsa.crt"
signing_key = "{repo}/test-pki/red_gw/rsa.key"
trust_anchors = ["{repo}/test-pki/ca/ca.crt"]

[gateway.edelivery_2_0]
signing_certificate = "{repo}/test-pki/red_gw/ed25519.crt"
signing_key = "{repo}/test-pki/red_gw/ed25519.key"
decryption_certificate = "{repo}/test-pki/red_gw/x25519.crt"
decryption_key = "{repo}/test-pki/red_gw/x25519.key"

[listen]
http = "{address}"

[store]
sqlite_synchronous = "{sync}"

[[partner]]
party_id = "blue_gw"
signing_certificates = ["{repo}/test-pki/blue_gw/rsa.crt", "{repo}/test-pki/blue_gw/ed25519.crt"]
"#,
        data = dir.join("data").display(),
        pmodes = pmodes.display(),
        repo = repo.display(),
    );
    let text = match &options.delivery {
        Some(delivery) => text + &delivery_sections(delivery)?,
        None => text,
    };
    let path = dir.join("as4gate.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

/// The `[queue]`, `[[backend]]`, `[[delivery_queue]]` and `[[subscription]]` sections of an
/// end-to-end run. The back-end's retry interval is short so that a failed push would come
/// back within the run (and show up as a repeat or a late delivery) instead of in 30 s.
fn delivery_sections(delivery: &DeliveryOptions<'_>) -> anyhow::Result<String> {
    let queue = queue_section(delivery.queue, delivery.rabbitmq, delivery.prefetch)?;
    Ok(format!(
        r#"{queue}
[[backend]]
id = "sink"
binding = "rest"
url = "{sink}"
timeout = "30s"
concurrency = {concurrency}
retry = {{ interval = "1s", backoff = "fixed", max_interval = "1s", max_attempts = 10 }}

[[delivery_queue]]
name = "bench"
description = "every message as4load sends"
ttl = "1h"

[[subscription]]
id = "bench-sink"
queue = "bench"
backend = "sink"
"#,
        sink = delivery.sink_url,
        concurrency = delivery.backend_concurrency,
    ))
}

/// The `[queue]` section: the embedded queue, or RabbitMQ at `rabbitmq` = (URL, prefix).
pub fn queue_section(
    queue: QueueKind,
    rabbitmq: Option<(&str, &str)>,
    prefetch: u16,
) -> anyhow::Result<String> {
    Ok(match (queue, rabbitmq) {
        (QueueKind::Embedded, _) => format!(
            r#"
[queue]
backend = "embedded"
prefetch = {prefetch}
"#,
            prefetch = prefetch
        ),
        (QueueKind::Rabbitmq, Some((url, prefix))) => {
            let delays: Vec<String> = crate::broker::RETRY_DELAYS
                .iter()
                .map(|d| format!("\"{d}\""))
                .collect();
            format!(
                r#"
[queue]
backend = "rabbitmq"
url = "{url}"
prefix = "{prefix}"
prefetch = {prefetch}
retry_delays = [{delays}]
"#,
                prefetch = prefetch,
                delays = delays.join(", ")
            )
        }
        (QueueKind::Rabbitmq, None) => {
            anyhow::bail!("a RabbitMQ run needs a broker URL and prefix")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vmhwm_is_read_in_kib() {
        let status = "Name:\tas4gate\nVmPeak:\t  2000 kB\nVmHWM:\t   51234 kB\nVmRSS:\t 100 kB\n";
        assert_eq!(status_kib(status, "VmHWM:"), Some(51234));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn end_to_end_config_loads_in_the_gateway() {
        let repo = PathBuf::from(crate::REPO);
        let pmode = repo.join("samples/pmodes/blue-to-red.toml");
        for (queue, rabbitmq) in [
            (QueueKind::Embedded, None),
            (
                QueueKind::Rabbitmq,
                Some((crate::broker::DEFAULT_URL, "as4load-x")),
            ),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let options = SpawnOptions {
                binary: Path::new("as4gate"),
                repo: &repo,
                pmode: &pmode,
                dir: dir.path(),
                store_sync: StoreSync::Full,
                delivery: Some(DeliveryOptions {
                    sink_url: "http://127.0.0.1:9/deliver",
                    queue,
                    rabbitmq,
                    backend_concurrency: 32,
                    prefetch: 48,
                }),
            };
            let path = write_config(&options, "127.0.0.1:9".parse().unwrap()).unwrap();
            let config = as4gate::config::Config::load(&path).unwrap();
            let backend = match queue {
                QueueKind::Embedded => as4gate::queue::QueueBackendKind::Embedded,
                QueueKind::Rabbitmq => as4gate::queue::QueueBackendKind::Rabbitmq,
            };
            assert_eq!(config.queue.backend, backend);
            assert_eq!(config.queue.prefetch.get(), 48);
            assert_eq!(config.backends[0].concurrency, 32);
            assert_eq!(
                config
                    .router()
                    .unwrap()
                    .subscription("bench-sink")
                    .unwrap()
                    .backend,
                "sink"
            );
        }
    }

    #[test]
    fn own_cpu_time_is_readable() {
        let mut x = 0u64;
        for i in 0..5_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        assert!(x != 1);
        cpu_time(std::process::id()).unwrap();
    }
}
