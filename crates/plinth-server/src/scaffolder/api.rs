//! `/api/scaffolder/v2`: Backstage's scaffolder API (tasks, event stream,
//! dry run, actions, parameter schemas) plus a template list.

use super::{Scaffolder, StartError};
use crate::error::{parse_json, ApiError, ApiResult};
use crate::params::Params;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use plinth_scaffold::{Template, TemplateFiles};
use plinth_store::{TaskEventRow, TaskQuery, TaskRow, TaskStatus};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

fn service(app: &AppState) -> ApiResult<&Arc<Scaffolder>> {
    app.config.scaffolder.as_ref().ok_or_else(|| ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        name: "ServiceUnavailableError",
        message: "golden paths are not enabled on this server; start it with `plinth serve`".into(),
        details: None,
    })
}

fn start_error(error: StartError) -> ApiError {
    match error {
        StartError::NotFound(message) => ApiError::not_found(message),
        StartError::BadTemplate(problems) => {
            let message = problems.iter().map(|p| p.to_string()).collect::<Vec<_>>().join("; ");
            ApiError::bad_request(format!("the template is invalid: {message}"))
                .with_details(json!({"problems": problems}))
        }
        StartError::BadValues(errors) => {
            let message = errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; ");
            ApiError::bad_request(format!("invalid parameters: {message}")).with_details(json!({"errors": errors}))
        }
        StartError::Store(message) => ApiError::internal(message),
    }
}

fn template_summary(entity: &Value, parsed: &Result<Template, Vec<plinth_scaffold::TemplateProblem>>) -> Value {
    let metadata = &entity["metadata"];
    json!({
        "entityRef": format!("template:{}/{}", metadata["namespace"].as_str().unwrap_or("default"), metadata["name"].as_str().unwrap_or_default()),
        "name": metadata["name"],
        "title": metadata["title"].as_str().or(metadata["name"].as_str()),
        "description": metadata["description"],
        "tags": metadata["tags"],
        "type": entity["spec"]["type"],
        "owner": entity["spec"]["owner"],
        "valid": parsed.is_ok(),
        "problems": parsed.as_ref().err(),
    })
}

/// Templates in the catalogue, each checked (a broken one lists its problems).
#[utoipa::path(get, path = "/api/scaffolder/v2/templates", tag = "scaffolder",
    responses((status = 200, description = "`{items: [{entityRef, name, title, description, tags, type, owner, valid, problems}]}`")))]
pub async fn templates(State(app): State<AppState>) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    let items: Vec<Value> =
        scaffolder.templates().iter().map(|(entity, parsed)| template_summary(entity, parsed)).collect();
    Ok(Json(json!({"items": items})))
}

/// Backstage's parameter schema of a template: its form pages.
#[utoipa::path(get, path = "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema", tag = "scaffolder",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "`{title, description, steps: [{title, description, schema}]}`"), (status = 404, description = "No such template")))]
pub async fn parameter_schema(
    State(app): State<AppState>,
    Path((namespace, _kind, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    let (template, _) = scaffolder.template(&format!("template:{namespace}/{name}")).await.map_err(start_error)?;
    let steps: Vec<Value> = template
        .parameters
        .iter()
        .map(|page| json!({"title": page["title"].as_str().unwrap_or("Parameters"), "description": page["description"], "schema": page}))
        .collect();
    Ok(Json(json!({"title": template.title, "description": template.description, "steps": steps})))
}

/// The installed actions with their input and output schemas.
#[utoipa::path(get, path = "/api/scaffolder/v2/actions", tag = "scaffolder",
    responses((status = 200, description = "`[{id, description, schema: {input, output}}]`")))]
pub async fn actions() -> Json<Value> {
    Json(json!(plinth_scaffold::list_actions()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NewTask {
    /// `template:default/service`.
    template_ref: String,
    #[serde(default)]
    #[schema(value_type = Object)]
    values: Value,
    /// Secret values (tokens): usable as `${{ secrets.x }}`, never stored or logged.
    #[serde(default)]
    secrets: BTreeMap<String, String>,
}

/// Starts a run of a catalogued template.
#[utoipa::path(post, path = "/api/scaffolder/v2/tasks", tag = "scaffolder", request_body = NewTask,
    responses((status = 201, description = "`{id}`"), (status = 400, description = "Invalid parameters (each names its field) or template"), (status = 404, description = "No such template")))]
pub async fn create_task(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let scaffolder = service(&app)?;
    let request: NewTask = parse_json(&body, "task request")?;
    if !request.values.is_object() && !request.values.is_null() {
        return Err(ApiError::bad_request("`values` must be an object of parameter values"));
    }
    let values = if request.values.is_null() { json!({}) } else { request.values };
    let user = crate::policy::api::requester_header(&headers);
    let id = scaffolder.create_task(&request.template_ref, values, request.secrets, user).await.map_err(start_error)?;
    Ok((StatusCode::CREATED, Json(json!({"id": id}))))
}

fn task_json(task: &TaskRow) -> Value {
    json!({
        "id": task.id,
        "spec": task.spec,
        "status": task.status.as_str(),
        "createdAt": task.created_at,
        "lastHeartbeatAt": task.last_heartbeat_at,
        "completedAt": task.completed_at,
        "createdBy": task.created_by,
        "output": task.output,
        "error": task.error.as_ref().map(|message| json!({"name": "Error", "message": message})),
    })
}

/// Runs, newest first: `createdBy`, `status`, `limit` (default 50), `offset`.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks", tag = "scaffolder",
    params(("createdBy" = Option<String>, Query), ("status" = Option<String>, Query), ("limit" = Option<usize>, Query, minimum = 1, maximum = 500), ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000_000)),
    responses((status = 200, description = "`{tasks, totalTasks}`")))]
