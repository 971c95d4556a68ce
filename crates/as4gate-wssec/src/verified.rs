//! The proof type: a value that passed signature verification (or was accepted unsigned by an
//! explicit policy), together with the evidence the receipt and the P-Mode check need.
//!
//! [`Verified`] has private fields and no public constructor other than
//! [`Verified::unsigned_by_policy`], which refuses when the policy requires a signature. Only
//! [`crate::verify::verify_envelope`] builds a signed `Verified`.

use as4gate_ebms::model::NrReference;

use crate::{SecurityPolicy, WssecError};

/// What a successful signature verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SignatureEvidence {
    /// DER of the certificate whose key verified the `SignatureValue`.
    pub signer_certificate: Vec<u8>,
    /// DER of the other certificates the sender supplied (PKIPath), as received.
    pub signer_chain: Vec<Vec<u8>>,
    /// The signature's references in signature order, for the receipt's
    /// `ebbp:NonRepudiationInformation`.
    pub references: Vec<NrReference>,
    /// `SignatureMethod` URI.
    pub signature_algorithm: String,
    /// `CanonicalizationMethod` URI.
    pub canonicalization_algorithm: String,
}

impl SignatureEvidence {
    /// Whether the signer certificate is byte-identical to one of `allowed` (DER), e.g. the
    /// certificates configured for the partner the P-Mode names.
    pub fn signed_by(&self, allowed: &[Vec<u8>]) -> bool {
        allowed.contains(&self.signer_certificate)
    }
}

/// A value that passed the security checks; only this crate constructs it.
#[derive(Debug)]
pub struct Verified<T> {
    value: T,
    evidence: Option<SignatureEvidence>,
}

impl<T> Verified<T> {
    pub(crate) fn signed(value: T, evidence: SignatureEvidence) -> Self {
        Self {
            value,
            evidence: Some(evidence),
        }
    }

    /// Accept `value` without a signature. Refused with [`WssecError::SignatureMissing`] when
    /// `policy.require_signature` is set.
    pub fn unsigned_by_policy(value: T, policy: &SecurityPolicy) -> Result<Self, WssecError> {
        if policy.require_signature {
            return Err(WssecError::SignatureMissing);
        }
        Ok(Self {
            value,
            evidence: None,
        })
    }

    /// The verified value.
    pub fn value(&self) -> &T {
        &self.value
    }

    /// The signature evidence; `None` when the value was accepted unsigned by policy.
    pub fn evidence(&self) -> Option<&SignatureEvidence> {
        self.evidence.as_ref()
    }

    /// Derive a value from the verified one (e.g. the single `UserMessage` out of
    /// `Messaging`), keeping the evidence. The proof carries over because `f` only sees
    /// verified data.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Verified<U> {
        Verified {
            value: f(self.value),
            evidence: self.evidence,
        }
    }

    /// Split into the value and the evidence.
    pub fn into_parts(self) -> (T, Option<SignatureEvidence>) {
        (self.value, self.evidence)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsigned_only_when_policy_allows() {
        let strict = SecurityPolicy::default();
        assert!(matches!(
            Verified::unsigned_by_policy(1, &strict),
            Err(WssecError::SignatureMissing)
        ));
        let lax = SecurityPolicy {
            require_signature: false,
            ..SecurityPolicy::default()
        };
        let v = Verified::unsigned_by_policy(1, &lax).unwrap();
        assert_eq!(*v.value(), 1);
        assert!(v.evidence().is_none());
        let (value, evidence) = v.map(|n| n + 1).into_parts();
        assert_eq!(value, 2);
        assert!(evidence.is_none());
    }

    #[test]
    fn signed_by_compares_der() {
        let e = SignatureEvidence {
            signer_certificate: vec![1, 2, 3],
            signer_chain: vec![],
            references: vec![],
            signature_algorithm: String::new(),
            canonicalization_algorithm: String::new(),
        };
        assert!(e.signed_by(&[vec![9], vec![1, 2, 3]]));
        assert!(!e.signed_by(&[vec![1, 2]]));
        assert!(!e.signed_by(&[]));
    }
}
