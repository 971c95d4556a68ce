//! What a signature must look like to be accepted: algorithms, canonicalization and limits.
//!
//! The defaults are the eDelivery AS4 1.15 profile (RSA-SHA256, SHA-256, Exclusive C14N);
//! [`SecurityPolicy::edelivery_2_0`] is the AS4 2.0 preset (Ed25519 or ECDSA-SHA256). A P-Mode
//! maps onto this struct; anything not listed is refused with `EBMS:0103 PolicyNoncompliance`.

use crate::names;

/// Default for [`SecurityPolicy::max_references`]: one each for Body and Messaging plus room
/// for many payloads; far above what AS4 senders emit, low enough to bound the work.
pub const DEFAULT_MAX_REFERENCES: usize = 64;

/// Default for [`SecurityPolicy::max_certificate_bytes`]: real signing certificates are 1–3 KiB;
/// 16 KiB leaves room for long extension lists while bounding parsing work.
pub const DEFAULT_MAX_CERTIFICATE_BYTES: usize = 16 * 1024;

/// Signature acceptance policy for one P-Mode (or the gateway default).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityPolicy {
    /// Refuse unsigned messages (default `true`).
    pub require_signature: bool,
    /// Accepted `SignatureMethod` URIs (default: RSA-SHA256).
    pub allowed_signature_algorithms: Vec<String>,
    /// Accepted `DigestMethod` URIs (default: SHA-256).
    pub allowed_digest_algorithms: Vec<String>,
    /// Accepted canonicalization URIs, for `CanonicalizationMethod` and for same-document
    /// reference transforms (default: Exclusive C14N without comments only).
    pub allowed_c14n: Vec<String>,
    /// Most `ds:Reference`s a signature may carry (default [`DEFAULT_MAX_REFERENCES`]).
    pub max_references: usize,
    /// Largest accepted certificate, DER bytes (default [`DEFAULT_MAX_CERTIFICATE_BYTES`]).
    pub max_certificate_bytes: usize,
}

impl SecurityPolicy {
    /// eDelivery AS4 1.15: RSA-SHA256 signatures, SHA-256 digests, Exclusive C14N.
    pub fn edelivery_1_15() -> Self {
        Self {
            require_signature: true,
            allowed_signature_algorithms: vec![names::RSA_SHA256.to_owned()],
            allowed_digest_algorithms: vec![names::SHA256.to_owned()],
            allowed_c14n: vec![names::EXC_C14N.to_owned()],
            max_references: DEFAULT_MAX_REFERENCES,
            max_certificate_bytes: DEFAULT_MAX_CERTIFICATE_BYTES,
        }
    }

    /// eDelivery AS4 2.0: EdDSA-Ed25519 (or ECDSA-SHA256 for the alternative profile),
    /// SHA-256 digests, Exclusive C14N.
    pub fn edelivery_2_0() -> Self {
        Self {
            allowed_signature_algorithms: vec![
                names::EDDSA_ED25519.to_owned(),
                names::ECDSA_SHA256.to_owned(),
            ],
            ..Self::edelivery_1_15()
        }
    }

    pub(crate) fn allows_signature_algorithm(&self, uri: &str) -> bool {
        self.allowed_signature_algorithms.iter().any(|a| a == uri)
    }

    pub(crate) fn allows_digest_algorithm(&self, uri: &str) -> bool {
        self.allowed_digest_algorithms.iter().any(|a| a == uri)
    }

    pub(crate) fn allows_c14n(&self, uri: &str) -> bool {
        self.allowed_c14n.iter().any(|a| a == uri)
    }
}

impl Default for SecurityPolicy {
    /// Same as [`SecurityPolicy::edelivery_1_15`].
    fn default() -> Self {
        Self::edelivery_1_15()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_edelivery_1_15() {
        let p = SecurityPolicy::default();
        assert!(p.require_signature);
        assert!(p.allows_signature_algorithm(names::RSA_SHA256));
        assert!(!p.allows_signature_algorithm(names::EDDSA_ED25519));
        assert!(!p.allows_signature_algorithm("http://www.w3.org/2000/09/xmldsig#rsa-sha1"));
        assert!(p.allows_digest_algorithm(names::SHA256));
        assert!(!p.allows_c14n("http://www.w3.org/TR/2001/REC-xml-c14n-20010315"));
        assert_eq!(p.max_references, 64);
        assert_eq!(p.max_certificate_bytes, 16 * 1024);
    }

    #[test]
    fn as4_2_0_preset_allows_ed25519_and_ecdsa_only() {
        let p = SecurityPolicy::edelivery_2_0();
        assert!(p.allows_signature_algorithm(names::EDDSA_ED25519));
        assert!(p.allows_signature_algorithm(names::ECDSA_SHA256));
        assert!(!p.allows_signature_algorithm(names::RSA_SHA256));
    }
}
