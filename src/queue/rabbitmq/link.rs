//! The broker connection and its supervisor.
//!
//! A [`Link`] is one AMQP connection with the topology declared and a publisher channel in
//! confirm mode. The supervisor task publishes the current link on a watch channel (`None`
//! while disconnected), watches it for errors (connection events, plus a status check every
//! [`LINK_CHECK_INTERVAL`]) and on loss reconnects with exponential backoff
//! (`reconnect_min` doubling to `reconnect_max`), redeclaring the topology and rebuilding
//! the publisher channel. Consumers notice the loss on their own channels and subscribe again
//! on the next link; the broker requeues what they had not acked, and the outbox relay
//! republishes what was not confirmed. The supervisor stops when the queue is dropped.

use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use lapin::options::ConfirmSelectOptions;
use lapin::{Channel, Connection, ConnectionProperties, Event};
use tokio::sync::watch;

use super::topology::Topology;
use crate::queue::QueueError;

/// How often a live link's status is checked besides listening for its error events.
pub const LINK_CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// One live connection: topology declared, publisher channel in confirm mode.
#[derive(Debug)]
pub(super) struct Link {
    pub(super) connection: Connection,
    pub(super) publisher: Channel,
}

/// Where to connect and what to declare.
#[derive(Debug, Clone)]
pub(super) struct Target {
    pub(super) url: String,
    pub(super) connection_name: String,
    pub(super) topology: Topology,
    pub(super) reconnect_min: Duration,
    pub(super) reconnect_max: Duration,
}

impl Link {
    /// Connects, declares the topology and opens the publisher channel.
    pub(super) async fn open(target: &Target) -> Result<Link, QueueError> {
        let properties = ConnectionProperties::default()
            .with_connection_name(target.connection_name.as_bytes().to_vec().into());
        let connection = Connection::connect(&target.url, properties).await?;
        let publisher = connection.create_channel().await?;
        target.topology.declare(&publisher).await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        Ok(Link {
            connection,
            publisher,
        })
    }

    /// Whether the connection and the publisher channel are still up.
    pub(super) fn is_up(&self) -> bool {
        self.connection.status().connected() && self.publisher.status().connected()
    }
}

/// Keeps a link up until `stop` is dropped, starting from `first`.
pub(super) async fn supervise(
    target: Target,
    first: Link,
    links: watch::Sender<Option<Arc<Link>>>,
    mut stop: watch::Receiver<()>,
) {
    let mut next = Some(first);
    let mut pause = target.reconnect_min;
    loop {
        if let Some(link) = next.take() {
            let link = Arc::new(link);
            links.send_replace(Some(link.clone()));
            tokio::select! {
                _ = stop.changed() => return,
                () = lost(&link) => {}
            }
            links.send_replace(None);
            tracing::warn!(connection = %target.connection_name, "broker connection lost; reconnecting");
            pause = target.reconnect_min;
        }
        tokio::select! {
            _ = stop.changed() => return,
            () = tokio::time::sleep(pause) => {}
        }
        match Link::open(&target).await {
            Ok(link) => {
                tracing::info!(connection = %target.connection_name, "broker connection restored");
                next = Some(link);
            }
            Err(error) => {
                tracing::warn!(%error, retry_in = ?pause, "broker reconnection failed");
                pause = (pause * 2).min(target.reconnect_max);
            }
        }
    }
}

/// Returns when `link` has failed.
async fn lost(link: &Link) {
    let mut events = pin!(link.connection.events_listener());
    let mut check = tokio::time::interval(LINK_CHECK_INTERVAL);
    while link.is_up() {
        tokio::select! {
            event = events.next() => match event {
                Some(Event::Error(error)) => {
                    tracing::warn!(%error, "broker connection error");
                    return;
                }
                None => return,
                Some(_) => {}
            },
            _ = check.tick() => {}
        }
    }
}
