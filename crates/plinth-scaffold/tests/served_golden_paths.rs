//! In a running server (demo catalogue, shipped templates and policies): a
//! service, a model-serving endpoint and an AI agent created by their golden
//! paths are published with git, registered, and scored by the live
//! governance view at silver or better — docs found in the published
//! repository included (read from the catalogue's git checkout).

use plinth_testkit::{wait_until, workspace_root, Backend, Options, TestServer};
use serde_json::{json, Value};
use std::time::Duration;

fn fixture_values(name: &str) -> Value {
    let path = workspace_root().join("crates/plinth-server/tests/data/scaffolder").join(name);
    let value: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("fixture")).expect("fixture JSON");
    value.get("parameters").cloned().unwrap_or(value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn golden_path_output_scores_silver_in_a_running_server() {
    let root = workspace_root();
    let options = Options {
        policies: Some(vec![root.join("policies").to_string_lossy().into_owned()]),
        scaffolder: true,
        golden_paths_config: Some(Box::new(|config| config.run_timeout = Duration::from_secs(60))),
        locations: vec![root.join("examples/demo/catalog-info.yaml"), root.join("templates/catalog-info.yaml")],
        ..Options::default()
    };
    let Some(server) = TestServer::start_with(Backend::Sqlite, options).await else { return };
    let cases = [
        ("service.json", "service", "component/default/loyalty-points"),
        ("model-serving-endpoint.json", "model-serving-endpoint", "component/default/support-llm"),
        ("ai-agent.json", "ai-agent", "agent/default/order-status-agent"),
    ];
    for (fixture, template, entity) in cases {
        let request = json!({"templateRef": format!("template:default/{template}"), "values": fixture_values(fixture)});
        let (status, created) = server
            .post_with_header("/api/scaffolder/v2/tasks", ("x-plinth-user", "user:default/alice"), &request)
            .await;
        assert_eq!(status.as_u16(), 201, "{created}");
        let path = format!("/api/scaffolder/v2/tasks/{}", created["id"].as_str().unwrap());
        wait_until(Duration::from_secs(120), &format!("{template} run ending"), || async {
            let (_, task) = server.get(&path).await;
            matches!(task["status"].as_str(), Some("completed" | "failed"))
        })
        .await;
        let (_, task) = server.get(&path).await;
        assert_eq!(task["status"], "completed", "{template}: {}", task["error"]);
        let governance = format!("/api/policy/entities/{entity}");
        let mut last = Value::Null;
        let scored = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let (status, body) = server.get(&governance).await;
                if status.as_u16() == 200
                    && body["scorecards"].as_array().is_some_and(|cards| {
                        !cards.is_empty()
                            && cards.iter().all(|c| matches!(c["level"].as_str(), Some("silver" | "gold")))
                    })
                {
                    return;
                }
                last = body;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        })
        .await;
        assert!(scored.is_ok(), "{template}: {entity} is not silver in the running server: {last:#}");
    }
    server.stop().await;
}
