//! Submission: a back-end (or `as4gate send`) hands over a document to send. The submission
//! is checked against its P-Mode and persisted — message row, payloads, send state and the
//! work item, in one transaction — before the MessageId is returned. A caller-supplied
//! submission id makes it idempotent: submitting it again returns the same MessageId and
//! stores nothing.

use std::io::{Read, Write};
use std::path::PathBuf;

use as4gate_pmode::{Binding, PMode};
use time::OffsetDateTime;

use super::encryption_certificate_for;
use crate::gateway::Gateway;
use crate::store::outbound::Submitted;
use crate::store::{
    BlobStore, InboundRecord, PayloadWriter, Store, StoredPayload, StoredProperty, timestamp,
};

/// Where a submitted payload's bytes come from.
#[derive(Debug, Clone)]
pub enum PayloadSource {
    /// A file, streamed into the payload store.
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

/// One payload to send.
#[derive(Debug, Clone)]
pub struct SubmittedPayload {
    /// The bytes.
    pub source: PayloadSource,
    /// Media type (`MimeType` part property), e.g. `application/xml`.
    pub mime_type: String,
    /// `CharacterSet` part property.
    pub character_set: Option<String>,
    /// Content-ID to use; generated when absent.
    pub content_id: Option<String>,
}

/// A document to send.
#[derive(Debug, Clone, Default)]
pub struct Submission {
    /// Caller's id for idempotent resubmission.
    pub submission_id: Option<String>,
    /// The P-Mode (parties, service, action, security).
    pub pmode_id: String,
    /// ConversationId; generated when absent.
    pub conversation_id: Option<String>,
    /// `originalSender` message property.
    pub original_sender: Option<String>,
    /// `finalRecipient` message property.
    pub final_recipient: Option<String>,
    /// `trackingIdentifier` message property.
    pub tracking_identifier: Option<String>,
    /// Further message properties (name, value).
    pub properties: Vec<(String, String)>,
    /// Payloads, in PartInfo order.
    pub payloads: Vec<SubmittedPayload>,
}

/// A submission was refused; nothing was stored.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The submission does not fit its P-Mode or the configuration.
    #[error("submission refused: {0}")]
    Invalid(String),
    /// A payload file could not be read or stored.
    #[error("payload: {0}")]
    Payload(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Checks `submission` against its P-Mode and the partner configuration, stores it and
/// enqueues it for sending.
pub async fn submit(
    gateway: &Gateway,
    store: &Store,
    blobs: &BlobStore,
    submission: Submission,
) -> Result<Submitted, SubmitError> {
    let now = OffsetDateTime::now_utc();
    let pmode = check(gateway, &submission)?;
    let message_id = crate::inbound::process::new_message_id(&gateway.config.gateway.party_id);
    let inline_max = gateway.config.store.inline_payload_bytes;
    let mut payloads = Vec::with_capacity(submission.payloads.len());
    for (i, p) in submission.payloads.iter().enumerate() {
        let blobs = blobs.clone();
        let source = p.source.clone();
        let stored = tokio::task::spawn_blocking(move || -> std::io::Result<_> {
            let mut writer = PayloadWriter::new(&blobs, inline_max);
            match source {
                PayloadSource::File(path) => {
                    let mut file = std::fs::File::open(&path).map_err(|e| {
                        std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
                    })?;
                    std::io::copy(&mut file as &mut dyn Read, &mut writer)?;
                }
                PayloadSource::Bytes(bytes) => writer.write_all(&bytes)?,
            }
            writer.finish()
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))??;
        payloads.push(StoredPayload {
            content_id: p
                .content_id
                .clone()
                .unwrap_or_else(|| format!("payload-{}-{message_id}", i + 1)),
            blob: stored.blob,
            inline: stored.inline,
            mime_type: Some(p.mime_type.clone()),
            character_set: p.character_set.clone(),
            compressed: false,
            properties: Vec::new(),
        });
    }
    let mut properties = Vec::new();
    for (name, value) in [
        ("originalSender", &submission.original_sender),
        ("finalRecipient", &submission.final_recipient),
        ("trackingIdentifier", &submission.tracking_identifier),
    ] {
        if let Some(value) = value {
            properties.push(StoredProperty {
                name: name.to_owned(),
                value: value.clone(),
                r#type: None,
            });
        }
    }
    properties.extend(submission.properties.iter().map(|(n, v)| StoredProperty {
        name: n.clone(),
        value: v.clone(),
        r#type: None,
    }));
    let record = InboundRecord {
        message_id: message_id.clone(),
        pmode_id: pmode.id.clone(),
        from_party: pmode.initiator.party_id.clone(),
        from_role: pmode.initiator.role.clone(),
        to_party: pmode.responder.party_id.clone(),
        to_role: pmode.responder.role.clone(),
        service: pmode.business.service.clone(),
        service_type: pmode.business.service_type.clone(),
        action: pmode.business.action.clone(),
        conversation_id: submission
            .conversation_id
            .clone()
            .unwrap_or_else(|| uuid::Uuid::now_v7().to_string()),
        agreement: pmode.agreement.as_ref().map(|a| a.value.clone()),
        mpc: pmode
            .business
            .mpc
            .clone()
            .unwrap_or_else(|| as4gate_ebms::ns::DEFAULT_MPC.to_owned()),
        ref_to_message_id: None,
        message_timestamp: timestamp(now),
        message_properties: properties,
        is_test: false,
        signer_certificate: None,
        envelope: Vec::new(),
        payloads,
        receipt: Vec::new(),
        received_at: timestamp(now),
    };
    let submitted = store
        .submit(
            &record,
            &pmode.responder.party_id,
            submission.submission_id.as_deref(),
            pmode.binding == Binding::Pull,
            now,
        )
        .await?;
    if submitted.duplicate {
        tracing::info!(
            message_id = submitted.message_id,
            submission_id = submission.submission_id,
            "repeated submission: the earlier message stands"
        );
    } else {
        tracing::info!(
            message_id = submitted.message_id,
            pmode = pmode.id,
            to = pmode.responder.party_id,
            payloads = record.payloads.len(),
            "submitted for sending"
        );
    }
    Ok(submitted)
}

/// Every check that needs no I/O; returns the P-Mode.
fn check<'a>(gateway: &'a Gateway, s: &Submission) -> Result<&'a PMode, SubmitError> {
    let invalid = |m: String| SubmitError::Invalid(m);
    let pmode = gateway
        .pmodes
        .by_id(&s.pmode_id)
        .ok_or_else(|| invalid(format!("no P-Mode with id {:?}", s.pmode_id)))?;
    let us = &gateway.config.gateway.party_id;
    if &pmode.initiator.party_id != us {
        return Err(invalid(format!(
            "P-Mode {} has initiator {:?}; this gateway is {us:?}",
            pmode.id, pmode.initiator.party_id
        )));
    }
    let to = &pmode.responder.party_id;
    let partner = gateway.partners.get(to).ok_or_else(|| {
        invalid(format!(
            "no [[partner]] configuration for the responder {to:?}"
        ))
    })?;
    if pmode.binding == Binding::Push && partner.endpoint.is_none() {
        return Err(invalid(format!("partner {to:?} has no endpoint")));
    }
    if pmode.security.encrypt
        && !s.payloads.is_empty()
        && encryption_certificate_for(partner, pmode.security.profile).is_none()
    {
        return Err(invalid(format!(
            "P-Mode {} encrypts, but partner {to:?} has no encryption certificate for {:?}",
            pmode.id, pmode.security.profile
        )));
    }
    if s.payloads.len() > pmode.payload.max_parts as usize {
        return Err(invalid(format!(
            "{} payloads; P-Mode {} allows at most {}",
            s.payloads.len(),
            pmode.id,
            pmode.payload.max_parts
        )));
    }
    let mut ids = std::collections::HashSet::new();
    for p in &s.payloads {
        let (kind, sub) = p.mime_type.split_once('/').unwrap_or_default();
        if kind.is_empty() || sub.is_empty() || p.mime_type.contains(char::is_whitespace) {
            return Err(invalid(format!(
                "payload MIME type {:?} is not type/subtype",
                p.mime_type
            )));
        }
        if let Some(cid) = &p.content_id
            && (cid.is_empty() || cid.contains(['<', '>', ' ', '"']) || !ids.insert(cid.as_str()))
        {
            return Err(invalid(format!(
                "payload content id {cid:?} is invalid or repeated"
            )));
        }
    }
    for (name, _) in &s.properties {
        let reserved = ["originalSender", "finalRecipient", "trackingIdentifier"];
        if name.trim().is_empty() || reserved.contains(&name.as_str()) {
            return Err(invalid(format!(
                "message property name {name:?} is empty or set by its own option"
            )));
        }
    }
    Ok(pmode)
}
