//! TOML text to [`PMode`], reporting every problem rather than the first.
//!
//! serde stops at the first error it meets, so the text is first parsed into a spanned TOML
//! tree and each key of the `[pmode]` table is deserialized on its own: a typo in
//! `[pmode.security]` and a bad value in `[pmode.business]` are both reported. Within one of
//! those tables the deserializer's first error is reported. Only when every key passes is the
//! whole file deserialized (the model's serde derive stays the single source of truth) and then
//! checked by [`crate::validate`].

use std::path::Path;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

use crate::error::{LoadError, LoadErrorKind};
use crate::model::{
    AgreementRef, Binding, BusinessInfo, Mep, PMode, PModeFile, PartySpec, PayloadSpec,
    ReceptionAwareness, SecuritySpec,
};

/// Type-checks one value by deserializing it into the field's type.
type Check = for<'a> fn(ValueDeserializer<'a>) -> Result<(), toml::de::Error>;

/// The keys of `[pmode]`: name, required, type check. Must list exactly the fields of
/// [`PMode`] (a unit test holds them together).
const PMODE_KEYS: [(&str, bool, Check); 10] = [
    ("id", true, check::<String> as Check),
    ("agreement", false, check::<AgreementRef> as Check),
    ("mep", false, check::<Mep> as Check),
    ("binding", false, check::<Binding> as Check),
    ("initiator", true, check::<PartySpec> as Check),
    ("responder", true, check::<PartySpec> as Check),
    ("business", true, check::<BusinessInfo> as Check),
    ("security", true, check::<SecuritySpec> as Check),
    ("payload", false, check::<PayloadSpec> as Check),
    (
        "reception_awareness",
        false,
        check::<ReceptionAwareness> as Check,
    ),
];

/// [`PMODE_KEYS`] for error messages.
const PMODE_KEY_NAMES: &str = "id, agreement, mep, binding, initiator, responder, business, \
                               security, payload, reception_awareness";

fn check<T: DeserializeOwned>(value: ValueDeserializer<'_>) -> Result<(), toml::de::Error> {
    T::deserialize(value).map(drop)
}

/// Parses and validates one P-Mode file's text. `file` only labels the errors.
pub(crate) fn parse_pmode(text: &str, file: &Path) -> Result<PMode, Vec<LoadError>> {
    let error = |key: Option<String>, span: Option<std::ops::Range<usize>>, kind| LoadError {
        file: file.to_path_buf(),
        key,
        line: span.map(|s| line_of(text, s.start)),
        kind,
    };

    let (root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        return Err(syntax
            .into_iter()
            .map(|e| {
                error(
                    None,
                    e.span(),
                    LoadErrorKind::Syntax(e.message().to_owned()),
                )
            })
            .collect());
    }

    let mut errors = Vec::new();
    let mut pmode_table = None;
    for (key, value) in root.get_ref() {
        if key.get_ref() == "pmode" {
            match value.get_ref().as_table() {
                Some(table) => pmode_table = Some(table),
                None => errors.push(error(
                    Some("pmode".to_owned()),
                    Some(value.span()),
                    LoadErrorKind::InvalidValue(format!(
                        "expected a table, found {}",
                        value.get_ref().type_str()
                    )),
                )),
            }
        } else {
            errors.push(error(
                Some(key.get_ref().to_string()),
                Some(key.span()),
                LoadErrorKind::UnknownKey { expected: "pmode" },
            ));
        }
    }

    match pmode_table {
        Some(table) => check_pmode_table(table, &error, &mut errors),
        None if errors.is_empty() => {
            errors.push(error(
                Some("pmode".to_owned()),
                None,
                LoadErrorKind::MissingKey,
            ));
        }
        None => {}
    }
    if !errors.is_empty() {
        errors.sort_by_key(|e| (e.line.is_none(), e.line));
        return Err(errors);
    }

    let pmode = match toml::from_str::<PModeFile>(text) {
        Ok(parsed) => parsed.pmode,
        Err(e) => {
            return Err(vec![error(
                Some("pmode".to_owned()),
                e.span(),
                LoadErrorKind::InvalidValue(e.message().to_owned()),
            )]);
        }
    };

    let problems = crate::validate::validate(&pmode);
    if problems.is_empty() {
        return Ok(pmode);
    }
    let mut errors: Vec<LoadError> = problems
        .into_iter()
        .map(|(key, kind)| {
            let span = span_of(root.get_ref(), &key);
            error(Some(key), span, kind)
        })
        .collect();
    errors.sort_by_key(|e| (e.line.is_none(), e.line));
    Err(errors)
}

/// Checks each key of `[pmode]` on its own and reports missing required keys.
fn check_pmode_table(
    table: &DeTable<'_>,
    error: &impl Fn(Option<String>, Option<std::ops::Range<usize>>, LoadErrorKind) -> LoadError,
    errors: &mut Vec<LoadError>,
) {
    for (key, value) in table {
        let name = key.get_ref();
        let path = format!("pmode.{name}");
        match PMODE_KEYS
            .iter()
            .find(|(known, _, _)| *known == name.as_ref())
        {
            Some((_, _, check)) => {
                if let Err(e) = check(ValueDeserializer::from(value.clone())) {
                    let span = e.span().or(Some(value.span()));
                    errors.push(error(
                        Some(path),
                        span,
                        LoadErrorKind::InvalidValue(e.message().to_owned()),
                    ));
                }
            }
            None => errors.push(error(
                Some(path),
                Some(key.span()),
                LoadErrorKind::UnknownKey {
                    expected: PMODE_KEY_NAMES,
                },
            )),
        }
    }
    for (name, required, _) in PMODE_KEYS {
        if required && !table.keys().any(|k| k.get_ref() == name) {
            errors.push(error(
                Some(format!("pmode.{name}")),
                None,
                LoadErrorKind::MissingKey,
            ));
        }
    }
}

/// The span of a dotted key, or of its nearest present ancestor when it was defaulted.
fn span_of(root: &DeTable<'_>, dotted: &str) -> Option<std::ops::Range<usize>> {
    let mut table = root;
    let mut best = None;
    for part in dotted.split('.') {
        let Some((key, value)) = table.iter().find(|(k, _)| k.get_ref() == part) else {
            break;
        };
        best = Some(key.span());
        match value.get_ref() {
            DeValue::Table(inner) => table = inner,
            _ => break,
        }
    }
    best
}

/// 1-based line number of a byte offset.
fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pmode_keys_cover_every_field() {
        let full = include_str!("../tests/fixtures/good/blue-to-red.toml");
        let root: toml::Table = toml::from_str(full).unwrap();
        let pmode = root["pmode"].as_table().unwrap();
        let names: Vec<&str> = PMODE_KEYS.iter().map(|(n, _, _)| *n).collect();
        assert_eq!(
            pmode.len(),
            names.len(),
            "fixture must set every [pmode] key"
        );
        for key in pmode.keys() {
            assert!(
                names.contains(&key.as_str()),
                "{key} missing from PMODE_KEYS"
            );
        }
        assert_eq!(PMODE_KEY_NAMES.replace(' ', ""), names.join(","));
    }

    #[test]
    fn line_of_counts_newlines() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 2), 2);
        assert_eq!(line_of("a\nb\nc", 99), 3);
    }
}
