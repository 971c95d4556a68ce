//! The queue contract: one suite every backend must pass, run here against the embedded
//! (SQLite) backend and against RabbitMQ on `127.0.0.1:5672` (guest/guest).
//!
//! Each case gets a fresh database and, with RabbitMQ, a unique queue-name prefix whose
//! queues are deleted afterwards (also when the case fails). An unreachable broker skips the
//! RabbitMQ runs with a printed reason, unless `CI=true`: then it fails them.
//!
//! Plus one RabbitMQ-only test: the gateway's broker connection is closed by the broker in
//! the middle of 2,000 items; nothing may be lost (duplicates are allowed and reported).

use std::collections::HashMap;
use std::future::Future;
use std::time::{Duration, Instant};

use as4gate::config::SqliteSynchronous;
use as4gate::queue::outbox::enqueue_in;
use as4gate::queue::{
    Consumer, Delivery, Queue, QueueBackend, QueueBackendKind, QueueConfig, QueueError, WorkItem,
};
use as4gate::store::Store;
use sqlx::SqlitePool;
use time::OffsetDateTime;

const BROKER_URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

/// Longest wait for an item that should arrive.
const ARRIVAL: Duration = Duration::from_secs(10);

/// How long "nothing arrives" is watched.
const QUIET: Duration = Duration::from_millis(600);

/// A backend under test, with the database it shares with "the store".
struct Harness {
    queue: Queue,
    pool: SqlitePool,
}

fn contract_config(backend: QueueBackendKind) -> QueueConfig {
    QueueConfig {
        backend,
        url: BROKER_URL.into(),
        prefix: format!("as4gate-test-{}", uuid::Uuid::new_v4()),
        prefetch: 4.try_into().unwrap(),
        retry_delays: vec![Duration::from_secs(1), Duration::from_secs(3)],
        lease: Duration::from_secs(1),
        poll_interval: Duration::from_millis(50),
        ..QueueConfig::default()
    }
}

async fn store_in(dir: &tempfile::TempDir) -> Store {
    Store::open(&dir.path().join("as4gate.db"), SqliteSynchronous::Normal)
        .await
        .unwrap()
}

/// Opens a harness for `config` in `dir`; `None` (after printing why) when the broker is
/// unreachable outside CI.
async fn open(config: QueueConfig, dir: &tempfile::TempDir) -> Option<Harness> {
    let store = store_in(dir).await;
    match Queue::open(&config, &store).await {
        Ok(queue) => Some(Harness {
            queue,
            pool: store.pool().clone(),
        }),
        Err(error @ (QueueError::Broker(_) | QueueError::BrokerUnavailable(_))) => {
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("CI=true and RabbitMQ at {BROKER_URL} is unreachable: {error}");
            }
            eprintln!("SKIPPED: RabbitMQ at {BROKER_URL} is unreachable ({error})");
            None
        }
        Err(error) => panic!("opening the queue: {error}"),
    }
}

/// Runs `case` on a fresh harness of `backend`, then removes its broker topology even if
/// the case panicked.
async fn run_case<F, Fut>(backend: QueueBackendKind, case: F)
where
    F: FnOnce(Harness) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let dir = tempfile::tempdir().unwrap();
    let Some(harness) = open(contract_config(backend), &dir).await else {
        return;
    };
    let queue = harness.queue.clone();
    let outcome = tokio::spawn(case(harness)).await;
    if let Queue::Rabbit(rabbit) = &queue {
        rabbit.delete_topology().await.unwrap();
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

/// The whole contract for one backend.
async fn contract_suite(backend: QueueBackendKind) {
    run_case(backend, |h| publish_consume_ack(h.queue)).await;
    run_case(backend, |h| retry_after_delays_and_counts(h.queue)).await;
    run_case(backend, |h| dead_letter_keeps_reason(h.queue)).await;
    run_case(backend, |h| unsettled_is_redelivered(h.queue)).await;
    run_case(backend, |h| prefetch_bounds_unsettled(h.queue)).await;
    run_case(backend, thousand_items_none_lost).await;
}

fn item(n: usize) -> WorkItem {
    WorkItem::new(
        format!("msg-{n}@as4gate.test"),
        "backend-a",
        OffsetDateTime::now_utc(),
    )
}

async fn next_within<C: Consumer>(consumer: &mut C, limit: Duration) -> Option<Delivery> {
    match tokio::time::timeout(limit, consumer.next()).await {
        Ok(delivery) => Some(delivery.unwrap()),
        Err(_) => None,
    }
}

async fn publish_consume_ack<Q: QueueBackend>(queue: Q) {
    let sent = item(1);
    queue.publish(&sent).await.unwrap();
    let mut consumer = queue.consumer().await.unwrap();
    let delivery = next_within(&mut consumer, ARRIVAL)
        .await
        .expect("item delivered");
    assert_eq!(delivery.item(), &sent);
    assert!(!delivery.redelivered());
    delivery.ack().await.unwrap();
    assert!(
        next_within(&mut consumer, QUIET).await.is_none(),
        "an acked item came back"
    );
}

async fn retry_after_delays_and_counts<Q: QueueBackend>(queue: Q) {
    let sent = item(2);
    queue.publish(&sent).await.unwrap();
    let mut consumer = queue.consumer().await.unwrap();
    let first = next_within(&mut consumer, ARRIVAL).await.unwrap();
    assert_eq!(first.item().attempt, 0);
    let retried_at = Instant::now();
    first.retry_after(Duration::from_secs(1)).await.unwrap();
    let second = next_within(&mut consumer, ARRIVAL)
        .await
        .expect("retried item delivered");
    let waited = retried_at.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "came back after {waited:?}"
    );
    assert_eq!(second.item().attempt, 1);
    assert_eq!(second.item().message_id, sent.message_id);
    assert_eq!(second.item().enqueued_at, sent.enqueued_at);
    second.ack().await.unwrap();
    assert!(next_within(&mut consumer, QUIET).await.is_none());
}

