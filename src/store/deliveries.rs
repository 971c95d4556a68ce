//! Delivery positions: one row per (message, subscription) in `deliveries`
//! (`migrations/0003_delivery.sql`), the operator pauses in `delivery_pauses`, and the audit
//! trail in `audit_log`.
//!
//! Invariants:
//! - **Routed with the message.** A message's delivery rows and their work items are written
//!   in the transaction that stores the message ([`push_routes`]); a message no
//!   subscription takes gets a `no_route` dead letter in that same transaction.
//! - **Only pending rows move.** Worker outcomes ([`DeliveryChange`]) apply only to a row in
//!   the state the worker saw (`pending`, or `held` for expiry), so an operator's discard or a
//!   concurrent replay is never overwritten, and a repeated work item finds nothing to do.
//! - **Every change is history.** Each transition adds a `state_history` entry naming the
//!   subscription, and the message's own state is recomputed from its rows: `QUEUED` while any
//!   is pending or held, `DELIVERY_FAILED` while any is dead, `DELIVERED` when all were
//!   delivered, `DISCARDED` when the rest were discarded.
//! - **Operator actions are audited** in the transaction that performs them.

use std::collections::HashSet;
use std::fmt::Display;

use serde::Serialize;
use sqlx::{Row, Sqlite, SqliteConnection, Transaction};
use time::OffsetDateTime;

use super::readers::Columns;
use super::script::{AFTER_ONE_ROW, ALWAYS, Param, Script};
use super::{
    MessageDetail, PAYLOADS_JOIN, Store, StoreError, add_message_row, message_columns, timestamp,
};
use crate::delivery::routing::{NO_ROUTE, Route};
use crate::queue::{WorkItem, outbox};

/// Message state while deliveries are pending or held.
pub const STATE_QUEUED: &str = "QUEUED";
/// Message state once every subscription confirmed delivery.
pub const STATE_DELIVERED: &str = "DELIVERED";
/// Message state while a delivery is dead-lettered.
pub const STATE_DELIVERY_FAILED: &str = "DELIVERY_FAILED";
/// Message state when dead-lettered deliveries were discarded and the rest delivered.
pub const STATE_DISCARDED: &str = "DISCARDED";

/// Why a delivery was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadReason {
    /// The back-end's retry schedule ran out.
    RetriesExhausted,
    /// The queue's time-to-live ran out.
    Expired,
    /// No subscription takes the message (or its subscription is no longer configured).
    NoRoute,
    /// The back-end refused the message in a way retrying cannot fix.
    PermanentError,
}

impl DeadReason {
    /// The stored name (`retries_exhausted`, `expired`, `no_route`, `permanent_error`).
    pub fn as_str(self) -> &'static str {
        match self {
            DeadReason::RetriesExhausted => "retries_exhausted",
            DeadReason::Expired => "expired",
            DeadReason::NoRoute => "no_route",
            DeadReason::PermanentError => "permanent_error",
        }
    }
}

/// A delivery position as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeliveryRow {
    /// ebMS MessageId.
    pub message_id: String,
    /// Subscription id ([`NO_ROUTE`] for a `no_route` dead letter).
    pub subscription: String,
    /// Delivery queue it was routed through.
    pub queue: String,
    /// `pending`, `held`, `delivered`, `dead` or `discarded`.
    pub state: String,
    /// Attempts made since routing or the last replay.
    pub attempts: u32,
    /// The last failure.
    pub last_error: Option<String>,
    /// Why it was dead-lettered.
    pub reason: Option<String>,
    /// Times an operator replayed it.
    pub replays: u32,
    /// When routed or last replayed (RFC 3339).
    pub enqueued_at: String,
    /// When its TTL runs out (Unix ms).
    pub expires_at: i64,
    /// Last change (RFC 3339).
    pub updated_at: String,
}

impl DeliveryRow {
    /// Whether the TTL has run out at `now`.
    pub fn expired(&self, now: OffsetDateTime) -> bool {
        unix_ms(now) >= self.expires_at
    }
}

