//! Operator actions on delivery: dead letters (list, show, replay, discard), suspending and
//! resuming delivery queues, disabling and enabling subscriptions. The CLI (`as4gate dlq`,
//! `as4gate queue`, `as4gate subscription`) calls these now; the console will call the same.
//!
//! Every action names its actor and is written to the audit log in the transaction that
//! performs it. Names are checked against the configuration first, so a typo is refused
//! instead of pausing something that does not exist. A running gateway picks changes up on
//! its own: pauses within [`crate::delivery::worker::REFRESH`], re-enqueued work within the
//! queue's `poll_interval`.

use time::OffsetDateTime;

use crate::config::Config;
use crate::delivery::routing::{NO_ROUTE, Router};
use crate::store::deliveries::{ActionError, DeadLetterFilter, PauseKind};
use crate::store::{DeliveryRow, Store};

/// Operator actions over one store and routing table.
pub struct Operator {
    store: Store,
    router: Router,
    actor: String,
}

impl Operator {
    /// Opens the store of `config` for actions by `actor`.
    pub async fn open(config: &Config, actor: String) -> anyhow::Result<Operator> {
        let router = config
            .router()
            .map_err(|p| anyhow::anyhow!("routing: {}", p.join("; ")))?;
        let store = Store::open(&config.database_path(), config.store.sqlite_synchronous).await?;
        Ok(Operator {
            store,
            router,
            actor,
        })
    }

    /// The store (for read-only views).
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Dead letters matching `filter`, oldest first.
    pub async fn dead_letters(
        &self,
        filter: &DeadLetterFilter,
    ) -> anyhow::Result<Vec<DeliveryRow>> {
        Ok(self.store.dead_letters(filter).await?)
    }

    /// Replays the dead letter of `message_id` for `subscription` once: with a fresh TTL
    /// window of its queue; a `no_route` one is routed again with the current configuration.
    /// Returns the subscriptions it was enqueued for.
    pub async fn replay(
        &self,
        message_id: &str,
        subscription: &str,
    ) -> anyhow::Result<Vec<String>> {
        let now = OffsetDateTime::now_utc();
        let (routes, expires_at) = if subscription == NO_ROUTE {
            let Some(message) = self.store.message(message_id).await? else {
                anyhow::bail!("no message with id {message_id:?}");
            };
            (self.router.route(&message.record, now), None)
        } else {
            let row = self.store.delivery(message_id, subscription).await?;
            let ttl = row
                .as_ref()
                .and_then(|r| self.router.queue(&r.queue))
                .map(|q| now + q.ttl);
            if row.is_some() && ttl.is_none() {
                anyhow::bail!(
                    "the queue of this delivery is no longer configured; replaying it would \
                     dead-letter it again"
                );
            }
            (Vec::new(), ttl)
        };
        let replayed = self
            .store
            .replay(
                message_id,
                subscription,
                &routes,
                expires_at,
                &self.actor,
                now,
            )
            .await
            .map_err(action)?;
        Ok(replayed)
    }

    /// Discards the dead letter of `message_id` for `subscription` (kept as `discarded`).
    pub async fn discard(&self, message_id: &str, subscription: &str) -> anyhow::Result<()> {
        self.store
            .discard(
                message_id,
                subscription,
                &self.actor,
                OffsetDateTime::now_utc(),
            )
            .await
            .map_err(action)
    }

    /// Suspends (`pause = true`) or resumes a delivery queue. Returns the held deliveries
    /// released by a resume.
    pub async fn set_queue_suspended(&self, name: &str, suspended: bool) -> anyhow::Result<u64> {
        if self.router.queue(name).is_none() {
            anyhow::bail!("no [[delivery_queue]] named {name:?} in the configuration");
        }
        self.set_paused(PauseKind::Queue, name, suspended).await
    }

    /// Disables (`disabled = true`) or enables a subscription. Returns the held deliveries
    /// released by an enable.
    pub async fn set_subscription_disabled(&self, id: &str, disabled: bool) -> anyhow::Result<u64> {
        if self.router.subscription(id).is_none() {
            anyhow::bail!("no [[subscription]] with id {id:?} in the configuration");
        }
        self.set_paused(PauseKind::Subscription, id, disabled).await
    }

    async fn set_paused(&self, kind: PauseKind, name: &str, paused: bool) -> anyhow::Result<u64> {
        let now = OffsetDateTime::now_utc();
        Ok(if paused {
            self.store.pause(kind, name, &self.actor, now).await?;
            0
        } else {
            self.store.unpause(kind, name, &self.actor, now).await?
        })
    }

    /// The delivery queues and subscriptions with their pause state.
    pub async fn overview(&self) -> anyhow::Result<Vec<(PauseKind, String, bool)>> {
        let pauses = self.store.pauses().await?;
        let queues = self
            .router
            .queues()
            .iter()
            .map(|q| (PauseKind::Queue, &q.name));
        let subs = self
            .router
            .subscriptions()
            .iter()
            .map(|s| (PauseKind::Subscription, &s.id));
        Ok(queues
            .chain(subs)
            .map(|(kind, name)| (kind, name.clone(), pauses.contains(&(kind, name.clone()))))
            .collect())
    }
}

fn action(e: ActionError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}
