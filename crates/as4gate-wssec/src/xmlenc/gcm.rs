//! Streaming AES-128-GCM for attachment parts in the AS4 layout `IV(12) || ciphertext || tag(16)`.
//!
//! aws-lc-rs offers AES-GCM only one-shot, so a multi-gigabyte attachment would have to sit in
//! memory. This module composes GCM from two streaming pieces instead (NIST SP 800-38D §7):
//! AES-CTR from aws-lc-rs with the counter block starting at `inc32(J0)` (for a 96-bit IV,
//! `J0 = IV || 0x00000001`), and GHASH from the `ghash` crate over the ciphertext. The tag is
//! `GHASH_H(C || len64(0) || len64(C)) XOR E_K(J0)` and is compared in constant time. Memory use is
//! a fixed scratch buffer ([`SCRATCH_LEN`]) whatever the attachment size.
//!
//! **Decrypted output is unauthenticated until [`GcmDecryptor::finish`] returns `Ok`.** The
//! caller must write it somewhere disposable (a spool file) and discard it when `finish` fails;
//! it must never deliver, parse or decompress it before that.

use std::io::Write;

use aws_lc_rs::cipher::{
    AES_128, EncryptingKey, EncryptionContext, StreamingEncryptingKey, UnboundCipherKey,
};
use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::iv::FixedLength;
use ghash::GHash;
use ghash::universal_hash::UniversalHash;

use super::error::XmlEncError;

/// Length of the GCM IV that prefixes every encrypted attachment (96 bits, the only size AS4 uses).
pub const GCM_IV_LEN: usize = 12;
/// Length of the GCM authentication tag that ends every encrypted attachment.
pub const GCM_TAG_LEN: usize = 16;
/// Length of an AES-128 key.
pub const AES128_KEY_LEN: usize = 16;
/// Largest ciphertext GCM allows for one IV: 2^32 - 2 counter blocks (SP 800-38D §5.2.1.1).
/// Beyond it the 32-bit block counter would wrap, so longer input is refused.
pub const GCM_MAX_CIPHERTEXT_LEN: u64 = (1u64 << 36) - 32;
/// Bytes processed per aws-lc-rs call; the only buffer that exists per stream.
pub const SCRATCH_LEN: usize = 16 * 1024;

const BLOCK_LEN: usize = 16;

/// The GCM state shared by both directions: CTR keystream, GHASH over the ciphertext, and
/// the pre-computed tag mask `E_K(J0)`.
struct GcmCore {
    ctr: StreamingEncryptingKey,
    ghash: GHash,
    partial: [u8; BLOCK_LEN],
    partial_len: usize,
    ciphertext_len: u64,
    tag_mask: [u8; BLOCK_LEN],
    scratch: Vec<u8>,
}

impl GcmCore {
    fn new(key: &[u8; AES128_KEY_LEN], iv: &[u8; GCM_IV_LEN]) -> Result<Self, XmlEncError> {
        let block_key = EncryptingKey::ecb(UnboundCipherKey::new(&AES_128, key)?)?;
        let mut hash_key = [0u8; BLOCK_LEN];
        block_key.encrypt(&mut hash_key)?;
        let mut j0 = [0u8; BLOCK_LEN];
        j0[..GCM_IV_LEN].copy_from_slice(iv);
        j0[BLOCK_LEN - 1] = 1;
        let mut tag_mask = j0;
        block_key.encrypt(&mut tag_mask)?;
        // First keystream block is inc32(J0); with a 96-bit IV the low word is 1, so this is 2.
        let mut first_counter = j0;
        first_counter[BLOCK_LEN - 1] = 2;
        let ctr = StreamingEncryptingKey::less_safe_ctr(
            UnboundCipherKey::new(&AES_128, key)?,
            EncryptionContext::Iv128(FixedLength::from(first_counter)),
        )?;
        Ok(Self {
            ctr,
            ghash: GHash::new(&ghash::Key::from(hash_key)),
            partial: [0; BLOCK_LEN],
            partial_len: 0,
            ciphertext_len: 0,
            tag_mask,
            scratch: vec![0; SCRATCH_LEN + BLOCK_LEN],
        })
    }

    fn count(&mut self, len: usize) -> Result<(), XmlEncError> {
        self.ciphertext_len = self
            .ciphertext_len
            .checked_add(len as u64)
            .filter(|total| *total <= GCM_MAX_CIPHERTEXT_LEN)
            .ok_or(XmlEncError::CiphertextTooLong)?;
        Ok(())
    }

