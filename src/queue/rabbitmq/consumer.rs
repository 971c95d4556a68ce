//! Consuming the work queue: one channel per consumer with `basic.qos(prefetch)` and manual
//! acks, subscribed again on the next link after any channel or connection failure.
//!
//! Unacked deliveries of a lost channel are requeued by the broker and arrive again with the
//! `redelivered` flag; settling one of the old handles then reports
//! [`QueueError::DeliveryLost`]. A body that is not a work item is logged and rejected
//! without requeue (it names no message, so there is nothing to deliver or dead-letter).

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::{BasicAckOptions, BasicConsumeOptions, BasicQosOptions, BasicRejectOptions};
use lapin::types::FieldTable;
use lapin::{Acker, Channel};
use time::OffsetDateTime;

use super::{Shared, wire};
use crate::queue::{Consumer, Delivery, QueueError, Settle, WorkItem};

/// Pause before subscribing again after a failed attempt on a live link.
pub const RESUBSCRIBE_PAUSE: Duration = Duration::from_millis(200);

/// A consumer of the RabbitMQ work queue.
#[derive(Debug)]
pub struct RabbitConsumer {
    shared: Arc<Shared>,
    // Boxed: a lapin consumer is large and most of the time it is simply there.
    subscription: Option<Box<Subscription>>,
}

#[derive(Debug)]
struct Subscription {
    // Kept so the channel (and with it the unacked deliveries) closes when the consumer is
    // dropped.
    _channel: Channel,
    stream: lapin::Consumer,
}

/// An unacked broker delivery.
#[derive(Debug)]
pub(in crate::queue) struct Unacked {
    shared: Arc<Shared>,
    acker: Acker,
}

impl RabbitConsumer {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            subscription: None,
        }
    }

    async fn subscribe(&self) -> Result<Subscription, QueueError> {
        let link = self.shared.link(None).await?;
        let channel = link.connection.create_channel().await?;
        channel
            .basic_qos(self.shared.prefetch, BasicQosOptions::default())
            .await?;
        let stream = channel
            .basic_consume(
                self.shared.topology.work.as_str().into(),
                uuid::Uuid::new_v4().to_string().into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(Subscription {
            _channel: channel,
            stream,
        })
    }
}

impl Consumer for RabbitConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        loop {
            let Some(subscription) = self.subscription.as_mut() else {
                match self.subscribe().await {
                    Ok(subscription) => self.subscription = Some(Box::new(subscription)),
                    Err(QueueError::Closed) => return Err(QueueError::Closed),
                    Err(error) => {
                        tracing::warn!(%error, "subscribing to the work queue failed");
                        tokio::time::sleep(RESUBSCRIBE_PAUSE).await;
                    }
                }
                continue;
            };
            let delivery = match subscription.stream.next().await {
                Some(Ok(delivery)) => delivery,
                Some(Err(error)) => {
                    tracing::warn!(%error, "work queue subscription lost; subscribing again");
                    self.subscription = None;
                    continue;
                }
                None => {
                    self.subscription = None;
                    continue;
                }
            };
            match wire::decode(&delivery.data) {
                Ok(item) => {
                    return Ok(Delivery {
                        item,
                        redelivered: delivery.redelivered
                            || wire::is_possible_duplicate(&delivery.properties),
                        settle: Settle::Rabbit(Unacked {
                            shared: self.shared.clone(),
                            acker: delivery.acker,
                        }),
                    });
                }
                Err(error) => {
                    tracing::error!(%error, "rejecting a work-queue message that is not a work item");
                    let _ = delivery
                        .acker
                        .reject(BasicRejectOptions { requeue: false })
                        .await;
                }
            }
        }
    }
}

impl Unacked {
    pub(in crate::queue) async fn ack(self) -> Result<(), QueueError> {
        match self.acker.ack(BasicAckOptions::default()).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(QueueError::DeliveryLost),
            Err(error) => {
                tracing::debug!(%error, "ack failed; the broker will deliver again");
                Err(QueueError::DeliveryLost)
            }
        }
    }

    /// Publishes the next attempt to the retry tier for `delay` (confirmed), then acks.
    pub(in crate::queue) async fn retry_after(
        self,
        item: WorkItem,
        delay: Duration,
    ) -> Result<(), QueueError> {
        let tier = self
            .shared
            .topology
            .tier_for(delay)
            .ok_or_else(|| QueueError::Config("no retry tiers configured".into()))?
            .to_owned();
        let next = WorkItem {
            attempt: item.attempt.saturating_add(1),
            ..item
        };
        self.shared
            .publish_confirmed(&tier, &wire::encode(&next)?, None)
            .await?;
        self.ack().await
    }

    /// Publishes the item with `reason` to the dead-letter queue (confirmed), then acks.
    pub(in crate::queue) async fn dead_letter(
        self,
        item: WorkItem,
        reason: &str,
    ) -> Result<(), QueueError> {
        let headers = wire::dead_letter_headers(reason, OffsetDateTime::now_utc())?;
        let dead = self.shared.topology.dead.clone();
        self.shared
            .publish_confirmed(&dead, &wire::encode(&item)?, Some(headers))
            .await?;
        self.ack().await
    }
}
