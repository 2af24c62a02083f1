//! The versioned price table (`prices.yaml`): what a token cost on the day
//! a call was made.
//!
//! ```yaml
//! version: "2026-11-01"          # recorded with every computed cost
//! models:
//!   - match: "gpt-4o-mini*"      # glob over the model name, case-insensitive
//!     provider: openai           # optional
//!     prices:                    # USD per million tokens, by start date
//!       - from: 2024-07-18
//!         input: 0.15
//!         output: 0.60
//!         cache_read: 0.075      # optional; defaults to input
//!         cache_write: 0.15      # optional; defaults to input
//!         reasoning: 0.60        # optional; defaults to output
//! ```
//!
//! The first entry (in file order) whose pattern and provider match wins, so
//! specific patterns go before general ones. Within it, the price with the
//! latest `from` on or before the call's date applies.

use globset::{GlobBuilder, GlobMatcher};
use plinth_model::yaml::{field_lines, parse_documents, YamlLimits};
use serde_json::Value;

use crate::genai::Usage;

/// Prices of one period, USD per million tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct Price {
    /// Days since the Unix epoch of the first day this price applies.
    pub from_day: i64,
    pub from: String,
    pub input: f64,
    pub output: f64,
    pub cache_read: f64,
    pub cache_write: f64,
    pub reasoning: f64,
}

#[derive(Debug, Clone)]
struct Entry {
    pattern: String,
    matcher: GlobMatcher,
    provider: Option<String>,
    /// Sorted by `from_day`.
    prices: Vec<Price>,
}

/// A parsed price table.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    pub version: String,
    entries: Vec<Entry>,
}

/// A computed cost and the table entry that priced it.
#[derive(Debug, Clone, PartialEq)]
pub struct Priced {
    pub cost_usd: f64,
    /// `<table version>:<pattern>@<from>`.
    pub price_version: String,
}

/// A problem in a price file, with its line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{file}:{line}: {field}: {message}")]
pub struct PriceError {
    pub file: String,
    pub line: u32,
    pub field: String,
    pub message: String,
}

