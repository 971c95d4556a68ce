//! XML Encryption for AS4: encrypted MIME attachments (WSS SwA profile 1.1).
//!
//! Inbound: [`EncryptionPlan::read`] checks the `wsse:Security` header against the AS4 profile
//! and lists the EncryptedKeys and encrypted attachments; [`EncryptionPlan::key_for_certificate`]
//! picks the key addressed to us; [`DecryptionKey::unwrap_key`] recovers the AES-128 key on
//! aws-lc-rs (RSA-OAEP, or key agreement + HKDF + AES key unwrap); [`GcmDecryptor`] streams
//! each attachment body (`IV || ciphertext || tag`) and authenticates it at
//! [`GcmDecryptor::finish`]. Decrypted bytes are untrusted until then and must be discarded when
//! it fails.
//!
//! Outbound: [`GcmEncryptor`] streams each attachment, [`EncryptedKeyBuilder`] writes the
//! EncryptedKey + EncryptedData fragment and [`insert_into_security_header`] puts it into the
//! envelope. Content key, IVs and identifiers come from the caller.
//!
//! Key transports, both ways, chosen outbound by the recipient certificate's key:
//! - RSA-OAEP SHA-256 / MGF1-SHA256 (eDelivery AS4 1.15; inbound also the SHA-1 variants);
//! - eDelivery AS4 2.0 Common Usage Profile: X25519 + HKDF-SHA256 + kw-aes128
//!   ([`KeyTransport::X25519HkdfKeyWrap`]);
//! - eDelivery AS4 2.0 Alternative EC profile: ECDH-ES over P-256 + HKDF-SHA256 + kw-aes128
//!   ([`KeyTransport::EcdhEsP256HkdfKeyWrap`]; brainpoolP256r1 is not supported).

mod agreement;
mod builder;
mod error;
mod gcm;
mod insert;
mod key_transport;
mod plan;
mod recipient;
pub mod uris;
mod xml;

pub use agreement::{HKDF_SALT_LEN, KeyAgreement, P256_PUBLIC_KEY_LEN, X25519_PUBLIC_KEY_LEN};
pub use builder::{
    AttachmentEncryption, ENCRYPTED_PART_CONTENT_TYPE, EncryptedKeyBuilder, RecipientKeyReference,
    rewrite_content_type_for_encryption,
};
pub use error::XmlEncError;
pub use gcm::{
    AES128_KEY_LEN, GCM_IV_LEN, GCM_MAX_CIPHERTEXT_LEN, GCM_TAG_LEN, GcmDecryptor, GcmEncryptor,
    SCRATCH_LEN,
};
pub use insert::insert_into_security_header;
pub use key_transport::{ContentKey, DecryptionKey, wrap_key_rsa_oaep_sha256};
pub use plan::{
    DataEncryption, EncryptedKey, EncryptedPart, EncryptionPlan, KeyTransport, OaepDigest,
    PlanLimits,
};
pub use recipient::{MAX_TOKEN_BASE64_LEN, OwnCertificate, RecipientReference};
