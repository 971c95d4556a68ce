//! Two gateways on loopback for the sending tests: C2 (`blue_gw`, the sender) and C3
//! (`red_gw`, the receiver), each with its own keys from test-pki (RSA for 1.15, Ed25519 and
//! X25519 for 2.0), the same P-Modes, and a store to watch.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use as4gate::config::Config;
use as4gate::gateway::{Running, start};
use as4gate::outbound::submit::{PayloadSource, Submission, SubmittedPayload, submit};
use as4gate::store::{MessageDetail, Store};

use super::repo;

/// A blue_gw → red_gw P-Mode; the action is the id, so every P-Mode matches on its own.
#[derive(Debug, Clone)]
pub struct PModeFile {
    /// Id and action.
    pub id: String,
    /// `edelivery-as4-1.15` or `edelivery-as4-2.0`.
    pub profile: String,
    /// `push` or `pull`.
    pub binding: &'static str,
    /// Encrypt payloads.
    pub encrypt: bool,
    /// Gzip payloads.
    pub compress: bool,
    /// Reception awareness: retries after the first attempt, one second apart.
    pub max_retries: u32,
    /// The MPC, when not the default one.
    pub mpc: Option<String>,
}

impl PModeFile {
    /// A signed, encrypted, compressed push P-Mode with 30 retries.
    pub fn new(id: &str, profile: &str) -> PModeFile {
        PModeFile {
            id: id.into(),
            profile: profile.into(),
            binding: "push",
            encrypt: true,
            compress: true,
            max_retries: 30,
            mpc: None,
        }
    }

    /// The P-Mode file's text.
    pub fn toml(&self) -> String {
        let Self {
            id,
            profile,
            binding,
            encrypt,
            compress,
            max_retries,
            mpc,
        } = self;
        let mpc = mpc
            .as_ref()
            .map(|m| format!("mpc = \"{m}\""))
            .unwrap_or_default();
        format!(
            r#"
[pmode]
id = "{id}"
mep = "one-way"
binding = "{binding}"
[pmode.agreement]
value = "urn:as4gate:agreements:sample"
[pmode.initiator]
party_id = "blue_gw"
party_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
role = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator"
[pmode.responder]
party_id = "red_gw"
party_type = "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
role = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder"
[pmode.business]
service = "urn:as4gate:services:test-documents"
service_type = "urn:as4gate:service-type"
action = "{id}"
{mpc}
[pmode.security]
profile = "{profile}"
sign = true
encrypt = {encrypt}
[pmode.payload]
compress = {compress}
[pmode.reception_awareness]
max_retries = {max_retries}
retry_interval_secs = 1
backoff = "constant"
"#
        )
    }
}

/// The MPC of the pull P-Mode `b2r-pull`.
pub const PULL_MPC: &str = "urn:as4gate:mpc:red-inbox";

/// The P-Modes both gateways load.
pub fn pmode_files() -> Vec<PModeFile> {
    let mut plain_115 = PModeFile::new("b2r-115-plain", "edelivery-as4-1.15");
    plain_115.compress = false;
    let mut plain_20 = PModeFile::new("b2r-20-plain", "edelivery-as4-2.0");
    plain_20.compress = false;
    let mut give_up = PModeFile::new("b2r-115-give-up", "edelivery-as4-1.15");
    give_up.max_retries = 2;
    let mut pull = PModeFile::new("b2r-pull", "edelivery-as4-1.15");
    pull.binding = "pull";
    pull.max_retries = 2;
    pull.mpc = Some(PULL_MPC.into());
    vec![
        PModeFile::new("b2r-115", "edelivery-as4-1.15"),
        plain_115,
        PModeFile::new("b2r-20", "edelivery-as4-2.0"),
        plain_20,
        give_up,
        pull,
    ]
}

