//! Locating the structural nodes of an inbound SOAP 1.2 envelope.
//!
//! [`EnvelopeNodes::locate`] is run once on the shared document; every later
//! step (signature verification, header parsing, decryption) works from the
//! `NodeId`s it returns, never by searching again. Rules enforced (all
//! EBMS:0009 InvalidHeader, the code ebMS3 core §6.7.1 gives for an envelope
//! that "does not conform to the ebMS packaging rules"):
//!
//! * the root is a SOAP 1.2 `Envelope`; SOAP 1.1 is refused by name;
//! * the envelope holds exactly a `Header` then a `Body`, nothing else;
//! * there is exactly one `eb:Messaging` in the whole document and it is a
//!   direct child of the `Header` (a second copy anywhere is a wrapping attempt);
//! * at most one `wsse:Security` header block, and it must be addressed to us
//!   (no `S12:role`, or the `ultimateReceiver` role).
//!
//! [`EnvelopeNodes::not_understood_headers`] lists other header blocks that
//! demand processing (`S12:mustUnderstand="true"`, addressed to us); SOAP 1.2
//! §5.4.8 requires answering those with an `env:MustUnderstand` fault, which is a
//! SOAP-level decision left to the daemon.

use uppsala::{Document, NodeId};

use crate::dom::{attribute_ns, display_name, element_children, is_element};
use crate::error::EbmsError;
use crate::ns;

/// The structural nodes of an AS4 envelope, all in the one shared document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnvelopeNodes {
    /// `S12:Envelope` (the document element).
    pub envelope: NodeId,
    /// `S12:Header`.
    pub header: NodeId,
    /// `S12:Body`.
    pub body: NodeId,
    /// The single `eb:Messaging` header block.
    pub messaging: NodeId,
    /// The `wsse:Security` header block, if any.
    pub security: Option<NodeId>,
}

impl EnvelopeNodes {
    /// Finds and checks the envelope's structural nodes (see the module docs).
    pub fn locate(doc: &Document<'_>) -> Result<EnvelopeNodes, EbmsError> {
        let envelope = doc
            .document_element()
            .ok_or_else(|| EbmsError::invalid_header("document has no root element"))?;
        if is_element(doc, envelope, ns::SOAP11_ENV, "Envelope") {
            return Err(EbmsError::invalid_header(
                "SOAP 1.1 envelope received; AS4 requires SOAP 1.2",
            ));
        }
        if !is_element(doc, envelope, ns::SOAP12_ENV, "Envelope") {
            return Err(EbmsError::invalid_header(format!(
                "root element {} is not a SOAP 1.2 Envelope",
                display_name(doc, envelope)
            )));
        }
        let children = element_children(doc, envelope)?;
        let (header, body) = match children.as_slice() {
            [h, b]
                if is_element(doc, *h, ns::SOAP12_ENV, "Header")
                    && is_element(doc, *b, ns::SOAP12_ENV, "Body") =>
            {
                (*h, *b)
            }
            _ => {
                return Err(EbmsError::invalid_header(
                    "SOAP Envelope must contain exactly one Header followed by one Body",
                ));
            }
        };

        let messaging = locate_messaging(doc, header)?;
        let security = locate_security(doc, header)?;
        Ok(EnvelopeNodes {
            envelope,
            header,
            body,
            messaging,
            security,
        })
    }
}

impl EnvelopeNodes {
    /// Header blocks other than `eb:Messaging` and `wsse:Security` that carry
    /// `S12:mustUnderstand="true"` (or `"1"`) and are addressed to this node
    /// (no role, `next` or `ultimateReceiver`). Non-empty means the daemon must
    /// answer with a SOAP `env:MustUnderstand` fault.
    pub fn not_understood_headers(&self, doc: &Document<'_>) -> Vec<NodeId> {
        doc.children_iter(self.header)
            .filter(|&id| doc.element(id).is_some())
            .filter(|&id| id != self.messaging && Some(id) != self.security)
            .filter(|&id| {
                matches!(
                    attribute_ns(doc, id, ns::SOAP12_ENV, "mustUnderstand").map(str::trim),
                    Some("true" | "1")
                )
            })
            .filter(|&id| {
                matches!(
                    attribute_ns(doc, id, ns::SOAP12_ENV, "role"),
                    None | Some(ns::SOAP12_ROLE_NEXT | ns::SOAP12_ROLE_ULTIMATE_RECEIVER)
                )
            })
            .collect()
    }
}

fn locate_messaging(doc: &Document<'_>, header: NodeId) -> Result<NodeId, EbmsError> {
    let all: Vec<NodeId> = doc
        .descendants(doc.root())
        .into_iter()
        .filter(|&id| is_element(doc, id, ns::EBMS, "Messaging"))
        .collect();
    match all.as_slice() {
        [] => Err(EbmsError::invalid_header(
            "no eb:Messaging header block in the SOAP Header",
        )),
        [one] if doc.parent(*one) == Some(header) => Ok(*one),
        [_] => Err(EbmsError::invalid_header(
            "eb:Messaging is not a direct child of the SOAP Header",
        )),
        more => Err(EbmsError::invalid_header(format!(
            "{} eb:Messaging elements in the message; exactly one is allowed",
            more.len()
        ))),
    }
}

