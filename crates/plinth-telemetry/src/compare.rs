//! Prompt-version comparison and retrieval quality.
//!
//! Volumes, error rates and latency percentiles come from rollups (exact
//! counts over the whole range). The per-request samples that significance
//! tests need (latency, tokens and cost per call) come from the raw spans
//! kept for the retention window, and evaluation scores from the score
//! table. A difference is flagged when its test's p-value is below α
//! (default 0.05) against the baseline version.

use std::collections::BTreeMap;

use crate::records::{RollupRow, ScoreRow, SpanBody, SpanRow};
use serde::Serialize;

use crate::genai::SpanFacts;
use crate::query::{is_model_call, Percentiles};
use crate::rollup::Cell;
use crate::stats::{mann_whitney_u, quantile, two_proportion_z_test, welch_t_test, Moments, TestResult};

#[derive(Debug, Clone, Serialize)]
pub struct Significance {
    /// The metric compared against the baseline.
    pub metric: String,
    pub test: String,
    pub p_value: f64,
    pub significant: bool,
    /// `higher` or `lower` than the baseline.
    pub direction: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct VersionStats {
    pub version: String,
    pub requests: i64,
    pub errors: i64,
    pub error_rate: f64,
    pub latency_ms: Percentiles,
    pub tokens_per_request: f64,
    pub cost_per_request_usd: f64,
    /// Mean of numeric evaluation scores (booleans count as 0/1).
    pub mean_score: Option<f64>,
    pub scores: usize,
    /// Raw calls sampled for the tests (within span retention).
    pub samples: usize,
    pub baseline: bool,
    /// Tests against the baseline (empty for the baseline itself).
    pub differences: Vec<Significance>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PromptComparison {
    pub prompt: String,
    pub prompt_ref: Option<String>,
    pub from: String,
    pub to: String,
    pub alpha: f64,
    pub baseline: Option<String>,
    pub versions: Vec<VersionStats>,
}

#[derive(Default)]
struct Samples {
    latency: Vec<f64>,
    tokens: Vec<f64>,
    cost: Vec<f64>,
    scores: Vec<f64>,
}

/// Compares every version of a prompt. `baseline` defaults to the version
/// with the most requests.
pub fn compare_prompt_versions(
    rollups: &[RollupRow],
    spans: &[SpanRow],
    scores: &[ScoreRow],
    baseline: Option<&str>,
    alpha: f64,
) -> (Option<String>, Vec<VersionStats>) {
    let mut cells: BTreeMap<String, Cell> = BTreeMap::new();
    for row in rollups {
        if is_model_call(&row.key.operation) && !row.key.operation.contains(':') {
            cells.entry(row.key.prompt_version.clone()).or_default().merge(&Cell::from_row(row));
        }
    }
    let mut samples: BTreeMap<String, Samples> = BTreeMap::new();
    for span in spans {
        let Some(facts) =
            span.body.as_ref().and_then(SpanBody::whole).and_then(|b| serde_json::from_str::<SpanFacts>(b).ok())
        else {
            continue;
        };
        if !facts.bills_tokens() {
            continue;
        }
        let sample = samples.entry(span.prompt_version.clone()).or_default();
        sample.latency.push(facts.duration_ms());
        sample.tokens.push((facts.usage.input + facts.usage.output) as f64);
        sample.cost.push(facts.cost_usd.unwrap_or(0.0));
    }
    for score in scores {
        if let (Some(version), Some(value)) = (&score.prompt_version, score.value_num) {
            samples.entry(version.clone()).or_default().scores.push(value);
        }
    }
    let baseline = baseline
        .map(str::to_string)
        .filter(|b| cells.contains_key(b))
        .or_else(|| cells.iter().max_by_key(|(_, c)| c.requests).map(|(v, _)| v.clone()));
    let empty = Samples::default();
    let base_cell = baseline.as_ref().and_then(|b| cells.get(b)).cloned().unwrap_or_default();
    let base_samples = baseline.as_ref().and_then(|b| samples.get(b)).unwrap_or(&empty);
    let mut versions: Vec<VersionStats> = cells
        .iter()
        .map(|(version, cell)| {
            let own = samples.get(version).unwrap_or(&empty);
            let is_baseline = baseline.as_deref() == Some(version.as_str());
            let mut differences = Vec::new();
            if !is_baseline {
                let mut push = |metric: &str, test: &str, result: Option<TestResult>, higher: bool| {
                    if let Some(result) = result {
                        differences.push(Significance {
                            metric: metric.into(),
                            test: test.into(),
                            p_value: result.p_value,
                            significant: result.significant,
                            direction: if higher { "higher".into() } else { "lower".into() },
                        });
                    }
                };
                let rate = |c: &Cell| if c.requests > 0 { c.errors as f64 / c.requests as f64 } else { 0.0 };
                push(
                    "error_rate",
                    "two-proportion z",
                    two_proportion_z_test(
                        cell.errors as f64,
                        cell.requests as f64,
                        base_cell.errors as f64,
                        base_cell.requests as f64,
                        alpha,
                    ),
                    rate(cell) > rate(&base_cell),
                );
                let median = |v: &[f64]| {
                    let mut sorted = v.to_vec();
                    sorted.sort_by(f64::total_cmp);
                    quantile(&sorted, 0.5).unwrap_or(0.0)
                };
                push(
                    "latency",
                    "Mann-Whitney U",
                    mann_whitney_u(&own.latency, &base_samples.latency, alpha),
                    median(&own.latency) > median(&base_samples.latency),
                );
                for (metric, a, b) in [
                    ("tokens_per_request", &own.tokens, &base_samples.tokens),
                    ("cost_per_request", &own.cost, &base_samples.cost),
                    ("evaluation_score", &own.scores, &base_samples.scores),
                ] {
                    let (ma, mb) = (Moments::from_values(a), Moments::from_values(b));
                    push(metric, "Welch t", welch_t_test(&ma, &mb, alpha), ma.mean > mb.mean);
                }
            }
            let requests = cell.requests.max(1) as f64;
            VersionStats {
                version: version.clone(),
                requests: cell.requests,
                errors: cell.errors,
                error_rate: if cell.requests > 0 { cell.errors as f64 / cell.requests as f64 } else { 0.0 },
                latency_ms: crate::query::Totals::of(cell).latency_ms,
                tokens_per_request: (cell.input_tokens + cell.output_tokens) as f64 / requests,
                cost_per_request_usd: cell.cost_usd / requests,
                mean_score: (!own.scores.is_empty()).then(|| Moments::from_values(&own.scores).mean),
                scores: own.scores.len(),
                samples: own.latency.len(),
                baseline: is_baseline,
                differences,
            }
        })
        .collect();
    versions.sort_by(|a, b| natural_version_order(&a.version, &b.version));
    (baseline, versions)
}

/// `2` < `10`, `v1.2` < `v1.10`; other text compares as text.
fn natural_version_order(a: &str, b: &str) -> std::cmp::Ordering {
    /// Numbers sort before text, and among themselves by value.
    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    enum Part {
        Number(u64),
        Text(String),
    }
    let parts = |s: &str| -> Vec<Part> {
        s.split(|c: char| !c.is_ascii_alphanumeric())
            .map(|p| p.trim_start_matches('v').parse::<u64>().map_or_else(|_| Part::Text(p.to_string()), Part::Number))
            .collect()
    };
    parts(a).cmp(&parts(b))
}

#[derive(Debug, Clone, Serialize)]
pub struct ScoreDistribution {
    pub count: usize,
    pub mean: Option<f64>,
    pub p10: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    /// Ten equal-width bins over [0, 1] (scores outside are clamped).
    pub histogram: Vec<usize>,
}

#[derive(Debug, Clone, Serialize)]
pub struct RetrievalSource {
    /// `gen_ai.data_source.id` (a vector store or index).
    pub data_source: String,
    /// The catalogued vector store, when the name matches a Resource.
    pub resource_ref: Option<String>,
    pub retrievals: usize,
    pub errors: usize,
    pub latency_ms: Percentiles,
    pub documents_per_retrieval: f64,
    /// Scores of every returned document.
    pub document_scores: ScoreDistribution,
    /// Scores of each retrieval's best document.
    pub top_scores: ScoreDistribution,
    /// Share of retrievals that returned nothing.
    pub empty_rate: f64,
    /// Mean evaluation score per evaluation name (e.g. relevance,
    /// context_precision) from evaluations on the retrieval spans or their
    /// traces.
    pub evaluations: BTreeMap<String, f64>,
}

fn distribution(mut values: Vec<f64>) -> ScoreDistribution {
    values.retain(|v| v.is_finite());
    values.sort_by(f64::total_cmp);
    let mut histogram = vec![0usize; 10];
    for v in &values {
        histogram[((v.clamp(0.0, 1.0) * 10.0) as usize).min(9)] += 1;
    }
    ScoreDistribution {
        count: values.len(),
        mean: (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64),
        p10: quantile(&values, 0.1),
        p50: quantile(&values, 0.5),
        p90: quantile(&values, 0.9),
        histogram,
    }
}

/// Retrieval quality per data source from retrieval spans and scores.
pub fn retrieval_quality(
    spans: &[SpanRow],
    scores: &[ScoreRow],
    resource_ref: &dyn Fn(&str) -> Option<String>,
) -> Vec<RetrievalSource> {
    #[derive(Default)]
    struct Acc {
        retrievals: usize,
        errors: usize,
        empty: usize,
        docs: usize,
        latency: crate::rollup::Sketch,
        doc_scores: Vec<f64>,
        top_scores: Vec<f64>,
        traces: std::collections::HashSet<String>,
        spans: std::collections::HashSet<String>,
    }
    let mut sources: BTreeMap<String, Acc> = BTreeMap::new();
    for span in spans {
        let Some(facts) =
            span.body.as_ref().and_then(SpanBody::whole).and_then(|b| serde_json::from_str::<SpanFacts>(b).ok())
        else {
            continue;
        };
        if facts.operation.as_deref() != Some("retrieval") {
            continue;
        }
        let acc = sources.entry(facts.data_source.clone().unwrap_or_else(|| "unknown".into())).or_default();
        acc.retrievals += 1;
        acc.errors += usize::from(facts.error);
        acc.latency.add(facts.duration_ms());
        acc.docs += facts.documents.len();
        if facts.documents.is_empty() {
            acc.empty += 1;
        }
        let doc_scores: Vec<f64> = facts.documents.iter().filter_map(|d| d.score).collect();
        if let Some(top) = doc_scores.iter().copied().max_by(f64::total_cmp) {
            acc.top_scores.push(top);
        }
        acc.doc_scores.extend(doc_scores);
        acc.traces.insert(facts.trace_id.clone());
        acc.spans.insert(facts.span_id.clone());
    }
    sources
        .into_iter()
        .map(|(source, acc)| {
            let mut evaluations: BTreeMap<String, (f64, usize)> = BTreeMap::new();
            for score in scores {
                let on_span = score.span_id.as_ref().is_some_and(|s| acc.spans.contains(s));
                let on_trace =
                    score.span_id.is_none() && score.trace_id.as_ref().is_some_and(|t| acc.traces.contains(t));
                if let (true, Some(value)) = (on_span || on_trace, score.value_num) {
                    let entry = evaluations.entry(score.name.clone()).or_default();
                    entry.0 += value;
                    entry.1 += 1;
                }
            }
            RetrievalSource {
                resource_ref: resource_ref(&source),
                data_source: source,
                retrievals: acc.retrievals,
                errors: acc.errors,
                latency_ms: crate::query::Totals::of(&Cell { duration: acc.latency, ..Cell::default() }).latency_ms,
                documents_per_retrieval: acc.docs as f64 / acc.retrievals.max(1) as f64,
                document_scores: distribution(acc.doc_scores),
                top_scores: distribution(acc.top_scores),
                empty_rate: acc.empty as f64 / acc.retrievals.max(1) as f64,
                evaluations: evaluations.into_iter().map(|(k, (sum, n))| (k, sum / n as f64)).collect(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_naturally() {
        let mut v = vec!["10", "2", "v1.10", "v1.2", "1"];
        v.sort_by(|a, b| natural_version_order(a, b));
        // A leading `v` is ignored: v1.2 sits between 1 and 2.
        assert_eq!(v, vec!["1", "v1.2", "v1.10", "2", "10"]);
    }
}
