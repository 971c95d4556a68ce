//! The sender: one attempt per send work item, with reception awareness.
//!
//! An attempt composes the message from the store and its P-Mode (compress, sign with our key
//! for the P-Mode's profile, encrypt to the partner's certificate for that profile), POSTs it
//! to the partner's endpoint and judges the answer ([`super::receipt`]). A valid receipt makes
//! the message `ACKNOWLEDGED` (envelope and receipt kept as evidence); a verified ebMS error
//! makes it `SEND_FAILURE` with the partner's code; anything else (no answer, a timeout, a
//! 5xx, a forged or mismatched receipt) is retried with the same MessageId on the P-Mode's
//! reception-awareness schedule, and when that is used up the message is `SEND_FAILURE` with
//! EBMS:0301 MissingReceipt.
//!
//! The outcome is recorded before the work item is settled, and an attempt starts only for a
//! message that is waiting, so a repeated work item never sends an acknowledged message
//! again. A crash mid-attempt leaves the message `SEND_IN_PROGRESS` with its work item
//! unsettled: it is sent again (same MessageId) once the item comes back.

use std::sync::Arc;
use std::time::Duration;

use as4gate_pmode::{Backoff, Binding, ReceptionAwareness};
use hyper::header::HeaderMap;
use time::OffsetDateTime;

use super::compose::{
    MimeStream, Outgoing, OutgoingPayload, PayloadContent, SenderKeys, compose_staged, property,
};
use super::encryption_certificate_for;
use super::receipt::{Answer, judge};
use crate::gateway::Shared;
use crate::queue::Delivery;
use crate::spool::SpoolWriter;
use crate::store::outbound::{ACKNOWLEDGED, SEND_FAILURE, SendOutcome, WAITING_FOR_RECEIPT};
use crate::store::{BlobStore, StoredPayload};

/// ebMS code recorded when reception awareness gives up.
pub const MISSING_RECEIPT: &str = "EBMS:0301";

/// Delay before an item is tried again when the store could not be read or written.
const STORE_RETRY: Duration = Duration::from_secs(1);

/// Sends outbound messages for the delivery worker's send work items.
pub struct OutboundSender {
    shared: Arc<Shared>,
}

/// How the work item is settled after the attempt.
enum Settlement {
    Ack,
    Retry(Duration),
}

impl OutboundSender {
    /// A sender using the gateway's keys, partners, store and blobs.
    pub fn new(shared: Arc<Shared>) -> OutboundSender {
        OutboundSender { shared }
    }

    /// Makes one attempt for the item's message and settles the item.
    pub async fn handle(&self, delivery: Delivery) {
        let message_id = delivery.item().message_id.clone();
        let settled = match self.attempt(&message_id).await {
            Ok(Settlement::Ack) => delivery.ack().await,
            Ok(Settlement::Retry(delay)) => delivery.retry_after(delay).await,
            Err(e) => {
                tracing::warn!(message_id, error = %e, "send attempt could not be recorded");
                delivery.retry_after(STORE_RETRY).await
            }
        };
        if let Err(e) = settled {
            tracing::debug!(message_id, error = %e, "settle missed");
        }
    }

