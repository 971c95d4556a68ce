//! Delivery: pushing received messages to the institution's back-ends.
//!
//! A [`Connector`] makes one attempt at delivering one stored message to one back-end and
//! says what came of it as an [`Outcome`]; the caller (the delivery worker) turns that into
//! a queue settlement: `Delivered` → ack, `Retry` → `retry_after(schedule.next_delay(attempt))`
//! or dead-letter when the schedule is used up, `Permanent` → dead-letter. Connectors never
//! touch the queue or the store's state, so the decision "done or not" is made in one place,
//! [`retry::RetryLogic`], shared by every connector (see its module for the table).
//!
//! Bindings ([`config::Binding`]):
//! - [`rest`]: `multipart/form-data` with a JSON `metadata` part and one part per payload.
//! - [`soap`]: SOAP 1.2 `deliverMessage` in namespace `urn:as4gate:backend:1`, payloads as
//!   SwA attachments referenced by `cid:`.
//!
//! Every delivery says which [`Attempt`] it is: both bindings carry the subscription, the
//! attempt number and the possible-duplicate flag in the body (SOAP `<delivery>` element,
//! REST `delivery` object) and as the HTTP headers [`MESSAGE_ID_HEADER`],
//! [`ATTEMPT_HEADER`] and [`POSSIBLE_DUPLICATE_HEADER`]. Delivery is at least once, so a
//! back-end deduplicates by MessageId. The interface is specified for back-end developers in
//! `docs/backend/` (WSDL and XSD of the SOAP binding, README for both bindings).
//!
//! Invariants: success is only an explicit success answer (2xx, and for SOAP an envelope
//! without a fault); payloads stored as blob files are streamed, never loaded whole; at most
//! `concurrency` exchanges per back-end run at once, each bounded by `timeout`.

pub mod config;
pub mod multipart;
pub mod rest;
pub mod retry;
pub mod routing;
pub mod soap;
pub mod transport;
pub mod worker;

use std::future::Future;

use hyper::header::{HeaderMap, HeaderName, HeaderValue};

pub use config::{BackendConfig, BackendTls, Backoff, Binding, RetrySchedule};
pub use rest::RestConnector;
pub use retry::{Answer, ExchangeError, RestRetryLogic, RetryLogic, SoapRetryLogic};
pub use soap::SoapConnector;

use crate::store::{BlobStore, InboundRecord};

/// HTTP request header with the ebMS MessageId, as in the body. Left out when the id is not
/// visible ASCII (the gateway accepts no such id inbound; the body always has it).
pub const MESSAGE_ID_HEADER: &str = "x-as4gate-message-id";

/// HTTP request header with [`Attempt::number`] in decimal.
pub const ATTEMPT_HEADER: &str = "x-as4gate-attempt";

/// HTTP request header with [`Attempt::possible_duplicate`]: `true` or `false`.
pub const POSSIBLE_DUPLICATE_HEADER: &str = "x-as4gate-possible-duplicate";

/// Which attempt of which subscription a delivery is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The subscription (queue subscriber) this delivery is for.
    pub subscription: String,
    /// 1 for the first attempt, +1 per retry.
    pub number: u32,
    /// True when an earlier attempt may already have reached the back-end (a retry after a
    /// crash, a lost acknowledgement or a replay): back-ends deduplicate by MessageId.
    pub possible_duplicate: bool,
}

/// The delivery headers ([`MESSAGE_ID_HEADER`], [`ATTEMPT_HEADER`],
/// [`POSSIBLE_DUPLICATE_HEADER`]) both bindings send for `message_id` and `attempt`.
pub(crate) fn delivery_headers(message_id: &str, attempt: &Attempt) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let visible_ascii = !message_id.is_empty() && message_id.bytes().all(|b| b.is_ascii_graphic());
    if visible_ascii && let Ok(value) = HeaderValue::from_str(message_id) {
        headers.insert(HeaderName::from_static(MESSAGE_ID_HEADER), value);
    }
    headers.insert(
        HeaderName::from_static(ATTEMPT_HEADER),
        HeaderValue::from(attempt.number),
    );
    headers.insert(
        HeaderName::from_static(POSSIBLE_DUPLICATE_HEADER),
        HeaderValue::from_static(if attempt.possible_duplicate {
            "true"
        } else {
            "false"
        }),
    );
    headers
}

