//! Writes the seed corpora of the fuzz targets from messages composed with the gateway's own
//! library (`as4gate::outbound::compose`, the same code `send-sample` and the end-to-end tests
//! use), the committed test PKI and the sample P-Modes — no third-party material.
//!
//! Usage: `make_corpus <corpus dir>`; writes `<dir>/{mime_splitter,envelope_parser,
//! signature_verifier}/<name>`. Every signed seed is verified here with the settings of the
//! `signature_verifier` target and the verdict is printed, so a seed that stopped verifying
//! (a changed signer, say) is noticed when the corpus is regenerated.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use as4gate::outbound::compose::{Composed, Outgoing, OutgoingPayload, SenderKeys, compose};
use as4gate_ebms::error::{EbmsError, ErrorCode};
use as4gate_ebms::mime::{MultipartSplitter, PartHeaders, PartSink};
use as4gate_ebms::model::NrReference;
use as4gate_ebms::signal::{ErrorSignalSpec, ReceiptSpec, build_error, build_receipt};
use as4gate_ebms::{EnvelopeNodes, Limits};
use as4gate_pmode::PMode;
use as4gate_wssec::sign::{SigningIdentity, sign_envelope};
use as4gate_wssec::{TrustAnchors, VerifyRequest};
use time::OffsetDateTime;

#[path = "../../fuzz_targets/verify_fixture.rs"]
mod verify_fixture;

use verify_fixture::{
    CA_PEM, FIXED_ATTACHMENTS, KNOWN_PEMS, Present, VERIFY_AT, carried_by, der, policy,
};

/// The boundary the `mime_splitter` target splits with.
const BOUNDARY: &str = "MIMEBoundary_fuzz";
/// Message time of every seed (the signature target validates at 2026-11-23 12:00 UTC).
const NOW: OffsetDateTime = time::macros::datetime!(2026-11-23 11:00 UTC);

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn pki(rel: &str) -> PathBuf {
    repo().join("test-pki").join(rel)
}

/// A signing identity from `test-pki/<key>.{crt,key}`.
fn identity(key: &str) -> anyhow::Result<SigningIdentity> {
    let cert = as4gate::pem::certificates(&pki(&format!("{key}.crt")))?;
    let der = as4gate::pem::pkcs8_key(&pki(&format!("{key}.key")))?;
    Ok(SigningIdentity::from_pkcs8_der(&der, &cert[0], vec![])?)
}

fn pmode(file: &str) -> anyhow::Result<PMode> {
    PMode::load_file(&repo().join("samples/pmodes").join(file)).map_err(|e| anyhow::anyhow!("{e}"))
}

fn fixed_payloads() -> Vec<OutgoingPayload> {
    FIXED_ATTACHMENTS
        .iter()
        .map(|a| OutgoingPayload {
            content_id: a.content_id.to_owned(),
            mime_type: a.content_type.to_owned(),
            character_set: None,
            content: a.content.to_vec(),
            already_compressed: false,
        })
        .collect()
}

/// blue_gw sends to red_gw under `pmode`.
fn send(
    pmode: &PMode,
    signer: &SigningIdentity,
    message_id: &str,
    payloads: Vec<OutgoingPayload>,
) -> anyhow::Result<Composed> {
    let receiver = as4gate::pem::certificates(&pki("red_gw/rsa.crt"))?.swap_remove(0);
    compose(
        &Outgoing {
            pmode,
            message_id: message_id.to_owned(),
            conversation_id: "fuzz-conversation-1".to_owned(),
            properties: vec![],
            payloads,
            now: NOW,
        },
        &SenderKeys {
            signing: signer,
            receiver_certificate: Some(&receiver),
        },
    )
}

/// Verifies `envelope` as the `signature_verifier` target does; returns the signed references.
fn verify_like_target(envelope: &str) -> anyhow::Result<Vec<NrReference>> {
    let doc = as4gate_ebms::xml::parse(envelope, &Limits::default())?;
    let nodes = EnvelopeNodes::locate(&doc)?;
    let anchors = TrustAnchors::from_der(&[der(CA_PEM)])?;
    let known: Vec<Vec<u8>> = KNOWN_PEMS.iter().map(|pem| der(pem)).collect();
    let verified = as4gate_wssec::verify_envelope(&VerifyRequest {
        doc: &doc,
        nodes: &nodes,
        attachments: &Present(carried_by(envelope)),
        policy: &policy(),
        anchors: &anchors,
        known_certificates: &known,
        now: VERIFY_AT,
    })?;
    let evidence = verified
        .evidence()
        .context("verified without a signature")?;
    Ok(evidence.references.clone())
}

