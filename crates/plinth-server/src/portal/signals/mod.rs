//! Signals in the portal: an entity's "Signals" tab (headline numbers,
//! charts, top models and prompt versions, RED of server spans, health,
//! recent traces), team cost, cost anomalies with their explanation, the
//! trace waterfall and prompt-version comparison.
//!
//! Every number comes from the same code the JSON API runs
//! (`signals::api`); this module only shapes it into typed views for the
//! templates (`entity`, `traces`, `cost`, `prompts`). Charts are inline
//! SVG: the geometry is computed in `chart`, drawn (and escaped) by the
//! `chart` macro of `signals_macros.html`.

mod chart;
mod cost;
mod entity;
mod prompts;
mod traces;

pub(super) use cost::{anomalies_page, cost_page, team_cost_page};
pub(super) use entity::entity_signals_page;
pub(super) use prompts::prompt_versions_page;
pub(super) use traces::{trace_page, traces_page};

use super::view::When;
use super::{encode, page, query};
use crate::api::signals::time_range;
use crate::error::ApiError;
use crate::params::Params;
use crate::AppState;
use axum::http::StatusCode;
use axum::response::Response;
use plinth_app::signals::{TimeRange, TraceListItem};
use plinth_app::AppError;
use plinth_telemetry::query::{Percentiles, Tokens};
use serde::Serialize;
use time::OffsetDateTime;

/// Kinds with a Signals tab.
pub(super) const SIGNAL_KINDS: &[&str] = &["component", "group", "model", "prompt", "agent"];

/// The range selector: name, hours, series step (about 24–60 points each).
const RANGES: &[(&str, i64, i64)] =
    &[("1h", 1, 60), ("24h", 24, 3600), ("7d", 7 * 24, 21_600), ("30d", 30 * 24, 86_400)];

/// Cost, anomalies and prompt versions: hour rollups make 1h too coarse.
const LONG_RANGES: &[&str] = &["24h", "7d", "30d"];

// ---------------------------------------------------------------- shared

/// Whether this server runs the signals capability.
fn enabled(app: &AppState) -> bool {
    app.platform.signals().config().is_ok()
}

/// `signals_error.html`: signals are off, a parameter is wrong, or the
/// store failed.
#[derive(Serialize)]
struct SignalsErrorView<'a> {
    title: &'a str,
    heading: &'a str,
    message: &'a str,
}

/// The page shown when signals are off, a parameter is wrong, or the store fails.
fn problem(status: StatusCode, title: &str, message: &str) -> Response {
    page(status, "signals_error.html", &SignalsErrorView { title, heading: title, message })
}

fn disabled() -> Response {
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "Signals are not enabled",
        "This server runs without the signals service, so there is no telemetry to show. `plinth serve` enables it.",
    )
}

fn app_problem(error: AppError) -> Response {
    api_problem(ApiError::from(error))
}

fn api_problem(error: ApiError) -> Response {
    let title = match error.status {
        StatusCode::BAD_REQUEST => "Invalid request",
        StatusCode::NOT_FOUND => "Not found",
        _ => "Signals are unavailable",
    };
    problem(error.status, title, &error.message)
}

/// The selected range (`?range=`, default `default`) and the request's
/// `[from, to)` window; a range outside [`RANGES`] is a 400.
struct Window {
    name: &'static str,
    range: TimeRange,
    offered: &'static [&'static str],
    step: i64,
    from_s: i64,
    to_s: i64,
}

/// A link of the range selector (`s.ranges`).
#[derive(Serialize)]
struct RangeLink {
    name: &'static str,
    href: String,
    /// The range shown.
    current: bool,
}

