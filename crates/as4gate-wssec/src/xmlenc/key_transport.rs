//! Key transport of the AES content-encryption key, on aws-lc-rs only: RSA-OAEP (AS4 1.x) and
//! ephemeral-static key agreement + HKDF-SHA256 + AES-128 key wrap (AS4 2.0: X25519, or
//! ECDH-ES over P-256 in the Alternative EC profile), both ways.
//!
//! Inbound we accept `xenc11#rsa-oaep` with SHA-256 + MGF1-SHA256 (eDelivery AS4 1.15) and the
//! SHA-1 variants (`xenc#rsa-oaep-mgf1p`, or `xenc11#rsa-oaep` with default parameters) that
//! older partners send. Outbound we always write SHA-256 + MGF1-SHA256.
//!
//! Outbound key agreement ([`wrap_key_agreement`]) draws a fresh ephemeral key pair and a fresh
//! 32-byte HKDF salt from aws-lc's CSPRNG for every EncryptedKey; neither is ever reused.
//!
//! **OAEP oracle defence:** every unwrap failure (bad padding, wrong ciphertext length, wrong
//! key, unwrapped key not 16 bytes) becomes the single [`XmlEncError::KeyUnwrapFailed`], and
//! the daemon must answer it with the same EBMS:0102 text it uses for a GCM tag failure. The
//! private-key operation itself is aws-lc's constant-time OAEP decoding (not the `rsa` crate,
//! which is exposed to the Marvin timing attack, RUSTSEC-2023-0071). Agreement and AES key
//! unwrap failures map to the same variant.

use aws_lc_rs::encoding::{AsDer, PublicKeyX509Der};
use aws_lc_rs::key_wrap::{AES_128, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::{agreement, hkdf, rand};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::agreement::{Curve, HKDF_SALT_LEN, KeyAgreement};
use super::error::XmlEncError;
use super::gcm::AES128_KEY_LEN;
use super::plan::{EncryptedKey, KeyTransport, OaepDigest};

/// An unwrapped (or freshly generated) AES-128 content-encryption key.
///
/// Overwritten with zeros when dropped (best effort; no `unsafe`).
pub struct ContentKey([u8; AES128_KEY_LEN]);

impl ContentKey {
    /// Wraps caller-supplied key bytes (the caller draws them from a CSPRNG).
    pub fn new(bytes: [u8; AES128_KEY_LEN]) -> Self {
        Self(bytes)
    }

    /// The key bytes, for [`crate::xmlenc::GcmDecryptor::new`] / [`crate::xmlenc::GcmEncryptor::new`].
    pub fn bytes(&self) -> &[u8; AES128_KEY_LEN] {
        &self.0
    }
}

impl Drop for ContentKey {
    fn drop(&mut self) {
        self.0 = [0; AES128_KEY_LEN];
        std::hint::black_box(&self.0);
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}

fn oaep_algorithm(digest: OaepDigest) -> &'static OaepAlgorithm {
    match digest {
        OaepDigest::Sha1 => &OAEP_SHA1_MGF1SHA1,
        OaepDigest::Sha256 => &OAEP_SHA256_MGF1SHA256,
    }
}

/// PKCS#8 v1 prefix of an X25519 private key (RFC 8410): SEQUENCE, version 0, AlgorithmIdentifier
/// 1.3.101.110, OCTET STRING { OCTET STRING (32) }.
const X25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
];
/// Length of an X25519 private key.
const X25519_PRIVATE_KEY_LEN: usize = 32;

/// Length of an AES-128 key wrapped with RFC 3394 (key + 8-byte integrity block).
const WRAPPED_KEY_LEN: usize = AES128_KEY_LEN + 8;

enum PrivateKey {
    Rsa(OaepPrivateDecryptingKey),
    X25519(agreement::PrivateKey),
    P256(agreement::PrivateKey),
}

/// Our private key for unwrapping EncryptedKeys: RSA (AS4 1.x key transport), X25519 (AS4 2.0
/// key agreement) or P-256 (AS4 2.0 Alternative EC profile, ECDH-ES).
pub struct DecryptionKey {
    key: PrivateKey,
}

