//! Small read-only helpers over `uppsala::Document` shared by the envelope and
//! header parsers: element-child iteration, name tests, unqualified attribute
//! lookup and text-only content extraction with packaging checks.

use uppsala::{Document, NodeId, NodeKind};

use crate::error::EbmsError;

/// True when `id` is an element named `{namespace}local`.
pub(crate) fn is_element(doc: &Document<'_>, id: NodeId, namespace: &str, local: &str) -> bool {
    doc.element(id)
        .is_some_and(|e| e.name.matches(Some(namespace), local))
}

/// `{namespace}local` display form of an element's name, for error details.
pub(crate) fn display_name(doc: &Document<'_>, id: NodeId) -> String {
    match doc.element(id) {
        Some(e) => match &e.name.namespace_uri {
            Some(ns) => format!("{{{ns}}}{}", e.name.local_name),
            None => e.name.local_name.to_string(),
        },
        None => "(not an element)".to_owned(),
    }
}

/// The element children of `id`, refusing non-whitespace text between them
/// (EBMS:0009). Comments and processing instructions are skipped.
pub(crate) fn element_children(doc: &Document<'_>, id: NodeId) -> Result<Vec<NodeId>, EbmsError> {
    let mut out = Vec::new();
    for child in doc.children_iter(id) {
        match doc.node_kind(child) {
            Some(NodeKind::Element(_)) => out.push(child),
            Some(NodeKind::Text(t) | NodeKind::CData(t)) if !t.trim().is_empty() => {
                return Err(EbmsError::invalid_header(format!(
                    "unexpected text content inside {}",
                    display_name(doc, id)
                )));
            }
            _ => {}
        }
    }
    Ok(out)
}

/// Value of the attribute `local` that has no namespace (ebMS attributes are unqualified).
pub(crate) fn attribute<'d>(doc: &'d Document<'_>, id: NodeId, local: &str) -> Option<&'d str> {
    doc.element(id)?
        .attributes
        .iter()
        .find(|a| a.name.namespace_uri.is_none() && *a.name.local_name == *local)
        .map(|a| &*a.value)
}

/// Value of the attribute `{namespace}local`.
pub(crate) fn attribute_ns<'d>(
    doc: &'d Document<'_>,
    id: NodeId,
    namespace: &str,
    local: &str,
) -> Option<&'d str> {
    doc.element(id)?.get_attribute_ns(namespace, local)
}

/// The text content of a simple-content element, verbatim. Refuses element
/// children (EBMS:0009).
pub(crate) fn simple_text(doc: &Document<'_>, id: NodeId) -> Result<String, EbmsError> {
    let mut out = String::new();
    for child in doc.children_iter(id) {
        match doc.node_kind(child) {
            Some(NodeKind::Text(t) | NodeKind::CData(t)) => out.push_str(t),
            Some(NodeKind::Element(_)) => {
                return Err(EbmsError::invalid_header(format!(
                    "{} must contain text only",
                    display_name(doc, id)
                )));
            }
            _ => {}
        }
    }
    Ok(out)
}
