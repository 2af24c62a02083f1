//! Hourly GenAI cost anomalies, with an explanation of what drove each one.
//!
//! A cost alert that only says "spend went up" sends an engineer digging through traces. This module answers
//! the first question they would ask — *was it more traffic, bigger requests, or pricier tokens?* — by
//! splitting the change in cost into three additive effects:
//!
//! cost = requests × (billed tokens / request) × (cost / billed token)
//!
//! "Billed tokens" are uncached input plus output tokens. Cached input tokens are left out on purpose: they are
//! billed at a steep discount, so when a prompt cache stops hitting, what the bill sees is *more full-price
//! tokens per request* (a unit-usage problem to fix in code), not a price change.
//!
//! The expected cost of an hour is a robust seasonal baseline (median of the same hour-of-week in previous weeks,
//! falling back to the same hour-of-day, then the trailing 24 hours) built only from history before the
//! evaluated window, so an anomaly inside the window never inflates its own baseline.
//!
//! Pure computation: no I/O, no clocks. Any input (empty, unsorted, duplicated hours, NaN, negative values,
//! extreme timestamps) is handled without panicking.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

/// Usage of one model within an hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ModelUsage {
    pub requests: f64,
    /// Input + output tokens.
    pub tokens: f64,
    pub cost_usd: f64,
}

/// Aggregated GenAI usage of one series (team + service) during one UTC hour.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HourlyCell {
    /// Unix seconds at the start of the hour (UTC). Values not on an hour boundary are floored to it.
    pub hour_s: i64,
    /// GenAI requests (chat/completion/embeddings calls).
    pub requests: f64,
    pub input_tokens: f64,
    pub output_tokens: f64,
    /// Part of `input_tokens` served from a prompt cache.
    pub cache_read_tokens: f64,
    pub reasoning_tokens: f64,
    pub tool_calls: f64,
    pub agent_runs: f64,
    pub cost_usd: f64,
    pub by_model: BTreeMap<String, ModelUsage>,
}

/// When a deviation from the baseline is worth telling someone about.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct AnomalyConfig {
    /// Minimum |actual − expected| / expected (0.5 = ±50%). An expected cost of 0 counts as an infinite
    /// relative change when anything was spent.
    pub relative_threshold: f64,
    /// Minimum |actual − expected| in dollars per hour, so tiny services doubling from cents do not page anyone.
    pub min_abs_usd: f64,
    /// How many previous weeks feed the same-hour-of-week median (clamped to 1..=52).
    pub lookback_weeks: u32,
}

impl Default for AnomalyConfig {
    fn default() -> Self {
        AnomalyConfig { relative_threshold: 0.5, min_abs_usd: 1.0, lookback_weeks: 4 }
    }
}

/// Which cost driver explains most of the change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// Request volume changed at the usual size and price.
    TrafficSpike,
    /// Tokens per request changed: a grown prompt, a retry or tool loop, a cache that stopped hitting.
    Misconfiguration,
    /// Cost per token changed: a pricier model, a new price, a different model mix.
    PriceOrModelChange,
    /// No single effect reaches 60% of the total absolute effect.
    Mixed,
}

/// Additive split of `actual_usd − expected_usd`; the three always sum to it (up to float rounding).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Effects {
    /// From the change in request count.
    pub volume_usd: f64,
    /// From the change in billed (uncached input + output) tokens per request.
    pub unit_usage_usd: f64,
    /// From the change in cost per billed token (price, model mix, cached-token pricing), plus any cost that
    /// cannot be tied to requests or tokens (e.g. spend recorded without token counts).
    pub rate_mix_usd: f64,
}

/// Cost drivers of one hour (actual) or of its baseline (expected). Ratios are `None` when their denominator is 0.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DriverValues {
    pub requests: f64,
    /// All input + output tokens per request (cached included).
    pub tokens_per_request: Option<f64>,
    /// Uncached input + output tokens per request: the unit-usage factor of the decomposition.
    pub billed_tokens_per_request: Option<f64>,
    /// Dollars per 1000 billed tokens: the rate/mix factor of the decomposition.
    pub cost_per_1k_billed_tokens: Option<f64>,
    /// cache_read_tokens / input_tokens.
    pub cache_hit_ratio: Option<f64>,
    pub tool_calls_per_agent_run: Option<f64>,
}

/// A model's share of the series' model-attributed cost, actual vs expected.
#[derive(Debug, Clone, Serialize)]
pub struct ModelShareChange {
    pub model: String,
    pub actual_share: f64,
    pub expected_share: f64,
}

/// Drivers compared like with like: the expected side is built from the same baseline hours as the expected cost.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Drivers {
    pub actual: DriverValues,
    pub expected: DriverValues,
    /// Largest share changes first (at most 5).
    pub model_shares: Vec<ModelShareChange>,
}

/// One anomalous hour with its explanation.
#[derive(Debug, Clone, Serialize)]
pub struct Anomaly {
    pub hour_s: i64,
    pub actual_usd: f64,
    pub expected_usd: f64,
    /// |actual − expected|: what the output is ranked by.
    pub impact_usd: f64,
    /// (actual − expected) / expected; +∞ when nothing was expected (serialized as `null` by serde_json).
    pub relative_change: f64,
    /// "up" or "down".
    pub direction: String,
    pub kind: AnomalyKind,
    /// "same_hour_of_week" | "same_hour_of_day" | "trailing_24h".
    pub baseline: String,
    pub effects: Effects,
    pub drivers: Drivers,
    pub summary: String,
}