    async fn attempt(&self, message_id: &str) -> anyhow::Result<Settlement> {
        let shared = &self.shared;
        let gateway = &shared.gateway;
        let store = &shared.store;
        let Some(row) = store.send_row(message_id).await? else {
            tracing::warn!(message_id, "send work item without a send record; dropped");
            return Ok(Settlement::Ack);
        };
        if row.state == ACKNOWLEDGED || row.state == SEND_FAILURE {
            return Ok(Settlement::Ack);
        }
        let Some(message) = store.message_for_delivery(message_id).await? else {
            anyhow::bail!("the outbound message {message_id} is missing");
        };
        let record = message.record;
        let now = OffsetDateTime::now_utc();
        let pmode = gateway.pmodes.by_id(&record.pmode_id);
        let partner = gateway.partners.get(&row.partner);
        let (Some(pmode), Some(partner)) = (pmode, partner) else {
            let outcome = SendOutcome::Failed {
                code: "EBMS:0010".into(),
                error: format!(
                    "P-Mode {} or partner {} is no longer configured",
                    record.pmode_id, row.partner
                ),
            };
            if store.start_send(message_id, now).await?.is_some() {
                store.finish_send(message_id, &outcome, now).await?;
            }
            return Ok(Settlement::Ack);
        };
        if pmode.binding == Binding::Pull {
            check_pull(store, message_id, &row, pmode, now).await?;
            return Ok(Settlement::Ack);
        }
        let Some(attempt) = store.start_send(message_id, now).await? else {
            return Ok(Settlement::Ack);
        };
        let Some(sender) = &partner.sender else {
            anyhow::bail!("partner {} has no endpoint", row.partner);
        };
        // A message that cannot be composed (a payload blob gone, the spool disk full) counts
        // as an attempt without a receipt, so it follows the reception-awareness schedule to
        // SEND_FAILURE instead of being retried for ever.
        let verdict = match compose_stored(shared, record, pmode, &row.partner).await {
            Err(e) => Err(format!("the message could not be composed: {e:#}")),
            Ok(MimeStream {
                content_type,
                body,
                envelope,
                references,
            }) => {
                // The body owns the staged parts: a spool file goes when the body has been
                // sent or is dropped. The next attempt composes (and stages) again.
                let answer = sender.post(content_type, HeaderMap::new(), body).await;
                match &answer {
                    Err(e) => Err(e.to_string()),
                    Ok(a) => {
                        let policy = gateway
                            .security_policy(crate::inbound::process::security_policy_for(pmode));
                        match judge(
                            gateway,
                            &policy,
                            partner,
                            message_id,
                            &references,
                            &a.body,
                            OffsetDateTime::now_utc(),
                        ) {
                            Answer::Receipt => Ok(SendOutcome::Acknowledged {
                                envelope: envelope.into_bytes(),
                                receipt: a.body.to_vec(),
                            }),
                            Answer::Error { code, detail } => Ok(SendOutcome::Failed {
                                code,
                                error: format!("the partner answered with an ebMS error: {detail}"),
                            }),
                            Answer::Invalid(reason) => Err(format!("HTTP {}: {reason}", a.status)),
                        }
                    }
                }
            }
        };
        let now = OffsetDateTime::now_utc();
        let outcome = match verdict {
            Ok(outcome) => outcome,
            Err(error) => match next_delay(&pmode.reception_awareness, attempt) {
                Some(retry_in) => SendOutcome::Retry { error, retry_in },
                None => SendOutcome::Failed {
                    code: MISSING_RECEIPT.into(),
                    error: format!(
                        "MissingReceipt: no valid receipt after {attempt} attempts; last: {error}"
                    ),
                },
            },
        };
        match &outcome {
            SendOutcome::Acknowledged { .. } => {
                tracing::info!(message_id, attempt, to = row.partner, "acknowledged")
            }
            SendOutcome::Retry { error, retry_in } => {
                tracing::info!(message_id, attempt, error, retry_in = ?retry_in, "no valid receipt; will retry")
            }
            SendOutcome::Failed { code, error } => {
                tracing::warn!(message_id, attempt, code, error, "send failed")
            }
        }
        store.finish_send(message_id, &outcome, now).await?;
        Ok(match outcome {
            SendOutcome::Retry { retry_in, .. } => Settlement::Retry(retry_in),
            _ => Settlement::Ack,
        })
    }
}

/// The reception-awareness check of a pulled message: if its receipt has not come, it is
/// offered again on its MPC, or given up with EBMS:0301 once the P-Mode's retries are used.
async fn check_pull(
    store: &crate::store::Store,
    message_id: &str,
    row: &crate::store::outbound::SendRow,
    pmode: &as4gate_pmode::PMode,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    if row.state != WAITING_FOR_RECEIPT {
        return Ok(());
    }
    let outcome = match next_delay(&pmode.reception_awareness, row.attempts) {
        Some(retry_in) => SendOutcome::Retry {
            error: "no receipt for the pulled message".into(),
            retry_in,
        },
        None => SendOutcome::Failed {
            code: MISSING_RECEIPT.into(),
            error: format!(
                "MissingReceipt: no receipt after the message was pulled {} times",
                row.attempts
            ),
        },
    };
    if store.finish_pull(message_id, &outcome, now).await? {
        tracing::info!(message_id, attempts = row.attempts, outcome = ?outcome, "pulled message not receipted");
    }
    Ok(())
}

