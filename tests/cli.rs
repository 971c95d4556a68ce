//! The command line against a real data directory: `messages list|show` and `validate`.

mod common;

use std::process::Command;

use common::{Sender, TestGateway, payload};

fn as4gate(args: &[&str], config: &std::path::Path) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_as4gate"))
        .args(args)
        .arg("--config")
        .arg(config)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Multi-threaded: the CLI runs as a blocking child process, and the gateway it shares the
/// database with must keep running meanwhile. On the test's own single thread a writer
/// group caught between `BEGIN` and `COMMIT` would hold SQLite's write lock until the CLI,
/// waiting for that lock, gave up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_list_and_show_print_what_arrived() {
    let gw = TestGateway::start("").await;
    let composed = Sender::blue("blue-to-red").compose(
        "cli-1@blue.test",
        vec![
            payload(1, "application/xml", b"<doc>one</doc>"),
            payload(2, "text/plain", b"two"),
        ],
    );
    assert_eq!(gw.send(&composed).await.0, 200);
    let config = gw.dir.path().join("as4gate.toml");

    let (code, out, err) = as4gate(&["messages", "list"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cli-1@blue.test"), "{out}");
    // No delivery queue is configured: the message is a `no_route` dead letter.
    assert!(out.contains("DELIVERY_FAILED"), "{out}");

    let (code, out, err) = as4gate(&["messages", "show", "cli-1@blue.test"], &config);
    assert_eq!(code, 0, "{err}");
    for needle in [
        "State:           DELIVERY_FAILED",
        "Deliveries:",
        "reason no_route",
        "From:            blue_gw",
        "To:              red_gw",
        "Action:          Submit",
        "Conversation:    conversation-1",
        "cid:payload-1@as4gate.test  14 bytes  application/xml",
        "cid:payload-2@as4gate.test  3 bytes  text/plain",
        "NonRepudiationInformation",
    ] {
        assert!(out.contains(needle), "missing {needle:?} in\n{out}");
    }

    let (code, _, err) = as4gate(&["messages", "show", "nope@x"], &config);
    assert_eq!(code, 1);
    assert!(err.contains("no message with id"), "{err}");

    // The dead-letter commands see it, discard it once, and refuse a second discard.
    let (code, out, err) = as4gate(&["dlq", "list", "--reason", "no_route"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("cli-1@blue.test") && out.contains("no_route"),
        "{out}"
    );
    let (code, out, err) = as4gate(&["dlq", "discard", "cli-1@blue.test", "*"], &config);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("discarded"), "{out}");
    let (_, out, _) = as4gate(&["messages", "show", "cli-1@blue.test"], &config);
    assert!(out.contains("State:           DISCARDED"), "{out}");
    let (_, out, _) = as4gate(&["dlq", "list"], &config);
    assert!(!out.contains("cli-1@blue.test"), "{out}");
    let (code, _, err) = as4gate(&["dlq", "discard", "cli-1@blue.test", "*"], &config);
    assert_eq!(code, 1);
    assert!(err.contains("not dead-lettered"), "{err}");
    let (code, _, err) = as4gate(&["queue", "suspend", "nope"], &config);
    assert_eq!(code, 1);
    assert!(err.contains("no [[delivery_queue]] named"), "{err}");
}

#[test]
fn validate_reports_every_problem_and_exits_64() {
    let dir = tempfile::tempdir().unwrap();
    let good = common::write_config(dir.path(), "");
    let (code, out, err) = as4gate(&["validate"], &good);
    assert_eq!(code, 0, "{out}{err}");

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "pmodes_dir = \"missing\"\n[gateway]\nparty_id = \"x\"\nsigning_certificate = \"a.crt\"\nsigning_key = \"a.key\"\ntrust_anchors = []\n",
    )
    .unwrap();
    let (code, _, err) = as4gate(&["validate"], &bad);
    assert_eq!(code, 64);
    for needle in [
        "gateway.signing_certificate",
        "gateway.signing_key",
        "gateway.trust_anchors",
        "listen",
        "pmodes_dir",
    ] {
        assert!(err.contains(needle), "missing {needle} in {err}");
    }
}
