//! One output grammar for every verb: `--output text|json|yaml` (`--json`
//! is kept, hidden, for scripts written before `--output`), and writes to
//! stdout that end quietly when the reader has gone away (`plinth catalog
//! ls | head -1`) instead of panicking.

use serde_json::Value;
use std::io::Write;
use yaml_rust2::yaml::Hash;
use yaml_rust2::{Yaml, YamlEmitter};

/// How a verb prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub(crate) enum Format {
    /// A concise table or summary for people.
    #[default]
    Text,
    /// The full answer as JSON.
    Json,
    /// The full answer as YAML.
    Yaml,
}

/// `--output` (and the hidden `--json`), flattened into every verb.
#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct OutputArgs {
    /// Output format: a table or summary (text), or the full answer as json or yaml.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text, value_name = "FORMAT")]
    output: Format,
    /// Same as `--output json`.
    #[arg(long, hide = true)]
    json: bool,
}

impl OutputArgs {
    pub(crate) fn format(&self) -> Format {
        if self.json {
            Format::Json
        } else {
            self.output
        }
    }

    /// Text is the caller's to print; JSON and YAML print `value` whole.
    /// True when `value` was printed.
    pub(crate) fn structured(&self, value: &Value) -> bool {
        match self.format() {
            Format::Text => false,
            Format::Json => {
                print_json(value);
                true
            }
            Format::Yaml => {
                print_yaml(value);
                true
            }
        }
    }
}

/// Prints `value` as indented JSON.
pub(crate) fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    write_out(format_args!("{text}\n"));
}

/// Prints `value` as a YAML document.
pub(crate) fn print_yaml(value: &Value) {
    write_out(format_args!("{}", to_yaml(value)));
}

/// `value` as YAML text (starting with `---`, ending with a newline).
pub(crate) fn to_yaml(value: &Value) -> String {
    let mut out = String::new();
    let mut emitter = YamlEmitter::new(&mut out);
    emitter.multiline_strings(true);
    if emitter.dump(&yaml_of(value)).is_err() {
        // The emitter fails only on writing to a String, which cannot fail;
        // JSON is valid YAML all the same.
        out = serde_json::to_string_pretty(value).unwrap_or_default();
    }
    out.push('\n');
    out
}

fn yaml_of(value: &Value) -> Yaml {
    match value {
        Value::Null => Yaml::Null,
        Value::Bool(b) => Yaml::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Yaml::Integer(i),
            None => Yaml::Real(n.to_string()),
        },
        Value::String(s) => Yaml::String(s.clone()),
        Value::Array(items) => Yaml::Array(items.iter().map(yaml_of).collect()),
        Value::Object(map) => {
            let mut hash = Hash::new();
            for (key, item) in map {
                hash.insert(Yaml::String(key.clone()), yaml_of(item));
            }
            Yaml::Hash(hash)
        }
    }
}

/// Writes to stdout. A reader that went away (a closed pipe) ends the
/// process quietly with success: what it wanted it has. Any other write
/// error ends it with exit 1 and one line on stderr.
pub(crate) fn write_out(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(error) = out.write_fmt(args).and_then(|()| out.flush()) {
        stdout_failed(&error);
    }
}

fn stdout_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    let _ = writeln!(std::io::stderr(), "error: cannot write to stdout: {error}");
    std::process::exit(1);
}

/// Prints a failed verb's error on stderr, once, with its causes on the
/// same line; a closed stderr is ignored.
pub(crate) fn error_line(error: &anyhow::Error) {
    let _ = writeln!(std::io::stderr(), "error: {error:#}");
}

/// `println!` that never panics on a closed stdout (see [`write_out`]).
macro_rules! outln {
    () => {
        $crate::output::write_out(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` that never panics on a closed stdout (see [`write_out`]).
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_out(format_args!($($arg)*))
    };
}

pub(crate) use {out, outln};

/// Up to three of `candidates` close to `wanted` (case-insensitive), the
/// closest first: for "did you mean" suggestions.
pub(crate) fn closest<I, S>(wanted: &str, candidates: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    let wanted = wanted.to_lowercase();
    let mut scored: Vec<(f64, String)> = candidates
        .into_iter()
        .map(Into::into)
        .filter_map(|candidate: String| {
            let lower = candidate.to_lowercase();
            let mut score = strsim::normalized_damerau_levenshtein(&wanted, &lower);
            if wanted.len() >= 3 && (lower.contains(&wanted) || wanted.contains(&lower)) {
                score = score.max(0.8);
            }
            (score >= 0.6).then_some((score, candidate))
        })
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    scored.dedup_by(|a, b| a.1.eq_ignore_ascii_case(&b.1));
    // Only the names about as close as the closest: one clear answer is
    // not diluted by distant ones.
    let best = scored.first().map_or(0.0, |(score, _)| *score);
    scored.into_iter().take_while(|(score, _)| *score >= best - 0.1).take(3).map(|(_, candidate)| candidate).collect()
}

/// "; did you mean `a` or `b`?", or nothing.
pub(crate) fn did_you_mean(suggestions: &[String]) -> String {
    match suggestions {
        [] => String::new(),
        [one] => format!("; did you mean `{one}`?"),
        [rest @ .., last] => {
            let rest: Vec<String> = rest.iter().map(|s| format!("`{s}`")).collect();
            format!("; did you mean {} or `{last}`?", rest.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_rank_close_names_first() {
        let names = ["checkout-service", "checkout", "payments", "auth-service"];
        assert_eq!(closest("checkout-servce", names)[0], "checkout-service");
        assert!(closest("zzzzzz", names).is_empty());
        assert_eq!(closest("COMPONENT", ["Component", "API"]), ["Component"]);
        assert_eq!(did_you_mean(&["a".into(), "b".into()]), "; did you mean `a` or `b`?");
        assert_eq!(did_you_mean(&[]), "");
    }

    #[test]
    fn yaml_round_trips_through_the_model_parser() {
        let value = serde_json::json!({"kind": "Component", "metadata": {"name": "shop", "tags": ["x: y", "true"]},
            "spec": {"replicas": 3, "ratio": 0.5, "on": true, "none": null}});
        let text = to_yaml(&value);
        assert!(text.starts_with("---"), "{text}");
        assert_eq!(plinth_model::yaml::parse_document(&text).unwrap(), value);
    }
}
