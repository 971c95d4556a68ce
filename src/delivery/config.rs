//! The configuration of one back-end push target (`[[backend]]` in `as4gate.toml`): where
//! received messages are pushed, over which binding, how many at once, how long one exchange
//! may take, the retry schedule, and TLS client credentials for `https` back-ends.
//!
//! Durations are text with a unit (`"500ms"`, `"30s"`, `"5m"`), as in the `[queue]` section.
//! Every limit has a documented default and a range that [`BackendConfig::problems`] checks;
//! none can be switched off with a zero. The retry schedule is data:
//! [`RetrySchedule::next_delay`] answers "after failed attempt `n`, wait how long, or give up?".

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Deserializer};

use crate::queue::config::parse_duration;

/// Most exchanges one back-end may have in flight at once (`concurrency`).
pub const MAX_CONCURRENCY: usize = 1024;

/// Longest allowed exchange timeout: a back-end that needs longer than this to answer is
/// treated as unreachable.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(3600);

/// Most attempts of one delivery (`retry.max_attempts`).
pub const MAX_ATTEMPTS: u32 = 1000;

/// Default of [`BackendConfig::timeout`].
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Default of [`BackendConfig::concurrency`].
const DEFAULT_CONCURRENCY: usize = 4;
/// Default of [`RetrySchedule::interval`].
const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// Default of [`RetrySchedule::max_interval`].
const DEFAULT_MAX_INTERVAL: Duration = Duration::from_secs(3600);
/// Default of [`RetrySchedule::max_attempts`].
const DEFAULT_MAX_ATTEMPTS: u32 = 10;

/// One back-end that received messages are pushed to.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendConfig {
    /// Name of the back-end (the queue's subscriber name). Required.
    pub id: String,
    /// Interface the back-end implements. Required.
    pub binding: Binding,
    /// Endpoint, `http://` or `https://`. Required.
    pub url: String,
    /// Limit for one whole exchange: connect, TLS, sending the request with all payloads and
    /// reading the answer. Default `"30s"`, at most [`MAX_TIMEOUT`].
    #[serde(default = "default_timeout", deserialize_with = "duration")]
    pub timeout: Duration,
    /// Most exchanges in flight to this back-end at once. Default 4, 1 to [`MAX_CONCURRENCY`].
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// When to try again after a failed attempt. Defaults as documented on [`RetrySchedule`].
    #[serde(default)]
    pub retry: RetrySchedule,
    /// TLS client settings for an `https` back-end; without it the platform has no trust
    /// anchors, so `https` URLs need at least `tls.ca`.
    #[serde(default)]
    pub tls: Option<BackendTls>,
}

/// The interface a back-end implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Binding {
    /// `multipart/form-data` POST: a JSON `metadata` part, then one part per payload.
    Rest,
    /// SOAP 1.2 `deliverMessage` with payloads as SwA attachments.
    Soap,
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    /// Every retry waits `interval`.
    Fixed,
    /// Retry `n` (from 0) waits `interval * 2^n`, capped at `max_interval`. The default.
    #[default]
    Exponential,
}

/// The retry schedule of one back-end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetrySchedule {
    /// Delay before the first retry. Default `"30s"`; at least 1 ms.
    #[serde(deserialize_with = "duration")]
    pub interval: Duration,
    /// `"fixed"` or `"exponential"` (default).
    pub backoff: Backoff,
    /// Longest delay between two attempts. Default `"1h"`; at least `interval`.
    #[serde(deserialize_with = "duration")]
    pub max_interval: Duration,
    /// Attempts in all, the first one included; after that many the message is
    /// dead-lettered. Default 10, 1 to [`MAX_ATTEMPTS`].
    pub max_attempts: u32,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            interval: DEFAULT_INTERVAL,
            backoff: Backoff::Exponential,
            max_interval: DEFAULT_MAX_INTERVAL,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
        }
    }
}

impl RetrySchedule {
    /// After failed attempt `attempt` (0 = the first attempt), how long to wait before the
    /// next one; `None` when the attempts are used up.
    pub fn next_delay(&self, attempt: u32) -> Option<Duration> {
        if attempt.saturating_add(1) >= self.max_attempts {
            return None;
        }
        let delay = match self.backoff {
            Backoff::Fixed => self.interval,
            Backoff::Exponential => 2u32
                .checked_pow(attempt)
                .and_then(|factor| self.interval.checked_mul(factor))
                .unwrap_or(self.max_interval),
        };
        Some(delay.min(self.max_interval))
    }
}

/// TLS client settings for an `https` back-end (TLS 1.2 and 1.3 only).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackendTls {
    /// PEM file of the CA certificates the back-end's server certificate must chain to.
    pub ca: PathBuf,
    /// PEM certificate chain presented to the back-end (mutual TLS); needs `key`.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// PKCS#8 PEM private key of `certificate`.
    #[serde(default)]
    pub key: Option<PathBuf>,
}

