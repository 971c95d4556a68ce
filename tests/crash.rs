//! Crash safety: a message whose receipt was returned survives `kill -9` of the gateway right
//! after the response, and the restarted gateway answers its duplicate with the same receipt.

mod common;

use common::{Sender, payload, spawn_gateway, write_config};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipted_messages_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "");
    let (mut child, url) = spawn_gateway(&config);

    let sender = Sender::blue("blue-to-red");
    let messages: Vec<_> = (0..8)
        .map(|i| {
            let composed = sender.compose(
                &format!("crash-{i}@blue.test"),
                vec![payload(
                    1,
                    "application/xml",
                    format!("<doc n='{i}'/>").as_bytes(),
                )],
            );
            composed.to_mime("MIMEBoundary_crash").unwrap()
        })
        .collect();
    let mut tasks = Vec::new();
    for (content_type, body) in messages.clone() {
        let url = url.clone();
        tasks.push(tokio::spawn(async move {
            as4gate::sample::post(&url, &content_type, body).await
        }));
    }
    // Kill the gateway as soon as the first receipt is back, while others are in flight.
    let mut receipted = Vec::new();
    let mut killed = false;
    for (i, task) in tasks.into_iter().enumerate() {
        if let Ok(Ok((200, receipt))) = task.await {
            receipted.push((i, receipt));
            if !killed {
                child.kill().unwrap(); // SIGKILL
                killed = true;
            }
        }
    }
    child.wait().unwrap();
    assert!(!receipted.is_empty(), "at least one receipt came back");

    // Every receipted message is in the store with its payload blob intact.
    let cfg = as4gate::config::Config::load(&config).unwrap();
    let store = as4gate::store::Store::open(&cfg.database_path(), cfg.store.sqlite_synchronous)
        .await
        .unwrap();
    let blobs = as4gate::store::BlobStore::open(&cfg.data_dir.join("blobs")).unwrap();
    for (i, receipt) in &receipted {
        let id = format!("crash-{i}@blue.test");
        let detail = store
            .message(&id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("{id} was receipted but is not stored"));
        assert_eq!(detail.record.receipt, receipt.as_bytes());
        let stored = detail.record.payloads[0].content(&blobs).unwrap();
        assert_eq!(stored, format!("<doc n='{i}'/>").as_bytes());
    }
    drop(store);

    // The restarted gateway knows them: a resend gets the original receipt.
    let (mut child, url) = spawn_gateway(&config);
    let (i, receipt) = &receipted[0];
    let (content_type, body) = messages[*i].clone();
    let (status, again) = as4gate::sample::post(&url, &content_type, body)
        .await
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(status, 200);
    assert_eq!(&again, receipt);
}
