//! Runs: the list of recent runs (`/create/tasks`) and a run's page
//! (`/create/tasks/{id}`), a snapshot of the stored run and its events
//! that `portal.js` keeps live from the event stream.

use super::{enabled, text};
use crate::portal::markdown::{self, Links};
use crate::portal::view::When;
use crate::portal::{encode, entity_href, page};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::Extension;
use plinth_app::golden_paths::{TaskEventRow, TaskEventType, TaskQuery, TaskRow, TaskStatus};
use plinth_app::{Caller, ErrorKind};
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// Runs on `/create/tasks`.
const RECENT_TASKS: usize = 100;
/// Log lines on a run's page.
const LOG_LINES: usize = 5000;

/// `create_tasks.html`: recent runs, newest first.
#[derive(Debug, Default, Serialize)]
struct RunsView {
    title: &'static str,
    /// Golden paths are off on this server.
    disabled: bool,
    /// Why the runs could not be read.
    error: Option<String>,
    tasks: Vec<RunRow>,
    /// Runs stored (`tasks` holds the newest [`RECENT_TASKS`]).
    total: u64,
}

/// A run, as a row of the list and the facts of its page.
#[derive(Debug, Serialize)]
struct RunRow {
    id: String,
    /// The run's page.
    href: String,
    /// `open`, `processing`, `completed`, `failed` or `cancelled`.
    status: &'static str,
    /// The template's reference.
    template: String,
    /// The template's form, when the reference names one.
    template_href: Option<String>,
    /// Who started it; `None`: anonymous.
    created_by: Option<String>,
    created_at: When,
    completed_at: Option<When>,
}

impl RunRow {
    fn of(task: &TaskRow) -> RunRow {
        RunRow {
            id: task.id.clone(),
            href: format!("/create/tasks/{}", encode(&task.id)),
            status: task.status.as_str(),
            template: task.template_ref.clone(),
            template_href: template_href(&task.template_ref),
            created_by: task.created_by.clone(),
            created_at: When::at(task.created_at),
            completed_at: task.completed_at.map(When::at),
        }
    }
}

/// `create_task.html`: a run with its steps, log, result and parameters,
/// or why there is none (`disabled`, `missing`).
#[derive(Debug, Default, Serialize)]
struct RunView {
    title: String,
    /// Golden paths are off on this server.
    disabled: bool,
    /// The id asked for, when there is no such run (or it could not be read).
    missing: Option<String>,
    /// Why the run failed, or why it could not be read.
    error: Option<String>,
    task: Option<RunDetail>,
    /// The template's steps, with how far each got.
    steps: Vec<StepRow>,
    /// The first [`LOG_LINES`] log lines.
    log: Vec<LogLine>,
    output: Option<RunOutput>,
    /// The values the run was started with.
    parameters: Vec<ParameterRow>,
}

/// The run itself on its page.
#[derive(Debug, Serialize)]
struct RunDetail {
    #[serde(flatten)]
    run: RunRow,
    /// The id of the last stored event (0: none); `portal.js` follows the
    /// event stream from there.
    last_event: i64,
    /// Completed, failed or cancelled.
    finished: bool,
}

/// A step of the run.
#[derive(Debug, Serialize)]
struct StepRow {
    id: String,
    name: String,
    action: String,
    /// The last status logged for it; `skipped` when the run finished
    /// without one, `open` while it runs.
    status: String,
}

/// A log line of a step or of the run.
#[derive(Debug, Serialize)]
struct LogLine {
    step: Option<String>,
    message: String,
}

/// A finished run's output: links, then text sections.
#[derive(Debug, Serialize)]
struct RunOutput {
    links: Vec<OutputLink>,
    text: Vec<OutputText>,
}

/// A link of the output: an entity, or a URL (`href` `None` when it is not
/// safe to link to, then shown as `text`).
#[derive(Debug, Serialize)]
struct OutputLink {
    title: String,
    href: Option<String>,
    /// The reference or URL as given.
    text: String,
    /// A link to an entity page.
    entity: bool,
}

/// A text section of the output.
#[derive(Debug, Serialize)]
struct OutputText {
    title: Option<String>,
    content: String,
    /// `content` as Markdown rendered to safe HTML.
    html: String,
}

/// A parameter the run was started with, its value as text.
#[derive(Debug, Serialize)]
struct ParameterRow {
    key: String,
    value: String,
}

/// `/create/templates/{namespace}/{name}` for `template:namespace/name`.
fn template_href(template_ref: &str) -> Option<String> {
    let rest = template_ref.split_once(':').map_or(template_ref, |(_, rest)| rest);
    let (namespace, name) = rest.split_once('/')?;
    Some(format!("/create/templates/{}/{}", encode(namespace), encode(name)))
}

