//! Fault: the RabbitMQ broker is restarted (`rabbitmqctl stop_app` / `start_app`) in the
//! middle of a 10,000-message run. Every message is receipted (intake never waits for the
//! broker: work items wait in the SQLite outbox), every one reaches the back-end, and none
//! twice (the back-end counts by MessageId).
//!
//! Needs RabbitMQ on 127.0.0.1:5672 and `rabbitmqctl`; skipped with a printed reason without
//! them, failed when `CI=true`. `AS4GATE_FAULT_MESSAGES` overrides the message count.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use as4gate::queue::Queue;
use common::backend::{Backend, Mode};
use common::{BROKER_URL, TestGateway, broker_reachable, send_all};

fn rabbitmqctl(args: &[&str]) {
    let out = Command::new("rabbitmqctl")
        .args(args)
        .output()
        .expect("rabbitmqctl runs");
    assert!(
        out.status.success(),
        "rabbitmqctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restart_mid_run_loses_and_duplicates_nothing() {
    if !broker_reachable() {
        return;
    }
    let total: usize = std::env::var("AS4GATE_FAULT_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let backend = Backend::start(Mode::Accept).await;
    let prefix = format!("as4gate-test-{}", uuid::Uuid::now_v7());
    let extra = format!(
        r#"
[queue]
backend = "rabbitmq"
url = "{BROKER_URL}"
prefix = "{prefix}"
prefetch = 64
retry_delays = ["200ms", "1s"]
reconnect_min = "100ms"
reconnect_max = "1s"
publish_timeout = "60s"

{deliveries}"#,
        deliveries = common::one_subscription(&backend.url())
    );
    let gw = TestGateway::start(&extra).await;
    let ids: Vec<String> = (0..total)
        .map(|i| format!("restart-{i}@blue.test"))
        .collect();
    let sending = tokio::spawn({
        let (url, ids) = (gw.url(), ids.clone());
        async move { send_all(&url, &ids, 8).await }
    });

    // Mid-run: restart the broker once a quarter has been delivered.
    let start = Instant::now();
    while backend.distinct() < total / 4 {
        assert!(start.elapsed() < Duration::from_secs(600), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let at_restart = backend.distinct();
    tokio::task::spawn_blocking(|| {
        rabbitmqctl(&["stop_app"]);
        rabbitmqctl(&["start_app"]);
        rabbitmqctl(&["await_startup"]);
    })
    .await
    .unwrap();
    eprintln!("broker restarted after {at_restart} deliveries");

    let receipted = sending.await.unwrap();
    assert_eq!(receipted.len(), total, "every message is receipted");
    assert!(
        backend.wait_for(total, Duration::from_secs(600)).await,
        "delivered {} of {total}",
        backend.distinct()
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(backend.distinct(), total);
    assert!(
        backend.repeats().is_empty(),
        "delivered twice: {:?}",
        &backend.repeats()[..backend.repeats().len().min(10)]
    );
    let delivered: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM deliveries WHERE state = 'delivered'")
            .fetch_one(gw.running.shared.store.pool())
            .await
            .unwrap();
    assert_eq!(delivered as usize, total);
    if let Queue::Rabbit(q) = &gw.running.shared.queue {
        q.delete_topology().await.unwrap();
    }
}
