//! Our own read of a `ds:Signature`'s `SignedInfo`: algorithms, references and transforms.
//!
//! The policy checks and the receipt's `NonRepudiationInformation` need these values before
//! and independently of the engine; reading them ourselves also lets us refuse unwanted URIs
//! (remote or file references, XPointer) before the engine would try to resolve them.

use as4gate_ebms::model::{NrReference, TransformSpec};
use uppsala::{Document, NodeId};

use crate::xml_util::{algorithm, child_elements, compact_text, is_element, single_child};
use crate::{WssecError, names};

/// The parts of a `ds:Signature` the verifier and the signer report on.
#[derive(Debug)]
pub(crate) struct ParsedSignature {
    /// `ds:SignedInfo`.
    pub(crate) signed_info: NodeId,
    /// `CanonicalizationMethod/@Algorithm`.
    pub(crate) c14n_method: String,
    /// Its `ec:InclusiveNamespaces/@PrefixList`, if any.
    pub(crate) c14n_prefixes: Option<String>,
    /// `ds:SignatureValue`.
    pub(crate) signature_value: NodeId,
    /// `SignatureMethod/@Algorithm`.
    pub(crate) signature_method: String,
    /// The references in signature order.
    pub(crate) references: Vec<NrReference>,
    /// `ds:KeyInfo`, if present.
    pub(crate) key_info: Option<NodeId>,
}

fn malformed(what: impl Into<String>) -> WssecError {
    WssecError::MalformedSignature(what.into())
}

fn required_child(
    doc: &Document<'_>,
    parent: NodeId,
    local: &'static str,
) -> Result<NodeId, WssecError> {
    match single_child(doc, parent, names::DS, local) {
        Ok(Some(n)) => Ok(n),
        Ok(None) => Err(malformed(format!("missing ds:{local}"))),
        Err(n) => Err(malformed(format!("{n} ds:{local} elements"))),
    }
}

fn required_algorithm(doc: &Document<'_>, node: NodeId, what: &str) -> Result<String, WssecError> {
    algorithm(doc, node).ok_or_else(|| malformed(format!("{what} without Algorithm")))
}

/// `ec:InclusiveNamespaces/@PrefixList` under a c14n method or transform element.
fn inclusive_prefixes(doc: &Document<'_>, node: NodeId) -> Option<String> {
    doc.child_elements_by_name_ns(node, names::EXC_C14N, "InclusiveNamespaces")
        .first()
        .and_then(|n| doc.get_attribute(*n, "PrefixList"))
        .map(str::to_owned)
}

impl ParsedSignature {
    /// Read `signature` (a `ds:Signature` element), refusing more than `max_references`
    /// references before looking at any of them.
    pub(crate) fn read(
        doc: &Document<'_>,
        signature: NodeId,
        max_references: usize,
    ) -> Result<Self, WssecError> {
        let signed_info = required_child(doc, signature, "SignedInfo")?;
        let c14n = required_child(doc, signed_info, "CanonicalizationMethod")?;
        let c14n_method = required_algorithm(doc, c14n, "CanonicalizationMethod")?;
        let sig_method = required_child(doc, signed_info, "SignatureMethod")?;
        let signature_method = required_algorithm(doc, sig_method, "SignatureMethod")?;
        let signature_value = required_child(doc, signature, "SignatureValue")?;
        let key_info = single_child(doc, signature, names::DS, "KeyInfo")
            .map_err(|n| malformed(format!("{n} ds:KeyInfo elements")))?;

        let reference_nodes = doc.child_elements_by_name_ns(signed_info, names::DS, "Reference");
        if reference_nodes.len() > max_references {
            return Err(WssecError::TooManyReferences {
                count: reference_nodes.len(),
                limit: max_references,
            });
        }
        if reference_nodes.is_empty() {
            return Err(malformed("SignedInfo has no ds:Reference"));
        }
        let references = reference_nodes
            .into_iter()
            .map(|r| read_reference(doc, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            signed_info,
            c14n_prefixes: inclusive_prefixes(doc, c14n),
            c14n_method,
            signature_value,
            signature_method,
            references,
            key_info,
        })
    }
}

fn read_reference(doc: &Document<'_>, reference: NodeId) -> Result<NrReference, WssecError> {
    let uri = doc
        .get_attribute(reference, "URI")
        .ok_or_else(|| malformed("ds:Reference without URI"))?
        .to_owned();
    let mut transforms = Vec::new();
    if let Some(list) = single_child(doc, reference, names::DS, "Transforms")
        .map_err(|n| malformed(format!("{n} ds:Transforms elements")))?
    {
        for t in child_elements(doc, list) {
            if !is_element(doc, t, names::DS, "Transform") {
                return Err(malformed("unexpected element in ds:Transforms"));
            }
            transforms.push(TransformSpec {
                algorithm: required_algorithm(doc, t, "Transform")?,
                inclusive_prefixes: inclusive_prefixes(doc, t),
            });
        }
    }
    let digest_method = required_algorithm(
        doc,
        required_child(doc, reference, "DigestMethod")?,
        "DigestMethod",
    )?;
    let digest_value_b64 = compact_text(doc, required_child(doc, reference, "DigestValue")?);
    Ok(NrReference {
        uri,
        transforms,
        digest_method,
        digest_value_b64,
    })
}

/// The id of a bare same-document reference `#id` (no XPointer), if `uri` is one.
pub(crate) fn same_document_id(uri: &str) -> Option<&str> {
    let id = uri.strip_prefix('#')?;
    let valid = !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.'))
        && !id.starts_with(|c: char| c.is_ascii_digit() || c == '-' || c == '.');
    valid.then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_document_ids_are_bare_ncnames() {
        assert_eq!(same_document_id("#_body-1"), Some("_body-1"));
        assert_eq!(same_document_id("#xpointer(id('a'))"), None);
        assert_eq!(same_document_id("#"), None);
        assert_eq!(same_document_id(""), None);
        assert_eq!(same_document_id("cid:a@b"), None);
        assert_eq!(same_document_id("#1a"), None);
    }
}