impl DecryptionKey {
    /// Loads an RSA, X25519 or P-256 private key from unencrypted PKCS#8 DER (a P-256 key may
    /// also be an RFC 5915 `ECPrivateKey`).
    ///
    /// # Errors
    /// [`XmlEncError::InvalidPrivateKey`] when aws-lc-rs rejects it (other type or curve, too
    /// small, malformed).
    pub fn from_pkcs8_der(der: &[u8]) -> Result<Self, XmlEncError> {
        if let Some(raw) = der.strip_prefix(&X25519_PKCS8_PREFIX[..]) {
            if raw.len() != X25519_PRIVATE_KEY_LEN {
                return Err(XmlEncError::InvalidPrivateKey);
            }
            let key = agreement::PrivateKey::from_private_key(&agreement::X25519, raw)
                .map_err(|_| XmlEncError::InvalidPrivateKey)?;
            return Ok(Self {
                key: PrivateKey::X25519(key),
            });
        }
        if let Ok(key) = PrivateDecryptingKey::from_pkcs8(der) {
            let rsa =
                OaepPrivateDecryptingKey::new(key).map_err(|_| XmlEncError::InvalidPrivateKey)?;
            return Ok(Self {
                key: PrivateKey::Rsa(rsa),
            });
        }
        let key = agreement::PrivateKey::from_private_key_der(&agreement::ECDH_P256, der)
            .map_err(|_| XmlEncError::InvalidPrivateKey)?;
        Ok(Self {
            key: PrivateKey::P256(key),
        })
    }

    /// Unwraps the content-encryption key of `key`.
    ///
    /// # Errors
    /// [`XmlEncError::KeyUnwrapFailed`] for every failure of the private-key operation, the
    /// agreement or the key unwrap, and for a result that is not an AES-128 key;
    /// [`XmlEncError::KeyTypeMismatch`] when our key type does not fit the EncryptedKey.
    pub fn unwrap_key(&self, key: &EncryptedKey) -> Result<ContentKey, XmlEncError> {
        match (&self.key, &key.transport) {
            (PrivateKey::Rsa(rsa), KeyTransport::RsaOaep { digest, label }) => {
                unwrap_rsa(rsa, *digest, label.as_deref(), &key.cipher_value)
            }
            (PrivateKey::X25519(private), KeyTransport::X25519HkdfKeyWrap(agreement))
            | (PrivateKey::P256(private), KeyTransport::EcdhEsP256HkdfKeyWrap(agreement)) => {
                unwrap_agreement(private, agreement, &key.cipher_value)
            }
            _ => Err(XmlEncError::KeyTypeMismatch),
        }
    }
}

fn unwrap_rsa(
    rsa: &OaepPrivateDecryptingKey,
    digest: OaepDigest,
    label: Option<&[u8]>,
    cipher_value: &[u8],
) -> Result<ContentKey, XmlEncError> {
    let mut plaintext = vec![0u8; rsa.min_output_size()];
    let result = rsa
        .decrypt(oaep_algorithm(digest), cipher_value, &mut plaintext, label)
        .map_err(|_| XmlEncError::KeyUnwrapFailed)
        .and_then(|unwrapped| {
            <[u8; AES128_KEY_LEN]>::try_from(&*unwrapped).map_err(|_| XmlEncError::KeyUnwrapFailed)
        });
    plaintext.fill(0);
    result.map(ContentKey)
}

/// HKDF output length marker for aws-lc-rs.
struct KekLength;

impl hkdf::KeyType for KekLength {
    fn len(&self) -> usize {
        AES128_KEY_LEN
    }
}

/// HKDF-SHA256 of a shared secret into the AES-128 key-encryption key.
fn derive_kek(
    secret: &[u8],
    salt: Option<&[u8]>,
    info: Option<&[u8]>,
) -> Result<[u8; AES128_KEY_LEN], aws_lc_rs::error::Unspecified> {
    let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, salt.unwrap_or(&[]));
    let info = [info.unwrap_or(&[])];
    let mut kek = [0u8; AES128_KEY_LEN];
    salt.extract(secret)
        .expand(&info, KekLength)
        .and_then(|okm| okm.fill(&mut kek))?;
    Ok(kek)
}

