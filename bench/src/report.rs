//! Turning an [`Outcome`] into numbers: messages/s, MB/s, latency percentiles (nearest rank),
//! CPU use of gateway and generator, and the gateway's peak RSS; printed for people and as one
//! Markdown table row (prefixed `ROW `) that `run.sh` collects into `RESULTS.md`.
//!
//! End-to-end runs add the delivery numbers (delivered messages/s over the whole window, the
//! lag behind the last receipt, gateway and broker CPU per message, repeats and missing
//! deliveries) and a second row, prefixed `E2E `, for the end-to-end table.

use std::time::Duration;

use crate::load::{DeliveryOutcome, Outcome};

/// The numbers of one run.
#[derive(Debug)]
pub struct Summary {
    /// Payload size of each message.
    pub payload_bytes: u64,
    /// Requests in flight.
    pub concurrency: usize,
    /// Timed messages.
    pub messages: usize,
    /// Messages without a receipt.
    pub failures: usize,
    /// Receipted messages per second of wall time.
    pub per_second: f64,
    /// HTTP body megabytes (10^6) per second.
    pub megabytes_per_second: f64,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
    /// Slowest request.
    pub max: Duration,
    /// Wall time of the timed part.
    pub elapsed: Duration,
    /// Gateway CPU use in percent of one core (200 % = both cores of a 2-core machine).
    pub gateway_cpu_percent: Option<f64>,
    /// Generator CPU use in percent of one core.
    pub generator_cpu_percent: f64,
    /// Gateway CPU milliseconds per message.
    pub gateway_cpu_ms_per_message: Option<f64>,
    /// Gateway peak RSS in bytes.
    pub peak_rss: Option<u64>,
    /// End-to-end runs: the delivery numbers.
    pub e2e: Option<EndToEnd>,
}

/// The delivery numbers of an end-to-end run.
#[derive(Debug)]
pub struct EndToEnd {
    /// `embedded` or `rabbitmq`.
    pub queue: &'static str,
    /// Timed messages the sink saw at least once.
    pub delivered: usize,
    /// Timed messages never delivered within the timeout.
    pub missing: usize,
    /// Deliveries of an already delivered message.
    pub repeats: usize,
    /// Deliveries the sink could not attribute to a message of the run.
    pub strays: usize,
    /// Messages per second from the first request to the last first delivery (`None` when
    /// some are missing).
    pub per_second: Option<f64>,
    /// The whole window.
    pub elapsed: Option<Duration>,
    /// From the last receipt to the last delivery.
    pub lag: Option<Duration>,
    /// Gateway CPU milliseconds per message over the whole window.
    pub gateway_cpu_ms_per_message: Option<f64>,
    /// Broker CPU milliseconds per message over the whole window.
    pub broker_cpu_ms_per_message: Option<f64>,
    /// Broker CPU use over the window, percent of one core.
    pub broker_cpu_percent: Option<f64>,
    /// Broker CPU use just before the window, percent of one core.
    pub broker_idle_percent: Option<f64>,
}

impl EndToEnd {
    fn new(messages: usize, d: &DeliveryOutcome) -> EndToEnd {
        let per_message = |cpu: Duration| cpu.as_secs_f64() * 1000.0 / messages.max(1) as f64;
        let window = d.elapsed.map(|e| e.as_secs_f64().max(f64::MIN_POSITIVE));
        EndToEnd {
            queue: d.queue,
            delivered: d.delivered,
            missing: d.missing,
            repeats: d.repeats,
            strays: d.strays,
            per_second: window.map(|w| d.delivered as f64 / w),
            elapsed: d.elapsed,
            lag: d.lag,
            gateway_cpu_ms_per_message: d.gateway_cpu.map(per_message),
            broker_cpu_ms_per_message: d.broker_cpu.map(per_message),
            broker_cpu_percent: match (d.broker_cpu, window) {
                (Some(cpu), Some(w)) => Some(cpu.as_secs_f64() / w * 100.0),
                _ => None,
            },
            broker_idle_percent: d.broker_idle_percent,
        }
    }

    /// Every timed message delivered exactly once and nothing else.
    pub fn is_clean(&self) -> bool {
        self.missing == 0 && self.repeats == 0 && self.strays == 0
    }
}

