//! X.509 trust decisions for message-signing certificates.
//!
//! Path building and signature checks are delegated to `rustls-webpki` (aws-lc-rs). Before
//! that we check, with our own named errors, the leaf's validity period at the caller-supplied
//! `now` and its KeyUsage. Extended Key Usage is not constrained: AS4 signing certificates
//! carry none, `clientAuth`, `emailProtection` or vendor OIDs, and none of them means
//! "message signing", so demanding `serverAuth` (webpki's TLS default) would be wrong.
//! Revocation (CRL/OCSP) is not checked here; that is the daemon's validator's job.
//!
//! A path that validated is remembered by [`TrustAnchors`] (keyed by the leaf and the
//! intermediates offered with it) for [`PATH_CACHE_SECONDS`], and only while `now` lies inside
//! the validity periods of every one of those certificates, so a partner that signs every
//! message with the same certificate costs one path validation per period, not one per
//! message. Failures are never remembered.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use rustls_pki_types::{CertificateDer, TrustAnchor, UnixTime};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::WssecError;

/// Hard ceiling on any certificate handed to [`validate_certificate`] or
/// [`TrustAnchors::from_der`], whatever the policy says: bounds DER parsing work.
pub const MAX_CERTIFICATE_BYTES: usize = 64 * 1024;

/// Most intermediate certificates accepted with a leaf; real AS4 PKIs use one or two.
pub const MAX_INTERMEDIATES: usize = 8;
/// How long a validated path is reused before it is built and checked again.
pub const PATH_CACHE_SECONDS: i64 = 300;
/// Most validated paths remembered; the memory is forgotten whole when it is full.
const PATH_CACHE_ENTRIES: usize = 4096;

/// The set of CA certificates a signer must chain to.
///
/// An anchor may also be a partner's own (often self-signed) certificate, as Domibus
/// installations exchange them: a signer whose certificate is byte-for-byte one of the anchors
/// is accepted as pinned, after the same validity and key-usage checks, without path building.
#[derive(Debug, Clone)]
pub struct TrustAnchors {
    anchors: Vec<TrustAnchor<'static>>,
    pinned: Vec<Vec<u8>>,
    validated: Arc<Mutex<HashMap<[u8; 32], ValidatedPath>>>,
}

/// A path that validated at `checked_at` (Unix seconds) and whose certificates are all valid
/// from `not_before` to `not_after`.
#[derive(Debug, Clone, Copy)]
struct ValidatedPath {
    checked_at: i64,
    not_before: i64,
    not_after: i64,
}

impl ValidatedPath {
    fn holds_at(&self, now: i64) -> bool {
        now >= self.checked_at
            && now - self.checked_at < PATH_CACHE_SECONDS
            && now >= self.not_before
            && now <= self.not_after
    }
}

/// The cache key of a leaf and the intermediates offered with it.
fn path_key(leaf_der: &[u8], intermediates: &[Vec<u8>]) -> [u8; 32] {
    let mut context = digest::Context::new(&digest::SHA256);
    for der in std::iter::once(leaf_der).chain(intermediates.iter().map(Vec::as_slice)) {
        context.update(&(der.len() as u64).to_be_bytes());
        context.update(der);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(context.finish().as_ref());
    key
}

impl TrustAnchors {
    /// Build from DER certificates (typically self-signed roots).
    pub fn from_der(certificates: &[Vec<u8>]) -> Result<Self, WssecError> {
        let mut anchors = Vec::with_capacity(certificates.len());
        for der in certificates {
            check_size(der, MAX_CERTIFICATE_BYTES)?;
            let cert = CertificateDer::from(der.as_slice());
            let anchor = webpki::anchor_from_trusted_cert(&cert)
                .map_err(|e| WssecError::MalformedCertificate(format!("trust anchor: {e:?}")))?;
            anchors.push(anchor.to_owned());
        }
        Ok(Self {
            anchors,
            pinned: certificates.to_vec(),
            validated: Arc::default(),
        })
    }

    fn validated_at(&self, key: &[u8; 32], now: i64) -> bool {
        let validated = self.validated.lock().unwrap_or_else(|e| e.into_inner());
        validated.get(key).is_some_and(|path| path.holds_at(now))
    }

    fn remember(&self, key: [u8; 32], path: ValidatedPath) {
        let mut validated = self.validated.lock().unwrap_or_else(|e| e.into_inner());
        if validated.len() >= PATH_CACHE_ENTRIES {
            validated.clear();
        }
        validated.insert(key, path);
    }

    /// Number of anchors.
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    /// Whether there are no anchors (then nothing validates).
    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }
}

