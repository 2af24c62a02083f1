//! `/api/scaffolder/v2`: Backstage's scaffolder API (tasks, event stream,
//! dry run, actions, parameter schemas) plus a template list.

pub(crate) mod dto;

use self::dto::{
    ActionDto, CancelledDto, DryRunBody, DryRunDto, DryRunRequest, NewTaskDto, ParameterPageDto, ParameterSchemaDto,
    TaskCreated, TaskDto, TaskEventDto, TasksDto, TemplateSummaryDto, TemplatesDto, MAX_TEMPLATE_REF,
};
use crate::api::schema::TaskStatusName;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ApiParams, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use futures::{Stream, StreamExt};
use plinth_app::golden_paths::{DryRun, NewRun, TaskQuery, TaskStatus};
use plinth_app::Caller;
use std::convert::Infallible;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/templates", get(templates))
        .route("/templates/{namespace}/{kind}/{name}/parameter-schema", get(parameter_schema))
        .route("/actions", get(actions))
        .route("/tasks", get(list_tasks).post(create_task))
        .route("/tasks/{id}", get(task))
        .route("/tasks/{id}/cancel", post(cancel))
        .route("/tasks/{id}/events", get(events))
        .route("/tasks/{id}/eventstream", get(eventstream))
        .route("/dry-run", post(dry_run))
}

/// Templates in the catalogue, each checked (a broken one lists its problems).
#[utoipa::path(get, path = "/api/scaffolder/v2/templates", tag = "scaffolder",
    responses((status = 200, description = "Catalogued templates", body = TemplatesDto)))]
pub(crate) async fn templates(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<TemplatesDto>> {
    let listings = app.platform.golden_paths().templates(&caller)?;
    Ok(Json(TemplatesDto { items: listings.iter().map(TemplateSummaryDto::from).collect() }))
}

/// Backstage's parameter schema of a template: its form pages.
#[utoipa::path(get, path = "/api/scaffolder/v2/templates/{namespace}/{kind}/{name}/parameter-schema", tag = "scaffolder",
    params(("namespace" = String, Path), ("kind" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "Title, description and form pages", body = ParameterSchemaDto),
              (status = 400, description = "The template is broken", body = ErrorBody),
              (status = 404, description = "No such template", body = ErrorBody)))]
pub(crate) async fn parameter_schema(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((namespace, _kind, name)): Path<(String, String, String)>,
) -> ApiResult<Json<ParameterSchemaDto>> {
    let template = app.platform.golden_paths().template(&caller, &format!("template:{namespace}/{name}")).await?;
    let steps = template
        .parameters
        .iter()
        .map(|page| ParameterPageDto {
            title: page["title"].as_str().unwrap_or("Parameters").to_string(),
            description: page["description"].as_str().map(str::to_string),
            schema: page.clone(),
        })
        .collect();
    Ok(Json(ParameterSchemaDto { title: template.title.clone(), description: template.description.clone(), steps }))
}

/// The installed actions with their input and output schemas.
#[utoipa::path(get, path = "/api/scaffolder/v2/actions", tag = "scaffolder",
    responses((status = 200, description = "Every action", body = Vec<ActionDto>)))]
pub(crate) async fn actions(State(app): State<AppState>) -> Json<Vec<ActionDto>> {
    Json(app.platform.golden_paths().actions().iter().map(ActionDto::from).collect())
}

/// Starts a run of a catalogued template.
#[utoipa::path(post, path = "/api/scaffolder/v2/tasks", tag = "scaffolder", request_body = NewTaskDto,
    responses((status = 201, description = "Started", body = TaskCreated),
              (status = 400, description = "Invalid parameters (each names its field) or template", body = ErrorBody),
              (status = 404, description = "No such template", body = ErrorBody)))]
pub(crate) async fn create_task(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<NewTaskDto>,
) -> ApiResult<(StatusCode, Json<TaskCreated>)> {
    crate::params::check_length("templateRef", &request.template_ref, MAX_TEMPLATE_REF)?;
    let run = NewRun { template_ref: request.template_ref, values: request.values, secrets: request.secrets };
    let id = app.platform.golden_paths().start(&caller, run).await?;
    Ok((StatusCode::CREATED, Json(TaskCreated { id })))
}

