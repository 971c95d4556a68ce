//! Judging a partner's synchronous answer to a sent UserMessage (reception awareness).
//!
//! A receipt counts only if all of this holds: the answer is a SOAP 1.2 envelope without a
//! DOCTYPE; its `eb:Messaging` holds a signal whose `RefToMessageId` is our MessageId; the
//! WS-Security signature over Body and `eb:Messaging` verifies under the P-Mode's security
//! profile, by a certificate configured for the responder partner that chains to a trust
//! anchor and is valid now; and its `ebbp:NonRepudiationInformation` repeats exactly the
//! references (URI, digest method and digest value) of the signature we sent, no more, no
//! fewer. Anything less is [`Answer::Invalid`] and the message is sent again.
//!
//! An ebMS error signal is [`Answer::Error`] when it verifies like a receipt would; an
//! unsigned or unverifiable error is only [`Answer::Invalid`] (recorded, and retried), so a
//! forged error cannot stop reception awareness.

use as4gate_ebms::envelope::EnvelopeNodes;
use as4gate_ebms::model::{Messaging, NrReference, Receipt, Signal};
use as4gate_wssec::verify::{AttachmentSource, VerifyRequest, verify_envelope};
use time::OffsetDateTime;

use crate::gateway::{Gateway, Partner};

/// What the answer to one attempt was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// A valid receipt.
    Receipt,
    /// A verified ebMS error signal: the partner refused the message.
    Error {
        /// `EBMS:xxxx`.
        code: String,
        /// Short description and detail.
        detail: String,
    },
    /// Not a valid receipt (unsigned, forged, mismatched, not SOAP, not about our message).
    Invalid(String),
}

/// Judges `body` (the HTTP answer) for the message `message_id` whose signature had
/// `sent` references, under `policy`, from `partner`.
pub fn judge(
    gateway: &Gateway,
    policy: &as4gate_wssec::policy::SecurityPolicy,
    partner: &Partner,
    message_id: &str,
    sent: &[NrReference],
    body: &[u8],
    now: OffsetDateTime,
) -> Answer {
    match judge_inner(gateway, policy, partner, message_id, sent, body, now) {
        Ok(answer) => answer,
        Err(reason) => Answer::Invalid(reason),
    }
}

fn judge_inner(
    gateway: &Gateway,
    policy: &as4gate_wssec::policy::SecurityPolicy,
    partner: &Partner,
    message_id: &str,
    sent: &[NrReference],
    body: &[u8],
    now: OffsetDateTime,
) -> Result<Answer, String> {
    as4gate_ebms::xml::reject_doctype(body).map_err(|e| e.detail)?;
    let text = std::str::from_utf8(body).map_err(|_| "the answer is not UTF-8".to_owned())?;
    let doc = as4gate_ebms::xml::parse(text, &gateway.limits).map_err(|e| e.detail)?;
    let nodes = EnvelopeNodes::locate(&doc).map_err(|e| e.detail)?;
    let messaging = Messaging::parse(&doc, nodes.messaging).map_err(|e| e.detail)?;
    let signal = messaging
        .signals
        .iter()
        .find(|s| s.message_info.ref_to_message_id.as_deref() == Some(message_id))
        .ok_or_else(|| format!("no signal refers to {message_id}"))?;
    let verified = verify_envelope(&VerifyRequest {
        doc: &doc,
        nodes: &nodes,
        attachments: &NoAttachments,
        policy,
        anchors: &gateway.anchors,
        known_certificates: &gateway.known_certificates,
        now,
    });
    let signed_by_partner = verified
        .as_ref()
        .ok()
        .and_then(|v| v.evidence())
        .is_some_and(|e| e.signed_by(&partner.signing_certificates));
    let unverified = |what: &str| match &verified {
        Err(e) => format!("{what} signature does not verify: {e}"),
        Ok(_) => format!("{what} is not signed by a certificate configured for the partner"),
    };
    match &signal.signal {
        Signal::Errors(errors) => {
            let summary = errors
                .iter()
                .map(|e| {
                    format!(
                        "{} {}{}",
                        e.error_code,
                        e.short_description.as_deref().unwrap_or(""),
                        e.error_detail
                            .as_deref()
                            .or(e.description.as_deref())
                            .map(|d| format!(": {d}"))
                            .unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join("; ");
            if !signed_by_partner {
                return Err(format!("{}: {summary}", unverified("error signal")));
            }
            let code = errors
                .first()
                .map(|e| e.error_code.clone())
                .unwrap_or_default();
            Ok(Answer::Error {
                code,
                detail: summary,
            })
        }
        Signal::Receipt(receipt) => {
            if !signed_by_partner {
                return Err(unverified("receipt"));
            }
            let Receipt::NonRepudiation(references) = receipt else {
                return Err("the receipt carries no NonRepudiationInformation".into());
            };
            check_references(sent, references)?;
            Ok(Answer::Receipt)
        }
        Signal::PullRequest(_) => Err("a PullRequest is no answer to a UserMessage".into()),
    }
}

/// The receipt must repeat exactly the references we signed.
fn check_references(sent: &[NrReference], received: &[NrReference]) -> Result<(), String> {
    if sent.len() != received.len() {
        return Err(format!(
            "the receipt lists {} references, we signed {}",
            received.len(),
            sent.len()
        ));
    }
    for ours in sent {
        let theirs = received
            .iter()
            .find(|r| r.uri == ours.uri)
            .ok_or_else(|| format!("the receipt does not list reference {}", ours.uri))?;
        let same_digest = theirs.digest_method == ours.digest_method
            && aws_lc_rs::constant_time::verify_slices_are_equal(
                theirs.digest_value_b64.as_bytes(),
                ours.digest_value_b64.as_bytes(),
            )
            .is_ok();
        if !same_digest {
            return Err(format!(
                "the receipt's digest for {} differs from what we sent",
                ours.uri
            ));
        }
    }
    Ok(())
}

/// Signals carry no attachments.
pub(crate) struct NoAttachments;

impl AttachmentSource for NoAttachments {
    fn attachment(&self, _cid: &str) -> Option<(String, Box<dyn std::io::Read + '_>)> {
        None
    }

    fn cids(&self) -> Vec<String> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(uri: &str, digest: &str) -> NrReference {
        NrReference {
            uri: uri.into(),
            transforms: vec![],
            digest_method: "http://www.w3.org/2001/04/xmlenc#sha256".into(),
            digest_value_b64: digest.into(),
        }
    }

    #[test]
    fn receipts_must_repeat_exactly_our_references() {
        let sent = [reference("#body", "AAA="), reference("cid:p1", "BBB=")];
        assert!(check_references(&sent, &sent).is_ok());
        let swapped = [reference("cid:p1", "BBB="), reference("#body", "AAA=")];
        assert!(check_references(&sent, &swapped).is_ok());
        let tampered = [reference("#body", "AAA="), reference("cid:p1", "CCC=")];
        assert!(
            check_references(&sent, &tampered)
                .unwrap_err()
                .contains("cid:p1")
        );
        assert!(
            check_references(&sent, &sent[..1])
                .unwrap_err()
                .contains("lists 1")
        );
        let other = [reference("#body", "AAA="), reference("cid:p2", "BBB=")];
        assert!(
            check_references(&sent, &other)
                .unwrap_err()
                .contains("cid:p1")
        );
    }
}
