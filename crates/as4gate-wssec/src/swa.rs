//! SwA 1.1 Attachment-Content-Signature-Transform digests, computed by us because no XML-DSig
//! engine resolves `cid:` references.
//!
//! The content is canonicalised by MIME type exactly as WSS4J's
//! `AttachmentContentSignatureTransform` does (SwA 1.1 §5.4.2):
//! - `text/xml`, `application/xml` and any `*/*+xml` type: Exclusive XML Canonicalization
//!   without comments. This needs the whole document, so it is buffered up to
//!   [`MAX_XML_ATTACHMENT_BYTES`];
//! - any other `text/*` type: line endings normalised to CRLF (a lone CR or a lone LF becomes
//!   CRLF), streaming;
//! - everything else (the usual AS4 case, `application/gzip` after compression): raw octets,
//!   streaming.
//!
//! The Attachment-Complete-Signature-Transform (which also signs MIME headers) is not used by
//! AS4 and is refused by the verifier.

use aws_lc_rs::digest;

use crate::{WssecError, names};

/// Largest XML attachment we canonicalise: the whole document is held in memory for Exclusive
/// C14N, so this bounds memory per signed XML attachment. AS4 payloads are normally gzip
/// (digested as raw octets, unbounded by this limit).
pub const MAX_XML_ATTACHMENT_BYTES: usize = 16 * 1024 * 1024;

/// How the attachment content is canonicalised before digesting.
#[derive(Debug)]
enum Canonicalization {
    /// Raw octets.
    Octets,
    /// CRLF line-ending normalisation; `after_cr` is true when the last byte seen was CR.
    TextLines { after_cr: bool },
    /// Exclusive C14N of the buffered XML document.
    Xml { buffer: Vec<u8> },
}

/// Streaming digest of one attachment under the SwA content transform.
pub struct AttachmentDigest {
    context: digest::Context,
    canonicalization: Canonicalization,
}

impl std::fmt::Debug for AttachmentDigest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AttachmentDigest")
            .field("canonicalization", &self.canonicalization)
            .finish_non_exhaustive()
    }
}

/// The digest algorithm for an XML-DSig `DigestMethod` URI.
pub(crate) fn digest_algorithm(uri: &str) -> Result<&'static digest::Algorithm, WssecError> {
    match uri {
        names::SHA256 => Ok(&digest::SHA256),
        names::SHA384 => Ok(&digest::SHA384),
        names::SHA512 => Ok(&digest::SHA512),
        other => Err(WssecError::UnsupportedDigestAlgorithm {
            uri: other.to_owned(),
        }),
    }
}

/// The media type of a Content-Type value: lower-cased, parameters removed.
fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn is_xml_media_type(media_type: &str) -> bool {
    media_type == "text/xml" || media_type == "application/xml" || media_type.ends_with("+xml")
}

impl AttachmentDigest {
    /// Start a digest for an attachment with MIME `content_type` (of the decrypted,
    /// decompression-free content as sent) under `digest_alg_uri` (e.g. SHA-256).
    pub fn new(content_type: &str, digest_alg_uri: &str) -> Result<Self, WssecError> {
        let algorithm = digest_algorithm(digest_alg_uri)?;
        let media_type = media_type(content_type);
        let canonicalization = if is_xml_media_type(&media_type) {
            Canonicalization::Xml { buffer: Vec::new() }
        } else if media_type.starts_with("text/") {
            Canonicalization::TextLines { after_cr: false }
        } else {
            Canonicalization::Octets
        };
        Ok(Self {
            context: digest::Context::new(algorithm),
            canonicalization,
        })
    }

