//! Operations endpoints: liveness, readiness, Prometheus metrics, and the
//! request metrics middleware that feeds them.

use crate::AppState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use plinth_app::{MetricFamily, MetricKind};
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
pub(crate) struct HttpMetrics {
    routes: Mutex<BTreeMap<(String, String), RouteStats>>,
}

pub(crate) async fn track(State(app): State<AppState>, request: Request, next: Next) -> Response {
    let route =
        request.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = request.method().to_string();
    let started = Instant::now();
    // Background work gives way while this request is in flight.
    let foreground = app.platform.foreground();
    let response = next.run(request).await;
    drop(foreground);
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

pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the store answers.
pub(crate) async fn readyz(State(app): State<AppState>) -> Response {
    match app.platform.ready().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", error.message)).into_response(),
    }
}

/// The platform's metrics and the server's own (connections, requests by
/// route), in Prometheus' text format.
pub(crate) async fn metrics(State(app): State<AppState>) -> Response {
    let mut out = String::new();
    let connections = &app.connections;
    let mut families = app.platform.metrics();
    families.push(MetricFamily {
        name: "plinth_http_connections_open",
        help: "HTTP connections open now.",
        kind: MetricKind::Gauge,
        samples: vec![(Vec::new(), connections.open.load(Ordering::Relaxed) as f64)],
    });
    families.push(MetricFamily {
        name: "plinth_http_connections_accepted_total",
        help: "HTTP connections accepted.",
        kind: MetricKind::Counter,
        samples: vec![(Vec::new(), connections.accepted.load(Ordering::Relaxed) as f64)],
    });
    families.push(MetricFamily {
        name: "plinth_http_connections_rejected_total",
        help: "HTTP connections answered 503 (or closed) because the connection cap was reached.",
        kind: MetricKind::Counter,
        samples: vec![(Vec::new(), connections.rejected.load(Ordering::Relaxed) as f64)],
    });
    for family in &families {
        let kind = match family.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
        };
        let _ = writeln!(out, "# HELP {} {}\n# TYPE {} {kind}", family.name, family.help, family.name);
        for (labels, value) in &family.samples {
            if labels.is_empty() {
                let _ = writeln!(out, "{} {value}", family.name);
            } else {
                let labels: Vec<String> =
                    labels.iter().map(|(key, value)| format!("{key}=\"{}\"", escape_label(value))).collect();
                let _ = writeln!(out, "{}{{{}}} {value}", family.name, labels.join(","));
            }
        }
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

/// A label value as Prometheus' text format needs it.
fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
