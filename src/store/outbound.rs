//! Outbound messages: submissions (`submissions`), send state (`sends`), and the message,
//! payload and history rows shared with inbound messages (`direction = 'outbound'`).
//!
//! State machine (Domibus names; every transition is a `state_history` entry):
//!
//! ```text
//! SUBMITTED ─▶ SEND_ENQUEUED ─▶ SEND_IN_PROGRESS ─┬─▶ ACKNOWLEDGED          (valid receipt)
//!                   ▲                             ├─▶ WAITING_FOR_RETRY ─┐  (no/invalid receipt)
//!                   └─────────────────────────────┼──────────────────────┘
//!                                                 └─▶ SEND_FAILURE          (ebMS error signal,
//!                                                                             retries exhausted)
//! ```
//!
//! With the pull binding the partner fetches the message:
//!
//! ```text
//! SUBMITTED ─▶ READY_TO_PULL ─▶ WAITING_FOR_RECEIPT ─┬─▶ ACKNOWLEDGED   (receipt pushed back)
//!                   ▲                                ├─▶ READY_TO_PULL  (no receipt in time)
//!                   └────────────────────────────────┘   SEND_FAILURE   (retries exhausted)
//! ```
//!
//! Invariants:
//! - **Persisted before answered.** A submission's message row, payload rows, send row and
//!   work item are written in one transaction; the submitter gets the MessageId after it.
//! - **Idempotent submission.** A caller-supplied submission id maps to one message for good.
//! - **One outcome per attempt, only forward.** Attempt outcomes apply only while the message
//!   is `SEND_IN_PROGRESS`; `ACKNOWLEDGED` and `SEND_FAILURE` are final.

use sqlx::Row;
use time::OffsetDateTime;

use super::deliveries::{history, push_history};
use super::readers::Columns;
use super::script::{AFTER_ONE_ROW, Script};
use super::{InboundRecord, Store, StoreError, WriteJob, insert_payloads, timestamp};
use crate::queue::{WorkItem, outbox};

/// Subscriber name of send work items in the queue.
pub const SEND_SUBSCRIBER: &str = "@send";

/// The message was submitted and validated.
pub const SUBMITTED: &str = "SUBMITTED";
/// Waiting for the sender (first attempt or after a restart).
pub const SEND_ENQUEUED: &str = "SEND_ENQUEUED";
/// An attempt is under way.
pub const SEND_IN_PROGRESS: &str = "SEND_IN_PROGRESS";
/// The last attempt got no valid receipt; another follows.
pub const WAITING_FOR_RETRY: &str = "WAITING_FOR_RETRY";
/// A valid receipt arrived.
pub const ACKNOWLEDGED: &str = "ACKNOWLEDGED";
/// Pull binding: waiting on its MPC for the partner's PullRequest.
pub const READY_TO_PULL: &str = "READY_TO_PULL";
/// Pull binding: handed out to a PullRequest; its receipt has not arrived yet.
pub const WAITING_FOR_RECEIPT: &str = "WAITING_FOR_RECEIPT";
/// Given up: an ebMS error signal, or retries exhausted (EBMS:0301).
pub const SEND_FAILURE: &str = "SEND_FAILURE";

/// A signature reference as kept for a pulled message's receipt check.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct StoredReference {
    uri: String,
    digest_method: String,
    digest_value: String,
}

/// The result of [`Store::submit`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submitted {
    /// The MessageId of the (new or earlier) message.
    pub message_id: String,
    /// True when the submission id was seen before: nothing new was stored.
    pub duplicate: bool,
}

/// The send state of one outbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRow {
    /// ebMS MessageId.
    pub message_id: String,
    /// Responder PartyId.
    pub partner: String,
    /// The message state.
    pub state: String,
    /// Attempts started.
    pub attempts: u32,
    /// ebMS error code recorded for the submitter.
    pub error_code: Option<String>,
    /// The last failure.
    pub last_error: Option<String>,
}