impl Window {
    /// `offered`: the ranges this page offers (all when empty).
    fn from(params: &Params, default: &'static str, offered: &'static [&'static str]) -> Result<Window, ApiError> {
        let wanted = params.one("range").filter(|r| !r.is_empty()).unwrap_or(default);
        let choices: Vec<&str> = RANGES
            .iter()
            .map(|(name, _, _)| *name)
            .filter(|name| offered.is_empty() || offered.contains(name))
            .collect();
        let found = RANGES.iter().find(|(name, _, _)| *name == wanted && choices.contains(name));
        let Some(&(name, hours, step)) = found else {
            return Err(ApiError::bad_request(format!(
                "`range` must be one of {}, not `{wanted}`",
                choices.join(", ")
            )));
        };
        let mut range = time_range(params)?;
        if range.from.is_none() {
            let to = range.to.unwrap_or_else(|| OffsetDateTime::now_utc() + time::Duration::minutes(1));
            range = TimeRange { from: Some(to - time::Duration::hours(hours)), to: Some(to) };
        }
        let (from_s, to_s) = range.resolve(hours).map_err(ApiError::from)?;
        Ok(Window { name, range, offered, step, from_s, to_s })
    }

    /// Links of the range selector, `base` being the page's path.
    fn selector(&self, base: &str) -> Vec<RangeLink> {
        RANGES
            .iter()
            .filter(|(name, _, _)| self.offered.is_empty() || self.offered.contains(name))
            .map(|&(name, _, _)| RangeLink {
                name,
                href: format!("{base}?{}", query(&[("range", name)])),
                current: name == self.name,
            })
            .collect()
    }
}

// ---------------------------------------------------------------- formatting

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

fn count(value: f64) -> String {
    if (value - value.round()).abs() < 1e-9 {
        thousands(value.round() as i64)
    } else {
        format!("{value:.1}")
    }
}

/// Dollars with enough digits that a single call's cost is not `$0.00`.
fn usd(value: f64) -> String {
    let sign = if value < 0.0 { "-" } else { "" };
    let value = value.abs();
    if value == 0.0 {
        "$0.00".to_string()
    } else if value >= 1.0 {
        format!("{sign}${}.{:02}", thousands(value.trunc() as i64), ((value.fract() * 100.0).round() as i64).min(99))
    } else if value >= 0.01 {
        format!("{sign}${value:.4}")
    } else {
        format!("{sign}${value:.6}")
    }
}

fn ms(value: Option<f64>) -> String {
    match value {
        None => "—".to_string(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 10.0 => format!("{v:.0} ms"),
        Some(v) => format!("{v:.1} ms"),
    }
}

fn percent(ratio: f64) -> String {
    let value = ratio * 100.0;
    if value == 0.0 || value >= 10.0 {
        format!("{value:.0}%")
    } else {
        format!("{value:.1}%")
    }
}

fn p_value(p: f64) -> String {
    if p < 0.001 {
        "p<0.001".to_string()
    } else {
        format!("p={p:.3}")
    }
}

/// `12:00` for sub-day steps, `11-24` for days.
fn time_label(rfc: &str, step: i64) -> String {
    let range = if step >= 86_400 { 5..10 } else { 11..16 };
    rfc.get(range).unwrap_or(rfc).to_string()
}

/// Latency percentiles, printed.
#[derive(Serialize)]
struct Latency {
    p50: String,
    p95: String,
    p99: String,
}

impl Latency {
    fn of(p: &Percentiles) -> Latency {
        Latency { p50: ms(p.p50), p95: ms(p.p95), p99: ms(p.p99) }
    }
}

/// Token counts, printed.
#[derive(Serialize)]
struct TokenCounts {
    input: String,
    output: String,
    cache_read: String,
    reasoning: String,
}

impl TokenCounts {
    fn of(t: &Tokens) -> TokenCounts {
        TokenCounts {
            input: thousands(t.input),
            output: thousands(t.output),
            cache_read: thousands(t.cache_read),
            reasoning: thousands(t.reasoning),
        }
    }
}

/// A row of a trace list (`/traces`, an entity's recent traces).
#[derive(Serialize)]
struct TraceRow {
    trace_id: String,
    href: String,
    name: String,
    service: String,
    agent: Option<String>,
    operation: Option<String>,
    start: When,
    duration: String,
    error: bool,
}

impl TraceRow {
    fn of(item: &TraceListItem) -> TraceRow {
        TraceRow {
            trace_id: item.trace_id.clone(),
            href: format!("/traces/{}", encode(&item.trace_id)),
            name: item.name.clone(),
            service: item.service.clone(),
            agent: item.agent.clone(),
            operation: item.operation.clone(),
            start: When::parse(&item.start),
            duration: ms(Some(item.duration_ms)),
            error: item.error,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_print_for_people() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(-1200), "-1,200");
        assert_eq!(usd(0.00036), "$0.000360");
        assert_eq!(usd(0.125), "$0.1250");
        assert_eq!(usd(1234.5), "$1,234.50");
        assert_eq!(ms(Some(1500.0)), "1.50 s");
        assert_eq!(ms(Some(120.0)), "120 ms");
        assert_eq!(percent(0.25), "25%");
        assert_eq!(p_value(0.0031), "p=0.003");
    }
}