impl PriceTable {
    /// Parses a price file. Every problem is reported (with its line), and a
    /// file with any problem is refused as a whole: a half-read price table
    /// would silently under-bill.
    pub fn parse(file: &str, text: &str) -> Result<PriceTable, Vec<PriceError>> {
        let limits = YamlLimits::default();
        let docs = parse_documents(text, &limits);
        let Some(doc) = docs.first() else {
            return Err(vec![PriceError {
                file: file.into(),
                line: 1,
                field: "(file)".into(),
                message: "the file is empty; it needs `version` and `models`".into(),
            }]);
        };
        let value = match &doc.value {
            Ok(value) => value.clone(),
            Err(error) => {
                return Err(vec![PriceError {
                    file: file.into(),
                    line: error.line.unwrap_or(doc.line),
                    field: "(yaml)".into(),
                    message: error.message.clone(),
                }])
            }
        };
        let lines = field_lines(text, doc, &limits);
        let mut errors = Vec::new();
        let mut fail = |field: String, message: String| {
            let line = lines.get(&field).copied().unwrap_or(doc.line);
            errors.push(PriceError { file: file.into(), line, field, message });
        };

        let version = match value.get("version") {
            Some(Value::String(v)) if !v.is_empty() => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => {
                fail("version".into(), "missing or empty; set a version such as \"2026-11-01\"".into());
                String::new()
            }
        };
        let mut entries = Vec::new();
        match value.get("models") {
            Some(Value::Array(models)) => {
                for (i, model) in models.iter().enumerate() {
                    let at = format!("models[{i}]");
                    let Some(pattern) = model.get("match").and_then(Value::as_str) else {
                        fail(format!("{at}.match"), "missing; give a model-name glob such as \"gpt-4o*\"".into());
                        continue;
                    };
                    let matcher = match GlobBuilder::new(pattern).case_insensitive(true).build() {
                        Ok(glob) => glob.compile_matcher(),
                        Err(error) => {
                            fail(format!("{at}.match"), format!("not a valid glob: {error}"));
                            continue;
                        }
                    };
                    let provider = model.get("provider").and_then(Value::as_str).map(str::to_ascii_lowercase);
                    let mut prices = Vec::new();
                    let Some(Value::Array(periods)) = model.get("prices") else {
                        fail(format!("{at}.prices"), "missing; list at least one {from, input, output}".into());
                        continue;
                    };
                    for (j, period) in periods.iter().enumerate() {
                        let at = format!("{at}.prices[{j}]");
                        let from = match period.get("from") {
                            Some(Value::String(s)) => s.clone(),
                            _ => {
                                fail(format!("{at}.from"), "missing; give the first day as YYYY-MM-DD".into());
                                continue;
                            }
                        };
                        let Some(from_day) = parse_day(&from) else {
                            fail(format!("{at}.from"), format!("`{from}` is not a date; use YYYY-MM-DD"));
                            continue;
                        };
                        let mut number = |key: &str, default: Option<f64>| -> Option<f64> {
                            match period.get(key) {
                                Some(Value::Number(n)) => match n.as_f64() {
                                    Some(v) if v >= 0.0 && v.is_finite() => Some(v),
                                    _ => {
                                        fail(format!("{at}.{key}"), "must be a non-negative number".into());
                                        None
                                    }
                                },
                                None => {
                                    if default.is_none() {
                                        fail(format!("{at}.{key}"), "missing; USD per million tokens".into());
                                    }
                                    default
                                }
                                Some(_) => {
                                    fail(format!("{at}.{key}"), "must be a number (USD per million tokens)".into());
                                    None
                                }
                            }
                        };
                        let (Some(input), Some(output)) = (number("input", None), number("output", None)) else {
                            continue;
                        };
                        let (Some(cache_read), Some(cache_write), Some(reasoning)) = (
                            number("cache_read", Some(input)),
                            number("cache_write", Some(input)),
                            number("reasoning", Some(output)),
                        ) else {
                            continue;
                        };
                        prices.push(Price { from_day, from, input, output, cache_read, cache_write, reasoning });
                    }
                    prices.sort_by_key(|p| p.from_day);
                    entries.push(Entry { pattern: pattern.to_string(), matcher, provider, prices });
                }
            }
            _ => fail("models".into(), "missing; list the models with `match` and `prices`".into()),
        }
        if errors.is_empty() {
            Ok(PriceTable { version, entries })
        } else {
            Err(errors)
        }
    }

    /// The price that applied to `model` (from `provider`) on the day of `at_ns`.
    pub fn price(&self, provider: Option<&str>, model: &str, at_ns: i64) -> Option<(&str, &Price)> {
        let day = at_ns.div_euclid(86_400_000_000_000);
        let provider = provider.map(str::to_ascii_lowercase);
        for entry in &self.entries {
            if !entry.matcher.is_match(model) {
                continue;
            }
            if let (Some(want), Some(have)) = (&entry.provider, &provider) {
                if want != have {
                    continue;
                }
            }
            return entry.prices.iter().rev().find(|p| p.from_day <= day).map(|p| (entry.pattern.as_str(), p));
        }
        None
    }

    /// The cost of `usage`, or `None` when no entry prices the model.
    pub fn cost(&self, provider: Option<&str>, model: &str, usage: &Usage, at_ns: i64) -> Option<Priced> {
        let (pattern, price) = self.price(provider, model, at_ns)?;
        let uncached = usage.input.saturating_sub(usage.cache_read + usage.cache_write) as f64;
        let visible_output = usage.output.saturating_sub(usage.reasoning) as f64;
        let micro = uncached * price.input
            + usage.cache_read as f64 * price.cache_read
            + usage.cache_write as f64 * price.cache_write
            + visible_output * price.output
            + usage.reasoning as f64 * price.reasoning;
        Some(Priced { cost_usd: micro / 1e6, price_version: format!("{}:{}@{}", self.version, pattern, price.from) })
    }
}

