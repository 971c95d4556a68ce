//! Key transport of the AES content-encryption key, on aws-lc-rs only: RSA-OAEP (AS4 1.x) and,
//! inbound, X25519 + HKDF-SHA256 + AES-128 key wrap (AS4 2.0).
//!
//! Inbound we accept `xenc11#rsa-oaep` with SHA-256 + MGF1-SHA256 (eDelivery AS4 1.15) and the
//! SHA-1 variants (`xenc#rsa-oaep-mgf1p`, or `xenc11#rsa-oaep` with default parameters) that
//! older partners send. Outbound we always write SHA-256 + MGF1-SHA256.
//!
//! **OAEP oracle defence:** every unwrap failure (bad padding, wrong ciphertext length, wrong
//! key, unwrapped key not 16 bytes) becomes the single [`XmlEncError::KeyUnwrapFailed`], and
//! the daemon must answer it with the same EBMS:0102 text it uses for a GCM tag failure. The
//! private-key operation itself is aws-lc's constant-time OAEP decoding (not the `rsa` crate,
//! which is exposed to the Marvin timing attack, RUSTSEC-2023-0071).

use aws_lc_rs::key_wrap::{AES_128, KeyEncryptionKey, KeyWrap};
use aws_lc_rs::rsa::{
    OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256, OaepAlgorithm, OaepPrivateDecryptingKey,
    OaepPublicEncryptingKey, PrivateDecryptingKey, PublicEncryptingKey,
};
use aws_lc_rs::{agreement, hkdf};
use x509_parser::prelude::{FromDer, X509Certificate};

use super::agreement::KeyAgreement;
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

enum PrivateKey {
    Rsa(OaepPrivateDecryptingKey),
    X25519(agreement::PrivateKey),
}

/// Our private key for unwrapping EncryptedKeys: RSA (AS4 1.x key transport) or X25519
/// (AS4 2.0 key agreement).
pub struct DecryptionKey {
    key: PrivateKey,
}

impl DecryptionKey {
    /// Loads an RSA or X25519 private key from unencrypted PKCS#8 DER.
    ///
    /// # Errors
    /// [`XmlEncError::InvalidPrivateKey`] when aws-lc-rs rejects it (other type, too small, malformed).
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
        let key =
            PrivateDecryptingKey::from_pkcs8(der).map_err(|_| XmlEncError::InvalidPrivateKey)?;
        let rsa = OaepPrivateDecryptingKey::new(key).map_err(|_| XmlEncError::InvalidPrivateKey)?;
        Ok(Self {
            key: PrivateKey::Rsa(rsa),
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
            (PrivateKey::X25519(private), KeyTransport::X25519HkdfKeyWrap(agreement)) => {
                unwrap_x25519(private, agreement, &key.cipher_value)
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

fn unwrap_x25519(
    private: &agreement::PrivateKey,
    params: &KeyAgreement,
    cipher_value: &[u8],
) -> Result<ContentKey, XmlEncError> {
    let peer = agreement::UnparsedPublicKey::new(&agreement::X25519, params.originator_public_key);
    // aws-lc refuses low-order points (all-zero shared secret) here.
    let mut kek = agreement::agree(private, peer, XmlEncError::KeyUnwrapFailed, |secret| {
        let salt = hkdf::Salt::new(hkdf::HKDF_SHA256, params.salt.as_deref().unwrap_or(&[]));
        let info = [params.info.as_deref().unwrap_or(&[])];
        let mut kek = [0u8; AES128_KEY_LEN];
        salt.extract(secret)
            .expand(&info, KekLength)
            .and_then(|okm| okm.fill(&mut kek))
            .map_err(|_| XmlEncError::KeyUnwrapFailed)?;
        Ok(kek)
    })?;
    let wrapping = KeyEncryptionKey::new(&AES_128, &kek).map_err(|_| XmlEncError::KeyUnwrapFailed);
    kek.fill(0);
    let mut out = [0u8; AES128_KEY_LEN + 8];
    let unwrapped_len = wrapping?
        .unwrap(cipher_value, &mut out)
        .map_err(|_| XmlEncError::KeyUnwrapFailed)?
        .len();
    let result = <[u8; AES128_KEY_LEN]>::try_from(&out[..unwrapped_len])
        .map_err(|_| XmlEncError::KeyUnwrapFailed);
    out.fill(0);
    result.map(ContentKey)
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
