//! The transactional entry point: work items written in the same SQLite transaction as the
//! store change that makes them necessary.
//!
//! On-disk format (`migrations/0002_queue.sql`), table `queue_items`, one row per pending
//! item, unique per `(message_id, subscriber)`:
//! `id` (insertion order), `message_id`, `subscriber`, `attempt`, `enqueued_at` (RFC 3339),
//! `available_at` (Unix ms; not handed out before), `lease_until` / `lease_token` (embedded
//! only: who holds it and until when), `deliveries` (claims since the last schedule).
//!
//! With the embedded backend this table **is** the queue. With RabbitMQ it is the outbox:
//! the relay publishes due rows with publisher confirms and deletes each only after its
//! confirm, so a crash between the caller's commit and the broker's confirm loses nothing
//! (the row is republished on restart; a duplicate is possible). Rows scheduled in the future
//! stay until due, so switching a database from the embedded backend to RabbitMQ hands
//! pending items over.

use sqlx::{Row, Sqlite, Transaction};

use super::{QueueError, WorkItem, parse_rfc3339, rfc3339, unix_ms};
use crate::store::script::{ALWAYS, Script};

/// Adds `item` to the queue inside the caller's transaction; it becomes visible to
/// consumers (or the relay) when that transaction commits, due at `item.enqueued_at`.
/// Enqueueing a `(message_id, subscriber)` that is still pending changes nothing.
pub async fn enqueue_in(
    tx: &mut Transaction<'_, Sqlite>,
    item: &WorkItem,
) -> Result<(), QueueError> {
    insert(tx, item, "DO NOTHING").await
}

/// Adds `item` to the queue inside the caller's transaction like [`enqueue_in`], but when
/// the `(message_id, subscriber)` pair is still pending it is re-armed: due at
/// `item.enqueued_at`, with `item.attempt`, and any lease on it is revoked (a settle by its
/// holder then misses). Used when a store change makes an item due again (a replay, a resumed
/// queue) while an old copy may still be in flight.
pub async fn requeue_in(
    tx: &mut Transaction<'_, Sqlite>,
    item: &WorkItem,
) -> Result<(), QueueError> {
    insert(
        tx,
        item,
        "DO UPDATE SET attempt = excluded.attempt, enqueued_at = excluded.enqueued_at,
             available_at = excluded.available_at, lease_until = NULL, lease_token = NULL,
             deliveries = 0",
    )
    .await
}

async fn insert(
    tx: &mut Transaction<'_, Sqlite>,
    item: &WorkItem,
    on_conflict: &str,
) -> Result<(), QueueError> {
    let mut script = Script::new();
    push_insert(&mut script, item, on_conflict, ALWAYS)?;
    script.fetch_all(tx).await?;
    Ok(())
}

/// Appends to `script` the insert of `item` like [`enqueue_in`], run only while `guard`
/// holds ([`Script`]); the insert changes one row unless the pair is still pending.
pub fn push_enqueue(script: &mut Script, item: &WorkItem, guard: &str) -> Result<(), QueueError> {
    push_insert(script, item, "DO NOTHING", guard)
}

fn push_insert(
    script: &mut Script,
    item: &WorkItem,
    on_conflict: &str,
    guard: &str,
) -> Result<(), QueueError> {
    let message_id = script.arg(item.message_id.as_str())?;
    let subscriber = script.arg(item.subscriber.as_str())?;
    let attempt = script.arg(i64::from(item.attempt))?;
    let enqueued_at = script.arg(rfc3339(item.enqueued_at)?)?;
    let available_at = script.arg(unix_ms(item.enqueued_at))?;
    // `WHERE` before `ON CONFLICT` also keeps SQLite from reading `ON` as a join constraint.
    script.push(&format!(
        "INSERT INTO queue_items (message_id, subscriber, attempt, enqueued_at, available_at)
         SELECT {message_id}, {subscriber}, {attempt}, {enqueued_at}, {available_at}
         WHERE {guard}
         ON CONFLICT (message_id, subscriber) {on_conflict}"
    ));
    Ok(())
}

/// Reads the item columns `message_id, subscriber, attempt, enqueued_at` starting at
/// column `first` of a row.
pub(super) fn item_from_row(
    row: &sqlx::sqlite::SqliteRow,
    first: usize,
) -> Result<WorkItem, QueueError> {
    let attempt: i64 = row.try_get(first + 2)?;
    Ok(WorkItem {
        message_id: row.try_get(first)?,
        subscriber: row.try_get(first + 1)?,
        attempt: u32::try_from(attempt)
            .map_err(|_| QueueError::MalformedItem(format!("attempt {attempt}")))?,
        enqueued_at: parse_rfc3339(row.try_get(first + 3)?)?,
    })
}
