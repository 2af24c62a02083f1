//! Alert rules on signals: a threshold or an availability SLO (burn rate)
//! over a window, per entity or team, evaluated continuously. A firing rule
//! sets its entity's health (degraded / unhealthy), is recorded in the alert
//! history and is posted to the rule's webhook; so is its resolution.
//!
//! With several replicas, one evaluates (the leader of [`Job::Alerts`]).
//! Every replica keeps the rules and their states in memory and follows
//! the store (`crate::follow`), so a rule written through any replica is
//! evaluated, listed and reflected in health everywhere within a second.
//! A transition is stored by a conditional update of the rule's state row
//! (the revision the evaluation read, and the leader's lease term), in the
//! same transaction as its history event and its pending webhook delivery:
//! a transition is recorded once, a new leader continues from the stored
//! state, and a delivery a dead leader left pending is made by the next.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use plinth_confine::OutboundPolicy;
use plinth_model::parse_ref_lenient;
use plinth_store::{AlertStateRow, AlertTransition, NewAlertEvent, RollupQuery, Store, StoreError};
use plinth_telemetry::query::{is_model_call, metric_value, rfc3339};
use plinth_telemetry::rollup::{Cell, SERVER_OPERATION};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::query::{load_rows, SignalFilter};
use super::service::{now_s, SignalsService};
use crate::follow::Seen;
use crate::lease::{Flow, Job, LeaderTerm};

/// A delivery still pending this long after its transition was left by a
/// replica that died (a delivery takes at most three 5-second tries): the
/// leader makes it.
const PENDING_GRACE_S: i64 = 30;

/// An availability objective: fires when the error budget burns at least
/// `burn_rate` times faster than the objective allows over the window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Slo {
    /// Share of requests that must succeed, e.g. 0.995.
    pub objective: f64,
    /// 1 = exactly on budget; 14.4 is the usual one-hour fast-burn page.
    #[serde(default = "one")]
    pub burn_rate: f64,
}

fn one() -> f64 {
    1.0
}
fn default_op() -> String {
    ">".into()
}
fn default_window() -> String {
    "5m".into()
}
fn default_severity() -> String {
    "unhealthy".into()
}
fn default_scope() -> String {
    "model_calls".into()
}
fn default_min_requests() -> i64 {
    1
}
fn yes() -> bool {
    true
}

/// An alert rule.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AlertRule {
    /// Stable id (letters, digits, `-`, `_`); derived from `name` when empty.
    #[serde(default)]
    pub id: String,
    pub name: String,
    /// The entity whose health this rule sets: a Component, Model, Prompt,
    /// Agent or Group ref.
    #[serde(default)]
    pub entity: Option<String>,
    /// A team (Group ref): the rule watches everything the team owns.
    #[serde(default)]
    pub team: Option<String>,
    /// A `service.name` (for services not in the catalogue).
    #[serde(default)]
    pub service: Option<String>,
    /// requests, errors, error_rate, latency_p50|p95|p99, ttft_p50|p95|p99,
    /// cost_usd, tokens, tool_calls — or `availability` with `slo`.
    pub signal: String,
    /// `model_calls` (default), `server` (HTTP/RPC RED) or a GenAI operation.
    #[serde(default = "default_scope")]
    pub scope: String,
    /// `>`, `>=`, `<` or `<=`.
    #[serde(default = "default_op")]
    pub op: String,
    #[serde(default)]
    pub threshold: Option<f64>,
    #[serde(default)]
    pub slo: Option<Slo>,
    /// Window such as `5m`, `1h`.
    #[serde(default = "default_window")]
    pub window: String,
    /// Health while firing: `degraded` or `unhealthy`.
    #[serde(default = "default_severity")]
    pub severity: String,
    /// Below this many requests in the window the rule does not judge.
    #[serde(default = "default_min_requests")]
    pub min_requests: i64,
    /// Posted (JSON) on firing and on resolution.
    #[serde(default)]
    pub webhook: Option<String>,
    #[serde(default = "yes")]
    pub enabled: bool,
}

