//! Access rules: who may do what, as Rego (`package plinth.access`),
//! evaluated by the same engine as every other policy. The shipped rules
//! (`policies/access/access.rego`) are built in; a platform team replaces
//! them by pointing Plinth at its own `policies/access/` directory.
//!
//! The package answers `data.plinth.access.decision` with
//! `{"allow": bool, "rule": string, "reason": string}` for an input
//! `{"caller": {...}, "permission": "...", "resource": {...}}`. Anything
//! else, an evaluation error or a time-out denies (fails closed).

use crate::bundle::PolicyBundle;
use crate::PolicyError;
use regorus::utils::limits::ExecutionTimerConfig;
use std::num::NonZeroU32;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// The package of the access rules.
pub const ACCESS_PACKAGE: &str = "plinth.access";

/// Whether a module belongs to the access rules (they are loaded by
/// [`AccessPolicy`], not by the decision engine).
pub fn is_access_package(package: Option<&str>) -> bool {
    package.is_some_and(|p| p == ACCESS_PACKAGE || p.starts_with("plinth.access.") || p == "plinth.access_test")
}

/// The rule every access decision evaluates.
pub const ACCESS_ENTRY: &str = "data.plinth.access.decision";

/// The shipped access rules.
const BUILTIN: &str = include_str!("../../../policies/access/access.rego");

/// How long one decision may take before it fails closed.
const TIME_LIMIT: Duration = Duration::from_millis(50);

/// The answer to "may this caller do this?".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AccessDecision {
    pub allow: bool,
    /// The rule that decided (`owner`, `admin`, `missing-scope`, …).
    pub rule: String,
    /// Why, in words a caller can act on (empty when allowed).
    pub reason: String,
}

impl AccessDecision {
    fn closed(reason: String) -> AccessDecision {
        AccessDecision { allow: false, rule: "policy-error".into(), reason }
    }
}

/// Compiled access rules.
pub struct AccessPolicy {
    engine: regorus::Engine,
    program: Option<Arc<regorus::rvm::program::Program>>,
    data: regorus::Value,
    origin: String,
}

impl std::fmt::Debug for AccessPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPolicy").field("origin", &self.origin).field("vm", &self.program.is_some()).finish()
    }
}

impl AccessPolicy {
    /// The shipped rules.
    pub fn builtin() -> Result<AccessPolicy, PolicyError> {
        AccessPolicy::from_sources("built-in access rules", &[("policies/access/access.rego".into(), BUILTIN.into())])
    }

    /// The shipped rules' source, for `plinth policy` listings and docs.
    pub fn builtin_source() -> &'static str {
        BUILTIN
    }

    /// Every non-test `.rego` file under `dir` (and its data files). A
    /// broken file is an error naming it: access rules never load half.
    pub fn from_dir(dir: &Path) -> Result<AccessPolicy, PolicyError> {
        let bundle = PolicyBundle::load(&[dir.to_path_buf()]);
        if let Some(problem) = bundle.problems.first() {
            return Err(PolicyError::Read(format!("access rules in {}: {problem}", dir.display())));
        }
        let files: Vec<(String, String)> =
            bundle.decision_files().map(|f| (f.display.clone(), f.text.clone())).collect();
        if files.is_empty() {
            return Err(PolicyError::Read(format!(
                "no access rules in {}: add a .rego file with `package plinth.access` defining `decision`",
                dir.display()
            )));
        }
        let mut policy = AccessPolicy::from_sources(&dir.display().to_string(), &files)?;
        policy
            .engine
            .add_data(regorus::Value::from(bundle.data.clone()))
            .map_err(|e| PolicyError::Read(format!("access data in {}: {e}", dir.display())))?;
        policy.data = policy.engine.get_data();
        Ok(policy)
    }

    /// Rules from `(file name, text)` pairs; `origin` names them in logs.
    pub fn from_sources(origin: &str, files: &[(String, String)]) -> Result<AccessPolicy, PolicyError> {
        let mut engine = regorus::Engine::new();
        engine.set_rego_v0(false);
        for (name, text) in files {
            engine.add_policy(name.clone(), text.clone()).map_err(|e| PolicyError::Read(e.to_string()))?;
        }
        // An empty input must give a decision (a denial): this catches a
        // missing `decision` rule and compile errors now, not per request.
        let mut probe = engine.clone();
        probe.set_input(regorus::Value::new_object());
        let answer = probe
            .eval_rule(ACCESS_ENTRY.to_string())
            .map_err(|e| PolicyError::Read(format!("{origin}: `{ACCESS_ENTRY}` does not evaluate: {e}")))?;
        if decision_of(&answer).is_none() {
            return Err(PolicyError::Read(format!(
                "{origin}: `{ACCESS_ENTRY}` must be an object {{\"allow\": bool, \"rule\": string, \"reason\": string}}, got {answer}"
            )));
        }
        let program = {
            let mut compiler = engine.clone();
            compiler
                .compile_with_entrypoint(&ACCESS_ENTRY.into())
                .map_err(|e| e.to_string())
                .and_then(|policy| {
                    regorus::languages::rego::compiler::Compiler::compile_from_policy(&policy, &[ACCESS_ENTRY])
                        .map_err(|e| e.to_string())
                })
                .map_err(|error| tracing::debug!(%error, "access rules run on the interpreter"))
                .ok()
        };
        let data = engine.get_data();
        Ok(AccessPolicy { engine, program, data, origin: origin.to_string() })
    }

    /// Where the rules came from (a directory, or "built-in access rules").
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Whether decisions run on regorus' bytecode VM (else the interpreter).
    pub fn on_vm(&self) -> bool {
        self.program.is_some()
    }

    /// Decides one request. Never fails: an error denies, saying why.
    pub fn decide(&self, input: &serde_json::Value) -> AccessDecision {
        let input = regorus::Value::from(input.clone());
        let timer = ExecutionTimerConfig { limit: TIME_LIMIT, check_interval: NonZeroU32::new(64).expect("non-zero") };
        if let Some(program) = &self.program {
            let mut vm = regorus::rvm::RegoVM::new();
            vm.load_program(Arc::clone(program));
            vm.set_execution_timer_config(Some(timer));
            if vm.set_data(self.data.clone()).is_ok() {
                vm.set_input(input.clone());
                if let Ok(value) = vm.execute_entry_point_by_name(ACCESS_ENTRY) {
                    if let Some(decision) = decision_of(&value) {
                        return decision;
                    }
                }
            }
        }
        let mut engine = self.engine.clone();
        engine.set_execution_timer_config(timer);
        engine.set_input(input);
        match engine.eval_rule(ACCESS_ENTRY.to_string()) {
            Ok(value) => decision_of(&value).unwrap_or_else(|| {
                AccessDecision::closed(format!("the access rules ({}) gave no decision; denied", self.origin))
            }),
            Err(error) => AccessDecision::closed(format!("the access rules ({}) failed: {error}; denied", self.origin)),
        }
    }
}