/// A delivery outcome recorded by the worker. Each applies only to a row in the state the
/// worker saw; [`Store::record_delivery`] says whether it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryChange {
    /// The back-end accepted the message.
    Delivered {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
        /// Attempts made, this one included.
        attempts: u32,
    },
    /// The attempt failed and another follows after `retry_in`.
    Retrying {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
        /// Attempts made, this one included.
        attempts: u32,
        /// Why it failed.
        error: String,
        /// Delay before the next attempt.
        retry_in: std::time::Duration,
    },
    /// Given up: dead-lettered with `reason`.
    Dead {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
        /// Attempts made.
        attempts: u32,
        /// Why.
        reason: DeadReason,
        /// The last failure.
        error: String,
        /// Whether the row is `held` (expired while paused) rather than `pending`.
        was_held: bool,
    },
    /// Parked because its queue is suspended or its subscription disabled; applies only while
    /// a pause is still recorded, so a pause lifted meanwhile is never missed.
    Held {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
    },
}

/// Appends to `script` the delivery rows and work items of a newly stored message (see
/// module docs), a chain of one-row statements that runs only while `guard` holds.
pub(super) fn push_routes(
    script: &mut Script,
    message: Param,
    message_id: &str,
    routes: &[Route],
    now: OffsetDateTime,
    guard: &str,
) -> Result<(), StoreError> {
    let at = script.arg(timestamp(now))?;
    if routes.is_empty() {
        let no_route = script.arg(NO_ROUTE)?;
        let error = script.arg("no delivery queue and subscription takes this message")?;
        let expires = script.arg(unix_ms(now))?;
        script.push(&format!(
            "INSERT INTO deliveries (message_id, subscription, queue, state, reason, last_error,
                 enqueued_at, expires_at, updated_at)
             SELECT {message}, {no_route}, {no_route}, 'dead', 'no_route', {error}, {at},
                 {expires}, {at}
             WHERE {guard}"
        ));
        let state = script.arg("DEAD_LETTERED")?;
        let detail = script.arg("no_route: no subscription takes it")?;
        push_history(script, message, state, at, detail, AFTER_ONE_ROW);
        push_message_state(script, message, AFTER_ONE_ROW);
        return Ok(());
    }
    let mut guard = guard;
    for route in routes {
        let subscription = script.arg(route.subscription.as_str())?;
        let queue = script.arg(route.queue.as_str())?;
        let expires = script.arg(unix_ms(route.expires_at))?;
        script.push(&format!(
            "INSERT INTO deliveries (message_id, subscription, queue, state, enqueued_at,
                 expires_at, updated_at)
             SELECT {message}, {subscription}, {queue}, 'pending', {at}, {expires}, {at}
             WHERE {guard}"
        ));
        let item = WorkItem::new(message_id, &route.subscription, now);
        outbox::push_enqueue(script, &item, AFTER_ONE_ROW).map_err(queue_error)?;
        guard = AFTER_ONE_ROW;
    }
    let names: Vec<&str> = routes.iter().map(|r| r.subscription.as_str()).collect();
    let state = script.arg(STATE_QUEUED)?;
    let detail = script.arg(format!("for {}", names.join(", ")))?;
    push_history(script, message, state, at, detail, AFTER_ONE_ROW);
    push_message_state(script, message, AFTER_ONE_ROW);
    Ok(())
}

