//! Streaming multipart request bodies (`multipart/form-data` for REST, `multipart/related`
//! for SOAP with attachments).
//!
//! A [`Multipart`] is a list of segments: small byte strings (boundaries, part headers,
//! metadata) and payloads, which are either kept in memory already (inline payloads from the
//! database row), open blob files read in [`FILE_CHUNK`] pieces while the request is sent, or
//! parts staged in a spool by the AS4 composer ([`StagedBody`]), read the same way and
//! encrypted (AES-128-GCM) as they go out when the P-Mode encrypts. A large payload is thus
//! never loaded whole. The total length is known before sending (blob files are checked
//! against their recorded size when opened; an encrypted part is its staged length plus the
//! GCM IV and tag), so requests carry a `Content-Length`.
//!
//! The body is produced once: a request the transport sends again (one a closed idle
//! connection handed back unwritten) carries the same, still unread body.
//!
//! Header values built from message data (content ids, MIME types) come from the partner's
//! message and are sanitised here: a MIME type that is not a plain `type/subtype[; params]`
//! becomes `application/octet-stream`, and quoted strings are escaped as RFC 7578 §4.2 and
//! HTML do (`"` → `%22`, CR → `%0D`, LF → `%0A`).

use std::io::{self, Read, Seek};

use as4gate_wssec::xmlenc::{GCM_IV_LEN, GCM_TAG_LEN, GcmEncryptor};
use aws_lc_rs::digest;
use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt};
use http_body_util::BodyExt;
use http_body_util::StreamBody;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::Frame;
use tokio::io::AsyncReadExt;

use super::retry::ExchangeError;
use crate::spool::Spooled;
use crate::store::blobs::hex;
use crate::store::{BlobStore, InboundRecord, StoredPayload};

/// Size of one read from a blob file while streaming it.
pub const FILE_CHUNK: usize = 64 * 1024;

/// The MIME type used when a payload has none or an unusable one.
pub const FALLBACK_MIME_TYPE: &str = "application/octet-stream";

/// The bytes of one payload, ready to stream.
#[derive(Debug)]
pub enum PayloadBody {
    /// Bytes kept in the database row.
    Inline(Bytes),
    /// An open blob file of `len` bytes, checked against its SHA-256 while it is sent.
    File {
        /// The open file.
        file: tokio::fs::File,
        /// Its length (checked against the recorded size).
        len: u64,
        /// Content-ID of the payload, for error reports.
        content_id: String,
        /// The blob id: lower-case hex SHA-256 the bytes must have.
        sha256: String,
    },
    /// A composed AS4 part staged in a spool (boxed: the GCM state is large).
    Staged(Box<StagedBody>),
}

/// A composed AS4 part staged in a spool (memory or an anonymous temporary file): its bytes
/// as they go on the wire before encryption, and, when the P-Mode encrypts, the AES-128-GCM
/// encryptor (fresh key and IV) that turns them into `IV || ciphertext || tag` as they are
/// written.
pub struct StagedBody {
    /// The staged bytes.
    pub content: Spooled,
    /// Encrypts the bytes on the way out; `None` sends them as they are.
    pub cipher: Option<GcmEncryptor>,
}

impl std::fmt::Debug for StagedBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StagedBody")
            .field("content", &self.content)
            .field("encrypted", &self.cipher.is_some())
            .finish()
    }
}

impl StagedBody {
    /// Length on the wire: the staged bytes, plus IV and tag when encrypted.
    pub fn wire_len(&self) -> u64 {
        let overhead = if self.cipher.is_some() {
            (GCM_IV_LEN + GCM_TAG_LEN) as u64
        } else {
            0
        };
        self.content.len() + overhead
    }

    /// The wire bytes in one buffer (for a message composed to be held in memory).
    pub fn into_wire_bytes(self) -> io::Result<Vec<u8>> {
        let plain = match self.content {
            Spooled::Memory(bytes) => bytes,
            spilled => {
                let mut bytes = Vec::new();
                spilled.reader()?.read_to_end(&mut bytes)?;
                bytes
            }
        };
        let Some(mut cipher) = self.cipher else {
            return Ok(plain);
        };
        let mut out = Vec::with_capacity(plain.len() + GCM_IV_LEN + GCM_TAG_LEN);
        cipher.update(&plain, &mut out).map_err(io::Error::other)?;
        cipher.finish(&mut out).map_err(io::Error::other)?;
        Ok(out)
    }
}

