//! Turning an [`Outcome`] into numbers: messages/s, MB/s, latency percentiles (nearest rank),
//! CPU use of gateway and generator, and the gateway's peak RSS; printed for people and as one
//! Markdown table row (prefixed `ROW `) that `run.sh` collects into `RESULTS.md`.

use std::time::Duration;

use crate::load::Outcome;

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

fn size(bytes: u64) -> String {
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
        };
        let s = Summary::new(1024, 4, &outcome, Some(50 << 20));
        assert_eq!(s.per_second, 4.0);
        assert_eq!(s.megabytes_per_second, 1.0);
        assert_eq!(s.gateway_cpu_percent, Some(150.0));
        assert_eq!(s.generator_cpu_percent, 50.0);
        assert_eq!(s.gateway_cpu_ms_per_message, Some(300.0));
    }
}
