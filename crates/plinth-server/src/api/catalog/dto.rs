//! Request and response bodies of the catalogue API, each with its schema.
//! Entities are Backstage's descriptors as stored (rendered straight from
//! the projection); the schema states their envelope.

use crate::api::schema::{EntityRefText, FullEntityRefText};
use plinth_app::catalog::{Direction, RefreshReport, Summary};
use plinth_app::catalog::{ImpactAnswer, Neighbourhood, SearchAnswer};
use plinth_app::catalog::{IngestionError, LocationKind, LocationRow, LocationStatus, NewLocation};
use plinth_model::{Diagnostic, Severity};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A catalogue entity (Backstage's envelope; `spec` depends on the kind).
/// With `fields=`, only the fields asked for are present, so none is
/// required here.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Entity {
    /// `backstage.io/v1alpha1` or `plinth.dev/v1alpha1`.
    pub api_version: Option<String>,
    /// Component, API, Resource, System, Domain, Group, User, Location,
    /// Template, Environment, Model, Dataset, Prompt or Agent.
    pub kind: Option<String>,
    pub metadata: Option<EntityMetadata>,
    #[schema(value_type = Option<Object>)]
    pub spec: Option<Value>,
    pub relations: Option<Vec<EntityRelation>>,
    /// Live state (`plinth.dev/health`) when a rule sets it.
    #[schema(value_type = Option<Object>)]
    pub status: Option<Value>,
}

/// An entity's metadata; `labels`, `links`, `title`, … only when set.
#[derive(Serialize, ToSchema)]
pub(crate) struct EntityMetadata {
    pub name: Option<String>,
    pub namespace: Option<String>,
    pub uid: Option<String>,
    pub etag: Option<String>,
    pub title: Option<String>,
    pub description: Option<String>,
    pub annotations: Option<BTreeMap<String, String>>,
    pub labels: Option<BTreeMap<String, String>>,
    pub tags: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<Object>>)]
    pub links: Option<Vec<Value>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntityRelation {
    /// `ownedBy`, `dependsOn`, `providesApi`, `usesModel`, …
    #[serde(rename = "type")]
    pub relation: String,
    /// `kind:namespace/name`.
    pub target_ref: String,
}

/// A page of `GET /entities/by-query`.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EntitiesPage {
    pub items: Vec<Entity>,
    pub total_items: u64,
    pub page_info: PageInfo,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PageInfo {
    /// Pass back unchanged for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prev_cursor: Option<String>,
}

/// `POST /entities/by-refs`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct ByRefsRequest {
    /// At most 10,000 refs, each naming its kind.
    #[schema(max_items = 10_000, value_type = Vec<FullEntityRefText>)]
    pub entity_refs: Vec<String>,
    #[serde(default)]
    pub fields: Option<Vec<String>>,
}

/// The entities asked for, in order, `null` where none answers.
#[derive(Serialize, ToSchema)]
pub(crate) struct ByRefsResponse {
    pub items: Vec<Option<Entity>>,
}

/// Counts per value of each requested facet.
#[derive(Serialize, ToSchema)]
pub(crate) struct FacetsResponse {
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct FacetCount {
    pub value: String,
    pub count: u64,
}

/// A registered location.
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Location {
    pub id: String,
    /// `file` or `url` (git repositories answer `url`, as in Backstage).
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// `git` for git repositories.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plinth_type: Option<String>,
    pub status: LocationStatusDto,
}

#[derive(Serialize, ToSchema)]
#[schema(as = LocationStatus)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocationStatusDto {
    /// RFC 3339, when the last refresh completed.
    pub refreshed_at: Option<String>,
    pub entities: i64,
    pub errors: i64,
    /// Git commit the last refresh read.
    pub revision: Option<String>,
    /// Set while a refresh runs; still set after a restart means it was cut off.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refreshing_since: Option<String>,
}

impl From<&LocationStatus> for LocationStatusDto {
    fn from(status: &LocationStatus) -> Self {
        LocationStatusDto {
            refreshed_at: status.refreshed_at.clone(),
            entities: status.entities,
            errors: status.errors,
            revision: status.revision.clone(),
            refreshing_since: status.refreshing_since.clone(),
        }
    }
}