impl AlertRule {
    /// Normalises and checks the rule, listing every problem by field.
    pub fn validated(mut self) -> Result<AlertRule, Vec<String>> {
        let mut errors = Vec::new();
        if self.name.trim().is_empty() {
            errors.push("name: give the rule a name".to_string());
        }
        if self.id.is_empty() {
            self.id = self
                .name
                .trim()
                .to_ascii_lowercase()
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect::<String>()
                .trim_matches('-')
                .to_string();
        }
        if self.id.is_empty() || !self.id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
            errors.push(format!("id: `{}` may only hold letters, digits, `-` and `_`", self.id));
        }
        let targets = [&self.entity, &self.team, &self.service].iter().filter(|t| t.is_some()).count();
        if targets != 1 {
            errors.push("entity/team/service: give exactly one target".to_string());
        }
        if let Some(entity) = &self.entity {
            match parse_ref_lenient(entity, Some("component")) {
                Ok(r) if matches!(r.kind.as_str(), "component" | "model" | "prompt" | "agent" | "group") => {
                    self.entity = Some(r.to_string())
                }
                Ok(r) => errors.push(format!(
                    "entity: kind {} has no signals; use a Component, Model, Prompt, Agent or Group",
                    r.kind
                )),
                Err(e) => errors.push(format!("entity: `{entity}` is not a reference: {e}")),
            }
        }
        if let Some(team) = &self.team {
            match parse_ref_lenient(team, Some("group")) {
                Ok(r) => self.team = Some(r.to_string()),
                Err(e) => errors.push(format!("team: `{team}` is not a reference: {e}")),
            }
        }
        match (&self.slo, self.signal.as_str()) {
            (Some(slo), "availability") => {
                if !(slo.objective > 0.0 && slo.objective < 1.0) {
                    errors.push("slo.objective: a share between 0 and 1, e.g. 0.995".to_string());
                }
                if !(slo.burn_rate > 0.0 && slo.burn_rate.is_finite()) {
                    errors.push("slo.burn_rate: a positive number".to_string());
                }
            }
            (Some(_), other) => errors.push(format!("signal: an SLO rule uses `availability`, not `{other}`")),
            (None, signal) => {
                if !plinth_telemetry::query::SERIES_METRICS.contains(&signal) {
                    errors.push(format!(
                        "signal: `{signal}` is not one of {} (or `availability` with `slo`)",
                        plinth_telemetry::query::SERIES_METRICS.join(", ")
                    ));
                }
                if self.threshold.is_none_or(|t| !t.is_finite()) {
                    errors.push("threshold: a number is required for a threshold rule".to_string());
                }
            }
        }
        const SCOPES: &[&str] = &[
            "model_calls",
            "server",
            "all",
            "chat",
            "text_completion",
            "generate_content",
            "embeddings",
            "invoke_agent",
            "create_agent",
            "execute_tool",
            "retrieval",
        ];
        if !SCOPES.contains(&self.scope.as_str()) {
            errors.push(format!("scope: `{}` is not one of {}", self.scope, SCOPES.join(", ")));
        }
        if !matches!(self.op.as_str(), ">" | ">=" | "<" | "<=") {
            errors.push(format!("op: `{}` is not one of >, >=, <, <=", self.op));
        }
        match window_seconds(&self.window) {
            Some(s) if (60..=7 * 86_400).contains(&s) => {}
            _ => errors.push(format!("window: `{}` must be between 1m and 7d, e.g. 5m or 1h", self.window)),
        }
        if !matches!(self.severity.as_str(), "degraded" | "unhealthy") {
            errors.push(format!("severity: `{}` is `degraded` or `unhealthy`", self.severity));
        }
        if let Some(url) = &self.webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                errors.push(format!("webhook: `{url}` is not an http(s) URL"));
            }
        }
        if errors.is_empty() {
            Ok(self)
        } else {
            Err(errors)
        }
    }

    /// The key of the entity whose health the rule sets.
    fn health_key(&self, service: &SignalsService) -> Option<String> {
        if let Some(entity) = &self.entity {
            return parse_ref_lenient(entity, Some("component")).ok().map(|r| r.key());
        }
        if let Some(team) = &self.team {
            return parse_ref_lenient(team, Some("group")).ok().map(|r| r.key());
        }
        let service_name = self.service.as_deref()?;
        let attribution = service.attribution();
        let owner = attribution.service(service_name)?;
        parse_ref_lenient(&owner.component, None).ok().map(|r| r.key())
    }

    fn filter(&self) -> SignalFilter {
        let mut filter = SignalFilter::default();
        let q: &mut RollupQuery = &mut filter.query;
        if let Some(team) = &self.team {
            q.team = Some(team.clone());
        }
        if let Some(service) = &self.service {
            q.service = Some(service.clone());
        }
        if let Some(entity) = &self.entity {
            if let Ok(r) = parse_ref_lenient(entity, Some("component")) {
                match r.kind.as_str() {
                    "component" => q.component = Some(r.to_string()),
                    "group" => q.team = Some(r.to_string()),
                    "model" => filter.model_ref = Some(r.to_string()),
                    "prompt" => q.prompt = Some(r.name.clone()),
                    "agent" => q.agent = Some(r.name.clone()),
                    _ => {}
                }
            }
        }
        filter
    }
}

