//! Spooling: bytes of one MIME part kept in memory while small and spilled to a temporary
//! file once they pass a threshold, so memory does not grow with the size of a part.
//!
//! Used on both paths of a message: the inbound intake spools each received attachment (and
//! its decrypted form), the sender stages each composed (compressed, not yet encrypted) part.
//! The threshold is `limits.spool_threshold_bytes` and the directory the gateway's spool
//! directory (`<data_dir>/spool`).
//!
//! Spill files are anonymous: `tempfile::tempfile_in` unlinks them at creation (or opens them
//! with `O_TMPFILE`), so they never have a name in the directory, and the disk space goes back
//! when the last handle is dropped — also when the process crashes. Nothing is left to clean
//! up at start.

use std::fs::File;
use std::io::{self, Cursor, Read, Seek, Write};
use std::path::{Path, PathBuf};

/// Bytes of one part: in memory while small, in a temporary file once past the threshold.
#[derive(Debug)]
pub enum Spooled {
    /// Held in memory.
    Memory(Vec<u8>),
    /// Spilled to an anonymous temporary file (gone when dropped).
    File {
        /// The open file.
        file: File,
        /// Bytes written.
        len: u64,
    },
}

impl Spooled {
    /// Size in bytes.
    pub fn len(&self) -> u64 {
        match self {
            Spooled::Memory(v) => v.len() as u64,
            Spooled::File { len, .. } => *len,
        }
    }

    /// Whether the part is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A reader over the whole content, from the start.
    pub fn reader(&self) -> io::Result<Box<dyn Read + '_>> {
        Ok(match self {
            Spooled::Memory(v) => Box::new(Cursor::new(v.as_slice())),
            Spooled::File { file, .. } => {
                let mut f = file.try_clone()?;
                f.rewind()?;
                Box::new(f)
            }
        })
    }
}

/// Writes into a [`Spooled`], moving to disk past `threshold` bytes.
pub struct SpoolWriter {
    dir: PathBuf,
    threshold: usize,
    content: Spooled,
}

impl SpoolWriter {
    /// A writer spilling into `dir` past `threshold` bytes.
    pub fn new(dir: &Path, threshold: usize) -> SpoolWriter {
        SpoolWriter {
            dir: dir.to_owned(),
            threshold,
            content: Spooled::Memory(Vec::new()),
        }
    }

    /// A writer that never spills: for callers that hold the whole message in memory anyway
    /// (a message composed to be tampered with or written out at once).
    pub fn in_memory() -> SpoolWriter {
        SpoolWriter::new(Path::new(""), usize::MAX)
    }

    /// The finished content.
    pub fn finish(mut self) -> io::Result<Spooled> {
        if let Spooled::File { file, .. } = &mut self.content {
            file.flush()?;
        }
        Ok(self.content)
    }
}

impl Write for SpoolWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.content {
            Spooled::Memory(v) if v.len().saturating_add(buf.len()) <= self.threshold => {
                v.extend_from_slice(buf);
            }
            Spooled::Memory(v) => {
                let mut file = tempfile::tempfile_in(&self.dir)?;
                file.write_all(v)?;
                file.write_all(buf)?;
                self.content = Spooled::File {
                    file,
                    len: (v.len() + buf.len()) as u64,
                };
            }
            Spooled::File { file, len } => {
                file.write_all(buf)?;
                *len += buf.len() as u64;
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spool_moves_to_disk_past_threshold() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SpoolWriter::new(dir.path(), 4);
        w.write_all(b"abc").unwrap();
        w.write_all(b"defg").unwrap();
        let s = w.finish().unwrap();
        assert!(matches!(s, Spooled::File { len: 7, .. }));
        let mut out = String::new();
        s.reader().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(out, "abcdefg");
        // Readers can be opened more than once.
        let mut again = String::new();
        s.reader().unwrap().read_to_string(&mut again).unwrap();
        assert_eq!(again, "abcdefg");
        // The spill file has no name in the directory.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn in_memory_never_spills() {
        let mut w = SpoolWriter::in_memory();
        w.write_all(&[7u8; 3 * 1024 * 1024]).unwrap();
        assert!(matches!(w.finish().unwrap(), Spooled::Memory(v) if v.len() == 3 * 1024 * 1024));
    }
}
