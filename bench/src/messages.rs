//! Pre-building the messages of a run with the gateway's own composer
//! ([`as4gate::outbound::compose`]): the partner `blue_gw` (test PKI) sends to `red_gw` under a
//! P-Mode, each message with its own MessageId and its own random payload.

use std::path::{Path, PathBuf};

use anyhow::Context;
use as4gate::outbound::compose::{Outgoing, OutgoingPayload, SenderKeys, compose};
use as4gate_pmode::{PMode, SecurityProfile};
use as4gate_wssec::sign::SigningIdentity;
use bytes::Bytes;

use crate::payload::random_bytes;

/// Content-ID of the single payload of every message.
pub const PAYLOAD_CID: &str = "payload-1@as4load.bench";
/// MimeType of the payload (random bytes).
pub const PAYLOAD_MIME_TYPE: &str = "application/octet-stream";
/// MIME boundary prefix of the generated bodies.
const BOUNDARY_PREFIX: &str = "MIMEBoundary_as4load_";

/// The sending party: a P-Mode, `blue_gw`'s signing identity and `red_gw`'s encryption
/// certificate.
pub struct Sender {
    /// The P-Mode messages are composed under.
    pub pmode: PMode,
    /// blue_gw's signing identity of the P-Mode's generation (RSA for 1.15, Ed25519 for 2.0).
    pub signing: SigningIdentity,
    /// red_gw's certificate (DER), the encryption recipient.
    pub receiver_certificate: Vec<u8>,
}

impl Sender {
    /// blue_gw with its test keys, sending under the P-Mode file `pmode`: RSA signing and
    /// red_gw's RSA certificate under eDelivery AS4 1.15, Ed25519 and red_gw's X25519
    /// certificate under 2.0.
    pub fn blue(repo: &Path, pmode: &Path) -> anyhow::Result<Sender> {
        let pmode = PMode::load_file(pmode).map_err(|e| anyhow::anyhow!("{e}"))?;
        let (signing_key, encryption_certificate) = match pmode.security.profile {
            SecurityProfile::EdeliveryAs4_1_15 => ("rsa", "rsa"),
            SecurityProfile::EdeliveryAs4_2_0 => ("ed25519", "x25519"),
        };
        let pki = repo.join("test-pki");
        let mut chain =
            as4gate::pem::certificates(&pki.join(format!("blue_gw/{signing_key}.crt")))?;
        let leaf = chain.remove(0);
        let key = as4gate::pem::pkcs8_key(&pki.join(format!("blue_gw/{signing_key}.key")))?;
        let signing = SigningIdentity::from_pkcs8_der(&key, &leaf, chain)?;
        let receiver_certificate =
            as4gate::pem::certificates(&pki.join(format!("red_gw/{encryption_certificate}.crt")))?
                .into_iter()
                .next()
                .context("red_gw's encryption certificate file holds no certificate")?;
        Ok(Sender {
            pmode,
            signing,
            receiver_certificate,
        })
    }

    /// A fresh, globally unique MessageId for this sender.
    pub fn new_message_id(&self) -> String {
        as4gate::inbound::process::new_message_id(&self.pmode.initiator.party_id)
    }

    /// The keys [`compose`] needs.
    pub fn keys(&self) -> SenderKeys<'_> {
        SenderKeys {
            signing: &self.signing,
            receiver_certificate: Some(&self.receiver_certificate),
        }
    }
}

/// A fresh MIME boundary.
pub fn new_boundary() -> String {
    format!("{BOUNDARY_PREFIX}{}", uuid::Uuid::new_v4().simple())
}

/// One message ready to post from memory.
pub struct WireMessage {
    /// Its ebMS MessageId (the receipt must refer to it).
    pub message_id: String,
    /// The HTTP Content-Type (`multipart/related; ...`).
    pub content_type: String,
    /// The HTTP body.
    pub body: Bytes,
}