    fn hash_ciphertext(&mut self, mut data: &[u8]) {
        if self.partial_len > 0 {
            let take = (BLOCK_LEN - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < BLOCK_LEN {
                return;
            }
            self.ghash.update(&[ghash::Block::from(self.partial)]);
            self.partial_len = 0;
        }
        let (blocks, rest) = ghash::Block::slice_as_chunks(data);
        self.ghash.update(blocks);
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    /// Runs `input` through CTR, hashing the ciphertext side, and writes the output.
    /// `input_is_ciphertext` tells which side GHASH must see.
    fn process(
        &mut self,
        input: &[u8],
        input_is_ciphertext: bool,
        out: &mut impl Write,
    ) -> Result<(), XmlEncError> {
        self.count(input.len())?;
        for piece in input.chunks(SCRATCH_LEN) {
            if input_is_ciphertext {
                self.hash_ciphertext(piece);
            }
            let mut scratch = std::mem::take(&mut self.scratch);
            let written_len = {
                let update = self.ctr.update(piece, &mut scratch)?;
                update.written().len()
            };
            // CTR is a stream mode: aws-lc-rs writes exactly as many bytes as it reads.
            if written_len != piece.len() {
                self.scratch = scratch;
                return Err(XmlEncError::Crypto);
            }
            if !input_is_ciphertext {
                self.hash_ciphertext(&scratch[..written_len]);
            }
            let result = out.write_all(&scratch[..written_len]);
            self.scratch = scratch;
            result?;
        }
        Ok(())
    }

    fn tag(mut self) -> [u8; GCM_TAG_LEN] {
        if self.partial_len > 0 {
            self.ghash.update_padded(&self.partial[..self.partial_len]);
        }
        let mut lengths = [0u8; BLOCK_LEN];
        // len(A) = 0 bits (no AAD in the SwA profile), len(C) in bits.
        lengths[8..].copy_from_slice(&(self.ciphertext_len * 8).to_be_bytes());
        self.ghash.update(&[ghash::Block::from(lengths)]);
        let hash = self.ghash.finalize();
        let mut tag = self.tag_mask;
        for (t, h) in tag.iter_mut().zip(hash.iter()) {
            *t ^= h;
        }
        tag
    }
}

/// Streaming AES-128-GCM decryption of one attachment body (`IV || ciphertext || tag`).
///
/// Feed the part body in any chunking with [`update`](Self::update); the decryptor keeps the
/// IV and always holds back the last 16 bytes as the candidate tag. Plaintext written to `out`
/// is **unauthenticated** until [`finish`](Self::finish) returns `Ok`; on any error the caller
/// must discard everything written so far.
pub struct GcmDecryptor {
    key: [u8; AES128_KEY_LEN],
    iv: [u8; GCM_IV_LEN],
    iv_len: usize,
    core: Option<GcmCore>,
    held_back: [u8; GCM_TAG_LEN],
    held_back_len: usize,
}

impl GcmDecryptor {
    /// Starts decrypting with the unwrapped content-encryption key.
    pub fn new(key: &[u8; AES128_KEY_LEN]) -> Self {
        Self {
            key: *key,
            iv: [0; GCM_IV_LEN],
            iv_len: 0,
            core: None,
            held_back: [0; GCM_TAG_LEN],
            held_back_len: 0,
        }
    }

    /// Consumes the next chunk of the part body and writes the plaintext it releases to `out`.
    ///
    /// # Errors
    /// [`XmlEncError::CiphertextTooLong`] past the GCM limit, [`XmlEncError::Output`] when
    /// `out` fails, [`XmlEncError::Crypto`] on an internal aws-lc-rs failure.
    pub fn update(&mut self, mut chunk: &[u8], out: &mut impl Write) -> Result<(), XmlEncError> {
        if self.iv_len < GCM_IV_LEN {
            let take = (GCM_IV_LEN - self.iv_len).min(chunk.len());
            self.iv[self.iv_len..self.iv_len + take].copy_from_slice(&chunk[..take]);
            self.iv_len += take;
            chunk = &chunk[take..];
            if self.iv_len < GCM_IV_LEN {
                return Ok(());
            }
        }
        let core = match self.core.as_mut() {
            Some(core) => core,
            None => self.core.insert(GcmCore::new(&self.key, &self.iv)?),
        };
        let available = self.held_back_len + chunk.len();
        if available <= GCM_TAG_LEN {
            self.held_back[self.held_back_len..available].copy_from_slice(chunk);
            self.held_back_len = available;
            return Ok(());
        }
        // Everything but the last GCM_TAG_LEN bytes of (held_back || chunk) is ciphertext.
        let release = available - GCM_TAG_LEN;
        let from_held = release.min(self.held_back_len);
        core.process(&self.held_back[..from_held], true, out)?;
        let from_chunk = release - from_held;
        core.process(&chunk[..from_chunk], true, out)?;
        let mut new_held = [0u8; GCM_TAG_LEN];
        let old_rest = &self.held_back[from_held..self.held_back_len];
        new_held[..old_rest.len()].copy_from_slice(old_rest);
        new_held[old_rest.len()..].copy_from_slice(&chunk[from_chunk..]);
        self.held_back = new_held;
        self.held_back_len = GCM_TAG_LEN;
        Ok(())
    }

    /// Verifies the tag (constant time). Only an `Ok` here makes the written plaintext usable.
    ///
    /// # Errors
    /// [`XmlEncError::CiphertextTooShort`] when fewer than IV + tag bytes arrived;
    /// [`XmlEncError::AuthenticationFailed`] when the tag does not match.
    pub fn finish(self) -> Result<(), XmlEncError> {
        if self.iv_len < GCM_IV_LEN || self.held_back_len < GCM_TAG_LEN {
            return Err(XmlEncError::CiphertextTooShort);
        }
        let core = match self.core {
            Some(core) => core,
            None => GcmCore::new(&self.key, &self.iv)?,
        };
        let expected = core.tag();
        verify_slices_are_equal(&expected, &self.held_back)
            .map_err(|_| XmlEncError::AuthenticationFailed)
    }
}

/// Streaming AES-128-GCM encryption producing the AS4 part body `IV || ciphertext || tag`.
///
/// Key and IV come from the caller (sans-I/O). An IV must never be reused with the same key;
/// AS4 uses a fresh random key per message, and each attachment of that message needs its own IV.
pub struct GcmEncryptor {
    iv: [u8; GCM_IV_LEN],
    iv_written: bool,
    core: GcmCore,
}

impl GcmEncryptor {
    /// Starts an encryption with `key` and the 96-bit `iv`.
    ///
    /// # Errors
    /// [`XmlEncError::Crypto`] on an internal aws-lc-rs failure.
    pub fn new(key: &[u8; AES128_KEY_LEN], iv: &[u8; GCM_IV_LEN]) -> Result<Self, XmlEncError> {
        Ok(Self {
            iv: *iv,
            iv_written: false,
            core: GcmCore::new(key, iv)?,
        })
    }

    fn write_iv(&mut self, out: &mut impl Write) -> Result<(), XmlEncError> {
        if !self.iv_written {
            out.write_all(&self.iv)?;
            self.iv_written = true;
        }
        Ok(())
    }

    /// Encrypts the next plaintext chunk, writing the IV first on the first call.
    ///
    /// # Errors
    /// [`XmlEncError::CiphertextTooLong`] past the GCM limit, [`XmlEncError::Output`] when `out` fails.
    pub fn update(&mut self, chunk: &[u8], out: &mut impl Write) -> Result<(), XmlEncError> {
        self.write_iv(out)?;
        self.core.process(chunk, false, out)
    }

    /// Writes the tag (and the IV if nothing was written yet).
    ///
    /// # Errors
    /// [`XmlEncError::Output`] when `out` fails.
    pub fn finish(mut self, out: &mut impl Write) -> Result<(), XmlEncError> {
        self.write_iv(out)?;
        out.write_all(&self.core.tag())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
    use aws_lc_rs::rand::{SecureRandom, SystemRandom};

    fn one_shot_seal(key: &[u8; 16], iv: &[u8; 12], plaintext: &[u8]) -> Vec<u8> {
        let sealing = LessSafeKey::new(UnboundKey::new(&AES_128_GCM, key).unwrap());
        let mut body = plaintext.to_vec();
        sealing
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(*iv), Aad::empty(), &mut body)
            .unwrap();
        let mut out = iv.to_vec();
        out.extend_from_slice(&body);
        out
    }

    fn random_bytes(len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        SystemRandom::new().fill(&mut v).unwrap();
        v
    }

    fn random_below(bound: usize) -> usize {
        let mut b = [0u8; 8];
        SystemRandom::new().fill(&mut b).unwrap();
        (u64::from_le_bytes(b) % bound as u64) as usize
    }

    fn random_chunks(data: &[u8]) -> Vec<&[u8]> {
        let mut chunks = Vec::new();
        let mut rest = data;
        while !rest.is_empty() {
            let max = if random_below(4) == 0 { 40 } else { 70_000 };
            let take = random_below(max + 1).min(rest.len());
            chunks.push(&rest[..take]);
            rest = &rest[take..];
        }
        chunks
    }

    const SIZES: [usize; 7] = [0, 1, 15, 16, 17, 4096 + 3, 1 << 20];

    #[test]
    fn streaming_encrypt_equals_one_shot() {
        for size in SIZES {
            for _ in 0..3 {
                let key: [u8; 16] = random_bytes(16).try_into().unwrap();
                let iv: [u8; 12] = random_bytes(12).try_into().unwrap();
                let plaintext = random_bytes(size);
                let mut enc = GcmEncryptor::new(&key, &iv).unwrap();
                let mut out = Vec::new();
                for chunk in random_chunks(&plaintext) {
                    enc.update(chunk, &mut out).unwrap();
                }
                enc.finish(&mut out).unwrap();
                assert_eq!(out, one_shot_seal(&key, &iv, &plaintext), "size {size}");
            }
        }
    }

    #[test]
    fn streaming_decrypt_equals_one_shot() {
        for size in SIZES {
            for _ in 0..3 {
                let key: [u8; 16] = random_bytes(16).try_into().unwrap();
                let iv: [u8; 12] = random_bytes(12).try_into().unwrap();
                let plaintext = random_bytes(size);
                let body = one_shot_seal(&key, &iv, &plaintext);
                let mut dec = GcmDecryptor::new(&key);
                let mut out = Vec::new();
                for chunk in random_chunks(&body) {
                    dec.update(chunk, &mut out).unwrap();
                }
                dec.finish().unwrap();
                assert_eq!(out, plaintext, "size {size}");
            }
        }
    }

    #[test]
    fn byte_at_a_time_decrypt() {
        let key = [7u8; 16];
        let iv = [9u8; 12];
        let plaintext = random_bytes(100);
        let body = one_shot_seal(&key, &iv, &plaintext);
        let mut dec = GcmDecryptor::new(&key);
        let mut out = Vec::new();
        for b in &body {
            dec.update(std::slice::from_ref(b), &mut out).unwrap();
        }
        dec.finish().unwrap();
        assert_eq!(out, plaintext);
    }

    #[test]
    fn every_flipped_bit_position_class_fails() {
        let key = [1u8; 16];
        let iv = [2u8; 12];
        let body = one_shot_seal(&key, &iv, b"attachment body of some length");
        for index in [0, 11, 12, 20, body.len() - 16, body.len() - 1] {
            let mut tampered = body.clone();
            tampered[index] ^= 0x01;
            let mut dec = GcmDecryptor::new(&key);
            dec.update(&tampered, &mut Vec::new()).unwrap();
            assert!(matches!(
                dec.finish(),
                Err(XmlEncError::AuthenticationFailed)
            ));
        }
    }

    #[test]
    fn wrong_key_fails() {
        let body = one_shot_seal(&[1u8; 16], &[2u8; 12], b"x");
        let mut dec = GcmDecryptor::new(&[3u8; 16]);
        dec.update(&body, &mut Vec::new()).unwrap();
        assert!(matches!(
            dec.finish(),
            Err(XmlEncError::AuthenticationFailed)
        ));
    }

    #[test]
    fn short_input_is_refused() {
        for len in [0, 5, 12, 27] {
            let mut dec = GcmDecryptor::new(&[0u8; 16]);
            dec.update(&vec![0u8; len], &mut Vec::new()).unwrap();
            assert!(matches!(dec.finish(), Err(XmlEncError::CiphertextTooShort)));
        }
    }

    #[test]
    fn empty_plaintext_round_trip_is_iv_and_tag() {
        let mut out = Vec::new();
        GcmEncryptor::new(&[4u8; 16], &[5u8; 12])
            .unwrap()
            .finish(&mut out)
            .unwrap();
        assert_eq!(out.len(), GCM_IV_LEN + GCM_TAG_LEN);
        let mut dec = GcmDecryptor::new(&[4u8; 16]);
        dec.update(&out, &mut Vec::new()).unwrap();
        dec.finish().unwrap();
    }
}
