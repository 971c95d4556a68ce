//! AS4 payload compression (AS4 profile §3.1: `CompressionType=application/gzip`).
//!
//! [`CappedGunzip`] is a `Write` adapter: compressed bytes are written in and
//! the decompressed bytes go to the inner writer, never more than the cap
//! ([`crate::Limits::max_decompressed_bytes`]); memory use is the inflater's
//! fixed window plus flate2's gzip header buffer (capped at 64 KiB by flate2).
//! Multi-member gzip streams (RFC 1952 §2.2) are accepted. Unbounded flate2
//! decoders are banned crate-wide in `clippy.toml`.
//!
//! Error mapping ([`GunzipError`] -> [`EbmsError`]): corrupt/truncated input and
//! a bomb over the cap are EBMS:0303 DecompressionFailure (the AS4 profile's code
//! for "an error occurred during the decompression"); a failure of the inner
//! writer is EBMS:0004 Other (our problem, not the sender's).

use std::io::{self, Read, Write};

use flate2::Compression;

use crate::error::{EbmsError, ErrorCode};

/// Why decompression stopped.
#[derive(Debug, thiserror::Error)]
pub enum GunzipError {
    /// Output would exceed the cap: a decompression bomb or an oversized payload.
    #[error("decompressed payload exceeds the limit of {limit} bytes")]
    TooLarge {
        /// The cap in bytes.
        limit: u64,
    },
    /// The input is not valid gzip, or is truncated.
    #[error("payload is not valid gzip: {0}")]
    Corrupt(String),
    /// The inner writer failed.
    #[error("writing the decompressed payload failed: {0}")]
    Sink(io::Error),
}

impl From<&GunzipError> for EbmsError {
    fn from(e: &GunzipError) -> EbmsError {
        let code = match e {
            GunzipError::TooLarge { .. } | GunzipError::Corrupt(_) => {
                ErrorCode::DecompressionFailure
            }
            GunzipError::Sink(_) => ErrorCode::Other,
        };
        EbmsError::new(code, e.to_string())
    }
}

impl From<GunzipError> for EbmsError {
    fn from(e: GunzipError) -> EbmsError {
        EbmsError::from(&e)
    }
}

/// Counts output and refuses to pass the cap.
#[derive(Debug)]
struct CapWriter<W> {
    inner: W,
    written: u64,
    limit: u64,
    exceeded: bool,
    sink_failed: bool,
}

impl<W: Write> Write for CapWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let len = buf.len() as u64;
        if self.written.saturating_add(len) > self.limit {
            self.exceeded = true;
            return Err(io::Error::other("decompression cap exceeded"));
        }
        let n = self
            .inner
            .write(buf)
            .inspect_err(|_| self.sink_failed = true)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush().inspect_err(|_| self.sink_failed = true)
    }
}

/// A `Write` adapter that gunzips into `W` with an output cap (see module docs).
#[derive(Debug)]
pub struct CappedGunzip<W: Write> {
    #[allow(clippy::disallowed_types)] // the one sanctioned use: capped by CapWriter
    decoder: flate2::write::MultiGzDecoder<CapWriter<W>>,
}

impl<W: Write> CappedGunzip<W> {
    /// Decompresses into `inner`, failing once more than `max_output_bytes`
    /// would be written.
    pub fn new(inner: W, max_output_bytes: u64) -> Self {
        #[allow(clippy::disallowed_types)]
        let decoder = flate2::write::MultiGzDecoder::new(CapWriter {
            inner,
            written: 0,
            limit: max_output_bytes,
            exceeded: false,
            sink_failed: false,
        });
        CappedGunzip { decoder }
    }

    /// Feeds compressed bytes.
    pub fn push(&mut self, compressed: &[u8]) -> Result<(), GunzipError> {
        let result = self.decoder.write_all(compressed);
        result.map_err(|e| self.classify(e))
    }

    /// Decompressed bytes written so far.
    pub fn written(&self) -> u64 {
        self.decoder.get_ref().written
    }

