//! The embedded backend: the work queue as rows of `queue_items` in the gateway's SQLite
//! database (see [`super::outbox`] for the table), needing no broker.
//!
//! - **Claim** is one atomic `UPDATE … RETURNING` that picks the oldest due rows that are not
//!   leased (or whose lease has expired) — as many as the consumer has free prefetch slots, so
//!   one transaction (one fsync) claims a whole batch under load —, sets
//!   `lease_until = now + lease`, a fresh `lease_token` and counts the delivery. SQLite
//!   serialises writers, so two consumers never hold the same live lease. Claimed rows wait in
//!   the consumer, each holding its prefetch slot, until [`Consumer::next`] hands them out.
//! - **Settling** names the lease token: `ack` deletes the row — acks are batched by the
//!   consumer's settle task, every ack waiting deleted in one statement and answered after
//!   its commit —, `retry_after` reschedules it
//!   (`attempt + 1`, lease cleared), `dead_letter` moves it to `queue_dead_letters` in one
//!   transaction. A settle whose lease expired and was claimed again matches no row and
//!   fails with [`QueueError::DeliveryLost`], so a slow worker cannot remove work another
//!   worker holds.
//! - **Every write goes through the store's group-commit writer** ([`Store::write_script`]):
//!   claims, acks, retries, dead letters and publishes commit with the writer's next group
//!   instead of waiting on a pool connection for SQLite's write lock, which the writer, under
//!   load, frees only between groups (SQLite's busy handler backs off in sleeps of up to
//!   100 ms, so such a write could wait for seconds while deliveries fell behind).
//! - **Recovery** needs no step: after a crash, leased rows become due again when their
//!   lease expires (at-least-once), and committed rows are durable by SQLite's WAL.
//! - **Waiting** consumers sleep until the next row falls due, at most `poll_interval`, and
//!   are woken at once by [`EmbeddedQueue::publish`] and [`EmbeddedQueue::wake`].

use std::collections::{HashSet, VecDeque};
use std::num::NonZeroU16;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use super::outbox::{item_from_row, push_enqueue};
use super::{
    Consumer, DeadLetter, Delivery, Publisher, QueueBackend, QueueConfig, QueueError, Settle,
    WorkItem, parse_rfc3339, rfc3339, unix_ms,
};
use crate::store::Store;
use crate::store::script::{AFTER_ONE_ROW, ALWAYS, Script};

/// The embedded (SQLite) queue. Cheap to clone; clones share one wake-up signal.
#[derive(Debug, Clone)]
pub struct EmbeddedQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    lease: Duration,
    poll_interval: Duration,
    prefetch: NonZeroU16,
    wake: Notify,
}

/// Most rows claimed in one transaction.
const MAX_CLAIM_BATCH: usize = 64;
/// Most acks deleted in one transaction.
const MAX_ACK_BATCH: usize = 256;

/// A consumer of the embedded queue holding at most `prefetch` unsettled deliveries.
#[derive(Debug)]
pub struct EmbeddedConsumer {
    inner: Arc<Inner>,
    slots: Arc<Semaphore>,
    /// Rows claimed in the last batch and not handed out yet, each with its slot.
    claimed: VecDeque<(Claimed, OwnedSemaphorePermit)>,
    /// The settle task batching this consumer's acks.
    acks: mpsc::UnboundedSender<Ack>,
}

/// A claimed row: settling it names the lease token.
#[derive(Debug)]
pub(super) struct Lease {
    inner: Arc<Inner>,
    id: i64,
    token: Arc<str>,
    acks: mpsc::UnboundedSender<Ack>,
    _slot: OwnedSemaphorePermit,
}

/// An ack waiting for the settle task: the row, its lease token, and whom to tell.
#[derive(Debug)]
struct Ack {
    id: i64,
    token: Arc<str>,
    done: oneshot::Sender<Result<(), QueueError>>,
}

impl EmbeddedQueue {
    /// The queue in the database of `store`, with the lease, poll interval and prefetch of
    /// `config`.
    pub fn new(store: Store, config: &QueueConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                store,
                lease: config.lease,
                poll_interval: config.poll_interval,
                prefetch: config.prefetch,
                wake: Notify::new(),
            }),
        }
    }
}

