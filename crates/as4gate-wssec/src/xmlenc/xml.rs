//! Small DOM and text helpers shared by the XML-Enc reader and writer: child lookup, `Id`
//! lookup, bounded base64 decoding, and XML escaping for the fragments we emit.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use uppsala::{Document, NodeId};

use super::error::XmlEncError;

/// First child element of `parent` named `{ns}local`.
pub(crate) fn child(doc: &Document<'_>, parent: NodeId, ns: &str, local: &str) -> Option<NodeId> {
    doc.first_child_element_by_name_ns(parent, ns, local)
}

/// The single child element `{ns}local` of `parent`, if any; more than one is an error.
pub(crate) fn single_child(
    doc: &Document<'_>,
    parent: NodeId,
    ns: &str,
    local: &'static str,
) -> Result<Option<NodeId>, XmlEncError> {
    let mut found = doc.children_iter(parent).filter(|node| {
        doc.element(*node)
            .is_some_and(|e| e.matches_name_ns(ns, local))
    });
    let first = found.next();
    if found.next().is_some() {
        return Err(XmlEncError::DuplicateElement(local));
    }
    Ok(first)
}

/// The `Id` of an element: `wsu:Id`, or an unqualified `Id` (as XML-Enc uses).
pub(crate) fn id_of<'d>(doc: &'d Document<'_>, node: NodeId) -> Option<&'d str> {
    let element = doc.element(node)?;
    element
        .get_attribute_ns(super::uris::WSU_NS, "Id")
        .or_else(|| {
            element
                .attributes
                .iter()
                .find(|a| a.name.namespace_uri.is_none() && a.name.local_name == "Id")
                .map(|a| a.value.as_ref())
        })
}

/// The text content of an element (all descendant text, concatenated).
pub(crate) fn text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node)
}

/// Decodes base64 that may contain XML whitespace, refusing text longer than `max_text_len`.
pub(crate) fn decode_base64(
    text: &str,
    max_text_len: usize,
    what: &'static str,
) -> Result<Vec<u8>, XmlEncError> {
    if text.len() > max_text_len {
        return Err(XmlEncError::InvalidBase64(what));
    }
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| XmlEncError::InvalidBase64(what))
}

/// Decodes `%XX` escapes of a `cid:` URL (RFC 2392) into the Content-ID value.
pub(crate) fn percent_decode(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = bytes.get(index + 1..index + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%40b.c").as_deref(), Some("a@b.c"));
        assert_eq!(percent_decode("plain@x").as_deref(), Some("plain@x"));
        assert_eq!(percent_decode("bad%4"), None);
        assert_eq!(percent_decode("bad%zz"), None);
    }

    #[test]
    fn escaping() {
        assert_eq!(
            crate::xml_util::escape(r#"a<b>&"'"#),
            "a&lt;b&gt;&amp;&quot;&apos;"
        );
    }

    #[test]
    fn base64_with_whitespace_and_limit() {
        assert_eq!(decode_base64(" QU\r\nJD ", 100, "t").unwrap(), b"ABC");
        assert!(matches!(
            decode_base64("QUJD", 3, "t"),
            Err(XmlEncError::InvalidBase64("t"))
        ));
    }
}