    /// Checks that the stream ended properly (complete member, CRC and length
    /// match) and returns the inner writer.
    pub fn finish(mut self) -> Result<W, GunzipError> {
        match self.decoder.try_finish() {
            Ok(()) => {}
            Err(e) => return Err(self.classify(e)),
        }
        self.decoder
            .finish()
            .map(|cap| cap.inner)
            .map_err(|e| GunzipError::Corrupt(e.to_string()))
    }

    fn classify(&self, e: io::Error) -> GunzipError {
        let cap = self.decoder.get_ref();
        if cap.exceeded {
            GunzipError::TooLarge { limit: cap.limit }
        } else if cap.sink_failed {
            GunzipError::Sink(e)
        } else {
            GunzipError::Corrupt(e.to_string())
        }
    }
}

impl<W: Write> Write for CappedGunzip<W> {
    /// Like [`CappedGunzip::push`]; the [`GunzipError`] is wrapped in the
    /// `io::Error` (`io::Error::other`), recover it with `get_ref`/`downcast`.
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.push(buf).map_err(io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.decoder.flush()
    }
}

/// The gzip member header (RFC 1952 §2.3) we write: deflate, no flags, no modification time,
/// no extra flags (the default level), operating system unknown — what flate2's `GzEncoder`
/// writes at the default level.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255];
/// Uncompressed bytes read per step, and compressed bytes written per step.
const GZIP_CHUNK: usize = 16 * 1024;
/// Most idle deflaters kept for reuse (each holds a few hundred KiB).
const KEPT_DEFLATERS: usize = 4;

/// Idle deflaters, reset between payloads: setting one up costs more than compressing a small
/// payload (its state is hundreds of KiB, allocated and zeroed). A few are kept, not one per
/// thread, so memory stays bounded however many threads compress.
static DEFLATERS: std::sync::Mutex<Vec<flate2::Compress>> = std::sync::Mutex::new(Vec::new());

/// Gzip-compresses everything read from `input` into `output` (outbound
/// payloads) at the default level; returns the number of uncompressed bytes read.
pub fn gzip_compress(input: &mut impl Read, mut output: impl Write) -> io::Result<u64> {
    let kept = DEFLATERS.lock().unwrap_or_else(|e| e.into_inner()).pop();
    let mut deflater = kept.unwrap_or_else(|| flate2::Compress::new(Compression::default(), false));
    deflater.reset();
    let result = deflate_member(&mut deflater, input, &mut output);
    let mut idle = DEFLATERS.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < KEPT_DEFLATERS {
        idle.push(deflater);
    }
    result
}

