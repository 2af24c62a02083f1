//! Reports of `plinth check`: the results of evaluating input documents
//! (Kubernetes manifests, catalogue descriptors, Terraform plans, golden-path
//! parameters) at an enforcement point, rendered as conftest-style text,
//! JSON, SARIF 2.1.0 (GitHub code scanning) and JUnit XML.
//!
//! Pure: the caller reads the files and evaluates them; the functions here
//! take those results and the policy summaries and return text.

use crate::bundle::LoadProblem;
use crate::decision::{Decision, Outcome, Point, Violation};
use crate::engine::{PolicySummary, RuleSummary};
use serde::Serialize;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use time::OffsetDateTime;

/// Where the SARIF schema lives (the OASIS errata 01 version).
pub const SARIF_SCHEMA: &str =
    "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

/// What the rule id of an input that could not be read is.
pub const INPUT_ERROR_RULE: &str = "plinth.input-error";

/// The results of one check run.
#[derive(Debug, Clone, Serialize)]
pub struct CheckReport {
    pub point: Point,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
    pub documents: Vec<DocumentResult>,
    /// Policy files that failed to load (each also fails every decision it
    /// covers closed, as an `error` violation).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<LoadProblem>,
}

/// One document of one file and what the policies said about it.
#[derive(Debug, Clone, Serialize)]
pub struct DocumentResult {
    /// Path as shown and used in reports: relative, forward slashes.
    pub file: String,
    /// 1-based index of the document in its file.
    pub document: usize,
    /// 1-based line where the document starts.
    pub line: usize,
    /// `kubernetes`, `catalog`, `terraform-plan`, `golden-path` or `other`.
    pub input: String,
    /// A readable name (`Deployment/web`, `component:checkout`), when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Why the document could not be read; such a document counts as a failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<InputError>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// For each violation of `decision`, in order, the line in `file` it
    /// points at (the field named by its details, else the document start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub locations: Vec<usize>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InputError {
    pub line: usize,
    pub message: String,
}

impl DocumentResult {
    /// The line a violation (by index in the decision) points at.
    pub fn violation_line(&self, index: usize) -> usize {
        self.locations.get(index).copied().unwrap_or(self.line).max(1)
    }

    /// Whether the document fails the check (unreadable, or denied).
    pub fn failed(&self) -> bool {
        self.error.is_some() || self.decision.as_ref().is_some_and(|d| d.result == Outcome::Deny)
    }

    fn label(&self) -> String {
        match &self.name {
            Some(name) => format!("{}#{} ({name})", self.file, self.document),
            None => format!("{}#{}", self.file, self.document),
        }
    }
}

/// conftest's counts: one test per document and applicable rule; every
/// message of a rule counts once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub tests: usize,
    pub passed: usize,
    pub warnings: usize,
    pub failures: usize,
    /// Excepted by the policy's own `exception` rule, or waived.
    pub exceptions: usize,
    /// Dry-run violations: shown, changing nothing.
    pub dry_run: usize,
}

/// How one violation is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Fail,
    Warn,
    /// Excepted or waived.
    Exception,
    DryRun,
}

impl Status {
    pub fn of(violation: &Violation) -> Status {
        match violation.effect {
            Outcome::Deny => Status::Fail,
            Outcome::Warn => Status::Warn,
            Outcome::Allow if violation.excepted || violation.waiver.is_some() => Status::Exception,
            Outcome::Allow => Status::DryRun,
        }
    }

    fn label(self) -> &'static str {
        match self {
            Status::Fail => "FAIL",
            Status::Warn => "WARN",
            Status::Exception => "EXCP",
            Status::DryRun => "DRYRUN",
        }
    }
}

/// The id a violation is reported under: METADATA `custom.id`, else `package.rule`.
pub fn violation_rule_id(violation: &Violation) -> String {
    violation.id.clone().unwrap_or_else(|| format!("{}.{}", violation.policy, violation.rule))
}

fn summary_rule_id(package: &PolicySummary, rule: &RuleSummary) -> String {
    rule.id.clone().unwrap_or_else(|| format!("{}.{}", package.package, rule.rule))
}