fn window_seconds(text: &str) -> Option<i64> {
    let (number, unit) = text.split_at(text.find(|c: char| !c.is_ascii_digit())?);
    let n: i64 = number.parse().ok()?;
    Some(match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return None,
    })
}

/// Where a rule stands after an evaluation.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Evaluated, within its threshold.
    Ok,
    /// Evaluated, beyond its threshold.
    Firing,
    /// Nothing to judge in the window (no data, or below `min_requests`).
    NoData,
}

impl Condition {
    /// The stored name (`ok`, `firing`, `no_data`).
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Ok => "ok",
            Condition::Firing => "firing",
            Condition::NoData => "no_data",
        }
    }
}

/// A change of a rule between firing and not, as recorded in its history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Firing,
    Resolved,
}

impl Transition {
    /// The recorded name (`firing`, `resolved`).
    pub fn as_str(self) -> &'static str {
        match self {
            Transition::Firing => "firing",
            Transition::Resolved => "resolved",
        }
    }
}

/// A rule's current state.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RuleState {
    pub state: Condition,
    pub since: String,
    pub value: Option<f64>,
    pub message: String,
    pub evaluated: String,
}

/// An entity's health as set by alert rules.
#[derive(Debug, Clone, Serialize)]
pub struct HealthEntry {
    pub entity: String,
    /// `healthy`, `degraded` or `unhealthy`; `unknown` when no rule watches it.
    pub health: String,
    pub firing: Vec<String>,
    pub rules: Vec<String>,
}

/// A rule watching an entity: (rule id, severity, firing).
type Watch = (String, String, bool);

pub struct AlertEngine {
    rules: RwLock<BTreeMap<String, AlertRule>>,
    states: RwLock<HashMap<String, RuleState>>,
    /// Entity key → the rules watching it.
    health: RwLock<HashMap<String, Vec<Watch>>>,
    /// Where webhooks may go, and the client that enforces it on every
    /// connection and redirect.
    outbound: Arc<OutboundPolicy>,
    client: reqwest::Client,
    /// The cache revisions (rules, states) the copies above were loaded at.
    seen: Seen<(i64, i64)>,
    /// One evaluation at a time in this process.
    evaluating: tokio::sync::Mutex<()>,
}

impl AlertEngine {
    pub fn new(outbound: Arc<OutboundPolicy>) -> AlertEngine {
        AlertEngine {
            rules: RwLock::default(),
            states: RwLock::default(),
            health: RwLock::default(),
            client: outbound.client(Duration::from_secs(5)),
            outbound,
            seen: Seen::new(),
            evaluating: tokio::sync::Mutex::new(()),
        }
    }

