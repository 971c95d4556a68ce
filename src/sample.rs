//! `as4gate send-sample`: play the partner `blue_gw` with the committed test PKI — compose a
//! signed, compressed and encrypted message to `red_gw` per a sample P-Mode, POST it to a
//! running gateway and print the answer (the signed receipt, or the ebMS error), or write it
//! to a file (`--out`; that is how `samples/messages/` is made).

use std::path::PathBuf;

use anyhow::Context;
use as4gate_pmode::PMode;
use as4gate_wssec::sign::SigningIdentity;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::outbound::compose::{Outgoing, OutgoingPayload, SenderKeys, compose};
use crate::pem;

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/samples");
const PKI: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/test-pki");

/// Options of `send-sample`; every default points into `samples/` and `test-pki/`.
#[derive(Debug, clap::Args)]
pub struct SendSampleArgs {
    /// The gateway's AS4 endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080/as4")]
    url: String,
    /// P-Mode file to send under (default: samples/pmodes/blue-to-red.toml).
    #[arg(long)]
    pmode: Option<PathBuf>,
    /// Send an ebMS test-service ping (samples/pmodes/ping.toml) without payload.
    #[arg(long, conflicts_with_all = ["pmode", "payload"])]
    ping: bool,
    /// Payload files (default: samples/payloads/invoice.xml). Repeat for several.
    #[arg(long)]
    payload: Vec<PathBuf>,
    /// MimeType of the payloads.
    #[arg(long, default_value = "application/xml")]
    mime_type: String,
    /// Sender certificate (PEM).
    #[arg(long)]
    sender_certificate: Option<PathBuf>,
    /// Sender private key (PKCS#8 PEM).
    #[arg(long)]
    sender_key: Option<PathBuf>,
    /// Receiver encryption certificate (PEM).
    #[arg(long)]
    receiver_certificate: Option<PathBuf>,
    /// Write the message to FILE (the MIME body) and FILE.content-type instead of sending it.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// Runs `send-sample`.
pub fn send_sample(args: &SendSampleArgs) -> anyhow::Result<()> {
    let pmode_path = match (&args.pmode, args.ping) {
        (Some(p), _) => p.clone(),
        (None, true) => PathBuf::from(SAMPLES).join("pmodes/ping.toml"),
        (None, false) => PathBuf::from(SAMPLES).join("pmodes/blue-to-red.toml"),
    };
    let pmode = PMode::load_file(&pmode_path).map_err(|e| anyhow::anyhow!("{e}"))?;
    let cert_path = args
        .sender_certificate
        .clone()
        .unwrap_or_else(|| PathBuf::from(PKI).join("blue_gw/rsa.crt"));
    let key_path = args
        .sender_key
        .clone()
        .unwrap_or_else(|| PathBuf::from(PKI).join("blue_gw/rsa.key"));
    let receiver_path = args
        .receiver_certificate
        .clone()
        .unwrap_or_else(|| PathBuf::from(PKI).join("red_gw/rsa.crt"));
    let mut chain = pem::certificates(&cert_path)?;
    let leaf = chain.remove(0);
    let signing = SigningIdentity::from_pkcs8_der(&pem::pkcs8_key(&key_path)?, &leaf, chain)?;
    let receiver = pem::certificates(&receiver_path)?.swap_remove(0);

    let payload_paths = if args.ping {
        Vec::new()
    } else if args.payload.is_empty() {
        vec![PathBuf::from(SAMPLES).join("payloads/invoice.xml")]
    } else {
        args.payload.clone()
    };
    let mut payloads = Vec::new();
    for (i, path) in payload_paths.iter().enumerate() {
        payloads.push(OutgoingPayload {
            content_id: format!("payload-{}@as4gate.sample", i + 1),
            mime_type: args.mime_type.clone(),
            character_set: None,
            content: std::fs::read(path).with_context(|| format!("payload {}", path.display()))?,
            already_compressed: false,
        });
    }
    let party = &pmode.initiator.party_id;
    let message_id = crate::inbound::process::new_message_id(party);
    let composed = compose(
        &Outgoing {
            pmode: &pmode,
            conversation_id: uuid::Uuid::new_v4().to_string(),
            message_id: message_id.clone(),
            properties: Vec::new(),
            payloads,
            now: time::OffsetDateTime::now_utc(),
        },
        &SenderKeys {
            signing: &signing,
            receiver_certificate: Some(&receiver),
        },
    )?;
    let boundary = format!("MIMEBoundary_{}", uuid::Uuid::new_v4().simple());
    let (content_type, body) = composed.to_mime(&boundary)?;
    if let Some(out) = &args.out {
        std::fs::write(out, &body).with_context(|| format!("writing {}", out.display()))?;
        let mut header = out.clone().into_os_string();
        header.push(".content-type");
        std::fs::write(&header, &content_type)?;
        println!("wrote {message_id} to {} (+ .content-type)", out.display());
        return Ok(());
    }
    println!(
        "sending {message_id} under P-Mode {} to {}",
        pmode.id, args.url
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = runtime.block_on(post(&args.url, &content_type, body))?;
    println!("HTTP {status}");
    println!("{answer}");
    if status == 200 {
        Ok(())
    } else {
        anyhow::bail!("the gateway did not receipt the message (HTTP {status})")
    }
}

/// POSTs `body` to `url`; returns the HTTP status and the response text.
pub async fn post(url: &str, content_type: &str, body: Vec<u8>) -> anyhow::Result<(u16, String)> {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = hyper::Request::post(url)
        .header(hyper::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body)))?;
    let response = client
        .request(request)
        .await
        .with_context(|| format!("POST {url}"))?;
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}