/// `GET /create/tasks`: recent runs.
pub(crate) async fn tasks_page(State(app): State<AppState>, Extension(caller): Extension<Caller>) -> Response {
    if !enabled(&app) {
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "create_tasks.html",
            &RunsView { title: "Runs", disabled: true, ..RunsView::default() },
        );
    }
    let query = TaskQuery { limit: RECENT_TASKS, ..TaskQuery::default() };
    match app.platform.golden_paths().runs(&caller, &query).await {
        Ok((tasks, total)) => {
            let tasks = tasks.iter().map(RunRow::of).collect();
            page(StatusCode::OK, "create_tasks.html", &RunsView { title: "Runs", tasks, total, ..RunsView::default() })
        }
        Err(error) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            "create_tasks.html",
            &RunsView { title: "Runs", error: Some(error.message), ..RunsView::default() },
        ),
    }
}

/// First path segments of the portal's own pages.
const SITE_SECTIONS: [&str; 6] = ["", "catalog", "search", "policies", "create", "api"];

/// Whether a `/…` URL is a page of this site rather than a path on the
/// server's disk (`publish:git` into a local directory outputs one).
fn on_site(url: &str) -> bool {
    let Some(path) = url.strip_prefix('/').filter(|p| !p.starts_with('/')) else { return false };
    let section = path.split(['/', '?', '#']).next().unwrap_or_default();
    SITE_SECTIONS.contains(&section)
}

/// A link in a run's output: `entityRef` to the entity page, `url` only
/// when it is http(s) or a page of this site (else shown as text).
fn output_link(link: &Value) -> Option<OutputLink> {
    let title = link["title"].as_str();
    if let Some(entity_ref) = link["entityRef"].as_str().filter(|r| !r.is_empty()) {
        let href = plinth_model::parse_ref_lenient(entity_ref, Some("component"))
            .map(|r| entity_href(&r.to_string()))
            .unwrap_or_else(|_| entity_href(entity_ref));
        return Some(OutputLink {
            title: title.unwrap_or(entity_ref).to_string(),
            href: Some(href),
            text: entity_ref.to_string(),
            entity: true,
        });
    }
    let url = link["url"].as_str().filter(|u| !u.is_empty())?;
    let safe = url.starts_with("https://") || url.starts_with("http://") || on_site(url);
    Some(OutputLink {
        title: title.unwrap_or(url).to_string(),
        href: safe.then(|| url.to_string()),
        text: url.to_string(),
        entity: false,
    })
}

/// The links and text sections of a run's output (`links`, `text`).
fn run_output(output: &Value) -> RunOutput {
    let links = output["links"].as_array().map(|l| l.iter().filter_map(output_link).collect()).unwrap_or_default();
    let text = output["text"]
        .as_array()
        .map(|t| {
            t.iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(OutputText {
                        title: None,
                        html: markdown::render(s, Links::Inert).html,
                        content: s.clone(),
                    }),
                    Value::Object(o) => {
                        let content = o.get("content").and_then(text).unwrap_or_default();
                        Some(OutputText {
                            title: o.get("title").and_then(text),
                            html: markdown::render(&content, Links::Inert).html,
                            content,
                        })
                    }
                    _ => None,
                })
                .collect()
        })
        .unwrap_or_default();
    RunOutput { links, text }
}

/// `GET /create/tasks/{id}`: the run as it stands; `portal.js` follows the
/// event stream from the last stored event on.
pub(crate) async fn task_page(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if !enabled(&app) {
        let view = RunView { title: "Run".into(), disabled: true, ..RunView::default() };
        return page(StatusCode::SERVICE_UNAVAILABLE, "create_task.html", &view);
    }
    let golden_paths = app.platform.golden_paths();
    let task = match golden_paths.run(&caller, &id).await {
        Ok(task) => task,
        Err(error) if error.kind == ErrorKind::NotFound => {
            let view = RunView { title: "Run not found".into(), missing: Some(id), ..RunView::default() };
            return page(StatusCode::NOT_FOUND, "create_task.html", &view);
        }
        Err(error) => {
            let view =
                RunView { title: "Run".into(), missing: Some(id), error: Some(error.message), ..RunView::default() };
            return page(StatusCode::INTERNAL_SERVER_ERROR, "create_task.html", &view);
        }
    };
    let events = golden_paths.events(&caller, &id, None).await.unwrap_or_default();
    page(StatusCode::OK, "create_task.html", &run_view(&task, &events))
}