impl Summary {
    /// Computes the summary of `outcome`.
    pub fn new(
        payload_bytes: u64,
        concurrency: usize,
        outcome: &Outcome,
        peak_rss: Option<u64>,
    ) -> Summary {
        let mut sorted = outcome.latencies.clone();
        sorted.sort_unstable();
        let secs = outcome.elapsed.as_secs_f64().max(f64::MIN_POSITIVE);
        let receipted = outcome.messages - outcome.failures;
        let percent = |cpu: Duration| cpu.as_secs_f64() / secs * 100.0;
        Summary {
            payload_bytes,
            concurrency,
            messages: outcome.messages,
            failures: outcome.failures,
            per_second: receipted as f64 / secs,
            megabytes_per_second: outcome.bytes_sent as f64 / 1e6 / secs,
            p50: percentile(&sorted, 50),
            p99: percentile(&sorted, 99),
            max: sorted.last().copied().unwrap_or_default(),
            elapsed: outcome.elapsed,
            gateway_cpu_percent: outcome.gateway_cpu.map(percent),
            generator_cpu_percent: percent(outcome.generator_cpu),
            gateway_cpu_ms_per_message: outcome
                .gateway_cpu
                .map(|c| c.as_secs_f64() * 1000.0 / outcome.messages.max(1) as f64),
            peak_rss,
            e2e: outcome
                .delivery
                .as_ref()
                .map(|d| EndToEnd::new(outcome.messages, d)),
        }
    }

    /// Prints the summary and its `ROW ` line.
    pub fn print(&self, label: &str) {
        let opt = |v: Option<f64>, unit: &str| {
            v.map(|v| format!("{v:.1}{unit}"))
                .unwrap_or_else(|| "n/a".into())
        };
        let rss = self
            .peak_rss
            .map(|b| format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0))
            .unwrap_or_else(|| "n/a (not spawned)".into());
        println!("messages:        {}", self.messages);
        println!("failures:        {}", self.failures);
        println!("elapsed:         {:.2} s", self.elapsed.as_secs_f64());
        println!("throughput:      {:.1} messages/s", self.per_second);
        println!("                 {:.1} MB/s", self.megabytes_per_second);
        println!("latency p50:     {}", ms(self.p50));
        println!("latency p99:     {}", ms(self.p99));
        println!("latency max:     {}", ms(self.max));
        println!(
            "gateway CPU:     {} of one core ({} per message)",
            opt(self.gateway_cpu_percent, " %"),
            opt(self.gateway_cpu_ms_per_message, " ms")
        );
        println!(
            "generator CPU:   {:.1} % of one core",
            self.generator_cpu_percent
        );
        println!("gateway peak RSS: {rss}");
        println!(
            "ROW | {label} | {} | {} | {} | {:.1} | {:.1} | {} | {} | {} | {} | {} | {} | {} |",
            size(self.payload_bytes),
            self.messages,
            self.concurrency,
            self.per_second,
            self.megabytes_per_second,
            ms(self.p50),
            ms(self.p99),
            ms(self.max),
            self.failures,
            opt(self.gateway_cpu_percent, " %"),
            opt(self.gateway_cpu_ms_per_message, " ms"),
            self.peak_rss
                .map(|b| format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0))
                .unwrap_or_else(|| "n/a".into()),
        );
        if let Some(e2e) = &self.e2e {
            e2e.print(label, self.messages, self.concurrency, self.per_second);
        }
    }
}

impl EndToEnd {
    /// Prints the delivery numbers and the `E2E ` row.
    fn print(&self, label: &str, messages: usize, concurrency: usize, receipted: f64) {
        let ms2 = |v: Option<f64>| {
            v.map(|v| format!("{v:.2} ms"))
                .unwrap_or_else(|| "n/a".into())
        };
        let pct = |v: Option<f64>| {
            v.map(|v| format!("{v:.1} %"))
                .unwrap_or_else(|| "n/a".into())
        };
        let rate = self
            .per_second
            .map(|r| format!("{r:.1}"))
            .unwrap_or_else(|| "n/a (incomplete)".into());
        let lag = self.lag.map(ms).unwrap_or_else(|| "n/a".into());
        println!("queue:           {}", self.queue);
        println!(
            "delivered:       {} of {messages} ({} missing, {} repeats, {} strays)",
            self.delivered, self.missing, self.repeats, self.strays
        );
        println!(
            "end-to-end:      {rate} messages/s over {}",
            self.elapsed.map(ms).unwrap_or_else(|| "n/a".into())
        );
        println!("delivery lag:    {lag} after the last receipt");
        println!(
            "gateway CPU e2e: {} per message",
            ms2(self.gateway_cpu_ms_per_message)
        );
        println!(
            "broker CPU:      {} per message ({} of one core; {} before the run)",
            ms2(self.broker_cpu_ms_per_message),
            pct(self.broker_cpu_percent),
            pct(self.broker_idle_percent)
        );
        println!(
            "E2E | {label} | {} | {messages} | {concurrency} | {receipted:.1} | {rate} | {lag} | {} | {} | {} | {} | {} / {} / {} |",
            self.queue,
            ms2(self.gateway_cpu_ms_per_message),
            ms2(self.broker_cpu_ms_per_message),
            pct(self.broker_cpu_percent),
            pct(self.broker_idle_percent),
            self.repeats,
            self.missing,
            self.strays,
        );
    }
}

