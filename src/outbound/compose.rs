//! Composing an AS4 UserMessage as a sending MSH does: build the `eb:Messaging` from a P-Mode,
//! compress each payload (gzip), sign (Body, `eb:Messaging` and every attachment through the
//! SwA content transform), then encrypt the attachments to the receiver — the order the AS4
//! profile prescribes (compress, then sign/encrypt).
//!
//! The result ([`Composed`]) keeps the envelope and the attachment parts apart so that tests
//! can tamper with one of them before [`Composed::to_mime`] writes the wire form. Randomness
//! (content key and IVs) comes from aws-lc-rs here, in the daemon, never in protocol crates.

use std::io::Write;

use anyhow::Context;
use as4gate_ebms::mime::MultipartWriter;
use as4gate_ebms::model::{
    AgreementRef, CollaborationInfo, MessageInfo, NrReference, PartInfo, Party, PartyId, PartyInfo,
    Property, Service, UserMessage,
};
use as4gate_ebms::signal::build_user_message;
use as4gate_pmode::PMode;
use as4gate_wssec::sign::{AttachmentToSign, SigningIdentity, sign_envelope};
use as4gate_wssec::xmlenc::{
    AttachmentEncryption, ContentKey, ENCRYPTED_PART_CONTENT_TYPE, EncryptedKeyBuilder,
    GcmEncryptor, insert_into_security_header,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

/// One payload to send.
#[derive(Debug, Clone)]
pub struct OutgoingPayload {
    /// Content-ID to use (without `cid:` and brackets).
    pub content_id: String,
    /// The payload's media type (`MimeType` part property).
    pub mime_type: String,
    /// Optional `CharacterSet` part property.
    pub character_set: Option<String>,
    /// The payload bytes.
    pub content: Vec<u8>,
    /// The content is already gzip-compressed by the submitter: it is sent as is, with
    /// `CompressionType=application/gzip`, whatever the P-Mode says about compression.
    pub already_compressed: bool,
}

/// What to send: the P-Mode gives parties, service, action and security.
#[derive(Debug, Clone)]
pub struct Outgoing<'a> {
    /// The P-Mode of the exchange.
    pub pmode: &'a PMode,
    /// MessageId (globally unique).
    pub message_id: String,
    /// ConversationId.
    pub conversation_id: String,
    /// Message properties (`originalSender`, `finalRecipient`, ...).
    pub properties: Vec<Property>,
    /// Payloads, in PartInfo order.
    pub payloads: Vec<OutgoingPayload>,
    /// The message timestamp.
    pub now: OffsetDateTime,
}

/// A MIME part ready to go on the wire.
#[derive(Debug, Clone)]
pub struct WirePart {
    /// Content-ID (without brackets).
    pub content_id: String,
    /// Content-Type header.
    pub content_type: String,
    /// Body bytes (compressed and, when encrypting, IV || ciphertext || tag).
    pub body: Vec<u8>,
}

/// A composed message.
#[derive(Debug, Clone)]
pub struct Composed {
    /// The signed (and encryption-annotated) SOAP envelope.
    pub envelope: String,
    /// Attachment parts.
    pub parts: Vec<WirePart>,
    /// The signature's references, as a receipt must repeat them.
    pub references: Vec<NrReference>,
}

impl Composed {
    /// The HTTP body and its Content-Type: `multipart/related` with the envelope as root part.
    pub fn to_mime(&self, boundary: &str) -> anyhow::Result<(String, Vec<u8>)> {
        let mut writer = MultipartWriter::new(Vec::new(), boundary, "root@as4gate")?;
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

/// The keys a sender uses.
pub struct SenderKeys<'a> {
    /// Our signing identity.
    pub signing: &'a SigningIdentity,
    /// The receiver's encryption certificate (DER); required when the P-Mode encrypts.
    pub receiver_certificate: Option<&'a [u8]>,
}

/// Builds, compresses, signs and encrypts a UserMessage per its P-Mode.
pub fn compose(out: &Outgoing<'_>, keys: &SenderKeys<'_>) -> anyhow::Result<Composed> {
    let pmode = out.pmode;
    let compress = pmode.payload.compress;
    let mut parts = Vec::with_capacity(out.payloads.len());
    let mut part_infos = Vec::with_capacity(out.payloads.len());
    for p in &out.payloads {
        let mut properties = vec![property("MimeType", &p.mime_type)];
        if let Some(cs) = &p.character_set {
            properties.push(property("CharacterSet", cs));
        }
        let (content_type, body) = if p.already_compressed {
            properties.push(property(
                "CompressionType",
                as4gate_ebms::ns::COMPRESSION_GZIP,
            ));
            (
                as4gate_ebms::ns::COMPRESSION_GZIP.to_owned(),
                p.content.clone(),
            )
        } else if compress {
            properties.push(property(
                "CompressionType",
                as4gate_ebms::ns::COMPRESSION_GZIP,
            ));
            let mut gz = Vec::new();
            as4gate_ebms::gzip::gzip_compress(&mut p.content.as_slice(), &mut gz)?;
            (as4gate_ebms::ns::COMPRESSION_GZIP.to_owned(), gz)
        } else {
            (p.mime_type.clone(), p.content.clone())
        };
        part_infos.push(PartInfo {
            href: Some(format!("cid:{}", p.content_id)),
            properties,
        });
        parts.push(WirePart {
            content_id: p.content_id.clone(),
            content_type,
            body,
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
    let to_sign = parts
        .iter()
        .map(|p| AttachmentToSign::from_content(&p.content_id, &p.content_type, &p.body))
        .collect::<Result<Vec<_>, _>>()?;
    let signed = sign_envelope(&unsigned, keys.signing, &to_sign)?;
    let references = signed.references()?;
    let mut envelope = signed.xml;
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
            let mut iv = [0u8; 12];
            rng.fill(&mut iv)
                .map_err(|_| anyhow::anyhow!("no randomness"))?;
            let mut encryptor = GcmEncryptor::new(content_key.bytes(), &iv)?;
            let mut cipher = Vec::with_capacity(part.body.len() + 28);
            encryptor.update(&part.body, &mut cipher)?;
            encryptor.finish(&mut cipher)?;
            cipher.flush()?;
            listed.push(AttachmentEncryption {
                data_id: format!("ED-{}", i + 1),
                content_id: part.content_id.clone(),
                mime_type: std::mem::replace(
                    &mut part.content_type,
                    ENCRYPTED_PART_CONTENT_TYPE.to_owned(),
                ),
            });
            part.body = cipher;
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
