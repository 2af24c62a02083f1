//! Backstage's catalog REST API under `/api/catalog`, with Backstage's
//! request and response shapes and filter semantics, so Backstage's own
//! catalog client works unchanged.

use crate::error::{ApiError, ApiResult};
use crate::fields::FieldSet;
use crate::params::Params;
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine;
use plinth_catalog::{normalize_location, CatalogState, EntityFilter, EntityRecord, NodeId};
use plinth_model::{parse_ref_lenient, process_entity, EntityRef, Origin};
use plinth_store::{LocationRow, NewLocation};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const DEFAULT_PAGE: usize = 20;
pub const MAX_PAGE: usize = 10_000;
/// Most entities one `GET /entities` may ask for (the whole catalogue at
/// the 1M-entity goal); it never sizes an allocation beyond the matches.
pub const MAX_LIST: usize = 1_000_000;
/// Largest `offset` anywhere in the catalogue API.
pub const MAX_OFFSET: usize = 10_000_000;

/// JSON text, answered as `application/json` without re-parsing.
pub struct RawJson(pub String);

impl IntoResponse for RawJson {
    fn into_response(self) -> axum::response::Response {
        ([(axum::http::header::CONTENT_TYPE, "application/json")], self.0).into_response()
    }
}

/// One entity as JSON text: the fast path renders straight from the stored
/// body; a `fields` projection goes through a JSON tree.
pub(crate) fn entity_text(state: &CatalogState, record: &EntityRecord, fields: Option<&FieldSet>) -> String {
    match fields {
        Some(fields) => fields.apply(state.render(record)).to_string(),
        None => state.render_json(record),
    }
}

fn join_array(items: impl Iterator<Item = String>) -> String {
    let mut out = String::from("[");
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&item);
    }
    out.push(']');
    out
}

pub(crate) fn entity_json(state: &CatalogState, record: &EntityRecord, fields: Option<&FieldSet>) -> Value {
    let value = state.render(record);
    match fields {
        Some(fields) => fields.apply(value),
        None => value,
    }
}

fn filter_of(params: &Params) -> ApiResult<EntityFilter> {
    EntityFilter::parse(&params.all("filter")).map_err(ApiError::bad_request)
}

/// `GET /api/catalog/entities`: a plain array, with `filter`, `fields`,
/// `limit`, `offset` and `order` (`asc:metadata.name`).
#[utoipa::path(get, path = "/api/catalog/entities", tag = "catalog",
    params(("filter" = Option<Vec<String>>, Query, description = "Backstage filter, e.g. `kind=component,spec.type=service`; repeat for OR"),
           ("fields" = Option<Vec<String>>, Query, description = "Dotted paths to keep, comma-separated"),
           ("limit" = Option<usize>, Query, minimum = 0, maximum = 1_000_000, description = "Most entities returned (default all, at most 1,000,000)"),
           ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000_000),
           ("order" = Option<String>, Query, description = "`asc:FIELD` or `desc:FIELD`")),
    responses((status = 200, description = "Entities", body = Vec<serde_json::Value>)))]
pub async fn list_entities(State(app): State<AppState>, params: Params) -> ApiResult<RawJson> {
    let filter = filter_of(&params)?;
    let fields = FieldSet::parse(&params.all("fields"));
    let limit = params.int_or("limit", 0..=MAX_LIST, MAX_LIST)?;
    let offset = params.int_or("offset", 0..=MAX_OFFSET, 0)?;
    let order = match params.one("order") {
        Some(raw) => Some(parse_order(raw, ':', true)?),
        None => None,
    };
    let state = app.catalog.read();
    let matched = state.filters().matching(&filter, state.live());
    let order_ref = order.as_ref().map(|(k, d)| (k.as_str(), *d));
    let page = state.ordered_page(&matched, order_ref, offset, limit);
    Ok(RawJson(render_nodes(&state, &page, fields.as_ref())))
}

fn render_nodes(state: &CatalogState, nodes: &[NodeId], fields: Option<&FieldSet>) -> String {
    join_array(nodes.iter().filter_map(|n| state.entity(*n)).map(|r| entity_text(state, r, fields)))
}

