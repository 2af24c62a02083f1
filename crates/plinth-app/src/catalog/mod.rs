//! The catalogue: read access to the projection, locations (register,
//! preview, refresh, remove), entity deletion and validation, transitive
//! impact, neighbourhoods, ranked search, ingestion errors and webhook
//! refreshes. One method per use case.

pub mod docs;

use plinth_catalog::{normalize_location, Catalog, RecentChange, SearchIndex, SourceRead};
/// The projection and what the surfaces read from it.
pub use plinth_catalog::{
    CatalogState, Condition, Direction, EntityFilter, EntityRecord, FilterGroup, NodeId, RefreshReport, RelId, Summary,
    MAX_SEARCH_DEPTH,
};
use plinth_model::{process_entity, Diagnostic, EntityRef, Origin};
pub use plinth_store::{IngestionError, LocationKind, LocationRow, LocationStatus, NewLocation};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::Arc;
use tokio::sync::broadcast;

use crate::access::{Permission, Resource};
use crate::audit::AuditOutcome;
use crate::lease::{Flow, Job, Leadership};
use crate::{AppError, AppResult, Caller, FieldError, Platform};

/// Resumes at once the refreshes a crash of this process cut off (a
/// restart resumes its own work), and runs the periodic refresh of every
/// location on the replica that leads [`Job::CatalogRefresh`], every
/// `refresh_interval`; a replica taking the job over from one that died
/// first resumes what that one cut off. Each location only while the term
/// lasts.
pub(crate) fn spawn_refresh(catalog: &Arc<Catalog>, leadership: &Arc<Leadership>) {
    let resuming = Arc::clone(catalog);
    tokio::spawn(async move {
        if let Err(error) = resuming.resume_interrupted().await {
            tracing::warn!(%error, "cannot list locations to resume interrupted refreshes");
        }
    });
    let weak = Arc::downgrade(catalog);
    leadership.spawn_job(Job::CatalogRefresh, catalog.config().refresh_interval, move |term| {
        let weak = weak.clone();
        async move {
            let Some(catalog) = weak.upgrade() else { return Flow::Stop };
            if term.new_term {
                if let Err(error) = catalog.resume_interrupted_while(|| term.holds()).await {
                    tracing::warn!(%error, "cannot list locations to resume interrupted refreshes");
                }
            } else {
                catalog.refresh_all_while(|| term.holds()).await;
            }
            Flow::Continue
        }
    });
}

/// Most entities a registration answers with (the rest are in the catalogue).
pub const MAX_ECHOED_ENTITIES: usize = 1_000;
/// Most refs one by-refs request may ask for.
pub const MAX_REFS: usize = 10_000;
/// Most items an impact answer lists (`count` is always the full count).
pub const MAX_IMPACT_ITEMS: usize = 10_000;
/// Deepest an impact walk may be asked to go.
pub const MAX_IMPACT_DEPTH: u32 = 1_000;
/// Most hops a neighbourhood spans.
pub const MAX_NEIGHBOURHOOD_DEPTH: u32 = 6;
/// Most nodes a neighbourhood returns.
pub const MAX_NEIGHBOURHOOD_NODES: usize = 2_000;
/// Most hits one search page returns.
pub const MAX_SEARCH_LIMIT: usize = 500;
/// Facets returned with search results.
pub const SEARCH_FACETS: &[&str] =
    &["kind", "spec.type", "spec.owner", "spec.lifecycle", "metadata.tags", "metadata.namespace"];

/// A read view of the catalogue projection. Hold it briefly: writers wait.
pub type CatalogView<'a> = parking_lot::RwLockReadGuard<'a, CatalogState>;

/// A location registered and ingested.
#[derive(Debug, Clone)]
pub struct Registered {
    pub location: LocationRow,
    pub created: bool,
    pub report: RefreshReport,
    /// The entities it holds, as JSON (at most [`MAX_ECHOED_ENTITIES`]).
    pub entities: Vec<Value>,
}

/// What registering a location would do.
#[derive(Debug, Clone)]
pub struct LocationPreview {
    pub location: NewLocation,
    pub entities: Vec<Value>,
    pub diagnostics: Vec<Diagnostic>,
    /// The location is registered already.
    pub exists: bool,
}

/// One entity reached by an impact walk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImpactItem {
    pub entity_ref: String,
    pub depth: u32,
    /// The chain from the start to it.
    pub path: Vec<String>,
}

