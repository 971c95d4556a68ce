//! Request intake: turns the HTTP body into the SOAP envelope bytes and the attachment parts.
//!
//! A `multipart/related` body is split as it streams in ([`as4gate_ebms::mime`]); the root part
//! is kept in memory (bounded by `max_envelope_bytes`) and each attachment is kept in memory up
//! to the spool threshold, then spilled to a temporary file ([`crate::spool`]), so memory
//! does not grow with attachment size. A single-part `application/soap+xml` body is the
//! envelope itself.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use as4gate_ebms::error::{EbmsError, ErrorCode};
use as4gate_ebms::limits::Limits;
use as4gate_ebms::mime::{MultipartRelated, MultipartSplitter, PartHeaders, PartSink};

use crate::spool::{SpoolWriter, Spooled};

/// One received attachment part.
#[derive(Debug)]
pub struct Attachment {
    /// Content-ID without angle brackets.
    pub content_id: String,
    /// Content-Type header as received.
    pub content_type: String,
    /// The part body.
    pub content: Spooled,
}

/// The split request.
#[derive(Debug)]
pub struct Received {
    /// The SOAP envelope bytes.
    pub envelope: Vec<u8>,
    /// Attachment parts in wire order.
    pub attachments: Vec<Attachment>,
}

/// Feeds body chunks into the right splitter.
pub enum Intake {
    /// `application/soap+xml`: the body is the envelope.
    Single {
        /// Envelope bytes so far.
        envelope: Vec<u8>,
        /// Cap on the envelope size.
        max: usize,
    },
    /// `multipart/related`.
    Multipart(Box<MultipartIntake>),
}

/// The state of a multipart intake.
pub struct MultipartIntake {
    splitter: MultipartSplitter,
    sink: Collector,
}

struct Collector {
    start: Option<String>,
    max_envelope: usize,
    spool_dir: PathBuf,
    threshold: usize,
    root: Option<Vec<u8>>,
    current: Option<(PartHeaders, CurrentPart)>,
    attachments: Vec<Attachment>,
    seen_parts: usize,
}

enum CurrentPart {
    Root(Vec<u8>),
    Attachment(SpoolWriter),
}

fn limit_error(detail: String) -> EbmsError {
    EbmsError::new(ErrorCode::Other, detail)
}

impl Intake {
    /// Chooses the intake for a request's `Content-Type`.
    pub fn new(
        content_type: &str,
        limits: &Limits,
        spool_dir: &Path,
        threshold: usize,
    ) -> Result<Intake, EbmsError> {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "application/soap+xml" => Ok(Intake::Single {
                envelope: Vec::new(),
                max: limits.max_envelope_bytes,
            }),
            "multipart/related" => {
                let related = MultipartRelated::parse(content_type)?;
                Ok(Intake::Multipart(Box::new(MultipartIntake {
                    splitter: MultipartSplitter::new(&related.boundary, limits)?,
                    sink: Collector {
                        start: related.start,
                        max_envelope: limits.max_envelope_bytes,
                        spool_dir: spool_dir.to_owned(),
                        threshold,
                        root: None,
                        current: None,
                        attachments: Vec::new(),
                        seen_parts: 0,
                    },
                })))
            }
            "text/xml" => Err(EbmsError::new(
                ErrorCode::Other,
                "SOAP 1.1 (text/xml) is not supported: AS4 requires SOAP 1.2 (application/soap+xml)",
            )),
            other => Err(EbmsError::new(
                ErrorCode::Other,
                format!(
                    "unsupported Content-Type {other:?}: expected application/soap+xml or multipart/related"
                ),
            )),
        }
    }

    /// Feeds the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), EbmsError> {
        match self {
            Intake::Single { envelope, max } => {
                if envelope.len() + chunk.len() > *max {
                    return Err(limit_error(format!(
                        "SOAP envelope larger than limits.max_envelope_bytes ({max} bytes)"
                    )));
                }
                envelope.extend_from_slice(chunk);
                Ok(())
            }
            Intake::Multipart(m) => m.splitter.push(chunk, &mut m.sink),
        }
    }

    /// Ends the body and returns the envelope and attachments.
    pub fn finish(self) -> Result<Received, EbmsError> {
        match self {
            Intake::Single { envelope, .. } => Ok(Received {
                envelope,
                attachments: Vec::new(),
            }),
            Intake::Multipart(m) => {
                let MultipartIntake { splitter, mut sink } = *m;
                splitter.finish(&mut sink)?;
                let envelope = sink.root.ok_or_else(|| {
                    EbmsError::new(
                        ErrorCode::InvalidHeader,
                        "multipart/related message without its root (SOAP) part",
                    )
                })?;
                Ok(Received {
                    envelope,
                    attachments: sink.attachments,
                })
            }
        }
    }
}

impl PartSink for Collector {
    fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError> {
        // The root is the part named by `start`, or the first part when there is no `start`.
        let is_root = match (&self.start, &headers.content_id) {
            (Some(start), Some(id)) => start.trim_matches(['<', '>']) == id,
            (Some(_), None) => false,
            (None, _) => self.seen_parts == 0,
        };
        self.seen_parts += 1;
        let part = if is_root {
            if self.root.is_some() {
                return Err(EbmsError::new(
                    ErrorCode::InvalidHeader,
                    "two MIME parts claim to be the SOAP root part",
                ));
            }
            CurrentPart::Root(Vec::new())
        } else {
            CurrentPart::Attachment(SpoolWriter::new(&self.spool_dir, self.threshold))
        };
        self.current = Some((headers, part));
        Ok(())
    }

    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
        match &mut self.current {
            Some((_, CurrentPart::Root(buf))) => {
                if buf.len() + data.len() > self.max_envelope {
                    return Err(limit_error(format!(
                        "SOAP envelope larger than limits.max_envelope_bytes ({} bytes)",
                        self.max_envelope
                    )));
                }
                buf.extend_from_slice(data);
                Ok(())
            }
            Some((_, CurrentPart::Attachment(w))) => w.write_all(data).map_err(spool_error),
            None => Err(EbmsError::new(ErrorCode::Other, "MIME data outside a part")),
        }
    }

    fn part_end(&mut self) -> Result<(), EbmsError> {
        match self.current.take() {
            Some((_, CurrentPart::Root(buf))) => {
                self.root = Some(buf);
                Ok(())
            }
            Some((headers, CurrentPart::Attachment(w))) => {
                let content_id = headers.content_id.ok_or_else(|| {
                    EbmsError::new(
                        ErrorCode::ValueInconsistent,
                        "attachment MIME part without a Content-ID",
                    )
                })?;
                if self.attachments.iter().any(|a| a.content_id == content_id) {
                    return Err(EbmsError::new(
                        ErrorCode::ValueInconsistent,
                        format!("two MIME parts with Content-ID <{content_id}>"),
                    ));
                }
                self.attachments.push(Attachment {
                    content_id,
                    content_type: headers
                        .content_type
                        .unwrap_or_else(|| "application/octet-stream".into()),
                    content: w.finish().map_err(spool_error)?,
                });
                Ok(())
            }
            None => Ok(()),
        }
    }
}

fn spool_error(e: io::Error) -> EbmsError {
    // A local disk problem, not the sender's fault; reported as a processing failure.
    EbmsError::new(ErrorCode::Other, format!("cannot spool attachment: {e}"))
}
