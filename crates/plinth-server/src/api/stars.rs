//! `/api/stars`: the signed-in user's starred entities (list, star,
//! unstar). Stars are per user: a caller that is not a signed-in user gets
//! 401. Starring checks the caller may read the entity and is audited.

use crate::api::rfc3339;
use crate::error::{ApiResult, ErrorBody};
use crate::params::check_length;
use crate::AppState;
use axum::extract::{Path, State};
use axum::routing::{get, put};
use axum::{Extension, Json, Router};
use plinth_app::Caller;
use plinth_model::EntityRef;
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/stars", get(list_stars))
        .route("/api/stars/{kind}/{namespace}/{name}", put(star).delete(unstar))
}

/// One starred entity.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StarDto {
    /// The entity's reference, lower case (`component:default/checkout`).
    entity_ref: String,
    /// When it was starred (RFC 3339).
    starred_at: String,
    /// The catalogue still has the entity.
    present: bool,
}

/// The caller's stars, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StarsDto {
    items: Vec<StarDto>,
}

/// The state of one star after a change.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StarStateDto {
    /// The entity's reference, lower case.
    entity_ref: String,
    /// Whether the caller now stars it.
    starred: bool,
    /// Whether this request changed it (`false`: it already was so).
    changed: bool,
}

fn entity(kind: &str, namespace: &str, name: &str) -> ApiResult<EntityRef> {
    check_length("kind", kind, 63)?;
    check_length("namespace", namespace, 253)?;
    check_length("name", name, 253)?;
    Ok(EntityRef::new(kind, namespace, name))
}

/// `GET /api/stars`: the caller's starred entities.
#[utoipa::path(get, path = "/api/stars", tag = "plinth",
    responses((status = 200, description = "The caller's stars, newest first", body = StarsDto)))]
pub(crate) async fn list_stars(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<StarsDto>> {
    let stars = app.platform.stars().list(&caller).await?;
    let items = stars
        .into_iter()
        .map(|s| StarDto { entity_ref: s.entity_ref, starred_at: rfc3339(s.starred_at), present: s.present })
        .collect();
    Ok(Json(StarsDto { items }))
}

/// `PUT /api/stars/{kind}/{namespace}/{name}`: stars an entity.
#[utoipa::path(put, path = "/api/stars/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity is starred", body = StarStateDto),
              (status = 404, description = "No such entity", body = ErrorBody),
              (status = 409, description = "The caller has the most stars allowed", body = ErrorBody)))]
pub(crate) async fn star(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<StarStateDto>> {
    let entity = entity(&kind, &namespace, &name)?;
    let changed = app.platform.stars().star(&caller, &entity).await?;
    Ok(Json(StarStateDto { entity_ref: entity.key(), starred: true, changed }))
}

/// `DELETE /api/stars/{kind}/{namespace}/{name}`: removes a star.
#[utoipa::path(delete, path = "/api/stars/{kind}/{namespace}/{name}", tag = "plinth",
    params(("kind" = String, Path), ("namespace" = String, Path), ("name" = String, Path)),
    responses((status = 200, description = "The entity is not starred (any more)", body = StarStateDto)))]
pub(crate) async fn unstar(
    State(app): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((kind, namespace, name)): Path<(String, String, String)>,
) -> ApiResult<Json<StarStateDto>> {
    let entity = entity(&kind, &namespace, &name)?;
    let changed = app.platform.stars().unstar(&caller, &entity).await?;
    Ok(Json(StarStateDto { entity_ref: entity.key(), starred: false, changed }))
}
