//! Fuzzes the incremental MIME multipart/related splitter with arbitrary bodies and chunkings.
//!
//! Input layout: the first byte is the chunk size the body is pushed in (0 counts as 1), the
//! rest is the body, split with the boundary `MIMEBoundary_fuzz`. Besides "no panic", the sink
//! checks the callback protocol: `part_start` / `part_data`* / `part_end` in order, never more
//! data than was pushed and never more parts than the limit.
#![no_main]

use as4gate_ebms::error::EbmsError;
use as4gate_ebms::limits::Limits;
use as4gate_ebms::mime::{MultipartSplitter, PartHeaders, PartSink};
use libfuzzer_sys::fuzz_target;

/// The boundary every seed body in `corpus/mime_splitter` uses.
const BOUNDARY: &str = "MIMEBoundary_fuzz";

/// Checks the order of the splitter's callbacks and counts what it delivers.
#[derive(Default)]
struct Checker {
    in_part: bool,
    parts: usize,
    bytes: usize,
}

impl PartSink for Checker {
    fn part_start(&mut self, _: PartHeaders) -> Result<(), EbmsError> {
        assert!(!self.in_part, "part_start inside a part");
        self.in_part = true;
        self.parts += 1;
        Ok(())
    }
    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
        assert!(self.in_part, "part_data outside a part");
        self.bytes += data.len();
        Ok(())
    }
    fn part_end(&mut self) -> Result<(), EbmsError> {
        assert!(self.in_part, "part_end outside a part");
        self.in_part = false;
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&chunk, body)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let limits = Limits::default();
    let mut splitter = MultipartSplitter::new(BOUNDARY, &limits).expect("valid boundary");
    let mut sink = Checker::default();
    let mut pushed = Ok(());
    for piece in body.chunks(chunk) {
        pushed = splitter.push(piece, &mut sink);
        if pushed.is_err() {
            break;
        }
    }
    assert!(sink.bytes <= body.len(), "more part data than body bytes");
    assert!(sink.parts <= limits.max_mime_parts, "part limit exceeded");
    if pushed.is_ok() && splitter.finish(&mut sink).is_ok() {
        assert!(!sink.in_part, "finish accepted an unterminated part");
        assert!(sink.parts > 0, "finish accepted a body without parts");
    }
});
