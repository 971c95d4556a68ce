//! Gateway configuration: one TOML file (`as4gate.toml`) read into typed structs whose doc
//! comments are the reference.
//!
//! Loading collects every problem it finds (unknown keys, missing files, bad values) and
//! reports them all at once with the key that caused each, so an operator fixes a config in one
//! pass. Relative paths are resolved against the directory of the config file. Without a config
//! file the gateway runs on [`Config::embedded`]: the sample configuration in `samples/`, which
//! uses the committed **test** PKI and an SQLite store under `./data`, so a fresh checkout runs
//! with no broker and no database server.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::delivery::BackendConfig;
use crate::delivery::routing::{DeliveryQueueConfig, Router, SubscriptionConfig};
use crate::queue::QueueConfig;

/// The sample configuration compiled into the binary, used when no config file exists.
const EMBEDDED_CONFIG: &str = include_str!("../samples/as4gate.toml");

/// Directory the embedded configuration's relative paths are resolved against.
const EMBEDDED_BASE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");

/// The whole gateway configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory for the SQLite database, payload blobs and spool files. Created if missing.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// This gateway's own identity: party id, signing and decryption keys, trust anchors.
    pub gateway: GatewayConfig,
    /// Where the AS4 endpoint (`POST /as4`) listens.
    #[serde(default)]
    pub listen: ListenConfig,
    /// Directory of P-Mode TOML files.
    pub pmodes_dir: PathBuf,
    /// Hard limits applied to every inbound request.
    #[serde(default)]
    pub limits: LimitsConfig,
    /// Storage tuning.
    #[serde(default)]
    pub store: StoreConfig,
    /// The partners this gateway exchanges messages with.
    #[serde(default, rename = "partner")]
    pub partners: Vec<PartnerConfig>,
    /// The queue that carries delivery work (embedded by default).
    #[serde(default)]
    pub queue: QueueConfig,
    /// Institution back-ends received messages are pushed to.
    #[serde(default, rename = "backend")]
    pub backends: Vec<BackendConfig>,
    /// Delivery queues: which messages go where, and their time-to-live.
    #[serde(default, rename = "delivery_queue")]
    pub delivery_queues: Vec<DeliveryQueueConfig>,
    /// Subscriptions of back-ends to delivery queues.
    #[serde(default, rename = "subscription")]
    pub subscriptions: Vec<SubscriptionConfig>,
    /// Pull P-Modes this gateway pulls messages for (it is their responder).
    #[serde(default, rename = "pull")]
    pub pulls: Vec<PullConfig>,
}

/// Pulling from a partner (`[[pull]]`): a PullRequest on the P-Mode's MPC to the P-Mode's
/// initiator every `interval` (at once again after each message received).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PullConfig {
    /// The pull P-Mode (binding `pull`, this gateway its responder).
    pub pmode: String,
    /// Pause between PullRequests while the MPC is empty. Default `"10s"`, at least 100 ms.
    #[serde(default = "default_pull_interval", deserialize_with = "duration")]
    pub interval: std::time::Duration,
}

fn default_pull_interval() -> std::time::Duration {
    std::time::Duration::from_secs(10)
}

/// This gateway's identity and key material.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Our ebMS PartyId value (as P-Modes name it).
    pub party_id: String,
    /// PEM certificate whose key signs receipts and error signals.
    pub signing_certificate: PathBuf,
    /// PKCS#8 PEM private key for `signing_certificate`.
    pub signing_key: PathBuf,
    /// PEM certificate partners encrypt to; defaults to `signing_certificate`.
    pub decryption_certificate: Option<PathBuf>,
    /// PKCS#8 PEM private key for `decryption_certificate`; defaults to `signing_key`.
    pub decryption_key: Option<PathBuf>,
    /// PEM files with the CA certificates that partner signing certificates must chain to.
    pub trust_anchors: Vec<PathBuf>,
    /// Keys for eDelivery AS4 2.0 P-Modes (Ed25519 or ECDSA P-256 signing, X25519 or P-256
    /// decryption); the keys above serve 1.15. Without it, 2.0 P-Modes are refused at start.
    #[serde(default)]
    pub edelivery_2_0: Option<KeySetConfig>,
}