const SECONDS_PER_HOUR: i64 = 3600;
const HOURS_PER_DAY: i64 = 24;
const HOURS_PER_WEEK: i64 = 7 * HOURS_PER_DAY;
/// Same-hour-of-day fallback looks at most this many previous days (it only runs with under a week of history).
const DAILY_LOOKBACK_DAYS: i64 = 7;
const MAX_LOOKBACK_WEEKS: u32 = 52;
/// Longer windows are truncated so a caller passing an open-ended range cannot make `detect` loop for ages.
const MAX_WINDOW_HOURS: i64 = 366 * HOURS_PER_DAY;
/// An effect must carry at least this share of the total absolute effect to name the anomaly's kind.
const DOMINANT_SHARE: f64 = 0.6;
const MAX_MODEL_SHARES: usize = 5;
/// Changes smaller than these are not worth a clause in the summary.
const NOTABLE_CACHE_HIT_CHANGE: f64 = 0.05;
const NOTABLE_MODEL_SHARE_CHANGE: f64 = 0.1;
const NOTABLE_TOOL_CALL_RATIO: f64 = 1.25;

/// Evaluates every hour in `[window_from_s, window_to_s)` against a seasonal baseline built from the hours
/// before `window_from_s`, and returns the anomalous hours ranked by dollar impact (largest first; ties by hour).
///
/// Hours absent from `cells` are zero-traffic hours, but only from the first cell on: before it there is no
/// history. Cells for the same hour are summed. Windows longer than 366 days are truncated. Hours with no
/// history at all before the window produce nothing (there is nothing to compare with).
pub fn detect(cells: &[HourlyCell], window_from_s: i64, window_to_s: i64, config: &AnomalyConfig) -> Vec<Anomaly> {
    let series = Series::from_cells(cells);
    let Some(history_start) = series.first_hour else {
        return Vec::new();
    };
    let first_window_hour = ceil_hour_index(window_from_s);
    let end_window_hour = ceil_hour_index(window_to_s).min(first_window_hour.saturating_add(MAX_WINDOW_HOURS));
    if history_start >= first_window_hour {
        return Vec::new();
    }
    let lookback_weeks = i64::from(config.lookback_weeks.clamp(1, MAX_LOOKBACK_WEEKS));

    let mut anomalies = Vec::new();
    let mut hour = first_window_hour;
    while hour < end_window_hour {
        let (method, sample_hours) = baseline_hours(hour, first_window_hour, history_start, lookback_weeks);
        if !sample_hours.is_empty() {
            let expected = series.median_of(&sample_hours);
            let actual = series.hours.get(&hour).cloned().unwrap_or_default();
            if let Some(anomaly) = evaluate_hour(hour, &actual, &expected, method, config) {
                anomalies.push(anomaly);
            }
        }
        hour += 1;
    }
    anomalies.sort_by(|a, b| b.impact_usd.total_cmp(&a.impact_usd).then(a.hour_s.cmp(&b.hour_s)));
    anomalies
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BaselineMethod {
    SameHourOfWeek,
    SameHourOfDay,
    Trailing24h,
}

impl BaselineMethod {
    fn as_str(self) -> &'static str {
        match self {
            BaselineMethod::SameHourOfWeek => "same_hour_of_week",
            BaselineMethod::SameHourOfDay => "same_hour_of_day",
            BaselineMethod::Trailing24h => "trailing_24h",
        }
    }
}

/// Hour indices (hours since the epoch) whose median forms the baseline of `hour`, most specific method first.
fn baseline_hours(
    hour: i64,
    first_window_hour: i64,
    history_start: i64,
    lookback_weeks: i64,
) -> (BaselineMethod, Vec<i64>) {
    let weekly = seasonal_hours(hour, first_window_hour, history_start, HOURS_PER_WEEK, lookback_weeks);
    if !weekly.is_empty() {
        return (BaselineMethod::SameHourOfWeek, weekly);
    }
    let daily = seasonal_hours(hour, first_window_hour, history_start, HOURS_PER_DAY, DAILY_LOOKBACK_DAYS);
    if !daily.is_empty() {
        return (BaselineMethod::SameHourOfDay, daily);
    }
    let trailing_start = first_window_hour.saturating_sub(HOURS_PER_DAY).max(history_start);
    (BaselineMethod::Trailing24h, (trailing_start..first_window_hour).collect())
}

/// The most recent `max_count` hours at `period` multiples before `hour` that lie in the pre-window history.
fn seasonal_hours(hour: i64, first_window_hour: i64, history_start: i64, period: i64, max_count: i64) -> Vec<i64> {
    // Smallest k ≥ 1 with hour − k·period before the window.
    let first_k = (hour - first_window_hour).max(0) / period + 1;
    (first_k..first_k + max_count)
        .map(|k| hour.saturating_sub(k.saturating_mul(period)))
        .take_while(|&candidate| candidate >= history_start)
        .collect()
}

fn evaluate_hour(
    hour: i64,
    actual: &HourTotals,
    expected: &HourTotals,
    method: BaselineMethod,
    config: &AnomalyConfig,
) -> Option<Anomaly> {
    let delta = actual.cost_usd - expected.cost_usd;
    let impact = delta.abs();
    let relative_change = if expected.cost_usd > 0.0 {
        delta / expected.cost_usd
    } else if actual.cost_usd > 0.0 {
        f64::INFINITY
    } else {
        0.0
    };
    let is_anomalous =
        impact > 0.0 && relative_change.abs() >= config.relative_threshold && impact >= config.min_abs_usd;
    if !is_anomalous {
        return None;
    }
    let effects = decompose(actual, expected);
    let kind = classify(&effects);
    let drivers = Drivers {
        actual: actual.drivers(),
        expected: expected.drivers(),
        model_shares: model_share_changes(actual, expected),
    };
    let summary = summarize(actual.cost_usd, expected.cost_usd, relative_change, kind, &effects, &drivers);
    Some(Anomaly {
        hour_s: hour.saturating_mul(SECONDS_PER_HOUR),
        actual_usd: actual.cost_usd,
        expected_usd: expected.cost_usd,
        impact_usd: impact,
        relative_change,
        direction: if delta > 0.0 { "up" } else { "down" }.to_string(),
        kind,
        baseline: method.as_str().to_string(),
        effects,
        drivers,
        summary,
    })
}