/// The outcome of one send attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendOutcome {
    /// A valid receipt: the envelope sent and the receipt are kept as evidence.
    Acknowledged {
        /// The signed envelope of the acknowledged attempt.
        envelope: Vec<u8>,
        /// The receipt.
        receipt: Vec<u8>,
    },
    /// No valid receipt; the next attempt follows after `retry_in`.
    Retry {
        /// What went wrong.
        error: String,
        /// Delay before the next attempt.
        retry_in: std::time::Duration,
    },
    /// Given up.
    Failed {
        /// ebMS error code for the submitter (from the partner's error signal, or
        /// EBMS:0301 MissingReceipt when retries ran out).
        code: String,
        /// Detail.
        error: String,
    },
}

impl Store {
    /// Stores a validated outbound message (`record.receipt` and `record.envelope` empty) with
    /// its payloads, send row and work item in one transaction. With a `submission_id` seen
    /// before, nothing is stored and the earlier MessageId is returned.
    pub async fn submit(
        &self,
        record: &InboundRecord,
        partner: &str,
        submission_id: Option<&str>,
        pull: bool,
        now: OffsetDateTime,
    ) -> Result<Submitted, StoreError> {
        let mut tx = self.begin_write().await?;
        if let Some(id) = submission_id {
            let earlier: Option<String> =
                sqlx::query_scalar("SELECT message_id FROM submissions WHERE submission_id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await?;
            if let Some(message_id) = earlier {
                return Ok(Submitted {
                    message_id,
                    duplicate: true,
                });
            }
        }
        let at = timestamp(now);
        sqlx::query(
            "INSERT INTO messages (message_id, direction, state, pmode_id, from_party, from_role,
                 to_party, to_role, service, service_type, action, conversation_id, agreement,
                 mpc, ref_to_message_id, message_timestamp, message_properties, is_test,
                 signer_certificate, received_at)
             VALUES (?, 'outbound', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?)",
        )
        .bind(&record.message_id)
        .bind(if pull { READY_TO_PULL } else { SEND_ENQUEUED })
        .bind(&record.pmode_id)
        .bind(&record.from_party)
        .bind(&record.from_role)
        .bind(&record.to_party)
        .bind(&record.to_role)
        .bind(&record.service)
        .bind(&record.service_type)
        .bind(&record.action)
        .bind(&record.conversation_id)
        .bind(&record.agreement)
        .bind(&record.mpc)
        .bind(&record.ref_to_message_id)
        .bind(&record.message_timestamp)
        .bind(serde_json::to_string(&record.message_properties)?)
        .bind(&at)
        .execute(&mut *tx)
        .await?;
        insert_payloads(&mut tx, record).await?;
        let detail = submission_id.map(|id| format!("submission {id}"));
        history(
            &mut tx,
            &record.message_id,
            SUBMITTED,
            &at,
            detail.as_deref().unwrap_or(""),
        )
        .await?;
        if pull {
            let detail = format!("{partner} pulls it from {}", record.mpc);
            history(&mut tx, &record.message_id, READY_TO_PULL, &at, &detail).await?;
        } else {
            history(&mut tx, &record.message_id, SEND_ENQUEUED, &at, partner).await?;
        }
        sqlx::query("INSERT INTO sends (message_id, partner, updated_at) VALUES (?, ?, ?)")
            .bind(&record.message_id)
            .bind(partner)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        if let Some(id) = submission_id {
            sqlx::query(
                "INSERT INTO submissions (submission_id, message_id, submitted_at) VALUES (?, ?, ?)",
            )
            .bind(id)
            .bind(&record.message_id)
            .bind(&at)
            .execute(&mut *tx)
            .await?;
        }
        if !pull {
            enqueue(&mut tx, &record.message_id, now).await?;
        }
        tx.commit().await?;
        Ok(Submitted {
            message_id: record.message_id.clone(),
            duplicate: false,
        })
    }

    /// The send state of an outbound message (read on this thread, [`super::readers`]).
    pub async fn send_row(&self, message_id: &str) -> Result<Option<SendRow>, StoreError> {
        let sql = format!("{SEND_ROWS} WHERE s.message_id = ?1");
        self.readers.read(|c| {
            let mut statement = c.prepare_cached(&sql)?;
            let mut rows = statement.query([message_id])?;
            rows.next()?.map(send_row).transpose()
        })
    }

