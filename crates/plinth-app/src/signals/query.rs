//! Which rollup rows a question is about: the filter a caller gives
//! (service, team, model, prompt, agent, entity, operation, source),
//! resolved against the catalogue, and the time range, planned over the
//! day, hour and minute tables.

use plinth_model::parse_ref_lenient;
use plinth_store::{Resolution, RollupQuery, RollupRow};
use plinth_telemetry::attribution::Attribution;
use plinth_telemetry::metrics::METRICS_PREFIX;
use time::OffsetDateTime;

use super::service::{now_s, SignalsService};
use crate::{AppError, AppResult};

/// The longest range a query may span (the rollup retention).
pub const MAX_RANGE_DAYS: i64 = 400;

/// What a caller filters signals by. Every field is optional; names may
/// be plain or entity refs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignalQuery {
    /// Any Component, Group, Model, Prompt or Agent ref.
    pub entity: Option<String>,
    /// `service.name`, or a Component ref.
    pub service: Option<String>,
    /// A Group ref.
    pub team: Option<String>,
    /// A model name as reported, or a Model ref.
    pub model: Option<String>,
    /// A Prompt name or ref, optionally `name@version`.
    pub prompt: Option<String>,
    pub prompt_version: Option<String>,
    /// An Agent name or ref.
    pub agent: Option<String>,
    /// Only this operation (`chat`, `server`, …); default: model calls.
    pub operation: Option<String>,
    /// `spans` (default) or `metrics`.
    pub source: Option<String>,
}

/// A time range: `from` and `to`, each optional.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TimeRange {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
}

impl TimeRange {
    /// `[from, to)` in seconds; `to` defaults to now, `from` to
    /// `default_hours` before `to`.
    pub fn resolve(&self, default_hours: i64) -> AppResult<(i64, i64)> {
        let to = self.to.map(|t| t.unix_timestamp()).unwrap_or_else(|| now_s() + 60);
        let from = self.from.map(|t| t.unix_timestamp()).unwrap_or(to - default_hours * 3600);
        if from >= to {
            return Err(AppError::invalid_field("from", "`from` must be before `to`"));
        }
        if to - from > MAX_RANGE_DAYS * 86_400 {
            return Err(AppError::invalid(format!(
                "the range may span at most {MAX_RANGE_DAYS} days (rollup retention)"
            )));
        }
        Ok((from, to))
    }
}

/// Which rows a request is about, resolved against the catalogue.
#[derive(Debug, Clone, Default)]
pub struct SignalFilter {
    pub query: RollupQuery,
    /// A Model ref: rows whose model name maps to it.
    pub model_ref: Option<String>,
    /// Read metric-derived rows instead of span-derived ones.
    pub metrics: bool,
}

impl SignalFilter {
    pub(crate) fn keeps(&self, row: &RollupRow, attribution: &Attribution) -> bool {
        if row.key.operation.starts_with(METRICS_PREFIX) != self.metrics {
            return false;
        }
        match &self.model_ref {
            Some(model_ref) => attribution.model_ref(&row.key.model) == Some(model_ref.as_str()),
            None => true,
        }
    }

    /// Resolves what the caller asked for.
    pub fn resolve(input: &SignalQuery) -> AppResult<SignalFilter> {
        let mut filter = SignalFilter::default();
        let q = &mut filter.query;
        let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        if let Some(entity) = given(&input.entity) {
            let entity_ref = parse_ref_lenient(&entity, None).map_err(|e| {
                AppError::invalid_field("entity", format!("`{entity}` is not an entity reference: {e}"))
            })?;
            match entity_ref.kind.as_str() {
                "component" => q.component = Some(entity_ref.to_string()),
                "group" => q.team = Some(entity_ref.to_string()),
                "model" => filter.model_ref = Some(entity_ref.to_string()),
                "prompt" => q.prompt = Some(entity_ref.name.clone()),
                "agent" => q.agent = Some(entity_ref.name.clone()),
                other => {
                    return Err(AppError::invalid_field(
                        "entity",
                        format!(
                            "an entity of kind {other} has no signals; use a Component, Group, Model, Prompt or Agent"
                        ),
                    ))
                }
            }
        }
        if let Some(service) = given(&input.service) {
            if service.contains(':') {
                q.component = Some(full_ref(&service, "component", "service")?);
            } else {
                q.service = Some(service);
            }
        }
        if let Some(team) = given(&input.team) {
            q.team = Some(full_ref(&team, "group", "team")?);
        }
        if let Some(model) = given(&input.model) {
            if model.starts_with("model:") {
                filter.model_ref = Some(full_ref(&model, "model", "model")?);
            } else {
                q.model = Some(model);
            }
        }
        if let Some(prompt) = given(&input.prompt) {
            let (name, version) = match prompt.rsplit_once('@') {
                Some((name, version)) => (name.to_string(), Some(version.to_string())),
                None => (prompt.clone(), None),
            };
            q.prompt = Some(entity_name(&name, "prompt", "prompt")?);
            q.prompt_version = version;
        }
        if let Some(version) = given(&input.prompt_version) {
            q.prompt_version = Some(version);
        }
        if let Some(agent) = given(&input.agent) {
            q.agent = Some(entity_name(&agent, "agent", "agent")?);
        }
        if let Some(operation) = given(&input.operation) {
            q.operation = Some(operation.to_ascii_lowercase());
        }
        match given(&input.source).as_deref() {
            None | Some("spans") => {}
            Some("metrics") => filter.metrics = true,
            Some(other) => {
                return Err(AppError::invalid_field("source", format!("`spans` (default) or `metrics`, not `{other}`")))
            }
        }
        if filter.metrics {
            if let Some(op) = filter.query.operation.take() {
                filter.query.operation = Some(format!("{METRICS_PREFIX}{op}"));
            }
        }
        Ok(filter)
    }
}