/// Hour index containing or following `seconds` (the first whole hour starting at or after it).
fn ceil_hour_index(seconds: i64) -> i64 {
    let floor = seconds.div_euclid(SECONDS_PER_HOUR);
    if seconds.rem_euclid(SECONDS_PER_HOUR) == 0 {
        floor
    } else {
        floor + 1
    }
}

/// Counts and costs are never negative and never NaN; anything else is treated as "not recorded".
fn sanitize(value: f64) -> f64 {
    if value.is_finite() && value > 0.0 {
        value
    } else {
        0.0
    }
}

/// Adds a sanitized value, saturating at f64::MAX so absurd inputs cannot turn totals into ∞.
fn accumulate(total: &mut f64, value: f64) {
    *total = (*total + sanitize(value)).min(f64::MAX);
}

fn ratio(numerator: f64, denominator: f64) -> Option<f64> {
    if denominator > 0.0 {
        Some(numerator / denominator).filter(|r| r.is_finite())
    } else {
        None
    }
}

#[derive(Debug, Clone, Default)]
struct HourTotals {
    requests: f64,
    input_tokens: f64,
    output_tokens: f64,
    cache_read_tokens: f64,
    tool_calls: f64,
    agent_runs: f64,
    cost_usd: f64,
    model_cost_usd: BTreeMap<String, f64>,
}

impl HourTotals {
    fn add(&mut self, cell: &HourlyCell) {
        accumulate(&mut self.requests, cell.requests);
        accumulate(&mut self.input_tokens, cell.input_tokens);
        accumulate(&mut self.output_tokens, cell.output_tokens);
        accumulate(&mut self.cache_read_tokens, cell.cache_read_tokens);
        accumulate(&mut self.tool_calls, cell.tool_calls);
        accumulate(&mut self.agent_runs, cell.agent_runs);
        accumulate(&mut self.cost_usd, cell.cost_usd);
        for (model, usage) in &cell.by_model {
            accumulate(self.model_cost_usd.entry(model.clone()).or_default(), usage.cost_usd);
        }
    }

    /// Uncached input + output. Cache reads beyond the input (bad data) are capped so this never goes negative.
    fn billed_tokens(&self) -> f64 {
        self.input_tokens - self.cache_read_tokens.min(self.input_tokens) + self.output_tokens
    }

    fn drivers(&self) -> DriverValues {
        DriverValues {
            requests: self.requests,
            tokens_per_request: ratio(self.input_tokens + self.output_tokens, self.requests),
            billed_tokens_per_request: ratio(self.billed_tokens(), self.requests),
            cost_per_1k_billed_tokens: ratio(self.cost_usd * 1000.0, self.billed_tokens()),
            cache_hit_ratio: ratio(self.cache_read_tokens.min(self.input_tokens), self.input_tokens),
            tool_calls_per_agent_run: ratio(self.tool_calls, self.agent_runs),
        }
    }

    fn model_shares(&self) -> BTreeMap<&str, f64> {
        let total: f64 = self.model_cost_usd.values().sum();
        self.model_cost_usd.iter().map(|(model, cost)| (model.as_str(), ratio(*cost, total).unwrap_or(0.0))).collect()
    }
}

struct Series {
    hours: HashMap<i64, HourTotals>,
    first_hour: Option<i64>,
}

impl Series {
    fn from_cells(cells: &[HourlyCell]) -> Series {
        let mut hours: HashMap<i64, HourTotals> = HashMap::new();
        for cell in cells {
            hours.entry(cell.hour_s.div_euclid(SECONDS_PER_HOUR)).or_default().add(cell);
        }
        let first_hour = hours.keys().min().copied();
        Series { hours, first_hour }
    }

    /// Field-wise median over `sample_hours` (absent hours count as zero traffic).
    ///
    /// Ratios are later taken of these medians (tokens/request = median tokens / median requests, and so on)
    /// rather than taking medians of ratios, because only then does requests × tokens/request × cost/token equal
    /// the expected cost exactly — which the effect decomposition needs to add up.
    fn median_of(&self, sample_hours: &[i64]) -> HourTotals {
        let empty = HourTotals::default();
        let samples: Vec<&HourTotals> = sample_hours.iter().map(|h| self.hours.get(h).unwrap_or(&empty)).collect();
        let field_median = |field: fn(&HourTotals) -> f64| median(samples.iter().map(|s| field(s)).collect());
        let mut models: Vec<&String> = samples.iter().flat_map(|s| s.model_cost_usd.keys()).collect();
        models.sort();
        models.dedup();
        let model_cost_usd = models
            .into_iter()
            .map(|model| {
                let costs = samples.iter().map(|s| s.model_cost_usd.get(model).copied().unwrap_or(0.0)).collect();
                (model.clone(), median(costs))
            })
            .filter(|(_, cost)| *cost > 0.0)
            .collect();
        HourTotals {
            requests: field_median(|s| s.requests),
            input_tokens: field_median(|s| s.input_tokens),
            output_tokens: field_median(|s| s.output_tokens),
            cache_read_tokens: field_median(|s| s.cache_read_tokens),
            tool_calls: field_median(|s| s.tool_calls),
            agent_runs: field_median(|s| s.agent_runs),
            cost_usd: field_median(|s| s.cost_usd),
            model_cost_usd,
        }
    }
}

/// Median (mean of the middle two for an even count); 0 for no values.
fn median(mut values: Vec<f64>) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let middle = values.len() / 2;
    if values.len() % 2 == 1 {
        values[middle]
    } else {
        (values[middle - 1] + values[middle]) / 2.0
    }
}

