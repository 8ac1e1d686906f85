//! Helpers for tests that need a real database (feature `testing`; the store's own conformance
//! suite includes this file directly). Each call gives a new, empty database, so tests never
//! share state. PostgreSQL tests need a server: `./scripts/test` starts a throwaway one and sets
//! `BOURSE_TEST_POSTGRES_URL`; without it they fail loudly instead of being skipped.
#![allow(clippy::panic, clippy::expect_used, dead_code)]

use sqlx::migrate::MigrateDatabase;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The variable that holds the URL of a PostgreSQL server tests may create databases on, e.g.
/// `postgres://postgres@127.0.0.1:PORT/postgres`.
pub const POSTGRES_URL_VAR: &str = "BOURSE_TEST_POSTGRES_URL";

/// A name no other test of any process has used: pid, clock and a counter.
fn unique_name(prefix: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// `url` with its database (the last path segment) replaced by `database`; the query string,
/// if any, is kept.
fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let server = match base.get(scheme_end..).and_then(|rest| rest.find('/')) {
        Some(slash) => base.get(..scheme_end + slash).unwrap_or(base),
        None => base,
    };
    match query {
        Some(query) => format!("{server}/{database}?{query}"),
        None => format!("{server}/{database}"),
    }
}

/// Creates a new, empty database on the server named by `BOURSE_TEST_POSTGRES_URL` and returns
/// its URL. Panics if the variable is not set or the server refuses.
pub async fn fresh_postgres_url() -> String {
    let server = std::env::var(POSTGRES_URL_VAR).unwrap_or_else(|_| {
        panic!(
            "{POSTGRES_URL_VAR} is not set: run ./scripts/test, which starts a throwaway PostgreSQL"
        )
    });
    let url = with_database(&server, &unique_name("bourse_test"));
    sqlx::Postgres::create_database(&url)
        .await
        .unwrap_or_else(|e| panic!("creating a test database on {server}: {e}"));
    url
}

/// The URL of a new SQLite database file in `dir` (created on connect).
pub fn fresh_sqlite_url(dir: &Path) -> String {
    format!("sqlite://{}", dir.join(format!("{}.db", unique_name("store"))).display())
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database() {
        assert_eq!(with_database("postgres://u@h:5/postgres", "x"), "postgres://u@h:5/x");
        assert_eq!(with_database("postgres://u@h:5", "x"), "postgres://u@h:5/x");
        assert_eq!(
            with_database("postgres://u@h:5/db?sslmode=disable", "x"),
            "postgres://u@h:5/x?sslmode=disable"
        );
    }
}
