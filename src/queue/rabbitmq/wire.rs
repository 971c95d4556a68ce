//! Work items on the wire: a small JSON body, persistent delivery mode, and for dead letters
//! two headers with the reason and the time.
//!
//! Body: `{"message_id": …, "subscriber": …, "attempt": n, "enqueued_at": "<RFC 3339>"}`.
//! Bodies from the broker are untrusted input: larger than [`MAX_ITEM_BYTES`] or not this
//! shape is a [`QueueError::MalformedItem`], never a panic.

use lapin::BasicProperties;
use lapin::types::{AMQPValue, FieldTable, LongString};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::queue::{DeadLetter, QueueError, WorkItem, parse_rfc3339, rfc3339};

/// Largest work-item body accepted from the broker: items carry ids only.
pub const MAX_ITEM_BYTES: usize = 64 * 1024;

/// Header of a dead letter: why it was given up.
const REASON_HEADER: &str = "x-as4gate-reason";

/// Header of a dead letter: when it was given up (RFC 3339).
const DEAD_AT_HEADER: &str = "x-as4gate-dead-lettered-at";

/// AMQP delivery mode 2: the broker writes the message to disk.
const PERSISTENT: u8 = 2;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct WireItem {
    message_id: String,
    subscriber: String,
    attempt: u32,
    enqueued_at: String,
}

/// The body carrying `item`.
pub(super) fn encode(item: &WorkItem) -> Result<Vec<u8>, QueueError> {
    serde_json::to_vec(&WireItem {
        message_id: item.message_id.clone(),
        subscriber: item.subscriber.clone(),
        attempt: item.attempt,
        enqueued_at: rfc3339(item.enqueued_at)?,
    })
    .map_err(|e| QueueError::MalformedItem(e.to_string()))
}

/// The item in a body received from the broker.
pub(super) fn decode(body: &[u8]) -> Result<WorkItem, QueueError> {
    if body.len() > MAX_ITEM_BYTES {
        return Err(QueueError::MalformedItem(format!(
            "{} bytes, at most {MAX_ITEM_BYTES}",
            body.len()
        )));
    }
    let wire: WireItem =
        serde_json::from_slice(body).map_err(|e| QueueError::MalformedItem(e.to_string()))?;
    Ok(WorkItem {
        message_id: wire.message_id,
        subscriber: wire.subscriber,
        attempt: wire.attempt,
        enqueued_at: parse_rfc3339(&wire.enqueued_at)?,
    })
}

/// Header on a publish that may repeat an earlier one (see [`super::relay`]).
const POSSIBLE_DUPLICATE_HEADER: &str = "x-as4gate-possible-duplicate";

/// The headers of a publish that may repeat an earlier one.
pub(super) fn possible_duplicate_headers() -> FieldTable {
    let mut headers = FieldTable::default();
    headers.insert(POSSIBLE_DUPLICATE_HEADER.into(), AMQPValue::Boolean(true));
    headers
}

/// Whether a delivery's properties mark it as a possible repeat.
pub(super) fn is_possible_duplicate(properties: &BasicProperties) -> bool {
    properties.headers().as_ref().is_some_and(|h| {
        h.inner()
            .get(POSSIBLE_DUPLICATE_HEADER)
            .is_some_and(|v| matches!(v, AMQPValue::Boolean(true)))
    })
}

/// Properties of every publish: persistent JSON, with `headers` when given.
pub(super) fn properties(headers: Option<FieldTable>) -> BasicProperties {
    let properties = BasicProperties::default()
        .with_delivery_mode(PERSISTENT)
        .with_content_type("application/json".into());
    match headers {
        Some(headers) => properties.with_headers(headers),
        None => properties,
    }
}

/// The headers of a dead letter.
pub(super) fn dead_letter_headers(
    reason: &str,
    at: OffsetDateTime,
) -> Result<FieldTable, QueueError> {
    let mut headers = FieldTable::default();
    headers.insert(
        REASON_HEADER.into(),
        AMQPValue::LongString(LongString::from(reason.as_bytes().to_vec())),
    );
    headers.insert(
        DEAD_AT_HEADER.into(),
        AMQPValue::LongString(LongString::from(rfc3339(at)?.into_bytes())),
    );
    Ok(headers)
}

/// A dead letter read back from the dead-letter queue.
pub(super) fn dead_letter(
    body: &[u8],
    properties: &BasicProperties,
) -> Result<DeadLetter, QueueError> {
    let header = |name: &str| -> Result<String, QueueError> {
        match properties
            .headers()
            .as_ref()
            .and_then(|h| h.inner().get(name))
        {
            Some(AMQPValue::LongString(value)) => {
                Ok(String::from_utf8_lossy(value.as_bytes()).into_owned())
            }
            _ => Err(QueueError::MalformedItem(format!(
                "dead letter without `{name}`"
            ))),
        }
    };
    Ok(DeadLetter {
        item: decode(body)?,
        reason: header(REASON_HEADER)?,
        dead_lettered_at: parse_rfc3339(&header(DEAD_AT_HEADER)?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_items_and_dead_letters() {
        let at = time::macros::datetime!(2026-11-23 10:00:00.123456789 UTC);
        let item = WorkItem {
            message_id: "m-1@as4gate".into(),
            subscriber: "backend-a".into(),
            attempt: 3,
            enqueued_at: at,
        };
        let body = encode(&item).unwrap();
        assert_eq!(decode(&body).unwrap(), item);
        let properties = properties(Some(dead_letter_headers("HTTP 500", at).unwrap()));
        assert_eq!(properties.delivery_mode(), &Some(PERSISTENT));
        let dead = dead_letter(&body, &properties).unwrap();
        assert_eq!(dead.item, item);
        assert_eq!(dead.reason, "HTTP 500");
        assert_eq!(dead.dead_lettered_at, at);
    }

    #[test]
    fn rejects_hostile_bodies() {
        assert!(matches!(
            decode(&vec![b' '; MAX_ITEM_BYTES + 1]),
            Err(QueueError::MalformedItem(m)) if m.contains("at most")
        ));
        assert!(matches!(decode(b"{}"), Err(QueueError::MalformedItem(_))));
        assert!(matches!(
            decode(br#"{"message_id":"m","subscriber":"s","attempt":1,"enqueued_at":"soon"}"#),
            Err(QueueError::MalformedItem(m)) if m.contains("soon")
        ));
        assert!(matches!(
            dead_letter(&encode(&WorkItem::new("m", "s", OffsetDateTime::UNIX_EPOCH)).unwrap(),
                &properties(None)),
            Err(QueueError::MalformedItem(m)) if m.contains(REASON_HEADER)
        ));
    }
}
