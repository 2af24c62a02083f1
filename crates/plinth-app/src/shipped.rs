//! Where the content Plinth ships with is: the demo catalogue, the policy
//! library, the golden-path templates and the examples. Each can be moved
//! with an environment variable.

use std::path::PathBuf;

/// The directory in `env_var`, else `relative` in the source tree this
/// binary was built from, else `./relative`.
fn shipped(env_var: &str, relative: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(env_var) {
        return PathBuf::from(dir);
    }
    let built_from = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative);
    built_from.canonicalize().unwrap_or_else(|_| PathBuf::from(relative))
}

/// The demo catalogue (`PLINTH_DEMO_DIR`).
pub fn demo_dir() -> PathBuf {
    shipped("PLINTH_DEMO_DIR", "examples/demo")
}

/// The shipped golden-path templates (`PLINTH_TEMPLATES_DIR`).
pub fn templates_dir() -> PathBuf {
    shipped("PLINTH_TEMPLATES_DIR", "templates")
}

/// The shipped policy library (`PLINTH_POLICY_DIR`).
pub fn policies_dir() -> PathBuf {
    shipped("PLINTH_POLICY_DIR", "policies")
}

/// Example inputs and catalogues (`PLINTH_EXAMPLES_DIR`).
pub fn examples_dir() -> PathBuf {
    shipped("PLINTH_EXAMPLES_DIR", "examples")
}
