//! The `plinth check` report formats, rendered from real decisions of the
//! real engine: SARIF validated against the official OASIS SARIF 2.1.0
//! schema, JUnit parsed by a strict XML well-formedness checker, text and
//! JSON checked line by line.

use plinth_policy::report::{self, CheckReport, DocumentResult, InputError, SarifTool, Status, INPUT_ERROR_RULE};
use plinth_policy::{attach_context, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine, Waiver};
use serde_json::{json, Value};
use std::path::Path;
use time::OffsetDateTime;

const POLICY: &str = r#"# METADATA
# title: Workload rules
# custom:
#   points: [pr]
package test.workloads

import rego.v1

# METADATA
# title: Containers must not be privileged
# description: A privileged container can take over its node.
# custom:
#   id: PL-T-001
#   severity: critical
#   controls: [CIS-5.2.1, NIST-AC-6]
deny_privileged contains msg if {
	some c in input.spec.containers
	c.securityContext.privileged
	msg := sprintf("container %s is privileged & <dangerous> \"really\"", [c.name])
}

# METADATA
# title: Images should be pinned
# custom:
#   id: PL-T-002
#   severity: medium
warn_latest contains msg if {
	some c in input.spec.containers
	endswith(c.image, ":latest")
	msg := sprintf("container %s uses a :latest image", [c.name])
}

# METADATA
# title: Workloads need an owner label
# custom:
#   id: PL-T-003
#   severity: high
deny_owner contains msg if {
	not input.metadata.labels.owner
	msg := "no owner label"
}

# METADATA
# title: Resource limits are coming
# custom:
#   id: PL-T-004
#   severity: low
#   enforcement: dry-run
deny_limits contains msg if {
	some c in input.spec.containers
	not c.resources.limits
	msg := sprintf("container %s has no resource limits", [c.name])
}

exception contains rules if {
	input.metadata.annotations["plinth.dev/no-owner"] == "ok"
	rules := ["owner"]
}
"#;

const BROKEN: &str = r#"# METADATA
# custom:
#   points: [pr]
package test.broken

import rego.v1

deny contains msg if {
	msg := no_such_function(input)
}
"#;

fn engine(dir: &Path, broken: bool) -> PolicyEngine {
    std::fs::write(dir.join("workloads.rego"), POLICY).unwrap();
    if broken {
        std::fs::write(dir.join("broken.rego"), BROKEN).unwrap();
    }
    let bundle = PolicyBundle::load(&[dir.to_path_buf()]);
    PolicyEngine::build(&bundle, EngineOptions::default())
}

fn decide(
    engine: &PolicyEngine,
    file: &str,
    document: usize,
    line: usize,
    input: Value,
    waivers: &[Waiver],
) -> DocumentResult {
    let now = OffsetDateTime::now_utc();
    let input = Input::from_json(&attach_context(input, report::pr_context(None, now)));
    let entities = ["component:default/web".to_string()];
    let request = EvalRequest { point: Point::Pr, input: &input, profile: None, waivers, entities: &entities, now };
    let decision = engine.evaluate(&request);
    let locations = decision.violations.iter().enumerate().map(|(i, _)| line + i).collect();
    DocumentResult {
        file: file.into(),
        document,
        line,
        input: "kubernetes".into(),
        name: Some(format!("Pod/doc{document}")),
        error: None,
        decision: Some(decision),
        locations,
    }
}

fn pod(name: &str, privileged: bool, image: &str, labels: Value, annotations: Value) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels, "annotations": annotations},
        "spec": {"containers": [{"name": "app", "image": image, "securityContext": {"privileged": privileged}}]},
    })
}

