//! The queue layer: durable work items that tell a worker "deliver message M to
//! subscriber S", carried by one of two backends behind one set of traits.
//!
//! - [`embedded`]: tables in the gateway's own SQLite database (the default; no broker).
//! - [`rabbitmq`]: RabbitMQ quorum queues fed through a SQLite outbox.
//!
//! Invariants:
//! - **Ids, never payloads.** A [`WorkItem`] names a message and a subscriber; the store is
//!   the source of truth for the message and its state.
//! - **Durable before acknowledged.** [`Publisher::publish`] returns only after the item is
//!   committed (SQLite) or confirmed by the broker (publisher confirm). Work that must be
//!   atomic with a store change is written with [`outbox::enqueue_in`] inside the caller's
//!   own transaction: committed together or not at all.
//! - **At-least-once delivery, idempotent consumers.** A delivery that is not settled
//!   (crash, dropped handle, lost connection) is delivered again; a relay crash between the
//!   broker's confirm and the outbox delete republishes. Consumers must treat a repeated
//!   `(message_id, subscriber)` as done when the store says it is.
//! - **Settle after the effect.** A consumer calls exactly one of [`Delivery::ack`] (done),
//!   [`Delivery::retry_after`] (try again later, `attempt + 1`) or
//!   [`Delivery::dead_letter`] (give up, with a reason) once the outcome is recorded in the
//!   store. Retrying and dead-lettering write the new copy durably before the old one is
//!   removed, so an item is never in neither place (it may briefly be in both).
//!
//! Which backend runs is chosen by [`QueueConfig::backend`]; [`Queue::open`] builds it.

pub mod config;
pub mod embedded;
pub mod outbox;
pub mod rabbitmq;

use std::future::Future;
use std::time::Duration;

use crate::store::Store;
use time::OffsetDateTime;

pub use config::{QueueBackendKind, QueueConfig};
pub use embedded::{EmbeddedConsumer, EmbeddedQueue};
pub use rabbitmq::{RabbitConsumer, RabbitQueue};

/// One unit of work: deliver `message_id` to `subscriber`. Ids only, never payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkItem {
    /// ebMS MessageId of the stored message.
    pub message_id: String,
    /// Who the message goes to (a back-end connector or partner route name).
    pub subscriber: String,
    /// Attempts made before this one: 0 on first delivery, +1 per [`Delivery::retry_after`].
    pub attempt: u32,
    /// When the item was first enqueued.
    pub enqueued_at: OffsetDateTime,
}

impl WorkItem {
    /// A first attempt at delivering `message_id` to `subscriber`, enqueued at `now`.
    pub fn new(
        message_id: impl Into<String>,
        subscriber: impl Into<String>,
        now: OffsetDateTime,
    ) -> Self {
        Self {
            message_id: message_id.into(),
            subscriber: subscriber.into(),
            attempt: 0,
            enqueued_at: now,
        }
    }
}

/// An item an operator has to look at: its attempts are used up or it could not be handled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The item as it was last delivered (its `attempt` counts the tries made).
    pub item: WorkItem,
    /// Why it was given up, as passed to [`Delivery::dead_letter`].
    pub reason: String,
    /// When it was dead-lettered.
    pub dead_lettered_at: OffsetDateTime,
}

/// A queue operation failed. Errors are transient unless the variant says otherwise: the
/// caller retries, and nothing durable was lost.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The SQLite database reported an error.
    #[error("queue database: {0}")]
    Database(#[from] sqlx::Error),
    /// The broker or the AMQP connection reported an error.
    #[error("broker: {0}")]
    Broker(#[from] lapin::Error),
    /// No broker connection came up within `publish_timeout`.
    #[error("no broker connection within {0:?}")]
    BrokerUnavailable(Duration),
    /// The broker refused a publish (negative publisher confirm).
    #[error("the broker nacked a publish to `{0}`")]
    PublishNacked(String),
    /// The broker could not route a publish to any queue (topology missing).
    #[error("the broker could not route a publish to `{0}`")]
    Unroutable(String),
    /// The delivery's lease or channel is gone (lease expired, connection lost): the item
    /// will be delivered again, possibly to another consumer, and this settle had no effect.
    #[error("delivery lost before it was settled; it will be delivered again")]
    DeliveryLost,
    /// A stored or received work item could not be decoded.
    #[error("malformed work item: {0}")]
    MalformedItem(String),
    /// The queue is shutting down.
    #[error("the queue is closed")]
    Closed,
    /// The queue configuration is unusable (see [`QueueConfig::problems`]).
    #[error("queue configuration: {0}")]
    Config(String),
}

impl From<crate::store::StoreError> for QueueError {
    /// A store write done for the queue (the outbox relay's deletions): the database's own
    /// error as it is, a stopped writer as a closed queue.
    fn from(error: crate::store::StoreError) -> Self {
        match error {
            crate::store::StoreError::Database(error) => QueueError::Database(error),
            crate::store::StoreError::WriterStopped => QueueError::Closed,
            other => QueueError::Database(sqlx::Error::Protocol(other.to_string())),
        }
    }
}

/// Makes work items durable.
pub trait Publisher {
    /// Enqueues `item`; returns only once it is durable (SQLite commit or broker confirm).
    fn publish(&self, item: &WorkItem) -> impl Future<Output = Result<(), QueueError>> + Send;
}

/// Hands out work items one at a time.
pub trait Consumer {
    /// Waits for the next due item. Holds at most `prefetch` unsettled deliveries: once
    /// that many are out, waits until one is settled (or dropped).
    fn next(&mut self) -> impl Future<Output = Result<Delivery, QueueError>> + Send;
}

/// A queue backend: a [`Publisher`] that also opens consumers and lists dead letters.
pub trait QueueBackend: Publisher + Clone + Send + Sync + 'static {
    /// The consumer this backend opens.
    type Consumer: Consumer + Send + 'static;

    /// Opens a consumer of the work queue.
    fn consumer(&self) -> impl Future<Output = Result<Self::Consumer, QueueError>> + Send;

    /// The oldest dead letters, at most `max`, left in place.
    fn dead_letters(
        &self,
        max: usize,
    ) -> impl Future<Output = Result<Vec<DeadLetter>, QueueError>> + Send;

    /// Wakes consumers (embedded) or the outbox relay (RabbitMQ) at once; call after
    /// committing a transaction that used [`outbox::enqueue_in`]. Without it they notice
    /// within `poll_interval`.
    fn wake(&self);
}