/// The rules evaluated at `point` for `profile` (as the engine chooses them).
pub fn applicable_rules<'a>(
    summaries: &'a [PolicySummary],
    point: Point,
    profile: Option<&str>,
) -> Vec<(&'a PolicySummary, &'a RuleSummary)> {
    summaries
        .iter()
        .filter(|p| {
            let point_ok = p.points.is_empty() || p.points.contains(&point);
            let profile_ok = match (profile, p.profile.as_deref()) {
                (None, _) | (_, None) => true,
                (Some(wanted), Some(own)) => own == wanted || own == "baseline" || own == "architecture",
            };
            point_ok && profile_ok
        })
        .flat_map(|p| p.rules.iter().map(move |r| (p, r)))
        .collect()
}

/// Violations with their index in the decision.
type Indexed<'a> = Vec<(usize, &'a Violation)>;

/// One applicable rule of one document with its violations, and the
/// violations that belong to no rule (policy errors).
struct RuleOutcomes<'a> {
    rules: Vec<(&'a PolicySummary, &'a RuleSummary, Indexed<'a>)>,
    other: Indexed<'a>,
}

fn outcomes<'a>(document: &'a DocumentResult, applicable: &[(&'a PolicySummary, &'a RuleSummary)]) -> RuleOutcomes<'a> {
    let mut rules: Vec<_> = applicable.iter().map(|(p, r)| (*p, *r, Vec::new())).collect();
    let mut other = Vec::new();
    let Some(decision) = &document.decision else { return RuleOutcomes { rules, other } };
    for (index, violation) in decision.violations.iter().enumerate() {
        let slot = rules
            .iter_mut()
            .find(|(p, r, _)| violation.kind != "error" && p.package == violation.policy && r.rule == violation.rule);
        match slot {
            Some((_, _, list)) => list.push((index, violation)),
            None => other.push((index, violation)),
        }
    }
    RuleOutcomes { rules, other }
}

impl CheckReport {
    pub fn failed(&self) -> bool {
        self.documents.iter().any(DocumentResult::failed)
    }

    /// conftest-style counts over every document and applicable rule.
    pub fn counts(&self, summaries: &[PolicySummary]) -> Counts {
        let applicable = applicable_rules(summaries, self.point, self.profile.as_deref());
        let mut counts = Counts::default();
        let add = |violation: &Violation, counts: &mut Counts| match Status::of(violation) {
            Status::Fail => counts.failures += 1,
            Status::Warn => counts.warnings += 1,
            Status::Exception => counts.exceptions += 1,
            Status::DryRun => counts.dry_run += 1,
        };
        for document in &self.documents {
            if document.error.is_some() {
                counts.failures += 1;
                continue;
            }
            let outcome = outcomes(document, &applicable);
            for (_, _, violations) in &outcome.rules {
                if violations.is_empty() {
                    counts.passed += 1;
                }
                for (_, violation) in violations {
                    add(violation, &mut counts);
                }
            }
            for (_, violation) in &outcome.other {
                add(violation, &mut counts);
            }
        }
        counts.tests = counts.passed + counts.warnings + counts.failures + counts.exceptions + counts.dry_run;
        counts
    }
}

fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn annotation(violation: &Violation) -> String {
    if let Some(waiver) = &violation.waiver {
        return format!(" (waived by {}: {})", waiver.id, one_line(&waiver.reason));
    }
    if violation.excepted {
        return " (excepted by the policy's exception rule)".into();
    }
    String::new()
}

