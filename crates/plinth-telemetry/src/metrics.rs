//! OTLP metrics: the GenAI client/server metrics and HTTP/RPC server
//! duration histograms, turned into rollup rows.
//!
//! Metric rows carry the operation `metrics:<operation>` so they never mix
//! with span-derived rows (an application that exports both would otherwise
//! be counted twice); summaries read them with `source=metrics`.
//! Cumulative series are turned into deltas against the last point seen
//! for the same series (bounded memory); a restart of the series (new start
//! time or a smaller count) starts over from its own value.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Mutex;

use crate::records::{RollupKey, RollupRow};
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value::Value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{metric::Data, AggregationTemporality, HistogramDataPoint};

use crate::attribution::Attribution;
use crate::genai::Usage;
use crate::prices::PriceTable;
use crate::rollup::Cell;

/// Prefix of the operation dimension of metric-derived rows.
pub const METRICS_PREFIX: &str = "metrics:";

/// Rows from one metrics export.
#[derive(Debug, Default)]
pub struct MetricRows {
    pub minutes: Vec<RollupRow>,
    pub hours: Vec<RollupRow>,
    pub accepted: i64,
    pub rejected: i64,
    pub rejection: String,
}

#[derive(Clone)]
struct Previous {
    start: u64,
    count: u64,
    sum: f64,
    buckets: Vec<u64>,
}

/// Last cumulative point per series, bounded (cleared when full).
///
/// The first point of a series is only a reference unless the series
/// started after this process did (then all of it is new) — like the
/// Collector's `cumulativetodelta` with `initial_value: auto`. Otherwise a
/// restart of Plinth, or a cleared map, would count a service's whole
/// history again.
pub struct CumulativeState {
    capacity: usize,
    started_ns: u64,
    last: Mutex<HashMap<u64, Previous>>,
}

impl CumulativeState {
    pub fn new(capacity: usize, started_ns: u64) -> CumulativeState {
        CumulativeState { capacity, started_ns, last: Mutex::new(HashMap::new()) }
    }
}

enum Kind {
    Tokens,
    Duration,
    Ttft,
}

fn classify(name: &str) -> Option<(Kind, f64, bool)> {
    // (kind, multiplier to milliseconds for durations, server RED)
    match name {
        "gen_ai.client.token.usage" | "gen_ai.client.inference.token.usage" | "gen_ai.server.token.usage" => {
            Some((Kind::Tokens, 1.0, false))
        }
        "gen_ai.client.operation.duration"
        | "gen_ai.client.inference.operation.duration"
        | "gen_ai.server.request.duration" => Some((Kind::Duration, 1000.0, false)),
        "gen_ai.server.time_to_first_token"
        | "gen_ai.client.inference.time_to_first_token"
        | "gen_ai.client.inference.time_to_first_chunk"
        | "gen_ai.client.operation.time_to_first_chunk" => Some((Kind::Ttft, 1000.0, false)),
        "http.server.request.duration" => Some((Kind::Duration, 1000.0, true)),
        "http.server.duration" | "rpc.server.duration" => Some((Kind::Duration, 1.0, true)),
        _ => None,
    }
}

fn attr<'a>(attributes: &'a [KeyValue], keys: &[&str]) -> Option<&'a str> {
    keys.iter().find_map(|key| {
        attributes.iter().find(|kv| kv.key == *key).and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        })
    })
}

/// A 5xx `http.response.status_code` (an integer, or a string from some SDKs).
fn server_error(attributes: &[KeyValue]) -> bool {
    attributes.iter().filter(|kv| kv.key == "http.response.status_code" || kv.key == "http.status_code").any(|kv| {
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::IntValue(code)) => *code >= 500,
            Some(Value::StringValue(code)) => code.starts_with('5'),
            _ => false,
        }
    })
}

fn series_id(service: &str, metric: &str, attributes: &[KeyValue]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    service.hash(&mut hasher);
    metric.hash(&mut hasher);
    for kv in attributes {
        kv.key.hash(&mut hasher);
        if let Some(value) = kv.value.as_ref() {
            format!("{:?}", value.value).hash(&mut hasher);
        }
    }
    hasher.finish()
}

