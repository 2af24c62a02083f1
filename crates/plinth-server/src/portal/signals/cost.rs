//! Team cost (`/cost`, `/cost/teams/…`) and cost anomalies.

use super::chart::{chart, round1, usd_axis, Chart, ChartKind, Plot};
use super::{
    api_problem, app_problem, count, disabled, enabled, percent, thousands, time_label, usd, RangeLink, Window,
    LONG_RANGES,
};
use crate::api::signals::number;
use crate::params::Params;
use crate::portal::view::{OwnerLink, When};
use crate::portal::{encode, entity_href, page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::catalog::CatalogState;
use plinth_app::signals::{AnomalyQuery, SignalQuery};
use plinth_app::Caller;
use plinth_telemetry::anomaly::AnomalyKind;
use plinth_telemetry::cost::{CostAnomaly, CostLine, TeamCost};
use plinth_telemetry::query::rfc3339;
use serde::Serialize;

/// Services and models named per team on `/cost`.
const TOP_LINES: usize = 3;

/// `cost.html`: every team's cost over the window.
#[derive(Serialize)]
struct CostView {
    title: &'static str,
    teams: Vec<TeamRow>,
    /// All teams' cost.
    total: String,
    ranges: Vec<RangeLink>,
    from: String,
    to: String,
}

/// `cost_team.html`: one team's cost over the window.
#[derive(Serialize)]
struct TeamCostView {
    title: String,
    team: TeamLink,
    /// The team's row, or none when it spent nothing.
    teams: Vec<TeamRow>,
    ranges: Vec<RangeLink>,
}

/// A Group, by its ref, and its page.
#[derive(Serialize)]
struct TeamLink {
    /// The Group's ref.
    label: String,
    href: String,
    /// The team as every page shows an owner: its title, linked.
    owner: OwnerLink,
}

/// A team's cost: totals, top (or all) services and models, daily chart.
#[derive(Serialize)]
struct TeamRow {
    /// The Group's ref; none for services no Component claims.
    team: Option<String>,
    href: Option<String>,
    cost_href: Option<String>,
    title: String,
    cost_center: Option<String>,
    requests: String,
    tokens: String,
    cost: String,
    services: Vec<CostLineRow>,
    models: Vec<CostLineRow>,
    /// Services and models left out of the lists.
    more_services: usize,
    more_models: usize,
    daily: Chart,
}

/// A service's or model's share of a team's cost.
#[derive(Serialize)]
struct CostLineRow {
    name: String,
    requests: String,
    tokens: String,
    cost: String,
}

/// `cost_anomalies.html`: anomalous hours, explained.
#[derive(Serialize)]
struct AnomaliesView {
    title: &'static str,
    anomalies: Vec<AnomalyRow>,
    from: String,
    to: String,
    /// The relative threshold.
    relative: String,
    /// The absolute threshold.
    min_usd: String,
    ranges: Vec<RangeLink>,
}

/// One anomalous hour of a team's service.
#[derive(Serialize)]
struct AnomalyRow {
    /// `anomaly-N`, from 1.
    id: String,
    hour: When,
    team: Option<AnomalyTeam>,
    service: String,
    models: Vec<String>,
    actual: String,
    expected: String,
    impact: String,
    /// Relative change, signed, or `new spend`.
    change: String,
    /// `traffic_spike`, `misconfiguration`, `price_or_model_change` or `mixed`.
    kind: &'static str,
    kind_label: &'static str,
    baseline: String,
    effects: Vec<EffectRow>,
    drivers: Vec<DriverRow>,
    shares: Vec<ModelShareRow>,
    summary: String,
}

#[derive(Serialize)]
struct AnomalyTeam {
    /// The team as every page shows an owner: its title, linked.
    owner: OwnerLink,
    cost_href: String,
}

/// One of the three additive effects of a change.
#[derive(Serialize)]
struct EffectRow {
    class: &'static str,
    label: &'static str,
    usd: String,
    /// % of the total absolute effect.
    share: f64,
}

/// A cost driver, actual against expected.
#[derive(Serialize)]
struct DriverRow {
    name: &'static str,
    actual: String,
    expected: String,
}

/// A model's share of cost, actual against expected.
#[derive(Serialize)]
struct ModelShareRow {
    model: String,
    actual: String,
    expected: String,
}

/// `GET /cost`: every team's cost over the window (default 30 days).
pub(crate) async fn cost_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    cost_view(app, caller, params, None).await
}