    /// Checks a rule's webhook against the outbound allowlist before it
    /// is stored (names are checked again at every delivery).
    pub fn check_webhook(&self, rule: &AlertRule) -> Result<(), String> {
        match &rule.webhook {
            Some(url) => self.outbound.check_url(url).map(|_| ()).map_err(|error| format!("webhook: {error}")),
            None => Ok(()),
        }
    }

    /// Reloads the rules and their states when the store's revisions of
    /// them moved (a write through any replica), and the health they set.
    pub(crate) async fn sync(&self, service: &SignalsService) -> Result<(), StoreError> {
        let store = service.store();
        let revisions = store.cache_revisions().await?;
        let fingerprint = (revisions.alert_rules, revisions.alert_states);
        if self.seen.is(&fingerprint) {
            return Ok(());
        }
        let mut rules = BTreeMap::new();
        for (id, body) in store.list_alert_rules().await? {
            match serde_json::from_str::<AlertRule>(&body) {
                Ok(rule) => {
                    rules.insert(id, rule);
                }
                Err(error) => tracing::error!(rule = %id, %error, "stored alert rule is unreadable; skipped"),
            }
        }
        let states: HashMap<String, RuleState> = store
            .alert_states()
            .await?
            .into_iter()
            .filter_map(|row| serde_json::from_str::<RuleState>(&row.body).ok().map(|state| (row.rule_id, state)))
            .collect();
        *self.rules.write() = rules;
        *self.states.write() = states;
        self.rebuild_health(service);
        self.seen.set(fingerprint);
        Ok(())
    }

    /// The health every enabled rule with a state sets, from the rules and
    /// states held (so every replica shows what the leader evaluated).
    fn rebuild_health(&self, service: &SignalsService) {
        let mut health: HashMap<String, Vec<Watch>> = HashMap::new();
        {
            let rules = self.rules.read();
            let states = self.states.read();
            for rule in rules.values().filter(|r| r.enabled) {
                let Some(state) = states.get(&rule.id) else { continue };
                let Some(key) = rule.health_key(service) else { continue };
                let firing = state.state == Condition::Firing;
                health.entry(key).or_default().push((rule.id.clone(), rule.severity.clone(), firing));
            }
        }
        *self.health.write() = health;
    }

    pub async fn put(&self, store: &Store, rule: AlertRule) -> Result<(), StoreError> {
        let body = serde_json::to_string(&rule).unwrap_or_default();
        store.put_alert_rule(&rule.id, &body, now_s()).await?;
        self.rules.write().insert(rule.id.clone(), rule);
        Ok(())
    }

    pub async fn delete(&self, store: &Store, id: &str) -> Result<bool, StoreError> {
        let deleted = store.delete_alert_rule(id).await?;
        store.delete_alert_state(id).await?;
        self.rules.write().remove(id);
        self.states.write().remove(id);
        for entries in self.health.write().values_mut() {
            entries.retain(|(rule, _, _)| rule != id);
        }
        Ok(deleted)
    }

    /// Every rule with its last evaluation (`null` before the first).
    pub fn rules_with_state(&self) -> Vec<(AlertRule, Value)> {
        let states = self.states.read();
        self.rules
            .read()
            .values()
            .map(|rule| (rule.clone(), serde_json::to_value(states.get(&rule.id)).unwrap_or(Value::Null)))
            .collect()
    }

    pub fn health(&self) -> Vec<HealthEntry> {
        let health = self.health.read();
        let mut out: Vec<HealthEntry> = health.keys().map(|key| entry(key, health.get(key))).collect();
        out.sort_by(|a, b| a.entity.cmp(&b.entity));
        out
    }

    pub fn health_of(&self, key: &str) -> HealthEntry {
        entry(key, self.health.read().get(key))
    }

    /// `healthy` / `degraded` / `unhealthy` of an entity watched by rules.
    pub fn level_of(&self, key: &str) -> Option<(String, Vec<String>)> {
        let health = self.health.read();
        let entries = health.get(key)?;
        let e = entry(key, Some(entries));
        Some((e.health, e.firing))
    }
}