/// A delivered work item, to be settled exactly once.
///
/// Dropping it unsettled abandons it like a crash would: the embedded backend delivers it
/// again when its lease expires, RabbitMQ when the consumer's channel closes.
#[derive(Debug)]
pub struct Delivery {
    item: WorkItem,
    redelivered: bool,
    settle: Settle,
}

/// How a delivery is settled, per backend.
#[derive(Debug)]
enum Settle {
    Embedded(embedded::Lease),
    Rabbit(rabbitmq::Unacked),
}

impl Delivery {
    /// The work item.
    pub fn item(&self) -> &WorkItem {
        &self.item
    }

    /// Whether this item was delivered before and not settled (a possible duplicate).
    pub fn redelivered(&self) -> bool {
        self.redelivered
    }

    /// The work is done: removes the item.
    pub async fn ack(self) -> Result<(), QueueError> {
        match self.settle {
            Settle::Embedded(lease) => lease.ack().await,
            Settle::Rabbit(unacked) => unacked.ack().await,
        }
    }

    /// Try again after `delay` with `attempt + 1`. With RabbitMQ the delay is rounded up
    /// to the next retry tier (or down to the longest one).
    pub async fn retry_after(self, delay: Duration) -> Result<(), QueueError> {
        match self.settle {
            Settle::Embedded(lease) => lease.retry_after(delay).await,
            Settle::Rabbit(unacked) => unacked.retry_after(self.item, delay).await,
        }
    }

    /// Give up: moves the item to the dead-letter queue with `reason`.
    pub async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        match self.settle {
            Settle::Embedded(lease) => lease.dead_letter(reason).await,
            Settle::Rabbit(unacked) => unacked.dead_letter(self.item, reason).await,
        }
    }
}

/// The backend selected in the configuration.
#[derive(Debug, Clone)]
pub enum Queue {
    /// SQLite tables in the gateway's database.
    Embedded(EmbeddedQueue),
    /// RabbitMQ with the SQLite outbox.
    Rabbit(RabbitQueue),
}

/// A consumer of whichever backend is configured.
#[derive(Debug)]
pub enum QueueConsumer {
    /// An embedded consumer.
    Embedded(EmbeddedConsumer),
    /// A RabbitMQ consumer.
    Rabbit(RabbitConsumer),
}

impl Queue {
    /// Opens the backend `config` selects on the database of `store`.
    /// With RabbitMQ this declares the topology, then starts the connection supervisor and the
    /// outbox relay; it fails if the broker cannot be reached within `publish_timeout`.
    pub async fn open(config: &QueueConfig, store: &Store) -> Result<Queue, QueueError> {
        let problems = config.problems();
        if !problems.is_empty() {
            return Err(QueueError::Config(problems.join("; ")));
        }
        Ok(match config.backend {
            QueueBackendKind::Embedded => {
                Queue::Embedded(EmbeddedQueue::new(store.clone(), config))
            }
            QueueBackendKind::Rabbitmq => Queue::Rabbit(RabbitQueue::open(config, store).await?),
        })
    }
}

impl Publisher for Queue {
    async fn publish(&self, item: &WorkItem) -> Result<(), QueueError> {
        match self {
            Queue::Embedded(q) => q.publish(item).await,
            Queue::Rabbit(q) => q.publish(item).await,
        }
    }
}

impl QueueBackend for Queue {
    type Consumer = QueueConsumer;

    async fn consumer(&self) -> Result<QueueConsumer, QueueError> {
        Ok(match self {
            Queue::Embedded(q) => QueueConsumer::Embedded(q.consumer().await?),
            Queue::Rabbit(q) => QueueConsumer::Rabbit(q.consumer().await?),
        })
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        match self {
            Queue::Embedded(q) => q.dead_letters(max).await,
            Queue::Rabbit(q) => q.dead_letters(max).await,
        }
    }

    fn wake(&self) {
        match self {
            Queue::Embedded(q) => q.wake(),
            Queue::Rabbit(q) => q.wake(),
        }
    }
}

impl Consumer for QueueConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        match self {
            QueueConsumer::Embedded(c) => c.next().await,
            QueueConsumer::Rabbit(c) => c.next().await,
        }
    }
}

/// Milliseconds since the Unix epoch, the unit of the schedule columns and broker TTLs.
fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Formats a timestamp for storage and the wire (RFC 3339, full precision).
fn rfc3339(at: OffsetDateTime) -> Result<String, QueueError> {
    at.format(&time::format_description::well_known::Rfc3339)
        .map_err(|e| QueueError::MalformedItem(format!("timestamp: {e}")))
}

/// Parses a timestamp written by [`rfc3339`].
fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, QueueError> {
    OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| QueueError::MalformedItem(format!("timestamp `{text}`: {e}")))
}
