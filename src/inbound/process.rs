//! The inbound pipeline for one received message, run on a blocking worker:
//! parse → P-Mode match → partner checks → decrypt → verify → payloads → receipt.
//!
//! The envelope is parsed once; the P-Mode is matched on the `eb:Messaging` element that the
//! signature must then cover (the verifier checks the signed nodes are exactly the Body and
//! `eb:Messaging` located here). Payload blob files are committed before this returns; the
//! message record is committed by the caller, and only then is the receipt sent.

use std::io::{self, Read};

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::error::{EbmsError, ErrorCode};
use as4gate_ebms::gzip::{CappedGunzip, GunzipError};
use as4gate_ebms::model::{Messaging, PartInfo, Property, UserMessage};
use as4gate_ebms::signal::{ReceiptSpec, build_receipt};
use as4gate_pmode::{MatchErrorCode, MatchKey, PMode, SecurityProfile};
use as4gate_wssec::sign::sign_envelope;
use as4gate_wssec::verify::{AttachmentSource, VerifyRequest, verify_envelope};
use as4gate_wssec::xmlenc::{EncryptionPlan, GcmDecryptor, XmlEncError};
use time::OffsetDateTime;

use crate::gateway::{Partner, Shared};
use crate::inbound::intake::{Attachment, Received};
use crate::server::Peer;
use crate::spool::SpoolWriter;
use crate::store::blobs::hex;
use crate::store::{InboundRecord, PayloadWriter, StoredPayload, StoredProperty, timestamp};

/// Read size while decrypting or decompressing an attachment.
const DECRYPT_CHUNK: usize = 64 * 1024;

/// Why a request was not accepted.
#[derive(Debug)]
pub enum Rejection {
    /// Refused with an ebMS error (answered with a signed error signal).
    Ebms(EbmsError),
    /// Not a SOAP 1.2 message at all (answered with a SOAP `Sender` fault).
    Malformed(String),
    /// A header block marked `mustUnderstand` that this gateway does not process (answered
    /// with a SOAP `MustUnderstand` fault, SOAP 1.2 part 1 §5.4.8).
    NotUnderstood(String),
    /// A local failure; nothing was accepted (answered with a SOAP Receiver fault).
    Internal(anyhow::Error),
}

/// A refused request and the MessageId it carried, when readable.
#[derive(Debug)]
pub struct Rejected {
    /// The MessageId of the refused message, if it could be read.
    pub message_id: Option<String>,
    /// Why.
    pub reason: Rejection,
    /// The crypto generation to answer under: the matched P-Mode's, or before a P-Mode
    /// matched the one the request's signature claims; `None` (eDelivery AS4 1.15) when
    /// neither is known.
    pub profile: Option<SecurityProfile>,
}

impl Rejected {
    /// Refused before the MessageId could be read.
    pub fn unparsed(error: EbmsError) -> Rejected {
        Rejected {
            message_id: None,
            reason: Rejection::Ebms(error),
            profile: None,
        }
    }

    /// A request that is not an AS4 message at all.
    pub fn malformed(detail: impl Into<String>) -> Rejected {
        Rejected {
            message_id: None,
            reason: Rejection::Malformed(detail.into()),
            profile: None,
        }
    }

    /// A local failure.
    pub fn internal(message_id: Option<String>, error: anyhow::Error) -> Rejected {
        Rejected {
            message_id,
            reason: Rejection::Internal(error),
            profile: None,
        }
    }
}

/// A message that passed every check: its record (receipt included) is ready to commit.
#[derive(Debug)]
pub struct Accepted {
    /// The record to insert.
    pub record: InboundRecord,
}

/// What a request turned out to be.
#[derive(Debug)]
pub enum Processed {
    /// A UserMessage that passed every check.
    Message(Box<Accepted>),
    /// A signal-only message (a PullRequest, or a receipt or error for a message that was
    /// pulled from us): its envelope, for [`crate::outbound::pull`] to verify and answer.
    Signal(Vec<u8>),
}

