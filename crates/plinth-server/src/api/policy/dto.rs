//! Request and response bodies of the policy API, each with its schema.

use crate::api::schema::{EntityRefText, PointName};
use plinth_app::policy::{
    DecisionPage, EntityGovernance, PolicySet, PolicyStatus, Scorecards, TeamRollup, WaiverState,
};
use plinth_policy::scorecard::{CheckDef, CheckResult, ScorecardDef, ScorecardResult};
use plinth_policy::{AppliedWaiver, Decision, LoadProblem, PolicySummary, Violation, Waiver};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

use crate::api::rfc3339;

/// `POST /api/policy/evaluate`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EvaluateRequest {
    /// The enforcement point (read ignoring case).
    #[schema(value_type = PointName)]
    pub point: String,
    /// The document the policies judge (`input` in Rego): any JSON value,
    /// usually an object.
    pub input: Value,
    #[serde(default)]
    pub context: RequestContextDto,
}

/// Context given with a decision request.
#[derive(Default, Deserialize, ToSchema)]
#[schema(as = RequestContext)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RequestContextDto {
    /// `production`, `staging`, …
    pub environment: Option<String>,
    /// The user asking (recorded in the decision log).
    pub user: Option<String>,
    /// Workload profile: training, inference, agent, rag (default: all).
    pub profile: Option<String>,
    /// Entity refs the decision involves, besides those the input names.
    #[serde(default)]
    pub entities: Vec<String>,
}

impl From<RequestContextDto> for plinth_app::policy::RequestContext {
    fn from(c: RequestContextDto) -> Self {
        plinth_app::policy::RequestContext {
            environment: c.environment,
            user: c.user,
            profile: c.profile,
            entities: c.entities,
            pending: Vec::new(),
        }
    }
}

/// A decision: the result, every violation with its policy's metadata, and
/// the id it is logged under.
#[derive(Serialize, ToSchema)]
#[schema(as = Decision)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecisionDto {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision_id: Option<String>,
    /// `catalog`, `provision`, `deploy`, `admission` or `pr`.
    pub point: String,
    /// `allow`, `warn` or `deny`.
    pub result: String,
    pub violations: Vec<ViolationDto>,
    /// Packages evaluated.
    pub policies: usize,
    /// Version of the policy set (hash of its files).
    pub revision: String,
    pub duration_us: u64,
}

impl DecisionDto {
    pub(crate) fn new(decision: &Decision, decision_id: Option<String>) -> DecisionDto {
        DecisionDto {
            decision_id,
            point: decision.point.as_str().into(),
            result: decision.result.as_str().into(),
            violations: decision.violations.iter().map(ViolationDto::from).collect(),
            policies: decision.policies,
            revision: decision.revision.clone(),
            duration_us: decision.duration_us,
        }
    }
}

/// What a rule reported, with the policy's metadata.
#[derive(Serialize, ToSchema)]
#[schema(as = Violation)]
pub(crate) struct ViolationDto {
    /// The package (`plinth.baseline.containers`).
    pub policy: String,
    pub rule: String,
    /// `deny`, `warn`, or `error` (the policy failed; it fails closed).
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub controls: Vec<String>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<Value>,
    /// `enforce`, `warn` or `dry-run`.
    pub enforcement: String,
    /// What it did to the decision (`allow` when waived, excepted or dry-run).
    pub effect: String,
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rationale: Option<String>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub excepted: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiver: Option<AppliedWaiverDto>,
}