/// What one delivery attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The back-end explicitly accepted the message.
    Delivered,
    /// Not delivered this time; trying again may succeed.
    Retry {
        /// Why, for the state history and the operator.
        reason: String,
    },
    /// Not delivered, and trying again will not help (the back-end refused it, or the
    /// message cannot be sent as stored).
    Permanent {
        /// Why, for the dead letter.
        reason: String,
    },
}

impl Outcome {
    /// A [`Outcome::Retry`] with this reason.
    pub fn retry(reason: impl Into<String>) -> Outcome {
        Outcome::Retry {
            reason: reason.into(),
        }
    }

    /// A [`Outcome::Permanent`] with this reason.
    pub fn permanent(reason: impl Into<String>) -> Outcome {
        Outcome::Permanent {
            reason: reason.into(),
        }
    }
}

/// A connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    /// The back-end settings are unusable; every problem found is listed.
    #[error("backend configuration: {}", .0.join("; "))]
    Config(Vec<String>),
    /// A TLS certificate or key file could not be read.
    #[error("backend TLS file: {0}")]
    Pem(#[from] crate::pem::PemError),
    /// rustls refused the TLS material.
    #[error("backend TLS: {0}")]
    Tls(#[from] rustls::Error),
}

/// Pushes messages to one back-end.
pub trait Connector: Send + Sync {
    /// The back-end's configured id.
    fn id(&self) -> &str;

    /// One attempt at delivering `message` (payloads read from `blobs`); waits for a
    /// concurrency permit, then runs one exchange bounded by the back-end's timeout.
    ///
    /// `attempt` is passed on to the back-end unchanged (in the body and as the delivery
    /// headers) so it can tell a retry from a first delivery and deduplicate; the caller
    /// numbers the attempts and decides `possible_duplicate`. It does not change what the
    /// connector sends otherwise, nor how the answer is classified.
    fn deliver(
        &self,
        message: &InboundRecord,
        blobs: &BlobStore,
        attempt: &Attempt,
    ) -> impl Future<Output = Outcome> + Send;
}

/// The connector a [`BackendConfig`] asks for.
#[derive(Debug)]
pub enum AnyConnector {
    /// `binding = "rest"`.
    Rest(RestConnector),
    /// `binding = "soap"`.
    Soap(SoapConnector),
}

impl AnyConnector {
    /// Builds the connector of `config.binding` (checks the config, loads TLS files).
    pub fn new(config: BackendConfig) -> Result<AnyConnector, ConnectorError> {
        Ok(match config.binding {
            Binding::Rest => AnyConnector::Rest(RestConnector::new(config)?),
            Binding::Soap => AnyConnector::Soap(SoapConnector::new(config)?),
        })
    }
}

impl Connector for AnyConnector {
    fn id(&self) -> &str {
        match self {
            AnyConnector::Rest(c) => c.id(),
            AnyConnector::Soap(c) => c.id(),
        }
    }

    async fn deliver(
        &self,
        message: &InboundRecord,
        blobs: &BlobStore,
        attempt: &Attempt,
    ) -> Outcome {
        match self {
            AnyConnector::Rest(c) => c.deliver(message, blobs, attempt).await,
            AnyConnector::Soap(c) => c.deliver(message, blobs, attempt).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attempt(number: u32, possible_duplicate: bool) -> Attempt {
        Attempt {
            subscription: "archive".to_owned(),
            number,
            possible_duplicate,
        }
    }

    #[test]
    fn delivery_headers_carry_the_attempt() {
        let h = delivery_headers("m1@blue.example", &attempt(3, true));
        assert_eq!(h[MESSAGE_ID_HEADER], "m1@blue.example");
        assert_eq!(h[ATTEMPT_HEADER], "3");
        assert_eq!(h[POSSIBLE_DUPLICATE_HEADER], "true");
        let h = delivery_headers("m1@blue.example", &attempt(1, false));
        assert_eq!(h[ATTEMPT_HEADER], "1");
        assert_eq!(h[POSSIBLE_DUPLICATE_HEADER], "false");
    }

    #[test]
    fn message_id_header_is_left_out_when_not_visible_ascii() {
        for id in ["", "a b@c", "caf\u{e9}@x", "a\r\nX-Injected: 1"] {
            let h = delivery_headers(id, &attempt(1, false));
            assert!(!h.contains_key(MESSAGE_ID_HEADER), "{id:?}");
            assert_eq!(h.len(), 2);
        }
    }
}
