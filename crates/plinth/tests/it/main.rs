//! The `plinth` binary's integration tests, in one test binary: the real
//! executable (`env!("CARGO_BIN_EXE_plinth")`) as a CLI and as `plinth
//! serve` child processes, driven over HTTP, by Backstage's own catalog
//! client, and through a real browser.
//!
//! - `access`: tokens, the permission matrix on every surface, the audit chain;
//! - `backstage_client`: `@backstage/catalog-client` against `serve --demo`;
//! - `check`: `plinth check` end to end;
//! - `cli`: the CLI's one grammar (output formats, suggestions, exit codes,
//!   closed pipes), with snapshot files in `tests/cmd`;
//! - `cluster`: three replicas on one PostgreSQL database, leases, `kill -9`
//!   of the leader, alerts delivered once;
//! - `demo_traffic`: `serve --demo`'s built-in OTLP traffic fills cost,
//!   traces, prompt comparisons, anomalies and alerts within a minute;
//! - `packaging`: a copied binary serves the demo from an empty directory;
//!   `deploy/` passes Plinth's own policies;
//! - `portal_browser`: the web portal in headless Chromium;
//! - `portal_entity`: entity pages (relations, action links, docs, APIs) in
//!   Chromium, on the demo and on a generated catalogue;
//! - `portal_drilldown`: policy, scorecard and team drill-downs, "My team",
//!   stars, phone width and the axe-core audit, in Chromium;
//! - `portal_large`: the entity page, drill-downs, "My team", phone width
//!   and axe-core on a generated catalogue of 100k entities;
//! - `process`: crashes, restarts, replicas, secrets and the client verbs;
//! - `common`: what they share (starting `plinth serve`, ports, HTTP, files).

mod access;
mod backstage_client;
mod check;
mod cli;
mod cluster;
mod common;
mod demo_traffic;
mod packaging;
mod portal_browser;
mod portal_drilldown;
mod portal_entity;
mod portal_large;
mod process;
