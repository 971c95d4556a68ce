//! The running gateway: configuration turned into key material, P-Modes, partners and open
//! stores, shared by every request, and the `serve` entry point.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use as4gate_ebms::limits::Limits;
use as4gate_pmode::{PModeSet, SecurityProfile};
use as4gate_wssec::policy::SecurityPolicy;
use as4gate_wssec::sign::SigningIdentity;
use as4gate_wssec::trust::TrustAnchors;
use as4gate_wssec::xmlenc::{DecryptionKey, OwnCertificate};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::delivery::AnyConnector;
use crate::delivery::routing::Router;
use crate::delivery::transport::HttpSender;
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
    /// DER certificates the partner decrypts with (RSA for 1.15, X25519/P-256 for 2.0).
    pub encryption_certificates: Vec<Vec<u8>>,
    /// Where messages to the partner are sent, when configured.
    pub endpoint: Option<String>,
    /// The HTTP client for `endpoint` (connection settings, TLS, concurrency, timeout).
    pub sender: Option<Arc<HttpSender>>,
}

/// One crypto generation's keys: what we sign receipts, errors and sent messages with, and
/// what partners encrypt to.
pub struct ProfileKeys {
    /// Our signing identity.
    pub signing: SigningIdentity,
    /// Our key for decrypting payloads.
    pub decryption: DecryptionKey,
    /// The certificate partners encrypt to.
    pub decryption_certificate: OwnCertificate,
}

impl ProfileKeys {
    fn load(
        signing_certificate: &std::path::Path,
        signing_key: &std::path::Path,
        decryption_certificate: &std::path::Path,
        decryption_key: &std::path::Path,
    ) -> anyhow::Result<ProfileKeys> {
        let cert = pem::certificates(signing_certificate)?;
        let key = pem::pkcs8_key(signing_key)?;
        let signing = SigningIdentity::from_pkcs8_der(&key, &cert[0], cert[1..].to_vec())
            .with_context(|| format!("signing key {}", signing_key.display()))?;
        let decryption_certificate =
            OwnCertificate::new(pem::certificates(decryption_certificate)?.swap_remove(0))
                .with_context(|| format!("certificate {}", decryption_certificate.display()))?;
        let decryption = DecryptionKey::from_pkcs8_der(&pem::pkcs8_key(decryption_key)?)
            .with_context(|| format!("decryption key {}", decryption_key.display()))?;
        Ok(ProfileKeys {
            signing,
            decryption,
            decryption_certificate,
        })
    }
}

/// Key material, P-Modes and partners: everything loaded from configuration.
pub struct Gateway {
    /// The configuration it was loaded from.
    pub config: Config,
    /// Protocol limits derived from the configuration.
    pub limits: Limits,
    /// All P-Modes.
    pub pmodes: PModeSet,
    /// Keys for eDelivery AS4 1.15 P-Modes (and for errors no P-Mode could be found for).
    pub keys_1_15: ProfileKeys,
    /// Keys for eDelivery AS4 2.0 P-Modes, when configured.
    pub keys_2_0: Option<ProfileKeys>,
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
        let (dec_cert_path, dec_key_path) = match (&g.decryption_certificate, &g.decryption_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (g.signing_certificate.clone(), g.signing_key.clone()),
        };
        let keys_1_15 = ProfileKeys::load(
            &g.signing_certificate,
            &g.signing_key,
            &dec_cert_path,
            &dec_key_path,
        )
        .context("gateway")?;
        let keys_2_0 = g
            .edelivery_2_0
            .as_ref()
            .map(|k| {
                ProfileKeys::load(
                    &k.signing_certificate,
                    &k.signing_key,
                    &k.decryption_certificate,
                    &k.decryption_key,
                )
                .context("gateway.edelivery_2_0")
            })
            .transpose()?;
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
                    encryption_certificates: pem::first_certificates(&p.encryption_certificates)?,
                    endpoint: p.endpoint.clone(),
                    sender: p
                        .transport()
                        .map(|t| HttpSender::new(&t).map(Arc::new))
                        .transpose()
                        .with_context(|| format!("partner {}", p.party_id))?,
                },
            );
        }
        let pmodes = PModeSet::load_dir(&config.pmodes_dir)
            .map_err(|e| anyhow::anyhow!("{e}"))
            .with_context(|| format!("P-Modes in {}", config.pmodes_dir.display()))?;
        if keys_2_0.is_none()
            && let Some(p) = pmodes
                .iter()
                .find(|p| p.security.profile == SecurityProfile::EdeliveryAs4_2_0)
        {
            anyhow::bail!(
                "P-Mode {}: eDelivery AS4 2.0 needs [gateway.edelivery_2_0] keys",
                p.id
            );
        }
        for pull in &config.pulls {
            let p = pmodes
                .by_id(&pull.pmode)
                .with_context(|| format!("[[pull]]: no P-Mode {}", pull.pmode))?;
            let from = &p.initiator.party_id;
            if p.binding != as4gate_pmode::Binding::Pull
                || p.responder.party_id != g.party_id
                || partners
                    .get(from)
                    .is_none_or(|x: &Partner| x.endpoint.is_none())
            {
                anyhow::bail!(
                    "[[pull]] {}: needs a pull P-Mode whose responder is this gateway and whose \
                     initiator {from:?} is a partner with an endpoint",
                    p.id
                );
            }
        }
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
            keys_1_15,
            keys_2_0,
            anchors,
            partners,
            known_certificates,
            router,
        })
    }

    /// Our keys for a P-Mode's security profile (checked at load: 2.0 P-Modes have keys).
    pub fn keys(&self, profile: SecurityProfile) -> &ProfileKeys {
        match (profile, &self.keys_2_0) {
            (SecurityProfile::EdeliveryAs4_2_0, Some(keys)) => keys,
            _ => &self.keys_1_15,
        }
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
    /// Where large parts spill ([`crate::spool`]): received attachments while a request is
    /// processed, composed parts while a message is sent.
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
    /// One task per `[[pull]]`.
    pub pullers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the listeners, the delivery worker and the pullers (work under way is abandoned
    /// and done again later, like after a crash).
    pub fn stop(self) {
        for t in self.tasks {
            t.abort();
        }
        self.worker.abort();
        for p in self.pullers {
            p.abort();
        }
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
    let queue = Queue::open(&config.queue, &store).await.context("queue")?;
    let connectors = config
        .backends
        .iter()
        .map(|b| Ok((AnyConnector::new(b.clone())?, b.retry)))
        .collect::<Result<Vec<_>, crate::delivery::ConnectorError>>()
        .context("backend")?;
    let shared = Arc::new(Shared {
        gateway,
        store,
        blobs,
        spool_dir,
        queue: queue.clone(),
    });
    let worker = DeliveryWorker::new(
        shared.store.clone(),
        shared.blobs.clone(),
        shared.gateway.router.clone(),
        connectors,
        Some(crate::outbound::send::OutboundSender::new(shared.clone())),
    );
    let worker = tokio::spawn(worker.run(queue));
    let pullers = config
        .pulls
        .iter()
        .map(|p| {
            tokio::spawn(crate::outbound::pull::run_puller(
                shared.clone(),
                p.pmode.clone(),
                p.interval,
            ))
        })
        .collect();
    let router = crate::inbound::router(shared.clone());
    let mut running = Running {
        shared: shared.clone(),
        http: None,
        https: None,
        tasks: Vec::new(),
        worker,
        pullers,
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
