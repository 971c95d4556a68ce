//! Pull (ebMS3 One-Way/Pull): both sides.
//!
//! In as4gate P-Modes `initiator` is always the message's sender (`eb:From`) and `responder`
//! its receiver (`eb:To`); with `binding = "pull"` the responder fetches the message with a
//! PullRequest on the P-Mode's MPC (ebMS3 calls the puller the MEP's initiator — Domibus
//! users swap the two when porting a pull process).
//!
//! **Serving** ([`answer`], for signal-only requests to `/as4`): a PullRequest is verified
//! like a message (the signature must come from a certificate configured for the responder of
//! a pull P-Mode on that MPC whose initiator we are; else EBMS:0101); the oldest message
//! waiting there for that partner is handed out (`WAITING_FOR_RECEIPT`) and answered, signed
//! and encrypted as for a push, and streamed the same way; none waiting is a signed EBMS:0006
//! warning. The puller pushes its receipt back later: it must match the references of the
//! copy handed out ([`super::receipt::judge`]) and makes the message `ACKNOWLEDGED`. Without a
//! receipt in time the message is offered again, and after the P-Mode's retries
//! `SEND_FAILURE` with EBMS:0301 ([`super::send`]).
//!
//! **Pulling** ([`run_puller`], one task per `[[pull]]` entry): every `interval` a signed
//! PullRequest goes to the partner's endpoint; the answer streams into the inbound pipeline
//! exactly as a pushed message does, under the same limits (intake with attachments spooled,
//! decrypt, verify, store, route; duplicates by MessageId), and its signed receipt (or our
//! signed ebMS error) is pushed back. The partner's `timeout` covers the whole exchange,
//! reading and checking the pulled message included. After a message it pulls again at once,
//! so a backlog drains without waiting.

use std::sync::Arc;
use std::time::Duration;

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::error::{EbmsError, ErrorCode};
use as4gate_ebms::model::{Messaging, Signal};
use as4gate_ebms::signal::build_pull_request;
use as4gate_pmode::{Binding, PMode};
use as4gate_wssec::sign::sign_envelope;
use as4gate_wssec::verify::{VerifyRequest, verify_envelope};
use axum::response::Response;
use bytes::Bytes;
use hyper::header::HeaderMap;
use time::OffsetDateTime;

use super::receipt::{Answer, NoAttachments, judge};
use super::send::{compose_stored, next_delay};
use crate::gateway::Shared;
use crate::inbound::process::{
    Arrival, Processed, Rejected, Rejection, claimed_profile, security_policy_for,
};
use crate::inbound::respond;
use crate::store::outbound::SendOutcome;

/// Content type of a signal-only SOAP message.
const SOAP: &str = "application/soap+xml; charset=UTF-8";

/// Answers a signal-only request: a PullRequest, or a receipt or error for a pulled message.
pub async fn answer(shared: &Arc<Shared>, envelope: Vec<u8>) -> Response {
    match answer_inner(shared, &envelope).await {
        Ok(response) => response,
        Err(rejected) => respond::rejection(shared, rejected).await,
    }
}

async fn answer_inner(shared: &Arc<Shared>, envelope: &[u8]) -> Result<Response, Rejected> {
    let gateway = &shared.gateway;
    let text = std::str::from_utf8(envelope)
        .map_err(|_| Rejected::malformed("the SOAP envelope is not UTF-8"))?;
    let doc = as4gate_ebms::xml::parse(text, &gateway.limits).map_err(Rejected::unparsed)?;
    let nodes = EnvelopeNodes::locate(&doc).map_err(Rejected::unparsed)?;
    let messaging = Messaging::parse(&doc, nodes.messaging).map_err(Rejected::unparsed)?;
    let signal = &messaging.signals[0];
    let signal_id = signal.message_info.message_id.clone();
    // A refusal is signed under the generation the signal's own signature claims.
    let claimed = claimed_profile(&doc, &nodes);
    let answered = match &signal.signal {
        Signal::PullRequest(pull) => {
            let mpc = pull
                .mpc
                .clone()
                .unwrap_or_else(|| as4gate_ebms::ns::DEFAULT_MPC.to_owned());
            serve_pull(shared, &doc, &nodes, &mpc, &signal_id).await
        }
        Signal::Receipt(_) | Signal::Errors(_) => {
            let Some(ref_to) = signal.message_info.ref_to_message_id.clone() else {
                return Err(refused(
                    &signal_id,
                    ErrorCode::ValueInconsistent,
                    "a receipt or error signal must carry RefToMessageId",
                ));
            };
            pulled_receipt(shared, envelope, &ref_to, &signal_id).await
        }
    };
    answered.map_err(|rejected| Rejected {
        profile: rejected.profile.or(claimed),
        ..rejected
    })
}