/// Applies one worker outcome; returns whether the row was in the expected state.
pub(super) async fn apply(
    tx: &mut Transaction<'_, Sqlite>,
    change: &DeliveryChange,
    now: OffsetDateTime,
) -> Result<bool, StoreError> {
    let mut script = Script::new();
    let at = script.arg(timestamp(now))?;
    let (message_id, subscription) = match change {
        DeliveryChange::Delivered {
            message_id,
            subscription,
            ..
        }
        | DeliveryChange::Retrying {
            message_id,
            subscription,
            ..
        }
        | DeliveryChange::Dead {
            message_id,
            subscription,
            ..
        }
        | DeliveryChange::Held {
            message_id,
            subscription,
        } => (message_id, subscription),
    };
    let message = script.arg(message_id.as_str())?;
    let sub = script.arg(subscription.as_str())?;
    // The row moves only from the state the worker saw; `RETURNING` says whether it did, and
    // the history entry and message state follow it in the same command.
    let (event, detail) = match change {
        // The store's writer batches these; one alone is a batch of one.
        DeliveryChange::Delivered { attempts, .. } => {
            let outcome = Delivered {
                message_id,
                subscription,
                attempts: *attempts,
            };
            let moved = apply_delivered(tx, &[outcome], now).await?;
            return Ok(moved.first().copied().unwrap_or(false));
        }
        DeliveryChange::Retrying {
            attempts,
            error,
            retry_in,
            ..
        } => {
            let detail =
                format!("{subscription}: attempt {attempts} failed: {error}; next in {retry_in:?}");
            let attempts = script.arg(*attempts)?;
            let error = script.arg(error.as_str())?;
            script.push(&format!(
                "UPDATE deliveries SET attempts = {attempts}, last_error = {error},
                     updated_at = {at}
                 WHERE message_id = {message} AND subscription = {sub} AND state = 'pending'
                 RETURNING 1"
            ));
            ("WAITING_FOR_RETRY", detail)
        }
        DeliveryChange::Dead {
            attempts,
            reason,
            error,
            was_held,
            ..
        } => {
            let detail = format!("{subscription}: {}: {error}", reason.as_str());
            let attempts = script.arg(*attempts)?;
            let reason = script.arg(reason.as_str())?;
            let error = script.arg(error.as_str())?;
            let from = script.arg(if *was_held { "held" } else { "pending" })?;
            script.push(&format!(
                "UPDATE deliveries SET state = 'dead', attempts = {attempts}, reason = {reason},
                     last_error = {error}, updated_at = {at}
                 WHERE message_id = {message} AND subscription = {sub} AND state = {from}
                 RETURNING 1"
            ));
            ("DEAD_LETTERED", detail)
        }
        DeliveryChange::Held { .. } => {
            script.push(&format!(
                "UPDATE deliveries SET state = 'held', updated_at = {at}
                 WHERE message_id = {message} AND subscription = {sub} AND state = 'pending'
                   AND EXISTS (SELECT 1 FROM delivery_pauses p
                               WHERE (p.kind = 'queue' AND p.name = deliveries.queue)
                                  OR (p.kind = 'subscription'
                                      AND p.name = deliveries.subscription))
                 RETURNING 1"
            ));
            (
                "HELD",
                format!("{subscription}: queue suspended or subscription disabled"),
            )
        }
    };
    let event = script.arg(event)?;
    let detail = script.arg(detail)?;
    push_history(&mut script, message, event, at, detail, AFTER_ONE_ROW);
    push_message_state(&mut script, message, AFTER_ONE_ROW);
    Ok(!script.fetch_all(tx).await?.is_empty())
}

/// Appends a `state_history` entry after the message's last one (an empty `detail` is
/// stored as none).
pub(super) async fn history(
    tx: &mut SqliteConnection,
    message_id: &str,
    state: &str,
    at: &str,
    detail: &str,
) -> Result<(), StoreError> {
    let mut script = Script::new();
    let message = script.arg(message_id)?;
    let state = script.arg(state)?;
    let at = script.arg(at)?;
    let detail = script.arg((!detail.is_empty()).then_some(detail))?;
    push_history(&mut script, message, state, at, detail, ALWAYS);
    script.fetch_all(tx).await?;
    Ok(())
}

/// Appends to `script` the `state_history` entry after the message's last one, run only
/// while `guard` holds. `detail` is a placeholder ([`Param`]) or an SQL expression.
pub(super) fn push_history(
    script: &mut Script,
    message: Param,
    state: Param,
    at: Param,
    detail: impl Display,
    guard: &str,
) {
    script.push(&format!(
        "INSERT INTO state_history (message_id, seq, state, at, detail)
         SELECT {message},
             (SELECT COALESCE(MAX(seq), -1) + 1 FROM state_history WHERE message_id = {message}),
             {state}, {at}, {detail}
         WHERE {guard}"
    ));
}