impl From<&Violation> for ViolationDto {
    fn from(v: &Violation) -> Self {
        ViolationDto {
            policy: v.policy.clone(),
            rule: v.rule.clone(),
            kind: v.kind.clone(),
            id: v.id.clone(),
            title: v.title.clone(),
            severity: v.severity.clone(),
            controls: v.controls.clone(),
            message: v.message.clone(),
            details: v.details.clone(),
            enforcement: serde_json::to_value(v.enforcement)
                .ok()
                .and_then(|e| e.as_str().map(str::to_string))
                .unwrap_or_default(),
            effect: v.effect.as_str().into(),
            file: v.file.clone(),
            line: v.line,
            rationale: v.rationale.clone(),
            excepted: v.excepted,
            waiver: v.waiver.as_ref().map(AppliedWaiverDto::from),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = AppliedWaiver)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AppliedWaiverDto {
    pub id: String,
    pub owner: String,
    pub reason: String,
    pub expires_at: String,
}

impl From<&AppliedWaiver> for AppliedWaiverDto {
    fn from(w: &AppliedWaiver) -> Self {
        AppliedWaiverDto {
            id: w.id.clone(),
            owner: w.owner.clone(),
            reason: w.reason.clone(),
            expires_at: rfc3339(w.expires_at),
        }
    }
}

/// An `AdmissionReview` v1 request, as the Kubernetes API server sends it;
/// the handler reads it field by field to say exactly what is missing.
#[derive(Deserialize)]
#[serde(transparent)]
pub(crate) struct AdmissionReviewRequest(pub Value);

impl utoipa::PartialSchema for AdmissionReviewRequest {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::api::schema::from_json(serde_json::json!({
            "description": "An `AdmissionReview` v1 with `request` (configure the ValidatingWebhookConfiguration with admissionReviewVersions: [\"v1\"])",
            "type": "object",
            "required": ["apiVersion", "kind", "request"],
            "properties": {
                "apiVersion": {"type": "string", "enum": [ADMISSION_API_VERSION]},
                "kind": {"type": "string", "enum": [ADMISSION_KIND]},
                "request": {
                    "type": "object",
                    "description": "The admission request: `uid`, the object, the operation, `userInfo`, …",
                    "required": ["uid"],
                    "properties": {
                        "uid": {"type": "string", "description": "Echoed in the response"},
                        "userInfo": {"type": "object", "properties": {"username": {"type": "string"}}}
                    }
                }
            }
        }))
    }
}

impl ToSchema for AdmissionReviewRequest {}

pub(crate) const ADMISSION_API_VERSION: &str = "admission.k8s.io/v1";
pub(crate) const ADMISSION_KIND: &str = "AdmissionReview";

/// An `AdmissionReview` v1 (request in, response out).
#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionReview {
    /// `admission.k8s.io/v1`.
    pub api_version: String,
    /// `AdmissionReview`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub request: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<AdmissionResponse>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct AdmissionResponse {
    pub uid: String,
    pub allowed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<AdmissionStatus>,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub warnings: Vec<String>,
    pub audit_annotations: BTreeMap<String, String>,
}

#[derive(Deserialize, Serialize, ToSchema)]
pub(crate) struct AdmissionStatus {
    pub code: u16,
    pub reason: String,
    pub message: String,
}

/// A page of the decision log, newest first (OPA's decision-log events).
#[derive(Serialize, ToSchema)]
#[schema(as = Decisions)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DecisionsDto {
    #[schema(value_type = Vec<Object>)]
    pub items: Vec<Value>,
    /// Pass back as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

impl From<DecisionPage> for DecisionsDto {
    fn from(page: DecisionPage) -> Self {
        DecisionsDto { items: page.items, next_cursor: page.next_cursor }
    }
}

/// The loaded policies, rules, scorecards and load problems.
#[derive(Serialize, ToSchema)]
#[schema(as = Policies)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PoliciesDto {
    pub revision: String,
    pub loaded_at: String,
    pub sources: Vec<String>,
    pub policies: Vec<PolicySummaryDto>,
    pub scorecards: Vec<ScorecardDefDto>,
    pub problems: Vec<LoadProblemDto>,
}