/// A signing and a decryption key with their certificates.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeySetConfig {
    /// PEM certificate of the signing key.
    pub signing_certificate: PathBuf,
    /// PKCS#8 PEM signing key.
    pub signing_key: PathBuf,
    /// PEM certificate partners encrypt to.
    pub decryption_certificate: PathBuf,
    /// PKCS#8 PEM private key of `decryption_certificate`.
    pub decryption_key: PathBuf,
}

/// Listeners. At least one of `http` and `https` must be set.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct ListenConfig {
    /// Plain HTTP listener address, for use behind a TLS-terminating proxy or on loopback.
    pub http: Option<SocketAddr>,
    /// HTTPS listener (rustls, TLS 1.2 and 1.3 only).
    pub https: Option<HttpsConfig>,
}

/// The HTTPS listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpsConfig {
    /// Address to bind.
    pub address: SocketAddr,
    /// PEM server certificate chain (leaf first).
    pub certificate: PathBuf,
    /// PKCS#8 PEM private key of the server certificate.
    pub key: PathBuf,
    /// Whether TLS client certificates are asked for: `none`, `optional` or `required`.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// PEM CA certificates that client certificates must chain to (required unless `none`).
    #[serde(default)]
    pub client_ca: Vec<PathBuf>,
}

/// TLS client-certificate policy of the HTTPS listener.
#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// No client certificate is requested.
    #[default]
    None,
    /// A client certificate is requested and verified when presented.
    Optional,
    /// The handshake fails without a valid client certificate.
    Required,
}

/// Inbound limits. Every one is explicit; none can be switched off.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsConfig {
    /// Largest HTTP request body accepted, in bytes (default 2 GiB).
    pub max_body_bytes: u64,
    /// Largest SOAP envelope (the root MIME part), in bytes (default 4 MiB).
    pub max_envelope_bytes: usize,
    /// Most MIME parts in one message, root part included (default 100).
    pub max_mime_parts: usize,
    /// Deepest XML element nesting accepted in the envelope (default 64).
    pub max_xml_depth: usize,
    /// Largest decompressed size of one payload, in bytes (default 2 GiB).
    pub max_decompressed_bytes: u64,
    /// Most `ds:Reference` elements in one signature (default 64).
    pub max_references: usize,
    /// Largest X.509 certificate accepted in a security token, in bytes (default 16 KiB).
    pub max_certificate_bytes: usize,
    /// Attachments up to this size are kept in memory while processing, and so are composed
    /// parts of a message being sent; larger ones spool to disk (default 1 MiB).
    pub spool_threshold_bytes: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 2 * 1024 * 1024 * 1024,
            max_envelope_bytes: 4 * 1024 * 1024,
            max_mime_parts: 100,
            max_xml_depth: 64,
            max_decompressed_bytes: 2 * 1024 * 1024 * 1024,
            max_references: 64,
            max_certificate_bytes: 16 * 1024,
            spool_threshold_bytes: 1024 * 1024,
        }
    }
}

/// Storage options.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreConfig {
    /// SQLite `synchronous` mode: `full` (default; durable across power loss) or `normal`
    /// (durable across a process crash only).
    pub sqlite_synchronous: SqliteSynchronous,
    /// Payloads up to this size (after decompression) are stored in the database row, made
    /// durable by the message's own transaction; larger ones become blob files (default
    /// 64 KiB).
    pub inline_payload_bytes: usize,
}

impl Default for StoreConfig {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSynchronous::Full,
            inline_payload_bytes: 64 * 1024,
        }
    }
}

/// SQLite durability mode (see [`StoreConfig::sqlite_synchronous`]).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SqliteSynchronous {
    /// fsync on every commit.
    Full,
    /// fsync at WAL checkpoints only.
    Normal,
}

