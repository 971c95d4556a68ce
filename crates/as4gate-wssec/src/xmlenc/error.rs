//! The error type of the XML-Enc half: every variant names one violation.
//!
//! The crate-level `WssecError` wraps [`XmlEncError`] and maps all of it to
//! `EBMS:0102 FailedDecryption`. Display texts may reach logs; none of them carries
//! key material or distinguishes *why* an RSA-OAEP unwrap failed (see
//! [`XmlEncError::KeyUnwrapFailed`]).

use thiserror::Error;

/// A violation found while reading, decrypting or building AS4 attachment encryption.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum XmlEncError {
    /// An element the profile requires is absent.
    #[error("missing element {0}")]
    MissingElement(&'static str),
    /// An attribute the profile requires is absent.
    #[error("missing attribute {attribute} on {element}")]
    MissingAttribute {
        /// Local name of the element.
        element: &'static str,
        /// Local name of the missing attribute.
        attribute: &'static str,
    },
    /// An element occurs more often than the profile allows.
    #[error("element {0} occurs more than once")]
    DuplicateElement(&'static str),
    /// Base64 text (CipherValue, token, key identifier) does not decode.
    #[error("invalid base64 in {0}")]
    InvalidBase64(&'static str),
    /// More `xenc:EncryptedKey` elements than [`crate::xmlenc::PlanLimits::max_encrypted_keys`].
    #[error("too many EncryptedKey elements (limit {limit})")]
    TooManyEncryptedKeys {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// More `xenc:EncryptedData` elements than [`crate::xmlenc::PlanLimits::max_encrypted_data`].
    #[error("too many EncryptedData elements (limit {limit})")]
    TooManyEncryptedData {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// More `xenc:DataReference`s in one key than allowed.
    #[error("too many DataReference elements in one EncryptedKey (limit {limit})")]
    TooManyDataReferences {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// A CipherValue longer than [`crate::xmlenc::PlanLimits::max_cipher_value_bytes`].
    #[error("CipherValue longer than {limit} bytes")]
    CipherValueTooLong {
        /// The limit that was exceeded.
        limit: usize,
    },
    /// The key-transport or key-agreement algorithm (or its parameter combination) is not supported.
    #[error("unsupported key transport algorithm {0}")]
    UnsupportedKeyTransport(String),
    /// The data encryption algorithm is not AES-128-GCM.
    #[error("unsupported data encryption algorithm {0}")]
    UnsupportedDataEncryption(String),
    /// `EncryptedData/@Type` is neither of the SwA attachment types.
    #[error("unsupported EncryptedData Type {0}")]
    UnsupportedEncryptedDataType(String),
    /// `EncryptedData/@Type` is `Attachment-Complete` (MIME headers encrypted), which AS4 does not use.
    #[error("EncryptedData Type Attachment-Complete is not accepted")]
    AttachmentCompleteNotAccepted,
    /// The cipher data is inline (`xenc:CipherValue`) instead of a `cid:` attachment reference.
    #[error("EncryptedData carries inline CipherValue; only cid: attachments are accepted")]
    InlineCipherData,
    /// `xenc:CipherReference/@URI` does not start with `cid:`.
    #[error("CipherReference URI is not a cid: reference")]
    CipherReferenceNotCid,
    /// A transform other than `Attachment-Ciphertext-Transform` on a CipherReference.
    #[error("unsupported CipherReference transform {0}")]
    UnsupportedTransform(String),
    /// Two EncryptedData elements share an Id or a `cid:`.
    #[error("duplicate EncryptedData Id or cid: {0}")]
    DuplicateEncryptedData(String),
    /// An `xenc:EncryptedData` that no `EncryptedKey` lists in its `ReferenceList`.
    #[error("EncryptedData {0} is not referenced by any EncryptedKey")]
    UnreferencedEncryptedData(String),
    /// An EncryptedData listed by more than one DataReference.
    #[error("EncryptedData {0} is referenced more than once")]
    DataReferencedTwice(String),
    /// A DataReference whose target is not an EncryptedData of the Security header.
    #[error("DataReference {0} does not point at an attachment EncryptedData")]
    DanglingDataReference(String),
    /// A DataReference (or EncryptedData) that targets the SOAP Body; AS4 never encrypts it.
    #[error("encryption of the SOAP Body is not accepted")]
    BodyEncrypted,
    /// A DataReference (or EncryptedData) that targets `eb:Messaging`; AS4 never encrypts it.
    #[error("encryption of eb:Messaging is not accepted")]
    MessagingEncrypted,
    /// An `xenc:EncryptedData` outside the `wsse:Security` header.
    #[error("EncryptedData outside the Security header")]
    EncryptedDataOutsideSecurityHeader,
    /// The EncryptedData's own KeyInfo names a different EncryptedKey than the one listing it.
    #[error("EncryptedData {0} names a different EncryptedKey than the one that references it")]
    KeyReferenceMismatch(String),
    /// The KeyInfo of an EncryptedKey uses a form we do not resolve.
    #[error("unsupported recipient key reference in EncryptedKey")]
    UnsupportedKeyReference,
    /// A `wsse:Reference` to a BinarySecurityToken that is not in the Security header.
    #[error("security token {0} not found")]
    SecurityTokenNotFound(String),
    /// None of the EncryptedKeys is addressed to one of our certificates.
    #[error("no EncryptedKey is addressed to our certificate")]
    NoKeyForOurCertificate,
    /// A certificate supplied by the caller does not parse.
    #[error("certificate does not parse as X.509")]
    InvalidCertificate,
    /// A private key supplied by the caller is rejected by aws-lc-rs.
    #[error("private key rejected")]
    InvalidPrivateKey,
    /// The recipient certificate's key cannot receive an encrypted key: neither RSA, X25519 nor
    /// P-256 (an Ed25519 signing certificate, say). Names the key's algorithm OID.
    #[error("recipient certificate key {0} supports no key transport or agreement")]
    UnsupportedRecipientKey(String),
    /// [`crate::xmlenc::RecipientKeyReference::SubjectKeyIdentifier`] was asked for, but the
    /// recipient certificate has no SubjectKeyIdentifier extension.
    #[error("recipient certificate has no SubjectKeyIdentifier extension")]
    NoSubjectKeyIdentifier,
    /// The private key does not fit the EncryptedKey (RSA key for a key agreement, X25519 key
    /// for an ECDH-ES agreement, and so on).
    #[error("private key type does not match the key transport algorithm")]
    KeyTypeMismatch,
    /// An ephemeral or recipient public key in a KeyInfo is malformed for the agreement's curve
    /// (wrong length, not an uncompressed P-256 point, point not on the curve, bad DER).
    #[error("public key in KeyInfo is not a valid key for the agreement's curve")]
    InvalidPublicKey,
    /// RSA-OAEP (or key unwrap) failed. Deliberately one variant without detail: whether
    /// padding, length or the unwrapped key size was wrong must not be observable (OAEP oracle).
    #[error("key decryption failed")]
    KeyUnwrapFailed,
    /// The attachment is shorter than IV + tag.
    #[error("encrypted attachment shorter than IV and tag")]
    CiphertextTooShort,
    /// The attachment exceeds the GCM limit of 2^36 - 32 bytes of ciphertext.
    #[error("encrypted attachment exceeds the AES-GCM length limit")]
    CiphertextTooLong,
    /// The GCM tag does not verify: the whole output must be discarded.
    #[error("attachment authentication tag mismatch")]
    AuthenticationFailed,
    /// aws-lc-rs refused an operation that is not input-dependent (internal failure).
    #[error("cryptographic primitive failed")]
    Crypto,
    /// Writing decrypted or encrypted output failed.
    #[error("writing output failed: {0}")]
    Output(#[from] std::io::Error),
    /// The envelope given to the fragment inserter does not parse or has no single Security header.
    #[error("envelope has no single wsse:Security header")]
    NoSecurityHeader,
    /// A caller-supplied identifier or content id contains characters not allowed in it.
    #[error("invalid identifier {0:?}")]
    InvalidIdentifier(String),
    /// The envelope text does not parse as XML.
    #[error("envelope is not well-formed XML")]
    MalformedEnvelope,
}

impl From<aws_lc_rs::error::Unspecified> for XmlEncError {
    fn from(_: aws_lc_rs::error::Unspecified) -> Self {
        Self::Crypto
    }
}
