//! Exclusive XML Canonicalization 1.0 without comments of one element and its subtree, for
//! the signatures we create ([`crate::sign`]) and those we check
//! ([`crate::core_validation`]).
//!
//! bergshamra's canonicalizer walks the whole document from its root for every subtree and
//! builds owned namespace maps at every element; signing a receipt spent about 6 % of the
//! gateway's CPU there, and checking a signature more (bench/ANALYSIS.md). This one visits
//! only the subtree and keeps the in-scope and rendered namespaces as stacks of borrowed
//! strings. It renders through bergshamra's own pieces (attribute and namespace ordering,
//! escaping), and a test checks it byte for byte against bergshamra on every element of the
//! test vectors.
//!
//! The rules (Exclusive XML Canonicalization 1.0, section 3): an element renders the
//! namespaces it visibly uses (its own prefix and its attributes' prefixes) and those the
//! InclusiveNamespaces PrefixList names, each only when the nearest rendering ancestor in the
//! output did not render the same binding; `xmlns=""` appears only to undo a default
//! namespace rendered above. Attributes sort by namespace URI, then local name; comments are
//! dropped.

use std::borrow::Cow;

use bergshamra::c14n::C14nSink;
use bergshamra::c14n::escape::{escape_pi_into, escape_text_into};
use bergshamra::c14n::render::{Attr, NsDecl};
use uppsala::{Document, NodeId, NodeKind};

/// The XML namespace, bound to `xml` everywhere and never declared.
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// The exclusive canonical form of `top` and its subtree. `prefix_list` holds the
/// InclusiveNamespaces prefixes, `#default` standing for the default namespace.
pub(crate) fn exclusive_subtree(doc: &Document<'_>, top: NodeId, prefix_list: &[&str]) -> Vec<u8> {
    let mut canonicalizer = Canonicalizer {
        doc,
        inclusive: prefix_list
            .iter()
            .map(|p| if *p == "#default" { "" } else { p })
            .collect(),
        in_scope: Vec::new(),
        rendered: Vec::new(),
        out: Vec::with_capacity(4096),
    };
    let mut ancestors: Vec<NodeId> = std::iter::successors(doc.parent(top), |n| doc.parent(*n))
        .filter(|n| doc.element(*n).is_some())
        .collect();
    ancestors.reverse();
    for ancestor in ancestors {
        canonicalizer.declare(ancestor);
    }
    canonicalizer.node(top);
    canonicalizer.out
}

struct Canonicalizer<'d, 'a> {
    doc: &'d Document<'a>,
    /// PrefixList prefixes; `""` for the default namespace.
    inclusive: Vec<&'d str>,
    /// Namespace declarations in scope, outermost first; an empty URI undeclares.
    in_scope: Vec<(&'d str, &'d str)>,
    /// Declarations rendered by output ancestors, outermost first.
    rendered: Vec<(&'d str, &'d str)>,
    out: Vec<u8>,
}

impl<'d, 'a> Canonicalizer<'d, 'a> {
    /// Pushes the namespace declarations of element `id` onto the in-scope stack.
    fn declare(&mut self, id: NodeId) {
        let doc = self.doc;
        if let Some(element) = doc.element(id) {
            self.in_scope.extend(
                element
                    .namespace_declarations
                    .iter()
                    .map(|(prefix, uri)| (prefix.as_ref(), uri.as_ref())),
            );
        }
    }

    fn node(&mut self, id: NodeId) {
        let doc = self.doc;
        match doc.node_kind(id) {
            Some(NodeKind::Element(_)) => self.element(id),
            Some(NodeKind::Text(text)) | Some(NodeKind::CData(text)) => {
                escape_text_into(&mut self.out, text);
            }
            Some(NodeKind::ProcessingInstruction(pi)) => {
                self.out.write(b"<?");
                self.out.write(pi.target.as_bytes());
                if let Some(data) = pi.data.as_deref().filter(|d| !d.is_empty()) {
                    self.out.write_byte(b' ');
                    escape_pi_into(&mut self.out, data);
                }
                self.out.write(b"?>");
            }
            _ => {}
        }
    }

    fn element(&mut self, id: NodeId) {
        let doc = self.doc;
        let Some(element) = doc.element(id) else {
            return;
        };
        let scope_mark = self.in_scope.len();
        let rendered_mark = self.rendered.len();
        self.declare(id);

        let mut utilized: Vec<&'d str> = Vec::with_capacity(2 + self.inclusive.len());
        utilized.push(element.name.prefix.as_deref().unwrap_or(""));
        let attrs: Vec<Attr<'d>> = element.attributes.iter().map(attr).collect();
        utilized.extend(attrs.iter().filter_map(|a| match &a.prefix {
            Some(Cow::Borrowed(prefix)) => Some(*prefix),
            _ => None,
        }));
        utilized.extend(self.inclusive.iter().copied());
        utilized.sort_unstable();
        utilized.dedup();

        let mut declarations = Vec::new();
        for prefix in utilized.into_iter().filter(|p| *p != "xml") {
            let previous = lookup(&self.rendered, prefix);
            match lookup(&self.in_scope, prefix).filter(|uri| !uri.is_empty()) {
                Some(uri) if previous != Some(uri) => declarations.push((prefix, uri)),
                None if prefix.is_empty() && previous.is_some_and(|uri| !uri.is_empty()) => {
                    declarations.push(("", ""));
                }
                _ => {}
            }
        }
        // The default namespace first, then by prefix: the order `utilized` was sorted in.
        let mut attrs = attrs;
        attrs.sort();

        self.out.write_byte(b'<');
        self.qname(element.name.prefix.as_deref(), &element.name.local_name);
        for (prefix, uri) in &declarations {
            NsDecl {
                prefix: (*prefix).to_owned(),
                uri: (*uri).to_owned(),
            }
            .write_to(&mut self.out);
        }
        for a in &attrs {
            a.write_to(&mut self.out);
        }
        self.out.write_byte(b'>');
        self.rendered.extend(declarations);

        for child in doc.children_iter(id) {
            self.node(child);
        }

        self.out.write(b"</");
        self.qname(element.name.prefix.as_deref(), &element.name.local_name);
        self.out.write_byte(b'>');
        self.rendered.truncate(rendered_mark);
        self.in_scope.truncate(scope_mark);
    }