pub async fn list_tasks(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    let status = match params.one("status") {
        Some(text) => Some(TaskStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status `{text}`; use open, processing, completed, failed or cancelled"
            ))
        })?),
        None => None,
    };
    let query = TaskQuery {
        created_by: params.one("createdBy").map(str::to_string),
        status,
        limit: params.int_or("limit", 1..=500, 50)?,
        offset: params.int_or("offset", 0..=10_000_000, 0)?,
    };
    let (tasks, total) = scaffolder.store().list_tasks(&query).await.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!({"tasks": tasks.iter().map(task_json).collect::<Vec<_>>(), "totalTasks": total})))
}

async fn find_task(scaffolder: &Scaffolder, id: &str) -> ApiResult<TaskRow> {
    scaffolder
        .store()
        .get_task(id)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .ok_or_else(|| ApiError::not_found(format!("no task `{id}`; list runs with GET /api/scaffolder/v2/tasks")))
}

/// One run: its spec (parameters without secrets), status and output.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}", tag = "scaffolder", params(("id" = String, Path)),
    responses((status = 200, description = "`{id, spec, status, createdAt, lastHeartbeatAt, completedAt, createdBy, output, error}`"), (status = 404, description = "No such task")))]
pub async fn task(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    Ok(Json(task_json(&find_task(scaffolder, &id).await?)))
}

/// Cancels a run: the step in progress is stopped and nothing after it runs.
#[utoipa::path(post, path = "/api/scaffolder/v2/tasks/{id}/cancel", tag = "scaffolder", params(("id" = String, Path)),
    responses((status = 200, description = "`{status: \"cancelled\"}` — the run stops within moments"), (status = 404, description = "No such task"),
              (status = 409, description = "The run has already finished, or runs on another replica")))]
pub async fn cancel(State(app): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    let task = find_task(scaffolder, &id).await?;
    let user = crate::policy::api::requester_header(&headers);
    if scaffolder.cancel(&id, user.as_deref()) {
        return Ok(Json(json!({"status": "cancelled"})));
    }
    Err(ApiError::conflict(match task.status {
        TaskStatus::Open | TaskStatus::Processing => {
            format!("run {id} is executing on another replica; cancel it there")
        }
        status => format!("run {id} has already finished ({}); nothing to cancel", status.as_str()),
    }))
}

fn event_json(event: &TaskEventRow) -> Value {
    json!({"id": event.id, "taskId": event.task_id, "type": event.event_type, "body": event.body, "createdAt": event.created_at})
}

fn after(params: &Params) -> ApiResult<Option<i64>> {
    params.int("after", 0..=i64::MAX)
}

/// A run's events so far (Backstage's polling alternative to the stream).
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/events", tag = "scaffolder",
    params(("id" = String, Path), ("after" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, description = "`[{id, taskId, type, body, createdAt}]`")))]
pub async fn events(State(app): State<AppState>, Path(id): Path<String>, params: Params) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    find_task(scaffolder, &id).await?;
    let events =
        scaffolder.store().task_events(&id, after(&params)?).await.map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Json(json!(events.iter().map(event_json).collect::<Vec<_>>())))
}

/// Server-sent events of a run: every `log` event (step started, log line,
/// step finished) and the final `completion`; `?after=ID` resumes.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/eventstream", tag = "scaffolder",
    params(("id" = String, Path), ("after" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, description = "text/event-stream of `log` and `completion` events")))]