/// Hands out the next message waiting on `mpc` to the verified puller.
async fn serve_pull(
    shared: &Arc<Shared>,
    doc: &uppsala::Document<'_>,
    nodes: &EnvelopeNodes,
    mpc: &str,
    signal_id: &str,
) -> Result<Response, Rejected> {
    let gateway = &shared.gateway;
    let us = &gateway.config.gateway.party_id;
    let offered: Vec<&PMode> = gateway
        .pmodes
        .iter()
        .filter(|p| p.binding == Binding::Pull && &p.initiator.party_id == us)
        .filter(|p| p.business.mpc_or_default() == mpc)
        .collect();
    let Some(first) = offered.first() else {
        return Err(refused(
            signal_id,
            ErrorCode::ProcessingModeMismatch,
            &format!("no pull P-Mode offers MPC {mpc}"),
        ));
    };
    let policy = gateway.security_policy(security_policy_for(first));
    let now = OffsetDateTime::now_utc();
    let verified = verify_envelope(&VerifyRequest {
        doc,
        nodes,
        attachments: &NoAttachments,
        policy: &policy,
        anchors: &gateway.anchors,
        known_certificates: &gateway.known_certificates,
        now,
    })
    .map_err(|e| refused(signal_id, ErrorCode::FailedAuthentication, &e.to_string()))?;
    let puller = offered.iter().find(|p| {
        gateway
            .partners
            .get(&p.responder.party_id)
            .zip(verified.evidence())
            .is_some_and(|(partner, evidence)| evidence.signed_by(&partner.signing_certificates))
    });
    let Some(pmode) = puller else {
        return Err(refused(
            signal_id,
            ErrorCode::FailedAuthentication,
            &format!("the PullRequest is not signed by a party allowed to pull MPC {mpc}"),
        ));
    };
    let partner = &pmode.responder.party_id;
    let ra = &pmode.reception_awareness;
    let retry = Duration::from_secs(ra.retry_interval_secs.max(1));
    let taken = shared
        .store
        .take_for_pull(
            mpc,
            partner,
            |attempt| next_delay(ra, attempt).unwrap_or(retry),
            now,
        )
        .await
        .map_err(|e| Rejected::internal(Some(signal_id.to_owned()), e.into()))?;
    let Some((message_id, attempt)) = taken else {
        return Ok(respond::warning(
            shared,
            Some(signal_id),
            EbmsError::new(
                ErrorCode::EmptyMessagePartitionChannel,
                format!("no message waiting on {mpc} for {partner}"),
            ),
            pmode.security.profile,
        ));
    };
    let internal = |e: anyhow::Error| Rejected::internal(Some(message_id.clone()), e);
    let record = shared
        .store
        .message(&message_id)
        .await
        .map_err(|e| internal(e.into()))?
        .ok_or_else(|| internal(anyhow::anyhow!("the pulled message vanished")))?
        .record;
    let stored_pmode = gateway.pmodes.by_id(&record.pmode_id).unwrap_or(pmode);
    let composed = compose_stored(shared, record, stored_pmode, partner)
        .await
        .map_err(internal)?;
    shared
        .store
        .set_pulled(
            &message_id,
            &composed.references,
            composed.envelope.as_bytes(),
        )
        .await
        .map_err(|e| internal(e.into()))?;
    tracing::info!(message_id, partner, mpc, attempt, "message pulled");
    Ok(respond::message(&composed.content_type, composed.body))
}

/// A receipt (or error) the puller pushed back for a message it pulled from us.
async fn pulled_receipt(
    shared: &Arc<Shared>,
    envelope: &[u8],
    ref_to: &str,
    signal_id: &str,
) -> Result<Response, Rejected> {
    let gateway = &shared.gateway;
    let store = &shared.store;
    let internal = |e: crate::store::StoreError| Rejected::internal(Some(ref_to.into()), e.into());
    let row = store.send_row(ref_to).await.map_err(internal)?;
    let sent = store.pulled_references(ref_to).await.map_err(internal)?;
    let message = store.message(ref_to).await.map_err(internal)?;
    let (Some(row), Some(sent), Some(message)) = (row, sent, message) else {
        return Err(refused(
            signal_id,
            ErrorCode::ValueInconsistent,
            &format!("{ref_to} is not a message that was pulled from this gateway"),
        ));
    };
    let pmode = gateway.pmodes.by_id(&message.record.pmode_id);
    let partner = gateway.partners.get(&row.partner);
    let (Some(pmode), Some(partner)) = (pmode, partner) else {
        return Err(refused(
            signal_id,
            ErrorCode::ProcessingModeMismatch,
            &format!("the P-Mode or partner of {ref_to} is no longer configured"),
        ));
    };
    let now = OffsetDateTime::now_utc();
    let policy = gateway.security_policy(security_policy_for(pmode));
    let outcome = match judge(gateway, &policy, partner, ref_to, &sent, envelope, now) {
        Answer::Receipt => SendOutcome::Acknowledged {
            envelope: Vec::new(),
            receipt: envelope.to_vec(),
        },
        Answer::Error { code, detail } => SendOutcome::Failed {
            code,
            error: format!("the partner answered with an ebMS error: {detail}"),
        },
        Answer::Invalid(reason) => {
            return Err(refused(signal_id, ErrorCode::FailedAuthentication, &reason));
        }
    };
    let applied = store
        .finish_pull(ref_to, &outcome, now)
        .await
        .map_err(internal)?;
    tracing::info!(message_id = ref_to, applied, "receipt for a pulled message");
    Ok(respond::accepted())
}

