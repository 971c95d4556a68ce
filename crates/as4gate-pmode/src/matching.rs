//! Matching a received user message's header values to exactly one P-Mode.
//!
//! A P-Mode matches when every field of the [`MatchKey`] equals its configured value:
//! AgreementRef (absent on both sides, or equal), From and To PartyId and `@type`, From and
//! To Role, Service and `@type`, Action and MPC (absent means [`crate::DEFAULT_MPC`] on both
//! sides). Comparison is exact; type attributes must be absent on both sides or equal.
//! Loading guarantees no two P-Modes share all these values, so at most one matches.
//!
//! When none matches, [`MatchError::NoMatch`] names the closest P-Mode (fewest differing
//! fields, then the first in load order) and every field in which it differs, for the
//! operator's log. Its [`MatchError::code`] follows ebMS3 core: `EBMS:0001` when the
//! AgreementRef, Service or Action is configured in no P-Mode at all (§5.2.2.7, §5.2.2.9),
//! otherwise `EBMS:0010` (§4, "cannot match a message to a P-Mode").

use std::fmt;

use crate::model::{DEFAULT_MPC, PMode};

/// The header values of one received user message, as plain strings. The daemon builds it
/// from the parsed `eb:UserMessage`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchKey<'a> {
    /// `eb:AgreementRef` value, if present.
    pub agreement: Option<&'a str>,
    /// `eb:From/eb:PartyId` value and `@type`.
    pub from_party: (&'a str, Option<&'a str>),
    /// `eb:From/eb:Role`.
    pub from_role: &'a str,
    /// `eb:To/eb:PartyId` value and `@type`.
    pub to_party: (&'a str, Option<&'a str>),
    /// `eb:To/eb:Role`.
    pub to_role: &'a str,
    /// `eb:Service` value and `@type`.
    pub service: (&'a str, Option<&'a str>),
    /// `eb:Action`.
    pub action: &'a str,
    /// `eb:UserMessage/@mpc`, if present (absent means [`DEFAULT_MPC`]).
    pub mpc: Option<&'a str>,
}

impl<'a> MatchKey<'a> {
    /// The key a message sent under `pmode` carries (no AgreementRef when the P-Mode has none,
    /// the P-Mode's MPC).
    pub fn of(pmode: &'a PMode) -> Self {
        Self {
            agreement: pmode.agreement.as_ref().map(|a| a.value.as_str()),
            from_party: (
                &pmode.initiator.party_id,
                pmode.initiator.party_type.as_deref(),
            ),
            from_role: &pmode.initiator.role,
            to_party: (
                &pmode.responder.party_id,
                pmode.responder.party_type.as_deref(),
            ),
            to_role: &pmode.responder.role,
            service: (
                &pmode.business.service,
                pmode.business.service_type.as_deref(),
            ),
            action: &pmode.business.action,
            mpc: Some(pmode.business.mpc_or_default()),
        }
    }

    /// The MPC, with [`DEFAULT_MPC`] for an absent one.
    fn mpc_or_default(&self) -> &'a str {
        self.mpc.unwrap_or(DEFAULT_MPC)
    }

    /// Whether two keys select the same messages (the MPC defaulted on both sides).
    pub(crate) fn selects_same_messages(&self, other: &MatchKey<'_>) -> bool {
        Self { mpc: None, ..*self }
            == MatchKey {
                mpc: None,
                ..*other
            }
            && self.mpc_or_default() == other.mpc_or_default()
    }
}

/// A header field that takes part in matching, in `eb:UserMessage` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchField {
    /// `eb:AgreementRef`.
    Agreement,
    /// `eb:From/eb:PartyId`.
    FromParty,
    /// `eb:From/eb:PartyId/@type`.
    FromPartyType,
    /// `eb:From/eb:Role`.
    FromRole,
    /// `eb:To/eb:PartyId`.
    ToParty,
    /// `eb:To/eb:PartyId/@type`.
    ToPartyType,
    /// `eb:To/eb:Role`.
    ToRole,
    /// `eb:Service`.
    Service,
    /// `eb:Service/@type`.
    ServiceType,
    /// `eb:Action`.
    Action,
    /// `eb:UserMessage/@mpc`.
    Mpc,
}

