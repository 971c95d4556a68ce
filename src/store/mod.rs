//! The message store: SQLite (WAL) for message records and state, content-addressed files for
//! payloads ([`blobs`]).
//!
//! Invariants:
//! - **Blob first, then record.** Payloads larger than the inline threshold are committed as
//!   blob files (fsynced and renamed) before the transaction that inserts the row naming them;
//!   smaller payloads and the received envelope live in database rows.
//! - **Group commit.** One writer task owns the write connection. Accepted messages, delivery
//!   outcomes, the start and outcome of send attempts and the outbox relay's deletions
//!   ([`Store::write_script`]) queue up for it; it applies every job waiting (up to
//!   [`MAX_GROUP_COMMIT`]) in one transaction and answers each caller only after that
//!   transaction committed, so one WAL fsync covers a whole group under load while an idle
//!   gateway still commits each message at once. Each job's statements go to SQLite as one
//!   [`script::Script`], one hand-off to the connection's thread per job; the group's
//!   `Delivered` outcomes go together as one (`deliveries::apply_delivered`).
//! - **Reads by key run on the calling thread** ([`readers`]): the delivery worker's read of
//!   each message, message loads and the send row, without sqlx's thread hand-offs. Scans
//!   and operator actions use the sqlx pool.
//! - **All of a message or nothing.** Its row, its evidence (envelope and signed receipt, in
//!   `message_evidence`, apart from the row whose state keeps changing), payload rows and
//!   first state-history entry are inserted together. The receipt is returned to the partner
//!   only after the commit, so a receipted message survives `kill -9`.
//! - **Duplicates are detected by MessageId** (the primary key). A second insert of the same id
//!   changes nothing and yields the stored receipt, which is re-sent unchanged.
//!
//! Recovery: SQLite's WAL replays committed transactions on open; blobs without a row (the
//! process died between blob commit and row commit) are harmless and identical payloads reuse
//! them. Temporary blob files are removed at open.

pub mod blobs;
pub mod deliveries;
pub mod outbound;
pub mod readers;
pub mod script;

use std::io::Read;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow};
use sqlx::{ConnectOptions, Connection, Row, SqliteConnection, SqlitePool};
use tokio::sync::{mpsc, oneshot};

use crate::config::SqliteSynchronous;

pub use blobs::{BlobRef, BlobStore, PayloadWriter, StoredContent};
pub use deliveries::{DeadReason, DeliveryChange, DeliveryRow};

use crate::delivery::routing::Route;
use readers::{Columns, Readers};
use script::{AFTER_ONE_ROW, Param, Script};
use time::OffsetDateTime;

/// State of an inbound message that was receipted (Domibus: `RECEIVED`).
pub const STATE_RECEIVED: &str = "RECEIVED";

/// Most messages committed in one group transaction.
pub const MAX_GROUP_COMMIT: usize = 256;

/// WAL pages (4 KiB each, so 32 MiB) after which a commit checkpoints the WAL into the
/// database file. SQLite's default of 1,000 pages made the writer checkpoint (copy and fsync)
/// every couple of hundred messages, rewriting the same hot index and queue pages each time;
/// bench/ANALYSIS.md has the measurements. The WAL file keeps its largest size.
const WAL_AUTOCHECKPOINT_PAGES: u32 = 8192;

/// How many accepted messages may wait for the writer.
const WRITE_QUEUE: usize = 1024;

/// A store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    /// Schema migration failed.
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A blob could not be written or read.
    #[error("blob store: {0}")]
    Blob(#[from] std::io::Error),
    /// A stored JSON column could not be decoded.
    #[error("stored JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// A read on the calling thread ([`readers`]) failed.
    #[error("database: {0}")]
    Read(#[from] rusqlite::Error),
    /// The writer task is gone (the store is shutting down).
    #[error("the store writer has stopped")]
    WriterStopped,
}

/// A name/value/type property (message or part property) as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredProperty {
    /// Property name.
    pub name: String,
    /// Property value.
    pub value: String,
    /// Optional property type.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none", default)]
    pub r#type: Option<String>,
}

/// A payload of a message as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPayload {
    /// Content-ID of the MIME part (without `cid:` and angle brackets).
    pub content_id: String,
    /// Content id (SHA-256 hex) and size of the (decrypted, decompressed) payload bytes.
    pub blob: BlobRef,
    /// The bytes when kept in the database row; `None` when they are in the blob file.
    pub inline: Option<Vec<u8>>,
    /// `MimeType` part property.
    pub mime_type: Option<String>,
    /// `CharacterSet` part property.
    pub character_set: Option<String>,
    /// Whether the payload arrived gzip-compressed.
    pub compressed: bool,
    /// All part properties as received.
    pub properties: Vec<StoredProperty>,
}