/// Splits actual − expected cost into volume, unit-usage and rate/mix effects that add up exactly.
///
/// With every factor positive in both periods this is LMDI-I: effect_i = L(C₁, C₀)·ln(x₁ᵢ/x₀ᵢ), with L the
/// logarithmic mean; it is exact and order-independent. A zero factor makes the logarithm undefined, so then the
/// Shapley average of the six sequential substitutions is used (also exact and order-independent). A ratio that is
/// undefined in one period (no requests, so no tokens/request) takes the other period's value: with no information
/// about the missing ratio, the change is attributed to the factor that did change (e.g. a new service is all
/// volume). Whatever the product of factors cannot reproduce — e.g. cost recorded without tokens — goes to rate/mix.
fn decompose(actual: &HourTotals, expected: &HourTotals) -> Effects {
    let delta = actual.cost_usd - expected.cost_usd;
    let (requests_1, usage_1, rate_1) = factors(actual);
    let (requests_0, usage_0, rate_0) = factors(expected);
    let usage_0_filled = usage_0.or(usage_1).unwrap_or(0.0);
    let usage_1_filled = usage_1.or(usage_0).unwrap_or(0.0);
    let rate_0_filled = rate_0.or(rate_1).unwrap_or(0.0);
    let rate_1_filled = rate_1.or(rate_0).unwrap_or(0.0);
    let before = [requests_0, usage_0_filled, rate_0_filled];
    let after = [requests_1, usage_1_filled, rate_1_filled];

    let all_positive = before.iter().chain(after.iter()).all(|&x| x > 0.0 && x.is_finite());
    let explained = if all_positive { lmdi(&before, &after) } else { shapley(&before, &after) };
    let explained = explained.map(|e| if e.is_finite() { e } else { 0.0 });
    let residual = delta - explained.iter().sum::<f64>();
    Effects { volume_usd: explained[0], unit_usage_usd: explained[1], rate_mix_usd: explained[2] + residual }
}

/// (requests, billed tokens per request, cost per billed token).
fn factors(totals: &HourTotals) -> (f64, Option<f64>, Option<f64>) {
    let billed = totals.billed_tokens();
    (totals.requests, ratio(billed, totals.requests), ratio(totals.cost_usd, billed))
}

fn lmdi(before: &[f64; 3], after: &[f64; 3]) -> [f64; 3] {
    let cost_0: f64 = before.iter().product();
    let cost_1: f64 = after.iter().product();
    let weight = logarithmic_mean(cost_1, cost_0);
    [0, 1, 2].map(|i| weight * (after[i] / before[i]).ln())
}

/// L(a, b) = (a − b) / (ln a − ln b), with L(a, a) = a; inputs are positive.
fn logarithmic_mean(a: f64, b: f64) -> f64 {
    let log_ratio = (a / b).ln();
    if log_ratio.abs() < 1e-12 {
        (a + b) / 2.0
    } else {
        (a - b) / log_ratio
    }
}

fn shapley(before: &[f64; 3], after: &[f64; 3]) -> [f64; 3] {
    // value(mask): product with the factors in `mask` at their new values.
    let value = |mask: u8| -> f64 { (0..3).map(|i| if mask & (1 << i) != 0 { after[i] } else { before[i] }).product() };
    // Shapley weights for 3 players: |S|!(2 − |S|)!/3! = 1/3, 1/6, 1/3 for |S| = 0, 1, 2.
    let weight = |size: u32| if size == 1 { 1.0 / 6.0 } else { 1.0 / 3.0 };
    [0usize, 1, 2].map(|i| {
        let bit = 1u8 << i;
        (0u8..8)
            .filter(|mask| mask & bit == 0)
            .map(|mask| weight(mask.count_ones()) * (value(mask | bit) - value(mask)))
            .sum()
    })
}

fn effect_shares(effects: &Effects) -> Option<[f64; 3]> {
    let absolute = [effects.volume_usd.abs(), effects.unit_usage_usd.abs(), effects.rate_mix_usd.abs()];
    let total: f64 = absolute.iter().sum();
    if total > 0.0 && total.is_finite() {
        Some(absolute.map(|a| a / total))
    } else {
        None
    }
}

fn classify(effects: &Effects) -> AnomalyKind {
    let Some(shares) = effect_shares(effects) else {
        return AnomalyKind::Mixed;
    };
    let kinds = [AnomalyKind::TrafficSpike, AnomalyKind::Misconfiguration, AnomalyKind::PriceOrModelChange];
    shares
        .iter()
        .zip(kinds)
        .filter(|(share, _)| **share >= DOMINANT_SHARE)
        .max_by(|a, b| a.0.total_cmp(b.0))
        .map_or(AnomalyKind::Mixed, |(_, kind)| kind)
}

fn model_share_changes(actual: &HourTotals, expected: &HourTotals) -> Vec<ModelShareChange> {
    let actual_shares = actual.model_shares();
    let expected_shares = expected.model_shares();
    let mut models: Vec<&str> = actual_shares.keys().chain(expected_shares.keys()).copied().collect();
    models.sort_unstable();
    models.dedup();
    let mut changes: Vec<ModelShareChange> = models
        .into_iter()
        .map(|model| ModelShareChange {
            model: model.to_string(),
            actual_share: actual_shares.get(model).copied().unwrap_or(0.0),
            expected_share: expected_shares.get(model).copied().unwrap_or(0.0),
        })
        .collect();
    let change = |c: &ModelShareChange| (c.actual_share - c.expected_share).abs();
    changes.sort_by(|a, b| change(b).total_cmp(&change(a)).then_with(|| a.model.cmp(&b.model)));
    changes.truncate(MAX_MODEL_SHARES);
    changes
}