/// Everything that depends on an entity (or that it depends on).
#[derive(Debug, Clone)]
pub struct ImpactAnswer {
    pub entity_ref: String,
    pub direction: Direction,
    pub count: usize,
    pub max_depth_reached: bool,
    pub items: Vec<ImpactItem>,
    pub cycles: Vec<Vec<String>>,
}

/// A node of a neighbourhood.
#[derive(Debug, Clone)]
pub struct NeighbourNode {
    pub entity_ref: String,
    pub distance: u32,
    /// Relations to entities left out.
    pub hidden_relations: usize,
    /// `None` for a ref no entity answers to.
    pub summary: Option<Summary>,
}

/// A relation between two nodes of a neighbourhood.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct NeighbourEdge {
    pub source: String,
    pub relation: String,
    pub target: String,
}

/// Nodes and edges within a number of hops.
#[derive(Debug, Clone)]
pub struct Neighbourhood {
    pub root: String,
    pub depth: u32,
    pub nodes: Vec<NeighbourNode>,
    pub edges: Vec<NeighbourEdge>,
    pub truncated: bool,
}

/// A search request.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub text: String,
    /// Backstage filter groups narrowing the hits.
    pub filter: Vec<String>,
    pub limit: usize,
    pub offset: usize,
}

/// One ranked hit.
#[derive(Debug, Clone)]
pub struct SearchHit {
    pub entity_ref: String,
    pub score: f32,
    pub summary: Summary,
}

/// Ranked hits with facet counts over every hit.
#[derive(Debug, Clone)]
pub struct SearchAnswer {
    pub query: String,
    pub total: u64,
    pub items: Vec<SearchHit>,
    pub facets: Vec<(String, Vec<(String, u64)>)>,
}

/// The catalogue use cases.
pub struct CatalogUseCases<'a> {
    pub(crate) platform: &'a Platform,
}

