//! Lexical checks for header values: message ids, timestamps, URIs.
//!
//! * `eb:MessageId` / `eb:RefToMessageId` (ebMS3 core §5.2.2.1): RFC 2822
//!   `msg-id` without the angle brackets: `id-left "@" id-right`, where
//!   `id-left` is a dot-atom or a quoted string and `id-right` a dot-atom or a
//!   `[domain literal]`. Obsolete forms and folding white space are refused.
//! * [`is_acceptable_message_id`] is the lenient form applied to inbound ids
//!   (see `parse.rs` for why).
//! * `eb:Timestamp`: the xs:dateTime lexical form (time zone optional).
//! * Untyped `eb:PartyId` / `eb:Service` values must be URIs (§5.2.2.4, §5.2.2.8);
//!   we check for an RFC 3986 scheme and no white space.

/// True when `id` is an RFC 2822 msg-id without angle brackets.
pub fn is_valid_message_id(id: &str) -> bool {
    let bytes = id.as_bytes();
    let Some(left_len) = id_left_len(bytes) else {
        return false;
    };
    let Some((&b'@', right)) = bytes[left_len..].split_first() else {
        return false;
    };
    match right.split_first() {
        Some((b'[', rest)) => {
            matches!(rest.split_last(), Some((b']', inner)) if inner.iter().all(|&b| is_dtext(b)))
        }
        _ => is_dot_atom_text(right),
    }
}

/// Length of the `id-left` at the start of `bytes`, if well formed.
fn id_left_len(bytes: &[u8]) -> Option<usize> {
    if bytes.first() == Some(&b'"') {
        let mut i = 1;
        while i < bytes.len() {
            match bytes[i] {
                b'"' => return (i > 1).then_some(i + 1),
                b'\\' if i + 1 < bytes.len() && is_visible_or_space(bytes[i + 1]) => i += 2,
                b if is_qtext(b) => i += 1,
                _ => return None,
            }
        }
        None
    } else {
        let end = bytes.iter().position(|&b| b == b'@')?;
        is_dot_atom_text(&bytes[..end]).then_some(end)
    }
}

fn is_dot_atom_text(s: &[u8]) -> bool {
    !s.is_empty()
        && s.split(|&b| b == b'.')
            .all(|atom| !atom.is_empty() && atom.iter().all(|&b| is_atext(b)))
}

fn is_atext(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-/=?^_`{|}~".contains(&b)
}

fn is_qtext(b: u8) -> bool {
    (33..=126).contains(&b) && b != b'"' && b != b'\\'
}

fn is_dtext(b: u8) -> bool {
    (33..=126).contains(&b) && b != b'[' && b != b']' && b != b'\\'
}

fn is_visible_or_space(b: u8) -> bool {
    (32..=126).contains(&b)
}

/// The lenient inbound check: 1..=`max_len` bytes of printable ASCII
/// (`!`..=`~`), no `<` or `>` (angle brackets belong to the `cid:`/Content-ID
/// form, not to the id).
pub(crate) fn is_acceptable_message_id(id: &str, max_len: usize) -> bool {
    !id.is_empty()
        && id.len() <= max_len
        && id
            .bytes()
            .all(|b| (b'!'..=b'~').contains(&b) && b != b'<' && b != b'>')
}

/// True when `value` is an xs:dateTime lexical value:
/// `YYYY-MM-DDThh:mm:ss[.fff][Z|(+|-)hh:mm]` (years of four digits or more).
pub(crate) fn is_xs_date_time(value: &str) -> bool {
    let b = value.as_bytes();
    let year_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
    if year_len < 4 {
        return false;
    }
    let rest = &b[year_len..];
    let fixed = |s: &[u8], pattern: &[u8]| {
        s.len() >= pattern.len()
            && s.iter().zip(pattern).all(|(&c, &p)| {
                if p == b'9' {
                    c.is_ascii_digit()
                } else {
                    c == p
                }
            })
    };
    if !fixed(rest, b"-99-99T99:99:99") {
        return false;
    }
    let two = |s: &[u8]| u32::from(s[0] - b'0') * 10 + u32::from(s[1] - b'0');
    let (month, day, hour, minute, second) = (
        two(&rest[1..3]),
        two(&rest[4..6]),
        two(&rest[7..9]),
        two(&rest[10..12]),
        two(&rest[13..15]),
    );
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 24
        || minute > 59
        || second > 59
    {
        return false;
    }
    let mut tail = &rest[15..];
    if let Some((b'.', frac)) = tail.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return false;
        }
        tail = &frac[digits..];
    }
    match tail {
        [] | [b'Z'] => true,
        [b'+' | b'-', zone @ ..] => fixed(zone, b"99:99") && zone.len() == 5,
        _ => false,
    }
}

/// True when `value` starts with an RFC 3986 scheme (`ALPHA *(ALPHA / DIGIT /
/// "+" / "-" / ".") ":"`) and contains no white space.
pub(crate) fn looks_like_uri(value: &str) -> bool {
    let Some((scheme, _)) = value.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        && !value.chars().any(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenient_ids() {
        assert!(is_acceptable_message_id(
            "49267c79-d822-45d9-aa91-c57b3ca508db",
            255
        ));
        assert!(is_acceptable_message_id("1", 255));
        assert!(!is_acceptable_message_id("", 255));
        assert!(!is_acceptable_message_id("<a@b>", 255));
        assert!(!is_acceptable_message_id("a b", 255));
        assert!(!is_acceptable_message_id("abcd", 3));
    }

    #[test]
    fn date_times() {
        for ok in [
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.1+01:00",
            "12024-01-02T03:04:05-05:30",
        ] {
            assert!(is_xs_date_time(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-01-02",
            "2024-13-02T03:04:05Z",
            "2024-01-02 03:04:05Z",
            "2024-01-02T03:04:05.Z",
            "2024-01-02T03:04:05+0100",
            "2024-01-02T03:04:05ZZ",
            "24-01-02T03:04:05Z",
        ] {
            assert!(!is_xs_date_time(bad), "{bad}");
        }
    }

    #[test]
    fn uris() {
        assert!(looks_like_uri(
            "urn:oasis:names:tc:ebcore:partyid-type:unregistered"
        ));
        assert!(looks_like_uri("http://x/y"));
        assert!(!looks_like_uri("APP_000001"));
        assert!(!looks_like_uri("1x:y"));
        assert!(!looks_like_uri("urn:a b"));
    }

    #[test]
    fn accepts_common_forms() {
        for ok in [
            "a0fe4348-bbde-461b-8edc-070d458a1fc5@example.com",
            "uuid@phase4",
            "x.y@[127.0.0.1]",
            "\"quoted..id\"@host",
            "a+b_c{d}@e-f.g",
        ] {
            assert!(is_valid_message_id(ok), "{ok}");
        }
    }

    #[test]
    fn refuses_bad_forms() {
        for bad in [
            "",
            "no-at-sign",
            "<a@b>",
            "a@",
            "@b",
            "a..b@c",
            "a@b..c",
            "a b@c",
            "a@b@c",
            "a@[x]y",
            "\"\"@b",
            "\"quoted id\"@b",
            ".a@b",
        ] {
            assert!(!is_valid_message_id(bad), "{bad}");
        }
    }
}
