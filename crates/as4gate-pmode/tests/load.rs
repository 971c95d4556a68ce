//! Loading P-Mode directories and files: the good fixtures, the samples, and a directory in
//! which every file is broken in known ways (every problem must be reported).

use std::path::{Path, PathBuf};

use as4gate_pmode::{
    Backoff, Binding, DEFAULT_MPC, LoadError, LoadErrorKind, MAX_PMODE_FILE_BYTES, Mep, PMode,
    PModeSet, ReplyPattern, SecurityProfile,
};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load_errors(dir: &Path) -> Vec<LoadError> {
    match PModeSet::load_dir(dir) {
        Ok(set) => panic!("expected errors, loaded {} P-Modes", set.len()),
        Err(e) => e.0,
    }
}

fn file_name(e: &LoadError) -> &str {
    e.file.file_name().unwrap().to_str().unwrap()
}

#[test]
fn good_directory_loads_with_explicit_values() {
    let set = PModeSet::load_dir(&fixture("good")).unwrap();
    assert_eq!(set.len(), 2);
    let ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["blue-to-red", "blue-to-red-ping"]);

    let p = set.by_id("blue-to-red").unwrap();
    let agreement = p.agreement.as_ref().unwrap();
    assert_eq!(agreement.value, "urn:as4gate:agreements:sample");
    assert_eq!(
        agreement.r#type.as_deref(),
        Some("urn:as4gate:agreement-type")
    );
    assert_eq!(p.initiator.party_id, "blue_gw");
    assert_eq!(p.responder.party_id, "red_gw");
    assert_eq!(
        p.responder.party_type.as_deref(),
        Some("urn:oasis:names:tc:ebcore:partyid-type:unregistered")
    );
    assert_eq!(p.business.action, "Submit");
    assert_eq!(p.business.mpc_or_default(), "urn:as4gate:mpc:documents");
    assert_eq!(p.security.profile, SecurityProfile::EdeliveryAs4_1_15);
    assert_eq!(p.payload.max_parts, 10);
    let ra = &p.reception_awareness;
    assert_eq!(
        (
            ra.max_retries,
            ra.retry_interval_secs,
            ra.backoff,
            ra.max_retry_interval_secs
        ),
        (3, 30, Backoff::Constant, 30)
    );
    assert_eq!(ra.duplicate_window_secs, 86_400);
    assert!(set.by_id("nope").is_none());
}

#[test]
fn defaults_fail_closed() {
    let set = PModeSet::load_dir(&fixture("good")).unwrap();
    let p = set.by_id("blue-to-red-ping").unwrap();
    assert!(p.agreement.is_none());
    assert_eq!(p.mep, Mep::OneWay);
    assert_eq!(p.binding, Binding::Push);
    assert_eq!(p.business.mpc, None);
    assert_eq!(p.business.mpc_or_default(), DEFAULT_MPC);
    assert_eq!(p.security.profile, SecurityProfile::EdeliveryAs4_2_0);
    assert!(p.security.sign);
    assert!(p.security.encrypt);
    assert!(p.security.send_receipt);
    assert!(p.security.receipt_signed);
    assert_eq!(p.security.receipt_reply_pattern, ReplyPattern::Response);
    assert!(p.payload.compress);
    assert_eq!(p.payload.max_parts, as4gate_pmode::model::DEFAULT_MAX_PARTS);
    assert_eq!(p.reception_awareness, Default::default());
    assert!(p.reception_awareness.duplicate_detection);
}

#[test]
fn samples_load() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/pmodes");
    let set = PModeSet::load_dir(&dir).unwrap();
    let p = set.by_id("blue-to-red").unwrap();
    assert_eq!(p.initiator.party_id, "blue_gw");
    assert_eq!(p.responder.party_id, "red_gw");
    assert_eq!(p.business.service, "urn:as4gate:services:test-documents");
    assert_eq!(
        p.business.service_type.as_deref(),
        Some("urn:as4gate:service-type")
    );
    assert_eq!(p.business.action, "Submit");
    assert_eq!(
        p.agreement.as_ref().map(|a| a.value.as_str()),
        Some("urn:as4gate:agreements:sample")
    );
    assert!(p.security.sign && p.security.encrypt);
    let ping = set.by_id("blue-to-red-ping").unwrap();
    assert_eq!(
        ping.business.action,
        "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test"
    );
    assert_eq!(ping.security, p.security);
    assert_eq!(ping.agreement, p.agreement);
}

