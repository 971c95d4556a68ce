//! The RabbitMQ backend: durable quorum queues, persistent messages, publisher confirms,
//! manual acks, prefetch, delayed retry tiers and a dead-letter queue ([`topology`]), one
//! supervised connection that reconnects with backoff ([`link`]), and a SQLite outbox
//! drained by a relay ([`relay`]).
//!
//! - **Queued means confirmed.** [`RabbitQueue::publish`] and the relay count a message as
//!   queued only after its publisher confirm, with `mandatory` set so an unroutable message
//!   is an error, not a silent drop.
//! - **Outbox.** Items written with [`crate::queue::outbox::enqueue_in`] inside the store's
//!   transaction are published by the relay and deleted only after their confirm; what a
//!   crash or a lost connection left unconfirmed is published again (duplicates possible).
//! - **Acks after the effect.** Consumers ack manually once the store records the outcome;
//!   retrying or dead-lettering first publishes the new copy and waits for its confirm, then
//!   acks the old one.
//! - **Recovery.** On connection loss the supervisor reconnects with backoff, redeclares the
//!   topology and rebuilds the publisher channel; consumers subscribe again; the broker
//!   requeues what was unacked; the relay republishes what was unconfirmed.

mod consumer;
pub mod link;
pub mod relay;
pub mod topology;
pub mod wire;

use std::sync::Arc;
use std::time::Duration;

use lapin::Confirmation;
use lapin::options::{BasicGetOptions, BasicPublishOptions};
use lapin::types::FieldTable;
use tokio::sync::{Notify, watch};

pub(super) use consumer::Unacked;
pub use consumer::{RESUBSCRIBE_PAUSE, RabbitConsumer};

use self::link::{Link, Target};
use self::relay::Relay;
use self::topology::Topology;
use super::{DeadLetter, Publisher, QueueBackend, QueueConfig, QueueError, WorkItem};
use crate::store::Store;

/// AMQP reply code of a normal channel close.
const REPLY_SUCCESS: u16 = 200;

/// The RabbitMQ queue. Cheap to clone; the supervisor and the relay stop when the last
/// clone (and every consumer and delivery) is dropped.
#[derive(Debug, Clone)]
pub struct RabbitQueue {
    shared: Arc<Shared>,
}

/// What handles, consumers and deliveries share.
#[derive(Debug)]
pub(super) struct Shared {
    topology: Topology,
    links: watch::Receiver<Option<Arc<Link>>>,
    prefetch: u16,
    publish_timeout: Duration,
    connection_name: String,
    relay_wake: Arc<Notify>,
    // Dropped with the last handle: tells the supervisor and the relay to stop.
    _stop: watch::Sender<()>,
}

impl RabbitQueue {
    /// Connects to `config.url`, declares the topology and starts the supervisor and the
    /// relay of the outbox in `store`. Fails if the first connection or declaration fails (or
    /// takes longer than `publish_timeout`).
    pub async fn open(config: &QueueConfig, store: &Store) -> Result<RabbitQueue, QueueError> {
        let topology = Topology::new(&config.prefix, &config.retry_delays);
        let target = Target {
            url: config.url.clone(),
            connection_name: format!("as4gate {} {}", config.prefix, uuid::Uuid::new_v4()),
            topology: topology.clone(),
            reconnect_min: config.reconnect_min,
            reconnect_max: config.reconnect_max,
        };
        let first = tokio::time::timeout(config.publish_timeout, Link::open(&target))
            .await
            .map_err(|_| QueueError::BrokerUnavailable(config.publish_timeout))??;
        let (links_tx, links) = watch::channel(None);
        let (stop_tx, stop) = watch::channel(());
        let relay_wake = Arc::new(Notify::new());
        let connection_name = target.connection_name.clone();
        tokio::spawn(link::supervise(target, first, links_tx, stop.clone()));
        tokio::spawn(
            Relay {
                store: store.clone(),
                links: links.clone(),
                exchange: topology.exchange.clone(),
                work: topology.work.clone(),
                batch: config.relay_batch.get(),
                poll_interval: config.poll_interval,
                wake: relay_wake.clone(),
                stop,
                recovered_up_to: 0,
                republish: std::collections::HashSet::new(),
            }
            .run(),
        );
        Ok(RabbitQueue {
            shared: Arc::new(Shared {
                topology,
                links,
                prefetch: config.prefetch.get(),
                publish_timeout: config.publish_timeout,
                connection_name,
                relay_wake,
                _stop: stop_tx,
            }),
        })
    }