/// One message ready to post from a file.
pub struct DiskMessage {
    /// Its ebMS MessageId.
    pub message_id: String,
    /// The HTTP Content-Type.
    pub content_type: String,
    /// The file holding the HTTP body.
    pub path: PathBuf,
    /// The body length in bytes.
    pub len: u64,
}

/// The messages of a run.
pub enum Prebuilt {
    /// Held in memory (small and medium payloads).
    InMemory(Vec<WireMessage>),
    /// Written to files and streamed from disk (large payloads).
    OnDisk(Vec<DiskMessage>),
}

impl Prebuilt {
    /// How many messages there are.
    pub fn len(&self) -> usize {
        match self {
            Prebuilt::InMemory(v) => v.len(),
            Prebuilt::OnDisk(v) => v.len(),
        }
    }

    /// The MessageIds in order.
    pub fn message_ids(&self) -> Vec<String> {
        match self {
            Prebuilt::InMemory(v) => v.iter().map(|m| m.message_id.clone()).collect(),
            Prebuilt::OnDisk(v) => v.iter().map(|m| m.message_id.clone()).collect(),
        }
    }

    /// The HTTP body size of message `i`.
    pub fn wire_bytes(&self, i: usize) -> u64 {
        match self {
            Prebuilt::InMemory(v) => v[i].body.len() as u64,
            Prebuilt::OnDisk(v) => v[i].len,
        }
    }
}

/// Composes `count` distinct messages with `payload_bytes` random payload bytes each, on every
/// available core.
pub fn build_all(
    sender: &Sender,
    count: usize,
    payload_bytes: u64,
) -> anyhow::Result<Vec<WireMessage>> {
    let size = usize::try_from(payload_bytes).context("--payload-bytes too large")?;
    let threads = std::thread::available_parallelism()
        .map(usize::from)
        .unwrap_or(1)
        .min(count);
    let per_thread = count.div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let n = per_thread.min(count.saturating_sub(t * per_thread));
                scope.spawn(move || (0..n).map(|_| build_one(sender, size)).collect())
            })
            .collect();
        let mut all = Vec::with_capacity(count);
        for handle in handles {
            let part: anyhow::Result<Vec<WireMessage>> = handle
                .join()
                .map_err(|_| anyhow::anyhow!("a composing thread panicked"))?;
            all.extend(part?);
        }
        Ok(all)
    })
}

fn build_one(sender: &Sender, size: usize) -> anyhow::Result<WireMessage> {
    let message_id = sender.new_message_id();
    let composed = compose(
        &Outgoing {
            pmode: &sender.pmode,
            message_id: message_id.clone(),
            conversation_id: uuid::Uuid::new_v4().to_string(),
            properties: Vec::new(),
            payloads: vec![OutgoingPayload {
                content_id: PAYLOAD_CID.to_owned(),
                mime_type: PAYLOAD_MIME_TYPE.to_owned(),
                character_set: None,
                content: random_bytes(size)?,
                already_compressed: false,
            }],
            now: time::OffsetDateTime::now_utc(),
        },
        &sender.keys(),
    )?;
    let (content_type, body) = composed.to_mime(&new_boundary())?;
    Ok(WireMessage {
        message_id,
        content_type,
        body: Bytes::from(body),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sender() -> Sender {
        let repo = PathBuf::from(crate::REPO);
        Sender::blue(&repo, &repo.join("samples/pmodes/blue-to-red.toml")).unwrap()
    }

    #[test]
    fn messages_are_distinct_and_encrypted() {
        let all = build_all(&sender(), 3, 2048).unwrap();
        assert_eq!(all.len(), 3);
        let mut ids: Vec<_> = all.iter().map(|m| m.message_id.as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 3);
        for m in &all {
            assert!(m.content_type.starts_with("multipart/related"));
            let text = String::from_utf8_lossy(&m.body);
            assert!(text.contains(&m.message_id));
            assert!(text.contains("xenc:EncryptedKey") || text.contains("EncryptedKey"));
            // gzip'd random data plus GCM overhead: never smaller than the payload.
            assert!(m.body.len() > 2048);
        }
    }
}