/// conftest-like text: one line per finding, then the summary line.
pub fn render_text(report: &CheckReport, summaries: &[PolicySummary]) -> String {
    let mut out = String::new();
    for problem in &report.problems {
        let _ = writeln!(out, "ERROR - {problem} (policy failed to load; decisions it covers fail closed)");
    }
    for document in &report.documents {
        if let Some(error) = &document.error {
            let _ = writeln!(
                out,
                "FAIL - {}:{} - {INPUT_ERROR_RULE} - {}",
                document.file,
                error.line.max(1),
                one_line(&error.message)
            );
            continue;
        }
        let Some(decision) = &document.decision else { continue };
        let mut rows: Vec<(Status, usize, &Violation)> = decision
            .violations
            .iter()
            .enumerate()
            .map(|(i, v)| (Status::of(v), document.violation_line(i), v))
            .collect();
        rows.sort_by_key(|(status, line, _)| (*status as u8, *line));
        for (status, line, violation) in rows {
            let _ = writeln!(
                out,
                "{} - {}:{} - {} - {}{}",
                status.label(),
                document.file,
                line,
                violation_rule_id(violation),
                one_line(&violation.message),
                annotation(violation)
            );
        }
    }
    let counts = report.counts(summaries);
    if !out.is_empty() {
        out.push('\n');
    }
    let _ = write!(
        out,
        "{} tests, {} passed, {} warnings, {} failures, {} exceptions/waivers",
        counts.tests, counts.passed, counts.warnings, counts.failures, counts.exceptions
    );
    if counts.dry_run > 0 {
        let _ = write!(out, ", {} dry-run", counts.dry_run);
    }
    out.push('\n');
    out
}

/// JSON: one entry per file and document, with its decision.
pub fn render_json(report: &CheckReport) -> Value {
    serde_json::to_value(&report.documents).unwrap_or(Value::Array(Vec::new()))
}

/// Escapes text for XML attribute values and character data. Characters XML
/// 1.0 does not allow at all are replaced by U+FFFD.
pub fn xml_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// Character data keeps its line breaks.
fn xml_text(text: &str) -> String {
    xml_escape(text).replace("&#10;", "\n")
}

#[derive(Default)]
struct SuiteCounts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
}

/// JUnit XML: a testsuite per file, a testcase per document and rule;
/// denials are `<failure>`, policy and input errors `<error>`, warnings go
/// to `<system-out>`, excepted, waived and dry-run findings are `<skipped>`.
pub fn render_junit(report: &CheckReport, summaries: &[PolicySummary]) -> String {
    let applicable = applicable_rules(summaries, report.point, report.profile.as_deref());
    let mut by_file: BTreeMap<&str, Vec<&DocumentResult>> = BTreeMap::new();
    for document in &report.documents {
        by_file.entry(document.file.as_str()).or_default().push(document);
    }
    let mut total = SuiteCounts::default();
    let mut suites = String::new();
    for (file, documents) in by_file {
        let mut counts = SuiteCounts::default();
        let mut cases = String::new();
        for document in documents {
            let classname = xml_escape(&document.label());
            if let Some(error) = &document.error {
                counts.tests += 1;
                counts.errors += 1;
                let message = format!("{}:{}: {}", document.file, error.line, error.message);
                let _ = writeln!(
                    cases,
                    "    <testcase classname=\"{classname}\" name=\"{INPUT_ERROR_RULE}\">\n      <error message=\"{}\" type=\"input-error\">{}</error>\n    </testcase>",
                    xml_escape(&one_line(&message)),
                    xml_text(&message)
                );
                continue;
            }
            let outcome = outcomes(document, &applicable);
            let mut case = |name: String, violations: &[(usize, &Violation)], counts: &mut SuiteCounts| {
                counts.tests += 1;
                let mut body = String::new();
                let describe = |list: &[&(usize, &Violation)]| {
                    list.iter()
                        .map(|(i, v)| {
                            format!(
                                "{}:{}: {}{}",
                                document.file,
                                document.violation_line(*i),
                                one_line(&v.message),
                                annotation(v)
                            )
                        })
                        .collect::<Vec<_>>()
                };
                let errors: Vec<_> = violations.iter().filter(|(_, v)| v.kind == "error").collect();
                let fails: Vec<_> =
                    violations.iter().filter(|(_, v)| v.kind != "error" && Status::of(v) == Status::Fail).collect();
                let warns: Vec<_> = violations.iter().filter(|(_, v)| Status::of(v) == Status::Warn).collect();
                let quiet: Vec<_> = violations
                    .iter()
                    .filter(|(_, v)| matches!(Status::of(v), Status::Exception | Status::DryRun))
                    .collect();
                if !errors.is_empty() {
                    counts.errors += 1;
                    let lines = describe(&errors);
                    let _ = write!(
                        body,
                        "\n      <error message=\"{}\" type=\"policy-error\">{}</error>",
                        xml_escape(&lines.join("; ")),
                        xml_text(&lines.join("\n"))
                    );
                } else if !fails.is_empty() {
                    counts.failures += 1;
                    let lines = describe(&fails);
                    let _ = write!(
                        body,
                        "\n      <failure message=\"{}\" type=\"deny\">{}</failure>",
                        xml_escape(&lines.join("; ")),
                        xml_text(&lines.join("\n"))
                    );
                } else if warns.is_empty() && !quiet.is_empty() {
                    counts.skipped += 1;
                    let lines = describe(&quiet);
                    let _ = write!(body, "\n      <skipped message=\"{}\"/>", xml_escape(&lines.join("; ")));
                }
                if !warns.is_empty() {
                    let lines: Vec<_> = describe(&warns).into_iter().map(|l| format!("WARN - {l}")).collect();
                    let _ = write!(body, "\n      <system-out>{}</system-out>", xml_text(&lines.join("\n")));
                }
                let name = xml_escape(&name);
                if body.is_empty() {
                    let _ = writeln!(cases, "    <testcase classname=\"{classname}\" name=\"{name}\"/>");
                } else {
                    let _ = writeln!(
                        cases,
                        "    <testcase classname=\"{classname}\" name=\"{name}\">{body}\n    </testcase>"
                    );
                }
            };
            for (package, rule, violations) in &outcome.rules {
                let id = summary_rule_id(package, rule);
                let name = match &rule.title {
                    Some(title) => format!("{id}: {title}"),
                    None => id,
                };
                case(name, violations, &mut counts);
            }
            let mut others: BTreeMap<String, Vec<(usize, &Violation)>> = BTreeMap::new();
            for (index, violation) in &outcome.other {
                others.entry(violation_rule_id(violation)).or_default().push((*index, violation));
            }
            for (id, violations) in others {
                case(id, &violations, &mut counts);
            }
        }
        let _ = writeln!(
            suites,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n{cases}  </testsuite>",
            xml_escape(file),
            counts.tests,
            counts.failures,
            counts.errors,
            counts.skipped
        );
        total.tests += counts.tests;
        total.failures += counts.failures;
        total.errors += counts.errors;
        total.skipped += counts.skipped;
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"plinth check\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\">\n{suites}</testsuites>\n",
        total.tests, total.failures, total.errors, total.skipped
    )
}