async fn dead_letter_keeps_reason<Q: QueueBackend>(queue: Q) {
    let sent = item(3);
    queue.publish(&sent).await.unwrap();
    let mut consumer = queue.consumer().await.unwrap();
    let delivery = next_within(&mut consumer, ARRIVAL).await.unwrap();
    let before = OffsetDateTime::now_utc();
    delivery
        .dead_letter("back-end answered HTTP 422: schema invalid")
        .await
        .unwrap();
    let letters = queue.dead_letters(10).await.unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].item, sent);
    assert_eq!(
        letters[0].reason,
        "back-end answered HTTP 422: schema invalid"
    );
    assert!(letters[0].dead_lettered_at >= before);
    // Reading dead letters leaves them in place, and they are not work any more.
    assert_eq!(queue.dead_letters(10).await.unwrap().len(), 1);
    assert!(next_within(&mut consumer, QUIET).await.is_none());
}

async fn unsettled_is_redelivered<Q: QueueBackend>(queue: Q) {
    let sent = item(4);
    queue.publish(&sent).await.unwrap();
    let mut crashed = queue.consumer().await.unwrap();
    let abandoned = next_within(&mut crashed, ARRIVAL).await.unwrap();
    assert!(!abandoned.redelivered());
    drop(abandoned);
    drop(crashed);
    let mut consumer = queue.consumer().await.unwrap();
    let again = next_within(&mut consumer, ARRIVAL)
        .await
        .expect("abandoned item delivered again");
    assert_eq!(again.item(), &sent);
    assert!(again.redelivered());
    again.ack().await.unwrap();
}

async fn prefetch_bounds_unsettled<Q: QueueBackend>(queue: Q) {
    for n in 0..6 {
        queue.publish(&item(100 + n)).await.unwrap();
    }
    let mut consumer = queue.consumer().await.unwrap();
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(next_within(&mut consumer, ARRIVAL).await.unwrap());
    }
    assert!(
        next_within(&mut consumer, QUIET).await.is_none(),
        "a 5th delivery with prefetch 4 and none settled"
    );
    held.pop().unwrap().ack().await.unwrap();
    held.push(
        next_within(&mut consumer, ARRIVAL)
            .await
            .expect("slot freed by ack"),
    );
    for delivery in held {
        delivery.ack().await.unwrap();
    }
    let last = next_within(&mut consumer, ARRIVAL).await.unwrap();
    last.ack().await.unwrap();
    assert!(next_within(&mut consumer, QUIET).await.is_none());
}

/// Enqueues items `range` through the outbox, `chunk` per store transaction.
async fn enqueue_through_outbox(pool: &SqlitePool, range: std::ops::Range<usize>, chunk: usize) {
    let ids: Vec<usize> = range.collect();
    for part in ids.chunks(chunk) {
        let mut tx = pool.begin().await.unwrap();
        for &n in part {
            enqueue_in(&mut tx, &item(n)).await.unwrap();
        }
        tx.commit().await.unwrap();
    }
}

async fn thousand_items_none_lost(h: Harness) {
    enqueue_through_outbox(&h.pool, 0..1000, 100).await;
    h.queue.wake();
    let mut consumer = h.queue.consumer().await.unwrap();
    let mut seen: HashMap<String, u32> = HashMap::new();
    while seen.len() < 1000 {
        let delivery = next_within(&mut consumer, ARRIVAL)
            .await
            .unwrap_or_else(|| panic!("stalled after {} distinct items", seen.len()));
        *seen.entry(delivery.item().message_id.clone()).or_default() += 1;
        delivery.ack().await.unwrap();
    }
    assert!(next_within(&mut consumer, QUIET).await.is_none());
    let duplicates: u32 = seen.values().map(|n| n - 1).sum();
    assert_eq!(duplicates, 0, "no failure was injected, so no duplicates");
    assert_eq!(outbox_rows(&h.pool).await, 0);
}

