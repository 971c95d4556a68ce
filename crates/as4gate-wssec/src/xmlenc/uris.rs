//! Namespace and algorithm URIs used by AS4 attachment encryption (XML-Enc 1.1, WSS SwA 1.1,
//! RFC 9231), under the short names this module uses. Everything the ebMS crate defines is
//! re-exported from `as4gate_ebms::ns` (one source of truth); only the URIs no other part of
//! the gateway needs are defined here.

pub use as4gate_ebms::ns::{
    ALG_AES128_GCM as AES128_GCM, ALG_HKDF as HKDF, ALG_HMAC_SHA256 as HMAC_SHA256,
    ALG_KW_AES128 as KW_AES128, ALG_MGF1_SHA256 as MGF1_SHA256, ALG_RSA_OAEP as RSA_OAEP_XENC11,
    ALG_RSA_OAEP_MGF1P as RSA_OAEP_MGF1P, ALG_SHA256 as DIGEST_SHA256, ALG_X25519 as X25519,
    BST_X509V3 as VALUE_TYPE_X509V3, DS as DS_NS, DSIG11 as DSIG11_NS, EBMS as EBMS_NS,
    SKI_VALUE_TYPE as VALUE_TYPE_SKI, SOAP11_ENV as SOAP11_NS, SOAP12_ENV as SOAP12_NS,
    SWA_ATTACHMENT_CIPHERTEXT_TRANSFORM as ATTACHMENT_CIPHERTEXT_TRANSFORM,
    SWA_ATTACHMENT_COMPLETE as TYPE_ATTACHMENT_COMPLETE,
    SWA_ATTACHMENT_CONTENT_ONLY as TYPE_ATTACHMENT_CONTENT_ONLY, WSSE as WSSE_NS,
    WSSE_BASE64_BINARY as ENCODING_BASE64, WSSE11 as WSSE11_NS, WSU as WSU_NS, XENC as XENC_NS,
    XENC11 as XENC11_NS,
};

/// The RFC 9231 namespace of the AS4 2.0 algorithms (`xmldsig-more`, 2021/04), where
/// `HKDFParams` may also appear.
pub const DSIG_MORE_NS: &str = "http://www.w3.org/2021/04/xmldsig-more#";
/// ECDH-ES key agreement (XML-Enc 1.1), used by the eDelivery AS4 2.0 Alternative EC profile
/// over P-256 with the same HKDF derivation as X25519.
pub const ECDH_ES: &str = "http://www.w3.org/2009/xmlenc11#ECDH-ES";
/// MGF1 with SHA-1 (`xenc11#mgf1sha1`), the default of RSA-OAEP-MGF1P.
pub const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
/// SHA-1 digest (only as the OAEP digest of the older key transport).
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// `wsse11:TokenType` of a SecurityTokenReference that points at an EncryptedKey.
pub const TOKEN_TYPE_ENCRYPTED_KEY: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey";
