//! Matching message header values against the good fixtures: the positive cases, and one
//! test per field showing the error names that field against the closest P-Mode.

use std::path::Path;

use as4gate_pmode::{DEFAULT_MPC, MatchError, MatchErrorCode, MatchField, MatchKey, PModeSet};

const UNREGISTERED: &str = "urn:oasis:names:tc:ebcore:partyid-type:unregistered";
const INITIATOR: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator";
const RESPONDER: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder";
const TEST_SERVICE: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service";
const TEST_ACTION: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test";

fn set() -> PModeSet {
    PModeSet::load_dir(&Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/good")).unwrap()
}

/// A message exactly as `blue-to-red` describes it.
fn documents() -> MatchKey<'static> {
    MatchKey {
        agreement: Some("urn:as4gate:agreements:sample"),
        from_party: ("blue_gw", Some(UNREGISTERED)),
        from_role: INITIATOR,
        to_party: ("red_gw", Some(UNREGISTERED)),
        to_role: RESPONDER,
        service: (
            "urn:as4gate:services:test-documents",
            Some("urn:as4gate:service-type"),
        ),
        action: "Submit",
        mpc: Some("urn:as4gate:mpc:documents"),
    }
}

/// A message exactly as `blue-to-red-ping` describes it (no agreement, default MPC omitted).
fn ping() -> MatchKey<'static> {
    MatchKey {
        agreement: None,
        from_party: ("urn:as4gate:party:blue_gw", None),
        from_role: INITIATOR,
        to_party: ("urn:as4gate:party:red_gw", None),
        to_role: RESPONDER,
        service: (TEST_SERVICE, None),
        action: TEST_ACTION,
        mpc: None,
    }
}

#[test]
fn exact_header_values_match() {
    let set = set();
    assert_eq!(
        set.match_user_message(&documents()).unwrap().id,
        "blue-to-red"
    );
    assert_eq!(
        set.match_user_message(&ping()).unwrap().id,
        "blue-to-red-ping"
    );
    let explicit_default = MatchKey {
        mpc: Some(DEFAULT_MPC),
        ..ping()
    };
    assert_eq!(
        set.match_user_message(&explicit_default).unwrap().id,
        "blue-to-red-ping"
    );
}

#[test]
fn key_of_a_pmode_matches_it() {
    let set = set();
    for pmode in set.iter() {
        assert_eq!(
            set.match_user_message(&MatchKey::of(pmode)).unwrap().id,
            pmode.id
        );
    }
}

