//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! request metrics middleware that feeds them.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Latency histogram bounds, in seconds.
const BUCKETS: [f64; 10] = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5, 2.0];

#[derive(Default)]
struct RouteStats {
    by_status: BTreeMap<u16, u64>,
    buckets: [u64; BUCKETS.len()],
    sum_seconds: f64,
    count: u64,
}

/// Request counts and latency per (method, route).
#[derive(Default)]
pub struct HttpMetrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

pub async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let seconds = started.elapsed().as_secs_f64();
    let mut routes = app.http_metrics.routes.lock();
    let stats = routes.entry((method, route)).or_default();
    *stats.by_status.entry(response.status().as_u16()).or_default() += 1;
    for (i, bound) in BUCKETS.iter().enumerate() {
        if seconds <= *bound {
            stats.buckets[i] += 1;
        }
    }
    stats.sum_seconds += seconds;
    stats.count += 1;
    response
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers.
pub async fn readyz(State(app): State<AppState>) -> Response {
    match app.catalog.store().last_seq().await {
        Ok(_) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {error}\n")).into_response(),
    }
}

pub async fn metrics(State(app): State<AppState>) -> Response {
    let mut out = String::new();
    let m = &app.catalog.metrics;
    let (entities, last_seq, keys) = {
        let state = app.catalog.read();
        (state.len(), state.last_seq, state.filters().distinct_keys())
    };
    let gauge = |out: &mut String, name: &str, help: &str, value: f64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
    };
    let counter = |out: &mut String, name: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}");
    };
    gauge(&mut out, "plinth_catalog_entities", "Entities in the catalogue projection.", entities as f64);
    gauge(
        &mut out,
        "plinth_catalog_change_log_position",
        "Last change-log sequence applied to the projection.",
        last_seq as f64,
    );
    gauge(&mut out, "plinth_catalog_filter_keys", "Distinct filter keys indexed.", keys as f64);
    let connections = &app.connections;
    gauge(
        &mut out,
        "plinth_http_connections_open",
        "HTTP connections open now.",
        connections.open.load(Ordering::Relaxed) as f64,
    );
    counter(
        &mut out,
        "plinth_http_connections_accepted_total",
        "HTTP connections accepted.",
        connections.accepted.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "plinth_http_connections_rejected_total",
        "HTTP connections answered 503 (or closed) because the connection cap was reached.",
        connections.rejected.load(Ordering::Relaxed),
    );
    counter(&mut out, "plinth_ingest_refreshes_total", "Location refreshes run.", m.refreshes.load(Ordering::Relaxed));
    counter(
        &mut out,
        "plinth_ingest_refresh_failures_total",
        "Refreshes whose source could not be read at all.",
        m.refresh_failures.load(Ordering::Relaxed),
    );
    gauge(
        &mut out,
        "plinth_ingest_last_refresh_seconds",
        "Duration of the last refresh.",
        m.last_refresh_millis.load(Ordering::Relaxed) as f64 / 1000.0,
    );
    counter(
        &mut out,
        "plinth_ingest_refresh_milliseconds_total",
        "Time spent refreshing.",
        m.refresh_millis_total.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "plinth_ingest_entities_written_total",
        "Entity rows inserted or updated.",
        m.entities_written.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "plinth_ingest_entities_deleted_total",
        "Entity rows deleted.",
        m.entities_deleted.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "plinth_ingest_errors_total",
        "Ingestion errors reported.",
        m.ingestion_errors.load(Ordering::Relaxed),
    );
    counter(
        &mut out,
        "plinth_catalog_changes_applied_total",
        "Change-log rows applied to the projection.",
        m.changes_applied.load(Ordering::Relaxed),
    );
    if let Some(signals) = &app.config.signals {
        let sm = &signals.metrics;
        for (name, help, value) in [
            ("plinth_otlp_spans_accepted_total", "Spans stored (new).", &sm.spans_accepted),
            (
                "plinth_otlp_spans_duplicate_total",
                "Spans received again (same trace and span id) and not counted.",
                &sm.spans_duplicate,
            ),
            (
                "plinth_otlp_spans_rejected_total",
                "Spans refused (bad ids, out of retention), reported as partial success.",
                &sm.spans_rejected,
            ),
            ("plinth_otlp_metric_points_total", "Metric data points received.", &sm.metric_points),
            (
                "plinth_otlp_requests_throttled_total",
                "Exports answered 429 (in-flight limit or queue full).",
                &sm.requests_throttled,
            ),
            ("plinth_otlp_requests_failed_total", "Exports answered 400/413/503.", &sm.requests_failed),
            ("plinth_otlp_batches_committed_total", "Group commits of signal batches.", &sm.batches_committed),
            ("plinth_otlp_commit_microseconds_total", "Time spent committing signal batches.", &sm.commit_micros),
        ] {
            counter(&mut out, name, help, value.load(Ordering::Relaxed));
        }
    }
    if let Some(scaffolder) = &app.config.scaffolder {
        let sm = &scaffolder.metrics;
        gauge(
            &mut out,
            "plinth_golden_path_runs_running",
            "Golden-path runs executing or queued here.",
            scaffolder.running() as f64,
        );
        let _ = writeln!(out, "# HELP plinth_golden_path_runs_total Golden-path runs finished, by status.\n# TYPE plinth_golden_path_runs_total counter");
        for (status, value) in [("completed", &sm.completed), ("failed", &sm.failed), ("cancelled", &sm.cancelled)] {
            let _ =
                writeln!(out, "plinth_golden_path_runs_total{{status=\"{status}\"}} {}", value.load(Ordering::Relaxed));
        }
        counter(
            &mut out,
            "plinth_golden_path_runs_denied_total",
            "Golden-path runs stopped by a policy deny.",
            sm.denied.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "plinth_golden_path_dry_runs_total",
            "Golden-path dry runs.",
            sm.dry_runs.load(Ordering::Relaxed),
        );
        counter(
            &mut out,
            "plinth_golden_path_run_milliseconds_total",
            "Time spent in golden-path runs.",
            sm.run_millis_total.load(Ordering::Relaxed),
        );
    }
    let routes = app.http_metrics.routes.lock();
    let _ = writeln!(out, "# HELP plinth_http_requests_total HTTP requests by route and status.\n# TYPE plinth_http_requests_total counter");
    for ((method, route), stats) in routes.iter() {
        for (status, count) in &stats.by_status {
            let _ = writeln!(
                out,
                "plinth_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {count}"
            );
        }
    }
    let _ = writeln!(out, "# HELP plinth_http_request_duration_seconds HTTP request latency.\n# TYPE plinth_http_request_duration_seconds histogram");
    for ((method, route), stats) in routes.iter() {
        for (bound, count) in BUCKETS.iter().zip(stats.buckets) {
            let _ = writeln!(out, "plinth_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"{bound}\"}} {count}");
        }
        let _ = writeln!(
            out,
            "plinth_http_request_duration_seconds_bucket{{method=\"{method}\",route=\"{route}\",le=\"+Inf\"}} {}",
            stats.count
        );
        let _ = writeln!(
            out,
            "plinth_http_request_duration_seconds_sum{{method=\"{method}\",route=\"{route}\"}} {}",
            stats.sum_seconds
        );
        let _ = writeln!(
            out,
            "plinth_http_request_duration_seconds_count{{method=\"{method}\",route=\"{route}\"}} {}",
            stats.count
        );
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