/// Appends to `script` the recomputation of a message's state from its delivery rows (see
/// module docs), run only while `guard` holds.
fn push_message_state(script: &mut Script, message: Param, guard: &str) {
    script.push(&format!(
        "UPDATE messages SET state = {}
         WHERE message_id = {message}
           AND EXISTS (SELECT 1 FROM deliveries WHERE message_id = {message})
           AND {guard}",
        state_from_deliveries(message)
    ));
}

/// The state the delivery rows of message `message` (an SQL expression) make (see module
/// docs), as an SQL subquery.
fn state_from_deliveries(message: impl Display) -> String {
    format!(
        "(SELECT CASE
             WHEN SUM(state = 'dead') > 0 THEN '{STATE_DELIVERY_FAILED}'
             WHEN SUM(state IN ('pending', 'held')) > 0 THEN '{STATE_QUEUED}'
             WHEN SUM(state = 'discarded') > 0 THEN '{STATE_DISCARDED}'
             ELSE '{STATE_DELIVERED}' END
          FROM deliveries WHERE message_id = {message})"
    )
}

/// A [`DeliveryChange::Delivered`] outcome, as [`apply_delivered`] takes it.
pub(super) struct Delivered<'a> {
    /// ebMS MessageId.
    pub message_id: &'a str,
    /// Subscription id.
    pub subscription: &'a str,
    /// Attempts made, the successful one included.
    pub attempts: u32,
}

/// Applies the `Delivered` outcomes of one group commit in one command whose text does not
/// depend on how many there are (they travel as one JSON argument). With one command per
/// outcome, the outcomes were half the writer's hand-offs to SQLite, and the writer, not the
/// CPU, capped end-to-end throughput (bench/ANALYSIS.md).
///
/// Same rules as [`apply`]: only a `pending` row moves, with its history entry, and its
/// message's state is recomputed. Returns, per outcome in order, whether its row moved; an
/// outcome repeated in the batch applies once, as its first occurrence.
pub(super) async fn apply_delivered(
    tx: &mut Transaction<'_, Sqlite>,
    outcomes: &[Delivered<'_>],
    now: OffsetDateTime,
) -> Result<Vec<bool>, StoreError> {
    let mut first = HashSet::new();
    let firsts: Vec<bool> = outcomes
        .iter()
        .map(|o| first.insert((o.message_id, o.subscription)))
        .collect();
    let batch: Vec<(&str, &str, u32, String)> = outcomes
        .iter()
        .zip(&firsts)
        .filter(|(_, first)| **first)
        .map(|(o, _)| {
            let detail = format!("to {} (attempt {})", o.subscription, o.attempts);
            (o.message_id, o.subscription, o.attempts, detail)
        })
        .collect();
    let mut script = Script::new();
    let batch = script.arg(serde_json::to_string(&batch)?)?;
    let at = script.arg(timestamp(now))?;
    // The history entries go first, for exactly the rows the update below moves (pending
    // ones, in the same transaction); several rows of one message get consecutive entries.
    // `+state` keeps SQLite from driving either statement by the `deliveries_state` index,
    // which under load means every pending row: the batch drives, by primary key.
    script.push(&format!(
        "INSERT INTO state_history (message_id, seq, state, at, detail)
         SELECT d.message_id,
             (SELECT COALESCE(MAX(seq), -1) FROM state_history h
              WHERE h.message_id = d.message_id)
                 + row_number() OVER (PARTITION BY d.message_id ORDER BY j.key),
             'DELIVERED', {at}, json_extract(j.value, '$[3]')
         FROM json_each({batch}) AS j
         JOIN deliveries d ON d.message_id = json_extract(j.value, '$[0]')
             AND d.subscription = json_extract(j.value, '$[1]')
         WHERE +d.state = 'pending'"
    ));
    script.push(&format!(
        "UPDATE deliveries SET state = 'delivered', attempts = json_extract(j.value, '$[2]'),
             updated_at = {at}
         FROM json_each({batch}) AS j
         WHERE deliveries.message_id = json_extract(j.value, '$[0]')
           AND deliveries.subscription = json_extract(j.value, '$[1]')
           AND +deliveries.state = 'pending'
         RETURNING deliveries.message_id, deliveries.subscription"
    ));
    script.push(&format!(
        "UPDATE messages SET state = {}
         WHERE message_id IN (SELECT json_extract(value, '$[0]') FROM json_each({batch}))
           AND EXISTS (SELECT 1 FROM deliveries d WHERE d.message_id = messages.message_id)",
        state_from_deliveries("messages.message_id")
    ));
    let moved: HashSet<(String, String)> = script
        .fetch_all(tx)
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    Ok(outcomes
        .iter()
        .zip(firsts)
        .map(|(o, first)| {
            first && moved.contains(&(o.message_id.to_owned(), o.subscription.to_owned()))
        })
        .collect())
}

/// Recomputes a message's state from its delivery rows (see module docs).
async fn set_message_state(tx: &mut SqliteConnection, message_id: &str) -> Result<(), StoreError> {
    let mut script = Script::new();
    let message = script.arg(message_id)?;
    push_message_state(&mut script, message, ALWAYS);
    script.fetch_all(tx).await?;
    Ok(())
}

/// What [`Store::dead_letters`] lists.
#[derive(Debug, Clone, Default)]
pub struct DeadLetterFilter {
    /// Only this delivery queue.
    pub queue: Option<String>,
    /// Only this subscription.
    pub subscription: Option<String>,
    /// Only this reason.
    pub reason: Option<String>,
    /// At most this many, oldest change first.
    pub limit: u32,
}

/// What an operator paused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PauseKind {
    /// A delivery queue is suspended.
    Queue,
    /// A subscription is disabled.
    Subscription,
}

