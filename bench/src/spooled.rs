//! Composing messages with very large payloads (1 GB) into files, never holding the payload in
//! memory: random bytes stream through gzip into a file, the SwA attachment digest is taken
//! over that file, the envelope is built and signed, the file is encrypted (AES-128-GCM) chunk
//! by chunk, and the MIME body is written to its final file.
//!
//! [`as4gate::outbound::compose`] takes payloads as `Vec<u8>` and keeps compressed and
//! encrypted copies in memory (about three times the payload), so this module performs the
//! same steps, in the same order, with the same protocol-crate calls, but on files. The result
//! is checked by the gateway itself: it must answer with a receipt.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::Path;

use anyhow::Context;
use as4gate::outbound::compose::{self, property};
use as4gate_ebms::mime::MultipartWriter;
use as4gate_ebms::model::{PartInfo, UserMessage};
use as4gate_ebms::ns::{ALG_SHA256, COMPRESSION_GZIP};
use as4gate_ebms::signal::build_user_message;
use as4gate_wssec::sign::{AttachmentToSign, sign_envelope};
use as4gate_wssec::swa::AttachmentDigest;
use as4gate_wssec::xmlenc::{
    AttachmentEncryption, ContentKey, ENCRYPTED_PART_CONTENT_TYPE, EncryptedKeyBuilder,
    GcmEncryptor, insert_into_security_header,
};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::messages::{DiskMessage, PAYLOAD_CID, PAYLOAD_MIME_TYPE, Sender, new_boundary};
use crate::payload::RandomReader;

/// Read and write buffer size for the file passes.
const IO_CHUNK: usize = 1024 * 1024;
/// Root part Content-ID, as [`as4gate::outbound::compose::Composed::to_mime`] uses.
const ROOT_CONTENT_ID: &str = "root@as4gate";

/// Composes `count` distinct messages with `payload_bytes` random bytes each into files in
/// `dir`.
pub fn build_all(
    sender: &Sender,
    count: usize,
    payload_bytes: u64,
    dir: &Path,
) -> anyhow::Result<Vec<DiskMessage>> {
    (0..count)
        .map(|i| build_one(sender, payload_bytes, dir, i))
        .collect()
}

