//! The broker topology, declared by the gateway on every (re)connect. Declarations are
//! idempotent; arguments are part of a queue's identity, so a changed retry delay makes a
//! new tier queue rather than a conflicting redeclaration.
//!
//! For prefix `P` and retry delays `d1 < d2 < …` (in milliseconds):
//!
//! | name | kind | arguments | bound with key |
//! |---|---|---|---|
//! | `P` | direct exchange, durable | | |
//! | `P.work` | quorum queue, durable | | `P.work` |
//! | `P.retry.<d>ms` | quorum queue, durable | `x-message-ttl = d`, `x-dead-letter-exchange = P`, `x-dead-letter-routing-key = P.work`, `x-dead-letter-strategy = at-least-once`, `x-overflow = reject-publish` | `P.retry.<d>ms` |
//! | `P.dead` | quorum queue, durable | `x-max-length = 100000`, `x-overflow = drop-head` | `P.dead` |
//!
//! A retried item is published to the tier queue whose TTL is the delay; when it expires
//! the broker dead-letters it back to `P.work` (at-least-once dead-lettering, so an expiry
//! during a leader change is not lost). All messages in one tier share the TTL, so they
//! expire in order. `P.dead` mirrors given-up items for broker-side monitoring; the store's
//! delivery rows are the authoritative dead-letter list (`as4gate dlq`), so `P.dead` keeps
//! only the newest [`DEAD_MAX_LENGTH`] and never grows without bound. No broker plugin needed.

use std::time::Duration;

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, LongString};
use lapin::{Channel, ExchangeKind};

use crate::queue::QueueError;

/// Most items kept in the broker's dead-letter queue (the oldest are dropped first).
pub const DEAD_MAX_LENGTH: i64 = 100_000;

/// Names of the exchange and queues for one prefix.
#[derive(Debug, Clone)]
pub(super) struct Topology {
    /// The direct exchange every publish goes through.
    pub(super) exchange: String,
    /// The work queue consumers read.
    pub(super) work: String,
    /// The dead-letter queue.
    pub(super) dead: String,
    /// Retry tiers, shortest delay first: (TTL, queue name).
    tiers: Vec<(Duration, String)>,
}

impl Topology {
    /// The topology for `prefix` with one tier per distinct delay.
    pub(super) fn new(prefix: &str, delays: &[Duration]) -> Self {
        let mut delays = delays.to_vec();
        delays.sort();
        delays.dedup_by_key(|d| d.as_millis());
        Self {
            exchange: prefix.to_owned(),
            work: format!("{prefix}.work"),
            dead: format!("{prefix}.dead"),
            tiers: delays
                .into_iter()
                .map(|d| (d, format!("{prefix}.retry.{}ms", d.as_millis())))
                .collect(),
        }
    }

    /// The tier queue for `delay`: the shortest tier at least that long, else the longest;
    /// `None` without tiers.
    pub(super) fn tier_for(&self, delay: Duration) -> Option<&str> {
        self.tiers
            .iter()
            .find(|(ttl, _)| *ttl >= delay)
            .or_else(|| self.tiers.last())
            .map(|(_, name)| name.as_str())
    }

    /// Declares the exchange, the queues and their bindings.
    pub(super) async fn declare(&self, channel: &Channel) -> Result<(), QueueError> {
        channel
            .exchange_declare(
                self.exchange.as_str().into(),
                ExchangeKind::Direct,
                ExchangeDeclareOptions {
                    durable: true,
                    ..ExchangeDeclareOptions::default()
                },
                FieldTable::default(),
            )
            .await?;
        self.declare_queue(channel, &self.work, quorum()).await?;
        let mut dead = quorum();
        dead.insert(
            "x-max-length".into(),
            AMQPValue::LongLongInt(DEAD_MAX_LENGTH),
        );
        dead.insert("x-overflow".into(), text("drop-head"));
        self.declare_queue(channel, &self.dead, dead).await?;
        for (ttl, name) in &self.tiers {
            let mut arguments = quorum();
            let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
            arguments.insert("x-message-ttl".into(), AMQPValue::LongLongInt(ttl_ms));
            arguments.insert("x-dead-letter-exchange".into(), text(&self.exchange));
            arguments.insert("x-dead-letter-routing-key".into(), text(&self.work));
            arguments.insert("x-dead-letter-strategy".into(), text("at-least-once"));
            arguments.insert("x-overflow".into(), text("reject-publish"));
            self.declare_queue(channel, name, arguments).await?;
        }
        Ok(())
    }

    /// Deletes the queues and the exchange (tests, decommissioning). Messages in them are
    /// lost.
    pub(super) async fn delete(&self, channel: &Channel) -> Result<(), QueueError> {
        let names = [&self.work, &self.dead]
            .into_iter()
            .chain(self.tiers.iter().map(|(_, name)| name));
        for name in names {
            channel
                .queue_delete(name.as_str().into(), QueueDeleteOptions::default())
                .await?;
        }
        channel
            .exchange_delete(
                self.exchange.as_str().into(),
                ExchangeDeleteOptions::default(),
            )
            .await?;
        Ok(())
    }

    async fn declare_queue(
        &self,
        channel: &Channel,
        name: &str,
        arguments: FieldTable,
    ) -> Result<(), QueueError> {
        channel
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    durable: true,
                    ..QueueDeclareOptions::default()
                },
                arguments,
            )
            .await?;
        channel
            .queue_bind(
                name.into(),
                self.exchange.as_str().into(),
                name.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await?;
        Ok(())
    }
}

fn quorum() -> FieldTable {
    let mut arguments = FieldTable::default();
    arguments.insert("x-queue-type".into(), text("quorum"));
    arguments
}

fn text(value: &str) -> AMQPValue {
    AMQPValue::LongString(LongString::from(value.as_bytes().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_tier_choice() {
        let t = Topology::new(
            "gw",
            &[30_000, 1_000, 30_000, 600_000].map(Duration::from_millis),
        );
        assert_eq!(t.work, "gw.work");
        assert_eq!(t.dead, "gw.dead");
        assert_eq!(t.tier_for(Duration::ZERO), Some("gw.retry.1000ms"));
        assert_eq!(t.tier_for(Duration::from_secs(2)), Some("gw.retry.30000ms"));
        assert_eq!(
            t.tier_for(Duration::from_secs(30)),
            Some("gw.retry.30000ms")
        );
        assert_eq!(
            t.tier_for(Duration::from_secs(86_400)),
            Some("gw.retry.600000ms")
        );
        assert_eq!(Topology::new("gw", &[]).tier_for(Duration::ZERO), None);
    }
}