/// The tool as SARIF names it.
#[derive(Debug, Clone)]
pub struct SarifTool {
    pub name: String,
    pub version: String,
    pub information_uri: String,
}

impl Default for SarifTool {
    fn default() -> Self {
        SarifTool {
            name: "plinth".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            information_uri: "https://plinth.dev".into(),
        }
    }
}

/// GitHub code scanning's `security-severity` for a severity name.
pub fn security_severity(severity: &str) -> Option<&'static str> {
    match severity.trim().to_ascii_lowercase().as_str() {
        "critical" => Some("9.5"),
        "high" => Some("8.0"),
        "medium" | "moderate" => Some("5.5"),
        "low" => Some("3.0"),
        _ => None,
    }
}

/// A path as a relative URI reference: forward slashes, and everything
/// outside RFC 3986's unreserved characters and `/` percent-encoded.
pub fn path_to_uri(path: &str) -> String {
    let path = path.replace('\\', "/");
    let path = path.strip_prefix("./").unwrap_or(&path);
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => out.push(byte as char),
            other => {
                let _ = write!(out, "%{other:02X}");
            }
        }
    }
    out
}

/// A SARIF `artifactLocation` for a path: relative paths are relative to
/// `%SRCROOT%` (the repository root in code scanning), absolute ones become
/// `file://` URIs.
pub fn artifact_location(path: &str) -> Value {
    let path = path.replace('\\', "/");
    if path.starts_with('/') {
        json!({ "uri": format!("file://{}", path_to_uri(&path)) })
    } else {
        json!({ "uri": path_to_uri(&path), "uriBaseId": "%SRCROOT%" })
    }
}