/// Everything recorded about one accepted inbound message.
#[derive(Debug, Clone)]
pub struct InboundRecord {
    /// ebMS MessageId.
    pub message_id: String,
    /// The P-Mode the message matched.
    pub pmode_id: String,
    /// From PartyId value.
    pub from_party: String,
    /// From role.
    pub from_role: String,
    /// To PartyId value.
    pub to_party: String,
    /// To role.
    pub to_role: String,
    /// Service value.
    pub service: String,
    /// Service type.
    pub service_type: Option<String>,
    /// Action.
    pub action: String,
    /// ConversationId.
    pub conversation_id: String,
    /// AgreementRef value.
    pub agreement: Option<String>,
    /// Message partition channel.
    pub mpc: String,
    /// RefToMessageId.
    pub ref_to_message_id: Option<String>,
    /// MessageInfo/Timestamp as sent.
    pub message_timestamp: String,
    /// Message properties.
    pub message_properties: Vec<StoredProperty>,
    /// Whether this is an ebMS test-service message (never delivered).
    pub is_test: bool,
    /// SHA-256 hex of the signer's certificate, when signed.
    pub signer_certificate: Option<String>,
    /// The received SOAP envelope.
    pub envelope: Vec<u8>,
    /// Payloads in PartInfo order.
    pub payloads: Vec<StoredPayload>,
    /// The signed receipt that is returned to the sender.
    pub receipt: Vec<u8>,
    /// RFC 3339 time of receipt.
    pub received_at: String,
}

/// The result of [`Store::insert_inbound`].
#[derive(Debug)]
pub enum InsertOutcome {
    /// The message is new and now durable.
    Inserted,
    /// A message with this MessageId was received before; here is the receipt sent then.
    Duplicate {
        /// The original signed receipt.
        receipt: Vec<u8>,
    },
}

/// A row of `messages list`.
#[derive(Debug, Clone, Serialize)]
pub struct MessageSummary {
    /// ebMS MessageId.
    pub message_id: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Current state.
    pub state: String,
    /// From party.
    pub from_party: String,
    /// To party.
    pub to_party: String,
    /// Service.
    pub service: String,
    /// Action.
    pub action: String,
    /// Time received.
    pub received_at: String,
}

/// One state-history entry.
#[derive(Debug, Clone, Serialize)]
pub struct StateChange {
    /// The state entered.
    pub state: String,
    /// When (RFC 3339).
    pub at: String,
    /// Why, when known.
    pub detail: Option<String>,
}

/// Everything `messages show` prints.
#[derive(Debug, Clone)]
pub struct MessageDetail {
    /// The stored record (receipt included).
    pub record: InboundRecord,
    /// Current state.
    pub state: String,
    /// State history, oldest first.
    pub history: Vec<StateChange>,
}

/// The SQLite message store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    writer: mpsc::Sender<WriteJob>,
    pub(super) readers: Arc<Readers>,
}

/// A change waiting for the writer, and where to send the outcome.
enum WriteJob {
    /// A new inbound message and the subscriptions it is routed to.
    Insert {
        record: Box<InboundRecord>,
        routes: Vec<Route>,
        done: oneshot::Sender<Result<InsertOutcome, StoreError>>,
    },
    /// A delivery outcome.
    Delivery {
        change: DeliveryChange,
        done: oneshot::Sender<Result<bool, StoreError>>,
    },
    /// The start of a send attempt ([`Store::start_send`]).
    StartSend {
        message_id: String,
        at: String,
        done: oneshot::Sender<Result<Option<u32>, StoreError>>,
    },
    /// The outcome of a send attempt ([`Store::finish_send`]).
    FinishSend {
        message_id: String,
        outcome: Box<outbound::SendOutcome>,
        at: String,
        done: oneshot::Sender<Result<(), StoreError>>,
    },
    /// A change from outside the store ([`Store::write_script`]).
    Script {
        script: Script,
        done: oneshot::Sender<Result<Vec<SqliteRow>, StoreError>>,
    },
}

impl WriteJob {
    fn fail(self, error: StoreError) {
        match self {
            WriteJob::Insert { done, .. } => {
                let _ = done.send(Err(error));
            }
            WriteJob::Delivery { done, .. } => {
                let _ = done.send(Err(error));
            }
            WriteJob::StartSend { done, .. } => {
                let _ = done.send(Err(error));
            }
            WriteJob::FinishSend { done, .. } => {
                let _ = done.send(Err(error));
            }
            WriteJob::Script { done, .. } => {
                let _ = done.send(Err(error));
            }
        }
    }
}

/// What a committed job answers.
enum Answer {
    Insert(InsertOutcome),
    Delivery(bool),
    StartSend(Option<u32>),
    FinishSend,
    Script(Vec<SqliteRow>),
}