fn decision_of(value: &regorus::Value) -> Option<AccessDecision> {
    let value = serde_json::to_value(value).ok()?;
    Some(AccessDecision {
        allow: value.get("allow")?.as_bool()?,
        rule: value.get("rule")?.as_str()?.to_string(),
        reason: value.get("reason").and_then(|r| r.as_str()).unwrap_or_default().to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn alice() -> serde_json::Value {
        json!({"kind": "user", "ref": "user:default/alice", "admin": false, "scopes": ["write"],
               "memberOf": ["group:default/payments"]})
    }

    #[test]
    fn builtin_rules_compile_to_the_vm_and_decide() {
        let policy = AccessPolicy::builtin().expect("the shipped rules load");
        assert!(policy.on_vm(), "the shipped access rules must run on the VM");
        let resource = json!({"ref": "component:default/checkout", "owners": ["group:default/payments"],
                              "ownerChain": ["group:default/payments"]});
        let allowed =
            policy.decide(&json!({"caller": alice(), "permission": "catalog.entity.delete", "resource": resource}));
        assert_eq!(allowed, AccessDecision { allow: true, rule: "owner".into(), reason: String::new() });
        let other = json!({"ref": "component:default/ledger", "owners": ["group:default/finance"],
                           "ownerChain": ["group:default/finance"]});
        let denied =
            policy.decide(&json!({"caller": alice(), "permission": "catalog.entity.delete", "resource": other}));
        assert!(!denied.allow);
        assert_eq!(denied.rule, "owner-only");
        assert_eq!(
            denied.reason,
            "only the owning team may do this to component:default/ledger (owned by group:default/finance)"
        );
    }

    #[test]
    fn the_vm_and_the_interpreter_agree() {
        let policy = AccessPolicy::builtin().unwrap();
        let interpreted = AccessPolicy { program: None, ..AccessPolicy::builtin().unwrap() };
        for permission in ["catalog.read", "audit.read", "policy.reload", "signals.ingest", "nope"] {
            for scopes in [json!(["read"]), json!(["write"]), json!(["admin"]), json!(["signals:ingest"])] {
                let mut caller = alice();
                caller["scopes"] = scopes;
                let input = json!({"caller": caller, "permission": permission, "resource": {}});
                assert_eq!(policy.decide(&input), interpreted.decide(&input), "{input}");
            }
        }
    }

    #[test]
    fn an_empty_input_is_denied() {
        let decision = AccessPolicy::builtin().unwrap().decide(&json!({}));
        assert!(!decision.allow);
    }

    #[test]
    fn broken_or_incomplete_rules_are_refused_with_the_reason() {
        let missing = AccessPolicy::from_sources("test", &[("a.rego".into(), "package plinth.access\nx := 1".into())]);
        assert!(missing.unwrap_err().to_string().contains("does not evaluate"), "no decision rule");
        let wrong =
            AccessPolicy::from_sources("test", &[("a.rego".into(), "package plinth.access\ndecision := true".into())]);
        assert!(wrong.unwrap_err().to_string().contains("must be an object"));
        let syntax =
            AccessPolicy::from_sources("test", &[("a.rego".into(), "package plinth.access\ndecision := {".into())]);
        assert!(syntax.is_err());
    }

    #[test]
    fn a_failing_rule_fails_closed() {
        let text = "package plinth.access\nimport rego.v1\ndefault decision := {\"allow\": false, \"rule\": \"d\", \"reason\": \"\"}\ndecision := {\"allow\": true, \"rule\": \"x\", \"reason\": \"\"} if { 1 / input.zero > 0 }";
        let policy = AccessPolicy::from_sources("test", &[("a.rego".into(), text.into())]).unwrap();
        assert!(!policy.decide(&json!({"zero": 0})).allow);
    }
}
