//! ebMS3 / AS4 error codes and the crate's error type.
//!
//! [`ErrorCode`] lists every standard error of ebMS3 core §6.7 (processing,
//! security and reliability errors) and the AS4 profile §3 additions
//! (EBMS:0301–0303), with the short description, recommended severity, category
//! and origin from the spec tables. [`EbmsError`] is what every fallible function
//! of this crate returns: the code that goes on the wire plus a human detail.
//! The daemon turns it into an `eb:Error` signal (see [`crate::signal`]) and/or a
//! SOAP fault in one place at the HTTP edge.

use std::fmt;

/// Severity of an ebMS error (`eb:Error/@severity`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    /// Processing of the message in error cannot continue.
    Failure,
    /// Informational; processing may continue.
    Warning,
}

impl Severity {
    /// The attribute value (`"failure"` / `"warning"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Failure => "failure",
            Severity::Warning => "warning",
        }
    }
}

/// Category of an ebMS error (`eb:Error/@category`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Category {
    /// The content of the message is in error.
    Content,
    /// A transport / communication problem.
    Communication,
    /// The message could not be unpacked (MIME, SOAP, ebMS header).
    Unpackaging,
    /// Processing (P-Mode, security, reliability) failed.
    Processing,
}

impl Category {
    /// The attribute value (`"Content"`, `"Communication"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Content => "Content",
            Category::Communication => "Communication",
            Category::Unpackaging => "Unpackaging",
            Category::Processing => "Processing",
        }
    }
}

/// A standard ebMS3 / AS4 error code, in spec order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// EBMS:0001 — a value could not be recognised.
    ValueNotRecognized,
    /// EBMS:0002 — a feature is not supported (warning).
    FeatureNotSupportedWarning,
    /// EBMS:0003 — a value is inconsistent with other values, the P-Mode or the spec.
    ValueInconsistent,
    /// EBMS:0004 — any other error.
    Other,
    /// EBMS:0005 — transport connection failure.
    ConnectionFailure,
    /// EBMS:0006 — no message available for pulling on this MPC (warning).
    EmptyMessagePartitionChannel,
    /// EBMS:0007 — MIME usage inconsistent with the spec.
    MimeInconsistency,
    /// EBMS:0008 — presence/absence of an element is not supported (failure).
    FeatureNotSupportedFailure,
    /// EBMS:0009 — the ebMS header is not well formed or breaks packaging rules.
    InvalidHeader,
    /// EBMS:0010 — header incompatible with the P-Mode.
    ProcessingModeMismatch,
    /// EBMS:0011 — an external payload reference could not be resolved.
    ExternalPayloadError,
    /// EBMS:0101 — signature could not be validated.
    FailedAuthentication,
    /// EBMS:0102 — encrypted data could not be decrypted.
    FailedDecryption,
    /// EBMS:0103 — security policy requirements not satisfied.
    PolicyNoncompliance,
    /// EBMS:0201 — reliability function not operational.
    DysfunctionalReliability,
    /// EBMS:0202 — guaranteed delivery could not be assured.
    DeliveryFailure,
    /// EBMS:0301 — no receipt received for a sent message (AS4).
    MissingReceipt,
    /// EBMS:0302 — receipt received but does not match the sent message (AS4).
    InvalidReceipt,
    /// EBMS:0303 — payload decompression failed (AS4).
    DecompressionFailure,
}

