//! The running gateway: configuration turned into key material, P-Modes, partners and open
//! stores, shared by every request, and the `serve` entry point.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use as4gate_ebms::limits::Limits;
use as4gate_pmode::PModeSet;
use as4gate_wssec::policy::SecurityPolicy;
use as4gate_wssec::sign::SigningIdentity;
use as4gate_wssec::trust::TrustAnchors;
use as4gate_wssec::xmlenc::DecryptionKey;
use tokio::net::TcpListener;

use crate::config::Config;
use crate::delivery::AnyConnector;
use crate::delivery::routing::Router;
use crate::delivery::worker::DeliveryWorker;
use crate::pem;
use crate::queue::Queue;
use crate::store::{BlobStore, Store};

/// A configured partner.
#[derive(Debug, Clone)]
pub struct Partner {
    /// DER certificates the partner signs with.
    pub signing_certificates: Vec<Vec<u8>>,
    /// DER certificates the partner may use as a TLS client (empty: not checked).
    pub tls_client_certificates: Vec<Vec<u8>>,
}

/// Key material, P-Modes and partners: everything loaded from configuration.
pub struct Gateway {
    /// The configuration it was loaded from.
    pub config: Config,
    /// Protocol limits derived from the configuration.
    pub limits: Limits,
    /// All P-Modes.
    pub pmodes: PModeSet,
    /// Our receipt/error signing identity.
    pub signing: SigningIdentity,
    /// Our key for decrypting payloads.
    pub decryption: DecryptionKey,
    /// The certificate partners encrypt to (DER).
    pub decryption_certificate: Vec<u8>,
    /// Trust anchors partner signing certificates must chain to.
    pub anchors: TrustAnchors,
    /// Partners by PartyId value.
    pub partners: HashMap<String, Partner>,
    /// Every partner signing certificate (for issuer-serial / SKI resolution).
    pub known_certificates: Vec<Vec<u8>>,
    /// Which subscriptions received messages go to.
    pub router: Router,
}

impl Gateway {
    /// Loads keys, certificates and P-Modes named by `config`, reporting the first file that
    /// cannot be used (the config itself was already checked for every problem at once).
    pub fn load(config: &Config) -> anyhow::Result<Gateway> {
        let g = &config.gateway;
        let signing_cert = pem::certificates(&g.signing_certificate)?;
        let signing_key = pem::pkcs8_key(&g.signing_key)?;
        let signing = SigningIdentity::from_pkcs8_der(
            &signing_key,
            &signing_cert[0],
            signing_cert[1..].to_vec(),
        )
        .with_context(|| format!("gateway.signing_key {}", g.signing_key.display()))?;
        let (dec_cert_path, dec_key_path) = match (&g.decryption_certificate, &g.decryption_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (g.signing_certificate.clone(), g.signing_key.clone()),
        };
        let decryption_certificate = pem::certificates(&dec_cert_path)?.swap_remove(0);
        let decryption = DecryptionKey::from_pkcs8_der(&pem::pkcs8_key(&dec_key_path)?)
            .with_context(|| format!("gateway.decryption_key {}", dec_key_path.display()))?;
        let anchors = TrustAnchors::from_der(&pem::first_certificates(&g.trust_anchors)?)
            .context("gateway.trust_anchors")?;
        let mut partners = HashMap::new();
        let mut known_certificates = Vec::new();
        for p in &config.partners {
            let signing_certificates = pem::first_certificates(&p.signing_certificates)?;
            known_certificates.extend(signing_certificates.iter().cloned());
            partners.insert(
                p.party_id.clone(),
                Partner {
                    signing_certificates,
                    tls_client_certificates: pem::first_certificates(&p.tls_client_certificates)?,
                },
            );
        }
        let pmodes = PModeSet::load_dir(&config.pmodes_dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("P-Modes in {}", config.pmodes_dir.display()))?;
        if let Some(unsigned) = pmodes.iter().find(|p| !p.security.sign) {
            anyhow::bail!(
                "P-Mode {}: unsigned exchanges (security.sign = false) are not supported; \
                 receipts are non-repudiation receipts over the sender's signature",
                unsigned.id
            );
        }
        let router = config
            .router()
            .map_err(|problems| anyhow::anyhow!("routing: {}", problems.join("; ")))?;
        let l = &config.limits;
        let limits = Limits {
            max_envelope_bytes: l.max_envelope_bytes,
            max_mime_parts: l.max_mime_parts,
            max_xml_depth: u32::try_from(l.max_xml_depth).unwrap_or(u32::MAX),
            max_decompressed_bytes: l.max_decompressed_bytes,
            ..Limits::default()
        };
        Ok(Gateway {
            config: config.clone(),
            limits,
            pmodes,
            signing,
            decryption,
            decryption_certificate,
            anchors,
            partners,
            known_certificates,
            router,
        })
    }