/// Accepts any (or no) Extended Key Usage; see the module documentation.
struct AnyExtendedKeyUsage;

impl ExtendedKeyUsageValidator for AnyExtendedKeyUsage {
    fn validate(&self, iter: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        // Still walk the extension so a malformed one is refused.
        for purpose in iter {
            purpose?;
        }
        Ok(())
    }
}

pub(crate) fn check_size(der: &[u8], limit: usize) -> Result<(), WssecError> {
    if der.len() > limit {
        return Err(WssecError::CertificateTooLarge {
            size: der.len(),
            limit,
        });
    }
    Ok(())
}

fn format_time(t: x509_parser::time::ASN1Time) -> String {
    t.to_datetime()
        .format(&Rfc3339)
        .unwrap_or_else(|_| t.to_string())
}

/// Check that `leaf_der` is valid at `now`, may sign, and chains (through `intermediates`, in
/// any order) to one of `anchors`.
pub fn validate_certificate(
    leaf_der: &[u8],
    intermediates: &[Vec<u8>],
    anchors: &TrustAnchors,
    now: OffsetDateTime,
) -> Result<(), WssecError> {
    check_size(leaf_der, MAX_CERTIFICATE_BYTES)?;
    if intermediates.len() > MAX_INTERMEDIATES {
        return Err(WssecError::UntrustedCertificate(format!(
            "{} intermediate certificates exceed the limit of {MAX_INTERMEDIATES}",
            intermediates.len()
        )));
    }
    for der in intermediates {
        check_size(der, MAX_CERTIFICATE_BYTES)?;
    }

    let (_, parsed) = X509Certificate::from_der(leaf_der)
        .map_err(|e| WssecError::MalformedCertificate(e.to_string()))?;
    let validity = parsed.validity();
    let now_ts = now.unix_timestamp();
    if now_ts < validity.not_before.timestamp() {
        return Err(WssecError::CertificateNotYetValid {
            not_before: format_time(validity.not_before),
        });
    }
    if now_ts > validity.not_after.timestamp() {
        return Err(WssecError::CertificateExpired {
            not_after: format_time(validity.not_after),
        });
    }
    let key_usage = parsed
        .key_usage()
        .map_err(|e| WssecError::MalformedCertificate(format!("KeyUsage: {e}")))?;
    if let Some(ku) = key_usage
        && !ku.value.digital_signature()
        && !ku.value.non_repudiation()
    {
        return Err(WssecError::CertificateKeyUsage);
    }

    if anchors
        .pinned
        .iter()
        .any(|pinned| pinned.as_slice() == leaf_der)
    {
        return Ok(());
    }
    let key = path_key(leaf_der, intermediates);
    if anchors.validated_at(&key, now_ts) {
        return Ok(());
    }

    let leaf = CertificateDer::from(leaf_der);
    let end_entity = EndEntityCert::try_from(&leaf)
        .map_err(|e| WssecError::MalformedCertificate(format!("{e:?}")))?;
    let chain: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|d| CertificateDer::from(d.as_slice()))
        .collect();
    let seconds = u64::try_from(now_ts).unwrap_or(0);
    let time = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
    end_entity
        .verify_for_usage(
            webpki::ALL_VERIFICATION_ALGS,
            &anchors.anchors,
            &chain,
            time,
            AnyExtendedKeyUsage,
            None,
            None,
        )
        .map_err(|e| match e {
            webpki::Error::CertExpired { .. } => WssecError::CertificateExpired {
                not_after: "of a certificate in the chain".into(),
            },
            webpki::Error::CertNotValidYet { .. } => WssecError::CertificateNotYetValid {
                not_before: "of a certificate in the chain".into(),
            },
            other => WssecError::UntrustedCertificate(format!("{other:?}")),
        })?;
    let mut path = ValidatedPath {
        checked_at: now_ts,
        not_before: validity.not_before.timestamp(),
        not_after: validity.not_after.timestamp(),
    };
    for der in intermediates {
        let Ok((_, intermediate)) = X509Certificate::from_der(der) else {
            return Ok(());
        };
        path.not_before = path
            .not_before
            .max(intermediate.validity().not_before.timestamp());
        path.not_after = path
            .not_after
            .min(intermediate.validity().not_after.timestamp());
    }
    anchors.remember(key, path);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn der(rel: &str) -> Vec<u8> {
        use base64::Engine;
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../test-pki/").to_owned() + rel;
        let text = std::fs::read_to_string(path).unwrap();
        let b64: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap()
    }

    const NOW: OffsetDateTime = datetime!(2026-11-23 12:00 UTC);

    fn anchors() -> TrustAnchors {
        TrustAnchors::from_der(&[der("ca/ca.crt")]).unwrap()
    }

    #[test]
    fn leaf_from_the_test_ca_is_valid() {
        validate_certificate(&der("blue_gw/rsa.crt"), &[], &anchors(), NOW).unwrap();
        validate_certificate(&der("blue_gw/ed25519.crt"), &[], &anchors(), NOW).unwrap();
    }

    #[test]
    fn extended_key_usage_is_not_constrained() {
        // tls.crt carries EKU serverAuth + clientAuth.
        validate_certificate(&der("red_gw/tls.crt"), &[], &anchors(), NOW).unwrap();
    }

    #[test]
    fn key_agreement_only_certificate_cannot_sign() {
        let err = validate_certificate(&der("red_gw/x25519.crt"), &[], &anchors(), NOW);
        assert!(
            matches!(err, Err(WssecError::CertificateKeyUsage)),
            "{err:?}"
        );
    }

    #[test]
    fn validity_period_is_checked_at_now() {
        let err = validate_certificate(&der("blue_gw/rsa-expired.crt"), &[], &anchors(), NOW);
        assert!(
            matches!(err, Err(WssecError::CertificateExpired { .. })),
            "{err:?}"
        );
        let early = datetime!(2025-12-31 23:59 UTC);
        let err = validate_certificate(&der("blue_gw/rsa.crt"), &[], &anchors(), early);
        assert!(
            matches!(err, Err(WssecError::CertificateNotYetValid { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_validated_path_is_reused_only_inside_its_window() {
        let path = ValidatedPath {
            checked_at: 1_000,
            not_before: 500,
            not_after: 1_200,
        };
        assert!(path.holds_at(1_000));
        assert!(path.holds_at(1_200));
        assert!(!path.holds_at(999), "checked later than now");
        assert!(
            !path.holds_at(1_201),
            "a certificate of the path has expired"
        );
        let long = ValidatedPath {
            not_after: i64::MAX,
            ..path
        };
        assert!(long.holds_at(1_000 + PATH_CACHE_SECONDS - 1));
        assert!(
            !long.holds_at(1_000 + PATH_CACHE_SECONDS),
            "checked too long ago"
        );
    }

    #[test]
    fn successes_are_remembered_per_anchor_set_and_failures_never() {
        let anchors = anchors();
        let leaf = der("blue_gw/rsa.crt");
        validate_certificate(&leaf, &[], &anchors, NOW).unwrap();
        validate_certificate(&leaf, &[], &anchors, NOW).unwrap();
        assert_eq!(anchors.validated.lock().unwrap().len(), 1);
        // Another anchor set does not inherit the result.
        let other = TrustAnchors::from_der(&[der("other-ca/ca.crt")]).unwrap();
        let err = validate_certificate(&leaf, &[], &other, NOW);
        assert!(
            matches!(err, Err(WssecError::UntrustedCertificate(_))),
            "{err:?}"
        );
        assert!(other.validated.lock().unwrap().is_empty());
        // The leaf's own validity is still checked on every call.
        let late = datetime!(2099-01-01 0:00 UTC);
        let err = validate_certificate(&leaf, &[], &anchors, late);
        assert!(
            matches!(err, Err(WssecError::CertificateExpired { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn other_ca_is_untrusted_and_no_anchor_trusts_nothing() {
        let err = validate_certificate(&der("blue_gw/rsa-other-ca.crt"), &[], &anchors(), NOW);
        assert!(
            matches!(err, Err(WssecError::UntrustedCertificate(_))),
            "{err:?}"
        );
        let none = TrustAnchors::from_der(&[]).unwrap();
        assert!(none.is_empty());
        let err = validate_certificate(&der("blue_gw/rsa.crt"), &[], &none, NOW);
        assert!(
            matches!(err, Err(WssecError::UntrustedCertificate(_))),
            "{err:?}"
        );
    }

    #[test]
    fn garbage_and_oversized_certificates_are_refused() {
        assert!(matches!(
            TrustAnchors::from_der(&[vec![1, 2, 3]]),
            Err(WssecError::MalformedCertificate(_))
        ));
        let huge = vec![0u8; MAX_CERTIFICATE_BYTES + 1];
        assert!(matches!(
            validate_certificate(&huge, &[], &anchors(), NOW),
            Err(WssecError::CertificateTooLarge { .. })
        ));
    }
}
