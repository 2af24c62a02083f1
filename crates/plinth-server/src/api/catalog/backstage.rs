//! Backstage's catalog REST API under `/api/catalog`, with Backstage's
//! request and response shapes and filter semantics, so Backstage's own
//! catalog client works unchanged.

use super::dto::{
    AddLocationRequest, ByRefsRequest, ByRefsResponse, DiagnosticDto, EntitiesPage, Entity, FacetCount, FacetsResponse,
    Location, LocationItem, LocationRegistered, RefreshReportDto, RefreshRequest, RegisteredLocation, Valid,
    ValidateEntityFailure, ValidateRequest, ValidationError, ValidationErrors,
};
use super::fields::FieldSet;
use crate::api::JsonBody;
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::params::{ApiParams, Params};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use plinth_app::catalog::{entity_not_found, CatalogView, MAX_REFS};
use plinth_app::catalog::{CatalogState, EntityFilter, EntityRecord, NodeId};
use plinth_app::{Caller, ErrorKind};
use plinth_model::EntityRef;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub(super) const DEFAULT_PAGE: usize = 20;
pub(super) const MAX_PAGE: usize = 10_000;
/// Most entities one `GET /entities` may ask for (the whole catalogue at
/// the 1M-entity goal); it never sizes an allocation beyond the matches.
pub(super) const MAX_LIST: usize = 1_000_000;
/// Largest `offset` anywhere in the catalogue API.
pub(super) const MAX_OFFSET: usize = 10_000_000;

/// JSON text, answered as `application/json` without re-parsing.
pub(crate) struct RawJson(pub String);

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
           ("order" = Option<String>, Query, pattern = r"^(?:\s*(?:[Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])\s*:[\s\S]*\S[\s\S]*|[^:]*[^\s:][^:]*)$",
            description = "`asc:FIELD`, `desc:FIELD` or `FIELD` (ascending)")),
    responses((status = 200, description = "Entities", body = Vec<Entity>),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn list_entities(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<RawJson> {
    let filter = filter_of(&params)?;
    let fields = FieldSet::parse(&params.all("fields"));
    let limit = params.int_or("limit", 0..=MAX_LIST, MAX_LIST)?;
    let offset = params.int_or("offset", 0..=MAX_OFFSET, 0)?;
    let order = match params.typed("order") {
        Some(raw) => Some(parse_order(raw, ':', true)?),
        None => None,
    };
    let state = app.platform.catalog().view(&caller)?;
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
        other => {
            return Err(ApiError::bad_request(format!(
                "order direction must be `asc` or `desc`, not `{}`",
                crate::params::shorten(other)
            )))
        }
    };
    let field = field.trim().to_lowercase();
    if field.is_empty() {
        return Err(ApiError::bad_request("order needs a field, e.g. `metadata.name,asc`"));
    }
    Ok((field, descending))
}

/// The opaque by-query cursor: the query it belongs to and where it is.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
            .and_then(|bytes| serde_json::from_slice::<Cursor>(&bytes).ok())
            .filter(|cursor| cursor.offset <= MAX_OFFSET)
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
           ("orderField" = Option<Vec<String>>, Query, pattern = r"^[^,]*[^\s,][^,]*(?:,\s*(?:[Aa][Ss][Cc]|[Dd][Ee][Ss][Cc])\s*)?$",
            description = "`FIELD,asc|desc` (`FIELD` alone is ascending); the first decides the order"),
           ("fullTextFilterTerm" = Option<String>, Query), ("fullTextFilterFields" = Option<Vec<String>>, Query),
           ("limit" = Option<usize>, Query, minimum = 0, maximum = 10_000, description = "Page size (default 20)"),
           ("offset" = Option<usize>, Query, minimum = 0, maximum = 10_000_000),
           ("cursor" = Option<String>, Query, pattern = "^[A-Za-z0-9_-]+=*$", description = "The `nextCursor` or `prevCursor` of a previous page, unchanged; it carries the query, so the other parameters are ignored")),
    responses((status = 200, description = "A page of entities", body = EntitiesPage),
              (status = 400, description = "A parameter is invalid", body = ErrorBody)))]
