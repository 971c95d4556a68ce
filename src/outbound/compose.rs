//! Composing an AS4 UserMessage as a sending MSH does: build the `eb:Messaging` from a P-Mode,
//! compress each payload (gzip), sign (Body, `eb:Messaging` and every attachment through the
//! SwA content transform), then encrypt the attachments to the receiver — the order the AS4
//! profile prescribes (compress, then sign/encrypt).
//!
//! One implementation, [`compose_staged`], serves both uses. Each payload is read from its
//! source ([`PayloadContent`]: bytes in memory, or a stored payload's row bytes or blob file)
//! in chunks, gzip-compressed when it applies, and the resulting part bytes are staged in a
//! [`SpoolWriter`] while their SwA digest is computed on the way; the signature is made from
//! those digests. Encryption (a fresh content key per composition, a fresh IV per part) is
//! prepared but not applied: each part carries its AES-128-GCM encryptor ([`StagedBody`]).
//!
//! - The sender stages into the gateway's spool (memory up to the spool threshold, an
//!   anonymous temporary file beyond it) and streams the message with
//!   [`Composed::into_mime_stream`]: the parts are encrypted as the HTTP body is written, so
//!   memory does not grow with payload size.
//! - [`compose`] keeps everything in memory and applies the encryption at once, so that tests
//!   can tamper with the envelope or an attachment before [`Composed::to_mime`] writes the wire
//!   form.
//!
//! Both write the same framing (that of [`MultipartWriter`]). Randomness (content key and IVs)
//! comes from aws-lc-rs here, in the daemon, never in protocol crates.

use std::io::{self, Read, Write};

use anyhow::Context;
use as4gate_ebms::mime::{
    MultipartWriter, part_header_lines, related_content_type, root_header_lines,
};
use as4gate_ebms::model::{
    AgreementRef, CollaborationInfo, MessageInfo, NrReference, PartInfo, Party, PartyId, PartyInfo,
    Property, Service, UserMessage,
};
use as4gate_ebms::ns::{ALG_SHA256, COMPRESSION_GZIP};
use as4gate_ebms::signal::build_user_message;
use as4gate_pmode::PMode;
use as4gate_wssec::sign::{AttachmentToSign, SigningIdentity, sign_envelope};
use as4gate_wssec::swa::AttachmentDigest;
use as4gate_wssec::xmlenc::{
    AttachmentEncryption, ContentKey, ENCRYPTED_PART_CONTENT_TYPE, EncryptedKeyBuilder,
    GCM_MAX_CIPHERTEXT_LEN, GcmEncryptor, insert_into_security_header,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use bytes::Bytes;
use time::OffsetDateTime;

use crate::delivery::multipart::{Multipart, PayloadBody, StagedBody};
use crate::spool::{SpoolWriter, Spooled};

/// Content-ID of the root MIME part (the SOAP envelope).
const ROOT_CONTENT_ID: &str = "root@as4gate";

/// Where an outgoing payload's bytes are read from.
pub trait PayloadContent {
    /// A reader over the payload bytes, from the start. It fails rather than end early when
    /// the bytes are not what was stored.
    fn reader(&self) -> io::Result<impl Read + '_>;
}

impl PayloadContent for Vec<u8> {
    fn reader(&self) -> io::Result<impl Read + '_> {
        Ok(self.as_slice())
    }
}

/// One payload to send; its content is bytes in memory unless `C` says otherwise.
#[derive(Debug, Clone)]
pub struct OutgoingPayload<C = Vec<u8>> {
    /// Content-ID to use (without `cid:` and brackets).
    pub content_id: String,
    /// The payload's media type (`MimeType` part property).
    pub mime_type: String,
    /// Optional `CharacterSet` part property.
    pub character_set: Option<String>,
    /// The payload bytes.
    pub content: C,
    /// The content is already gzip-compressed by the submitter: it is sent as is, with
    /// `CompressionType=application/gzip`, whatever the P-Mode says about compression.
    pub already_compressed: bool,
}