/// Reads the recognised metrics of an export into rollup rows.
pub fn metric_rows(
    request: &ExportMetricsServiceRequest,
    attribution: &Attribution,
    prices: &PriceTable,
    state: &CumulativeState,
) -> MetricRows {
    let mut out = MetricRows::default();
    // Keyed by the client's text: foldhash, seeded per process.
    let mut minutes: foldhash::HashMap<(i64, RollupKey), Cell> = foldhash::HashMap::default();
    let mut hours: foldhash::HashMap<(i64, RollupKey), Cell> = foldhash::HashMap::default();
    let mut last = state.last.lock().unwrap_or_else(|e| e.into_inner());
    if last.len() > state.capacity {
        last.clear();
    }
    for resource_metrics in &request.resource_metrics {
        let resource_attributes = resource_metrics.resource.as_ref().map(|r| r.attributes.as_slice()).unwrap_or(&[]);
        let service = attr(resource_attributes, &["service.name"]).unwrap_or("unknown_service");
        let owner = attribution.service(service);
        for scope in &resource_metrics.scope_metrics {
            for metric in &scope.metrics {
                let Some((kind, to_ms, server)) = classify(&metric.name) else { continue };
                let Some(Data::Histogram(histogram)) = &metric.data else {
                    out.rejected += 1;
                    if out.rejection.is_empty() {
                        out.rejection = format!("metric `{}` must be a histogram", metric.name);
                    }
                    continue;
                };
                let cumulative = histogram.aggregation_temporality == AggregationTemporality::Cumulative as i32;
                for point in &histogram.data_points {
                    out.accepted += 1;
                    let id = series_id(service, &metric.name, &point.attributes);
                    let Some((count, sum, buckets)) = delta(&mut last, cumulative, id, point, state.started_ns) else {
                        continue;
                    };
                    if count == 0 {
                        continue;
                    }
                    let attributes = &point.attributes;
                    let operation = if server {
                        "server".to_string()
                    } else {
                        attr(attributes, &["gen_ai.operation.name"]).unwrap_or("chat").to_ascii_lowercase()
                    };
                    let model = attr(attributes, &["gen_ai.response.model", "gen_ai.request.model"]).unwrap_or("");
                    let provider = attr(attributes, &["gen_ai.provider.name", "gen_ai.system"]).unwrap_or("");
                    let key = RollupKey {
                        service: service.to_string(),
                        component: owner.map(|o| o.component.clone()).unwrap_or_default(),
                        team: owner.map(|o| o.team.clone()).unwrap_or_default(),
                        provider: provider.to_string(),
                        model: model.to_string(),
                        operation: format!("{METRICS_PREFIX}{operation}"),
                        prompt: attr(attributes, &["gen_ai.prompt.name"]).unwrap_or("").to_string(),
                        prompt_version: attr(attributes, &["gen_ai.prompt.version"]).unwrap_or("").to_string(),
                        agent: attr(attributes, &["gen_ai.agent.name"]).unwrap_or("").to_string(),
                    };
                    let at_ns = i64::try_from(point.time_unix_nano).unwrap_or(i64::MAX);
                    let mut cell = Cell::default();
                    match kind {
                        Kind::Tokens => {
                            let tokens = sum.max(0.0).round() as u64;
                            let usage = match attr(attributes, &["gen_ai.token.type"]) {
                                Some("output" | "completion") => Usage { output: tokens, ..Usage::default() },
                                _ => Usage { input: tokens, ..Usage::default() },
                            };
                            cell.input_tokens = usage.input as i64;
                            cell.output_tokens = usage.output as i64;
                            if !model.is_empty() {
                                let provider = (!provider.is_empty()).then_some(provider);
                                cell.cost_usd = prices.cost(provider, model, &usage, at_ns).map_or(0.0, |p| p.cost_usd);
                            }
                        }
                        Kind::Duration => {
                            cell.requests = count as i64;
                            if attr(attributes, &["error.type"]).is_some() || server_error(attributes) {
                                cell.errors = count as i64;
                            }
                            add_buckets(&mut cell.duration, &histogram_bounds(point), &buckets, to_ms, sum, count);
                        }
                        Kind::Ttft => {
                            add_buckets(&mut cell.ttft, &histogram_bounds(point), &buckets, to_ms, sum, count);
                        }
                    }
                    let at_s = at_ns / 1_000_000_000;
                    let minute = at_s - at_s.rem_euclid(60);
                    let hour = at_s - at_s.rem_euclid(3600);
                    minutes.entry((minute, key.clone())).or_default().merge(&cell);
                    hours.entry((hour, key)).or_default().merge(&cell);
                }
            }
        }
    }
    out.minutes = minutes.into_iter().map(|((bucket, key), cell)| cell.to_row(bucket, key)).collect();
    out.hours = hours.into_iter().map(|((bucket, key), cell)| cell.to_row(bucket, key)).collect();
    out
}

fn histogram_bounds(point: &HistogramDataPoint) -> Vec<f64> {
    point.explicit_bounds.clone()
}