    /// The signature policy for a P-Mode's security settings, with our configured limits.
    pub fn security_policy(&self, base: SecurityPolicy) -> SecurityPolicy {
        SecurityPolicy {
            max_references: self.config.limits.max_references,
            max_certificate_bytes: self.config.limits.max_certificate_bytes,
            ..base
        }
    }
}

/// Everything a request handler needs.
pub struct Shared {
    /// Keys, P-Modes, partners.
    pub gateway: Gateway,
    /// The message store.
    pub store: Store,
    /// Payload blobs.
    pub blobs: BlobStore,
    /// Where attachments spill while a request is processed.
    pub spool_dir: PathBuf,
    /// The queue delivery work goes through.
    pub queue: Queue,
}

/// A started gateway.
pub struct Running {
    /// The shared state.
    pub shared: Arc<Shared>,
    /// The bound HTTP address, if any.
    pub http: Option<SocketAddr>,
    /// The bound HTTPS address, if any.
    pub https: Option<SocketAddr>,
    /// The listener tasks.
    pub tasks: Vec<tokio::task::JoinHandle<std::io::Result<()>>>,
    /// The delivery worker.
    pub worker: tokio::task::JoinHandle<()>,
}

impl Running {
    /// Stops the listeners and the delivery worker (deliveries under way are abandoned and
    /// delivered again later, like after a crash).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
        self.worker.abort();
    }
}

/// Opens the stores and binds the listeners of `config` (port 0 picks a free port).
pub async fn start(config: Config) -> anyhow::Result<Running> {
    let gateway = Gateway::load(&config)?;
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("data_dir {}", config.data_dir.display()))?;
    let spool_dir = config.data_dir.join("spool");
    std::fs::create_dir_all(&spool_dir)?;
    let store = Store::open(&config.database_path(), config.store.sqlite_synchronous).await?;
    let blobs = BlobStore::open(&config.data_dir.join("blobs"))?;
    let queue = Queue::open(&config.queue, store.pool().clone())
        .await
        .context("queue")?;
    let connectors = config
        .backends
        .iter()
        .map(|b| Ok((AnyConnector::new(b.clone())?, b.retry)))
        .collect::<Result<Vec<_>, crate::delivery::ConnectorError>>()
        .context("backend")?;
    let worker = DeliveryWorker::new(
        store.clone(),
        blobs.clone(),
        gateway.router.clone(),
        connectors,
    );
    let worker = tokio::spawn(worker.run(queue.clone()));
    let shared = Arc::new(Shared {
        gateway,
        store,
        blobs,
        spool_dir,
        queue,
    });
    let router = crate::inbound::router(shared.clone());
    let mut running = Running {
        shared: shared.clone(),
        http: None,
        https: None,
        tasks: Vec::new(),
        worker,
    };
    if let Some(address) = config.listen.http {
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("listen.http {address}"))?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, "AS4 endpoint listening on http /as4");
        running.http = Some(bound);
        running.tasks.push(tokio::spawn(crate::server::serve(
            listener,
            None,
            router.clone(),
        )));
    }
    if let Some(https) = &config.listen.https {
        let tls = crate::server::tls::server_config(https)?;
        let listener = TcpListener::bind(https.address)
            .await
            .with_context(|| format!("listen.https {}", https.address))?;
        let bound = listener.local_addr()?;
        tracing::info!(address = %bound, client_auth = ?https.client_auth, "AS4 endpoint listening on https /as4");
        running.https = Some(bound);
        running.tasks.push(tokio::spawn(crate::server::serve(
            listener,
            Some(tls),
            router,
        )));
    }
    Ok(running)
}

/// `as4gate serve`: runs until SIGINT/SIGTERM.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let running = start(config).await?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    running.stop();
    Ok(())
}