/// Writes the configuration of `me` (talking to `other`) into `dir`: its keys, `listen` (a
/// `[listen]` table), the partner with `partner` appended to its table, then `extra`.
pub fn write_config(
    dir: &Path,
    me: &str,
    other: &str,
    listen: &str,
    partner: &str,
    extra: &str,
) -> PathBuf {
    let pki = repo().join("test-pki");
    let pki = pki.display();
    let pmodes = dir.join("pmodes");
    std::fs::create_dir_all(&pmodes).unwrap();
    for p in pmode_files() {
        std::fs::write(pmodes.join(format!("{}.toml", p.id)), p.toml()).unwrap();
    }
    let text = format!(
        r#"
data_dir = "{data}"
pmodes_dir = "{pmodes}"

[gateway]
party_id = "{me}"
signing_certificate = "{pki}/{me}/rsa.crt"
signing_key = "{pki}/{me}/rsa.key"
trust_anchors = ["{pki}/ca/ca.crt"]

[gateway.edelivery_2_0]
signing_certificate = "{pki}/{me}/ed25519.crt"
signing_key = "{pki}/{me}/ed25519.key"
decryption_certificate = "{pki}/{me}/x25519.crt"
decryption_key = "{pki}/{me}/x25519.key"

{listen}

[queue]
poll_interval = "100ms"

[[partner]]
party_id = "{other}"
signing_certificates = ["{pki}/{other}/rsa.crt", "{pki}/{other}/ed25519.crt"]
encryption_certificates = ["{pki}/{other}/rsa.crt", "{pki}/{other}/x25519.crt"]
{partner}

{extra}
"#,
        data = dir.join("data").display(),
        pmodes = pmodes.display(),
    );
    let path = dir.join("as4gate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A plain-HTTP `[listen]` table on `address`.
pub fn http_listener(address: &str) -> String {
    format!("[listen]\nhttp = \"{address}\"")
}

/// The partner keys for sending to `endpoint` with a 5 s timeout.
pub fn endpoint(url: &str) -> String {
    format!("endpoint = \"{url}\"\ntimeout = \"5s\"")
}

/// A gateway running in this test process.
pub struct Node {
    _dir: tempfile::TempDir,
    /// The started gateway.
    pub running: Running,
}

impl Node {
    /// Starts the gateway of `config` (written into `dir`).
    pub async fn start(dir: tempfile::TempDir, config: &Path) -> Node {
        let running = start(Config::load(config).unwrap()).await.unwrap();
        Node { _dir: dir, running }
    }

    /// `me` talking to `other`, on plain HTTP at `listen`, sending to `endpoint_url` when set,
    /// with `extra` appended to its configuration.
    pub async fn http(
        me: &str,
        other: &str,
        listen: &str,
        endpoint_url: Option<&str>,
        extra: &str,
    ) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let partner = endpoint_url.map(endpoint).unwrap_or_default();
        let config = write_config(
            dir.path(),
            me,
            other,
            &http_listener(listen),
            &partner,
            extra,
        );
        Node::start(dir, &config).await
    }

    /// The plain-HTTP AS4 URL.
    pub fn url(&self) -> String {
        format!("http://{}/as4", self.running.http.unwrap())
    }

    /// The message store.
    pub fn store(&self) -> &Store {
        &self.running.shared.store
    }

    /// Submits `payloads` (bytes, MIME type) under `pmode` with a `finalRecipient`.
    pub async fn submit(&self, pmode: &str, payloads: &[(&[u8], &str)]) -> String {
        let shared = &self.running.shared;
        submit(
            &shared.gateway,
            &shared.store,
            &shared.blobs,
            Submission {
                pmode_id: pmode.into(),
                final_recipient: Some("urn:as4gate:test:recipient".into()),
                payloads: payloads
                    .iter()
                    .map(|(bytes, mime)| SubmittedPayload {
                        source: PayloadSource::Bytes(bytes.to_vec()),
                        mime_type: (*mime).into(),
                        character_set: None,
                        content_id: None,
                    })
                    .collect(),
                ..Submission::default()
            },
        )
        .await
        .unwrap()
        .message_id
    }
}

/// Waits until message `id` in `store` is in `state`; panics with its history otherwise.
pub async fn wait_state(store: &Store, id: &str, state: &str, timeout: Duration) -> MessageDetail {
    let start = Instant::now();
    loop {
        let detail = store.message(id).await.unwrap();
        if let Some(d) = &detail
            && d.state == state
        {
            return detail.unwrap();
        }
        if start.elapsed() > timeout {
            panic!(
                "{id} not {state} after {timeout:?}: {:?}",
                detail.map(|d| (d.state, d.history))
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many history entries of message `detail` are `state`.
pub fn count(detail: &MessageDetail, state: &str) -> usize {
    detail.history.iter().filter(|h| h.state == state).count()
}
