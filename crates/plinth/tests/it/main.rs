//! The `plinth` binary's integration tests, in one test binary: the real
//! executable (`env!("CARGO_BIN_EXE_plinth")`) as a CLI and as `plinth
//! serve` child processes, driven over HTTP, by Backstage's own catalog
//! client, and through a real browser.
//!
//! - `access`: tokens, the permission matrix on every surface, the audit chain;
//! - `backstage_client`: `@backstage/catalog-client` against `serve --demo`;
//! - `check`: `plinth check` end to end;
//! - `cluster`: three replicas on one PostgreSQL database, leases, `kill -9`
//!   of the leader, alerts delivered once;
//! - `portal_browser`: the web portal in headless Chromium;
//! - `process`: crashes, restarts, replicas, secrets and the client verbs;
//! - `common`: what they share (starting `plinth serve`, ports, HTTP, files).

mod access;
mod backstage_client;
mod check;
mod cluster;
mod common;
mod portal_browser;
mod process;