fn unwrap_agreement(
    private: &agreement::PrivateKey,
    params: &KeyAgreement,
    cipher_value: &[u8],
) -> Result<ContentKey, XmlEncError> {
    let peer = agreement::UnparsedPublicKey::new(
        private.algorithm(),
        params.originator_public_key.as_slice(),
    );
    // aws-lc refuses low-order X25519 points (all-zero shared secret) and P-256 points off the
    // curve here; an originator key of the other curve fails the algorithm check.
    let mut kek = agreement::agree(private, peer, XmlEncError::KeyUnwrapFailed, |secret| {
        derive_kek(secret, params.salt.as_deref(), params.info.as_deref())
            .map_err(|_| XmlEncError::KeyUnwrapFailed)
    })?;
    let wrapping = KeyEncryptionKey::new(&AES_128, &kek).map_err(|_| XmlEncError::KeyUnwrapFailed);
    kek.fill(0);
    let mut out = [0u8; WRAPPED_KEY_LEN];
    let unwrapped_len = wrapping?
        .unwrap(cipher_value, &mut out)
        .map_err(|_| XmlEncError::KeyUnwrapFailed)?
        .len();
    let result = <[u8; AES128_KEY_LEN]>::try_from(&out[..unwrapped_len])
        .map_err(|_| XmlEncError::KeyUnwrapFailed);
    out.fill(0);
    result.map(ContentKey)
}

/// The sender's half of a key agreement: what goes into the EncryptedKey.
pub(crate) struct AgreementWrap {
    /// DER SubjectPublicKeyInfo of the fresh ephemeral key (for `OriginatorKeyInfo`).
    pub(crate) originator_spki: Vec<u8>,
    /// The fresh HKDF salt.
    pub(crate) salt: [u8; HKDF_SALT_LEN],
    /// The content key wrapped with the derived key-encryption key (the CipherValue).
    pub(crate) wrapped: [u8; WRAPPED_KEY_LEN],
}

/// Wraps `content_key` for the recipient key `recipient_spki_der` (a certificate's
/// SubjectPublicKeyInfo on `curve`): fresh ephemeral key pair, ECDH, HKDF-SHA256 with a fresh
/// 32-byte salt and no info to a 128-bit key, AES-128 key wrap.
///
/// # Errors
/// [`XmlEncError::InvalidCertificate`] when aws-lc refuses the recipient key (not on the curve,
/// low-order point); [`XmlEncError::Crypto`] when key generation or randomness fails.
pub(crate) fn wrap_key_agreement(
    curve: Curve,
    content_key: &ContentKey,
    recipient_spki_der: &[u8],
) -> Result<AgreementWrap, XmlEncError> {
    let ephemeral = agreement::PrivateKey::generate(curve.algorithm())?;
    let originator_spki = AsDer::<PublicKeyX509Der<'_>>::as_der(&ephemeral.compute_public_key()?)?
        .as_ref()
        .to_vec();
    let mut salt = [0u8; HKDF_SALT_LEN];
    rand::fill(&mut salt)?;
    let peer = agreement::UnparsedPublicKey::new(curve.algorithm(), recipient_spki_der);
    let mut kek = agreement::agree(
        &ephemeral,
        peer,
        XmlEncError::InvalidCertificate,
        |secret| derive_kek(secret, Some(&salt), None).map_err(XmlEncError::from),
    )?;
    let wrapping = KeyEncryptionKey::new(&AES_128, &kek);
    kek.fill(0);
    let mut wrapped = [0u8; WRAPPED_KEY_LEN];
    let len = wrapping?.wrap(content_key.bytes(), &mut wrapped)?.len();
    if len != WRAPPED_KEY_LEN {
        return Err(XmlEncError::Crypto);
    }
    Ok(AgreementWrap {
        originator_spki,
        salt,
        wrapped,
    })
}

/// Wraps `content_key` for the RSA certificate `recipient_cert_der` with RSA-OAEP
/// SHA-256 / MGF1-SHA256 (no label). The OAEP seed comes from aws-lc's internal CSPRNG,
/// since aws-lc-rs offers no way to pass one in.
///
/// # Errors
/// [`XmlEncError::InvalidCertificate`] when the certificate does not parse or has no RSA key.
pub fn wrap_key_rsa_oaep_sha256(
    content_key: &ContentKey,
    recipient_cert_der: &[u8],
) -> Result<Vec<u8>, XmlEncError> {
    let (_, cert) = X509Certificate::from_der(recipient_cert_der)
        .map_err(|_| XmlEncError::InvalidCertificate)?;
    let public = PublicEncryptingKey::from_der(cert.public_key().raw)
        .map_err(|_| XmlEncError::InvalidCertificate)?;
    let public = OaepPublicEncryptingKey::new(public)?;
    let mut out = vec![0u8; public.ciphertext_size()];
    let len = public
        .encrypt(&OAEP_SHA256_MGF1SHA256, content_key.bytes(), &mut out, None)?
        .len();
    out.truncate(len);
    Ok(out)
}