/// Every problem in every file of `fixtures/bad`, in order, and nothing else.
#[test]
fn bad_directory_reports_every_problem() {
    let errors = load_errors(&fixture("bad"));
    type Check = fn(&LoadErrorKind) -> bool;
    let expected: &[(&str, Option<&str>, Option<usize>, Check)] = &[
        ("a-syntax.toml", None, Some(3), |k| {
            matches!(k, LoadErrorKind::Syntax(_))
        }),
        ("b-structure.toml", Some("pmodes"), Some(2), |k| {
            matches!(k, LoadErrorKind::UnknownKey { expected: "pmode" })
        }),
        ("b-structure.toml", Some("pmode.colour"), Some(6), |k| {
            matches!(k, LoadErrorKind::UnknownKey { .. })
        }),
        (
            "b-structure.toml",
            Some("pmode.business"),
            Some(12),
            |k| matches!(k, LoadErrorKind::InvalidValue(m) if m.contains("missing field `action`")),
        ),
        (
            "b-structure.toml",
            Some("pmode.security"),
            Some(16),
            |k| matches!(k, LoadErrorKind::InvalidValue(m) if m.contains("edelivery-as4-1.14")),
        ),
        ("b-structure.toml", Some("pmode.responder"), None, |k| {
            matches!(k, LoadErrorKind::MissingKey)
        }),
        (
            "c-semantic.toml",
            Some("pmode.id"),
            Some(3),
            |k| matches!(k, LoadErrorKind::InvalidId { id, .. } if id == "semantic id"),
        ),
        ("c-semantic.toml", Some("pmode.mep"), Some(4), |k| {
            matches!(k, LoadErrorKind::NotSupported { .. })
        }),
        (
            "c-semantic.toml",
            Some("pmode.agreement.value"),
            Some(7),
            |k| matches!(k, LoadErrorKind::NotAnAbsoluteUri { value, .. } if value == "not a uri"),
        ),
        (
            "c-semantic.toml",
            Some("pmode.initiator.party_id"),
            Some(10),
            |k| matches!(k, LoadErrorKind::NotAnAbsoluteUri { value, .. } if value == "blue_gw"),
        ),
        (
            "c-semantic.toml",
            Some("pmode.responder.party_type"),
            Some(15),
            |k| matches!(k, LoadErrorKind::Empty),
        ),
        (
            "c-semantic.toml",
            Some("pmode.responder.role"),
            Some(16),
            |k| matches!(k, LoadErrorKind::Empty),
        ),
        (
            "c-semantic.toml",
            Some("pmode.business.action"),
            Some(20),
            |k| matches!(k, LoadErrorKind::Empty),
        ),
        (
            "c-semantic.toml",
            Some("pmode.business.mpc"),
            Some(21),
            |k| matches!(k, LoadErrorKind::NotAnAbsoluteUri { value, .. } if value == "not-a-uri"),
        ),
        (
            "c-semantic.toml",
            Some("pmode.security.encrypt"),
            Some(23),
            |k| matches!(k, LoadErrorKind::EncryptWithoutSign),
        ),
        (
            "c-semantic.toml",
            Some("pmode.security.receipt_reply_pattern"),
            Some(26),
            |k| matches!(k, LoadErrorKind::NotSupported { .. }),
        ),
        (
            "c-semantic.toml",
            Some("pmode.payload.max_parts"),
            Some(29),
            |k| {
                matches!(
                    k,
                    LoadErrorKind::OutOfRange {
                        value: 0,
                        min: 1,
                        max: 1000
                    }
                )
            },
        ),
        (
            "c-semantic.toml",
            Some("pmode.reception_awareness.max_retries"),
            Some(32),
            |k| {
                matches!(
                    k,
                    LoadErrorKind::OutOfRange {
                        value: 101,
                        min: 0,
                        max: 100
                    }
                )
            },
        ),
        (
            "c-semantic.toml",
            Some("pmode.reception_awareness.retry_interval_secs"),
            Some(33),
            |k| {
                matches!(
                    k,
                    LoadErrorKind::OutOfRange {
                        value: 0,
                        min: 1,
                        ..
                    }
                )
            },
        ),
        (
            "c-semantic.toml",
            Some("pmode.reception_awareness.max_retry_interval_secs"),
            Some(34),
            |k| {
                matches!(
                    k,
                    LoadErrorKind::OutOfRange {
                        value: 86_401,
                        max: 86_400,
                        ..
                    }
                )
            },
        ),
        (
            "c-semantic.toml",
            Some("pmode.reception_awareness.duplicate_window_secs"),
            Some(35),
            |k| {
                matches!(
                    k,
                    LoadErrorKind::OutOfRange {
                        value: 0,
                        min: 1,
                        ..
                    }
                )
            },
        ),
        ("e-dup-second.toml", Some("pmode.id"), None, |k| {
            matches!(k, LoadErrorKind::DuplicateId { id, first }
                if id == "dup" && first.ends_with("d-dup-first.toml"))
        }),
        ("g-ambiguous-second.toml", Some("pmode"), None, |k| {
            matches!(k, LoadErrorKind::Ambiguous { id, other, other_file }
                if id == "same-b" && other == "same-a" && other_file.ends_with("f-ambiguous-first.toml"))
        }),
    ];
    for (i, (error, (file, key, line, check))) in errors.iter().zip(expected).enumerate() {
        assert_eq!(file_name(error), *file, "error {i}: {error}");
        assert_eq!(error.key.as_deref(), *key, "error {i}: {error}");
        assert_eq!(error.line, *line, "error {i}: {error}");
        assert!(check(&error.kind), "error {i}: {error}");
    }
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
}