/// A partner gateway.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartnerConfig {
    /// The partner's ebMS PartyId value (as P-Modes name it).
    pub party_id: String,
    /// PEM certificates the partner signs with. A message from this party must be signed by
    /// one of them (and the certificate must chain to a trust anchor and be in its validity
    /// period). Also used to resolve issuer-serial and subject-key-identifier references.
    pub signing_certificates: Vec<PathBuf>,
    /// PEM certificates the partner may present as a TLS client. When set, a request for this
    /// partner over HTTPS must come with one of them.
    #[serde(default)]
    pub tls_client_certificates: Vec<PathBuf>,
    /// Where messages to this partner are sent (`https://…/as4`; `http://` for loopback tests
    /// and TLS-terminating proxies). Without it nothing can be sent to the partner.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// PEM certificates the partner decrypts with: RSA for eDelivery AS4 1.15 P-Modes, X25519
    /// (or P-256) for 2.0; the one matching the P-Mode's profile is used.
    #[serde(default)]
    pub encryption_certificates: Vec<PathBuf>,
    /// TLS client settings for an `https` endpoint: the CA the partner's server certificate
    /// must chain to and our client certificate (mutual TLS).
    #[serde(default)]
    pub tls: Option<crate::delivery::BackendTls>,
    /// Limit for one send: connect, TLS, request and the synchronous receipt. Default `"60s"`.
    #[serde(default = "default_send_timeout", deserialize_with = "duration")]
    pub timeout: std::time::Duration,
    /// Most sends to this partner in flight at once (connections and exchanges). Default 64.
    #[serde(default = "default_send_concurrency")]
    pub concurrency: usize,
}

impl PartnerConfig {
    /// The HTTP settings for sending to this partner, when it has an endpoint: at most
    /// `concurrency` exchanges at once, `timeout` each, TLS per `tls`.
    pub fn transport(&self) -> Option<BackendConfig> {
        let url = self.endpoint.clone()?;
        Some(BackendConfig {
            id: self.party_id.clone(),
            binding: crate::delivery::Binding::Rest,
            url,
            timeout: self.timeout,
            concurrency: self.concurrency,
            retry: crate::delivery::RetrySchedule::default(),
            tls: self.tls.clone(),
        })
    }
}

fn default_send_concurrency() -> usize {
    64
}

fn default_send_timeout() -> std::time::Duration {
    std::time::Duration::from_secs(60)
}

fn duration<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<std::time::Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    crate::queue::config::parse_duration(&text).map_err(serde::de::Error::custom)
}

/// Every problem found while loading a configuration.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration {}:\n{}", .file.display(), .problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    /// The file that was loaded (or `<embedded>`).
    pub file: PathBuf,
    /// One line per problem, naming the key.
    pub problems: Vec<String>,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from("data")
}

