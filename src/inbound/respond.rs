//! The one place where inbound outcomes become HTTP responses.
//!
//! - A receipted message: HTTP 200 with the signed receipt.
//! - A refused message: HTTP 500 with a **signed** ebMS error signal (`eb:Error` with the code,
//!   severity, category, short description and a description naming the failed check), as
//!   Domibus and phase4 answer; `RefToMessageInError` is set when the MessageId was readable.
//! - A request that is not a SOAP 1.2 message at all: HTTP 400 with a SOAP `Sender` fault;
//!   an unknown header block marked `mustUnderstand`: HTTP 500 with a `MustUnderstand` fault.
//! - A pull: the pulled UserMessage (HTTP 200), or a signed EBMS:0006 warning (HTTP 200) when
//!   the MPC is empty; a receipt for a pulled message: HTTP 200, empty.
//! - An internal failure (store or disk): HTTP 500 with a SOAP 1.2 `Receiver` fault and no
//!   receipt, so the sender retries; nothing is half-stored.
//!
//! Every refusal is logged here with the message id.

use axum::body::Body;
use axum::response::Response;
use hyper::StatusCode;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};

use as4gate_ebms::error::EbmsError;
use as4gate_ebms::signal::{ErrorSignalSpec, build_error};
use as4gate_pmode::SecurityProfile;
use as4gate_wssec::sign::sign_envelope;

use crate::delivery::multipart::Multipart;
use crate::gateway::Shared;
use crate::inbound::process::{Rejected, Rejection};

const SOAP_CONTENT_TYPE: &str = "application/soap+xml; charset=UTF-8";

/// The receipt response.
pub fn receipt(receipt: Vec<u8>) -> Response {
    soap(StatusCode::OK, receipt)
}

/// The response for a refused or failed request.
pub async fn rejection(shared: &Shared, rejected: Rejected) -> Response {
    let message_id = rejected.message_id.as_deref().unwrap_or("-");
    match rejected.reason {
        Rejection::Ebms(error) => {
            tracing::warn!(
                message_id,
                code = error.code.code(),
                detail = %error.detail,
                "message refused"
            );
            match signed_error(
                shared,
                rejected.message_id.as_deref(),
                error,
                rejected.profile,
            ) {
                Ok(xml) => soap(StatusCode::INTERNAL_SERVER_ERROR, xml.into_bytes()),
                Err(e) => {
                    tracing::error!(message_id, error = %format!("{e:#}"), "cannot sign the ebMS error");
                    fault("Receiver", "internal error while answering")
                }
            }
        }
        Rejection::Malformed(detail) => {
            tracing::warn!(message_id, %detail, "request is not an AS4 message");
            fault("Sender", &detail)
        }
        Rejection::NotUnderstood(detail) => {
            tracing::warn!(message_id, %detail, "mustUnderstand header refused");
            fault("MustUnderstand", &detail)
        }
        Rejection::Internal(e) => {
            tracing::error!(message_id, error = %format!("{e:#}"), "message not accepted: internal failure");
            fault(
                "Receiver",
                "the gateway could not store the message; nothing was accepted, please retry",
            )
        }
    }
}

/// A signed ebMS error of severity warning with HTTP 200 (EBMS:0006 for an empty MPC: the
/// PullRequest itself was fine), signed with our key for `profile`.
pub fn warning(
    shared: &Shared,
    ref_to: Option<&str>,
    error: EbmsError,
    profile: SecurityProfile,
) -> Response {
    match signed_error(shared, ref_to, error, Some(profile)) {
        Ok(xml) => soap(StatusCode::OK, xml.into_bytes()),
        Err(e) => {
            tracing::error!(error = %format!("{e:#}"), "cannot sign the ebMS warning");
            fault("Receiver", "internal error while answering")
        }
    }
}

/// An AS4 message as the answer (a pulled UserMessage), HTTP 200, streamed with its
/// `Content-Length`.
pub fn message(content_type: &str, body: Multipart) -> Response {
    let (length, body) = body.finish();
    Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_TYPE, content_type)
        .header(CONTENT_LENGTH, length)
        .body(Body::new(body))
        .unwrap_or_default()
}

/// A signal that needs no answer was accepted (a receipt for a pulled message): HTTP 200,
/// empty body.
pub fn accepted() -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .body(Body::empty())
        .unwrap_or_default()
}

/// Builds and signs an ebMS error signal about `ref_to`, with our key for `profile` (the
/// eDelivery AS4 1.15 key when the generation is not known).
pub fn signed_error(
    shared: &Shared,
    ref_to: Option<&str>,
    error: EbmsError,
    profile: Option<SecurityProfile>,
) -> anyhow::Result<String> {
    let now = time::OffsetDateTime::now_utc();
    let spec = ErrorSignalSpec {
        message_id: crate::inbound::process::new_message_id(
            &shared.gateway.config.gateway.party_id,
        ),
        timestamp: crate::store::timestamp(now),
        ref_to_message_id: ref_to.map(str::to_owned),
        errors: std::slice::from_ref(&error),
    };
    let unsigned = build_error(&spec)?;
    let keys = profile.map_or(&shared.gateway.keys_1_15, |p| shared.gateway.keys(p));
    let signed = sign_envelope(&unsigned, &keys.signing, &[])?;
    Ok(signed.xml)
}

fn soap(status: StatusCode, body: Vec<u8>) -> Response {
    Response::builder()
        .status(status)
        .header(CONTENT_TYPE, SOAP_CONTENT_TYPE)
        .body(Body::from(body))
        .unwrap_or_default()
}

/// A SOAP 1.2 fault; `code` is `Sender`, `Receiver` or `MustUnderstand`.
pub fn fault(code: &str, reason: &str) -> Response {
    let status = if code == "Sender" {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    let xml = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body><env:Fault>\
         <env:Code><env:Value>env:{code}</env:Value></env:Code>\
         <env:Reason><env:Text xml:lang=\"en\">{}</env:Text></env:Reason>\
         </env:Fault></env:Body></env:Envelope>",
        as4gate_ebms::xml::escape(reason)
    );
    soap(status, xml.into_bytes())
}