    /// Starts attempt `attempts + 1` of a message that is waiting to be sent; returns the
    /// attempt number, or `None` when the message is not waiting (already final, or another
    /// attempt is under way). Group-committed with whatever else the writer has waiting.
    pub async fn start_send(
        &self,
        message_id: &str,
        now: OffsetDateTime,
    ) -> Result<Option<u32>, StoreError> {
        self.write(|done| WriteJob::StartSend {
            message_id: message_id.to_owned(),
            at: timestamp(now),
            done,
        })
        .await
    }

    /// Records the outcome of the attempt under way (group-committed); an outcome for a
    /// message that is no longer `SEND_IN_PROGRESS` changes nothing.
    pub async fn finish_send(
        &self,
        message_id: &str,
        outcome: &SendOutcome,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.write(|done| WriteJob::FinishSend {
            message_id: message_id.to_owned(),
            outcome: Box::new(outcome.clone()),
            at: timestamp(now),
            done,
        })
        .await
    }

    /// Hands the oldest message waiting on `mpc` for `partner` to a PullRequest: it becomes
    /// `WAITING_FOR_RECEIPT` (attempt + 1), and a check is enqueued `check_after(attempt)` from
    /// now, when the message is offered again (or given up) unless its receipt came. Returns the MessageId
    /// and attempt number.
    pub async fn take_for_pull(
        &self,
        mpc: &str,
        partner: &str,
        check_after: impl Fn(u32) -> std::time::Duration,
        now: OffsetDateTime,
    ) -> Result<Option<(String, u32)>, StoreError> {
        let mut tx = self.begin_write().await?;
        let at = timestamp(now);
        let taken: Option<(String, i64)> = sqlx::query_as(
            "UPDATE sends SET attempts = attempts + 1, updated_at = ?1
             WHERE message_id = (
                 SELECT m.message_id FROM messages m JOIN sends s ON s.message_id = m.message_id
                 WHERE m.state = ?2 AND m.mpc = ?3 AND s.partner = ?4 AND m.direction = 'outbound'
                 ORDER BY m.received_at, m.message_id LIMIT 1)
             RETURNING message_id, attempts",
        )
        .bind(&at)
        .bind(READY_TO_PULL)
        .bind(mpc)
        .bind(partner)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((message_id, attempt)) = taken else {
            return Ok(None);
        };
        let attempt = u32::try_from(attempt).unwrap_or(u32::MAX);
        set_state(&mut tx, &message_id, WAITING_FOR_RECEIPT).await?;
        let detail = format!("pulled by {partner} (attempt {attempt})");
        history(&mut tx, &message_id, WAITING_FOR_RECEIPT, &at, &detail).await?;
        enqueue(&mut tx, &message_id, now + check_after(attempt)).await?;
        tx.commit().await?;
        Ok(Some((message_id, attempt)))
    }

