//! Namespace and algorithm URIs used by AS4 attachment encryption (XML-Enc 1.1, WSS SwA 1.1,
//! RFC 9231), in one place so parser and builder cannot drift apart.

/// XML Encryption 1.0 namespace (`xenc`).
pub const XENC_NS: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML Encryption 1.1 namespace (`xenc11`).
pub const XENC11_NS: &str = "http://www.w3.org/2009/xmlenc11#";
/// XML Signature namespace (`ds`).
pub const DS_NS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML Signature 1.1 namespace (`dsig11`).
pub const DSIG11_NS: &str = "http://www.w3.org/2009/xmldsig11#";
/// RFC 9231 namespace for X25519 / HKDF parameters (`dsig-more`).
pub const DSIG_MORE_NS: &str = "http://www.w3.org/2021/04/xmldsig-more#";
/// WS-Security 1.0 secext namespace (`wsse`).
pub const WSSE_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security 1.1 secext namespace (`wsse11`).
pub const WSSE11_NS: &str = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd";
/// WS-Security utility namespace (`wsu`).
pub const WSU_NS: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// SOAP 1.2 envelope namespace.
pub const SOAP12_NS: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace.
pub const SOAP11_NS: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// ebMS 3 header namespace (`eb:Messaging`).
pub const EBMS_NS: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/";

/// RSA-OAEP as defined by XML-Enc 1.1 (digest and MGF given as child elements).
pub const RSA_OAEP_XENC11: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
/// RSA-OAEP with MGF1-SHA1 (XML-Enc 1.0); accepted inbound only.
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// MGF1 with SHA-1.
pub const MGF1_SHA1: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha1";
/// MGF1 with SHA-256.
pub const MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
/// SHA-1 digest.
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
/// SHA-256 digest.
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// AES-128-GCM content encryption.
pub const AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
/// X25519 key agreement (RFC 9231, eDelivery AS4 2.0).
pub const X25519: &str = "http://www.w3.org/2021/04/xmldsig-more#x25519";
/// HKDF key derivation (RFC 9231).
pub const HKDF: &str = "http://www.w3.org/2021/04/xmldsig-more#hkdf";
/// HMAC-SHA256 as the HKDF PRF.
pub const HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
/// AES-128 key wrap (RFC 3394).
pub const KW_AES128: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes128";

/// `EncryptedData/@Type` for an encrypted attachment body (the AS4 case).
pub const TYPE_ATTACHMENT_CONTENT_ONLY: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only";
/// `EncryptedData/@Type` for an attachment encrypted together with its MIME headers (refused).
pub const TYPE_ATTACHMENT_COMPLETE: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete";
/// The CipherReference transform that says "the cipher text is the attachment body".
pub const ATTACHMENT_CIPHERTEXT_TRANSFORM: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform";
/// `wsse11:TokenType` of a SecurityTokenReference that points at an EncryptedKey.
pub const TOKEN_TYPE_ENCRYPTED_KEY: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#EncryptedKey";
/// ValueType of an X.509 v3 BinarySecurityToken.
pub const VALUE_TYPE_X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
/// ValueType of a subject key identifier `wsse:KeyIdentifier`.
pub const VALUE_TYPE_SKI: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier";
/// EncodingType of base64 token content.
pub const ENCODING_BASE64: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