    fn qname(&mut self, prefix: Option<&str>, local: &str) {
        if let Some(prefix) = prefix.filter(|p| !p.is_empty()) {
            self.out.write(prefix.as_bytes());
            self.out.write_byte(b':');
        }
        self.out.write(local.as_bytes());
    }
}

/// The innermost binding of `prefix` in `stack`.
fn lookup<'d>(stack: &[(&'d str, &'d str)], prefix: &str) -> Option<&'d str> {
    stack
        .iter()
        .rev()
        .find(|(p, _)| *p == prefix)
        .map(|(_, uri)| *uri)
}

/// An attribute as bergshamra orders and renders it: `xml:` for the XML namespace, its own
/// prefix for other namespaced attributes, none for unqualified ones.
fn attr<'d>(a: &'d uppsala::Attribute<'_>) -> Attr<'d> {
    let ns_uri = a.name.namespace_uri.as_deref().unwrap_or("");
    let prefix = match ns_uri {
        "" => None,
        XML_NS => Some("xml"),
        _ => a.name.prefix.as_deref().filter(|p| !p.is_empty()),
    };
    Attr {
        ns_uri: Cow::Borrowed(ns_uri),
        prefix: prefix.map(Cow::Borrowed),
        local_name: Cow::Borrowed(a.name.local_name.as_ref()),
        value: Cow::Borrowed(a.value.as_ref()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bergshamra::c14n::{C14nMode, canonicalize_doc};
    use bergshamra::xml::nodeset::NodeSet;

    const PREFIX_LISTS: &[&[&str]] = &[&[], &["S12"], &["#default"], &["soap", "ds", "eb"]];

    /// Ours and bergshamra's canonical forms of every element of `xml` under every prefix
    /// list; returns how many elements were compared.
    fn compare_all(xml: &str, name: &str) -> usize {
        let Ok(doc) = uppsala::parse(xml) else {
            return 0;
        };
        let mut compared = 0;
        let elements: Vec<NodeId> = doc
            .descendants(doc.root())
            .into_iter()
            .filter(|n| doc.element(*n).is_some())
            .collect();
        for node in elements {
            for prefixes in PREFIX_LISTS {
                let subtree = NodeSet::tree_without_comments(node, &doc);
                let expected =
                    canonicalize_doc(&doc, C14nMode::Exclusive, Some(&subtree), prefixes).unwrap();
                let ours = exclusive_subtree(&doc, node, prefixes);
                assert_eq!(
                    String::from_utf8_lossy(&ours),
                    String::from_utf8_lossy(&expected),
                    "{name}, element {node:?}, PrefixList {prefixes:?}"
                );
                compared += 1;
            }
        }
        compared
    }

    #[test]
    fn namespace_attribute_and_text_corner_cases_match_bergshamra() {
        let xml = r#"<?xml version="1.0"?>
<r:root xmlns:r="urn:r" xmlns="urn:default" xmlns:S12="urn:s12" xmlns:unused="urn:u" xml:lang="lv">
  <!-- dropped -->
  <child b="2" a="1" r:z="3" S12:a="4" xml:space="preserve">text &amp; &lt;more&gt; "q" &#xD;end<![CDATA[ <cdata> & ]]></child>
  <plain xmlns="">no default <r:inner r:attr="x"/></plain>
  <r:redeclared xmlns:r="urn:other"><r:deeper xmlns:r="urn:r"/></r:redeclared>
  <d2:x xmlns:d2="urn:d2" attr="tab&#9;nl&#10;cr&#13;quote&quot;lt&lt;"><?target some data?><d2:y/></d2:x>
  <empty/>
</r:root>"#;
        uppsala::parse(xml).expect("the corner cases parse");
        assert_eq!(compare_all(xml, "corner cases"), 9 * PREFIX_LISTS.len());
    }

    #[test]
    fn every_element_of_the_test_vectors_matches_bergshamra() {
        let root = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/vectors"
        ))
        .to_path_buf();
        let mut pending = vec![root.clone()];
        let (mut files, mut compared) = (0, 0);
        while let Some(dir) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                if path.is_dir() {
                    pending.push(path);
                } else if path.extension().is_some_and(|e| e == "xml")
                    && let Ok(xml) = std::fs::read_to_string(&path)
                    && !xml.contains("<!DOCTYPE")
                {
                    let n = compare_all(&xml, &path.display().to_string());
                    files += usize::from(n > 0);
                    compared += n;
                }
            }
        }
        assert!(
            files >= 10 && compared >= 1000,
            "only {files} files / {compared} elements under {}",
            root.display()
        );
    }
}
