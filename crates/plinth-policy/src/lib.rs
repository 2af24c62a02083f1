//! Policy-as-code for Plinth: Rego evaluated in-process with regorus.
//!
//! - `access`: who may do what (`package plinth.access`), fail-closed;
//! - `bundle`: reads `.rego` files, data files and OPA bundle manifests;
//! - `source`: scans a file for its package, rules and `# METADATA`;
//! - `engine`: compiles a bundle (broken files fail closed) and makes
//!   decisions with conftest/Gatekeeper conventions, exceptions and waivers;
//! - `scorecard`: bronze/silver/gold checks over an entity;
//! - `testing`: the `opa test`-style runner;
//! - `report`: text, JSON, SARIF 2.1.0 and JUnit renderings of `plinth check`.
//!
//! Pure apart from reading policy files: no network, no store, no clock
//! except the evaluation time limit.

pub mod access;
pub mod bundle;
pub mod decision;
pub mod engine;
mod error;
pub mod report;
pub mod scorecard;
pub mod source;
pub mod testing;

pub use access::{AccessDecision, AccessPolicy, ACCESS_ENTRY};
pub use bundle::{LoadProblem, PolicyBundle};
pub use decision::{AppliedWaiver, Decision, Enforcement, Outcome, Point, Violation, Waiver};
pub use engine::{
    attach_context, Context, DispatchRuns, EngineOptions, EvalRequest, Input, InputShape, PolicyEngine, PolicySummary,
    VmCoverage,
};
pub use error::PolicyError;
