//! The REST binding: one `multipart/form-data` POST per message.
//!
//! Parts, in order:
//! 1. `metadata` (`Content-Type: application/json`): [`Metadata`], e.g.
//!    ```json
//!    {"messageId":"m1@blue",
//!     "delivery":{"subscription":"archive","attempt":1,"possibleDuplicate":false},
//!     "conversationId":"c1","refToMessageId":null,
//!     "timestamp":"2026-11-23T00:00:00Z","receivedAt":"2026-11-23T00:00:01Z",
//!     "pmodeId":"blue-to-red","agreement":null,"mpc":"…/defaultMPC",
//!     "from":{"partyId":"blue_gw","role":"…/initiator"},
//!     "to":{"partyId":"red_gw","role":"…/responder"},
//!     "service":{"value":"svc","type":null},"action":"act",
//!     "properties":[{"name":"originalSender","value":"x","type":null}],
//!     "payloads":[{"contentId":"p1@x","mimeType":"application/xml","characterSet":null,
//!                  "size":3,"sha256":"…","properties":[]}]}
//!    ```
//! 2. one part per payload, in PartInfo order: `Content-Disposition: form-data;
//!    name="payload"; filename="<content id>"`, `Content-Type: <MimeType>`, the bytes.
//!
//! The request also carries the delivery headers ([`super::MESSAGE_ID_HEADER`],
//! [`super::ATTEMPT_HEADER`], [`super::POSSIBLE_DUPLICATE_HEADER`]). Success is
//! any 2xx ([`RestRetryLogic`]); the answer body is not interpreted. `docs/backend/README.md`
//! describes this binding for back-end developers.

use bytes::Bytes;
use serde::Serialize;

use super::config::BackendConfig;
use super::multipart::{Multipart, open_payloads, quoted, safe_mime_type};
use super::retry::{RestRetryLogic, RetryLogic};
use super::transport::HttpSender;
use super::{Attempt, Connector, ConnectorError, Outcome, delivery_headers};
use crate::store::{BlobStore, InboundRecord, StoredProperty};

/// The JSON `metadata` part.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata<'a> {
    /// ebMS MessageId.
    pub message_id: &'a str,
    /// Which attempt this delivery is.
    pub delivery: AttemptInfo<'a>,
    /// ConversationId.
    pub conversation_id: &'a str,
    /// RefToMessageId.
    pub ref_to_message_id: Option<&'a str>,
    /// MessageInfo/Timestamp as sent.
    pub timestamp: &'a str,
    /// When the gateway received the message.
    pub received_at: &'a str,
    /// The P-Mode it matched.
    pub pmode_id: &'a str,
    /// AgreementRef.
    pub agreement: Option<&'a str>,
    /// Message partition channel.
    pub mpc: &'a str,
    /// Sender.
    pub from: Party<'a>,
    /// Receiver.
    pub to: Party<'a>,
    /// Service.
    pub service: Service<'a>,
    /// Action.
    pub action: &'a str,
    /// Message properties.
    pub properties: &'a [StoredProperty],
    /// Payloads in PartInfo order (the same order as the payload parts).
    pub payloads: Vec<PayloadInfo<'a>>,
}

/// The [`Attempt`] as sent in the metadata.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AttemptInfo<'a> {
    /// The subscription (queue subscriber) this delivery is for.
    pub subscription: &'a str,
    /// 1 for the first attempt, +1 per retry.
    pub attempt: u32,
    /// True when an earlier attempt may already have reached the back-end.
    pub possible_duplicate: bool,
}

/// A party and its role.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Party<'a> {
    /// PartyId value.
    pub party_id: &'a str,
    /// Role.
    pub role: &'a str,
}

/// Service value and type.
#[derive(Debug, Serialize)]
pub struct Service<'a> {
    /// Service value.
    pub value: &'a str,
    /// Service type.
    #[serde(rename = "type")]
    pub r#type: Option<&'a str>,
}

/// Description of one payload part.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PayloadInfo<'a> {
    /// Content-ID (also the part's filename).
    pub content_id: &'a str,
    /// `MimeType` part property.
    pub mime_type: Option<&'a str>,
    /// `CharacterSet` part property.
    pub character_set: Option<&'a str>,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 hex of the bytes.
    pub sha256: &'a str,
    /// All part properties.
    pub properties: &'a [StoredProperty],
}

impl<'a> Metadata<'a> {
    /// The metadata of `m` delivered as `attempt`.
    pub fn of(m: &'a InboundRecord, attempt: &'a Attempt) -> Metadata<'a> {
        Metadata {
            message_id: &m.message_id,
            delivery: AttemptInfo {
                subscription: &attempt.subscription,
                attempt: attempt.number,
                possible_duplicate: attempt.possible_duplicate,
            },
            conversation_id: &m.conversation_id,
            ref_to_message_id: m.ref_to_message_id.as_deref(),
            timestamp: &m.message_timestamp,
            received_at: &m.received_at,
            pmode_id: &m.pmode_id,
            agreement: m.agreement.as_deref(),
            mpc: &m.mpc,
            from: Party {
                party_id: &m.from_party,
                role: &m.from_role,
            },
            to: Party {
                party_id: &m.to_party,
                role: &m.to_role,
            },
            service: Service {
                value: &m.service,
                r#type: m.service_type.as_deref(),
            },
            action: &m.action,
            properties: &m.message_properties,
            payloads: m
                .payloads
                .iter()
                .map(|p| PayloadInfo {
                    content_id: &p.content_id,
                    mime_type: p.mime_type.as_deref(),
                    character_set: p.character_set.as_deref(),
                    size: p.blob.size,
                    sha256: &p.blob.id,
                    properties: &p.properties,
                })
                .collect(),
        }
    }
}

/// Pushes messages to a REST back-end.
#[derive(Debug)]
pub struct RestConnector {
    id: String,
    sender: HttpSender,
    logic: RestRetryLogic,
}

impl RestConnector {
    /// A connector for `config` (its binding is not checked here).
    pub fn new(config: BackendConfig) -> Result<RestConnector, ConnectorError> {
        Ok(RestConnector {
            sender: HttpSender::new(&config)?,
            id: config.id,
            logic: RestRetryLogic,
        })
    }
}

impl Connector for RestConnector {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(
        &self,
        message: &InboundRecord,
        blobs: &BlobStore,
        attempt: &Attempt,
    ) -> Outcome {
        let payloads = match open_payloads(message, blobs).await {
            Ok(p) => p,
            Err(e) => return self.logic.classify(Err(&e)),
        };
        let metadata = match serde_json::to_vec(&Metadata::of(message, attempt)) {
            Ok(json) => json,
            Err(e) => return Outcome::permanent(format!("metadata cannot be encoded: {e}")),
        };
        let mut body = Multipart::new();
        body.bytes_part(
            &[
                "Content-Disposition: form-data; name=\"metadata\"".to_owned(),
                "Content-Type: application/json".to_owned(),
            ],
            Bytes::from(metadata),
        );
        for (stored, payload) in message.payloads.iter().zip(payloads) {
            body.payload_part(
                &[
                    format!(
                        "Content-Disposition: form-data; name=\"payload\"; filename={}",
                        quoted(&stored.content_id)
                    ),
                    format!(
                        "Content-Type: {}",
                        safe_mime_type(stored.mime_type.as_deref())
                    ),
                ],
                payload,
            );
        }
        let content_type = format!("multipart/form-data; boundary={}", body.boundary());
        let headers = delivery_headers(&message.message_id, attempt);
        let answer = self.sender.post(content_type, headers, body).await;
        self.logic.classify(answer.as_ref())
    }
}
