//! The delivery worker: takes work items off the queue, pushes each message to its
//! subscription's back-end and records what came of it. Send work items (outbound messages,
//! subscriber [`SEND_SUBSCRIBER`]) go to the [`OutboundSender`] instead.
//!
//! For each work item `(message, subscription)`:
//! 1. The store's delivery row decides whether there is anything to do: only a `pending` row
//!    is delivered, so a repeated item (a redelivery after a crash, a broker restart, a
//!    relay republish) finds `delivered` and is acknowledged without a second push.
//! 2. A suspended queue or disabled subscription parks the row as `held` (its TTL keeps
//!    counting); resuming re-enqueues it ([`crate::store::Store::unpause`]).
//! 3. A row past its queue's TTL is dead-lettered as `expired`.
//! 4. Otherwise the back-end's connector makes one attempt, and the [`Outcome`] is recorded
//!    **before** the item is settled: `Delivered` → ack; `Retry` → `retry_after` the
//!    back-end's schedule (never past the TTL) or dead-letter `retries_exhausted`;
//!    `Permanent` → dead-letter `permanent_error`.
//!
//! Every delivery runs in its own task, so a slow or failing back-end holds only its own
//! items (bounded by the back-end's `concurrency`), never the others'. A second copy of an
//! item that is being delivered by this process (possible after a crash: the outbox
//! republishes what it cannot prove was confirmed) is put back for later instead of being
//! pushed in parallel. Items that cannot be
//! decided because the store is unavailable are retried after [`STORE_RETRY`] unchanged.
//!
//! A background loop refreshes the operator pauses every [`REFRESH`] and dead-letters held
//! deliveries whose TTL ran out, so `expired` shows up even while a queue stays suspended.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::task::JoinSet;

use super::routing::Router;
use super::{AnyConnector, Attempt, Connector, Outcome, RetrySchedule};
use crate::outbound::send::OutboundSender;
use crate::queue::{Consumer, Delivery, Queue, QueueBackend, QueueError};
use crate::store::deliveries::PauseKind;
use crate::store::outbound::SEND_SUBSCRIBER;
use crate::store::{BlobStore, DeadReason, DeliveryChange, DeliveryRow, Store};

/// How often pauses are re-read and expired held deliveries swept.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Delay before an item is tried again when the store could not be read or written.
pub const STORE_RETRY: Duration = Duration::from_secs(1);

/// Delay before a copy of an item that is being delivered right now is looked at again.
const DUPLICATE_PAUSE: Duration = Duration::from_secs(1);

/// Most expired held deliveries dead-lettered per sweep.
const SWEEP_BATCH: u32 = 256;

/// One back-end: its connector and retry schedule.
struct Backend {
    connector: AnyConnector,
    schedule: RetrySchedule,
}

/// Everything a delivery task needs.
struct Inner {
    store: Store,
    blobs: BlobStore,
    router: Router,
    backends: HashMap<String, Backend>,
    pauses: RwLock<HashSet<(PauseKind, String)>>,
    /// `(message_id, subscription)` pairs being delivered by this process right now.
    in_flight: Mutex<HashSet<(String, String)>>,
    /// Handles send work items (subscriber [`SEND_SUBSCRIBER`]).
    outbound: Option<OutboundSender>,
}

/// The delivery worker of one gateway process.
pub struct DeliveryWorker {
    inner: Arc<Inner>,
}

impl DeliveryWorker {
    /// A worker delivering through `connectors` (one per configured back-end) as `router`
    /// routes, and sending outbound messages with `outbound`.
    pub fn new(
        store: Store,
        blobs: BlobStore,
        router: Router,
        connectors: Vec<(AnyConnector, RetrySchedule)>,
        outbound: Option<OutboundSender>,
    ) -> DeliveryWorker {
        let backends = connectors
            .into_iter()
            .map(|(connector, schedule)| {
                (
                    connector.id().to_owned(),
                    Backend {
                        connector,
                        schedule,
                    },
                )
            })
            .collect();
        DeliveryWorker {
            inner: Arc::new(Inner {
                store,
                blobs,
                router,
                backends,
                pauses: RwLock::new(HashSet::new()),
                in_flight: Mutex::new(HashSet::new()),
                outbound,
            }),
        }
    }