fn build_one(
    sender: &Sender,
    payload_bytes: u64,
    dir: &Path,
    index: usize,
) -> anyhow::Result<DiskMessage> {
    let pmode = &sender.pmode;
    anyhow::ensure!(
        pmode.security.sign,
        "on-disk composition needs a signing P-Mode"
    );
    let message_id = sender.new_message_id();
    let gz_path = dir.join(format!("payload-{index}.gz"));
    let cipher_path = dir.join(format!("payload-{index}.enc"));
    let body_path = dir.join(format!("message-{index}.mime"));

    // 1. Compress (or not, per the P-Mode) the random payload into a file.
    let (part_content_type, mut part_path) = if pmode.payload.compress {
        let mut out = BufWriter::with_capacity(IO_CHUNK, File::create(&gz_path)?);
        as4gate_ebms::gzip::gzip_compress(&mut RandomReader::new(payload_bytes), &mut out)?;
        out.flush()?;
        (COMPRESSION_GZIP.to_owned(), gz_path.clone())
    } else {
        let mut out = BufWriter::with_capacity(IO_CHUNK, File::create(&gz_path)?);
        std::io::copy(&mut RandomReader::new(payload_bytes), &mut out)?;
        out.flush()?;
        (PAYLOAD_MIME_TYPE.to_owned(), gz_path.clone())
    };

    // 2. The SwA content-transform digest of the part as it is signed.
    let mut digest = AttachmentDigest::new(&part_content_type, ALG_SHA256)?;
    for_each_chunk(&part_path, |chunk| Ok(digest.update(chunk)?))?;
    let to_sign = AttachmentToSign {
        cid: PAYLOAD_CID.to_owned(),
        sha256_digest: digest.finish()?,
    };

    // 3. The signed envelope.
    let unsigned = build_user_message(&user_message(sender, &message_id))?;
    let mut envelope = sign_envelope(&unsigned, &sender.signing, &[to_sign])?.xml;

    // 4. Encrypt the part to the receiver.
    let mut wire_content_type = part_content_type.clone();
    if pmode.security.encrypt {
        let rng = SystemRandom::new();
        let mut key = [0u8; 16];
        rng.fill(&mut key)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let mut iv = [0u8; 12];
        rng.fill(&mut iv)
            .map_err(|_| anyhow::anyhow!("no randomness"))?;
        let content_key = ContentKey::new(key);
        let mut encryptor = GcmEncryptor::new(content_key.bytes(), &iv)?;
        let mut out = BufWriter::with_capacity(IO_CHUNK, File::create(&cipher_path)?);
        for_each_chunk(&part_path, |chunk| Ok(encryptor.update(chunk, &mut out)?))?;
        encryptor.finish(&mut out)?;
        out.flush()?;
        drop(out);
        std::fs::remove_file(&part_path)?;
        part_path = cipher_path;
        let fragment = EncryptedKeyBuilder::new(&sender.receiver_certificate, "EK-1").build(
            &content_key,
            &[AttachmentEncryption {
                data_id: "ED-1".to_owned(),
                content_id: PAYLOAD_CID.to_owned(),
                mime_type: part_content_type,
            }],
        )?;
        envelope = insert_into_security_header(&envelope, &fragment)?;
        wire_content_type = ENCRYPTED_PART_CONTENT_TYPE.to_owned();
    }

    // 5. The MIME body.
    let out = BufWriter::with_capacity(IO_CHUNK, File::create(&body_path)?);
    let mut writer = MultipartWriter::new(out, &new_boundary(), ROOT_CONTENT_ID)?;
    writer.write_root(envelope.as_bytes())?;
    let mut part = BufReader::with_capacity(IO_CHUNK, File::open(&part_path)?);
    writer.write_attachment(PAYLOAD_CID, &wire_content_type, &mut part)?;
    let content_type = writer.content_type();
    writer.finish()?.flush()?;
    std::fs::remove_file(&part_path)?;
    let len = std::fs::metadata(&body_path)?.len();
    Ok(DiskMessage {
        message_id,
        content_type,
        path: body_path,
        len,
    })
}

fn for_each_chunk(
    path: &Path,
    mut f: impl FnMut(&[u8]) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut buf = vec![0u8; IO_CHUNK];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        f(&buf[..n])?;
    }
}

/// The UserMessage [`as4gate::outbound::compose::compose`] builds for one payload.
fn user_message(sender: &Sender, message_id: &str) -> UserMessage {
    let pmode = &sender.pmode;
    let mut properties = vec![property("MimeType", PAYLOAD_MIME_TYPE)];
    if pmode.payload.compress {
        properties.push(property("CompressionType", COMPRESSION_GZIP));
    }
    compose::user_message(
        pmode,
        message_id,
        &uuid::Uuid::new_v4().to_string(),
        Vec::new(),
        vec![PartInfo {
            href: Some(format!("cid:{PAYLOAD_CID}")),
            properties,
        }],
        time::OffsetDateTime::now_utc(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn on_disk_message_has_the_same_shape_as_composed_ones() {
        let repo = PathBuf::from(crate::REPO);
        let sender = Sender::blue(&repo, &repo.join("samples/pmodes/blue-to-red.toml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let built = build_all(&sender, 1, 300_000, dir.path()).unwrap();
        let m = &built[0];
        assert!(m.len > 300_000);
        assert_eq!(std::fs::metadata(&m.path).unwrap().len(), m.len);
        // Only the final body is left behind.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
        let body = std::fs::read(&m.path).unwrap();
        let head = String::from_utf8_lossy(&body[..body.len().min(16 * 1024)]);
        assert!(head.contains(&m.message_id));
        assert!(head.contains("EncryptedKey"));
        assert!(head.contains(&format!("cid:{PAYLOAD_CID}")));
    }
}