fn entry(key: &str, entries: Option<&Vec<Watch>>) -> HealthEntry {
    let entries = entries.cloned().unwrap_or_default();
    let firing: Vec<&Watch> = entries.iter().filter(|(_, _, f)| *f).collect();
    let health = if entries.is_empty() {
        "unknown"
    } else if firing.iter().any(|(_, s, _)| s == "unhealthy") {
        "unhealthy"
    } else if !firing.is_empty() {
        "degraded"
    } else {
        "healthy"
    };
    HealthEntry {
        entity: key.to_string(),
        health: health.to_string(),
        firing: firing.iter().map(|(r, _, _)| r.clone()).collect(),
        rules: entries.iter().map(|(r, _, _)| r.clone()).collect(),
    }
}

fn compare(op: &str, value: f64, threshold: f64) -> bool {
    match op {
        ">" => value > threshold,
        ">=" => value >= threshold,
        "<" => value < threshold,
        _ => value <= threshold,
    }
}

/// Evaluates every enabled rule once (`POST /api/signals/alerts/evaluate`,
/// tests). On the replica leading [`Job::Alerts`] the writes are fenced by
/// its term; on another, the conditional updates alone keep each
/// transition recorded (and delivered) once.
pub async fn evaluate_once(service: &Arc<SignalsService>) {
    let term = service.leadership().term(Job::Alerts);
    evaluate(service, term.as_ref()).await;
}

/// A rule's state as the evaluation read it from the store.
struct Stored {
    state: RuleState,
    since_s: i64,
    revision: i64,
}

/// The stored state of every rule (the truth a new leader continues from).
async fn stored_states(store: &Store) -> Result<HashMap<String, Stored>, StoreError> {
    let mut out = HashMap::new();
    for row in store.versioned_alert_states().await? {
        match serde_json::from_str::<RuleState>(&row.row.body) {
            Ok(state) => {
                out.insert(row.row.rule_id, Stored { state, since_s: row.row.since_s, revision: row.revision });
            }
            Err(error) => tracing::warn!(rule = %row.row.rule_id, %error, "stored alert state is unreadable; replaced"),
        }
    }
    Ok(out)
}