/// What to send: the P-Mode gives parties, service, action and security.
#[derive(Debug, Clone)]
pub struct Outgoing<'a, C = Vec<u8>> {
    /// The P-Mode of the exchange.
    pub pmode: &'a PMode,
    /// MessageId (globally unique).
    pub message_id: String,
    /// ConversationId.
    pub conversation_id: String,
    /// Message properties (`originalSender`, `finalRecipient`, ...).
    pub properties: Vec<Property>,
    /// Payloads, in PartInfo order.
    pub payloads: Vec<OutgoingPayload<C>>,
    /// The message timestamp.
    pub now: OffsetDateTime,
}

/// A MIME part ready to go on the wire; its body is bytes in memory unless `B` says
/// otherwise.
#[derive(Debug, Clone)]
pub struct WirePart<B = Vec<u8>> {
    /// Content-ID (without brackets).
    pub content_id: String,
    /// Content-Type header.
    pub content_type: String,
    /// Body bytes (compressed and, when encrypting, IV || ciphertext || tag).
    pub body: B,
}

/// A composed message.
#[derive(Debug, Clone)]
pub struct Composed<B = Vec<u8>> {
    /// The signed (and encryption-annotated) SOAP envelope.
    pub envelope: String,
    /// Attachment parts.
    pub parts: Vec<WirePart<B>>,
    /// The signature's references, as a receipt must repeat them.
    pub references: Vec<NrReference>,
}

impl Composed {
    /// The HTTP body and its Content-Type: `multipart/related` with the envelope as root part.
    pub fn to_mime(&self, boundary: &str) -> anyhow::Result<(String, Vec<u8>)> {
        let mut writer = MultipartWriter::new(Vec::new(), boundary, ROOT_CONTENT_ID)?;
        writer.write_root(self.envelope.as_bytes())?;
        for part in &self.parts {
            writer.write_attachment(
                &part.content_id,
                &part.content_type,
                &mut part.body.as_slice(),
            )?;
        }
        let content_type = writer.content_type();
        Ok((content_type, writer.finish()?))
    }
}

/// A composed message as a streaming HTTP body, with what the sender keeps of it.
#[derive(Debug)]
pub struct MimeStream {
    /// The HTTP Content-Type (`multipart/related; ...`).
    pub content_type: String,
    /// The body: envelope, then the staged parts, encrypted as they stream.
    pub body: Multipart,
    /// The signed envelope (evidence of what was sent).
    pub envelope: String,
    /// The signature's references, as a receipt must repeat them.
    pub references: Vec<NrReference>,
}

impl Composed<StagedBody> {
    /// The streaming form of the message: the same `multipart/related` framing as
    /// [`Composed::to_mime`] writes, with a fresh boundary; staged parts are read in chunks
    /// and encrypted as the body is sent.
    pub fn into_mime_stream(self) -> anyhow::Result<MimeStream> {
        let mut body = Multipart::new();
        let content_type = related_content_type(body.boundary(), ROOT_CONTENT_ID);
        body.bytes_part(
            &root_header_lines(ROOT_CONTENT_ID)?,
            Bytes::from(self.envelope.clone()),
        );
        for part in self.parts {
            body.payload_part(
                &part_header_lines(&part.content_id, &part.content_type)?,
                PayloadBody::Staged(Box::new(part.body)),
            );
        }
        Ok(MimeStream {
            content_type,
            body,
            envelope: self.envelope,
            references: self.references,
        })
    }
}

/// The keys a sender uses.
pub struct SenderKeys<'a> {
    /// Our signing identity.
    pub signing: &'a SigningIdentity,
    /// The receiver's encryption certificate (DER); required when the P-Mode encrypts.
    pub receiver_certificate: Option<&'a [u8]>,
}

/// Builds, compresses, signs and encrypts a UserMessage per its P-Mode, in memory.
pub fn compose(out: &Outgoing<'_>, keys: &SenderKeys<'_>) -> anyhow::Result<Composed> {
    let staged = compose_staged(out, keys, SpoolWriter::in_memory)?;
    let parts = staged
        .parts
        .into_iter()
        .map(|part| {
            Ok(WirePart {
                content_id: part.content_id,
                content_type: part.content_type,
                body: part.body.into_wire_bytes()?,
            })
        })
        .collect::<io::Result<_>>()?;
    Ok(Composed {
        envelope: staged.envelope,
        parts,
        references: staged.references,
    })
}