/// Counts the parts the splitter finds.
struct PartCount(usize);

impl PartSink for PartCount {
    fn part_start(&mut self, _: PartHeaders) -> Result<(), EbmsError> {
        self.0 += 1;
        Ok(())
    }
    fn part_data(&mut self, _: &[u8]) -> Result<(), EbmsError> {
        Ok(())
    }
    fn part_end(&mut self) -> Result<(), EbmsError> {
        Ok(())
    }
}

struct Corpus {
    dir: PathBuf,
    total: usize,
}

impl Corpus {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> anyhow::Result<()> {
        let dir = self.dir.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(name), bytes)?;
        self.total += bytes.len();
        println!("{target}/{name}: {} bytes", bytes.len());
        Ok(())
    }

    /// A MIME body for `mime_splitter`: the chunk-size byte, then the multipart body.
    fn mime(&mut self, name: &str, chunk: u8, composed: &Composed) -> anyhow::Result<()> {
        let (content_type, body) = composed.to_mime(BOUNDARY)?;
        if !content_type.contains(BOUNDARY) {
            bail!("unexpected Content-Type {content_type}");
        }
        let mut seed = vec![chunk];
        seed.extend_from_slice(&body);
        self.write_mime(name, &seed, composed.parts.len() + 1)
    }

    /// Writes a `mime_splitter` seed after checking that it splits into `parts` parts.
    fn write_mime(&mut self, name: &str, seed: &[u8], parts: usize) -> anyhow::Result<()> {
        let limits = Limits::default();
        let mut splitter = MultipartSplitter::new(BOUNDARY, &limits)?;
        let mut count = PartCount(0);
        for piece in seed[1..].chunks(usize::from(seed[0]).max(1)) {
            splitter.push(piece, &mut count)?;
        }
        splitter.finish(&mut count)?;
        if count.0 != parts {
            bail!(
                "seed {name} splits into {} parts, expected {parts}",
                count.0
            );
        }
        self.write("mime_splitter", name, seed)
    }

    /// Like [`Corpus::mime`], with a preamble, transport padding after one delimiter and an
    /// epilogue, all of which RFC 2046 allows and the splitter must skip.
    fn mime_framed(&mut self, name: &str, chunk: u8, composed: &Composed) -> anyhow::Result<()> {
        let (_, body) = composed.to_mime(BOUNDARY)?;
        let text = String::from_utf8_lossy(&body);
        let first = format!("--{BOUNDARY}\r\n");
        if !text.starts_with(&first) {
            bail!("the writer no longer opens with the first delimiter");
        }
        let mut framed = vec![chunk];
        framed.extend_from_slice(b"This is a multi-part message in MIME format.\r\n");
        framed.extend_from_slice(format!("--{BOUNDARY} \t \r\n").as_bytes());
        framed.extend_from_slice(&body[first.len()..]);
        framed.extend_from_slice(b"\r\nepilogue, ignored\r\n");
        self.write_mime(name, &framed, composed.parts.len() + 1)
    }

    /// A signed envelope for `signature_verifier` and `envelope_parser`, checked first.
    fn signed(&mut self, name: &str, envelope: &str) -> anyhow::Result<Vec<NrReference>> {
        let references = self.signed_only(name, envelope)?;
        self.write("envelope_parser", name, envelope.as_bytes())?;
        Ok(references)
    }

    /// A signed envelope for `signature_verifier` only, checked first.
    fn signed_only(&mut self, name: &str, envelope: &str) -> anyhow::Result<Vec<NrReference>> {
        let references = verify_like_target(envelope)
            .map_err(|e| anyhow::anyhow!("seed {name} does not verify like the target: {e:?}"))?;
        println!("{name}: verifies, {} references", references.len());
        self.write("signature_verifier", name, envelope.as_bytes())?;
        Ok(references)
    }
}

