//! Namespaces, algorithm URIs and fixed ebMS/AS4 values used across the gateway.
//!
//! Every constant is the exact string from the specification named in its doc
//! comment (ebMS3 core, OASIS AS4 profile, eDelivery AS4 1.15/2.0, WS-Security
//! 1.1.1 with its X.509 and SwA profiles, XML-DSig 1.1, XML-Enc 1.1, RFC 9231).
//! Compare URIs byte for byte; none of them is case-insensitive.

// ---- SOAP -----------------------------------------------------------------

/// SOAP 1.2 envelope namespace (the only SOAP version AS4 uses).
pub const SOAP12_ENV: &str = "http://www.w3.org/2003/05/soap-envelope";
/// SOAP 1.1 envelope namespace; recognised only to refuse it with a clear error.
pub const SOAP11_ENV: &str = "http://schemas.xmlsoap.org/soap/envelope/";
/// SOAP 1.2 `ultimateReceiver` role (equivalent to an absent `role` attribute).
pub const SOAP12_ROLE_ULTIMATE_RECEIVER: &str =
    "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver";
/// SOAP 1.2 `next` role (every SOAP node, us included, acts in it).
pub const SOAP12_ROLE_NEXT: &str = "http://www.w3.org/2003/05/soap-envelope/role/next";
/// Media type of a SOAP 1.2 envelope (the MIME root part of an AS4 message).
pub const SOAP12_MEDIA_TYPE: &str = "application/soap+xml";
/// The `xml:` namespace (for `xml:lang`).
pub const XML: &str = "http://www.w3.org/XML/1998/namespace";

// ---- ebMS 3.0 / ebBP --------------------------------------------------------

/// ebMS 3.0 core header namespace (`eb:`).
pub const EBMS: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/";
/// ebBP signals 2.0 namespace (`ebbp:`), used for `NonRepudiationInformation` in receipts.
pub const EBBP_SIGNALS: &str = "http://docs.oasis-open.org/ebxml-bp/ebbp-signals-2.0";
/// ebMS 3.0 default message partition channel (ebMS3 core §3.4.1).
pub const DEFAULT_MPC: &str =
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/defaultMPC";
/// ebMS 3.0 default initiator role (ebMS3 core §5.2.2.3).
pub const DEFAULT_INITIATOR_ROLE: &str =
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/initiator";
/// ebMS 3.0 default responder role (ebMS3 core §5.2.2.3).
pub const DEFAULT_RESPONDER_ROLE: &str =
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/responder";
/// ebMS 3.0 test service (ebMS3 core §5.2.2.8): messages to it are not delivered.
pub const TEST_SERVICE: &str =
    "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/service";
/// ebMS 3.0 test action (ebMS3 core §5.2.2.9), used together with [`TEST_SERVICE`].
pub const TEST_ACTION: &str = "http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/test";
/// AS4 compression type part property value (AS4 profile §3.1).
pub const COMPRESSION_GZIP: &str = "application/gzip";
/// Part property name carrying the compression type (AS4 profile §3.1).
pub const PART_PROPERTY_COMPRESSION_TYPE: &str = "CompressionType";
/// Part property name carrying the original MIME type of a (compressed) payload.
pub const PART_PROPERTY_MIME_TYPE: &str = "MimeType";
/// Part property name carrying the character set of a payload.
pub const PART_PROPERTY_CHARACTER_SET: &str = "CharacterSet";

// ---- WS-Security ------------------------------------------------------------

/// WS-Security 1.0 secext namespace (`wsse:`).
pub const WSSE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// WS-Security 1.1 secext namespace (`wsse11:`).
pub const WSSE11: &str = "http://docs.oasis-open.org/wss/oasis-wss-wssecurity-secext-1.1.xsd";
/// WS-Security utility namespace (`wsu:`, for `wsu:Id`).
pub const WSU: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd";
/// BinarySecurityToken `EncodingType` for base64 (WSS SOAP Message Security 1.1.1).
pub const WSSE_BASE64_BINARY: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-soap-message-security-1.0#Base64Binary";
/// BinarySecurityToken `ValueType` for a single X.509 v3 certificate (X.509 token profile).
pub const BST_X509V3: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3";
/// BinarySecurityToken `ValueType` for a PKIPath certificate chain (X.509 token profile).
pub const BST_X509_PKIPATH_V1: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509PKIPathv1";
/// KeyIdentifier `ValueType` for an X.509 Subject Key Identifier (X.509 token profile).
pub const SKI_VALUE_TYPE: &str = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509SubjectKeyIdentifier";