/// Builds, compresses and signs a UserMessage per its P-Mode, each part staged in a spool
/// from `spool`; when the P-Mode encrypts, the envelope carries the EncryptedKey and
/// EncryptedData and each part its encryptor (see the module docs).
pub fn compose_staged<C: PayloadContent>(
    out: &Outgoing<'_, C>,
    keys: &SenderKeys<'_>,
    spool: impl Fn() -> SpoolWriter,
) -> anyhow::Result<Composed<StagedBody>> {
    let pmode = out.pmode;
    let mut parts = Vec::with_capacity(out.payloads.len());
    let mut part_infos = Vec::with_capacity(out.payloads.len());
    let mut to_sign = Vec::with_capacity(out.payloads.len());
    for p in &out.payloads {
        let mut properties = vec![property("MimeType", &p.mime_type)];
        if let Some(cs) = &p.character_set {
            properties.push(property("CharacterSet", cs));
        }
        let compress = pmode.payload.compress && !p.already_compressed;
        let content_type = if compress || p.already_compressed {
            properties.push(property("CompressionType", COMPRESSION_GZIP));
            COMPRESSION_GZIP.to_owned()
        } else {
            p.mime_type.clone()
        };
        let (content, sha256_digest) = stage(&p.content, &content_type, compress, spool())
            .with_context(|| format!("staging payload {}", p.content_id))?;
        part_infos.push(PartInfo {
            href: Some(format!("cid:{}", p.content_id)),
            properties,
        });
        to_sign.push(AttachmentToSign {
            cid: p.content_id.clone(),
            sha256_digest,
        });
        parts.push(WirePart {
            content_id: p.content_id.clone(),
            content_type,
            body: StagedBody {
                content,
                cipher: None,
            },
        });
    }
    let user = user_message(
        pmode,
        &out.message_id,
        &out.conversation_id,
        out.properties.clone(),
        part_infos,
        out.now,
    );
    let unsigned = build_user_message(&user)?;
    let signed = sign_envelope(&unsigned, keys.signing, &to_sign)?;
    let (mut envelope, references) = signed.into_parts();
    if pmode.security.encrypt && !parts.is_empty() {
        let cert = keys
            .receiver_certificate
            .context("the P-Mode encrypts but no receiver certificate was given")?;
        let rng = SystemRandom::new();
        let mut key = [0u8; 16];
        rng.fill(&mut key)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let content_key = ContentKey::new(key);
        let mut listed = Vec::with_capacity(parts.len());
        for (i, part) in parts.iter_mut().enumerate() {
            if part.body.content.len() > GCM_MAX_CIPHERTEXT_LEN {
                anyhow::bail!(
                    "payload {} is larger than AES-GCM can encrypt under one IV",
                    part.content_id
                );
            }
            let mut iv = [0u8; 12];
            rng.fill(&mut iv)
                .map_err(|_| anyhow::anyhow!("no randomness"))?;
            part.body.cipher = Some(GcmEncryptor::new(content_key.bytes(), &iv)?);
            listed.push(AttachmentEncryption {
                data_id: format!("ED-{}", i + 1),
                content_id: part.content_id.clone(),
                mime_type: std::mem::replace(
                    &mut part.content_type,
                    ENCRYPTED_PART_CONTENT_TYPE.to_owned(),
                ),
            });
        }
        let fragment = EncryptedKeyBuilder::new(cert, "EK-1").build(&content_key, &listed)?;
        envelope = insert_into_security_header(&envelope, &fragment)?;
    }
    Ok(Composed {
        envelope,
        parts,
        references,
    })
}

/// Reads `content` in chunks, gzip-compressing it when `compress`, into `spool`; returns the
/// staged bytes and their SwA digest as a part of `content_type`.
fn stage(
    content: &impl PayloadContent,
    content_type: &str,
    compress: bool,
    spool: SpoolWriter,
) -> anyhow::Result<(Spooled, Vec<u8>)> {
    let mut staging = Staging {
        spool,
        digest: AttachmentDigest::new(content_type, ALG_SHA256)?,
    };
    let mut reader = content.reader()?;
    if compress {
        as4gate_ebms::gzip::gzip_compress(&mut reader, &mut staging)?;
    } else {
        io::copy(&mut reader, &mut staging)?;
    }
    Ok((staging.spool.finish()?, staging.digest.finish()?))
}

