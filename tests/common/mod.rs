//! Shared harness for the end-to-end tests: a gateway (red_gw) on loopback with its own data
//! directory, the sample P-Modes plus test-only ones, the committed test PKI, and a sender
//! (blue_gw, or an impostor) that composes messages with the gateway's own composer.

#![allow(dead_code)] // each test binary uses a different subset

pub mod backend;
pub mod pair;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use as4gate::config::Config;
use as4gate::gateway::{Running, start};
use as4gate::outbound::compose::{Composed, Outgoing, OutgoingPayload, SenderKeys, compose};
use as4gate_pmode::PMode;
use as4gate_wssec::sign::SigningIdentity;

/// The repository root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path in the test PKI.
pub fn pki(rel: &str) -> PathBuf {
    repo().join("test-pki").join(rel)
}

/// A sign-only P-Mode (no encryption, no compression) used to reach the signature and
/// decompression checks with plaintext attachments.
pub fn sign_only_pmode() -> String {
    let mut file = pair::PModeFile::new("blue-to-red-sign-only", "edelivery-as4-1.15");
    file.encrypt = false;
    file.compress = false;
    file.toml()
}

/// Writes a gateway configuration (red_gw receiving from blue_gw) into `dir` and returns its
/// path. `extra` is appended verbatim (for example a `[limits]` table).
pub fn write_config(dir: &Path, extra: &str) -> PathBuf {
    let repo = repo();
    let pmodes = dir.join("pmodes");
    std::fs::create_dir_all(&pmodes).unwrap();
    for name in ["blue-to-red.toml", "ping.toml"] {
        std::fs::copy(repo.join("samples/pmodes").join(name), pmodes.join(name)).unwrap();
    }
    std::fs::write(pmodes.join("sign-only.toml"), sign_only_pmode()).unwrap();
    let text = format!(
        r#"
data_dir = "{data}"
pmodes_dir = "{pmodes}"

[gateway]
party_id = "red_gw"
signing_certificate = "{repo}/test-pki/red_gw/rsa.crt"
signing_key = "{repo}/test-pki/red_gw/rsa.key"
trust_anchors = ["{repo}/test-pki/ca/ca.crt"]

[listen]
http = "127.0.0.1:0"

[[partner]]
party_id = "blue_gw"
signing_certificates = ["{repo}/test-pki/blue_gw/rsa.crt"]

{extra}
"#,
        data = dir.join("data").display(),
        pmodes = pmodes.display(),
        repo = repo.display(),
    );
    let path = dir.join("as4gate.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A gateway running in this process.
pub struct TestGateway {
    pub dir: tempfile::TempDir,
    pub running: Running,
}

impl TestGateway {
    /// Starts a gateway with the default test configuration plus `extra`.
    pub async fn start(extra: &str) -> TestGateway {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(&write_config(dir.path(), extra)).expect("test config");
        let running = start(config).await.expect("gateway starts");
        TestGateway { dir, running }
    }

    /// The AS4 endpoint URL.
    pub fn url(&self) -> String {
        format!("http://{}/as4", self.running.http.unwrap())
    }

    /// Posts a composed message; returns status and body.
    pub async fn send(&self, composed: &Composed) -> (u16, String) {
        let (content_type, body) = composed.to_mime("MIMEBoundary_test_0123456789").unwrap();
        post(&self.url(), &content_type, body).await
    }
}

/// POSTs `body` with `content_type`; returns the status and the response body.
pub async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String) {
    as4gate::sample::post(url, content_type, body)
        .await
        .expect("HTTP exchange")
}

/// A sender: a P-Mode and the signing identity of the party that plays the initiator.
pub struct Sender {
    pub pmode: PMode,
    pub signing: SigningIdentity,
    pub receiver_certificate: Vec<u8>,
}

impl Sender {
    /// blue_gw with its RSA key, under the sample P-Mode file `pmode` (in samples/pmodes or
    /// the sign-only test P-Mode when `pmode` is "sign-only").
    pub fn blue(pmode: &str) -> Sender {
        Sender::with_key(pmode, "blue_gw/rsa")
    }

    /// A sender claiming to be blue_gw but signing with `key` (e.g. "mallory/rsa",
    /// "blue_gw/rsa-expired").
    pub fn with_key(pmode: &str, key: &str) -> Sender {
        let pmode = if pmode == "sign-only" {
            PMode::from_toml_str(&sign_only_pmode(), Path::new("sign-only.toml")).unwrap()
        } else {
            PMode::load_file(&repo().join("samples/pmodes").join(format!("{pmode}.toml"))).unwrap()
        };
        let cert = as4gate::pem::certificates(&pki(&format!("{key}.crt"))).unwrap();
        let der = as4gate::pem::pkcs8_key(&pki(&format!("{key}.key"))).unwrap();
        let signing = SigningIdentity::from_pkcs8_der(&der, &cert[0], vec![]).unwrap();
        let receiver_certificate = as4gate::pem::certificates(&pki("red_gw/rsa.crt"))
            .unwrap()
            .remove(0);
        Sender {
            pmode,
            signing,
            receiver_certificate,
        }
    }

    /// Composes a message with `payloads` (content id, mime type, bytes).
    pub fn compose(&self, message_id: &str, payloads: Vec<OutgoingPayload>) -> Composed {
        self.compose_with(message_id, &[], payloads)
    }

    /// Composes a message with message `properties` (name, value) and `payloads`.
    pub fn compose_with(
        &self,
        message_id: &str,
        properties: &[(&str, &str)],
        payloads: Vec<OutgoingPayload>,
    ) -> Composed {
        compose(
            &Outgoing {
                pmode: &self.pmode,
                message_id: message_id.to_owned(),
                conversation_id: "conversation-1".to_owned(),
                properties: properties
                    .iter()
                    .map(|(n, v)| as4gate::outbound::compose::property(n, v))
                    .collect(),
                payloads,
                now: time::OffsetDateTime::now_utc(),
            },
            &SenderKeys {
                signing: &self.signing,
                receiver_certificate: Some(&self.receiver_certificate),
            },
        )
        .unwrap()
    }
}

/// A plain payload.
pub fn payload(n: usize, mime_type: &str, content: &[u8]) -> OutgoingPayload {
    OutgoingPayload {
        content_id: format!("payload-{n}@as4gate.test"),
        mime_type: mime_type.to_owned(),
        character_set: None,
        content: content.to_vec(),
        already_compressed: false,
    }
}

/// The `errorCode` of an ebMS error signal in `body`, if any.
pub fn error_code(body: &str) -> Option<String> {
    let at = body.find("errorCode=\"")? + "errorCode=\"".len();
    Some(body[at..at + 9].to_owned())
}

/// Asserts an HTTP 500 ebMS error with `code`; returns the body for further checks.
pub fn assert_ebms_error(answer: &(u16, String), code: &str) {
    assert_eq!(
        error_code(&answer.1).as_deref(),
        Some(code),
        "expected {code}, got HTTP {} {}",
        answer.0,
        answer.1
    );
    assert_eq!(answer.0, 500, "{}", answer.1);
    assert!(
        answer.1.contains("<ds:SignatureValue>") || answer.1.contains(":SignatureValue>"),
        "error signals must be signed: {}",
        answer.1
    );
}

/// Starts the real binary with `config` and returns it with its AS4 URL (read from its log).
pub fn spawn_gateway(config: &Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_as4gate"))
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env("AS4GATE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn as4gate");
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines
            .next()
            .expect("gateway exited before listening")
            .unwrap();
        if line.contains("listening on http")
            && let Some(at) = line.find("address=")
        {
            let rest = &line[at + "address=".len()..];
            break rest.split_whitespace().next().unwrap().to_owned();
        }
    };
    // Keep draining the log so the gateway never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}/as4"))
}

