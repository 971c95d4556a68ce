//! The crate's error type and its one mapping to ebMS error codes.
//!
//! Every variant names one violation. [`impl From<&WssecError> for ErrorCode`](ErrorCode) is the
//! single place where security failures become wire codes: signature, token, trust and
//! certificate failures are `EBMS:0101 FailedAuthentication`, policy refusals (algorithms,
//! transforms, limits, a missing signature) are `EBMS:0103 PolicyNoncompliance`, decryption
//! failures ([`crate::xmlenc::XmlEncError`], wrapped) are `EBMS:0102 FailedDecryption`, and envelope problems keep the code the envelope
//! parser chose. Display texts may reach logs and ebMS `Description`s; none carries key material.

use as4gate_ebms::error::{EbmsError, ErrorCode};
use thiserror::Error;

/// A security violation found while verifying or a problem while signing.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum WssecError {
    /// The envelope itself is malformed (reported with the envelope parser's own code).
    #[error("envelope: {0}")]
    Envelope(#[from] EbmsError),
    /// The policy requires a signature but the envelope carries none.
    #[error("the message is not signed but the policy requires a signature")]
    SignatureMissing,
    /// The envelope has no `wsse:Security` header where one is needed.
    #[error("no wsse:Security header")]
    SecurityHeaderMissing,
    /// More than one `ds:Signature` element in the envelope.
    #[error("{count} ds:Signature elements in the envelope; exactly one is allowed")]
    MultipleSignatures {
        /// How many were found.
        count: usize,
    },
    /// The `ds:Signature` is not a direct child of the `wsse:Security` header.
    #[error("ds:Signature is not a child of the wsse:Security header")]
    SignatureOutsideSecurityHeader,
    /// The `ds:Signature` structure is incomplete or malformed.
    #[error("malformed signature: {0}")]
    MalformedSignature(String),
    /// `SignatureMethod` not allowed by the policy.
    #[error("signature algorithm not allowed: {uri}")]
    SignatureAlgorithmNotAllowed {
        /// The refused algorithm URI.
        uri: String,
    },
    /// A `DigestMethod` not allowed by the policy.
    #[error("digest algorithm not allowed: {uri}")]
    DigestAlgorithmNotAllowed {
        /// The refused algorithm URI.
        uri: String,
    },
    /// `CanonicalizationMethod` (or a canonicalization transform) not allowed by the policy.
    #[error("canonicalization algorithm not allowed: {uri}")]
    CanonicalizationNotAllowed {
        /// The refused algorithm URI.
        uri: String,
    },
    /// A reference transform that is not allowed for that kind of reference.
    #[error("transform not allowed on reference {reference}: {uri}")]
    TransformNotAllowed {
        /// The reference URI.
        reference: String,
        /// The refused transform URI.
        uri: String,
    },
    /// A `cid:` reference uses the Attachment-Complete-Signature-Transform, which AS4 does not
    /// use and we do not implement.
    #[error("Attachment-Complete-Signature-Transform is not supported (reference {reference})")]
    CompleteSignatureTransformUnsupported {
        /// The reference URI.
        reference: String,
    },
    /// A `cid:` reference does not carry exactly one transform, the SwA content transform.
    #[error(
        "attachment reference {reference} must have exactly one transform, the SwA content transform"
    )]
    AttachmentTransformMissing {
        /// The reference URI.
        reference: String,
    },
    /// More references than [`crate::SecurityPolicy::max_references`].
    #[error("{count} references exceed the limit of {limit}")]
    TooManyReferences {
        /// References in the signature.
        count: usize,
        /// The configured limit.
        limit: usize,
    },
    /// A reference URI that is neither a bare `#id` nor `cid:`.
    #[error("reference URI not allowed: {uri:?}")]
    ReferenceUriNotAllowed {
        /// The refused URI.
        uri: String,
    },
    /// A same-document reference resolves to something other than `S12:Body` / `eb:Messaging`.
    #[error("reference {uri} signs an element other than the SOAP Body or eb:Messaging")]
    UnexpectedSignedElement {
        /// The reference URI.
        uri: String,
    },
    /// Two references resolve to the same element or name the same attachment.
    #[error("more than one reference covers {target}")]
    DuplicateReference {
        /// The element id or attachment content id.
        target: String,
    },
    /// The SOAP Body is not covered by the signature.
    #[error("the SOAP Body is not signed")]
    BodyNotSigned,
    /// `eb:Messaging` is not covered by the signature.
    #[error("eb:Messaging is not signed")]
    MessagingNotSigned,
    /// Two elements carry the same ID value (signature-wrapping defence).
    #[error("duplicate element ID: {0}")]
    DuplicateId(String),
    /// A same-document reference digest does not match.
    #[error("reference digest mismatch: {0}")]
    ReferenceDigestMismatch(String),
    /// `SignatureValue` does not verify with the signer's key.
    #[error("signature value does not verify: {0}")]
    SignatureInvalid(String),
    /// Any other failure reported by the XML-DSig engine while verifying.
    #[error("signature verification failed: {0}")]
    VerificationFailed(String),
    /// A `cid:` reference names an attachment that is not in the message.
    #[error("signed attachment {cid} is not in the message")]
    AttachmentMissing {
        /// Content-ID without angle brackets.
        cid: String,
    },
    /// An attachment in the message is not covered by any reference.
    #[error("attachment {cid} is not covered by the signature")]
    AttachmentNotSigned {
        /// Content-ID without angle brackets.
        cid: String,
    },
    /// An attachment's digest does not match its reference.
    #[error("digest of attachment {cid} does not match the signed reference")]
    AttachmentDigestMismatch {
        /// Content-ID without angle brackets.
        cid: String,
    },
    /// Reading an attachment failed.
    #[error("reading attachment {cid}: {source}")]
    AttachmentRead {
        /// Content-ID without angle brackets.
        cid: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// An XML attachment exceeds [`crate::swa::MAX_XML_ATTACHMENT_BYTES`], the buffer bound for
    /// canonicalising it.
    #[error("XML attachment exceeds the canonicalisation limit of {limit} bytes")]
    XmlAttachmentTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// An XML attachment could not be parsed or canonicalised.
    #[error("XML attachment cannot be canonicalised: {0}")]
    XmlAttachmentMalformed(String),
    /// A digest algorithm this crate does not implement for attachments.
    #[error("unsupported digest algorithm: {uri}")]
    UnsupportedDigestAlgorithm {
        /// The algorithm URI.
        uri: String,
    },
    /// The signature has no `ds:KeyInfo/wsse:SecurityTokenReference`.
    #[error("ds:KeyInfo with a wsse:SecurityTokenReference is missing")]
    KeyInfoMissing,
    /// The SecurityTokenReference uses a form we do not support.
    #[error("unsupported SecurityTokenReference form: {0}")]
    UnsupportedTokenReference(String),
    /// The referenced BinarySecurityToken is not in the Security header.
    #[error("security token {id} not found in the Security header")]
    TokenNotFound {
        /// The referenced id.
        id: String,
    },
    /// The BinarySecurityToken's ValueType is not X509v3 or X509PKIPathv1.
    #[error("unsupported BinarySecurityToken ValueType: {value_type}")]
    UnsupportedTokenValueType {
        /// The refused ValueType.
        value_type: String,
    },
    /// The token's EncodingType is not Base64Binary.
    #[error("unsupported token EncodingType: {encoding_type}")]
    UnsupportedTokenEncoding {
        /// The refused EncodingType.
        encoding_type: String,
    },
    /// Token content is not valid base64 / DER.
    #[error("malformed security token: {0}")]
    MalformedToken(String),
    /// An issuer-serial or SKI reference matches none of the known partner certificates.
    #[error("the referenced certificate ({0}) is not a known partner certificate")]
    UnknownCertificate(String),
    /// A certificate larger than the configured limit.
    #[error("certificate of {size} bytes exceeds the limit of {limit}")]
    CertificateTooLarge {
        /// Size in bytes.
        size: usize,
        /// The limit in bytes.
        limit: usize,
    },
    /// A certificate that cannot be parsed.
    #[error("malformed certificate: {0}")]
    MalformedCertificate(String),
    /// The signer certificate is expired at the validation time.
    #[error("certificate expired (notAfter {not_after})")]
    CertificateExpired {
        /// The certificate's notAfter, RFC 3339 if it can be formatted.
        not_after: String,
    },
    /// The signer certificate is not yet valid at the validation time.
    #[error("certificate not yet valid (notBefore {not_before})")]
    CertificateNotYetValid {
        /// The certificate's notBefore.
        not_before: String,
    },
    /// The certificate's KeyUsage does not allow signatures.
    #[error("certificate KeyUsage allows neither digitalSignature nor nonRepudiation")]
    CertificateKeyUsage,
    /// No path from the certificate to a trust anchor.
    #[error("certificate is not trusted: {0}")]
    UntrustedCertificate(String),
    /// The signing key cannot be loaded or is of an unsupported type.
    #[error("signing key: {0}")]
    SigningKey(String),
    /// The envelope to sign lacks a `wsu:Id` on an element that must be referenced.
    #[error("{element} has no wsu:Id")]
    MissingWsuId {
        /// `S12:Body` or `eb:Messaging`.
        element: &'static str,
    },
    /// The XML-DSig engine failed while signing.
    #[error("signing failed: {0}")]
    SigningFailed(String),
    /// Attachment decryption (or reading the encryption header) failed.
    #[error("decryption: {0}")]
    Decryption(#[from] crate::xmlenc::XmlEncError),
}

impl From<&WssecError> for ErrorCode {
    fn from(error: &WssecError) -> Self {
        use WssecError as E;
        match error {
            E::Envelope(inner) => inner.code,
            E::SignatureMissing
            | E::SignatureAlgorithmNotAllowed { .. }
            | E::DigestAlgorithmNotAllowed { .. }
            | E::CanonicalizationNotAllowed { .. }
            | E::TransformNotAllowed { .. }
            | E::CompleteSignatureTransformUnsupported { .. }
            | E::AttachmentTransformMissing { .. }
            | E::TooManyReferences { .. }
            | E::ReferenceUriNotAllowed { .. }
            | E::UnsupportedDigestAlgorithm { .. }
            | E::UnsupportedTokenReference(_)
            | E::UnsupportedTokenValueType { .. }
            | E::UnsupportedTokenEncoding { .. }
            | E::CertificateTooLarge { .. }
            | E::XmlAttachmentTooLarge { .. } => ErrorCode::PolicyNoncompliance,
            E::SecurityHeaderMissing
            | E::MultipleSignatures { .. }
            | E::SignatureOutsideSecurityHeader
            | E::MalformedSignature(_)
            | E::UnexpectedSignedElement { .. }
            | E::DuplicateReference { .. }
            | E::BodyNotSigned
            | E::MessagingNotSigned
            | E::DuplicateId(_)
            | E::ReferenceDigestMismatch(_)
            | E::SignatureInvalid(_)
            | E::VerificationFailed(_)
            | E::AttachmentMissing { .. }
            | E::AttachmentNotSigned { .. }
            | E::AttachmentDigestMismatch { .. }
            | E::AttachmentRead { .. }
            | E::XmlAttachmentMalformed(_)
            | E::KeyInfoMissing
            | E::TokenNotFound { .. }
            | E::MalformedToken(_)
            | E::UnknownCertificate(_)
            | E::MalformedCertificate(_)
            | E::CertificateExpired { .. }
            | E::CertificateNotYetValid { .. }
            | E::CertificateKeyUsage
            | E::UntrustedCertificate(_) => ErrorCode::FailedAuthentication,
            // Local signing problems are ours, not the peer's; they surface as EBMS:0004.
            E::SigningKey(_) | E::MissingWsuId { .. } | E::SigningFailed(_) => ErrorCode::Other,
            E::Decryption(_) => ErrorCode::FailedDecryption,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_each_class_to_its_code() {
        assert_eq!(
            ErrorCode::from(&WssecError::SignatureAlgorithmNotAllowed { uri: "x".into() }),
            ErrorCode::PolicyNoncompliance
        );
        assert_eq!(
            ErrorCode::from(&WssecError::AttachmentDigestMismatch { cid: "a".into() }),
            ErrorCode::FailedAuthentication
        );
        assert_eq!(
            ErrorCode::from(&WssecError::CertificateExpired {
                not_after: "t".into()
            }),
            ErrorCode::FailedAuthentication
        );
        assert_eq!(
            ErrorCode::from(&WssecError::SignatureMissing),
            ErrorCode::PolicyNoncompliance
        );
    }
}