impl Publisher for EmbeddedQueue {
    async fn publish(&self, item: &WorkItem) -> Result<(), QueueError> {
        let mut script = Script::new();
        push_enqueue(&mut script, item, ALWAYS)?;
        self.inner.store.write_script(script).await?;
        self.wake();
        Ok(())
    }
}

impl QueueBackend for EmbeddedQueue {
    type Consumer = EmbeddedConsumer;

    async fn consumer(&self) -> Result<EmbeddedConsumer, QueueError> {
        let (acks, jobs) = mpsc::unbounded_channel();
        tokio::spawn(settle_acks(self.inner.store.clone(), jobs));
        Ok(EmbeddedConsumer {
            inner: self.inner.clone(),
            slots: Arc::new(Semaphore::new(usize::from(self.inner.prefetch.get()))),
            claimed: VecDeque::new(),
            acks,
        })
    }

    async fn dead_letters(&self, max: usize) -> Result<Vec<DeadLetter>, QueueError> {
        let rows = sqlx::query(
            "SELECT message_id, subscriber, attempt, enqueued_at, reason, dead_lettered_at
             FROM queue_dead_letters ORDER BY id LIMIT ?",
        )
        .bind(i64::try_from(max).unwrap_or(i64::MAX))
        .fetch_all(self.inner.store.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeadLetter {
                    item: item_from_row(row, 0)?,
                    reason: row.try_get(4)?,
                    dead_lettered_at: parse_rfc3339(row.try_get(5)?)?,
                })
            })
            .collect()
    }

    fn wake(&self) {
        self.inner.wake.notify_waiters();
    }
}

