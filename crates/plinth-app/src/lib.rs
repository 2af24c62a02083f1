//! Plinth's application layer: the platform's API.
//!
//! One [`Platform`] holds the catalogue and the capability services
//! (policy, golden paths, signals). Each public method of
//! `platform.catalog()`, `.policy()`, `.golden_paths()` and `.signals()` is
//! one use case: it takes the [`Caller`] and typed inputs, and returns
//! typed outputs or an [`AppError`] whose kind every surface maps the same
//! way. Background work is started and stopped here.
//!
//! Every use case asks the access rules ([`access`]) whether its caller
//! may, and every mutation and refusal lands in the audit log ([`audit`]);
//! callers prove who they are with tokens ([`identity`]).
//!
//! No HTTP, axum or JSON-transport types appear in this crate: it is to the
//! server, the CLI and the MCP transport what rust-analyzer's `ide` crate
//! is to its LSP server.

pub mod access;
pub mod audit;
pub mod background;
mod burst;
mod caller;
pub mod catalog;
mod error;
mod follow;
pub mod golden_paths;
pub mod identity;
pub mod lease;
pub mod oidc;
mod operations;
mod platform;
pub mod policy;
pub mod shipped;
pub mod signals;
pub mod stars;

pub use access::{AuthMode, Permission};
pub use caller::{Caller, Principal};
pub use error::{AppError, AppResult, ErrorKind, FieldError};
pub use operations::{MetricFamily, MetricKind};
pub use platform::{AuthConfig, Platform, PlatformConfig};