/// How a message reached us.
#[derive(Debug, Clone)]
pub enum Arrival {
    /// Pushed by the partner, over this connection (TLS client certificate, if any).
    Pushed(Option<Peer>),
    /// Returned to our PullRequest (the partner's TLS client certificate does not apply).
    Pulled,
}

/// Runs the pipeline over a received request.
pub fn process(
    shared: &Shared,
    received: Received,
    arrival: &Arrival,
    now: OffsetDateTime,
) -> Result<Processed, Rejected> {
    let gateway = &shared.gateway;
    let limits = &gateway.limits;
    as4gate_ebms::xml::reject_doctype(&received.envelope).map_err(Rejected::unparsed)?;
    let text = std::str::from_utf8(&received.envelope)
        .map_err(|_| Rejected::malformed("the SOAP envelope is not UTF-8"))?;
    let doc = as4gate_ebms::xml::parse(text, limits).map_err(|e| Rejected::malformed(e.detail))?;
    let nodes = EnvelopeNodes::locate(&doc).map_err(Rejected::unparsed)?;
    if let Some(&header) = nodes.not_understood_headers(&doc).first() {
        let name = doc
            .element(header)
            .map(|e| e.name.prefixed_name().into_owned())
            .unwrap_or_default();
        return Err(Rejected {
            message_id: None,
            reason: Rejection::NotUnderstood(format!(
                "header block {name} is marked mustUnderstand but is not processed by this gateway"
            )),
            profile: None,
        });
    }
    let messaging = Messaging::parse(&doc, nodes.messaging).map_err(Rejected::unparsed)?;
    if messaging.user_messages.is_empty() && !messaging.signals.is_empty() {
        return Ok(Processed::Signal(text.as_bytes().to_vec()));
    }
    let user = single_user_message(&messaging).map_err(Rejected::unparsed)?;
    let message_id = user.message_info.message_id.clone();
    let span = tracing::info_span!("inbound", message_id = %message_id);
    let _enter = span.enter();
    let refuse_under = |profile: Option<SecurityProfile>, e: EbmsError| Rejected {
        message_id: Some(message_id.clone()),
        reason: Rejection::Ebms(EbmsError {
            ref_to_message_id: Some(message_id.clone()),
            ..e
        }),
        profile,
    };
    let internal = |e: anyhow::Error| Rejected::internal(Some(message_id.clone()), e);

    let pmode =
        match_pmode(shared, user).map_err(|e| refuse_under(claimed_profile(&doc, &nodes), e))?;
    let refuse = |e: EbmsError| refuse_under(Some(pmode.security.profile), e);
    if pmode.responder.party_id != gateway.config.gateway.party_id {
        return Err(refuse(EbmsError::new(
            ErrorCode::ProcessingModeMismatch,
            format!(
                "P-Mode {} names responder {:?}, this gateway is {:?}",
                pmode.id, pmode.responder.party_id, gateway.config.gateway.party_id
            ),
        )));
    }
    let from = &pmode.initiator.party_id;
    let partner = gateway.partners.get(from).ok_or_else(|| {
        refuse(EbmsError::new(
            ErrorCode::FailedAuthentication,
            format!("no partner configuration (certificates) for party {from:?}"),
        ))
    })?;
    if let Arrival::Pushed(peer) = arrival {
        check_tls_client(partner, peer.as_ref(), from).map_err(&refuse)?;
    }

    // Decrypt every encrypted attachment into a fresh spool, replacing the cipher part.
    let mut attachments = received.attachments;
    decrypt_attachments(shared, &doc, &nodes, pmode, user, &mut attachments).map_err(&refuse)?;

    // Verify the signature over the received envelope and the decrypted attachments.
    let policy = gateway.security_policy(security_policy_for(pmode));
    let source = Attachments(&attachments);
    let verified = verify_envelope(&VerifyRequest {
        doc: &doc,
        nodes: &nodes,
        attachments: &source,
        policy: &policy,
        anchors: &gateway.anchors,
        known_certificates: &gateway.known_certificates,
        now,
    })
    .map_err(|e| refuse(EbmsError::new(ErrorCode::from(&e), e.to_string())))?;
    let evidence = verified.evidence();
    if let Some(evidence) = evidence
        && !evidence.signed_by(&partner.signing_certificates)
    {
        return Err(refuse(EbmsError::new(
            ErrorCode::FailedAuthentication,
            format!(
                "the message is signed with a certificate that is not registered for party {from:?}"
            ),
        )));
    }
    let user = single_user_message(verified.value()).map_err(&refuse)?;

    let payloads = store_payloads(shared, user, &attachments).map_err(|e| match e {
        PayloadError::Refused(e) => refuse(e),
        PayloadError::Io(e) => internal(e.into()),
    })?;

    let keys = gateway.keys(pmode.security.profile);
    let unsigned_receipt = build_receipt(&ReceiptSpec {
        message_id: new_message_id(&gateway.config.gateway.party_id),
        timestamp: timestamp(now),
        ref_to_message_id: message_id.clone(),
        references: evidence
            .map(|e| e.references.as_slice())
            .unwrap_or_default(),
    })
    .map_err(|e| internal(anyhow::anyhow!("cannot build the receipt: {e}")))?;
    let receipt = sign_envelope(&unsigned_receipt, &keys.signing, &[])
        .map_err(|e| internal(anyhow::anyhow!("cannot sign the receipt: {e}")))?
        .xml
        .into_bytes();

    let info = &user.collaboration_info;
    let record = InboundRecord {
        message_id: message_id.clone(),
        pmode_id: pmode.id.clone(),
        from_party: first_party_id(&user.party_info.from.party_ids),
        from_role: user.party_info.from.role.clone(),
        to_party: first_party_id(&user.party_info.to.party_ids),
        to_role: user.party_info.to.role.clone(),
        service: info.service.value.clone(),
        service_type: info.service.r#type.clone(),
        action: info.action.clone(),
        conversation_id: info.conversation_id.clone(),
        agreement: info.agreement_ref.as_ref().map(|a| a.value.clone()),
        mpc: user.effective_mpc().to_owned(),
        ref_to_message_id: user.message_info.ref_to_message_id.clone(),
        message_timestamp: user.message_info.timestamp.clone(),
        message_properties: stored_properties(&user.message_properties),
        is_test: user.is_test_message(),
        signer_certificate: evidence.map(|e| sha256_hex(&e.signer_certificate)),
        envelope: received.envelope.clone(),
        payloads,
        receipt,
        received_at: timestamp(now),
    };
    Ok(Processed::Message(Box::new(Accepted { record })))
}

