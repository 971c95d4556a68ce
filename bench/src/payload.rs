//! Incompressible payload bytes: uniformly random (aws-lc's DRBG), so gzip cannot shrink them
//! and every byte the generator declares is a byte the gateway has to move.

use std::io::{self, Read};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};

/// `len` random bytes in memory.
pub fn random_bytes(len: usize) -> anyhow::Result<Vec<u8>> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| anyhow::anyhow!("no randomness"))?;
    Ok(bytes)
}

/// A reader of `remaining` random bytes, for payloads too large to hold in memory.
pub struct RandomReader {
    rng: SystemRandom,
    remaining: u64,
}

impl RandomReader {
    /// A reader that yields exactly `len` random bytes.
    pub fn new(len: u64) -> RandomReader {
        RandomReader {
            rng: SystemRandom::new(),
            remaining: len,
        }
    }
}

impl Read for RandomReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = usize::try_from(self.remaining)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        if n == 0 {
            return Ok(0);
        }
        self.rng
            .fill(&mut buf[..n])
            .map_err(|_| io::Error::other("no randomness"))?;
        self.remaining -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reader_yields_exactly_len_bytes() {
        let mut out = Vec::new();
        RandomReader::new(100_003).read_to_end(&mut out).unwrap();
        assert_eq!(out.len(), 100_003);
        assert_ne!(&out[..32], &[0u8; 32]);
    }

    #[test]
    fn random_payload_does_not_compress() {
        let data = random_bytes(64 * 1024).unwrap();
        let mut gz = Vec::new();
        as4gate_ebms::gzip::gzip_compress(&mut data.as_slice(), &mut gz).unwrap();
        assert!(gz.len() >= data.len(), "{} < {}", gz.len(), data.len());
    }
}
