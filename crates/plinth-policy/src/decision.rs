//! The vocabulary of decisions: enforcement points, outcomes, enforcement
//! modes, violations and waivers.

use crate::PolicyError;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;

/// Where a decision is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Point {
    Catalog,
    Provision,
    Deploy,
    Admission,
    Pr,
}

impl Point {
    pub const ALL: [Point; 5] = [Point::Catalog, Point::Provision, Point::Deploy, Point::Admission, Point::Pr];

    pub fn as_str(self) -> &'static str {
        match self {
            Point::Catalog => "catalog",
            Point::Provision => "provision",
            Point::Deploy => "deploy",
            Point::Admission => "admission",
            Point::Pr => "pr",
        }
    }

    pub fn parse(text: &str) -> Result<Point, PolicyError> {
        Point::ALL
            .into_iter()
            .find(|p| p.as_str().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| PolicyError::UnknownPoint(text.to_string()))
    }
}

impl std::fmt::Display for Point {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The result of a decision, ordered by severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Warn,
    Deny,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Warn => "warn",
            Outcome::Deny => "deny",
        }
    }

    pub fn parse(text: &str) -> Result<Outcome, PolicyError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "allow" => Ok(Outcome::Allow),
            "warn" => Ok(Outcome::Warn),
            "deny" => Ok(Outcome::Deny),
            other => Err(PolicyError::UnknownOutcome(other.to_string())),
        }
    }
}

/// How a policy's violations count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "kebab-case")]
pub enum Enforcement {
    /// Deny rules deny.
    #[default]
    Enforce,
    /// Deny rules only warn (rolling a policy out).
    Warn,
    /// Violations are recorded and shown but change nothing.
    DryRun,
}

impl Enforcement {
    pub fn parse(text: &str) -> Result<Enforcement, PolicyError> {
        match text.trim().to_ascii_lowercase().as_str() {
            "enforce" | "deny" => Ok(Enforcement::Enforce),
            "warn" => Ok(Enforcement::Warn),
            "dry-run" | "dryrun" | "dry_run" | "audit" => Ok(Enforcement::DryRun),
            other => Err(PolicyError::UnknownEnforcement(other.to_string())),
        }
    }
}

/// What a rule reported, with the policy's metadata attached.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Violation {
    /// The package (`plinth.baseline.containers`).
    pub policy: String,
    /// The rule (`deny_privileged`).
    pub rule: String,
    /// `deny` (also Gatekeeper's `violation`) or `warn`; `error` when the
    /// policy itself failed (it fails closed).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Value>,
    pub enforcement: Enforcement,
    /// What this violation did to the decision (`allow` when waived,
    /// excepted or dry-run).
    pub effect: Outcome,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// The rule's one-line rationale (METADATA `description`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    /// Dropped by one of the policy's own `exception` rules.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub excepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiver>,
}

/// The waiver that made a violation not count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AppliedWaiver {
    pub id: String,
    pub owner: String,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

/// A decision.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Decision {
    pub point: Point,
    pub result: Outcome,
    pub violations: Vec<Violation>,
    /// Packages evaluated.
    pub policies: usize,
    /// Version of the policy set (hash of its files).
    pub revision: String,
    pub duration_us: u64,
}

impl Decision {
    pub fn denials(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.effect == Outcome::Deny)
    }

    pub fn warnings(&self) -> impl Iterator<Item = &Violation> {
        self.violations.iter().filter(|v| v.effect == Outcome::Warn)
    }
}

/// An exception granted to one entity for one rule, until it expires.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Waiver {
    pub id: String,
    /// Who answers for it (a user or group ref).
    pub owner: String,
    pub reason: String,
    /// Entity ref it applies to (`component:default/checkout`).
    pub entity: String,
    /// A policy id from METADATA (`PL-BASE-003`), a `package.rule` path, or a
    /// package (every rule in it).
    pub rule: String,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    #[serde(default)]
    pub created_by: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Waiver {
    /// Whether the waiver covers a violation for one of `entities` at `now`.
    pub fn covers(&self, violation: &Violation, entities: &[String], now: OffsetDateTime) -> bool {
        if now >= self.expires_at || violation.kind == "error" {
            return false;
        }
        let entity_matches = entities.iter().any(|e| e.eq_ignore_ascii_case(&self.entity));
        let rule = self.rule.as_str();
        let rule_matches = violation.id.as_deref() == Some(rule)
            || rule == violation.policy
            || rule.strip_prefix(violation.policy.as_str()).and_then(|r| r.strip_prefix('.'))
                == Some(violation.rule.as_str());
        entity_matches && rule_matches
    }
}
