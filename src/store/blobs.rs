//! Content-addressed payload blobs on disk, and the writer that decides whether a payload
//! is small enough to stay in the database row instead ([`PayloadWriter`]).
//!
//! A blob is named by the SHA-256 of its bytes and lives at `blobs/ab/cdef…` under the data
//! directory. Writing goes to a temporary file in `blobs/tmp/` while hashing; `commit` fsyncs
//! the file, renames it into place (atomic on POSIX) and fsyncs the directory, so a blob that a
//! database row names is always complete on disk. Identical payloads share one file. Temporary
//! files left by a crash are removed at start ([`BlobStore::open`]). Blobs are written before
//! the message row that names them (invariant: blob first, then record).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use aws_lc_rs::digest;

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

/// A committed blob: its id (SHA-256 hex) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobRef {
    /// Lower-case hex SHA-256 of the content.
    pub id: String,
    /// Size in bytes.
    pub size: u64,
}

impl BlobStore {
    /// Opens (creating if needed) the blob directory and removes temporary files a crash left.
    pub fn open(root: &Path) -> io::Result<BlobStore> {
        let tmp = root.join("tmp");
        fs::create_dir_all(&tmp)?;
        for entry in fs::read_dir(&tmp)? {
            let _ = fs::remove_file(entry?.path());
        }
        Ok(BlobStore {
            root: root.to_owned(),
        })
    }

    /// Starts a new blob.
    pub fn writer(&self) -> io::Result<BlobWriter> {
        let file = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(self.root.join("tmp"))?;
        Ok(BlobWriter {
            root: self.root.clone(),
            file,
            hasher: digest::Context::new(&digest::SHA256),
            size: 0,
        })
    }

    /// Stores `bytes` as a blob.
    pub fn put(&self, bytes: &[u8]) -> io::Result<BlobRef> {
        let mut w = self.writer()?;
        w.write_all(bytes)?;
        w.commit()
    }

    /// The path of a committed blob.
    pub fn path(&self, id: &str) -> io::Result<PathBuf> {
        if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("not a blob id: {id:?}"),
            ));
        }
        Ok(self.root.join(&id[..2]).join(&id[2..]))
    }

    /// Reads a whole blob (for small blobs such as envelopes) and checks its digest.
    pub fn read(&self, id: &str) -> io::Result<Vec<u8>> {
        let mut bytes = Vec::new();
        self.reader(id)?.read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    /// Opens a blob for streaming; the reader checks the digest when it reaches the end.
    pub fn reader(&self, id: &str) -> io::Result<BlobReader> {
        Ok(BlobReader {
            file: File::open(self.path(id)?)?,
            hasher: Some(digest::Context::new(&digest::SHA256)),
            id: id.to_owned(),
        })
    }
}

/// A blob being read. Its end is reported only after the bytes matched the blob id; a
/// mismatch is an `InvalidData` error in place of the end, so a reader never takes corrupted
/// bytes for a complete blob.
pub struct BlobReader {
    file: File,
    /// `None` once the digest has been checked.
    hasher: Option<digest::Context>,
    id: String,
}

impl std::fmt::Debug for BlobReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobReader")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        if n > 0 {
            if let Some(hasher) = &mut self.hasher {
                hasher.update(&buf[..n]);
            }
        } else if !buf.is_empty()
            && let Some(hasher) = self.hasher.take()
            && hex(hasher.finish().as_ref()) != self.id
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("blob {} is corrupted (digest mismatch)", self.id),
            ));
        }
        Ok(n)
    }
}

/// A blob being written; nothing is visible under its id until [`BlobWriter::commit`].
pub struct BlobWriter {
    root: PathBuf,
    file: tempfile::NamedTempFile,
    hasher: digest::Context,
    size: u64,
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl BlobWriter {
    /// Makes the blob durable under its content id and returns that id.
    pub fn commit(mut self) -> io::Result<BlobRef> {
        self.file.flush()?;
        self.file.as_file().sync_all()?;
        let id = hex(self.hasher.finish().as_ref());
        let dir = self.root.join(&id[..2]);
        fs::create_dir_all(&dir)?;
        let target = dir.join(&id[2..]);
        if target.exists() {
            // Same content already stored; the temporary file is dropped.
            return Ok(BlobRef {
                id,
                size: self.size,
            });
        }
        self.file.persist(&target).map_err(|e| e.error)?;
        File::open(&dir)?.sync_all()?;
        Ok(BlobRef {
            id,
            size: self.size,
        })
    }
}

/// A payload as committed by [`PayloadWriter`]: its content id and size, and the bytes
/// themselves when they are small enough to live in the database row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredContent {
    /// Content id (SHA-256 hex) and size.
    pub blob: BlobRef,
    /// The bytes, for payloads kept inline; `None` when they are in the blob file.
    pub inline: Option<Vec<u8>>,
}