impl From<PolicySet> for PoliciesDto {
    fn from(set: PolicySet) -> Self {
        PoliciesDto {
            revision: set.revision,
            loaded_at: rfc3339(set.loaded_at),
            sources: set.sources,
            policies: set.policies.iter().map(PolicySummaryDto::from).collect(),
            scorecards: set.scorecards.iter().map(ScorecardDefDto::from).collect(),
            problems: set.problems.iter().map(LoadProblemDto::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = PolicySummary)]
pub(crate) struct PolicySummaryDto {
    pub package: String,
    pub title: Option<String>,
    /// Points it applies at (empty: every point).
    pub points: Vec<String>,
    pub profile: Option<String>,
    /// Kinds of object it applies to, lower case (METADATA `custom.kinds`;
    /// empty: every input).
    pub kinds: Vec<String>,
    /// What its rules read as `input` on an AdmissionReview: `review`
    /// (Gatekeeper-shaped: `input.review`, `input.parameters`) or `object`
    /// (conftest-shaped: the object under review, with `input.plinth`).
    #[schema(pattern = "^(review|object)$")]
    pub input: String,
    pub rules: Vec<RuleSummaryDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = RuleSummary)]
pub(crate) struct RuleSummaryDto {
    pub rule: String,
    pub kind: String,
    pub id: Option<String>,
    pub title: Option<String>,
    pub severity: Option<String>,
    pub controls: Vec<String>,
    pub enforcement: String,
    pub rationale: Option<String>,
    pub file: String,
    pub line: usize,
}

impl From<&PolicySummary> for PolicySummaryDto {
    fn from(p: &PolicySummary) -> Self {
        PolicySummaryDto {
            package: p.package.clone(),
            title: p.title.clone(),
            points: p.points.iter().map(|point| point.as_str().to_string()).collect(),
            profile: p.profile.clone(),
            kinds: p.kinds.clone(),
            input: p.input.as_str().to_string(),
            rules: p
                .rules
                .iter()
                .map(|r| RuleSummaryDto {
                    rule: r.rule.clone(),
                    kind: r.kind.to_string(),
                    id: r.id.clone(),
                    title: r.title.clone(),
                    severity: r.severity.clone(),
                    controls: r.controls.clone(),
                    enforcement: serde_json::to_value(r.enforcement)
                        .ok()
                        .and_then(|e| e.as_str().map(str::to_string))
                        .unwrap_or_default(),
                    rationale: r.rationale.clone(),
                    file: r.file.clone(),
                    line: r.line,
                })
                .collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = ScorecardDef)]
pub(crate) struct ScorecardDefDto {
    pub id: String,
    pub package: String,
    pub title: String,
    pub description: Option<String>,
    /// Entity kinds it applies to; empty: every kind.
    pub kinds: Vec<String>,
    pub checks: Vec<CheckDefDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CheckDef)]
pub(crate) struct CheckDefDto {
    pub id: String,
    pub title: String,
    /// `bronze`, `silver` or `gold`.
    pub level: String,
    pub description: Option<String>,
}

impl From<&ScorecardDef> for ScorecardDefDto {
    fn from(s: &ScorecardDef) -> Self {
        ScorecardDefDto {
            id: s.id.clone(),
            package: s.package.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            kinds: s.kinds.clone(),
            checks: s.checks.iter().map(CheckDefDto::from).collect(),
        }
    }
}

impl From<&CheckDef> for CheckDefDto {
    fn from(c: &CheckDef) -> Self {
        CheckDefDto {
            id: c.id.clone(),
            title: c.title.clone(),
            level: c.level.clone(),
            description: c.description.clone(),
        }
    }
}

/// A policy file that did not load; the points depending on it fail closed.
#[derive(Serialize, ToSchema)]
#[schema(as = LoadProblem)]
pub(crate) struct LoadProblemDto {
    pub file: String,
    pub line: Option<usize>,
    pub message: String,
    pub package: Option<String>,
    pub points: Vec<String>,
}

impl From<&LoadProblem> for LoadProblemDto {
    fn from(p: &LoadProblem) -> Self {
        LoadProblemDto {
            file: p.file.clone(),
            line: p.line,
            message: p.message.clone(),
            package: p.package.clone(),
            points: p.points.clone(),
        }
    }
}

/// `POST /api/policy/waivers`.
#[derive(Deserialize, ToSchema)]
#[schema(as = NewWaiver)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct NewWaiverDto {
    /// Who answers for the exception (user or group ref); not only whitespace.
    #[schema(max_length = 512, pattern = r"\S")]
    pub owner: String,
    /// Why it is acceptable for now; not only whitespace.
    #[schema(max_length = 4096, pattern = r"\S")]
    pub reason: String,
    /// The entity it applies to (the kind defaults to Component).
    #[schema(value_type = EntityRefText)]
    pub entity: String,
    /// Policy id (`PL-BASE-003`), `package.rule`, or package; not only whitespace.
    #[schema(max_length = 512, pattern = r"\S")]
    pub rule: String,
    /// RFC 3339; in the future, and at most a year ahead.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// A time-limited exception for one entity and one rule.
#[derive(Serialize, ToSchema)]
#[schema(as = Waiver)]
#[serde(rename_all = "camelCase")]
pub(crate) struct WaiverDto {
    pub id: String,
    pub owner: String,
    pub reason: String,
    pub entity: String,
    pub rule: String,
    pub expires_at: String,
    pub created_by: String,
    pub created_at: String,
    /// Still applies (not expired).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub active: Option<bool>,
}

impl From<&Waiver> for WaiverDto {
    fn from(w: &Waiver) -> Self {
        WaiverDto {
            id: w.id.clone(),
            owner: w.owner.clone(),
            reason: w.reason.clone(),
            entity: w.entity.clone(),
            rule: w.rule.clone(),
            expires_at: rfc3339(w.expires_at),
            created_by: w.created_by.clone(),
            created_at: rfc3339(w.created_at),
            active: None,
        }
    }
}

impl From<&WaiverState> for WaiverDto {
    fn from(w: &WaiverState) -> Self {
        WaiverDto { active: Some(w.active), ..WaiverDto::from(&w.waiver) }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = Waivers)]
pub(crate) struct WaiversDto {
    pub items: Vec<WaiverDto>,
}

/// An entity's catalog-point decision and scorecards.
#[derive(Serialize, ToSchema)]
#[schema(as = EntityGovernance)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntityGovernanceDto {
    pub entity_ref: String,
    pub decision: DecisionDto,
    pub scorecards: Vec<ScorecardResultDto>,
}

