//! Parsing the `multipart/related` Content-Type header (RFC 2045 §5.1 syntax,
//! RFC 2387 parameters `type` and `start`).

use crate::error::EbmsError;

use super::is_valid_boundary;

/// The parameters of a `multipart/related` Content-Type that SwA needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MultipartRelated {
    /// `boundary` (required).
    pub boundary: String,
    /// `start`: Content-ID of the root part, angle brackets stripped.
    pub start: Option<String>,
    /// `type`: media type of the root part (AS4: `application/soap+xml`).
    pub r#type: Option<String>,
}

impl MultipartRelated {
    /// Parses a Content-Type header value. Refuses (EBMS:0007) anything but
    /// `multipart/related`, a missing or invalid boundary, duplicate parameters
    /// and malformed parameter syntax. Parameter names and the media type are
    /// case-insensitive; values may be tokens or quoted strings.
    pub fn parse(content_type: &str) -> Result<MultipartRelated, EbmsError> {
        let mut rest = content_type.trim_start();
        let media_end = rest.find(';').unwrap_or(rest.len());
        let media = rest[..media_end].trim();
        if !media.eq_ignore_ascii_case("multipart/related") {
            return Err(EbmsError::mime_inconsistency(format!(
                "Content-Type {media:?} is not multipart/related"
            )));
        }
        rest = &rest[media_end..];
        let mut boundary = None;
        let mut start = None;
        let mut r#type = None;
        while let Some(after_semicolon) = rest.trim_start().strip_prefix(';') {
            let param = after_semicolon.trim_start();
            if param.is_empty() {
                rest = param; // a trailing ';' is tolerated
                break;
            }
            let eq = param
                .find('=')
                .ok_or_else(|| bad(format!("parameter without '=' in {param:?}")))?;
            let name = param[..eq].trim().to_ascii_lowercase();
            if name.is_empty() || !name.chars().all(is_token_char) {
                return Err(bad(format!("invalid parameter name {name:?}")));
            }
            let (value, remaining) = parameter_value(param[eq + 1..].trim_start())?;
            rest = remaining;
            let slot = match name.as_str() {
                "boundary" => &mut boundary,
                "start" => &mut start,
                "type" => &mut r#type,
                _ => continue,
            };
            if slot.replace(value).is_some() {
                return Err(bad(format!("duplicate parameter {name:?}")));
            }
        }
        if !rest.trim().is_empty() {
            return Err(bad(format!(
                "unexpected text {:?} in Content-Type",
                rest.trim()
            )));
        }
        let boundary = boundary.ok_or_else(|| bad("multipart/related without boundary".into()))?;
        if !is_valid_boundary(&boundary) {
            return Err(bad(format!("invalid MIME boundary {boundary:?}")));
        }
        let start = start.map(|s| strip_angle_brackets(&s).to_owned());
        Ok(MultipartRelated {
            boundary,
            start,
            r#type,
        })
    }
}

/// `<x>` -> `x` (surrounding white space ignored); other values unchanged.
pub(crate) fn strip_angle_brackets(value: &str) -> &str {
    let v = value.trim();
    v.strip_prefix('<')
        .and_then(|v| v.strip_suffix('>'))
        .unwrap_or(v)
}

fn bad(detail: String) -> EbmsError {
    EbmsError::mime_inconsistency(detail)
}

/// RFC 2045 token characters.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// Reads a token or quoted-string value; returns it and the remaining input.
fn parameter_value(input: &str) -> Result<(String, &str), EbmsError> {
    if let Some(quoted) = input.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((value, &quoted[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                '\r' | '\n' => return Err(bad("line break inside a quoted parameter".into())),
                c => value.push(c),
            }
        }
        Err(bad("unterminated quoted parameter value".into()))
    } else {
        let end = input
            .find(|c: char| !is_token_char(c))
            .unwrap_or(input.len());
        if end == 0 {
            return Err(bad("empty parameter value".into()));
        }
        Ok((input[..end].to_owned(), &input[end..]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;

    #[test]
    fn parses_quoted_and_token_params() {
        let m = MultipartRelated::parse(
            r#"Multipart/Related; type="application/soap+xml"; BOUNDARY="=-M9awlqbs/xWAPxlvpSWrAg=="; start="<root@x>"; charset=utf-8"#,
        )
        .unwrap();
        assert_eq!(m.boundary, "=-M9awlqbs/xWAPxlvpSWrAg==");
        assert_eq!(m.start.as_deref(), Some("root@x"));
        assert_eq!(m.r#type.as_deref(), Some("application/soap+xml"));
        let m = MultipartRelated::parse("multipart/related;boundary=abc;").unwrap();
        assert_eq!(m.boundary, "abc");
        assert_eq!(m.start, None);
        let m = MultipartRelated::parse(r#"multipart/related; boundary="a\"b""#);
        assert_eq!(m.unwrap_err().code, ErrorCode::MimeInconsistency); // '"' not a bchar
    }

    #[test]
    fn refusals() {
        for (input, needle) in [
            ("application/soap+xml", "not multipart/related"),
            ("multipart/mixed; boundary=a", "not multipart/related"),
            ("multipart/related", "without boundary"),
            ("multipart/related; boundary=a; boundary=b", "duplicate"),
            ("multipart/related; boundary", "without '='"),
            ("multipart/related; boundary=\"abc", "unterminated"),
            ("multipart/related; boundary=", "empty parameter"),
            (
                "multipart/related; boundary=\"abc \"",
                "invalid MIME boundary",
            ),
            ("multipart/related; boundary=abc x", "unexpected text"),
        ] {
            let e = MultipartRelated::parse(input).unwrap_err();
            assert_eq!(e.code, ErrorCode::MimeInconsistency, "{input}");
            assert!(e.detail.contains(needle), "{input}: {}", e.detail);
        }
        let long = format!("multipart/related; boundary={}", "a".repeat(71));
        assert!(
            MultipartRelated::parse(&long)
                .unwrap_err()
                .detail
                .contains("invalid MIME boundary")
        );
    }
}