/// `GET /cost/teams/{namespace}/{name}`: one team.
pub(crate) async fn team_cost_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, name)): Path<(String, String)>,
    params: Params,
) -> Response {
    cost_view(app, caller, params, Some(format!("group:{namespace}/{name}"))).await
}

async fn cost_view(app: AppState, caller: Caller, params: Params, team: Option<String>) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "30d", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let filter = SignalQuery { team: team.clone(), ..SignalQuery::default() };
    let teams = match app.platform.signals().team_costs(&caller, &filter, window.range).await {
        Ok(teams) => teams,
        Err(error) => return app_problem(error),
    };
    // Every day of the window gets a bar, spent or not.
    let first_day = window.from_s - window.from_s.rem_euclid(86_400);
    let days: Vec<i64> = (0..).map(|i| first_day + i * 86_400).take_while(|d| *d < window.to_s).take(400).collect();
    let lines = if team.is_some() { usize::MAX } else { TOP_LINES };
    let rows: Vec<TeamRow> = teams.iter().map(|t| team_row(t, &days, lines)).collect();
    match team {
        Some(team) => {
            let owner = OwnerLink::shown(app.platform.catalog().view(&caller).ok().as_deref(), &team, "default");
            let view = TeamCostView {
                title: format!("Cost of {}", owner.label),
                ranges: window.selector(&team_cost_href(&team)),
                team: TeamLink { href: entity_href(&team), owner, label: team },
                teams: rows,
            };
            page(StatusCode::OK, "cost_team.html", &view)
        }
        None => {
            let view = CostView {
                title: "Cost",
                teams: rows,
                total: usd(teams.iter().map(|t| t.cost_usd).sum()),
                ranges: window.selector("/cost"),
                from: rfc3339(window.from_s),
                to: rfc3339(window.to_s),
            };
            page(StatusCode::OK, "cost.html", &view)
        }
    }
}

fn team_cost_href(team_ref: &str) -> String {
    let rest = team_ref.split_once(':').map_or(team_ref, |(_, rest)| rest);
    let (namespace, name) = rest.split_once('/').unwrap_or(("default", rest));
    format!("/cost/teams/{}/{}", encode(namespace), encode(name))
}

fn team_row(team: &TeamCost, days: &[i64], lines: usize) -> TeamRow {
    let line = |l: &CostLine| CostLineRow {
        name: l.name.clone(),
        requests: thousands(l.requests),
        tokens: thousands(l.tokens),
        cost: usd(l.cost_usd),
    };
    let labels: Vec<String> = days.iter().map(|d| time_label(&rfc3339(*d), 86_400)).collect();
    let values: Vec<Option<f64>> = days
        .iter()
        .map(|d| {
            let day = rfc3339(*d);
            Some(team.daily.iter().find(|(t, _)| *t == day).map_or(0.0, |(_, usd)| *usd))
        })
        .collect();
    let id = team.team.as_deref().unwrap_or("unattributed").replace(|c: char| !c.is_ascii_alphanumeric(), "-");
    TeamRow {
        team: team.team.clone(),
        href: team.team.as_deref().map(entity_href),
        cost_href: team.team.as_deref().map(team_cost_href),
        title: team.title.as_deref().or(team.team.as_deref()).unwrap_or("Unattributed services").to_string(),
        cost_center: team.cost_center.clone(),
        requests: thousands(team.requests),
        tokens: thousands(team.tokens),
        cost: usd(team.cost_usd),
        services: team.services.iter().take(lines).map(line).collect(),
        models: team.models.iter().take(lines).map(line).collect(),
        more_services: team.services.len().saturating_sub(lines),
        more_models: team.models.len().saturating_sub(lines),
        daily: chart(
            &format!("daily-{id}"),
            "Daily cost",
            ChartKind::Bar,
            &labels,
            &[Plot { label: "cost".into(), class: "s-cost", values }],
            usd_axis,
        ),
    }
}