fn parse_day(text: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(text.trim(), &format).ok()?;
    Some((date - time::Date::from_calendar_date(1970, time::Month::January, 1).ok()?).whole_days())
}

/// The table shipped with Plinth (`prices.yaml` at the repository root).
pub const SHIPPED: &str = include_str!("../../../prices.yaml");

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = r#"
version: "2026-11-01"
models:
  - match: "gpt-4o-mini*"
    provider: openai
    prices:
      - from: 2024-07-18
        input: 0.15
        output: 0.60
        cache_read: 0.075
  - match: "gpt-4o*"
    prices:
      - from: 2024-05-13
        input: 5.0
        output: 15.0
      - from: 2024-10-01
        input: 2.5
        output: 10.0
        cache_read: 1.25
"#;

    fn ns(date: &str) -> i64 {
        parse_day(date).unwrap() * 86_400_000_000_000 + 3_600_000_000_000
    }

    #[test]
    fn specific_patterns_and_dates() {
        let table = PriceTable::parse("prices.yaml", TABLE).unwrap();
        let usage = Usage { input: 1_000_000, output: 1_000_000, cache_read: 0, cache_write: 0, reasoning: 0 };
        let mini = table.cost(Some("openai"), "gpt-4o-mini-2024-07-18", &usage, ns("2025-01-01")).unwrap();
        assert!((mini.cost_usd - 0.75).abs() < 1e-9);
        assert_eq!(mini.price_version, "2026-11-01:gpt-4o-mini*@2024-07-18");
        let before = table.cost(None, "GPT-4o", &usage, ns("2024-06-01")).unwrap();
        assert!((before.cost_usd - 20.0).abs() < 1e-9);
        let after = table.cost(None, "gpt-4o", &usage, ns("2024-12-01")).unwrap();
        assert!((after.cost_usd - 12.5).abs() < 1e-9);
        assert!(table.cost(None, "gpt-4o", &usage, ns("2024-01-01")).is_none(), "no price before the first period");
        assert!(table.cost(None, "claude-3", &usage, ns("2025-01-01")).is_none());
    }

    #[test]
    fn cached_and_reasoning_tokens_are_parts_not_extras() {
        let table = PriceTable::parse("prices.yaml", TABLE).unwrap();
        // 1M input of which 600k cached; 1M output of which 400k reasoning.
        let usage =
            Usage { input: 1_000_000, output: 1_000_000, cache_read: 600_000, cache_write: 0, reasoning: 400_000 };
        let priced = table.cost(None, "gpt-4o", &usage, ns("2025-01-01")).unwrap();
        let expected = 0.4 * 2.5 + 0.6 * 1.25 + 0.6 * 10.0 + 0.4 * 10.0;
        assert!((priced.cost_usd - expected).abs() < 1e-9, "{} vs {expected}", priced.cost_usd);
    }

    #[test]
    fn errors_say_where() {
        let errors = PriceTable::parse(
            "p.yaml",
            "version: x\nmodels:\n  - match: a*\n    prices:\n      - from: tomorrow\n        input: 1\n        output: -2\n",
        )
        .unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|e| e.starts_with("p.yaml:5: models[0].prices[0].from")), "{text:?}");
    }

    #[test]
    fn shipped_table_parses() {
        let table = PriceTable::parse("prices.yaml", SHIPPED).unwrap();
        assert!(!table.version.is_empty());
        assert!(table.price(Some("openai"), "gpt-4o-2024-08-06", ns("2026-01-01")).is_some());
        assert!(table.price(Some("anthropic"), "claude-sonnet-4-5", ns("2026-01-01")).is_some());
    }
}