impl From<&EntityGovernance> for EntityGovernanceDto {
    fn from(g: &EntityGovernance) -> Self {
        EntityGovernanceDto {
            entity_ref: g.entity_ref.clone(),
            decision: DecisionDto::new(&g.decision, None),
            scorecards: g.scorecards.iter().map(ScorecardResultDto::from).collect(),
        }
    }
}

#[derive(Serialize, ToSchema)]
#[schema(as = ScorecardResult)]
pub(crate) struct ScorecardResultDto {
    pub scorecard: String,
    pub title: String,
    /// Highest level reached (`null`: not even bronze).
    pub level: Option<String>,
    pub passed: usize,
    pub total: usize,
    pub checks: Vec<CheckResultDto>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = CheckResult)]
pub(crate) struct CheckResultDto {
    pub id: String,
    pub title: String,
    pub level: String,
    pub passed: bool,
    /// Why it failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
}

impl From<&ScorecardResult> for ScorecardResultDto {
    fn from(s: &ScorecardResult) -> Self {
        ScorecardResultDto {
            scorecard: s.scorecard.clone(),
            title: s.title.clone(),
            level: s.level.clone(),
            passed: s.passed,
            total: s.total,
            checks: s.checks.iter().map(CheckResultDto::from).collect(),
        }
    }
}

impl From<&CheckResult> for CheckResultDto {
    fn from(c: &CheckResult) -> Self {
        CheckResultDto {
            id: c.id.clone(),
            title: c.title.clone(),
            level: c.level.clone(),
            passed: c.passed,
            reasons: c.reasons.clone(),
        }
    }
}

/// Scorecards and, per team, roll-ups.
#[derive(Serialize, ToSchema)]
#[schema(as = Scorecards)]
pub(crate) struct ScorecardsDto {
    pub scorecards: Vec<ScorecardDefDto>,
    pub teams: Vec<TeamRollupDto>,
    /// Entities per catalog-point result (`allow`, `warn`, `deny`).
    pub outcomes: BTreeMap<String, usize>,
    /// Every entity has been evaluated.
    pub complete: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = TeamRollup)]
pub(crate) struct TeamRollupDto {
    pub owner: String,
    pub scorecard: String,
    pub entities: usize,
    /// Entities per level reached (`none` below bronze).
    pub levels: BTreeMap<String, usize>,
    /// Per check: how many entities pass it.
    pub checks: BTreeMap<String, usize>,
    /// Share of (entity, check) pairs passing, 0–100.
    pub score: f64,
}

impl From<&TeamRollup> for TeamRollupDto {
    fn from(t: &TeamRollup) -> Self {
        TeamRollupDto {
            owner: t.owner.clone(),
            scorecard: t.scorecard.clone(),
            entities: t.entities,
            levels: t.levels.clone(),
            checks: t.checks.clone(),
            score: t.score,
        }
    }
}

impl From<Scorecards> for ScorecardsDto {
    fn from(s: Scorecards) -> Self {
        ScorecardsDto {
            scorecards: s.scorecards.iter().map(ScorecardDefDto::from).collect(),
            teams: s.teams.iter().map(TeamRollupDto::from).collect(),
            outcomes: s.outcomes.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
            complete: s.complete,
        }
    }
}

/// The loaded policy revision and how far the governance view is.
#[derive(Serialize, ToSchema)]
#[schema(as = PolicyStatus)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PolicyStatusDto {
    /// Revision of the loaded policies.
    pub revision: String,
    /// Revision the governance view's results were computed with; differs
    /// from `revision` while a reload is being evaluated.
    pub view_revision: String,
    /// The first evaluation of every entity has finished.
    pub complete: bool,
    /// Entities with results in the view.
    pub evaluated: usize,
    /// Entities waiting for (re-)evaluation after a change.
    pub pending: usize,
    /// When the view last finished an evaluation pass (RFC 3339).
    pub evaluated_at: Option<String>,
    /// Policy files that failed to load.
    pub problems: usize,
}

impl From<PolicyStatus> for PolicyStatusDto {
    fn from(s: PolicyStatus) -> Self {
        PolicyStatusDto {
            revision: s.revision,
            view_revision: s.view_revision,
            complete: s.complete,
            evaluated: s.evaluated,
            pending: s.pending,
            evaluated_at: s.evaluated_at.map(rfc3339),
            problems: s.problems,
        }
    }
}