/// Part bytes on their way into the spool, digested as they pass.
struct Staging {
    spool: SpoolWriter,
    digest: AttachmentDigest,
}

impl Write for Staging {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.digest.update(buf).map_err(io::Error::other)?;
        self.spool.write_all(buf)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The UserMessage a P-Mode describes: parties, roles, agreement, service, action and MPC
/// from the P-Mode; ids, properties and PartInfo from the caller.
pub fn user_message(
    pmode: &PMode,
    message_id: &str,
    conversation_id: &str,
    properties: Vec<Property>,
    payload_info: Vec<PartInfo>,
    now: OffsetDateTime,
) -> UserMessage {
    UserMessage {
        mpc: pmode.business.mpc.clone(),
        message_info: MessageInfo {
            timestamp: crate::store::timestamp(now),
            message_id: message_id.to_owned(),
            ref_to_message_id: None,
        },
        party_info: PartyInfo {
            from: party(&pmode.initiator),
            to: party(&pmode.responder),
        },
        collaboration_info: CollaborationInfo {
            agreement_ref: pmode.agreement.as_ref().map(|a| AgreementRef {
                value: a.value.clone(),
                r#type: a.r#type.clone(),
                pmode: None,
            }),
            service: Service {
                value: pmode.business.service.clone(),
                r#type: pmode.business.service_type.clone(),
            },
            action: pmode.business.action.clone(),
            conversation_id: conversation_id.to_owned(),
        },
        message_properties: properties,
        payload_info,
    }
}

/// A part or message property without a type.
pub fn property(name: &str, value: &str) -> Property {
    Property {
        name: name.to_owned(),
        value: value.to_owned(),
        r#type: None,
    }
}

fn party(spec: &as4gate_pmode::PartySpec) -> Party {
    Party {
        party_ids: vec![PartyId {
            value: spec.party_id.clone(),
            r#type: spec.party_type.clone(),
        }],
        role: spec.role.clone(),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use http_body_util::BodyExt;

    use super::*;

    const REPO: &str = env!("CARGO_MANIFEST_DIR");

    /// blue_gw's RSA identity, red_gw's certificate and the sample P-Mode between them
    /// (signed, encrypted, compressed).
    fn blue() -> (PMode, SigningIdentity, Vec<u8>) {
        let repo = Path::new(REPO);
        let pki = repo.join("test-pki");
        let pmode = PMode::load_file(&repo.join("samples/pmodes/blue-to-red.toml")).unwrap();
        let cert = crate::pem::certificates(&pki.join("blue_gw/rsa.crt")).unwrap();
        let key = crate::pem::pkcs8_key(&pki.join("blue_gw/rsa.key")).unwrap();
        let signing = SigningIdentity::from_pkcs8_der(&key, &cert[0], vec![]).unwrap();
        let receiver = crate::pem::certificates(&pki.join("red_gw/rsa.crt"))
            .unwrap()
            .remove(0);
        (pmode, signing, receiver)
    }

    fn outgoing(pmode: &PMode, payloads: Vec<OutgoingPayload>) -> Outgoing<'_> {
        Outgoing {
            pmode,
            message_id: "m-1@blue.test".into(),
            conversation_id: "c-1".into(),
            properties: Vec::new(),
            payloads,
            now: OffsetDateTime::now_utc(),
        }
    }

    fn payload(n: usize, mime_type: &str, content: Vec<u8>) -> OutgoingPayload {
        OutgoingPayload {
            content_id: format!("payload-{n}@blue.test"),
            mime_type: mime_type.into(),
            character_set: None,
            content,
            already_compressed: false,
        }
    }

    fn random(len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        SystemRandom::new().fill(&mut bytes).unwrap();
        bytes
    }

    /// The streamed body, checked against its declared length.
    async fn streamed(body: Multipart) -> Vec<u8> {
        let (length, body) = body.finish();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len() as u64, length);
        bytes.to_vec()
    }

