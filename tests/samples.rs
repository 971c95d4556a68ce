//! The committed sample messages in `samples/messages/` (made by `as4gate send-sample --out`)
//! are accepted by a gateway on the sample configuration, so the samples stay true to the code.

mod common;

use common::{TestGateway, post, repo};

#[tokio::test]
async fn committed_sample_messages_are_receipted() {
    let gw = TestGateway::start("").await;
    let dir = repo().join("samples/messages");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("mime") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let mut header = path.clone().into_os_string();
        header.push(".content-type");
        let content_type = std::fs::read_to_string(&header).unwrap();
        let (status, answer) = post(&gw.url(), content_type.trim(), body).await;
        assert_eq!(status, 200, "{}: {answer}", path.display());
        assert!(answer.contains("NonRepudiationInformation"), "{answer}");
        seen += 1;
    }
    assert!(
        seen >= 2,
        "expected the invoice and ping samples in {}",
        dir.display()
    );
}

#[test]
fn sample_configurations_load() {
    for path in ["samples/as4gate.toml", "samples/blue/as4gate.toml"] {
        let config = as4gate::config::Config::load(&repo().join(path))
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        as4gate::gateway::Gateway::load(&config).unwrap_or_else(|e| panic!("{path}: {e:#}"));
    }
}