/// `GET /cost/anomalies`: hourly cost anomalies, explained.
pub(crate) async fn anomalies_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    params: Params,
) -> Response {
    if !enabled(&app) {
        return disabled();
    }
    let window = match Window::from(&params, "24h", LONG_RANGES) {
        Ok(window) => window,
        Err(error) => return api_problem(error),
    };
    let request = match (number(&params, "relative"), number(&params, "minUsd")) {
        (Ok(relative), Ok(min_usd)) => AnomalyQuery {
            filter: SignalQuery {
                team: params.one("team").filter(|v| !v.is_empty()).map(str::to_string),
                service: params.one("service").filter(|v| !v.is_empty()).map(str::to_string),
                ..SignalQuery::default()
            },
            range: window.range,
            relative,
            min_usd,
        },
        (Err(error), _) | (_, Err(error)) => return api_problem(error),
    };
    let list = match app.platform.signals().anomalies(&caller, &request).await {
        Ok(list) => list,
        Err(error) => return app_problem(error),
    };
    let view = AnomaliesView {
        title: "Cost anomalies",
        anomalies: {
            let state = app.platform.catalog().view(&caller).ok();
            list.anomalies.iter().enumerate().map(|(i, a)| anomaly_row(i, a, state.as_deref())).collect()
        },
        from: list.from,
        to: list.to,
        relative: percent(list.relative_threshold),
        min_usd: usd(list.min_abs_usd),
        ranges: window.selector("/cost/anomalies"),
    };
    page(StatusCode::OK, "cost_anomalies.html", &view)
}

fn anomaly_row(index: usize, found: &CostAnomaly, state: Option<&CatalogState>) -> AnomalyRow {
    let a = &found.anomaly;
    let (kind, kind_label) = match a.kind {
        AnomalyKind::TrafficSpike => ("traffic_spike", "traffic spike"),
        AnomalyKind::Misconfiguration => ("misconfiguration", "misconfiguration"),
        AnomalyKind::PriceOrModelChange => ("price_or_model_change", "price or model change"),
        AnomalyKind::Mixed => ("mixed", "mixed"),
    };
    let effects = [
        ("volume", "Volume (requests)", a.effects.volume_usd),
        ("unit", "Unit usage (tokens/request)", a.effects.unit_usage_usd),
        ("rate", "Rate and model mix ($/token)", a.effects.rate_mix_usd),
    ];
    let magnitude: f64 = effects.iter().map(|(_, _, v)| v.abs()).sum::<f64>().max(1e-12);
    let effects = effects
        .iter()
        .map(|&(class, label, v)| EffectRow { class, label, usd: usd(v), share: round1(v.abs() / magnitude * 100.0) })
        .collect();
    let opt = |v: Option<f64>, f: fn(f64) -> String| v.map_or("—".to_string(), f);
    let (act, exp) = (&a.drivers.actual, &a.drivers.expected);
    let driver = |name, actual, expected| DriverRow { name, actual, expected };
    let drivers = vec![
        driver("Requests", count(act.requests), count(exp.requests)),
        driver("Tokens per request", opt(act.tokens_per_request, count), opt(exp.tokens_per_request, count)),
        driver(
            "Billed tokens per request",
            opt(act.billed_tokens_per_request, count),
            opt(exp.billed_tokens_per_request, count),
        ),
        driver(
            "Cost per 1k billed tokens",
            opt(act.cost_per_1k_billed_tokens, usd),
            opt(exp.cost_per_1k_billed_tokens, usd),
        ),
        driver("Cache hit ratio", opt(act.cache_hit_ratio, percent), opt(exp.cache_hit_ratio, percent)),
        driver(
            "Tool calls per agent run",
            opt(act.tool_calls_per_agent_run, count),
            opt(exp.tool_calls_per_agent_run, count),
        ),
    ];
    let shares = a
        .drivers
        .model_shares
        .iter()
        .map(|m| ModelShareRow {
            model: m.model.clone(),
            actual: percent(m.actual_share),
            expected: percent(m.expected_share),
        })
        .collect();
    let change = if a.relative_change.is_finite() {
        format!("{}{}", if a.relative_change >= 0.0 { "+" } else { "" }, percent(a.relative_change))
    } else {
        "new spend".to_string()
    };
    AnomalyRow {
        id: format!("anomaly-{}", index + 1),
        hour: When::parse(&found.hour),
        team: found
            .team
            .as_deref()
            .map(|t| AnomalyTeam { owner: OwnerLink::shown(state, t, "default"), cost_href: team_cost_href(t) }),
        service: found.service.clone(),
        models: found.models.clone(),
        actual: usd(a.actual_usd),
        expected: usd(a.expected_usd),
        impact: usd(a.impact_usd),
        change,
        kind,
        kind_label,
        baseline: a.baseline.replace('_', " "),
        effects,
        drivers,
        shares,
        summary: a.summary.clone(),
    }
}
