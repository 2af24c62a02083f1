//! The integration tests of plinth-server, in one binary: each module is a
//! suite, and every suite starts servers through `plinth_testkit`.

mod api;
mod oidc;
mod parameters;
mod policy;
mod portal;
mod portal_signals;
mod replicas;
mod scaffolder;
mod security;
mod signals;
mod tokens;
