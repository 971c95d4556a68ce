//! The kinds of public key in certificates we use: their OIDs, the named curve of an EC key,
//! and the XML-DSig signature method each signing key kind signs with (RSA-SHA256 for RSA,
//! ECDSA-SHA256 for P-256, EdDSA for Ed25519, the keys eDelivery AS4 1.15 and 2.0 use).

use x509_parser::x509::SubjectPublicKeyInfo;

use crate::names;

/// OID of RSA public keys, `rsaEncryption` (RFC 8017).
pub(crate) const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// OID of elliptic-curve public keys, `id-ecPublicKey` (RFC 5480).
pub(crate) const OID_EC: &str = "1.2.840.10045.2.1";
/// OID of the P-256 curve, `prime256v1` / `secp256r1` (RFC 5480).
pub(crate) const OID_P256: &str = "1.2.840.10045.3.1.7";
/// OID of Ed25519 keys (RFC 8410).
pub(crate) const OID_ED25519: &str = "1.3.101.112";
/// OID of X25519 keys (RFC 8410).
pub(crate) const OID_X25519: &str = "1.3.101.110";

/// The algorithm OID of `spki`, dotted.
pub(crate) fn algorithm_oid(spki: &SubjectPublicKeyInfo<'_>) -> String {
    spki.algorithm.algorithm.to_id_string()
}

/// The named curve (dotted OID) in the parameters of an EC key's `spki`, if it names one.
pub(crate) fn named_curve(spki: &SubjectPublicKeyInfo<'_>) -> Option<String> {
    spki.algorithm
        .parameters
        .as_ref()
        .and_then(|p| p.as_oid().ok())
        .map(|oid| oid.to_id_string())
}

/// The signature method URI for `spki`, or why it has none (another curve or key type).
pub(crate) fn signature_method_of(spki: &SubjectPublicKeyInfo<'_>) -> Result<&'static str, String> {
    match algorithm_oid(spki).as_str() {
        OID_RSA => Ok(names::RSA_SHA256),
        OID_ED25519 => Ok(names::EDDSA_ED25519),
        OID_EC => match named_curve(spki) {
            Some(curve) if curve == OID_P256 => Ok(names::ECDSA_SHA256),
            curve => Err(format!("EC curve {curve:?} is not P-256")),
        },
        other => Err(format!("unsupported key algorithm {other}")),
    }
}