/// A blob file did not hold the bytes its id promises (digest mismatch or short file).
/// Raised inside the body stream, so the request is cut off before the back-end sees a
/// complete message; [`super::transport`] turns it into [`ExchangeError::Payload`].
#[derive(Debug, thiserror::Error)]
#[error("blob of payload {content_id} is corrupted: {detail}")]
pub struct CorruptBlob {
    /// Content-ID of the payload.
    pub content_id: String,
    /// What did not match.
    pub detail: String,
}

impl CorruptBlob {
    fn into_io(self) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, self)
    }
}

impl PayloadBody {
    fn len(&self) -> u64 {
        match self {
            PayloadBody::Inline(b) => b.len() as u64,
            PayloadBody::File { len, .. } => *len,
            PayloadBody::Staged(staged) => staged.wire_len(),
        }
    }
}

/// Opens every payload of `message` for streaming, in PartInfo order.
pub async fn open_payloads(
    message: &InboundRecord,
    blobs: &BlobStore,
) -> Result<Vec<PayloadBody>, ExchangeError> {
    let mut out = Vec::with_capacity(message.payloads.len());
    for payload in &message.payloads {
        out.push(open_payload(payload, blobs).await?);
    }
    Ok(out)
}

async fn open_payload(
    payload: &StoredPayload,
    blobs: &BlobStore,
) -> Result<PayloadBody, ExchangeError> {
    if let Some(bytes) = &payload.inline {
        return Ok(PayloadBody::Inline(Bytes::from(bytes.clone())));
    }
    let permanent = |source: io::Error| ExchangeError::Payload {
        content_id: payload.content_id.clone(),
        source,
    };
    let path = blobs.path(&payload.blob.id).map_err(permanent)?;
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => permanent(e),
            _ => ExchangeError::PayloadIo {
                content_id: payload.content_id.clone(),
                source: e,
            },
        })?;
    let len = file
        .metadata()
        .await
        .map_err(|e| ExchangeError::PayloadIo {
            content_id: payload.content_id.clone(),
            source: e,
        })?
        .len();
    if len != payload.blob.size {
        return Err(permanent(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "blob {} is {len} bytes, the record says {}",
                payload.blob.id, payload.blob.size
            ),
        )));
    }
    Ok(PayloadBody::File {
        file,
        len,
        content_id: payload.content_id.clone(),
        sha256: payload.blob.id.clone(),
    })
}

/// One piece of a multipart body.
#[derive(Debug)]
enum Segment {
    Bytes(Bytes),
    Payload(PayloadBody),
}

/// A multipart body being assembled.
#[derive(Debug)]
pub struct Multipart {
    boundary: String,
    segments: Vec<Segment>,
}

impl Multipart {
    /// An empty body with a fresh random boundary.
    pub fn new() -> Multipart {
        Multipart {
            boundary: format!("as4gate-{}", uuid::Uuid::new_v4().simple()),
            segments: Vec::new(),
        }
    }

    /// The boundary (for the `Content-Type` header).
    pub fn boundary(&self) -> &str {
        &self.boundary
    }

    /// Appends a part with these header lines (already sanitised, no CRLF) and bytes.
    pub fn bytes_part(&mut self, headers: &[String], body: Bytes) {
        self.open_part(headers);
        self.segments.push(Segment::Bytes(body));
    }

    /// Appends a part with these header lines and a payload streamed from the store.
    pub fn payload_part(&mut self, headers: &[String], body: PayloadBody) {
        self.open_part(headers);
        self.segments.push(Segment::Payload(body));
    }

    fn open_part(&mut self, headers: &[String]) {
        let mut head = format!("--{}\r\n", self.boundary);
        if !self.segments.is_empty() {
            head.insert_str(0, "\r\n");
        }
        for h in headers {
            head.push_str(h);
            head.push_str("\r\n");
        }
        head.push_str("\r\n");
        self.segments.push(Segment::Bytes(Bytes::from(head)));
    }