impl Store {
    /// Opens (creating if needed) the database at `path`, applies migrations and starts the
    /// writer task (so it must be called inside a tokio runtime).
    pub async fn open(path: &Path, synchronous: SqliteSynchronous) -> Result<Store, StoreError> {
        let sync = match synchronous {
            SqliteSynchronous::Full => sqlx::sqlite::SqliteSynchronous::Full,
            SqliteSynchronous::Normal => sqlx::sqlite::SqliteSynchronous::Normal,
        };
        let options = SqliteConnectOptions::from_str("sqlite://")?
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(sync)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(30))
            .pragma("wal_autocheckpoint", WAL_AUTOCHECKPOINT_PAGES.to_string());
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let connection = options.connect().await?;
        let (writer, jobs) = mpsc::channel(WRITE_QUEUE);
        tokio::spawn(write_loop(connection, jobs));
        Ok(Store {
            pool,
            writer,
            readers: Arc::new(Readers::new(path)),
        })
    }

    /// The database pool (shared with the queue layer, whose tables live in the same file).
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Begins a transaction on a pool connection that takes SQLite's write lock at once
    /// (`BEGIN IMMEDIATE`), waiting for it under the busy timeout. Every write transaction
    /// outside the group-commit writer starts this way: a deferred one that reads first and
    /// writes later fails at once with `SQLITE_BUSY` when another connection (the running
    /// gateway's writer, seen from an operator's CLI) commits in between, because its
    /// snapshot is then stale and SQLite's busy handler does not retry that.
    pub(crate) async fn begin_write(
        &self,
    ) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.pool.begin_with("BEGIN IMMEDIATE").await
    }

    /// The stored receipt of a message already received, if any.
    pub async fn receipt_of(&self, message_id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let row = sqlx::query("SELECT receipt FROM message_evidence WHERE message_id = ?")
            .bind(message_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.map(|r| r.get::<Vec<u8>, _>(0)))
    }

    /// Makes an accepted inbound message durable with its payloads, first state and receipt,
    /// and, unless it is a test message, its delivery rows and work items for `routes` (a
    /// `no_route` dead letter when `routes` is empty), all group-committed with whatever else
    /// is waiting. Blob files must already be committed. Returns once the transaction holding
    /// it has committed.
    pub async fn insert_inbound(
        &self,
        record: InboundRecord,
        routes: Vec<Route>,
    ) -> Result<InsertOutcome, StoreError> {
        self.write(|done| WriteJob::Insert {
            record: Box::new(record),
            routes,
            done,
        })
        .await
    }

    /// Records a delivery outcome (group-committed); returns whether the delivery was in the
    /// state the change expects (see [`DeliveryChange`]).
    pub async fn record_delivery(&self, change: DeliveryChange) -> Result<bool, StoreError> {
        self.write(|done| WriteJob::Delivery { change, done }).await
    }

    /// Runs `script` in the writer's next group transaction and returns the rows it produced,
    /// once that transaction committed. For tables other parts of the gateway write in the
    /// store's database (the RabbitMQ outbox): a write on a pool connection would wait for
    /// SQLite's write lock, which the writer, under load, frees only between groups; SQLite's
    /// busy handler then backs off in sleeps of up to 100 ms and such a write could wait for
    /// seconds. A script that fails fails its whole group, so it must be one that cannot
    /// fail on good data.
    pub async fn write_script(&self, script: Script) -> Result<Vec<SqliteRow>, StoreError> {
        self.write(|done| WriteJob::Script { script, done }).await
    }

    /// Hands the job `job(done)` to the writer and waits until the group holding it committed.
    async fn write<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<T, StoreError>>) -> WriteJob,
    ) -> Result<T, StoreError> {
        let (done, outcome) = oneshot::channel();
        self.writer
            .send(job(done))
            .await
            .map_err(|_| StoreError::WriterStopped)?;
        outcome.await.map_err(|_| StoreError::WriterStopped)?
    }

    /// The newest messages first.
    pub async fn list(&self, limit: u32) -> Result<Vec<MessageSummary>, StoreError> {
        let rows = sqlx::query(
            "SELECT message_id, direction, state, from_party, to_party, service, action, received_at
             FROM messages ORDER BY received_at DESC, message_id LIMIT ?",
        )
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| MessageSummary {
                message_id: r.get(0),
                direction: r.get(1),
                state: r.get(2),
                from_party: r.get(3),
                to_party: r.get(4),
                service: r.get(5),
                action: r.get(6),
                received_at: r.get(7),
            })
            .collect())
    }

    /// One message with payloads and history.
    pub async fn message(&self, message_id: &str) -> Result<Option<MessageDetail>, StoreError> {
        self.load(message_id, true).await
    }

    /// One message as delivery needs it: record and payloads, without the envelope, the
    /// receipt (both empty) and the history (empty), which are the large or many parts.
    pub async fn message_for_delivery(
        &self,
        message_id: &str,
    ) -> Result<Option<MessageDetail>, StoreError> {
        self.load(message_id, false).await
    }

    async fn load(
        &self,
        message_id: &str,
        full: bool,
    ) -> Result<Option<MessageDetail>, StoreError> {
        // One statement: the message columns (read from the first row) joined with its
        // payloads in order (none when the message has no payload).
        let sql = format!(
            "SELECT {} FROM messages m {PAYLOADS_JOIN} WHERE m.message_id = ?1 ORDER BY p.position",
            message_columns(full)
        );
        self.readers.read(|c| {
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query([message_id])?;
            let mut message = None;
            while let Some(row) = rows.next()? {
                add_message_row(&mut message, row, 0)?;
            }
            let Some(mut message) = message else {
                return Ok(None);
            };
            if full {
                let mut statement = c.prepare_cached(
                    "SELECT state, at, detail FROM state_history WHERE message_id = ?1
                     ORDER BY seq",
                )?;
                let mut rows = statement.query([message_id])?;
                while let Some(h) = rows.next()? {
                    message.history.push(StateChange {
                        state: h.column(0)?,
                        at: h.column(1)?,
                        detail: h.column(2)?,
                    });
                }
            }
            Ok(Some(message))
        })
    }
}