impl ErrorCode {
    /// Every code, in spec order.
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::ValueNotRecognized,
        ErrorCode::FeatureNotSupportedWarning,
        ErrorCode::ValueInconsistent,
        ErrorCode::Other,
        ErrorCode::ConnectionFailure,
        ErrorCode::EmptyMessagePartitionChannel,
        ErrorCode::MimeInconsistency,
        ErrorCode::FeatureNotSupportedFailure,
        ErrorCode::InvalidHeader,
        ErrorCode::ProcessingModeMismatch,
        ErrorCode::ExternalPayloadError,
        ErrorCode::FailedAuthentication,
        ErrorCode::FailedDecryption,
        ErrorCode::PolicyNoncompliance,
        ErrorCode::DysfunctionalReliability,
        ErrorCode::DeliveryFailure,
        ErrorCode::MissingReceipt,
        ErrorCode::InvalidReceipt,
        ErrorCode::DecompressionFailure,
    ];

    /// The wire code, e.g. `"EBMS:0004"`.
    pub fn code(self) -> &'static str {
        match self {
            ErrorCode::ValueNotRecognized => "EBMS:0001",
            ErrorCode::FeatureNotSupportedWarning => "EBMS:0002",
            ErrorCode::ValueInconsistent => "EBMS:0003",
            ErrorCode::Other => "EBMS:0004",
            ErrorCode::ConnectionFailure => "EBMS:0005",
            ErrorCode::EmptyMessagePartitionChannel => "EBMS:0006",
            ErrorCode::MimeInconsistency => "EBMS:0007",
            ErrorCode::FeatureNotSupportedFailure => "EBMS:0008",
            ErrorCode::InvalidHeader => "EBMS:0009",
            ErrorCode::ProcessingModeMismatch => "EBMS:0010",
            ErrorCode::ExternalPayloadError => "EBMS:0011",
            ErrorCode::FailedAuthentication => "EBMS:0101",
            ErrorCode::FailedDecryption => "EBMS:0102",
            ErrorCode::PolicyNoncompliance => "EBMS:0103",
            ErrorCode::DysfunctionalReliability => "EBMS:0201",
            ErrorCode::DeliveryFailure => "EBMS:0202",
            ErrorCode::MissingReceipt => "EBMS:0301",
            ErrorCode::InvalidReceipt => "EBMS:0302",
            ErrorCode::DecompressionFailure => "EBMS:0303",
        }
    }

    /// Looks a wire code (`"EBMS:0004"`) up; `None` for codes outside the standard set.
    pub fn from_code(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// The spec's short description (`eb:Error/@shortDescription`).
    ///
    /// EBMS:0002 and EBMS:0008 share the name `FeatureNotSupported` in ebMS3 core.
    pub fn short_description(self) -> &'static str {
        match self {
            ErrorCode::ValueNotRecognized => "ValueNotRecognized",
            ErrorCode::FeatureNotSupportedWarning | ErrorCode::FeatureNotSupportedFailure => {
                "FeatureNotSupported"
            }
            ErrorCode::ValueInconsistent => "ValueInconsistent",
            ErrorCode::Other => "Other",
            ErrorCode::ConnectionFailure => "ConnectionFailure",
            ErrorCode::EmptyMessagePartitionChannel => "EmptyMessagePartitionChannel",
            ErrorCode::MimeInconsistency => "MimeInconsistency",
            ErrorCode::InvalidHeader => "InvalidHeader",
            ErrorCode::ProcessingModeMismatch => "ProcessingModeMismatch",
            ErrorCode::ExternalPayloadError => "ExternalPayloadError",
            ErrorCode::FailedAuthentication => "FailedAuthentication",
            ErrorCode::FailedDecryption => "FailedDecryption",
            ErrorCode::PolicyNoncompliance => "PolicyNoncompliance",
            ErrorCode::DysfunctionalReliability => "DysfunctionalReliability",
            ErrorCode::DeliveryFailure => "DeliveryFailure",
            ErrorCode::MissingReceipt => "MissingReceipt",
            ErrorCode::InvalidReceipt => "InvalidReceipt",
            ErrorCode::DecompressionFailure => "DecompressionFailure",
        }
    }

    /// The spec's recommended severity.
    pub fn severity(self) -> Severity {
        match self {
            ErrorCode::FeatureNotSupportedWarning | ErrorCode::EmptyMessagePartitionChannel => {
                Severity::Warning
            }
            _ => Severity::Failure,
        }
    }

    /// The spec's category.
    pub fn category(self) -> Category {
        match self {
            ErrorCode::ValueNotRecognized
            | ErrorCode::FeatureNotSupportedWarning
            | ErrorCode::ValueInconsistent
            | ErrorCode::Other
            | ErrorCode::ExternalPayloadError => Category::Content,
            ErrorCode::ConnectionFailure
            | ErrorCode::EmptyMessagePartitionChannel
            | ErrorCode::DeliveryFailure
            | ErrorCode::MissingReceipt
            | ErrorCode::InvalidReceipt
            | ErrorCode::DecompressionFailure => Category::Communication,
            ErrorCode::MimeInconsistency
            | ErrorCode::FeatureNotSupportedFailure
            | ErrorCode::InvalidHeader => Category::Unpackaging,
            ErrorCode::ProcessingModeMismatch
            | ErrorCode::FailedAuthentication
            | ErrorCode::FailedDecryption
            | ErrorCode::PolicyNoncompliance
            | ErrorCode::DysfunctionalReliability => Category::Processing,
        }
    }

    /// The module the error originates from (`eb:Error/@origin`): `"ebms"`,
    /// `"security"` or `"reliability"` (ebMS3 core §6.7.1–6.7.3). The AS4
    /// profile errors (0301–0303) name no origin; they are raised by the ebMS
    /// module, so `"ebms"`.
    pub fn origin(self) -> &'static str {
        match self {
            ErrorCode::FailedAuthentication
            | ErrorCode::FailedDecryption
            | ErrorCode::PolicyNoncompliance => "security",
            ErrorCode::DysfunctionalReliability | ErrorCode::DeliveryFailure => "reliability",
            _ => "ebms",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.code(), self.short_description())
    }
}