fn single_user_message(messaging: &Messaging) -> Result<&UserMessage, EbmsError> {
    match (messaging.user_messages.as_slice(), messaging.signals.len()) {
        ([user], 0) => Ok(user),
        ([], _) => Err(EbmsError::new(
            ErrorCode::FeatureNotSupportedFailure,
            "this endpoint accepts UserMessages; signal messages (pull requests, asynchronous receipts or errors) are not supported",
        )),
        _ => Err(EbmsError::new(
            ErrorCode::FeatureNotSupportedFailure,
            "bundled messages are not supported: AS4 allows exactly one UserMessage per envelope",
        )),
    }
}

fn first_party_id(ids: &[as4gate_ebms::model::PartyId]) -> String {
    ids.first().map(|p| p.value.clone()).unwrap_or_default()
}

fn match_pmode<'a>(shared: &'a Shared, user: &UserMessage) -> Result<&'a PMode, EbmsError> {
    let party = |p: &as4gate_ebms::model::Party| -> Result<(String, Option<String>), EbmsError> {
        match p.party_ids.as_slice() {
            [id] => Ok((id.value.clone(), id.r#type.clone())),
            _ => Err(EbmsError::new(
                ErrorCode::InvalidHeader,
                "From and To must each carry exactly one PartyId (eDelivery AS4)",
            )),
        }
    };
    let from = party(&user.party_info.from)?;
    let to = party(&user.party_info.to)?;
    let info = &user.collaboration_info;
    let key = MatchKey {
        agreement: info.agreement_ref.as_ref().map(|a| a.value.as_str()),
        from_party: (from.0.as_str(), from.1.as_deref()),
        from_role: &user.party_info.from.role,
        to_party: (to.0.as_str(), to.1.as_deref()),
        to_role: &user.party_info.to.role,
        service: (info.service.value.as_str(), info.service.r#type.as_deref()),
        action: &info.action,
        mpc: user.mpc.as_deref(),
    };
    shared.gateway.pmodes.match_user_message(&key).map_err(|e| {
        // The full explanation (with our P-Mode values) is for our log only; the sender
        // learns which of its fields did not fit.
        tracing::warn!(message_id = %user.message_info.message_id, "no P-Mode: {e}");
        let code = match e.code() {
            MatchErrorCode::ValueNotRecognized => ErrorCode::ValueNotRecognized,
            MatchErrorCode::ProcessingModeMismatch => ErrorCode::ProcessingModeMismatch,
        };
        EbmsError::new(code, e.sender_description())
    })
}

fn check_tls_client(partner: &Partner, peer: Option<&Peer>, party: &str) -> Result<(), EbmsError> {
    if partner.tls_client_certificates.is_empty() {
        return Ok(());
    }
    let presented = peer.and_then(|p| p.certificates.first());
    match presented {
        Some(cert) if partner.tls_client_certificates.contains(cert) => Ok(()),
        Some(_) => Err(EbmsError::new(
            ErrorCode::FailedAuthentication,
            format!("the TLS client certificate is not one registered for party {party:?}"),
        )),
        None => Err(EbmsError::new(
            ErrorCode::FailedAuthentication,
            format!("party {party:?} must authenticate with a TLS client certificate"),
        )),
    }
}

/// The signature policy a P-Mode's security profile asks for (before configured limits).
pub fn security_policy_for(pmode: &PMode) -> as4gate_wssec::policy::SecurityPolicy {
    use as4gate_pmode::SecurityProfile;
    match pmode.security.profile {
        SecurityProfile::EdeliveryAs4_1_15 => {
            as4gate_wssec::policy::SecurityPolicy::edelivery_1_15()
        }
        SecurityProfile::EdeliveryAs4_2_0 => as4gate_wssec::policy::SecurityPolicy::edelivery_2_0(),
    }
}

/// Decrypts the attachments the Security header lists as encrypted; checks that the P-Mode's
/// encryption requirement is met (every payload encrypted when it demands encryption).
///
/// Key-unwrap and tag failures give one and the same description to the sender, so the error
/// is no decryption oracle; the precise reason is logged.
fn decrypt_attachments(
    shared: &Shared,
    doc: &uppsala::Document<'_>,
    nodes: &EnvelopeNodes,
    pmode: &PMode,
    user: &UserMessage,
    attachments: &mut [Attachment],
) -> Result<(), EbmsError> {
    let gateway = &shared.gateway;
    let failed = |e: XmlEncError| {
        tracing::warn!(error = %e, "decryption failed");
        match e {
            XmlEncError::KeyUnwrapFailed | XmlEncError::AuthenticationFailed => EbmsError::new(
                ErrorCode::FailedDecryption,
                "the payload could not be decrypted with this gateway's key",
            ),
            other => EbmsError::new(ErrorCode::FailedDecryption, other.to_string()),
        }
    };
    let plan = match nodes.security {
        Some(security) => Some(EncryptionPlan::read(doc, security).map_err(failed)?),
        None => None,
    };
    let plan = plan.filter(|p| !p.is_empty());
    if pmode.security.encrypt {
        for part in &user.payload_info {
            if let Some(cid) = part.cid()
                && plan
                    .as_ref()
                    .and_then(|p| p.part_for_content_id(cid))
                    .is_none()
            {
                return Err(EbmsError::new(
                    ErrorCode::PolicyNoncompliance,
                    format!(
                        "P-Mode {} requires encryption; payload cid:{cid} is not encrypted",
                        pmode.id
                    ),
                ));
            }
        }
    }
    let Some(plan) = plan else {
        return Ok(());
    };
    let keys = gateway.keys(pmode.security.profile);
    let (key, _) = plan
        .key_for_certificate(&[&keys.decryption_certificate])
        .map_err(failed)?;
    if plan.parts().len() != plan.parts_of(key).count() {
        return Err(EbmsError::new(
            ErrorCode::FailedDecryption,
            "some payloads are encrypted to a key that is not this gateway's",
        ));
    }
    let content_key = keys.decryption.unwrap_key(key).map_err(failed)?;
    for part in plan.parts_of(key) {
        let attachment = attachments
            .iter_mut()
            .find(|a| a.content_id == part.content_id)
            .ok_or_else(|| {
                EbmsError::new(
                    ErrorCode::FailedDecryption,
                    format!(
                        "EncryptedData {} names cid:{}, which is not in the message",
                        part.id, part.content_id
                    ),
                )
            })?;
        let mut out = SpoolWriter::new(
            &shared.spool_dir,
            gateway.config.limits.spool_threshold_bytes,
        );
        let mut decryptor = GcmDecryptor::new(content_key.bytes());
        {
            let mut input = attachment.content.reader().map_err(spool_failure)?;
            let mut buf = vec![0u8; DECRYPT_CHUNK];
            loop {
                let n = input.read(&mut buf).map_err(spool_failure)?;
                if n == 0 {
                    break;
                }
                decryptor.update(&buf[..n], &mut out).map_err(failed)?;
            }
        }
        decryptor.finish().map_err(failed)?;
        attachment.content = out.finish().map_err(spool_failure)?;
        attachment.content_type = part
            .mime_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".to_owned());
    }
    Ok(())
}

fn spool_failure(e: io::Error) -> EbmsError {
    EbmsError::new(ErrorCode::Other, format!("local spool failure: {e}"))
}

/// The decrypted attachments as the verifier sees them.
struct Attachments<'a>(&'a [Attachment]);

impl AttachmentSource for Attachments<'_> {
    fn attachment(&self, cid: &str) -> Option<(String, Box<dyn Read + '_>)> {
        let a = self.0.iter().find(|a| a.content_id == cid)?;
        let reader = a.content.reader().ok()?;
        Some((a.content_type.clone(), reader))
    }

    fn cids(&self) -> Vec<String> {
        self.0.iter().map(|a| a.content_id.clone()).collect()
    }
}