/// How [`message_columns`] joins the payloads (`p`) of a message (`m`).
const PAYLOADS_JOIN: &str = "LEFT JOIN payloads p ON p.message_id = m.message_id";

/// The columns [`add_message_row`] reads, from messages `m` and payloads `p` joined with
/// [`PAYLOADS_JOIN`]; without `full`, the envelope and receipt read as empty.
fn message_columns(full: bool) -> String {
    let evidence = if full {
        "COALESCE((SELECT envelope FROM message_evidence e WHERE e.message_id = m.message_id), X''),
         COALESCE((SELECT receipt FROM message_evidence e WHERE e.message_id = m.message_id), X'')"
    } else {
        "X'' AS envelope, X'' AS receipt"
    };
    format!(
        "m.message_id, m.state, m.pmode_id, m.from_party, m.from_role, m.to_party,
         m.to_role, m.service, m.service_type, m.action, m.conversation_id, m.agreement,
         m.mpc, m.ref_to_message_id, m.message_timestamp, m.message_properties,
         m.is_test, m.signer_certificate, {evidence}, m.received_at,
         p.content_id, p.blob, p.size, p.mime_type, p.character_set, p.compressed,
         p.properties, p.content"
    )
}

/// Adds a row of [`message_columns`] (starting at column `first`) to the message read so
/// far: the message from the first row, a payload from each row that has one. The message
/// stays `None` while the message columns are empty (a left join found no message).
fn add_message_row(
    message: &mut Option<MessageDetail>,
    row: &impl Columns,
    first: usize,
) -> Result<(), StoreError> {
    let c = |i: usize| first + i;
    if message.is_none() {
        let Some(message_id) = row.column::<Option<String>>(first)? else {
            return Ok(());
        };
        let properties: String = row.column(c(15))?;
        *message = Some(MessageDetail {
            record: InboundRecord {
                message_id,
                pmode_id: row.column(c(2))?,
                from_party: row.column(c(3))?,
                from_role: row.column(c(4))?,
                to_party: row.column(c(5))?,
                to_role: row.column(c(6))?,
                service: row.column(c(7))?,
                service_type: row.column(c(8))?,
                action: row.column(c(9))?,
                conversation_id: row.column(c(10))?,
                agreement: row.column(c(11))?,
                mpc: row.column(c(12))?,
                ref_to_message_id: row.column(c(13))?,
                message_timestamp: row.column(c(14))?,
                message_properties: serde_json::from_str(&properties)?,
                is_test: row.column(c(16))?,
                signer_certificate: row.column(c(17))?,
                envelope: row.column(c(18))?,
                payloads: Vec::new(),
                receipt: row.column(c(19))?,
                received_at: row.column(c(20))?,
            },
            state: row.column(c(1))?,
            history: Vec::new(),
        });
    }
    let (Some(message), Some(content_id)) =
        (message.as_mut(), row.column::<Option<String>>(c(21))?)
    else {
        return Ok(());
    };
    let properties: String = row.column(c(27))?;
    message.record.payloads.push(StoredPayload {
        content_id,
        blob: BlobRef {
            id: row.column(c(22))?,
            size: row.column::<i64>(c(23))? as u64,
        },
        mime_type: row.column(c(24))?,
        character_set: row.column(c(25))?,
        compressed: row.column(c(26))?,
        properties: serde_json::from_str(&properties)?,
        inline: row.column(c(28))?,
    });
    Ok(())
}