/// Runs, newest first: `createdBy`, `status`, `limit` (default 50), `offset`.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks", tag = "scaffolder",
    params(("createdBy" = Option<String>, Query),
           ("status" = Option<TaskStatusName>, Query),
           ("limit" = Option<usize>, Query, minimum = 1, maximum = 500), ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000_000)),
    responses((status = 200, description = "Runs and their total", body = TasksDto),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn list_tasks(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<TasksDto>> {
    let status = match params.typed("status") {
        Some(text) => Some(TaskStatus::parse(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "unknown status `{}`; use open, processing, completed, failed or cancelled",
                crate::params::shorten(text)
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
    let (tasks, total) = app.platform.golden_paths().runs(&caller, &query).await?;
    Ok(Json(TasksDto { tasks: tasks.iter().map(TaskDto::from).collect(), total_tasks: total }))
}

/// One run: its spec (parameters without secrets), status and output.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}", tag = "scaffolder", params(("id" = String, Path)),
    responses((status = 200, description = "The run", body = TaskDto), (status = 404, description = "No such task", body = ErrorBody)))]
pub(crate) async fn task(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<TaskDto>> {
    Ok(Json((&app.platform.golden_paths().run(&caller, &id).await?).into()))
}

/// Cancels a run: the step in progress is stopped and nothing after it runs.
#[utoipa::path(post, path = "/api/scaffolder/v2/tasks/{id}/cancel", tag = "scaffolder", params(("id" = String, Path)),
    responses((status = 200, description = "The run stops within moments", body = CancelledDto),
              (status = 404, description = "No such task", body = ErrorBody),
              (status = 409, description = "The run has already finished, or runs on another replica", body = ErrorBody)))]
pub(crate) async fn cancel(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<CancelledDto>> {
    app.platform.golden_paths().cancel(&caller, &id).await?;
    Ok(Json(CancelledDto { status: "cancelled".into() }))
}

fn after(params: &Params) -> ApiResult<Option<i64>> {
    params.int("after", 0..=i64::MAX)
}

/// A run's events so far (Backstage's polling alternative to the stream).
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/events", tag = "scaffolder",
    params(("id" = String, Path), ("after" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, description = "Events after `after`", body = Vec<TaskEventDto>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 404, description = "No such task", body = ErrorBody)))]
pub(crate) async fn events(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<Vec<TaskEventDto>>> {
    let events = app.platform.golden_paths().events(&caller, &id, after(&params)?).await?;
    Ok(Json(events.iter().map(TaskEventDto::from).collect()))
}

/// Server-sent events of a run: every `log` event (step started, log line,
/// step finished) and the final `completion`; `?after=ID` resumes.
#[utoipa::path(get, path = "/api/scaffolder/v2/tasks/{id}/eventstream", tag = "scaffolder",
    params(("id" = String, Path), ("after" = Option<i64>, Query, minimum = 0)),
    responses((status = 200, description = "text/event-stream of `log` and `completion` events", content_type = "text/event-stream", body = String),
              (status = 400, description = "A parameter is invalid", body = ErrorBody),
              (status = 404, description = "No such task", body = ErrorBody)))]
pub(crate) async fn eventstream(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiParams(params): ApiParams,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let events = app.platform.golden_paths().follow(&caller, &id, after(&params)?).await?;
    let stream = events.map(|event| {
        let data = serde_json::to_string(&TaskEventDto::from(&event)).unwrap_or_default();
        Ok(Event::default().event(event.event_type.as_str()).id(event.id.to_string()).data(data))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Runs a template without publishing or registering anything: the log,
/// the files it would produce, its output, its steps and the policy decision.
#[utoipa::path(post, path = "/api/scaffolder/v2/dry-run", tag = "scaffolder", request_body = DryRunBody,
    responses((status = 200, description = "What the run did", body = DryRunDto),
              (status = 400, description = "Invalid parameters (each names its field), template or request", body = ErrorBody),
              (status = 404, description = "No such template", body = ErrorBody)))]
pub(crate) async fn dry_run(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<DryRunRequest>,
) -> ApiResult<Json<DryRunDto>> {
    if let Some(reference) = &request.template_ref {
        crate::params::check_length("templateRef", reference, MAX_TEMPLATE_REF)?;
    }
    if matches!(&request.template, Some(t) if !t.is_object()) {
        return Err(ApiError::bad_request("`template` must be a Template entity (an object)"));
    }
    let run = DryRun {
        template: request.template,
        template_ref: request.template_ref,
        values: request.values,
        secrets: request.secrets,
        directory_contents: request.directory_contents.into_iter().map(Into::into).collect(),
    };
    Ok(Json(app.platform.golden_paths().dry_run(&caller, run).await?.into()))
}
