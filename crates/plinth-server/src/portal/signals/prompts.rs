//! Prompt versions compared against a baseline.

use super::{
    api_problem, app_problem, count, disabled, enabled, p_value, percent, thousands, usd, Latency, RangeLink, Window,
    LONG_RANGES,
};
use crate::api::signals::number;
use crate::params::Params;
use crate::portal::{encode, entity_href, page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::signals::PromptVersionsQuery;
use plinth_app::Caller;
use plinth_telemetry::compare::VersionStats;
use serde::Serialize;

/// `prompt_versions.html`: each version of a prompt against the baseline.
#[derive(Serialize)]
struct PromptVersionsView {
    title: String,
    prompt: String,
    /// The Prompt entity, when the catalogue has one.
    prompt_href: Option<String>,
    /// The baseline version, when any version was called.
    baseline: Option<String>,
    /// Significance level of the tests.
    alpha: f64,
    from: String,
    to: String,
    versions: Vec<VersionRow>,
    ranges: Vec<RangeLink>,
}

/// A version's numbers, with a mark per metric compared to the baseline.
#[derive(Serialize)]
struct VersionRow {
    version: String,
    baseline: bool,
    requests: String,
    latency: Latency,
    tokens_per_request: String,
    cost_per_request: String,
    error_rate: String,
    mean_score: Option<String>,
    /// Evaluation scores behind the mean.
    scores: usize,
    samples: usize,
    marks: Marks,
}

/// The tests against the baseline, per metric (none for the baseline, or
/// a metric not tested).
#[derive(Serialize)]
struct Marks {
    latency: Option<Mark>,
    tokens: Option<Mark>,
    cost: Option<Mark>,
    errors: Option<Mark>,
    score: Option<Mark>,
}

/// One test against the baseline: direction, significance, p-value.
#[derive(Serialize)]
struct Mark {
    arrow: &'static str,
    significant: bool,
    /// `higher` or `lower`.
    direction: String,
    /// `p=0.012`.
    p: String,
    /// The test's name.
    test: String,
}

/// `GET /prompts/{name}/versions`: versions against the baseline.
pub(crate) async fn prompt_versions_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    params: Params,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "7d", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let alpha = match number(&params, "alpha") {
        Ok(alpha) => alpha,
        Err(error) => return api_problem(error),
    };
    let request = PromptVersionsQuery {
        prompt: name,
        baseline: params.one("baseline").filter(|b| !b.is_empty()).map(str::to_string),
        alpha,
        range: window.range,
    };
    let comparison = match app.platform.signals().prompt_versions(&caller, &request).await {
        Ok(comparison) => comparison,
        Err(error) => return app_problem(error),
    };
    let base = format!("/prompts/{}/versions", encode(&comparison.prompt));
    let view = PromptVersionsView {
        title: format!("Versions of {}", comparison.prompt),
        prompt_href: comparison.prompt_ref.as_deref().map(entity_href),
        versions: comparison.versions.iter().map(VersionRow::of).collect(),
        prompt: comparison.prompt,
        baseline: comparison.baseline,
        alpha: comparison.alpha,
        from: comparison.from,
        to: comparison.to,
        ranges: window.selector(&base),
    };
    page(StatusCode::OK, "prompt_versions.html", &view)
}

impl VersionRow {
    fn of(v: &VersionStats) -> VersionRow {
        let mark = |metric: &str| {
            v.differences.iter().find(|d| d.metric == metric).map(|d| Mark {
                arrow: if d.direction == "higher" { "▲" } else { "▼" },
                significant: d.significant,
                direction: d.direction.clone(),
                p: p_value(d.p_value),
                test: d.test.clone(),
            })
        };
        VersionRow {
            version: v.version.clone(),
            baseline: v.baseline,
            requests: thousands(v.requests),
            latency: Latency::of(&v.latency_ms),
            tokens_per_request: count((v.tokens_per_request * 10.0).round() / 10.0),
            cost_per_request: usd(v.cost_per_request_usd),
            error_rate: percent(v.error_rate),
            mean_score: v.mean_score.map(|s| format!("{s:.2}")),
            scores: v.scores,
            samples: v.samples,
            marks: Marks {
                latency: mark("latency"),
                tokens: mark("tokens_per_request"),
                cost: mark("cost_per_request"),
                errors: mark("error_rate"),
                score: mark("evaluation_score"),
            },
        }
    }
}