/// The writer task: takes every job waiting (up to [`MAX_GROUP_COMMIT`]), inserts them in
/// one transaction and answers each after the commit. A failed transaction fails its whole
/// group (nothing of it is stored); callers answer their partners with an error, and the
/// partners retry.
async fn write_loop(mut connection: SqliteConnection, mut jobs: mpsc::Receiver<WriteJob>) {
    let mut group = Vec::with_capacity(MAX_GROUP_COMMIT);
    while jobs.recv_many(&mut group, MAX_GROUP_COMMIT).await > 0 {
        match commit_group(&mut connection, &mut group).await {
            Ok(answers) => {
                for (job, answer) in group.drain(..).zip(answers) {
                    match (job, answer) {
                        (WriteJob::Insert { done, .. }, Answer::Insert(outcome)) => {
                            let _ = done.send(Ok(outcome));
                        }
                        (WriteJob::Delivery { done, .. }, Answer::Delivery(changed)) => {
                            let _ = done.send(Ok(changed));
                        }
                        (WriteJob::StartSend { done, .. }, Answer::StartSend(attempt)) => {
                            let _ = done.send(Ok(attempt));
                        }
                        (WriteJob::FinishSend { done, .. }, Answer::FinishSend) => {
                            let _ = done.send(Ok(()));
                        }
                        (WriteJob::Script { done, .. }, Answer::Script(rows)) => {
                            let _ = done.send(Ok(rows));
                        }
                        (job, _) => job.fail(StoreError::WriterStopped),
                    }
                }
            }
            Err(e) => {
                let reason = e.to_string();
                tracing::error!(jobs = group.len(), error = %reason, "group commit failed");
                for job in group.drain(..) {
                    job.fail(StoreError::Database(sqlx::Error::Protocol(reason.clone())));
                }
            }
        }
    }
}

async fn commit_group(
    connection: &mut SqliteConnection,
    group: &mut [WriteJob],
) -> Result<Vec<Answer>, StoreError> {
    // Immediate, as [`Store::begin_write`] says why: another process (an operator's CLI)
    // committing between a group's first read and its first write must not fail the group.
    let mut tx = connection.begin_with("BEGIN IMMEDIATE").await?;
    let now = OffsetDateTime::now_utc();
    let mut answers = Vec::with_capacity(group.len());
    // Delivered outcomes wait for one batch at the end ([`deliveries::apply_delivered`]).
    let mut delivered = Vec::new();
    for (index, job) in group.iter_mut().enumerate() {
        if let WriteJob::Delivery {
            change:
                DeliveryChange::Delivered {
                    message_id,
                    subscription,
                    attempts,
                },
            ..
        } = job
        {
            delivered.push((
                index,
                deliveries::Delivered {
                    message_id,
                    subscription,
                    attempts: *attempts,
                },
            ));
            answers.push(Answer::Delivery(false));
            continue;
        }
        answers.push(match job {
            WriteJob::Insert { record, routes, .. } => {
                Answer::Insert(insert_one(&mut tx, record, routes, now).await?)
            }
            WriteJob::Delivery { change, .. } => {
                Answer::Delivery(deliveries::apply(&mut tx, change, now).await?)
            }
            WriteJob::StartSend { message_id, at, .. } => {
                Answer::StartSend(outbound::start_send_in(&mut tx, message_id, at).await?)
            }
            WriteJob::FinishSend {
                message_id,
                outcome,
                at,
                ..
            } => {
                outbound::finish_send_in(&mut tx, message_id, outcome, at).await?;
                Answer::FinishSend
            }
            WriteJob::Script { script, .. } => {
                Answer::Script(std::mem::take(script).fetch_all(&mut tx).await?)
            }
        });
    }
    if !delivered.is_empty() {
        let (indexes, outcomes): (Vec<usize>, Vec<deliveries::Delivered>) =
            delivered.into_iter().unzip();
        let moved = deliveries::apply_delivered(&mut tx, &outcomes, now).await?;
        for (index, moved) in indexes.into_iter().zip(moved) {
            answers[index] = Answer::Delivery(moved);
        }
    }
    tx.commit().await?;
    Ok(answers)
}