enum PayloadError {
    Refused(EbmsError),
    Io(io::Error),
}

/// Maps PartInfo to attachments one-to-one, decompresses where `CompressionType` says so
/// (capped) and stores each payload (inline when small, as a committed blob file otherwise).
fn store_payloads(
    shared: &Shared,
    user: &UserMessage,
    attachments: &[Attachment],
) -> Result<Vec<StoredPayload>, PayloadError> {
    let limits = &shared.gateway.limits;
    let mut stored = Vec::with_capacity(user.payload_info.len());
    for part in &user.payload_info {
        let cid = part.cid().ok_or_else(|| {
            PayloadError::Refused(EbmsError::new(
                ErrorCode::ExternalPayloadError,
                "PartInfo without a cid: reference; AS4 carries payloads in MIME parts only",
            ))
        })?;
        let attachment = attachments
            .iter()
            .find(|a| a.content_id == cid)
            .ok_or_else(|| {
                PayloadError::Refused(EbmsError::new(
                    ErrorCode::ValueInconsistent,
                    format!("PartInfo names cid:{cid} but the message has no such MIME part"),
                ))
            })?;
        stored.push(store_one(shared, part, attachment, limits)?);
    }
    if let Some(extra) = attachments.iter().find(|a| {
        !user
            .payload_info
            .iter()
            .any(|p| p.cid() == Some(a.content_id.as_str()))
    }) {
        return Err(PayloadError::Refused(EbmsError::new(
            ErrorCode::ValueInconsistent,
            format!(
                "MIME part <{}> is not listed in PayloadInfo",
                extra.content_id
            ),
        )));
    }
    Ok(stored)
}

