//! The store's integration tests, in one binary. Every scenario runs on
//! SQLite (in a temporary directory) and on PostgreSQL (a fresh database per
//! scenario), as `<suite>::sqlite::<name>` and `<suite>::postgres::<name>`.
//!
//! PostgreSQL comes from `PLINTH_TEST_DATABASE_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); set
//! `PLINTH_SKIP_POSTGRES=1` to skip those scenarios when no server is
//! available.

mod audit;
mod auth;
mod cluster;
mod common;
mod conformance;
mod decisions;
mod scaffolder;
mod signals;
mod stars;
