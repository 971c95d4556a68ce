//! Small read helpers over the `uppsala` DOM shared by the token, signature and signing code.

pub(crate) use as4gate_ebms::xml::escape;
use uppsala::{Document, NodeId};

/// Whether `node` is an element named `{ns}local`.
pub(crate) fn is_element(doc: &Document<'_>, node: NodeId, ns: &str, local: &str) -> bool {
    doc.element(node)
        .is_some_and(|e| e.matches_name_ns(ns, local))
}

/// The element children of `node`, in document order.
pub(crate) fn child_elements(doc: &Document<'_>, node: NodeId) -> Vec<NodeId> {
    doc.children(node)
        .into_iter()
        .filter(|c| doc.element(*c).is_some())
        .collect()
}

/// Exactly one child `{ns}local` of `node`; `None` if absent, `Err(count)` if repeated.
pub(crate) fn single_child(
    doc: &Document<'_>,
    node: NodeId,
    ns: &str,
    local: &str,
) -> Result<Option<NodeId>, usize> {
    let found = doc.child_elements_by_name_ns(node, ns, local);
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(*one)),
        more => Err(more.len()),
    }
}

/// Every element `{ns}local` in the subtree of `node` (including `node`), document order.
pub(crate) fn descendants_named(
    doc: &Document<'_>,
    node: NodeId,
    ns: &str,
    local: &str,
) -> Vec<NodeId> {
    let mut out = Vec::new();
    if is_element(doc, node, ns, local) {
        out.push(node);
    }
    out.extend(
        doc.descendants(node)
            .into_iter()
            .filter(|d| is_element(doc, *d, ns, local)),
    );
    out
}

/// The `Algorithm` attribute of `node`.
pub(crate) fn algorithm(doc: &Document<'_>, node: NodeId) -> Option<String> {
    doc.get_attribute(node, "Algorithm").map(str::to_owned)
}

/// The concatenated text of `node` with all XML whitespace removed (for base64 content).
pub(crate) fn compact_text(doc: &Document<'_>, node: NodeId) -> String {
    doc.text_content_deep(node)
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect()
}

/// Decode standard base64 after removing whitespace.
pub(crate) fn decode_base64(text: &str) -> Result<Vec<u8>, base64::DecodeError> {
    use base64::Engine;
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(compact)
}

/// Encode standard base64.
pub(crate) fn encode_base64(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}