pub(crate) async fn query_entities(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<RawJson> {
    let fields = FieldSet::parse(&params.all("fields"));
    let limit = params.int_or("limit", 0..=MAX_PAGE, DEFAULT_PAGE)?;
    let cursor = match params.typed("cursor") {
        Some(raw) => Cursor::decode(raw)?,
        None => Cursor {
            filters: params.all("filter"),
            order: params.typed_all("orderField"),
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
    let filter = EntityFilter::parse(&cursor.filters).map_err(ApiError::bad_request)?;
    let orders = cursor.order.iter().map(|raw| parse_order(raw, ',', false)).collect::<ApiResult<Vec<_>>>()?;
    let order = orders.into_iter().next();
    let state = app.platform.catalog().view(&caller)?;
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
        let next = Cursor { offset: cursor.offset + page.len(), ..cursor.clone() };
        page_info.insert("nextCursor".into(), Value::String(next.encode()));
    }
    if cursor.offset > 0 {
        let prev = Cursor { offset: cursor.offset.saturating_sub(limit), ..cursor.clone() };
        page_info.insert("prevCursor".into(), Value::String(prev.encode()));
    }
    Ok(RawJson(format!("{{\"items\":{items},\"totalItems\":{total},\"pageInfo\":{}}}", Value::Object(page_info))))
}

pub(crate) fn ref_from_path(kind: &str, namespace: &str, name: &str) -> EntityRef {
    EntityRef::new(kind, namespace, name)
}

/// `GET /api/catalog/entities/by-name/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-name/{kind}/{namespace}/{name}", tag = "catalog",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity", body = Entity), (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn entity_by_name(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<RawJson> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    let rendered = {
        let state = app.platform.catalog().view(&caller)?;
        let record = state.get(&entity_ref.key()).ok_or_else(|| ApiError::from(entity_not_found(&entity_ref)))?;
        state.render_json(record)
    };
    match app.platform.signals().health_level(&entity_ref.key()) {
        Some((health, firing)) => Ok(RawJson(with_health(rendered, &health, &firing))),
        None => Ok(RawJson(rendered)),
    }
}