/// Stores `rec` with its payloads, first history entry and (unless it is a test message)
/// its routes in one [`Script`]: the message insert heads a chain of one-row statements, so a
/// MessageId stored before changes nothing and yields the receipt stored with it.
async fn insert_one(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    rec: &InboundRecord,
    routes: &[Route],
    now: OffsetDateTime,
) -> Result<InsertOutcome, StoreError> {
    let mut script = Script::new();
    let id = script.arg(rec.message_id.as_str())?;
    let state = script.arg(STATE_RECEIVED)?;
    let received_at = script.arg(rec.received_at.as_str())?;
    let columns = [
        script.arg(rec.pmode_id.as_str())?,
        script.arg(rec.from_party.as_str())?,
        script.arg(rec.from_role.as_str())?,
        script.arg(rec.to_party.as_str())?,
        script.arg(rec.to_role.as_str())?,
        script.arg(rec.service.as_str())?,
        script.arg(rec.service_type.as_deref())?,
        script.arg(rec.action.as_str())?,
        script.arg(rec.conversation_id.as_str())?,
        script.arg(rec.agreement.as_deref())?,
        script.arg(rec.mpc.as_str())?,
        script.arg(rec.ref_to_message_id.as_deref())?,
        script.arg(rec.message_timestamp.as_str())?,
        script.arg(serde_json::to_string(&rec.message_properties)?)?,
        script.arg(rec.is_test)?,
        script.arg(rec.signer_certificate.as_deref())?,
    ]
    .map(|p| p.to_string())
    .join(", ");
    script.push(&format!(
        "INSERT INTO messages (message_id, direction, state, received_at, pmode_id, from_party,
             from_role, to_party, to_role, service, service_type, action, conversation_id,
             agreement, mpc, ref_to_message_id, message_timestamp, message_properties, is_test,
             signer_certificate)
         VALUES ({id}, 'inbound', {state}, {received_at}, {columns})
         ON CONFLICT (message_id) DO NOTHING
         RETURNING NULL AS receipt"
    ));
    let envelope = script.arg(rec.envelope.as_slice())?;
    let receipt = script.arg(rec.receipt.as_slice())?;
    script.push(&format!(
        "INSERT INTO message_evidence (message_id, envelope, receipt)
         SELECT {id}, {envelope}, {receipt} WHERE {AFTER_ONE_ROW}"
    ));
    push_payloads(&mut script, id, &rec.payloads, AFTER_ONE_ROW)?;
    let detail = script.arg(
        rec.is_test
            .then_some("ebMS test service: receipted, not delivered"),
    )?;
    deliveries::push_history(&mut script, id, state, received_at, detail, AFTER_ONE_ROW);
    if !rec.is_test {
        deliveries::push_routes(&mut script, id, &rec.message_id, routes, now, AFTER_ONE_ROW)?;
    }
    // Only a message stored before reaches here with its chain not run. (An outbound message
    // with this MessageId has no evidence row, and no receipt to re-send.)
    script.push(&format!(
        "SELECT COALESCE(e.receipt, X'') FROM messages m
         LEFT JOIN message_evidence e ON e.message_id = m.message_id
         WHERE m.message_id = {id} AND changes() = 0"
    ));
    let rows = script.fetch_all(tx).await?;
    let receipts: Vec<Option<Vec<u8>>> = rows.iter().map(|r| r.get(0)).collect();
    match receipts.as_slice() {
        [None] => Ok(InsertOutcome::Inserted),
        [Some(receipt)] => Ok(InsertOutcome::Duplicate {
            receipt: receipt.clone(),
        }),
        _ => Err(StoreError::Database(sqlx::Error::Protocol(format!(
            "storing message {} stopped part-way",
            rec.message_id
        )))),
    }
}

/// RFC 3339 UTC timestamp, as stored and as ebMS `xsd:dateTime`.
pub fn timestamp(t: OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// Appends to `script` the payload rows of message `message`, a chain of one-row inserts run
/// only while `guard` holds.
fn push_payloads(
    script: &mut Script,
    message: Param,
    payloads: &[StoredPayload],
    guard: &str,
) -> Result<(), StoreError> {
    let mut guard = guard;
    for (position, p) in payloads.iter().enumerate() {
        let values = [
            script.arg(position as i64)?,
            script.arg(p.content_id.as_str())?,
            script.arg(p.blob.id.as_str())?,
            script.arg(p.blob.size as i64)?,
            script.arg(p.inline.as_deref())?,
            script.arg(p.mime_type.as_deref())?,
            script.arg(p.character_set.as_deref())?,
            script.arg(p.compressed)?,
            script.arg(serde_json::to_string(&p.properties)?)?,
        ]
        .map(|p| p.to_string())
        .join(", ");
        script.push(&format!(
            "INSERT INTO payloads (message_id, position, content_id, blob, size, content,
                 mime_type, character_set, compressed, properties)
             SELECT {message}, {values}
             WHERE {guard}"
        ));
        guard = AFTER_ONE_ROW;
    }
    Ok(())
}

/// Inserts the payload rows of `rec`.
async fn insert_payloads(tx: &mut SqliteConnection, rec: &InboundRecord) -> Result<(), StoreError> {
    let mut script = Script::new();
    let message = script.arg(rec.message_id.as_str())?;
    push_payloads(&mut script, message, &rec.payloads, script::ALWAYS)?;
    script.fetch_all(tx).await?;
    Ok(())
}

