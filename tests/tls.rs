//! The HTTPS listener: TLS 1.2 and 1.3 only, client certificates verified against the
//! configured CA and bound to the partner that signs the message.

mod common;

use std::sync::Arc;

use common::{Sender, TestGateway, payload, pki};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

fn https_config(client_auth: &str) -> String {
    let repo = common::repo();
    format!(
        r#"
[listen.https]
address = "127.0.0.1:0"
certificate = "{repo}/test-pki/red_gw/tls.crt"
key = "{repo}/test-pki/red_gw/tls.key"
client_auth = "{client_auth}"
client_ca = ["{repo}/test-pki/ca/ca.crt"]
"#,
        repo = repo.display()
    )
}

/// The default test config binds the blue_gw partner to its TLS client certificate.
fn bind_partner_tls(dir: &std::path::Path) {
    let path = dir.join("as4gate.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "signing_certificates = [",
        &format!(
            "tls_client_certificates = [\"{}\"]\nsigning_certificates = [",
            pki("blue_gw/tls.crt").display()
        ),
    );
    std::fs::write(path, text).unwrap();
}

async fn start_https(client_auth: &str) -> TestGateway {
    let dir = tempfile::tempdir().unwrap();
    let config_path = common::write_config(dir.path(), &https_config(client_auth));
    bind_partner_tls(dir.path());
    let config = as4gate::config::Config::load(&config_path).unwrap();
    let running = as4gate::gateway::start(config).await.unwrap();
    TestGateway { dir, running }
}

fn client_config(client_cert: Option<&str>) -> Arc<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca in as4gate::pem::certificates(&pki("ca/ca.crt")).unwrap() {
        roots.add(CertificateDer::from(ca)).unwrap();
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match client_cert {
        Some(name) => {
            let chain = as4gate::pem::certificates(&pki(&format!("{name}.crt")))
                .unwrap()
                .into_iter()
                .map(CertificateDer::from)
                .collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
                as4gate::pem::pkcs8_key(&pki(&format!("{name}.key"))).unwrap(),
            ));
            builder.with_client_auth_cert(chain, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// POSTs over TLS with an optional client certificate; `Err` when the handshake or the
/// exchange fails.
async fn post_tls(
    address: std::net::SocketAddr,
    client_cert: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> Result<(u16, String), String> {
    let tcp = TcpStream::connect(address)
        .await
        .map_err(|e| e.to_string())?;
    let tls = TlsConnector::from(client_config(client_cert))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(connection);
    let request = hyper::Request::post("/as4")
        .header("host", "localhost")
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(body)))
        .unwrap();
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("exchange: {e}"))?;
    let status = response.status().as_u16();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

fn message(id: &str) -> (String, Vec<u8>) {
    Sender::blue("blue-to-red")
        .compose(id, vec![payload(1, "application/xml", b"<doc/>")])
        .to_mime("MIMEBoundary_tls")
        .unwrap()
}

#[tokio::test]
async fn mutual_tls_binds_the_client_certificate_to_the_partner() {
    let gw = start_https("required").await;
    let address = gw.running.https.unwrap();

    let (ct, body) = message("tls-1@blue.test");
    let (status, receipt) = post_tls(address, Some("blue_gw/tls"), &ct, body)
        .await
        .unwrap();
    assert_eq!(status, 200, "{receipt}");

    // Without a client certificate the handshake is refused.
    let (ct, body) = message("tls-2@blue.test");
    assert!(post_tls(address, None, &ct, body).await.is_err());

    // A valid client certificate of another party does not pass for blue_gw.
    let (ct, body) = message("tls-3@blue.test");
    let (status, answer) = post_tls(address, Some("red_gw/tls"), &ct, body)
        .await
        .unwrap();
    assert_eq!(status, 500);
    assert_eq!(
        common::error_code(&answer).as_deref(),
        Some("EBMS:0101"),
        "{answer}"
    );
}

/// Whether `openssl s_client` completes a handshake with `flag` (`-tls1_2`, ...). Old
/// versions are offered with `@SECLEVEL=0` so that the client really tries them.
fn openssl_handshake(address: &str, flag: &str) -> std::io::Result<bool> {
    let mut command = std::process::Command::new("openssl");
    command.args(["s_client", "-connect", address, flag, "-CAfile"]);
    command.arg(pki("ca/ca.crt"));
    if matches!(flag, "-tls1" | "-tls1_1") {
        command.args(["-cipher", "DEFAULT:@SECLEVEL=0"]);
    }
    command
        .stdin(std::process::Stdio::null())
        .output()
        .map(|o| o.status.success())
}

/// The same client command against an `openssl s_server` that speaks only TLS 1.1, to prove
/// the refusal below comes from the gateway and not from the client.
fn openssl_client_can_speak_tls11() -> bool {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("openssl")
        .args([
            "s_server",
            "-accept",
            &format!("127.0.0.1:{port}"),
            "-tls1_1",
            "-www",
        ])
        .args(["-cipher", "DEFAULT:@SECLEVEL=0", "-cert"])
        .arg(pki("red_gw/tls.crt"))
        .arg("-key")
        .arg(pki("red_gw/tls.key"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut ok = false;
    for _ in 0..50 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(true) = openssl_handshake(&format!("127.0.0.1:{port}"), "-tls1_1") {
            ok = true;
            break;
        }
    }
    let _ = server.kill();
    let _ = server.wait();
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_protocol_versions_are_refused() {
    let gw = start_https("optional").await;
    let address = gw.running.https.unwrap().to_string();
    let results = tokio::task::spawn_blocking(move || {
        ["-tls1_2", "-tls1_3", "-tls1_1", "-tls1"].map(|flag| openssl_handshake(&address, flag))
    })
    .await
    .unwrap();
    let [Ok(tls12), Ok(tls13), Ok(tls11), Ok(tls10)] = results else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "openssl is required in CI"
        );
        eprintln!("skipping: openssl is not installed");
        return;
    };
    assert!(tls12, "TLS 1.2 must be accepted");
    assert!(tls13, "TLS 1.3 must be accepted");
    assert!(!tls11, "TLS 1.1 must be refused");
    assert!(!tls10, "TLS 1.0 must be refused");
    assert!(
        tokio::task::spawn_blocking(openssl_client_can_speak_tls11)
            .await
            .unwrap(),
        "the client must be able to speak TLS 1.1, or the refusal above proves nothing"
    );
}
