//! WS-Security for AS4 (sans-I/O).
//!
//! This crate owns every security decision the gateway makes about an ebMS3/AS4 envelope:
//! XML-DSig verification and signing (including SwA `cid:` attachment references, whose digests
//! we compute ourselves — see [`swa`]), resolution of `wsse:SecurityTokenReference` key
//! information ([`token`]), X.509 path validation against configured trust anchors ([`trust`]),
//! the policy that says which algorithms are acceptable ([`policy`]) and AS4 attachment
//! encryption ([`xmlenc`]).
//!
//! The only way to obtain a [`Verified`] value is through [`verify::verify_envelope`] (or the
//! explicit [`Verified::unsigned_by_policy`] escape hatch when a policy does not require a
//! signature), so storage and routing code can demand proof that the checks ran.
//!
//! Signatures in the shape AS4 peers send (Exclusive C14N, bare `#id` references) are
//! checked by our own core validation (module `core_validation`: subtree canonicalisation, digests,
//! `SignatureValue` on aws-lc); any other shape goes to the general XML-DSig engine
//! `bergshamra` (aws-lc provider), which also decrypts. Everything WS-Security specific —
//! which nodes must be signed, token references, attachment digests, trust — is decided
//! here. No I/O: time, key material and attachment bytes are passed in.

#![forbid(unsafe_code)]

pub mod error;
pub mod policy;
pub mod sign;
pub mod swa;
pub mod token;
pub mod trust;
pub mod verified;
pub mod verify;
pub mod xmlenc;

mod c14n;
mod core_validation;
mod key_kind;
mod names;
mod signed_info;
mod xml_util;

pub use error::WssecError;
pub use policy::SecurityPolicy;
pub use sign::{AttachmentToSign, SignedEnvelope, SigningIdentity, sign_envelope};
pub use swa::AttachmentDigest;
pub use token::{ResolvedToken, resolve_security_token_reference};
pub use trust::{TrustAnchors, validate_certificate};
pub use verified::{SignatureEvidence, Verified};
pub use verify::{AttachmentSource, VerifyRequest, claimed_signature_method, verify_envelope};