impl MatchField {
    /// The field as the ebMS header names it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agreement => "AgreementRef",
            Self::FromParty => "From/PartyId",
            Self::FromPartyType => "From/PartyId/@type",
            Self::FromRole => "From/Role",
            Self::ToParty => "To/PartyId",
            Self::ToPartyType => "To/PartyId/@type",
            Self::ToRole => "To/Role",
            Self::Service => "Service",
            Self::ServiceType => "Service/@type",
            Self::Action => "Action",
            Self::Mpc => "mpc",
        }
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One field in which a message differs from a P-Mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The field.
    pub field: MatchField,
    /// The P-Mode's value (`None`: the P-Mode requires the field to be absent).
    pub expected: Option<String>,
    /// The message's value (`None`: absent).
    pub found: Option<String>,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} expected {} but found {}",
            self.field,
            Shown(self.expected.as_deref()),
            Shown(self.found.as_deref())
        )
    }
}

/// An optional header value for messages: quoted, or `(absent)`.
struct Shown<'a>(Option<&'a str>);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(value) => write!(f, "{value:?}"),
            None => f.write_str("(absent)"),
        }
    }
}

/// The ebMS error a failed match maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchErrorCode {
    /// `EBMS:0001` ValueNotRecognized: the AgreementRef, Service or Action is known to no
    /// P-Mode.
    ValueNotRecognized,
    /// `EBMS:0010` ProcessingModeMismatch: the message fits no P-Mode.
    ProcessingModeMismatch,
}

impl MatchErrorCode {
    /// The ebMS error code, `EBMS:0001` or `EBMS:0010`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ValueNotRecognized => "EBMS:0001",
            Self::ProcessingModeMismatch => "EBMS:0010",
        }
    }
}

/// Why no P-Mode matched a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MatchError {
    /// The set holds no P-Mode at all.
    #[error("no P-Modes are configured")]
    NoPModes,
    /// No P-Mode matches; `closest` differs in `mismatches` (never empty).
    #[error("no P-Mode matches the message; the closest, {closest:?}, differs: {}", List(.mismatches))]
    NoMatch {
        /// Id of the P-Mode with the fewest differing fields.
        closest: String,
        /// Every field in which the message differs from `closest`, in header order.
        mismatches: Vec<Mismatch>,
        /// The ebMS error to answer with.
        code: MatchErrorCode,
    },
}

impl MatchError {
    /// The ebMS error to answer with.
    pub fn code(&self) -> MatchErrorCode {
        match self {
            Self::NoPModes => MatchErrorCode::ProcessingModeMismatch,
            Self::NoMatch { code, .. } => *code,
        }
    }

    /// A description safe to send to the (not yet authenticated) sender: it names the header
    /// fields that did not fit, but neither P-Mode ids nor configured values. The `Display`
    /// text has both and is meant for the operator's log.
    pub fn sender_description(&self) -> String {
        match self {
            Self::NoPModes => "no P-Mode accepts this message".to_owned(),
            Self::NoMatch { mismatches, .. } => {
                let fields: Vec<&str> = mismatches.iter().map(|m| m.field.as_str()).collect();
                format!(
                    "no P-Mode accepts this message; check {}",
                    fields.join(", ")
                )
            }
        }
    }
}

/// Renders mismatches separated by `; `.
struct List<'a>(&'a [Mismatch]);

impl fmt::Display for List<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, mismatch) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{mismatch}")?;
        }
        Ok(())
    }
}