/// `asc:metadata.name` (GET /entities) or `metadata.name,desc` (by-query).
fn parse_order(raw: &str, separator: char, direction_first: bool) -> ApiResult<(String, bool)> {
    let (a, b) = raw.split_once(separator).unwrap_or(if direction_first { ("asc", raw) } else { (raw, "asc") });
    let (direction, field) = if direction_first { (a, b) } else { (b, a) };
    let descending = match direction.trim().to_lowercase().as_str() {
        "asc" => false,
        "desc" => true,
        other => return Err(ApiError::bad_request(format!("order direction must be `asc` or `desc`, not `{other}`"))),
    };
    let field = field.trim().to_lowercase();
    if field.is_empty() {
        return Err(ApiError::bad_request("order needs a field, e.g. `metadata.name,asc`"));
    }
    Ok((field, descending))
}

/// The opaque by-query cursor: the query it belongs to and where it is.
#[derive(Debug, Serialize, Deserialize)]
struct Cursor {
    #[serde(rename = "f", default)]
    filters: Vec<String>,
    #[serde(rename = "o", default)]
    order: Vec<String>,
    #[serde(rename = "q", default)]
    text: Option<String>,
    #[serde(rename = "qf", default)]
    text_fields: Vec<String>,
    #[serde(rename = "n")]
    offset: usize,
}

impl Cursor {
    fn encode(&self) -> String {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(self).unwrap_or_default())
    }
    fn decode(raw: &str) -> ApiResult<Cursor> {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(raw.trim_end_matches('='))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .ok_or_else(|| {
                ApiError::bad_request(
                    "malformed cursor; pass back the nextCursor or prevCursor of a previous response unchanged",
                )
            })
    }
}

/// `GET /api/catalog/entities/by-query`: `{items, totalItems, pageInfo}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-query", tag = "catalog",
    params(("filter" = Option<Vec<String>>, Query), ("fields" = Option<Vec<String>>, Query),
           ("orderField" = Option<Vec<String>>, Query, description = "`FIELD,asc|desc`; the first decides the order"),
           ("fullTextFilterTerm" = Option<String>, Query), ("fullTextFilterFields" = Option<Vec<String>>, Query),
           ("limit" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Page size (default 20)"),
           ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000_000), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "A page of entities", body = serde_json::Value)))]
pub async fn query_entities(State(app): State<AppState>, params: Params) -> ApiResult<RawJson> {
    let fields = FieldSet::parse(&params.all("fields"));
    let limit = params.int_or("limit", 0..=MAX_PAGE, DEFAULT_PAGE)?;
    let cursor = match params.one("cursor") {
        Some(raw) if !raw.is_empty() => Some(Cursor::decode(raw)?),
        _ => None,
    };
    let cursor = match cursor {
        Some(cursor) => cursor,
        None => Cursor {
            filters: params.all("filter"),
            order: params.all("orderField"),
            text: params.one("fullTextFilterTerm").map(str::to_string).filter(|t| !t.trim().is_empty()),
            text_fields: params
                .all("fullTextFilterFields")
                .iter()
                .flat_map(|f| f.split(','))
                .map(|f| f.trim().to_lowercase())
                .filter(|f| !f.is_empty())
                .collect(),
            offset: params.int_or("offset", 0..=MAX_OFFSET, 0)?,
        },
    };
    if cursor.offset > MAX_OFFSET {
        return Err(ApiError::bad_request(
            "malformed cursor; pass back the nextCursor or prevCursor of a previous response unchanged",
        ));
    }
    let filter = EntityFilter::parse(&cursor.filters).map_err(ApiError::bad_request)?;
    let order = match cursor.order.first() {
        Some(raw) => Some(parse_order(raw, ',', false)?),
        None => None,
    };
    let state = app.catalog.read();
    let mut matched = state.filters().matching(&filter, state.live());
    if let Some(term) = &cursor.text {
        let fields = if cursor.text_fields.is_empty() {
            vec!["metadata.name".to_string(), "metadata.title".to_string(), "spec.profile.displayname".to_string()]
        } else {
            cursor.text_fields.clone()
        };
        matched = state.substring_matches(term.trim(), &fields, &matched);
    }
    let total = matched.len() as usize;
    let order_ref = order.as_ref().map(|(k, d)| (k.as_str(), *d));
    let page = state.ordered_page(&matched, order_ref, cursor.offset, limit);
    let items = render_nodes(&state, &page, fields.as_ref());
    let mut page_info = serde_json::Map::new();
    if cursor.offset + page.len() < total {
        let next = Cursor { offset: cursor.offset + page.len(), ..clone_cursor(&cursor) };
        page_info.insert("nextCursor".into(), Value::String(next.encode()));
    }
    if cursor.offset > 0 {
        let prev = Cursor { offset: cursor.offset.saturating_sub(limit), ..clone_cursor(&cursor) };
        page_info.insert("prevCursor".into(), Value::String(prev.encode()));
    }
    Ok(RawJson(format!("{{\"items\":{items},\"totalItems\":{total},\"pageInfo\":{}}}", Value::Object(page_info))))
}

