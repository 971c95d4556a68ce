//! Namespace and algorithm URIs used by the signature code, under the short names this crate
//! uses. Everything the ebMS crate defines is re-exported from `as4gate_ebms::ns` (one source
//! of truth); only the extra digest URIs we accept for attachments are defined here.

pub(crate) use as4gate_ebms::ns::{
    ALG_ECDSA_SHA256 as ECDSA_SHA256, ALG_EDDSA_ED25519 as EDDSA_ED25519,
    ALG_RSA_SHA256 as RSA_SHA256, ALG_SHA256 as SHA256, BST_X509_PKIPATH_V1 as X509_PKI_PATH_V1,
    BST_X509V3 as X509V3, DS, EXC_C14N, SKI_VALUE_TYPE as X509_SKI,
    SWA_ATTACHMENT_COMPLETE_SIGNATURE_TRANSFORM as SWA_COMPLETE_TRANSFORM,
    SWA_ATTACHMENT_CONTENT_SIGNATURE_TRANSFORM as SWA_CONTENT_TRANSFORM, WSSE,
    WSSE_BASE64_BINARY as BASE64_BINARY, WSU,
};

/// SHA-384 digest (XML-DSig "more" URIs, RFC 6931).
pub(crate) const SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
/// SHA-512 digest (XML-Enc URI).
pub(crate) const SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