fn store_one(
    shared: &Shared,
    part: &PartInfo,
    attachment: &Attachment,
    limits: &as4gate_ebms::limits::Limits,
) -> Result<StoredPayload, PayloadError> {
    let compressed = part.compression_type().is_some();
    let mut input = attachment.content.reader().map_err(PayloadError::Io)?;
    let mut blob = PayloadWriter::new(
        &shared.blobs,
        shared.gateway.config.store.inline_payload_bytes,
    );
    if compressed {
        let cid = &attachment.content_id;
        let mut gunzip = CappedGunzip::new(&mut blob, limits.max_decompressed_bytes);
        let mut buf = vec![0u8; DECRYPT_CHUNK];
        loop {
            let n = input.read(&mut buf).map_err(PayloadError::Io)?;
            if n == 0 {
                break;
            }
            gunzip.push(&buf[..n]).map_err(|e| gunzip_refusal(e, cid))?;
        }
        gunzip.finish().map_err(|e| gunzip_refusal(e, cid))?;
    } else {
        io::copy(&mut input, &mut blob).map_err(PayloadError::Io)?;
    }
    let stored = blob.finish().map_err(PayloadError::Io)?;
    Ok(StoredPayload {
        content_id: attachment.content_id.clone(),
        blob: stored.blob,
        inline: stored.inline,
        mime_type: part.mime_type().map(str::to_owned),
        character_set: part.character_set().map(str::to_owned),
        compressed,
        properties: stored_properties(&part.properties),
    })
}