impl<'a> CatalogUseCases<'a> {
    fn catalog(&self) -> &'a Arc<Catalog> {
        &self.platform.catalog
    }

    /// Reads are open to every signed-in caller (services with `read`).
    fn read(&self, caller: &Caller) -> AppResult<()> {
        self.platform.access.check(caller, Permission::CatalogRead, &Resource::none())
    }

    /// A location's entities must all be the caller's to act on the whole
    /// location; one without entities is the admins'.
    fn check_location(&self, caller: &Caller, permission: Permission, id: &str) -> AppResult<()> {
        let state = self.catalog().read();
        let keys: Vec<String> = state.entities().filter(|r| *r.location_id == *id).map(|r| r.key.to_string()).collect();
        if keys.is_empty() {
            let resource = Resource { reference: format!("location {id}"), ..Resource::none() };
            return self.platform.access.check(caller, permission, &resource);
        }
        self.platform.access.check_all(caller, permission, &Resource::entities(&state, format!("location {id}"), &keys))
    }

    /// The projection, for the queries the API and portal render.
    pub fn view(&self, caller: &Caller) -> AppResult<CatalogView<'a>> {
        self.read(caller)?;
        Ok(self.catalog().read())
    }

    /// The full-text index (ranked search, "did you mean").
    pub fn search_index(&self) -> &'a SearchIndex {
        self.catalog().search_index()
    }

    /// Changes as they are applied (for live views).
    pub fn subscribe(&self, caller: &Caller) -> AppResult<broadcast::Receiver<RecentChange>> {
        self.read(caller)?;
        Ok(self.catalog().subscribe())
    }

    /// Every registered location with its status.
    pub async fn locations(&self, caller: &Caller) -> AppResult<Vec<LocationRow>> {
        self.read(caller)?;
        Ok(self.catalog().locations().await?)
    }

    pub async fn location(&self, caller: &Caller, id: &str) -> AppResult<LocationRow> {
        self.read(caller)?;
        self.catalog()
            .store()
            .get_location(id)
            .await?
            .ok_or_else(|| AppError::not_found(format!("No location with id {id}")))
    }

    /// The location that manages an entity.
    pub async fn location_of(&self, caller: &Caller, entity: &EntityRef) -> AppResult<LocationRow> {
        let id = {
            let state = self.catalog().read();
            state.get(&entity.key()).map(|r| r.location_id.to_string()).ok_or_else(|| entity_not_found(entity))?
        };
        self.location(caller, &id).await.map_err(|_| AppError::not_found(format!("No location manages {entity}")))
    }

    /// Registers a location and ingests it. Registering one twice is a
    /// conflict, as in Backstage.
    pub async fn register(&self, caller: &Caller, location: NewLocation) -> AppResult<Registered> {
        self.platform.access.check(caller, Permission::CatalogLocationCreate, &Resource::none())?;
        let normalized = normalize_location(location.clone())?;
        self.platform.access.check_source(caller, &normalized.kind, &normalized.target)?;
        if let Some(existing) = self.find(&normalized).await? {
            return Err(AppError::conflict(format!(
                "Location {}:{} already exists (id {}); refresh it with POST /api/catalog/refresh or remove it first",
                existing.kind, existing.target, existing.id
            )));
        }
        self.ensure_location(caller, location).await
    }

    /// Registers a location unless it is registered already, and ingests
    /// it either way (what `plinth serve --location` does at each start).
    pub async fn ensure_location(&self, caller: &Caller, location: NewLocation) -> AppResult<Registered> {
        self.platform.access.check(caller, Permission::CatalogLocationCreate, &Resource::none())?;
        let normalized = normalize_location(location.clone())?;
        self.platform.access.check_source(caller, &normalized.kind, &normalized.target)?;
        let (row, created, report) = self.catalog().add_location(location).await?;
        if created {
            let detail = json!({"kind": row.kind.as_str(), "target": row.target, "branch": row.branch});
            self.platform.record(caller, "catalog.location.create", &row.id, AuditOutcome::Allowed, detail).await;
        }
        let state = self.catalog().read();
        let entities = state
            .entities()
            .filter(|r| *r.location_id == *row.id)
            .take(MAX_ECHOED_ENTITIES)
            .map(|r| state.render(r))
            .collect();
        Ok(Registered { location: row, created, report, entities })
    }

    /// What registering a location would produce, writing nothing.
    pub async fn preview(&self, caller: &Caller, location: NewLocation) -> AppResult<LocationPreview> {
        self.read(caller)?;
        let normalized = normalize_location(location.clone())?;
        self.platform.access.check_source(caller, &normalized.kind, &normalized.target)?;
        let exists = self.find(&normalized).await?.is_some();
        let read: SourceRead = self.catalog().preview_location(location).await?;
        let entities = read
            .entities
            .iter()
            .take(MAX_ECHOED_ENTITIES)
            .filter_map(|f| serde_json::from_str(&f.entity.body).ok())
            .collect();
        Ok(LocationPreview { location: normalized, entities, diagnostics: read.diagnostics, exists })
    }

    async fn find(&self, normalized: &NewLocation) -> AppResult<Option<LocationRow>> {
        Ok(self.catalog().locations().await?.into_iter().find(|l| {
            l.kind.as_str() == normalized.kind && l.target == normalized.target && l.branch == normalized.branch
        }))
    }

    /// Unregisters a location and removes the entities it manages.
    pub async fn unregister(&self, caller: &Caller, id: &str) -> AppResult<()> {
        self.check_location(caller, Permission::CatalogLocationDelete, id)?;
        if self.catalog().delete_location(id).await? {
            self.platform.record(caller, "catalog.location.delete", id, AuditOutcome::Allowed, json!({})).await;
            Ok(())
        } else {
            Err(AppError::not_found(format!("No location with id {id}")))
        }
    }

    /// Re-reads the entity's source now; returns when the change is visible.
    pub async fn refresh(&self, caller: &Caller, entity: &EntityRef) -> AppResult<RefreshReport> {
        let resource = Resource::entity(&self.catalog().read(), &entity.key());
        self.platform.access.check(caller, Permission::CatalogEntityRefresh, &resource)?;
        let report = self.catalog().refresh_entity(&entity.key()).await?.ok_or_else(|| entity_not_found(entity))?;
        tracing::debug!(entity = %entity, by = %caller.requester(), "refreshed");
        Ok(report)
    }

    /// Refreshes the git locations of the repositories a push names.
    pub async fn refresh_repositories(
        &self,
        caller: &Caller,
        urls: &[String],
        branch: Option<&str>,
    ) -> AppResult<Vec<RefreshReport>> {
        if urls.is_empty() {
            return Err(AppError::invalid(
                "webhook names no repository; send a GitHub or GitLab push event, or {\"repository\": URL, \"branch\": NAME}",
            ));
        }
        self.platform.access.check(caller, Permission::CatalogLocationRefresh, &Resource::none())?;
        let reports = self.catalog().refresh_repositories(urls, branch).await?;
        tracing::info!(repositories = ?urls, refreshed = reports.len(), by = %caller.requester(), "push refreshed");
        Ok(reports)
    }

    /// Deletes one entity (it returns on the next refresh if its source
    /// still declares it, as in Backstage).
    pub async fn delete_entity(&self, caller: &Caller, uid: &str) -> AppResult<()> {
        let resource = {
            let state = self.catalog().read();
            match state.get_by_uid(uid) {
                Some(record) => Resource::entity(&state, &record.key),
                None => Resource { reference: uid.to_string(), ..Resource::none() },
            }
        };
        self.platform.access.check(caller, Permission::CatalogEntityDelete, &resource)?;
        if self.catalog().delete_entity_by_uid(uid).await? {
            let detail = json!({"uid": uid});
            self.platform
                .record(caller, "catalog.entity.delete", &resource.reference, AuditOutcome::Allowed, detail)
                .await;
            Ok(())
        } else {
            Err(AppError::not_found(format!("No entity with uid {uid}")))
        }
    }

    /// Checks an entity as ingestion would; every problem by field.
    pub fn validate(&self, caller: &Caller, entity: Value, location: Option<String>) -> AppResult<()> {
        self.read(caller)?;
        let location = location.unwrap_or_else(|| "validate-entity".to_string());
        let origin = Origin { managed_by: location.clone(), origin: location };
        match process_entity(entity, &origin) {
            Ok(_) => Ok(()),
            Err(issues) => {
                let fields: Vec<FieldError> =
                    issues.iter().map(|i| FieldError { field: i.field.clone(), message: i.message.clone() }).collect();
                let message = fields
                    .iter()
                    .map(|f| if f.field.is_empty() { f.message.clone() } else { format!("{}: {}", f.field, f.message) })
                    .collect::<Vec<_>>()
                    .join("; ");
                Err(AppError::invalid(message).with_fields(fields))
            }
        }
    }

    /// Everything that depends on an entity (or it depends on), nearest first.
    pub fn impact(
        &self,
        caller: &Caller,
        entity: &EntityRef,
        direction: Direction,
        max_depth: Option<u32>,
        limit: usize,
    ) -> AppResult<ImpactAnswer> {
        self.read(caller)?;
        let state = self.catalog().read();
        let impact = state.impact(&entity.key(), direction, max_depth).ok_or_else(|| entity_not_found(entity))?;
        let entity_ref = state.get(&entity.key()).map(|r| r.entity_ref.to_string()).unwrap_or_default();
        let items = impact
            .reached
            .iter()
            .take(limit.min(MAX_IMPACT_ITEMS))
            .map(|reached| ImpactItem {
                entity_ref: state.ref_of(reached.node).to_string(),
                depth: reached.depth,
                path: impact.path(reached.node).into_iter().map(|n| state.ref_of(n).to_string()).collect(),
            })
            .collect();
        let cycles =
            impact.cycles.iter().map(|cycle| cycle.iter().map(|n| state.ref_of(*n).to_string()).collect()).collect();
        Ok(ImpactAnswer {
            entity_ref,
            direction,
            count: impact.reached.len(),
            max_depth_reached: impact.truncated_by_depth,
            items,
            cycles,
        })
    }

    /// Nodes and edges within `depth` hops, for drawing graphs.
    pub fn neighbourhood(
        &self,
        caller: &Caller,
        entity: &EntityRef,
        depth: u32,
        limit: usize,
        relations: &[String],
    ) -> AppResult<Neighbourhood> {
        self.read(caller)?;
        let relations: Vec<RelId> = relations
            .iter()
            .map(|r| {
                plinth_model::canonical_relation(r)
                    .and_then(RelId::of)
                    .ok_or_else(|| AppError::invalid_field("relation", format!("unknown relation type `{r}`")))
            })
            .collect::<AppResult<_>>()?;
        let depth = depth.min(MAX_NEIGHBOURHOOD_DEPTH);
        let state = self.catalog().read();
        let root = state
            .node_of(&entity.key())
            .filter(|n| state.entity(*n).is_some())
            .ok_or_else(|| entity_not_found(entity))?;
        let filter = (!relations.is_empty()).then_some(relations.as_slice());
        let (nodes, truncated) =
            state.graph().neighbourhood(root, depth, limit.clamp(1, MAX_NEIGHBOURHOOD_NODES), filter);
        let included: HashSet<u32> = nodes.iter().map(|(n, _)| *n).collect();
        let mut edges = Vec::new();
        let mut out = Vec::with_capacity(nodes.len());
        for (node, distance) in &nodes {
            let mut hidden = 0usize;
            for edge in state.graph().edges(*node) {
                if let Some(filter) = filter {
                    if !filter.contains(&edge.rel) && !filter.contains(&edge.rel.inverse()) {
                        continue;
                    }
                }
                if !included.contains(&edge.to) {
                    hidden += 1;
                    continue;
                }
                if edge.rel.is_canonical() {
                    edges.push(NeighbourEdge {
                        source: state.ref_of(*node).to_string(),
                        relation: edge.rel.name().to_string(),
                        target: state.ref_of(edge.to).to_string(),
                    });
                }
            }
            out.push(NeighbourNode {
                entity_ref: state.ref_of(*node).to_string(),
                distance: *distance,
                hidden_relations: hidden,
                summary: state.entity(*node).map(|r| r.summary.clone()),
            });
        }
        edges.sort();
        edges.dedup();
        Ok(Neighbourhood { root: state.ref_of(root).to_string(), depth, nodes: out, edges, truncated })
    }

    /// Ranked full-text search with facet counts over every hit.
    pub fn search(&self, caller: &Caller, query: &SearchQuery) -> AppResult<SearchAnswer> {
        self.read(caller)?;
        let text = query.text.trim().to_string();
        if text.is_empty() {
            return Err(AppError::invalid_field("q", "give a search text, e.g. `checkout`"));
        }
        if query.offset > MAX_SEARCH_DEPTH {
            return Err(AppError::invalid_field("offset", format!("must be from 0 to {MAX_SEARCH_DEPTH}")));
        }
        let limit = query.limit.clamp(1, MAX_SEARCH_LIMIT);
        let filter = EntityFilter::parse(&query.filter).map_err(|e| AppError::invalid_field("filter", e))?;
        // Rank more than a page when filtering, so filtered pages stay full.
        let window = if filter.is_empty() { query.offset + limit } else { (query.offset + limit).max(2_000) };
        let (hits, all) = self
            .search_index()
            .search(&text, 0, window.min(MAX_SEARCH_DEPTH + MAX_SEARCH_LIMIT))
            .map_err(|e| AppError::internal(e.to_string()))?;
        let state = self.catalog().read();
        let matched = if filter.is_empty() {
            all & state.live()
        } else {
            state.filters().matching(&filter, &(all & state.live()))
        };
        let items = hits
            .iter()
            .filter(|h| matched.contains(h.id))
            .skip(query.offset)
            .take(limit)
            .filter_map(|h| state.entity(h.id).map(|r| (h, r)))
            .map(|(hit, record)| SearchHit {
                entity_ref: record.entity_ref.to_string(),
                score: hit.score,
                summary: record.summary.clone(),
            })
            .collect();
        let facets = SEARCH_FACETS
            .iter()
            .map(|facet| (facet.to_string(), state.facet(facet, &matched).into_iter().take(50).collect()))
            .collect();
        Ok(SearchAnswer { query: text, total: matched.len(), items, facets })
    }

    /// Ingestion problems, each with its file, line, field and fix.
    pub async fn errors(
        &self,
        caller: &Caller,
        location: Option<&str>,
        entity: Option<&EntityRef>,
    ) -> AppResult<Vec<IngestionError>> {
        self.read(caller)?;
        let mut errors = self.catalog().store().list_errors().await?;
        if let Some(location) = location {
            errors.retain(|e| e.location_id == location);
        }
        if let Some(entity) = entity {
            let wanted = entity.key();
            errors.retain(|e| e.diagnostic.entity_ref.as_deref().is_some_and(|r| r.to_lowercase() == wanted));
        }
        Ok(errors)
    }
}

/// Backstage's message for a missing entity.
pub fn entity_not_found(entity: &EntityRef) -> AppError {
    AppError::not_found(format!("No entity named '{entity}' found"))
}