impl PauseKind {
    fn as_str(self) -> &'static str {
        match self {
            PauseKind::Queue => "queue",
            PauseKind::Subscription => "subscription",
        }
    }
}

/// An operator action was refused.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// No delivery of that message to that subscription exists.
    #[error("no delivery of {message_id} to {subscription}")]
    NotFound {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
    },
    /// The delivery is not dead-lettered (only dead letters can be replayed or discarded).
    #[error("delivery of {message_id} to {subscription} is {state}, not dead-lettered")]
    NotDead {
        /// ebMS MessageId.
        message_id: String,
        /// Subscription id.
        subscription: String,
        /// Its state.
        state: String,
    },
    /// A `no_route` dead letter is replayed by routing it again, which found nothing.
    #[error("message {0} still matches no subscription")]
    StillNoRoute(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for ActionError {
    fn from(e: sqlx::Error) -> Self {
        ActionError::Store(e.into())
    }
}

fn queue_error(e: crate::queue::QueueError) -> StoreError {
    match e {
        crate::queue::QueueError::Database(e) => StoreError::Database(e),
        other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// A delivery row from the first columns of `r` ([`COLUMNS`]).
fn row(r: &impl Columns) -> Result<DeliveryRow, StoreError> {
    Ok(DeliveryRow {
        message_id: r.column(0)?,
        subscription: r.column(1)?,
        queue: r.column(2)?,
        state: r.column(3)?,
        attempts: r.count(4)?,
        last_error: r.column(5)?,
        reason: r.column(6)?,
        replays: r.count(7)?,
        enqueued_at: r.column(8)?,
        expires_at: r.column(9)?,
        updated_at: r.column(10)?,
    })
}

const COLUMNS: &str = "message_id, subscription, queue, state, attempts, last_error, reason, \
                       replays, enqueued_at, expires_at, updated_at";

impl Store {
    /// The delivery position of `message_id` for `subscription`, with the message as
    /// [`Store::message_for_delivery`] reads it (`None` when it is missing), in one statement,
    /// read on this thread ([`super::readers`]): the delivery worker's read of every message.
    pub async fn delivery_with_message(
        &self,
        message_id: &str,
        subscription: &str,
    ) -> Result<Option<(DeliveryRow, Option<MessageDetail>)>, StoreError> {
        let delivery_columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("d.{c}")).collect();
        let sql = format!(
            "SELECT {}, {} FROM deliveries d
                 LEFT JOIN messages m ON m.message_id = d.message_id {PAYLOADS_JOIN}
             WHERE d.message_id = ?1 AND d.subscription = ?2 ORDER BY p.position",
            delivery_columns.join(", "),
            message_columns(false)
        );
        self.readers.read(|c| {
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query([message_id, subscription])?;
            let mut found = None;
            let mut message = None;
            while let Some(r) = rows.next()? {
                if found.is_none() {
                    found = Some(row(r)?);
                }
                add_message_row(&mut message, r, delivery_columns.len())?;
            }
            Ok(found.map(|delivery| (delivery, message)))
        })
    }

    /// The delivery position of `message_id` for `subscription`.
    pub async fn delivery(
        &self,
        message_id: &str,
        subscription: &str,
    ) -> Result<Option<DeliveryRow>, StoreError> {
        let r = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE message_id = ? AND subscription = ?"
        )))
        .bind(message_id)
        .bind(subscription)
        .fetch_optional(self.pool())
        .await?;
        r.as_ref().map(row).transpose()
    }

    /// Every delivery position of `message_id`.
    pub async fn deliveries_of(&self, message_id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE message_id = ? ORDER BY subscription"
        )))
        .bind(message_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row).collect()
    }

    /// Dead-lettered deliveries, oldest change first.
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries
             WHERE state = 'dead' AND (?1 IS NULL OR queue = ?1)
               AND (?2 IS NULL OR subscription = ?2) AND (?3 IS NULL OR reason = ?3)
             ORDER BY updated_at, message_id LIMIT ?4"
        )))
        .bind(&filter.queue)
        .bind(&filter.subscription)
        .bind(&filter.reason)
        .bind(i64::from(filter.limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row).collect()
    }

    /// Held deliveries whose TTL ran out by `now`, at most `limit`.
    pub async fn expired_held(
        &self,
        now: OffsetDateTime,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {COLUMNS} FROM deliveries WHERE state = 'held' AND expires_at <= ?
             ORDER BY expires_at LIMIT ?"
        )))
        .bind(unix_ms(now))
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(row).collect()
    }

    /// Current pauses: `(kind, name)`.
    pub async fn pauses(&self) -> Result<HashSet<(PauseKind, String)>, StoreError> {
        let rows = sqlx::query("SELECT kind, name FROM delivery_pauses")
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .iter()
            .map(|r| {
                let kind = if r.get::<&str, _>(0) == "queue" {
                    PauseKind::Queue
                } else {
                    PauseKind::Subscription
                };
                (kind, r.get(1))
            })
            .collect())
    }

    /// Suspends a queue or disables a subscription (audited). Deliveries already under way
    /// finish; the rest are held, their TTL still counting. Returns false if already paused.
    pub async fn pause(
        &self,
        kind: PauseKind,
        name: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let n = sqlx::query(
            "INSERT INTO delivery_pauses (kind, name, since) VALUES (?, ?, ?)
             ON CONFLICT DO NOTHING",
        )
        .bind(kind.as_str())
        .bind(name)
        .bind(timestamp(now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let action = match kind {
            PauseKind::Queue => "queue.suspend",
            PauseKind::Subscription => "subscription.disable",
        };
        audit(
            &mut tx,
            now,
            actor,
            action,
            name,
            (n == 0).then_some("already"),
        )
        .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Resumes a queue or enables a subscription (audited): its held deliveries that are not
    /// paused another way become pending and are enqueued again. Returns how many.
    pub async fn unpause(
        &self,
        kind: PauseKind,
        name: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM delivery_pauses WHERE kind = ? AND name = ?")
            .bind(kind.as_str())
            .bind(name)
            .execute(&mut *tx)
            .await?;
        let column = match kind {
            PauseKind::Queue => "queue",
            PauseKind::Subscription => "subscription",
        };
        let released: Vec<(String, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "UPDATE deliveries SET state = 'pending', updated_at = ?1
             WHERE state = 'held' AND {column} = ?2
               AND NOT EXISTS (SELECT 1 FROM delivery_pauses p
                               WHERE (p.kind = 'queue' AND p.name = deliveries.queue)
                                  OR (p.kind = 'subscription'
                                      AND p.name = deliveries.subscription))
             RETURNING message_id, subscription"
        )))
        .bind(timestamp(now))
        .bind(name)
        .fetch_all(&mut *tx)
        .await?;
        for (message_id, subscription) in &released {
            outbox::requeue_in(&mut tx, &WorkItem::new(message_id, subscription, now))
                .await
                .map_err(queue_error)?;
            history(
                &mut tx,
                message_id,
                STATE_QUEUED,
                &timestamp(now),
                &format!("{subscription}: released by {actor}"),
            )
            .await?;
            set_message_state(&mut tx, message_id).await?;
        }
        let action = match kind {
            PauseKind::Queue => "queue.resume",
            PauseKind::Subscription => "subscription.enable",
        };
        let detail = format!("{} held deliveries released", released.len());
        audit(&mut tx, now, actor, action, name, Some(&detail)).await?;
        tx.commit().await?;
        Ok(released.len() as u64)
    }

    /// Replays a dead letter (audited): it becomes pending with a fresh TTL window of
    /// `ttl_from_now` and no attempts, and is enqueued once. A `no_route` dead letter is routed
    /// again with `routes` (the current routing of the message) instead.
    pub async fn replay(
        &self,
        message_id: &str,
        subscription: &str,
        routes: &[Route],
        ttl_expires_at: Option<OffsetDateTime>,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<Vec<String>, ActionError> {
        let mut tx = self.begin_write().await?;
        let current = dead_row(&mut tx, message_id, subscription).await?;
        let at = timestamp(now);
        let replayed: Vec<String> = if current.subscription == NO_ROUTE {
            if routes.is_empty() {
                return Err(ActionError::StillNoRoute(message_id.to_owned()));
            }
            sqlx::query("DELETE FROM deliveries WHERE message_id = ? AND subscription = ?")
                .bind(message_id)
                .bind(NO_ROUTE)
                .execute(&mut *tx)
                .await?;
            for route in routes {
                sqlx::query(
                    "INSERT INTO deliveries (message_id, subscription, queue, state, replays,
                         enqueued_at, expires_at, updated_at)
                     VALUES (?, ?, ?, 'pending', 1, ?, ?, ?)
                     ON CONFLICT DO NOTHING",
                )
                .bind(message_id)
                .bind(&route.subscription)
                .bind(&route.queue)
                .bind(&at)
                .bind(unix_ms(route.expires_at))
                .bind(&at)
                .execute(&mut *tx)
                .await?;
            }
            routes.iter().map(|r| r.subscription.clone()).collect()
        } else {
            let expires_at = ttl_expires_at.unwrap_or(now);
            sqlx::query(
                "UPDATE deliveries SET state = 'pending', attempts = 0, reason = NULL,
                     replays = replays + 1, enqueued_at = ?, expires_at = ?, updated_at = ?
                 WHERE message_id = ? AND subscription = ? AND state = 'dead'",
            )
            .bind(&at)
            .bind(unix_ms(expires_at))
            .bind(&at)
            .bind(message_id)
            .bind(subscription)
            .execute(&mut *tx)
            .await?;
            vec![subscription.to_owned()]
        };
        for s in &replayed {
            outbox::requeue_in(&mut tx, &WorkItem::new(message_id, s, now))
                .await
                .map_err(queue_error)?;
        }
        let detail = format!("replayed by {actor} for {}", replayed.join(", "));
        let done = Action {
            message_id,
            subscription,
            state: STATE_QUEUED,
            detail: &detail,
            actor,
            action: "dlq.replay",
            reason: current.reason.as_deref(),
        };
        done.record(&mut tx, now).await?;
        tx.commit().await?;
        Ok(replayed)
    }

    /// Discards a dead letter (audited): it stays recorded as `discarded` and is never
    /// delivered.
    pub async fn discard(
        &self,
        message_id: &str,
        subscription: &str,
        actor: &str,
        now: OffsetDateTime,
    ) -> Result<(), ActionError> {
        let mut tx = self.begin_write().await?;
        let current = dead_row(&mut tx, message_id, subscription).await?;
        let at = timestamp(now);
        sqlx::query(
            "UPDATE deliveries SET state = 'discarded', updated_at = ?
             WHERE message_id = ? AND subscription = ? AND state = 'dead'",
        )
        .bind(&at)
        .bind(message_id)
        .bind(subscription)
        .execute(&mut *tx)
        .await?;
        let detail = format!("{subscription}: discarded by {actor}");
        let done = Action {
            message_id,
            subscription,
            state: STATE_DISCARDED,
            detail: &detail,
            actor,
            action: "dlq.discard",
            reason: current.reason.as_deref(),
        };
        done.record(&mut tx, now).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The newest audit entries first: `(at, actor, action, target, detail)`.
    pub async fn audit_log(&self, limit: u32) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT at, actor, action, target, detail FROM audit_log ORDER BY id DESC LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                at: r.get(0),
                actor: r.get(1),
                action: r.get(2),
                target: r.get(3),
                detail: r.get(4),
            })
            .collect())
    }
}