fn summarize(
    actual_usd: f64,
    expected_usd: f64,
    relative_change: f64,
    kind: AnomalyKind,
    effects: &Effects,
    drivers: &Drivers,
) -> String {
    let change =
        if relative_change.is_finite() { format!("{:+.0}%", relative_change * 100.0) } else { "new spend".to_string() };
    let increased = actual_usd > expected_usd;
    let (actual, expected) = (&drivers.actual, &drivers.expected);
    let multipliers = [
        describe_factor("requests", Some(actual.requests), Some(expected.requests)),
        describe_factor(
            "billed tokens per request",
            actual.billed_tokens_per_request,
            expected.billed_tokens_per_request,
        ),
        describe_factor(
            "cost per 1k billed tokens",
            actual.cost_per_1k_billed_tokens,
            expected.cost_per_1k_billed_tokens,
        ),
    ]
    .join(", ");
    let shares = effect_shares(effects).unwrap_or([0.0; 3]);
    let percent = |share: f64| format!("{:.0}%", share * 100.0);
    let cause = match kind {
        AnomalyKind::TrafficSpike => format!(
            "request volume drove {} of the change ({})",
            percent(shares[0]),
            if increased {
                "more calls at the usual size and price"
            } else {
                "fewer calls at the usual size and price"
            }
        ),
        AnomalyKind::Misconfiguration => format!(
            "unit usage drove {} of the change ({})",
            percent(shares[1]),
            if increased {
                "a prompt that grew, a retry or tool loop, or a cache that stopped hitting"
            } else {
                "shorter prompts, fewer retries or tool calls, or more cache hits"
            }
        ),
        AnomalyKind::PriceOrModelChange => format!(
            "cost per token drove {} of the change ({})",
            percent(shares[2]),
            if increased {
                "a pricier model, a price change or a different model mix"
            } else {
                "a cheaper model or price"
            }
        ),
        AnomalyKind::Mixed => format!(
            "no single driver dominates (volume {}, unit usage {}, rate/mix {})",
            percent(shares[0]),
            percent(shares[1]),
            percent(shares[2])
        ),
    };

    let mut details = Vec::new();
    if let (Some(now), Some(before)) = (actual.cache_hit_ratio, expected.cache_hit_ratio) {
        if (now - before).abs() >= NOTABLE_CACHE_HIT_CHANGE {
            details.push(format!("cache-hit ratio {before:.2} → {now:.2}"));
        }
    }
    if let (Some(now), Some(before)) = (actual.tool_calls_per_agent_run, expected.tool_calls_per_agent_run) {
        let factor = ratio(now, before).unwrap_or(f64::INFINITY);
        if !(1.0 / NOTABLE_TOOL_CALL_RATIO..=NOTABLE_TOOL_CALL_RATIO).contains(&factor) {
            details.push(format!("tool calls per agent run {before:.1} → {now:.1}"));
        }
    }
    let notable_shifts: Vec<String> = drivers
        .model_shares
        .iter()
        .filter(|c| (c.actual_share - c.expected_share).abs() >= NOTABLE_MODEL_SHARE_CHANGE)
        .take(2)
        .map(|c| format!("{} {:.0}% → {:.0}%", c.model, c.expected_share * 100.0, c.actual_share * 100.0))
        .collect();
    if !notable_shifts.is_empty() {
        details.push(format!("model mix shifted: {} of cost", notable_shifts.join(", ")));
    } else if kind == AnomalyKind::PriceOrModelChange && !drivers.model_shares.is_empty() {
        details.push("model mix unchanged, so likely a price change".to_string());
    }
    let details = if details.is_empty() { String::new() } else { format!("; {}", details.join("; ")) };

    format!("cost ${actual_usd:.2} vs ${expected_usd:.2} expected ({change}): {multipliers} — {cause}{details}")
}

/// Few digits for big numbers, enough significant ones for small rates such as dollars per 1k tokens.
fn format_amount(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.5}")
    }
}

