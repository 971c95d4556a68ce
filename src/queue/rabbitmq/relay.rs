//! The outbox relay: moves committed rows of `queue_items` to the broker.
//!
//! Each round reads up to `relay_batch` due rows in insertion order, publishes them all on
//! the publisher channel (mandatory, persistent), then awaits their confirms in order and
//! deletes exactly the rows whose publish was confirmed and routed, in one transaction. A
//! row whose publish failed, was nacked or whose confirm never came (lost connection, crash)
//! stays and is published again in a later round or after restart; the consumer side is
//! idempotent by id. There must be one relay per database: the gateway starts it in
//! [`super::RabbitQueue::open`].
//!
//! A row that may have reached the broker before — it was in the outbox when the relay
//! started (a crash may have come between the broker's confirm and the delete), or this relay
//! published it without a confirm — is published with the possible-duplicate header, so the
//! consumer treats it as a redelivery ([`crate::queue::Delivery::redelivered`]).

use std::collections::HashSet;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use sqlx::Row;
use time::OffsetDateTime;
use tokio::sync::{Notify, watch};

use super::link::Link;
use super::{confirmed, publish_options, wire};
use crate::queue::outbox::item_from_row;
use crate::queue::{QueueError, unix_ms};
use crate::store::Store;
use crate::store::script::Script;

/// The relay task's state.
pub(super) struct Relay {
    /// The store whose database holds the outbox: read on its pool, deleted from through its
    /// group-commit writer.
    pub(super) store: Store,
    pub(super) links: watch::Receiver<Option<Arc<Link>>>,
    pub(super) exchange: String,
    pub(super) work: String,
    pub(super) batch: u16,
    pub(super) poll_interval: Duration,
    pub(super) wake: Arc<Notify>,
    pub(super) stop: watch::Receiver<()>,
    /// Rows with ids up to this one were in the outbox when the relay started.
    pub(super) recovered_up_to: i64,
    /// Rows this relay published without getting their confirm.
    pub(super) republish: HashSet<i64>,
}

impl Relay {
    /// Relays until the queue is dropped.
    pub(super) async fn run(mut self) {
        // Unknown (database not readable yet): treat every row as possibly published before.
        self.recovered_up_to =
            sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(id), 0) FROM queue_items")
                .fetch_one(self.store.pool())
                .await
                .unwrap_or(i64::MAX);
        loop {
            let woken = self.wake.clone();
            let mut woken = pin!(woken.notified());
            woken.as_mut().enable();
            let mut stop = self.stop.clone();
            let round = tokio::select! {
                _ = stop.changed() => return,
                round = self.round() => round,
            };
            match round {
                // A full batch: more may be waiting.
                Ok(relayed) if relayed == usize::from(self.batch) => continue,
                Ok(_) => {}
                Err(QueueError::Closed) => return,
                Err(error) => tracing::warn!(%error, "outbox relay round failed; will retry"),
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = woken => {}
                () = tokio::time::sleep(self.poll_interval) => {}
            }
        }
    }

    /// Publishes one batch of due rows; returns how many rows were read.
    async fn round(&mut self) -> Result<usize, QueueError> {
        let rows = sqlx::query(
            "SELECT id, message_id, subscriber, attempt, enqueued_at FROM queue_items
             WHERE available_at <= ? ORDER BY id LIMIT ?",
        )
        .bind(unix_ms(OffsetDateTime::now_utc()))
        .bind(i64::from(self.batch))
        .fetch_all(self.store.pool())
        .await?;
        if rows.is_empty() {
            return Ok(0);
        }
        let link = self
            .links
            .wait_for(|link| link.as_ref().is_some_and(|l| l.is_up()))
            .await
            .map_err(|_| QueueError::Closed)?
            .clone()
            .ok_or(QueueError::Closed)?;
        let mut pending = Vec::with_capacity(rows.len());
        let mut failure = None;
        for row in &rows {
            let id: i64 = row.try_get(0)?;
            let body = match item_from_row(row, 1).and_then(|item| wire::encode(&item)) {
                Ok(body) => body,
                Err(error) => {
                    tracing::error!(%error, outbox_id = id, "unreadable outbox row left in place");
                    continue;
                }
            };
            match link
                .publisher
                .basic_publish(
                    self.exchange.as_str().into(),
                    self.work.as_str().into(),
                    publish_options(),
                    &body,
                    wire::properties(
                        (id <= self.recovered_up_to || self.republish.contains(&id))
                            .then(wire::possible_duplicate_headers),
                    ),
                )
                .await
            {
                Ok(confirm) => pending.push((id, confirm)),
                Err(error) => {
                    failure = Some(QueueError::from(error));
                    break;
                }
            }
        }
        let mut done = Vec::with_capacity(pending.len());
        for (id, confirm) in pending {
            match confirm
                .await
                .map_err(QueueError::from)
                .and_then(|c| confirmed(c, &self.work))
            {
                Ok(()) => {
                    self.republish.remove(&id);
                    done.push(id);
                }
                Err(error) => {
                    self.republish.insert(id);
                    failure = Some(error);
                }
            }
        }
        if !done.is_empty() {
            // One statement for the whole batch (`done` as a JSON array of ids), in the
            // writer's next group: on the pool it would wait behind the writer's transactions.
            let ids = serde_json::to_string(&done)
                .map_err(|e| QueueError::MalformedItem(format!("confirmed ids: {e}")))?;
            let mut script = Script::new();
            let ids = script.arg(ids).map_err(QueueError::from)?;
            script.push(&format!(
                "DELETE FROM queue_items WHERE id IN (SELECT value FROM json_each({ids}))"
            ));
            self.store.write_script(script).await?;
        }
        match failure {
            Some(error) => Err(error),
            None => Ok(rows.len()),
        }
    }
}