/// A report with every kind of finding: deny, warn, excepted, waived,
/// dry-run, an unreadable document, and (optionally) a broken policy.
fn full_report(broken: bool) -> (CheckReport, PolicyEngine) {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), broken);
    let waiver = Waiver {
        id: "W-7".into(),
        owner: "group:platform".into(),
        reason: "migrating <next> sprint".into(),
        entity: "component:default/web".into(),
        rule: "PL-T-002".into(),
        expires_at: OffsetDateTime::now_utc() + time::Duration::days(7),
        created_by: "user:ana".into(),
        created_at: OffsetDateTime::now_utc(),
    };
    let documents = vec![
        // deny (privileged), warn (latest), deny (no owner), dry-run (limits)
        decide(&engine, "deploy/web app.yaml", 1, 1, pod("bad", true, "nginx:latest", json!({}), json!({})), &[]),
        // excepted (owner), waived (latest), dry-run (limits)
        decide(
            &engine,
            "deploy/web app.yaml",
            2,
            20,
            pod("waived", false, "nginx:latest", json!({}), json!({"plinth.dev/no-owner": "ok"})),
            std::slice::from_ref(&waiver),
        ),
        DocumentResult {
            file: "deploy/web app.yaml".into(),
            document: 3,
            line: 40,
            input: "other".into(),
            name: None,
            error: Some(InputError { line: 42, message: "YAML syntax error: did not find expected key".into() }),
            decision: None,
            locations: Vec::new(),
        },
        // clean apart from dry-run limits
        decide(&engine, "clean.yaml", 1, 1, pod("ok", false, "nginx:1.27", json!({"owner": "team-a"}), json!({})), &[]),
    ];
    let report = CheckReport { point: Point::Pr, profile: None, documents, problems: engine.problems().to_vec() };
    (report, engine)
}

fn sarif_validator() -> jsonschema::Validator {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/sarif-schema-2.1.0.json");
    let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert_eq!(schema["title"], "Static Analysis Results Format (SARIF) Version 2.1.0 JSON Schema");
    jsonschema::options().should_validate_formats(true).build(&schema).expect("the SARIF schema compiles")
}

fn schema_errors(validator: &jsonschema::Validator, sarif: &Value) -> Vec<String> {
    validator.iter_errors(sarif).map(|e| format!("{} at {}", e, e.instance_path())).collect()
}

