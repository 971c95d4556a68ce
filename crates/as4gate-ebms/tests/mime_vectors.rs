//! Splitting the real multipart bodies among the shared vectors (AS4.NET,
//! Holodeck via AS4.NET, phase4), under many chunkings, then parsing their root
//! parts and decompressing attachments where the case is about compression.

use as4gate_ebms::gzip::{CappedGunzip, GunzipError};
use as4gate_ebms::mime::{MultipartRelated, MultipartSplitter, PartHeaders, PartSink};
use as4gate_ebms::{EbmsError, EnvelopeNodes, ErrorCode, Limits, Messaging, xml};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/vectors/");
const NET_I: &str = "as4net/source/Eu.EDelivery.AS4.IntegrationTests/Resources/";
const NET_U: &str = "as4net/source/Eu.EDelivery.AS4.UnitTests/Resources/";

/// Expected result of parsing a root part: fine, or refused with (code, detail text).
type RootOutcome = Result<(), (ErrorCode, &'static str)>;

#[derive(Default, Debug, PartialEq)]
struct Collect {
    parts: Vec<(PartHeaders, Vec<u8>)>,
}

impl PartSink for Collect {
    fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError> {
        self.parts.push((headers, Vec::new()));
        Ok(())
    }
    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
        self.parts
            .last_mut()
            .expect("part open")
            .1
            .extend_from_slice(data);
        Ok(())
    }
    fn part_end(&mut self) -> Result<(), EbmsError> {
        Ok(())
    }
}

/// Deterministic xorshift for chunk sizes.
struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

fn split_chunked(
    body: &[u8],
    boundary: &str,
    mut next_len: impl FnMut() -> usize,
) -> Result<Collect, EbmsError> {
    let mut s = MultipartSplitter::new(boundary, &Limits::default())?;
    let mut c = Collect::default();
    let mut rest = body;
    while !rest.is_empty() {
        let n = next_len().clamp(1, rest.len());
        s.push(&rest[..n], &mut c)?;
        rest = &rest[n..];
    }
    s.finish(&mut c)?;
    Ok(c)
}

/// Splits whole, byte by byte and with random chunks; all must agree.
fn split_all_ways(body: &[u8], boundary: &str) -> Result<Collect, EbmsError> {
    let whole = split_chunked(body, boundary, || usize::MAX)?;
    assert_eq!(split_chunked(body, boundary, || 1)?, whole, "1-byte chunks");
    for seed in 1..4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        assert_eq!(
            split_chunked(body, boundary, || 1 + rng.below(20_000))?,
            whole,
            "seed {seed}"
        );
    }
    Ok(whole)
}

/// The boundary of a body whose first delimiter line follows an optional BOM / empty line.
fn first_boundary(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(&body[..200]);
    let line = text
        .lines()
        .find(|l| l.starts_with("--"))
        .expect("delimiter line");
    line[2..].trim_end().to_owned()
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(format!("{VECTORS}{path}")).unwrap()
}

fn parse_root(root: &[u8]) -> Result<Messaging, EbmsError> {
    let text = std::str::from_utf8(root)
        .unwrap()
        .trim_start_matches('\u{feff}');
    let doc = xml::parse(text, &Limits::default())?;
    let nodes = EnvelopeNodes::locate(&doc)?;
    Messaging::parse(&doc, nodes.messaging)
}

#[test]
fn as4net_bodies_split() {
    // (file, parts, outcome of parsing the root part)
    let cases: Vec<(String, usize, RootOutcome)> = vec![
        // AS4.NET writes `eb:Schemas`, which the ebMS3 schema does not define.
        (
            format!("{NET_I}as4message.txt"),
            3,
            Err((ErrorCode::InvalidHeader, "Schemas")),
        ),
        (
            format!("{NET_I}as4message_external_payloads.txt"),
            3,
            Err((ErrorCode::InvalidHeader, "Schemas")),
        ),
        (
            format!("{NET_I}as4message_incorect_compressed.txt"),
            2,
            Ok(()),
        ),
        // eDelivery CP_TA26: compressed part without MimeType.
        (
            format!("{NET_I}as4message_missing_mime_property.txt"),
            2,
            Err((ErrorCode::ValueInconsistent, "no MimeType")),
        ),
        (
            format!("{NET_I}as4-soap-wrong-encrypted-message.txt"),
            3,
            Err((ErrorCode::InvalidHeader, "Schemas")),
        ),
        (
            format!("{NET_U}as4-soap-wrong-encrypted-no-encrypteddata-for-attachment.as4"),
            3,
            Ok(()),
        ),
    ];
    for (file, parts, expect) in cases {
        let body = read(&file);
        let collected = split_all_ways(&body, &first_boundary(&body)).unwrap();
        assert_eq!(collected.parts.len(), parts, "{file}");
        match (parse_root(&collected.parts[0].1), expect) {
            (Ok(m), Ok(())) => {
                // Every cid: PartInfo names an attachment part.
                for p in &m.user_messages[0].payload_info {
                    let cid = p.cid().unwrap();
                    assert!(
                        collected.parts[1..]
                            .iter()
                            .any(|(h, _)| h.content_id.as_deref() == Some(cid)),
                        "{file}: no part for {cid}"
                    );
                }
            }
            (Err(e), Err((code, needle))) => {
                assert_eq!(e.code, code, "{file}: {e}");
                assert!(e.detail.contains(needle), "{file}: {e}");
            }
            (got, want) => panic!("{file}: got {got:?}, want {want:?}"),
        }
    }
}

