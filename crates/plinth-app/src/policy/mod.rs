//! Policy-as-code: decisions with catalogue context (every one logged),
//! Kubernetes admission, the decision log, the loaded policies, waivers,
//! and the governance view (per-entity results and per-team scorecards).
//! One method per use case.

pub mod context;
pub mod drilldown;
pub mod governance;
pub mod service;
pub(crate) mod waivers;

use plinth_model::EntityRef;
use plinth_policy::scorecard::ScorecardDef;
use plinth_policy::{Decision, LoadProblem, Outcome, Point, PolicySummary, Violation, Waiver};
use plinth_store::DecisionQuery;
use serde_json::{json, Value};
use std::sync::Arc;
use time::OffsetDateTime;

pub use governance::{CardSummary, EntityGovernance, EntitySummary, GovernanceView, TeamRollup};
pub use service::{Compiled, PolicyConfig, PolicyService, RequestContext, DEFAULT_RETENTION};

use crate::access::{Permission, Resource};
use crate::audit::AuditOutcome;
use crate::{AppError, AppResult, Caller, Platform};

/// Longest a waiver may run: exceptions are meant to end.
pub const MAX_WAIVER_DAYS: i64 = 366;
/// Most decision-log events one page may hold.
pub const MAX_DECISIONS: i64 = 1_000;
/// Kubernetes shows warnings up to this length.
const MAX_WARNING_CHARS: usize = 256;

/// A decision and the id it is logged under.
#[derive(Debug, Clone)]
pub struct LoggedDecision {
    pub decision_id: String,
    pub decision: Decision,
}

/// An `AdmissionReview` v1 request, as far as Plinth reads it.
#[derive(Debug, Clone)]
pub struct AdmissionRequest {
    pub uid: String,
    /// The user the API server says is asking.
    pub user: Option<String>,
    /// The whole `request` object (policies see it as `input.review`).
    pub request: Value,
    /// The cluster's environment (`?environment=`).
    pub environment: Option<String>,
}

/// The verdict for an admission request.
#[derive(Debug, Clone)]
pub struct AdmissionVerdict {
    pub uid: String,
    pub allowed: bool,
    pub warnings: Vec<String>,
    /// Why it was denied (every deny, with its policy id).
    pub denial: Option<String>,
    pub decision_id: String,
    pub revision: String,
}

