//! Per-minute and per-hour rollups: counts, token sums, cost and mergeable
//! latency sketches per (service, component, team, provider, model,
//! operation, prompt, prompt version, agent).
//!
//! Every ingest batch appends *partial* rows; queries merge whatever rows a
//! range holds and compaction folds partials together in the background.
//! Because counts add and DDSketches merge exactly, the answer does not
//! depend on how rows were split or when they were compacted.

use crate::records::{RollupKey, RollupRow};
use rustc_hash::FxHashMap;
use sketches_ddsketch::{Config, DDSketch};

use crate::genai::SpanFacts;

/// Relative accuracy of latency quantiles (DDSketch's α).
pub const SKETCH_ALPHA: f64 = 0.01;
const SKETCH_MAX_BINS: u32 = 2048;
/// Smallest distinguishable latency, in milliseconds (1 µs).
const SKETCH_MIN_MS: f64 = 1e-3;

/// A latency distribution in milliseconds.
#[derive(Clone)]
pub struct Sketch(DDSketch);

impl Default for Sketch {
    fn default() -> Self {
        Sketch(DDSketch::new(Config::new(SKETCH_ALPHA, SKETCH_MAX_BINS, SKETCH_MIN_MS)))
    }
}

impl std::fmt::Debug for Sketch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Sketch(count={})", self.0.count())
    }
}

impl Sketch {
    pub fn add(&mut self, ms: f64) {
        if ms.is_finite() {
            self.0.add(ms.max(0.0));
        }
    }

    pub fn count(&self) -> usize {
        self.0.count()
    }

    pub fn merge(&mut self, other: &Sketch) {
        if other.count() > 0 {
            // Both sides are built with the same configuration, so this cannot fail.
            let _ = self.0.merge(&other.0);
        }
    }

    pub fn quantile(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    pub fn mean(&self) -> Option<f64> {
        let count = self.count();
        (count > 0).then(|| self.0.sum().unwrap_or(0.0) / count as f64)
    }

    /// Stored form; an empty sketch is stored as no bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        if self.count() == 0 {
            return Vec::new();
        }
        postcard::to_allocvec(&self.0).unwrap_or_default()
    }

    /// Reads the stored form; unreadable bytes read as an empty sketch (a
    /// damaged row must not take a whole summary down).
    pub fn from_bytes(bytes: &[u8]) -> Sketch {
        if bytes.is_empty() {
            return Sketch::default();
        }
        postcard::from_bytes(bytes).map(Sketch).unwrap_or_default()
    }
}

/// Sums and sketches of one (bucket, key).
#[derive(Debug, Clone, Default)]
pub struct Cell {
    pub requests: i64,
    pub errors: i64,
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cache_read_tokens: i64,
    pub cache_write_tokens: i64,
    pub reasoning_tokens: i64,
    pub tool_calls: i64,
    pub cost_usd: f64,
    pub duration: Sketch,
    pub ttft: Sketch,
}

impl Cell {
    pub fn add_span(&mut self, facts: &SpanFacts) {
        self.requests += 1;
        self.errors += i64::from(facts.error);
        self.duration.add(facts.duration_ms());
        if let Some(ttft) = facts.ttft_ms {
            self.ttft.add(ttft);
        }
        if facts.operation.as_deref() == Some("execute_tool") {
            self.tool_calls += 1;
        }
        if facts.bills_tokens() {
            let usage = &facts.usage;
            self.input_tokens += usage.input as i64;
            self.output_tokens += usage.output as i64;
            self.cache_read_tokens += usage.cache_read as i64;
            self.cache_write_tokens += usage.cache_write as i64;
            self.reasoning_tokens += usage.reasoning as i64;
            self.cost_usd += facts.cost_usd.unwrap_or(0.0);
        }
    }

    pub fn merge(&mut self, other: &Cell) {
        self.requests += other.requests;
        self.errors += other.errors;
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.tool_calls += other.tool_calls;
        self.cost_usd += other.cost_usd;
        self.duration.merge(&other.duration);
        self.ttft.merge(&other.ttft);
    }

    /// Adds a stored row without building a whole cell for it.
    pub fn merge_row(&mut self, row: &RollupRow) {
        self.requests += row.requests;
        self.errors += row.errors;
        self.input_tokens += row.input_tokens;
        self.output_tokens += row.output_tokens;
        self.cache_read_tokens += row.cache_read_tokens;
        self.cache_write_tokens += row.cache_write_tokens;
        self.reasoning_tokens += row.reasoning_tokens;
        self.tool_calls += row.tool_calls;
        self.cost_usd += row.cost_usd;
        if !row.duration_sketch.is_empty() {
            self.duration.merge(&Sketch::from_bytes(&row.duration_sketch));
        }
        if !row.ttft_sketch.is_empty() {
            self.ttft.merge(&Sketch::from_bytes(&row.ttft_sketch));
        }
    }

