//! Test support shared by Plinth's test suites (dev-dependency only): a fresh
//! PostgreSQL database per test, dropped afterwards even when the test panics,
//! the git client with a fixed identity, and a whole server in process
//! ([`TestServer`]) with the [`scenarios!`] macro that runs a scenario on
//! both store backends.
//!
//! The admin URL comes from `PLINTH_TEST_DATABASE_URL` (default: the local
//! server with trust auth). An unreachable server fails the test with a
//! clear message; `PLINTH_SKIP_POSTGRES=1` skips PostgreSQL tests loudly.

pub mod browser;
pub mod oidc;
pub mod server;

pub use server::{wait_until, workspace_root, Backend, Options, TestServer};
use sqlx::{Connection, PgConnection};
use std::time::Duration;

const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// A fresh PostgreSQL database, dropped (best effort) when this is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    /// Connection URL of the new database.
    pub url: String,
}

impl PgDatabase {
    /// Creates `plinth_<label>_<uuid>`. `None` (after a loud notice) when
    /// `PLINTH_SKIP_POSTGRES=1`; panics when the server cannot be reached.
    pub async fn create(label: &str) -> Option<PgDatabase> {
        if std::env::var("PLINTH_SKIP_POSTGRES").is_ok_and(|v| v == "1") {
            eprintln!(
                "\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\
                 !!! PLINTH_SKIP_POSTGRES=1: PostgreSQL test SKIPPED           !!!\n\
                 !!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n"
            );
            return None;
        }
        let admin_url = std::env::var("PLINTH_TEST_DATABASE_URL").unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_string());
        let mut admin = match tokio::time::timeout(Duration::from_secs(5), PgConnection::connect(&admin_url)).await {
            Ok(Ok(conn)) => conn,
            Ok(Err(error)) => unreachable_server(&admin_url, &error.to_string()),
            Err(_) => unreachable_server(&admin_url, "no answer within 5 s"),
        };
        let name = format!("plinth_{label}_{}", uuid::Uuid::new_v4().simple());
        sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.expect("CREATE DATABASE");
        let _ = admin.close().await;
        let url = with_database(&admin_url, &name);
        Some(PgDatabase { admin_url, name, url })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
        // Drop may run inside a runtime; do the async work on its own thread.
        let dropper = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else { return };
            runtime.block_on(async {
                if let Ok(mut admin) = PgConnection::connect(&admin_url).await {
                    if let Err(error) = sqlx::raw_sql(&sql).execute(&mut admin).await {
                        eprintln!("could not drop the test database: {error}");
                    }
                    let _ = admin.close().await;
                }
            });
        });
        let _ = dropper.join();
    }
}

fn unreachable_server(url: &str, error: &str) -> ! {
    panic!(
        "PostgreSQL is not reachable at {url}: {error}\n\
         These tests need a PostgreSQL server: start one, point PLINTH_TEST_DATABASE_URL at it, \
         or set PLINTH_SKIP_POSTGRES=1 to skip the PostgreSQL tests."
    )
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let root = match base[authority_start..].find('/') {
        Some(slash) => &base[..authority_start + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{root}/{database}?{query}"),
        None => format!("{root}/{database}"),
    }
}

/// Runs the real git client in `dir` with a fixed identity and no user or
/// system configuration; panics with git's output on failure. Returns stdout.
pub fn git(dir: &std::path::Path, args: &[&str]) -> String {
    let output = std::process::Command::new("git")
        .args(["-c", "user.name=Plinth Test", "-c", "user.email=test@plinth.invalid", "-c", "init.defaultBranch=main"])
        .args(["-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .output()
        .expect("run git (is it installed?)");
    assert!(
        output.status.success(),
        "git {args:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).to_string()
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(with_database("postgres://u@h:5432/postgres", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database("postgres://u@h/postgres?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
