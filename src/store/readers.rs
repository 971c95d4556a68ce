//! Point reads on the calling thread.
//!
//! sqlx runs every SQLite connection on a thread of its own and hands each statement to it, and
//! each result back, through channels. For a read by key that SQLite answers from its page
//! cache in microseconds, those thread switches cost more than the read: the delivery worker's
//! one read per message was a tenth of the gateway's CPU on the end-to-end benchmark
//! (bench/ANALYSIS.md). [`Readers`] keeps idle rusqlite connections to the same database (one
//! libsqlite3 with sqlx's) and runs a read directly on the thread that asks, as tokio does with
//! any short computation. Only reads by key belong here: WAL readers never wait for the writer,
//! so a read blocks its thread only as long as SQLite works on it. Scans and everything that
//! writes stay on the sqlx pool and the group-commit writer.
//!
//! [`Columns`] lets one function map a result row of either binding to the store's types.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::types::FromSql;
use rusqlite::{Connection, OpenFlags};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

use super::StoreError;

/// Idle connections kept for later reads; more are opened while more threads read at once.
const MAX_IDLE: usize = 8;

/// Connections for [`Readers::read`] ([module docs](self)).
#[derive(Debug)]
pub struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    /// Readers of the database at `path` (already created and migrated by the store).
    pub fn new(path: &Path) -> Readers {
        Readers {
            path: path.to_owned(),
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `read` on an idle connection (a new one when none is idle), on this thread.
    pub fn read<T>(
        &self,
        read: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let idle = self.lock().pop();
        let connection = match idle {
            Some(connection) => connection,
            None => self.open()?,
        };
        let outcome = read(&connection);
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(connection);
        }
        outcome
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Connection>> {
        // A panic while the lock was held cannot leave the list half-changed (push and pop
        // only), so a poisoned lock is still usable.
        self.idle
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A connection that refuses to write (`query_only`); read-write at the file level, because
    /// a WAL reader needs the shared-memory index.
    fn open(&self) -> Result<Connection, StoreError> {
        let connection = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        connection.busy_timeout(Duration::from_secs(30))?;
        connection.pragma_update(None, "query_only", true)?;
        Ok(connection)
    }
}

/// A result row of either SQLite binding, read by column index.
pub trait Columns {
    /// The value of column `index`.
    fn column<T>(&self, index: usize) -> Result<T, StoreError>
    where
        T: FromSql + for<'r> Decode<'r, Sqlite> + Type<Sqlite>;

    /// A count (attempts, replays) stored as an integer, saturating at `u32::MAX`.
    fn count(&self, index: usize) -> Result<u32, StoreError> {
        Ok(u32::try_from(self.column::<i64>(index)?).unwrap_or(u32::MAX))
    }
}

impl Columns for SqliteRow {
    fn column<T>(&self, index: usize) -> Result<T, StoreError>
    where
        T: FromSql + for<'r> Decode<'r, Sqlite> + Type<Sqlite>,
    {
        Ok(self.try_get(index)?)
    }
}

impl Columns for rusqlite::Row<'_> {
    fn column<T>(&self, index: usize) -> Result<T, StoreError>
    where
        T: FromSql + for<'r> Decode<'r, Sqlite> + Type<Sqlite>,
    {
        Ok(self.get(index)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A read sees what another connection committed, and the connection refuses writes.
    #[test]
    fn reads_committed_rows_and_refuses_writes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.sqlite");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER);
                 INSERT INTO t VALUES ('a', 7);",
            )
            .unwrap();
        let readers = Readers::new(&path);
        // Mapped through `Columns`, as the store maps its rows.
        let value: i64 = readers
            .read(|c| c.query_row("SELECT v FROM t WHERE k = 'a'", [], |r| Ok(r.column(0)))?)
            .unwrap();
        assert_eq!(value, 7);
        writer.execute("UPDATE t SET v = 8", []).unwrap();
        let again: i64 = readers
            .read(|c| Ok(c.query_row("SELECT v FROM t", [], |r| r.get(0))?))
            .unwrap();
        assert_eq!(again, 8);
        let refused = readers.read(|c| Ok(c.execute("DELETE FROM t", [])?));
        assert!(matches!(refused, Err(StoreError::Read(_))), "{refused:?}");
    }
}
