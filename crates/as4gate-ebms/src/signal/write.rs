//! A minimal, careful XML writer for the envelopes this crate builds.
//!
//! Text and attribute values are escaped (`& < > " '` plus CR/LF/TAB in
//! attributes so they survive attribute-value normalisation). Characters XML 1.0
//! cannot carry at all (C0 controls other than TAB/LF/CR, U+FFFE, U+FFFF) are
//! replaced by U+FFFD, so any Rust string can be written and the output is always
//! well formed.

/// Accumulates XML text.
pub(crate) struct XmlOut {
    buf: String,
}

impl XmlOut {
    pub(crate) fn new() -> Self {
        XmlOut { buf: String::new() }
    }

    /// `<name a="v" …>`
    pub(crate) fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.buf.push('>');
    }

    /// `<name a="v" …/>`
    pub(crate) fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.start(name, attrs);
        self.buf.push_str("/>");
    }

    /// `</name>`
    pub(crate) fn close(&mut self, name: &str) {
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }

    /// `<name …>text</name>`
    pub(crate) fn leaf(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.text(text);
        self.close(name);
    }

    /// Escaped character data.
    pub(crate) fn text(&mut self, text: &str) {
        for c in text.chars() {
            match c {
                '&' => self.buf.push_str("&amp;"),
                '<' => self.buf.push_str("&lt;"),
                '>' => self.buf.push_str("&gt;"),
                '\r' => self.buf.push_str("&#13;"),
                c => self.buf.push(xml_char(c)),
            }
        }
    }

    pub(crate) fn finish(self) -> String {
        self.buf
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            self.attr_value(v);
            self.buf.push('"');
        }
    }

    fn attr_value(&mut self, value: &str) {
        for c in value.chars() {
            match c {
                '&' => self.buf.push_str("&amp;"),
                '<' => self.buf.push_str("&lt;"),
                '>' => self.buf.push_str("&gt;"),
                '"' => self.buf.push_str("&quot;"),
                '\'' => self.buf.push_str("&apos;"),
                '\t' => self.buf.push_str("&#9;"),
                '\n' => self.buf.push_str("&#10;"),
                '\r' => self.buf.push_str("&#13;"),
                c => self.buf.push(xml_char(c)),
            }
        }
    }
}

/// `c` if XML 1.0 can carry it, else U+FFFD.
fn xml_char(c: char) -> char {
    match c {
        '\t' | '\n' | '\r' => c,
        '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => '\u{fffd}',
        c => c,
    }
}

/// An NCName derived from `prefix` and `seed`: characters outside
/// `[A-Za-z0-9._-]` become `_`. `prefix` must itself start an NCName (e.g. `_body-`).
pub(crate) fn ncname(prefix: &str, seed: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + seed.len());
    out.push_str(prefix);
    out.extend(seed.chars().map(|c| {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
            c
        } else {
            '_'
        }
    }));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_hostile_strings() {
        let mut w = XmlOut::new();
        w.leaf("a", &[("x", "\"'<&>\t\n\r")], "]]></a><b>&amp;\u{1}\r");
        assert_eq!(
            w.finish(),
            "<a x=\"&quot;&apos;&lt;&amp;&gt;&#9;&#10;&#13;\">]]&gt;&lt;/a&gt;&lt;b&gt;&amp;amp;\u{fffd}&#13;</a>"
        );
    }

    #[test]
    fn ncname_sanitises() {
        assert_eq!(ncname("_body-", "a1@b.c/d e"), "_body-a1_b.c_d_e");
    }
}