/// A stable identity for a finding: rule, file, message and which document
/// of the file (by its name when it has one, so reordering a file keeps it).
fn fingerprint(rule_id: &str, uri: &str, message: &str, document: &DocumentResult) -> String {
    let which = document.name.clone().unwrap_or_else(|| format!("#{}", document.document));
    let mut hasher = Sha256::new();
    for part in [rule_id, uri, message, which.as_str()] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    hex::encode(&hasher.finalize()[..16])
}

struct SarifRules {
    rules: Vec<Value>,
    index: HashMap<String, usize>,
}

impl SarifRules {
    fn from_summaries(summaries: &[PolicySummary]) -> SarifRules {
        let mut rules = SarifRules { rules: Vec::new(), index: HashMap::new() };
        for package in summaries {
            for rule in &package.rules {
                let id = summary_rule_id(package, rule);
                if rules.index.contains_key(&id) {
                    continue;
                }
                let title = rule.title.clone().unwrap_or_else(|| format!("{}.{}", package.package, rule.rule));
                let deny = rule.kind == "deny" && rule.enforcement == crate::decision::Enforcement::Enforce;
                let dry = rule.enforcement == crate::decision::Enforcement::DryRun;
                let mut properties = Map::new();
                properties.insert("tags".into(), json!(rule.controls));
                if let Some(score) = rule.severity.as_deref().and_then(security_severity) {
                    properties.insert("security-severity".into(), json!(score));
                }
                if let Some(severity) = &rule.severity {
                    properties.insert("severity".into(), json!(severity));
                }
                let problem = if dry {
                    "recommendation"
                } else if deny {
                    "error"
                } else {
                    "warning"
                };
                properties.insert("problem.severity".into(), json!(problem));
                properties.insert("package".into(), json!(package.package));
                properties.insert("rule".into(), json!(rule.rule));
                properties.insert("source".into(), json!(format!("{}:{}", rule.file, rule.line)));
                let descriptor = json!({
                    "id": id,
                    "name": format!("{}.{}", package.package, rule.rule),
                    "shortDescription": { "text": title },
                    "fullDescription": { "text": rule.rationale.clone().unwrap_or_else(|| title.clone()) },
                    "defaultConfiguration": { "level": if dry { "note" } else if deny { "error" } else { "warning" } },
                    "properties": properties,
                });
                rules.push(id, descriptor);
            }
        }
        rules
    }

    fn push(&mut self, id: String, descriptor: Value) -> usize {
        let index = self.rules.len();
        self.index.insert(id, index);
        self.rules.push(descriptor);
        index
    }

    /// The index of a rule, adding a descriptor for ids no summary has
    /// (policy load errors, unreadable input).
    fn index_of(&mut self, id: &str, describe: impl FnOnce() -> (String, String)) -> usize {
        if let Some(index) = self.index.get(id) {
            return *index;
        }
        let (short, full) = describe();
        self.push(
            id.to_string(),
            json!({
                "id": id,
                "name": id,
                "shortDescription": { "text": short },
                "fullDescription": { "text": full },
                "defaultConfiguration": { "level": "error" },
                "properties": { "tags": ["plinth"], "problem.severity": "error" },
            }),
        )
    }
}