/// Pulls from the initiator of `pmode_id` (a pull P-Mode whose responder we are) every
/// `interval`, and at once again after each message. Runs until aborted.
pub async fn run_puller(shared: Arc<Shared>, pmode_id: String, interval: Duration) {
    loop {
        match pull_once(&shared, &pmode_id).await {
            Ok(true) => continue,
            Ok(false) => {}
            Err(e) => tracing::warn!(pmode = pmode_id, error = %format!("{e:#}"), "pull failed"),
        }
        tokio::time::sleep(interval).await;
    }
}

/// One PullRequest; true when a message came back.
async fn pull_once(shared: &Arc<Shared>, pmode_id: &str) -> anyhow::Result<bool> {
    let gateway = &shared.gateway;
    let pmode = gateway
        .pmodes
        .by_id(pmode_id)
        .ok_or_else(|| anyhow::anyhow!("no P-Mode {pmode_id}"))?;
    let from = &pmode.initiator.party_id;
    let sender = gateway
        .partners
        .get(from)
        .and_then(|p| p.sender.as_ref())
        .ok_or_else(|| anyhow::anyhow!("partner {from} has no endpoint"))?;
    let now = OffsetDateTime::now_utc();
    let us = &gateway.config.gateway.party_id;
    let request_id = crate::inbound::process::new_message_id(us);
    let unsigned = build_pull_request(
        &request_id,
        &crate::store::timestamp(now),
        pmode.business.mpc_or_default(),
    )?;
    let signed = sign_envelope(
        &unsigned,
        &gateway.keys(pmode.security.profile).signing,
        &[],
    )?;
    // The answer (a message, possibly a large one, or a signal) streams through the same
    // intake and checks as a pushed message, under the same limits.
    let processed = sender
        .post_bytes_streaming(
            SOAP.into(),
            HeaderMap::new(),
            Bytes::from(signed.xml),
            async |answer| {
                let content_type = answer.content_type.unwrap_or_default();
                let length = answer.content_length;
                crate::inbound::receive_body(
                    shared,
                    &content_type,
                    length,
                    answer.body,
                    Arrival::Pulled,
                )
                .await
            },
        )
        .await?;
    let reply = match processed {
        Ok(Processed::Message(accepted)) => {
            let message_id = accepted.record.message_id.clone();
            match crate::inbound::commit(shared, *accepted).await {
                Ok(receipt) => {
                    tracing::info!(message_id, pmode = pmode_id, "pulled a message");
                    receipt
                }
                Err(rejected) => anyhow::bail!("pulled message not stored: {:?}", rejected.reason),
            }
        }
        Ok(Processed::Signal(envelope)) => match error_signal(shared, &envelope) {
            Some(code) if code == ErrorCode::EmptyMessagePartitionChannel.code() => {
                return Ok(false);
            }
            Some(code) => anyhow::bail!("the partner refused the PullRequest with {code}"),
            None => anyhow::bail!("the partner answered the PullRequest with a signal"),
        },
        // A refused message is answered with our signed error; an answer too broken to name
        // a MessageId gets none (the partner could not relate it to a message).
        Err(rejected) => match rejected.reason {
            Rejection::Ebms(error) if rejected.message_id.is_some() => {
                tracing::warn!(message_id = rejected.message_id, code = error.code.code(), detail = %error.detail, "pulled message refused");
                respond::signed_error(
                    shared,
                    rejected.message_id.as_deref(),
                    error,
                    rejected.profile,
                )?
                .into_bytes()
            }
            other => anyhow::bail!("pulled answer refused: {other:?}"),
        },
    };
    let pushed = sender
        .post_bytes(SOAP.into(), HeaderMap::new(), Bytes::from(reply))
        .await?;
    if !(200..300).contains(&pushed.status) {
        anyhow::bail!(
            "the partner answered our receipt with HTTP {}",
            pushed.status
        );
    }
    Ok(true)
}

/// The error code of the ebMS error signal in a signal-only `envelope`, if it carries one.
fn error_signal(shared: &Shared, envelope: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(envelope).ok()?;
    let doc = as4gate_ebms::xml::parse(text, &shared.gateway.limits).ok()?;
    let nodes = EnvelopeNodes::locate(&doc).ok()?;
    let messaging = Messaging::parse(&doc, nodes.messaging).ok()?;
    messaging.signals.iter().find_map(|s| match &s.signal {
        Signal::Errors(errors) => errors.first().map(|e| e.error_code.clone()),
        _ => None,
    })
}

fn refused(signal_id: &str, code: ErrorCode, detail: &str) -> Rejected {
    Rejected {
        message_id: Some(signal_id.to_owned()),
        reason: Rejection::Ebms(EbmsError {
            ref_to_message_id: Some(signal_id.to_owned()),
            ..EbmsError::new(code, detail.to_owned())
        }),
        profile: None,
    }
}
