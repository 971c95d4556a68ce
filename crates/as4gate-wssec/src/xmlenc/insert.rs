//! Inserting the encryption fragment into a (possibly already signed) envelope string.
//!
//! The fragment goes into the single `wsse:Security` header, directly before the first
//! `ds:Signature` if there is one, else at the end of the header. WSS4J-based receivers
//! (Domibus, phase4) process the header top-down, so the EncryptedKey must precede the
//! Signature: the attachments are decrypted first and the signature's `cid:` digests are then
//! checked over the plaintext (AS4 signs, then encrypts). The signature covers Body and
//! `eb:Messaging` only, so inserting into the header does not invalidate it. The envelope is
//! otherwise copied byte for byte.

use uppsala::{Document, NodeId};

use super::error::XmlEncError;
use super::uris::{DS_NS, SOAP11_NS, SOAP12_NS, WSSE_NS};

fn security_header(doc: &Document<'_>) -> Result<NodeId, XmlEncError> {
    let envelope = doc
        .document_element()
        .ok_or(XmlEncError::NoSecurityHeader)?;
    let header = [SOAP12_NS, SOAP11_NS]
        .iter()
        .find_map(|ns| doc.first_child_element_by_name_ns(envelope, ns, "Header"))
        .ok_or(XmlEncError::NoSecurityHeader)?;
    let mut headers = doc
        .child_elements_by_name_ns(header, WSSE_NS, "Security")
        .into_iter();
    match (headers.next(), headers.next()) {
        (Some(security), None) => Ok(security),
        _ => Err(XmlEncError::NoSecurityHeader),
    }
}

/// Returns `envelope` with `fragment` inserted into its `wsse:Security` header (see module docs).
///
/// # Errors
/// [`XmlEncError::MalformedEnvelope`] when the envelope does not parse;
/// [`XmlEncError::NoSecurityHeader`] without exactly one `wsse:Security` in the SOAP Header.
pub fn insert_into_security_header(envelope: &str, fragment: &str) -> Result<String, XmlEncError> {
    let doc = uppsala::parse(envelope).map_err(|_| XmlEncError::MalformedEnvelope)?;
    let security = security_header(&doc)?;
    let range = doc
        .node_range(security)
        .ok_or(XmlEncError::MalformedEnvelope)?;
    let source = envelope
        .get(range.clone())
        .ok_or(XmlEncError::MalformedEnvelope)?;
    let mut out = String::with_capacity(envelope.len() + fragment.len() + 32);
    if let Some(signature) = doc.first_child_element_by_name_ns(security, DS_NS, "Signature") {
        let at = doc
            .node_range(signature)
            .ok_or(XmlEncError::MalformedEnvelope)?
            .start;
        out.push_str(&envelope[..at]);
        out.push_str(fragment);
        out.push_str(&envelope[at..]);
    } else if source.ends_with("/>") {
        // <wsse:Security .../> : open it and close it around the fragment.
        let element = doc
            .element(security)
            .ok_or(XmlEncError::MalformedEnvelope)?;
        let qname = element.name.prefixed_name();
        let open_end = range.end - 2;
        out.push_str(envelope[..open_end].trim_end());
        out.push('>');
        out.push_str(fragment);
        out.push_str(&format!("</{qname}>"));
        out.push_str(&envelope[range.end..]);
    } else {
        let close = source.rfind("</").ok_or(XmlEncError::MalformedEnvelope)?;
        let at = range.start + close;
        out.push_str(&envelope[..at]);
        out.push_str(fragment);
        out.push_str(&envelope[at..]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV_OPEN: &str = r#"<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><S:Header><wsse:Security><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></wsse:Security></S:Header><S:Body/></S:Envelope>"#;

    #[test]
    fn inserts_before_signature() {
        let out = insert_into_security_header(ENV_OPEN, "<x/>").unwrap();
        assert!(out.contains("<wsse:Security><x/><ds:Signature"));
    }

    #[test]
    fn inserts_at_end_without_signature() {
        let env = ENV_OPEN.replace(
            r#"<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/>"#,
            "<a/>",
        );
        let out = insert_into_security_header(&env, "<x/>").unwrap();
        assert!(out.contains("<wsse:Security><a/><x/></wsse:Security>"));
    }

    #[test]
    fn opens_self_closing_header() {
        let env = ENV_OPEN.replace(
            r#"<wsse:Security><ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"/></wsse:Security>"#,
            "<wsse:Security />",
        );
        let out = insert_into_security_header(&env, "<x/>").unwrap();
        assert!(out.contains("<wsse:Security><x/></wsse:Security>"), "{out}");
        uppsala::parse(&out).unwrap();
    }

    #[test]
    fn refuses_missing_or_duplicate_header() {
        let none = ENV_OPEN.replace("wsse:Security", "wsse:Other");
        assert!(matches!(
            insert_into_security_header(&none, "<x/>"),
            Err(XmlEncError::NoSecurityHeader)
        ));
        let two = ENV_OPEN.replace("</S:Header>", "<wsse:Security/></S:Header>");
        assert!(matches!(
            insert_into_security_header(&two, "<x/>"),
            Err(XmlEncError::NoSecurityHeader)
        ));
        assert!(matches!(
            insert_into_security_header("<a", "<x/>"),
            Err(XmlEncError::MalformedEnvelope)
        ));
    }
}
