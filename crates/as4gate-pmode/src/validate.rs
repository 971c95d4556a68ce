//! Semantic checks on one deserialized [`PMode`]: what the TOML types cannot say.
//!
//! Every check runs; the result lists every violation with the dotted key it concerns. Rules:
//! ids are short and plain; identifiers are non-empty; values ebMS3 requires to be URIs
//! (untyped PartyId, Service and AgreementRef, every MPC) are absolute URIs; features that are
//! parsed but not implemented (two-way MEP, callback receipts) are refused; encryption needs a
//! signature; every number is inside its documented range.

use crate::error::LoadErrorKind;
use crate::model::{
    MAX_DUPLICATE_WINDOW_SECS, MAX_ID_LEN, MAX_PARTS_LIMIT, MAX_RETRIES_LIMIT,
    MAX_RETRY_INTERVAL_LIMIT_SECS, Mep, PMode, PartySpec, ReplyPattern,
};

/// Every violation in `pmode`, as (dotted key, problem). Empty when the P-Mode is valid.
pub(crate) fn validate(pmode: &PMode) -> Vec<(String, LoadErrorKind)> {
    let mut out = Vec::new();
    let mut push = |key: &str, kind| out.push((key.to_owned(), kind));

    if !is_valid_id(&pmode.id) {
        push(
            "pmode.id",
            LoadErrorKind::InvalidId {
                id: pmode.id.clone(),
                max: MAX_ID_LEN,
            },
        );
    }
    if let Some(agreement) = &pmode.agreement {
        check_typed(
            &mut push,
            "pmode.agreement.value",
            &agreement.value,
            agreement.r#type.as_deref(),
            "ebMS3 core 5.2.2.7: an AgreementRef without @type must be a URI",
        );
        check_type_attribute(
            &mut push,
            "pmode.agreement.type",
            agreement.r#type.as_deref(),
        );
    }
    if pmode.mep == Mep::TwoWay {
        push(
            "pmode.mep",
            LoadErrorKind::NotSupported {
                feature: "the two-way MEP",
            },
        );
    }
    check_party(&mut push, "pmode.initiator", &pmode.initiator);
    check_party(&mut push, "pmode.responder", &pmode.responder);

    let business = &pmode.business;
    check_typed(
        &mut push,
        "pmode.business.service",
        &business.service,
        business.service_type.as_deref(),
        "ebMS3 core 5.2.2.8: a Service without @type must be a URI",
    );
    check_type_attribute(
        &mut push,
        "pmode.business.service_type",
        business.service_type.as_deref(),
    );
    if is_blank(&business.action) {
        push("pmode.business.action", LoadErrorKind::Empty);
    }
    if let Some(mpc) = &business.mpc {
        check_uri(&mut push, "pmode.business.mpc", mpc, "an MPC is a URI");
    }

    let security = &pmode.security;
    if security.encrypt && !security.sign {
        push("pmode.security.encrypt", LoadErrorKind::EncryptWithoutSign);
    }
    if security.receipt_reply_pattern == ReplyPattern::Callback {
        push(
            "pmode.security.receipt_reply_pattern",
            LoadErrorKind::NotSupported {
                feature: "the callback receipt reply pattern",
            },
        );
    }

    check_range(
        &mut push,
        "pmode.payload.max_parts",
        u64::from(pmode.payload.max_parts),
        1,
        u64::from(MAX_PARTS_LIMIT),
    );
    let ra = &pmode.reception_awareness;
    check_range(
        &mut push,
        "pmode.reception_awareness.max_retries",
        u64::from(ra.max_retries),
        0,
        u64::from(MAX_RETRIES_LIMIT),
    );
    check_range(
        &mut push,
        "pmode.reception_awareness.retry_interval_secs",
        ra.retry_interval_secs,
        1,
        MAX_RETRY_INTERVAL_LIMIT_SECS,
    );
    check_range(
        &mut push,
        "pmode.reception_awareness.max_retry_interval_secs",
        ra.max_retry_interval_secs,
        ra.retry_interval_secs
            .clamp(1, MAX_RETRY_INTERVAL_LIMIT_SECS),
        MAX_RETRY_INTERVAL_LIMIT_SECS,
    );
    check_range(
        &mut push,
        "pmode.reception_awareness.duplicate_window_secs",
        ra.duplicate_window_secs,
        1,
        MAX_DUPLICATE_WINDOW_SECS,
    );
    out
}

fn check_party(push: &mut impl FnMut(&str, LoadErrorKind), table: &str, party: &PartySpec) {
    check_typed(
        push,
        &format!("{table}.party_id"),
        &party.party_id,
        party.party_type.as_deref(),
        "ebMS3 core 5.2.2.4: a PartyId without @type must be a URI",
    );
    check_type_attribute(
        push,
        &format!("{table}.party_type"),
        party.party_type.as_deref(),
    );
    if is_blank(&party.role) {
        push(&format!("{table}.role"), LoadErrorKind::Empty);
    }
}

/// A value that must be non-empty, and a URI when it has no type attribute.
fn check_typed(
    push: &mut impl FnMut(&str, LoadErrorKind),
    key: &str,
    value: &str,
    type_attribute: Option<&str>,
    why: &'static str,
) {
    if is_blank(value) {
        push(key, LoadErrorKind::Empty);
    } else if type_attribute.is_none() {
        check_uri(push, key, value, why);
    }
}

/// A type attribute, when present, must not be empty.
fn check_type_attribute(
    push: &mut impl FnMut(&str, LoadErrorKind),
    key: &str,
    type_attribute: Option<&str>,
) {
    if type_attribute.is_some_and(is_blank) {
        push(key, LoadErrorKind::Empty);
    }
}

fn check_uri(
    push: &mut impl FnMut(&str, LoadErrorKind),
    key: &str,
    value: &str,
    why: &'static str,
) {
    if !is_absolute_uri(value) {
        push(
            key,
            LoadErrorKind::NotAnAbsoluteUri {
                value: value.to_owned(),
                why,
            },
        );
    }
}

fn check_range(
    push: &mut impl FnMut(&str, LoadErrorKind),
    key: &str,
    value: u64,
    min: u64,
    max: u64,
) {
    if !(min..=max).contains(&value) {
        push(key, LoadErrorKind::OutOfRange { value, min, max });
    }
}

fn is_blank(value: &str) -> bool {
    value.trim().is_empty()
}

fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

/// RFC 3986 absolute URI, loosely: a scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`),
/// a colon, and a non-empty rest without whitespace or control characters.
fn is_absolute_uri(value: &str) -> bool {
    let Some((scheme, rest)) = value.split_once(':') else {
        return false;
    };
    let mut scheme_bytes = scheme.bytes();
    scheme_bytes.next().is_some_and(|b| b.is_ascii_alphabetic())
        && scheme_bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        && !rest.is_empty()
        && !rest.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_uris() {
        assert!(is_absolute_uri("urn:as4gate:services:x"));
        assert!(is_absolute_uri(
            "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service"
        ));
        assert!(!is_absolute_uri("blue_gw"));
        assert!(!is_absolute_uri("1urn:x"));
        assert!(!is_absolute_uri("urn:"));
        assert!(!is_absolute_uri(":x"));
        assert!(!is_absolute_uri("urn:a b"));
    }

    #[test]
    fn ids() {
        assert!(is_valid_id("blue-to-red_1.0:x"));
        assert!(!is_valid_id(""));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("ä"));
        assert!(!is_valid_id(&"a".repeat(MAX_ID_LEN + 1)));
        assert!(is_valid_id(&"a".repeat(MAX_ID_LEN)));
    }
}