fn clone_cursor(c: &Cursor) -> Cursor {
    Cursor {
        filters: c.filters.clone(),
        order: c.order.clone(),
        text: c.text.clone(),
        text_fields: c.text_fields.clone(),
        offset: c.offset,
    }
}

pub(crate) fn ref_from_path(kind: &str, namespace: &str, name: &str) -> EntityRef {
    EntityRef::new(kind, namespace, name)
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}", tag = "catalog",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity", body = serde_json::Value), (status = 404, description = "No such entity")))]
pub async fn entity_by_name(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<RawJson> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let state = app.catalog.read();
    let record = state.get(&entity_ref.key()).ok_or_else(|| not_found(&entity_ref))?;
    let rendered = state.render_json(record);
    match app.config.signals.as_ref().and_then(|signals| signals.alerts.level_of(&entity_ref.key())) {
        Some((health, firing)) => Ok(RawJson(with_health(rendered, &health, &firing))),
        None => Ok(RawJson(rendered)),
    }
}

/// Adds the entity's health (set by alert rules) as a Backstage status
/// item, the place Backstage keeps live, non-spec state.
fn with_health(rendered: String, health: &str, firing: &[String]) -> String {
    let Ok(serde_json::Value::Object(mut entity)) = serde_json::from_str::<serde_json::Value>(&rendered) else {
        return rendered;
    };
    let level = match health {
        "unhealthy" => "error",
        "degraded" => "warning",
        _ => "info",
    };
    let message = if firing.is_empty() {
        format!("{health}: no alert rule is firing")
    } else {
        format!("{health}: firing {}", firing.join(", "))
    };
    let item = serde_json::json!({ "type": "plinth.dev/health", "level": level, "health": health, "message": message });
    let status = entity.entry("status").or_insert_with(|| serde_json::json!({}));
    if let Some(items) = status.as_object_mut().map(|s| s.entry("items").or_insert_with(|| serde_json::json!([]))) {
        if let Some(list) = items.as_array_mut() {
            list.push(item);
        }
    }
    serde_json::to_string(&entity).unwrap_or(rendered)
}

pub(crate) fn not_found(entity_ref: &EntityRef) -> ApiError {
    ApiError::not_found(format!("No entity named '{entity_ref}' found"))
}

/// `GET /api/catalog/entities/by-uid/{uid}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 200, description = "The entity", body = serde_json::Value), (status = 404, description = "No such entity")))]
pub async fn entity_by_uid(State(app): State<AppState>, Path(uid): Path<String>) -> ApiResult<RawJson> {
    let state = app.catalog.read();
    let record = state.get_by_uid(&uid).ok_or_else(|| ApiError::not_found(format!("No entity with uid {uid}")))?;
    Ok(RawJson(state.render_json(record)))
}

/// `DELETE /api/catalog/entities/by-uid/{uid}`: removes the entity until
/// its source declares it again.
#[utoipa::path(delete, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such entity")))]
pub async fn delete_entity_by_uid(State(app): State<AppState>, Path(uid): Path<String>) -> ApiResult<StatusCode> {
    if app.catalog.delete_entity_by_uid(&uid).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("No entity with uid {uid}")))
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ByRefsRequest {
    entity_refs: Vec<String>,
    #[serde(default)]
    fields: Option<Vec<String>>,
}

/// `POST /api/catalog/entities/by-refs`: `{items}` in request order, `null`
/// for refs that do not exist.
#[utoipa::path(post, path = "/api/catalog/entities/by-refs", tag = "catalog", request_body = ByRefsRequest,
    responses((status = 200, description = "`{items}`, one per ref, null when missing", body = serde_json::Value)))]
pub async fn entities_by_refs(
    State(app): State<AppState>,
    params: Params,
    Json(request): Json<ByRefsRequest>,
) -> ApiResult<Json<Value>> {
    let mut field_params = params.all("fields");
    field_params.extend(request.fields.unwrap_or_default());
    let fields = FieldSet::parse(&field_params);
    if request.entity_refs.len() > MAX_PAGE {
        return Err(ApiError::bad_request(format!("at most {MAX_PAGE} refs per request")));
    }
    let state = app.catalog.read();
    let mut items = Vec::with_capacity(request.entity_refs.len());
    for raw in &request.entity_refs {
        let entity_ref = parse_ref_lenient(raw, None).map_err(|e| ApiError::bad_request(format!("entityRefs: {e}")))?;
        items
            .push(state.get(&entity_ref.key()).map(|r| entity_json(&state, r, fields.as_ref())).unwrap_or(Value::Null));
    }
    Ok(Json(json!({"items": items})))
}

