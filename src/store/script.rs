//! Several SQL statements sent to SQLite as one command.
//!
//! sqlx runs each SQLite connection on a thread of its own and hands every statement to it,
//! and every result back, through channels: two thread switches per statement, which cost more
//! than the statements of a small change themselves. A [`Script`] joins the statements of one
//! change into one text over numbered parameters (`$1`, `$2`, … shared by all statements of
//! the text), so the change costs one hand-off. The text depends only on the change's shape
//! (how many payloads, how many routes), so sqlx's statement cache keeps it prepared.
//!
//! A statement that must run only when the statement before it changed exactly one row takes
//! the guard [`AFTER_ONE_ROW`]: SQLite's `changes()` is the row count of the last completed
//! statement. A chain of one-row statements, each guarded so, runs all or nothing.

use std::fmt;

use sqlx::sqlite::{SqliteArguments, SqliteRow};
use sqlx::{Arguments, Encode, Sqlite, SqliteConnection, Type};

/// Guard of a statement that runs only when the statement before it changed exactly one row.
pub const AFTER_ONE_ROW: &str = "changes() = 1";

/// Guard of a statement that always runs.
pub const ALWAYS: &str = "1";

/// Statements and their arguments, sent as one command ([module docs](self)).
#[derive(Default)]
pub struct Script {
    sql: String,
    args: SqliteArguments,
}

/// A bound argument of a [`Script`]; displays as its placeholder, `$N`.
///
/// `$N` rather than `?N`: SQLite numbers `?N` slots by `N`, so a statement naming only `?7`
/// has six unnamed slots before it, which sqlx binds positionally and, past the script's
/// first statements, runs out of arguments for, leaving the rest unbound (NULL). A `$N` is a
/// name: each statement's slots stay dense, and sqlx binds each by the number in its name.
#[derive(Debug, Clone, Copy)]
pub struct Param(usize);

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${}", self.0)
    }
}

impl Script {
    /// An empty script.
    pub fn new() -> Script {
        Script::default()
    }

    /// Binds `value` and returns its placeholder, to be written into any statement of this
    /// script as often as needed.
    pub fn arg<'q, T>(&mut self, value: T) -> Result<Param, sqlx::Error>
    where
        T: Encode<'q, Sqlite> + Type<Sqlite> + 'q,
    {
        self.args.add(value).map_err(sqlx::Error::Encode)?;
        Ok(Param(self.args.len()))
    }

    /// Appends one statement (without its closing `;`).
    pub fn push(&mut self, statement: &str) {
        self.sql.push_str(statement);
        self.sql.push_str(";\n");
    }

    /// Runs every statement, in order, and returns the rows any of them produced, in order.
    pub async fn fetch_all(
        self,
        connection: &mut SqliteConnection,
    ) -> Result<Vec<SqliteRow>, sqlx::Error> {
        sqlx::query_with(sqlx::AssertSqlSafe(self.sql), self.args)
            .fetch_all(connection)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row};

    /// A guarded chain stops at the first statement that changed no row, and placeholders
    /// are shared by every statement of the text.
    #[tokio::test]
    async fn guarded_chain_runs_all_or_nothing() {
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER)")
            .execute(&mut db)
            .await
            .unwrap();
        for (key, expect) in [("a", vec!["a", "a2"]), ("a", vec![])] {
            let mut s = Script::new();
            let k = s.arg(key).unwrap();
            let one = s.arg(1_i64).unwrap();
            s.push(&format!(
                "INSERT INTO t (k, v) VALUES ({k}, {one}) ON CONFLICT (k) DO NOTHING"
            ));
            s.push(&format!(
                "INSERT INTO t (k, v) SELECT {k} || '2', {one} WHERE {AFTER_ONE_ROW}"
            ));
            s.push(&format!("SELECT k FROM t WHERE {AFTER_ONE_ROW} ORDER BY k"));
            let rows = s.fetch_all(&mut db).await.unwrap();
            let keys: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
            assert_eq!(keys, expect);
        }
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(&mut db)
            .await
            .unwrap();
        assert_eq!(total, 2);
    }

    /// A placeholder binds in every statement that names it, however late in the script
    /// and however many arguments the statement skips.
    #[tokio::test]
    async fn late_placeholders_bind_in_every_statement() {
        let mut db = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        let mut s = Script::new();
        s.arg(1_i64).unwrap();
        s.arg(2_i64).unwrap();
        let third = s.arg("third").unwrap();
        for _ in 0..3 {
            s.push(&format!("SELECT {third}"));
        }
        let rows = s.fetch_all(&mut db).await.unwrap();
        let got: Vec<Option<String>> = rows.iter().map(|r| r.get(0)).collect();
        assert_eq!(got, vec![Some("third".to_owned()); 3]);
    }
}