    /// Feed the next chunk of attachment content.
    pub fn update(&mut self, chunk: &[u8]) -> Result<(), WssecError> {
        match &mut self.canonicalization {
            Canonicalization::Octets => self.context.update(chunk),
            Canonicalization::TextLines { after_cr } => {
                let mut start = 0;
                for (i, byte) in chunk.iter().enumerate() {
                    match byte {
                        b'\r' => {
                            self.context.update(&chunk[start..i]);
                            self.context.update(b"\r\n");
                            start = i + 1;
                            *after_cr = true;
                        }
                        b'\n' => {
                            self.context.update(&chunk[start..i]);
                            if !*after_cr {
                                self.context.update(b"\r\n");
                            }
                            start = i + 1;
                            *after_cr = false;
                        }
                        _ => *after_cr = false,
                    }
                }
                self.context.update(&chunk[start..]);
            }
            Canonicalization::Xml { buffer } => {
                if buffer.len().saturating_add(chunk.len()) > MAX_XML_ATTACHMENT_BYTES {
                    return Err(WssecError::XmlAttachmentTooLarge {
                        limit: MAX_XML_ATTACHMENT_BYTES,
                    });
                }
                buffer.extend_from_slice(chunk);
            }
        }
        Ok(())
    }

    /// Finish and return the digest value.
    pub fn finish(self) -> Result<Vec<u8>, WssecError> {
        let mut context = self.context;
        if let Canonicalization::Xml { buffer } = self.canonicalization {
            let text = std::str::from_utf8(&buffer)
                .map_err(|e| WssecError::XmlAttachmentMalformed(format!("not UTF-8: {e}")))?;
            let text = text.strip_prefix('\u{feff}').unwrap_or(text);
            if text.contains("<!DOCTYPE") {
                return Err(WssecError::XmlAttachmentMalformed(
                    "document type declarations are refused".into(),
                ));
            }
            let canonical = bergshamra::c14n::canonicalize(
                text,
                bergshamra::c14n::C14nMode::Exclusive,
                None,
                &[] as &[&str],
            )
            .map_err(|e| WssecError::XmlAttachmentMalformed(e.to_string()))?;
            context.update(&canonical);
        }
        Ok(context.finish().as_ref().to_vec())
    }
}

/// Digest a whole attachment held in memory (convenience for signing).
pub(crate) fn digest_bytes(
    content_type: &str,
    digest_alg_uri: &str,
    content: &[u8],
) -> Result<Vec<u8>, WssecError> {
    let mut d = AttachmentDigest::new(content_type, digest_alg_uri)?;
    d.update(content)?;
    d.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256(data: &[u8]) -> Vec<u8> {
        digest::digest(&digest::SHA256, data).as_ref().to_vec()
    }

    fn chunked(content_type: &str, data: &[u8], size: usize) -> Vec<u8> {
        let mut d = AttachmentDigest::new(content_type, names::SHA256).unwrap();
        for c in data.chunks(size.max(1)) {
            d.update(c).unwrap();
        }
        d.finish().unwrap()
    }

    #[test]
    fn octets_are_digested_raw() {
        let data = b"\x1f\x8b\r\n\nbinary";
        assert_eq!(chunked("application/gzip", data, 3), sha256(data));
    }

    #[test]
    fn text_line_endings_become_crlf_across_chunk_boundaries() {
        let input = b"a\nb\r\nc\rd\r";
        let expected = sha256(b"a\r\nb\r\nc\r\nd\r\n");
        for size in 1..=input.len() {
            assert_eq!(chunked("text/plain; charset=utf-8", input, size), expected);
        }
    }

    #[test]
    fn xml_is_exclusive_canonicalised() {
        let input = b"<?xml version=\"1.0\"?>\n<a:r xmlns:a=\"urn:a\" xmlns:b=\"urn:b\"><!-- c --><a:x  y='1'/></a:r>";
        let expected = sha256(b"<a:r xmlns:a=\"urn:a\"><a:x y=\"1\"></a:x></a:r>");
        assert_eq!(chunked("application/xml", input, 7), expected);
        assert_eq!(chunked("application/vnd.x+xml", input, 100), expected);
        assert_eq!(chunked("Text/XML; charset=UTF-8", input, 1), expected);
    }

    #[test]
    fn malformed_xml_and_unknown_digest_are_refused() {
        let mut d = AttachmentDigest::new("text/xml", names::SHA256).unwrap();
        d.update(b"<a>").unwrap();
        assert!(matches!(
            d.finish(),
            Err(WssecError::XmlAttachmentMalformed(_))
        ));
        assert!(matches!(
            AttachmentDigest::new("text/xml", "http://www.w3.org/2000/09/xmldsig#sha1"),
            Err(WssecError::UnsupportedDigestAlgorithm { .. })
        ));
    }
}