/// `GET /api/catalog/entity-facets?facet=kind&facet=spec.type&filter=…`.
#[utoipa::path(get, path = "/api/catalog/entity-facets", tag = "catalog",
    params(("facet" = Vec<String>, Query, description = "Dotted keys to count"), ("filter" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "`{facets: {key: [{value, count}]}}`", body = serde_json::Value)))]
pub async fn entity_facets(State(app): State<AppState>, params: Params) -> ApiResult<Json<Value>> {
    let facets = params.all("facet");
    if facets.is_empty() {
        return Err(ApiError::bad_request("give at least one `facet` parameter, e.g. `facet=kind`"));
    }
    let filter = filter_of(&params)?;
    let state = app.catalog.read();
    let unfiltered = filter.is_empty();
    let matched = if unfiltered { state.live().clone() } else { state.filters().matching(&filter, state.live()) };
    let mut out = serde_json::Map::new();
    for facet in facets {
        let counts: Vec<Value> = state
            .facet(&facet, &matched)
            .into_iter()
            .map(|(value, count)| json!({"value": value, "count": count}))
            .collect();
        out.insert(facet, Value::Array(counts));
    }
    Ok(Json(json!({"facets": out})))
}

pub(crate) fn location_json(location: &LocationRow) -> Value {
    let kind = if location.kind == "git" { "url" } else { location.kind.as_str() };
    let mut value = json!({"id": location.id, "type": kind, "target": location.target, "status": location.status});
    if location.kind == "git" {
        value["plinthType"] = json!("git");
    }
    if let Some(branch) = &location.branch {
        value["branch"] = json!(branch);
    }
    value
}

/// `GET /api/catalog/locations`: `[{data: location}]`.
#[utoipa::path(get, path = "/api/catalog/locations", tag = "catalog",
    responses((status = 200, description = "Registered locations", body = Vec<serde_json::Value>)))]
pub async fn list_locations(State(app): State<AppState>) -> ApiResult<Json<Vec<Value>>> {
    let locations = app.catalog.locations().await?;
    Ok(Json(locations.iter().map(|l| json!({"data": location_json(l)})).collect()))
}

#[utoipa::path(get, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, description = "The location", body = serde_json::Value), (status = 404, description = "No such location")))]
pub async fn get_location(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    let location = app.catalog.store().get_location(&id).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let location = location.ok_or_else(|| ApiError::not_found(format!("No location with id {id}")))?;
    Ok(Json(location_json(&location)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct AddLocationRequest {
    /// `file` (a file or directory), `url` (a git repository or a file in
    /// one, e.g. `https://host/org/repo/blob/main/catalog-info.yaml`), or
    /// `git`.
    #[serde(rename = "type", default)]
    kind: Option<String>,
    target: String,
    /// Branch of a git repository (default: its default branch).
    #[serde(default)]
    branch: Option<String>,
}

/// Caps the entities echoed back by `POST /locations`: registering a huge
/// tree should not answer with a huge body.
const MAX_ECHOED_ENTITIES: usize = 1_000;

/// `POST /api/catalog/locations[?dryRun=true]`: registers a location and
/// ingests it; `{location, entities, exists}`.
#[utoipa::path(post, path = "/api/catalog/locations", tag = "catalog", request_body = AddLocationRequest,
    params(("dryRun" = Option<bool>, Query)),
    responses((status = 201, description = "Registered and ingested (or, with dryRun, what would be)", body = serde_json::Value),
               (status = 409, description = "Already registered"),
               (status = 400, description = "Bad target")))]
pub async fn add_location(
    State(app): State<AppState>,
    params: Params,
    Json(request): Json<AddLocationRequest>,
) -> ApiResult<impl IntoResponse> {
    let location =
        NewLocation { kind: request.kind.unwrap_or_default(), target: request.target, branch: request.branch };
    let normalized = normalize_location(location.clone())?;
    let existing = app
        .catalog
        .locations()
        .await?
        .into_iter()
        .find(|l| l.kind == normalized.kind && l.target == normalized.target && l.branch == normalized.branch);
    if params.one("dryRun").is_some_and(|v| v == "true") {
        let read = app.catalog.preview_location(location).await?;
        let entities: Vec<Value> = read
            .entities
            .iter()
            .take(MAX_ECHOED_ENTITIES)
            .filter_map(|f| serde_json::from_str(&f.entity.body).ok())
            .collect();
        let body = json!({
            "location": {"id": "dry-run", "type": normalized.kind, "target": normalized.target},
            "entities": entities,
            "errors": read.diagnostics,
            "exists": existing.is_some(),
        });
        return Ok((StatusCode::CREATED, Json(body)));
    }
    // As Backstage: registering a location twice is a conflict.
    if let Some(existing) = existing {
        return Err(ApiError::conflict(format!(
            "Location {}:{} already exists (id {}); refresh it with POST /api/catalog/refresh or remove it first",
            existing.kind, existing.target, existing.id
        )));
    }
    let (row, created, report) = app.catalog.add_location(location).await?;
    let state = app.catalog.read();
    let entities: Vec<Value> = state
        .entities()
        .filter(|r| *r.location_id == *row.id)
        .take(MAX_ECHOED_ENTITIES)
        .map(|r| entity_json(&state, r, None))
        .collect();
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok((
        status,
        Json(json!({"location": location_json(&row), "entities": entities, "exists": !created, "refresh": report})),
    ))
}

/// `DELETE /api/catalog/locations/{id}`: unregisters it and removes the
/// entities it manages.
#[utoipa::path(delete, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such location")))]
pub async fn delete_location(State(app): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    if app.catalog.delete_location(&id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("No location with id {id}")))
    }
}