fn gunzip_refusal(e: GunzipError, cid: &str) -> PayloadError {
    match e {
        GunzipError::Sink(io) => PayloadError::Io(io),
        refused => {
            let error = EbmsError::from(&refused);
            PayloadError::Refused(EbmsError::new(
                error.code,
                format!("cid:{cid}: {}", error.detail),
            ))
        }
    }
}

fn stored_properties(props: &[Property]) -> Vec<StoredProperty> {
    props
        .iter()
        .map(|p| StoredProperty {
            name: p.name.clone(),
            value: p.value.clone(),
            r#type: p.r#type.clone(),
        })
        .collect()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes).as_ref())
}

/// A new globally unique MessageId (`uuid@party`, RFC 2822 msg-id form without brackets).
pub fn new_message_id(party: &str) -> String {
    let domain: String = party
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("{}@{}.as4gate", uuid::Uuid::now_v7(), domain)
}

/// The crypto generation a request's signature claims (unverified; see
/// [`as4gate_wssec::claimed_signature_method`]): RSA-SHA256 is eDelivery AS4 1.15, Ed25519 and
/// ECDSA are 2.0. Only chooses the key that signs an error answered before a P-Mode matched.
pub fn claimed_profile(
    doc: &uppsala::Document<'_>,
    nodes: &EnvelopeNodes,
) -> Option<SecurityProfile> {
    let method = as4gate_wssec::claimed_signature_method(doc, nodes)?;
    Some(if method == as4gate_ebms::ns::ALG_RSA_SHA256 {
        SecurityProfile::EdeliveryAs4_1_15
    } else {
        SecurityProfile::EdeliveryAs4_2_0
    })
}