fn locate_security(doc: &Document<'_>, header: NodeId) -> Result<Option<NodeId>, EbmsError> {
    let blocks: Vec<NodeId> = element_children(doc, header)?
        .into_iter()
        .filter(|&id| is_element(doc, id, ns::WSSE, "Security"))
        .collect();
    match blocks.as_slice() {
        [] => Ok(None),
        [one] => match attribute_ns(doc, *one, ns::SOAP12_ENV, "role") {
            None | Some(ns::SOAP12_ROLE_ULTIMATE_RECEIVER) => Ok(Some(*one)),
            Some(role) => Err(EbmsError::invalid_header(format!(
                "wsse:Security header block is addressed to role {role:?}, not to this MSH"
            ))),
        },
        more => Err(EbmsError::invalid_header(format!(
            "{} wsse:Security header blocks; at most one is allowed",
            more.len()
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use crate::limits::Limits;

    const HEAD: &str = r#"<S:Envelope xmlns:S="http://www.w3.org/2003/05/soap-envelope" xmlns:eb="http://docs.oasis-open.org/ebxml-msg/ebms/v3.0/ns/core/200704/" xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd">"#;

    fn locate(xml: &str) -> Result<EnvelopeNodes, EbmsError> {
        let doc = crate::xml::parse(xml, &Limits::default())?;
        EnvelopeNodes::locate(&doc)
    }

    fn detail(xml: &str) -> String {
        let e = locate(xml).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidHeader);
        e.detail
    }

    #[test]
    fn finds_nodes() {
        let xml = format!(
            "{HEAD}<S:Header><wsse:Security/><eb:Messaging/></S:Header><S:Body/></S:Envelope>"
        );
        let doc = crate::xml::parse(&xml, &Limits::default()).unwrap();
        let n = EnvelopeNodes::locate(&doc).unwrap();
        assert!(is_element(&doc, n.messaging, ns::EBMS, "Messaging"));
        assert!(is_element(&doc, n.security.unwrap(), ns::WSSE, "Security"));
        assert!(is_element(&doc, n.body, ns::SOAP12_ENV, "Body"));
    }

    #[test]
    fn not_understood_headers() {
        let xml = format!(
            r#"{HEAD}<S:Header><eb:Messaging S:mustUnderstand="true"/><a S:mustUnderstand="true"/><b S:mustUnderstand="false"/><c S:mustUnderstand="1" S:role="http://www.w3.org/2003/05/soap-envelope/role/next"/><d S:mustUnderstand="true" S:role="urn:other"/></S:Header><S:Body/></S:Envelope>"#
        );
        let doc = crate::xml::parse(&xml, &Limits::default()).unwrap();
        let n = EnvelopeNodes::locate(&doc).unwrap();
        let names: Vec<String> = n
            .not_understood_headers(&doc)
            .into_iter()
            .map(|id| display_name(&doc, id))
            .collect();
        assert_eq!(names, ["a", "c"]);
    }

    #[test]
    fn refusals() {
        assert!(detail(r#"<S:Envelope xmlns:S="http://schemas.xmlsoap.org/soap/envelope/"><S:Header/><S:Body/></S:Envelope>"#).contains("SOAP 1.1"));
        assert!(detail("<Envelope/>").contains("not a SOAP 1.2"));
        assert!(
            detail(&format!("{HEAD}<S:Body/><S:Header/></S:Envelope>"))
                .contains("exactly one Header")
        );
        assert!(
            detail(&format!("{HEAD}<S:Header/><S:Body/><S:Body/></S:Envelope>"))
                .contains("exactly one Header")
        );
        assert!(
            detail(&format!("{HEAD}<S:Header/><S:Body/></S:Envelope>")).contains("no eb:Messaging")
        );
        assert!(detail(&format!("{HEAD}<S:Header><eb:Messaging/></S:Header><S:Body><eb:Messaging/></S:Body></S:Envelope>")).contains("2 eb:Messaging"));
        assert!(
            detail(&format!(
                "{HEAD}<S:Header><x><eb:Messaging/></x></S:Header><S:Body/></S:Envelope>"
            ))
            .contains("not a direct child")
        );
        assert!(detail(&format!("{HEAD}<S:Header><wsse:Security/><wsse:Security/><eb:Messaging/></S:Header><S:Body/></S:Envelope>")).contains("2 wsse:Security"));
        assert!(detail(&format!(r#"{HEAD}<S:Header><wsse:Security S:role="other"/><eb:Messaging/></S:Header><S:Body/></S:Envelope>"#)).contains("role"));
        assert!(
            detail(&format!(
                "{HEAD}text<S:Header><eb:Messaging/></S:Header><S:Body/></S:Envelope>"
            ))
            .contains("unexpected text")
        );
    }
}
