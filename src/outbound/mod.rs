//! The sending side (sending MSH): [`submit`] checks and persists a document to send,
//! [`send`] makes the attempts (compose per the P-Mode with [`compose`], POST to the partner,
//! judge the answer with [`receipt`]) and retries until a valid receipt arrives (reception
//! awareness); [`pull`] serves PullRequests for pull P-Modes and pulls from partners. The
//! state machine is documented in [`crate::store::outbound`].

pub mod compose;
pub mod pull;
pub mod receipt;
pub mod send;
pub mod submit;

use as4gate_pmode::SecurityProfile;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::gateway::Partner;

/// OID of RSA public keys.
const OID_RSA: &str = "1.2.840.113549.1.1.1";
/// OID of X25519 public keys (RFC 8410).
const OID_X25519: &str = "1.3.101.110";
/// OID of elliptic-curve public keys (P-256 for the eDelivery 2.0 alternative profile).
const OID_EC: &str = "1.2.840.10045.2.1";

/// The partner's encryption certificate for a security profile: RSA for eDelivery AS4 1.15,
/// X25519 (preferred) or EC P-256 for 2.0.
pub fn encryption_certificate_for(partner: &Partner, profile: SecurityProfile) -> Option<&[u8]> {
    let kind = |der: &[u8]| {
        X509Certificate::from_der(der)
            .ok()
            .map(|(_, c)| c.public_key().algorithm.algorithm.to_id_string())
    };
    let wanted: &[&str] = match profile {
        SecurityProfile::EdeliveryAs4_1_15 => &[OID_RSA],
        SecurityProfile::EdeliveryAs4_2_0 => &[OID_X25519, OID_EC],
    };
    wanted.iter().find_map(|oid| {
        partner
            .encryption_certificates
            .iter()
            .find(|der| kind(der).as_deref() == Some(*oid))
            .map(Vec::as_slice)
    })
}