/// Changes one field of `documents()`; the error must name exactly that field against
/// `blue-to-red`, with the configured and the received value, and the given code.
fn assert_single_mismatch(
    key: MatchKey<'_>,
    field: MatchField,
    expected: Option<&str>,
    found: Option<&str>,
    code: MatchErrorCode,
) {
    let err = set().match_user_message(&key).unwrap_err();
    let MatchError::NoMatch {
        closest,
        mismatches,
        ..
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(closest, "blue-to-red");
    assert_eq!(mismatches.len(), 1, "{err}");
    assert_eq!(mismatches[0].field, field);
    assert_eq!(mismatches[0].expected.as_deref(), expected);
    assert_eq!(mismatches[0].found.as_deref(), found);
    assert_eq!(err.code(), code, "{err}");
}

use MatchErrorCode::{ProcessingModeMismatch as Mismatch0010, ValueNotRecognized as Unknown0001};

#[test]
fn agreement_unknown() {
    let key = MatchKey {
        agreement: Some("urn:other"),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Agreement,
        Some("urn:as4gate:agreements:sample"),
        Some("urn:other"),
        Unknown0001,
    );
}

#[test]
fn agreement_absent() {
    let key = MatchKey {
        agreement: None,
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Agreement,
        Some("urn:as4gate:agreements:sample"),
        None,
        Mismatch0010,
    );
}

#[test]
fn from_party() {
    let key = MatchKey {
        from_party: ("mallory", Some(UNREGISTERED)),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::FromParty,
        Some("blue_gw"),
        Some("mallory"),
        Mismatch0010,
    );
}

#[test]
fn from_party_type() {
    let key = MatchKey {
        from_party: ("blue_gw", None),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::FromPartyType,
        Some(UNREGISTERED),
        None,
        Mismatch0010,
    );
}

#[test]
fn from_role() {
    let key = MatchKey {
        from_role: RESPONDER,
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::FromRole,
        Some(INITIATOR),
        Some(RESPONDER),
        Mismatch0010,
    );
}

#[test]
fn to_party() {
    let key = MatchKey {
        to_party: ("green_gw", Some(UNREGISTERED)),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::ToParty,
        Some("red_gw"),
        Some("green_gw"),
        Mismatch0010,
    );
}

#[test]
fn to_party_type() {
    let key = MatchKey {
        to_party: ("red_gw", Some("urn:x")),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::ToPartyType,
        Some(UNREGISTERED),
        Some("urn:x"),
        Mismatch0010,
    );
}

#[test]
fn to_role() {
    let key = MatchKey {
        to_role: INITIATOR,
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::ToRole,
        Some(RESPONDER),
        Some(INITIATOR),
        Mismatch0010,
    );
}

#[test]
fn service_unknown() {
    let key = MatchKey {
        service: ("urn:other", Some("urn:as4gate:service-type")),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Service,
        Some("urn:as4gate:services:test-documents"),
        Some("urn:other"),
        Unknown0001,
    );
}

#[test]
fn service_type() {
    let key = MatchKey {
        service: ("urn:as4gate:services:test-documents", None),
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::ServiceType,
        Some("urn:as4gate:service-type"),
        None,
        Unknown0001,
    );
}

#[test]
fn action_unknown() {
    let key = MatchKey {
        action: "Cancel",
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Action,
        Some("Submit"),
        Some("Cancel"),
        Unknown0001,
    );
}

#[test]
fn action_known_elsewhere() {
    let key = MatchKey {
        action: TEST_ACTION,
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Action,
        Some("Submit"),
        Some(TEST_ACTION),
        Mismatch0010,
    );
}

#[test]
fn mpc_absent_means_default() {
    let key = MatchKey {
        mpc: None,
        ..documents()
    };
    assert_single_mismatch(
        key,
        MatchField::Mpc,
        Some("urn:as4gate:mpc:documents"),
        Some(DEFAULT_MPC),
        Mismatch0010,
    );
}

#[test]
fn several_mismatches_are_all_listed_in_header_order() {
    let key = MatchKey {
        action: "Cancel",
        from_role: "urn:x:role",
        mpc: None,
        ..documents()
    };
    let err = set().match_user_message(&key).unwrap_err();
    let MatchError::NoMatch {
        closest,
        mismatches,
        code,
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(closest, "blue-to-red");
    let fields: Vec<MatchField> = mismatches.iter().map(|m| m.field).collect();
    assert_eq!(
        fields,
        [MatchField::FromRole, MatchField::Action, MatchField::Mpc]
    );
    assert_eq!(*code, MatchErrorCode::ValueNotRecognized);
}

#[test]
fn closest_candidate_is_the_one_with_fewest_differences() {
    let key = MatchKey {
        action: "Submit",
        ..ping()
    };
    let err = set().match_user_message(&key).unwrap_err();
    let MatchError::NoMatch {
        closest,
        mismatches,
        ..
    } = &err
    else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(closest, "blue-to-red-ping");
    assert_eq!(mismatches.len(), 1);
    assert_eq!(mismatches[0].field, MatchField::Action);
}

#[test]
fn operator_text_explains_and_sender_text_does_not_leak() {
    let key = MatchKey {
        from_party: ("mallory", Some(UNREGISTERED)),
        ..documents()
    };
    let err = set().match_user_message(&key).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no P-Mode matches the message; the closest, \"blue-to-red\", differs: \
         From/PartyId expected \"blue_gw\" but found \"mallory\""
    );
    let public = err.sender_description();
    assert_eq!(public, "no P-Mode accepts this message; check From/PartyId");
    assert!(!public.contains("blue"));
    assert_eq!(err.code().as_str(), "EBMS:0010");
    assert_eq!(MatchErrorCode::ValueNotRecognized.as_str(), "EBMS:0001");
}
