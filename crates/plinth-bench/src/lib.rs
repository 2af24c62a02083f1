//! The `plinth bench …` verbs, each measuring one capability against the
//! bars of DESIGN.md §6 as users meet them: a real `plinth serve` child
//! over loopback HTTP from its first second, with the background work that
//! really runs. Each verb prints a markdown report (and writes it with
//! `--report`); the figures go in `docs/PERFORMANCE.md`.
//!
//! The benches start servers by running the current executable, so they
//! are only meaningful inside the `plinth` binary.

mod auth;
mod catalog;
mod common;
mod policy;
mod scaffold;
mod signals;

pub use auth::{run as auth, BenchAuthArgs};
pub use catalog::{run as catalog, run_portal as portal, BenchCatalogArgs};
pub use policy::{run as policy, BenchPolicyArgs};
pub use scaffold::{run as scaffold, BenchScaffoldArgs};
pub use signals::{run as signals, BenchSignalsArgs};
