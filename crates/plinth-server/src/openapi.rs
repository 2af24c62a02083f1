//! The OpenAPI document of the JSON API, served at `/api/openapi.json`.

use crate::api::schema::{
    EntityRefText, FullEntityRefText, ImpactDirection, NameOrRefText, OutcomeName, PointName, PromptText, RelationType,
    SeriesGroupBy, SeriesMetric, SignalEntityText, SignalModelText, SignalServiceText, SignalSource, TaskStatusName,
};
use crate::api::{auth, catalog, golden_paths, policy, signals, stars};
use crate::error::ErrorBody;
use utoipa::openapi::path::Operation;
use utoipa::openapi::{RefOr, Response, ResponseBuilder};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "Plinth API", description = "Plinth's API: Backstage-compatible catalogue endpoints under /api/catalog plus impact, neighbourhood, search, errors and webhooks; policy decisions, admission, decision log, waivers and scorecards under /api/policy; golden paths (Backstage scaffolder v2) under /api/scaffolder/v2; OTLP/HTTP at /v1/traces and /v1/metrics, signals under /api/signals, /api/traces and /api/cost. Every error is Backstage's error body (`ErrorBody`)."),
    paths(
        catalog::list_entities, catalog::query_entities, catalog::entity_by_name, catalog::entity_by_uid,
        catalog::delete_entity_by_uid, catalog::entities_by_refs, catalog::entity_facets,
        catalog::list_locations, catalog::get_location, catalog::add_location, catalog::delete_location,
        catalog::location_by_entity, catalog::refresh, catalog::validate_entity,
        catalog::impact, catalog::neighbourhood, catalog::search, catalog::errors, catalog::webhook,
        policy::evaluate, policy::admission, policy::decisions, policy::policies,
        policy::list_waivers, policy::create_waiver, policy::delete_waiver, policy::entity, policy::scorecards, policy::status,
        golden_paths::templates, golden_paths::parameter_schema, golden_paths::actions, golden_paths::create_task,
        golden_paths::list_tasks, golden_paths::task, golden_paths::cancel, golden_paths::events,
        golden_paths::eventstream, golden_paths::dry_run,
        signals::receiver::traces, signals::receiver::metrics, signals::summary, signals::series, signals::trace,
        signals::traces, signals::prompt_versions, signals::retrieval, signals::post_scores, signals::get_scores,
        signals::cost_anomalies, signals::cost_teams, signals::list_rules, signals::put_rule, signals::delete_rule,
        signals::alert_history, signals::evaluate_now, signals::health, signals::entity_health,
        auth::me, auth::create_token, auth::list_tokens, auth::revoke_token, auth::audit,
        stars::list_stars, stars::star, stars::unstar,
    ),
    components(schemas(
        ErrorBody, EntityRefText, FullEntityRefText, ImpactDirection, NameOrRefText, OutcomeName, PointName, PromptText, RelationType,
        SignalEntityText, SignalModelText, SignalServiceText,
        SeriesGroupBy, SeriesMetric, SignalSource, TaskStatusName, catalog::dto::WebhookPayload, catalog::dto::ValidationErrors,
        signals::dto::NewScoreDto
    )),
    modifiers(&CommonResponses),
    tags((name = "catalog", description = "Backstage's catalog API"), (name = "plinth", description = "Plinth's additions"),
         (name = "policy", description = "Policy-as-code: decisions, admission, decision log, waivers, scorecards"),
         (name = "scaffolder", description = "Golden paths: Backstage's scaffolder API (templates, tasks, event stream, dry run, actions)"),
         (name = "auth", description = "Identity: who am I, API tokens, and the audit log"),
         (name = "signals", description = "Observability with AI signals: OTLP/HTTP receiver, summaries, series, traces, prompt versions, retrieval quality, scores, cost and anomalies, alerts and health"))
)]
pub(crate) struct ApiDoc;

/// Answers every operation can give besides its own: 400 when a parameter
/// or the body is malformed, 415 when a body is not JSON, 503 while a
/// capability is not enabled, 500 when the store fails.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| -> RefOr<Response> {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .into()
        };
        // A bearer token (an API token); a local-mode server also answers
        // without one, which the empty requirement states.
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            utoipa::openapi::security::SecurityScheme::Http(utoipa::openapi::security::Http::new(
                utoipa::openapi::security::HttpAuthScheme::Bearer,
            )),
        );
        openapi.security = Some(vec![
            utoipa::openapi::security::SecurityRequirement::new("bearer", Vec::<String>::new()),
            utoipa::openapi::security::SecurityRequirement::default(),
        ]);
        for item in openapi.paths.paths.values_mut() {
            let operations: [&mut Option<Operation>; 4] =
                [&mut item.get, &mut item.post, &mut item.put, &mut item.delete];
            for operation in operations.into_iter().flatten() {
                let otlp = operation.tags.as_ref().is_some_and(|t| t.iter().any(|t| t == "signals"))
                    && operation.operation_id.as_deref().is_some_and(|id| id == "traces" || id == "metrics")
                    && operation.request_body.is_some();
                if otlp {
                    continue;
                }
                let responses = &mut operation.responses.responses;
                let has_input =
                    operation.request_body.is_some() || operation.parameters.as_ref().is_some_and(|p| !p.is_empty());
                if has_input {
                    responses.entry("400".into()).or_insert_with(|| error("Malformed parameter or body"));
                }
                if operation.request_body.is_some() {
                    responses.entry("413".into()).or_insert_with(|| error("Body over the size limit"));
                    responses.entry("415".into()).or_insert_with(|| error("The body is not JSON"));
                }
                responses.entry("401".into()).or_insert_with(|| {
                    error("No identity, or a token that is unknown, expired or revoked (with `WWW-Authenticate`)")
                });
                responses.entry("403".into()).or_insert_with(|| {
                    error("The access rules refuse this caller: the message names the permission and the rule")
                });
                responses.entry("500".into()).or_insert_with(|| error("The store failed"));
                responses
                    .entry("503".into())
                    .or_insert_with(|| error("The capability is not enabled, or the store is unavailable"));
            }
        }
    }
}

/// The OpenAPI document as JSON.
pub fn openapi_json() -> String {
    ApiDoc::openapi().to_pretty_json().unwrap_or_default()
}

pub(crate) async fn serve() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], openapi_json())
}