/// SARIF 2.1.0: one run, rules from the policy summaries, one result per
/// finding, excepted and waived findings as suppressed notes.
pub fn render_sarif(report: &CheckReport, summaries: &[PolicySummary], tool: &SarifTool) -> Value {
    let mut rules = SarifRules::from_summaries(summaries);
    let mut results = Vec::new();
    for document in &report.documents {
        let uri = path_to_uri(&document.file);
        let location = |line: usize| {
            json!([{
                "physicalLocation": {
                    "artifactLocation": artifact_location(&document.file),
                    "region": { "startLine": line.max(1) },
                }
            }])
        };
        if let Some(error) = &document.error {
            let index = rules.index_of(INPUT_ERROR_RULE, || {
                (
                    "The input cannot be read".into(),
                    "The file or document is not valid YAML or JSON, so no policy could check it; plinth check fails it."
                        .into(),
                )
            });
            let message = error.message.clone();
            results.push(json!({
                "ruleId": INPUT_ERROR_RULE,
                "ruleIndex": index,
                "level": "error",
                "message": { "text": message },
                "locations": location(error.line),
                "partialFingerprints": { "plinthFingerprint/v1": fingerprint(INPUT_ERROR_RULE, &uri, &message, document) },
            }));
            continue;
        }
        let Some(decision) = &document.decision else { continue };
        for (i, violation) in decision.violations.iter().enumerate() {
            let id = violation_rule_id(violation);
            let index = rules.index_of(&id, || {
                let short = match violation.kind.as_str() {
                    "error" => format!("Policy {} failed, so the decision fails closed", violation.policy),
                    _ => violation.title.clone().unwrap_or_else(|| id.clone()),
                };
                (short.clone(), violation.rationale.clone().unwrap_or(short))
            });
            let status = Status::of(violation);
            let level = match status {
                Status::Fail => "error",
                Status::Warn => "warning",
                Status::Exception | Status::DryRun => "note",
            };
            let text = format!("{}{}", violation.message, annotation(violation));
            let mut result = json!({
                "ruleId": id,
                "ruleIndex": index,
                "level": level,
                "message": { "text": text },
                "locations": location(document.violation_line(i)),
                "partialFingerprints": { "plinthFingerprint/v1": fingerprint(&id, &uri, &violation.message, document) },
                "properties": {
                    "policy": violation.policy,
                    "rule": violation.rule,
                    "kind": violation.kind,
                    "effect": violation.effect,
                    "document": document.document,
                },
            });
            if let Some(waiver) = &violation.waiver {
                result["suppressions"] = json!([{
                    "kind": "external",
                    "status": "accepted",
                    "justification": format!("waiver {} ({}), until {}: {}", waiver.id, waiver.owner, rfc3339(waiver.expires_at), waiver.reason),
                }]);
            } else if violation.excepted {
                result["suppressions"] = json!([{
                    "kind": "inSource",
                    "status": "accepted",
                    "justification": format!("excepted by the exception rule of {}", violation.policy),
                }]);
            }
            if let Some(details) = &violation.details {
                result["properties"]["details"] = details.clone();
            }
            if violation.kind == "error" && !violation.file.is_empty() {
                let mut region = Map::new();
                if let Some(line) = violation.line {
                    region.insert("startLine".into(), json!(line.max(1)));
                }
                let mut physical = json!({ "artifactLocation": artifact_location(&violation.file) });
                if !region.is_empty() {
                    physical["region"] = Value::Object(region);
                }
                result["relatedLocations"] = json!([{
                    "id": 1,
                    "physicalLocation": physical,
                    "message": { "text": "the policy that failed" },
                }]);
            }
            results.push(result);
        }
    }
    json!({
        "$schema": SARIF_SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {
                "driver": {
                    "name": tool.name,
                    "informationUri": tool.information_uri,
                    "version": tool.version,
                    "semanticVersion": tool.version,
                    "rules": rules.rules,
                }
            },
            "automationDetails": { "id": format!("plinth/check/{}/", report.point) },
            "columnKind": "utf16CodeUnits",
            "invocations": [{
                "executionSuccessful": report.problems.is_empty(),
                "toolExecutionNotifications": report.problems.iter().map(|p| {
                    let mut notification = json!({
                        "level": "error",
                        "message": { "text": format!("policy failed to load, decisions it covers fail closed: {}", p.message) },
                        "locations": [{ "physicalLocation": { "artifactLocation": artifact_location(&p.file) } }],
                    });
                    if let Some(line) = p.line {
                        notification["locations"][0]["physicalLocation"]["region"] = json!({ "startLine": line.max(1) });
                    }
                    notification
                }).collect::<Vec<_>>(),
            }],
            "results": results,
        }]
    })
}

/// RFC 3339 text of a time (`2026-11-24T06:09:04Z`).
pub fn rfc3339(time: OffsetDateTime) -> String {
    time.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()
}

/// The Plinth context `plinth check` attaches to every input (under
/// `input.plinth`) at the `pr` point.
pub fn pr_context(profile: Option<&str>, now: OffsetDateTime) -> Value {
    json!({
        "point": Point::Pr.as_str(),
        "catalog": false,
        "profile": profile,
        "environment": null,
        "now": rfc3339(now),
        "entities": {},
    })
}