/// Adds the entity's health (set by alert rules) as a Backstage status
/// item, the place Backstage keeps live, non-spec state.
fn with_health(rendered: String, health: &str, firing: &[String]) -> String {
    let Ok(Value::Object(mut entity)) = serde_json::from_str::<Value>(&rendered) else {
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

/// `GET /api/catalog/entities/by-uid/{uid}`.
#[utoipa::path(get, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 200, description = "The entity", body = Entity), (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn entity_by_uid(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> ApiResult<RawJson> {
    let state = app.platform.catalog().view(&caller)?;
    let record = state
        .get_by_uid(&uid)
        .ok_or_else(|| ApiError::not_found(format!("No entity with uid {}", crate::params::shorten(&uid))))?;
    Ok(RawJson(state.render_json(record)))
}

/// `DELETE /api/catalog/entities/by-uid/{uid}`: removes the entity until
/// its source declares it again.
#[utoipa::path(delete, path = "/api/catalog/entities/by-uid/{uid}", tag = "catalog", params(("uid" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn delete_entity_by_uid(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(uid): Path<String>,
) -> ApiResult<StatusCode> {
    app.platform.catalog().delete_entity(&caller, &uid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /api/catalog/entities/by-refs`: `{items}` in request order, `null`
/// for refs that do not exist.
#[utoipa::path(post, path = "/api/catalog/entities/by-refs", tag = "catalog", request_body = ByRefsRequest,
    params(("fields" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "One item per ref, null when missing", body = ByRefsResponse),
              (status = 400, description = "A ref is malformed, or more than 10,000", body = ErrorBody)))]
pub(crate) async fn entities_by_refs(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
    JsonBody(request): JsonBody<ByRefsRequest>,
) -> ApiResult<RawJson> {
    let mut field_params = params.all("fields");
    field_params.extend(request.fields.unwrap_or_default());
    let fields = FieldSet::parse(&field_params);
    if request.entity_refs.len() > MAX_REFS {
        return Err(ApiError::bad_request(format!("at most {MAX_REFS} refs per request")));
    }
    let state: CatalogView<'_> = app.platform.catalog().view(&caller)?;
    let mut items = Vec::with_capacity(request.entity_refs.len());
    for raw in &request.entity_refs {
        let entity_ref = crate::params::entity_ref(raw, None, "entityRefs")?;
        items.push(match state.get(&entity_ref.key()) {
            Some(record) => entity_text(&state, record, fields.as_ref()),
            None => "null".to_string(),
        });
    }
    Ok(RawJson(format!("{{\"items\":{}}}", join_array(items.into_iter()))))
}

/// `GET /api/catalog/entity-facets?facet=kind&facet=spec.type&filter=…`.
#[utoipa::path(get, path = "/api/catalog/entity-facets", tag = "catalog",
    params(("facet" = Vec<String>, Query, min_items = 1, min_length = 1, description = "Dotted keys to count; at least one"), ("filter" = Option<Vec<String>>, Query)),
    responses((status = 200, description = "Counts per value", body = FacetsResponse),
              (status = 400, description = "No facet, or a bad filter", body = ErrorBody)))]
pub(crate) async fn entity_facets(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
) -> ApiResult<Json<FacetsResponse>> {
    let facets = params.typed_all("facet");
    if facets.is_empty() || facets.iter().any(String::is_empty) {
        return Err(ApiError::bad_request("give at least one `facet` parameter, none empty, e.g. `facet=kind`"));
    }
    let filter = filter_of(&params)?;
    let state = app.platform.catalog().view(&caller)?;
    let matched =
        if filter.is_empty() { state.live().clone() } else { state.filters().matching(&filter, state.live()) };
    let facets = facets
        .into_iter()
        .map(|facet| {
            let counts = state.facet(&facet, &matched).into_iter().map(|(value, count)| FacetCount { value, count });
            (facet, counts.collect())
        })
        .collect();
    Ok(Json(FacetsResponse { facets }))
}

/// `GET /api/catalog/locations`: `[{data: location}]`.
#[utoipa::path(get, path = "/api/catalog/locations", tag = "catalog",
    responses((status = 200, description = "Registered locations", body = Vec<LocationItem>)))]
pub(crate) async fn list_locations(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Vec<LocationItem>>> {
    let locations = app.platform.catalog().locations(&caller).await?;
    Ok(Json(locations.iter().map(|l| LocationItem { data: l.into() }).collect()))
}

#[utoipa::path(get, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 200, description = "The location", body = Location), (status = 404, description = "No such location", body = ErrorBody)))]
pub(crate) async fn get_location(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<Location>> {
    Ok(Json((&app.platform.catalog().location(&caller, &id).await?).into()))
}

/// `POST /api/catalog/locations[?dryRun=true]`: registers a location and
/// ingests it; `{location, entities, exists}`.
#[utoipa::path(post, path = "/api/catalog/locations", tag = "catalog", request_body = AddLocationRequest,
    params(("dryRun" = Option<bool>, Query, description = "Read it and report, writing nothing")),
    responses((status = 201, description = "Registered and ingested (or, with dryRun, what would be)", body = LocationRegistered),
              (status = 200, description = "The same location was already registered: it, as it is", body = LocationRegistered),
              (status = 400, description = "Bad target", body = ErrorBody),
              (status = 409, description = "Already registered", body = ErrorBody)))]
pub(crate) async fn add_location(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiParams(params): ApiParams,
    JsonBody(request): JsonBody<AddLocationRequest>,
) -> ApiResult<Response> {
    let dry_run = match params.typed("dryRun") {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "query parameter `dryRun` is `true` or `false`, not `{}`",
                crate::params::shorten(other)
            )))
        }
    };
    let catalog = app.platform.catalog();
    if dry_run {
        let preview = catalog.preview(&caller, request.into()).await?;
        let body = LocationRegistered {
            location: RegisteredLocation {
                id: "dry-run".into(),
                kind: preview.location.kind.clone(),
                target: preview.location.target.clone(),
                branch: preview.location.branch.clone(),
                plinth_type: None,
                status: None,
            },
            entities: preview.entities,
            exists: preview.exists,
            refresh: None,
            errors: Some(preview.diagnostics.iter().map(DiagnosticDto::from).collect()),
        };
        return Ok((StatusCode::CREATED, Json(body)).into_response());
    }
    let registered = catalog.register(&caller, request.into()).await?;
    let status = if registered.created { StatusCode::CREATED } else { StatusCode::OK };
    let body = LocationRegistered {
        location: Location::from(&registered.location).into(),
        entities: registered.entities,
        exists: !registered.created,
        refresh: Some(RefreshReportDto::from(&registered.report)),
        errors: None,
    };
    Ok((status, Json(body)).into_response())
}

/// `DELETE /api/catalog/locations/{id}`: unregisters it and removes the
/// entities it manages.
#[utoipa::path(delete, path = "/api/catalog/locations/{id}", tag = "catalog", params(("id" = String, Path)),
    responses((status = 204, description = "Deleted"), (status = 404, description = "No such location", body = ErrorBody)))]
pub(crate) async fn delete_location(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    app.platform.catalog().unregister(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /api/catalog/locations/by-entity/{kind}/{namespace}/{name}`.
#[utoipa::path(get, path = "/api/catalog/locations/by-entity/{kind}/{namespace}/{name}", tag = "catalog",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The location that manages the entity", body = Location),
              (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn location_by_entity(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<Location>> {
    let entity_ref = ref_from_path(&kind, &namespace, &name);
    Ok(Json((&app.platform.catalog().location_of(&caller, &entity_ref).await?).into()))
}

/// `POST /api/catalog/refresh {"entityRef"}`: re-reads the entity's source
/// now; returns when the change is visible.
#[utoipa::path(post, path = "/api/catalog/refresh", tag = "catalog", request_body = RefreshRequest,
    responses((status = 200, description = "Refreshed; what changed", body = RefreshReportDto),
              (status = 400, description = "A malformed ref", body = ErrorBody),
              (status = 404, description = "No such entity", body = ErrorBody)))]
pub(crate) async fn refresh(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> ApiResult<Json<RefreshReportDto>> {
    let entity_ref = crate::params::entity_ref(&request.entity_ref, Some("component"), "entityRef")?;
    Ok(Json((&app.platform.catalog().refresh(&caller, &entity_ref).await?).into()))
}

/// `POST /api/catalog/validate-entity`: 200 when valid, 400 with
/// `{errors: [{name, message, field}]}` otherwise.
#[utoipa::path(post, path = "/api/catalog/validate-entity", tag = "catalog", request_body = ValidateRequest,
    responses((status = 200, description = "Valid", body = Valid),
              (status = 400, description = "Invalid, with every problem (or a malformed body)", body = ValidateEntityFailure)))]
pub(crate) async fn validate_entity(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    JsonBody(request): JsonBody<ValidateRequest>,
) -> Response {
    match app.platform.catalog().validate(&caller, request.entity, request.location) {
        Ok(()) => (StatusCode::OK, Json(Valid {})).into_response(),
        Err(error) if error.kind == ErrorKind::InvalidInput => {
            let errors = error
                .fields
                .iter()
                .map(|f| ValidationError {
                    name: "InputError".into(),
                    message: if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) },
                    field: f.field.clone(),
                })
                .collect();
            (StatusCode::BAD_REQUEST, Json(ValidationErrors { errors })).into_response()
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}