/// Which decision-log events to list.
#[derive(Debug, Clone, Default)]
pub struct DecisionFilter {
    pub point: Option<Point>,
    pub entity: Option<EntityRef>,
    pub result: Option<Outcome>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    /// 1 to [`MAX_DECISIONS`].
    pub limit: i64,
    /// `nextCursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of the decision log, newest first (OPA's event shape).
#[derive(Debug, Clone)]
pub struct DecisionPage {
    pub items: Vec<Value>,
    pub next_cursor: Option<String>,
}

/// The loaded policy set.
#[derive(Debug, Clone)]
pub struct PolicySet {
    pub revision: String,
    pub loaded_at: OffsetDateTime,
    pub sources: Vec<String>,
    pub policies: Vec<PolicySummary>,
    pub scorecards: Vec<ScorecardDef>,
    pub problems: Vec<LoadProblem>,
}

/// A waiver and whether it still applies.
#[derive(Debug, Clone)]
pub struct WaiverState {
    pub waiver: Waiver,
    pub active: bool,
}

/// A waiver to grant.
#[derive(Debug, Clone)]
pub struct NewWaiver {
    /// Who answers for the exception (user or group ref).
    pub owner: String,
    /// Why it is acceptable for now.
    pub reason: String,
    /// The entity it applies to.
    pub entity: String,
    /// Policy id (`PL-BASE-003`), `package.rule`, or package.
    pub rule: String,
    /// At most [`MAX_WAIVER_DAYS`] ahead.
    pub expires_at: OffsetDateTime,
}

/// Scorecards with their per-team roll-ups.
#[derive(Debug, Clone)]
pub struct Scorecards {
    pub scorecards: Vec<ScorecardDef>,
    pub teams: Vec<TeamRollup>,
    /// Catalog-point outcomes over every entity.
    pub outcomes: std::collections::BTreeMap<&'static str, usize>,
    /// The governance view has evaluated every entity as it is now (the
    /// first evaluation is done and nothing is pending).
    pub complete: bool,
}

/// Where the policy capability stands: the loaded revision and how far
/// the governance view (every entity evaluated at the catalog point) is.
#[derive(Debug, Clone)]
pub struct PolicyStatus {
    /// Revision of the loaded policies.
    pub revision: String,
    /// Revision the governance view was computed with.
    pub view_revision: String,
    /// The first evaluation is done and nothing is pending: the results
    /// are those of the whole catalogue as it is.
    pub complete: bool,
    /// Entities evaluated in the view.
    pub evaluated: usize,
    /// Entities waiting for (re-)evaluation.
    pub pending: usize,
    pub evaluated_at: Option<OffsetDateTime>,
    /// Policies that failed to load.
    pub problems: usize,
}

/// Refuses a whole `AdmissionReview` as a decision's input. Packages read
/// an admission request as `input.review` (Gatekeeper-shaped) or read the
/// object under review (conftest-shaped, which also take a bare manifest),
/// so an AdmissionReview given as the input itself is read by no rule and
/// would be allowed unread.
fn admission_input(point: Point, input: &Value) -> AppResult<()> {
    if input.get("review").is_some_and(Value::is_object)
        || input.get("kind").and_then(Value::as_str) != Some("AdmissionReview")
    {
        return Ok(());
    }
    let instead = match point {
        Point::Admission => "send it to POST /api/policy/admission, or give its `request` as `review`",
        _ => "evaluate its `request.object` (the manifest), or give its `request` as `review` at the admission point",
    };
    Err(AppError::invalid_field(
        "input",
        format!(
            "a whole AdmissionReview is read by no policy: the admission point's input is {{\"review\": <AdmissionReview.request>, \"parameters\": {{…}}}}, as Gatekeeper passes it; {instead}"
        ),
    ))
}

/// The policy use cases.
pub struct Policy<'a> {
    pub(crate) platform: &'a Platform,
}

impl<'a> Policy<'a> {
    fn read(&self, caller: &Caller) -> AppResult<()> {
        self.platform.access.check(caller, Permission::PolicyRead, &Resource::none())
    }