#[test]
fn incorrectly_compressed_payload_is_0303() {
    let body = read(&format!("{NET_I}as4message_incorect_compressed.txt"));
    let collected = split_all_ways(&body, &first_boundary(&body)).unwrap();
    let m = parse_root(&collected.parts[0].1).unwrap();
    let part = &m.user_messages[0].payload_info[0];
    assert_eq!(part.compression_type(), Some("application/gzip"));
    let (_, data) = collected
        .parts
        .iter()
        .find(|(h, _)| h.content_id.as_deref() == part.cid())
        .unwrap();
    let mut gunzip = CappedGunzip::new(Vec::new(), Limits::default().max_decompressed_bytes);
    let err = gunzip
        .push(data)
        .and_then(|()| gunzip.finish().map(|_| ()))
        .unwrap_err();
    assert!(matches!(err, GunzipError::Corrupt(_)), "{err:?}");
    assert_eq!(EbmsError::from(err).code, ErrorCode::DecompressionFailure);
}

#[test]
fn holodeck_body_kept_as_escaped_string() {
    // The vector holds the body as a C# string literal with `\r\n` and `\"` escapes.
    let raw = String::from_utf8(read(&format!("{NET_U}holodeck-as4message.xml"))).unwrap();
    let body = raw
        .trim_start_matches('\u{feff}')
        .replace("\\r\\n", "\r\n")
        .replace("\\\"", "\"");
    let collected = split_all_ways(body.as_bytes(), &first_boundary(body.as_bytes())).unwrap();
    assert_eq!(collected.parts.len(), 2);
    assert_eq!(
        collected.parts[0].0.content_transfer_encoding.as_deref(),
        Some("binary")
    );
    let m = parse_root(&collected.parts[0].1).unwrap();
    let cid = m.user_messages[0].payload_info[0].cid().unwrap();
    assert_eq!(collected.parts[1].0.content_id.as_deref(), Some(cid));
}

#[test]
fn phase4_wrong_compression() {
    // Stored with LF line ends; MIME needs CRLF.
    let raw = String::from_utf8(read(
        "phase4/phase4-test/src/test/resources/testfiles/WrongCompression.mime",
    ))
    .unwrap();
    let crlf = raw.replace("\r\n", "\n").replace('\n', "\r\n");
    let (head, body) = crlf.split_once("\r\n\r\n").unwrap();
    let content_type = head
        .replace("\r\n\t", " ")
        .lines()
        .find_map(|l| l.strip_prefix("Content-Type:"))
        .unwrap()
        .to_owned();
    let related = MultipartRelated::parse(&content_type).unwrap();
    assert_eq!(related.r#type.as_deref(), Some("application/soap+xml"));
    // The attachment is base64-encoded: refused by the splitter.
    let e = split_chunked(body.as_bytes(), &related.boundary, || 7).unwrap_err();
    assert_eq!(e.code, ErrorCode::MimeInconsistency);
    assert!(e.detail.contains("base64"));
    // Its root part alone is refused first for the untyped PartyId (ebMS3 §5.2.2.4) ...
    let start = body.find("<?xml").unwrap();
    let end = body[start..].find("</S12:Envelope>").unwrap() + start + "</S12:Envelope>".len();
    let root = &body[start..end];
    let e = parse_root(root.as_bytes()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ValueInconsistent);
    // ... and with typed PartyIds, for CompressionType application/rar: EBMS:0303.
    let typed = root.replace("<eb:PartyId>", "<eb:PartyId type=\"urn:test\">");
    let e = parse_root(typed.as_bytes()).unwrap_err();
    assert_eq!(e.code, ErrorCode::DecompressionFailure);
    assert!(e.detail.contains("application/rar"));
}