#[test]
fn sarif_is_valid_against_the_official_schema_and_maps_every_outcome() {
    let (report, engine) = full_report(false);
    assert!(engine.problems().is_empty(), "{:?}", engine.problems());
    let summaries = engine.summaries();
    let sarif = report::render_sarif(&report, &summaries, &SarifTool::default());
    let validator = sarif_validator();
    let errors = schema_errors(&validator, &sarif);
    assert!(errors.is_empty(), "SARIF does not match the schema: {errors:#?}\n{sarif:#}");

    assert_eq!(sarif["version"], "2.1.0");
    assert!(sarif["$schema"].as_str().unwrap().ends_with("sarif-schema-2.1.0.json"));
    let run = &sarif["runs"][0];
    let driver = &run["tool"]["driver"];
    assert_eq!(driver["name"], "plinth");
    assert_eq!(driver["version"], env!("CARGO_PKG_VERSION"));
    assert!(driver["informationUri"].as_str().unwrap().starts_with("https://"));

    // Rules come from the policy summaries, with METADATA ids, titles,
    // rationale, controls as tags and GitHub's severity properties.
    let rules = driver["rules"].as_array().unwrap();
    let rule = |id: &str| rules.iter().find(|r| r["id"] == id).unwrap_or_else(|| panic!("rule {id} in {rules:#?}"));
    let privileged = rule("PL-T-001");
    assert_eq!(privileged["name"], "test.workloads.deny_privileged");
    assert_eq!(privileged["shortDescription"]["text"], "Containers must not be privileged");
    assert_eq!(privileged["fullDescription"]["text"], "A privileged container can take over its node.");
    assert_eq!(privileged["properties"]["tags"], json!(["CIS-5.2.1", "NIST-AC-6"]));
    assert_eq!(privileged["properties"]["security-severity"], "9.5");
    assert_eq!(privileged["properties"]["problem.severity"], "error");
    assert_eq!(privileged["defaultConfiguration"]["level"], "error");
    assert_eq!(rule("PL-T-002")["properties"]["security-severity"], "5.5");
    assert_eq!(rule("PL-T-002")["properties"]["problem.severity"], "warning");
    assert_eq!(rule("PL-T-003")["properties"]["security-severity"], "8.0");
    assert_eq!(rule("PL-T-004")["properties"]["security-severity"], "3.0");
    assert_eq!(rule("PL-T-004")["properties"]["problem.severity"], "recommendation");
    // security-severity is a number written as a string, as GitHub requires.
    for r in rules {
        if let Some(score) = r["properties"]["security-severity"].as_str() {
            let score: f64 = score.parse().unwrap();
            assert!((0.0..=10.0).contains(&score));
        }
    }

    let results = run["results"].as_array().unwrap();
    // Every result's ruleIndex points at the rule with its ruleId.
    for result in results {
        let index = result["ruleIndex"].as_u64().unwrap() as usize;
        assert_eq!(rules[index]["id"], result["ruleId"], "{result:#}");
        let location = &result["locations"][0]["physicalLocation"];
        assert_eq!(location["artifactLocation"]["uriBaseId"], "%SRCROOT%");
        assert!(location["region"]["startLine"].as_u64().unwrap() >= 1);
    }
    let find = |id: &str, doc: u64| -> Vec<&Value> {
        results.iter().filter(|r| r["ruleId"] == id && r["properties"]["document"] == doc).collect()
    };
    // Relative path, forward slashes, space percent-encoded.
    let denied = find("PL-T-001", 1);
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0]["level"], "error");
    assert_eq!(denied[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "deploy/web%20app.yaml");
    assert_eq!(denied[0]["message"]["text"], "container app is privileged & <dangerous> \"really\"");
    assert!(denied[0].get("suppressions").is_none());
    assert_eq!(find("PL-T-002", 1)[0]["level"], "warning");
    assert_eq!(find("PL-T-003", 1)[0]["level"], "error");
    // Dry-run: a note, not suppressed.
    let dry = find("PL-T-004", 1);
    assert_eq!(dry[0]["level"], "note");
    assert!(dry[0].get("suppressions").is_none());
    // Excepted by the policy's exception rule: a suppressed note (in source).
    let excepted = find("PL-T-003", 2);
    assert_eq!(excepted[0]["level"], "note");
    assert_eq!(excepted[0]["suppressions"][0]["kind"], "inSource");
    assert_eq!(excepted[0]["suppressions"][0]["status"], "accepted");
    // Waived: a suppressed note (external) naming the waiver.
    let waived = find("PL-T-002", 2);
    assert_eq!(waived[0]["level"], "note");
    assert_eq!(waived[0]["suppressions"][0]["kind"], "external");
    assert!(waived[0]["suppressions"][0]["justification"].as_str().unwrap().contains("W-7"));
    // The unreadable document is an error at its line, under its own rule.
    let unreadable = results.iter().find(|r| r["ruleId"] == INPUT_ERROR_RULE).unwrap();
    assert_eq!(unreadable["level"], "error");
    assert_eq!(unreadable["locations"][0]["physicalLocation"]["region"]["startLine"], 42);

    // Fingerprints: stable across renders, distinct per finding.
    let again = report::render_sarif(&report, &summaries, &SarifTool::default());
    let prints = |s: &Value| -> Vec<String> {
        s["runs"][0]["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["partialFingerprints"]["plinthFingerprint/v1"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(prints(&sarif), prints(&again));
    let mut unique = prints(&sarif);
    unique.sort();
    unique.dedup();
    // Same rule, file and message in two documents of one file (the `limits`
    // findings of deploy/web app.yaml #1 and #2) still differ by document.
    assert_eq!(unique.len(), results.len());
}

#[test]
fn the_schema_check_is_not_vacuous() {
    let (report, engine) = full_report(false);
    let sarif = report::render_sarif(&report, &engine.summaries(), &SarifTool::default());
    let validator = sarif_validator();
    let mut bad_level = sarif.clone();
    bad_level["runs"][0]["results"][0]["level"] = json!("fatal");
    assert!(!schema_errors(&validator, &bad_level).is_empty());
    let mut no_message = sarif.clone();
    no_message["runs"][0]["results"][0].as_object_mut().unwrap().remove("message");
    assert!(!schema_errors(&validator, &no_message).is_empty());
    let mut line_zero = sarif.clone();
    line_zero["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["region"]["startLine"] = json!(0);
    assert!(!schema_errors(&validator, &line_zero).is_empty());
    let mut unknown = sarif.clone();
    unknown["runs"][0]["results"][0]["severity"] = json!("high");
    assert!(!schema_errors(&validator, &unknown).is_empty());
    let mut bad_uri = sarif;
    bad_uri["runs"][0]["tool"]["driver"]["informationUri"] = json!("not a uri");
    assert!(!schema_errors(&validator, &bad_uri).is_empty());
}

#[test]
fn broken_policies_fail_closed_in_every_format() {
    let (report, engine) = full_report(true);
    assert_eq!(engine.problems().len(), 1, "{:?}", engine.problems());
    assert!(report.failed());
    let summaries = engine.summaries();

    let sarif = report::render_sarif(&report, &summaries, &SarifTool::default());
    let errors = schema_errors(&sarif_validator(), &sarif);
    assert!(errors.is_empty(), "{errors:#?}");
    let run = &sarif["runs"][0];
    assert_eq!(run["invocations"][0]["executionSuccessful"], false);
    let notification = &run["invocations"][0]["toolExecutionNotifications"][0];
    assert!(notification["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap()
        .ends_with("broken.rego"));
    // Every evaluated document gets an error result naming the broken file.
    let failed_closed: Vec<_> =
        run["results"].as_array().unwrap().iter().filter(|r| r["properties"]["kind"] == "error").collect();
    assert_eq!(failed_closed.len(), 3);
    for result in failed_closed {
        assert_eq!(result["level"], "error");
        assert!(result["message"]["text"].as_str().unwrap().contains("broken.rego:"), "{result:#}");
    }

    let text = report::render_text(&report, &summaries);
    assert!(text.lines().any(|l| l.starts_with("ERROR - ") && l.contains("broken.rego:")), "{text}");
    assert!(
        text.lines().any(|l| l.starts_with("FAIL - clean.yaml:1 - test.broken.load - policy failed to load")),
        "{text}"
    );

    let junit = report::render_junit(&report, &summaries);
    let root = xml::parse(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    assert!(root.find_all("error").iter().any(|e| e.attr("message").unwrap().contains("broken.rego:")));
}

#[test]
fn text_is_conftest_like_with_a_summary_per_document_and_rule() {
    let (report, engine) = full_report(false);
    let text = report::render_text(&report, &engine.summaries());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines
        .contains(&"FAIL - deploy/web app.yaml:1 - PL-T-001 - container app is privileged & <dangerous> \"really\""));
    assert!(lines.contains(&"WARN - deploy/web app.yaml:2 - PL-T-002 - container app uses a :latest image"));
    assert!(lines.contains(&"FAIL - deploy/web app.yaml:3 - PL-T-003 - no owner label"));
    assert!(lines.contains(
        &"FAIL - deploy/web app.yaml:42 - plinth.input-error - YAML syntax error: did not find expected key"
    ));
    assert!(lines
        .iter()
        .any(|l| l.starts_with("EXCP - deploy/web app.yaml:") && l.contains("PL-T-003") && l.contains("excepted")));
    assert!(lines.iter().any(|l| l.starts_with("EXCP - deploy/web app.yaml:")
        && l.contains("PL-T-002")
        && l.contains("waived by W-7")));
    // 3 evaluated documents x 4 rules, plus the unreadable document:
    // doc1: 2 fail, 1 warn, 1 dry-run; doc2: 1 passed (privileged), 2 exceptions, 1 dry-run;
    // clean: 3 passed, 1 dry-run; unreadable: 1 failure.
    let counts = report.counts(&engine.summaries());
    assert_eq!(counts.failures, 3);
    assert_eq!(counts.warnings, 1);
    assert_eq!(counts.exceptions, 2);
    assert_eq!(counts.dry_run, 3);
    assert_eq!(counts.passed, 4);
    assert_eq!(counts.tests, 13);
    assert_eq!(
        lines.last().copied(),
        Some("13 tests, 4 passed, 1 warnings, 3 failures, 2 exceptions/waivers, 3 dry-run")
    );
    assert_eq!(Status::of(&report.documents[0].decision.as_ref().unwrap().violations[0]), Status::Fail);
}

#[test]
fn json_is_one_entry_per_document_with_its_decision() {
    let (report, _engine) = full_report(false);
    let value = report::render_json(&report);
    let entries = value.as_array().unwrap();
    assert_eq!(entries.len(), 4);
    assert_eq!(entries[0]["file"], "deploy/web app.yaml");
    assert_eq!(entries[0]["document"], 1);
    assert_eq!(entries[0]["decision"]["result"], "deny");
    assert_eq!(entries[0]["decision"]["point"], "pr");
    assert!(entries[0]["decision"]["violations"].as_array().unwrap().iter().any(|v| v["id"] == "PL-T-001"));
    assert_eq!(entries[1]["decision"]["result"], "allow");
    assert_eq!(entries[2]["error"]["line"], 42);
    assert!(entries[2].get("decision").is_none());
    assert_eq!(entries[3]["file"], "clean.yaml");
    // Round-trips as JSON text.
    let text = serde_json::to_string(&value).unwrap();
    assert_eq!(serde_json::from_str::<Value>(&text).unwrap(), value);
}

#[test]
fn junit_is_well_formed_and_counts_match() {
    let (report, engine) = full_report(false);
    let junit = report::render_junit(&report, &engine.summaries());
    let root = xml::parse(&junit).unwrap_or_else(|e| panic!("{e}\n{junit}"));
    assert_eq!(root.name, "testsuites");
    let suites = root.children_named("testsuite");
    assert_eq!(suites.len(), 2);
    let web = suites.iter().find(|s| s.attr("name") == Some("deploy/web app.yaml")).unwrap();
    let cases = web.children_named("testcase");
    // 2 documents x 4 rules + the unreadable document.
    assert_eq!(cases.len(), 9);
    assert_eq!(web.attr("tests"), Some("9"));
    assert_eq!(web.attr("failures"), Some("2"));
    assert_eq!(web.attr("errors"), Some("1"));
    // Excepted, waived, and the dry-run one of each document.
    assert_eq!(web.attr("skipped"), Some("4"));
    let total = |name: &str| -> usize { suites.iter().map(|s| s.attr(name).unwrap().parse::<usize>().unwrap()).sum() };
    assert_eq!(root.attr("tests").unwrap().parse::<usize>().unwrap(), total("tests"));
    assert_eq!(root.attr("failures").unwrap().parse::<usize>().unwrap(), total("failures"));
    // Escaped text comes back intact.
    let failure =
        root.find_all("failure").into_iter().find(|f| f.attr("message").unwrap().contains("privileged")).unwrap();
    assert_eq!(
        failure.attr("message").unwrap(),
        "deploy/web app.yaml:1: container app is privileged & <dangerous> \"really\""
    );
    assert!(failure.text.contains("<dangerous>"));
    let out = root.find_all("system-out");
    assert_eq!(out.len(), 1);
    assert!(out[0].text.starts_with("WARN - deploy/web app.yaml:2: container app uses a :latest image"));
    let error = &root.find_all("error")[0];
    assert_eq!(error.attr("type"), Some("input-error"));
    assert!(error.attr("message").unwrap().contains(":42:"));
}

#[test]
fn xml_escaping_survives_hostile_text() {
    let nasty = "a<b>&c\"d'e]]>\u{1}\u{7}\ttab\nline";
    let doc = format!("<r a=\"{}\">{}</r>", report::xml_escape(nasty), report::xml_escape(nasty));
    let root = xml::parse(&doc).unwrap();
    assert_eq!(root.attr("a").unwrap(), "a<b>&c\"d'e]]>\u{FFFD}\u{FFFD}\ttab\nline");
    assert_eq!(root.text, "a<b>&c\"d'e]]>\u{FFFD}\u{FFFD}\ttab\nline");
    // The checker itself rejects what is not well-formed.
    for bad in [
        "<r>",
        "<r></s>",
        "<r a=\"x<y\"/>",
        "<r>&nope;</r>",
        "<r>a & b</r>",
        "<r/><r/>",
        "<r a=\"1\" a=\"2\"/>",
        "<r>\u{1}</r>",
        "<r a=x/>",
    ] {
        assert!(xml::parse(bad).is_err(), "accepted {bad:?}");
    }
}

#[test]
fn empty_reports_are_valid_too() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path(), false);
    let report = CheckReport { point: Point::Pr, profile: None, documents: Vec::new(), problems: Vec::new() };
    let summaries = engine.summaries();
    let sarif = report::render_sarif(&report, &summaries, &SarifTool::default());
    assert!(schema_errors(&sarif_validator(), &sarif).is_empty());
    assert_eq!(sarif["runs"][0]["results"], json!([]));
    assert_eq!(sarif["runs"][0]["tool"]["driver"]["rules"].as_array().unwrap().len(), 4);
    let junit = report::render_junit(&report, &summaries);
    assert_eq!(xml::parse(&junit).unwrap().attr("tests"), Some("0"));
    assert_eq!(
        report::render_text(&report, &summaries),
        "0 tests, 0 passed, 0 warnings, 0 failures, 0 exceptions/waivers\n"
    );
    assert!(!report.failed());
}

/// A strict, small XML 1.0 well-formedness checker (elements, attributes,
/// character data, the five predefined entities and character references,
/// one prolog, comments): enough to hold JUnit output to the standard.
mod xml {
    #[derive(Debug, Default)]
    pub(super) struct Element {
        pub name: String,
        pub attrs: Vec<(String, String)>,
        pub children: Vec<Element>,
        pub text: String,
    }

    impl Element {
        pub(super) fn attr(&self, name: &str) -> Option<&str> {
            self.attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
        }

        pub(super) fn children_named(&self, name: &str) -> Vec<&Element> {
            self.children.iter().filter(|c| c.name == name).collect()
        }

        pub(super) fn find_all(&self, name: &str) -> Vec<&Element> {
            let mut out = Vec::new();
            let mut stack = vec![self];
            while let Some(e) = stack.pop() {
                if e.name == name {
                    out.push(e);
                }
                stack.extend(e.children.iter().rev());
            }
            out
        }
    }

    struct Parser<'a> {
        s: &'a str,
        i: usize,
    }

    fn is_name_start(c: char) -> bool {
        c.is_alphabetic() || c == '_' || c == ':'
    }

    fn is_name(c: char) -> bool {
        is_name_start(c) || c.is_ascii_digit() || c == '-' || c == '.'
    }

    fn allowed(c: char) -> bool {
        matches!(c, '\t' | '\n' | '\r') || (c >= ' ' && c != '\u{FFFE}' && c != '\u{FFFF}')
    }

    impl<'a> Parser<'a> {
        fn rest(&self) -> &'a str {
            &self.s[self.i..]
        }

        fn err<T>(&self, what: &str) -> Result<T, String> {
            Err(format!("not well-formed at byte {}: {what}", self.i))
        }

        fn skip_ws(&mut self) {
            while let Some(c) = self.rest().chars().next() {
                if c.is_ascii_whitespace() {
                    self.i += 1;
                } else {
                    break;
                }
            }
        }

        fn eat(&mut self, token: &str) -> bool {
            if self.rest().starts_with(token) {
                self.i += token.len();
                true
            } else {
                false
            }
        }

        fn name(&mut self) -> Result<String, String> {
            let start = self.i;
            for (n, c) in self.rest().char_indices() {
                let ok = if n == 0 { is_name_start(c) } else { is_name(c) };
                if !ok {
                    break;
                }
                self.i = start + n + c.len_utf8();
            }
            if self.i == start {
                return self.err("expected a name");
            }
            Ok(self.s[start..self.i].to_string())
        }

        /// Character data up to `stop`, with references resolved.
        fn chars(&mut self, stop: char) -> Result<String, String> {
            let mut out = String::new();
            loop {
                let Some(c) = self.rest().chars().next() else { return Ok(out) };
                if c == stop || (stop == '<' && c == '<') {
                    return Ok(out);
                }
                if !allowed(c) {
                    return self.err("character not allowed in XML");
                }
                if c == '<' {
                    return self.err("`<` in an attribute value");
                }
                if stop == '<' && self.rest().starts_with("]]>") {
                    return self.err("`]]>` in character data");
                }
                if c == '&' {
                    let end = self.rest().find(';').map(|e| self.i + e);
                    let Some(end) = end else { return self.err("unterminated reference") };
                    let entity = &self.s[self.i + 1..end];
                    let resolved = match entity {
                        "amp" => '&',
                        "lt" => '<',
                        "gt" => '>',
                        "quot" => '"',
                        "apos" => '\'',
                        e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                            .ok()
                            .and_then(char::from_u32)
                            .filter(|c| allowed(*c))
                            .ok_or(format!("bad character reference &{e};"))?,
                        e if e.starts_with('#') => e[1..]
                            .parse::<u32>()
                            .ok()
                            .and_then(char::from_u32)
                            .filter(|c| allowed(*c))
                            .ok_or(format!("bad character reference &{e};"))?,
                        other => return self.err(&format!("undefined entity &{other};")),
                    };
                    out.push(resolved);
                    self.i = end + 1;
                    continue;
                }
                out.push(c);
                self.i += c.len_utf8();
            }
        }

        fn misc(&mut self) -> Result<(), String> {
            loop {
                self.skip_ws();
                if self.eat("<!--") {
                    let Some(end) = self.rest().find("-->") else { return self.err("unterminated comment") };
                    self.i += end + 3;
                } else {
                    return Ok(());
                }
            }
        }

        fn element(&mut self) -> Result<Element, String> {
            if !self.eat("<") {
                return self.err("expected `<`");
            }
            let mut element = Element { name: self.name()?, ..Default::default() };
            loop {
                let had_space = self.rest().starts_with(|c: char| c.is_ascii_whitespace());
                self.skip_ws();
                if self.eat("/>") {
                    return Ok(element);
                }
                if self.eat(">") {
                    break;
                }
                if !had_space {
                    return self.err("attributes must be separated by white space");
                }
                let name = self.name()?;
                self.skip_ws();
                if !self.eat("=") {
                    return self.err("expected `=`");
                }
                self.skip_ws();
                let quote = match self.rest().chars().next() {
                    Some(q @ ('"' | '\'')) => q,
                    _ => return self.err("attribute values must be quoted"),
                };
                self.i += 1;
                let value = self.chars(quote)?;
                if !self.eat(&quote.to_string()) {
                    return self.err("unterminated attribute value");
                }
                if element.attr(&name).is_some() {
                    return self.err(&format!("duplicate attribute {name}"));
                }
                element.attrs.push((name, value));
            }
            loop {
                let text = self.chars('<')?;
                element.text.push_str(&text);
                if self.rest().is_empty() {
                    return self.err(&format!("<{}> is never closed", element.name));
                }
                if self.eat("</") {
                    let name = self.name()?;
                    self.skip_ws();
                    if name != element.name || !self.eat(">") {
                        return self.err(&format!("</{name}> does not close <{}>", element.name));
                    }
                    return Ok(element);
                }
                if self.eat("<!--") {
                    let Some(end) = self.rest().find("-->") else { return self.err("unterminated comment") };
                    self.i += end + 3;
                    continue;
                }
                element.children.push(self.element()?);
            }
        }
    }

    pub(super) fn parse(text: &str) -> Result<Element, String> {
        let mut p = Parser { s: text, i: 0 };
        if p.eat("<?xml") {
            let Some(end) = p.rest().find("?>") else { return p.err("unterminated XML declaration") };
            let declaration = &p.rest()[..end];
            if !declaration.contains("version=\"1.0\"") {
                return p.err("XML declaration without version 1.0");
            }
            p.i += end + 2;
        }
        p.misc()?;
        let root = p.element()?;
        p.misc()?;
        if !p.rest().is_empty() {
            return p.err("content after the root element");
        }
        Ok(root)
    }
}