/// A name given plainly or as a ref (`prompt:default/x` → `x`).
pub(crate) fn entity_name(raw: &str, kind: &str, field: &str) -> AppResult<String> {
    if raw.contains(':') || raw.contains('/') {
        let entity_ref = parse_ref_lenient(raw, Some(kind))
            .map_err(|e| AppError::invalid_field(field, format!("`{raw}` is not an entity reference: {e}")))?;
        Ok(entity_ref.name.clone())
    } else {
        Ok(raw.to_string())
    }
}

fn full_ref(raw: &str, kind: &str, field: &str) -> AppResult<String> {
    parse_ref_lenient(raw, Some(kind))
        .map(|r| r.to_string())
        .map_err(|e| AppError::invalid_field(field, format!("`{raw}` is not an entity reference: {e}")))
}

/// Rows of `[from, to)`: whole days and hours from their tables, edges
/// from the minute table; filtered by the request.
pub async fn load_rows(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    load_rows_upto(service, filter, from_s, to_s, 86_400).await
}

/// As [`load_rows`], with buckets no coarser than `coarsest` seconds.
pub async fn load_rows_upto(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
    coarsest: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    // A range reaching the present can read the current hour or day as a
    // whole bucket (nothing is stored past now, bar clock skew): far fewer
    // rows than minute-by-minute edges.
    let now = now_s();
    let to_s =
        if to_s >= now && to_s - now <= 3600 { to_s + (coarsest - to_s.rem_euclid(coarsest)) % coarsest } else { to_s };
    let plan = plinth_telemetry::query::plan_range_upto(from_s, to_s, coarsest);
    let mut rows = Vec::new();
    if let Some((from, to)) = plan.days {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Day, &query).await?);
    }
    for (from, to) in plan.hours {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Hour, &query).await?);
    }
    for (from, to) in plan.minutes {
        let query = RollupQuery { from_s: from, to_s: to, ..filter.query.clone() };
        rows.extend(service.store().rollups(Resolution::Minute, &query).await?);
    }
    let attribution = service.attribution();
    rows.retain(|row| filter.keeps(row, &attribution));
    if filter.metrics {
        for row in &mut rows {
            if let Some(op) = row.key.operation.strip_prefix(METRICS_PREFIX) {
                row.key.operation = op.to_string();
            }
        }
    }
    Ok(rows)
}

/// About 60 points over `span` seconds, on a step rollups can serve.
pub fn default_step(span: i64) -> i64 {
    let raw = (span / 60).max(60);
    [60, 300, 900, 3600, 21_600, 86_400].into_iter().find(|s| *s >= raw).unwrap_or(86_400)
}

/// The rows a series of `step` seconds over a planned range is built from
/// (model calls only unless the filter names an operation).
pub(crate) async fn series_rows(
    service: &SignalsService,
    filter: &SignalFilter,
    from_s: i64,
    to_s: i64,
    step: i64,
) -> Result<Vec<RollupRow>, plinth_store::StoreError> {
    // Day and hour rows only serve steps they divide; finer steps read minutes.
    let rows = if step % 3600 == 0 {
        load_rows_upto(service, filter, from_s, to_s, if step % 86_400 == 0 { 86_400 } else { 3600 }).await?
    } else {
        let query = RollupQuery { from_s, to_s, ..filter.query.clone() };
        let found = service.store().rollups(Resolution::Minute, &query).await?;
        let attribution = service.attribution();
        found.into_iter().filter(|r| filter.keeps(r, &attribution)).collect()
    };
    let default_scope = filter.query.operation.is_none();
    Ok(rows
        .into_iter()
        .filter(|r| !default_scope || plinth_telemetry::query::is_model_call(&r.key.operation))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_resolve_names_and_refs() {
        let input = SignalQuery {
            entity: Some("model:default/openai-gpt-4o".into()),
            service: Some("component:checkout".into()),
            prompt: Some("prompt:default/support@v2".into()),
            operation: Some("Chat".into()),
            source: Some("metrics".into()),
            ..SignalQuery::default()
        };
        let filter = SignalFilter::resolve(&input).unwrap();
        assert_eq!(filter.model_ref.as_deref(), Some("model:default/openai-gpt-4o"));
        assert_eq!(filter.query.component.as_deref(), Some("component:default/checkout"));
        assert_eq!(filter.query.prompt.as_deref(), Some("support"));
        assert_eq!(filter.query.prompt_version.as_deref(), Some("v2"));
        assert_eq!(filter.query.operation.as_deref(), Some("metrics:chat"));
        assert!(filter.metrics);
    }

    #[test]
    fn bad_filters_name_their_field() {
        let error =
            SignalFilter::resolve(&SignalQuery { entity: Some("api:x".into()), ..Default::default() }).unwrap_err();
        assert_eq!(error.fields[0].field, "entity");
        let error =
            SignalFilter::resolve(&SignalQuery { source: Some("logs".into()), ..Default::default() }).unwrap_err();
        assert_eq!(error.fields[0].field, "source");
        let now = OffsetDateTime::now_utc();
        let backwards = TimeRange { from: Some(now), to: Some(now - time::Duration::hours(1)) };
        assert_eq!(backwards.resolve(24).unwrap_err().fields[0].field, "from");
        let long = TimeRange { from: Some(now - time::Duration::days(500)), to: Some(now) };
        assert!(long.resolve(24).is_err());
    }
}