/// `GET /api/catalog/locations/by-entity/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/locations/by-entity/{kind}/{namespace}/{name}", tag = "catalog",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The location that manages the entity", body = serde_json::Value)))]
pub async fn location_by_entity(
    State(app): State<AppState>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Value>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let location_id = {
        let state = app.catalog.read();
        state.get(&entity_ref.key()).map(|r| r.location_id.to_string()).ok_or_else(|| not_found(&entity_ref))?
    };
    let location =
        app.catalog.store().get_location(&location_id).await.map_err(|e| ApiError::internal(e.to_string()))?;
    let location = location.ok_or_else(|| ApiError::not_found(format!("No location manages {entity_ref}")))?;
    Ok(Json(location_json(&location)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RefreshRequest {
    entity_ref: String,
}

/// `POST /api/catalog/refresh {"entityRef"}`: re-reads the entity's source
/// now; returns when the change is visible.
#[utoipa::path(post, path = "/api/catalog/refresh", tag = "catalog", request_body = RefreshRequest,
    responses((status = 200, description = "Refreshed; the report of what changed", body = serde_json::Value), (status = 404, description = "No such entity")))]
pub async fn refresh(State(app): State<AppState>, Json(request): Json<RefreshRequest>) -> ApiResult<Json<Value>> {
    let entity_ref = parse_ref_lenient(&request.entity_ref, Some("component"))
        .map_err(|e| ApiError::bad_request(format!("entityRef: {e}")))?;
    match app.catalog.refresh_entity(&entity_ref.key()).await? {
        Some(report) => Ok(Json(json!(report))),
        None => Err(not_found(&entity_ref)),
    }
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ValidateRequest {
    entity: Value,
    /// Where it would come from, e.g. `url:https://…/catalog-info.yaml`.
    #[serde(default)]
    location: Option<String>,
}

/// `POST /api/catalog/validate-entity`: 200 when valid, 400 with
/// `{errors: [{name, message}]}` otherwise.
#[utoipa::path(post, path = "/api/catalog/validate-entity", tag = "catalog", request_body = ValidateRequest,
    responses((status = 200, description = "Valid"), (status = 400, description = "Invalid, with every problem", body = serde_json::Value)))]
pub async fn validate_entity(Json(request): Json<ValidateRequest>) -> impl IntoResponse {
    let location = request.location.unwrap_or_else(|| "validate-entity".to_string());
    let origin = Origin { managed_by: location.clone(), origin: location };
    match process_entity(request.entity, &origin) {
        Ok(_) => (StatusCode::OK, Json(json!({}))),
        Err(issues) => {
            let errors: Vec<Value> = issues
                .iter()
                .map(|i| {
                    let message =
                        if i.field.is_empty() { i.message.clone() } else { format!("{}: {}", i.field, i.message) };
                    json!({"name": "InputError", "message": message, "field": i.field})
                })
                .collect();
            (StatusCode::BAD_REQUEST, Json(json!({"errors": errors})))
        }
    }
}