impl From<&LocationRow> for Location {
    fn from(location: &LocationRow) -> Self {
        let git = location.kind == LocationKind::Git;
        Location {
            id: location.id.clone(),
            kind: if git { "url".into() } else { location.kind.to_string() },
            target: location.target.clone(),
            branch: location.branch.clone(),
            plinth_type: git.then(|| "git".to_string()),
            status: (&location.status).into(),
        }
    }
}

/// `GET /locations` items, in Backstage's `{data}` wrapper.
#[derive(Serialize, ToSchema)]
pub(crate) struct LocationItem {
    pub data: Location,
}

/// `POST /locations`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddLocationRequest {
    /// `file` (a file or directory), `url` (a git repository or a file in
    /// one, e.g. `https://host/org/repo/blob/main/catalog-info.yaml`), or
    /// `git`.
    #[serde(rename = "type", default)]
    #[schema(pattern = "^(file|url|git)?$")]
    pub kind: Option<String>,
    #[schema(min_length = 1, max_length = 4096)]
    pub target: String,
    /// Branch of a git repository (default: its default branch).
    #[serde(default)]
    #[schema(max_length = 255)]
    pub branch: Option<String>,
}

impl From<AddLocationRequest> for NewLocation {
    fn from(request: AddLocationRequest) -> Self {
        NewLocation { kind: request.kind.unwrap_or_default(), target: request.target, branch: request.branch }
    }
}

/// What registering a location did (or, with `dryRun`, would do).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LocationRegistered {
    pub location: RegisteredLocation,
    /// At most 1,000 entities.
    #[schema(value_type = Vec<Entity>)]
    pub entities: Vec<Value>,
    /// The location was registered already.
    pub exists: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh: Option<RefreshReportDto>,
    /// Problems found (dry run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<DiagnosticDto>>,
}

/// The location of a registration answer (a dry run has id `dry-run`).
#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisteredLocation {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plinth_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<LocationStatusDto>,
}

impl From<Location> for RegisteredLocation {
    fn from(l: Location) -> Self {
        RegisteredLocation {
            id: l.id,
            kind: l.kind,
            target: l.target,
            branch: l.branch,
            plinth_type: l.plinth_type,
            status: Some(l.status),
        }
    }
}

/// What a refresh did.
#[derive(Serialize, ToSchema)]
#[schema(as = RefreshReport)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RefreshReportDto {
    pub location_id: String,
    pub files_read: usize,
    pub entities_found: usize,
    pub written: usize,
    pub deleted: usize,
    pub unchanged: usize,
    pub errors: usize,
    pub warnings: usize,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
}

impl From<&RefreshReport> for RefreshReportDto {
    fn from(r: &RefreshReport) -> Self {
        RefreshReportDto {
            location_id: r.location_id.clone(),
            files_read: r.files_read,
            entities_found: r.entities_found,
            written: r.written,
            deleted: r.deleted,
            unchanged: r.unchanged,
            errors: r.errors,
            warnings: r.warnings,
            duration_ms: r.duration_ms,
            revision: r.revision.clone(),
        }
    }
}

/// A problem found reading a location: where and how to fix it.
#[derive(Serialize, ToSchema)]
#[schema(as = Diagnostic)]
#[serde(rename_all = "camelCase")]
pub(crate) struct DiagnosticDto {
    /// `error` or `warning`.
    pub severity: String,
    /// The file (`file:/…` or `url:…`).
    pub location: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_ref: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    pub message: String,
    /// The registered location it came from (`GET /errors`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_id: Option<String>,
}

impl From<&Diagnostic> for DiagnosticDto {
    fn from(d: &Diagnostic) -> Self {
        DiagnosticDto {
            severity: match d.severity {
                Severity::Error => "error".into(),
                Severity::Warning => "warning".into(),
            },
            location: d.location.clone(),
            line: d.line,
            entity_ref: d.entity_ref.clone(),
            field: d.field.clone(),
            message: d.message.clone(),
            location_id: None,
        }
    }
}

impl From<&IngestionError> for DiagnosticDto {
    fn from(e: &IngestionError) -> Self {
        DiagnosticDto { location_id: Some(e.location_id.clone()), ..DiagnosticDto::from(&e.diagnostic) }
    }
}

/// `POST /refresh`.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct RefreshRequest {
    /// `kind:namespace/name` (or shorter forms; the kind defaults to Component).
    #[schema(value_type = EntityRefText)]
    pub entity_ref: String,
}