    /// Runs until the queue closes: consumes work items and delivers each in its own task.
    pub async fn run(self, queue: Queue) {
        let inner = self.inner;
        inner.refresh().await;
        let housekeeping = tokio::spawn({
            let inner = inner.clone();
            async move {
                let mut tick = tokio::time::interval(REFRESH);
                loop {
                    tick.tick().await;
                    inner.refresh().await;
                    inner.sweep_expired_held().await;
                }
            }
        });
        let mut consumer = loop {
            match queue.consumer().await {
                Ok(c) => break c,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery worker: cannot open a consumer; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
        };
        let mut tasks = JoinSet::new();
        loop {
            match consumer.next().await {
                Ok(delivery) => {
                    let inner = inner.clone();
                    tasks.spawn(async move { inner.handle(delivery).await });
                }
                Err(QueueError::Closed) => break,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery worker: queue error; retrying");
                    tokio::time::sleep(STORE_RETRY).await;
                }
            }
            while tasks.try_join_next().is_some() {}
        }
        housekeeping.abort();
        while tasks.join_next().await.is_some() {}
    }
}

impl Inner {
    /// Re-reads the operator pauses.
    async fn refresh(&self) {
        match self.store.pauses().await {
            Ok(p) => *self.pauses.write().unwrap_or_else(|e| e.into_inner()) = p,
            Err(e) => tracing::warn!(error = %e, "delivery worker: cannot read pauses"),
        }
    }

    fn paused(&self, row: &DeliveryRow) -> bool {
        let pauses = self.pauses.read().unwrap_or_else(|e| e.into_inner());
        pauses.contains(&(PauseKind::Queue, row.queue.clone()))
            || pauses.contains(&(PauseKind::Subscription, row.subscription.clone()))
    }