fn deflate_member(
    deflater: &mut flate2::Compress,
    input: &mut impl Read,
    output: &mut impl Write,
) -> io::Result<u64> {
    use flate2::{FlushCompress, Status};
    output.write_all(&GZIP_HEADER)?;
    let mut crc = flate2::Crc::new();
    let mut chunk = vec![0u8; GZIP_CHUNK];
    let mut out = Vec::with_capacity(GZIP_CHUNK);
    loop {
        let n = match input.read(&mut chunk) {
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        crc.update(&chunk[..n]);
        let flush = if n == 0 {
            FlushCompress::Finish
        } else {
            FlushCompress::None
        };
        let mut pending = &chunk[..n];
        loop {
            out.clear();
            let before = deflater.total_in();
            let status = deflater
                .compress_vec(pending, &mut out, flush)
                .map_err(io::Error::other)?;
            let consumed = usize::try_from(deflater.total_in() - before).unwrap_or(pending.len());
            pending = &pending[consumed..];
            output.write_all(&out)?;
            match status {
                Status::StreamEnd => {
                    output.write_all(&crc.sum().to_le_bytes())?;
                    output.write_all(&crc.amount().to_le_bytes())?;
                    return Ok(deflater.total_in());
                }
                // Input left, or the output buffer was filled: go on with this chunk.
                _ if !pending.is_empty() || out.len() == out.capacity() => {}
                _ if n == 0 => {}
                _ => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        gzip_compress(&mut &data[..], &mut out).unwrap();
        out
    }

    #[test]
    fn round_trip_any_chunking() {
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
        let compressed = gz(&data);
        for chunk in [1, 7, 4096, compressed.len()] {
            let mut g = CappedGunzip::new(Vec::new(), 1 << 20);
            for piece in compressed.chunks(chunk) {
                g.push(piece).unwrap();
            }
            assert_eq!(g.finish().unwrap(), data);
        }
    }

    #[test]
    fn kept_deflater_writes_what_gz_encoder_writes() {
        let mut sizes = vec![
            0usize,
            1,
            1024,
            GZIP_CHUNK - 1,
            GZIP_CHUNK,
            3 * GZIP_CHUNK + 17,
        ];
        sizes.extend([1024, 0]); // again, on a kept deflater
        for size in sizes {
            let data: Vec<u8> = (0..size as u32)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            let mut reference = flate2::write::GzEncoder::new(Vec::new(), Compression::default());
            reference.write_all(&data).unwrap();
            let reference = reference.finish().unwrap();
            assert_eq!(gz(&data), reference, "size {size}");
            let mut g = CappedGunzip::new(Vec::new(), 1 << 20);
            g.push(&reference).unwrap();
            assert_eq!(g.finish().unwrap(), data);
        }
    }

    #[test]
    fn multi_member() {
        let mut both = gz(b"hello ");
        both.extend(gz(b"world"));
        let mut g = CappedGunzip::new(Vec::new(), 100);
        g.push(&both).unwrap();
        assert_eq!(g.finish().unwrap(), b"hello world");
    }

    #[test]
    fn bomb_is_capped() {
        let compressed = gz(&vec![0u8; 10_000_000]);
        assert!(compressed.len() < 20_000);
        let mut g = CappedGunzip::new(Vec::new(), 1_000_000);
        let err = g.push(&compressed).unwrap_err();
        assert!(matches!(err, GunzipError::TooLarge { limit: 1_000_000 }));
        assert_eq!(EbmsError::from(&err).code, ErrorCode::DecompressionFailure);
        assert!(g.written() <= 1_000_000);
    }

    #[test]
    fn exact_cap_is_allowed() {
        let compressed = gz(&[7u8; 1000]);
        let mut g = CappedGunzip::new(Vec::new(), 1000);
        g.push(&compressed).unwrap();
        assert_eq!(g.finish().unwrap().len(), 1000);
    }

    #[test]
    fn truncated_and_corrupt_are_0303() {
        let compressed = gz(b"some payload some payload some payload");
        let mut g = CappedGunzip::new(Vec::new(), 1000);
        g.push(&compressed[..compressed.len() - 3]).unwrap();
        let err = g.finish().unwrap_err();
        assert!(matches!(err, GunzipError::Corrupt(_)), "{err:?}");
        assert_eq!(EbmsError::from(err).code, ErrorCode::DecompressionFailure);

        let mut g = CappedGunzip::new(Vec::new(), 1000);
        let err = g.push(b"this is not gzip at all").unwrap_err();
        assert!(matches!(err, GunzipError::Corrupt(_)), "{err:?}");

        let g = CappedGunzip::new(Vec::new(), 1000);
        assert!(matches!(g.finish().unwrap_err(), GunzipError::Corrupt(_)));

        let mut bad_crc = compressed.clone();
        let n = bad_crc.len();
        bad_crc[n - 6] ^= 0xff;
        let mut g = CappedGunzip::new(Vec::new(), 1000);
        let result = g.push(&bad_crc).and_then(|()| g.finish().map(|_| ()));
        assert!(matches!(result.unwrap_err(), GunzipError::Corrupt(_)));
    }

    #[test]
    fn write_adapter_works_with_io_copy() {
        let compressed = gz(b"copy me");
        let mut g = CappedGunzip::new(Vec::new(), 100);
        std::io::copy(&mut &compressed[..], &mut g).unwrap();
        assert_eq!(g.finish().unwrap(), b"copy me");
    }
}
