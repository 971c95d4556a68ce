//! Delivery end to end, embedded queue: AS4 messages received by a gateway on loopback are
//! routed to back-end subscriptions and pushed to mock REST back-ends that count deliveries
//! by MessageId. Publish/subscribe with a filter and a failing subscriber, 500s then recovery,
//! TTL expiry then replay, suspend/resume, disable/enable, no route.

mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use as4gate::delivery::worker::REFRESH;
use as4gate::operate::Operator;
use as4gate::store::deliveries::DeadLetterFilter;
use as4gate::store::{DeliveryRow, Store};
use common::backend::{Backend, Mode};
use common::{Sender, TestGateway, payload};

/// A back-end table retrying every 100 ms, practically forever.
fn backend(id: &str, url: &str) -> String {
    format!(
        r#"
[[backend]]
id = "{id}"
binding = "rest"
url = "{url}"
timeout = "5s"
retry = {{ interval = "100ms", backoff = "fixed", max_attempts = 1000 }}
"#
    )
}

/// One subscription table.
fn subscription(id: &str, queue: &str, backend: &str, filter: &str) -> String {
    format!(
        "\n[[subscription]]\nid = \"{id}\"\nqueue = \"{queue}\"\nbackend = \"{backend}\"\n{filter}\n"
    )
}

/// Sends `ids` from blue_gw (sign-only P-Mode), each with `properties(i)`, concurrently;
/// every one must be receipted.
async fn send(
    gw: &TestGateway,
    ids: &[String],
    properties: impl Fn(usize) -> Vec<(&'static str, &'static str)>,
) {
    let sender = Sender::blue("sign-only");
    let mut tasks = Vec::new();
    for (i, id) in ids.iter().enumerate() {
        let composed = sender.compose_with(
            id,
            &properties(i),
            vec![payload(
                1,
                "application/xml",
                format!("<doc n='{i}'/>").as_bytes(),
            )],
        );
        let (content_type, body) = composed.to_mime("MIMEBoundary_delivery").unwrap();
        let url = gw.url();
        tasks.push(tokio::spawn(async move {
            as4gate::sample::post(&url, &content_type, body)
                .await
                .unwrap()
        }));
    }
    for t in tasks {
        let (status, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body}");
    }
}

fn ids(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}@blue.test")).collect()
}

