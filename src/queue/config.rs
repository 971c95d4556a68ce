//! The `[queue]` section of `as4gate.toml`: which backend carries work items and how.
//!
//! Durations are written as text with a unit (`"250ms"`, `"30s"`, `"5m"`, `"2h"`), so a
//! config reads the way operators think. Every limit has a documented default and a
//! range that [`QueueConfig::problems`] checks; none can be switched off with a zero.
//! The retry schedule is data: [`QueueConfig::retry_delay`] answers "after a failed attempt
//! `n`, wait how long (or give up)?", and with RabbitMQ each delay is one retry-tier queue.

use std::num::NonZeroU16;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Most retry tiers (each is one broker queue with RabbitMQ).
pub const MAX_RETRY_TIERS: usize = 32;

/// Longest retry delay: AMQP's `x-message-ttl` is a 32-bit count of milliseconds.
pub const MAX_RETRY_DELAY: Duration = Duration::from_millis(u32::MAX as u64);

/// Longest queue-name prefix: broker names are at most 255 bytes and suffixes are added.
pub const MAX_PREFIX_BYTES: usize = 200;

/// Default of [`QueueConfig::prefetch`].
const DEFAULT_PREFETCH: NonZeroU16 = NonZeroU16::new(256).unwrap();

/// Default of [`QueueConfig::relay_batch`].
const DEFAULT_RELAY_BATCH: NonZeroU16 = NonZeroU16::new(256).unwrap();

/// Which implementation carries the work items.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum QueueBackendKind {
    /// Tables in the gateway's own SQLite database (default; needs no broker).
    #[default]
    Embedded,
    /// RabbitMQ quorum queues, published through the SQLite outbox.
    Rabbitmq,
}

/// Queue configuration (`[queue]` in `as4gate.toml`).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct QueueConfig {
    /// `embedded` (default) or `rabbitmq`.
    pub backend: QueueBackendKind,
    /// AMQP URI of the broker, used with `rabbitmq` (default
    /// `amqp://127.0.0.1:5672/%2f`, the default vhost as user `guest`).
    pub url: String,
    /// Prefix of every queue and exchange name (default `as4gate`). Gateways sharing a
    /// broker and a work stream use the same prefix.
    pub prefix: String,
    /// Most unsettled deliveries one consumer holds at a time (default 256; AMQP
    /// `basic.qos` with RabbitMQ).
    pub prefetch: NonZeroU16,
    /// Delays before the 2nd, 3rd, … attempt (default `["30s", "2m", "10m", "1h", "6h"]`).
    /// An item whose attempts are used up is dead-lettered. With RabbitMQ each delay is one
    /// retry-tier queue and a requested delay is rounded up to the next tier.
    #[serde(deserialize_with = "durations")]
    pub retry_delays: Vec<Duration>,
    /// Embedded: how long a delivered, unsettled item stays invisible before it is delivered
    /// again (at-least-once after a crash; default `"5m"`).
    #[serde(deserialize_with = "duration")]
    pub lease: Duration,
    /// Embedded consumers and the outbox relay look for due items at least this often
    /// (default `"250ms"`; [`super::Queue::wake`] wakes them at once).
    #[serde(deserialize_with = "duration")]
    pub poll_interval: Duration,
    /// Most outbox rows the relay publishes per round trip of confirms (default 256).
    pub relay_batch: NonZeroU16,
    /// First pause before reconnecting to the broker; doubled per failure (default `"500ms"`).
    #[serde(deserialize_with = "duration")]
    pub reconnect_min: Duration,
    /// Longest pause between reconnection attempts (default `"30s"`).
    #[serde(deserialize_with = "duration")]
    pub reconnect_max: Duration,
    /// How long a publish waits for a broker connection before failing (default `"30s"`).
    #[serde(deserialize_with = "duration")]
    pub publish_timeout: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            backend: QueueBackendKind::Embedded,
            url: "amqp://127.0.0.1:5672/%2f".into(),
            prefix: "as4gate".into(),
            prefetch: DEFAULT_PREFETCH,
            retry_delays: [30, 120, 600, 3600, 21600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            lease: Duration::from_secs(300),
            poll_interval: Duration::from_millis(250),
            relay_batch: DEFAULT_RELAY_BATCH,
            reconnect_min: Duration::from_millis(500),
            reconnect_max: Duration::from_secs(30),
            publish_timeout: Duration::from_secs(30),
        }
    }
}

impl QueueConfig {
    /// How long to wait after failed attempt number `attempt` (0 for the first try), or
    /// `None` when the attempts are used up and the item goes to the dead-letter queue.
    pub fn retry_delay(&self, attempt: u32) -> Option<Duration> {
        self.retry_delays.get(attempt as usize).copied()
    }