/// Evaluates every enabled rule once, from the stored states. `term`: the
/// lease term of this replica's leadership of alerts, which fences every
/// write and allows delivering what a dead leader left pending.
async fn evaluate(service: &Arc<SignalsService>, term: Option<&LeaderTerm>) {
    let engine = &service.alerts;
    let _one = engine.evaluating.lock().await;
    if let Err(error) = engine.sync(service).await {
        tracing::warn!(%error, "alert rules could not be reloaded; evaluating the ones held");
    }
    let mut stored = match stored_states(service.store()).await {
        Ok(stored) => stored,
        Err(error) => {
            tracing::warn!(%error, "alert states could not be read; rules not evaluated");
            return;
        }
    };
    if let Some(term) = term {
        deliver_pending(service, term).await;
    }
    let fence = term.map(LeaderTerm::fence);
    let rules: Vec<AlertRule> = engine.rules.read().values().filter(|r| r.enabled).cloned().collect();
    let now = now_s();
    for rule in rules {
        if term.is_some_and(|t| !t.holds()) {
            tracing::info!("no longer leading alert evaluation; stopped");
            break;
        }
        let window = window_seconds(&rule.window).unwrap_or(300);
        let rows = match load_rows(service, &rule.filter(), now - window, now + 60).await {
            Ok(rows) => rows,
            Err(error) => {
                tracing::warn!(rule = %rule.id, %error, "alert rule not evaluated");
                continue;
            }
        };
        let mut cell = Cell::default();
        for row in &rows {
            let in_scope = match rule.scope.as_str() {
                "model_calls" => is_model_call(&row.key.operation),
                "server" => row.key.operation == SERVER_OPERATION,
                "all" => true,
                op => row.key.operation == op,
            };
            if in_scope && row.bucket >= now - window - 60 {
                cell.merge(&plinth_telemetry::rollup::Cell::from_row(row));
            }
        }
        let (value, firing, message) = if cell.requests < rule.min_requests {
            (
                None,
                false,
                format!("{} requests in {} (below min_requests {})", cell.requests, rule.window, rule.min_requests),
            )
        } else if let Some(slo) = &rule.slo {
            let bad = cell.errors as f64 / cell.requests as f64;
            let burn = bad / (1.0 - slo.objective);
            (
                Some(burn),
                burn >= slo.burn_rate,
                format!(
                    "availability {:.4} over {} (objective {}): error budget burning at {:.2}× (limit {}×)",
                    1.0 - bad,
                    rule.window,
                    slo.objective,
                    burn,
                    slo.burn_rate
                ),
            )
        } else {
            let threshold = rule.threshold.unwrap_or(0.0);
            match metric_value(&cell, &rule.signal) {
                Some(value) => (
                    Some(value),
                    compare(&rule.op, value, threshold),
                    format!("{} = {:.4} over {} ({} {})", rule.signal, value, rule.window, rule.op, threshold),
                ),
                None => (None, false, format!("{} has no value over {}", rule.signal, rule.window)),
            }
        };
        let new_state = if value.is_none() {
            Condition::NoData
        } else if firing {
            Condition::Firing
        } else {
            Condition::Ok
        };
        let previous = stored.remove(&rule.id);
        let changed = previous.as_ref().map(|p| p.state.state) != Some(new_state);
        let state = RuleState {
            state: new_state,
            since: if changed {
                rfc3339(now)
            } else {
                previous.as_ref().map(|p| p.state.since.clone()).unwrap_or_default()
            },
            value,
            message: message.clone(),
            evaluated: rfc3339(now),
        };
        let was_firing = previous.as_ref().is_some_and(|p| p.state.state == Condition::Firing);
        let transition =
            (firing != was_firing).then_some(if firing { Transition::Firing } else { Transition::Resolved });
        if transition.is_none() && !changed && previous.as_ref().map(|p| p.state.value) == Some(value) {
            // Nothing to store: only the evaluation time moved.
            engine.states.write().insert(rule.id.clone(), state);
            continue;
        }
        let event = transition.map(|t| {
            json!({
                "rule": rule.id, "name": rule.name, "state": t.as_str(), "severity": rule.severity,
                "entity": rule.health_key(service), "signal": rule.signal, "value": value,
                "threshold": rule.threshold, "window": rule.window, "message": message, "at": rfc3339(now),
            })
        });
        let row = AlertStateRow {
            rule_id: rule.id.clone(),
            state: new_state.as_str().to_string(),
            since_s: if changed { now } else { previous.as_ref().map_or(now, |p| p.since_s) },
            body: serde_json::to_string(&state).unwrap_or_default(),
        };
        let new_event = match (transition, &event) {
            (Some(t), Some(event)) => {
                let mut recorded = event.clone();
                if rule.webhook.is_some() {
                    recorded["webhook"] = json!({ "pending": true });
                }
                Some(NewAlertEvent {
                    at_s: now,
                    state: t.as_str().to_string(),
                    body: recorded.to_string(),
                    webhook: rule.webhook.is_some(),
                })
            }
            _ => None,
        };
        let step =
            AlertTransition { state: row, from_revision: previous.as_ref().map(|p| p.revision), event: new_event };
        match service.store().transition_alert(&step, fence).await {
            Ok(Some(applied)) => {
                engine.states.write().insert(rule.id.clone(), state);
                if let (Some(t), Some(event), Some(id)) = (transition, event, applied.event_id) {
                    tracing::warn!(rule = %rule.id, state = t.as_str(), %message, "alert");
                    if let Some(url) = &rule.webhook {
                        deliver_event(service, id, url, event).await;
                    }
                }
            }
            Ok(None) => tracing::info!(
                rule = %rule.id,
                "alert state not stored: another evaluation stored this rule first, or this replica no longer leads \
                 alerts; the stored state stands"
            ),
            Err(error) => {
                tracing::error!(rule = %rule.id, %error, "alert state not stored; retried at the next evaluation")
            }
        }
    }
    engine.rebuild_health(service);
}

