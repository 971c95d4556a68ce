//! Incremental, sans-I/O splitter for a multipart body.
//!
//! The body is pushed in chunks of any size. Each chunk is processed in steps
//! of at most [`PROCESS_STEP`] bytes, so the internal buffer never exceeds
//! `max(header limit, delimiter + padding) + PROCESS_STEP` bytes. Part bodies are
//! streamed to the [`PartSink`] as soon as it is certain they are not the start
//! of a delimiter.
//!
//! Framing rules (RFC 2046 §5.1.1): a delimiter is CRLF `--boundary` (the
//! CRLF belongs to the delimiter; the very first delimiter may also open the
//! body), followed by optional transport padding (space/tab, at most
//! [`MAX_TRANSPORT_PADDING`]) and CRLF, or by `--` for the close delimiter.
//! `--boundary` followed by anything else is part data. The preamble and the
//! epilogue are discarded. A missing close delimiter, zero parts, a header
//! block over the limit and more parts than allowed are EBMS:0007.

use memchr::memmem;

use crate::error::EbmsError;
use crate::limits::Limits;

use super::headers::PartHeaders;
use super::is_valid_boundary;

/// Largest slice of a pushed chunk processed at once (bounds the buffer).
pub const PROCESS_STEP: usize = 8 * 1024;
/// Most transport-padding characters accepted after a boundary.
pub const MAX_TRANSPORT_PADDING: usize = 64;

/// Receives the parts found by [`MultipartSplitter`], in order.
pub trait PartSink {
    /// A new part begins with these headers.
    fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError>;
    /// More body bytes of the current part.
    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError>;
    /// The current part is complete.
    fn part_end(&mut self) -> Result<(), EbmsError>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Preamble,
    Headers,
    Body,
    Epilogue,
}

/// What follows a `CRLF--boundary` candidate.
enum AfterDelimiter {
    NeedMore,
    NotADelimiter,
    /// Opens a part; this many bytes (padding + CRLF) belong to the delimiter line.
    Open(usize),
    /// Close delimiter (`--` consumed).
    Close,
}

/// Splits a multipart body into parts (see the module docs).
#[derive(Debug)]
pub struct MultipartSplitter {
    delimiter: Vec<u8>,
    buf: Vec<u8>,
    state: State,
    parts: usize,
    max_parts: usize,
    max_header_bytes: usize,
    /// How much of `buf` the header-end search has already scanned, so that a header block
    /// arriving in many small chunks is scanned once, not once per chunk.
    header_scanned: usize,
}

impl MultipartSplitter {
    /// A splitter for `boundary` (as given in the Content-Type; RFC 2046 syntax
    /// is checked, EBMS:0007) with the MIME bounds from `limits`.
    pub fn new(boundary: &str, limits: &Limits) -> Result<MultipartSplitter, EbmsError> {
        if !is_valid_boundary(boundary) {
            return Err(EbmsError::mime_inconsistency(format!(
                "invalid MIME boundary {boundary:?}"
            )));
        }
        let mut delimiter = b"\r\n--".to_vec();
        delimiter.extend_from_slice(boundary.as_bytes());
        Ok(MultipartSplitter {
            delimiter,
            // The body may open with the first delimiter without a leading CRLF.
            buf: b"\r\n".to_vec(),
            state: State::Preamble,
            parts: 0,
            max_parts: limits.max_mime_parts,
            max_header_bytes: limits.max_mime_header_bytes,
            header_scanned: 0,
        })
    }

    /// Feeds the next chunk of the body.
    pub fn push(&mut self, chunk: &[u8], sink: &mut impl PartSink) -> Result<(), EbmsError> {
        for step in chunk.chunks(PROCESS_STEP) {
            if self.state == State::Epilogue {
                return Ok(());
            }
            self.buf.extend_from_slice(step);
            self.process(sink)?;
        }
        Ok(())
    }

    /// Ends the body; fails (EBMS:0007) unless the close delimiter was seen.
    pub fn finish(self, _sink: &mut impl PartSink) -> Result<(), EbmsError> {
        match self.state {
            State::Epilogue if self.parts > 0 => Ok(()),
            State::Epilogue => Err(EbmsError::mime_inconsistency(
                "multipart body contains no parts",
            )),
            State::Preamble => Err(EbmsError::mime_inconsistency(
                "multipart body contains no boundary delimiter",
            )),
            State::Headers | State::Body => Err(EbmsError::mime_inconsistency(
                "multipart body ends without the close delimiter",
            )),
        }
    }