impl BackendConfig {
    /// Every problem with this back-end's settings (empty when usable), so that all of them
    /// are reported together.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        let id = &self.id;
        if self.id.trim().is_empty() {
            out.push("backend id must not be empty".to_owned());
        }
        match self.url.parse::<hyper::Uri>() {
            Ok(uri) => match uri.scheme_str() {
                Some("http") | Some("https") if uri.host().is_some() => {
                    if uri.scheme_str() == Some("https") && self.tls.is_none() {
                        out.push(format!("backend {id}: an https url needs [tls] ca"));
                    }
                }
                _ => out.push(format!(
                    "backend {id}: url `{}` must be http:// or https:// with a host",
                    self.url
                )),
            },
            Err(e) => out.push(format!("backend {id}: url `{}`: {e}", self.url)),
        }
        if self.timeout.is_zero() || self.timeout > MAX_TIMEOUT {
            out.push(format!(
                "backend {id}: timeout must be between 1ms and {MAX_TIMEOUT:?}"
            ));
        }
        if self.concurrency == 0 || self.concurrency > MAX_CONCURRENCY {
            out.push(format!(
                "backend {id}: concurrency must be between 1 and {MAX_CONCURRENCY}"
            ));
        }
        let retry = &self.retry;
        if retry.interval.is_zero() {
            out.push(format!("backend {id}: retry.interval must be at least 1ms"));
        }
        if retry.max_interval < retry.interval {
            out.push(format!(
                "backend {id}: retry.max_interval must not be shorter than retry.interval"
            ));
        }
        if retry.max_attempts == 0 || retry.max_attempts > MAX_ATTEMPTS {
            out.push(format!(
                "backend {id}: retry.max_attempts must be between 1 and {MAX_ATTEMPTS}"
            ));
        }
        if let Some(tls) = &self.tls
            && tls.certificate.is_some() != tls.key.is_some()
        {
            out.push(format!(
                "backend {id}: tls.certificate and tls.key go together"
            ));
        }
        out
    }
}

fn default_timeout() -> Duration {
    DEFAULT_TIMEOUT
}

fn default_concurrency() -> usize {
    DEFAULT_CONCURRENCY
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> BackendConfig {
        toml::from_str(
            r#"
            id = "erp"
            binding = "rest"
            url = "http://127.0.0.1:9000/deliver"
            "#,
        )
        .unwrap()
    }

    #[test]
    fn defaults_are_documented_values() {
        let c = minimal();
        assert_eq!(c.binding, Binding::Rest);
        assert_eq!(c.timeout, Duration::from_secs(30));
        assert_eq!(c.concurrency, 4);
        assert_eq!(c.retry, RetrySchedule::default());
        assert_eq!(c.retry.backoff, Backoff::Exponential);
        assert_eq!(c.retry.max_attempts, 10);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn exponential_schedule_doubles_caps_and_ends() {
        let r = RetrySchedule {
            interval: Duration::from_secs(30),
            backoff: Backoff::Exponential,
            max_interval: Duration::from_secs(200),
            max_attempts: 5,
        };
        let delays: Vec<_> = (0..6).map(|a| r.next_delay(a)).collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_secs(30)),
                Some(Duration::from_secs(60)),
                Some(Duration::from_secs(120)),
                Some(Duration::from_secs(200)),
                None,
                None
            ]
        );
        // Huge attempt numbers saturate at max_interval instead of overflowing.
        let r = RetrySchedule {
            max_attempts: MAX_ATTEMPTS,
            ..r
        };
        assert_eq!(r.next_delay(500), Some(Duration::from_secs(200)));
    }

    #[test]
    fn fixed_schedule_repeats_interval() {
        let r = RetrySchedule {
            backoff: Backoff::Fixed,
            max_attempts: 3,
            ..RetrySchedule::default()
        };
        assert_eq!(r.next_delay(0), Some(Duration::from_secs(30)));
        assert_eq!(r.next_delay(1), Some(Duration::from_secs(30)));
        assert_eq!(r.next_delay(2), None);
    }

    #[test]
    fn parses_full_section() {
        let c: BackendConfig = toml::from_str(
            r#"
            id = "dms"
            binding = "soap"
            url = "https://dms.example/as4"
            timeout = "5s"
            concurrency = 2
            retry = { interval = "500ms", backoff = "fixed", max_interval = "1m", max_attempts = 3 }
            tls = { ca = "ca.pem", certificate = "c.pem", key = "k.pem" }
            "#,
        )
        .unwrap();
        assert_eq!(c.binding, Binding::Soap);
        assert_eq!(c.timeout, Duration::from_secs(5));
        assert_eq!(c.retry.interval, Duration::from_millis(500));
        assert_eq!(c.retry.backoff, Backoff::Fixed);
        assert!(c.problems().is_empty(), "{:?}", c.problems());
    }

    #[test]
    fn rejects_unknown_keys_and_reports_all_problems() {
        let unknown = toml::from_str::<BackendConfig>(
            "id = \"x\"\nbinding = \"rest\"\nurl = \"http://h/\"\ntimout = \"1s\"",
        )
        .unwrap_err();
        assert!(unknown.to_string().contains("timout"), "{unknown}");
        let bad_binding =
            toml::from_str::<BackendConfig>("id = \"x\"\nbinding = \"jms\"\nurl = \"http://h/\"")
                .unwrap_err();
        assert!(bad_binding.to_string().contains("jms"), "{bad_binding}");
        let mut c = minimal();
        c.url = "https://secure.example/".into();
        c.concurrency = 0;
        c.retry.max_attempts = 0;
        c.tls = Some(BackendTls {
            ca: "ca.pem".into(),
            certificate: Some("c.pem".into()),
            key: None,
        });
        let problems = c.problems();
        assert_eq!(problems.len(), 3, "{problems:?}");
        c.tls = None;
        assert!(c.problems().iter().any(|p| p.contains("https url needs")));
    }
}
