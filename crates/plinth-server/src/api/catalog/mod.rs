//! `/api/catalog`: Backstage's catalog API and Plinth's additions.

mod backstage;
pub(crate) mod dto;
mod fields;
mod plinth;

use crate::AppState;
use axum::routing::{get, post};
use axum::Router;

pub(crate) use backstage::{
    add_location, delete_entity_by_uid, delete_location, entities_by_refs, entity_by_name, entity_by_uid,
    entity_facets, get_location, list_entities, list_locations, location_by_entity, query_entities, ref_from_path,
    refresh, validate_entity,
};
pub(crate) use plinth::{errors, impact, neighbourhood, search, webhook};

// The OpenAPI document names the handlers' generated path items.
pub(crate) use backstage::{
    __path_add_location, __path_delete_entity_by_uid, __path_delete_location, __path_entities_by_refs,
    __path_entity_by_name, __path_entity_by_uid, __path_entity_facets, __path_get_location, __path_list_entities,
    __path_list_locations, __path_location_by_entity, __path_query_entities, __path_refresh, __path_validate_entity,
};
pub(crate) use plinth::{__path_errors, __path_impact, __path_neighbourhood, __path_search, __path_webhook};

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/entities", get(list_entities))
        .route("/entities/by-query", get(query_entities))
        .route("/entities/by-name/{kind}/{namespace}/{name}", get(entity_by_name))
        .route("/entities/by-uid/{uid}", get(entity_by_uid).delete(delete_entity_by_uid))
        .route("/entities/by-refs", post(entities_by_refs))
        .route("/entity-facets", get(entity_facets))
        .route("/locations", get(list_locations).post(add_location))
        .route("/locations/{id}", get(get_location).delete(delete_location))
        .route("/locations/by-entity/{kind}/{namespace}/{name}", get(location_by_entity))
        .route("/refresh", post(refresh))
        .route("/validate-entity", post(validate_entity))
        .route("/impact/{kind}/{namespace}/{name}", get(impact))
        .route("/neighbourhood/{kind}/{namespace}/{name}", get(neighbourhood))
        .route("/search", get(search))
        .route("/errors", get(errors))
        .route("/webhook", post(webhook))
}