impl StoredPayload {
    /// The payload bytes, from the row or the blob file, checked against the content id.
    pub fn content(&self, blobs: &BlobStore) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.reader(blobs)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// A reader over the payload bytes: the row's, or the blob file's streamed and checked
    /// against the content id ([`blobs::BlobReader`]).
    pub fn reader(&self, blobs: &BlobStore) -> std::io::Result<Box<dyn Read + Send + '_>> {
        Ok(match &self.inline {
            Some(bytes) => Box::new(bytes.as_slice()),
            None => Box::new(blobs.reader(&self.blob.id)?),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, receipt: &[u8]) -> InboundRecord {
        InboundRecord {
            message_id: id.into(),
            pmode_id: "p".into(),
            from_party: "blue_gw".into(),
            from_role: "init".into(),
            to_party: "red_gw".into(),
            to_role: "resp".into(),
            service: "svc".into(),
            service_type: None,
            action: "act".into(),
            conversation_id: "c".into(),
            agreement: None,
            mpc: "mpc".into(),
            ref_to_message_id: None,
            message_timestamp: "2026-11-23T00:00:00Z".into(),
            message_properties: vec![StoredProperty {
                name: "originalSender".into(),
                value: "x".into(),
                r#type: Some("t".into()),
            }],
            is_test: false,
            signer_certificate: None,
            envelope: b"<S12:Envelope/>".to_vec(),
            payloads: vec![StoredPayload {
                content_id: "p1@x".into(),
                blob: BlobRef {
                    id: "11".repeat(32),
                    size: 3,
                },
                inline: Some(b"abc".to_vec()),
                mime_type: Some("application/xml".into()),
                character_set: None,
                compressed: true,
                properties: vec![],
            }],
            receipt: receipt.to_vec(),
            received_at: "2026-11-23T00:00:01Z".into(),
        }
    }

    /// A store in a fresh temporary directory, which lives as long as the returned guard.
    async fn scratch_store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db"), SqliteSynchronous::Normal)
            .await
            .unwrap();
        (dir, store)
    }