/// `POST /validate-entity`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidateRequest {
    #[schema(value_type = Object)]
    pub entity: Value,
    /// Where it would come from, e.g. `url:https://…/catalog-info.yaml`.
    #[serde(default)]
    pub location: Option<String>,
}

/// An empty object: the entity is valid.
#[derive(Serialize, ToSchema)]
pub(crate) struct Valid {}

/// The 400 of `validate-entity`: every problem of the entity, or, when the
/// body itself is malformed, the usual error body.
pub(crate) enum ValidateEntityFailure {}

impl utoipa::PartialSchema for ValidateEntityFailure {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::api::schema::from_json(serde_json::json!({
            "oneOf": [
                {"$ref": "#/components/schemas/ValidationErrors"},
                {"$ref": "#/components/schemas/ErrorBody"}
            ]
        }))
    }
}

impl ToSchema for ValidateEntityFailure {}

/// Every problem of an invalid entity.
#[derive(Serialize, ToSchema)]
pub(crate) struct ValidationErrors {
    pub errors: Vec<ValidationError>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ValidationError {
    /// `InputError`.
    pub name: String,
    pub message: String,
    pub field: String,
}

/// Everything that depends on an entity (or that it depends on).
#[derive(Serialize, ToSchema)]
#[schema(as = Impact)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImpactDto {
    pub entity_ref: String,
    /// `dependents` or `dependencies`.
    pub direction: String,
    /// Every entity reached (the items are the nearest `limit`).
    pub count: usize,
    /// The walk stopped at `maxDepth` with more beyond.
    pub max_depth_reached: bool,
    pub items: Vec<ImpactItemDto>,
    /// Dependency cycles met on the way.
    pub cycles: Vec<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = ImpactItem)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImpactItemDto {
    pub entity_ref: String,
    pub depth: u32,
    pub path: Vec<String>,
}

impl From<ImpactAnswer> for ImpactDto {
    fn from(a: ImpactAnswer) -> Self {
        ImpactDto {
            entity_ref: a.entity_ref,
            direction: direction_name(a.direction).into(),
            count: a.count,
            max_depth_reached: a.max_depth_reached,
            items: a
                .items
                .into_iter()
                .map(|i| ImpactItemDto { entity_ref: i.entity_ref, depth: i.depth, path: i.path })
                .collect(),
            cycles: a.cycles,
        }
    }
}

pub(crate) fn direction_name(direction: Direction) -> &'static str {
    match direction {
        Direction::Dependents => "dependents",
        Direction::Dependencies => "dependencies",
    }
}

/// An entity's summary: what lists show.
#[derive(Serialize, ToSchema)]
#[schema(as = EntitySummary)]
pub(crate) struct SummaryDto {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub spec_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

impl From<&Summary> for SummaryDto {
    fn from(s: &Summary) -> Self {
        SummaryDto {
            kind: s.kind.to_string(),
            namespace: s.namespace.to_string(),
            name: s.name.clone(),
            title: s.title.clone(),
            description: s.description.clone(),
            spec_type: s.spec_type.as_deref().map(str::to_string),
            lifecycle: s.lifecycle.as_deref().map(str::to_string),
            owner: s.owner.as_deref().map(str::to_string),
            tags: s.tags.clone(),
        }
    }
}

/// Nodes and edges within a number of hops.
#[derive(Serialize, ToSchema)]
#[schema(as = Neighbourhood)]
pub(crate) struct NeighbourhoodDto {
    pub root: String,
    pub depth: u32,
    pub nodes: Vec<NeighbourNodeDto>,
    pub edges: Vec<NeighbourEdgeDto>,
    /// More nodes were within reach than `limit`.
    pub truncated: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NeighbourNode)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NeighbourNodeDto {
    pub entity_ref: String,
    pub distance: u32,
    pub hidden_relations: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<SummaryDto>,
    /// No entity answers to this ref.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub missing: bool,
}

#[derive(Serialize, ToSchema)]
#[schema(as = NeighbourEdge)]
pub(crate) struct NeighbourEdgeDto {
    pub source: String,
    #[serde(rename = "type")]
    pub relation: String,
    pub target: String,
}

impl From<Neighbourhood> for NeighbourhoodDto {
    fn from(n: Neighbourhood) -> Self {
        NeighbourhoodDto {
            root: n.root,
            depth: n.depth,
            nodes: n
                .nodes
                .into_iter()
                .map(|node| NeighbourNodeDto {
                    missing: node.summary.is_none(),
                    summary: node.summary.as_ref().map(SummaryDto::from),
                    entity_ref: node.entity_ref,
                    distance: node.distance,
                    hidden_relations: node.hidden_relations,
                })
                .collect(),
            edges: n
                .edges
                .into_iter()
                .map(|e| NeighbourEdgeDto { source: e.source, relation: e.relation, target: e.target })
                .collect(),
            truncated: n.truncated,
        }
    }
}

/// Ranked hits and facet counts over every hit.
#[derive(Serialize, ToSchema)]
#[schema(as = Search)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchDto {
    pub query: String,
    pub total_items: u64,
    pub items: Vec<SearchHitDto>,
    pub facets: BTreeMap<String, Vec<FacetCount>>,
}