    /// Keeps the references and envelope of the copy handed out to a puller, to judge its
    /// receipt by.
    pub async fn set_pulled(
        &self,
        message_id: &str,
        references: &[as4gate_ebms::model::NrReference],
        envelope: &[u8],
    ) -> Result<(), StoreError> {
        let refs: Vec<StoredReference> = references
            .iter()
            .map(|r| StoredReference {
                uri: r.uri.clone(),
                digest_method: r.digest_method.clone(),
                digest_value: r.digest_value_b64.clone(),
            })
            .collect();
        sqlx::query("UPDATE sends SET sent_references = ? WHERE message_id = ?")
            .bind(serde_json::to_string(&refs)?)
            .bind(message_id)
            .execute(self.pool())
            .await?;
        sqlx::query(
            "INSERT INTO message_evidence (message_id, envelope, receipt) VALUES (?, ?, X'')
             ON CONFLICT (message_id) DO UPDATE SET envelope = excluded.envelope",
        )
        .bind(message_id)
        .bind(envelope)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The references of the copy last handed out to a puller.
    pub async fn pulled_references(
        &self,
        message_id: &str,
    ) -> Result<Option<Vec<as4gate_ebms::model::NrReference>>, StoreError> {
        let json: Option<Option<String>> =
            sqlx::query_scalar("SELECT sent_references FROM sends WHERE message_id = ?")
                .bind(message_id)
                .fetch_optional(self.pool())
                .await?;
        let Some(Some(json)) = json else {
            return Ok(None);
        };
        let refs: Vec<StoredReference> = serde_json::from_str(&json)?;
        Ok(Some(
            refs.into_iter()
                .map(|r| as4gate_ebms::model::NrReference {
                    uri: r.uri,
                    transforms: Vec::new(),
                    digest_method: r.digest_method,
                    digest_value_b64: r.digest_value,
                })
                .collect(),
        ))
    }

    /// Records the outcome for a pulled message: its receipt (`Acknowledged`), a re-offer
    /// (`Retry`: back to `READY_TO_PULL`) or giving up (`Failed`). Applies only while the
    /// message is pulled or waiting to be pulled; returns whether it did.
    pub async fn finish_pull(
        &self,
        message_id: &str,
        outcome: &SendOutcome,
        now: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let at = timestamp(now);
        let (state, detail, from): (&str, String, &[&str]) = match outcome {
            SendOutcome::Acknowledged { receipt, .. } => {
                sqlx::query(
                    "INSERT INTO message_evidence (message_id, envelope, receipt)
                     VALUES (?, X'', ?)
                     ON CONFLICT (message_id) DO UPDATE SET receipt = excluded.receipt",
                )
                .bind(message_id)
                .bind(receipt)
                .execute(&mut *tx)
                .await?;
                (
                    ACKNOWLEDGED,
                    "valid receipt".to_owned(),
                    &[WAITING_FOR_RECEIPT, READY_TO_PULL],
                )
            }
            SendOutcome::Retry { error, .. } => (
                READY_TO_PULL,
                format!("{error}; offered again"),
                &[WAITING_FOR_RECEIPT],
            ),
            SendOutcome::Failed { code, error } => {
                record_failure(&mut tx, message_id, code, error, &at).await?;
                (
                    SEND_FAILURE,
                    format!("{code}: {error}"),
                    &[WAITING_FOR_RECEIPT],
                )
            }
        };
        let changed =
            sqlx::query("UPDATE messages SET state = ? WHERE message_id = ? AND state IN (?, ?)")
                .bind(state)
                .bind(message_id)
                .bind(from[0])
                .bind(from.get(1).copied().unwrap_or(from[0]))
                .execute(&mut *tx)
                .await?
                .rows_affected();
        if changed == 0 {
            return Ok(false);
        }
        history(&mut tx, message_id, state, &at, &detail).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Outbound messages in `SEND_FAILURE`, newest first.
    pub async fn failed_sends(&self, limit: u32) -> Result<Vec<SendRow>, StoreError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "{SEND_ROWS} WHERE m.state = ? ORDER BY s.updated_at DESC LIMIT ?"
        )))
        .bind(SEND_FAILURE)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await?;
        rows.iter().map(send_row).collect()
    }
}

/// Adds the send work item of `message_id`, due at `due`.
/// [`Store::start_send`] inside the writer's transaction.
pub(super) async fn start_send_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    at: &str,
) -> Result<Option<u32>, StoreError> {
    let mut script = Script::new();
    let message = script.arg(message_id)?;
    let at = script.arg(at)?;
    let enqueued = script.arg(SEND_ENQUEUED)?;
    let waiting = script.arg(WAITING_FOR_RETRY)?;
    let in_progress = script.arg(SEND_IN_PROGRESS)?;
    script.push(&format!(
        "UPDATE sends SET attempts = attempts + 1, updated_at = {at}
         WHERE message_id = {message}
           AND (SELECT state FROM messages WHERE message_id = {message})
               IN ({enqueued}, {waiting}, {in_progress})
         RETURNING attempts"
    ));
    script.push(&format!(
        "UPDATE messages SET state = {in_progress}
         WHERE message_id = {message} AND {AFTER_ONE_ROW}"
    ));
    push_history(
        &mut script,
        message,
        in_progress,
        at,
        format!("'attempt ' || (SELECT attempts FROM sends WHERE message_id = {message})"),
        AFTER_ONE_ROW,
    );
    let attempt: Option<i64> = script.fetch_all(tx).await?.first().map(|row| row.get(0));
    Ok(attempt.and_then(|a| u32::try_from(a).ok()))
}