    /// Closes the body; returns its exact length and the streaming body.
    pub fn finish(mut self) -> (u64, UnsyncBoxBody<Bytes, io::Error>) {
        self.segments.push(Segment::Bytes(Bytes::from(format!(
            "\r\n--{}--\r\n",
            self.boundary
        ))));
        let len = self
            .segments
            .iter()
            .map(|s| match s {
                Segment::Bytes(b) => b.len() as u64,
                Segment::Payload(p) => p.len(),
            })
            .sum();
        let frames = stream::iter(self.segments)
            .flat_map(segment_stream)
            .map(|chunk| chunk.map(Frame::data));
        (len, BodyExt::boxed_unsync(StreamBody::new(frames)))
    }
}

impl Default for Multipart {
    fn default() -> Self {
        Multipart::new()
    }
}

fn segment_stream(segment: Segment) -> BoxStream<'static, io::Result<Bytes>> {
    match segment {
        Segment::Bytes(b) | Segment::Payload(PayloadBody::Inline(b)) => {
            stream::once(async move { Ok(b) }).boxed()
        }
        Segment::Payload(PayloadBody::File {
            file,
            len,
            content_id,
            sha256,
        }) => chunks(PartChunks {
            plain: Plain::File(FileChunks {
                file,
                left: len,
                blob: Some(BlobCheck {
                    hasher: Some(digest::Context::new(&digest::SHA256)),
                    content_id,
                    sha256,
                }),
            }),
            cipher: None,
        }),
        Segment::Payload(PayloadBody::Staged(staged)) => {
            let StagedBody { content, cipher } = *staged;
            let plain = match content {
                Spooled::Memory(bytes) => Plain::Memory(Bytes::from(bytes)),
                Spooled::File { mut file, len } => match file.rewind() {
                    Ok(()) => Plain::File(FileChunks {
                        file: tokio::fs::File::from_std(file),
                        left: len,
                        blob: None,
                    }),
                    Err(e) => return stream::once(async move { Err(e) }).boxed(),
                },
            };
            chunks(PartChunks { plain, cipher })
        }
    }
}

/// The chunks of a part as a stream.
fn chunks(source: PartChunks) -> BoxStream<'static, io::Result<Bytes>> {
    stream::try_unfold(source, |mut s| async move {
        match s.next_chunk().await? {
            Some(chunk) => Ok(Some((chunk, s))),
            None => Ok(None),
        }
    })
    .boxed()
}

/// A file being streamed: what is left to read and, for a blob, the digest to check.
struct FileChunks {
    file: tokio::fs::File,
    left: u64,
    blob: Option<BlobCheck>,
}

/// The running digest of a blob file and the id it must match.
struct BlobCheck {
    /// `None` once the digest has been checked.
    hasher: Option<digest::Context>,
    content_id: String,
    sha256: String,
}

impl BlobCheck {
    fn corrupt(&self, detail: String) -> io::Error {
        CorruptBlob {
            content_id: self.content_id.clone(),
            detail,
        }
        .into_io()
    }
}

impl FileChunks {
    /// The next chunk; `None` at the end, after a blob's digest matched.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        if self.left == 0 {
            if let Some(blob) = &mut self.blob
                && let Some(hasher) = blob.hasher.take()
            {
                let actual = hex(hasher.finish().as_ref());
                if actual != blob.sha256 {
                    return Err(blob.corrupt(format!("SHA-256 is {actual}")));
                }
            }
            return Ok(None);
        }
        let want = usize::try_from(self.left)
            .unwrap_or(FILE_CHUNK)
            .min(FILE_CHUNK);
        let mut buf = vec![0u8; want];
        let n = self.file.read(&mut buf).await?;
        if n == 0 {
            let detail = format!("file ends {} bytes early", self.left);
            return Err(match &self.blob {
                Some(blob) => blob.corrupt(detail),
                None => io::Error::new(io::ErrorKind::UnexpectedEof, detail),
            });
        }
        buf.truncate(n);
        if let Some(hasher) = self.blob.as_mut().and_then(|b| b.hasher.as_mut()) {
            hasher.update(&buf);
        }
        self.left -= n as u64;
        Ok(Some(Bytes::from(buf)))
    }
}

