//! The two SQL dialects the store speaks. Statements are written once, with
//! `?` placeholders, and numbered (`$1`, `$2`, …) for PostgreSQL by
//! [`Dialect::sql`]; the few that genuinely differ are written side by side
//! in the module that uses them, with why they differ.
//!
//! Inserts that skip taken keys are written `INSERT … ON CONFLICT DO
//! NOTHING` on both (SQLite has had it since 3.24): unlike SQLite's `INSERT
//! OR IGNORE`, it skips key conflicts only, as PostgreSQL does, instead of
//! also dropping rows that break a NOT NULL or CHECK constraint.

use std::borrow::Cow;

/// The SQL dialect of a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// `sql` (written with `?` placeholders) in this dialect: unchanged for
    /// SQLite, placeholders numbered for PostgreSQL.
    pub(crate) fn sql(self, sql: &str) -> Cow<'_, str> {
        match self {
            Dialect::Sqlite => Cow::Borrowed(sql),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                Cow::Owned(out)
            }
        }
    }

    /// The statement that opens a write transaction. On SQLite, IMMEDIATE
    /// takes the database write lock up front, so a transaction that reads
    /// before writing cannot fail to upgrade its lock (which the busy
    /// timeout does not cover); PostgreSQL locks rows as it writes them.
    pub(crate) fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }
}

/// `(?, ?, ?), (?, ?, ?)`: `rows` groups of `cols` placeholders, for a
/// multi-row `VALUES` (SQLite binds every row; it has no array parameters).
pub(crate) fn values(rows: usize, cols: usize) -> String {
    let group = format!("({})", list(cols));
    let mut out = String::with_capacity(rows * (group.len() + 2));
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push_str(&group);
    }
    out
}

/// `?, ?, ?`: `n` placeholders.
pub(crate) fn list(n: usize) -> String {
    let mut out = String::with_capacity(n * 3);
    for i in 0..n {
        out.push_str(if i == 0 { "?" } else { ", ?" });
    }
    out
}

/// Runs `$body` with `$s` bound to the backend store (`&SqliteStore` or
/// `&PgStore`) and `$d` to its dialect: the body is written once and
/// compiled for each backend.
macro_rules! on_store {
    ($store:expr, $s:ident, $d:ident => $body:expr) => {
        match $store {
            $crate::Store::Sqlite($s) => {
                #[allow(unused_variables)]
                let $d = $crate::dialect::Dialect::Sqlite;
                $body
            }
            $crate::Store::Postgres($s) => {
                #[allow(unused_variables)]
                let $d = $crate::dialect::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use on_store;

/// Runs `$body` with `$pool` bound to the backend's pool and `$d` to its
/// dialect.
macro_rules! on_pool {
    ($store:expr, $pool:ident, $d:ident => $body:expr) => {
        $crate::dialect::on_store!($store, s, $d => {
            let $pool = &s.pool;
            $body
        })
    };
}
pub(crate) use on_pool;

#[cfg(test)]
mod tests {
    use super::Dialect;

    #[test]
    fn numbers_placeholders_for_postgres() {
        assert_eq!(Dialect::Postgres.sql("a = ? AND b = ?"), "a = $1 AND b = $2");
        assert_eq!(Dialect::Sqlite.sql("a = ?"), "a = ?");
        assert_eq!(super::values(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(super::list(3), "?, ?, ?");
        assert_eq!(Dialect::Postgres.sql(&"?, ".repeat(11)), (1..=11).map(|n| format!("${n}, ")).collect::<String>());
    }
}