async fn outbox_rows(pool: &SqlitePool) -> i64 {
    sqlx::query_scalar("SELECT COUNT(*) FROM queue_items")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_embedded() {
    contract_suite(QueueBackendKind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contract_rabbitmq() {
    contract_suite(QueueBackendKind::Rabbitmq).await;
}

/// Closes the broker connection named `name` from the broker side (`rabbitmqctl`), as a
/// broker failover or a network cut would.
fn close_connection_on_broker(name: &str) -> bool {
    let Ok(listing) = std::process::Command::new("rabbitmqctl")
        .args(["list_connections", "pid", "client_properties", "-q"])
        .output()
    else {
        return false;
    };
    let listing = String::from_utf8_lossy(&listing.stdout);
    let Some(pid) = listing
        .lines()
        .find(|line| line.contains(name))
        .and_then(|line| line.split('\t').next())
    else {
        return false;
    };
    std::process::Command::new("rabbitmqctl")
        .args(["close_connection", pid, "as4gate queue_contract test"])
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_connection_closed_mid_run_loses_nothing() {
    const ITEMS: usize = 2000;
    let config = QueueConfig {
        reconnect_min: Duration::from_millis(100),
        ..contract_config(QueueBackendKind::Rabbitmq)
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(h) = open(config, &dir).await else {
        return;
    };
    let Queue::Rabbit(rabbit) = h.queue.clone() else {
        unreachable!("a RabbitMQ harness");
    };
    let connection_name = rabbit.connection_name().to_owned();
    let outcome = tokio::spawn(async move {
        // The "store" keeps committing work while the connection goes down.
        let pool = h.pool.clone();
        let queue = h.queue.clone();
        let producer = tokio::spawn(async move {
            for start in (0..ITEMS).step_by(100) {
                enqueue_through_outbox(&pool, start..start + 100, 100).await;
                queue.wake();
                tokio::time::sleep(Duration::from_millis(40)).await;
            }
        });
        let mut consumer = h.queue.consumer().await.unwrap();
        let mut seen: HashMap<String, u32> = HashMap::new();
        let mut lost_acks = 0;
        let mut closed = false;
        let started = Instant::now();
        while seen.len() < ITEMS {
            assert!(started.elapsed() < Duration::from_secs(45), "stalled at {}", seen.len());
            let Some(delivery) = next_within(&mut consumer, ARRIVAL).await else {
                panic!("stalled after {} distinct items", seen.len());
            };
            *seen.entry(delivery.item().message_id.clone()).or_default() += 1;
            match delivery.ack().await {
                Ok(()) => {}
                Err(QueueError::DeliveryLost) => lost_acks += 1,
                Err(other) => panic!("ack failed: {other}"),
            }
            if !closed && seen.len() == ITEMS / 4 {
                closed = true;
                let name = connection_name.clone();
                let by_broker =
                    tokio::task::spawn_blocking(move || close_connection_on_broker(&name))
                        .await
                        .unwrap();
                assert!(by_broker, "could not close the connection with rabbitmqctl");
            }
        }
        producer.await.unwrap();
        // Anything still in flight arrives now, as a duplicate.
        while let Some(delivery) = next_within(&mut consumer, Duration::from_secs(2)).await {
            *seen.entry(delivery.item().message_id.clone()).or_default() += 1;
            let _ = delivery.ack().await;
        }
        let duplicates: u32 = seen.values().map(|n| n - 1).sum();
        eprintln!(
            "{ITEMS} items, {} distinct delivered, {duplicates} duplicates, {lost_acks} acks lost to the closed connection",
            seen.len()
        );
        assert_eq!(seen.len(), ITEMS);
        assert!((0..ITEMS).all(|n| seen.contains_key(&item(n).message_id)));
        assert_eq!(outbox_rows(&h.pool).await, 0, "outbox drained");
    })
    .await;
    rabbit.delete_topology().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rabbitmq_outbox_left_by_a_crash_is_published_on_open() {
    // Committed in the store's transaction, then the gateway died before the relay ran.
    let dir = tempfile::tempdir().unwrap();
    let store = store_in(&dir).await;
    enqueue_through_outbox(store.pool(), 0..50, 50).await;
    drop(store);
    let Some(h) = open(contract_config(QueueBackendKind::Rabbitmq), &dir).await else {
        return;
    };
    let Queue::Rabbit(rabbit) = h.queue.clone() else {
        unreachable!("a RabbitMQ harness");
    };
    let outcome = tokio::spawn(async move {
        let mut consumer = h.queue.consumer().await.unwrap();
        let mut seen = std::collections::HashSet::new();
        while seen.len() < 50 {
            let delivery = next_within(&mut consumer, ARRIVAL).await.expect("relayed");
            seen.insert(delivery.item().message_id.clone());
            delivery.ack().await.unwrap();
        }
        assert_eq!(outbox_rows(&h.pool).await, 0);
    })
    .await;
    rabbit.delete_topology().await.unwrap();
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
