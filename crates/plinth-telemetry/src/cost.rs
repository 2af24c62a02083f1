//! Cost views over hourly rollups: the hourly series the anomaly detector
//! reads, and per-team cost roll-ups.

use std::collections::BTreeMap;

use crate::records::RollupRow;
use serde::Serialize;

use crate::anomaly::{self, AnomalyConfig, HourlyCell};
use crate::query::{is_model_call, rfc3339, round_usd};

/// Hourly cells per (team, service) from hour rollup rows (span-derived
/// rows only). Model calls give requests, tokens and cost; tool and agent
/// spans give the tool-calls-per-run driver.
pub fn hourly_series(rows: &[RollupRow]) -> BTreeMap<(String, String), Vec<HourlyCell>> {
    let mut cells: BTreeMap<(String, String), BTreeMap<i64, HourlyCell>> = BTreeMap::new();
    for row in rows {
        let key = &row.key;
        if key.operation.starts_with(crate::metrics::METRICS_PREFIX) || key.operation == "server" {
            continue;
        }
        let hour = row.bucket - row.bucket.rem_euclid(3600);
        let cell = cells
            .entry((key.team.clone(), key.service.clone()))
            .or_default()
            .entry(hour)
            .or_insert_with(|| HourlyCell { hour_s: hour, ..HourlyCell::default() });
        match key.operation.as_str() {
            "execute_tool" => cell.tool_calls += row.requests as f64,
            "invoke_agent" => cell.agent_runs += row.requests as f64,
            op if is_model_call(op) => {
                cell.requests += row.requests as f64;
                cell.input_tokens += row.input_tokens as f64;
                cell.output_tokens += row.output_tokens as f64;
                cell.cache_read_tokens += row.cache_read_tokens as f64;
                cell.reasoning_tokens += row.reasoning_tokens as f64;
                cell.cost_usd += row.cost_usd;
                let model = cell.by_model.entry(key.model.clone()).or_default();
                model.requests += row.requests as f64;
                model.tokens += (row.input_tokens + row.output_tokens) as f64;
                model.cost_usd += row.cost_usd;
            }
            _ => {}
        }
    }
    cells.into_iter().map(|(key, hours)| (key, hours.into_values().collect())).collect()
}

/// One anomaly with the series it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct CostAnomaly {
    pub team: Option<String>,
    pub service: String,
    /// Start of the anomalous hour (RFC 3339).
    pub hour: String,
    /// Models that carried the cost in that hour, most expensive first.
    pub models: Vec<String>,
    #[serde(flatten)]
    pub anomaly: anomaly::Anomaly,
}

/// Anomalies of every series in `[from_s, to_s)`, ranked by dollar impact.
pub fn anomalies(rows: &[RollupRow], from_s: i64, to_s: i64, config: &AnomalyConfig) -> Vec<CostAnomaly> {
    let mut out = Vec::new();
    for ((team, service), cells) in hourly_series(rows) {
        for found in anomaly::detect(&cells, from_s, to_s, config) {
            let mut models: Vec<(String, f64)> = cells
                .iter()
                .find(|c| c.hour_s == found.hour_s)
                .map(|c| c.by_model.iter().map(|(m, u)| (m.clone(), u.cost_usd)).collect())
                .unwrap_or_default();
            models.sort_by(|a, b| b.1.total_cmp(&a.1));
            out.push(CostAnomaly {
                team: (!team.is_empty()).then(|| team.clone()),
                service: service.clone(),
                hour: rfc3339(found.hour_s),
                models: models.into_iter().map(|(m, _)| m).filter(|m| !m.is_empty()).collect(),
                anomaly: found,
            });
        }
    }
    out.sort_by(|a, b| b.anomaly.impact_usd.total_cmp(&a.anomaly.impact_usd));
    out
}

#[derive(Debug, Clone, Serialize)]
pub struct CostLine {
    pub name: String,
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
}

/// A team's cost over a range.
#[derive(Debug, Clone, Serialize)]
pub struct TeamCost {
    /// The owning Group's ref; `null` for services no catalogue Component claims.
    pub team: Option<String>,
    pub title: Option<String>,
    pub cost_center: Option<String>,
    pub requests: i64,
    pub tokens: i64,
    pub cost_usd: f64,
    pub services: Vec<CostLine>,
    pub models: Vec<CostLine>,
    /// Daily cost (RFC 3339 day start, USD).
    pub daily: Vec<(String, f64)>,
}

/// Cost per team (model calls, span-derived), most expensive first.
pub fn team_costs(rows: &[RollupRow], from_s: i64, to_s: i64) -> Vec<TeamCost> {
    #[derive(Default)]
    struct Acc {
        requests: i64,
        tokens: i64,
        cost: f64,
        services: BTreeMap<String, (i64, i64, f64)>,
        models: BTreeMap<String, (i64, i64, f64)>,
        daily: BTreeMap<i64, f64>,
    }
    let mut teams: BTreeMap<String, Acc> = BTreeMap::new();
    for row in rows {
        let key = &row.key;
        if row.bucket < from_s || row.bucket >= to_s || !is_model_call(&key.operation) || key.operation.contains(':') {
            continue;
        }
        let acc = teams.entry(key.team.clone()).or_default();
        let tokens = row.input_tokens + row.output_tokens;
        acc.requests += row.requests;
        acc.tokens += tokens;
        acc.cost += row.cost_usd;
        for (map, name) in [(&mut acc.services, &key.service), (&mut acc.models, &key.model)] {
            let line = map.entry(name.clone()).or_default();
            line.0 += row.requests;
            line.1 += tokens;
            line.2 += row.cost_usd;
        }
        *acc.daily.entry(row.bucket - row.bucket.rem_euclid(86_400)).or_default() += row.cost_usd;
    }
    let lines = |map: BTreeMap<String, (i64, i64, f64)>| {
        let mut out: Vec<CostLine> = map
            .into_iter()
            .map(|(name, (requests, tokens, cost))| CostLine { name, requests, tokens, cost_usd: round_usd(cost) })
            .collect();
        out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd));
        out
    };
    let mut out: Vec<TeamCost> = teams
        .into_iter()
        .map(|(team, acc)| TeamCost {
            team: (!team.is_empty()).then_some(team),
            title: None,
            cost_center: None,
            requests: acc.requests,
            tokens: acc.tokens,
            cost_usd: round_usd(acc.cost),
            services: lines(acc.services),
            models: lines(acc.models),
            daily: acc.daily.into_iter().map(|(day, cost)| (rfc3339(day), round_usd(cost))).collect(),
        })
        .collect();
    out.sort_by(|a, b| b.cost_usd.total_cmp(&a.cost_usd));
    out
}

/// The default anomaly settings, overridable per request.
pub fn default_config() -> AnomalyConfig {
    AnomalyConfig::default()
}
