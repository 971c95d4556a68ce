//! Parsing one MIME part's header block (RFC 5322 field syntax with folding).

use crate::error::EbmsError;

use super::content_type::strip_angle_brackets;

/// Content-Transfer-Encodings accepted on inbound parts. AS4 sends parts as
/// `binary`; `8bit` and `7bit` are identity encodings too. Anything else
/// (`base64`, `quoted-printable`) is refused: it would need a decoding step that
/// SwA signatures over the raw part do not expect, and no AS4 product sends it.
pub const ACCEPTED_TRANSFER_ENCODINGS: [&str; 3] = ["binary", "8bit", "7bit"];

/// The headers of one MIME part.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartHeaders {
    /// `Content-ID`, angle brackets stripped.
    pub content_id: Option<String>,
    /// `Content-Type`, verbatim (trimmed).
    pub content_type: Option<String>,
    /// `Content-Transfer-Encoding`, lower-cased.
    pub content_transfer_encoding: Option<String>,
    /// Every header as (name, value) in order, names as received, values
    /// unfolded and trimmed.
    pub headers: Vec<(String, String)>,
}

impl PartHeaders {
    /// Parses a header block (without the terminating empty line). Refuses
    /// (EBMS:0007) non-UTF-8 bytes, lines without a colon, repeated Content-ID /
    /// Content-Type / Content-Transfer-Encoding, and encodings outside
    /// [`ACCEPTED_TRANSFER_ENCODINGS`].
    pub fn parse(block: &[u8]) -> Result<PartHeaders, EbmsError> {
        let text = std::str::from_utf8(block)
            .map_err(|_| EbmsError::mime_inconsistency("MIME part header is not UTF-8"))?;
        let mut out = PartHeaders::default();
        for line in text.split("\r\n") {
            if line.is_empty() {
                continue;
            }
            if line.starts_with([' ', '\t']) {
                let Some((_, value)) = out.headers.last_mut() else {
                    return Err(EbmsError::mime_inconsistency(
                        "MIME part header starts with a continuation line",
                    ));
                };
                value.push(' ');
                value.push_str(line.trim());
                continue;
            }
            let (name, value) = line.split_once(':').ok_or_else(|| {
                EbmsError::mime_inconsistency(format!("MIME header line without ':': {line:?}"))
            })?;
            let name = name.trim_end();
            if name.is_empty() || name.contains([' ', '\t']) {
                return Err(EbmsError::mime_inconsistency(format!(
                    "invalid MIME header name {name:?}"
                )));
            }
            out.headers.push((name.to_owned(), value.trim().to_owned()));
        }
        for (name, value) in &out.headers {
            let slot = if name.eq_ignore_ascii_case("content-id") {
                &mut out.content_id
            } else if name.eq_ignore_ascii_case("content-type") {
                &mut out.content_type
            } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
                &mut out.content_transfer_encoding
            } else {
                continue;
            };
            let normalised = if name.eq_ignore_ascii_case("content-id") {
                strip_angle_brackets(value).to_owned()
            } else if name.eq_ignore_ascii_case("content-transfer-encoding") {
                value.to_ascii_lowercase()
            } else {
                value.clone()
            };
            if slot.replace(normalised).is_some() {
                return Err(EbmsError::mime_inconsistency(format!(
                    "repeated {name} header in a MIME part"
                )));
            }
        }
        if let Some(cte) = &out.content_transfer_encoding
            && !ACCEPTED_TRANSFER_ENCODINGS.contains(&cte.as_str())
        {
            return Err(EbmsError::mime_inconsistency(format!(
                "Content-Transfer-Encoding {cte:?} is not supported (AS4 uses binary)"
            )));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_unfolds() {
        let h = PartHeaders::parse(
            b"Content-Type: application/soap+xml;\r\n\tcharset=UTF-8\r\nContent-ID: <root@x>\r\ncontent-transfer-encoding: Binary",
        )
        .unwrap();
        assert_eq!(
            h.content_type.as_deref(),
            Some("application/soap+xml; charset=UTF-8")
        );
        assert_eq!(h.content_id.as_deref(), Some("root@x"));
        assert_eq!(h.content_transfer_encoding.as_deref(), Some("binary"));
        assert_eq!(h.headers.len(), 3);
    }

    #[test]
    fn refusals() {
        for (block, needle) in [
            (&b"Content-Transfer-Encoding: base64"[..], "not supported"),
            (b"Content-ID: <a>\r\nContent-ID: <b>", "repeated"),
            (b"no colon here", "without ':'"),
            (b" folded-first: x", "continuation"),
            (b"Bad Name: x", "invalid MIME header name"),
            (b"X: \xff", "not UTF-8"),
        ] {
            let e = PartHeaders::parse(block).unwrap_err();
            assert_eq!(e.code, crate::error::ErrorCode::MimeInconsistency);
            assert!(e.detail.contains(needle), "{}", e.detail);
        }
    }
}
