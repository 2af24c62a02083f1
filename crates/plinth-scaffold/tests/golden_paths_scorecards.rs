//! Every shipped golden path produces entities that pass the shipped
//! scorecards at silver or better. Each template under `templates/` runs
//! for real: its skeletons rendered, the shipped policies evaluated by the
//! real engine at the provision point, the result committed by the git
//! client to a local repository; then the catalogue file in that
//! repository is scored with the shipped scorecards, and its docs are
//! checked to render (mkdocs.yml and a Markdown page at the techdocs-ref).

use futures::future::BoxFuture;
use plinth_policy::{scorecard, Decision, EngineOptions, EvalRequest, Input, Point, PolicyBundle, PolicyEngine};
use plinth_scaffold::{
    Host, Limits, PolicyRequest, RegisterTarget, RunRequest, ScaffoldError, Template, TemplateFiles,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

fn repo_dir(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..").join(relative)
}

/// The shipped policies, evaluated by the real engine; registration reads
/// the catalogue file from the repository the run published to.
struct ShippedPolicies {
    engine: PolicyEngine,
    repo_root: PathBuf,
}

impl Host for ShippedPolicies {
    fn decide<'a>(
        &'a self,
        input: Value,
        request: &'a PolicyRequest,
    ) -> BoxFuture<'a, Result<(String, Decision), ScaffoldError>> {
        Box::pin(async move {
            let context = json!({"point": "provision", "environment": request.environment, "catalog": false});
            let input = plinth_policy::engine::attach_context(input, context);
            let input = Input::from_json(&input);
            let mut eval = EvalRequest::new(Point::Provision, &input);
            eval.profile = request.profile.as_deref();
            Ok((uuid::Uuid::now_v7().to_string(), self.engine.evaluate(&eval)))
        })
    }

    fn register<'a>(&'a self, target: RegisterTarget) -> BoxFuture<'a, Result<Vec<String>, ScaffoldError>> {
        Box::pin(async move {
            let file = Path::new(&target.repo).join(target.path.trim_start_matches('/'));
            let text = std::fs::read_to_string(&file)
                .map_err(|e| ScaffoldError::Host(format!("cannot read {}: {e}", file.display())))?;
            Ok(entities(&text).iter().map(entity_ref).collect())
        })
    }

    fn repo_root(&self) -> PathBuf {
        self.repo_root.clone()
    }
}

fn entities(text: &str) -> Vec<Value> {
    plinth_model::yaml::parse_documents(text, &Default::default())
        .into_iter()
        .filter_map(|d| d.value.ok())
        .filter(|v| v["kind"].is_string())
        .collect()
}

/// Every entity of the demo catalogue by lower-case ref.
fn demo_catalogue() -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let mut stack = vec![repo_dir("examples/demo")];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()) {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml") {
                for entity in entities(&std::fs::read_to_string(&path).unwrap()) {
                    if entity["metadata"]["name"].is_string() {
                        out.insert(entity_ref(&entity).to_lowercase(), entity);
                    }
                }
            }
        }
    }
    out
}

/// The catalogue entities an entity names (owner, system, models,
/// dependencies), as the server attaches them to a scorecard's input.
fn catalogue_context(demo: &BTreeMap<String, Value>, entity: &Value) -> Value {
    let mut named = Vec::new();
    let spec = &entity["spec"];
    let mut add = |kind: &str, value: &Value| {
        let items = match value {
            Value::Array(items) => items.clone(),
            Value::String(_) => vec![value.clone()],
            _ => Vec::new(),
        };
        for item in items.iter().filter_map(Value::as_str) {
            if let Ok(r) = plinth_model::parse_ref_lenient(item, Some(kind)) {
                named.push(r.key());
            }
        }
    };
    add("group", &spec["owner"]);
    add("system", &spec["system"]);
    add("model", &spec["models"]);
    add("component", &spec["dependsOn"]);
    add("api", &spec["tools"]);
    let map: serde_json::Map<String, Value> =
        named.into_iter().filter_map(|key| demo.get(&key).map(|e| (key, e.clone()))).collect();
    Value::Object(map)
}