/// The run's page from the stored run and its events.
fn run_view(task: &TaskRow, events: &[TaskEventRow]) -> RunView {
    let mut statuses: BTreeMap<&str, &str> = BTreeMap::new();
    let mut log = Vec::new();
    let mut completion: Option<&Value> = None;
    for event in events {
        match event.event_type {
            TaskEventType::Log => {
                let body = &event.body;
                if let (Some(step), Some(status)) = (body["stepId"].as_str(), body["status"].as_str()) {
                    statuses.insert(step, status);
                }
                if log.len() < LOG_LINES {
                    log.push(LogLine {
                        step: body["stepId"].as_str().map(str::to_string),
                        message: body["message"].as_str().map_or_else(|| body["message"].to_string(), str::to_string),
                    });
                }
            }
            TaskEventType::Completion => completion = Some(&event.body),
        }
    }
    let finished = matches!(task.status, TaskStatus::Completed | TaskStatus::Failed | TaskStatus::Cancelled);
    let steps = task.spec["steps"]
        .as_array()
        .map(|steps| {
            steps
                .iter()
                .map(|s| {
                    let id = s["id"].as_str().unwrap_or_default();
                    let status = statuses.get(id).copied().unwrap_or(if finished { "skipped" } else { "open" });
                    // A step still "processing" when the run failed is where it failed.
                    let status = if finished && status == "processing" { "failed" } else { status };
                    StepRow {
                        id: id.to_string(),
                        name: s["name"].as_str().unwrap_or(id).to_string(),
                        action: text(&s["action"]).unwrap_or_default(),
                        status: status.to_string(),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let output = task.output.as_ref().or(completion.map(|c| &c["output"])).map(run_output);
    let error =
        task.error.clone().or_else(|| completion.and_then(|c| c["error"]["message"].as_str().map(str::to_string)));
    let parameters = task.spec["parameters"]
        .as_object()
        .map(|p| p.iter().map(|(k, v)| ParameterRow { key: k.clone(), value: text(v).unwrap_or_default() }).collect())
        .unwrap_or_default();
    RunView {
        title: format!("Run of {}", task.template_ref),
        disabled: false,
        missing: None,
        error,
        task: Some(RunDetail { run: RunRow::of(task), last_event: events.last().map_or(0, |e| e.id), finished }),
        steps,
        log,
        output,
        parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use time::macros::datetime;

    #[test]
    fn only_portal_paths_are_links() {
        for url in ["/", "/catalog/default/component/a", "/create/tasks/1", "/search?q=a"] {
            assert!(on_site(url), "{url}");
        }
        for url in ["/tmp/data/repos/a", "//evil.example", "/catalogue", "repos/a"] {
            assert!(!on_site(url), "{url}");
        }
    }

    fn task(status: TaskStatus, output: Option<Value>) -> TaskRow {
        TaskRow {
            id: "run-1".into(),
            template_ref: "template:default/hello".into(),
            spec: json!({
                "steps": [
                    {"id": "greet", "name": "Greet", "action": "debug:log"},
                    {"id": "publish", "name": "Publish", "action": "publish:git"},
                    {"id": "register", "action": "catalog:register"},
                ],
                "parameters": {"who": "world", "count": 2},
            }),
            created_by: None,
            status,
            created_at: datetime!(2024-05-01 10:00:00.250 UTC),
            last_heartbeat_at: None,
            completed_at: (status != TaskStatus::Processing).then_some(datetime!(2024-05-01 12:01:02.5 +02:00)),
            output,
            error: None,
        }
    }

    fn event(id: i64, event_type: TaskEventType, body: Value) -> TaskEventRow {
        TaskEventRow { id, task_id: "run-1".into(), event_type, body, created_at: datetime!(2024-05-01 10:00:01 UTC) }
    }

    #[test]
    fn a_failed_run_shows_where_it_failed_and_its_output() {
        let events = [
            event(1, TaskEventType::Log, json!({"stepId": "greet", "status": "completed", "message": "hello <world>"})),
            event(2, TaskEventType::Log, json!({"stepId": "publish", "status": "processing", "message": "pushing"})),
            event(3, TaskEventType::Log, json!({"message": "run log"})),
            event(
                4,
                TaskEventType::Completion,
                json!({
                    "status": "failed",
                    "error": {"message": "push rejected"},
                    "output": {
                        "links": [
                            {"title": "The team", "entityRef": "group:default/team-pay"},
                            {"title": "Evil", "url": "javascript:alert(1)"},
                            {"url": "/create/tasks"},
                        ],
                        "text": ["plain", {"title": "Notes", "content": "details"}],
                    },
                }),
            ),
        ];
        let view = run_view(&task(TaskStatus::Failed, None), &events);
        let statuses: Vec<&str> = view.steps.iter().map(|s| s.status.as_str()).collect();
        assert_eq!(statuses, ["completed", "failed", "skipped"]);
        let html = crate::portal::golden_paths::rendered("create_task.html", &view);
        for expected in [
            r#"data-task-id="run-1" data-task-status="failed" data-last-event="4" data-finished="true""#,
            r#"<time datetime="2024-05-01T10:00:00Z" title="2024-05-01 10:00:00 UTC">2024-05-01</time>"#,
            r#"<dd id="task-finished"><time datetime="2024-05-01T10:01:02Z" title="2024-05-01 10:01:02 UTC">"#,
            "<dd>anonymous</dd>",
            r#"<h1>Run of <a href="/create/templates/default/hello">template:default/hello</a></h1>"#,
            r#"data-step-id="register" data-status="skipped""#,
            r#"<span class="step-name">register</span>"#,
            r#"<p class="problem-note" role="alert">push rejected</p>"#,
            r#"<a class="output-link entity-link" href="/catalog/default/group/team-pay">The team</a>"#,
            "Evil: <code>javascript:alert(1)</code>",
            r#"<a class="output-link" href="/create/tasks">/create/tasks</a>"#,
            r#"<section class="output-text"><div class="markdown"><p>plain</p>
</div></section>"#,
            r#"<h3>Notes</h3><div class="markdown"><p>details</p>"#,
            "<dt><code>count</code></dt><dd>2</dd>",
            "[greet] hello &lt;world&gt;",
            r#"<span class="log-line">run log</span>"#,
        ] {
            assert!(html.contains(expected), "{expected} in {html}");
        }
        assert!(
            !html.contains("cancel-run")
                && !html.contains(r#"id="task-result" aria-labelledby="result-heading" aria-live="polite" hidden"#)
        );
    }

    #[test]
    fn a_running_run_can_be_cancelled() {
        let view = run_view(&task(TaskStatus::Processing, None), &[]);
        let html = crate::portal::golden_paths::rendered("create_task.html", &view);
        assert!(html.contains(r#"id="cancel-run""#) && html.contains(r#"data-last-event="0""#), "{html}");
        assert!(html.contains(r#"<dd id="task-finished">—</dd>"#) && !html.contains("data-finished"), "{html}");
        assert!(html.contains(r#"data-step-id="greet" data-status="open""#), "{html}");
    }

    #[test]
    fn missing_and_disabled_runs_render() {
        let missing = RunView { title: "Run not found".into(), missing: Some("nope".into()), ..RunView::default() };
        let html = crate::portal::golden_paths::rendered("create_task.html", &missing);
        assert!(html.contains(r#"<p class="empty" id="task-missing">No run <code>nope</code>. <a"#), "{html}");
        assert!(!html.contains("data-task-id"), "{html}");
        let unreadable = RunView {
            title: "Run".into(),
            missing: Some("x".into()),
            error: Some("db down".into()),
            ..RunView::default()
        };
        assert!(crate::portal::golden_paths::rendered("create_task.html", &unreadable).contains(". db down "));
        let disabled = RunView { title: "Run".into(), disabled: true, ..RunView::default() };
        assert!(
            crate::portal::golden_paths::rendered("create_task.html", &disabled).contains(r#"id="create-disabled""#)
        );
    }

    #[test]
    fn the_runs_list_renders_in_every_state() {
        let tasks =
            vec![RunRow::of(&task(TaskStatus::Completed, None)), RunRow::of(&task(TaskStatus::Processing, None))];
        let html = crate::portal::golden_paths::rendered(
            "create_tasks.html",
            &RunsView { title: "Runs", tasks, total: 7, ..RunsView::default() },
        );
        assert!(
            html.contains("2 of 7 runs") && html.contains(r#"<a href="/create/tasks/run-1"><code>run-1</code></a>"#),
            "{html}"
        );
        assert!(
            html.contains(
                r#"<td><time datetime="2024-05-01T10:01:02Z" title="2024-05-01 10:01:02 UTC">2024-05-01</time>"#
            ) && html.contains("<td></td>"),
            "{html}"
        );
        let empty = crate::portal::golden_paths::rendered(
            "create_tasks.html",
            &RunsView { title: "Runs", ..RunsView::default() },
        );
        assert!(empty.contains(r#"id="no-tasks""#), "{empty}");
        let error = RunsView { title: "Runs", error: Some("db down".into()), ..RunsView::default() };
        assert!(
            crate::portal::golden_paths::rendered("create_tasks.html", &error).contains("could not be read: db down")
        );
        let disabled = RunsView { title: "Runs", disabled: true, ..RunsView::default() };
        assert!(
            crate::portal::golden_paths::rendered("create_tasks.html", &disabled).contains(r#"id="create-disabled""#)
        );
    }
}