// ---- WSS SwA profile 1.1.1 -------------------------------------------------

/// SwA transform: digest attachment content only (used by AS4).
pub const SWA_ATTACHMENT_CONTENT_SIGNATURE_TRANSFORM: &str = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Signature-Transform";
/// SwA transform: digest attachment MIME headers and content.
pub const SWA_ATTACHMENT_COMPLETE_SIGNATURE_TRANSFORM: &str = "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete-Signature-Transform";
/// SwA transform: the attachment ciphertext as the cipher-reference source.
pub const SWA_ATTACHMENT_CIPHERTEXT_TRANSFORM: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Ciphertext-Transform";
/// SwA `EncryptedData/@Type`: only the attachment content is encrypted (used by AS4).
pub const SWA_ATTACHMENT_CONTENT_ONLY: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Content-Only";
/// SwA `EncryptedData/@Type`: attachment MIME headers and content are encrypted.
pub const SWA_ATTACHMENT_COMPLETE: &str =
    "http://docs.oasis-open.org/wss/oasis-wss-SwAProfile-1.1#Attachment-Complete";

// ---- XML-DSig / XML-Enc -----------------------------------------------------

/// XML-DSig namespace (`ds:`).
pub const DS: &str = "http://www.w3.org/2000/09/xmldsig#";
/// XML-DSig 1.1 namespace (`dsig11:`).
pub const DSIG11: &str = "http://www.w3.org/2009/xmldsig11#";
/// XML-Enc namespace (`xenc:`).
pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";
/// XML-Enc 1.1 namespace (`xenc11:`).
pub const XENC11: &str = "http://www.w3.org/2009/xmlenc11#";
/// Exclusive XML canonicalisation 1.0 (without comments); also the `ec:` namespace.
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
/// Exclusive XML canonicalisation 1.0 with comments.
pub const EXC_C14N_WITH_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
/// Signature algorithm RSA PKCS#1 v1.5 with SHA-256 (eDelivery AS4 1.15).
pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
/// Signature algorithm ECDSA with SHA-256 (eDelivery AS4 2.0 alternative).
pub const ALG_ECDSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256";
/// Signature algorithm Ed25519 (RFC 9231; eDelivery AS4 2.0).
pub const ALG_EDDSA_ED25519: &str = "http://www.w3.org/2021/04/xmldsig-more#eddsa-ed25519";
/// Digest algorithm SHA-256.
pub const ALG_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
/// Content encryption AES-128-GCM (XML-Enc 1.1).
pub const ALG_AES128_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes128-gcm";
/// Key transport RSA-OAEP with explicit MGF (XML-Enc 1.1; eDelivery AS4 1.15).
pub const ALG_RSA_OAEP: &str = "http://www.w3.org/2009/xmlenc11#rsa-oaep";
/// Key transport RSA-OAEP with MGF1/SHA-1 (XML-Enc 1.0; accepted inbound only).
pub const ALG_RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
/// Mask generation function MGF1 with SHA-256 (XML-Enc 1.1).
pub const ALG_MGF1_SHA256: &str = "http://www.w3.org/2009/xmlenc11#mgf1sha256";
/// Key agreement X25519 (RFC 9231; eDelivery AS4 2.0).
pub const ALG_X25519: &str = "http://www.w3.org/2021/04/xmldsig-more#x25519";
/// Key derivation HKDF (RFC 9231; eDelivery AS4 2.0).
pub const ALG_HKDF: &str = "http://www.w3.org/2021/04/xmldsig-more#hkdf";
/// HMAC-SHA256, the HKDF PRF in eDelivery AS4 2.0.
pub const ALG_HMAC_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256";
/// Key wrap AES-128 (RFC 3394; eDelivery AS4 2.0).
pub const ALG_KW_AES128: &str = "http://www.w3.org/2001/04/xmlenc#kw-aes128";