fn entity_ref(entity: &Value) -> String {
    format!(
        "{}:{}/{}",
        entity["kind"].as_str().unwrap_or_default().to_lowercase(),
        entity["metadata"]["namespace"].as_str().unwrap_or("default"),
        entity["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// Sensible values for each shipped template, as a new user would give them.
fn values(template: &str) -> Value {
    let common =
        json!({"owner": "group:default/team-payments", "system": "system:default/payments", "repoUrl": template});
    let specific = match template {
        "service" => json!({"name": "loyalty-api", "language": "rust", "lifecycle": "production"}),
        "postgresql-database" => json!({"name": "loyalty-db", "namespace": "team-payments"}),
        "kubernetes-namespace" => {
            json!({"name": "loyalty", "description": "Namespace of the loyalty services.", "cluster": "eu-west-1-prod", "environment": "production"})
        }
        "ci-pipeline" => json!({"component": "component:default/loyalty-api", "language": "rust"}),
        "gpu-training-environment" => json!({
            "name": "churn-training", "purpose": "Train the churn model on anonymised order history.",
            "datasets": ["dataset:default/order-history"], "dataClassification": "confidential"}),
        "vector-database" => json!({
            "name": "support-kb", "embeddingModel": "model:default/openai-text-embedding-3-large",
            "datasets": ["dataset:default/help-center-articles"],
            "namespace": "team-payments"}),
        "model-serving-endpoint" => json!({
            "name": "llama-chat", "model": "model:default/openai-gpt-4o", "namespace": "team-payments",
            "pagerdutyServiceId": "P7AC60D"}),
        "ai-agent" => json!({
            "name": "refund-helper", "description": "Answers refund questions from the order history.",
            "model": "model:default/openai-gpt-4o", "tools": ["api:default/orders-api"], "riskTier": "limited",
            "runbookUrl": "https://runbooks.example.com/refund-helper"}),
        other => panic!("no sensible values for the template {other}: add them to this test"),
    };
    let mut values = common;
    for (k, v) in specific.as_object().cloned().unwrap_or_default() {
        values[k] = v;
    }
    values
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@localhost", "-c", "commit.gpgsign=false"])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_shipped_template_produces_silver_entities() {
    let bundle = PolicyBundle::load(&[repo_dir("policies")]);
    let engine = PolicyEngine::build(&bundle, EngineOptions::default());
    assert!(engine.problems().is_empty(), "{:?}", engine.problems());
    let cards = scorecard::definitions(&engine);
    assert!(cards.len() >= 2, "the shipped scorecards are missing");

    let scratch = tempfile::tempdir().unwrap();
    let repo_root = scratch.path().join("repos");
    std::fs::create_dir_all(&repo_root).unwrap();
    // ci-pipeline adds to an existing repository.
    let existing = repo_root.join("ci-pipeline");
    std::fs::create_dir_all(&existing).unwrap();
    git(&existing, &["init", "--quiet", "--initial-branch=main"]);
    std::fs::write(existing.join("README.md"), "# loyalty-api\n").unwrap();
    git(&existing, &["add", "--all"]);
    git(&existing, &["commit", "--quiet", "--message=init"]);
    let host = ShippedPolicies { engine, repo_root: repo_root.clone() };
    let demo = demo_catalogue();
    assert!(demo.len() > 100, "the demo catalogue is missing: {} entities", demo.len());

    let mut templates: Vec<PathBuf> = std::fs::read_dir(repo_dir("templates"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path().join("template.yaml"))
        .filter(|p| p.is_file())
        .collect();
    templates.sort();
    assert!(templates.len() >= 8, "{templates:?}");

    let mut scored = 0;
    let mut summary = Vec::new();
    for file in &templates {
        let text = std::fs::read_to_string(file).unwrap();
        let entity = entities(&text).into_iter().next().unwrap();
        let template = Template::from_entity(&entity).unwrap_or_else(|p| panic!("{}: {p:?}", file.display()));
        let name = template.name.clone();
        let request = RunRequest {
            task_id: format!("00000000-0000-7000-8000-{:012}", scored + summary.len()),
            template: Arc::new(template),
            files: TemplateFiles::Dir(file.parent().unwrap().to_path_buf()),
            values: values(&name),
            secrets: BTreeMap::new(),
            user_ref: Some("user:default/new-engineer".into()),
            user_entity: None,
            dry_run: false,
            workspace_dir: scratch.path().join("work").join(&name),
            limits: Limits::default(),
            timeout: Duration::from_secs(120),
            cancel: None,
        };
        let report = plinth_scaffold::run(request, &host, None).await;
        assert!(report.completed, "{name}: {:?}\n{}", report.error, report.log.join("\n"));
        let repo = repo_root.join(&name);
        let catalog = repo.join("catalog-info.yaml");
        if name == "ci-pipeline" {
            assert!(!catalog.exists(), "ci-pipeline registers nothing");
            summary.push(format!("{name}: no entity"));
            continue;
        }
        let produced = entities(&std::fs::read_to_string(&catalog).unwrap());
        assert!(!produced.is_empty(), "{name} produced no entity");
        assert!(
            produced[0]["metadata"]["annotations"]["backstage.io/techdocs-ref"].is_string(),
            "{name}: its main entity has no docs (backstage.io/techdocs-ref)"
        );
        for entity in &produced {
            let kind = entity["kind"].as_str().unwrap_or_default();
            let validation = plinth_model::validate_entity(entity);
            assert!(validation.is_empty(), "{name}: {} is invalid: {validation:?}", entity_ref(entity));
            // Docs that render: mkdocs.yml and a Markdown page where techdocs-ref points.
            let mut docs_context = Value::Null;
            if let Some(docs) = entity["metadata"]["annotations"]["backstage.io/techdocs-ref"].as_str() {
                let dir = repo.join(docs.strip_prefix("dir:").expect("a dir: techdocs-ref"));
                assert!(dir.join("mkdocs.yml").is_file(), "{name}: no mkdocs.yml at {docs}");
                let mkdocs = std::fs::read_to_string(dir.join("mkdocs.yml")).unwrap();
                assert!(!mkdocs.contains("${{"), "{name}: mkdocs.yml was not rendered");
                let index = std::fs::read_to_string(dir.join("docs/index.md")).unwrap();
                assert!(index.starts_with("# ") && !index.contains("${{"), "{name}: docs/index.md: {index}");
                let pages = std::fs::read_dir(dir.join("docs"))
                    .unwrap()
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().extension().is_some_and(|x| x == "md"))
                    .count();
                docs_context = json!({"ref": docs, "pages": pages});
            }
            // Scored as the portal scores it: against a live catalogue (the
            // demo's), so owners and the agent's models are looked up.
            let input = plinth_policy::engine::attach_context(
                entity.clone(),
                json!({"catalog": true, "entities": catalogue_context(&demo, entity), "docs": docs_context}),
            );
            let results = scorecard::evaluate(&host.engine, &cards, kind, &Input::from_json(&input));
            for result in &results {
                let failing: Vec<_> = result.checks.iter().filter(|c| !c.passed).collect();
                assert!(
                    matches!(result.level.as_deref(), Some("silver" | "gold")),
                    "{name}: {} scores {:?} ({}/{}) on {}; failing: {failing:#?}",
                    entity_ref(entity),
                    result.level,
                    result.passed,
                    result.total,
                    result.title
                );
                scored += 1;
                summary.push(format!(
                    "{name}: {} {} {}/{} on {}",
                    entity_ref(entity),
                    result.level.as_deref().unwrap_or("none"),
                    result.passed,
                    result.total,
                    result.scorecard
                ));
            }
        }
    }
    eprintln!("{}", summary.join("\n"));
    // service, model-serving-endpoint (production readiness), ai-agent (AI governance).
    assert!(scored >= 3, "only {scored} scored entities:\n{}", summary.join("\n"));
}