/// Every field in which `key` differs from `pmode`, in header order.
pub(crate) fn mismatches(pmode: &PMode, key: &MatchKey<'_>) -> Vec<Mismatch> {
    let want = MatchKey::of(pmode);
    let mut out = Vec::new();
    let mut compare = |field, expected: Option<&str>, found: Option<&str>| {
        if expected != found {
            out.push(Mismatch {
                field,
                expected: expected.map(str::to_owned),
                found: found.map(str::to_owned),
            });
        }
    };
    compare(MatchField::Agreement, want.agreement, key.agreement);
    compare(
        MatchField::FromParty,
        Some(want.from_party.0),
        Some(key.from_party.0),
    );
    compare(
        MatchField::FromPartyType,
        want.from_party.1,
        key.from_party.1,
    );
    compare(
        MatchField::FromRole,
        Some(want.from_role),
        Some(key.from_role),
    );
    compare(
        MatchField::ToParty,
        Some(want.to_party.0),
        Some(key.to_party.0),
    );
    compare(MatchField::ToPartyType, want.to_party.1, key.to_party.1);
    compare(MatchField::ToRole, Some(want.to_role), Some(key.to_role));
    compare(
        MatchField::Service,
        Some(want.service.0),
        Some(key.service.0),
    );
    compare(MatchField::ServiceType, want.service.1, key.service.1);
    compare(MatchField::Action, Some(want.action), Some(key.action));
    compare(
        MatchField::Mpc,
        Some(want.mpc_or_default()),
        Some(key.mpc_or_default()),
    );
    out
}

/// Finds the one P-Mode matching `key` among `pmodes` (in load order).
pub(crate) fn match_key<'p>(
    pmodes: &'p [PMode],
    key: &MatchKey<'_>,
) -> Result<&'p PMode, MatchError> {
    let mut closest: Option<(&PMode, Vec<Mismatch>)> = None;
    for pmode in pmodes {
        let differences = mismatches(pmode, key);
        if differences.is_empty() {
            return Ok(pmode);
        }
        if closest
            .as_ref()
            .is_none_or(|(_, best)| differences.len() < best.len())
        {
            closest = Some((pmode, differences));
        }
    }
    let (pmode, mismatches) = closest.ok_or(MatchError::NoPModes)?;
    Err(MatchError::NoMatch {
        closest: pmode.id.clone(),
        mismatches,
        code: code_for(pmodes, key),
    })
}

/// `EBMS:0001` when the AgreementRef, Service (with type) or Action is configured nowhere.
fn code_for(pmodes: &[PMode], key: &MatchKey<'_>) -> MatchErrorCode {
    let known =
        |test: &dyn Fn(&MatchKey<'_>) -> bool| pmodes.iter().any(|p| test(&MatchKey::of(p)));
    let agreement_known = key
        .agreement
        .is_none_or(|value| known(&|k| k.agreement == Some(value)));
    let service_known = known(&|k| k.service == key.service);
    let action_known = known(&|k| k.action == key.action);
    if agreement_known && service_known && action_known {
        MatchErrorCode::ProcessingModeMismatch
    } else {
        MatchErrorCode::ValueNotRecognized
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(mpc: Option<&str>) -> MatchKey<'_> {
        MatchKey {
            agreement: None,
            from_party: ("urn:x:a", None),
            from_role: "urn:x:r1",
            to_party: ("urn:x:b", None),
            to_role: "urn:x:r2",
            service: ("urn:x:s", None),
            action: "A",
            mpc,
        }
    }

    #[test]
    fn empty_set_reports_no_pmodes() {
        let err = match_key(&[], &key(None)).unwrap_err();
        assert_eq!(err, MatchError::NoPModes);
        assert_eq!(err.code(), MatchErrorCode::ProcessingModeMismatch);
    }

    #[test]
    fn absent_and_default_mpc_select_the_same_messages() {
        assert!(key(None).selects_same_messages(&key(Some(DEFAULT_MPC))));
        assert!(!key(None).selects_same_messages(&key(Some("urn:x:mpc"))));
        let typed = MatchKey {
            service: ("urn:x:s", Some("t")),
            ..key(None)
        };
        assert!(!typed.selects_same_messages(&key(None)));
    }
}