/// Nearest-rank percentile of sorted samples.
fn percentile(sorted: &[Duration], p: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 1000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        format!("{ms:.1} ms")
    }
}

/// A payload size for result rows (`1 KiB`, `10 MiB`, ...).
pub fn size(bytes: u64) -> String {
    const KIB: u64 = 1024;
    match bytes {
        b if b >= KIB * KIB * KIB && b % (KIB * KIB * KIB) == 0 => format!("{} GiB", b >> 30),
        b if b >= KIB * KIB && b % (KIB * KIB) == 0 => format!("{} MiB", b >> 20),
        b if b >= KIB && b % KIB == 0 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn nearest_rank_percentiles() {
        let sorted: Vec<_> = (1..=100).map(d).collect();
        assert_eq!(percentile(&sorted, 50), d(50));
        assert_eq!(percentile(&sorted, 99), d(99));
        assert_eq!(percentile(&[d(7)], 99), d(7));
        assert_eq!(percentile(&[], 50), Duration::ZERO);
    }

    #[test]
    fn sizes_are_named() {
        assert_eq!(size(1024), "1 KiB");
        assert_eq!(size(100 * 1024), "100 KiB");
        assert_eq!(size(10 << 20), "10 MiB");
        assert_eq!(size(1 << 30), "1 GiB");
        assert_eq!(size(1500), "1500 B");
    }

    #[test]
    fn failures_do_not_count_as_throughput() {
        let outcome = Outcome {
            messages: 10,
            failures: 2,
            latencies: (1..=10).map(d).collect(),
            elapsed: Duration::from_secs(2),
            bytes_sent: 2_000_000,
            gateway_cpu: Some(Duration::from_secs(3)),
            generator_cpu: Duration::from_secs(1),
            delivery: None,
        };
        let s = Summary::new(1024, 4, &outcome, Some(50 << 20));
        assert_eq!(s.per_second, 4.0);
        assert_eq!(s.megabytes_per_second, 1.0);
        assert_eq!(s.gateway_cpu_percent, Some(150.0));
        assert_eq!(s.generator_cpu_percent, 50.0);
        assert_eq!(s.gateway_cpu_ms_per_message, Some(300.0));
        assert!(s.e2e.is_none());
    }

    #[test]
    fn end_to_end_rates_and_costs_are_per_timed_message() {
        let delivery = DeliveryOutcome {
            queue: "rabbitmq",
            delivered: 10,
            missing: 0,
            repeats: 0,
            strays: 0,
            elapsed: Some(Duration::from_secs(4)),
            lag: Some(Duration::from_secs(2)),
            gateway_cpu: Some(Duration::from_secs(5)),
            broker_cpu: Some(Duration::from_secs(1)),
            broker_idle_percent: Some(0.5),
        };
        let e = EndToEnd::new(10, &delivery);
        assert_eq!(e.per_second, Some(2.5));
        assert_eq!(e.gateway_cpu_ms_per_message, Some(500.0));
        assert_eq!(e.broker_cpu_ms_per_message, Some(100.0));
        assert_eq!(e.broker_cpu_percent, Some(25.0));
        assert!(e.is_clean());
        let incomplete = DeliveryOutcome {
            delivered: 9,
            missing: 1,
            elapsed: None,
            ..delivery
        };
        let e = EndToEnd::new(10, &incomplete);
        assert_eq!(e.per_second, None);
        assert!(!e.is_clean());
    }
}