impl Config {
    /// Loads and checks `path`. Relative paths inside are resolved against its directory.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![format!("cannot read: {e}")],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base, path)
    }

    /// The embedded sample configuration (test PKI, SQLite under `./data`).
    pub fn embedded() -> Result<Config, ConfigError> {
        let mut config = Self::parse(
            EMBEDDED_CONFIG,
            Path::new(EMBEDDED_BASE),
            Path::new("<embedded>"),
        )?;
        // The data directory of the embedded defaults is relative to where the gateway runs.
        config.data_dir = default_data_dir();
        Ok(config)
    }

    fn parse(text: &str, base: &Path, file: &Path) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| ConfigError {
            file: file.to_owned(),
            problems: vec![e.to_string()],
        })?;
        config.resolve_paths(base);
        let problems = config.check();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError {
                file: file.to_owned(),
                problems,
            })
        }
    }

    fn resolve_paths(&mut self, base: &Path) {
        let fix = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        fix(&mut self.data_dir);
        fix(&mut self.pmodes_dir);
        let g = &mut self.gateway;
        fix(&mut g.signing_certificate);
        fix(&mut g.signing_key);
        g.decryption_certificate.iter_mut().for_each(fix);
        g.decryption_key.iter_mut().for_each(fix);
        g.trust_anchors.iter_mut().for_each(fix);
        if let Some(https) = &mut self.listen.https {
            fix(&mut https.certificate);
            fix(&mut https.key);
            https.client_ca.iter_mut().for_each(fix);
        }
        if let Some(k) = &mut g.edelivery_2_0 {
            fix(&mut k.signing_certificate);
            fix(&mut k.signing_key);
            fix(&mut k.decryption_certificate);
            fix(&mut k.decryption_key);
        }
        for p in &mut self.partners {
            p.signing_certificates.iter_mut().for_each(fix);
            p.tls_client_certificates.iter_mut().for_each(fix);
            p.encryption_certificates.iter_mut().for_each(fix);
            if let Some(tls) = &mut p.tls {
                fix(&mut tls.ca);
                tls.certificate.iter_mut().for_each(fix);
                tls.key.iter_mut().for_each(fix);
            }
        }
        for tls in self.backends.iter_mut().filter_map(|b| b.tls.as_mut()) {
            fix(&mut tls.ca);
            tls.certificate.iter_mut().for_each(fix);
            tls.key.iter_mut().for_each(fix);
        }
    }

    /// The routing table of `[[delivery_queue]]` and `[[subscription]]` (checked at load).
    pub fn router(&self) -> Result<Router, Vec<String>> {
        Router::new(
            self.delivery_queues.clone(),
            self.subscriptions.clone(),
            &self.backends,
        )
    }

    /// Checks everything that can be checked without starting: files exist, listeners set,
    /// partners unique, limits sane. Returns one line per problem.
    fn check(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut need_file = |key: &str, p: &Path| {
            if !p.is_file() {
                problems.push(format!("{key}: file not found: {}", p.display()));
            }
        };
        let g = &self.gateway;
        need_file("gateway.signing_certificate", &g.signing_certificate);
        need_file("gateway.signing_key", &g.signing_key);
        if let Some(p) = &g.decryption_certificate {
            need_file("gateway.decryption_certificate", p);
        }
        if let Some(p) = &g.decryption_key {
            need_file("gateway.decryption_key", p);
        }
        for p in &g.trust_anchors {
            need_file("gateway.trust_anchors", p);
        }
        if let Some(https) = &self.listen.https {
            need_file("listen.https.certificate", &https.certificate);
            need_file("listen.https.key", &https.key);
            for p in &https.client_ca {
                need_file("listen.https.client_ca", p);
            }
        }
        if let Some(k) = &g.edelivery_2_0 {
            need_file(
                "gateway.edelivery_2_0.signing_certificate",
                &k.signing_certificate,
            );
            need_file("gateway.edelivery_2_0.signing_key", &k.signing_key);
            need_file(
                "gateway.edelivery_2_0.decryption_certificate",
                &k.decryption_certificate,
            );
            need_file("gateway.edelivery_2_0.decryption_key", &k.decryption_key);
        }
        for (i, partner) in self.partners.iter().enumerate() {
            for p in &partner.signing_certificates {
                need_file(&format!("partner[{i}].signing_certificates"), p);
            }
            for p in &partner.encryption_certificates {
                need_file(&format!("partner[{i}].encryption_certificates"), p);
            }
            if let Some(tls) = &partner.tls {
                need_file(&format!("partner[{i}].tls.ca"), &tls.ca);
                for p in tls.certificate.iter().chain(&tls.key) {
                    need_file(&format!("partner[{i}].tls"), p);
                }
            }
            for p in &partner.tls_client_certificates {
                need_file(&format!("partner[{i}].tls_client_certificates"), p);
            }
        }
        for b in &self.backends {
            if let Some(tls) = &b.tls {
                need_file(&format!("backend {}: tls.ca", b.id), &tls.ca);
                for p in tls.certificate.iter().chain(&tls.key) {
                    need_file(&format!("backend {}: tls", b.id), p);
                }
            }
        }
        if g.decryption_certificate.is_some() != g.decryption_key.is_some() {
            problems.push(
                "gateway: decryption_certificate and decryption_key must be set together".into(),
            );
        }
        if g.trust_anchors.is_empty() {
            problems.push("gateway.trust_anchors: at least one trust anchor is required".into());
        }
        if self.listen.http.is_none() && self.listen.https.is_none() {
            problems.push("listen: set listen.http, listen.https or both".into());
        }
        if let Some(https) = &self.listen.https
            && https.client_auth != ClientAuth::None
            && https.client_ca.is_empty()
        {
            problems.push("listen.https.client_ca: required when client_auth is not none".into());
        }
        if !self.pmodes_dir.is_dir() {
            problems.push(format!(
                "pmodes_dir: directory not found: {}",
                self.pmodes_dir.display()
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, p) in self.partners.iter().enumerate() {
            if !seen.insert(p.party_id.as_str()) {
                problems.push(format!(
                    "partner[{i}].party_id: duplicate party {:?}",
                    p.party_id
                ));
            }
            if let Some(transport) = p.transport() {
                problems.extend(
                    transport
                        .problems()
                        .into_iter()
                        .map(|m| format!("partner[{i}] endpoint: {m}")),
                );
            }
            if p.signing_certificates.is_empty() {
                problems.push(format!(
                    "partner[{i}].signing_certificates: at least one certificate is required"
                ));
            }
        }
        problems.extend(
            self.queue
                .problems()
                .into_iter()
                .map(|p| format!("queue: {p}")),
        );
        let mut backend_ids = std::collections::HashSet::new();
        for b in &self.backends {
            problems.extend(b.problems());
            if !backend_ids.insert(b.id.as_str()) {
                problems.push(format!("backend {}: duplicate id", b.id));
            }
        }
        for pull in &self.pulls {
            if pull.interval < std::time::Duration::from_millis(100) {
                problems.push(format!(
                    "pull {}: interval must be at least 100ms",
                    pull.pmode
                ));
            }
        }
        if let Err(routing) = self.router() {
            problems.extend(routing);
        }
        let l = &self.limits;
        for (key, value) in [
            ("limits.max_body_bytes", l.max_body_bytes),
            ("limits.max_envelope_bytes", l.max_envelope_bytes as u64),
            ("limits.max_mime_parts", l.max_mime_parts as u64),
            ("limits.max_xml_depth", l.max_xml_depth as u64),
            ("limits.max_decompressed_bytes", l.max_decompressed_bytes),
            ("limits.max_references", l.max_references as u64),
            (
                "limits.max_certificate_bytes",
                l.max_certificate_bytes as u64,
            ),
        ] {
            if value == 0 {
                problems.push(format!(
                    "{key}: must be greater than 0 (limits cannot be switched off)"
                ));
            }
        }
        problems
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("as4gate.sqlite")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_config_loads() {
        let config = Config::embedded().expect("embedded config must be valid");
        assert_eq!(config.gateway.party_id, "red_gw");
        assert!(!config.partners.is_empty());
    }

    #[test]
    fn sample_sender_limits_its_sends_per_partner() {
        let config =
            Config::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/blue/as4gate.toml"))
                .expect("samples/blue/as4gate.toml must be valid");
        let transport = config.partners[0]
            .transport()
            .expect("red_gw has an endpoint");
        assert_eq!(transport.concurrency, 64);
    }

    #[test]
    fn every_problem_is_reported() {
        let text = r#"
            pmodes_dir = "no-such-dir"
            [gateway]
            party_id = "x"
            signing_certificate = "missing.crt"
            signing_key = "missing.key"
            trust_anchors = []
            [limits]
            max_mime_parts = 0
            [[partner]]
            party_id = "y"
            signing_certificates = ["y.crt"]
            endpoint = "http://127.0.0.1:9/as4"
            concurrency = 0
        "#;
        let err = Config::parse(text, Path::new("/nonexistent"), Path::new("t.toml")).unwrap_err();
        let all = err.problems.join("\n");
        for needle in [
            "gateway.signing_certificate",
            "gateway.signing_key",
            "gateway.trust_anchors",
            "listen:",
            "pmodes_dir",
            "limits.max_mime_parts",
            "partner[0] endpoint: backend y: concurrency must be between 1",
        ] {
            assert!(all.contains(needle), "missing {needle} in {all}");
        }
    }

    #[test]
    fn unknown_keys_are_refused() {
        let err = Config::parse(
            "pmodes_dir = \".\"\nbogus = 1\n",
            Path::new("."),
            Path::new("t.toml"),
        )
        .unwrap_err();
        assert!(err.problems[0].contains("bogus"), "{:?}", err.problems);
    }
}