/// [`Store::finish_send`] inside the writer's transaction: the state moves first, and the
/// rest is recorded only when the message was `SEND_IN_PROGRESS`.
pub(super) async fn finish_send_in(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    outcome: &SendOutcome,
    at: &str,
) -> Result<(), StoreError> {
    let state = match outcome {
        SendOutcome::Acknowledged { .. } => ACKNOWLEDGED,
        SendOutcome::Retry { .. } => WAITING_FOR_RETRY,
        SendOutcome::Failed { .. } => SEND_FAILURE,
    };
    let (code, last_error, detail) = match outcome {
        SendOutcome::Acknowledged { .. } => (None, None, "valid receipt".to_owned()),
        SendOutcome::Retry { error, retry_in } => (
            None,
            Some(error.as_str()),
            format!("{error}; next attempt in {retry_in:?}"),
        ),
        SendOutcome::Failed { code, error } => (
            Some(code.as_str()),
            Some(error.as_str()),
            format!("{code}: {error}"),
        ),
    };
    let mut script = Script::new();
    let message = script.arg(message_id)?;
    let at = script.arg(at)?;
    let state = script.arg(state)?;
    let in_progress = script.arg(SEND_IN_PROGRESS)?;
    let code = script.arg(code)?;
    let last_error = script.arg(last_error)?;
    let detail = script.arg(detail)?;
    script.push(&format!(
        "UPDATE messages SET state = {state}
         WHERE message_id = {message} AND state = {in_progress}"
    ));
    // The evidence of an acknowledged attempt (the envelope sent, the receipt) moves in with
    // the state.
    if let SendOutcome::Acknowledged { envelope, receipt } = outcome {
        let envelope = script.arg(envelope.as_slice())?;
        let receipt = script.arg(receipt.as_slice())?;
        script.push(&format!(
            "INSERT INTO message_evidence (message_id, envelope, receipt)
             SELECT {message}, {envelope}, {receipt} WHERE {AFTER_ONE_ROW}
             ON CONFLICT (message_id) DO UPDATE SET envelope = excluded.envelope,
                 receipt = excluded.receipt"
        ));
    }
    script.push(&format!(
        "UPDATE sends SET error_code = COALESCE({code}, error_code), last_error = {last_error},
             updated_at = {at}
         WHERE message_id = {message} AND {AFTER_ONE_ROW}"
    ));
    push_history(&mut script, message, state, at, detail, AFTER_ONE_ROW);
    script.fetch_all(tx).await?;
    Ok(())
}

async fn enqueue(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    due: OffsetDateTime,
) -> Result<(), StoreError> {
    outbox::requeue_in(tx, &WorkItem::new(message_id, SEND_SUBSCRIBER, due))
        .await
        .map_err(|e| StoreError::Database(sqlx::Error::Protocol(e.to_string())))
}

/// The columns [`send_row`] reads, joined with the message state.
const SEND_ROWS: &str = "SELECT s.message_id, s.partner, m.state, s.attempts, s.error_code, \
                         s.last_error FROM sends s JOIN messages m ON m.message_id = s.message_id";

fn send_row(r: &impl Columns) -> Result<SendRow, StoreError> {
    Ok(SendRow {
        message_id: r.column(0)?,
        partner: r.column(1)?,
        state: r.column(2)?,
        attempts: r.count(3)?,
        error_code: r.column(4)?,
        last_error: r.column(5)?,
    })
}

/// Records the ebMS code and error a send ended with.
async fn record_failure(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    code: &str,
    error: &str,
    at: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE sends SET error_code = ?, last_error = ?, updated_at = ? WHERE message_id = ?",
    )
    .bind(code)
    .bind(error)
    .bind(at)
    .bind(message_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

async fn set_state(
    tx: &mut sqlx::Transaction<'_, sqlx::Sqlite>,
    message_id: &str,
    state: &str,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE messages SET state = ? WHERE message_id = ?")
        .bind(state)
        .bind(message_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