#[derive(Serialize, ToSchema)]
#[schema(as = SearchHit)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SearchHitDto {
    pub entity_ref: String,
    pub score: f32,
    pub summary: SummaryDto,
}

impl From<SearchAnswer> for SearchDto {
    fn from(a: SearchAnswer) -> Self {
        SearchDto {
            query: a.query,
            total_items: a.total,
            items: a
                .items
                .into_iter()
                .map(|h| SearchHitDto {
                    summary: SummaryDto::from(&h.summary),
                    entity_ref: h.entity_ref,
                    score: h.score,
                })
                .collect(),
            facets: a
                .facets
                .into_iter()
                .map(|(facet, counts)| {
                    (facet, counts.into_iter().map(|(value, count)| FacetCount { value, count }).collect())
                })
                .collect(),
        }
    }
}

/// Ingestion problems.
#[derive(Serialize, ToSchema)]
#[schema(as = Errors)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ErrorsDto {
    pub total_items: usize,
    pub items: Vec<DiagnosticDto>,
}

/// The body of `POST /webhook`: a GitHub push event (the repository's
/// `clone_url`, `html_url`, `ssh_url`, … ), a GitLab push event (the
/// project's `git_http_url`, … ), or `{"repository": URL, "branch": NAME}`.
/// Some key must name a repository; the branch is `branch`, or `ref`
/// without `refs/heads/`.
pub(crate) struct WebhookPayload;

/// The keys of a push payload that name a repository, where they sit.
pub(crate) const REPOSITORY_KEYS: [&str; 8] =
    ["clone_url", "html_url", "ssh_url", "git_url", "url", "git_http_url", "git_ssh_url", "homepage"];
pub(crate) const PROJECT_KEYS: [&str; 4] = ["git_http_url", "git_ssh_url", "web_url", "http_url"];

impl utoipa::PartialSchema for WebhookPayload {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use serde_json::json;
        let url = json!({"type": "string", "minLength": 1});
        let one_of_keys = |keys: &[&str]| -> Value {
            Value::Array(keys.iter().map(|k| json!({"required": [k], "properties": {(*k): url.clone()}})).collect())
        };
        crate::api::schema::from_json(json!({
            "description": "A GitHub or GitLab push event, or `{repository, branch}`; some key must name a repository",
            "type": "object",
            "properties": {
                "ref": {"type": "string", "description": "`refs/heads/BRANCH` (push events)"},
                "branch": {"type": "string", "description": "The branch (plain form)"}
            },
            "anyOf": [
                {"title": "GitHubPush", "required": ["repository"], "properties": {"repository": {"type": "object", "anyOf": one_of_keys(&REPOSITORY_KEYS)}}},
                {"title": "GitLabPush", "required": ["project"], "properties": {"project": {"type": "object", "anyOf": one_of_keys(&PROJECT_KEYS)}}},
                {"title": "PlainPush", "required": ["repository"], "properties": {"repository": {"type": "string", "minLength": 1, "description": "The repository URL (or path)"}}},
                {"title": "UrlPush", "required": ["url"], "properties": {"url": url}}
            ]
        }))
    }
}

impl ToSchema for WebhookPayload {}

/// What a push webhook refreshed.
#[derive(Serialize, ToSchema)]
#[schema(as = Webhook)]
pub(crate) struct WebhookDto {
    pub repositories: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    pub refreshed: Vec<RefreshReportDto>,
    /// `ping` for a forge's ping event (nothing refreshed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
}
