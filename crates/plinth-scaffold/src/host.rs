//! What a run needs from the server around it: policy decisions and
//! catalogue registration. The engine stays free of HTTP and storage; the
//! server implements this over its policy service and catalogue, and
//! hands over its forge integrations.

use crate::error::ScaffoldError;
use futures::future::BoxFuture;
use plinth_policy::Decision;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Context of a `provision` decision.
#[derive(Debug, Clone, Default)]
pub struct PolicyRequest {
    pub environment: Option<String>,
    pub profile: Option<String>,
    pub user: Option<String>,
    /// Entities the run is about to register (rendered descriptors): the
    /// policies see them as catalogued, so an Agent may name the Prompt
    /// created beside it.
    pub pending_entities: Vec<Value>,
}

/// A catalogue file to register: a file in a git repository on a branch.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterTarget {
    /// Repository URL or local path.
    pub repo: String,
    /// Path of the file inside the repository.
    pub path: String,
    pub branch: Option<String>,
}

pub trait Host: Send + Sync {
    /// Evaluates the `provision` point and records the decision; returns
    /// (decision id, decision).
    fn decide<'a>(
        &'a self,
        input: Value,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Result<(String, Decision), ScaffoldError>>;

    /// Registers a location and returns the refs of the entities it holds
    /// once they are in the catalogue.
    fn register<'a>(&'a self, target: RegisterTarget) -> BoxFuture<'a, Result<Vec<String>, ScaffoldError>>;

    /// Local repositories (`publish:git` with a path) must live under this
    /// directory; relative paths are resolved against it.
    fn repo_root(&self) -> PathBuf;

    /// The forges `publish:github`/`publish:gitlab` and their pull/merge
    /// request forms may call, with the outbound allowlist their requests
    /// pass. Default: github.com and gitlab.com, public addresses only.
    fn forges(&self) -> Arc<crate::forge::Forges> {
        Arc::new(crate::forge::Forges::default())
    }
}