/// The broker the RabbitMQ tests use.
pub const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Whether RabbitMQ listens on 127.0.0.1:5672. Unreachable with `CI=true` fails the test;
/// otherwise the caller skips with the printed reason.
pub fn broker_reachable() -> bool {
    match std::net::TcpStream::connect("127.0.0.1:5672") {
        Ok(_) => true,
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("CI=true and RabbitMQ at 127.0.0.1:5672 is unreachable: {e}")
        }
        Err(e) => {
            eprintln!("SKIPPED: RabbitMQ at 127.0.0.1:5672 is unreachable ({e})");
            false
        }
    }
}

/// Posts one sign-only message per id from blue_gw to `url`, `concurrency` at a time; returns
/// the ids whose receipt (HTTP 200) came back.
pub async fn send_all(url: &str, ids: &[String], concurrency: usize) -> Vec<String> {
    let sender = Arc::new(Sender::blue("sign-only"));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let ids = Arc::new(ids.to_vec());
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (sender, next, ids, url) = (sender.clone(), next.clone(), ids.clone(), url.to_owned());
        tasks.push(tokio::spawn(async move {
            let mut receipted = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let Some(id) = ids.get(i) else {
                    return receipted;
                };
                let composed = sender.compose(
                    id,
                    vec![payload(
                        1,
                        "application/xml",
                        format!("<doc n='{i}'/>").as_bytes(),
                    )],
                );
                let (content_type, body) = composed.to_mime("MIMEBoundary_load").unwrap();
                if let Ok((200, _)) = as4gate::sample::post(&url, &content_type, body).await {
                    receipted.push(id.clone());
                }
            }
        }));
    }
    let mut receipted = Vec::new();
    for t in tasks {
        receipted.extend(t.await.unwrap());
    }
    receipted
}

/// Delivery tables for one REST back-end at `url` (retrying every 200 ms), one delivery queue
/// `q` and one subscription `s`, for the fault tests.
pub fn one_subscription(url: &str) -> String {
    format!(
        r#"
[[backend]]
id = "b"
binding = "rest"
url = "{url}"
concurrency = 16
retry = {{ interval = "200ms", backoff = "fixed", max_attempts = 1000 }}

[[delivery_queue]]
name = "q"

[[subscription]]
id = "s"
queue = "q"
backend = "b"
"#
    )
}