pub async fn eventstream(
    State(app): State<AppState>,
    Path(id): Path<String>,
    params: Params,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let scaffolder = service(&app)?.clone();
    find_task(&scaffolder, &id).await?;
    let mut last = after(&params)?.unwrap_or(0);
    // Subscribe before reading what is stored, so nothing falls between.
    let live = scaffolder.subscribe(&id);
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Event, Infallible>>(256);
    tokio::spawn(async move {
        let send = |event: &TaskEventRow| {
            Event::default()
                .event(event.event_type.clone())
                .id(event.id.to_string())
                .data(event_json(event).to_string())
        };
        // Stored events, then live ones; a lagging or closed live channel
        // falls back to the store, which has everything.
        let mut live = live;
        let mut idle = 0u32;
        loop {
            let stored = scaffolder.store().task_events(&id, Some(last)).await.unwrap_or_default();
            for event in &stored {
                last = event.id;
                if sender.send(Ok(send(event))).await.is_err() {
                    return;
                }
                if event.event_type == "completion" {
                    return;
                }
            }
            let Some(receiver) = live.as_mut() else {
                // Not running in this process: on another replica (PostgreSQL
                // shares runs), or between its last stored event and its
                // completion. The store has everything: poll it.
                if let Some(next) = scaffolder.subscribe(&id) {
                    live = Some(next);
                    continue;
                }
                if sender.is_closed() {
                    return;
                }
                if stored.is_empty() {
                    idle += 1;
                    // A finished run whose completion event never got stored
                    // (the store failed then): end rather than wait forever.
                    if idle > 8 {
                        let finished = scaffolder
                            .store()
                            .get_task(&id)
                            .await
                            .ok()
                            .flatten()
                            .is_some_and(|t| !matches!(t.status, TaskStatus::Open | TaskStatus::Processing));
                        if finished {
                            return;
                        }
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(250)).await;
                } else {
                    idle = 0;
                }
                continue;
            };
            loop {
                match receiver.recv().await {
                    Ok(event) if event.id > last => {
                        last = event.id;
                        if sender.send(Ok(send(&event))).await.is_err() {
                            return;
                        }
                        if event.event_type == "completion" {
                            return;
                        }
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(_)) => break,
                    Err(RecvError::Closed) => {
                        live = None;
                        break;
                    }
                }
            }
        }
    });
    Ok(Sse::new(tokio_stream::wrappers::ReceiverStream::new(receiver)).keep_alive(KeepAlive::default()))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DryRunRequest {
    /// An inline Template entity (Backstage) — or use `templateRef`.
    #[serde(default)]
    #[schema(value_type = Object)]
    template: Option<Value>,
    /// A catalogued template (Plinth): its own directory supplies the files.
    #[serde(default)]
    template_ref: Option<String>,
    #[serde(default)]
    #[schema(value_type = Object)]
    values: Value,
    #[serde(default)]
    secrets: BTreeMap<String, String>,
    /// The template's files, as `[{path, base64Content, executable}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    directory_contents: Vec<plinth_scaffold::DirectoryEntry>,
}

/// Runs a template without publishing or registering anything: the log,
/// the files it would produce, its output, its steps and the policy decision.
#[utoipa::path(post, path = "/api/scaffolder/v2/dry-run", tag = "scaffolder", request_body = DryRunRequest,
    responses((status = 200, description = "`{log: [{body}], directoryContents, output, steps, policy, completed, error}`"), (status = 400, description = "Invalid template or request")))]
pub async fn dry_run(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> ApiResult<Json<Value>> {
    let scaffolder = service(&app)?;
    let request: DryRunRequest = parse_json(&body, "dry-run request")?;
    let (template, files) = match (&request.template, &request.template_ref) {
        (Some(entity), _) => {
            let template = Template::from_entity(entity).map_err(|p| start_error(StartError::BadTemplate(p)))?;
            let files = if request.directory_contents.is_empty() {
                TemplateFiles::None
            } else {
                TemplateFiles::from_entries(&request.directory_contents).map_err(ApiError::bad_request)?
            };
            (Arc::new(template), files)
        }
        (None, Some(reference)) => scaffolder.template(reference).await.map_err(start_error)?,
        (None, None) => {
            return Err(ApiError::bad_request("give `template` (an inline Template entity) or `templateRef`"))
        }
    };
    let values = if request.values.is_null() { json!({}) } else { request.values };
    let user = crate::policy::api::requester_header(&headers);
    let (report, events) = scaffolder.dry_run(template, files, values, request.secrets, user).await;
    let result = report
        .decisions
        .iter()
        .filter_map(|d| d["result"].as_str())
        .max_by_key(|r| match *r {
            "deny" => 2,
            "warn" => 1,
            _ => 0,
        })
        .unwrap_or("none");
    let violations: Vec<Value> = report
        .decisions
        .iter()
        .flat_map(|d| {
            let subject = d["subject"].clone();
            d["violations"].as_array().cloned().unwrap_or_default().into_iter().map(move |mut v| {
                v["subject"] = subject.clone();
                v
            })
        })
        .collect();
    Ok(Json(json!({
        "log": events.iter().map(|e| json!({"body": e.body})).collect::<Vec<_>>(),
        "directoryContents": report.directory_contents,
        "output": report.output,
        "steps": report.steps,
        "completed": report.completed,
        "error": report.error,
        "parameterErrors": report.parameter_errors,
        "policy": {"result": result, "decisions": report.decisions, "violations": violations},
    })))
}