    fn process(&mut self, sink: &mut impl PartSink) -> Result<(), EbmsError> {
        loop {
            match self.state {
                State::Epilogue => {
                    self.buf.clear();
                    return Ok(());
                }
                State::Headers => {
                    if !self.headers(sink)? {
                        return Ok(());
                    }
                }
                State::Preamble | State::Body => {
                    if !self.scan(sink)? {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// Looks for the next delimiter; returns false when more input is needed.
    fn scan(&mut self, sink: &mut impl PartSink) -> Result<bool, EbmsError> {
        let in_body = self.state == State::Body;
        let mut from = 0;
        loop {
            let Some(pos) = memmem::find(&self.buf[from..], &self.delimiter).map(|p| p + from)
            else {
                // Keep a tail that may be the start of a delimiter.
                let keep = self.delimiter.len() - 1;
                let emit = self.buf.len().saturating_sub(keep);
                if in_body && emit > 0 {
                    sink.part_data(&self.buf[..emit])?;
                }
                self.buf.drain(..emit);
                return Ok(false);
            };
            match self.after_delimiter(&self.buf[pos + self.delimiter.len()..])? {
                AfterDelimiter::NotADelimiter => from = pos + 1,
                AfterDelimiter::NeedMore => {
                    if in_body && pos > 0 {
                        sink.part_data(&self.buf[..pos])?;
                    }
                    self.buf.drain(..pos);
                    return Ok(false);
                }
                found => {
                    if in_body {
                        if pos > 0 {
                            sink.part_data(&self.buf[..pos])?;
                        }
                        sink.part_end()?;
                    }
                    let consumed = pos
                        + self.delimiter.len()
                        + match found {
                            AfterDelimiter::Open(n) => n,
                            _ => 2,
                        };
                    self.buf.drain(..consumed);
                    if matches!(found, AfterDelimiter::Open(_)) {
                        self.parts += 1;
                        if self.parts > self.max_parts {
                            return Err(EbmsError::mime_inconsistency(format!(
                                "more than {} MIME parts",
                                self.max_parts
                            )));
                        }
                        self.state = State::Headers;
                    } else {
                        self.state = State::Epilogue;
                    }
                    return Ok(true);
                }
            }
        }
    }

    fn after_delimiter(&self, after: &[u8]) -> Result<AfterDelimiter, EbmsError> {
        match after {
            [] | [b'-'] => return Ok(AfterDelimiter::NeedMore),
            [b'-', b'-', ..] => return Ok(AfterDelimiter::Close),
            _ => {}
        }
        let padding = after
            .iter()
            .take_while(|&&b| b == b' ' || b == b'\t')
            .count();
        if padding > MAX_TRANSPORT_PADDING {
            return Err(EbmsError::mime_inconsistency(
                "too much transport padding after a MIME boundary",
            ));
        }
        match &after[padding..] {
            [] | [b'\r'] => Ok(AfterDelimiter::NeedMore),
            [b'\r', b'\n', ..] => Ok(AfterDelimiter::Open(padding + 2)),
            _ => Ok(AfterDelimiter::NotADelimiter),
        }
    }

    /// Reads a part's header block; returns false when more input is needed.
    fn headers(&mut self, sink: &mut impl PartSink) -> Result<bool, EbmsError> {
        let block_end = if self.buf.starts_with(b"\r\n") {
            Some((0, 2))
        } else {
            // Resume 3 bytes back: the terminator may straddle the previous chunk's end.
            let from = self.header_scanned.saturating_sub(3);
            memmem::find(&self.buf[from..], b"\r\n\r\n").map(|p| (from + p, from + p + 4))
        };
        self.header_scanned = self.buf.len();
        match block_end {
            Some((end, consumed)) if consumed <= self.max_header_bytes => {
                let headers = PartHeaders::parse(&self.buf[..end])?;
                self.buf.drain(..consumed);
                self.header_scanned = 0;
                sink.part_start(headers)?;
                self.state = State::Body;
                Ok(true)
            }
            None if self.buf.len() < self.max_header_bytes => Ok(false),
            _ => Err(EbmsError::mime_inconsistency(format!(
                "MIME part header block exceeds {} bytes",
                self.max_header_bytes
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    /// Collects parts in memory (tests only).
    #[derive(Default, Debug, PartialEq)]
    struct Collect {
        parts: Vec<(PartHeaders, Vec<u8>)>,
        open: bool,
    }

    impl PartSink for Collect {
        fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError> {
            assert!(!self.open);
            self.open = true;
            self.parts.push((headers, Vec::new()));
            Ok(())
        }
        fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
            assert!(self.open);
            self.parts.last_mut().unwrap().1.extend_from_slice(data);
            Ok(())
        }
        fn part_end(&mut self) -> Result<(), EbmsError> {
            assert!(self.open);
            self.open = false;
            Ok(())
        }
    }

    fn split(body: &[u8], boundary: &str, chunk: usize) -> Result<Collect, EbmsError> {
        let mut s = MultipartSplitter::new(boundary, &Limits::default())?;
        let mut c = Collect::default();
        for piece in body.chunks(chunk.max(1)) {
            s.push(piece, &mut c)?;
        }
        s.finish(&mut c)?;
        Ok(c)
    }

    const BODY: &[u8] = b"preamble\r\n--b1\r\nContent-ID: <root>\r\n\r\n<x/>\r\n--b1 \t\r\nContent-ID: <p2>\r\n\r\n\r\n--b1x not a boundary\r\n--b\r\n\r\n--b1--\r\nepilogue --b1\r\n";

    #[test]
    fn splits_any_chunking() {
        let whole = split(BODY, "b1", BODY.len()).unwrap();
        assert_eq!(whole.parts.len(), 2);
        assert_eq!(whole.parts[0].0.content_id.as_deref(), Some("root"));
        assert_eq!(whole.parts[0].1, b"<x/>");
        assert_eq!(whole.parts[1].1, b"\r\n--b1x not a boundary\r\n--b\r\n");
        for chunk in 1..BODY.len() {
            assert_eq!(split(BODY, "b1", chunk).unwrap(), whole, "chunk {chunk}");
        }
    }

    #[test]
    fn boundary_at_start_and_empty_headers() {
        let c = split(b"--b\r\n\r\ndata\r\n--b--", "b", 3).unwrap();
        assert_eq!(c.parts.len(), 1);
        assert_eq!(c.parts[0].0, PartHeaders::default());
        assert_eq!(c.parts[0].1, b"data");
    }

    #[test]
    fn refusals() {
        let cases: [(&[u8], &str); 5] = [
            (b"--b\r\n\r\ndata", "without the close delimiter"),
            (b"no delimiter at all", "no boundary delimiter"),
            (b"--b--\r\n", "no parts"),
            (b"--b\r\nContent-Transfer-Encoding: base64\r\n\r\nx\r\n--b--", "not supported"),
            (b"--b     \t                                                                    \r\n", "padding"),
        ];
        for (body, needle) in cases {
            let e = split(body, "b", 1).unwrap_err();
            assert_eq!(e.code, ErrorCode::MimeInconsistency);
            assert!(e.detail.contains(needle), "{}", e.detail);
        }
    }

    #[test]
    fn limits_enforced() {
        let limits = Limits {
            max_mime_parts: 1,
            max_mime_header_bytes: 16,
            ..Limits::default()
        };
        let mut s = MultipartSplitter::new("b", &limits).unwrap();
        let e = s
            .push(
                b"--b\r\n\r\nx\r\n--b\r\n\r\ny\r\n--b--",
                &mut Collect::default(),
            )
            .unwrap_err();
        assert!(e.detail.contains("more than 1 MIME parts"));
        let mut s = MultipartSplitter::new("b", &limits).unwrap();
        let e = s
            .push(
                b"--b\r\nContent-Type: text/plain\r\n\r\n",
                &mut Collect::default(),
            )
            .unwrap_err();
        assert!(e.detail.contains("exceeds 16 bytes"));
        // Without a header terminator the buffer is still bounded.
        let mut s = MultipartSplitter::new("b", &limits).unwrap();
        let mut unterminated = b"--b\r\n".to_vec();
        unterminated.extend([b'a'; 100]);
        let e = s.push(&unterminated, &mut Collect::default()).unwrap_err();
        assert!(e.detail.contains("exceeds"));
        assert!(MultipartSplitter::new("bad boundary ", &limits).is_err());
    }

    #[test]
    fn buffer_stays_bounded() {
        let mut body = b"--b\r\n\r\n".to_vec();
        body.extend(std::iter::repeat_n(b'z', 1_000_000));
        body.extend_from_slice(b"\r\n--b--");
        let mut s = MultipartSplitter::new("b", &Limits::default()).unwrap();
        let mut c = Collect::default();
        s.push(&body, &mut c).unwrap();
        assert!(s.buf.capacity() <= 2 * PROCESS_STEP + 64);
        s.finish(&mut c).unwrap();
        assert_eq!(c.parts[0].1.len(), 1_000_000);
    }
}