    /// The service, or `Unavailable` when the server runs without policies.
    pub fn service(&self) -> AppResult<&'a Arc<PolicyService>> {
        self.platform.policy.as_ref().ok_or_else(|| {
            AppError::unavailable(
                "the policy engine is not enabled on this server; start it with `plinth serve` (policies load from the shipped library or --policy)",
            )
        })
    }

    /// One decision, logged.
    pub async fn evaluate(
        &self,
        caller: &Caller,
        point: Point,
        input: Value,
        context: RequestContext,
    ) -> AppResult<LoggedDecision> {
        let service = self.service()?;
        self.platform.access.check(caller, Permission::PolicyCheck, &Resource::none())?;
        admission_input(point, &input)?;
        // Who asked is the authenticated caller (in local mode, the name it
        // gives); the policies see only what the request's context says.
        let requested_by = caller.requester();
        let (decision_id, decision) = service.decide(point, input, &context, &requested_by).await;
        Ok(LoggedDecision { decision_id, decision })
    }

    /// A Kubernetes validating admission request: denials become the
    /// rejection message, warnings admission warnings.
    pub async fn admission(&self, caller: &Caller, review: AdmissionRequest) -> AppResult<AdmissionVerdict> {
        let service = self.service()?;
        self.platform.access.check(caller, Permission::PolicyCheck, &Resource::none())?;
        let context = RequestContext {
            environment: review.environment.clone(),
            user: review.user.clone(),
            profile: None,
            entities: Vec::new(),
            pending: Vec::new(),
        };
        let input = json!({"review": review.request, "parameters": {}});
        // The API server's own account of the user; a claimed name is not
        // an identity Kubernetes vouches for.
        let requested_by = review.user.clone().unwrap_or_else(|| "kubernetes".to_string());
        let (decision_id, decision) = service.decide(Point::Admission, input, &context, &requested_by).await;
        let allowed = decision.result != Outcome::Deny;
        let describe = |v: &Violation| match &v.id {
            Some(id) => format!("[{id}] {}", v.message),
            None => v.message.clone(),
        };
        let warnings = decision.warnings().map(|v| truncate(&describe(v), MAX_WARNING_CHARS)).collect();
        let denial = (!allowed).then(|| {
            let reasons: Vec<String> = decision.denials().map(describe).collect();
            format!("denied by Plinth policy (decision {decision_id}): {}", reasons.join("; "))
        });
        Ok(AdmissionVerdict {
            uid: review.uid,
            allowed,
            warnings,
            denial,
            revision: decision.revision.clone(),
            decision_id,
        })
    }

    /// The decision log, newest first.
    pub async fn decisions(&self, caller: &Caller, filter: &DecisionFilter) -> AppResult<DecisionPage> {
        let service = self.service()?;
        self.read(caller)?;
        // Inputs (manifests, parameters) are for admins; others see the
        // decisions without them.
        let with_inputs =
            self.platform.access.decide(caller, Permission::PolicyDecisionInputs, &Resource::none()).allow;
        if !(1..=MAX_DECISIONS).contains(&filter.limit) {
            return Err(AppError::invalid_field("limit", format!("must be from 1 to {MAX_DECISIONS}")));
        }
        let malformed = || AppError::invalid_field("cursor", "is malformed; pass back nextCursor unchanged");
        let before = match &filter.cursor {
            Some(cursor) => {
                let (ts, id) = cursor.split_once(':').ok_or_else(malformed)?;
                Some((ts.parse::<i64>().map_err(|_| malformed())?, id.to_string()))
            }
            None => None,
        };
        let millis = |t: OffsetDateTime| (t.unix_timestamp_nanos() / 1_000_000) as i64;
        let query = DecisionQuery {
            point: filter.point.map(|p| p.as_str().to_string()),
            entity: filter.entity.as_ref().map(EntityRef::key),
            result: filter.result.map(|r| r.as_str().to_string()),
            from_ms: filter.from.map(millis),
            to_ms: filter.to.map(millis),
            before,
            limit: filter.limit + 1,
        };
        let mut rows = service.store().query_decisions(&query).await?;
        let next_cursor = (rows.len() as i64 > filter.limit)
            .then(|| {
                rows.truncate(filter.limit as usize);
                rows.last().map(|(ts, id, _)| format!("{ts}:{id}"))
            })
            .flatten();
        let items = rows
            .iter()
            .filter_map(|(_, _, event)| serde_json::from_str::<Value>(event).ok())
            .map(|mut item| {
                if !with_inputs {
                    if let Some(fields) = item.as_object_mut() {
                        fields.remove("input");
                    }
                }
                item
            })
            .collect();
        Ok(DecisionPage { items, next_cursor })
    }

    /// The loaded policies, rules, scorecards and load problems.
    pub fn policies(&self, caller: &Caller) -> AppResult<PolicySet> {
        self.read(caller)?;
        let service = self.service()?;
        let compiled = service.compiled();
        Ok(PolicySet {
            revision: compiled.engine.revision().to_string(),
            loaded_at: compiled.loaded_at,
            sources: service.config().sources.clone(),
            policies: compiled.engine.summaries(),
            scorecards: compiled.scorecards.clone(),
            problems: compiled.engine.problems().to_vec(),
        })
    }

    /// The loaded revision and the governance view's progress.
    pub fn status(&self, caller: &Caller) -> AppResult<PolicyStatus> {
        self.read(caller)?;
        let service = self.service()?;
        let compiled = service.compiled();
        let view = service.view();
        Ok(PolicyStatus {
            revision: compiled.engine.revision().to_string(),
            view_revision: view.revision.clone(),
            complete: view.settled(),
            evaluated: view.len(),
            pending: view.pending,
            evaluated_at: view.evaluated_at,
            problems: compiled.engine.problems().len(),
        })
    }

    /// Catalog-point outcomes over every entity (a pass over the whole
    /// governance view: for overview pages, not per-entity ones).
    pub fn outcomes(&self, caller: &Caller) -> AppResult<std::collections::BTreeMap<&'static str, usize>> {
        self.read(caller)?;
        Ok(self.service()?.view().outcome_counts())
    }

    /// Every waiver, with whether it still applies.
    pub fn waivers(&self, caller: &Caller) -> AppResult<Vec<WaiverState>> {
        self.read(caller)?;
        let service = self.service()?;
        let now = OffsetDateTime::now_utc();
        Ok(service.waivers().iter().map(|w| WaiverState { active: w.expires_at > now, waiver: w.clone() }).collect())
    }

    /// Grants a time-limited exception (audited).
    pub async fn grant_waiver(&self, caller: &Caller, new: NewWaiver) -> AppResult<Waiver> {
        let service = self.service()?;
        for (field, value) in [("owner", &new.owner), ("reason", &new.reason), ("rule", &new.rule)] {
            if value.trim().is_empty() {
                return Err(AppError::invalid_field(field, "is required and must not be empty"));
            }
        }
        let entity = plinth_model::parse_ref_lenient(&new.entity, Some("component"))
            .map_err(|e| AppError::invalid_field("entity", e))?;
        let resource = Resource::entity(&self.platform.catalog.read(), &entity.key());
        self.platform.access.check(caller, Permission::PolicyWaiverWrite, &resource)?;
        let now = OffsetDateTime::now_utc();
        if new.expires_at <= now {
            return Err(AppError::invalid_field("expiresAt", "is in the past; a waiver must expire in the future"));
        }
        if new.expires_at > now + time::Duration::days(MAX_WAIVER_DAYS) {
            return Err(AppError::invalid_field(
                "expiresAt",
                format!("is more than {MAX_WAIVER_DAYS} days away; waivers are temporary — renew it when it expires"),
            ));
        }
        let waiver = Waiver {
            id: uuid::Uuid::new_v4().to_string(),
            owner: new.owner.trim().to_string(),
            reason: new.reason.trim().to_string(),
            entity: entity.key(),
            rule: new.rule.trim().to_string(),
            expires_at: new.expires_at,
            created_by: caller.requester(),
            created_at: now,
        };
        service.add_waiver(&waiver).await?;
        let detail = json!({"waiver": waiver.id, "rule": waiver.rule, "owner": waiver.owner,
                            "expiresAt": waiver.expires_at.unix_timestamp()});
        self.platform.record(caller, "policy.waiver.create", &resource.reference, AuditOutcome::Allowed, detail).await;
        Ok(waiver)
    }

    /// Revokes a waiver (audited).
    pub async fn revoke_waiver(&self, caller: &Caller, id: &str) -> AppResult<()> {
        let service = self.service()?;
        let entity = service.waivers().iter().find(|w| w.id == id).map(|w| w.entity.clone());
        let entity = entity.ok_or_else(|| AppError::not_found(format!("no waiver with id {id}")))?;
        let resource = Resource::entity(&self.platform.catalog.read(), &entity);
        self.platform.access.check(caller, Permission::PolicyWaiverWrite, &resource)?;
        if !service.remove_waiver(id).await? {
            return Err(AppError::not_found(format!("no waiver with id {id}")));
        }
        let detail = json!({"waiver": id});
        self.platform.record(caller, "policy.waiver.delete", &resource.reference, AuditOutcome::Allowed, detail).await;
        Ok(())
    }

    /// An entity's catalog-point decision and scorecards.
    pub fn entity(&self, caller: &Caller, entity: &EntityRef) -> AppResult<EntityGovernance> {
        self.read(caller)?;
        let service = self.service()?;
        governance::detail(service, &entity.key())
            .ok_or_else(|| AppError::not_found(format!("no entity {entity} in the catalogue")))
    }

    /// Scorecard definitions and per-team roll-ups (one team's with `owner`).
    pub fn scorecards(&self, caller: &Caller, owner: Option<&EntityRef>) -> AppResult<Scorecards> {
        self.read(caller)?;
        let service = self.service()?;
        let compiled = service.compiled();
        let view = service.view();
        let owner = owner.map(EntityRef::key);
        Ok(Scorecards {
            scorecards: compiled.scorecards.clone(),
            teams: view.rollups(owner.as_deref(), &compiled.scorecards),
            outcomes: view.outcome_counts(),
            complete: view.settled(),
        })
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max - 1).collect();
    out.push('…');
    out
}
