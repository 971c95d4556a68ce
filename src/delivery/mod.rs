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
//! Invariants: success is only an explicit success answer (2xx, and for SOAP an envelope
//! without a fault); payloads stored as blob files are streamed, never loaded whole; at most
//! `concurrency` exchanges per back-end run at once, each bounded by `timeout`.

pub mod config;
pub mod multipart;
pub mod rest;
pub mod retry;
pub mod soap;
pub mod transport;

use std::future::Future;

pub use config::{BackendConfig, BackendTls, Backoff, Binding, RetrySchedule};
pub use rest::RestConnector;
pub use retry::{Answer, ExchangeError, RestRetryLogic, RetryLogic, SoapRetryLogic};
pub use soap::SoapConnector;

use crate::store::{BlobStore, InboundRecord};

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
    fn deliver(
        &self,
        message: &InboundRecord,
        blobs: &BlobStore,
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

    async fn deliver(&self, message: &InboundRecord, blobs: &BlobStore) -> Outcome {
        match self {
            AnyConnector::Rest(c) => c.deliver(message, blobs).await,
            AnyConnector::Soap(c) => c.deliver(message, blobs).await,
        }
    }
}