    #[tokio::test]
    async fn insert_show_and_duplicate() {
        let (_dir, store) = scratch_store().await;
        assert!(matches!(
            store
                .insert_inbound(record("m1", b"R1"), vec![])
                .await
                .unwrap(),
            InsertOutcome::Inserted
        ));
        match store
            .insert_inbound(record("m1", b"R2"), vec![])
            .await
            .unwrap()
        {
            InsertOutcome::Duplicate { receipt } => assert_eq!(receipt, b"R1"),
            other => panic!("expected duplicate, got {other:?}"),
        }
        let detail = store.message("m1").await.unwrap().unwrap();
        // Routed nowhere: a `no_route` dead letter, recorded with the message.
        assert_eq!(detail.state, deliveries::STATE_DELIVERY_FAILED);
        assert_eq!(detail.record.payloads.len(), 1);
        assert_eq!(detail.record.message_properties[0].name, "originalSender");
        assert_eq!(detail.record.envelope, b"<S12:Envelope/>");
        assert_eq!(detail.record.receipt, b"R1");
        let states: Vec<_> = detail.history.iter().map(|h| h.state.as_str()).collect();
        assert_eq!(states, [STATE_RECEIVED, "DEAD_LETTERED"]);
        let rows = store.deliveries_of("m1").await.unwrap();
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].reason.as_deref(), Some("no_route"));
        assert_eq!(store.list(10).await.unwrap().len(), 1);
        assert_eq!(store.receipt_of("m1").await.unwrap().unwrap(), b"R1");
        assert!(store.receipt_of("nope").await.unwrap().is_none());
    }

    /// Delivered outcomes committed in one group go to SQLite as one batch: each row moves
    /// once, with consecutive history entries for two rows of one message; a repeated outcome
    /// and one for a row no longer pending report that nothing moved.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn delivered_outcomes_of_one_group_apply_as_one_batch() {
        let (_dir, store) = scratch_store().await;
        let now = OffsetDateTime::now_utc();
        let route = |subscription: &str| Route {
            subscription: subscription.into(),
            queue: "q".into(),
            expires_at: now + Duration::from_secs(3600),
        };
        store
            .insert_inbound(record("m1", b"R"), vec![route("a"), route("b")])
            .await
            .unwrap();
        store
            .insert_inbound(record("m2", b"R"), vec![route("a")])
            .await
            .unwrap();
        let delivered = |id: &str, subscription: &str| DeliveryChange::Delivered {
            message_id: id.into(),
            subscription: subscription.into(),
            attempts: 1,
        };
        // m2/a is delivered first, alone; then everything at once, so the writer groups them.
        assert!(store.record_delivery(delivered("m2", "a")).await.unwrap());
        let changes = [
            delivered("m1", "a"),
            delivered("m1", "b"),
            delivered("m1", "a"),
            delivered("m2", "a"),
        ];
        let outcomes = futures_util::future::join_all(
            changes.iter().map(|c| store.record_delivery(c.clone())),
        )
        .await;
        let moved: Vec<bool> = outcomes.into_iter().map(Result::unwrap).collect();
        assert_eq!(moved.iter().filter(|m| **m).count(), 2, "{moved:?}");
        assert!(moved[1] && !moved[3], "{moved:?}");
        let m1 = store.message("m1").await.unwrap().unwrap();
        assert_eq!(m1.state, deliveries::STATE_DELIVERED);
        let states: Vec<_> = m1.history.iter().map(|h| h.state.as_str()).collect();
        assert_eq!(states, [STATE_RECEIVED, "QUEUED", "DELIVERED", "DELIVERED"]);
        let details: Vec<_> = m1.history[2..].iter().map(|h| h.detail.clone()).collect();
        assert_eq!(
            details,
            [
                Some("to a (attempt 1)".into()),
                Some("to b (attempt 1)".into())
            ]
        );
        let m2 = store.message("m2").await.unwrap().unwrap();
        assert_eq!(m2.history.len(), 3);
        assert!(
            store
                .deliveries_of("m1")
                .await
                .unwrap()
                .iter()
                .all(|d| d.state == "delivered" && d.attempts == 1)
        );
    }

    /// An operator action (a read, then writes) waits for a write transaction that another
    /// process holds and commits meanwhile, instead of failing with `SQLITE_BUSY`; so does a
    /// group of the writer.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn writes_wait_for_another_process_that_commits_meanwhile() {
        let (dir, store) = scratch_store().await;
        store
            .insert_inbound(record("m1", b"R"), vec![])
            .await
            .unwrap();
        let other = rusqlite::Connection::open(dir.path().join("db")).unwrap();
        other
            .execute_batch(
                "BEGIN IMMEDIATE;
                 INSERT INTO delivery_pauses (kind, name, since) VALUES ('queue', 'q', 't');",
            )
            .unwrap();
        let commit = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            other.execute_batch("COMMIT").unwrap();
        });
        let now = OffsetDateTime::now_utc();
        let (discarded, inserted) = tokio::join!(
            store.discard("m1", crate::delivery::routing::NO_ROUTE, "test", now),
            store.insert_inbound(record("m2", b"R"), vec![]),
        );
        commit.join().unwrap();
        discarded.unwrap();
        assert!(matches!(inserted.unwrap(), InsertOutcome::Inserted));
        let rows = store.deliveries_of("m1").await.unwrap();
        assert_eq!(rows[0].state, "discarded");
    }

    /// Migration 0006 moves the evidence of messages stored before it into
    /// `message_evidence`; an outbound message that had none gets no evidence row.
    #[tokio::test]
    async fn evidence_moves_out_of_the_message_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        {
            let options = SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(&path)
                .create_if_missing(true);
            let mut db = options.connect().await.unwrap();
            let mut before = sqlx::migrate!("./migrations");
            before.migrations = before
                .migrations
                .iter()
                .filter(|m| m.version < 6)
                .cloned()
                .collect::<Vec<_>>()
                .into();
            before.run(&mut db).await.unwrap();
            for (id, direction, envelope, receipt) in [
                ("in", "inbound", &b"<E/>"[..], &b"<R/>"[..]),
                ("out", "outbound", b"", b""),
            ] {
                sqlx::query(
                    "INSERT INTO messages (message_id, direction, state, pmode_id, from_party,
                         from_role, to_party, to_role, service, action, conversation_id, mpc,
                         message_timestamp, message_properties, is_test, envelope, receipt,
                         received_at)
                     VALUES (?, ?, 'RECEIVED', 'p', 'a', 'r', 'b', 'r', 's', 'a', 'c', 'm', 't',
                             '[]', 0, ?, ?, 't')",
                )
                .bind(id)
                .bind(direction)
                .bind(envelope)
                .bind(receipt)
                .execute(&mut db)
                .await
                .unwrap();
            }
        }
        let store = Store::open(&path, SqliteSynchronous::Full).await.unwrap();
        let moved = store.message("in").await.unwrap().unwrap().record;
        assert_eq!(
            (moved.envelope, moved.receipt),
            (b"<E/>".to_vec(), b"<R/>".to_vec())
        );
        assert_eq!(store.receipt_of("in").await.unwrap().unwrap(), b"<R/>");
        let outbound = store.message("out").await.unwrap().unwrap().record;
        assert!(outbound.envelope.is_empty() && outbound.receipt.is_empty());
        assert!(store.receipt_of("out").await.unwrap().is_none());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_inserts_are_all_committed_once() {
        let (_dir, store) = scratch_store().await;
        // 300 inserts of 100 distinct ids, all at once: groups form, duplicates inside one
        // group and across groups are detected, and every caller gets the first receipt.
        let tasks: Vec<_> = (0..300)
            .map(|i| {
                let store = store.clone();
                tokio::spawn(async move {
                    let id = format!("m{}", i % 100);
                    let receipt = format!("R{i}");
                    (
                        i,
                        store
                            .insert_inbound(record(&id, receipt.as_bytes()), vec![])
                            .await
                            .unwrap(),
                    )
                })
            })
            .collect();
        let mut inserted = 0;
        for t in tasks {
            match t.await.unwrap() {
                (_, InsertOutcome::Inserted) => inserted += 1,
                (i, InsertOutcome::Duplicate { receipt }) => {
                    let stored = store.receipt_of(&format!("m{}", i % 100)).await.unwrap();
                    assert_eq!(Some(receipt), stored);
                }
            }
        }
        assert_eq!(inserted, 100);
        assert_eq!(store.list(1000).await.unwrap().len(), 100);
    }
}