/// Composes a stored outbound message for `partner_id` under `pmode` on a blocking thread:
/// payloads read from the store in chunks and staged in the gateway's spool (memory up to
/// `limits.spool_threshold_bytes`, an anonymous temporary file beyond), the submission's
/// timestamp, our key for the P-Mode's profile and the partner's encryption certificate for
/// it. Returns the message as a streaming body; the staged parts (and any spool file) live
/// until that body is sent or dropped.
pub(super) async fn compose_stored(
    shared: &Arc<Shared>,
    record: crate::store::InboundRecord,
    pmode: &as4gate_pmode::PMode,
    partner_id: &str,
) -> anyhow::Result<MimeStream> {
    let profile = pmode.security.profile;
    let properties = record
        .message_properties
        .iter()
        .map(|p| {
            let mut q = property(&p.name, &p.value);
            q.r#type = p.r#type.clone();
            q
        })
        .collect();
    // Every attempt carries the submission's timestamp, so the signed content is the same
    // each time and a receiver that answers a repeat with its original receipt (as it
    // should for a duplicate) answers with references that still match.
    let stamped = OffsetDateTime::parse(
        &record.message_timestamp,
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap_or_else(|_| OffsetDateTime::now_utc());
    let shared = shared.clone();
    let (pmode_id, partner_id) = (pmode.id.clone(), partner_id.to_owned());
    tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
        let gateway = &shared.gateway;
        let pmode = gateway
            .pmodes
            .by_id(&pmode_id)
            .ok_or_else(|| anyhow::anyhow!("P-Mode {pmode_id} vanished"))?;
        let payloads = record
            .payloads
            .into_iter()
            .map(|p| OutgoingPayload {
                content_id: p.content_id.clone(),
                mime_type: p
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "application/octet-stream".into()),
                character_set: p.character_set.clone(),
                content: StoredBytes {
                    payload: p,
                    blobs: &shared.blobs,
                },
                already_compressed: false,
            })
            .collect();
        let threshold = gateway.config.limits.spool_threshold_bytes;
        let composed = compose_staged(
            &Outgoing {
                pmode,
                message_id: record.message_id,
                conversation_id: record.conversation_id,
                properties,
                payloads,
                now: stamped,
            },
            &SenderKeys {
                signing: &gateway.keys(profile).signing,
                receiver_certificate: encryption_certificate_for(
                    &gateway.partners[&partner_id],
                    profile,
                ),
            },
            || SpoolWriter::new(&shared.spool_dir, threshold),
        )?;
        composed.into_mime_stream()
    })
    .await?
}

/// A stored payload's bytes: the database row's, or the blob file's checked against its id.
struct StoredBytes<'a> {
    payload: StoredPayload,
    blobs: &'a BlobStore,
}

impl PayloadContent for StoredBytes<'_> {
    fn reader(&self) -> std::io::Result<impl std::io::Read + '_> {
        self.payload.reader(self.blobs)
    }
}

/// After attempt `attempt` (1 = the first) got no valid receipt: how long until the next, or
/// `None` when `1 + max_retries` attempts were made.
pub fn next_delay(ra: &ReceptionAwareness, attempt: u32) -> Option<Duration> {
    if attempt > ra.max_retries {
        return None;
    }
    let base = Duration::from_secs(ra.retry_interval_secs.max(1));
    let cap = Duration::from_secs(
        ra.max_retry_interval_secs
            .max(ra.retry_interval_secs)
            .max(1),
    );
    let delay = match ra.backoff {
        Backoff::Constant => base,
        Backoff::Exponential => 2u32
            .checked_pow(attempt.saturating_sub(1))
            .and_then(|f| base.checked_mul(f))
            .unwrap_or(cap),
    };
    Some(delay.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reception_awareness_schedule() {
        let ra = ReceptionAwareness {
            max_retries: 3,
            retry_interval_secs: 10,
            backoff: Backoff::Exponential,
            max_retry_interval_secs: 25,
            ..ReceptionAwareness::default()
        };
        let delays: Vec<_> = (1..=4).map(|a| next_delay(&ra, a)).collect();
        assert_eq!(
            delays,
            [
                Some(Duration::from_secs(10)),
                Some(Duration::from_secs(20)),
                Some(Duration::from_secs(25)),
                None
            ]
        );
        let constant = ReceptionAwareness {
            backoff: Backoff::Constant,
            ..ra
        };
        assert_eq!(next_delay(&constant, 3), Some(Duration::from_secs(10)));
    }
}
