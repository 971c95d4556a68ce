//! Safe XML parsing of inbound envelopes into the one shared `uppsala::Document`.
//!
//! What uppsala 0.12 does on its own: it parses `<!DOCTYPE` internal subsets and
//! expands internal entities (bounded by a 1 MiB expansion budget and a nesting
//! cap), never fetches external entities, and caps element depth at 128 unless
//! told otherwise. SOAP 1.2 forbids a DTD in an envelope, so we refuse it twice:
//! [`reject_doctype`] scans the raw bytes before any parsing (so no DTD code runs
//! at all), and [`parse`] also sets uppsala's `forbid_dtd` switch. [`parse`] sets
//! the depth cap from [`Limits::max_xml_depth`].
//!
//! Error choice: malformed XML, a DOCTYPE/ENTITY declaration, too deep nesting or
//! an oversized envelope are all reported as EBMS:0009 InvalidHeader ("the ebMS
//! header is either not well formed as an XML document, or does not conform to
//! the ebMS packaging rules", ebMS3 core §6.7.1). The daemon answers them with a
//! SOAP `env:Sender` fault carrying that error.

use memchr::memmem;
use uppsala::{Document, Parser};

use crate::error::EbmsError;
use crate::limits::Limits;

/// Refuses any `<!DOCTYPE` or `<!ENTITY` declaration outside comments, CDATA
/// sections and processing instructions (EBMS:0009).
///
/// Scans bytes, so it works before the input is known to be UTF-8. Markup inside
/// attribute values cannot contain `<`, so it needs no special case.
pub fn reject_doctype(input: &[u8]) -> Result<(), EbmsError> {
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'<', &input[i..]) {
        let at = i + off;
        let rest = &input[at..];
        let skip_to = |terminator: &[u8], from: usize| -> Option<usize> {
            memmem::find(&input[from..], terminator).map(|p| from + p + terminator.len())
        };
        if rest.starts_with(b"<!--") {
            match skip_to(b"-->", at + 4) {
                Some(next) => i = next,
                None => return Ok(()),
            }
        } else if rest.starts_with(b"<![CDATA[") {
            match skip_to(b"]]>", at + 9) {
                Some(next) => i = next,
                None => return Ok(()),
            }
        } else if rest.starts_with(b"<?") {
            match skip_to(b"?>", at + 2) {
                Some(next) => i = next,
                None => return Ok(()),
            }
        } else if starts_with_ignore_case(rest, b"<!DOCTYPE") {
            return Err(EbmsError::invalid_header(
                "XML document type declaration (DTD) is not allowed in a SOAP message",
            ));
        } else if starts_with_ignore_case(rest, b"<!ENTITY") {
            return Err(EbmsError::invalid_header(
                "XML entity declaration is not allowed in a SOAP message",
            ));
        } else {
            i = at + 1;
        }
    }
    Ok(())
}

/// The envelope bytes as text: a UTF-8 byte-order mark is skipped, anything
/// that is not UTF-8 is refused (EBMS:0009; AS4 envelopes are UTF-8).
pub fn envelope_text(bytes: &[u8]) -> Result<&str, EbmsError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map_err(|e| EbmsError::invalid_header(format!("SOAP envelope is not UTF-8: {e}")))
}

/// Parses `input` into a namespace-aware DOM with DTDs forbidden and the depth
/// capped at `limits.max_xml_depth`; also enforces `limits.max_envelope_bytes`.
/// Runs [`reject_doctype`] first. All failures are EBMS:0009.
pub fn parse<'a>(input: &'a str, limits: &Limits) -> Result<Document<'a>, EbmsError> {
    if input.len() > limits.max_envelope_bytes {
        return Err(EbmsError::invalid_header(format!(
            "SOAP envelope is {} bytes, limit is {}",
            input.len(),
            limits.max_envelope_bytes
        )));
    }
    reject_doctype(input.as_bytes())?;
    Parser::new()
        .with_forbid_dtd(true)
        .with_forbid_entities(true)
        .with_max_depth(limits.max_xml_depth)
        .parse(input)
        .map_err(|e| {
            EbmsError::invalid_header(format!("SOAP envelope is not well-formed XML: {e}"))
        })
}

fn starts_with_ignore_case(haystack: &[u8], prefix: &[u8]) -> bool {
    haystack.len() >= prefix.len() && haystack[..prefix.len()].eq_ignore_ascii_case(prefix)
}

/// `text` escaped for XML character data and attribute values: the five markup characters
/// as entities, and tab, CR and LF as character references so that attribute-value
/// normalisation keeps them. The one escaper every hand-built XML string in the gateway uses.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn doctype_refused() {
        let e =
            reject_doctype(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><x/>").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        assert!(e.detail.contains("DTD"));
        let e = reject_doctype(b"<x><!ENTITY a 'b'></x>").unwrap_err();
        assert!(e.detail.contains("entity"));
    }

    #[test]
    fn doctype_in_comment_cdata_pi_is_fine() {
        reject_doctype(b"<!-- <!DOCTYPE x> --><x><![CDATA[<!DOCTYPE y>]]><?p <!ENTITY ?></x>")
            .unwrap();
    }

    #[test]
    fn parse_refuses_doctype_and_depth() {
        let limits = Limits::default();
        let e = parse("<!DOCTYPE x><x/>", &limits).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        let deep = format!("{}{}", "<a>".repeat(70), "</a>".repeat(70));
        let e = parse(&deep, &limits).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        let shallow = format!("{}{}", "<a>".repeat(60), "</a>".repeat(60));
        parse(&shallow, &limits).unwrap();
    }

    #[test]
    fn envelope_text_strips_bom_and_refuses_non_utf8() {
        assert_eq!(envelope_text(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
        let e = envelope_text(b"<a>\xff</a>").unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        assert!(e.detail.contains("not UTF-8"));
    }

    #[test]
    fn parse_refuses_oversize_and_malformed() {
        let limits = Limits {
            max_envelope_bytes: 10,
            ..Limits::default()
        };
        let e = parse("<abcdefghijkl/>", &limits).unwrap_err();
        assert!(e.detail.contains("limit"));
        let e = parse("<a><b></a>", &Limits::default()).unwrap_err();
        assert!(e.detail.contains("well-formed"));
    }
}