/// Posts one recorded event to `url` and records how it went (the event's
/// id lets a receiver recognise a repeat).
async fn deliver_event(service: &SignalsService, id: i64, url: &str, mut event: Value) {
    event["event_id"] = json!(id);
    let outcome = deliver(&service.alerts, url, &event).await;
    event["webhook"] = outcome;
    match service.store().finish_alert_delivery(id, &event.to_string()).await {
        Ok(true) => {}
        Ok(false) => tracing::info!(event = id, "alert delivery was finished elsewhere"),
        Err(error) => tracing::error!(event = id, %error, "alert delivery outcome not recorded"),
    }
}

/// Delivers the webhooks a replica that died left pending (leader only).
async fn deliver_pending(service: &SignalsService, term: &LeaderTerm) {
    let pending = match service.store().pending_alert_deliveries(now_s() - PENDING_GRACE_S, 100).await {
        Ok(pending) => pending,
        Err(error) => {
            tracing::warn!(%error, "pending alert deliveries could not be read");
            return;
        }
    };
    for row in pending {
        if !term.holds() {
            return;
        }
        let mut event: Value = serde_json::from_str(&row.body).unwrap_or_else(|_| json!({}));
        if let Some(object) = event.as_object_mut() {
            object.remove("webhook");
        }
        let url = service.alerts.rules.read().get(&row.rule_id).and_then(|r| r.webhook.clone());
        match url {
            Some(url) => {
                tracing::info!(event = row.id, rule = %row.rule_id, "delivering an alert a previous leader left pending");
                deliver_event(service, row.id, &url, event).await;
            }
            None => {
                event["webhook"] = json!({ "delivered": false, "error": "the rule or its webhook was removed before delivery", "attempts": 0 });
                if let Err(error) = service.store().finish_alert_delivery(row.id, &event.to_string()).await {
                    tracing::warn!(event = row.id, %error, "alert delivery outcome not recorded");
                }
            }
        }
    }
}

/// Posts an alert; three tries with back-off. Returns the delivery result.
async fn deliver(engine: &AlertEngine, url: &str, event: &Value) -> Value {
    let client = &engine.client;
    if let Err(error) = engine.outbound.check_url(url) {
        tracing::warn!(%error, "alert webhook refused by the outbound allowlist");
        return json!({ "delivered": false, "error": error.to_string(), "attempts": 0 });
    }
    let mut last_error = String::new();
    for attempt in 0..3u32 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_millis(200 * 2u64.pow(attempt))).await;
        }
        match client.post(url).json(event).send().await {
            Ok(response) if response.status().is_success() => {
                return json!({ "delivered": true, "status": response.status().as_u16(), "attempts": attempt + 1 })
            }
            Ok(response) => last_error = format!("HTTP {}", response.status()),
            Err(error) => last_error = error_chain(&error),
        }
    }
    let url = plinth_confine::git::hide_credentials(url);
    tracing::warn!(%url, error = %last_error, "alert webhook not delivered");
    json!({ "delivered": false, "error": last_error, "attempts": 3 })
}

/// An error and its causes on one line ("refused by the outbound
/// allowlist" is a cause of reqwest's "error sending request").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Evaluates the rules at the configured interval on the replica that
/// leads [`Job::Alerts`] (at once when it takes the lease over).
pub(crate) fn spawn_evaluation(service: &Arc<SignalsService>) {
    let weak = Arc::downgrade(service);
    let interval = service.config.alert_interval;
    service.leadership().spawn_job(Job::Alerts, interval, move |term| {
        let weak = weak.clone();
        async move {
            let Some(service) = weak.upgrade() else { return Flow::Stop };
            evaluate(&service, Some(&term)).await;
            Flow::Continue
        }
    });
}