/// The plain bytes of a part.
enum Plain {
    /// In memory; emptied when handed out.
    Memory(Bytes),
    File(FileChunks),
}

/// A part being streamed, encrypted on the way when it has a cipher.
struct PartChunks {
    plain: Plain,
    /// `None` when not encrypting, or once the tag has been written.
    cipher: Option<GcmEncryptor>,
}

impl PartChunks {
    /// The next chunk; `None` at the end.
    async fn next_chunk(&mut self) -> io::Result<Option<Bytes>> {
        let plain = match &mut self.plain {
            Plain::Memory(bytes) => Some(std::mem::take(bytes)).filter(|b| !b.is_empty()),
            Plain::File(file) => file.next_chunk().await?,
        };
        let Some(cipher) = &mut self.cipher else {
            return Ok(plain);
        };
        let mut out =
            Vec::with_capacity(plain.as_ref().map_or(0, Bytes::len) + GCM_IV_LEN + GCM_TAG_LEN);
        match plain {
            Some(plain) => cipher.update(&plain, &mut out),
            None => self.cipher.take().map_or(Ok(()), |c| c.finish(&mut out)),
        }
        .map_err(io::Error::other)?;
        Ok(Some(Bytes::from(out)))
    }
}

/// `value` as a MIME type header value, or [`FALLBACK_MIME_TYPE`] when it is missing or
/// not a plain `type/subtype[; params]` of visible ASCII.
pub fn safe_mime_type(value: Option<&str>) -> &str {
    let Some(value) = value.map(str::trim) else {
        return FALLBACK_MIME_TYPE;
    };
    let media = value.split(';').next().unwrap_or_default().trim();
    let token = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"!#$&-^_.+".contains(&b))
    };
    let plain = value.bytes().all(|b| (b' '..=b'~').contains(&b))
        && media
            .split_once('/')
            .is_some_and(|(t, s)| token(t) && token(s));
    if plain { value } else { FALLBACK_MIME_TYPE }
}