/// An ebMS error: the wire code, a human-readable detail and, when known, the id
/// of the message in error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct EbmsError {
    /// The standard code that goes on the wire.
    pub code: ErrorCode,
    /// What exactly was wrong (goes into `eb:ErrorDetail` / `eb:Description`).
    pub detail: String,
    /// `eb:MessageId` of the message in error, when it could be read.
    pub ref_to_message_id: Option<String>,
}

impl EbmsError {
    /// An error with `code` and `detail`, not yet tied to a message id.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        EbmsError {
            code,
            detail: detail.into(),
            ref_to_message_id: None,
        }
    }

    /// EBMS:0009 InvalidHeader with `detail`.
    pub fn invalid_header(detail: impl Into<String>) -> Self {
        EbmsError::new(ErrorCode::InvalidHeader, detail)
    }

    /// EBMS:0007 MimeInconsistency with `detail`.
    pub fn mime_inconsistency(detail: impl Into<String>) -> Self {
        EbmsError::new(ErrorCode::MimeInconsistency, detail)
    }

    /// Ties the error to the message in error (builder style).
    pub fn with_ref_to_message_id(mut self, message_id: impl Into<String>) -> Self {
        self.ref_to_message_id = Some(message_id.into());
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ErrorCode::from_code("EBMS:9999"), None);
    }

    #[test]
    fn spec_table_values() {
        let c = ErrorCode::DecompressionFailure;
        assert_eq!(c.code(), "EBMS:0303");
        assert_eq!(c.short_description(), "DecompressionFailure");
        assert_eq!(c.severity(), Severity::Failure);
        assert_eq!(c.category(), Category::Communication);
        assert_eq!(
            ErrorCode::EmptyMessagePartitionChannel.severity(),
            Severity::Warning
        );
        assert_eq!(ErrorCode::InvalidHeader.category(), Category::Unpackaging);
        assert_eq!(ErrorCode::FailedAuthentication.origin(), "security");
        assert_eq!(ErrorCode::DeliveryFailure.origin(), "reliability");
        assert_eq!(ErrorCode::ValueNotRecognized.origin(), "ebms");
    }

    #[test]
    fn display_shows_code_and_detail() {
        let e = EbmsError::new(ErrorCode::Other, "boom").with_ref_to_message_id("m@x");
        assert_eq!(e.to_string(), "EBMS:0004 Other: boom");
        assert_eq!(e.ref_to_message_id.as_deref(), Some("m@x"));
    }
}
