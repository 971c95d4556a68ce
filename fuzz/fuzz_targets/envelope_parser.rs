//! Fuzzes the envelope path: DOCTYPE refusal, bounded XML parse, envelope location and the
//! `eb:Messaging` model, in the order the daemon runs them on an inbound root part.
#![no_main]

use as4gate_ebms::limits::Limits;
use as4gate_ebms::{EnvelopeNodes, Messaging};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The byte scanner runs before the UTF-8 check in the daemon, so it sees any bytes.
    if as4gate_ebms::xml::reject_doctype(data).is_err() {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(doc) = as4gate_ebms::xml::parse(text, &Limits::default()) else {
        return;
    };
    let Ok(nodes) = EnvelopeNodes::locate(&doc) else {
        return;
    };
    let _ = Messaging::parse(&doc, nodes.messaging);
});