    /// Our open file descriptors that point into `dir` (Linux: `/proc/self/fd`).
    fn open_files_in(dir: &Path) -> Vec<PathBuf> {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .collect()
    }

    #[tokio::test]
    async fn streamed_body_is_framed_as_to_mime() {
        let (mut pmode, signing, _) = blue();
        pmode.security.encrypt = false;
        let keys = SenderKeys {
            signing: &signing,
            receiver_certificate: None,
        };
        let mut gzipped = Vec::new();
        as4gate_ebms::gzip::gzip_compress(&mut &b"already"[..], &mut gzipped).unwrap();
        let mut already = payload(3, "text/plain", gzipped);
        already.already_compressed = true;
        let out = outgoing(
            &pmode,
            vec![
                payload(1, "application/xml", b"<a>1</a>".to_vec()),
                payload(2, "application/octet-stream", random(70_000)),
                already,
            ],
        );
        let staged = compose_staged(&out, &keys, SpoolWriter::in_memory).unwrap();
        let in_memory = Composed {
            envelope: staged.envelope.clone(),
            references: staged.references.clone(),
            parts: staged
                .parts
                .iter()
                .map(|p| WirePart {
                    content_id: p.content_id.clone(),
                    content_type: p.content_type.clone(),
                    body: match &p.body.content {
                        Spooled::Memory(bytes) => bytes.clone(),
                        Spooled::File { .. } => panic!("an in-memory spool spilled"),
                    },
                })
                .collect(),
        };
        let stream = staged.into_mime_stream().unwrap();
        let (content_type, expected) = in_memory.to_mime(stream.body.boundary()).unwrap();
        assert_eq!(stream.content_type, content_type);
        assert_eq!(streamed(stream.body).await, expected);
    }

    #[tokio::test]
    async fn large_part_spills_to_the_spool_dir_and_is_gone_after_sending() {
        let spool = tempfile::tempdir().unwrap();
        let dir = spool.path().canonicalize().unwrap();
        let (pmode, signing, receiver) = blue();
        let keys = SenderKeys {
            signing: &signing,
            receiver_certificate: Some(&receiver),
        };
        let size = 3 * 1024 * 1024;
        let out = outgoing(
            &pmode,
            vec![
                payload(1, "application/octet-stream", random(size)),
                payload(2, "application/xml", b"<small/>".to_vec()),
            ],
        );
        let staged = compose_staged(&out, &keys, || SpoolWriter::new(&dir, 1024 * 1024)).unwrap();
        // Random bytes do not shrink under gzip: the first part spilled, the second did not.
        assert!(matches!(
            staged.parts[0].body.content,
            Spooled::File { len, .. } if len > size as u64
        ));
        assert!(matches!(staged.parts[1].body.content, Spooled::Memory(_)));
        assert_eq!(open_files_in(&dir).len(), 1, "one spool file, open");
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0, "and nameless");
        let wire = staged.parts[0].body.wire_len();
        let stream = staged.into_mime_stream().unwrap();
        let bytes = streamed(stream.body).await;
        assert!(bytes.len() as u64 > wire);
        assert_eq!(
            open_files_in(&dir),
            Vec::<PathBuf>::new(),
            "closed once sent"
        );
    }

    #[test]
    fn in_memory_composition_encrypts_every_part() {
        let (pmode, signing, receiver) = blue();
        let keys = SenderKeys {
            signing: &signing,
            receiver_certificate: Some(&receiver),
        };
        let content = random(5000);
        let out = outgoing(&pmode, vec![payload(1, "application/pdf", content.clone())]);
        let composed = compose(&out, &keys).unwrap();
        let mut gzipped = Vec::new();
        as4gate_ebms::gzip::gzip_compress(&mut content.as_slice(), &mut gzipped).unwrap();
        let part = &composed.parts[0];
        assert_eq!(part.content_type, ENCRYPTED_PART_CONTENT_TYPE);
        assert_eq!(part.body.len(), gzipped.len() + 12 + 16);
        assert!(composed.envelope.contains("EncryptedKey"));
    }
}