/// The reports a user or a CI system reads, held as reviewed snapshots:
/// a change to the text, JUnit or SARIF output is a diff in review.
/// Temporary paths, instants and fingerprints are the only parts normalised.
#[test]
fn text_junit_and_sarif_reports_are_reviewed_snapshots() {
    let (report, engine) = full_report(true);
    let summaries = engine.summaries();
    let text = report::render_text(&report, &summaries);
    let junit = report::render_junit(&report, &summaries);
    // Fingerprints hash the policy file's path, a temporary directory here;
    // their stability and uniqueness are asserted by the SARIF test above.
    let mut sarif = report::render_sarif(&report, &summaries, &SarifTool::default());
    for result in sarif["runs"][0]["results"].as_array_mut().into_iter().flatten() {
        if let Some(prints) = result.get_mut("partialFingerprints").and_then(Value::as_object_mut) {
            prints.values_mut().for_each(|v| *v = json!("[FINGERPRINT]"));
        }
    }
    let sarif = serde_json::to_string_pretty(&sarif).unwrap();
    insta::assert_snapshot!("check_text", normalise(&text));
    insta::assert_snapshot!("check_junit", normalise(&junit));
    insta::assert_snapshot!("check_sarif", normalise(&sarif));
}

/// Replaces what differs between runs: temporary directories
/// (`/tmp/.tmpXXXXXX`) and RFC 3339 instants (`2026-12-05T…Z`).
fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        if let Some(tail) = rest.strip_prefix("/tmp/.tmp") {
            let end = tail.find(|c: char| !c.is_ascii_alphanumeric()).unwrap_or(tail.len());
            out.push_str("[TMP]");
            rest = &tail[end..];
            continue;
        }
        let bytes = rest.as_bytes();
        let instant = bytes.len() >= 20
            && bytes[..4].iter().all(u8::is_ascii_digit)
            && bytes[4] == b'-'
            && bytes[7] == b'-'
            && bytes[10] == b'T';
        if instant {
            let end = rest.find(['Z', '"', '<', ' ', '\n']).map_or(rest.len(), |i| {
                if &rest[i..i + 1] == "Z" {
                    i + 1
                } else {
                    i
                }
            });
            out.push_str("[INSTANT]");
            rest = &rest[end..];
            continue;
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}