    /// The `connection_name` client property of this queue's broker connections (unique
    /// per [`RabbitQueue::open`]; shown by `rabbitmqctl list_connections client_properties`).
    pub fn connection_name(&self) -> &str {
        &self.shared.connection_name
    }

    /// Deletes this prefix's queues and exchange with everything in them (tests,
    /// decommissioning). The supervisor declares them again on its next reconnect.
    pub async fn delete_topology(&self) -> Result<(), QueueError> {
        let link = self.shared.link(Some(self.shared.publish_timeout)).await?;
        let channel = link.connection.create_channel().await?;
        self.shared.topology.delete(&channel).await?;
        channel
            .close(REPLY_SUCCESS, "topology deleted".into())
            .await?;
        Ok(())
    }
}

impl Shared {
    /// The current live link, waiting up to `timeout` (`None`: as long as it takes).
    async fn link(&self, timeout: Option<Duration>) -> Result<Arc<Link>, QueueError> {
        let mut links = self.links.clone();
        let wait = async move {
            links
                .wait_for(|link| link.as_ref().is_some_and(|l| l.is_up()))
                .await
                .map_err(|_| QueueError::Closed)?
                .clone()
                .ok_or(QueueError::Closed)
        };
        match timeout {
            Some(limit) => tokio::time::timeout(limit, wait)
                .await
                .map_err(|_| QueueError::BrokerUnavailable(limit))?,
            None => wait.await,
        }
    }

    /// Publishes `body` to the queue bound as `routing_key` and waits for its confirm.
    async fn publish_confirmed(
        &self,
        routing_key: &str,
        body: &[u8],
        headers: Option<FieldTable>,
    ) -> Result<(), QueueError> {
        let link = self.link(Some(self.publish_timeout)).await?;
        let confirm = link
            .publisher
            .basic_publish(
                self.topology.exchange.as_str().into(),
                routing_key.into(),
                publish_options(),
                body,
                wire::properties(headers),
            )
            .await?
            .await?;
        confirmed(confirm, routing_key)
    }
}

/// Every publish is mandatory: an unroutable message comes back instead of vanishing.
fn publish_options() -> BasicPublishOptions {
    BasicPublishOptions {
        mandatory: true,
        ..BasicPublishOptions::default()
    }
}

/// Whether a publisher confirm means "queued": acked and not returned as unroutable.
fn confirmed(confirmation: Confirmation, routing_key: &str) -> Result<(), QueueError> {
    match confirmation {
        Confirmation::Ack(None) => Ok(()),
        Confirmation::Ack(Some(_)) => Err(QueueError::Unroutable(routing_key.to_owned())),
        Confirmation::Nack(_) | Confirmation::NotRequested => {
            Err(QueueError::PublishNacked(routing_key.to_owned()))
        }
    }
}

impl Publisher for RabbitQueue {
    async fn publish(&self, item: &WorkItem) -> Result<(), QueueError> {
        let work = self.shared.topology.work.clone();
        self.shared
            .publish_confirmed(&work, &wire::encode(item)?, None)
            .await
    }
}

impl QueueBackend for RabbitQueue {
    type Consumer = RabbitConsumer;

    async fn consumer(&self) -> Result<RabbitConsumer, QueueError> {
        Ok(RabbitConsumer::new(self.shared.clone()))
    }

    /// Reads up to `max` messages of the dead-letter queue without acking them, then closes
    /// the channel so the broker puts them back.
    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let link = self.shared.link(Some(self.shared.publish_timeout)).await?;
        let channel = link.connection.create_channel().await?;
        let mut letters = Vec::new();
        while letters.len() < max {
            let Some(message) = channel
                .basic_get(
                    self.shared.topology.dead.as_str().into(),
                    BasicGetOptions { no_ack: false },
                )
                .await?
            else {
                break;
            };
            match wire::dead_letter(&message.delivery.data, &message.delivery.properties) {
                Ok(letter) => letters.push(letter),
                Err(error) => tracing::warn!(%error, "unreadable dead letter skipped"),
            }
        }
        channel
            .close(REPLY_SUCCESS, "dead letters read".into())
            .await?;
        Ok(letters)
    }

    fn wake(&self) {
        self.shared.relay_wake.notify_one();
    }
}