impl Consumer for EmbeddedConsumer {
    async fn next(&mut self) -> Result<Delivery, QueueError> {
        if let Some((claimed, slot)) = self.claimed.pop_front() {
            return Ok(claimed.into_delivery(self.inner.clone(), self.acks.clone(), slot));
        }
        let first = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| QueueError::Closed)?;
        let mut slots = vec![first];
        while slots.len() < MAX_CLAIM_BATCH {
            match self.slots.clone().try_acquire_owned() {
                Ok(slot) => slots.push(slot),
                Err(_) => break,
            }
        }
        loop {
            // Listen before looking, so a publish between the look and the wait wakes us.
            let mut woken = pin!(self.inner.wake.notified());
            woken.as_mut().enable();
            let now = unix_ms(OffsetDateTime::now_utc());
            let claimed = self.claim(now, slots.len()).await?;
            if !claimed.is_empty() {
                // Slots beyond the rows claimed go back to the semaphore here.
                slots.truncate(claimed.len());
                self.claimed.extend(claimed.into_iter().zip(slots));
                let (claimed, slot) = self.claimed.pop_front().ok_or(QueueError::Closed)?;
                return Ok(claimed.into_delivery(self.inner.clone(), self.acks.clone(), slot));
            }
            let next_due: Option<i64> = sqlx::query_scalar(
                "SELECT MIN(MAX(available_at, COALESCE(lease_until, 0))) FROM queue_items",
            )
            .fetch_one(self.inner.store.pool())
            .await?;
            let wait = next_due
                .map(|due| Duration::from_millis(u64::try_from(due - now).unwrap_or(0)))
                .map_or(self.inner.poll_interval, |d| {
                    d.min(self.inner.poll_interval)
                });
            tokio::select! {
                () = woken => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
    }
}

impl EmbeddedConsumer {
    /// Leases up to `max` of the oldest due items, oldest first.
    async fn claim(&self, now: i64, max: usize) -> Result<Vec<Claimed>, QueueError> {
        let token: Arc<str> = uuid::Uuid::new_v4().to_string().into();
        let lease_ms = i64::try_from(self.inner.lease.as_millis()).unwrap_or(i64::MAX);
        let mut script = Script::new();
        let lease_until = script.arg(now.saturating_add(lease_ms))?;
        let lease_token = script.arg(&*token)?;
        let now = script.arg(now)?;
        let max = script.arg(i64::try_from(max).unwrap_or(i64::MAX))?;
        script.push(&format!(
            "UPDATE queue_items
             SET lease_until = {lease_until}, lease_token = {lease_token},
                 deliveries = deliveries + 1
             WHERE id IN (SELECT id FROM queue_items
                          WHERE available_at <= {now}
                            AND (lease_until IS NULL OR lease_until <= {now})
                          ORDER BY available_at, id LIMIT {max})
             RETURNING id, deliveries, message_id, subscriber, attempt, enqueued_at, available_at"
        ));
        let rows = self.inner.store.write_script(script).await?;
        let mut claimed = rows
            .iter()
            .map(|row| {
                let deliveries: i64 = row.try_get(1)?;
                Ok((
                    (row.try_get::<i64, _>(6)?, row.try_get::<i64, _>(0)?),
                    Claimed {
                        id: row.try_get(0)?,
                        token: token.clone(),
                        redelivered: deliveries > 1,
                        item: item_from_row(row, 2)?,
                    },
                ))
            })
            .collect::<Result<Vec<_>, QueueError>>()?;
        // RETURNING comes in no promised order.
        claimed.sort_by_key(|(order, _)| *order);
        Ok(claimed.into_iter().map(|(_, c)| c).collect())
    }
}

/// The settle task of a consumer: deletes every ack waiting (up to [`MAX_ACK_BATCH`]) in one
/// statement of the writer's next group and answers each after the commit —
/// [`QueueError::DeliveryLost`] for a row whose lease passed to another consumer. Ends when
/// the consumer and its leases are gone.
async fn settle_acks(store: Store, mut jobs: mpsc::UnboundedReceiver<Ack>) {
    let mut batch = Vec::with_capacity(MAX_ACK_BATCH);
    while jobs.recv_many(&mut batch, MAX_ACK_BATCH).await > 0 {
        match delete_acked(&store, &batch).await {
            Ok(deleted) => {
                for (ack, deleted) in batch.drain(..).zip(deleted) {
                    let _ = ack.done.send(if deleted {
                        Ok(())
                    } else {
                        Err(QueueError::DeliveryLost)
                    });
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::warn!(acks = batch.len(), error = %reason, "queue ack batch failed");
                for ack in batch.drain(..) {
                    let _ = ack
                        .done
                        .send(Err(QueueError::Database(sqlx::Error::Protocol(
                            reason.clone(),
                        ))));
                }
            }
        }
    }
}

/// Deletes the acked rows in one statement (the batch as a JSON array of `[id, token]`);
/// for each ack, whether its lease still held.
async fn delete_acked(store: &Store, batch: &[Ack]) -> Result<Vec<bool>, QueueError> {
    let pairs: Vec<(i64, &str)> = batch.iter().map(|a| (a.id, &*a.token)).collect();
    let pairs = serde_json::to_string(&pairs)
        .map_err(|e| QueueError::MalformedItem(format!("acked ids: {e}")))?;
    let mut script = Script::new();
    let pairs = script.arg(pairs)?;
    // `id IN` drives the delete by primary key; the token must match the same pair.
    script.push(&format!(
        "DELETE FROM queue_items
         WHERE id IN (SELECT json_extract(value, '$[0]') FROM json_each({pairs}))
           AND EXISTS (SELECT 1 FROM json_each({pairs})
                       WHERE json_extract(value, '$[0]') = queue_items.id
                         AND json_extract(value, '$[1]') = queue_items.lease_token)
         RETURNING id, lease_token"
    ));
    let deleted = store
        .write_script(script)
        .await?
        .iter()
        .map(|row| Ok((row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?)))
        .collect::<Result<HashSet<_>, QueueError>>()?;
    Ok(batch
        .iter()
        .map(|a| deleted.contains(&(a.id, a.token.to_string())))
        .collect())
}

/// A row this consumer has leased.
#[derive(Debug)]
struct Claimed {
    id: i64,
    token: Arc<str>,
    redelivered: bool,
    item: WorkItem,
}

impl Claimed {
    fn into_delivery(
        self,
        inner: Arc<Inner>,
        acks: mpsc::UnboundedSender<Ack>,
        slot: OwnedSemaphorePermit,
    ) -> Delivery {
        Delivery {
            item: self.item,
            redelivered: self.redelivered,
            settle: Settle::Embedded(Lease {
                inner,
                id: self.id,
                token: self.token,
                acks,
                _slot: slot,
            }),
        }
    }
}

impl Lease {
    /// Deletes the row (batched with the consumer's other acks); the slot is released once
    /// the deletion committed.
    pub(super) async fn ack(self) -> Result<(), QueueError> {
        let (done, outcome) = oneshot::channel();
        self.acks
            .send(Ack {
                id: self.id,
                token: self.token.clone(),
                done,
            })
            .map_err(|_| QueueError::Closed)?;
        outcome.await.map_err(|_| QueueError::Closed)?
    }

    /// Reschedules the row `delay` from now with `attempt + 1`.
    pub(super) async fn retry_after(self, delay: Duration) -> Result<(), QueueError> {
        let due = unix_ms(OffsetDateTime::now_utc())
            .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        let mut script = Script::new();
        let due = script.arg(due)?;
        let id = script.arg(self.id)?;
        let token = script.arg(&*self.token)?;
        script.push(&format!(
            "UPDATE queue_items
             SET attempt = attempt + 1, available_at = {due}, lease_until = NULL,
                 lease_token = NULL, deliveries = 0
             WHERE id = {id} AND lease_token = {token}
             RETURNING id"
        ));
        if self.inner.store.write_script(script).await?.is_empty() {
            return Err(QueueError::DeliveryLost);
        }
        self.inner.wake.notify_waiters();
        Ok(())
    }

    /// Moves the row to `queue_dead_letters` with `reason`, in one transaction.
    pub(super) async fn dead_letter(self, reason: &str) -> Result<(), QueueError> {
        let mut script = Script::new();
        let id = script.arg(self.id)?;
        let token = script.arg(&*self.token)?;
        let reason = script.arg(reason)?;
        let at = script.arg(rfc3339(OffsetDateTime::now_utc())?)?;
        script.push(&format!(
            "INSERT INTO queue_dead_letters
                 (message_id, subscriber, attempt, enqueued_at, reason, dead_lettered_at)
             SELECT message_id, subscriber, attempt, enqueued_at, {reason}, {at}
             FROM queue_items WHERE id = {id} AND lease_token = {token}"
        ));
        script.push(&format!(
            "DELETE FROM queue_items WHERE id = {id} AND lease_token = {token} AND {AFTER_ONE_ROW}
             RETURNING id"
        ));
        if self.inner.store.write_script(script).await?.is_empty() {
            return Err(QueueError::DeliveryLost);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SqliteSynchronous;

    async fn queue(lease: Duration) -> (EmbeddedQueue, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), SqliteSynchronous::Normal)
            .await
            .unwrap();
        let config = QueueConfig {
            lease,
            poll_interval: Duration::from_millis(20),
            ..QueueConfig::default()
        };
        (EmbeddedQueue::new(store, &config), dir)
    }

    #[tokio::test]
    async fn a_settle_after_the_lease_passed_to_another_consumer_is_refused() {
        let (queue, _dir) = queue(Duration::from_millis(100)).await;
        let item = WorkItem::new("m1", "s", OffsetDateTime::now_utc());
        queue.publish(&item).await.unwrap();
        let slow = queue.consumer().await.unwrap().next().await.unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        let fast = queue.consumer().await.unwrap().next().await.unwrap();
        assert!(fast.redelivered());
        assert!(matches!(slow.ack().await, Err(QueueError::DeliveryLost)));
        fast.dead_letter("gave up").await.unwrap();
        let letters = queue.dead_letters(5).await.unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(letters[0].item, item);
    }

    #[tokio::test]
    async fn publishing_a_pending_pair_again_changes_nothing() {
        let (queue, _dir) = queue(Duration::from_secs(60)).await;
        let item = WorkItem::new("m1", "s", OffsetDateTime::now_utc());
        queue.publish(&item).await.unwrap();
        queue.publish(&item).await.unwrap();
        let rows: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM queue_items")
            .fetch_one(queue.inner.store.pool())
            .await
            .unwrap();
        assert_eq!(rows, 1);
        let delivery = queue.consumer().await.unwrap().next().await.unwrap();
        delivery
            .retry_after(Duration::from_millis(10))
            .await
            .unwrap();
        let again = queue.consumer().await.unwrap().next().await.unwrap();
        assert_eq!(again.item().attempt, 1);
        assert!(
            !again.redelivered(),
            "a retry is a new attempt, not a redelivery"
        );
    }
}