/// Writes a payload: kept in memory up to the inline threshold (then stored in the database
/// row, made durable by the same transaction as the message), spilled to a blob file past it.
/// Small messages thus cost no file fsyncs at all.
pub struct PayloadWriter {
    store: BlobStore,
    inline_max: usize,
    buffer: Vec<u8>,
    file: Option<BlobWriter>,
}

impl PayloadWriter {
    /// A writer keeping up to `inline_max` bytes in memory.
    pub fn new(store: &BlobStore, inline_max: usize) -> PayloadWriter {
        PayloadWriter {
            store: store.clone(),
            inline_max,
            buffer: Vec::new(),
            file: None,
        }
    }

    /// Commits the payload (the blob file, when it spilled) and describes where it is.
    pub fn finish(self) -> io::Result<StoredContent> {
        match self.file {
            Some(file) => Ok(StoredContent {
                blob: file_io(|| file.commit())?,
                inline: None,
            }),
            None => Ok(StoredContent {
                blob: BlobRef {
                    id: hex(digest::digest(&digest::SHA256, &self.buffer).as_ref()),
                    size: self.buffer.len() as u64,
                },
                inline: Some(self.buffer),
            }),
        }
    }
}

impl Write for PayloadWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(file) = &mut self.file {
            return file_io(|| file.write(buf));
        }
        if self.buffer.len() + buf.len() <= self.inline_max {
            self.buffer.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let file = file_io(|| -> io::Result<BlobWriter> {
            let mut file = self.store.writer()?;
            file.write_all(&self.buffer)?;
            file.write_all(buf)?;
            Ok(file)
        })?;
        self.buffer = Vec::new();
        self.file = Some(file);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Runs blob file IO, which may block (writes, fsync). On a worker thread of the
/// multi-thread runtime, where small inbound messages are processed, it goes through
/// `block_in_place`, so the worker's other tasks move on meanwhile; anywhere else (a blocking
/// thread, a current-thread runtime, no runtime) it simply runs.
fn file_io<T>(io: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) if runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(io)
        }
        _ => io(),
    }
}

/// Lower-case hex encoding.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_read_and_dedupe() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"hello").unwrap();
        assert_eq!(
            a.id,
            "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
        );
        assert_eq!(store.put(b"hello").unwrap(), a);
        assert_eq!(store.read(&a.id).unwrap(), b"hello");
    }

    #[test]
    fn corruption_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let a = store.put(b"payload").unwrap();
        fs::write(store.path(&a.id).unwrap(), b"tampered").unwrap();
        let err = store.read(&a.id).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        // Streaming reads hand out the bytes, then fail in place of the end.
        let mut reader = store.reader(&a.id).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(reader.read(&mut buf).unwrap(), 8);
        let err = reader.read(&mut buf).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn payload_writer_inlines_small_and_spills_large() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let mut small = PayloadWriter::new(&store, 8);
        small.write_all(b"hello").unwrap();
        let small = small.finish().unwrap();
        assert_eq!(small.inline.as_deref(), Some(&b"hello"[..]));
        assert_eq!(small.blob, store.put(b"hello").unwrap());

        let mut large = PayloadWriter::new(&store, 8);
        large.write_all(b"hello ").unwrap();
        large.write_all(b"world!").unwrap();
        let large = large.finish().unwrap();
        assert!(large.inline.is_none());
        assert_eq!(store.read(&large.blob.id).unwrap(), b"hello world!");
    }

    #[test]
    fn ids_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        assert!(store.path("../../etc/passwd").is_err());
    }
}