/// The point's increase since the previous point of its series.
fn delta(
    last: &mut HashMap<u64, Previous>,
    cumulative: bool,
    id: u64,
    point: &HistogramDataPoint,
    started_ns: u64,
) -> Option<(u64, f64, Vec<u64>)> {
    let sum = point.sum.unwrap_or(0.0);
    if !cumulative {
        return Some((point.count, sum, point.bucket_counts.clone()));
    }
    let current =
        Previous { start: point.start_time_unix_nano, count: point.count, sum, buckets: point.bucket_counts.clone() };
    let previous = last.insert(id, current);
    match previous {
        Some(prev) if prev.start == point.start_time_unix_nano && prev.count <= point.count => {
            let buckets = point
                .bucket_counts
                .iter()
                .enumerate()
                .map(|(i, c)| c.saturating_sub(prev.buckets.get(i).copied().unwrap_or(0)))
                .collect();
            Some((point.count - prev.count, sum - prev.sum, buckets))
        }
        // A series that (re)started while we were running: all of it is new.
        _ if point.start_time_unix_nano >= started_ns => Some((point.count, sum, point.bucket_counts.clone())),
        // Otherwise this point is the reference for the next one.
        _ => None,
    }
}

/// Adds a histogram's bucket counts to a sketch at each bucket's midpoint
/// (the open-ended buckets at their finite bound); without buckets, the
/// mean.
fn add_buckets(sketch: &mut crate::rollup::Sketch, bounds: &[f64], buckets: &[u64], to_ms: f64, sum: f64, count: u64) {
    if buckets.is_empty() || buckets.iter().all(|c| *c == 0) {
        let mean = if count > 0 { sum / count as f64 } else { 0.0 };
        for _ in 0..count.min(10_000) {
            sketch.add(mean * to_ms);
        }
        return;
    }
    for (i, &n) in buckets.iter().enumerate() {
        if n == 0 {
            continue;
        }
        let value = match (i.checked_sub(1).and_then(|j| bounds.get(j)), bounds.get(i)) {
            (Some(lo), Some(hi)) => (lo + hi) / 2.0,
            (None, Some(hi)) => hi / 2.0,
            (Some(lo), None) => *lo,
            (None, None) => 0.0,
        };
        for _ in 0..n.min(10_000) {
            sketch.add(value * to_ms);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::AnyValue;
    use opentelemetry_proto::tonic::metrics::v1::{Histogram, Metric, ResourceMetrics, ScopeMetrics};
    use opentelemetry_proto::tonic::resource::v1::Resource;

    fn kv(key: &str, value: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(Value::StringValue(value.into())) }),
            ..Default::default()
        }
    }

    fn export(name: &str, count: u64, sum: f64, token_type: &str) -> ExportMetricsServiceRequest {
        ExportMetricsServiceRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource { attributes: vec![kv("service.name", "svc")], ..Default::default() }),
                scope_metrics: vec![ScopeMetrics {
                    metrics: vec![Metric {
                        name: name.into(),
                        data: Some(Data::Histogram(Histogram {
                            aggregation_temporality: AggregationTemporality::Cumulative as i32,
                            data_points: vec![HistogramDataPoint {
                                attributes: vec![
                                    kv("gen_ai.operation.name", "chat"),
                                    kv("gen_ai.request.model", "gpt-4o"),
                                    kv("gen_ai.token.type", token_type),
                                ],
                                start_time_unix_nano: 1_700_000_000_000_000_000,
                                time_unix_nano: 1_700_000_060_000_000_000,
                                count,
                                sum: Some(sum),
                                bucket_counts: vec![],
                                explicit_bounds: vec![],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn cumulative_token_usage_becomes_deltas() {
        // The series started after "we" did, so its first point counts.
        let state = CumulativeState::new(1000, 1_600_000_000_000_000_000);
        let prices = PriceTable::default();
        let attribution = Attribution::default();
        let first = metric_rows(&export("gen_ai.client.token.usage", 2, 300.0, "input"), &attribution, &prices, &state);
        let second =
            metric_rows(&export("gen_ai.client.token.usage", 3, 450.0, "input"), &attribution, &prices, &state);
        assert_eq!(first.minutes[0].input_tokens, 300);
        assert_eq!(second.minutes[0].input_tokens, 150);
        assert_eq!(first.minutes[0].key.operation, "metrics:chat");
        let duration =
            metric_rows(&export("gen_ai.client.operation.duration", 4, 2.0, ""), &attribution, &prices, &state);
        assert_eq!(duration.minutes[0].requests, 4);
        // A series older than this process: its first point is only the reference.
        let late = CumulativeState::new(1000, 1_800_000_000_000_000_000);
        assert!(metric_rows(&export("gen_ai.client.token.usage", 2, 300.0, "input"), &attribution, &prices, &late)
            .minutes
            .is_empty());
        let next = metric_rows(&export("gen_ai.client.token.usage", 3, 450.0, "input"), &attribution, &prices, &late);
        assert_eq!(next.minutes[0].input_tokens, 150);
    }
}