    /// Every problem with this section, each naming its key (empty when usable). Config
    /// loading adds these to the problems it reports at once.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.backend == QueueBackendKind::Rabbitmq && self.retry_delays.is_empty() {
            problems.push("queue.retry_delays: RabbitMQ needs at least one delay (tier)".into());
        }
        if self.retry_delays.len() > MAX_RETRY_TIERS {
            problems.push(format!(
                "queue.retry_delays: {} delays given, at most {MAX_RETRY_TIERS} allowed",
                self.retry_delays.len()
            ));
        }
        for (i, delay) in self.retry_delays.iter().enumerate() {
            if delay.is_zero() || *delay > MAX_RETRY_DELAY {
                problems.push(format!(
                    "queue.retry_delays[{i}]: must be between 1ms and {}ms",
                    MAX_RETRY_DELAY.as_millis()
                ));
            }
        }
        if self.prefix.is_empty()
            || self.prefix.len() > MAX_PREFIX_BYTES
            || !self
                .prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            problems.push(format!(
                "queue.prefix: 1 to {MAX_PREFIX_BYTES} characters of A-Z, a-z, 0-9, '-', '_', '.'"
            ));
        }
        for (key, value) in [
            ("lease", self.lease),
            ("poll_interval", self.poll_interval),
            ("reconnect_min", self.reconnect_min),
            ("reconnect_max", self.reconnect_max),
            ("publish_timeout", self.publish_timeout),
        ] {
            if value.is_zero() {
                problems.push(format!("queue.{key}: must be longer than zero"));
            }
        }
        if self.reconnect_max < self.reconnect_min {
            problems.push("queue.reconnect_max: shorter than queue.reconnect_min".into());
        }
        if self.backend == QueueBackendKind::Rabbitmq
            && self.url.parse::<lapin::uri::AMQPUri>().is_err()
        {
            problems.push("queue.url: not an amqp:// or amqps:// URI".into());
        }
        problems
    }
}

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"2h"` or `"1d"` (a whole number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}`: add a unit (ms, s, m, h or d)"))?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a whole number before the unit"))?;
    let unit_ms: u64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "`{text}`: unknown unit `{unit}` (ms, s, m, h or d)"
            ));
        }
    };
    number
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("`{text}`: too long"))
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

fn durations<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Duration>, D::Error> {
    Vec::<String>::deserialize(deserializer)?
        .iter()
        .map(|text| parse_duration(text).map_err(serde::de::Error::custom))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_usable() {
        let config: QueueConfig = toml::from_str("").unwrap();
        assert_eq!(config, QueueConfig::default());
        assert!(config.problems().is_empty());
        assert_eq!(config.retry_delay(0), Some(Duration::from_secs(30)));
        assert_eq!(config.retry_delay(5), None);
    }

    #[test]
    fn parses_rabbitmq_section() {
        let config: QueueConfig = toml::from_str(
            r#"
            backend = "rabbitmq"
            url = "amqp://gw:secret@mq.example:5672/as4"
            prefix = "gw-1"
            prefetch = 8
            retry_delays = ["500ms", "1m", "1h"]
            lease = "2m"
            "#,
        )
        .unwrap();
        assert_eq!(config.backend, QueueBackendKind::Rabbitmq);
        assert_eq!(config.prefetch.get(), 8);
        assert_eq!(
            config.retry_delays,
            [500, 60_000, 3_600_000].map(Duration::from_millis)
        );
        assert_eq!(config.lease, Duration::from_secs(120));
        assert!(config.problems().is_empty(), "{:?}", config.problems());
    }

    #[test]
    fn rejects_unknown_keys_zero_prefetch_and_bad_durations() {
        assert!(
            toml::from_str::<QueueConfig>("prefetchh = 3")
                .unwrap_err()
                .to_string()
                .contains("unknown field `prefetchh`")
        );
        assert!(toml::from_str::<QueueConfig>("prefetch = 0").is_err());
        let err = toml::from_str::<QueueConfig>(r#"lease = "5""#).unwrap_err();
        assert!(err.to_string().contains("add a unit"), "{err}");
        let err = toml::from_str::<QueueConfig>(r#"lease = "5 weeks""#).unwrap_err();
        assert!(err.to_string().contains("unknown unit"), "{err}");
    }

    #[test]
    fn problems_name_their_keys() {
        let config = QueueConfig {
            backend: QueueBackendKind::Rabbitmq,
            url: "http://nope".into(),
            prefix: "bad prefix".into(),
            retry_delays: vec![Duration::ZERO],
            reconnect_min: Duration::from_secs(10),
            reconnect_max: Duration::from_secs(1),
            ..QueueConfig::default()
        };
        assert_eq!(
            config.problems(),
            [
                "queue.retry_delays[0]: must be between 1ms and 4294967295ms",
                "queue.prefix: 1 to 200 characters of A-Z, a-z, 0-9, '-', '_', '.'",
                "queue.reconnect_max: shorter than queue.reconnect_min",
                "queue.url: not an amqp:// or amqps:// URI",
            ]
        );
    }

    #[test]
    fn parses_duration_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("99999999999999999999h").is_err());
    }
}