    /// Dead-letters held deliveries whose TTL ran out.
    async fn sweep_expired_held(&self) {
        let rows = match self
            .store
            .expired_held(OffsetDateTime::now_utc(), SWEEP_BATCH)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %e, "delivery worker: cannot sweep held deliveries");
                return;
            }
        };
        for row in rows {
            let change = dead(&row, DeadReason::Expired, expiry_error(&row), true);
            if let Err(e) = self.store.record_delivery(change).await {
                tracing::warn!(error = %e, message_id = row.message_id, "cannot expire");
            } else {
                tracing::warn!(
                    message_id = row.message_id,
                    subscription = row.subscription,
                    "held delivery expired; dead-lettered"
                );
            }
        }
    }

    /// Decides, attempts, records and settles one work item.
    async fn handle(&self, delivery: Delivery) {
        let item = delivery.item().clone();
        let key = (item.message_id.clone(), item.subscriber.clone());
        let first = self
            .in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.clone());
        if !first {
            // A second copy (an outbox republish after a crash) while the first is being
            // delivered: look again once the first is settled, never push it twice at once.
            if let Err(e) = delivery.retry_after(DUPLICATE_PAUSE).await {
                tracing::debug!(message_id = item.message_id, error = %e, "settle missed");
            }
            return;
        }
        if item.subscriber == SEND_SUBSCRIBER
            && let Some(sender) = &self.outbound
        {
            sender.handle(delivery).await;
            self.in_flight
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&key);
            return;
        }
        let decided = self.decide(&delivery).await;
        self.in_flight
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        let settled = match decided {
            Ok(Settlement::Ack) => delivery.ack().await,
            Ok(Settlement::Retry(delay)) => delivery.retry_after(delay).await,
            Ok(Settlement::DeadLetter(reason)) => delivery.dead_letter(reason.as_str()).await,
            Err(e) => {
                tracing::warn!(
                    message_id = item.message_id,
                    subscription = item.subscriber,
                    error = %e,
                    "delivery could not be recorded; trying again"
                );
                delivery.retry_after(STORE_RETRY).await
            }
        };
        if let Err(e) = settled {
            // The store already holds the outcome; a lost settle only means the item comes
            // back and finds nothing left to do.
            tracing::debug!(message_id = item.message_id, error = %e, "settle missed");
        }
    }

    async fn decide(&self, delivery: &Delivery) -> Result<Settlement, crate::store::StoreError> {
        let item = delivery.item();
        let Some((row, message)) = self
            .store
            .delivery_with_message(&item.message_id, &item.subscriber)
            .await?
        else {
            tracing::warn!(
                message_id = item.message_id,
                subscription = item.subscriber,
                "work item without a delivery record; dropped"
            );
            return Ok(Settlement::Ack);
        };
        if row.state != "pending" {
            return Ok(Settlement::Ack);
        }
        if self.paused(&row) {
            let held = self
                .store
                .record_delivery(DeliveryChange::Held {
                    message_id: row.message_id.clone(),
                    subscription: row.subscription.clone(),
                })
                .await?;
            // Not held: the pause was lifted meanwhile; try again at once.
            return Ok(if held {
                Settlement::Ack
            } else {
                Settlement::Retry(Duration::ZERO)
            });
        }
        let now = OffsetDateTime::now_utc();
        if row.expired(now) {
            let change = dead(&row, DeadReason::Expired, expiry_error(&row), false);
            self.store.record_delivery(change).await?;
            tracing::warn!(
                message_id = row.message_id,
                subscription = row.subscription,
                attempts = row.attempts,
                "delivery expired (queue TTL); dead-lettered"
            );
            return Ok(Settlement::DeadLetter(DeadReason::Expired));
        }
        let backend = self
            .router
            .subscription(&row.subscription)
            .and_then(|s| self.backends.get(&s.backend));
        let Some(backend) = backend else {
            let error = format!("subscription {} is no longer configured", row.subscription);
            self.store
                .record_delivery(dead(&row, DeadReason::NoRoute, error, false))
                .await?;
            return Ok(Settlement::DeadLetter(DeadReason::NoRoute));
        };
        let Some(message) = message else {
            let error = "the stored message is missing".to_owned();
            self.store
                .record_delivery(dead(&row, DeadReason::PermanentError, error, false))
                .await?;
            return Ok(Settlement::DeadLetter(DeadReason::PermanentError));
        };
        let attempt = Attempt {
            subscription: row.subscription.clone(),
            number: row.attempts + 1,
            possible_duplicate: delivery.redelivered()
                || item.attempt > 0
                || row.attempts > 0
                || row.replays > 0,
        };
        let outcome = backend
            .connector
            .deliver(&message.record, &self.blobs, &attempt)
            .await;
        let attempts = attempt.number;
        let (change, settlement) = match outcome {
            Outcome::Delivered => {
                tracing::info!(
                    message_id = row.message_id,
                    subscription = row.subscription,
                    attempts,
                    "delivered"
                );
                let change = DeliveryChange::Delivered {
                    message_id: row.message_id.clone(),
                    subscription: row.subscription.clone(),
                    attempts,
                };
                (change, Settlement::Ack)
            }
            Outcome::Retry { reason } => match backend.schedule.next_delay(row.attempts) {
                Some(delay) => {
                    let left = Duration::try_from(
                        OffsetDateTime::from_unix_timestamp_nanos(
                            i128::from(row.expires_at) * 1_000_000,
                        )
                        .unwrap_or(now)
                            - OffsetDateTime::now_utc(),
                    )
                    .unwrap_or(Duration::ZERO);
                    let delay = delay.min(left);
                    tracing::info!(
                        message_id = row.message_id,
                        subscription = row.subscription,
                        attempts,
                        error = reason,
                        retry_in = ?delay,
                        "delivery failed; will retry"
                    );
                    let change = DeliveryChange::Retrying {
                        message_id: row.message_id.clone(),
                        subscription: row.subscription.clone(),
                        attempts,
                        error: reason,
                        retry_in: delay,
                    };
                    (change, Settlement::Retry(delay))
                }
                None => give_up(&row, attempts, DeadReason::RetriesExhausted, reason),
            },
            Outcome::Permanent { reason } => {
                give_up(&row, attempts, DeadReason::PermanentError, reason)
            }
        };
        self.store.record_delivery(change).await?;
        Ok(settlement)
    }
}

/// How a work item is settled once its outcome is recorded.
enum Settlement {
    Ack,
    Retry(Duration),
    DeadLetter(DeadReason),
}

/// Dead-letters a delivery after `attempts` attempts.
fn give_up(
    row: &DeliveryRow,
    attempts: u32,
    reason: DeadReason,
    error: String,
) -> (DeliveryChange, Settlement) {
    tracing::warn!(
        message_id = row.message_id,
        subscription = row.subscription,
        attempts,
        error,
        reason = reason.as_str(),
        "delivery dead-lettered"
    );
    let row = DeliveryRow {
        attempts,
        ..row.clone()
    };
    (
        dead(&row, reason, error, false),
        Settlement::DeadLetter(reason),
    )
}

fn dead(row: &DeliveryRow, reason: DeadReason, error: String, was_held: bool) -> DeliveryChange {
    DeliveryChange::Dead {
        message_id: row.message_id.clone(),
        subscription: row.subscription.clone(),
        attempts: row.attempts,
        reason,
        error,
        was_held,
    }
}

fn expiry_error(row: &DeliveryRow) -> String {
    match &row.last_error {
        Some(last) => format!("not delivered within the queue's time-to-live; last error: {last}"),
        None => "not delivered within the queue's time-to-live".to_owned(),
    }
}