/// "requests ×3.0", or "requests 0 → 12" when there was nothing before, or "requests n/a".
fn describe_factor(label: &str, actual: Option<f64>, expected: Option<f64>) -> String {
    match (actual, expected) {
        (Some(now), Some(before)) if before > 0.0 => {
            let factor = now / before;
            if factor < 0.1 {
                format!("{label} ×{factor:.2}")
            } else {
                format!("{label} ×{factor:.1}")
            }
        }
        (Some(now), _) => format!("{label} 0 → {}", format_amount(now)),
        (None, _) => format!("{label} n/a"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Monday 2023-11-20 00:00 UTC.
    const MONDAY: i64 = 1_700_438_400;
    const WEEK_S: i64 = 7 * 24 * 3600;
    const HISTORY_WEEKS: i64 = 5;
    const WINDOW_FROM: i64 = MONDAY + HISTORY_WEEKS * WEEK_S;
    const WINDOW_TO: i64 = WINDOW_FROM + WEEK_S;

    /// What one hour of the synthetic service looks like; tests tweak it for anomalous hours.
    #[derive(Clone, Copy)]
    struct HourShape {
        requests: f64,
        input_per_request: f64,
        output_per_request: f64,
        cache_hit_ratio: f64,
        model: &'static str,
        tool_calls_per_agent_run: f64,
    }

    /// Dollars per token: (uncached input, cached input, output). The "big" model is exactly 5× the small one.
    fn prices(model: &str) -> (f64, f64, f64) {
        let small = (0.15e-6, 0.015e-6, 0.6e-6);
        if model == "gpt-4o" {
            (small.0 * 5.0, small.1 * 5.0, small.2 * 5.0)
        } else {
            small
        }
    }

    /// Deterministic noise in [1 − amplitude, 1 + amplitude] from a 64-bit LCG (Knuth's MMIX constants).
    struct Lcg(u64);

    impl Lcg {
        fn noise(&mut self, amplitude: f64) -> f64 {
            self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            let unit = (self.0 >> 11) as f64 / (1u64 << 53) as f64;
            1.0 + amplitude * (2.0 * unit - 1.0)
        }
    }

    /// Business-hours peak around 14:00 UTC, quiet nights; weekends at 35% of weekdays.
    fn seasonal_requests(hour_s: i64, peak_requests: f64) -> f64 {
        let hour_of_day = (hour_s.rem_euclid(86_400) / 3600) as f64;
        let day_of_week = (hour_s - MONDAY).rem_euclid(WEEK_S) / 86_400; // 0 = Monday
        let daily = if (6.0..=20.0).contains(&hour_of_day) {
            0.15 + 0.85 * (std::f64::consts::PI * (hour_of_day - 6.0) / 16.0).sin()
        } else {
            0.15
        };
        let weekly = if day_of_week >= 5 { 0.35 } else { 1.0 };
        peak_requests * daily * weekly
    }

    fn cell_from_shape(hour_s: i64, shape: &HourShape) -> HourlyCell {
        let (uncached_price, cached_price, output_price) = prices(shape.model);
        let input = shape.requests * shape.input_per_request;
        let cached = input * shape.cache_hit_ratio;
        let output = shape.requests * shape.output_per_request;
        let cost = (input - cached) * uncached_price + cached * cached_price + output * output_price;
        let agent_runs = shape.requests / 10.0;
        let mut by_model = BTreeMap::new();
        by_model.insert(
            shape.model.to_string(),
            ModelUsage { requests: shape.requests, tokens: input + output, cost_usd: cost },
        );
        HourlyCell {
            hour_s,
            requests: shape.requests,
            input_tokens: input,
            output_tokens: output,
            cache_read_tokens: cached,
            reasoning_tokens: 0.0,
            tool_calls: agent_runs * shape.tool_calls_per_agent_run,
            agent_runs,
            cost_usd: cost,
            by_model,
        }
    }

    /// Six weeks of hourly cells (five of history, then the window); `tweak` may alter any hour.
    fn generate(peak_requests: f64, tweak: impl Fn(i64, &mut HourShape)) -> Vec<HourlyCell> {
        generate_range(MONDAY, WINDOW_TO, peak_requests, tweak)
    }

    fn generate_range(
        from_s: i64,
        to_s: i64,
        peak_requests: f64,
        tweak: impl Fn(i64, &mut HourShape),
    ) -> Vec<HourlyCell> {
        let mut lcg = Lcg(42);
        (from_s..to_s)
            .step_by(3600)
            .map(|hour_s| {
                let mut shape = HourShape {
                    requests: seasonal_requests(hour_s, peak_requests) * lcg.noise(0.05),
                    input_per_request: 4000.0 * lcg.noise(0.02),
                    output_per_request: 200.0 * lcg.noise(0.02),
                    cache_hit_ratio: 0.6,
                    model: "gpt-4o-mini",
                    tool_calls_per_agent_run: 3.0,
                };
                tweak(hour_s, &mut shape);
                cell_from_shape(hour_s, &shape)
            })
            .collect()
    }

    /// Hour `hour` (0–23) of day `day` (0 = Monday) of the test window.
    fn window_hour(day: i64, hour: i64) -> i64 {
        WINDOW_FROM + day * 86_400 + hour * 3600
    }

    fn in_hours(hour_s: i64, first: i64, count: i64) -> bool {
        (first..first + count * 3600).contains(&hour_s)
    }

    fn assert_effects_sum_to_delta(anomaly: &Anomaly) {
        let delta = anomaly.actual_usd - anomaly.expected_usd;
        let effects = anomaly.effects;
        let sum = effects.volume_usd + effects.unit_usage_usd + effects.rate_mix_usd;
        assert!((sum - delta).abs() <= 1e-6 * delta.abs().max(1e-9), "effects {effects:?} sum {sum} != delta {delta}");
    }

    const PEAK: f64 = 10_000.0;

    #[test]
    fn normal_weekly_seasonality_raises_nothing() {
        let cells = generate(PEAK, |_, _| {});
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert!(anomalies.is_empty(), "unexpected anomalies: {:#?}", anomalies.first());
        // The window really does swing: weekday peak vs weekend night differ by far more than the threshold.
        let costs: Vec<f64> = cells.iter().filter(|c| c.hour_s >= WINDOW_FROM).map(|c| c.cost_usd).collect();
        let (low, high) = costs.iter().fold((f64::MAX, 0.0_f64), |(lo, hi), &c| (lo.min(c), hi.max(c)));
        assert!(high > 10.0 * low, "synthetic data should have a strong daily/weekly shape");
    }

    #[test]
    fn traffic_spike_is_volume_driven() {
        let spike_start = window_hour(2, 11);
        let cells = generate(PEAK, |hour_s, shape| {
            if in_hours(hour_s, spike_start, 3) {
                shape.requests *= 3.0;
            }
        });
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 3, "{anomalies:#?}");
        for anomaly in &anomalies {
            assert!(in_hours(anomaly.hour_s, spike_start, 3));
            assert_eq!(anomaly.kind, AnomalyKind::TrafficSpike);
            assert_eq!(anomaly.direction, "up");
            assert_eq!(anomaly.baseline, "same_hour_of_week");
            assert!(anomaly.effects.volume_usd > 0.9 * (anomaly.actual_usd - anomaly.expected_usd));
            assert!(anomaly.summary.contains("request volume drove"), "{}", anomaly.summary);
            assert_effects_sum_to_delta(anomaly);
        }
    }

    #[test]
    fn tokens_per_request_jump_is_misconfiguration() {
        let start = window_hour(1, 14);
        let cells = generate(PEAK, |hour_s, shape| {
            if in_hours(hour_s, start, 2) {
                shape.input_per_request *= 4.0;
                shape.output_per_request *= 4.0;
            }
        });
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 2, "{anomalies:#?}");
        for anomaly in &anomalies {
            assert_eq!(anomaly.kind, AnomalyKind::Misconfiguration);
            let actual_tpr = anomaly.drivers.actual.tokens_per_request.unwrap();
            let expected_tpr = anomaly.drivers.expected.tokens_per_request.unwrap();
            assert!((actual_tpr / expected_tpr - 4.0).abs() < 0.3, "tokens per request ×{}", actual_tpr / expected_tpr);
            assert!(anomaly.summary.contains("unit usage drove"), "{}", anomaly.summary);
            assert_effects_sum_to_delta(anomaly);
        }
    }

    #[test]
    fn cache_that_stopped_hitting_is_not_a_traffic_spike() {
        let hour = window_hour(3, 11);
        let cells = generate(PEAK, |hour_s, shape| {
            if hour_s == hour {
                shape.cache_hit_ratio = 0.05;
            }
        });
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        let anomaly = &anomalies[0];
        assert_ne!(anomaly.kind, AnomalyKind::TrafficSpike);
        assert_eq!(anomaly.kind, AnomalyKind::Misconfiguration, "{}", anomaly.summary);
        assert!(anomaly.summary.contains("cache-hit ratio 0.60 → 0.05"), "{}", anomaly.summary);
        // All input tokens are the same; what changed is how many of them are billed at full price.
        let actual_tpr = anomaly.drivers.actual.tokens_per_request.unwrap();
        let expected_tpr = anomaly.drivers.expected.tokens_per_request.unwrap();
        assert!((actual_tpr / expected_tpr - 1.0).abs() < 0.05);
        assert_effects_sum_to_delta(anomaly);
    }

    #[test]
    fn switch_to_pricier_model_is_price_or_model_change() {
        let start = window_hour(0, 9);
        let cells = generate(PEAK, |hour_s, shape| {
            if in_hours(hour_s, start, 2) {
                shape.model = "gpt-4o";
            }
        });
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 2, "{anomalies:#?}");
        for anomaly in &anomalies {
            assert_eq!(anomaly.kind, AnomalyKind::PriceOrModelChange);
            assert!(anomaly.summary.contains("model mix shifted: gpt-4o 0% → 100%"), "{}", anomaly.summary);
            let top = &anomaly.drivers.model_shares[0];
            assert!(top.expected_share < 1e-9 && (top.actual_share - 1.0).abs() < 1e-9, "{top:?}");
            let rate_ratio = anomaly.drivers.actual.cost_per_1k_billed_tokens.unwrap()
                / anomaly.drivers.expected.cost_per_1k_billed_tokens.unwrap();
            assert!((rate_ratio - 5.0).abs() < 0.3, "cost per token ×{rate_ratio}");
            assert_effects_sum_to_delta(anomaly);
        }
    }

    #[test]
    fn changes_below_the_dollar_floor_raise_nothing() {
        // Peak cost ≈ $0.02/hour; a 5× surge reaches ≈ $0.10 — a big relative jump, but only cents.
        let peak = 50.0;
        let start = window_hour(2, 12);
        let cells = generate(peak, |hour_s, shape| {
            if in_hours(hour_s, start, 3) {
                shape.requests *= 5.0;
            }
        });
        let peak_cost = cells.iter().map(|c| c.cost_usd).fold(0.0, f64::max);
        assert!(peak_cost < 0.15, "tiny service should stay in cents, got {peak_cost}");
        assert!(detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default()).is_empty());
        // The floor is what suppresses them: lowering it reveals the surge.
        let low_floor = AnomalyConfig { min_abs_usd: 0.01, ..AnomalyConfig::default() };
        assert_eq!(detect(&cells, WINDOW_FROM, WINDOW_TO, &low_floor).len(), 3);
    }

    #[test]
    fn anomalies_are_ranked_by_impact_and_effects_add_up() {
        let big = window_hour(2, 13);
        let small = window_hour(3, 19);
        let drop = window_hour(4, 12);
        let cells = generate(PEAK, |hour_s, shape| {
            if hour_s == big {
                shape.requests *= 4.0;
            } else if hour_s == small {
                shape.input_per_request *= 3.0;
            } else if hour_s == drop {
                shape.requests *= 0.1;
            }
        });
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_TO, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 3, "{anomalies:#?}");
        assert!(anomalies.windows(2).all(|pair| pair[0].impact_usd >= pair[1].impact_usd));
        assert_eq!(anomalies[0].hour_s, big);
        let down = anomalies.iter().find(|a| a.hour_s == drop).unwrap();
        assert_eq!(down.direction, "down");
        assert_eq!(down.kind, AnomalyKind::TrafficSpike);
        assert!(down.relative_change < -0.5);
        for anomaly in &anomalies {
            assert_effects_sum_to_delta(anomaly);
            assert!((anomaly.impact_usd - (anomaly.actual_usd - anomaly.expected_usd).abs()).abs() < 1e-12);
        }
    }

    #[test]
    fn short_history_falls_back_to_daily_then_trailing() {
        // Three days of history (Mon–Wed), window on Thursday with a spike at 13:00.
        let window_from = MONDAY + 3 * 86_400;
        let spike = window_from + 13 * 3600;
        let cells = generate_range(MONDAY, window_from + 86_400, PEAK, |hour_s, shape| {
            if hour_s == spike {
                shape.requests *= 3.0;
            }
        });
        let anomalies = detect(&cells, window_from, window_from + 86_400, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        assert_eq!(anomalies[0].hour_s, spike);
        assert_eq!(anomalies[0].baseline, "same_hour_of_day");
        assert_eq!(anomalies[0].kind, AnomalyKind::TrafficSpike);

        // Ten hours of flat history: only the trailing hours are available.
        let start = MONDAY + 9 * 3600;
        let flat = |hour_s: i64, shape: &mut HourShape| {
            shape.requests = if hour_s == start + 12 * 3600 { 30_000.0 } else { 10_000.0 };
        };
        let cells = generate_range(start, start + 14 * 3600, PEAK, flat);
        let anomalies = detect(&cells, start + 10 * 3600, start + 14 * 3600, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 1, "{anomalies:#?}");
        assert_eq!(anomalies[0].baseline, "trailing_24h");
    }

    #[test]
    fn empty_and_hostile_input_do_not_panic() {
        let config = AnomalyConfig::default();
        assert!(detect(&[], WINDOW_FROM, WINDOW_TO, &config).is_empty());
        assert!(detect(&[], i64::MIN, i64::MAX, &config).is_empty());

        let cells = generate(PEAK, |_, _| {});
        assert!(detect(&cells, WINDOW_TO, WINDOW_FROM, &config).is_empty(), "reversed window");
        assert!(detect(&cells, i64::MIN, i64::MAX, &config).is_empty(), "no history before i64::MIN");
        let _ = detect(&cells, WINDOW_FROM, i64::MAX, &config);
        let _ = detect(&cells, i64::MAX - 10, i64::MAX, &config);

        let nan_cell = HourlyCell {
            hour_s: WINDOW_FROM + 3600,
            requests: f64::NAN,
            input_tokens: f64::INFINITY,
            output_tokens: -5.0,
            cache_read_tokens: f64::NAN,
            cost_usd: f64::NAN,
            by_model: BTreeMap::from([("x".to_string(), ModelUsage { cost_usd: f64::NAN, ..ModelUsage::default() })]),
            ..HourlyCell::default()
        };
        let extreme = HourlyCell { hour_s: i64::MIN, cost_usd: 5.0, ..HourlyCell::default() };
        let mut hostile = cells.clone();
        hostile.push(nan_cell);
        hostile.push(extreme);
        hostile.push(HourlyCell { hour_s: i64::MAX, cost_usd: 1e308, ..HourlyCell::default() });
        let huge =
            HourlyCell { hour_s: WINDOW_FROM + 7200, cost_usd: f64::MAX, requests: 1e308, ..HourlyCell::default() };
        hostile.push(huge.clone());
        hostile.push(huge);
        for anomaly in detect(&hostile, WINDOW_FROM, WINDOW_TO, &config) {
            assert!(anomaly.actual_usd.is_finite() && anomaly.expected_usd.is_finite());
        }
        let nan_config = AnomalyConfig { relative_threshold: f64::NAN, min_abs_usd: f64::NAN, lookback_weeks: 0 };
        assert!(detect(&cells, WINDOW_FROM, WINDOW_TO, &nan_config).is_empty());
        let zero_weeks = AnomalyConfig { lookback_weeks: 0, ..config };
        assert!(detect(&cells, WINDOW_FROM, WINDOW_TO, &zero_weeks).is_empty());
    }

    #[test]
    fn new_spend_from_zero_is_all_volume() {
        // Silent service (all-zero history), then traffic appears.
        let mut cells: Vec<HourlyCell> = (0..200)
            .map(|i| HourlyCell { hour_s: WINDOW_FROM - 200 * 3600 + i * 3600, ..HourlyCell::default() })
            .collect();
        let shape = HourShape {
            requests: 10_000.0,
            input_per_request: 1000.0,
            output_per_request: 100.0,
            cache_hit_ratio: 0.0,
            model: "gpt-4o",
            tool_calls_per_agent_run: 2.0,
        };
        cells.push(cell_from_shape(WINDOW_FROM, &shape));
        let anomalies = detect(&cells, WINDOW_FROM, WINDOW_FROM + 3600, &AnomalyConfig::default());
        assert_eq!(anomalies.len(), 1);
        let anomaly = &anomalies[0];
        assert!(anomaly.relative_change.is_infinite());
        assert_eq!(anomaly.kind, AnomalyKind::TrafficSpike);
        assert!((anomaly.effects.volume_usd - anomaly.actual_usd).abs() < 1e-9);
        assert!(anomaly.summary.contains("new spend"), "{}", anomaly.summary);
        assert_effects_sum_to_delta(anomaly);
    }

    #[test]
    fn decomposition_is_exact_with_zero_factors_and_missing_tokens() {
        let totals = |requests: f64, tokens: f64, cost: f64| HourTotals {
            requests,
            input_tokens: tokens,
            cost_usd: cost,
            ..HourTotals::default()
        };
        let cases = [
            (totals(100.0, 1000.0, 2.0), totals(300.0, 3000.0, 6.0)),
            (totals(100.0, 1000.0, 2.0), totals(0.0, 0.0, 0.0)),
            (totals(100.0, 0.0, 2.0), totals(100.0, 0.0, 8.0)), // cost without tokens
            (totals(0.0, 0.0, 0.0), totals(0.0, 0.0, 3.0)),     // cost without requests
            (totals(100.0, 1000.0, 0.0), totals(100.0, 1000.0, 5.0)),
        ];
        for (expected, actual) in cases {
            let effects = decompose(&actual, &expected);
            let sum = effects.volume_usd + effects.unit_usage_usd + effects.rate_mix_usd;
            let delta = actual.cost_usd - expected.cost_usd;
            assert!((sum - delta).abs() <= 1e-9, "{effects:?} vs {delta}");
        }
        // Pure volume: LMDI gives everything to volume.
        let effects = decompose(&totals(300.0, 3000.0, 6.0), &totals(100.0, 1000.0, 2.0));
        assert!((effects.volume_usd - 4.0).abs() < 1e-9 && effects.unit_usage_usd.abs() < 1e-9);
    }

    #[test]
    fn kind_serializes_snake_case() {
        let json = serde_json::to_string(&[
            AnomalyKind::TrafficSpike,
            AnomalyKind::Misconfiguration,
            AnomalyKind::PriceOrModelChange,
            AnomalyKind::Mixed,
        ])
        .unwrap();
        assert_eq!(json, r#"["traffic_spike","misconfiguration","price_or_model_change","mixed"]"#);
    }
}