#[test]
fn display_lists_one_problem_per_line() {
    let Err(e) = PModeSet::load_dir(&fixture("bad")) else {
        panic!("bad fixtures loaded");
    };
    let text = e.to_string();
    assert!(text.starts_with(&format!("{} problem(s)", e.errors().len())));
    assert_eq!(text.lines().count(), e.errors().len() + 1);
    assert!(text.contains("b-structure.toml:16: pmode.security: unknown variant"));
}

fn write(dir: &Path, name: &str, text: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn only_error(dir: &Path) -> LoadError {
    let mut errors = load_errors(dir);
    assert_eq!(errors.len(), 1, "{errors:#?}");
    errors.remove(0)
}

const MINIMAL: &str = r#"
[pmode]
id = "minimal"
[pmode.initiator]
party_id = "urn:x:a"
role = "urn:x:sender"
[pmode.responder]
party_id = "urn:x:b"
role = "urn:x:receiver"
[pmode.business]
service = "urn:x:service"
action = "Go"
[pmode.security]
profile = "edelivery-as4-1.15"
"#;

#[test]
fn empty_directory_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "notes.txt", b"not a P-Mode");
    let e = only_error(dir.path());
    assert!(matches!(e.kind, LoadErrorKind::NoPModes));
    assert_eq!(e.file, dir.path());
}

#[test]
fn missing_directory_is_an_io_error() {
    let dir = tempfile::tempdir().unwrap();
    let e = only_error(&dir.path().join("absent"));
    assert!(matches!(e.kind, LoadErrorKind::Io(_)));
}

#[test]
fn oversized_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = MINIMAL.as_bytes().to_vec();
    text.resize(MAX_PMODE_FILE_BYTES as usize + 1, b'\n');
    write(dir.path(), "big.toml", &text);
    let e = only_error(dir.path());
    assert!(matches!(
        e.kind,
        LoadErrorKind::FileTooLarge {
            limit: MAX_PMODE_FILE_BYTES
        }
    ));
}

#[test]
fn non_utf8_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "latin1.toml", b"[pmode]\nid = \"caf\xe9\"\n");
    assert!(matches!(
        only_error(dir.path()).kind,
        LoadErrorKind::NotUtf8
    ));
}

#[test]
fn file_without_pmode_table() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "empty.toml", b"# nothing\n");
    let e = only_error(dir.path());
    assert!(matches!(e.kind, LoadErrorKind::MissingKey));
    assert_eq!(e.key.as_deref(), Some("pmode"));
}

#[test]
fn pmode_must_be_a_table() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "scalar.toml", b"pmode = 1\n");
    let e = only_error(dir.path());
    assert!(matches!(&e.kind, LoadErrorKind::InvalidValue(m) if m.contains("expected a table")));
    assert_eq!((e.key.as_deref(), e.line), (Some("pmode"), Some(1)));
}

#[test]
fn load_file_and_from_toml_str() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "one.toml", MINIMAL.as_bytes());
    let from_file = PMode::load_file(&path).unwrap();
    let from_str = PMode::from_toml_str(MINIMAL, Path::new("inline")).unwrap();
    assert_eq!(from_file, from_str);
    assert_eq!(from_file.id, "minimal");

    let broken = MINIMAL.replace("action = \"Go\"", "action = \"Go\"\nacton = \"typo\"");
    let errors = PMode::from_toml_str(&broken, Path::new("inline"))
        .unwrap_err()
        .0;
    assert_eq!(errors.len(), 1);
    assert_eq!(errors[0].key.as_deref(), Some("pmode.business"));
    assert!(
        matches!(&errors[0].kind, LoadErrorKind::InvalidValue(m) if m.contains("unknown field `acton`"))
    );
    assert_eq!(errors[0].file, Path::new("inline"));
}

#[test]
fn typed_party_ids_need_no_uri_and_types_separate_pmodes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.toml", MINIMAL.as_bytes());
    let typed = MINIMAL
        .replace("id = \"minimal\"", "id = \"typed\"")
        .replace(
            "party_id = \"urn:x:a\"",
            "party_id = \"urn:x:a\"\nparty_type = \"urn:x:t\"",
        );
    write(dir.path(), "b.toml", typed.as_bytes());
    let plain_id = MINIMAL
        .replace("id = \"minimal\"", "id = \"plain\"")
        .replace(
            "party_id = \"urn:x:b\"",
            "party_id = \"red_gw\"\nparty_type = \"urn:x:t\"",
        );
    write(dir.path(), "c.toml", plain_id.as_bytes());
    let set = PModeSet::load_dir(dir.path()).unwrap();
    assert_eq!(set.len(), 3);
}