    pub fn from_row(row: &RollupRow) -> Cell {
        Cell {
            requests: row.requests,
            errors: row.errors,
            input_tokens: row.input_tokens,
            output_tokens: row.output_tokens,
            cache_read_tokens: row.cache_read_tokens,
            cache_write_tokens: row.cache_write_tokens,
            reasoning_tokens: row.reasoning_tokens,
            tool_calls: row.tool_calls,
            cost_usd: row.cost_usd,
            duration: Sketch::from_bytes(&row.duration_sketch),
            ttft: Sketch::from_bytes(&row.ttft_sketch),
        }
    }

    pub fn to_row(&self, bucket: i64, key: RollupKey) -> RollupRow {
        RollupRow {
            bucket,
            key,
            requests: self.requests,
            errors: self.errors,
            input_tokens: self.input_tokens,
            output_tokens: self.output_tokens,
            cache_read_tokens: self.cache_read_tokens,
            cache_write_tokens: self.cache_write_tokens,
            reasoning_tokens: self.reasoning_tokens,
            tool_calls: self.tool_calls,
            cost_usd: self.cost_usd,
            duration_sketch: self.duration.to_bytes(),
            ttft_sketch: self.ttft.to_bytes(),
        }
    }
}

/// The operation dimension of ordinary (non-GenAI) server spans.
pub const SERVER_OPERATION: &str = "server";

/// Accumulates spans into minute and hour cells. Keys are indexes into a
/// table of distinct keys, so the per-span work allocates nothing.
#[derive(Default)]
pub struct RollupBuilder {
    minutes: FxHashMap<(i64, u32), Cell>,
    hours: FxHashMap<(i64, u32), Cell>,
}

impl RollupBuilder {
    pub fn add(&mut self, key: u32, facts: &SpanFacts) {
        let start_s = facts.start_ns.div_euclid(1_000_000_000);
        let minute = start_s - start_s.rem_euclid(60);
        let hour = start_s - start_s.rem_euclid(3600);
        self.minutes.entry((minute, key)).or_default().add_span(facts);
        self.hours.entry((hour, key)).or_default().add_span(facts);
    }

    /// The rows; `keys[i]` is the key of index `i`.
    pub fn into_rows(self, keys: &[RollupKey]) -> (Vec<RollupRow>, Vec<RollupRow>) {
        let rows = |cells: FxHashMap<(i64, u32), Cell>| {
            cells
                .into_iter()
                .filter_map(|((bucket, key), cell)| Some(cell.to_row(bucket, keys.get(key as usize)?.clone())))
                .collect::<Vec<_>>()
        };
        (rows(self.minutes), rows(self.hours))
    }
}

/// Merges rows of one (bucket, key) into one: compaction's merge function.
pub fn merge_rows(rows: Vec<RollupRow>) -> RollupRow {
    let mut iter = rows.into_iter();
    let Some(first) = iter.next() else { return RollupRow::default() };
    let mut cell = Cell::from_row(&first);
    for row in iter {
        cell.merge(&Cell::from_row(&row));
    }
    cell.to_row(first.bucket, first.key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketch_round_trip_and_accuracy() {
        let mut sketch = Sketch::default();
        for i in 1..=10_000 {
            sketch.add(i as f64);
        }
        let back = Sketch::from_bytes(&sketch.to_bytes());
        let p99 = back.quantile(0.99).unwrap();
        assert!((p99 - 9900.0).abs() / 9900.0 <= 0.011, "{p99}");
        assert!(Sketch::from_bytes(b"garbage").count() == 0);
        assert!(Sketch::default().to_bytes().is_empty());
    }

    #[test]
    fn split_rows_merge_to_the_same_answer() {
        let key = RollupKey { service: "svc".into(), ..Default::default() };
        let facts = |ms: i64| SpanFacts {
            operation: Some("chat".into()),
            start_ns: 60_000_000_000,
            end_ns: 60_000_000_000 + ms * 1_000_000,
            cost_usd: Some(0.5),
            ..Default::default()
        };
        let keys = [key];
        let mut a = RollupBuilder::default();
        let mut b = RollupBuilder::default();
        let mut whole = RollupBuilder::default();
        for ms in 1..=100 {
            if ms % 2 == 0 { &mut a } else { &mut b }.add(0, &facts(ms));
            whole.add(0, &facts(ms));
        }
        let (mut parts, _) = a.into_rows(&keys);
        parts.extend(b.into_rows(&keys).0);
        let merged = merge_rows(parts);
        let (whole, hours) = whole.into_rows(&keys);
        assert_eq!(merged.requests, 100);
        assert_eq!(merged.requests, whole[0].requests);
        assert!((merged.cost_usd - 50.0).abs() < 1e-9);
        assert_eq!(Cell::from_row(&merged).duration.quantile(0.5), Cell::from_row(&whole[0]).duration.quantile(0.5));
        assert_eq!(hours[0].bucket, 0);
        assert_eq!(merged.bucket, 60);
    }
}
