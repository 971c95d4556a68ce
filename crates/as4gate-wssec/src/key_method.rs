//! Which XML-DSig signature method a certificate's public key signs with: RSA-SHA256 for RSA,
//! ECDSA-SHA256 for P-256 and EdDSA for Ed25519, the keys eDelivery AS4 1.15 and 2.0 use.

use x509_parser::x509::SubjectPublicKeyInfo;

use crate::names;

/// OID of rsaEncryption.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// OID of id-ecPublicKey.
const OID_EC: &str = "1.2.840.10045.2.1";
/// OID of the P-256 curve.
const OID_P256: &str = "1.2.840.10045.3.1.7";
/// OID of Ed25519.
const OID_ED25519: &str = "1.3.101.112";

/// The signature method URI for `spki`, or why it has none (another curve or key type).
pub(crate) fn signature_method_of(spki: &SubjectPublicKeyInfo<'_>) -> Result<&'static str, String> {
    match spki.algorithm.algorithm.to_id_string().as_str() {
        OID_RSA => Ok(names::RSA_SHA256),
        OID_ED25519 => Ok(names::EDDSA_ED25519),
        OID_EC => {
            let curve = spki
                .algorithm
                .parameters
                .as_ref()
                .and_then(|p| p.as_oid().ok())
                .map(|o| o.to_id_string());
            if curve.as_deref() == Some(OID_P256) {
                Ok(names::ECDSA_SHA256)
            } else {
                Err(format!("EC curve {curve:?} is not P-256"))
            }
        }
        other => Err(format!("unsupported key algorithm {other}")),
    }
}