/// One audited operator action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    /// When (RFC 3339).
    pub at: String,
    /// Who.
    pub actor: String,
    /// What, e.g. `dlq.replay`, `queue.suspend`.
    pub action: String,
    /// On what.
    pub target: String,
    /// Reason or result.
    pub detail: Option<String>,
}

/// An operator action on one dead letter, recorded in its message history and the audit log.
struct Action<'a> {
    message_id: &'a str,
    subscription: &'a str,
    /// The history state entered.
    state: &'a str,
    detail: &'a str,
    actor: &'a str,
    /// The audit action name.
    action: &'a str,
    /// The dead letter's reason (audit detail).
    reason: Option<&'a str>,
}

impl Action<'_> {
    /// Writes the history entry, recomputes the message state and audits the action.
    async fn record(
        &self,
        tx: &mut SqliteConnection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        history(
            tx,
            self.message_id,
            self.state,
            &timestamp(now),
            self.detail,
        )
        .await?;
        set_message_state(tx, self.message_id).await?;
        let target = format!("{} {}", self.message_id, self.subscription);
        audit(tx, now, self.actor, self.action, &target, self.reason).await
    }
}

async fn dead_row(
    tx: &mut SqliteConnection,
    message_id: &str,
    subscription: &str,
) -> Result<DeliveryRow, ActionError> {
    let found = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM deliveries WHERE message_id = ? AND subscription = ?"
    )))
    .bind(message_id)
    .bind(subscription)
    .fetch_optional(&mut *tx)
    .await?;
    let Some(current) = found.as_ref().map(row).transpose()? else {
        return Err(ActionError::NotFound {
            message_id: message_id.to_owned(),
            subscription: subscription.to_owned(),
        });
    };
    if current.state != "dead" {
        return Err(ActionError::NotDead {
            message_id: message_id.to_owned(),
            subscription: subscription.to_owned(),
            state: current.state,
        });
    }
    Ok(current)
}

async fn audit(
    tx: &mut SqliteConnection,
    now: OffsetDateTime,
    actor: &str,
    action: &str,
    target: &str,
    detail: Option<&str>,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(timestamp(now))
        .bind(actor)
        .bind(action)
        .bind(target)
        .bind(detail)
        .execute(&mut *tx)
        .await?;
    Ok(())
}