/// Polls `check` until it holds; panics naming `what` after `timeout`.
async fn eventually<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    while !check().await {
        assert!(start.elapsed() < timeout, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn store(gw: &TestGateway) -> &Store {
    &gw.running.shared.store
}

async fn rows_in(store: &Store, ids: &[String], state: &str) -> Vec<DeliveryRow> {
    let mut out = Vec::new();
    for id in ids {
        out.extend(
            store
                .deliveries_of(id)
                .await
                .unwrap()
                .into_iter()
                .filter(|r| r.state == state),
        );
    }
    out
}

async fn operator(gw: &TestGateway) -> Operator {
    Operator::open(&gw.running.shared.gateway.config, "test:operator".into())
        .await
        .unwrap()
}

/// Nothing delivered twice: every MessageId was accepted exactly once.
fn assert_once(b: &Backend, n: usize) {
    assert_eq!(b.distinct(), n);
    assert!(
        b.repeats().is_empty(),
        "repeated deliveries: {:?}",
        b.repeats()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_subscribe_with_a_filter_and_a_failing_subscriber() {
    let archive = Backend::start(Mode::Accept).await;
    let riga = Backend::start(Mode::Accept).await;
    let broken = Backend::start(Mode::Fail).await;
    let extra = [
        backend("archive", &archive.url()),
        backend("riga-office", &riga.url()),
        backend("broken", &broken.url()),
        r#"
[[delivery_queue]]
name = "documents"
ttl = "1h"
properties = ["municipality"]
"#
        .to_owned(),
        subscription("archive", "documents", "archive", ""),
        subscription(
            "riga",
            "documents",
            "riga-office",
            "filter = { municipality = \"Riga\" }",
        ),
        subscription("broken", "documents", "broken", ""),
    ]
    .concat();
    let gw = TestGateway::start(&extra).await;
    let all = ids("pubsub", 20);
    send(&gw, &all, |i| {
        vec![("municipality", if i % 2 == 0 { "Riga" } else { "Jelgava" })]
    })
    .await;

    assert!(archive.wait_for(20, Duration::from_secs(60)).await);
    assert!(riga.wait_for(10, Duration::from_secs(60)).await);
    // Every Riga message and only those reached the filtered subscriber.
    let riga_ids: Vec<String> = all.iter().step_by(2).cloned().collect();
    let mut got: Vec<String> = riga.accepted().into_keys().collect();
    got.sort();
    let mut want = riga_ids.clone();
    want.sort();
    assert_eq!(got, want);
    assert_once(&archive, 20);
    assert_once(&riga, 10);
    // The failing subscriber was tried but never delivered; its deliveries are still pending
    // and retrying while the other two completed: it held nobody back.
    eventually(
        "the broken back-end tried",
        Duration::from_secs(20),
        || async { broken.requests() >= 20 },
    )
    .await;
    assert_eq!(broken.distinct(), 0);
    eventually(
        "30 deliveries recorded",
        Duration::from_secs(10),
        || async { rows_in(store(&gw), &all, "delivered").await.len() == 30 },
    )
    .await;
    let pending = rows_in(store(&gw), &all, "pending").await;
    assert_eq!(pending.len(), 20);
    assert!(pending.iter().all(|r| r.subscription == "broken"));
    let detail = store(&gw).message(&all[0]).await.unwrap().unwrap();
    assert_eq!(detail.state, "QUEUED");
    assert!(
        detail
            .history
            .iter()
            .any(|h| h.state == "DELIVERED" && h.detail.as_deref().unwrap().contains("riga"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_until_the_back_end_recovers() {
    let b = Backend::start(Mode::Fail).await;
    let extra = [
        backend("b", &b.url()),
        "\n[[delivery_queue]]\nname = \"q\"\n".to_owned(),
        subscription("s", "q", "b", ""),
    ]
    .concat();
    let gw = TestGateway::start(&extra).await;
    let all = ids("recover", 10);
    send(&gw, &all, |_| vec![]).await;
    eventually("several failed rounds", Duration::from_secs(30), || async {
        b.requests() >= 30
    })
    .await;
    b.set_mode(Mode::Accept);
    assert!(b.wait_for(10, Duration::from_secs(30)).await);
    eventually("all DELIVERED", Duration::from_secs(10), || async {
        rows_in(store(&gw), &all, "delivered").await.len() == 10
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_once(&b, 10);
    for id in &all {
        let d = store(&gw).message(id).await.unwrap().unwrap();
        assert_eq!(d.state, "DELIVERED");
        assert!(
            d.history.iter().any(|h| h.state == "WAITING_FOR_RETRY"
                && h.detail.as_deref().unwrap().contains("HTTP 500"))
        );
        let row = &store(&gw).deliveries_of(id).await.unwrap()[0];
        assert!(row.attempts >= 2, "{row:?}");
    }
    // Retries after a failed attempt are flagged as possible duplicates for the back-end.
    assert!(b.accepted().values().all(|seen| seen[0].possible_duplicate));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_deliveries_are_dead_lettered_then_replayed_once() {
    let b = Backend::start(Mode::Down).await;
    let extra = [
        backend("b", &b.url()),
        "\n[[delivery_queue]]\nname = \"short\"\nttl = \"2s\"\n".to_owned(),
        subscription("s", "short", "b", ""),
    ]
    .concat();
    let gw = TestGateway::start(&extra).await;
    let all = ids("ttl", 3);
    send(&gw, &all, |_| vec![]).await;
    let filter = DeadLetterFilter {
        reason: Some("expired".into()),
        limit: 100,
        ..DeadLetterFilter::default()
    };
    eventually(
        "3 expired dead letters",
        Duration::from_secs(30),
        || async { store(&gw).dead_letters(&filter).await.unwrap().len() == 3 },
    )
    .await;
    let dead = store(&gw).dead_letters(&filter).await.unwrap();
    for d in &dead {
        assert_eq!(d.subscription, "s");
        assert_eq!(d.queue, "short");
        assert!(d.attempts >= 1, "{d:?}");
        assert!(
            d.last_error.as_deref().unwrap().contains("time-to-live"),
            "{d:?}"
        );
    }
    for id in &all {
        assert_eq!(
            store(&gw).message(id).await.unwrap().unwrap().state,
            "DELIVERY_FAILED"
        );
    }
    // The back-end recovers: nothing expired is delivered on its own.
    b.set_mode(Mode::Accept);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.distinct(), 0);

    let op = operator(&gw).await;
    for id in &all {
        assert_eq!(op.replay(id, "s").await.unwrap(), ["s"]);
    }
    assert!(b.wait_for(3, Duration::from_secs(20)).await);
    // A second replay of a delivered message is refused: replay means once.
    let again = op.replay(&all[0], "s").await.unwrap_err().to_string();
    assert!(again.contains("not dead-lettered"), "{again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_once(&b, 3);
    for id in &all {
        let d = store(&gw).message(id).await.unwrap().unwrap();
        assert_eq!(d.state, "DELIVERED");
        let row = &store(&gw).deliveries_of(id).await.unwrap()[0];
        assert_eq!(row.replays, 1);
    }
    let audit = store(&gw).audit_log(10).await.unwrap();
    assert_eq!(audit.iter().filter(|a| a.action == "dlq.replay").count(), 3);
    assert!(audit.iter().all(|a| a.actor == "test:operator"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspended_queues_and_disabled_subscriptions_hold_messages() {
    let x = Backend::start(Mode::Accept).await;
    let y = Backend::start(Mode::Accept).await;
    let extra = [
        backend("x", &x.url()),
        backend("y", &y.url()),
        "\n[[delivery_queue]]\nname = \"q\"\nttl = \"1h\"\n".to_owned(),
        subscription("sx", "q", "x", ""),
        subscription("sy", "q", "y", ""),
    ]
    .concat();
    let gw = TestGateway::start(&extra).await;
    let op = operator(&gw).await;

    // Suspended queue: messages are accepted and kept, nothing is delivered.
    op.set_queue_suspended("q", true).await.unwrap();
    tokio::time::sleep(REFRESH * 2).await;
    let first = ids("suspend", 5);
    send(&gw, &first, |_| vec![]).await;
    eventually("10 held deliveries", Duration::from_secs(20), || async {
        rows_in(store(&gw), &first, "held").await.len() == 10
    })
    .await;
    assert_eq!(x.requests() + y.requests(), 0);
    // Resume: the backlog flows.
    assert_eq!(op.set_queue_suspended("q", false).await.unwrap(), 10);
    assert!(x.wait_for(5, Duration::from_secs(20)).await);
    assert!(y.wait_for(5, Duration::from_secs(20)).await);

    // Disabled subscription: only it stops.
    op.set_subscription_disabled("sy", true).await.unwrap();
    tokio::time::sleep(REFRESH * 2).await;
    let second = ids("disable", 5);
    send(&gw, &second, |_| vec![]).await;
    assert!(x.wait_for(10, Duration::from_secs(20)).await);
    eventually("5 held for sy", Duration::from_secs(20), || async {
        rows_in(store(&gw), &second, "held").await.len() == 5
    })
    .await;
    assert_eq!(y.distinct(), 5);
    assert_eq!(op.set_subscription_disabled("sy", false).await.unwrap(), 5);
    assert!(y.wait_for(10, Duration::from_secs(20)).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_once(&x, 10);
    assert_once(&y, 10);

    // Unknown names are refused, and every action is audited.
    assert!(op.set_queue_suspended("nope", true).await.is_err());
    let actions: Vec<String> = store(&gw)
        .audit_log(10)
        .await
        .unwrap()
        .into_iter()
        .map(|a| format!("{} {}", a.action, a.target))
        .collect();
    assert_eq!(
        actions,
        [
            "subscription.enable sy",
            "subscription.disable sy",
            "queue.resume q",
            "queue.suspend q"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_messages_are_dead_lettered_and_test_messages_never_routed() {
    let b = Backend::start(Mode::Accept).await;
    let extra = [
        backend("b", &b.url()),
        "\n[[delivery_queue]]\nname = \"q\"\nmatch = { services = [\"urn:nothing\"] }\n".to_owned(),
        subscription("s", "q", "b", ""),
    ]
    .concat();
    let gw = TestGateway::start(&extra).await;
    let id = ids("noroute", 1);
    send(&gw, &id, |_| vec![]).await;
    let dead = store(&gw)
        .dead_letters(&DeadLetterFilter {
            reason: Some("no_route".into()),
            limit: 10,
            ..DeadLetterFilter::default()
        })
        .await
        .unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].message_id, id[0]);
    assert_eq!(dead[0].subscription, "*");
    // Replaying re-routes with the current configuration, which still matches nothing.
    let refused = operator(&gw).await.replay(&id[0], "*").await.unwrap_err();
    assert!(
        refused
            .to_string()
            .contains("still matches no subscription")
    );

    // The ebMS test service is receipted, never routed or dead-lettered.
    let ping = Sender::blue("ping").compose("ping-1@blue.test", vec![]);
    assert_eq!(gw.send(&ping).await.0, 200);
    assert!(
        store(&gw)
            .deliveries_of("ping-1@blue.test")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.requests(), 0);
}