/// `value` escaped for a quoted-string header parameter (RFC 7578 §4.2 style).
pub fn quoted(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("%22"),
            '\r' => out.push_str("%0D"),
            '\n' => out.push_str("%0A"),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("%{:02X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `value` as a `Content-ID` header (`<id>`), with characters that could break the header
/// (controls, angle brackets, CR/LF) percent-encoded.
pub fn content_id_header(value: &str) -> String {
    let mut out = String::from("Content-ID: <");
    for c in value.chars() {
        if c.is_control() || c == '<' || c == '>' {
            out.push_str(&format!("%{:02X}", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    out.push('>');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn body_length_matches_streamed_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let sha256 = hex(digest::digest(&digest::SHA256, &content).as_ref());
        let mut m = Multipart::new();
        m.bytes_part(&["X-A: 1".into()], Bytes::from_static(b"hello"));
        m.payload_part(
            &["X-B: 2".into()],
            PayloadBody::File {
                file,
                len: content.len() as u64,
                content_id: "c".into(),
                sha256,
            },
        );
        let boundary = m.boundary().to_owned();
        let (len, body) = m.finish();
        let bytes = body.collect().await.unwrap().to_bytes();
        assert_eq!(bytes.len() as u64, len);
        let head = format!("--{boundary}\r\nX-A: 1\r\n\r\nhello\r\n--{boundary}\r\nX-B: 2\r\n\r\n");
        assert!(bytes.starts_with(head.as_bytes()));
        assert_eq!(&bytes[head.len()..head.len() + content.len()], &content[..]);
        assert!(bytes.ends_with(format!("\r\n--{boundary}--\r\n").as_bytes()));
    }

    #[tokio::test]
    async fn staged_parts_stream_as_in_memory_and_decrypt() {
        use std::io::Write;

        use as4gate_wssec::xmlenc::GcmDecryptor;

        use crate::spool::SpoolWriter;

        let (key, iv) = ([7u8; 16], [9u8; 12]);
        let sealed = |content: Spooled| StagedBody {
            content,
            cipher: Some(GcmEncryptor::new(&key, &iv).unwrap()),
        };
        let content: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
        let dir = tempfile::tempdir().unwrap();
        let spill = || {
            let mut w = SpoolWriter::new(dir.path(), 1000);
            w.write_all(&content).unwrap();
            let spilled = w.finish().unwrap();
            assert!(matches!(spilled, Spooled::File { .. }));
            spilled
        };
        let expected = sealed(Spooled::Memory(content.clone()))
            .into_wire_bytes()
            .unwrap();
        assert_eq!(expected.len(), content.len() + GCM_IV_LEN + GCM_TAG_LEN);
        assert_eq!(&expected[..GCM_IV_LEN], &iv);
        let mut decryptor = GcmDecryptor::new(&key);
        let mut plain = Vec::new();
        decryptor.update(&expected, &mut plain).unwrap();
        decryptor.finish().unwrap();
        assert_eq!(plain, content);

        let parts = [
            (sealed(spill()), expected.clone()),
            (sealed(Spooled::Memory(content.clone())), expected),
            (
                StagedBody {
                    content: spill(),
                    cipher: None,
                },
                content.clone(),
            ),
            (sealed(Spooled::Memory(Vec::new())), {
                let mut empty = Vec::new();
                GcmEncryptor::new(&key, &iv)
                    .unwrap()
                    .finish(&mut empty)
                    .unwrap();
                empty
            }),
        ];
        let mut m = Multipart::new();
        let mut wanted = Vec::new();
        for (i, (staged, bytes)) in parts.into_iter().enumerate() {
            let header = format!("X-Part: {i}");
            assert_eq!(staged.wire_len(), bytes.len() as u64);
            m.payload_part(
                std::slice::from_ref(&header),
                PayloadBody::Staged(Box::new(staged)),
            );
            wanted.push((header, bytes));
        }
        let (len, body) = m.finish();
        let streamed = body.collect().await.unwrap().to_bytes();
        assert_eq!(streamed.len() as u64, len);
        let mut at = 0;
        for (header, bytes) in wanted {
            let head = format!("{header}\r\n\r\n");
            at += find(&streamed[at..], head.as_bytes()) + head.len();
            assert_eq!(&streamed[at..at + bytes.len()], &bytes[..], "{header}");
            at += bytes.len();
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> usize {
        haystack
            .windows(needle.len())
            .position(|w| w == needle)
            .unwrap()
    }

    /// Streams a 3-byte file ("abc") declared as `len` bytes with a wrong digest; the error.
    async fn stream_of_abc_declared_as(len: u64) -> io::Error {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"abc").unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let mut m = Multipart::new();
        m.payload_part(
            &[],
            PayloadBody::File {
                file,
                len,
                content_id: "c".into(),
                sha256: "00".repeat(32),
            },
        );
        let (_, body) = m.finish();
        body.collect().await.unwrap_err()
    }

    #[tokio::test]
    async fn short_file_fails_the_stream() {
        let err = stream_of_abc_declared_as(10).await;
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("ends 7 bytes early"), "{err}");
    }

    #[tokio::test]
    async fn digest_mismatch_fails_the_stream_at_the_end() {
        let err = stream_of_abc_declared_as(3).await;
        let corrupt = err
            .get_ref()
            .unwrap()
            .downcast_ref::<CorruptBlob>()
            .unwrap();
        assert!(
            corrupt.detail.starts_with("SHA-256 is ba7816bf"),
            "{corrupt}"
        );
    }

    #[test]
    fn header_values_are_sanitised() {
        assert_eq!(safe_mime_type(Some("application/xml")), "application/xml");
        assert_eq!(
            safe_mime_type(Some("text/plain; charset=utf-8")),
            "text/plain; charset=utf-8"
        );
        assert_eq!(
            safe_mime_type(Some("text/plain\r\nX-Evil: 1")),
            FALLBACK_MIME_TYPE
        );
        assert_eq!(safe_mime_type(Some("notatype")), FALLBACK_MIME_TYPE);
        assert_eq!(safe_mime_type(None), FALLBACK_MIME_TYPE);
        assert_eq!(quoted("a\"b\r\nc"), "\"a%22b%0D%0Ac\"");
        assert_eq!(
            content_id_header("p1@x>\r\n"),
            "Content-ID: <p1@x%3E%0D%0A>"
        );
    }
}