fn main() -> anyhow::Result<()> {
    let dir = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .context("usage: make_corpus <corpus dir>")?;
    let mut corpus = Corpus { dir, total: 0 };
    let blue = identity("blue_gw/rsa")?;
    let red = identity("red_gw/rsa")?;

    // Signed only: the sample P-Mode without encryption and compression, two attachments.
    let mut sign_only = pmode("blue-to-red.toml")?;
    sign_only.security.encrypt = false;
    sign_only.payload.compress = false;
    let signed = send(&sign_only, &blue, "fuzz-signed@blue_gw", fixed_payloads())?;
    let references = corpus.signed("user_signed.xml", &signed.envelope)?;
    corpus.mime("user_signed_chunk64", 64, &signed)?;

    // Signed and encrypted (uncompressed, so the target's plaintext attachments match).
    let mut encrypt_only = pmode("blue-to-red.toml")?;
    encrypt_only.payload.compress = false;
    let encrypted = send(
        &encrypt_only,
        &blue,
        "fuzz-encrypted@blue_gw",
        fixed_payloads(),
    )?;
    corpus.signed("user_signed_encrypted.xml", &encrypted.envelope)?;

    // The sample P-Mode as is: compressed, signed, encrypted; the sample invoice plus a binary
    // part. Its attachment digests are over gzip bytes the target does not present, so it seeds
    // the MIME splitter and the envelope parser only.
    let sample = pmode("blue-to-red.toml")?;
    let invoice = std::fs::read(repo().join("samples/payloads/invoice.xml"))?;
    let mut payloads = fixed_payloads();
    payloads[0].content = invoice;
    let full = send(&sample, &blue, "fuzz-sample@blue_gw", payloads)?;
    corpus.write(
        "envelope_parser",
        "user_compressed_encrypted.xml",
        full.envelope.as_bytes(),
    )?;
    corpus.mime("user_compressed_encrypted_chunk255", 255, &full)?;
    corpus.mime("user_compressed_encrypted_chunk7", 7, &full)?;

    // Test-service ping: no payload, root part only.
    let ping = send(&pmode("ping.toml")?, &blue, "fuzz-ping@blue_gw", vec![])?;
    corpus.signed("ping.xml", &ping.envelope)?;
    corpus.mime("ping_chunk1", 1, &ping)?;
    corpus.mime_framed("user_signed_preamble_epilogue_chunk13", 13, &signed)?;

    // ECDSA and Ed25519 signers (eDelivery AS4 2.0 algorithms), one attachment each.
    for key in ["ecdsa", "ed25519"] {
        let signer = identity(&format!("blue_gw/{key}"))?;
        let mut payloads = fixed_payloads();
        payloads.truncate(1);
        let composed = send(
            &sign_only,
            &signer,
            &format!("fuzz-{key}@blue_gw"),
            payloads,
        )?;
        corpus.signed_only(&format!("user_signed_{key}.xml"), &composed.envelope)?;
    }

    // red_gw's signed receipt for the signed user message, built as the daemon builds it.
    let receipt = build_receipt(&ReceiptSpec {
        message_id: "fuzz-receipt@red_gw".to_owned(),
        timestamp: as4gate::inbound::process::timestamp(NOW),
        ref_to_message_id: "fuzz-signed@blue_gw".to_owned(),
        references: &references,
    })?;
    corpus.signed("receipt.xml", &sign_envelope(&receipt, &red, &[])?.xml)?;

    // red_gw's signed error signal.
    let error = build_error(&ErrorSignalSpec {
        message_id: "fuzz-error@red_gw".to_owned(),
        timestamp: as4gate::inbound::process::timestamp(NOW),
        ref_to_message_id: Some("fuzz-signed@blue_gw".to_owned()),
        errors: &[EbmsError::new(
            ErrorCode::FailedAuthentication,
            "signer certificate does not chain to a trust anchor",
        )],
    })?;
    corpus.signed("error.xml", &sign_envelope(&error, &red, &[])?.xml)?;

    println!("total {} bytes", corpus.total);
    Ok(())
}
