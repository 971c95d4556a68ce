//! Writing an outbound multipart/related SwA body.
//!
//! Sans-I/O in the sense that matters here: the caller supplies the boundary
//! (it must not occur in any part; use a fresh random value) and the Content-IDs;
//! bytes go to any `std::io::Write`, attachment bodies stream from any
//! `std::io::Read`. Header values containing CR or LF, an invalid boundary or an
//! attachment written before the root part are refused with
//! `io::ErrorKind::InvalidInput`.
//!
//! A caller that assembles the body some other way (an asynchronous stream) frames
//! the parts with [`related_content_type`], [`root_header_lines`] and
//! [`part_header_lines`], the pieces [`MultipartWriter`] is made of: each part is
//! `--boundary CRLF`, its header lines each ended by CRLF, an empty line and the
//! body; parts after the first are preceded by CRLF, and the body ends with
//! `CRLF --boundary-- CRLF`.

use std::io::{self, Read, Write};

use crate::ns;

use super::is_valid_boundary;

/// Streams a multipart/related body: the SOAP root part first, then attachments.
#[derive(Debug)]
pub struct MultipartWriter<W: Write> {
    out: W,
    boundary: String,
    root_content_id: String,
    root_written: bool,
}

impl<W: Write> MultipartWriter<W> {
    /// A writer with `boundary` whose root part will carry `root_content_id`
    /// (without angle brackets).
    pub fn new(out: W, boundary: &str, root_content_id: &str) -> io::Result<Self> {
        if !is_valid_boundary(boundary) {
            return Err(invalid(format!("invalid MIME boundary {boundary:?}")));
        }
        check_header_value(root_content_id)?;
        Ok(MultipartWriter {
            out,
            boundary: boundary.to_owned(),
            root_content_id: root_content_id.to_owned(),
            root_written: false,
        })
    }

    /// The HTTP `Content-Type` to send with this body.
    pub fn content_type(&self) -> String {
        related_content_type(&self.boundary, &self.root_content_id)
    }

    /// Writes the root part (`application/soap+xml; charset=UTF-8`).
    pub fn write_root(&mut self, envelope: &[u8]) -> io::Result<()> {
        if self.root_written {
            return Err(invalid("root part written twice".into()));
        }
        let lines = root_header_lines(&self.root_content_id)?;
        self.part_header(&lines)?;
        self.out.write_all(envelope)?;
        self.root_written = true;
        Ok(())
    }

    /// Writes one attachment part, streaming its body; returns the body length.
    pub fn write_attachment(
        &mut self,
        content_id: &str,
        content_type: &str,
        body: &mut impl Read,
    ) -> io::Result<u64> {
        if !self.root_written {
            return Err(invalid("attachment written before the root part".into()));
        }
        let lines = part_header_lines(content_id, content_type)?;
        self.part_header(&lines)?;
        io::copy(body, &mut self.out)
    }

    /// Writes the close delimiter and returns the inner writer.
    pub fn finish(mut self) -> io::Result<W> {
        if !self.root_written {
            return Err(invalid("multipart body without a root part".into()));
        }
        write!(self.out, "\r\n--{}--\r\n", self.boundary)?;
        Ok(self.out)
    }

    fn part_header(&mut self, lines: &[String]) -> io::Result<()> {
        let lead = if self.root_written { "\r\n" } else { "" };
        write!(self.out, "{lead}--{}\r\n", self.boundary)?;
        for line in lines {
            write!(self.out, "{line}\r\n")?;
        }
        self.out.write_all(b"\r\n")
    }
}

/// The HTTP `Content-Type` of a body with `boundary` whose root part (the SOAP 1.2
/// envelope) has Content-ID `root_content_id` (without angle brackets).
pub fn related_content_type(boundary: &str, root_content_id: &str) -> String {
    format!(
        "multipart/related; boundary=\"{boundary}\"; type=\"{}\"; start=\"<{root_content_id}>\"",
        ns::SOAP12_MEDIA_TYPE,
    )
}

/// The header lines of the root part (`application/soap+xml; charset=UTF-8`), without
/// line ends.
pub fn root_header_lines(root_content_id: &str) -> io::Result<[String; 3]> {
    part_header_lines(
        root_content_id,
        &format!("{}; charset=UTF-8", ns::SOAP12_MEDIA_TYPE),
    )
}

/// The header lines of a part, without line ends: `Content-Type`,
/// `Content-Transfer-Encoding: binary` and `Content-ID`. A value with CR, LF, angle
/// brackets or non-ASCII characters is refused.
pub fn part_header_lines(content_id: &str, content_type: &str) -> io::Result<[String; 3]> {
    check_header_value(content_id)?;
    check_header_value(content_type)?;
    Ok([
        format!("Content-Type: {content_type}"),
        "Content-Transfer-Encoding: binary".to_owned(),
        format!("Content-ID: <{content_id}>"),
    ])
}

fn invalid(detail: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, detail)
}

fn check_header_value(value: &str) -> io::Result<()> {
    if value.is_empty() || value.contains(['\r', '\n', '<', '>']) || !value.is_ascii() {
        Err(invalid(format!("invalid MIME header value {value:?}")))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_expected_layout() {
        let mut w = MultipartWriter::new(Vec::new(), "BOUND", "root@x").unwrap();
        assert_eq!(
            w.content_type(),
            "multipart/related; boundary=\"BOUND\"; type=\"application/soap+xml\"; start=\"<root@x>\""
        );
        w.write_root(b"<e/>").unwrap();
        let n = w
            .write_attachment("p1@x", "application/gzip", &mut &b"DATA"[..])
            .unwrap();
        assert_eq!(n, 4);
        let out = w.finish().unwrap();
        assert_eq!(
            out,
            b"--BOUND\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <root@x>\r\n\r\n<e/>\r\n--BOUND\r\nContent-Type: application/gzip\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <p1@x>\r\n\r\nDATA\r\n--BOUND--\r\n"
        );
    }

    #[test]
    fn refuses_bad_input() {
        assert!(MultipartWriter::new(Vec::new(), "", "r").is_err());
        assert!(MultipartWriter::new(Vec::new(), "b", "r\r\nX: y").is_err());
        let mut w = MultipartWriter::new(Vec::new(), "b", "r").unwrap();
        let e = w
            .write_attachment("a", "text/plain", &mut &b""[..])
            .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        w.write_root(b"x").unwrap();
        assert!(
            w.write_attachment("a", "text/plain\r\nX: y", &mut &b""[..])
                .is_err()
        );
        assert!(
            MultipartWriter::new(Vec::new(), "b", "r")
                .unwrap()
                .finish()
                .is_err()
        );
    }
}
